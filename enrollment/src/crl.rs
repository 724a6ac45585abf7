//! The device CA's certificate revocation list (RFC 5280 §5): the identities of wiped,
//! retired, deleted and checked-out devices, published for the RADIUS servers that
//! accept device certificates for EAP-TLS Wi-Fi.
//!
//! The openssl crate parses CRLs but cannot build one, so the `TBSCertList` is
//! encoded with RustCrypto's `x509-cert` types (already used here for SCEP) and
//! signed with openssl, with the CA's own key: no hand-written DER, no unsafe FFI.

use openssl::bn::BigNum;
use openssl::hash::MessageDigest;
use openssl::pkey::Id;
use openssl::sign::Signer;
use x509_cert::crl::{CertificateList, RevokedCert, TbsCertList};
use x509_cert::der::asn1::{BitString, OctetString, UtcTime};
use x509_cert::der::{Any, Decode, Encode};
use x509_cert::ext::pkix::crl::CrlReason;
use x509_cert::ext::pkix::{AuthorityKeyIdentifier, CrlNumber};
use x509_cert::ext::Extension;
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::spki::{AlgorithmIdentifierOwned, ObjectIdentifier};
use x509_cert::time::Time;

use crate::ca::CertificateAuthority;

const SHA256_WITH_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.11");
const ECDSA_WITH_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");
const ID_CE_CRL_NUMBER: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.20");
const ID_CE_AUTHORITY_KEY_IDENTIFIER: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.35");
const ID_CE_CRL_REASONS: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.21");

/// Why a certificate was revoked: RFC 5280's CRLReason values that apply to a
/// device identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RevocationReason {
    Unspecified,
    /// The device is lost or stolen: whoever holds it holds the key.
    KeyCompromise,
    /// The device left the office's hands or its user (handed over, off-boarded).
    AffiliationChanged,
    /// Replaced by a newer certificate (renewal, re-enrollment).
    Superseded,
    /// The device no longer needs it: wiped, retired, deleted, checked out.
    CessationOfOperation,
}

impl RevocationReason {
    /// The name stored and shown (RFC 5280's, in snake case).
    pub fn as_str(self) -> &'static str {
        match self {
            RevocationReason::Unspecified => "unspecified",
            RevocationReason::KeyCompromise => "key_compromise",
            RevocationReason::AffiliationChanged => "affiliation_changed",
            RevocationReason::Superseded => "superseded",
            RevocationReason::CessationOfOperation => "cessation_of_operation",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == text)
    }

    pub const ALL: [RevocationReason; 5] = [
        RevocationReason::Unspecified,
        RevocationReason::KeyCompromise,
        RevocationReason::AffiliationChanged,
        RevocationReason::Superseded,
        RevocationReason::CessationOfOperation,
    ];

    fn code(self) -> CrlReason {
        match self {
            RevocationReason::Unspecified => CrlReason::Unspecified,
            RevocationReason::KeyCompromise => CrlReason::KeyCompromise,
            RevocationReason::AffiliationChanged => CrlReason::AffiliationChanged,
            RevocationReason::Superseded => CrlReason::Superseded,
            RevocationReason::CessationOfOperation => CrlReason::CessationOfOperation,
        }
    }
}

/// One revoked certificate: its serial (hex, as stored), when, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevokedEntry {
    pub serial_hex: String,
    /// Seconds since the Unix epoch.
    pub revoked_at: i64,
    pub reason: RevocationReason,
}

