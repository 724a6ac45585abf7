//! `mdm incidents ...`: the incident register over the API, as tables or `--json`.

use super::client::{self, Client, ClientError};
use super::output::table;
use super::{strip_nulls, Output};
use clap::Subcommand;
use serde_json::{json, Value};

#[derive(Subcommand)]
pub(super) enum IncidentCommand {
    /// List incidents, by register number.
    List {
        /// Exactly this level (0 non-critical ... 5 emergency).
        #[arg(long)]
        level: Option<i16>,
        /// This level or higher.
        #[arg(long)]
        min_level: Option<i16>,
        /// not_started, in_progress or completed.
        #[arg(long)]
        status: Option<String>,
        /// reported, confirmed or rejected.
        #[arg(long)]
        classification: Option<String>,
        /// Incidents involving this device id.
        #[arg(long)]
        device: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: u64,
    },
    /// Show one incident (by id or register number) with its history.
    Show { id: String },
    /// File an incident by hand.
    File {
        #[arg(long)]
        name: String,
        /// lost_device, stolen_device, non_compliant_device, compromised_device, ...
        #[arg(long = "type")]
        incident_type: String,
        /// 0 non-critical (white) ... 5 emergency (black).
        #[arg(long)]
        level: i16,
        #[arg(long = "device")]
        devices: Vec<String>,
        #[arg(long = "user")]
        users: Vec<String>,
        /// Response action plan.
        #[arg(long)]
        plan: Option<String>,
        #[arg(long)]
        comments: Option<String>,
    },
    /// Change register columns of an open incident.
    Update {
        id: String,
        /// not_started, in_progress or completed.
        #[arg(long)]
        status: Option<String>,
        #[arg(long)]
        plan: Option<String>,
        /// YYYY-MM-DD.
        #[arg(long)]
        expected_completion: Option<String>,
        #[arg(long)]
        evidence_procedure: Option<String>,
        #[arg(long)]
        evidence_location: Option<String>,
        #[arg(long)]
        responsible_name: Option<String>,
        #[arg(long)]
        responsible_position: Option<String>,
        #[arg(long)]
        responsible_phone: Option<String>,
        #[arg(long)]
        comments: Option<String>,
    },
    /// Confirm or reject a reported incident, optionally at another level.
    Classify {
        id: String,
        #[arg(value_parser = ["confirmed", "rejected"])]
        classification: String,
        #[arg(long)]
        level: Option<i16>,
    },
    /// Record a dated response action.
    Action {
        id: String,
        description: String,
        /// When it was done (RFC 3339); now by default.
        #[arg(long)]
        at: Option<String>,
    },
    /// Close an incident with its closing report.
    Close {
        id: String,
        #[arg(long)]
        report: String,
    },
    /// Collect evidence from the server's records into an incident (one of the
    /// options), hashed into the register's chain.
    Evidence {
        id: String,
        /// The device's record.
        #[arg(long, group = "evidence")]
        device_facts: Option<String>,
        /// The device's events.
        #[arg(long, group = "evidence")]
        events: Option<String>,
        /// A command with its result (its UUID).
        #[arg(long, group = "evidence")]
        command: Option<String>,
        /// A written note.
        #[arg(long, group = "evidence")]
        note: Option<String>,
        /// An Android device's last status report from Google, as stored.
        #[arg(long, group = "evidence")]
        status_report: Option<String>,
    },
    /// Actions of an incident waiting for a second administrator.
    Approvals { id: String },
    /// Approve a waiting action (as a second administrator): it runs.
    Approve { id: String, approval: String },
    /// Deny a waiting action.
    Deny { id: String, approval: String },
    /// A printable report of one incident, or of the register (of a period with
    /// --from/--to): HTML on standard output, or the PDF into a file with --pdf.
    Report {
        id: Option<String>,
        /// Write the report as PDF (rendered by the server) to this file.
        #[arg(long, value_name = "FILE")]
        pdf: Option<std::path::PathBuf>,
        /// The register from this day or time on (YYYY-MM-DD or RFC 3339).
        #[arg(long, conflicts_with = "id")]
        from: Option<String>,
        /// The register until this day (inclusive) or time.
        #[arg(long, conflicts_with = "id")]
        to: Option<String>,
    },
    /// The register in Appendix A's column order: CSV (default) or JSON.
    Export {
        #[arg(long, default_value = "csv", value_parser = ["csv", "json"])]
        format: String,
    },
    /// Verify the register's hash chain; exit 1 if anything was altered.
    Verify,
}

