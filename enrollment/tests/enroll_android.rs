//! Android provisioning payload: Google's QR JSON (an AMAPI enrollment token's
//! `qrCode`) with our extras merged in: exact keys and JSON, validation, and a real
//! QR round trip through zbarimg.

mod enroll_support;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use enroll_support::{zbar_decode_png, zbarimg_available};
use enrollment::android::{
    merge_extras, qr_text, validate_extras, AndroidError, EapConfig, ProvisioningExtras, WifiConfig,
};
use enrollment::qr;
use openssl::asn1::Asn1Time;
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkcs12::Pkcs12;
use openssl::pkey::PKey;
use openssl::rsa::Rsa;
use openssl::x509::{X509Builder, X509NameBuilder, X509};
use serde_json::{json, Value};

/// An enrollment token's `qrCode` as Google gives it: Android Device Policy and the
/// token (the shape AMAPI documents).
fn google() -> Value {
    json!({
        "android.app.extra.PROVISIONING_DEVICE_ADMIN_COMPONENT_NAME": "com.google.android.apps.work.clouddpc/.receivers.CloudDeviceAdminReceiver",
        "android.app.extra.PROVISIONING_DEVICE_ADMIN_SIGNATURE_CHECKSUM": "I5YvS0O5hXY46mb01BlRjq4oJJGs2kuUcHvVkAPEXlg",
        "android.app.extra.PROVISIONING_DEVICE_ADMIN_PACKAGE_DOWNLOAD_LOCATION": "https://play.google.com/managed/downloadManagingApp?identifier=setup",
        "android.app.extra.PROVISIONING_ADMIN_EXTRAS_BUNDLE": {
            "com.google.android.apps.work.clouddpc.EXTRA_ENROLLMENT_TOKEN": "TOKENVALUE7F3B9C"
        }
    })
}

fn payload(extras: &ProvisioningExtras) -> Result<Value, AndroidError> {
    merge_extras(&google().to_string(), extras)
}

/// Google's object with `ours` added.
fn google_with(ours: Value) -> Value {
    let mut v = google();
    for (k, x) in ours.as_object().unwrap() {
        v[k] = x.clone();
    }
    v
}

fn spec() -> ProvisioningExtras {
    ProvisioningExtras::default()
}

fn wpa() -> WifiConfig {
    WifiConfig {
        ssid: "TownHall-Staff".into(),
        hidden: false,
        security_type: "WPA".into(),
        password: Some("correct horse battery".into()),
        eap: None,
    }
}

fn self_signed(cn: &str) -> (X509, PKey<openssl::pkey::Private>) {
    let key = PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap();
    let mut name = X509NameBuilder::new().unwrap();
    name.append_entry_by_nid(Nid::COMMONNAME, cn).unwrap();
    let name = name.build();
    let mut b = X509Builder::new().unwrap();
    b.set_version(2).unwrap();
    b.set_subject_name(&name).unwrap();
    b.set_issuer_name(&name).unwrap();
    b.set_pubkey(&key).unwrap();
    b.set_not_before(&Asn1Time::days_from_now(0).unwrap())
        .unwrap();
    b.set_not_after(&Asn1Time::days_from_now(30).unwrap())
        .unwrap();
    b.sign(&key, MessageDigest::sha256()).unwrap();
    (b.build(), key)
}

fn peap() -> WifiConfig {
    let (ca, _) = self_signed("RADIUS CA");
    WifiConfig {
        ssid: "TownHall-Secure".into(),
        hidden: true,
        security_type: "EAP".into(),
        password: Some("user password".into()),
        eap: Some(EapConfig {
            method: "PEAP".into(),
            phase2_auth: Some("MSCHAPV2".into()),
            identity: Some("jan.kowalski".into()),
            anonymous_identity: Some("anonymous".into()),
            domain: Some("radius.townhall.example".into()),
            ca_certificate: Some(STANDARD.encode(ca.to_der().unwrap())),
            user_certificate: None,
        }),
    }
}

