//! Typed builders for the MDM commands an admin can queue.
//!
//! Keys, types and per-OS support follow Apple's device-management schema
//! (`mdm/commands/*.yaml`). A key or command the schema marks `n/a` for the target OS
//! is rejected instead of being sent, because devices answer such commands with a bare
//! `CommandFormatError` or silently ignore the key, and neither tells the admin why.

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine;
use plist::{Dictionary, Value};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Which Apple OS a command is built for; decides e.g. that DeviceLock's PIN is macOS only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AppleOs {
    #[serde(rename = "iOS")]
    Ios,
    #[serde(rename = "iPadOS")]
    IpadOs,
    #[serde(rename = "macOS")]
    MacOs,
    #[serde(rename = "tvOS")]
    TvOs,
    #[serde(rename = "watchOS")]
    WatchOs,
    #[serde(rename = "visionOS")]
    VisionOs,
    #[serde(rename = "unknown")]
    Unknown,
}

/// Platforms as Apple's schema names them in `supportedOS`.
type Platforms = &'static [&'static str];
const ALL: Platforms = &["iOS", "macOS", "tvOS", "visionOS", "watchOS"];
const IOS: Platforms = &["iOS"];
const MACOS: Platforms = &["macOS"];

impl AppleOs {
    /// From what a device reports (ProductName such as "iPhone15,2", "MacBookPro18,3",
    /// "iPad13,1", "AppleTV..." or an OS name / model name). Unknown when nothing matches.
    pub fn from_product(product_name: &str) -> AppleOs {
        // Spaces are dropped so that model names ("Apple TV", "Mac mini") and OS names
        // ("iPhone OS", "Mac OS X") match the same prefixes as product names.
        let name: String = product_name
            .chars()
            .filter(|c| !c.is_whitespace())
            .flat_map(char::to_lowercase)
            .collect();
        const PREFIXES: &[(&str, AppleOs)] = &[
            ("ipad", AppleOs::IpadOs),
            ("iphone", AppleOs::Ios),
            ("ipod", AppleOs::Ios),
            ("ios", AppleOs::Ios),
            ("mac", AppleOs::MacOs),
            ("imac", AppleOs::MacOs),
            ("virtualmac", AppleOs::MacOs),
            ("osx", AppleOs::MacOs),
            ("appletv", AppleOs::TvOs),
            ("tvos", AppleOs::TvOs),
            ("watch", AppleOs::WatchOs),
            ("applewatch", AppleOs::WatchOs),
            ("realitydevice", AppleOs::VisionOs),
            ("applevision", AppleOs::VisionOs),
            ("visionos", AppleOs::VisionOs),
            ("xros", AppleOs::VisionOs),
        ];
        PREFIXES
            .iter()
            .find(|(prefix, _)| name.starts_with(prefix))
            .map_or(AppleOs::Unknown, |&(_, os)| os)
    }

    /// The platform name Apple's schema uses ("iOS" also for iPadOS).
    pub fn schema_name(&self) -> &'static str {
        match self {
            AppleOs::Ios | AppleOs::IpadOs => "iOS",
            AppleOs::MacOs => "macOS",
            AppleOs::TvOs => "tvOS",
            AppleOs::WatchOs => "watchOS",
            AppleOs::VisionOs => "visionOS",
            AppleOs::Unknown => "unknown",
        }
    }

    /// Unknown passes every check: before the first DeviceInformation reply the server has
    /// no platform knowledge, and refusing commands then would block enrollment flows.
    fn is_in(self, platforms: Platforms) -> bool {
        self == AppleOs::Unknown || platforms.contains(&self.schema_name())
    }
}

impl fmt::Display for AppleOs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AppleOs::IpadOs => "iPadOS",
            other => other.schema_name(),
        })
    }
}

