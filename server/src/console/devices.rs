//! Devices: the list (search; platform, compliance, user and group filters; bulk
//! actions with their progress), and one device (facts, compliance and its reasons,
//! command history with results; Lock, and Wipe confirmed by typing the serial
//! number). Lock and wipe call the very functions the API's routes call.

use super::i18n::Tr;
use super::login::idle_secs;
use super::page::{notice, DoneQuery, Page};
use super::session::{form_admin, page_admin, ConsoleAdmin};
use super::{html, redirect, service, ConsoleError};
use crate::domain::{Device, DeviceFilter, Platform};
use crate::http::api::devices::{lock_device, wipe_device, LockRequest, WipeRequest};
use crate::http::AppState;
use crate::services::commands::QueueOptions;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use profiles::commands::CommandSpec;
use serde::Deserialize;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/devices", web::get().to(list))
        .route("/devices/bulk", web::post().to(bulk))
        .route("/devices/progress", web::get().to(progress))
        .route("/devices/{id}", web::get().to(detail))
        .route("/devices/{id}/lock", web::post().to(lock))
        .route("/devices/{id}/wipe", web::post().to(wipe));
}

const PAGE_SIZE: u64 = 50;

pub struct DeviceRow {
    pub id: String,
    pub name: String,
    pub platform: String,
    pub os: String,
    pub serial: String,
    pub user: String,
    pub compliance: &'static str,
    pub compliance_label: String,
    pub last_seen: String,
}

fn compliance(tr: Tr, d: &Device) -> (&'static str, String) {
    match d.compliant {
        Some(true) => ("compliant", tr.t("compliance-compliant")),
        Some(false) => ("noncompliant", tr.t("compliance-noncompliant")),
        None => ("unknown", tr.t("compliance-unknown")),
    }
}

fn display_name(d: &Device) -> String {
    d.device_name
        .clone()
        .or_else(|| d.model_name.clone())
        .or_else(|| d.model.clone())
        .unwrap_or_else(|| d.id.clone())
}

fn row(tr: Tr, d: &Device) -> DeviceRow {
    let (class, label) = compliance(tr, d);
    DeviceRow {
        id: d.id.clone(),
        name: display_name(d),
        platform: platform_label(tr, d.platform),
        os: format!(
            "{} {}",
            d.os_family,
            d.os_version.clone().unwrap_or_default()
        )
        .trim()
        .to_owned(),
        serial: d
            .reported_serial_number
            .clone()
            .or_else(|| d.serial_number.clone())
            .unwrap_or_default(),
        user: d.assigned_user.clone().unwrap_or_default(),
        compliance: class,
        compliance_label: label,
        last_seen: tr.opt_datetime(&d.last_seen_at),
    }
}

fn platform_label(tr: Tr, p: Platform) -> String {
    match p {
        Platform::Apple => tr.t("platform-apple"),
        Platform::Android => tr.t("platform-android"),
    }
}

#[derive(Deserialize, Default)]
struct ListQuery {
    q: Option<String>,
    platform: Option<String>,
    compliance: Option<String>,
    user: Option<String>,
    group: Option<String>,
    offset: Option<u64>,
    done: Option<String>,
}

pub struct Choice {
    pub value: &'static str,
    pub label: String,
    pub selected: bool,
}

#[derive(Template)]
#[template(path = "console/devices.html")]
struct ListPage {
    p: Page,
    rows: Vec<DeviceRow>,
    q: String,
    user: String,
    group: String,
    platforms: Vec<Choice>,
    compliances: Vec<Choice>,
    summary: String,
    previous: Option<String>,
    next: Option<String>,
    may_query: bool,
    may_lock: bool,
}

