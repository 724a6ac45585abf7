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
