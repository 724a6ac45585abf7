//! The office's own rules (`../shared/docs/requirements.md`, the district
//! administration's clean desk and password policies) and a baseline that meets them.
//!
//! A policy may break these rules (an admin can decide otherwise); what it breaks is
//! reported by [`office_findings`] in every response and in compliance.

use super::model::{Finding, Passcode, PolicyDocument, WifiSecurity};

/// Rule ids, stable: the server stores and filters on them.
pub const RULES: &[&str] = &[
    "passcode.required",
    "passcode.auto_lock",
    "passcode.grace_period",
    "passcode.simple",
    "passcode.min_length",
    "passcode.failed_attempts",
    "wifi.psk",
    "mail.ssl",
];

const CLEAN_SCREEN_LOCK: &str = "clean desk and clean screen policy: \"Devices lock automatically after 2 to 5 minutes of inactivity\"";
const CLEAN_SCREEN_PIN: &str = "clean desk and clean screen policy: \"A password/PIN is required at start-up and when waking from sleep\"";
const PIN_RULES: &str = "password policy: \"PIN codes have their own rules (minimum length, no simple sequences such as 1234 or 1111, limited failed attempts)\"";
const WIFI_RULE: &str = "password policy: \"Wi-Fi must not rely on shared pre-shared keys; Wi-Fi access relies on the user's network domain credentials\"";
const TRANSIT_RULE: &str =
    "password policy: \"passwords are encrypted at rest, in processing and in transit\"";

/// The longest auto-lock the office allows, in minutes.
pub const MAX_AUTO_LOCK_MINUTES: u32 = 5;
/// The shortest PIN the office allows.
pub const MIN_PIN_LENGTH: u32 = 6;
/// The most failed attempts before a wipe the office allows.
pub const MAX_FAILED_ATTEMPTS: u32 = 10;

/// Which of the office's rules the document breaks, in document order. A document
/// without a passcode section enforces no passcode rule, so it breaks all of them.
pub fn office_findings(doc: &PolicyDocument) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut add = |rule: &str, path: String, message: String| {
        out.push(Finding {
            rule: rule.into(),
            path,
            message,
        })
    };
    let (p, base) = match &doc.passcode {
        Some(p) => (p.clone(), "passcode."),
        None => (Passcode::unenforced(), ""),
    };
    let at = |field: &str| {
        if base.is_empty() {
            "passcode".to_string()
        } else {
            format!("{base}{field}")
        }
    };
    if !p.required {
        add(
            "passcode.required",
            at("required"),
            format!("no passcode is required; contrary to the {CLEAN_SCREEN_PIN}"),
        );
    }
    match p.auto_lock_minutes {
        None => add(
            "passcode.auto_lock",
            at("auto_lock_minutes"),
            format!("no auto-lock is set; contrary to the {CLEAN_SCREEN_LOCK}"),
        ),
        Some(m) if m > MAX_AUTO_LOCK_MINUTES => add(
            "passcode.auto_lock",
            at("auto_lock_minutes"),
            format!("the screen locks after {m} minutes, more than {MAX_AUTO_LOCK_MINUTES}; contrary to the {CLEAN_SCREEN_LOCK}"),
        ),
        Some(_) => {}
    }
    if let Some(g) = p.grace_period_minutes.filter(|g| *g > 0) {
        add(
            "passcode.grace_period",
            at("grace_period_minutes"),
            format!("the device unlocks without the passcode for {g} minutes after locking; contrary to the {CLEAN_SCREEN_PIN}"),
        );
    }
    if p.allow_simple {
        add(
            "passcode.simple",
            at("allow_simple"),
            format!("simple passcodes (1234, 1111) are allowed; contrary to the {PIN_RULES}"),
        );
    }
    match p.min_length {
        Some(n) if n >= MIN_PIN_LENGTH => {}
        other => add(
            "passcode.min_length",
            at("min_length"),
            format!(
                "{}, fewer than the office's {MIN_PIN_LENGTH}; contrary to the {PIN_RULES}",
                match other {
                    Some(n) => format!("the minimum length is {n}"),
                    None => "no minimum length is set".to_string(),
                }
            ),
        ),
    }
    match p.max_failed_attempts {
        Some(n) if n <= MAX_FAILED_ATTEMPTS => {}
        other => add(
            "passcode.failed_attempts",
            at("max_failed_attempts"),
            format!(
                "{}; the office allows at most {MAX_FAILED_ATTEMPTS}; contrary to the {PIN_RULES}",
                match other {
                    Some(n) => format!("{n} failed attempts are allowed before the wipe"),
                    None => "failed attempts are not limited".to_string(),
                }
            ),
        ),
    }
    for (i, w) in doc.wifi.iter().enumerate() {
        if let WifiSecurity::Psk { .. } = w.security {
            add(
                "wifi.psk",
                format!("wifi[{i}].security"),
                format!(
                    "Wi-Fi network {:?} uses a pre-shared key; contrary to the {WIFI_RULE}",
                    w.ssid
                ),
            );
        }
    }
    for (i, m) in doc.mail.iter().enumerate() {
        if !m.ssl_required {
            add(
                "mail.ssl",
                format!("mail[{i}].ssl_required"),
                format!("mail account {:?} may connect without SSL/TLS, sending the user's password in clear; contrary to the {TRANSIT_RULE}", m.name),
            );
        }
    }
    out
}