fn eap_tls() -> WifiConfig {
    let (ca, _) = self_signed("RADIUS CA");
    let (cert, key) = self_signed("device-1");
    let p12 = Pkcs12::builder()
        .name("device-1")
        .pkey(&key)
        .cert(&cert)
        .build2("")
        .unwrap();
    WifiConfig {
        ssid: "TownHall-Secure".into(),
        hidden: false,
        security_type: "EAP".into(),
        password: None,
        eap: Some(EapConfig {
            method: "TLS".into(),
            phase2_auth: None,
            identity: Some("device-1".into()),
            anonymous_identity: None,
            domain: Some("radius.townhall.example".into()),
            ca_certificate: Some(STANDARD.encode(ca.to_der().unwrap())),
            user_certificate: Some(STANDARD.encode(p12.to_der().unwrap())),
        }),
    }
}

#[test]
fn minimal_payload_is_exact() {
    // No extras: Google's object, unchanged.
    assert_eq!(payload(&spec()).unwrap(), google());
}

#[test]
fn googles_keys_are_never_overwritten() {
    // Were Google ever to set one of our keys, its value stays.
    let mut g = google();
    g["android.app.extra.PROVISIONING_LOCALE"] = json!("de_DE");
    let mut s = spec();
    s.locale = Some("pl_PL".into());
    s.time_zone = Some("Europe/Warsaw".into());
    let p = merge_extras(&g.to_string(), &s).unwrap();
    assert_eq!(p["android.app.extra.PROVISIONING_LOCALE"], "de_DE");
    assert_eq!(
        p["android.app.extra.PROVISIONING_TIME_ZONE"],
        "Europe/Warsaw"
    );
}

#[test]
fn refuses_what_is_not_googles_provisioning_data() {
    for (qr, words) in [
        ("not json", "not a JSON object"),
        ("[1, 2]", "not a JSON object"),
        (
            r#"{"android.app.extra.PROVISIONING_DEVICE_ADMIN_COMPONENT_NAME": "x/.Y"}"#,
            "no enrollment token",
        ),
    ] {
        match merge_extras(qr, &spec()) {
            Err(e @ AndroidError::Invalid { field, .. }) => {
                assert_eq!(field, "qrCode");
                assert!(e.to_string().contains(words), "{qr}: {e}");
            }
            Ok(v) => panic!("{qr}: expected an error, got {v}"),
        }
    }
}

#[test]
fn full_payload_with_wpa_is_exact() {
    let mut s = spec();
    s.wifi = Some(WifiConfig {
        hidden: true,
        ..wpa()
    });
    s.locale = Some("pl_PL".into());
    s.time_zone = Some("Europe/Warsaw".into());
    s.skip_encryption = true;
    s.leave_all_system_apps_enabled = true;
    let p = payload(&s).unwrap();
    assert_eq!(
        p,
        google_with(json!({
            "android.app.extra.PROVISIONING_WIFI_SSID": "TownHall-Staff",
            "android.app.extra.PROVISIONING_WIFI_HIDDEN": true,
            "android.app.extra.PROVISIONING_WIFI_SECURITY_TYPE": "WPA",
            "android.app.extra.PROVISIONING_WIFI_PASSWORD": "correct horse battery",
            "android.app.extra.PROVISIONING_LOCALE": "pl_PL",
            "android.app.extra.PROVISIONING_TIME_ZONE": "Europe/Warsaw",
            "android.app.extra.PROVISIONING_SKIP_ENCRYPTION": true,
            "android.app.extra.PROVISIONING_LEAVE_ALL_SYSTEM_APPS_ENABLED": true
        }))
    );
}

