use super::Admin;
use crate::domain::{Device, DeviceFilter};
use crate::http::error::ApiError;
use crate::http::AppState;
use crate::services::commands::QueueOptions;
use actix_web::{web, HttpResponse};
use profiles::commands::CommandSpec;
use serde::Deserialize;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/devices", web::get().to(list))
        .route("/devices/{id}", web::get().to(show))
        .route("/devices/{id}/commands", web::post().to(queue))
        .route("/devices/{id}/commands", web::get().to(history))
        .route("/devices/{id}/lock", web::post().to(lock))
        .route("/devices/{id}/wipe", web::post().to(wipe));
}

/// Finds a device by its id, or, for convenience at the command line, by UDID or
/// serial number (when exactly one device has it).
pub async fn resolve(state: &AppState, key: &str) -> Result<Device, ApiError> {
    if let Some(d) = state
        .store
        .device(key)
        .await
        .map_err(crate::services::ServiceError::from)?
    {
        return Ok(d);
    }
    for filter in [
        DeviceFilter {
            udid: Some(key.to_owned()),
            ..Default::default()
        },
        DeviceFilter {
            serial_number: Some(key.to_owned()),
            ..Default::default()
        },
    ] {
        let page = state
            .store
            .devices(&DeviceFilter {
                limit: Some(2),
                ..filter
            })
            .await
            .map_err(crate::services::ServiceError::from)?;
        match page.items.len() {
            1 => return Ok(page.items.into_iter().next().expect("one item")),
            0 => continue,
            _ => {
                return Err(ApiError::new(
                    actix_web::http::StatusCode::CONFLICT,
                    format!("{key:?} matches several devices; use the device id"),
                ))
            }
        }
    }
    Err(ApiError::not_found(format!("device {key} not found")))
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
    Ok(HttpResponse::Ok().json(resolve(&state, &id).await?))
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
    body: web::Json<CommandRequest>,
) -> Result<HttpResponse, ApiError> {
    let device = resolve(&state, &id).await?;
    let body = body.into_inner();
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
struct LockRequest {
    message: Option<String>,
    phone_number: Option<String>,
    /// macOS only: the 6-digit PIN that unlocks the Mac.
    pin: Option<String>,
}

async fn lock(
    state: web::Data<AppState>,
    admin: Admin,
    id: web::Path<String>,
    body: Option<web::Json<LockRequest>>,
) -> Result<HttpResponse, ApiError> {
    let device = resolve(&state, &id).await?;
    let body = body.map(|b| b.into_inner()).unwrap_or_default();
    let spec = CommandSpec::DeviceLock {
        message: body.message,
        phone_number: body.phone_number,
        pin: body.pin,
    };
    let queued = state.commands.lock(&admin.0, &device.id, spec).await?;
    Ok(HttpResponse::Accepted().json(queued))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WipeRequest {
    /// Must equal the device's serial number (or its UDID when no serial is known).
    confirm: Option<String>,
    pin: Option<String>,
    preserve_data_plan: Option<bool>,
    disallow_proximity_setup: Option<bool>,
}

async fn wipe(
    state: web::Data<AppState>,
    admin: Admin,
    id: web::Path<String>,
    body: web::Json<WipeRequest>,
) -> Result<HttpResponse, ApiError> {
    let device = resolve(&state, &id).await?;
    let body = body.into_inner();
    let spec = CommandSpec::EraseDevice {
        pin: body.pin,
        preserve_data_plan: body.preserve_data_plan,
        disallow_proximity_setup: body.disallow_proximity_setup,
    };
    let queued = state
        .commands
        .wipe(&admin.0, &device.id, body.confirm.as_deref(), spec)
        .await?;
    Ok(HttpResponse::Accepted().json(queued))
}
