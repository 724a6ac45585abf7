//! `mdm policy ...` and `mdm groups ...`: policies from files (TOML, YAML or JSON),
//! their assignments, and device groups.
//!
//! `policy init` and `policy check` need no server: the baseline and the office's
//! rules are compiled into the binary. The others talk to the API; a file is sent as
//! written (`format` + `text`) so that the server's parser reports errors by field.

use super::client::{self, Client, ClientError};
use super::output::table;
use super::Output;
use clap::Subcommand;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

#[derive(Subcommand)]
pub(super) enum PolicyCommand {
    /// Write the built-in baseline policy (meets the office's rules) as TOML, to
    /// FILE or to standard output. Needs no server.
    Init { file: Option<PathBuf> },
    /// Say which of the office's rules a policy file breaks (exit 1 if any, or if
    /// the file is not a valid policy). Needs no server.
    Check { file: PathBuf },
    /// Save a policy from a file (its `name` names it) and assign it to a group:
    /// devices whose output changed get it; the rest get nothing.
    Apply {
        file: PathBuf,
        /// Assign it to this device group (created by `mdm groups create`).
        #[arg(long)]
        group: Option<String>,
        /// Precedence of the assignment (higher wins where policies overlap).
        #[arg(long, default_value_t = 0)]
        precedence: i32,
        /// A note kept with the version.
        #[arg(long)]
        note: Option<String>,
    },
    /// What applying a file would change: fields, and the devices (of the group)
    /// that would receive a new profile. Nothing is saved.
    Diff {
        file: PathBuf,
        #[arg(long)]
        group: Option<String>,
    },
    /// List policies.
    List,
    /// Show a policy (secrets masked), its assignments and the office's rules it breaks.
    Show { name: String },
    /// The versions of a policy.
    Versions { name: String },
    /// Make an earlier version current again.
    Restore {
        name: String,
        #[arg(long)]
        version: i32,
    },
    /// Remove a policy's assignment: its profiles are removed from those devices.
    Unassign {
        name: String,
        #[arg(long)]
        group: Option<String>,
        #[arg(long)]
        device: Option<String>,
    },
}

#[derive(Subcommand)]
pub(super) enum GroupCommand {
    /// Create a device group: manual (members by hand), or following a rule.
    Create {
        name: String,
        /// manual, directory_group, department or enrollment.
        #[arg(long, default_value = "manual")]
        kind: String,
        /// The directory group, department or enrollment group the rule matches.
        #[arg(long = "match")]
        match_value: Option<String>,
        #[arg(long)]
        description: Option<String>,
    },
    /// List device groups with their device counts.
    List,
    /// Show a group and its devices.
    Show { name: String },
    /// Add devices to, or remove them from, a manual group.
    Members {
        name: String,
        #[arg(long = "add")]
        add: Vec<String>,
        #[arg(long = "remove")]
        remove: Vec<String>,
    },
    /// Delete a group (its assignments go with it; profiles are removed).
    Delete { name: String },
}

fn format_of(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()) {
        Some("toml") => "toml",
        Some("yaml") | Some("yml") => "yaml",
        _ => "json",
    }
}

fn read(path: &Path) -> Result<(String, &'static str), ClientError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ClientError::Usage(format!("cannot read {}: {e}", path.display())))?;
    Ok((text, format_of(path)))
}

fn parse_local(path: &Path) -> Result<profiles::policy::PolicyDocument, String> {
    let (text, format) = read(path).map_err(|e| e.to_string())?;
    let format = match format {
        "toml" => profiles::policy::Format::Toml,
        "yaml" => profiles::policy::Format::Yaml,
        _ => profiles::policy::Format::Json,
    };
    profiles::policy::parse(&text, format).map_err(|errors| {
        errors
            .iter()
            .map(|e| format!("{}: {}", e.path, e.message))
            .collect::<Vec<_>>()
            .join("\n")
    })
}

/// `mdm policy init [FILE]`: the built-in baseline as TOML.
pub(super) fn init(file: Option<&Path>) -> Result<String, String> {
    let text = profiles::policy::baseline_toml();
    match file {
        Some(path) => {
            if path.exists() {
                return Err(format!("{} exists; not overwritten", path.display()));
            }
            std::fs::write(path, &text).map_err(|e| format!("{}: {e}", path.display()))?;
            Ok(format!(
                "wrote {} (it meets the office's rules: mdm policy check {})\n",
                path.display(),
                path.display()
            ))
        }
        None => Ok(text),
    }
}

