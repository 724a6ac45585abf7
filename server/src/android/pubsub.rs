//! Cloud Pub/Sub v1, the two methods a pull subscriber needs:
//! `projects.subscriptions.pull` and `projects.subscriptions.acknowledge`.
//! AMAPI publishes a message per notification: `attributes.notificationType` says
//! which, `data` is base64 of the JSON resource (a Device, an Operation, a
//! BatchUsageLogEvents).

use super::google::{Google, GoogleError};
use reqwest::Method;
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::Arc;

pub const DEFAULT_BASE_URL: &str = "https://pubsub.googleapis.com";

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReceivedMessage {
    pub ack_id: String,
    pub message: PubsubMessage,
    #[serde(default)]
    pub delivery_attempt: Option<i32>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PubsubMessage {
    /// base64 (standard alphabet) of the payload.
    #[serde(default)]
    pub data: Option<String>,
    #[serde(default)]
    pub attributes: HashMap<String, String>,
    #[serde(default)]
    pub message_id: Option<String>,
    #[serde(default)]
    pub publish_time: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PullResponse {
    #[serde(default)]
    received_messages: Vec<ReceivedMessage>,
}

#[derive(Clone)]
pub struct Pubsub {
    google: Arc<Google>,
    base: String,
}

impl Pubsub {
    pub fn new(google: Arc<Google>, base: &str) -> Self {
        Pubsub {
            google,
            base: base.trim_end_matches('/').to_owned(),
        }
    }

    /// Up to `max` messages; none when there are none (the call returns at once:
    /// `returnImmediately` is deprecated, so the server may hold it a little while).
    pub async fn pull(
        &self,
        subscription: &str,
        max: u32,
    ) -> Result<Vec<ReceivedMessage>, GoogleError> {
        let v = self
            .google
            .call(
                Method::POST,
                &format!("{}/v1/{subscription}:pull", self.base),
                &[],
                Some(&serde_json::json!({ "maxMessages": max })),
            )
            .await?;
        let parsed: PullResponse =
            serde_json::from_value(v).map_err(|e| GoogleError::Protocol(e.to_string()))?;
        Ok(parsed.received_messages)
    }

    pub async fn acknowledge(
        &self,
        subscription: &str,
        ack_ids: &[String],
    ) -> Result<(), GoogleError> {
        if ack_ids.is_empty() {
            return Ok(());
        }
        self.google
            .call(
                Method::POST,
                &format!("{}/v1/{subscription}:acknowledge", self.base),
                &[],
                Some(&serde_json::json!({ "ackIds": ack_ids })),
            )
            .await?;
        Ok(())
    }
}
