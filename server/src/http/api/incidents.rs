//! The incident register over the API: `/api/v1/incidents`.

use super::Admin;
use crate::domain::incident::IncidentFilter;
use crate::http::error::ApiError;
use crate::http::AppState;
use crate::services::incidents::{
    pdf, register_csv, register_json, report_html, EvidenceRequest, IncidentUpdate, NewIncident,
};
use actix_web::{web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::Deserialize;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/incidents", web::post().to(file))
        .route("/incidents", web::get().to(list))
        .route("/deliveries", web::get().to(deliveries))
        .route("/deliveries/{id}/replay", web::post().to(replay))
        .route("/lost-report-links", web::post().to(create_link))
        .route("/lost-report-links", web::get().to(links))
        .route("/lost-report-links/{id}", web::delete().to(revoke_link))
        .route("/incidents/export.csv", web::get().to(export_csv))
        .route("/incidents/export.json", web::get().to(export_json))
        .route("/incidents/verify", web::get().to(verify))
        .route("/incidents/figures", web::get().to(figures))
        .route("/incidents/report.html", web::get().to(period_report))
        .route("/incidents/report.pdf", web::get().to(period_report_pdf))
        .route(
            "/incidents/{id}/report.html",
            web::get().to(incident_report),
        )
        .route(
            "/incidents/{id}/report.pdf",
            web::get().to(incident_report_pdf),
        )
        .route("/incidents/{id}", web::get().to(show))
        .route("/incidents/{id}", web::patch().to(update))
        .route("/incidents/{id}/history", web::get().to(history))
        .route("/incidents/{id}/classify", web::post().to(classify))
        .route("/incidents/{id}/actions", web::post().to(action))
        .route("/incidents/{id}/close", web::post().to(close))
        .route("/incidents/{id}/evidence", web::post().to(add_evidence))
        .route("/incidents/{id}/evidence", web::get().to(evidence))
        .route("/incidents/{id}/approvals", web::get().to(approvals))
        .route(
            "/incidents/{id}/approvals/{approval}/approve",
            web::post().to(approve),
        )
        .route(
            "/incidents/{id}/approvals/{approval}/deny",
            web::post().to(deny),
        );
}

async fn file(
    state: web::Data<AppState>,
    admin: Admin,
    body: web::Json<NewIncident>,
) -> Result<HttpResponse, ApiError> {
    let incident = state
        .incidents
        .file(&admin.0.name, body.into_inner())
        .await?;
    Ok(HttpResponse::Created().json(incident))
}

async fn list(
    state: web::Data<AppState>,
    _admin: Admin,
    filter: web::Query<IncidentFilter>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(state.incidents.list(&filter).await?))
}

async fn show(
    state: web::Data<AppState>,
    _admin: Admin,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(state.incidents.get(&id).await?))
}

async fn update(
    state: web::Data<AppState>,
    admin: Admin,
    id: web::Path<String>,
    body: web::Json<IncidentUpdate>,
) -> Result<HttpResponse, ApiError> {
    let incident = state
        .incidents
        .update(&id, &admin.0.name, body.into_inner())
        .await?;
    Ok(HttpResponse::Ok().json(incident))
}

async fn history(
    state: web::Data<AppState>,
    _admin: Admin,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let items = state.incidents.history(&id).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "items": items })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Classify {
    /// confirmed or rejected.
    classification: String,
    level: Option<i16>,
}

async fn classify(
    state: web::Data<AppState>,
    admin: Admin,
    id: web::Path<String>,
    body: web::Json<Classify>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let incident = state
        .incidents
        .classify(&id, &admin.0.name, body.classification, body.level)
        .await?;
    Ok(HttpResponse::Ok().json(incident))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Action {
    description: String,
    at: Option<DateTime<Utc>>,
}

async fn action(
    state: web::Data<AppState>,
    admin: Admin,
    id: web::Path<String>,
    body: web::Json<Action>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let incident = state
        .incidents
        .record_action(&id, &admin.0.name, body.description, body.at)
        .await?;
    Ok(HttpResponse::Ok().json(incident))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Close {
    closing_report: String,
}

async fn close(
    state: web::Data<AppState>,
    admin: Admin,
    id: web::Path<String>,
    body: web::Json<Close>,
) -> Result<HttpResponse, ApiError> {
    let incident = state
        .incidents
        .close(&id, &admin.0.name, body.into_inner().closing_report)
        .await?;
    Ok(HttpResponse::Ok().json(incident))
}

/// Collects evidence from the server's records: 201 with its SHA-256.
async fn add_evidence(
    state: web::Data<AppState>,
    admin: Admin,
    id: web::Path<String>,
    body: web::Json<EvidenceRequest>,
) -> Result<HttpResponse, ApiError> {
    let evidence = state
        .incidents
        .collect_evidence(&id, &admin.0.name, body.into_inner())
        .await?;
    Ok(HttpResponse::Created().json(evidence))
}

async fn evidence(
    state: web::Data<AppState>,
    _admin: Admin,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let items = state.incidents.evidence(&id).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "items": items })))
}

