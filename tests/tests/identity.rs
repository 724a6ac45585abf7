//! Device identity: every device request must be signed by the certificate bound to
//! its UDID. Refusals are 4xx and write nothing (except the security event).

use enrollment::identity::testing::{sign_detached, TestCa};
use mdm_tests::fixture::{Backend, ServerOptions, TestServer};
use mdm_tests::on_every_backend;
use mdm_tests::simulator::{Signing, SimDevice, CHECKIN_PATH, SERVER_PATH};
use plist::{Dictionary, Value};
use reqwest::StatusCode;
use serde_json::json;

use mdm_tests::simulator::plist_body as xml;

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
    let victim_id = server.get(&format!("/devices/udid:{}", victim.udid)).await["id"]
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
    let record = server.get(&format!("/devices/udid:{}", device.udid)).await;
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

/// Issue #16's takeover, as an attacker would try it: an enrolled device sends
/// Authenticate with the victim's UDID. Refused (403), a severity-3 event on the
/// victim, and the victim keeps its certificate, queue, escrowed secrets and lock.
async fn authenticate_with_a_victims_udid_is_refused(backend: Backend) {
    let server = TestServer::start(backend).await;
    let victim = SimDevice::iphone(&server.base_url, &server.ca);
    let attacker = SimDevice::iphone(&server.base_url, &server.ca);
    victim.enroll().await;
    attacker.enroll().await;
    let victim_id = server.get(&format!("/devices/udid:{}", victim.udid)).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (code, lock) = server
        .api("POST", &format!("/devices/{victim_id}/lock"), None)
        .await;
    assert_eq!(code, StatusCode::ACCEPTED, "{lock}");
    let before = server.get(&format!("/devices/{victim_id}")).await;

    let auth = xml(vec![
        ("MessageType", "Authenticate".into()),
        ("UDID", victim.udid.clone().into()),
        ("Topic", "com.apple.mgmt.External.test-topic".into()),
        ("SerialNumber", victim.serial.clone().into()),
    ]);
    let reply = attacker.send(CHECKIN_PATH, auth, Signing::Own).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN, "{}", reply.text());
    assert!(reply.text().contains("another device"), "{}", reply.text());

    let after = server.get(&format!("/devices/{victim_id}")).await;
    for field in [
        "identity_fingerprint",
        "push_token",
        "has_unlock_token",
        "enrolled",
    ] {
        assert_eq!(after[field], before[field], "{field} changed");
    }
    assert_eq!(
        server.command(lock["command_uuid"].as_str().unwrap()).await["status"],
        "pending"
    );
    let refused = server.events("security.identity_takeover_refused").await;
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0]["severity"], 3);
    assert_eq!(
        refused[0]["data"]["presented"],
        enrollment::identity::fingerprint(&attacker.cert)
    );
    assert!(server.events("device.identity_rebound").await.is_empty());
    // The victim still gets its lock; the attacker's own queue is empty.
    assert_eq!(victim.idle().await.unwrap().request_type, "DeviceLock");
    assert!(attacker.idle().await.is_none());
}

/// One certificate, one device: a certificate that enrolled one UDID cannot
/// authenticate a second one, new or existing, and nothing is created for it.
async fn one_certificate_cannot_enroll_a_second_udid(backend: Backend) {
    let server = TestServer::start(backend).await;
    let first = SimDevice::iphone(&server.base_url, &server.ca);
    first.enroll().await;
    for _ in 0..3 {
        let mut second = SimDevice::with_identity(
            &server.base_url,
            uuid::Uuid::new_v4().to_string().to_uppercase(),
            first.key.clone(),
            first.cert.clone(),
            "iPhone15,2",
            "iOS",
        );
        second.serial = format!("DECOY{}", &second.udid[..6]);
        let reply = second.authenticate().await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "{}", reply.text());
    }
    assert_eq!(device_count(&server).await, 1);
    assert_eq!(
        server
            .events("security.identity_takeover_refused")
            .await
            .len(),
        3
    );
}

