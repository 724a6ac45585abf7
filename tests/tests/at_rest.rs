//! Secrets at rest (issue #16, item 5), against the real server:
//! * a new data folder is 0700, the master key, the SQLite database and its -wal and
//!   -shm files 0600, the TLS folder 0700 and its files 0600, even under umask 000;
//! * a data folder that others can read is refused at start (exit code 1, a message
//!   saying what to do), before anything is written into it;
//! * an ActivationLockBypassCode answer is nowhere in the database's bytes (SQLite:
//!   the database file and its WAL; PostgreSQL: the command's row), the device's
//!   command list shows a marker, and the admin asking for that command gets the code;
//! * a sealed value moved to another row does not open there: an unlock token copied
//!   to another device makes ClearPasscode for that device fail cleanly (nothing
//!   queued, nothing sent, the server still serving), a sealed result copied to
//!   another command cannot be shown as that command's.

use mdm_tests::fixture::{mdm_binary, Backend, TempDir, TestServer};
use mdm_tests::on_every_backend;
use mdm_tests::simulator::SimDevice;
use plist::{Dictionary, Value};
use reqwest::StatusCode;
use sea_orm::{ConnectionTrait, Statement};
use serde_json::json;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const BYPASS_CODE: &str = "K7QX-2M9P-TT4D-8R3W-ZC6N-H5FJ";

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

fn assert_mode(path: &Path, expected: u32) {
    assert_eq!(
        mode(path),
        expected,
        "{} has mode {:o}, expected {expected:o}",
        path.display(),
        mode(path)
    );
}

/// The SQLite database file the test server uses.
fn sqlite_file(server: &TestServer) -> Option<PathBuf> {
    let rest = server.database_url.strip_prefix("sqlite://")?;
    Some(PathBuf::from(rest.split('?').next().unwrap()))
}

async fn enrolled(server: &TestServer) -> (SimDevice, String) {
    let device = SimDevice::iphone(&server.base_url, &server.ca);
    device.enroll().await;
    let record = server.get(&format!("/devices/udid:{}", device.udid)).await;
    (device, record["id"].as_str().unwrap().to_owned())
}

async fn execute(server: &TestServer, sql: &str) {
    let store = server.store().await;
    let db = store.connection();
    db.execute(Statement::from_string(db.get_database_backend(), sql))
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// Runs `mdm serve` on `data_dir` until it listens (then stops it) or exits by
/// itself, under umask 000: every mode it gets is the one the server sets, not one the
/// umask narrowed. Returns the exit code (None: it started) and its stderr.
fn serve_once(data_dir: &Path, database_url: &str, plain_http: bool) -> (Option<i32>, String) {
    let mut cmd = Command::new("sh");
    cmd.args(["-c", "umask 000 && exec \"$0\" \"$@\""])
        .arg(mdm_binary())
        .arg("serve")
        .args(["--listen", "127.0.0.1:0"])
        .arg("--data-dir")
        .arg(data_dir)
        .args(["--database-url", database_url])
        .args(["--public-url", "https://mdm.test.invalid"])
        .env("MDM_ADMIN_TOKEN", "mdm_test_at_rest_0123456789abcdef0123")
        .env("RUST_LOG", "error")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if plain_http {
        cmd.arg("--plain-http");
    }
    for var in [
        "MDM_CONFIG",
        "MDM_DATABASE_URL",
        "MDM_DATA_DIR",
        "MDM_MASTER_KEY",
    ] {
        cmd.env_remove(var);
    }
    let mut child = cmd.spawn().expect("start mdm serve");
    let mut started = false;
    // Ends when the process exits; a server that starts prints the line and runs on.
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        if line.unwrap().starts_with("mdm listening on ") {
            started = true;
            let _ = child.kill();
            break;
        }
    }
    let out = child.wait_with_output().unwrap();
    let code = if started { None } else { out.status.code() };
    (code, String::from_utf8_lossy(&out.stderr).into_owned())
}

async fn new_data_folder_and_database_files_are_private(backend: Backend) {
    let server = TestServer::start(backend).await;
    // Something written, so that SQLite has its WAL in use.
    enrolled(&server).await;
    assert_mode(&server.data_dir, 0o700);
    assert_mode(&server.data_dir.join("master.key"), 0o600);
    if let Some(db) = sqlite_file(&server) {
        assert_mode(&db, 0o600);
        for suffix in ["-wal", "-shm"] {
            let file = PathBuf::from(format!("{}{suffix}", db.display()));
            assert!(file.exists(), "{} missing (WAL mode)", file.display());
            assert_mode(&file, 0o600);
        }
    }
}

