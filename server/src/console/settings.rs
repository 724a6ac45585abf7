//! Settings: the two links to the vendors the fleet hangs on. Apple's push
//! certificate (topic, subject, expiry with the days left and the warning from 30
//! days before) with its renewal upload, and the Android Enterprise connection
//! (`state.android.status()`, as `GET /android` shows it; the command that makes it
//! when there is none).
//!
//! The upload takes what `PUT /push-certificate` takes, as files or pasted text: the
//! PEM certificate with its PEM key, the PEM certificate alone (paired with the key
//! `mdm push-cert request` kept), or a PKCS#12 file and its password; each goes to
//! the same constructor and service call as there. The form is
//! `multipart/form-data` (so that a browser sends the files); its CSRF token is a
//! part like any other, checked by `session::form_admin` before anything is done.
//! An urlencoded post (pasted text only) is taken too.

use super::i18n::Tr;
use super::login::idle_secs;
use super::page::Page;
use super::session::{check_origin, form_admin, page_admin, ConsoleAdmin};
use super::{html, redirect, ConsoleError};
use crate::http::AppState;
use crate::push::certificate::PushCertificate;
use crate::services::ServiceError;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use base64::Engine;
use serde::Deserialize;
use std::collections::HashMap;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/settings", web::get().to(page))
        .route(
            "/settings/push-certificate",
            web::post().to(upload_push_certificate),
        )
        .route("/settings/android", web::post().to(connect_android));
}

/// A push certificate upload is a few kilobytes; anything much larger is refused
/// before it is parsed.
const UPLOAD_LIMIT: usize = 256 * 1024;

pub struct Fact {
    pub label: String,
    pub value: String,
}

pub struct PushSection {
    /// None: no certificate uploaded yet.
    pub facts: Option<Vec<Fact>>,
    /// ok, warning or error (the dashboard's health classes).
    pub state: &'static str,
    pub state_label: String,
    pub warning: Option<String>,
    pub may_upload: bool,
}

pub struct AndroidSection {
    pub connected: bool,
    pub state: &'static str,
    pub state_label: String,
    pub facts: Vec<Fact>,
    pub signup_url: Option<String>,
    pub last_error: Option<String>,
}

#[derive(Template)]
#[template(path = "console/settings.html")]
struct SettingsPage {
    p: Page,
    push: Option<PushSection>,
    android: Option<AndroidSection>,
    connect_command: &'static str,
    /// The connect form (android.write): the first connection, or a new key.
    may_connect: bool,
}

/// What the Android section shows when there is no connection: the CLI command
/// that makes one (the service's own advice).
const CONNECT_COMMAND: &str = "mdm android connect --service-account key.json";

#[derive(Deserialize)]
struct Query {
    done: Option<String>,
}

async fn page(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: web::Query<Query>,
) -> Result<HttpResponse, ConsoleError> {
    let admin = page_admin(&req).await?;
    let tr = admin.tr;
    let notice = match query.done.as_deref() {
        Some("push-uploaded") => Some(tr.t("settings-done-push-uploaded")),
        Some("android-connected") => Some(tr.t("settings-done-android-connected")),
        _ => None,
    };
    render(&state, &admin, notice, None).await
}

fn fact(label: String, value: String) -> Fact {
    Fact {
        label,
        value: if value.trim().is_empty() {
            "—".into()
        } else {
            value
        },
    }
}

fn push_section(state: &AppState, admin: &ConsoleAdmin) -> PushSection {
    let tr = admin.tr;
    let may_upload = admin.may("PUT", "/push-certificate");
    let Some(info) = state.push.info() else {
        return PushSection {
            facts: None,
            state: "error",
            state_label: tr.t("health-missing"),
            warning: Some(tr.t("health-push-missing")),
            may_upload,
        };
    };
    let (class, label, warning) = if info.days_left < 0 || info.not_after <= chrono::Utc::now() {
        (
            "error",
            tr.t("health-expired"),
            Some(tr.t1("settings-push-expired", &tr.date(&info.not_after))),
        )
    } else if info.warning.is_some() {
        (
            "warning",
            tr.t("health-expiring"),
            Some(tr.t1("settings-push-renew-soon", &tr.date(&info.not_after))),
        )
    } else {
        ("ok", tr.t("health-ok"), None)
    };
    PushSection {
        facts: Some(vec![
            fact(tr.t("settings-push-topic"), info.topic.clone()),
            fact(tr.t("settings-push-subject"), info.subject.clone()),
            fact(tr.t("settings-push-fingerprint"), info.fingerprint.clone()),
            fact(
                tr.t("settings-push-not-before"),
                tr.datetime(&info.not_before),
            ),
            fact(
                tr.t("settings-push-not-after"),
                format!(
                    "{} · {}",
                    tr.datetime(&info.not_after),
                    tr.n("days-left", info.days_left.max(0))
                ),
            ),
            fact(
                tr.t("settings-push-uploaded"),
                format!("{} · {}", tr.datetime(&info.uploaded_at), info.uploaded_by),
            ),
        ]),
        state: class,
        state_label: label,
        warning,
        may_upload,
    }
}

