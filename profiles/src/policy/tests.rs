//! Tests of the policy model and its compilers. The certificates are throw-away
//! self-signed test CAs (P-256), made for these tests only.

use std::path::PathBuf;

use plist::Value as Plist;
use serde_json::Value as Json;

use super::*;

const RADIUS_CA: &str = "-----BEGIN CERTIFICATE-----
MIIBujCCAWGgAwIBAgIURCtYLBwgFex5JHgV1PdM4toAitcwCgYIKoZIzj0EAwIw
MjEXMBUGA1UECgwOVGVzdCBUb3duIEhhbGwxFzAVBgNVBAMMDlRlc3QgUkFESVVT
IENBMCAXDTI2MTIwMTA2MDgzNloYDzIxMjYxMTA3MDYwODM2WjAyMRcwFQYDVQQK
DA5UZXN0IFRvd24gSGFsbDEXMBUGA1UEAwwOVGVzdCBSQURJVVMgQ0EwWTATBgcq
hkjOPQIBBggqhkjOPQMBBwNCAARqt7Tk76VJLVAg4yYZ5oq3UMZfknC2OC3rAL8m
wcsKCbsrOxV9ZmT/JO5q/mKD9EDHMElUz+MrHXQ8fFgxkSJ+o1MwUTAdBgNVHQ4E
FgQUfoPd52Xbj4pjYqyb7paZcNRsU3UwHwYDVR0jBBgwFoAUfoPd52Xbj4pjYqyb
7paZcNRsU3UwDwYDVR0TAQH/BAUwAwEB/zAKBggqhkjOPQQDAgNHADBEAiA7yxGN
vBimbb4PguuL8AfrnTJ5aqD6t6KLQyCG58EvMwIgMgaiWbw3ljnuc+QVQWD3iXi+
9x1E+meFLhonMJIZC5o=
-----END CERTIFICATE-----
";

const MAIL_CA: &str = "-----BEGIN CERTIFICATE-----
MIIBtzCCAV2gAwIBAgIUPpoFj7hJcG77Q675V49tc1eXLkcwCgYIKoZIzj0EAwIw
MDEXMBUGA1UECgwOVGVzdCBUb3duIEhhbGwxFTATBgNVBAMMDFRlc3QgTWFpbCBD
QTAgFw0yNjEyMDEwNjA4MzZaGA8yMTI2MTEwNzA2MDgzNlowMDEXMBUGA1UECgwO
VGVzdCBUb3duIEhhbGwxFTATBgNVBAMMDFRlc3QgTWFpbCBDQTBZMBMGByqGSM49
AgEGCCqGSM49AwEHA0IABCeE9OMiS8uK++29gAYF4tKDZAN52qzvNJJXYc8/1LwX
5SP4j/N1iGBLefg79GDa3UEt2igtYey2y6+aUhpxIhWjUzBRMB0GA1UdDgQWBBR4
o/XC8S5+Pcybt9jXzXIJo1LJnzAfBgNVHSMEGDAWgBR4o/XC8S5+Pcybt9jXzXIJ
o1LJnzAPBgNVHRMBAf8EBTADAQH/MAoGCCqGSM49BAMCA0gAMEUCIHKeBMbFetua
ViHDXYRrxI5V2sTRxhiW4n/t+faHL/wgAiEAi/yMnzyC1inpocDUagPiW8K5Hkr1
9ELwMWNGjogrpRc=
-----END CERTIFICATE-----
";

fn jan() -> UserAttributes {
    UserAttributes {
        username: "jan.kowalski".into(),
        upn: "jan.kowalski@town.example".into(),
        email: "jan.kowalski@mail.town.example".into(),
        display_name: "Jan Kowalski".into(),
        department: Some("Registry".into()),
        groups: vec!["staff".into()],
    }
}

fn ctx() -> AppleContext {
    AppleContext {
        identifier_prefix: "org.example.mdm".into(),
        organization: "Town Hall".into(),
        policy_key: "p-17".into(),
        device_key: "d-42".into(),
        scep: Some(ScepParams {
            url: "https://mdm.town.example/scep".into(),
            challenge: "device-challenge-d-42".into(),
            subject_cn: "wifi-d-42".into(),
            key_size: 2048,
            ca_fingerprint: None,
        }),
    }
}

/// The rich example, as TOML: every section, every EAP method, both mail kinds.
fn rich_toml() -> String {
    format!(
        r#"
name = "Town Hall staff"
description = "Staff phones"

[passcode]
required = true
min_length = 8
alphanumeric = true
min_complex_chars = 1
max_age_days = 90
history = 5
max_failed_attempts = 10
auto_lock_minutes = 2
grace_period_minutes = 0

[[wifi]]
ssid = "TownHall"
[wifi.security]
type = "enterprise"
eap = {{ method = "peap", inner = "mschapv2" }}
radius_server_names = ["radius.town.example"]
radius_ca_certificates = ["RADIUS CA"]

[[wifi]]
ssid = "TownHall-TTLS"
hidden = true
auto_join = false
[wifi.security]
type = "enterprise"
wpa3 = true
eap = {{ method = "ttls", inner = "pap" }}
radius_server_names = ["*.radius.town.example"]
radius_ca_certificates = ["RADIUS CA"]

[[wifi]]
ssid = "TownHall-Devices"
[wifi.security]
type = "enterprise"
eap = {{ method = "tls" }}
radius_server_names = ["radius.town.example"]
radius_ca_certificates = ["RADIUS CA"]

[[mail]]
name = "Exchange"
kind = "exchange"
host = "outlook.office365.com"

[[mail]]
name = "Archive"
kind = "imap"
host = "imap.town.example"
port = 993
smtp_host = "smtp.town.example"
smtp_port = 465
username = "{{{{user.username}}}}"
display_name = "{{{{user.display_name}}}} ({{{{user.department}}}})"

[[certificates]]
name = "RADIUS CA"
pem = """
{RADIUS_CA}"""

[[certificates]]
name = "Mail CA"
pem = """
{MAIL_CA}"""
"#
    )
}

fn rich() -> PolicyDocument {
    parse(&rich_toml(), Format::Toml).unwrap_or_else(|e| panic!("{e:?}"))
}

