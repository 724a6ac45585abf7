//! A policy as one Apple configuration profile per policy and device.
//!
//! Payloads, in this order: the trusted roots (`com.apple.security.root`), the SCEP
//! payload when a network uses EAP-TLS (`com.apple.security.scep`), the passcode
//! rules (`com.apple.mobiledevice.passwordpolicy`), the Wi-Fi networks
//! (`com.apple.wifi.managed` with `EAPClientConfiguration`), the mail accounts
//! (`com.apple.eas.account` or `com.apple.mail.managed`). Keys and values follow
//! Apple's device-management schema (`mdm/profiles/*.yaml`).
//!
//! The output is deterministic: every PayloadUUID is a UUID v5 of (policy key, device
//! key, payload path), and the dictionaries keep their insertion order, so the same
//! inputs give the same bytes and the server can hash them to decide whether to send
//! the profile again. No password is ever written: the device asks for it.

use plist::{Dictionary, Value};
use uuid::Uuid;

use super::model::{
    Eap, FieldError, Inner, MailAccount, MailKind, Passcode, PlatformNote, PolicyDocument,
    UserAttributes, WifiNetwork, WifiSecurity,
};
use super::template::render_template;
use super::validate::{pem_certificate, validate};

/// The SCEP request a device makes for its EAP-TLS certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScepParams {
    /// The SCEP endpoint, e.g. `https://mdm.town.example/scep`.
    pub url: String,
    /// The challenge the SCEP server expects (a secret: it ends up in the profile, so
    /// keep it stable per device or the profile's bytes change on every compile).
    pub challenge: String,
    /// Common name of the requested certificate.
    pub subject_cn: String,
    /// RSA key size: 1024, 2048 or 4096.
    pub key_size: u32,
    /// Fingerprint of the CA certificate, if the device should check it.
    pub ca_fingerprint: Option<Vec<u8>>,
}

/// What varies between compiles of the same policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppleContext {
    /// Reverse-DNS prefix, e.g. `org.example.mdm`.
    pub identifier_prefix: String,
    /// PayloadOrganization.
    pub organization: String,
    /// Stable id of the policy: in PayloadIdentifier and every PayloadUUID.
    pub policy_key: String,
    /// Stable id of the device: in every PayloadUUID.
    pub device_key: String,
    /// Needed when a network uses EAP-TLS.
    pub scep: Option<ScepParams>,
}

/// The compiled profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppleOutput {
    /// Top-level PayloadIdentifier: `<prefix>.policy.<policy_key>`. A profile with the
    /// same identifier replaces the installed one.
    pub identifier: String,
    /// The unsigned XML `.mobileconfig`.
    pub plist: Vec<u8>,
    /// What Apple devices cannot express.
    pub notes: Vec<PlatformNote>,
}

/// Fixed namespace of the v5 PayloadUUIDs (chosen once for this project).
const UUID_NAMESPACE: Uuid = Uuid::from_u128(0x6d64_6d2d_706f_6c69_8379_2d70_6179_6c64);