#[test]
fn eap_payloads() {
    let mut s = spec();
    let w = peap();
    let ca_b64 = w.eap.as_ref().unwrap().ca_certificate.clone().unwrap();
    s.wifi = Some(w);
    let p = payload(&s).unwrap();
    let expect = [
        (
            "android.app.extra.PROVISIONING_WIFI_SSID",
            json!("TownHall-Secure"),
        ),
        ("android.app.extra.PROVISIONING_WIFI_HIDDEN", json!(true)),
        (
            "android.app.extra.PROVISIONING_WIFI_SECURITY_TYPE",
            json!("EAP"),
        ),
        (
            "android.app.extra.PROVISIONING_WIFI_PASSWORD",
            json!("user password"),
        ),
        (
            "android.app.extra.PROVISIONING_WIFI_EAP_METHOD",
            json!("PEAP"),
        ),
        (
            "android.app.extra.PROVISIONING_WIFI_PHASE2_AUTH",
            json!("MSCHAPV2"),
        ),
        (
            "android.app.extra.PROVISIONING_WIFI_IDENTITY",
            json!("jan.kowalski"),
        ),
        (
            "android.app.extra.PROVISIONING_WIFI_ANONYMOUS_IDENTITY",
            json!("anonymous"),
        ),
        (
            "android.app.extra.PROVISIONING_WIFI_DOMAIN",
            json!("radius.townhall.example"),
        ),
        (
            "android.app.extra.PROVISIONING_WIFI_CA_CERTIFICATE",
            json!(ca_b64),
        ),
    ];
    for (key, value) in expect {
        assert_eq!(p[key], value, "{key}");
    }
    assert!(p
        .get("android.app.extra.PROVISIONING_WIFI_USER_CERTIFICATE")
        .is_none());

    s.wifi = Some(eap_tls());
    let p = payload(&s).unwrap();
    assert_eq!(p["android.app.extra.PROVISIONING_WIFI_EAP_METHOD"], "TLS");
    assert!(p["android.app.extra.PROVISIONING_WIFI_USER_CERTIFICATE"].is_string());
    assert!(p
        .get("android.app.extra.PROVISIONING_WIFI_PASSWORD")
        .is_none());
    assert!(p
        .get("android.app.extra.PROVISIONING_WIFI_HIDDEN")
        .is_none());
}

#[test]
fn open_network() {
    let mut s = spec();
    s.wifi = Some(WifiConfig {
        ssid: "Guest".into(),
        hidden: false,
        security_type: "NONE".into(),
        password: None,
        eap: None,
    });
    let p = payload(&s).unwrap();
    assert_eq!(
        p["android.app.extra.PROVISIONING_WIFI_SECURITY_TYPE"],
        "NONE"
    );
    assert!(p
        .get("android.app.extra.PROVISIONING_WIFI_PASSWORD")
        .is_none());
}

fn error_of(change: impl FnOnce(&mut ProvisioningExtras)) -> (&'static str, String) {
    let mut s = spec();
    change(&mut s);
    let merged = payload(&s);
    // validate_extras (checked when an enrollment is created, before Google is
    // asked for a token) refuses the same way.
    assert_eq!(validate_extras(&s).err(), merged.as_ref().err().cloned());
    match merged {
        Err(e @ AndroidError::Invalid { field, .. }) => (field, e.to_string()),
        Ok(v) => panic!("expected an error, got {v}"),
    }
}

fn eap_mut(s: &mut ProvisioningExtras) -> &mut EapConfig {
    s.wifi.as_mut().unwrap().eap.as_mut().unwrap()
}

