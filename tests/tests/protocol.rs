//! The Apple protocol end to end: enrollment check-ins, queue order, NotNow,
//! expiry, cancellation, results that update the device record, check-out.

use mdm_tests::fixture::{Backend, TestServer};
use mdm_tests::on_every_backend;
use mdm_tests::simulator::SimDevice;
use plist::{Dictionary, Value};
use reqwest::StatusCode;
use serde_json::json;

async fn enrolled(server: &TestServer) -> (SimDevice, String) {
    let device = SimDevice::iphone(&server.base_url, &server.ca);
    device.enroll().await;
    let record = server.get(&format!("/devices/udid:{}", device.udid)).await;
    (device, record["id"].as_str().unwrap().to_owned())
}

async fn enrollment_records_the_device(backend: Backend) {
    let server = TestServer::start(backend).await;
    let device = SimDevice::iphone(&server.base_url, &server.ca);
    assert_eq!(device.authenticate().await.status, StatusCode::OK);
    let record = server.get(&format!("/devices/udid:{}", device.udid)).await;
    assert_eq!(
        record["enrolled"], false,
        "Authenticate alone does not enroll"
    );
    assert_eq!(device.token_update().await.status, StatusCode::OK);

    let record = server.get(&format!("/devices/udid:{}", device.udid)).await;
    assert_eq!(record["enrolled"], true);
    assert_eq!(record["platform"], "apple");
    assert_eq!(record["udid"], device.udid.as_str());
    assert_eq!(record["serial_number"], device.serial.as_str());
    assert_eq!(record["os_family"], "iOS");
    assert_eq!(record["os_version"], "18.1");
    assert_eq!(record["build_version"], "22B83");
    assert_eq!(record["product_name"], "iPhone15,2");
    assert_eq!(record["topic"], "com.apple.mgmt.External.test-topic");
    assert_eq!(record["push_token"], hex::encode(&device.push_token));
    assert_eq!(record["push_magic"], device.push_magic.as_str());
    assert_eq!(record["has_unlock_token"], true);
    assert!(record["enrolled_at"].is_string());
    assert!(record["last_seen_at"].is_string());
    assert_eq!(
        record["identity_fingerprint"],
        enrollment::identity::fingerprint(&device.cert)
    );
    assert!(
        record.get("unlock_token").is_none(),
        "secrets are not exposed"
    );
    let enrolled = server.events("device.enrolled").await;
    assert_eq!(enrolled.len(), 1);

    // Lookup by serial number and by id give the same device.
    let by_serial = server
        .get(&format!("/devices/serial:{}", device.serial))
        .await;
    assert_eq!(by_serial["id"], record["id"]);
}

async fn unlock_token_is_encrypted_at_rest(backend: Backend) {
    use sea_orm::{ConnectionTrait, Statement};
    let server = TestServer::start(backend).await;
    let (device, id) = enrolled(&server).await;
    let store = server.store().await;
    let db = store.connection();
    let row = db
        .query_one(Statement::from_string(
            db.get_database_backend(),
            format!("SELECT unlock_token FROM devices WHERE id = '{id}'"),
        ))
        .await
        .unwrap()
        .unwrap();
    let stored: Vec<u8> = row.try_get("", "unlock_token").unwrap();
    assert!(!stored.is_empty());
    assert!(
        !stored.windows(16).any(|w| w == &device.unlock_token[..16]),
        "the unlock token is stored in clear"
    );
    // ClearPasscode hands the device its own token back, decrypted.
    let uuid = server.queue(&id, json!({ "type": "ClearPasscode" })).await;
    let cmd = device.idle().await.expect("ClearPasscode delivered");
    assert_eq!(cmd.uuid, uuid);
    assert_eq!(
        cmd.command.get("UnlockToken").and_then(Value::as_data),
        Some(&device.unlock_token[..])
    );
    // ...and the queued payload, which carries the token, is sealed too.
    let row = db
        .query_one(Statement::from_string(
            db.get_database_backend(),
            format!("SELECT payload, payload_sealed FROM commands WHERE uuid = '{uuid}'"),
        ))
        .await
        .unwrap()
        .unwrap();
    let payload: Vec<u8> = row.try_get("", "payload").unwrap();
    assert!(!payload.windows(16).any(|w| w == &device.unlock_token[..16]));
    assert!(!String::from_utf8_lossy(&payload).contains("ClearPasscode"));
}

