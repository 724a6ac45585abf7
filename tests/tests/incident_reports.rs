//! The rest of the incident register (issue 11): incidents mailed to people by level
//! through a real SMTP relay with STARTTLS (Python's aiosmtpd), queued while the
//! relay is down and delivered after it is back, across a restart of the server too;
//! the reports as PDF, read back with `pdftotext`; and an Android device's status
//! report as evidence.

use mdm_tests::android_fixture;
use mdm_tests::fake_google_amapi::Phone;
use mdm_tests::fixture::{Backend, TempDir, TestServer};
use mdm_tests::on_every_backend;
use mdm_tests::restartable::{RestartableServer, ScratchDatabase};
use mdm_tests::smtp::{SmtpRelay, USERNAME};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// Waits until the delivery log of `receiver` has a failed delivery whose error
/// contains `needle`; returns it.
async fn failed_delivery(server: &RestartableServer, receiver: &str, needle: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, log) = server
            .api(
                "GET",
                &format!("/deliveries?receiver={receiver}&status=failed"),
                None,
            )
            .await;
        if let Some(d) = log["items"].as_array().and_then(|items| {
            items
                .iter()
                .find(|d| d["last_error"].as_str().unwrap_or("").contains(needle))
                .cloned()
        }) {
            return d;
        }
        assert!(
            Instant::now() < deadline,
            "no failed delivery to {receiver} with {needle:?}: {log}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn file(server: &RestartableServer, name: &str, level: i16) -> Value {
    let (code, incident) = server
        .api(
            "POST",
            "/incidents",
            Some(json!({
                "name": name, "type": "misplaced_device", "level": level,
                "response_plan": "Call the user; lock the device if it is not found.",
                "responsible": { "full_name": "Олена Коваленко", "position_company": "IT", "phone": "+48 22 000 00 00" },
            })),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED, "{incident}");
    incident
}

