//! Signing of configuration profiles, so that a device shows who made a profile and
//! that nobody changed it on the way.
//!
//! A signed `.mobileconfig` is a DER CMS SignedData (RFC 5652) whose encapsulated
//! content is the plist itself (attached, not detached), with the signer certificate
//! and its chain inside. iOS and macOS show "Verified" when that chain ends in a root
//! they trust (a public CA, or a root the admin installed), "Not Verified" otherwise;
//! either way the signature protects the profile against modification.

use std::time::{SystemTime, UNIX_EPOCH};

use openssl::asn1::{Asn1Integer, Asn1Time};
use openssl::bn::{BigNum, MsbOption};
use openssl::cms::{CMSOptions, CmsContentInfo};
use openssl::error::ErrorStack;
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{Id, PKey, Private};
use openssl::rsa::Rsa;
use openssl::stack::Stack;
use openssl::x509::extension::{
    AuthorityKeyIdentifier, BasicConstraints, ExtendedKeyUsage, KeyUsage, SubjectKeyIdentifier,
};
use openssl::x509::{X509Builder, X509NameBuilder, X509};

const KEY_BITS: u32 = 2048;
const MIN_RSA_BITS: u32 = 2048;
const MAX_YEARS: u32 = 30;
/// Back-dating so that a device whose clock runs a little behind still accepts a
/// freshly generated certificate.
const CLOCK_SKEW_SECS: i64 = 10 * 60;

#[derive(Debug, thiserror::Error)]
pub enum SigningError {
    #[error("invalid parameter: {0}")]
    InvalidParameter(String),
    #[error("{what} is not readable PEM: {detail}")]
    BadPem { what: &'static str, detail: String },
    #[error("the private key is encrypted; decrypt it first (openssl pkey -in key.pem -out key-decrypted.pem) and store the result securely")]
    EncryptedKey,
    #[error("the private key does not belong to the signing certificate")]
    KeyMismatch,
    #[error("unsupported signing key: {0} (RSA of at least 2048 bits or EC required)")]
    UnsupportedKey(String),
    #[error("the signing certificate expired on {0}")]
    Expired(String),
    #[error("the chain does not contain the certificate that issued the signing certificate (issuer: {0}); give the intermediate certificate(s) of the CA")]
    ChainMismatch(String),
    #[error("openssl: {0}")]
    Crypto(#[from] ErrorStack),
}

/// The certificate and key that sign profiles, and the intermediates a device needs
/// to build the path to a root it trusts (the root itself may be left out).
pub struct SigningIdentity {
    pub cert: X509,
    pub key: PKey<Private>,
    pub chain: Vec<X509>,
}

impl std::fmt::Debug for SigningIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningIdentity")
            .field("subject", &self.cert.subject_name())
            .field("key", &"<redacted>")
            .field("chain", &self.chain.len())
            .finish()
    }
}

impl SigningIdentity {
    /// A self-signed RSA 2048 identity, for when the admin imports none.
    ///
    /// Extensions, and why:
    /// * `basicConstraints` critical, CA:FALSE: it signs profiles, never certificates.
    /// * `keyUsage` critical, digitalSignature only: a CMS signature is exactly that.
    /// * `extendedKeyUsage` emailProtection: CMS SignedData is the S/MIME format, and
    ///   OpenSSL's default purpose for `cms -verify` is S/MIME signing, which accepts a
    ///   certificate without EKU or with emailProtection but not with codeSigning. So
    ///   `openssl cms -verify` passes both with and without `-purpose any`. iOS and
    ///   macOS check the signature and build a chain but require no particular EKU for
    ///   profiles (TLS server certificates from public CAs, serverAuth only, show as
    ///   "Verified"), so emailProtection costs nothing there.
    ///
    /// Being self-signed, it makes the device show the profile as "Not Verified" (the
    /// signature still proves integrity); import a certificate from a public CA with
    /// [`SigningIdentity::from_pem`] for "Verified".
    pub fn generate(
        common_name: &str,
        organization: &str,
        years: u32,
    ) -> Result<Self, SigningError> {
        if common_name.trim().is_empty() {
            return Err(SigningError::InvalidParameter(
                "the common name must not be empty".into(),
            ));
        }
        if years == 0 || years > MAX_YEARS {
            return Err(SigningError::InvalidParameter(format!(
                "validity must be 1 to {MAX_YEARS} years, not {years}"
            )));
        }
        let key = PKey::from_rsa(Rsa::generate(KEY_BITS)?)?;
        let mut name = X509NameBuilder::new()?;
        name.append_entry_by_nid(Nid::COMMONNAME, common_name)?;
        if !organization.trim().is_empty() {
            name.append_entry_by_nid(Nid::ORGANIZATIONNAME, organization)?;
        }
        let name = name.build();

        let mut b = X509Builder::new()?;
        b.set_version(2)?;
        let serial = random_serial()?;
        b.set_serial_number(&serial)?;
        b.set_subject_name(&name)?;
        b.set_issuer_name(&name)?;
        b.set_pubkey(&key)?;
        let now = unix_now();
        let not_before = Asn1Time::from_unix(now - CLOCK_SKEW_SECS)?;
        b.set_not_before(&not_before)?;
        let not_after = Asn1Time::days_from_now(years * 365 + years / 4)?;
        b.set_not_after(&not_after)?;
        b.append_extension(BasicConstraints::new().critical().build()?)?;
        b.append_extension(KeyUsage::new().critical().digital_signature().build()?)?;
        b.append_extension(ExtendedKeyUsage::new().email_protection().build()?)?;
        let ski = SubjectKeyIdentifier::new().build(&b.x509v3_context(None, None))?;
        b.append_extension(ski)?;
        let aki = AuthorityKeyIdentifier::new()
            .keyid(true)
            .build(&b.x509v3_context(None, None))?;
        b.append_extension(aki)?;
        b.sign(&key, MessageDigest::sha256())?;
        Ok(SigningIdentity {
            cert: b.build(),
            key,
            chain: Vec::new(),
        })
    }

