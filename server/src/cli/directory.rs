//! `mdm directory ...` (the office's LDAP directory: configure, show, sync) and
//! `mdm users ...` (list, the off-boarding list, add, disable, import a CSV file,
//! groups).

use super::client::{segment, Client, ClientError};
use super::{output, Output};
use clap::{Args, Subcommand};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

#[derive(Subcommand)]
pub(super) enum DirectoryCommand {
    /// Set where the directory is and how to read it. The server connects and binds
    /// first: a configuration that does not work is refused and nothing is saved.
    Configure(Box<ConfigureArgs>),
    /// The configuration (never the bind password) and the last sync's outcome.
    Show,
    /// Read users and groups from the directory now.
    Sync,
}

#[derive(Args)]
pub(super) struct ConfigureArgs {
    /// ldaps://host[:port], or ldap://host[:port] with --start-tls.
    #[arg(long)]
    url: String,
    /// The DN the server binds as (read-only access is enough).
    #[arg(long)]
    bind_dn: String,
    /// A file holding the bind password (its first line). Never given on the command
    /// line; left out, the stored password is kept.
    #[arg(long)]
    bind_password_file: Option<PathBuf>,
    /// Where users and groups are searched (subtree), e.g. dc=town,dc=example.
    #[arg(long)]
    base_dn: String,
    /// Sets the default filters and attributes. [default: openldap]
    #[arg(long, value_parser = ["openldap", "active-directory"])]
    flavor: Option<String>,
    /// Upgrade ldap:// to TLS with StartTLS.
    #[arg(long)]
    start_tls: bool,
    /// Accept plain ldap:// without StartTLS: the bind password and users' data cross
    /// the network in clear. Only for a directory on the same host or a test.
    #[arg(long)]
    insecure_plaintext: bool,
    /// PEM CA certificate(s) that issued the directory's TLS certificate (instead of
    /// the system's roots).
    #[arg(long)]
    ca_file: Option<PathBuf>,
    #[arg(long)]
    user_filter: Option<String>,
    #[arg(long)]
    group_filter: Option<String>,
    /// Attribute holding the username. [default: uid; AD: sAMAccountName]
    #[arg(long)]
    username_attr: Option<String>,
    /// [default: mail; AD: userPrincipalName]
    #[arg(long)]
    upn_attr: Option<String>,
    /// [default: mail]
    #[arg(long)]
    email_attr: Option<String>,
    /// [default: displayName, falling back to cn]
    #[arg(long)]
    display_name_attr: Option<String>,
    /// [default: departmentNumber; AD: department]
    #[arg(long)]
    department_attr: Option<String>,
    /// [default: cn]
    #[arg(long)]
    group_name_attr: Option<String>,
    /// Attribute marking a disabled account ("" for none). [default:
    /// pwdAccountLockedTime (present = disabled); AD: userAccountControl (bit 2)]
    #[arg(long)]
    disabled_attr: Option<String>,
    /// The value of --disabled-attr that means disabled (else: present means
    /// disabled).
    #[arg(long)]
    disabled_value: Option<String>,
    /// Seconds between scheduled syncs; 0 syncs only on demand. [default: 3600]
    #[arg(long)]
    interval_secs: Option<i64>,
    /// Save without trying to connect and bind first.
    #[arg(long)]
    no_verify: bool,
}

#[derive(Subcommand)]
pub(super) enum UsersCommand {
    /// List users; --disabled lists the disabled and removed ones with their devices
    /// (the off-boarding list).
    List {
        #[arg(long)]
        disabled: bool,
    },
    /// A user's attributes, groups and devices.
    Show { username: String },
    /// Add a user by hand.
    Add {
        username: String,
        #[arg(long)]
        upn: String,
        #[arg(long)]
        email: String,
        #[arg(long)]
        display_name: String,
        #[arg(long)]
        department: Option<String>,
        /// A group to put the user in (repeatable; created if missing).
        #[arg(long = "group")]
        groups: Vec<String>,
    },
    /// Import users from a CSV file: username,upn,email,display_name,department,groups
    /// (groups separated by ';'). All rows or none.
    Import { file: PathBuf },
    /// Disable a user ("disabled by hand").
    Disable { username: String },
    /// Enable a disabled user.
    Enable { username: String },
    /// Delete a user added by hand or imported that has no devices.
    Delete { username: String },
    /// Groups of users (from the directory, imports or by hand), or one group's
    /// members.
    Groups { name: Option<String> },
}

fn read(path: &Path) -> Result<Vec<u8>, ClientError> {
    std::fs::read(path)
        .map_err(|e| ClientError::Usage(format!("cannot read {}: {e}", path.display())))
}