/// `mdm policy check FILE`: errors, then the office's rules the policy breaks.
/// Exit 1 when there is either.
pub(super) fn check(file: &Path) -> (String, bool) {
    let doc = match parse_local(file) {
        Ok(d) => d,
        Err(e) => {
            return (
                format!("{}: not a valid policy:\n{e}\n", file.display()),
                false,
            )
        }
    };
    let mut out = String::new();
    let mut ok = true;
    if let Err(errors) = profiles::policy::validate(&doc) {
        ok = false;
        out += &format!("{}: {} error(s)\n", file.display(), errors.len());
        for e in errors {
            out += &format!(
                "  error {}: {}{}\n",
                e.path,
                e.message,
                e.allowed
                    .map(|a| format!(" (allowed: {a})"))
                    .unwrap_or_default()
            );
        }
    }
    let findings = profiles::policy::office_findings(&doc);
    for f in &findings {
        out += &format!("  breaks {} at {}: {}\n", f.rule, f.path, f.message);
    }
    if ok {
        let notes = crate::services::policies::platform_notes(&doc);
        out += &notes_summary(&serde_json::to_value(&notes).unwrap_or_default());
    }
    if findings.is_empty() && ok {
        out += &format!("{}: valid; meets the office's rules\n", file.display());
    }
    (out, ok && findings.is_empty())
}

fn delivery_summary(d: &Value) -> String {
    let mut out = format!(
        "devices: {}; Apple profiles queued: {}, removed: {}, unchanged: {}; Android devices: {}\n",
        d["devices"],
        d["apple_installs"],
        d["apple_removals"],
        d["apple_unchanged"],
        d["android_devices"]
    );
    for p in d["problems"].as_array().into_iter().flatten() {
        out += &format!(
            "  problem on {} ({}): {}\n",
            p["device_id"].as_str().unwrap_or(""),
            p["policy"].as_str().unwrap_or(""),
            p["message"].as_str().unwrap_or("")
        );
    }
    out
}

/// What each platform cannot express, one line each.
fn notes_summary(notes: &Value) -> String {
    notes
        .as_array()
        .into_iter()
        .flatten()
        .map(|n| {
            format!(
                "  NOTE {} cannot express {}: {}\n",
                n["platform"].as_str().unwrap_or(""),
                n["path"].as_str().unwrap_or(""),
                n["message"].as_str().unwrap_or("")
            )
        })
        .collect()
}

fn findings_summary(v: &Value) -> String {
    v["findings"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|f| {
            format!(
                "  WARNING breaks {} at {}: {}\n",
                f["rule"].as_str().unwrap_or(""),
                f["path"].as_str().unwrap_or(""),
                f["message"].as_str().unwrap_or("")
            )
        })
        .collect()
}

fn policy_name(text: &str, format: &str, path: &Path) -> Result<String, ClientError> {
    let _ = (text, format);
    parse_local(path)
        .map(|d| d.name)
        .map_err(|e| ClientError::Usage(format!("{}: {e}", path.display())))
}

