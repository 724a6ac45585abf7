//! Faithful local fakes of the three Google services the server talks to for Android,
//! on one loopback port:
//!
//! * the OAuth 2.0 token endpoint (`POST /token`): the JWT bearer grant of RFC 7523,
//!   the assertion's RS256 signature verified with the public key of a service account
//!   it issued, `aud` this endpoint, `iat`/`exp` current and at most an hour apart;
//!   access tokens are random, expire, and are refused (401) once expired or revoked;
//! * the Android Management API v1 (`/v1/...`): every request body is validated
//!   against the discovery document's schema for its method (fake_google_schema.rs),
//!   and it keeps sign-up URLs, enterprises, enrollment tokens, policies, devices and
//!   operations, answering with Google's error format;
//! * Cloud Pub/Sub v1 (`/v1/projects/*/subscriptions/*:pull`, `:acknowledge`): topics
//!   whose messages fan out to their subscriptions; a pulled message stays
//!   outstanding until acknowledged and can be redelivered.
//!
//! Tests drive the Google side by hand: [`FakeGoogle::sign_up`] is the admin at
//! Google's sign-up page, [`FakeGoogle::inject`] makes the next matching requests fail.

use crate::fake_google_schema::Discovery;
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use base64::Engine;
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Public};
use openssl::rsa::Rsa;
use openssl::sign::Verifier;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const B64URL: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;
const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;
pub const AMAPI_SCOPE: &str = "https://www.googleapis.com/auth/androidmanagement";

fn random_id(bytes: usize) -> String {
    let mut b = vec![0u8; bytes];
    openssl::rand::rand_bytes(&mut b).unwrap();
    hex::encode(b)
}

/// One recorded request.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub query: HashMap<String, String>,
    pub body: Value,
    /// The AMAPI method id from the discovery document, when known.
    pub method_id: Option<String>,
}

/// A fault to answer instead of the real thing.
#[derive(Debug, Clone)]
pub struct Fault {
    /// Substring of "METHOD /path" the fault applies to.
    pub matching: String,
    pub status: u16,
    pub retry_after: Option<u64>,
    pub times: usize,
}

#[derive(Default)]
pub struct State {
    pub base_url: String,
    /// client_email -> (project, public key)
    accounts: HashMap<String, (String, PKey<Public>)>,
    /// access token -> (client_email, expiry)
    tokens: HashMap<String, (String, Instant)>,
    pub token_requests: usize,
    /// The service account the last access token was issued to.
    pub last_token_email: Option<String>,
    pub token_lifetime_secs: u64,
    pub requests: Vec<Seen>,
    faults: Vec<Fault>,
    /// signupUrls name -> (project, callbackUrl, enterprise token once signed up)
    signups: HashMap<String, (String, String, Option<String>)>,
    pub enterprises: BTreeMap<String, Value>,
    pub enrollment_tokens: BTreeMap<String, Value>,
    pub policies: BTreeMap<String, Value>,
    pub devices: BTreeMap<String, Value>,
    pub operations: BTreeMap<String, Value>,
    /// devices.delete calls: the name and the query (wipeDataFlags, ...).
    pub deleted_devices: Vec<(String, HashMap<String, String>)>,
    /// topic -> subscriptions
    topics: HashMap<String, Vec<String>>,
    /// subscription -> messages waiting
    queues: HashMap<String, VecDeque<Value>>,
    /// ack id -> (subscription, message) pulled but not acknowledged
    outstanding: HashMap<String, (String, Value)>,
    pub acknowledged: usize,
    /// Every request answers 403 PERMISSION_DENIED (a removed IAM role).
    pub deny_all: bool,
    /// Answer pages of at most this many devices in devices.list.
    pub page_size_cap: usize,
}

#[derive(Clone)]
pub struct FakeGoogle {
    pub url: String,
    pub state: Arc<Mutex<State>>,
    discovery: Arc<Option<Discovery>>,
    handle: actix_web::dev::ServerHandle,
}

fn google_error(status: u16, reason: &str, message: impl Into<String>) -> HttpResponse {
    HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap()).json(json!({
        "error": { "code": status, "message": message.into(), "status": reason }
    }))
}

