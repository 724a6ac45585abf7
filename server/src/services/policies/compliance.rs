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

fn psk_reasons(docs: &[(String, &PolicyDocument)], reasons: &mut Vec<String>) {
    for (name, doc) in docs {
        for n in &doc.wifi {
            if matches!(n.security, WifiSecurity::Psk { .. }) {
                reasons.push(format!(
                    "Wi-Fi {:?} (policy {name}) uses a pre-shared key: the office's policy requires the user's domain credentials",
                    n.ssid
                ));
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
        None => reasons.push("security state not reported yet (SecurityInfo)".to_owned()),
        Some(false) if wants_passcode(docs) => reasons.push("passcode missing".to_owned()),
        _ => {}
    }
    if device.passcode_compliant == Some(false) {
        reasons.push("passcode too weak for the passcode policy".to_owned());
    }
    if device.hardware_encrypted == Some(false) {
        reasons.push("encryption off".to_owned());
    }
    for (name, output) in outputs {
        if output.status != "installed" {
            reasons.push(format!(
                "profile of policy {name} not installed yet (version {} queued)",
                output.policy_version
            ));
        } else if let Some(installed) = &device.installed_profiles {
            if !installed.iter().any(|p| p.identifier == output.identifier) {
                reasons.push(format!(
                    "profile of policy {name} missing from the device ({})",
                    output.identifier
                ));
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
            reasons.push("not compliant with its policy (Google gave no details)".to_owned());
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
                ("passwordPolicies", _) | ("passwordRequirements", _) => {
                    format!("passcode missing or too weak ({why})")
                }
                _ => format!("setting {setting}: {why}"),
            });
        }
    }
    if record.policy_compliant.is_none() {
        reasons.push("compliance not reported yet".to_owned());
    }
    if record.encrypted == Some(false) {
        reasons.push("encryption off".to_owned());
    }
    if record.device_secure == Some(false) && wants_passcode(docs) {
        reasons.push("passcode missing".to_owned());
    }
    psk_reasons(docs, &mut reasons);
    Evaluation {
        compliant: reasons.is_empty(),
        reasons,
    }
}
