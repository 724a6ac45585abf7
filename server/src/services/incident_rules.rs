//! Incidents filed from the event stream: rules (built in, or the office's own file
//! given with `--incident-rules`) say which events are incidents, of which type and
//! at which starting level. An event that matches an open incident of the same type
//! on the same device joins it instead of filing another. The engine tails the event
//! stream from a stored position; each event is handled once (its link's primary key
//! decides), whichever instance sees it and however often.

use super::incidents::kinds as incident_kinds;
use super::ServiceResult;
use crate::domain::event::{Event, EventFilter, NewEvent};
use crate::domain::incident::{level_colour, level_name, Incident, Resources, ResponsiblePerson};
use crate::storage::{EventOutcome, Storage};
use chrono::Utc;
use serde::Deserialize;
use std::sync::Arc;
use std::time::Duration;

/// One rule: which events (by kind, data and severity) file which incidents.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// An event kind, or a prefix ending in '.' ("security.").
    pub kind: String,
    /// Fields of the event's data that must have these values.
    #[serde(default)]
    pub data: std::collections::BTreeMap<String, serde_json::Value>,
    /// Only events of at least this severity.
    #[serde(default)]
    pub min_severity: Option<i16>,
    /// The incident type filed: lost_device, compromised_device, ...
    #[serde(rename = "type")]
    pub incident_type: String,
    /// Starting level on the policy's scale (0-5).
    pub level: i16,
    /// The incident's name; `{message}` is replaced by the event's message.
    pub name: String,
    /// The response plan copied into the incident.
    #[serde(default)]
    pub response_plan: String,
    /// Only join an open incident on the device (of any type), never file one: for
    /// events that complete an incident's record, such as a wipe done.
    #[serde(default)]
    pub attach_only: bool,
}

/// The office's incident configuration: rules, ready response plans, playbooks.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IncidentConfig {
    #[serde(rename = "rule", default)]
    pub rules: Vec<Rule>,
    #[serde(rename = "plan", default)]
    pub plans: Vec<super::playbooks::ResponsePlan>,
    #[serde(rename = "playbook", default)]
    pub playbooks: Vec<super::playbooks::Playbook>,
    /// Signed JSON webhooks events go out to.
    #[serde(rename = "webhook", default)]
    pub webhooks: Vec<super::notify::WebhookConfig>,
    /// Syslog receivers (a SIEM) events go out to.
    #[serde(rename = "syslog", default)]
    pub syslogs: Vec<super::notify::SyslogConfig>,
    /// People mailed about incidents at their level (SMTP with STARTTLS).
    #[serde(rename = "email", default)]
    pub emails: Vec<super::notify::EmailConfig>,
}

impl Default for IncidentConfig {
    fn default() -> Self {
        IncidentConfig {
            rules: default_rules(),
            plans: super::playbooks::default_plans(),
            playbooks: super::playbooks::default_playbooks(),
            webhooks: Vec::new(),
            syslogs: Vec::new(),
            emails: Vec::new(),
        }
    }
}

impl Rule {
    fn matches(&self, event: &Event) -> bool {
        let kind = if let Some(prefix) = self.kind.strip_suffix('.') {
            event.kind.starts_with(&format!("{prefix}."))
        } else {
            event.kind == self.kind
        };
        kind && self
            .min_severity
            .is_none_or(|min| event.severity.unwrap_or(0) >= min)
            && self.data.iter().all(|(k, v)| event.data.get(k) == Some(v))
    }
}