async fn android_section(state: &AppState, tr: Tr) -> Result<AndroidSection, ConsoleError> {
    let s = match state.android.status().await {
        Ok(s) => s,
        Err(ServiceError::NotFound(_)) => {
            return Ok(AndroidSection {
                connected: false,
                state: "warning",
                state_label: tr.t("health-not-connected"),
                facts: Vec::new(),
                signup_url: None,
                last_error: None,
            })
        }
        Err(e) => return Err(ConsoleError::from_service(tr, e)),
    };
    let (class, label) = match s.state {
        "enterprise_created" => ("ok", tr.t("health-ok")),
        "signup_pending" => ("warning", tr.t("health-signup-pending")),
        _ => ("error", tr.t("health-failing")),
    };
    let opt = |at: &Option<chrono::DateTime<chrono::Utc>>| tr.opt_datetime(at);
    let facts = vec![
        fact(
            tr.t("settings-android-enterprise"),
            match (&s.enterprise_display_name, &s.enterprise) {
                (Some(display), Some(name)) => format!("{display} ({name})"),
                (None, Some(name)) => name.clone(),
                _ => String::new(),
            },
        ),
        fact(tr.t("settings-android-project"), s.project_id.clone()),
        fact(tr.t("settings-android-account"), s.client_email.clone()),
        fact(
            tr.t("settings-android-connected"),
            format!("{} · {}", tr.datetime(&s.connected_at), s.connected_by),
        ),
        fact(
            tr.t("settings-android-topic"),
            s.pubsub_topic.clone().unwrap_or_default(),
        ),
        fact(tr.t("settings-android-last-sync"), opt(&s.last_sync_at)),
        fact(tr.t("settings-android-last-pull"), opt(&s.last_pull_at)),
    ];
    Ok(AndroidSection {
        connected: true,
        state: class,
        state_label: label,
        facts,
        // A link only to an https address (Google's sign-up page).
        signup_url: s.signup_url.clone().filter(|u| u.starts_with("https://")),
        last_error: s
            .last_error
            .as_ref()
            .map(|e| format!("{} · {e}", opt(&s.last_error_at))),
    })
}

async fn render(
    state: &AppState,
    admin: &ConsoleAdmin,
    notice: Option<String>,
    error: Option<String>,
) -> Result<HttpResponse, ConsoleError> {
    let tr = admin.tr;
    let show_push = admin.may("GET", "/push-certificate");
    let show_android = admin.may("GET", "/android");
    if !show_push && !show_android {
        return Err(ConsoleError::Forbidden(tr));
    }
    let android = if show_android {
        Some(android_section(state, tr).await?)
    } else {
        None
    };
    let page = SettingsPage {
        p: Page::new(
            admin,
            tr.t("nav-settings"),
            "/console/settings",
            idle_secs(state),
        )
        .with_notice(notice)
        .with_error(error),
        push: show_push.then(|| push_section(state, admin)),
        android,
        connect_command: CONNECT_COMMAND,
        may_connect: admin.may("POST", "/android/connect"),
    };
    html(&page)
}

/// The upload's fields: text fields and files by name (the first of each).
struct Upload {
    fields: HashMap<String, Vec<u8>>,
}

impl Upload {
    /// A field's bytes, None when absent or blank.
    fn get(&self, name: &str) -> Option<&[u8]> {
        self.fields
            .get(name)
            .map(Vec::as_slice)
            .filter(|v| !v.iter().all(u8::is_ascii_whitespace))
    }

    fn text(&self, name: &str) -> Option<String> {
        self.get(name)
            .map(|v| String::from_utf8_lossy(v).trim().to_owned())
    }
}

/// The boundary of a `multipart/form-data` content type.
fn boundary(content_type: &str) -> Option<String> {
    multer::parse_boundary(content_type).ok()
}

