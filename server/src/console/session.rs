//! Who is using the console: the session cookie checked by the same service as the
//! API's (services/admins), the CSRF token every form carries, and the rights each
//! page and action needs, read from the API's own rights table (http/api/rights.rs),
//! so that the console can do nothing the API would refuse the same admin.
//!
//! Cookies (all Secure, HttpOnly, SameSite=Strict):
//! * `mdm_session`: the session token (path `/`: the API accepts it too, with the
//!   CSRF header for unsafe requests);
//! * `mdm_csrf`: the session's CSRF token, which the pages copy into every form;
//!   a cross-site page can neither read it nor send it;
//! * `mdm_ticket`: a login waiting for its second factor (path /console/login);
//! * `mdm_login_csrf`: the login form's own token (a login CSRF would log the
//!   victim into the attacker's account);
//! * `mdm_lang`: the language chosen before login.

use super::i18n::{Lang, Tr};
use super::ConsoleError;
use crate::http::api::auth::{client_address, SESSION_COOKIE};
use crate::http::api::rights::{self, Need};
use crate::http::AppState;
use crate::services::admins::{AuthFailure, Caller, Credential, Restriction};
use actix_web::cookie::{Cookie, SameSite};
use actix_web::{web, HttpRequest};
use std::collections::HashMap;
use std::sync::Arc;

pub const CSRF_COOKIE: &str = "mdm_csrf";
pub const TICKET_COOKIE: &str = "mdm_ticket";
pub const LOGIN_CSRF_COOKIE: &str = "mdm_login_csrf";
pub const LANG_COOKIE: &str = "mdm_lang";

/// A console form body is small; anything larger is refused before parsing.
const FORM_LIMIT: usize = 64 * 1024;

pub fn cookie(
    name: &'static str,
    value: String,
    path: &'static str,
    max_age_secs: i64,
) -> Cookie<'static> {
    Cookie::build(name, value)
        .path(path)
        .secure(true)
        .http_only(true)
        .same_site(SameSite::Strict)
        .max_age(actix_web::cookie::time::Duration::seconds(max_age_secs))
        .finish()
}

pub fn removal(name: &'static str, path: &'static str) -> Cookie<'static> {
    let mut c = cookie(name, String::new(), path, 0);
    c.make_removal();
    c
}

/// The language for a request before login: the `mdm_lang` cookie, else the
/// browser's Accept-Language.
pub fn anonymous_language(req: &HttpRequest) -> Lang {
    req.cookie(LANG_COOKIE)
        .and_then(|c| Lang::from_code(c.value()))
        .unwrap_or_else(|| {
            Lang::from_accept_language(
                req.headers()
                    .get("Accept-Language")
                    .and_then(|h| h.to_str().ok()),
            )
        })
}

/// A logged-in admin on a console page.
pub struct ConsoleAdmin {
    pub caller: Arc<Caller>,
    pub tr: Tr,
    /// The CSRF token the page's forms carry.
    pub csrf: String,
}

impl ConsoleAdmin {
    pub fn name(&self) -> &str {
        self.caller.name()
    }

    /// Whether the admin may call this API route (the console offers only what is
    /// allowed).
    pub fn may(&self, method: &str, route: &str) -> bool {
        if self.caller.restriction.is_some() {
            return false;
        }
        match rights::required(method, route) {
            Some(Need::Public | Need::Own) => true,
            Some(Need::Right(r)) => self.caller.has(r),
            Some(Need::Command) => rights::COMMAND_RIGHTS.iter().any(|r| self.caller.has(r)),
            None => false,
        }
    }

    pub fn has(&self, right: &str) -> bool {
        self.caller.restriction.is_none() && self.caller.has(right)
    }

    /// Refuses (403) what the API would refuse.
    pub fn require(&self, method: &str, route: &str) -> Result<(), ConsoleError> {
        if self.may(method, route) {
            Ok(())
        } else {
            Err(ConsoleError::Forbidden(self.tr))
        }
    }

    pub fn require_right(&self, right: &str) -> Result<(), ConsoleError> {
        if self.has(right) {
            Ok(())
        } else {
            Err(ConsoleError::Forbidden(self.tr))
        }
    }
}

/// The admin of a page request (GET): its session cookie, checked now. Without a
/// valid session the browser is sent to the login page; an admin who must change
/// the password or enrol a second factor is sent there first.
pub async fn page_admin(req: &HttpRequest) -> Result<ConsoleAdmin, ConsoleError> {
    authenticate(req, None, false).await
}

/// Like [`page_admin`], for a page that a restricted admin may see (the password
/// change, the second-factor enrolment, logout).
pub async fn own_admin(req: &HttpRequest) -> Result<ConsoleAdmin, ConsoleError> {
    authenticate(req, None, true).await
}

