//! Each Android device's own AMAPI policy (`enterprises/<e>/policies/device-<id>`):
//! written when the device first appears and whenever its content changes, and
//! assigned to the device (`devices.patch` of `policyName`) when Google's record of
//! the device names another. Its own policy, not the shared one it enrolled with, so
//! that per-device and per-group settings (the policies issue) change one device
//! without touching the others.
//!
//! Content is the built-in policy until the policy model exists. The version Google
//! gave the policy is kept (android_policies) and compared with the version the
//! device reports it applied: `policy_applied` in the device's view.

use super::{google_error, AndroidService};
use crate::android::policy;
use crate::services::ServiceResult;
use crate::storage::AndroidDeviceRecord;
use serde_json::json;

pub fn device_policy_id(device_id: &str) -> String {
    format!("device-{device_id}")
}

impl AndroidService {
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
        let content = policy::built_in();
        let (name, _) = self
            .ensure_policy(&device_policy_id(device_id), &content)
            .await?;
        if record.policy_name.as_deref() == Some(name.as_str()) {
            return Ok(());
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
        Ok(())
    }
}