impl FakeGoogle {
    pub async fn start() -> FakeGoogle {
        let state = Arc::new(Mutex::new(State {
            token_lifetime_secs: 3599,
            page_size_cap: 100,
            ..Default::default()
        }));
        let discovery = Arc::new(Discovery::load());
        let app_state = (state.clone(), discovery.clone());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(web::Data::new(app_state.clone()))
                .app_data(web::PayloadConfig::new(16 << 20))
                .default_service(web::to(handle))
        })
        .workers(2)
        .disable_signals()
        .bind("127.0.0.1:0")
        .unwrap();
        let addr = server.addrs()[0];
        let server = server.run();
        let handle = server.handle();
        tokio::spawn(server);
        let url = format!("http://{addr}");
        state.lock().unwrap().base_url = url.clone();
        FakeGoogle {
            url,
            state,
            discovery,
            handle,
        }
    }

    pub fn token_uri(&self) -> String {
        format!("{}/token", self.url)
    }

    /// Whether request bodies are checked against the discovery document.
    pub fn validates(&self) -> bool {
        self.discovery.is_some()
    }

    /// A new service account of `project`: its JSON key file, as the Cloud console
    /// downloads it, with `token_uri` pointing at this fake.
    pub fn service_account(&self, project: &str) -> Value {
        let rsa = Rsa::generate(2048).unwrap();
        let key = PKey::from_rsa(rsa).unwrap();
        let public = PKey::public_key_from_pem(&key.public_key_to_pem().unwrap()).unwrap();
        let email = format!("mdm-{}@{project}.iam.gserviceaccount.com", random_id(3));
        self.state
            .lock()
            .unwrap()
            .accounts
            .insert(email.clone(), (project.to_owned(), public));
        json!({
            "type": "service_account",
            "project_id": project,
            "private_key_id": random_id(20),
            "private_key": String::from_utf8(key.private_key_to_pem_pkcs8().unwrap()).unwrap(),
            "client_email": email,
            "client_id": "1234567890",
            "auth_uri": "https://accounts.google.com/o/oauth2/auth",
            "token_uri": self.token_uri(),
        })
    }

    /// A Pub/Sub topic with one subscription (the admin makes both in the console and
    /// lets android-cloud-policy@system.gserviceaccount.com publish).
    pub fn create_topic(&self, topic: &str, subscription: &str) {
        let mut s = self.state.lock().unwrap();
        s.topics
            .entry(topic.to_owned())
            .or_default()
            .push(subscription.to_owned());
        s.queues.entry(subscription.to_owned()).or_default();
    }

    /// The admin completes Google's sign-up page: returns the URL Google redirects
    /// their browser to (the callback with `enterpriseToken` added).
    pub fn sign_up(&self, signup_url: &str) -> String {
        let mut s = self.state.lock().unwrap();
        let code = signup_url
            .rsplit("c=")
            .next()
            .unwrap_or_default()
            .to_owned();
        let name = format!("signupUrls/C{code}");
        let entry = s
            .signups
            .get_mut(&name)
            .expect("a sign-up URL this fake made");
        let token = format!("EAG{}", random_id(16));
        entry.2 = Some(token.clone());
        let sep = if entry.1.contains('?') { '&' } else { '?' };
        format!("{}{sep}enterpriseToken={token}", entry.1)
    }

    /// The next `times` requests whose "METHOD /path" contains `matching` answer
    /// `status` (with Retry-After when given) instead.
    pub fn inject(&self, matching: &str, status: u16, retry_after: Option<u64>, times: usize) {
        self.state.lock().unwrap().faults.push(Fault {
            matching: matching.to_owned(),
            status,
            retry_after,
            times,
        });
    }

    /// Every access token issued so far stops working (Google revoked them).
    pub fn revoke_tokens(&self) {
        self.state.lock().unwrap().tokens.clear();
    }

    pub fn requests(&self, matching: &str) -> Vec<Seen> {
        self.state
            .lock()
            .unwrap()
            .requests
            .iter()
            .filter(|r| format!("{} {}", r.method, r.path).contains(matching))
            .cloned()
            .collect()
    }

    /// Publishes to a topic as AMAPI does: `data` is base64 of the JSON resource,
    /// `notificationType` the attribute.
    pub fn publish(&self, topic: &str, notification_type: &str, resource: &Value) {
        let data = B64.encode(resource.to_string());
        self.publish_raw(topic, notification_type, &data);
    }

    /// Publishes a message whose data is given as is (already base64, or not).
    pub fn publish_raw(&self, topic: &str, notification_type: &str, data: &str) {
        let mut s = self.state.lock().unwrap();
        let message = json!({
            "data": data,
            "attributes": { "notificationType": notification_type },
            "messageId": random_id(8),
            "publishTime": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        });
        let subs = s.topics.get(topic).cloned().unwrap_or_default();
        for sub in subs {
            s.queues.entry(sub).or_default().push_back(message.clone());
        }
    }

    /// Messages pulled and not acknowledged go back to their queues (their ack
    /// deadline passed), as Pub/Sub redelivers them.
    pub fn redeliver_unacknowledged(&self) {
        let mut s = self.state.lock().unwrap();
        let outstanding: Vec<(String, Value)> = s.outstanding.drain().map(|(_, v)| v).collect();
        for (sub, message) in outstanding {
            s.queues.entry(sub).or_default().push_back(message);
        }
    }

    /// Messages waiting or outstanding on a subscription.
    pub fn unacknowledged(&self, subscription: &str) -> usize {
        let s = self.state.lock().unwrap();
        s.queues.get(subscription).map_or(0, VecDeque::len)
            + s.outstanding
                .values()
                .filter(|(sub, _)| sub == subscription)
                .count()
    }

    pub async fn stop(&self) {
        self.handle.stop(false).await;
    }
}

