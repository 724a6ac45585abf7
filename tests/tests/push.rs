//! Push end to end: the server's APNs client against a faithful local APNs (HTTP/2,
//! client certificate required), from queueing a command to the device fetching it.

use enrollment::identity::testing::TestCa;
use mdm_tests::fake_apns::{make_push_certificate, FakeApns, Scripted};
use mdm_tests::fixture::{Backend, ServerOptions, TempDir, TestServer};
use mdm_tests::on_every_backend;
use mdm_tests::simulator::SimDevice;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::time::Duration;

const TOPIC: &str = "com.apple.mgmt.External.5c1a3a5e-8d4a-4b7f-9a53-0f1f4d2b6e77";

struct PushSetup {
    server: TestServer,
    fake: FakeApns,
    apple_ca: TestCa,
    _dir: TempDir,
}

async fn start(backend: Backend, extra: &[&str]) -> PushSetup {
    let apple_ca = TestCa::new("Fake Apple Push CA");
    let fake = FakeApns::start(&apple_ca.cert).await;
    let dir = TempDir::new("mdm-push");
    let ca_file = dir.0.join("apns-ca.pem");
    std::fs::write(&ca_file, fake.server_ca_pem()).unwrap();
    let mut args = vec![
        "--apns-url".to_owned(),
        fake.url(),
        "--apns-ca-cert".to_owned(),
        ca_file.display().to_string(),
        "--apns-retry-base-ms".to_owned(),
        "20".to_owned(),
    ];
    if !extra.contains(&"--push-coalesce-ms") {
        args.extend(["--push-coalesce-ms".to_owned(), "100".to_owned()]);
    }
    args.extend(extra.iter().map(|s| s.to_string()));
    let server = TestServer::start_with(
        backend,
        ServerOptions {
            extra_args: args,
            ..Default::default()
        },
    )
    .await;
    PushSetup {
        server,
        fake,
        apple_ca,
        _dir: dir,
    }
}

async fn upload_pem(setup: &PushSetup, topic: &str, days: i64) -> (StatusCode, Value) {
    let (key, cert) = make_push_certificate(&setup.apple_ca, topic, days);
    let body = json!({
        "certificate_pem": String::from_utf8(cert.to_pem().unwrap()).unwrap(),
        "private_key_pem": String::from_utf8(key.private_key_to_pem_pkcs8().unwrap()).unwrap(),
    });
    setup
        .server
        .api("PUT", "/push-certificate", Some(body))
        .await
}

async fn enrolled(setup: &PushSetup) -> (SimDevice, String) {
    let device = SimDevice::iphone(&setup.server.base_url, &setup.server.ca);
    device.enroll().await;
    let id = setup
        .server
        .get(&format!("/devices/udid:{}", device.udid))
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    (device, id)
}

/// The device's push attempts once at least `n` are recorded (at most 10 s).
async fn recorded_attempts(setup: &PushSetup, id: &str, n: usize) -> serde_json::Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let attempts = setup
            .server
            .get(&format!("/devices/{id}/push-attempts"))
            .await;
        let count = attempts["items"].as_array().map_or(0, Vec::len);
        if count >= n || std::time::Instant::now() > deadline {
            return attempts;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn queued_lock_reaches_the_device_through_a_push(backend: Backend) {
    let setup = start(backend, &[]).await;
    let (code, info) = upload_pem(&setup, TOPIC, 365).await;
    assert_eq!(code, StatusCode::OK, "{info}");
    assert_eq!(info["topic"], TOPIC);
    assert!(info["warning"].is_null());
    let (device, id) = enrolled(&setup).await;

    let (code, body) = setup
        .server
        .api(
            "POST",
            &format!("/devices/{id}/lock"),
            Some(json!({ "message": "Lost" })),
        )
        .await;
    assert_eq!(code, StatusCode::ACCEPTED, "{body}");
    let pushes = setup.fake.wait_for(1, Duration::from_secs(10)).await;
    let push = &pushes[0];
    assert_eq!(push.status, 200);
    assert_eq!(push.token, hex::encode(&device.push_token));
    assert_eq!(push.topic, TOPIC);
    assert_eq!(push.client_topic, TOPIC);
    assert_eq!(push.push_type, "mdm");
    assert_eq!(push.priority.as_deref(), Some("10"));
    assert!(
        push.expiration.as_deref().unwrap().parse::<i64>().unwrap()
            > chrono::Utc::now().timestamp()
    );
    assert_eq!(push.magic.as_deref(), Some(device.push_magic.as_str()));

    // Woken, the device connects and receives the lock.
    let lock = device.idle().await.expect("the lock is waiting");
    assert_eq!(lock.request_type, "DeviceLock");

    // The server records the attempt once APNs' answer is back, which may be just
    // after the fake counted the push: wait for the record, within a bound.
    let attempts = recorded_attempts(&setup, &id, 1).await;
    assert_eq!(attempts["items"][0]["status"], 200);
    assert_eq!(attempts["items"][0]["apns_id"], push.apns_id.as_str());
    assert!(setup.server.get(&format!("/devices/{id}")).await["last_push_at"].is_string());

    // On demand, from the command line.
    let out = setup
        .server
        .clone_cli()
        .run(&["devices", "push", &device.serial])
        .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("delivered"));
    setup.fake.wait_for(2, Duration::from_secs(10)).await;
}

