//! Secrets never in logs or anonymous answers, and the abuse limits of issue #16,
//! against the real server:
//! * the access log (RUST_LOG=info, the server's stderr in a file) shows enrollment
//!   URLs and SCEP messages redacted, never the token, challenge or secret query values;
//! * an Android enrollment URL gives anonymous callers no provisioning data (403),
//!   however often they ask, while the admin API gives it; its Wi-Fi password is
//!   sealed at rest, never logged and never sent to Google; every fetch of a valid
//!   enrollment URL is counted on the enrollment and in the metrics;
//! * a short MDM_ADMIN_TOKEN is refused at start (exit code 2);
//! * failed admin authentications lock out the failing address (429, Retry-After),
//!   and only it;
//! * garbage SCEP POSTs write no event and are counted in the metrics; a refusal tied
//!   to an enrollment (a challenge used twice) is still an event.
//!
//! Other client addresses are other loopback addresses (Linux routes all of 127/8 to
//! the loopback interface).

use mdm_tests::android_fixture;
use mdm_tests::enroll::{fetch_profile, rsa_key, scep_request, ScepResult};
use mdm_tests::fixture::{mdm_binary, Backend, ServerOptions, TempDir, TestServer};
use mdm_tests::on_every_backend;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::net::IpAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// An HTTP client whose connections come from `local` (a loopback address).
fn client_from(local: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(local.parse::<IpAddr>().unwrap())
        .build()
        .unwrap()
}

async fn metrics(server: &TestServer) -> Value {
    server.get("/metrics").await
}

