//! Writes the seed corpora under `corpus/<target>/` from real messages, made the way
//! devices and admins make them: check-ins and reports as the device simulator sends
//! them (XML and binary plists), Mdm-Signature headers signed by device identities,
//! SCEP PKIOperation requests built by the project's SCEP client, admin API bodies.
//!
//! Run from the repository root: `cargo run --manifest-path tests/fuzz/Cargo.toml
//! --example seeds` (what `tests/fuzz/seeds` does). The keys under `fixtures/` are
//! created on the first run and reused afterwards, so that seeds made at different
//! times stay valid for the targets, which compile those keys in.

use enrollment::ca::{CertificateAuthority, KeyUsageBits};
use enrollment::identity::testing::{sign_detached, TestCa};
use enrollment::scep::client::{build_request, RequestOptions};
use enrollment::scep::{self, ContentCipher};
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use openssl::x509::{X509Name, X509};
use plist::{Dictionary, Value};
use std::fs;
use std::path::{Path, PathBuf};

fn main() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let fixtures = root.join("fixtures");
    fs::create_dir_all(&fixtures).unwrap();
    let corpus = root.join("corpus");

    let checkins = checkin_messages();
    let reports = report_messages();
    write_plists(&corpus.join("checkin"), &checkins);
    write_plists(&corpus.join("report"), &reports);

    let device_ca = load_or_create_device_ca(&fixtures);
    write_signatures(
        &corpus.join("mdm_signature"),
        &device_ca,
        &checkins,
        &reports,
    );

    let scep_ca = load_or_create_scep_ca(&fixtures);
    write_scep(&corpus.join("scep_pkioperation"), &scep_ca);

    write_admin_json(&corpus.join("admin_json"));
}

/// Empties a target's seed directory, so that a seed no longer generated goes away.
fn fresh_dir(dir: &Path) {
    if dir.exists() {
        fs::remove_dir_all(dir).unwrap();
    }
    fs::create_dir_all(dir).unwrap();
}

fn dict(entries: &[(&str, Value)]) -> Dictionary {
    entries
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect()
}

fn s(text: &str) -> Value {
    Value::String(text.to_owned())
}

fn data(bytes: &[u8]) -> Value {
    Value::Data(bytes.to_vec())
}

