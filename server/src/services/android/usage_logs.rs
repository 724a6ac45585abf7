//! Android security logs (USAGE_LOGS notifications: a BatchUsageLogEvents) as events
//! for the incident register, `security.android_log` with a severity on the 0-5
//! scale.
//!
//! Events are grouped per batch and type: one event says "7 failed unlock attempts"
//! with the times, not seven events, and the routine types (app starts, DNS lookups,
//! connections, screen locks) stay out of the stream, which they would flood. What a
//! batch contains is newer than the device's watermark only once: Pub/Sub's repeated
//! deliveries add nothing.

use super::devices::Handled;
use super::AndroidService;
use crate::domain::event::{kinds, severity, NewEvent};
use crate::services::ServiceError;
use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// Failed unlock attempts in one batch from which it is a burst (someone guessing
/// the PIN), not a mistyped code.
pub const UNLOCK_BURST: usize = 5;
/// Samples kept in one event's data.
const SAMPLES: usize = 20;

/// The severity and wording of one event type, or None when it is routine.
fn classify(event_type: &str, e: &Value) -> Option<(i16, &'static str)> {
    Some(match event_type {
        "KEYGUARD_DISMISS_AUTH_ATTEMPT" => {
            if e["keyguardDismissAuthAttemptEvent"]["success"] == true {
                return None;
            }
            (severity::LOW, "failed unlock attempt(s)")
        }
        "ADB_SHELL_COMMAND" | "ADB_SHELL_INTERACTIVE" => {
            (severity::HIGH, "ADB shell used on a managed device")
        }
        "CERT_AUTHORITY_INSTALLED" => (severity::HIGH, "CA certificate installed"),
        "CERT_AUTHORITY_REMOVED" => (severity::LOW, "CA certificate removed"),
        "CERT_VALIDATION_FAILURE" => (severity::LOW, "certificate validation failure(s)"),
        "KEY_INTEGRITY_VIOLATION" => (severity::CRITICAL, "key integrity violation"),
        "CRYPTO_SELF_TEST_COMPLETED" => {
            if e["cryptoSelfTestCompletedEvent"]["success"] != false {
                return None;
            }
            (severity::CRITICAL, "cryptographic self-test failed")
        }
        "FILE_PULLED" | "FILE_PUSHED" => (severity::MEDIUM, "file copied over ADB"),
        "MEDIA_MOUNT" => (severity::LOW, "removable media mounted"),
        "WIPE_FAILURE" => (severity::HIGH, "wipe failed"),
        "LOGGING_STOPPED" | "LOG_BUFFER_SIZE_CRITICAL" => (
            severity::MEDIUM,
            "security logging stopped or losing entries",
        ),
        "STOP_LOST_MODE_USER_ATTEMPT" => (severity::HIGH, "someone tried to leave lost mode"),
        "LOST_MODE_OUTGOING_PHONE_CALL" => (severity::LOW, "call from a phone in lost mode"),
        "LOST_MODE_LOCATION" => (severity::LOW, "location of a phone in lost mode"),
        "BACKUP_SERVICE_TOGGLED" => (severity::LOW, "backup service switched"),
        "KEY_DESTRUCTION" | "KEY_GENERATED" | "KEY_IMPORT" | "REMOTE_LOCK" => return None,
        _ => return None,
    })
}

fn event_time(e: &Value) -> Option<DateTime<Utc>> {
    e["eventTime"]
        .as_str()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc))
}

