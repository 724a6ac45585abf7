//! The MDM push certificate: reading it (PEM, or PKCS#12 as Apple's tools and
//! Keychain export it, including the legacy RC2/3DES encryption OpenSSL 3 only reads
//! with its legacy provider), its topic and its expiry.

use chrono::{DateTime, TimeZone, Utc};
use openssl::nid::Nid;
use openssl::pkcs12::Pkcs12;
use openssl::pkey::{PKey, Private};
use openssl::x509::X509;
use std::sync::OnceLock;

/// Warn this long before the push certificate expires: after that the whole fleet
/// silently stops receiving pushes.
pub const EXPIRY_WARNING_DAYS: i64 = 30;
const TOPIC_PREFIX: &str = "com.apple.mgmt.";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PushCertError {
    #[error("the certificate is not valid PEM: {0}")]
    BadCertificate(String),
    #[error("the private key is not valid PEM: {0}")]
    BadKey(String),
    #[error("the private key does not belong to the certificate")]
    KeyMismatch,
    #[error("the PKCS#12 file cannot be opened: wrong password, or not a PKCS#12 file")]
    BadPkcs12,
    #[error("the PKCS#12 file holds no certificate and private key")]
    IncompletePkcs12,
    #[error("the certificate has no topic: its subject carries no UID attribute (is this an MDM push certificate from Apple?)")]
    NoTopic,
    #[error("the certificate's topic {0:?} is not an MDM topic (com.apple.mgmt.External.<uuid>)")]
    NotMdmTopic(String),
    #[error("the certificate expired on {0}; renew it at Apple's Push Certificates Portal")]
    Expired(String),
}

/// A push certificate with its key, checked.
#[derive(Clone)]
pub struct PushCertificate {
    pub cert: X509,
    pub key: PKey<Private>,
    pub topic: String,
    pub not_after: DateTime<Utc>,
    pub not_before: DateTime<Utc>,
    pub subject: String,
}

impl std::fmt::Debug for PushCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PushCertificate")
            .field("topic", &self.topic)
            .field("not_after", &self.not_after)
            .finish_non_exhaustive()
    }
}

/// OpenSSL 3 keeps RC2 and other old PKCS#12 ciphers in its "legacy" provider;
/// loading it (with the default provider kept) lets us read such files.
pub(crate) fn load_legacy_provider() {
    static PROVIDERS: OnceLock<Vec<openssl::provider::Provider>> = OnceLock::new();
    PROVIDERS.get_or_init(|| {
        ["default", "legacy"]
            .into_iter()
            .filter_map(|name| match openssl::provider::Provider::try_load(None, name, true) {
                Ok(p) => Some(p),
                Err(e) => {
                    tracing::warn!(provider = name, error = %e, "OpenSSL provider not available; legacy PKCS#12 files cannot be read");
                    None
                }
            })
            .collect()
    });
}

fn asn1_to_utc(t: &openssl::asn1::Asn1TimeRef) -> Result<DateTime<Utc>, PushCertError> {
    enrollment::identity::unix_time(t)
        .and_then(|secs| Utc.timestamp_opt(secs, 0).single())
        .ok_or_else(|| PushCertError::BadCertificate("unreadable validity dates".into()))
}

/// The topic of a push certificate: its subject's UID (0.9.2342.19200300.100.1.1).
pub fn topic_of(cert: &X509) -> Result<String, PushCertError> {
    let uid = cert
        .subject_name()
        .entries_by_nid(Nid::USERID)
        .next()
        .and_then(|e| e.data().to_string().ok())
        .ok_or(PushCertError::NoTopic)?;
    if !uid.starts_with(TOPIC_PREFIX) {
        return Err(PushCertError::NotMdmTopic(uid));
    }
    Ok(uid)
}

impl PushCertificate {
    pub fn from_pem(
        cert_pem: &[u8],
        key_pem: &[u8],
        now: DateTime<Utc>,
    ) -> Result<Self, PushCertError> {
        let cert =
            X509::from_pem(cert_pem).map_err(|e| PushCertError::BadCertificate(first_error(&e)))?;
        let key = PKey::private_key_from_pem(key_pem)
            .map_err(|e| PushCertError::BadKey(first_error(&e)))?;
        Self::checked(cert, key, now)
    }

    pub fn from_pkcs12(
        der: &[u8],
        password: &str,
        now: DateTime<Utc>,
    ) -> Result<Self, PushCertError> {
        load_legacy_provider();
        let parsed = Pkcs12::from_der(der)
            .and_then(|p| p.parse2(password))
            .map_err(|_| PushCertError::BadPkcs12)?;
        match (parsed.cert, parsed.pkey) {
            (Some(cert), Some(key)) => Self::checked(cert, key, now),
            _ => Err(PushCertError::IncompletePkcs12),
        }
    }

    fn checked(cert: X509, key: PKey<Private>, now: DateTime<Utc>) -> Result<Self, PushCertError> {
        let public = cert
            .public_key()
            .map_err(|e| PushCertError::BadCertificate(first_error(&e)))?;
        if !public.public_eq(&key) {
            return Err(PushCertError::KeyMismatch);
        }
        let topic = topic_of(&cert)?;
        let not_after = asn1_to_utc(cert.not_after())?;
        if not_after <= now {
            return Err(PushCertError::Expired(not_after.to_rfc3339()));
        }
        let subject = enrollment::identity::name_to_string(cert.subject_name());
        Ok(PushCertificate {
            not_before: asn1_to_utc(cert.not_before())?,
            cert,
            key,
            topic,
            not_after,
            subject,
        })
    }

    pub fn cert_pem(&self) -> Vec<u8> {
        self.cert.to_pem().unwrap_or_default()
    }

    /// PKCS#8 PEM of the key, for sealing at rest and for the TLS client identity.
    pub fn key_pem(&self) -> Vec<u8> {
        self.key.private_key_to_pem_pkcs8().unwrap_or_default()
    }

    pub fn fingerprint(&self) -> String {
        enrollment::identity::fingerprint(&self.cert)
    }

    pub fn days_left(&self, now: DateTime<Utc>) -> i64 {
        (self.not_after - now).num_days()
    }

    /// A warning an admin must read, from 30 days before expiry.
    pub fn expiry_warning(&self, now: DateTime<Utc>) -> Option<String> {
        crate::services::push::expiry_warning(self.not_after, now)
    }
}

fn first_error(e: &openssl::error::ErrorStack) -> String {
    e.errors()
        .first()
        .map(|err| err.reason().unwrap_or("unreadable").to_owned())
        .unwrap_or_else(|| "unreadable".into())
}
