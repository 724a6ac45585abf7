//! Real SCEP clients against `enrollment::scep`, served over loopback HTTP:
//! micromdm's `scepclient` (Debian package `scep`, POSTs its requests) and
//! certmonger (its `scep-submit` helper GETs them and checks the reply's signature
//! with openssl; the daemon itself builds and decrypts the messages).
//!
//! A missing tool is reported as `SKIPPED <test>: ...` on stdout and stderr.
//! The certmonger daemon itself (key generation, rekey) is driven against the
//! running server in `tests/tests/scep_clients.rs`.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::{find_tool, pem_to_der, skip, ScepServer, TempDir};
use enrollment::ca::CertificateAuthority;
use enrollment::scep::client::{self, RequestOptions};
use enrollment::scep::{ContentCipher, MessageType};
use openssl::nid::Nid;
use openssl::pkey::PKey;
use openssl::rsa::Rsa;
use openssl::x509::{X509NameBuilder, X509};

const CHALLENGE: &str = "interop-challenge";
const SCEPCLIENT: &str = "scepclient";
const SCEP_SUBMIT: &str = "/usr/lib/certmonger/scep-submit";
const INSTALL: &str = "apt-get install -y scep certmonger";

fn server() -> ScepServer {
    let ca = CertificateAuthority::generate("Interop SCEP CA", "Example MDM", 1).unwrap();
    ScepServer::start(ca, CHALLENGE)
}

fn run(cmd: &mut Command) -> Output {
    let output = cmd.output().expect("the tool runs");
    eprintln!(
        "$ {cmd:?}\nexit: {}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn read_cert(path: &Path) -> X509 {
    X509::from_pem(&std::fs::read(path).unwrap()).unwrap()
}

fn common_name(cert: &X509) -> String {
    cert.subject_name()
        .entries_by_nid(Nid::COMMONNAME)
        .next()
        .unwrap()
        .data()
        .to_string()
        .unwrap()
}

/// Checks that `cert` was issued by the server's CA for the key in `key_pem`.
fn assert_issued_for(server: &ScepServer, cert: &X509, key_pem: &Path) {
    assert!(server.ca.issued(cert), "not issued by the CA");
    let key = PKey::private_key_from_pem(&std::fs::read(key_pem).unwrap()).unwrap();
    assert!(
        cert.public_key().unwrap().public_eq(&key),
        "not for the client's key"
    );
}

fn scepclient(server: &ScepServer, dir: &Path, cn: &str, challenge: &str) -> Output {
    run(Command::new(SCEPCLIENT)
        .arg("-server-url")
        .arg(&server.url)
        .arg("-private-key")
        .arg(dir.join("key.pem"))
        .arg("-certificate")
        .arg(dir.join("cert.pem"))
        .args([
            "-challenge",
            challenge,
            "-cn",
            cn,
            "-organization",
            "Example MDM",
        ])
        .args(["-keySize", "2048", "-debug"]))
}

#[test]
fn scepclient_enrolls_renews_and_is_refused_a_wrong_challenge() {
    if find_tool(SCEPCLIENT).is_none() {
        return skip(
            "scepclient_enrolls_renews_and_is_refused_a_wrong_challenge",
            SCEPCLIENT,
            INSTALL,
        );
    }
    let server = server();
    let dir = TempDir::new("scepclient");

    let out = scepclient(&server, dir.path(), "scepclient-device", CHALLENGE);
    assert!(
        out.status.success(),
        "enrollment failed: {:?}",
        server.exchanges()
    );
    let first = read_cert(&dir.path().join("cert.pem"));
    assert_issued_for(&server, &first, &dir.path().join("key.pem"));
    assert_eq!(common_name(&first), "scepclient-device");

    // With cert.pem present, scepclient renews: a RenewalReq signed by that cert.
    let out = scepclient(&server, dir.path(), "scepclient-device", CHALLENGE);
    assert!(
        out.status.success(),
        "renewal failed: {:?}",
        server.exchanges()
    );
    let renewed = read_cert(&dir.path().join("cert.pem"));
    assert_issued_for(&server, &renewed, &dir.path().join("key.pem"));
    assert_ne!(
        renewed.serial_number().to_bn().unwrap(),
        first.serial_number().to_bn().unwrap()
    );

    let refused_dir = TempDir::new("scepclient-refused");
    let out = scepclient(&server, refused_dir.path(), "guesser", "not-the-challenge");
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stdout) + String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("failInfo"), "{said}");
    assert!(!refused_dir.path().join("cert.pem").exists());

    let exchanges = server.exchanges();
    eprintln!("{exchanges:#?}");
    let kinds: Vec<_> = exchanges
        .iter()
        .map(|e| (e.method.as_str(), e.message_type, e.outcome.as_str()))
        .collect();
    assert_eq!(
        kinds,
        vec![
            ("POST", Some(MessageType::PkcsReq), "success"),
            ("POST", Some(MessageType::RenewalReq), "success"),
            (
                "POST",
                Some(MessageType::PkcsReq),
                "failure BadRequest (challenge)"
            ),
        ]
    );
    assert!(
        exchanges[1].signed_by_issued_cert,
        "renewal not signed by the old cert"
    );
}