fn s(v: &Value, key: &str) -> String {
    match &v[key] {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn level(v: &Value) -> String {
    format!(
        "{} {} ({})",
        s(v, "level"),
        s(v, "level_name"),
        s(v, "level_colour")
    )
}

fn incident_list(v: &Value) -> String {
    let rows = v["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|i| {
            vec![
                s(i, "number"),
                level(i),
                s(i, "classification"),
                s(i, "status"),
                s(i, "incident_type"),
                s(i, "name"),
                s(i, "detected_at"),
            ]
        })
        .collect();
    let mut out = table(
        &[
            "NO.",
            "LEVEL",
            "CLASSIFICATION",
            "STATUS",
            "TYPE",
            "NAME",
            "DETECTED",
        ],
        rows,
    );
    out.push_str(&format!("{} incident(s)\n", s(v, "total")));
    out
}

fn incident(v: &Value, history: Option<&Value>) -> String {
    let mut out = format!(
        "No. {}: {}\nlevel: {}\nclassification: {}   status: {}   type: {}\n\
         detected: {} by {}\ndevices: {}\nusers: {}\nresponse plan: {}\n\
         expected completion: {}\nevidence: {} (stored: {})\nresponsible: {}, {}, {}\n\
         comments: {}\n",
        s(v, "number"),
        s(v, "name"),
        level(v),
        s(v, "classification"),
        s(v, "status"),
        s(v, "incident_type"),
        s(v, "detected_at"),
        s(v, "detection_source"),
        v["devices"].as_array().map_or(0, Vec::len),
        v["users"].as_array().map_or(0, Vec::len),
        s(v, "response_plan"),
        s(v, "expected_completion"),
        s(v, "evidence_procedure"),
        s(v, "evidence_location"),
        s(&v["responsible"], "full_name"),
        s(&v["responsible"], "position_company"),
        s(&v["responsible"], "phone"),
        s(v, "comments"),
    );
    for action in v["response_actions"]
        .as_array()
        .cloned()
        .unwrap_or_default()
    {
        out.push_str(&format!(
            "  action {} ({}): {}\n",
            s(&action, "at"),
            s(&action, "actor"),
            s(&action, "description")
        ));
    }
    if let Some(report) = v["closing_report"].as_str() {
        out.push_str(&format!("closing report: {report}\n"));
    }
    if let Some(history) = history {
        out.push_str("history:\n");
        for h in history["items"].as_array().cloned().unwrap_or_default() {
            out.push_str(&format!(
                "  #{} {} {} by {}: {}\n",
                s(&h, "seq"),
                s(&h, "at"),
                s(&h, "change"),
                s(&h, "actor"),
                h["details"]
            ));
        }
    }
    out
}

/// A period's bound as the API takes it: RFC 3339, or a day (its start for `from`,
/// its last second for `to`).
fn period_bound(text: &str, end: bool) -> Result<String, ClientError> {
    use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t
            .with_timezone(&Utc)
            .to_rfc3339_opts(SecondsFormat::Secs, true));
    }
    let day = NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|_| {
        ClientError::Usage(format!(
            "{text:?} is neither a day (YYYY-MM-DD) nor an RFC 3339 time"
        ))
    })?;
    let time = if end {
        day.and_hms_opt(23, 59, 59)
    } else {
        day.and_hms_opt(0, 0, 0)
    }
    .expect("a valid time of day");
    Ok(time.and_utc().to_rfc3339_opts(SecondsFormat::Secs, true))
}

