//! The incident register: every incident with its level in the register's colours
//! and the register's columns; filing one, classifying it (confirmed or rejected,
//! with its level), recording response actions, closing it with the closing report;
//! its history, evidence and approvals; the exports (the API's own, which the
//! console's session cookie reaches).

use super::i18n::Tr;
use super::login::idle_secs;
use super::page::{notice, DoneQuery, Page};
use super::session::{form_admin, page_admin, ConsoleAdmin};
use super::{html, redirect, service, ConsoleError};
use crate::domain::incident::{Incident, IncidentFilter, ResponsiblePerson, LEVELS};
use crate::http::AppState;
use crate::services::incidents::{EvidenceRequest, NewIncident};
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use serde::Deserialize;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/incidents", web::get().to(list))
        .route("/incidents", web::post().to(file))
        .route("/incidents/{id}", web::get().to(detail))
        .route("/incidents/{id}/classify", web::post().to(classify))
        .route("/incidents/{id}/actions", web::post().to(action))
        .route("/incidents/{id}/close", web::post().to(close))
        .route("/incidents/{id}/evidence", web::post().to(collect))
        .route(
            "/incidents/{id}/approvals/{approval}",
            web::post().to(decide),
        );
}

/// Incident types the form suggests (any snake_case name is accepted).
const TYPES: &[&str] = &[
    "lost_device",
    "stolen_device",
    "non_compliant_device",
    "compromised_device",
    "unauthorized_access",
    "malware",
    "data_leak",
];

pub struct IncidentRow {
    pub id: String,
    pub number: String,
    pub name: String,
    pub level_label: String,
    pub colour: String,
    pub classification: String,
    pub status: String,
    pub detected: String,
    pub expected: String,
    pub responsible: String,
}

fn row(tr: Tr, i: &Incident) -> IncidentRow {
    IncidentRow {
        id: i.id.clone(),
        number: i.number.to_string(),
        name: i.name.clone(),
        level_label: format!("{} · {}", i.level, tr.t(&format!("level-{}", i.level))),
        colour: i.level_colour.clone(),
        classification: tr.t(&format!("classification-{}", i.classification)),
        status: tr.t(&format!("incident-status-{}", i.status.replace('_', "-"))),
        detected: tr.datetime(&i.detected_at),
        expected: i
            .expected_completion
            .as_ref()
            .map(|d| tr.naive_date(d))
            .unwrap_or_else(|| "—".into()),
        responsible: i.responsible.full_name.clone(),
    }
}

pub struct LevelChoice {
    pub level: i16,
    pub label: String,
    pub selected: bool,
}

fn level_choices(tr: Tr, selected: Option<i16>) -> Vec<LevelChoice> {
    LEVELS
        .iter()
        .map(|(l, _, _)| LevelChoice {
            level: *l,
            label: format!("{l} · {}", tr.t(&format!("level-{l}"))),
            selected: Some(*l) == selected,
        })
        .collect()
}

#[derive(Template)]
#[template(path = "console/incidents.html")]
struct ListPage {
    p: Page,
    rows: Vec<IncidentRow>,
    levels: Vec<LevelChoice>,
    types: &'static [&'static str],
    status: String,
    summary: String,
    may_file: bool,
    may_export: bool,
}

#[derive(Deserialize)]
struct ListQuery {
    level: Option<i16>,
    status: Option<String>,
    done: Option<String>,
}

