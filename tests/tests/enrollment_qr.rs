//! QR codes and the Android provisioning payload: every QR code is decoded back with
//! a real decoder (zbarimg) and compared with what it was meant to hold; the CLI
//! draws them and writes them to files. Android enrollments come from Android
//! Enterprise, against the fakes of Google (tests/src/android_fixture.rs).

use mdm_tests::android_fixture::{self, Android, DPC_TOKEN, EXTRAS};
use mdm_tests::fixture::{mdm_binary, Backend, TempDir, TestServer};
use mdm_tests::on_every_backend;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::path::Path;

/// A server connected to (fake) Android Enterprise, signed up.
async fn server(backend: Backend) -> Android {
    let a = android_fixture::start(backend, &[]).await;
    a.connected().await;
    a
}

/// Google's provisioning JSON (the `qrCode`) of the one enrollment token it issued.
fn googles_qr(a: &Android) -> Value {
    let tokens = a.google.state.lock().unwrap().enrollment_tokens.clone();
    assert_eq!(tokens.len(), 1, "{tokens:?}");
    let token = tokens.values().next().unwrap();
    serde_json::from_str(token["qrCode"].as_str().unwrap()).unwrap()
}

/// Decodes a QR image with zbarimg; None (and a SKIPPED line) when it is missing.
fn zbar(path: &Path, test: &str) -> Option<String> {
    match std::process::Command::new("zbarimg")
        // QR only: with every symbology on, zbar now and then also "finds" a
        // one-dimensional code in the QR's modules and prints it as a second line.
        .args(["--raw", "-q", "-Sdisable", "-Sqrcode.enable"])
        .arg(path)
        .output()
    {
        Ok(out) => {
            assert!(
                out.status.success(),
                "zbarimg could not read {}: {}",
                path.display(),
                String::from_utf8_lossy(&out.stderr)
            );
            Some(
                String::from_utf8(out.stdout)
                    .unwrap()
                    .trim_end_matches('\n')
                    .to_owned(),
            )
        }
        Err(_) => {
            println!("SKIPPED {test}: zbarimg not installed (apt-get install zbar-tools)");
            eprintln!("SKIPPED {test}: zbarimg not installed (apt-get install zbar-tools)");
            None
        }
    }
}

