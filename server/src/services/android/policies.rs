//! Each Android device's own AMAPI policy (`enterprises/<e>/policies/device-<id>`):
//! written when the device first appears and whenever its content changes, and
//! assigned to the device (`devices.patch` of `policyName`) when Google's record of
//! the device names another. Its own policy, not the shared one it enrolled with, so
//! that per-device and per-group settings (the policies issue) change one device
//! without touching the others.
//!
//! Content is the built-in policy (status reporting, security logs) with the
//! device's policies from the policy model compiled over it
//! (`services::policies::android_content`); a device without policies gets the
//! built-in passcode rules. The content's hash decides whether Google is called at
//! all: an unchanged policy is never re-sent. The version Google gave the policy is
//! kept (android_policies) and compared with the version the device reports it
//! applied: `policy_applied` in the device's view.

use super::{google_error, AndroidService};
use crate::services::ServiceResult;
use crate::storage::AndroidDeviceRecord;
use serde_json::json;

pub fn device_policy_id(device_id: &str) -> String {
    format!("device-{device_id}")
}

impl AndroidService {
    /// The device's policy with this content (computed by the caller, who has the
    /// fleet's policies loaded already); Google is called only if the content's hash
    /// differs from what it last accepted. Returns whether the policy was sent.
    pub async fn apply_policy_content(
        &self,
        device_id: &str,
        content: &serde_json::Value,
    ) -> ServiceResult<bool> {
        let Some(state) = self.store.android_device(device_id).await? else {
            return Ok(false);
        };
        self.reconcile_with(device_id, &state.record, content).await
    }

    /// The device has its policy at Google, with the current content, and is
    /// assigned to it. A device Google deleted gets nothing.
    pub async fn reconcile_policy(
        &self,
        device_id: &str,
        record: &AndroidDeviceRecord,
    ) -> ServiceResult<()> {
        if record.state.as_deref() == Some("DELETED") {
            return Ok(());
        }
        let content = crate::services::policies::android_content(
            self.store.as_ref(),
            &self.sealer,
            device_id,
        )
        .await?
        .policy;
        self.reconcile_with(device_id, record, &content).await?;
        Ok(())
    }

    async fn reconcile_with(
        &self,
        device_id: &str,
        record: &AndroidDeviceRecord,
        content: &serde_json::Value,
    ) -> ServiceResult<bool> {
        if record.state.as_deref() == Some("DELETED") {
            return Ok(false);
        }
        let (_, enterprise, _) = self.enterprise().await?;
        let policy_id = device_policy_id(device_id);
        let unchanged = self
            .store
            .android_policy(&format!("{enterprise}/policies/{policy_id}"))
            .await?
            .is_some_and(|(hash, _)| hash == crate::android::policy::content_hash(content));
        let (name, _) = self.ensure_policy(&policy_id, content).await?;
        if record.policy_name.as_deref() == Some(name.as_str()) {
            return Ok(!unchanged);
        }
        let (_, _, link) = self.enterprise().await?;
        if let Err(e) = link
            .amapi
            .patch_device(&record.name, "policyName", &json!({ "policyName": name }))
            .await
        {
            self.record_failure("devices.patch", &e).await;
            return Err(google_error(e));
        }
        self.store.set_android_policy_name(device_id, &name).await?;
        Ok(true)
    }
}
