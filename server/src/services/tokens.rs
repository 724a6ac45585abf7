//! Admin API tokens: random secrets shown once, stored as SHA-256 hashes.
//!
//! Tokens carry 256 bits of randomness, so a fast hash is enough: there is nothing
//! to brute-force, unlike a human password.

use super::{ServiceError, ServiceResult};
use crate::domain::event::{kinds, NewEvent};
use crate::storage::{AdminToken, Storage};
use base64::Engine;
use openssl::hash::{hash, MessageDigest};
use std::sync::Arc;

const PREFIX: &str = "mdm_";

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

pub struct TokenService {
    store: Arc<dyn Storage>,
    /// Hash of MDM_ADMIN_TOKEN, when set: a bootstrap token that needs no database row.
    env_token_hash: Option<String>,
}

impl TokenService {
    pub fn new(store: Arc<dyn Storage>, env_token: Option<&str>) -> Self {
        TokenService {
            store,
            env_token_hash: env_token.filter(|t| !t.is_empty()).map(hash_token),
        }
    }

    pub async fn create(&self, name: &str) -> ServiceResult<(AdminToken, String)> {
        let name = name.trim();
        if name.is_empty() || name.len() > 255 {
            return Err(ServiceError::BadRequest(
                "a token needs a name of 1 to 255 characters (who or what uses it)".into(),
            ));
        }
        let secret = generate_token();
        let token = self.store.create_token(name, &hash_token(&secret)).await?;
        self.store
            .record(
                NewEvent::new(
                    kinds::ADMIN_TOKEN_CREATED,
                    format!("admin token {name:?} created"),
                )
                .actor("server-host")
                .data(serde_json::json!({ "token_id": token.id, "name": name })),
            )
            .await?;
        Ok((token, secret))
    }

    pub async fn list(&self) -> ServiceResult<Vec<AdminToken>> {
        Ok(self.store.tokens().await?)
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

    pub async fn authenticate(&self, presented: &str) -> ServiceResult<AdminIdentity> {
        let hashed = hash_token(presented);
        if let Some(env) = &self.env_token_hash {
            if openssl::memcmp::eq(env.as_bytes(), hashed.as_bytes()) {
                return Ok(AdminIdentity {
                    name: "env:MDM_ADMIN_TOKEN".into(),
                });
            }
        }
        // The lookup is by hash, so timing reveals nothing about the secret itself.
        let token = self
            .store
            .token_by_hash(&hashed)
            .await?
            .ok_or_else(|| ServiceError::Unauthorized("invalid or revoked API token".into()))?;
        self.store
            .mark_token_used(&token.id, chrono::Utc::now())
            .await?;
        Ok(AdminIdentity {
            name: format!("token:{}", token.name),
        })
    }
}