/// The self-signed TLS identity lives in the data folder whatever the database is:
/// its folder is 0700 and its files 0600. Run under umask 000 (see `serve_once`), with
/// the database in the data folder (the default): the folder, the master key and the
/// SQLite files have exactly the server's modes.
#[tokio::test]
async fn tls_folder_is_private() {
    let dir = TempDir::new("mdm-at-rest-tls");
    let data = dir.0.join("data");
    let url = format!("sqlite://{}?mode=rwc", data.join("mdm.sqlite").display());
    let (code, stderr) = serve_once(&data, &url, false);
    assert_eq!(code, None, "mdm serve with TLS did not start: {stderr}");
    assert_mode(&data, 0o700);
    assert_mode(&data.join("tls"), 0o700);
    assert_mode(&data.join("tls/server.pem"), 0o600);
    assert_mode(&data.join("tls/root-ca.pem"), 0o600);
    // The TLS root's key is sealed in the database; no key is written here.
    assert!(!data.join("tls/server.key.sealed").exists());
    assert_mode(&data.join("master.key"), 0o600);
    for file in ["mdm.sqlite", "mdm.sqlite-wal", "mdm.sqlite-shm"] {
        assert_mode(&data.join(file), 0o600);
    }
    // The same folder starts again (a private folder is accepted).
    let (code, stderr) = serve_once(&data, &url, false);
    assert_eq!(code, None, "second start refused: {stderr}");
}

async fn readable_data_folder_is_refused(backend: Backend) {
    let dir = TempDir::new("mdm-at-rest-open");
    let data = dir.0.join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
    let database_url = match &backend {
        Backend::Sqlite => format!("sqlite://{}?mode=rwc", data.join("mdm.sqlite").display()),
        // The folder is checked before any database is opened.
        Backend::Postgres(url) => url.clone(),
    };
    let (code, stderr) = serve_once(&data, &database_url, true);
    assert_eq!(code, Some(1), "a 0755 data folder was accepted: {stderr}");
    assert!(
        stderr.contains("readable by others") && stderr.contains("chmod 700"),
        "unclear refusal: {stderr}"
    );
    let left: Vec<_> = std::fs::read_dir(&data).unwrap().collect();
    assert!(left.is_empty(), "refused, yet wrote {left:?}");

    // The fix the message names is enough.
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o700)).unwrap();
    if matches!(backend, Backend::Sqlite) {
        let (code, stderr) = serve_once(&data, &database_url, true);
        assert_eq!(code, None, "refused after chmod 700: {stderr}");
    }
}