async fn queue_is_priority_then_fifo(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (device, id) = enrolled(&server).await;
    assert!(
        device.idle().await.is_none(),
        "empty queue answers an empty 200"
    );
    let first = server.queue(&id, json!({ "type": "ProfileList" })).await;
    let second = server
        .queue(&id, json!({ "type": "CertificateList" }))
        .await;
    let urgent = server
        .queue(&id, json!({ "type": "SecurityInfo", "priority": 10 }))
        .await;
    let low = server
        .queue(&id, json!({ "type": "DeviceLocation", "priority": -5 }))
        .await;
    let third = server
        .queue(&id, json!({ "type": "InstalledApplicationList" }))
        .await;

    let mut order = Vec::new();
    let mut next = device.idle().await;
    while let Some(cmd) = next {
        order.push(cmd.uuid.clone());
        next = device.acknowledge(&cmd.uuid).await;
    }
    assert_eq!(order, vec![urgent, first.clone(), second, third, low]);
    let record = server.command(&first).await;
    assert_eq!(record["status"], "acknowledged");
    assert_eq!(record["delivery_count"], 1);
    assert!(record["completed_at"].is_string());
    assert!(record["result_raw"]
        .as_str()
        .unwrap()
        .contains("Acknowledged"));
}

async fn not_now_does_not_block_or_loop(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (device, id) = enrolled(&server).await;
    let a = server.queue(&id, json!({ "type": "ProfileList" })).await;
    let b = server
        .queue(&id, json!({ "type": "CertificateList" }))
        .await;
    let c = server.queue(&id, json!({ "type": "SecurityInfo" })).await;

    let got = device.idle().await.unwrap();
    assert_eq!(got.uuid, a);
    // NotNow on A: the rest of the queue goes on, A is not offered again now.
    let got = device.not_now(&a).await.unwrap();
    assert_eq!(got.uuid, b);
    let got = device.not_now(&b).await.unwrap();
    assert_eq!(got.uuid, c, "a second NotNow does not bring back the first");
    assert!(
        device.acknowledge(&c).await.is_none(),
        "no loop within one exchange"
    );
    let record = server.command(&a).await;
    assert_eq!(record["status"], "not_now");
    assert_eq!(record["not_now_count"], 1);
    assert!(record["completed_at"].is_null());

    // The next Idle starts a new exchange: the NotNow'd commands come back in order.
    let got = device.idle().await.unwrap();
    assert_eq!(got.uuid, a);
    let got = device.acknowledge(&a).await.unwrap();
    assert_eq!(got.uuid, b);
    assert!(device.error(&b, 12021).await.is_none());
    let record = server.command(&b).await;
    assert_eq!(record["status"], "error");
    assert_eq!(record["result"]["error_chain"][0]["ErrorCode"], 12021);
    assert_eq!(server.command(&a).await["delivery_count"], 2);
    // One event per outcome, none for the NotNows.
    let results = server.events("command.result").await;
    let outcomes: Vec<&str> = results
        .iter()
        .map(|e| e["data"]["status"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, ["acknowledged", "acknowledged", "error"]);
    assert_eq!(results[2]["data"]["command_uuid"], b.as_str());

    // A NotNow that ends an exchange with nothing else to send: the command still
    // waits for the next Idle.
    let d = server
        .queue(&id, json!({ "type": "DeviceInformation" }))
        .await;
    assert_eq!(device.idle().await.unwrap().uuid, d);
    assert!(device.not_now(&d).await.is_none());
    assert_eq!(device.idle().await.unwrap().uuid, d);
    assert!(device.acknowledge(&d).await.is_none());
}

async fn expired_commands_are_not_delivered(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (device, id) = enrolled(&server).await;
    let short = server
        .queue(
            &id,
            json!({ "type": "ProfileList", "expires_in_seconds": 1 }),
        )
        .await;
    let kept = server.queue(&id, json!({ "type": "SecurityInfo" })).await;
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    let got = device.idle().await.unwrap();
    assert_eq!(got.uuid, kept, "the expired command is skipped");
    assert!(device.acknowledge(&kept).await.is_none());
    // The maintenance job (1 s interval in tests) marks it expired.
    let mut status = String::new();
    for _ in 0..50 {
        status = server.command(&short).await["status"]
            .as_str()
            .unwrap()
            .to_owned();
        if status == "expired" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(status, "expired");
    let (code, body) = server
        .api(
            "POST",
            &format!("/devices/{id}/commands"),
            Some(json!({ "type": "ProfileList", "expires_at": "2001-01-01T00:00:00Z" })),
        )
        .await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
}

async fn pending_commands_can_be_cancelled(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (device, id) = enrolled(&server).await;
    let doomed = server.queue(&id, json!({ "type": "RestartDevice" })).await;
    let kept = server.queue(&id, json!({ "type": "ProfileList" })).await;
    let (code, body) = server
        .api("POST", &format!("/commands/{doomed}/cancel"), None)
        .await;
    assert_eq!(code, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "cancelled");
    let (code, body) = server
        .api("POST", &format!("/commands/{doomed}/cancel"), None)
        .await;
    assert_eq!(code, StatusCode::CONFLICT, "{body}");
    assert!(body["error"].as_str().unwrap().contains("cancelled"));

    let got = device.idle().await.unwrap();
    assert_eq!(got.uuid, kept);
    // Delivered commands cannot be cancelled any more: the device already has them.
    let (code, _) = server
        .api("POST", &format!("/commands/{kept}/cancel"), None)
        .await;
    assert_eq!(code, StatusCode::CONFLICT);
    assert!(device.acknowledge(&kept).await.is_none());
    let (code, _) = server
        .api(
            "POST",
            "/commands/00000000-0000-0000-0000-000000000000/cancel",
            None,
        )
        .await;
    assert_eq!(code, StatusCode::NOT_FOUND);
    let cancelled = server.events("admin.command_cancelled").await;
    assert_eq!(cancelled.len(), 1);
    assert_eq!(cancelled[0]["actor"], "env:MDM_ADMIN_TOKEN");
}

fn dict(entries: Vec<(&str, Value)>) -> Dictionary {
    entries
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
}

async fn results_update_the_device_record(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (device, id) = enrolled(&server).await;
    server
        .queue(&id, json!({ "type": "DeviceInformation" }))
        .await;
    server.queue(&id, json!({ "type": "SecurityInfo" })).await;
    server.queue(&id, json!({ "type": "ProfileList" })).await;

    let info = device.idle().await.unwrap();
    assert_eq!(info.request_type, "DeviceInformation");
    assert!(info
        .command
        .get("Queries")
        .and_then(Value::as_array)
        .is_some());
    let answer = dict(vec![(
        "QueryResponses",
        Value::Dictionary(dict(vec![
            ("OSVersion", "18.2".into()),
            ("BuildVersion", "22C152".into()),
            ("DeviceName", "Mayor's phone".into()),
            ("ProductName", "iPad13,1".into()),
        ])),
    )]);
    let security = device.acknowledge_with(&info.uuid, answer).await.unwrap();
    assert_eq!(security.request_type, "SecurityInfo");
    let answer = dict(vec![(
        "SecurityInfo",
        Value::Dictionary(dict(vec![
            ("HardwareEncryptionCaps", Value::Integer(3.into())),
            ("PasscodePresent", true.into()),
            ("PasscodeCompliant", false.into()),
            ("PasscodeCompliantWithProfiles", true.into()),
        ])),
    )]);
    let profiles = device
        .acknowledge_with(&security.uuid, answer)
        .await
        .unwrap();
    let answer = dict(vec![(
        "ProfileList",
        Value::Array(vec![Value::Dictionary(dict(vec![
            ("PayloadIdentifier", "gov.townhall.wifi".into()),
            ("PayloadDisplayName", "Town hall Wi-Fi".into()),
            ("PayloadUUID", "5A4B2C55-0000-4000-8000-000000000001".into()),
            ("PayloadVersion", Value::Integer(1.into())),
            ("IsManaged", true.into()),
        ]))]),
    )]);
    assert!(device
        .acknowledge_with(&profiles.uuid, answer)
        .await
        .is_none());

    let record = server.get(&format!("/devices/{id}")).await;
    assert_eq!(record["os_version"], "18.2");
    assert_eq!(record["build_version"], "22C152");
    assert_eq!(record["device_name"], "Mayor's phone");
    assert_eq!(record["os_family"], "iPadOS");
    assert_eq!(record["hardware_encrypted"], true);
    assert_eq!(record["passcode_present"], true);
    assert_eq!(record["passcode_compliant"], false);
    assert_eq!(
        record["installed_profiles"][0]["identifier"],
        "gov.townhall.wifi"
    );
    let result = server.command(&info.uuid).await;
    assert_eq!(
        result["result"]["fields"]["QueryResponses"]["OSVersion"],
        "18.2"
    );
}

/// A report is stored once: the first answer stands. A second Acknowledged for the
/// same command (a replay of an old answer, or a device that lies later) changes
/// neither the stored result nor the device facts that answer set.
async fn a_repeated_answer_changes_nothing(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (device, id) = enrolled(&server).await;
    server
        .queue(&id, json!({ "type": "DeviceInformation" }))
        .await;
    let answer = |version: &str, name: &str| {
        dict(vec![(
            "QueryResponses",
            Value::Dictionary(dict(vec![
                ("OSVersion", version.into()),
                ("DeviceName", name.into()),
                ("ProductName", "iPhone15,2".into()),
            ])),
        )])
    };
    let info = device.idle().await.unwrap();
    assert!(device
        .acknowledge_with(&info.uuid, answer("18.2", "Clerk's phone"))
        .await
        .is_none());
    assert!(device
        .acknowledge_with(&info.uuid, answer("16.0", "Replayed"))
        .await
        .is_none());

    let record = server.get(&format!("/devices/{id}")).await;
    assert_eq!(record["os_version"], "18.2");
    assert_eq!(record["device_name"], "Clerk's phone");
    let result = server.command(&info.uuid).await;
    assert_eq!(
        result["result"]["fields"]["QueryResponses"]["OSVersion"],
        "18.2"
    );
}

/// A report is written whole or not at all: the result, its event and the facts it
/// tells are one transaction on either engine. When the event cannot be written, the
/// result is not stored either, so the device's retry (it gets no 200) is taken as
/// the first answer, not refused as a repeated one.
async fn a_report_is_written_whole_or_not_at_all(backend: Backend) {
    use sea_orm::ConnectionTrait;
    let server = TestServer::start(backend.clone()).await;
    let (device, id) = enrolled(&server).await;
    server
        .queue(&id, json!({ "type": "DeviceInformation" }))
        .await;
    let info = device.idle().await.unwrap();
    let answer = dict(vec![(
        "QueryResponses",
        Value::Dictionary(dict(vec![
            ("OSVersion", "18.2".into()),
            ("ProductName", "iPhone15,2".into()),
        ])),
    )]);

    // The database refuses the result's event (as a full disk or a constraint would).
    let db = sea_orm::Database::connect(&server.database_url)
        .await
        .unwrap();
    let refuse = match backend {
        Backend::Sqlite => vec![
            "CREATE TRIGGER refuse_results BEFORE INSERT ON events \
             WHEN NEW.kind = 'command.result' BEGIN SELECT RAISE(ABORT, 'refused'); END",
        ],
        Backend::Postgres(_) => vec![
            "CREATE FUNCTION refuse_results() RETURNS trigger LANGUAGE plpgsql AS \
             $$ BEGIN RAISE EXCEPTION 'refused'; END $$",
            "CREATE TRIGGER refuse_results BEFORE INSERT ON events FOR EACH ROW \
             WHEN (NEW.kind = 'command.result') EXECUTE FUNCTION refuse_results()",
        ],
    };
    for sql in refuse {
        db.execute_unprepared(sql).await.unwrap();
    }
    let refused = device
        .report_raw("Acknowledged", Some(&info.uuid), answer.clone())
        .await;
    assert!(
        refused.status.is_server_error(),
        "{}: {}",
        refused.status,
        refused.text()
    );
    assert_eq!(
        server.command(&info.uuid).await["status"],
        "sent",
        "no result stored without its event"
    );
    assert_ne!(
        server.get(&format!("/devices/{id}")).await["os_version"],
        "18.2"
    );

    let allow = match backend {
        Backend::Sqlite => "DROP TRIGGER refuse_results",
        Backend::Postgres(_) => "DROP TRIGGER refuse_results ON events",
    };
    db.execute_unprepared(allow).await.unwrap();
    db.close().await.unwrap();
    assert!(device.acknowledge_with(&info.uuid, answer).await.is_none());
    assert_eq!(server.command(&info.uuid).await["status"], "acknowledged");
    assert_eq!(
        server.get(&format!("/devices/{id}")).await["os_version"],
        "18.2"
    );
    let events = server.events("command.result").await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["data"]["command_uuid"], info.uuid.as_str());
}

/// A device that is still enrolled comes back with a new certificate (its MDM profile
/// reinstalled, no check-out): held until an admin approves, then a re-enrollment that
/// starts clean: push token, queue and escrowed secrets of the old identity are gone.
async fn re_enrollment_resets_token_and_queue(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (device, id) = enrolled(&server).await;
    let stale = server.queue(&id, json!({ "type": "ProfileList" })).await;
    let (key, cert) = server.ca.issue("re-enrolled");
    let mut again = SimDevice::with_identity(
        &server.base_url,
        device.udid.clone(),
        key,
        cert,
        "iPhone15,2",
        "iOS",
    );
    again.serial = device.serial.clone();
    let held = again.authenticate().await;
    assert_eq!(held.status, StatusCode::FORBIDDEN, "{}", held.text());
    assert!(held.text().contains("approve"), "{}", held.text());
    let events = server.events("security.reenrollment_held").await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["severity"], 3);
    assert_eq!(server.command(&stale).await["status"], "pending");
    assert!(again.token_update().await.status.is_client_error());

    let (code, body) = server
        .api("POST", &format!("/devices/{id}/reenrollment"), None)
        .await;
    assert_eq!(code, StatusCode::OK, "{body}");
    assert_eq!(again.authenticate().await.status, StatusCode::OK);
    let record = server.get(&format!("/devices/{id}")).await;
    assert!(
        record["push_token"].is_null(),
        "Authenticate clears the push token"
    );
    assert_eq!(record["enrolled"], false);
    assert_eq!(record["has_unlock_token"], false, "old escrow dropped");
    assert_eq!(server.command(&stale).await["status"], "cancelled");
    let rebound = server.events("device.identity_rebound").await;
    assert_eq!(rebound.len(), 1);
    assert_eq!(rebound[0]["severity"], 3);
    assert_eq!(rebound[0]["data"]["approved_by_admin"], true);
    // The old certificate no longer speaks for the device, nor can it come back.
    assert_eq!(
        device
            .report_raw("Idle", None, Dictionary::new())
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    // Retired (revoked as superseded): no identity at all any more.
    assert_eq!(device.authenticate().await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(again.token_update().await.status, StatusCode::OK);
    assert!(again.idle().await.is_none());
    assert_eq!(
        server.get(&format!("/devices/{id}")).await["enrolled"],
        true
    );
}

async fn check_out_unenrolls(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (device, id) = enrolled(&server).await;
    let pending = server.queue(&id, json!({ "type": "ProfileList" })).await;
    assert_eq!(device.check_out().await.status, StatusCode::OK);
    let record = server.get(&format!("/devices/{id}")).await;
    assert_eq!(record["enrolled"], false);
    assert!(record["unenrolled_at"].is_string());
    assert!(record["push_token"].is_null());
    assert_eq!(record["has_unlock_token"], false);
    assert_eq!(server.command(&pending).await["status"], "cancelled");
    let listed = server.get("/devices?enrolled=false").await;
    assert_eq!(listed["total"], 1);
}

async fn bootstrap_token_and_unsupported_messages(backend: Backend) {
    let server = TestServer::start(backend).await;
    // Bootstrap tokens are a macOS feature.
    let device = SimDevice::mac(&server.base_url, &server.ca);
    device.enroll().await;
    let id = server.get(&format!("/devices/udid:{}", device.udid)).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let reply = device.checkin("GetBootstrapToken", Dictionary::new()).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND, "nothing escrowed yet");
    let token = b"bootstrap-secret-0123456789".to_vec();
    let reply = device
        .checkin(
            "SetBootstrapToken",
            dict(vec![("BootstrapToken", Value::Data(token.clone()))]),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(
        server.get(&format!("/devices/{id}")).await["has_bootstrap_token"],
        true
    );
    let reply = device.checkin("GetBootstrapToken", Dictionary::new()).await;
    assert_eq!(reply.status, StatusCode::OK);
    let answer: Dictionary = plist::from_bytes(&reply.body).unwrap();
    assert_eq!(
        answer.get("BootstrapToken").and_then(Value::as_data),
        Some(&token[..])
    );

    let reply = device
        .checkin(
            "UserAuthenticate",
            dict(vec![
                ("UserID", "501-ABC".into()),
                ("DigestResponse", "".into()),
            ]),
        )
        .await;
    assert_eq!(reply.status, StatusCode::GONE, "{}", reply.text());
    let reply = device
        .checkin(
            "DeclarativeManagement",
            dict(vec![("Endpoint", "tokens".into())]),
        )
        .await;
    assert_eq!(reply.status, StatusCode::NOT_IMPLEMENTED);
    assert!(reply.text().contains("not supported"));

    // A user channel TokenUpdate is accepted and does not touch the device channel.
    let reply = device
        .checkin(
            "TokenUpdate",
            dict(vec![
                ("UserID", "501-ABC".into()),
                ("UserShortName", "mayor".into()),
                ("UserLongName", "Mayor of the Town".into()),
                ("NotOnConsole", false.into()),
                ("Token", Value::Data(vec![9; 32])),
                ("PushMagic", "user-magic".into()),
                ("Topic", "com.apple.mgmt.External.test-topic".into()),
            ]),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        server.get(&format!("/devices/{id}")).await["push_token"],
        hex::encode(&device.push_token)
    );
}

async fn mac_commands_and_raw_commands(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mac = SimDevice::mac(&server.base_url, &server.ca);
    mac.enroll().await;
    let id = server.get(&format!("/devices/udid:{}", mac.udid)).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        server.get(&format!("/devices/{id}")).await["os_family"],
        "macOS"
    );
    let (code, body) = server
        .api(
            "POST",
            &format!("/devices/{id}/lock"),
            Some(json!({ "pin": "123456", "message": "Locked by IT" })),
        )
        .await;
    assert_eq!(code, StatusCode::ACCEPTED, "{body}");
    let raw = r#"<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0"><dict><key>RequestType</key><string>ProvisioningProfileList</string></dict></plist>"#;
    let raw_uuid = server
        .queue(&id, json!({ "type": "Raw", "plist": raw }))
        .await;
    let lock = mac.idle().await.unwrap();
    assert_eq!(lock.request_type, "DeviceLock");
    assert_eq!(
        lock.command.get("PIN").and_then(Value::as_string),
        Some("123456")
    );
    let got = mac.acknowledge(&lock.uuid).await.unwrap();
    assert_eq!(got.uuid, raw_uuid);
    assert_eq!(got.request_type, "ProvisioningProfileList");
    assert!(mac.acknowledge(&raw_uuid).await.is_none());

    // The same PIN is refused for an iPhone, with a message that says why.
    let phone = SimDevice::iphone(&server.base_url, &server.ca);
    phone.enroll().await;
    let (code, body) = server
        .api(
            "POST",
            &format!("/devices/udid:{}/lock", phone.udid),
            Some(json!({ "pin": "123456" })),
        )
        .await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body["error"].as_str().unwrap().contains("macOS"), "{body}");
    let (code, body) = server
        .api(
            "POST",
            &format!("/devices/{id}/commands"),
            Some(json!({ "type": "Raw", "plist": "<plist>" })),
        )
        .await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
}