/// Concurrent Authenticates of one fresh certificate for different UDIDs: exactly one
/// binds (the binding's primary key decides a race the reads cannot), the others are
/// refused (403) or told they lost the race (409); never a second device.
async fn one_certificate_racing_for_several_udids_binds_once(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (key, cert) = server.ca.issue("racer");
    let racers: Vec<SimDevice> = (0..8)
        .map(|_| {
            SimDevice::with_identity(
                &server.base_url,
                uuid::Uuid::new_v4().to_string().to_uppercase(),
                key.clone(),
                cert.clone(),
                "iPhone15,2",
                "iOS",
            )
        })
        .collect();
    let replies = futures::future::join_all(racers.iter().map(SimDevice::authenticate)).await;
    let statuses: Vec<StatusCode> = replies.iter().map(|r| r.status).collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == StatusCode::OK).count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses
            .iter()
            .all(|s| [StatusCode::OK, StatusCode::FORBIDDEN, StatusCode::CONFLICT].contains(s)),
        "{statuses:?}"
    );
    assert_eq!(device_count(&server).await, 1);
}

/// A device chooses its own UDID: one that enrolled with its UDID equal to the
/// victim's serial number cannot steer an admin's lookup or wipe to itself.
async fn a_decoy_udid_cannot_steer_admin_lookups(backend: Backend) {
    let server = TestServer::start(backend).await;
    let victim = SimDevice::iphone(&server.base_url, &server.ca);
    victim.enroll().await;
    let mut decoy = SimDevice::iphone(&server.base_url, &server.ca);
    decoy.udid = victim.serial.clone();
    decoy.enroll().await;
    let victim_id = server.get(&format!("/devices/udid:{}", victim.udid)).await["id"].clone();

    // A bare serial number is not an id: refused, naming the explicit forms.
    let (code, body) = server
        .api("GET", &format!("/devices/{}", victim.serial), None)
        .await;
    assert_eq!(code, StatusCode::NOT_FOUND, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("serial:"),
        "{body}"
    );
    let by_serial = server
        .get(&format!("/devices/serial:{}", victim.serial))
        .await;
    assert_eq!(by_serial["id"], victim_id);
    let by_udid = server
        .get(&format!("/devices/udid:{}", victim.serial))
        .await;
    assert_ne!(
        by_udid["id"], victim_id,
        "udid: finds the decoy, explicitly"
    );

    // The CLI's bare name matches both: refused, listing both candidates.
    let out = server
        .clone_cli()
        .run(&[
            "devices",
            "wipe",
            &victim.serial,
            "--confirm",
            &victim.serial,
        ])
        .await;
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("2 devices"), "{err}");
    assert!(err.contains(victim_id.as_str().unwrap()), "{err}");
    assert!(victim.idle().await.is_none() && decoy.idle().await.is_none());

    // A wipe is confirmed by what DeviceInformation reported, never by the
    // Authenticate claims: the decoy's UDID does not confirm the victim's wipe.
    let (code, _) = server
        .api(
            "POST",
            &format!("/devices/{}/wipe", victim_id.as_str().unwrap()),
            Some(json!({ "confirm": victim.serial })),
        )
        .await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY);
}

