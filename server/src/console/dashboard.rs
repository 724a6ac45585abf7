//! The dashboard: fleet figures, non-compliant devices, open incidents by level (in
//! the register's colours), and the health of the two outside links the fleet hangs
//! on: Apple's push certificate and the Google (Android Enterprise) connection.

use super::login::idle_secs;
use super::page::{notice, Page};
use super::session::page_admin;
use super::{html, service, ConsoleError};
use crate::domain::incident::{IncidentFilter, LEVELS};
use crate::domain::DeviceFilter;
use crate::http::AppState;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use serde::Deserialize;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/dashboard", web::get().to(dashboard));
}

pub struct Figure {
    pub label: String,
    pub value: String,
    pub href: Option<String>,
}

pub struct LevelFigure {
    pub level: i16,
    pub name: String,
    pub colour: &'static str,
    pub count: String,
}

/// One link's health: ok, warning (expiring) or error (missing, expired, failing).
pub struct Health {
    pub name: String,
    pub state: &'static str,
    pub state_label: String,
    pub detail: String,
}

#[derive(Template)]
#[template(path = "console/dashboard.html")]
struct DashboardPage {
    p: Page,
    fleet: Vec<Figure>,
    levels: Vec<LevelFigure>,
    open_incidents: String,
    show_incidents: bool,
    health: Vec<Health>,
}

#[derive(Deserialize)]
struct Query {
    done: Option<String>,
}

async fn count(
    state: &AppState,
    filter: DeviceFilter,
) -> Result<u64, crate::services::ServiceError> {
    let page = state
        .store
        .devices(&DeviceFilter {
            limit: Some(1),
            ..filter
        })
        .await?;
    Ok(page.total)
}

async fn dashboard(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: web::Query<Query>,
) -> Result<HttpResponse, ConsoleError> {
    let admin = page_admin(&req).await?;
    let tr = admin.tr;
    let mut fleet = Vec::new();
    if admin.has("devices.read") {
        let err = service(tr);
        let total = count(&state, DeviceFilter::default()).await.map_err(&err)?;
        let apple = count(
            &state,
            DeviceFilter {
                platform: Some("apple".into()),
                ..Default::default()
            },
        )
        .await
        .map_err(&err)?;
        let android = count(
            &state,
            DeviceFilter {
                platform: Some("android".into()),
                ..Default::default()
            },
        )
        .await
        .map_err(&err)?;
        let noncompliant = count(
            &state,
            DeviceFilter {
                noncompliant: Some(true),
                ..Default::default()
            },
        )
        .await
        .map_err(&err)?;
        fleet = vec![
            Figure {
                label: tr.t("fleet-total"),
                value: tr.num(total as i64),
                href: Some("/console/devices".into()),
            },
            Figure {
                label: tr.t("platform-apple"),
                value: tr.num(apple as i64),
                href: Some("/console/devices?platform=apple".into()),
            },
            Figure {
                label: tr.t("platform-android"),
                value: tr.num(android as i64),
                href: Some("/console/devices?platform=android".into()),
            },
            Figure {
                label: tr.t("fleet-noncompliant"),
                value: tr.num(noncompliant as i64),
                href: Some("/console/devices?compliance=noncompliant".into()),
            },
        ];
    }
    let show_incidents = admin.has("incidents.read");
    let mut levels = Vec::new();
    let mut open = 0i64;
    if show_incidents {
        let mut counts = [0i64; 6];
        for status in ["not_started", "in_progress"] {
            let items = state
                .incidents
                .all(&IncidentFilter {
                    status: Some(status.into()),
                    ..Default::default()
                })
                .await
                .map_err(service(tr))?;
            for i in items {
                if let Some(c) = counts.get_mut(i.level.clamp(0, 5) as usize) {
                    *c += 1;
                    open += 1;
                }
            }
        }
        levels = LEVELS
            .iter()
            .map(|(level, _, colour)| LevelFigure {
                level: *level,
                name: tr.t(&format!("level-{level}")),
                colour,
                count: tr.num(counts[*level as usize]),
            })
            .collect();
    }
    let mut health = Vec::new();
    if admin.has("push.read") {
        health.push(match state.push.info() {
            None => Health {
                name: tr.t("health-push"),
                state: "error",
                state_label: tr.t("health-missing"),
                detail: tr.t("health-push-missing"),
            },
            Some(info) if info.days_left < 0 => Health {
                name: tr.t("health-push"),
                state: "error",
                state_label: tr.t("health-expired"),
                detail: tr.t1("health-expired-on", &tr.date(&info.not_after)),
            },
            Some(info) => Health {
                name: tr.t("health-push"),
                state: if info.warning.is_some() {
                    "warning"
                } else {
                    "ok"
                },
                state_label: if info.warning.is_some() {
                    tr.t("health-expiring")
                } else {
                    tr.t("health-ok")
                },
                detail: format!(
                    "{} · {}",
                    tr.t1("health-expires-on", &tr.date(&info.not_after)),
                    tr.n("days-left", info.days_left)
                ),
            },
        });
    }
    if admin.has("android.read") {
        health.push(match state.android.status().await {
            Ok(s) if s.state == "enterprise_created" && s.last_error.is_none() => Health {
                name: tr.t("health-google"),
                state: "ok",
                state_label: tr.t("health-ok"),
                detail: s
                    .enterprise_display_name
                    .or(s.enterprise)
                    .unwrap_or_default(),
            },
            Ok(s) if s.state == "signup_pending" => Health {
                name: tr.t("health-google"),
                state: "warning",
                state_label: tr.t("health-signup-pending"),
                detail: s.client_email,
            },
            Ok(s) => Health {
                name: tr.t("health-google"),
                state: "error",
                state_label: tr.t("health-failing"),
                detail: s.last_error.unwrap_or_default(),
            },
            Err(_) => Health {
                name: tr.t("health-google"),
                state: "warning",
                state_label: tr.t("health-not-connected"),
                detail: tr.t("health-google-missing"),
            },
        });
    }
    let page = DashboardPage {
        p: Page::new(
            &admin,
            tr.t("nav-dashboard"),
            "/console/dashboard",
            idle_secs(&state),
        )
        .with_notice(notice(tr, query.done.as_deref())),
        fleet,
        levels,
        open_incidents: tr.n("incidents-open", open),
        show_incidents,
        health,
    };
    html(&page)
}
