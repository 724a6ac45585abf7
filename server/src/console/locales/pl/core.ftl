# Komunikaty konsoli po polsku (każdy z en.ftl; test porównuje katalogi).
product = Konsola MDM
skip-to-content = Przejdź do treści
nav-label = Główne
nav-dashboard = Pulpit
nav-devices = Urządzenia
nav-enrollments = Rejestracje
nav-incidents = Rejestr incydentów
language = Język
language-apply = Zastosuj
signed-in-as = Zalogowano jako { $value }
logout = Wyloguj
back = Wstecz
back-to-dashboard = Wróć do pulpitu
back-to-devices = Wróć do urządzeń
continue = Dalej
none = Brak
previous = Poprzednia strona
next = Następna strona
pages = Strony
search = Szukaj
select-all = Zaznacz wszystkie
select-device = Zaznacz { $value }
device = Urządzenie
approve = Zatwierdź
deny = Odrzuć

## Miesiące
month-1 = sty
month-2 = lut
month-3 = mar
month-4 = kwi
month-5 = maj
month-6 = cze
month-7 = lip
month-8 = sie
month-9 = wrz
month-10 = paź
month-11 = lis
month-12 = gru

## Logowanie
login-title = Logowanie
username = Nazwa użytkownika
password = Hasło
login-submit = Zaloguj
login-refused = Błędna nazwa użytkownika lub hasło.
login-locked = Zbyt wiele nieudanych logowań: odczekaj kilka minut i spróbuj ponownie.
login-expired = Sesja wygasła. Zaloguj się ponownie.
totp-title = Drugi składnik
totp-explain = Wpisz 6-cyfrowy kod z aplikacji uwierzytelniającej albo jeden z kodów odzyskiwania.
totp-code = Kod
totp-submit = Sprawdź
totp-refused = Kod nie został przyjęty. Wpisz bieżący kod.
password-title = Zmiana hasła
password-forced = Zanim przejdziesz dalej, musisz ustawić nowe hasło.
password-current = Obecne hasło
password-new = Nowe hasło
password-confirm = Powtórz nowe hasło
password-submit = Zmień hasło
password-mismatch = Nowe hasła różnią się.
password-rule = { $count ->
    [one] Co najmniej { $n } znak.
    [few] Co najmniej { $n } znaki.
    [many] Co najmniej { $n } znaków.
   *[other] Co najmniej { $n } znaku.
}
enrol-title = Konfiguracja drugiego składnika
enrol-explain = Zeskanuj ten kod QR aplikacją uwierzytelniającą (na przykład FreeOTP lub Google Authenticator), a potem wpisz pokazany kod.
enrol-qr-alt = Kod QR dla aplikacji uwierzytelniającej
enrol-secret = Albo wpisz ten klucz:
enrol-uri = Pokaż link otpauth
enrol-submit = Włącz
recovery-title = Twoje kody odzyskiwania
recovery-explain = Przechowuj te kody w bezpiecznym miejscu. Każdy pozwala zalogować się raz, jeśli zgubisz telefon. Nie zostaną pokazane ponownie.

## Komunikaty po działaniu
done-locked = Blokada została wysłana do urządzenia.
done-wipe-queued = Polecenie wymazania zostało wysłane do urządzenia.
done-lost-mode = Tryb utraconego urządzenia został wysłany.
done-queued = Polecenie dodano do kolejki.
done-revoked = Unieważniono.
done-created = Utworzono.
done-filed = Incydent wpisano do rejestru.
done-classified = Incydent został sklasyfikowany.
done-closed = Incydent został zamknięty.
done-password-changed = Hasło zostało zmienione.
done-totp-enabled = Drugi składnik jest włączony.
done-language = Zapisano język.
done-action-recorded = Działanie naprawcze zostało zapisane.

## Błędy
error-forbidden = Brak uprawnień
error-forbidden-text = Twoje role nie dają uprawnienia, którego to wymaga.
error-csrf = Formularz wygasł
error-csrf-text = Brak tokenu bezpieczeństwa strony lub jest nieaktualny. Wróć, odśwież stronę i spróbuj ponownie.
error-not-found = Nie znaleziono
error-not-found-text = Nie ma takiej strony ani rekordu.
error-bad-request = Nie zrozumiano żądania
error-refused = Serwer odmówił
error-internal = Coś poszło nie tak
error-internal-text = Serwer nie mógł wyświetlić tej strony. Błąd został zapisany w dzienniku.
field-not-a-number = { $value } musi być liczbą całkowitą.

