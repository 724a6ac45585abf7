//! E-mail receivers: incident changes mailed to people (head of office at level 3 and
//! up, the national CERT at 4 and up, ...) through the office's SMTP relay, with
//! STARTTLS required. An e-mail is one more kind of receiver of the delivery queue:
//! the message is composed when the event is queued (so a replay sends the same
//! text), and sent, retried and logged like a webhook.
//!
//! lettre is the SMTP client: maintained, on tokio, and its native-tls backend is
//! OpenSSL here, like the rest of the server's TLS.

use crate::domain::event::Event;
use crate::domain::incident::{level_colour, level_name, Incident, REGISTER_COLUMNS};
use crate::storage::{OutboundDelivery, Storage, StoreResult};
use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;

/// An `[[email]]` table of the incident file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailConfig {
    pub name: String,
    /// `smtp://host[:port]` (STARTTLS, port 587 by default) or `smtps://host[:port]`
    /// (TLS from the first byte, 465); or `host` and `port`.
    pub smtp_url: Option<String>,
    pub host: Option<String>,
    pub port: Option<u16>,
    /// `required` (the default): STARTTLS or no mail. `off`: plain SMTP, only to a
    /// relay on this host (loopback).
    #[serde(default)]
    pub starttls: StartTls,
    /// The sender, `"MDM <mdm@town.example>"` or a bare address.
    pub from: String,
    /// The recipients.
    pub to: Vec<String>,
    /// Only incidents at this level or higher (0-5); other events by their severity.
    #[serde(default)]
    pub min_level: i16,
    /// Event kinds or prefixes ending in '.'. [default: incident changes]
    #[serde(default = "default_kinds")]
    pub kinds: Vec<String>,
    /// SMTP AUTH user; the password is read from `password_file` at start.
    pub username: Option<String>,
    pub password_file: Option<PathBuf>,
    /// PEM CA to trust for the relay's certificate, besides the system's.
    pub ca_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StartTls {
    #[default]
    Required,
    Off,
}

fn default_kinds() -> Vec<String> {
    vec!["incident.".into()]
}

/// A checked e-mail receiver: the relay's transport, sender and recipients.
#[derive(Clone)]
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    to: Vec<Mailbox>,
    relay: String,
}

