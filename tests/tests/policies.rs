//! Policies end to end: one policy applied to a device group reaches simulated
//! iPhones as signed profiles with their users' attributes filled in; an unchanged
//! re-apply queues nothing; a change re-queues only the group's devices; a removed
//! assignment removes the profile; bad policies are refused by field path with
//! nothing saved; compliance follows what the devices report, and a device falling
//! out of compliance files an incident. Android: the same policy reaches the fake
//! AMAPI as the device's policy, checked against Google's discovery document.

use mdm_tests::answers::{answer, installed_profile};
use mdm_tests::artifacts;
use mdm_tests::enroll::enroll_iphone;
use mdm_tests::fixture::{Backend, ServerOptions, TestServer};
use mdm_tests::on_every_backend;
use mdm_tests::simulator::{Received, SimDevice};
use plist::{Dictionary, Value as Plist};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// The RADIUS server's root CA the policy installs (made once per test binary, so
/// that re-applying the same policy is the same content).
fn radius_root_pem() -> &'static str {
    static PEM: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    PEM.get_or_init(|| {
        let ca = enrollment::identity::testing::TestCa::new("Town Hall RADIUS root");
        String::from_utf8(ca.cert.to_pem().unwrap()).unwrap()
    })
}

async fn server(backend: Backend) -> TestServer {
    logged_server(backend, None).await
}

/// With `log`, the server's stderr at RUST_LOG=debug goes there (leak checks).
async fn logged_server(backend: Backend, log: Option<std::path::PathBuf>) -> TestServer {
    let server = TestServer::start_with(
        backend,
        ServerOptions {
            with_device_ca: false,
            extra_args: vec!["--organization".into(), "Town Hall".into()],
            rust_log: log.as_ref().map(|_| "debug".into()),
            stderr_to: log,
            ..Default::default()
        },
    )
    .await;
    server.upload_push_certificate().await;
    server
}

/// A directory user, added by hand (the directory tests cover LDAP).
pub async fn add_user(
    server: &TestServer,
    username: &str,
    email: &str,
    display: &str,
    groups: &[&str],
) {
    let (code, body) = server
        .api(
            "POST",
            "/users",
            Some(json!({
                "username": username,
                "upn": format!("{username}@ad.townhall.example"),
                "email": email,
                "display_name": display,
                "department": "Finance",
                "groups": groups,
            })),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED, "{body}");
}

fn staff_policy(min_length: u32) -> Value {
    json!({
        "name": "staff",
        "description": "Phones of the town hall's staff",
        "passcode": {
            "required": true, "min_length": min_length, "alphanumeric": false,
            "allow_simple": false, "max_age_days": 90, "history": 5,
            "max_failed_attempts": 10, "auto_lock_minutes": 5, "grace_period_minutes": 0
        },
        "wifi": [{
            "ssid": "TownHall-Staff", "hidden": false, "auto_join": true,
            "security": {
                "type": "enterprise", "wpa3": false,
                "eap": { "method": "peap", "inner": "mschapv2" },
                "radius_server_names": ["radius.townhall.example"],
                "radius_ca_certificates": ["Town Hall RADIUS root"]
            }
        }],
        "mail": [{
            "name": "Town Hall mail", "kind": "exchange", "host": "mail.townhall.example",
            "email_address": "{{user.email}}", "username": "{{user.upn}}",
            "display_name": "{{user.display_name}}", "ssl_required": true
        }],
        "certificates": [{ "name": "Town Hall RADIUS root", "pem": radius_root_pem() }]
    })
}

async fn save(server: &TestServer, doc: Value) -> Value {
    let name = doc["name"].as_str().unwrap().to_owned();
    let (code, body) = server
        .api(
            "PUT",
            &format!("/policies/{name}"),
            Some(json!({ "document": doc })),
        )
        .await;
    assert_eq!(code, StatusCode::OK, "{body}");
    body
}

async fn enrolled_iphone(server: &TestServer, user: &str, group: &str) -> (SimDevice, String) {
    let e = server
        .create_enrollment(json!({ "platform": "apple", "name": format!("{user}'s phone"), "user": user, "group": group, "max_uses": 1 }))
        .await;
    let (device, _) = enroll_iphone(&server.base_url, &server.local_url(&e)).await;
    device.enroll().await;
    let id = server.get(&format!("/devices/udid:{}", device.udid)).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    (device, id)
}

fn payloads<'a>(profile: &'a Dictionary, kind: &str) -> Vec<&'a Dictionary> {
    profile
        .get("PayloadContent")
        .and_then(Plist::as_array)
        .unwrap()
        .iter()
        .filter_map(Plist::as_dictionary)
        .filter(|p| p.get("PayloadType").and_then(Plist::as_string) == Some(kind))
        .collect()
}

