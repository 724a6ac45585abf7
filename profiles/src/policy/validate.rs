//! The rules a policy document must follow before it is stored or compiled.
//!
//! Every error is collected (not only the first), each with the field path, what is
//! wrong and what is allowed. Ranges follow what both platforms accept; where Apple's
//! schema (`mdm/profiles/com.apple.mobiledevice.passwordpolicy.yaml`) is narrower than
//! Android's API, Apple's range is the rule, so that one document works on both.

use std::collections::HashMap;

use base64::Engine;

use super::model::{
    Eap, FieldError, Inner, MailKind, Passcode, PolicyDocument, TrustedCertificate, WifiNetwork,
    WifiSecurity,
};
use super::template::{template_variables, VARIABLES};

/// Auto-lock minutes iOS offers (Apple's schema gives `maxInactivity` the range 0-15,
/// and devices show only these values; 0 would mean "never").
pub const AUTO_LOCK_MINUTES: &[u32] = &[1, 2, 3, 4, 5, 10, 15];

/// Checks a document; `Err` holds every error found.
pub fn validate(doc: &PolicyDocument) -> Result<(), Vec<FieldError>> {
    let mut errors = Vec::new();
    name(&doc.name, &mut errors);
    if let Some(p) = &doc.passcode {
        passcode(p, &mut errors);
    }
    let cert_names = certificates(&doc.certificates, &mut errors);
    let mut ssids: HashMap<&str, usize> = HashMap::new();
    for (i, w) in doc.wifi.iter().enumerate() {
        wifi(i, w, &cert_names, &mut errors);
        if let Some(first) = ssids.get(w.ssid.as_str()) {
            errors.push(
                FieldError::new(
                    format!("wifi[{i}].ssid"),
                    format!("{:?} is already configured by wifi[{first}]", w.ssid),
                )
                .allowed("each SSID once per policy"),
            );
        } else {
            ssids.insert(&w.ssid, i);
        }
    }
    let mut mail_names: HashMap<&str, usize> = HashMap::new();
    for (i, m) in doc.mail.iter().enumerate() {
        mail(i, m, &mut errors);
        if let Some(first) = mail_names.get(m.name.as_str()) {
            errors.push(
                FieldError::new(
                    format!("mail[{i}].name"),
                    format!("{:?} is already the name of mail[{first}]", m.name),
                )
                .allowed("each account name once per policy"),
            );
        } else {
            mail_names.insert(&m.name, i);
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

fn name(name: &str, errors: &mut Vec<FieldError>) {
    const ALLOWED: &str = "1 to 64 characters: letters A-Z a-z, digits, space, '.', '_', '-'";
    let len = name.chars().count();
    if name.trim().is_empty() {
        errors.push(FieldError::new("name", "is empty").allowed(ALLOWED));
    } else if len > 64 {
        errors.push(FieldError::new("name", format!("is {len} characters long")).allowed(ALLOWED));
    } else if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, ' ' | '.' | '_' | '-')))
    {
        errors.push(FieldError::new("name", format!("contains {bad:?}")).allowed(ALLOWED));
    } else if name.starts_with(' ') || name.ends_with(' ') {
        errors.push(
            FieldError::new("name", "starts or ends with a space")
                .allowed("a name without leading or trailing spaces"),
        );
    }
}

fn range(
    errors: &mut Vec<FieldError>,
    path: &str,
    value: Option<u32>,
    min: u32,
    max: u32,
    what: &str,
) {
    if let Some(v) = value {
        if v < min || v > max {
            errors.push(
                FieldError::new(path, format!("{v} is out of range"))
                    .allowed(format!("{min} to {max} ({what})")),
            );
        }
    }
}