/// Compiles a policy for one device. Errors: the document's validation errors, a
/// template that cannot be filled for this user (or for no user), EAP-TLS without
/// `ctx.scep`, and a context that would make an invalid profile.
pub fn compile_apple(
    doc: &PolicyDocument,
    user: Option<&UserAttributes>,
    ctx: &AppleContext,
) -> Result<AppleOutput, Vec<FieldError>> {
    let mut errors = validate(doc).err().unwrap_or_default();
    context(ctx, &mut errors);
    if !errors.is_empty() {
        return Err(errors);
    }

    let identifier = format!("{}.policy.{}", ctx.identifier_prefix, ctx.policy_key);
    let b = Builder {
        ctx,
        identifier: &identifier,
    };
    let mut notes = Vec::new();
    let mut payloads = Vec::new();

    let mut cert_uuids = Vec::new();
    for (i, c) in doc.certificates.iter().enumerate() {
        let path = format!("certificates[{i}]");
        let uuid = b.uuid(&path);
        let der = pem_certificate(&c.pem).expect("validated");
        let mut d = b.header(
            "com.apple.security.root",
            &format!("certificate.{}", i + 1),
            &uuid,
            &c.name,
        );
        d.insert(
            "PayloadCertificateFileName".into(),
            format!("{}.cer", file_name(&c.name)).into(),
        );
        d.insert("PayloadContent".into(), Value::Data(der));
        payloads.push(Value::Dictionary(d));
        cert_uuids.push((c.name.as_str(), uuid));
    }

    let needs_scep = doc
        .wifi
        .iter()
        .any(|w| matches!(w.security, WifiSecurity::Enterprise { eap: Eap::Tls, .. }));
    // One SCEP payload serves every EAP-TLS network of the profile.
    let scep_uuid = match (&ctx.scep, needs_scep) {
        (Some(scep), true) => {
            let uuid = b.uuid("scep");
            payloads.push(Value::Dictionary(b.scep(scep, &uuid)));
            Some(uuid)
        }
        _ => None,
    };

    if let Some(p) = &doc.passcode {
        payloads.push(Value::Dictionary(b.passcode(p)));
    }

    for (i, w) in doc.wifi.iter().enumerate() {
        match b.wifi(i, w, user, &cert_uuids, scep_uuid.as_deref()) {
            Ok(d) => payloads.push(Value::Dictionary(d)),
            Err(e) => errors.push(e),
        }
    }

    for (i, m) in doc.mail.iter().enumerate() {
        match b.mail(i, m, user, &mut notes) {
            Ok(d) => payloads.push(Value::Dictionary(d)),
            Err(mut e) => errors.append(&mut e),
        }
    }

    if !errors.is_empty() {
        return Err(errors);
    }
    if payloads.is_empty() {
        notes.push(PlatformNote::apple(
            "",
            "the policy sets nothing: the profile has no payloads",
        ));
    }

    let mut top = Dictionary::new();
    top.insert("PayloadContent".into(), Value::Array(payloads));
    if let Some(desc) = doc.description.as_ref().filter(|d| !d.is_empty()) {
        top.insert("PayloadDescription".into(), desc.clone().into());
    }
    top.insert("PayloadDisplayName".into(), doc.name.clone().into());
    top.insert("PayloadIdentifier".into(), identifier.clone().into());
    if !ctx.organization.is_empty() {
        top.insert(
            "PayloadOrganization".into(),
            ctx.organization.clone().into(),
        );
    }
    // The user can always remove it (iOS ignores true outside supervision anyway).
    top.insert("PayloadRemovalDisallowed".into(), false.into());
    top.insert("PayloadType".into(), "Configuration".into());
    top.insert("PayloadUUID".into(), b.uuid("profile").into());
    top.insert("PayloadVersion".into(), 1i64.into());

    let mut plist = Vec::new();
    Value::Dictionary(top)
        .to_writer_xml(&mut plist)
        .map_err(|e| {
            vec![FieldError::new(
                "",
                format!("could not write the profile: {e}"),
            )]
        })?;
    Ok(AppleOutput {
        identifier,
        plist,
        notes,
    })
}