fn loopback(host: &str) -> bool {
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Checks an `[[email]]` table and reads its password file; at start.
pub(super) fn mailer(c: &EmailConfig) -> Result<Mailer, String> {
    let at = |why: String| format!("email {}: {why}", c.name);
    let (host, port, implicit_tls) = match (&c.smtp_url, &c.host) {
        (Some(url), None) => {
            let (implicit, rest) = if let Some(r) = url.strip_prefix("smtp://") {
                (false, r)
            } else if let Some(r) = url.strip_prefix("smtps://") {
                (true, r)
            } else {
                return Err(at(
                    "smtp_url must be smtp://host[:port] or smtps://host[:port]".into(),
                ));
            };
            let rest = rest.trim_end_matches('/');
            if rest.contains(['@', '/', '?']) {
                return Err(at(
                    "smtp_url is host[:port] only (the user is `username`, the password is in `password_file`)"
                        .into(),
                ));
            }
            let (host, port) = match rest.rsplit_once(':').filter(|(h, _)| !h.ends_with(':')) {
                Some((h, p)) => (
                    h,
                    Some(
                        p.parse::<u16>()
                            .map_err(|_| at(format!("bad port in smtp_url {url:?}")))?,
                    ),
                ),
                None => (rest, None),
            };
            (
                host.trim_matches(['[', ']']).to_owned(),
                port.or(c.port),
                implicit,
            )
        }
        (None, Some(host)) => (host.clone(), c.port, false),
        _ => return Err(at("give either smtp_url or host (and port)".into())),
    };
    if host.is_empty() {
        return Err(at("the relay's host is empty".into()));
    }
    let port = port.unwrap_or(if implicit_tls { 465 } else { 587 });
    if port == 0 {
        return Err(at("port must not be 0".into()));
    }
    if c.starttls == StartTls::Off && !implicit_tls && !loopback(&host) {
        return Err(at(format!(
            "starttls = \"off\" only for a relay on this host (loopback), not {host}: mail and passwords would cross the network in clear"
        )));
    }
    if !(0..=5).contains(&c.min_level) {
        return Err(at("min_level must be 0 to 5".into()));
    }
    let mailbox = |field: &str, text: &str| -> Result<Mailbox, String> {
        text.parse::<Mailbox>()
            .map_err(|e| at(format!("{field} {text:?} is not an e-mail address: {e}")))
    };
    let from = mailbox("from", &c.from)?;
    if c.to.is_empty() || c.to.len() > 100 {
        return Err(at("to must name 1 to 100 recipients".into()));
    }
    let to =
        c.to.iter()
            .map(|t| mailbox("to", t))
            .collect::<Result<Vec<_>, _>>()?;
    let tls = if c.starttls == StartTls::Off && !implicit_tls {
        None
    } else {
        let mut b = TlsParameters::builder(host.clone());
        if let Some(ca) = &c.ca_file {
            for cert in super::read_ca(ca).map_err(at)? {
                let der = cert.to_der().map_err(|e| at(e.to_string()))?;
                b = b.add_root_certificate(
                    Certificate::from_der(der).map_err(|e| at(e.to_string()))?,
                );
            }
        }
        Some(b.build_native().map_err(|e| at(format!("TLS: {e}")))?)
    };
    let tls = match tls {
        None => Tls::None,
        Some(p) if implicit_tls => Tls::Wrapper(p),
        Some(p) => Tls::Required(p),
    };
    let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host.clone())
        .port(port)
        .tls(tls)
        .timeout(Some(Duration::from_secs(20)));
    match (&c.username, &c.password_file) {
        (None, None) => {}
        (Some(user), Some(path)) => {
            builder = builder.credentials(Credentials::new(
                user.clone(),
                read_password(path).map_err(at)?,
            ));
        }
        _ => return Err(at("username and password_file go together".into())),
    }
    Ok(Mailer {
        transport: builder.build(),
        from,
        to,
        relay: format!("{host}:{port}"),
    })
}

/// The relay's password: the file's first line. Never logged, never in an error.
fn read_password(path: &std::path::Path) -> Result<String, String> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if meta.permissions().mode() & 0o007 != 0 {
        return Err(format!(
            "{}: the password file must not be readable by others (chmod 600 or 640)",
            path.display()
        ));
    }
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let password = text.lines().next().unwrap_or_default().to_owned();
    if password.is_empty() {
        return Err(format!("{}: the password file is empty", path.display()));
    }
    Ok(password)
}

impl Mailer {
    /// Sends a queued message (`payload`: its subject and body) to the recipients.
    pub(super) async fn send(
        &self,
        delivery: &OutboundDelivery,
        hostname: &str,
    ) -> Result<(), String> {
        let queued: serde_json::Value = serde_json::from_str(&delivery.payload)
            .map_err(|e| format!("queued message unreadable: {e}"))?;
        let subject = queued["subject"].as_str().unwrap_or("[MDM]");
        let body = queued["body"].as_str().unwrap_or_default();
        let domain: String = hostname
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-'))
            .collect();
        let mut message = Message::builder()
            .from(self.from.clone())
            .subject(subject)
            // One id per delivery: a replay is recognisably the same message.
            .message_id(Some(format!(
                "<mdm.delivery.{}.event.{}@{}>",
                delivery.id,
                delivery.event_id,
                if domain.is_empty() { "mdm" } else { &domain }
            )))
            .header(ContentType::TEXT_PLAIN)
            .date_now();
        for to in &self.to {
            message = message.to(to.clone());
        }
        let message = message
            .body(body.to_owned())
            .map_err(|e| format!("message: {e}"))?;
        self.transport
            .send(message)
            .await
            .map(|_| ())
            .map_err(|e| format!("{}: {e}", self.relay))
    }
}