fn passcode(p: &Passcode, errors: &mut Vec<FieldError>) {
    range(
        errors,
        "passcode.min_length",
        p.min_length,
        4,
        16,
        "characters; Apple's minLength goes up to 16, Android needs at least 4",
    );
    range(
        errors,
        "passcode.min_complex_chars",
        p.min_complex_chars,
        0,
        4,
        "Apple's minComplexChars range",
    );
    range(
        errors,
        "passcode.max_age_days",
        p.max_age_days,
        1,
        730,
        "days; leave it out for no expiry",
    );
    range(
        errors,
        "passcode.history",
        p.history,
        1,
        50,
        "previous passcodes; Apple's pinHistory range",
    );
    range(
        errors,
        "passcode.max_failed_attempts",
        p.max_failed_attempts,
        2,
        11,
        "attempts before the device is wiped; Apple's maxFailedAttempts range",
    );
    range(
        errors,
        "passcode.grace_period_minutes",
        p.grace_period_minutes,
        0,
        240,
        "minutes; 0 asks for the passcode at once, 240 (4 hours) is the longest iOS offers",
    );
    if let Some(m) = p.auto_lock_minutes {
        if !AUTO_LOCK_MINUTES.contains(&m) {
            errors.push(
                FieldError::new("passcode.auto_lock_minutes", format!("{m} is not an auto-lock time iOS offers"))
                    .allowed("1, 2, 3, 4, 5, 10 or 15 (Apple's maxInactivity: schema range 0-15, the device offers these values)"),
            );
        }
    }
    if p.min_complex_chars.unwrap_or(0) > 0 && !p.alphanumeric {
        errors.push(
            FieldError::new(
                "passcode.min_complex_chars",
                "complex characters (neither letters nor digits) cannot be typed in a numeric PIN",
            )
            .allowed("0, or set passcode.alphanumeric = true"),
        );
    }
}

fn certificates<'a>(
    certs: &'a [TrustedCertificate],
    errors: &mut Vec<FieldError>,
) -> HashMap<&'a str, usize> {
    let mut names: HashMap<&str, usize> = HashMap::new();
    for (i, c) in certs.iter().enumerate() {
        if c.name.trim().is_empty() {
            errors.push(
                FieldError::new(format!("certificates[{i}].name"), "is empty")
                    .allowed("a name, unique in the policy"),
            );
        } else if let Some(first) = names.get(c.name.as_str()) {
            errors.push(
                FieldError::new(
                    format!("certificates[{i}].name"),
                    format!("{:?} is already the name of certificates[{first}]", c.name),
                )
                .allowed("each certificate name once per policy"),
            );
        } else {
            names.insert(&c.name, i);
        }
        if let Err(e) = pem_certificate(&c.pem) {
            errors.push(
                FieldError::new(format!("certificates[{i}].pem"), e).allowed(
                    "one PEM block \"-----BEGIN CERTIFICATE-----\" holding a DER X.509 certificate",
                ),
            );
        }
    }
    names
}

fn wifi(i: usize, w: &WifiNetwork, certs: &HashMap<&str, usize>, errors: &mut Vec<FieldError>) {
    let len = w.ssid.len();
    if len == 0 || len > 32 {
        errors.push(
            FieldError::new(format!("wifi[{i}].ssid"), format!("is {len} bytes long"))
                .allowed("1 to 32 bytes (UTF-8)"),
        );
    }
    match &w.security {
        WifiSecurity::Enterprise {
            eap,
            radius_server_names,
            radius_ca_certificates,
            ..
        } => {
            let base = format!("wifi[{i}].security");
            if let Eap::Peap { inner: Inner::Pap } = eap {
                errors.push(
                    FieldError::new(
                        format!("{base}.eap.inner"),
                        "PEAP carries an EAP method inside its tunnel, and PAP is not one (PAP exists only inside TTLS)",
                    )
                    .allowed("mschapv2 for PEAP; mschapv2 or pap for TTLS"),
                );
            }
            if radius_server_names.is_empty() {
                errors.push(
                    FieldError::new(
                        format!("{base}.radius_server_names"),
                        "is empty: without the server's certificate names a device would send the user's credentials to any RADIUS server",
                    )
                    .allowed("one or more DNS names, e.g. \"radius.town.example\" (Apple also accepts \"*.town.example\")"),
                );
            }
            for (j, n) in radius_server_names.iter().enumerate() {
                if let Err(e) = dns_name(n, true) {
                    errors.push(
                        FieldError::new(format!("{base}.radius_server_names[{j}]"), e)
                            .allowed("a DNS name of letters, digits, '-' and '.', optionally starting with \"*.\""),
                    );
                }
            }
            if radius_ca_certificates.is_empty() {
                errors.push(
                    FieldError::new(
                        format!("{base}.radius_ca_certificates"),
                        "is empty: the device must know which CA issues the RADIUS server's certificate",
                    )
                    .allowed(allowed_certs(certs)),
                );
            }
            for (j, n) in radius_ca_certificates.iter().enumerate() {
                if !certs.contains_key(n.as_str()) {
                    errors.push(
                        FieldError::new(
                            format!("{base}.radius_ca_certificates[{j}]"),
                            format!("{n:?} is not the name of an entry in certificates"),
                        )
                        .allowed(allowed_certs(certs)),
                    );
                }
            }
        }
        WifiSecurity::Psk { passphrase, .. } => {
            let ok = if passphrase.len() == 64 {
                passphrase.chars().all(|c| c.is_ascii_hexdigit())
            } else {
                (8..=63).contains(&passphrase.len())
                    && passphrase.chars().all(|c| (' '..='~').contains(&c))
            };
            if !ok {
                errors.push(
                    FieldError::new(
                        format!("wifi[{i}].security.passphrase"),
                        format!(
                            "is not a WPA passphrase ({} characters)",
                            passphrase.chars().count()
                        ),
                    )
                    .allowed("8 to 63 printable ASCII characters, or 64 hexadecimal digits"),
                );
            }
        }
    }
}

