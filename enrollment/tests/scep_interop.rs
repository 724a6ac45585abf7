//! Real SCEP clients against `enrollment::scep`, served over loopback HTTP:
//! micromdm's `scepclient` (Debian package `scep`, POSTs its requests) and
//! certmonger (its `scep-submit` helper GETs them and checks the reply's signature
//! with openssl; the daemon itself builds and decrypts the messages).
//!
//! A missing tool is reported as `SKIPPED <test>: ...` on stdout and stderr.

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

/// The whole of certmonger: the daemon generates the key, builds the PKCSReq,
/// submits it through scep-submit and decrypts the reply; then rekeys.
#[test]
fn certmonger_daemon_enrolls_and_rekeys() {
    const TEST: &str = "certmonger_daemon_enrolls_and_rekeys";
    for tool in ["certmonger", "getcert", SCEP_SUBMIT, "dbus-run-session"] {
        if find_tool(tool).is_none() {
            let install = if tool == "dbus-run-session" {
                "apt-get install -y dbus-daemon"
            } else {
                INSTALL
            };
            return skip(TEST, tool, install);
        }
    }
    let server = server();
    let dir = TempDir::new("certmonger");
    let path = |name: &str| dir.path().join(name).to_str().unwrap().to_owned();
    std::fs::write(path("ca.pem"), server.ca.cert_pem()).unwrap();
    for sub in ["requests", "cas", "local", "tmp"] {
        std::fs::create_dir_all(path(sub)).unwrap();
    }
    let script = format!(
        "set -e\n\
         getcert add-scep-ca -s -c MDMTest -u {url} -N {ca}\n\
         getcert request -s -c MDMTest -I mdm -f {cert} -k {key} -N CN=certmonger-daemon -L {challenge} -w -v\n\
         cp {cert} {first}\n\
         getcert rekey -s -i mdm -w -v\n\
         getcert list -s\n",
        url = server.url,
        ca = path("ca.pem"),
        cert = path("cert.pem"),
        key = path("key.pem"),
        first = path("first.pem"),
        challenge = CHALLENGE,
    );
    std::fs::write(path("enroll.sh"), script).unwrap();

    // A private session bus; certmonger -c runs the script and exits with it. Its
    // state goes to the temporary directory, not /var/lib/certmonger.
    let out = run(Command::new("timeout")
        .args([
            "180",
            "dbus-run-session",
            "--",
            "certmonger",
            "-s",
            "-n",
            "-c",
        ])
        .arg(format!("sh {}", path("enroll.sh")))
        .env("HOME", dir.path())
        .env("CERTMONGER_CONFIG_DIR", dir.path())
        .env("CERTMONGER_REQUESTS_DIR", path("requests"))
        .env("CERTMONGER_CAS_DIR", path("cas"))
        .env("CERTMONGER_LOCAL_CA_DIR", path("local"))
        .env("CERTMONGER_TMPDIR", path("tmp")));
    let exchanges = server.exchanges();
    eprintln!("{exchanges:#?}");
    assert!(out.status.success(), "{exchanges:?}");
    let listing = String::from_utf8_lossy(&out.stdout);
    assert!(listing.contains("status: MONITORING"), "{listing}");

    let first = read_cert(&dir.path().join("first.pem"));
    assert!(server.ca.issued(&first));
    assert_eq!(common_name(&first), "certmonger-daemon");
    let rekeyed = read_cert(&dir.path().join("cert.pem"));
    assert_issued_for(&server, &rekeyed, &dir.path().join("key.pem"));
    assert!(!first
        .public_key()
        .unwrap()
        .public_eq(&rekeyed.public_key().unwrap()));

    assert_eq!(exchanges.len(), 2, "{exchanges:?}");
    assert!(exchanges
        .iter()
        .all(|e| e.method == "GET" && e.outcome == "success"));
    assert!(exchanges
        .iter()
        .all(|e| e.message_type == Some(MessageType::PkcsReq)));
    // The rekey is signed with the certificate being replaced (our Renewal cap).
    assert!(!exchanges[0].signed_by_issued_cert);
    assert!(exchanges[1].signed_by_issued_cert, "{exchanges:?}");
}
