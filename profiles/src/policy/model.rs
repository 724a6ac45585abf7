//! The policy document and the small types the compilers and the server share.
//!
//! One document describes what a device should look like, platform-neutral: the
//! passcode rules, Wi-Fi networks joined with the user's domain account (or a device
//! certificate), mail accounts filled with the user's attributes, and trusted root
//! certificates. Keys are snake_case; unknown keys are refused, so that a typo is an
//! error and not a silently ignored rule.

use serde::{Deserialize, Serialize};

/// A policy as an admin writes it (JSON through the API, TOML or YAML files).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyDocument {
    /// 1..64 characters of `A-Z a-z 0-9 space . _ -`; shown on the device.
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passcode: Option<Passcode>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub wifi: Vec<WifiNetwork>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mail: Vec<MailAccount>,
    /// Trusted root certificates, installed on the device and named by Wi-Fi networks.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub certificates: Vec<TrustedCertificate>,
}

/// Passcode (PIN or password) rules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Passcode {
    /// A passcode must be set.
    pub required: bool,
    /// Minimum length, 4..=16.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_length: Option<u32>,
    /// Letters required, not only digits.
    #[serde(default)]
    pub alphanumeric: bool,
    /// Minimum number of characters other than letters and digits, 0..=4.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_complex_chars: Option<u32>,
    /// Simple values (repeated or ordered: 1111, 1234, CBA) allowed.
    #[serde(default)]
    pub allow_simple: bool,
    /// Days before the passcode must be changed, 1..=730.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_age_days: Option<u32>,
    /// A new passcode must differ from the last N, 1..=50.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history: Option<u32>,
    /// Failed attempts before the device is wiped, 2..=11.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_failed_attempts: Option<u32>,
    /// Minutes of inactivity before the screen locks: 1, 2, 3, 4, 5, 10 or 15.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_lock_minutes: Option<u32>,
    /// Minutes after locking during which the device unlocks without the passcode,
    /// 0..=240 (0: the passcode is asked at once).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grace_period_minutes: Option<u32>,
}

impl Passcode {
    /// Rules that enforce nothing: what a policy without a passcode section means.
    pub fn unenforced() -> Passcode {
        Passcode {
            required: false,
            min_length: None,
            alphanumeric: false,
            min_complex_chars: None,
            allow_simple: true,
            max_age_days: None,
            history: None,
            max_failed_attempts: None,
            auto_lock_minutes: None,
            grace_period_minutes: None,
        }
    }
}

/// A Wi-Fi network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WifiNetwork {
    /// 1..=32 bytes (UTF-8).
    pub ssid: String,
    #[serde(default)]
    pub hidden: bool,
    #[serde(default = "yes")]
    pub auto_join: bool,
    pub security: WifiSecurity,
}

/// How a network authenticates. Enterprise is what the office's password policy asks
/// for; a pre-shared key can be written but is flagged by [`super::office_findings`].
///
/// Written as a table tagged by `type` (`enterprise` or `psk`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "SecurityRepr", into = "SecurityRepr")]
pub enum WifiSecurity {
    /// WPA2/WPA3-Enterprise (802.1X).
    Enterprise {
        /// WPA3 only (otherwise WPA2 or better).
        wpa3: bool,
        eap: Eap,
        /// Names the RADIUS server's certificate must carry (wildcards allowed on
        /// Apple, matched as a domain suffix on Android).
        radius_server_names: Vec<String>,
        /// Names of entries in the document's `certificates` that issue the RADIUS
        /// server's certificate.
        radius_ca_certificates: Vec<String>,
    },
    /// WPA2/WPA3-Personal with a shared passphrase: contrary to the office's policy.
    Psk { wpa3: bool, passphrase: String },
}

/// The EAP method of an enterprise network, written as a table tagged by `method`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "EapRepr", into = "EapRepr")]
pub enum Eap {
    /// PEAP with the user's domain account (the device asks for the password).
    Peap { inner: Inner },
    /// EAP-TTLS with the user's domain account (the device asks for the password).
    Ttls { inner: Inner },
    /// EAP-TLS with a per-device certificate from the server's SCEP CA.
    Tls,
}