/// Deterministic bytes standing in for tokens (the seeds must not churn on every run).
fn bytes(seed: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

const UDID: &str = "00008030-001A2D3C0E8B802E";
const TOPIC: &str = "com.apple.mgmt.External.5b1e3f4a-0c9d-4e2f-8a7b-6d5c4b3a2f10";

/// Check-in messages of an iPhone, a Mac (device and user channel) and a
/// user-enrolled device, one per message type the server reads.
fn checkin_messages() -> Vec<(String, Dictionary)> {
    let ios = |kind: &str, extra: &[(&str, Value)]| {
        let mut d = dict(&[("MessageType", s(kind)), ("UDID", s(UDID))]);
        d.extend(dict(extra));
        d
    };
    let mac_user = |kind: &str, extra: &[(&str, Value)]| {
        let mut d = dict(&[
            ("MessageType", s(kind)),
            ("UDID", s("564D9A1B-7C2E-4F3A-9B8D-1E2F3A4B5C6D")),
            ("UserID", s("B3E2A1D0-9C8B-4A7F-8E6D-5C4B3A2F1E0D")),
            ("UserShortName", s("jdoe")),
            ("UserLongName", s("Jane Doe")),
        ]);
        d.extend(dict(extra));
        d
    };
    vec![
        (
            "authenticate-ios".into(),
            ios(
                "Authenticate",
                &[
                    ("Topic", s(TOPIC)),
                    ("SerialNumber", s("F2LXK0ABHG7F")),
                    ("ProductName", s("iPhone15,2")),
                    ("OSVersion", s("18.1")),
                    ("BuildVersion", s("22B83")),
                    ("DeviceName", s("Reception iPhone")),
                    ("IMEI", s("35 208811 123456 7")),
                    ("MEID", s("35208811123456")),
                ],
            ),
        ),
        (
            "authenticate-macos".into(),
            dict(&[
                ("MessageType", s("Authenticate")),
                ("UDID", s("564D9A1B-7C2E-4F3A-9B8D-1E2F3A4B5C6D")),
                ("Topic", s(TOPIC)),
                ("SerialNumber", s("C02ZK1ABMD6M")),
                ("Model", s("MacBookPro18,3")),
                ("ModelName", s("MacBook Pro")),
                ("DeviceName", s("Town hall C02ZK1ABMD6M")),
            ]),
        ),
        (
            "tokenupdate-ios".into(),
            ios(
                "TokenUpdate",
                &[
                    ("Topic", s(TOPIC)),
                    ("Token", data(&bytes(1, 32))),
                    ("PushMagic", s("7C1D2E3F-4A5B-4C6D-8E9F-0A1B2C3D4E5F")),
                    ("UnlockToken", data(&bytes(2, 48))),
                    ("AwaitingConfiguration", Value::Boolean(false)),
                ],
            ),
        ),
        (
            "tokenupdate-macos-user".into(),
            mac_user(
                "TokenUpdate",
                &[
                    ("Topic", s(TOPIC)),
                    ("Token", data(&bytes(3, 32))),
                    ("PushMagic", s("1A2B3C4D-5E6F-4A7B-8C9D-0E1F2A3B4C5D")),
                    ("NotOnConsole", Value::Boolean(false)),
                ],
            ),
        ),
        (
            "tokenupdate-user-enrollment".into(),
            dict(&[
                ("MessageType", s("TokenUpdate")),
                ("EnrollmentID", s("6A7B8C9D-0E1F-4A2B-9C3D-4E5F6A7B8C9D")),
                (
                    "EnrollmentUserID",
                    s("0F1E2D3C-4B5A-4968-8776-5A4B3C2D1E0F"),
                ),
                ("Topic", s(TOPIC)),
                ("Token", data(&bytes(4, 32))),
                ("PushMagic", s("2B3C4D5E-6F7A-4B8C-9D0E-1F2A3B4C5D6E")),
            ]),
        ),
        (
            "checkout-ios".into(),
            ios("CheckOut", &[("Topic", s(TOPIC))]),
        ),
        (
            "setbootstraptoken-macos".into(),
            dict(&[
                ("MessageType", s("SetBootstrapToken")),
                ("UDID", s("564D9A1B-7C2E-4F3A-9B8D-1E2F3A4B5C6D")),
                ("BootstrapToken", data(&bytes(5, 64))),
                ("AwaitingConfiguration", Value::Boolean(true)),
            ]),
        ),
        (
            "getbootstraptoken-macos".into(),
            dict(&[
                ("MessageType", s("GetBootstrapToken")),
                ("UDID", s("564D9A1B-7C2E-4F3A-9B8D-1E2F3A4B5C6D")),
            ]),
        ),
        (
            "userauthenticate-macos".into(),
            mac_user(
                "UserAuthenticate",
                &[("DigestResponse", s("username=\"jdoe\", realm=\"mdm\""))],
            ),
        ),
        (
            "declarativemanagement-ios".into(),
            ios(
                "DeclarativeManagement",
                &[
                    ("Endpoint", s("tokens")),
                    ("Data", data(b"{\"SyncTokens\":{}}")),
                ],
            ),
        ),
        (
            "gettoken-ios".into(),
            ios("GetToken", &[("TokenServiceType", s("com.apple.maid"))]),
        ),
    ]
}

/// Command reports: Idle, acknowledgements carrying the results the server reads,
/// NotNow and an Error with its chain.
fn report_messages() -> Vec<(String, Dictionary)> {
    let report = |status: &str, uuid: Option<&str>, extra: &[(&str, Value)]| {
        let mut d = dict(&[("UDID", s(UDID)), ("Status", s(status))]);
        if let Some(u) = uuid {
            d.insert("CommandUUID".into(), s(u));
        }
        d.extend(dict(extra));
        d
    };
    let profile = |id: &str, name: &str, managed: bool| {
        Value::Dictionary(dict(&[
            ("PayloadIdentifier", s(id)),
            ("PayloadDisplayName", s(name)),
            ("PayloadUUID", s("9F8E7D6C-5B4A-4392-8170-6F5E4D3C2B1A")),
            ("PayloadVersion", Value::Integer(1.into())),
            ("IsManaged", Value::Boolean(managed)),
            ("HasRemovalPasscode", Value::Boolean(false)),
            ("IsEncrypted", Value::Boolean(false)),
        ]))
    };
    vec![
        ("idle".into(), report("Idle", None, &[])),
        (
            "idle-user-enrollment".into(),
            dict(&[
                ("EnrollmentID", s("6A7B8C9D-0E1F-4A2B-9C3D-4E5F6A7B8C9D")),
                ("Status", s("Idle")),
            ]),
        ),
        (
            "acknowledged-plain".into(),
            report(
                "Acknowledged",
                Some("D1C2B3A4-9F8E-4D7C-B6A5-0F1E2D3C4B5A"),
                &[],
            ),
        ),
        (
            "acknowledged-deviceinformation".into(),
            report(
                "Acknowledged",
                Some("A1B2C3D4-E5F6-4789-9ABC-DEF012345678"),
                &[(
                    "QueryResponses",
                    Value::Dictionary(dict(&[
                        ("OSVersion", s("18.1")),
                        ("BuildVersion", s("22B83")),
                        ("ProductName", s("iPhone15,2")),
                        ("Model", s("MQ9T3")),
                        ("ModelName", s("iPhone")),
                        ("SerialNumber", s("F2LXK0ABHG7F")),
                        ("DeviceName", s("Reception iPhone")),
                        ("BatteryLevel", Value::Real(0.87)),
                        ("DeviceCapacity", Value::Real(119.2)),
                        ("IsSupervised", Value::Boolean(true)),
                        ("WiFiMAC", s("a4:83:e7:12:34:56")),
                    ])),
                )],
            ),
        ),
        (
            "acknowledged-securityinfo-ios".into(),
            report(
                "Acknowledged",
                Some("B2C3D4E5-F6A7-489B-ACDE-F0123456789A"),
                &[(
                    "SecurityInfo",
                    Value::Dictionary(dict(&[
                        ("HardwareEncryptionCaps", Value::Integer(3.into())),
                        ("PasscodePresent", Value::Boolean(true)),
                        ("PasscodeCompliant", Value::Boolean(true)),
                        ("PasscodeCompliantWithProfiles", Value::Boolean(true)),
                    ])),
                )],
            ),
        ),
        (
            "acknowledged-securityinfo-macos".into(),
            report(
                "Acknowledged",
                Some("C3D4E5F6-A7B8-49AC-BDEF-0123456789AB"),
                &[(
                    "SecurityInfo",
                    Value::Dictionary(dict(&[
                        ("FDE_Enabled", Value::Boolean(true)),
                        ("SystemIntegrityProtectionEnabled", Value::Boolean(true)),
                        (
                            "FirewallSettings",
                            Value::Dictionary(dict(&[
                                ("FirewallEnabled", Value::Boolean(true)),
                                ("BlockAllIncoming", Value::Boolean(false)),
                                ("StealthMode", Value::Boolean(false)),
                            ])),
                        ),
                    ])),
                )],
            ),
        ),
        (
            "acknowledged-profilelist".into(),
            report(
                "Acknowledged",
                Some("D4E5F6A7-B8C9-4ABD-8EF0-123456789ABC"),
                &[(
                    "ProfileList",
                    Value::Array(vec![
                        profile("com.example.mdm", "MDM enrollment", true),
                        profile("com.example.wifi", "Office Wi-Fi", true),
                        profile("com.example.user", "Hand installed", false),
                    ]),
                )],
            ),
        ),
        (
            "acknowledged-certificatelist".into(),
            report(
                "Acknowledged",
                Some("E5F6A7B8-C9D0-4BCE-9F01-23456789ABCD"),
                &[(
                    "CertificateList",
                    Value::Array(vec![Value::Dictionary(dict(&[
                        ("CommonName", s("mdm-device-1")),
                        ("IsIdentity", Value::Boolean(true)),
                        ("Data", data(&bytes(6, 96))),
                    ]))]),
                )],
            ),
        ),
        (
            "acknowledged-installedapplicationlist".into(),
            report(
                "Acknowledged",
                Some("F6A7B8C9-D0E1-4CDF-A012-3456789ABCDE"),
                &[(
                    "InstalledApplicationList",
                    Value::Array(vec![Value::Dictionary(dict(&[
                        ("Identifier", s("com.example.app")),
                        ("Name", s("Example")),
                        ("ShortVersion", s("2.1")),
                        ("Version", s("210")),
                        ("BundleSize", Value::Integer(18_000_000.into())),
                        ("IsValidated", Value::Boolean(true)),
                    ]))]),
                )],
            ),
        ),
        (
            "notnow".into(),
            report("NotNow", Some("0A1B2C3D-4E5F-4061-8273-A4B5C6D7E8F9"), &[]),
        ),
        (
            "error-chain".into(),
            report(
                "Error",
                Some("1B2C3D4E-5F60-4172-8394-B5C6D7E8F90A"),
                &[(
                    "ErrorChain",
                    Value::Array(vec![
                        Value::Dictionary(dict(&[
                            ("ErrorCode", Value::Integer(12021.into())),
                            ("ErrorDomain", s("MCMDMErrorDomain")),
                            ("LocalizedDescription", s("Unknown command")),
                            ("USEnglishDescription", s("Unknown command")),
                        ])),
                        Value::Dictionary(dict(&[
                            ("ErrorCode", Value::Integer(4001.into())),
                            ("ErrorDomain", s("MCProfileErrorDomain")),
                            ("LocalizedDescription", s("Profile Installation Failed")),
                        ])),
                    ]),
                )],
            ),
        ),
        (
            "commandformaterror".into(),
            report(
                "CommandFormatError",
                Some("2C3D4E5F-6071-4283-94A5-C6D7E8F90A1B"),
                &[],
            ),
        ),
    ]
}

fn xml(d: &Dictionary) -> Vec<u8> {
    let mut out = Vec::new();
    Value::Dictionary(d.clone())
        .to_writer_xml(&mut out)
        .unwrap();
    out
}

fn binary(d: &Dictionary) -> Vec<u8> {
    let mut out = Vec::new();
    Value::Dictionary(d.clone())
        .to_writer_binary(&mut out)
        .unwrap();
    out
}

/// Each message as an XML and as a binary plist.
fn write_plists(dir: &Path, messages: &[(String, Dictionary)]) {
    fresh_dir(dir);
    for (name, d) in messages {
        fs::write(dir.join(format!("{name}.xml.plist")), xml(d)).unwrap();
        fs::write(dir.join(format!("{name}.bin.plist")), binary(d)).unwrap();
    }
}

fn read_pair(fixtures: &Path, name: &str) -> Option<(Vec<u8>, Vec<u8>)> {
    let cert = fs::read(fixtures.join(format!("{name}.pem"))).ok()?;
    let key = fs::read(fixtures.join(format!("{name}.key"))).ok()?;
    Some((cert, key))
}

fn load_or_create_device_ca(fixtures: &Path) -> TestCa {
    if let Some((cert, key)) = read_pair(fixtures, "device-ca") {
        return TestCa {
            key: PKey::private_key_from_pem(&key).unwrap(),
            cert: X509::from_pem(&cert).unwrap(),
        };
    }
    let ca = TestCa::new("mdm fuzzing device CA (throw-away)");
    fs::write(fixtures.join("device-ca.pem"), ca.cert.to_pem().unwrap()).unwrap();
    fs::write(
        fixtures.join("device-ca.key"),
        ca.key.private_key_to_pem_pkcs8().unwrap(),
    )
    .unwrap();
    ca
}

fn load_or_create_scep_ca(fixtures: &Path) -> CertificateAuthority {
    if let Some((cert, key)) = read_pair(fixtures, "scep-ca") {
        return CertificateAuthority::from_pem(&cert, &key).unwrap();
    }
    let ca =
        CertificateAuthority::generate("mdm fuzzing SCEP CA (throw-away)", "mdm fuzz", 30).unwrap();
    fs::write(fixtures.join("scep-ca.pem"), ca.cert_pem()).unwrap();
    fs::write(fixtures.join("scep-ca.key"), ca.key_pem()).unwrap();
    ca
}

fn rsa_key() -> PKey<Private> {
    PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap()
}

/// Bodies signed as devices sign them: P-256 (what the simulator uses) and RSA 2048
/// (what iOS generates for a SCEP identity), plus the refusals the server must
/// tell apart: a signer from a foreign CA and a signature over another body. Each
/// in both input forms of the target (base64 header text and raw DER).
fn write_signatures(
    dir: &Path,
    ca: &TestCa,
    checkins: &[(String, Dictionary)],
    reports: &[(String, Dictionary)],
) {
    fresh_dir(dir);
    let ec_key = enrollment::identity::testing::p256_key();
    let ec_cert = long_lived_device_cert(ca, "mdm-device-ec", &ec_key);
    let rsa = rsa_key();
    let rsa_cert = long_lived_device_cert(ca, "mdm-device-rsa", &rsa);
    let foreign = TestCa::new("someone else's CA");
    let (foreign_key, foreign_cert) = foreign.issue("intruder");

    let mut bodies: Vec<(String, Vec<u8>)> = Vec::new();
    for (name, d) in checkins.iter().take(4).chain(reports.iter().take(5)) {
        bodies.push((format!("{name}-xml"), xml(d)));
    }
    bodies.push(("idle-bin".into(), binary(&reports[0].1)));
    bodies.push(("authenticate-ios-bin".into(), binary(&checkins[0].1)));

    let write = |name: String, header: &str, body: &[u8]| {
        use base64::Engine;
        let der = base64::engine::general_purpose::STANDARD
            .decode(header)
            .unwrap();
        let b64 = mdm_fuzz::join_signature_input(header.as_bytes(), false, body);
        fs::write(dir.join(format!("{name}.b64")), b64).unwrap();
        let raw = mdm_fuzz::join_signature_input(&der, true, body);
        fs::write(dir.join(format!("{name}.der")), raw).unwrap();
    };
    for (i, (name, body)) in bodies.iter().enumerate() {
        let (key, cert, signer) = if i % 2 == 0 {
            (&ec_key, &ec_cert, "ec")
        } else {
            (&rsa, &rsa_cert, "rsa")
        };
        write(
            format!("{name}-{signer}"),
            &sign_detached(key, cert, body),
            body,
        );
    }
    let body = &bodies[0].1;
    write(
        "foreign-ca".into(),
        &sign_detached(&foreign_key, &foreign_cert, body),
        body,
    );
    let other = &bodies[1].1;
    write(
        "other-body".into(),
        &sign_detached(&ec_key, &ec_cert, other),
        body,
    );
}

/// Seeds outlive a real identity: valid for 30 years, so that they keep reaching the
/// code past the chain check (the seed test fails once they no longer do).
const SEED_DAYS: u32 = 30 * 365;

/// A device identity certificate as the device CA issues one, but long-lived.
fn long_lived_device_cert(ca: &TestCa, cn: &str, key: &PKey<Private>) -> X509 {
    use openssl::asn1::Asn1Time;
    use openssl::bn::{BigNum, MsbOption};
    use openssl::hash::MessageDigest;
    use openssl::x509::extension::KeyUsage;
    let mut name = X509Name::builder().unwrap();
    name.append_entry_by_nid(Nid::COMMONNAME, cn).unwrap();
    let name = name.build();
    let mut b = openssl::x509::X509Builder::new().unwrap();
    b.set_version(2).unwrap();
    let mut serial = BigNum::new().unwrap();
    serial.rand(127, MsbOption::MAYBE_ZERO, false).unwrap();
    b.set_serial_number(&serial.to_asn1_integer().unwrap())
        .unwrap();
    b.set_subject_name(&name).unwrap();
    b.set_issuer_name(ca.cert.subject_name()).unwrap();
    b.set_pubkey(key).unwrap();
    b.set_not_before(&Asn1Time::days_from_now(0).unwrap())
        .unwrap();
    b.set_not_after(&Asn1Time::days_from_now(SEED_DAYS).unwrap())
        .unwrap();
    b.append_extension(
        KeyUsage::new()
            .critical()
            .digital_signature()
            .key_encipherment()
            .build()
            .unwrap(),
    )
    .unwrap();
    b.sign(&ca.key, MessageDigest::sha256()).unwrap();
    b.build()
}

/// PKIOperation requests as the project's SCEP client sends them: PKCSReq with a
/// challenge under every content cipher the server reads, with RSA and P-256 keys,
/// without a challenge, and a RenewalReq signed by a certificate this CA issued.
fn write_scep(dir: &Path, ca: &CertificateAuthority) {
    fresh_dir(dir);
    let subject = |cn: &str| {
        let mut b = X509Name::builder().unwrap();
        b.append_entry_by_nid(Nid::COMMONNAME, cn).unwrap();
        b.append_entry_by_nid(Nid::ORGANIZATIONNAME, "mdm fuzz")
            .unwrap();
        b.build()
    };
    let rsa = rsa_key();
    let name = subject("scep-device-rsa");
    let ciphers = [
        ("des", ContentCipher::DesCbc),
        ("3des", ContentCipher::DesEde3Cbc),
        ("aes128", ContentCipher::Aes128Cbc),
        ("aes192", ContentCipher::Aes192Cbc),
        ("aes256", ContentCipher::Aes256Cbc),
    ];
    for (label, cipher) in ciphers {
        let mut opts = RequestOptions::new(&rsa, &name, ca.cert());
        opts.challenge = Some("4F7D2A9C1B6E8053");
        opts.cipher = cipher;
        // The client seals with openssl's default provider, which has no single DES
        // (the server reads it through the legacy provider): that seed is skipped.
        match build_request(&opts) {
            Ok(req) => fs::write(dir.join(format!("pkcsreq-rsa-{label}.der")), &req.der).unwrap(),
            Err(e) => eprintln!("no {label} seed: {e}"),
        }
    }
    let ec = enrollment::identity::testing::p256_key();
    let ec_name = subject("scep-device-ec");
    let mut opts = RequestOptions::new(&ec, &ec_name, ca.cert());
    opts.challenge = Some("0123456789ABCDEF");
    let ec_req = build_request(&opts).unwrap();
    fs::write(dir.join("pkcsreq-ec-aes256.der"), &ec_req.der).unwrap();

    let opts = RequestOptions::new(&rsa, &name, ca.cert());
    fs::write(
        dir.join("pkcsreq-rsa-no-challenge.der"),
        build_request(&opts).unwrap().der,
    )
    .unwrap();

    // The certificate to renew is issued the way the server issues it: from the CSR
    // that parse_request read out of a real request.
    let mut opts = RequestOptions::new(&rsa, &name, ca.cert());
    opts.challenge = Some("4F7D2A9C1B6E8053");
    let first = build_request(&opts).unwrap();
    let parsed = scep::parse_request(&first.der, ca).expect("the seed request parses");
    let issued = ca
        .issue(&parsed.csr, &name, SEED_DAYS, KeyUsageBits(5))
        .expect("the CA issues for the seed CSR");
    let new_key = rsa_key();
    let mut opts = RequestOptions::new(&new_key, &name, ca.cert());
    opts.renew_with = Some((&issued, &rsa));
    let renewal = build_request(&opts).unwrap();
    scep::parse_request(&renewal.der, ca).expect("the seed renewal parses");
    fs::write(dir.join("renewalreq-rsa-aes256.der"), &renewal.der).unwrap();
}

/// Bodies of every admin API route that takes JSON.
fn write_admin_json(dir: &Path) {
    fresh_dir(dir);
    let raw_plist = String::from_utf8(xml(&dict(&[
        ("RequestType", s("Settings")),
        (
            "Settings",
            Value::Array(vec![Value::Dictionary(dict(&[
                ("Item", s("DeviceName")),
                ("DeviceName", s("Front desk")),
            ]))]),
        ),
    ])))
    .unwrap();
    let bodies = [
        (
            "enrollment-apple",
            serde_json::json!({"platform": "apple", "name": "Office iPhones", "expires_in_hours": 72, "max_uses": 25, "user": "jdoe", "group": "sales"}),
        ),
        (
            "enrollment-android",
            serde_json::json!({"platform": "android", "name": "Warehouse scanners", "expires_at": "2030-01-31T12:00:00Z", "android": {"wifi": {"ssid": "Warehouse", "security_type": "WPA", "password": "correct horse"}, "locale": "en_US", "time_zone": "Europe/Warsaw"}}),
        ),
        (
            "commands-bulk-devicelock",
            serde_json::json!({"device_ids": ["00008030-001A2D3C0E8B802E", "564D9A1B-7C2E-4F3A-9B8D-1E2F3A4B5C6D"], "type": "DeviceLock", "message": "Lost phone", "phone_number": "+48 123 456 789", "priority": 10}),
        ),
        (
            "commands-bulk-deviceinformation",
            serde_json::json!({"device_ids": ["00008030-001A2D3C0E8B802E"], "type": "DeviceInformation", "queries": ["OSVersion", "SerialNumber", "BatteryLevel"], "expires_at": "2030-01-01T00:00:00Z"}),
        ),
        (
            "command-installprofile",
            serde_json::json!({"type": "InstallProfile", "payload": "PD94bWwgdmVyc2lvbj0iMS4wIj8+PHBsaXN0IHZlcnNpb249IjEuMCI+PGRpY3QvPjwvcGxpc3Q+"}),
        ),
        (
            "command-removeprofile",
            serde_json::json!({"type": "RemoveProfile", "identifier": "com.example.wifi"}),
        ),
        (
            "command-erasedevice",
            serde_json::json!({"type": "EraseDevice", "pin": "123456", "preserve_data_plan": true, "disallow_proximity_setup": false}),
        ),
        (
            "command-installedapplicationlist",
            serde_json::json!({"type": "InstalledApplicationList", "identifiers": ["com.example.app"], "managed_apps_only": true}),
        ),
        (
            "command-restartdevice",
            serde_json::json!({"type": "RestartDevice", "notify_user": true}),
        ),
        (
            "command-enablelostmode",
            serde_json::json!({"type": "EnableLostMode", "message": "Call us", "phone_number": "+1 555 0100", "footnote": "Reward"}),
        ),
        (
            "command-clearpasscode",
            serde_json::json!({"type": "ClearPasscode"}),
        ),
        (
            "command-profilelist",
            serde_json::json!({"type": "ProfileList"}),
        ),
        (
            "command-raw",
            serde_json::json!({"type": "Raw", "plist": raw_plist}),
        ),
        (
            "lock",
            serde_json::json!({"message": "Return to IT", "phone_number": "+48 22 000 00 00", "pin": "123456"}),
        ),
        (
            "wipe",
            serde_json::json!({"confirm": "F2LXK0ABHG7F", "pin": "654321", "preserve_data_plan": false, "disallow_proximity_setup": true}),
        ),
        (
            "push-certificate-pem",
            serde_json::json!({"certificate_pem": "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n", "private_key_pem": "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n"}),
        ),
        (
            "push-certificate-pkcs12",
            serde_json::json!({"pkcs12_base64": "MIIKcAIBAzCCCjYGCSqGSIb3DQEHAaCCCicEggojMIIKHzCCBG8GCSqGSIb3DQEHBqCCBGAwggRcAgEAMIIEVQYJKoZIhvcNAQcB", "password": "secret"}),
        ),
    ];
    for (name, body) in bodies {
        fs::write(
            dir.join(format!("{name}.json")),
            serde_json::to_vec_pretty(&body).unwrap(),
        )
        .unwrap();
    }
}
