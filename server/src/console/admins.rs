//! Admins and roles: every admin account (groups, roles, second factor, last login,
//! disabled), the role matrix as `GET /roles/matrix` gives it (roles against rights,
//! which roles are critical, which groups hold them), and the account actions of the
//! API with its rights: disable (its sessions and tokens refused from the next
//! request on), enable, and reset the second factor (its sessions end).

use super::i18n::Tr;
use super::login::idle_secs;
use super::page::Page;
use super::session::{form_admin, page_admin, ConsoleAdmin};
use super::{html, redirect, service, ConsoleError};
use crate::http::AppState;
use crate::services::admins::AdminView;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use serde::Deserialize;
use serde_json::Value;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/admins", web::get().to(list))
        .route("/admins/{name}/disable", web::post().to(disable))
        .route("/admins/{name}/enable", web::post().to(enable))
        .route("/admins/{name}/reset-mfa", web::post().to(reset_mfa));
}

pub struct AdminRow {
    pub name: String,
    /// The name as a path segment of the action URLs.
    pub path: String,
    pub display_name: String,
    pub groups: String,
    pub roles: String,
    pub mfa: bool,
    pub mfa_label: String,
    pub last_login: String,
    pub disabled: bool,
    pub state_label: String,
    pub disabled_detail: String,
    /// The admin looking at the page (it cannot disable itself).
    pub is_self: bool,
}

/// What a path segment or query value may carry as it is (RFC 3986's unreserved).
const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

fn encode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, SEGMENT).to_string()
}

fn admin_row(tr: Tr, me: &str, a: &AdminView) -> AdminRow {
    let dash = |s: String| if s.is_empty() { "—".to_owned() } else { s };
    AdminRow {
        name: a.name.clone(),
        path: encode(&a.name),
        display_name: a.display_name.clone(),
        groups: dash(a.groups.join(", ")),
        roles: dash(a.roles.join(", ")),
        mfa: a.mfa_enabled,
        mfa_label: if a.mfa_enabled {
            tr.t("admins-mfa-on")
        } else {
            tr.t("admins-mfa-off")
        },
        last_login: match (&a.last_login_at, &a.last_login_address) {
            (Some(at), Some(from)) => format!("{} · {from}", tr.datetime(at)),
            (at, _) => tr.opt_datetime(at),
        },
        disabled: a.disabled,
        state_label: if a.disabled {
            tr.t("admins-disabled")
        } else {
            tr.t("admins-active")
        },
        disabled_detail: match (&a.disabled_at, &a.disabled_reason) {
            (Some(at), Some(why)) => format!("{} · {why}", tr.datetime(at)),
            (Some(at), None) => tr.datetime(at),
            _ => String::new(),
        },
        is_self: a.name == me,
    }
}

/// One right's line of the matrix: which roles grant it.
pub struct RightRow {
    pub right: String,
    pub allows: String,
    pub granted: Vec<bool>,
}

pub struct RoleColumn {
    pub name: String,
    pub description: String,
    pub critical: bool,
    pub critical_label: String,
    pub groups: String,
    pub rights: String,
}

