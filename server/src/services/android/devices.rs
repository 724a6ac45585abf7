//! Device state from Google: Pub/Sub notifications (ENROLLMENT, STATUS_REPORT), pulled
//! and acknowledged only once stored, and the periodic full sync (`devices.list`) that
//! repairs whatever a lost or late notification left behind.
//!
//! Every path ends in one idempotent upsert keyed by the AMAPI device name: a message
//! delivered twice stores the same state twice; one delivered late, with a report
//! older than the stored one, is ignored (`observed_at`). A message we cannot read is
//! logged and acknowledged (Pub/Sub would otherwise deliver it forever); one we could
//! not store (database down) is not acknowledged, so that Pub/Sub delivers it again.

use super::AndroidService;
use crate::android::pubsub::ReceivedMessage;
use crate::android::types::Device;
use crate::domain::event::{kinds, severity, NewEvent};
use crate::services::{ServiceError, ServiceResult};
use crate::storage::{AndroidDeviceRecord, AndroidDeviceState, AndroidHealth, AndroidUpsert};
use base64::Engine;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

/// Messages per pull, and devices per `devices.list` page (AMAPI's own maximum).
const PULL_BATCH: u32 = 100;
const PAGE_SIZE: u32 = 100;
/// Devices stored at once (a sync page, a pull's messages of different devices).
const PARALLEL: usize = 8;

/// Which device a message is about (its resource's device name), so that one
/// device's messages are handled in their order; the message id when unreadable.
fn message_key(m: &ReceivedMessage) -> String {
    let data = m
        .message
        .data
        .as_deref()
        .and_then(|d| base64::engine::general_purpose::STANDARD.decode(d).ok())
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok());
    let name = data.as_ref().and_then(|v| {
        v["device"]
            .as_str()
            .or(v["name"].as_str())
            .map(|n| n.split("/operations/").next().unwrap_or(n).to_owned())
    });
    name.unwrap_or_else(|| {
        m.message
            .message_id
            .clone()
            .unwrap_or_else(|| m.ack_id.clone())
    })
}

fn time(s: &Option<String>) -> Option<DateTime<Utc>> {
    s.as_deref()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc))
}

/// The storage record of an AMAPI device resource (`raw` is the resource as Google
/// sent it, `device` the fields we read from it).
pub fn record_from(device: &Device, raw: &Value) -> AndroidDeviceRecord {
    let enrolled_at = time(&device.enrollment_time);
    let last_report = time(&device.last_status_report_time);
    let observed_at = [
        enrolled_at,
        last_report,
        time(&device.last_policy_sync_time),
    ]
    .into_iter()
    .flatten()
    .max()
    .unwrap_or(DateTime::<Utc>::UNIX_EPOCH);
    // Only our ids: anything else in additionalData is not a link to follow.
    let enrollment_id = device
        .enrollment_token_data
        .as_deref()
        .filter(|d| uuid::Uuid::parse_str(d).is_ok())
        .map(str::to_owned);
    let mut facts = serde_json::Map::new();
    for key in [
        "hardwareInfo",
        "softwareInfo",
        "deviceSettings",
        "memoryInfo",
        "enrollmentTokenName",
    ] {
        if let Some(v) = raw.get(key) {
            facts.insert(key.into(), v.clone());
        }
    }
    AndroidDeviceRecord {
        name: device.name.clone(),
        enrollment_id,
        serial_number: device.hardware_info.serial_number.clone(),
        imei: device.network_info.imei.clone(),
        model: device.hardware_info.model.clone(),
        os_version: device.software_info.android_version.clone(),
        build_version: device.software_info.android_build_number.clone(),
        management_mode: device.management_mode.clone(),
        ownership: device.ownership.clone(),
        state: device.state.clone(),
        applied_state: device.applied_state.clone(),
        api_level: device.api_level,
        security_patch_level: device.software_info.security_patch_level.clone(),
        policy_name: device.policy_name.clone(),
        applied_policy_name: device.applied_policy_name.clone(),
        applied_policy_version: device.applied_policy_version,
        policy_compliant: device.policy_compliant,
        non_compliance: (!device.non_compliance_details.is_empty())
            .then(|| Value::Array(device.non_compliance_details.clone())),
        security_posture: device.security_posture.clone(),
        encryption_status: device.device_settings.encryption_status.clone(),
        encrypted: device.device_settings.is_encrypted,
        device_secure: device.device_settings.is_device_secure,
        enrolled_at,
        last_status_report_at: last_report,
        observed_at,
        facts: Value::Object(facts),
    }
}

/// What became of one message.
#[derive(Debug, PartialEq, Eq)]
pub enum Handled {
    Stored,
    /// Read, and nothing to do (a test message, another enterprise, stale).
    Ignored(String),
    /// Unreadable: logged and acknowledged.
    Malformed(String),
}

