//! The incident register: filing incidents by hand, updating, classifying, dated
//! response actions, closing, exports in the register's column order, and the
//! verification of its hash chain. Every change is a history link (who, when, what)
//! and an `incident.*` event in the event stream.

use super::playbooks::{PlaybookRunner, Trigger};
use super::tokens::AdminIdentity;
use super::{ServiceError, ServiceResult};
use crate::domain::event::{severity, NewEvent};
use crate::domain::incident::{
    level_colour, level_name, Approval, Evidence, HistoryEntry, Incident, IncidentFilter,
    Resources, ResponseAction, ResponsiblePerson, CLASSIFICATIONS, REGISTER_COLUMNS, STATUSES,
};
use crate::domain::Page;
use crate::storage::{RegisterVerification, Storage};
use chrono::{DateTime, NaiveDate, Utc};
use serde::Deserialize;
use std::sync::Arc;

/// Longest free text in a register field: a register is read by people, and a
/// field this long is a paste gone wrong.
const MAX_TEXT: usize = 20_000;
const MAX_NAME: usize = 200;

pub mod pdf;

pub mod kinds {
    pub const INCIDENT_FILED: &str = "incident.filed";
    pub const INCIDENT_UPDATED: &str = "incident.updated";
    pub const INCIDENT_CLASSIFIED: &str = "incident.classified";
    pub const INCIDENT_ACTION: &str = "incident.action_recorded";
    pub const INCIDENT_CLOSED: &str = "incident.closed";
    pub const INCIDENT_EVENT_ATTACHED: &str = "incident.event_attached";
    pub const INCIDENT_EVIDENCE: &str = "incident.evidence_attached";
    pub const INCIDENT_NOTIFICATION: &str = "incident.notification";
}

/// What an admin writes when filing an incident by hand.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewIncident {
    pub name: String,
    #[serde(rename = "type")]
    pub incident_type: String,
    pub level: i16,
    #[serde(default)]
    pub devices: Vec<String>,
    #[serde(default)]
    pub users: Vec<String>,
    pub detected_at: Option<DateTime<Utc>>,
    pub detection_source: Option<String>,
    #[serde(default)]
    pub response_plan: String,
    pub expected_completion: Option<NaiveDate>,
    #[serde(default)]
    pub resources: Resources,
    #[serde(default)]
    pub evidence_procedure: String,
    #[serde(default)]
    pub evidence_location: String,
    #[serde(default)]
    pub responsible: ResponsiblePerson,
    #[serde(default)]
    pub comments: String,
}

/// What to collect as evidence: from the server's own records, never from the
/// admin's hand (except a note, which says it is one).
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum EvidenceRequest {
    /// The device record as the server holds it (facts, compliance, identity).
    DeviceFacts { device_id: String },
    /// A command with its status and result.
    CommandResult { command_uuid: String },
    /// The device's events (newest 1000).
    Events { device_id: String },
    /// An Android device's last status report from Google (AMAPI), as stored.
    StatusReport { device_id: String },
    /// A written note (a statement, a phone call).
    Note { text: String },
}

/// Fields an update may change; absent ones stay.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IncidentUpdate {
    pub name: Option<String>,
    #[serde(rename = "type")]
    pub incident_type: Option<String>,
    pub status: Option<String>,
    pub devices: Option<Vec<String>>,
    pub users: Option<Vec<String>>,
    pub response_plan: Option<String>,
    pub expected_completion: Option<NaiveDate>,
    pub resources: Option<Resources>,
    pub evidence_procedure: Option<String>,
    pub evidence_location: Option<String>,
    pub responsible: Option<ResponsiblePerson>,
    pub comments: Option<String>,
}

fn check_text(field: &str, value: &str, max: usize) -> ServiceResult<()> {
    if value.chars().count() > max {
        return Err(ServiceError::BadRequest(format!(
            "{field} is longer than {max} characters"
        )));
    }
    if value
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t' && c != '\r')
    {
        return Err(ServiceError::BadRequest(format!(
            "{field} contains control characters"
        )));
    }
    Ok(())
}

