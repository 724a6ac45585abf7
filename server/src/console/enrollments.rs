//! Enrollments: the list, a new one for Apple or Android (the same request the
//! API's POST /enrollments takes), its large scannable QR code with a print view,
//! and revocation.

use super::i18n::Tr;
use super::login::idle_secs;
use super::page::{notice, DoneQuery, Page};
use super::session::{form_admin, page_admin, ConsoleAdmin, Form};
use super::{html, redirect, service, ConsoleError};
use crate::domain::enrollment::EnrollmentState;
use crate::domain::Platform;
use crate::http::AppState;
use crate::services::enrollments::{CreateEnrollment, EnrollmentView};
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use serde::Deserialize;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/enrollments", web::get().to(list))
        .route("/enrollments", web::post().to(create))
        .route("/enrollments/{id}", web::get().to(detail))
        .route("/enrollments/{id}/print", web::get().to(print))
        .route("/enrollments/{id}/qr.png", web::get().to(qr_png))
        .route("/enrollments/{id}/revoke", web::post().to(revoke));
}

pub struct EnrollmentRow {
    pub id: String,
    pub name: String,
    pub platform: String,
    pub state: &'static str,
    pub state_label: String,
    pub uses: String,
    pub expires: String,
    pub user: String,
    pub group: String,
}

fn state_of(tr: Tr, s: EnrollmentState) -> (&'static str, String) {
    let key = match s {
        EnrollmentState::Active => "active",
        EnrollmentState::Expired => "expired",
        EnrollmentState::Revoked => "revoked",
        EnrollmentState::UsedUp => "used_up",
    };
    (key, tr.t(&format!("enrollment-{}", key.replace('_', "-"))))
}

fn row(tr: Tr, v: &EnrollmentView) -> EnrollmentRow {
    let e = &v.enrollment;
    let (state, state_label) = state_of(tr, v.state);
    EnrollmentRow {
        id: e.id.clone(),
        name: e.name.clone(),
        platform: match e.platform {
            Platform::Apple => tr.t("platform-apple"),
            Platform::Android => tr.t("platform-android"),
        },
        state,
        state_label,
        uses: match e.max_uses {
            Some(max) => format!("{} / {}", tr.num(e.uses.into()), tr.num(max.into())),
            None => tr.num(e.uses.into()),
        },
        expires: tr.opt_datetime(&e.expires_at),
        user: e.assigned_user.clone().unwrap_or_default(),
        group: e.assigned_group.clone().unwrap_or_default(),
    }
}

#[derive(Template)]
#[template(path = "console/enrollments.html")]
struct ListPage {
    p: Page,
    rows: Vec<EnrollmentRow>,
    all: bool,
    may_create: bool,
    form: NewForm,
}

/// The new-enrollment form's values (kept when the server refuses them).
#[derive(Default)]
pub struct NewForm {
    pub platform: String,
    pub name: String,
    pub hours: String,
    pub max_uses: String,
    pub user: String,
    pub group: String,
}

#[derive(Deserialize)]
struct ListQuery {
    all: Option<String>,
    done: Option<String>,
}