fn minimal(name: &str) -> PolicyDocument {
    PolicyDocument {
        name: name.into(),
        description: None,
        passcode: None,
        wifi: vec![],
        mail: vec![],
        certificates: vec![],
    }
}

fn peap(ssid: &str, ca: &str) -> WifiNetwork {
    WifiNetwork {
        ssid: ssid.into(),
        hidden: false,
        auto_join: true,
        security: WifiSecurity::Enterprise {
            wpa3: false,
            eap: Eap::Peap {
                inner: Inner::Mschapv2,
            },
            radius_server_names: vec!["radius.town.example".into()],
            radius_ca_certificates: vec![ca.into()],
        },
    }
}

fn cert(name: &str, pem: &str) -> TrustedCertificate {
    TrustedCertificate {
        name: name.into(),
        pem: pem.into(),
    }
}

fn paths(errors: &[FieldError]) -> Vec<&str> {
    errors.iter().map(|e| e.path.as_str()).collect()
}

fn plist_dict(bytes: &[u8]) -> plist::Dictionary {
    Plist::from_reader_xml(bytes)
        .unwrap()
        .into_dictionary()
        .unwrap()
}

fn payloads(top: &plist::Dictionary) -> Vec<plist::Dictionary> {
    top["PayloadContent"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_dictionary().unwrap().clone())
        .collect()
}

fn payload_of<'a>(all: &'a [plist::Dictionary], ty: &str) -> Vec<&'a plist::Dictionary> {
    all.iter()
        .filter(|p| p["PayloadType"].as_string() == Some(ty))
        .collect()
}

// ---------------------------------------------------------------- parsing

#[test]
fn parses_the_three_formats_to_the_same_document() {
    let from_toml = rich();
    assert_eq!(from_toml.wifi.len(), 3);
    assert_eq!(
        from_toml.mail[0].email_address, "{{user.email}}",
        "default template"
    );
    assert_eq!(from_toml.mail[0].username, "{{user.upn}}");
    assert!(from_toml.mail[0].ssl_required, "SSL defaults to on");
    assert!(from_toml.wifi[0].auto_join, "auto_join defaults to true");

    // JSON as the API receives it, written by hand (not by serde) to test the reader.
    let json = format!(
        r#"{{
  "name": "Town Hall staff",
  "description": "Staff phones",
  "passcode": {{"required": true, "min_length": 8, "alphanumeric": true, "min_complex_chars": 1,
    "max_age_days": 90, "history": 5, "max_failed_attempts": 10, "auto_lock_minutes": 2,
    "grace_period_minutes": 0}},
  "wifi": [
    {{"ssid": "TownHall", "security": {{"type": "enterprise",
      "eap": {{"method": "peap", "inner": "mschapv2"}},
      "radius_server_names": ["radius.town.example"], "radius_ca_certificates": ["RADIUS CA"]}}}},
    {{"ssid": "TownHall-TTLS", "hidden": true, "auto_join": false, "security": {{"type": "enterprise",
      "wpa3": true, "eap": {{"method": "ttls", "inner": "pap"}},
      "radius_server_names": ["*.radius.town.example"], "radius_ca_certificates": ["RADIUS CA"]}}}},
    {{"ssid": "TownHall-Devices", "security": {{"type": "enterprise", "eap": {{"method": "tls"}},
      "radius_server_names": ["radius.town.example"], "radius_ca_certificates": ["RADIUS CA"]}}}}
  ],
  "mail": [
    {{"name": "Exchange", "kind": "exchange", "host": "outlook.office365.com"}},
    {{"name": "Archive", "kind": "imap", "host": "imap.town.example", "port": 993,
      "smtp_host": "smtp.town.example", "smtp_port": 465, "username": "{{{{user.username}}}}",
      "display_name": "{{{{user.display_name}}}} ({{{{user.department}}}})"}}
  ],
  "certificates": [
    {{"name": "RADIUS CA", "pem": {}}},
    {{"name": "Mail CA", "pem": {}}}
  ]
}}"#,
        serde_json::to_string(RADIUS_CA).unwrap(),
        serde_json::to_string(MAIL_CA).unwrap()
    );
    assert_eq!(parse(&json, Format::Json).unwrap(), from_toml);

    let indent = |pem: &str| {
        pem.lines()
            .map(|l| format!("      {l}\n"))
            .collect::<String>()
    };
    let yaml = format!(
        r#"name: Town Hall staff
description: Staff phones
passcode:
  required: true
  min_length: 8
  alphanumeric: true
  min_complex_chars: 1
  max_age_days: 90
  history: 5
  max_failed_attempts: 10
  auto_lock_minutes: 2
  grace_period_minutes: 0
wifi:
  - ssid: TownHall
    security:
      type: enterprise
      eap: {{method: peap, inner: mschapv2}}
      radius_server_names: [radius.town.example]
      radius_ca_certificates: [RADIUS CA]
  - ssid: TownHall-TTLS
    hidden: true
    auto_join: false
    security:
      type: enterprise
      wpa3: true
      eap: {{method: ttls, inner: pap}}
      radius_server_names: ["*.radius.town.example"]
      radius_ca_certificates: [RADIUS CA]
  - ssid: TownHall-Devices
    security:
      type: enterprise
      eap: {{method: tls}}
      radius_server_names: [radius.town.example]
      radius_ca_certificates: [RADIUS CA]
mail:
  - name: Exchange
    kind: exchange
    host: outlook.office365.com
  - name: Archive
    kind: imap
    host: imap.town.example
    port: 993
    smtp_host: smtp.town.example
    smtp_port: 465
    username: "{{{{user.username}}}}"
    display_name: "{{{{user.display_name}}}} ({{{{user.department}}}})"
certificates:
  - name: RADIUS CA
    pem: |
{}  - name: Mail CA
    pem: |
{}"#,
        indent(RADIUS_CA),
        indent(MAIL_CA)
    );
    assert_eq!(parse(&yaml, Format::Yaml).unwrap(), from_toml);

    // What serde writes reads back the same, in every format.
    let doc = rich();
    let json = serde_json::to_string_pretty(&doc).unwrap();
    assert_eq!(parse(&json, Format::Json).unwrap(), doc);
    let toml_text = toml::to_string(&doc).unwrap();
    assert_eq!(parse(&toml_text, Format::Toml).unwrap(), doc, "{toml_text}");
    let yaml = serde_norway::to_string(&doc).unwrap();
    assert_eq!(parse(&yaml, Format::Yaml).unwrap(), doc, "{yaml}");

    assert_eq!(Format::from_file_name("staff.YML"), Some(Format::Yaml));
    assert_eq!(Format::from_file_name("staff.toml"), Some(Format::Toml));
    assert_eq!(Format::from_file_name("staff"), None);
}

