use super::Admin;
use crate::domain::{Device, DeviceFilter};
use crate::http::error::ApiError;
use crate::http::AppState;
use crate::services::commands::QueueOptions;
use crate::services::revocation::RevokedBy;
use crate::storage::RevocationEffect;
use actix_web::{web, HttpResponse};
use enrollment::crl::RevocationReason;
use profiles::commands::CommandSpec;
use serde::Deserialize;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/devices", web::get().to(list))
        .route("/devices/{id}", web::get().to(show))
        .route("/devices/{id}/commands", web::post().to(queue))
        .route("/devices/{id}/commands", web::get().to(history))
        .route("/devices/{id}/lock", web::post().to(lock))
        .route("/devices/{id}/wipe", web::post().to(wipe))
        .route(
            "/devices/{id}/reenrollment",
            web::post().to(approve_reenrollment),
        )
        .route("/devices/{id}/revoke", web::post().to(revoke))
        .route("/devices/{id}/retire", web::post().to(retire))
        .route("/devices/{id}", web::delete().to(delete));
}

/// Finds the device an admin names: by the server-assigned id, or explicitly by
/// `udid:<UDID>` or `serial:<serial number>`.
///
/// UDIDs and serial numbers are what devices say about themselves, so a lookup by
/// them is never implicit: a device that enrolled with a UDID equal to another
/// device's serial number must not receive the command meant for that device. A
/// prefixed lookup that matches several devices is refused with the candidates.
pub async fn resolve(state: &AppState, key: &str) -> Result<Device, ApiError> {
    let key = key.trim();
    let filter = if let Some(udid) = key.strip_prefix("udid:") {
        DeviceFilter {
            udid: Some(udid.to_owned()),
            ..Default::default()
        }
    } else if let Some(serial) = key.strip_prefix("serial:") {
        DeviceFilter {
            serial_number: Some(serial.to_owned()),
            ..Default::default()
        }
    } else {
        if uuid::Uuid::parse_str(key).is_err() {
            // Well formed (any text names a device) and names none: 404.
            return Err(ApiError::not_found(format!(
                "no device {key:?}: name a device by its id, udid:<UDID> or serial:<serial number>"
            )));
        }
        return state
            .store
            .device(key)
            .await
            .map_err(crate::services::ServiceError::from)?
            .ok_or_else(|| ApiError::not_found(format!("device {key} not found")));
    };
    let page = state
        .store
        .devices(&DeviceFilter {
            limit: Some(10),
            ..filter
        })
        .await
        .map_err(crate::services::ServiceError::from)?;
    match page.items.len() {
        0 => Err(ApiError::not_found(format!("no device matches {key}"))),
        1 => Ok(page.items.into_iter().next().expect("one item")),
        _ => {
            let candidates: Vec<String> = page
                .items
                .iter()
                .map(|d| {
                    format!(
                        "{} (UDID {}, serial {})",
                        d.id,
                        d.udid.as_deref().unwrap_or("-"),
                        d.serial_number.as_deref().unwrap_or("-")
                    )
                })
                .collect();
            Err(ApiError::new(
                actix_web::http::StatusCode::CONFLICT,
                format!(
                    "{key} matches {} devices; use the device id: {}",
                    page.total.max(page.items.len() as u64),
                    candidates.join("; ")
                ),
            ))
        }
    }
}

async fn list(
    state: web::Data<AppState>,
    _admin: Admin,
    filter: web::Query<DeviceFilter>,
) -> Result<HttpResponse, ApiError> {
    let page = state
        .store
        .devices(&filter)
        .await
        .map_err(crate::services::ServiceError::from)?;
    Ok(HttpResponse::Ok().json(page))
}

async fn show(
    state: web::Data<AppState>,
    _admin: Admin,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let device = resolve(&state, &id).await?;
    if device.platform != crate::domain::Platform::Android {
        return Ok(HttpResponse::Ok().json(device));
    }
    // What only AMAPI knows (mode, ownership, policy, compliance, posture) under
    // "android".
    let mut v = serde_json::to_value(&device)
        .map_err(|e| crate::services::ServiceError::Internal(e.to_string()))?;
    v["android"] = state
        .android
        .device_view(&device.id)
        .await?
        .unwrap_or(serde_json::Value::Null);
    Ok(HttpResponse::Ok().json(v))
}

