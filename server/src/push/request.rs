//! Apple's push certificate request: the push key's CSR, and the vendor-signed
//! request the Push Certificates Portal (identity.apple.com/pushcert) takes.
//!
//! The request is a property list with three strings, `PushCertRequestCSR` (the CSR
//! in DER, base64), `PushCertCertificateChain` (the vendor certificate up to Apple's
//! root, PEM) and `PushCertSignature` (SHA256withRSA over the CSR's DER with the
//! vendor key, base64), itself base64-encoded: the form Apple's "Setting up push
//! notifications for your MDM customers" describes. Pure functions, no files and no
//! network, so that the CLI, the decrypt step and the tests read one definition.

use base64::Engine;
use openssl::hash::MessageDigest;
use openssl::pkey::{Id, PKey, Private, Public};
use openssl::rsa::Rsa;
use openssl::sign::{Signer, Verifier};
use openssl::x509::{X509Name, X509Req, X509};
use profiles::bounded::PlistLimits;

/// Apple's portal takes RSA push keys; 2048 bits is what Apple's own tools make.
pub const PUSH_KEY_BITS: u32 = 2048;

const CSR_KEY: &str = "PushCertRequestCSR";
const CHAIN_KEY: &str = "PushCertCertificateChain";
const SIGNATURE_KEY: &str = "PushCertSignature";

#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    #[error("{0}")]
    Invalid(String),
    #[error("cryptography failed: {0}")]
    Crypto(#[from] openssl::error::ErrorStack),
}

/// Who the push certificate is for. Apple replaces the subject with its own (the
/// topic); these fields only help the admin recognise the request at the portal.
#[derive(Debug, Clone)]
pub struct CsrSubject {
    pub common_name: String,
    pub email: Option<String>,
    /// Two letters (ISO 3166), as X.509 requires.
    pub country: Option<String>,
}

pub fn generate_key() -> Result<PKey<Private>, RequestError> {
    Ok(PKey::from_rsa(Rsa::generate(PUSH_KEY_BITS)?)?)
}

fn check_rsa(key: &PKey<Private>, what: &str) -> Result<(), RequestError> {
    if key.id() != Id::RSA {
        return Err(RequestError::Invalid(format!(
            "the {what} is not an RSA key: Apple's push certificate requests use RSA keys only"
        )));
    }
    Ok(())
}

/// The push key's certificate signing request, signed with SHA-256.
pub fn make_csr(key: &PKey<Private>, subject: &CsrSubject) -> Result<X509Req, RequestError> {
    check_rsa(key, "push key")?;
    let common_name = subject.common_name.trim();
    if common_name.is_empty() || common_name.len() > 64 {
        return Err(RequestError::Invalid(
            "the common name must have 1 to 64 characters".into(),
        ));
    }
    let mut name = X509Name::builder()?;
    name.append_entry_by_text("CN", common_name)?;
    if let Some(country) = &subject.country {
        if country.len() != 2 || !country.bytes().all(|b| b.is_ascii_alphabetic()) {
            return Err(RequestError::Invalid(format!(
                "the country {country:?} is not a two-letter code (e.g. PL, UA)"
            )));
        }
        name.append_entry_by_text("C", &country.to_ascii_uppercase())?;
    }
    if let Some(email) = &subject.email {
        check_email(email)?;
        name.append_entry_by_text("emailAddress", email)?;
    }
    let mut req = X509Req::builder()?;
    // Version 1 (INTEGER 0, RFC 2986); unset, it is not even encoded as a number.
    req.set_version(0)?;
    req.set_subject_name(&name.build())?;
    req.set_pubkey(key)?;
    req.sign(key, MessageDigest::sha256())?;
    Ok(req.build())
}

/// A plausible mail address: one '@', something on each side, no spaces. The real
/// check is whether mail arrives; this catches typos such as a missing '@'.
pub fn check_email(email: &str) -> Result<(), RequestError> {
    let ok = email.len() <= 254
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        && matches!(email.split_once('@'), Some((local, domain))
            if !local.is_empty() && domain.contains('.') && !domain.contains('@')
                && !domain.starts_with('.') && !domain.ends_with('.'));
    if ok {
        Ok(())
    } else {
        Err(RequestError::Invalid(format!(
            "{email:?} is not a mail address"
        )))
    }
}

/// An MDM vendor's signing identity: Apple's "MDM CSR" certificate, its key, and the
/// chain from that certificate to Apple's root (root included), checked.
pub struct VendorIdentity {
    key: PKey<Private>,
    /// The vendor certificate first, the root last.
    chain: Vec<X509>,
}