/// Reads a `multipart/form-data` body (RFC 7578) with multer: each part's name and
/// bytes (the first of a repeated name).
async fn parse_multipart(body: web::Bytes, boundary: String) -> Result<Upload, String> {
    let stream = futures::stream::once(async move { Ok::<_, std::convert::Infallible>(body) });
    let limits = multer::Constraints::new()
        .size_limit(multer::SizeLimit::new().whole_stream(UPLOAD_LIMIT as u64));
    let mut multipart = multer::Multipart::with_constraints(stream, boundary, limits);
    let mut fields: HashMap<String, Vec<u8>> = HashMap::new();
    while let Some(field) = multipart.next_field().await.map_err(|e| e.to_string())? {
        let name = field.name().map(str::to_owned);
        let bytes = field.bytes().await.map_err(|e| e.to_string())?;
        if let Some(name) = name {
            fields.entry(name).or_insert_with(|| bytes.to_vec());
        }
    }
    Ok(Upload { fields })
}

/// A PKCS#12 file as uploaded (binary), or pasted as base64.
fn pkcs12(upload: &Upload) -> Result<Option<Vec<u8>>, ()> {
    if let Some(file) = upload.get("pkcs12_file") {
        return Ok(Some(file.to_vec()));
    }
    match upload.text("pkcs12_base64") {
        None => Ok(None),
        Some(text) => base64::engine::general_purpose::STANDARD
            .decode(text.split_whitespace().collect::<String>())
            .map(Some)
            .map_err(|_| ()),
    }
}

/// What the upload names, as `PUT /push-certificate` takes it: the PEM certificate
/// with its key, the certificate alone (the key the server kept), or PKCS#12.
enum Given {
    Pem(Vec<u8>, Vec<u8>),
    CertificateOnly(Vec<u8>),
    Pkcs12(Vec<u8>, String),
}

fn given(tr: Tr, upload: &Upload) -> Result<Given, String> {
    let cert = upload
        .get("certificate_file")
        .or_else(|| upload.get("certificate_pem"))
        .map(<[u8]>::to_vec);
    let key = upload
        .get("private_key_file")
        .or_else(|| upload.get("private_key_pem"))
        .map(<[u8]>::to_vec);
    let p12 = pkcs12(upload).map_err(|_| tr.t("settings-push-bad-base64"))?;
    match (cert, key, p12) {
        (Some(cert), Some(key), None) => Ok(Given::Pem(cert, key)),
        (Some(cert), None, None) => Ok(Given::CertificateOnly(cert)),
        (None, None, Some(der)) => Ok(Given::Pkcs12(
            der,
            upload.text("password").unwrap_or_default(),
        )),
        _ => Err(tr.t("settings-push-give-one")),
    }
}

/// The admin and fields of a settings form, sent as `multipart/form-data` (so that
/// a browser sends the files) or urlencoded (pasted text only): the session and the
/// form's CSRF token first, then the route's right. A body too large to read is
/// said so on the page once the admin is known; `text_fields` are what an urlencoded
/// post may carry.
async fn settings_form(
    state: &AppState,
    req: &HttpRequest,
    body: &web::Bytes,
    right: (&str, &str),
    text_fields: &[&str],
) -> Result<Result<(ConsoleAdmin, Upload), HttpResponse>, ConsoleError> {
    check_origin(req)?;
    let lang = super::session::anonymous_language(req);
    let content_type = req
        .headers()
        .get(actix_web::http::header::CONTENT_TYPE)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let (upload, unreadable) = if body.len() > UPLOAD_LIMIT {
        (None, true)
    } else if let Some(b) = boundary(&content_type) {
        match parse_multipart(body.clone(), b).await {
            Ok(u) => (Some(u), false),
            Err(why) => {
                return Err(ConsoleError::BadRequest(
                    Tr::new(lang),
                    format!("invalid form: {why}"),
                ))
            }
        }
    } else {
        (None, false)
    };
    let (admin, upload) = match upload {
        Some(upload) => {
            let csrf = String::from_utf8_lossy(upload.get("_csrf").unwrap_or_default());
            let token = serde_urlencoded::to_string([("_csrf", csrf.trim())])
                .map_err(|e| ConsoleError::Internal(e.to_string()))?;
            let (admin, _) = form_admin(req, &web::Bytes::from(token), false).await?;
            (admin, upload)
        }
        None if unreadable => {
            let admin = page_admin(req).await?;
            admin.require(right.0, right.1)?;
            let tr = admin.tr;
            let message = tr.n("settings-push-too-large", (UPLOAD_LIMIT / 1024) as i64);
            return Ok(Err(render(state, &admin, None, Some(message)).await?));
        }
        None => {
            let (admin, form) = form_admin(req, body, false).await?;
            let fields = text_fields
                .iter()
                .map(|n| ((*n).to_owned(), form.get(n).as_bytes().to_vec()))
                .collect();
            (admin, Upload { fields })
        }
    };
    admin.require(right.0, right.1)?;
    Ok(Ok((admin, upload)))
}

