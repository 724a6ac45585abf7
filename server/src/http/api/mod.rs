//! The admin REST API under /api/v1: JSON, bearer tokens, described by openapi.json.

mod admins;
mod android;
mod audit;
pub(crate) mod auth;
mod commands;
mod contract;
pub(crate) mod devices;
mod directory;
mod enrollments;
mod events;
mod incidents;
mod metrics;
mod openapi;
mod policies;
mod push;
pub(crate) mod rights;
mod session;

pub use auth::Admin;
pub use session::request_context;

use crate::http::error::ApiError;
use actix_web::web;

/// Reads a command request body (`{"type": "<RequestType>", ...}`), refusing a `type`
/// that is not a string before serde sees it: serde's internally tagged enums take a
/// number there as the index of a variant, so `{"type": 5}` would queue whatever
/// command happens to be sixth.
pub(crate) fn command_body<T: serde::de::DeserializeOwned>(
    body: serde_json::Value,
) -> Result<T, ApiError> {
    if !matches!(body.get("type"), Some(serde_json::Value::String(_))) {
        return Err(ApiError::bad_request(
            "\"type\" must name a command, e.g. \"DeviceInformation\"",
        ));
    }
    serde_json::from_value(body)
        .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))
}

/// Any request no route took: 405 with Allow when the path is the API's under
/// another method, 404 otherwise.
pub async fn undeclared(req: actix_web::HttpRequest) -> actix_web::HttpResponse {
    let allowed = rights::allowed_methods(req.path());
    if allowed.is_empty() {
        return actix_web::ResponseError::error_response(&ApiError::not_found("no such endpoint"));
    }
    let allow = allowed.join(", ");
    actix_web::HttpResponse::MethodNotAllowed()
        .insert_header(("Allow", allow.clone()))
        .json(serde_json::json!({
            "error": format!("{} is not answered here; allowed: {allow}", req.method())
        }))
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/openapi.json", web::get().to(openapi::document))
        .configure(session::configure)
        .configure(admins::configure)
        .configure(audit::configure)
        .configure(android::configure)
        .configure(devices::configure)
        .configure(directory::configure)
        .configure(commands::configure)
        .configure(events::configure)
        .configure(incidents::configure)
        .configure(policies::configure)
        .configure(metrics::configure)
        .configure(push::configure)
        .configure(enrollments::configure);
}
