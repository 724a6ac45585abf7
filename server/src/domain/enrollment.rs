//! Enrollments: what a QR code stands for. An enrollment admits devices of one
//! platform until it expires, is revoked, or has been used `max_uses` times.

use chrono::{DateTime, Utc};
use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct Enrollment {
    pub id: String,
    pub platform: super::Platform,
    pub name: String,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub max_uses: Option<i32>,
    pub uses: i32,
    pub revoked_at: Option<DateTime<Utc>>,
    pub assigned_user: Option<String>,
    pub assigned_group: Option<String>,
    /// Platform options (Android: Wi-Fi, locale, time zone); a Wi-Fi password is
    /// kept sealed and never shown here.
    #[serde(serialize_with = "without_secrets")]
    pub options: serde_json::Value,
}

/// Why an enrollment admits no more devices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EnrollmentState {
    Active,
    Expired,
    Revoked,
    UsedUp,
}

impl Enrollment {
    pub fn state(&self, now: DateTime<Utc>) -> EnrollmentState {
        if self.revoked_at.is_some() {
            EnrollmentState::Revoked
        } else if self.expires_at.is_some_and(|at| at <= now) {
            EnrollmentState::Expired
        } else if self.max_uses.is_some_and(|max| self.uses >= max) {
            EnrollmentState::UsedUp
        } else {
            EnrollmentState::Active
        }
    }

    /// What a person holding the device is told when the enrollment refuses it.
    pub fn refusal(&self, now: DateTime<Utc>) -> Option<String> {
        match self.state(now) {
            EnrollmentState::Active => None,
            EnrollmentState::Expired => Some(format!(
                "This enrollment link expired on {}. Ask your IT administrator for a new one.",
                self.expires_at.map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string()).unwrap_or_default()
            )),
            EnrollmentState::Revoked => Some(
                "This enrollment link was withdrawn by the administrator. Ask your IT administrator for a new one."
                    .into(),
            ),
            EnrollmentState::UsedUp => Some(format!(
                "This enrollment link has already been used for {} device(s), its limit. Ask your IT administrator for a new one.",
                self.uses
            )),
        }
    }
}

fn without_secrets<S: serde::Serializer>(
    options: &serde_json::Value,
    s: S,
) -> Result<S::Ok, S::Error> {
    let mut shown = options.clone();
    if let Some(o) = shown.as_object_mut() {
        o.retain(|k, _| !k.ends_with("_sealed"));
    }
    serde::Serialize::serialize(&shown, s)
}
