//! Android at scale, against the fakes (run by hand, release build):
//!
//!     cargo build --release -p mdm-server --bin mdm
//!     cargo test --release -p mdm-tests --test android_bench -- --ignored --nocapture
//!
//! A full sync of 10,000 devices from paged devices.list (every device new: stored,
//! given its policy, assigned to it), a second sync of the same (nothing new), and
//! 10,000 STATUS_REPORT notifications pulled, stored and acknowledged. Prints the rates
//! and the server's resident memory (VmRSS, and its peak VmHWM).

use mdm_tests::fake_google::FakeGoogle;
use mdm_tests::fixture::{Backend, ServerOptions, TempDir, TestServer};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const DEVICES: usize = 10_000;

fn memory(pid: u32) -> String {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .map(|l| l.split_whitespace().nth(1).unwrap_or("?").to_owned())
            .unwrap_or_else(|| "?".into())
    };
    format!("VmRSS {} kB, VmHWM {} kB", field("VmRSS:"), field("VmHWM:"))
}

async fn bench(backend: Backend) {
    let google = FakeGoogle::start().await;
    google.create_topic("projects/p/topics/t", "projects/p/subscriptions/s");
    let key = google.service_account("p");
    let tmp = TempDir::new("android-bench");
    let server = TestServer::start_with(
        backend.clone(),
        ServerOptions {
            extra_args: vec![
                "--android-api-url".into(),
                google.url.clone(),
                "--pubsub-api-url".into(),
                google.url.clone(),
                "--android-pull-interval-ms".into(),
                "50".into(),
            ],
            ..Default::default()
        },
    )
    .await;
    let (code, v) = server
        .api(
            "POST",
            "/android/connect",
            Some(json!({"service_account": key, "pubsub_topic": "projects/p/topics/t", "pubsub_subscription": "projects/p/subscriptions/s"})),
        )
        .await;
    assert_eq!(code, StatusCode::OK, "{v}");
    let redirect = google.sign_up(v["signup_url"].as_str().unwrap());
    let local = redirect.replace("https://mdm.test.invalid", &server.base_url);
    assert_eq!(reqwest::get(&local).await.unwrap().status(), StatusCode::OK);
    let enterprise = google.enterprise_names().pop().unwrap();
    google.add_devices(&enterprise, DEVICES);
    let _ = tmp;

    let started = Instant::now();
    let (code, body) = server.api("POST", "/android/sync", Some(json!({}))).await;
    let first = started.elapsed();
    assert_eq!(code, StatusCode::OK, "{body}");
    assert_eq!(body["devices"], DEVICES);
    println!(
        "[{}] first sync of {DEVICES} new devices: {:.1} s, {:.0} devices/s; {}",
        backend.name(),
        first.as_secs_f64(),
        DEVICES as f64 / first.as_secs_f64(),
        memory(server.pid())
    );
    let started = Instant::now();
    server.api("POST", "/android/sync", Some(json!({}))).await;
    let second = started.elapsed();
    println!(
        "[{}] second sync, nothing new: {:.1} s, {:.0} devices/s; {}",
        backend.name(),
        second.as_secs_f64(),
        DEVICES as f64 / second.as_secs_f64(),
        memory(server.pid())
    );

    // 10,000 status reports, one per device, newer than what is stored.
    let names: Vec<String> = google
        .state
        .lock()
        .unwrap()
        .devices
        .keys()
        .cloned()
        .collect();
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    for n in &names {
        let mut d: Value = google.device(n).unwrap();
        d["lastStatusReportTime"] = now.clone().into();
        d["policyCompliant"] = false.into();
        google.publish("projects/p/topics/t", "STATUS_REPORT", &d);
    }
    let started = Instant::now();
    while google.unacknowledged("projects/p/subscriptions/s") > 0 {
        assert!(started.elapsed() < Duration::from_secs(600));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let pulled = started.elapsed();
    println!(
        "[{}] {DEVICES} notifications pulled, stored, acknowledged: {:.1} s, {:.0}/s; {}",
        backend.name(),
        pulled.as_secs_f64(),
        DEVICES as f64 / pulled.as_secs_f64(),
        memory(server.pid())
    );
    let changed = server
        .get("/events?kind=android.compliance_changed&limit=1")
        .await;
    assert!(!changed["items"].as_array().unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "benchmark: run by hand with --ignored --nocapture"]
async fn android_scale_sqlite() {
    bench(Backend::Sqlite).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "benchmark: run by hand with --ignored --nocapture"]
async fn android_scale_postgres() {
    if let Some(b) = Backend::postgres_from_env() {
        bench(b).await
    }
}
