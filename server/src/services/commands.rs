//! Commands from admins: queue to one or many devices, cancel, lock, wipe.
//! Platform-neutral at the edges (device ids, JSON specs); Apple plists are built
//! by `profiles::commands`; Android devices' commands go through
//! `services::android` (AMAPI), which the API's handlers choose by platform.

use super::wake::DeviceWaker;
use super::{seal_purpose, ServiceError, ServiceResult};
use crate::domain::device::os_from_family;
use crate::domain::event::{kinds, NewEvent};
use crate::domain::{CommandRecord, NewCommand};
use crate::services::tokens::AdminIdentity;
use crate::storage::Storage;
use chrono::{DateTime, Utc};
use enrollment::seal::Sealer;
use profiles::commands::{BuildContext, CommandSpec};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::sync::Arc;

/// Lock and wipe jump the queue: a lost phone should not first install ten profiles.
pub const URGENT_PRIORITY: i32 = 100;
pub const MAX_PRIORITY: i32 = 1000;
/// One request may address at most this many devices.
pub const MAX_DEVICES_PER_REQUEST: usize = 100_000;

/// Options that apply to any command.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct QueueOptions {
    /// Higher first; equal priorities go in the order queued. Default 0.
    pub priority: Option<i32>,
    /// When the command is dropped if not yet answered (RFC 3339).
    pub expires_at: Option<DateTime<Utc>>,
    /// Alternative to `expires_at`: seconds from now.
    pub expires_in_seconds: Option<i64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Queued {
    pub device_id: String,
    pub command_uuid: String,
    pub request_type: String,
}

pub struct CommandService {
    store: Arc<dyn Storage>,
    sealer: Sealer,
    waker: Arc<dyn DeviceWaker>,
    default_ttl: chrono::Duration,
}

impl CommandService {
    pub fn new(
        store: Arc<dyn Storage>,
        sealer: Sealer,
        waker: Arc<dyn DeviceWaker>,
        default_ttl: chrono::Duration,
    ) -> Self {
        CommandService {
            store,
            sealer,
            waker,
            default_ttl,
        }
    }

    /// Queues `spec` to every device in one transaction, then wakes them.
    /// Either all devices get the command or none does.
    pub async fn queue(
        &self,
        admin: &AdminIdentity,
        device_ids: &[String],
        spec: &CommandSpec,
        options: &QueueOptions,
    ) -> ServiceResult<Vec<Queued>> {
        // A wipe is confirmed device by device (see `wipe`); the generic queue would
        // let `{"type": "EraseDevice"}`, or a Raw plist naming it, skip that.
        if spec.request_type() == "EraseDevice" {
            return Err(ServiceError::Unprocessable(
                "EraseDevice is sent only through /devices/{id}/wipe (mdm devices wipe), which asks for confirmation".into(),
            ));
        }
        self.queue_recorded(admin, device_ids, spec, options, |_| None)
            .await
    }

