//! Users and groups: the office directory's sync state (where it is, the last sync,
//! its error, the next one), the users with their groups and devices (all, or the
//! off-boarding list of disabled ones, as `GET /users?disabled=` gives them) and the
//! groups with their number of members, all from the directory service the API
//! calls; and "sync now" for an admin with `directory.write`, as `POST
//! /directory/sync`.

use super::i18n::Tr;
use super::login::idle_secs;
use super::page::Page;
use super::session::{form_admin, page_admin, ConsoleAdmin};
use super::{html, redirect, service, ConsoleError};
use crate::http::AppState;
use crate::services::directory::{DirectoryService, UserDetail};
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use serde::Deserialize;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/directory", web::get().to(page))
        .route("/directory/sync", web::post().to(sync));
}

const PAGE_SIZE: usize = 100;

/// What `mdm directory configure` needs (shown when no directory is configured).
const CONFIGURE_COMMAND: &str = "mdm directory configure --url ldaps://dc1.example --bind-dn \"CN=mdm-reader,OU=Service,DC=example\" --bind-password-file reader.pass --base-dn \"DC=example\" --flavor active-directory";

pub struct Fact {
    pub label: String,
    pub value: String,
}

pub struct SourceSection {
    pub facts: Vec<Fact>,
    /// ok, error, or warning (never synced).
    pub state: &'static str,
    pub state_label: String,
    pub error: Option<String>,
}

pub struct UserRow {
    pub username: String,
    pub display_name: String,
    pub email: String,
    pub department: String,
    pub groups: String,
    pub source: String,
    pub disabled: bool,
    pub state_label: String,
    pub disabled_detail: String,
    pub devices: String,
}

pub struct GroupRow {
    pub name: String,
    pub source: String,
    pub members: String,
}

pub struct Choice {
    pub value: &'static str,
    pub label: String,
    pub selected: bool,
}

#[derive(Template)]
#[template(path = "console/directory.html")]
struct DirectoryPage {
    p: Page,
    source: Option<SourceSection>,
    configure_command: &'static str,
    may_sync: bool,
    users: Vec<UserRow>,
    users_summary: String,
    states: Vec<Choice>,
    groups: Vec<GroupRow>,
    groups_summary: String,
    previous: Option<String>,
    next: Option<String>,
}

#[derive(Deserialize, Default)]
struct Query {
    /// `active`, `disabled`, or all.
    state: Option<String>,
    offset: Option<usize>,
    done: Option<String>,
}

fn source_label(tr: Tr, source: &str) -> String {
    match source {
        "ldap" => tr.t("directory-source-ldap"),
        "csv" => tr.t("directory-source-csv"),
        "manual" => tr.t("directory-source-manual"),
        other => other.to_owned(),
    }
}

fn user_row(tr: Tr, u: &UserDetail) -> UserRow {
    let v = &u.user;
    let dash = |s: String| if s.is_empty() { "—".to_owned() } else { s };
    UserRow {
        username: v.username.clone(),
        display_name: v.display_name.clone(),
        email: dash(v.email.clone()),
        department: dash(v.department.clone().unwrap_or_default()),
        groups: dash(v.groups.join(", ")),
        source: source_label(tr, &v.source),
        disabled: v.disabled,
        state_label: if v.disabled {
            tr.t("directory-user-disabled")
        } else {
            tr.t("directory-user-active")
        },
        disabled_detail: match (&u.disabled_at, &u.disabled_reason) {
            (Some(at), Some(why)) => format!("{} · {why}", tr.datetime(at)),
            (Some(at), None) => tr.datetime(at),
            (None, Some(why)) => why.clone(),
            (None, None) => String::new(),
        },
        devices: tr.n("devices-count", u.devices.len() as i64),
    }
}

