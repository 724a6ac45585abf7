//! SCEP server functions against the crate's own client: every accepted path and
//! every refusal the server must be able to answer.

use enrollment::ca::{CaError, CertificateAuthority, KeyUsageBits};
use enrollment::identity::testing::p256_key;
use enrollment::scep::client::{self, CertRepOutcome, ClientRequest, RequestOptions};
use enrollment::scep::{
    self, cert_rep_failure, cert_rep_success, parse_request, ContentCipher, FailInfo, MessageType,
    PkiRequest,
};
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use openssl::x509::{X509Name, X509NameBuilder, X509};

fn name(cn: &str) -> X509Name {
    let mut n = X509NameBuilder::new().unwrap();
    n.append_entry_by_nid(Nid::COMMONNAME, cn).unwrap();
    n.append_entry_by_nid(Nid::ORGANIZATIONNAME, "Example MDM")
        .unwrap();
    n.build()
}

fn rsa_key(bits: u32) -> PKey<Private> {
    PKey::from_rsa(Rsa::generate(bits).unwrap()).unwrap()
}

fn ca() -> CertificateAuthority {
    CertificateAuthority::generate("SCEP Test CA", "Example MDM", 1).unwrap()
}

/// What the server's HTTP adapter does: parse, check the challenge, issue, reply.
fn serve(ca: &CertificateAuthority, der: &[u8], usage: KeyUsageBits) -> Vec<u8> {
    match parse_request(der, ca) {
        Ok(req) => {
            if req.message_type == MessageType::PkcsReq
                && req.challenge_password.as_deref() != Some("s3cret")
            {
                return cert_rep_failure(&req.envelope(), FailInfo::BadRequest, ca).unwrap();
            }
            let subject = req.csr.subject_name().to_owned().unwrap();
            let cert = ca.issue(&req.csr, &subject, 365, usage).unwrap();
            cert_rep_success(&req, &cert, ca).unwrap()
        }
        Err(e) => cert_rep_failure(&e.envelope, e.fail_info, ca).unwrap(),
    }
}

fn enroll(ca: &CertificateAuthority, key: &PKey<Private>, cn: &str) -> (ClientRequest, X509) {
    let subject = name(cn);
    let mut opts = RequestOptions::new(key, &subject, ca.cert());
    opts.challenge = Some("s3cret");
    let req = client::build_request(&opts).unwrap();
    let reply = serve(ca, &req.der, KeyUsageBits::BOTH);
    match client::parse_cert_rep(&reply, &req, ca.cert()).unwrap() {
        CertRepOutcome::Success(cert) => (req, cert),
        other => panic!("expected a certificate, got {other:?}"),
    }
}

fn key_usage(cert: &X509) -> String {
    // openssl's text form is the easiest stable view of the extension.
    String::from_utf8(cert.to_text().unwrap()).unwrap()
}

#[test]
fn pkcsreq_with_rsa_2048_is_issued() {
    let ca = ca();
    let key = rsa_key(2048);
    let (req, cert) = enroll(&ca, &key, "rsa-device");
    assert!(ca.issued(&cert));
    assert!(cert
        .verify(ca.cert().public_key().unwrap().as_ref())
        .unwrap());
    assert!(cert.public_key().unwrap().public_eq(&key));
    let cn = cert
        .subject_name()
        .entries_by_nid(Nid::COMMONNAME)
        .next()
        .unwrap();
    assert_eq!(cn.data().to_string().unwrap(), "rsa-device");
    let text = key_usage(&cert);
    assert!(
        text.contains("Digital Signature, Key Encipherment"),
        "{text}"
    );
    assert!(text.contains("TLS Web Client Authentication"), "{text}");
    assert_eq!(req.message_type, MessageType::PkcsReq);
}

#[test]
fn pkcsreq_with_p256_is_issued() {
    let ca = ca();
    let key = p256_key();
    let (_, cert) = enroll(&ca, &key, "ec-device");
    assert!(ca.issued(&cert));
    assert!(cert.public_key().unwrap().public_eq(&key));
    let text = key_usage(&cert);
    assert!(text.contains("Digital Signature, Key Agreement"), "{text}");
}

#[test]
fn parsed_request_exposes_what_the_server_decides_on() {
    let ca = ca();
    let key = rsa_key(2048);
    let subject = name("inspect");
    let mut opts = RequestOptions::new(&key, &subject, ca.cert());
    opts.challenge = Some("pässwörd");
    let sent = client::build_request(&opts).unwrap();
    let req: PkiRequest = parse_request(&sent.der, &ca).unwrap();
    assert_eq!(req.message_type, MessageType::PkcsReq);
    assert_eq!(req.transaction_id, sent.transaction_id);
    assert_eq!(req.sender_nonce, sent.sender_nonce);
    assert_eq!(req.challenge_password.as_deref(), Some("pässwörd"));
    assert_eq!(req.request_cipher, ContentCipher::Aes256Cbc);
    assert_eq!(
        req.signer.to_der().unwrap(),
        sent.signer().to_der().unwrap()
    );
    assert!(format!("{req:?}").contains("has_challenge: true"));
}

