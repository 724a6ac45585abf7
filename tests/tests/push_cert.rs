//! Getting the push certificate without leaving the tool: `mdm push-cert request`
//! (own vendor certificate, mdmcert.download, or the CSR alone), `decrypt`, the upload
//! of the certificate alone with the key the server kept, and renewal checks. The
//! vendor chain, mdmcert.download and Apple's portal are local fakes
//! (`mdm_tests::fake_mdmcert`); nothing reaches the internet.

use base64::Engine;
use enrollment::identity::testing::TestCa;
use mdm_server::storage::EnrollmentStore;
use mdm_tests::fake_apns::make_push_certificate;
use mdm_tests::fake_mdmcert::{
    issue_from_request, issue_push_certificate, read_request, AppleVendorChain, FakeMdmcert,
};
use mdm_tests::fixture::{mdm_binary, Backend, TempDir, TestServer};
use mdm_tests::on_every_backend;
use openssl::hash::MessageDigest;
use openssl::sign::Verifier;
use openssl::x509::{X509Req, X509};
use reqwest::StatusCode;
use serde_json::json;
use std::path::Path;
use std::process::Output;

const TOPIC: &str = "com.apple.mgmt.External.9d3c1f4e-2b7a-4c1e-8f0d-6a5b4c3d2e1f";
const OTHER_TOPIC: &str = "com.apple.mgmt.External.11111111-2222-4333-8444-555555555555";
const API_KEY: &str = "test-mdmcert-api-key-0123456789";
const EMAIL: &str = "it@town.example";

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}
fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// `mdm <args>` on the server host: the test server's database and data folder (its
/// master key), nothing from the test's own environment.
async fn host(server: &TestServer, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = tokio::process::Command::new(mdm_binary());
    cmd.args(args)
        .arg("--database-url")
        .arg(&server.database_url)
        .arg("--data-dir")
        .arg(&server.data_dir);
    for var in [
        "MDM_DATABASE_URL",
        "MDM_CONFIG",
        "MDM_MASTER_KEY",
        "MDM_DATA_DIR",
        "MDM_MDMCERT_API_KEY",
        "MDM_MDMCERT_URL",
        "MDM_VENDOR_PKCS12_PASSWORD",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("RUST_LOG", "error");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().await.expect("run mdm")
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The kept push key's row, as stored.
async fn kept_row(server: &TestServer) -> Option<mdm_server::storage::PkiObject> {
    server.store().await.pki_object("push_key").await.unwrap()
}

struct VendorFiles {
    chain: AppleVendorChain,
    cert: std::path::PathBuf,
    key: std::path::PathBuf,
    wwdr: std::path::PathBuf,
    root: std::path::PathBuf,
}

/// The vendor certificate and key as PEM files, Apple's intermediate as PEM and its
/// root as DER (how Apple publishes it).
fn vendor_files(dir: &Path) -> VendorFiles {
    let chain = AppleVendorChain::new("Town Hall");
    let files = VendorFiles {
        cert: dir.join("mdm_vendor.pem"),
        key: dir.join("mdm_vendor.key"),
        wwdr: dir.join("AppleWWDRCA.pem"),
        root: dir.join("AppleIncRootCertificate.cer"),
        chain,
    };
    std::fs::write(&files.cert, files.chain.vendor_cert.to_pem().unwrap()).unwrap();
    std::fs::write(
        &files.key,
        files.chain.vendor_key.private_key_to_pem_pkcs8().unwrap(),
    )
    .unwrap();
    std::fs::write(&files.wwdr, files.chain.wwdr.to_pem().unwrap()).unwrap();
    std::fs::write(&files.root, files.chain.root.to_der().unwrap()).unwrap();
    files
}

async fn vendor_request(server: &TestServer, v: &VendorFiles, out: &Path) -> Output {
    host(
        server,
        &[
            "push-cert",
            "request",
            "--vendor-cert",
            path(&v.cert),
            "--vendor-key",
            path(&v.key),
            "--apple-cert",
            path(&v.wwdr),
            "--apple-cert",
            path(&v.root),
            "--email",
            EMAIL,
            "--country",
            "PL",
            "--out",
            path(out),
        ],
        &[],
    )
    .await
}

async fn upload_cert_only(server: &TestServer, cert: &X509) -> (StatusCode, serde_json::Value) {
    server
        .api(
            "PUT",
            "/push-certificate",
            Some(json!({ "certificate_pem": String::from_utf8(cert.to_pem().unwrap()).unwrap() })),
        )
        .await
}

async fn vendor_signed_request_verifies_and_uploads_with_kept_key(backend: Backend) {
    let server = TestServer::start(backend).await;
    let dir = TempDir::new("mdm-push-cert");
    let v = vendor_files(&dir.0);
    let out = dir.0.join("push-request.b64");

    // Without the root the chain is incomplete: refused, naming what is missing,
    // nothing written, no key kept.
    let o = host(
        &server,
        &[
            "push-cert",
            "request",
            "--vendor-cert",
            path(&v.cert),
            "--vendor-key",
            path(&v.key),
            "--apple-cert",
            path(&v.wwdr),
            "--out",
            path(&out),
        ],
        &[],
    )
    .await;
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("the chain stops at") && stderr(&o).contains("Test Apple Root CA"),
        "{}",
        stderr(&o)
    );
    assert!(!out.exists());
    assert!(kept_row(&server).await.is_none());
    assert_eq!(
        std::fs::read_dir(&dir.0).unwrap().count(),
        4,
        "no temporary file left"
    );

    let o = vendor_request(&server, &v, &out).await;
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("identity.apple.com"), "{}", stdout(&o));

    // The request, read with openssl and plist alone.
    let text = std::fs::read_to_string(&out).unwrap();
    let xml = base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .unwrap();
    let plist: plist::Value = plist::from_bytes(&xml).unwrap();
    let dict = plist.as_dictionary().unwrap();
    let b64 = |k: &str| {
        base64::engine::general_purpose::STANDARD
            .decode(dict.get(k).unwrap().as_string().unwrap())
            .unwrap()
    };
    let csr_der = b64("PushCertRequestCSR");
    let signature = b64("PushCertSignature");
    // SHA256withRSA over the CSR's DER, with the vendor certificate's public key.
    let vendor_public = v.chain.vendor_cert.public_key().unwrap();
    let mut verifier = Verifier::new(MessageDigest::sha256(), &vendor_public).unwrap();
    verifier.update(&csr_der).unwrap();
    assert!(verifier.verify(&signature).unwrap(), "signature verifies");
    // The chain: vendor, Apple's intermediate, Apple's root, PEM with 64-char lines.
    let chain_pem = dict
        .get("PushCertCertificateChain")
        .unwrap()
        .as_string()
        .unwrap();
    assert!(chain_pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .all(|l| l.len() <= 64));
    let chain = X509::stack_from_pem(chain_pem.as_bytes()).unwrap();
    let ders: Vec<Vec<u8>> = chain.iter().map(|c| c.to_der().unwrap()).collect();
    assert_eq!(
        ders,
        vec![
            v.chain.vendor_cert.to_der().unwrap(),
            v.chain.wwdr.to_der().unwrap(),
            v.chain.root.to_der().unwrap()
        ]
    );
    // The CSR parses, its self-signature verifies, and it says who asked.
    let csr = X509Req::from_der(&csr_der).unwrap();
    assert!(csr.verify(&csr.public_key().unwrap()).unwrap());
    let subject = format!("{:?}", csr.subject_name());
    assert!(subject.contains(EMAIL), "{subject}");
    assert!(read_request(&text).is_ok());

    // The key is kept sealed: no PEM in the row.
    let row = kept_row(&server).await.expect("push key kept");
    assert!(enrollment::seal::is_sealed(&row.private_key_sealed));
    assert!(!String::from_utf8_lossy(&row.private_key_sealed).contains("PRIVATE KEY"));
    assert!(row.chain_pem.unwrap().contains("CERTIFICATE REQUEST"));

    // The same output again: refused, the first file untouched.
    let o = vendor_request(&server, &v, &out).await;
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("refusing to overwrite"),
        "{}",
        stderr(&o)
    );
    assert_eq!(std::fs::read_to_string(&out).unwrap(), text);

    // Apple issues the certificate; the upload needs only it.
    let apple = TestCa::new("Fake Apple Push CA");
    let cert = issue_from_request(&apple, &text, TOPIC);
    let cert_file = dir.0.join("MDM_Certificate.pem");
    std::fs::write(&cert_file, cert.to_pem().unwrap()).unwrap();
    let o = server
        .clone_cli()
        .run(&["push-cert", "upload", "--cert", path(&cert_file), "--json"])
        .await;
    assert!(o.status.success(), "{}", stderr(&o));
    let info: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(info["topic"], TOPIC);
    let events = server.events("admin.push_request_created").await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["actor"], "server-host");
}

