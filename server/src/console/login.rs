//! Logging in and out, and what an admin does for itself: the password and TOTP
//! login (the code on a second page, the ticket in a short-lived cookie), the
//! first-login password change, the second factor's enrolment by QR code, the
//! language. All through the admin service the API's /session uses, with the same
//! per-address lockout.

use super::i18n::{Lang, Tr};
use super::page::{notice, DoneQuery, Page};
use super::session::{
    self, anonymous_language, check_origin, cookie, form_admin, own_admin, removal, ConsoleAdmin,
    Form, CSRF_COOKIE, LANG_COOKIE, LOGIN_CSRF_COOKIE, TICKET_COOKIE,
};
use super::{html, redirect, service, ConsoleError};
use crate::http::api::auth::{client_address, SESSION_COOKIE};
use crate::http::limits::Limits;
use crate::http::AppState;
use crate::services::admins::{LoginError, LoginOutcome, LoginRequest};
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use serde::Deserialize;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/login", web::get().to(login_page))
        .route("/login", web::post().to(login))
        .route("/login/totp", web::get().to(totp_page))
        .route("/login/totp", web::post().to(totp_login))
        .route("/password", web::get().to(password_page))
        .route("/password", web::post().to(change_password))
        .route("/totp", web::get().to(enrol_page))
        .route("/totp", web::post().to(enrol_confirm))
        .route("/logout", web::post().to(logout))
        .route("/language", web::post().to(language));
}

#[derive(Template)]
#[template(path = "console/login.html")]
struct LoginPage {
    p: Page,
    next: String,
    login_csrf: String,
    username: String,
}

#[derive(Template)]
#[template(path = "console/login_totp.html")]
struct TotpPage {
    p: Page,
    next: String,
    login_csrf: String,
}

#[derive(Deserialize)]
struct LoginQuery {
    next: Option<String>,
    expired: Option<String>,
    error: Option<String>,
}

/// Only a console path is a place to return to after login (never another site).
fn safe_next(next: Option<&str>) -> String {
    next.filter(|n| {
        n.starts_with("/console/")
            && !n.starts_with("/console//")
            && !n.contains('\\')
            && !n.starts_with("/console/login")
    })
    .unwrap_or("/console/dashboard")
    .to_owned()
}

fn random_token() -> String {
    let mut bytes = [0u8; 24];
    openssl::rand::rand_bytes(&mut bytes).expect("the OS random generator");
    hex::encode(bytes)
}

async fn login_page(req: HttpRequest, query: web::Query<LoginQuery>) -> HttpResponse {
    let tr = Tr::new(anonymous_language(&req));
    let error = match query.error.as_deref() {
        Some("refused") => Some(tr.t("login-refused")),
        Some("locked") => Some(tr.t("login-locked")),
        _ if query.expired.is_some() => Some(tr.t("login-expired")),
        _ => None,
    };
    let login_csrf = random_token();
    let page = LoginPage {
        p: Page::anonymous(tr, tr.t("login-title"), "/console/login").with_error(error),
        next: safe_next(query.next.as_deref()),
        login_csrf: login_csrf.clone(),
        username: String::new(),
    };
    match html(&page) {
        Ok(mut res) => {
            let _ = res.add_cookie(&cookie(
                LOGIN_CSRF_COOKIE,
                login_csrf,
                "/console/login",
                3600,
            ));
            res
        }
        Err(e) => actix_web::ResponseError::error_response(&e),
    }
}

/// The login form's own token (double submit): a page on another site cannot read
/// the cookie, so it cannot log the browser into an account of its choosing.
fn check_login_csrf(req: &HttpRequest, form: &Form) -> Result<(), ConsoleError> {
    check_origin(req)?;
    let expected = req.cookie(LOGIN_CSRF_COOKIE).map(|c| c.value().to_owned());
    let given = form.get("_login_csrf");
    match expected {
        // memcmp::eq compares equal lengths only.
        Some(e)
            if !e.is_empty()
                && e.len() == given.len()
                && openssl::memcmp::eq(e.as_bytes(), given.as_bytes()) =>
        {
            Ok(())
        }
        _ => Err(ConsoleError::Csrf(anonymous_language(req))),
    }
}