/// The server's log once it holds every one of `markers`. The access log line is
/// written when the response is done, which may be just after the client has it:
/// this waits for the lines to appear (a readiness check, not a timed assertion; the
/// bound only turns a missing line into a failure instead of a hang).
async fn log_containing(path: &Path, markers: &[&str]) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let log = std::fs::read_to_string(path).unwrap_or_default();
        if markers.iter().all(|m| log.contains(m)) {
            return log;
        }
        assert!(
            Instant::now() < deadline,
            "the server log never showed {markers:?}:\n{log}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn tokens_never_reach_the_access_log(backend: Backend) {
    let dir = TempDir::new("mdm-secrets-log");
    let log_path = dir.0.join("server.log");
    let server = TestServer::start_with(
        backend,
        ServerOptions {
            stderr_to: Some(log_path.clone()),
            rust_log: Some("info".into()),
            ..Default::default()
        },
    )
    .await;
    server.upload_push_certificate().await;
    let (code, enrollment) = server
        .api(
            "POST",
            "/enrollments",
            Some(json!({ "platform": "apple", "name": "Front office" })),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED, "{enrollment}");
    let token = enrollment["token"].as_str().unwrap().to_owned();
    let client = reqwest::Client::new();

    let profile = fetch_profile(&server.url(&format!("/enroll/{token}"))).await;
    let challenge = profile.challenge.clone();
    // A SCEP message by GET carries the CSR with the challenge; its value is secret.
    let secret_message = format!("SECRETMESSAGE{challenge}");
    let resp = client
        .get(server.url(&format!(
            "/scep?operation=PKIOperation&message={secret_message}"
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    // Whatever a client appends to an enrollment URL, and secret-named query values.
    let resp = client
        .get(server.url(&format!(
            "/enroll/{token}/more?enterpriseToken=SECRETQUERY1&password=SECRETQUERY2&page=2"
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);

    let log = log_containing(
        &log_path,
        &[
            "\"GET /enroll/<redacted> HTTP/1.1\" 200",
            "\"GET /scep?operation=PKIOperation&message=<redacted> HTTP/1.1\" 400",
            "/enroll/<redacted>/<redacted>?enterpriseToken=<redacted>&password=<redacted>&page=2",
        ],
    )
    .await;
    for secret in [
        token.as_str(),
        challenge.as_str(),
        "SECRETMESSAGE",
        "SECRETQUERY1",
        "SECRETQUERY2",
    ] {
        assert!(
            !log.contains(secret),
            "{secret:?} is in the server log:\n{log}"
        );
    }
}

async fn android_provisioning_goes_only_to_admins(backend: Backend) {
    // Android enrollments come from Android Enterprise (the fakes of Google); the
    // server logs at debug level to a file, read below.
    let a = android_fixture::start(backend, &[]).await;
    a.connected().await;
    let server = &a.server;
    server.upload_push_certificate().await;
    let password = "Wifi-Secret-2026!";
    let (code, android) = server
        .api(
            "POST",
            "/enrollments",
            Some(json!({
                "platform": "android", "name": "Tablets",
                "android": { "wifi": { "ssid": "TownHall-Staff", "security_type": "WPA", "password": password } }
            })),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED, "{android}");
    assert_eq!(android["url_uses"], 0);
    let id = android["id"].as_str().unwrap().to_owned();
    // Google never sees the Wi-Fi password: it is ours, added to Google's QR data.
    for r in a.google.requests("/v1/") {
        assert!(
            !r.body.to_string().contains(password) && !r.path.contains(password),
            "{} {} carries the Wi-Fi password",
            r.method,
            r.path
        );
    }
    // Sealed at rest: no column of any enrollment holds it in clear.
    {
        use sea_orm::{ConnectionTrait, Statement};
        let store = server.store().await;
        let db = store.connection();
        let rows = db
            .query_all(Statement::from_string(
                db.get_database_backend(),
                "SELECT * FROM enrollments".to_owned(),
            ))
            .await
            .unwrap();
        assert_eq!(rows.len(), 1);
        let options: String = rows[0].try_get("", "options").unwrap();
        assert!(!options.contains(password), "{options}");
        assert!(options.contains("wifi_password_sealed"), "{options}");
    }
    let url = android["url"]
        .as_str()
        .unwrap()
        .replace("https://mdm.test.invalid", &server.base_url);

    // Anyone, any number of times: no provisioning data, a message saying why.
    for _ in 0..3 {
        let resp = reqwest::get(&url).await.unwrap();
        assert_eq!(resp.status(), StatusCode::FORBIDDEN);
        let text = resp.text().await.unwrap();
        assert!(text.contains("QR code"), "{text}");
        for leak in [password, "TownHall-Staff", "PROVISIONING"] {
            assert!(
                !text.contains(leak),
                "{leak:?} in the anonymous answer: {text}"
            );
        }
    }
    // An unknown token is counted only in the metrics.
    let resp = reqwest::get(server.url("/enroll/no-such-token"))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);

    // The admin API gives the provisioning data, password included, and the count.
    let view = server.get(&format!("/enrollments/{id}")).await;
    let payload: Value = serde_json::from_str(view["qr_payload"].as_str().unwrap()).unwrap();
    assert_eq!(
        payload["android.app.extra.PROVISIONING_WIFI_PASSWORD"],
        password
    );
    assert_eq!(view["url_uses"], 3, "{view}");
    let png = server
        .api("GET", &format!("/enrollments/{id}/qr.png"), None)
        .await;
    assert_eq!(png.0, StatusCode::OK);
    // Without a token, neither.
    let (code, _) = server
        .api_as(None, "GET", &format!("/enrollments/{id}"), None)
        .await;
    assert_eq!(code, StatusCode::UNAUTHORIZED);

    // Apple profile downloads are uses too, each one counted.
    let (code, apple) = server
        .api(
            "POST",
            "/enrollments",
            Some(json!({ "platform": "apple", "name": "Phones" })),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED, "{apple}");
    let apple_url = apple["url"]
        .as_str()
        .unwrap()
        .replace("https://mdm.test.invalid", &server.base_url);
    fetch_profile(&apple_url).await;
    fetch_profile(&apple_url).await;
    let list = server.get("/enrollments").await;
    let uses: Vec<(String, i64)> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["name"].as_str().unwrap().to_owned(),
                e["url_uses"].as_i64().unwrap(),
            )
        })
        .collect();
    assert!(uses.contains(&("Phones".into(), 2)), "{uses:?}");
    assert!(uses.contains(&("Tablets".into(), 3)), "{uses:?}");
    let m = metrics(server).await;
    assert_eq!(m["enrollment_url_uses"], 5, "{m}");
    assert_eq!(m["enrollment_url_unknown"], 1, "{m}");
    // Never logged, at debug level, through all of the above (the access log line
    // of the last request shows the log has caught up).
    let log = log_containing(&a.log, &["\"GET /enroll/<redacted> HTTP/1.1\" 200"]).await;
    assert!(
        !log.contains(password),
        "the Wi-Fi password is in the server log"
    );
}

/// Starts `mdm serve` with `token` as MDM_ADMIN_TOKEN; returns its exit code and
/// stderr if it refused to start, or fails the test if it started listening.
fn start_with_admin_token(backend: &Backend, token: &str) -> (Option<i32>, String) {
    let dir = TempDir::new("mdm-short-token");
    let database_url = match backend {
        Backend::Sqlite => format!("sqlite://{}?mode=rwc", dir.0.join("mdm.sqlite").display()),
        // The token is checked before any database is opened.
        Backend::Postgres(url) => url.clone(),
    };
    let mut child = Command::new(mdm_binary())
        .arg("serve")
        .arg("--plain-http")
        .args(["--listen", "127.0.0.1:0"])
        .arg("--data-dir")
        .arg(dir.0.join("data"))
        .args(["--database-url", &database_url])
        .args(["--public-url", "https://mdm.test.invalid"])
        .env("MDM_ADMIN_TOKEN", token)
        .env_remove("MDM_CONFIG")
        .env_remove("MDM_DATABASE_URL")
        .env_remove("MDM_DATA_DIR")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start mdm serve");
    // Ends when the process exits; a server that starts prints the line and runs on.
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        if line.unwrap().starts_with("mdm listening on ") {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "mdm serve started with MDM_ADMIN_TOKEN of {} characters",
                token.len()
            );
        }
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

async fn a_short_admin_token_is_refused_at_start(backend: Backend) {
    for token in ["a", "mdm_short", &"x".repeat(31)] {
        let (code, stderr) = start_with_admin_token(&backend, token);
        assert_eq!(code, Some(2), "{stderr}");
        assert!(
            stderr.contains("MDM_ADMIN_TOKEN") && stderr.contains("at least 32"),
            "{stderr}"
        );
        assert!(
            !stderr.contains(token) || token.len() < 2,
            "the token is echoed: {stderr}"
        );
    }
    // 32 characters start (the fixture's tokens are longer still).
    let server = TestServer::start(backend).await;
    assert!(server.admin_token.len() >= 32);
    assert_eq!(server.get("/metrics").await["admin_auth_failures"], 0);
}

async fn failed_admin_authentication_is_throttled_per_address(backend: Backend) {
    let server = TestServer::start_with(
        backend,
        ServerOptions {
            extra_args: vec!["--admin-max-failures".into(), "3".into()],
            ..Default::default()
        },
    )
    .await;
    let devices = server.url("/api/v1/devices");
    let wrong = "mdm_wrong_token_0123456789abcdef0123456789";

    // Requests without a token guess nothing and are not counted.
    let quiet = client_from("127.0.0.3");
    for _ in 0..5 {
        let resp = quiet.get(&devices).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    }
    let resp = quiet
        .get(&devices)
        .bearer_auth(&server.admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);

    // Three wrong tokens from one address: 401 each, then 429 for any token.
    let guesser = client_from("127.0.0.1");
    for i in 0..3 {
        let resp = guesser
            .get(&devices)
            .bearer_auth(wrong)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "failure {i}");
    }
    for token in [wrong, server.admin_token.as_str()] {
        let resp = guesser
            .get(&devices)
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
        let wait: u64 = resp
            .headers()
            .get("Retry-After")
            .expect("429 with Retry-After")
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=600).contains(&wait), "Retry-After {wait}");
        let body: Value = resp.json().await.unwrap();
        assert!(body["error"]
            .as_str()
            .unwrap()
            .contains("failed authentications"));
    }

    // The right token from another address works; a wrong one there is only a 401.
    let admin = client_from("127.0.0.2");
    let resp = admin
        .get(&devices)
        .bearer_auth(&server.admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let resp = admin.get(&devices).bearer_auth(wrong).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);

    let admin_get = |path: &str| {
        admin
            .get(server.url(&format!("/api/v1{path}")))
            .bearer_auth(&server.admin_token)
            .send()
    };
    let m: Value = admin_get("/metrics").await.unwrap().json().await.unwrap();
    assert_eq!(m["admin_auth_failures"], 4, "{m}");
    assert_eq!(m["admin_auth_throttled"], 2, "{m}");
    // Failed authentications are not events: anyone can send them.
    let events: Value = admin_get("/events?limit=1000")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(events["items"], json!([]), "{events}");
}

