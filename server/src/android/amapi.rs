//! The Android Management API v1 methods we use, as REST calls (paths and query
//! parameters from the discovery document). No AMAPI crate: the generated
//! `google-androidmanagement1` client brings the whole google-apis-rs runtime (hyper
//! 0.14/yup-oauth2 with its own token handling), where a handful of documented REST
//! calls over the reqwest client we already use keep the fault handling ours.

use super::google::{Google, GoogleError};
use super::types::{
    EnrollmentToken, Enterprise, ListDevicesResponse, Operation, PolicyAnswer, SignupUrl,
};
use reqwest::Method;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::sync::Arc;

pub const DEFAULT_BASE_URL: &str = "https://androidmanagement.googleapis.com";

#[derive(Clone)]
pub struct Amapi {
    google: Arc<Google>,
    /// Scheme and host, without the `/v1` (configurable: tests use a local fake).
    base: String,
}

fn decode<T: DeserializeOwned>(v: Value) -> Result<T, GoogleError> {
    serde_json::from_value(v).map_err(|e| GoogleError::Protocol(e.to_string()))
}

impl Amapi {
    pub fn new(google: Arc<Google>, base: &str) -> Self {
        Amapi {
            google,
            base: base.trim_end_matches('/').to_owned(),
        }
    }

    pub fn google(&self) -> &Google {
        &self.google
    }

    fn url(&self, path: &str) -> String {
        format!("{}/v1/{path}", self.base)
    }

    /// `signupUrls.create`: where the admin signs the office up, and where Google
    /// sends their browser back to (with `enterpriseToken` added to `callback_url`).
    pub async fn create_signup_url(
        &self,
        project_id: &str,
        callback_url: &str,
    ) -> Result<SignupUrl, GoogleError> {
        let v = self
            .google
            .call(
                Method::POST,
                &self.url("signupUrls"),
                &[
                    ("projectId", project_id.to_owned()),
                    ("callbackUrl", callback_url.to_owned()),
                ],
                None,
            )
            .await?;
        decode(v)
    }

    /// `enterprises.create` from a finished sign-up.
    pub async fn create_enterprise(
        &self,
        project_id: &str,
        signup_url_name: &str,
        enterprise_token: &str,
        enterprise: &Enterprise,
    ) -> Result<Enterprise, GoogleError> {
        let body =
            serde_json::to_value(enterprise).map_err(|e| GoogleError::Protocol(e.to_string()))?;
        let v = self
            .google
            .call(
                Method::POST,
                &self.url("enterprises"),
                &[
                    ("projectId", project_id.to_owned()),
                    ("signupUrlName", signup_url_name.to_owned()),
                    ("enterpriseToken", enterprise_token.to_owned()),
                ],
                Some(&body),
            )
            .await?;
        decode(v)
    }

    /// `enterprises.get`.
    pub async fn get_enterprise(&self, name: &str) -> Result<Enterprise, GoogleError> {
        let v = self
            .google
            .call(Method::GET, &self.url(name), &[], None)
            .await?;
        decode(v)
    }

    /// `enterprises.enrollmentTokens.create`.
    pub async fn create_enrollment_token(
        &self,
        enterprise: &str,
        token: &EnrollmentToken,
    ) -> Result<EnrollmentToken, GoogleError> {
        let body = serde_json::to_value(token).map_err(|e| GoogleError::Protocol(e.to_string()))?;
        let v = self
            .google
            .call(
                Method::POST,
                &self.url(&format!("{enterprise}/enrollmentTokens")),
                &[],
                Some(&body),
            )
            .await?;
        decode(v)
    }

    /// `enterprises.enrollmentTokens.delete`: the token enrolls nothing from then on.
    pub async fn delete_enrollment_token(&self, name: &str) -> Result<(), GoogleError> {
        self.google
            .call(Method::DELETE, &self.url(name), &[], None)
            .await
            .map(|_| ())
    }

    /// `enterprises.policies.patch` of the whole policy (no update mask: the policy
    /// becomes exactly `policy`). Returns the version Google gave it.
    pub async fn patch_policy(
        &self,
        name: &str,
        policy: &Value,
    ) -> Result<PolicyAnswer, GoogleError> {
        let v = self
            .google
            .call(Method::PATCH, &self.url(name), &[], Some(policy))
            .await?;
        decode(v)
    }

    /// One page of `enterprises.devices.list`.
    pub async fn list_devices(
        &self,
        enterprise: &str,
        page_size: u32,
        page_token: Option<&str>,
    ) -> Result<ListDevicesResponse, GoogleError> {
        let mut query = vec![("pageSize", page_size.to_string())];
        if let Some(t) = page_token {
            query.push(("pageToken", t.to_owned()));
        }
        let v = self
            .google
            .call(
                Method::GET,
                &self.url(&format!("{enterprise}/devices")),
                &query,
                None,
            )
            .await?;
        decode(v)
    }

    /// `enterprises.devices.patch` with an update mask (e.g. `policyName`).
    pub async fn patch_device(
        &self,
        name: &str,
        update_mask: &str,
        device: &Value,
    ) -> Result<Value, GoogleError> {
        self.google
            .call(
                Method::PATCH,
                &self.url(name),
                &[("updateMask", update_mask.to_owned())],
                Some(device),
            )
            .await
    }

    /// `enterprises.devices.issueCommand`: the long-running operation that tracks it.
    pub async fn issue_command(
        &self,
        device: &str,
        command: &Value,
    ) -> Result<Operation, GoogleError> {
        let v = self
            .google
            .call(
                Method::POST,
                &self.url(&format!("{device}:issueCommand")),
                &[],
                Some(command),
            )
            .await?;
        decode(v)
    }

    /// `enterprises.devices.operations.get`.
    pub async fn get_operation(&self, name: &str) -> Result<Operation, GoogleError> {
        let v = self
            .google
            .call(Method::GET, &self.url(name), &[], None)
            .await?;
        decode(v)
    }

    /// `enterprises.devices.delete`: the device leaves the enterprise (AMAPI wipes a
    /// fully managed device, or removes the work profile of a personal one, with
    /// `wipeDataFlags`).
    pub async fn delete_device(
        &self,
        name: &str,
        wipe_data_flags: &[String],
        reason: Option<&str>,
    ) -> Result<(), GoogleError> {
        let mut query: Vec<(&str, String)> = wipe_data_flags
            .iter()
            .map(|f| ("wipeDataFlags", f.clone()))
            .collect();
        if let Some(r) = reason {
            query.push(("wipeReasonMessage", r.to_owned()));
        }
        self.google
            .call(Method::DELETE, &self.url(name), &query, None)
            .await
            .map(|_| ())
    }
}