fn choices(tr: Tr, options: &[(&'static str, &str)], selected: &str) -> Vec<Choice> {
    options
        .iter()
        .map(|(value, id)| Choice {
            value,
            label: tr.t(id),
            selected: *value == selected,
        })
        .collect()
}

async fn list(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ConsoleError> {
    let admin = page_admin(&req).await?;
    admin.require("GET", "/devices")?;
    let tr = admin.tr;
    let platform = query
        .platform
        .as_deref()
        .filter(|p| matches!(*p, "apple" | "android"));
    let noncompliant = match query.compliance.as_deref() {
        Some("noncompliant") => Some(true),
        Some("compliant") => Some(false),
        _ => None,
    };
    let offset = query.offset.unwrap_or(0);
    let filter = DeviceFilter {
        platform: platform.map(str::to_owned),
        search: query.q.clone().filter(|q| !q.trim().is_empty()),
        noncompliant,
        user: query.user.clone().filter(|u| !u.trim().is_empty()),
        group: query.group.clone().filter(|g| !g.trim().is_empty()),
        offset: Some(offset),
        limit: Some(PAGE_SIZE),
        ..Default::default()
    };
    let page = state
        .store
        .devices(&filter)
        .await
        .map_err(|e| service(tr)(e.into()))?;
    let link = |offset: u64| {
        let mut q = url_query(&[
            ("q", filter.search.as_deref()),
            ("platform", platform),
            ("compliance", query.compliance.as_deref()),
            ("user", filter.user.as_deref()),
            ("group", filter.group.as_deref()),
        ]);
        q.push_str(&format!("&offset={offset}"));
        format!("/console/devices?{}", q.trim_start_matches('&'))
    };
    let shown = page.items.len() as u64;
    let list = ListPage {
        p: Page::new(
            &admin,
            tr.t("nav-devices"),
            "/console/devices",
            idle_secs(&state),
        )
        .with_notice(notice(tr, query.done.as_deref())),
        rows: page.items.iter().map(|d| row(tr, d)).collect(),
        q: query.q.clone().unwrap_or_default(),
        user: query.user.clone().unwrap_or_default(),
        group: query.group.clone().unwrap_or_default(),
        platforms: choices(
            tr,
            &[
                ("", "filter-any"),
                ("apple", "platform-apple"),
                ("android", "platform-android"),
            ],
            platform.unwrap_or_default(),
        ),
        compliances: choices(
            tr,
            &[
                ("", "filter-any"),
                ("compliant", "compliance-compliant"),
                ("noncompliant", "compliance-noncompliant"),
            ],
            query.compliance.as_deref().unwrap_or_default(),
        ),
        summary: tr.n("devices-count", page.total as i64),
        previous: (offset > 0).then(|| link(offset.saturating_sub(PAGE_SIZE))),
        next: (offset + shown < page.total).then(|| link(offset + PAGE_SIZE)),
        may_query: admin.has("devices.query"),
        may_lock: admin.has("devices.lock"),
    };
    html(&list)
}

fn url_query(pairs: &[(&str, Option<&str>)]) -> String {
    let mut out = String::new();
    for (k, v) in pairs {
        if let Some(v) = v.filter(|v| !v.is_empty()) {
            out.push('&');
            out.push_str(k);
            out.push('=');
            out.push_str(
                &percent_encoding::utf8_percent_encode(v, percent_encoding::NON_ALPHANUMERIC)
                    .to_string(),
            );
        }
    }
    out
}

async fn device(state: &AppState, tr: Tr, id: &str) -> Result<Device, ConsoleError> {
    if uuid::Uuid::parse_str(id).is_err() {
        return Err(ConsoleError::NotFound(tr));
    }
    state
        .store
        .device(id)
        .await
        .map_err(|e| service(tr)(e.into()))?
        .ok_or(ConsoleError::NotFound(tr))
}

pub struct Fact {
    pub label: String,
    pub value: String,
}

pub struct PolicyStateRow {
    pub name: String,
    pub version: String,
    pub status: String,
}

pub struct CommandRow {
    pub request_type: String,
    pub status: String,
    pub status_class: String,
    pub created: String,
    pub created_by: String,
    pub completed: String,
    pub result: String,
}

#[derive(Template)]
#[template(path = "console/device.html")]
struct DetailPage {
    p: Page,
    id: String,
    facts: Vec<Fact>,
    compliance: &'static str,
    compliance_label: String,
    reasons: Vec<String>,
    checked: String,
    /// The policies delivered to the device (None: the admin may not read policies).
    policies: Option<Vec<PolicyStateRow>>,
    commands: Vec<CommandRow>,
    may_lock: bool,
    may_wipe: bool,
    android: bool,
    /// What the wipe's confirmation must be: the serial number, as the label says.
    confirm_hint: String,
}

async fn detail(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<String>,
    query: web::Query<DoneQuery>,
) -> Result<HttpResponse, ConsoleError> {
    let admin = page_admin(&req).await?;
    admin.require("GET", "/devices/{id}")?;
    render_detail(&state, &admin, &id, query.done.as_deref(), None).await
}

async fn render_detail(
    state: &AppState,
    admin: &ConsoleAdmin,
    id: &str,
    done: Option<&str>,
    error: Option<String>,
) -> Result<HttpResponse, ConsoleError> {
    let tr = admin.tr;
    let d = device(state, tr, id).await?;
    let history = state
        .store
        .device_commands(&d.id, 0, 50)
        .await
        .map_err(|e| service(tr)(e.into()))?;
    let (class, label) = compliance(tr, &d);
    let fact = |id: &str, value: Option<String>| Fact {
        label: tr.t(id),
        value: value
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| "—".into()),
    };
    let serial = d
        .reported_serial_number
        .clone()
        .or_else(|| d.serial_number.clone());
    let facts = vec![
        fact("device-name", d.device_name.clone()),
        fact("device-platform", Some(platform_label(tr, d.platform))),
        fact(
            "device-model",
            d.model_name.clone().or_else(|| d.model.clone()),
        ),
        fact(
            "device-os",
            Some(format!(
                "{} {}",
                d.os_family,
                d.os_version.clone().unwrap_or_default()
            )),
        ),
        fact("device-serial", serial.clone()),
        fact("device-udid", d.udid.clone()),
        fact("device-imei", d.imei.clone()),
        fact("device-user", d.assigned_user.clone()),
        fact("device-group", d.assigned_group.clone()),
        fact("device-enrolled-at", Some(tr.opt_datetime(&d.enrolled_at))),
        fact("device-last-seen", Some(tr.opt_datetime(&d.last_seen_at))),
        fact(
            "device-identity",
            Some(if d.identity_revoked_at.is_some() {
                tr.t("identity-revoked")
            } else {
                tr.t1(
                    "identity-valid-until",
                    &d.identity_not_after
                        .as_deref()
                        .map(|at| certificate_time(tr, at))
                        .unwrap_or_else(|| "—".into()),
                )
            }),
        ),
    ];
    let commands = history
        .items
        .iter()
        .map(|c| {
            let status = format!("{:?}", c.status);
            CommandRow {
                request_type: c.request_type.clone(),
                status: tr.t(&format!("status-{}", status.to_ascii_lowercase())),
                status_class: status.to_ascii_lowercase(),
                created: tr.datetime(&c.created_at),
                created_by: c.created_by.clone(),
                completed: tr.opt_datetime(&c.completed_at),
                result: result_summary(c.result.as_ref()),
            }
        })
        .collect();
    let policies = if admin.has("policies.read") {
        let outputs = state
            .store
            .policy_outputs(std::slice::from_ref(&d.id))
            .await
            .map_err(|e| service(tr)(e.into()))?;
        let names = state.policies.list().await.map_err(service(tr))?;
        Some(
            outputs
                .iter()
                .map(|o| PolicyStateRow {
                    name: names
                        .iter()
                        .find(|p| p.id == o.policy_id)
                        .map(|p| p.name.clone())
                        .unwrap_or_else(|| o.policy_id.clone()),
                    version: tr.num(o.policy_version.into()),
                    status: tr.t(&format!("policy-output-{}", o.status)),
                })
                .collect(),
        )
    } else {
        None
    };
    let android = d.platform == Platform::Android;
    let page = DetailPage {
        policies,
        p: Page::new(
            admin,
            display_name(&d),
            "/console/devices",
            idle_secs(state),
        )
        .with_notice(notice(tr, done))
        .with_error(error),
        id: d.id.clone(),
        facts,
        compliance: class,
        compliance_label: label,
        reasons: d
            .compliance_reasons
            .iter()
            .map(|r| super::reasons::translate(tr, r))
            .collect(),
        checked: tr.opt_datetime(&d.compliance_checked_at),
        commands,
        may_lock: admin.may("POST", "/devices/{id}/lock") && d.identity_revoked_at.is_none(),
        may_wipe: admin.may("POST", "/devices/{id}/wipe") && d.identity_revoked_at.is_none(),
        android,
        confirm_hint: if d.reported_serial_number.is_some() {
            tr.t("wipe-type-serial")
        } else {
            tr.t("wipe-type-id")
        },
    };
    html(&page)
}

/// A certificate's notAfter as OpenSSL prints it ("Dec  2 17:56:22 2027 GMT"), in
/// the page's language; as it is when it does not parse.
fn certificate_time(tr: Tr, at: &str) -> String {
    chrono::NaiveDateTime::parse_from_str(at, "%b %e %H:%M:%S %Y GMT")
        .map(|t| tr.datetime(&t.and_utc()))
        .unwrap_or_else(|_| at.to_owned())
}

/// What a command's result says in a few words: the device's error chain, if any.
fn result_summary(result: Option<&serde_json::Value>) -> String {
    let Some(chain) = result
        .and_then(|r| r.get("error_chain"))
        .and_then(|c| c.as_array())
        .filter(|c| !c.is_empty())
    else {
        return String::new();
    };
    chain
        .iter()
        .map(|e| {
            let code = e
                .get("ErrorCode")
                .map(|c| c.to_string())
                .unwrap_or_default();
            let text = e
                .get("LocalizedDescription")
                .or_else(|| e.get("USEnglishDescription"))
                .and_then(|d| d.as_str())
                .unwrap_or_default();
            format!("{code} {text}").trim().to_owned()
        })
        .collect::<Vec<_>>()
        .join("; ")
}

async fn lock(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ConsoleError> {
    let (admin, form) = form_admin(&req, &body, false).await?;
    admin.require("POST", "/devices/{id}/lock")?;
    let tr = admin.tr;
    let d = device(&state, tr, &id).await?;
    let request = LockRequest {
        message: form.opt("message"),
        phone_number: form.opt("phone_number"),
        pin: form.opt("pin"),
    };
    match lock_device(&state, &admin.caller.identity, &d, request).await {
        Ok(_) => Ok(redirect(&format!("/console/devices/{}?done=locked", d.id))),
        Err(e) => render_detail(&state, &admin, &d.id, None, Some(e.message)).await,
    }
}

async fn wipe(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ConsoleError> {
    let (admin, form) = form_admin(&req, &body, false).await?;
    admin.require("POST", "/devices/{id}/wipe")?;
    let tr = admin.tr;
    let d = device(&state, tr, &id).await?;
    let request = WipeRequest {
        confirm: form.opt("confirm"),
        ..Default::default()
    };
    match wipe_device(&state, &admin.caller.identity, &d, request).await {
        Ok(_) => Ok(redirect(&format!(
            "/console/devices/{}?done=wipe-queued",
            d.id
        ))),
        Err(e) => {
            let message = if e.status.is_client_error() {
                tr.t1("wipe-refused", &e.message)
            } else {
                e.message
            };
            render_detail(&state, &admin, &d.id, None, Some(message)).await
        }
    }
}

/// A bulk action on the devices ticked in the list: each device's outcome, then
/// the commands' progress page.
async fn bulk(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, ConsoleError> {
    let (admin, form) = form_admin(&req, &body, false).await?;
    let tr = admin.tr;
    let ids: Vec<String> = form
        .all("device")
        .into_iter()
        .filter(|id| uuid::Uuid::parse_str(id).is_ok())
        .take(PAGE_SIZE as usize)
        .collect();
    if ids.is_empty() {
        return Err(ConsoleError::BadRequest(tr, tr.t("bulk-none-selected")));
    }
    let action = form.get("action");
    let mut uuids = Vec::new();
    let mut refused = Vec::new();
    let devices = state
        .store
        .devices_by_id(&ids)
        .await
        .map_err(|e| service(tr)(e.into()))?;
    match action {
        "query" => {
            admin.require_right("devices.query")?;
            let apple: Vec<String> = devices
                .iter()
                .filter(|d| d.platform == Platform::Apple && d.identity_revoked_at.is_none())
                .map(|d| d.id.clone())
                .collect();
            if !apple.is_empty() {
                let queued = state
                    .commands
                    .queue(
                        &admin.caller.identity,
                        &apple,
                        &CommandSpec::DeviceInformation { queries: None },
                        &QueueOptions::default(),
                    )
                    .await
                    .map_err(service(tr))?;
                uuids.extend(queued.into_iter().map(|q| q.command_uuid));
            }
            refused.extend(
                devices
                    .iter()
                    .filter(|d| !apple.contains(&d.id))
                    .map(|d| format!("{}: {}", display_name(d), tr.t("bulk-not-apple"))),
            );
        }
        "lock" => {
            admin.require_right("devices.lock")?;
            for d in &devices {
                match lock_device(&state, &admin.caller.identity, d, LockRequest::default()).await {
                    Ok(v) => {
                        if let Some(u) = v.get("command_uuid").and_then(|u| u.as_str()) {
                            uuids.push(u.to_owned());
                        }
                    }
                    Err(e) => refused.push(format!("{}: {}", display_name(d), e.message)),
                }
            }
        }
        _ => return Err(ConsoleError::BadRequest(tr, tr.t("bulk-unknown-action"))),
    }
    render_progress(&state, &admin, &uuids, refused).await
}

#[derive(Template)]
#[template(path = "console/progress.html")]
struct ProgressPage {
    p: Page,
    rows: Vec<ProgressRow>,
    refused: Vec<String>,
    summary: String,
    finished: bool,
    refresh_url: String,
}

pub struct ProgressRow {
    pub device_id: String,
    pub request_type: String,
    pub status: String,
    pub status_class: String,
}

#[derive(Deserialize)]
struct ProgressQuery {
    c: Option<String>,
}

async fn progress(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: web::Query<ProgressQuery>,
) -> Result<HttpResponse, ConsoleError> {
    let admin = page_admin(&req).await?;
    admin.require("GET", "/commands/{uuid}")?;
    let uuids: Vec<String> = query
        .c
        .as_deref()
        .unwrap_or_default()
        .split(',')
        .filter(|u| uuid::Uuid::parse_str(u).is_ok())
        .take(PAGE_SIZE as usize)
        .map(str::to_owned)
        .collect();
    render_progress(&state, &admin, &uuids, Vec::new()).await
}

async fn render_progress(
    state: &AppState,
    admin: &ConsoleAdmin,
    uuids: &[String],
    refused: Vec<String>,
) -> Result<HttpResponse, ConsoleError> {
    let tr = admin.tr;
    let mut rows = Vec::new();
    let mut done = 0i64;
    for uuid in uuids {
        let Ok(c) = state.commands.show(uuid).await else {
            continue;
        };
        let status = format!("{:?}", c.status).to_ascii_lowercase();
        if !matches!(status.as_str(), "pending" | "sent" | "notnow") {
            done += 1;
        }
        rows.push(ProgressRow {
            device_id: c.device_id,
            request_type: c.request_type,
            status: tr.t(&format!("status-{status}")),
            status_class: status,
        });
    }
    let total = rows.len() as i64;
    let page = ProgressPage {
        p: Page::new(
            admin,
            tr.t("progress-title"),
            "/console/devices",
            idle_secs(state),
        ),
        summary: format!("{} / {}", tr.num(done), tr.n("commands-count", total)),
        finished: done == total,
        refresh_url: format!("/console/devices/progress?c={}", uuids.join(",")),
        rows,
        refused,
    };
    html(&page)
}
