//! Device identity: every device request must be signed by the certificate bound to
//! its UDID. Refusals are 4xx and write nothing (except the security event).

use enrollment::identity::testing::{sign_detached, TestCa};
use mdm_tests::fixture::{Backend, ServerOptions, TestServer};
use mdm_tests::on_every_backend;
use mdm_tests::simulator::{Signing, SimDevice, CHECKIN_PATH, SERVER_PATH};
use plist::{Dictionary, Value};
use reqwest::StatusCode;
use serde_json::json;

fn xml(entries: Vec<(&str, Value)>) -> Vec<u8> {
    let dict: Dictionary = entries
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
    let mut out = Vec::new();
    Value::Dictionary(dict).to_writer_xml(&mut out).unwrap();
    out
}

fn idle(udid: &str) -> Vec<u8> {
    xml(vec![("UDID", udid.into()), ("Status", "Idle".into())])
}

async fn device_count(server: &TestServer) -> u64 {
    server.get("/devices").await["total"].as_u64().unwrap()
}

async fn unsigned_and_badly_signed_requests_are_refused(backend: Backend) {
    let server = TestServer::start(backend).await;
    let device = SimDevice::iphone(&server.base_url, &server.ca);
    let auth = xml(vec![
        ("MessageType", "Authenticate".into()),
        ("UDID", device.udid.clone().into()),
        ("Topic", "com.apple.mgmt.External.x".into()),
    ]);
    let reply = device.send(CHECKIN_PATH, auth.clone(), Signing::None).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert!(reply.text().contains("Mdm-Signature"), "{}", reply.text());

    // Signed over a different body: the signature does not match.
    let other = sign_detached(&device.key, &device.cert, b"something else");
    let reply = device
        .send(CHECKIN_PATH, auth.clone(), Signing::Header(other))
        .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert!(reply.text().contains("does not match"), "{}", reply.text());

    // Garbage in the header.
    let reply = device
        .send(CHECKIN_PATH, auth.clone(), Signing::Header("%%%".into()))
        .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    let reply = device
        .send(
            CHECKIN_PATH,
            auth.clone(),
            Signing::Header("aGVsbG8gd29ybGQ=".into()),
        )
        .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);

    // A perfectly good signature from a certificate of another CA.
    let rogue = TestCa::new("Rogue CA");
    let (key, cert) = rogue.issue("intruder");
    let reply = device
        .send(CHECKIN_PATH, auth, Signing::With(&key, &cert))
        .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert!(reply.text().contains("chain"), "{}", reply.text());

    assert_eq!(device_count(&server).await, 0, "nothing was written");
}

async fn unknown_udids_are_refused(backend: Backend) {
    let server = TestServer::start(backend).await;
    let device = SimDevice::iphone(&server.base_url, &server.ca);
    // Never authenticated: TokenUpdate and Idle are refused.
    let reply = device.token_update().await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert!(reply.text().contains("not enrolled"));
    let reply = device
        .send(SERVER_PATH, idle(&device.udid), Signing::Own)
        .await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(device_count(&server).await, 0);
}

async fn another_devices_certificate_is_rejected_and_recorded(backend: Backend) {
    let server = TestServer::start(backend).await;
    let victim = SimDevice::iphone(&server.base_url, &server.ca);
    let attacker = SimDevice::iphone(&server.base_url, &server.ca);
    victim.enroll().await;
    attacker.enroll().await;
    let victim_id = server.get(&format!("/devices/{}", victim.udid)).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let lock = server
        .queue(&victim_id, json!({ "type": "ProfileList" }))
        .await;
    let before = server.get(&format!("/devices/{victim_id}")).await;

    // The attacker signs a request that claims the victim's UDID.
    let reply = attacker
        .send(SERVER_PATH, idle(&victim.udid), Signing::Own)
        .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    let body = xml(vec![
        ("MessageType", "TokenUpdate".into()),
        ("UDID", victim.udid.clone().into()),
        ("Token", Value::Data(vec![7; 32])),
        ("PushMagic", "evil".into()),
        ("Topic", "com.apple.mgmt.External.test-topic".into()),
    ]);
    let reply = attacker.send(CHECKIN_PATH, body, Signing::Own).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);

    // Nothing changed for the victim: same push token, command still pending.
    let after = server.get(&format!("/devices/{victim_id}")).await;
    assert_eq!(after["push_token"], before["push_token"]);
    assert_eq!(server.command(&lock).await["status"], "pending");

    let events = server.events("security.identity_mismatch").await;
    assert_eq!(events.len(), 2);
    assert_eq!(events[0]["device_id"], victim_id.as_str());
    assert_eq!(events[0]["severity"], 2);
    assert_eq!(
        events[0]["data"]["presented"],
        enrollment::identity::fingerprint(&attacker.cert)
    );
    // The victim itself still gets its command.
    assert_eq!(victim.idle().await.unwrap().uuid, lock);
}

