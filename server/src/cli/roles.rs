//! `mdm roles ...`: the role matrix (JSON, table, or CSV in the access policy's
//! columns), and roles granted to admin groups.

use super::client::{segment, Client, ClientError};
use super::{output, Output};
use clap::Subcommand;
use serde_json::{json, Value};

#[derive(Subcommand)]
pub enum RolesCommand {
    /// Roles with their rights and whether they are critical.
    List,
    /// The role matrix: system name, role name, description, rights, critical.
    Matrix {
        /// CSV in the policy's columns.
        #[arg(long)]
        csv: bool,
    },
    /// Create or change a role.
    Set {
        name: String,
        /// Who gets the role (the matrix's description column).
        #[arg(long)]
        description: String,
        /// A right (repeatable), or "*" for every right.
        #[arg(long = "right", required = true)]
        rights: Vec<String>,
        /// Administrative privileges, sensitive data or remote actions: its holders
        /// need a second factor.
        #[arg(long)]
        critical: bool,
    },
    /// Delete a role no group holds.
    Delete { name: String },
    /// Grant a role to an admin group.
    Grant {
        role: String,
        #[arg(long)]
        group: String,
    },
    /// Revoke a role from an admin group.
    Revoke {
        role: String,
        #[arg(long)]
        group: String,
    },
    /// Admin groups with their members and roles.
    Groups,
}

fn joined(v: &Value) -> String {
    match v {
        Value::Array(a) => a
            .iter()
            .map(|x| {
                x.as_str()
                    .map(str::to_owned)
                    .unwrap_or_else(|| x.to_string())
            })
            .collect::<Vec<_>>()
            .join(" "),
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

pub async fn roles(c: Client, command: RolesCommand) -> Result<Output, ClientError> {
    match command {
        RolesCommand::List | RolesCommand::Matrix { csv: false } => {
            let v = c.get("/roles/matrix").await?;
            let rows = v["rows"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .iter()
                .map(|r| {
                    vec![
                        joined(&r["system_name"]),
                        joined(&r["role_name"]),
                        joined(&r["description"]),
                        joined(&r["rights"]),
                        if r["critical"] == true { "yes" } else { "no" }.into(),
                        joined(&r["granted_to_groups"]),
                    ]
                })
                .collect();
            Ok(Output::Table(
                output::table(
                    &[
                        "SYSTEM",
                        "ROLE",
                        "DESCRIPTION",
                        "RIGHTS",
                        "CRITICAL",
                        "GROUPS",
                    ],
                    rows,
                ),
                v,
            ))
        }
        RolesCommand::Matrix { csv: true } => {
            let bytes = c.get_bytes("/roles/matrix.csv").await?;
            let text = String::from_utf8_lossy(&bytes).into_owned();
            Ok(Output::Table(text.clone(), Value::String(text)))
        }
        RolesCommand::Set {
            name,
            description,
            rights,
            critical,
        } => {
            let v = c
                .put(
                    &format!("/roles/{}", segment(&name)),
                    &json!({ "description": description, "rights": rights, "critical": critical }),
                )
                .await?;
            Ok(Output::Table(
                output::fields(&v, &["name", "description", "rights", "critical"]),
                v,
            ))
        }
        RolesCommand::Delete { name } => {
            let v = c.delete(&format!("/roles/{}", segment(&name))).await?;
            Ok(Output::Table(format!("role {name} deleted\n"), v))
        }
        RolesCommand::Grant { role, group } => grant(c, role, group, true).await,
        RolesCommand::Revoke { role, group } => grant(c, role, group, false).await,
        RolesCommand::Groups => {
            let v = c.get("/admin-groups").await?;
            let rows = v["items"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .iter()
                .map(|g| {
                    vec![
                        joined(&g["name"]),
                        joined(&g["roles"]),
                        joined(&g["members"]),
                        joined(&g["description"]),
                    ]
                })
                .collect();
            Ok(Output::Table(
                output::table(&["GROUP", "ROLES", "MEMBERS", "DESCRIPTION"], rows),
                v,
            ))
        }
    }
}

/// Grant (true) or revoke a role.
pub async fn grant(
    c: Client,
    role: String,
    group: String,
    grant: bool,
) -> Result<Output, ClientError> {
    let body = if grant {
        json!({ "add": [role] })
    } else {
        json!({ "remove": [role] })
    };
    let v = c
        .post(&format!("/admin-groups/{}/roles", segment(&group)), &body)
        .await?;
    Ok(Output::Table(
        output::fields(&v, &["name", "roles", "members"]),
        v,
    ))
}
