//! Android Enterprise provisioning by QR code: the JSON object the setup wizard reads
//! after six taps on the welcome screen (Android 7+; the EAP Wi-Fi keys need Android
//! 10+).
//!
//! The object comes from Google's Android Management API (an enrollment token's
//! `qrCode`: Android Device Policy's component, checksum, download location and the
//! token); [`merge_extras`] adds ours to it: the Wi-Fi to join during setup, locale,
//! time zone. There is no agent of ours: Android Device Policy is the device owner.
//!
//! The keys are the `EXTRA_PROVISIONING_*` constants of
//! `android.app.admin.DevicePolicyManager`. The setup wizard turns the JSON into the
//! extras of `ACTION_PROVISION_MANAGED_DEVICE_FROM_TRUSTED_SOURCE`, joins the Wi-Fi,
//! downloads Android Device Policy, checks its signing certificate against the
//! checksum, makes it device owner and hands it `PROVISIONING_ADMIN_EXTRAS_BUNDLE`
//! (Google's enrollment token).
//!
//! Everything is validated here, because a device that cannot use a value shows
//! only "Can't set up device" after a long wait, and has to be factory reset.

use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub const EXTRA_ADMIN_EXTRAS_BUNDLE: &str = "android.app.extra.PROVISIONING_ADMIN_EXTRAS_BUNDLE";
pub const EXTRA_WIFI_SSID: &str = "android.app.extra.PROVISIONING_WIFI_SSID";
pub const EXTRA_WIFI_HIDDEN: &str = "android.app.extra.PROVISIONING_WIFI_HIDDEN";
pub const EXTRA_WIFI_SECURITY_TYPE: &str = "android.app.extra.PROVISIONING_WIFI_SECURITY_TYPE";
pub const EXTRA_WIFI_PASSWORD: &str = "android.app.extra.PROVISIONING_WIFI_PASSWORD";
pub const EXTRA_WIFI_EAP_METHOD: &str = "android.app.extra.PROVISIONING_WIFI_EAP_METHOD";
pub const EXTRA_WIFI_PHASE2_AUTH: &str = "android.app.extra.PROVISIONING_WIFI_PHASE2_AUTH";
pub const EXTRA_WIFI_CA_CERTIFICATE: &str = "android.app.extra.PROVISIONING_WIFI_CA_CERTIFICATE";
pub const EXTRA_WIFI_USER_CERTIFICATE: &str =
    "android.app.extra.PROVISIONING_WIFI_USER_CERTIFICATE";
pub const EXTRA_WIFI_IDENTITY: &str = "android.app.extra.PROVISIONING_WIFI_IDENTITY";
pub const EXTRA_WIFI_ANONYMOUS_IDENTITY: &str =
    "android.app.extra.PROVISIONING_WIFI_ANONYMOUS_IDENTITY";
pub const EXTRA_WIFI_DOMAIN: &str = "android.app.extra.PROVISIONING_WIFI_DOMAIN";
pub const EXTRA_LOCALE: &str = "android.app.extra.PROVISIONING_LOCALE";
pub const EXTRA_TIME_ZONE: &str = "android.app.extra.PROVISIONING_TIME_ZONE";
pub const EXTRA_SKIP_ENCRYPTION: &str = "android.app.extra.PROVISIONING_SKIP_ENCRYPTION";
pub const EXTRA_LEAVE_ALL_SYSTEM_APPS_ENABLED: &str =
    "android.app.extra.PROVISIONING_LEAVE_ALL_SYSTEM_APPS_ENABLED";

