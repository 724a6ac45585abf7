//! The `mdm` command line against a running server: tables by default, JSON with
//! --json, clear messages and exit codes on refusals.

use mdm_tests::fixture::{mdm_binary, Backend, TestServer};
use mdm_tests::on_every_backend;
use mdm_tests::simulator::SimDevice;
use std::process::Output;

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}
fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

async fn cli_lists_shows_locks_and_wipes(backend: Backend) {
    let server = TestServer::start(backend).await;
    let phone = SimDevice::iphone(&server.base_url, &server.ca);
    phone.enroll().await;
    let cli = server.clone_cli();
    let phone_serial = phone.serial.clone();

    let out = cli.run(&["devices", "list"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let table = stdout(&out);
    assert!(table.starts_with("ID"), "{table}");
    assert!(table.contains(&phone_serial), "{table}");
    assert!(table.contains("1 of 1 device(s)"), "{table}");

    let out = cli.run(&["devices", "list", "--json"]).await;
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let id = json["items"][0]["id"].as_str().unwrap().to_owned();

    let out = cli.run(&["devices", "show", &phone_serial]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains(&phone.udid));

    let out = cli
        .run(&[
            "devices",
            "lock",
            &id,
            "--message",
            "Return to the town hall",
        ])
        .await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("DeviceLock"));

    // Wipe with the wrong serial: refused, exit code 1, the reason on stderr.
    let out = cli
        .run(&["devices", "wipe", &id, "--confirm", "WRONG"])
        .await;
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("does not match"), "{}", stderr(&out));
    // Without --confirm at all: a usage error from the CLI itself.
    let out = cli.run(&["devices", "wipe", &id]).await;
    assert_eq!(out.status.code(), Some(2));
    // The device has not answered DeviceInformation yet, so its id confirms the wipe.
    let out = cli
        .run(&["devices", "wipe", &id, "--confirm", &id, "--json"])
        .await;
    assert!(out.status.success(), "{}", stderr(&out));
    let wipe: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(wipe["request_type"], "EraseDevice");

    let out = cli
        .run(&[
            "commands",
            "send",
            "--device",
            &id,
            "DeviceInformation",
            "--param",
            r#"queries=["OSVersion","SerialNumber"]"#,
            "--json",
        ])
        .await;
    assert!(out.status.success(), "{}", stderr(&out));
    let queued: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let info_uuid = queued["command_uuid"].as_str().unwrap().to_owned();

    // The device gets lock, then erase (urgent first); once it acknowledged the
    // erase its identity is revoked and the query queued behind it is cancelled.
    assert_eq!(phone.drain().await, vec!["DeviceLock", "EraseDevice"]);

    let out = cli.run(&["commands", "show", &info_uuid]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("cancelled"), "{}", stdout(&out));
    let out = cli.run(&["devices", "commands", &id]).await;
    assert!(stdout(&out).contains("EraseDevice"));
    let out = cli.run(&["commands", "cancel", &info_uuid]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("can no longer be cancelled"),
        "{}",
        stderr(&out)
    );
    let out = cli.run(&["events", "--kind", "admin."]).await;
    assert!(
        stdout(&out).contains("admin.device_wipe"),
        "{}",
        stdout(&out)
    );
}

async fn token_create_makes_a_working_token(backend: Backend) {
    let server = TestServer::start(backend).await;
    let out = std::process::Command::new(mdm_binary())
        .args([
            "token",
            "create",
            "--name",
            "it-admin",
            "--database-url",
            &server.database_url,
        ])
        .arg("--data-dir")
        .arg(&server.data_dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let token = stdout(&out).trim().to_owned();
    assert!(token.starts_with("mdm_") && token.len() > 40, "{token}");
    let (code, _) = server.api_as(Some(&token), "GET", "/devices", None).await;
    assert_eq!(code, 200);
    let created = server.events("admin.token_created").await;
    assert_eq!(created.len(), 1);
    assert!(
        !created[0].to_string().contains(&token),
        "the secret is not logged"
    );

    let host = |args: &[&str]| {
        std::process::Command::new(mdm_binary())
            .args(args)
            .args(["--database-url", &server.database_url])
            .arg("--data-dir")
            .arg(&server.data_dir)
            .output()
            .unwrap()
    };
    let out = host(&["token", "list"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("it-admin"));
    assert!(!stdout(&out).contains(&token), "secrets are never listed");
    let out = host(&["token", "revoke", "it-admin"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let (code, _) = server.api_as(Some(&token), "GET", "/devices", None).await;
    assert_eq!(code, 401, "a revoked token no longer works");
    let out = host(&["token", "revoke", "it-admin"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("no active token"));
    let out = std::process::Command::new(mdm_binary())
        .args([
            "token",
            "create",
            "--name",
            "  ",
            "--database-url",
            &server.database_url,
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("name"));
}

async fn cli_without_server_or_token(backend: Backend) {
    let server = TestServer::start(backend).await;
    let out = std::process::Command::new(mdm_binary())
        .args(["devices", "list"])
        .env_remove("MDM_SERVER")
        .env_remove("MDM_TOKEN")
        .env("MDM_CLI_CONFIG", "/nonexistent")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--server"), "{}", stderr(&out));
    let out = std::process::Command::new(mdm_binary())
        .args(["devices", "list", "--server", &server.base_url])
        .env_remove("MDM_TOKEN")
        .env("MDM_CLI_CONFIG", "/nonexistent")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("MDM_TOKEN"), "{}", stderr(&out));
    let out = std::process::Command::new(mdm_binary())
        .args(["devices", "list", "--server", &server.base_url])
        .env("MDM_TOKEN", "mdm_not_a_token")
        .env("MDM_CLI_CONFIG", "/nonexistent")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("401"), "{}", stderr(&out));
    let out = std::process::Command::new(mdm_binary())
        .args(["devices", "list", "--server", "http://127.0.0.1:9"])
        .env("MDM_TOKEN", "x")
        .env("MDM_CLI_CONFIG", "/nonexistent")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(stderr(&out).contains("cannot reach"), "{}", stderr(&out));
}

on_every_backend!(
    cli_lists_shows_locks_and_wipes,
    token_create_makes_a_working_token,
    cli_without_server_or_token,
);
