//! SCEP messages come from anyone who can reach /scep: the parser must answer an
//! error, never panic, on truncated, mutated or random bytes.

use enrollment::ca::CertificateAuthority;
use enrollment::scep::client::{build_request, RequestOptions};
use openssl::nid::Nid;
use openssl::pkey::PKey;
use openssl::rsa::Rsa;
use openssl::x509::X509NameBuilder;

struct XorShift(u64);
impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn parse_request_never_panics_on_mangled_messages() {
    let ca = CertificateAuthority::generate("Fuzz CA", "Fuzz", 1).unwrap();
    let key = PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap();
    let mut name = X509NameBuilder::new().unwrap();
    name.append_entry_by_nid(Nid::COMMONNAME, "fuzz").unwrap();
    let name = name.build();
    let mut opts = RequestOptions::new(&key, &name, ca.cert());
    opts.challenge = Some("challenge");
    let valid = build_request(&opts).unwrap().der;
    assert!(enrollment::scep::parse_request(&valid, &ca).is_ok());

    let mut rng = XorShift(0x2545_F491_4F6C_DD1D);
    for cut in (0..valid.len()).step_by(7) {
        assert!(enrollment::scep::parse_request(&valid[..cut], &ca).is_err());
    }
    for _ in 0..1500 {
        let mut mutated = valid.clone();
        for _ in 0..(1 + rng.next() % 3) {
            let at = (rng.next() as usize) % mutated.len();
            mutated[at] = rng.next() as u8;
        }
        let _ = enrollment::scep::parse_request(&mutated, &ca);
    }
    for _ in 0..500 {
        let len = (rng.next() % 512) as usize;
        let mut random: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        if let Some(first) = random.first_mut() {
            *first = 0x30; // looks like a SEQUENCE, to get past the first check
        }
        let _ = enrollment::scep::parse_request(&random, &ca);
    }
}

/// Found by the `mdm_signature` fuzz target (LeakSanitizer, artifact
/// leak-151e880a38ef5a7df9cdef8145740f0f0649ad0b): an Mdm-Signature whose
/// SignedData announces a digest algorithm openssl does not know made OpenSSL 3.0's
/// PKCS7_verify leak its copy of the request body, about 300 bytes per request. Such
/// a header must be refused before PKCS7_verify runs, which this error shows.
#[test]
fn mdm_signature_leak_151e880a_unknown_digest_algorithm() {
    use base64::Engine;
    use enrollment::identity::testing::{sign_detached, TestCa};
    use enrollment::identity::{DeviceCa, IdentityError};
    let b64 = base64::engine::general_purpose::STANDARD;

    let ca = TestCa::new("Device CA");
    let (key, cert) = ca.issue("device-1");
    let body = b"<plist><dict><key>Status</key><string>Idle</string></dict></plist>";
    let header = sign_detached(&key, &cert, body);
    let trust = DeviceCa::from_certs(vec![ca.cert.clone()]).unwrap();
    assert!(trust.verify_mdm_signature(&header, body).is_ok());

    // The fuzzer's mutation: the SHA-256 OID (2.16.840.1.101.3.4.2.1) in the
    // SignedData's digestAlgorithms, its first occurrence, turned into 2.20.840....
    let mut der = b64.decode(&header).unwrap();
    let sha256 = [
        0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01,
    ];
    let at = der
        .windows(sha256.len())
        .position(|w| w == sha256)
        .expect("the SignedData names SHA-256");
    der[at + 2] = 0x64;
    assert_eq!(
        trust.verify_mdm_signature(&b64.encode(&der), body),
        Err(IdentityError::UnsupportedDigest)
    );
}
