# Адміністративні сторінки консолі (журнал аудиту, адміністратори й ролі, налаштування,
# користувачі й групи) українською: кожне повідомлення з en; тест порівнює каталоги.
nav-audit = Журнал аудиту
nav-admins = Адміністратори й ролі
nav-settings = Налаштування
nav-directory = Користувачі й групи

## Журнал аудиту
audit-chain = Цілісність журналу аудиту
audit-chain-intact = Перевірено
audit-chain-broken = Порушено
audit-chain-records = { $count ->
    [one] Перевірено { $n } запис; усі ланки цілі.
    [few] Перевірено { $n } записи; усі ланки цілі.
    [many] Перевірено { $n } записів; усі ланки цілі.
   *[other] Перевірено { $n } запису; усі ланки цілі.
}
audit-chain-problems = { $count ->
    [one] Знайдено { $n } проблему:
    [few] Знайдено { $n } проблеми:
    [many] Знайдено { $n } проблем:
   *[other] Знайдено { $n } проблеми:
}
audit-chain-head = Голова ланцюга (запис · геш): { $value }
audit-chain-where = Де ланцюг порушено
audit-anchor = Опублікований якір
audit-anchor-hint = Необов’язково: SEQ:HASH з події audit.anchor, щоб перевірити, чи ланцюг досі його містить.
audit-anchor-invalid = Якір не перевірено: { $value }
audit-anchor-found = Якір { $value } досі є в ланцюгу.
audit-anchor-missing = Якоря { $value } більше немає в ланцюгу.
audit-verify = Перевірити
audit-records = Записи
audit-records-count = { $count ->
    [one] { $n } запис
    [few] { $n } записи
    [many] { $n } записів
   *[other] { $n } запису
}
audit-export-csv = Експортувати весь журнал (CSV)
audit-seq = №
audit-at = Коли
audit-actor = Хто
audit-address = Звідки
audit-action = Дія
audit-outcome = Результат
audit-outcome-success = Успіх
audit-outcome-failure = Невдача
audit-outcome-denied = Відмовлено
audit-newer = Новіші записи
audit-older = Старіші записи

