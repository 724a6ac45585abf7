//! Device identity: which certificate signed a request, and does it chain to our CA.

use base64::Engine;
use openssl::hash::MessageDigest;
use openssl::pkcs7::{Pkcs7, Pkcs7Flags};
use openssl::stack::Stack;
use openssl::x509::store::{X509Store, X509StoreBuilder};
use openssl::x509::{X509StoreContext, X509};
use std::sync::Arc;

mod detached;
pub use detached::SignerKey;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum IdentityError {
    #[error("request carries no device identity (no Mdm-Signature header)")]
    Missing,
    #[error("Mdm-Signature is not valid base64")]
    NotBase64,
    #[error("Mdm-Signature is not a PKCS#7/CMS SignedData structure")]
    NotCms,
    #[error("Mdm-Signature names no signer certificate")]
    NoSigner,
    #[error("the signature does not match the request body")]
    BadSignature,
    #[error("Mdm-Signature uses a digest algorithm other than SHA-1 or SHA-2")]
    UnsupportedDigest,
    #[error("the device certificate does not chain to the device CA: {0}")]
    Untrusted(String),
    #[error("Client-Cert header is not an RFC 9440 byte sequence (:base64:)")]
    BadClientCertHeader,
    #[error("client certificate is not a DER X.509 certificate")]
    BadCertificate,
    #[error("device CA file holds no certificate")]
    EmptyCa,
}

/// The certificate a request was proven to come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedIdentity {
    /// SHA-256 of the certificate's DER, lower-case hex: what a UDID is bound to.
    pub fingerprint: String,
    pub subject: String,
    pub serial: String,
    pub not_after: String,
}

impl VerifiedIdentity {
    fn of(cert: &X509, fingerprint: String) -> Self {
        VerifiedIdentity {
            fingerprint,
            subject: name_to_string(cert.subject_name()),
            serial: cert
                .serial_number()
                .to_bn()
                .ok()
                .and_then(|bn| bn.to_hex_str().ok())
                .map(|s| s.to_string())
                .unwrap_or_default(),
            not_after: cert.not_after().to_string(),
        }
    }
}

/// Certificates whose chain to the device CA verified before: a cache the caller
/// keeps (the server's: server/src/cache/identity.rs). What it spares is the chain
/// building, the reading of the certificate's names and openssl's full PKCS#7
/// decoding; the signature over each request body is verified every time, with the
/// key of the certificate that signed it, whose SHA-256 fingerprint is what the cache
/// is asked for.
pub trait VerifiedChains {
    /// The identity of the certificate with this fingerprint (lower-case hex), if its
    /// chain verified before and every certificate of that chain is still valid at
    /// `now` (seconds since the UNIX epoch).
    fn verified(&self, fingerprint: &str, now: i64) -> Option<Arc<VerifiedIdentity>>;
    /// [`Self::verified`], with the key the certificate signs with, when it was kept.
    fn signer(
        &self,
        fingerprint: &str,
        now: i64,
    ) -> Option<(Arc<VerifiedIdentity>, Arc<SignerKey>)>;
    /// A certificate whose chain just verified, valid until `not_after` (the earliest
    /// notAfter of its chain, seconds since the UNIX epoch), with its key when it
    /// signed a request.
    fn remember(&self, identity: Arc<VerifiedIdentity>, not_after: i64, key: Option<SignerKey>);
}

/// No cache: every chain is built and verified.
pub struct NoCache;

