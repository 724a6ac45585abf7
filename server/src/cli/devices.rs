//! `mdm devices ...`: list, show, lock, wipe, push, revoke, retire, delete and a
//! device's commands, and how
//! a device named at the command line is found (by id, or explicitly and
//! unambiguously by serial number or UDID).

use super::client::{self, Client, ClientError};
use super::{output, strip_nulls, Output};
use clap::Subcommand;
use serde_json::{json, Value};

#[derive(Subcommand)]
pub(super) enum DeviceCommand {
    /// List devices.
    List {
        #[arg(long)]
        enrolled: Option<bool>,
        #[arg(long)]
        platform: Option<String>,
        /// Substring of name, serial number, model or UDID.
        #[arg(long)]
        search: Option<String>,
        /// Only devices evaluated as not compliant with their policies.
        #[arg(long)]
        noncompliant: bool,
        #[arg(long, default_value_t = 0)]
        offset: u64,
        #[arg(long, default_value_t = 100)]
        limit: u64,
    },
    /// Show one device (by id, serial:<SN>, udid:<UDID>, or a bare serial number or
    /// UDID that names exactly one device).
    Show { id: String },
    /// Lock a device now.
    Lock {
        id: String,
        /// Shown on the lock screen.
        #[arg(long)]
        message: Option<String>,
        /// Shown on the lock screen.
        #[arg(long)]
        phone_number: Option<String>,
        /// macOS only: 6-digit PIN to unlock the Mac.
        #[arg(long)]
        pin: Option<String>,
    },
    /// Erase a device. Needs its serial number as confirmation.
    Wipe {
        id: String,
        /// The device's serial number (or UDID when it has none).
        #[arg(long)]
        confirm: String,
        /// macOS only: 6-digit PIN for Find My recovery.
        #[arg(long)]
        pin: Option<String>,
        #[arg(long)]
        preserve_data_plan: bool,
        #[arg(long)]
        disallow_proximity_setup: bool,
        /// Android only, repeatable: one of AMAPI's wipeDataFlags.
        #[arg(long = "flag", value_name = "FLAG",
              value_parser = clap::builder::PossibleValuesParser::new(
                  crate::services::android::WIPE_FLAGS))]
        flags: Vec<String>,
        /// Android only: why, shown to the user of a work profile and logged on
        /// the device.
        #[arg(long)]
        reason: Option<String>,
    },
    /// Push the device now (wake it through APNs) and show what APNs answered.
    Push { id: String },
    /// Revoke a device's identity certificate (a lost or stolen phone, a leaked
    /// certificate): it is refused from now on and listed in the CRL; the device
    /// comes back only through a new enrollment. Lock or wipe it first: a revoked
    /// device receives no more commands.
    Revoke {
        id: String,
        /// unspecified, key_compromise (lost or stolen), affiliation_changed,
        /// superseded or cessation_of_operation.
        #[arg(long, default_value = "unspecified")]
        reason: String,
        /// Why, for the event stream.
        #[arg(long)]
        comment: Option<String>,
    },
    /// Retire a device from the fleet: its identity is revoked and its queue
    /// cancelled; the record stays, marked retired.
    Retire {
        id: String,
        #[arg(long)]
        comment: Option<String>,
    },
    /// Delete a device record and its commands, after revoking its identity.
    Delete { id: String },
    /// A device's commands, newest first.
    Commands {
        id: String,
        #[arg(long, default_value_t = 50)]
        limit: u64,
    },
}

/// The id of the device an admin named: an id, or `udid:`/`serial:` looked up as such; a
/// bare word is looked up as a serial number and as a UDID, and used only when both
/// lookups agree on one device. A device chooses its own UDID and serial number, so a
/// decoy whose UDID is a victim's serial number makes the name ambiguous instead of
/// steering the command to itself.
pub(super) async fn device_key(c: &Client, key: &str) -> Result<String, ClientError> {
    let key = key.trim();
    if uuid::Uuid::parse_str(key).is_ok() {
        return Ok(key.to_owned());
    }
    if key.starts_with("udid:") || key.starts_with("serial:") {
        let device = c.get(&format!("/devices/{}", client::segment(key))).await?;
        return Ok(device["id"].as_str().unwrap_or_default().to_owned());
    }
    let mut matches: Vec<Value> = Vec::new();
    for field in ["serial_number", "udid"] {
        let page = c
            .get_query(
                "/devices",
                &[
                    (field.into(), key.to_owned()),
                    ("limit".into(), "10".into()),
                ],
            )
            .await?;
        for item in page["items"].as_array().cloned().unwrap_or_default() {
            if !matches.iter().any(|m| m["id"] == item["id"]) {
                matches.push(item);
            }
        }
    }
    match matches.as_slice() {
        [] => Err(ClientError::Api {
            status: 404,
            message: format!("no device has the id, serial number or UDID {key:?}"),
        }),
        [one] => Ok(one["id"].as_str().unwrap_or_default().to_owned()),
        several => Err(ClientError::Usage(format!(
            "{key:?} names {} devices; use the device id: {}",
            several.len(),
            several
                .iter()
                .map(|d| format!(
                    "{} (UDID {}, serial {})",
                    d["id"].as_str().unwrap_or("-"),
                    d["udid"].as_str().unwrap_or("-"),
                    d["serial_number"].as_str().unwrap_or("-")
                ))
                .collect::<Vec<_>>()
                .join("; ")
        ))),
    }
}

