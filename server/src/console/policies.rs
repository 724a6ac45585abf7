//! Policies: the list with their assignments, device groups, and the editor. A
//! policy is edited in a form (its passcode rules, which most offices change) or as
//! its whole file (JSON, TOML or YAML: Wi-Fi, mail and certificates too); either
//! goes first to a preview with the server's own field-level validation, the office
//! rules it breaks, what each platform cannot express, the field-by-field diff with
//! the current version and what applying would queue. Nothing is saved until the
//! admin applies the previewed document. Assignment to device groups, and new groups.
//! The same PolicyService calls and rights as /api/v1/policies.

use super::i18n::Tr;
use super::login::idle_secs;
use super::page::{notice, DoneQuery, Page};
use super::session::{form_admin, page_admin, ConsoleAdmin, Form};
use super::{html, redirect, service, ConsoleError};
use crate::http::AppState;
use crate::services::policies::{parse_text, FieldProblem, NewGroup, PolicyError};
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use serde_json::{json, Value};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/policies", web::get().to(list))
        .route("/policies/new", web::get().to(new_policy))
        .route("/policies/preview", web::post().to(preview))
        .route("/policies/groups", web::post().to(create_group))
        .route("/policies/{name}", web::get().to(editor))
        .route("/policies/{name}/apply", web::post().to(apply))
        .route("/policies/{name}/assignments", web::post().to(assign))
        .route("/policies/{name}/unassign", web::post().to(unassign));
}

/// Auto-lock values the platforms share (minutes).
const AUTO_LOCK: [u32; 7] = [1, 2, 3, 4, 5, 10, 15];
const GROUP_KINDS: [&str; 4] = ["manual", "directory_group", "department", "enrollment"];

pub struct PolicyRowView {
    pub name: String,
    pub version: String,
    pub updated: String,
    pub targets: String,
}

pub struct GroupRowView {
    pub name: String,
    pub kind: String,
    pub matches: String,
    pub devices: String,
}

