//! A faithful local mdmcert.download, and the Apple side of push certificates, so that
//! no test reaches the internet.
//!
//! [`FakeMdmcert`] answers `POST /api/v1/signrequest` the way the service does for
//! its clients (MicroMDM's `mdmctl mdmcert.download`, Commandment): it checks the JSON
//! body (`csr`: base64 of a PEM CSR whose self-signature verifies, `email`: an address
//! registered with it, `key`: its API key, `encrypt`: base64 of a PEM certificate),
//! signs the CSR's DER with its vendor key (SHA256withRSA), builds Apple's request
//! plist with the vendor chain, and "mails" it: hex of a PKCS#7 EnvelopedData
//! encrypted to the `encrypt` certificate, kept in [`FakeMdmcert::mails`]. Refusals
//! answer 4xx with `{"result":"failure","reason":...}`.
//!
//! [`AppleVendorChain`] is a throw-away "Apple Root CA" > "WWDR" > "MDM vendor" chain
//! (RSA), and [`issue_from_request`] plays Apple's Push Certificates Portal: it reads a
//! request independently of the server's code (openssl and plist only), verifies the
//! signature and chain, and issues a push certificate for the CSR's key and a topic.

use base64::Engine;
use enrollment::identity::testing::TestCa;
use openssl::asn1::Asn1Time;
use openssl::bn::{BigNum, MsbOption};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkcs7::{Pkcs7, Pkcs7Flags};
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use openssl::sign::{Signer, Verifier};
use openssl::stack::Stack;
use openssl::symm::Cipher;
use openssl::x509::extension::{BasicConstraints, KeyUsage};
use openssl::x509::{X509NameBuilder, X509Req, X509};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// A CA or leaf certificate for the fake chain, RSA like Apple's.
fn rsa_cert(
    cn: &str,
    key: &PKey<Private>,
    issuer: Option<(&X509, &PKey<Private>)>,
    ca: bool,
    days: u32,
) -> X509 {
    let mut name = X509NameBuilder::new().unwrap();
    name.append_entry_by_nid(Nid::COMMONNAME, cn).unwrap();
    name.append_entry_by_nid(Nid::ORGANIZATIONNAME, "Apple Inc.")
        .unwrap();
    let name = name.build();
    let mut b = X509::builder().unwrap();
    b.set_version(2).unwrap();
    let mut serial = BigNum::new().unwrap();
    serial.rand(127, MsbOption::MAYBE_ZERO, false).unwrap();
    b.set_serial_number(&serial.to_asn1_integer().unwrap())
        .unwrap();
    b.set_subject_name(&name).unwrap();
    match issuer {
        Some((cert, _)) => b.set_issuer_name(cert.subject_name()).unwrap(),
        None => b.set_issuer_name(&name).unwrap(),
    }
    b.set_pubkey(key).unwrap();
    b.set_not_before(&Asn1Time::days_from_now(0).unwrap())
        .unwrap();
    b.set_not_after(&Asn1Time::days_from_now(days).unwrap())
        .unwrap();
    if ca {
        b.append_extension(BasicConstraints::new().critical().ca().build().unwrap())
            .unwrap();
        b.append_extension(
            KeyUsage::new()
                .critical()
                .key_cert_sign()
                .crl_sign()
                .build()
                .unwrap(),
        )
        .unwrap();
    } else {
        b.append_extension(
            KeyUsage::new()
                .critical()
                .digital_signature()
                .build()
                .unwrap(),
        )
        .unwrap();
    }
    let signing_key = issuer.map(|(_, k)| k).unwrap_or(key);
    b.sign(signing_key, MessageDigest::sha256()).unwrap();
    b.build()
}

fn rsa_key() -> PKey<Private> {
    PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap()
}

/// "Apple Root CA" > "Apple Worldwide Developer Relations CA" > "MDM Vendor".
pub struct AppleVendorChain {
    pub root: X509,
    pub wwdr: X509,
    pub vendor_cert: X509,
    pub vendor_key: PKey<Private>,
}