#[test]
fn parse_errors_name_the_field_and_what_is_allowed() {
    let e = parse(r#"{"name": "x", "wifi": [{"ssid": "a", "security": {"type": "enterprise", "eap": {"method": "leap"}}}]}"#, Format::Json).unwrap_err();
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].path, "wifi[0].security.eap.method", "{e:?}");
    assert!(e[0].message.contains("leap"), "{e:?}");
    assert_eq!(e[0].allowed.as_deref(), Some("peap, ttls, tls"), "{e:?}");
    let e = parse("name: x\nwifi:\n  - ssid: a\n    security: {type: enterprise, eap: {method: ttls, inner: chap}}\n", Format::Yaml).unwrap_err();
    assert_eq!(e[0].path, "wifi[0].security.eap.inner", "{e:?}");
    assert_eq!(e[0].allowed.as_deref(), Some("mschapv2 or pap"), "{e:?}");
    let e = parse(
        "name = \"x\"\n[[wifi]]\nssid = \"a\"\nsecurity = { type = \"wep\" }\n",
        Format::Toml,
    )
    .unwrap_err();
    assert_eq!(e[0].path, "wifi[0].security.type", "{e:?}");
    assert_eq!(e[0].allowed.as_deref(), Some("enterprise or psk"), "{e:?}");

    let e = parse(
        "name = \"x\"\n[passcode]\nrequired = true\nmin_lenght = 6\n",
        Format::Toml,
    )
    .unwrap_err();
    assert_eq!(e[0].path, "passcode.min_lenght", "{e:?}");
    assert!(
        e[0].message.contains("min_lenght") && e[0].message.contains("line 4"),
        "{e:?}"
    );
    assert!(
        e[0].allowed.as_deref().unwrap().contains("min_length"),
        "{e:?}"
    );

    let e = parse("name: x\nwifi:\n  - ssid: a\n", Format::Yaml).unwrap_err();
    assert_eq!(e[0].path, "wifi[0]", "{e:?}");
    assert!(e[0].message.contains("missing field `security`"), "{e:?}");

    let e = parse(
        "name: x\nmail:\n  - {name: a, kind: pop3, host: h}\n",
        Format::Yaml,
    )
    .unwrap_err();
    assert_eq!(e[0].path, "mail[0].kind", "{e:?}");
    assert!(e[0].message.starts_with("unknown variant `pop3`"), "{e:?}");
    assert_eq!(e[0].allowed.as_deref(), Some("exchange or imap"), "{e:?}");

    let e = parse(
        r#"{"name": "x", "passcode": {"required": "yes"}}"#,
        Format::Json,
    )
    .unwrap_err();
    assert_eq!(e[0].path, "passcode.required", "{e:?}");

    // A key that is not in the model at all, at the top.
    let e = parse(r#"{"name": "x", "vpn": {}}"#, Format::Json).unwrap_err();
    assert_eq!(e[0].path, "vpn", "{e:?}");
    assert!(e[0].message.contains("unknown field `vpn`"), "{e:?}");
    // Unknown keys inside a tagged section are refused too.
    let e = parse(
        "name: x\nwifi:\n  - ssid: a\n    security: {type: psk, passphrase: abcdefgh, psk_hint: 1}\n",
        Format::Yaml,
    )
    .unwrap_err();
    assert_eq!(e[0].path, "wifi[0].security.psk_hint", "{e:?}");
    assert!(
        e[0].allowed.as_deref().unwrap().contains("passphrase"),
        "{e:?}"
    );
    let e = parse("name: x\nwifi:\n  - ssid: a\n    security: {type: psk, passphrase: abcdefgh, eap: {method: tls}}\n", Format::Yaml).unwrap_err();
    assert_eq!(e[0].path, "wifi[0].security.eap", "{e:?}");
    assert_eq!(
        e[0].allowed.as_deref(),
        Some("type, wpa3, passphrase"),
        "{e:?}"
    );
    let e = parse(
        "name: x\nwifi:\n  - ssid: a\n    security: {type: enterprise, eap: {method: peap}}\n",
        Format::Yaml,
    )
    .unwrap_err();
    assert_eq!(e[0].path, "wifi[0].security.eap", "{e:?}");
    assert!(e[0].message.contains("missing field `inner`"), "{e:?}");
    let e = parse(
        r#"{"name": "x", "wifi": [{"ssid": "a", "security": {"type": "enterprise", "eap": {"method": "tls", "inner": "pap"}}}]}"#,
        Format::Json,
    )
    .unwrap_err();
    assert_eq!(e[0].path, "wifi[0].security.eap.inner", "{e:?}");
    assert_eq!(
        parse("  ", Format::Toml).unwrap_err()[0].message,
        "the policy is empty"
    );
    assert!(
        parse(r#"{"name": "x"} {"#, Format::Json).is_err(),
        "trailing text is refused"
    );
}

// ---------------------------------------------------------------- validation

#[test]
fn validation_reports_every_error_with_path_and_allowed_values() {
    let mut doc = rich();
    doc.name = "Town Hall / staff".into();
    let p = doc.passcode.as_mut().unwrap();
    p.min_length = Some(3);
    p.auto_lock_minutes = Some(7);
    p.max_failed_attempts = Some(12);
    p.history = Some(0);
    p.alphanumeric = false; // min_complex_chars = 1 needs letters
    doc.wifi[0].ssid = "x".repeat(33);
    doc.wifi[1].ssid = "TownHall-Devices".into(); // duplicate of wifi[2]
    if let WifiSecurity::Enterprise {
        eap,
        radius_ca_certificates,
        radius_server_names,
        ..
    } = &mut doc.wifi[0].security
    {
        *eap = Eap::Peap { inner: Inner::Pap };
        radius_ca_certificates.push("Nope CA".into());
        radius_server_names.push("https://radius".into());
    }
    doc.wifi.push(WifiNetwork {
        ssid: "Guest".into(),
        hidden: false,
        auto_join: true,
        security: WifiSecurity::Psk {
            wpa3: false,
            passphrase: "short".into(),
        },
    });
    doc.mail[0].email_address = "{{user.mail}}".into();
    doc.mail[0].smtp_host = Some("smtp.town.example".into());
    doc.mail[1].host = "imap.town.example:993".into();
    doc.mail[1].port = Some(0);
    doc.mail[1].smtp_host = None;
    doc.certificates[1].pem =
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n".into();
    doc.certificates.push(cert("RADIUS CA", RADIUS_CA));

    let errors = validate(&doc).unwrap_err();
    let got = paths(&errors);
    for want in [
        "name",
        "passcode.min_length",
        "passcode.history",
        "passcode.max_failed_attempts",
        "passcode.auto_lock_minutes",
        "passcode.min_complex_chars",
        "wifi[0].ssid",
        "wifi[0].security.eap.inner",
        "wifi[0].security.radius_server_names[1]",
        "wifi[0].security.radius_ca_certificates[1]",
        "wifi[2].ssid",
        "wifi[3].security.passphrase",
        "mail[0].email_address",
        "mail[0].smtp_host",
        "mail[1].host",
        "mail[1].port",
        "mail[1].smtp_host",
        "certificates[1].pem",
        "certificates[2].name",
    ] {
        assert!(got.contains(&want), "no error at {want}: {errors:#?}");
    }
    assert_eq!(errors.len(), 19, "{errors:#?}");
    let find = |p: &str| errors.iter().find(|e| e.path == p).unwrap();
    assert_eq!(
        find("passcode.min_length")
            .allowed
            .as_deref()
            .unwrap()
            .split(' ')
            .take(3)
            .collect::<Vec<_>>(),
        ["4", "to", "16"]
    );
    assert!(find("passcode.auto_lock_minutes")
        .allowed
        .as_deref()
        .unwrap()
        .starts_with("1, 2, 3, 4, 5, 10 or 15"));
    assert!(find("wifi[0].security.radius_ca_certificates[1]")
        .allowed
        .as_deref()
        .unwrap()
        .contains("\"RADIUS CA\", \"Mail CA\""));
    assert!(
        find("certificates[1].pem").message.contains("PRIVATE KEY"),
        "{errors:#?}"
    );
    assert!(find("mail[1].host").message.contains("port"), "{errors:#?}");
    assert!(find("mail[0].email_address")
        .message
        .contains("unknown variable \"user.mail\""));
    let shown = find("wifi[0].ssid").to_string();
    assert!(
        shown.starts_with("wifi[0].ssid: is 33 bytes long (allowed: 1 to 32 bytes"),
        "{shown}"
    );
}

#[test]
fn certificates_must_be_certificates() {
    assert!(pem_certificate(RADIUS_CA).is_ok());
    let cases = [
        ("", "no \"-----BEGIN CERTIFICATE-----\""),
        ("hello", "not PEM"),
        (
            "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n",
            "base64",
        ),
        (
            "-----BEGIN CERTIFICATE-----\nMAMCAQE=\n-----END CERTIFICATE-----\n",
            "not an X.509 certificate",
        ),
        ("-----BEGIN CERTIFICATE-----\nMIIB\n", "no \"-----END"),
    ];
    for (pem, want) in cases {
        let e = pem_certificate(pem).unwrap_err();
        assert!(e.contains(want), "{pem:?}: {e}");
    }
    let two = format!("{RADIUS_CA}{MAIL_CA}");
    assert!(pem_certificate(&two).unwrap_err().contains("2 PEM blocks"));
    // A truncated certificate (one byte short) is refused.
    let der = pem_certificate(RADIUS_CA).unwrap();
    use base64::Engine;
    let cut = base64::engine::general_purpose::STANDARD.encode(&der[..der.len() - 1]);
    let pem = format!("-----BEGIN CERTIFICATE-----\n{cut}\n-----END CERTIFICATE-----\n");
    assert!(pem_certificate(&pem).is_err());
}

#[test]
fn enterprise_networks_need_server_names_and_a_ca() {
    let mut doc = minimal("Wi-Fi only");
    doc.wifi.push(WifiNetwork {
        ssid: "TownHall".into(),
        hidden: false,
        auto_join: true,
        security: WifiSecurity::Enterprise {
            wpa3: false,
            eap: Eap::Ttls {
                inner: Inner::Mschapv2,
            },
            radius_server_names: vec![],
            radius_ca_certificates: vec![],
        },
    });
    let errors = validate(&doc).unwrap_err();
    assert_eq!(
        paths(&errors),
        [
            "wifi[0].security.radius_server_names",
            "wifi[0].security.radius_ca_certificates"
        ]
    );
    assert!(errors[1]
        .allowed
        .as_deref()
        .unwrap()
        .contains("the policy has none"));
}

// ---------------------------------------------------------------- office rules and baseline

#[test]
fn the_baseline_is_valid_follows_the_office_rules_and_round_trips() {
    let b = baseline();
    validate(&b).unwrap();
    assert_eq!(office_findings(&b), vec![]);
    assert_eq!(parse(&baseline_toml(), Format::Toml).unwrap(), b);
    let p = b.passcode.as_ref().unwrap();
    assert!(p.required && !p.allow_simple);
    assert!(p.auto_lock_minutes.unwrap() <= 5 && p.min_length.unwrap() >= 6);
    // It compiles for both platforms, without notes.
    let apple = compile_apple(&b, None, &ctx()).unwrap();
    assert!(apple.notes.is_empty(), "{:?}", apple.notes);
    let android = compile_android(&[&b], None).unwrap();
    assert!(android.notes.is_empty(), "{:?}", android.notes);
    assert_eq!(android.policy["maximumTimeToLock"], "300000");
    assert_eq!(
        android.policy["passwordPolicies"][0]["passwordQuality"],
        "NUMERIC_COMPLEX"
    );
    assert_eq!(
        android.policy["passwordPolicies"][0]["passwordMinimumLength"],
        6
    );
    assert_eq!(
        android.policy["passwordPolicies"][0]["maximumFailedPasswordsForWipe"],
        10
    );
}

#[test]
fn office_findings_flag_psk_and_weak_passcodes() {
    let mut doc = rich();
    assert_eq!(
        office_findings(&doc),
        vec![],
        "the rich example follows the rules"
    );
    doc.wifi.push(WifiNetwork {
        ssid: "Guest".into(),
        hidden: false,
        auto_join: true,
        security: WifiSecurity::Psk {
            wpa3: true,
            passphrase: "correct horse".into(),
        },
    });
    doc.mail[1].ssl_required = false;
    let p = doc.passcode.as_mut().unwrap();
    p.auto_lock_minutes = Some(10);
    p.allow_simple = true;
    p.min_length = Some(4);
    p.max_failed_attempts = Some(11);
    p.grace_period_minutes = Some(5);
    validate(&doc).unwrap();
    let f = office_findings(&doc);
    let rules: Vec<(&str, &str)> = f
        .iter()
        .map(|f| (f.rule.as_str(), f.path.as_str()))
        .collect();
    assert_eq!(
        rules,
        [
            ("passcode.auto_lock", "passcode.auto_lock_minutes"),
            ("passcode.grace_period", "passcode.grace_period_minutes"),
            ("passcode.simple", "passcode.allow_simple"),
            ("passcode.min_length", "passcode.min_length"),
            ("passcode.failed_attempts", "passcode.max_failed_attempts"),
            ("wifi.psk", "wifi[3].security"),
            ("mail.ssl", "mail[1].ssl_required"),
        ]
    );
    let psk = &f[5];
    assert!(
        psk.message.contains("\"Guest\"") && psk.message.contains("pre-shared keys"),
        "{psk:?}"
    );
    for finding in &f {
        assert!(RULES.contains(&finding.rule.as_str()), "{finding:?}");
        assert!(
            finding.message.contains("policy: \""),
            "cites the requirement: {finding:?}"
        );
    }

    // No passcode section: nothing is enforced, every passcode rule is broken.
    let none = minimal("Nothing");
    let rules: Vec<String> = office_findings(&none).into_iter().map(|f| f.rule).collect();
    assert_eq!(
        rules,
        [
            "passcode.required",
            "passcode.auto_lock",
            "passcode.simple",
            "passcode.min_length",
            "passcode.failed_attempts"
        ]
    );
}

// ---------------------------------------------------------------- Apple

#[test]
fn apple_profile_has_every_payload_with_the_users_attributes() {
    let doc = rich();
    let out = compile_apple(&doc, Some(&jan()), &ctx()).unwrap();
    assert_eq!(out.identifier, "org.example.mdm.policy.p-17");
    let top = plist_dict(&out.plist);
    assert_eq!(top["PayloadType"].as_string(), Some("Configuration"));
    assert_eq!(
        top["PayloadDisplayName"].as_string(),
        Some("Town Hall staff")
    );
    assert_eq!(
        top["PayloadIdentifier"].as_string(),
        Some("org.example.mdm.policy.p-17")
    );
    assert_eq!(top["PayloadRemovalDisallowed"].as_boolean(), Some(false));
    let all = payloads(&top);
    let types: Vec<&str> = all
        .iter()
        .map(|p| p["PayloadType"].as_string().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "com.apple.security.root",
            "com.apple.security.root",
            "com.apple.security.scep",
            "com.apple.mobiledevice.passwordpolicy",
            "com.apple.wifi.managed",
            "com.apple.wifi.managed",
            "com.apple.wifi.managed",
            "com.apple.eas.account",
            "com.apple.mail.managed",
        ]
    );
    let roots = payload_of(&all, "com.apple.security.root");
    assert_eq!(
        roots[0]["PayloadContent"].as_data().unwrap(),
        pem_certificate(RADIUS_CA).unwrap()
    );
    let radius_uuid = roots[0]["PayloadUUID"].as_string().unwrap();
    let scep = payload_of(&all, "com.apple.security.scep")[0];
    let scep_uuid = scep["PayloadUUID"].as_string().unwrap();
    let sc = scep["PayloadContent"].as_dictionary().unwrap();
    assert_eq!(sc["URL"].as_string(), Some("https://mdm.town.example/scep"));
    assert_eq!(sc["Keysize"].as_signed_integer(), Some(2048));

    let pass = payload_of(&all, "com.apple.mobiledevice.passwordpolicy")[0];
    for (key, want) in [
        ("minLength", 8),
        ("minComplexChars", 1),
        ("maxPINAgeInDays", 90),
        ("pinHistory", 5),
        ("maxFailedAttempts", 10),
        ("maxInactivity", 2),
        ("maxGracePeriod", 0),
    ] {
        assert_eq!(pass[key].as_signed_integer(), Some(want), "{key}");
    }
    assert_eq!(pass["requireAlphanumeric"].as_boolean(), Some(true));
    assert_eq!(pass["allowSimple"].as_boolean(), Some(false));
    assert_eq!(pass["forcePIN"].as_boolean(), Some(true));

    let wifi = payload_of(&all, "com.apple.wifi.managed");
    let eap = |i: usize| wifi[i]["EAPClientConfiguration"].as_dictionary().unwrap();
    let types = |i: usize| {
        eap(i)["AcceptEAPTypes"].as_array().unwrap()[0]
            .as_signed_integer()
            .unwrap()
    };
    assert_eq!((types(0), types(1), types(2)), (25, 21, 13));
    assert_eq!(
        eap(0)["UserName"].as_string(),
        Some("jan.kowalski@town.example")
    );
    assert!(
        !eap(0).contains_key("UserPassword"),
        "the device asks for the password"
    );
    assert!(!wifi[0].contains_key("Password"));
    assert_eq!(eap(1)["TTLSInnerAuthentication"].as_string(), Some("PAP"));
    assert_eq!(wifi[1]["EncryptionType"].as_string(), Some("WPA3"));
    assert_eq!(wifi[1]["HIDDEN_NETWORK"].as_boolean(), Some(true));
    assert_eq!(wifi[1]["AutoJoin"].as_boolean(), Some(false));
    assert_eq!(wifi[0]["EncryptionType"].as_string(), Some("WPA2"));
    assert_eq!(
        eap(0)["PayloadCertificateAnchorUUID"].as_array().unwrap(),
        &vec![Plist::from(radius_uuid)]
    );
    assert_eq!(
        eap(0)["TLSTrustedServerNames"].as_array().unwrap(),
        &vec![Plist::from("radius.town.example")]
    );
    assert_eq!(
        wifi[2]["PayloadCertificateUUID"].as_string(),
        Some(scep_uuid)
    );

    let eas = payload_of(&all, "com.apple.eas.account")[0];
    assert_eq!(
        eas["EmailAddress"].as_string(),
        Some("jan.kowalski@mail.town.example")
    );
    assert_eq!(
        eas["UserName"].as_string(),
        Some("jan.kowalski@town.example")
    );
    assert_eq!(eas["SSL"].as_boolean(), Some(true));
    assert!(!eas.contains_key("Password"));
    let imap = payload_of(&all, "com.apple.mail.managed")[0];
    assert_eq!(
        imap["EmailAccountName"].as_string(),
        Some("Jan Kowalski (Registry)")
    );
    assert_eq!(
        imap["IncomingMailServerUsername"].as_string(),
        Some("jan.kowalski")
    );
    assert_eq!(
        imap["IncomingMailServerPortNumber"].as_signed_integer(),
        Some(993)
    );
    assert_eq!(
        imap["OutgoingMailServerHostName"].as_string(),
        Some("smtp.town.example")
    );
    assert_eq!(imap["OutgoingMailServerUseSSL"].as_boolean(), Some(true));

    // Everything in the rich example has a place on Apple devices.
    assert_eq!(out.notes, vec![]);
    // Every UUID differs.
    let mut uuids: Vec<&str> = all
        .iter()
        .map(|p| p["PayloadUUID"].as_string().unwrap())
        .collect();
    uuids.push(top["PayloadUUID"].as_string().unwrap());
    let n = uuids.len();
    uuids.sort();
    uuids.dedup();
    assert_eq!(uuids.len(), n);
}

