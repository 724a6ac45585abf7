//! The server's own TLS root for zero configuration: a small CA (CA:TRUE, keyCertSign,
//! no intermediates allowed below it) that issues the HTTPS certificate the server
//! answers with. The enrollment profile installs this root on the phone, so the
//! SCEP and MDM URLs are trusted during installation; a self-signed leaf could not
//! serve as such an anchor (strict clients refuse a CA:FALSE trust anchor).
//!
//! EC P-256 throughout: smaller handshakes than RSA, and accepted by every client
//! Apple or Mozilla's intermediate TLS configuration names.

use std::net::IpAddr;

use openssl::asn1::Asn1Time;
use openssl::bn::{BigNum, MsbOption};
use openssl::ec::{EcGroup, EcKey};
use openssl::error::ErrorStack;
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::x509::extension::{
    AuthorityKeyIdentifier, BasicConstraints, ExtendedKeyUsage, KeyUsage, SubjectAlternativeName,
    SubjectKeyIdentifier,
};
use openssl::x509::{X509Builder, X509NameBuilder, X509};

use crate::ca::CaError;

/// Lifetime of an HTTPS certificate issued by the root: within the 398 days Apple
/// accepts for TLS server certificates and the 366 of Mozilla's intermediate
/// configuration, and short enough that a leaked key ages out.
pub const LEAF_LIFETIME_DAYS: u32 = 90;
/// A leaf this close to its expiry is replaced (at start, and by the running server).
pub const LEAF_RENEW_BEFORE_DAYS: u32 = 30;
/// The root outlives many leaves: re-installing it means re-enrolling every phone.
const ROOT_LIFETIME_YEARS: u32 = 20;
/// Leaves are back-dated a little for devices whose clock runs behind.
const CLOCK_SKEW_SECS: i64 = 10 * 60;

/// The TLS root and its key.
pub struct ServerTlsAuthority {
    cert: X509,
    key: PKey<Private>,
}

impl std::fmt::Debug for ServerTlsAuthority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerTlsAuthority")
            .field("subject", &self.cert.subject_name())
            .field("key", &"<redacted>")
            .finish()
    }
}

/// An issued HTTPS certificate with its key.
pub struct ServerCertificate {
    pub cert: X509,
    pub key: PKey<Private>,
}

fn p256_key() -> Result<PKey<Private>, ErrorStack> {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1)?;
    PKey::from_ec_key(EcKey::generate(&group)?)
}

