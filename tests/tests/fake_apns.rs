//! The fake APNs must behave like Apple's, or the server's APNs client tests prove
//! nothing: these check it with a bare HTTP/2 client that shares no code with the
//! server.

use enrollment::identity::testing::TestCa;
use mdm_tests::fake_apns::{
    bare_client_rate, make_push_certificate, push_topic, BareClient, FakeApns, Scripted,
};
use openssl::pkey::{PKey, Private};
use openssl::ssl::{SslConnector, SslMethod, SslVersion};
use openssl::x509::X509;
use std::pin::Pin;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_openssl::SslStream;

const TOKEN: &str = "5f1a6c0e9b2d4f7a8c3e1b0d9a7f6e5d4c3b2a190817263544536271809a0b1c";
const OTHER_TOKEN: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
const MAGIC: &str = "3B0A7F43-5D2E-4B8A-9C1D-2E3F4A5B6C7D";
const WAIT: Duration = Duration::from_secs(10);

struct Setup {
    ca: TestCa,
    key: PKey<Private>,
    cert: X509,
    topic: String,
    fake: FakeApns,
}

impl Setup {
    async fn new() -> Setup {
        let ca = TestCa::new("Push CA");
        let topic = format!("com.apple.mgmt.External.{}", uuid::Uuid::new_v4());
        let (key, cert) = make_push_certificate(&ca, &topic, 365);
        let fake = FakeApns::start(&ca.cert).await;
        Setup {
            ca,
            key,
            cert,
            topic,
            fake,
        }
    }

    async fn client(&self) -> BareClient {
        BareClient::connect(&self.fake, Some((&self.key, &self.cert)))
            .await
            .expect("a client with the push certificate connects")
    }

    fn valid_headers(&self) -> Vec<(&str, &str)> {
        vec![
            ("apns-topic", self.topic.as_str()),
            ("apns-push-type", "mdm"),
            ("apns-priority", "10"),
            ("apns-expiration", "0"),
        ]
    }
}

/// Method, path, headers, body, and the status and reason expected.
type Case<'a> = (
    &'a str,
    &'a str,
    Vec<(&'a str, &'a str)>,
    Vec<u8>,
    u16,
    &'a str,
);

fn body(magic: &str) -> Vec<u8> {
    serde_json::json!({ "mdm": magic }).to_string().into_bytes()
}

