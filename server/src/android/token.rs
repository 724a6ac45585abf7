//! OAuth 2.0 access tokens for the service account: the JWT bearer grant (RFC 7523
//! section 2.1) at the key's `token_uri`, kept in memory only (never written: a
//! restart simply asks for a new one) and refreshed a while before it expires.

use super::key::ServiceAccountKey;
use std::time::{Duration, Instant};

pub const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// The scopes we ask for: AMAPI and Pub/Sub, in one token.
pub const SCOPES: &[&str] = &[
    "https://www.googleapis.com/auth/androidmanagement",
    "https://www.googleapis.com/auth/pubsub",
];
/// A token this close to expiry is replaced before use, so that a request never
/// travels with one that dies on the way.
const REFRESH_MARGIN: Duration = Duration::from_secs(300);

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The token endpoint refused the assertion (wrong or deleted key, clock skew):
    /// only the admin can fix it.
    #[error("Google refused the service account's credentials ({status}): {detail}")]
    Refused { status: u16, detail: String },
    /// Unreachable, 429 or 5xx: worth another try later.
    #[error("the token endpoint is unavailable: {0}")]
    Unavailable(String, Option<Duration>),
    #[error("{0}")]
    Key(#[from] super::key::KeyError),
}

struct Cached {
    token: String,
    refresh_at: Instant,
}

pub struct TokenSource {
    key: ServiceAccountKey,
    http: reqwest::Client,
    cached: tokio::sync::Mutex<Option<Cached>>,
}

#[derive(serde::Deserialize)]
struct TokenResponse {
    access_token: String,
    expires_in: Option<u64>,
}

impl TokenSource {
    pub fn new(key: ServiceAccountKey, http: reqwest::Client) -> Self {
        TokenSource {
            key,
            http,
            cached: tokio::sync::Mutex::new(None),
        }
    }

    pub fn key(&self) -> &ServiceAccountKey {
        &self.key
    }

    /// A valid access token: the cached one, or a new one. Callers queue on the lock
    /// while one of them refreshes, so a burst makes one token request, not many.
    pub async fn token(&self) -> Result<String, TokenError> {
        let mut cached = self.cached.lock().await;
        if let Some(c) = cached.as_ref() {
            if Instant::now() < c.refresh_at {
                return Ok(c.token.clone());
            }
        }
        let (token, lifetime) = self.exchange().await?;
        *cached = Some(Cached {
            token: token.clone(),
            refresh_at: Instant::now() + lifetime.saturating_sub(REFRESH_MARGIN),
        });
        Ok(token)
    }

    /// Forgets the cached token if it is still `rejected` (Google answered 401 to it),
    /// so that the next call asks for a new one.
    pub async fn invalidate(&self, rejected: &str) {
        let mut cached = self.cached.lock().await;
        if cached.as_ref().is_some_and(|c| c.token == rejected) {
            *cached = None;
        }
    }

    async fn exchange(&self) -> Result<(String, Duration), TokenError> {
        let assertion = self.key.assertion(SCOPES, chrono::Utc::now().timestamp())?;
        let response = self
            .http
            .post(&self.key.token_uri)
            .form(&[
                ("grant_type", GRANT_TYPE),
                ("assertion", assertion.as_str()),
            ])
            .send()
            .await
            .map_err(|e| TokenError::Unavailable(e.without_url().to_string(), None))?;
        let status = response.status();
        let retry_after = super::google::retry_after(response.headers());
        let body = response
            .text()
            .await
            .map_err(|e| TokenError::Unavailable(e.without_url().to_string(), None))?;
        if status.as_u16() == 429 || status.is_server_error() {
            return Err(TokenError::Unavailable(
                format!("HTTP {}", status.as_u16()),
                retry_after,
            ));
        }
        if !status.is_success() {
            // RFC 6749 section 5.2: {"error": ..., "error_description": ...}.
            let detail = serde_json::from_str::<serde_json::Value>(&body)
                .ok()
                .map(|v| {
                    let code = v["error"].as_str().unwrap_or_default().to_owned();
                    match v["error_description"].as_str() {
                        Some(d) => format!("{code}: {d}"),
                        None => code,
                    }
                })
                .filter(|d| !d.is_empty())
                .unwrap_or_else(|| "no reason given".into());
            return Err(TokenError::Refused {
                status: status.as_u16(),
                detail,
            });
        }
        let parsed: TokenResponse = serde_json::from_str(&body).map_err(|e| {
            TokenError::Unavailable(
                format!("the token response is not what RFC 6749 says: {e}"),
                None,
            )
        })?;
        // RFC 6749 makes expires_in optional; Google always sends it (3599).
        let lifetime = Duration::from_secs(parsed.expires_in.unwrap_or(3600));
        Ok((parsed.access_token, lifetime))
    }
}