/// Head of office at level 3 and up, the national CERT at 4 and up: each gets what
/// its level asks for, over STARTTLS with AUTH; a relay that is down gets its mail
/// once it is back, also across a restart of the server.
async fn incidents_are_mailed_by_level_over_starttls(backend: Backend) {
    let Some(mut relay) = SmtpRelay::start() else {
        return;
    };
    let dir = TempDir::new("incident-email");
    let rules = dir.0.join("incidents.toml");
    let common = format!(
        "username = \"{USERNAME}\"\npassword_file = \"{}\"\nca_file = \"{}\"\n",
        relay.password_file.display(),
        relay.ca_file.display()
    );
    std::fs::write(
        &rules,
        format!(
            r#"
[[email]]
name = "head-of-office"
smtp_url = "{url}"
from = "MDM Town Hall <mdm@town.example>"
to = ["Head of Office <head@town.example>"]
min_level = 3
{common}
[[email]]
name = "national-cert"
host = "127.0.0.1"
port = {port}
from = "mdm@town.example"
to = ["incidents@cert.example", "duty@cert.example"]
min_level = 4
kinds = ["incident.filed", "incident.classified"]
{common}
# Plain SMTP to the relay, which requires STARTTLS: refused, and logged.
[[email]]
name = "plain-relay"
smtp_url = "{url}"
starttls = "off"
from = "mdm@town.example"
to = ["nobody@town.example"]
"#,
            url = relay.url(),
            port = relay.port,
        ),
    )
    .unwrap();
    let db = ScratchDatabase::new(&backend).await;
    let mut server = RestartableServer::start_with_args(
        &db.url,
        None,
        false,
        vec!["--incident-rules".into(), rules.display().to_string()],
        Vec::new(),
    )
    .await;

    let high = file(&server, "Lost phone of Łukasz Żółć", 3).await;
    let medium = file(&server, "Old Android version on a tablet", 2).await;
    let critical = file(&server, "Tablet stolen from the registry office", 4).await;

    // Level 3: the head of office, over STARTTLS, logged in.
    let mail = relay
        .wait_for("Lost phone of Łukasz Żółć", "head@town.example")
        .await;
    assert_eq!(
        mail["subject"],
        format!(
            "[INCIDENT No. {}] high (orange): Lost phone of Łukasz Żółć",
            high["number"]
        )
    );
    assert_eq!(mail["tls"], true, "STARTTLS was used: {mail}");
    assert_eq!(mail["login"], USERNAME);
    assert_eq!(mail["mail_from"], "mdm@town.example");
    assert_eq!(mail["content_type"], "text/plain");
    let body = mail["body"].as_str().unwrap();
    assert!(body.contains("Level: 3 high (orange)"), "{body}");
    assert!(
        body.contains("- response action plan: Call the user; lock the device if it is not found."),
        "{body}"
    );
    assert!(
        body.contains("- person responsible: full name: Олена Коваленко"),
        "{body}"
    );
    assert!(!body.contains("http"), "no links: {body}");

    // Level 4: both, the CERT's two addresses in one message.
    let to_head = relay
        .wait_for(
            "Tablet stolen from the registry office",
            "head@town.example",
        )
        .await;
    assert!(to_head["subject"].as_str().unwrap().starts_with(&format!(
        "[INCIDENT No. {}] critical (red): ",
        critical["number"]
    )));
    let to_cert = relay
        .wait_for(
            "Tablet stolen from the registry office",
            "incidents@cert.example",
        )
        .await;
    assert_eq!(
        to_cert["rcpt_tos"],
        json!(["incidents@cert.example", "duty@cert.example"])
    );
    assert_eq!(to_cert["tls"], true);
    // Below a receiver's level: not mailed (the head's deliveries go in event order,
    // so the level-2 one would have come before the level-4 one).
    let messages = relay.messages();
    assert!(
        !messages
            .iter()
            .any(|m| m.to_string().contains("Old Android version")),
        "level 2 mailed: {messages:#?}"
    );
    assert!(
        !messages
            .iter()
            .any(|m| m["subject"].as_str().unwrap().contains("Łukasz")
                && m["rcpt_tos"].to_string().contains("cert.example")),
        "level 3 went to the CERT"
    );
    assert_eq!(medium["level"], 2);
    // Plain SMTP: the relay refuses MAIL before STARTTLS, and the log says so.
    let refused = failed_delivery(&server, "plain-relay", "STARTTLS").await;
    assert!(
        refused["last_error"].as_str().unwrap().contains("530"),
        "{refused}"
    );

    // The relay goes down: the mail waits in the queue, failures logged.
    relay.stop();
    file(&server, "Break-in at the server room", 5).await;
    failed_delivery(&server, "head-of-office", "127.0.0.1").await;
    failed_delivery(&server, "national-cert", "127.0.0.1").await;
    // The server stops while it waits; the relay comes back; the server too.
    server.kill();
    relay.start_again();
    server.restart().await;
    let late = relay
        .wait_for("Break-in at the server room", "head@town.example")
        .await;
    assert!(
        late["subject"]
            .as_str()
            .unwrap()
            .contains("] emergency (black): Break-in at the server room"),
        "{late}"
    );
    relay
        .wait_for("Break-in at the server room", "duty@cert.example")
        .await;
    let (_, delivered) = server
        .api(
            "GET",
            "/deliveries?receiver=head-of-office&status=delivered",
            None,
        )
        .await;
    let queued = delivered["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["payload"].as_str().unwrap().contains("Break-in"))
        .cloned()
        .unwrap();
    assert!(queued["attempts"].as_i64().unwrap() >= 2, "{queued}");
    // Each message once per receiver.
    let count = |needle: &str, to: &str| {
        relay
            .messages()
            .iter()
            .filter(|m| {
                m["subject"].as_str().unwrap().contains(needle)
                    && m["rcpt_tos"].to_string().contains(to)
            })
            .count()
    };
    assert_eq!(count("Lost phone", "head@"), 1);
    assert_eq!(count("Break-in", "cert.example"), 1);
    // The relay's password is in no log and no delivery.
    assert!(!server.log().contains(&relay.password), "password logged");
    let (_, all) = server.api("GET", "/deliveries?limit=1000", None).await;
    assert!(!all.to_string().contains(&relay.password));
    server.kill();
}

/// An e-mail receiver that cannot work stops the start, without showing a password.
#[test]
fn wrong_email_receivers_stop_the_start() {
    let dir = TempDir::new("email-config");
    std::fs::set_permissions(&dir.0, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    let secret = dir.0.join("secret");
    std::fs::write(&secret, "s3cret-relay-password\n").unwrap();
    std::fs::set_permissions(&secret, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let base =
        "[[email]]\nname = \"head\"\nfrom = \"mdm@town.example\"\nto = [\"head@town.example\"]\n";
    for (toml, expected) in [
        (
            format!("{base}smtp_url = \"smtp://relay.town.example\"\nstarttls = \"off\"\n"),
            "loopback",
        ),
        (
            format!(
                "{base}smtp_url = \"smtp://relay.town.example\"\nusername = \"mdm\"\npassword_file = \"{}\"\n",
                secret.display()
            ),
            "readable by others",
        ),
        (
            format!("{base}smtp_url = \"smtp://relay.town.example\"\nusername = \"mdm\"\npassword_file = \"/nonexistent/pw\"\n"),
            "/nonexistent/pw",
        ),
        (
            "[[email]]\nname = \"x\"\nhost = \"relay.town.example\"\nfrom = \"mdm@town.example\"\nto = [\"not an address\"]\n".into(),
            "not an e-mail address",
        ),
    ] {
        let rules = dir.0.join("bad.toml");
        std::fs::write(&rules, &toml).unwrap();
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
        assert!(!err.contains("s3cret"), "{err}");
    }
}

/// `pdftotext` of a PDF, or None (printed as SKIPPED) where poppler-utils is missing.
fn pdftotext(pdf: &[u8], what: &str) -> Option<String> {
    assert!(pdf.starts_with(b"%PDF-"), "{what} is no PDF");
    let dir = TempDir::new("pdf");
    let path = dir.0.join("report.pdf");
    std::fs::write(&path, pdf).unwrap();
    match std::process::Command::new("pdftotext")
        .arg(&path)
        .arg("-")
        .output()
    {
        Ok(out) => {
            assert!(
                out.status.success(),
                "pdftotext {what}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            Some(String::from_utf8(out.stdout).unwrap())
        }
        Err(_) => {
            eprintln!("SKIPPED: pdftotext not installed (apt-get install poppler-utils): {what}");
            None
        }
    }
}

async fn get_pdf(server: &TestServer, path: &str) -> Vec<u8> {
    let resp = reqwest::Client::new()
        .get(server.url(&format!("/api/v1{path}")))
        .bearer_auth(&server.admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK, "{path}");
    assert_eq!(resp.headers()["content-type"], "application/pdf");
    resp.bytes().await.unwrap().to_vec()
}

/// The reports as PDF, of one incident and of a period, through the API and the CLI:
/// the text (Polish and Ukrainian letters too) reads back with pdftotext.
async fn reports_as_pdf(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (code, incident) = server
        .api(
            "POST",
            "/incidents",
            Some(json!({
                "name": "Phone lost by Łukasz Żółć", "type": "misplaced_device", "level": 3,
                "response_plan": "Call the user; lock the phone.",
                "responsible": { "full_name": "Олена Коваленко", "position_company": "Відділ ІТ", "phone": "+48 22 000 00 00" },
                "comments": "Reported at the front desk.",
            })),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED, "{incident}");
    let n = incident["number"].as_i64().unwrap().to_string();
    let (code, _) = server
        .api(
            "POST",
            &format!("/incidents/{n}/actions"),
            Some(json!({ "description": "Called Łukasz: the phone is not at home" })),
        )
        .await;
    assert_eq!(code, StatusCode::OK);
    let (code, note) = server
        .api(
            "POST",
            &format!("/incidents/{n}/evidence"),
            Some(json!({ "kind": "note", "text": "Statement of the user, by phone." })),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED, "{note}");
    // Many more, with long plans: the register runs over several pages.
    let long_plan = "Check the device's last location, call the user, lock it, and wipe it if it is not found within a day. ".repeat(12);
    for k in 0..24 {
        let (code, _) = server
            .api(
                "POST",
                "/incidents",
                Some(json!({
                    "name": format!("Tablet {k} left in a meeting room"), "type": "misplaced_device",
                    "level": k % 6, "response_plan": long_plan,
                })),
            )
            .await;
        assert_eq!(code, StatusCode::CREATED);
    }
    let (code, last) = server
        .api(
            "POST",
            "/incidents",
            Some(json!({ "name": "Burglary in the archive", "type": "stolen_device", "level": 5 })),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED, "{last}");

    // One incident: every column, its history and its evidence with the SHA-256.
    let pdf = get_pdf(&server, &format!("/incidents/{n}/report.pdf")).await;
    if let Some(text) = pdftotext(&pdf, "one incident") {
        for expected in [
            format!("Incident No. {n}: Phone lost by Łukasz Żółć"),
            "3 high (orange)".into(),
            "Олена Коваленко".into(),
            "Відділ ІТ".into(),
            "Called Łukasz: the phone is not at home".into(),
            "History".into(),
            note["sha256"].as_str().unwrap().to_owned(),
            "person responsible: contact phone".into(),
        ] {
            assert!(text.contains(&expected), "{expected:?} not in:\n{text}");
        }
    }
    // The period, through the CLI.
    let dir = TempDir::new("pdf-cli");
    let file = dir.0.join("register.pdf");
    let out = server
        .clone_cli()
        .run(&[
            "incidents",
            "report",
            "--from",
            "2020-01-01",
            "--to",
            "2099-12-31",
            "--pdf",
            file.to_str().unwrap(),
        ])
        .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let register = std::fs::read(&file).unwrap();
    if let Some(text) = pdftotext(&register, "the register") {
        assert!(
            text.contains("Incident register, 2020-01-01 to 2099-12-31"),
            "{text}"
        );
        assert!(text.contains("26 incident(s)."), "{text}");
        for word in [
            "Łukasz",
            "Żółć",
            "Коваленко",
            "Burglary",
            "archive",
            "emergency",
            "incident name",
            "page 1 of",
        ] {
            assert!(text.contains(word), "{word:?} not in:\n{text}");
        }
        let pages = text.matches(" · page ").count();
        assert!(pages >= 3, "the register spans pages: {pages}");
    }
    // One incident through the CLI; an empty period; an unknown incident.
    let one = dir.0.join("one.pdf");
    let out = server
        .clone_cli()
        .run(&["incidents", "report", &n, "--pdf", one.to_str().unwrap()])
        .await;
    assert!(out.status.success());
    assert!(std::fs::read(&one).unwrap().starts_with(b"%PDF-"));
    let empty = get_pdf(&server, "/incidents/report.pdf?from=2099-01-01T00:00:00Z").await;
    if let Some(text) = pdftotext(&empty, "an empty period") {
        assert!(text.contains("0 incident(s)."), "{text}");
    }
    let (code, _) = server.api("GET", "/incidents/99999/report.pdf", None).await;
    assert_eq!(code, StatusCode::NOT_FOUND);
    let (code, _) = server
        .api_as(None, "GET", &format!("/incidents/{n}/report.pdf"), None)
        .await;
    assert_eq!(code, StatusCode::UNAUTHORIZED);
}

/// An Android phone's last status report from Google as evidence, hashed into the
/// register's chain, through the API and the CLI.
async fn an_android_status_report_is_evidence(backend: Backend) {
    let a = android_fixture::start(backend, &[]).await;
    a.connected().await;
    let phone = Phone::default();
    let (device_id, name) = a.enrolled_phone(&phone, false).await;
    let (code, incident) = a
        .server
        .api(
            "POST",
            "/incidents",
            Some(json!({ "name": "Phone may be compromised", "type": "compromised_device", "level": 2, "devices": [device_id] })),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED, "{incident}");
    let n = incident["number"].as_i64().unwrap().to_string();
    let (code, evidence) = a
        .server
        .api(
            "POST",
            &format!("/incidents/{n}/evidence"),
            Some(json!({ "kind": "status_report", "device_id": device_id })),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED, "{evidence}");
    assert_eq!(evidence["kind"], "status_report");
    assert_eq!(evidence["source"], device_id.as_str());
    let content = &evidence["content"];
    assert_eq!(content["name"], name.as_str());
    assert_eq!(content["hardware"]["serial_number"], phone.serial.as_str());
    assert_eq!(content["hardware"]["model"], phone.model.as_str());
    assert!(content["last_status_report_at"].is_string(), "{content}");
    assert_eq!(
        evidence["sha256"],
        hex::encode(openssl::sha::sha256(content.to_string().as_bytes()))
    );
    // Through the CLI.
    let out = a
        .server
        .clone_cli()
        .run(&[
            "incidents",
            "evidence",
            &n,
            "--status-report",
            &device_id,
            "--json",
        ])
        .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cli: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(cli["kind"], "status_report");
    // An unknown device: 404.
    let (code, _) = a
        .server
        .api(
            "POST",
            &format!("/incidents/{n}/evidence"),
            Some(json!({ "kind": "status_report", "device_id": "no-such-device" })),
        )
        .await;
    assert_eq!(code, StatusCode::NOT_FOUND);
    let listed = a.server.get(&format!("/incidents/{n}/evidence")).await;
    assert_eq!(listed["items"].as_array().unwrap().len(), 2);
    let report = a.server.get("/incidents/verify").await;
    assert_eq!(report["intact"], true, "{report}");
    assert_eq!(report["evidence"], 2);
    // The incident's PDF lists it with its hash.
    let pdf = get_pdf(&a.server, &format!("/incidents/{n}/report.pdf")).await;
    if let Some(text) = pdftotext(&pdf, "status report evidence") {
        assert!(text.contains("status_report"), "{text}");
        assert!(
            text.contains(evidence["sha256"].as_str().unwrap()),
            "{text}"
        );
    }
}

on_every_backend!(
    incidents_are_mailed_by_level_over_starttls,
    reports_as_pdf,
    an_android_status_report_is_evidence,
);
