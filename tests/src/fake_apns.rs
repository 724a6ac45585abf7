//! A local stand-in for Apple's Push Notification service provider API, as the
//! MDM server talks to it: HTTP/2 over TLS on loopback, the provider proven by a
//! TLS client certificate (the MDM push certificate), `POST /3/device/<token>`
//! with `{"mdm":"<PushMagic>"}`.
//!
//! The fake validates requests the way Apple documents it, so a client bug shows
//! up as the same status and reason the real service would give, and it can be
//! scripted to fail, drop the connection or send GOAWAY so that the server's
//! retry and reconnect paths can be exercised without Apple.
//!
//! Where a request is refused:
//! - TLS handshake: no client certificate, a certificate that does not chain to
//!   the CA given to [`FakeApns::start`] (or is expired, or not fit for client
//!   authentication), and a client that offers ALPN without `h2`. Apple requires
//!   the certificate at the handshake, so no HTTP answer exists for these. With
//!   TLS 1.3 the client only learns of it on its first read, because its side of
//!   the handshake is already finished when the server checks the certificate.
//! - HTTP: everything else, as a status with `{"reason": ...}`.
//!
//! One deliberate strictness beyond Apple: `apns-topic` is required
//! (`400 MissingTopic`) even though Apple defaults it from a single-topic
//! certificate, because a client that omits it would break as soon as a
//! multi-topic certificate is used.

use bytes::Bytes;
use enrollment::identity::testing::{p256_key, TestCa};
use h2::server::SendResponse;
use h2::RecvStream;
use http::{Method, Request, Response, StatusCode};
use openssl::asn1::Asn1Time;
use openssl::bn::{BigNum, MsbOption};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use openssl::ssl::{
    select_next_proto, AlpnError, Ssl, SslAcceptor, SslConnector, SslContext, SslMethod,
    SslVerifyMode,
};
use openssl::x509::extension::{
    BasicConstraints, ExtendedKeyUsage, KeyUsage, SubjectAlternativeName,
};
use openssl::x509::{X509Builder, X509NameBuilder, X509Ref, X509};
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch, Notify};
use tokio::task::{AbortHandle, JoinSet};
use tokio_openssl::SslStream;

/// Apple answers with roughly this many concurrent streams per connection.
const MAX_CONCURRENT_STREAMS: u32 = 1000;
/// Apple's payload limit for remote notifications (VoIP aside).
const MAX_PAYLOAD: usize = 4096;
/// Apple reserves room for tokens to grow up to 100 bytes.
const MAX_TOKEN_HEX: usize = 200;
const MIN_TOKEN_HEX: usize = 64;
const DEVICE_PATH: &str = "/3/device/";
/// A stalled or port-scanning client must not keep a task alive forever.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// One request as the fake saw it, whatever it answered.
#[derive(Debug, Clone)]
pub struct ReceivedPush {
    /// Hex from the path, as sent (not case-folded).
    pub token: String,
    /// `apns-topic`, empty when absent.
    pub topic: String,
    /// `apns-push-type`, empty when absent.
    pub push_type: String,
    pub priority: Option<String>,
    pub expiration: Option<String>,
    /// The id answered: the request's `apns-id` when it was a valid UUID, else a fresh one.
    pub apns_id: String,
    /// The `mdm` value of a valid body; `None` when the body was refused or not checked.
    pub magic: Option<String>,
    /// UID from the client certificate's subject.
    pub client_topic: String,
    /// What the fake answered; 0 when it answered nothing ([`Scripted::DropConnection`]).
    pub status: u16,
    /// Which TLS connection (0, 1, 2... in order of accepted handshakes) it came on.
    pub connection: usize,
}

