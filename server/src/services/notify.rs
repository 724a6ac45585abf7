//! Events and incident changes out to a SIEM and to people's tools (issue 11, item 4):
//! signed JSON webhooks (HMAC-SHA256 over the timestamp and body), syslog (RFC
//! 5424 over UDP, TCP or TLS with RFC 6587 / 5425 octet counting, `syslog.rs`) and
//! e-mail (SMTP with STARTTLS, `email.rs`). Which events go
//! where is configuration (a receiver's kinds and minimum severity: who is told at
//! which level). Deliveries are queued in the database before they are sent, retried
//! with backoff, logged, replayable, and survive a restart: nothing is lost while a
//! receiver is down.

use super::ServiceResult;
use crate::domain::event::{Event, EventFilter};
use crate::storage::{OutboundDelivery, Storage};
use chrono::Utc;
use openssl::hash::MessageDigest;
use openssl::pkey::PKey;
use openssl::sign::Signer;
use serde::Deserialize;
use std::sync::Arc;
use std::time::Duration;

pub mod email;
mod syslog;

pub use email::EmailConfig;
pub use syslog::syslog_message;

/// A receiver as the office configures it (the `[[webhook]]` and `[[syslog]]` tables
/// of the incident file).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    pub name: String,
    pub url: String,
    /// The environment variable holding the HMAC key (never the key itself in a file).
    pub secret_env: String,
    #[serde(default)]
    pub min_severity: i16,
    /// Event kinds or prefixes ending in '.'; all when empty.
    #[serde(default)]
    pub kinds: Vec<String>,
    /// PEM CA to trust for the receiver's HTTPS certificate, besides the system's.
    pub ca_file: Option<std::path::PathBuf>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyslogConfig {
    pub name: String,
    /// udp://host:514, tcp://host:601 or tls://host:6514.
    pub address: String,
    #[serde(default)]
    pub min_severity: i16,
    #[serde(default)]
    pub kinds: Vec<String>,
    /// PEM CA to trust for the TLS receiver's certificate, besides the system's.
    pub ca_file: Option<std::path::PathBuf>,
    /// Syslog facility number. [default: 13, log audit]
    #[serde(default = "default_facility")]
    pub facility: u8,
}

fn default_facility() -> u8 {
    13
}

/// A receiver ready to send: checked and with its secret loaded.
#[derive(Clone)]
pub enum Receiver {
    Webhook {
        name: String,
        url: String,
        key: Vec<u8>,
        filter: Filter,
        http: reqwest::Client,
    },
    Syslog {
        name: String,
        transport: Transport,
        host: String,
        port: u16,
        facility: u8,
        filter: Filter,
        tls: Option<openssl::ssl::SslConnector>,
    },
    Email {
        name: String,
        mailer: Box<email::Mailer>,
        filter: Filter,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Udp,
    Tcp,
    Tls,
}

#[derive(Debug, Clone)]
pub struct Filter {
    min_severity: i16,
    kinds: Vec<String>,
    /// Incident changes by the incident's level (e-mail's `min_level`), not by the
    /// event's severity (capped at 3).
    by_incident_level: bool,
}

impl Filter {
    fn wants(&self, event: &Event) -> bool {
        let level = if self.by_incident_level {
            email::event_level(event)
        } else {
            event.severity.unwrap_or(0)
        };
        level >= self.min_severity
            && (self.kinds.is_empty()
                || self.kinds.iter().any(|k| match k.strip_suffix('.') {
                    Some(prefix) => event.kind.starts_with(&format!("{prefix}.")),
                    None => &event.kind == k,
                }))
    }
}

impl Receiver {
    pub fn name(&self) -> &str {
        match self {
            Receiver::Webhook { name, .. }
            | Receiver::Syslog { name, .. }
            | Receiver::Email { name, .. } => name,
        }
    }

    fn filter(&self) -> &Filter {
        match self {
            Receiver::Webhook { filter, .. }
            | Receiver::Syslog { filter, .. }
            | Receiver::Email { filter, .. } => filter,
        }
    }
}

fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty()
        || name.len() > 64
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(format!(
            "receiver name {name:?} must be 1 to 64 letters, digits, '-' or '_'"
        ));
    }
    Ok(())
}

fn read_ca(path: &std::path::Path) -> Result<Vec<openssl::x509::X509>, String> {
    let pem = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    openssl::x509::X509::stack_from_pem(&pem)
        .ok()
        .filter(|c| !c.is_empty())
        .ok_or_else(|| format!("{}: no PEM certificate in it", path.display()))
}

