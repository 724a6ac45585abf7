//! `/session`: login (password, then TOTP; or both at once), who am I, logout, one's
//! own password and second factor; `/sessions` (list, revoke) and `/tokens` (one's
//! own API tokens, or a service account's). Also the middleware that tells the event
//! log which address an admin request came from.

use super::auth::{client_address, Admin, SESSION_COOKIE};
use crate::http::error::ApiError;
use crate::http::limits::Limits;
use crate::http::AppState;
use crate::services::admins::{LoginError, LoginRequest, NewToken};
use actix_web::body::MessageBody;
use actix_web::cookie::{Cookie, SameSite};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::middleware::Next;
use actix_web::{web, HttpMessage, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Value};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/session", web::post().to(login))
        .route("/session", web::get().to(whoami))
        .route("/session", web::delete().to(logout))
        .route("/session/password", web::post().to(change_password))
        .route("/session/totp", web::post().to(totp_begin))
        .route("/session/totp/confirm", web::post().to(totp_confirm))
        .route("/sessions", web::get().to(sessions))
        .route("/sessions/{id}", web::delete().to(revoke_session))
        .route("/tokens", web::get().to(tokens))
        .route("/tokens", web::post().to(create_token))
        .route("/tokens/{id}", web::delete().to(revoke_token));
}

/// Every admin API request: authenticated and its right checked (http/api/auth.rs)
/// before any extractor reads its body, then run with its address known to the event
/// log (services/admins/context.rs). Public routes pass; routes missing from the
/// rights table are refused by the `Admin` extractor.
pub async fn request_context(
    mut req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    use crate::services::admins::context::with_address;
    let address = client_address(req.request());
    let need = req
        .match_pattern()
        .and_then(|pattern| super::rights::required(req.method().as_str(), &pattern));
    if need.is_some_and(|n| n != super::rights::Need::Public) {
        let caller = with_address(address.clone(), super::auth::gate(req.request())).await?;
        req.extensions_mut().insert(caller);
        // Checked against the document only once the caller may call it: the
        // request of one who may not learns nothing about its shape.
        if let Err(e) = check_contract(&mut req).await {
            return Err(actix_web::error::InternalError::from_response(
                e.message.clone(),
                actix_web::ResponseError::error_response(&e),
            )
            .into());
        }
    }
    with_address(address, next.call(req)).await
}

/// The request's parameters and JSON body against its operation in the OpenAPI
/// document (http/api/contract.rs). The body is read here (within the admin API's
/// size limit) and handed on to the handler unchanged.
async fn check_contract(req: &mut ServiceRequest) -> Result<(), ApiError> {
    use futures::StreamExt;
    let method = req.method().as_str().to_owned();
    let Some(route) = req.match_pattern() else {
        return Ok(());
    };
    super::contract::check_parameters(&method, &route, req.path(), req.query_string())?;
    // Only a JSON body is the document's to check (a CSV upload is the handler's).
    let json = req
        .headers()
        .get(actix_web::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|t| {
            t.trim_start()
                .to_ascii_lowercase()
                .starts_with("application/json")
        });
    if !json || !super::contract::takes_body(&method, &route) {
        return Ok(());
    }
    let limit = req
        .app_data::<crate::http::BodyLimits>()
        .map(|l| l.api)
        .unwrap_or(256 * 1024);
    let mut payload = req.take_payload();
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| ApiError::bad_request(format!("reading the body: {e}")))?;
        if body.len() + chunk.len() > limit {
            return Err(ApiError::payload_too_large(format!(
                "the body is larger than {limit} bytes"
            )));
        }
        body.extend_from_slice(&chunk);
    }
    let body = body.freeze();
    let body = match super::contract::check_body(&method, &route, &body)? {
        Some(rewritten) => web::Bytes::from(rewritten),
        None => body,
    };
    req.set_payload(actix_web::dev::Payload::from(body));
    Ok(())
}

fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let body = if body.iter().all(u8::is_ascii_whitespace) {
        &b"{}"[..]
    } else {
        body
    };
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))
}

fn session_cookie(value: String, max_age_secs: i64) -> Cookie<'static> {
    Cookie::build(SESSION_COOKIE, value)
        .path("/api/v1")
        .secure(true)
        .http_only(true)
        .same_site(SameSite::Strict)
        .max_age(actix_web::cookie::time::Duration::seconds(max_age_secs))
        .finish()
}