#[derive(Debug, Clone)]
pub enum Scripted {
    Ok,
    /// Answer with this status and reason (e.g. 410 "Unregistered", 429 "TooManyRequests",
    /// 500 "InternalServerError", 503 "ServiceUnavailable", 400 "BadDeviceToken").
    /// A 410 also carries `timestamp` (ms), as Apple's does.
    Fail(u16, &'static str),
    /// Close the TCP connection without answering this request.
    DropConnection,
    /// Send GOAWAY (NO_ERROR) after answering this request with 200; the connection then
    /// ends and the client must reconnect.
    GoAway,
}

pub struct FakeApns {
    shared: Arc<Shared>,
    addr: SocketAddr,
    server_ca_pem: Vec<u8>,
}

struct Shared {
    received: Mutex<Vec<ReceivedPush>>,
    arrivals: Notify,
    script: Mutex<VecDeque<Scripted>>,
    token_scripts: Mutex<HashMap<String, VecDeque<Scripted>>>,
    connections: AtomicUsize,
    tls_refusals: AtomicUsize,
    stopped: AtomicBool,
    tasks: Mutex<Vec<AbortHandle>>,
}

/// A poisoned lock only means another test thread panicked; the data is still usable
/// and a second panic would hide the first one's message.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    fn track(&self, task: AbortHandle) {
        let mut tasks = lock(&self.tasks);
        if self.stopped.load(Ordering::SeqCst) {
            task.abort();
            return;
        }
        tasks.retain(|t| !t.is_finished());
        tasks.push(task);
    }

    fn record(&self, push: ReceivedPush) {
        lock(&self.received).push(push);
        self.arrivals.notify_waiters();
    }

    fn next_action(&self, token: &str) -> Scripted {
        if let Some(queue) = lock(&self.token_scripts).get_mut(&token.to_ascii_lowercase()) {
            if queue.len() > 1 {
                return queue.pop_front().expect("len > 1");
            }
            if let Some(last) = queue.front() {
                return last.clone();
            }
        }
        lock(&self.script).pop_front().unwrap_or(Scripted::Ok)
    }
}

impl FakeApns {
    /// Starts on 127.0.0.1:0. `client_ca` is the CA the client (push) certificate must
    /// chain to. Must be called inside a Tokio runtime; the server lives on it.
    pub async fn start(client_ca: &X509) -> FakeApns {
        let server_ca = TestCa::new("Fake APNs Root CA");
        let acceptor = server_tls(client_ca, &server_ca).expect("fake APNs TLS setup");
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind fake APNs on loopback");
        let addr = listener.local_addr().expect("local address");
        let shared = Arc::new(Shared {
            received: Mutex::new(Vec::new()),
            arrivals: Notify::new(),
            script: Mutex::new(VecDeque::new()),
            token_scripts: Mutex::new(HashMap::new()),
            connections: AtomicUsize::new(0),
            tls_refusals: AtomicUsize::new(0),
            stopped: AtomicBool::new(false),
            tasks: Mutex::new(Vec::new()),
        });
        let accept = tokio::spawn(accept_loop(
            listener,
            acceptor.into_context(),
            shared.clone(),
        ));
        shared.track(accept.abort_handle());
        FakeApns {
            shared,
            addr,
            server_ca_pem: server_ca.cert.to_pem().expect("PEM"),
        }
    }