/// Refusals are counted by a task of the fake, possibly after the client gave up.
async fn wait_for_refusals(fake: &FakeApns, n: usize) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while fake.tls_refusals() < n {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the fake never counted a refused handshake"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A TLS 1.2 handshake alone, where a server's refusal of the client certificate
/// arrives during the handshake itself.
async fn tls12_handshake(
    fake: &FakeApns,
    identity: Option<(&PKey<Private>, &X509)>,
    alpn: &[u8],
) -> Result<(), openssl::ssl::Error> {
    let mut tls = SslConnector::builder(SslMethod::tls_client()).unwrap();
    for ca in X509::stack_from_pem(&fake.server_ca_pem()).unwrap() {
        tls.cert_store_mut().add_cert(ca).unwrap();
    }
    if let Some((key, cert)) = identity {
        tls.set_private_key(key).unwrap();
        tls.set_certificate(cert).unwrap();
    }
    tls.set_max_proto_version(Some(SslVersion::TLS1_2)).unwrap();
    tls.set_alpn_protos(alpn).unwrap();
    let ssl = tls
        .build()
        .configure()
        .unwrap()
        .into_ssl("localhost")
        .unwrap();
    let tcp = TcpStream::connect(fake.addr()).await.unwrap();
    let mut stream = SslStream::new(ssl, tcp).unwrap();
    Pin::new(&mut stream).connect().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_valid_push_is_answered_200_and_recorded() {
    let s = Setup::new().await;
    assert_eq!(push_topic(&s.cert).as_deref(), Some(s.topic.as_str()));
    assert!(s.fake.url().starts_with("https://127.0.0.1:"));
    let client = s.client().await;
    assert_eq!(client.max_concurrent_streams(), 1000);

    let id = "123e4567-e89b-12d3-a456-4266554400a0";
    let mut headers = s.valid_headers();
    headers.push(("apns-id", id));
    let reply = client
        .send(
            "POST",
            &format!("/3/device/{TOKEN}"),
            &headers,
            &body(MAGIC),
        )
        .await
        .unwrap();
    assert_eq!(reply.status, 200);
    assert_eq!(reply.apns_id.as_deref(), Some(id), "apns-id is echoed");
    assert_eq!(reply.reason, None);

    let reply = client.push(OTHER_TOKEN, &s.topic, "magic-2").await.unwrap();
    assert_eq!(reply.status, 200);
    let generated = reply.apns_id.expect("an apns-id is always answered");
    uuid::Uuid::parse_str(&generated).expect("a generated apns-id is a UUID");

    let got = s.fake.wait_for(2, WAIT).await;
    let first = &got[0];
    assert_eq!(first.token, TOKEN);
    assert_eq!(first.topic, s.topic);
    assert_eq!(first.push_type, "mdm");
    assert_eq!(first.priority.as_deref(), Some("10"));
    assert_eq!(first.expiration.as_deref(), Some("0"));
    assert_eq!(first.apns_id, id);
    assert_eq!(first.magic.as_deref(), Some(MAGIC));
    assert_eq!(first.client_topic, s.topic);
    assert_eq!(first.status, 200);
    assert_eq!(first.connection, 0);
    assert_eq!(got[1].apns_id, generated);
    assert_eq!(got[1].magic.as_deref(), Some("magic-2"));
    assert_eq!(s.fake.connections(), 1);
    assert_eq!(s.fake.tls_refusals(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_validation_failure_gets_apples_status_and_reason() {
    let s = Setup::new().await;
    // A scripted failure must not be spent on requests that fail validation.
    s.fake
        .script(vec![Scripted::Fail(500, "InternalServerError")]);
    let client = s.client().await;
    let path = format!("/3/device/{TOKEN}");
    let good = s.valid_headers();
    let with = |name: &'static str, value: &'static str| {
        let mut h: Vec<(&str, &str)> = good.iter().filter(|(n, _)| *n != name).copied().collect();
        h.push((name, value));
        h
    };
    let without = |name: &str| -> Vec<(&str, &str)> {
        good.iter().filter(|(n, _)| *n != name).copied().collect()
    };
    let magic = body(MAGIC);
    let short = format!("/3/device/{}", &TOKEN[..62]);
    let odd = format!("/3/device/{}0", TOKEN);
    let not_hex = format!("/3/device/{}", TOKEN.replace('a', "g"));
    let other_topic = with("apns-topic", "com.apple.mgmt.External.someone-else");
    #[rustfmt::skip]
    let cases: Vec<Case> = vec![
        ("GET", &path, good.clone(), vec![], 405, "MethodNotAllowed"),
        ("PUT", &path, good.clone(), magic.clone(), 405, "MethodNotAllowed"),
        ("POST", "/3/devices/abc", good.clone(), magic.clone(), 404, "BadPath"),
        ("POST", "/", good.clone(), magic.clone(), 404, "BadPath"),
        ("POST", "/3/device/", good.clone(), magic.clone(), 400, "MissingDeviceToken"),
        ("POST", &short, good.clone(), magic.clone(), 400, "BadDeviceToken"),
        ("POST", &odd, good.clone(), magic.clone(), 400, "BadDeviceToken"),
        ("POST", &not_hex, good.clone(), magic.clone(), 400, "BadDeviceToken"),
        ("POST", &path, without("apns-topic"), magic.clone(), 400, "MissingTopic"),
        ("POST", &path, other_topic, magic.clone(), 400, "TopicDisallowed"),
        ("POST", &path, without("apns-push-type"), magic.clone(), 400, "InvalidPushType"),
        ("POST", &path, with("apns-push-type", "alert"), magic.clone(), 400, "InvalidPushType"),
        ("POST", &path, with("apns-priority", "7"), magic.clone(), 400, "BadPriority"),
        ("POST", &path, with("apns-expiration", "-1"), magic.clone(), 400, "BadExpirationDate"),
        ("POST", &path, with("apns-expiration", "soon"), magic.clone(), 400, "BadExpirationDate"),
        ("POST", &path, with("apns-id", "not-a-uuid"), magic.clone(), 400, "BadMessageId"),
        ("POST", &path, good.clone(), vec![], 400, "PayloadEmpty"),
        ("POST", &path, good.clone(), b"{\"mdm\":".to_vec(), 400, "BadMessage"),
        ("POST", &path, good.clone(), b"{\"aps\":{}}".to_vec(), 400, "BadMessage"),
        ("POST", &path, good.clone(), b"{\"mdm\":42}".to_vec(), 400, "BadMessage"),
        ("POST", &path, good.clone(), b"{\"mdm\":\"m\",\"x\":1}".to_vec(), 400, "BadMessage"),
        ("POST", &path, good.clone(), vec![b' '; 5000], 413, "PayloadTooLarge"),
    ];
    let count = cases.len();
    for (method, path, headers, body, status, reason) in cases {
        let reply = client.send(method, path, &headers, &body).await.unwrap();
        assert_eq!(
            (reply.status, reply.reason.as_deref()),
            (status, Some(reason)),
            "{method} {path} {headers:?}"
        );
        assert!(reply.apns_id.is_some(), "errors carry an apns-id too");
    }
    let got = s.fake.wait_for(count, WAIT).await;
    assert!(got.iter().all(|p| p.status >= 400 && p.magic.is_none()));
    assert_eq!(got[9].topic, "com.apple.mgmt.External.someone-else");
    assert_eq!(got[9].client_topic, s.topic);

    let reply = client.push(TOKEN, &s.topic, MAGIC).await.unwrap();
    assert_eq!(
        (reply.status, reply.reason.as_deref()),
        (500, Some("InternalServerError"))
    );
    // Lower-case and upper-case hex are both tokens; the optional headers may be absent.
    let upper = format!("/3/device/{}", TOKEN.to_uppercase());
    let minimal = [("apns-topic", s.topic.as_str()), ("apns-push-type", "mdm")];
    let reply = client
        .send("POST", &upper, &minimal, &body(MAGIC))
        .await
        .unwrap();
    assert_eq!(reply.status, 200);
    assert_eq!(s.fake.connections(), 1, "errors do not cost the connection");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_from_another_ca_is_refused_at_the_handshake() {
    let s = Setup::new().await;
    let other = TestCa::new("Someone else's CA");
    let (key, cert) = make_push_certificate(&other, &s.topic, 365);
    assert!(BareClient::connect(&s.fake, Some((&key, &cert)))
        .await
        .is_err());
    wait_for_refusals(&s.fake, 1).await;
    let err = tls12_handshake(&s.fake, Some((&key, &cert)), b"\x02h2")
        .await
        .expect_err("TLS 1.2 handshake refused");
    assert!(
        format!("{err:?}").contains("unknown ca"),
        "refused with unknown_ca: {err:?}"
    );
    assert_eq!(s.fake.connections(), 0);
    assert_eq!(s.fake.received_count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_without_certificate_is_refused_at_the_handshake() {
    let s = Setup::new().await;
    assert!(BareClient::connect(&s.fake, None).await.is_err());
    wait_for_refusals(&s.fake, 1).await;
    tls12_handshake(&s.fake, None, b"\x02h2")
        .await
        .expect_err("TLS 1.2 handshake refused");
    assert_eq!(s.fake.connections(), 0);
    // The same CA's certificate does get in, so the refusals above were about the identity.
    tls12_handshake(&s.fake, Some((&s.key, &s.cert)), b"\x02h2")
        .await
        .expect("TLS 1.2 with the push certificate");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_push_certificate_or_no_h2_is_refused_at_the_handshake() {
    let s = Setup::new().await;
    let (key, cert) = make_push_certificate(&s.ca, &s.topic, -1);
    assert!(BareClient::connect(&s.fake, Some((&key, &cert)))
        .await
        .is_err());
    let err = tls12_handshake(&s.fake, Some((&key, &cert)), b"\x02h2")
        .await
        .expect_err("expired certificate refused");
    assert!(format!("{err:?}").contains("expired"), "{err:?}");
    tls12_handshake(&s.fake, Some((&s.key, &s.cert)), b"\x08http/1.1")
        .await
        .expect_err("a client without h2 in ALPN is refused");
    wait_for_refusals(&s.fake, 3).await;
    assert_eq!(s.fake.connections(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scripted_failures_come_in_order_then_ok() {
    let s = Setup::new().await;
    s.fake.script(vec![
        Scripted::Fail(503, "ServiceUnavailable"),
        Scripted::Fail(410, "Unregistered"),
        Scripted::Fail(429, "TooManyRequests"),
        Scripted::Ok,
        Scripted::Fail(400, "BadDeviceToken"),
    ]);
    let client = s.client().await;
    let mut answers = Vec::new();
    for _ in 0..6 {
        answers.push(client.push(TOKEN, &s.topic, MAGIC).await.unwrap());
    }
    let statuses: Vec<_> = answers
        .iter()
        .map(|r| (r.status, r.reason.as_deref()))
        .collect();
    assert_eq!(
        statuses,
        [
            (503, Some("ServiceUnavailable")),
            (410, Some("Unregistered")),
            (429, Some("TooManyRequests")),
            (200, None),
            (400, Some("BadDeviceToken")),
            (200, None),
        ]
    );
    let now_ms = chrono::Utc::now().timestamp_millis() as u64;
    let stamp = answers[1].timestamp.expect("410 carries a timestamp");
    assert!(now_ms - stamp < 60_000, "timestamp is in milliseconds");
    assert!(answers
        .iter()
        .all(|r| r.timestamp.is_none() || r.status == 410));
    let recorded: Vec<u16> = s.fake.received().iter().map(|p| p.status).collect();
    assert_eq!(recorded, [503, 410, 429, 200, 400, 200]);
    assert!(s.fake.received().iter().all(|p| p.magic.is_some()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_script_takes_precedence_and_its_last_entry_repeats() {
    let s = Setup::new().await;
    s.fake.script_token(
        &TOKEN.to_uppercase(),
        vec![Scripted::Fail(410, "Unregistered")],
    );
    s.fake.script_token(
        OTHER_TOKEN,
        vec![Scripted::Fail(500, "InternalServerError"), Scripted::Ok],
    );
    s.fake
        .script(vec![Scripted::Fail(503, "ServiceUnavailable")]);
    let client = s.client().await;
    for _ in 0..3 {
        let reply = client.push(TOKEN, &s.topic, MAGIC).await.unwrap();
        assert_eq!(
            (reply.status, reply.reason.as_deref()),
            (410, Some("Unregistered"))
        );
    }
    assert_eq!(
        client
            .push(OTHER_TOKEN, &s.topic, MAGIC)
            .await
            .unwrap()
            .status,
        500
    );
    assert_eq!(
        client
            .push(OTHER_TOKEN, &s.topic, MAGIC)
            .await
            .unwrap()
            .status,
        200
    );
    assert_eq!(
        client
            .push(OTHER_TOKEN, &s.topic, MAGIC)
            .await
            .unwrap()
            .status,
        200
    );
    let third = "ab".repeat(32);
    assert_eq!(
        client.push(&third, &s.topic, MAGIC).await.unwrap().status,
        503,
        "the global script was left for other tokens"
    );
    s.fake.script_token(TOKEN, vec![]);
    assert_eq!(
        client.push(TOKEN, &s.topic, MAGIC).await.unwrap().status,
        200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drop_connection_closes_without_an_answer() {
    let s = Setup::new().await;
    s.fake.script(vec![Scripted::DropConnection]);
    let client = s.client().await;
    let outcome = client.push(TOKEN, &s.topic, MAGIC).await;
    let err = outcome.expect_err("no answer expected");
    let dropped = err.downcast_ref::<h2::Error>().expect("an HTTP/2 error");
    // The socket went away: no RST_STREAM or GOAWAY got out before it.
    assert!(
        dropped.is_io() && !dropped.is_reset() && !dropped.is_go_away(),
        "{dropped:?}"
    );
    assert!(client.closed(WAIT).await, "the connection is gone");
    assert!(client.push(TOKEN, &s.topic, MAGIC).await.is_err());

    let got = s.fake.wait_for(1, WAIT).await;
    assert_eq!(got[0].status, 0, "recorded as unanswered");
    assert_eq!(got[0].magic.as_deref(), Some(MAGIC));

    let again = s.client().await;
    assert_eq!(
        again.push(TOKEN, &s.topic, MAGIC).await.unwrap().status,
        200
    );
    assert_eq!(s.fake.connections(), 2);
    assert_eq!(s.fake.received()[1].connection, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn goaway_answers_then_ends_the_connection() {
    let s = Setup::new().await;
    s.fake.script(vec![Scripted::GoAway]);
    let client = s.client().await;
    let reply = client.push(TOKEN, &s.topic, MAGIC).await.unwrap();
    assert_eq!(reply.status, 200, "the request is answered before GOAWAY");
    assert!(client.closed(WAIT).await, "the fake ends the connection");
    let refused = client
        .push(TOKEN, &s.topic, MAGIC)
        .await
        .expect_err("no new stream on a connection that went away");
    let goaway = refused
        .downcast_ref::<h2::Error>()
        .expect("an HTTP/2 error");
    assert!(goaway.is_go_away() && goaway.is_remote(), "{goaway:?}");
    assert_eq!(goaway.reason(), Some(h2::Reason::NO_ERROR));
    assert_eq!(s.fake.connections(), 1);

    let again = s.client().await;
    assert_eq!(
        again.push(TOKEN, &s.topic, MAGIC).await.unwrap().status,
        200
    );
    assert_eq!(s.fake.connections(), 2);
    let connections: Vec<usize> = s.fake.received().iter().map(|p| p.connection).collect();
    assert_eq!(connections, [0, 1]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bare_client_pushes_many_concurrent_streams() {
    let s = Setup::new().await;
    let rate = bare_client_rate(&s.fake, &s.key, &s.cert, &s.topic, 2000, 2, 200).await;
    assert!(rate > 0.0 && rate.is_finite(), "rate {rate}");
    let got = s.fake.wait_for(2000, WAIT).await;
    assert_eq!(got.len(), 2000);
    assert!(got.iter().all(|p| p.status == 200 && p.magic.is_some()));
    assert!(got.iter().any(|p| p.connection == 0));
    assert!(got.iter().any(|p| p.connection == 1));
    assert_eq!(s.fake.connections(), 2);
    let mut tokens: Vec<&str> = got.iter().map(|p| p.token.as_str()).collect();
    tokens.sort_unstable();
    tokens.dedup();
    assert_eq!(tokens.len(), 2000, "every push went to its own token");
    eprintln!("bare h2 client against the fake: {rate:.0} pushes/s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[should_panic(expected = "waited")]
async fn wait_for_panics_when_too_few_arrive() {
    let s = Setup::new().await;
    s.fake.wait_for(1, Duration::from_millis(50)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_fake_takes_no_connections() {
    let s = Setup::new().await;
    let client = s.client().await;
    s.fake.stop();
    assert!(client.closed(WAIT).await, "open connections are closed");
    assert!(BareClient::connect(&s.fake, Some((&s.key, &s.cert)))
        .await
        .is_err());
}
