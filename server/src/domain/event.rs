//! The event log: one append-only stream that device, security and admin events go
//! to. Incidents, webhooks, SIEM export and the audit trail read from it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Event kinds written today. Strings, not an enum, in storage: later modules add
/// kinds without a migration.
pub mod kinds {
    pub const DEVICE_AUTHENTICATED: &str = "device.authenticated";
    pub const DEVICE_ENROLLED: &str = "device.enrolled";
    pub const DEVICE_TOKEN_UPDATED: &str = "device.token_updated";
    pub const DEVICE_CHECKED_OUT: &str = "device.checked_out";
    pub const DEVICE_IDENTITY_REBOUND: &str = "device.identity_rebound";
    pub const DEVICE_IDENTITY_REVOKED: &str = "device.identity_revoked";
    pub const SECURITY_REVOKED_IDENTITY_REFUSED: &str = "security.revoked_identity_refused";
    pub const ADMIN_DEVICE_RETIRED: &str = "admin.device_retired";
    pub const ADMIN_DEVICE_DELETED: &str = "admin.device_deleted";
    pub const DEVICE_BOOTSTRAP_TOKEN_SET: &str = "device.bootstrap_token_set";
    pub const DEVICE_BOOTSTRAP_TOKEN_READ: &str = "device.bootstrap_token_read";
    pub const COMMAND_RESULT: &str = "command.result";
    pub const SECURITY_IDENTITY_MISMATCH: &str = "security.identity_mismatch";
    pub const SECURITY_FOREIGN_RESULT: &str = "security.foreign_command_result";
    pub const SECURITY_IDENTITY_TAKEOVER_REFUSED: &str = "security.identity_takeover_refused";
    pub const SECURITY_REENROLLMENT_HELD: &str = "security.reenrollment_held";
    pub const ADMIN_REENROLLMENT_APPROVED: &str = "admin.reenrollment_approved";
    pub const ADMIN_COMMAND_QUEUED: &str = "admin.command_queued";
    pub const ADMIN_COMMAND_CANCELLED: &str = "admin.command_cancelled";
    pub const ADMIN_DEVICE_LOCK: &str = "admin.device_lock";
    pub const ADMIN_DEVICE_WIPE: &str = "admin.device_wipe";
    pub const ADMIN_WIPE_REFUSED: &str = "admin.device_wipe_refused";
    pub const ADMIN_TOKEN_CREATED: &str = "admin.token_created";
    pub const ADMIN_TOKEN_REVOKED: &str = "admin.token_revoked";
    pub const ADMIN_PUSH_CERTIFICATE_UPLOADED: &str = "admin.push_certificate_uploaded";
    pub const ADMIN_DEVICE_PUSH: &str = "admin.device_push";
    pub const ADMIN_PKI_IMPORTED: &str = "admin.pki_imported";
    pub const ADMIN_PUSH_REQUEST_CREATED: &str = "admin.push_request_created";
    pub const ENROLLMENT_CREATED: &str = "enrollment.created";
    pub const ENROLLMENT_REVOKED: &str = "enrollment.revoked";
    pub const ENROLLMENT_REFUSED: &str = "enrollment.refused";
    pub const DEVICE_ENROLLMENT_LINKED: &str = "device.enrollment_linked";
    pub const DEVICE_IDENTITY_RENEWED: &str = "device.identity_renewed";
    pub const SCEP_CERTIFICATE_ISSUED: &str = "scep.certificate_issued";
    pub const SCEP_REFUSED: &str = "scep.refused";
    pub const PUSH_CONFIGURATION_ERROR: &str = "push.configuration_error";
    pub const PUSH_CERTIFICATE_EXPIRING: &str = "push.certificate_expiring";
    pub const ADMIN_ANDROID_CONNECTED: &str = "admin.android_connected";
    pub const ANDROID_ENTERPRISE_CREATED: &str = "android.enterprise_created";
    /// Google refused us (403, a deleted enterprise, a revoked key): only an admin
    /// can cure it.
    pub const ANDROID_CONFIGURATION_ERROR: &str = "android.configuration_error";
    /// An Android device became compliant with its policy, or stopped being.
    pub const ANDROID_COMPLIANCE_CHANGED: &str = "android.compliance_changed";
    /// AMAPI's security posture of a device changed (SECURE, AT_RISK,
    /// POTENTIALLY_COMPROMISED).
    pub const ANDROID_POSTURE_CHANGED: &str = "android.posture_changed";
    /// An Android device left management without the MDM's doing (factory reset,
    /// removed by its user or at Google).
    pub const ANDROID_DEVICE_REMOVED: &str = "android.device_removed";
    /// Events of an Android device's security logs (USAGE_LOGS): failed unlocks,
    /// ADB shell, CA certificates installed, removable media, ... with a severity.
    pub const SECURITY_ANDROID_LOG: &str = "security.android_log";
    pub const ADMIN_POLICY_SAVED: &str = "admin.policy_saved";
    pub const ADMIN_POLICY_ASSIGNED: &str = "admin.policy_assigned";
    pub const ADMIN_POLICY_UNASSIGNED: &str = "admin.policy_unassigned";
    pub const ADMIN_DEVICE_GROUP_CHANGED: &str = "admin.device_group_changed";
    /// InstallProfile / RemoveProfile queued because a device's policies changed.
    pub const POLICY_PROFILES_QUEUED: &str = "policy.profiles_queued";
    /// A device became compliant with its policies, or stopped being (severity 2
    /// when it falls out: the incident register files it).
    pub const DEVICE_COMPLIANCE_CHANGED: &str = "device.compliance_changed";
}

/// Severity on the register's 0-5 scale (0 non-critical ... 5 emergency).
pub mod severity {
    pub const NON_CRITICAL: i16 = 0;
    pub const LOW: i16 = 1;
    pub const MEDIUM: i16 = 2;
    pub const HIGH: i16 = 3;
    pub const CRITICAL: i16 = 4;
}

#[derive(Debug, Clone)]
pub struct NewEvent {
    pub kind: &'static str,
    pub severity: Option<i16>,
    pub device_id: Option<String>,
    pub actor: Option<String>,
    pub message: String,
    pub data: serde_json::Value,
}

impl NewEvent {
    pub fn new(kind: &'static str, message: impl Into<String>) -> Self {
        NewEvent {
            kind,
            severity: None,
            device_id: None,
            actor: None,
            message: message.into(),
            data: serde_json::Value::Null,
        }
    }
    pub fn device(mut self, id: impl Into<String>) -> Self {
        self.device_id = Some(id.into());
        self
    }
    pub fn actor(mut self, who: impl Into<String>) -> Self {
        self.actor = Some(who.into());
        self
    }
    pub fn severity(mut self, level: i16) -> Self {
        self.severity = Some(level);
        self
    }
    pub fn data(mut self, data: serde_json::Value) -> Self {
        self.data = data;
        self
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Event {
    pub id: i64,
    pub occurred_at: DateTime<Utc>,
    pub kind: String,
    pub severity: Option<i16>,
    pub device_id: Option<String>,
    pub actor: Option<String>,
    pub message: String,
    pub data: serde_json::Value,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct EventFilter {
    pub device_id: Option<String>,
    /// A kind, or a prefix ending in '.' such as "security.".
    pub kind: Option<String>,
    /// Only events with an id greater than this (for tailing the stream).
    pub after_id: Option<i64>,
    pub limit: Option<u64>,
}