fn check_level(level: i16) -> ServiceResult<()> {
    if !(0..=5).contains(&level) {
        return Err(ServiceError::BadRequest(format!(
            "level must be 0 (non-critical, white) to 5 (emergency, black), not {level}"
        )));
    }
    Ok(())
}

fn check_one_of(field: &str, value: &str, allowed: &[&str]) -> ServiceResult<()> {
    if !allowed.contains(&value) {
        return Err(ServiceError::BadRequest(format!(
            "{field} must be one of {}, not {value:?}",
            allowed.join(", ")
        )));
    }
    Ok(())
}

fn check_name(name: &str) -> ServiceResult<()> {
    if name.trim().is_empty() {
        return Err(ServiceError::BadRequest("name must not be empty".into()));
    }
    check_text("name", name, MAX_NAME)
}

fn check_type(incident_type: &str) -> ServiceResult<()> {
    let ok = !incident_type.is_empty()
        && incident_type.len() <= 64
        && incident_type
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !ok {
        return Err(ServiceError::BadRequest(
            "type must be a short snake_case name such as lost_device".into(),
        ));
    }
    Ok(())
}

fn check_list(field: &str, items: &[String]) -> ServiceResult<()> {
    if items.len() > 1000 {
        return Err(ServiceError::BadRequest(format!(
            "{field}: at most 1000 entries"
        )));
    }
    for item in items {
        if item.is_empty() || item.len() > 64 {
            return Err(ServiceError::BadRequest(format!(
                "{field}: entries are ids of 1 to 64 characters"
            )));
        }
        check_text(field, item, 64)?;
    }
    Ok(())
}

fn check_free_text(pairs: &[(&str, &str)]) -> ServiceResult<()> {
    for (field, value) in pairs {
        check_text(field, value, MAX_TEXT)?;
    }
    Ok(())
}

pub struct IncidentService {
    store: Arc<dyn Storage>,
    playbooks: Arc<PlaybookRunner>,
}

impl IncidentService {
    pub fn new(store: Arc<dyn Storage>, playbooks: Arc<PlaybookRunner>) -> Self {
        IncidentService { store, playbooks }
    }

    pub async fn file(&self, actor: &str, new: NewIncident) -> ServiceResult<Incident> {
        check_name(&new.name)?;
        check_type(&new.incident_type)?;
        check_level(new.level)?;
        check_list("devices", &new.devices)?;
        check_list("users", &new.users)?;
        check_free_text(&[
            ("response_plan", &new.response_plan),
            ("evidence_procedure", &new.evidence_procedure),
            ("evidence_location", &new.evidence_location),
            ("comments", &new.comments),
            ("resources.technical", &new.resources.technical),
            ("resources.software", &new.resources.software),
            ("resources.financial", &new.resources.financial),
            ("responsible.full_name", &new.responsible.full_name),
            (
                "responsible.position_company",
                &new.responsible.position_company,
            ),
            ("responsible.phone", &new.responsible.phone),
        ])?;
        let now = Utc::now();
        let detected_at = new.detected_at.unwrap_or(now);
        if detected_at > now + chrono::Duration::minutes(5) {
            return Err(ServiceError::BadRequest(
                "detected_at lies in the future".into(),
            ));
        }
        let source = new
            .detection_source
            .unwrap_or_else(|| format!("admin:{actor}"));
        check_text("detection_source", &source, MAX_NAME)?;
        let incident = Incident {
            id: uuid::Uuid::new_v4().to_string(),
            number: 0,
            name: new.name.trim().to_owned(),
            incident_type: new.incident_type.clone(),
            level: new.level,
            level_name: level_name(new.level).into(),
            level_colour: level_colour(new.level).into(),
            classification: "reported".into(),
            status: "not_started".into(),
            devices: new.devices,
            users: new.users,
            detected_at,
            detection_source: source,
            // The ready plan for the type, unless the admin wrote one.
            response_plan: if new.response_plan.trim().is_empty() {
                self.playbooks
                    .plan_for(&new.incident_type)
                    .unwrap_or_default()
            } else {
                new.response_plan
            },
            response_actions: Vec::new(),
            expected_completion: new.expected_completion,
            resources: new.resources,
            evidence_procedure: new.evidence_procedure,
            evidence_location: new.evidence_location,
            responsible: new.responsible,
            comments: new.comments,
            closing_report: None,
            created_at: now,
            updated_at: now,
            closed_at: None,
        };
        let details =
            serde_json::json!({ "level": incident.level, "type": incident.incident_type });
        let filed = self.store.file_incident(incident, actor, details).await?;
        self.event(
            kinds::INCIDENT_FILED,
            &filed,
            actor,
            format!("incident No. {} filed: {}", filed.number, filed.name),
        )
        .await?;
        self.playbooks.run(&filed, Trigger::Filed, actor).await;
        // What the playbooks recorded is part of the incident now.
        self.get(&filed.id).await
    }