#[test]
fn rejects_bad_inputs_naming_the_field() {
    type Change = Box<dyn FnOnce(&mut ProvisioningExtras)>;
    let cases: Vec<(&str, &str, Change)> = vec![
        (
            "wifi.ssid",
            "empty",
            Box::new(|s| {
                s.wifi = Some(WifiConfig {
                    ssid: String::new(),
                    ..wpa()
                })
            }),
        ),
        (
            "wifi.ssid",
            "32",
            Box::new(|s| {
                s.wifi = Some(WifiConfig {
                    ssid: "x".repeat(33),
                    ..wpa()
                })
            }),
        ),
        (
            "wifi.security_type",
            "NONE, WPA, WEP, EAP",
            Box::new(|s| {
                s.wifi = Some(WifiConfig {
                    security_type: "wpa".into(),
                    ..wpa()
                })
            }),
        ),
        (
            "wifi.password",
            "required for WPA",
            Box::new(|s| {
                s.wifi = Some(WifiConfig {
                    password: None,
                    ..wpa()
                })
            }),
        ),
        (
            "wifi.password",
            "8 to 63",
            Box::new(|s| {
                s.wifi = Some(WifiConfig {
                    password: Some("short".into()),
                    ..wpa()
                })
            }),
        ),
        (
            "wifi.password",
            "8 to 63",
            Box::new(|s| {
                s.wifi = Some(WifiConfig {
                    password: Some("a".repeat(64)),
                    ..wpa()
                })
            }),
        ),
        (
            "wifi.password",
            "required for WEP",
            Box::new(|s| {
                s.wifi = Some(WifiConfig {
                    security_type: "WEP".into(),
                    password: None,
                    ..wpa()
                })
            }),
        ),
        (
            "wifi.password",
            "open network",
            Box::new(|s| {
                s.wifi = Some(WifiConfig {
                    security_type: "NONE".into(),
                    ..wpa()
                })
            }),
        ),
        (
            "wifi.eap",
            "need security_type EAP",
            Box::new(|s| {
                s.wifi = Some(WifiConfig {
                    eap: peap().eap,
                    ..wpa()
                })
            }),
        ),
        (
            "wifi.eap",
            "required",
            Box::new(|s| {
                s.wifi = Some(WifiConfig {
                    eap: None,
                    ..peap()
                })
            }),
        ),
        (
            "wifi.eap.method",
            "PEAP, TLS",
            Box::new(|s| {
                s.wifi = Some(peap());
                eap_mut(s).method = "LEAP".into();
            }),
        ),
        (
            "wifi.eap.phase2_auth",
            "only PEAP and TTLS",
            Box::new(|s| {
                s.wifi = Some(eap_tls());
                eap_mut(s).phase2_auth = Some("MSCHAPV2".into());
            }),
        ),
        (
            "wifi.eap.phase2_auth",
            "MSCHAPV2",
            Box::new(|s| {
                s.wifi = Some(peap());
                eap_mut(s).phase2_auth = Some("CHAP".into());
            }),
        ),
        (
            "wifi.password",
            "uses no password",
            Box::new(|s| {
                s.wifi = Some(WifiConfig {
                    password: Some("x".into()),
                    ..eap_tls()
                })
            }),
        ),
        (
            "wifi.password",
            "set it",
            Box::new(|s| {
                s.wifi = Some(WifiConfig {
                    password: None,
                    ..peap()
                })
            }),
        ),
        (
            "wifi.eap.identity",
            "user name",
            Box::new(|s| {
                s.wifi = Some(peap());
                eap_mut(s).identity = None;
            }),
        ),
        (
            "wifi.eap.ca_certificate",
            "PEM",
            Box::new(|s| {
                s.wifi = Some(peap());
                eap_mut(s).ca_certificate = Some("-----BEGIN CERTIFICATE-----".into());
            }),
        ),
        (
            "wifi.eap.ca_certificate",
            "one line",
            Box::new(|s| {
                s.wifi = Some(peap());
                eap_mut(s).ca_certificate = Some("TUlJ\nQ0FB".into());
            }),
        ),
        (
            "wifi.eap.ca_certificate",
            "not base64",
            Box::new(|s| {
                s.wifi = Some(peap());
                eap_mut(s).ca_certificate = Some("***".into());
            }),
        ),
        (
            "wifi.eap.ca_certificate",
            "X.509",
            Box::new(|s| {
                s.wifi = Some(peap());
                eap_mut(s).ca_certificate = Some(STANDARD.encode(b"not a certificate"));
            }),
        ),
        (
            "wifi.eap.user_certificate",
            "PKCS#12",
            Box::new(|s| {
                s.wifi = Some(eap_tls());
                eap_mut(s).user_certificate = Some(STANDARD.encode(b"nope"));
            }),
        ),
        (
            "wifi.eap.user_certificate",
            "EAP-TLS needs",
            Box::new(|s| {
                s.wifi = Some(eap_tls());
                eap_mut(s).user_certificate = None;
            }),
        ),
        (
            "locale",
            "pl_PL",
            Box::new(|s| s.locale = Some("pl-PL".into())),
        ),
        (
            "locale",
            "pl_PL",
            Box::new(|s| s.locale = Some("PL_pl".into())),
        ),
        (
            "locale",
            "pl_PL",
            Box::new(|s| s.locale = Some("polish".into())),
        ),
        (
            "time_zone",
            "empty",
            Box::new(|s| s.time_zone = Some(String::new())),
        ),
        (
            "time_zone",
            "Europe/Warsaw",
            Box::new(|s| s.time_zone = Some("Europe Warsaw".into())),
        ),
    ];
    for (field, words, change) in cases {
        let (got, message) = error_of(change);
        assert_eq!(got, field, "{message}");
        assert!(
            message.contains(words),
            "message for {field} should mention {words:?}: {message}"
        );
    }
}