async fn approvals(
    state: web::Data<AppState>,
    _admin: Admin,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let items = state.incidents.approvals(&id).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "items": items })))
}

/// A second admin approves a waiting action (a playbook's wipe), which then runs.
async fn approve(
    state: web::Data<AppState>,
    admin: Admin,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (id, approval) = path.into_inner();
    let incident = state
        .incidents
        .decide(&id, &approval, &admin.0, true)
        .await?;
    Ok(HttpResponse::Ok().json(incident))
}

async fn deny(
    state: web::Data<AppState>,
    admin: Admin,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (id, approval) = path.into_inner();
    let incident = state
        .incidents
        .decide(&id, &approval, &admin.0, false)
        .await?;
    Ok(HttpResponse::Ok().json(incident))
}

/// The delivery log of webhook, syslog and e-mail receivers, newest first.
async fn deliveries(
    state: web::Data<AppState>,
    _admin: Admin,
    filter: web::Query<crate::storage::DeliveryFilter>,
) -> Result<HttpResponse, ApiError> {
    if let Some(s) = &filter.status {
        if !["pending", "failed", "delivered"].contains(&s.as_str()) {
            return Err(ApiError::bad_request(
                "status must be pending, failed or delivered",
            ));
        }
    }
    let items: Vec<serde_json::Value> = state
        .store
        .deliveries(&filter)
        .await
        .map_err(crate::services::ServiceError::from)?
        .iter()
        .map(|d| {
            let mut v = serde_json::to_value(d).unwrap_or_default();
            v["status"] = crate::services::notify::describe(d).into();
            v
        })
        .collect();
    Ok(HttpResponse::Ok().json(serde_json::json!({ "items": items })))
}

/// Sends a delivery again.
async fn replay(
    state: web::Data<AppState>,
    _admin: Admin,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let found = state
        .store
        .replay_delivery(*id, chrono::Utc::now())
        .await
        .map_err(crate::services::ServiceError::from)?;
    if !found {
        return Err(ApiError::not_found(format!("delivery {id} not found")));
    }
    Ok(HttpResponse::Accepted().finish())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewLink {
    user: String,
    devices: Vec<String>,
}

/// A personal "report my device lost" link for a user and their devices; its URL
/// (with the token) is shown in this answer only.
async fn create_link(
    state: web::Data<AppState>,
    admin: Admin,
    body: web::Json<NewLink>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let created = state
        .lost_reports
        .create(&admin.0.name, &body.user, body.devices)
        .await?;
    Ok(HttpResponse::Created().json(created))
}

async fn links(state: web::Data<AppState>, _admin: Admin) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(serde_json::json!({ "items": state.lost_reports.list().await? })))
}

async fn revoke_link(
    state: web::Data<AppState>,
    _admin: Admin,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    state.lost_reports.revoke(&id).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The register with Appendix A's columns in its order, as CSV.
async fn export_csv(
    state: web::Data<AppState>,
    _admin: Admin,
    filter: web::Query<IncidentFilter>,
) -> Result<HttpResponse, ApiError> {
    let all = state.incidents.all(&filter).await?;
    Ok(HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((
            "Content-Disposition",
            "attachment; filename=\"incident-register.csv\"",
        ))
        .body(register_csv(&all)))
}

async fn export_json(
    state: web::Data<AppState>,
    _admin: Admin,
    filter: web::Query<IncidentFilter>,
) -> Result<HttpResponse, ApiError> {
    let all = state.incidents.all(&filter).await?;
    Ok(HttpResponse::Ok().json(register_json(&all)))
}

async fn figures(
    state: web::Data<AppState>,
    _admin: Admin,
    filter: web::Query<IncidentFilter>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(state.incidents.figures(&filter).await?))
}

fn html(body: String) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header((
            "Content-Security-Policy",
            "default-src 'none'; style-src 'unsafe-inline'",
        ))
        .body(body)
}

fn period_title(filter: &IncidentFilter) -> String {
    match (filter.from, filter.to) {
        (Some(f), Some(t)) => format!(
            "Incident register, {} to {}",
            f.date_naive(),
            t.date_naive()
        ),
        (Some(f), None) => format!("Incident register, from {}", f.date_naive()),
        (None, Some(t)) => format!("Incident register, until {}", t.date_naive()),
        (None, None) => "Incident register".to_owned(),
    }
}

