//! A device's compliance reasons in the page's language. The evaluation stores them
//! as English sentences (the API and the CLI show them so); the console recognises
//! each by the words services/policies/compliance.rs builds it from, and shows
//! anything it does not recognise as it is.

use super::i18n::Tr;
use crate::services::policies::compliance as c;

pub fn translate(tr: Tr, reason: &str) -> String {
    let exact = [
        (c::SECURITY_UNREPORTED, "reason-security-unreported"),
        (c::PASSCODE_MISSING, "reason-passcode-missing"),
        (c::PASSCODE_WEAK, "reason-passcode-weak"),
        (c::ENCRYPTION_OFF, "reason-encryption-off"),
        (c::COMPLIANCE_UNREPORTED, "reason-compliance-unreported"),
        (c::GOOGLE_NO_DETAILS, "reason-google-no-details"),
    ];
    if let Some((_, id)) = exact.iter().find(|(text, _)| *text == reason) {
        return tr.t(id);
    }
    if let Some(rest) = reason.strip_prefix("profile of policy ") {
        if let Some((policy, _)) = rest.split_once(" not installed yet (") {
            return tr.t1("reason-profile-queued", policy);
        }
        if let Some((policy, _)) = rest.split_once(" missing from the device (") {
            return tr.t1("reason-profile-missing", policy);
        }
    }
    if let Some(why) = reason
        .strip_prefix("passcode missing or too weak (")
        .and_then(|r| r.strip_suffix(')'))
    {
        return tr.t1("reason-passcode-android", why);
    }
    if let Some(rest) = reason.strip_prefix("Wi-Fi ") {
        if let Some((network, _)) = rest.split_once(" uses a pre-shared key") {
            return tr.t1("reason-wifi-psk", network);
        }
    }
    reason.to_owned()
}

/// One of the office's rules a policy breaks (profiles::policy::office_rules), by
/// its stable rule id: what the rule asks, in the page's language. The English
/// finding (with the document's own values) is kept for a rule the console does
/// not know.
pub fn finding(tr: Tr, rule: &str, english: &str) -> String {
    use profiles::policy::office_rules_limits as limits;
    let id = format!("finding-{}", rule.replace(['.', '_'], "-"));
    let value = match rule {
        "passcode.auto_lock" => limits::MAX_AUTO_LOCK_MINUTES.to_string(),
        "passcode.min_length" => limits::MIN_PIN_LENGTH.to_string(),
        "passcode.failed_attempts" => limits::MAX_FAILED_ATTEMPTS.to_string(),
        _ => String::new(),
    };
    if profiles::policy::RULES.contains(&rule) {
        tr.t1(&id, &value)
    } else {
        english.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::console::i18n::Lang;

    /// Every reason the evaluation writes is recognised: in Polish and Ukrainian none
    /// is shown in English.
    #[test]
    fn every_reason_is_translated() {
        let reasons = [
            c::SECURITY_UNREPORTED.to_owned(),
            c::PASSCODE_MISSING.to_owned(),
            c::PASSCODE_WEAK.to_owned(),
            c::ENCRYPTION_OFF.to_owned(),
            c::COMPLIANCE_UNREPORTED.to_owned(),
            c::GOOGLE_NO_DETAILS.to_owned(),
            c::wifi_psk("TownHall", "staff"),
            c::profile_not_installed("staff", 3),
            c::profile_missing("staff", "mdm.policy.staff"),
            c::android_passcode("PASSWORD_REQUIREMENTS_UNMET"),
        ];
        for lang in [Lang::Pl, Lang::Uk] {
            for reason in &reasons {
                let shown = translate(Tr::new(lang), reason);
                assert_ne!(&shown, reason, "{lang:?}: {reason}");
                assert!(!shown.starts_with('['), "{lang:?}: {shown}");
            }
        }
        for lang in Lang::ALL {
            for rule in profiles::policy::RULES {
                let shown = finding(Tr::new(lang), rule, "english");
                assert!(
                    !shown.starts_with('[') && shown != "english",
                    "{lang:?} {rule}: {shown}"
                );
            }
        }
        let en = translate(Tr::new(Lang::En), &c::profile_not_installed("staff", 3));
        assert!(en.contains("staff"), "{en}");
        assert_eq!(
            translate(Tr::new(Lang::Pl), "something new"),
            "something new"
        );
    }
}
