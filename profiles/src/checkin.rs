//! Check-in messages: what a device sends to the profile's CheckInURL.
//!
//! Each message is a plist dictionary whose `MessageType` names it. Field names are
//! Apple's; unknown fields are ignored so newer OS releases do not break enrollment.

use crate::bounded::{self, PlistLimits};
use crate::ParseError;
use plist::Value;
use serde::Deserialize;

/// Identifies which channel a message is for: the device itself, or a user on it.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct Enrollment {
    #[serde(rename = "UDID")]
    pub udid: Option<String>,
    #[serde(rename = "UserID")]
    pub user_id: Option<String>,
    #[serde(rename = "EnrollmentID")]
    pub enrollment_id: Option<String>,
    pub user_short_name: Option<String>,
    pub user_long_name: Option<String>,
}

impl Enrollment {
    /// The device identifier the server keys records by: the UDID, or the
    /// EnrollmentID of a user-enrolled device (which has no UDID).
    pub fn device_key(&self) -> Option<&str> {
        self.udid
            .as_deref()
            .or(self.enrollment_id.as_deref())
            .filter(|s| !s.is_empty())
    }

    /// A user channel message carries a UserID (macOS) or comes from a shared iPad user.
    pub fn is_user_channel(&self) -> bool {
        self.user_id.is_some()
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct Authenticate {
    /// Filled by [`decode`] (plist's deserializer cannot buffer `serde(flatten)`).
    #[serde(skip)]
    pub enrollment: Enrollment,
    pub topic: Option<String>,
    pub serial_number: Option<String>,
    pub model: Option<String>,
    pub model_name: Option<String>,
    pub product_name: Option<String>,
    #[serde(rename = "OSVersion")]
    pub os_version: Option<String>,
    pub build_version: Option<String>,
    pub device_name: Option<String>,
    #[serde(rename = "IMEI")]
    pub imei: Option<String>,
    #[serde(rename = "MEID")]
    pub meid: Option<String>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct TokenUpdate {
    /// Filled by [`decode`] (plist's deserializer cannot buffer `serde(flatten)`).
    #[serde(skip)]
    pub enrollment: Enrollment,
    pub topic: Option<String>,
    pub token: Option<plist::Data>,
    pub push_magic: Option<String>,
    pub unlock_token: Option<plist::Data>,
    pub awaiting_configuration: Option<bool>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct CheckOut {
    /// Filled by [`decode`] (plist's deserializer cannot buffer `serde(flatten)`).
    #[serde(skip)]
    pub enrollment: Enrollment,
    pub topic: Option<String>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct SetBootstrapToken {
    /// Filled by [`decode`] (plist's deserializer cannot buffer `serde(flatten)`).
    #[serde(skip)]
    pub enrollment: Enrollment,
    /// Absent when the device asks the server to forget the token.
    pub bootstrap_token: Option<plist::Data>,
    pub awaiting_configuration: Option<bool>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct GetBootstrapToken {
    /// Filled by [`decode`] (plist's deserializer cannot buffer `serde(flatten)`).
    #[serde(skip)]
    pub enrollment: Enrollment,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct UserAuthenticate {
    /// Filled by [`decode`] (plist's deserializer cannot buffer `serde(flatten)`).
    #[serde(skip)]
    pub enrollment: Enrollment,
    pub digest_response: Option<String>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct DeclarativeManagement {
    /// Filled by [`decode`] (plist's deserializer cannot buffer `serde(flatten)`).
    #[serde(skip)]
    pub enrollment: Enrollment,
    pub endpoint: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum CheckinMessage {
    Authenticate(Authenticate),
    TokenUpdate(TokenUpdate),
    CheckOut(CheckOut),
    SetBootstrapToken(SetBootstrapToken),
    GetBootstrapToken(GetBootstrapToken),
    UserAuthenticate(UserAuthenticate),
    DeclarativeManagement(DeclarativeManagement),
}

impl CheckinMessage {
    pub fn message_type(&self) -> &'static str {
        match self {
            CheckinMessage::Authenticate(_) => "Authenticate",
            CheckinMessage::TokenUpdate(_) => "TokenUpdate",
            CheckinMessage::CheckOut(_) => "CheckOut",
            CheckinMessage::SetBootstrapToken(_) => "SetBootstrapToken",
            CheckinMessage::GetBootstrapToken(_) => "GetBootstrapToken",
            CheckinMessage::UserAuthenticate(_) => "UserAuthenticate",
            CheckinMessage::DeclarativeManagement(_) => "DeclarativeManagement",
        }
    }

    fn enrollment_mut(&mut self) -> &mut Enrollment {
        match self {
            CheckinMessage::Authenticate(m) => &mut m.enrollment,
            CheckinMessage::TokenUpdate(m) => &mut m.enrollment,
            CheckinMessage::CheckOut(m) => &mut m.enrollment,
            CheckinMessage::SetBootstrapToken(m) => &mut m.enrollment,
            CheckinMessage::GetBootstrapToken(m) => &mut m.enrollment,
            CheckinMessage::UserAuthenticate(m) => &mut m.enrollment,
            CheckinMessage::DeclarativeManagement(m) => &mut m.enrollment,
        }
    }

    pub fn enrollment(&self) -> &Enrollment {
        match self {
            CheckinMessage::Authenticate(m) => &m.enrollment,
            CheckinMessage::TokenUpdate(m) => &m.enrollment,
            CheckinMessage::CheckOut(m) => &m.enrollment,
            CheckinMessage::SetBootstrapToken(m) => &m.enrollment,
            CheckinMessage::GetBootstrapToken(m) => &m.enrollment,
            CheckinMessage::UserAuthenticate(m) => &m.enrollment,
            CheckinMessage::DeclarativeManagement(m) => &m.enrollment,
        }
    }
}

#[derive(Deserialize)]
struct Envelope {
    #[serde(rename = "MessageType")]
    message_type: Option<String>,
}

/// Reads a check-in plist (XML or binary) into the message it names, within
/// [`PlistLimits::DEVICE`].
pub fn decode(body: &[u8]) -> Result<CheckinMessage, ParseError> {
    decode_with(body, &PlistLimits::DEVICE)
}

/// [`decode`] with explicit limits. The plist is read once, bounded and without
/// recursion; serde then only walks a tree of bounded depth.
pub fn decode_with(body: &[u8], limits: &PlistLimits) -> Result<CheckinMessage, ParseError> {
    let value = Value::Dictionary(bounded::read_dictionary(body, limits)?);
    let envelope: Envelope = plist::from_value(&value)
        .map_err(|e| ParseError::new(format!("not a check-in message: {e}"), body))?;
    let kind = envelope
        .message_type
        .ok_or_else(|| ParseError::new("check-in message has no MessageType", body))?;
    fn typed<T: serde::de::DeserializeOwned>(
        value: &Value,
        body: &[u8],
        kind: &str,
    ) -> Result<T, ParseError> {
        plist::from_value(value)
            .map_err(|e| ParseError::new(format!("malformed {kind}: {e}"), body))
    }
    let enrollment: Enrollment = typed(&value, body, &kind)?;
    let mut message = match kind.as_str() {
        "Authenticate" => CheckinMessage::Authenticate(typed(&value, body, &kind)?),
        "TokenUpdate" => CheckinMessage::TokenUpdate(typed(&value, body, &kind)?),
        "CheckOut" => CheckinMessage::CheckOut(typed(&value, body, &kind)?),
        "SetBootstrapToken" => CheckinMessage::SetBootstrapToken(typed(&value, body, &kind)?),
        "GetBootstrapToken" => CheckinMessage::GetBootstrapToken(typed(&value, body, &kind)?),
        "UserAuthenticate" => CheckinMessage::UserAuthenticate(typed(&value, body, &kind)?),
        "DeclarativeManagement" => {
            CheckinMessage::DeclarativeManagement(typed(&value, body, &kind)?)
        }
        other => {
            return Err(ParseError::new(
                format!("unsupported check-in MessageType {other:?}"),
                body,
            ))
        }
    };
    *message.enrollment_mut() = enrollment;
    if message.enrollment().device_key().is_none() {
        return Err(ParseError::new(
            format!("{kind} carries neither UDID nor EnrollmentID"),
            body,
        ));
    }
    Ok(message)
}

/// The reply to GetBootstrapToken: `{BootstrapToken: <data>}`.
pub fn bootstrap_token_reply(token: &[u8]) -> Vec<u8> {
    let mut dict = plist::Dictionary::new();
    dict.insert("BootstrapToken".into(), plist::Value::Data(token.to_vec()));
    to_xml(&plist::Value::Dictionary(dict))
}

pub(crate) fn to_xml(value: &plist::Value) -> Vec<u8> {
    let mut out = Vec::new();
    // Writing a Value to a Vec cannot fail: no I/O error and every Value is writable.
    value
        .to_writer_xml(&mut out)
        .expect("plist value serialises to memory");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plist(entries: &[(&str, plist::Value)]) -> Vec<u8> {
        let dict: plist::Dictionary = entries
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        to_xml(&plist::Value::Dictionary(dict))
    }

    #[test]
    fn decodes_authenticate() {
        let body = plist(&[
            ("MessageType", "Authenticate".into()),
            ("UDID", "UDID-1".into()),
            ("SerialNumber", "C02XX".into()),
            ("OSVersion", "17.4".into()),
            ("Topic", "com.apple.mgmt.External.x".into()),
        ]);
        let CheckinMessage::Authenticate(a) = decode(&body).unwrap() else {
            panic!("wrong type")
        };
        assert_eq!(a.enrollment.udid.as_deref(), Some("UDID-1"));
        assert_eq!(a.serial_number.as_deref(), Some("C02XX"));
        assert_eq!(a.os_version.as_deref(), Some("17.4"));
    }

    #[test]
    fn decodes_token_update_with_data() {
        let body = plist(&[
            ("MessageType", "TokenUpdate".into()),
            ("UDID", "UDID-1".into()),
            ("Token", plist::Value::Data(vec![0xab, 0xcd])),
            ("PushMagic", "magic".into()),
            ("UnlockToken", plist::Value::Data(vec![1, 2, 3])),
        ]);
        let CheckinMessage::TokenUpdate(t) = decode(&body).unwrap() else {
            panic!("wrong type")
        };
        assert_eq!(t.token.map(Vec::from), Some(vec![0xab, 0xcd]));
        assert_eq!(t.unlock_token.map(Vec::from), Some(vec![1, 2, 3]));
    }

    #[test]
    fn rejects_garbage_unknown_types_and_missing_ids() {
        assert!(decode(b"not a plist").is_err());
        let unknown = plist(&[("MessageType", "Bogus".into()), ("UDID", "x".into())]);
        assert!(decode(&unknown).unwrap_err().reason.contains("unsupported"));
        let no_id = plist(&[("MessageType", "CheckOut".into())]);
        assert!(decode(&no_id).is_err());
        let wrong_type = plist(&[
            ("MessageType", "Authenticate".into()),
            ("UDID", plist::Value::Integer(5.into())),
        ]);
        assert!(decode(&wrong_type).is_err());
    }
}