/// Wi-Fi security types ManagedProvisioning knows.
pub const SECURITY_TYPES: &[&str] = &["NONE", "WPA", "WEP", "EAP"];
/// EAP methods (`WifiEnterpriseConfig.Eap` names) ManagedProvisioning maps.
pub const EAP_METHODS: &[&str] = &["PEAP", "TLS", "TTLS", "PWD", "SIM", "AKA", "AKA_PRIME"];
/// Phase 2 methods (`WifiEnterpriseConfig.Phase2` names) ManagedProvisioning maps.
pub const PHASE2_METHODS: &[&str] = &[
    "NONE",
    "PAP",
    "MSCHAP",
    "MSCHAPV2",
    "GTC",
    "SIM",
    "AKA",
    "AKA_PRIME",
];

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WifiConfig {
    /// The SSID as the access point broadcasts it, without quotes.
    pub ssid: String,
    pub hidden: bool,
    /// NONE, WPA (WPA/WPA2/WPA3 personal), WEP or EAP (802.1X).
    pub security_type: String,
    /// The pre-shared key for WPA/WEP, or the user's password for PEAP, TTLS and PWD
    /// (ManagedProvisioning uses the same extra for both).
    pub password: Option<String>,
    pub eap: Option<EapConfig>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EapConfig {
    /// PEAP, TLS, TTLS, PWD, SIM, AKA or AKA_PRIME.
    pub method: String,
    /// Inner method for PEAP and TTLS: NONE, PAP, MSCHAP, MSCHAPV2, GTC, SIM, AKA, AKA_PRIME.
    pub phase2_auth: Option<String>,
    pub identity: Option<String>,
    pub anonymous_identity: Option<String>,
    /// Domain suffix the RADIUS server's certificate must match.
    pub domain: Option<String>,
    /// The RADIUS server's CA: base64 of the DER X.509 certificate (PEM without the
    /// header, footer and line breaks).
    pub ca_certificate: Option<String>,
    /// For TLS: base64 of a PKCS#12 file with the key and certificate chain, with an
    /// empty password (ManagedProvisioning opens it with no password).
    pub user_certificate: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AndroidError {
    #[error("{field}: {reason}")]
    Invalid { field: &'static str, reason: String },
}

fn invalid(field: &'static str, reason: impl Into<String>) -> AndroidError {
    AndroidError::Invalid {
        field,
        reason: reason.into(),
    }
}

/// What we add to Google's provisioning object.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProvisioningExtras {
    pub wifi: Option<WifiConfig>,
    /// Device language, "ll_CC" such as "pl_PL".
    pub locale: Option<String>,
    /// Olson time zone such as "Europe/Warsaw".
    pub time_zone: Option<String>,
    pub skip_encryption: bool,
    pub leave_all_system_apps_enabled: bool,
}

/// Checks the extras as [`merge_extras`] would, without a provisioning object.
pub fn validate_extras(extras: &ProvisioningExtras) -> Result<(), AndroidError> {
    if let Some(w) = &extras.wifi {
        wifi(w)?;
    }
    if let Some(l) = &extras.locale {
        locale(l)?;
    }
    if let Some(t) = &extras.time_zone {
        time_zone(t)?;
    }
    Ok(())
}

/// Google's provisioning JSON (an enrollment token's `qrCode`) with our extras added.
/// Google's keys are kept as they are: only keys Google did not set are added, so
/// Android Device Policy, its checksum and the token can never be changed by an
/// option of ours. Booleans appear only when true (false is Android's default), and
/// optional values only when set, which keeps the code as sparse as possible for the
/// cameras of cheap devices.
pub fn merge_extras(google_qr: &str, extras: &ProvisioningExtras) -> Result<Value, AndroidError> {
    validate_extras(extras)?;
    let mut base: Map<String, Value> = match serde_json::from_str(google_qr) {
        Ok(Value::Object(m)) => m,
        _ => {
            return Err(invalid(
                "qrCode",
                "Google's provisioning data is not a JSON object",
            ))
        }
    };
    if !base.contains_key(EXTRA_ADMIN_EXTRAS_BUNDLE) {
        return Err(invalid(
            "qrCode",
            "Google's provisioning data holds no enrollment token",
        ));
    }
    let mut ours = Map::new();
    put_extras(&mut ours, extras);
    for (k, v) in ours {
        base.entry(k).or_insert(v);
    }
    Ok(Value::Object(base))
}

fn put_extras(m: &mut Map<String, Value>, extras: &ProvisioningExtras) {
    let mut put = |key: &str, value: Value| {
        m.insert(key.to_owned(), value);
    };
    if let Some(w) = &extras.wifi {
        put(EXTRA_WIFI_SSID, w.ssid.clone().into());
        if w.hidden {
            put(EXTRA_WIFI_HIDDEN, true.into());
        }
        put(EXTRA_WIFI_SECURITY_TYPE, w.security_type.clone().into());
        if let Some(p) = &w.password {
            put(EXTRA_WIFI_PASSWORD, p.clone().into());
        }
        if let Some(e) = &w.eap {
            put(EXTRA_WIFI_EAP_METHOD, e.method.clone().into());
            let optional = [
                (EXTRA_WIFI_PHASE2_AUTH, &e.phase2_auth),
                (EXTRA_WIFI_IDENTITY, &e.identity),
                (EXTRA_WIFI_ANONYMOUS_IDENTITY, &e.anonymous_identity),
                (EXTRA_WIFI_DOMAIN, &e.domain),
                (EXTRA_WIFI_CA_CERTIFICATE, &e.ca_certificate),
                (EXTRA_WIFI_USER_CERTIFICATE, &e.user_certificate),
            ];
            for (key, value) in optional {
                if let Some(v) = value {
                    put(key, v.clone().into());
                }
            }
        }
    }
    if let Some(l) = &extras.locale {
        put(EXTRA_LOCALE, l.clone().into());
    }
    if let Some(t) = &extras.time_zone {
        put(EXTRA_TIME_ZONE, t.clone().into());
    }
    if extras.skip_encryption {
        put(EXTRA_SKIP_ENCRYPTION, true.into());
    }
    if extras.leave_all_system_apps_enabled {
        put(EXTRA_LEAVE_ALL_SYSTEM_APPS_ENABLED, true.into());
    }
}

/// The text to encode in the QR code: compact JSON with every non-ASCII character
/// written as a `\uXXXX` escape.
///
/// QR byte mode carries no character set unless an ECI header names one, and
/// readers guess between ISO-8859-1 and UTF-8; an SSID such as "Urząd-Gość" can come
/// out garbled. JSON escapes make the payload pure ASCII, which every reader decodes
/// the same way, and Android's JSON parser turns the escapes back into the characters.
pub fn qr_text(payload: &Value) -> String {
    let json = payload.to_string();
    let mut out = String::with_capacity(json.len());
    let mut units = [0u16; 2];
    for c in json.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            // Non-ASCII characters can only occur inside JSON strings, where an escape
            // is always allowed; characters outside the BMP become a surrogate pair.
            for u in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{u:04x}"));
            }
        }
    }
    out
}