    /// [`Self::queue`], with one more audit event made from what was queued. The
    /// commands, the `admin.command_queued` event and `extra` commit together: a
    /// crash (even `kill -9`) mid-way leaves the whole fan-out or nothing of it.
    async fn queue_recorded(
        &self,
        admin: &AdminIdentity,
        device_ids: &[String],
        spec: &CommandSpec,
        options: &QueueOptions,
        extra: impl FnOnce(&[Queued]) -> Option<NewEvent>,
    ) -> ServiceResult<Vec<Queued>> {
        let mut seen = HashSet::with_capacity(device_ids.len());
        let ids: Vec<String> = device_ids
            .iter()
            .filter(|id| seen.insert(id.as_str()))
            .cloned()
            .collect();
        if ids.is_empty() {
            return Err(ServiceError::BadRequest("no device ids given".into()));
        }
        if ids.len() > MAX_DEVICES_PER_REQUEST {
            return Err(ServiceError::BadRequest(format!(
                "at most {MAX_DEVICES_PER_REQUEST} devices per request"
            )));
        }
        let priority = options.priority.unwrap_or(0);
        if priority.abs() > MAX_PRIORITY {
            return Err(ServiceError::BadRequest(format!(
                "priority must be between -{MAX_PRIORITY} and {MAX_PRIORITY}"
            )));
        }
        let now = Utc::now();
        let expires_at = match (options.expires_at, options.expires_in_seconds) {
            (Some(_), Some(_)) => {
                return Err(ServiceError::Unprocessable(
                    "give expires_at or expires_in_seconds, not both".into(),
                ))
            }
            (Some(at), None) => at,
            (None, Some(secs)) if secs > 0 => now + chrono::Duration::seconds(secs),
            (None, Some(_)) => {
                return Err(ServiceError::BadRequest(
                    "expires_in_seconds must be positive".into(),
                ))
            }
            (None, None) => now + self.default_ttl,
        };
        if expires_at <= now {
            return Err(ServiceError::Unprocessable(
                "expires_at is in the past".into(),
            ));
        }

        let found = self.store.existing_devices(&ids).await?;
        if found.len() != ids.len() {
            let known: HashSet<&str> = found.iter().map(|(id, _)| id.as_str()).collect();
            let missing: Vec<&str> = ids
                .iter()
                .map(String::as_str)
                .filter(|id| !known.contains(id))
                .take(10)
                .collect();
            return Err(ServiceError::NotFound(format!(
                "unknown device id(s): {}; nothing was queued",
                missing.join(", ")
            )));
        }

        // Android devices run AMAPI's commands, sent through Google one device at a
        // time (services::android); an Apple plist queued for one would wait forever.
        if let Some((id, _)) = found.iter().find(|(_, family)| family == "Android") {
            return Err(ServiceError::Unprocessable(format!(
                "device {id} is an Android device: send it AMAPI commands (LOCK, START_LOST_MODE, ...) through /devices/{id}/commands; nothing was queued"
            )));
        }
        // ClearPasscode carries each device's unlock token: read them all at once.
        let sealed_tokens = if matches!(spec, CommandSpec::ClearPasscode) {
            self.store.unlock_tokens(&ids).await?
        } else {
            Default::default()
        };
        let mut commands = Vec::with_capacity(found.len());
        let mut queued = Vec::with_capacity(found.len());
        for (device_id, family) in &found {
            let unlock_token = sealed_tokens
                .get(device_id)
                .map(|sealed| {
                    self.sealer
                        .open(seal_purpose::UNLOCK_TOKEN, device_id, sealed)
                        .map_err(|e| {
                            ServiceError::Internal(format!("device {device_id} unlock token: {e}"))
                        })
                })
                .transpose()?;
            let ctx = BuildContext {
                os: os_from_family(family),
                unlock_token: unlock_token.as_deref(),
            };
            let built = spec.build(&ctx).map_err(|e| {
                ServiceError::Unprocessable(format!("device {device_id}: {e}; nothing was queued"))
            })?;
            let payload = if built.sensitive {
                self.sealer
                    .seal(
                        seal_purpose::COMMAND_PAYLOAD,
                        &built.command_uuid,
                        &built.plist_xml,
                    )
                    .map_err(|e| ServiceError::Internal(e.to_string()))?
            } else {
                built.plist_xml
            };
            queued.push(Queued {
                device_id: device_id.clone(),
                command_uuid: built.command_uuid.clone(),
                request_type: built.request_type.clone(),
            });
            commands.push(NewCommand {
                uuid: built.command_uuid,
                device_id: device_id.clone(),
                request_type: built.request_type,
                payload,
                payload_sealed: built.sensitive,
                priority,
                expires_at: Some(expires_at),
                created_by: admin.name.clone(),
            });
        }
        // One audit event per request, not per device: a fleet-wide command stays one
        // line in the trail, with the devices listed when the list is short.
        let request_type = queued
            .first()
            .map(|q| q.request_type.clone())
            .unwrap_or_default();
        let mut event = NewEvent::new(
            kinds::ADMIN_COMMAND_QUEUED,
            format!("{request_type} queued to {} device(s)", queued.len()),
        )
        .actor(&admin.name)
        .data(serde_json::json!({
            "request_type": request_type,
            "device_count": queued.len(),
            "priority": priority,
            "expires_at": expires_at,
            "commands": queued.iter().take(100).collect::<Vec<_>>(),
        }));
        if queued.len() == 1 {
            event = event.device(&queued[0].device_id);
        }
        let events = std::iter::once(event).chain(extra(&queued)).collect();
        self.store.enqueue(commands, events).await?;

        let woken: Vec<String> = queued.iter().map(|q| q.device_id.clone()).collect();
        self.waker.wake(&woken).await;
        Ok(queued)
    }

