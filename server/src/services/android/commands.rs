//! Android commands through `devices.issueCommand`, tracked in the platform-neutral
//! `commands` table: pending when written, sent when Google answered its operation,
//! then acknowledged or error when the COMMAND notification (or the sync's
//! `operations.get`) says the operation is done, with AMAPI's error code shown.
//!
//! A command the device's management mode or API level cannot run is refused before
//! anything is written or sent (the same rules AMAPI documents per command type), so
//! the admin learns why at once rather than from an error code hours later.

use super::{google_error, AndroidService};
use crate::android::types::Operation;
use crate::domain::event::{kinds, severity, NewEvent};
use crate::domain::{CommandStatus, NewCommand};
use crate::services::commands::{Queued, URGENT_PRIORITY};
use crate::services::{seal_purpose, ServiceError, ServiceResult};
use crate::storage::AndroidDeviceState;
use chrono::Utc;
use enrollment::crl::RevocationReason;
use serde_json::{json, Map, Value};

/// How long the phone has to pick a command up (AMAPI's `duration`; its default is
/// ten minutes, too short for a phone in a drawer over a weekend).
const COMMAND_LIFETIME_SECS: i64 = 7 * 24 * 3600;

/// An Android command as admins write it (`{"type": "LOCK", ...}`).
#[derive(Debug, Clone, PartialEq)]
pub enum AndroidCommand {
    Lock,
    ResetPassword {
        new_password: Option<String>,
        /// REQUIRE_ENTRY, DO_NOT_ASK_CREDENTIALS_ON_BOOT, LOCK_NOW.
        flags: Vec<String>,
    },
    Reboot,
    StartLostMode {
        message: Option<String>,
        phone_number: Option<String>,
        email: Option<String>,
        address: Option<String>,
        organization: Option<String>,
    },
    StopLostMode,
    ClearAppData {
        package_names: Vec<String>,
    },
    RequestDeviceInfo,
    Wipe {
        /// PRESERVE_RESET_PROTECTION_DATA, WIPE_EXTERNAL_STORAGE, WIPE_ESIMS.
        flags: Vec<String>,
        reason: Option<String>,
    },
    /// Retire a company-owned phone with a work profile: the work profile goes, the
    /// personal side stays.
    RelinquishOwnership,
}

const RESET_FLAGS: &[&str] = &[
    "REQUIRE_ENTRY",
    "DO_NOT_ASK_CREDENTIALS_ON_BOOT",
    "LOCK_NOW",
];
/// AMAPI's wipeDataFlags (public: the CLI offers exactly these).
pub const WIPE_FLAGS: &[&str] = &[
    "PRESERVE_RESET_PROTECTION_DATA",
    "WIPE_EXTERNAL_STORAGE",
    "WIPE_ESIMS",
];

fn text(v: &Value, key: &str) -> Result<Option<String>, String> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.chars().any(char::is_control) && !s.contains('\n') => {
            Err(format!("{key} contains control characters"))
        }
        Some(Value::String(s)) if s.trim().is_empty() => Err(format!("{key} is empty")),
        Some(Value::String(s)) if s.len() > 4096 => Err(format!("{key} is too long")),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(format!("{key} must be a string")),
    }
}

fn list(v: &Value, key: &str, allowed: Option<&[&str]>) -> Result<Vec<String>, String> {
    let Some(items) = v.get(key).filter(|x| !x.is_null()) else {
        return Ok(Vec::new());
    };
    let items = items
        .as_array()
        .ok_or_else(|| format!("{key} must be a list of strings"))?;
    items
        .iter()
        .map(|i| {
            let s = i
                .as_str()
                .ok_or_else(|| format!("{key} must be a list of strings"))?;
            if let Some(allowed) = allowed {
                if !allowed.contains(&s) {
                    return Err(format!("{key}: {s:?} is not one of {}", allowed.join(", ")));
                }
            }
            Ok(s.to_owned())
        })
        .collect()
}

fn message(text: &Option<String>) -> Option<Value> {
    text.as_ref().map(|t| json!({ "defaultMessage": t }))
}

