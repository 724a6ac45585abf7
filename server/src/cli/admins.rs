//! `mdm admin ...` on the server host (the database directly, like `mdm token`): the
//! bootstrap path for the first owner, and what an owner does without a server
//! running. `mdm admins ...` does the same through the API.

use super::client::{segment, Client, ClientError};
use super::{output, Output};
use crate::config::ServeArgs;
use crate::services::admins::{self, NewAdmin};
use clap::Subcommand;
use serde_json::{json, Value};

#[derive(Subcommand)]
pub enum AdminCommand {
    /// Create an admin account. The name identifies its owner (jan.kowalski) and does
    /// not reveal that it is privileged; the password is asked for (masked) twice, or
    /// read from standard input with --password-stdin.
    Create {
        name: String,
        /// The person's name.
        #[arg(long)]
        display_name: String,
        #[arg(long)]
        email: Option<String>,
        /// Admin group to join (repeatable): owners, device-admins, help-desk,
        /// incident-managers, auditors, or one of your own.
        #[arg(long = "group")]
        groups: Vec<String>,
        /// The password is for someone else: it must change at the first login.
        #[arg(long)]
        temporary: bool,
        #[arg(long)]
        password_stdin: bool,
        #[command(flatten)]
        serve: ServeArgs,
    },
    /// List admin accounts (groups, roles, MFA, last login).
    List {
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        serve: ServeArgs,
    },
    /// Disable an account: its sessions and tokens stop working at once, everywhere;
    /// it leaves all admin groups.
    Disable {
        name: String,
        #[arg(long)]
        reason: Option<String>,
        #[command(flatten)]
        serve: ServeArgs,
    },
    /// Enable an account again (groups are granted anew).
    Enable {
        name: String,
        #[command(flatten)]
        serve: ServeArgs,
    },
    /// Set an account's password (temporary unless --permanent: it must change at the
    /// next login).
    Passwd {
        name: String,
        #[arg(long)]
        permanent: bool,
        #[arg(long)]
        password_stdin: bool,
        #[command(flatten)]
        serve: ServeArgs,
    },
    /// Remove an account's second factor (a lost phone): it enrols again at its next
    /// login.
    ResetMfa {
        name: String,
        #[command(flatten)]
        serve: ServeArgs,
    },
    /// Add an account to an admin group, or (--remove) take it out.
    Group {
        name: String,
        group: String,
        #[arg(long)]
        remove: bool,
        #[command(flatten)]
        serve: ServeArgs,
    },
}

/// A password from standard input (one line) or asked for on the terminal, masked;
/// a new one twice.
pub fn read_password(prompt: &str, from_stdin: bool, confirm: bool) -> anyhow::Result<String> {
    if from_stdin {
        let mut line = String::new();
        std::io::stdin().read_line(&mut line)?;
        return Ok(line.trim_end_matches(['\n', '\r']).to_owned());
    }
    let first = rpassword::prompt_password(prompt)?;
    if confirm {
        let again = rpassword::prompt_password("Again: ")?;
        if again != first {
            anyhow::bail!("the two passwords differ");
        }
    }
    Ok(first)
}

fn serve_of(c: &AdminCommand) -> &ServeArgs {
    match c {
        AdminCommand::Create { serve, .. }
        | AdminCommand::List { serve, .. }
        | AdminCommand::Disable { serve, .. }
        | AdminCommand::Enable { serve, .. }
        | AdminCommand::Passwd { serve, .. }
        | AdminCommand::ResetMfa { serve, .. }
        | AdminCommand::Group { serve, .. } => serve,
    }
}

const HOST: &str = "server-host";

