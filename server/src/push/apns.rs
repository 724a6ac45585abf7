//! APNs provider client for MDM pushes: HTTP/2 with the push certificate as the TLS
//! client identity, many streams per connection, a small pool of connections,
//! bounded concurrency, and retries with exponential backoff and jitter.

use super::certificate::PushCertificate;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

pub const PRODUCTION_URL: &str = "https://api.push.apple.com";
pub const SANDBOX_URL: &str = "https://api.sandbox.push.apple.com";

#[derive(Debug, Clone)]
pub struct ApnsSettings {
    /// Base URL: production, sandbox, or any (tests).
    pub url: String,
    /// Extra CA to trust for the APNs server's certificate (tests, proxies).
    pub extra_ca_pem: Option<Vec<u8>>,
    /// TLS connections kept to APNs; requests are spread across them.
    pub connections: usize,
    /// Pushes in flight at once, over all connections.
    pub concurrency: usize,
    /// Attempts per push for retryable failures (429, 5xx, connection errors).
    pub max_attempts: u32,
    /// First retry delay; doubles each attempt, with jitter, capped at 60 s.
    pub retry_base: Duration,
    /// How long APNs should keep trying to deliver (apns-expiration).
    pub expiration: Duration,
}

impl Default for ApnsSettings {
    fn default() -> Self {
        ApnsSettings {
            url: PRODUCTION_URL.into(),
            extra_ca_pem: None,
            connections: 2,
            concurrency: 500,
            max_attempts: 5,
            retry_base: Duration::from_secs(1),
            expiration: Duration::from_secs(24 * 3600),
        }
    }
}

/// One device to wake.
#[derive(Debug, Clone)]
pub struct PushTarget {
    pub device_id: String,
    pub token_hex: String,
    pub push_magic: String,
}

/// What APNs said, classified by what we must do about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Delivered,
    /// 410 Unregistered, 400 BadDeviceToken: stop pushing this token until TokenUpdate.
    TokenInvalid,
    /// 400 DeviceTokenNotForTopic/TopicDisallowed, 403: the push certificate or topic
    /// is wrong; no device will be reached until an admin fixes it.
    ConfigurationError,
    /// 429, 5xx, connection failures, after all attempts.
    RetriesExhausted,
    /// Any other refusal (malformed request): recorded, not retried.
    Rejected,
}

impl Outcome {
    pub fn as_str(&self) -> &'static str {
        match self {
            Outcome::Delivered => "delivered",
            Outcome::TokenInvalid => "token_invalid",
            Outcome::ConfigurationError => "configuration_error",
            Outcome::RetriesExhausted => "retries_exhausted",
            Outcome::Rejected => "rejected",
        }
    }
}

/// One HTTP exchange with APNs.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub device_id: String,
    pub at: chrono::DateTime<chrono::Utc>,
    pub attempt: u32,
    /// HTTP status; None when the connection failed.
    pub status: Option<u16>,
    pub reason: Option<String>,
    pub apns_id: Option<String>,
}

#[derive(Debug, Clone)]
pub struct PushResult {
    pub device_id: String,
    pub outcome: Outcome,
    pub attempts: Vec<Attempt>,
}

impl PushResult {
    pub fn last(&self) -> Option<&Attempt> {
        self.attempts.last()
    }
}

enum Verdict {
    Done(Outcome),
    Retry,
}

/// Maps APNs's answer to what to do, as Apple documents the statuses and reasons.
fn classify(status: Option<u16>, reason: Option<&str>) -> Verdict {
    match (status, reason.unwrap_or_default()) {
        (Some(200), _) => Verdict::Done(Outcome::Delivered),
        (Some(410), _) => Verdict::Done(Outcome::TokenInvalid),
        (Some(400), "BadDeviceToken") => Verdict::Done(Outcome::TokenInvalid),
        (Some(400), "DeviceTokenNotForTopic" | "TopicDisallowed" | "MissingTopic" | "BadTopic") => {
            Verdict::Done(Outcome::ConfigurationError)
        }
        (Some(403), _) => Verdict::Done(Outcome::ConfigurationError),
        (Some(429), _) | (Some(500..=599), _) | (None, _) => Verdict::Retry,
        _ => Verdict::Done(Outcome::Rejected),
    }
}

/// Delay before attempt `attempt` (1-based retries): base * 2^(attempt-1), capped,
/// then scaled by a random factor in [0.5, 1) so that many failed pushes do not
/// all come back at the same instant.
pub fn backoff(base: Duration, attempt: u32) -> Duration {
    let exp = base.saturating_mul(1u32 << attempt.saturating_sub(1).min(16));
    let capped = exp.min(Duration::from_secs(60));
    let mut r = [0u8; 2];
    openssl::rand::rand_bytes(&mut r).ok();
    let jitter = 0.5 + (u16::from_le_bytes(r) as f64 / u16::MAX as f64) * 0.5;
    capped.mul_f64(jitter)
}

#[derive(serde::Deserialize)]
struct ErrorBody {
    reason: Option<String>,
}

/// A connected APNs client for one push certificate.
pub struct ApnsClient {
    clients: Vec<reqwest::Client>,
    next: AtomicUsize,
    permits: Arc<Semaphore>,
    settings: ApnsSettings,
    topic: String,
}