impl AndroidCommand {
    /// Reads `{"type": "...", ...}`; every key must be one the type takes.
    pub fn parse(body: &Value) -> Result<AndroidCommand, String> {
        let obj = body
            .as_object()
            .ok_or("the command must be a JSON object")?;
        let kind = obj
            .get("type")
            .and_then(Value::as_str)
            .ok_or("\"type\" must name a command, e.g. \"LOCK\"")?;
        let allowed: &[&str] = match kind {
            "LOCK" | "REBOOT" | "STOP_LOST_MODE" | "REQUEST_DEVICE_INFO" => &[],
            "RESET_PASSWORD" => &["new_password", "flags"],
            "START_LOST_MODE" => &["message", "phone_number", "email", "address", "organization"],
            "CLEAR_APP_DATA" => &["package_names"],
            "WIPE" => {
                return Err("WIPE is sent only through /devices/{id}/wipe (mdm devices wipe), which asks for confirmation".into())
            }
            "RELINQUISH_OWNERSHIP" => {
                return Err("RELINQUISH_OWNERSHIP is sent through /devices/{id}/retire (mdm devices retire)".into())
            }
            other => {
                return Err(format!(
                    "unknown Android command {other:?}: LOCK, RESET_PASSWORD, REBOOT, START_LOST_MODE, STOP_LOST_MODE, CLEAR_APP_DATA, REQUEST_DEVICE_INFO"
                ))
            }
        };
        // Queue options (priority, expiry) are the generic queue's; Android commands
        // run at once and ignore them.
        let generic = ["type", "priority", "expires_at", "expires_in_seconds"];
        if let Some(k) = obj
            .keys()
            .find(|k| !generic.contains(&k.as_str()) && !allowed.contains(&k.as_str()))
        {
            return Err(format!("{kind} takes no {k:?}"));
        }
        Ok(match kind {
            "LOCK" => AndroidCommand::Lock,
            "REBOOT" => AndroidCommand::Reboot,
            "STOP_LOST_MODE" => AndroidCommand::StopLostMode,
            "REQUEST_DEVICE_INFO" => AndroidCommand::RequestDeviceInfo,
            "RESET_PASSWORD" => AndroidCommand::ResetPassword {
                new_password: match body.get("new_password") {
                    // An empty password is how AMAPI removes the password.
                    Some(Value::String(s)) => Some(s.clone()),
                    None | Some(Value::Null) => None,
                    Some(_) => return Err("new_password must be a string".into()),
                },
                flags: list(body, "flags", Some(RESET_FLAGS))?,
            },
            "START_LOST_MODE" => {
                let c = AndroidCommand::StartLostMode {
                    message: text(body, "message")?,
                    phone_number: text(body, "phone_number")?,
                    email: text(body, "email")?,
                    address: text(body, "address")?,
                    organization: text(body, "organization")?,
                };
                if let AndroidCommand::StartLostMode {
                    message: None,
                    phone_number: None,
                    email: None,
                    address: None,
                    organization: None,
                } = c
                {
                    // AMAPI: at least one of them, or the device shows nothing.
                    return Err("START_LOST_MODE needs a message, phone number, e-mail, address or organization to show".into());
                }
                c
            }
            "CLEAR_APP_DATA" => {
                let packages = list(body, "package_names", None)?;
                if packages.is_empty() {
                    return Err("CLEAR_APP_DATA needs package_names".into());
                }
                AndroidCommand::ClearAppData {
                    package_names: packages,
                }
            }
            _ => unreachable!("checked above"),
        })
    }

