//! Authentication and rights as an extractor: a handler that takes [`Admin`] runs only
//! for a caller whose credentials are valid now (checked in the database on every
//! request, so a disabled admin or a revoked session or token is refused at once, on
//! every instance) and whose roles grant the right its route needs
//! (http/api/rights.rs; a route missing there is refused to everyone).
//!
//! Credentials: `Authorization: Bearer` with an API token, a session token from
//! `POST /api/v1/session`, or the `MDM_ADMIN_TOKEN` bootstrap; or the console's
//! session cookie, whose unsafe requests must carry its CSRF token in
//! `X-CSRF-Token`.
//!
//! Failed authentications are counted per address (http/limits.rs): past the limit
//! the address gets 429 with Retry-After before its token is even looked at, so
//! guessing tokens costs the guesser while the right token from elsewhere still works.
//! Such failures are a metric (metrics.rs), not events: anyone can send them. A
//! refusal for a missing right is an event (`auth.denied`): the caller is known.

use super::rights::{self, Need};
use crate::http::error::ApiError;
use crate::http::limits::Limits;
use crate::http::AppState;
use crate::metrics::{bump, METRICS};
use crate::services::admins::{AuthFailure, Caller, Credential};
use crate::services::tokens::AdminIdentity;
use actix_web::http::StatusCode;
use actix_web::{web, FromRequest, HttpMessage, HttpRequest, ResponseError};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// The console's session cookie.
pub const SESSION_COOKIE: &str = "mdm_session";
/// The header a cookie-authenticated unsafe request carries its CSRF token in.
pub const CSRF_HEADER: &str = "X-CSRF-Token";

/// The authenticated caller: who (for the audit trail) and with which rights.
pub struct Admin(pub AdminIdentity, pub Arc<Caller>);

impl Admin {
    pub fn caller(&self) -> &Caller {
        &self.1
    }

    /// For the command routes: the command's own right (see rights::command_right).
    pub fn require_command(&self, body: &serde_json::Value) -> Result<(), ApiError> {
        self.require(rights::command_right(body))
    }

    pub fn require(&self, right: &str) -> Result<(), ApiError> {
        if self.1.has(right) {
            Ok(())
        } else {
            Err(ApiError::new(
                StatusCode::FORBIDDEN,
                format!("this needs the right {right}, which your roles do not grant"),
            ))
        }
    }
}

/// The address a request is from: the TCP peer, or the last X-Forwarded-For entry
/// behind a proxy the server was told to trust (--trust-forwarded-for).
pub fn client_address(req: &HttpRequest) -> Option<String> {
    let trust = req
        .app_data::<web::Data<Limits>>()
        .is_some_and(|l| l.settings().trust_forwarded_for);
    if trust {
        if let Some(last) = req
            .headers()
            .get("X-Forwarded-For")
            .and_then(|h| h.to_str().ok())
            .and_then(|h| h.rsplit(',').next())
            .map(str::trim)
            .filter(|s| s.parse::<std::net::IpAddr>().is_ok())
        {
            return Some(last.to_owned());
        }
    }
    req.peer_addr().map(|a| a.ip().to_string())
}

fn refuse(e: ApiError) -> actix_web::Error {
    actix_web::error::InternalError::from_response(e.message.clone(), e.error_response()).into()
}

impl FromRequest for Admin {
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            // The admin API's middleware (http/api/session.rs) checked the request
            // before any extractor ran (a body is not parsed for a caller without the
            // right); a route it did not know is checked here, and refused.
            let checked = req.extensions().get::<Arc<Caller>>().cloned();
            let caller = match checked {
                Some(caller) => caller,
                None => gate(&req).await?,
            };
            Ok(Admin(caller.identity.clone(), caller))
        })
    }
}