fn rsa_key() -> PKey<openssl::pkey::Private> {
    PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap()
}

fn pem_block(label: &str, der: &[u8]) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let lines: Vec<&str> = b64
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!(
        "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
        lines.join("\n")
    )
}

/// certmonger's helper with a request built by our client module: the reply's
/// signature, attributes and envelope pass certmonger's openssl-based checks.
#[test]
fn certmonger_scep_submit_gets_a_certificate_and_a_refusal() {
    if find_tool(SCEP_SUBMIT).is_none() {
        return skip(
            "certmonger_scep_submit_gets_a_certificate_and_a_refusal",
            SCEP_SUBMIT,
            INSTALL,
        );
    }
    let server = server();
    let dir = TempDir::new("scep-submit");
    let ca_pem = dir.path().join("ca.pem");
    std::fs::write(&ca_pem, server.ca.cert_pem()).unwrap();

    let out = run(Command::new(SCEP_SUBMIT).args(["-u", &server.url, "-c"]));
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("SCEPStandard"));

    let submit = |cn: &str, challenge: &str| {
        let key = rsa_key();
        let mut name = X509NameBuilder::new().unwrap();
        name.append_entry_by_nid(Nid::COMMONNAME, cn).unwrap();
        let name = name.build();
        let mut opts = RequestOptions::new(&key, &name, server.ca.cert());
        opts.challenge = Some(challenge);
        let req = client::build_request(&opts).unwrap();
        let msg = dir.path().join(format!("{cn}.p7"));
        std::fs::write(&msg, pem_block("PKCS7", &req.der)).unwrap();
        let out = run(Command::new(SCEP_SUBMIT)
            .args(["-u", &server.url])
            // -r: the certificate to encrypt to; -N: the CA that signs replies.
            // scep-submit trusts nothing it did not get from its caller.
            .arg("-r")
            .arg(&ca_pem)
            .arg("-N")
            .arg(&ca_pem)
            .arg("-p")
            .arg(&msg));
        (key, req, out)
    };

    let (key, req, out) = submit("certmonger-device", CHALLENGE);
    assert_eq!(out.status.code(), Some(0), "{:?}", server.exchanges());
    let envelope = pem_to_der(&String::from_utf8_lossy(&out.stdout)).expect("a PEM envelope");
    let cert = client::open_cert_envelope(&envelope, &req).unwrap();
    assert!(server.ca.issued(&cert));
    assert!(cert.public_key().unwrap().public_eq(&key));
    assert_eq!(common_name(&cert), "certmonger-device");

    // Exit status 2 is certmonger's "the CA rejected the request".
    let (_, _, out) = submit("guesser", "wrong");
    assert_eq!(out.status.code(), Some(2), "{:?}", server.exchanges());
    assert!(String::from_utf8_lossy(&out.stdout).contains("not permitted"));

    let exchanges = server.exchanges();
    assert_eq!(exchanges.len(), 2, "{exchanges:?}");
    assert!(exchanges.iter().all(|e| e.method == "GET"), "{exchanges:?}");
    assert_eq!(exchanges[0].request_cipher, Some(ContentCipher::Aes256Cbc));
}
