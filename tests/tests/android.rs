//! Android Enterprise through the Android Management API, against the local fakes of
//! Google's token endpoint, AMAPI and Pub/Sub (tests/src/fake_google*.rs).

use mdm_tests::android_fixture::{start, DPC_TOKEN, EXTRAS, SUBSCRIPTION, TOPIC};
use mdm_tests::fake_google::FakeGoogle;
use mdm_tests::fixture::{Backend, TempDir, TestServer};
use mdm_tests::on_every_backend;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

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
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
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
    // Key rotation: a new key of the same project replaces the old one once it
    // proved itself on the enterprise; while Google is down nothing changes (503).
    let enterprise = a.google.enterprise_names().pop().unwrap();
    let rotated = a.google.service_account("town-hall");
    a.google.inject("GET /v1/enterprises", 500, None, 100);
    let (code, body) = a
        .server
        .api(
            "POST",
            "/android/connect",
            Some(json!({ "service_account": rotated })),
        )
        .await;
    assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(a.status().await["client_email"], a.key["client_email"]);
    a.google.state.lock().unwrap().clear_faults();
    let (code, body) = a
        .server
        .api(
            "POST",
            "/android/connect",
            Some(json!({ "service_account": rotated })),
        )
        .await;
    assert_eq!(code, StatusCode::OK, "{body}");
    assert_eq!(body["enterprise"], enterprise);
    assert!(body["signup_url"].is_null());
    let status = a.status().await;
    assert_eq!(status["client_email"], rotated["client_email"]);
    assert_eq!(status["enterprise"], enterprise);
    assert_eq!(status["pubsub_subscription"], SUBSCRIPTION);
    // The new key is the one used from now on.
    a.google.revoke_tokens();
    let (code, body) = a.server.api("POST", "/android/sync", Some(json!({}))).await;
    assert_eq!(code, StatusCode::OK, "{body}");
    assert_eq!(
        a.google.state.lock().unwrap().last_token_email.as_deref(),
        rotated["client_email"].as_str()
    );
    // A key of another project would orphan the enterprise.
    let foreign = a.google.service_account("elsewhere");
    let (code, body) = a
        .server
        .api(
            "POST",
            "/android/connect",
            Some(json!({ "service_account": foreign })),
        )
        .await;
    assert_eq!(code, StatusCode::CONFLICT, "{body}");
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

