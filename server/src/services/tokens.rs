//! Admin API tokens: random secrets shown once, stored as SHA-256 hashes; the
//! `MDM_ADMIN_TOKEN` bootstrap's check.
//!
//! Tokens carry 256 bits of randomness, so a fast hash is enough: there is nothing
//! to brute-force, unlike a human password.

use super::{ServiceError, ServiceResult};
use crate::domain::event::{kinds, NewEvent};
use crate::storage::{ApiTokenRow, Storage};
use base64::Engine;
use openssl::hash::{hash, MessageDigest};
use std::sync::Arc;

const PREFIX: &str = "mdm_";

/// The shortest `MDM_ADMIN_TOKEN` the server starts with. Unlike generated tokens it
/// is chosen by a person; 32 characters of even a modest alphabet are out of reach of
/// online guessing, which the per-address limit on failed authentications
/// (http/limits.rs) slows down further.
pub const MIN_ENV_TOKEN_CHARS: usize = 32;

/// Checks the `MDM_ADMIN_TOKEN` the server was started with (unset or empty: none).
/// The error is the message for the operator.
pub fn check_env_token(token: Option<&str>) -> Result<(), String> {
    let Some(token) = token.filter(|t| !t.is_empty()) else {
        return Ok(());
    };
    if token.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(
            "MDM_ADMIN_TOKEN contains whitespace or control characters, which a Bearer header cannot carry; generate one with `openssl rand -hex 32`"
                .into(),
        );
    }
    let chars = token.chars().count();
    if chars < MIN_ENV_TOKEN_CHARS {
        return Err(format!(
            "MDM_ADMIN_TOKEN is {chars} characters long; it must have at least {MIN_ENV_TOKEN_CHARS} (generate one with `openssl rand -hex 32`, or leave it unset and use `mdm token create`)"
        ));
    }
    Ok(())
}

pub fn hash_token(token: &str) -> String {
    hash(MessageDigest::sha256(), token.as_bytes())
        .map(|d| hex::encode(&*d))
        .unwrap_or_default()
}

pub fn generate_token() -> String {
    let mut bytes = [0u8; 32];
    openssl::rand::rand_bytes(&mut bytes).expect("the OS random generator works");
    format!(
        "{PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

/// Who is calling the admin API.
#[derive(Debug, Clone)]
pub struct AdminIdentity {
    pub name: String,
}

/// `mdm token` on the server host: service-account tokens with a role and an expiry
/// (the API's `/tokens` creates an admin's own). Authentication itself is in
/// services/admins (sessions, tokens and the `MDM_ADMIN_TOKEN` bootstrap).
pub struct TokenService {
    store: Arc<dyn Storage>,
}

impl TokenService {
    pub fn new(store: Arc<dyn Storage>) -> Self {
        TokenService { store }
    }

    /// A service account's token with `role` (owner unless told), valid `days` (1 to
    /// `max_days`, `--token-max-days`).
    pub async fn create(
        &self,
        name: &str,
        role: &str,
        days: i64,
        max_days: i64,
    ) -> ServiceResult<(ApiTokenRow, String)> {
        let name = name.trim();
        if name.is_empty() || name.len() > 255 || name.contains(':') {
            return Err(ServiceError::BadRequest(
                "a token needs a name of 1 to 255 characters without ':' (who or what uses it)"
                    .into(),
            ));
        }
        if !(1..=max_days).contains(&days) {
            return Err(ServiceError::BadRequest(format!(
                "--expires-in-days must be 1 to {max_days} (--token-max-days)"
            )));
        }
        if !self.store.roles().await?.iter().any(|r| r.name == role) {
            return Err(ServiceError::BadRequest(format!("no role {role:?}")));
        }
        let secret = generate_token();
        let now = chrono::Utc::now();
        let row = ApiTokenRow {
            id: uuid::Uuid::new_v4().to_string(),
            name: name.to_owned(),
            admin_id: None,
            admin_name: None,
            role: role.to_owned(),
            created_at: now,
            created_by: Some("server-host".into()),
            expires_at: Some(now + chrono::Duration::days(days)),
            last_used_at: None,
            last_used_address: None,
            revoked_at: None,
        };
        self.store
            .create_api_token(
                row.clone(),
                &hash_token(&secret),
                NewEvent::new(
                    kinds::ADMIN_TOKEN_CREATED,
                    format!("admin token {name:?} created"),
                )
                .actor("server-host")
                .data(serde_json::json!({
                    "token_id": row.id, "name": name, "role": role,
                    "service_account": true, "expires_at": row.expires_at,
                })),
            )
            .await?;
        Ok((row, secret))
    }

    pub async fn list(&self) -> ServiceResult<Vec<ApiTokenRow>> {
        Ok(self.store.api_tokens(None).await?)
    }

    pub async fn revoke(&self, id_or_name: &str) -> ServiceResult<u64> {
        let revoked = self
            .store
            .revoke_tokens(id_or_name, chrono::Utc::now())
            .await?;
        if revoked == 0 {
            return Err(ServiceError::NotFound(format!(
                "no active token with id or name {id_or_name:?}"
            )));
        }
        self.store
            .record(
                NewEvent::new(
                    kinds::ADMIN_TOKEN_REVOKED,
                    format!("{revoked} admin token(s) {id_or_name:?} revoked"),
                )
                .actor("server-host")
                .data(serde_json::json!({ "token": id_or_name, "count": revoked })),
            )
            .await?;
        Ok(revoked)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_or_unsendable_env_tokens_are_refused() {
        assert!(check_env_token(None).is_ok());
        assert!(check_env_token(Some("")).is_ok());
        let err = check_env_token(Some("a")).unwrap_err();
        assert!(err.contains("1 characters") && err.contains("32"), "{err}");
        assert!(check_env_token(Some(&"x".repeat(31))).is_err());
        assert!(check_env_token(Some(&"x".repeat(32))).is_ok());
        assert!(check_env_token(Some(&format!("{} ", "x".repeat(40)))).is_err());
        assert!(check_env_token(Some(&generate_token())).is_ok());
    }
}