/// What the admin asked for, as the admin API's JSON names it:
/// `{"type":"DeviceLock","message":"Lost phone","phone_number":"+48 ..."}`.
///
/// Unknown fields are rejected for variants with fields, also when the server flattens
/// this into its request body; serde lets unit variants (`{"type":"ProfileList",...}`)
/// ignore extra fields, which is harmless since they have nothing to misspell.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(tag = "type", deny_unknown_fields)]
pub enum CommandSpec {
    DeviceLock {
        message: Option<String>,
        phone_number: Option<String>,
        pin: Option<String>,
    },
    EraseDevice {
        pin: Option<String>,
        preserve_data_plan: Option<bool>,
        disallow_proximity_setup: Option<bool>,
    },
    /// `payload`: base64 of the .mobileconfig bytes, signed or not.
    InstallProfile {
        payload: String,
    },
    RemoveProfile {
        identifier: String,
    },
    ProfileList,
    /// `queries: None` asks for what the server keeps about a device on this OS.
    DeviceInformation {
        queries: Option<Vec<String>>,
    },
    SecurityInfo,
    CertificateList,
    InstalledApplicationList {
        identifiers: Option<Vec<String>>,
        managed_apps_only: Option<bool>,
    },
    RestartDevice {
        notify_user: Option<bool>,
    },
    ShutDownDevice,
    /// The UnlockToken comes from [`BuildContext`].
    ClearPasscode,
    EnableLostMode {
        message: Option<String>,
        phone_number: Option<String>,
        footnote: Option<String>,
    },
    DisableLostMode,
    DeviceLocation,
    PlayLostModeSound,
    /// Any command plist the admin wrote (XML plist text). Either the full command
    /// (`{CommandUUID, Command:{RequestType,...}}`) or just the inner Command dict
    /// (`{RequestType,...}`). The server always assigns its own CommandUUID.
    Raw {
        plist: String,
    },
}

pub struct BuildContext<'a> {
    pub os: AppleOs,
    /// The device's stored UnlockToken, needed by ClearPasscode.
    pub unlock_token: Option<&'a [u8]>,
}

#[derive(Clone)]
pub struct BuiltCommand {
    /// Upper-case UUID v4 string, unless the caller supplied its own.
    pub command_uuid: String,
    pub request_type: String,
    /// True when the plist carries a secret (UnlockToken, a PIN, a password): the server
    /// encrypts such payloads at rest.
    pub sensitive: bool,
    /// The full command plist as XML bytes, ready to send to the device.
    pub plist_xml: Vec<u8>,
}

// Hand-written so that a logged BuiltCommand never shows an UnlockToken or PIN.
impl fmt::Debug for BuiltCommand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("BuiltCommand");
        d.field("command_uuid", &self.command_uuid)
            .field("request_type", &self.request_type)
            .field("sensitive", &self.sensitive);
        if self.sensitive {
            d.field(
                "plist_xml",
                &format_args!("<{} bytes redacted>", self.plist_xml.len()),
            );
        } else {
            d.field("plist_xml", &String::from_utf8_lossy(&self.plist_xml));
        }
        d.finish()
    }
}

/// Longest text parameter of a command (message, phone number, query name, ...).
pub const MAX_TEXT_CHARS: usize = 1_000;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum BuildError {
    #[error("{request_type} is not supported on {os}")]
    UnsupportedCommand {
        request_type: &'static str,
        os: AppleOs,
    },
    #[error("{request_type} {key} is only supported on {supported}")]
    UnsupportedKey {
        request_type: &'static str,
        key: &'static str,
        supported: String,
    },
    #[error("{request_type} {key} must not be empty")]
    Empty {
        request_type: &'static str,
        key: &'static str,
    },
    #[error("{request_type} {key} is longer than {max} characters")]
    TooLong {
        request_type: &'static str,
        key: &'static str,
        max: usize,
    },
    #[error("PIN must be exactly 6 digits")]
    InvalidPin,
    #[error("ClearPasscode needs the device's UnlockToken, which this device never sent")]
    MissingUnlockToken,
    #[error("EnableLostMode needs a message or a phone number")]
    LostModeNeedsContact,
    #[error("payload is not valid base64")]
    InvalidBase64,
    #[error("payload is empty")]
    EmptyPayload,
    #[error("payload is not a configuration profile (neither a plist nor signed data)")]
    NotAProfile,
    #[error("raw plist is not a valid plist: {0}")]
    InvalidRawPlist(String),
    #[error("raw plist is not a dictionary")]
    RawNotADictionary,
    #[error("raw plist has no RequestType")]
    RawMissingRequestType,
    #[error(
        "raw plist has an unexpected top-level key {0}; only CommandUUID and Command belong there"
    )]
    RawUnexpectedKey(String),
    #[error("command UUID must not be empty")]
    EmptyCommandUuid,
    #[error("could not write the command plist: {0}")]
    Serialize(String),
}