/// A command for one device: `{"type": "...", ...params, priority?, expires_at?}`.
#[derive(Deserialize)]
pub struct CommandRequest {
    #[serde(flatten)]
    pub options: QueueOptions,
    #[serde(flatten)]
    pub spec: CommandSpec,
}

async fn queue(
    state: web::Data<AppState>,
    admin: Admin,
    id: web::Path<String>,
    body: web::Json<serde_json::Value>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    admin.require_command(&body)?;
    let device = resolve(&state, &id).await?;
    if device.platform == crate::domain::Platform::Android {
        // AMAPI's command types (LOCK, START_LOST_MODE, ...), sent at once.
        let command = crate::services::android::AndroidCommand::parse(&body)
            .map_err(ApiError::unprocessable)?;
        let audit = crate::domain::event::NewEvent::new(
            crate::domain::event::kinds::ADMIN_COMMAND_QUEUED,
            format!("{} sent to an Android device", command.request_type()),
        );
        let queued = state
            .android
            .issue(&admin.0.name, &device.id, command, audit)
            .await?;
        return Ok(HttpResponse::Accepted().json(queued));
    }
    if let Some(kind) = body
        .get("type")
        .and_then(serde_json::Value::as_str)
        .filter(|kind| kind.bytes().all(|b| b.is_ascii_uppercase() || b == b'_'))
    {
        return Err(ApiError::unprocessable(format!(
            "{kind} is an Android (AMAPI) command and device {} is an Apple device: send it an Apple RequestType",
            device.id
        )));
    }
    let body: CommandRequest = super::command_body(body)?;
    let queued = state
        .commands
        .queue(&admin.0, &[device.id], &body.spec, &body.options)
        .await?;
    Ok(HttpResponse::Accepted().json(&queued[0]))
}

#[derive(Deserialize)]
struct PageQuery {
    offset: Option<u64>,
    limit: Option<u64>,
}

async fn history(
    state: web::Data<AppState>,
    _admin: Admin,
    id: web::Path<String>,
    page: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let device = resolve(&state, &id).await?;
    let page = state
        .store
        .device_commands(
            &device.id,
            page.offset.unwrap_or(0),
            page.limit.unwrap_or(100),
        )
        .await
        .map_err(crate::services::ServiceError::from)?;
    Ok(HttpResponse::Ok().json(page))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct LockRequest {
    pub message: Option<String>,
    pub phone_number: Option<String>,
    /// macOS only: the 6-digit PIN that unlocks the Mac.
    pub pin: Option<String>,
}

async fn lock(
    state: web::Data<AppState>,
    admin: Admin,
    id: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    // The body is optional, but one that is there must be a valid request: an
    // `Option<Json<_>>` takes a malformed body for no body, and the device would be
    // locked without the message the admin meant it to show.
    let body: LockRequest = if body.iter().all(u8::is_ascii_whitespace) {
        LockRequest::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))?
    };
    let device = resolve(&state, &id).await?;
    let queued = lock_device(&state, &admin.0, &device, body).await?;
    Ok(HttpResponse::Accepted().json(queued))
}

/// Locks a device of either platform (the API's and the console's lock).
pub(crate) async fn lock_device(
    state: &AppState,
    admin: &crate::services::tokens::AdminIdentity,
    device: &Device,
    body: LockRequest,
) -> Result<serde_json::Value, ApiError> {
    if device.platform == crate::domain::Platform::Android {
        if body.message.is_some() || body.phone_number.is_some() || body.pin.is_some() {
            return Err(ApiError::unprocessable(
                "Android's LOCK shows no message and takes no PIN: send START_LOST_MODE (message, phone_number, ...) through /devices/{id}/commands to show one",
            ));
        }
        let audit = crate::domain::event::NewEvent::new(
            crate::domain::event::kinds::ADMIN_DEVICE_LOCK,
            "remote lock requested",
        );
        let queued = state
            .android
            .issue(
                &admin.name,
                &device.id,
                crate::services::android::AndroidCommand::Lock,
                audit,
            )
            .await?;
        return to_json(&queued);
    }
    let spec = CommandSpec::DeviceLock {
        message: body.message,
        phone_number: body.phone_number,
        pin: body.pin,
    };
    let queued = state.commands.lock(admin, &device.id, spec).await?;
    to_json(&queued)
}

