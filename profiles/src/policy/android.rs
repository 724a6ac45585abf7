//! Policies as the Android Management API `Policy` fields they set.
//!
//! Only the fields the model decides: `passwordPolicies`, `maximumTimeToLock`,
//! `openNetworkConfiguration` (Open Network Configuration: Wi-Fi networks and the
//! CA certificates they trust) and `applications` (Gmail's managed configuration for
//! an Exchange account). The server adds its own (status reporting, usage logs).
//!
//! A device can be in several policies: they are merged in precedence order (the
//! first wins): the passcode of the first policy that has one, networks by SSID,
//! mail accounts and certificates by name. A losing entry that differs from the
//! winner is reported as a note, as is every rule Android cannot express.

use std::collections::HashMap;

use base64::Engine;
use serde_json::{json, Map, Value};
use uuid::Uuid;

use super::model::{
    Eap, FieldError, Inner, MailAccount, MailKind, Passcode, PlatformNote, PolicyDocument,
    TrustedCertificate, UserAttributes, WifiNetwork, WifiSecurity,
};
use super::template::render_template;
use super::validate::{pem_certificate, validate};

/// Gmail, the mail app whose managed configuration carries an Exchange account.
pub const GMAIL_PACKAGE: &str = "com.google.android.gm";

/// The compiled fields.
#[derive(Debug, Clone, PartialEq)]
pub struct AndroidOutput {
    /// AMAPI `Policy` fields from the model only.
    pub policy: Value,
    /// What Android cannot express, and which policy's entry won a merge.
    pub notes: Vec<PlatformNote>,
}

/// Namespace of the ONC GUIDs, so that a network keeps its GUID across compiles.
const GUID_NAMESPACE: Uuid = Uuid::from_u128(0x6d64_6d2d_6f6e_632d_8775_6964_732d_6e73);

