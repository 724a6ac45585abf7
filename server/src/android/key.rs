//! The Google service-account key file (`type: service_account`, as the Cloud console
//! downloads it) and the JWT assertion of the OAuth 2.0 JWT bearer grant (RFC 7523
//! section 2.1, as Google's "Using OAuth 2.0 for server to server applications"
//! describes it): RS256 over `{iss, scope, aud, iat, exp}`, signed with the key's RSA
//! private key.
//!
//! Signed with openssl, which the server already links for all its other
//! cryptography: a JWT crate (jsonwebtoken) would bring a second crypto stack (ring)
//! for one RS256 signature over two base64url JSON segments.

use base64::Engine;
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Private};
use openssl::sign::Signer;
use serde::Deserialize;

const B64URL: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;
/// Google accepts assertions valid for at most an hour.
pub const ASSERTION_LIFETIME_SECS: i64 = 3600;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyError {
    #[error("the service-account key is not JSON: {0}")]
    NotJson(String),
    #[error("the service-account key: {0}")]
    Invalid(String),
}

/// The fields of the key file we use; the others (client_id, auth_uri, ...) are ignored.
#[derive(Deserialize)]
struct KeyFile {
    #[serde(rename = "type")]
    kind: Option<String>,
    project_id: Option<String>,
    private_key_id: Option<String>,
    private_key: Option<String>,
    client_email: Option<String>,
    token_uri: Option<String>,
}

/// A parsed, checked service-account key. Debug leaves the private key out.
#[derive(Clone)]
pub struct ServiceAccountKey {
    pub project_id: String,
    pub client_email: String,
    pub private_key_id: Option<String>,
    /// Where access tokens come from. Google's own client libraries take it from the
    /// key file, and so do we: tests point it at a local fake.
    pub token_uri: String,
    key: PKey<Private>,
}

impl std::fmt::Debug for ServiceAccountKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceAccountKey")
            .field("project_id", &self.project_id)
            .field("client_email", &self.client_email)
            .field("token_uri", &self.token_uri)
            .finish_non_exhaustive()
    }
}

fn required(value: Option<String>, field: &str) -> Result<String, KeyError> {
    value
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
        .ok_or_else(|| KeyError::Invalid(format!("\"{field}\" is missing")))
}

impl ServiceAccountKey {
    /// Reads a key file's JSON; every problem is named, so the admin knows which file
    /// they downloaded wrongly (an OAuth client secret, an API key, a P12 key...).
    pub fn parse(json: &[u8]) -> Result<Self, KeyError> {
        let file: KeyFile =
            serde_json::from_slice(json).map_err(|e| KeyError::NotJson(e.to_string()))?;
        match file.kind.as_deref() {
            Some("service_account") => {}
            Some(other) => {
                return Err(KeyError::Invalid(format!(
                    "\"type\" is {other:?}, not \"service_account\": download a JSON key of a service account (IAM > Service accounts > Keys)"
                )))
            }
            None => return Err(KeyError::Invalid("\"type\" is missing".into())),
        }
        let project_id = required(file.project_id, "project_id")?;
        let client_email = required(file.client_email, "client_email")?;
        let token_uri = required(file.token_uri, "token_uri")?;
        if !(token_uri.starts_with("https://") || token_uri.starts_with("http://")) {
            return Err(KeyError::Invalid(format!(
                "\"token_uri\" is not an http(s) URL: {token_uri:?}"
            )));
        }
        let pem = required(file.private_key, "private_key")?;
        let key = PKey::private_key_from_pem(pem.as_bytes())
            .map_err(|_| KeyError::Invalid("\"private_key\" is not a PEM private key".into()))?;
        if key.rsa().is_err() {
            return Err(KeyError::Invalid(
                "\"private_key\" is not an RSA key (Google signs RS256)".into(),
            ));
        }
        Ok(ServiceAccountKey {
            project_id,
            client_email,
            private_key_id: file.private_key_id.filter(|k| !k.is_empty()),
            token_uri,
            key,
        })
    }

