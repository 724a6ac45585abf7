//! Revoking device identities, and the device CA's CRL.
//!
//! A device's identity is revoked when it is wiped (EraseDevice acknowledged),
//! checks out, is retired or deleted by an admin, or by hand (a lost phone). From then
//! on its certificate is refused at check-in (401) and at SCEP renewal, and the CRL
//! lists it for RADIUS servers that accept device certificates for EAP-TLS. The
//! device comes back only through a new enrollment (a fresh SCEP certificate).

use super::pki::Pki;
use super::{ServiceError, ServiceResult};
use crate::domain::event::{kinds, severity, NewEvent};
use crate::storage::{RevocationEffect, RevocationOutcome, Storage, StoredCrl};
use chrono::{DateTime, Duration, Utc};
use enrollment::crl::{build_crl, RevocationReason, RevokedEntry};
use std::sync::Arc;

/// A CRL is valid this long (nextUpdate)...
const CRL_LIFETIME_DAYS: i64 = 7;
/// ...and rebuilt once less than this is left, even without a new revocation, so a
/// relying party that caches it never holds a stale one.
const CRL_REFRESH_BEFORE_DAYS: i64 = 4;
/// The row the device CA's CRL is stored under.
const DEVICE_CA_CRL: &str = "device_ca";

/// Who or what revoked an identity, for the event stream.
#[derive(Debug, Clone)]
pub enum RevokedBy {
    /// The device itself: it acknowledged a wipe or checked out.
    Device,
    /// An admin (token or account name).
    Admin(String),
}

impl RevokedBy {
    fn actor(&self) -> &str {
        match self {
            RevokedBy::Device => "device",
            RevokedBy::Admin(name) => name,
        }
    }
}

pub struct RevocationService {
    store: Arc<dyn Storage>,
    pki: Arc<Pki>,
}

impl RevocationService {
    pub fn new(store: Arc<dyn Storage>, pki: Arc<Pki>) -> Self {
        RevocationService { store, pki }
    }

    /// Revokes the identity of `device_id` and records why (`why` is the event's
    /// wording, e.g. "wiped"). Revoking an identity revoked before is harmless and
    /// keeps the first reason.
    pub async fn revoke(
        &self,
        device_id: &str,
        reason: RevocationReason,
        effect: RevocationEffect,
        by: RevokedBy,
        why: &str,
    ) -> ServiceResult<RevocationOutcome> {
        let outcome = self
            .store
            .revoke_device_identity(device_id, reason.as_str(), effect, Utc::now())
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("device {device_id} not found")))?;
        let (kind, text) = match effect {
            RevocationEffect::Revoke => (
                kinds::DEVICE_IDENTITY_REVOKED,
                format!("device identity revoked: {why}"),
            ),
            RevocationEffect::Retire => (
                kinds::ADMIN_DEVICE_RETIRED,
                format!("device retired and its identity revoked: {why}"),
            ),
            RevocationEffect::Delete => (
                kinds::ADMIN_DEVICE_DELETED,
                format!("device deleted and its identity revoked: {why}"),
            ),
        };
        tracing::info!(
            device_id,
            reason = reason.as_str(),
            certificates = outcome.certificates_revoked,
            "device identity revoked"
        );
        self.store
            .record(
                NewEvent::new(kind, text)
                    .device(device_id)
                    .actor(by.actor())
                    .severity(severity::MEDIUM)
                    .data(serde_json::json!({
                        "reason": reason.as_str(),
                        "why": why,
                        "fingerprint": outcome.fingerprint,
                        "certificates_revoked": outcome.certificates_revoked,
                        "cancelled_commands": outcome.cancelled_commands,
                        "already_revoked": outcome.already_revoked,
                    })),
            )
            .await?;
        Ok(outcome)
    }

    /// The device CA's CRL (DER): the stored one while it covers every revocation
    /// and is fresh, else a new one with the next number, stored for every instance.
    pub async fn device_ca_crl(&self) -> ServiceResult<Vec<u8>> {
        let now = Utc::now();
        let stored = self.store.crl(DEVICE_CA_CRL).await?;
        let latest = self.store.latest_revocation().await?;
        if let Some(crl) = &stored {
            let covers = match (latest, crl.covers_until) {
                (None, _) => true,
                (Some(latest), Some(covered)) => latest <= covered,
                (Some(_), None) => false,
            };
            let fresh = crl.next_update - now > Duration::days(CRL_REFRESH_BEFORE_DAYS);
            if covers && fresh {
                return Ok(crl.der.clone());
            }
        }
        let built = self
            .build(now, stored.as_ref().map_or(1, |c| c.number + 1), latest)
            .await?;
        if self
            .store
            .put_crl(built.clone(), stored.as_ref().map(|c| c.number))
            .await?
        {
            tracing::info!(
                number = built.number,
                entries = built.entries,
                "device CA CRL rebuilt"
            );
            return Ok(built.der);
        }
        // Another instance stored a newer one meanwhile: serve that one.
        Ok(self
            .store
            .crl(DEVICE_CA_CRL)
            .await?
            .map(|c| c.der)
            .unwrap_or(built.der))
    }

    /// A new CRL numbered `number`; `latest` is the newest revocation read before
    /// the list (one whose certificate has expired is not listed, and must not make
    /// the CRL look stale forever).
    async fn build(
        &self,
        now: DateTime<Utc>,
        number: i64,
        latest: Option<DateTime<Utc>>,
    ) -> ServiceResult<StoredCrl> {
        let revoked = self.store.revoked_certificates(now).await?;
        let entries: Vec<RevokedEntry> = revoked
            .iter()
            .map(|r| RevokedEntry {
                serial_hex: r.serial.clone(),
                revoked_at: r.revoked_at.timestamp(),
                reason: r
                    .reason
                    .as_deref()
                    .and_then(RevocationReason::parse)
                    .unwrap_or(RevocationReason::Unspecified),
            })
            .collect();
        let next_update = now + Duration::days(CRL_LIFETIME_DAYS);
        let der = build_crl(
            &self.pki.device_ca,
            u64::try_from(number).unwrap_or(1),
            now.timestamp(),
            next_update.timestamp(),
            &entries,
        )
        .map_err(|e| ServiceError::Internal(format!("building the CRL: {e}")))?;
        Ok(StoredCrl {
            ca: DEVICE_CA_CRL.into(),
            number,
            der,
            this_update: now,
            next_update,
            covers_until: latest,
            entries: entries.len() as i64,
        })
    }
}
