//! Process-wide counters of things that happen too often, or to too many strangers,
//! to be worth one event each: anonymous SCEP requests refused, enrollment URL uses,
//! failed admin authentications.
//!
//! Why counters and not events: the event log is the audit trail admins read and the
//! incident register scans; anyone on the internet can send garbage to /scep, and one
//! row per garbage request would let them fill the database and bury real incidents.
//! Refusals tied to an enrollment (a challenge used twice, expired, revoked) are still
//! events; everything else only moves a counter here.
//!
//! Plain atomics, counted since the process started (like any scraped metric), read
//! by admins at `GET /api/v1/metrics` (docs/configuration.md).

use serde::Serialize;
use std::sync::atomic::{AtomicU64, Ordering};

/// The counters; one instance per process, [`METRICS`].
#[derive(Default)]
pub struct Metrics {
    /// SCEP PKIOperation requests refused: unparseable, no or unknown challenge,
    /// unsupported message type, refused renewal.
    pub scep_refused: AtomicU64,
    /// Of those, the ones whose challenge no enrollment issued (guesses).
    pub scep_unknown_challenge: AtomicU64,
    /// Fetches of a valid enrollment URL (Apple profile downloads and refused
    /// anonymous fetches of Android enrollments alike).
    pub enrollment_url_uses: AtomicU64,
    /// Enrollment URL fetches with a token no enrollment has.
    pub enrollment_url_unknown: AtomicU64,
    /// Admin API calls with a missing, malformed, wrong or revoked bearer token.
    pub admin_auth_failures: AtomicU64,
    /// Admin API calls refused (429) because their address failed too often.
    pub admin_auth_throttled: AtomicU64,
}

/// The process's counters.
pub static METRICS: Metrics = Metrics {
    scep_refused: AtomicU64::new(0),
    scep_unknown_challenge: AtomicU64::new(0),
    enrollment_url_uses: AtomicU64::new(0),
    enrollment_url_unknown: AtomicU64::new(0),
    admin_auth_failures: AtomicU64::new(0),
    admin_auth_throttled: AtomicU64::new(0),
};

/// Adds one to a counter. Relaxed: counters order nothing else.
pub fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// The counters at one moment, as the API returns them.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
pub struct Snapshot {
    pub scep_refused: u64,
    pub scep_unknown_challenge: u64,
    pub enrollment_url_uses: u64,
    pub enrollment_url_unknown: u64,
    pub admin_auth_failures: u64,
    pub admin_auth_throttled: u64,
}

impl Metrics {
    pub fn snapshot(&self) -> Snapshot {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Snapshot {
            scep_refused: get(&self.scep_refused),
            scep_unknown_challenge: get(&self.scep_unknown_challenge),
            enrollment_url_uses: get(&self.enrollment_url_uses),
            enrollment_url_unknown: get(&self.enrollment_url_unknown),
            admin_auth_failures: get(&self.admin_auth_failures),
            admin_auth_throttled: get(&self.admin_auth_throttled),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bump_counts_into_the_snapshot() {
        let metrics = Metrics::default();
        bump(&metrics.scep_refused);
        bump(&metrics.scep_refused);
        bump(&metrics.admin_auth_failures);
        let s = metrics.snapshot();
        assert_eq!(s.scep_refused, 2);
        assert_eq!(s.admin_auth_failures, 1);
        assert_eq!(s.enrollment_url_uses, 0);
    }
}