async fn many_commands_one_push_and_fan_out(backend: Backend) {
    // A generous window, so the four API calls below fall inside it on a busy machine.
    let setup = start(backend, &["--push-coalesce-ms", "1500"]).await;
    upload_pem(&setup, TOPIC, 365).await;
    let (_device, id) = enrolled(&setup).await;
    for request_type in [
        "ProfileList",
        "SecurityInfo",
        "CertificateList",
        "DeviceInformation",
    ] {
        setup
            .server
            .queue(&id, json!({ "type": request_type }))
            .await;
    }
    setup.fake.wait_for(1, Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(setup.fake.received().len(), 1, "four commands, one push");

    let mut devices = Vec::new();
    for _ in 0..20 {
        devices.push(enrolled(&setup).await);
    }
    let ids: Vec<&str> = devices.iter().map(|(_, id)| id.as_str()).collect();
    let (code, _) = setup
        .server
        .api(
            "POST",
            "/commands",
            Some(json!({ "device_ids": ids, "type": "ProfileList" })),
        )
        .await;
    assert_eq!(code, StatusCode::ACCEPTED);
    let pushes = setup.fake.wait_for(21, Duration::from_secs(10)).await;
    let mut tokens: Vec<String> = pushes[1..].iter().map(|p| p.token.clone()).collect();
    tokens.sort();
    let mut expected: Vec<String> = devices
        .iter()
        .map(|(d, _)| hex::encode(&d.push_token))
        .collect();
    expected.sort();
    assert_eq!(tokens, expected, "each device pushed once");
}

async fn unregistered_token_stops_pushes_until_token_update(backend: Backend) {
    let setup = start(backend, &[]).await;
    upload_pem(&setup, TOPIC, 365).await;
    let (mut device, id) = enrolled(&setup).await;
    let token = hex::encode(&device.push_token);
    setup
        .fake
        .script_token(&token, vec![Scripted::Fail(410, "Unregistered")]);
    let (code, result) = setup
        .server
        .api("POST", &format!("/devices/{id}/push"), None)
        .await;
    assert_eq!(code, StatusCode::OK, "{result}");
    assert_eq!(result["outcome"], "token_invalid");
    assert_eq!(result["http_status"], 410);
    assert_eq!(result["reason"], "Unregistered");
    assert!(setup.server.get(&format!("/devices/{id}")).await["push_token_invalid_at"].is_string());

    // No more pushes to that token...
    let (_, result) = setup
        .server
        .api("POST", &format!("/devices/{id}/push"), None)
        .await;
    assert_eq!(result["outcome"], "push_token_invalid");
    assert_eq!(setup.fake.received().len(), 1);
    // ...until the device sends a new TokenUpdate (with its new token).
    device.push_token = vec![0x5a; 32];
    assert_eq!(device.token_update().await.status, StatusCode::OK);
    let (_, result) = setup
        .server
        .api("POST", &format!("/devices/{id}/push"), None)
        .await;
    assert_eq!(result["outcome"], "delivered", "{result}");

    // BadDeviceToken is treated the same way.
    setup.fake.script_token(
        &hex::encode(&device.push_token),
        vec![Scripted::Fail(400, "BadDeviceToken")],
    );
    let (_, result) = setup
        .server
        .api("POST", &format!("/devices/{id}/push"), None)
        .await;
    assert_eq!(result["outcome"], "token_invalid");
}

async fn transient_failures_are_retried(backend: Backend) {
    let setup = start(backend, &[]).await;
    upload_pem(&setup, TOPIC, 365).await;
    let (_device, id) = enrolled(&setup).await;
    setup.fake.script(vec![
        Scripted::Fail(429, "TooManyRequests"),
        Scripted::Fail(503, "ServiceUnavailable"),
        Scripted::DropConnection,
    ]);
    let (code, result) = setup
        .server
        .api("POST", &format!("/devices/{id}/push"), None)
        .await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(result["outcome"], "delivered", "{result}");
    assert_eq!(result["attempts"], 4);
    let attempts = setup
        .server
        .get(&format!("/devices/{id}/push-attempts"))
        .await;
    let statuses: Vec<Value> = attempts["items"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .map(|a| a["status"].clone())
        .collect();
    assert_eq!(
        statuses,
        vec![json!(429), json!(503), Value::Null, json!(200)]
    );
    assert!(
        setup.fake.connections() >= 2,
        "reconnected after the dropped connection"
    );

    // GOAWAY: the client reconnects and keeps delivering.
    setup.fake.script(vec![Scripted::GoAway]);
    for _ in 0..3 {
        let (_, result) = setup
            .server
            .api("POST", &format!("/devices/{id}/push"), None)
            .await;
        assert_eq!(result["outcome"], "delivered", "{result}");
    }
}

async fn configuration_errors_are_reported(backend: Backend) {
    let setup = start(backend, &["--apns-max-attempts", "2"]).await;
    upload_pem(&setup, TOPIC, 365).await;
    let (device, id) = enrolled(&setup).await;
    setup.fake.script_token(
        &hex::encode(&device.push_token),
        vec![Scripted::Fail(400, "DeviceTokenNotForTopic")],
    );
    let (_, result) = setup
        .server
        .api("POST", &format!("/devices/{id}/push"), None)
        .await;
    assert_eq!(result["outcome"], "configuration_error", "{result}");
    let events = setup.server.events("push.configuration_error").await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["severity"], 2);
    assert!(events[0]["message"]
        .as_str()
        .unwrap()
        .contains("DeviceTokenNotForTopic"));

    let (_other, other_id) = enrolled(&setup).await;
    setup
        .fake
        .script(vec![Scripted::Fail(500, "InternalServerError"); 2]);
    let (_, result) = setup
        .server
        .api("POST", &format!("/devices/{other_id}/push"), None)
        .await;
    assert_eq!(result["outcome"], "retries_exhausted", "{result}");
    assert_eq!(result["attempts"], 2);
}

async fn push_certificate_rules(backend: Backend) {
    let setup = start(backend, &[]).await;
    let (code, body) = setup.server.api("GET", "/push-certificate", None).await;
    assert_eq!(code, StatusCode::NOT_FOUND);
    assert!(body["error"]
        .as_str()
        .unwrap()
        .contains("no push certificate"));
    let (_device, id) = enrolled(&setup).await;
    let (_, result) = setup
        .server
        .api("POST", &format!("/devices/{id}/push"), None)
        .await;
    assert_eq!(result["outcome"], "no_push_certificate");

    // Expired: refused with the date.
    let (code, body) = upload_pem(&setup, TOPIC, -3).await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        body["error"].as_str().unwrap().contains("expired"),
        "{body}"
    );
    // Not an MDM push certificate (no UID topic).
    let (key, cert) = setup.apple_ca.issue("not a push certificate");
    let (code, body) = setup
        .server
        .api(
            "PUT",
            "/push-certificate",
            Some(json!({
                "certificate_pem": String::from_utf8(cert.to_pem().unwrap()).unwrap(),
                "private_key_pem": String::from_utf8(key.private_key_to_pem_pkcs8().unwrap()).unwrap(),
            })),
        )
        .await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body["error"].as_str().unwrap().contains("topic"), "{body}");

    // Expiring soon: accepted, with a warning.
    let (code, info) = upload_pem(&setup, TOPIC, 10).await;
    assert_eq!(code, StatusCode::OK, "{info}");
    assert!(info["days_left"].as_i64().unwrap() <= 10);
    assert!(
        info["warning"].as_str().unwrap().contains("expires in"),
        "{info}"
    );
    let out = setup.server.clone_cli().run(&["push-cert", "show"]).await;
    assert!(String::from_utf8_lossy(&out.stdout).contains("WARNING"));

    // Renewal keeps the topic; another topic is refused with an explanation.
    let (code, body) = upload_pem(
        &setup,
        "com.apple.mgmt.External.00000000-1111-4222-8333-444444444444",
        365,
    )
    .await;
    assert_eq!(code, StatusCode::CONFLICT);
    assert!(body["error"].as_str().unwrap().contains("Renew"), "{body}");
    let (code, info) = upload_pem(&setup, TOPIC, 365).await;
    assert_eq!(code, StatusCode::OK);
    assert!(info["warning"].is_null());
    let uploads = setup.server.events("admin.push_certificate_uploaded").await;
    assert_eq!(uploads.len(), 2);

    // PKCS#12, as Keychain and Apple's tools export it (legacy RC2/3DES) and modern.
    let (key, cert) = make_push_certificate(&setup.apple_ca, TOPIC, 365);
    let dir = TempDir::new("mdm-p12");
    std::fs::write(dir.0.join("cert.pem"), cert.to_pem().unwrap()).unwrap();
    std::fs::write(
        dir.0.join("key.pem"),
        key.private_key_to_pem_pkcs8().unwrap(),
    )
    .unwrap();
    for legacy in [true, false] {
        let p12 = dir.0.join(format!("push-{legacy}.p12"));
        let mut cmd = std::process::Command::new("openssl");
        cmd.args(["pkcs12", "-export", "-passout", "pass:s3cret"])
            .arg("-in")
            .arg(dir.0.join("cert.pem"))
            .arg("-inkey")
            .arg(dir.0.join("key.pem"))
            .arg("-out")
            .arg(&p12);
        if legacy {
            cmd.arg("-legacy");
        }
        let status = cmd.status().expect("openssl command");
        assert!(status.success());
        let out = tokio::process::Command::new(mdm_tests::fixture::mdm_binary())
            .args(["push-cert", "upload", "--pkcs12"])
            .arg(&p12)
            .env("MDM_SERVER", &setup.server.base_url)
            .env("MDM_TOKEN", &setup.server.admin_token)
            .env("MDM_PKCS12_PASSWORD", "s3cret")
            .env("MDM_CLI_CONFIG", "/nonexistent")
            .output()
            .await
            .unwrap();
        assert!(
            out.status.success(),
            "legacy={legacy}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains(TOPIC));
        let out = tokio::process::Command::new(mdm_tests::fixture::mdm_binary())
            .args(["push-cert", "upload", "--pkcs12"])
            .arg(&p12)
            .env("MDM_SERVER", &setup.server.base_url)
            .env("MDM_TOKEN", &setup.server.admin_token)
            .env("MDM_PKCS12_PASSWORD", "wrong")
            .env("MDM_CLI_CONFIG", "/nonexistent")
            .output()
            .await
            .unwrap();
        assert_eq!(out.status.code(), Some(1));
        assert!(String::from_utf8_lossy(&out.stderr).contains("password"));
    }
    // The key is sealed at rest.
    use sea_orm::{ConnectionTrait, Statement};
    let store = setup.server.store().await;
    let db = store.connection();
    let rows = db
        .query_all(Statement::from_string(
            db.get_database_backend(),
            "SELECT private_key_sealed FROM push_certificates".to_owned(),
        ))
        .await
        .unwrap();
    for row in rows {
        let sealed: Vec<u8> = row.try_get("", "private_key_sealed").unwrap();
        assert!(!String::from_utf8_lossy(&sealed).contains("PRIVATE KEY"));
    }
}

