//! HTTP: the device-facing Apple endpoints and the admin API, on one actix-web server.

pub mod android;
pub mod api;
pub mod apple;
pub mod enroll;
pub mod error;
pub mod limits;
pub mod lost;
pub mod pki;
pub mod redact;

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
    pub android: Arc<crate::services::android::AndroidService>,
    pub apple: AppleService,
    pub commands: CommandService,
    pub tokens: TokenService,
    /// Admin accounts, sessions, roles, the audit trail's readers, off-boarding.
    pub admins: Arc<crate::services::admins::AdminServices>,
    pub push: std::sync::Arc<crate::services::push::PushService>,
    pub enrollments: crate::services::enrollments::EnrollmentService,
    pub scep: crate::services::scep::ScepService,
    pub reenrollment: crate::services::reenrollment::ReenrollmentService,
    pub revocation: Arc<crate::services::revocation::RevocationService>,
    pub incidents: crate::services::incidents::IncidentService,
    pub policies: Arc<crate::services::policies::PolicyService>,
    pub lost_reports: crate::services::lost_reports::LostReportService,
    pub device_ca: DeviceCa,
    pub trust_client_cert_header: bool,
}

/// How many bytes a request body may have, by who sends it.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimits {
    /// Device-facing endpoints: MDM check-in and reports, SCEP, enrollment.
    pub device: usize,
    /// The admin API (JSON; configuration profiles travel inside it).
    pub api: usize,
}

/// Routes of the whole server. A body past its limit is refused with 413 before it is
/// read whole, and nothing is written.
pub fn configure(cfg: &mut web::ServiceConfig, limits: BodyLimits) {
    cfg.app_data(limits)
        .app_data(web::PayloadConfig::new(limits.device))
        .app_data(json_config(limits.device))
        .app_data(web::QueryConfig::default().error_handler(|err, _req| {
            error::ApiError::bad_request(format!("invalid query string: {err}")).into()
        }))
        .app_data(web::PathConfig::default().error_handler(|err, _req| {
            error::ApiError::bad_request(format!("invalid path: {err}")).into()
        }))
        .route("/healthz", web::get().to(health))
        .configure(apple::configure)
        .configure(android::configure)
        .configure(enroll::configure)
        .configure(pki::configure)
        .configure(lost::configure)
        .service(
            web::scope("/api/v1")
                // Events an admin request causes carry its address (audit trail).
                .wrap(actix_web::middleware::from_fn(api::request_context))
                // The nearest app_data wins: the admin API has its own, larger limit.
                .app_data(web::PayloadConfig::new(limits.api))
                .app_data(json_config(limits.api))
                .configure(api::configure)
                .default_service(web::to(api::undeclared)),
        )
        .configure(crate::console::configure)
        .default_service(web::to(|| async {
            Err::<HttpResponse, _>(error::ApiError::not_found("no such endpoint"))
        }));
}

/// JSON bodies: size-limited here, depth-limited by serde_json (128 levels, an
/// error past that, never a recursion that grows with the input).
fn json_config(limit: usize) -> web::JsonConfig {
    web::JsonConfig::default()
        .limit(limit)
        .error_handler(|err, _req| {
            let too_large = matches!(
                &err,
                actix_web::error::JsonPayloadError::Overflow { .. }
                    | actix_web::error::JsonPayloadError::OverflowKnownLength { .. }
            );
            let message = format!("invalid JSON body: {err}");
            if too_large {
                error::ApiError::payload_too_large(message).into()
            } else {
                error::ApiError::bad_request(message).into()
            }
        })
}

/// Liveness, and the trivial endpoint benchmarks compare the protocol against.
async fn health() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "status": "ok" }))
}