async fn malformed_and_oversized_bodies(backend: Backend) {
    let server = TestServer::start_with(
        backend,
        ServerOptions {
            max_body_bytes: Some(64 * 1024),
            ..Default::default()
        },
    )
    .await;
    let device = SimDevice::iphone(&server.base_url, &server.ca);
    device.enroll().await;
    for (path, body) in [
        (CHECKIN_PATH, b"not a plist at all".to_vec()),
        (
            CHECKIN_PATH,
            b"<?xml version=\"1.0\"?><plist><dict><key>MessageType".to_vec(),
        ),
        (
            CHECKIN_PATH,
            xml(vec![("MessageType", "Authenticate".into())]),
        ),
        (
            CHECKIN_PATH,
            xml(vec![
                ("MessageType", "Nonsense".into()),
                ("UDID", device.udid.clone().into()),
            ]),
        ),
        (
            CHECKIN_PATH,
            xml(vec![
                ("MessageType", Value::Integer(3.into())),
                ("UDID", device.udid.clone().into()),
            ]),
        ),
        (
            SERVER_PATH,
            xml(vec![
                ("UDID", device.udid.clone().into()),
                ("Status", "Perhaps".into()),
            ]),
        ),
        (
            SERVER_PATH,
            xml(vec![
                ("UDID", device.udid.clone().into()),
                ("Status", "Acknowledged".into()),
            ]),
        ),
        (SERVER_PATH, Vec::new()),
    ] {
        let reply = device.send(path, body.clone(), Signing::Own).await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{path} {:?}: {}",
            String::from_utf8_lossy(&body),
            reply.text()
        );
        assert!(reply.text().contains("malformed"), "{}", reply.text());
    }
    // Larger than the limit: refused before anything reads it.
    let mut big = Dictionary::new();
    big.insert("UDID".into(), device.udid.clone().into());
    big.insert("Status".into(), "Idle".into());
    big.insert("Padding".into(), Value::Data(vec![0u8; 100 * 1024]));
    let mut body = Vec::new();
    Value::Dictionary(big).to_writer_xml(&mut body).unwrap();
    let reply = device.send(SERVER_PATH, body, Signing::Own).await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);
    // The server is still fine.
    assert!(device.idle().await.is_none());
}

async fn client_certificate_from_a_trusted_proxy(backend: Backend) {
    let server = TestServer::start_with(
        backend,
        ServerOptions {
            trust_client_cert_header: true,
            ..Default::default()
        },
    )
    .await;
    let device = SimDevice::iphone(&server.base_url, &server.ca);
    let auth = xml(vec![
        ("MessageType", "Authenticate".into()),
        ("UDID", device.udid.clone().into()),
        ("Topic", "com.apple.mgmt.External.x".into()),
    ]);
    let reply = device
        .send(
            CHECKIN_PATH,
            auth.clone(),
            Signing::ClientCert(&device.cert),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let record = server.get(&format!("/devices/{}", device.udid)).await;
    assert_eq!(
        record["identity_fingerprint"],
        enrollment::identity::fingerprint(&device.cert)
    );
    // A certificate from elsewhere in the header is refused all the same.
    let rogue = TestCa::new("Rogue CA");
    let (_, cert) = rogue.issue("intruder");
    let reply = device
        .send(SERVER_PATH, idle(&device.udid), Signing::ClientCert(&cert))
        .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    // Signed requests still work behind the proxy.
    let reply = device
        .send(SERVER_PATH, idle(&device.udid), Signing::Own)
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
}

/// Without --device-ca the server trusts only its built-in CA: certificates from
/// any other CA are refused.
async fn only_the_built_in_ca_is_trusted_by_default(backend: Backend) {
    let server = TestServer::start_with(
        backend,
        ServerOptions {
            with_device_ca: false,
            ..Default::default()
        },
    )
    .await;
    let device = SimDevice::iphone(&server.base_url, &server.ca);
    let reply = device.authenticate().await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert!(reply.text().contains("chain"), "{}", reply.text());
    assert_eq!(device_count(&server).await, 0);
}

on_every_backend!(
    unsigned_and_badly_signed_requests_are_refused,
    unknown_udids_are_refused,
    another_devices_certificate_is_rejected_and_recorded,
    malformed_and_oversized_bodies,
    client_certificate_from_a_trusted_proxy,
    only_the_built_in_ca_is_trusted_by_default,
);
