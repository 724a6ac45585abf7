//! An admin's approval for a device to re-enroll with a new certificate.
//!
//! A device record answers to exactly one certificate. It moves to a new one on its
//! own only after it checked out or acknowledged a wipe, and only with a fresh
//! certificate from our SCEP server; any other re-enrollment (a phone whose MDM
//! profile was reinstalled without checking out, a certificate from an external CA)
//! is held until an admin approves it here, for a limited time. Offices that want no
//! such path set `--reenrollment refuse`.

use super::tokens::AdminIdentity;
use super::{ServiceError, ServiceResult};
use crate::domain::event::{kinds, severity, NewEvent};
use crate::storage::Storage;
use chrono::{DateTime, Duration, Utc};
use std::sync::Arc;

/// What happens to a re-enrollment of a device that is still enrolled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReenrollmentPolicy {
    /// Held until an admin approves it (the default).
    Hold,
    /// Refused; the device must check out or be wiped first.
    Refuse,
}

impl ReenrollmentPolicy {
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "hold" => Some(ReenrollmentPolicy::Hold),
            "refuse" => Some(ReenrollmentPolicy::Refuse),
            _ => None,
        }
    }
}

/// How long an approval waits for the device, by default and at most.
pub const DEFAULT_APPROVAL_HOURS: u32 = 24;
pub const MAX_APPROVAL_HOURS: u32 = 168;

pub struct ReenrollmentService {
    store: Arc<dyn Storage>,
    policy: ReenrollmentPolicy,
}

impl ReenrollmentService {
    pub fn new(store: Arc<dyn Storage>, policy: ReenrollmentPolicy) -> Self {
        ReenrollmentService { store, policy }
    }

    /// Lets `device_id` re-enroll with a new certificate within `hours`; its queue is
    /// kept across the re-enrollment only when `keep_queue`.
    pub async fn approve(
        &self,
        admin: &AdminIdentity,
        device_id: &str,
        keep_queue: bool,
        hours: Option<u32>,
    ) -> ServiceResult<DateTime<Utc>> {
        if self.policy == ReenrollmentPolicy::Refuse {
            return Err(ServiceError::Conflict(
                "this server refuses re-enrollment of enrolled devices (--reenrollment refuse); \
                 the device must check out or be wiped first"
                    .into(),
            ));
        }
        let device = self
            .store
            .device(device_id)
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("device {device_id} not found")))?;
        if device.identity_revoked_at.is_some() {
            return Err(ServiceError::Conflict(
                "this device's identity was revoked: it enrolls again only through a new enrollment (install the enrollment profile again), no approval needed or possible".into(),
            ));
        }
        let hours = hours.unwrap_or(DEFAULT_APPROVAL_HOURS);
        if !(1..=MAX_APPROVAL_HOURS).contains(&hours) {
            return Err(ServiceError::BadRequest(format!(
                "hours must be between 1 and {MAX_APPROVAL_HOURS}"
            )));
        }
        let until = Utc::now() + Duration::hours(i64::from(hours));
        self.store
            .approve_reenrollment(device_id, until, keep_queue)
            .await?;
        self.store
            .record(
                NewEvent::new(
                    kinds::ADMIN_REENROLLMENT_APPROVED,
                    format!("re-enrollment with a new certificate approved until {until}"),
                )
                .device(device_id)
                .actor(&admin.name)
                .severity(severity::MEDIUM)
                .data(serde_json::json!({ "until": until, "keep_queue": keep_queue })),
            )
            .await?;
        Ok(until)
    }
}
