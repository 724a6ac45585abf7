//! Android Enterprise administration: connecting to Google and its status.

use super::Admin;
use crate::http::error::ApiError;
use crate::http::AppState;
use crate::services::android::ConnectRequest;
use actix_web::{web, HttpResponse};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/android", web::get().to(status))
        .route("/android/connect", web::post().to(connect))
        .route("/android/sync", web::post().to(sync));
}

async fn status(state: web::Data<AppState>, _admin: Admin) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(state.android.status().await?))
}

async fn connect(
    state: web::Data<AppState>,
    admin: Admin,
    body: web::Json<ConnectRequest>,
) -> Result<HttpResponse, ApiError> {
    let view = state
        .android
        .connect(&admin.0.name, body.into_inner())
        .await?;
    Ok(HttpResponse::Ok().json(view))
}

/// A full device sync now (`devices.list`), instead of waiting for the periodic one.
async fn sync(state: web::Data<AppState>, _admin: Admin) -> Result<HttpResponse, ApiError> {
    let devices = state.android.sync_once().await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "devices": devices })))
}
