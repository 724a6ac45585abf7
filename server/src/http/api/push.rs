use super::Admin;
use crate::domain::event::{kinds, NewEvent};
use crate::http::error::ApiError;
use crate::http::AppState;
use crate::push::certificate::PushCertificate;
use crate::services::ServiceError;
use actix_web::{web, HttpResponse};
use base64::Engine;
use serde::Deserialize;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/push-certificate", web::get().to(show))
        .route("/push-certificate", web::put().to(upload))
        .route("/devices/{id}/push", web::post().to(push_device))
        .route("/devices/{id}/push-attempts", web::get().to(attempts));
}

async fn show(state: web::Data<AppState>, _admin: Admin) -> Result<HttpResponse, ApiError> {
    let info = state.push.info().ok_or_else(|| {
        ApiError::not_found(
            "no push certificate uploaded yet: PUT /api/v1/push-certificate (mdm push-cert upload)",
        )
    })?;
    Ok(HttpResponse::Ok().json(info))
}

/// Either PEM certificate and key, the PEM certificate alone (paired with the key
/// the server kept), or a PKCS#12 file (base64) and its password.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UploadRequest {
    certificate_pem: Option<String>,
    private_key_pem: Option<String>,
    pkcs12_base64: Option<String>,
    password: Option<String>,
}

async fn upload(
    state: web::Data<AppState>,
    admin: Admin,
    body: web::Json<UploadRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let now = chrono::Utc::now();
    // The certificate alone: its key is the one `mdm push-cert request` kept.
    if let (Some(cert), None, None) = (
        &body.certificate_pem,
        &body.private_key_pem,
        &body.pkcs12_base64,
    ) {
        let info = state
            .push
            .upload_for_kept_key(&admin.0, cert.as_bytes())
            .await?;
        return Ok(HttpResponse::Ok().json(info));
    }
    let cert = match (
        body.certificate_pem,
        body.private_key_pem,
        body.pkcs12_base64,
    ) {
        (Some(cert), Some(key), None) => {
            PushCertificate::from_pem(cert.as_bytes(), key.as_bytes(), now)
        }
        (None, None, Some(p12)) => {
            let der = base64::engine::general_purpose::STANDARD
                .decode(p12.split_whitespace().collect::<String>())
                .map_err(|_| ApiError::unprocessable("pkcs12_base64 is not valid base64"))?;
            PushCertificate::from_pkcs12(&der, body.password.as_deref().unwrap_or_default(), now)
        }
        _ => {
            return Err(ApiError::unprocessable(
                "give certificate_pem (with private_key_pem, or alone for the key the server kept), or pkcs12_base64 (and password)",
            ))
        }
    }
    .map_err(|e| ApiError::unprocessable(e.to_string()))?;
    let info = state.push.upload(&admin.0, cert).await?;
    Ok(HttpResponse::Ok().json(info))
}

async fn push_device(
    state: web::Data<AppState>,
    admin: Admin,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let device = super::devices::resolve(&state, &id).await?;
    let mut results = state
        .push
        .push_now(std::slice::from_ref(&device.id))
        .await?;
    let result = results
        .pop()
        .ok_or_else(|| ApiError::not_found(format!("device {id} not found")))?;
    state
        .store
        .record(
            NewEvent::new(
                kinds::ADMIN_DEVICE_PUSH,
                format!("push on demand: {}", result.outcome),
            )
            .device(&device.id)
            .actor(&admin.0.name),
        )
        .await
        .map_err(ServiceError::from)?;
    Ok(HttpResponse::Ok().json(result))
}

#[derive(Deserialize)]
struct Limit {
    limit: Option<u64>,
}

async fn attempts(
    state: web::Data<AppState>,
    _admin: Admin,
    id: web::Path<String>,
    query: web::Query<Limit>,
) -> Result<HttpResponse, ApiError> {
    let device = super::devices::resolve(&state, &id).await?;
    let rows = state
        .store
        .push_attempts(&device.id, query.limit.unwrap_or(100))
        .await
        .map_err(ServiceError::from)?;
    let items: Vec<_> = rows
        .into_iter()
        .map(|a| {
            serde_json::json!({
                "attempted_at": a.attempted_at, "attempt": a.attempt, "status": a.status,
                "reason": a.reason, "apns_id": a.apns_id,
            })
        })
        .collect();
    Ok(HttpResponse::Ok().json(serde_json::json!({ "items": items })))
}