async fn csr_only_and_key_file(backend: Backend) {
    let server = TestServer::start(backend).await;
    let dir = TempDir::new("mdm-push-cert");
    let csr_out = dir.0.join("push.csr");
    let key_out = dir.0.join("push.key");
    let o = host(
        &server,
        &[
            "push-cert",
            "request",
            "--out",
            path(&csr_out),
            "--key-out",
            path(&key_out),
            "--cn",
            "Town Hall MDM",
        ],
        &[],
    )
    .await;
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("vendor"), "{}", stdout(&o));
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&key_out).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let key = openssl::pkey::PKey::private_key_from_pem(&std::fs::read(&key_out).unwrap()).unwrap();
    let csr = X509Req::from_pem(&std::fs::read(&csr_out).unwrap()).unwrap();
    assert!(csr.public_key().unwrap().public_eq(&key));
    assert_eq!(key.bits(), 2048);
    // Written to a file when asked: nothing kept in the database.
    assert!(kept_row(&server).await.is_none());
    // So the certificate alone cannot be uploaded; with --key it can.
    let apple = TestCa::new("Fake Apple Push CA");
    let cert = issue_push_certificate(&apple, &csr.public_key().unwrap(), TOPIC);
    let (code, body) = upload_cert_only(&server, &cert).await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap_or_default()
            .contains("no push key is kept"),
        "{body}"
    );
    let cert_file = dir.0.join("cert.pem");
    std::fs::write(&cert_file, cert.to_pem().unwrap()).unwrap();
    let o = server
        .clone_cli()
        .run(&[
            "push-cert",
            "upload",
            "--cert",
            path(&cert_file),
            "--key",
            path(&key_out),
        ])
        .await;
    assert!(o.status.success(), "{}", stderr(&o));

    // A country that is not two letters: refused before anything is made.
    let o = host(
        &server,
        &[
            "push-cert",
            "request",
            "--out",
            path(&dir.0.join("other.csr")),
            "--country",
            "Poland",
        ],
        &[],
    )
    .await;
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("two-letter"), "{}", stderr(&o));
    assert!(!dir.0.join("other.csr").exists());

    // Run with the wrong data folder: refused, and no master key or database is
    // created there (a key kept in them would never reach the server).
    let elsewhere = dir.0.join("not-the-server");
    let o = tokio::process::Command::new(mdm_binary())
        .args(["push-cert", "request", "--out"])
        .arg(dir.0.join("third.csr"))
        .arg("--data-dir")
        .arg(&elsewhere)
        .env_remove("MDM_MASTER_KEY")
        .env_remove("MDM_DATABASE_URL")
        .env_remove("MDM_CONFIG")
        .env_remove("MDM_DATA_DIR")
        .output()
        .await
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("no master key"), "{}", stderr(&o));
    assert!(!elsewhere.join("master.key").exists());
    assert!(!elsewhere.join("mdm.sqlite").exists());
}