## Pulpit
fleet = Flota
fleet-total = Urządzenia
fleet-noncompliant = Niezgodne
platform-apple = Apple
platform-android = Android
incidents-by-level = Otwarte incydenty według poziomu
incidents-open = { $count ->
    [one] { $n } otwarty incydent
    [few] { $n } otwarte incydenty
    [many] { $n } otwartych incydentów
   *[other] { $n } otwartego incydentu
}
health = Połączenia
health-push = Certyfikat push Apple
health-google = Google (Android Enterprise)
health-ok = OK
health-missing = Brak
health-expired = Wygasł
health-expiring = Wkrótce wygaśnie
health-failing = Błąd
health-signup-pending = Rejestracja niezakończona
health-not-connected = Niepołączono
health-push-missing = Brak certyfikatu push: urządzenia Apple są nieosiągalne.
health-google-missing = Urządzeń z Androidem nie można rejestrować, dopóki organizacja nie zostanie połączona.
health-expires-on = Wygasa { $value }
health-expired-on = Wygasł { $value }
days-left = { $count ->
    [one] został { $n } dzień
    [few] zostały { $n } dni
    [many] zostało { $n } dni
   *[other] zostało { $n } dnia
}
level-0 = niekrytyczny
level-1 = niski
level-2 = średni
level-3 = wysoki
level-4 = krytyczny
level-5 = alarmowy

## Urządzenia
devices-count = { $count ->
    [one] { $n } urządzenie
    [few] { $n } urządzenia
    [many] { $n } urządzeń
   *[other] { $n } urządzenia
}
filter-any = Dowolne
filter-platform = Platforma
filter-compliance = Zgodność
filter-user = Użytkownik
filter-group = Grupa
filter-apply = Filtruj
compliance-compliant = Zgodne
compliance-noncompliant = Niezgodne
compliance-unknown = Nieocenione
compliance-checked = Ostatnia ocena: { $value }
device-name = Nazwa
device-platform = Platforma
device-model = Model
device-os = System operacyjny
device-serial = Numer seryjny
device-udid = UDID
device-imei = IMEI
device-user = Użytkownik
device-group = Grupa
device-enrolled-at = Zarejestrowano
device-last-seen = Ostatnio widziane
device-identity = Tożsamość urządzenia
device-compliance = Zgodność
device-facts = Informacje
device-actions = Działania
device-history = Historia poleceń
identity-revoked = Unieważniona
identity-valid-until = Ważna do { $value }
lock-title = Blokada
lock-message = Komunikat na ekranie blokady
lock-phone = Numer telefonu na ekranie blokady
lock-submit = Zablokuj urządzenie
wipe-title = Wymazanie
wipe-warning = Usuwa wszystko z urządzenia i przywraca ustawienia fabryczne. Tego nie można cofnąć.
wipe-type-serial = Aby potwierdzić, wpisz numer seryjny urządzenia
wipe-type-id = Aby potwierdzić, wpisz identyfikator urządzenia (nie zgłosiło jeszcze numeru seryjnego)
wipe-submit = Wymaż urządzenie
wipe-refused = Nie wymazano: { $value }
command-type = Polecenie
command-status = Stan
command-created = W kolejce od
command-by = Kto
command-completed = Zakończono
command-result = Wynik
status-pending = W kolejce
status-sent = Wysłane
status-notnow = Urządzenie zajęte
status-acknowledged = Wykonane
status-error = Błąd
status-commandformaterror = Odrzucone przez urządzenie
status-cancelled = Anulowane
status-expired = Wygasłe
bulk-action = Z zaznaczonymi urządzeniami
bulk-query = Odśwież informacje
bulk-lock = Zablokuj
bulk-submit = Wykonaj
bulk-none-selected = Zaznacz co najmniej jedno urządzenie.
bulk-unknown-action = Nieznane działanie.
bulk-not-apple = informacje odświeża sama aplikacja Android Device Policy
bulk-refused = Nie wysłano
progress-title = Postęp
progress-refresh = Odśwież
commands-count = { $count ->
    [one] { $n } polecenie zakończone
    [few] { $n } polecenia zakończone
    [many] { $n } poleceń zakończonych
   *[other] { $n } polecenia zakończonego
}