    pub fn request_type(&self) -> &'static str {
        match self {
            AndroidCommand::Lock => "LOCK",
            AndroidCommand::ResetPassword { .. } => "RESET_PASSWORD",
            AndroidCommand::Reboot => "REBOOT",
            AndroidCommand::StartLostMode { .. } => "START_LOST_MODE",
            AndroidCommand::StopLostMode => "STOP_LOST_MODE",
            AndroidCommand::ClearAppData { .. } => "CLEAR_APP_DATA",
            AndroidCommand::RequestDeviceInfo => "REQUEST_DEVICE_INFO",
            AndroidCommand::Wipe { .. } => "WIPE",
            AndroidCommand::RelinquishOwnership => "RELINQUISH_OWNERSHIP",
        }
    }

    /// Whether the command carries a secret (sealed at rest).
    pub fn sensitive(&self) -> bool {
        matches!(
            self,
            AndroidCommand::ResetPassword {
                new_password: Some(_),
                ..
            }
        )
    }

    /// The AMAPI `Command` resource.
    pub fn to_amapi(&self) -> Value {
        let mut c = Map::new();
        c.insert("type".into(), self.request_type().into());
        c.insert(
            "duration".into(),
            format!("{COMMAND_LIFETIME_SECS}s").into(),
        );
        match self {
            AndroidCommand::ResetPassword {
                new_password,
                flags,
            } => {
                if let Some(p) = new_password {
                    c.insert("newPassword".into(), p.clone().into());
                }
                if !flags.is_empty() {
                    c.insert("resetPasswordFlags".into(), json!(flags));
                }
            }
            AndroidCommand::StartLostMode {
                message: m,
                phone_number,
                email,
                address,
                organization,
            } => {
                let mut p = Map::new();
                let mut put = |k: &str, v: Option<Value>| {
                    if let Some(v) = v {
                        p.insert(k.into(), v);
                    }
                };
                put("lostMessage", message(m));
                put("lostPhoneNumber", message(phone_number));
                put("lostEmailAddress", email.clone().map(Value::from));
                put("lostStreetAddress", message(address));
                put("lostOrganization", message(organization));
                c.insert("startLostModeParams".into(), Value::Object(p));
            }
            AndroidCommand::StopLostMode => {
                c.insert("stopLostModeParams".into(), json!({}));
            }
            AndroidCommand::ClearAppData { package_names } => {
                c.insert(
                    "clearAppsDataParams".into(),
                    json!({ "packageNames": package_names }),
                );
            }
            AndroidCommand::RequestDeviceInfo => {
                c.insert(
                    "requestDeviceInfoParams".into(),
                    json!({ "deviceInfo": "EID" }),
                );
            }
            AndroidCommand::Wipe { flags, reason } => {
                let mut p = Map::new();
                if !flags.is_empty() {
                    p.insert("wipeDataFlags".into(), json!(flags));
                }
                if let Some(r) = message(reason) {
                    p.insert("wipeReason".into(), r);
                }
                c.insert("wipeParams".into(), Value::Object(p));
            }
            AndroidCommand::Lock | AndroidCommand::Reboot | AndroidCommand::RelinquishOwnership => {
            }
        }
        Value::Object(c)
    }

    /// Why this device cannot run the command, from AMAPI's documentation of each
    /// type; None when it can.
    pub fn refusal(
        &self,
        mode: Option<&str>,
        ownership: Option<&str>,
        api: Option<i32>,
    ) -> Option<String> {
        let fully_managed = mode == Some("DEVICE_OWNER");
        let company_profile = mode == Some("PROFILE_OWNER") && ownership == Some("COMPANY_OWNED");
        let api = api.unwrap_or(0);
        let name = self.request_type();
        let needs_api = |min: i32, version: &str| {
            (api < min).then(|| {
                format!("{name} needs Android {version} (API level {min}); this device reports API level {api}")
            })
        };
        match self {
            AndroidCommand::Reboot if !fully_managed => Some(format!(
                "{name} runs only on fully managed devices; this one is {}",
                mode.unwrap_or("of unknown mode")
            )),
            AndroidCommand::Reboot => needs_api(24, "7.0"),
            AndroidCommand::ClearAppData { .. } => needs_api(28, "9"),
            AndroidCommand::StartLostMode { .. } | AndroidCommand::StopLostMode
                if !(fully_managed || company_profile) =>
            {
                Some(format!(
                    "{name} runs only on fully managed or company-owned work-profile devices; this one is {} / {}",
                    mode.unwrap_or("?"),
                    ownership.unwrap_or("?")
                ))
            }
            AndroidCommand::StartLostMode { .. } | AndroidCommand::StopLostMode => {
                needs_api(30, "11")
            }
            AndroidCommand::RelinquishOwnership if !company_profile => Some(format!(
                "{name} applies to company-owned devices with a work profile; this one is {} / {}",
                mode.unwrap_or("?"),
                ownership.unwrap_or("?")
            )),
            AndroidCommand::RelinquishOwnership => needs_api(26, "8.0"),
            _ => None,
        }
    }
}

