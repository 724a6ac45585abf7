//! The committed seeds are what they claim to be: plists that decode, signatures that
//! verify against the fixture CA, SCEP requests that parse, admin bodies that read.
//! A seed that stopped at the first check (a device certificate expired, a fixture
//! key replaced) would leave the fuzzer exploring error paths only, without failing
//! anything; this test makes that visible. Fix: run `tests/fuzz/seeds`.

use enrollment::identity::IdentityError;
use std::fs;
use std::path::{Path, PathBuf};

fn files(dir: &str) -> Vec<(String, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(dir);
    let mut out: Vec<_> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| {
            let path = entry.unwrap().path();
            (name(&path), fs::read(&path).unwrap())
        })
        .collect();
    out.sort();
    assert!(!out.is_empty(), "{} holds no seeds", dir.display());
    out
}

fn name(path: &Path) -> String {
    path.file_name().unwrap().to_string_lossy().into_owned()
}

#[test]
fn checkin_seeds_decode() {
    for (name, bytes) in files("corpus/checkin") {
        let decoded = profiles::checkin::decode(&bytes);
        // GetToken is a real message the server does not implement: it must refuse it.
        if name.starts_with("gettoken") {
            assert!(decoded.is_err(), "{name}");
        } else {
            decoded.unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }
}

#[test]
fn report_seeds_decode() {
    for (name, bytes) in files("corpus/report") {
        profiles::report::decode(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

#[test]
fn signature_seeds_verify() {
    let ca = mdm_fuzz::device_ca();
    for (name, bytes) in files("corpus/mdm_signature") {
        let (header, body) = mdm_fuzz::split_signature_input(&bytes).expect(&name);
        let result = ca.verify_mdm_signature(&header, body);
        if name.starts_with("foreign-ca") {
            assert!(
                matches!(result, Err(IdentityError::Untrusted(_))),
                "{name}: {result:?}"
            );
        } else if name.starts_with("other-body") {
            assert_eq!(result, Err(IdentityError::BadSignature), "{name}");
        } else {
            result.unwrap_or_else(|e| panic!("{name}: {e} (seeds too old? run tests/fuzz/seeds)"));
        }
    }
}

/// The seeds verified with their certificates kept, as the server does: the second
/// time a signer is seen it takes the short way, which must agree with the full one.
#[test]
fn signature_seeds_verify_the_same_the_short_way() {
    let ca = mdm_fuzz::device_ca();
    let kept = enrollment::identity::testing::KeptChains::default();
    for (name, bytes) in files("corpus/mdm_signature") {
        let (header, body) = mdm_fuzz::split_signature_input(&bytes).expect(&name);
        let full = ca
            .verify_mdm_signature(&header, body)
            .map(|id| id.fingerprint);
        for pass in ["first", "second"] {
            let short = ca
                .verify_mdm_signature_with(&header, body, &kept)
                .map(|id| id.fingerprint.clone());
            assert_eq!(short, full, "{name}, {pass} time");
        }
    }
}

#[test]
fn scep_seeds_parse() {
    let ca = mdm_fuzz::scep_ca();
    for (name, bytes) in files("corpus/scep_pkioperation") {
        enrollment::scep::parse_request(&bytes, &ca)
            .unwrap_or_else(|e| panic!("{name}: {e} (seeds too old? run tests/fuzz/seeds)"));
    }
}

#[test]
fn admin_json_seeds_read() {
    for (name, bytes) in files("corpus/admin_json") {
        serde_json::from_slice::<serde_json::Value>(&bytes)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        // The per-device command route's body is a CommandSpec and nothing else.
        if name.starts_with("command-") {
            serde_json::from_slice::<profiles::commands::CommandSpec>(&bytes)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }
}

/// Inputs the fuzzer once failed on stay refused (they are also replayed under the
/// sanitizers by every `tests/fuzz/run`, which is what catches a leak coming back).
#[test]
fn signature_regressions_are_refused() {
    let ca = mdm_fuzz::device_ca();
    // The seeds' certificates kept, so that a regression carrying one of them goes the
    // short way first, as in the fuzz target.
    let kept = enrollment::identity::testing::KeptChains::default();
    for (_, bytes) in files("corpus/mdm_signature") {
        let (header, body) = mdm_fuzz::split_signature_input(&bytes).unwrap();
        let _ = ca.verify_mdm_signature_with(&header, body, &kept);
    }
    for (name, bytes) in files("regressions/mdm_signature") {
        let (header, body) = mdm_fuzz::split_signature_input(&bytes).expect(&name);
        let full = ca
            .verify_mdm_signature(&header, body)
            .map(|id| id.fingerprint);
        if name.starts_with("leak-") {
            assert_eq!(full, Err(IdentityError::UnsupportedDigest), "{name}");
        } else {
            assert!(full.is_err(), "{name}: {full:?}");
        }
        let short = ca
            .verify_mdm_signature_with(&header, body, &kept)
            .map(|id| id.fingerprint.clone());
        assert_eq!(
            short, full,
            "{name}: the short way agrees with the full way"
        );
    }
}