async fn list(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ConsoleError> {
    let admin = page_admin(&req).await?;
    admin.require("GET", "/enrollments")?;
    render_list(
        &state,
        &admin,
        query.all.is_some(),
        query.done.as_deref(),
        None,
        NewForm {
            platform: "apple".into(),
            hours: "72".into(),
            ..Default::default()
        },
    )
    .await
}

async fn render_list(
    state: &AppState,
    admin: &ConsoleAdmin,
    all: bool,
    done: Option<&str>,
    error: Option<String>,
    form: NewForm,
) -> Result<HttpResponse, ConsoleError> {
    let tr = admin.tr;
    let items = state.enrollments.list(all).await.map_err(service(tr))?;
    let page = ListPage {
        p: Page::new(
            admin,
            tr.t("nav-enrollments"),
            "/console/enrollments",
            idle_secs(state),
        )
        .with_notice(notice(tr, done))
        .with_error(error),
        rows: items.iter().map(|v| row(tr, v)).collect(),
        all,
        may_create: admin.may("POST", "/enrollments"),
        form,
    };
    html(&page)
}

fn number<T: std::str::FromStr>(tr: Tr, form: &Form, field: &str) -> Result<Option<T>, String> {
    match form.opt(field) {
        None => Ok(None),
        Some(v) => v
            .parse()
            .map(Some)
            .map_err(|_| tr.t1("field-not-a-number", &tr.t(&format!("enrollment-{field}")))),
    }
}

async fn create(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, ConsoleError> {
    let (admin, form) = form_admin(&req, &body, false).await?;
    admin.require("POST", "/enrollments")?;
    let tr = admin.tr;
    let kept = NewForm {
        platform: form.get("platform").to_owned(),
        name: form.get("name").to_owned(),
        hours: form.get("hours").to_owned(),
        max_uses: form.get("max_uses").to_owned(),
        user: form.get("user").to_owned(),
        group: form.get("group").to_owned(),
    };
    let parsed = number::<i64>(tr, &form, "hours")
        .and_then(|h| number::<i32>(tr, &form, "max_uses").map(|m| (h, m)));
    let (hours, max_uses) = match parsed {
        Ok(v) => v,
        Err(message) => return render_list(&state, &admin, false, None, Some(message), kept).await,
    };
    let request = CreateEnrollment {
        platform: form.get("platform").to_owned(),
        name: form.get("name").trim().to_owned(),
        expires_at: None,
        expires_in_hours: hours,
        max_uses,
        user: form.opt("user"),
        group: form.opt("group"),
        android: None,
    };
    match state
        .enrollments
        .create(&admin.caller.identity, request)
        .await
    {
        Ok(view) => Ok(redirect(&format!(
            "/console/enrollments/{}?done=created",
            view.enrollment.id
        ))),
        Err(e) => {
            let message = ConsoleError::from_service(tr, e).to_string();
            render_list(&state, &admin, false, None, Some(message), kept).await
        }
    }
}

#[derive(Template)]
#[template(path = "console/enrollment.html")]
struct DetailPage {
    p: Page,
    e: EnrollmentRow,
    url: String,
    apple: bool,
    may_revoke: bool,
}

#[derive(Template)]
#[template(path = "console/enrollment_print.html")]
struct PrintPage {
    tr: Tr,
    e: EnrollmentRow,
    url: String,
    apple: bool,
}

async fn view(state: &AppState, tr: Tr, id: &str) -> Result<EnrollmentView, ConsoleError> {
    if uuid::Uuid::parse_str(id).is_err() {
        return Err(ConsoleError::NotFound(tr));
    }
    state.enrollments.get(id).await.map_err(service(tr))
}

async fn detail(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<String>,
    query: web::Query<DoneQuery>,
) -> Result<HttpResponse, ConsoleError> {
    let admin = page_admin(&req).await?;
    admin.require("GET", "/enrollments/{id}")?;
    let tr = admin.tr;
    let v = view(&state, tr, &id).await?;
    let e = row(tr, &v);
    let page = DetailPage {
        p: Page::new(
            &admin,
            v.enrollment.name.clone(),
            "/console/enrollments",
            idle_secs(&state),
        )
        .with_notice(notice(tr, query.done.as_deref())),
        may_revoke: admin.may("DELETE", "/enrollments/{id}") && e.state == "active",
        apple: v.enrollment.platform == Platform::Apple,
        url: v.url,
        e,
    };
    html(&page)
}

async fn print(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<String>,
) -> Result<HttpResponse, ConsoleError> {
    let admin = page_admin(&req).await?;
    admin.require("GET", "/enrollments/{id}")?;
    let tr = admin.tr;
    let v = view(&state, tr, &id).await?;
    let page = PrintPage {
        tr,
        e: row(tr, &v),
        apple: v.enrollment.platform == Platform::Apple,
        url: v.url,
    };
    html(&page)
}

async fn qr_png(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<String>,
) -> Result<HttpResponse, ConsoleError> {
    let admin = page_admin(&req).await?;
    admin.require("GET", "/enrollments/{id}/qr.png")?;
    let tr = admin.tr;
    view(&state, tr, &id).await?;
    let payload = state
        .enrollments
        .qr_payload(&id)
        .await
        .map_err(service(tr))?;
    let png = enrollment::qr::png(&payload, 10)
        .map_err(|e| ConsoleError::BadRequest(tr, e.to_string()))?;
    Ok(HttpResponse::Ok().content_type("image/png").body(png))
}

async fn revoke(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ConsoleError> {
    let (admin, _) = form_admin(&req, &body, false).await?;
    admin.require("DELETE", "/enrollments/{id}")?;
    let tr = admin.tr;
    view(&state, tr, &id).await?;
    state
        .enrollments
        .revoke(&admin.caller.identity, &id)
        .await
        .map_err(service(tr))?;
    Ok(redirect(&format!("/console/enrollments/{id}?done=revoked")))
}
