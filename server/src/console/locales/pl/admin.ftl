# Strony administracyjne konsoli (dziennik audytu, administratorzy i role, ustawienia,
# użytkownicy i grupy) po polsku: każdy komunikat z en; test porównuje katalogi.
nav-audit = Dziennik audytu
nav-admins = Administratorzy i role
nav-settings = Ustawienia
nav-directory = Użytkownicy i grupy

## Dziennik audytu
audit-chain = Integralność dziennika audytu
audit-chain-intact = Zweryfikowany
audit-chain-broken = Naruszony
audit-chain-records = { $count ->
    [one] Sprawdzono { $n } wpis; wszystkie ogniwa są spójne.
    [few] Sprawdzono { $n } wpisy; wszystkie ogniwa są spójne.
    [many] Sprawdzono { $n } wpisów; wszystkie ogniwa są spójne.
   *[other] Sprawdzono { $n } wpisu; wszystkie ogniwa są spójne.
}
audit-chain-problems = { $count ->
    [one] Znaleziono { $n } problem:
    [few] Znaleziono { $n } problemy:
    [many] Znaleziono { $n } problemów:
   *[other] Znaleziono { $n } problemu:
}
audit-chain-head = Czoło łańcucha (wpis · skrót): { $value }
audit-chain-where = Gdzie łańcuch jest naruszony
audit-anchor = Opublikowana kotwica
audit-anchor-hint = Opcjonalnie: SEQ:HASH ze zdarzenia audit.anchor, aby sprawdzić, czy łańcuch nadal ją zawiera.
audit-anchor-invalid = Kotwica nie została sprawdzona: { $value }
audit-anchor-found = Kotwica { $value } nadal jest w łańcuchu.
audit-anchor-missing = Kotwicy { $value } nie ma już w łańcuchu.
audit-verify = Sprawdź
audit-records = Wpisy
audit-records-count = { $count ->
    [one] { $n } wpis
    [few] { $n } wpisy
    [many] { $n } wpisów
   *[other] { $n } wpisu
}
audit-export-csv = Eksportuj cały dziennik (CSV)
audit-seq = Nr
audit-at = Kiedy
audit-actor = Kto
audit-address = Skąd
audit-action = Działanie
audit-outcome = Wynik
audit-outcome-success = Powodzenie
audit-outcome-failure = Niepowodzenie
audit-outcome-denied = Odmowa
audit-newer = Nowsze wpisy
audit-older = Starsze wpisy