fn to_json(value: &impl serde::Serialize) -> Result<serde_json::Value, ApiError> {
    serde_json::to_value(value)
        .map_err(|e| crate::services::ServiceError::Internal(e.to_string()).into())
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct WipeRequest {
    /// Must equal the device's serial number (or its UDID when no serial is known).
    pub confirm: Option<String>,
    pub pin: Option<String>,
    pub preserve_data_plan: Option<bool>,
    pub disallow_proximity_setup: Option<bool>,
    /// Android: AMAPI wipeDataFlags (PRESERVE_RESET_PROTECTION_DATA,
    /// WIPE_EXTERNAL_STORAGE, WIPE_ESIMS).
    pub flags: Option<Vec<String>>,
    /// Android: shown to the user (work profile) or logged on the device.
    pub reason: Option<String>,
}

async fn wipe(
    state: web::Data<AppState>,
    admin: Admin,
    id: web::Path<String>,
    body: web::Json<WipeRequest>,
) -> Result<HttpResponse, ApiError> {
    let device = resolve(&state, &id).await?;
    let queued = wipe_device(&state, &admin.0, &device, body.into_inner()).await?;
    Ok(HttpResponse::Accepted().json(queued))
}

/// Erases a device of either platform once its confirmation names it (the API's and
/// the console's wipe).
pub(crate) async fn wipe_device(
    state: &AppState,
    admin: &crate::services::tokens::AdminIdentity,
    device: &Device,
    body: WipeRequest,
) -> Result<serde_json::Value, ApiError> {
    let android = device.platform == crate::domain::Platform::Android;
    if android
        && (body.pin.is_some()
            || body.preserve_data_plan.is_some()
            || body.disallow_proximity_setup.is_some())
    {
        return Err(ApiError::unprocessable(
            "pin, preserve_data_plan and disallow_proximity_setup are Apple's; an Android wipe takes flags and reason",
        ));
    }
    if !android && (body.flags.is_some() || body.reason.is_some()) {
        return Err(ApiError::unprocessable(
            "flags and reason are for Android devices",
        ));
    }
    if android {
        state
            .commands
            .confirm_wipe(admin, &device.id, body.confirm.as_deref())
            .await?;
        let queued = state
            .android
            .wipe(
                &admin.name,
                &device.id,
                body.flags.unwrap_or_default(),
                body.reason,
            )
            .await?;
        return to_json(&queued);
    }
    let spec = CommandSpec::EraseDevice {
        pin: body.pin,
        preserve_data_plan: body.preserve_data_plan,
        disallow_proximity_setup: body.disallow_proximity_setup,
    };
    let queued = state
        .commands
        .wipe(admin, &device.id, body.confirm.as_deref(), spec)
        .await?;
    to_json(&queued)
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ReenrollmentRequest {
    /// Keep the device's open commands across the re-enrollment (default: cancel).
    #[serde(default)]
    keep_queue: bool,
    /// How long the approval waits for the device (default 24, at most 168).
    hours: Option<u32>,
}

/// Approves a re-enrollment with a new certificate for a device that is still
/// enrolled (its new Authenticate is otherwise held).
async fn approve_reenrollment(
    state: web::Data<AppState>,
    admin: Admin,
    id: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    // Optional body, but a malformed one is refused rather than taken for none.
    let body: ReenrollmentRequest = if body.iter().all(u8::is_ascii_whitespace) {
        ReenrollmentRequest::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))?
    };
    let device = resolve(&state, &id).await?;
    let until = state
        .reenrollment
        .approve(&admin.0, &device.id, body.keep_queue, body.hours)
        .await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "device_id": device.id,
        "approved_until": until,
        "keep_queue": body.keep_queue,
    })))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RevokeRequest {
    /// RFC 5280 reason: unspecified (default), key_compromise (lost or stolen),
    /// affiliation_changed, superseded, cessation_of_operation.
    reason: Option<String>,
    /// Why, in the admin's words, for the event stream.
    comment: Option<String>,
}

