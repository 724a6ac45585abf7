//! Policies, their assignments, device groups and compliance over the API:
//! `/api/v1/policies`, `/api/v1/device-groups`, `/api/v1/devices/{id}/compliance`.
//!
//! A policy travels as JSON (`{"document": {...}}`), or as the text of a TOML or
//! YAML file (`{"format": "toml", "text": "..."}`) so that `mdm policy apply` sends
//! the admin's file as written and the server's parser reports its errors. A
//! refused policy is a 400 with `errors: [{path, message, allowed}]`.

use super::Admin;
use crate::http::error::ApiError;
use crate::http::AppState;
use crate::services::policies::{parse_text, NewGroup, PolicyError};
use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use profiles::policy::PolicyDocument;
use serde::Deserialize;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/policies", web::get().to(list))
        .route("/policies/check", web::post().to(check))
        .route("/policies/deliver", web::post().to(deliver))
        .route("/policies/assignments", web::get().to(all_assignments))
        .route("/policies/{name}", web::get().to(show))
        .route("/policies/{name}", web::put().to(save))
        .route("/policies/{name}/diff", web::post().to(diff))
        .route("/policies/{name}/versions", web::get().to(versions))
        .route("/policies/{name}/restore", web::post().to(restore))
        .route("/policies/{name}/assignments", web::post().to(assign))
        .route("/policies/{name}/assignments", web::delete().to(unassign))
        .route("/device-groups", web::get().to(groups))
        .route("/device-groups", web::post().to(create_group))
        .route("/device-groups/{name}", web::get().to(group))
        .route("/device-groups/{name}", web::delete().to(delete_group))
        .route("/device-groups/{name}/members", web::post().to(members))
        .route("/devices/{id}/compliance", web::get().to(compliance))
        .route("/devices/{id}/compliance", web::post().to(evaluate));
}

fn refused(e: PolicyError) -> Result<HttpResponse, ApiError> {
    match e {
        PolicyError::Invalid(errors) => Ok(HttpResponse::build(StatusCode::UNPROCESSABLE_ENTITY).json(
            serde_json::json!({
                "error": format!(
                    "the policy is not valid ({} error(s)); nothing was saved: {}",
                    errors.len(),
                    errors.iter().map(|e| format!("{}: {}", e.path, e.message)).collect::<Vec<_>>().join("; ")
                ),
                "errors": errors,
            }),
        )),
        PolicyError::Service(e) => Err(e.into()),
    }
}

/// A policy as JSON, or as the text of a file in one of the three formats.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyBody {
    document: Option<serde_json::Value>,
    format: Option<String>,
    text: Option<String>,
    note: Option<String>,
    /// diff only: the devices of this group.
    group: Option<String>,
}

impl PolicyBody {
    fn document(&self) -> Result<PolicyDocument, PolicyError> {
        match (&self.document, &self.text) {
            (Some(doc), None) => parse_text(&doc.to_string(), "json"),
            (None, Some(text)) => parse_text(text, self.format.as_deref().unwrap_or("json")),
            _ => Err(PolicyError::Invalid(vec![
                crate::services::policies::FieldProblem {
                    path: "document".into(),
                    message: "give the policy as \"document\" (JSON) or as \"text\" with its \"format\", one of the two".into(),
                    allowed: Some("document | format + text".into()),
                },
            ])),
        }
    }
}

async fn list(state: web::Data<AppState>, _admin: Admin) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(state.policies.list().await?))
}

async fn check(
    state: web::Data<AppState>,
    _admin: Admin,
    body: web::Json<PolicyBody>,
) -> Result<HttpResponse, ApiError> {
    match body.document() {
        Ok(doc) => Ok(HttpResponse::Ok().json(state.policies.check(&doc))),
        Err(PolicyError::Invalid(errors)) => Ok(HttpResponse::Ok().json(serde_json::json!({
            "valid": false, "errors": errors, "findings": [],
        }))),
        Err(e) => refused(e),
    }
}

