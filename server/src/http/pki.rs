//! Public PKI endpoints: the device CA's CRL, for RADIUS servers that accept device
//! certificates for EAP-TLS Wi-Fi (FreeRADIUS, NPS) and anyone checking one.

use super::error::ApiError;
use super::AppState;
use actix_web::{web, HttpResponse};

pub const DEVICE_CA_CRL_PATH: &str = "/pki/device-ca.crl";

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route(DEVICE_CA_CRL_PATH, web::get().to(device_ca_crl));
}

/// The CRL in DER (RFC 5280), as `application/pkix-crl` (RFC 2585). Rebuilt when a
/// revocation happened since the stored one, or before it goes stale.
async fn device_ca_crl(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let der = state.revocation.device_ca_crl().await?;
    Ok(HttpResponse::Ok()
        .content_type("application/pkix-crl")
        // Relying parties may cache it for a while; a revocation shows within this.
        .insert_header(("Cache-Control", "public, max-age=300"))
        .body(der))
}