#[test]
fn accepts_the_documented_alternatives() {
    type Change = fn(&mut ProvisioningExtras);
    let cases: [Change; 4] = [
        |s| s.locale = Some("fil_PH".into()),
        |s| s.time_zone = Some("America/Argentina/Buenos_Aires".into()),
        |s| s.time_zone = Some("Etc/GMT+2".into()),
        |s| {
            s.wifi = Some(WifiConfig {
                security_type: "WEP".into(),
                password: Some("0123456789".into()),
                ..wpa()
            })
        },
    ];
    for change in cases {
        let mut s = spec();
        change(&mut s);
        payload(&s).unwrap();
    }
    // TTLS with PAP, PWD without phase 2, SIM with nothing.
    let mut s = spec();
    s.wifi = Some(peap());
    eap_mut(&mut s).method = "TTLS".into();
    eap_mut(&mut s).phase2_auth = Some("PAP".into());
    payload(&s).unwrap();
    eap_mut(&mut s).method = "PWD".into();
    eap_mut(&mut s).phase2_auth = None;
    payload(&s).unwrap();
    s.wifi = Some(WifiConfig {
        password: None,
        eap: Some(EapConfig {
            method: "SIM".into(),
            phase2_auth: None,
            identity: None,
            anonymous_identity: None,
            domain: None,
            ca_certificate: None,
            user_certificate: None,
        }),
        ..peap()
    });
    payload(&s).unwrap();
}

#[test]
fn qr_text_is_ascii_json() {
    let mut s = spec();
    s.wifi = Some(WifiConfig {
        ssid: "Urząd-Gość 📶".into(),
        ..wpa()
    });
    let p = payload(&s).unwrap();
    let text = qr_text(&p);
    assert!(text.is_ascii(), "{text}");
    assert!(
        text.contains(r"Urz\u0105d-Go\u015b\u0107 \ud83d\udcf6"),
        "{text}"
    );
    assert!(!text.contains('\n'));
    let back: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(back, p);
}

/// The whole path a device takes: JSON → QR PNG → camera (zbarimg) → JSON.
#[test]
fn provisioning_qr_decodes_with_zbarimg() {
    if !zbarimg_available("provisioning_qr_decodes_with_zbarimg") {
        return;
    }
    for wifi in [
        Some(WifiConfig {
            ssid: "Urząd-Gość".into(),
            ..wpa()
        }),
        Some(peap()),
    ] {
        let mut s = spec();
        s.wifi = wifi;
        s.locale = Some("pl_PL".into());
        s.time_zone = Some("Europe/Warsaw".into());
        s.leave_all_system_apps_enabled = true;
        let p = payload(&s).unwrap();
        let text = qr_text(&p);
        let png = qr::png(&text, 4).unwrap();
        let decoded = zbar_decode_png(&png, "android.png");
        assert_eq!(decoded, text);
        let back: Value = serde_json::from_str(&decoded).unwrap();
        assert_eq!(back, p);
    }
}

#[test]
fn wifi_reads_from_json() {
    // Optional fields may be omitted or null.
    let w: WifiConfig = serde_json::from_value(json!(
        {"ssid": "Guest", "hidden": false, "security_type": "NONE", "password": null, "eap": null}
    ))
    .unwrap();
    assert_eq!(w.ssid, "Guest");
    assert!(w.password.is_none() && w.eap.is_none());
}
