//! `mdm login`, `mdm logout`, `mdm passwd`, `mdm mfa enrol`: an admin's own session,
//! password and second factor. The session is kept in the user's config folder
//! (`session.toml`, mode 0600) and used by every other command while it lasts.

use super::admins::read_password;
use super::client::{self, Client, ClientError, SessionFile};
use super::{output, ApiArgs, Output};
use clap::{Args, Subcommand};
use serde_json::{json, Value};
use std::io::{BufRead, IsTerminal, Write};

#[derive(Args)]
pub struct LoginArgs {
    /// The admin account (asked for when not given).
    #[arg(long)]
    pub username: Option<String>,
    /// Read the password from standard input (one line) instead of asking.
    #[arg(long)]
    pub password_stdin: bool,
    /// The current TOTP code (asked for when the account has a second factor).
    #[arg(long)]
    pub totp: Option<String>,
    /// A recovery code instead of the TOTP code.
    #[arg(long, conflicts_with = "totp")]
    pub recovery_code: Option<String>,
}

#[derive(Subcommand)]
pub enum MfaCommand {
    /// Enrol TOTP: shows a QR code for an authenticator app, asks for its first code,
    /// prints 10 recovery codes (once).
    Enrol {
        /// The first code (asked for when not given).
        #[arg(long)]
        code: Option<String>,
    },
}

fn ask(prompt: &str) -> Result<String, ClientError> {
    eprint!("{prompt}");
    std::io::stderr().flush().ok();
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| ClientError::Usage(e.to_string()))?;
    Ok(line.trim().to_owned())
}

fn usage(e: anyhow::Error) -> ClientError {
    ClientError::Usage(e.to_string())
}

pub async fn login(api: &ApiArgs, args: LoginArgs) -> Result<Output, ClientError> {
    let c = Client::anonymous(api)?;
    let username = match args.username {
        Some(u) => u,
        None => ask("Username: ")?,
    };
    let password = read_password("Password: ", args.password_stdin, false).map_err(usage)?;
    let mut body = json!({ "username": username, "password": password });
    if let Some(t) = &args.totp {
        body["totp"] = t.clone().into();
    }
    if let Some(r) = &args.recovery_code {
        body["recovery_code"] = r.clone().into();
    }
    let mut answer = c.post("/session", &body).await?;
    if answer["mfa_required"] == true {
        let code = match args.totp.clone() {
            Some(t) => t,
            None => ask("TOTP code: ")?,
        };
        answer = c
            .post(
                "/session",
                &json!({ "ticket": answer["ticket"], "totp": code }),
            )
            .await?;
    }
    let token = answer["token"]
        .as_str()
        .ok_or_else(|| ClientError::Usage("the server answered no session token".into()))?
        .to_owned();
    let path = client::write_session(&SessionFile {
        server: c.server().to_owned(),
        token,
        admin: username.clone(),
        ca_cert: api
            .ca_cert
            .clone()
            .or_else(|| std::env::var_os("MDM_CA_CERT").map(Into::into)),
        expires_at: answer["session"]["expires_at"].as_str().map(str::to_owned),
    })?;
    let mut text = format!(
        "Logged in as {username}; session kept in {} (idle timeout {} min).\n",
        path.display(),
        answer["session"]["idle_timeout_secs"].as_i64().unwrap_or(0) / 60
    );
    if answer["must_change_password"] == true {
        text += "Your password must be changed before anything else: run `mdm passwd`.\n";
    }
    if answer["mfa_enrolment_required"] == true {
        text += "A role of yours is critical: enrol a second factor now with `mdm mfa enrol`.\n";
    }
    Ok(Output::Table(text, strip_secret(answer)))
}

fn strip_secret(mut v: Value) -> Value {
    if let Some(map) = v.as_object_mut() {
        map.remove("token");
        map.remove("ticket");
    }
    v
}

pub async fn logout(c: Client) -> Result<Output, ClientError> {
    let result = c.delete("/session").await;
    let removed = client::remove_session();
    result?;
    Ok(Output::Table(
        format!(
            "Logged out{}.\n",
            removed
                .map(|p| format!("; {} removed", p.display()))
                .unwrap_or_default()
        ),
        json!({ "logged_out": true }),
    ))
}

pub async fn passwd(c: Client, password_stdin: bool) -> Result<Output, ClientError> {
    let current = read_password("Current password: ", password_stdin, false).map_err(usage)?;
    let new = read_password(
        "New password (at least 14 characters): ",
        password_stdin,
        !password_stdin,
    )
    .map_err(usage)?;
    let v = c
        .post(
            "/session/password",
            &json!({ "current_password": current, "new_password": new }),
        )
        .await?;
    Ok(Output::Table("Password changed.\n".into(), v))
}

pub async fn mfa(c: Client, command: MfaCommand) -> Result<Output, ClientError> {
    match command {
        MfaCommand::Enrol { code } => {
            let enrolment = c.post("/session/totp", &json!({})).await?;
            let uri = enrolment["otpauth_uri"].as_str().unwrap_or_default();
            if std::io::stderr().is_terminal() {
                if let Ok(qr) = enrollment::qr::terminal(uri) {
                    eprintln!("{qr}");
                }
            }
            eprintln!(
                "Scan the QR code with an authenticator app, or enter the secret {} by hand.",
                enrolment["secret"].as_str().unwrap_or_default()
            );
            let code = match code {
                Some(c) => c,
                None => ask("First code from the app: ")?,
            };
            let v = c
                .post("/session/totp/confirm", &json!({ "code": code }))
                .await?;
            let codes: Vec<String> = v["recovery_codes"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|c| c.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            Ok(Output::Table(
                format!(
                    "Second factor enabled. Recovery codes (each works once; keep them safe, they are not shown again):\n{}\n",
                    codes.join("\n")
                ),
                v,
            ))
        }
    }
}

/// `mdm sessions`: one's own sessions.
pub async fn sessions(c: Client, all: bool) -> Result<Output, ClientError> {
    let v = if all {
        c.get_query("/sessions", &[("admin".into(), "all".into())])
            .await?
    } else {
        c.get("/sessions").await?
    };
    let rows = v["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|s| {
            [
                "id",
                "admin",
                "kind",
                "mfa",
                "created_at",
                "last_seen_at",
                "address",
            ]
            .iter()
            .map(|k| match &s[*k] {
                Value::String(x) => x.clone(),
                Value::Null => "-".into(),
                other => other.to_string(),
            })
            .collect()
        })
        .collect();
    Ok(Output::Table(
        output::table(
            &[
                "ID",
                "ADMIN",
                "KIND",
                "MFA",
                "CREATED",
                "LAST SEEN",
                "ADDRESS",
            ],
            rows,
        ),
        v,
    ))
}