impl ApnsClient {
    pub fn new(cert: &PushCertificate, settings: ApnsSettings) -> anyhow::Result<Self> {
        let identity = reqwest::Identity::from_pkcs8_pem(&cert.cert_pem(), &cert.key_pem())?;
        let mut clients = Vec::new();
        for _ in 0..settings.connections.max(1) {
            let mut builder = reqwest::Client::builder()
                .use_native_tls()
                .identity(identity.clone())
                // APNs speaks only HTTP/2.
                .http2_prior_knowledge()
                .http2_keep_alive_interval(Duration::from_secs(60))
                .pool_max_idle_per_host(1)
                .timeout(Duration::from_secs(30));
            if let Some(pem) = &settings.extra_ca_pem {
                builder = builder.add_root_certificate(reqwest::Certificate::from_pem(pem)?);
            }
            clients.push(builder.build()?);
        }
        Ok(ApnsClient {
            clients,
            next: AtomicUsize::new(0),
            permits: Arc::new(Semaphore::new(settings.concurrency.max(1))),
            topic: cert.topic.clone(),
            settings,
        })
    }

    pub fn topic(&self) -> &str {
        &self.topic
    }

    async fn send_once(&self, target: &PushTarget, attempt: u32) -> Attempt {
        let _permit = self
            .permits
            .acquire()
            .await
            .expect("semaphore never closed");
        let client = &self.clients[self.next.fetch_add(1, Ordering::Relaxed) % self.clients.len()];
        let expiration = chrono::Utc::now().timestamp() + self.settings.expiration.as_secs() as i64;
        let url = format!(
            "{}/3/device/{}",
            self.settings.url.trim_end_matches('/'),
            target.token_hex
        );
        let at = chrono::Utc::now();
        let result = client
            .post(url)
            .header("apns-topic", &self.topic)
            .header("apns-push-type", "mdm")
            .header("apns-priority", "10")
            .header("apns-expiration", expiration.to_string())
            .json(&serde_json::json!({ "mdm": target.push_magic }))
            .send()
            .await;
        match result {
            Ok(resp) => {
                let status = resp.status().as_u16();
                let apns_id = resp
                    .headers()
                    .get("apns-id")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                let reason = if status == 200 {
                    None
                } else {
                    resp.json::<ErrorBody>().await.ok().and_then(|b| b.reason)
                };
                Attempt {
                    device_id: target.device_id.clone(),
                    at,
                    attempt,
                    status: Some(status),
                    reason,
                    apns_id,
                }
            }
            Err(e) => Attempt {
                device_id: target.device_id.clone(),
                at,
                attempt,
                status: None,
                reason: Some(format!("connection: {}", error_chain(&e))),
                apns_id: None,
            },
        }
    }

    /// Pushes one device, retrying what can be retried.
    pub async fn push(&self, target: &PushTarget) -> PushResult {
        let mut attempts = Vec::new();
        for attempt in 1..=self.settings.max_attempts.max(1) {
            if attempt > 1 {
                tokio::time::sleep(backoff(self.settings.retry_base, attempt - 1)).await;
            }
            let a = self.send_once(target, attempt).await;
            let verdict = classify(a.status, a.reason.as_deref());
            attempts.push(a);
            if let Verdict::Done(outcome) = verdict {
                return PushResult {
                    device_id: target.device_id.clone(),
                    outcome,
                    attempts,
                };
            }
        }
        PushResult {
            device_id: target.device_id.clone(),
            outcome: Outcome::RetriesExhausted,
            attempts,
        }
    }

    /// Pushes many devices concurrently (bounded by the client's concurrency).
    pub async fn push_all(self: &Arc<Self>, targets: Vec<PushTarget>) -> Vec<PushResult> {
        let mut tasks = tokio::task::JoinSet::new();
        for target in targets {
            let client = self.clone();
            tasks.spawn(async move { client.push(&target).await });
        }
        let mut results = Vec::new();
        while let Some(r) = tasks.join_next().await {
            if let Ok(r) = r {
                results.push(r);
            }
        }
        results
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification_follows_apple() {
        let done = |s, r| match classify(s, r) {
            Verdict::Done(o) => Some(o),
            Verdict::Retry => None,
        };
        assert_eq!(done(Some(200), None), Some(Outcome::Delivered));
        assert_eq!(
            done(Some(410), Some("Unregistered")),
            Some(Outcome::TokenInvalid)
        );
        assert_eq!(
            done(Some(400), Some("BadDeviceToken")),
            Some(Outcome::TokenInvalid)
        );
        assert_eq!(
            done(Some(400), Some("DeviceTokenNotForTopic")),
            Some(Outcome::ConfigurationError)
        );
        assert_eq!(
            done(Some(403), Some("BadCertificate")),
            Some(Outcome::ConfigurationError)
        );
        assert_eq!(done(Some(400), Some("BadMessage")), Some(Outcome::Rejected));
        assert_eq!(done(Some(429), Some("TooManyRequests")), None);
        assert_eq!(done(Some(503), None), None);
        assert_eq!(done(None, None), None);
    }

    #[test]
    fn backoff_grows_with_jitter_and_a_cap() {
        let base = Duration::from_millis(100);
        for attempt in 1..8 {
            let d = backoff(base, attempt);
            let full = base * (1 << (attempt - 1));
            assert!(d >= full / 2 && d <= full, "attempt {attempt}: {d:?}");
        }
        assert!(backoff(Duration::from_secs(10), 30) <= Duration::from_secs(60));
    }
}
