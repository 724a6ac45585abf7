//! The enrollment profile: structure as Apple's schema describes it, input checks,
//! and the vendor schema checker run on the generated plist.

use plist::{Dictionary, Value};
use profiles::enrollment_profile::{
    build_enrollment_profile, BuiltProfile, EnrollmentProfileSpec, ProfileError,
};
use std::path::PathBuf;
use std::process::Command;

/// A syntactically complete DER SEQUENCE; the profile builder only checks framing, and
/// the schema checker does not look inside the certificate.
const FAKE_DER: &[u8] = &[0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x02];

fn spec() -> EnrollmentProfileSpec {
    EnrollmentProfileSpec {
        organization: "Urząd Miasta".into(),
        display_name: "Town Hall MDM".into(),
        identifier: "gov.townhall.mdm.enrollment".into(),
        ca_certificate_der: FAKE_DER.to_vec(),
        server_roots_der: vec![],
        scep_url: "https://mdm.townhall.example/scep".into(),
        scep_challenge: "c3f1a9e0d2b84c5e".into(),
        scep_subject_cn: "mdm-device-3B1F2E7C-0F4A-4C1B-9E1D-6A2B3C4D5E6F".into(),
        scep_key_size: 2048,
        scep_key_usage: 5,
        server_url: "https://mdm.townhall.example/mdm".into(),
        check_in_url: "https://mdm.townhall.example/checkin".into(),
        topic: Some("com.apple.mgmt.External.5a2b0f3c-1111-2222-3333-444455556666".into()),
        access_rights: 8191,
        check_out_when_removed: true,
        server_capabilities: vec![
            "com.apple.mdm.per-user-connections".into(),
            "com.apple.mdm.bootstraptoken".into(),
        ],
        sign_message: true,
    }
}

fn parse(built: &BuiltProfile) -> Dictionary {
    Value::from_reader_xml(built.plist_xml.as_slice())
        .expect("the profile is an XML plist")
        .into_dictionary()
        .expect("top level is a dictionary")
}

fn payloads(top: &Dictionary) -> Vec<Dictionary> {
    top["PayloadContent"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_dictionary().unwrap().clone())
        .collect()
}

fn payload(top: &Dictionary, payload_type: &str) -> Dictionary {
    payloads(top)
        .into_iter()
        .find(|p| p["PayloadType"].as_string() == Some(payload_type))
        .unwrap_or_else(|| panic!("no {payload_type} payload"))
}

fn is_upper_uuid(s: &str) -> bool {
    uuid::Uuid::parse_str(s).is_ok() && s.len() == 36 && s == s.to_uppercase()
}

#[test]
fn top_level_keys() {
    let built = build_enrollment_profile(&spec()).unwrap();
    let top = parse(&built);
    assert_eq!(top["PayloadType"].as_string(), Some("Configuration"));
    assert_eq!(top["PayloadVersion"].as_signed_integer(), Some(1));
    assert_eq!(
        top["PayloadIdentifier"].as_string(),
        Some("gov.townhall.mdm.enrollment")
    );
    assert_eq!(top["PayloadDisplayName"].as_string(), Some("Town Hall MDM"));
    assert_eq!(top["PayloadOrganization"].as_string(), Some("Urząd Miasta"));
    assert_eq!(top["PayloadRemovalDisallowed"].as_boolean(), Some(false));
    assert_eq!(
        top["PayloadUUID"].as_string(),
        Some(built.profile_uuid.as_str())
    );
    assert!(is_upper_uuid(&built.profile_uuid));
    assert_eq!(payloads(&top).len(), 3);
}