async fn waiting_devices_are_pushed_again(backend: Backend) {
    let setup = start(backend, &["--repush-interval-secs", "2"]).await;
    upload_pem(&setup, TOPIC, 365).await;
    let (device, id) = enrolled(&setup).await;
    // Quiet device: enrolled a while ago as far as the schedule is concerned.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    setup
        .server
        .queue(&id, json!({ "type": "ProfileList" }))
        .await;
    setup.fake.wait_for(1, Duration::from_secs(10)).await;
    // It does not connect; within the next intervals it is pushed again.
    let pushes = setup.fake.wait_for(2, Duration::from_secs(15)).await;
    assert!(pushes
        .iter()
        .all(|p| p.token == hex::encode(&device.push_token)));
    // Once it has fetched its commands, the schedule leaves it alone.
    device.drain().await;
    let before = setup.fake.received().len();
    tokio::time::sleep(Duration::from_millis(4500)).await;
    assert_eq!(setup.fake.received().len(), before);
}

on_every_backend!(
    queued_lock_reaches_the_device_through_a_push,
    many_commands_one_push_and_fan_out,
    unregistered_token_stops_pushes_until_token_update,
    transient_failures_are_retried,
    configuration_errors_are_reported,
    push_certificate_rules,
    waiting_devices_are_pushed_again,
);
