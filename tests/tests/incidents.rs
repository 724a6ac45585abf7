//! The incident register through the API: filing by hand with the policy's levels and
//! columns, updates, classification, dated actions, closing, history, exports in
//! Appendix A's column order, and the hash chain that detects a row altered in the
//! database.

use mdm_tests::fixture::{Backend, TestServer};
use mdm_tests::on_every_backend;
use reqwest::StatusCode;
use sea_orm::{ConnectionTrait, Statement};
use serde_json::{json, Value};

async fn exec(server: &TestServer, sql: &str) {
    let store = server.store().await;
    let db = store.connection();
    db.execute(Statement::from_string(
        db.get_database_backend(),
        sql.to_owned(),
    ))
    .await
    .unwrap();
}

async fn verify(server: &TestServer) -> Value {
    server.get("/incidents/verify").await
}

async fn the_register_keeps_the_policys_columns_and_detects_tampering(backend: Backend) {
    let server = TestServer::start(backend).await;
    let lost = json!({
        "name": "Lost phone of the registry clerk",
        // A type without playbooks: this test is about the register itself.
        "type": "misplaced_device",
        "level": 2,
        "devices": ["2b9f0a4e-0000-4000-8000-000000000001"],
        "users": ["jan.kowalski"],
        "response_plan": "Lock, lost mode, wipe after 24 h",
        "expected_completion": "2026-12-03",
        "resources": { "technical": "MDM", "software": "", "financial": "none" },
        "evidence_procedure": "export the device's events, no change on the device",
        "evidence_location": "MDM event log",
        "responsible": { "full_name": "Anna Nowak", "position_company": "security officer / Town Hall", "phone": "+48 22 000 00 00" },
        "comments": "reported by phone"
    });
    let (code, first) = server.api("POST", "/incidents", Some(lost)).await;
    assert_eq!(code, StatusCode::CREATED, "{first}");
    assert_eq!(first["number"], 1);
    assert_eq!(first["level_name"], "medium");
    assert_eq!(first["level_colour"], "yellow");
    assert_eq!(first["classification"], "reported");
    assert_eq!(first["status"], "not_started");
    let id = first["id"].as_str().unwrap().to_owned();
    let (code, second) = server
        .api(
            "POST",
            "/incidents",
            Some(json!({ "name": "Rooted tablet", "type": "compromised_device", "level": 3 })),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED);
    assert_eq!(second["number"], 2);
    assert_eq!(second["level_colour"], "orange");

    // Bad input: a clear 400 and nothing filed.
    for bad in [
        json!({ "name": "x", "type": "lost_device", "level": 6 }),
        json!({ "name": " ", "type": "lost_device", "level": 1 }),
        json!({ "name": "x", "type": "Lost Device", "level": 1 }),
        json!({ "name": "x", "type": "lost_device", "level": 1, "owner": "?" }),
        json!({ "name": "x\u{0}", "type": "lost_device", "level": 1 }),
    ] {
        let (code, body) = server.api("POST", "/incidents", Some(bad.clone())).await;
        assert!(
            matches!(
                code,
                StatusCode::BAD_REQUEST | StatusCode::UNPROCESSABLE_ENTITY
            ),
            "{bad}: {body}"
        );
    }
    assert_eq!(server.get("/incidents").await["total"], 2);

    // Classified, a dated action (status moves to in progress), updated, closed.
    let (code, body) = server
        .api(
            "POST",
            &format!("/incidents/{id}/classify"),
            Some(json!({ "classification": "confirmed", "level": 3 })),
        )
        .await;
    assert_eq!(code, StatusCode::OK, "{body}");
    assert_eq!(body["level_name"], "high");
    let (code, body) = server
        .api(
            "POST",
            "/incidents/1/actions",
            Some(json!({ "description": "Device locked remotely", "at": "2026-12-01T09:30:00Z" })),
        )
        .await;
    assert_eq!(code, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "in_progress");
    let (code, _) = server
        .api(
            "PATCH",
            &format!("/incidents/{id}"),
            Some(json!({ "status": "done" })),
        )
        .await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY);
    let (code, body) = server
        .api(
            "PATCH",
            &format!("/incidents/{id}"),
            Some(json!({ "comments": "=cmd|' /C calc'!A0, with a comma" })),
        )
        .await;
    assert_eq!(code, StatusCode::OK, "{body}");
    let (code, body) = server
        .api(
            "POST",
            &format!("/incidents/{id}/close"),
            Some(json!({ "closing_report": "Wiped; device replaced." })),
        )
        .await;
    assert_eq!(code, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "completed");
    let (code, _) = server
        .api(
            "PATCH",
            &format!("/incidents/{id}"),
            Some(json!({ "comments": "late" })),
        )
        .await;
    assert_eq!(
        code,
        StatusCode::CONFLICT,
        "a closed incident is not edited"
    );

    // History: who, when, what, each a link of the chain.
    let history = server.get(&format!("/incidents/{id}/history")).await["items"]
        .as_array()
        .cloned()
        .unwrap();
    let changes: Vec<&str> = history
        .iter()
        .map(|h| h["change"].as_str().unwrap())
        .collect();
    assert_eq!(
        changes,
        ["filed", "classified", "action", "updated", "closed"]
    );
    assert!(history
        .iter()
        .all(|h| h["actor"].is_string() && h["at"].is_string()));
    assert_eq!(server.events("incident.filed").await.len(), 2);

    // Filters.
    let high = server.get("/incidents?level=3").await;
    assert_eq!(high["total"], 2);
    let by_device = server
        .get("/incidents?device=2b9f0a4e-0000-4000-8000-000000000001")
        .await;
    assert_eq!(by_device["total"], 1);
    let (code, _) = server.api("GET", "/incidents?level=9", None).await;
    assert_eq!(code, StatusCode::BAD_REQUEST);

    // Exports: Appendix A's columns, in its order.
    let resp = reqwest::Client::new()
        .get(server.url("/api/v1/incidents/export.csv"))
        .bearer_auth(&server.admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let csv = resp.text().await.unwrap();
    let mut lines = csv.split("\r\n");
    assert_eq!(
        lines.next().unwrap(),
        "No.,incident name,response action plan,date/time of response actions,\
         expected completion date of all response actions,\
         \"technical, software and financial resources\",procedure for collecting evidence,\
         where the evidence is stored,person responsible: full name,\
         person responsible: position / company,person responsible: contact phone,status,comments"
    );
    let row1 = lines.next().unwrap();
    assert!(
        row1.starts_with("1,Lost phone of the registry clerk,"),
        "{row1}"
    );
    assert!(
        row1.contains("2026-12-01 09:30 UTC Device locked remotely"),
        "{row1}"
    );
    assert!(row1.contains(",completed,"), "{row1}");
    // A formula is defused and the comma quoted.
    assert!(
        row1.ends_with("\"'=cmd|' /C calc'!A0, with a comma\""),
        "{row1}"
    );
    let exported = server.get("/incidents/export.json").await;
    assert_eq!(exported["columns"].as_array().unwrap().len(), 13);
    assert_eq!(exported["rows"][1][0], "2");

    // The same through the CLI.
    let cli = server.clone_cli();
    let out = cli
        .run(&[
            "incidents",
            "file",
            "--name",
            "Phone without passcode",
            "--type",
            "non_compliant_device",
            "--level",
            "1",
        ])
        .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("No. 3: Phone without passcode"));
    let out = cli.run(&["incidents", "list", "--min-level", "3"]).await;
    let listed = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        listed.contains("3 high (orange)") && listed.contains("2 incident(s)"),
        "{listed}"
    );
    let out = cli
        .run(&["incidents", "action", "3", "Reminded the user"])
        .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = cli.run(&["incidents", "show", "3"]).await;
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("action"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let out = cli.run(&["incidents", "export"]).await;
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("No.,incident name,"));
    let out = cli.run(&["incidents", "classify", "3", "maybe"]).await;
    assert_eq!(
        out.status.code(),
        Some(2),
        "a wrong classification is a usage error"
    );
    let out = cli.run(&["incidents", "verify"]).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Intact, then tampered in the database: detected.
    let report = verify(&server).await;
    assert_eq!(report["intact"], true, "{report}");
    assert_eq!(report["links"], 8);
    exec(&server, "UPDATE incidents SET level = 0 WHERE number = 2").await;
    let report = verify(&server).await;
    assert_eq!(report["intact"], false);
    assert!(report["problems"].to_string().contains("No. 2"), "{report}");
    exec(&server, "UPDATE incidents SET level = 3 WHERE number = 2").await;
    assert_eq!(verify(&server).await["intact"], true);
    exec(
        &server,
        "UPDATE incident_history SET actor = 'someone else' WHERE seq = 3",
    )
    .await;
    let report = verify(&server).await;
    assert_eq!(report["intact"], false);
    assert!(
        report["problems"]
            .to_string()
            .contains("entry 3 was altered"),
        "{report}"
    );
}

