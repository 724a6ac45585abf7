# Повідомлення консолі українською (кожне з en.ftl; тест порівнює каталоги).
product = Консоль MDM
skip-to-content = Перейти до змісту
nav-label = Головне
nav-dashboard = Огляд
nav-devices = Пристрої
nav-enrollments = Реєстрації
nav-incidents = Реєстр інцидентів
language = Мова
language-apply = Застосувати
signed-in-as = Ви увійшли як { $value }
logout = Вийти
back = Назад
back-to-dashboard = Повернутися до огляду
back-to-devices = Повернутися до пристроїв
continue = Далі
none = Немає
previous = Попередня сторінка
next = Наступна сторінка
pages = Сторінки
search = Пошук
select-all = Вибрати всі
select-device = Вибрати { $value }
device = Пристрій
approve = Схвалити
deny = Відхилити

## Місяці
month-1 = січ.
month-2 = лют.
month-3 = бер.
month-4 = квіт.
month-5 = трав.
month-6 = черв.
month-7 = лип.
month-8 = серп.
month-9 = вер.
month-10 = жовт.
month-11 = лист.
month-12 = груд.

## Вхід
login-title = Вхід
username = Ім'я користувача
password = Пароль
login-submit = Увійти
login-refused = Неправильне ім'я користувача або пароль.
login-locked = Забагато невдалих спроб входу: зачекайте кілька хвилин і спробуйте знову.
login-expired = Сеанс завершився. Увійдіть знову.
totp-title = Другий фактор
totp-explain = Введіть 6-значний код із застосунку автентифікації або один із кодів відновлення.
totp-code = Код
totp-submit = Перевірити
totp-refused = Код не прийнято. Введіть поточний код.
password-title = Зміна пароля
password-forced = Перш ніж продовжити, потрібно встановити новий пароль.
password-current = Поточний пароль
password-new = Новий пароль
password-confirm = Повторіть новий пароль
password-submit = Змінити пароль
password-mismatch = Нові паролі не збігаються.
password-rule = { $count ->
    [one] Щонайменше { $n } символ.
    [few] Щонайменше { $n } символи.
    [many] Щонайменше { $n } символів.
   *[other] Щонайменше { $n } символу.
}
enrol-title = Налаштування другого фактора
enrol-explain = Відскануйте цей QR-код застосунком автентифікації (наприклад, FreeOTP або Google Authenticator), а потім введіть показаний код.
enrol-qr-alt = QR-код для застосунку автентифікації
enrol-secret = Або введіть цей ключ:
enrol-uri = Показати посилання otpauth
enrol-submit = Увімкнути
recovery-title = Ваші коди відновлення
recovery-explain = Зберігайте ці коди в безпечному місці. Кожен дає змогу увійти один раз, якщо ви загубите телефон. Їх більше не буде показано.

## Повідомлення після дії
done-locked = Блокування надіслано на пристрій.
done-wipe-queued = Стирання надіслано на пристрій.
done-lost-mode = Режим втраченого пристрою надіслано.
done-queued = Команду додано до черги.
done-revoked = Відкликано.
done-created = Створено.
done-filed = Інцидент внесено до реєстру.
done-classified = Інцидент класифіковано.
done-closed = Інцидент закрито.
done-password-changed = Пароль змінено.
done-totp-enabled = Другий фактор увімкнено.
done-language = Мову збережено.
done-action-recorded = Дію реагування записано.

## Помилки
error-forbidden = Немає дозволу
error-forbidden-text = Ваші ролі не надають потрібного права.
error-csrf = Термін дії форми минув
error-csrf-text = Маркер безпеки сторінки відсутній або застарів. Поверніться, оновіть сторінку й спробуйте знову.
error-not-found = Не знайдено
error-not-found-text = Такої сторінки або запису немає.
error-bad-request = Запит не зрозуміло
error-refused = Сервер відмовив
error-internal = Щось пішло не так
error-internal-text = Сервер не зміг показати цю сторінку. Помилку записано в журнал.
field-not-a-number = { $value } має бути цілим числом.

## Огляд
fleet = Парк пристроїв
fleet-total = Пристрої
fleet-noncompliant = Невідповідні
platform-apple = Apple
platform-android = Android
incidents-by-level = Відкриті інциденти за рівнем
incidents-open = { $count ->
    [one] { $n } відкритий інцидент
    [few] { $n } відкриті інциденти
    [many] { $n } відкритих інцидентів
   *[other] { $n } відкритого інциденту
}
health = З'єднання
health-push = Push-сертифікат Apple
health-google = Google (Android Enterprise)
health-ok = Гаразд
health-missing = Відсутній
health-expired = Прострочений
health-expiring = Незабаром спливає
health-failing = Збій
health-signup-pending = Реєстрацію не завершено
health-not-connected = Не під'єднано
health-push-missing = Немає push-сертифіката: пристрої Apple недосяжні.
health-google-missing = Пристрої Android не можна зареєструвати, доки не під'єднано організацію.
health-expires-on = Спливає { $value }
health-expired-on = Сплив { $value }
days-left = { $count ->
    [one] залишився { $n } день
    [few] залишилося { $n } дні
    [many] залишилося { $n } днів
   *[other] залишилося { $n } дня
}
level-0 = некритичний
level-1 = низький
level-2 = середній
level-3 = високий
level-4 = критичний
level-5 = надзвичайний