async fn save(
    state: web::Data<AppState>,
    admin: Admin,
    name: web::Path<String>,
    body: web::Json<PolicyBody>,
) -> Result<HttpResponse, ApiError> {
    let doc = match body.document() {
        Ok(d) => d,
        Err(e) => return refused(e),
    };
    match state
        .policies
        .save(&admin.0.name, &name, doc, body.note.clone())
        .await
    {
        Ok(outcome) => Ok(HttpResponse::Ok().json(outcome)),
        Err(e) => refused(e),
    }
}

async fn diff(
    state: web::Data<AppState>,
    _admin: Admin,
    name: web::Path<String>,
    body: web::Json<PolicyBody>,
) -> Result<HttpResponse, ApiError> {
    let doc = match body.document() {
        Ok(d) => d,
        Err(e) => return refused(e),
    };
    match state.policies.diff(&name, doc, body.group.as_deref()).await {
        Ok(report) => Ok(HttpResponse::Ok().json(report)),
        Err(e) => refused(e),
    }
}

async fn show(
    state: web::Data<AppState>,
    _admin: Admin,
    name: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(state.policies.show(&name).await?))
}

async fn versions(
    state: web::Data<AppState>,
    _admin: Admin,
    name: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(state.policies.versions(&name).await?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RestoreBody {
    version: i32,
}

async fn restore(
    state: web::Data<AppState>,
    admin: Admin,
    name: web::Path<String>,
    body: web::Json<RestoreBody>,
) -> Result<HttpResponse, ApiError> {
    match state
        .policies
        .restore(&admin.0.name, &name, body.version)
        .await
    {
        Ok(outcome) => Ok(HttpResponse::Ok().json(outcome)),
        Err(e) => refused(e),
    }
}

/// `{"group": NAME}` or `{"device": ID}`, with an optional precedence.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AssignmentBody {
    group: Option<String>,
    device: Option<String>,
    #[serde(default)]
    precedence: i32,
}

impl AssignmentBody {
    fn target(&self) -> Result<(&'static str, &str), ApiError> {
        match (&self.group, &self.device) {
            (Some(g), None) => Ok(("group", g)),
            (None, Some(d)) => Ok(("device", d)),
            _ => Err(ApiError::unprocessable(
                "name the target: \"group\" (a device group's name) or \"device\" (a device id), one of the two",
            )),
        }
    }
}

async fn assign(
    state: web::Data<AppState>,
    admin: Admin,
    name: web::Path<String>,
    body: web::Json<AssignmentBody>,
) -> Result<HttpResponse, ApiError> {
    let (kind, target) = body.target()?;
    if body.precedence.abs() > 1000 {
        return Err(ApiError::bad_request(
            "precedence must be between -1000 and 1000",
        ));
    }
    Ok(HttpResponse::Ok().json(
        state
            .policies
            .assign(&admin.0.name, &name, kind, target, body.precedence)
            .await?,
    ))
}

async fn unassign(
    state: web::Data<AppState>,
    admin: Admin,
    name: web::Path<String>,
    query: web::Query<AssignmentBody>,
) -> Result<HttpResponse, ApiError> {
    let (kind, target) = query.target()?;
    Ok(HttpResponse::Ok().json(
        state
            .policies
            .unassign(&admin.0.name, &name, kind, target)
            .await?,
    ))
}

async fn all_assignments(
    state: web::Data<AppState>,
    _admin: Admin,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(state.policies.assignments().await?))
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct DeliverQuery {
    #[serde(default)]
    dry_run: bool,
}

async fn deliver(
    state: web::Data<AppState>,
    admin: Admin,
    query: web::Query<DeliverQuery>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(
        state
            .policies
            .deliver(&admin.0.name, None, query.dry_run)
            .await?,
    ))
}

async fn groups(state: web::Data<AppState>, _admin: Admin) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(state.policies.groups().await?))
}

async fn create_group(
    state: web::Data<AppState>,
    admin: Admin,
    body: web::Json<NewGroup>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Created().json(
        state
            .policies
            .create_group(&admin.0.name, body.into_inner())
            .await?,
    ))
}