/// The Android facts `GET /devices/{id}` adds under `android`.
pub fn view(s: &AndroidDeviceState) -> Value {
    let r = &s.record;
    json!({
        "name": r.name,
        "management_mode": r.management_mode,
        "ownership": r.ownership,
        "state": r.state,
        "applied_state": r.applied_state,
        "api_level": r.api_level,
        "security_patch_level": r.security_patch_level,
        "policy_name": r.policy_name,
        "applied_policy_name": r.applied_policy_name,
        "applied_policy_version": r.applied_policy_version,
        "policy_compliant": r.policy_compliant,
        "non_compliance": r.non_compliance,
        "security_posture": r.security_posture,
        "encryption_status": r.encryption_status,
        "last_status_report_at": r.last_status_report_at,
        "facts": r.facts,
        "updated_at": s.updated_at,
    })
}

fn posture(v: &Option<Value>) -> Option<&str> {
    v.as_ref().and_then(|p| p["devicePosture"].as_str())
}

impl AndroidService {
    pub async fn device_view(&self, device_id: &str) -> ServiceResult<Option<Value>> {
        let Some(state) = self.store.android_device(device_id).await? else {
            return Ok(None);
        };
        let mut v = view(&state);
        // The version Google gave the policy the device should have, and whether the
        // device reports having applied it.
        let r = &state.record;
        let wanted = match &r.policy_name {
            Some(name) => self.store.android_policy(name).await?.and_then(|(_, v)| v),
            None => None,
        };
        v["policy_version"] = json!(wanted);
        v["policy_applied"] = json!(
            r.policy_name.is_some()
                && r.applied_policy_name == r.policy_name
                && wanted.is_some()
                && r.applied_policy_version >= wanted
        );
        Ok(Some(v))
    }

    /// Stores one device resource of our enterprise and records what changed.
    pub async fn apply_device(
        &self,
        enterprise: &str,
        raw: &Value,
    ) -> Result<Handled, ServiceError> {
        let device: Device = match serde_json::from_value(raw.clone()) {
            Ok(d) => d,
            Err(e) => return Ok(Handled::Malformed(format!("not a Device resource: {e}"))),
        };
        let prefix = format!("{enterprise}/devices/");
        if !device.name.starts_with(&prefix) || device.name.len() == prefix.len() {
            return Ok(Handled::Ignored(format!(
                "device {} is not of enterprise {enterprise}",
                device.name
            )));
        }
        let record = record_from(&device, raw);
        let now = Utc::now();
        let upsert = self
            .store
            .upsert_android_device(record.clone(), now)
            .await?;
        let (device_id, created) = match upsert {
            AndroidUpsert::Created(id) => (id, true),
            AndroidUpsert::Stale(_) => {
                return Ok(Handled::Ignored("older than the stored state".into()))
            }
            AndroidUpsert::Updated(previous) => {
                self.record_changes(&previous, &record).await?;
                (previous.device_id, false)
            }
        };
        // A new device gets its own policy; a known one only when Google's record names
        // another (policy content changes are pushed by the policy deliveries, which
        // also retry a failed write: services/policies). A report is not the place to
        // compile the fleet's policies again.
        let own = super::policies::device_policy_id(&device_id);
        let assigned_own = record
            .policy_name
            .as_deref()
            .is_some_and(|name| name.rsplit('/').next() == Some(own.as_str()));
        if created || !assigned_own {
            // The state is stored whatever Google says next: a policy that could not
            // be written now is written at the next report, sync or delivery.
            if let Err(e) = self.reconcile_policy(&device_id, &record).await {
                tracing::warn!(device = %device_id, error = %e, "Android device policy not written; retried at the next report, sync or delivery");
            }
        }
        Ok(Handled::Stored)
    }