    async fn event(
        &self,
        kind: &'static str,
        incident: &Incident,
        actor: &str,
        text: String,
    ) -> ServiceResult<()> {
        let mut event = NewEvent::new(kind, text)
            .actor(actor)
            .severity(incident.level.min(severity::HIGH))
            .data(serde_json::json!({
                "incident_id": incident.id,
                "number": incident.number,
                "level": incident.level,
                "level_name": incident.level_name,
                "classification": incident.classification,
                "status": incident.status,
            }));
        if let Some(device) = incident.devices.first() {
            event = event.device(device);
        }
        self.store.record(event).await?;
        Ok(())
    }

    async fn change(
        &self,
        id: &str,
        actor: &str,
        change: &str,
        kind: &'static str,
        apply: crate::storage::IncidentChange,
    ) -> ServiceResult<Incident> {
        let current = self.get(id).await?;
        let (incident, details) = self
            .store
            .change_incident(&current.id, actor, change, apply)
            .await?
            .map_err(ServiceError::Conflict)?;
        self.event(
            kind,
            &incident,
            actor,
            format!("incident No. {} {change}: {details}", incident.number),
        )
        .await?;
        Ok(incident)
    }

    pub async fn update(
        &self,
        id: &str,
        actor: &str,
        update: IncidentUpdate,
    ) -> ServiceResult<Incident> {
        if let Some(name) = &update.name {
            check_name(name)?;
        }
        if let Some(t) = &update.incident_type {
            check_type(t)?;
        }
        if let Some(status) = &update.status {
            check_one_of("status", status, &STATUSES)?;
        }
        for (field, list) in [("devices", &update.devices), ("users", &update.users)] {
            if let Some(list) = list {
                check_list(field, list)?;
            }
        }
        for (field, value) in [
            ("response_plan", &update.response_plan),
            ("evidence_procedure", &update.evidence_procedure),
            ("evidence_location", &update.evidence_location),
            ("comments", &update.comments),
        ] {
            if let Some(v) = value {
                check_text(field, v, MAX_TEXT)?;
            }
        }
        let details = serde_json::to_value(UpdateView(&update))
            .map_err(|e| ServiceError::Internal(e.to_string()))?;
        if details.as_object().is_none_or(|o| o.is_empty()) {
            return Err(ServiceError::BadRequest("nothing to update".into()));
        }
        self.change(
            id,
            actor,
            "updated",
            kinds::INCIDENT_UPDATED,
            Box::new(move |i: &mut Incident| {
                if i.closed_at.is_some() {
                    return Err(format!("incident No. {} is closed", i.number));
                }
                let u = update;
                if let Some(v) = u.name {
                    i.name = v.trim().to_owned();
                }
                if let Some(v) = u.incident_type {
                    i.incident_type = v;
                }
                if let Some(v) = u.status {
                    i.status = v;
                }
                if let Some(v) = u.devices {
                    i.devices = v;
                }
                if let Some(v) = u.users {
                    i.users = v;
                }
                if let Some(v) = u.response_plan {
                    i.response_plan = v;
                }
                if let Some(v) = u.expected_completion {
                    i.expected_completion = Some(v);
                }
                if let Some(v) = u.resources {
                    i.resources = v;
                }
                if let Some(v) = u.evidence_procedure {
                    i.evidence_procedure = v;
                }
                if let Some(v) = u.evidence_location {
                    i.evidence_location = v;
                }
                if let Some(v) = u.responsible {
                    i.responsible = v;
                }
                if let Some(v) = u.comments {
                    i.comments = v;
                }
                Ok(details)
            }),
        )
        .await
    }