/// A binary plist whose object `i` is the array `[i+1, i+1]` and whose last object is
/// `true`: `levels + 1` objects that read as a tree of 2^(levels+1) elements.
fn exponential_binary_plist(levels: u8) -> Vec<u8> {
    let mut out = b"bplist00".to_vec();
    let mut offsets = Vec::new();
    for i in 0..levels {
        offsets.push(out.len() as u8);
        out.extend_from_slice(&[0xA2, i + 1, i + 1]);
    }
    offsets.push(out.len() as u8);
    out.push(0x09);
    let table = out.len() as u64;
    out.extend_from_slice(&offsets);
    out.extend_from_slice(&[0; 6]);
    out.extend_from_slice(&[1, 1]); // offset and object reference sizes
    out.extend_from_slice(&(u64::from(levels) + 1).to_be_bytes());
    out.extend_from_slice(&0u64.to_be_bytes());
    out.extend_from_slice(&table.to_be_bytes());
    out
}

/// The request that used to abort the whole server (stack overflow in the plist
/// decoder): a signed report nesting 5,000 arrays. Now 400, and the server and the
/// device carry on; a body past the device limit is 413.
async fn deep_nesting_is_refused_and_the_server_survives(backend: Backend) {
    use mdm_tests::simulator::Signing;
    let server = TestServer::start(backend).await;
    let (device, id) = enrolled(&server).await;
    for (path, depth) in [("/mdm/connect", 5_000), ("/mdm/checkin", 50_000)] {
        let body = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><plist version=\"1.0\"><dict>\
             <key>UDID</key><string>{}</string><key>Status</key><string>Idle</string>\
             <key>MessageType</key><string>TokenUpdate</string><key>Deep</key>{}{}</dict></plist>",
            device.udid,
            "<array>".repeat(depth),
            "</array>".repeat(depth)
        );
        let reply = device.send(path, body.into_bytes(), Signing::Own).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.text());
        assert!(reply.text().contains("deeper"), "{}", reply.text());
    }
    // A binary plist of 200 bytes whose arrays share their children expands to two
    // million elements: stopped at the element limit, as too large.
    let reply = device
        .send("/mdm/connect", exponential_binary_plist(20), Signing::Own)
        .await;
    assert_eq!(
        reply.status,
        StatusCode::PAYLOAD_TOO_LARGE,
        "{}",
        reply.text()
    );
    // Past the device body limit (1 MiB by default): refused before it is parsed.
    let reply = device
        .send("/mdm/connect", vec![b' '; 1024 * 1024 + 1], Signing::Own)
        .await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);

    assert_eq!(
        reqwest::get(server.url("/healthz")).await.unwrap().status(),
        StatusCode::OK
    );
    let uuid = server
        .queue(&id, json!({ "type": "DeviceInformation" }))
        .await;
    assert_eq!(device.idle().await.unwrap().uuid, uuid);
}