fn allowed_certs(certs: &HashMap<&str, usize>) -> String {
    if certs.is_empty() {
        "names of entries in certificates (the policy has none: add the RADIUS server's CA there)"
            .into()
    } else {
        let mut names: Vec<_> = certs.iter().collect();
        names.sort_by_key(|(_, i)| **i);
        let names: Vec<String> = names.into_iter().map(|(n, _)| format!("{n:?}")).collect();
        format!("names of entries in certificates: {}", names.join(", "))
    }
}

fn mail(i: usize, m: &super::model::MailAccount, errors: &mut Vec<FieldError>) {
    let base = format!("mail[{i}]");
    if m.name.trim().is_empty() {
        errors.push(
            FieldError::new(format!("{base}.name"), "is empty")
                .allowed("a name, unique in the policy"),
        );
    }
    for (field, value) in [
        ("email_address", &m.email_address),
        ("username", &m.username),
        ("display_name", &m.display_name),
    ] {
        if let Err(e) = template_variables(value) {
            errors.push(
                FieldError::new(format!("{base}.{field}"), e).allowed(format!(
                    "text with {}",
                    VARIABLES
                        .iter()
                        .map(|v| format!("{{{{{v}}}}}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
            );
        } else if value.trim().is_empty() && field != "display_name" {
            errors.push(
                FieldError::new(format!("{base}.{field}"), "is empty").allowed(
                    if field == "email_address" {
                        "e.g. \"{{user.email}}\" (the default)"
                    } else {
                        "e.g. \"{{user.upn}}\" (the default)"
                    },
                ),
            );
        }
    }
    if let Err(e) = dns_name(&m.host, false) {
        errors.push(FieldError::new(format!("{base}.host"), e).allowed(
            "a host name or IP address, without scheme, path or port (the port goes in port)",
        ));
    }
    port(&format!("{base}.port"), m.port, errors);
    match m.kind {
        MailKind::Imap => {
            match &m.smtp_host {
                None => errors.push(
                    FieldError::new(
                        format!("{base}.smtp_host"),
                        "is missing: an IMAP account sends through SMTP",
                    )
                    .allowed("the SMTP host name"),
                ),
                Some(h) => {
                    if let Err(e) = dns_name(h, false) {
                        errors.push(
                            FieldError::new(format!("{base}.smtp_host"), e)
                                .allowed("a host name or IP address, without scheme, path or port (the port goes in smtp_port)"),
                        );
                    }
                }
            }
            port(&format!("{base}.smtp_port"), m.smtp_port, errors);
        }
        MailKind::Exchange => {
            for (field, set) in [
                ("smtp_host", m.smtp_host.is_some()),
                ("smtp_port", m.smtp_port.is_some()),
            ] {
                if set {
                    errors.push(
                        FieldError::new(
                            format!("{base}.{field}"),
                            "is only for IMAP accounts; Exchange sends through ActiveSync",
                        )
                        .allowed("leave it out for kind = \"exchange\""),
                    );
                }
            }
        }
    }
}

fn port(path: &str, port: Option<u16>, errors: &mut Vec<FieldError>) {
    if port == Some(0) {
        errors.push(FieldError::new(path, "0 is not a port").allowed("1 to 65535"));
    }
}

/// A host name, IP address, or (with `wildcard`) a `*.`-prefixed name.
fn dns_name(name: &str, wildcard: bool) -> Result<(), String> {
    if name.trim().is_empty() {
        return Err("is empty".into());
    }
    if name.contains("://") {
        return Err(format!("{name:?} is a URL"));
    }
    if name.len() > 253 {
        return Err(format!("is {} characters long (at most 253)", name.len()));
    }
    let body = if wildcard {
        name.strip_prefix("*.").unwrap_or(name)
    } else {
        name
    };
    if let Some(bad) = body
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '-')))
    {
        return Err(match bad {
            ':' => format!("{name:?} contains ':'; a port goes in its own field"),
            '/' => format!("{name:?} contains '/'; give the host only"),
            _ => format!("{name:?} contains {bad:?}"),
        });
    }
    if body.split('.').any(str::is_empty) {
        return Err(format!("{name:?} has an empty label"));
    }
    Ok(())
}

/// The DER bytes of a PEM certificate, checked to be one well-formed X.509
/// certificate (its ASN.1 outline; signatures are not verified here).
pub fn pem_certificate(pem: &str) -> Result<Vec<u8>, String> {
    const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
    const END: &str = "-----END CERTIFICATE-----";
    let blocks = pem.matches("-----BEGIN ").count();
    if blocks == 0 {
        return Err("is not PEM: no \"-----BEGIN CERTIFICATE-----\" line".into());
    }
    let Some(start) = pem.find(BEGIN) else {
        let label = pem
            .split("-----BEGIN ")
            .nth(1)
            .and_then(|s| s.split("-----").next())
            .unwrap_or("?");
        return Err(format!("is a PEM {label:?} block, not a certificate"));
    };
    if blocks > 1 {
        return Err(format!(
            "holds {blocks} PEM blocks; give one certificate per entry"
        ));
    }
    let body = &pem[start + BEGIN.len()..];
    let Some(end) = body.find(END) else {
        return Err("has no \"-----END CERTIFICATE-----\" line".into());
    };
    let b64: String = body[..end].chars().filter(|c| !c.is_whitespace()).collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(b64.as_bytes())
        .map_err(|e| format!("its base64 does not decode: {e}"))?;
    der_certificate(&der)?;
    Ok(der)
}

/// The outline of an X.509 certificate: SEQUENCE { tbsCertificate SEQUENCE {
/// [0] version?, serialNumber INTEGER, ... }, signatureAlgorithm SEQUENCE,
/// signature BIT STRING }, with nothing after it.
fn der_certificate(der: &[u8]) -> Result<(), String> {
    let not = |why: &str| format!("is not an X.509 certificate: {why}");
    let (tag, content, rest) = tlv(der).ok_or_else(|| not("no ASN.1 element"))?;
    if tag != 0x30 {
        return Err(not("it does not start with a SEQUENCE"));
    }
    if !rest.is_empty() {
        return Err(not("bytes follow the certificate"));
    }
    let (tbs_tag, tbs, after) = tlv(content).ok_or_else(|| not("no tbsCertificate"))?;
    let (alg_tag, _, after) = tlv(after).ok_or_else(|| not("no signatureAlgorithm"))?;
    let (sig_tag, _, after) = tlv(after).ok_or_else(|| not("no signature"))?;
    if tbs_tag != 0x30 || alg_tag != 0x30 || sig_tag != 0x03 || !after.is_empty() {
        return Err(not(
            "its parts are not tbsCertificate, signatureAlgorithm, signature",
        ));
    }
    let (mut first, _, mut rest) = tlv(tbs).ok_or_else(|| not("empty tbsCertificate"))?;
    if first == 0xa0 {
        (first, _, rest) = tlv(rest).ok_or_else(|| not("no serial number"))?;
    }
    if first != 0x02 || rest.is_empty() {
        return Err(not("its tbsCertificate has no serial number"));
    }
    Ok(())
}

/// One DER element: tag, content, the bytes after it.
fn tlv(bytes: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let tag = *bytes.first()?;
    let first = *bytes.get(1)?;
    let (len, header) = if first < 0x80 {
        (usize::from(first), 2)
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 {
            return None;
        }
        let mut len = 0usize;
        for b in bytes.get(2..2 + count)? {
            len = (len << 8) | usize::from(*b);
        }
        (len, 2 + count)
    };
    let end = header.checked_add(len)?;
    Some((tag, bytes.get(header..end)?, &bytes[end..]))
}