## Administratorzy i role
admins-accounts = Konta administratorów
admins-count = { $count ->
    [one] { $n } administrator
    [few] { $n } administratorów
    [many] { $n } administratorów
   *[other] { $n } administratora
}
admins-name = Nazwa użytkownika
admins-display-name = Imię i nazwisko
admins-groups = Grupy
admins-roles = Role
admins-mfa = Drugi składnik
admins-mfa-on = Włączony
admins-mfa-off = Wyłączony
admins-last-login = Ostatnie logowanie
admins-state = Stan
admins-active = Aktywne
admins-disabled = Wyłączone
admins-actions = Działania
admins-disable = Wyłącz
admins-disable-reason = Powód wyłączenia konta { $value }
admins-reason = Powód (opcjonalnie)
admins-enable = Włącz
admins-reset-mfa = Zresetuj drugi składnik
admins-disable-hint = Wyłączenie od razu kończy sesje i unieważnia tokeny administratora oraz usuwa go z grup; ponowne włączenie nie przywraca grup. Reset drugiego składnika kończy jego sesje; przy następnym logowaniu skonfiguruje nowy.
admins-done-disabled = Konto { $value } zostało wyłączone; jego sesje zakończono.
admins-done-enabled = Konto { $value } zostało ponownie włączone. Dodaj je do grup, aby nadać mu uprawnienia.
admins-done-mfa-reset = Drugi składnik konta { $value } został zresetowany.
admins-roles-heading = Role
admins-role = Rola
admins-role-description = Komu jest nadawana
admins-critical = Krytyczna
admins-critical-yes = Krytyczna
admins-critical-no = Niekrytyczna
admins-granted-to = Nadana grupom
admins-rights = Uprawnienia
admins-rights-count = { $count ->
    [one] { $n } uprawnienie
    [few] { $n } uprawnienia
    [many] { $n } uprawnień
   *[other] { $n } uprawnienia
}
admins-matrix = Macierz ról
admins-matrix-hint = Która rola daje które uprawnienie. Role krytyczne (*) wymagają drugiego składnika.
admins-matrix-csv = Eksportuj CSV
admins-right = Uprawnienie
admins-granted = nadane
admins-not-granted = nienadane
right-devices-read = przeglądanie urządzeń, ich poleceń i prób powiadomień push
right-devices-query = wysyłanie zapytań o informacje (informacje o urządzeniu, zabezpieczeniach, profilach i inne)
right-devices-lock = blokowanie urządzenia
right-devices-lost-mode = tryb utraconego urządzenia: włączanie i wyłączanie, lokalizowanie, odtwarzanie dźwięku
right-devices-wipe = wymazywanie urządzenia
right-devices-manage = wycofywanie, unieważnianie i usuwanie urządzeń, zatwierdzanie ponownych rejestracji, wysyłanie push na żądanie
right-commands-send = wszystkie inne polecenia (profile, restart, kod blokady, surowe) i anulowanie poleceń
right-enrollments-read = przeglądanie rejestracji
right-enrollments-write = tworzenie i unieważnianie rejestracji
right-policies-read = odczyt polityk, grup urządzeń i zgodności
right-policies-write = zmiana polityk, przypisań i grup urządzeń; dostarczanie
right-directory-read = odczyt użytkowników i grup z katalogu, listy do wyrejestrowania
right-directory-write = konfiguracja i synchronizacja katalogu, ręczna zmiana użytkowników
right-users-offboard = wyrejestrowanie użytkownika: wycofanie lub wymazanie jego urządzeń
right-push-read = wyświetlanie certyfikatu push
right-push-write = wgrywanie certyfikatu push
right-android-read = wyświetlanie połączenia z Android Enterprise
right-android-write = łączenie z Android Enterprise, synchronizacja urządzeń
right-incidents-read = odczyt rejestru incydentów, jego historii, dowodów i raportów
right-incidents-write = zgłaszanie i aktualizowanie incydentów, dowody, osobiste linki zgłoszeń utraty, ponawianie dostarczeń
right-incidents-approve = zatwierdzanie lub odrzucanie działań czekających na drugiego administratora
right-events-read = odczyt strumienia zdarzeń i liczników serwera
right-exports = eksporty zbiorcze: rejestr incydentów, dziennik audytu
right-admins-read = przeglądanie administratorów, grup administratorów, ról, macierzy ról, tokenów i sesji
right-admins-manage = tworzenie, wyłączanie i włączanie administratorów; reset haseł i drugiego składnika; członkowie grup; tokeny i sesje innych
right-roles-manage = zmiana ról i grup, które je posiadają
right-audit-read = odczyt i weryfikacja dziennika audytu, roczny przegląd uprawnień

## Ustawienia
settings-push-topic = Temat (topic)
settings-push-subject = Podmiot
settings-push-fingerprint = Odcisk (SHA-256)
settings-push-not-before = Ważny od
settings-push-not-after = Ważny do
settings-push-uploaded = Wgrany
settings-push-expired = Certyfikat push wygasł { $value }: żadne urządzenie Apple nie jest osiągalne, dopóki nie zostanie odnowiony.
settings-push-renew-soon = Certyfikat push wygasa { $value }. Odnów go wcześniej w Apple Push Certificates Portal tym samym Apple ID, zachowując temat.
settings-push-upload = Wgraj certyfikat push
settings-push-renew = Wgraj odnowiony certyfikat push
settings-push-explain = Podaj certyfikat PEM z kluczem prywatnym, sam certyfikat (dla klucza zachowanego przez „mdm push-cert request”) albo plik PKCS#12 z hasłem. Odnowiony certyfikat musi mieć ten sam temat.
settings-push-pem = Certyfikat i klucz (PEM)
settings-push-certificate-file = Plik certyfikatu
settings-push-certificate-text = Albo wklej certyfikat
settings-push-key-file = Plik klucza prywatnego
settings-push-key-text = Albo wklej klucz prywatny
settings-push-key-hint = Zostaw puste, jeśli żądanie przygotował serwer (zachował klucz).
settings-push-pkcs12 = Albo plik PKCS#12
settings-push-pkcs12-file = Plik PKCS#12 (.p12)
settings-push-pkcs12-password = Jego hasło
settings-push-submit = Wgraj
settings-push-give-one = Podaj certyfikat (z kluczem albo sam, dla klucza zachowanego przez serwer) albo plik PKCS#12, nie oba naraz.
settings-push-bad-base64 = Wklejony PKCS#12 nie jest poprawnym base64.
settings-push-refused = Certyfikat push nie został przyjęty: { $value }
settings-push-too-large = Przesłany plik przekracza { $n } KiB: to nie jest certyfikat push.
settings-done-push-uploaded = Certyfikat push został zainstalowany.
settings-android-enterprise = Organizacja (enterprise)
settings-android-project = Projekt Google Cloud
settings-android-account = Konto usługi
settings-android-connected = Połączono
settings-android-topic = Temat Pub/Sub
settings-android-last-sync = Ostatnia synchronizacja urządzeń
settings-android-last-pull = Ostatnie pobranie powiadomień
settings-android-signup = Rejestracja nie została dokończona. Otwórz ten link na koncie Google urzędu:
settings-android-last-error = Ostatni błąd: { $value }
settings-android-not-connected = Android Enterprise nie jest połączony: nie można rejestrować urządzeń z Androidem. Połącz go na serwerze poleceniem:

