//! The web console under /console: server-rendered pages (askama templates in
//! `server/templates/console`, escaped by default), a stylesheet and one small script
//! embedded in the binary, in English, Polish and Ukrainian (i18n.rs).
//!
//! Every page reads through the same services as the admin API, and every action
//! calls the same service with the same right (session.rs reads the API's rights
//! table), so the console can do nothing the API would refuse. It works without
//! JavaScript: the script only adds conveniences (idle logout, select all, the
//! wipe button enabled once the serial number matches).
//!
//! Headers on every response: a Content-Security-Policy without inline scripts or
//! styles, no framing, no caching of pages, and the referrer kept to our own pages
//! (with `no-referrer` a browser sends `Origin: null` on our own forms, which the
//! Origin check must refuse).

mod admins;
mod audit;
mod dashboard;
mod devices;
mod directory;
mod enrollments;
pub mod i18n;
mod incidents;
mod login;
mod page;
mod policies;
mod reasons;
mod session;
mod settings;

use crate::services::ServiceError;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::middleware::Next;
use actix_web::{web, HttpResponse, ResponseError};
use askama::Template;
use i18n::{Lang, Tr};

pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/console")
            .wrap(actix_web::middleware::from_fn(security_headers))
            .route("", web::get().to(root))
            .route("/", web::get().to(root))
            .route("/static/{file}", web::get().to(asset))
            .configure(login::configure)
            .configure(dashboard::configure)
            .configure(devices::configure)
            .configure(enrollments::configure)
            .configure(incidents::configure)
            .configure(audit::configure)
            .configure(admins::configure)
            .configure(settings::configure)
            .configure(directory::configure)
            .configure(policies::configure)
            .default_service(web::to(not_found)),
    );
}

async fn root() -> HttpResponse {
    redirect("/console/dashboard")
}

async fn not_found(req: actix_web::HttpRequest) -> Result<HttpResponse, ConsoleError> {
    Err(ConsoleError::NotFound(Tr::new(
        session::anonymous_language(&req),
    )))
}

/// 303 See Other: after a form post, the browser GETs the page.
pub fn redirect(to: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, to))
        .finish()
}

async fn security_headers(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let mut res = next.call(req).await?;
    let h = res.headers_mut();
    for (name, value) in [
        ("content-security-policy", CONTENT_SECURITY_POLICY),
        ("x-frame-options", "DENY"),
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "same-origin"),
        ("cross-origin-opener-policy", "same-origin"),
    ] {
        h.insert(
            header::HeaderName::from_static(name),
            HeaderValue::from_static(value),
        );
    }
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    Ok(res)
}

const CSS: &str = include_str!("assets/console.css");
const JS: &str = include_str!("assets/console.js");

async fn asset(file: web::Path<String>) -> HttpResponse {
    let (body, kind) = match file.as_str() {
        "console.css" => (CSS, "text/css; charset=utf-8"),
        "console.js" => (JS, "text/javascript; charset=utf-8"),
        _ => return HttpResponse::NotFound().finish(),
    };
    HttpResponse::Ok()
        .content_type(kind)
        .insert_header((header::CACHE_CONTROL, "private, max-age=300"))
        .body(body)
}

/// Renders a page template: 200 text/html.
pub fn html(template: &impl Template) -> Result<HttpResponse, ConsoleError> {
    let body = template
        .render()
        .map_err(|e| ConsoleError::Internal(format!("rendering a page: {e}")))?;
    Ok(HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(body))
}

/// Why a console request did not get its page.
#[derive(Debug)]
pub enum ConsoleError {
    /// No valid session: to the login page, then back.
    Login {
        next: String,
        expired: bool,
    },
    Redirect(String),
    Forbidden(Tr),
    Csrf(Lang),
    NotFound(Tr),
    BadRequest(Tr, String),
    /// A service refused: its status and message, as the API would send them.
    Service(Tr, StatusCode, String),
    Internal(String),
}

impl std::fmt::Display for ConsoleError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConsoleError::Login { .. } => write!(f, "login needed"),
            ConsoleError::Redirect(to) => write!(f, "see {to}"),
            ConsoleError::Forbidden(_) => write!(f, "forbidden"),
            ConsoleError::Csrf(_) => write!(f, "CSRF token missing or wrong"),
            ConsoleError::NotFound(_) => write!(f, "not found"),
            ConsoleError::BadRequest(_, m) => write!(f, "{m}"),
            ConsoleError::Service(_, _, m) => write!(f, "{m}"),
            ConsoleError::Internal(m) => write!(f, "{m}"),
        }
    }
}

#[derive(Template)]
#[template(path = "console/error.html")]
struct ErrorPage {
    tr: Tr,
    title: String,
    message: String,
}

impl ResponseError for ConsoleError {
    fn status_code(&self) -> StatusCode {
        match self {
            ConsoleError::Login { .. } | ConsoleError::Redirect(_) => StatusCode::SEE_OTHER,
            ConsoleError::Forbidden(_) | ConsoleError::Csrf(_) => StatusCode::FORBIDDEN,
            ConsoleError::NotFound(_) => StatusCode::NOT_FOUND,
            ConsoleError::BadRequest(..) => StatusCode::BAD_REQUEST,
            ConsoleError::Service(_, status, _) => *status,
            ConsoleError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let (tr, title, message) = match self {
            ConsoleError::Login { next, expired } => {
                let mut to = format!(
                    "/console/login?next={}",
                    percent_encoding::utf8_percent_encode(next, percent_encoding::NON_ALPHANUMERIC)
                );
                if *expired {
                    to.push_str("&expired=1");
                }
                return redirect(&to);
            }
            ConsoleError::Redirect(to) => return redirect(to),
            ConsoleError::Forbidden(tr) => {
                (*tr, tr.t("error-forbidden"), tr.t("error-forbidden-text"))
            }
            ConsoleError::Csrf(lang) => {
                let tr = Tr::new(*lang);
                (tr, tr.t("error-csrf"), tr.t("error-csrf-text"))
            }
            ConsoleError::NotFound(tr) => {
                (*tr, tr.t("error-not-found"), tr.t("error-not-found-text"))
            }
            ConsoleError::BadRequest(tr, m) => (*tr, tr.t("error-bad-request"), m.clone()),
            ConsoleError::Service(tr, _, m) => (*tr, tr.t("error-refused"), m.clone()),
            ConsoleError::Internal(m) => {
                tracing::error!(error = %m, "console page failed");
                let tr = Tr::new(Lang::En);
                (tr, tr.t("error-internal"), tr.t("error-internal-text"))
            }
        };
        let page = ErrorPage { tr, title, message };
        let body = page.render().unwrap_or_else(|_| "error".into());
        HttpResponse::build(self.status_code())
            .content_type("text/html; charset=utf-8")
            .body(body)
    }
}

/// A service's refusal as the console shows it (in the admin's language).
pub fn service(tr: Tr) -> impl Fn(ServiceError) -> ConsoleError {
    move |e| ConsoleError::from_service(tr, e)
}

impl ConsoleError {
    pub fn from_service(tr: Tr, e: ServiceError) -> ConsoleError {
        let api = crate::http::error::ApiError::from(e);
        ConsoleError::Service(tr, api.status, api.message)
    }
}