fn text(field: &'static str, value: &str) -> Result<(), AndroidError> {
    if value.trim().is_empty() {
        return Err(invalid(field, "must not be empty"));
    }
    if value.chars().any(char::is_control) {
        return Err(invalid(field, "contains control characters"));
    }
    Ok(())
}

fn wifi(w: &WifiConfig) -> Result<(), AndroidError> {
    if w.ssid.is_empty() {
        return Err(invalid("wifi.ssid", "must not be empty"));
    }
    if w.ssid.len() > 32 {
        return Err(invalid(
            "wifi.ssid",
            format!("is {} bytes long; an SSID has at most 32", w.ssid.len()),
        ));
    }
    if w.ssid.chars().any(char::is_control) {
        return Err(invalid("wifi.ssid", "contains control characters"));
    }
    if !SECURITY_TYPES.contains(&w.security_type.as_str()) {
        return Err(invalid(
            "wifi.security_type",
            format!(
                "{:?} is not one of {} (upper case, as Android compares them)",
                w.security_type,
                SECURITY_TYPES.join(", ")
            ),
        ));
    }
    if w.security_type != "EAP" && w.eap.is_some() {
        return Err(invalid(
            "wifi.eap",
            format!(
                "EAP settings need security_type EAP, not {}",
                w.security_type
            ),
        ));
    }
    match w.security_type.as_str() {
        "NONE" => {
            if w.password.is_some() {
                return Err(invalid(
                    "wifi.password",
                    "an open network (NONE) has no password",
                ));
            }
        }
        "WPA" => {
            let p = w
                .password
                .as_deref()
                .ok_or_else(|| invalid("wifi.password", "required for WPA"))?;
            // ManagedProvisioning quotes the value as a passphrase, so a 64-digit hex
            // PSK would be taken as a (too long) passphrase.
            let n = p.chars().count();
            if !(8..=63).contains(&n) || !p.chars().all(|c| (' '..='~').contains(&c)) {
                return Err(invalid(
                    "wifi.password",
                    "a WPA passphrase is 8 to 63 printable ASCII characters",
                ));
            }
        }
        "WEP" => match w.password.as_deref() {
            Some(p) if !p.is_empty() => text("wifi.password", p)?,
            _ => return Err(invalid("wifi.password", "required for WEP")),
        },
        _ => eap(w)?,
    }
    Ok(())
}

