//! The admin API: authentication, devices, lock and wipe, fan-out to many devices,
//! the OpenAPI document, and the audit trail of admin actions.

use mdm_server::storage::{AuthenticateRecord, DeviceStore};
use mdm_tests::fixture::{Backend, TestServer};
use mdm_tests::on_every_backend;
use mdm_tests::simulator::SimDevice;
use reqwest::StatusCode;
use serde_json::json;

async fn id_of(server: &TestServer, device: &SimDevice) -> String {
    server.get(&format!("/devices/udid:{}", device.udid)).await["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn api_requires_a_valid_token(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (code, body) = server.api_as(None, "GET", "/devices", None).await;
    assert_eq!(code, StatusCode::UNAUTHORIZED);
    assert!(body["error"].as_str().unwrap().contains("Bearer"));
    let (code, _) = server
        .api_as(Some("mdm_wrong"), "GET", "/devices", None)
        .await;
    assert_eq!(code, StatusCode::UNAUTHORIZED);
    let (code, _) = server
        .api_as(
            Some("mdm_wrong"),
            "POST",
            "/commands",
            Some(json!({ "device_ids": ["x"], "type": "ProfileList" })),
        )
        .await;
    assert_eq!(code, StatusCode::UNAUTHORIZED);
    // The OpenAPI document is public.
    let (code, doc) = server.api_as(None, "GET", "/openapi.json", None).await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(doc["openapi"], "3.1.0");
    let (code, body) = server.api("GET", "/no-such-thing", None).await;
    assert_eq!(code, StatusCode::NOT_FOUND);
    assert!(body["error"].is_string());
}

async fn openapi_document_matches_the_routes(backend: Backend) {
    let server = TestServer::start(backend).await;
    let doc = server.get("/openapi.json").await;
    let paths = doc["paths"].as_object().unwrap();
    for expected in [
        "/devices",
        "/devices/{id}",
        "/devices/{id}/commands",
        "/devices/{id}/lock",
        "/devices/{id}/wipe",
        "/commands",
        "/commands/{uuid}",
        "/events",
        "/push-certificate",
        "/devices/{id}/push",
        "/devices/{id}/push-attempts",
        "/enrollments",
        "/enrollments/{id}",
        "/enrollments/{id}/qr.png",
        "/enrollments/{id}/qr.svg",
        "/incidents",
        "/incidents/{id}",
        "/incidents/verify",
        "/incidents/export.csv",
        "/deliveries",
        "/lost-report-links",
    ] {
        assert!(
            paths.contains_key(expected),
            "{expected} missing from openapi.json"
        );
    }
    // Every documented operation is routed: without a token it must answer 401
    // (routed, authenticated), never the 404 of an unknown route.
    for (path, ops) in paths {
        if path == "/openapi.json" {
            continue;
        }
        let concrete = path.replace("{id}", "x").replace("{uuid}", "x");
        for method in ops.as_object().unwrap().keys() {
            let (code, body) = server
                .api_as(None, &method.to_uppercase(), &concrete, Some(json!({})))
                .await;
            assert_eq!(code, StatusCode::UNAUTHORIZED, "{method} {path}: {body}");
        }
    }
}

async fn devices_are_listed_filtered_and_paged(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut phones = Vec::new();
    for _ in 0..3 {
        let d = SimDevice::iphone(&server.base_url, &server.ca);
        d.enroll().await;
        phones.push(d);
    }
    let mac = SimDevice::mac(&server.base_url, &server.ca);
    mac.enroll().await;
    let pending = SimDevice::iphone(&server.base_url, &server.ca);
    assert_eq!(pending.authenticate().await.status, StatusCode::OK);

    let all = server.get("/devices").await;
    assert_eq!(all["total"], 5);
    assert_eq!(server.get("/devices?enrolled=true").await["total"], 4);
    assert_eq!(server.get("/devices?os_family=macOS").await["total"], 1);
    let page = server.get("/devices?limit=2&offset=1").await;
    assert_eq!(page["items"].as_array().unwrap().len(), 2);
    assert_eq!(page["total"], 5);
    assert_eq!(page["items"][0]["id"], all["items"][1]["id"]);
    let found = server
        .get(&format!("/devices?search={}", &phones[1].serial[2..8]))
        .await;
    assert_eq!(found["total"], 1);
    assert_eq!(found["items"][0]["udid"], phones[1].udid.as_str());
    let (code, body) = server.api("GET", "/devices?limit=abc", None).await;
    assert_eq!(code, StatusCode::BAD_REQUEST, "{body}");
    let (code, _) = server
        .api("GET", &format!("/devices/{}", uuid::Uuid::new_v4()), None)
        .await;
    assert_eq!(code, StatusCode::NOT_FOUND);
    let (code, _) = server
        .api("GET", "/devices/udid:unknown-device", None)
        .await;
    assert_eq!(code, StatusCode::NOT_FOUND);
    // Neither an id nor an explicit udid:/serial: lookup.
    let (code, _) = server.api("GET", "/devices/unknown-device", None).await;
    assert_eq!(code, StatusCode::NOT_FOUND);
}

async fn lock_jumps_the_queue(backend: Backend) {
    let server = TestServer::start(backend).await;
    let phone = SimDevice::iphone(&server.base_url, &server.ca);
    phone.enroll().await;
    let id = id_of(&server, &phone).await;
    server.queue(&id, json!({ "type": "ProfileList" })).await;
    let (code, body) = server
        .api(
            "POST",
            &format!("/devices/{id}/lock"),
            Some(json!({ "message": "This phone belongs to the town hall", "phone_number": "+48 12 345 67 89" })),
        )
        .await;
    assert_eq!(code, StatusCode::ACCEPTED, "{body}");
    let lock = phone.idle().await.unwrap();
    assert_eq!(lock.request_type, "DeviceLock");
    assert_eq!(lock.uuid, body["command_uuid"].as_str().unwrap());
    assert_eq!(
        lock.command.get("Message").and_then(|v| v.as_string()),
        Some("This phone belongs to the town hall")
    );
    assert_eq!(server.command(&lock.uuid).await["priority"], 100);
    let audit = server.events("admin.device_lock").await;
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0]["actor"], "env:MDM_ADMIN_TOKEN");
    assert!(audit[0]["occurred_at"].is_string());
}

