//! `/audit`: the audit trail (records, verification of its hash chain, exports as
//! JSON lines and CSV) and the yearly access review.

use super::Admin;
use crate::domain::event::NewEvent;
use crate::http::error::ApiError;
use crate::http::AppState;
use crate::services::admins::{audit, kinds};
use actix_web::{web, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Value};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/audit", web::get().to(list))
        .route("/audit/verify", web::get().to(verify))
        .route("/audit/export.jsonl", web::get().to(export_jsonl))
        .route("/audit/export.csv", web::get().to(export_csv))
        .route("/audit/access-review", web::get().to(access_review));
}

#[derive(Deserialize)]
struct ListQuery {
    after_seq: Option<i64>,
    limit: Option<u64>,
}

async fn list(
    state: web::Data<AppState>,
    _admin: Admin,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let items = state
        .store
        .audit_records(
            query.after_seq.unwrap_or(0).max(0),
            query.limit.unwrap_or(100).clamp(1, 1000),
        )
        .await
        .map_err(crate::services::ServiceError::from)?;
    Ok(HttpResponse::Ok().json(json!({ "items": items })))
}

#[derive(Deserialize)]
struct VerifyQuery {
    /// `SEQ:HASH` as an `audit.anchor` event published it.
    anchor: Option<String>,
}

async fn verify(
    state: web::Data<AppState>,
    _admin: Admin,
    query: web::Query<VerifyQuery>,
) -> Result<HttpResponse, ApiError> {
    let anchor = query
        .anchor
        .as_deref()
        .map(audit::parse_anchor)
        .transpose()
        .map_err(ApiError::bad_request)?;
    Ok(HttpResponse::Ok()
        .json(audit::verify(state.store.as_ref(), &state.admins.audit_key, anchor).await?))
}

async fn exported(
    state: &AppState,
    admin: &Admin,
    format: &str,
    records: usize,
) -> Result<(), ApiError> {
    state
        .store
        .record(
            NewEvent::new(
                kinds::ADMIN_AUDIT_EXPORTED,
                format!("audit trail exported ({format})"),
            )
            .actor(&admin.0.name)
            .data(json!({ "format": format, "records": records })),
        )
        .await
        .map_err(crate::services::ServiceError::from)?;
    Ok(())
}

async fn export_jsonl(state: web::Data<AppState>, admin: Admin) -> Result<HttpResponse, ApiError> {
    let records = audit::all_records(state.store.as_ref()).await?;
    exported(&state, &admin, "jsonl", records.len()).await?;
    Ok(HttpResponse::Ok()
        .content_type("application/x-ndjson")
        .insert_header((
            "Content-Disposition",
            "attachment; filename=\"audit.jsonl\"",
        ))
        .body(audit::to_json_lines(&records)))
}

async fn export_csv(state: web::Data<AppState>, admin: Admin) -> Result<HttpResponse, ApiError> {
    let records = audit::all_records(state.store.as_ref()).await?;
    exported(&state, &admin, "csv", records.len()).await?;
    Ok(HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header(("Content-Disposition", "attachment; filename=\"audit.csv\""))
        .body(audit::to_csv(&records)?))
}

async fn access_review(
    state: web::Data<AppState>,
    _admin: Admin,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(state.admins.accounts.access_review().await?))
}

pub fn describe(doc: &mut Value) {
    let errors = |mut ok: Value| {
        for code in ["400", "401", "404", "429", "503"] {
            ok[code] = json!({ "$ref": "#/components/responses/Error" });
        }
        ok
    };
    let obj = |what: &str| json!({ "200": { "description": what, "content": { "application/json": { "schema": { "type": "object" } } } } });
    let paths = [
        (
            "/audit",
            json!({ "get": {
            "summary": "The audit trail, by sequence number: who (actor), when, from which address, what (action), outcome, details, and the chain's hashes",
            "parameters": [
                { "name": "after_seq", "in": "query", "schema": { "type": "integer", "minimum": 0 } },
                { "name": "limit", "in": "query", "schema": { "type": "integer", "minimum": 1, "maximum": 1000 } }],
            "responses": errors(obj("Records")) } }),
        ),
        (
            "/audit/verify",
            json!({ "get": {
            "summary": "Walk the hash chain (HMAC-SHA256 links under the server's key): intact, or which records were altered, removed, reordered or rewritten without the key; with `anchor`, also whether the chain still holds a head published earlier (an audit.anchor event)",
            "parameters": [
                { "name": "anchor", "in": "query", "required": false,
                  "description": "SEQ:HASH as an audit.anchor event published it",
                  "schema": { "type": "string", "pattern": "^[0-9]{1,18}:[0-9a-fA-F]{64}$" } }],
            "responses": errors(obj("{intact, records, keyed_records, legacy_records, head_seq, head_hash, anchor, problems}")) } }),
        ),
        (
            "/audit/export.jsonl",
            json!({ "get": { "summary": "The whole trail as JSON lines (recorded as an export)",
            "responses": errors(json!({ "200": { "description": "JSON lines", "content": { "application/x-ndjson": {} } } })) } }),
        ),
        (
            "/audit/export.csv",
            json!({ "get": { "summary": "The whole trail as CSV (recorded as an export)",
            "responses": errors(json!({ "200": { "description": "CSV", "content": { "text/csv": {} } } })) } }),
        ),
        (
            "/audit/access-review",
            json!({ "get": {
            "summary": "The yearly access review: every admin's groups and roles against the role matrix, last login, MFA state, and what deviates (critical role without MFA, disabled but in groups, unused, expired password; tokens that never expire)",
            "responses": errors(obj("The review")) } }),
        ),
    ];
    if let Some(map) = doc["paths"].as_object_mut() {
        for (path, item) in paths {
            map.insert(path.to_owned(), item);
        }
    }
}
