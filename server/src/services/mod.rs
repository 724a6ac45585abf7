//! Services: the product's behaviour, between HTTP adapters and storage.
//!
//! * [`apple`]: the device-facing Apple protocol (check-in, command reports).
//! * [`commands`]: queueing, cancelling, lock and wipe for admins; platform-neutral.
//! * [`tokens`]: admin API tokens.
//! * [`maintenance`]: expiry and pruning of the queue.
//! * [`push_cert`]: the push key kept between a certificate request and its upload.

pub mod admins;
pub mod android;
pub mod apple;
pub mod commands;
pub mod directory;
pub mod enrollments;
pub mod incident_rules;
pub mod incidents;
pub mod lost_reports;
pub mod maintenance;
pub mod notify;
pub mod pki;
pub mod playbooks;
pub mod policies;
pub mod push;
pub mod push_cert;
pub mod reenrollment;
pub mod results;
pub mod revocation;
pub mod scep;
pub mod tokens;
pub mod wake;

use crate::storage::{Outage, StoreError};

/// What went wrong, in terms the HTTP layer maps to status codes.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("{0}")]
    BadRequest(String),
    /// Well formed, and what it says cannot be done: content no schema can state is
    /// wrong (a certificate that does not parse, a password that contains the
    /// account name, a command this device cannot run): 422.
    #[error("{0}")]
    Unprocessable(String),
    /// An admin action needs configuration an admin must provide first (Google
    /// connection, directory): 409 to the admin API, 503 to a device.
    #[error("{0}")]
    NotConfigured(String),
    #[error("{0}")]
    Unauthorized(String),
    /// The caller is who it says, and still may not do this (403).
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Gone(String),
    #[error("{0}")]
    NotImplemented(String),
    /// The server lacks configuration an admin must provide first.
    #[error("{0}")]
    Unavailable(String),
    /// The database cannot serve right now (down, locked, full): worth a retry.
    #[error("{}", outage_message(*.0))]
    StorageUnavailable(Outage),
    #[error("internal error: {0}")]
    Internal(String),
}

/// What the caller is told; the driver's detail goes to the log only.
fn outage_message(outage: Outage) -> &'static str {
    match outage {
        Outage::Unreachable => "the database is unavailable; try again later",
        Outage::Busy => "the database is busy; try again shortly",
        Outage::Full => {
            "the server's storage is full: writes fail until an administrator frees disk space; try again later"
        }
    }
}

impl ServiceError {
    /// Seconds a client should wait before retrying, for errors a retry may cure.
    pub fn retry_after(&self) -> Option<u32> {
        match self {
            ServiceError::StorageUnavailable(Outage::Busy) => Some(1),
            ServiceError::StorageUnavailable(Outage::Unreachable) => Some(5),
            ServiceError::StorageUnavailable(Outage::Full) => Some(60),
            _ => None,
        }
    }
}

/// Logs an outage once per kind and minute: a database that is down meets every
/// request, and one line says it as well as ten thousand.
fn log_outage(outage: Outage, detail: &sea_orm::DbErr) {
    use std::sync::atomic::{AtomicI64, Ordering};
    static LAST: [AtomicI64; 3] = [AtomicI64::new(0), AtomicI64::new(0), AtomicI64::new(0)];
    let slot = &LAST[match outage {
        Outage::Unreachable => 0,
        Outage::Busy => 1,
        Outage::Full => 2,
    }];
    let now = chrono::Utc::now().timestamp();
    let last = slot.load(Ordering::Relaxed);
    if now - last < 60
        || slot
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_err()
    {
        return;
    }
    match outage {
        Outage::Full => tracing::error!(
            %detail,
            "database storage is full: writes answer 503 until disk space is freed"
        ),
        other => tracing::warn!(?other, %detail, "database unavailable: requests answer 503"),
    }
}

impl From<StoreError> for ServiceError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(m) => ServiceError::NotFound(m),
            StoreError::Conflict(m) => ServiceError::Conflict(m),
            StoreError::InvalidValue(m) => ServiceError::BadRequest(m),
            StoreError::Db(e) => ServiceError::Internal(e.to_string()),
            StoreError::Unavailable(outage, detail) => {
                log_outage(outage, &detail);
                ServiceError::StorageUnavailable(outage)
            }
        }
    }
}

pub type ServiceResult<T> = Result<T, ServiceError>;

/// Purposes bound into sealed secrets (see `enrollment::seal`).
pub mod seal_purpose {
    pub const UNLOCK_TOKEN: &str = "device.unlock_token";
    pub const BOOTSTRAP_TOKEN: &str = "device.bootstrap_token";
    pub const COMMAND_PAYLOAD: &str = "command.payload";
    pub const COMMAND_RESULT: &str = "command.result";
}