    /// The signed JWT for the token request: issued by the service account, for the
    /// token endpoint (`aud`), asking for `scopes`, valid from `now` for an hour.
    pub fn assertion(&self, scopes: &[&str], now: i64) -> Result<String, KeyError> {
        let mut header = serde_json::json!({ "alg": "RS256", "typ": "JWT" });
        if let Some(kid) = &self.private_key_id {
            header["kid"] = kid.clone().into();
        }
        let claims = serde_json::json!({
            "iss": self.client_email,
            "scope": scopes.join(" "),
            "aud": self.token_uri,
            "iat": now,
            "exp": now + ASSERTION_LIFETIME_SECS,
        });
        let signing_input = format!(
            "{}.{}",
            B64URL.encode(header.to_string()),
            B64URL.encode(claims.to_string())
        );
        let sign = || -> Result<Vec<u8>, openssl::error::ErrorStack> {
            let mut signer = Signer::new(MessageDigest::sha256(), &self.key)?;
            signer.update(signing_input.as_bytes())?;
            signer.sign_to_vec()
        };
        let signature = sign().map_err(|e| KeyError::Invalid(format!("signing failed: {e}")))?;
        Ok(format!("{signing_input}.{}", B64URL.encode(signature)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use openssl::rsa::Rsa;
    use openssl::sign::Verifier;

    fn key_json(kind: &str, token_uri: &str) -> (Vec<u8>, PKey<Private>) {
        let key = PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap();
        let pem = String::from_utf8(key.private_key_to_pem_pkcs8().unwrap()).unwrap();
        let json = serde_json::json!({
            "type": kind, "project_id": "town-hall", "private_key_id": "abc",
            "private_key": pem, "client_email": "mdm@town-hall.iam.gserviceaccount.com",
            "token_uri": token_uri,
        });
        (json.to_string().into_bytes(), key)
    }

    #[test]
    fn assertion_verifies_with_the_public_key_and_names_the_audience() {
        let (json, key) = key_json("service_account", "https://oauth2.googleapis.com/token");
        let parsed = ServiceAccountKey::parse(&json).unwrap();
        let jwt = parsed.assertion(&["s1", "s2"], 1_000).unwrap();
        let parts: Vec<&str> = jwt.split('.').collect();
        assert_eq!(parts.len(), 3);
        let mut verifier = Verifier::new(MessageDigest::sha256(), &key).unwrap();
        verifier
            .update(format!("{}.{}", parts[0], parts[1]).as_bytes())
            .unwrap();
        assert!(verifier.verify(&B64URL.decode(parts[2]).unwrap()).unwrap());
        let claims: serde_json::Value =
            serde_json::from_slice(&B64URL.decode(parts[1]).unwrap()).unwrap();
        assert_eq!(claims["aud"], "https://oauth2.googleapis.com/token");
        assert_eq!(claims["scope"], "s1 s2");
        assert_eq!(claims["exp"], 1_000 + ASSERTION_LIFETIME_SECS);
        let header: serde_json::Value =
            serde_json::from_slice(&B64URL.decode(parts[0]).unwrap()).unwrap();
        assert_eq!(header["kid"], "abc");
    }

    #[test]
    fn wrong_files_are_refused_with_the_reason() {
        let (json, _) = key_json("authorized_user", "https://x/token");
        assert!(
            matches!(ServiceAccountKey::parse(&json), Err(KeyError::Invalid(m)) if m.contains("service_account"))
        );
        let (json, _) = key_json("service_account", "file:///etc/passwd");
        assert!(ServiceAccountKey::parse(&json).is_err());
        assert!(matches!(
            ServiceAccountKey::parse(b"{not json"),
            Err(KeyError::NotJson(_))
        ));
        let bad_pem = br#"{"type":"service_account","project_id":"p","client_email":"e","token_uri":"https://t","private_key":"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"}"#;
        assert!(
            matches!(ServiceAccountKey::parse(bad_pem), Err(KeyError::Invalid(m)) if m.contains("PEM"))
        );
    }
}
