//! The built-in AMAPI policy, until the policies issue brings the full model: what
//! `../shared/docs/requirements.md` asks of every device.
//!
//! * "A password/PIN is required at start-up and when waking from sleep", PINs with
//!   "no simple sequences such as 1234 or 1111" and "limited failed attempts":
//!   NUMERIC_COMPLEX (digits without repeating or ordered sequences) of at least 6,
//!   for the whole device, and a wipe after 10 failed attempts.
//! * "Devices lock automatically after 2 to 5 minutes": `maximumTimeToLock` 300,000 ms
//!   (the user may choose shorter, not longer).
//! * Status reporting on, so that `mdm devices show` has the facts and the posture,
//!   and the security logs (`usageLog`: SECURITY_LOGS, NETWORK_ACTIVITY_LOGS) that feed
//!   the incident register; security logs may upload over mobile data, since a lost
//!   phone may never see Wi-Fi again.

use serde_json::{json, Value};

/// Milliseconds of inactivity before the screen locks.
pub const MAXIMUM_TIME_TO_LOCK_MS: i64 = 5 * 60 * 1000;

pub fn built_in() -> Value {
    json!({
        "passwordPolicies": [{
            "passwordScope": "SCOPE_DEVICE",
            "passwordQuality": "NUMERIC_COMPLEX",
            "passwordMinimumLength": 6,
            "maximumFailedPasswordsForWipe": 10,
        }],
        // int64 in protobuf JSON is a string.
        "maximumTimeToLock": MAXIMUM_TIME_TO_LOCK_MS.to_string(),
        "statusReportingSettings": {
            "applicationReportsEnabled": true,
            "deviceSettingsEnabled": true,
            "softwareInfoEnabled": true,
            "memoryInfoEnabled": true,
            "networkInfoEnabled": true,
            "displayInfoEnabled": true,
            "powerManagementEventsEnabled": true,
            "hardwareStatusEnabled": true,
            "systemPropertiesEnabled": true,
            "commonCriteriaModeEnabled": true,
        },
        "usageLog": {
            "enabledLogTypes": ["SECURITY_LOGS", "NETWORK_ACTIVITY_LOGS"],
            "uploadOnCellularAllowed": ["SECURITY_LOGS"],
        },
    })
}

/// Hex SHA-256 of the policy's JSON (serde_json sorts object keys, so equal content
/// hashes equally): what decides whether a patch is needed.
pub fn content_hash(policy: &Value) -> String {
    hex::encode(openssl::sha::sha256(policy.to_string().as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_policy_follows_the_requirements() {
        let p = built_in();
        assert_eq!(p["maximumTimeToLock"], "300000");
        assert_eq!(
            p["passwordPolicies"][0]["passwordQuality"],
            "NUMERIC_COMPLEX"
        );
        assert!(p["usageLog"]["enabledLogTypes"]
            .as_array()
            .unwrap()
            .contains(&"SECURITY_LOGS".into()));
        assert_eq!(content_hash(&p), content_hash(&built_in()));
        let mut other = built_in();
        other["maximumTimeToLock"] = "120000".into();
        assert_ne!(content_hash(&p), content_hash(&other));
    }
}