async fn wipe_needs_the_serial_number(backend: Backend) {
    let server = TestServer::start(backend).await;
    let phone = SimDevice::iphone(&server.base_url, &server.ca);
    phone.enroll().await;
    let id = id_of(&server, &phone).await;
    let path = format!("/devices/{id}/wipe");

    // Before the device has answered DeviceInformation, the serial number it claimed
    // at Authenticate confirms nothing: the server-assigned id is asked for.
    let (code, body) = server.api("POST", &path, Some(json!({}))).await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body["error"].as_str().unwrap().contains(" id "), "{body}");
    let (code, body) = server
        .api("POST", &path, Some(json!({ "confirm": phone.serial })))
        .await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let info = server
        .queue(
            &id,
            json!({ "type": "DeviceInformation", "queries": ["SerialNumber"] }),
        )
        .await;
    assert_eq!(phone.idle().await.unwrap().uuid, info);
    let mut answers = plist::Dictionary::new();
    answers.insert("SerialNumber".into(), phone.serial.clone().into());
    let mut result = plist::Dictionary::new();
    result.insert("QueryResponses".into(), plist::Value::Dictionary(answers));
    assert!(phone.acknowledge_with(&info, result).await.is_none());

    let (code, body) = server.api("POST", &path, Some(json!({}))).await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body["error"].as_str().unwrap().contains("serial number"));
    let (code, body) = server
        .api(
            "POST",
            &path,
            Some(json!({ "confirm": "SN-OF-ANOTHER-PHONE" })),
        )
        .await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body["error"].as_str().unwrap().contains("does not match"));
    let (code, _) = server.api("POST", &path, None).await;
    assert_eq!(
        code,
        StatusCode::BAD_REQUEST,
        "a wipe without a body is refused"
    );
    // The generic command queue cannot skip the confirmation, by type or as Raw.
    let raw = "<plist version=\"1.0\"><dict><key>RequestType</key><string>EraseDevice</string></dict></plist>";
    for body in [
        json!({ "type": "EraseDevice" }),
        json!({ "type": "Raw", "plist": raw }),
        json!({ "type": 5 }),
    ] {
        let (code, answer) = server
            .api(
                "POST",
                &format!("/devices/{id}/commands"),
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
        let (code, answer) = server
            .api(
                "POST",
                "/commands",
                Some(json!({ "device_ids": [id], "type": "EraseDevice" })),
            )
            .await;
        assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    }
    assert!(phone.idle().await.is_none(), "nothing was queued");
    assert_eq!(server.events("admin.device_wipe_refused").await.len(), 4);

    let (code, body) = server
        .api(
            "POST",
            &path,
            Some(json!({ "confirm": phone.serial.to_lowercase(), "preserve_data_plan": true })),
        )
        .await;
    assert_eq!(code, StatusCode::ACCEPTED, "{body}");
    let erase = phone.idle().await.unwrap();
    assert_eq!(erase.request_type, "EraseDevice");
    assert_eq!(
        erase
            .command
            .get("PreserveDataPlan")
            .and_then(|v| v.as_boolean()),
        Some(true)
    );
    assert!(phone.acknowledge(&erase.uuid).await.is_none());
    assert_eq!(server.command(&erase.uuid).await["status"], "acknowledged");
    let audit = server.events("admin.device_wipe").await;
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0]["device_id"], id.as_str());
}

