use chrono::{DateTime, Utc};
use profiles::report::InstalledProfile;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Platform {
    Apple,
    Android,
}

impl Platform {
    pub fn as_str(&self) -> &'static str {
        match self {
            Platform::Apple => "apple",
            Platform::Android => "android",
        }
    }

    pub fn parse(s: &str) -> Option<Platform> {
        match s {
            "apple" => Some(Platform::Apple),
            "android" => Some(Platform::Android),
            _ => None,
        }
    }
}

/// A managed device, whatever its platform.
#[derive(Debug, Clone, Serialize)]
pub struct Device {
    pub id: String,
    pub platform: Platform,
    /// Apple: UDID (or the EnrollmentID of a user enrollment).
    pub udid: Option<String>,
    pub serial_number: Option<String>,
    /// The serial number from the device's DeviceInformation answer (what a wipe is
    /// confirmed against), as opposed to the one it claimed at Authenticate.
    pub reported_serial_number: Option<String>,
    pub imei: Option<String>,
    pub model: Option<String>,
    pub model_name: Option<String>,
    pub product_name: Option<String>,
    /// iOS, iPadOS, macOS, ... as far as the server knows.
    pub os_family: String,
    pub os_version: Option<String>,
    pub build_version: Option<String>,
    pub device_name: Option<String>,
    pub topic: Option<String>,
    pub push_token: Option<String>,
    pub push_magic: Option<String>,
    /// Set when APNs said the token is no longer valid; cleared by the next TokenUpdate.
    pub push_token_invalid_at: Option<DateTime<Utc>>,
    pub last_push_at: Option<DateTime<Utc>>,
    /// The enrollment (QR code) the device came through, and who it was meant for.
    pub enrollment_id: Option<String>,
    pub assigned_user: Option<String>,
    pub assigned_group: Option<String>,
    pub has_unlock_token: bool,
    pub has_bootstrap_token: bool,
    pub awaiting_configuration: bool,
    pub identity_fingerprint: Option<String>,
    pub identity_subject: Option<String>,
    pub identity_not_after: Option<String>,
    /// Set once the device's identity was revoked (wiped, retired, checked out, or by
    /// hand): its certificate is refused, and only a new enrollment brings it back.
    pub identity_revoked_at: Option<DateTime<Utc>>,
    /// RFC 5280 reason: cessation_of_operation, key_compromise, ...
    pub identity_revocation_reason: Option<String>,
    /// Set when an admin retired the device from the fleet.
    pub retired_at: Option<DateTime<Utc>>,
    pub enrolled: bool,
    pub enrolled_at: Option<DateTime<Utc>>,
    pub unenrolled_at: Option<DateTime<Utc>>,
    pub last_seen_at: Option<DateTime<Utc>>,
    pub hardware_encrypted: Option<bool>,
    pub passcode_present: Option<bool>,
    pub passcode_compliant: Option<bool>,
    pub installed_profiles: Option<Vec<InstalledProfile>>,
    /// Whether the device meets its policies (None: not evaluated yet), and why not.
    pub compliant: Option<bool>,
    pub compliance_reasons: Vec<String>,
    pub compliance_checked_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Filters for listing devices; every field narrows the result.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct DeviceFilter {
    pub platform: Option<String>,
    pub enrolled: Option<bool>,
    pub serial_number: Option<String>,
    pub udid: Option<String>,
    pub os_family: Option<String>,
    /// Case-sensitive substring of device name, serial number, model or UDID.
    pub search: Option<String>,
    /// Only devices evaluated as not compliant (`true`) or compliant (`false`).
    pub noncompliant: Option<bool>,
    /// Only devices enrolled for this user (the enrollment's user).
    pub user: Option<String>,
    /// Only devices enrolled into this group (the enrollment's group).
    pub group: Option<String>,
    pub offset: Option<u64>,
    pub limit: Option<u64>,
}

/// The name stored in `os_family` for an Apple OS ("iOS", "iPadOS", "macOS", ...).
pub fn os_family_name(os: profiles::commands::AppleOs) -> String {
    serde_json::to_value(os)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_else(|| "unknown".into())
}

/// Reads `os_family` back; anything unrecognised is `Unknown`.
pub fn os_from_family(family: &str) -> profiles::commands::AppleOs {
    serde_json::from_value(serde_json::Value::String(family.to_owned()))
        .unwrap_or(profiles::commands::AppleOs::Unknown)
}