impl VendorIdentity {
    /// `chain` starts with the vendor certificate; see `push::vendor` for how it is
    /// completed and checked.
    pub fn new(key: PKey<Private>, chain: Vec<X509>) -> Result<Self, RequestError> {
        check_rsa(&key, "vendor key")?;
        let leaf = chain
            .first()
            .ok_or_else(|| RequestError::Invalid("no vendor certificate".into()))?;
        if !leaf.public_key()?.public_eq(&key) {
            return Err(RequestError::Invalid(
                "the vendor key does not belong to the vendor certificate".into(),
            ));
        }
        Ok(VendorIdentity { key, chain })
    }

    pub fn certificate(&self) -> &X509 {
        &self.chain[0]
    }
}

/// The request to upload at Apple's portal, base64 (what the portal takes as a file).
pub fn sign_request(csr: &X509Req, vendor: &VendorIdentity) -> Result<String, RequestError> {
    let csr_der = csr.to_der()?;
    let mut signer = Signer::new(MessageDigest::sha256(), &vendor.key)?;
    signer.update(&csr_der)?;
    let signature = signer.sign_to_vec()?;
    let mut chain_pem = String::new();
    for cert in &vendor.chain {
        // OpenSSL writes 64-character lines, the PEM form Apple asks for.
        chain_pem.push_str(&String::from_utf8_lossy(&cert.to_pem()?));
    }
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut dict = plist::Dictionary::new();
    dict.insert(CSR_KEY.into(), plist::Value::String(b64.encode(&csr_der)));
    dict.insert(CHAIN_KEY.into(), plist::Value::String(chain_pem));
    dict.insert(
        SIGNATURE_KEY.into(),
        plist::Value::String(b64.encode(&signature)),
    );
    let mut xml = Vec::new();
    plist::Value::Dictionary(dict)
        .to_writer_xml(&mut xml)
        .map_err(|e| RequestError::Invalid(format!("writing the plist: {e}")))?;
    Ok(b64.encode(&xml))
}

/// A push certificate request read back: from mdmcert.download's mail, or to check
/// what `sign_request` wrote.
pub struct PushCertRequest {
    pub csr: X509Req,
    pub chain: Vec<X509>,
    pub signature: Vec<u8>,
}

impl PushCertRequest {
    /// Reads the base64 request (whitespace ignored).
    pub fn parse(base64_text: &[u8]) -> Result<Self, RequestError> {
        let b64 = base64::engine::general_purpose::STANDARD;
        let compact: Vec<u8> = base64_text
            .iter()
            .copied()
            .filter(|b| !b.is_ascii_whitespace())
            .collect();
        let xml = b64.decode(&compact).map_err(|_| {
            RequestError::Invalid("the push certificate request is not base64".into())
        })?;
        // The file came by mail: read with the same bounds as anything a peer sends.
        let dict = profiles::bounded::read_dictionary(&xml, &PlistLimits::DEVICE).map_err(|e| {
            RequestError::Invalid(format!(
                "the push certificate request does not hold a property list dictionary: {e}"
            ))
        })?;
        let field = |key: &str| {
            dict.get(key).and_then(|v| v.as_string()).ok_or_else(|| {
                RequestError::Invalid(format!("the push certificate request has no {key}"))
            })
        };
        let decode = |key: &str| {
            b64.decode(field(key)?.split_whitespace().collect::<String>())
                .map_err(|_| RequestError::Invalid(format!("{key} is not base64")))
        };
        let csr = X509Req::from_der(&decode(CSR_KEY)?)
            .map_err(|_| RequestError::Invalid(format!("{CSR_KEY} is not a DER CSR")))?;
        let chain = X509::stack_from_pem(field(CHAIN_KEY)?.as_bytes())
            .map_err(|_| RequestError::Invalid(format!("{CHAIN_KEY} is not PEM certificates")))?;
        if chain.is_empty() {
            return Err(RequestError::Invalid(format!("{CHAIN_KEY} is empty")));
        }
        Ok(PushCertRequest {
            csr,
            chain,
            signature: decode(SIGNATURE_KEY)?,
        })
    }