impl VerifiedChains for NoCache {
    fn verified(&self, _: &str, _: i64) -> Option<Arc<VerifiedIdentity>> {
        None
    }
    fn signer(&self, _: &str, _: i64) -> Option<(Arc<VerifiedIdentity>, Arc<SignerKey>)> {
        None
    }
    fn remember(&self, _: Arc<VerifiedIdentity>, _: i64, _: Option<SignerKey>) {}
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Seconds since the UNIX epoch of a certificate time; None for a time OpenSSL
/// cannot compare (certificates come from devices: never panic on them).
pub fn unix_time(t: &openssl::asn1::Asn1TimeRef) -> Option<i64> {
    let epoch = openssl::asn1::Asn1Time::from_unix(0).ok()?;
    let diff = epoch.diff(t).ok()?;
    Some(i64::from(diff.days) * 86_400 + i64::from(diff.secs))
}

/// A distinguished name as `CN=...,O=...` for logs, events and the admin API.
pub fn name_to_string(name: &openssl::x509::X509NameRef) -> String {
    name.entries()
        .map(|e| {
            let key = e.object().nid().short_name().unwrap_or("?");
            let value = e.data().to_string().unwrap_or_default();
            format!("{key}={value}")
        })
        .collect::<Vec<_>>()
        .join(",")
}

pub fn fingerprint(cert: &X509) -> String {
    cert.digest(MessageDigest::sha256())
        .map(|d| hex::encode(&*d))
        .unwrap_or_default()
}

/// The trust anchors device certificates must chain to.
pub struct DeviceCa {
    store: X509Store,
}

impl DeviceCa {
    pub fn from_certs(certs: Vec<X509>) -> Result<Self, IdentityError> {
        if certs.is_empty() {
            return Err(IdentityError::EmptyCa);
        }
        let mut builder =
            X509StoreBuilder::new().map_err(|e| IdentityError::Untrusted(e.to_string()))?;
        for cert in certs {
            builder
                .add_cert(cert)
                .map_err(|e| IdentityError::Untrusted(e.to_string()))?;
        }
        Ok(DeviceCa {
            store: builder.build(),
        })
    }

    /// Verifies an `Mdm-Signature` header: a base64 detached CMS SignedData over
    /// `body`, signed by a certificate that chains to this CA.
    pub fn verify_mdm_signature(
        &self,
        header: &str,
        body: &[u8],
    ) -> Result<VerifiedIdentity, IdentityError> {
        self.verify_mdm_signature_with(header, body, &NoCache)
            .map(Arc::unwrap_or_clone)
    }

    /// [`Self::verify_mdm_signature`], with the chain of a signer `chains` verified
    /// before taken from there. The signature over `body` is verified either way:
    /// with the signer's kept key when the message is plain DER in the usual shape
    /// (the short way, `detached.rs`), else, and whenever that does not succeed,
    /// by openssl's PKCS#7 verification.
    pub fn verify_mdm_signature_with(
        &self,
        header: &str,
        body: &[u8],
        chains: &dyn VerifiedChains,
    ) -> Result<Arc<VerifiedIdentity>, IdentityError> {
        let der = if header.bytes().any(|b| b.is_ascii_whitespace()) {
            let compact: String = header.split_whitespace().collect();
            base64::engine::general_purpose::STANDARD.decode(compact.as_bytes())
        } else {
            base64::engine::general_purpose::STANDARD.decode(header.as_bytes())
        }
        .map_err(|_| IdentityError::NotBase64)?;
        let first_seen = |raw: &[u8], fingerprint: &str| {
            self.first_seen_signer(raw, fingerprint, chains, unix_now())
        };
        if let Some(known) = detached::verify(&der, body, chains, &first_seen, unix_now()) {
            return Ok(known);
        }
        let p7 = Pkcs7::from_der(&der).map_err(|_| IdentityError::NotCms)?;
        let no_extra = Stack::new().map_err(|_| IdentityError::NotCms)?;
        let signers = p7
            .signers(&no_extra, Pkcs7Flags::empty())
            .map_err(|_| IdentityError::NoSigner)?;
        let signer = signers.get(0).ok_or(IdentityError::NoSigner)?.to_owned();
        if !digests_accepted(&p7)? {
            return Err(IdentityError::UnsupportedDigest);
        }
        // First the signature alone (NOVERIFY: no chain building inside PKCS7_verify,
        // whose S/MIME purpose rules do not fit device certificates), then the chain
        // on our own terms below.
        p7.verify(
            &no_extra,
            &self.store,
            Some(body),
            None,
            Pkcs7Flags::NOVERIFY | Pkcs7Flags::BINARY,
        )
        .map_err(|_| IdentityError::BadSignature)?;
        let fingerprint = fingerprint(&signer);
        if let Some(known) = chains.verified(&fingerprint, unix_now()) {
            return Ok(known);
        }
        let bundled = p7
            .signed()
            .and_then(|s| s.certificates())
            .map(|certs| certs.iter().map(|c| c.to_owned()).collect::<Vec<_>>())
            .unwrap_or_default();
        let valid_until = self.verify_chain(&signer, bundled)?;
        let identity = Arc::new(VerifiedIdentity::of(&signer, fingerprint));
        if let Some(until) = valid_until {
            chains.remember(identity.clone(), until, SignerKey::of(&signer));
        }
        Ok(identity)
    }

