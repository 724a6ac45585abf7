//! Android Enterprise through the Android Management API, against the local fakes of
//! Google's token endpoint, AMAPI and Pub/Sub (tests/src/fake_google*.rs).

use mdm_tests::fake_google::FakeGoogle;
use mdm_tests::fixture::{Backend, ServerOptions, TempDir, TestServer};
use mdm_tests::on_every_backend;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const TOPIC: &str = "projects/town-hall/topics/android";
const SUBSCRIPTION: &str = "projects/town-hall/subscriptions/mdm";

struct Android {
    server: TestServer,
    google: FakeGoogle,
    key: Value,
    key_file: std::path::PathBuf,
    log: std::path::PathBuf,
    _tmp: TempDir,
}

async fn start(backend: Backend, extra: &[&str]) -> Android {
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
    async fn connect(&self) -> String {
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
    async fn sign_up(&self, signup_url: &str) -> (StatusCode, String) {
        let redirect = self.google.sign_up(signup_url);
        let local = redirect.replace("https://mdm.test.invalid", &self.server.base_url);
        let resp = reqwest::get(&local).await.unwrap();
        (resp.status(), resp.text().await.unwrap())
    }

    async fn status(&self) -> Value {
        self.server.get("/android").await
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

async fn connect_and_sign_up(backend: Backend) {
    let a = start(backend, &[]).await;
    let (code, body) = a.server.api("GET", "/android", None).await;
    assert_eq!(code, StatusCode::NOT_FOUND, "{body}");

    let signup_url = a.connect().await;
    assert!(signup_url.starts_with("https://enterprise.google.com/signup/"));
    let status = a.status().await;
    assert_eq!(status["state"], "signup_pending");
    assert_eq!(status["signup_url"], signup_url);
    assert_eq!(status["project_id"], "town-hall");
    assert_eq!(status["client_email"], a.key["client_email"]);
    // signupUrls.create was called with our callback URL, and the token endpoint
    // verified the JWT assertion's signature before answering.
    let signups = a.google.requests("POST /v1/signupUrls");
    assert_eq!(signups.len(), 1);
    let callback = &signups[0].query["callbackUrl"];
    assert!(
        callback.starts_with("https://mdm.test.invalid/android/signup-callback?"),
        "{callback}"
    );
    assert_eq!(a.google.state.lock().unwrap().token_requests, 1);

    // A browser without the link's secret cannot finish the sign-up.
    let forged = format!(
        "{}/android/signup-callback?signupToken=guess&enterpriseToken=EAGx",
        a.server.base_url
    );
    assert_eq!(
        reqwest::get(&forged).await.unwrap().status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(a.status().await["state"], "signup_pending");

    let redirect = a.google.sign_up(&signup_url);
    let local = redirect.replace("https://mdm.test.invalid", &a.server.base_url);
    let resp = reqwest::get(&local).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let enterprise = a.google.enterprise_names().pop().unwrap();
    assert!(resp.text().await.unwrap().contains(&enterprise));
    // The enterprise was created with our topic and the four notification types.
    let created = a.google.requests("POST /v1/enterprises");
    assert_eq!(created.len(), 1);
    assert_eq!(created[0].body["pubsubTopic"], TOPIC);
    if a.google.validates() {
        assert_eq!(
            created[0].method_id.as_deref(),
            Some("androidmanagement.enterprises.create")
        );
    }
    let types = json!(["ENROLLMENT", "STATUS_REPORT", "COMMAND", "USAGE_LOGS"]);
    assert_eq!(created[0].body["enabledNotificationTypes"], types);

    let status = a.status().await;
    assert_eq!(status["state"], "enterprise_created");
    assert_eq!(status["enterprise"], enterprise);
    assert_eq!(status["notification_types"], types);
    assert_eq!(status["pubsub_subscription"], SUBSCRIPTION);
    assert!(status["signup_url"].is_null());
    // The same callback again (a reload) does not create a second enterprise.
    assert_eq!(
        reqwest::get(&local).await.unwrap().status(),
        StatusCode::CONFLICT
    );
    assert_eq!(a.google.requests("POST /v1/enterprises").len(), 1);

    // `mdm android status` shows it.
    let out = a.server.clone_cli().run(&["android", "status"]).await;
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(&enterprise), "{text}");
    assert!(
        text.contains("ENROLLMENT, STATUS_REPORT, COMMAND, USAGE_LOGS"),
        "{text}"
    );

    let events = a.server.events("android.enterprise_created").await;
    assert_eq!(events.len(), 1);
    assert_eq!(a.server.events("admin.android_connected").await.len(), 1);

    // The key is sealed at rest, and neither it nor an access token reaches the log.
    let store = a.server.store().await;
    use mdm_server::storage::AndroidStore;
    let row = store.android_enterprise().await.unwrap().unwrap();
    let pem = a.key["private_key"].as_str().unwrap();
    let body_line = pem.lines().nth(1).unwrap();
    let sealed = String::from_utf8_lossy(&row.service_account_sealed);
    assert!(!sealed.contains(body_line));
    assert!(!sealed.contains("service_account"));
    let log = a.log();
    assert!(!log.contains(body_line), "the private key is in the log");
    for token in a.google.state.lock().unwrap().issued_tokens() {
        assert!(!log.contains(&token), "an access token is in the log");
    }
    let enterprise_token = redirect.rsplit("enterpriseToken=").next().unwrap();
    assert!(
        !log.contains(enterprise_token),
        "the enterprise token is in the log"
    );
}

async fn connect_refusals(backend: Backend) {
    let a = start(backend, &[]).await;
    let cli = a.server.clone_cli();
    let tmp = TempDir::new("android-bad");
    let bad = |name: &str, content: &Value| {
        let p = tmp.0.join(name);
        std::fs::write(&p, content.to_string()).unwrap();
        p
    };
    // An OAuth client file, not a service-account key: refused, nothing stored.
    let client = bad("client.json", &json!({"installed": {"client_id": "x"}}));
    let out = cli
        .run(&[
            "android",
            "connect",
            "--service-account",
            client.to_str().unwrap(),
        ])
        .await;
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("\"type\" is missing"), "{err}");
    // A key Google does not know (deleted in the console): the token endpoint
    // refuses the assertion's signature.
    let mut unknown = a.key.clone();
    let other = FakeGoogle::start().await.service_account("town-hall");
    unknown["private_key"] = other["private_key"].clone();
    let unknown = bad("unknown.json", &unknown);
    let out = cli
        .run(&[
            "android",
            "connect",
            "--service-account",
            unknown.to_str().unwrap(),
        ])
        .await;
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("Invalid JWT Signature"), "{err}");
    // A malformed topic name.
    let out = cli
        .run(&[
            "android",
            "connect",
            "--service-account",
            a.key_file.to_str().unwrap(),
            "--pubsub-topic",
            "android",
            "--pubsub-subscription",
            SUBSCRIPTION,
        ])
        .await;
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("projects/<project>/topics/<name>"));
    // The project lost the role: Google's 403 is shown, nothing stored.
    a.google.state.lock().unwrap().deny_all = true;
    let (code, body) = a
        .server
        .api(
            "POST",
            "/android/connect",
            Some(json!({ "service_account": a.key })),
        )
        .await;
    assert_eq!(code, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("PERMISSION_DENIED"),
        "{body}"
    );
    let (code, _) = a.server.api("GET", "/android", None).await;
    assert_eq!(code, StatusCode::NOT_FOUND);
    assert!(a.server.events("admin.android_connected").await.is_empty());
    // A callback with nothing pending.
    let url = format!(
        "{}/android/signup-callback?signupToken=x&enterpriseToken=y",
        a.server.base_url
    );
    assert_eq!(
        reqwest::get(&url).await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
}

async fn google_faults_during_connect(backend: Backend) {
    let a = start(backend, &[]).await;
    // Google is overloaded twice and asks for a second's patience: the server waits
    // at least that long, then succeeds.
    a.google.inject("POST /v1/signupUrls", 503, Some(1), 2);
    let started = Instant::now();
    let url = a.connect().await;
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "Retry-After honoured"
    );
    assert_eq!(a.google.requests("POST /v1/signupUrls").len(), 3);
    // The access token is revoked: one 401, one refresh, then the call goes through.
    let before = a.google.state.lock().unwrap().token_requests;
    a.google.revoke_tokens();
    let (code, text) = a.sign_up(&url).await;
    assert_eq!(code, StatusCode::OK, "{text}");
    assert_eq!(a.google.state.lock().unwrap().token_requests, before + 1);
    // A Google that stays down: the admin gets a 503 and nothing is stored.
    a.google.inject("POST /v1/signupUrls", 500, None, 100);
    let (code, body) = a
        .server
        .api(
            "POST",
            "/android/connect",
            Some(json!({ "service_account": a.key })),
        )
        .await;
    assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(a.status().await["state"], "enterprise_created");
    // The admin API answers at once meanwhile.
    let started = Instant::now();
    a.server.get("/devices").await;
    assert!(started.elapsed() < Duration::from_secs(1));
}

on_every_backend!(
    connect_and_sign_up,
    connect_refusals,
    google_faults_during_connect
);