/// The message an event is mailed as, composed when it is queued: `{"subject",
/// "body"}` JSON. An incident's change reads the incident's register entry.
/// A storage error fails the queueing (retried), rather than queueing a message
/// without the register entry.
pub(super) async fn compose(store: &dyn Storage, event: &Event) -> StoreResult<String> {
    let incident = match event.data.get("incident_id").and_then(|v| v.as_str()) {
        Some(id) if event.kind.starts_with("incident.") => store.incident(id).await?,
        _ => None,
    };
    let (subject, body) = message_text(event, incident.as_ref());
    Ok(serde_json::json!({ "subject": subject, "body": body }).to_string())
}

/// The level an event is mailed at: an incident change's level, else its severity.
pub(super) fn event_level(event: &Event) -> i16 {
    if event.kind.starts_with("incident.") {
        if let Some(level) = event.data.get("level").and_then(|v| v.as_i64()) {
            return level.clamp(0, 5) as i16;
        }
    }
    event.severity.unwrap_or(0)
}

/// Subject and plain-text body: `[INCIDENT No. 7] high (orange): Lost phone ...`,
/// then what changed and the register's main columns. No links, no secrets: the
/// register holds none, and event data is not copied in.
pub fn message_text(event: &Event, incident: Option<&Incident>) -> (String, String) {
    let level = event_level(event);
    let one_line = |s: &str, max: usize| -> String {
        let flat: String = s
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        let flat = flat.split_whitespace().collect::<Vec<_>>().join(" ");
        if flat.chars().count() > max {
            format!("{}...", flat.chars().take(max).collect::<String>())
        } else {
            flat
        }
    };
    let when = event.occurred_at.format("%Y-%m-%d %H:%M:%S UTC");
    let Some(i) = incident else {
        let subject = format!(
            "[MDM {}] {} ({}): {}",
            event.kind,
            level_name(level),
            level_colour(level),
            one_line(&event.message, 150)
        );
        let body = format!(
            "{}\n\nEvent: {}\nLevel: {level} {} ({})\nWhen: {when}\nDevice: {}\nBy: {}\n\n\
             -- \nSent by the MDM server; the event is in its event log (id {}).\n",
            one_line(&event.message, 2000),
            event.kind,
            level_name(level),
            level_colour(level),
            event.device_id.as_deref().unwrap_or("-"),
            event.actor.as_deref().unwrap_or("-"),
            event.id,
        );
        return (subject, body);
    };
    let number = event
        .data
        .get("number")
        .and_then(|v| v.as_i64())
        .unwrap_or(i.number);
    let subject = format!(
        "[INCIDENT No. {number}] {} ({}): {}",
        level_name(level),
        level_colour(level),
        one_line(&i.name, 150)
    );
    let change = match event.kind.as_str() {
        "incident.filed" => "filed",
        "incident.updated" => "updated",
        "incident.classified" => "classified",
        "incident.action_recorded" => "response action recorded",
        "incident.closed" => "closed",
        "incident.event_attached" => "a device event joined it",
        "incident.evidence_attached" => "evidence collected",
        "incident.notification" => "notification (playbook)",
        other => other,
    };
    let mut body = format!(
        "Incident No. {number}: {}\n\
         Level: {level} {} ({})\n\
         Change: {change} at {when} by {}\n\
         {}\n\n\
         Type: {}\nClassification: {}\nStatus: {}\n\
         Detected: {} by {}\nDevices: {}\nUsers: {}\n",
        one_line(&i.name, 500),
        level_name(level),
        level_colour(level),
        event.actor.as_deref().unwrap_or("-"),
        one_line(&event.message, 2000),
        i.incident_type,
        i.classification,
        i.status,
        i.detected_at.format("%Y-%m-%d %H:%M UTC"),
        i.detection_source,
        if i.devices.is_empty() {
            "-".into()
        } else {
            i.devices.join(", ")
        },
        if i.users.is_empty() {
            "-".into()
        } else {
            i.users.join(", ")
        },
    );
    body.push_str(&format!(
        "\nThe register entry as of {}:\n",
        i.updated_at.format("%Y-%m-%d %H:%M UTC")
    ));
    for (column, value) in REGISTER_COLUMNS.iter().zip(i.register_row()) {
        if *column == "No." || *column == "incident name" {
            continue;
        }
        let value = if value.trim().is_empty() {
            "-".to_owned()
        } else {
            value
        };
        body.push_str(&format!("- {column}: {value}\n"));
    }
    if let Some(report) = &i.closing_report {
        body.push_str(&format!("- closing report: {report}\n"));
    }
    body.push_str(
        "\n-- \nSent by the MDM server's incident register. The full record, its history \
         and evidence are in the register (mdm incidents show).\n",
    );
    (subject, body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    fn config(toml: &str) -> EmailConfig {
        toml::from_str(toml).unwrap()
    }

    #[test]
    fn starttls_off_only_to_loopback_and_addresses_checked() {
        let base =
            "name = \"head\"\nfrom = \"MDM <mdm@town.example>\"\nto = [\"head@town.example\"]\n";
        assert!(mailer(&config(&format!(
            "{base}smtp_url = \"smtp://relay.town.example\"\n"
        )))
        .is_ok());
        let err = mailer(&config(&format!(
            "{base}host = \"relay.town.example\"\nstarttls = \"off\"\n"
        )))
        .err()
        .unwrap();
        assert!(err.contains("loopback"), "{err}");
        assert!(mailer(&config(&format!(
            "{base}smtp_url = \"smtp://127.0.0.1:2525\"\nstarttls = \"off\"\n"
        )))
        .is_ok());
        let err = mailer(&config(
            "name = \"x\"\nfrom = \"not an address\"\nto = [\"a@b.example\"]\nhost = \"h\"\n",
        ))
        .err()
        .unwrap();
        assert!(err.contains("from"), "{err}");
        let err = mailer(&config(&format!(
            "{base}smtp_url = \"smtp://user:pw@relay.town.example\"\n"
        )))
        .err()
        .unwrap();
        assert!(
            err.contains("password_file") && !err.contains("pw@"),
            "{err}"
        );
        let err = mailer(&config(&format!(
            "{base}host = \"relay.town.example\"\nusername = \"mdm\"\n"
        )))
        .err()
        .unwrap();
        assert!(err.contains("go together"), "{err}");
    }

    #[test]
    fn subject_names_number_level_and_colour() {
        let now = Utc::now();
        let incident = Incident {
            id: "i".into(),
            number: 7,
            name: "Lost phone of Łukasz Żółć".into(),
            incident_type: "lost_device".into(),
            level: 3,
            level_name: "high".into(),
            level_colour: "orange".into(),
            classification: "reported".into(),
            status: "not_started".into(),
            devices: vec!["d1".into()],
            users: vec![],
            detected_at: now,
            detection_source: "admin:alice".into(),
            response_plan: "Lock it.".into(),
            response_actions: vec![],
            expected_completion: None,
            resources: Default::default(),
            evidence_procedure: String::new(),
            evidence_location: String::new(),
            responsible: crate::domain::incident::ResponsiblePerson {
                full_name: "Олена Коваленко".into(),
                ..Default::default()
            },
            comments: String::new(),
            closing_report: None,
            created_at: now,
            updated_at: now,
            closed_at: None,
        };
        let event = Event {
            id: 1,
            occurred_at: now,
            kind: "incident.filed".into(),
            severity: Some(3),
            device_id: Some("d1".into()),
            actor: Some("alice".into()),
            message: "incident No. 7 filed: Lost phone of Łukasz Żółć".into(),
            data: serde_json::json!({ "incident_id": "i", "number": 7, "level": 3 }),
        };
        let (subject, body) = message_text(&event, Some(&incident));
        assert_eq!(
            subject,
            "[INCIDENT No. 7] high (orange): Lost phone of Łukasz Żółć"
        );
        assert!(
            body.contains("- person responsible: full name: Олена Коваленко"),
            "{body}"
        );
        assert!(body.contains("- response action plan: Lock it."), "{body}");
        assert!(!body.contains("http"), "{body}");
        let critical = Event {
            data: serde_json::json!({ "incident_id": "i", "number": 7, "level": 4 }),
            severity: Some(3),
            ..event
        };
        assert_eq!(
            event_level(&critical),
            4,
            "the incident's level, not the capped severity"
        );
    }
}