impl CommandSpec {
    /// Apple's RequestType; for Raw the one found in the plist, or "Raw" if unparseable.
    pub fn request_type(&self) -> String {
        match self {
            CommandSpec::Raw { plist } => raw_command(plist)
                .ok()
                .and_then(|c| c.get("RequestType")?.as_string().map(str::to_owned))
                .unwrap_or_else(|| "Raw".into()),
            typed => typed.meta().0.into(),
        }
    }

    pub fn build(&self, ctx: &BuildContext) -> Result<BuiltCommand, BuildError> {
        let command_uuid = uuid::Uuid::new_v4().to_string().to_uppercase();
        self.build_with_uuid(ctx, &command_uuid)
    }

    /// Build with a given UUID (tests, and the server when it pre-assigns ids).
    pub fn build_with_uuid(
        &self,
        ctx: &BuildContext,
        command_uuid: &str,
    ) -> Result<BuiltCommand, BuildError> {
        if command_uuid.trim().is_empty() {
            return Err(BuildError::EmptyCommandUuid);
        }
        let command = match self {
            CommandSpec::Raw { plist } => raw_command(plist)?,
            typed => typed.typed_command(ctx)?,
        };
        let request_type = command
            .get("RequestType")
            .and_then(Value::as_string)
            .unwrap_or_default()
            .to_owned();
        // A profile can carry Wi-Fi and mail passwords or a PKCS#12 identity, which
        // the plist does not show as keys: every profile payload counts as secret.
        let sensitive = has_secret(&command) || request_type == "InstallProfile";
        let mut full = Dictionary::new();
        full.insert("CommandUUID".into(), command_uuid.into());
        full.insert("Command".into(), command.into());
        let mut plist_xml = Vec::new();
        Value::Dictionary(full)
            .to_writer_xml(&mut plist_xml)
            .map_err(|e| BuildError::Serialize(e.to_string()))?;
        Ok(BuiltCommand {
            command_uuid: command_uuid.to_owned(),
            request_type,
            sensitive,
            plist_xml,
        })
    }

    /// RequestType and the platforms whose schema entry is not `n/a`.
    fn meta(&self) -> (&'static str, Platforms) {
        use CommandSpec::*;
        match self {
            DeviceLock { .. } => ("DeviceLock", &["iOS", "macOS", "visionOS", "watchOS"]),
            EraseDevice { .. } => ("EraseDevice", ALL),
            InstallProfile { .. } => ("InstallProfile", ALL),
            RemoveProfile { .. } => ("RemoveProfile", ALL),
            ProfileList => ("ProfileList", ALL),
            DeviceInformation { .. } => ("DeviceInformation", ALL),
            SecurityInfo => ("SecurityInfo", ALL),
            CertificateList => ("CertificateList", ALL),
            InstalledApplicationList { .. } => ("InstalledApplicationList", ALL),
            RestartDevice { .. } => ("RestartDevice", &["iOS", "macOS", "tvOS"]),
            ShutDownDevice => ("ShutDownDevice", &["iOS", "macOS"]),
            ClearPasscode => ("ClearPasscode", &["iOS", "visionOS", "watchOS"]),
            EnableLostMode { .. } => ("EnableLostMode", IOS),
            DisableLostMode => ("DisableLostMode", IOS),
            DeviceLocation => ("DeviceLocation", IOS),
            PlayLostModeSound => ("PlayLostModeSound", IOS),
            Raw { .. } => ("Raw", ALL),
        }
    }