#[test]
fn key_usage_follows_the_payload() {
    let ca = ca();
    let key = rsa_key(2048);
    let subject = name("signing-only");
    let mut opts = RequestOptions::new(&key, &subject, ca.cert());
    opts.challenge = Some("s3cret");
    let req = client::build_request(&opts).unwrap();
    let reply = serve(&ca, &req.der, KeyUsageBits::SIGNING);
    let CertRepOutcome::Success(cert) = client::parse_cert_rep(&reply, &req, ca.cert()).unwrap()
    else {
        panic!("no certificate");
    };
    let text = key_usage(&cert);
    assert!(text.contains("Digital Signature\n"), "{text}");
    assert!(!text.contains("Key Encipherment"), "{text}");
}

#[test]
fn triple_des_requests_are_answered_with_aes() {
    let ca = ca();
    let key = rsa_key(2048);
    let subject = name("legacy");
    let mut opts = RequestOptions::new(&key, &subject, ca.cert());
    opts.challenge = Some("s3cret");
    opts.cipher = ContentCipher::DesEde3Cbc;
    let sent = client::build_request(&opts).unwrap();
    let req = parse_request(&sent.der, &ca).unwrap();
    assert_eq!(req.request_cipher, ContentCipher::DesEde3Cbc);
    assert_eq!(req.reply_cipher, ContentCipher::Aes256Cbc);
    let reply = serve(&ca, &sent.der, KeyUsageBits::BOTH);
    assert!(matches!(
        client::parse_cert_rep(&reply, &sent, ca.cert()).unwrap(),
        CertRepOutcome::Success(_)
    ));
}

#[test]
fn renewal_signed_by_an_issued_certificate_succeeds() {
    let ca = ca();
    let old_key = rsa_key(2048);
    let (_, old_cert) = enroll(&ca, &old_key, "renewing");

    let new_key = rsa_key(2048);
    let subject = name("renewing");
    let mut opts = RequestOptions::new(&new_key, &subject, ca.cert());
    opts.renew_with = Some((&old_cert, &old_key));
    let req = client::build_request(&opts).unwrap();
    assert_eq!(req.message_type, MessageType::RenewalReq);

    let parsed = parse_request(&req.der, &ca).unwrap();
    assert_eq!(parsed.message_type, MessageType::RenewalReq);
    assert_eq!(parsed.signer.to_der().unwrap(), old_cert.to_der().unwrap());

    let reply = serve(&ca, &req.der, KeyUsageBits::BOTH);
    match client::parse_cert_rep(&reply, &req, ca.cert()).unwrap() {
        CertRepOutcome::Success(cert) => {
            assert!(ca.issued(&cert));
            assert!(cert.public_key().unwrap().public_eq(&new_key));
        }
        other => panic!("expected a certificate, got {other:?}"),
    }
}

#[test]
fn renewal_signed_by_a_foreign_certificate_is_bad_cert_id() {
    let ca = ca();
    let other_ca = CertificateAuthority::generate("Someone else", "", 1).unwrap();
    let foreign_key = rsa_key(2048);
    let (_, foreign_cert) = enroll(&other_ca, &foreign_key, "intruder");

    let new_key = rsa_key(2048);
    let subject = name("intruder");
    let mut opts = RequestOptions::new(&new_key, &subject, ca.cert());
    opts.renew_with = Some((&foreign_cert, &foreign_key));
    let req = client::build_request(&opts).unwrap();

    let err = parse_request(&req.der, &ca).unwrap_err();
    assert_eq!(err.fail_info, FailInfo::BadCertId, "{err}");
    let reply = serve(&ca, &req.der, KeyUsageBits::BOTH);
    assert!(matches!(
        client::parse_cert_rep(&reply, &req, ca.cert()).unwrap(),
        CertRepOutcome::Failure(FailInfo::BadCertId)
    ));
}