    /// Checks the signature with the first certificate of the chain (the vendor's),
    /// and that each certificate of the chain is signed by the next.
    pub fn verify(&self) -> Result<(), RequestError> {
        let vendor_key = self.chain[0].public_key()?;
        let mut verifier = Verifier::new(MessageDigest::sha256(), &vendor_key)?;
        verifier.update(&self.csr.to_der()?)?;
        if !verifier.verify(&self.signature)? {
            return Err(RequestError::Invalid(
                "the request's signature does not verify with its vendor certificate".into(),
            ));
        }
        for pair in self.chain.windows(2) {
            let issuer_key = pair[1].public_key()?;
            if !pair[0].verify(&issuer_key)? {
                return Err(RequestError::Invalid(format!(
                    "the request's chain is broken: {} is not signed by {}",
                    enrollment::identity::name_to_string(pair[0].subject_name()),
                    enrollment::identity::name_to_string(pair[1].subject_name())
                )));
            }
        }
        Ok(())
    }

    /// Whether the CSR is for this key.
    pub fn is_for(&self, key: &PKey<Public>) -> Result<bool, RequestError> {
        Ok(self.csr.public_key()?.public_eq(key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use openssl::x509::X509Builder;

    fn self_signed(cn: &str, key: &PKey<Private>) -> X509 {
        let mut name = X509Name::builder().unwrap();
        name.append_entry_by_text("CN", cn).unwrap();
        let name = name.build();
        let mut b = X509Builder::new().unwrap();
        b.set_version(2).unwrap();
        b.set_subject_name(&name).unwrap();
        b.set_issuer_name(&name).unwrap();
        b.set_pubkey(key).unwrap();
        b.set_not_before(&openssl::asn1::Asn1Time::days_from_now(0).unwrap())
            .unwrap();
        b.set_not_after(&openssl::asn1::Asn1Time::days_from_now(30).unwrap())
            .unwrap();
        b.sign(key, MessageDigest::sha256()).unwrap();
        b.build()
    }

    fn subject() -> CsrSubject {
        CsrSubject {
            common_name: "Town Hall MDM".into(),
            email: Some("it@town.example".into()),
            country: Some("pl".into()),
        }
    }

    #[test]
    fn signed_request_reads_back_and_verifies() {
        let push_key = generate_key().unwrap();
        let csr = make_csr(&push_key, &subject()).unwrap();
        // Version 1 (INTEGER 0), as RFC 2986 requires: OpenSSL 3.6 refuses to verify
        // a request whose version was never set.
        assert!(csr.verify(&push_key).unwrap());
        let parsed = X509Req::from_der(&csr.to_der().unwrap()).unwrap();
        assert_eq!(parsed.version(), 0);
        assert!(parsed.verify(&push_key).unwrap());
        let vendor_key = generate_key().unwrap();
        let vendor =
            VendorIdentity::new(vendor_key.clone(), vec![self_signed("Vendor", &vendor_key)])
                .unwrap();
        let text = sign_request(&csr, &vendor).unwrap();
        let read = PushCertRequest::parse(text.as_bytes()).unwrap();
        read.verify().unwrap();
        let public = PKey::public_key_from_der(&push_key.public_key_to_der().unwrap()).unwrap();
        assert!(read.is_for(&public).unwrap());
        assert_eq!(read.csr.to_der().unwrap(), csr.to_der().unwrap());

        // Another vendor's certificate in the chain: the signature no longer verifies.
        let other_key = generate_key().unwrap();
        let forged = PushCertRequest {
            chain: vec![self_signed("Other", &other_key)],
            ..read
        };
        assert!(forged.verify().is_err());
    }

    #[test]
    fn bad_subjects_and_keys_are_refused() {
        let key = generate_key().unwrap();
        let mut s = subject();
        s.country = Some("Poland".into());
        assert!(make_csr(&key, &s).is_err());
        let mut s = subject();
        s.email = Some("it.town.example".into());
        assert!(make_csr(&key, &s).is_err());
        let mut s = subject();
        s.common_name = " ".into();
        assert!(make_csr(&key, &s).is_err());
        let ec = enrollment::identity::testing::p256_key();
        assert!(make_csr(&ec, &subject()).is_err());
        // A vendor key that is not the certificate's.
        let vendor_key = generate_key().unwrap();
        let other = generate_key().unwrap();
        assert!(VendorIdentity::new(other, vec![self_signed("Vendor", &vendor_key)]).is_err());
    }

    #[test]
    fn garbage_requests_are_refused_with_a_reason() {
        for bad in [&b"not base64 !"[..], b"aGVsbG8=", b""] {
            let err = PushCertRequest::parse(bad)
                .err()
                .expect("refused")
                .to_string();
            assert!(err.contains("push certificate request"), "{err}");
        }
    }
}
