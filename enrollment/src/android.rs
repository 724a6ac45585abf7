//! Android Enterprise provisioning by QR code: the JSON object the setup wizard reads
//! after six taps on the welcome screen (Android 7+; the EAP Wi-Fi keys need Android
//! 10+).
//!
//! With Google's Android Management API the object comes from Google (the enrollment
//! token's `qrCode`: Android Device Policy's component, checksum, download location
//! and the token); [`merge_extras`] adds ours to it: the Wi-Fi to join during setup,
//! locale, time zone. [`provisioning_payload`] builds the whole object for a custom
//! agent (the server's `--android-agent-*` options), the older way.
//!
//! The keys are the `EXTRA_PROVISIONING_*` constants of
//! `android.app.admin.DevicePolicyManager`. The setup wizard turns the JSON into the
//! extras of `ACTION_PROVISION_MANAGED_DEVICE_FROM_TRUSTED_SOURCE`, downloads the
//! agent APK, checks its signing certificate against the checksum, makes it device
//! owner and hands it `PROVISIONING_ADMIN_EXTRAS_BUNDLE` (our server URL and
//! enrollment token).
//!
//! Everything is validated here, because a device that cannot use a value shows
//! only "Can't set up device" after a long wait, and has to be factory reset.

use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub const EXTRA_DEVICE_ADMIN_COMPONENT_NAME: &str =
    "android.app.extra.PROVISIONING_DEVICE_ADMIN_COMPONENT_NAME";
pub const EXTRA_DEVICE_ADMIN_PACKAGE_DOWNLOAD_LOCATION: &str =
    "android.app.extra.PROVISIONING_DEVICE_ADMIN_PACKAGE_DOWNLOAD_LOCATION";
pub const EXTRA_DEVICE_ADMIN_SIGNATURE_CHECKSUM: &str =
    "android.app.extra.PROVISIONING_DEVICE_ADMIN_SIGNATURE_CHECKSUM";
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

/// Keys of our agent's admin extras bundle.
pub const ADMIN_EXTRA_SERVER_URL: &str = "server_url";
pub const ADMIN_EXTRA_ENROLLMENT_TOKEN: &str = "enrollment_token";

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