/// A login is refused with 401 whatever is wrong with it (a body without credentials
/// included), so that it tells a guesser nothing and counts like a wrong token.
async fn login(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let limits = req.app_data::<web::Data<Limits>>().cloned();
    if let Some(refusal) = limits.as_ref().and_then(|l| l.admin_lockout(&req)) {
        return Ok(refusal);
    }
    let request: LoginRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(_) if body.iter().all(u8::is_ascii_whitespace) => LoginRequest::default(),
        Err(e) => {
            return Err(ApiError::unauthorized(format!(
                "a login is {{\"username\", \"password\"[, \"totp\"]}} or {{\"ticket\", \"totp\"}}: {e}"
            )))
        }
    };
    let address = client_address(&req);
    let user_agent = req
        .headers()
        .get("User-Agent")
        .and_then(|h| h.to_str().ok())
        .map(str::to_owned);
    match state
        .admins
        .accounts
        .login(request, address.as_deref(), user_agent.as_deref())
        .await
    {
        Ok(outcome) => {
            let mut response = HttpResponse::Ok();
            if let Some(token) = &outcome.cookie_token {
                response.cookie(session_cookie(
                    token.clone(),
                    state
                        .admins
                        .accounts
                        .settings()
                        .session_lifetime
                        .num_seconds(),
                ));
            }
            Ok(response.json(&outcome))
        }
        Err(LoginError::Refused(m)) => {
            if let Some(l) = &limits {
                l.record_admin_failure(&req);
            }
            crate::metrics::bump(&crate::metrics::METRICS.admin_auth_failures);
            Err(ApiError::unauthorized(m))
        }
        Err(LoginError::Locked(secs)) => Err(ApiError {
            retry_after: Some(secs.clamp(1, u32::MAX as i64) as u32),
            ..ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                format!("the account is locked after failed logins; try again in {secs} s"),
            )
        }),
        Err(LoginError::Service(e)) => Err(e.into()),
    }
}

async fn whoami(state: web::Data<AppState>, admin: Admin) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(state.admins.accounts.whoami(admin.caller()).await?))
}