/// Authenticates the request and checks its route's right: the caller, or the
/// refusal as the response to send.
pub async fn gate(req: &HttpRequest) -> Result<Arc<Caller>, actix_web::Error> {
    let limits = req.app_data::<web::Data<Limits>>().cloned();
    if let Some(refusal) = limits.as_ref().and_then(|l| l.admin_lockout(req)) {
        bump(&METRICS.admin_auth_throttled);
        return Err(actix_web::error::InternalError::from_response(
            "too many failed authentications",
            refusal,
        )
        .into());
    }
    let caller = match authenticate(req).await {
        Ok(caller) => caller,
        Err(Refused { error: e, counts }) => {
            // Only a credential presented and refused counts (a request without one
            // guesses nothing; an expired session is no guess); a database outage
            // (503) is not the caller's failure either.
            if counts && e.status == StatusCode::UNAUTHORIZED {
                bump(&METRICS.admin_auth_failures);
                if let Some(l) = &limits {
                    l.record_admin_failure(req);
                }
            }
            return Err(refuse(e));
        }
    };
    authorize(req, &caller).await.map_err(refuse)?;
    Ok(Arc::new(caller))
}

/// Checks the route's right for an authenticated caller.
async fn authorize(req: &HttpRequest, caller: &Caller) -> Result<(), ApiError> {
    let method = req.method().as_str().to_owned();
    let route = req.match_pattern().unwrap_or_default();
    let route = route
        .strip_prefix(rights::SCOPE)
        .unwrap_or(&route)
        .to_owned();
    let forbidden = |m: String| ApiError::new(StatusCode::FORBIDDEN, m);
    let Some(need) = rights::required(&method, &route) else {
        tracing::error!(%method, %route, "route without an entry in http/api/rights.rs: refused");
        return Err(forbidden(format!(
            "{method} {route} has no right defined (http/api/rights.rs): refused to everyone"
        )));
    };
    let right = match need {
        Need::Public | Need::Own => return Ok(()),
        Need::Right(r) => r,
        Need::Command => "commands.send",
    };
    if let Some(restriction) = caller.restriction {
        return Err(forbidden(restriction.message().into()));
    }
    let allowed = match need {
        Need::Command => rights::COMMAND_RIGHTS.iter().any(|r| caller.has(r)),
        _ => caller.has(right),
    };
    if allowed {
        return Ok(());
    }
    if let Some(state) = req.app_data::<web::Data<AppState>>() {
        state
            .admins
            .accounts
            .record_denied(caller, &method, &route, right)
            .await;
    }
    Err(forbidden(format!(
        "{method} {route} needs the right {right}, which your roles ({}) do not grant",
        if caller.roles.is_empty() {
            "none".to_owned()
        } else {
            caller.roles.join(", ")
        }
    )))
}

/// Why a request is not an admin's, and whether it counts as a failed guess.
struct Refused {
    error: ApiError,
    counts: bool,
}

fn without_credentials(message: &str) -> Refused {
    Refused {
        error: ApiError::unauthorized(message),
        counts: false,
    }
}

async fn authenticate(req: &HttpRequest) -> Result<Caller, Refused> {
    let state = req
        .app_data::<web::Data<AppState>>()
        .ok_or_else(|| without_credentials("server not ready"))?;
    let address = client_address(req);
    let cookie = req.cookie(SESSION_COOKIE);
    let credential = match req.headers().get("Authorization") {
        Some(header) => Credential::Bearer(
            header
                .to_str()
                .ok()
                .and_then(|h| h.strip_prefix("Bearer "))
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .ok_or_else(|| {
                    without_credentials("Authorization header must be 'Bearer <token>'")
                })?,
        ),
        None => match &cookie {
            Some(c) if !c.value().is_empty() => Credential::Cookie {
                token: c.value(),
                csrf: req.headers().get(CSRF_HEADER).and_then(|h| h.to_str().ok()),
                unsafe_method: !matches!(req.method().as_str(), "GET" | "HEAD" | "OPTIONS"),
            },
            _ => return Err(without_credentials(
                "missing Authorization: Bearer <token> header (or the console's session cookie)",
            )),
        },
    };
    state
        .admins
        .accounts
        .authenticate(credential, address.as_deref())
        .await
        .map_err(|f| match f {
            AuthFailure::Invalid(m) => Refused {
                error: ApiError::unauthorized(m),
                counts: true,
            },
            AuthFailure::Ended(m) => Refused {
                error: ApiError::unauthorized(m),
                counts: false,
            },
            AuthFailure::Csrf => Refused {
                error: ApiError::new(
                    StatusCode::FORBIDDEN,
                    format!(
                        "a cookie-authenticated {} needs the session's {CSRF_HEADER} header",
                        req.method()
                    ),
                ),
                counts: false,
            },
            AuthFailure::Service(e) => Refused {
                error: e.into(),
                counts: false,
            },
        })
}