fn context(ctx: &AppleContext, errors: &mut Vec<FieldError>) {
    let ident = |path: &str, value: &str, extra: &[char], errors: &mut Vec<FieldError>| {
        if value.is_empty()
            || value
                .chars()
                .any(|c| !(c.is_ascii_alphanumeric() || c == '.' || c == '-' || extra.contains(&c)))
        {
            errors.push(
                FieldError::new(
                    path,
                    format!("{value:?} cannot be part of a PayloadIdentifier"),
                )
                .allowed("letters, digits, '.', '-'"),
            );
        }
    };
    ident(
        "context.identifier_prefix",
        &ctx.identifier_prefix,
        &[],
        errors,
    );
    ident("context.policy_key", &ctx.policy_key, &['_'], errors);
    if ctx.device_key.is_empty() {
        errors.push(
            FieldError::new("context.device_key", "is empty").allowed("the device's stable id"),
        );
    }
    if let Some(s) = &ctx.scep {
        if !(s.url.starts_with("https://") || s.url.starts_with("http://")) {
            errors.push(
                FieldError::new(
                    "context.scep.url",
                    format!("{:?} is not an http(s) URL", s.url),
                )
                .allowed("the SCEP endpoint's URL"),
            );
        }
        if s.subject_cn.is_empty() || s.subject_cn.chars().count() > 64 {
            errors.push(
                FieldError::new(
                    "context.scep.subject_cn",
                    "is empty or longer than 64 characters",
                )
                .allowed("1 to 64 characters"),
            );
        }
        if ![1024, 2048, 4096].contains(&s.key_size) {
            errors.push(
                FieldError::new(
                    "context.scep.key_size",
                    format!("{} is not a key size Apple devices offer", s.key_size),
                )
                .allowed("1024, 2048 or 4096"),
            );
        }
    }
}

/// A file name from a certificate's name: letters, digits, '-', '_' and '.'.
fn file_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

struct Builder<'a> {
    ctx: &'a AppleContext,
    identifier: &'a str,
}