    /// Base URL, e.g. "https://127.0.0.1:41234".
    pub fn url(&self) -> String {
        format!("https://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// PEM of the CA that issued the fake's TLS server certificate; trust it to reach the
    /// fake. The server certificate's SAN holds 127.0.0.1, ::1, localhost and Apple's
    /// two APNs host names (so a client can keep the real host name and only redirect
    /// the address).
    pub fn server_ca_pem(&self) -> Vec<u8> {
        self.server_ca_pem.clone()
    }

    /// Sets (replaces) the responses for the next requests that pass validation, in
    /// order; once they run out the answer is Ok. Refused requests do not consume it.
    pub fn script(&self, responses: Vec<Scripted>) {
        *lock(&self.shared.script) = responses.into();
    }

    /// Script for one device token (case-insensitive), ahead of the global script, which
    /// it leaves untouched. Entries are used in order and the LAST ONE REPEATS for every
    /// later push to that token, so `vec![Scripted::Fail(410, "Unregistered")]` means
    /// "this token is always unregistered" and `vec![Fail(..), Ok]` means "fails once".
    /// An empty vector removes the token's script.
    pub fn script_token(&self, token_hex: &str, responses: Vec<Scripted>) {
        let mut scripts = lock(&self.shared.token_scripts);
        let token = token_hex.to_ascii_lowercase();
        if responses.is_empty() {
            scripts.remove(&token);
        } else {
            scripts.insert(token, responses.into());
        }
    }

    pub fn received(&self) -> Vec<ReceivedPush> {
        lock(&self.shared.received).clone()
    }

    /// Cheaper than `received().len()` when 100,000 pushes are recorded.
    pub fn received_count(&self) -> usize {
        lock(&self.shared.received).len()
    }

    /// The requests received after the first `seen`, waiting (up to `timeout`) for at
    /// least one: a reader that follows 100,000 pushes as they come copies each once.
    pub async fn received_after(&self, seen: usize, timeout: Duration) -> Vec<ReceivedPush> {
        self.when_received(timeout, |received| {
            (received.len() > seen).then(|| received[seen..].to_vec())
        })
        .await
        .unwrap_or_default()
    }

    /// What `look` finds in the requests received so far, as soon as it finds
    /// something, or None after `timeout`.
    async fn when_received<T>(
        &self,
        timeout: Duration,
        look: impl Fn(&[ReceivedPush]) -> Option<T>,
    ) -> Option<T> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let arrival = self.shared.arrivals.notified();
            tokio::pin!(arrival);
            // Registered before looking, so a push recorded in between still wakes us.
            arrival.as_mut().enable();
            if let Some(found) = look(&lock(&self.shared.received)) {
                return Some(found);
            }
            if tokio::time::timeout_at(deadline, arrival).await.is_err() {
                return None;
            }
        }
    }

    /// Waits until at least n requests were received (any status), or panics after `timeout`.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<ReceivedPush> {
        self.when_received(timeout, |received| {
            (received.len() >= n).then(|| received.to_vec())
        })
        .await
        .unwrap_or_else(|| {
            panic!(
                "fake APNs: waited {timeout:?} for {n} pushes but received {}",
                self.received_count()
            )
        })
    }

    /// Number of TLS connections accepted so far (handshake completed).
    pub fn connections(&self) -> usize {
        self.shared.connections.load(Ordering::SeqCst)
    }

    /// Number of TLS handshakes the fake refused or that failed (no or untrusted client
    /// certificate, no `h2` in ALPN, or a client that gave up).
    pub fn tls_refusals(&self) -> usize {
        self.shared.tls_refusals.load(Ordering::SeqCst)
    }

    /// Stops listening and closes every connection (also on Drop).
    pub fn stop(&self) {
        let mut tasks = lock(&self.shared.tasks);
        self.shared.stopped.store(true, Ordering::SeqCst);
        for task in tasks.drain(..) {
            task.abort();
        }
    }
}

impl Drop for FakeApns {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The push topic a certificate grants: the UID attribute of its subject.
pub fn push_topic(cert: &X509Ref) -> Option<String> {
    cert.subject_name()
        .entries_by_nid(Nid::USERID)
        .next()
        .and_then(|e| e.data().to_string().ok())
}

fn random_serial(b: &mut X509Builder) -> Result<(), openssl::error::ErrorStack> {
    let mut serial = BigNum::new()?;
    serial.rand(127, MsbOption::MAYBE_ZERO, false)?;
    let serial = serial.to_asn1_integer()?;
    b.set_serial_number(&serial)
}

fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as i64
}

