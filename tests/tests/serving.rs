//! How the server is run: HTTPS with its self-signed certificate out of the box, and
//! the queue's upkeep (retention of results).

use chrono::Utc;
use mdm_server::storage::CommandQueue;
use mdm_tests::fixture::{mdm_binary, Backend, ServerOptions, TestServer};
use mdm_tests::on_every_backend;
use mdm_tests::simulator::SimDevice;
use serde_json::json;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

/// `mdm serve` as a new user starts it: no TLS options, SQLite in a private data
/// folder. Returns the process and the URL it listens on.
fn serve_zero_config(dir: &mdm_tests::fixture::TempDir, token: &str) -> (Child, String) {
    // The server refuses a data folder others can read.
    std::fs::set_permissions(&dir.0, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    let mut child = Command::new(mdm_binary())
        .args(["serve", "--listen", "127.0.0.1:0", "--workers", "1"])
        .arg("--data-dir")
        .arg(&dir.0)
        .env_remove("MDM_DATABASE_URL")
        .env("RUST_LOG", "error")
        .env("MDM_ADMIN_TOKEN", token)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let base = line
        .trim()
        .strip_prefix("mdm listening on ")
        .unwrap_or_else(|| panic!("unexpected first line: {line}"))
        .to_owned();
    (child, base)
}

/// `mdm serve` with no TLS options serves HTTPS with a certificate issued by its own
/// TLS root, which a client that trusts that root accepts (and one that does not,
/// refuses).
#[tokio::test]
async fn https_by_default_with_a_generated_certificate() {
    let dir = mdm_tests::fixture::TempDir::new("mdm-https");
    let (mut child, base) = serve_zero_config(&dir, "mdm_https_test_token_0123456789abcdef");
    assert!(base.starts_with("https://127.0.0.1:"), "{base}");
    let port = base.rsplit(':').next().unwrap();
    let localhost = format!("https://localhost:{port}");

    let pem = std::fs::read(dir.0.join("tls/root-ca.pem")).unwrap();
    let trusting = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
        .build()
        .unwrap();
    let resp = trusting
        .get(format!("{localhost}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(
        reqwest::get(format!("{localhost}/healthz")).await.is_err(),
        "untrusted by default"
    );
    // The root's key is sealed in the database; no key lies in the data folder in
    // clear.
    for entry in std::fs::read_dir(dir.0.join("tls")).unwrap() {
        let text = std::fs::read(entry.unwrap().path()).unwrap();
        assert!(!String::from_utf8_lossy(&text).contains("PRIVATE KEY"));
    }

    // The CLI over HTTPS, trusting the generated certificate.
    let out = tokio::process::Command::new(mdm_binary())
        .args(["devices", "list", "--server", &localhost, "--ca-cert"])
        .arg(dir.0.join("tls/root-ca.pem"))
        .env("MDM_TOKEN", "mdm_https_test_token_0123456789abcdef")
        .env("MDM_CLI_CONFIG", "/nonexistent")
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("0 of 0 device(s)"));
    // pki show lists the TLS root and the certificate issued from it with the CA and
    // signing identity.
    let out = std::process::Command::new(mdm_binary())
        .args(["pki", "show", "--json"])
        .arg("--data-dir")
        .arg(&dir.0)
        .env_remove("MDM_DATABASE_URL")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pki: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let names: Vec<&str> = pki
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["device_ca", "profile_signing", "server_tls_ca", "tls"]
    );
    // Well within the 366 days Mozilla's intermediate configuration accepts.
    let days_left = pki[3]["days_left"].as_i64().unwrap();
    assert!((88..=90).contains(&days_left), "{days_left}");
    assert_eq!(pki[3]["issuer"], pki[2]["subject"]);
    let _ = child.kill();
    let _ = child.wait();
}

/// sslyze (PyPI) checks the server's TLS against Mozilla's "intermediate"
/// configuration: protocols, cipher suites, curves, certificate lifespan and key. The
/// only finding allowed is the one a self-signed certificate cannot avoid: its path
/// does not validate against public roots.
#[tokio::test]
async fn tls_meets_mozilla_intermediate() {
    let probe = Command::new("python3")
        .args(["-c", "import sslyze"])
        .output();
    if !probe.map(|o| o.status.success()).unwrap_or(false) {
        eprintln!(
            "SKIPPED tls_meets_mozilla_intermediate: sslyze not installed (pip install sslyze)"
        );
        return;
    }
    let dir = mdm_tests::fixture::TempDir::new("mdm-sslyze");
    let (mut child, base) = serve_zero_config(&dir, "mdm_sslyze_test_token_0123456789abcdef");
    let port = base.rsplit(':').next().unwrap().to_owned();
    let out = tokio::process::Command::new("python3")
        .args(["-m", "sslyze", "--mozilla_config=intermediate"])
        .arg(format!("127.0.0.1:{port}"))
        .output()
        .await
        .unwrap();
    let _ = child.kill();
    let _ = child.wait();
    let report = String::from_utf8_lossy(&out.stdout);
    let section = report
        .split("COMPLIANCE AGAINST")
        .nth(1)
        .unwrap_or_else(|| panic!("sslyze printed no compliance section:\n{report}"));
    let findings: Vec<&str> = section
        .lines()
        .map(str::trim)
        .filter_map(|l| l.strip_prefix("* "))
        .collect();
    let unexpected: Vec<&&str> = findings
        .iter()
        .filter(|f| !f.starts_with("certificate_path_validation:"))
        .collect();
    assert!(
        unexpected.is_empty(),
        "not compliant with Mozilla intermediate: {unexpected:#?}\n{report}"
    );
    assert!(
        section.contains("compliant") || section.contains("FAILED"),
        "{report}"
    );
}

async fn finished_results_are_pruned_after_retention(backend: Backend) {
    let server = TestServer::start_with(backend, ServerOptions::default()).await;
    let phone = SimDevice::iphone(&server.base_url, &server.ca);
    phone.enroll().await;
    let id = server.get(&format!("/devices/udid:{}", phone.udid)).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let done = server.queue(&id, json!({ "type": "ProfileList" })).await;
    let open = server.queue(&id, json!({ "type": "SecurityInfo" })).await;
    let got = phone.idle().await.unwrap();
    assert_eq!(got.uuid, done);
    phone.not_now(&done).await;
    phone.idle().await.unwrap();
    assert!(phone.acknowledge(&done).await.is_some());
    // `open` was delivered just now and is unanswered; `done` is finished.
    let store = server.store().await;
    // Pruning as if the retention period had passed: only finished commands go.
    let pruned = store
        .prune(Utc::now() + chrono::Duration::seconds(5))
        .await
        .unwrap();
    assert_eq!(pruned, 1);
    let (code, _) = server.api("GET", &format!("/commands/{done}"), None).await;
    assert_eq!(code, 404);
    assert_eq!(server.command(&open).await["status"], "sent");
    let recent = store
        .prune(Utc::now() - chrono::Duration::days(90))
        .await
        .unwrap();
    assert_eq!(
        recent, 0,
        "nothing younger than the retention period is pruned"
    );
}

on_every_backend!(finished_results_are_pruned_after_retention);