fn random_serial(b: &mut X509Builder) -> Result<(), ErrorStack> {
    let mut serial = BigNum::new()?;
    serial.rand(127, MsbOption::MAYBE_ZERO, false)?;
    let serial = serial.to_asn1_integer()?;
    b.set_serial_number(&serial)
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

impl ServerTlsAuthority {
    /// A new root named after the organisation.
    pub fn generate(organization: &str) -> Result<Self, CaError> {
        let key = p256_key()?;
        let mut name = X509NameBuilder::new()?;
        // "Town Hall MDM server root"; an organisation already named "... MDM" is
        // not made to stutter.
        let common_name = if organization.split_whitespace().any(|w| w == "MDM") {
            format!("{organization} server root")
        } else {
            format!("{organization} MDM server root")
        };
        name.append_entry_by_nid(Nid::COMMONNAME, &common_name)?;
        if !organization.is_empty() {
            name.append_entry_by_nid(Nid::ORGANIZATIONNAME, organization)?;
        }
        let name = name.build();
        let mut b = X509Builder::new()?;
        b.set_version(2)?;
        random_serial(&mut b)?;
        b.set_subject_name(&name)?;
        b.set_issuer_name(&name)?;
        b.set_pubkey(&key)?;
        let not_before = Asn1Time::from_unix(unix_now() - CLOCK_SKEW_SECS)?;
        b.set_not_before(&not_before)?;
        let not_after = Asn1Time::days_from_now(ROOT_LIFETIME_YEARS * 365 + 5)?;
        b.set_not_after(&not_after)?;
        // pathlen 0: this root issues server certificates only, never another CA.
        b.append_extension(BasicConstraints::new().critical().ca().pathlen(0).build()?)?;
        b.append_extension(
            KeyUsage::new()
                .critical()
                .key_cert_sign()
                .crl_sign()
                .build()?,
        )?;
        let ski = SubjectKeyIdentifier::new().build(&b.x509v3_context(None, None))?;
        b.append_extension(ski)?;
        b.sign(&key, MessageDigest::sha256())?;
        Ok(ServerTlsAuthority {
            cert: b.build(),
            key,
        })
    }

    /// Loads the root from PEM, checking that it can act as one.
    pub fn from_pem(cert_pem: &[u8], key_pem: &[u8]) -> Result<Self, CaError> {
        let cert = X509::from_pem(cert_pem).map_err(|e| CaError::BadPem(e.to_string()))?;
        let key =
            PKey::private_key_from_pem(key_pem).map_err(|e| CaError::BadPem(e.to_string()))?;
        if !cert.public_key()?.public_eq(&key) {
            return Err(CaError::KeyMismatch);
        }
        if !is_ca(&cert) {
            return Err(CaError::InvalidParameter(
                "the TLS root must be a CA certificate (basicConstraints CA:TRUE)".into(),
            ));
        }
        Ok(ServerTlsAuthority { cert, key })
    }

    pub fn cert(&self) -> &X509 {
        &self.cert
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

    /// Issues an HTTPS certificate for `hosts` (DNS names or IP addresses; the first
    /// is the subject's CN), valid for [`LEAF_LIFETIME_DAYS`].
    pub fn issue_server_certificate(&self, hosts: &[String]) -> Result<ServerCertificate, CaError> {
        let first = hosts
            .first()
            .ok_or_else(|| CaError::InvalidParameter("no host name to certify".into()))?;
        let key = p256_key()?;
        let mut name = X509NameBuilder::new()?;
        name.append_entry_by_nid(Nid::COMMONNAME, first)?;
        let name = name.build();
        let mut b = X509Builder::new()?;
        b.set_version(2)?;
        random_serial(&mut b)?;
        b.set_subject_name(&name)?;
        b.set_issuer_name(self.cert.subject_name())?;
        b.set_pubkey(&key)?;
        let not_before = Asn1Time::from_unix(unix_now() - CLOCK_SKEW_SECS)?;
        b.set_not_before(&not_before)?;
        let not_after = Asn1Time::days_from_now(LEAF_LIFETIME_DAYS)?;
        b.set_not_after(&not_after)?;
        b.append_extension(BasicConstraints::new().critical().build()?)?;
        b.append_extension(KeyUsage::new().critical().digital_signature().build()?)?;
        b.append_extension(ExtendedKeyUsage::new().server_auth().build()?)?;
        let mut san = SubjectAlternativeName::new();
        for host in hosts {
            match host.trim_matches(['[', ']']).parse::<IpAddr>() {
                Ok(ip) => san.ip(&ip.to_string()),
                Err(_) => san.dns(host),
            };
        }
        let san = san.build(&b.x509v3_context(Some(&self.cert), None))?;
        b.append_extension(san)?;
        let ski = SubjectKeyIdentifier::new().build(&b.x509v3_context(Some(&self.cert), None))?;
        b.append_extension(ski)?;
        let aki = AuthorityKeyIdentifier::new()
            .keyid(true)
            .build(&b.x509v3_context(Some(&self.cert), None))?;
        b.append_extension(aki)?;
        b.sign(&self.key, MessageDigest::sha256())?;
        Ok(ServerCertificate {
            cert: b.build(),
            key,
        })
    }
}

/// Whether the certificate says it is a CA (basicConstraints CA:TRUE). The openssl
/// crate does not expose basic constraints, so the text form is read.
pub fn is_ca(cert: &X509) -> bool {
    cert.to_text()
        .map(|t| String::from_utf8_lossy(&t).contains("CA:TRUE"))
        .unwrap_or(false)
}

/// Seconds until `cert` expires (negative once it has).
pub fn seconds_left(cert: &X509) -> i64 {
    crate::identity::unix_time(cert.not_after())
        .map(|t| t - unix_now())
        .unwrap_or(0)
}

/// Whether a leaf must be replaced now: it expires within
/// [`LEAF_RENEW_BEFORE_DAYS`], or does not name every host it must serve.
pub fn needs_renewal(cert: &X509, hosts: &[String]) -> bool {
    if seconds_left(cert) < i64::from(LEAF_RENEW_BEFORE_DAYS) * 86_400 {
        return true;
    }
    let names: Vec<String> = cert
        .subject_alt_names()
        .map(|sans| {
            sans.iter()
                .filter_map(|n| {
                    n.dnsname().map(str::to_owned).or_else(|| {
                        n.ipaddress().and_then(|b| match b.len() {
                            4 => Some(IpAddr::from(<[u8; 4]>::try_from(b).ok()?).to_string()),
                            16 => Some(IpAddr::from(<[u8; 16]>::try_from(b).ok()?).to_string()),
                            _ => None,
                        })
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    hosts
        .iter()
        .any(|h| !names.iter().any(|n| n == h.trim_matches(['[', ']'])))
}

#[cfg(test)]
mod tests {
    use super::*;
    use openssl::stack::Stack;
    use openssl::x509::store::X509StoreBuilder;
    use openssl::x509::verify::{X509VerifyFlags, X509VerifyParam};
    use openssl::x509::X509StoreContext;

    fn verifies_for(root: &X509, leaf: &X509, host: &str) -> bool {
        let mut param = X509VerifyParam::new().unwrap();
        match host.parse::<IpAddr>() {
            Ok(ip) => param.set_ip(ip).unwrap(),
            Err(_) => param.set_host(host).unwrap(),
        }
        let mut store = X509StoreBuilder::new().unwrap();
        store.add_cert(root.clone()).unwrap();
        store.set_flags(X509VerifyFlags::X509_STRICT).unwrap();
        store.set_param(&param).unwrap();
        let store = store.build();
        let mut ctx = X509StoreContext::new().unwrap();
        let chain = Stack::new().unwrap();
        ctx.init(&store, leaf, &chain, |c| c.verify_cert()).unwrap()
    }

    #[test]
    fn root_is_a_ca_and_its_leaf_verifies_for_every_host_it_names() {
        let root = ServerTlsAuthority::generate("Town Hall").unwrap();
        assert!(is_ca(root.cert()));
        let text = String::from_utf8(root.cert().to_text().unwrap()).unwrap();
        assert!(text.contains("Certificate Sign"), "{text}");
        let hosts: Vec<String> = ["mdm.example.org", "localhost", "127.0.0.1", "::1"]
            .map(String::from)
            .to_vec();
        let leaf = root.issue_server_certificate(&hosts).unwrap();
        assert!(!is_ca(&leaf.cert));
        for host in ["mdm.example.org", "localhost", "127.0.0.1", "::1"] {
            assert!(verifies_for(root.cert(), &leaf.cert, host), "{host}");
        }
        assert!(!verifies_for(root.cert(), &leaf.cert, "evil.example.org"));
        let other = ServerTlsAuthority::generate("Other").unwrap();
        assert!(!verifies_for(other.cert(), &leaf.cert, "localhost"));
        assert!(!needs_renewal(&leaf.cert, &hosts));
        assert!(needs_renewal(&leaf.cert, &["other.example.org".to_owned()]));
        let days = seconds_left(&leaf.cert) / 86_400;
        assert!((89..=90).contains(&days), "{days}");
        // Round trip, and a leaf is refused as a root.
        let again = ServerTlsAuthority::from_pem(&root.cert_pem(), &root.key_pem()).unwrap();
        assert_eq!(
            again.cert().to_der().unwrap(),
            root.cert().to_der().unwrap()
        );
        let leaf_pem = leaf.cert.to_pem().unwrap();
        let leaf_key = leaf.key.private_key_to_pem_pkcs8().unwrap();
        assert!(ServerTlsAuthority::from_pem(&leaf_pem, &leaf_key).is_err());
    }
}
