//! Test-only SCEP endpoint: a minimal HTTP/1.1 server on loopback that does what
//! the MDM server's HTTP adapter does with `enrollment::scep`, so that real SCEP
//! clients can be pointed at it.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use base64::Engine;
use enrollment::ca::{CertificateAuthority, KeyUsageBits};
use enrollment::scep::{self, MessageType};

/// One line per PKIOperation: how it came and what was answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exchange {
    pub method: String,
    pub message_type: Option<MessageType>,
    pub request_cipher: Option<scep::ContentCipher>,
    /// Whether the request was signed by a certificate of ours (a renewal or
    /// rekey) rather than a self-signed one.
    pub signed_by_issued_cert: bool,
    pub outcome: String,
}

pub struct ScepServer {
    pub url: String,
    pub ca: Arc<CertificateAuthority>,
    pub exchanges: Arc<Mutex<Vec<Exchange>>>,
    stop: Arc<AtomicBool>,
    addr: std::net::SocketAddr,
    accept: Option<JoinHandle<()>>,
}

impl ScepServer {
    pub fn start(ca: CertificateAuthority, challenge: &str) -> ScepServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let addr = listener.local_addr().unwrap();
        let ca = Arc::new(ca);
        let exchanges = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let accept = {
            let (ca, exchanges, stop) = (ca.clone(), exchanges.clone(), stop.clone());
            let challenge = challenge.to_owned();
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    let handler = Handler {
                        ca: ca.clone(),
                        challenge: challenge.clone(),
                        exchanges: exchanges.clone(),
                    };
                    std::thread::spawn(move || handler.serve(stream));
                }
            })
        };
        ScepServer {
            url: format!("http://{addr}/scep"),
            ca,
            exchanges,
            stop,
            addr,
            accept: Some(accept),
        }
    }

    pub fn exchanges(&self) -> Vec<Exchange> {
        self.exchanges.lock().unwrap().clone()
    }
}

impl Drop for ScepServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so that it sees the flag.
        let _ = TcpStream::connect(self.addr);
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
    }
}

struct Handler {
    ca: Arc<CertificateAuthority>,
    challenge: String,
    exchanges: Arc<Mutex<Vec<Exchange>>>,
}

struct Response {
    status: &'static str,
    content_type: &'static str,
    body: Vec<u8>,
}

