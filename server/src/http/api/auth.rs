//! Bearer-token authentication as an extractor: a handler that takes [`Admin`] runs
//! only for a valid token, and knows who is acting (for the audit trail).
//!
//! Failed authentications are counted per address (http/limits.rs): past the limit
//! the address gets 429 with Retry-After before its token is even looked at, so
//! guessing tokens costs the guesser while the right token from elsewhere still works.
//! Failures are a metric (metrics.rs), not events: anyone can send them.

use crate::http::error::ApiError;
use crate::http::limits::Limits;
use crate::http::AppState;
use crate::metrics::{bump, METRICS};
use crate::services::tokens::AdminIdentity;
use crate::services::ServiceError;
use actix_web::http::StatusCode;
use actix_web::{web, FromRequest, HttpRequest, ResponseError};
use std::future::Future;
use std::pin::Pin;

pub struct Admin(pub AdminIdentity);

impl FromRequest for Admin {
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let limits = req.app_data::<web::Data<Limits>>().cloned();
            if let Some(refusal) = limits.as_ref().and_then(|l| l.admin_lockout(&req)) {
                bump(&METRICS.admin_auth_throttled);
                return Err(actix_web::error::InternalError::from_response(
                    "too many failed authentications",
                    refusal,
                )
                .into());
            }
            match authenticate(&req).await {
                Ok(identity) => Ok(Admin(identity)),
                Err(Refused {
                    error: e,
                    token_tried,
                }) => {
                    // Only a token presented and refused counts (a request without one
                    // guesses nothing); a database outage (503) is not the caller's
                    // failure either.
                    if token_tried && e.status == StatusCode::UNAUTHORIZED {
                        bump(&METRICS.admin_auth_failures);
                        if let Some(l) = &limits {
                            l.record_admin_failure(&req);
                        }
                    }
                    Err(actix_web::error::InternalError::from_response(
                        e.message.clone(),
                        e.error_response(),
                    )
                    .into())
                }
            }
        })
    }
}

/// Why a request is not an admin's, and whether it tried a token.
struct Refused {
    error: ApiError,
    token_tried: bool,
}

fn without_token(message: &str) -> Refused {
    Refused {
        error: ApiError::unauthorized(message),
        token_tried: false,
    }
}

async fn authenticate(req: &HttpRequest) -> Result<AdminIdentity, Refused> {
    let state = req
        .app_data::<web::Data<AppState>>()
        .ok_or_else(|| without_token("server not ready"))?;
    let header = req
        .headers()
        .get("Authorization")
        .ok_or_else(|| without_token("missing Authorization: Bearer <token> header"))?;
    let token = header
        .to_str()
        .ok()
        .and_then(|h| h.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| without_token("Authorization header must be 'Bearer <token>'"))?;
    state
        .tokens
        .authenticate(token)
        .await
        .map_err(|e: ServiceError| Refused {
            error: e.into(),
            token_tried: true,
        })
}
