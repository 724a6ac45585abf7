//! The push service: holds the push certificate and the APNs client, coalesces wake
//! requests, pushes with bounded concurrency, records every attempt, and wakes again
//! devices whose commands wait too long.

use super::wake::DeviceWaker;
use super::{ServiceError, ServiceResult};
use crate::domain::event::{kinds, severity, NewEvent};
use crate::push::apns::{ApnsClient, ApnsSettings, Outcome, PushResult, PushTarget};
use crate::push::certificate::PushCertificate;
use crate::services::tokens::AdminIdentity;
use crate::storage::{PushAttemptRecord, PushCertificateRow, Storage};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use enrollment::seal::Sealer;
use serde::Serialize;
use std::collections::HashSet;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use tokio::sync::Notify;

/// Purpose the push certificate's key is sealed under (bound to its row id).
pub(crate) const CERTIFICATE_KEY_PURPOSE: &str = "push.certificate_key";
const KEY_PURPOSE: &str = CERTIFICATE_KEY_PURPOSE;

/// The push certificate as the admin API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct PushCertificateInfo {
    pub topic: String,
    pub subject: String,
    pub fingerprint: String,
    pub not_before: DateTime<Utc>,
    pub not_after: DateTime<Utc>,
    pub days_left: i64,
    /// Set from 30 days before expiry: an expired push certificate cuts off the fleet.
    pub warning: Option<String>,
    pub uploaded_by: String,
    pub uploaded_at: DateTime<Utc>,
}

/// What happened when a device was pushed.
#[derive(Debug, Clone, Serialize)]
pub struct DevicePush {
    pub device_id: String,
    /// delivered, token_invalid, configuration_error, retries_exhausted, rejected,
    /// or, without an attempt: no_push_token, push_token_invalid, no_push_certificate.
    pub outcome: String,
    pub http_status: Option<u16>,
    pub reason: Option<String>,
    pub apns_id: Option<String>,
    pub attempts: usize,
}

struct Active {
    client: Arc<ApnsClient>,
    info: PushCertificateInfo,
}

#[derive(Debug, Clone)]
pub struct PushConfig {
    pub apns: ApnsSettings,
    /// Wake requests within this window become one push per device.
    pub coalesce: Duration,
    /// Devices with waiting commands that have not connected for this long are
    /// pushed again (0 turns it off).
    pub repush_interval: Duration,
}

pub struct PushService {
    store: Arc<dyn Storage>,
    sealer: Sealer,
    config: PushConfig,
    active: RwLock<Option<Active>>,
    pending: Mutex<HashSet<String>>,
    wake_up: Notify,
}

fn info_of(
    row: &PushCertificateRow,
    cert: &PushCertificate,
    now: DateTime<Utc>,
) -> PushCertificateInfo {
    PushCertificateInfo {
        topic: row.topic.clone(),
        subject: row.subject.clone(),
        fingerprint: row.fingerprint.clone(),
        not_before: row.not_before,
        not_after: row.not_after,
        days_left: cert.days_left(now),
        warning: cert.expiry_warning(now),
        uploaded_by: row.uploaded_by.clone(),
        uploaded_at: row.uploaded_at,
    }
}

impl PushService {
    pub fn new(store: Arc<dyn Storage>, sealer: Sealer, config: PushConfig) -> Arc<Self> {
        Arc::new(PushService {
            store,
            sealer,
            config,
            active: RwLock::new(None),
            pending: Mutex::new(HashSet::new()),
            wake_up: Notify::new(),
        })
    }

    /// Loads the certificate in use from the database (at start, and periodically so
    /// that every instance behind a load balancer picks up an upload).
    pub async fn reload(&self) -> ServiceResult<()> {
        let Some(row) = self.store.active_push_certificate().await? else {
            *self.active.write().expect("lock") = None;
            return Ok(());
        };
        let current = self
            .active
            .read()
            .expect("lock")
            .as_ref()
            .map(|a| a.info.fingerprint.clone());
        if current.as_deref() == Some(row.fingerprint.as_str()) {
            return Ok(());
        }
        let key_pem = self
            .sealer
            .open(KEY_PURPOSE, &row.id, &row.private_key_sealed)
            .map_err(|e| ServiceError::Internal(format!("push certificate key: {e}")))?;
        // Expired certificates still load: the admin must see the warning.
        let cert =
            PushCertificate::from_pem(row.certificate_pem.as_bytes(), &key_pem, row.not_before)
                .map_err(|e| ServiceError::Internal(format!("stored push certificate: {e}")))?;
        let client = self.client_for(&cert)?;
        self.activate(&row, &cert, client);
        Ok(())
    }