    /// One command as the admin asked for it: a sealed result is opened (lists of
    /// commands show its markers only).
    pub async fn show(&self, uuid: &str) -> ServiceResult<CommandRecord> {
        let mut record = self
            .store
            .command(uuid)
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("command {uuid} not found")))?;
        super::results::reveal(&self.sealer, &mut record)?;
        Ok(record)
    }

    pub async fn cancel(&self, admin: &AdminIdentity, uuid: &str) -> ServiceResult<CommandRecord> {
        let record = self.store.cancel(uuid, Utc::now()).await?;
        self.store
            .record(
                NewEvent::new(
                    kinds::ADMIN_COMMAND_CANCELLED,
                    format!("{} {uuid} cancelled", record.request_type),
                )
                .device(&record.device_id)
                .actor(&admin.name)
                .data(serde_json::json!({ "command_uuid": uuid })),
            )
            .await?;
        Ok(record)
    }

    pub async fn lock(
        &self,
        admin: &AdminIdentity,
        device_id: &str,
        spec: CommandSpec,
    ) -> ServiceResult<Queued> {
        let event = NewEvent::new(kinds::ADMIN_DEVICE_LOCK, "remote lock requested");
        self.queue_urgent(admin, device_id, &spec, event).await
    }

    /// Queues one command ahead of everything else and records the admin's intent.
    async fn queue_urgent(
        &self,
        admin: &AdminIdentity,
        device_id: &str,
        spec: &CommandSpec,
        event: NewEvent,
    ) -> ServiceResult<Queued> {
        let options = QueueOptions {
            priority: Some(URGENT_PRIORITY),
            ..Default::default()
        };
        let intent = |queued: &[Queued]| {
            Some(
                event
                    .device(device_id)
                    .actor(&admin.name)
                    .data(serde_json::json!({ "command_uuid": queued[0].command_uuid })),
            )
        };
        let queued = self
            .queue_recorded(admin, &[device_id.to_owned()], spec, &options, intent)
            .await?
            .remove(0);
        Ok(queued)
    }

    /// Erases a device, but only when `confirmation` names it: the serial number the
    /// device reported in its DeviceInformation answer, or, before it has answered one,
    /// its server-assigned id. Never a string the device chose at Authenticate (a
    /// decoy could enroll with a victim's serial number as its UDID), and a mistyped
    /// id cannot erase the wrong phone.
    pub async fn wipe(
        &self,
        admin: &AdminIdentity,
        device_id: &str,
        confirmation: Option<&str>,
        spec: CommandSpec,
    ) -> ServiceResult<Queued> {
        self.confirm_wipe(admin, device_id, confirmation).await?;
        let event = NewEvent::new(kinds::ADMIN_DEVICE_WIPE, "remote wipe requested")
            .severity(crate::domain::event::severity::LOW);
        self.queue_urgent(admin, device_id, &spec, event).await
    }

    /// Checks a wipe's confirmation (see [`Self::wipe`]) for any platform; a wrong one
    /// is recorded (`admin.device_wipe_refused`) and refused.
    pub async fn confirm_wipe(
        &self,
        admin: &AdminIdentity,
        device_id: &str,
        confirmation: Option<&str>,
    ) -> ServiceResult<()> {
        let device = self
            .store
            .device(device_id)
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("device {device_id} not found")))?;
        let (expected, what) = match device
            .reported_serial_number
            .clone()
            .filter(|s| !s.trim().is_empty())
        {
            Some(serial) => (serial, "serial number (from its DeviceInformation)"),
            None => (
                device.id.clone(),
                "id (it has not reported its serial number in DeviceInformation yet)",
            ),
        };
        let given = confirmation.map(str::trim).unwrap_or_default();
        if expected.is_empty() || !given.eq_ignore_ascii_case(&expected) {
            self.store
                .record(
                    NewEvent::new(
                        kinds::ADMIN_WIPE_REFUSED,
                        "wipe refused: confirmation does not match the device",
                    )
                    .device(device_id)
                    .actor(&admin.name)
                    .data(serde_json::json!({ "given": given })),
                )
                .await?;
            let reason = if given.is_empty() {
                format!("a wipe must be confirmed with the device's {what}")
            } else {
                format!(
                    "confirmation {given:?} does not match the device's {what}; nothing was queued"
                )
            };
            return Err(ServiceError::Unprocessable(reason));
        }
        Ok(())
    }
}