#[test]
fn apple_output_is_deterministic() {
    let doc = rich();
    let a = compile_apple(&doc, Some(&jan()), &ctx()).unwrap();
    let b = compile_apple(&doc, Some(&jan()), &ctx()).unwrap();
    assert_eq!(a.plist, b.plist, "same inputs, same bytes");

    let mut changed = doc.clone();
    changed.passcode.as_mut().unwrap().auto_lock_minutes = Some(3);
    let c = compile_apple(&changed, Some(&jan()), &ctx()).unwrap();
    assert_ne!(a.plist, c.plist, "a changed field changes the bytes");

    let mut other_user = jan();
    other_user.upn = "anna.nowak@town.example".into();
    let d = compile_apple(&doc, Some(&other_user), &ctx()).unwrap();
    assert_ne!(
        a.plist, d.plist,
        "a changed user attribute changes the bytes"
    );

    // Another device: other PayloadUUIDs, same identifiers.
    let mut other = ctx();
    other.device_key = "d-43".into();
    let e = compile_apple(&doc, Some(&jan()), &other).unwrap();
    let (ta, te) = (plist_dict(&a.plist), plist_dict(&e.plist));
    assert_ne!(ta["PayloadUUID"], te["PayloadUUID"]);
    assert_eq!(ta["PayloadIdentifier"], te["PayloadIdentifier"]);
    assert_eq!(a.identifier, e.identifier);
}