    /// Compliance and security posture changes become events: losing either is what
    /// the incident register wants to hear about.
    async fn record_changes(
        &self,
        previous: &AndroidDeviceState,
        now: &AndroidDeviceRecord,
    ) -> ServiceResult<()> {
        let before = &previous.record;
        let id = &previous.device_id;
        // Gone from management without us (factory reset, removed by the user or at
        // Google): our own wipe or retire marks the record DELETED before any report,
        // so a change to DELETED here is not ours.
        if now.state.as_deref() == Some("DELETED") && before.state.as_deref() != Some("DELETED") {
            let event = NewEvent::new(
                kinds::ANDROID_DEVICE_REMOVED,
                "Android device left management (factory reset or removed outside the MDM)",
            )
            .device(id)
            .severity(severity::MEDIUM)
            .data(json!({ "before": before.state, "after": now.state }));
            self.store.record(event).await?;
        }
        if before.policy_compliant != now.policy_compliant && now.policy_compliant.is_some() {
            let compliant = now.policy_compliant == Some(true);
            let event = NewEvent::new(
                kinds::ANDROID_COMPLIANCE_CHANGED,
                if compliant {
                    "Android device is compliant with its policy".to_owned()
                } else {
                    "Android device is not compliant with its policy".to_owned()
                },
            )
            .device(id)
            .severity(if compliant {
                severity::NON_CRITICAL
            } else {
                severity::MEDIUM
            })
            .data(json!({ "compliant": compliant, "non_compliance": now.non_compliance }));
            self.store.record(event).await?;
        }
        let (was, is) = (
            posture(&before.security_posture),
            posture(&now.security_posture),
        );
        if was != is && is.is_some() {
            // AMAPI's devicePosture: SECURE, AT_RISK, POTENTIALLY_COMPROMISED.
            let level = match is {
                Some("SECURE") => severity::NON_CRITICAL,
                Some("AT_RISK") => severity::MEDIUM,
                _ => severity::HIGH,
            };
            let event = NewEvent::new(
                kinds::ANDROID_POSTURE_CHANGED,
                format!(
                    "Android device security posture {} -> {}",
                    was.unwrap_or("unknown"),
                    is.unwrap_or("unknown")
                ),
            )
            .device(id)
            .severity(level)
            .data(json!({ "before": was, "after": is, "security_posture": now.security_posture }));
            self.store.record(event).await?;
        }
        Ok(())
    }

    /// One Pub/Sub message: its notification type, then its resource.
    pub async fn handle_message(
        &self,
        enterprise: &str,
        m: &ReceivedMessage,
    ) -> Result<Handled, ServiceError> {
        let kind = m
            .message
            .attributes
            .get("notificationType")
            .map(String::as_str)
            .unwrap_or("");
        let data = match m.message.data.as_deref() {
            None | Some("") => None,
            Some(d) => match base64::engine::general_purpose::STANDARD.decode(d) {
                Ok(bytes) => match serde_json::from_slice::<Value>(&bytes) {
                    Ok(v) => Some(v),
                    Err(e) => return Ok(Handled::Malformed(format!("data is not JSON: {e}"))),
                },
                Err(e) => return Ok(Handled::Malformed(format!("data is not base64: {e}"))),
            },
        };
        match (kind, data) {
            // Google publishes one when the topic is set, to check it can.
            ("test", _) => Ok(Handled::Ignored("test notification".into())),
            ("ENROLLMENT" | "STATUS_REPORT", Some(device)) => {
                self.apply_device(enterprise, &device).await
            }
            ("USAGE_LOGS", Some(batch)) => self.apply_usage_logs(enterprise, &batch).await,
            ("COMMAND", Some(operation)) => {
                let op: crate::android::types::Operation = match serde_json::from_value(operation) {
                    Ok(op) => op,
                    Err(e) => return Ok(Handled::Malformed(format!("not an Operation: {e}"))),
                };
                if !op.name.starts_with(&format!("{enterprise}/devices/")) {
                    return Ok(Handled::Ignored(format!(
                        "operation {} is not of our enterprise",
                        op.name
                    )));
                }
                Ok(if self.finish_operation(&op).await? {
                    Handled::Stored
                } else {
                    Handled::Ignored(format!("operation {} is not one of our commands", op.name))
                })
            }
            (other, None) => Ok(Handled::Malformed(format!(
                "{other:?} notification without data"
            ))),
            (other, Some(_)) => Ok(Handled::Ignored(format!("notification type {other:?}"))),
        }
    }

