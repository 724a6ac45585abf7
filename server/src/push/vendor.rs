//! The MDM vendor certificate an office may hold itself (Apple Developer Enterprise
//! Program, certificate type "MDM CSR"): read from PEM/DER files or a PKCS#12, and its
//! chain completed up to Apple's root from the certificates the admin gives.
//!
//! Apple's portal wants the whole chain, root included, in the request; Apple publishes
//! the intermediate and root at https://www.apple.com/certificateauthority/ as DER
//! `.cer` files, which is why both encodings are read. The chain is built by issuer
//! name *and* signature, so a certificate with a matching name but another key is not
//! taken, and an incomplete chain is refused with the name of the missing issuer.

use super::request::{RequestError, VendorIdentity};
use openssl::pkcs12::Pkcs12;
use openssl::pkey::{PKey, Private};
use openssl::x509::X509;

/// No real chain is longer; a longer one means a loop of cross-signed certificates.
const MAX_CHAIN: usize = 6;

/// Where the admin finds what is missing.
pub const APPLE_CA_PAGE: &str = "https://www.apple.com/certificateauthority/";

fn invalid(message: String) -> RequestError {
    RequestError::Invalid(message)
}

/// Every certificate in `bytes`: one or more PEM certificates, or one DER certificate.
pub fn read_certificates(bytes: &[u8], what: &str) -> Result<Vec<X509>, RequestError> {
    if bytes.windows(11).any(|w| w == b"-----BEGIN ") {
        let certs = X509::stack_from_pem(bytes)
            .map_err(|_| invalid(format!("{what} is not a readable PEM certificate")))?;
        if certs.is_empty() {
            return Err(invalid(format!("{what} holds no certificate")));
        }
        Ok(certs)
    } else {
        X509::from_der(bytes)
            .map(|c| vec![c])
            .map_err(|_| invalid(format!("{what} is neither a PEM nor a DER certificate")))
    }
}

/// The vendor identity from a certificate file and a PEM key file.
pub fn from_files(
    cert: &[u8],
    key_pem: &[u8],
    apple_certs: Vec<X509>,
    now: i64,
) -> Result<VendorIdentity, RequestError> {
    let mut certs = read_certificates(cert, "the vendor certificate")?;
    let leaf = certs.remove(0);
    let key = PKey::private_key_from_pem(key_pem).map_err(|_| {
        invalid("the vendor key is not a readable PEM private key (an encrypted key must be decrypted first, or use --vendor-pkcs12)".into())
    })?;
    certs.extend(apple_certs);
    identity(leaf, key, certs, now)
}

/// The vendor identity from a PKCS#12 (as Keychain Access exports it); certificates
/// inside it count towards the chain.
pub fn from_pkcs12(
    der: &[u8],
    password: &str,
    apple_certs: Vec<X509>,
    now: i64,
) -> Result<VendorIdentity, RequestError> {
    // Keychain exports use RC2/3DES, which OpenSSL 3 reads only with its legacy provider.
    super::certificate::load_legacy_provider();
    let parsed = Pkcs12::from_der(der)
        .and_then(|p| p.parse2(password))
        .map_err(|_| {
            invalid(
                "the vendor PKCS#12 cannot be opened: wrong password, or not a PKCS#12 file".into(),
            )
        })?;
    let (Some(leaf), Some(key)) = (parsed.cert, parsed.pkey) else {
        return Err(invalid(
            "the vendor PKCS#12 holds no certificate with its private key".into(),
        ));
    };
    let mut pool: Vec<X509> = parsed
        .ca
        .map(|s| s.into_iter().collect())
        .unwrap_or_default();
    pool.extend(apple_certs);
    identity(leaf, key, pool, now)
}

fn identity(
    leaf: X509,
    key: PKey<Private>,
    pool: Vec<X509>,
    now: i64,
) -> Result<VendorIdentity, RequestError> {
    check_validity(&leaf, "the vendor certificate", now)?;
    let chain = complete_chain(leaf, &pool)?;
    for cert in &chain[1..] {
        check_validity(cert, "Apple's certificate", now)?;
    }
    VendorIdentity::new(key, chain)
}

fn check_validity(cert: &X509, what: &str, now: i64) -> Result<(), RequestError> {
    let name = enrollment::identity::name_to_string(cert.subject_name());
    let not_after = enrollment::identity::unix_time(cert.not_after()).unwrap_or(0);
    let not_before = enrollment::identity::unix_time(cert.not_before()).unwrap_or(i64::MAX);
    if not_after <= now {
        return Err(invalid(format!(
            "{what} ({name}) expired on {}: Apple refuses requests signed with it",
            cert.not_after()
        )));
    }
    if not_before > now {
        return Err(invalid(format!(
            "{what} ({name}) is not valid before {}",
            cert.not_before()
        )));
    }
    Ok(())
}

fn self_signed(cert: &X509) -> bool {
    cert.issuer_name_hash() == cert.subject_name_hash()
        && cert
            .public_key()
            .and_then(|k| cert.verify(&k))
            .unwrap_or(false)
}