fn server_tls(client_ca: &X509, server_ca: &TestCa) -> Result<SslAcceptor, anyhow::Error> {
    let key = p256_key();
    let mut name = X509NameBuilder::new()?;
    name.append_entry_by_nid(Nid::COMMONNAME, "localhost")?;
    name.append_entry_by_nid(Nid::ORGANIZATIONNAME, "Fake APNs")?;
    let name = name.build();
    let mut b = X509Builder::new()?;
    b.set_version(2)?;
    random_serial(&mut b)?;
    b.set_subject_name(&name)?;
    b.set_issuer_name(server_ca.cert.subject_name())?;
    b.set_pubkey(&key)?;
    let now = now_unix();
    let not_before = Asn1Time::from_unix(now - 3600)?;
    let not_after = Asn1Time::from_unix(now + 30 * 86400)?;
    b.set_not_before(&not_before)?;
    b.set_not_after(&not_after)?;
    b.append_extension(BasicConstraints::new().build()?)?;
    b.append_extension(KeyUsage::new().critical().digital_signature().build()?)?;
    b.append_extension(ExtendedKeyUsage::new().server_auth().build()?)?;
    let san = SubjectAlternativeName::new()
        .dns("localhost")
        .dns("api.push.apple.com")
        .dns("api.sandbox.push.apple.com")
        .ip("127.0.0.1")
        .ip("::1")
        .build(&b.x509v3_context(Some(&server_ca.cert), None))?;
    b.append_extension(san)?;
    b.sign(&server_ca.key, MessageDigest::sha256())?;
    let leaf = b.build();

    let mut tls = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls_server())?;
    tls.set_private_key(&key)?;
    tls.set_certificate(&leaf)?;
    tls.add_extra_chain_cert(server_ca.cert.clone())?;
    tls.check_private_key()?;
    tls.cert_store_mut().add_cert(client_ca.clone())?;
    tls.add_client_ca(client_ca)?;
    tls.set_verify(SslVerifyMode::PEER | SslVerifyMode::FAIL_IF_NO_PEER_CERT);
    // OpenSSL refuses to resume sessions with client verification on unless set.
    tls.set_session_id_context(b"fake-apns")?;
    tls.set_alpn_select_callback(|_, offered| {
        select_next_proto(b"\x02h2", offered).ok_or(AlpnError::ALERT_FATAL)
    });
    Ok(tls.build())
}

async fn accept_loop(listener: TcpListener, tls: SslContext, shared: Arc<Shared>) {
    loop {
        let tcp = match listener.accept().await {
            Ok((tcp, _)) => tcp,
            // Out of file descriptors under a benchmark: back off instead of spinning.
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let task = tokio::spawn(serve_connection(tcp, tls.clone(), shared.clone()));
        shared.track(task.abort_handle());
    }
}

/// What a request handler asks of its connection.
enum Control {
    /// Close the socket; the handle is carried along so that it is dropped only after
    /// the socket, since dropping it first would queue a RST_STREAM that might get out.
    Drop(SendResponse<Bytes>),
    GoAway,
}

struct ConnectionInfo {
    index: usize,
    client_topic: Option<String>,
    control: mpsc::UnboundedSender<Control>,
}

async fn serve_connection(tcp: TcpStream, tls: SslContext, shared: Arc<Shared>) {
    let Ok(ssl) = Ssl::new(&tls) else { return };
    let Ok(mut stream) = SslStream::new(ssl, tcp) else {
        return;
    };
    let handshake = tokio::time::timeout(HANDSHAKE_TIMEOUT, Pin::new(&mut stream).accept()).await;
    if !matches!(handshake, Ok(Ok(()))) {
        shared.tls_refusals.fetch_add(1, Ordering::SeqCst);
        return;
    }
    let client_topic = stream
        .ssl()
        .peer_certificate()
        .map(|cert| push_topic(&cert).unwrap_or_default());
    let index = shared.connections.fetch_add(1, Ordering::SeqCst);
    let mut h2 = match h2::server::Builder::new()
        .max_concurrent_streams(MAX_CONCURRENT_STREAMS)
        .handshake::<_, Bytes>(stream)
        .await
    {
        Ok(conn) => conn,
        Err(_) => return,
    };
    let (control, mut orders) = mpsc::unbounded_channel();
    let info = Arc::new(ConnectionInfo {
        index,
        client_topic,
        control,
    });
    loop {
        tokio::select! {
            // Orders first: a DropConnection must win over flushing anything else.
            biased;
            order = orders.recv() => match order {
                Some(Control::Drop(unanswered)) => {
                    drop(h2);
                    drop(unanswered);
                    return;
                }
                Some(Control::GoAway) => h2.graceful_shutdown(),
                None => return,
            },
            next = h2.accept() => match next {
                Some(Ok((request, respond))) => {
                    tokio::spawn(handle(shared.clone(), info.clone(), request, respond));
                }
                Some(Err(_)) | None => return,
            },
        }
    }
}

/// The status and reason a request is refused with.
type Refusal = (u16, &'static str);

enum Body {
    Complete(Vec<u8>),
    TooLarge,
}

async fn read_body(body: &mut RecvStream) -> Result<Body, h2::Error> {
    let mut bytes = Vec::new();
    while let Some(chunk) = body.data().await {
        let chunk = chunk?;
        let _ = body.flow_control().release_capacity(chunk.len());
        bytes.extend_from_slice(&chunk);
        if bytes.len() > MAX_PAYLOAD {
            return Ok(Body::TooLarge);
        }
    }
    Ok(Body::Complete(bytes))
}

fn is_canonical_uuid(s: &str) -> bool {
    s.len() == 36
        && s.char_indices().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_hexdigit(),
        })
}