/// What the command's result shows: the operation and the outcome AMAPI gave.
fn result_of(op: &Operation) -> (CommandStatus, Value) {
    let meta = op.metadata.clone().unwrap_or(Value::Null);
    let error_code = meta["errorCode"]
        .as_str()
        .filter(|c| *c != "COMMAND_ERROR_CODE_UNSPECIFIED");
    // Command-specific status first (AMAPI's advice), then errorCode, then error.
    let lost_mode = meta["startLostModeStatus"]["status"].as_str();
    let failed = error_code.is_some()
        || op.error.is_some()
        || matches!(lost_mode, Some(s) if s != "SUCCESS" && s != "STATUS_UNSPECIFIED");
    let mut result = json!({ "operation": op.name, "done": op.done });
    for key in [
        "errorCode",
        "startLostModeStatus",
        "stopLostModeStatus",
        "clearAppsDataStatus",
        "requestDeviceInfoStatus",
        "esimStatus",
    ] {
        if let Some(v) = meta.get(key) {
            result[key] = v.clone();
        }
    }
    if let Some(e) = &op.error {
        result["error"] = e.clone();
    }
    let status = if failed {
        CommandStatus::Error
    } else {
        CommandStatus::Acknowledged
    };
    (status, result)
}

impl AndroidService {
    async fn active_device(&self, device_id: &str) -> ServiceResult<AndroidDeviceState> {
        let state = self.store.android_device(device_id).await?.ok_or_else(|| {
            ServiceError::NotFound(format!("Android device {device_id} not found"))
        })?;
        if state.record.state.as_deref() == Some("DELETED") {
            return Err(ServiceError::Conflict(
                "this Android device was removed from the enterprise (wiped or deleted)".into(),
            ));
        }
        Ok(state)
    }

    /// Sends a command to an Android device and records it (and `audit`) first.
    pub async fn issue(
        &self,
        actor: &str,
        device_id: &str,
        command: AndroidCommand,
        audit: NewEvent,
    ) -> ServiceResult<Queued> {
        let state = self.active_device(device_id).await?;
        let r = &state.record;
        if let Some(reason) = command.refusal(
            r.management_mode.as_deref(),
            r.ownership.as_deref(),
            r.api_level,
        ) {
            return Err(ServiceError::BadRequest(format!(
                "{reason}; nothing was sent"
            )));
        }
        let (_, _, link) = self.enterprise().await?;
        let body = command.to_amapi();
        let uuid = uuid::Uuid::new_v4().to_string().to_uppercase();
        let plain = body.to_string().into_bytes();
        let (payload, sealed) = if command.sensitive() {
            let s = self
                .sealer
                .seal(seal_purpose::COMMAND_PAYLOAD, &uuid, &plain)
                .map_err(|e| ServiceError::Internal(e.to_string()))?;
            (s, true)
        } else {
            (plain, false)
        };
        let now = Utc::now();
        let audit = audit.device(device_id).actor(actor).data(json!({
            "command_uuid": uuid, "request_type": command.request_type(), "platform": "android",
        }));
        self.store
            .enqueue(
                vec![NewCommand {
                    uuid: uuid.clone(),
                    device_id: device_id.to_owned(),
                    request_type: command.request_type().to_owned(),
                    payload,
                    payload_sealed: sealed,
                    priority: URGENT_PRIORITY,
                    expires_at: Some(now + chrono::Duration::seconds(COMMAND_LIFETIME_SECS)),
                    created_by: actor.to_owned(),
                }],
                vec![audit],
            )
            .await?;
        match link.amapi.issue_command(&r.name, &body).await {
            Ok(op) => {
                self.store
                    .android_command_sent(&uuid, device_id, &op.name, Utc::now())
                    .await?;
                // Google may answer an operation done at once.
                if op.done {
                    self.finish_operation(&op).await?;
                }
            }
            Err(e) => {
                let result = json!({ "error": e.to_string(), "sent": false });
                let event = NewEvent::new(
                    kinds::COMMAND_RESULT,
                    format!("{} not sent: {e}", command.request_type()),
                )
                .device(device_id)
                .data(json!({ "command_uuid": uuid, "status": "error" }));
                self.store
                    .finish_android_command(&uuid, CommandStatus::Error, result, Utc::now(), event)
                    .await?;
                self.record_failure("devices.issueCommand", &e).await;
                return Err(google_error(e));
            }
        }
        Ok(Queued {
            device_id: device_id.to_owned(),
            command_uuid: uuid,
            request_type: command.request_type().to_owned(),
        })
    }