/// Checks the configured receivers and loads their secrets (HMAC keys, SMTP
/// passwords); at start, so that a wrong receiver stops the server instead of losing
/// events.
pub fn receivers(
    webhooks: &[WebhookConfig],
    syslogs: &[SyslogConfig],
    emails: &[EmailConfig],
) -> Result<Vec<Receiver>, String> {
    let mut out = Vec::new();
    let mut names = std::collections::HashSet::new();
    for w in webhooks {
        check_name(&w.name)?;
        if !names.insert(w.name.clone()) {
            return Err(format!("receiver name {:?} is used twice", w.name));
        }
        let loopback = w.url.starts_with("http://127.0.0.1")
            || w.url.starts_with("http://localhost")
            || w.url.starts_with("http://[::1]");
        if !(w.url.starts_with("https://") || loopback) {
            return Err(format!(
                "webhook {}: url must be https:// (plain http only to this host)",
                w.name
            ));
        }
        let key = std::env::var(&w.secret_env).map_err(|_| {
            format!(
                "webhook {}: the environment variable {} (its HMAC key) is not set",
                w.name, w.secret_env
            )
        })?;
        if key.len() < 16 {
            return Err(format!(
                "webhook {}: the HMAC key in {} must have at least 16 characters",
                w.name, w.secret_env
            ));
        }
        let mut http = reqwest::Client::builder().timeout(Duration::from_secs(10));
        if let Some(ca) = &w.ca_file {
            for cert in read_ca(ca).map_err(|e| format!("webhook {}: {e}", w.name))? {
                http = http.add_root_certificate(
                    reqwest::Certificate::from_der(&cert.to_der().map_err(|e| e.to_string())?)
                        .map_err(|e| e.to_string())?,
                );
            }
        }
        out.push(Receiver::Webhook {
            name: w.name.clone(),
            url: w.url.clone(),
            key: key.into_bytes(),
            filter: Filter {
                min_severity: w.min_severity,
                kinds: w.kinds.clone(),
                by_incident_level: false,
            },
            http: http.build().map_err(|e| e.to_string())?,
        });
    }
    for s in syslogs {
        check_name(&s.name)?;
        if !names.insert(s.name.clone()) {
            return Err(format!("receiver name {:?} is used twice", s.name));
        }
        let (transport, rest) = if let Some(r) = s.address.strip_prefix("udp://") {
            (Transport::Udp, r)
        } else if let Some(r) = s.address.strip_prefix("tcp://") {
            (Transport::Tcp, r)
        } else if let Some(r) = s.address.strip_prefix("tls://") {
            (Transport::Tls, r)
        } else {
            return Err(format!(
                "syslog {}: address must be udp://, tcp:// or tls://host:port",
                s.name
            ));
        };
        let (host, port) = rest
            .rsplit_once(':')
            .and_then(|(h, p)| {
                Some((
                    h.trim_matches(['[', ']']).to_owned(),
                    p.parse::<u16>().ok()?,
                ))
            })
            .filter(|(h, p)| !h.is_empty() && *p != 0)
            .ok_or_else(|| format!("syslog {}: address needs host:port", s.name))?;
        if s.facility > 23 {
            return Err(format!("syslog {}: facility must be 0 to 23", s.name));
        }
        let tls = if transport == Transport::Tls {
            let mut b = openssl::ssl::SslConnector::builder(openssl::ssl::SslMethod::tls_client())
                .map_err(|e| e.to_string())?;
            // The system's roots, not OpenSSL's default paths: a vendored OpenSSL's
            // point into its build prefix (trust_roots.rs).
            let mut store = crate::trust_roots::system_store()?;
            if let Some(ca) = &s.ca_file {
                for cert in read_ca(ca).map_err(|e| format!("syslog {}: {e}", s.name))? {
                    store.add_cert(cert).map_err(|e| e.to_string())?;
                }
            }
            b.set_cert_store(store.build());
            Some(b.build())
        } else {
            None
        };
        out.push(Receiver::Syslog {
            name: s.name.clone(),
            transport,
            host,
            port,
            facility: s.facility,
            filter: Filter {
                min_severity: s.min_severity,
                kinds: s.kinds.clone(),
                by_incident_level: false,
            },
            tls,
        });
    }
    for e in emails {
        check_name(&e.name)?;
        if !names.insert(e.name.clone()) {
            return Err(format!("receiver name {:?} is used twice", e.name));
        }
        out.push(Receiver::Email {
            name: e.name.clone(),
            mailer: Box::new(email::mailer(e)?),
            filter: Filter {
                min_severity: e.min_level,
                kinds: e.kinds.clone(),
                by_incident_level: true,
            },
        });
    }
    Ok(out)
}