fn lockout(req: &HttpRequest) -> Option<HttpResponse> {
    req.app_data::<web::Data<Limits>>()
        .and_then(|l| l.admin_lockout(req))
        .map(|_| redirect("/console/login?error=locked"))
}

fn record_failure(req: &HttpRequest) {
    if let Some(l) = req.app_data::<web::Data<Limits>>() {
        l.record_admin_failure(req);
    }
    crate::metrics::bump(&crate::metrics::METRICS.admin_auth_failures);
}

async fn login(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, ConsoleError> {
    let form = Form::parse(&body, anonymous_language(&req))?;
    check_login_csrf(&req, &form)?;
    if let Some(refusal) = lockout(&req) {
        return Ok(refusal);
    }
    let request = LoginRequest {
        username: form.opt("username"),
        password: Some(form.get("password").to_owned()),
        cookie: true,
        ..Default::default()
    };
    let next = safe_next(Some(form.get("next")));
    finish(&state, &req, request, next).await
}

async fn totp_page(req: HttpRequest, query: web::Query<LoginQuery>) -> HttpResponse {
    let tr = Tr::new(anonymous_language(&req));
    if req.cookie(TICKET_COOKIE).is_none() {
        return redirect("/console/login?expired=1");
    }
    let error = (query.error.as_deref() == Some("refused")).then(|| tr.t("totp-refused"));
    let login_csrf = req
        .cookie(LOGIN_CSRF_COOKIE)
        .map(|c| c.value().to_owned())
        .unwrap_or_default();
    let page = TotpPage {
        p: Page::anonymous(tr, tr.t("totp-title"), "/console/login/totp").with_error(error),
        next: safe_next(query.next.as_deref()),
        login_csrf,
    };
    html(&page).unwrap_or_else(|e| actix_web::ResponseError::error_response(&e))
}

async fn totp_login(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, ConsoleError> {
    let form = Form::parse(&body, anonymous_language(&req))?;
    check_login_csrf(&req, &form)?;
    if let Some(refusal) = lockout(&req) {
        return Ok(refusal);
    }
    let Some(ticket) = req.cookie(TICKET_COOKIE).map(|c| c.value().to_owned()) else {
        return Ok(redirect("/console/login?expired=1"));
    };
    let code = form.get("code").trim().to_owned();
    // A recovery code is longer than a TOTP code and not all digits.
    let (totp, recovery_code) = if code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit()) {
        (Some(code), None)
    } else {
        (None, Some(code))
    };
    let request = LoginRequest {
        ticket: Some(ticket),
        totp,
        recovery_code,
        cookie: true,
        ..Default::default()
    };
    let next = safe_next(Some(form.get("next")));
    finish(&state, &req, request, next).await
}

/// Runs a login step and answers with the next page: the code page, the password
/// change, the second-factor enrolment, or where the admin was going.
async fn finish(
    state: &AppState,
    req: &HttpRequest,
    request: LoginRequest,
    next: String,
) -> Result<HttpResponse, ConsoleError> {
    let tr = Tr::new(anonymous_language(req));
    let second_step = request.ticket.is_some();
    let address = client_address(req);
    let user_agent = req
        .headers()
        .get("User-Agent")
        .and_then(|h| h.to_str().ok())
        .map(str::to_owned);
    let outcome: LoginOutcome = match state
        .admins
        .accounts
        .login(request, address.as_deref(), user_agent.as_deref())
        .await
    {
        Ok(o) => o,
        Err(LoginError::Refused(_)) => {
            record_failure(req);
            let to = if second_step {
                format!("/console/login/totp?error=refused&next={}", encode(&next))
            } else {
                format!("/console/login?error=refused&next={}", encode(&next))
            };
            return Ok(redirect(&to));
        }
        Err(LoginError::Locked(_)) => return Ok(redirect("/console/login?error=locked")),
        Err(LoginError::Service(e)) => return Err(ConsoleError::from_service(tr, e)),
    };
    if outcome.mfa_required {
        let ticket = outcome.ticket.unwrap_or_default();
        let wait = state.admins.accounts.settings().mfa_wait.num_seconds();
        return Ok(HttpResponse::SeeOther()
            .insert_header((
                "Location",
                format!("/console/login/totp?next={}", encode(&next)),
            ))
            .cookie(cookie(TICKET_COOKIE, ticket, "/console/login", wait))
            .finish());
    }
    let (Some(token), Some(csrf)) = (outcome.cookie_token, outcome.csrf_token) else {
        return Err(ConsoleError::Internal(
            "a console login got no session cookie".into(),
        ));
    };
    let lifetime = state
        .admins
        .accounts
        .settings()
        .session_lifetime
        .num_seconds();
    let to = if outcome.must_change_password {
        "/console/password".to_owned()
    } else if outcome.mfa_enrolment_required {
        "/console/totp".to_owned()
    } else {
        next
    };
    Ok(HttpResponse::SeeOther()
        .insert_header(("Location", to))
        .cookie(cookie(SESSION_COOKIE, token, "/", lifetime))
        .cookie(cookie(CSRF_COOKIE, csrf, "/console", lifetime))
        .cookie(removal(TICKET_COOKIE, "/console/login"))
        .cookie(removal(LOGIN_CSRF_COOKIE, "/console/login"))
        .finish())
}

fn encode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

pub fn idle_secs(state: &AppState) -> i64 {
    state.admins.accounts.settings().idle_timeout.num_seconds()
}

#[derive(Template)]
#[template(path = "console/password.html")]
struct PasswordPage {
    p: Page,
    forced: bool,
    min_length: usize,
    rule: String,
}

async fn password_page(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: web::Query<DoneQuery>,
) -> Result<HttpResponse, ConsoleError> {
    let admin = own_admin(&req).await?;
    render_password(&state, &admin, None, query.done.as_deref())
}

fn render_password(
    state: &AppState,
    admin: &ConsoleAdmin,
    error: Option<String>,
    done: Option<&str>,
) -> Result<HttpResponse, ConsoleError> {
    let tr = admin.tr;
    let page = PasswordPage {
        p: Page::new(
            admin,
            tr.t("password-title"),
            "/console/password",
            idle_secs(state),
        )
        .with_error(error)
        .with_notice(notice(tr, done)),
        forced: admin.caller.restriction
            == Some(crate::services::admins::Restriction::PasswordChange),
        min_length: state.admins.accounts.settings().policy.min_chars,
        rule: tr.n(
            "password-rule",
            state.admins.accounts.settings().policy.min_chars as i64,
        ),
    };
    html(&page)
}

async fn change_password(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, ConsoleError> {
    let (admin, form) = form_admin(&req, &body, true).await?;
    let tr = admin.tr;
    let new = form.get("new_password");
    if new != form.get("confirm_password") {
        return render_password(&state, &admin, Some(tr.t("password-mismatch")), None);
    }
    match state
        .admins
        .accounts
        .change_own_password(&admin.caller, form.get("current_password"), new.to_owned())
        .await
    {
        Ok(()) => {
            // A critical role may still need its second factor.
            let again = own_admin(&req).await;
            let to = match again.map(|a| a.caller.restriction) {
                Ok(Some(crate::services::admins::Restriction::MfaEnrolment)) => "/console/totp",
                _ => "/console/dashboard?done=password-changed",
            };
            Ok(redirect(to))
        }
        Err(e) => {
            let e = ConsoleError::from_service(tr, e);
            render_password(&state, &admin, Some(e.to_string()), None)
        }
    }
}

#[derive(Template)]
#[template(path = "console/totp_enrol.html")]
struct EnrolPage {
    p: Page,
    qr_data_uri: String,
    secret: String,
    otpauth_uri: String,
}

#[derive(Template)]
#[template(path = "console/recovery_codes.html")]
struct RecoveryCodesPage {
    p: Page,
    codes: Vec<String>,
}

async fn enrol_page(
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, ConsoleError> {
    let admin = own_admin(&req).await?;
    render_enrol(&state, &admin, None).await
}

async fn render_enrol(
    state: &AppState,
    admin: &ConsoleAdmin,
    error: Option<String>,
) -> Result<HttpResponse, ConsoleError> {
    use base64::Engine;
    let tr = admin.tr;
    let enrolment = state
        .admins
        .accounts
        .totp_begin(&admin.caller)
        .await
        .map_err(service(tr))?;
    let page = EnrolPage {
        p: Page::new(
            admin,
            tr.t("enrol-title"),
            "/console/totp",
            idle_secs(state),
        )
        .with_error(error),
        qr_data_uri: format!(
            "data:image/svg+xml;base64,{}",
            base64::engine::general_purpose::STANDARD.encode(enrolment.qr_svg.as_bytes())
        ),
        secret: enrolment.secret,
        otpauth_uri: enrolment.otpauth_uri,
    };
    html(&page)
}

async fn enrol_confirm(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, ConsoleError> {
    let (admin, form) = form_admin(&req, &body, true).await?;
    let tr = admin.tr;
    match state
        .admins
        .accounts
        .totp_confirm(&admin.caller, form.get("code").trim())
        .await
    {
        Ok(codes) => {
            let page = RecoveryCodesPage {
                p: Page::new(
                    &admin,
                    tr.t("recovery-title"),
                    "/console/totp",
                    idle_secs(&state),
                )
                .with_notice(Some(tr.t("done-totp-enabled"))),
                codes,
            };
            html(&page)
        }
        // A wrong code: a new secret is begun, as the API does on a new POST.
        Err(e) => {
            let message = ConsoleError::from_service(tr, e).to_string();
            render_enrol(&state, &admin, Some(message)).await
        }
    }
}

async fn logout(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, ConsoleError> {
    let gone = HttpResponse::SeeOther()
        .insert_header(("Location", "/console/login"))
        .cookie(removal(SESSION_COOKIE, "/"))
        .cookie(removal(CSRF_COOKIE, "/console"))
        .finish();
    match form_admin(&req, &body, true).await {
        Ok((admin, _)) => {
            state
                .admins
                .accounts
                .logout(&admin.caller)
                .await
                .map_err(service(admin.tr))?;
            Ok(gone)
        }
        // Already logged out (expired, revoked): just forget the cookies.
        Err(ConsoleError::Login { .. }) => Ok(gone),
        Err(e) => Err(e),
    }
}

/// The language: remembered for the admin when logged in, in a cookie before.
async fn language(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, ConsoleError> {
    check_origin(&req)?;
    let form = Form::parse(&body, anonymous_language(&req))?;
    let Some(lang) = Lang::from_code(form.get("language")) else {
        return Err(ConsoleError::BadRequest(
            Tr::new(anonymous_language(&req)),
            format!("unknown language: one of {}", Lang::CODES.join(", ")),
        ));
    };
    let back = safe_next(Some(form.get("back")));
    let logged_in = req
        .cookie(SESSION_COOKIE)
        .is_some_and(|c| !c.value().is_empty());
    if logged_in {
        match session::form_admin(&req, &body, true).await {
            Ok((admin, _)) => {
                state
                    .admins
                    .accounts
                    .set_language(&admin.caller, lang.code(), &Lang::CODES)
                    .await
                    .map_err(service(Tr::new(lang)))?;
            }
            Err(ConsoleError::Login { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    let back = if back.starts_with("/console/dashboard") && !logged_in {
        "/console/login".to_owned()
    } else {
        back
    };
    let sep = if back.contains('?') { '&' } else { '?' };
    let to = if logged_in {
        format!("{back}{sep}done=language")
    } else {
        back
    };
    Ok(HttpResponse::SeeOther()
        .insert_header(("Location", to))
        .cookie(cookie(
            LANG_COOKIE,
            lang.code().to_owned(),
            "/console",
            365 * 86400,
        ))
        .finish())
}
