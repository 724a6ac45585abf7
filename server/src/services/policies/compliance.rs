//! Whether a device meets its policies, with the reasons when it does not.
//!
//! Apple: from what SecurityInfo and ProfileList reported (passcode present and
//! compliant, encryption, the profiles installed) against what the device was sent.
//! Android: from Google's view of the device (policy compliance and its
//! non-compliance details, encryption, a secure lock screen). Both: a policy with a
//! pre-shared-key network is contrary to the office's Wi-Fi rule and keeps its
//! devices non-compliant.

use crate::domain::Device;
use crate::storage::{AndroidDeviceRecord, PolicyOutputRow};
use profiles::policy::{PolicyDocument, WifiSecurity};
use serde::Serialize;

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Evaluation {
    pub compliant: bool,
    pub reasons: Vec<String>,
}

// The reasons' texts, stored with the device and shown as they are by the API and
// the CLI; the console translates them (console/reasons.rs) by these same words.
pub const SECURITY_UNREPORTED: &str = "security state not reported yet (SecurityInfo)";
pub const PASSCODE_MISSING: &str = "passcode missing";
pub const PASSCODE_WEAK: &str = "passcode too weak for the passcode policy";
pub const ENCRYPTION_OFF: &str = "encryption off";
pub const COMPLIANCE_UNREPORTED: &str = "compliance not reported yet";
pub const GOOGLE_NO_DETAILS: &str = "not compliant with its policy (Google gave no details)";

pub fn wifi_psk(ssid: &str, policy: &str) -> String {
    format!("Wi-Fi {ssid:?} (policy {policy}) uses a pre-shared key: the office's policy requires the user's domain credentials")
}

pub fn profile_not_installed(policy: &str, version: i32) -> String {
    format!("profile of policy {policy} not installed yet (version {version} queued)")
}

pub fn profile_missing(policy: &str, identifier: &str) -> String {
    format!("profile of policy {policy} missing from the device ({identifier})")
}

pub fn android_passcode(why: &str) -> String {
    format!("passcode missing or too weak ({why})")
}

fn psk_reasons(docs: &[(String, &PolicyDocument)], reasons: &mut Vec<String>) {
    for (name, doc) in docs {
        for n in &doc.wifi {
            if matches!(n.security, WifiSecurity::Psk { .. }) {
                reasons.push(wifi_psk(&n.ssid, name));
            }
        }
    }
}

fn wants_passcode(docs: &[(String, &PolicyDocument)]) -> bool {
    docs.iter()
        .any(|(_, d)| d.passcode.as_ref().is_some_and(|p| p.required))
}

pub fn evaluate_apple(
    device: &Device,
    docs: &[(String, &PolicyDocument)],
    outputs: &[(String, &PolicyOutputRow)],
) -> Evaluation {
    let mut reasons = Vec::new();
    match device.passcode_present {
        None => reasons.push(SECURITY_UNREPORTED.to_owned()),
        Some(false) if wants_passcode(docs) => reasons.push(PASSCODE_MISSING.to_owned()),
        _ => {}
    }
    if device.passcode_compliant == Some(false) {
        reasons.push(PASSCODE_WEAK.to_owned());
    }
    if device.hardware_encrypted == Some(false) {
        reasons.push(ENCRYPTION_OFF.to_owned());
    }
    for (name, output) in outputs {
        if output.status != "installed" {
            reasons.push(profile_not_installed(name, output.policy_version));
        } else if let Some(installed) = &device.installed_profiles {
            if !installed.iter().any(|p| p.identifier == output.identifier) {
                reasons.push(profile_missing(name, &output.identifier));
            }
        }
    }
    psk_reasons(docs, &mut reasons);
    Evaluation {
        compliant: reasons.is_empty(),
        reasons,
    }
}

pub fn evaluate_android(
    record: &AndroidDeviceRecord,
    docs: &[(String, &PolicyDocument)],
) -> Evaluation {
    let mut reasons = Vec::new();
    if record.policy_compliant == Some(false) {
        let details = record
            .non_compliance
            .as_ref()
            .and_then(|v| v.as_array())
            .cloned()
            .unwrap_or_default();
        if details.is_empty() {
            reasons.push(GOOGLE_NO_DETAILS.to_owned());
        }
        for d in details {
            let setting = d
                .get("settingName")
                .and_then(|v| v.as_str())
                .unwrap_or("policy");
            let why = d
                .get("nonComplianceReason")
                .and_then(|v| v.as_str())
                .unwrap_or("NON_COMPLIANT");
            reasons.push(match (setting, why) {
                ("passwordPolicies", _) | ("passwordRequirements", _) => android_passcode(why),
                _ => format!("setting {setting}: {why}"),
            });
        }
    }
    if record.policy_compliant.is_none() {
        reasons.push(COMPLIANCE_UNREPORTED.to_owned());
    }
    if record.encrypted == Some(false) {
        reasons.push(ENCRYPTION_OFF.to_owned());
    }
    if record.device_secure == Some(false) && wants_passcode(docs) {
        reasons.push(PASSCODE_MISSING.to_owned());
    }
    psk_reasons(docs, &mut reasons);
    Evaluation {
        compliant: reasons.is_empty(),
        reasons,
    }
}