#[test]
fn every_payload_has_the_common_keys_and_its_own_uuid() {
    let built = build_enrollment_profile(&spec()).unwrap();
    let top = parse(&built);
    let mut uuids = vec![built.profile_uuid.clone()];
    let mut identifiers = Vec::new();
    for p in payloads(&top) {
        for key in [
            "PayloadType",
            "PayloadVersion",
            "PayloadIdentifier",
            "PayloadUUID",
            "PayloadDisplayName",
        ] {
            assert!(p.contains_key(key), "{key} missing in {p:?}");
        }
        assert_eq!(p["PayloadVersion"].as_signed_integer(), Some(1));
        let id = p["PayloadIdentifier"].as_string().unwrap().to_owned();
        assert!(id.starts_with("gov.townhall.mdm.enrollment."), "{id}");
        identifiers.push(id);
        let uuid = p["PayloadUUID"].as_string().unwrap().to_owned();
        assert!(is_upper_uuid(&uuid), "{uuid}");
        uuids.push(uuid);
    }
    uuids.sort();
    uuids.dedup();
    assert_eq!(uuids.len(), 4, "UUIDs must be distinct");
    identifiers.sort();
    identifiers.dedup();
    assert_eq!(identifiers.len(), 3, "payload identifiers must be distinct");
}

#[test]
fn root_payload_carries_the_der() {
    let top = parse(&build_enrollment_profile(&spec()).unwrap());
    let root = payload(&top, "com.apple.security.root");
    assert_eq!(root["PayloadContent"].as_data(), Some(FAKE_DER));
}

#[test]
fn scep_payload() {
    let built = build_enrollment_profile(&spec()).unwrap();
    let top = parse(&built);
    let scep = payload(&top, "com.apple.security.scep");
    assert_eq!(
        scep["PayloadUUID"].as_string(),
        Some(built.scep_payload_uuid.as_str())
    );
    let c = scep["PayloadContent"].as_dictionary().unwrap();
    assert_eq!(
        c["URL"].as_string(),
        Some("https://mdm.townhall.example/scep")
    );
    assert_eq!(c["Challenge"].as_string(), Some("c3f1a9e0d2b84c5e"));
    assert_eq!(c["Keysize"].as_signed_integer(), Some(2048));
    assert_eq!(c["Key Type"].as_string(), Some("RSA"));
    assert_eq!(c["Key Usage"].as_signed_integer(), Some(5));
    assert!(c["Name"].as_string().is_some());
    // [[["CN", "mdm-device-..."]]]
    let subject = c["Subject"].as_array().unwrap();
    assert_eq!(subject.len(), 1);
    let rdn = subject[0].as_array().unwrap();
    assert_eq!(rdn.len(), 1);
    let pair = rdn[0].as_array().unwrap();
    assert_eq!(pair[0].as_string(), Some("CN"));
    assert_eq!(
        pair[1].as_string(),
        Some("mdm-device-3B1F2E7C-0F4A-4C1B-9E1D-6A2B3C4D5E6F")
    );
}