    /// Confirms or rejects a reported incident (and may set its level).
    pub async fn classify(
        &self,
        id: &str,
        actor: &str,
        classification: String,
        level: Option<i16>,
    ) -> ServiceResult<Incident> {
        check_one_of("classification", &classification, &CLASSIFICATIONS[1..])?;
        if let Some(level) = level {
            check_level(level)?;
        }
        let confirmed = classification == "confirmed";
        let incident = self
            .change(
                id,
                actor,
                "classified",
                kinds::INCIDENT_CLASSIFIED,
                Box::new(move |i: &mut Incident| {
                    if i.closed_at.is_some() {
                        return Err(format!("incident No. {} is closed", i.number));
                    }
                    let previous = (i.classification.clone(), i.level);
                    i.classification = classification.clone();
                    if let Some(level) = level {
                        i.level = level;
                        i.level_name = level_name(level).into();
                        i.level_colour = level_colour(level).into();
                    }
                    Ok(serde_json::json!({
                        "classification": classification,
                        "level": i.level,
                        "previous": { "classification": previous.0, "level": previous.1 },
                    }))
                }),
            )
            .await?;
        if confirmed {
            self.playbooks
                .run(&incident, Trigger::Confirmed, actor)
                .await;
            return self.get(&incident.id).await;
        }
        Ok(incident)
    }

    pub async fn approvals(&self, id: &str) -> ServiceResult<Vec<Approval>> {
        let incident = self.get(id).await?;
        Ok(self.store.approvals(&incident.id).await?)
    }

    /// A second admin approves or denies an action a playbook left waiting.
    pub async fn decide(
        &self,
        id: &str,
        approval_id: &str,
        admin: &AdminIdentity,
        approve: bool,
    ) -> ServiceResult<Incident> {
        let incident = self.get(id).await?;
        self.playbooks
            .decide(&incident, approval_id, admin, approve)
            .await?;
        self.get(&incident.id).await
    }

    /// Records a dated response action; the first one moves the status to in progress.
    pub async fn record_action(
        &self,
        id: &str,
        actor: &str,
        description: String,
        at: Option<DateTime<Utc>>,
    ) -> ServiceResult<Incident> {
        if description.trim().is_empty() {
            return Err(ServiceError::BadRequest(
                "description must not be empty".into(),
            ));
        }
        check_text("description", &description, MAX_TEXT)?;
        let at = at.unwrap_or_else(Utc::now);
        let actor_name = actor.to_owned();
        self.change(
            id,
            actor,
            "action",
            kinds::INCIDENT_ACTION,
            Box::new(move |i: &mut Incident| {
                if i.closed_at.is_some() {
                    return Err(format!("incident No. {} is closed", i.number));
                }
                if i.response_actions.len() >= 10_000 {
                    return Err("too many response actions on one incident".into());
                }
                i.response_actions.push(ResponseAction {
                    at,
                    description: description.clone(),
                    actor: actor_name,
                });
                if i.status == "not_started" {
                    i.status = "in_progress".into();
                }
                Ok(serde_json::json!({ "at": at, "description": description }))
            }),
        )
        .await
    }