type Shared = web::Data<(Arc<Mutex<State>>, Arc<Option<Discovery>>)>;

async fn handle(req: HttpRequest, body: web::Bytes, data: Shared) -> HttpResponse {
    let (state, discovery) = (&data.0, &data.1);
    let method = req.method().as_str().to_owned();
    let path = req.path().to_owned();
    let query: HashMap<String, String> =
        web::Query::<HashMap<String, String>>::from_query(req.query_string())
            .map(|q| q.into_inner())
            .unwrap_or_default();
    if path == "/token" {
        return token_endpoint(state, &body);
    }
    let json_body: Value = if body.is_empty() {
        Value::Null
    } else {
        match serde_json::from_slice(&body) {
            Ok(v) => v,
            Err(e) => {
                return google_error(
                    400,
                    "INVALID_ARGUMENT",
                    format!("Invalid JSON payload received. {e}"),
                )
            }
        }
    };
    let rel = path.trim_start_matches('/');
    let amapi_method = discovery.as_ref().as_ref().and_then(|d| {
        d.method(&method, rel)
            .map(|(id, r)| (id.to_owned(), r.map(str::to_owned)))
    });
    {
        let mut s = state.lock().unwrap();
        s.requests.push(Seen {
            method: method.clone(),
            path: path.clone(),
            query: query.clone(),
            body: json_body.clone(),
            method_id: amapi_method.as_ref().map(|m| m.0.clone()),
        });
        // Authorisation first, as Google's front end does.
        let bearer = req
            .headers()
            .get("Authorization")
            .and_then(|h| h.to_str().ok())
            .and_then(|h| h.strip_prefix("Bearer "))
            .unwrap_or("");
        let valid = s
            .tokens
            .get(bearer)
            .is_some_and(|(_, expiry)| Instant::now() < *expiry);
        if !valid {
            return google_error(
                401,
                "UNAUTHENTICATED",
                "Request had invalid authentication credentials. Expected OAuth 2 access token.",
            );
        }
        let line = format!("{method} {path}");
        if let Some(f) = s
            .faults
            .iter_mut()
            .find(|f| f.times > 0 && line.contains(&f.matching))
        {
            f.times -= 1;
            let (status, retry_after) = (f.status, f.retry_after);
            let reason = match status {
                429 => "RESOURCE_EXHAUSTED",
                403 => "PERMISSION_DENIED",
                404 => "NOT_FOUND",
                503 => "UNAVAILABLE",
                _ => "INTERNAL",
            };
            let mut r = google_error(status, reason, "injected fault");
            if let Some(secs) = retry_after {
                r.headers_mut().insert(
                    actix_web::http::header::RETRY_AFTER,
                    secs.to_string().parse().unwrap(),
                );
            }
            return r;
        }
        if s.deny_all {
            return google_error(
                403,
                "PERMISSION_DENIED",
                "The caller does not have permission",
            );
        }
    }
    if path.starts_with("/v1/projects/") {
        return pubsub(state, &path, &json_body);
    }
    let Some((method_id, request_schema)) = amapi_method.or_else(|| {
        // Without the discovery document: the few methods the fake knows anyway.
        if discovery.is_none() {
            Some((String::new(), None))
        } else {
            None
        }
    }) else {
        return google_error(404, "NOT_FOUND", format!("no AMAPI method {method} {path}"));
    };
    if let (Some(schema), Some(d)) = (request_schema, discovery.as_ref().as_ref()) {
        if json_body.is_null() {
            return google_error(400, "INVALID_ARGUMENT", "a request body is required");
        }
        if let Err(e) = d.validate(&schema, &json_body) {
            return google_error(400, "INVALID_ARGUMENT", e);
        }
    }
    crate::fake_google_amapi::amapi(state, &method, &method_id, rel, &query, json_body)
}