async fn group(
    state: web::Data<AppState>,
    _admin: Admin,
    name: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(state.policies.group(&name).await?))
}

async fn delete_group(
    state: web::Data<AppState>,
    admin: Admin,
    name: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(state.policies.delete_group(&admin.0.name, &name).await?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MembersBody {
    #[serde(default)]
    add: Vec<String>,
    #[serde(default)]
    remove: Vec<String>,
}

async fn members(
    state: web::Data<AppState>,
    admin: Admin,
    name: web::Path<String>,
    body: web::Json<MembersBody>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    if body.add.len() + body.remove.len() > 100_000 {
        return Err(ApiError::bad_request("at most 100000 devices per request"));
    }
    Ok(HttpResponse::Ok().json(
        state
            .policies
            .change_members(&admin.0.name, &name, body.add, body.remove)
            .await?,
    ))
}

async fn compliance(
    state: web::Data<AppState>,
    _admin: Admin,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let device = super::devices::resolve(&state, &id).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "device_id": device.id,
        "compliant": device.compliant,
        "reasons": device.compliance_reasons,
        "checked_at": device.compliance_checked_at,
    })))
}

/// Evaluates the device now from what it last reported.
async fn evaluate(
    state: web::Data<AppState>,
    _admin: Admin,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let device = super::devices::resolve(&state, &id).await?;
    let results = state
        .policies
        .evaluate(std::slice::from_ref(&device.id))
        .await?;
    let Some((_, evaluation)) = results.into_iter().next() else {
        return Err(ApiError::bad_request(format!(
            "device {} is not enrolled: nothing to evaluate",
            device.id
        )));
    };
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "device_id": device.id,
        "compliant": evaluation.compliant,
        "reasons": evaluation.reasons,
    })))
}

