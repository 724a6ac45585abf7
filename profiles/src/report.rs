//! What a device sends to the ServerURL: an Idle poll or the result of a command,
//! and readers for the results that update the device record.

use crate::bounded::{self, PlistLimits};
use crate::checkin::Enrollment;
use crate::ParseError;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReportStatus {
    Idle,
    Acknowledged,
    Error,
    CommandFormatError,
    NotNow,
}

impl ReportStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            ReportStatus::Idle => "Idle",
            ReportStatus::Acknowledged => "Acknowledged",
            ReportStatus::Error => "Error",
            ReportStatus::CommandFormatError => "CommandFormatError",
            ReportStatus::NotNow => "NotNow",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ErrorChainItem {
    pub error_code: Option<i64>,
    pub error_domain: Option<String>,
    pub localized_description: Option<String>,
    #[serde(rename = "USEnglishDescription")]
    pub us_english_description: Option<String>,
}

/// A device's report. `raw` keeps every key so command-specific results can be read.
#[derive(Debug, Clone)]
pub struct CommandReport {
    pub enrollment: Enrollment,
    pub status: ReportStatus,
    pub command_uuid: Option<String>,
    pub error_chain: Vec<ErrorChainItem>,
    pub raw: plist::Dictionary,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ReportFields {
    status: ReportStatus,
    #[serde(rename = "CommandUUID")]
    command_uuid: Option<String>,
    #[serde(default)]
    error_chain: Vec<ErrorChainItem>,
}

/// Reads a device's report within [`PlistLimits::DEVICE`].
pub fn decode(body: &[u8]) -> Result<CommandReport, ParseError> {
    decode_with(body, &PlistLimits::DEVICE)
}

/// [`decode`] with explicit limits: one bounded read, then typed views of that tree.
pub fn decode_with(body: &[u8], limits: &PlistLimits) -> Result<CommandReport, ParseError> {
    let raw = bounded::read_dictionary(body, limits)?;
    let value = plist::Value::Dictionary(raw);
    let fields: ReportFields = plist::from_value(&value)
        .map_err(|e| ParseError::new(format!("malformed command report: {e}"), body))?;
    let enrollment: Enrollment = plist::from_value(&value)
        .map_err(|e| ParseError::new(format!("malformed command report: {e}"), body))?;
    // Built from a dictionary two lines up, so this is always the same dictionary.
    let raw = value.into_dictionary().unwrap_or_default();
    if enrollment.device_key().is_none() {
        return Err(ParseError::new(
            "report carries neither UDID nor EnrollmentID",
            body,
        ));
    }
    let command_uuid = fields.command_uuid.filter(|u| !u.is_empty());
    if fields.status != ReportStatus::Idle && command_uuid.is_none() {
        return Err(ParseError::new(
            format!("{} report without CommandUUID", fields.status.as_str()),
            body,
        ));
    }
    Ok(CommandReport {
        enrollment,
        status: fields.status,
        command_uuid,
        error_chain: fields.error_chain,
        raw,
    })
}

/// Facts about a device learned from command results, merged into its record.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct DeviceFacts {
    pub os_version: Option<String>,
    pub build_version: Option<String>,
    pub product_name: Option<String>,
    pub model: Option<String>,
    pub model_name: Option<String>,
    pub serial_number: Option<String>,
    pub device_name: Option<String>,
    pub hardware_encrypted: Option<bool>,
    pub passcode_present: Option<bool>,
    pub passcode_compliant: Option<bool>,
    pub installed_profiles: Option<Vec<InstalledProfile>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstalledProfile {
    pub identifier: String,
    pub display_name: Option<String>,
    pub uuid: Option<String>,
    pub version: Option<i64>,
    pub is_managed: Option<bool>,
}

fn string(dict: &plist::Dictionary, key: &str) -> Option<String> {
    dict.get(key).and_then(|v| v.as_string()).map(str::to_owned)
}

fn boolean(dict: &plist::Dictionary, key: &str) -> Option<bool> {
    dict.get(key).and_then(|v| v.as_boolean())
}

/// Reads the parts of an Acknowledged result that describe the device.
/// `request_type` is the type of the command the result answers.
pub fn device_facts(request_type: &str, result: &plist::Dictionary) -> Option<DeviceFacts> {
    match request_type {
        "DeviceInformation" => {
            let q = result.get("QueryResponses")?.as_dictionary()?;
            Some(DeviceFacts {
                os_version: string(q, "OSVersion"),
                build_version: string(q, "BuildVersion"),
                product_name: string(q, "ProductName"),
                model: string(q, "Model"),
                model_name: string(q, "ModelName"),
                serial_number: string(q, "SerialNumber"),
                device_name: string(q, "DeviceName"),
                ..Default::default()
            })
        }
        "SecurityInfo" => {
            let s = result.get("SecurityInfo")?.as_dictionary()?;
            // HardwareEncryptionCaps: 1 = block-level, 2 = file-level, 3 = both. iOS
            // reports it; macOS reports FDE_Enabled instead.
            let hardware = s
                .get("HardwareEncryptionCaps")
                .and_then(|v| v.as_signed_integer())
                .map(|caps| caps & 3 != 0);
            let filevault = boolean(s, "FDE_Enabled");
            Some(DeviceFacts {
                hardware_encrypted: filevault.or(hardware),
                passcode_present: boolean(s, "PasscodePresent"),
                passcode_compliant: boolean(s, "PasscodeCompliant"),
                ..Default::default()
            })
        }
        "ProfileList" => {
            let list = result.get("ProfileList")?.as_array()?;
            let profiles = list
                .iter()
                .filter_map(|p| p.as_dictionary())
                .filter_map(|p| {
                    Some(InstalledProfile {
                        identifier: string(p, "PayloadIdentifier")?,
                        display_name: string(p, "PayloadDisplayName"),
                        uuid: string(p, "PayloadUUID"),
                        version: p.get("PayloadVersion").and_then(|v| v.as_signed_integer()),
                        is_managed: boolean(p, "IsManaged"),
                    })
                })
                .collect();
            Some(DeviceFacts {
                installed_profiles: Some(profiles),
                ..Default::default()
            })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use plist::Value;

    fn xml(dict: plist::Dictionary) -> Vec<u8> {
        crate::checkin::to_xml(&Value::Dictionary(dict))
    }

    fn dict(entries: Vec<(&str, Value)>) -> plist::Dictionary {
        entries
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect()
    }

    #[test]
    fn idle_and_results() {
        let idle = decode(&xml(dict(vec![
            ("UDID", "U1".into()),
            ("Status", "Idle".into()),
        ])))
        .unwrap();
        assert_eq!(idle.status, ReportStatus::Idle);
        assert!(idle.command_uuid.is_none());

        let err = decode(&xml(dict(vec![
            ("UDID", "U1".into()),
            ("Status", "Error".into()),
            ("CommandUUID", "C1".into()),
            (
                "ErrorChain",
                Value::Array(vec![Value::Dictionary(dict(vec![
                    ("ErrorCode", Value::Integer(12021.into())),
                    ("ErrorDomain", "MCMDMErrorDomain".into()),
                ]))]),
            ),
        ])))
        .unwrap();
        assert_eq!(err.error_chain[0].error_code, Some(12021));
    }

    #[test]
    fn rejects_bad_reports() {
        assert!(decode(b"<plist>").is_err());
        let unknown_status = dict(vec![("UDID", "U1".into()), ("Status", "Maybe".into())]);
        assert!(decode(&xml(unknown_status)).is_err());
        let no_uuid = dict(vec![
            ("UDID", "U1".into()),
            ("Status", "Acknowledged".into()),
        ]);
        assert!(decode(&xml(no_uuid)).is_err());
    }

    #[test]
    fn reads_security_info_and_profiles() {
        let security = dict(vec![(
            "SecurityInfo",
            Value::Dictionary(dict(vec![
                ("HardwareEncryptionCaps", Value::Integer(3.into())),
                ("PasscodePresent", true.into()),
                ("PasscodeCompliant", false.into()),
            ])),
        )]);
        let facts = device_facts("SecurityInfo", &security).unwrap();
        assert_eq!(facts.hardware_encrypted, Some(true));
        assert_eq!(facts.passcode_compliant, Some(false));

        let profiles = dict(vec![(
            "ProfileList",
            Value::Array(vec![Value::Dictionary(dict(vec![
                ("PayloadIdentifier", "gov.town.wifi".into()),
                ("PayloadVersion", Value::Integer(1.into())),
            ]))]),
        )]);
        let facts = device_facts("ProfileList", &profiles).unwrap();
        assert_eq!(
            facts.installed_profiles.unwrap()[0].identifier,
            "gov.town.wifi"
        );
        assert!(device_facts("RestartDevice", &profiles).is_none());
    }
}
