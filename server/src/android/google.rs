//! One authorised call to a Google REST API, with Google's faults handled the way its
//! documentation asks ("Retry strategy", "Error responses"):
//!
//! * 429 and 5xx, and a connection that fails, are retried with exponential backoff
//!   and jitter, waiting at least what a `Retry-After` header says;
//! * 401 means the access token died early (revoked, rotated key): the token is
//!   refreshed once and the call repeated once;
//! * anything else is Google's final answer, returned with its `error.status`
//!   (PERMISSION_DENIED, NOT_FOUND, INVALID_ARGUMENT...) and message.

use super::token::{TokenError, TokenSource};
use reqwest::header::HeaderMap;
use reqwest::Method;
use serde_json::Value;
use std::time::Duration;

#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    /// The first backoff; each further one doubles, up to `max_delay`.
    pub base: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 5,
            base: Duration::from_millis(500),
            max_delay: Duration::from_secs(60),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum GoogleError {
    /// Google's final answer: a 4xx, or a 429/5xx still there after every retry.
    #[error("Google answered {status} {}: {message}", reason.as_deref().unwrap_or(""))]
    Api {
        status: u16,
        /// `error.status` of Google's error body, such as PERMISSION_DENIED.
        reason: Option<String>,
        message: String,
    },
    #[error("cannot reach Google: {0}")]
    Transport(String),
    #[error("{0}")]
    Token(#[from] TokenError),
    /// A success whose body is not what the API documents.
    #[error("Google's answer is not what the API documents: {0}")]
    Protocol(String),
}

impl GoogleError {
    pub fn status(&self) -> Option<u16> {
        match self {
            GoogleError::Api { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Only an admin can cure it: access refused, enterprise or key gone.
    pub fn is_configuration(&self) -> bool {
        matches!(self, GoogleError::Token(TokenError::Refused { .. }))
            || matches!(self.status(), Some(401 | 403))
    }

    /// Google is down or overloaded: try again later.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            GoogleError::Transport(_) | GoogleError::Token(TokenError::Unavailable(..))
        ) || matches!(self.status(), Some(s) if s == 429 || s >= 500)
    }
}

/// Seconds or an HTTP date in `Retry-After` (RFC 9110 section 10.2.3).
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let wait = when.timestamp() - chrono::Utc::now().timestamp();
    Some(Duration::from_secs(wait.max(0) as u64))
}

fn jittered(d: Duration) -> Duration {
    let mut b = [0u8; 2];
    let _ = openssl::rand::rand_bytes(&mut b);
    // Up to a quarter more, so that many callers do not retry in step.
    let extra = d.as_millis() as u64 * u16::from_le_bytes(b) as u64 / (4 * 65536);
    d + Duration::from_millis(extra)
}

pub struct Google {
    http: reqwest::Client,
    tokens: TokenSource,
    retry: RetryPolicy,
}

enum Attempt {
    Done(Value),
    Retry(GoogleError, Option<Duration>),
    Unauthorized(GoogleError, String),
    Fail(GoogleError),
}

impl Google {
    pub fn new(http: reqwest::Client, tokens: TokenSource, retry: RetryPolicy) -> Self {
        Google {
            http,
            tokens,
            retry,
        }
    }

    pub fn tokens(&self) -> &TokenSource {
        &self.tokens
    }

    /// Calls `method url?query` with `body` as JSON and returns the JSON answer
    /// (`{}` for an empty one, as Google's delete methods answer).
    pub async fn call(
        &self,
        method: Method,
        url: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> Result<Value, GoogleError> {
        let mut refreshed = false;
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let outcome = self.once(method.clone(), url, query, body).await;
            let (error, wait) = match outcome {
                Attempt::Done(v) => return Ok(v),
                Attempt::Fail(e) => return Err(e),
                Attempt::Unauthorized(e, token) => {
                    if refreshed {
                        return Err(e);
                    }
                    refreshed = true;
                    self.tokens.invalidate(&token).await;
                    // The refresh is not a retry of a fault: it does not count.
                    attempt -= 1;
                    continue;
                }
                Attempt::Retry(e, wait) => (e, wait),
            };
            if attempt >= self.retry.max_attempts {
                return Err(error);
            }
            let backoff = self
                .retry
                .base
                .saturating_mul(1u32 << (attempt - 1).min(16))
                .min(self.retry.max_delay);
            // Retry-After is a floor (Google asks for at least that), capped so that a
            // hostile or broken header cannot park the caller for a day.
            let delay = jittered(backoff)
                .max(wait.unwrap_or_default())
                .min(self.retry.max_delay);
            tracing::debug!(%error, attempt, ?delay, "Google call failed, retrying");
            tokio::time::sleep(delay).await;
        }
    }

    async fn once(
        &self,
        method: Method,
        url: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> Attempt {
        let token = match self.tokens.token().await {
            Ok(t) => t,
            Err(TokenError::Unavailable(m, wait)) => {
                return Attempt::Retry(TokenError::Unavailable(m, wait).into(), wait)
            }
            Err(e) => return Attempt::Fail(e.into()),
        };
        let mut request = self.http.request(method, url).bearer_auth(&token);
        if !query.is_empty() {
            request = request.query(query);
        }
        if let Some(b) = body {
            request = request.json(b);
        }
        let response = match request.send().await {
            Ok(r) => r,
            Err(e) => {
                return Attempt::Retry(GoogleError::Transport(e.without_url().to_string()), None)
            }
        };
        let status = response.status().as_u16();
        let wait = retry_after(response.headers());
        let text = match response.text().await {
            Ok(t) => t,
            Err(e) => {
                return Attempt::Retry(GoogleError::Transport(e.without_url().to_string()), None)
            }
        };
        if (200..300).contains(&status) {
            if text.trim().is_empty() {
                return Attempt::Done(Value::Object(Default::default()));
            }
            return match serde_json::from_str(&text) {
                Ok(v) => Attempt::Done(v),
                Err(e) => Attempt::Fail(GoogleError::Protocol(e.to_string())),
            };
        }
        // Google's error body: {"error": {"code", "message", "status"}}.
        let parsed: Option<Value> = serde_json::from_str(&text).ok();
        let error = GoogleError::Api {
            status,
            reason: parsed
                .as_ref()
                .and_then(|v| v["error"]["status"].as_str())
                .map(str::to_owned),
            message: parsed
                .as_ref()
                .and_then(|v| v["error"]["message"].as_str())
                .map(str::to_owned)
                .unwrap_or_else(|| format!("HTTP {status}")),
        };
        match status {
            401 => Attempt::Unauthorized(error, token),
            429 | 500..=599 => Attempt::Retry(error, wait),
            _ => Attempt::Fail(error),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::{HeaderValue, RETRY_AFTER};

    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        let mut h = HeaderMap::new();
        assert_eq!(retry_after(&h), None);
        h.insert(RETRY_AFTER, HeaderValue::from_static("7"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(7)));
        let when = (chrono::Utc::now() + chrono::Duration::seconds(30)).to_rfc2822();
        h.insert(RETRY_AFTER, HeaderValue::from_str(&when).unwrap());
        let wait = retry_after(&h).unwrap();
        assert!(
            wait <= Duration::from_secs(30) && wait >= Duration::from_secs(28),
            "{wait:?}"
        );
        h.insert(
            RETRY_AFTER,
            HeaderValue::from_static("Mon, 01 Jan 2001 00:00:00 GMT"),
        );
        assert_eq!(retry_after(&h), Some(Duration::ZERO));
        h.insert(RETRY_AFTER, HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&h), None);
    }

    #[test]
    fn faults_are_classified_as_google_documents_them() {
        let api = |status| GoogleError::Api {
            status,
            reason: None,
            message: String::new(),
        };
        assert!(api(429).is_transient() && api(503).is_transient());
        assert!(!api(400).is_transient() && !api(403).is_transient());
        assert!(api(403).is_configuration() && api(401).is_configuration());
        assert!(!api(404).is_configuration() && !api(500).is_configuration());
        assert!(GoogleError::Transport("reset".into()).is_transient());
    }
}