## Rejestracje
enrollment-new = Nowa rejestracja
enrollment-name = Nazwa
enrollment-hours = Ważna przez (godziny)
enrollment-max_uses = Liczba urządzeń (puste: bez limitu)
enrollment-user = Dla użytkownika
enrollment-group = Do grupy
enrollment-create = Utwórz
enrollment-state = Stan
enrollment-uses = Zarejestrowane urządzenia
enrollment-expires = Wygasa
enrollment-url = Adres
enrollment-active = Aktywna
enrollment-expired = Wygasła
enrollment-revoked = Unieważniona
enrollment-used-up = Wykorzystana
enrollment-show-all = Pokaż też wygasłe i unieważnione
enrollment-show-active = Pokaż tylko aktywne
enrollment-qr-alt = Kod QR rejestracji { $value }
enrollment-how-apple = Otwórz aparat na iPhonie lub iPadzie, zeskanuj kod i zainstaluj profil w Ustawieniach.
enrollment-how-android = Na nowym lub zresetowanym telefonie z Androidem dotknij ekranu powitalnego sześć razy, a potem zeskanuj kod.
enrollment-print = Widok do druku
enrollment-revoke = Unieważnij

## Rejestr incydentów
incidents-count = { $count ->
    [one] { $n } incydent
    [few] { $n } incydenty
    [many] { $n } incydentów
   *[other] { $n } incydentu
}
incident-number = Lp. { $value }:
incident-file = Zgłoś incydent
incident-file-submit = Zgłoś
incident-type-hint = Krótka nazwa, na przykład lost_device lub stolen_device.
incident-devices-hint = Identyfikatory urządzeń oddzielone przecinkami.
incident-bad-date = Przewidywana data zakończenia nie jest datą.
incident-classify = Klasyfikacja
incident-classify-submit = Zapisz klasyfikację
incident-action = Zapisz działanie naprawcze
incident-action-description = Co zrobiono
incident-action-submit = Zapisz
incident-close = Zamknięcie
incident-closing-report = Raport zamknięcia
incident-close-submit = Zamknij incydent
incident-approvals = Działania czekające na zatwierdzenie
incident-evidence = Dowody
incident-history = Historia
incident-status-not-started = Nierozpoczęty
incident-status-in-progress = W toku
incident-status-completed = Zakończony
classification-reported = Zgłoszony
classification-confirmed = Potwierdzony
classification-rejected = Odrzucony
register-columns = Wpis w rejestrze
register-number = Lp.
register-name = Nazwa incydentu
register-type = Rodzaj
register-level = Poziom
register-classification = Klasyfikacja
register-plan = Plan działań naprawczych
register-actions = Data i godzina działań naprawczych
register-expected = Przewidywany termin zakończenia wszystkich działań
register-resources = Zasoby techniczne, programowe i finansowe
register-evidence-procedure = Procedura zbierania dowodów
register-evidence-location = Miejsce przechowywania dowodów
register-responsible = Osoba odpowiedzialna
register-status = Stan
register-comments = Uwagi
register-devices = Urządzenia
register-detected = Wykryto
register-source = Źródło wykrycia
evidence-kind = Rodzaj
evidence-source = Źródło
evidence-collected = Zebrano
history-at = Kiedy
history-change = Zmiana
export-csv = Eksport CSV
export-json = Eksport JSON
export-pdf = Raport (PDF)
done-evidence-collected = Zebrano dowód; jego SHA-256 jest na liście.
evidence-collect = Zbierz dowód
evidence-device-facts = Rekord urządzenia (informacje, zgodność, tożsamość)
evidence-events = Zdarzenia urządzenia
evidence-note = Notatka pisemna
evidence-note-text = Notatka (dla notatki pisemnej)
evidence-collect-submit = Zbierz