/// The rules when the office gives none: the device incidents the server sees itself.
pub fn default_rules() -> Vec<Rule> {
    let rule =
        |kind: &str, data: &[(&str, &str)], t: &str, level: i16, name: &str, plan: &str| Rule {
            kind: kind.into(),
            data: data
                .iter()
                .map(|(k, v)| ((*k).to_owned(), serde_json::Value::String((*v).to_owned())))
                .collect(),
            min_severity: None,
            incident_type: t.into(),
            level,
            name: name.into(),
            response_plan: plan.into(),
            attach_only: false,
        };
    vec![
        rule(
            "security.identity_mismatch",
            &[],
            "identity_mismatch",
            2,
            "Request signed with another device's certificate: {message}",
            "Check which device holds the certificate; revoke it if it was copied.",
        ),
        rule(
            "security.identity_takeover_refused",
            &[],
            "identity_mismatch",
            3,
            "Attempt to take over a device identity: {message}",
            "Revoke the certificate used; check the device it belongs to.",
        ),
        rule(
            "security.revoked_identity_refused",
            &[],
            "compromised_device",
            2,
            "A revoked device identity was used: {message}",
            "The certificate was copied off a wiped or retired device: find where it is used.",
        ),
        rule(
            "device.checked_out",
            &[],
            "unexpected_unenrollment",
            1,
            "Device left management: {message}",
            "Contact the user; re-enroll or retire the device.",
        ),
        rule(
            "command.result",
            &[("request_type", "EraseDevice"), ("status", "error")],
            "wipe_failed",
            3,
            "Remote wipe failed: {message}",
            "Retry the wipe; if the device stays unreachable, revoke its identity.",
        ),
        Rule {
            min_severity: Some(3),
            ..rule(
                "security.android_log",
                &[("event_type", "KEYGUARD_DISMISS_AUTH_ATTEMPT")],
                "failed_unlock_burst",
                2,
                "Burst of failed unlock attempts: {message}",
                "Someone who does not know the passcode holds the phone: lock it, call the user, treat it as lost if they do not have it.",
            )
        },
        rule(
            "security.android_log",
            &[("event_type", "CERT_AUTHORITY_INSTALLED")],
            "compromised_device",
            2,
            "A CA certificate was installed on the device: {message}",
            "",
        ),
        rule(
            "security.android_log",
            &[("event_type", "KEY_INTEGRITY_VIOLATION")],
            "compromised_device",
            3,
            "Key integrity violation: {message}",
            "",
        ),
        rule(
            "security.android_log",
            &[("event_type", "WIPE_FAILURE")],
            "wipe_failed",
            3,
            "Wipe failed on the device: {message}",
            "Retry the wipe; if the device stays unreachable, revoke its identity.",
        ),
        Rule {
            data: [("compliant".to_owned(), serde_json::Value::Bool(false))].into(),
            min_severity: Some(2),
            ..rule(
                "device.compliance_changed",
                &[],
                "non_compliant_device",
                1,
                "Device fell out of compliance: {message}",
                "",
            )
        },
        Rule {
            data: [("compliant".to_owned(), serde_json::Value::Bool(false))].into(),
            ..rule(
                "android.compliance_changed",
                &[],
                "non_compliant_device",
                1,
                "Android device not compliant: {message}",
                "",
            )
        },
        Rule {
            min_severity: Some(3),
            ..rule(
                "android.posture_changed",
                &[],
                "compromised_device",
                3,
                "Android device may be compromised: {message}",
                "",
            )
        },
        Rule {
            min_severity: Some(2),
            ..rule(
                "android.posture_changed",
                &[],
                "compromised_device",
                2,
                "Android device at risk: {message}",
                "",
            )
        },
        rule(
            "android.device_removed",
            &[],
            "unexpected_unenrollment",
            1,
            "Device left management: {message}",
            "Contact the user; re-enroll or retire the device.",
        ),
        rule(
            "android.configuration_error",
            &[],
            "google_connection_broken",
            2,
            "The connection to Google's Android Management API is broken: {message}",
            "Check the service account and the enterprise (mdm android status); reconnect with mdm android connect.",
        ),
        // A wipe done (Apple or Android) completes the record of the lost, stolen or
        // compromised device's incident; alone it is no incident.
        Rule {
            attach_only: true,
            ..rule(
                "device.identity_revoked",
                &[("why", "wiped (EraseDevice acknowledged)")],
                "device_wiped",
                1,
                "Device wiped: {message}",
                "",
            )
        },
        Rule {
            attach_only: true,
            ..rule(
                "device.identity_revoked",
                &[("why", "wiped (Android WIPE acknowledged)")],
                "device_wiped",
                1,
                "Device wiped: {message}",
                "",
            )
        },
        rule(
            "push.configuration_error",
            &[],
            "push_certificate_broken",
            2,
            "Apple push notifications broken: {message}",
            "Renew or re-upload the push certificate (mdm push-cert).",
        ),
    ]
}

