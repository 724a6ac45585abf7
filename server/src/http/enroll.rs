//! Device-facing enrollment endpoints: the enrollment URL a QR code points at, and
//! the SCEP server. What a person holding the device sees on refusal is plain text.

use super::error::ApiError;
use super::AppState;
use crate::services::ServiceError;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use base64::Engine;
use serde::Deserialize;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/enroll/{token}", web::get().to(enroll))
        .route("/scep", web::get().to(scep_get))
        .route("/scep", web::post().to(scep_post));
}

/// The enrollment URL: an Apple enrollment's signed profile. An Android enrollment's
/// provisioning data (with its Wi-Fi password) is never given here, only to admins.
async fn enroll(state: web::Data<AppState>, token: web::Path<String>) -> HttpResponse {
    match state.enrollments.open_url(&token).await {
        Ok(signed) => HttpResponse::Ok()
            .content_type("application/x-apple-aspen-config")
            .insert_header((
                "Content-Disposition",
                "attachment; filename=\"enroll.mobileconfig\"",
            ))
            .body(signed),
        Err(e) => refusal(e),
    }
}

/// Refusals go to a browser or a device's setup screen: plain text, not JSON.
fn refusal(e: ServiceError) -> HttpResponse {
    if let Some(secs) = e.retry_after() {
        // The database is unavailable: 503 with Retry-After, as everywhere else.
        let status = StatusCode::SERVICE_UNAVAILABLE;
        return HttpResponse::build(status)
            .content_type("text/plain; charset=utf-8")
            .insert_header(("Retry-After", secs.to_string()))
            .body(format!("{e}\n"));
    }
    let (status, message) = match e {
        ServiceError::NotFound(m) => (StatusCode::NOT_FOUND, m),
        ServiceError::Forbidden(m) => (StatusCode::FORBIDDEN, m),
        ServiceError::Gone(m) => (StatusCode::GONE, m),
        ServiceError::Unavailable(m) | ServiceError::NotConfigured(m) => {
            (StatusCode::SERVICE_UNAVAILABLE, m)
        }
        ServiceError::BadRequest(m)
        | ServiceError::Unprocessable(m)
        | ServiceError::Conflict(m) => (StatusCode::BAD_REQUEST, m),
        other => {
            tracing::error!(error = %other, "enrollment failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "The server could not prepare the enrollment. Please try again later.".to_owned(),
            )
        }
    };
    let response = HttpResponse::build(status)
        .content_type("text/plain; charset=utf-8")
        .body(format!("{message}\n"));
    // No enrollment has this token: a failed guess, counted against the address.
    if status == StatusCode::NOT_FOUND {
        super::limits::failed_guess(response)
    } else {
        response
    }
}

#[derive(Deserialize)]
struct ScepQuery {
    operation: String,
    message: Option<String>,
}

/// A SCEP client is told 400 for a message it got wrong, as SCEP servers answer
/// (422 is the admin API's word for it).
fn scep_refusal(e: ServiceError) -> ApiError {
    match e {
        ServiceError::BadRequest(m) | ServiceError::Unprocessable(m) => ApiError::bad_request(m),
        other => other.into(),
    }
}

fn reply(r: crate::services::scep::ScepReply) -> HttpResponse {
    let response = HttpResponse::Ok().content_type(r.content_type).body(r.body);
    // No enrollment issued this challenge: a failed guess, counted against the address.
    if r.wrong_challenge {
        super::limits::failed_guess(response)
    } else {
        response
    }
}

async fn scep_get(
    state: web::Data<AppState>,
    query: web::Query<ScepQuery>,
) -> Result<HttpResponse, ApiError> {
    match query.operation.as_str() {
        "GetCACaps" => Ok(reply(state.scep.ca_caps())),
        "GetCACert" => Ok(reply(state.scep.ca_cert())),
        "PKIOperation" => {
            let message = query.message.as_deref().ok_or_else(|| {
                ApiError::bad_request("PKIOperation by GET needs a message parameter")
            })?;
            // Clients send standard base64; some leave '+' unescaped, which a query
            // decoder turns into a space.
            let cleaned: String = message
                .chars()
                .map(|c| if c == ' ' { '+' } else { c })
                .filter(|c| !c.is_whitespace())
                .collect();
            let der = base64::engine::general_purpose::STANDARD
                .decode(cleaned.as_bytes())
                .map_err(|_| ApiError::bad_request("PKIOperation message is not base64"))?;
            Ok(reply(
                state.scep.pki_operation(&der).await.map_err(scep_refusal)?,
            ))
        }
        other => Err(ApiError::bad_request(format!(
            "unknown SCEP operation {other:?}"
        ))),
    }
}

async fn scep_post(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let query = web::Query::<ScepQuery>::from_query(req.query_string())
        .map_err(|_| ApiError::bad_request("SCEP needs ?operation=PKIOperation"))?;
    if query.operation != "PKIOperation" {
        return Err(ApiError::bad_request(format!(
            "{} is not a POST operation",
            query.operation
        )));
    }
    Ok(reply(
        state
            .scep
            .pki_operation(&body)
            .await
            .map_err(scep_refusal)?,
    ))
}
