//! The web console in a real browser (issue 13): Debian's Chromium, headless, driven
//! by playwright-core (tests/console/scenario.mjs), every page checked by axe-core and
//! screenshotted under target/console-screenshots/<backend>/. Between the script's
//! phases this test plays the phone: it decodes the enrollment page's QR code with
//! zbarimg (zbar-tools), enrolls a simulated iPhone from it (profile, SCEP,
//! Authenticate, TokenUpdate), installs the policy the browser applied to its group
//! and reports a compliant passcode, and answers the commands the browser sent.
//!
//! Needs node, Chromium, zbarimg and `npm ci` in tests/console; .ci/run installs them
//! and sets MDM_REQUIRE_BROWSER=1, so CI never skips. Elsewhere a missing tool skips
//! the test with its name.

use mdm_tests::answers::{installed_profile, profile_list, security_info};
use mdm_tests::console::report_facts;
use mdm_tests::enroll::enroll_iphone;
use mdm_tests::fixture::{Backend, ServerOptions, TestServer};
use mdm_tests::on_every_backend;
use reqwest::StatusCode;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use mdm_tests::console::PASSWORD;
use mdm_tests::console::TEMPORARY;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn chromium() -> Option<PathBuf> {
    std::env::var_os("MDM_CHROMIUM")
        .map(PathBuf::from)
        .or_else(|| Some(PathBuf::from("/usr/bin/chromium")))
        .filter(|p| p.exists())
}

fn runs(program: &str, arg: &str) -> bool {
    Command::new(program)
        .arg(arg)
        .output()
        .is_ok_and(|o| o.status.success())
}

/// What is missing to run the browser, by name.
fn missing_tools() -> Vec<String> {
    let mut missing = Vec::new();
    if !runs("node", "--version") {
        missing.push("node (Node.js)".into());
    }
    if chromium().is_none() {
        missing.push("chromium (Debian package chromium, or MDM_CHROMIUM)".into());
    }
    for module in ["playwright-core", "axe-core"] {
        if !repo()
            .join("tests/console/node_modules")
            .join(module)
            .exists()
        {
            missing.push(format!("{module} (npm ci in tests/console)"));
        }
    }
    if !runs("zbarimg", "--version") {
        missing.push("zbarimg (Debian package zbar-tools)".into());
    }
    missing
}

fn run_phase(phase: &str, env: &[(&str, String)]) {
    let mut cmd = Command::new("node");
    cmd.arg(repo().join("tests/console/scenario.mjs"))
        .arg(phase)
        .current_dir(repo().join("tests/console"));
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run node");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    assert!(
        out.status.success(),
        "the browser's {phase} phase failed:\n{stdout}\n{stderr}"
    );
}

