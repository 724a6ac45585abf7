//! Off-boarding the same day: a user's devices, each retired (management and company
//! data removed: the identity revoked, the queue cancelled; an Android work profile
//! removed) or wiped, in one action; each device's result tracked until it is done.
//!
//! A retire is done at once. A wipe is done when the device acknowledged it (the
//! command's status), failed when it errored, was cancelled or expired.

use super::super::commands::CommandService;
use super::super::revocation::{RevocationService, RevokedBy};
use super::super::tokens::AdminIdentity;
use super::super::{ServiceError, ServiceResult};
use super::kinds;
use crate::domain::event::{severity, NewEvent};
use crate::domain::{CommandStatus, Platform};
use crate::services::android::AndroidService;
use crate::storage::{OffboardingDeviceRow, OffboardingRow, RevocationEffect, Storage};
use chrono::Utc;
use enrollment::crl::RevocationReason;
use profiles::commands::CommandSpec;
use serde::Deserialize;
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::Arc;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceAction {
    /// Remove management and company data; the device and personal data stay.
    Retire,
    /// Erase the device.
    Wipe,
}

impl DeviceAction {
    fn as_str(&self) -> &'static str {
        match self {
            DeviceAction::Retire => "retire",
            DeviceAction::Wipe => "wipe",
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OffboardRequest {
    /// Per device id: `retire` or `wipe`.
    #[serde(default)]
    pub devices: BTreeMap<String, DeviceAction>,
    /// For the user's devices not named in `devices`.
    pub default: Option<DeviceAction>,
    pub comment: Option<String>,
}

pub struct OffboardingService {
    store: Arc<dyn Storage>,
    commands: CommandService,
    android: Arc<AndroidService>,
    revocation: Arc<RevocationService>,
}

impl OffboardingService {
    pub fn new(
        store: Arc<dyn Storage>,
        commands: CommandService,
        android: Arc<AndroidService>,
        revocation: Arc<RevocationService>,
    ) -> Self {
        OffboardingService {
            store,
            commands,
            android,
            revocation,
        }
    }

    /// Users disabled in the directory (or removed from it), their devices, and the
    /// latest off-boarding of each.
    pub async fn pending_list(&self) -> ServiceResult<serde_json::Value> {
        let users = self.store.directory_users(Some(true)).await?;
        let names: Vec<String> = users.iter().map(|(u, _)| u.username.clone()).collect();
        let devices = self.store.devices_of_users(&names).await?;
        let runs = self.store.offboardings(false, Some(&names)).await?;
        let mut items = Vec::new();
        for (user, groups) in users {
            let latest = runs.iter().find(|r| r.username == user.username);
            let latest = match latest {
                Some(r) => Some(self.refresh(r.clone()).await?),
                None => None,
            };
            let devs = devices.get(&user.username).cloned().unwrap_or_default();
            let open_devices = devs.iter().filter(|d| d.enrolled).count();
            items.push(json!({
                "username": user.username,
                "display_name": user.display_name,
                "disabled_reason": user.disabled_reason,
                "disabled_at": user.disabled_at,
                "groups": groups,
                "devices": devs,
                "enrolled_devices": open_devices,
                "offboarding": latest,
            }));
        }
        Ok(json!({ "items": items }))
    }

    /// Off-boards a user: every device of theirs gets its action (named, or the
    /// default); a request that leaves a device without one, or names a device that is
    /// not theirs, changes nothing.
    pub async fn offboard(
        &self,
        admin: &AdminIdentity,
        username: &str,
        req: OffboardRequest,
    ) -> ServiceResult<OffboardingRow> {
        let (user, _) = self
            .store
            .directory_user(username)
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("no user {username:?}")))?;
        let devices = self
            .store
            .devices_of_users(std::slice::from_ref(&user.username))
            .await?
            .remove(&user.username)
            .unwrap_or_default();
        let theirs: Vec<&str> = devices.iter().map(|d| d.id.as_str()).collect();
        let foreign: Vec<&String> = req
            .devices
            .keys()
            .filter(|id| !theirs.contains(&id.as_str()))
            .collect();
        if !foreign.is_empty() {
            return Err(ServiceError::BadRequest(format!(
                "not devices of {}: {}",
                user.username,
                foreign
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        let mut plan = Vec::new();
        let mut undecided = Vec::new();
        for d in &devices {
            match req.devices.get(&d.id).copied().or(req.default) {
                Some(action) => plan.push((d.clone(), action)),
                None => undecided.push(d.id.clone()),
            }
        }
        if !undecided.is_empty() {
            return Err(ServiceError::BadRequest(format!(
                "choose retire or wipe for every device of {} (devices, or default): {}",
                user.username,
                undecided.join(", ")
            )));
        }
        let now = Utc::now();
        let row = OffboardingRow {
            id: uuid::Uuid::new_v4().to_string(),
            username: user.username.clone(),
            requested_by: admin.name.clone(),
            requested_at: now,
            status: "in_progress".into(),
            completed_at: None,
            devices: plan
                .iter()
                .map(|(d, action)| OffboardingDeviceRow {
                    device_id: d.id.clone(),
                    platform: d.platform.clone(),
                    action: action.as_str().into(),
                    status: "pending".into(),
                    command_uuid: None,
                    detail: None,
                    updated_at: now,
                })
                .collect(),
        };
        self.store
            .create_offboarding(
                row.clone(),
                NewEvent::new(
                    kinds::ADMIN_USER_OFFBOARDED,
                    format!("off-boarding of {} started", user.username),
                )
                .actor(&admin.name)
                .severity(severity::LOW)
                .data(json!({
                    "offboarding_id": row.id, "username": user.username,
                    "devices": plan.iter().map(|(d, a)| json!({ "device_id": d.id, "action": a.as_str() })).collect::<Vec<_>>(),
                    "comment": req.comment,
                })),
            )
            .await?;
        let why = format!("off-boarding of {}", user.username);
        for (device, action) in plan {
            let result = self.act(admin, &device.id, action, &why).await;
            let (status, command_uuid, detail) = match result {
                Ok((done, uuid, detail)) => {
                    (if done { "done" } else { "pending" }, uuid, Some(detail))
                }
                Err(e) => ("failed", None, Some(e.to_string())),
            };
            self.store
                .update_offboarding_device(
                    &row.id,
                    OffboardingDeviceRow {
                        device_id: device.id.clone(),
                        platform: device.platform.clone(),
                        action: action.as_str().into(),
                        status: status.into(),
                        command_uuid,
                        detail,
                        updated_at: Utc::now(),
                    },
                )
                .await?;
        }
        let row = self
            .store
            .offboarding(&row.id)
            .await?
            .ok_or_else(|| ServiceError::Internal("off-boarding vanished".into()))?;
        self.refresh(row).await
    }

    /// One device's action: (done now, command to track, what was done).
    async fn act(
        &self,
        admin: &AdminIdentity,
        device_id: &str,
        action: DeviceAction,
        why: &str,
    ) -> ServiceResult<(bool, Option<String>, String)> {
        let device = self
            .store
            .device(device_id)
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("device {device_id} not found")))?;
        let android = device.platform == Platform::Android;
        match action {
            DeviceAction::Retire => {
                let mut detail = String::from("identity revoked, queue cancelled");
                let mut pending = None;
                if android {
                    let r = self.android.retire(&admin.name, device_id).await?;
                    if let Some(uuid) = r.get("command_uuid").and_then(|u| u.as_str()) {
                        pending = Some(uuid.to_owned());
                    }
                    detail = format!(
                        "{}; {detail}",
                        r.get("android")
                            .and_then(|a| a.as_str())
                            .unwrap_or("Android")
                    );
                }
                self.revocation
                    .revoke(
                        device_id,
                        RevocationReason::CessationOfOperation,
                        RevocationEffect::Retire,
                        RevokedBy::Admin(admin.name.clone()),
                        why,
                    )
                    .await?;
                Ok((pending.is_none(), pending, detail))
            }
            DeviceAction::Wipe => {
                // The admin chose this device by id in the request: that is the
                // confirmation the wipe endpoint asks a person to type.
                let confirm = device
                    .reported_serial_number
                    .clone()
                    .filter(|s| !s.trim().is_empty())
                    .unwrap_or_else(|| device.id.clone());
                let queued = if android {
                    self.commands
                        .confirm_wipe(admin, device_id, Some(&confirm))
                        .await?;
                    self.android
                        .wipe(&admin.name, device_id, Vec::new(), Some(why.to_owned()))
                        .await?
                } else {
                    self.commands
                        .wipe(
                            admin,
                            device_id,
                            Some(&confirm),
                            CommandSpec::EraseDevice {
                                pin: None,
                                preserve_data_plan: None,
                                disallow_proximity_setup: None,
                            },
                        )
                        .await?
                };
                Ok((
                    false,
                    Some(queued.command_uuid),
                    format!("{} queued", queued.request_type),
                ))
            }
        }
    }

    pub async fn show(&self, id: &str) -> ServiceResult<OffboardingRow> {
        let row = self
            .store
            .offboarding(id)
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("no off-boarding {id}")))?;
        self.refresh(row).await
    }