## Пристрої
devices-count = { $count ->
    [one] { $n } пристрій
    [few] { $n } пристрої
    [many] { $n } пристроїв
   *[other] { $n } пристрою
}
filter-any = Будь-яка
filter-platform = Платформа
filter-compliance = Відповідність
filter-user = Користувач
filter-group = Група
filter-apply = Фільтрувати
compliance-compliant = Відповідає
compliance-noncompliant = Не відповідає
compliance-unknown = Не оцінено
compliance-checked = Остання оцінка: { $value }
device-name = Назва
device-platform = Платформа
device-model = Модель
device-os = Операційна система
device-serial = Серійний номер
device-udid = UDID
device-imei = IMEI
device-user = Користувач
device-group = Група
device-enrolled-at = Зареєстровано
device-last-seen = Востаннє на зв'язку
device-identity = Ідентичність пристрою
device-compliance = Відповідність
device-facts = Відомості
device-actions = Дії
device-history = Історія команд
identity-revoked = Відкликано
identity-valid-until = Дійсна до { $value }
lock-title = Блокування
lock-message = Повідомлення на екрані блокування
lock-phone = Номер телефону на екрані блокування
lock-submit = Заблокувати пристрій
wipe-title = Стирання
wipe-warning = Стирає все на пристрої й повертає заводські налаштування. Цю дію не можна скасувати.
wipe-type-serial = Для підтвердження введіть серійний номер пристрою
wipe-type-id = Для підтвердження введіть ідентифікатор пристрою (він ще не повідомив серійного номера)
wipe-submit = Стерти пристрій
wipe-refused = Не стерто: { $value }
command-type = Команда
command-status = Стан
command-created = У черзі з
command-by = Хто
command-completed = Завершено
command-result = Результат
status-pending = У черзі
status-sent = Надіслано
status-notnow = Пристрій зайнятий
status-acknowledged = Виконано
status-error = Помилка
status-commandformaterror = Відхилено пристроєм
status-cancelled = Скасовано
status-expired = Прострочено
bulk-action = З вибраними пристроями
bulk-query = Оновити відомості
bulk-lock = Заблокувати
bulk-submit = Виконати
bulk-none-selected = Виберіть принаймні один пристрій.
bulk-unknown-action = Невідома дія.
bulk-not-apple = відомості оновлює сам застосунок Android Device Policy
bulk-refused = Не надіслано
progress-title = Перебіг
progress-refresh = Оновити
commands-count = { $count ->
    [one] { $n } команду завершено
    [few] { $n } команди завершено
    [many] { $n } команд завершено
   *[other] { $n } команди завершено
}

## Реєстрації
enrollment-new = Нова реєстрація
enrollment-name = Назва
enrollment-hours = Дійсна протягом (годин)
enrollment-max_uses = Кількість пристроїв (порожньо: без обмеження)
enrollment-user = Для користувача
enrollment-group = До групи
enrollment-create = Створити
enrollment-state = Стан
enrollment-uses = Зареєстровані пристрої
enrollment-expires = Спливає
enrollment-url = Адреса
enrollment-active = Активна
enrollment-expired = Прострочена
enrollment-revoked = Відкликана
enrollment-used-up = Використана
enrollment-show-all = Показати також прострочені й відкликані
enrollment-show-active = Показати лише активні
enrollment-qr-alt = QR-код реєстрації { $value }
enrollment-how-apple = Відкрийте камеру на iPhone або iPad, відскануйте код і встановіть профіль у Параметрах.
enrollment-how-android = На новому або скинутому телефоні Android торкніться екрана привітання шість разів, а потім відскануйте код.
enrollment-print = Версія для друку
enrollment-revoke = Відкликати

## Реєстр інцидентів
incidents-count = { $count ->
    [one] { $n } інцидент
    [few] { $n } інциденти
    [many] { $n } інцидентів
   *[other] { $n } інциденту
}
incident-number = № { $value }:
incident-file = Зареєструвати інцидент
incident-file-submit = Зареєструвати
incident-type-hint = Коротка назва, наприклад lost_device або stolen_device.
incident-devices-hint = Ідентифікатори пристроїв через кому.
incident-bad-date = Очікувана дата завершення не є датою.
incident-classify = Класифікація
incident-classify-submit = Зберегти класифікацію
incident-action = Записати дію реагування
incident-action-description = Що зроблено
incident-action-submit = Записати
incident-close = Закриття
incident-closing-report = Підсумковий звіт
incident-close-submit = Закрити інцидент
incident-approvals = Дії, що чекають на схвалення
incident-evidence = Докази
incident-history = Історія
incident-status-not-started = Не розпочато
incident-status-in-progress = Виконується
incident-status-completed = Завершено
classification-reported = Повідомлено
classification-confirmed = Підтверджено
classification-rejected = Відхилено
register-columns = Запис у реєстрі
register-number = №
register-name = Назва інциденту
register-type = Тип
register-level = Рівень
register-classification = Класифікація
register-plan = План дій реагування
register-actions = Дата й час дій реагування
register-expected = Очікуване завершення всіх дій реагування
register-resources = Технічні, програмні й фінансові ресурси
register-evidence-procedure = Порядок збирання доказів
register-evidence-location = Місце зберігання доказів
register-responsible = Відповідальна особа
register-status = Стан
register-comments = Коментарі
register-devices = Пристрої
register-detected = Виявлено
register-source = Джерело виявлення
evidence-kind = Вид
evidence-source = Джерело
evidence-collected = Зібрано
history-at = Коли
history-change = Зміна
export-csv = Експорт CSV
export-json = Експорт JSON
export-pdf = Звіт (PDF)
done-evidence-collected = Доказ зібрано; його SHA-256 у списку.
evidence-collect = Зібрати доказ
evidence-device-facts = Запис пристрою (відомості, відповідність, ідентичність)
evidence-events = Події пристрою
evidence-note = Письмова нотатка
evidence-note-text = Нотатка (для письмової нотатки)
evidence-collect-submit = Зібрати