/// The chain from `leaf` to a self-signed root, each step found in `pool` by name and
/// checked by signature.
pub fn complete_chain(leaf: X509, pool: &[X509]) -> Result<Vec<X509>, RequestError> {
    let mut chain = vec![leaf];
    loop {
        let current = chain.last().expect("never empty");
        if self_signed(current) {
            return Ok(chain);
        }
        if chain.len() >= MAX_CHAIN {
            return Err(invalid(format!(
                "the vendor certificate's chain is longer than {MAX_CHAIN} certificates"
            )));
        }
        let issuer = pool.iter().find(|candidate| {
            candidate.subject_name_hash() == current.issuer_name_hash()
                && candidate
                    .public_key()
                    .and_then(|k| current.verify(&k))
                    .unwrap_or(false)
        });
        match issuer {
            Some(next) => chain.push(next.clone()),
            None => {
                return Err(invalid(format!(
                    "the chain stops at {}: give its certificate with --apple-cert (Apple's \
                     Worldwide Developer Relations intermediate and Apple Root CA are at {APPLE_CA_PAGE}); \
                     Apple's portal wants the chain up to the root",
                    enrollment::identity::name_to_string(current.issuer_name())
                )))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use openssl::hash::MessageDigest;
    use openssl::x509::{X509Builder, X509Name};

    fn cert(cn: &str, key: &PKey<Private>, issuer: Option<(&X509, &PKey<Private>)>) -> X509 {
        let mut name = X509Name::builder().unwrap();
        name.append_entry_by_text("CN", cn).unwrap();
        let name = name.build();
        let mut b = X509Builder::new().unwrap();
        b.set_version(2).unwrap();
        b.set_subject_name(&name).unwrap();
        b.set_issuer_name(issuer.map(|(c, _)| c.subject_name()).unwrap_or(&name))
            .unwrap();
        b.set_pubkey(key).unwrap();
        b.set_not_before(&openssl::asn1::Asn1Time::days_from_now(0).unwrap())
            .unwrap();
        b.set_not_after(&openssl::asn1::Asn1Time::days_from_now(30).unwrap())
            .unwrap();
        b.sign(
            issuer.map(|(_, k)| k).unwrap_or(key),
            MessageDigest::sha256(),
        )
        .unwrap();
        b.build()
    }

    #[test]
    fn chain_is_completed_by_name_and_signature() {
        let key = || super::super::request::generate_key().unwrap();
        let (root_key, wwdr_key, vendor_key) = (key(), key(), key());
        let root = cert("Root", &root_key, None);
        let wwdr = cert("WWDR", &wwdr_key, Some((&root, &root_key)));
        let vendor = cert("Vendor", &vendor_key, Some((&wwdr, &wwdr_key)));
        // Same name as the intermediate, another key: never taken.
        let impostor_key = key();
        let impostor = cert("WWDR", &impostor_key, Some((&root, &root_key)));

        // The root as DER, as Apple publishes it.
        let root_der = read_certificates(&root.to_der().unwrap(), "root").unwrap();
        let mut pool = vec![impostor, wwdr.clone()];
        pool.extend(root_der);
        let chain = complete_chain(vendor.clone(), &pool).unwrap();
        let names: Vec<String> = chain
            .iter()
            .map(|c| enrollment::identity::name_to_string(c.subject_name()))
            .collect();
        assert_eq!(names, ["CN=Vendor", "CN=WWDR", "CN=Root"]);
        assert_eq!(chain[1].to_der().unwrap(), wwdr.to_der().unwrap());

        let err = complete_chain(vendor, &[wwdr]).err().unwrap().to_string();
        assert!(err.contains("the chain stops at CN=Root"), "{err}");
    }

    #[test]
    fn pkcs12_identity_uses_its_certificates_and_refuses_a_wrong_password() {
        let key = || super::super::request::generate_key().unwrap();
        let (root_key, wwdr_key, vendor_key) = (key(), key(), key());
        let root = cert("Root", &root_key, None);
        let wwdr = cert("WWDR", &wwdr_key, Some((&root, &root_key)));
        let vendor = cert("Vendor", &vendor_key, Some((&wwdr, &wwdr_key)));
        let mut extra = openssl::stack::Stack::new().unwrap();
        extra.push(wwdr).unwrap();
        let p12 = Pkcs12::builder()
            .name("vendor")
            .pkey(&vendor_key)
            .cert(&vendor)
            .ca(extra)
            .build2("secret")
            .unwrap()
            .to_der()
            .unwrap();
        let now = chrono::Utc::now().timestamp();
        // The intermediate comes from the PKCS#12, the root from Apple's file.
        let identity = from_pkcs12(&p12, "secret", vec![root.clone()], now).unwrap();
        assert_eq!(
            identity.certificate().to_der().unwrap(),
            vendor.to_der().unwrap()
        );
        let err = from_pkcs12(&p12, "wrong", vec![root], now)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("wrong password"), "{err}");
        // Expired by the time it is used: refused, saying so.
        let later = now + 60 * 86_400;
        let err = from_pkcs12(&p12, "secret", vec![], later)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("expired"), "{err}");
    }
}