fn eap(w: &WifiConfig) -> Result<(), AndroidError> {
    let e = w
        .eap
        .as_ref()
        .ok_or_else(|| invalid("wifi.eap", "required when security_type is EAP"))?;
    let method = e.method.as_str();
    if !EAP_METHODS.contains(&method) {
        return Err(invalid(
            "wifi.eap.method",
            format!("{method:?} is not one of {}", EAP_METHODS.join(", ")),
        ));
    }
    let tunnelled = matches!(method, "PEAP" | "TTLS");
    if let Some(p2) = &e.phase2_auth {
        if !tunnelled {
            return Err(invalid(
                "wifi.eap.phase2_auth",
                format!("only PEAP and TTLS have a phase 2, not {method}"),
            ));
        }
        if !PHASE2_METHODS.contains(&p2.as_str()) {
            return Err(invalid(
                "wifi.eap.phase2_auth",
                format!("{p2:?} is not one of {}", PHASE2_METHODS.join(", ")),
            ));
        }
    }
    let uses_password = matches!(method, "PEAP" | "TTLS" | "PWD");
    match (&w.password, uses_password) {
        (None, true) => {
            return Err(invalid(
                "wifi.password",
                format!("{method} authenticates with the user's password; set it"),
            ))
        }
        (Some(_), false) => {
            return Err(invalid(
                "wifi.password",
                format!("{method} uses no password (certificate or SIM authentication)"),
            ))
        }
        (Some(p), true) => text("wifi.password", p)?,
        (None, false) => {}
    }
    if uses_password {
        match &e.identity {
            Some(i) => text("wifi.eap.identity", i)?,
            None => {
                return Err(invalid(
                    "wifi.eap.identity",
                    format!("{method} needs the user name (identity)"),
                ))
            }
        }
    }
    for (field, value) in [
        ("wifi.eap.identity", &e.identity),
        ("wifi.eap.anonymous_identity", &e.anonymous_identity),
        ("wifi.eap.domain", &e.domain),
    ] {
        if let Some(v) = value {
            text(field, v)?;
        }
    }
    if let Some(ca) = &e.ca_certificate {
        let der = base64_field("wifi.eap.ca_certificate", ca, "the DER X.509 certificate")?;
        openssl::x509::X509::from_der(&der).map_err(|_| {
            invalid(
                "wifi.eap.ca_certificate",
                "decodes, but not to a DER X.509 certificate",
            )
        })?;
    }
    match &e.user_certificate {
        Some(uc) => {
            let der = base64_field(
                "wifi.eap.user_certificate",
                uc,
                "a PKCS#12 file (key and certificate, empty password)",
            )?;
            openssl::pkcs12::Pkcs12::from_der(&der).map_err(|_| {
                invalid(
                    "wifi.eap.user_certificate",
                    "decodes, but not to a PKCS#12 file (openssl pkcs12 -export -passout pass: ...)",
                )
            })?;
        }
        None if method == "TLS" => {
            return Err(invalid(
                "wifi.eap.user_certificate",
                "EAP-TLS needs the client key and certificate (base64 of a PKCS#12 file with an empty password)",
            ))
        }
        None => {}
    }
    Ok(())
}

/// Standard base64 on one line, as Java's `Base64.getDecoder()` reads it.
fn base64_field(field: &'static str, value: &str, what: &str) -> Result<Vec<u8>, AndroidError> {
    if value.starts_with("-----BEGIN") {
        return Err(invalid(
            field,
            format!("is PEM; give the base64 of {what} without the -----BEGIN/END----- lines and line breaks"),
        ));
    }
    if value.chars().any(char::is_whitespace) {
        return Err(invalid(
            field,
            "contains whitespace or line breaks; give the base64 on one line",
        ));
    }
    base64::engine::general_purpose::STANDARD
        .decode(value)
        .map_err(|e| invalid(field, format!("is not base64 of {what} ({e})")))
}

/// "ll_CC": what ManagedProvisioning turns into a `java.util.Locale`.
fn locale(value: &str) -> Result<(), AndroidError> {
    let ok = value.split_once('_').is_some_and(|(lang, country)| {
        (2..=3).contains(&lang.len())
            && lang.chars().all(|c| c.is_ascii_lowercase())
            && country.len() == 2
            && country.chars().all(|c| c.is_ascii_uppercase())
    });
    if ok {
        Ok(())
    } else {
        Err(invalid(
            "locale",
            format!("{value:?} is not language_COUNTRY such as \"pl_PL\" or \"en_US\""),
        ))
    }
}

/// An Olson name ("Europe/Warsaw", "UTC"); the device checks it against its own
/// tz database, so only the shape is checked here.
fn time_zone(value: &str) -> Result<(), AndroidError> {
    text("time_zone", value)?;
    let ok = value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '_' | '-' | '+'))
        && !value.starts_with('/')
        && !value.ends_with('/');
    if ok {
        Ok(())
    } else {
        Err(invalid(
            "time_zone",
            format!("{value:?} is not a time zone name such as \"Europe/Warsaw\""),
        ))
    }
}