fn s(v: &Value, key: &str) -> String {
    match v.get(key) {
        None | Some(Value::Null) => "-".into(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

fn list(v: &Value, key: &str) -> String {
    let items: Vec<String> = v[key]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|x| {
                    x.as_str()
                        .map(str::to_owned)
                        .unwrap_or_else(|| x.to_string())
                })
                .collect()
        })
        .unwrap_or_default();
    if items.is_empty() {
        "-".into()
    } else {
        items.join(", ")
    }
}

fn source(v: &Value) -> String {
    let mut text = output::fields(
        v,
        &[
            "flavor",
            "url",
            "start_tls",
            "insecure_plaintext",
            "bind_dn",
            "bind_password_set",
            "base_dn",
            "user_filter",
            "group_filter",
            "interval_seconds",
            "last_sync_at",
            "last_sync_status",
            "last_sync_error",
            "next_sync_at",
            "updated_by",
            "updated_at",
        ],
    );
    if let Some(attrs) = v["attributes"].as_object() {
        let pairs: Vec<String> = attrs
            .iter()
            .filter(|(_, v)| !v.is_null())
            .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
            .collect();
        text += &format!("attributes          {}\n", pairs.join(" "));
    }
    text += &format!(
        "ca_pem              {}\n",
        if v["ca_pem"].is_string() {
            "set"
        } else {
            "system roots"
        }
    );
    if !v["last_sync_counts"].is_null() {
        text += &format!(
            "last_sync_counts    {}\n",
            sync_line(&v["last_sync_counts"])
        );
    }
    text
}

fn sync_line(v: &Value) -> String {
    let keys = [
        "users",
        "created",
        "updated",
        "disabled",
        "enabled",
        "removed",
        "groups",
        "groups_created",
        "groups_deleted",
    ];
    keys.iter()
        .map(|k| format!("{k}={}", s(v, k)))
        .collect::<Vec<_>>()
        .join(" ")
}