async fn garbage_scep_posts_are_counted_not_recorded(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.upload_push_certificate().await;
    let client = reqwest::Client::new();
    for i in 0..51u32 {
        let body: Vec<u8> = match i % 3 {
            0 => b"not a pkcs7 message".to_vec(),
            1 => vec![0x30, 0x82, 0xff, 0xff, i as u8],
            _ => Vec::new(),
        };
        let resp = client
            .post(server.url("/scep?operation=PKIOperation"))
            .header("Content-Type", "application/x-pki-message")
            .body(body)
            .send()
            .await
            .unwrap();
        assert!(
            resp.status() == StatusCode::BAD_REQUEST || resp.status() == StatusCode::OK,
            "garbage {i}: {}",
            resp.status()
        );
    }
    assert!(server.events("scep.").await.is_empty());
    let m = metrics(&server).await;
    assert_eq!(m["scep_refused"], 51, "{m}");

    // A well-formed request with a challenge no enrollment issued: counted, no event.
    let ca_der = reqwest::get(server.url("/scep?operation=GetCACert"))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let ca = openssl::x509::X509::from_der(&ca_der).expect("GetCACert answers a DER certificate");
    let key = rsa_key();
    let unknown = "0".repeat(40);
    assert!(matches!(
        scep_request(&server.base_url, &ca, &key, "guess", Some(&unknown), None).await,
        ScepResult::Refused(_)
    ));
    assert!(server.events("scep.").await.is_empty());

    // A refusal tied to an enrollment still is an event: its challenge used twice.
    let (code, enrollment) = server
        .api(
            "POST",
            "/enrollments",
            Some(json!({ "platform": "apple", "name": "Phones" })),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED, "{enrollment}");
    let url = enrollment["url"]
        .as_str()
        .unwrap()
        .replace("https://mdm.test.invalid", &server.base_url);
    let profile = fetch_profile(&url).await;
    assert!(matches!(
        scep_request(
            &server.base_url,
            &ca,
            &key,
            "d1",
            Some(&profile.challenge),
            None
        )
        .await,
        ScepResult::Issued(_)
    ));
    assert!(matches!(
        scep_request(
            &server.base_url,
            &ca,
            &rsa_key(),
            "d2",
            Some(&profile.challenge),
            None
        )
        .await,
        ScepResult::Refused(_)
    ));
    let refused = server.events("scep.refused").await;
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(refused[0]["severity"], 1);
    let m = metrics(&server).await;
    assert_eq!(m["scep_refused"], 53, "{m}");
    assert_eq!(m["scep_unknown_challenge"], 1, "{m}");
}

on_every_backend!(
    tokens_never_reach_the_access_log,
    android_provisioning_goes_only_to_admins,
    a_short_admin_token_is_refused_at_start,
    failed_admin_authentication_is_throttled_per_address,
    garbage_scep_posts_are_counted_not_recorded,
);