    fn client_for(&self, cert: &PushCertificate) -> ServiceResult<ApnsClient> {
        ApnsClient::new(cert, self.config.apns.clone())
            .map_err(|e| ServiceError::Internal(format!("APNs client: {e}")))
    }

    fn activate(&self, row: &PushCertificateRow, cert: &PushCertificate, client: ApnsClient) {
        let info = info_of(row, cert, Utc::now());
        if let Some(w) = &info.warning {
            tracing::warn!(topic = %info.topic, "{w}");
        }
        tracing::info!(topic = %info.topic, url = %self.config.apns.url, "push certificate in use");
        *self.active.write().expect("lock") = Some(Active {
            client: Arc::new(client),
            info,
        });
    }

    pub fn info(&self) -> Option<PushCertificateInfo> {
        self.active.read().expect("lock").as_ref().map(|a| {
            let mut info = a.info.clone();
            let now = Utc::now();
            info.days_left = (info.not_after - now).num_days();
            info.warning = expiry_warning(info.not_after, now);
            info
        })
    }

    /// Installs a new or renewed push certificate. A renewal must keep the topic:
    /// devices enrolled with the old topic would otherwise never be reached again.
    pub async fn upload(
        &self,
        admin: &AdminIdentity,
        cert: PushCertificate,
    ) -> ServiceResult<PushCertificateInfo> {
        if let Some(current) = self.info() {
            if current.topic != cert.topic {
                return Err(ServiceError::Conflict(format!(
                    "this certificate's topic is {}, but the enrolled devices use {}: a different topic means a different \
                     push certificate, and every device would have to enroll again. Renew the existing certificate at \
                     Apple's Push Certificates Portal (same Apple ID, 'Renew') to keep the topic.",
                    cert.topic, current.topic
                )));
            }
        }
        let now = Utc::now();
        // The id first: the sealed key is bound to it.
        let id = uuid::Uuid::new_v4().to_string();
        let row = PushCertificateRow {
            topic: cert.topic.clone(),
            subject: cert.subject.clone(),
            fingerprint: cert.fingerprint(),
            certificate_pem: String::from_utf8_lossy(&cert.cert_pem()).into_owned(),
            private_key_sealed: self
                .sealer
                .seal(KEY_PURPOSE, &id, &cert.key_pem())
                .map_err(|e| ServiceError::Internal(e.to_string()))?,
            not_before: cert.not_before,
            not_after: cert.not_after,
            uploaded_by: admin.name.clone(),
            uploaded_at: now,
            id,
        };
        // The client is built before anything is stored: a certificate the TLS stack
        // cannot use is refused without replacing the one in use.
        let client = self.client_for(&cert)?;
        self.store.replace_push_certificate(row.clone()).await?;
        self.activate(&row, &cert, client);
        let info = info_of(&row, &cert, now);
        self.store
            .record(
                NewEvent::new(
                    kinds::ADMIN_PUSH_CERTIFICATE_UPLOADED,
                    format!("push certificate for {} uploaded, valid until {}", info.topic, info.not_after.date_naive()),
                )
                .actor(&admin.name)
                .data(serde_json::json!({ "topic": info.topic, "fingerprint": info.fingerprint, "not_after": info.not_after })),
            )
            .await?;
        Ok(info)
    }

    /// Installs a certificate Apple issued for the key `mdm push-cert request` kept
    /// (see `push_cert`): same checks as [`Self::upload`], plus the key must match.
    pub async fn upload_for_kept_key(
        &self,
        admin: &AdminIdentity,
        cert_pem: &[u8],
    ) -> ServiceResult<PushCertificateInfo> {
        let cert =
            super::push_cert::pair_with_kept_key(&self.store, &self.sealer, cert_pem).await?;
        self.upload(admin, cert).await
    }