/// What a right allows, in the page's language (the service's English when a right
/// is newer than the catalogue).
fn right_allows(tr: Tr, right: &str) -> Option<String> {
    Some(match right {
        "devices.read" => tr.t("right-devices-read"),
        "devices.query" => tr.t("right-devices-query"),
        "devices.lock" => tr.t("right-devices-lock"),
        "devices.lost_mode" => tr.t("right-devices-lost-mode"),
        "devices.wipe" => tr.t("right-devices-wipe"),
        "devices.manage" => tr.t("right-devices-manage"),
        "commands.send" => tr.t("right-commands-send"),
        "enrollments.read" => tr.t("right-enrollments-read"),
        "enrollments.write" => tr.t("right-enrollments-write"),
        "policies.read" => tr.t("right-policies-read"),
        "policies.write" => tr.t("right-policies-write"),
        "directory.read" => tr.t("right-directory-read"),
        "directory.write" => tr.t("right-directory-write"),
        "users.offboard" => tr.t("right-users-offboard"),
        "push.read" => tr.t("right-push-read"),
        "push.write" => tr.t("right-push-write"),
        "android.read" => tr.t("right-android-read"),
        "android.write" => tr.t("right-android-write"),
        "incidents.read" => tr.t("right-incidents-read"),
        "incidents.write" => tr.t("right-incidents-write"),
        "incidents.approve" => tr.t("right-incidents-approve"),
        "events.read" => tr.t("right-events-read"),
        "exports" => tr.t("right-exports"),
        "admins.read" => tr.t("right-admins-read"),
        "admins.manage" => tr.t("right-admins-manage"),
        "roles.manage" => tr.t("right-roles-manage"),
        "audit.read" => tr.t("right-audit-read"),
        _ => return None,
    })
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// The matrix as the service gives it (the JSON of `GET /roles/matrix`): roles as
/// columns, rights as lines.
fn matrix(tr: Tr, m: &Value) -> (Vec<RoleColumn>, Vec<RightRow>) {
    let rows = m["rows"].as_array().cloned().unwrap_or_default();
    let roles: Vec<(RoleColumn, Vec<String>)> = rows
        .iter()
        .map(|r| {
            let rights = strings(&r["rights"]);
            let critical = r["critical"].as_bool().unwrap_or(false);
            let groups = strings(&r["granted_to_groups"]).join(", ");
            (
                RoleColumn {
                    name: r["role_name"].as_str().unwrap_or_default().to_owned(),
                    description: r["description"].as_str().unwrap_or_default().to_owned(),
                    critical,
                    critical_label: if critical {
                        tr.t("admins-critical-yes")
                    } else {
                        tr.t("admins-critical-no")
                    },
                    groups: if groups.is_empty() {
                        "—".into()
                    } else {
                        groups
                    },
                    rights: tr.n("admins-rights-count", rights.len() as i64),
                },
                rights,
            )
        })
        .collect();
    let lines = m["rights"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|r| {
            let right = r["right"].as_str().unwrap_or_default().to_owned();
            RightRow {
                allows: right_allows(tr, &right)
                    .unwrap_or_else(|| r["allows"].as_str().unwrap_or_default().to_owned()),
                granted: roles.iter().map(|(_, rs)| rs.contains(&right)).collect(),
                right,
            }
        })
        .collect();
    (roles.into_iter().map(|(c, _)| c).collect(), lines)
}

#[derive(Template)]
#[template(path = "console/admins.html")]
struct AdminsPage {
    p: Page,
    admins: Vec<AdminRow>,
    summary: String,
    roles: Vec<RoleColumn>,
    rights: Vec<RightRow>,
    may_manage: bool,
}

#[derive(Deserialize)]
struct Query {
    done: Option<String>,
    #[serde(rename = "admin")]
    name: Option<String>,
}

/// The notice a redirect after an action names (only these: a link cannot put
/// words on the page, except the admin's name, shown as text).
fn notice(tr: Tr, done: Option<&str>, name: Option<&str>) -> Option<String> {
    let name = name.unwrap_or_default();
    match done? {
        "disabled" => Some(tr.t1("admins-done-disabled", name)),
        "enabled" => Some(tr.t1("admins-done-enabled", name)),
        "mfa-reset" => Some(tr.t1("admins-done-mfa-reset", name)),
        _ => None,
    }
}

async fn list(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: web::Query<Query>,
) -> Result<HttpResponse, ConsoleError> {
    let admin = page_admin(&req).await?;
    let notice = notice(admin.tr, query.done.as_deref(), query.name.as_deref());
    render(&state, &admin, notice, None).await
}

async fn render(
    state: &AppState,
    admin: &ConsoleAdmin,
    notice: Option<String>,
    error: Option<String>,
) -> Result<HttpResponse, ConsoleError> {
    admin.require("GET", "/admins")?;
    admin.require("GET", "/roles/matrix")?;
    let tr = admin.tr;
    let err = service(tr);
    let admins = state.admins.accounts.admins().await.map_err(&err)?;
    let m = state.admins.accounts.matrix().await.map_err(&err)?;
    let (roles, rights) = matrix(tr, &m);
    let page = AdminsPage {
        p: Page::new(
            admin,
            tr.t("nav-admins"),
            "/console/admins",
            idle_secs(state),
        )
        .with_notice(notice)
        .with_error(error),
        summary: tr.n("admins-count", admins.len() as i64),
        admins: admins
            .iter()
            .map(|a| admin_row(tr, admin.name(), a))
            .collect(),
        roles,
        rights,
        may_manage: admin.may("POST", "/admins/{name}/disable"),
    };
    html(&page)
}

/// After an action: the list with its notice, or the list again with the service's
/// refusal.
async fn answer(
    state: &AppState,
    admin: &ConsoleAdmin,
    outcome: Result<AdminView, crate::services::ServiceError>,
    done: &str,
) -> Result<HttpResponse, ConsoleError> {
    match outcome {
        Ok(a) => Ok(redirect(&format!(
            "/console/admins?done={done}&admin={}",
            encode(&a.name)
        ))),
        Err(e) => {
            let message = ConsoleError::from_service(admin.tr, e).to_string();
            render(state, admin, None, Some(message)).await
        }
    }
}

async fn disable(
    state: web::Data<AppState>,
    req: HttpRequest,
    name: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ConsoleError> {
    let (admin, form) = form_admin(&req, &body, false).await?;
    admin.require("POST", "/admins/{name}/disable")?;
    let outcome = state
        .admins
        .accounts
        .disable(admin.name(), &name, form.opt("reason"))
        .await;
    answer(&state, &admin, outcome, "disabled").await
}

async fn enable(
    state: web::Data<AppState>,
    req: HttpRequest,
    name: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ConsoleError> {
    let (admin, _) = form_admin(&req, &body, false).await?;
    admin.require("POST", "/admins/{name}/enable")?;
    let outcome = state.admins.accounts.enable(admin.name(), &name).await;
    answer(&state, &admin, outcome, "enabled").await
}

async fn reset_mfa(
    state: web::Data<AppState>,
    req: HttpRequest,
    name: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ConsoleError> {
    let (admin, _) = form_admin(&req, &body, false).await?;
    admin.require("DELETE", "/admins/{name}/totp")?;
    let outcome = state.admins.accounts.reset_totp(admin.name(), &name).await;
    answer(&state, &admin, outcome, "mfa-reset").await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::console::i18n::{Lang, Tr};

    /// Every right the service knows is explained in the page's language.
    #[test]
    fn every_right_is_translated() {
        for lang in Lang::ALL {
            for (right, _) in crate::services::admins::roles::RIGHTS {
                let text = right_allows(Tr::new(lang), right)
                    .unwrap_or_else(|| panic!("{right} has no message"));
                assert!(!text.starts_with('['), "{lang:?}: {right}: {text}");
            }
        }
    }
}