/// Decodes a QR image with zbarimg (None when it is not installed).
fn zbarimg(png: &[u8]) -> Option<String> {
    let tmp = TempDir::new("qr");
    let path = tmp.0.join("qr.png");
    std::fs::write(&path, png).unwrap();
    match std::process::Command::new("zbarimg")
        // QR only: with every symbology on, zbar now and then also "finds" a
        // one-dimensional code in the QR's modules and prints it as a second line.
        .args(["--raw", "-q", "-Sdisable", "-Sqrcode.enable"])
        .arg(&path)
        .output()
    {
        Ok(out) => {
            assert!(
                out.status.success(),
                "zbarimg: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            Some(String::from_utf8(out.stdout).unwrap().trim_end().to_owned())
        }
        Err(_) => {
            eprintln!("SKIPPED QR decoding: zbarimg not installed (apt-get install zbar-tools)");
            None
        }
    }
}

async fn admin_bytes(server: &TestServer, path: &str) -> Vec<u8> {
    let resp = reqwest::Client::new()
        .get(server.url(&format!("/api/v1{path}")))
        .bearer_auth(&server.admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{path}");
    resp.bytes().await.unwrap().to_vec()
}

async fn enroll_by_qr_and_report_status(backend: Backend) {
    use mdm_tests::fake_google_amapi::Phone;
    let a = start(backend, &["--android-pull-interval-ms", "100"]).await;
    let enterprise = a.connected().await;
    let wifi = json!({
        "ssid": "TownHall-Staff", "security_type": "EAP", "eap_method": "PEAP",
        "phase2_auth": "MSCHAPV2", "identity": "provisioning", "password": "Provisioning-Only-1",
        "domain": "radius.townhall.example",
    });
    let e = a
        .server
        .create_enrollment(json!({
            "platform": "android", "name": "Finance phones", "user": "anna.nowak",
            "group": "finance", "max_uses": 1,
            "android": { "wifi": wifi, "locale": "pl_PL", "time_zone": "Europe/Warsaw" },
        }))
        .await;
    let id = e["id"].as_str().unwrap();
    // enrollmentTokens.create: the built-in policy, one-time, fully managed, our id.
    let created = a.google.requests("/enrollmentTokens");
    assert_eq!(created.len(), 1);
    let body = &created[0].body;
    assert_eq!(
        body["policyName"],
        format!("{enterprise}/policies/mdm-default")
    );
    assert_eq!(body["oneTimeOnly"], true);
    assert_eq!(body["allowPersonalUsage"], "PERSONAL_USAGE_DISALLOWED");
    assert_eq!(body["additionalData"], id);
    let policies = a.google.requests("/policies/mdm-default");
    assert_eq!(
        policies.len(),
        1,
        "the policy is patched before the first token"
    );
    assert_eq!(policies[0].body["maximumTimeToLock"], "300000");
    // The Wi-Fi password is not stored in clear, nor is Google's QR data.
    assert!(!e["options"].to_string().contains("Provisioning-Only"));
    assert!(!e["options"].to_string().contains(DPC_TOKEN));

    // The QR code, decoded by a real reader, is Google's provisioning JSON with our
    // Wi-Fi extras.
    let payload: Value =
        match zbarimg(&admin_bytes(&a.server, &format!("/enrollments/{id}/qr.png")).await) {
            Some(text) => {
                assert_eq!(text, e["qr_payload"].as_str().unwrap());
                serde_json::from_str(&text).unwrap()
            }
            None => serde_json::from_str(e["qr_payload"].as_str().unwrap()).unwrap(),
        };
    let svg = admin_bytes(&a.server, &format!("/enrollments/{id}/qr.svg")).await;
    assert!(String::from_utf8_lossy(&svg).contains("<svg"));
    assert_eq!(
        payload["android.app.extra.PROVISIONING_DEVICE_ADMIN_COMPONENT_NAME"],
        mdm_tests::fake_google_amapi::DPC_COMPONENT
    );
    assert_eq!(
        payload["android.app.extra.PROVISIONING_WIFI_SSID"],
        "TownHall-Staff"
    );
    assert_eq!(
        payload["android.app.extra.PROVISIONING_WIFI_EAP_METHOD"],
        "PEAP"
    );
    assert_eq!(
        payload["android.app.extra.PROVISIONING_WIFI_PASSWORD"],
        "Provisioning-Only-1"
    );
    assert_eq!(payload["android.app.extra.PROVISIONING_LOCALE"], "pl_PL");
    let token_value = payload[EXTRAS][DPC_TOKEN].as_str().unwrap().to_owned();
    let stored = a
        .google
        .state
        .lock()
        .unwrap()
        .enrollment_tokens
        .values()
        .next()
        .cloned()
        .unwrap();
    assert_eq!(token_value, stored["value"]);

    // A phone scans it and enrolls: it is in the device list within seconds, linked
    // to the enrollment's user and group.
    let phone = Phone::default();
    let name = a.google.enroll_phone(&token_value, &phone).unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    let device = loop {
        if let Some(d) = a.android_devices().await.into_iter().next() {
            break d;
        }
        assert!(Instant::now() < deadline, "the phone did not appear");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(device["serial_number"], phone.serial.as_str());
    assert_eq!(device["enrollment_id"], id);
    assert_eq!(device["assigned_user"], "anna.nowak");
    assert_eq!(device["assigned_group"], "finance");
    assert_eq!(device["os_family"], "Android");
    let device_id = device["id"].as_str().unwrap().to_owned();
    let path = format!("/devices/{device_id}");
    let shown = a.server.get(&path).await;
    assert_eq!(shown["android"]["name"], name);
    assert_eq!(shown["android"]["management_mode"], "DEVICE_OWNER");
    assert_eq!(shown["android"]["ownership"], "COMPANY_OWNED");
    assert_eq!(a.server.get(&format!("/enrollments/{id}")).await["uses"], 1);
    // One-time: a second phone cannot use the token.
    assert!(a
        .google
        .enroll_phone(&token_value, &Phone::default())
        .is_err());

    // The device got its own policy, and Google has it assigned.
    let own = format!("{enterprise}/policies/device-{device_id}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while a.google.device(&name).unwrap()["policyName"] != own.as_str() {
        assert!(
            Instant::now() < deadline,
            "the device was not assigned its policy: {}",
            a.log()
                .lines()
                .filter(|l| l.contains("WARN"))
                .collect::<Vec<_>>()
                .join("\n")
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let patched = a.google.requests(&format!("PATCH /v1/{own}"));
    assert_eq!(patched.len(), 1);
    assert_eq!(
        patched[0].body,
        a.google.requests("/policies/mdm-default")[0].body
    );
    let assign = a.google.requests(&format!("PATCH /v1/{name}"));
    assert_eq!(assign[0].query["updateMask"], "policyName");

    // It applies the policy and reports: compliant, with the applied version.
    a.google.report_status(&name, &[]);
    let shown = a
        // The status report's own facts (encryption), not an earlier state that may
        // already say compliant: the notification and a sync can both be in flight.
        .until(&path, "a compliant status report", |v| {
            v["android"]["policy_compliant"] == true
                && v["android"]["encryption_status"] == "ENCRYPTED_PER_USER"
                && v["hardware_encrypted"] == true
        })
        .await;
    assert_eq!(shown["android"]["applied_policy_name"], own);
    assert_eq!(shown["android"]["applied_policy_version"], 1);
    assert_eq!(shown["android"]["policy_version"], 1);
    assert_eq!(shown["android"]["policy_applied"], true);
    assert_eq!(
        shown["android"]["security_posture"]["devicePosture"],
        "SECURE"
    );
    assert_eq!(shown["android"]["encryption_status"], "ENCRYPTED_PER_USER");
    assert_eq!(shown["os_version"], "14");
    assert_eq!(shown["android"]["security_patch_level"], "2026-10-05");
    assert_eq!(shown["hardware_encrypted"], true);
    let compliant = a.server.events("android.compliance_changed").await;
    assert_eq!(compliant.len(), 1);

    // Duplicates and late, older notifications change nothing.
    let stale = a.google.device(&name).unwrap();
    let mut older = stale.clone();
    older["lastStatusReportTime"] = "2020-01-01T00:00:00Z".into();
    older["lastPolicySyncTime"] = "2020-01-01T00:00:00Z".into();
    older["enrollmentTime"] = "2020-01-01T00:00:00Z".into();
    older["policyCompliant"] = false.into();
    a.google.publish(TOPIC, "STATUS_REPORT", &stale);
    a.google.publish(TOPIC, "STATUS_REPORT", &stale);
    a.google.publish(TOPIC, "STATUS_REPORT", &older);
    // A malformed message, a device of another enterprise, Google's test message.
    a.google
        .publish_raw(TOPIC, "STATUS_REPORT", "%%% not base64 %%%");
    a.google.publish_raw(TOPIC, "ENROLLMENT", "eyJuYW1lIjog");
    let mut foreign = stale.clone();
    foreign["name"] = "enterprises/LCother/devices/1".into();
    a.google.publish(TOPIC, "ENROLLMENT", &foreign);
    a.google.publish_raw(TOPIC, "test", "");
    // Then a real change, to know the ones before were processed.
    a.google.report_status(
        &name,
        &[json!({"settingName": "passwordPolicies", "nonComplianceReason": "USER_ACTION"})],
    );
    let shown = a
        .until(&path, "the non-compliant report", |v| {
            v["android"]["policy_compliant"] == false
        })
        .await;
    assert_eq!(
        shown["android"]["non_compliance"][0]["settingName"],
        "passwordPolicies"
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    while a.google.unacknowledged(SUBSCRIPTION) > 0 {
        assert!(Instant::now() < deadline, "messages left unacknowledged");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        a.android_devices().await.len(),
        1,
        "one device, whatever was delivered"
    );
    assert_eq!(a.server.events("device.enrolled").await.len(), 1);
    let changes = a.server.events("android.compliance_changed").await;
    assert_eq!(
        changes.len(),
        2,
        "compliant, then not: the stale report made no change"
    );
    assert_eq!(changes[1]["severity"], 2);

    // `mdm devices show` prints the Android facts.
    let out = a
        .server
        .clone_cli()
        .run(&["devices", "show", &device_id])
        .await;
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("android.management_mode") && text.contains("DEVICE_OWNER"),
        "{text}"
    );
    assert!(text.contains("android.policy_applied"), "{text}");
    assert!(
        text.contains("android.non_compliance  passwordPolicies USER_ACTION"),
        "{text}"
    );

    // A change Google knows but never notified (lost message): the sync repairs it,
    // paging through devices.list, and 250 more devices come with it.
    a.google.edit_device(&name, |d| {
        d["securityPosture"] = json!({ "devicePosture": "POTENTIALLY_COMPROMISED" });
        d["lastStatusReportTime"] = chrono::Utc::now()
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
            .into();
    });
    a.google.add_devices(&enterprise, 250);
    let (code, body) = a.server.api("POST", "/android/sync", Some(json!({}))).await;
    assert_eq!(code, StatusCode::OK, "{body}");
    assert_eq!(body["devices"], 251);
    assert_eq!(
        a.google
            .requests("GET /v1/enterprises")
            .iter()
            .filter(|r| r.path.ends_with("/devices"))
            .count(),
        3
    );
    let shown = a.server.get(&path).await;
    assert_eq!(
        shown["android"]["security_posture"]["devicePosture"],
        "POTENTIALLY_COMPROMISED"
    );
    let posture = a.server.events("android.posture_changed").await;
    let last = posture.last().unwrap();
    assert_eq!(last["severity"], 3);
    assert_eq!(last["device_id"], device_id);
    assert_eq!(a.android_devices().await.len(), 251);
    assert!(!a.status().await["last_sync_at"].is_null());
    // A second sync finds the same and stores the same.
    let (_, body) = a.server.api("POST", "/android/sync", Some(json!({}))).await;
    assert_eq!(body["devices"], 251);
    assert_eq!(a.server.events("device.enrolled").await.len(), 251);
    // Reports and syncs never rewrote a policy whose content did not change.
    assert_eq!(a.google.requests(&format!("PATCH /v1/{own}")).len(), 1);
    assert_eq!(a.google.requests(&format!("PATCH /v1/{name}")).len(), 1);
    a.write_policies("enroll");
}

async fn enrollment_tokens_follow_the_enrollment(backend: Backend) {
    let a = start(backend, &[]).await;
    // Before the sign-up (not connected, then connected with the sign-up pending):
    // an Android enrollment has nowhere to come from; refused, nothing stored.
    let mut signup_url = None;
    for connected in [false, true] {
        if connected {
            signup_url = Some(a.connect().await);
        }
        let (code, body) = a
            .server
            .api(
                "POST",
                "/enrollments",
                Some(json!({"platform": "android", "name": "x"})),
            )
            .await;
        assert_eq!(code, StatusCode::CONFLICT, "connected: {connected}: {body}");
        assert!(
            body["error"]
                .as_str()
                .unwrap()
                .contains("mdm android connect"),
            "{body}"
        );
    }
    let all = a.server.get("/enrollments?all=true").await;
    assert!(all["items"].as_array().unwrap().is_empty(), "{all}");
    assert!(a.google.requests("/enrollmentTokens").is_empty());
    let (code, text) = a.sign_up(&signup_url.unwrap()).await;
    assert_eq!(code, StatusCode::OK, "{text}");

    // A work-profile enrollment by the CLI, used by many phones.
    let out = a
        .server
        .clone_cli()
        .run(&[
            "enroll",
            "create",
            "--platform",
            "android",
            "--name",
            "BYOD",
            "--json",
        ])
        .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let e: Value = serde_json::from_slice(&out.stdout).unwrap();
    let id = e["id"].as_str().unwrap();
    let token_name = e["options"]["amapi_token_name"]
        .as_str()
        .unwrap()
        .to_owned();
    let created = a.google.requests("/enrollmentTokens");
    assert_eq!(created[0].body["oneTimeOnly"], false);
    assert!(a
        .google
        .state
        .lock()
        .unwrap()
        .enrollment_tokens
        .contains_key(&token_name));
    // The policy is already at Google: not patched again.
    let (code, _) = a
        .server
        .api(
            "POST",
            "/enrollments",
            Some(json!({"platform": "android", "name": "y", "android": {"work_profile": true}})),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED);
    assert_eq!(a.google.requests("/policies/").len(), 1);
    assert_eq!(
        a.google.requests("/enrollmentTokens")[1].body["allowPersonalUsage"],
        "PERSONAL_USAGE_ALLOWED"
    );

    // Bad Wi-Fi is refused before Google is asked.
    let before = a.google.requests("/enrollmentTokens").len();
    let (code, body) = a
        .server
        .api(
            "POST",
            "/enrollments",
            Some(json!({"platform": "android", "name": "z", "android": {"wifi": {"ssid": "x", "security_type": "WPA", "password": "short"}}})),
        )
        .await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(a.google.requests("/enrollmentTokens").len(), before);

    // Google failing: 503, nothing stored.
    let count = a.server.get("/enrollments").await["items"]
        .as_array()
        .map_or(0, Vec::len);
    a.google.inject("POST /v1/enterprises", 500, None, 100);
    let (code, body) = a
        .server
        .api(
            "POST",
            "/enrollments",
            Some(json!({"platform": "android", "name": "down"})),
        )
        .await;
    assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(
        a.server.get("/enrollments").await["items"]
            .as_array()
            .map_or(0, Vec::len),
        count
    );
    // Revoking while Google is down leaves the enrollment active (its QR still works
    // at Google, so it must not look revoked here).
    a.google.inject("DELETE /v1/enterprises", 503, None, 100);
    let out = a.server.clone_cli().run(&["enroll", "revoke", id]).await;
    assert!(!out.status.success());
    assert_eq!(
        a.server.get(&format!("/enrollments/{id}")).await["state"],
        "active"
    );
    a.google.state.lock().unwrap().clear_faults();

    // Revoked: the token is deleted at Google, and a phone can no longer use it.
    let out = a.server.clone_cli().run(&["enroll", "revoke", id]).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!a
        .google
        .state
        .lock()
        .unwrap()
        .enrollment_tokens
        .contains_key(&token_name));
    assert_eq!(a.google.requests("DELETE /v1/").len(), 1 + 5);
    let payload: Value = serde_json::from_str(e["qr_payload"].as_str().unwrap()).unwrap();
    let value = payload[EXTRAS][DPC_TOKEN].as_str().unwrap();
    assert!(a.google.enroll_phone(value, &Default::default()).is_err());
    a.write_policies("tokens");
}

on_every_backend!(
    enroll_by_qr_and_report_status,
    enrollment_tokens_follow_the_enrollment
);

async fn commands_lock_lost_mode_wipe(backend: Backend) {
    use mdm_tests::fake_google_amapi::Phone;
    let a = start(backend, &["--android-pull-interval-ms", "100"]).await;
    a.connected().await;
    let phone = Phone::default();
    let (id, name) = a.enrolled_phone(&phone, false).await;
    let old = Phone {
        management_mode: "PROFILE_OWNER".into(),
        api_level: 29,
        ..Default::default()
    };
    let (byod, byod_name) = a.enrolled_phone(&old, true).await;

    // Lock, through the CLI as for an Apple device; Google once says 429 first.
    a.google.inject(":issueCommand", 429, Some(1), 1);
    let out = a
        .server
        .clone_cli()
        .run(&["devices", "lock", &id, "--json"])
        .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let queued: Value = serde_json::from_slice(&out.stdout).unwrap();
    let uuid = queued["command_uuid"].as_str().unwrap().to_owned();
    assert_eq!(queued["request_type"], "LOCK");
    let lock = a.operation("LOCK");
    assert!(lock.starts_with(&format!("{name}/operations/")));
    assert_eq!(a.server.command(&uuid).await["status"], "sent");
    a.google.finish_operation(&lock, None);
    let done = a.command_status(&uuid, "acknowledged").await;
    assert_eq!(done["result"]["operation"], lock);
    assert_eq!(a.server.events("admin.device_lock").await.len(), 1);
    // Android's LOCK shows no message.
    let (code, body) = a
        .server
        .api(
            "POST",
            &format!("/devices/{id}/lock"),
            Some(json!({"message": "x"})),
        )
        .await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body["error"].as_str().unwrap().contains("START_LOST_MODE"));

    // Lost mode with the office's contact details, then out of it.
    let lost = a
        .server
        .queue(
            &id,
            json!({"type": "START_LOST_MODE", "message": "This phone belongs to the town hall",
                   "phone_number": "+48 22 000 00 00", "email": "it@townhall.example",
                   "address": "Rynek 1, Warszawa"}),
        )
        .await;
    let sent = a.google.requests(":issueCommand");
    let params = &sent.last().unwrap().body["startLostModeParams"];
    assert_eq!(
        params["lostMessage"]["defaultMessage"],
        "This phone belongs to the town hall"
    );
    assert_eq!(params["lostEmailAddress"], "it@townhall.example");
    a.google
        .finish_operation(&a.operation("START_LOST_MODE"), None);
    a.command_status(&lost, "acknowledged").await;
    let stop = a.server.queue(&id, json!({"type": "STOP_LOST_MODE"})).await;
    a.google
        .finish_operation(&a.operation("STOP_LOST_MODE"), None);
    a.command_status(&stop, "acknowledged").await;

    // A command the phone fails: AMAPI's error code is shown.
    let clear = a
        .server
        .queue(
            &id,
            json!({"type": "CLEAR_APP_DATA", "package_names": ["com.example.mail"]}),
        )
        .await;
    a.google
        .finish_operation(&a.operation("CLEAR_APP_DATA"), Some("UNSUPPORTED"));
    let failed = a.command_status(&clear, "error").await;
    assert_eq!(failed["result"]["errorCode"], "UNSUPPORTED");

    // A new password is sealed at rest.
    let reset = a
        .server
        .queue(
            &id,
            json!({"type": "RESET_PASSWORD", "new_password": "739155", "flags": ["LOCK_NOW"]}),
        )
        .await;
    {
        use sea_orm::{ConnectionTrait, Statement};
        let store = a.server.store().await;
        let row = store
            .connection()
            .query_one(Statement::from_string(
                store.connection().get_database_backend(),
                format!("SELECT payload, payload_sealed FROM commands WHERE uuid = '{reset}'"),
            ))
            .await
            .unwrap()
            .unwrap();
        let payload: Vec<u8> = row.try_get("", "payload").unwrap();
        assert!(!String::from_utf8_lossy(&payload).contains("739155"));
        assert!(row.try_get::<bool>("", "payload_sealed").unwrap());
    }
    // A lost COMMAND notification: the sync asks operations.get.
    a.google
        .finish_operation_with(&a.operation("RESET_PASSWORD"), None, false);
    let info = a
        .server
        .queue(&id, json!({"type": "REQUEST_DEVICE_INFO"}))
        .await;
    a.google
        .finish_operation_with(&a.operation("REQUEST_DEVICE_INFO"), None, false);
    let (code, _) = a.server.api("POST", "/android/sync", Some(json!({}))).await;
    assert_eq!(code, StatusCode::OK);
    a.command_status(&reset, "acknowledged").await;
    a.command_status(&info, "acknowledged").await;

    // Refused before anything is sent: mode, API level, unknown types and fields.
    let before = a.google.requests(":issueCommand").len();
    for (device, body, needle) in [
        (&byod, json!({"type": "REBOOT"}), "fully managed"),
        (
            &byod,
            json!({"type": "START_LOST_MODE", "message": "x"}),
            "company-owned",
        ),
        (&id, json!({"type": "BLINK"}), "BLINK"),
        (&id, json!({"type": "LOCK", "message": "x"}), "message"),
        (&id, json!({"type": "WIPE"}), "/wipe"),
        (
            &id,
            json!({"type": "DeviceLock"}),
            "unknown Android command",
        ),
    ] {
        let (code, answer) = a
            .server
            .api(
                "POST",
                &format!("/devices/{device}/commands"),
                Some(body.clone()),
            )
            .await;
        assert!(
            matches!(
                code,
                StatusCode::BAD_REQUEST | StatusCode::UNPROCESSABLE_ENTITY
            ),
            "{body}: {answer}"
        );
        assert!(
            answer["error"].as_str().unwrap().contains(needle),
            "{body}: {answer}"
        );
    }
    // The many-device queue takes Apple commands only: an Android id is refused.
    let (code, answer) = a
        .server
        .api(
            "POST",
            "/commands",
            Some(json!({"device_ids": [id], "type": "DeviceLock"})),
        )
        .await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    assert!(answer["error"].as_str().unwrap().contains("Android device"));
    assert_eq!(
        a.google.requests(":issueCommand").len(),
        before,
        "nothing was sent"
    );
    // A fully managed phone cannot be retired (that would need a factory reset).
    let (code, body) = a
        .server
        .api("POST", &format!("/devices/{id}/retire"), None)
        .await;
    assert_eq!(code, StatusCode::CONFLICT, "{body}");
    // Nor deleted while it is in the enterprise.
    let (code, _) = a
        .server
        .api("DELETE", &format!("/devices/{id}"), None)
        .await;
    assert_eq!(code, StatusCode::CONFLICT);

    // Wipe: confirmed with the serial number Google reported.
    let (code, _) = a
        .server
        .api(
            "POST",
            &format!("/devices/{id}/wipe"),
            Some(json!({"confirm": "WRONG"})),
        )
        .await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(a.server.events("admin.device_wipe_refused").await.len(), 1);
    // Through the CLI: an unknown --flag is refused there (exit 2) and nothing is
    // sent; then --flag (repeated) and --reason reach Google's wipeParams.
    let sent = a.google.requests(":issueCommand").len();
    let out = a
        .server
        .clone_cli()
        .run(&[
            "devices",
            "wipe",
            &id,
            "--confirm",
            &phone.serial,
            "--flag",
            "WIPE_EVERYTHING",
        ])
        .await;
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("WIPE_EXTERNAL_STORAGE"), "{err}");
    assert_eq!(a.google.requests(":issueCommand").len(), sent);
    let out = a
        .server
        .clone_cli()
        .run(&[
            "devices",
            "wipe",
            &id,
            "--confirm",
            &phone.serial,
            "--flag",
            "WIPE_EXTERNAL_STORAGE",
            "--flag",
            "WIPE_ESIMS",
            "--reason",
            "reported lost",
            "--json",
        ])
        .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let body: Value = serde_json::from_slice(&out.stdout).unwrap();
    let wipe_uuid = body["command_uuid"].as_str().unwrap().to_owned();
    let params = a.google.requests(":issueCommand").last().unwrap().body["wipeParams"].clone();
    assert_eq!(
        params["wipeDataFlags"],
        json!(["WIPE_EXTERNAL_STORAGE", "WIPE_ESIMS"])
    );
    assert_eq!(params["wipeReason"]["defaultMessage"], "reported lost");
    a.google.finish_operation(&a.operation("WIPE"), None);
    a.command_status(&wipe_uuid, "acknowledged").await;
    // The device leaves the enterprise and its identity is revoked.
    let shown = a
        .until(&format!("/devices/{id}"), "the wiped device revoked", |v| {
            v["identity_revoked_at"].is_string()
        })
        .await;
    assert_eq!(shown["enrolled"], false);
    assert_eq!(shown["android"]["state"], "DELETED");
    assert!(
        a.google.device(&name).is_none(),
        "devices.delete after the wipe"
    );
    let (code, _) = a
        .server
        .api("POST", &format!("/devices/{id}/lock"), None)
        .await;
    assert_eq!(code, StatusCode::CONFLICT);

    // Retire a personal phone's work profile: devices.delete, identity retired.
    let (code, body) = a
        .server
        .api("POST", &format!("/devices/{byod}/retire"), None)
        .await;
    assert_eq!(code, StatusCode::OK, "{body}");
    assert!(a.google.device(&byod_name).is_none());
    let shown = a.server.get(&format!("/devices/{byod}")).await;
    assert!(shown["retired_at"].is_string());
    assert_eq!(shown["android"]["state"], "DELETED");
    // Removed from the enterprise: now the record may go.
    let (code, body) = a
        .server
        .api("DELETE", &format!("/devices/{byod}"), None)
        .await;
    assert_eq!(code, StatusCode::OK, "{body}");
}

on_every_backend!(commands_lock_lost_mode_wipe);

async fn security_logs_and_google_faults(backend: Backend) {
    use mdm_tests::fake_google_amapi::Phone;
    let a = start(backend, &["--android-pull-interval-ms", "100"]).await;
    let enterprise = a.connected().await;
    let (id, name) = a.enrolled_phone(&Phone::default(), false).await;

    // A burst of failed unlocks, an ADB shell, routine entries: two events.
    let t = |s: u32| format!("2026-12-01T10:00:{s:02}Z");
    let mut entries: Vec<Value> = (0..6)
        .map(|i| json!({"eventId": i.to_string(), "eventType": "KEYGUARD_DISMISS_AUTH_ATTEMPT", "eventTime": t(i),
                        "keyguardDismissAuthAttemptEvent": {"success": false, "strongAuthMethodUsed": false}}))
        .collect();
    entries.push(json!({"eventId": "7", "eventType": "ADB_SHELL_COMMAND", "eventTime": t(7), "adbShellCommandEvent": {"shellCmd": "pm list packages"}}));
    entries.push(json!({"eventId": "8", "eventType": "DNS", "eventTime": t(8), "dnsEvent": {"hostname": "example.org"}}));
    entries.push(json!({"eventId": "9", "eventType": "KEYGUARD_DISMISS_AUTH_ATTEMPT", "eventTime": t(9), "keyguardDismissAuthAttemptEvent": {"success": true}}));
    a.google.upload_usage_logs(&name, entries.clone());
    let deadline = Instant::now() + Duration::from_secs(15);
    let events = loop {
        let e = a.server.events("security.android_log").await;
        if e.len() >= 2 {
            break e;
        }
        assert!(Instant::now() < deadline, "security log events: {e:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let unlock = events
        .iter()
        .find(|e| e["data"]["event_type"] == "KEYGUARD_DISMISS_AUTH_ATTEMPT")
        .unwrap();
    assert_eq!(unlock["severity"], 3, "a burst of six");
    assert_eq!(unlock["data"]["count"], 6);
    assert_eq!(unlock["device_id"], id);
    let adb = events
        .iter()
        .find(|e| e["data"]["event_type"] == "ADB_SHELL_COMMAND")
        .unwrap();
    assert_eq!(adb["severity"], 3);
    // The same batch again, a batch of an unknown device, then a marker batch.
    a.google.upload_usage_logs(&name, entries);
    a.google.upload_usage_logs(&format!("{enterprise}/devices/unknown"), vec![
        json!({"eventType": "MEDIA_MOUNT", "eventTime": t(20), "mediaMountEvent": {"mountPoint": "/x"}}),
    ]);
    a.google.upload_usage_logs(&name, vec![
        json!({"eventType": "CERT_AUTHORITY_INSTALLED", "eventTime": t(30), "certAuthorityInstalledEvent": {"certificate": "MIIB", "success": true}}),
    ]);
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let e = a.server.events("security.android_log").await;
        if e.len() >= 3 {
            assert_eq!(e.len(), 3, "a redelivered batch adds nothing: {e:?}");
            assert_eq!(e[2]["data"]["event_type"], "CERT_AUTHORITY_INSTALLED");
            break;
        }
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Google's 500s on the pull: retried, shown, and gone once Google is back.
    let before = a.google.requests(":pull").len();
    a.google.inject(":pull", 500, None, 6);
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut saw_error = false;
    loop {
        let status = a.status().await;
        saw_error |= status["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("500"));
        if a.google.requests(":pull").len() >= before + 7 && status["last_error"].is_null() {
            break;
        }
        assert!(Instant::now() < deadline, "{status}");
        // Meanwhile the admin API answers at once.
        let started = Instant::now();
        a.server.get("/devices").await;
        assert!(started.elapsed() < Duration::from_millis(500));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        saw_error,
        "the 500s were shown in the status while they lasted"
    );
    assert!(
        a.server
            .events("android.configuration_error")
            .await
            .is_empty(),
        "transient: no configuration event"
    );

    // The service account lost its role: 403 everywhere. One configuration event,
    // a clear status, however often the puller and the sync meet it.
    a.google.state.lock().unwrap().deny_all = true;
    let (code, body) = a.server.api("POST", "/android/sync", Some(json!({}))).await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body["error"]
        .as_str()
        .unwrap()
        .contains("PERMISSION_DENIED"));
    tokio::time::sleep(Duration::from_millis(500)).await;
    a.server.api("POST", "/android/sync", Some(json!({}))).await;
    let status = a.status().await;
    assert_eq!(status["state"], "error");
    assert!(
        status["last_error"]
            .as_str()
            .unwrap()
            .contains("PERMISSION_DENIED"),
        "{status}"
    );
    let config = a.server.events("android.configuration_error").await;
    assert_eq!(config.len(), 1, "{config:?}");
    assert_eq!(config[0]["severity"], 3);
    let out = a.server.clone_cli().run(&["android", "status"]).await;
    assert!(String::from_utf8_lossy(&out.stdout).contains("PERMISSION_DENIED"));
    // Commands are refused with Google's reason, and recorded as failed.
    let (code, body) = a
        .server
        .api("POST", &format!("/devices/{id}/lock"), None)
        .await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{body}");

    // Access back, but the enterprise was deleted at Google: a second, different
    // configuration error.
    a.google.delete_enterprise(&enterprise);
    a.google.state.lock().unwrap().deny_all = false;
    let (code, body) = a.server.api("POST", "/android/sync", Some(json!({}))).await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let status = a.status().await;
    assert!(
        status["last_error"].as_str().unwrap().contains("NOT_FOUND"),
        "{status}"
    );
    assert_eq!(
        a.server.events("android.configuration_error").await.len(),
        2
    );
    // The Apple side and the admin API never noticed.
    let started = Instant::now();
    a.server.get("/enrollments").await;
    assert!(started.elapsed() < Duration::from_millis(500));
}

on_every_backend!(security_logs_and_google_faults);
