//! HTTP: the device-facing Apple endpoints and the admin API, on one actix-web server.

pub mod api;
pub mod apple;
pub mod enroll;
pub mod error;
pub mod limits;

use crate::services::apple::AppleService;
use crate::services::commands::CommandService;
use crate::services::tokens::TokenService;
use crate::storage::Storage;
use actix_web::{web, HttpResponse};
use enrollment::identity::DeviceCa;
use std::sync::Arc;

/// Everything a request handler may use.
pub struct AppState {
    pub store: Arc<dyn Storage>,
    pub apple: AppleService,
    pub commands: CommandService,
    pub tokens: TokenService,
    pub push: std::sync::Arc<crate::services::push::PushService>,
    pub enrollments: crate::services::enrollments::EnrollmentService,
    pub scep: crate::services::scep::ScepService,
    pub device_ca: DeviceCa,
    pub trust_client_cert_header: bool,
}

/// Routes of the whole server; `max_body` bounds what a device may send.
pub fn configure(cfg: &mut web::ServiceConfig, max_body: usize) {
    cfg.app_data(web::PayloadConfig::new(max_body))
        .app_data(
            web::JsonConfig::default()
                .limit(max_body)
                .error_handler(|err, _req| {
                    let message = format!("invalid JSON body: {err}");
                    error::ApiError::bad_request(message).into()
                }),
        )
        .app_data(web::QueryConfig::default().error_handler(|err, _req| {
            error::ApiError::bad_request(format!("invalid query string: {err}")).into()
        }))
        .app_data(web::PathConfig::default().error_handler(|err, _req| {
            error::ApiError::bad_request(format!("invalid path: {err}")).into()
        }))
        .route("/healthz", web::get().to(health))
        .configure(apple::configure)
        .configure(enroll::configure)
        .service(web::scope("/api/v1").configure(api::configure))
        .default_service(web::to(|| async {
            Err::<HttpResponse, _>(error::ApiError::not_found("no such endpoint"))
        }));
}

/// Liveness, and the trivial endpoint benchmarks compare the protocol against.
async fn health() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "status": "ok" }))
}