async fn list(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ConsoleError> {
    let admin = page_admin(&req).await?;
    admin.require("GET", "/incidents")?;
    render_list(&state, &admin, &query, None).await
}

async fn render_list(
    state: &AppState,
    admin: &ConsoleAdmin,
    query: &ListQuery,
    error: Option<String>,
) -> Result<HttpResponse, ConsoleError> {
    let tr = admin.tr;
    let status = query
        .status
        .clone()
        .filter(|s| crate::domain::incident::STATUSES.contains(&s.as_str()));
    let filter = IncidentFilter {
        level: query.level.filter(|l| (0..=5).contains(l)),
        status: status.clone(),
        limit: Some(200),
        ..Default::default()
    };
    let page = state.incidents.list(&filter).await.map_err(service(tr))?;
    let list = ListPage {
        p: Page::new(
            admin,
            tr.t("nav-incidents"),
            "/console/incidents",
            idle_secs(state),
        )
        .with_notice(notice(tr, query.done.as_deref()))
        .with_error(error),
        rows: page.items.iter().map(|i| row(tr, i)).collect(),
        levels: level_choices(tr, filter.level),
        types: TYPES,
        status: status.unwrap_or_default(),
        summary: tr.n("incidents-count", page.total as i64),
        may_file: admin.may("POST", "/incidents"),
        may_export: admin.may("GET", "/incidents/export.csv"),
    };
    html(&list)
}

async fn file(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, ConsoleError> {
    let (admin, form) = form_admin(&req, &body, false).await?;
    admin.require("POST", "/incidents")?;
    let tr = admin.tr;
    let level = form.get("level").parse::<i16>().unwrap_or(-1);
    let expected_completion = match form.opt("expected_completion") {
        None => None,
        Some(d) => match chrono::NaiveDate::parse_from_str(&d, "%Y-%m-%d") {
            Ok(d) => Some(d),
            Err(_) => {
                let query = ListQuery {
                    level: None,
                    status: None,
                    done: None,
                };
                return render_list(&state, &admin, &query, Some(tr.t("incident-bad-date"))).await;
            }
        },
    };
    let new = NewIncident {
        name: form.get("name").trim().to_owned(),
        incident_type: form.get("type").trim().to_owned(),
        level,
        devices: form
            .get("devices")
            .split([',', ' ', '\n'])
            .map(str::trim)
            .filter(|d| !d.is_empty())
            .map(str::to_owned)
            .collect(),
        users: Vec::new(),
        detected_at: None,
        detection_source: None,
        response_plan: form.get("response_plan").trim().to_owned(),
        expected_completion,
        resources: Default::default(),
        evidence_procedure: String::new(),
        evidence_location: String::new(),
        responsible: ResponsiblePerson {
            full_name: form.get("responsible").trim().to_owned(),
            position_company: String::new(),
            phone: String::new(),
        },
        comments: form.get("comments").trim().to_owned(),
    };
    match state.incidents.file(admin.name(), new).await {
        Ok(i) => Ok(redirect(&format!("/console/incidents/{}?done=filed", i.id))),
        Err(e) => {
            let message = ConsoleError::from_service(tr, e).to_string();
            let query = ListQuery {
                level: None,
                status: None,
                done: None,
            };
            render_list(&state, &admin, &query, Some(message)).await
        }
    }
}

/// The non-empty parts of a column made of several fields, separated by "; ".
fn joined(parts: &[&String]) -> String {
    parts
        .iter()
        .filter(|s| !s.is_empty())
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join("; ")
}

pub struct Column {
    pub label: String,
    pub value: String,
}

pub struct HistoryRow {
    pub at: String,
    pub actor: String,
    pub change: String,
}

pub struct EvidenceRow {
    pub kind: String,
    pub source: String,
    pub sha256: String,
    pub collected: String,
}

pub struct ApprovalRow {
    pub id: String,
    pub device_id: String,
    pub action: String,
    pub requested_by: String,
    pub status: String,
    pub pending: bool,
}

#[derive(Template)]
#[template(path = "console/incident.html")]
struct DetailPage {
    p: Page,
    i: IncidentRow,
    columns: Vec<Column>,
    history: Vec<HistoryRow>,
    evidence: Vec<EvidenceRow>,
    approvals: Vec<ApprovalRow>,
    levels: Vec<LevelChoice>,
    open: bool,
    may_write: bool,
    may_approve: bool,
    closing_report: String,
    devices: Vec<String>,
}

async fn detail(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<String>,
    query: web::Query<DoneQuery>,
) -> Result<HttpResponse, ConsoleError> {
    let admin = page_admin(&req).await?;
    admin.require("GET", "/incidents/{id}")?;
    render_detail(&state, &admin, &id, query.done.as_deref(), None).await
}

async fn incident(state: &AppState, tr: Tr, id: &str) -> Result<Incident, ConsoleError> {
    if uuid::Uuid::parse_str(id).is_err() {
        return Err(ConsoleError::NotFound(tr));
    }
    state.incidents.get(id).await.map_err(service(tr))
}

async fn render_detail(
    state: &AppState,
    admin: &ConsoleAdmin,
    id: &str,
    done: Option<&str>,
    error: Option<String>,
) -> Result<HttpResponse, ConsoleError> {
    let tr = admin.tr;
    let i = incident(state, tr, id).await?;
    let err = service(tr);
    let history = state.incidents.history(&i.id).await.map_err(&err)?;
    let evidence = state.incidents.evidence(&i.id).await.map_err(&err)?;
    let approvals = state.incidents.approvals(&i.id).await.map_err(&err)?;
    let col = |id: &str, value: String| Column {
        label: tr.t(id),
        value: if value.trim().is_empty() {
            "—".into()
        } else {
            value
        },
    };
    let r = row(tr, &i);
    // The register's columns, in the order the office's policy gives them.
    let columns = vec![
        col("register-number", r.number.clone()),
        col("register-name", i.name.clone()),
        col("register-type", i.incident_type.clone()),
        col("register-level", r.level_label.clone()),
        col("register-classification", r.classification.clone()),
        col("register-plan", i.response_plan.clone()),
        col(
            "register-actions",
            i.response_actions
                .iter()
                .map(|a| format!("{} — {} ({})", tr.datetime(&a.at), a.description, a.actor))
                .collect::<Vec<_>>()
                .join("\n"),
        ),
        col("register-expected", r.expected.clone()),
        col(
            "register-resources",
            joined(&[
                &i.resources.technical,
                &i.resources.software,
                &i.resources.financial,
            ]),
        ),
        col("register-evidence-procedure", i.evidence_procedure.clone()),
        col("register-evidence-location", i.evidence_location.clone()),
        col(
            "register-responsible",
            joined(&[
                &i.responsible.full_name,
                &i.responsible.position_company,
                &i.responsible.phone,
            ]),
        ),
        col("register-status", r.status.clone()),
        col("register-comments", i.comments.clone()),
        col("register-devices", i.devices.join(", ")),
        col("register-detected", r.detected.clone()),
        col("register-source", i.detection_source.clone()),
    ];
    let open = i.closed_at.is_none();
    let page = DetailPage {
        p: Page::new(
            admin,
            format!("{} {}", tr.t1("incident-number", &r.number), i.name),
            "/console/incidents",
            idle_secs(state),
        )
        .with_notice(notice(tr, done))
        .with_error(error),
        columns,
        history: history
            .iter()
            .map(|h| HistoryRow {
                at: tr.datetime(&h.at),
                actor: h.actor.clone(),
                change: h.change.clone(),
            })
            .collect(),
        evidence: evidence
            .iter()
            .map(|e| EvidenceRow {
                kind: e.kind.clone(),
                source: e.source.clone(),
                sha256: e.sha256.clone(),
                collected: tr.datetime(&e.collected_at),
            })
            .collect(),
        approvals: approvals
            .iter()
            .map(|a| ApprovalRow {
                id: a.id.clone(),
                device_id: a.device_id.clone(),
                action: a.action.clone(),
                requested_by: a.requested_by.clone(),
                status: a.status.clone(),
                pending: a.status == "pending",
            })
            .collect(),
        levels: level_choices(tr, Some(i.level)),
        open,
        may_write: admin.may("POST", "/incidents/{id}/classify"),
        may_approve: admin.has("incidents.approve"),
        closing_report: i.closing_report.clone().unwrap_or_default(),
        devices: i.devices.clone(),
        i: r,
    };
    html(&page)
}

/// An action form on one incident: the admin (session, CSRF token, the API route's
/// right) and the incident it names.
async fn incident_form(
    state: &AppState,
    req: &HttpRequest,
    body: &web::Bytes,
    id: &str,
    route: &str,
) -> Result<(ConsoleAdmin, super::session::Form, Incident), ConsoleError> {
    let (admin, form) = form_admin(req, body, false).await?;
    admin.require("POST", route)?;
    let i = incident(state, admin.tr, id).await?;
    Ok((admin, form, i))
}

/// After an action: back to the incident with its notice, or the incident again
/// with the service's refusal.
async fn after<T>(
    state: &AppState,
    admin: &ConsoleAdmin,
    id: &str,
    outcome: Result<T, crate::services::ServiceError>,
    done: &str,
) -> Result<HttpResponse, ConsoleError> {
    match outcome {
        Ok(_) => Ok(redirect(&format!("/console/incidents/{id}?done={done}"))),
        Err(e) => {
            let m = ConsoleError::from_service(admin.tr, e).to_string();
            render_detail(state, admin, id, None, Some(m)).await
        }
    }
}

async fn classify(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ConsoleError> {
    let (admin, form, i) =
        incident_form(&state, &req, &body, &id, "/incidents/{id}/classify").await?;
    let level = form.get("level").parse::<i16>().ok();
    let outcome = state
        .incidents
        .classify(
            &i.id,
            admin.name(),
            form.get("classification").to_owned(),
            level,
        )
        .await;
    after(&state, &admin, &i.id, outcome, "classified").await
}

async fn action(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ConsoleError> {
    let (admin, form, i) =
        incident_form(&state, &req, &body, &id, "/incidents/{id}/actions").await?;
    let outcome = state
        .incidents
        .record_action(
            &i.id,
            admin.name(),
            form.get("description").trim().to_owned(),
            None,
        )
        .await;
    after(&state, &admin, &i.id, outcome, "action-recorded").await
}

async fn close(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ConsoleError> {
    let (admin, form, i) = incident_form(&state, &req, &body, &id, "/incidents/{id}/close").await?;
    let outcome = state
        .incidents
        .close(
            &i.id,
            admin.name(),
            form.get("closing_report").trim().to_owned(),
        )
        .await;
    after(&state, &admin, &i.id, outcome, "closed").await
}

/// Collects evidence from the server's own records (a device's facts or events) or
/// a written note, as `POST /incidents/{id}/evidence` does.
async fn collect(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ConsoleError> {
    let (admin, form, i) =
        incident_form(&state, &req, &body, &id, "/incidents/{id}/evidence").await?;
    let device_id = form.get("device").trim().to_owned();
    let request = match form.get("kind") {
        "device_facts" => EvidenceRequest::DeviceFacts { device_id },
        "events" => EvidenceRequest::Events { device_id },
        _ => EvidenceRequest::Note {
            text: form.get("text").trim().to_owned(),
        },
    };
    let outcome = state
        .incidents
        .collect_evidence(&i.id, admin.name(), request)
        .await;
    after(&state, &admin, &i.id, outcome, "evidence-collected").await
}

async fn decide(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
    body: web::Bytes,
) -> Result<HttpResponse, ConsoleError> {
    let (admin, form) = form_admin(&req, &body, false).await?;
    admin.require("POST", "/incidents/{id}/approvals/{approval}/approve")?;
    let tr = admin.tr;
    let (id, approval) = path.into_inner();
    let i = incident(&state, tr, &id).await?;
    let approve = form.get("decision") == "approve";
    match state
        .incidents
        .decide(&i.id, &approval, &admin.caller.identity, approve)
        .await
    {
        Ok(_) => Ok(redirect(&format!("/console/incidents/{}", i.id))),
        Err(e) => {
            let m = ConsoleError::from_service(tr, e).to_string();
            render_detail(&state, &admin, &i.id, None, Some(m)).await
        }
    }
}