/// Inner authentication of PEAP or TTLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Inner {
    Mschapv2,
    Pap,
}

// The tagged enums are read through flat tables rather than serde's internally
// tagged enums: those read the table whole before they know the variant, which
// loses the field path of an error inside it ("wifi[0].security" instead of
// "wifi[0].security.eap.method") and lets unknown keys through for unit variants.

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum SecurityType {
    Enterprise,
    Psk,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SecurityRepr {
    #[serde(rename = "type")]
    kind: SecurityType,
    #[serde(default)]
    wpa3: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    eap: Option<Eap>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    radius_server_names: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    radius_ca_certificates: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    passphrase: Option<String>,
}

/// The message of a key that the chosen variant does not have; the parser turns
/// it into the key's path.
fn not_for(key: &str, tag: &str, value: &str, keys: &str) -> String {
    format!("unknown field `{key}` for {tag} `{value}`, expected {keys}")
}

impl TryFrom<SecurityRepr> for WifiSecurity {
    type Error = String;

    fn try_from(r: SecurityRepr) -> Result<Self, String> {
        match r.kind {
            SecurityType::Enterprise => {
                if r.passphrase.is_some() {
                    return Err(not_for(
                        "passphrase",
                        "type",
                        "enterprise",
                        "one of `type`, `wpa3`, `eap`, `radius_server_names`, `radius_ca_certificates`",
                    ));
                }
                Ok(WifiSecurity::Enterprise {
                    wpa3: r.wpa3,
                    eap: r.eap.ok_or("missing field `eap`")?,
                    radius_server_names: r.radius_server_names.unwrap_or_default(),
                    radius_ca_certificates: r.radius_ca_certificates.unwrap_or_default(),
                })
            }
            SecurityType::Psk => {
                for (key, set) in [
                    ("eap", r.eap.is_some()),
                    ("radius_server_names", r.radius_server_names.is_some()),
                    ("radius_ca_certificates", r.radius_ca_certificates.is_some()),
                ] {
                    if set {
                        return Err(not_for(
                            key,
                            "type",
                            "psk",
                            "one of `type`, `wpa3`, `passphrase`",
                        ));
                    }
                }
                Ok(WifiSecurity::Psk {
                    wpa3: r.wpa3,
                    passphrase: r.passphrase.ok_or("missing field `passphrase`")?,
                })
            }
        }
    }
}

impl From<WifiSecurity> for SecurityRepr {
    fn from(s: WifiSecurity) -> Self {
        match s {
            WifiSecurity::Enterprise {
                wpa3,
                eap,
                radius_server_names,
                radius_ca_certificates,
            } => SecurityRepr {
                kind: SecurityType::Enterprise,
                wpa3,
                eap: Some(eap),
                radius_server_names: Some(radius_server_names),
                radius_ca_certificates: Some(radius_ca_certificates),
                passphrase: None,
            },
            WifiSecurity::Psk { wpa3, passphrase } => SecurityRepr {
                kind: SecurityType::Psk,
                wpa3,
                eap: None,
                radius_server_names: None,
                radius_ca_certificates: None,
                passphrase: Some(passphrase),
            },
        }
    }
}

#[derive(Clone, Copy, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum EapMethod {
    Peap,
    Ttls,
    Tls,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct EapRepr {
    method: EapMethod,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    inner: Option<Inner>,
}

impl TryFrom<EapRepr> for Eap {
    type Error = String;

    fn try_from(r: EapRepr) -> Result<Self, String> {
        match (r.method, r.inner) {
            (EapMethod::Peap, Some(inner)) => Ok(Eap::Peap { inner }),
            (EapMethod::Ttls, Some(inner)) => Ok(Eap::Ttls { inner }),
            (EapMethod::Peap | EapMethod::Ttls, None) => Err("missing field `inner`".into()),
            (EapMethod::Tls, None) => Ok(Eap::Tls),
            (EapMethod::Tls, Some(_)) => Err(not_for("inner", "method", "tls", "`method` only")),
        }
    }
}

impl From<Eap> for EapRepr {
    fn from(e: Eap) -> Self {
        let (method, inner) = match e {
            Eap::Peap { inner } => (EapMethod::Peap, Some(inner)),
            Eap::Ttls { inner } => (EapMethod::Ttls, Some(inner)),
            Eap::Tls => (EapMethod::Tls, None),
        };
        EapRepr { method, inner }
    }
}

/// A mail account filled with the user's attributes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MailAccount {
    /// Unique within the document; the account's description on the device.
    pub name: String,
    pub kind: MailKind,
    /// Template, see [`super::render_template`].
    #[serde(default = "default_email")]
    pub email_address: String,
    /// Template.
    #[serde(default = "default_username")]
    pub username: String,
    /// Template.
    #[serde(default = "default_display_name")]
    pub display_name: String,
    /// Exchange ActiveSync host, or the IMAP incoming host.
    pub host: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// IMAP only: the SMTP (outgoing) host, required for IMAP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smtp_host: Option<String>,
    /// IMAP only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smtp_port: Option<u16>,
    #[serde(default = "yes")]
    pub ssl_required: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MailKind {
    /// Exchange ActiveSync.
    Exchange,
    /// IMAP for incoming, SMTP for outgoing mail.
    Imap,
}

/// A root certificate to trust, in PEM.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustedCertificate {
    /// Unique within the document; Wi-Fi networks refer to it by this name.
    pub name: String,
    /// One `-----BEGIN CERTIFICATE-----` block.
    pub pem: String,
}

