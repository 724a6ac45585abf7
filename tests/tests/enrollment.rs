//! Enrollment by QR code, end to end: enrollments, the signed Apple profile, SCEP
//! with the built-in CA, the device checking in with the certificate it got, and the
//! refusals (expired, revoked, used up, reused challenge, bad SCEP messages).

use enrollment::identity::testing::TestCa;
use enrollment::scep::FailInfo;
use mdm_tests::enroll::{enroll_iphone, fetch_profile, rsa_key, scep_request, ScepResult};
use mdm_tests::fixture::{Backend, ServerOptions, TestServer};
use mdm_tests::on_every_backend;
use reqwest::StatusCode;
use serde_json::{json, Value};

use mdm_tests::fixture::TEST_PUSH_TOPIC as TOPIC;

async fn server(backend: Backend) -> TestServer {
    let server = TestServer::start_with(
        backend,
        ServerOptions {
            with_device_ca: false,
            // Renewal is allowed from the first day, so the tests can renew at once.
            extra_args: vec![
                "--organization".into(),
                "Town Hall".into(),
                "--renewal-window-days".into(),
                "366".into(),
            ],
            ..Default::default()
        },
    )
    .await;
    // The enrollment profile carries the push topic, so the push certificate goes first.
    server.upload_push_certificate().await;
    server
}

async fn create(server: &TestServer, body: Value) -> Value {
    let (code, e) = server.api("POST", "/enrollments", Some(body)).await;
    assert_eq!(code, StatusCode::CREATED, "{e}");
    e
}

/// The server's public URL is a name; tests reach it on loopback.
fn local(server: &TestServer, url: &str) -> String {
    url.replace("https://mdm.test.invalid", &server.base_url)
}

async fn count_issued(server: &TestServer) -> i64 {
    use sea_orm::{ConnectionTrait, Statement};
    let store = server.store().await;
    let db = store.connection();
    let row = db
        .query_one(Statement::from_string(
            db.get_database_backend(),
            "SELECT COUNT(*) AS n FROM issued_certificates".to_owned(),
        ))
        .await
        .unwrap()
        .unwrap();
    row.try_get("", "n").unwrap()
}

