//! Real SCEP clients against the running server, with challenges from real
//! enrollment profiles: Debian's `scepclient` (POST, renewal with RenewalReq) and
//! certmonger (the daemon: GET, checks the reply signature, rekeys with a PKCSReq
//! signed by its current certificate). A missing tool is reported as SKIPPED.

use mdm_tests::enroll::fetch_profile;
use mdm_tests::fixture::{Backend, ServerOptions, TempDir, TestServer};
use mdm_tests::on_every_backend;
use openssl::x509::X509;
use serde_json::json;
use std::path::Path;
use std::process::{Command, Output};

const SCEP_SUBMIT: &str = "/usr/lib/certmonger/scep-submit";

fn tool(name: &str) -> bool {
    if name.starts_with('/') {
        return Path::new(name).exists();
    }
    Command::new("sh")
        .args(["-c", &format!("command -v {name}")])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

fn skip(test: &str, what: &str, install: &str) {
    println!("SKIPPED {test}: {what} not installed ({install})");
    eprintln!("SKIPPED {test}: {what} not installed ({install})");
}

fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("the tool runs");
    eprintln!(
        "$ {cmd:?}\nexit: {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

async fn setup(backend: Backend) -> (TestServer, X509) {
    let server = TestServer::start_with(
        backend,
        ServerOptions {
            with_device_ca: false,
            // The clients renew right after enrolling: the window spans the whole year.
            extra_args: vec!["--renewal-window-days".into(), "366".into()],
            ..Default::default()
        },
    )
    .await;
    server.upload_push_certificate().await;
    let ca = server.scep_ca().await;
    (server, ca)
}

async fn challenge(server: &TestServer) -> String {
    let e = server
        .create_enrollment(json!({ "platform": "apple", "name": "Interop" }))
        .await;
    fetch_profile(&server.local_url(&e)).await.challenge
}

fn read_cert(path: &Path) -> X509 {
    X509::from_pem(&std::fs::read(path).unwrap()).unwrap()
}

fn issued_by(ca: &X509, cert: &X509) -> bool {
    cert.verify(&ca.public_key().unwrap()).unwrap_or(false)
}

/// Enrolls an MDM device with the key and certificate a client left in `dir`: only
/// the current certificate of an enrolled device may renew.
async fn enroll_with(server: &TestServer, dir: &Path) {
    let key =
        openssl::pkey::PKey::private_key_from_pem(&std::fs::read(dir.join("key.pem")).unwrap())
            .unwrap();
    let device = mdm_tests::simulator::SimDevice::with_identity(
        &server.base_url,
        uuid::Uuid::new_v4().to_string().to_uppercase(),
        key,
        read_cert(&dir.join("cert.pem")),
        "iPhone15,2",
        "iOS",
    );
    device.enroll().await;
}

async fn scepclient_enrolls_and_renews(backend: Backend) {
    const TEST: &str = "scepclient_enrolls_and_renews";
    if !tool("scepclient") {
        return skip(TEST, "scepclient", "apt-get install -y scep");
    }
    let (server, ca) = setup(backend).await;
    let dir = TempDir::new("scepclient");
    let scepclient = |dir: &Path, challenge: &str| {
        run(Command::new("scepclient")
            .arg("-server-url")
            .arg(server.url("/scep"))
            .arg("-private-key")
            .arg(dir.join("key.pem"))
            .arg("-certificate")
            .arg(dir.join("cert.pem"))
            .args([
                "-challenge",
                challenge,
                "-cn",
                "scepclient-device",
                "-organization",
                "Town Hall",
            ])
            .args(["-keySize", "2048"]))
    };
    let good = challenge(&server).await;
    let out = scepclient(&dir.0, &good);
    assert!(out.status.success(), "scepclient enrollment failed");
    let first = read_cert(&dir.0.join("cert.pem"));
    assert!(issued_by(&ca, &first), "issued by the built-in device CA");

    // Again with cert.pem present: a RenewalReq signed by the first certificate, once
    // that certificate speaks for an enrolled device.
    enroll_with(&server, &dir.0).await;
    let out = scepclient(&dir.0, &good);
    assert!(out.status.success(), "scepclient renewal failed");
    let renewed = read_cert(&dir.0.join("cert.pem"));
    assert!(issued_by(&ca, &renewed));
    assert_ne!(
        renewed.serial_number().to_bn().unwrap(),
        first.serial_number().to_bn().unwrap()
    );
    assert_eq!(server.events("device.identity_renewed").await.len(), 1);

    // The challenge was for one device: a second device with it is refused.
    let other = TempDir::new("scepclient-other");
    let out = scepclient(&other.0, &good);
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stdout) + String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("failInfo"), "{said}");
    assert!(!other.0.join("cert.pem").exists());
}

