//! Events and incidents out to a SIEM: a signed JSON webhook and syslog listeners
//! over UDP, TCP and TLS, all real sockets in the test. Deliveries queued while a
//! receiver is down arrive once it is back, across a restart of the server too; a
//! delivery can be replayed.

use enrollment::server_tls::ServerTlsAuthority;
use mdm_tests::fixture::{Backend, TempDir};
use mdm_tests::on_every_backend;
use mdm_tests::restartable::{RestartableServer, ScratchDatabase};
use openssl::ssl::{SslAcceptor, SslMethod};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::io::Read;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const KEY: &str = "siem-test-hmac-key-0123456789";

type Inbox = Arc<Mutex<Vec<String>>>;

/// Reads RFC 6587 octet-counted frames from a stream until it closes.
fn frames(mut stream: impl Read, inbox: &Inbox) {
    let mut buf = Vec::new();
    let _ = stream.read_to_end(&mut buf);
    let mut rest = &buf[..];
    while let Some(space) = rest.iter().position(|b| *b == b' ') {
        let Ok(len) = std::str::from_utf8(&rest[..space])
            .unwrap_or("x")
            .parse::<usize>()
        else {
            break;
        };
        let body = &rest[space + 1..(space + 1 + len).min(rest.len())];
        inbox
            .lock()
            .unwrap()
            .push(String::from_utf8_lossy(body).into_owned());
        rest = &rest[(space + 1 + len).min(rest.len())..];
    }
}

fn udp_listener() -> (u16, Inbox) {
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = socket.local_addr().unwrap().port();
    let inbox: Inbox = Default::default();
    let out = inbox.clone();
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 65536];
        while let Ok(n) = socket.recv(&mut buf) {
            out.lock()
                .unwrap()
                .push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
    });
    (port, inbox)
}

fn tcp_listener(tls: Option<SslAcceptor>) -> (u16, Inbox) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let inbox: Inbox = Default::default();
    let out = inbox.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            match &tls {
                None => frames(stream, &out),
                Some(acceptor) => {
                    if let Ok(s) = acceptor.accept(stream) {
                        frames(s, &out)
                    }
                }
            }
        }
    });
    (port, inbox)
}

/// A webhook receiver on `port` that checks the signature of every request and keeps
/// the bodies that verify (and counts those that do not).
async fn webhook_listener(port: u16) -> (Inbox, Arc<Mutex<u32>>) {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    let inbox: Inbox = Default::default();
    let bad = Arc::new(Mutex::new(0u32));
    let (out, bad_out) = (inbox.clone(), bad.clone());
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        while let Ok((mut stream, _)) = listener.accept().await {
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            let (head, body) = loop {
                let n = stream.read(&mut chunk).await.unwrap_or(0);
                if n == 0 {
                    break (String::new(), Vec::new());
                }
                buf.extend_from_slice(&chunk[..n]);
                if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    let head = String::from_utf8_lossy(&buf[..end]).to_lowercase();
                    let len: usize = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .map(|v| v.trim().parse().unwrap())
                        .unwrap_or(0);
                    while buf.len() < end + 4 + len {
                        let n = stream.read(&mut chunk).await.unwrap_or(0);
                        if n == 0 {
                            break;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                    }
                    break (head, buf[end + 4..].to_vec());
                }
            };
            let body = String::from_utf8_lossy(&body).into_owned();
            let sig = head
                .lines()
                .find_map(|l| l.strip_prefix("x-mdm-signature:"))
                .unwrap_or("")
                .trim()
                .to_owned();
            let t: i64 = sig
                .split(',')
                .find_map(|p| p.strip_prefix("t="))
                .and_then(|t| t.parse().ok())
                .unwrap_or(0);
            let ok = mdm_server::services::notify::signature(KEY.as_bytes(), t, &body)
                .map(|expected| expected == sig)
                .unwrap_or(false)
                && (chrono::Utc::now().timestamp() - t).abs() < 300;
            if ok {
                out.lock().unwrap().push(body);
            } else {
                *bad_out.lock().unwrap() += 1;
            }
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                .await;
        }
    });
    (inbox, bad)
}