#[derive(Debug, thiserror::Error)]
pub enum CrlError {
    #[error("serial number {0:?} is not a hexadecimal number")]
    BadSerial(String),
    #[error("time {0} cannot be written as UTCTime")]
    BadTime(i64),
    #[error("the CA key type cannot sign a CRL here (RSA or EC expected)")]
    UnsupportedKey,
    #[error("encoding the CRL: {0}")]
    Encoding(String),
    #[error("openssl: {0}")]
    Crypto(#[from] openssl::error::ErrorStack),
}

fn der_err(e: impl std::fmt::Display) -> CrlError {
    CrlError::Encoding(e.to_string())
}

fn utc(seconds: i64) -> Result<Time, CrlError> {
    let duration = std::time::Duration::from_secs(
        u64::try_from(seconds).map_err(|_| CrlError::BadTime(seconds))?,
    );
    // RFC 5280 §5.1.2.4: UTCTime for dates through 2049.
    UtcTime::from_unix_duration(duration)
        .map(Time::UtcTime)
        .map_err(|_| CrlError::BadTime(seconds))
}

fn extension(
    oid: ObjectIdentifier,
    value: &impl Encode,
    critical: bool,
) -> Result<Extension, CrlError> {
    Ok(Extension {
        extn_id: oid,
        critical,
        extn_value: OctetString::new(value.to_der().map_err(der_err)?).map_err(der_err)?,
    })
}

/// Builds and signs the CA's CRL number `number`, valid from `this_update` until
/// `next_update` (Unix seconds), listing `revoked`. Returns DER.
pub fn build_crl(
    ca: &CertificateAuthority,
    number: u64,
    this_update: i64,
    next_update: i64,
    revoked: &[RevokedEntry],
) -> Result<Vec<u8>, CrlError> {
    let (algorithm, digest) = match ca.key().id() {
        Id::RSA => (
            AlgorithmIdentifierOwned {
                oid: SHA256_WITH_RSA,
                parameters: Some(Any::null()),
            },
            MessageDigest::sha256(),
        ),
        Id::EC => (
            AlgorithmIdentifierOwned {
                oid: ECDSA_WITH_SHA256,
                parameters: None,
            },
            MessageDigest::sha256(),
        ),
        _ => return Err(CrlError::UnsupportedKey),
    };
    let issuer = Name::from_der(&ca.cert().subject_name().to_der()?).map_err(der_err)?;
    let mut entries = Vec::with_capacity(revoked.len());
    for entry in revoked {
        let serial = BigNum::from_hex_str(&entry.serial_hex)
            .map_err(|_| CrlError::BadSerial(entry.serial_hex.clone()))?;
        entries.push(RevokedCert {
            serial_number: SerialNumber::new(&serial.to_vec()).map_err(der_err)?,
            revocation_date: utc(entry.revoked_at)?,
            crl_entry_extensions: Some(vec![extension(
                ID_CE_CRL_REASONS,
                &entry.reason.code(),
                false,
            )?]),
        });
    }
    let mut extensions = vec![extension(
        ID_CE_CRL_NUMBER,
        &CrlNumber(x509_cert::der::asn1::Uint::new(&number.to_be_bytes()).map_err(der_err)?),
        false,
    )?];
    // The CA's key identifier: what a verifier matches the CRL to its issuer with
    // (RFC 5280 §5.2.1 requires it of conforming CAs).
    if let Some(ski) = ca.cert().subject_key_id() {
        extensions.push(extension(
            ID_CE_AUTHORITY_KEY_IDENTIFIER,
            &AuthorityKeyIdentifier {
                key_identifier: Some(OctetString::new(ski.as_slice()).map_err(der_err)?),
                authority_cert_issuer: None,
                authority_cert_serial_number: None,
            },
            false,
        )?);
    }
    let tbs = TbsCertList {
        version: x509_cert::Version::V2,
        signature: algorithm.clone(),
        issuer,
        this_update: utc(this_update)?,
        next_update: Some(utc(next_update)?),
        // An empty list is left out, as RFC 5280 §5.1.2.6 asks.
        revoked_certificates: (!entries.is_empty()).then_some(entries),
        crl_extensions: Some(extensions),
    };
    let tbs_der = tbs.to_der().map_err(der_err)?;
    let mut signer = Signer::new(digest, ca.key())?;
    signer.update(&tbs_der)?;
    let signature = signer.sign_to_vec()?;
    CertificateList {
        tbs_cert_list: tbs,
        signature_algorithm: algorithm,
        signature: BitString::from_bytes(&signature).map_err(der_err)?,
    }
    .to_der()
    .map_err(der_err)
}

/// The DER of a CRL Distribution Points extension value (RFC 5280 §4.2.1.13) naming
/// `url`: what a relying party such as Windows NPS fetches to check a device
/// certificate before accepting it for EAP-TLS.
pub fn distribution_points_der(url: &str) -> Result<Vec<u8>, CrlError> {
    use x509_cert::der::asn1::Ia5String;
    use x509_cert::ext::pkix::crl::dp::DistributionPoint;
    use x509_cert::ext::pkix::name::{DistributionPointName, GeneralName};
    use x509_cert::ext::pkix::CrlDistributionPoints;
    let uri = Ia5String::new(url).map_err(der_err)?;
    CrlDistributionPoints(vec![DistributionPoint {
        distribution_point: Some(DistributionPointName::FullName(vec![
            GeneralName::UniformResourceIdentifier(uri),
        ])),
        reasons: None,
        crl_issuer: None,
    }])
    .to_der()
    .map_err(der_err)
}

#[cfg(test)]
mod tests {
    use super::*;
    use openssl::x509::{CrlStatus, X509Crl};

    #[test]
    fn openssl_reads_and_verifies_the_crl_and_finds_revoked_serials() {
        let ca = CertificateAuthority::generate("Test CA", "Example", 1).unwrap();
        let now = 1_800_000_000;
        let crl = build_crl(
            &ca,
            7,
            now,
            now + 86_400,
            &[
                RevokedEntry {
                    serial_hex: "FF00AA".into(),
                    revoked_at: now - 60,
                    reason: RevocationReason::CessationOfOperation,
                },
                RevokedEntry {
                    serial_hex: "01".into(),
                    revoked_at: now - 30,
                    reason: RevocationReason::KeyCompromise,
                },
            ],
        )
        .unwrap();
        let parsed = X509Crl::from_der(&crl).unwrap();
        assert!(parsed.verify(&ca.cert().public_key().unwrap()).unwrap());
        assert_eq!(parsed.get_revoked().unwrap().len(), 2);
        let serial = BigNum::from_hex_str("FF00AA")
            .unwrap()
            .to_asn1_integer()
            .unwrap();
        assert!(matches!(
            parsed.get_by_serial(&serial),
            CrlStatus::Revoked(_)
        ));
        let other = BigNum::from_hex_str("02")
            .unwrap()
            .to_asn1_integer()
            .unwrap();
        assert!(matches!(
            parsed.get_by_serial(&other),
            CrlStatus::NotRevoked
        ));
        assert!(parsed
            .issuer_name()
            .try_cmp(ca.cert().subject_name())
            .unwrap()
            .is_eq());
        // An empty CRL is valid too.
        let empty = build_crl(&ca, 1, now, now + 60, &[]).unwrap();
        assert!(X509Crl::from_der(&empty).unwrap().get_revoked().is_none());
        assert!(matches!(
            build_crl(
                &ca,
                1,
                now,
                now + 60,
                &[RevokedEntry {
                    serial_hex: "zz".into(),
                    revoked_at: now,
                    reason: RevocationReason::Unspecified
                }]
            ),
            Err(CrlError::BadSerial(_))
        ));
    }

    #[test]
    fn reasons_round_trip_through_their_names() {
        for r in RevocationReason::ALL {
            assert_eq!(RevocationReason::parse(r.as_str()), Some(r));
        }
        assert_eq!(RevocationReason::parse("lost"), None);
    }
}
