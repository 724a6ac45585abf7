//! The page a device's user opens with their personal link to report a device lost
//! or stolen: plain HTML that works without JavaScript, in a phone's browser.

use super::AppState;
use crate::services::ServiceError;
use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use serde::Deserialize;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/lost/{token}", web::get().to(page))
        .route("/lost/{token}", web::post().to(report));
}

/// HTML-escapes text that came from elsewhere (device names are what devices say).
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn html(status: StatusCode, title: &str, body: &str) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        // Nothing on this page may be framed, cached or sent elsewhere.
        .insert_header(("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'"))
        .insert_header(("Cache-Control", "no-store"))
        .insert_header(("Referrer-Policy", "no-referrer"))
        .body(format!(
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
             <title>{title}</title><style>body{{font-family:sans-serif;max-width:36em;margin:1em auto;padding:0 1em}}\
             label{{display:block;margin:.5em 0}}textarea{{width:100%}}button{{font-size:1.1em;padding:.4em 1em}}</style>\
             </head><body><h1>{title}</h1>{body}</body></html>"
        ))
}

fn refusal(e: ServiceError) -> HttpResponse {
    let (status, message) = match e {
        ServiceError::NotFound(m) => (StatusCode::NOT_FOUND, m),
        ServiceError::BadRequest(m) => (StatusCode::BAD_REQUEST, m),
        other => {
            tracing::error!(error = %other, "lost-device report failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "The report could not be recorded. Please call your IT department.".into(),
            )
        }
    };
    let response = html(
        status,
        "Report a lost device",
        &format!("<p>{}</p>", escape(&message)),
    );
    // An unknown token is a failed guess, counted against the address.
    if status == StatusCode::NOT_FOUND {
        super::limits::failed_guess(response)
    } else {
        response
    }
}

async fn page(state: web::Data<AppState>, token: web::Path<String>) -> HttpResponse {
    let (link, devices) = match state.lost_reports.open(&token).await {
        Ok(found) => found,
        Err(e) => return refusal(e),
    };
    let choices: String = devices
        .iter()
        .enumerate()
        .map(|(n, d)| {
            format!(
                "<label><input type=\"radio\" name=\"device\" value=\"{}\"{}> {}</label>",
                escape(&d.id),
                if n == 0 { " checked" } else { "" },
                escape(&d.label)
            )
        })
        .collect();
    html(
        StatusCode::OK,
        "Report a lost device",
        &format!(
            "<p>{}, which device is lost?</p><form method=\"post\">{choices}\
             <label><input type=\"checkbox\" name=\"stolen\" value=\"on\"> It was stolen</label>\
             <label>Where and when did you last have it?<br><textarea name=\"details\" rows=\"4\" maxlength=\"2000\"></textarea></label>\
             <button type=\"submit\">Report it</button></form>\
             <p>The device will be locked at once. Call your IT department if you find it again.</p>",
            escape(&link.user)
        ),
    )
}

#[derive(Deserialize)]
struct ReportForm {
    device: String,
    stolen: Option<String>,
    #[serde(default)]
    details: String,
}

async fn report(
    state: web::Data<AppState>,
    token: web::Path<String>,
    form: web::Form<ReportForm>,
) -> HttpResponse {
    let form = form.into_inner();
    let reported = state
        .lost_reports
        .report(
            &state.incidents,
            &token,
            &form.device,
            form.stolen.as_deref() == Some("on"),
            &form.details,
        )
        .await;
    match reported {
        Ok(incident) => html(
            StatusCode::OK,
            "Thank you",
            &format!(
                "<p>Your report was recorded as incident No. {}. The IT department has been told{}.</p>",
                incident.number,
                if incident.response_actions.iter().any(|a| a.description.contains("lock queued")) {
                    " and the device is being locked"
                } else {
                    ""
                }
            ),
        ),
        Err(e) => refusal(e),
    }
}