/// The identity row a device request reads says, from the same statement, whether
/// the device has a command to send: pending, sent and not yet answered, or NotNow'd.
/// An Idle is answered empty from it alone (on PostgreSQL, where the queue is not
/// remembered), so it must never say "none" while one waits.
async fn the_identity_row_knows_whether_a_command_waits(backend: Backend) {
    use mdm_server::storage::DeviceStore;
    let server = TestServer::start(backend).await;
    let (device, id) = enrolled(&server).await;
    let store = server.store().await;
    let open = || async {
        store
            .identity_by_udid(&device.udid)
            .await
            .unwrap()
            .expect("enrolled")
            .open_commands
    };
    assert_eq!(open().await, Some(false), "nothing queued");
    let a = server.queue(&id, json!({ "type": "ProfileList" })).await;
    assert_eq!(open().await, Some(true), "pending");
    assert_eq!(device.idle().await.unwrap().uuid, a);
    assert_eq!(open().await, Some(true), "sent, not yet answered");
    assert!(device.not_now(&a).await.is_none());
    assert_eq!(
        open().await,
        Some(true),
        "NotNow'd: offered again at the next Idle"
    );
    assert_eq!(device.idle().await.unwrap().uuid, a);
    assert!(device.acknowledge(&a).await.is_none());
    assert_eq!(open().await, Some(false), "acknowledged");
    assert!(device.idle().await.is_none());
}