/// Waits (bounded) until the register holds `n` incidents matching `query`.
async fn incidents_eventually(server: &TestServer, query: &str, n: u64) -> Value {
    for _ in 0..100 {
        let page = server.get(&format!("/incidents?{query}")).await;
        if page["total"].as_u64() == Some(n) {
            return page;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!(
        "no {n} incident(s) for {query}: {}",
        server.get("/incidents").await
    );
}

/// Device events file incidents by the rules: an identity mismatch files one at the
/// rule's level on the device, a second one joins it instead of filing another, a
/// check-out files its own type; the office's own rules file replaces the built-in
/// ones, and a wrong one stops the start.
async fn device_events_file_incidents_by_the_rules(backend: Backend) {
    use mdm_tests::simulator::SimDevice;
    let server = TestServer::start(backend.clone()).await;
    let victim = SimDevice::iphone(&server.base_url, &server.ca);
    victim.enroll().await;
    let other = SimDevice::iphone(&server.base_url, &server.ca);
    other.enroll().await;
    let victim_id = server.get(&format!("/devices/udid:{}", victim.udid)).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // The other device's certificate speaks for the victim's UDID, twice.
    let impostor = SimDevice::with_identity(
        &server.base_url,
        victim.udid.clone(),
        other.key.clone(),
        other.cert.clone(),
        "iPhone15,2",
        "iOS",
    );
    for _ in 0..2 {
        let reply = impostor
            .report_raw("Idle", None, plist::Dictionary::new())
            .await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    }
    let page = incidents_eventually(&server, &format!("device={victim_id}"), 1).await;
    let incident = &page["items"][0];
    assert_eq!(incident["incident_type"], "identity_mismatch");
    assert_eq!(incident["level"], 2);
    assert_eq!(incident["level_colour"], "yellow");
    assert_eq!(
        incident["detection_source"],
        "event:security.identity_mismatch"
    );
    let id = incident["id"].as_str().unwrap();
    // The second mismatch joined it.
    for _ in 0..100 {
        let history = server.get(&format!("/incidents/{id}/history")).await;
        if history["items"].as_array().unwrap().len() == 2 {
            assert_eq!(history["items"][1]["change"], "event");
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(
        server.get(&format!("/incidents/{id}/history")).await["items"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    // Evidence from the server's own records, hashed into the chain.
    let (code, facts) = server
        .api(
            "POST",
            &format!("/incidents/{id}/evidence"),
            Some(json!({ "kind": "device_facts", "device_id": victim_id })),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED, "{facts}");
    let content = facts["content"].to_string();
    assert_eq!(
        facts["sha256"],
        hex::encode(openssl::sha::sha256(content.as_bytes()))
    );
    assert_eq!(facts["content"]["udid"], victim.udid.as_str());
    // The device's events, through the CLI.
    let out = server
        .clone_cli()
        .run(&[
            "incidents",
            "evidence",
            id,
            "--events",
            &victim_id,
            "--json",
        ])
        .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let events: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(events["content"]
        .to_string()
        .contains("security.identity_mismatch"));
    let out = server.clone_cli().run(&["incidents", "evidence", id]).await;
    assert_eq!(
        out.status.code(),
        Some(2),
        "no evidence named: a usage error"
    );
    let (code, _) = server
        .api(
            "POST",
            &format!("/incidents/{id}/evidence"),
            Some(json!({ "kind": "device_facts", "device_id": "no-such-device" })),
        )
        .await;
    assert_eq!(code, StatusCode::NOT_FOUND);
    let (code, _) = server
        .api(
            "POST",
            &format!("/incidents/{id}/evidence"),
            Some(json!({ "kind": "photo", "url": "x" })),
        )
        .await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
    let listed = server.get(&format!("/incidents/{id}/evidence")).await;
    assert_eq!(listed["items"].as_array().unwrap().len(), 2);
    let report = server.get("/incidents/verify").await;
    assert_eq!(report["intact"], true, "{report}");
    assert_eq!(report["evidence"], 2);

    // A check-out is an incident of its own type.
    assert_eq!(other.check_out().await.status, StatusCode::OK);
    let page = incidents_eventually(&server, "status=not_started", 2).await;
    assert!(
        page.to_string().contains("unexpected_unenrollment"),
        "{page}"
    );
    assert_eq!(server.get("/incidents/verify").await["intact"], true);
    // Evidence altered in the database: detected.
    exec(
        &server,
        &format!(
            "UPDATE incident_evidence SET content = REPLACE(content, '{}', 'someone-else') WHERE kind = 'device_facts'",
            victim.udid
        ),
    )
    .await;
    let report = server.get("/incidents/verify").await;
    assert_eq!(report["intact"], false);
    assert!(
        report["problems"]
            .to_string()
            .contains("differs from what was collected"),
        "{report}"
    );

    // The office's own rules replace the built-in ones.
    let dir = mdm_tests::fixture::TempDir::new("incident-rules");
    let rules = dir.0.join("rules.toml");
    std::fs::write(
        &rules,
        r#"
[[rule]]
kind = "device.enrolled"
type = "new_device"
level = 0
name = "New device: {message}"
response_plan = "Check the device belongs to the office."
"#,
    )
    .unwrap();
    let custom = TestServer::start_with(
        backend.clone(),
        mdm_tests::fixture::ServerOptions {
            extra_args: vec!["--incident-rules".into(), rules.display().to_string()],
            ..Default::default()
        },
    )
    .await;
    let phone = SimDevice::iphone(&custom.base_url, &custom.ca);
    phone.enroll().await;
    let page = incidents_eventually(&custom, "level=0", 1).await;
    assert_eq!(page["items"][0]["incident_type"], "new_device");
    assert_eq!(
        page["items"][0]["response_plan"],
        "Check the device belongs to the office."
    );
    std::fs::write(
        &rules,
        "[[rule]]\nkind = \"incident.filed\"\ntype = \"x\"\nlevel = 9\nname = \"x\"\n",
    )
    .unwrap();
    let out = std::process::Command::new(mdm_tests::fixture::mdm_binary())
        .args([
            "serve",
            "--plain-http",
            "--listen",
            "127.0.0.1:0",
            "--incident-rules",
        ])
        .arg(&rules)
        .arg("--data-dir")
        .arg(dir.0.join("data"))
        .env_remove("MDM_DATABASE_URL")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--incident-rules"));
}

/// Playbooks: a lost device filed by hand is locked at once (the ready plan copied
/// in); a stolen one, once confirmed, is locked and its wipe waits for a second
/// admin, which the confirming admin cannot give; approved, the wipe reaches the
/// device. Every automatic action is in the incident.
async fn playbooks_lock_at_once_and_wipe_after_a_second_admin(backend: Backend) {
    use mdm_tests::simulator::SimDevice;
    let server = TestServer::start(backend).await;
    let phone = SimDevice::iphone(&server.base_url, &server.ca);
    phone.enroll().await;
    let id = server.get(&format!("/devices/udid:{}", phone.udid)).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (code, lost) = server
        .api(
            "POST",
            "/incidents",
            Some(json!({ "name": "Phone left on the train", "type": "lost_device", "level": 2, "devices": [id] })),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED, "{lost}");
    assert!(
        lost["response_plan"]
            .as_str()
            .unwrap()
            .contains("lost mode"),
        "the ready plan: {lost}"
    );
    let actions = lost["response_actions"].as_array().unwrap();
    assert!(
        actions[0]["description"]
            .as_str()
            .unwrap()
            .contains("lock queued"),
        "{lost}"
    );
    assert_eq!(actions[0]["actor"], "playbook:lost_device");
    assert_eq!(lost["status"], "in_progress");
    let lock = phone.idle().await.expect("the playbook's lock");
    assert_eq!(lock.request_type, "DeviceLock");
    assert!(phone.acknowledge(&lock.uuid).await.is_none());

    // Stolen: nothing until confirmed; then lock, and a wipe waiting for approval.
    let (code, stolen) = server
        .api(
            "POST",
            "/incidents",
            Some(json!({ "name": "Phone stolen from a car", "type": "stolen_device", "level": 3, "devices": [id] })),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED);
    assert!(stolen["response_actions"].as_array().unwrap().is_empty());
    let sid = stolen["id"].as_str().unwrap().to_owned();
    let (code, confirmed) = server
        .api(
            "POST",
            &format!("/incidents/{sid}/classify"),
            Some(json!({ "classification": "confirmed" })),
        )
        .await;
    assert_eq!(code, StatusCode::OK, "{confirmed}");
    let text = confirmed["response_actions"].to_string();
    assert!(
        text.contains("lock queued") && text.contains("second administrator"),
        "{text}"
    );
    let lock = phone.idle().await.expect("the lock");
    assert_eq!(lock.request_type, "DeviceLock");
    assert!(phone.acknowledge(&lock.uuid).await.is_none(), "no wipe yet");
    let approvals = server.get(&format!("/incidents/{sid}/approvals")).await["items"]
        .as_array()
        .cloned()
        .unwrap();
    assert_eq!(approvals.len(), 1);
    assert_eq!(approvals[0]["status"], "pending");
    let approval = approvals[0]["id"].as_str().unwrap();
    let out = server
        .clone_cli()
        .run(&["incidents", "approvals", &sid])
        .await;
    assert!(String::from_utf8_lossy(&out.stdout).contains("pending"));
    // The admin who confirmed cannot approve.
    let (code, body) = server
        .api(
            "POST",
            &format!("/incidents/{sid}/approvals/{approval}/approve"),
            None,
        )
        .await;
    assert_eq!(code, StatusCode::CONFLICT, "{body}");
    assert!(body.to_string().contains("second administrator"));
    // A second admin can.
    let out = std::process::Command::new(mdm_tests::fixture::mdm_binary())
        .args([
            "token",
            "create",
            "--name",
            "second-admin",
            "--database-url",
            &server.database_url,
        ])
        .arg("--data-dir")
        .arg(&server.data_dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let second = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let (code, approved) = server
        .api_as(
            Some(&second),
            "POST",
            &format!("/incidents/{sid}/approvals/{approval}/approve"),
            None,
        )
        .await;
    assert_eq!(code, StatusCode::OK, "{approved}");
    assert!(
        approved["response_actions"]
            .to_string()
            .contains("approved: wipe queued"),
        "{approved}"
    );
    let wipe = phone.idle().await.expect("the approved wipe");
    assert_eq!(wipe.request_type, "EraseDevice");
    // The wipe done joins the stolen phone's incident (the newest open one on the
    // device); alone it files nothing.
    assert!(phone.acknowledge(&wipe.uuid).await.is_none());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        let history = server.get(&format!("/incidents/{sid}/history")).await;
        if history
            .to_string()
            .contains("wiped (EraseDevice acknowledged)")
        {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the wipe never joined: {history}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(
        server.get("/incidents").await["total"],
        2,
        "no incident of its own"
    );
    // Decided once.
    let (code, _) = server
        .api_as(
            Some(&second),
            "POST",
            &format!("/incidents/{sid}/approvals/{approval}/deny"),
            None,
        )
        .await;
    assert_eq!(code, StatusCode::CONFLICT);
    assert_eq!(server.get("/incidents/verify").await["intact"], true);
    assert!(!server.events("incident.notification").await.is_empty());

    // Figures and printable reports.
    let figures = server.get("/incidents/figures").await;
    assert_eq!(figures["by_level"][2]["count"], 1, "{figures}");
    assert_eq!(figures["by_level"][3]["colour"], "orange");
    assert_eq!(figures["by_level"][3]["count"], 1);
    assert_eq!(figures["lost_to_lock_minutes"]["incidents"], 2, "{figures}");
    assert!(figures["lost_to_lock_minutes"]["max"].as_f64().unwrap() < 5.0);
    assert_eq!(
        figures["devices"]["enrolled"], 0,
        "the wiped phone left the fleet"
    );
    let report = reqwest::Client::new()
        .get(server.url(&format!("/api/v1/incidents/{sid}/report.html")))
        .bearer_auth(&server.admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(report.status(), 200);
    let html = report.text().await.unwrap();
    assert!(html.contains("Incident No. 2: Phone stolen from a car"));
    assert!(
        html.contains("class=\"l3\"") && html.contains("<h2>History</h2>"),
        "{html}"
    );
    assert!(html.contains("person responsible: contact phone"));
}

/// A user reports their phone lost through a personal link (no admin account): an
/// incident is filed, the playbook locks the phone and its wipe waits for an admin,
/// who approves it and the wipe reaches the phone. The link can be revoked; a wrong
/// token or device is refused.
async fn a_lost_report_through_the_personal_link(backend: Backend) {
    use mdm_tests::simulator::SimDevice;
    let dir = mdm_tests::fixture::TempDir::new("lost-playbook");
    let rules = dir.0.join("incidents.toml");
    std::fs::write(
        &rules,
        "[[playbook]]\ntype = \"lost_device\"\non = \"filed\"\nactions = [\"lock\", \"wipe\"]\nmessage = \"Lost. Call 22 000 00 00.\"\n",
    )
    .unwrap();
    let server = TestServer::start_with(
        backend,
        mdm_tests::fixture::ServerOptions {
            extra_args: vec!["--incident-rules".into(), rules.display().to_string()],
            ..Default::default()
        },
    )
    .await;
    let phone = SimDevice::iphone(&server.base_url, &server.ca);
    phone.enroll().await;
    let id = server.get(&format!("/devices/udid:{}", phone.udid)).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (code, link) = server
        .api(
            "POST",
            "/lost-report-links",
            Some(json!({ "user": "jan.kowalski", "devices": [id] })),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED, "{link}");
    let url = link["url"]
        .as_str()
        .unwrap()
        .replace("https://mdm.test.invalid", &server.base_url);
    let listed = server.get("/lost-report-links").await;
    assert!(
        !listed.to_string().contains(url.rsplit('/').next().unwrap()),
        "the token is not stored"
    );
    let http = reqwest::Client::new();
    let page = http.get(&url).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("default-src 'none'"));
    let html = page.text().await.unwrap();
    assert!(
        html.contains("jan.kowalski") && html.contains(&id),
        "{html}"
    );
    // A device not on the link is refused.
    let wrong = http
        .post(&url)
        .form(&[("device", "not-mine"), ("details", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 400);
    let done = http
        .post(&url)
        .form(&[
            ("device", id.as_str()),
            ("details", "Left it on the tram <line 7>"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), 200);
    let html = done.text().await.unwrap();
    assert!(
        html.contains("incident No. 1") && html.contains("being locked"),
        "{html}"
    );
    let incident = server.get("/incidents/1").await;
    assert_eq!(incident["incident_type"], "lost_device");
    assert_eq!(incident["users"][0], "jan.kowalski");
    assert_eq!(incident["detection_source"], "user report (personal link)");
    assert_eq!(incident["comments"], "Left it on the tram <line 7>");
    // Locked at once; the wipe waits for an admin.
    let lock = phone.idle().await.expect("the lock");
    assert_eq!(lock.request_type, "DeviceLock");
    assert!(phone.acknowledge(&lock.uuid).await.is_none());
    let approvals = server.get("/incidents/1/approvals").await["items"]
        .as_array()
        .cloned()
        .unwrap();
    assert_eq!(
        approvals[0]["requested_by"],
        "user:jan.kowalski (personal link)"
    );
    let approval = approvals[0]["id"].as_str().unwrap();
    let (code, body) = server
        .api(
            "POST",
            &format!("/incidents/1/approvals/{approval}/approve"),
            None,
        )
        .await;
    assert_eq!(code, StatusCode::OK, "{body}");
    let wipe = phone.idle().await.expect("the approved wipe");
    assert_eq!(wipe.request_type, "EraseDevice");
    // Revoked: the link opens nothing; an unknown token neither.
    let link_id = link["id"].as_str().unwrap();
    let (code, _) = server
        .api("DELETE", &format!("/lost-report-links/{link_id}"), None)
        .await;
    assert_eq!(code, StatusCode::NO_CONTENT);
    assert_eq!(http.get(&url).send().await.unwrap().status(), 404);
    assert_eq!(
        http.get(server.url("/lost/not-a-token"))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    let (code, _) = server
        .api(
            "POST",
            "/lost-report-links",
            Some(json!({ "user": "x", "devices": [] })),
        )
        .await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
}

/// A burst of failed unlocks in an Android phone's security logs files an incident at
/// the rule's level, and its playbook locks the phone through Google (a LOCK command
/// at the fake AMAPI), recorded in the incident.
async fn an_android_failed_unlock_burst_files_an_incident_and_locks_the_phone(backend: Backend) {
    use mdm_tests::android_fixture::start;
    use mdm_tests::fake_google_amapi::Phone;
    let a = start(backend, &["--android-pull-interval-ms", "100"]).await;
    a.connected().await;
    let (id, name) = a.enrolled_phone(&Phone::default(), false).await;
    let t = |s: u32| format!("2026-12-01T10:00:{s:02}Z");
    let entries: Vec<Value> = (0..6)
        .map(|i| json!({"eventId": i.to_string(), "eventType": "KEYGUARD_DISMISS_AUTH_ATTEMPT", "eventTime": t(i),
                        "keyguardDismissAuthAttemptEvent": {"success": false, "strongAuthMethodUsed": false}}))
        .collect();
    a.google.upload_usage_logs(&name, entries);
    let page = incidents_eventually(&a.server, &format!("device={id}"), 1).await;
    let incident = &page["items"][0];
    assert_eq!(incident["incident_type"], "failed_unlock_burst");
    assert_eq!(incident["level"], 2);
    assert_eq!(incident["detection_source"], "event:security.android_log");
    // The playbook's lock reached Google.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        let incident = a
            .server
            .get(&format!("/incidents/{}", incident["id"].as_str().unwrap()))
            .await;
        let actions = incident["response_actions"].to_string();
        if actions.contains("lock queued") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no lock recorded: {incident}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    // The phone is factory-reset outside the MDM: Google reports it DELETED, an
    // incident of its own type is filed.
    a.google
        .edit_device(&name, |d| d["state"] = "DELETED".into());
    a.google.report_status(&name, &[]);
    let page = incidents_eventually(&a.server, "status=not_started", 1).await;
    assert!(
        page.to_string().contains("unexpected_unenrollment"),
        "{page}"
    );
    let sent = a.google.requests(":issueCommand");
    assert!(
        sent.iter().any(|r| r.body["type"] == "LOCK"),
        "no LOCK at Google: {:?}",
        sent.iter().map(|r| r.body.clone()).collect::<Vec<_>>()
    );
}

/// A server upgraded to the release with the register files incidents for what
/// happens from then on, not for the event history it already had.
async fn an_upgraded_server_files_no_incidents_for_its_history(backend: Backend) {
    use mdm_tests::restartable::{RestartableServer, ScratchDatabase};
    use migrations::{Migrator, MigratorTrait};
    let db = ScratchDatabase::new(&backend).await;
    {
        let conn = sea_orm::Database::connect(&db.url).await.unwrap();
        let before = Migrator::migrations()
            .iter()
            .position(|m| m.name().contains("incident_register"))
            .unwrap();
        Migrator::up(&conn, Some(before as u32)).await.unwrap();
        // History the rules would file incidents for: a check-out, a mismatch.
        let sql = match conn.get_database_backend() {
            sea_orm::DbBackend::Postgres => "INSERT INTO events (occurred_at, kind, severity, device_id, actor, message, data) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            _ => "INSERT INTO events (occurred_at, kind, severity, device_id, actor, message, data) VALUES (?, ?, ?, ?, ?, ?, ?)",
        };
        for kind in ["device.checked_out", "security.identity_mismatch"] {
            conn.execute(Statement::from_sql_and_values(
                conn.get_database_backend(),
                sql,
                [
                    chrono::Utc::now().into(),
                    kind.into(),
                    2i16.into(),
                    "old-device".into(),
                    "device".into(),
                    "before the upgrade".into(),
                    "{}".into(),
                ],
            ))
            .await
            .unwrap();
        }
    }
    let mut server = RestartableServer::start(&db.url, None, true).await;
    // The engine runs every second: give it three.
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    let (_, page) = server.api("GET", "/incidents", None).await;
    assert_eq!(page["total"], 0, "history filed: {page}");
    // What happens after the upgrade is filed.
    let phone = mdm_tests::simulator::SimDevice::iphone(&server.base_url, &server.ca);
    phone.enroll().await;
    assert_eq!(phone.check_out().await.status, StatusCode::OK);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        let (_, page) = server.api("GET", "/incidents", None).await;
        if page["total"] == 1 {
            assert_eq!(page["items"][0]["incident_type"], "unexpected_unenrollment");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "nothing filed: {page}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    server.kill();
}

on_every_backend!(
    an_upgraded_server_files_no_incidents_for_its_history,
    an_android_failed_unlock_burst_files_an_incident_and_locks_the_phone,
    a_lost_report_through_the_personal_link,
    the_register_keeps_the_policys_columns_and_detects_tampering,
    device_events_file_incidents_by_the_rules,
    playbooks_lock_at_once_and_wipe_after_a_second_admin
);
