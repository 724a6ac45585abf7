//! The enrollment configuration profile (`.mobileconfig`) that an Apple device
//! installs to join MDM: the device CA root, a SCEP payload that makes the device
//! request its identity certificate, and the MDM payload that uses that identity.
//!
//! The output is the unsigned XML plist; signing is a separate, optional step
//! (`enrollment::signing`), so that this crate stays free of cryptography.
//!
//! Keys and types follow Apple's device-management schema
//! (`mdm/profiles/{TopLevel,CommonPayloadKeys,com.apple.security.root,
//! com.apple.security.scep,com.apple.mdm}.yaml`). Inputs are checked here because a
//! device that rejects a profile only says "The profile is invalid", without naming
//! the key at fault.

use plist::{Dictionary, Value};

/// Everything that varies between enrollment profiles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnrollmentProfileSpec {
    /// PayloadOrganization, shown on the device.
    pub organization: String,
    /// Top-level PayloadDisplayName, e.g. "Town Hall MDM".
    pub display_name: String,
    /// Top-level PayloadIdentifier, e.g. "gov.townhall.mdm.enrollment".
    pub identifier: String,
    /// The device CA certificate (DER), installed as a trusted root.
    pub ca_certificate_der: Vec<u8>,
    /// Roots of the server's HTTPS certificate (DER) that the phone does not know
    /// (the server's own TLS root, or the admin's private CA), each installed as a
    /// trusted root: iOS trusts the profile's roots for its SCEP and MDM URLs while
    /// installing it. Empty for a certificate from a public CA.
    pub server_roots_der: Vec<Vec<u8>>,
    /// The SCEP endpoint, e.g. `https://mdm.example.org/scep`.
    pub scep_url: String,
    /// The one-time challenge the SCEP server expects.
    pub scep_challenge: String,
    /// Common name of the requested identity, unique per profile ("mdm-device-<uuid>").
    pub scep_subject_cn: String,
    /// RSA key size in bits: 1024, 2048 or 4096.
    pub scep_key_size: u32,
    /// Apple's SCEP "Key Usage" bit mask: 1 signing, 4 encryption, 5 both.
    pub scep_key_usage: u8,
    /// MDM ServerURL.
    pub server_url: String,
    /// MDM CheckInURL.
    pub check_in_url: String,
    /// The push topic (`com.apple.mgmt.External.<uuid>`). `None` leaves the key out: the
    /// schema requires it and devices refuse such a profile, so the server should only
    /// build one without a topic for inspection, with a warning.
    pub topic: Option<String>,
    /// MDM AccessRights bit mask, 1..=8191 (8191 = all).
    pub access_rights: u32,
    pub check_out_when_removed: bool,
    /// MDM ServerCapabilities, e.g. `com.apple.mdm.per-user-connections`.
    pub server_capabilities: Vec<String>,
    /// MDM SignMessage: devices add the `Mdm-Signature` header to every request.
    pub sign_message: bool,
}

/// The generated profile and the UUIDs the server keeps to recognise it later.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltProfile {
    /// The unsigned profile, an XML plist.
    pub plist_xml: Vec<u8>,
    /// The top-level PayloadUUID.
    pub profile_uuid: String,
    /// The SCEP payload's PayloadUUID, which the MDM payload's
    /// IdentityCertificateUUID points to.
    pub scep_payload_uuid: String,
}

/// An input that would produce a profile the device rejects, naming the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProfileError {
    #[error("{field}: {reason}")]
    Invalid { field: &'static str, reason: String },
    #[error("could not write the profile plist: {0}")]
    Serialize(String),
}

fn invalid(field: &'static str, reason: impl Into<String>) -> ProfileError {
    ProfileError::Invalid {
        field,
        reason: reason.into(),
    }
}

/// ServerCapabilities values the schema allows; a device rejects the payload over any
/// other value, so an unknown one is an error here rather than a failed enrollment.
pub const KNOWN_SERVER_CAPABILITIES: &[&str] = &[
    "com.apple.mdm.per-user-connections",
    "com.apple.mdm.bootstraptoken",
    "com.apple.mdm.token",
];

/// All AccessRights bits (1 | 2 | ... | 4096).
pub const ALL_ACCESS_RIGHTS: u32 = 8191;