/// The device-owner app (our agent) the device downloads and installs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentConfig {
    /// The DeviceAdminReceiver, "package/.Class" or "package/package.Class".
    pub component_name: String,
    /// https URL of the APK.
    pub download_url: String,
    /// URL-safe base64 of the SHA-256 of the APK's signing certificate.
    pub signature_checksum: String,
}

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

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProvisioningSpec {
    pub agent: AgentConfig,
    /// Our server, for the agent (https).
    pub server_url: String,
    /// One-time enrollment token, for the agent.
    pub enrollment_token: String,
    pub wifi: Option<WifiConfig>,
    /// Device language, "ll_CC" such as "pl_PL".
    pub locale: Option<String>,
    /// Olson time zone such as "Europe/Warsaw".
    pub time_zone: Option<String>,
    pub skip_encryption: bool,
    pub leave_all_system_apps_enabled: bool,
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

/// What we add to a provisioning object besides the agent and its token.
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
/// Google's keys are kept as they are: only keys Google did not set are added, so the
/// agent, its checksum and the token can never be changed by an option of ours.
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

/// Validates `spec` and returns the JSON object to put in the QR code (serialise it
/// with [`qr_text`]).
///
/// Booleans are JSON booleans and appear only when true (false is Android's default),
/// and optional values only when set, which keeps the code as sparse as possible for
/// the cameras of cheap devices.
pub fn provisioning_payload(spec: &ProvisioningSpec) -> Result<Value, AndroidError> {
    validate(spec)?;
    let mut m = Map::new();
    let mut put = |key: &str, value: Value| {
        m.insert(key.to_owned(), value);
    };
    put(
        EXTRA_DEVICE_ADMIN_COMPONENT_NAME,
        spec.agent.component_name.clone().into(),
    );
    put(
        EXTRA_DEVICE_ADMIN_PACKAGE_DOWNLOAD_LOCATION,
        spec.agent.download_url.clone().into(),
    );
    put(
        EXTRA_DEVICE_ADMIN_SIGNATURE_CHECKSUM,
        spec.agent.signature_checksum.clone().into(),
    );
    let mut extras = Map::new();
    extras.insert(
        ADMIN_EXTRA_SERVER_URL.into(),
        spec.server_url.clone().into(),
    );
    extras.insert(
        ADMIN_EXTRA_ENROLLMENT_TOKEN.into(),
        spec.enrollment_token.clone().into(),
    );
    put(EXTRA_ADMIN_EXTRAS_BUNDLE, Value::Object(extras));

    put_extras(
        &mut m,
        &ProvisioningExtras {
            wifi: spec.wifi.clone(),
            locale: spec.locale.clone(),
            time_zone: spec.time_zone.clone(),
            skip_encryption: spec.skip_encryption,
            leave_all_system_apps_enabled: spec.leave_all_system_apps_enabled,
        },
    );
    Ok(Value::Object(m))
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

/// Checks a signature checksum: URL-safe base64, with or without padding, of a
/// SHA-256 (32 bytes) of the agent APK's signing certificate.
pub fn validate_signature_checksum(s: &str) -> Result<(), AndroidError> {
    const FIELD: &str = "agent.signature_checksum";
    const CONVERT: &str = "Android wants the URL-safe base64 (RFC 4648 §5) of the SHA-256 \
        of the APK's signing certificate, not hex; convert a hex digest (as printed by \
        `apksigner verify --print-certs app.apk` or `keytool -printcert -jarfile app.apk`) \
        with: echo <hex> | tr -d ':' | xxd -r -p | base64 | tr '+/' '-_' | tr -d '='";
    if s.is_empty() {
        return Err(invalid(FIELD, "must not be empty"));
    }
    if s.chars().any(char::is_whitespace) {
        return Err(invalid(FIELD, "contains whitespace"));
    }
    let hex_digits: String = s.chars().filter(|c| *c != ':').collect();
    if hex_digits.chars().all(|c| c.is_ascii_hexdigit()) && matches!(hex_digits.len(), 40 | 64) {
        let what = if hex_digits.len() == 40 {
            "a hex SHA-1 digest; the checksum must be of SHA-256, and "
        } else {
            "a hex SHA-256 digest; "
        };
        return Err(invalid(FIELD, format!("looks like {what}{CONVERT}")));
    }
    if s.contains('+') || s.contains('/') {
        return Err(invalid(
            FIELD,
            "is standard base64 ('+' and '/'); Android decodes URL-safe base64: replace '+' \
             with '-' and '/' with '_' (tr '+/' '-_')",
        ));
    }
    let unpadded = s.trim_end_matches('=');
    let padding = s.len() - unpadded.len();
    let decoded = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(unpadded)
        .map_err(|e| invalid(FIELD, format!("is not URL-safe base64 ({e}); {CONVERT}")))?;
    if decoded.len() != 32 {
        return Err(invalid(
            FIELD,
            format!(
                "decodes to {} bytes, but a SHA-256 is 32 (43 base64 characters); {CONVERT}",
                decoded.len()
            ),
        ));
    }
    // 32 bytes take 43 characters and one '=' of padding.
    if padding > 1 {
        return Err(invalid(FIELD, "has too much '=' padding"));
    }
    Ok(())
}

fn validate(spec: &ProvisioningSpec) -> Result<(), AndroidError> {
    component_name(&spec.agent.component_name)?;
    https_url("agent.download_url", &spec.agent.download_url)?;
    validate_signature_checksum(&spec.agent.signature_checksum)?;
    https_url("server_url", &spec.server_url)?;
    text("enrollment_token", &spec.enrollment_token)?;
    if let Some(w) = &spec.wifi {
        wifi(w)?;
    }
    if let Some(l) = &spec.locale {
        locale(l)?;
    }
    if let Some(t) = &spec.time_zone {
        time_zone(t)?;
    }
    Ok(())
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

fn https_url(field: &'static str, value: &str) -> Result<(), AndroidError> {
    text(field, value)?;
    let Some(rest) = value.strip_prefix("https://") else {
        return Err(invalid(
            field,
            format!(
                "{value:?} must start with https:// (the device trusts nothing else during setup)"
            ),
        ));
    };
    if value.chars().any(char::is_whitespace) {
        return Err(invalid(field, format!("{value:?} contains whitespace")));
    }
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    if host.is_empty() || host.starts_with(':') {
        return Err(invalid(field, format!("{value:?} has no host name")));
    }
    Ok(())
}

/// "com.example.agent/.AdminReceiver" or "com.example.agent/com.example.agent.AdminReceiver",
/// the two forms `ComponentName.unflattenFromString` reads.
fn component_name(value: &str) -> Result<(), AndroidError> {
    const FIELD: &str = "agent.component_name";
    let shape = || {
        invalid(
            FIELD,
            format!("{value:?} is not \"package/.Class\" (e.g. \"com.example.agent/.AdminReceiver\") or \"package/package.Class\""),
        )
    };
    let (package, class) = value.split_once('/').ok_or_else(shape)?;
    // Android package names: at least two segments, each a letter then letters,
    // digits or underscores.
    let segments: Vec<&str> = package.split('.').collect();
    let package_ok = segments.len() >= 2
        && segments.iter().all(|s| {
            s.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
                && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        });
    let class_path = class.strip_prefix('.').unwrap_or(class);
    let class_ok = !class_path.is_empty()
        && (class.starts_with('.') || class_path.contains('.'))
        && class_path.split('.').all(|s| {
            s.chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == '$')
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
        });
    if package_ok && class_ok {
        Ok(())
    } else {
        Err(shape())
    }
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