    /// A done operation finishes its command; a wipe that went through also removes
    /// the device from the enterprise and revokes its identity, like an Apple wipe.
    pub async fn finish_operation(&self, op: &Operation) -> ServiceResult<bool> {
        let Some((uuid, device_id)) = self.store.android_operation(&op.name).await? else {
            return Ok(false);
        };
        if !op.done {
            return Ok(true);
        }
        let (status, result) = result_of(op);
        let kind = op
            .metadata
            .as_ref()
            .and_then(|m| m["type"].as_str())
            .unwrap_or("command")
            .to_owned();
        let code = result["errorCode"].as_str().unwrap_or("").to_owned();
        let event = NewEvent::new(
            kinds::COMMAND_RESULT,
            match status {
                CommandStatus::Acknowledged => format!("{kind} done"),
                _ => format!("{kind} failed {code}"),
            },
        )
        .device(&device_id)
        .severity(if status == CommandStatus::Acknowledged {
            severity::NON_CRITICAL
        } else {
            severity::LOW
        })
        .data(json!({ "command_uuid": uuid, "status": status.as_str(), "result": result }));
        let finished = self
            .store
            .finish_android_command(&uuid, status, result, Utc::now(), event)
            .await?;
        if finished && status == CommandStatus::Acknowledged && kind == "WIPE" {
            self.after_wipe(&device_id).await?;
        }
        Ok(true)
    }

    /// The phone acknowledged its wipe: AMAPI documents `devices.delete` to take the
    /// device out of the enterprise (it no longer counts or reports); its identity
    /// is revoked as an Apple device's is when EraseDevice is acknowledged.
    async fn after_wipe(&self, device_id: &str) -> ServiceResult<()> {
        if let Some(state) = self.store.android_device(device_id).await? {
            let (_, _, link) = self.enterprise().await?;
            match link
                .amapi
                .delete_device(&state.record.name, &[], None)
                .await
            {
                Ok(()) => {}
                Err(e) if e.status() == Some(404) => {}
                Err(e) => {
                    // The wipe happened; the record at Google is only clutter.
                    tracing::warn!(device = %device_id, error = %e, "wiped Android device not deleted at Google");
                }
            }
            let mut record = state.record.clone();
            record.state = Some("DELETED".into());
            record.observed_at = Utc::now();
            self.store.upsert_android_device(record, Utc::now()).await?;
        }
        if let Some(revocation) = self.revocation.get() {
            revocation
                .revoke(
                    device_id,
                    RevocationReason::CessationOfOperation,
                    crate::storage::RevocationEffect::Revoke,
                    crate::services::revocation::RevokedBy::Device,
                    "wiped (Android WIPE acknowledged)",
                )
                .await?;
        }
        Ok(())
    }

    /// Wipe, confirmed by the caller already.
    pub async fn wipe(
        &self,
        actor: &str,
        device_id: &str,
        flags: Vec<String>,
        reason: Option<String>,
    ) -> ServiceResult<Queued> {
        for f in &flags {
            if !WIPE_FLAGS.contains(&f.as_str()) {
                return Err(ServiceError::BadRequest(format!(
                    "wipe flag {f:?} is not one of {}",
                    WIPE_FLAGS.join(", ")
                )));
            }
        }
        let audit = NewEvent::new(kinds::ADMIN_DEVICE_WIPE, "remote wipe requested")
            .severity(severity::LOW);
        self.issue(
            actor,
            device_id,
            AndroidCommand::Wipe { flags, reason },
            audit,
        )
        .await
    }