/// Builds the enrollment profile after checking every input.
///
/// Each call makes fresh PayloadUUIDs, so two profiles built from the same spec are
/// distinct installations as far as the device is concerned; the PayloadIdentifiers
/// stay the same, which is what makes a newer profile replace an older one.
pub fn build_enrollment_profile(
    spec: &EnrollmentProfileSpec,
) -> Result<BuiltProfile, ProfileError> {
    validate(spec)?;

    let profile_uuid = new_uuid();
    let root_uuid = new_uuid();
    let scep_uuid = new_uuid();
    let mdm_uuid = new_uuid();

    let root = {
        let mut d = payload_header(
            "com.apple.security.root",
            &format!("{}.ca", spec.identifier),
            &root_uuid,
            &format!("{} device CA", spec.organization),
            &spec.organization,
        );
        d.insert(
            "PayloadContent".into(),
            Value::Data(spec.ca_certificate_der.clone()),
        );
        d
    };

    let mut server_roots = Vec::new();
    for (n, der) in spec.server_roots_der.iter().enumerate() {
        let mut d = payload_header(
            "com.apple.security.root",
            &format!("{}.server-root.{}", spec.identifier, n + 1),
            &new_uuid(),
            &format!("{} server certificate authority", spec.organization),
            &spec.organization,
        );
        d.insert("PayloadContent".into(), Value::Data(der.clone()));
        server_roots.push(Value::Dictionary(d));
    }

    let scep = {
        let mut content = Dictionary::new();
        content.insert("URL".into(), spec.scep_url.clone().into());
        // iOS sends Name as GetCACert's `message` parameter, for servers that host
        // several CAs; ours has one and ignores it, so the organization serves as a
        // readable label.
        content.insert("Name".into(), spec.organization.clone().into());
        // X.500 name as an array of RDNs, each an array of [type, value] pairs.
        let cn_pair = Value::Array(vec!["CN".into(), spec.scep_subject_cn.clone().into()]);
        content.insert(
            "Subject".into(),
            Value::Array(vec![Value::Array(vec![cn_pair])]),
        );
        content.insert("Challenge".into(), spec.scep_challenge.clone().into());
        content.insert("Keysize".into(), i64::from(spec.scep_key_size).into());
        content.insert("Key Type".into(), "RSA".into());
        content.insert("Key Usage".into(), i64::from(spec.scep_key_usage).into());
        // No Retries/RetryDelay: they only matter for a CA that answers PENDING, and
        // ours issues (or refuses) at once. No CAFingerprint: the CA root travels in
        // this same profile, and the schema leaves the hash algorithm unspecified.
        let mut d = payload_header(
            "com.apple.security.scep",
            &format!("{}.scep", spec.identifier),
            &scep_uuid,
            "Device identity",
            &spec.organization,
        );
        d.insert("PayloadContent".into(), Value::Dictionary(content));
        d
    };

    let mdm = {
        let mut d = payload_header(
            "com.apple.mdm",
            &format!("{}.mdm", spec.identifier),
            &mdm_uuid,
            &spec.display_name,
            &spec.organization,
        );
        d.insert("ServerURL".into(), spec.server_url.clone().into());
        d.insert("CheckInURL".into(), spec.check_in_url.clone().into());
        if let Some(topic) = &spec.topic {
            d.insert("Topic".into(), topic.clone().into());
        }
        d.insert("IdentityCertificateUUID".into(), scep_uuid.clone().into());
        d.insert("SignMessage".into(), spec.sign_message.into());
        d.insert("AccessRights".into(), i64::from(spec.access_rights).into());
        d.insert(
            "CheckOutWhenRemoved".into(),
            spec.check_out_when_removed.into(),
        );
        if !spec.server_capabilities.is_empty() {
            d.insert(
                "ServerCapabilities".into(),
                Value::Array(
                    spec.server_capabilities
                        .iter()
                        .map(|c| Value::from(c.clone()))
                        .collect(),
                ),
            );
        }
        // Certificate pinning (ServerURLPinningCertificateUUIDs and its CheckIn twin)
        // is left out: pinning the wrong certificate locks every device out with no
        // way to fix it remotely, so it needs its own, deliberate configuration.
        d
    };

    let mut top = Dictionary::new();
    top.insert(
        "PayloadContent".into(),
        // Roots first: the SCEP and MDM payloads that follow reach the server
        // through them.
        Value::Array(
            std::iter::once(Value::Dictionary(root))
                .chain(server_roots)
                .chain([Value::Dictionary(scep), Value::Dictionary(mdm)])
                .collect(),
        ),
    );
    top.insert(
        "PayloadDisplayName".into(),
        spec.display_name.clone().into(),
    );
    top.insert("PayloadIdentifier".into(), spec.identifier.clone().into());
    top.insert(
        "PayloadOrganization".into(),
        spec.organization.clone().into(),
    );
    // Explicitly false: the user must always be able to leave MDM on a device that
    // was enrolled by hand (and iOS ignores true outside supervision anyway).
    top.insert("PayloadRemovalDisallowed".into(), false.into());
    top.insert("PayloadType".into(), "Configuration".into());
    top.insert("PayloadUUID".into(), profile_uuid.clone().into());
    top.insert("PayloadVersion".into(), 1i64.into());

    let mut plist_xml = Vec::new();
    Value::Dictionary(top)
        .to_writer_xml(&mut plist_xml)
        .map_err(|e| ProfileError::Serialize(e.to_string()))?;
    Ok(BuiltProfile {
        plist_xml,
        profile_uuid,
        scep_payload_uuid: scep_uuid,
    })
}