/// A device that checked out may come back with a fresh certificate from our own SCEP
/// server without an admin (one issued after the check-out); the old certificate is
/// retired and revoked, and the re-enrolled record starts without the old escrowed
/// secrets.
async fn a_checked_out_device_re_enrolls_through_scep(backend: Backend) {
    use mdm_tests::enroll::enroll_iphone;
    let server = TestServer::start_with(
        backend,
        ServerOptions {
            with_device_ca: false,
            ..Default::default()
        },
    )
    .await;
    server.upload_push_certificate().await;
    let e = server
        .create_enrollment(json!({ "platform": "apple", "name": "Desk" }))
        .await;
    let url = server.local_url(&e);
    let (phone, _) = enroll_iphone(&server.base_url, &url).await;
    phone.enroll().await;
    let id = server.get(&format!("/devices/udid:{}", phone.udid)).await["id"].clone();

    // Still enrolled: a second SCEP identity for the same UDID is held.
    let (again, _) = enroll_iphone(&server.base_url, &url).await;
    let mut again = SimDevice::with_identity(
        &server.base_url,
        phone.udid.clone(),
        again.key.clone(),
        again.cert.clone(),
        "iPhone15,2",
        "iOS",
    );
    again.serial = phone.serial.clone();
    assert_eq!(again.authenticate().await.status, StatusCode::FORBIDDEN);

    // A check-out revokes the identity: the phone's certificate is refused from then
    // on, and so is a certificate issued before the check-out. A fresh one from a new
    // pass through the enrollment re-enrolls the same record.
    assert_eq!(phone.check_out().await.status, StatusCode::OK);
    assert_eq!(
        phone
            .report_raw("Idle", None, Dictionary::new())
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(again.authenticate().await.status, StatusCode::FORBIDDEN);
    let (fresh, _) = enroll_iphone(&server.base_url, &url).await;
    let mut again = SimDevice::with_identity(
        &server.base_url,
        phone.udid.clone(),
        fresh.key.clone(),
        fresh.cert.clone(),
        "iPhone15,2",
        "iOS",
    );
    again.serial = phone.serial.clone();
    assert_eq!(again.authenticate().await.status, StatusCode::OK);
    assert_eq!(again.token_update().await.status, StatusCode::OK);
    let record = server.get(&format!("/devices/udid:{}", phone.udid)).await;
    assert_eq!(record["id"], id);
    assert_eq!(
        record["identity_fingerprint"],
        enrollment::identity::fingerprint(&again.cert)
    );
    let rebound = server.events("device.identity_rebound").await;
    assert_eq!(rebound.len(), 1);
    assert_eq!(rebound[0]["severity"], 3);
    assert_eq!(rebound[0]["data"]["approved_by_admin"], false);
    // A certificate a year from expiry is outside the default 60-day renewal window.
    let ca = server.scep_ca().await;
    assert!(matches!(
        mdm_tests::enroll::scep_request(
            &server.base_url,
            &ca,
            &mdm_tests::enroll::rsa_key(),
            "early",
            None,
            Some((&again.cert, &again.key)),
        )
        .await,
        mdm_tests::enroll::ScepResult::Refused(enrollment::scep::FailInfo::BadTime)
    ));
    // The old certificate is revoked in the CA's records and can never bind again.
    use sea_orm::{ConnectionTrait, Statement};
    let store = server.store().await;
    let db = store.connection();
    let row = db
        .query_one(Statement::from_string(
            db.get_database_backend(),
            format!(
                "SELECT COUNT(*) AS n FROM issued_certificates WHERE fingerprint = '{}' AND revoked_at IS NOT NULL",
                enrollment::identity::fingerprint(&phone.cert)
            ),
        ))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.try_get::<i64>("", "n").unwrap(), 1);
    let mut other = SimDevice::with_identity(
        &server.base_url,
        uuid::Uuid::new_v4().to_string().to_uppercase(),
        phone.key.clone(),
        phone.cert.clone(),
        "iPhone15,2",
        "iOS",
    );
    other.serial = "NEWSERIAL1".into();
    assert_eq!(other.authenticate().await.status, StatusCode::UNAUTHORIZED);
}

on_every_backend!(
    unsigned_and_badly_signed_requests_are_refused,
    unknown_udids_are_refused,
    another_devices_certificate_is_rejected_and_recorded,
    malformed_and_oversized_bodies,
    client_certificate_from_a_trusted_proxy,
    only_the_built_in_ca_is_trusted_by_default,
    authenticate_with_a_victims_udid_is_refused,
    one_certificate_cannot_enroll_a_second_udid,
    one_certificate_racing_for_several_udids_binds_once,
    a_decoy_udid_cannot_steer_admin_lookups,
    a_checked_out_device_re_enrolls_through_scep,
);