    /// Closes the incident with its closing report; the status becomes completed.
    pub async fn close(&self, id: &str, actor: &str, report: String) -> ServiceResult<Incident> {
        if report.trim().is_empty() {
            return Err(ServiceError::BadRequest(
                "a closing report is required to close an incident".into(),
            ));
        }
        check_text("closing_report", &report, MAX_TEXT)?;
        self.change(
            id,
            actor,
            "closed",
            kinds::INCIDENT_CLOSED,
            Box::new(move |i: &mut Incident| {
                if i.closed_at.is_some() {
                    return Err(format!("incident No. {} is closed already", i.number));
                }
                i.closing_report = Some(report.clone());
                i.status = "completed".into();
                i.closed_at = Some(Utc::now());
                Ok(serde_json::json!({ "closing_report": report }))
            }),
        )
        .await
    }

    pub async fn get(&self, id_or_number: &str) -> ServiceResult<Incident> {
        self.store
            .incident(id_or_number.trim())
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("incident {id_or_number} not found")))
    }

    pub async fn list(&self, filter: &IncidentFilter) -> ServiceResult<Page<Incident>> {
        if let Some(level) = filter.level.or(filter.min_level) {
            check_level(level)?;
        }
        if let Some(s) = &filter.status {
            check_one_of("status", s, &STATUSES)?;
        }
        if let Some(c) = &filter.classification {
            check_one_of("classification", c, &CLASSIFICATIONS)?;
        }
        Ok(self.store.incidents(filter).await?)
    }

    pub async fn history(&self, id_or_number: &str) -> ServiceResult<Vec<HistoryEntry>> {
        let incident = self.get(id_or_number).await?;
        Ok(self.store.incident_history(&incident.id).await?)
    }

    /// Collects evidence from the server's records into the incident, hashed.
    pub async fn collect_evidence(
        &self,
        id: &str,
        actor: &str,
        request: EvidenceRequest,
    ) -> ServiceResult<Evidence> {
        let incident = self.get(id).await?;
        let (kind, source, content) = match request {
            EvidenceRequest::DeviceFacts { device_id } => {
                let device = self.store.device(&device_id).await?.ok_or_else(|| {
                    ServiceError::NotFound(format!("device {device_id} not found"))
                })?;
                ("device_facts", device_id, serde_json::to_value(device))
            }
            EvidenceRequest::CommandResult { command_uuid } => {
                let command = self.store.command(&command_uuid).await?.ok_or_else(|| {
                    ServiceError::NotFound(format!("command {command_uuid} not found"))
                })?;
                (
                    "command_result",
                    command_uuid,
                    serde_json::to_value(command),
                )
            }
            EvidenceRequest::Events { device_id } => {
                let events = self
                    .store
                    .events(&crate::domain::EventFilter {
                        device_id: Some(device_id.clone()),
                        limit: Some(1000),
                        ..Default::default()
                    })
                    .await?;
                ("events", device_id, serde_json::to_value(events))
            }
            EvidenceRequest::StatusReport { device_id } => {
                let Some(state) = self.store.android_device(&device_id).await? else {
                    return Err(match self.store.device(&device_id).await? {
                        Some(_) => ServiceError::BadRequest(format!(
                            "device {device_id} is not managed through Android Enterprise: status reports are Android's (collect device_facts)"
                        )),
                        None => ServiceError::NotFound(format!("device {device_id} not found")),
                    });
                };
                if state.record.last_status_report_at.is_none() {
                    return Err(ServiceError::Conflict(format!(
                        "device {device_id} has sent no status report yet"
                    )));
                }
                ("status_report", device_id, Ok(status_report(&state)))
            }
            EvidenceRequest::Note { text } => {
                if text.trim().is_empty() {
                    return Err(ServiceError::BadRequest("the note is empty".into()));
                }
                check_text("text", &text, MAX_TEXT)?;
                (
                    "note",
                    format!("admin:{actor}"),
                    Ok(serde_json::json!({ "text": text })),
                )
            }
        };
        check_text("source", &source, 255)?;
        let content = content
            .map_err(|e| ServiceError::Internal(e.to_string()))?
            .to_string();
        let evidence = self
            .store
            .add_evidence(&incident.id, kind, &source, content, actor)
            .await?
            .map_err(ServiceError::Conflict)?;
        self.event(
            kinds::INCIDENT_EVIDENCE,
            &incident,
            actor,
            format!(
                "evidence ({kind}) attached to incident No. {}, SHA-256 {}",
                incident.number, evidence.sha256
            ),
        )
        .await?;
        Ok(evidence)
    }

    pub async fn evidence(&self, id: &str) -> ServiceResult<Vec<Evidence>> {
        let incident = self.get(id).await?;
        Ok(self.store.evidence(&incident.id).await?)
    }

    pub async fn verify(&self) -> ServiceResult<RegisterVerification> {
        Ok(self.store.verify_register().await?)
    }

    /// Every incident the filter selects (all pages).
    pub async fn all(&self, filter: &IncidentFilter) -> ServiceResult<Vec<Incident>> {
        let mut all = Vec::new();
        let mut filter = filter.clone();
        filter.offset = Some(0);
        filter.limit = Some(1000);
        loop {
            let page = self.list(&filter).await?;
            let n = page.items.len() as u64;
            all.extend(page.items);
            if n < 1000 {
                return Ok(all);
            }
            filter.offset = Some(filter.offset.unwrap_or(0) + n);
        }
    }
}

