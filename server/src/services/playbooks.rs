//! Response plans and playbooks (issue 11, item 3).
//!
//! A ready response plan per incident type is copied into an incident when it is
//! filed without one. A playbook runs actions on the incident's devices when an
//! incident of its type is filed or confirmed: lock, lost mode, wipe, revoke the
//! device's identity, notify. A wipe waits for a second admin's approval (someone
//! other than whoever filed or confirmed the incident) unless the playbook waives
//! it. Every action and its result is written into the incident as a dated response
//! action by `playbook:<type>`.

use super::commands::CommandService;
use super::revocation::{RevocationService, RevokedBy};
use super::tokens::AdminIdentity;
use super::{ServiceError, ServiceResult};
use crate::domain::event::{kinds, NewEvent};
use crate::domain::incident::{Incident, ResponseAction};
use crate::domain::Platform;
use crate::storage::{RevocationEffect, Storage};
use chrono::Utc;
use enrollment::crl::RevocationReason;
use profiles::commands::CommandSpec;
use serde::Deserialize;
use std::sync::Arc;

/// When a playbook runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    Filed,
    Confirmed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PlaybookAction {
    Lock,
    LostMode,
    Wipe,
    Revoke,
    Notify,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Playbook {
    #[serde(rename = "type")]
    pub incident_type: String,
    pub on: Trigger,
    pub actions: Vec<PlaybookAction>,
    /// A wipe runs without a second admin's approval (explicit, never the default).
    #[serde(default)]
    pub waive_wipe_approval: bool,
    /// Shown on a locked or lost device.
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub phone_number: Option<String>,
}

/// A ready response plan for an incident type.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResponsePlan {
    #[serde(rename = "type")]
    pub incident_type: String,
    pub text: String,
}

/// The plans when the office gives none.
pub fn default_plans() -> Vec<ResponsePlan> {
    [
        ("lost_device", "1. Lock the device and put it in lost mode with the office's phone number. 2. Ask the user where it was last seen; check its last location and check-in. 3. If not found within 24 hours, wipe it and revoke its identity. 4. Record the outcome and close."),
        ("stolen_device", "1. Lock the device at once. 2. Wipe it (second admin approves) and revoke its identity. 3. Report the theft to the police and note the case number. 4. Change the passwords of the accounts the device held. 5. Record the outcome and close."),
        ("non_compliant_device", "1. Tell the user what is non-compliant (passcode, encryption, OS version). 2. Give a deadline; lock the device if it is missed. 3. Confirm compliance in the device record and close."),
        ("compromised_device", "1. Isolate: revoke the device's identity (no more access to mail and Wi-Fi). 2. Collect evidence (device facts, events) before any change. 3. Wipe the device (second admin approves). 4. Re-enroll it only after it was reset. 5. Report to the regional security lead."),
    ]
    .into_iter()
    .map(|(t, text)| ResponsePlan {
        incident_type: t.into(),
        text: text.into(),
    })
    .collect()
}

/// The playbooks when the office gives none: a lost phone, or one whose passcode
/// someone keeps guessing, is locked at once; a stolen one is locked, and wiped once
/// a second admin approves.
pub fn default_playbooks() -> Vec<Playbook> {
    vec![
        Playbook {
            incident_type: "lost_device".into(),
            on: Trigger::Filed,
            actions: vec![PlaybookAction::Lock, PlaybookAction::Notify],
            waive_wipe_approval: false,
            message: Some("This device is lost. Please return it to the office.".into()),
            phone_number: None,
        },
        Playbook {
            incident_type: "failed_unlock_burst".into(),
            on: Trigger::Filed,
            actions: vec![PlaybookAction::Lock, PlaybookAction::Notify],
            waive_wipe_approval: false,
            message: None,
            phone_number: None,
        },
        Playbook {
            incident_type: "stolen_device".into(),
            on: Trigger::Confirmed,
            actions: vec![
                PlaybookAction::Lock,
                PlaybookAction::Wipe,
                PlaybookAction::Notify,
            ],
            waive_wipe_approval: false,
            message: None,
            phone_number: None,
        },
    ]
}

pub struct PlaybookRunner {
    store: Arc<dyn Storage>,
    commands: CommandService,
    android: Arc<super::android::AndroidService>,
    revocation: Arc<RevocationService>,
    plans: Vec<ResponsePlan>,
    playbooks: Vec<Playbook>,
}