    /// An identity imported from PEM: the certificate, its unencrypted private key
    /// (PKCS#8 or traditional), and optionally the chain (intermediates, the root may
    /// be included). A "fullchain" file that repeats the signing certificate is fine:
    /// that copy is dropped.
    ///
    /// Checks that the key belongs to the certificate, that the certificate has not
    /// expired, and that the chain contains the certificate's issuer, because each of
    /// these mistakes otherwise shows up only as "Not Verified" on the device.
    pub fn from_pem(
        cert_pem: &[u8],
        key_pem: &[u8],
        chain_pem: Option<&[u8]>,
    ) -> Result<Self, SigningError> {
        let cert = X509::from_pem(cert_pem).map_err(|e| SigningError::BadPem {
            what: "the signing certificate",
            detail: e.to_string(),
        })?;
        if contains(key_pem, b"ENCRYPTED") {
            return Err(SigningError::EncryptedKey);
        }
        let key = PKey::private_key_from_pem(key_pem).map_err(|e| SigningError::BadPem {
            what: "the private key",
            detail: e.to_string(),
        })?;
        match key.id() {
            Id::RSA if key.bits() < MIN_RSA_BITS => {
                return Err(SigningError::UnsupportedKey(format!(
                    "RSA {} bits",
                    key.bits()
                )))
            }
            Id::RSA | Id::EC => {}
            other => return Err(SigningError::UnsupportedKey(format!("{other:?}"))),
        }
        if !cert.public_key()?.public_eq(&key) {
            return Err(SigningError::KeyMismatch);
        }
        let now = Asn1Time::days_from_now(0)?;
        if cert.not_after() < now {
            return Err(SigningError::Expired(cert.not_after().to_string()));
        }

        let leaf_der = cert.to_der()?;
        let mut chain = Vec::new();
        if let Some(pem) = chain_pem {
            let all = X509::stack_from_pem(pem).map_err(|e| SigningError::BadPem {
                what: "the certificate chain",
                detail: e.to_string(),
            })?;
            if all.is_empty() && !pem.iter().all(u8::is_ascii_whitespace) {
                return Err(SigningError::BadPem {
                    what: "the certificate chain",
                    detail: "no certificate found".into(),
                });
            }
            for c in all {
                if c.to_der()? != leaf_der {
                    chain.push(c);
                }
            }
        }
        if !chain.is_empty() {
            let leaf_key_ok = |issuer: &X509| {
                issuer
                    .public_key()
                    .and_then(|k| cert.verify(&k))
                    .unwrap_or(false)
            };
            if !chain.iter().any(leaf_key_ok) {
                return Err(SigningError::ChainMismatch(name_text(cert.issuer_name())));
            }
        }
        Ok(SigningIdentity { cert, key, chain })
    }

    /// The signing certificate as PEM, for storage next to [`Self::key_pem`].
    pub fn cert_pem(&self) -> Result<Vec<u8>, SigningError> {
        Ok(self.cert.to_pem()?)
    }

    /// The key as unencrypted PKCS#8 PEM: the caller seals it before storing it.
    pub fn key_pem(&self) -> Result<Vec<u8>, SigningError> {
        Ok(self.key.private_key_to_pem_pkcs8()?)
    }

    /// The chain as concatenated PEM (empty when there is none).
    pub fn chain_pem(&self) -> Result<Vec<u8>, SigningError> {
        let mut out = Vec::new();
        for c in &self.chain {
            out.extend_from_slice(&c.to_pem()?);
        }
        Ok(out)
    }
}

/// Signs a profile: DER CMS SignedData, content attached, signer certificate and chain
/// included, SHA-256 (OpenSSL's default digest for RSA and EC keys; the tests pin it).
/// Serve the result as `application/x-apple-aspen-config`.
pub fn sign_profile(
    profile_xml: &[u8],
    identity: &SigningIdentity,
) -> Result<Vec<u8>, SigningError> {
    if profile_xml.is_empty() {
        return Err(SigningError::InvalidParameter(
            "the profile to sign is empty".into(),
        ));
    }
    let mut certs = Stack::new()?;
    for c in &identity.chain {
        certs.push(c.clone())?;
    }
    // BINARY: without it OpenSSL canonicalises line endings to CRLF as for S/MIME
    // text, and the device would get (and verify) a different plist than we built.
    // NOSMIMECAP: the S/MIME capabilities attribute lists ciphers for mail replies,
    // meaningless for a profile.
    let flags = CMSOptions::BINARY | CMSOptions::NOSMIMECAP;
    let cms = CmsContentInfo::sign(
        Some(&identity.cert),
        Some(&identity.key),
        Some(&certs),
        Some(profile_xml),
        flags,
    )?;
    Ok(cms.to_der()?)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn name_text(name: &openssl::x509::X509NameRef) -> String {
    name.entries()
        .map(|e| {
            let key = e.object().nid().short_name().unwrap_or("?");
            let value = e.data().to_string().unwrap_or_default();
            format!("{key}={value}")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// 128 random bits, as for every certificate we make: unpredictable serials keep a
/// chosen-prefix collision on the signature out of reach.
fn random_serial() -> Result<Asn1Integer, ErrorStack> {
    let mut serial = BigNum::new()?;
    loop {
        serial.rand(128, MsbOption::MAYBE_ZERO, false)?;
        if serial.num_bits() > 0 {
            return serial.to_asn1_integer();
        }
    }
}
