//! What the fuzz targets share: the fixed trust anchors their seeds were made with.
//!
//! The seeds in `corpus/` are real signed messages: Mdm-Signature CMS by device
//! certificates of one device CA, SCEP requests encrypted to one SCEP CA. A target
//! must trust and decrypt with those same keys, or every seed would stop at the
//! first signature check and the fuzzer would never reach the code behind it. So the
//! keys are generated once by `examples/seeds.rs`, committed under `fixtures/`, and
//! read from there (at run time, so that the generator, which shares this crate, can
//! be built before they exist). They are throw-away keys for fuzzing only: nothing
//! trusts them.

use enrollment::ca::CertificateAuthority;
use enrollment::identity::DeviceCa;
use openssl::x509::X509;
use std::path::PathBuf;

/// `fixtures/<name>` of this crate.
pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name)
}

fn read_fixture(name: &str) -> Vec<u8> {
    let path = fixture(name);
    std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (run tests/fuzz/seeds to create the fixtures)",
            path.display()
        )
    })
}

/// The trust store `verify_mdm_signature` checks device certificates against: the
/// device CA that signed the seeds' device identities.
pub fn device_ca() -> DeviceCa {
    let cert = X509::from_pem(&read_fixture("device-ca.pem"))
        .expect("fixtures/device-ca.pem is a certificate");
    DeviceCa::from_certs(vec![cert]).expect("one CA certificate")
}

/// The CA `scep::parse_request` decrypts and checks renewals with: the one the
/// seeds' requests are sealed to.
pub fn scep_ca() -> CertificateAuthority {
    CertificateAuthority::from_pem(&read_fixture("scep-ca.pem"), &read_fixture("scep-ca.key"))
        .expect("fixtures/scep-ca.pem and scep-ca.key are a matching pair")
}

/// How an `mdm_signature` input is split into the header and the body it signs.
///
/// Byte 0 chooses how the header is given: even, the header text as the server
/// receives it (base64); odd, raw DER that the target base64-encodes first, so that
/// mutations land in the CMS structure rather than in its base64 text. Bytes 1-2 are
/// the header's length (big-endian, cut to what is there); the body is the rest.
pub fn split_signature_input(data: &[u8]) -> Option<(String, &[u8])> {
    use base64::Engine;
    let (&mode, rest) = data.split_first()?;
    let (len, rest) = rest.split_at_checked(2)?;
    let len = usize::from(u16::from_be_bytes([len[0], len[1]])).min(rest.len());
    let (head, body) = rest.split_at(len);
    let header = if mode % 2 == 0 {
        // An HTTP header value reaches the server as text (`to_str`).
        std::str::from_utf8(head).ok()?.to_owned()
    } else {
        base64::engine::general_purpose::STANDARD.encode(head)
    };
    Some((header, body))
}

/// The inverse of [`split_signature_input`], used to write seeds: `header` is the
/// base64 text when `raw_der` is false, the DER when it is true.
pub fn join_signature_input(header: &[u8], raw_der: bool, body: &[u8]) -> Vec<u8> {
    let len = u16::try_from(header.len()).expect("a seed header fits 64 kB");
    let mut out = vec![u8::from(raw_der)];
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(header);
    out.extend_from_slice(body);
    out
}