impl PlaybookRunner {
    pub fn new(
        store: Arc<dyn Storage>,
        commands: CommandService,
        android: Arc<super::android::AndroidService>,
        revocation: Arc<RevocationService>,
        plans: Vec<ResponsePlan>,
        playbooks: Vec<Playbook>,
    ) -> Self {
        PlaybookRunner {
            store,
            commands,
            android,
            revocation,
            plans,
            playbooks,
        }
    }

    /// The ready plan for an incident type, if the office has one.
    pub fn plan_for(&self, incident_type: &str) -> Option<String> {
        self.plans
            .iter()
            .find(|p| p.incident_type == incident_type)
            .map(|p| p.text.clone())
    }

    /// Runs the playbooks of `incident`'s type for `trigger`; `by` is whoever filed or
    /// confirmed it (an approver of a wipe must be someone else).
    pub async fn run(&self, incident: &Incident, trigger: Trigger, by: &str) {
        for playbook in self
            .playbooks
            .iter()
            .filter(|p| p.incident_type == incident.incident_type && p.on == trigger)
        {
            let actor = format!("playbook:{}", playbook.incident_type);
            for action in &playbook.actions {
                let results = if *action == PlaybookAction::Notify {
                    vec![self.notify(incident).await]
                } else {
                    let mut results = Vec::new();
                    for device in &incident.devices {
                        results.push(self.act(incident, playbook, *action, device, by).await);
                    }
                    results
                };
                for text in results {
                    if let Err(e) = self.log(&incident.id, &actor, text).await {
                        tracing::error!(error = %e, "could not log a playbook action");
                    }
                }
            }
        }
    }

    async fn log(&self, incident_id: &str, actor: &str, description: String) -> ServiceResult<()> {
        let actor_name = actor.to_owned();
        self.store
            .change_incident(
                incident_id,
                actor,
                "action",
                Box::new(move |i: &mut Incident| {
                    i.response_actions.push(ResponseAction {
                        at: Utc::now(),
                        description: description.clone(),
                        actor: actor_name,
                    });
                    if i.status == "not_started" {
                        i.status = "in_progress".into();
                    }
                    Ok(serde_json::json!({ "description": description, "automatic": true }))
                }),
            )
            .await?
            .map_err(ServiceError::Conflict)?;
        Ok(())
    }

    async fn notify(&self, incident: &Incident) -> String {
        let event = NewEvent::new(
            super::incidents::kinds::INCIDENT_NOTIFICATION,
            format!(
                "incident No. {} ({}, level {} {}): {}",
                incident.number,
                incident.incident_type,
                incident.level,
                incident.level_name,
                incident.name
            ),
        )
        .actor("playbook")
        .severity(incident.level.min(crate::domain::event::severity::HIGH))
        .data(serde_json::json!({ "incident_id": incident.id, "number": incident.number, "level": incident.level }));
        match self.store.record(event).await {
            Ok(()) => {
                "notification sent to the event stream (webhook and syslog receivers read it)"
                    .into()
            }
            Err(e) => format!("notification failed: {e}"),
        }
    }

    async fn act(
        &self,
        incident: &Incident,
        playbook: &Playbook,
        action: PlaybookAction,
        device_id: &str,
        by: &str,
    ) -> String {
        let name = format!("{action:?}").to_lowercase();
        match self
            .try_act(incident, playbook, action, device_id, by)
            .await
        {
            Ok(done) => format!("{name} on device {device_id}: {done}"),
            Err(e) => format!("{name} on device {device_id} failed: {e}"),
        }
    }