/// Upper-case like Apple's own tools write them (`uuidgen`); devices accept either,
/// but upper case keeps our profiles comparable with ones made by Apple Configurator.
fn new_uuid() -> String {
    uuid::Uuid::new_v4().hyphenated().to_string().to_uppercase()
}

fn payload_header(
    payload_type: &str,
    identifier: &str,
    uuid: &str,
    display_name: &str,
    organization: &str,
) -> Dictionary {
    let mut d = Dictionary::new();
    d.insert("PayloadType".into(), payload_type.into());
    d.insert("PayloadVersion".into(), 1i64.into());
    d.insert("PayloadIdentifier".into(), identifier.into());
    d.insert("PayloadUUID".into(), uuid.into());
    d.insert("PayloadDisplayName".into(), display_name.into());
    d.insert("PayloadOrganization".into(), organization.into());
    d
}

fn validate(spec: &EnrollmentProfileSpec) -> Result<(), ProfileError> {
    text("organization", &spec.organization)?;
    text("display_name", &spec.display_name)?;
    identifier(&spec.identifier)?;
    der_certificate("ca_certificate_der", &spec.ca_certificate_der)?;
    for der in &spec.server_roots_der {
        der_certificate("server_roots_der", der)?;
    }

    url("scep_url", &spec.scep_url, true)?;
    text("scep_challenge", &spec.scep_challenge)?;
    text("scep_subject_cn", &spec.scep_subject_cn)?;
    // X.520 upper bound for commonName; a longer one makes the CSR unencodable for
    // many CAs, and the device reports only a generic SCEP failure.
    if spec.scep_subject_cn.chars().count() > 64 {
        return Err(invalid("scep_subject_cn", "longer than 64 characters"));
    }
    if ![1024, 2048, 4096].contains(&spec.scep_key_size) {
        return Err(invalid(
            "scep_key_size",
            format!(
                "{} is not a key size Apple devices offer (1024, 2048 or 4096)",
                spec.scep_key_size
            ),
        ));
    }
    match spec.scep_key_usage {
        // 0 means no preference; our CA then issues a certificate for both uses.
        0 | 1 | 5 => {}
        4 => {
            return Err(invalid(
                "scep_key_usage",
                "4 (encryption only) cannot work for an MDM identity, which signs TLS \
                 client authentication and Mdm-Signature headers; use 5 (signing and \
                 encryption) or 1 (signing)",
            ))
        }
        other => {
            return Err(invalid(
                "scep_key_usage",
                format!("{other} is not a key usage mask Apple defines; use 5 (signing and encryption), 1 (signing) or 0 (no preference)"),
            ))
        }
    }

    url("server_url", &spec.server_url, false)?;
    url("check_in_url", &spec.check_in_url, false)?;
    if let Some(topic) = &spec.topic {
        text("topic", topic)?;
        if !topic.starts_with("com.apple.mgmt.") || topic.len() == "com.apple.mgmt.".len() {
            return Err(invalid(
                "topic",
                format!("{topic:?} is not an MDM push topic (it must start with \"com.apple.mgmt.\"; it is the UID in the push certificate's subject)"),
            ));
        }
        if topic.chars().any(char::is_whitespace) {
            return Err(invalid("topic", "contains whitespace"));
        }
    }
    access_rights(spec.access_rights)?;
    let mut seen = Vec::new();
    for capability in &spec.server_capabilities {
        if !KNOWN_SERVER_CAPABILITIES.contains(&capability.as_str()) {
            return Err(invalid(
                "server_capabilities",
                format!(
                    "{capability:?} is not a capability Apple's schema knows ({})",
                    KNOWN_SERVER_CAPABILITIES.join(", ")
                ),
            ));
        }
        if seen.contains(&capability) {
            return Err(invalid(
                "server_capabilities",
                format!("{capability:?} is listed twice (Apple requires a unique array)"),
            ));
        }
        seen.push(capability);
    }
    Ok(())
}

/// Non-empty and free of control characters, which XML 1.0 cannot carry and which
/// would make the whole plist unreadable for the device.
fn text(field: &'static str, value: &str) -> Result<(), ProfileError> {
    if value.trim().is_empty() {
        return Err(invalid(field, "must not be empty"));
    }
    if value.chars().any(char::is_control) {
        return Err(invalid(field, "contains control characters"));
    }
    Ok(())
}