impl AppleVendorChain {
    pub fn new(vendor_name: &str) -> Self {
        let root_key = rsa_key();
        let root = rsa_cert("Test Apple Root CA", &root_key, None, true, 3650);
        let wwdr_key = rsa_key();
        let wwdr = rsa_cert(
            "Test Apple Worldwide Developer Relations Certification Authority",
            &wwdr_key,
            Some((&root, &root_key)),
            true,
            3650,
        );
        let vendor_key = rsa_key();
        let vendor_cert = rsa_cert(
            &format!("MDM Vendor: {vendor_name}"),
            &vendor_key,
            Some((&wwdr, &wwdr_key)),
            false,
            365,
        );
        AppleVendorChain {
            root,
            wwdr,
            vendor_cert,
            vendor_key,
        }
    }

    /// The chain as Apple's portal wants it in the request: vendor, WWDR, root (PEM).
    pub fn chain_pem(&self) -> String {
        [&self.vendor_cert, &self.wwdr, &self.root]
            .iter()
            .map(|c| String::from_utf8(c.to_pem().unwrap()).unwrap())
            .collect()
    }

    /// A signed push certificate request (base64 plist), as a vendor makes it.
    pub fn sign(&self, csr_der: &[u8]) -> String {
        let mut signer = Signer::new(MessageDigest::sha256(), &self.vendor_key).unwrap();
        signer.update(csr_der).unwrap();
        let signature = signer.sign_to_vec().unwrap();
        let mut dict = plist::Dictionary::new();
        dict.insert(
            "PushCertRequestCSR".into(),
            plist::Value::String(B64.encode(csr_der)),
        );
        dict.insert(
            "PushCertCertificateChain".into(),
            plist::Value::String(self.chain_pem()),
        );
        dict.insert(
            "PushCertSignature".into(),
            plist::Value::String(B64.encode(signature)),
        );
        let mut xml = Vec::new();
        plist::Value::Dictionary(dict)
            .to_writer_xml(&mut xml)
            .unwrap();
        B64.encode(xml)
    }
}

/// A push certificate request read as Apple's portal would: the CSR, the chain and
/// the signature, with the signature checked against the chain's first certificate.
pub struct ReadRequest {
    pub csr: X509Req,
    pub chain: Vec<X509>,
    pub signature: Vec<u8>,
}

pub fn read_request(base64_text: &str) -> Result<ReadRequest, String> {
    let xml = B64
        .decode(base64_text.split_whitespace().collect::<String>())
        .map_err(|e| format!("not base64: {e}"))?;
    let value: plist::Value = plist::from_bytes(&xml).map_err(|e| format!("not a plist: {e}"))?;
    let dict = value.as_dictionary().ok_or("not a dictionary")?;
    let field = |k: &str| {
        dict.get(k)
            .and_then(|v| v.as_string())
            .ok_or(format!("no {k}"))
    };
    let csr_der = B64
        .decode(field("PushCertRequestCSR")?)
        .map_err(|e| format!("CSR not base64: {e}"))?;
    let csr = X509Req::from_der(&csr_der).map_err(|e| format!("CSR not DER: {e}"))?;
    let chain = X509::stack_from_pem(field("PushCertCertificateChain")?.as_bytes())
        .map_err(|e| format!("chain not PEM: {e}"))?;
    let signature = B64
        .decode(field("PushCertSignature")?)
        .map_err(|e| format!("signature not base64: {e}"))?;
    let vendor = chain.first().ok_or("empty chain")?;
    let vendor_key = vendor.public_key().map_err(|e| e.to_string())?;
    let mut verifier =
        Verifier::new(MessageDigest::sha256(), &vendor_key).map_err(|e| e.to_string())?;
    verifier.update(&csr_der).unwrap();
    if !verifier.verify(&signature).unwrap_or(false) {
        return Err("the signature does not verify with the vendor certificate".into());
    }
    for pair in chain.windows(2) {
        if !pair[0].verify(&pair[1].public_key().unwrap()).unwrap() {
            return Err("broken chain".into());
        }
    }
    Ok(ReadRequest {
        csr,
        chain,
        signature,
    })
}

