//! AMAPI resources as the discovery document defines them (camelCase JSON), with the
//! fields we read or write. Unknown fields in Google's answers are ignored (Google adds
//! fields without a new API version); what we send holds only documented fields.

use serde::{Deserialize, Serialize};

/// Notification types we enable on the enterprise.
pub const NOTIFICATION_TYPES: &[&str] = &["ENROLLMENT", "STATUS_REPORT", "COMMAND", "USAGE_LOGS"];

/// `signupUrls.create`'s answer.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SignupUrl {
    /// `signupUrls/...`, given back to `enterprises.create`.
    pub name: String,
    /// Where the admin signs up.
    pub url: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Enterprise {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enterprise_display_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pubsub_topic: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub enabled_notification_types: Vec<String>,
}

/// `enterprises.enrollmentTokens` resource (what we send, and Google's answer).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EnrollmentToken {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The token itself (secret: it enrolls a device into the enterprise).
    #[serde(skip_serializing)]
    pub value: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy_name: Option<String>,
    /// "3600s": protobuf Duration as JSON.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub one_time_only: Option<bool>,
    /// PERSONAL_USAGE_ALLOWED (work profile), PERSONAL_USAGE_DISALLOWED (fully managed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allow_personal_usage: Option<String>,
    /// Ours, returned on the device as `enrollmentTokenData`: the enrollment id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub additional_data: Option<String>,
    #[serde(skip_serializing)]
    pub expiration_timestamp: Option<String>,
    /// The provisioning JSON for the QR code (a string holding a JSON object).
    #[serde(skip_serializing)]
    pub qr_code: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HardwareInfo {
    pub brand: Option<String>,
    pub manufacturer: Option<String>,
    pub model: Option<String>,
    pub serial_number: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SoftwareInfo {
    pub android_version: Option<String>,
    pub security_patch_level: Option<String>,
    pub android_build_number: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeviceSettings {
    pub is_encrypted: Option<bool>,
    pub encryption_status: Option<String>,
    pub is_device_secure: Option<bool>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NetworkInfo {
    pub imei: Option<String>,
}

/// `enterprises.devices` resource: the fields we keep. Google documents `int64` as a
/// JSON string (protobuf JSON), so the policy version is read either way.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Device {
    pub name: String,
    pub management_mode: Option<String>,
    pub ownership: Option<String>,
    pub state: Option<String>,
    pub applied_state: Option<String>,
    pub api_level: Option<i32>,
    pub policy_name: Option<String>,
    pub applied_policy_name: Option<String>,
    #[serde(default, deserialize_with = "int64")]
    pub applied_policy_version: Option<i64>,
    pub policy_compliant: Option<bool>,
    #[serde(default)]
    pub non_compliance_details: Vec<serde_json::Value>,
    pub security_posture: Option<serde_json::Value>,
    pub enrollment_time: Option<String>,
    pub enrollment_token_name: Option<String>,
    pub enrollment_token_data: Option<String>,
    pub last_status_report_time: Option<String>,
    pub last_policy_sync_time: Option<String>,
    #[serde(default)]
    pub hardware_info: HardwareInfo,
    #[serde(default)]
    pub software_info: SoftwareInfo,
    #[serde(default)]
    pub device_settings: DeviceSettings,
    #[serde(default)]
    pub network_info: NetworkInfo,
}

fn int64<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    let v = Option::<serde_json::Value>::deserialize(d)?;
    Ok(match v {
        Some(serde_json::Value::String(s)) => s.parse().ok(),
        Some(serde_json::Value::Number(n)) => n.as_i64(),
        _ => None,
    })
}

/// `devices.list`'s answer.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListDevicesResponse {
    #[serde(default)]
    pub devices: Vec<serde_json::Value>,
    pub next_page_token: Option<String>,
}

/// `enterprises.policies` as Google answers a patch: we read the version.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicyAnswer {
    pub name: Option<String>,
    #[serde(default, deserialize_with = "int64")]
    pub version: Option<i64>,
}

/// A long-running operation (`google.longrunning.Operation`): a command's. `metadata`
/// is the Command with its outcome (`errorCode`, `startLostModeStatus`, ...).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Operation {
    pub name: String,
    #[serde(default)]
    pub done: bool,
    pub error: Option<serde_json::Value>,
    pub metadata: Option<serde_json::Value>,
}
