//! `mdm android ...`: connect the server to Google's Android Management API and show
//! the link's state.

use super::client::{Client, ClientError};
use super::{output, Output};
use clap::Subcommand;
use serde_json::{json, Value};

#[derive(Subcommand)]
pub(super) enum AndroidCommand {
    /// Store the Google Cloud service account's key (sealed) and print the sign-up
    /// URL to open in a browser; Google sends it back to this server, which then
    /// creates the enterprise.
    Connect {
        /// The service account's JSON key file, as the Cloud console downloads it.
        #[arg(long)]
        service_account: std::path::PathBuf,
        /// Pub/Sub topic AMAPI publishes device notifications to:
        /// projects/<project>/topics/<topic>.
        #[arg(long, requires = "pubsub_subscription")]
        pubsub_topic: Option<String>,
        /// Pub/Sub subscription of that topic the server pulls from:
        /// projects/<project>/subscriptions/<subscription>.
        #[arg(long, requires = "pubsub_topic")]
        pubsub_subscription: Option<String>,
    },
    /// The enterprise, its notification settings, the last sync and the last error.
    Status,
    /// Read every device from Google now (devices.list) instead of at the next
    /// periodic sync.
    Sync,
}

pub(super) async fn android(c: Client, command: AndroidCommand) -> Result<Output, ClientError> {
    match command {
        AndroidCommand::Connect {
            service_account,
            pubsub_topic,
            pubsub_subscription,
        } => {
            let bytes = std::fs::read(&service_account).map_err(|e| {
                ClientError::Usage(format!("cannot read {}: {e}", service_account.display()))
            })?;
            let key: Value = serde_json::from_slice(&bytes).map_err(|e| {
                ClientError::Usage(format!(
                    "{} is not a JSON key file: {e}",
                    service_account.display()
                ))
            })?;
            let v = c
                .post(
                    "/android/connect",
                    &json!({
                        "service_account": key,
                        "pubsub_topic": pubsub_topic,
                        "pubsub_subscription": pubsub_subscription,
                    }),
                )
                .await?;
            let text = if v["enterprise"].is_string() {
                format!(
                    "{}\nThe enterprise's service-account key was replaced.\n",
                    output::fields(&v, &["project_id", "client_email", "enterprise"])
                )
            } else {
                format!(
                    "{}\nOpen the sign-up URL in a browser and sign up the organisation; Google then returns to this server, which creates the enterprise (`mdm android status`).\n",
                    output::fields(&v, &["project_id", "client_email", "signup_url"])
                )
            };
            Ok(Output::Table(text, v))
        }
        AndroidCommand::Sync => {
            let v = c.post("/android/sync", &json!({})).await?;
            Ok(Output::Table(output::fields(&v, &["devices"]), v))
        }
        AndroidCommand::Status => {
            let v = c.get("/android").await?;
            let mut text = output::fields(
                &v,
                &[
                    "state",
                    "enterprise",
                    "enterprise_display_name",
                    "project_id",
                    "client_email",
                    "pubsub_topic",
                    "pubsub_subscription",
                    "last_sync_at",
                    "last_pull_at",
                    "signup_url",
                    "last_error",
                    "last_error_at",
                    "connected_by",
                    "connected_at",
                ],
            );
            let types: Vec<&str> = v["notification_types"]
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            text += &format!("notification_types  {}\n", types.join(", "));
            Ok(Output::Table(text, v))
        }
    }
}