async fn certmonger_enrolls_and_rekeys(backend: Backend) {
    const TEST: &str = "certmonger_enrolls_and_rekeys";
    for t in ["certmonger", "getcert", SCEP_SUBMIT] {
        if !tool(t) {
            return skip(TEST, t, "apt-get install -y certmonger");
        }
    }
    if !tool("dbus-run-session") {
        return skip(TEST, "dbus-run-session", "apt-get install -y dbus-daemon");
    }
    let (server, ca) = setup(backend).await;
    let dir = TempDir::new("certmonger");
    let path = |name: &str| dir.0.join(name).to_str().unwrap().to_owned();
    std::fs::write(path("ca.pem"), ca.to_pem().unwrap()).unwrap();
    for sub in ["requests", "cas", "local", "tmp"] {
        std::fs::create_dir_all(path(sub)).unwrap();
    }
    let good = challenge(&server).await;
    // certmonger keeps the CA it is given with -N as the root it trusts for replies.
    // Two runs of the daemon on the same state: enroll, then (after the certificate's
    // device has enrolled with the MDM, as only such a certificate renews) rekey.
    let enroll = format!(
        "set -e\n\
         getcert add-scep-ca -s -c TownHall -u {url} -N {ca}\n\
         getcert request -s -c TownHall -I mdm -f {cert} -k {key} -N CN=certmonger-device -L {challenge} -w -v\n\
         cp {cert} {first}\n",
        url = server.url("/scep"),
        ca = path("ca.pem"),
        cert = path("cert.pem"),
        key = path("key.pem"),
        first = path("first.pem"),
        challenge = good,
    );
    let rekey = "set -e\ngetcert rekey -s -i mdm -w -v\ngetcert list -s\n".to_owned();
    let daemon = |script: &str, name: &str| {
        std::fs::write(path(name), script).unwrap();
        run(Command::new("timeout")
            .args([
                "180",
                "dbus-run-session",
                "--",
                "certmonger",
                "-s",
                "-n",
                "-c",
            ])
            .arg(format!("sh {}", path(name)))
            .env("HOME", &dir.0)
            .env("CERTMONGER_CONFIG_DIR", &dir.0)
            .env("CERTMONGER_REQUESTS_DIR", path("requests"))
            .env("CERTMONGER_CAS_DIR", path("cas"))
            .env("CERTMONGER_LOCAL_CA_DIR", path("local"))
            .env("CERTMONGER_TMPDIR", path("tmp")))
    };
    let out = daemon(&enroll, "enroll.sh");
    assert!(out.status.success(), "certmonger enrollment failed");
    enroll_with(&server, &dir.0).await;
    let out = daemon(&rekey, "rekey.sh");
    assert!(out.status.success(), "certmonger failed");
    assert!(String::from_utf8_lossy(&out.stdout).contains("status: MONITORING"));
    let first = read_cert(&dir.0.join("first.pem"));
    let rekeyed = read_cert(&dir.0.join("cert.pem"));
    assert!(issued_by(&ca, &first) && issued_by(&ca, &rekeyed));
    assert!(
        !first
            .public_key()
            .unwrap()
            .public_eq(&rekeyed.public_key().unwrap()),
        "a new key"
    );
    assert_eq!(server.events("scep.certificate_issued").await.len(), 1);
    assert_eq!(
        server.events("device.identity_renewed").await.len(),
        1,
        "the rekey is a renewal"
    );

    // scep-submit alone with a wrong challenge: the CA's refusal (exit 2).
    let key = mdm_tests::enroll::rsa_key();
    let mut name = openssl::x509::X509Name::builder().unwrap();
    name.append_entry_by_nid(openssl::nid::Nid::COMMONNAME, "guesser")
        .unwrap();
    let name = name.build();
    let mut opts = enrollment::scep::client::RequestOptions::new(&key, &name, &ca);
    opts.challenge = Some("wrong");
    let req = enrollment::scep::client::build_request(&opts).unwrap();
    use base64::Engine;
    let pem = format!(
        "-----BEGIN PKCS7-----\n{}\n-----END PKCS7-----\n",
        base64::engine::general_purpose::STANDARD.encode(&req.der)
    );
    std::fs::write(path("guess.p7"), pem).unwrap();
    let out = run(Command::new(SCEP_SUBMIT)
        .args(["-u", &server.url("/scep")])
        .arg("-r")
        .arg(path("ca.pem"))
        .arg("-N")
        .arg(path("ca.pem"))
        .arg("-p")
        .arg(path("guess.p7")));
    assert_eq!(
        out.status.code(),
        Some(2),
        "certmonger's 'rejected by the CA'"
    );
}

on_every_backend!(scepclient_enrolls_and_renews, certmonger_enrolls_and_rekeys);