/// Figures for the office's security management system.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Figures {
    /// Incidents by level (0-5), then by status.
    pub by_level: Vec<LevelCount>,
    pub by_status: std::collections::BTreeMap<String, u64>,
    pub open: u64,
    /// From a lost or stolen device's detection to the first lock sent, in minutes,
    /// over the incidents that have one.
    pub lost_to_lock_minutes: Option<Durations>,
    pub devices: DeviceFigures,
}

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct LevelCount {
    pub level: i16,
    pub name: String,
    pub colour: String,
    pub count: u64,
}

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Durations {
    pub incidents: u64,
    pub median: f64,
    pub max: f64,
}

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct DeviceFigures {
    pub enrolled: u64,
    pub passcode_compliant: u64,
    pub encrypted: u64,
    pub with_passcode: u64,
}

impl IncidentService {
    /// Incidents by level and status, time from a lost report to the lock, and the
    /// enrolled fleet's compliance, encryption and passcodes.
    pub async fn figures(&self, filter: &IncidentFilter) -> ServiceResult<Figures> {
        let incidents = self.all(filter).await?;
        let mut figures = Figures {
            by_level: crate::domain::incident::LEVELS
                .iter()
                .map(|(level, name, colour)| LevelCount {
                    level: *level,
                    name: (*name).into(),
                    colour: (*colour).into(),
                    count: 0,
                })
                .collect(),
            ..Default::default()
        };
        let mut minutes = Vec::new();
        for i in &incidents {
            if let Some(l) = figures.by_level.iter_mut().find(|l| l.level == i.level) {
                l.count += 1;
            }
            *figures.by_status.entry(i.status.clone()).or_default() += 1;
            if i.closed_at.is_none() && i.status != "completed" {
                figures.open += 1;
            }
            if matches!(i.incident_type.as_str(), "lost_device" | "stolen_device") {
                if let Some(lock) = i
                    .response_actions
                    .iter()
                    .filter(|a| a.description.contains("lock queued"))
                    .map(|a| a.at)
                    .min()
                {
                    minutes.push((lock - i.detected_at).num_seconds().max(0) as f64 / 60.0);
                }
            }
        }
        if !minutes.is_empty() {
            minutes.sort_by(|a, b| a.total_cmp(b));
            figures.lost_to_lock_minutes = Some(Durations {
                incidents: minutes.len() as u64,
                median: minutes[minutes.len() / 2],
                max: *minutes.last().unwrap_or(&0.0),
            });
        }
        // The enrolled fleet, page by page.
        let mut offset = 0;
        loop {
            let page = self
                .store
                .devices(&crate::domain::DeviceFilter {
                    enrolled: Some(true),
                    offset: Some(offset),
                    limit: Some(500),
                    ..Default::default()
                })
                .await?;
            let n = page.items.len() as u64;
            for dev in page.items {
                let f = &mut figures.devices;
                f.enrolled += 1;
                f.passcode_compliant += u64::from(dev.passcode_compliant == Some(true));
                f.encrypted += u64::from(dev.hardware_encrypted == Some(true));
                f.with_passcode += u64::from(dev.passcode_present == Some(true));
            }
            if n < 500 {
                break;
            }
            offset += n;
        }
        Ok(figures)
    }
}

