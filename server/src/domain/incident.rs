//! The incident register our users' incident policy prescribes
//! (`requirements.md`, "Cyber incident management policy" and its Appendix A): the
//! severity scale 0-5 with its names and colours, classification and status, and an
//! incident with the register's columns.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

/// The policy's severity scale: level, name, colour.
pub const LEVELS: [(i16, &str, &str); 6] = [
    (0, "non-critical", "white"),
    (1, "low", "green"),
    (2, "medium", "yellow"),
    (3, "high", "orange"),
    (4, "critical", "red"),
    (5, "emergency", "black"),
];

pub fn level_name(level: i16) -> &'static str {
    LEVELS
        .iter()
        .find(|(l, _, _)| *l == level)
        .map_or("unknown", |(_, n, _)| n)
}

pub fn level_colour(level: i16) -> &'static str {
    LEVELS
        .iter()
        .find(|(l, _, _)| *l == level)
        .map_or("unknown", |(_, _, c)| c)
}

/// Reported, then confirmed or rejected by whoever classifies it.
pub const CLASSIFICATIONS: [&str; 3] = ["reported", "confirmed", "rejected"];
/// The register's status column.
pub const STATUSES: [&str; 3] = ["not_started", "in_progress", "completed"];

/// Technical, software and financial resources (one register column).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resources {
    #[serde(default)]
    pub technical: String,
    #[serde(default)]
    pub software: String,
    #[serde(default)]
    pub financial: String,
}

/// Person responsible for the response: full name; position / company; phone.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResponsiblePerson {
    #[serde(default)]
    pub full_name: String,
    #[serde(default)]
    pub position_company: String,
    #[serde(default)]
    pub phone: String,
}

/// One dated response action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResponseAction {
    pub at: DateTime<Utc>,
    pub description: String,
    pub actor: String,
}

/// An incident with every column of the register.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Incident {
    pub id: String,
    /// The register's "No.": 1, 2, 3... in filing order.
    pub number: i64,
    pub name: String,
    /// lost_device, stolen_device, non_compliant_device, compromised_device, ...
    pub incident_type: String,
    pub level: i16,
    pub level_name: String,
    pub level_colour: String,
    pub classification: String,
    pub status: String,
    pub devices: Vec<String>,
    pub users: Vec<String>,
    pub detected_at: DateTime<Utc>,
    /// Who or what detected it: "admin:<name>", "event:<kind>", "user report".
    pub detection_source: String,
    pub response_plan: String,
    pub response_actions: Vec<ResponseAction>,
    pub expected_completion: Option<NaiveDate>,
    pub resources: Resources,
    pub evidence_procedure: String,
    pub evidence_location: String,
    pub responsible: ResponsiblePerson,
    pub comments: String,
    pub closing_report: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub closed_at: Option<DateTime<Utc>>,
}

/// One entry of an incident's history: who changed what, when. Every entry is a link
/// of the register's hash chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntry {
    pub seq: i64,
    pub incident_id: String,
    pub at: DateTime<Utc>,
    pub actor: String,
    /// "filed", "updated", "classified", "action", "closed".
    pub change: String,
    /// The fields changed, with their new values.
    pub details: serde_json::Value,
    pub prev_hash: String,
    pub hash: String,
}

/// A piece of evidence as the server collected it from its own records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evidence {
    pub id: String,
    pub incident_id: String,
    /// device_facts, command_result, events, note.
    pub kind: String,
    /// What it was collected from: a device id, a command UUID, ...
    pub source: String,
    /// The collected content, exactly as hashed.
    pub content: serde_json::Value,
    pub sha256: String,
    pub collected_at: DateTime<Utc>,
    pub collected_by: String,
}

/// An action that waits for a second admin (a playbook's wipe).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Approval {
    pub id: String,
    pub incident_id: String,
    pub device_id: String,
    pub action: String,
    /// Whoever filed or confirmed the incident (or "rules"): not allowed to approve.
    pub requested_by: String,
    pub requested_at: DateTime<Utc>,
    /// pending, approved, denied.
    pub status: String,
    pub decided_by: Option<String>,
    pub decided_at: Option<DateTime<Utc>>,
}

/// A personal link a device's user opens to report it lost (no admin account).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LostReportLink {
    pub id: String,
    pub user: String,
    pub devices: Vec<String>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
}

/// Filters for listing incidents; every field narrows the result.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IncidentFilter {
    pub level: Option<i16>,
    pub min_level: Option<i16>,
    pub status: Option<String>,
    pub classification: Option<String>,
    pub device: Option<String>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    pub limit: Option<u64>,
    pub offset: Option<u64>,
}

/// The register's columns, in the order Appendix A gives them, for exports.
pub const REGISTER_COLUMNS: [&str; 13] = [
    "No.",
    "incident name",
    "response action plan",
    "date/time of response actions",
    "expected completion date of all response actions",
    "technical, software and financial resources",
    "procedure for collecting evidence",
    "where the evidence is stored",
    "person responsible: full name",
    "person responsible: position / company",
    "person responsible: contact phone",
    "status",
    "comments",
];

impl Incident {
    /// The incident as one register row, in [`REGISTER_COLUMNS`] order.
    pub fn register_row(&self) -> Vec<String> {
        let actions = self
            .response_actions
            .iter()
            .map(|a| format!("{} {}", a.at.format("%Y-%m-%d %H:%M UTC"), a.description))
            .collect::<Vec<_>>()
            .join("; ");
        let resources = [
            ("technical", &self.resources.technical),
            ("software", &self.resources.software),
            ("financial", &self.resources.financial),
        ]
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| format!("{k}: {v}"))
        .collect::<Vec<_>>()
        .join("; ");
        let status = match self.status.as_str() {
            "not_started" => "not started",
            "in_progress" => "in progress",
            other => other,
        };
        vec![
            self.number.to_string(),
            self.name.clone(),
            self.response_plan.clone(),
            actions,
            self.expected_completion
                .map(|d| d.to_string())
                .unwrap_or_default(),
            resources,
            self.evidence_procedure.clone(),
            self.evidence_location.clone(),
            self.responsible.full_name.clone(),
            self.responsible.position_company.clone(),
            self.responsible.phone.clone(),
            status.to_owned(),
            self.comments.clone(),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scale_is_the_policys() {
        let names: Vec<_> = (0..=5).map(level_name).collect();
        assert_eq!(
            names,
            [
                "non-critical",
                "low",
                "medium",
                "high",
                "critical",
                "emergency"
            ]
        );
        let colours: Vec<_> = (0..=5).map(level_colour).collect();
        assert_eq!(
            colours,
            ["white", "green", "yellow", "orange", "red", "black"]
        );
        assert_eq!(level_name(6), "unknown");
    }
}