/// Compiles and merges policies for one device, highest precedence first. With more
/// than one policy, paths in errors and notes start with `policies[i].` (the
/// index in `docs`).
pub fn compile_android(
    docs: &[&PolicyDocument],
    user: Option<&UserAttributes>,
) -> Result<AndroidOutput, Vec<FieldError>> {
    let prefix = |i: usize| {
        if docs.len() > 1 {
            format!("policies[{i}].")
        } else {
            String::new()
        }
    };
    let mut errors = Vec::new();
    for (i, doc) in docs.iter().enumerate() {
        if let Err(e) = validate(doc) {
            errors.extend(e.into_iter().map(|mut e| {
                e.path = join(&prefix(i), &e.path);
                e
            }));
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }

    let merged = merge(docs, &prefix);
    let mut notes = merged.notes;
    let mut policy = Map::new();

    if let Some((d, p)) = merged.passcode {
        passcode(&prefix(d), p, &mut policy, &mut notes);
    }

    // Certificates: GUIDs by name; each is sent only if a sent network names it.
    let cert_guid = |name: &str| guid("certificate", name);
    let mut used_certs: Vec<&str> = Vec::new();
    let mut networks = Vec::new();
    for (d, i, w) in &merged.wifi {
        let path = format!("{}wifi[{i}]", prefix(*d));
        match network(&path, w, user, &cert_guid, &mut notes) {
            Ok(Some(net)) => {
                if let WifiSecurity::Enterprise {
                    radius_ca_certificates,
                    ..
                } = &w.security
                {
                    for n in radius_ca_certificates {
                        if !used_certs.contains(&n.as_str()) {
                            used_certs.push(n);
                        }
                    }
                }
                networks.push(net);
            }
            Ok(None) => {}
            Err(e) => errors.push(e),
        }
    }
    let mut certificates = Vec::new();
    for (d, i, c) in &merged.certificates {
        let path = format!("{}certificates[{i}]", prefix(*d));
        if used_certs.contains(&c.name.as_str()) {
            let der = pem_certificate(&c.pem).expect("validated");
            certificates.push(json!({
                "GUID": cert_guid(&c.name),
                "Type": "Authority",
                "X509": base64::engine::general_purpose::STANDARD.encode(der),
            }));
            notes.push(PlatformNote::android(
                path,
                format!("{:?} is trusted for Wi-Fi server validation only: the Android Management API cannot install a CA certificate that apps and browsers trust", c.name),
            ));
        } else {
            notes.push(PlatformNote::android(
                path,
                format!("{:?} is not sent: the Android Management API installs CA certificates only for the Wi-Fi networks that name them, and no network sent to Android names it", c.name),
            ));
        }
    }
    if !networks.is_empty() || !certificates.is_empty() {
        let mut onc = Map::new();
        onc.insert("NetworkConfigurations".into(), Value::Array(networks));
        if !certificates.is_empty() {
            onc.insert("Certificates".into(), Value::Array(certificates));
        }
        policy.insert("openNetworkConfiguration".into(), Value::Object(onc));
    }

    let mut gmail: Option<Value> = None;
    for (d, i, m) in &merged.mail {
        let path = format!("{}mail[{i}]", prefix(*d));
        match mail(&path, m, user, gmail.is_some(), &mut notes) {
            Ok(Some(config)) => gmail = Some(config),
            Ok(None) => {}
            Err(mut e) => errors.append(&mut e),
        }
    }
    if let Some(config) = gmail {
        policy.insert(
            "applications".into(),
            json!([{
                "packageName": GMAIL_PACKAGE,
                "installType": "FORCE_INSTALLED",
                "managedConfiguration": config,
            }]),
        );
    }

    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(AndroidOutput {
        policy: Value::Object(policy),
        notes,
    })
}

fn join(prefix: &str, path: &str) -> String {
    if path.is_empty() {
        prefix.trim_end_matches('.').to_string()
    } else {
        format!("{prefix}{path}")
    }
}

fn guid(kind: &str, name: &str) -> String {
    Uuid::new_v5(&GUID_NAMESPACE, format!("{kind}\0{name}").as_bytes())
        .hyphenated()
        .to_string()
}

/// The winners of a merge, each with the index of its policy and its own index.
struct Merged<'a> {
    passcode: Option<(usize, &'a Passcode)>,
    wifi: Vec<(usize, usize, &'a WifiNetwork)>,
    mail: Vec<(usize, usize, &'a MailAccount)>,
    certificates: Vec<(usize, usize, &'a TrustedCertificate)>,
    notes: Vec<PlatformNote>,
}

fn merge<'a>(docs: &[&'a PolicyDocument], prefix: &dyn Fn(usize) -> String) -> Merged<'a> {
    let mut m = Merged {
        passcode: None,
        wifi: Vec::new(),
        mail: Vec::new(),
        certificates: Vec::new(),
        notes: Vec::new(),
    };
    let overridden = |what: String, loser: usize, winner: usize| {
        format!(
            "{what} of policy {:?} is overridden by the one of policy {:?}, which takes precedence",
            docs[loser].name, docs[winner].name
        )
    };
    for (d, doc) in docs.iter().enumerate() {
        if let Some(p) = &doc.passcode {
            match m.passcode {
                None => m.passcode = Some((d, p)),
                Some((w, won)) if won != p => m.notes.push(PlatformNote::android(
                    format!("{}passcode", prefix(d)),
                    overridden("the passcode section".into(), d, w),
                )),
                Some(_) => {}
            }
        }
    }
    // First wins, by key; a differing loser is noted.
    fn by_key<'a, T: PartialEq>(
        docs: &[&'a PolicyDocument],
        items: impl Fn(&'a PolicyDocument) -> &'a [T],
        key: impl Fn(&T) -> &str,
        section: &str,
        prefix: &dyn Fn(usize) -> String,
        notes: &mut Vec<PlatformNote>,
        overridden: &dyn Fn(String, usize, usize) -> String,
    ) -> Vec<(usize, usize, &'a T)> {
        let mut out: Vec<(usize, usize, &'a T)> = Vec::new();
        let mut seen: HashMap<&'a str, usize> = HashMap::new();
        for (d, doc) in docs.iter().enumerate() {
            for (i, item) in items(doc).iter().enumerate() {
                let k = key(item);
                match seen.get(k) {
                    None => {
                        seen.insert(k, out.len());
                        out.push((d, i, item));
                    }
                    Some(&at) => {
                        let (wd, _, winner) = out[at];
                        if winner != item {
                            notes.push(PlatformNote::android(
                                format!("{}{section}[{i}]", prefix(d)),
                                overridden(format!("{section} entry {k:?}"), d, wd),
                            ));
                        }
                    }
                }
            }
        }
        out
    }
    let mut notes = std::mem::take(&mut m.notes);
    m.wifi = by_key(
        docs,
        |d| &d.wifi,
        |w| &w.ssid,
        "wifi",
        prefix,
        &mut notes,
        &overridden,
    );
    m.mail = by_key(
        docs,
        |d| &d.mail,
        |a| &a.name,
        "mail",
        prefix,
        &mut notes,
        &overridden,
    );
    m.certificates = by_key(
        docs,
        |d| &d.certificates,
        |c| &c.name,
        "certificates",
        prefix,
        &mut notes,
        &overridden,
    );
    m.notes = notes;
    m
}

fn passcode(
    prefix: &str,
    p: &Passcode,
    policy: &mut Map<String, Value>,
    notes: &mut Vec<PlatformNote>,
) {
    let at = |field: &str| format!("{prefix}passcode.{field}");
    if let Some(m) = p.auto_lock_minutes {
        // int64 travels as a JSON string.
        policy.insert(
            "maximumTimeToLock".into(),
            (u64::from(m) * 60_000).to_string().into(),
        );
    }
    if let Some(g) = p.grace_period_minutes.filter(|g| *g > 0) {
        notes.push(PlatformNote::android(
            at("grace_period_minutes"),
            format!("Android has no grace period: the {g} minutes are not sent, and the device asks for the password as soon as it locks"),
        ));
    }
    if !p.required {
        let rules_set = p.min_length.is_some()
            || p.alphanumeric
            || p.min_complex_chars.is_some()
            || p.max_age_days.is_some()
            || p.history.is_some()
            || p.max_failed_attempts.is_some();
        if rules_set {
            notes.push(PlatformNote::android(
                at("required"),
                "Android applies password rules by requiring a password that meets them; with required = false no password rule is sent",
            ));
        }
        return;
    }
    let complex = p.min_complex_chars.unwrap_or(0);
    let quality = match (p.alphanumeric, complex > 0, p.allow_simple) {
        (true, true, _) => "COMPLEX",
        (true, false, _) => "ALPHANUMERIC",
        (false, _, true) => "NUMERIC",
        (false, _, false) => "NUMERIC_COMPLEX",
    };
    let mut r = Map::new();
    r.insert("passwordScope".into(), "SCOPE_DEVICE".into());
    r.insert("passwordQuality".into(), quality.into());
    if let Some(n) = p.min_length {
        r.insert("passwordMinimumLength".into(), n.into());
    }
    if quality == "COMPLEX" {
        r.insert("passwordMinimumLetters".into(), 1.into());
        r.insert("passwordMinimumSymbols".into(), complex.into());
    }
    if let Some(days) = p.max_age_days {
        r.insert(
            "passwordExpirationTimeout".into(),
            format!("{}s", u64::from(days) * 86_400).into(),
        );
    }
    if let Some(n) = p.history {
        r.insert("passwordHistoryLength".into(), n.into());
    }
    if let Some(n) = p.max_failed_attempts {
        r.insert("maximumFailedPasswordsForWipe".into(), n.into());
    }
    if p.alphanumeric && !p.allow_simple {
        notes.push(PlatformNote::android(
            at("allow_simple"),
            "Android refuses repeated or ordered sequences only in numeric PINs (NUMERIC_COMPLEX); an alphanumeric password is not checked for them",
        ));
    }
    policy.insert("passwordPolicies".into(), json!([Value::Object(r)]));
}

fn network(
    path: &str,
    w: &WifiNetwork,
    user: Option<&UserAttributes>,
    cert_guid: &dyn Fn(&str) -> String,
    notes: &mut Vec<PlatformNote>,
) -> Result<Option<Value>, FieldError> {
    let mut wifi = Map::new();
    wifi.insert("SSID".into(), w.ssid.clone().into());
    wifi.insert("HiddenSSID".into(), w.hidden.into());
    wifi.insert("AutoConnect".into(), w.auto_join.into());
    let wpa3 = match &w.security {
        WifiSecurity::Psk { wpa3, passphrase } => {
            wifi.insert("Security".into(), "WPA-PSK".into());
            wifi.insert("Passphrase".into(), passphrase.clone().into());
            *wpa3
        }
        WifiSecurity::Enterprise {
            wpa3,
            eap,
            radius_server_names,
            radius_ca_certificates,
        } => {
            let (outer, inner) = match eap {
                Eap::Peap { inner } => ("PEAP", inner),
                Eap::Ttls { inner } => ("EAP-TTLS", inner),
                Eap::Tls => {
                    notes.push(PlatformNote::android(
                        format!("{path}.security.eap"),
                        format!("network {:?} is not sent: EAP-TLS needs a device certificate, and the server's SCEP CA has no way to issue one to Android devices through the Android Management API (which accepts no ClientCertPattern)", w.ssid),
                    ));
                    return Ok(None);
                }
            };
            let identity = render_template("{{user.upn}}", user).map_err(|m| {
                FieldError::new(
                    format!("{path}.security.eap"),
                    format!("the identity is the user's domain account: {m}"),
                )
                .allowed("a device with a user")
            })?;
            let mut suffixes = Vec::new();
            for (j, n) in radius_server_names.iter().enumerate() {
                let suffix = n.strip_prefix("*.").unwrap_or(n);
                if suffix != n {
                    notes.push(PlatformNote::android(
                        format!("{path}.security.radius_server_names[{j}]"),
                        format!("Android matches server names by domain suffix, without wildcards: {n:?} is sent as {suffix:?}, which also accepts {suffix:?} itself and deeper names"),
                    ));
                }
                if !suffixes.contains(&suffix) {
                    suffixes.push(suffix);
                }
            }
            let mut eap = Map::new();
            eap.insert("Outer".into(), outer.into());
            eap.insert(
                "Inner".into(),
                match inner {
                    Inner::Mschapv2 => "MSCHAPv2",
                    Inner::Pap => "PAP",
                }
                .into(),
            );
            // The user's domain account; no Password: the device asks the user.
            eap.insert("Identity".into(), identity.into());
            eap.insert("DomainSuffixMatch".into(), json!(suffixes));
            eap.insert(
                "ServerCARefs".into(),
                json!(radius_ca_certificates
                    .iter()
                    .map(|n| cert_guid(n))
                    .collect::<Vec<_>>()),
            );
            wifi.insert("Security".into(), "WPA-EAP".into());
            wifi.insert("EAP".into(), Value::Object(eap));
            *wpa3
        }
    };
    if wpa3 {
        notes.push(PlatformNote::android(
            format!("{path}.security.wpa3"),
            "Open Network Configuration has no WPA3-only setting (only the 192-bit enterprise mode): the device joins with the best security the network offers, WPA2 included",
        ));
    }
    Ok(Some(json!({
        "GUID": guid("wifi", &w.ssid),
        "Name": w.ssid,
        "Type": "WiFi",
        "WiFi": Value::Object(wifi),
    })))
}

/// Gmail's managed configuration for the first Exchange account; `None` for what
/// Android cannot carry (noted).
fn mail(
    path: &str,
    m: &MailAccount,
    user: Option<&UserAttributes>,
    have_exchange: bool,
    notes: &mut Vec<PlatformNote>,
) -> Result<Option<Value>, Vec<FieldError>> {
    match m.kind {
        MailKind::Imap => {
            notes.push(PlatformNote::android(
                path,
                format!("IMAP account {:?} is not sent: Gmail's managed configuration sets up Exchange accounts only", m.name),
            ));
            return Ok(None);
        }
        MailKind::Exchange if have_exchange => {
            notes.push(PlatformNote::android(
                path,
                format!("Exchange account {:?} is not sent: Gmail's managed configuration holds one Exchange account, and an earlier one is sent", m.name),
            ));
            return Ok(None);
        }
        MailKind::Exchange => {}
    }
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
    if !errors.is_empty() {
        return Err(errors);
    }
    if m.display_name != "{{user.display_name}}" {
        notes.push(PlatformNote::android(
            format!("{path}.display_name"),
            "Gmail's managed configuration has no sender name: Gmail takes it from the Exchange server",
        ));
    }
    let host = match m.port {
        Some(port) => format!("{}:{port}", m.host),
        None => m.host.clone(),
    };
    Ok(Some(json!({
        "email_address": email,
        "exchange_host": host,
        "exchange_username": username,
        "exchange_ssl_required": m.ssl_required,
    })))
}