#[test]
fn apple_compile_errors_name_the_field() {
    let doc = rich();
    // A device without a user cannot fill the domain identity nor the mail templates.
    let errors = compile_apple(&doc, None, &ctx()).unwrap_err();
    assert_eq!(
        paths(&errors),
        [
            "wifi[0].security.eap",
            "wifi[1].security.eap",
            "mail[0].email_address",
            "mail[0].username",
            "mail[1].email_address",
            "mail[1].username",
            "mail[1].display_name",
        ]
    );
    assert!(errors[2].message.contains("{{user.email}}"), "{errors:?}");
    // EAP-TLS needs the SCEP CA.
    let mut no_scep = ctx();
    no_scep.scep = None;
    let errors = compile_apple(&doc, Some(&jan()), &no_scep).unwrap_err();
    assert_eq!(paths(&errors), ["wifi[2].security.eap"]);
    assert!(errors[0].message.contains("SCEP"));
    // A department the user does not have.
    let mut no_dept = jan();
    no_dept.department = None;
    let errors = compile_apple(&doc, Some(&no_dept), &ctx()).unwrap_err();
    assert_eq!(paths(&errors), ["mail[1].display_name"]);
    // Invalid documents and contexts are refused before anything is built.
    let mut bad = doc.clone();
    bad.name.clear();
    let mut bad_ctx = ctx();
    bad_ctx.policy_key = "a b".into();
    bad_ctx.scep.as_mut().unwrap().key_size = 3000;
    let errors = compile_apple(&bad, Some(&jan()), &bad_ctx).unwrap_err();
    assert_eq!(
        paths(&errors),
        ["name", "context.policy_key", "context.scep.key_size"]
    );
}