/// The text formats a policy is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Toml,
    Yaml,
}

impl Format {
    /// The format a file name's extension says (`.json`, `.toml`, `.yaml`/`.yml`).
    pub fn from_file_name(name: &str) -> Option<Format> {
        let ext = name.rsplit_once('.')?.1.to_ascii_lowercase();
        match ext.as_str() {
            "json" => Some(Format::Json),
            "toml" => Some(Format::Toml),
            "yaml" | "yml" => Some(Format::Yaml),
            _ => None,
        }
    }
}

/// Something wrong in a document: where, what, and what would be accepted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldError {
    /// e.g. `wifi[0].security.eap.inner`; empty for the document as a whole.
    pub path: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed: Option<String>,
}

impl FieldError {
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> FieldError {
        FieldError {
            path: path.into(),
            message: message.into(),
            allowed: None,
        }
    }

    pub fn allowed(mut self, allowed: impl Into<String>) -> FieldError {
        self.allowed = Some(allowed.into());
        self
    }
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}", self.message)?;
        } else {
            write!(f, "{}: {}", self.path, self.message)?;
        }
        if let Some(allowed) = &self.allowed {
            write!(f, " (allowed: {allowed})")?;
        }
        Ok(())
    }
}

/// One of the office's rules that a document breaks (see [`super::office_findings`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// Stable id, e.g. `wifi.psk`, `passcode.auto_lock`.
    pub rule: String,
    pub path: String,
    pub message: String,
}

/// A part of a document that one platform cannot express, or that was overridden by
/// a policy of higher precedence: reported, never dropped in silence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlatformNote {
    /// `apple` or `android`.
    pub platform: String,
    pub path: String,
    pub message: String,
}

impl PlatformNote {
    pub(crate) fn apple(path: impl Into<String>, message: impl Into<String>) -> PlatformNote {
        PlatformNote {
            platform: "apple".into(),
            path: path.into(),
            message: message.into(),
        }
    }

    pub(crate) fn android(path: impl Into<String>, message: impl Into<String>) -> PlatformNote {
        PlatformNote {
            platform: "android".into(),
            path: path.into(),
            message: message.into(),
        }
    }
}

/// The directory attributes of a device's user, for templates and identities.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct UserAttributes {
    pub username: String,
    pub upn: String,
    pub email: String,
    pub display_name: String,
    #[serde(default)]
    pub department: Option<String>,
    #[serde(default)]
    pub groups: Vec<String>,
}

fn yes() -> bool {
    true
}

fn default_email() -> String {
    "{{user.email}}".into()
}

fn default_username() -> String {
    "{{user.upn}}".into()
}

fn default_display_name() -> String {
    "{{user.display_name}}".into()
}