    /// Pulls one batch, stores it, acknowledges what was handled. Returns how many
    /// messages came.
    pub async fn pull_once(&self) -> ServiceResult<usize> {
        // Not connected or not signed up yet: nothing to pull, nothing wrong.
        let signed_up = self
            .store
            .android_enterprise()
            .await?
            .is_some_and(|r| r.enterprise_name.is_some());
        if !signed_up {
            return Ok(0);
        }
        let (row, enterprise, link) = self.enterprise().await?;
        let Some(subscription) = row.pubsub_subscription.clone() else {
            return Ok(0);
        };
        let messages = match link.pubsub.pull(&subscription, PULL_BATCH).await {
            Ok(m) => m,
            Err(e) => {
                self.record_failure("subscriptions.pull", &e).await;
                return Err(super::google_error(e));
            }
        };
        // One device's messages in their order, different devices side by side.
        let mut groups: Vec<Vec<ReceivedMessage>> = Vec::new();
        let mut by_key: std::collections::HashMap<String, usize> = Default::default();
        for m in &messages {
            let key = message_key(m);
            let i = *by_key.entry(key).or_insert_with(|| {
                groups.push(Vec::new());
                groups.len() - 1
            });
            groups[i].push(m.clone());
        }
        let enterprise = &enterprise;
        let handled: Vec<Vec<(ReceivedMessage, Result<Handled, ServiceError>)>> =
            futures::stream::iter(groups)
                .map(|group: Vec<ReceivedMessage>| async move {
                    let mut out = Vec::with_capacity(group.len());
                    for m in group {
                        let outcome = self.handle_message(enterprise, &m).await;
                        out.push((m, outcome));
                    }
                    out
                })
                .buffer_unordered(PARALLEL)
                .collect()
                .await;
        let mut acks = Vec::with_capacity(messages.len());
        for (m, outcome) in handled.into_iter().flatten() {
            match outcome {
                Ok(Handled::Stored) => acks.push(m.ack_id.clone()),
                Ok(Handled::Ignored(why)) => {
                    tracing::debug!(message_id = ?m.message.message_id, %why, "Android notification ignored");
                    acks.push(m.ack_id.clone());
                }
                Ok(Handled::Malformed(why)) => {
                    tracing::warn!(message_id = ?m.message.message_id, %why, "malformed Android notification acknowledged and dropped");
                    acks.push(m.ack_id.clone());
                }
                // Not stored: Pub/Sub redelivers it after its ack deadline.
                Err(e) => {
                    tracing::warn!(error = %e, "Android notification not stored; left for redelivery")
                }
            }
        }
        if let Err(e) = link.pubsub.acknowledge(&subscription, &acks).await {
            // Stored already: a redelivery is harmless.
            self.record_failure("subscriptions.acknowledge", &e).await;
        }
        if !messages.is_empty() || row.last_error.is_some() {
            self.store
                .android_healthy(AndroidHealth::Pulled, Utc::now())
                .await?;
        }
        Ok(messages.len())
    }

    /// Reads every device of the enterprise (`devices.list`, page by page) and stores
    /// each. Returns how many devices were read.
    pub async fn sync_once(&self) -> ServiceResult<usize> {
        let (_, enterprise, link) = self.enterprise().await?;
        let mut token: Option<String> = None;
        let mut count = 0;
        loop {
            let page = match link
                .amapi
                .list_devices(&enterprise, PAGE_SIZE, token.as_deref())
                .await
            {
                Ok(p) => p,
                Err(e) => {
                    self.record_failure("devices.list", &e).await;
                    return Err(super::google_error(e));
                }
            };
            count += page.devices.len();
            // The devices of a page are distinct: stored side by side.
            let enterprise = &enterprise;
            let outcomes: Vec<Result<Handled, ServiceError>> = futures::stream::iter(page.devices)
                .map(|raw: Value| async move { self.apply_device(enterprise, &raw).await })
                .buffer_unordered(PARALLEL)
                .collect()
                .await;
            for outcome in outcomes {
                if let Handled::Malformed(why) = outcome? {
                    tracing::warn!(%why, "devices.list returned a device we cannot read");
                }
            }
            match page.next_page_token.filter(|t| !t.is_empty()) {
                Some(t) => token = Some(t),
                None => break,
            }
        }
        // Commands whose COMMAND notification was lost.
        self.poll_operations().await?;
        self.store
            .android_healthy(AndroidHealth::Synced, Utc::now())
            .await?;
        Ok(count)
    }

    /// The puller and the periodic sync, as background tasks. Both do nothing until
    /// the enterprise exists, and neither shares anything with the Apple side or the
    /// admin API: a Google outage slows only them.
    pub fn spawn_workers(self: &Arc<Self>, pull_interval: Duration, sync_interval: Duration) {
        let puller = self.clone();
        tokio::spawn(async move {
            let mut failures = 0u32;
            loop {
                let wait = match puller.pull_once().await {
                    // More may be waiting: pull again at once.
                    Ok(n) if n > 0 => {
                        failures = 0;
                        continue;
                    }
                    Ok(_) => {
                        failures = 0;
                        pull_interval
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, "Android notification pull failed");
                        failures = (failures + 1).min(6);
                        // Google already retried within the call; back off more, up
                        // to a minute, while it stays down or unconfigured.
                        (pull_interval * 2u32.pow(failures)).min(Duration::from_secs(60))
                    }
                };
                tokio::time::sleep(wait).await;
            }
        });
        let syncer = self.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(sync_interval).await;
                match syncer.sync_once().await {
                    Ok(n) => tracing::debug!(devices = n, "Android devices synced"),
                    Err(ServiceError::Unavailable(m) | ServiceError::NotConfigured(m)) => {
                        tracing::debug!(%m, "Android sync skipped")
                    }
                    Err(e) => tracing::warn!(error = %e, "Android sync failed"),
                }
            }
        });
    }
}
