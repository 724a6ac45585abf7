//! The device certificate authority: makes its own self-signed certificate and
//! issues device identity certificates from certificate signing requests.
//!
//! The CA key is RSA because SCEP clients (Apple's included) encrypt their request
//! to the CA certificate with RSA key transport; the same key signs the replies.

use std::time::{SystemTime, UNIX_EPOCH};

use openssl::asn1::{Asn1Integer, Asn1Object, Asn1OctetString, Asn1Time};
use openssl::bn::{BigNum, MsbOption};
use openssl::error::ErrorStack;
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{Id, PKey, PKeyRef, Private, Public};
use openssl::rsa::Rsa;
use openssl::x509::extension::{
    AuthorityKeyIdentifier, BasicConstraints, ExtendedKeyUsage, KeyUsage, SubjectKeyIdentifier,
};
use openssl::x509::{X509Builder, X509Extension, X509Name, X509NameBuilder, X509Req, X509};

/// Device certificates are back-dated by this much so that a device whose clock runs
/// a little behind does not reject a certificate that is "not yet valid".
const CLOCK_SKEW_SECS: i64 = 10 * 60;

const CA_KEY_BITS: u32 = 2048;
const MIN_RSA_BITS: u32 = 2048;

#[derive(Debug, thiserror::Error)]
pub enum CaError {
    #[error("unsupported key: {0} (RSA of at least 2048 bits or EC P-256 required)")]
    UnsupportedKey(String),
    #[error("the certificate signing request's signature does not verify")]
    BadCsrSignature,
    #[error("CA certificate or key is not readable PEM: {0}")]
    BadPem(String),
    #[error("the CA key does not belong to the CA certificate")]
    KeyMismatch,
    #[error("invalid parameter: {0}")]
    InvalidParameter(String),
    #[error("openssl: {0}")]
    Crypto(#[from] ErrorStack),
}

/// Apple's SCEP payload `Key Usage`: a bit mask where 1 asks for a signing key and
/// 4 for an encryption key (5 for both). No bit set means no preference, which we
/// treat as both, as the payload's default does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyUsageBits(pub u8);

impl KeyUsageBits {
    pub const SIGNING: KeyUsageBits = KeyUsageBits(1);
    pub const ENCRYPTION: KeyUsageBits = KeyUsageBits(4);
    pub const BOTH: KeyUsageBits = KeyUsageBits(5);

    pub fn signing(self) -> bool {
        self.0 & Self::SIGNING.0 != 0 || self.0 & Self::BOTH.0 == 0
    }

    pub fn encryption(self) -> bool {
        self.0 & Self::ENCRYPTION.0 != 0 || self.0 & Self::BOTH.0 == 0
    }
}

pub struct CertificateAuthority {
    cert: X509,
    key: PKey<Private>,
    /// Where this CA's CRL is published, written into every certificate it issues.
    crl_url: Option<String>,
}

impl std::fmt::Debug for CertificateAuthority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertificateAuthority")
            .field("subject", &self.cert.subject_name())
            .field("key", &"<redacted>")
            .finish()
    }
}

impl CertificateAuthority {
    /// New self-signed CA: RSA 2048, SHA-256, valid for `years`.
    pub fn generate(common_name: &str, organization: &str, years: u32) -> Result<Self, CaError> {
        if years == 0 {
            return Err(CaError::InvalidParameter(
                "validity must be at least one year".into(),
            ));
        }
        let key = PKey::from_rsa(Rsa::generate(CA_KEY_BITS)?)?;
        let mut name = X509NameBuilder::new()?;
        name.append_entry_by_nid(Nid::COMMONNAME, common_name)?;
        if !organization.is_empty() {
            name.append_entry_by_nid(Nid::ORGANIZATIONNAME, organization)?;
        }
        let name = name.build();

        let mut b = X509Builder::new()?;
        b.set_version(2)?;
        let serial_number = random_serial()?;
        b.set_serial_number(&serial_number)?;
        b.set_subject_name(&name)?;
        b.set_issuer_name(&name)?;
        b.set_pubkey(&key)?;
        let not_before = backdated_now()?;
        b.set_not_before(&not_before)?;
        let not_after = Asn1Time::days_from_now(days_in_years(years)?)?;
        b.set_not_after(&not_after)?;
        b.append_extension(BasicConstraints::new().critical().ca().build()?)?;
        // digitalSignature and keyEncipherment too: this key also signs CertReps and
        // receives the content-encryption keys of SCEP requests.
        b.append_extension(
            KeyUsage::new()
                .critical()
                .key_cert_sign()
                .crl_sign()
                .digital_signature()
                .key_encipherment()
                .build()?,
        )?;
        let ski = SubjectKeyIdentifier::new().build(&b.x509v3_context(None, None))?;
        b.append_extension(ski)?;
        b.sign(&key, MessageDigest::sha256())?;
        Ok(CertificateAuthority {
            cert: b.build(),
            key,
            crl_url: None,
        })
    }

