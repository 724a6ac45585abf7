//! `mdm audit ...`: the audit trail (list, verify, export as JSON lines or CSV) and
//! the yearly access review; `mdm offboard`: a user's devices retired or wiped.

use super::client::{segment, Client, ClientError};
use super::{output, Output};
use clap::Subcommand;
use serde_json::{json, Value};

#[derive(Subcommand)]
pub enum AuditCommand {
    /// Records of the trail, oldest first.
    List {
        #[arg(long, default_value_t = 0)]
        after: i64,
        #[arg(long, default_value_t = 100)]
        limit: u64,
    },
    /// Walk the hash chain (keyed with the server's key): exit 1 when a record was
    /// altered, removed, reordered or rewritten without the key, or the anchor is gone.
    Verify {
        /// SEQ:HASH of an `audit.anchor` event (from the SIEM): the chain must still
        /// hold that record with that hash (finds a chain cut off after it was
        /// published).
        #[arg(long)]
        anchor: Option<String>,
    },
    /// The whole trail to standard output.
    Export {
        #[arg(long, value_parser = ["jsonl", "csv"], default_value = "jsonl")]
        format: String,
    },
    /// The yearly access review: each admin's roles against the matrix, last login,
    /// MFA state, and deviations.
    Review,
}

fn cell(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        Value::Array(a) => a
            .iter()
            .map(|x| {
                x.as_str()
                    .map(str::to_owned)
                    .unwrap_or_else(|| x.to_string())
            })
            .collect::<Vec<_>>()
            .join(", "),
        other => other.to_string(),
    }
}

/// Ok(true) when the chain is intact (for the exit status).
pub async fn audit(c: Client, command: AuditCommand) -> Result<(Output, bool), ClientError> {
    match command {
        AuditCommand::List { after, limit } => {
            let v = c
                .get_query(
                    "/audit",
                    &[
                        ("after_seq".into(), after.to_string()),
                        ("limit".into(), limit.to_string()),
                    ],
                )
                .await?;
            let rows = v["items"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .iter()
                .map(|r| {
                    ["seq", "at", "actor", "address", "action", "outcome"]
                        .iter()
                        .map(|k| cell(&r[*k]))
                        .collect()
                })
                .collect();
            Ok((
                Output::Table(
                    output::table(
                        &["SEQ", "AT", "ACTOR", "ADDRESS", "ACTION", "OUTCOME"],
                        rows,
                    ),
                    v,
                ),
                true,
            ))
        }
        AuditCommand::Verify { anchor } => {
            let query = match anchor {
                Some(a) => {
                    crate::services::admins::audit::parse_anchor(&a)
                        .map_err(|e| ClientError::Usage(format!("--anchor: {e}")))?;
                    vec![("anchor".to_owned(), a.trim().to_owned())]
                }
                None => Vec::new(),
            };
            let v = c.get_query("/audit/verify", &query).await?;
            let intact = v["intact"] == true;
            let mut text = if intact {
                let mut t = format!(
                    "intact: {} records, head {} {}\n",
                    v["records"],
                    v["head_seq"],
                    cell(&v["head_hash"])
                );
                if v["anchor"]["found"] == true {
                    t += &format!("anchor {} found\n", v["anchor"]["seq"]);
                }
                t
            } else {
                "NOT INTACT:\n".to_owned()
            };
            for p in v["problems"].as_array().cloned().unwrap_or_default() {
                text += &format!("  {}\n", cell(&p));
            }
            Ok((Output::Table(text, v), intact))
        }
        AuditCommand::Export { format } => {
            let bytes = c.get_bytes(&format!("/audit/export.{format}")).await?;
            let text = String::from_utf8_lossy(&bytes).into_owned();
            Ok((Output::Table(text.clone(), Value::String(text)), true))
        }
        AuditCommand::Review => {
            let v = c.get("/audit/access-review").await?;
            let rows = v["admins"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .iter()
                .map(|a| {
                    vec![
                        cell(&a["name"]),
                        cell(&a["groups"]),
                        cell(&a["roles"]),
                        if a["mfa_enabled"] == true {
                            "yes"
                        } else {
                            "no"
                        }
                        .into(),
                        cell(&a["last_login_at"]),
                        if a["disabled"] == true { "yes" } else { "no" }.into(),
                        cell(&a["findings"]),
                    ]
                })
                .collect();
            let mut text = output::table(
                &[
                    "ADMIN",
                    "GROUPS",
                    "ROLES",
                    "MFA",
                    "LAST LOGIN",
                    "DISABLED",
                    "FINDINGS",
                ],
                rows,
            );
            text += &format!("\n{} finding(s) to fix within one day.\n", v["findings"]);
            Ok((Output::Table(text, v), true))
        }
    }
}

/// `mdm offboard USER`: every device retired or wiped, chosen per device.
pub async fn offboard(
    c: Client,
    user: String,
    default: Option<String>,
    devices: Vec<String>,
    status: Option<String>,
) -> Result<Output, ClientError> {
    let v = match status {
        Some(id) => c.get(&format!("/offboarding/{}", segment(&id))).await?,
        None => {
            let mut choices = serde_json::Map::new();
            for d in devices {
                let (id, action) = d.split_once('=').ok_or_else(|| {
                    ClientError::Usage(format!(
                        "--device {d}: give DEVICE_ID=retire or DEVICE_ID=wipe"
                    ))
                })?;
                choices.insert(id.to_owned(), Value::String(action.to_owned()));
            }
            let mut body = json!({ "devices": choices });
            if let Some(d) = default {
                body["default"] = d.into();
            }
            c.post(&format!("/users/{}/offboard", segment(&user)), &body)
                .await?
        }
    };
    let rows = v["devices"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|d| {
            ["device_id", "platform", "action", "status", "detail"]
                .iter()
                .map(|k| cell(&d[*k]))
                .collect()
        })
        .collect();
    let text = format!(
        "off-boarding {} of {}: {}\n{}",
        cell(&v["id"]),
        cell(&v["username"]),
        cell(&v["status"]),
        output::table(&["DEVICE", "PLATFORM", "ACTION", "STATUS", "DETAIL"], rows)
    );
    Ok(Output::Table(text, v))
}