/// The built-in policy (`mdm policy init`): it meets every rule above. Wi-Fi, mail
/// and certificates are the office's own and are left for the admin to add.
pub fn baseline() -> PolicyDocument {
    PolicyDocument {
        name: "Office baseline".into(),
        description: Some(
            "The office's rules: screen lock after 5 minutes at most, passcode at start-up and wake, \
             PIN of 6 or more digits without simple sequences, wipe after 10 failed attempts; \
             Wi-Fi only with domain credentials."
                .into(),
        ),
        passcode: Some(Passcode {
            required: true,
            min_length: Some(MIN_PIN_LENGTH),
            alphanumeric: false,
            min_complex_chars: None,
            allow_simple: false,
            max_age_days: None,
            history: None,
            max_failed_attempts: Some(MAX_FAILED_ATTEMPTS),
            auto_lock_minutes: Some(MAX_AUTO_LOCK_MINUTES),
            grace_period_minutes: Some(0),
        }),
        wifi: vec![],
        mail: vec![],
        certificates: vec![],
    }
}

/// [`baseline`] as a commented TOML file, with examples of the sections an office
/// fills in; `parse(&baseline_toml(), Format::Toml)` gives `baseline()`.
pub fn baseline_toml() -> String {
    BASELINE_TOML.to_string()
}

const BASELINE_TOML: &str = r#"# The office's baseline policy (mdm policy init). It meets the rules of
# ../shared/docs/requirements.md; `mdm policy check FILE` lists the rules a
# policy breaks. Field reference: docs/policies.md.
name = "Office baseline"
description = "The office's rules: screen lock after 5 minutes at most, passcode at start-up and wake, PIN of 6 or more digits without simple sequences, wipe after 10 failed attempts; Wi-Fi only with domain credentials."

[passcode]
# "A password/PIN is required at start-up and when waking from sleep."
required = true
grace_period_minutes = 0
# "Devices lock automatically after 2 to 5 minutes of inactivity."
auto_lock_minutes = 5
# "PIN codes have their own rules (minimum length, no simple sequences such as
# 1234 or 1111, limited failed attempts)."
min_length = 6
allow_simple = false
alphanumeric = false
max_failed_attempts = 10

# "Wi-Fi must not rely on shared pre-shared keys; Wi-Fi access relies on the
# user's network domain credentials." Add the office's networks like this (the
# identity is the user's UPN; the device asks for the password):
#
# [[wifi]]
# ssid = "Town Hall"
# [wifi.security]
# type = "enterprise"
# eap = { method = "peap", inner = "mschapv2" }
# radius_server_names = ["radius.town.example"]
# radius_ca_certificates = ["Town Hall RADIUS CA"]
#
# [[certificates]]
# name = "Town Hall RADIUS CA"
# pem = """
# -----BEGIN CERTIFICATE-----
# ...
# -----END CERTIFICATE-----
# """
#
# Mail, filled with the user's directory attributes:
#
# [[mail]]
# name = "Town Hall mail"
# kind = "exchange"
# host = "outlook.office365.com"
# email_address = "{{user.email}}"
# username = "{{user.upn}}"
"#;