#[derive(Template)]
#[template(path = "console/policies.html")]
struct ListPage {
    p: Page,
    policies: Vec<PolicyRowView>,
    groups: Vec<GroupRowView>,
    kinds: Vec<(&'static str, String)>,
    may_write: bool,
}

async fn list(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: web::Query<DoneQuery>,
) -> Result<HttpResponse, ConsoleError> {
    let admin = page_admin(&req).await?;
    admin.require("GET", "/policies")?;
    render_list(&state, &admin, query.done.as_deref(), None).await
}

async fn render_list(
    state: &AppState,
    admin: &ConsoleAdmin,
    done: Option<&str>,
    error: Option<String>,
) -> Result<HttpResponse, ConsoleError> {
    let tr = admin.tr;
    let err = service(tr);
    let policies = state.policies.list().await.map_err(&err)?;
    let assignments = state.policies.assignments().await.map_err(&err)?;
    let groups = state.policies.groups().await.map_err(&err)?;
    let page = ListPage {
        p: Page::new(
            admin,
            tr.t("nav-policies"),
            "/console/policies",
            idle_secs(state),
        )
        .with_notice(notice(tr, done))
        .with_error(error),
        policies: policies
            .iter()
            .map(|p| PolicyRowView {
                name: p.name.clone(),
                version: tr.num(p.current_version.into()),
                updated: tr.datetime(&p.updated_at),
                targets: assignments
                    .iter()
                    .filter(|a| a.policy == p.name)
                    .map(|a| a.target_name.clone())
                    .collect::<Vec<_>>()
                    .join(", "),
            })
            .collect(),
        groups: groups
            .iter()
            .map(|g| GroupRowView {
                name: g.group.name.clone(),
                kind: tr.t(&format!("group-kind-{}", g.group.kind.replace('_', "-"))),
                matches: g.group.match_value.clone().unwrap_or_default(),
                devices: tr.n("devices-count", g.devices.len() as i64),
            })
            .collect(),
        kinds: GROUP_KINDS
            .iter()
            .map(|k| (*k, tr.t(&format!("group-kind-{}", k.replace('_', "-")))))
            .collect(),
        may_write: admin.may("PUT", "/policies/{name}"),
    };
    html(&page)
}

async fn create_group(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, ConsoleError> {
    let (admin, form) = form_admin(&req, &body, false).await?;
    admin.require("POST", "/device-groups")?;
    let group = NewGroup {
        name: form.get("name").trim().to_owned(),
        kind: form.get("kind").to_owned(),
        match_value: form.opt("match"),
        description: form.opt("description"),
    };
    match state.policies.create_group(admin.name(), group).await {
        Ok(_) => Ok(redirect("/console/policies?done=group-created")),
        Err(e) => {
            let m = ConsoleError::from_service(admin.tr, e).to_string();
            render_list(&state, &admin, None, Some(m)).await
        }
    }
}

/// The passcode form's values (as typed; kept when the preview refuses them).
#[derive(Default)]
pub struct PasscodeForm {
    pub required: bool,
    pub min_length: String,
    pub alphanumeric: bool,
    pub allow_simple: bool,
    pub max_failed_attempts: String,
    pub auto_lock_minutes: String,
    pub max_age_days: String,
    pub history: String,
    pub grace_period_minutes: String,
}

impl PasscodeForm {
    fn from_document(doc: &Value) -> PasscodeForm {
        let p = &doc["passcode"];
        let n = |k: &str| p[k].as_u64().map(|v| v.to_string()).unwrap_or_default();
        PasscodeForm {
            required: p["required"].as_bool().unwrap_or(false),
            min_length: n("min_length"),
            alphanumeric: p["alphanumeric"].as_bool().unwrap_or(false),
            allow_simple: p["allow_simple"].as_bool().unwrap_or(false),
            max_failed_attempts: n("max_failed_attempts"),
            auto_lock_minutes: n("auto_lock_minutes"),
            max_age_days: n("max_age_days"),
            history: n("history"),
            grace_period_minutes: n("grace_period_minutes"),
        }
    }

    fn from_form(form: &Form) -> PasscodeForm {
        PasscodeForm {
            required: form.get("required") == "on",
            min_length: form.get("min_length").trim().to_owned(),
            alphanumeric: form.get("alphanumeric") == "on",
            allow_simple: form.get("allow_simple") == "on",
            max_failed_attempts: form.get("max_failed_attempts").trim().to_owned(),
            auto_lock_minutes: form.get("auto_lock_minutes").trim().to_owned(),
            max_age_days: form.get("max_age_days").trim().to_owned(),
            history: form.get("history").trim().to_owned(),
            grace_period_minutes: form.get("grace_period_minutes").trim().to_owned(),
        }
    }

    /// Into the document's passcode section; a field that is not a number is the
    /// field's own error (the server's validation then checks the ranges).
    fn to_json(&self, tr: Tr) -> Result<Value, Vec<FieldProblem>> {
        let mut out = json!({
            "required": self.required,
            "alphanumeric": self.alphanumeric,
            "allow_simple": self.allow_simple,
        });
        let mut problems = Vec::new();
        for (key, value) in [
            ("min_length", &self.min_length),
            ("max_failed_attempts", &self.max_failed_attempts),
            ("auto_lock_minutes", &self.auto_lock_minutes),
            ("max_age_days", &self.max_age_days),
            ("history", &self.history),
            ("grace_period_minutes", &self.grace_period_minutes),
        ] {
            if value.is_empty() {
                continue;
            }
            match value.parse::<u32>() {
                Ok(n) => out[key] = json!(n),
                Err(_) => problems.push(FieldProblem {
                    path: format!("passcode.{key}"),
                    message: tr.t("policy-not-a-number"),
                    allowed: None,
                }),
            }
        }
        if problems.is_empty() {
            Ok(out)
        } else {
            Err(problems)
        }
    }
}

pub struct AssignmentRowView {
    pub target: String,
    pub kind: String,
}

#[derive(Template)]
#[template(path = "console/policy.html")]
struct EditorPage {
    p: Page,
    /// Empty for a new policy (the form asks for the name).
    name: String,
    /// A new policy's name as typed (kept when the preview refuses the form).
    typed_name: String,
    is_new: bool,
    description: String,
    passcode: PasscodeForm,
    /// (minutes, selected, label)
    auto_lock: Vec<(u32, bool, String)>,
    file: String,
    format: String,
    field_errors: Vec<FieldProblem>,
    assignments: Vec<AssignmentRowView>,
    groups: Vec<String>,
    may_write: bool,
    version: String,
}

impl EditorPage {
    /// The error for one field of the form, if the validation named it.
    fn error_for(&self, path: &str) -> String {
        self.field_errors
            .iter()
            .filter(|e| e.path == path)
            .map(|e| match &e.allowed {
                Some(a) => format!("{} ({a})", e.message),
                None => e.message.clone(),
            })
            .collect::<Vec<_>>()
            .join("; ")
    }
}

async fn new_policy(
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, ConsoleError> {
    let admin = page_admin(&req).await?;
    admin.require("PUT", "/policies/{name}")?;
    let doc = json!({ "name": "", "passcode": { "required": true, "min_length": 6, "auto_lock_minutes": 5 } });
    render_editor(
        &state,
        &admin,
        EditorInput {
            doc,
            ..Default::default()
        },
    )
    .await
}

async fn editor(
    state: web::Data<AppState>,
    req: HttpRequest,
    name: web::Path<String>,
    query: web::Query<DoneQuery>,
) -> Result<HttpResponse, ConsoleError> {
    let admin = page_admin(&req).await?;
    admin.require("GET", "/policies/{name}")?;
    let view = state
        .policies
        .show(&name)
        .await
        .map_err(service(admin.tr))?;
    render_editor(
        &state,
        &admin,
        EditorInput {
            name: Some(&view.policy.name),
            doc: view.document.clone(),
            done: query.done.as_deref(),
            ..Default::default()
        },
    )
    .await
}

/// What the editor shows: the policy (None: a new one), its document, and when
/// re-shown after a refusal, the file or the form as typed and the fields at fault.
#[derive(Default)]
struct EditorInput<'a> {
    name: Option<&'a str>,
    doc: Value,
    file: Option<(String, String)>,
    passcode: Option<PasscodeForm>,
    field_errors: Vec<FieldProblem>,
    done: Option<&'a str>,
}

async fn render_editor(
    state: &AppState,
    admin: &ConsoleAdmin,
    input: EditorInput<'_>,
) -> Result<HttpResponse, ConsoleError> {
    let EditorInput {
        name,
        doc,
        file,
        passcode,
        field_errors,
        done,
    } = input;
    let doc = &doc;
    let tr = admin.tr;
    let err = service(tr);
    let (assignments, version) = match name {
        Some(n) => {
            let view = state.policies.show(n).await.map_err(&err)?;
            (
                view.assignments
                    .iter()
                    .map(|a| AssignmentRowView {
                        target: a.target_name.clone(),
                        kind: a.target_kind.clone(),
                    })
                    .collect(),
                tr.num(view.policy.current_version.into()),
            )
        }
        None => (Vec::new(), String::new()),
    };
    let groups = state
        .policies
        .groups()
        .await
        .map_err(&err)?
        .into_iter()
        .map(|g| g.group.name)
        .collect();
    let passcode = passcode.unwrap_or_else(|| PasscodeForm::from_document(doc));
    let (file, format) = file.unwrap_or_else(|| {
        (
            serde_json::to_string_pretty(doc).unwrap_or_default(),
            "json".to_owned(),
        )
    });
    let title = match name {
        Some(n) => tr.t1("policy-title", n),
        None => tr.t("policy-new"),
    };
    let error =
        (!field_errors.is_empty()).then(|| tr.n("policy-invalid", field_errors.len() as i64));
    let page = EditorPage {
        p: Page::new(admin, title, "/console/policies", idle_secs(state))
            .with_notice(notice(tr, done))
            .with_error(error),
        name: name.unwrap_or_default().to_owned(),
        typed_name: doc["name"].as_str().unwrap_or_default().to_owned(),
        is_new: name.is_none(),
        description: doc["description"].as_str().unwrap_or_default().to_owned(),
        auto_lock: AUTO_LOCK
            .iter()
            .map(|m| {
                (
                    *m,
                    passcode.auto_lock_minutes == m.to_string(),
                    tr.n("minutes", i64::from(*m)),
                )
            })
            .collect(),
        passcode,
        file,
        format,
        field_errors,
        assignments,
        groups,
        may_write: admin.may("PUT", "/policies/{name}"),
        version,
    };
    html(&page)
}

pub struct ChangeView {
    pub path: String,
    pub before: String,
    pub after: String,
}

#[derive(Template)]
#[template(path = "console/policy_preview.html")]
struct PreviewPage {
    p: Page,
    name: String,
    document: String,
    changes: Vec<ChangeView>,
    findings: Vec<String>,
    notes: Vec<String>,
    delivery: String,
    unchanged: bool,
}

fn shown(v: &Option<Value>) -> String {
    match v {
        None => "—".into(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

/// The form's or the file's document, checked and compared: the preview, or the
/// editor again with the fields at fault.
async fn preview(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, ConsoleError> {
    let (admin, form) = form_admin(&req, &body, false).await?;
    admin.require("POST", "/policies/{name}/diff")?;
    let tr = admin.tr;
    let existing = form.opt("existing");
    // The editor of an existing policy keeps its name; a new one takes the form's.
    let name = existing
        .clone()
        .unwrap_or_else(|| form.get("name").trim().to_owned());
    let current = match &existing {
        Some(n) => Some(state.policies.show(n).await.map_err(service(tr))?.document),
        None => None,
    };
    let (text, format, from_file) = if form.get("editor") == "file" {
        (
            form.get("file").to_owned(),
            form.get("format").to_owned(),
            true,
        )
    } else {
        // The form edits the name, description and passcode rules; the rest of the
        // current document (Wi-Fi, mail, certificates) is kept as it is.
        let mut doc = current.clone().unwrap_or_else(|| json!({}));
        doc["name"] = json!(name);
        match form.opt("description") {
            Some(d) => doc["description"] = json!(d),
            None => {
                if let Some(o) = doc.as_object_mut() {
                    o.remove("description");
                }
            }
        }
        let passcode = PasscodeForm::from_form(&form);
        match passcode.to_json(tr) {
            Ok(p) => doc["passcode"] = p,
            Err(problems) => {
                let input = EditorInput {
                    name: existing.as_deref(),
                    doc,
                    passcode: Some(passcode),
                    field_errors: problems,
                    ..Default::default()
                };
                return render_editor(&state, &admin, input).await;
            }
        }
        (doc.to_string(), "json".to_owned(), false)
    };
    let document = match parse_text(&text, &format) {
        Ok(d) => d,
        Err(PolicyError::Invalid(problems)) => {
            let input = if from_file {
                EditorInput {
                    name: existing.as_deref(),
                    doc: current.clone().unwrap_or_else(|| json!({ "name": name })),
                    file: Some((text, format)),
                    field_errors: problems,
                    ..Default::default()
                }
            } else {
                EditorInput {
                    name: existing.as_deref(),
                    doc: serde_json::from_str(&text).unwrap_or_default(),
                    passcode: Some(PasscodeForm::from_form(&form)),
                    field_errors: problems,
                    ..Default::default()
                }
            };
            return render_editor(&state, &admin, input).await;
        }
        Err(PolicyError::Service(e)) => return Err(ConsoleError::from_service(tr, e)),
    };
    if let Some(n) = &existing {
        if &document.name != n {
            let problems = vec![FieldProblem {
                path: "name".into(),
                message: tr.t1("policy-name-fixed", n),
                allowed: None,
            }];
            let input = EditorInput {
                name: Some(n),
                doc: current.unwrap_or_default(),
                file: Some((text, format)),
                field_errors: problems,
                ..Default::default()
            };
            return render_editor(&state, &admin, input).await;
        }
    }
    // The server's own validation (ranges, references between sections), as
    // `policy check` and the API's save run it.
    let check = state.policies.check(&document);
    if !check.valid {
        let input = if from_file {
            EditorInput {
                name: existing.as_deref(),
                doc: current.clone().unwrap_or_else(|| json!({ "name": name })),
                file: Some((text, format)),
                field_errors: check.errors,
                ..Default::default()
            }
        } else {
            EditorInput {
                name: existing.as_deref(),
                doc: serde_json::from_str(&text).unwrap_or_default(),
                passcode: Some(PasscodeForm::from_form(&form)),
                field_errors: check.errors,
                ..Default::default()
            }
        };
        return render_editor(&state, &admin, input).await;
    }
    let name = document.name.clone();
    let report = match state.policies.diff(&name, document.clone(), None).await {
        Ok(r) => r,
        Err(PolicyError::Invalid(problems)) => {
            let input = EditorInput {
                name: existing.as_deref(),
                doc: serde_json::to_value(&document).unwrap_or_default(),
                file: Some((text, format)),
                field_errors: problems,
                ..Default::default()
            };
            return render_editor(&state, &admin, input).await;
        }
        Err(PolicyError::Service(e)) => return Err(ConsoleError::from_service(tr, e)),
    };
    let d = &report.delivery;
    let page = PreviewPage {
        p: Page::new(
            &admin,
            tr.t1("policy-preview-title", &name),
            "/console/policies",
            idle_secs(&state),
        ),
        document: serde_json::to_string(&document).unwrap_or_default(),
        unchanged: report.current_version.is_some() && report.changes.is_empty(),
        changes: report
            .changes
            .iter()
            .map(|c| ChangeView {
                path: c.path.clone(),
                before: shown(&c.before),
                after: shown(&c.after),
            })
            .collect(),
        findings: report
            .findings
            .iter()
            .map(|f| {
                format!(
                    "{}: {}",
                    f.path,
                    super::reasons::finding(tr, &f.rule, &f.message)
                )
            })
            .collect(),
        notes: report
            .platform_notes
            .iter()
            .map(|n| format!("{} · {}: {}", n.platform, n.path, n.message))
            .collect(),
        delivery: format!(
            "{} · {}",
            tr.n("devices-count", d.devices as i64),
            tr.n(
                "policy-installs",
                d.apple_installs as i64 + d.android_updated as i64
            )
        ),
        name,
    };
    html(&page)
}

/// Saves the previewed document (exactly what the preview showed).
async fn apply(
    state: web::Data<AppState>,
    req: HttpRequest,
    name: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ConsoleError> {
    let (admin, form) = form_admin(&req, &body, false).await?;
    admin.require("PUT", "/policies/{name}")?;
    let tr = admin.tr;
    let document = match parse_text(form.get("document"), "json") {
        Ok(d) => d,
        Err(PolicyError::Invalid(problems)) => {
            return Err(ConsoleError::BadRequest(
                tr,
                problems
                    .iter()
                    .map(|p| format!("{}: {}", p.path, p.message))
                    .collect::<Vec<_>>()
                    .join("; "),
            ))
        }
        Err(PolicyError::Service(e)) => return Err(ConsoleError::from_service(tr, e)),
    };
    match state
        .policies
        .save(admin.name(), &name, document, form.opt("note"))
        .await
    {
        Ok(_) => Ok(redirect(&format!(
            "/console/policies/{}?done=policy-saved",
            encode(&name)
        ))),
        Err(PolicyError::Invalid(problems)) => Err(ConsoleError::BadRequest(
            tr,
            problems
                .iter()
                .map(|p| format!("{}: {}", p.path, p.message))
                .collect::<Vec<_>>()
                .join("; "),
        )),
        Err(PolicyError::Service(e)) => Err(ConsoleError::from_service(tr, e)),
    }
}

/// A policy name as a path segment (RFC 3986's unreserved characters kept).
fn encode(s: &str) -> String {
    const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'~');
    percent_encoding::utf8_percent_encode(s, SEGMENT).to_string()
}

async fn assign(
    state: web::Data<AppState>,
    req: HttpRequest,
    name: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ConsoleError> {
    let (admin, form) = form_admin(&req, &body, false).await?;
    admin.require("POST", "/policies/{name}/assignments")?;
    state
        .policies
        .assign(admin.name(), &name, "group", form.get("group"), 0)
        .await
        .map_err(service(admin.tr))?;
    Ok(redirect(&format!(
        "/console/policies/{}?done=assigned",
        encode(&name)
    )))
}

async fn unassign(
    state: web::Data<AppState>,
    req: HttpRequest,
    name: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ConsoleError> {
    let (admin, form) = form_admin(&req, &body, false).await?;
    admin.require("DELETE", "/policies/{name}/assignments")?;
    let kind = if form.get("kind") == "device" {
        "device"
    } else {
        "group"
    };
    state
        .policies
        .unassign(admin.name(), &name, kind, form.get("target"))
        .await
        .map_err(service(admin.tr))?;
    Ok(redirect(&format!(
        "/console/policies/{}?done=unassigned",
        encode(&name)
    )))
}