fn decode_qr(png: &Path) -> String {
    let out = Command::new("zbarimg")
        .args(["--raw", "-q"])
        .arg(png)
        .output()
        .expect("run zbarimg");
    assert!(
        out.status.success(),
        "zbarimg could not read {}",
        png.display()
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

async fn console_in_chromium(backend: Backend) {
    let missing = missing_tools();
    if !missing.is_empty() {
        if std::env::var_os("MDM_REQUIRE_BROWSER").is_some() {
            panic!(
                "MDM_REQUIRE_BROWSER is set and these are missing: {}",
                missing.join(", ")
            );
        }
        eprintln!(
            "SKIPPED console_in_chromium::{}: missing {} (.ci/run installs them)",
            backend.name(),
            missing.join(", ")
        );
        return;
    }
    let backend_name = backend.name();
    let server = TestServer::start_with(
        backend,
        ServerOptions {
            with_device_ca: false,
            extra_args: vec!["--admin-max-failures".into(), "0".into()],
            ..Default::default()
        },
    )
    .await;
    server.upload_push_certificate().await;
    let (code, body) = server
        .api(
            "POST",
            "/admins",
            Some(json!({ "name": "ewa.nowak", "display_name": "Ewa Nowak", "password": TEMPORARY, "groups": ["owners"] })),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED, "{body}");
    let out = repo().join("target/console-screenshots").join(backend_name);
    let _ = std::fs::remove_dir_all(&out);
    let env = vec![
        // The console's cookies are Secure; a browser keeps them over plain HTTP only
        // for localhost (a secure context), as the tests serve it.
        ("MDM_URL", server.base_url.replace("127.0.0.1", "localhost")),
        ("MDM_USER", "ewa.nowak".to_owned()),
        ("MDM_TEMP_PASSWORD", TEMPORARY.to_owned()),
        ("MDM_PASSWORD", PASSWORD.to_owned()),
        ("MDM_OUT", out.display().to_string()),
        ("MDM_CHROMIUM", chromium().unwrap().display().to_string()),
    ];
    run_phase("first-login", &env);

    // The phone scans the QR code the enrollment page showed. The server's public
    // name (mdm.test.invalid) is this loopback server, as DNS would say.
    let url = decode_qr(&out.join("enrollment-qr.png"));
    assert!(url.starts_with("https://mdm.test.invalid/enroll/"), "{url}");
    let local = url.replace("https://mdm.test.invalid", &server.base_url);
    let (phone, _) = enroll_iphone(&server.base_url, &local).await;
    phone.enroll().await;
    let device = server.get(&format!("/devices/udid:{}", phone.udid)).await;
    let id = device["id"].as_str().unwrap().to_owned();
    assert!(device["enrollment_id"].is_string(), "{device}");
    report_facts(&server, &phone, &id, "Reception iPhone").await;

    run_phase("policy", &env);
    // The phone installs the policy's profile and answers what the server asks
    // next, with a passcode set: the device turns compliant.
    let path = format!("/devices/{id}/compliance");
    assert_eq!(
        server.get(&path).await["compliant"],
        false,
        "before the profile is installed"
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut installed: Vec<String> = Vec::new();
    loop {
        let mut next = phone.idle().await;
        while let Some(cmd) = next {
            next = match cmd.request_type.as_str() {
                "InstallProfile" => {
                    let (_, profile) = installed_profile(&cmd);
                    if let Some(id) = profile.get("PayloadIdentifier").and_then(|v| v.as_string()) {
                        installed.push(id.to_owned());
                    }
                    phone.acknowledge(&cmd.uuid).await
                }
                "SecurityInfo" => phone.acknowledge_with(&cmd.uuid, security_info(true)).await,
                "ProfileList" => {
                    let ids: Vec<&str> = installed.iter().map(String::as_str).collect();
                    phone.acknowledge_with(&cmd.uuid, profile_list(&ids)).await
                }
                _ => phone.acknowledge(&cmd.uuid).await,
            };
        }
        if server.get(&path).await["compliant"] == true {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "never compliant: {}",
            server.get(&path).await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(installed.len(), 1, "the policy's one profile");

    let mut env = env;
    env.extend([
        ("MDM_DEVICE_ID", id.clone()),
        ("MDM_SERIAL", phone.serial.clone()),
        ("MDM_DEVICE_NAME", "Reception".to_owned()),
    ]);
    run_phase("operate", &env);

    // What the browser did reached the phone: the lock with its message, then the
    // wipe (both ahead of the bulk query, which an erased phone never fetches).
    let mut received = Vec::new();
    let mut next = phone.idle().await;
    while let Some(command) = next {
        received.push((command.request_type.clone(), command.command.clone()));
        next = phone.acknowledge(&command.uuid).await;
        if received.len() > 5 {
            break;
        }
    }
    let types: Vec<&str> = received.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(types, ["DeviceLock", "EraseDevice"], "{received:?}");
    let history = server.get(&format!("/devices/{id}/commands")).await;
    let bulk = history["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["request_type"] == "DeviceInformation" && c["created_by"] == "ewa.nowak")
        .count();
    assert_eq!(bulk, 1, "the bulk action's query: {history}");
    assert_eq!(
        received[0].1.get("Message").and_then(|m| m.as_string()),
        Some("Please return this phone to the town hall")
    );
    let incidents = server.get("/incidents").await;
    let incident = incidents["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == "Phone lost on the tram")
        .expect("the incident filed in the browser");
    assert_eq!(incident["level"], 4);
    assert_eq!(incident["classification"], "confirmed");
    assert_eq!(incident["status"], "completed");
    assert_eq!(incident["devices"][0], id.as_str());
    for shot in [
        "06-dashboard",
        "07-enrollment",
        "12-device",
        "15-incident-closed",
        "17-dashboard-pl",
        "20-dashboard-uk",
    ] {
        assert!(
            out.join(format!("{shot}.png")).exists(),
            "screenshot {shot}"
        );
    }
}

on_every_backend!(console_in_chromium);