pub(super) async fn incidents(c: Client, command: IncidentCommand) -> Result<Output, ClientError> {
    let path = |id: &str, rest: &str| format!("/incidents/{}{rest}", client::segment(id));
    match command {
        IncidentCommand::List {
            level,
            min_level,
            status,
            classification,
            device,
            limit,
        } => {
            let mut query = vec![("limit".to_owned(), limit.to_string())];
            let mut add = |k: &str, v: Option<String>| {
                if let Some(v) = v {
                    query.push((k.to_owned(), v));
                }
            };
            add("level", level.map(|l| l.to_string()));
            add("min_level", min_level.map(|l| l.to_string()));
            add("status", status);
            add("classification", classification);
            add("device", device);
            let v = c.get_query("/incidents", &query).await?;
            Ok(Output::Table(incident_list(&v), v))
        }
        IncidentCommand::Show { id } => {
            let v = c.get(&path(&id, "")).await?;
            let h = c.get(&path(&id, "/history")).await?;
            Ok(Output::Table(
                incident(&v, Some(&h)),
                json!({ "incident": v, "history": h["items"] }),
            ))
        }
        IncidentCommand::File {
            name,
            incident_type,
            level,
            devices,
            users,
            plan,
            comments,
        } => {
            let body = strip_nulls(json!({
                "name": name, "type": incident_type, "level": level,
                "devices": devices, "users": users,
                "response_plan": plan, "comments": comments,
            }));
            let v = c.post("/incidents", &body).await?;
            Ok(Output::Table(incident(&v, None), v))
        }
        IncidentCommand::Update {
            id,
            status,
            plan,
            expected_completion,
            evidence_procedure,
            evidence_location,
            responsible_name,
            responsible_position,
            responsible_phone,
            comments,
        } => {
            let mut body = json!({
                "status": status, "response_plan": plan,
                "expected_completion": expected_completion,
                "evidence_procedure": evidence_procedure,
                "evidence_location": evidence_location, "comments": comments,
            });
            if responsible_name.is_some()
                || responsible_position.is_some()
                || responsible_phone.is_some()
            {
                // The responsible person is one column: the fields not given stay.
                let current = c.get(&path(&id, "")).await?;
                let old = &current["responsible"];
                body["responsible"] = json!({
                    "full_name": responsible_name.unwrap_or_else(|| old["full_name"].as_str().unwrap_or_default().to_owned()),
                    "position_company": responsible_position.unwrap_or_else(|| old["position_company"].as_str().unwrap_or_default().to_owned()),
                    "phone": responsible_phone.unwrap_or_else(|| old["phone"].as_str().unwrap_or_default().to_owned()),
                });
            }
            let v = c.patch(&path(&id, ""), &strip_nulls(body)).await?;
            Ok(Output::Table(incident(&v, None), v))
        }
        IncidentCommand::Classify {
            id,
            classification,
            level,
        } => {
            let body = strip_nulls(json!({ "classification": classification, "level": level }));
            let v = c.post(&path(&id, "/classify"), &body).await?;
            Ok(Output::Table(incident(&v, None), v))
        }
        IncidentCommand::Action {
            id,
            description,
            at,
        } => {
            let body = strip_nulls(json!({ "description": description, "at": at }));
            let v = c.post(&path(&id, "/actions"), &body).await?;
            Ok(Output::Table(incident(&v, None), v))
        }
        IncidentCommand::Close { id, report } => {
            let v = c
                .post(&path(&id, "/close"), &json!({ "closing_report": report }))
                .await?;
            Ok(Output::Table(incident(&v, None), v))
        }
        IncidentCommand::Evidence {
            id,
            device_facts,
            events,
            command,
            note,
            status_report,
        } => {
            let body = match (device_facts, events, command, note, status_report) {
                (Some(d), ..) => json!({ "kind": "device_facts", "device_id": d }),
                (_, Some(d), ..) => json!({ "kind": "events", "device_id": d }),
                (_, _, Some(c), ..) => json!({ "kind": "command_result", "command_uuid": c }),
                (_, _, _, Some(t), _) => json!({ "kind": "note", "text": t }),
                (.., Some(d)) => json!({ "kind": "status_report", "device_id": d }),
                _ => {
                    return Err(ClientError::Usage(
                        "name the evidence: --device-facts ID, --events ID, --command UUID, --status-report ID or --note TEXT".into(),
                    ))
                }
            };
            let v = c.post(&path(&id, "/evidence"), &body).await?;
            Ok(Output::Table(
                format!(
                    "evidence {} ({}) SHA-256 {}\n",
                    s(&v, "id"),
                    s(&v, "kind"),
                    s(&v, "sha256")
                ),
                v,
            ))
        }
        IncidentCommand::Approvals { id } => {
            let v = c.get(&path(&id, "/approvals")).await?;
            let rows = v["items"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .iter()
                .map(|a| {
                    vec![
                        s(a, "id"),
                        s(a, "action"),
                        s(a, "device_id"),
                        s(a, "status"),
                        s(a, "requested_by"),
                        s(a, "decided_by"),
                    ]
                })
                .collect();
            Ok(Output::Table(
                table(
                    &[
                        "APPROVAL",
                        "ACTION",
                        "DEVICE",
                        "STATUS",
                        "REQUESTED BY",
                        "DECIDED BY",
                    ],
                    rows,
                ),
                v,
            ))
        }
        IncidentCommand::Approve { id, approval } => {
            let v = c
                .post(
                    &path(
                        &id,
                        &format!("/approvals/{}/approve", client::segment(&approval)),
                    ),
                    &json!({}),
                )
                .await?;
            Ok(Output::Table(incident(&v, None), v))
        }
        IncidentCommand::Deny { id, approval } => {
            let v = c
                .post(
                    &path(
                        &id,
                        &format!("/approvals/{}/deny", client::segment(&approval)),
                    ),
                    &json!({}),
                )
                .await?;
            Ok(Output::Table(incident(&v, None), v))
        }
        IncidentCommand::Report { id, pdf, from, to } => {
            let format = if pdf.is_some() { "pdf" } else { "html" };
            let route = match &id {
                Some(id) => path(id, &format!("/report.{format}")),
                None => {
                    let mut query = Vec::new();
                    if let Some(from) = from {
                        query.push(format!("from={}", period_bound(&from, false)?));
                    }
                    if let Some(to) = to {
                        query.push(format!("to={}", period_bound(&to, true)?));
                    }
                    let query = if query.is_empty() {
                        String::new()
                    } else {
                        format!("?{}", query.join("&"))
                    };
                    format!("/incidents/report.{format}{query}")
                }
            };
            let bytes = c.get_bytes(&route).await?;
            match pdf {
                Some(file) => {
                    std::fs::write(&file, &bytes)
                        .map_err(|e| ClientError::Usage(format!("{}: {e}", file.display())))?;
                    Ok(Output::Table(
                        format!("{} ({} bytes)\n", file.display(), bytes.len()),
                        json!({ "file": file.display().to_string(), "bytes": bytes.len() }),
                    ))
                }
                None => {
                    let html = String::from_utf8_lossy(&bytes).into_owned();
                    Ok(Output::Table(html.clone(), Value::String(html)))
                }
            }
        }
        IncidentCommand::Export { format } => {
            let bytes = c.get_bytes(&format!("/incidents/export.{format}")).await?;
            let text = String::from_utf8_lossy(&bytes).into_owned();
            let json = if format == "json" {
                serde_json::from_str(&text).unwrap_or(Value::String(text.clone()))
            } else {
                Value::String(text.clone())
            };
            Ok(Output::Table(text, json))
        }
        IncidentCommand::Verify => {
            let v = c.get("/incidents/verify").await?;
            if v["intact"] != true {
                let problems = v["problems"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
                    .iter()
                    .map(|p| p.as_str().unwrap_or_default().to_owned())
                    .collect::<Vec<_>>()
                    .join("\n  ");
                return Err(ClientError::Api {
                    status: 409,
                    message: format!("the incident register was altered:\n  {problems}"),
                });
            }
            Ok(Output::Table(
                format!(
                    "intact: {} incident(s), {} history link(s), head {}\n",
                    s(&v, "incidents"),
                    s(&v, "links"),
                    s(&v, "head_hash")
                ),
                v,
            ))
        }
    }
}