impl Handler {
    fn serve(self, stream: TcpStream) {
        let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
        let mut reader = BufReader::new(match stream.try_clone() {
            Ok(s) => s,
            Err(_) => return,
        });
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        let mut content_length = 0usize;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    content_length = value.trim().parse().unwrap_or(0);
                }
            }
        }
        let mut body = vec![0u8; content_length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let mut parts = request_line.split_whitespace();
        let method = parts.next().unwrap_or("").to_owned();
        let target = parts.next().unwrap_or("").to_owned();
        let response = self.route(&method, &target, &body);
        let mut stream = stream;
        let head = format!(
            "HTTP/1.1 {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            response.status,
            response.content_type,
            response.body.len()
        );
        let _ = stream.write_all(head.as_bytes());
        let _ = stream.write_all(&response.body);
        let _ = stream.flush();
    }

    fn route(&self, method: &str, target: &str, body: &[u8]) -> Response {
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        if path != "/scep" {
            return not_found();
        }
        let param = |name: &str| {
            query
                .split('&')
                .filter_map(|kv| kv.split_once('='))
                .find(|(k, _)| *k == name)
                .map(|(_, v)| percent_decode(v))
        };
        match param("operation").as_deref() {
            Some("GetCACaps") => Response {
                status: "200 OK",
                content_type: scep::CA_CAPS_CONTENT_TYPE,
                body: scep::CA_CAPS.as_bytes().to_vec(),
            },
            Some("GetCACert") => {
                let (content_type, body) = scep::ca_cert_response(&self.ca);
                Response {
                    status: "200 OK",
                    content_type,
                    body,
                }
            }
            Some("PKIOperation") => {
                let message = if method == "POST" {
                    Some(body.to_vec())
                } else {
                    param("message").and_then(|m| {
                        let compact: String = m.split_whitespace().collect();
                        base64::engine::general_purpose::STANDARD
                            .decode(compact)
                            .ok()
                    })
                };
                match message {
                    Some(der) => self.pki_operation(method, &der),
                    None => bad_request(),
                }
            }
            _ => not_found(),
        }
    }

    /// What the MDM server's adapter does: parse, check the challenge for a first
    /// enrollment, issue for the CSR's subject, answer.
    fn pki_operation(&self, method: &str, der: &[u8]) -> Response {
        let ca = &self.ca;
        let mut exchange = Exchange {
            method: method.to_owned(),
            message_type: None,
            request_cipher: None,
            signed_by_issued_cert: false,
            outcome: String::new(),
        };
        let reply = match scep::parse_request(der, ca) {
            Ok(req) => {
                exchange.message_type = Some(req.message_type);
                exchange.request_cipher = Some(req.request_cipher);
                exchange.signed_by_issued_cert = ca.issued(&req.signer);
                let challenge_ok = req.message_type == MessageType::RenewalReq
                    || req.challenge_password.as_deref() == Some(self.challenge.as_str());
                if !challenge_ok {
                    exchange.outcome = "failure BadRequest (challenge)".into();
                    scep::cert_rep_failure(&req.envelope(), scep::FailInfo::BadRequest, ca)
                } else {
                    let subject = req.csr.subject_name().to_owned().unwrap();
                    match ca.issue(&req.csr, &subject, 365, KeyUsageBits::BOTH) {
                        Ok(cert) => {
                            exchange.outcome = "success".into();
                            scep::cert_rep_success(&req, &cert, ca)
                        }
                        Err(e) => {
                            exchange.outcome = format!("failure BadRequest ({e})");
                            scep::cert_rep_failure(&req.envelope(), scep::FailInfo::BadRequest, ca)
                        }
                    }
                }
            }
            Err(e) => {
                exchange.message_type = e.envelope.message_type;
                exchange.outcome = format!("failure {:?} ({})", e.fail_info, e.reason);
                scep::cert_rep_failure(&e.envelope, e.fail_info, ca)
            }
        };
        self.exchanges.lock().unwrap().push(exchange);
        match reply {
            Ok(body) => Response {
                status: "200 OK",
                content_type: scep::CERT_REP_CONTENT_TYPE,
                body,
            },
            Err(_) => bad_request(),
        }
    }
}

fn not_found() -> Response {
    Response {
        status: "404 Not Found",
        content_type: "text/plain",
        body: Vec::new(),
    }
}

fn bad_request() -> Response {
    Response {
        status: "400 Bad Request",
        content_type: "text/plain",
        body: b"bad request".to_vec(),
    }
}

/// RFC 3986 percent-decoding. `+` stays `+`: SCEP's message parameter is base64,
/// where `+` is a digit, not a space.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(hi), Some(lo)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push(hi << 4 | lo);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A fresh directory under the system temp dir, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("mdm-scep-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The path of an executable: `name` itself if it is a path, else found on PATH.
pub fn find_tool(name: &str) -> Option<PathBuf> {
    let candidate = Path::new(name);
    if candidate.is_absolute() {
        return candidate.is_file().then(|| candidate.to_path_buf());
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(name))
            .find(|p| p.is_file())
    })
}

/// Says loudly that a test did not run, rather than passing silently. Written to
/// the process's stderr directly: the test harness captures `println!`/`eprintln!`
/// of passing tests, and this line must show in every run.
pub fn skip(test: &str, tool: &str, install: &str) {
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED {test}: {tool} not installed ({install})"
    );
}

/// The DER inside a PEM text (the first block).
pub fn pem_to_der(pem: &str) -> Option<Vec<u8>> {
    let body: String = pem
        .lines()
        .skip_while(|l| !l.starts_with("-----BEGIN"))
        .skip(1)
        .take_while(|l| !l.starts_with("-----END"))
        .collect();
    base64::engine::general_purpose::STANDARD.decode(body).ok()
}
