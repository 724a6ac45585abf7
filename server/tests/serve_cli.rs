//! `mdm serve` as an admin meets it: documented options, and clear refusals of bad
//! configuration. (Being an integration test of this package, it also makes cargo
//! build the `mdm` binary that the end-to-end tests in tests/ start.)

use std::process::Command;

fn mdm(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_mdm"))
        .args(args)
        .env_remove("MDM_DATABASE_URL")
        .output()
        .expect("run mdm")
}

#[test]
fn serve_help_documents_every_option() {
    let out = mdm(&["serve", "--help"]);
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for option in [
        "--config",
        "--data-dir",
        "--database-url",
        "--listen",
        "--plain-http",
        "--tls-cert",
        "--tls-key",
        "--public-url",
        "--device-ca",
        "--trust-client-cert-header",
        "--master-key-file",
        "--max-body-bytes",
        "--command-ttl-days",
        "--result-retention-days",
        "MDM_DATABASE_URL",
    ] {
        assert!(
            help.contains(option),
            "serve --help does not mention {option}"
        );
    }
}

#[test]
fn bad_configuration_is_refused_with_a_message() {
    let dir = std::env::temp_dir().join(format!("mdm-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("mdm.toml");
    std::fs::write(&file, "data_dir = \"/tmp/x\"\nlisten_port = 8443\n").unwrap();
    let out = mdm(&["serve", "--config", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("listen_port"), "{err}");

    let out = mdm(&["serve", "--database-url", "mysql://localhost/db"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("database URL"));

    let out = mdm(&["serve", "--command-ttl-days", "0"]);
    assert_eq!(out.status.code(), Some(2));

    // The custom Android agent is gone: its option is unknown, and its environment
    // variables (silently ignored otherwise) stop the server with the way forward.
    let out = mdm(&[
        "serve",
        "--android-agent-component",
        "gov.town.agent/.Admin",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let out = Command::new(env!("CARGO_BIN_EXE_mdm"))
        .args(["serve", "--database-url", "sqlite::memory:"])
        .env_remove("MDM_DATABASE_URL")
        .env(
            "MDM_ANDROID_AGENT_CHECKSUM",
            "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc",
        )
        .output()
        .expect("run mdm");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("MDM_ANDROID_AGENT_CHECKSUM") && err.contains("mdm android connect"),
        "{err}"
    );

    // An unreadable device CA stops the server at start, not at the first device.
    std::fs::write(dir.join("ca.pem"), "not a certificate").unwrap();
    let out = mdm(&[
        "serve",
        "--plain-http",
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
        dir.join("data").to_str().unwrap(),
        "--device-ca",
        dir.join("ca.pem").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("device CA"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn master_key_readable_by_others_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let dir = std::env::temp_dir().join(format!("mdm-key-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // The folder itself is private (a readable one is refused first, see keys.rs).
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    let key = dir.join("master.key");
    std::fs::write(&key, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n").unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = mdm(&[
        "serve",
        "--plain-http",
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
        dir.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("chmod 600"));
    let _ = std::fs::remove_dir_all(&dir);
}