/// The last sync's figures (`{"created": 3, ...}`) as "created: 3, ...".
fn counts(v: &serde_json::Value) -> String {
    v.as_object()
        .map(|o| {
            o.iter()
                .map(|(k, v)| format!("{k}: {v}"))
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
}

async fn source_section(
    dir: &DirectoryService,
    tr: Tr,
) -> Result<Option<SourceSection>, ConsoleError> {
    let Some(s) = dir.source().await.map_err(service(tr))? else {
        return Ok(None);
    };
    let fact = |label: String, value: String| Fact {
        label,
        value: if value.trim().is_empty() {
            "—".into()
        } else {
            value
        },
    };
    let (state, state_label) = match (s.last_sync_at, s.last_sync_status.as_deref()) {
        (None, _) => ("warning", tr.t("directory-never-synced")),
        (Some(_), Some("failed")) => ("error", tr.t("health-failing")),
        (Some(_), _) if s.last_sync_error.is_some() => ("error", tr.t("health-failing")),
        (Some(_), _) => ("ok", tr.t("health-ok")),
    };
    let facts = vec![
        fact(tr.t("directory-url"), s.url.clone()),
        fact(
            tr.t("directory-flavor"),
            match s.flavor.as_str() {
                "active_directory" => "Active Directory".to_owned(),
                "openldap" => "OpenLDAP".to_owned(),
                other => other.to_owned(),
            },
        ),
        fact(tr.t("directory-base-dn"), s.base_dn.clone()),
        fact(tr.t("directory-bind-dn"), s.bind_dn.clone()),
        fact(
            tr.t("directory-last-sync"),
            tr.opt_datetime(&s.last_sync_at),
        ),
        fact(
            tr.t("directory-last-counts"),
            s.last_sync_counts.as_ref().map(counts).unwrap_or_default(),
        ),
        fact(
            tr.t("directory-next-sync"),
            if s.interval_seconds > 0 {
                tr.opt_datetime(&s.next_sync_at)
            } else {
                tr.t("directory-no-schedule")
            },
        ),
        fact(
            tr.t("directory-configured"),
            format!("{} · {}", tr.datetime(&s.updated_at), s.updated_by),
        ),
    ];
    Ok(Some(SourceSection {
        facts,
        state,
        state_label,
        error: s.last_sync_error.clone(),
    }))
}

async fn page(
    state: web::Data<AppState>,
    dir: web::Data<DirectoryService>,
    req: HttpRequest,
    query: web::Query<Query>,
) -> Result<HttpResponse, ConsoleError> {
    let admin = page_admin(&req).await?;
    let notice = match query.done.as_deref() {
        Some("synced") => Some(admin.tr.t("directory-done-synced")),
        _ => None,
    };
    render(&state, &dir, &admin, &query, notice, None).await
}

async fn render(
    state: &AppState,
    dir: &DirectoryService,
    admin: &ConsoleAdmin,
    query: &Query,
    notice: Option<String>,
    error: Option<String>,
) -> Result<HttpResponse, ConsoleError> {
    admin.require("GET", "/directory/source")?;
    admin.require("GET", "/users")?;
    admin.require("GET", "/groups")?;
    let tr = admin.tr;
    let err = service(tr);
    let filter = match query.state.as_deref() {
        Some("active") => Some(false),
        Some("disabled") => Some(true),
        _ => None,
    };
    let source = source_section(dir, tr).await?;
    let users = dir.users(filter).await.map_err(&err)?;
    let groups = dir.groups().await.map_err(&err)?;
    let offset = query.offset.unwrap_or(0).min(users.len());
    let shown: Vec<UserRow> = users
        .iter()
        .skip(offset)
        .take(PAGE_SIZE)
        .map(|u| user_row(tr, u))
        .collect();
    let state_value = match filter {
        Some(false) => "active",
        Some(true) => "disabled",
        None => "",
    };
    let link = |offset: usize| {
        let mut to = format!("/console/directory?offset={offset}");
        if !state_value.is_empty() {
            to.push_str("&state=");
            to.push_str(state_value);
        }
        to
    };
    let page = DirectoryPage {
        p: Page::new(
            admin,
            tr.t("nav-directory"),
            "/console/directory",
            idle_secs(state),
        )
        .with_notice(notice)
        .with_error(error),
        source,
        configure_command: CONFIGURE_COMMAND,
        may_sync: admin.may("POST", "/directory/sync"),
        users_summary: tr.n("directory-users-count", users.len() as i64),
        previous: (offset > 0).then(|| link(offset.saturating_sub(PAGE_SIZE))),
        next: (offset + shown.len() < users.len()).then(|| link(offset + PAGE_SIZE)),
        users: shown,
        states: [
            ("", "filter-any"),
            ("active", "directory-user-active"),
            ("disabled", "directory-user-disabled"),
        ]
        .into_iter()
        .map(|(value, id)| Choice {
            value,
            label: tr.t(id),
            selected: value == state_value,
        })
        .collect(),
        groups_summary: tr.n("directory-groups-count", groups.len() as i64),
        groups: groups
            .iter()
            .map(|g| GroupRow {
                name: g.name.clone(),
                source: source_label(tr, &g.source),
                members: tr.n("directory-members-count", g.members as i64),
            })
            .collect(),
    };
    html(&page)
}

async fn sync(
    state: web::Data<AppState>,
    dir: web::Data<DirectoryService>,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, ConsoleError> {
    let (admin, _) = form_admin(&req, &body, false).await?;
    admin.require("POST", "/directory/sync")?;
    let tr = admin.tr;
    let error = match dir.sync(admin.name()).await {
        Ok(Ok(_)) => return Ok(redirect("/console/directory?done=synced")),
        Ok(Err(why)) => tr.t1("directory-sync-failed", &why),
        Err(e) => tr.t1(
            "directory-sync-failed",
            &ConsoleError::from_service(tr, e).to_string(),
        ),
    };
    render(&state, &dir, &admin, &Query::default(), None, Some(error)).await
}