    /// Names the URL of this CA's CRL in the certificates it issues from now on (a
    /// CRL Distribution Points extension), for relying parties that check revocation
    /// by it, as Windows NPS does for EAP-TLS by default.
    pub fn set_crl_distribution_point(&mut self, url: &str) -> Result<(), CaError> {
        crate::crl::distribution_points_der(url)
            .map_err(|e| CaError::InvalidParameter(format!("CRL URL {url:?}: {e}")))?;
        self.crl_url = Some(url.to_owned());
        Ok(())
    }

    /// Loads a CA from PEM (the key as PKCS#8 or traditional PEM, unencrypted).
    pub fn from_pem(cert_pem: &[u8], key_pem: &[u8]) -> Result<Self, CaError> {
        let cert = X509::from_pem(cert_pem).map_err(|e| CaError::BadPem(e.to_string()))?;
        let key =
            PKey::private_key_from_pem(key_pem).map_err(|e| CaError::BadPem(e.to_string()))?;
        if !cert.public_key()?.public_eq(&key) {
            return Err(CaError::KeyMismatch);
        }
        Ok(CertificateAuthority {
            cert,
            key,
            crl_url: None,
        })
    }

    pub fn cert(&self) -> &X509 {
        &self.cert
    }

    pub fn key(&self) -> &PKey<Private> {
        &self.key
    }

    pub fn cert_pem(&self) -> Vec<u8> {
        self.cert.to_pem().expect("a built certificate encodes")
    }

    /// The key as unencrypted PKCS#8 PEM: the caller seals it before storing it.
    pub fn key_pem(&self) -> Vec<u8> {
        self.key
            .private_key_to_pem_pkcs8()
            .expect("a loaded key encodes")
    }

    /// Issues a device identity certificate for the CSR's public key, after checking
    /// the CSR's self-signature (proof of possession of the private key).
    pub fn issue(
        &self,
        csr: &X509Req,
        subject: &X509Name,
        days: u32,
        usage: KeyUsageBits,
    ) -> Result<X509, CaError> {
        if days == 0 {
            return Err(CaError::InvalidParameter(
                "validity must be at least one day".into(),
            ));
        }
        let public = csr.public_key()?;
        let is_ec = check_device_key(&public)?;
        if !csr.verify(&public).unwrap_or(false) {
            return Err(CaError::BadCsrSignature);
        }

        let mut b = X509Builder::new()?;
        b.set_version(2)?;
        let serial_number = random_serial()?;
        b.set_serial_number(&serial_number)?;
        b.set_subject_name(subject)?;
        b.set_issuer_name(self.cert.subject_name())?;
        b.set_pubkey(&public)?;
        let not_before = backdated_now()?;
        b.set_not_before(&not_before)?;
        let not_after = Asn1Time::days_from_now(days)?;
        b.set_not_after(&not_after)?;
        b.append_extension(BasicConstraints::new().build()?)?;
        let mut ku = KeyUsage::new();
        ku.critical();
        if usage.signing() {
            ku.digital_signature();
        }
        if usage.encryption() {
            // An EC key cannot encrypt a content key (key transport); the equivalent
            // for EC is key agreement.
            if is_ec {
                ku.key_agreement();
            } else {
                ku.key_encipherment();
            }
        }
        b.append_extension(ku.build()?)?;
        b.append_extension(ExtendedKeyUsage::new().client_auth().build()?)?;
        let ski = SubjectKeyIdentifier::new().build(&b.x509v3_context(Some(&self.cert), None))?;
        b.append_extension(ski)?;
        let aki = AuthorityKeyIdentifier::new()
            .keyid(true)
            .build(&b.x509v3_context(Some(&self.cert), None))?;
        b.append_extension(aki)?;
        if let Some(url) = &self.crl_url {
            let der = crate::crl::distribution_points_der(url)
                .map_err(|e| CaError::InvalidParameter(e.to_string()))?;
            let oid = Asn1Object::from_str("2.5.29.31")?;
            let value = Asn1OctetString::new_from_bytes(&der)?;
            b.append_extension(X509Extension::new_from_der(&oid, false, &value)?)?;
        }
        b.sign(&self.key, MessageDigest::sha256())?;
        Ok(b.build())
    }

    /// True if `cert` carries this CA's signature and names this CA as its issuer.
    pub fn issued(&self, cert: &X509) -> bool {
        let same_issuer = cert
            .issuer_name()
            .try_cmp(self.cert.subject_name())
            .map(|o| o.is_eq())
            .unwrap_or(false);
        same_issuer && cert.verify(&self.key).unwrap_or(false)
    }
}

/// Returns whether the key is EC, after checking it is one we issue for.
fn check_device_key(key: &PKeyRef<Public>) -> Result<bool, CaError> {
    match key.id() {
        Id::RSA => {
            let bits = key.bits();
            if bits < MIN_RSA_BITS {
                return Err(CaError::UnsupportedKey(format!("RSA {bits} bits")));
            }
            Ok(false)
        }
        Id::EC => {
            let curve = key.ec_key()?.group().curve_name();
            if curve != Some(Nid::X9_62_PRIME256V1) {
                let name = curve
                    .and_then(|n| n.short_name().ok())
                    .unwrap_or("unnamed curve");
                return Err(CaError::UnsupportedKey(format!("EC {name}")));
            }
            Ok(true)
        }
        other => Err(CaError::UnsupportedKey(format!("key type {other:?}"))),
    }
}