/// On SQLite (one instance), an exchange that ends with nothing left makes the queue
/// known empty, so the device's next Idle is answered without the database. Seen by a
/// command written into the database behind the server's back, which no instance
/// would do: the next Idle does not find it, until a command queued through the
/// server makes the queue unknown again.
#[tokio::test]
async fn an_exchange_ending_empty_is_remembered_on_sqlite() {
    use mdm_server::domain::NewCommand;
    use mdm_server::storage::CommandQueue;
    let server = TestServer::start(Backend::Sqlite).await;
    let (device, id) = enrolled(&server).await;
    let a = server.queue(&id, json!({ "type": "ProfileList" })).await;
    assert_eq!(device.idle().await.unwrap().uuid, a);
    assert!(device.acknowledge(&a).await.is_none());

    let behind = uuid::Uuid::new_v4().to_string().to_uppercase();
    let payload = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><plist version=\"1.0\"><dict>\
         <key>CommandUUID</key><string>{behind}</string><key>Command</key><dict>\
         <key>RequestType</key><string>CertificateList</string></dict></dict></plist>"
    );
    let store = server.store().await;
    let command = NewCommand {
        uuid: behind.clone(),
        device_id: id.clone(),
        request_type: "CertificateList".into(),
        payload: payload.into_bytes(),
        payload_sealed: false,
        priority: 0,
        expires_at: None,
        created_by: "behind the server's back".into(),
    };
    store.enqueue(vec![command], Vec::new()).await.unwrap();
    assert!(
        device.idle().await.is_none(),
        "the Idle after an exchange that ended empty asked the database"
    );

    let b = server.queue(&id, json!({ "type": "SecurityInfo" })).await;
    assert_eq!(device.idle().await.unwrap().uuid, behind);
    assert_eq!(device.acknowledge(&behind).await.unwrap().uuid, b);
    assert!(device.acknowledge(&b).await.is_none());
}

on_every_backend!(
    the_identity_row_knows_whether_a_command_waits,
    enrollment_records_the_device,
    unlock_token_is_encrypted_at_rest,
    queue_is_priority_then_fifo,
    not_now_does_not_block_or_loop,
    expired_commands_are_not_delivered,
    pending_commands_can_be_cancelled,
    results_update_the_device_record,
    a_repeated_answer_changes_nothing,
    a_report_is_written_whole_or_not_at_all,
    re_enrollment_resets_token_and_queue,
    check_out_unenrolls,
    bootstrap_token_and_unsupported_messages,
    mac_commands_and_raw_commands,
    deep_nesting_is_refused_and_the_server_survives,
);
