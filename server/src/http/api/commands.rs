use super::Admin;
use crate::http::error::ApiError;
use crate::http::AppState;
use crate::services::commands::QueueOptions;
use actix_web::{web, HttpResponse};
use profiles::commands::CommandSpec;
use serde::Deserialize;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/commands", web::post().to(queue_many))
        .route("/commands/{uuid}", web::get().to(show))
        // A cancelled command stays, with its status, in the device's history: a
        // state change (POST), not a DELETE after which it would still be there.
        .route("/commands/{uuid}/cancel", web::post().to(cancel));
}

/// One command to many devices: `{"device_ids": [...], "type": "...", ...params}`.
#[derive(Deserialize)]
struct BulkRequest {
    device_ids: Vec<String>,
    #[serde(flatten)]
    options: QueueOptions,
    #[serde(flatten)]
    spec: CommandSpec,
}

async fn queue_many(
    state: web::Data<AppState>,
    admin: Admin,
    body: web::Json<serde_json::Value>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    admin.require_command(&body)?;
    let body: BulkRequest = super::command_body(body)?;
    let queued = state
        .commands
        .queue(&admin.0, &body.device_ids, &body.spec, &body.options)
        .await?;
    Ok(HttpResponse::Accepted().json(serde_json::json!({
        "count": queued.len(),
        "commands": queued,
    })))
}

async fn show(
    state: web::Data<AppState>,
    _admin: Admin,
    uuid: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let record = state.commands.show(&uuid).await?;
    Ok(HttpResponse::Ok().json(record))
}

async fn cancel(
    state: web::Data<AppState>,
    admin: Admin,
    uuid: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let record = state.commands.cancel(&admin.0, &uuid).await?;
    Ok(HttpResponse::Ok().json(record))
}