    /// Pushes these devices now and reports what APNs said for each.
    pub async fn push_now(&self, device_ids: &[String]) -> ServiceResult<Vec<DevicePush>> {
        let client = self
            .active
            .read()
            .expect("lock")
            .as_ref()
            .map(|a| a.client.clone());
        let addresses = self.store.push_addresses(device_ids).await?;
        let mut report = Vec::with_capacity(addresses.len());
        let mut targets = Vec::with_capacity(addresses.len());
        for address in addresses {
            let skip = |outcome: &str| DevicePush {
                device_id: address.device_id.clone(),
                outcome: outcome.into(),
                http_status: None,
                reason: None,
                apns_id: None,
                attempts: 0,
            };
            match (&client, &address.push_token, &address.push_magic) {
                (None, _, _) => report.push(skip("no_push_certificate")),
                (_, Some(_), Some(_)) if address.token_invalid => {
                    report.push(skip("push_token_invalid"))
                }
                (Some(_), Some(token), Some(magic)) => targets.push(PushTarget {
                    device_id: address.device_id.clone(),
                    token_hex: token.clone(),
                    push_magic: magic.clone(),
                }),
                _ => report.push(skip("no_push_token")),
            }
        }
        let Some(client) = client else {
            return Ok(report);
        };
        if targets.is_empty() {
            return Ok(report);
        }
        let results = client.push_all(targets).await;
        self.record(&results).await?;
        report.extend(results.into_iter().map(|r| {
            let last = r.last().cloned();
            DevicePush {
                device_id: r.device_id.clone(),
                outcome: r.outcome.as_str().into(),
                http_status: last.as_ref().and_then(|a| a.status),
                reason: last.as_ref().and_then(|a| a.reason.clone()),
                apns_id: last.and_then(|a| a.apns_id),
                attempts: r.attempts.len(),
            }
        }));
        Ok(report)
    }

    async fn record(&self, results: &[PushResult]) -> ServiceResult<()> {
        let attempts: Vec<PushAttemptRecord> = results
            .iter()
            .flat_map(|r| r.attempts.iter())
            .map(|a| PushAttemptRecord {
                device_id: a.device_id.clone(),
                attempted_at: a.at,
                attempt: a.attempt as i32,
                status: a.status.map(i32::from),
                reason: a.reason.clone(),
                apns_id: a.apns_id.clone(),
            })
            .collect();
        self.store.record_push_attempts(attempts).await?;
        let invalid: Vec<String> = results
            .iter()
            .filter(|r| r.outcome == Outcome::TokenInvalid)
            .map(|r| r.device_id.clone())
            .collect();
        if !invalid.is_empty() {
            self.store
                .mark_push_tokens_invalid(&invalid, Utc::now())
                .await?;
        }
        let misconfigured: Vec<&PushResult> = results
            .iter()
            .filter(|r| r.outcome == Outcome::ConfigurationError)
            .collect();
        if let Some(first) = misconfigured.first() {
            let reason = first
                .last()
                .and_then(|a| a.reason.clone())
                .unwrap_or_else(|| "refused".into());
            tracing::error!(devices = misconfigured.len(), %reason, "APNs refused the push certificate or topic");
            self.store
                .record(
                    NewEvent::new(
                        kinds::PUSH_CONFIGURATION_ERROR,
                        format!("APNs refused pushes ({reason}): check the push certificate, its topic and the APNs endpoint"),
                    )
                    .severity(severity::MEDIUM)
                    .data(serde_json::json!({ "devices": misconfigured.len(), "reason": reason })),
                )
                .await?;
        }
        let exhausted = results
            .iter()
            .filter(|r| r.outcome == Outcome::RetriesExhausted)
            .count();
        if exhausted > 0 {
            tracing::warn!(
                devices = exhausted,
                "pushes failed after all retries; the re-push schedule will try again"
            );
        }
        Ok(())
    }