async fn one_command_to_ten_thousand_devices(backend: Backend) {
    let server = TestServer::start(backend).await;
    let store = server.store().await;
    let records: Vec<AuthenticateRecord> = (0..10_000)
        .map(|i| AuthenticateRecord {
            udid: format!("BULK-{i:05}"),
            serial_number: Some(format!("BULK{i:05}")),
            os_family: "iOS".into(),
            identity_fingerprint: format!("{i:064}"),
            identity_subject: "CN=bulk".into(),
            identity_not_after: "never".into(),
            ..Default::default()
        })
        .collect();
    let mut ids = store.insert_enrolled_devices(records).await.unwrap();
    // A real device among them, to see the command arrive.
    let phone = SimDevice::iphone(&server.base_url, &server.ca);
    phone.enroll().await;
    ids.push(id_of(&server, &phone).await);

    let (code, body) = server
        .api(
            "POST",
            "/commands",
            Some(json!({ "device_ids": ids, "type": "DeviceInformation", "priority": 5 })),
        )
        .await;
    assert_eq!(code, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["count"], 10_001);
    let uuids: std::collections::HashSet<&str> = body["commands"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["command_uuid"].as_str().unwrap())
        .collect();
    assert_eq!(uuids.len(), 10_001, "every device gets its own CommandUUID");
    let got = phone.idle().await.unwrap();
    assert_eq!(got.request_type, "DeviceInformation");
    let audit = server.events("admin.command_queued").await;
    assert_eq!(audit.len(), 1, "one audit line for the whole fan-out");
    assert_eq!(audit[0]["data"]["device_count"], 10_001);

    // All or nothing: one unknown id and no device gets the command.
    let (code, body) = server
        .api(
            "POST",
            "/commands",
            Some(json!({ "device_ids": [ids[0], "no-such-device"], "type": "ProfileList" })),
        )
        .await;
    assert_eq!(code, StatusCode::NOT_FOUND);
    assert!(body["error"].as_str().unwrap().contains("no-such-device"));
    let history = server.get(&format!("/devices/{}/commands", ids[0])).await;
    assert_eq!(
        history["total"], 1,
        "only the DeviceInformation of the first fan-out"
    );
    let (code, _) = server
        .api(
            "POST",
            "/commands",
            Some(json!({ "device_ids": [], "type": "ProfileList" })),
        )
        .await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
}

async fn bad_command_requests_get_clear_errors(backend: Backend) {
    let server = TestServer::start(backend).await;
    let phone = SimDevice::iphone(&server.base_url, &server.ca);
    phone.enroll().await;
    let id = id_of(&server, &phone).await;
    let path = format!("/devices/{id}/commands");
    for (body, needle) in [
        (json!({ "type": "SelfDestruct" }), "SelfDestruct"),
        (json!({ "message": "no type" }), "type"),
        (
            json!({ "type": "InstallProfile", "payload": "***" }),
            "base64",
        ),
        (
            json!({ "type": "ProfileList", "priority": 100000 }),
            "priority",
        ),
        (
            json!({ "type": "ProfileList", "expires_in_seconds": -5 }),
            "expires_in_seconds",
        ),
        (json!({ "type": "EnableLostMode" }), "message"),
    ] {
        let (code, answer) = server.api("POST", &path, Some(body.clone())).await;
        assert!(
            matches!(
                code,
                StatusCode::BAD_REQUEST | StatusCode::UNPROCESSABLE_ENTITY
            ),
            "{body}: {answer}"
        );
        let message = answer["error"].as_str().unwrap_or_default();
        assert!(message.contains(needle), "{body}: {message}");
    }
    assert!(
        phone.idle().await.is_none(),
        "no command was queued by bad requests"
    );
}

on_every_backend!(
    api_requires_a_valid_token,
    openapi_document_matches_the_routes,
    devices_are_listed_filtered_and_paged,
    lock_jumps_the_queue,
    wipe_needs_the_serial_number,
    one_command_to_ten_thousand_devices,
    bad_command_requests_get_clear_errors,
);