pub(super) async fn policy(c: Client, command: PolicyCommand) -> Result<Output, ClientError> {
    let path = |name: &str, rest: &str| format!("/policies/{}{rest}", client::segment(name));
    match command {
        PolicyCommand::Init { .. } | PolicyCommand::Check { .. } => Err(ClientError::Usage(
            "policy init and policy check run without a server".into(),
        )),
        PolicyCommand::Apply {
            file,
            group,
            precedence,
            note,
        } => {
            let (text, format) = read(&file)?;
            let name = policy_name(&text, format, &file)?;
            let saved = c
                .put(
                    &path(&name, ""),
                    &json!({ "format": format, "text": text, "note": note }),
                )
                .await?;
            let mut out = if saved["changed"].as_bool() == Some(true) {
                format!("policy {name}: version {} saved\n", saved["version"])
            } else {
                format!("policy {name}: unchanged (version {})\n", saved["version"])
            };
            out += &findings_summary(&saved);
            out += &notes_summary(&saved["platform_notes"]);
            if saved["changed"].as_bool() == Some(true) {
                out += &delivery_summary(&saved["delivery"]);
            }
            let mut result = json!({ "saved": saved });
            if let Some(group) = group {
                let assigned = c
                    .post(
                        &path(&name, "/assignments"),
                        &json!({ "group": group, "precedence": precedence }),
                    )
                    .await?;
                out += &format!("assigned to group {group}\n");
                out += &delivery_summary(&assigned);
                result["assignment"] = assigned;
            }
            Ok(Output::Table(out, result))
        }
        PolicyCommand::Diff { file, group } => {
            let (text, format) = read(&file)?;
            let name = policy_name(&text, format, &file)?;
            let v = c
                .post(
                    &path(&name, "/diff"),
                    &json!({ "format": format, "text": text, "group": group }),
                )
                .await?;
            let mut out = match v["current_version"].as_i64() {
                Some(n) => format!("policy {name}: changes against version {n}\n"),
                None => format!("policy {name}: new\n"),
            };
            for ch in v["changes"].as_array().into_iter().flatten() {
                out += &format!(
                    "  {}: {} -> {}\n",
                    ch["path"].as_str().unwrap_or(""),
                    ch["before"],
                    ch["after"]
                );
            }
            out += &findings_summary(&v);
            out += &notes_summary(&v["platform_notes"]);
            out += "would queue: ";
            out += &delivery_summary(&v["delivery"]);
            Ok(Output::Table(out, v))
        }
        PolicyCommand::List => {
            let v = c.get("/policies").await?;
            let rows = v
                .as_array()
                .into_iter()
                .flatten()
                .map(|p| {
                    vec![
                        p["name"].as_str().unwrap_or("").to_owned(),
                        p["current_version"].to_string(),
                        p["updated_at"].as_str().unwrap_or("").to_owned(),
                    ]
                })
                .collect();
            Ok(Output::Table(
                table(&["NAME", "VERSION", "UPDATED"], rows),
                v,
            ))
        }
        PolicyCommand::Show { name } => {
            let v = c.get(&path(&name, "")).await?;
            let mut out = format!(
                "policy {} version {}\n",
                v["name"].as_str().unwrap_or(""),
                v["current_version"]
            );
            for a in v["assignments"].as_array().into_iter().flatten() {
                out += &format!(
                    "  assigned to {} {} (precedence {})\n",
                    a["target_kind"].as_str().unwrap_or(""),
                    a["target_name"].as_str().unwrap_or(""),
                    a["precedence"]
                );
            }
            out += &findings_summary(&v);
            out += &serde_json::to_string_pretty(&v["document"]).unwrap_or_default();
            out += "\n";
            Ok(Output::Table(out, v))
        }
        PolicyCommand::Versions { name } => {
            let v = c.get(&path(&name, "/versions")).await?;
            let rows = v
                .as_array()
                .into_iter()
                .flatten()
                .map(|x| {
                    vec![
                        x["version"].to_string(),
                        x["created_by"].as_str().unwrap_or("").to_owned(),
                        x["created_at"].as_str().unwrap_or("").to_owned(),
                        x["note"].as_str().unwrap_or("").to_owned(),
                    ]
                })
                .collect();
            Ok(Output::Table(
                table(&["VERSION", "BY", "AT", "NOTE"], rows),
                v,
            ))
        }
        PolicyCommand::Restore { name, version } => {
            let v = c
                .post(&path(&name, "/restore"), &json!({ "version": version }))
                .await?;
            let out = format!(
                "policy {name}: version {version} restored as version {}\n{}",
                v["version"],
                delivery_summary(&v["delivery"])
            );
            Ok(Output::Table(out, v))
        }
        PolicyCommand::Unassign {
            name,
            group,
            device,
        } => {
            let query = match (group, device) {
                (Some(g), None) => format!("group={}", client::segment(&g)),
                (None, Some(d)) => format!("device={}", client::segment(&d)),
                _ => {
                    return Err(ClientError::Usage(
                        "give --group NAME or --device ID".into(),
                    ))
                }
            };
            let v = c
                .delete(&format!("{}?{query}", path(&name, "/assignments")))
                .await?;
            Ok(Output::Table(delivery_summary(&v), v))
        }
    }
}

pub(super) async fn groups(c: Client, command: GroupCommand) -> Result<Output, ClientError> {
    let path = |name: &str, rest: &str| format!("/device-groups/{}{rest}", client::segment(name));
    let group_text = |v: &Value| {
        format!(
            "group {} ({}{}): {} device(s)\n",
            v["name"].as_str().unwrap_or(""),
            v["kind"].as_str().unwrap_or(""),
            v["match_value"]
                .as_str()
                .map(|m| format!(" {m}"))
                .unwrap_or_default(),
            v["devices"].as_array().map_or(0, Vec::len)
        )
    };
    match command {
        GroupCommand::Create {
            name,
            kind,
            match_value,
            description,
        } => {
            let v = c
                .post(
                    "/device-groups",
                    &json!({ "name": name, "kind": kind, "match": match_value, "description": description }),
                )
                .await?;
            Ok(Output::Table(group_text(&v), v))
        }
        GroupCommand::List => {
            let v = c.get("/device-groups").await?;
            let rows = v
                .as_array()
                .into_iter()
                .flatten()
                .map(|g| {
                    vec![
                        g["name"].as_str().unwrap_or("").to_owned(),
                        g["kind"].as_str().unwrap_or("").to_owned(),
                        g["match_value"].as_str().unwrap_or("").to_owned(),
                        g["devices"].as_array().map_or(0, Vec::len).to_string(),
                    ]
                })
                .collect();
            Ok(Output::Table(
                table(&["NAME", "KIND", "MATCH", "DEVICES"], rows),
                v,
            ))
        }
        GroupCommand::Show { name } => {
            let v = c.get(&path(&name, "")).await?;
            let mut out = group_text(&v);
            for d in v["devices"].as_array().into_iter().flatten() {
                out += &format!("  {}\n", d.as_str().unwrap_or(""));
            }
            Ok(Output::Table(out, v))
        }
        GroupCommand::Members { name, add, remove } => {
            let v = c
                .post(
                    &path(&name, "/members"),
                    &json!({ "add": add, "remove": remove }),
                )
                .await?;
            Ok(Output::Table(delivery_summary(&v), v))
        }
        GroupCommand::Delete { name } => {
            let v = c.delete(&path(&name, "")).await?;
            Ok(Output::Table(
                format!("group {name} deleted\n{}", delivery_summary(&v)),
                v,
            ))
        }
    }
}