#[test]
fn apple_notes_what_it_cannot_express() {
    let mut doc = minimal("Mail");
    doc.mail.push(MailAccount {
        name: "Exchange".into(),
        kind: MailKind::Exchange,
        email_address: "{{user.email}}".into(),
        username: "TOWN\\{{user.username}}".into(),
        display_name: "{{user.display_name}}, Town Hall".into(),
        host: "mail.town.example".into(),
        port: Some(8443),
        smtp_host: None,
        smtp_port: None,
        ssl_required: true,
    });
    let out = compile_apple(&doc, Some(&jan()), &ctx()).unwrap();
    let notes: Vec<(&str, &str)> = out
        .notes
        .iter()
        .map(|n| (n.platform.as_str(), n.path.as_str()))
        .collect();
    assert_eq!(
        notes,
        [("apple", "mail[0].port"), ("apple", "mail[0].display_name")]
    );
    let eas = payload_of(&payloads(&plist_dict(&out.plist)), "com.apple.eas.account")[0].clone();
    assert_eq!(eas["UserName"].as_string(), Some("TOWN\\jan.kowalski"));

    let empty = compile_apple(&minimal("Empty"), None, &ctx()).unwrap();
    assert_eq!(empty.notes.len(), 1);
}

// ---------------------------------------------------------------- Android

