//! Services: the product's behaviour, between HTTP adapters and storage.
//!
//! * [`apple`]: the device-facing Apple protocol (check-in, command reports).
//! * [`commands`]: queueing, cancelling, lock and wipe for admins; platform-neutral.
//! * [`tokens`]: admin API tokens.
//! * [`maintenance`]: expiry and pruning of the queue.

pub mod apple;
pub mod commands;
pub mod enrollments;
pub mod maintenance;
pub mod pki;
pub mod push;
pub mod scep;
pub mod tokens;
pub mod wake;

use crate::storage::StoreError;

/// What went wrong, in terms the HTTP layer maps to status codes.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthorized(String),
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
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<StoreError> for ServiceError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(m) => ServiceError::NotFound(m),
            StoreError::Conflict(m) => ServiceError::Conflict(m),
            StoreError::Db(e) => ServiceError::Internal(e.to_string()),
        }
    }
}

pub type ServiceResult<T> = Result<T, ServiceError>;

/// Purposes bound into sealed secrets (see `enrollment::seal`).
pub mod seal_purpose {
    pub const UNLOCK_TOKEN: &str = "device.unlock_token";
    pub const BOOTSTRAP_TOKEN: &str = "device.bootstrap_token";
    pub const COMMAND_PAYLOAD: &str = "command.payload";
}