    /// Retire: a work profile leaves, the phone and its personal side stay. A
    /// company-owned phone relinquishes ownership (RELINQUISH_OWNERSHIP); a personal
    /// one is removed from the enterprise (`devices.delete`, which removes only the
    /// work profile). A fully managed phone cannot leave management without a
    /// factory reset: that is a wipe, and is refused here.
    pub async fn retire(&self, actor: &str, device_id: &str) -> ServiceResult<Value> {
        let state = self.active_device(device_id).await?;
        let r = &state.record;
        match (r.management_mode.as_deref(), r.ownership.as_deref()) {
            (Some("PROFILE_OWNER"), Some("COMPANY_OWNED")) => {
                let audit = NewEvent::new(kinds::ADMIN_DEVICE_RETIRED, "work profile relinquished");
                let queued = self
                    .issue(actor, device_id, AndroidCommand::RelinquishOwnership, audit)
                    .await?;
                Ok(json!({ "android": "RELINQUISH_OWNERSHIP", "command_uuid": queued.command_uuid }))
            }
            (Some("PROFILE_OWNER"), _) => {
                let (_, _, link) = self.enterprise().await?;
                link.amapi
                    .delete_device(&r.name, &[], Some("Your work profile was removed by IT."))
                    .await
                    .map_err(google_error)?;
                let mut record = r.clone();
                record.state = Some("DELETED".into());
                record.observed_at = Utc::now();
                self.store.upsert_android_device(record, Utc::now()).await?;
                Ok(json!({ "android": "devices.delete (work profile removed)" }))
            }
            (mode, _) => Err(ServiceError::Conflict(format!(
                "a {} Android device cannot leave management without a factory reset: wipe it instead (mdm devices wipe)",
                mode.unwrap_or("fully managed")
            ))),
        }
    }

    /// Asks Google about commands whose COMMAND notification never came.
    pub async fn poll_operations(&self) -> ServiceResult<usize> {
        let (_, _, link) = self.enterprise().await?;
        let open = self.store.open_android_operations(500).await?;
        let mut done = 0;
        for name in open {
            match link.amapi.get_operation(&name).await {
                Ok(op) if op.done => {
                    self.finish_operation(&op).await?;
                    done += 1;
                }
                Ok(_) => {}
                // Google no longer knows it: it will never finish.
                Err(e) if e.status() == Some(404) => {
                    self.finish_operation(&Operation {
                        name: name.clone(),
                        done: true,
                        error: Some(json!({ "message": "the operation is unknown to Google" })),
                        metadata: None,
                    })
                    .await?;
                }
                Err(e) => self.record_failure("operations.get", &e).await,
            }
        }
        Ok(done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_parse_refuse_and_build() {
        let c = AndroidCommand::parse(&json!({"type": "START_LOST_MODE", "message": "Call us", "phone_number": "+48 22 000 00 00"})).unwrap();
        let body = c.to_amapi();
        assert_eq!(
            body["startLostModeParams"]["lostMessage"]["defaultMessage"],
            "Call us"
        );
        assert!(c
            .refusal(Some("PROFILE_OWNER"), Some("PERSONALLY_OWNED"), Some(34))
            .is_some());
        assert!(c
            .refusal(Some("DEVICE_OWNER"), Some("COMPANY_OWNED"), Some(29))
            .unwrap()
            .contains("API level 30"));
        assert!(c
            .refusal(Some("DEVICE_OWNER"), Some("COMPANY_OWNED"), Some(34))
            .is_none());
        assert!(AndroidCommand::parse(&json!({"type": "START_LOST_MODE"})).is_err());
        assert!(AndroidCommand::parse(&json!({"type": "LOCK", "colour": 1})).is_err());
        assert!(AndroidCommand::parse(&json!({"type": "WIPE"})).is_err());
        let r = AndroidCommand::parse(
            &json!({"type": "RESET_PASSWORD", "new_password": "739155", "flags": ["LOCK_NOW"]}),
        )
        .unwrap();
        assert!(r.sensitive());
        assert!(
            AndroidCommand::parse(&json!({"type": "RESET_PASSWORD", "flags": ["NOW"]})).is_err()
        );
        assert!(AndroidCommand::Reboot
            .refusal(Some("PROFILE_OWNER"), None, Some(34))
            .is_some());
    }
}