    async fn try_act(
        &self,
        incident: &Incident,
        playbook: &Playbook,
        action: PlaybookAction,
        device_id: &str,
        by: &str,
    ) -> ServiceResult<String> {
        let device = self
            .store
            .device(device_id)
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("device {device_id} not found")))?;
        let admin = AdminIdentity {
            name: format!("playbook:{}", playbook.incident_type),
        };
        let android = device.platform == Platform::Android;
        match action {
            PlaybookAction::Lock => {
                let queued = if android {
                    self.android
                        .issue(
                            &admin.name,
                            device_id,
                            super::android::AndroidCommand::Lock,
                            NewEvent::new(kinds::ADMIN_DEVICE_LOCK, "remote lock by a playbook"),
                        )
                        .await?
                } else {
                    let spec = CommandSpec::DeviceLock {
                        message: playbook.message.clone(),
                        phone_number: playbook.phone_number.clone(),
                        pin: None,
                    };
                    self.commands.lock(&admin, device_id, spec).await?
                };
                Ok(format!("lock queued (command {})", queued.command_uuid))
            }
            PlaybookAction::LostMode => {
                let queued = if android {
                    self.android
                        .issue(
                            &admin.name,
                            device_id,
                            super::android::AndroidCommand::StartLostMode {
                                message: playbook.message.clone(),
                                phone_number: playbook.phone_number.clone(),
                                email: None,
                                address: None,
                                organization: None,
                            },
                            NewEvent::new(kinds::ADMIN_DEVICE_LOCK, "lost mode by a playbook"),
                        )
                        .await?
                } else {
                    let spec = CommandSpec::EnableLostMode {
                        message: playbook.message.clone(),
                        phone_number: playbook.phone_number.clone(),
                        footnote: None,
                    };
                    self.commands
                        .queue(&admin, &[device_id.to_owned()], &spec, &Default::default())
                        .await?
                        .into_iter()
                        .next()
                        .ok_or_else(|| ServiceError::Internal("nothing queued".into()))?
                };
                Ok(format!(
                    "lost mode queued (command {})",
                    queued.command_uuid
                ))
            }
            PlaybookAction::Wipe if !playbook.waive_wipe_approval => {
                let approval = self
                    .store
                    .request_approval(&incident.id, device_id, "wipe", by)
                    .await?;
                Ok(format!(
                    "wipe waits for a second administrator's approval (approval {}; not {by})",
                    approval.id
                ))
            }
            PlaybookAction::Wipe => self.wipe(&admin, device_id, android).await,
            PlaybookAction::Revoke => {
                let outcome = self
                    .revocation
                    .revoke(
                        device_id,
                        RevocationReason::KeyCompromise,
                        RevocationEffect::Revoke,
                        RevokedBy::Admin(admin.name.clone()),
                        &format!("incident No. {}", incident.number),
                    )
                    .await?;
                Ok(format!(
                    "identity revoked ({} certificate(s))",
                    outcome.certificates_revoked
                ))
            }
            PlaybookAction::Notify => Ok(String::new()),
        }
    }

    /// Sends the wipe (after approval, or waived). The approval stands in for the
    /// serial-number confirmation an admin types by hand.
    pub async fn wipe(
        &self,
        admin: &AdminIdentity,
        device_id: &str,
        android: bool,
    ) -> ServiceResult<String> {
        let queued = if android {
            self.android
                .wipe(
                    &admin.name,
                    device_id,
                    Vec::new(),
                    Some("incident response".into()),
                )
                .await?
        } else {
            self.commands
                .wipe(
                    admin,
                    device_id,
                    Some(device_id),
                    CommandSpec::EraseDevice {
                        pin: None,
                        preserve_data_plan: None,
                        disallow_proximity_setup: None,
                    },
                )
                .await?
        };
        Ok(format!("wipe queued (command {})", queued.command_uuid))
    }

    /// A second admin approves (or denies) a waiting wipe; the requester cannot.
    pub async fn decide(
        &self,
        incident: &Incident,
        approval_id: &str,
        approver: &AdminIdentity,
        approve: bool,
    ) -> ServiceResult<String> {
        let approval = self
            .store
            .decide_approval(&incident.id, approval_id, &approver.name, approve)
            .await?
            .map_err(ServiceError::Conflict)?;
        let actor = format!("approval by {}", approver.name);
        let text = if approve {
            let device = self
                .store
                .device(&approval.device_id)
                .await?
                .ok_or_else(|| ServiceError::NotFound("the device is gone".into()))?;
            let result = self
                .wipe(
                    approver,
                    &approval.device_id,
                    device.platform == Platform::Android,
                )
                .await;
            match result {
                Ok(done) => format!("wipe on device {} approved: {done}", approval.device_id),
                Err(e) => format!(
                    "wipe on device {} approved but failed: {e}",
                    approval.device_id
                ),
            }
        } else {
            format!("wipe on device {} denied", approval.device_id)
        };
        self.log(&incident.id, &actor, text.clone()).await?;
        Ok(text)
    }
}