struct Checked<'a> {
    method: &'a Method,
    path: &'a str,
    topic: Option<&'a str>,
    push_type: Option<&'a str>,
    priority: Option<&'a str>,
    expiration: Option<&'a str>,
    apns_id: Option<&'a str>,
    collapse_id: Option<&'a str>,
    client_topic: Option<&'a str>,
}

/// Apple's checks, in an order that reports the most basic fault first.
fn validate(req: &Checked<'_>, body: &Body) -> Result<String, Refusal> {
    if req.method != Method::POST {
        return Err((405, "MethodNotAllowed"));
    }
    let token = req.path.strip_prefix(DEVICE_PATH).ok_or((404, "BadPath"))?;
    if token.is_empty() {
        return Err((400, "MissingDeviceToken"));
    }
    if token.len() % 2 != 0
        || !(MIN_TOKEN_HEX..=MAX_TOKEN_HEX).contains(&token.len())
        || !token.bytes().all(|b| b.is_ascii_hexdigit())
    {
        return Err((400, "BadDeviceToken"));
    }
    // Only reachable if the TLS layer were to let a certificate-less client in.
    let client_topic = req.client_topic.ok_or((403, "MissingProviderToken"))?;
    if req.apns_id.is_some_and(|id| !is_canonical_uuid(id)) {
        return Err((400, "BadMessageId"));
    }
    match req.topic {
        None | Some("") => return Err((400, "MissingTopic")),
        Some(topic) if topic != client_topic => return Err((400, "TopicDisallowed")),
        Some(_) => {}
    }
    if req.push_type != Some("mdm") {
        return Err((400, "InvalidPushType"));
    }
    if req.priority.is_some_and(|p| !matches!(p, "10" | "5" | "1")) {
        return Err((400, "BadPriority"));
    }
    if req
        .expiration
        .is_some_and(|e| e.is_empty() || !e.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err((400, "BadExpirationDate"));
    }
    if req.collapse_id.is_some_and(|c| c.len() > 64) {
        return Err((400, "BadCollapseId"));
    }
    let bytes = match body {
        Body::TooLarge => return Err((413, "PayloadTooLarge")),
        Body::Complete(bytes) if bytes.iter().all(u8::is_ascii_whitespace) => {
            return Err((400, "PayloadEmpty"))
        }
        Body::Complete(bytes) => bytes,
    };
    let payload: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|_| (400, "BadMessage"))?;
    match payload.as_object() {
        Some(fields) if fields.len() == 1 => match fields.get("mdm") {
            Some(serde_json::Value::String(magic)) => Ok(magic.clone()),
            _ => Err((400, "BadMessage")),
        },
        _ => Err((400, "BadMessage")),
    }
}

