//! Enrollment tokens and the policies they name: what `POST /api/v1/enrollments`
//! asks Google for when an Android enrollment is created, and what revoking it undoes.

use super::{google_error, AndroidService};
use crate::android::policy;
use crate::android::types::EnrollmentToken;
use crate::services::{ServiceError, ServiceResult};
use chrono::{DateTime, Utc};

/// The policy enrollment tokens name: a device runs it from its first minute.
pub const BASE_POLICY_ID: &str = "mdm-default";

pub struct TokenRequest {
    pub enrollment_id: String,
    pub expires_at: DateTime<Utc>,
    pub one_time_only: bool,
    /// A work profile (personal use allowed) instead of a fully managed device.
    pub work_profile: bool,
}

pub struct CreatedToken {
    /// `enterprises/{e}/enrollmentTokens/{t}`.
    pub name: String,
    /// Google's provisioning JSON for the QR code (holds the token value: secret).
    pub qr_code: String,
}

impl AndroidService {
    /// Patches `enterprises/{e}/policies/{id}` to `content` unless the stored hash says
    /// Google has it already. Returns the full policy name and its version.
    pub async fn ensure_policy(
        &self,
        policy_id: &str,
        content: &serde_json::Value,
    ) -> ServiceResult<(String, Option<i64>)> {
        let (_, enterprise, link) = self.enterprise().await?;
        let name = format!("{enterprise}/policies/{policy_id}");
        let hash = policy::content_hash(content);
        // Read, patch and record under the policy's lock: a second push of the same
        // content waits and then finds it recorded (one PATCH, not two).
        let lock = self.policy_lock(&name);
        let _held = lock.lock().await;
        if let Some((stored, version)) = self.store.android_policy(&name).await? {
            if stored == hash {
                return Ok((name, version));
            }
        }
        let answer = match link.amapi.patch_policy(&name, content).await {
            Ok(a) => a,
            Err(e) => {
                self.record_failure("enterprises.policies.patch", &e).await;
                return Err(google_error(e));
            }
        };
        self.store
            .put_android_policy(&name, &hash, answer.version, Utc::now())
            .await?;
        Ok((name, answer.version))
    }

    /// `enrollmentTokens.create` for one of our enrollments, after making sure the
    /// built-in policy it names is at Google.
    pub async fn create_enrollment_token(&self, req: TokenRequest) -> ServiceResult<CreatedToken> {
        let (_, enterprise, link) = self.enterprise().await?;
        let (policy_name, _) = self
            .ensure_policy(BASE_POLICY_ID, &policy::built_in())
            .await?;
        let seconds = (req.expires_at - Utc::now()).num_seconds();
        if seconds < 60 {
            return Err(ServiceError::BadRequest(
                "an Android enrollment must be valid for at least a minute".into(),
            ));
        }
        let wanted = EnrollmentToken {
            policy_name: Some(policy_name),
            duration: Some(format!("{seconds}s")),
            one_time_only: Some(req.one_time_only),
            allow_personal_usage: Some(
                if req.work_profile {
                    "PERSONAL_USAGE_ALLOWED"
                } else {
                    "PERSONAL_USAGE_DISALLOWED"
                }
                .into(),
            ),
            additional_data: Some(req.enrollment_id),
            ..Default::default()
        };
        let created = match link
            .amapi
            .create_enrollment_token(&enterprise, &wanted)
            .await
        {
            Ok(t) => t,
            Err(e) => {
                self.record_failure("enrollmentTokens.create", &e).await;
                return Err(google_error(e));
            }
        };
        match (created.name, created.qr_code) {
            (Some(name), Some(qr_code)) => Ok(CreatedToken { name, qr_code }),
            _ => Err(ServiceError::Internal(
                "enrollmentTokens.create answered no name or qrCode".into(),
            )),
        }
    }

    /// `enrollmentTokens.delete`: a token Google no longer has counts as deleted.
    pub async fn delete_enrollment_token(&self, name: &str) -> ServiceResult<()> {
        let (_, _, link) = self.enterprise().await?;
        match link.amapi.delete_enrollment_token(name).await {
            Ok(()) => Ok(()),
            Err(e) if e.status() == Some(404) => Ok(()),
            Err(e) => {
                self.record_failure("enrollmentTokens.delete", &e).await;
                Err(google_error(e))
            }
        }
    }
}