/// Reads the office's incident file (TOML: `[[rule]]`, `[[plan]]`, `[[playbook]]`,
/// `[[webhook]]`, `[[syslog]]`, `[[email]]` tables; a rule, plan or playbook section left out
/// keeps the built-in one), checked now so that a wrong
/// file stops the start.
pub fn load_config(path: &std::path::Path) -> Result<IncidentConfig, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("--incident-rules {}: {e}", path.display()))?;
    let mut config: IncidentConfig =
        toml::from_str(&text).map_err(|e| format!("--incident-rules {}: {e}", path.display()))?;
    for (n, rule) in config.rules.iter().enumerate() {
        let at = |why: &str| format!("--incident-rules {}: rule {}: {why}", path.display(), n + 1);
        if !(0..=5).contains(&rule.level) {
            return Err(at("level must be 0 to 5"));
        }
        if rule.kind.is_empty() || rule.kind.starts_with("incident.") {
            return Err(at(
                "kind must name device events, not incident.* (that would loop)",
            ));
        }
        if rule.name.trim().is_empty() || rule.incident_type.is_empty() {
            return Err(at("name and type are required"));
        }
    }
    for (n, playbook) in config.playbooks.iter().enumerate() {
        if playbook.incident_type.is_empty() || playbook.actions.is_empty() {
            return Err(format!(
                "--incident-rules {}: playbook {}: type and actions are required",
                path.display(),
                n + 1
            ));
        }
    }
    // Receivers are checked (and their secrets looked up) now as well.
    super::notify::receivers(&config.webhooks, &config.syslogs, &config.emails)
        .map_err(|e| format!("--incident-rules {}: {e}", path.display()))?;
    let defaults = IncidentConfig::default();
    if config.rules.is_empty() {
        config.rules = defaults.rules;
    }
    if config.plans.is_empty() {
        config.plans = defaults.plans;
    }
    if config.playbooks.is_empty() {
        config.playbooks = defaults.playbooks;
    }
    Ok(config)
}

pub struct IncidentRules {
    store: Arc<dyn Storage>,
    rules: Vec<Rule>,
    playbooks: Arc<super::playbooks::PlaybookRunner>,
    interval: Duration,
}

impl IncidentRules {
    pub fn new(
        store: Arc<dyn Storage>,
        rules: Vec<Rule>,
        playbooks: Arc<super::playbooks::PlaybookRunner>,
        interval: Duration,
    ) -> Self {
        IncidentRules {
            store,
            rules,
            playbooks,
            interval,
        }
    }

    /// Handles the events after the stored position; returns how many it read.
    pub async fn run_once(&self) -> ServiceResult<usize> {
        let after = self.store.rule_cursor().await?;
        let events = self
            .store
            .events(&EventFilter {
                after_id: Some(after),
                limit: Some(500),
                ..Default::default()
            })
            .await?;
        for event in &events {
            // Incidents' own events never file incidents.
            if event.kind.starts_with("incident.") {
                continue;
            }
            if let Some(rule) = self.rules.iter().find(|r| r.matches(event)) {
                self.apply(rule, event).await?;
            }
        }
        if let Some(last) = events.last() {
            self.store.advance_rule_cursor(last.id).await?;
        }
        Ok(events.len())
    }