    /// Brings pending devices up to date from their commands, and the whole from them.
    pub async fn refresh(&self, mut row: OffboardingRow) -> ServiceResult<OffboardingRow> {
        if row.status != "in_progress" {
            return Ok(row);
        }
        for d in row.devices.iter_mut() {
            if d.status != "pending" {
                continue;
            }
            let Some(uuid) = d.command_uuid.clone() else {
                continue;
            };
            let Some(command) = self.store.command(&uuid).await? else {
                continue;
            };
            let status = match command.status {
                CommandStatus::Acknowledged => "done",
                CommandStatus::Error
                | CommandStatus::CommandFormatError
                | CommandStatus::Cancelled
                | CommandStatus::Expired => "failed",
                _ => continue,
            };
            d.status = status.into();
            d.detail = Some(format!(
                "{} {}",
                command.request_type,
                command.status.as_str()
            ));
            d.updated_at = Utc::now();
            self.store
                .update_offboarding_device(&row.id, d.clone())
                .await?;
        }
        if row.devices.iter().all(|d| d.status != "pending") {
            let failed = row.devices.iter().filter(|d| d.status == "failed").count();
            let status = if failed > 0 { "failed" } else { "done" };
            let now = Utc::now();
            if !self
                .store
                .set_offboarding_status(&row.id, status, Some(now))
                .await?
            {
                // Another pass (or instance) finished it.
                return self
                    .store
                    .offboarding(&row.id)
                    .await?
                    .ok_or_else(|| ServiceError::Internal("off-boarding vanished".into()));
            }
            self.store
                .record(
                    NewEvent::new(
                        kinds::OFFBOARDING_FINISHED,
                        format!(
                            "off-boarding of {} finished: {} device(s), {failed} failed",
                            row.username,
                            row.devices.len()
                        ),
                    )
                    .actor("system")
                    .data(json!({ "offboarding_id": row.id, "username": row.username, "status": status })),
                )
                .await?;
            row.status = status.into();
            row.completed_at = Some(now);
        }
        Ok(row)
    }

    /// Refreshes every open off-boarding (the periodic tracker).
    pub async fn refresh_open(&self) -> ServiceResult<()> {
        for row in self.store.offboardings(true, None).await? {
            self.refresh(row).await?;
        }
        Ok(())
    }

    pub fn spawn_tracker(self: Arc<Self>, interval: std::time::Duration) {
        tokio::spawn(async move {
            loop {
                if let Err(e) = self.refresh_open().await {
                    tracing::warn!(error = %e, "off-boarding tracker");
                }
                tokio::time::sleep(interval).await;
            }
        });
    }
}