    fn typed_command(&self, ctx: &BuildContext) -> Result<Dictionary, BuildError> {
        let (request_type, platforms) = self.meta();
        if !ctx.os.is_in(platforms) {
            return Err(BuildError::UnsupportedCommand {
                request_type,
                os: ctx.os,
            });
        }
        let mut c = Command {
            os: ctx.os,
            request_type,
            dict: Dictionary::new(),
        };
        c.dict.insert("RequestType".into(), request_type.into());
        match self {
            CommandSpec::DeviceLock {
                message,
                phone_number,
                pin,
            } => {
                const NOT_VISION: Platforms = &["iOS", "macOS", "tvOS", "watchOS"];
                c.text("Message", message.as_deref(), NOT_VISION)?;
                c.text("PhoneNumber", phone_number.as_deref(), NOT_VISION)?;
                c.pin(pin)?;
            }
            CommandSpec::EraseDevice {
                pin,
                preserve_data_plan,
                disallow_proximity_setup,
            } => {
                c.put(
                    "PreserveDataPlan",
                    preserve_data_plan.map(Value::Boolean),
                    &["iOS", "watchOS"],
                )?;
                c.put(
                    "DisallowProximitySetup",
                    disallow_proximity_setup.map(Value::Boolean),
                    IOS,
                )?;
                c.pin(pin)?;
            }
            CommandSpec::InstallProfile { payload } => {
                c.dict
                    .insert("Payload".into(), Value::Data(decode_profile(payload)?));
            }
            CommandSpec::RemoveProfile { identifier } => {
                c.text("Identifier", Some(identifier), ALL)?;
            }
            CommandSpec::DeviceInformation { queries } => {
                let queries = match queries {
                    Some(given) => c.list("Queries", given)?,
                    None => default_queries(ctx.os),
                };
                c.dict.insert("Queries".into(), queries);
            }
            CommandSpec::InstalledApplicationList {
                identifiers,
                managed_apps_only,
            } => {
                if let Some(ids) = identifiers {
                    let ids = c.list("Identifiers", ids)?;
                    c.dict.insert("Identifiers".into(), ids);
                }
                c.put(
                    "ManagedAppsOnly",
                    managed_apps_only.map(Value::Boolean),
                    ALL,
                )?;
            }
            CommandSpec::RestartDevice { notify_user } => {
                c.put("NotifyUser", notify_user.map(Value::Boolean), MACOS)?;
            }
            CommandSpec::ClearPasscode => {
                let token = ctx
                    .unlock_token
                    .filter(|t| !t.is_empty())
                    .ok_or(BuildError::MissingUnlockToken)?;
                c.dict
                    .insert("UnlockToken".into(), Value::Data(token.to_vec()));
            }
            CommandSpec::EnableLostMode {
                message,
                phone_number,
                footnote,
            } => {
                c.text("Message", message.as_deref(), ALL)?;
                c.text("PhoneNumber", phone_number.as_deref(), ALL)?;
                c.text("Footnote", footnote.as_deref(), ALL)?;
                if message.is_none() && phone_number.is_none() {
                    return Err(BuildError::LostModeNeedsContact);
                }
            }
            CommandSpec::ProfileList
            | CommandSpec::SecurityInfo
            | CommandSpec::CertificateList
            | CommandSpec::ShutDownDevice
            | CommandSpec::DisableLostMode
            | CommandSpec::DeviceLocation
            | CommandSpec::PlayLostModeSound
            | CommandSpec::Raw { .. } => {}
        }
        Ok(c.dict)
    }
}