/// Apple's portal: a push certificate for the request's CSR key, with `topic`.
pub fn issue_from_request(apple: &TestCa, request_b64: &str, topic: &str) -> X509 {
    let request = read_request(request_b64).expect("a valid push certificate request");
    let key = request.csr.public_key().unwrap();
    issue_push_certificate(apple, &key, topic)
}

/// A push certificate as Apple issues it (subject UID = topic) for any public key.
pub fn issue_push_certificate(
    apple: &TestCa,
    key: &openssl::pkey::PKeyRef<openssl::pkey::Public>,
    topic: &str,
) -> X509 {
    let mut name = X509NameBuilder::new().unwrap();
    name.append_entry_by_nid(Nid::USERID, topic).unwrap();
    name.append_entry_by_nid(
        Nid::COMMONNAME,
        &format!("APSP:{}", topic.rsplit('.').next().unwrap()),
    )
    .unwrap();
    name.append_entry_by_nid(Nid::COUNTRYNAME, "US").unwrap();
    let name = name.build();
    let mut b = X509::builder().unwrap();
    b.set_version(2).unwrap();
    let mut serial = BigNum::new().unwrap();
    serial.rand(127, MsbOption::MAYBE_ZERO, false).unwrap();
    b.set_serial_number(&serial.to_asn1_integer().unwrap())
        .unwrap();
    b.set_subject_name(&name).unwrap();
    b.set_issuer_name(apple.cert.subject_name()).unwrap();
    b.set_pubkey(key).unwrap();
    b.set_not_before(&Asn1Time::days_from_now(0).unwrap())
        .unwrap();
    b.set_not_after(&Asn1Time::days_from_now(365).unwrap())
        .unwrap();
    b.sign(&apple.key, MessageDigest::sha256()).unwrap();
    b.build()
}

/// One mail the fake service sent.
#[derive(Debug, Clone)]
pub struct Mail {
    pub to: String,
    pub filename: String,
    /// The attachment: hex of a PKCS#7 EnvelopedData.
    pub attachment: String,
}

#[derive(Default)]
struct State {
    mails: Vec<Mail>,
    /// Every request body received, as JSON (or the raw text if it was not JSON).
    requests: Vec<Value>,
}

pub struct FakeMdmcert {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    task: tokio::task::JoinHandle<()>,
}

struct Config {
    api_key: String,
    registered: Vec<String>,
    vendor: AppleVendorChain,
}

impl FakeMdmcert {
    /// Starts the service with its API key and the addresses registered with it.
    pub async fn start(api_key: &str, registered: &[&str]) -> FakeMdmcert {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(State::default()));
        let config = Arc::new(Config {
            api_key: api_key.to_owned(),
            registered: registered.iter().map(|s| s.to_string()).collect(),
            vendor: AppleVendorChain::new("mdmcert.download test double"),
        });
        let task = {
            let state = state.clone();
            tokio::spawn(async move {
                while let Ok((stream, _)) = listener.accept().await {
                    let state = state.clone();
                    let config = config.clone();
                    tokio::spawn(async move {
                        let _ = serve(stream, &config, &state).await;
                    });
                }
            })
        };
        FakeMdmcert { addr, state, task }
    }

    /// The API endpoint, as `--mdmcert-url` takes it.
    pub fn url(&self) -> String {
        format!("http://{}/api/v1/signrequest", self.addr)
    }

    pub fn mails(&self) -> Vec<Mail> {
        self.state.lock().unwrap().mails.clone()
    }

    pub fn requests(&self) -> Vec<Value> {
        self.state.lock().unwrap().requests.clone()
    }
}