/// An Android device's last status report as the server stored it from Google's
/// (AMAPI) device resource: state, hardware and software, policy and compliance,
/// security posture, encryption, and the facts kept from the report.
fn status_report(s: &crate::storage::AndroidDeviceState) -> serde_json::Value {
    let r = &s.record;
    serde_json::json!({
        "device_id": s.device_id,
        "name": r.name,
        "last_status_report_at": r.last_status_report_at,
        "observed_at": r.observed_at,
        "stored_at": s.updated_at,
        "enrolled_at": r.enrolled_at,
        "state": r.state,
        "applied_state": r.applied_state,
        "management_mode": r.management_mode,
        "ownership": r.ownership,
        "hardware": {
            "serial_number": r.serial_number,
            "imei": r.imei,
            "model": r.model,
        },
        "software": {
            "android_version": r.os_version,
            "build_number": r.build_version,
            "api_level": r.api_level,
            "security_patch_level": r.security_patch_level,
        },
        "policy": {
            "name": r.policy_name,
            "applied_name": r.applied_policy_name,
            "applied_version": r.applied_policy_version,
            "compliant": r.policy_compliant,
            "non_compliance": r.non_compliance,
        },
        "security_posture": r.security_posture,
        "encryption_status": r.encryption_status,
        "encrypted": r.encrypted,
        "device_secure": r.device_secure,
        "facts": r.facts,
    })
}