pub async fn host(command: AdminCommand) -> anyhow::Result<String> {
    let config = serve_of(&command).resolve()?;
    let sealer = crate::keys::load_master_key(&config.master_key_file)?;
    let store: std::sync::Arc<dyn crate::storage::Storage> =
        std::sync::Arc::new(crate::serve::open_store(&config).await?);
    let service = admins::service(store, sealer, config.admin.clone());
    let fail = |e: crate::services::ServiceError| anyhow::anyhow!("{e}");
    match command {
        AdminCommand::Create {
            name,
            display_name,
            email,
            groups,
            temporary,
            password_stdin,
            ..
        } => {
            let password = read_password(&format!("Password for {name}: "), password_stdin, true)?;
            let view = service
                .create_admin(
                    HOST,
                    NewAdmin {
                        name,
                        display_name,
                        email,
                        password,
                        groups,
                        temporary,
                    },
                )
                .await
                .map_err(fail)?;
            let mut text = output::fields(
                &serde_json::to_value(&view)?,
                &[
                    "name",
                    "display_name",
                    "groups",
                    "roles",
                    "critical",
                    "must_change_password",
                ],
            );
            if view.critical {
                text += "\nA role of this account is critical: it enrols a second factor (TOTP) at its first login (mdm login).\n";
            }
            Ok(text)
        }
        AdminCommand::List { json, .. } => {
            let list = service.admins().await.map_err(fail)?;
            let v = json!({ "items": list });
            if json {
                return Ok(serde_json::to_string_pretty(&v)? + "\n");
            }
            Ok(admin_list(&v))
        }
        AdminCommand::Disable { name, reason, .. } => {
            service.disable(HOST, &name, reason).await.map_err(fail)?;
            Ok(format!(
                "{name} disabled: its sessions and tokens are refused from now on\n"
            ))
        }
        AdminCommand::Enable { name, .. } => {
            service.enable(HOST, &name).await.map_err(fail)?;
            Ok(format!(
                "{name} enabled (add it to its admin groups again)\n"
            ))
        }
        AdminCommand::Passwd {
            name,
            permanent,
            password_stdin,
            ..
        } => {
            let password =
                read_password(&format!("New password for {name}: "), password_stdin, true)?;
            service
                .reset_password(HOST, &name, password, !permanent)
                .await
                .map_err(fail)?;
            Ok(format!(
                "password of {name} set{}\n",
                if permanent {
                    ""
                } else {
                    " (to change at the next login)"
                }
            ))
        }
        AdminCommand::ResetMfa { name, .. } => {
            service.reset_totp(HOST, &name).await.map_err(fail)?;
            Ok(format!(
                "second factor of {name} removed; it enrols again at its next login\n"
            ))
        }
        AdminCommand::Group {
            name,
            group,
            remove,
            ..
        } => {
            let owner = crate::services::admins::Caller {
                identity: crate::services::tokens::AdminIdentity { name: HOST.into() },
                kind: crate::services::admins::CallerKind::Bootstrap,
                admin_id: None,
                rights: crate::services::admins::roles::RIGHTS
                    .iter()
                    .map(|(r, _)| (*r).to_owned())
                    .collect(),
                roles: vec!["owner".into()],
                restriction: None,
            };
            let (add, rm) = if remove {
                (vec![], vec![name.clone()])
            } else {
                (vec![name.clone()], vec![])
            };
            service
                .change_group(&owner, &group, add, rm, vec![], vec![])
                .await
                .map_err(fail)?;
            Ok(format!(
                "{name} {} {group}\n",
                if remove { "left" } else { "joined" }
            ))
        }
    }
}

pub fn admin_list(v: &Value) -> String {
    let s = |v: &Value| match v {
        Value::Null => "-".to_owned(),
        Value::String(s) => s.clone(),
        Value::Array(a) => a
            .iter()
            .map(|x| x.as_str().unwrap_or_default().to_owned())
            .collect::<Vec<_>>()
            .join(","),
        other => other.to_string(),
    };
    output::table(
        &[
            "NAME",
            "DISPLAY NAME",
            "GROUPS",
            "ROLES",
            "MFA",
            "LAST LOGIN",
            "DISABLED",
        ],
        v["items"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .map(|a| {
                vec![
                    s(&a["name"]),
                    s(&a["display_name"]),
                    s(&a["groups"]),
                    s(&a["roles"]),
                    if a["mfa_enabled"] == true {
                        "yes"
                    } else {
                        "no"
                    }
                    .into(),
                    s(&a["last_login_at"]),
                    if a["disabled"] == true { "yes" } else { "no" }.into(),
                ]
            })
            .collect(),
    )
}

#[derive(Subcommand)]
pub enum AdminsCommand {
    /// List admin accounts.
    List,
    /// Show an admin account.
    Show { name: String },
    /// Disable an account (sessions and tokens refused at once; leaves its groups).
    Disable {
        name: String,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Enable an account again.
    Enable { name: String },
    /// Add an account to an admin group, or (--remove) take it out.
    Group {
        name: String,
        group: String,
        #[arg(long)]
        remove: bool,
    },
}

pub async fn admins_api(c: Client, command: AdminsCommand) -> Result<Output, ClientError> {
    match command {
        AdminsCommand::List => {
            let v = c.get("/admins").await?;
            Ok(Output::Table(admin_list(&v), v))
        }
        AdminsCommand::Show { name } => {
            let v = c.get(&format!("/admins/{}", segment(&name))).await?;
            Ok(Output::Table(
                output::fields(
                    &v,
                    &[
                        "name",
                        "display_name",
                        "email",
                        "groups",
                        "roles",
                        "critical",
                        "mfa_enabled",
                        "recovery_codes_left",
                        "password_expires_at",
                        "must_change_password",
                        "locked_until",
                        "last_login_at",
                        "last_login_address",
                        "disabled",
                        "disabled_reason",
                    ],
                ),
                v,
            ))
        }
        AdminsCommand::Disable { name, reason } => {
            let v = c
                .post(
                    &format!("/admins/{}/disable", segment(&name)),
                    &json!({ "reason": reason }),
                )
                .await?;
            Ok(Output::Table(format!("{name} disabled\n"), v))
        }
        AdminsCommand::Enable { name } => {
            let v = c
                .post(&format!("/admins/{}/enable", segment(&name)), &json!({}))
                .await?;
            Ok(Output::Table(format!("{name} enabled\n"), v))
        }
        AdminsCommand::Group {
            name,
            group,
            remove,
        } => {
            let body = if remove {
                json!({ "remove": [name] })
            } else {
                json!({ "add": [name] })
            };
            let v = c
                .post(&format!("/admin-groups/{}/members", segment(&group)), &body)
                .await?;
            Ok(Output::Table(
                output::fields(&v, &["name", "members", "roles"]),
                v,
            ))
        }
    }
}