    /// The signer of a message in the short way's shape whose chain is not known yet
    /// (a device's first request since this server started): its one carried
    /// certificate's chain is verified here and remembered, and the short way then
    /// checks the signature with its key. That spares openssl's PKCS#7 parsing and
    /// verification, most of a first request's cost (docs/benchmarks.md), and checks
    /// the same things (detached.rs). None when the certificate is not plain DER or
    /// its chain does not verify: the full way gives the verdict and its error.
    fn first_seen_signer(
        &self,
        raw: &[u8],
        raw_fingerprint: &str,
        chains: &dyn VerifiedChains,
        now: i64,
    ) -> Option<detached::Signer> {
        let cert = X509::from_der(raw).ok()?;
        // Identities are named by the DER openssl writes; a lax encoding read here
        // would be another name for the same certificate.
        if fingerprint(&cert) != raw_fingerprint {
            return None;
        }
        let valid_until = self.verify_chain(&cert, Vec::new()).ok()?;
        let identity = Arc::new(VerifiedIdentity::of(&cert, raw_fingerprint.to_owned()));
        let key = SignerKey::of(&cert)?;
        match valid_until {
            Some(until) => {
                chains.remember(identity, until, Some(key));
                chains.signer(raw_fingerprint, now)
            }
            None => Some((identity, Arc::new(key))),
        }
    }

    /// Verifies a client certificate (DER) presented to a TLS-terminating proxy.
    pub fn verify_certificate(&self, der: &[u8]) -> Result<VerifiedIdentity, IdentityError> {
        self.verify_certificate_with(der, &NoCache)
            .map(Arc::unwrap_or_clone)
    }

    /// [`Self::verify_certificate`], with a chain verified before taken from `chains`.
    pub fn verify_certificate_with(
        &self,
        der: &[u8],
        chains: &dyn VerifiedChains,
    ) -> Result<Arc<VerifiedIdentity>, IdentityError> {
        // The fingerprint is the digest of these very bytes: a certificate that
        // verified before is known without parsing it again.
        let digest = openssl::hash::hash(MessageDigest::sha256(), der)
            .map_err(|_| IdentityError::BadCertificate)?;
        let fingerprint = hex::encode(&*digest);
        if let Some(known) = chains.verified(&fingerprint, unix_now()) {
            return Ok(known);
        }
        let cert = X509::from_der(der).map_err(|_| IdentityError::BadCertificate)?;
        let valid_until = self.verify_chain(&cert, Vec::new())?;
        // Re-encoded, in case openssl read a lax encoding: the fingerprint is always
        // that of the DER openssl writes, as for signed requests.
        let identity = Arc::new(VerifiedIdentity::of(&cert, self::fingerprint(&cert)));
        if let (Some(until), true) = (valid_until, identity.fingerprint == fingerprint) {
            chains.remember(identity.clone(), until, None);
        }
        Ok(identity)
    }