/// The OpenAPI entries of these routes (merged into openapi.json).
pub fn describe(doc: &mut serde_json::Value) {
    use serde_json::json;
    let errors = json!({
        "400": { "$ref": "#/components/responses/Error" },
        "401": { "$ref": "#/components/responses/Error" },
        "404": { "$ref": "#/components/responses/Error" },
        "409": { "$ref": "#/components/responses/Error" },
        "503": { "$ref": "#/components/responses/Error" }
    });
    let responses = |what: &str| {
        let mut r = errors.clone();
        r["200"] = json!({ "description": what });
        r
    };
    let name =
        json!({ "name": "name", "in": "path", "required": true, "schema": { "type": "string" } });
    let id = json!({ "name": "id", "in": "path", "required": true, "schema": { "type": "string" }, "description": "Device id, udid:<UDID> or serial:<serial number>" });
    let body = json!({ "required": true, "content": { "application/json": { "schema": { "$ref": "#/components/schemas/PolicyBody" } } } });
    let target = json!([
        { "name": "group", "in": "query", "schema": { "type": "string" } },
        { "name": "device", "in": "query", "schema": { "type": "string" } }
    ]);
    let paths = json!({
        "/policies": { "get": { "summary": "Policies (name, current version)", "responses": responses("The policies") } },
        "/policies/check": { "post": { "summary": "Validate a policy and list the office's rules it breaks; nothing is saved", "requestBody": body, "responses": responses("errors and findings") } },
        "/policies/deliver": { "post": { "summary": "Compile every device's policies and queue what changed (dry_run=true: only report)",
            "parameters": [{ "name": "dry_run", "in": "query", "schema": { "type": "boolean" } }], "responses": responses("The delivery report") } },
        "/policies/assignments": { "get": { "summary": "Every assignment of a policy to a group or a device", "responses": responses("The assignments") } },
        "/policies/{name}": {
            "get": { "summary": "A policy: its current document (secrets masked), assignments and findings", "parameters": [name], "responses": responses("The policy") },
            "put": { "summary": "Save a new version (JSON document, or TOML/YAML text) and deliver it where it changed; refused with errors[{path, message, allowed}]", "parameters": [name], "requestBody": body, "responses": responses("Saved (or unchanged) with the delivery report") }
        },
        "/policies/{name}/diff": { "post": { "summary": "The fields a document would change and the devices that would get a new profile (group: only that group's)", "parameters": [name], "requestBody": body, "responses": responses("The diff") } },
        "/policies/{name}/versions": { "get": { "summary": "The policy's versions, newest first", "parameters": [name], "responses": responses("The versions") } },
        "/policies/{name}/restore": { "post": { "summary": "Make an earlier version current again (saved as a new version)", "parameters": [name],
            "requestBody": { "required": true, "content": { "application/json": { "schema": { "type": "object", "required": ["version"], "properties": { "version": { "type": "integer", "minimum": 1, "maximum": 2_147_483_647 } } } } } },
            "responses": responses("Restored, with the delivery report") } },
        "/policies/{name}/assignments": {
            "post": { "summary": "Assign the policy to a device group or a device (precedence: higher wins; a device's own assignment outranks its groups')", "parameters": [name],
                "requestBody": { "required": true, "content": { "application/json": { "schema": { "type": "object", "properties": {
                    "group": { "type": "string" }, "device": { "type": "string" }, "precedence": { "type": "integer", "minimum": -1000, "maximum": 1000 } } } } } },
                "responses": responses("The delivery report") },
            "delete": { "summary": "Remove an assignment: the policy's profile is removed from devices that no longer have it", "parameters": [name, target[0], target[1]], "responses": responses("The delivery report") }
        },
        "/device-groups": {
            "get": { "summary": "Device groups with their devices", "responses": responses("The groups") },
            "post": { "summary": "Create a group: manual, or by directory_group, department or enrollment (match)",
                "requestBody": { "required": true, "content": { "application/json": { "schema": { "type": "object", "required": ["name"], "properties": {
                    "name": { "type": "string" }, "kind": { "type": "string", "enum": ["manual", "directory_group", "department", "enrollment"] },
                    "match": { "type": ["string", "null"] }, "description": { "type": ["string", "null"] } } } } } },
                "responses": { "201": { "description": "Created" }, "400": { "$ref": "#/components/responses/Error" }, "401": { "$ref": "#/components/responses/Error" }, "409": { "$ref": "#/components/responses/Error" } } }
        },
        "/device-groups/{name}": {
            "get": { "summary": "A group and its devices", "parameters": [name], "responses": responses("The group") },
            "delete": { "summary": "Delete a group and its assignments (profiles are removed)", "parameters": [name], "responses": responses("The delivery report") }
        },
        "/device-groups/{name}/members": { "post": { "summary": "Add or remove devices of a manual group", "parameters": [name],
            "requestBody": { "required": true, "content": { "application/json": { "schema": { "type": "object", "properties": {
                "add": { "type": "array", "items": { "type": "string" } }, "remove": { "type": "array", "items": { "type": "string" } } } } } } },
            "responses": responses("The delivery report") } },
        "/devices/{id}/compliance": {
            "get": { "summary": "Whether the device meets its policies, and why not", "parameters": [id], "responses": responses("The evaluation") },
            "post": { "summary": "Evaluate the device now from what it last reported", "parameters": [id], "responses": responses("The evaluation") }
        }
    });
    if let (Some(all), Some(mine)) = (doc["paths"].as_object_mut(), paths.as_object()) {
        for (k, v) in mine {
            all.insert(k.clone(), v.clone());
        }
    }
    if let Some(schemas) = doc["components"]["schemas"].as_object_mut() {
        schemas.insert(
            "PolicyBody".into(),
            json!({ "type": "object", "description": "A policy as a JSON document, or as the text of a TOML/YAML/JSON file with its format (docs/policies.md)",
                "properties": {
                    "document": { "type": "object" },
                    "format": { "type": "string", "enum": ["json", "toml", "yaml"] },
                    "text": { "type": "string" },
                    "note": { "type": ["string", "null"] },
                    "group": { "type": ["string", "null"], "description": "diff only" } } }),
        );
    }
}