#[test]
fn android_policy_from_the_rich_example() {
    let doc = rich();
    let out = compile_android(&[&doc], Some(&jan())).unwrap();
    let p = &out.policy;
    let pw = &p["passwordPolicies"][0];
    assert_eq!(pw["passwordScope"], "SCOPE_DEVICE");
    assert_eq!(pw["passwordQuality"], "COMPLEX");
    assert_eq!(pw["passwordMinimumLength"], 8);
    assert_eq!(pw["passwordMinimumSymbols"], 1);
    assert_eq!(pw["passwordExpirationTimeout"], "7776000s");
    assert_eq!(pw["passwordHistoryLength"], 5);
    assert_eq!(pw["maximumFailedPasswordsForWipe"], 10);
    assert_eq!(p["maximumTimeToLock"], "120000");

    let onc = &p["openNetworkConfiguration"];
    let nets = onc["NetworkConfigurations"].as_array().unwrap();
    assert_eq!(nets.len(), 2, "EAP-TLS is not sent to Android");
    let certs = onc["Certificates"].as_array().unwrap();
    assert_eq!(certs.len(), 1, "only the certificate a network names");
    assert_eq!(certs[0]["Type"], "Authority");
    let eap = &nets[0]["WiFi"]["EAP"];
    assert_eq!(nets[0]["WiFi"]["Security"], "WPA-EAP");
    assert_eq!(eap["Outer"], "PEAP");
    assert_eq!(eap["Inner"], "MSCHAPv2");
    assert_eq!(eap["Identity"], "jan.kowalski@town.example");
    assert_eq!(
        eap["DomainSuffixMatch"],
        serde_json::json!(["radius.town.example"])
    );
    assert_eq!(eap["ServerCARefs"], serde_json::json!([certs[0]["GUID"]]));
    assert!(eap.get("Password").is_none());
    assert_eq!(nets[1]["WiFi"]["EAP"]["Outer"], "EAP-TTLS");
    assert_eq!(nets[1]["WiFi"]["EAP"]["Inner"], "PAP");
    assert_eq!(
        nets[1]["WiFi"]["EAP"]["DomainSuffixMatch"],
        serde_json::json!(["radius.town.example"])
    );
    assert_eq!(nets[1]["WiFi"]["HiddenSSID"], true);
    assert_eq!(nets[1]["WiFi"]["AutoConnect"], false);

    let apps = p["applications"].as_array().unwrap();
    assert_eq!(apps.len(), 1);
    assert_eq!(apps[0]["packageName"], GMAIL_PACKAGE);
    let mc = &apps[0]["managedConfiguration"];
    assert_eq!(mc["email_address"], "jan.kowalski@mail.town.example");
    assert_eq!(mc["exchange_host"], "outlook.office365.com");
    assert_eq!(mc["exchange_username"], "jan.kowalski@town.example");
    assert_eq!(mc["exchange_ssl_required"], true);

    // What Android cannot express is reported, each at its path.
    let notes: Vec<&str> = out.notes.iter().map(|n| n.path.as_str()).collect();
    assert_eq!(
        notes,
        [
            "passcode.allow_simple",
            "wifi[1].security.radius_server_names[0]",
            "wifi[1].security.wpa3",
            "wifi[2].security.eap",
            "certificates[0]",
            "certificates[1]",
            "mail[1]",
        ],
        "{:#?}",
        out.notes
    );
    assert!(out.notes.iter().all(|n| n.platform == "android"));
    assert!(out.notes[3].message.contains("EAP-TLS"));
    assert!(out.notes[6].message.contains("IMAP"));

    // Deterministic too.
    assert_eq!(compile_android(&[&doc], Some(&jan())).unwrap(), out);
}

#[test]
fn android_notes_grace_period_and_optional_passcode() {
    let mut doc = baseline();
    doc.passcode.as_mut().unwrap().grace_period_minutes = Some(15);
    let out = compile_android(&[&doc], None).unwrap();
    assert_eq!(out.notes.len(), 1);
    assert_eq!(out.notes[0].path, "passcode.grace_period_minutes");

    doc.passcode.as_mut().unwrap().required = false;
    doc.passcode.as_mut().unwrap().grace_period_minutes = None;
    let out = compile_android(&[&doc], None).unwrap();
    assert!(out.policy.get("passwordPolicies").is_none());
    assert_eq!(out.policy["maximumTimeToLock"], "300000");
    assert_eq!(out.notes[0].path, "passcode.required");

    let mut simple = baseline();
    simple.passcode.as_mut().unwrap().allow_simple = true;
    let out = compile_android(&[&simple], None).unwrap();
    assert_eq!(
        out.policy["passwordPolicies"][0]["passwordQuality"],
        "NUMERIC"
    );
    simple.passcode.as_mut().unwrap().alphanumeric = true;
    let out = compile_android(&[&simple], None).unwrap();
    assert_eq!(
        out.policy["passwordPolicies"][0]["passwordQuality"],
        "ALPHANUMERIC"
    );
}