    /// Verifies that `cert` chains to this CA; returns the earliest notAfter of the
    /// chain (None if one cannot be read: then nothing is cached).
    fn verify_chain(
        &self,
        cert: &X509,
        intermediates: Vec<X509>,
    ) -> Result<Option<i64>, IdentityError> {
        let mut chain = Stack::new().map_err(|e| IdentityError::Untrusted(e.to_string()))?;
        for c in intermediates {
            chain
                .push(c)
                .map_err(|e| IdentityError::Untrusted(e.to_string()))?;
        }
        let mut ctx =
            X509StoreContext::new().map_err(|e| IdentityError::Untrusted(e.to_string()))?;
        let outcome = ctx
            .init(&self.store, cert, &chain, |c| {
                let ok = c.verify_cert()?;
                // A cached verification is not trusted past any certificate of the
                // chain it built: the CA's may end before the device's.
                let until = c.chain().and_then(|verified| {
                    verified
                        .iter()
                        .map(|link| unix_time(link.not_after()))
                        .try_fold(i64::MAX, |min, t| t.map(|t| min.min(t)))
                });
                Ok((ok, c.error(), until))
            })
            .map_err(|e| IdentityError::Untrusted(e.to_string()))?;
        match outcome {
            (true, _, until) => Ok(until),
            (false, err, _) => Err(IdentityError::Untrusted(err.error_string().to_string())),
        }
    }
}

/// Whether every digest algorithm the SignedData announces is one devices sign with
/// (SHA-1, SHA-256, SHA-384, SHA-512).
///
/// Checked before `PKCS7_verify`, because OpenSSL 3.0 (Debian 12's) leaks the copy it
/// makes of the detached body when it cannot set up one of those digests: about 300
/// bytes per request with an unknown algorithm, found by the `mdm_signature` fuzz
/// target. The algorithms are read from openssl's DER re-encoding, as the SCEP
/// reader does, since openssl has no accessor for them.
fn digests_accepted(p7: &Pkcs7) -> Result<bool, IdentityError> {
    use crate::scep::DigestAlgorithm;
    use der::asn1::{AnyRef, SetOfVec};
    use der::Decode;
    use x509_cert::spki::AlgorithmIdentifierOwned;
    let der = p7.to_der().map_err(|_| IdentityError::NotCms)?;
    let info = cms::content_info::ContentInfo::from_der(&der).map_err(|_| IdentityError::NotCms)?;
    // version, digestAlgorithms, encapContentInfo, ...: walked as opaque elements,
    // certificates included, since devices' certificates need not be strict DER.
    let fields: Vec<AnyRef<'_>> = info
        .content
        .decode_as()
        .map_err(|_| IdentityError::NotCms)?;
    let algorithms: SetOfVec<AnyRef<'_>> = fields
        .get(1)
        .ok_or(IdentityError::NotCms)?
        .decode_as()
        .map_err(|_| IdentityError::NotCms)?;
    Ok(algorithms.iter().all(|a| {
        a.decode_as::<AlgorithmIdentifierOwned>()
            .is_ok_and(|alg| DigestAlgorithm::from_oid(&alg.oid).is_some())
    }))
}

/// Reads an RFC 9440 `Client-Cert` header: a structured-field byte sequence,
/// `:` base64 DER `:`.
pub fn parse_client_cert_header(value: &str) -> Result<Vec<u8>, IdentityError> {
    let inner = value
        .trim()
        .strip_prefix(':')
        .and_then(|v| v.strip_suffix(':'))
        .ok_or(IdentityError::BadClientCertHeader)?;
    base64::engine::general_purpose::STANDARD
        .decode(inner)
        .map_err(|_| IdentityError::BadClientCertHeader)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::testing::*;

    #[test]
    fn accepts_a_signature_from_a_ca_issued_certificate() {
        let ca = TestCa::new("Device CA");
        let (key, cert) = ca.issue("device-1");
        let body = b"<plist>hello</plist>";
        let header = sign_detached(&key, &cert, body);
        let trust = DeviceCa::from_certs(vec![ca.cert.clone()]).unwrap();
        let id = trust.verify_mdm_signature(&header, body).unwrap();
        assert_eq!(id.fingerprint, fingerprint(&cert));
        assert!(id.subject.contains("CN=device-1"));
    }

    #[test]
    fn refuses_tampered_body_foreign_ca_and_garbage() {
        let ca = TestCa::new("Device CA");
        let other = TestCa::new("Someone else");
        let (key, cert) = ca.issue("device-1");
        let trust = DeviceCa::from_certs(vec![ca.cert.clone()]).unwrap();
        let header = sign_detached(&key, &cert, b"body");
        assert_eq!(
            trust.verify_mdm_signature(&header, b"other body"),
            Err(IdentityError::BadSignature)
        );
        let (fkey, fcert) = other.issue("intruder");
        let foreign = sign_detached(&fkey, &fcert, b"body");
        assert!(matches!(
            trust.verify_mdm_signature(&foreign, b"body"),
            Err(IdentityError::Untrusted(_))
        ));
        assert_eq!(
            trust.verify_mdm_signature("***", b"body"),
            Err(IdentityError::NotBase64)
        );
        assert_eq!(
            trust.verify_mdm_signature("aGVsbG8=", b"body"),
            Err(IdentityError::NotCms)
        );
    }

    fn rsa_key() -> openssl::pkey::PKey<openssl::pkey::Private> {
        openssl::pkey::PKey::from_rsa(openssl::rsa::Rsa::generate(2048).unwrap()).unwrap()
    }

    fn sign_with(
        key: &openssl::pkey::PKey<openssl::pkey::Private>,
        cert: &X509,
        extra: &[&X509],
        body: &[u8],
        flags: Pkcs7Flags,
    ) -> Vec<u8> {
        let mut certs = Stack::new().unwrap();
        for c in extra {
            certs.push((*c).clone()).unwrap();
        }
        Pkcs7::sign(
            cert,
            key,
            &certs,
            body,
            flags | Pkcs7Flags::DETACHED | Pkcs7Flags::BINARY,
        )
        .unwrap()
        .to_der()
        .unwrap()
    }

    fn b64(der: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(der)
    }

    #[test]
    fn a_first_seen_signer_and_its_later_requests_take_the_short_way() {
        let ca = TestCa::new("Device CA");
        let trust = DeviceCa::from_certs(vec![ca.cert.clone()]).unwrap();
        for (label, key) in [("P-256", p256_key()), ("RSA", rsa_key())] {
            for (attributes, flags) in [
                ("with", Pkcs7Flags::empty()),
                ("without", Pkcs7Flags::NOATTR),
            ] {
                let cert = ca.issue_for("device-1", &key);
                let kept = KeptChains::default();
                let first = sign_with(&key, &cert, &[], b"first", flags);
                let id = trust
                    .verify_mdm_signature_with(&b64(&first), b"first", &kept)
                    .unwrap();
                assert_eq!(
                    kept.full_way(),
                    0,
                    "{label}, {attributes} attributes: the first request's chain is \
                     verified and kept, its signature checked the short way"
                );
                let second = sign_with(&key, &cert, &[], b"second", flags);
                let again = trust
                    .verify_mdm_signature_with(&b64(&second), b"second", &kept)
                    .unwrap();
                assert_eq!(again, id);
                assert_eq!(
                    kept.full_way(),
                    0,
                    "{label}, {attributes} signed attributes: the second request took the short way"
                );
            }
        }
    }

    #[test]
    fn the_short_way_accepts_nothing_the_full_way_refuses() {
        let ca = TestCa::new("Device CA");
        let trust = DeviceCa::from_certs(vec![ca.cert.clone()]).unwrap();
        let victim_key = rsa_key();
        let victim = ca.issue_for("victim", &victim_key);
        let (other_key, other) = ca.issue("other");
        let kept = KeptChains::default();
        for (key, cert) in [(&victim_key, &victim), (&other_key, &other)] {
            let der = sign_with(key, cert, &[], b"enroll", Pkcs7Flags::empty());
            trust
                .verify_mdm_signature_with(&b64(&der), b"enroll", &kept)
                .unwrap();
        }

        let signed = sign_with(&victim_key, &victim, &[], b"body", Pkcs7Flags::empty());
        assert_eq!(
            trust.verify_mdm_signature_with(&b64(&signed), b"other body", &kept),
            Err(IdentityError::BadSignature),
            "a signature over another body"
        );
        let mut flipped = signed.clone();
        *flipped.last_mut().unwrap() ^= 1;
        assert_eq!(
            trust.verify_mdm_signature_with(&b64(&flipped), b"body", &kept),
            Err(IdentityError::BadSignature),
            "a damaged signature"
        );
        let unsigned = sign_with(&victim_key, &victim, &[], b"body", Pkcs7Flags::NOATTR);
        let mut flipped = unsigned.clone();
        *flipped.last_mut().unwrap() ^= 1;
        assert_eq!(
            trust.verify_mdm_signature_with(&b64(&flipped), b"body", &kept),
            Err(IdentityError::BadSignature),
            "a damaged signature without signed attributes"
        );
        // Another enrolled device carrying the victim's certificate beside its own is
        // still itself.
        let carried = sign_with(&other_key, &other, &[&victim], b"body", Pkcs7Flags::empty());
        let id = trust
            .verify_mdm_signature_with(&b64(&carried), b"body", &kept)
            .unwrap();
        assert_eq!(id.fingerprint, fingerprint(&other));
        // A stranger's certificate, from another CA, carrying the victim's.
        let stranger_ca = TestCa::new("Someone else");
        let (stranger_key, stranger) = stranger_ca.issue("stranger");
        let foreign = sign_with(
            &stranger_key,
            &stranger,
            &[&victim],
            b"body",
            Pkcs7Flags::empty(),
        );
        assert!(matches!(
            trust.verify_mdm_signature_with(&b64(&foreign), b"body", &kept),
            Err(IdentityError::Untrusted(_))
        ));
    }

    #[test]
    fn client_cert_header() {
        let ca = TestCa::new("Device CA");
        let (_, cert) = ca.issue("device-2");
        let der = cert.to_der().unwrap();
        let header = format!(
            ":{}:",
            base64::engine::general_purpose::STANDARD.encode(&der)
        );
        let trust = DeviceCa::from_certs(vec![ca.cert.clone()]).unwrap();
        let parsed = parse_client_cert_header(&header).unwrap();
        assert_eq!(
            trust.verify_certificate(&parsed).unwrap().fingerprint,
            fingerprint(&cert)
        );
        assert_eq!(
            parse_client_cert_header("no-colons"),
            Err(IdentityError::BadClientCertHeader)
        );
    }
}

/// Helpers to make a throw-away CA and device certificates (tests, simulator, bench).
pub mod testing {
    use super::{SignerKey, VerifiedChains, VerifiedIdentity};
    use base64::Engine;
    use openssl::asn1::Asn1Time;
    use openssl::bn::{BigNum, MsbOption};
    use openssl::ec::{EcGroup, EcKey};
    use openssl::hash::MessageDigest;
    use openssl::nid::Nid;
    use openssl::pkcs7::{Pkcs7, Pkcs7Flags};
    use openssl::pkey::{PKey, Private};
    use openssl::stack::Stack;
    use openssl::x509::extension::{BasicConstraints, KeyUsage};
    use openssl::x509::{X509Builder, X509NameBuilder, X509};
    use std::collections::HashMap;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};