/// The events a batch makes for `device_id`, from its entries newer than
/// `watermark`, and the new watermark (None when nothing is newer).
pub fn events_of(
    device_id: &str,
    entries: &[Value],
    watermark: Option<DateTime<Utc>>,
) -> (Vec<NewEvent>, Option<DateTime<Utc>>) {
    let fresh: Vec<(&Value, DateTime<Utc>)> = entries
        .iter()
        .filter_map(|e| event_time(e).map(|t| (e, t)))
        .filter(|(_, t)| watermark.is_none_or(|w| *t > w))
        .collect();
    let newest = fresh.iter().map(|(_, t)| *t).max();
    let mut groups: BTreeMap<&str, Vec<(&Value, DateTime<Utc>)>> = BTreeMap::new();
    for (e, t) in &fresh {
        if let Some(kind) = e["eventType"].as_str() {
            groups.entry(kind).or_default().push((e, *t));
        }
    }
    let mut events = Vec::new();
    for (event_type, items) in groups {
        let Some((mut level, what)) = classify(event_type, items[0].0) else {
            continue;
        };
        // The classification of a type can depend on the entry (success or not).
        let items: Vec<_> = items
            .into_iter()
            .filter(|(e, _)| classify(event_type, e).is_some())
            .collect();
        if items.is_empty() {
            continue;
        }
        if event_type == "KEYGUARD_DISMISS_AUTH_ATTEMPT" && items.len() >= UNLOCK_BURST {
            level = severity::HIGH;
        }
        let first = items.iter().map(|(_, t)| *t).min();
        let last = items.iter().map(|(_, t)| *t).max();
        let samples: Vec<&Value> = items.iter().take(SAMPLES).map(|(e, _)| *e).collect();
        events.push(
            NewEvent::new(
                kinds::SECURITY_ANDROID_LOG,
                format!("Android security log: {} {what}", items.len()),
            )
            .device(device_id)
            .severity(level)
            .data(json!({
                "event_type": event_type,
                "count": items.len(),
                "first_at": first,
                "last_at": last,
                "samples": samples,
            })),
        );
    }
    (events, newest)
}

impl AndroidService {
    pub(super) async fn apply_usage_logs(
        &self,
        enterprise: &str,
        batch: &Value,
    ) -> Result<Handled, ServiceError> {
        let Some(name) = batch["device"].as_str() else {
            return Ok(Handled::Malformed("USAGE_LOGS without a device".into()));
        };
        if !name.starts_with(&format!("{enterprise}/devices/")) {
            return Ok(Handled::Ignored(format!(
                "device {name} is not of our enterprise"
            )));
        }
        let Some(device) = self.store.android_device_by_name(name).await? else {
            return Ok(Handled::Ignored(format!(
                "security logs of unknown device {name}"
            )));
        };
        let entries = batch["usageLogEvents"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let previous = self
            .store
            .android_usage_watermark(&device.device_id)
            .await?;
        let (events, newest) = events_of(&device.device_id, &entries, previous);
        let Some(newest) = newest else {
            return Ok(Handled::Ignored(
                "no security log entry newer than the last".into(),
            ));
        };
        if !self
            .store
            .record_android_usage(&device.device_id, previous, newest, events)
            .await?
        {
            return Ok(Handled::Ignored("batch handled concurrently".into()));
        }
        Ok(Handled::Stored)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attempt(t: &str, success: bool) -> Value {
        json!({"eventType": "KEYGUARD_DISMISS_AUTH_ATTEMPT", "eventTime": t,
               "keyguardDismissAuthAttemptEvent": {"success": success}})
    }

    #[test]
    fn a_burst_of_failed_unlocks_is_one_high_event_and_not_twice() {
        let mut entries: Vec<Value> = (0..6)
            .map(|i| attempt(&format!("2026-12-01T10:00:0{i}Z"), false))
            .collect();
        entries.push(attempt("2026-12-01T10:00:09Z", true));
        entries.push(json!({"eventType": "DNS", "eventTime": "2026-12-01T10:00:10Z"}));
        let (events, newest) = events_of("d", &entries, None);
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].severity, Some(severity::HIGH));
        assert_eq!(events[0].data["count"], 6);
        let (again, _) = events_of("d", &entries, newest);
        assert!(again.is_empty());
        let (few, _) = events_of("d", &entries[..2], None);
        assert_eq!(few[0].severity, Some(severity::LOW));
    }
}