async fn logout(state: web::Data<AppState>, admin: Admin) -> Result<HttpResponse, ApiError> {
    state.admins.accounts.logout(admin.caller()).await?;
    let mut gone = session_cookie(String::new(), 0);
    gone.make_removal();
    Ok(HttpResponse::Ok()
        .cookie(gone)
        .json(json!({ "logged_out": true })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PasswordChange {
    current_password: String,
    new_password: String,
}

async fn change_password(
    state: web::Data<AppState>,
    admin: Admin,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let body: PasswordChange = parse(&body)?;
    state
        .admins
        .accounts
        .change_own_password(admin.caller(), &body.current_password, body.new_password)
        .await?;
    Ok(HttpResponse::Ok().json(json!({ "changed": true })))
}

async fn totp_begin(state: web::Data<AppState>, admin: Admin) -> Result<HttpResponse, ApiError> {
    let enrolment = state.admins.accounts.totp_begin(admin.caller()).await?;
    Ok(HttpResponse::Ok().json(enrolment))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TotpCode {
    code: String,
}

async fn totp_confirm(
    state: web::Data<AppState>,
    admin: Admin,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let body: TotpCode = parse(&body)?;
    let codes = state
        .admins
        .accounts
        .totp_confirm(admin.caller(), &body.code)
        .await?;
    Ok(HttpResponse::Ok().json(json!({
        "enabled": true,
        "recovery_codes": codes,
        "note": "each recovery code works once; they are shown only now",
    })))
}

#[derive(Deserialize)]
struct SessionsQuery {
    /// An admin's name, or "all".
    admin: Option<String>,
}

async fn sessions(
    state: web::Data<AppState>,
    admin: Admin,
    query: web::Query<SessionsQuery>,
) -> Result<HttpResponse, ApiError> {
    let items = state
        .admins
        .accounts
        .sessions(admin.caller(), query.admin.as_deref())
        .await?;
    Ok(HttpResponse::Ok().json(json!({ "items": items })))
}

async fn revoke_session(
    state: web::Data<AppState>,
    admin: Admin,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    state
        .admins
        .accounts
        .revoke_session(admin.caller(), &id)
        .await?;
    Ok(HttpResponse::Ok().json(json!({ "revoked": id.into_inner() })))
}

#[derive(Deserialize)]
struct TokensQuery {
    all: Option<bool>,
}

async fn tokens(
    state: web::Data<AppState>,
    admin: Admin,
    query: web::Query<TokensQuery>,
) -> Result<HttpResponse, ApiError> {
    let items = state
        .admins
        .accounts
        .tokens(admin.caller(), query.all.unwrap_or(false))
        .await?;
    Ok(HttpResponse::Ok().json(json!({ "items": items })))
}

async fn create_token(
    state: web::Data<AppState>,
    admin: Admin,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let body: NewToken = parse(&body)?;
    let (row, secret) = state
        .admins
        .accounts
        .create_token(admin.caller(), body)
        .await?;
    let mut view = serde_json::to_value(&row).unwrap_or(Value::Null);
    view["token"] = Value::String(secret);
    view["note"] = "the token is shown only now; it is stored as a hash".into();
    Ok(HttpResponse::Created().json(view))
}

async fn revoke_token(
    state: web::Data<AppState>,
    admin: Admin,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    state
        .admins
        .accounts
        .revoke_token(admin.caller(), &id)
        .await?;
    Ok(HttpResponse::Ok().json(json!({ "revoked": id.into_inner() })))
}

pub fn describe(doc: &mut Value) {
    let errors = |mut ok: Value| {
        for code in ["400", "401", "404", "409", "429", "503"] {
            ok[code] = json!({ "$ref": "#/components/responses/Error" });
        }
        ok
    };
    let obj = |what: &str| json!({ "200": { "description": what, "content": { "application/json": { "schema": { "type": "object" } } } } });
    let body = |props: Value, required: &[&str]| {
        json!({ "required": true, "content": { "application/json": { "schema": {
        "type": "object", "additionalProperties": false, "required": required, "properties": props } } } })
    };
    let id =
        json!({ "name": "id", "in": "path", "required": true, "schema": { "type": "string" } });
    let paths = [
        (
            "/session",
            json!({
                "post": {
                    "summary": "Log in: {username, password} (then, when the account has a second factor, {ticket, totp} with the ticket the first answer gave), or {username, password, totp} at once; recovery_code instead of totp. cookie: true for the console (Secure, HttpOnly, SameSite=Strict cookie plus a csrf_token for the X-CSRF-Token header of unsafe requests). Wrong credentials: 401, the same for unknown accounts; after 5 failures in a row the account is locked with back-off (429 with Retry-After)",
                    "security": [],
                    "requestBody": body(json!({
                        "username": { "type": "string" }, "password": { "type": "string", "format": "password" },
                        "totp": { "type": "string", "pattern": "^[0-9]{6}$" }, "recovery_code": { "type": "string" },
                        "ticket": { "type": "string" }, "cookie": { "type": "boolean" } }), &[]),
                    "responses": errors(json!({ "200": { "description": "A session, or a ticket waiting for the second factor", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Login" } } } } }))
                },
                "get": { "summary": "Who the caller is: roles, rights, what it must do first (restriction), its session", "responses": errors(obj("The caller")) },
                "delete": { "summary": "Log out: the session is revoked", "responses": errors(obj("Logged out")) }
            }),
        ),
        (
            "/session/password",
            json!({ "post": {
            "summary": "Change one's own password (at least 14 characters, not the account name nor containing it, none of the last 5)",
            "requestBody": body(json!({ "current_password": { "type": "string", "format": "password" }, "new_password": { "type": "string", "format": "password" } }), &["current_password", "new_password"]),
            "responses": errors(obj("Changed")) } }),
        ),
        (
            "/session/totp",
            json!({ "post": {
            "summary": "Begin TOTP enrolment: the otpauth:// URI, its secret (base32) and a QR code (SVG) for an authenticator app; active once confirmed",
            "responses": errors(obj("The enrolment")) } }),
        ),
        (
            "/session/totp/confirm",
            json!({ "post": {
            "summary": "Confirm the enrolment with a first code; answers 10 single-use recovery codes, shown this once",
            "requestBody": body(json!({ "code": { "type": "string", "pattern": "^[0-9]{6}$" } }), &["code"]),
            "responses": errors(obj("Enabled")) } }),
        ),
        (
            "/sessions",
            json!({ "get": {
            "summary": "Active sessions: one's own, or (admins.read) ?admin=<name> or ?admin=all",
            "parameters": [{ "name": "admin", "in": "query", "schema": { "type": "string" } }],
            "responses": errors(obj("Sessions")) } }),
        ),
        (
            "/sessions/{id}",
            json!({ "delete": {
            "summary": "Revoke a session: one's own, or anyone's with admins.manage",
            "parameters": [id.clone()], "responses": errors(obj("Revoked")) } }),
        ),
        (
            "/tokens",
            json!({
                "get": { "summary": "API tokens (never their secrets): one's own, or all with admins.read (?all=true)",
                         "parameters": [{ "name": "all", "in": "query", "schema": { "type": "boolean" } }],
                         "responses": errors(obj("Tokens")) },
                "post": { "summary": "Create an API token with a role (one whose rights the caller holds) and an expiry (default 90 days, at most 366): one's own from a login session, or a service account's (service_account: true, admins.manage). The secret is in this answer only",
                          "requestBody": body(json!({ "name": { "type": "string" }, "role": { "type": "string" },
                              "expires_in_days": { "type": "integer", "minimum": 1, "maximum": 366 }, "service_account": { "type": "boolean" } }), &["name", "role"]),
                          "responses": errors(json!({ "201": { "description": "Created, with token" } })) }
            }),
        ),
        (
            "/tokens/{id}",
            json!({ "delete": {
            "summary": "Revoke an API token: one's own, or any with admins.manage",
            "parameters": [id], "responses": errors(obj("Revoked")) } }),
        ),
    ];
    if let Some(map) = doc["paths"].as_object_mut() {
        for (path, item) in paths {
            map.insert(path.to_owned(), item);
        }
    }
    if let Some(map) = doc["components"]["schemas"].as_object_mut() {
        map.insert("Login".into(), json!({ "type": "object", "properties": {
            "mfa_required": { "type": "boolean" }, "ticket": { "type": "string" },
            "token": { "type": "string", "description": "bearer sessions: the session token (mdms_...)" },
            "csrf_token": { "type": "string" }, "session": { "type": "object" },
            "must_change_password": { "type": "boolean" }, "mfa_enrolment_required": { "type": "boolean" } } }));
    }
}