async fn fetch(server: &TestServer, path: &str) -> Vec<u8> {
    let resp = reqwest::Client::new()
        .get(server.url(&format!("/api/v1{path}")))
        .bearer_auth(&server.admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{path}");
    resp.bytes().await.unwrap().to_vec()
}

async fn qr_codes_decode_to_what_they_mean(backend: Backend) {
    let a = server(backend).await;
    let server = &a.server;
    let dir = TempDir::new("mdm-qr");
    let (code, apple) = server
        .api(
            "POST",
            "/enrollments",
            Some(json!({ "platform": "apple", "name": "Phones" })),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED, "{apple}");
    let wifi = json!({
        "ssid": "TownHall-Staff", "security_type": "EAP", "eap_method": "PEAP",
        "phase2_auth": "MSCHAPV2", "domain": "radius.townhall.example", "anonymous_identity": "anonymous",
        "identity": "setup-tablets", "password": "Provisioning-Only-2026!"
    });
    let (code, android) = server
        .api(
            "POST",
            "/enrollments",
            Some(json!({
                "platform": "android", "name": "Tablets", "user": "anna.nowak",
                "android": { "wifi": wifi, "locale": "pl_PL", "time_zone": "Europe/Warsaw" }
            })),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED, "{android}");

    // The Android payload, as the setup screen will read it: Google's keys as
    // Google gave them (Android Device Policy, its checksum and download location,
    // the token), ours added.
    let payload: Value = serde_json::from_str(android["qr_payload"].as_str().unwrap()).unwrap();
    let google = googles_qr(&a);
    for (key, value) in google.as_object().unwrap() {
        assert_eq!(&payload[key], value, "{key}");
    }
    assert_eq!(
        payload["android.app.extra.PROVISIONING_DEVICE_ADMIN_COMPONENT_NAME"],
        mdm_tests::fake_google_amapi::DPC_COMPONENT
    );
    assert_eq!(
        payload["android.app.extra.PROVISIONING_WIFI_SSID"],
        "TownHall-Staff"
    );
    assert_eq!(
        payload["android.app.extra.PROVISIONING_WIFI_SECURITY_TYPE"],
        "EAP"
    );
    assert_eq!(
        payload["android.app.extra.PROVISIONING_WIFI_EAP_METHOD"],
        "PEAP"
    );
    assert_eq!(
        payload["android.app.extra.PROVISIONING_WIFI_PHASE2_AUTH"],
        "MSCHAPV2"
    );
    assert_eq!(
        payload["android.app.extra.PROVISIONING_WIFI_PASSWORD"],
        "Provisioning-Only-2026!"
    );
    assert_eq!(payload["android.app.extra.PROVISIONING_LOCALE"], "pl_PL");
    assert!(
        !android["options"].to_string().contains("Provisioning-Only"),
        "the password is not shown in options"
    );
    {
        use sea_orm::{ConnectionTrait, Statement};
        let store = server.store().await;
        let db = store.connection();
        let rows = db
            .query_all(Statement::from_string(
                db.get_database_backend(),
                "SELECT options FROM enrollments".to_owned(),
            ))
            .await
            .unwrap();
        for row in rows {
            let options: String = row.try_get("", "options").unwrap();
            assert!(
                !options.contains("Provisioning-Only"),
                "Wi-Fi password stored in clear: {options}"
            );
        }
    }
    assert_eq!(
        payload["android.app.extra.PROVISIONING_TIME_ZONE"],
        "Europe/Warsaw"
    );
    // The bundle is Google's alone: its enrollment token, nothing of ours.
    assert_eq!(payload[EXTRAS], google[EXTRAS]);
    assert!(payload[EXTRAS][DPC_TOKEN].is_string(), "{payload}");
    mdm_tests::artifacts::write_android(
        "provisioning-qr.json",
        android["qr_payload"].as_str().unwrap().as_bytes(),
    );
    // The anonymous enrollment URL of an Android enrollment refuses: the payload
    // carries the Wi-Fi password and goes only to admins (tests/tests/secrets.rs).
    let by_url = reqwest::get(
        android["url"]
            .as_str()
            .unwrap()
            .replace("https://mdm.test.invalid", &server.base_url),
    )
    .await
    .unwrap();
    assert_eq!(by_url.status(), StatusCode::FORBIDDEN);
    let text = by_url.text().await.unwrap();
    assert!(!text.contains("Provisioning-Only"), "{text}");

    for e in [&apple, &android] {
        let id = e["id"].as_str().unwrap();
        let expected = e["qr_payload"].as_str().unwrap();
        let png = dir.0.join(format!("{id}.png"));
        std::fs::write(
            &png,
            fetch(server, &format!("/enrollments/{id}/qr.png")).await,
        )
        .unwrap();
        if let Some(decoded) = zbar(&png, "qr_codes_decode_to_what_they_mean") {
            assert_eq!(decoded, expected);
        }
        // The SVG too, rasterised by librsvg when it is there.
        let svg = dir.0.join(format!("{id}.svg"));
        std::fs::write(
            &svg,
            fetch(server, &format!("/enrollments/{id}/qr.svg")).await,
        )
        .unwrap();
        let raster = dir.0.join(format!("{id}-svg.png"));
        match std::process::Command::new("rsvg-convert")
            .args(["--width", "600", "--background-color", "white", "-o"])
            .arg(&raster)
            .arg(&svg)
            .status()
        {
            Ok(status) if status.success() => {
                if let Some(decoded) = zbar(&raster, "qr_codes_decode_to_what_they_mean (svg)") {
                    assert_eq!(decoded, expected);
                }
            }
            _ => println!(
                "SKIPPED svg decoding: rsvg-convert not installed (apt-get install librsvg2-bin)"
            ),
        }
    }
}

async fn cli_creates_lists_and_revokes_enrollments(backend: Backend) {
    let a = server(backend).await;
    let server = &a.server;
    let dir = TempDir::new("mdm-enroll-cli");
    let png = dir.0.join("qr.png");
    let out = server
        .clone_cli()
        .run(&[
            "enroll",
            "create",
            "--platform",
            "apple",
            "--name",
            "Council",
            "--user",
            "mayor",
            "--max-uses",
            "3",
            "--out",
            png.to_str().unwrap(),
        ])
        .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("https://mdm.test.invalid/enroll/"), "{text}");
    assert!(
        text.contains('▀') || text.contains('▄') || text.contains('█'),
        "a QR code is drawn: {text}"
    );
    let url = text
        .lines()
        .find_map(|l| l.strip_prefix("url"))
        .map(|u| u.trim().to_owned())
        .expect("url line");
    if let Some(decoded) = zbar(&png, "cli_creates_lists_and_revokes_enrollments") {
        assert_eq!(decoded, url);
    }
    let out = server.clone_cli().run(&["enroll", "list", "--json"]).await;
    let listed: Value = serde_json::from_slice(&out.stdout).unwrap();
    let id = listed["items"][0]["id"].as_str().unwrap().to_owned();
    assert_eq!(listed["items"][0]["assigned_user"], "mayor");
    let out = server.clone_cli().run(&["enroll", "revoke", &id]).await;
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("revoked"));
    let out = server.clone_cli().run(&["enroll", "list"]).await;
    assert!(!String::from_utf8_lossy(&out.stdout).contains(&id));
    let out = server
        .clone_cli()
        .run(&["enroll", "create", "--platform", "windows"])
        .await;
    assert_eq!(out.status.code(), Some(2));

    // An Android enrollment: the CLI's PNG holds the provisioning JSON, Wi-Fi and all.
    let android_png = dir.0.join("android.png");
    let out = server
        .clone_cli()
        .run(&[
            "enroll",
            "create",
            "--platform",
            "android",
            "--name",
            "Tablets",
            "--wifi",
            r#"{"ssid":"TownHall-Staff","security_type":"WPA","password":"Staff-Wifi-2026"}"#,
            "--locale",
            "pl_PL",
            "--out",
            android_png.to_str().unwrap(),
            "--json",
        ])
        .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let created: Value = serde_json::from_slice(&out.stdout).unwrap();
    let expected = created["qr_payload"].as_str().unwrap();
    let payload: Value = serde_json::from_str(expected).unwrap();
    assert_eq!(
        payload["android.app.extra.PROVISIONING_WIFI_PASSWORD"],
        "Staff-Wifi-2026"
    );
    assert_eq!(payload[EXTRAS], googles_qr(&a)[EXTRAS]);
    if let Some(decoded) = zbar(
        &android_png,
        "cli_creates_lists_and_revokes_enrollments (android)",
    ) {
        assert_eq!(decoded, expected);
    }
    // Revoked by the CLI: its token is deleted at Google.
    let android_id = created["id"].as_str().unwrap();
    let out = server
        .clone_cli()
        .run(&["enroll", "revoke", android_id])
        .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(a.google.state.lock().unwrap().enrollment_tokens.is_empty());

    // The PKI, from the server host.
    let out = std::process::Command::new(mdm_binary())
        .args([
            "pki",
            "show",
            "--json",
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
    let pki: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(pki[0]["name"], "device_ca");
    assert_eq!(pki[1]["name"], "profile_signing");
    assert_eq!(pki[2]["name"], "server_tls_ca");
    assert_eq!(
        pki.as_array().unwrap().len(),
        3,
        "plain HTTP: no HTTPS certificate of ours: {pki}"
    );
    assert!(pki[0]["days_left"].as_i64().unwrap() > 3000);
}

/// An Android enrollment made for the removed custom agent (stored options without
/// Google's token and QR data, made here by stripping those from an AMAPI one) is
/// still listed and revocable, but has no QR code: its images answer 409 with what
/// to do instead.
async fn an_enrollment_of_the_removed_agent_is_listed_not_drawn(backend: Backend) {
    let a = server(backend).await;
    let server = &a.server;
    let e = server
        .create_enrollment(json!({"platform": "android", "name": "Old tablets",
            "android": {"wifi": {"ssid": "Guest", "security_type": "NONE"}}}))
        .await;
    let id = e["id"].as_str().unwrap();
    {
        use sea_orm::{ConnectionTrait, Statement};
        let store = server.store().await;
        let db = store.connection();
        let legacy = json!({"wifi": {"ssid": "Guest", "hidden": false, "security_type": "NONE"}});
        db.execute(Statement::from_string(
            db.get_database_backend(),
            format!("UPDATE enrollments SET options = '{legacy}' WHERE id = '{id}'"),
        ))
        .await
        .unwrap();
    }
    let listed = server.get("/enrollments").await;
    let item = &listed["items"][0];
    assert_eq!(item["id"], id, "{listed}");
    assert_eq!(item["qr_payload"], "", "{item}");
    for image in ["qr.png", "qr.svg"] {
        let (code, body) = server
            .api("GET", &format!("/enrollments/{id}/{image}"), None)
            .await;
        assert_eq!(code, StatusCode::CONFLICT, "{image}: {body}");
        let error = body["error"].as_str().unwrap();
        assert!(
            error.contains("custom Android agent") && error.contains("mdm android connect"),
            "{error}"
        );
    }
    let (code, body) = server
        .api("DELETE", &format!("/enrollments/{id}"), None)
        .await;
    assert_eq!(code, StatusCode::OK, "{body}");
    assert_eq!(body["state"], "revoked", "{body}");
}

on_every_backend!(
    qr_codes_decode_to_what_they_mean,
    cli_creates_lists_and_revokes_enrollments,
    an_enrollment_of_the_removed_agent_is_listed_not_drawn
);