fn token_endpoint(state: &Arc<Mutex<State>>, body: &[u8]) -> HttpResponse {
    let refuse = |why: &str| {
        HttpResponse::BadRequest()
            .json(json!({ "error": "invalid_grant", "error_description": why }))
    };
    let form: HashMap<String, String> = match serde_urlencoded_form(body) {
        Some(f) => f,
        None => return HttpResponse::BadRequest().json(json!({"error": "invalid_request"})),
    };
    if form.get("grant_type").map(String::as_str)
        != Some("urn:ietf:params:oauth:grant-type:jwt-bearer")
    {
        return HttpResponse::BadRequest().json(json!({"error": "unsupported_grant_type"}));
    }
    let Some(assertion) = form.get("assertion") else {
        return HttpResponse::BadRequest().json(json!({"error": "invalid_request"}));
    };
    let parts: Vec<&str> = assertion.split('.').collect();
    if parts.len() != 3 {
        return refuse("Invalid JWT: not three segments");
    }
    let decode =
        |s: &str| -> Option<Value> { serde_json::from_slice(&B64URL.decode(s).ok()?).ok() };
    let (Some(header), Some(claims), Ok(signature)) =
        (decode(parts[0]), decode(parts[1]), B64URL.decode(parts[2]))
    else {
        return refuse("Invalid JWT: bad encoding");
    };
    if header["alg"] != "RS256" {
        return refuse("Invalid JWT: alg must be RS256");
    }
    let mut s = state.lock().unwrap();
    s.token_requests += 1;
    let email = claims["iss"].as_str().unwrap_or_default().to_owned();
    let Some((_, public)) = s.accounts.get(&email).cloned() else {
        return refuse("Invalid JWT Signature.");
    };
    let mut verifier = Verifier::new(MessageDigest::sha256(), &public).unwrap();
    verifier
        .update(format!("{}.{}", parts[0], parts[1]).as_bytes())
        .unwrap();
    if !verifier.verify(&signature).unwrap_or(false) {
        return refuse("Invalid JWT Signature.");
    }
    let now = chrono::Utc::now().timestamp();
    let (iat, exp) = (
        claims["iat"].as_i64().unwrap_or(0),
        claims["exp"].as_i64().unwrap_or(0),
    );
    if claims["aud"].as_str() != Some(&format!("{}/token", s.base_url)) {
        return refuse("Invalid JWT: aud is not this token endpoint");
    }
    if iat > now + 60 || exp < now || exp - iat > 3600 {
        return refuse("Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe.");
    }
    let scopes = claims["scope"].as_str().unwrap_or_default();
    if !scopes.split(' ').any(|sc| sc == AMAPI_SCOPE) {
        return refuse("Invalid JWT: the androidmanagement scope is missing");
    }
    let token = format!("ya29.{}", random_id(24));
    let lifetime = s.token_lifetime_secs;
    s.last_token_email = Some(email.clone());
    s.tokens.insert(
        token.clone(),
        (email, Instant::now() + Duration::from_secs(lifetime)),
    );
    HttpResponse::Ok().json(json!({
        "access_token": token,
        "expires_in": lifetime,
        "token_type": "Bearer",
    }))
}