/// The inner Command dictionary under construction, with the checks every key shares.
struct Command {
    os: AppleOs,
    request_type: &'static str,
    dict: Dictionary,
}

impl Command {
    fn put(
        &mut self,
        key: &'static str,
        value: Option<Value>,
        platforms: Platforms,
    ) -> Result<(), BuildError> {
        let Some(value) = value else { return Ok(()) };
        if !self.os.is_in(platforms) {
            return Err(BuildError::UnsupportedKey {
                request_type: self.request_type,
                key,
                supported: platforms.join(", "),
            });
        }
        self.dict.insert(key.into(), value);
        Ok(())
    }

    fn text(
        &mut self,
        key: &'static str,
        value: Option<&str>,
        platforms: Platforms,
    ) -> Result<(), BuildError> {
        let value = value.map(|v| self.non_empty(key, v)).transpose()?;
        self.put(key, value.map(Value::from), platforms)
    }

    fn non_empty<'v>(&self, key: &'static str, value: &'v str) -> Result<&'v str, BuildError> {
        if value.trim().is_empty() {
            return Err(BuildError::Empty {
                request_type: self.request_type,
                key,
            });
        }
        // A lock-screen message, a phone number, a query name: short texts a device
        // shows or looks up. Megabytes would be stored, queued and pushed for nothing.
        if value.chars().count() > MAX_TEXT_CHARS {
            return Err(BuildError::TooLong {
                request_type: self.request_type,
                key,
                max: MAX_TEXT_CHARS,
            });
        }
        Ok(value)
    }

    /// A string array in which neither the list nor any entry may be empty.
    fn list(&self, key: &'static str, items: &[String]) -> Result<Value, BuildError> {
        if items.is_empty() {
            return Err(BuildError::Empty {
                request_type: self.request_type,
                key,
            });
        }
        items
            .iter()
            .map(|item| self.non_empty(key, item).map(Value::from))
            .collect::<Result<_, _>>()
            .map(Value::Array)
    }

    /// The Find My PIN of DeviceLock and EraseDevice.
    fn pin(&mut self, pin: &Option<String>) -> Result<(), BuildError> {
        let Some(pin) = pin else { return Ok(()) };
        self.put("PIN", Some(pin.as_str().into()), MACOS)?;
        if pin.len() != 6 || !pin.bytes().all(|b| b.is_ascii_digit()) {
            return Err(BuildError::InvalidPin);
        }
        Ok(())
    }
}

/// Queries the server stores, each with the platforms whose schema does not mark it
/// `n/a`; asking a device for a query it does not know is harmless but wastes a reply key.
const DEFAULT_QUERIES: &[(&str, Platforms)] = &[
    ("UDID", ALL),
    ("DeviceName", ALL),
    ("OSVersion", ALL),
    ("BuildVersion", ALL),
    ("SupplementalBuildVersion", ALL),
    ("SupplementalOSVersionExtra", ALL),
    ("ProductName", ALL),
    ("Model", &["iOS", "macOS", "tvOS", "watchOS"]),
    ("ModelName", ALL),
    ("ModelNumber", ALL),
    ("SerialNumber", ALL),
    ("IsSupervised", ALL),
    ("IsActivationLockEnabled", &["iOS", "macOS", "watchOS"]),
    ("AwaitingConfiguration", ALL),
    ("DeviceCapacity", &["iOS", "macOS", "visionOS", "watchOS"]),
    (
        "AvailableDeviceCapacity",
        &["iOS", "macOS", "visionOS", "watchOS"],
    ),
    ("BatteryLevel", &["iOS", "macOS", "visionOS", "watchOS"]),
    ("WiFiMAC", ALL),
    ("BluetoothMAC", &["iOS", "macOS", "tvOS", "visionOS"]),
    ("EthernetMAC", MACOS),
    ("IMEI", IOS),
    ("MEID", IOS),
    ("ICCID", IOS),
    ("PhoneNumber", IOS),
    ("IsMDMLostModeEnabled", &["iOS", "watchOS"]),
    (
        "IsDeviceLocatorServiceEnabled",
        &["iOS", "visionOS", "watchOS"],
    ),
    ("IsMultiUser", IOS),
    ("IsAppleSilicon", MACOS),
    ("PINRequiredForDeviceLock", MACOS),
    ("PINRequiredForEraseDevice", MACOS),
    ("SystemIntegrityProtectionEnabled", MACOS),
    ("HostName", MACOS),
];