#[test]
fn wrong_challenge_gets_a_verifiable_failure() {
    let ca = ca();
    let key = rsa_key(2048);
    let subject = name("guesser");
    let mut opts = RequestOptions::new(&key, &subject, ca.cert());
    opts.challenge = Some("wrong");
    let req = client::build_request(&opts).unwrap();
    let reply = serve(&ca, &req.der, KeyUsageBits::BOTH);
    assert!(matches!(
        client::parse_cert_rep(&reply, &req, ca.cert()).unwrap(),
        CertRepOutcome::Failure(FailInfo::BadRequest)
    ));
    // A reply signed by another CA is refused by the client.
    let other = CertificateAuthority::generate("Impostor", "", 1).unwrap();
    let forged = cert_rep_failure(&req_envelope(&ca, &req), FailInfo::BadRequest, &other).unwrap();
    assert!(matches!(
        client::parse_cert_rep(&forged, &req, ca.cert()),
        Err(client::ClientError::BadSignature)
    ));
}

fn req_envelope(ca: &CertificateAuthority, req: &ClientRequest) -> scep::RequestEnvelope {
    parse_request(&req.der, ca).unwrap().envelope()
}

#[test]
fn garbage_is_bad_request_without_a_transaction_to_answer() {
    let ca = ca();
    for garbage in [&b""[..], b"hello", &[0x30, 0x03, 0x02, 0x01, 0x01]] {
        let err = parse_request(garbage, &ca).unwrap_err();
        assert!(
            matches!(
                err.fail_info,
                FailInfo::BadRequest | FailInfo::BadMessageCheck
            ),
            "{err}"
        );
        assert!(err.envelope.transaction_id.is_none());
        assert!(cert_rep_failure(&err.envelope, err.fail_info, &ca).is_err());
    }
}

#[test]
fn garbage_inside_a_signed_message_can_still_be_answered() {
    let ca = ca();
    let key = rsa_key(2048);
    let subject = name("garbled");
    let opts = RequestOptions::new(&key, &subject, ca.cert());
    let good = client::build_request(&opts).unwrap();
    // Encrypted to another CA: well signed, but its content is garbage to us.
    let other = CertificateAuthority::generate("Elsewhere", "", 1).unwrap();
    let opts = RequestOptions::new(&key, &subject, other.cert());
    let misaddressed = client::build_request(&opts).unwrap();

    let err = parse_request(&misaddressed.der, &ca).unwrap_err();
    assert_eq!(err.fail_info, FailInfo::BadMessageCheck, "{err}");
    assert_eq!(
        err.envelope.transaction_id.as_deref(),
        Some(misaddressed.transaction_id.as_str())
    );
    let reply = cert_rep_failure(&err.envelope, err.fail_info, &ca).unwrap();
    assert!(matches!(
        client::parse_cert_rep(&reply, &misaddressed, ca.cert()).unwrap(),
        CertRepOutcome::Failure(FailInfo::BadMessageCheck)
    ));
    assert_eq!(good.transaction_id, misaddressed.transaction_id);
}

#[test]
fn tampered_signature_is_bad_message_check() {
    let ca = ca();
    let key = rsa_key(2048);
    let subject = name("tampered");
    let mut opts = RequestOptions::new(&key, &subject, ca.cert());
    opts.challenge = Some("s3cret");
    let req = client::build_request(&opts).unwrap();

    // The signature is the last thing in the message: flip its final byte.
    let mut der = req.der.clone();
    *der.last_mut().unwrap() ^= 0x01;
    let err = parse_request(&der, &ca).unwrap_err();
    assert_eq!(err.fail_info, FailInfo::BadMessageCheck, "{err}");
    assert_eq!(
        err.envelope.transaction_id.as_deref(),
        Some(req.transaction_id.as_str())
    );
    assert!(cert_rep_failure(&err.envelope, err.fail_info, &ca).is_ok());

    // Tampering with the encrypted content breaks the messageDigest instead.
    let mut der = req.der.clone();
    let mid = der.len() / 2;
    der[mid] ^= 0x01;
    let err = parse_request(&der, &ca).unwrap_err();
    assert!(
        matches!(
            err.fail_info,
            FailInfo::BadMessageCheck | FailInfo::BadRequest
        ),
        "{err}"
    );
}

/// Some clients stream their messages: indefinite lengths (BER) must be read too.
#[test]
fn ber_encoded_requests_are_accepted() {
    let ca = ca();
    let key = rsa_key(2048);
    let subject = name("streaming");
    let mut opts = RequestOptions::new(&key, &subject, ca.cert());
    opts.challenge = Some("s3cret");
    let sent = client::build_request(&opts).unwrap();
    // ContentInfo and its [0] content: definite lengths to indefinite ones.
    let ber = indefinite(&sent.der);
    assert_ne!(ber, sent.der);
    let req = parse_request(&ber, &ca).unwrap();
    assert_eq!(req.transaction_id, sent.transaction_id);
    assert_eq!(req.challenge_password.as_deref(), Some("s3cret"));
}

