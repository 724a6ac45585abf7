use super::Admin;
use crate::domain::EventFilter;
use crate::http::error::ApiError;
use crate::http::AppState;
use actix_web::{web, HttpResponse};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/events", web::get().to(list));
}

/// The event stream, oldest first; `after_id` tails it.
async fn list(
    state: web::Data<AppState>,
    _admin: Admin,
    filter: web::Query<EventFilter>,
) -> Result<HttpResponse, ApiError> {
    let events = state
        .store
        .events(&filter)
        .await
        .map_err(crate::services::ServiceError::from)?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "items": events })))
}