async fn handle(
    shared: Arc<Shared>,
    conn: Arc<ConnectionInfo>,
    request: Request<RecvStream>,
    mut respond: SendResponse<Bytes>,
) {
    let (parts, mut body) = request.into_parts();
    // The client gave up on the stream: there is nobody to answer or to count.
    let Ok(body) = read_body(&mut body).await else {
        return;
    };
    // A value that is not visible ASCII can never be valid, so it becomes one that fails.
    let header = |name: &str| {
        parts
            .headers
            .get(name)
            .map(|v| v.to_str().unwrap_or("\u{fffd}"))
    };
    let checked = Checked {
        method: &parts.method,
        path: parts.uri.path(),
        topic: header("apns-topic"),
        push_type: header("apns-push-type"),
        priority: header("apns-priority"),
        expiration: header("apns-expiration"),
        apns_id: header("apns-id"),
        collapse_id: header("apns-collapse-id"),
        client_topic: conn.client_topic.as_deref(),
    };
    let verdict = validate(&checked, &body);
    let apns_id = match checked.apns_id {
        Some(id) if is_canonical_uuid(id) => id.to_owned(),
        _ => uuid::Uuid::new_v4().to_string(),
    };
    let token = checked
        .path
        .strip_prefix(DEVICE_PATH)
        .unwrap_or_default()
        .to_owned();
    let action = match &verdict {
        Ok(_) => shared.next_action(&token),
        &Err((status, reason)) => Scripted::Fail(status, reason),
    };
    let status = match action {
        Scripted::Ok | Scripted::GoAway => 200,
        Scripted::Fail(status, _) => status,
        Scripted::DropConnection => 0,
    };
    shared.record(ReceivedPush {
        token,
        topic: checked.topic.unwrap_or_default().to_owned(),
        push_type: checked.push_type.unwrap_or_default().to_owned(),
        priority: checked.priority.map(str::to_owned),
        expiration: checked.expiration.map(str::to_owned),
        apns_id: apns_id.clone(),
        magic: verdict.ok(),
        client_topic: conn.client_topic.clone().unwrap_or_default(),
        status,
        connection: conn.index,
    });
    let response = |status: StatusCode| {
        Response::builder()
            .status(status)
            .header("apns-id", &apns_id)
            .body(())
            .expect("static response parts")
    };
    // Send errors only mean the client went away; nothing to report to anyone.
    match action {
        Scripted::Ok => {
            let _ = respond.send_response(response(StatusCode::OK), true);
        }
        Scripted::GoAway => {
            let _ = respond.send_response(response(StatusCode::OK), true);
            let _ = conn.control.send(Control::GoAway);
        }
        Scripted::DropConnection => {
            let _ = conn.control.send(Control::Drop(respond));
        }
        Scripted::Fail(status, reason) => {
            let mut json = serde_json::json!({ "reason": reason });
            if status == 410 {
                json["timestamp"] = serde_json::json!(SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map(|d| d.as_millis() as u64)
                    .unwrap_or_default());
            }
            let mut head =
                response(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR));
            head.headers_mut().insert(
                http::header::CONTENT_TYPE,
                http::HeaderValue::from_static("application/json"),
            );
            if let Ok(mut stream) = respond.send_response(head, false) {
                let _ = stream.send_data(Bytes::from(json.to_string()), true);
            }
        }
    }
}