/// The JSON an event is sent as (webhook body; syslog MSG).
fn payload(event: &Event) -> String {
    serde_json::json!({
        "id": event.id,
        "occurred_at": event.occurred_at,
        "kind": event.kind,
        "severity": event.severity,
        "device_id": event.device_id,
        "actor": event.actor,
        "message": event.message,
        "data": event.data,
    })
    .to_string()
}

/// `t=<unix seconds>,v1=<hex HMAC-SHA256(key, "<t>.<body>")>`: the receiver checks
/// the signature and refuses old timestamps (replays).
pub fn signature(key: &[u8], timestamp: i64, body: &str) -> Result<String, String> {
    let pkey = PKey::hmac(key).map_err(|e| e.to_string())?;
    let mut signer = Signer::new(MessageDigest::sha256(), &pkey).map_err(|e| e.to_string())?;
    signer
        .update(format!("{timestamp}.{body}").as_bytes())
        .map_err(|e| e.to_string())?;
    let mac = signer.sign_to_vec().map_err(|e| e.to_string())?;
    Ok(format!("t={timestamp},v1={}", hex::encode(mac)))
}

pub struct Notifier {
    store: Arc<dyn Storage>,
    receivers: Vec<Receiver>,
    hostname: String,
    interval: Duration,
}

/// Retry delays: 1 s, doubling, at most 10 minutes.
fn backoff(attempts: i32) -> chrono::Duration {
    chrono::Duration::seconds(1i64 << attempts.clamp(0, 10)).min(chrono::Duration::minutes(10))
}

impl Notifier {
    pub fn new(store: Arc<dyn Storage>, receivers: Vec<Receiver>, interval: Duration) -> Self {
        let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_owned())
            .unwrap_or_else(|_| "mdm".into());
        Notifier {
            store,
            receivers,
            hostname,
            interval,
        }
    }

    /// A receiver seen for the first time starts at the end of the event stream as it
    /// is now: a SIEM added later gets what happens from then on, not the history.
    /// Called before the server listens, so no event of its first requests is missed.
    pub async fn init_cursors(&self) -> ServiceResult<()> {
        for receiver in &self.receivers {
            if self.store.delivery_cursor(receiver.name()).await?.is_none() {
                let latest = self.store.latest_event_id().await?;
                self.store
                    .enqueue_deliveries(receiver.name(), Vec::new(), latest, Utc::now())
                    .await?;
            }
        }
        Ok(())
    }

    /// Queues the new events each receiver wants.
    pub async fn enqueue(&self) -> ServiceResult<usize> {
        let mut queued = 0;
        for receiver in &self.receivers {
            let after = self
                .store
                .delivery_cursor(receiver.name())
                .await?
                .unwrap_or(0);
            let events = self
                .store
                .events(&EventFilter {
                    after_id: Some(after),
                    limit: Some(500),
                    ..Default::default()
                })
                .await?;
            let Some(last) = events.last().map(|e| e.id) else {
                continue;
            };
            let mut items: Vec<(i64, String)> = Vec::new();
            for e in events.iter().filter(|e| receiver.filter().wants(e)) {
                let payload = match receiver {
                    // The message as it reads now, kept for retries and replays.
                    Receiver::Email { .. } => email::compose(&*self.store, e).await?,
                    _ => payload(e),
                };
                items.push((e.id, payload));
            }
            queued += items.len();
            self.store
                .enqueue_deliveries(receiver.name(), items, last, Utc::now())
                .await?;
        }
        Ok(queued)
    }

    /// Sends what is due; returns how many were sent.
    pub async fn send_due(&self) -> ServiceResult<usize> {
        let now = Utc::now();
        let due = self
            .store
            .claim_due_deliveries(now, chrono::Duration::seconds(60), 200)
            .await?;
        let mut sent = 0;
        for delivery in due {
            let Some(receiver) = self
                .receivers
                .iter()
                .find(|r| r.name() == delivery.receiver)
            else {
                // A receiver removed from the configuration: kept for the log, retried
                // hourly in case it comes back.
                self.store
                    .delivery_done(
                        delivery.id,
                        Err((
                            "no such receiver configured".into(),
                            now + chrono::Duration::hours(1),
                        )),
                    )
                    .await?;
                continue;
            };
            let outcome = match self.send(receiver, &delivery).await {
                Ok(()) => {
                    sent += 1;
                    Ok(Utc::now())
                }
                Err(e) => {
                    tracing::warn!(receiver = receiver.name(), delivery = delivery.id, error = %e, "delivery failed; will retry");
                    Err((e, Utc::now() + backoff(delivery.attempts)))
                }
            };
            self.store.delivery_done(delivery.id, outcome).await?;
        }
        Ok(sent)
    }

    async fn send(&self, receiver: &Receiver, delivery: &OutboundDelivery) -> Result<(), String> {
        match receiver {
            Receiver::Webhook { url, key, http, .. } => {
                let timestamp = Utc::now().timestamp();
                let response = http
                    .post(url)
                    .header("Content-Type", "application/json")
                    .header("X-MDM-Event-Id", delivery.event_id.to_string())
                    .header("X-MDM-Delivery-Id", delivery.id.to_string())
                    .header(
                        "X-MDM-Signature",
                        signature(key, timestamp, &delivery.payload)?,
                    )
                    .body(delivery.payload.clone())
                    .send()
                    .await
                    .map_err(|e| format!("{url}: {e}"))?;
                if response.status().is_success() {
                    Ok(())
                } else {
                    Err(format!("{url} answered {}", response.status()))
                }
            }
            Receiver::Syslog {
                transport,
                host,
                port,
                facility,
                tls,
                ..
            } => {
                let message = syslog_message(
                    *facility,
                    &self.hostname,
                    delivery.event_id,
                    &delivery.payload,
                );
                let (transport, host, port, tls) = (*transport, host.clone(), *port, tls.clone());
                tokio::task::spawn_blocking(move || {
                    syslog::send_syslog(transport, &host, port, tls, &message)
                })
                .await
                .map_err(|e| e.to_string())?
            }
            Receiver::Email { mailer, .. } => mailer.send(delivery, &self.hostname).await,
        }
    }

    pub fn spawn(self) {
        if self.receivers.is_empty() {
            return;
        }
        tokio::spawn(async move {
            loop {
                if let Err(e) = self.enqueue().await {
                    tracing::error!(error = %e, "queueing deliveries failed; will retry");
                }
                if let Err(e) = self.send_due().await {
                    tracing::error!(error = %e, "sending deliveries failed; will retry");
                }
                tokio::time::sleep(self.interval).await;
            }
        });
    }
}