pub(super) async fn devices(c: Client, command: DeviceCommand) -> Result<Output, ClientError> {
    match command {
        DeviceCommand::List {
            enrolled,
            platform,
            search,
            noncompliant,
            offset,
            limit,
        } => {
            let mut query = vec![
                ("offset".to_owned(), offset.to_string()),
                ("limit".to_owned(), limit.to_string()),
            ];
            if noncompliant {
                query.push(("noncompliant".into(), "true".into()));
            }
            if let Some(e) = enrolled {
                query.push(("enrolled".into(), e.to_string()));
            }
            if let Some(p) = platform {
                query.push(("platform".into(), p));
            }
            if let Some(s) = search {
                query.push(("search".into(), s));
            }
            let v = c.get_query("/devices", &query).await?;
            Ok(Output::Table(output::device_list(&v), v))
        }
        DeviceCommand::Show { id } => {
            let v = c
                .get(&format!(
                    "/devices/{}",
                    client::segment(&device_key(&c, &id).await?)
                ))
                .await?;
            Ok(Output::Table(output::device(&v), v))
        }
        DeviceCommand::Lock {
            id,
            message,
            phone_number,
            pin,
        } => {
            let body = json!({ "message": message, "phone_number": phone_number, "pin": pin });
            let v = c
                .post(
                    &format!(
                        "/devices/{}/lock",
                        client::segment(&device_key(&c, &id).await?)
                    ),
                    &strip_nulls(body),
                )
                .await?;
            Ok(Output::Table(output::queued(&v), v))
        }
        DeviceCommand::Wipe {
            id,
            confirm,
            pin,
            preserve_data_plan,
            disallow_proximity_setup,
            flags,
            reason,
        } => {
            // Absent rather than empty: the server refuses flags for an Apple device,
            // so a wipe without --flag must not send "flags": [].
            let body = json!({
                "confirm": confirm, "pin": pin,
                "preserve_data_plan": preserve_data_plan.then_some(true),
                "disallow_proximity_setup": disallow_proximity_setup.then_some(true),
                "flags": (!flags.is_empty()).then_some(flags),
                "reason": reason,
            });
            let v = c
                .post(
                    &format!(
                        "/devices/{}/wipe",
                        client::segment(&device_key(&c, &id).await?)
                    ),
                    &strip_nulls(body),
                )
                .await?;
            Ok(Output::Table(output::queued(&v), v))
        }
        DeviceCommand::Push { id } => {
            let v = c
                .post(
                    &format!(
                        "/devices/{}/push",
                        client::segment(&device_key(&c, &id).await?)
                    ),
                    &json!({}),
                )
                .await?;
            Ok(Output::Table(output::push(&v), v))
        }
        DeviceCommand::Revoke {
            id,
            reason,
            comment,
        } => {
            let path = format!(
                "/devices/{}/revoke",
                client::segment(&device_key(&c, &id).await?)
            );
            let body = strip_nulls(json!({ "reason": reason, "comment": comment }));
            let v = c.post(&path, &body).await?;
            Ok(Output::Table(output::revocation(&v), v))
        }
        DeviceCommand::Retire { id, comment } => {
            let path = format!(
                "/devices/{}/retire",
                client::segment(&device_key(&c, &id).await?)
            );
            let v = c
                .post(&path, &strip_nulls(json!({ "comment": comment })))
                .await?;
            Ok(Output::Table(output::revocation(&v), v))
        }
        DeviceCommand::Delete { id } => {
            let path = format!("/devices/{}", client::segment(&device_key(&c, &id).await?));
            let v = c.delete(&path).await?;
            Ok(Output::Table(output::revocation(&v), v))
        }
        DeviceCommand::Commands { id, limit } => {
            let v = c
                .get_query(
                    &format!(
                        "/devices/{}/commands",
                        client::segment(&device_key(&c, &id).await?)
                    ),
                    &[("limit".into(), limit.to_string())],
                )
                .await?;
            Ok(Output::Table(output::command_list(&v), v))
        }
    }
}