    pub struct TestCa {
        pub key: PKey<Private>,
        pub cert: X509,
    }

    pub fn p256_key() -> PKey<Private> {
        let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).expect("P-256 exists");
        PKey::from_ec_key(EcKey::generate(&group).expect("EC keygen")).expect("EC key")
    }

    /// The key a device makes for our enrollment profile: its SCEP payload asks for
    /// "Key Type" RSA (the only one Apple's payload offers), Keysize 2048.
    pub fn rsa_2048_key() -> PKey<Private> {
        PKey::from_rsa(openssl::rsa::Rsa::generate(2048).expect("RSA keygen")).expect("RSA key")
    }

    fn builder(cn: &str, key: &PKey<Private>, days: u32) -> X509Builder {
        let mut name = X509NameBuilder::new().unwrap();
        name.append_entry_by_nid(Nid::COMMONNAME, cn).unwrap();
        let name = name.build();
        let mut b = X509Builder::new().unwrap();
        b.set_version(2).unwrap();
        let mut serial = BigNum::new().unwrap();
        serial.rand(127, MsbOption::MAYBE_ZERO, false).unwrap();
        b.set_serial_number(&serial.to_asn1_integer().unwrap())
            .unwrap();
        b.set_subject_name(&name).unwrap();
        b.set_pubkey(key).unwrap();
        b.set_not_before(&Asn1Time::days_from_now(0).unwrap())
            .unwrap();
        b.set_not_after(&Asn1Time::days_from_now(days).unwrap())
            .unwrap();
        b
    }

    impl TestCa {
        pub fn new(cn: &str) -> Self {
            Self::with_key(cn, p256_key())
        }

        /// A CA with an RSA 2048 key, as the server's own (`ca.rs`): benchmarks verify
        /// devices' chains against what a real enrollment issues.
        pub fn new_rsa(cn: &str) -> Self {
            Self::with_key(cn, rsa_2048_key())
        }

        fn with_key(cn: &str, key: PKey<Private>) -> Self {
            let mut b = builder(cn, &key, 3650);
            let subject = {
                let mut n = X509NameBuilder::new().unwrap();
                n.append_entry_by_nid(Nid::COMMONNAME, cn).unwrap();
                n.build()
            };
            b.set_issuer_name(&subject).unwrap();
            b.append_extension(BasicConstraints::new().critical().ca().build().unwrap())
                .unwrap();
            b.append_extension(
                KeyUsage::new()
                    .critical()
                    .key_cert_sign()
                    .crl_sign()
                    .build()
                    .unwrap(),
            )
            .unwrap();
            b.sign(&key, MessageDigest::sha256()).unwrap();
            TestCa {
                key,
                cert: b.build(),
            }
        }

        /// A device identity: fresh P-256 key and a certificate for it.
        pub fn issue(&self, cn: &str) -> (PKey<Private>, X509) {
            let key = p256_key();
            (key.clone(), self.issue_for(cn, &key))
        }

        pub fn issue_for(&self, cn: &str, key: &PKey<Private>) -> X509 {
            let mut b = builder(cn, key, 365);
            b.set_issuer_name(self.cert.subject_name()).unwrap();
            b.append_extension(
                KeyUsage::new()
                    .critical()
                    .digital_signature()
                    .key_encipherment()
                    .build()
                    .unwrap(),
            )
            .unwrap();
            b.sign(&self.key, MessageDigest::sha256()).unwrap();
            b.build()
        }
    }

    /// Certificates kept as the server keeps them, for tests, fuzzing and benchmarks:
    /// with it, a signer seen before takes the short way. Counts how often the full
    /// way asked it; `without_keys` keeps no keys, so every request goes the full way
    /// with its chain's verdict cached.
    pub struct KeptChains {
        entries: Mutex<HashMap<String, KeptEntry>>,
        keys: bool,
        full_way: AtomicUsize,
    }

    type KeptEntry = (Arc<VerifiedIdentity>, Option<Arc<SignerKey>>);

    /// A few certificates suffice here: past this many, it starts again empty.
    const KEPT_AT_MOST: usize = 64;

    impl Default for KeptChains {
        fn default() -> Self {
            KeptChains {
                entries: Mutex::default(),
                keys: true,
                full_way: AtomicUsize::new(0),
            }
        }
    }

    impl KeptChains {
        pub fn without_keys() -> Self {
            KeptChains {
                keys: false,
                ..Self::default()
            }
        }

        /// How many requests went the full way (asked for a chain's verdict).
        pub fn full_way(&self) -> usize {
            self.full_way.load(Ordering::SeqCst)
        }
    }

    impl VerifiedChains for KeptChains {
        fn verified(&self, fingerprint: &str, _: i64) -> Option<Arc<VerifiedIdentity>> {
            self.full_way.fetch_add(1, Ordering::SeqCst);
            let entries = self.entries.lock().unwrap();
            entries.get(fingerprint).map(|(id, _)| id.clone())
        }

        fn signer(
            &self,
            fingerprint: &str,
            _: i64,
        ) -> Option<(Arc<VerifiedIdentity>, Arc<SignerKey>)> {
            let entries = self.entries.lock().unwrap();
            let (id, key) = entries.get(fingerprint).filter(|_| self.keys)?;
            Some((id.clone(), key.clone()?))
        }

        fn remember(&self, identity: Arc<VerifiedIdentity>, _: i64, key: Option<SignerKey>) {
            let mut entries = self.entries.lock().unwrap();
            if entries.len() >= KEPT_AT_MOST {
                entries.clear();
            }
            entries.insert(identity.fingerprint.clone(), (identity, key.map(Arc::new)));
        }
    }

    /// Signs `body` the way an Apple device does for the `Mdm-Signature` header:
    /// detached CMS SignedData, signer certificate included, base64.
    pub fn sign_detached(key: &PKey<Private>, cert: &X509, body: &[u8]) -> String {
        let extra = Stack::new().unwrap();
        let p7 = Pkcs7::sign(
            cert,
            key,
            &extra,
            body,
            Pkcs7Flags::DETACHED | Pkcs7Flags::BINARY,
        )
        .expect("sign");
        base64::engine::general_purpose::STANDARD.encode(p7.to_der().expect("der"))
    }
}