async fn mdmcert_download_flow(backend: Backend) {
    let server = TestServer::start(backend).await;
    let fake = FakeMdmcert::start(API_KEY, &[EMAIL]).await;
    let dir = TempDir::new("mdm-push-cert");
    let url = fake.url();
    let request = |key: &'static str, email: &'static str| {
        let server = &server;
        let url = url.clone();
        async move {
            host(
                server,
                &["push-cert", "request", "--mdmcert", "--email", email],
                &[("MDM_MDMCERT_URL", &url), ("MDM_MDMCERT_API_KEY", key)],
            )
            .await
        }
    };

    // No API key configured: a usage error, nothing sent.
    let o = host(
        &server,
        &["push-cert", "request", "--mdmcert", "--email", EMAIL],
        &[("MDM_MDMCERT_URL", &url)],
    )
    .await;
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("MDM_MDMCERT_API_KEY"), "{}", stderr(&o));
    assert!(fake.requests().is_empty());
    // A wrong API key: the service's reason, no key kept.
    let o = request("wrong-key", EMAIL).await;
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("invalid API key"), "{}", stderr(&o));
    assert!(kept_row(&server).await.is_none());
    assert!(fake.mails().is_empty());
    // A plain-http URL to another host is refused (the API key travels in the body).
    let o = host(
        &server,
        &["push-cert", "request", "--mdmcert", "--email", EMAIL],
        &[
            (
                "MDM_MDMCERT_URL",
                "http://mdmcert.example/api/v1/signrequest",
            ),
            ("MDM_MDMCERT_API_KEY", API_KEY),
        ],
    )
    .await;
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("must be https"), "{}", stderr(&o));

    let o = request(API_KEY, EMAIL).await;
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("mdm push-cert decrypt"),
        "{}",
        stdout(&o)
    );
    // What the service received: base64 of a PEM CSR and of a PEM certificate.
    let sent = fake.requests().last().unwrap().clone();
    assert_eq!(sent["email"], EMAIL);
    assert_eq!(sent["key"], API_KEY);
    let b64 = base64::engine::general_purpose::STANDARD;
    let csr = X509Req::from_pem(&b64.decode(sent["csr"].as_str().unwrap()).unwrap()).unwrap();
    let exchange = X509::from_pem(&b64.decode(sent["encrypt"].as_str().unwrap()).unwrap()).unwrap();
    let row = kept_row(&server).await.expect("push key kept");
    assert_eq!(
        X509::from_pem(row.certificate_pem.as_bytes())
            .unwrap()
            .to_der()
            .unwrap(),
        exchange.to_der().unwrap(),
        "the key kept is the one the mail is encrypted to"
    );

    // A second request before any certificate: a new key replaces the first, and
    // the first mail no longer opens.
    let o = request(API_KEY, EMAIL).await;
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("replaces the push key"),
        "{}",
        stdout(&o)
    );
    let first_csr = csr;
    let sent = fake.requests().last().unwrap().clone();
    let csr = X509Req::from_pem(&b64.decode(sent["csr"].as_str().unwrap()).unwrap()).unwrap();
    assert!(!csr
        .public_key()
        .unwrap()
        .public_eq(&first_csr.public_key().unwrap()));
    let mails = fake.mails();
    assert_eq!(mails.len(), 2);
    assert_eq!(mails[1].to, EMAIL);
    let out = dir.0.join("push-request.b64");
    let stale = dir.0.join("stale.p7");
    std::fs::write(&stale, &mails[0].attachment).unwrap();
    let o = host(
        &server,
        &["push-cert", "decrypt", path(&stale), "--out", path(&out)],
        &[],
    )
    .await;
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("another request"), "{}", stderr(&o));
    assert!(!out.exists());

    // The mail arrives; decrypt turns it into the request for Apple's portal.
    let mailed = dir.0.join(&mails[1].filename);
    std::fs::write(&mailed, &mails[1].attachment).unwrap();
    // Not the mailed file: a clear refusal, nothing written.
    let garbage = dir.0.join("garbage.p7");
    std::fs::write(&garbage, "this is not hex").unwrap();
    let o = host(
        &server,
        &["push-cert", "decrypt", path(&garbage), "--out", path(&out)],
        &[],
    )
    .await;
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("hexadecimal"), "{}", stderr(&o));
    assert!(!out.exists());

    let o = host(
        &server,
        &["push-cert", "decrypt", path(&mailed), "--out", path(&out)],
        &[],
    )
    .await;
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("identity.apple.com"), "{}", stdout(&o));
    let request_text = std::fs::read_to_string(&out).unwrap();
    let read = read_request(&request_text).expect("the decrypted request verifies");
    assert_eq!(read.csr.to_der().unwrap(), csr.to_der().unwrap());

    // Apple issues the certificate; uploaded alone, it pairs with the kept key.
    let apple = TestCa::new("Fake Apple Push CA");
    let cert = issue_from_request(&apple, &request_text, TOPIC);
    let (code, body) = upload_cert_only(&server, &cert).await;
    assert_eq!(code, StatusCode::OK, "{body}");
    assert_eq!(body["topic"], TOPIC);

    // A second request, now that a certificate is in use, is a renewal: it keeps the
    // key (and the exchange certificate), so even the first mail still opens.
    let o = request(API_KEY, EMAIL).await;
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("Renewal"), "{}", stdout(&o));
    assert!(!stdout(&o).contains("replaces"), "{}", stdout(&o));
    let again = dir.0.join("again.b64");
    let o = host(
        &server,
        &["push-cert", "decrypt", path(&mailed), "--out", path(&again)],
        &[],
    )
    .await;
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(fake.mails().len(), 3);
    let renewed_csr = X509Req::from_pem(
        &b64.decode(fake.requests().last().unwrap()["csr"].as_str().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert!(renewed_csr
        .public_key()
        .unwrap()
        .public_eq(&cert.public_key().unwrap()));
}

async fn renewal_keeps_key_and_topic(backend: Backend) {
    let server = TestServer::start(backend).await;
    let dir = TempDir::new("mdm-push-cert");
    let v = vendor_files(&dir.0);
    let apple = TestCa::new("Fake Apple Push CA");

    let first = dir.0.join("first.b64");
    let o = vendor_request(&server, &v, &first).await;
    assert!(o.status.success(), "{}", stderr(&o));
    let cert = issue_from_request(&apple, &std::fs::read_to_string(&first).unwrap(), TOPIC);
    let (code, installed) = upload_cert_only(&server, &cert).await;
    assert_eq!(code, StatusCode::OK, "{installed}");

    // A certificate for another key (someone else's request): refused, saying why.
    let (_, stranger) = make_push_certificate(&apple, TOPIC, 365);
    let (code, body) = upload_cert_only(&server, &stranger).await;
    assert_eq!(code, StatusCode::CONFLICT, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap_or_default()
            .contains("public key is not the push key"),
        "{body}"
    );
    // The CLI says the same, exit code 1.
    let stranger_file = dir.0.join("stranger.pem");
    std::fs::write(&stranger_file, stranger.to_pem().unwrap()).unwrap();
    let o = server
        .clone_cli()
        .run(&["push-cert", "upload", "--cert", path(&stranger_file)])
        .await;
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("public key"), "{}", stderr(&o));

    // Renewal: the request reuses the key in use.
    let second = dir.0.join("second.b64");
    let o = vendor_request(&server, &v, &second).await;
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("Renewal") && stdout(&o).contains(TOPIC),
        "{}",
        stdout(&o)
    );
    let second_text = std::fs::read_to_string(&second).unwrap();
    let renewal_csr = read_request(&second_text).unwrap().csr;
    assert!(renewal_csr
        .public_key()
        .unwrap()
        .public_eq(&cert.public_key().unwrap()));

    // Apple renews with another topic by mistake: refused, the topic named.
    let wrong_topic = issue_from_request(&apple, &second_text, OTHER_TOPIC);
    let (code, body) = upload_cert_only(&server, &wrong_topic).await;
    assert_eq!(code, StatusCode::CONFLICT, "{body}");
    assert!(
        body["error"].as_str().unwrap_or_default().contains(TOPIC),
        "{body}"
    );
    // The renewed certificate, same key and topic: installed in place of the first.
    let renewed = issue_from_request(&apple, &second_text, TOPIC);
    let (code, body) = upload_cert_only(&server, &renewed).await;
    assert_eq!(code, StatusCode::OK, "{body}");
    assert_eq!(body["topic"], TOPIC);
    assert_ne!(body["fingerprint"], installed["fingerprint"]);
    let shown = server.get("/push-certificate").await;
    assert_eq!(shown["fingerprint"], body["fingerprint"]);
}

on_every_backend!(
    vendor_signed_request_verifies_and_uploads_with_kept_key,
    csr_only_and_key_file,
    mdmcert_download_flow,
    renewal_keeps_key_and_topic
);
