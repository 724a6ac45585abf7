//! The office's password rules for administrative accounts, and Argon2id.
//!
//! Defaults are the policy's: at least 14 characters, at most 20 days old (then the
//! admin must change it at the next login), none of the last 5 again, not the account
//! name nor containing it. Hashes are Argon2id PHC strings (the `argon2` crate's
//! defaults: 19 MiB, 2 passes), computed off the async workers.

use crate::storage::LockoutRule;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::Argon2;

#[derive(Debug, Clone)]
pub struct PasswordPolicy {
    pub min_chars: usize,
    pub max_age_days: i64,
    /// Earlier passwords that may not be used again.
    pub history: u64,
    pub lockout: LockoutRule,
}

impl Default for PasswordPolicy {
    fn default() -> Self {
        PasswordPolicy {
            min_chars: 14,
            max_age_days: 20,
            history: 5,
            // 5 failures in a row lock the account for a minute, doubling with each
            // further failure, up to an hour.
            lockout: LockoutRule {
                threshold: 5,
                base_secs: 60,
                max_secs: 3600,
            },
        }
    }
}

impl PasswordPolicy {
    /// Every rule the password breaks (empty: it may be used). The history is checked
    /// separately ([`matches_any`]), since it needs the stored hashes.
    pub fn problems(&self, account: &str, display_name: &str, password: &str) -> Vec<String> {
        let mut out = Vec::new();
        let chars = password.chars().count();
        if chars < self.min_chars {
            out.push(format!(
                "a password must have at least {} characters (this one has {chars})",
                self.min_chars
            ));
        }
        if chars > 1024 {
            out.push("a password may have at most 1024 characters".into());
        }
        let lower = password.to_lowercase();
        let account = account.to_lowercase();
        if !account.is_empty() && lower.contains(&account) {
            out.push("a password must not be or contain the account name".into());
        }
        // Parts of the person's name (3 letters or more) are as guessable.
        for part in display_name
            .to_lowercase()
            .split(|c: char| !c.is_alphanumeric())
            .filter(|p| p.chars().count() >= 4)
        {
            if lower.contains(part) {
                out.push("a password must not contain the account holder's name".into());
                break;
            }
        }
        if password
            .chars()
            .all(|c| c == password.chars().next().unwrap_or(' '))
            && chars > 0
        {
            out.push("a password must not be one character repeated".into());
        }
        out
    }

    pub fn expired(
        &self,
        changed_at: chrono::DateTime<chrono::Utc>,
        now: chrono::DateTime<chrono::Utc>,
    ) -> bool {
        now - changed_at > chrono::Duration::days(self.max_age_days)
    }
}

/// Argon2id hash of a password (PHC string with a random salt).
pub async fn hash(password: String) -> Result<String, String> {
    tokio::task::spawn_blocking(move || {
        Argon2::default()
            .hash_password(password.as_bytes())
            .map(|h| h.to_string())
            .map_err(|e| format!("hashing the password: {e}"))
    })
    .await
    .map_err(|e| format!("hashing the password: {e}"))?
}

/// Whether `password` matches the PHC hash.
pub async fn verify(password: String, hash: String) -> bool {
    tokio::task::spawn_blocking(move || verify_blocking(&password, &hash))
        .await
        .unwrap_or(false)
}

fn verify_blocking(password: &str, hash: &str) -> bool {
    match PasswordHash::new(hash) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// Whether `password` is one of these hashes (the history).
pub async fn matches_any(password: String, hashes: Vec<String>) -> bool {
    tokio::task::spawn_blocking(move || hashes.iter().any(|h| verify_blocking(&password, h)))
        .await
        .unwrap_or(false)
}

/// A hash no password matches, verified for unknown account names so that a login
/// takes as long whether the account exists or not.
pub fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| {
        let mut random = [0u8; 32];
        openssl::rand::rand_bytes(&mut random).expect("the OS random generator works");
        Argon2::default()
            .hash_password(hex::encode(random).as_bytes())
            .map(|h| h.to_string())
            .unwrap_or_default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_office_rules() {
        let p = PasswordPolicy::default();
        assert!(p.problems("alice", "Alice Nowak", "short").len() == 1);
        assert!(p
            .problems("alice", "Alice Nowak", "correct horse battery")
            .is_empty());
        assert!(!p
            .problems("alice", "Alice Nowak", "xxALICExx-staple-42")
            .is_empty());
        assert!(!p
            .problems("alice", "Alice Nowak", "nowak-correct-horse")
            .is_empty());
        assert!(!p.problems("bob", "", &"a".repeat(20)).is_empty());
    }

    #[tokio::test]
    async fn argon2id_round_trip() {
        let h = hash("correct horse battery".into()).await.unwrap();
        assert!(h.starts_with("$argon2id$"), "{h}");
        assert!(verify("correct horse battery".into(), h.clone()).await);
        assert!(!verify("wrong horse battery".into(), h.clone()).await);
        assert!(matches_any("correct horse battery".into(), vec![h]).await);
        assert!(!verify("x".into(), dummy_hash().to_owned()).await);
    }
}