/// Rewrites the outer SEQUENCE and its first constructed child with indefinite
/// lengths (long-form DER lengths only, which a PKIMessage always has).
fn indefinite(der: &[u8]) -> Vec<u8> {
    fn header(bytes: &[u8]) -> (u8, usize, usize) {
        assert!(bytes[1] & 0x80 != 0, "short-form length");
        let n = (bytes[1] & 0x7f) as usize;
        let len = bytes[2..2 + n]
            .iter()
            .fold(0usize, |acc, b| acc << 8 | *b as usize);
        (bytes[0], 2 + n, len)
    }
    let (outer_tag, outer_head, _) = header(der);
    let content_type = &der[outer_head..outer_head + 11]; // OID signedData
    let rest = &der[outer_head + 11..];
    let (inner_tag, inner_head, inner_len) = header(rest);
    let mut out = vec![outer_tag, 0x80];
    out.extend_from_slice(content_type);
    out.extend_from_slice(&[inner_tag, 0x80]);
    out.extend_from_slice(&rest[inner_head..inner_head + inner_len]);
    out.extend_from_slice(&[0, 0, 0, 0]);
    out
}

#[test]
fn a_reply_for_another_request_is_refused() {
    let ca = ca();
    let key = rsa_key(2048);
    let (_, _) = enroll(&ca, &key, "first");
    let subject = name("second");
    let mut opts = RequestOptions::new(&key, &subject, ca.cert());
    opts.challenge = Some("s3cret");
    let a = client::build_request(&opts).unwrap();
    let b = client::build_request(&opts).unwrap();
    let reply_to_a = serve(&ca, &a.der, KeyUsageBits::BOTH);
    assert!(matches!(
        client::parse_cert_rep(&reply_to_a, &b, ca.cert()),
        Err(client::ClientError::Mismatch("recipientNonce"))
    ));
}

#[test]
fn rsa_1024_is_an_unsupported_key() {
    let ca = ca();
    let key = rsa_key(1024);
    let subject = name("weak");
    let mut opts = RequestOptions::new(&key, &subject, ca.cert());
    opts.challenge = Some("s3cret");
    let sent = client::build_request(&opts).unwrap();
    let req = parse_request(&sent.der, &ca).unwrap();
    let err = ca
        .issue(&req.csr, &subject, 365, KeyUsageBits::BOTH)
        .unwrap_err();
    assert!(matches!(err, CaError::UnsupportedKey(_)), "{err}");
}

/// Strict clients parse DER, not BER: decoding with a strict DER decoder and
/// re-encoding (which sorts every SET OF) must give back the very same bytes.
#[test]
fn replies_are_canonical_der() {
    use cms::content_info::ContentInfo;
    use cms::signed_data::SignedData;
    use der::{Decode, Encode};

    let ca = ca();
    let key = rsa_key(2048);
    let subject = name("strict");
    let mut opts = RequestOptions::new(&key, &subject, ca.cert());
    opts.challenge = Some("s3cret");
    let req = client::build_request(&opts).unwrap();
    let parsed = parse_request(&req.der, &ca).unwrap();
    let cert = ca
        .issue(&parsed.csr, &subject, 30, KeyUsageBits::BOTH)
        .unwrap();
    let success = cert_rep_success(&parsed, &cert, &ca).unwrap();
    let failure = cert_rep_failure(&parsed.envelope(), FailInfo::BadTime, &ca).unwrap();
    for der in [&req.der, &success, &failure] {
        let info = ContentInfo::from_der(der).unwrap();
        let signed: SignedData = info.content.decode_as().unwrap();
        assert_eq!(&info.to_der().unwrap(), der);
        let signer = &signed.signer_infos.0.as_slice()[0];
        assert!(matches!(
            signer.sid,
            cms::signed_data::SignerIdentifier::IssuerAndSerialNumber(_)
        ));
        assert_eq!(signed.certificates.as_ref().unwrap().0.len(), 1);
    }
}

#[test]
fn ca_cert_response_and_caps() {
    let ca = ca();
    let (content_type, der) = scep::ca_cert_response(&ca);
    assert_eq!(content_type, "application/x-x509-ca-cert");
    assert_eq!(
        X509::from_der(&der).unwrap().to_der().unwrap(),
        ca.cert().to_der().unwrap()
    );
    for cap in [
        "POSTPKIOperation",
        "SHA-256",
        "AES",
        "SCEPStandard",
        "Renewal",
    ] {
        assert!(scep::CA_CAPS.lines().any(|l| l == cap), "{cap}");
    }
    assert_eq!(scep::CERT_REP_CONTENT_TYPE, "application/x-pki-message");
}