impl Drop for FakeMdmcert {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One HTTP/1.1 exchange (the clients send one request per connection).
async fn serve(
    mut stream: TcpStream,
    config: &Config,
    state: &Mutex<State>,
) -> std::io::Result<()> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if buf.len() > 64 * 1024 {
            return respond(
                &mut stream,
                431,
                json!({"result": "failure", "reason": "headers too large"}),
            )
            .await;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap_or_default().to_owned();
    let mut content_length = 0usize;
    let mut content_type = String::new();
    for line in lines {
        if let Some((name, value)) = line.split_once(':') {
            match name.trim().to_ascii_lowercase().as_str() {
                "content-length" => content_length = value.trim().parse().unwrap_or(0),
                "content-type" => content_type = value.trim().to_ascii_lowercase(),
                _ => {}
            }
        }
    }
    if content_length > 1024 * 1024 {
        return respond(
            &mut stream,
            413,
            json!({"result": "failure", "reason": "too large"}),
        )
        .await;
    }
    let mut body = buf[head_end..].to_vec();
    while body.len() < content_length {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    let (status, answer) = handle(&request_line, &content_type, &body, config, state);
    respond(&mut stream, status, answer).await
}

async fn respond(stream: &mut TcpStream, status: u16, body: Value) -> std::io::Result<()> {
    let body = body.to_string();
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        405 => "Method Not Allowed",
        415 => "Unsupported Media Type",
        _ => "Error",
    };
    let response = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}

fn failure(status: u16, reason: &str) -> (u16, Value) {
    (status, json!({ "result": "failure", "reason": reason }))
}

fn handle(
    request_line: &str,
    content_type: &str,
    body: &[u8],
    config: &Config,
    state: &Mutex<State>,
) -> (u16, Value) {
    let mut parts = request_line.split(' ');
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    if path != "/api/v1/signrequest" {
        return failure(404, "not found");
    }
    if method != "POST" {
        return failure(405, "POST only");
    }
    let parsed: Result<Value, _> = serde_json::from_slice(body);
    state.lock().unwrap().requests.push(
        parsed
            .as_ref()
            .cloned()
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into_owned())),
    );
    if !content_type.starts_with("application/json") {
        return failure(415, "expected application/json");
    }
    let Ok(Value::Object(fields)) = parsed else {
        return failure(400, "the body is not a JSON object");
    };
    let text = |k: &str| fields.get(k).and_then(Value::as_str).unwrap_or_default();
    for k in ["csr", "email", "key", "encrypt"] {
        if text(k).is_empty() {
            return failure(400, &format!("missing {k}"));
        }
    }
    if text("key") != config.api_key {
        return failure(401, "invalid API key");
    }
    let email = text("email");
    if !config.registered.iter().any(|r| r == email) {
        return failure(400, "this email address is not registered or not verified");
    }
    let Ok(csr_pem) = B64.decode(text("csr")) else {
        return failure(400, "csr is not base64");
    };
    let Ok(csr) = X509Req::from_pem(&csr_pem) else {
        return failure(400, "csr is not a PEM certificate request");
    };
    let self_signed = csr
        .public_key()
        .and_then(|k| csr.verify(&k))
        .unwrap_or(false);
    if !self_signed {
        return failure(400, "the CSR's signature does not verify");
    }
    if csr.public_key().map(|k| k.rsa().is_err()).unwrap_or(true) {
        return failure(400, "the CSR's key is not RSA");
    }
    let Ok(encrypt_pem) = B64.decode(text("encrypt")) else {
        return failure(400, "encrypt is not base64");
    };
    let Ok(recipient) = X509::from_pem(&encrypt_pem) else {
        return failure(400, "encrypt is not a PEM certificate");
    };
    // The signed request, encrypted to the client's certificate, as mailed.
    let request = config.vendor.sign(&csr.to_der().unwrap());
    let mut recipients = Stack::new().unwrap();
    recipients.push(recipient).unwrap();
    let Ok(envelope) = Pkcs7::encrypt(
        &recipients,
        request.as_bytes(),
        Cipher::aes_256_cbc(),
        Pkcs7Flags::BINARY,
    ) else {
        return failure(400, "cannot encrypt to the encrypt certificate");
    };
    let attachment = hex::encode(envelope.to_der().unwrap());
    state.lock().unwrap().mails.push(Mail {
        to: email.to_owned(),
        filename: format!(
            "mdm_signed_request.{}.plist.b64.p7",
            chrono::Utc::now().format("%Y%m%d_%H%M%S_%3f")
        ),
        attachment,
    });
    (200, json!({ "result": "success" }))
}
