//! `mdm commands ...`: queue a command to one or many devices, show or cancel one.

use super::client::{self, Client, ClientError};
use super::devices::device_key;
use super::{output, Output};
use clap::Subcommand;
use serde_json::{json, Value};

#[derive(Subcommand)]
pub(super) enum CommandsCommand {
    /// Queue a command to one or more devices.
    ///
    /// Example: mdm commands send --device ID DeviceLock --param message="Call IT"
    Send {
        /// Device id (repeat for several devices: queued in one transaction).
        #[arg(long = "device", required = true)]
        devices: Vec<String>,
        /// The command type: DeviceLock, EraseDevice, DeviceInformation, SecurityInfo,
        /// ProfileList, InstallProfile, RemoveProfile, CertificateList,
        /// InstalledApplicationList, RestartDevice, ShutDownDevice, ClearPasscode,
        /// EnableLostMode, DisableLostMode, DeviceLocation, PlayLostModeSound, Raw.
        #[arg(value_name = "TYPE")]
        request_type: String,
        /// Command parameter as key=value (snake_case keys; JSON values allowed:
        /// --param queries='["OSVersion"]').
        #[arg(long = "param", value_name = "KEY=VALUE")]
        params: Vec<String>,
        /// Read a raw command plist from this file (for TYPE Raw).
        #[arg(long)]
        plist_file: Option<std::path::PathBuf>,
        #[arg(long)]
        priority: Option<i32>,
        /// Expire the command if not answered within this many seconds.
        #[arg(long)]
        expires_in: Option<i64>,
    },
    /// Show a command's status and result.
    Show { uuid: String },
    /// Cancel a pending command.
    Cancel { uuid: String },
}

pub(super) async fn commands(c: Client, command: CommandsCommand) -> Result<Output, ClientError> {
    match command {
        CommandsCommand::Send {
            devices,
            request_type,
            params,
            plist_file,
            priority,
            expires_in,
        } => {
            let mut body = serde_json::Map::new();
            body.insert("type".into(), Value::String(request_type));
            for param in params {
                let (key, value) = param.split_once('=').ok_or_else(|| {
                    ClientError::Usage(format!("--param {param:?} must be KEY=VALUE"))
                })?;
                let value =
                    serde_json::from_str(value).unwrap_or_else(|_| Value::String(value.to_owned()));
                body.insert(key.trim().to_owned(), value);
            }
            if let Some(path) = plist_file {
                let text = std::fs::read_to_string(&path).map_err(|e| {
                    ClientError::Usage(format!("cannot read {}: {e}", path.display()))
                })?;
                body.insert("plist".into(), Value::String(text));
            }
            if let Some(p) = priority {
                body.insert("priority".into(), json!(p));
            }
            if let Some(secs) = expires_in {
                body.insert("expires_in_seconds".into(), json!(secs));
            }
            let mut ids = Vec::with_capacity(devices.len());
            for key in &devices {
                ids.push(device_key(&c, key).await?);
            }
            let devices = ids;
            let v = if devices.len() == 1 {
                c.post(
                    &format!("/devices/{}/commands", client::segment(&devices[0])),
                    &Value::Object(body),
                )
                .await?
            } else {
                body.insert("device_ids".into(), json!(devices));
                c.post("/commands", &Value::Object(body)).await?
            };
            Ok(Output::Table(output::queued(&v), v))
        }
        CommandsCommand::Show { uuid } => {
            let v = c
                .get(&format!("/commands/{}", client::segment(&uuid)))
                .await?;
            Ok(Output::Table(output::command(&v), v))
        }
        CommandsCommand::Cancel { uuid } => {
            let v = c
                .post(
                    &format!("/commands/{}/cancel", client::segment(&uuid)),
                    &serde_json::json!({}),
                )
                .await?;
            Ok(Output::Table(output::command(&v), v))
        }
    }
}