async fn bypass_code_is_sealed_yet_shown_to_the_admin(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (device, id) = enrolled(&server).await;
    let raw = r#"<?xml version="1.0" encoding="UTF-8"?>
<plist version="1.0"><dict><key>RequestType</key><string>ActivationLockBypassCode</string></dict></plist>"#;
    let uuid = server
        .queue(&id, json!({ "type": "Raw", "plist": raw }))
        .await;
    let cmd = device.idle().await.expect("command delivered");
    assert_eq!(cmd.uuid, uuid);
    let mut answer = Dictionary::new();
    answer.insert(
        "ActivationLockBypassCode".into(),
        Value::String(BYPASS_CODE.into()),
    );
    assert!(device.acknowledge_with(&uuid, answer).await.is_none());

    // Not in the database's bytes.
    let store = server.store().await;
    let db = store.connection();
    match sqlite_file(&server) {
        Some(file) => {
            for path in [
                file.clone(),
                PathBuf::from(format!("{}-wal", file.display())),
            ] {
                let bytes = std::fs::read(&path).unwrap_or_default();
                assert!(
                    !bytes
                        .windows(BYPASS_CODE.len())
                        .any(|w| w == BYPASS_CODE.as_bytes()),
                    "the bypass code is readable in {}",
                    path.display()
                );
            }
        }
        None => {
            let rows = db
                .query_all(Statement::from_string(
                    db.get_database_backend(),
                    "SELECT encode(result_raw, 'escape') AS raw, result FROM commands \
                     UNION ALL SELECT message, CAST(data AS TEXT) FROM events",
                ))
                .await
                .unwrap();
            for row in rows {
                for col in ["raw", "result"] {
                    let text: Option<String> = row.try_get("", col).unwrap();
                    assert!(
                        !text.unwrap_or_default().contains(BYPASS_CODE),
                        "the bypass code is readable in the database"
                    );
                }
            }
        }
    }

    // The device's command list shows a marker, not the code.
    let history = server.get(&format!("/devices/{id}/commands")).await;
    let text = history.to_string();
    assert!(!text.contains(BYPASS_CODE), "listed: {text}");
    let listed = history["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["uuid"] == uuid.as_str())
        .expect("the command is listed");
    assert_eq!(
        listed["result"]["fields"]["ActivationLockBypassCode"],
        "<sealed>"
    );
    assert_eq!(
        listed["result"]["sealed_fields"],
        json!(["ActivationLockBypassCode"])
    );
    assert!(listed["result_raw"].is_null());

    // The admin asking for that command gets it.
    let shown = server.command(&uuid).await;
    assert_eq!(shown["status"], "acknowledged");
    assert_eq!(
        shown["result"]["fields"]["ActivationLockBypassCode"],
        BYPASS_CODE
    );
    assert!(shown["result_raw"].as_str().unwrap().contains(BYPASS_CODE));

    // That sealed answer copied onto another command's row does not open there.
    let other = server.queue(&id, json!({ "type": "ProfileList" })).await;
    let cmd = device.idle().await.expect("ProfileList delivered");
    assert_eq!(cmd.uuid, other);
    assert!(device.acknowledge(&other).await.is_none());
    execute(
        &server,
        &format!(
            "UPDATE commands SET result_raw = (SELECT result_raw FROM commands WHERE uuid = '{uuid}') \
             WHERE uuid = '{other}'"
        ),
    )
    .await;
    let (code, body) = server.api("GET", &format!("/commands/{other}"), None).await;
    assert_eq!(code, StatusCode::INTERNAL_SERVER_ERROR, "{body}");
    assert!(!body.to_string().contains(BYPASS_CODE), "{body}");
    assert!(body["error"].is_string(), "no message: {body}");
    // The command it belongs to still opens.
    assert_eq!(
        server.command(&uuid).await["result"]["fields"]["ActivationLockBypassCode"],
        BYPASS_CODE
    );
}

async fn moved_unlock_token_fails_cleanly(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (victim, victim_id) = enrolled(&server).await;
    let (other, other_id) = enrolled(&server).await;
    assert_ne!(victim.unlock_token, other.unlock_token);
    // A database writer copies the other device's sealed unlock token onto the victim.
    execute(
        &server,
        &format!(
            "UPDATE devices SET unlock_token = (SELECT unlock_token FROM devices WHERE id = '{other_id}') \
             WHERE id = '{victim_id}'"
        ),
    )
    .await;

    let (code, body) = server
        .api(
            "POST",
            &format!("/devices/{victim_id}/commands"),
            Some(json!({ "type": "ClearPasscode" })),
        )
        .await;
    assert_eq!(code, StatusCode::INTERNAL_SERVER_ERROR, "{body}");
    assert!(body["error"].is_string(), "no message: {body}");
    // A fan-out including the victim queues nothing, for anyone.
    let (code, body) = server
        .api(
            "POST",
            "/commands",
            Some(json!({ "device_ids": [&other_id, &victim_id], "type": "ClearPasscode" })),
        )
        .await;
    assert!(
        code.is_server_error() || code.is_client_error(),
        "{code} {body}"
    );
    // The wrong token is never sent: neither device has a command waiting.
    assert!(
        victim.idle().await.is_none(),
        "a command reached the victim"
    );
    assert!(
        other.idle().await.is_none(),
        "a command reached the other device"
    );
    let history = server.get(&format!("/devices/{victim_id}/commands")).await;
    assert_eq!(history["items"], json!([]), "{history}");

    // The server still serves, and the other device's own token still opens.
    let uuid = server
        .queue(&other_id, json!({ "type": "ClearPasscode" }))
        .await;
    let cmd = other.idle().await.expect("ClearPasscode delivered");
    assert_eq!(cmd.uuid, uuid);
    assert_eq!(
        cmd.command.get("UnlockToken").and_then(Value::as_data),
        Some(&other.unlock_token[..])
    );
}

on_every_backend!(
    new_data_folder_and_database_files_are_private,
    readable_data_folder_is_refused,
    bypass_code_is_sealed_yet_shown_to_the_admin,
    moved_unlock_token_fails_cleanly,
);