async fn wait_for(inbox: &Inbox, needle: &str, what: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        if let Some(m) = inbox.lock().unwrap().iter().find(|m| m.contains(needle)) {
            return m.clone();
        }
        assert!(Instant::now() < deadline, "{what} never received {needle}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn events_reach_webhooks_and_syslog_and_survive_a_restart(backend: Backend) {
    let dir = TempDir::new("siem");
    // The TLS syslog receiver's certificate, from a CA the server is told to trust.
    let ca = ServerTlsAuthority::generate("SIEM").unwrap();
    let leaf = ca
        .issue_server_certificate(&["127.0.0.1".into(), "localhost".into()])
        .unwrap();
    let ca_path = dir.0.join("siem-ca.pem");
    std::fs::write(&ca_path, ca.cert_pem()).unwrap();
    let mut acceptor = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls()).unwrap();
    acceptor.set_certificate(&leaf.cert).unwrap();
    acceptor.set_private_key(&leaf.key).unwrap();
    let (udp_port, udp) = udp_listener();
    let (tcp_port, tcp) = tcp_listener(None);
    let (tls_port, tls) = tcp_listener(Some(acceptor.build()));
    // The webhook is down at first: its port is free, nothing listens.
    let webhook_port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let rules = dir.0.join("incidents.toml");
    std::fs::write(
        &rules,
        format!(
            r#"
[[webhook]]
name = "soc-webhook"
url = "http://127.0.0.1:{webhook_port}/hook"
secret_env = "MDM_TEST_WEBHOOK_KEY"
kinds = ["incident."]

[[syslog]]
name = "siem-udp"
address = "udp://127.0.0.1:{udp_port}"
kinds = ["incident."]

[[syslog]]
name = "siem-tcp"
address = "tcp://127.0.0.1:{tcp_port}"
kinds = ["incident."]

[[syslog]]
name = "siem-tls"
address = "tls://127.0.0.1:{tls_port}"
ca_file = "{ca}"
kinds = ["incident."]
min_severity = 2
"#,
            ca = ca_path.display()
        ),
    )
    .unwrap();
    let db = ScratchDatabase::new(&backend).await;
    // An incident from before the receivers were configured: a SIEM added later
    // gets what happens from then on, not the history.
    let mut server = RestartableServer::start(&db.url, None, false).await;
    let (code, _) = server
        .api(
            "POST",
            "/incidents",
            Some(json!({ "name": "Before the SIEM", "type": "misplaced_device", "level": 3 })),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED);
    server.kill();
    server.extra_args = vec!["--incident-rules".into(), rules.display().to_string()];
    server.extra_env = vec![("MDM_TEST_WEBHOOK_KEY".into(), KEY.into())];
    server.restart().await;
    let (code, incident) = server
        .api(
            "POST",
            "/incidents",
            Some(json!({ "name": "Tablet stolen", "type": "stolen_device", "level": 3 })),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED, "{incident}");
    let low = server
        .api(
            "POST",
            "/incidents",
            Some(json!({ "name": "Old OS", "type": "non_compliant_device", "level": 1 })),
        )
        .await;
    assert_eq!(low.0, StatusCode::CREATED);

    // Syslog over UDP, TCP and TLS: RFC 5424 with the event as structured data.
    for (inbox, what) in [(&udp, "UDP"), (&tcp, "TCP"), (&tls, "TLS")] {
        let m = wait_for(inbox, "Tablet stolen", what).await;
        assert!(
            m.starts_with("<107>1 "),
            "{what}: facility 13, our level 3 = error: {m}"
        );
        assert!(
            m.contains(" mdm - incident.filed [mdm@32473 event_id=\""),
            "{m}"
        );
        let json_start = m.find('{').unwrap();
        let event: Value = serde_json::from_str(&m[json_start..]).unwrap();
        assert_eq!(event["kind"], "incident.filed");
    }
    // The TLS receiver asked for level 2 and up: the level-1 incident is not there.
    wait_for(&udp, "Old OS", "UDP").await;
    assert!(!tls.lock().unwrap().iter().any(|m| m.contains("Old OS")));

    // The webhook is down: its deliveries fail, are logged, and wait.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, log) = server
            .api(
                "GET",
                "/deliveries?receiver=soc-webhook&status=failed",
                None,
            )
            .await;
        if log["items"].as_array().is_some_and(|a| !a.is_empty()) {
            assert!(log["items"][0]["last_error"]
                .as_str()
                .unwrap()
                .contains("127.0.0.1"));
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no failed delivery logged: {log}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The server stops while they wait; the webhook comes back; the server too.
    server.kill();
    let (webhook, bad) = webhook_listener(webhook_port).await;
    server.restart().await;
    let body = wait_for(&webhook, "Tablet stolen", "webhook").await;
    let event: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(event["kind"], "incident.filed");
    wait_for(&webhook, "Old OS", "webhook").await;
    assert_eq!(
        *bad.lock().unwrap(),
        0,
        "every request carried a valid signature"
    );
    let (_, delivered) = server
        .api(
            "GET",
            "/deliveries?receiver=soc-webhook&status=delivered",
            None,
        )
        .await;
    let first = delivered["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["payload"].as_str().unwrap().contains("Tablet stolen"))
        .cloned()
        .unwrap();
    assert!(first["attempts"].as_i64().unwrap() >= 2, "{first}");
    // Replayed on request.
    let before = webhook.lock().unwrap().len();
    let (code, _) = server
        .api("POST", &format!("/deliveries/{}/replay", first["id"]), None)
        .await;
    assert_eq!(code, StatusCode::ACCEPTED);
    let deadline = Instant::now() + Duration::from_secs(20);
    while webhook.lock().unwrap().len() == before {
        assert!(Instant::now() < deadline, "the replay never arrived");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (code, _) = server.api("POST", "/deliveries/999999/replay", None).await;
    assert_eq!(code, StatusCode::NOT_FOUND);
    for inbox in [&udp, &tcp, &tls, &webhook] {
        assert!(!inbox
            .lock()
            .unwrap()
            .iter()
            .any(|m| m.contains("Before the SIEM")));
    }
    server.kill();
}

/// A receiver that cannot work stops the start: a missing HMAC key, a bad address.
#[test]
fn wrong_receivers_stop_the_start() {
    let dir = TempDir::new("siem-config");
    std::fs::set_permissions(&dir.0, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    for (toml, expected) in [
        (
            "[[webhook]]\nname = \"w\"\nurl = \"https://siem.example.org/\"\nsecret_env = \"MDM_TEST_NO_SUCH_VARIABLE\"\n",
            "MDM_TEST_NO_SUCH_VARIABLE",
        ),
        (
            "[[webhook]]\nname = \"w\"\nurl = \"http://siem.example.org/\"\nsecret_env = \"PATH\"\n",
            "https://",
        ),
        ("[[syslog]]\nname = \"s\"\naddress = \"siem.example.org:514\"\n", "udp://"),
    ] {
        let rules = dir.0.join("bad.toml");
        std::fs::write(&rules, toml).unwrap();
        let out = std::process::Command::new(mdm_tests::fixture::mdm_binary())
            .args(["serve", "--plain-http", "--listen", "127.0.0.1:0", "--incident-rules"])
            .arg(&rules)
            .arg("--data-dir")
            .arg(dir.0.join("data"))
            .env_remove("MDM_DATABASE_URL")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{toml}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(expected), "{toml}: {err}");
    }
}

on_every_backend!(events_reach_webhooks_and_syslog_and_survive_a_restart);