/// 128 random bits: unpredictable serials are what keeps a chosen-prefix collision
/// on the certificate's signature out of reach.
fn random_serial() -> Result<Asn1Integer, ErrorStack> {
    let mut serial = BigNum::new()?;
    loop {
        serial.rand(128, MsbOption::MAYBE_ZERO, false)?;
        if serial.num_bits() > 0 {
            return serial.to_asn1_integer();
        }
    }
}

fn backdated_now() -> Result<Asn1Time, ErrorStack> {
    Asn1Time::from_unix(now() - CLOCK_SKEW_SECS)
}

fn days_in_years(years: u32) -> Result<u32, CaError> {
    // 365.25 days a year, so a long-lived CA does not fall short by a leap day a year.
    years
        .checked_mul(1461)
        .map(|d| d / 4)
        .ok_or_else(|| CaError::InvalidParameter(format!("{years} years is too long")))
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use openssl::x509::X509ReqBuilder;

    fn csr_for(key: &PKey<Private>) -> X509Req {
        let mut b = X509ReqBuilder::new().unwrap();
        b.set_version(0).unwrap();
        b.set_pubkey(key).unwrap();
        b.sign(key, MessageDigest::sha256()).unwrap();
        b.build()
    }

    fn name(cn: &str) -> X509Name {
        let mut n = X509NameBuilder::new().unwrap();
        n.append_entry_by_nid(Nid::COMMONNAME, cn).unwrap();
        n.build()
    }

    #[test]
    fn generated_ca_round_trips_through_pem_and_refuses_a_foreign_key() {
        let ca = CertificateAuthority::generate("Test CA", "Example", 2).unwrap();
        let again = CertificateAuthority::from_pem(&ca.cert_pem(), &ca.key_pem()).unwrap();
        assert_eq!(again.cert().to_der().unwrap(), ca.cert().to_der().unwrap());
        let other = CertificateAuthority::generate("Other", "", 1).unwrap();
        assert!(matches!(
            CertificateAuthority::from_pem(&ca.cert_pem(), &other.key_pem()),
            Err(CaError::KeyMismatch)
        ));
        assert!(format!("{ca:?}").contains("redacted"));
    }

    #[test]
    fn issued_certificates_name_the_crl_when_asked() {
        let ec = crate::identity::testing::p256_key();
        let plain = CertificateAuthority::generate("Test CA", "Example", 1).unwrap();
        let cert = plain
            .issue(&csr_for(&ec), &name("dev"), 30, KeyUsageBits::BOTH)
            .unwrap();
        assert!(!String::from_utf8(cert.to_text().unwrap())
            .unwrap()
            .contains("CRL Distribution Points"));
        let mut ca = plain;
        ca.set_crl_distribution_point("https://mdm.example.org/pki/device-ca.crl")
            .unwrap();
        let cert = ca
            .issue(&csr_for(&ec), &name("dev"), 30, KeyUsageBits::BOTH)
            .unwrap();
        let text = String::from_utf8(cert.to_text().unwrap()).unwrap();
        assert!(text.contains("X509v3 CRL Distribution Points"), "{text}");
        assert!(
            text.contains("URI:https://mdm.example.org/pki/device-ca.crl"),
            "{text}"
        );
        assert!(cert.crl_distribution_points().is_some());
    }

    #[test]
    fn key_usage_bits() {
        assert!(KeyUsageBits::SIGNING.signing() && !KeyUsageBits::SIGNING.encryption());
        assert!(!KeyUsageBits::ENCRYPTION.signing() && KeyUsageBits::ENCRYPTION.encryption());
        assert!(KeyUsageBits::BOTH.signing() && KeyUsageBits::BOTH.encryption());
        assert!(KeyUsageBits(0).signing() && KeyUsageBits(0).encryption());
    }

    #[test]
    fn issues_only_for_sound_requests() {
        let ca = CertificateAuthority::generate("Test CA", "Example", 1).unwrap();
        let ec = crate::identity::testing::p256_key();
        let cert = ca
            .issue(&csr_for(&ec), &name("dev"), 30, KeyUsageBits::BOTH)
            .unwrap();
        assert!(ca.issued(&cert));
        let other = CertificateAuthority::generate("Other", "", 1).unwrap();
        assert!(!other.issued(&cert));

        // A CSR whose signature was made by another key proves nothing.
        let rsa = PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap();
        let mut b = X509ReqBuilder::new().unwrap();
        b.set_version(0).unwrap();
        b.set_pubkey(&rsa).unwrap();
        b.sign(&ec, MessageDigest::sha256()).unwrap();
        assert!(matches!(
            ca.issue(&b.build(), &name("dev"), 30, KeyUsageBits::BOTH),
            Err(CaError::BadCsrSignature)
        ));
        assert!(matches!(
            ca.issue(&csr_for(&ec), &name("dev"), 0, KeyUsageBits::BOTH),
            Err(CaError::InvalidParameter(_))
        ));
    }
}