impl Builder<'_> {
    /// Upper case, like Apple's own tools write them.
    fn uuid(&self, path: &str) -> String {
        let name = format!("{}\0{}\0{}", self.ctx.policy_key, self.ctx.device_key, path);
        Uuid::new_v5(&UUID_NAMESPACE, name.as_bytes())
            .hyphenated()
            .to_string()
            .to_uppercase()
    }

    fn header(
        &self,
        payload_type: &str,
        suffix: &str,
        uuid: &str,
        display_name: &str,
    ) -> Dictionary {
        let mut d = Dictionary::new();
        d.insert("PayloadType".into(), payload_type.into());
        d.insert("PayloadVersion".into(), 1i64.into());
        d.insert(
            "PayloadIdentifier".into(),
            format!("{}.{suffix}", self.identifier).into(),
        );
        d.insert("PayloadUUID".into(), uuid.into());
        d.insert("PayloadDisplayName".into(), display_name.into());
        if !self.ctx.organization.is_empty() {
            d.insert(
                "PayloadOrganization".into(),
                self.ctx.organization.clone().into(),
            );
        }
        d
    }

    fn scep(&self, scep: &ScepParams, uuid: &str) -> Dictionary {
        let mut content = Dictionary::new();
        content.insert("URL".into(), scep.url.clone().into());
        if !self.ctx.organization.is_empty() {
            content.insert("Name".into(), self.ctx.organization.clone().into());
        }
        let cn = Value::Array(vec!["CN".into(), scep.subject_cn.clone().into()]);
        content.insert("Subject".into(), Value::Array(vec![Value::Array(vec![cn])]));
        content.insert("Challenge".into(), scep.challenge.clone().into());
        content.insert("Keysize".into(), i64::from(scep.key_size).into());
        content.insert("Key Type".into(), "RSA".into());
        // Signing and encryption: EAP-TLS signs the handshake with this key.
        content.insert("Key Usage".into(), 5i64.into());
        if let Some(fp) = &scep.ca_fingerprint {
            content.insert("CAFingerprint".into(), Value::Data(fp.clone()));
        }
        let mut d = self.header(
            "com.apple.security.scep",
            "scep",
            uuid,
            "Wi-Fi device certificate",
        );
        d.insert("PayloadContent".into(), Value::Dictionary(content));
        d
    }

    fn passcode(&self, p: &Passcode) -> Dictionary {
        let mut d = self.header(
            "com.apple.mobiledevice.passwordpolicy",
            "passcode",
            &self.uuid("passcode"),
            "Passcode",
        );
        d.insert("forcePIN".into(), p.required.into());
        d.insert("allowSimple".into(), p.allow_simple.into());
        d.insert("requireAlphanumeric".into(), p.alphanumeric.into());
        let mut int = |key: &str, v: Option<u32>| {
            if let Some(v) = v {
                d.insert(key.into(), i64::from(v).into());
            }
        };
        int("minLength", p.min_length);
        int("minComplexChars", p.min_complex_chars);
        int("maxPINAgeInDays", p.max_age_days);
        int("pinHistory", p.history);
        int("maxFailedAttempts", p.max_failed_attempts);
        int("maxInactivity", p.auto_lock_minutes);
        int("maxGracePeriod", p.grace_period_minutes);
        d
    }

    fn wifi(
        &self,
        i: usize,
        w: &WifiNetwork,
        user: Option<&UserAttributes>,
        certs: &[(&str, String)],
        scep_uuid: Option<&str>,
    ) -> Result<Dictionary, FieldError> {
        let path = format!("wifi[{i}]");
        let mut d = self.header(
            "com.apple.wifi.managed",
            &format!("wifi.{}", i + 1),
            &self.uuid(&path),
            &format!("Wi-Fi {}", w.ssid),
        );
        d.insert("SSID_STR".into(), w.ssid.clone().into());
        d.insert("HIDDEN_NETWORK".into(), w.hidden.into());
        d.insert("AutoJoin".into(), w.auto_join.into());
        match &w.security {
            WifiSecurity::Psk { wpa3, passphrase } => {
                d.insert(
                    "EncryptionType".into(),
                    if *wpa3 { "WPA3" } else { "WPA2" }.into(),
                );
                d.insert("Password".into(), passphrase.clone().into());
            }
            WifiSecurity::Enterprise {
                wpa3,
                eap,
                radius_server_names,
                radius_ca_certificates,
            } => {
                d.insert(
                    "EncryptionType".into(),
                    if *wpa3 { "WPA3" } else { "WPA2" }.into(),
                );
                let mut e = Dictionary::new();
                let (eap_type, inner) = match eap {
                    Eap::Peap { .. } => (25, None),
                    Eap::Ttls { inner } => (21, Some(inner)),
                    Eap::Tls => (13, None),
                };
                e.insert(
                    "AcceptEAPTypes".into(),
                    Value::Array(vec![i64::from(eap_type).into()]),
                );
                // The user's domain account is the identity; no UserPassword, ever:
                // the device asks the user.
                let identity = match (eap, user) {
                    (Eap::Tls, None) => None,
                    _ => Some(render_template("{{user.upn}}", user).map_err(|m| {
                        FieldError::new(
                            format!("{path}.security.eap"),
                            format!("the identity is the user's domain account: {m}"),
                        )
                        .allowed("a device with a user, or eap method tls")
                    })?),
                };
                if let Some(identity) = identity {
                    e.insert("UserName".into(), identity.into());
                }
                let anchors: Vec<Value> = radius_ca_certificates
                    .iter()
                    .filter_map(|n| certs.iter().find(|(name, _)| name == n))
                    .map(|(_, uuid)| uuid.clone().into())
                    .collect();
                e.insert("PayloadCertificateAnchorUUID".into(), Value::Array(anchors));
                e.insert(
                    "TLSTrustedServerNames".into(),
                    Value::Array(
                        radius_server_names
                            .iter()
                            .map(|n| n.clone().into())
                            .collect(),
                    ),
                );
                if let Some(inner) = inner {
                    let name = match inner {
                        Inner::Mschapv2 => "MSCHAPv2",
                        Inner::Pap => "PAP",
                    };
                    e.insert("TTLSInnerAuthentication".into(), name.into());
                }
                d.insert("EAPClientConfiguration".into(), Value::Dictionary(e));
                if let Eap::Tls = eap {
                    let uuid = scep_uuid.ok_or_else(|| {
                        FieldError::new(
                            format!("{path}.security.eap"),
                            "EAP-TLS needs a device certificate from the server's SCEP CA, and this compile has no SCEP parameters",
                        )
                        .allowed("peap or ttls, or compile with the SCEP CA configured")
                    })?;
                    d.insert("PayloadCertificateUUID".into(), uuid.into());
                }
            }
        }
        Ok(d)
    }

    fn mail(
        &self,
        i: usize,
        m: &MailAccount,
        user: Option<&UserAttributes>,
        notes: &mut Vec<PlatformNote>,
    ) -> Result<Dictionary, Vec<FieldError>> {
        let path = format!("mail[{i}]");
        let mut errors = Vec::new();
        let mut render = |field: &str, t: &str| {
            render_template(t, user).unwrap_or_else(|e| {
                errors.push(
                    FieldError::new(format!("{path}.{field}"), e)
                        .allowed("a device with a user, or text without variables"),
                );
                String::new()
            })
        };
        let email = render("email_address", &m.email_address);
        let username = render("username", &m.username);
        // Exchange takes the sender name from the server (noted below).
        let display_name = match m.kind {
            MailKind::Imap => render("display_name", &m.display_name),
            MailKind::Exchange => String::new(),
        };
        if !errors.is_empty() {
            return Err(errors);
        }
        let uuid = self.uuid(&path);
        let suffix = format!("mail.{}", i + 1);
        let d = match m.kind {
            MailKind::Exchange => {
                let mut d = self.header("com.apple.eas.account", &suffix, &uuid, &m.name);
                d.insert("EmailAddress".into(), email.into());
                d.insert("Host".into(), m.host.clone().into());
                d.insert("SSL".into(), m.ssl_required.into());
                d.insert("UserName".into(), username.into());
                if let Some(port) = m.port {
                    notes.push(PlatformNote::apple(
                        format!("{path}.port"),
                        format!("Apple's Exchange payload has no port: port {port} is left out and the device uses the HTTPS (443) or HTTP (80) default"),
                    ));
                }
                if m.display_name != "{{user.display_name}}" {
                    notes.push(PlatformNote::apple(
                        format!("{path}.display_name"),
                        "Apple's Exchange payload has no sender name: the device takes it from the Exchange server",
                    ));
                }
                d
            }
            MailKind::Imap => {
                let mut d = self.header("com.apple.mail.managed", &suffix, &uuid, &m.name);
                d.insert("EmailAccountDescription".into(), m.name.clone().into());
                d.insert("EmailAccountName".into(), display_name.into());
                d.insert("EmailAccountType".into(), "EmailTypeIMAP".into());
                d.insert("EmailAddress".into(), email.into());
                d.insert(
                    "IncomingMailServerAuthentication".into(),
                    "EmailAuthPassword".into(),
                );
                d.insert("IncomingMailServerHostName".into(), m.host.clone().into());
                if let Some(port) = m.port {
                    d.insert(
                        "IncomingMailServerPortNumber".into(),
                        i64::from(port).into(),
                    );
                }
                d.insert("IncomingMailServerUseSSL".into(), m.ssl_required.into());
                d.insert("IncomingMailServerUsername".into(), username.clone().into());
                d.insert(
                    "OutgoingMailServerAuthentication".into(),
                    "EmailAuthPassword".into(),
                );
                d.insert(
                    "OutgoingMailServerHostName".into(),
                    m.smtp_host
                        .clone()
                        .expect("validated: IMAP has smtp_host")
                        .into(),
                );
                if let Some(port) = m.smtp_port {
                    d.insert(
                        "OutgoingMailServerPortNumber".into(),
                        i64::from(port).into(),
                    );
                }
                d.insert("OutgoingMailServerUseSSL".into(), m.ssl_required.into());
                d.insert("OutgoingMailServerUsername".into(), username.into());
                d
            }
        };
        Ok(d)
    }
}