/// Connects Android Enterprise with the service-account key file (as `POST
/// /android/connect` and `mdm android connect`): the page then shows the sign-up link.
async fn connect_android(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, ConsoleError> {
    let (admin, upload) = match settings_form(
        &state,
        &req,
        &body,
        ("POST", "/android/connect"),
        &[
            "service_account_json",
            "pubsub_topic",
            "pubsub_subscription",
        ],
    )
    .await?
    {
        Ok(v) => v,
        Err(page) => return Ok(page),
    };
    let tr = admin.tr;
    let key = upload
        .get("service_account_file")
        .or_else(|| upload.get("service_account_json"));
    let key: serde_json::Value = match key.map(serde_json::from_slice) {
        Some(Ok(v)) => v,
        Some(Err(e)) => {
            let message = tr.t1("settings-android-bad-key", &e.to_string());
            return render(&state, &admin, None, Some(message)).await;
        }
        None => {
            let message = tr.t("settings-android-give-key");
            return render(&state, &admin, None, Some(message)).await;
        }
    };
    let request = crate::services::android::ConnectRequest {
        service_account: key,
        pubsub_topic: upload.text("pubsub_topic"),
        pubsub_subscription: upload.text("pubsub_subscription"),
    };
    match state.android.connect(admin.name(), request).await {
        Ok(_) => Ok(redirect("/console/settings?done=android-connected")),
        Err(e) => {
            let message = ConsoleError::from_service(tr, e).to_string();
            render(&state, &admin, None, Some(message)).await
        }
    }
}

async fn upload_push_certificate(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, ConsoleError> {
    let (admin, upload) = match settings_form(
        &state,
        &req,
        &body,
        ("PUT", "/push-certificate"),
        &[
            "certificate_pem",
            "private_key_pem",
            "pkcs12_base64",
            "password",
        ],
    )
    .await?
    {
        Ok(v) => v,
        Err(page) => return Ok(page),
    };
    let tr = admin.tr;
    let refused = |why: String| tr.t1("settings-push-refused", &why);
    let now = chrono::Utc::now();
    let outcome = match given(tr, &upload) {
        Err(message) => Err(message),
        Ok(Given::CertificateOnly(cert)) => state
            .push
            .upload_for_kept_key(&admin.caller.identity, &cert)
            .await
            .map_err(|e| refused(ConsoleError::from_service(tr, e).to_string())),
        Ok(Given::Pem(cert, key)) => match PushCertificate::from_pem(&cert, &key, now) {
            Ok(c) => state
                .push
                .upload(&admin.caller.identity, c)
                .await
                .map_err(|e| refused(ConsoleError::from_service(tr, e).to_string())),
            Err(e) => Err(refused(e.to_string())),
        },
        Ok(Given::Pkcs12(der, password)) => {
            match PushCertificate::from_pkcs12(&der, &password, now) {
                Ok(c) => state
                    .push
                    .upload(&admin.caller.identity, c)
                    .await
                    .map_err(|e| refused(ConsoleError::from_service(tr, e).to_string())),
                Err(e) => Err(refused(e.to_string())),
            }
        }
    };
    match outcome {
        Ok(_) => Ok(redirect("/console/settings?done=push-uploaded")),
        Err(message) => render(&state, &admin, None, Some(message)).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn parse(body: &'static [u8], boundary: &str) -> Result<Upload, String> {
        parse_multipart(web::Bytes::from_static(body), boundary.to_owned()).await
    }

    #[actix_web::test]
    async fn multipart_fields_and_files_are_read() {
        let body = b"--XyZ\r\nContent-Disposition: form-data; name=\"_csrf\"\r\n\r\nabc\r\n--XyZ\r\nContent-Disposition: form-data; name=\"pkcs12_file\"; filename=\"push.p12\"\r\nContent-Type: application/x-pkcs12\r\n\r\n\x00\x01\r\n\x02\r\n--XyZ\r\nContent-Disposition: form-data; name=\"password\"\r\n\r\n\r\n--XyZ--\r\n";
        let b = boundary("multipart/form-data; boundary=XyZ").unwrap();
        let u = parse(body, &b).await.unwrap();
        assert_eq!(u.get("_csrf"), Some(&b"abc"[..]));
        assert_eq!(u.get("pkcs12_file"), Some(&b"\x00\x01\r\n\x02"[..]));
        assert_eq!(u.get("password"), None, "blank is absent");
        assert!(parse(
            b"--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nno end",
            &b
        )
        .await
        .is_err());
        assert!(parse(b"garbage", &b).await.is_err());
        assert_eq!(boundary("application/x-www-form-urlencoded"), None);
        assert_eq!(
            boundary("multipart/form-data; boundary=\"quoted\"").as_deref(),
            Some("quoted")
        );
    }
}
