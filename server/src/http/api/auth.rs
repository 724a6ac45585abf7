//! Bearer-token authentication as an extractor: a handler that takes [`Admin`] runs
//! only for a valid token, and knows who is acting (for the audit trail).

use crate::http::error::ApiError;
use crate::http::AppState;
use crate::services::tokens::AdminIdentity;
use actix_web::{web, FromRequest, HttpRequest};
use std::future::Future;
use std::pin::Pin;

pub struct Admin(pub AdminIdentity);

impl FromRequest for Admin {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let header = req
            .headers()
            .get("Authorization")
            .and_then(|h| h.to_str().ok())
            .map(str::to_owned);
        Box::pin(async move {
            let state = state.ok_or_else(|| ApiError::unauthorized("server not ready"))?;
            let header = header.ok_or_else(|| {
                ApiError::unauthorized("missing Authorization: Bearer <token> header")
            })?;
            let token = header
                .strip_prefix("Bearer ")
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .ok_or_else(|| {
                    ApiError::unauthorized("Authorization header must be 'Bearer <token>'")
                })?;
            Ok(Admin(state.tokens.authenticate(token).await?))
        })
    }
}