/// A printable report (HTML) of the given incidents with every register column and,
/// for one incident, its history and evidence; [`pdf`] renders the same as PDF.
pub fn report_html(
    title: &str,
    incidents: &[Incident],
    history: &[HistoryEntry],
    evidence: &[Evidence],
) -> String {
    fn esc(text: &str) -> String {
        text.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
    }
    let mut out = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{t}</title>\
         <style>body{{font-family:sans-serif;font-size:10pt}}table{{border-collapse:collapse;width:100%}}\
         td,th{{border:1px solid #999;padding:3px;vertical-align:top}}th{{background:#eee}}\
         .l0{{background:#fff}}.l1{{background:#c8f0c8}}.l2{{background:#fff3a0}}.l3{{background:#ffc870}}\
         .l4{{background:#ff8080}}.l5{{background:#222;color:#fff}}@page{{size:A4 landscape}}</style>\
         </head><body><h1>{t}</h1><p>Generated {now}. Levels: 0 white, 1 green, 2 yellow, 3 orange, 4 red, 5 black.</p><table><tr><th>level</th>",
        t = esc(title),
        now = chrono::Utc::now().format("%Y-%m-%d %H:%M UTC"),
    );
    for column in REGISTER_COLUMNS {
        out.push_str(&format!("<th>{}</th>", esc(column)));
    }
    out.push_str("</tr>");
    for i in incidents {
        out.push_str(&format!(
            "<tr class=\"l{}\"><td>{} {}</td>",
            i.level,
            i.level,
            esc(&i.level_name)
        ));
        for cell in i.register_row() {
            out.push_str(&format!("<td>{}</td>", esc(&cell)));
        }
        out.push_str("</tr>");
    }
    out.push_str("</table>");
    if !history.is_empty() {
        out.push_str("<h2>History</h2><table><tr><th>#</th><th>when</th><th>who</th><th>what</th><th>details</th><th>link hash</th></tr>");
        for h in history {
            out.push_str(&format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td></tr>",
                h.seq,
                h.at.format("%Y-%m-%d %H:%M:%S UTC"),
                esc(&h.actor),
                esc(&h.change),
                esc(&h.details.to_string()),
                &h.hash[..16]
            ));
        }
        out.push_str("</table>");
    }
    if !evidence.is_empty() {
        out.push_str("<h2>Evidence</h2><table><tr><th>collected</th><th>by</th><th>kind</th><th>source</th><th>SHA-256</th></tr>");
        for e in evidence {
            out.push_str(&format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td></tr>",
                e.collected_at.format("%Y-%m-%d %H:%M:%S UTC"),
                esc(&e.collected_by),
                esc(&e.kind),
                esc(&e.source),
                e.sha256
            ));
        }
        out.push_str("</table>");
    }
    out.push_str("</body></html>");
    out
}

/// The register as CSV: Appendix A's columns, in its order (RFC 4180 quoting).
pub fn register_csv(incidents: &[Incident]) -> String {
    fn field(value: &str) -> String {
        // A leading =, +, - or @ would be a formula to a spreadsheet: quoted and
        // prefixed, as OWASP advises for CSV exports.
        let value = if value.starts_with(['=', '+', '-', '@']) {
            format!("'{value}")
        } else {
            value.to_owned()
        };
        if value.contains([',', '"', '\n', '\r']) || value != value.trim() {
            format!("\"{}\"", value.replace('"', "\"\""))
        } else {
            value
        }
    }
    let mut out = String::new();
    out.push_str(
        &REGISTER_COLUMNS
            .iter()
            .map(|c| field(c))
            .collect::<Vec<_>>()
            .join(","),
    );
    out.push_str("\r\n");
    for incident in incidents {
        out.push_str(
            &incident
                .register_row()
                .iter()
                .map(|v| field(v))
                .collect::<Vec<_>>()
                .join(","),
        );
        out.push_str("\r\n");
    }
    out
}

/// The register as JSON rows keyed by Appendix A's column names, in its order.
pub fn register_json(incidents: &[Incident]) -> serde_json::Value {
    serde_json::json!({
        "columns": REGISTER_COLUMNS,
        "rows": incidents.iter().map(|i| i.register_row()).collect::<Vec<_>>(),
    })
}

/// An update as the history records it: only the fields given.
struct UpdateView<'a>(&'a IncidentUpdate);

impl serde::Serialize for UpdateView<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let u = self.0;
        let mut map = s.serialize_map(None)?;
        macro_rules! given {
            ($($field:ident => $name:literal),*) => {$(
                if let Some(v) = &u.$field { map.serialize_entry($name, v)?; }
            )*};
        }
        given!(
            name => "name",
            incident_type => "type",
            status => "status",
            devices => "devices",
            users => "users",
            response_plan => "response_plan",
            expected_completion => "expected_completion",
            resources => "resources",
            evidence_procedure => "evidence_procedure",
            evidence_location => "evidence_location",
            responsible => "responsible",
            comments => "comments"
        );
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes_and_defuses_formulas() {
        let csv = register_csv(&[]);
        assert!(csv.starts_with("No.,incident name,response action plan,"));
        assert!(csv.contains("\"technical, software and financial resources\""));
        assert_eq!(csv.lines().count(), 1);
    }
}
