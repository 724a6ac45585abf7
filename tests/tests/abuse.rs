//! Abuse limits against the real server: a device over its rate limit gets 429 with
//! Retry-After while other devices are served and nothing is written; one address
//! flooding the enrollment endpoints gets 429; guessing enrollment tokens and SCEP
//! challenges locks the guessing address out while the right token works from
//! another one; slow clients (trickled head, trickled body, silent connection) are
//! disconnected while normal requests keep being served.
//!
//! Other client addresses are other loopback addresses (127.0.0.2, 127.0.0.3): Linux
//! routes all of 127/8 to the loopback interface, so no setup is needed. Limits are
//! set small through the server's options so that the tests are quick; the only time
//! bounds are generous upper bounds on disconnects.

use enrollment::identity::testing::sign_detached;
use enrollment::scep::client::{build_request, parse_cert_rep, CertRepOutcome, RequestOptions};
use mdm_tests::enroll::{read_profile, rsa_key};
use mdm_tests::fixture::{Backend, ServerOptions, TestServer};
use mdm_tests::on_every_backend;
use mdm_tests::simulator::{SimDevice, SERVER_PATH};
use openssl::nid::Nid;
use openssl::x509::{X509Name, X509};
use plist::{Dictionary, Value};
use reqwest::StatusCode;
use serde_json::json;
use std::net::IpAddr;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn server_with(backend: Backend, args: &[&str]) -> TestServer {
    TestServer::start_with(
        backend,
        ServerOptions {
            extra_args: args.iter().map(|a| a.to_string()).collect(),
            ..Default::default()
        },
    )
    .await
}

/// An HTTP client whose connections come from `local` (a loopback address).
fn client_from(local: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(local.parse::<IpAddr>().unwrap())
        .build()
        .unwrap()
}

fn retry_after(resp: &reqwest::Response) -> u64 {
    resp.headers()
        .get("Retry-After")
        .unwrap_or_else(|| panic!("429 without Retry-After: {:?}", resp.headers()))
        .to_str()
        .unwrap()
        .parse()
        .expect("Retry-After in seconds")
}

/// A signed Idle report from `device`, sent by `client`.
async fn idle(
    client: &reqwest::Client,
    server: &TestServer,
    device: &SimDevice,
) -> reqwest::Response {
    let mut d = Dictionary::new();
    d.insert("UDID".into(), device.udid.clone().into());
    d.insert("Status".into(), "Idle".into());
    let mut body = Vec::new();
    Value::Dictionary(d).to_writer_xml(&mut body).unwrap();
    client
        .put(server.url(SERVER_PATH))
        .header(
            "Mdm-Signature",
            sign_detached(&device.key, &device.cert, &body),
        )
        .body(body)
        .send()
        .await
        .expect("device request")
}

async fn a_device_over_its_limit_gets_429_and_others_are_served(backend: Backend) {
    // 6 a minute: a burst of 6, then one more every 10 s. The slow refill keeps the
    // device throttled between the burst and the checks right after it.
    let server = server_with(backend, &["--device-rate-per-identity", "6"]).await;
    let noisy = SimDevice::iphone(&server.base_url, &server.ca);
    let quiet = SimDevice::iphone(&server.base_url, &server.ca);
    noisy.enroll().await;
    quiet.enroll().await;
    let client = reqwest::Client::new();
    // Queued before the burst: the burst is of check-ins, which take no command.
    let id = server.get(&format!("/devices/udid:{}", noisy.udid)).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let uuid = server.queue(&id, json!({ "type": "SecurityInfo" })).await;

    let mut sent = 0;
    loop {
        let reply = noisy.token_update().await;
        sent += 1;
        if reply.status == StatusCode::TOO_MANY_REQUESTS {
            break;
        }
        assert_eq!(
            reply.status,
            StatusCode::OK,
            "before the limit: {}",
            reply.text()
        );
        assert!(
            sent < 100,
            "no 429 after {sent} requests over a limit of 6 a minute"
        );
    }
    // Enroll took two of the six.
    assert!(sent >= 4, "throttled after only {sent} requests");

    // The command is neither handed out nor marked sent: the 429 wrote nothing.
    let throttled = idle(&client, &server, &noisy).await;
    assert_eq!(throttled.status(), StatusCode::TOO_MANY_REQUESTS);
    let wait = retry_after(&throttled);
    assert!((1..=60).contains(&wait), "Retry-After {wait}");
    let message: serde_json::Value = throttled.json().await.unwrap();
    assert!(
        message["error"]
            .as_str()
            .unwrap()
            .contains("too many requests"),
        "{message}"
    );
    assert_eq!(server.command(&uuid).await["status"], "pending");

    // Another device, same address, is served all along.
    let resp = idle(&client, &server, &quiet).await;
    assert_eq!(resp.status(), StatusCode::OK);

    // Once the wait is over the device gets its command.
    let mut tries = 0;
    let received = loop {
        tokio::time::sleep(Duration::from_secs(wait)).await;
        let resp = idle(&client, &server, &noisy).await;
        if resp.status() == StatusCode::OK {
            break resp.bytes().await.unwrap();
        }
        assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
        tries += 1;
        assert!(tries < 10, "still throttled after waiting {tries} times");
    };
    assert!(String::from_utf8_lossy(&received).contains(&uuid));
}