#[test]
fn mdm_payload_points_at_the_scep_identity() {
    let built = build_enrollment_profile(&spec()).unwrap();
    let top = parse(&built);
    let mdm = payload(&top, "com.apple.mdm");
    assert_eq!(
        mdm["IdentityCertificateUUID"].as_string(),
        Some(built.scep_payload_uuid.as_str())
    );
    assert_eq!(
        mdm["ServerURL"].as_string(),
        Some("https://mdm.townhall.example/mdm")
    );
    assert_eq!(
        mdm["CheckInURL"].as_string(),
        Some("https://mdm.townhall.example/checkin")
    );
    assert_eq!(
        mdm["Topic"].as_string(),
        Some("com.apple.mgmt.External.5a2b0f3c-1111-2222-3333-444455556666")
    );
    assert_eq!(mdm["SignMessage"].as_boolean(), Some(true));
    assert_eq!(mdm["AccessRights"].as_signed_integer(), Some(8191));
    assert_eq!(mdm["CheckOutWhenRemoved"].as_boolean(), Some(true));
    let caps: Vec<&str> = mdm["ServerCapabilities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_string().unwrap())
        .collect();
    assert_eq!(
        caps,
        [
            "com.apple.mdm.per-user-connections",
            "com.apple.mdm.bootstraptoken"
        ]
    );
    assert!(!mdm.contains_key("CheckInURLPinningCertificateUUIDs"));
    assert!(!mdm.contains_key("ServerURLPinningCertificateUUIDs"));
}

#[test]
fn optional_keys_are_left_out() {
    let mut s = spec();
    s.topic = None;
    s.server_capabilities.clear();
    let top = parse(&build_enrollment_profile(&s).unwrap());
    let mdm = payload(&top, "com.apple.mdm");
    assert!(!mdm.contains_key("Topic"));
    assert!(!mdm.contains_key("ServerCapabilities"));
}

#[test]
fn each_build_has_fresh_uuids_and_the_same_identifiers() {
    let a = build_enrollment_profile(&spec()).unwrap();
    let b = build_enrollment_profile(&spec()).unwrap();
    assert_ne!(a.profile_uuid, b.profile_uuid);
    assert_ne!(a.scep_payload_uuid, b.scep_payload_uuid);
    assert_eq!(
        parse(&a)["PayloadIdentifier"],
        parse(&b)["PayloadIdentifier"]
    );
}

fn error_for(change: impl FnOnce(&mut EnrollmentProfileSpec)) -> (String, String) {
    let mut s = spec();
    change(&mut s);
    match build_enrollment_profile(&s) {
        Err(e @ ProfileError::Invalid { field, .. }) => (field.to_owned(), e.to_string()),
        other => panic!("expected an input error, got {other:?}"),
    }
}

#[test]
fn rejects_bad_inputs_naming_the_field() {
    type Change = Box<dyn FnOnce(&mut EnrollmentProfileSpec)>;
    let cases: Vec<(&str, &str, Change)> = vec![
        (
            "organization",
            "empty",
            Box::new(|s| s.organization = " ".into()),
        ),
        (
            "display_name",
            "empty",
            Box::new(|s| s.display_name.clear()),
        ),
        (
            "display_name",
            "control",
            Box::new(|s| s.display_name = "a\u{0}b".into()),
        ),
        ("identifier", "empty", Box::new(|s| s.identifier.clear())),
        (
            "identifier",
            "reverse-DNS",
            Box::new(|s| s.identifier = "my profile".into()),
        ),
        (
            "identifier",
            "reverse-DNS",
            Box::new(|s| s.identifier = "org..example".into()),
        ),
        (
            "ca_certificate_der",
            "empty",
            Box::new(|s| s.ca_certificate_der.clear()),
        ),
        (
            "ca_certificate_der",
            "PEM",
            Box::new(|s| s.ca_certificate_der = b"-----BEGIN CERTIFICATE-----\n".to_vec()),
        ),
        (
            "ca_certificate_der",
            "not a DER",
            Box::new(|s| s.ca_certificate_der = vec![1, 2, 3]),
        ),
        (
            "ca_certificate_der",
            "length mismatch",
            Box::new(|s| s.ca_certificate_der.push(0)),
        ),
        ("scep_url", "empty", Box::new(|s| s.scep_url.clear())),
        (
            "scep_url",
            "must start with",
            Box::new(|s| s.scep_url = "ftp://x/scep".into()),
        ),
        (
            "scep_url",
            "no host",
            Box::new(|s| s.scep_url = "https:///scep".into()),
        ),
        (
            "scep_challenge",
            "empty",
            Box::new(|s| s.scep_challenge.clear()),
        ),
        (
            "scep_subject_cn",
            "empty",
            Box::new(|s| s.scep_subject_cn.clear()),
        ),
        (
            "scep_subject_cn",
            "64",
            Box::new(|s| s.scep_subject_cn = "x".repeat(65)),
        ),
        (
            "scep_key_size",
            "1024, 2048 or 4096",
            Box::new(|s| s.scep_key_size = 3072),
        ),
        (
            "scep_key_usage",
            "encryption only",
            Box::new(|s| s.scep_key_usage = 4),
        ),
        (
            "scep_key_usage",
            "not a key usage",
            Box::new(|s| s.scep_key_usage = 2),
        ),
        ("server_url", "empty", Box::new(|s| s.server_url.clear())),
        (
            "server_url",
            "https://",
            Box::new(|s| s.server_url = "http://mdm.example/mdm".into()),
        ),
        (
            "server_url",
            "whitespace",
            Box::new(|s| s.server_url = "https://mdm.example/m dm".into()),
        ),
        (
            "check_in_url",
            "empty",
            Box::new(|s| s.check_in_url.clear()),
        ),
        (
            "topic",
            "com.apple.mgmt.",
            Box::new(|s| s.topic = Some("com.example.push".into())),
        ),
        (
            "topic",
            "com.apple.mgmt.",
            Box::new(|s| s.topic = Some("com.apple.mgmt.".into())),
        ),
        (
            "topic",
            "empty",
            Box::new(|s| s.topic = Some(String::new())),
        ),
        ("access_rights", "0", Box::new(|s| s.access_rights = 0)),
        (
            "access_rights",
            "8191",
            Box::new(|s| s.access_rights = 8192),
        ),
        (
            "access_rights",
            "requires 1",
            Box::new(|s| s.access_rights = 2),
        ),
        (
            "access_rights",
            "requires 64",
            Box::new(|s| s.access_rights = 128 | 1),
        ),
        (
            "server_capabilities",
            "not a capability",
            Box::new(|s| s.server_capabilities.push("com.example.cap".into())),
        ),
        (
            "server_capabilities",
            "twice",
            Box::new(|s| {
                s.server_capabilities
                    .push("com.apple.mdm.bootstraptoken".into())
            }),
        ),
    ];
    for (field, words, change) in cases {
        let (got_field, message) = error_for(change);
        assert_eq!(got_field, field, "{message}");
        assert!(
            message.contains(words),
            "message for {field} should mention {words:?}: {message}"
        );
    }
}

#[test]
fn accepts_the_documented_alternatives() {
    for change in [
        (|s: &mut EnrollmentProfileSpec| s.scep_url = "http://mdm.example:8080/scep".into())
            as fn(&mut EnrollmentProfileSpec),
        |s| s.scep_key_size = 4096,
        |s| s.scep_key_size = 1024,
        |s| s.scep_key_usage = 1,
        |s| s.scep_key_usage = 0,
        |s| s.access_rights = 1,
        |s| s.access_rights = 1 | 2 | 64 | 128,
        |s| s.server_url = "https://mdm.example:8443/mdm".into(),
        |s| s.sign_message = false,
    ] {
        let mut s = spec();
        change(&mut s);
        build_enrollment_profile(&s).unwrap();
    }
}

/// Runs Apple's schema through the shared checker on the unsigned profile (the signed
/// one is checked by the enrollment crate's tests, which can sign).
#[test]
fn passes_the_schema_checker() {
    let checker =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/tools/mdm-schema-check");
    if !checker.exists() {
        println!(
            "SKIPPED passes_the_schema_checker: {} not found",
            checker.display()
        );
        return;
    }
    let python_ok = Command::new("python3")
        .args(["-c", "import yaml, jsonschema"])
        .status()
        .is_ok_and(|s| s.success());
    if !python_ok {
        println!("SKIPPED passes_the_schema_checker: python3 with pyyaml and jsonschema is missing (pip install pyyaml jsonschema)");
        return;
    }
    let dir = std::env::temp_dir().join(format!("enroll-profile-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("profile-enrollment.mobileconfig");
    std::fs::write(&file, build_enrollment_profile(&spec()).unwrap().plist_xml).unwrap();
    for platform in ["iOS", "macOS"] {
        let out = Command::new(&checker)
            .args(["--platform", platform])
            .arg(&file)
            .output()
            .unwrap();
        let report = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && report.starts_with("ok "),
            "{platform}: {report}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!report.contains("warning"), "{platform}: {report}");
    }
    // Without a topic the checker must object: proof that it really checks this file.
    let mut s = spec();
    s.topic = None;
    std::fs::write(&file, build_enrollment_profile(&s).unwrap().plist_xml).unwrap();
    let out = Command::new(&checker)
        .args(["--platform", "iOS"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("Topic: required key is missing"));
    std::fs::remove_dir_all(&dir).ok();
}
