use super::Admin;
use crate::http::error::ApiError;
use crate::http::AppState;
use crate::services::enrollments::CreateEnrollment;
use actix_web::{web, HttpResponse};
use serde::Deserialize;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/enrollments", web::post().to(create))
        .route("/enrollments", web::get().to(list))
        .route("/enrollments/{id}", web::get().to(show))
        .route("/enrollments/{id}", web::delete().to(revoke))
        .route("/enrollments/{id}/qr.png", web::get().to(qr_png))
        .route("/enrollments/{id}/qr.svg", web::get().to(qr_svg));
}

async fn create(
    state: web::Data<AppState>,
    admin: Admin,
    body: web::Json<CreateEnrollment>,
) -> Result<HttpResponse, ApiError> {
    let view = state
        .enrollments
        .create(&admin.0, body.into_inner())
        .await?;
    Ok(HttpResponse::Created().json(view))
}

#[derive(Deserialize)]
struct ListQuery {
    /// Include expired, revoked and used-up enrollments.
    all: Option<bool>,
}

async fn list(
    state: web::Data<AppState>,
    _admin: Admin,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let items = state.enrollments.list(query.all.unwrap_or(false)).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "items": items })))
}

async fn show(
    state: web::Data<AppState>,
    _admin: Admin,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(state.enrollments.get(&id).await?))
}

async fn revoke(
    state: web::Data<AppState>,
    admin: Admin,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(state.enrollments.revoke(&admin.0, &id).await?))
}

#[derive(Deserialize)]
struct Scale {
    scale: Option<u32>,
}

async fn qr_png(
    state: web::Data<AppState>,
    _admin: Admin,
    id: web::Path<String>,
    query: web::Query<Scale>,
) -> Result<HttpResponse, ApiError> {
    let payload = state.enrollments.qr_payload(&id).await?;
    let png = enrollment::qr::png(
        &payload,
        query.scale.unwrap_or(8).clamp(1, enrollment::qr::MAX_SCALE),
    )
    .map_err(|e| ApiError::bad_request(e.to_string()))?;
    Ok(HttpResponse::Ok().content_type("image/png").body(png))
}

async fn qr_svg(
    state: web::Data<AppState>,
    _admin: Admin,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let payload = state.enrollments.qr_payload(&id).await?;
    let svg = enrollment::qr::svg(&payload).map_err(|e| ApiError::bad_request(e.to_string()))?;
    Ok(HttpResponse::Ok().content_type("image/svg+xml").body(svg))
}