/// A printable report of the incidents of a period (the list filters apply).
async fn period_report(
    state: web::Data<AppState>,
    _admin: Admin,
    filter: web::Query<IncidentFilter>,
) -> Result<HttpResponse, ApiError> {
    let all = state.incidents.all(&filter).await?;
    Ok(html(report_html(&period_title(&filter), &all, &[], &[])))
}

/// The PDF is rendered on the blocking pool (a long register takes a moment).
async fn pdf_response(
    filename: String,
    render: impl FnOnce() -> Result<Vec<u8>, String> + Send + 'static,
) -> Result<HttpResponse, ApiError> {
    let bytes = web::block(render)
        .await
        .map_err(|e| crate::services::ServiceError::Internal(e.to_string()))?
        .map_err(crate::services::ServiceError::Internal)?;
    Ok(HttpResponse::Ok()
        .content_type("application/pdf")
        .insert_header((
            "Content-Disposition",
            format!("inline; filename=\"{filename}\""),
        ))
        .body(bytes))
}

/// The register of a period as PDF.
async fn period_report_pdf(
    state: web::Data<AppState>,
    _admin: Admin,
    filter: web::Query<IncidentFilter>,
) -> Result<HttpResponse, ApiError> {
    let all = state.incidents.all(&filter).await?;
    let title = period_title(&filter);
    pdf_response("incident-register.pdf".into(), move || {
        pdf::register_pdf(&title, &all)
    })
    .await
}

/// One incident as PDF, with its history and evidence.
async fn incident_report_pdf(
    state: web::Data<AppState>,
    _admin: Admin,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let incident = state.incidents.get(&id).await?;
    let history = state.incidents.history(&incident.id).await?;
    let evidence = state.incidents.evidence(&incident.id).await?;
    pdf_response(format!("incident-{}.pdf", incident.number), move || {
        pdf::incident_pdf(&incident, &history, &evidence)
    })
    .await
}

/// A printable report of one incident with its history and evidence.
async fn incident_report(
    state: web::Data<AppState>,
    _admin: Admin,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let incident = state.incidents.get(&id).await?;
    let history = state.incidents.history(&incident.id).await?;
    let evidence = state.incidents.evidence(&incident.id).await?;
    let title = format!("Incident No. {}: {}", incident.number, incident.name);
    Ok(html(report_html(&title, &[incident], &history, &evidence)))
}

/// Walks the register's hash chain; 200 with the report either way, `intact` false
/// when anything was altered.
async fn verify(state: web::Data<AppState>, _admin: Admin) -> Result<HttpResponse, ApiError> {
    let report = state.incidents.verify().await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "intact": report.problems.is_empty(),
        "incidents": report.incidents,
        "evidence": report.evidence,
        "links": report.links,
        "head_hash": report.head_hash,
        "problems": report.problems,
    })))
}

/// OpenAPI entries of the PDF reports (merged into openapi.json; the main document's
/// `json!` is at the macro's recursion limit).
pub fn describe(doc: &mut serde_json::Value) {
    use serde_json::json;
    let errors = |ok: serde_json::Value| {
        let mut r = json!({
            "400": { "$ref": "#/components/responses/Error" },
            "401": { "$ref": "#/components/responses/Error" },
            "404": { "$ref": "#/components/responses/Error" },
            "503": { "$ref": "#/components/responses/Error" }
        });
        r["200"] = ok;
        r
    };
    let pdf =
        json!({ "description": "PDF (A4, fonts embedded)", "content": { "application/pdf": {} } });
    let paths = json!({
        "/incidents/{id}/report.pdf": { "get": {
            "summary": "The report of one incident as PDF: every register column, the history with its hashes, the evidence with SHA-256",
            "parameters": [{ "name": "id", "in": "path", "required": true, "schema": { "type": "string" }, "description": "Incident id, or its register number" }],
            "responses": errors(pdf.clone()) } },
        "/incidents/report.pdf": { "get": {
            "summary": "The register of a period as PDF (from, to and the list filters)",
            "parameters": [
                { "name": "from", "in": "query", "schema": { "type": "string", "format": "date-time" } },
                { "name": "to", "in": "query", "schema": { "type": "string", "format": "date-time" } }
            ],
            "responses": errors(pdf) } }
    });
    if let (Some(all), Some(mine)) = (doc["paths"].as_object_mut(), paths.as_object()) {
        for (k, v) in mine {
            all.insert(k.clone(), v.clone());
        }
    }
}