/// application/x-www-form-urlencoded, by hand (percent-decoding and '+').
fn serde_urlencoded_form(body: &[u8]) -> Option<HashMap<String, String>> {
    let text = std::str::from_utf8(body).ok()?;
    web::Query::<HashMap<String, String>>::from_query(text)
        .ok()
        .map(|q| q.into_inner())
}

fn pubsub(state: &Arc<Mutex<State>>, path: &str, body: &Value) -> HttpResponse {
    let mut s = state.lock().unwrap();
    if let Some(sub) = path
        .strip_prefix("/v1/")
        .and_then(|p| p.strip_suffix(":pull"))
    {
        let Some(max) = body["maxMessages"].as_u64().filter(|m| *m > 0) else {
            return google_error(
                400,
                "INVALID_ARGUMENT",
                "maxMessages must be a positive integer",
            );
        };
        let mut out = Vec::new();
        let Some(queue) = s.queues.get_mut(sub) else {
            return google_error(
                404,
                "NOT_FOUND",
                format!("Resource not found (resource={sub})."),
            );
        };
        let mut taken = Vec::new();
        while (taken.len() as u64) < max {
            match queue.pop_front() {
                Some(m) => taken.push(m),
                None => break,
            }
        }
        for m in taken {
            let ack = random_id(12);
            s.outstanding
                .insert(ack.clone(), (sub.to_owned(), m.clone()));
            out.push(json!({ "ackId": ack, "message": m }));
        }
        return HttpResponse::Ok().json(if out.is_empty() {
            json!({})
        } else {
            json!({ "receivedMessages": out })
        });
    }
    if let Some(sub) = path
        .strip_prefix("/v1/")
        .and_then(|p| p.strip_suffix(":acknowledge"))
    {
        let Some(ids) = body["ackIds"].as_array() else {
            return google_error(400, "INVALID_ARGUMENT", "ackIds is required");
        };
        for id in ids {
            if let Some(id) = id.as_str() {
                if s.outstanding.get(id).is_some_and(|(owner, _)| owner == sub)
                    && s.outstanding.remove(id).is_some()
                {
                    s.acknowledged += 1;
                }
            }
        }
        return HttpResponse::Ok().json(json!({}));
    }
    google_error(404, "NOT_FOUND", format!("no Pub/Sub method {path}"))
}

impl State {
    /// Injected faults end.
    pub fn clear_faults(&mut self) {
        self.faults.clear();
    }
    /// Every access token currently valid.
    pub fn issued_tokens(&self) -> Vec<String> {
        self.tokens.keys().cloned().collect()
    }
    pub(crate) fn signup_mut(
        &mut self,
        name: &str,
    ) -> Option<&mut (String, String, Option<String>)> {
        self.signups.get_mut(name)
    }
    pub(crate) fn add_signup(&mut self, name: String, project: String, callback: String) {
        self.signups.insert(name, (project, callback, None));
    }
    pub(crate) fn topic_exists(&self, topic: &str) -> bool {
        self.topics.contains_key(topic)
    }
    /// Publishes from inside a handler (the lock held).
    pub(crate) fn publish_locked(
        &mut self,
        topic: &str,
        notification_type: &str,
        resource: &Value,
    ) {
        let message = json!({
            "data": B64.encode(resource.to_string()),
            "attributes": { "notificationType": notification_type },
            "messageId": random_id(8),
            "publishTime": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        });
        let subs = self.topics.get(topic).cloned().unwrap_or_default();
        for sub in subs {
            self.queues
                .entry(sub)
                .or_default()
                .push_back(message.clone());
        }
    }
}

pub(crate) fn new_id() -> String {
    random_id(8)
}
pub(crate) fn error(status: u16, reason: &str, message: impl Into<String>) -> HttpResponse {
    google_error(status, reason, message)
}