/// An optional JSON body: empty is the default, malformed is refused.
fn optional_body<T: serde::de::DeserializeOwned + Default>(body: &[u8]) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))
}

fn revocation_view(
    device_id: &str,
    reason: RevocationReason,
    outcome: &crate::storage::RevocationOutcome,
) -> serde_json::Value {
    serde_json::json!({
        "device_id": device_id,
        "reason": reason.as_str(),
        "certificates_revoked": outcome.certificates_revoked,
        "cancelled_commands": outcome.cancelled_commands,
        "already_revoked": outcome.already_revoked,
    })
}

/// Revokes a device's identity by hand (a lost or stolen phone, a leaked
/// certificate): its certificate is refused from now on and listed in the CRL; the
/// device enrolls again only through a new enrollment. Lock or wipe it first: a
/// revoked device receives no more commands.
async fn revoke(
    state: web::Data<AppState>,
    admin: Admin,
    id: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let body: RevokeRequest = optional_body(&body)?;
    let reason = match body.reason.as_deref() {
        None => RevocationReason::Unspecified,
        Some(text) => RevocationReason::parse(text).ok_or_else(|| {
            ApiError::bad_request(format!(
                "reason must be one of {}, not {text:?}",
                RevocationReason::ALL.map(|r| r.as_str()).join(", ")
            ))
        })?,
    };
    let device = resolve(&state, &id).await?;
    let why = body
        .comment
        .unwrap_or_else(|| "revoked by an administrator".into());
    let outcome = state
        .revocation
        .revoke(
            &device.id,
            reason,
            RevocationEffect::Revoke,
            RevokedBy::Admin(admin.0.name.clone()),
            &why,
        )
        .await?;
    Ok(HttpResponse::Ok().json(revocation_view(&device.id, reason, &outcome)))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RetireRequest {
    comment: Option<String>,
}

/// Retires a device from the fleet: its identity is revoked (cessation of
/// operation), its queue cancelled, and the record kept, marked retired.
async fn retire(
    state: web::Data<AppState>,
    admin: Admin,
    id: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let body: RetireRequest = optional_body(&body)?;
    let device = resolve(&state, &id).await?;
    // An Android device leaves the enterprise first (its work profile goes); a
    // refusal (fully managed) leaves everything as it was.
    let android = if device.platform == crate::domain::Platform::Android {
        Some(state.android.retire(&admin.0.name, &device.id).await?)
    } else {
        None
    };
    let reason = RevocationReason::CessationOfOperation;
    let why = body
        .comment
        .unwrap_or_else(|| "retired by an administrator".into());
    let outcome = state
        .revocation
        .revoke(
            &device.id,
            reason,
            RevocationEffect::Retire,
            RevokedBy::Admin(admin.0.name.clone()),
            &why,
        )
        .await?;
    let mut view = revocation_view(&device.id, reason, &outcome);
    if let Some(a) = android {
        view["android"] = a;
    }
    Ok(HttpResponse::Ok().json(view))
}

/// Deletes a device record with its commands, after revoking its identity; the
/// events about it stay in the event stream.
async fn delete(
    state: web::Data<AppState>,
    admin: Admin,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let device = resolve(&state, &id).await?;
    if device.platform == crate::domain::Platform::Android {
        // Deleting our record must not leave a phone managed by nobody we know of.
        let view = state.android.device_view(&device.id).await?;
        let removed = view.as_ref().is_none_or(|v| v["state"] == "DELETED");
        if !removed {
            return Err(ApiError::new(
                actix_web::http::StatusCode::CONFLICT,
                "this Android device is still in the enterprise: wipe or retire it first",
            ));
        }
    }
    let reason = RevocationReason::CessationOfOperation;
    let outcome = state
        .revocation
        .revoke(
            &device.id,
            reason,
            RevocationEffect::Delete,
            RevokedBy::Admin(admin.0.name.clone()),
            "deleted by an administrator",
        )
        .await?;
    Ok(HttpResponse::Ok().json(revocation_view(&device.id, reason, &outcome)))
}
