//! The Android Enterprise sign-up callback: Google sends the admin's browser here with
//! `enterpriseToken` added to the URL `mdm android connect` gave it.

use crate::http::error::ApiError;
use crate::http::AppState;
use crate::services::android::{SIGNUP_CALLBACK_PATH, SIGNUP_SECRET_PARAM};
use actix_web::{web, HttpResponse};
use std::collections::HashMap;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route(SIGNUP_CALLBACK_PATH, web::get().to(signup_callback));
}

async fn signup_callback(
    state: web::Data<AppState>,
    query: web::Query<HashMap<String, String>>,
) -> Result<HttpResponse, ApiError> {
    let secret = query
        .get(SIGNUP_SECRET_PARAM)
        .map(String::as_str)
        .unwrap_or("");
    let Some(enterprise_token) = query.get("enterpriseToken") else {
        return Err(ApiError::bad_request(
            "enterpriseToken is missing: this page is opened by Google at the end of the sign-up",
        ));
    };
    let enterprise = state
        .android
        .finish_signup(secret, enterprise_token)
        .await?;
    let name = enterprise.name.unwrap_or_default();
    // A browser reads this; plain text needs no escaping of Google's values.
    Ok(HttpResponse::Ok()
        .content_type("text/plain; charset=utf-8")
        .body(format!(
            "Android Enterprise {name} is set up. You can close this window; `mdm android status` shows it.\n"
        )))
}