/// Test helper: makes a push certificate like Apple's MDM push certificate: RSA 2048
/// key, subject `UID=<topic>, CN=APSP:<uuid>, C=US` (the uuid is the topic's when the
/// topic ends in one, as Apple's are), signed by `ca`, key usage digitalSignature,
/// extended key usage clientAuth.
///
/// `valid_days > 0`: valid from an hour ago until `valid_days` days from now.
/// `valid_days <= 0`: already expired, `-valid_days` days and a minute ago, after a
/// year of validity; use it to test refusal of an expired push certificate.
pub fn make_push_certificate(ca: &TestCa, topic: &str, valid_days: i64) -> (PKey<Private>, X509) {
    let key = PKey::from_rsa(Rsa::generate(2048).expect("RSA keygen")).expect("RSA key");
    let id = topic
        .rsplit('.')
        .next()
        .filter(|tail| uuid::Uuid::parse_str(tail).is_ok())
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let mut name = X509NameBuilder::new().unwrap();
    name.append_entry_by_nid(Nid::USERID, topic).unwrap();
    name.append_entry_by_nid(Nid::COMMONNAME, &format!("APSP:{id}"))
        .unwrap();
    name.append_entry_by_nid(Nid::COUNTRYNAME, "US").unwrap();
    let name = name.build();
    let now = now_unix();
    let (not_before, not_after) = if valid_days > 0 {
        (now - 3600, now + valid_days * 86400)
    } else {
        let end = now + valid_days * 86400 - 60;
        (end - 365 * 86400, end)
    };
    let mut b = X509Builder::new().unwrap();
    b.set_version(2).unwrap();
    random_serial(&mut b).unwrap();
    b.set_subject_name(&name).unwrap();
    b.set_issuer_name(ca.cert.subject_name()).unwrap();
    b.set_pubkey(&key).unwrap();
    b.set_not_before(&Asn1Time::from_unix(not_before).unwrap())
        .unwrap();
    b.set_not_after(&Asn1Time::from_unix(not_after).unwrap())
        .unwrap();
    b.append_extension(BasicConstraints::new().build().unwrap())
        .unwrap();
    b.append_extension(
        KeyUsage::new()
            .critical()
            .digital_signature()
            .build()
            .unwrap(),
    )
    .unwrap();
    b.append_extension(ExtendedKeyUsage::new().client_auth().build().unwrap())
        .unwrap();
    b.sign(&ca.key, MessageDigest::sha256()).unwrap();
    (key, b.build())
}

/// What the fake (or any APNs) answered.
#[derive(Debug, Clone)]
pub struct ApnsReply {
    pub status: u16,
    pub apns_id: Option<String>,
    pub reason: Option<String>,
    /// Milliseconds, on 410 answers.
    pub timestamp: Option<u64>,
}

/// A bare HTTP/2 client on one TLS connection: the reference the server's own APNs
/// client is measured against, and the tool to probe the fake in its own tests.
pub struct BareClient {
    send: h2::client::SendRequest<Bytes>,
    base: String,
    closed: watch::Receiver<bool>,
    driver: AbortHandle,
}

impl BareClient {
    /// Opens one connection with `identity` as the client certificate (or none), trusting
    /// only the fake's CA and checking its certificate for "localhost". Returns only once
    /// the server has answered an HTTP/2 PING, so a handshake the server refused fails
    /// here even under TLS 1.3, where the client's half of the handshake ends first.
    pub async fn connect(
        fake: &FakeApns,
        identity: Option<(&PKey<Private>, &X509)>,
    ) -> anyhow::Result<BareClient> {
        let mut tls = SslConnector::builder(SslMethod::tls_client())?;
        for ca in X509::stack_from_pem(&fake.server_ca_pem)? {
            tls.cert_store_mut().add_cert(ca)?;
        }
        if let Some((key, cert)) = identity {
            tls.set_private_key(key)?;
            tls.set_certificate(cert)?;
        }
        tls.set_alpn_protos(b"\x02h2")?;
        let ssl = tls.build().configure()?.into_ssl("localhost")?;
        let tcp = TcpStream::connect(fake.addr).await?;
        tcp.set_nodelay(true)?;
        let mut stream = SslStream::new(ssl, tcp)?;
        Pin::new(&mut stream).connect().await?;
        anyhow::ensure!(
            stream.ssl().selected_alpn_protocol() == Some(b"h2"),
            "server did not select h2"
        );
        let (send, mut connection) = h2::client::Builder::new().handshake(stream).await?;
        let mut ping = connection.ping_pong().expect("ping_pong is taken once");
        let (done, closed) = watch::channel(false);
        let driver = tokio::spawn(async move {
            let _ = connection.await;
            let _ = done.send(true);
        });
        let client = BareClient {
            send,
            base: fake.url(),
            closed,
            driver: driver.abort_handle(),
        };
        tokio::time::timeout(Duration::from_secs(10), ping.ping(h2::Ping::opaque()))
            .await
            .map_err(|_| anyhow::anyhow!("no PING answer within 10 s"))??;
        Ok(client)
    }

    /// SETTINGS_MAX_CONCURRENT_STREAMS as the server announced it.
    pub fn max_concurrent_streams(&self) -> usize {
        self.send.current_max_send_streams()
    }

