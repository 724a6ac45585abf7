//! Android Enterprise in tests: the real server started against the fakes of Google
//! (tests/src/fake_google*.rs), connected (`mdm android connect`) and signed up as an
//! admin would, with phones enrolled through AMAPI enrollment tokens. Shared by every
//! test that needs Android enrollments, since there is no other way to make one.

use crate::fake_google::FakeGoogle;
use crate::fake_google_amapi::Phone;
use crate::fixture::{Backend, ServerOptions, TempDir, TestServer};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// The key of Google's enrollment token inside the provisioning extras bundle.
pub const DPC_TOKEN: &str = "com.google.android.apps.work.clouddpc.EXTRA_ENROLLMENT_TOKEN";
pub const EXTRAS: &str = "android.app.extra.PROVISIONING_ADMIN_EXTRAS_BUNDLE";

pub const TOPIC: &str = "projects/town-hall/topics/android";
pub const SUBSCRIPTION: &str = "projects/town-hall/subscriptions/mdm";

/// A server started against the fakes of Google (not yet connected).
pub struct Android {
    pub server: TestServer,
    pub google: FakeGoogle,
    /// The service-account key the fake issued, and its file for `mdm android connect`.
    pub key: Value,
    pub key_file: PathBuf,
    /// The server's stderr (RUST_LOG=debug), for tests that look for leaks.
    pub log: PathBuf,
    _tmp: TempDir,
}

/// Starts the fakes (a topic and subscription made) and the server pointed at them,
/// with `extra` server arguments.
pub async fn start(backend: Backend, extra: &[&str]) -> Android {
    let google = FakeGoogle::start().await;
    google.create_topic(TOPIC, SUBSCRIPTION);
    let key = google.service_account("town-hall");
    let tmp = TempDir::new("android");
    let key_file = tmp.0.join("key.json");
    std::fs::write(&key_file, key.to_string()).unwrap();
    let log = tmp.0.join("server.log");
    let mut extra_args: Vec<String> = vec![
        "--android-api-url".into(),
        google.url.clone(),
        "--pubsub-api-url".into(),
        google.url.clone(),
        "--android-retry-base-ms".into(),
        "50".into(),
    ];
    extra_args.extend(extra.iter().map(|s| s.to_string()));
    let server = TestServer::start_with(
        backend,
        ServerOptions {
            extra_args,
            stderr_to: Some(log.clone()),
            rust_log: Some("debug".into()),
            ..Default::default()
        },
    )
    .await;
    Android {
        server,
        google,
        key,
        key_file,
        log,
        _tmp: tmp,
    }
}

impl Android {
    /// `mdm android connect` with the topic and subscription; returns the sign-up URL.
    pub async fn connect(&self) -> String {
        let out = self
            .server
            .clone_cli()
            .run(&[
                "android",
                "connect",
                "--service-account",
                self.key_file.to_str().unwrap(),
                "--pubsub-topic",
                TOPIC,
                "--pubsub-subscription",
                SUBSCRIPTION,
                "--json",
            ])
            .await;
        assert!(
            out.status.success(),
            "connect: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        v["signup_url"].as_str().unwrap().to_owned()
    }

    /// The admin signs up at Google; their browser comes back to our callback.
    pub async fn sign_up(&self, signup_url: &str) -> (StatusCode, String) {
        let redirect = self.google.sign_up(signup_url);
        let local = redirect.replace("https://mdm.test.invalid", &self.server.base_url);
        let resp = reqwest::get(&local).await.unwrap();
        (resp.status(), resp.text().await.unwrap())
    }

    pub async fn status(&self) -> Value {
        self.server.get("/android").await
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Android {
    /// Connected and signed up; returns the enterprise name.
    pub async fn connected(&self) -> String {
        let url = self.connect().await;
        let (code, text) = self.sign_up(&url).await;
        assert_eq!(code, StatusCode::OK, "{text}");
        self.google.enterprise_names().pop().unwrap()
    }

    pub async fn android_devices(&self) -> Vec<Value> {
        self.server
            .get("/devices?platform=android&limit=1000")
            .await["items"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// Waits (up to 15 s) until `check` holds for the server's view.
    pub async fn until<F: Fn(&Value) -> bool>(&self, path: &str, what: &str, check: F) -> Value {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let (code, v) = self.server.api("GET", path, None).await;
            if code == StatusCode::OK && check(&v) {
                return v;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}: {v}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Every policy body the server sent, written for the schema check in CI.
    pub fn write_policies(&self, test: &str) {
        let mut seen = std::collections::HashSet::new();
        for (i, r) in self.google.requests("PATCH /v1/").iter().enumerate() {
            // Every distinct body once: 250 equal device policies are one artifact.
            if r.path.contains("/policies/") && seen.insert(r.body.to_string()) {
                crate::artifacts::write_android(
                    &format!("policy-{test}-{i}.json"),
                    serde_json::to_string_pretty(&r.body).unwrap().as_bytes(),
                );
            }
        }
    }
}

impl Android {
    /// A phone enrolled through a new enrollment, reported and stored; returns the
    /// device id and the AMAPI device name.
    pub async fn enrolled_phone(&self, phone: &Phone, work_profile: bool) -> (String, String) {
        let e = self
            .server
            .create_enrollment(json!({"platform": "android", "name": "phones", "android": {"work_profile": work_profile}}))
            .await;
        let payload: Value = serde_json::from_str(e["qr_payload"].as_str().unwrap()).unwrap();
        let token = payload[EXTRAS][DPC_TOKEN].as_str().unwrap();
        let name = self.google.enroll_phone(token, phone).unwrap();
        self.google.report_status(&name, &[]);
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let found = self
                .android_devices()
                .await
                .into_iter()
                .find(|d| d["serial_number"] == phone.serial.as_str());
            if let Some(d) = found {
                let id = d["id"].as_str().unwrap().to_owned();
                if self.server.get(&format!("/devices/{id}")).await["android"]
                    ["last_status_report_at"]
                    .is_string()
                {
                    return (id, name);
                }
            }
            assert!(Instant::now() < deadline, "the phone did not appear");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The one open operation of `kind` at Google.
    pub fn operation(&self, kind: &str) -> String {
        let ops: Vec<String> = self
            .google
            .open_operations()
            .into_iter()
            .filter(|(_, k)| k == kind)
            .map(|(n, _)| n)
            .collect();
        assert_eq!(ops.len(), 1, "open {kind} operations: {ops:?}");
        ops[0].clone()
    }

    pub async fn command_status(&self, uuid: &str, status: &str) -> Value {
        self.until(&format!("/commands/{uuid}"), status, |v| {
            v["status"] == status
        })
        .await
    }
}
