//! A real SMTP relay for the e-mail tests: Python's `aiosmtpd`, started on a free
//! loopback port with STARTTLS required (`require_starttls=True`: MAIL, RCPT and AUTH
//! before STARTTLS are refused with 530) and AUTH required, its certificate issued at
//! fixture time by a CA of the test's own (the server is given that CA as `ca_file`).
//! Every message received is written as one JSON file into a folder the test reads:
//! envelope, decoded subject and body, whether the session was TLS, and who logged in.
//!
//! Stopped (killed) when dropped; [`SmtpRelay::stop`] and [`SmtpRelay::start_again`]
//! take it down and bring it back on the same port. Without aiosmtpd importable,
//! [`SmtpRelay::start`] prints "SKIPPED: aiosmtpd not installed (pip install
//! aiosmtpd)" and returns None.

use crate::fixture::TempDir;
use enrollment::server_tls::ServerTlsAuthority;
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const USERNAME: &str = "mdm-notifier";

const RELAY: &str = r#"
import argparse, email, email.policy, json, os, ssl, sys, threading, time
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

p = argparse.ArgumentParser()
p.add_argument("--port", type=int, required=True)
p.add_argument("--cert", required=True)
p.add_argument("--key", required=True)
p.add_argument("--out", required=True)
p.add_argument("--user", required=True)
p.add_argument("--password-file", required=True)
a = p.parse_args()
password = open(a.password_file, "rb").read().strip()
lock = threading.Lock()
count = [0]

def authenticator(server, session, envelope, mechanism, auth_data):
    ok = (isinstance(auth_data, LoginPassword) and auth_data.login == a.user.encode()
          and auth_data.password == password)
    return AuthResult(success=ok, auth_data=auth_data if ok else None)

class Handler:
    async def handle_DATA(self, server, session, envelope):
        raw = envelope.original_content or envelope.content
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        part = msg.get_body(preferencelist=("plain",))
        login = session.auth_data.login.decode() if session.auth_data else None
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "subject": str(msg["subject"] or ""),
            "from": str(msg["from"] or ""),
            "to": str(msg["to"] or ""),
            "message_id": str(msg["message-id"] or ""),
            "content_type": msg.get_content_type(),
            "body": part.get_content() if part is not None else "",
            "tls": session.ssl is not None,
            "login": login,
        }
        with lock:
            count[0] += 1
            n = count[0]
        name = "%d-%d-%d.json" % (int(time.time() * 1000), os.getpid(), n)
        tmp = os.path.join(a.out, "." + name)
        with open(tmp, "w") as f:
            json.dump(record, f)
        os.rename(tmp, os.path.join(a.out, name))
        return "250 OK"

context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
context.load_cert_chain(a.cert, a.key)
controller = Controller(Handler(), hostname="127.0.0.1", port=a.port,
                        tls_context=context, require_starttls=True,
                        auth_required=True, auth_require_tls=True,
                        authenticator=authenticator)
controller.start()
print("READY", flush=True)
while True:
    time.sleep(3600)
"#;

pub struct SmtpRelay {
    pub port: u16,
    /// The CA that issued the relay's certificate (give it as `ca_file`).
    pub ca_file: PathBuf,
    /// The AUTH password, in a 0600 file (give it as `password_file`).
    pub password: String,
    pub password_file: PathBuf,
    /// Where received messages land, one JSON file each.
    pub out: PathBuf,
    cert: PathBuf,
    key: PathBuf,
    script: PathBuf,
    child: Option<Child>,
    _dir: TempDir,
}