    /// Any request, for probing validation.
    pub async fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> anyhow::Result<ApnsReply> {
        let mut request = Request::builder()
            .method(method)
            .uri(format!("{}{}", self.base, path));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request.body(())?;
        let mut send = self.send.clone().ready().await?;
        let (response, mut stream) = send.send_request(request, body.is_empty())?;
        if !body.is_empty() {
            stream.send_data(Bytes::copy_from_slice(body), true)?;
        }
        let response = response.await?;
        let status = response.status().as_u16();
        let apns_id = response
            .headers()
            .get("apns-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let mut body = response.into_body();
        let mut bytes = Vec::new();
        while let Some(chunk) = body.data().await {
            let chunk = chunk?;
            let _ = body.flow_control().release_capacity(chunk.len());
            bytes.extend_from_slice(&chunk);
        }
        let json: Option<serde_json::Value> = serde_json::from_slice(&bytes).ok();
        let field = |name: &str| json.as_ref().and_then(|j| j.get(name)).cloned();
        Ok(ApnsReply {
            status,
            apns_id,
            reason: field("reason").and_then(|v| v.as_str().map(str::to_owned)),
            timestamp: field("timestamp").and_then(|v| v.as_u64()),
        })
    }

    /// A valid MDM push, as Apple expects it: priority 10, expiration 0.
    pub async fn push(&self, token: &str, topic: &str, magic: &str) -> anyhow::Result<ApnsReply> {
        let body = serde_json::json!({ "mdm": magic }).to_string();
        self.send(
            "POST",
            &format!("{DEVICE_PATH}{token}"),
            &[
                ("apns-topic", topic),
                ("apns-push-type", "mdm"),
                ("apns-priority", "10"),
                ("apns-expiration", "0"),
            ],
            body.as_bytes(),
        )
        .await
    }

    /// Waits until the server has closed the connection; false if it has not within `timeout`.
    pub async fn closed(&self, timeout: Duration) -> bool {
        let mut closed = self.closed.clone();
        tokio::time::timeout(timeout, closed.wait_for(|c| *c))
            .await
            .is_ok_and(|r| r.is_ok())
    }
}

impl Drop for BareClient {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

/// Benchmark helper: a bare HTTP/2 client (h2 directly, `connections` TLS connections,
/// requests spread across them round-robin by worker, at most `concurrency` in flight in
/// total) that sends `n` valid MDM pushes to the fake with the given client identity and
/// returns pushes per second. Connection setup is not timed, only the sending. Panics if
/// a push fails or is not answered 200, since the rate would then mean nothing.
pub async fn bare_client_rate(
    fake: &FakeApns,
    key: &PKey<Private>,
    cert: &X509,
    topic: &str,
    n: usize,
    connections: usize,
    concurrency: usize,
) -> f64 {
    let connections = connections.max(1);
    let concurrency = concurrency.max(1);
    let mut clients = Vec::with_capacity(connections);
    for _ in 0..connections {
        let client = BareClient::connect(fake, Some((key, cert)))
            .await
            .expect("bare client connects to the fake APNs");
        clients.push(Arc::new(client));
    }
    let next = Arc::new(AtomicUsize::new(0));
    let topic: Arc<str> = topic.into();
    let started = Instant::now();
    let mut workers = JoinSet::new();
    for worker in 0..concurrency {
        let client = clients[worker % connections].clone();
        let next = next.clone();
        let topic = topic.clone();
        workers.spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    break;
                }
                let token = format!("{i:064x}");
                let magic = format!("00000000-0000-4000-8000-{i:012x}");
                let reply = client
                    .push(&token, &topic, &magic)
                    .await
                    .unwrap_or_else(|e| panic!("push {i} failed: {e:#}"));
                assert_eq!(
                    reply.status, 200,
                    "push {i} answered {} {:?}",
                    reply.status, reply.reason
                );
            }
        });
    }
    while let Some(done) = workers.join_next().await {
        if let Err(e) = done {
            std::panic::resume_unwind(e.into_panic());
        }
    }
    n as f64 / started.elapsed().as_secs_f64()
}