#[test]
fn android_merge_follows_precedence() {
    let mut high = minimal("Registry");
    high.passcode = baseline().passcode;
    high.wifi.push(peap("TownHall", "RADIUS CA"));
    high.certificates.push(cert("RADIUS CA", RADIUS_CA));
    high.mail.push(MailAccount {
        name: "Mail".into(),
        kind: MailKind::Exchange,
        email_address: "{{user.email}}".into(),
        username: "{{user.upn}}".into(),
        display_name: "{{user.display_name}}".into(),
        host: "eas.town.example".into(),
        port: None,
        smtp_host: None,
        smtp_port: None,
        ssl_required: true,
    });

    let mut low = minimal("All staff");
    let mut weaker = baseline().passcode.unwrap();
    weaker.auto_lock_minutes = Some(1);
    low.passcode = Some(weaker);
    let mut hidden = peap("TownHall", "RADIUS CA");
    hidden.hidden = true;
    low.wifi.push(hidden);
    low.wifi.push(peap("Library", "RADIUS CA"));
    // Same name, other certificate: the high policy's wins, for the low one's networks too.
    low.certificates.push(cert("RADIUS CA", MAIL_CA));
    let mut other_mail = high.mail[0].clone();
    other_mail.host = "old-eas.town.example".into();
    other_mail.port = Some(8443);
    low.mail.push(other_mail);

    let out = compile_android(&[&high, &low], Some(&jan())).unwrap();
    let p = &out.policy;
    assert_eq!(
        p["maximumTimeToLock"], "300000",
        "the first policy's passcode"
    );
    let nets = p["openNetworkConfiguration"]["NetworkConfigurations"]
        .as_array()
        .unwrap();
    let ssids: Vec<&str> = nets.iter().map(|n| n["Name"].as_str().unwrap()).collect();
    assert_eq!(ssids, ["TownHall", "Library"]);
    assert_eq!(
        nets[0]["WiFi"]["HiddenSSID"], false,
        "the first policy's network"
    );
    let certs = p["openNetworkConfiguration"]["Certificates"]
        .as_array()
        .unwrap();
    assert_eq!(certs.len(), 1);
    use base64::Engine;
    let der = pem_certificate(RADIUS_CA).unwrap();
    assert_eq!(
        certs[0]["X509"],
        base64::engine::general_purpose::STANDARD.encode(der)
    );
    assert_eq!(nets[1]["WiFi"]["EAP"]["ServerCARefs"][0], certs[0]["GUID"]);
    assert_eq!(
        p["applications"][0]["managedConfiguration"]["exchange_host"],
        "eas.town.example"
    );

    let overridden: Vec<&str> = out
        .notes
        .iter()
        .filter(|n| n.message.contains("overridden"))
        .map(|n| n.path.as_str())
        .collect();
    assert_eq!(
        overridden,
        [
            "policies[1].passcode",
            "policies[1].wifi[0]",
            "policies[1].mail[0]",
            "policies[1].certificates[0]"
        ]
    );
    let wifi_note = out
        .notes
        .iter()
        .find(|n| n.path == "policies[1].wifi[0]")
        .unwrap();
    assert!(
        wifi_note.message.contains("policy \"All staff\"")
            && wifi_note.message.contains("policy \"Registry\""),
        "{wifi_note:?}"
    );

    // Equal entries are not overridden, only shared: no note.
    let out = compile_android(&[&high, &high.clone()], Some(&jan())).unwrap();
    assert!(
        out.notes.iter().all(|n| !n.message.contains("overridden")),
        "{:?}",
        out.notes
    );

    // Errors of several policies say which one.
    let mut broken = low.clone();
    broken.wifi[1].ssid.clear();
    let errors = compile_android(&[&high, &broken], Some(&jan())).unwrap_err();
    assert_eq!(paths(&errors), ["policies[1].wifi[1].ssid"]);
    // No user: the domain identity cannot be filled.
    let errors = compile_android(&[&high], None).unwrap_err();
    assert_eq!(
        paths(&errors),
        [
            "wifi[0].security.eap",
            "mail[0].email_address",
            "mail[0].username"
        ]
    );
    // Nothing in, nothing out.
    assert_eq!(
        compile_android(&[], None).unwrap().policy,
        serde_json::json!({})
    );
}

// ---------------------------------------------------------------- artifacts

/// Writes the rich example's Apple profile and Android policy where
/// `mdm-schema-check --platform iOS $MDM_ARTIFACTS_DIR/apple/iOS/policy-example.mobileconfig`
/// and `mdm-schema-check --kind android-policy $MDM_ARTIFACTS_DIR/android/policy-model-example.json`
/// find them (and a second pair, `-psk`, with what the rich example leaves out).
#[test]
fn writes_artifacts_for_schema_check() {
    let root = std::env::var_os("MDM_ARTIFACTS_DIR").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/mdm-artifacts"),
        PathBuf::from,
    );
    let doc = rich();
    let apple = compile_apple(&doc, Some(&jan()), &ctx()).unwrap();
    let dir = root.join("apple").join("iOS");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("policy-example.mobileconfig"), &apple.plist).unwrap();

    let android = compile_android(&[&doc], Some(&jan())).unwrap();
    let dir = root.join("android");
    std::fs::create_dir_all(&dir).unwrap();
    let text = serde_json::to_string_pretty(&android.policy).unwrap();
    std::fs::write(dir.join("policy-model-example.json"), text + "\n").unwrap();
    let back: Json =
        serde_json::from_slice(&std::fs::read(dir.join("policy-model-example.json")).unwrap())
            .unwrap();
    assert_eq!(back, android.policy);

    // The rest of what the model can produce: a PSK network (flagged, but written),
    // an IMAP-only policy with a simple numeric PIN.
    let mut other = minimal("Guest Wi-Fi and IMAP");
    other.passcode = Some(Passcode {
        allow_simple: true,
        min_length: Some(4),
        ..baseline().passcode.unwrap()
    });
    other.wifi.push(WifiNetwork {
        ssid: "Guest".into(),
        hidden: false,
        auto_join: true,
        security: WifiSecurity::Psk {
            wpa3: true,
            passphrase: "correct horse battery".into(),
        },
    });
    other.mail.push(rich().mail[1].clone());
    let apple = compile_apple(&other, Some(&jan()), &ctx()).unwrap();
    std::fs::write(
        root.join("apple/iOS/policy-example-psk.mobileconfig"),
        &apple.plist,
    )
    .unwrap();
    let android = compile_android(&[&other], Some(&jan())).unwrap();
    let text = serde_json::to_string_pretty(&android.policy).unwrap();
    std::fs::write(dir.join("policy-model-example-psk.json"), text + "\n").unwrap();
}
