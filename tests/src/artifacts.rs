//! Everything the server generates for devices is written here by the tests, so
//! that `.ci/run` can check it against Apple's schema with mdm-schema-check.

use std::path::PathBuf;

pub fn dir() -> PathBuf {
    std::env::var_os("MDM_ARTIFACTS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("..")
                .join("target")
                .join("mdm-artifacts")
        })
}

/// Writes `bytes` as `apple/<platform>/<name>`; `platform` is the schema's OS name.
pub fn write_apple(platform: &str, name: &str, bytes: &[u8]) {
    let folder = dir().join("apple").join(platform);
    std::fs::create_dir_all(&folder).expect("artifacts folder");
    let safe: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    std::fs::write(folder.join(safe), bytes).expect("write artifact");
}

/// Writes an Android artifact (`android/<name>`): policies and provisioning payloads.
pub fn write_android(name: &str, bytes: &[u8]) {
    let folder = dir().join("android");
    std::fs::create_dir_all(&folder).expect("artifacts folder");
    std::fs::write(folder.join(name), bytes).expect("write artifact");
}