## Адміністратори й ролі
admins-accounts = Облікові записи адміністраторів
admins-count = { $count ->
    [one] { $n } адміністратор
    [few] { $n } адміністратори
    [many] { $n } адміністраторів
   *[other] { $n } адміністратора
}
admins-name = Ім’я користувача
admins-display-name = Ім’я
admins-groups = Групи
admins-roles = Ролі
admins-mfa = Другий фактор
admins-mfa-on = Увімкнено
admins-mfa-off = Вимкнено
admins-last-login = Останній вхід
admins-state = Стан
admins-active = Активний
admins-disabled = Вимкнений
admins-actions = Дії
admins-disable = Вимкнути
admins-disable-reason = Причина вимкнення { $value }
admins-reason = Причина (необов’язково)
admins-enable = Увімкнути
admins-reset-mfa = Скинути другий фактор
admins-disable-hint = Вимкнення одразу завершує сесії й відкликає токени адміністратора та вилучає його з груп; повторне ввімкнення груп не повертає. Скидання другого фактора завершує його сесії; під час наступного входу він налаштує новий.
admins-done-disabled = Обліковий запис { $value } вимкнено; його сесії завершено.
admins-done-enabled = Обліковий запис { $value } знову ввімкнено. Додайте його до груп, щоб надати права.
admins-done-mfa-reset = Другий фактор { $value } скинуто.
admins-roles-heading = Ролі
admins-role = Роль
admins-role-description = Кому надається
admins-critical = Критична
admins-critical-yes = Критична
admins-critical-no = Некритична
admins-granted-to = Надано групам
admins-rights = Права
admins-rights-count = { $count ->
    [one] { $n } право
    [few] { $n } права
    [many] { $n } прав
   *[other] { $n } права
}
admins-matrix = Матриця ролей
admins-matrix-hint = Яка роль надає яке право. Критичні ролі (*) потребують другого фактора.
admins-matrix-csv = Експортувати CSV
admins-right = Право
admins-granted = надано
admins-not-granted = не надано
right-devices-read = перегляд пристроїв, їхніх команд і спроб push-сповіщень
right-devices-query = запити інформації (про пристрій, безпеку, профілі тощо)
right-devices-lock = блокування пристрою
right-devices-lost-mode = режим втраченого пристрою: увімкнення й вимкнення, пошук, звуковий сигнал
right-devices-wipe = стирання пристрою
right-devices-manage = виведення з обліку, відкликання й видалення пристроїв, схвалення повторних реєстрацій, push на вимогу
right-commands-send = будь-яка інша команда (профілі, перезапуск, код доступу, сирі) і скасування команд
right-enrollments-read = перегляд реєстрацій
right-enrollments-write = створення й відкликання реєстрацій
right-policies-read = читання політик, груп пристроїв і відповідності
right-policies-write = зміна політик, призначень і груп пристроїв; доставка
right-directory-read = читання користувачів і груп каталогу, списку на звільнення
right-directory-write = налаштування й синхронізація каталогу, ручна зміна користувачів
right-users-offboard = звільнення користувача: виведення з обліку або стирання його пристроїв
right-push-read = перегляд push-сертифіката
right-push-write = завантаження push-сертифіката
right-android-read = перегляд з’єднання з Android Enterprise
right-android-write = під’єднання Android Enterprise, синхронізація пристроїв
right-incidents-read = читання реєстру інцидентів, його історії, доказів і звітів
right-incidents-write = реєстрація й оновлення інцидентів, докази, особисті посилання для повідомлення про втрату, повторна доставка
right-incidents-approve = схвалення або відхилення дій, що чекають другого адміністратора
right-events-read = читання потоку подій і лічильників сервера
right-exports = масовий експорт: реєстр інцидентів, журнал аудиту
right-admins-read = перегляд адміністраторів, груп адміністраторів, ролей, матриці ролей, токенів і сесій
right-admins-manage = створення, вимкнення й увімкнення адміністраторів; скидання паролів і другого фактора; учасники груп; токени й сесії інших
right-roles-manage = зміна ролей і груп, яким їх надано
right-audit-read = читання й перевірка журналу аудиту, щорічний перегляд доступу

## Налаштування
settings-push-topic = Тема (topic)
settings-push-subject = Суб’єкт
settings-push-fingerprint = Відбиток (SHA-256)
settings-push-not-before = Дійсний з
settings-push-not-after = Дійсний до
settings-push-uploaded = Завантажено
settings-push-expired = Строк дії push-сертифіката сплив { $value }: жоден пристрій Apple недосяжний, доки його не поновлено.
settings-push-renew-soon = Строк дії push-сертифіката спливає { $value }. Поновіть його до того в Apple Push Certificates Portal з тим самим Apple ID, зберігши тему.
settings-push-upload = Завантажити push-сертифікат
settings-push-renew = Завантажити поновлений push-сертифікат
settings-push-explain = Надайте сертифікат PEM із закритим ключем, лише сертифікат (для ключа, збереженого командою «mdm push-cert request») або файл PKCS#12 з паролем. Поновлений сертифікат має зберегти тему.
settings-push-pem = Сертифікат і ключ (PEM)
settings-push-certificate-file = Файл сертифіката
settings-push-certificate-text = Або вставте сертифікат
settings-push-key-file = Файл закритого ключа
settings-push-key-text = Або вставте закритий ключ
settings-push-key-hint = Залиште порожнім, якщо запит підготував сервер (ключ збережено).
settings-push-pkcs12 = Або файл PKCS#12
settings-push-pkcs12-file = Файл PKCS#12 (.p12)
settings-push-pkcs12-password = Його пароль
settings-push-submit = Завантажити
settings-push-give-one = Надайте сертифікат (із ключем або сам, для ключа, збереженого сервером) або файл PKCS#12, але не обидва.
settings-push-bad-base64 = Вставлений PKCS#12 не є коректним base64.
settings-push-refused = Push-сертифікат не прийнято: { $value }
settings-push-too-large = Завантаження більше за { $n } КіБ: це не push-сертифікат.
settings-done-push-uploaded = Push-сертифікат встановлено.
settings-android-enterprise = Організація (enterprise)
settings-android-project = Проєкт Google Cloud
settings-android-account = Сервісний обліковий запис
settings-android-connected = Під’єднано
settings-android-topic = Тема Pub/Sub
settings-android-last-sync = Остання синхронізація пристроїв
settings-android-last-pull = Останнє отримання сповіщень
settings-android-signup = Реєстрацію не завершено. Відкрийте це посилання з обліковим записом Google установи:
settings-android-last-error = Остання помилка: { $value }
settings-android-not-connected = Android Enterprise не під’єднано: пристрої Android не можна зареєструвати. Під’єднайте його на сервері командою:

## Користувачі й групи
directory-source = Каталог
directory-not-configured = Каталог не налаштовано. Нижче наведено користувачів, доданих вручну або імпортованих з CSV. Налаштуйте каталог установи на сервері командою:
directory-never-synced = Ще не синхронізовано
directory-url = Адреса
directory-flavor = Тип
directory-base-dn = Базовий DN
directory-bind-dn = Читання від імені
directory-last-sync = Остання синхронізація
directory-last-counts = Зміни останньої синхронізації
directory-next-sync = Наступна синхронізація
directory-no-schedule = Лише на вимогу
directory-configured = Налаштовано
directory-sync-now = Синхронізувати зараз
directory-sync-failed = Синхронізація не вдалася: { $value }
directory-done-synced = Каталог синхронізовано.
directory-users = Користувачі
directory-users-count = { $count ->
    [one] { $n } користувач
    [few] { $n } користувачі
    [many] { $n } користувачів
   *[other] { $n } користувача
}
directory-user-state = Стан
directory-user-active = Активний
directory-user-disabled = Вимкнений
directory-username = Ім’я користувача
directory-display-name = Ім’я
directory-email = Електронна пошта
directory-department = Відділ
directory-groups = Групи
directory-group = Група
directory-origin = Джерело
directory-source-ldap = Каталог
directory-source-csv = Імпорт CSV
directory-source-manual = Вручну
directory-members = Учасники
directory-groups-count = { $count ->
    [one] { $n } група
    [few] { $n } групи
    [many] { $n } груп
   *[other] { $n } групи
}
directory-members-count = { $count ->
    [one] { $n } учасник
    [few] { $n } учасники
    [many] { $n } учасників
   *[other] { $n } учасника
}
audit-chain-unchecked = Ще не перевірено
audit-chain-unchecked-hint = Перевірка читає весь журнал: натисніть «Перевірити», щоб зараз перевірити зв'язок кожного запису.
settings-done-android-connected = Під'єднано до Google. Відкрийте посилання реєстрації, щоб створити організацію.
settings-android-connect = Під'єднати до Google
settings-android-new-key = Замінити ключ службового облікового запису
settings-android-explain = JSON-ключ службового облікового запису проєкту Google Cloud з увімкненим Android Management API; тема й підписка Pub/Sub необов'язкові (без них пристрої синхронізуються періодично).
settings-android-key-file = Файл ключа службового облікового запису (JSON)
settings-android-key-text = Або вставте ключ
settings-android-topic-field = Тема Pub/Sub
settings-android-subscription-field = Підписка Pub/Sub
settings-android-connect-submit = Під'єднати
settings-android-bad-key = Ключ не у форматі JSON: { $value }
settings-android-give-key = Виберіть файл ключа або вставте ключ.