/// The admin of a form post, with its fields: the session cookie and the form's
/// CSRF token, checked by the admin service exactly as for the API.
pub async fn form_admin(
    req: &HttpRequest,
    body: &web::Bytes,
    restricted_ok: bool,
) -> Result<(ConsoleAdmin, Form), ConsoleError> {
    check_origin(req)?;
    let form = Form::parse(body, anonymous_language(req))?;
    let admin = authenticate(req, Some(form.get("_csrf")), restricted_ok).await?;
    Ok((admin, form))
}

/// Refuses a post whose Origin is another site's (the CSRF token and SameSite
/// already stop it; this is the third lock).
pub fn check_origin(req: &HttpRequest) -> Result<(), ConsoleError> {
    let Some(origin) = req.headers().get("Origin").and_then(|h| h.to_str().ok()) else {
        return Ok(());
    };
    let host = req.connection_info().host().to_owned();
    let origin_host = origin
        .split_once("://")
        .map(|(_, rest)| rest)
        .unwrap_or(origin);
    if origin == "null" || !origin_host.eq_ignore_ascii_case(&host) {
        return Err(ConsoleError::Csrf(anonymous_language(req)));
    }
    Ok(())
}

async fn authenticate(
    req: &HttpRequest,
    csrf: Option<&str>,
    restricted_ok: bool,
) -> Result<ConsoleAdmin, ConsoleError> {
    let state = req
        .app_data::<web::Data<AppState>>()
        .ok_or_else(|| ConsoleError::Internal("server not ready".into()))?;
    let anonymous = anonymous_language(req);
    let next = req.uri().path().to_owned();
    let Some(token) = req
        .cookie(SESSION_COOKIE)
        .map(|c| c.value().to_owned())
        .filter(|t| !t.is_empty())
    else {
        return Err(ConsoleError::Login {
            next,
            expired: false,
        });
    };
    let credential = Credential::Cookie {
        token: &token,
        csrf,
        unsafe_method: csrf.is_some(),
    };
    let address = client_address(req);
    let caller = match state
        .admins
        .accounts
        .authenticate(credential, address.as_deref())
        .await
    {
        Ok(caller) => caller,
        Err(AuthFailure::Invalid(_)) => {
            return Err(ConsoleError::Login {
                next,
                expired: false,
            })
        }
        Err(AuthFailure::Ended(_)) => {
            return Err(ConsoleError::Login {
                next,
                expired: true,
            })
        }
        Err(AuthFailure::Csrf) => return Err(ConsoleError::Csrf(anonymous)),
        Err(AuthFailure::Service(e)) => {
            return Err(ConsoleError::from_service(Tr::new(anonymous), e))
        }
    };
    let lang = state
        .admins
        .accounts
        .language(&caller)
        .await
        .ok()
        .flatten()
        .and_then(|l| Lang::from_code(&l))
        .unwrap_or(anonymous);
    if !restricted_ok {
        match caller.restriction {
            Some(Restriction::PasswordChange) => {
                return Err(ConsoleError::Redirect("/console/password".into()))
            }
            Some(Restriction::MfaEnrolment) => {
                return Err(ConsoleError::Redirect("/console/totp".into()))
            }
            None => {}
        }
    }
    let csrf = req
        .cookie(CSRF_COOKIE)
        .map(|c| c.value().to_owned())
        .unwrap_or_default();
    Ok(ConsoleAdmin {
        caller: Arc::new(caller),
        tr: Tr::new(lang),
        csrf,
    })
}

/// A submitted form: `application/x-www-form-urlencoded` fields.
pub struct Form {
    fields: HashMap<String, Vec<String>>,
}

impl Form {
    pub fn parse(body: &[u8], lang: Lang) -> Result<Form, ConsoleError> {
        if body.len() > FORM_LIMIT {
            return Err(ConsoleError::BadRequest(
                Tr::new(lang),
                format!("the form is larger than {FORM_LIMIT} bytes"),
            ));
        }
        let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body)
            .map_err(|e| ConsoleError::BadRequest(Tr::new(lang), format!("invalid form: {e}")))?;
        let mut fields: HashMap<String, Vec<String>> = HashMap::new();
        for (k, v) in pairs {
            fields.entry(k).or_default().push(v);
        }
        Ok(Form { fields })
    }

    /// A field's value ("" when absent).
    pub fn get(&self, name: &str) -> &str {
        self.fields
            .get(name)
            .and_then(|v| v.first())
            .map(String::as_str)
            .unwrap_or_default()
    }

    /// A field's value, trimmed, None when empty.
    pub fn opt(&self, name: &str) -> Option<String> {
        let v = self.get(name).trim();
        (!v.is_empty()).then(|| v.to_owned())
    }

    /// Every value of a repeated field (check boxes).
    pub fn all(&self, name: &str) -> Vec<String> {
        self.fields.get(name).cloned().unwrap_or_default()
    }
}