/// Reverse-DNS style, as Apple's tools write them; devices compare identifiers to
/// decide whether a profile replaces an installed one, so spaces and odd characters
/// are refused rather than risk two spellings of "the same" profile.
fn identifier(value: &str) -> Result<(), ProfileError> {
    text("identifier", value)?;
    let ok = value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
    if !ok || value.starts_with('.') || value.ends_with('.') || value.contains("..") {
        return Err(invalid(
            "identifier",
            format!("{value:?} is not a reverse-DNS identifier such as \"org.example.mdm.enrollment\" (letters, digits, '.', '-', '_')"),
        ));
    }
    Ok(())
}

/// `https://host...` (or `http://` where `allow_http`: SCEP messages are encrypted and
/// signed themselves, and Apple devices accept a plain-HTTP SCEP URL).
fn url(field: &'static str, value: &str, allow_http: bool) -> Result<(), ProfileError> {
    if value.trim().is_empty() {
        return Err(invalid(field, "must not be empty"));
    }
    let rest = if let Some(rest) = value.strip_prefix("https://") {
        rest
    } else if let Some(rest) = value.strip_prefix("http://").filter(|_| allow_http) {
        rest
    } else {
        let wanted = if allow_http {
            "https:// or http://"
        } else {
            "https://"
        };
        return Err(invalid(
            field,
            format!("{value:?} must start with {wanted}"),
        ));
    };
    if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(invalid(field, format!("{value:?} contains whitespace")));
    }
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    if host.is_empty() || host.starts_with(':') {
        return Err(invalid(field, format!("{value:?} has no host name")));
    }
    Ok(())
}

/// The certificate must be DER: one complete ASN.1 SEQUENCE. PEM (the common mistake)
/// gets its own message, since the device would show an unusable certificate.
fn der_certificate(field: &'static str, der: &[u8]) -> Result<(), ProfileError> {
    if der.is_empty() {
        return Err(invalid(field, "is empty"));
    }
    if der.starts_with(b"-----BEGIN") {
        return Err(invalid(
            field,
            "is PEM text; pass the DER bytes (openssl x509 -outform DER)",
        ));
    }
    let declared = der_sequence_len(der).ok_or_else(|| {
        invalid(
            field,
            "is not a DER-encoded certificate (no ASN.1 SEQUENCE)",
        )
    })?;
    if declared != der.len() {
        return Err(invalid(
            field,
            format!(
                "DER length mismatch: the certificate declares {declared} bytes, {} were given",
                der.len()
            ),
        ));
    }
    Ok(())
}

/// Total length (header included) of the DER SEQUENCE at the start of `der`.
fn der_sequence_len(der: &[u8]) -> Option<usize> {
    if der.first() != Some(&0x30) {
        return None;
    }
    let first = *der.get(1)?;
    if first < 0x80 {
        return Some(2 + usize::from(first));
    }
    let count = usize::from(first & 0x7f);
    if count == 0 || count > 4 {
        return None;
    }
    let bytes = der.get(2..2 + count)?;
    let len = bytes
        .iter()
        .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
    (2 + count).checked_add(len)
}

/// Apple's rules: 1..=8191, never 0, and 2 (install profiles) needs 1 (inspect them),
/// 128 (install provisioning profiles) needs 64 (inspect them).
fn access_rights(rights: u32) -> Result<(), ProfileError> {
    const FIELD: &str = "access_rights";
    if rights == 0 {
        return Err(invalid(FIELD, "must not be 0 (8191 grants all rights)"));
    }
    if rights > ALL_ACCESS_RIGHTS {
        return Err(invalid(
            FIELD,
            format!("{rights} has bits Apple does not define (at most 8191)"),
        ));
    }
    if rights & 2 != 0 && rights & 1 == 0 {
        return Err(invalid(
            FIELD,
            "2 (install and remove profiles) requires 1 (inspect profiles)",
        ));
    }
    if rights & 128 != 0 && rights & 64 == 0 {
        return Err(invalid(
            FIELD,
            "128 (install and remove provisioning profiles) requires 64 (inspect provisioning profiles)",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn der_length_forms() {
        assert_eq!(der_sequence_len(&[0x30, 0x03, 1, 2, 3]), Some(5));
        assert_eq!(der_sequence_len(&[0x30, 0x81, 0x80]), Some(3 + 128));
        assert_eq!(der_sequence_len(&[0x30, 0x82, 0x01, 0x00]), Some(4 + 256));
        assert_eq!(der_sequence_len(&[0x31, 0x00]), None);
        assert_eq!(der_sequence_len(&[0x30, 0x80]), None);
        assert_eq!(der_sequence_len(&[0x30]), None);
    }
}