fn text<'a>(d: &'a Dictionary, key: &str) -> &'a str {
    d.get(key).and_then(Plist::as_string).unwrap_or("")
}

/// Waits for the policy watcher (it reads the event stream every half second).
async fn until<F: Fn(&Value) -> bool>(
    server: &TestServer,
    path: &str,
    what: &str,
    check: F,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let v = server.get(path).await;
        if check(&v) {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {v}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn one_policy_reaches_its_group_and_only_changes_are_resent(backend: Backend) {
    let server = server(backend).await;
    add_user(
        &server,
        "anna.nowak",
        "anna.nowak@townhall.example",
        "Anna Nowak",
        &["staff"],
    )
    .await;
    add_user(
        &server,
        "jan.kowalski",
        "jan.kowalski@townhall.example",
        "Jan Kowalski",
        &["staff"],
    )
    .await;
    // The group follows the enrollment the phones came through.
    let (code, group) = server
        .api(
            "POST",
            "/device-groups",
            Some(json!({ "name": "front office", "kind": "enrollment", "match": "front-office" })),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED, "{group}");
    let (anna, _anna_id) = enrolled_iphone(&server, "anna.nowak", "front-office").await;
    let (jan, _jan_id) = enrolled_iphone(&server, "jan.kowalski", "front-office").await;
    let (other, _) = enrolled_iphone(&server, "jan.kowalski", "archive").await;
    let group = server.get("/device-groups/front%20office").await;
    assert_eq!(group["devices"].as_array().unwrap().len(), 2, "{group}");

    // Saved, then assigned: only the group's two phones get a profile.
    let saved = save(&server, staff_policy(6)).await;
    assert_eq!(saved["version"], 1);
    assert_eq!(saved["changed"], true);
    assert_eq!(
        saved["findings"],
        json!([]),
        "the staff policy meets the office's rules"
    );
    assert_eq!(saved["delivery"]["apple_installs"], 0, "not assigned yet");
    let (code, delivery) = server
        .api(
            "POST",
            "/policies/staff/assignments",
            Some(json!({ "group": "front office" })),
        )
        .await;
    assert_eq!(code, StatusCode::OK, "{delivery}");
    assert_eq!(delivery["apple_installs"], 2, "{delivery}");
    assert_eq!(delivery["apple_unchanged"], 0);
    assert!(
        other.idle().await.is_none(),
        "a device outside the group gets nothing"
    );

    let cmd = anna.idle().await.expect("anna's phone gets the policy");
    let (signed, profile) = installed_profile(&cmd);
    artifacts::write_apple("iOS", "policy-staff-anna.mobileconfig", &signed);
    let identifier = text(&profile, "PayloadIdentifier").to_owned();
    assert!(identifier.starts_with("mdm.policy."), "{identifier}");
    let passcode = payloads(&profile, "com.apple.mobiledevice.passwordpolicy");
    assert_eq!(passcode.len(), 1);
    assert_eq!(
        passcode[0]
            .get("minLength")
            .and_then(Plist::as_signed_integer),
        Some(6)
    );
    assert_eq!(
        passcode[0]
            .get("maxInactivity")
            .and_then(Plist::as_signed_integer),
        Some(5)
    );
    let wifi = payloads(&profile, "com.apple.wifi.managed");
    assert_eq!(text(wifi[0], "SSID_STR"), "TownHall-Staff");
    let eap = wifi[0]
        .get("EAPClientConfiguration")
        .and_then(Plist::as_dictionary)
        .unwrap();
    assert_eq!(text(eap, "UserName"), "anna.nowak@ad.townhall.example");
    assert!(
        eap.get("UserPassword").is_none(),
        "the domain password is asked on the phone"
    );
    let mail = payloads(&profile, "com.apple.eas.account");
    assert_eq!(text(mail[0], "EmailAddress"), "anna.nowak@townhall.example");
    assert_eq!(payloads(&profile, "com.apple.security.root").len(), 1);
    // Acknowledged; what the watcher asks next (SecurityInfo, ProfileList) waits.
    anna.acknowledge(&cmd.uuid).await;

    let cmd = jan.idle().await.expect("jan's phone gets the policy");
    let (signed, profile) = installed_profile(&cmd);
    artifacts::write_apple("iOS", "policy-staff-jan.mobileconfig", &signed);
    let mail = payloads(&profile, "com.apple.eas.account");
    assert_eq!(
        text(mail[0], "EmailAddress"),
        "jan.kowalski@townhall.example"
    );
    jan.acknowledge(&cmd.uuid).await;

    // The same policy again: nothing saved, nothing queued.
    let again = save(&server, staff_policy(6)).await;
    assert_eq!(again["changed"], false);
    assert_eq!(again["version"], 1);
    let (_, delivery) = server.api("POST", "/policies/deliver", None).await;
    assert_eq!(delivery["apple_installs"], 0, "{delivery}");
    assert_eq!(delivery["apple_unchanged"], 2, "{delivery}");

    // A change: a new version; both phones, and only they, get it again.
    let (code, diff) = server
        .api(
            "POST",
            "/policies/staff/diff",
            Some(json!({ "document": staff_policy(8), "group": "front office" })),
        )
        .await;
    assert_eq!(code, StatusCode::OK, "{diff}");
    assert_eq!(diff["changes"][0]["path"], "passcode.min_length");
    assert_eq!(diff["delivery"]["apple_installs"], 2);
    let changed = save(&server, staff_policy(8)).await;
    assert_eq!(changed["version"], 2);
    assert_eq!(changed["delivery"]["apple_installs"], 2, "{changed}");
    for device in [&anna, &jan] {
        // The watcher may have queued the state queries after the first install.
        let mut types = Vec::new();
        let mut next = device.idle().await;
        while let Some(cmd) = next {
            types.push(cmd.request_type.clone());
            if cmd.request_type == "InstallProfile" {
                let (_, p) = installed_profile(&cmd);
                let passcode = payloads(&p, "com.apple.mobiledevice.passwordpolicy");
                assert_eq!(
                    passcode[0]
                        .get("minLength")
                        .and_then(Plist::as_signed_integer),
                    Some(8)
                );
                if device.udid == anna.udid {
                    assert_eq!(
                        text(&p, "PayloadIdentifier"),
                        identifier,
                        "the same profile, replaced"
                    );
                }
            }
            next = device.acknowledge(&cmd.uuid).await;
        }
        assert_eq!(
            types.iter().filter(|t| *t == "InstallProfile").count(),
            1,
            "{types:?}"
        );
    }
    assert!(other.idle().await.is_none());
    // Versions are kept; the first can be restored.
    let versions = server.get("/policies/staff/versions").await;
    assert_eq!(versions.as_array().unwrap().len(), 2);

    // A user's attribute changes in the directory: only that user's phone is sent
    // the profile again, with the new address.
    let (code, body) = server
        .api(
            "PATCH",
            "/users/jan.kowalski",
            Some(json!({ "email": "jan.kowalski2@townhall.example" })),
        )
        .await;
    assert_eq!(code, StatusCode::OK, "{body}");
    let cmd = until_command(&jan, "InstallProfile").await;
    let (_, p) = installed_profile(&cmd);
    assert_eq!(
        text(payloads(&p, "com.apple.eas.account")[0], "EmailAddress"),
        "jan.kowalski2@townhall.example"
    );
    jan.acknowledge(&cmd.uuid).await;
    let mut next = anna.idle().await;
    while let Some(cmd) = next {
        assert_ne!(
            cmd.request_type, "InstallProfile",
            "anna's output did not change"
        );
        next = anna.acknowledge(&cmd.uuid).await;
    }

    // A change the profile does not show (her department): compiled again, the same
    // bytes, nothing sent; the new inputs are remembered so the next delivery skips it.
    let input_hash = || async {
        use sea_orm::{ConnectionTrait, Statement};
        let store = server.store().await;
        let db = store.connection();
        let row = db
            .query_one(Statement::from_string(
                db.get_database_backend(),
                format!(
                    "SELECT input_hash FROM device_policy_outputs WHERE device_id = '{_anna_id}'"
                ),
            ))
            .await
            .unwrap()
            .unwrap();
        row.try_get::<String>("", "input_hash").unwrap()
    };
    let before = input_hash().await;
    let (code, body) = server
        .api(
            "PATCH",
            "/users/anna.nowak",
            Some(json!({ "department": "Registry" })),
        )
        .await;
    assert_eq!(code, StatusCode::OK, "{body}");
    let deadline = Instant::now() + Duration::from_secs(20);
    while input_hash().await == before {
        assert!(
            Instant::now() < deadline,
            "the watcher never re-rendered anna's phone"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut next = anna.idle().await;
    while let Some(cmd) = next {
        assert_ne!(
            cmd.request_type, "InstallProfile",
            "the same bytes are not sent again"
        );
        next = anna.acknowledge(&cmd.uuid).await;
    }

    // Bad policies: refused with the field paths, nothing saved.
    let mut bad = staff_policy(99);
    bad["wifi"][0]["ssid"] = json!("");
    bad["mail"][0]["email_address"] = json!("{{user.shoe_size}}");
    let (code, body) = server
        .api("PUT", "/policies/staff", Some(json!({ "document": bad })))
        .await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let paths: Vec<&str> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["path"].as_str().unwrap())
        .collect();
    for expected in [
        "passcode.min_length",
        "wifi[0].ssid",
        "mail[0].email_address",
    ] {
        assert!(paths.contains(&expected), "{expected} not in {paths:?}");
    }
    let (code, body) = server
        .api(
            "PUT",
            "/policies/staff",
            Some(json!({ "document": { "name": "staff", "passcode": { "required": "yes" } } })),
        )
        .await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(server.get("/policies/staff").await["current_version"], 2);

    // What a platform cannot express is reported with the save, per platform.
    let mut tls = staff_policy(6);
    tls["name"] = json!("certificate-wifi");
    tls["wifi"][0]["security"]["eap"] = json!({ "method": "tls" });
    let saved = save(&server, tls).await;
    assert!(
        saved["platform_notes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["platform"] == "android"
                && n["path"].as_str().unwrap().starts_with("wifi[0]")),
        "EAP-TLS with our SCEP CA is reported for Android: {saved}"
    );

    // Version 1 restored (as version 3): both phones get 6 digits again.
    let (code, restored) = server
        .api(
            "POST",
            "/policies/staff/restore",
            Some(json!({ "version": 1 })),
        )
        .await;
    assert_eq!(code, StatusCode::OK, "{restored}");
    assert_eq!(restored["version"], 3);
    assert_eq!(restored["delivery"]["apple_installs"], 2, "{restored}");
    for device in [&anna, &jan] {
        let cmd = until_command(device, "InstallProfile").await;
        let (_, p) = installed_profile(&cmd);
        let passcode = payloads(&p, "com.apple.mobiledevice.passwordpolicy");
        assert_eq!(
            passcode[0]
                .get("minLength")
                .and_then(Plist::as_signed_integer),
            Some(6)
        );
        device.acknowledge(&cmd.uuid).await;
    }

    // The assignment removed: the profile is removed from both phones.
    let (code, delivery) = server
        .api(
            "DELETE",
            "/policies/staff/assignments?group=front%20office",
            None,
        )
        .await;
    assert_eq!(code, StatusCode::OK, "{delivery}");
    assert_eq!(delivery["apple_removals"], 2, "{delivery}");
    for device in [&anna, &jan] {
        let cmd = until_command(device, "RemoveProfile").await;
        assert_eq!(
            cmd.command.get("Identifier").and_then(Plist::as_string),
            Some(identifier.as_str())
        );
        device.acknowledge(&cmd.uuid).await;
    }
    let (_, delivery) = server.api("POST", "/policies/deliver", None).await;
    assert_eq!(delivery["apple_removals"], 0, "removed once: {delivery}");
    assert_eq!(server.events("admin.policy_saved").await.len(), 4);
}
on_every_backend!(one_policy_reaches_its_group_and_only_changes_are_resent);

async fn compliance_follows_what_the_device_reports(backend: Backend) {
    let dir = mdm_tests::fixture::TempDir::new("policy-log");
    let log = dir.0.join("server.log");
    let server = logged_server(backend, Some(log.clone())).await;
    add_user(
        &server,
        "anna.nowak",
        "anna.nowak@townhall.example",
        "Anna Nowak",
        &["staff"],
    )
    .await;
    let (code, body) = server
        .api(
            "POST",
            "/device-groups",
            Some(json!({ "name": "staff", "kind": "directory_group", "match": "staff" })),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED, "{body}");
    save(&server, staff_policy(6)).await;
    let (code, _) = server
        .api(
            "POST",
            "/policies/staff/assignments",
            Some(json!({ "group": "staff" })),
        )
        .await;
    assert_eq!(code, StatusCode::OK);
    // Enrolled into a group that has a policy: the profile comes right after enrollment.
    let (phone, id) = enrolled_iphone(&server, "anna.nowak", "anywhere").await;
    let path = format!("/devices/{id}/compliance");
    let first = until(&server, &path, "the first evaluation", |v| {
        v["compliant"] == false
    })
    .await;
    let reasons = first["reasons"].to_string();
    assert!(reasons.contains("not installed yet"), "{reasons}");

    // The phone installs it and answers the state queries that follow.
    let identifier = {
        let cmd = until_command(&phone, "InstallProfile").await;
        let (_, profile) = installed_profile(&cmd);
        let id = text(&profile, "PayloadIdentifier").to_owned();
        phone.acknowledge(&cmd.uuid).await;
        id
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        answer(&phone, true, &[&identifier]).await;
        let v = server.get(&path).await;
        if v["compliant"] == true {
            break;
        }
        assert!(Instant::now() < deadline, "never compliant: {v}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let list = server.get("/devices?noncompliant=true").await;
    assert_eq!(list["total"], 0, "{list}");

    // The user removes the passcode: the next SecurityInfo says so, the device falls
    // out of compliance, and the incident register files it.
    let (code, _) = server
        .api(
            "POST",
            &format!("/devices/{id}/commands"),
            Some(json!({ "type": "SecurityInfo" })),
        )
        .await;
    assert!(code.is_success());
    answer(&phone, false, &[&identifier]).await;
    let v = until(&server, &path, "non-compliance", |v| {
        v["compliant"] == false
    })
    .await;
    assert!(v["reasons"].to_string().contains("passcode missing"), "{v}");
    let list = server.get("/devices?noncompliant=true").await;
    assert_eq!(list["total"], 1, "{list}");
    let incidents = until(&server, "/incidents", "an incident", |v| v["total"] == 1).await;
    assert_eq!(
        incidents["items"][0]["incident_type"],
        "non_compliant_device"
    );
    let fell = server.events("device.compliance_changed").await;
    assert!(
        fell.iter()
            .any(|e| e["severity"] == 2 && e["data"]["compliant"] == false),
        "{fell:?}"
    );

    // A PSK network is written, flagged, and keeps devices non-compliant.
    let mut psk = staff_policy(6);
    psk["wifi"] = json!([{ "ssid": "Guest", "security": { "type": "psk", "wpa3": false, "passphrase": "Shared-Secret-123" } }]);
    let saved = save(&server, psk).await;
    assert!(
        saved["findings"].to_string().contains("wifi.psk"),
        "{saved}"
    );
    let shown = server.get("/policies/staff").await;
    assert!(
        !shown.to_string().contains("Shared-Secret-123"),
        "the key is never shown: {shown}"
    );
    assert!(shown["document"]["wifi"][0]["security"]["passphrase"] == "********");
    // Sent back masked, the stored key is kept: nothing changes.
    let again = save(&server, shown["document"].clone()).await;
    assert_eq!(again["changed"], false, "{again}");
    // The phone got the key in its profile, yet neither the log nor the database
    // holds it in clear (the version and the queued command are sealed).
    let cmd = until_command(&phone, "InstallProfile").await;
    let (_, profile) = installed_profile(&cmd);
    assert_eq!(
        text(payloads(&profile, "com.apple.wifi.managed")[0], "Password"),
        "Shared-Secret-123"
    );
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(
        logged.contains("policies"),
        "the log is the server's debug log"
    );
    assert!(!logged.contains("Shared-Secret-123"), "the PSK was logged");
    let store = server.store().await;
    let db = store.connection();
    use sea_orm::{ConnectionTrait, Statement};
    let column = |sql: &str| Statement::from_string(db.get_database_backend(), sql.to_owned());
    let mut seen = Vec::new();
    for row in db
        .query_all(column(
            "SELECT document, document_sealed FROM policy_versions",
        ))
        .await
        .unwrap()
    {
        seen.push(row.try_get::<String>("", "document").unwrap().into_bytes());
        seen.push(row.try_get::<Vec<u8>>("", "document_sealed").unwrap());
    }
    for row in db
        .query_all(column("SELECT payload FROM commands"))
        .await
        .unwrap()
    {
        seen.push(row.try_get::<Vec<u8>>("", "payload").unwrap());
    }
    for row in db
        .query_all(column("SELECT message, data FROM events"))
        .await
        .unwrap()
    {
        seen.push(row.try_get::<String>("", "message").unwrap().into_bytes());
        seen.push(row.try_get::<String>("", "data").unwrap().into_bytes());
    }
    let all: Vec<u8> = seen.concat();
    // What was read is the stored content (so the check below can fail).
    assert!(
        contains(&all, b"TownHall-Staff"),
        "the masked document was read"
    );
    assert!(
        !contains(&all, b"Shared-Secret-123"),
        "the PSK is stored in clear"
    );
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

on_every_backend!(compliance_follows_what_the_device_reports);

async fn until_command(device: &SimDevice, request_type: &str) -> Received {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(cmd) = device.idle().await {
            if cmd.request_type == request_type {
                return cmd;
            }
            device.acknowledge(&cmd.uuid).await;
            continue;
        }
        assert!(Instant::now() < deadline, "no {request_type} came");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The Android phone of a directory user, enrolled through an enrollment made for
/// that user; returns the device id and its AMAPI name.
async fn android_phone_of(
    a: &mdm_tests::android_fixture::Android,
    user: &str,
    phone: &mdm_tests::fake_google_amapi::Phone,
) -> (String, String) {
    use mdm_tests::android_fixture::{DPC_TOKEN, EXTRAS};
    let e = a
        .server
        .create_enrollment(json!({ "platform": "android", "name": "phones", "user": user }))
        .await;
    let payload: Value = serde_json::from_str(e["qr_payload"].as_str().unwrap()).unwrap();
    let name = a
        .google
        .enroll_phone(payload[EXTRAS][DPC_TOKEN].as_str().unwrap(), phone)
        .unwrap();
    a.google.report_status(&name, &[]);
    let device = a
        .until("/devices?platform=android", "the phone", |v| {
            v["items"].as_array().is_some_and(|items| {
                items
                    .iter()
                    .any(|d| d["serial_number"] == phone.serial.as_str())
            })
        })
        .await;
    let id = device["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["serial_number"] == phone.serial.as_str())
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    (id, name)
}

/// The last body the server PATCHed as this device's own policy.
fn device_policy(a: &mdm_tests::android_fixture::Android, device_id: &str) -> Option<Value> {
    a.google
        .requests(&format!("/policies/device-{device_id}"))
        .into_iter()
        .filter(|r| r.method == "PATCH")
        .map(|r| r.body)
        .next_back()
}

async fn android_phones_get_the_same_policy_through_google(backend: Backend) {
    use mdm_tests::fake_google_amapi::Phone;
    let a =
        mdm_tests::android_fixture::start(backend, &["--android-pull-interval-ms", "100"]).await;
    a.connected().await;
    add_user(
        &a.server,
        "anna.nowak",
        "anna.nowak@townhall.example",
        "Anna Nowak",
        &["staff"],
    )
    .await;
    let (code, body) = a
        .server
        .api(
            "POST",
            "/device-groups",
            Some(json!({ "name": "staff", "kind": "directory_group", "match": "staff" })),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED, "{body}");
    let phone = Phone::default();
    let (id, name) = android_phone_of(&a, "anna.nowak", &phone).await;
    // Before any policy: the built-in one, the office's passcode floor.
    let deadline = Instant::now() + Duration::from_secs(15);
    let built_in = loop {
        // The device is stored first, its own policy patched right after.
        if let Some(p) = device_policy(&a, &id) {
            break p;
        }
        assert!(
            Instant::now() < deadline,
            "the device's own policy never came"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(built_in["passwordPolicies"][0]["passwordMinimumLength"], 6);

    save(&a.server, staff_policy(8)).await;
    let (code, delivery) = a
        .server
        .api(
            "POST",
            "/policies/staff/assignments",
            Some(json!({ "group": "staff" })),
        )
        .await;
    assert_eq!(code, StatusCode::OK, "{delivery}");
    assert_eq!(delivery["android_devices"], 1, "{delivery}");
    assert_eq!(delivery["problems"], json!([]), "{delivery}");
    let sent = device_policy(&a, &id).unwrap();
    assert_eq!(
        sent["passwordPolicies"][0]["passwordMinimumLength"], 8,
        "{sent}"
    );
    assert_eq!(sent["maximumTimeToLock"], "300000");
    // The server's own settings stay: status reports and security logs.
    assert_eq!(
        sent["statusReportingSettings"]["deviceSettingsEnabled"],
        true
    );
    let onc = sent["openNetworkConfiguration"].to_string();
    assert!(
        onc.contains("TownHall-Staff") && onc.contains("WPA-EAP"),
        "{onc}"
    );
    assert!(
        onc.contains("anna.nowak@ad.townhall.example"),
        "the user's UPN is the identity: {onc}"
    );
    assert!(onc.contains("radius.townhall.example"), "{onc}");
    assert!(
        sent.to_string().contains("anna.nowak@townhall.example"),
        "the mail app's managed configuration has the user's address: {sent}"
    );
    a.write_policies("policies-android");

    // Unchanged: Google is not called again.
    let patches = a.google.requests(&format!("/policies/device-{id}")).len();
    let (_, delivery) = a.server.api("POST", "/policies/deliver", None).await;
    assert_eq!(delivery["problems"], json!([]), "{delivery}");
    assert_eq!(
        a.google.requests(&format!("/policies/device-{id}")).len(),
        patches,
        "an unchanged policy is not re-sent"
    );
    // Changed: exactly one more patch.
    save(&a.server, staff_policy(10)).await;
    assert_eq!(
        a.google.requests(&format!("/policies/device-{id}")).len(),
        patches + 1
    );
    assert_eq!(
        device_policy(&a, &id).unwrap()["passwordPolicies"][0]["passwordMinimumLength"],
        10
    );

    // Compliance from Google's view of the device.
    a.google.report_status(
        &name,
        &[json!({ "settingName": "passwordPolicies", "nonComplianceReason": "USER_ACTION" })],
    );
    let path = format!("/devices/{id}/compliance");
    let v = until(&a.server, &path, "non-compliance", |v| {
        v["compliant"] == false
    })
    .await;
    assert!(
        v["reasons"]
            .to_string()
            .contains("passcode missing or too weak"),
        "{v}"
    );
    a.google.report_status(&name, &[]);
    until(&a.server, &path, "compliance", |v| v["compliant"] == true).await;
}
on_every_backend!(android_phones_get_the_same_policy_through_google);

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The admin's path on the command line: the baseline written by `policy init` meets
/// the office's rules; a pre-shared-key network is named by `policy check`; `policy
/// diff` and `policy apply --group` work from a TOML file; the non-compliant list.
async fn the_cli_writes_checks_diffs_and_applies_policy_files(backend: Backend) {
    let server = server(backend).await;
    let cli = server.clone_cli();
    let dir = mdm_tests::fixture::TempDir::new("policy-cli");
    let baseline = dir.0.join("baseline.toml");
    let out = cli
        .run(&["policy", "init", baseline.to_str().unwrap()])
        .await;
    assert!(out.status.success(), "{out:?}");
    let out = cli
        .run(&["policy", "check", baseline.to_str().unwrap()])
        .await;
    assert!(out.status.success(), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("meets the office's rules"),
        "{}",
        stdout(&out)
    );
    // Written again: refused, not overwritten.
    let out = cli
        .run(&["policy", "init", baseline.to_str().unwrap()])
        .await;
    assert_eq!(out.status.code(), Some(2));

    let psk = dir.0.join("guest.yaml");
    std::fs::write(
        &psk,
        "name: guest\npasscode:\n  required: true\n  min_length: 4\n  auto_lock_minutes: 10\nwifi:\n  - ssid: Guest\n    security:\n      type: psk\n      passphrase: Shared-Secret-123\n",
    )
    .unwrap();
    let out = cli.run(&["policy", "check", psk.to_str().unwrap()]).await;
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let text = stdout(&out);
    for rule in ["wifi.psk", "passcode.auto_lock", "passcode.min_length"] {
        assert!(text.contains(rule), "{rule} not in {text}");
    }
    let broken = dir.0.join("broken.toml");
    std::fs::write(
        &broken,
        "name = \"broken\"\n[passcode]\nrequired = true\nmin_length = 40\n",
    )
    .unwrap();
    let out = cli
        .run(&["policy", "check", broken.to_str().unwrap()])
        .await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).contains("passcode.min_length"),
        "{}",
        stdout(&out)
    );

    // Applied to a manual group from the TOML file the baseline is.
    let out = cli.run(&["groups", "create", "pilot"]).await;
    assert!(out.status.success(), "{out:?}");
    add_user(
        &server,
        "anna.nowak",
        "anna.nowak@townhall.example",
        "Anna Nowak",
        &[],
    )
    .await;
    let (phone, id) = enrolled_iphone(&server, "anna.nowak", "none").await;
    let out = cli.run(&["groups", "members", "pilot", "--add", &id]).await;
    assert!(out.status.success(), "{out:?}");
    let name = server_policy_name(&baseline);
    let out = cli
        .run(&[
            "policy",
            "diff",
            baseline.to_str().unwrap(),
            "--group",
            "pilot",
        ])
        .await;
    assert!(out.status.success(), "{out:?}");
    assert!(stdout(&out).contains("new"), "{}", stdout(&out));
    let out = cli
        .run(&[
            "policy",
            "apply",
            baseline.to_str().unwrap(),
            "--group",
            "pilot",
        ])
        .await;
    assert!(out.status.success(), "{out:?}");
    let text = stdout(&out);
    assert!(text.contains("version 1 saved"), "{text}");
    assert!(text.contains("Apple profiles queued: 1"), "{text}");
    let cmd = phone.idle().await.expect("the baseline's profile");
    let (signed, _) = installed_profile(&cmd);
    artifacts::write_apple("iOS", "policy-baseline.mobileconfig", &signed);
    // Applied again: unchanged.
    let out = cli
        .run(&[
            "policy",
            "apply",
            baseline.to_str().unwrap(),
            "--group",
            "pilot",
        ])
        .await;
    assert!(stdout(&out).contains("unchanged"), "{}", stdout(&out));
    let out = cli.run(&["policy", "show", &name]).await;
    assert!(
        stdout(&out).contains("assigned to group pilot"),
        "{}",
        stdout(&out)
    );

    // Evaluated from what the phone reported (nothing yet): listed as non-compliant.
    let (code, _) = server
        .api("POST", &format!("/devices/{id}/compliance"), None)
        .await;
    assert_eq!(code, StatusCode::OK);
    let out = cli.run(&["devices", "list", "--noncompliant"]).await;
    assert!(out.status.success(), "{out:?}");
    assert!(stdout(&out).contains(&id), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("not installed yet"),
        "{}",
        stdout(&out)
    );
    // A file that is not valid is refused by the server with the field, exit 1.
    let out = cli
        .run(&["policy", "apply", broken.to_str().unwrap()])
        .await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("passcode.min_length"),
        "{out:?}"
    );
}
on_every_backend!(the_cli_writes_checks_diffs_and_applies_policy_files);

fn server_policy_name(file: &std::path::Path) -> String {
    let text = std::fs::read_to_string(file).unwrap();
    let doc: toml::Value = toml::from_str(&text).unwrap();
    doc["name"].as_str().unwrap().to_owned()
}

/// EAP-TLS: the Wi-Fi payload names a SCEP payload whose one-time challenge our own
/// SCEP CA accepts, so the phone gets a certificate of its own for the network.
async fn an_eap_tls_network_gets_a_certificate_from_our_scep_ca(backend: Backend) {
    use mdm_tests::enroll::{rsa_key, scep_request, ScepResult};
    let server = server(backend).await;
    add_user(
        &server,
        "anna.nowak",
        "anna.nowak@townhall.example",
        "Anna Nowak",
        &[],
    )
    .await;
    let (phone, id) = enrolled_iphone(&server, "anna.nowak", "none").await;
    let mut doc = staff_policy(6);
    doc["name"] = json!("certificate-wifi");
    doc["mail"] = json!([]);
    doc["wifi"][0]["security"]["eap"] = json!({ "method": "tls" });
    save(&server, doc).await;
    let (code, delivery) = server
        .api(
            "POST",
            "/policies/certificate-wifi/assignments",
            Some(json!({ "device": id })),
        )
        .await;
    assert_eq!(code, StatusCode::OK, "{delivery}");
    assert_eq!(delivery["apple_installs"], 1, "{delivery}");
    let cmd = until_command(&phone, "InstallProfile").await;
    let (signed, profile) = installed_profile(&cmd);
    artifacts::write_apple("iOS", "policy-eap-tls.mobileconfig", &signed);
    let scep = payloads(&profile, "com.apple.security.scep");
    assert_eq!(scep.len(), 1);
    let content = scep[0]
        .get("PayloadContent")
        .and_then(Plist::as_dictionary)
        .unwrap();
    let challenge = text(content, "Challenge").to_owned();
    assert!(!challenge.is_empty());
    assert_eq!(text(content, "URL"), "https://mdm.test.invalid/scep");
    let wifi = payloads(&profile, "com.apple.wifi.managed");
    assert_eq!(
        text(wifi[0], "PayloadCertificateUUID"),
        text(scep[0], "PayloadUUID"),
        "the network authenticates with the SCEP payload's certificate"
    );
    let key = rsa_key();
    let ca = server.scep_ca().await;
    let cert = match scep_request(
        &server.base_url,
        &ca,
        &key,
        &format!("wifi-{id}"),
        Some(&challenge),
        None,
    )
    .await
    {
        ScepResult::Issued(cert) => cert,
        ScepResult::Refused(fail) => panic!("our SCEP CA refused the policy's challenge: {fail:?}"),
    };
    assert!(cert.verify(&ca.public_key().unwrap()).unwrap());
    // The Wi-Fi certificate is not a device identity: it enrolls nothing, even through
    // an enrollment with uses left.
    let rogue = SimDevice::with_identity(
        &server.base_url,
        uuid::Uuid::new_v4().to_string().to_uppercase(),
        key,
        cert,
        "iPhone15,2",
        "iOS",
    );
    let reply = rogue.authenticate().await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN, "{}", reply.text());
    assert!(reply.text().contains("EAP-TLS"), "{}", reply.text());
    // One-time: the same challenge again is refused.
    let again = scep_request(
        &server.base_url,
        &ca,
        &rsa_key(),
        &format!("wifi-{id}"),
        Some(&challenge),
        None,
    )
    .await;
    assert!(
        matches!(again, ScepResult::Refused(_)),
        "a challenge is good once"
    );
}
on_every_backend!(an_eap_tls_network_gets_a_certificate_from_our_scep_ca);