    /// Drains coalesced wake requests and pushes them.
    pub fn spawn_flusher(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let service = self.clone();
        tokio::spawn(async move {
            loop {
                service.wake_up.notified().await;
                // Let the burst finish: commands queued together get one push.
                tokio::time::sleep(service.config.coalesce).await;
                let ids: Vec<String> = service.pending.lock().expect("lock").drain().collect();
                if ids.is_empty() {
                    continue;
                }
                if let Err(e) = service.push_now(&ids).await {
                    tracing::warn!(error = %e, devices = ids.len(), "push failed");
                }
            }
        })
    }

    /// Follows the database: an upload on one server instance reaches the others
    /// within a minute; the expiry warning is repeated daily.
    pub fn spawn_reload(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let service = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(60));
            let mut minutes = 0u32;
            loop {
                tick.tick().await;
                if let Err(e) = service.reload().await {
                    tracing::warn!(error = %e, "reloading the push certificate failed");
                }
                if minutes.is_multiple_of(24 * 60) {
                    service.warn_if_expiring().await;
                }
                minutes = minutes.wrapping_add(1);
            }
        })
    }

    /// Wakes again, on a schedule, devices whose commands have waited a whole interval,
    /// spreading the pushes over half an interval so they do not all answer at once.
    pub fn spawn_repush(self: &Arc<Self>) -> Option<tokio::task::JoinHandle<()>> {
        let interval = self.config.repush_interval;
        if interval.is_zero() {
            return None;
        }
        let service = self.clone();
        Some(tokio::spawn(async move {
            let mut tick = tokio::time::interval(interval);
            tick.tick().await;
            loop {
                tick.tick().await;
                if let Err(e) = service.repush_once(interval).await {
                    tracing::warn!(error = %e, "re-push run failed");
                }
            }
        }))
    }

    pub async fn repush_once(&self, interval: Duration) -> ServiceResult<usize> {
        let since = Utc::now() - chrono::Duration::from_std(interval).unwrap_or_default();
        let mut ids = self.store.devices_to_repush(since, 50_000).await?;
        if ids.is_empty() {
            return Ok(0);
        }
        shuffle(&mut ids);
        let chunks: Vec<Vec<String>> = ids.chunks(100).map(|c| c.to_vec()).collect();
        let gap = (interval / 2) / chunks.len() as u32;
        for (i, chunk) in chunks.iter().enumerate() {
            if i > 0 {
                tokio::time::sleep(gap).await;
            }
            self.push_now(chunk).await?;
        }
        Ok(ids.len())
    }

    async fn warn_if_expiring(&self) {
        let Some(info) = self.info() else { return };
        let Some(warning) = info.warning else { return };
        tracing::warn!(topic = %info.topic, "{warning}");
        let level = if info.days_left < 0 {
            severity::HIGH
        } else {
            severity::MEDIUM
        };
        let _ = self
            .store
            .record(
                NewEvent::new(kinds::PUSH_CERTIFICATE_EXPIRING, warning)
                    .severity(level)
                    .data(serde_json::json!({ "topic": info.topic, "not_after": info.not_after, "days_left": info.days_left })),
            )
            .await;
    }
}

pub fn expiry_warning(not_after: DateTime<Utc>, now: DateTime<Utc>) -> Option<String> {
    let days = (not_after - now).num_days();
    if not_after <= now {
        Some(format!(
            "the push certificate expired on {}: no device can be reached until it is renewed",
            not_after.date_naive()
        ))
    } else if days < crate::push::certificate::EXPIRY_WARNING_DAYS {
        Some(format!(
            "the push certificate expires in {days} day(s), on {}: renew it (same Apple ID, same topic) before then or every device stops receiving commands",
            not_after.date_naive()
        ))
    } else {
        None
    }
}

fn shuffle(ids: &mut [String]) {
    for i in (1..ids.len()).rev() {
        let mut r = [0u8; 4];
        openssl::rand::rand_bytes(&mut r).ok();
        let j = u32::from_le_bytes(r) as usize % (i + 1);
        ids.swap(i, j);
    }
}

#[async_trait]
impl DeviceWaker for PushService {
    async fn wake(&self, device_ids: &[String]) {
        self.pending
            .lock()
            .expect("lock")
            .extend(device_ids.iter().cloned());
        self.wake_up.notify_one();
    }
}