## Użytkownicy i grupy
directory-source = Katalog
directory-not-configured = Nie skonfigurowano katalogu. Poniżej są użytkownicy dodani ręcznie lub zaimportowani z CSV. Skonfiguruj katalog urzędu na serwerze poleceniem:
directory-never-synced = Jeszcze nie synchronizowano
directory-url = Adres
directory-flavor = Rodzaj
directory-base-dn = Bazowy DN
directory-bind-dn = Odczyt jako
directory-last-sync = Ostatnia synchronizacja
directory-last-counts = Zmiany ostatniej synchronizacji
directory-next-sync = Następna synchronizacja
directory-no-schedule = Tylko na żądanie
directory-configured = Skonfigurowano
directory-sync-now = Synchronizuj teraz
directory-sync-failed = Synchronizacja nie powiodła się: { $value }
directory-done-synced = Katalog został zsynchronizowany.
directory-users = Użytkownicy
directory-users-count = { $count ->
    [one] { $n } użytkownik
    [few] { $n } użytkowników
    [many] { $n } użytkowników
   *[other] { $n } użytkownika
}
directory-user-state = Stan
directory-user-active = Aktywny
directory-user-disabled = Wyłączony
directory-username = Nazwa użytkownika
directory-display-name = Imię i nazwisko
directory-email = E-mail
directory-department = Wydział
directory-groups = Grupy
directory-group = Grupa
directory-origin = Źródło
directory-source-ldap = Katalog
directory-source-csv = Import CSV
directory-source-manual = Ręcznie
directory-members = Członkowie
directory-groups-count = { $count ->
    [one] { $n } grupa
    [few] { $n } grupy
    [many] { $n } grup
   *[other] { $n } grupy
}
directory-members-count = { $count ->
    [one] { $n } członek
    [few] { $n } członków
    [many] { $n } członków
   *[other] { $n } członka
}
audit-chain-unchecked = Jeszcze nie sprawdzono
audit-chain-unchecked-hint = Sprawdzenie czyta cały dziennik: naciśnij Sprawdź, aby teraz zweryfikować powiązanie każdego wpisu.
settings-done-android-connected = Połączono z Google. Otwórz link rejestracji, aby utworzyć organizację.
settings-android-connect = Połącz z Google
settings-android-new-key = Wymień klucz konta usługi
settings-android-explain = Klucz JSON konta usługi z projektu Google Cloud z włączonym Android Management API; temat i subskrypcja Pub/Sub są opcjonalne (bez nich urządzenia są synchronizowane okresowo).
settings-android-key-file = Plik klucza konta usługi (JSON)
settings-android-key-text = Albo wklej klucz
settings-android-topic-field = Temat Pub/Sub
settings-android-subscription-field = Subskrypcja Pub/Sub
settings-android-connect-submit = Połącz
settings-android-bad-key = Klucz nie jest w formacie JSON: { $value }
settings-android-give-key = Wybierz plik klucza albo wklej klucz.
