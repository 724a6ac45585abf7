# Політики та групи пристроїв (server/src/console/policies.rs).
nav-policies = Політики
cancel = Скасувати
minutes = { $count ->
    [one] { $n } хвилина
    [few] { $n } хвилини
    [many] { $n } хвилин
   *[other] { $n } хвилини
}
done-group-created = Групу пристроїв створено.
done-policy-saved = Політику збережено; її доставляють.
done-assigned = Політику призначено.
done-unassigned = Призначення вилучено.
policy-new = Нова політика
policy-title = Політика { $value }
policy-preview-title = Перегляньте зміни в { $value }
policy-name = Назва
policy-version = Версія
policy-updated = Змінено
policy-assigned-to = Призначено
policy-current-version = Поточна версія: { $value }
policy-description = Опис
policy-form = Редагування у формі
policy-file = Редагування файлу
policy-form-hint = Форма змінює назву, опис і правила коду доступу; Wi-Fi, пошту й сертифікати редагують у файлі.
policy-format = Формат
policy-text = Файл політики
policy-preview = Перевірити й переглянути
policy-passcode = Код доступу
passcode-required = Код доступу обов'язковий
passcode-min-length = Мінімальна довжина (від 4 до 16)
passcode-alphanumeric = Потрібні літери, не лише цифри
passcode-allow-simple = Дозволено прості коди (1111, 1234)
passcode-auto-lock = Автоблокування через
passcode-max-failed = Невдалі спроби до стирання пристрою (від 2 до 11)
passcode-max-age = Днів до обов'язкової зміни коду
passcode-history = Попередні коди, які не можна використати знову
passcode-grace = Хвилин після блокування до запиту коду (від 0 до 240)
policy-not-a-number = має бути цілим числом
policy-allowed = дозволено:
policy-invalid = { $count ->
    [one] Політика має { $n } помилку; нічого не збережено.
    [few] Політика має { $n } помилки; нічого не збережено.
    [many] Політика має { $n } помилок; нічого не збережено.
   *[other] Політика має { $n } помилки; нічого не збережено.
}
policy-name-fixed = Ця політика називається { $value }; політика з іншою назвою — це нова політика.
policy-changes = Зміни
policy-field = Поле
policy-before = Зараз
policy-after = Після застосування
policy-unchanged = Нічого не змінюється: документ збігається з поточною версією.
policy-findings = Правила установи, яких ця політика не дотримується
policy-notes = Чого платформа не може застосувати
policy-installs = { $count ->
    [one] { $n } пристрій отримає новий профіль
    [few] { $n } пристрої отримають новий профіль
    [many] { $n } пристроїв отримають новий профіль
   *[other] { $n } пристрою отримають новий профіль
}
policy-would-queue = Застосування охопить: { $value }
policy-note = Примітка до історії версій
policy-apply = Застосувати
policy-unassign = Вилучити
policy-assign-group = Призначити групі
policy-assign = Призначити
groups = Групи пристроїв
group-new = Нова група пристроїв
group-name = Назва
group-kind = Вид
group-match = Відповідність
group-match-hint = Для групи каталогу, відділу чи групи реєстрації: назва, якій вона відповідає. Порожньо для ручної групи.
group-create = Створити
group-kind-manual = Ручна
group-kind-directory-group = Група в каталозі
group-kind-department = Відділ
group-kind-enrollment = Група реєстрації
policy-output-queued = Надсилається
policy-output-installed = Встановлено
policy-output-removing = Вилучається
reason-security-unreported = Стан безпеки ще не повідомлено
reason-passcode-missing = Код доступу не встановлено
reason-passcode-weak = Код доступу заслабкий для політики
reason-encryption-off = Шифрування вимкнено
reason-compliance-unreported = Відповідність ще не повідомлено
reason-google-no-details = Не відповідає політиці (Google не надав подробиць)
reason-profile-queued = Профіль політики { $value } ще не встановлено
reason-profile-missing = На пристрої бракує профілю політики { $value }
reason-passcode-android = Код доступу відсутній або заслабкий ({ $value })
reason-wifi-psk = Wi-Fi { $value } використовує спільний ключ; установа вимагає доменних облікових даних
finding-passcode-required = код доступу не вимагається; політика чистого екрана вимагає PIN-коду або пароля під час запуску й пробудження
finding-passcode-auto-lock = екран має блокуватися автоматично щонайпізніше через { $value } хвилин (політика чистого столу й чистого екрана)
finding-passcode-grace-period = пристрій має запитувати код одразу після блокування (політика чистого екрана)
finding-passcode-simple = прості коди (1234, 1111) не можна дозволяти (парольна політика)
finding-passcode-min-length = код доступу має містити щонайменше { $value } символів (парольна політика)
finding-passcode-failed-attempts = до стирання можна дозволити щонайбільше { $value } невдалих спроб (парольна політика)
finding-wifi-psk = Wi-Fi має використовувати доменні облікові дані користувача, а не спільний ключ (парольна політика)
finding-mail-ssl = пошта має підключатися через SSL/TLS, щоб паролі шифрувалися під час передавання (парольна політика)