async fn a_burst_on_the_enrollment_endpoints_from_one_address_gets_429(backend: Backend) {
    // The guessing lockout is off here, so that what answers 429 is the rate limit.
    // 10 a minute: one more every 6 s, so the checks right after the burst still see it.
    let server = server_with(
        backend,
        &[
            "--enroll-rate-per-address",
            "10",
            "--enroll-max-failures",
            "0",
        ],
    )
    .await;
    let here = client_from("127.0.0.1");
    let mut sent = 0;
    let throttled = loop {
        // X-Forwarded-For is not trusted unless configured: rotating it buys nothing.
        let resp = here
            .get(server.url(&format!("/enroll/no-such-token-{sent}")))
            .header("X-Forwarded-For", format!("198.51.100.{}", sent % 250))
            .send()
            .await
            .unwrap();
        sent += 1;
        if resp.status() == StatusCode::TOO_MANY_REQUESTS {
            break resp;
        }
        assert_eq!(resp.status(), StatusCode::NOT_FOUND);
        assert!(
            sent < 200,
            "no 429 after {sent} requests over a limit of 10 a minute"
        );
    };
    assert!(sent > 8, "throttled after only {sent} requests");
    assert!((1..=60).contains(&retry_after(&throttled)));
    // The enrollment URL answers a person in plain text.
    assert_eq!(
        throttled
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("text/plain; charset=utf-8")
    );
    assert!(throttled.text().await.unwrap().contains("too many"));
    // SCEP shares the limit.
    let resp = here
        .get(server.url("/scep?operation=GetCACaps"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    retry_after(&resp);
    // The admin API is not an enrollment endpoint.
    assert_eq!(server.get("/devices").await["items"], json!([]));
    // Another address is served.
    let there = client_from("127.0.0.2");
    let resp = there
        .get(server.url("/scep?operation=GetCACaps"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
}

/// A SCEP PKCSReq for a fresh key with `challenge`, sent by `client`: the HTTP
/// response, and the CertRep outcome when it was a 200.
async fn scep_enroll(
    client: &reqwest::Client,
    server: &TestServer,
    ca: &X509,
    challenge: &str,
) -> (StatusCode, Option<CertRepOutcome>, Option<u64>) {
    let key = rsa_key();
    let mut name = X509Name::builder().unwrap();
    name.append_entry_by_nid(Nid::COMMONNAME, "guess").unwrap();
    let name = name.build();
    let mut opts = RequestOptions::new(&key, &name, ca);
    opts.challenge = Some(challenge);
    let request = build_request(&opts).unwrap();
    let resp = client
        .post(server.url("/scep?operation=PKIOperation"))
        .header("Content-Type", "application/x-pki-message")
        .body(request.der.clone())
        .send()
        .await
        .unwrap();
    let status = resp.status();
    if status != StatusCode::OK {
        let wait = Some(retry_after(&resp));
        return (status, None, wait);
    }
    let body = resp.bytes().await.unwrap();
    let outcome = parse_cert_rep(&body, &request, ca).expect("a CertRep");
    (status, Some(outcome), None)
}

async fn guessing_tokens_and_challenges_locks_the_guesser_out(backend: Backend) {
    let server = server_with(
        backend,
        &[
            "--enroll-max-failures",
            "3",
            "--enroll-failure-window-secs",
            "600",
        ],
    )
    .await;
    server.upload_push_certificate().await;
    let (code, enrollment) = server
        .api(
            "POST",
            "/enrollments",
            Some(json!({ "platform": "apple", "name": "Front office" })),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED, "{enrollment}");
    let token = enrollment["token"].as_str().unwrap().to_owned();
    // 256 bits of randomness in the token, looked up by its hash.
    use base64::Engine;
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(&token)
        .expect("the token is URL-safe base64");
    assert!(raw.len() * 8 >= 128, "token has {} bits", raw.len() * 8);

    // One address guesses: three wrong tokens are answered 404, then it is locked out,
    // even with the right token.
    let guesser = client_from("127.0.0.1");
    for i in 0..3 {
        let resp = guesser
            .get(server.url(&format!("/enroll/{token}{i}")))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::NOT_FOUND, "guess {i}");
    }
    let resp = guesser
        .get(server.url(&format!("/enroll/{token}")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    let wait = retry_after(&resp);
    assert!((1..=600).contains(&wait), "Retry-After {wait}");
    let resp = guesser
        .get(server.url("/scep?operation=GetCACert"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "SCEP is an enrollment endpoint too"
    );

    // The device with the right token, from another address, enrolls all the way.
    let device = client_from("127.0.0.2");
    let resp = device
        .get(server.url(&format!("/enroll/{token}")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let profile = read_profile(resp.bytes().await.unwrap().to_vec());
    // The one-time SCEP challenge: at least 128 bits too.
    let challenge_bits = hex::decode(&profile.challenge).map(|b| b.len() * 8);
    assert!(
        matches!(challenge_bits, Ok(bits) if bits >= 128),
        "challenge {:?}",
        profile.challenge
    );
    let ca = profile.root_ca.clone();

    // A third address guesses SCEP challenges: refused by SCEP itself three times,
    // then locked out by HTTP.
    let scep_guesser = client_from("127.0.0.3");
    for i in 0..3 {
        let wrong = format!("{i:040}");
        let (status, outcome, _) = scep_enroll(&scep_guesser, &server, &ca, &wrong).await;
        assert_eq!(status, StatusCode::OK);
        assert!(
            matches!(outcome, Some(CertRepOutcome::Failure(_))),
            "wrong challenge {i} must be refused"
        );
    }
    let (status, _, wait) = scep_enroll(&scep_guesser, &server, &ca, &profile.challenge).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert!(wait.is_some_and(|w| w >= 1));

    // The locked-out requests issued nothing and used nothing up: the device gets its
    // certificate with the challenge the guesser sent last.
    let (status, outcome, _) = scep_enroll(&device, &server, &ca, &profile.challenge).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        matches!(outcome, Some(CertRepOutcome::Success(_))),
        "the right challenge works"
    );
    assert_eq!(server.events("scep.certificate_issued").await.len(), 1);
}

async fn a_trusted_proxy_names_the_client_address(backend: Backend) {
    let server = server_with(
        backend,
        &["--enroll-rate-per-address", "5", "--trust-forwarded-for"],
    )
    .await;
    let client = reqwest::Client::new();
    let get = |forwarded: &'static str| {
        client
            .get(server.url("/scep?operation=GetCACaps"))
            // The client's own claim first, the proxy's addition last.
            .header("X-Forwarded-For", forwarded)
            .send()
    };
    let mut sent = 0;
    loop {
        let resp = get("10.9.9.9, 203.0.113.7").await.unwrap();
        sent += 1;
        if resp.status() == StatusCode::TOO_MANY_REQUESTS {
            break;
        }
        assert!(sent < 100, "no 429 for one forwarded address");
    }
    // Same TCP peer (the proxy), another client behind it.
    let resp = get("10.9.9.9, 203.0.113.8").await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
}

/// Opens a raw connection, sends `head` at once, then `trickle` one byte every 100 ms
/// until the server closes the connection. Returns what the server sent and how long
/// it kept the connection.
async fn trickle(server: &TestServer, head: &[u8], trickle: &[u8]) -> (String, Duration) {
    let addr = server.base_url.trim_start_matches("http://").to_owned();
    let stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    let start = Instant::now();
    writer.write_all(head).await.unwrap();
    let trickle = trickle.to_vec();
    let writing = tokio::spawn(async move {
        for byte in trickle.iter().cycle() {
            if writer.write_all(&[*byte]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    let mut received = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(60), async {
        let mut buf = [0u8; 4096];
        loop {
            match reader.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => received.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    writing.abort();
    assert!(
        read.is_ok(),
        "the server kept a slow connection open for 60 s"
    );
    (
        String::from_utf8_lossy(&received).into_owned(),
        start.elapsed(),
    )
}

async fn slow_clients_are_cut_off(backend: Backend) {
    let server = server_with(
        backend,
        &[
            "--header-timeout-secs",
            "1",
            "--body-timeout-secs",
            "2",
            "--keep-alive-secs",
            "2",
        ],
    )
    .await;
    let device = SimDevice::iphone(&server.base_url, &server.ca);
    device.enroll().await;
    let normal = reqwest::Client::new();

    // Three slow clients at once, while normal requests keep being served.
    let host = server.base_url.trim_start_matches("http://").to_owned();
    // The classic slowloris: a header line that never ends, one byte at a time.
    let slow_head = format!("PUT /mdm/checkin HTTP/1.1\r\nHost: {host}\r\nX-Padding: ");
    let trickled_head = trickle(&server, slow_head.as_bytes(), b"a");
    let body_head = format!(
        "PUT /mdm/checkin HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/x-apple-aspen-mdm-checkin\r\nContent-Length: 100000\r\n\r\n"
    );
    let trickled_body = trickle(&server, body_head.as_bytes(), b"<plist>");
    let silent = trickle(&server, b"", b"");
    // actix bounds only the first request's head; the server's connection watchdog
    // bounds the heads of later requests on a kept-alive connection.
    let second_head = format!(
        "GET /healthz HTTP/1.1\r\nHost: {host}\r\n\r\nGET /healthz HTTP/1.1\r\nHost: {host}\r\nX-Padding: "
    );
    let trickled_second_head = trickle(&server, second_head.as_bytes(), b"a");
    let served = async {
        let mut served = 0;
        for _ in 0..10 {
            let resp = normal.get(server.url("/healthz")).send().await.unwrap();
            assert_eq!(resp.status(), StatusCode::OK);
            assert!(device.idle().await.is_none());
            served += 1;
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        served
    };
    let (
        (head_reply, head_time),
        (body_reply, body_time),
        (silent_reply, silent_time),
        (second_reply, second_time),
        served,
    ) = tokio::join!(
        trickled_head,
        trickled_body,
        silent,
        trickled_second_head,
        served
    );
    assert_eq!(served, 10);
    // Generous bounds: the limits are 1 s for the head and 2 s for the body.
    assert!(
        head_time < Duration::from_secs(30),
        "trickled head held {head_time:?}"
    );
    assert!(
        head_reply.is_empty() || head_reply.starts_with("HTTP/1.1 408"),
        "{head_reply}"
    );
    assert!(
        body_time < Duration::from_secs(30),
        "trickled body held {body_time:?}"
    );
    assert!(body_reply.starts_with("HTTP/1.1 408"), "{body_reply}");
    assert!(
        silent_time < Duration::from_secs(30),
        "silent connection held {silent_time:?}"
    );
    assert!(
        silent_reply.is_empty() || silent_reply.starts_with("HTTP/1.1 408"),
        "{silent_reply}"
    );
    // The first request was answered, the trickled second one cut off (keep-alive 2 s
    // plus head 1 s).
    assert!(
        second_reply.starts_with("HTTP/1.1 200 OK"),
        "{second_reply}"
    );
    assert_eq!(
        second_reply.matches("HTTP/1.1").count(),
        1,
        "{second_reply}"
    );
    assert!(
        second_time < Duration::from_secs(30),
        "trickled second head held {second_time:?}"
    );

    // Nothing of the cut-off check-in was stored, and the server still serves devices.
    assert!(device.idle().await.is_none());
    assert_eq!(
        server.get("/devices").await["items"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

on_every_backend!(
    a_device_over_its_limit_gets_429_and_others_are_served,
    a_burst_on_the_enrollment_endpoints_from_one_address_gets_429,
    guessing_tokens_and_challenges_locks_the_guesser_out,
    a_trusted_proxy_names_the_client_address,
    slow_clients_are_cut_off,
);