fn user_table(v: &Value, with_devices: bool) -> String {
    let items = v["items"].as_array().cloned().unwrap_or_default();
    let mut headers = vec![
        "USERNAME",
        "DISPLAY NAME",
        "EMAIL",
        "DEPARTMENT",
        "GROUPS",
        "SOURCE",
        "STATE",
    ];
    if with_devices {
        headers.push("DEVICES");
    }
    let rows = items
        .iter()
        .map(|u| {
            let mut row = vec![
                s(u, "username"),
                s(u, "display_name"),
                s(u, "email"),
                s(u, "department"),
                list(u, "groups"),
                s(u, "source"),
                if u["disabled"].as_bool() == Some(true) {
                    s(u, "disabled_reason")
                } else {
                    "enabled".into()
                },
            ];
            if with_devices {
                let devices: Vec<String> = u["devices"]
                    .as_array()
                    .map(|d| {
                        d.iter()
                            .map(|d| {
                                let name = d["device_name"]
                                    .as_str()
                                    .or(d["serial_number"].as_str())
                                    .unwrap_or("?");
                                format!("{} ({name})", s(d, "id"))
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                row.push(if devices.is_empty() {
                    "-".into()
                } else {
                    devices.join(", ")
                });
            }
            row
        })
        .collect();
    output::table(&headers, rows)
}

fn user(v: &Value) -> String {
    let mut text = output::fields(
        v,
        &[
            "username",
            "display_name",
            "upn",
            "email",
            "department",
            "source",
            "external_id",
            "disabled",
            "disabled_reason",
            "disabled_at",
            "synced_at",
            "created_at",
            "updated_at",
        ],
    );
    text += &format!("groups           {}\n", list(v, "groups"));
    let devices = v["devices"].as_array().cloned().unwrap_or_default();
    if devices.is_empty() {
        text += "devices          -\n";
    } else {
        text += "devices:\n";
        text += &output::table(
            &["ID", "PLATFORM", "NAME", "SERIAL", "ENROLLED", "LAST SEEN"],
            devices
                .iter()
                .map(|d| {
                    vec![
                        s(d, "id"),
                        s(d, "platform"),
                        s(d, "device_name"),
                        s(d, "serial_number"),
                        s(d, "enrolled"),
                        s(d, "last_seen_at"),
                    ]
                })
                .collect(),
        );
    }
    text
}

pub(super) async fn directory(c: Client, command: DirectoryCommand) -> Result<Output, ClientError> {
    match command {
        DirectoryCommand::Configure(args) => {
            let args = *args;
            let password = match &args.bind_password_file {
                Some(path) => {
                    let bytes = read(path)?;
                    let text = String::from_utf8(bytes).map_err(|_| {
                        ClientError::Usage(format!("{} is not UTF-8 text", path.display()))
                    })?;
                    let first = text.lines().next().unwrap_or_default().to_owned();
                    if first.is_empty() {
                        return Err(ClientError::Usage(format!(
                            "{} holds no password on its first line",
                            path.display()
                        )));
                    }
                    Some(first)
                }
                None => None,
            };
            let ca_pem = match &args.ca_file {
                Some(path) => Some(String::from_utf8_lossy(&read(path)?).into_owned()),
                None => None,
            };
            let attributes = json!({
                "username": args.username_attr, "upn": args.upn_attr, "email": args.email_attr,
                "display_name": args.display_name_attr, "department": args.department_attr,
                "group_name": args.group_name_attr, "disabled": args.disabled_attr,
                "disabled_value": args.disabled_value,
            });
            let mut body = json!({
                "url": args.url, "bind_dn": args.bind_dn, "base_dn": args.base_dn,
                "flavor": args.flavor.map(|f| f.replace('-', "_")),
                "start_tls": args.start_tls, "insecure_plaintext": args.insecure_plaintext,
                "ca_pem": ca_pem, "user_filter": args.user_filter, "group_filter": args.group_filter,
                "interval_seconds": args.interval_secs, "verify": !args.no_verify,
                "attributes": super::strip_nulls(attributes),
            });
            if let Some(p) = password {
                body["bind_password"] = json!(p);
            }
            let v = c
                .put("/directory/source", &super::strip_nulls(body))
                .await?;
            Ok(Output::Table(source(&v), v))
        }
        DirectoryCommand::Show => {
            let v = c.get("/directory/source").await?;
            Ok(Output::Table(source(&v), v))
        }
        DirectoryCommand::Sync => {
            let v = c.post("/directory/sync", &json!({})).await?;
            let mut text = format!("{}\n", sync_line(&v));
            for w in v["warnings"].as_array().into_iter().flatten() {
                text += &format!("warning: {}\n", w.as_str().unwrap_or_default());
            }
            Ok(Output::Table(text, v))
        }
    }
}

pub(super) async fn users(c: Client, command: UsersCommand) -> Result<Output, ClientError> {
    match command {
        UsersCommand::List { disabled } => {
            let query = if disabled {
                vec![("disabled".to_owned(), "true".to_owned())]
            } else {
                vec![]
            };
            let v = c.get_query("/users", &query).await?;
            Ok(Output::Table(user_table(&v, disabled), v))
        }
        UsersCommand::Show { username } => {
            let v = c.get(&format!("/users/{}", segment(&username))).await?;
            Ok(Output::Table(user(&v), v))
        }
        UsersCommand::Add {
            username,
            upn,
            email,
            display_name,
            department,
            groups,
        } => {
            let mut body = json!({
                "username": username, "upn": upn, "email": email,
                "display_name": display_name, "department": department,
            });
            if !groups.is_empty() {
                body["groups"] = json!(groups);
            }
            let v = c.post("/users", &super::strip_nulls(body)).await?;
            Ok(Output::Table(user(&v), v))
        }
        UsersCommand::Import { file } => {
            let text = String::from_utf8(read(&file)?).map_err(|_| {
                ClientError::Usage(format!(
                    "{} is not UTF-8 text: save it as UTF-8 (CSV UTF-8)",
                    file.display()
                ))
            })?;
            let v = c.post("/users/import", &json!({ "csv": text })).await?;
            let text = format!(
                "{} rows: {} users created, {} updated, {} unchanged; {} groups created\n",
                s(&v, "rows"),
                s(&v, "created"),
                s(&v, "updated"),
                s(&v, "unchanged"),
                s(&v, "groups_created")
            );
            Ok(Output::Table(text, v))
        }
        UsersCommand::Disable { username } => set_disabled(&c, &username, true).await,
        UsersCommand::Enable { username } => set_disabled(&c, &username, false).await,
        UsersCommand::Delete { username } => {
            let v = c.delete(&format!("/users/{}", segment(&username))).await?;
            Ok(Output::Table(
                format!("user {} deleted\n", s(&v, "deleted")),
                v,
            ))
        }
        UsersCommand::Groups { name: Some(name) } => {
            let v = c.get(&format!("/groups/{}", segment(&name))).await?;
            let mut text = output::fields(&v, &["name", "source", "external_id", "members"]);
            text += &format!("usernames    {}\n", list(&v, "usernames"));
            Ok(Output::Table(text, v))
        }
        UsersCommand::Groups { name: None } => {
            let v = c.get("/groups").await?;
            let rows = v["items"]
                .as_array()
                .map(|items| {
                    items
                        .iter()
                        .map(|g| vec![s(g, "name"), s(g, "source"), s(g, "members")])
                        .collect()
                })
                .unwrap_or_default();
            Ok(Output::Table(
                output::table(&["NAME", "SOURCE", "MEMBERS"], rows),
                v,
            ))
        }
    }
}

async fn set_disabled(c: &Client, username: &str, disabled: bool) -> Result<Output, ClientError> {
    let v = c
        .patch(
            &format!("/users/{}", segment(username)),
            &json!({ "disabled": disabled }),
        )
        .await?;
    Ok(Output::Table(user(&v), v))
}