/// Whether Python's aiosmtpd can be imported.
pub fn available() -> bool {
    Command::new("python3")
        .args(["-c", "import aiosmtpd"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl SmtpRelay {
    /// A relay on a free loopback port, or None (printed as SKIPPED) without aiosmtpd.
    pub fn start() -> Option<SmtpRelay> {
        if !available() {
            eprintln!("SKIPPED: aiosmtpd not installed (pip install aiosmtpd)");
            return None;
        }
        let dir = TempDir::new("smtp-relay");
        let ca = ServerTlsAuthority::generate("Test SMTP relay").unwrap();
        let leaf = ca
            .issue_server_certificate(&["127.0.0.1".into(), "localhost".into()])
            .unwrap();
        let ca_file = dir.0.join("relay-ca.pem");
        std::fs::write(&ca_file, ca.cert_pem()).unwrap();
        let cert = dir.0.join("relay.pem");
        std::fs::write(&cert, leaf.cert.to_pem().unwrap()).unwrap();
        let key = dir.0.join("relay.key");
        std::fs::write(&key, leaf.key.private_key_to_pem_pkcs8().unwrap()).unwrap();
        let mut secret = [0u8; 12];
        openssl::rand::rand_bytes(&mut secret).unwrap();
        let password = format!("pw-{}", hex::encode(secret));
        let password_file = dir.0.join("smtp-password");
        std::fs::write(&password_file, format!("{password}\n")).unwrap();
        std::fs::set_permissions(
            &password_file,
            std::os::unix::fs::PermissionsExt::from_mode(0o600),
        )
        .unwrap();
        let out = dir.0.join("inbox");
        std::fs::create_dir_all(&out).unwrap();
        let script = dir.0.join("relay.py");
        std::fs::write(&script, RELAY).unwrap();
        let mut relay = SmtpRelay {
            port: free_port(),
            ca_file,
            password,
            password_file,
            out,
            cert,
            key,
            script,
            child: None,
            _dir: dir,
        };
        relay.start_again();
        Some(relay)
    }

    /// Starts the relay (again, after [`Self::stop`]) on its port.
    pub fn start_again(&mut self) {
        assert!(self.child.is_none(), "the relay is running");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let mut child = Command::new("python3")
                .arg(&self.script)
                .args(["--port", &self.port.to_string()])
                .arg("--cert")
                .arg(&self.cert)
                .arg("--key")
                .arg(&self.key)
                .arg("--out")
                .arg(&self.out)
                .args(["--user", USERNAME])
                .arg("--password-file")
                .arg(&self.password_file)
                .stdout(Stdio::piped())
                .stderr(Stdio::from(
                    std::fs::OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(self.out.with_file_name("relay.log"))
                        .unwrap(),
                ))
                .spawn()
                .expect("start python3");
            let stdout = child.stdout.take().unwrap();
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            if line.trim() == "READY" {
                self.child = Some(child);
                return;
            }
            // The port may still be held by the previous relay for a moment.
            let _ = child.kill();
            let _ = child.wait();
            assert!(
                Instant::now() < deadline,
                "aiosmtpd did not start: {}",
                std::fs::read_to_string(self.out.with_file_name("relay.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Kills the relay: its port refuses connections until [`Self::start_again`].
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// `smtp://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// Every message received so far, in the order received.
    pub fn messages(&self) -> Vec<Value> {
        let mut names: Vec<(u128, u64, String)> = std::fs::read_dir(&self.out)
            .unwrap()
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                if name.starts_with('.') {
                    return None;
                }
                let mut parts = name.trim_end_matches(".json").split('-');
                let ms = parts.next()?.parse().ok()?;
                let _pid = parts.next()?;
                let n = parts.next()?.parse().ok()?;
                Some((ms, n, name))
            })
            .collect();
        names.sort();
        names
            .into_iter()
            .filter_map(|(_, _, name)| std::fs::read(self.out.join(name)).ok())
            .filter_map(|bytes| serde_json::from_slice(&bytes).ok())
            .collect()
    }

    /// Waits (up to 40 s) for a message whose subject contains `needle` and whose
    /// envelope goes to `recipient`.
    pub async fn wait_for(&self, needle: &str, recipient: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(40);
        loop {
            if let Some(m) = self.messages().into_iter().find(|m| {
                m["subject"].as_str().unwrap_or_default().contains(needle)
                    && m["rcpt_tos"]
                        .as_array()
                        .is_some_and(|r| r.iter().any(|t| t == recipient))
            }) {
                return m;
            }
            assert!(
                Instant::now() < deadline,
                "no mail to {recipient} with {needle:?} in its subject; received: {:#?}",
                self.messages()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for SmtpRelay {
    fn drop(&mut self) {
        self.stop();
    }
}
