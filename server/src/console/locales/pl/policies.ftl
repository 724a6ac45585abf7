# Zasady i grupy urządzeń (server/src/console/policies.rs).
nav-policies = Zasady
cancel = Anuluj
minutes = { $count ->
    [one] { $n } minuta
    [few] { $n } minuty
    [many] { $n } minut
   *[other] { $n } minuty
}
done-group-created = Utworzono grupę urządzeń.
done-policy-saved = Zasady zapisano; trwa ich dostarczanie.
done-assigned = Zasady przypisano.
done-unassigned = Przypisanie usunięto.
policy-new = Nowe zasady
policy-title = Zasady { $value }
policy-preview-title = Przejrzyj zmiany w { $value }
policy-name = Nazwa
policy-version = Wersja
policy-updated = Zmieniono
policy-assigned-to = Przypisane do
policy-current-version = Bieżąca wersja: { $value }
policy-description = Opis
policy-form = Edycja w formularzu
policy-file = Edycja pliku
policy-form-hint = Formularz zmienia nazwę, opis i zasady kodu dostępu; Wi-Fi, pocztę i certyfikaty edytuje się w pliku.
policy-format = Format
policy-text = Plik zasad
policy-preview = Sprawdź i pokaż podgląd
policy-passcode = Kod dostępu
passcode-required = Kod dostępu jest wymagany
passcode-min-length = Minimalna długość (od 4 do 16)
passcode-alphanumeric = Wymagane litery, nie tylko cyfry
passcode-allow-simple = Dozwolone proste kody (1111, 1234)
passcode-auto-lock = Automatyczna blokada po
passcode-max-failed = Nieudane próby przed wymazaniem urządzenia (od 2 do 11)
passcode-max-age = Dni do wymaganej zmiany kodu
passcode-history = Wcześniejsze kody, których nie można użyć ponownie
passcode-grace = Minuty po zablokowaniu, zanim urządzenie zapyta o kod (od 0 do 240)
policy-not-a-number = musi być liczbą całkowitą
policy-allowed = dozwolone:
policy-invalid = { $count ->
    [one] Zasady zawierają { $n } błąd; niczego nie zapisano.
    [few] Zasady zawierają { $n } błędy; niczego nie zapisano.
    [many] Zasady zawierają { $n } błędów; niczego nie zapisano.
   *[other] Zasady zawierają { $n } błędu; niczego nie zapisano.
}
policy-name-fixed = Te zasady nazywają się { $value }; zasady o innej nazwie to nowe zasady.
policy-changes = Zmiany
policy-field = Pole
policy-before = Teraz
policy-after = Po zastosowaniu
policy-unchanged = Nic się nie zmienia: dokument jest taki sam jak bieżąca wersja.
policy-findings = Reguły urzędu, których te zasady nie spełniają
policy-notes = Czego platforma nie może zastosować
policy-installs = { $count ->
    [one] { $n } urządzenie otrzyma nowy profil
    [few] { $n } urządzenia otrzymają nowy profil
    [many] { $n } urządzeń otrzyma nowy profil
   *[other] { $n } urządzenia otrzyma nowy profil
}
policy-would-queue = Zastosowanie obejmie: { $value }
policy-note = Notatka do historii wersji
policy-apply = Zastosuj
policy-unassign = Usuń
policy-assign-group = Przypisz do grupy
policy-assign = Przypisz
groups = Grupy urządzeń
group-new = Nowa grupa urządzeń
group-name = Nazwa
group-kind = Rodzaj
group-match = Dopasowanie
group-match-hint = Dla grupy katalogowej, działu lub grupy rejestracji: nazwa, do której pasuje. Puste dla grupy ręcznej.
group-create = Utwórz
group-kind-manual = Ręczna
group-kind-directory-group = Grupa w katalogu
group-kind-department = Dział
group-kind-enrollment = Grupa rejestracji
policy-output-queued = W trakcie wysyłania
policy-output-installed = Zainstalowane
policy-output-removing = W trakcie usuwania
reason-security-unreported = Stan zabezpieczeń nie został jeszcze zgłoszony
reason-passcode-missing = Brak kodu dostępu
reason-passcode-weak = Kod dostępu jest za słaby dla zasad
reason-encryption-off = Szyfrowanie jest wyłączone
reason-compliance-unreported = Zgodność nie została jeszcze zgłoszona
reason-google-no-details = Niezgodne z zasadami (Google nie podało szczegółów)
reason-profile-queued = Profil zasad { $value } nie jest jeszcze zainstalowany
reason-profile-missing = Na urządzeniu brakuje profilu zasad { $value }
reason-passcode-android = Brak kodu dostępu lub jest za słaby ({ $value })
reason-wifi-psk = Wi-Fi { $value } używa wspólnego klucza; urząd wymaga poświadczeń domenowych
finding-passcode-required = kod dostępu nie jest wymagany; polityka czystego ekranu wymaga PIN-u lub hasła przy uruchamianiu i wybudzaniu
finding-passcode-auto-lock = ekran musi blokować się automatycznie najpóźniej po { $value } minutach (polityka czystego biurka i czystego ekranu)
finding-passcode-grace-period = urządzenie musi pytać o kod zaraz po zablokowaniu (polityka czystego ekranu)
finding-passcode-simple = proste kody (1234, 1111) nie mogą być dozwolone (polityka haseł)
finding-passcode-min-length = kod dostępu musi mieć co najmniej { $value } znaków (polityka haseł)
finding-passcode-failed-attempts = przed wymazaniem można dopuścić najwyżej { $value } nieudanych prób (polityka haseł)
finding-wifi-psk = Wi-Fi musi używać poświadczeń domenowych użytkownika, nie wspólnego klucza (polityka haseł)
finding-mail-ssl = poczta musi łączyć się przez SSL/TLS, aby hasła były szyfrowane w transmisji (polityka haseł)