fn default_queries(os: AppleOs) -> Value {
    DEFAULT_QUERIES
        .iter()
        .filter(|(_, platforms)| os.is_in(platforms))
        .map(|&(query, _)| Value::from(query))
        .collect::<Vec<_>>()
        .into()
}

/// Decodes an admin-supplied .mobileconfig; line breaks are tolerated because
/// `base64` and `openssl base64` wrap their output.
fn decode_profile(payload: &str) -> Result<Vec<u8>, BuildError> {
    const LENIENT: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    let compact: String = payload.split_ascii_whitespace().collect();
    if compact.is_empty() {
        return Err(BuildError::EmptyPayload);
    }
    let bytes = LENIENT
        .decode(compact)
        .map_err(|_| BuildError::InvalidBase64)?;
    // A profile is an XML or binary plist, or CMS signed data (a DER SEQUENCE).
    let body = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&bytes);
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    if !(first == Some(&b'<') || body.starts_with(b"bplist") || body.first() == Some(&0x30)) {
        return Err(BuildError::NotAProfile);
    }
    Ok(bytes)
}

/// The inner Command dictionary of an admin-written plist in either accepted shape.
fn raw_command(text: &str) -> Result<Dictionary, BuildError> {
    // Admins are trusted less than the wire format: the same bounded reader as devices.
    let value = crate::bounded::read_value(text.as_bytes(), &crate::bounded::PlistLimits::DEVICE)
        .map_err(|e| BuildError::InvalidRawPlist(e.reason))?;
    let mut top = value
        .into_dictionary()
        .ok_or(BuildError::RawNotADictionary)?;
    let command = match top.remove("Command") {
        Some(Value::Dictionary(command)) => {
            if let Some(key) = top.keys().find(|k| *k != "CommandUUID") {
                return Err(BuildError::RawUnexpectedKey(key.clone()));
            }
            command
        }
        Some(_) => return Err(BuildError::RawMissingRequestType),
        None => top,
    };
    match command.get("RequestType").and_then(Value::as_string) {
        Some(rt) if !rt.trim().is_empty() => {}
        _ => return Err(BuildError::RawMissingRequestType),
    }
    // Apple's examples put RequestType first; keep that, and the admin's order otherwise,
    // so stored plists read naturally. (Dictionary::remove would swap keys around.)
    let (first, rest): (Vec<_>, Vec<_>) =
        command.into_iter().partition(|(k, _)| k == "RequestType");
    Ok(first.into_iter().chain(rest).collect())
}

/// Keys whose values are secrets in Apple's command schema: UnlockToken and the Find My
/// PIN, plus the passwords of SetFirmwarePassword, SetRecoveryLock, UnlockUserAccount and
/// SetAutoAdminPassword, which an admin can only send as Raw.
const SECRET_KEYS: &[&str] = &[
    "UnlockToken",
    "PIN",
    "Password",
    "CurrentPassword",
    "NewPassword",
    "passwordHash",
];

fn has_secret(dict: &Dictionary) -> bool {
    fn walk(value: &Value) -> bool {
        match value {
            Value::Dictionary(d) => has_secret(d),
            Value::Array(items) => items.iter().any(walk),
            _ => false,
        }
    }
    dict.iter()
        .any(|(k, v)| SECRET_KEYS.contains(&k.as_str()) || walk(v))
}

#[cfg(test)]
mod tests;