/// When a delivery failed for the last time, for the API's log.
pub fn describe(d: &OutboundDelivery) -> &'static str {
    match (&d.delivered_at, &d.last_error) {
        (Some(_), _) => "delivered",
        (None, Some(_)) => "failed",
        (None, None) => "pending",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_hmac_sha256_over_timestamp_and_body() {
        let sig = signature(b"0123456789abcdef", 1_700_000_000, "{}").unwrap();
        let pkey = PKey::hmac(b"0123456789abcdef").unwrap();
        let mut s = Signer::new(MessageDigest::sha256(), &pkey).unwrap();
        s.update(b"1700000000.{}").unwrap();
        assert_eq!(
            sig,
            format!("t=1700000000,v1={}", hex::encode(s.sign_to_vec().unwrap()))
        );
    }

    /// A syslog receiver over TLS with no CA file of its own trusts what the system
    /// trusts (a vendored OpenSSL's default paths would give it nothing).
    #[test]
    fn a_tls_syslog_receiver_trusts_the_systems_roots() {
        crate::trust_roots::without_ssl_env(
            "services::notify::tests::a_tls_syslog_receiver_trusts_the_systems_roots",
            syslog_roots,
        );
    }

    fn syslog_roots() {
        if openssl_probe::probe().cert_file.is_none() {
            eprintln!(
                "skipped: a_tls_syslog_receiver_trusts_the_systems_roots: this machine \
                 has no CA bundle (Debian package ca-certificates)"
            );
            return;
        }
        let config = SyslogConfig {
            name: "siem".into(),
            address: "tls://siem.example:6514".into(),
            min_severity: 0,
            kinds: vec![],
            ca_file: None,
            facility: default_facility(),
        };
        let receivers = receivers(&[], &[config], &[]).unwrap();
        let Some(Receiver::Syslog { tls: Some(tls), .. }) = receivers.first() else {
            panic!("no TLS syslog receiver");
        };
        let roots = tls.context().cert_store().all_certificates();
        assert!(!roots.is_empty(), "the receiver's TLS trusts no root");
    }
}
