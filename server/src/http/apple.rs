//! Device-facing Apple endpoints: the profile's CheckInURL and ServerURL.
//! Thin adapters: establish the device identity, decode, call the service, answer.

use super::error::ApiError;
use super::AppState;
use crate::services::ServiceError;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use enrollment::identity::{parse_client_cert_header, VerifiedIdentity};
use profiles::{checkin, report};
use std::sync::Arc;

pub const CHECKIN_PATH: &str = "/mdm/checkin";
pub const SERVER_PATH: &str = "/mdm/connect";

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource(CHECKIN_PATH)
            .route(web::put().to(checkin_endpoint))
            .route(web::post().to(checkin_endpoint)),
    )
    .service(
        web::resource(SERVER_PATH)
            .route(web::put().to(server_endpoint))
            .route(web::post().to(server_endpoint)),
    );
}

/// Who sent this request: proven by the Mdm-Signature header, or by the client
/// certificate a trusted proxy forwarded. Nothing is written before this passes.
/// A certificate whose chain verified before is not chained again (the service's
/// cache says so, until the chain's notAfter or a revocation); the signature over
/// this body is verified every time.
fn identify(
    state: &AppState,
    req: &HttpRequest,
    body: &[u8],
) -> Result<Arc<VerifiedIdentity>, ApiError> {
    let ca = &state.device_ca;
    let chains = state.apple.verified_chains();
    let result = if let Some(header) = state
        .trust_client_cert_header
        .then(|| req.headers().get("Client-Cert"))
        .flatten()
    {
        header
            .to_str()
            .map_err(|_| enrollment::identity::IdentityError::BadClientCertHeader)
            .and_then(parse_client_cert_header)
            .and_then(|der| ca.verify_certificate_with(&der, chains))
    } else {
        match req.headers().get("Mdm-Signature") {
            None => Err(enrollment::identity::IdentityError::Missing),
            Some(sig) => sig
                .to_str()
                .map_err(|_| enrollment::identity::IdentityError::NotBase64)
                .and_then(|sig| ca.verify_mdm_signature_with(sig, body, chains)),
        }
    };
    result.map_err(|e| {
        tracing::warn!(peer = ?req.peer_addr(), path = req.path(), error = %e, "device request refused");
        ApiError::unauthorized(e.to_string())
    })
}

/// A device plist that could not be read: 413 past a size limit, 400 otherwise.
/// Logged with the signer's fingerprint so a hostile device can be found.
fn refuse_plist(identity: &VerifiedIdentity, what: &str, e: profiles::ParseError) -> ApiError {
    tracing::warn!(
        device_cert = %identity.fingerprint,
        reason = %e.reason,
        excerpt = %e.excerpt,
        "{what}"
    );
    let message = format!("{what}: {}", e.reason);
    if e.too_large {
        ApiError::payload_too_large(message)
    } else {
        ApiError::bad_request(message)
    }
}

fn device_error(e: ServiceError) -> ApiError {
    if let ServiceError::NotFound(m) | ServiceError::Unauthorized(m) = &e {
        tracing::warn!(reason = %m, "device request refused");
    }
    e.into()
}

async fn checkin_endpoint(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let identity = identify(&state, &req, &body)?;
    if let Some(too_many) = super::limits::throttle_identity(&req, &identity.fingerprint) {
        return Ok(too_many);
    }
    let message = checkin::decode(&body)
        .map_err(|e| refuse_plist(&identity, "malformed check-in message", e))?;
    match state.apple.checkin(&identity, message).await {
        Ok(crate::services::apple::CheckinReply::Ok) => Ok(HttpResponse::Ok().finish()),
        Ok(crate::services::apple::CheckinReply::Plist(body)) => Ok(HttpResponse::Ok()
            .content_type("application/xml")
            .body(body)),
        Err(e) => Err(device_error(e)),
    }
}

async fn server_endpoint(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let identity = identify(&state, &req, &body)?;
    if let Some(too_many) = super::limits::throttle_identity(&req, &identity.fingerprint) {
        return Ok(too_many);
    }
    let report = report::decode(&body)
        .map_err(|e| refuse_plist(&identity, "malformed command report", e))?;
    match state.apple.report(&identity, report).await {
        Ok(Some(command)) => Ok(HttpResponse::Ok()
            .content_type("application/xml")
            .body(command)),
        // An empty 200 tells the device the queue is empty.
        Ok(None) => Ok(HttpResponse::new(StatusCode::OK)),
        Err(e) => Err(device_error(e)),
    }
}