async fn an_iphone_enrolls_through_the_qr_code(backend: Backend) {
    let server = server(backend).await;
    let e = create(
        &server,
        json!({ "platform": "apple", "name": "Front office", "user": "jan.kowalski", "group": "front-office", "max_uses": 5 }),
    )
    .await;
    assert_eq!(e["state"], "active");
    assert_eq!(e["qr_payload"], e["url"]);
    let url = e["url"].as_str().unwrap();
    assert!(url.starts_with("https://mdm.test.invalid/enroll/"), "{url}");

    let (device, profile) = enroll_iphone(&server.base_url, &local(&server, url)).await;
    assert_eq!(profile.topic.as_deref(), Some(TOPIC));
    assert_eq!(profile.scep_url, "https://mdm.test.invalid/scep");
    assert_eq!(profile.server_url, "https://mdm.test.invalid/mdm/connect");
    assert_eq!(profile.check_in_url, "https://mdm.test.invalid/mdm/checkin");
    assert_eq!(profile.identity_certificate_uuid, profile.scep_payload_uuid);
    // The certificate: from the built-in CA, a subject of its own, Apple's key usage.
    assert!(device
        .cert
        .verify(&profile.root_ca.public_key().unwrap())
        .unwrap());
    let cn = device
        .cert
        .subject_name()
        .entries_by_nid(openssl::nid::Nid::COMMONNAME)
        .next()
        .unwrap();
    assert!(cn.data().to_string().unwrap().starts_with("mdm-device-"));

    // The device checks in with it and is linked to the enrollment and its people.
    device.enroll().await;
    let record = server.get(&format!("/devices/udid:{}", device.udid)).await;
    assert_eq!(record["enrolled"], true);
    assert_eq!(record["enrollment_id"], e["id"]);
    assert_eq!(record["assigned_user"], "jan.kowalski");
    assert_eq!(record["assigned_group"], "front-office");
    assert_eq!(
        server
            .get(&format!("/enrollments/{}", e["id"].as_str().unwrap()))
            .await["uses"],
        1
    );
    assert_eq!(server.events("scep.certificate_issued").await.len(), 1);
    assert_eq!(server.events("device.enrollment_linked").await.len(), 1);
    assert!(device.idle().await.is_none());

    // Real tools agree: openssl cms verifies the profile against the signing chain.
    let dir = mdm_tests::fixture::TempDir::new("mdm-profile");
    std::fs::write(dir.0.join("profile.mobileconfig"), &profile.signed).unwrap();
    std::fs::write(dir.0.join("signer.pem"), profile.signer.to_pem().unwrap()).unwrap();
    match std::process::Command::new("openssl")
        .args(["cms", "-verify", "-inform", "DER", "-purpose", "any", "-in"])
        .arg(dir.0.join("profile.mobileconfig"))
        .arg("-CAfile")
        .arg(dir.0.join("signer.pem"))
        .output()
    {
        Ok(out) => {
            assert!(
                out.status.success(),
                "openssl cms -verify: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert_eq!(out.stdout, profile.xml);
        }
        Err(_) => eprintln!(
            "SKIPPED openssl cms -verify: openssl not installed (apt-get install openssl)"
        ),
    }
}

async fn apple_enrollment_needs_the_push_certificate(backend: Backend) {
    let server = TestServer::start_with(
        backend,
        ServerOptions {
            with_device_ca: false,
            ..Default::default()
        },
    )
    .await;
    let e = create(&server, json!({ "platform": "apple", "name": "Too early" })).await;
    let resp = reqwest::get(local(&server, e["url"].as_str().unwrap()))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(resp.text().await.unwrap().contains("push certificate"));
    server.upload_push_certificate().await;
    let profile = fetch_profile(&local(&server, e["url"].as_str().unwrap())).await;
    assert_eq!(profile.topic.as_deref(), Some(TOPIC));
}

async fn scep_refuses_bad_requests_and_issues_nothing(backend: Backend) {
    let server = server(backend).await;
    let e = create(&server, json!({ "platform": "apple", "name": "Kiosk" })).await;
    let profile = fetch_profile(&local(&server, e["url"].as_str().unwrap())).await;
    let ca = profile.root_ca.clone();
    let base = server.base_url.clone();

    // Wrong challenge, no challenge.
    for challenge in [Some("not-the-challenge"), None] {
        match scep_request(&base, &ca, &rsa_key(), "x", challenge, None).await {
            ScepResult::Refused(fail) => assert_eq!(fail, FailInfo::BadRequest),
            ScepResult::Issued(_) => panic!("issued without the right challenge"),
        }
    }
    // A weak key is refused even with the right challenge, which stays usable.
    let weak = openssl::pkey::PKey::from_rsa(openssl::rsa::Rsa::generate(1024).unwrap()).unwrap();
    match scep_request(&base, &ca, &weak, "x", Some(&profile.challenge), None).await {
        ScepResult::Refused(fail) => assert_eq!(fail, FailInfo::BadAlg),
        ScepResult::Issued(_) => panic!("issued for a 1024-bit key"),
    }
    assert_eq!(count_issued(&server).await, 0);
    // P-256 keys are accepted; the challenge then is spent.
    let p256 = enrollment::identity::testing::p256_key();
    assert!(matches!(
        scep_request(&base, &ca, &p256, "x", Some(&profile.challenge), None).await,
        ScepResult::Issued(_)
    ));
    match scep_request(&base, &ca, &rsa_key(), "x", Some(&profile.challenge), None).await {
        ScepResult::Refused(fail) => assert_eq!(fail, FailInfo::BadRequest),
        ScepResult::Issued(_) => panic!("a challenge was used twice"),
    }
    assert_eq!(count_issued(&server).await, 1);

    // A request encrypted to another CA cannot be read: a failure, nothing issued.
    let rogue_ca = enrollment::ca::CertificateAuthority::generate("Rogue", "Rogue", 1).unwrap();
    let fresh = fetch_profile(&local(&server, e["url"].as_str().unwrap())).await;
    let mut name = openssl::x509::X509Name::builder().unwrap();
    name.append_entry_by_nid(openssl::nid::Nid::COMMONNAME, "x")
        .unwrap();
    let name = name.build();
    let key = rsa_key();
    let mut opts = enrollment::scep::client::RequestOptions::new(&key, &name, rogue_ca.cert());
    opts.challenge = Some(&fresh.challenge);
    let request = enrollment::scep::client::build_request(&opts).unwrap();
    let resp = reqwest::Client::new()
        .post(format!("{base}/scep?operation=PKIOperation"))
        .body(request.der.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body = resp.bytes().await.unwrap();
    match enrollment::scep::client::parse_cert_rep(&body, &request, &ca).unwrap() {
        enrollment::scep::client::CertRepOutcome::Failure(_) => {}
        other => panic!("expected a failure CertRep, got {other:?}"),
    }
    // Garbage is not a SCEP message: 400 with a message, never a 500.
    for garbage in [b"garbage".to_vec(), vec![0x30, 0x82, 0x01]] {
        let resp = reqwest::Client::new()
            .post(format!("{base}/scep?operation=PKIOperation"))
            .body(garbage)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 400);
    }
    let resp = reqwest::get(format!("{base}/scep?operation=PKIOperation&message=%%%"))
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let caps = reqwest::get(format!("{base}/scep?operation=GetCACaps"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for cap in [
        "POSTPKIOperation",
        "SHA-256",
        "AES",
        "SCEPStandard",
        "Renewal",
    ] {
        assert!(
            caps.lines().any(|l| l == cap),
            "GetCACaps lacks {cap}: {caps}"
        );
    }
    assert_eq!(
        count_issued(&server).await,
        1,
        "no failure issued a certificate"
    );
    // Only refusals tied to an enrollment's challenge are events (the weak key, the
    // challenge used twice); the anonymous ones are counted in the metrics.
    assert_eq!(server.events("scep.refused").await.len(), 2);
    let metrics = server.get("/metrics").await;
    assert!(metrics["scep_refused"].as_u64().unwrap() >= 7, "{metrics}");
}

async fn expired_revoked_and_used_up_enrollments_are_refused(backend: Backend) {
    let server = server(backend).await;
    // Used up: one device, then no more.
    let once = create(
        &server,
        json!({ "platform": "apple", "name": "One phone", "max_uses": 1 }),
    )
    .await;
    let url = local(&server, once["url"].as_str().unwrap());
    let stale = fetch_profile(&url).await; // a second profile downloaded before the first enrolls
    let (first, _) = enroll_iphone(&server.base_url, &url).await;
    // Uses count devices, not certificates: the second profile's challenge still gets
    // a certificate while no device has enrolled ...
    let second_key = rsa_key();
    let second_cert = match scep_request(
        &server.base_url,
        &stale.root_ca,
        &second_key,
        "x",
        Some(&stale.challenge),
        None,
    )
    .await
    {
        ScepResult::Issued(cert) => cert,
        ScepResult::Refused(fail) => panic!("refused before any device enrolled: {fail:?}"),
    };
    first.enroll().await;
    // ... but once one device has enrolled, that certificate enrolls nothing.
    let second = mdm_tests::simulator::SimDevice::with_identity(
        &server.base_url,
        uuid::Uuid::new_v4().to_string().to_uppercase(),
        second_key,
        second_cert,
        "iPhone15,2",
        "iOS",
    );
    let reply = second.authenticate().await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN, "{}", reply.text());
    assert_eq!(server.get("/devices").await["total"], 1);
    let resp = reqwest::get(&url).await.unwrap();
    assert_eq!(resp.status(), StatusCode::GONE);
    assert!(resp.text().await.unwrap().contains("limit"));
    assert_eq!(
        server
            .get(&format!("/enrollments/{}", once["id"].as_str().unwrap()))
            .await["state"],
        "used_up"
    );

    // Revoked: the link and challenges handed out before both stop working.
    let revoked = create(&server, json!({ "platform": "apple", "name": "Lost QR" })).await;
    let url = local(&server, revoked["url"].as_str().unwrap());
    let before = fetch_profile(&url).await;
    let (enrolled, profile) = enroll_iphone(&server.base_url, &url).await;
    enrolled.enroll().await;
    let (issued_only, _) = enroll_iphone(&server.base_url, &url).await;
    let (code, body) = server
        .api(
            "DELETE",
            &format!("/enrollments/{}", revoked["id"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(body["state"], "revoked");
    let resp = reqwest::get(&url).await.unwrap();
    assert_eq!(resp.status(), StatusCode::GONE);
    assert!(resp.text().await.unwrap().contains("withdrawn"));
    assert!(matches!(
        scep_request(
            &server.base_url,
            &before.root_ca,
            &rsa_key(),
            "x",
            Some(&before.challenge),
            None
        )
        .await,
        ScepResult::Refused(_)
    ));
    // A certificate issued before the revocation enrolls nothing, and the devices
    // of a revoked enrollment renew nothing.
    let reply = issued_only.authenticate().await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN, "{}", reply.text());
    assert!(reply.text().contains("revoked"), "{}", reply.text());
    assert!(matches!(
        scep_request(
            &server.base_url,
            &profile.root_ca,
            &rsa_key(),
            "renewal",
            None,
            Some((&enrolled.cert, &enrolled.key)),
        )
        .await,
        ScepResult::Refused(_)
    ));

    // Expired.
    let soon = (chrono::Utc::now() + chrono::Duration::seconds(4)).to_rfc3339();
    let expiring = create(
        &server,
        json!({ "platform": "apple", "name": "Short", "expires_at": soon }),
    )
    .await;
    let url = local(&server, expiring["url"].as_str().unwrap());
    let late = fetch_profile(&url).await;
    tokio::time::sleep(std::time::Duration::from_millis(4500)).await;
    let resp = reqwest::get(&url).await.unwrap();
    assert_eq!(resp.status(), StatusCode::GONE);
    assert!(resp.text().await.unwrap().contains("expired"));
    // A challenge handed out before the enrollment expired expires with it.
    assert!(matches!(
        scep_request(
            &server.base_url,
            &late.root_ca,
            &rsa_key(),
            "x",
            Some(&late.challenge),
            None
        )
        .await,
        ScepResult::Refused(FailInfo::BadRequest)
    ));

    let resp = reqwest::get(format!("{}/enroll/not-a-real-token", server.base_url))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    assert!(server.events("enrollment.refused").await.len() >= 3);
    let active = server.get("/enrollments").await;
    assert!(active["items"].as_array().unwrap().is_empty(), "{active}");
    assert_eq!(
        server.get("/enrollments?all=true").await["items"]
            .as_array()
            .unwrap()
            .len(),
        3
    );

    // Bad requests to create one.
    for (body, needle) in [
        (json!({ "platform": "windows", "name": "x" }), "platform"),
        (json!({ "platform": "apple", "name": " " }), "name"),
        (
            json!({ "platform": "apple", "name": "x", "max_uses": 0 }),
            "max_uses",
        ),
        (
            json!({ "platform": "apple", "name": "x", "expires_at": "2001-01-01T00:00:00Z" }),
            "past",
        ),
    ] {
        let (code, answer) = server.api("POST", "/enrollments", Some(body.clone())).await;
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
    // Android without Android Enterprise connected: there is no agent to enroll
    // into (Android Device Policy needs Google's token), so the state is wrong, not
    // the request; the answer says what to run. Nothing is stored.
    for body in [
        json!({ "platform": "android", "name": "x" }),
        json!({ "platform": "android", "name": "x",
                "android": { "wifi": { "ssid": "Staff", "security_type": "WPA", "password": "long enough" } } }),
    ] {
        let (code, answer) = server.api("POST", "/enrollments", Some(body.clone())).await;
        assert_eq!(code, StatusCode::CONFLICT, "{body}: {answer}");
        assert!(
            answer["error"]
                .as_str()
                .unwrap()
                .contains("mdm android connect"),
            "{body}: {answer}"
        );
    }
    assert_eq!(
        server.get("/enrollments?all=true").await["items"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
}

async fn renewal_keeps_the_device_record(backend: Backend) {
    let server = server(backend).await;
    let e = create(&server, json!({ "platform": "apple", "name": "Renewals" })).await;
    let (device, profile) = enroll_iphone(
        &server.base_url,
        &local(&server, e["url"].as_str().unwrap()),
    )
    .await;
    device.enroll().await;
    let id = server.get(&format!("/devices/udid:{}", device.udid)).await["id"].clone();

    // The device renews its identity with a new key, signing with the current one.
    let new_key = rsa_key();
    let renewed = match scep_request(
        &server.base_url,
        &profile.root_ca,
        &new_key,
        "renewed",
        None,
        Some((&device.cert, &device.key)),
    )
    .await
    {
        ScepResult::Issued(cert) => cert,
        ScepResult::Refused(fail) => panic!("renewal refused: {fail:?}"),
    };
    let record = server.get(&format!("/devices/udid:{}", device.udid)).await;
    assert_eq!(record["id"], id, "still the same device");
    assert_eq!(
        record["identity_fingerprint"],
        enrollment::identity::fingerprint(&renewed)
    );
    assert_eq!(
        server.events("device.identity_renewed").await[0]["device_id"],
        id
    );

    let renewed_device = mdm_tests::simulator::SimDevice::with_identity(
        &server.base_url,
        device.udid.clone(),
        new_key,
        renewed,
        "iPhone15,2",
        "iOS",
    );
    assert!(
        renewed_device.idle().await.is_none(),
        "the renewed certificate speaks for the device"
    );
    let old = device
        .report_raw("Idle", None, plist::Dictionary::new())
        .await;
    assert_eq!(
        old.status,
        StatusCode::UNAUTHORIZED,
        "the old one no longer does"
    );

    // Renewal happens once: the certificate it replaced renews nothing more.
    assert!(matches!(
        scep_request(
            &server.base_url,
            &profile.root_ca,
            &rsa_key(),
            "again",
            None,
            Some((&device.cert, &device.key)),
        )
        .await,
        ScepResult::Refused(FailInfo::BadCertId)
    ));
    // A device that checked out renews nothing either.
    assert_eq!(renewed_device.check_out().await.status, StatusCode::OK);
    assert!(matches!(
        scep_request(
            &server.base_url,
            &profile.root_ca,
            &rsa_key(),
            "after-checkout",
            None,
            Some((&renewed_device.cert, &renewed_device.key)),
        )
        .await,
        ScepResult::Refused(FailInfo::BadCertId)
    ));
    assert_eq!(server.events("device.identity_renewed").await.len(), 1);

    // A renewal signed by a certificate of another CA is refused.
    let stranger = TestCa::new("Stranger");
    let (skey, scert) = stranger.issue("stranger");
    assert!(matches!(
        scep_request(
            &server.base_url,
            &profile.root_ca,
            &rsa_key(),
            "x",
            None,
            Some((&scert, &skey))
        )
        .await,
        ScepResult::Refused(FailInfo::BadCertId) | ScepResult::Refused(FailInfo::BadMessageCheck)
    ));
}

on_every_backend!(
    apple_enrollment_needs_the_push_certificate,
    an_iphone_enrolls_through_the_qr_code,
    scep_refuses_bad_requests_and_issues_nothing,
    expired_revoked_and_used_up_enrollments_are_refused,
    renewal_keeps_the_device_record,
);