    async fn apply(&self, rule: &Rule, event: &Event) -> ServiceResult<()> {
        let now = Utc::now();
        let incident = Incident {
            id: uuid::Uuid::new_v4().to_string(),
            number: 0,
            name: rule
                .name
                .replace("{message}", &event.message)
                .chars()
                .take(200)
                .collect(),
            incident_type: rule.incident_type.clone(),
            level: rule.level,
            level_name: level_name(rule.level).into(),
            level_colour: level_colour(rule.level).into(),
            classification: "reported".into(),
            status: "not_started".into(),
            devices: event.device_id.iter().cloned().collect(),
            users: Vec::new(),
            detected_at: event.occurred_at,
            detection_source: format!("event:{}", event.kind),
            response_plan: if rule.response_plan.is_empty() {
                self.playbooks
                    .plan_for(&rule.incident_type)
                    .unwrap_or_default()
            } else {
                rule.response_plan.clone()
            },
            response_actions: Vec::new(),
            expected_completion: None,
            resources: Resources::default(),
            evidence_procedure: String::new(),
            evidence_location: String::new(),
            responsible: ResponsiblePerson::default(),
            comments: String::new(),
            closing_report: None,
            created_at: now,
            updated_at: now,
            closed_at: None,
        };
        let details = serde_json::json!({
            "event_id": event.id,
            "kind": event.kind,
            "severity": event.severity,
            "message": event.message,
            "occurred_at": event.occurred_at,
        });
        let outcome = self
            .store
            .file_or_attach_from_event(event.id, incident, details, rule.attach_only)
            .await?;
        let (kind, incident, text) = match outcome {
            EventOutcome::AlreadyHandled | EventOutcome::NoOpenIncident => return Ok(()),
            EventOutcome::Filed(i) => (
                incident_kinds::INCIDENT_FILED,
                i.clone(),
                format!(
                    "incident No. {} filed from {}: {}",
                    i.number, event.kind, i.name
                ),
            ),
            EventOutcome::Attached(i) => (
                incident_kinds::INCIDENT_EVENT_ATTACHED,
                i.clone(),
                format!(
                    "event {} ({}) joined incident No. {}",
                    event.id, event.kind, i.number
                ),
            ),
        };
        let mut record = NewEvent::new(kind, text)
            .actor("rules")
            .severity(incident.level.min(crate::domain::event::severity::HIGH))
            .data(serde_json::json!({
                "incident_id": incident.id,
                "number": incident.number,
                "level": incident.level,
                "source_event_id": event.id,
            }));
        if let Some(device) = &event.device_id {
            record = record.device(device);
        }
        self.store.record(record).await?;
        if kind == incident_kinds::INCIDENT_FILED {
            self.playbooks
                .run(&incident, super::playbooks::Trigger::Filed, "rules")
                .await;
        }
        Ok(())
    }

    /// Tails the event stream for as long as the server runs.
    pub fn spawn(self) {
        tokio::spawn(async move {
            loop {
                match self.run_once().await {
                    // A full page: more may be waiting.
                    Ok(500) => continue,
                    Ok(_) => {}
                    Err(e) => tracing::error!(error = %e, "incident rules failed; will retry"),
                }
                tokio::time::sleep(self.interval).await;
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(kind: &str, severity: Option<i16>, data: serde_json::Value) -> Event {
        Event {
            id: 1,
            occurred_at: Utc::now(),
            kind: kind.into(),
            severity,
            device_id: Some("d".into()),
            actor: None,
            message: "m".into(),
            data,
        }
    }

    #[test]
    fn rules_match_kind_prefix_severity_and_data() {
        let rules = default_rules();
        let wipe_failed = event(
            "command.result",
            None,
            serde_json::json!({ "request_type": "EraseDevice", "status": "error" }),
        );
        assert!(rules.iter().any(|r| r.matches(&wipe_failed)));
        let wipe_done = event(
            "command.result",
            None,
            serde_json::json!({ "request_type": "EraseDevice", "status": "acknowledged" }),
        );
        assert!(!rules.iter().any(|r| r.matches(&wipe_done)));
        let not_compliant = event(
            "android.compliance_changed",
            Some(2),
            serde_json::json!({ "compliant": false }),
        );
        let matched = rules.iter().find(|r| r.matches(&not_compliant)).unwrap();
        assert_eq!(matched.incident_type, "non_compliant_device");
        let compliant = event(
            "android.compliance_changed",
            Some(0),
            serde_json::json!({ "compliant": true }),
        );
        assert!(!rules.iter().any(|r| r.matches(&compliant)));
        let compromised = event("android.posture_changed", Some(3), serde_json::json!({}));
        assert_eq!(
            rules
                .iter()
                .find(|r| r.matches(&compromised))
                .unwrap()
                .level,
            3
        );
        let at_risk = event("android.posture_changed", Some(2), serde_json::json!({}));
        assert_eq!(rules.iter().find(|r| r.matches(&at_risk)).unwrap().level, 2);
        let prefix = Rule {
            kind: "security.".into(),
            data: Default::default(),
            min_severity: Some(3),
            incident_type: "x".into(),
            level: 1,
            name: "n".into(),
            response_plan: String::new(),
            attach_only: false,
        };
        assert!(prefix.matches(&event("security.anything", Some(3), serde_json::json!({}))));
        assert!(!prefix.matches(&event("security.anything", Some(2), serde_json::json!({}))));
        assert!(!prefix.matches(&event("securityx.y", Some(5), serde_json::json!({}))));
    }
}
