//! Enrollments: creating and revoking them, and what a device gets when it opens
//! one: the signed Apple enrollment profile (with a one-time SCEP challenge).
//!
//! An Android enrollment, once the server is connected to Google (`mdm android
//! connect`), is an AMAPI enrollment token: its `qrCode` (Android Device Policy and
//! the token) with our Wi-Fi and locale extras merged in is the QR code, the token's
//! additionalData is the enrollment id (so that the phone is linked to it when it
//! appears), and revoking the enrollment deletes the token at Google. Without the
//! connection there is nothing a phone could enroll into, so an Android enrollment
//! is refused (409) with the command that makes one possible.
//!
//! The Android provisioning payload carries the Wi-Fi password, so it is shown only
//! to admins (the view's `qr_payload`, the QR images of the admin API); the anonymous
//! enrollment URL of an Android enrollment refuses (403) and says where to scan.
//! Every fetch of a valid enrollment URL is counted on the enrollment (`url_uses`,
//! which admins see) and in the process metrics (metrics.rs), apart from `uses`,
//! which counts devices enrolled.

use super::pki::Pki;
use super::tokens::{generate_token, hash_token, AdminIdentity};
use super::{ServiceError, ServiceResult};
use crate::domain::enrollment::{Enrollment, EnrollmentState};
use crate::domain::event::{kinds, severity, NewEvent};
use crate::domain::Platform;
use crate::metrics::{bump, METRICS};
use crate::storage::{NewEnrollment, Storage};
use chrono::{DateTime, Utc};
use enrollment::android::{EapConfig, ProvisioningExtras, WifiConfig};
use enrollment::seal::Sealer;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

const TOKEN_PURPOSE: &str = "enrollment.token";
const WIFI_PASSWORD_PURPOSE: &str = "enrollment.wifi_password";
/// Where the sealed Wi-Fi password sits in the stored options (never in clear).
const SEALED_PASSWORD_KEY: &str = "wifi_password_sealed";
const AMAPI_QR_PURPOSE: &str = "enrollment.amapi_qr_code";
/// Where an AMAPI enrollment keeps its token's name (shown) and Google's QR JSON
/// (sealed: it holds the token value, which enrolls a phone into the enterprise).
const AMAPI_TOKEN_KEY: &str = "amapi_token_name";
const SEALED_AMAPI_QR_KEY: &str = "amapi_qr_code_sealed";
/// A downloaded profile's SCEP challenge is good for this long.
pub const CHALLENGE_TTL_MINUTES: i64 = 60;
/// Enrollments expire after a week unless the admin says otherwise.
pub const DEFAULT_LIFETIME_HOURS: i64 = 24 * 7;
pub const ENROLL_PATH: &str = "/enroll";

#[derive(Debug, Clone, Deserialize, Serialize, Default)]
#[serde(deny_unknown_fields)]
pub struct AndroidWifi {
    pub ssid: String,
    #[serde(default)]
    pub hidden: bool,
    /// NONE, WPA, WEP or EAP.
    pub security_type: String,
    pub password: Option<String>,
    pub eap_method: Option<String>,
    pub phase2_auth: Option<String>,
    pub identity: Option<String>,
    pub anonymous_identity: Option<String>,
    pub domain: Option<String>,
    pub ca_certificate: Option<String>,
    pub user_certificate: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize, Default)]
#[serde(deny_unknown_fields)]
pub struct AndroidOptions {
    pub wifi: Option<AndroidWifi>,
    pub locale: Option<String>,
    pub time_zone: Option<String>,
    #[serde(default)]
    pub leave_all_system_apps_enabled: bool,
    /// Android Enterprise: a work profile (personal use allowed) instead of a fully
    /// managed device.
    #[serde(default)]
    pub work_profile: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateEnrollment {
    pub platform: String,
    pub name: String,
    pub expires_at: Option<DateTime<Utc>>,
    pub expires_in_hours: Option<i64>,
    pub max_uses: Option<i32>,
    pub user: Option<String>,
    pub group: Option<String>,
    pub android: Option<AndroidOptions>,
}

/// An enrollment as admins see it: with its URL and token, state and QR content.
#[derive(Debug, Clone, Serialize)]
pub struct EnrollmentView {
    #[serde(flatten)]
    pub enrollment: Enrollment,
    pub state: EnrollmentState,
    pub url: String,
    pub token: String,
    /// What the QR code holds: the URL (Apple) or the provisioning JSON (Android).
    pub qr_payload: String,
    /// Fetches of the enrollment URL so far (Apple profile downloads, refused
    /// anonymous fetches), whether or not a device enrolled after them.
    pub url_uses: i64,
}

pub struct EnrollmentService {
    store: Arc<dyn Storage>,
    sealer: Sealer,
    pki: Arc<Pki>,
    public_url: String,
    organization: String,
    /// Roots the phone must trust for our HTTPS (tls.rs), installed by the profile.
    server_trust: crate::tls::ServerTrust,
    push_topic: Box<dyn Fn() -> Option<String> + Send + Sync>,
    android: Option<Arc<crate::services::android::AndroidService>>,
}

fn secret_token() -> String {
    generate_token().trim_start_matches("mdm_").to_owned()
}

impl EnrollmentService {
    pub fn new(
        store: Arc<dyn Storage>,
        sealer: Sealer,
        pki: Arc<Pki>,
        public_url: String,
        organization: String,
        push_topic: Box<dyn Fn() -> Option<String> + Send + Sync>,
    ) -> Self {
        EnrollmentService {
            store,
            sealer,
            pki,
            public_url,
            organization,
            server_trust: crate::tls::ServerTrust::default(),
            push_topic,
            android: None,
        }
    }

    /// Android enrollments through Google's Android Management API.
    pub fn with_android(mut self, android: Arc<crate::services::android::AndroidService>) -> Self {
        self.android = Some(android);
        self
    }

    /// The Android service when the enterprise exists (sign-up finished).
    async fn android_enterprise(
        &self,
    ) -> ServiceResult<Option<&Arc<crate::services::android::AndroidService>>> {
        let Some(android) = &self.android else {
            return Ok(None);
        };
        let connected = self
            .store
            .android_enterprise()
            .await?
            .is_some_and(|r| r.enterprise_name.is_some());
        Ok(connected.then_some(android))
    }

    pub fn url_for(&self, token: &str) -> String {
        format!("{}{ENROLL_PATH}/{token}", self.public_url)
    }

    fn view(
        &self,
        enrollment: Enrollment,
        token_sealed: &[u8],
        url_uses: i64,
    ) -> ServiceResult<EnrollmentView> {
        let token = self
            .sealer
            .open(TOKEN_PURPOSE, &enrollment.id, token_sealed)
            .map(|t| String::from_utf8_lossy(&t).into_owned())
            .map_err(|e| ServiceError::Internal(format!("enrollment token: {e}")))?;
        let url = self.url_for(&token);
        let qr_payload = match enrollment.platform {
            Platform::Apple => url.clone(),
            Platform::Android => match self.android_payload(&enrollment) {
                Ok(payload) => enrollment::android::qr_text(&payload),
                // One of the removed custom agent: still listed, so that it can be
                // revoked, but with no QR code (`qr_payload` below refuses it).
                Err(ServiceError::Conflict(_)) => String::new(),
                Err(e) => return Err(e),
            },
        };
        Ok(EnrollmentView {
            state: enrollment.state(Utc::now()),
            enrollment,
            url,
            token,
            qr_payload,
            url_uses,
        })
    }

    /// The stored Android options, with the sealed Wi-Fi password opened, and
    /// Google's QR JSON of an AMAPI enrollment.
    fn android_options(
        &self,
        enrollment: &Enrollment,
    ) -> ServiceResult<(AndroidOptions, Option<String>)> {
        use base64::Engine;
        let open = |purpose: &str, value: &str, what: &str| -> ServiceResult<String> {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(value)
                .map_err(|e| ServiceError::Internal(format!("stored {what}: {e}")))?;
            let clear = self
                .sealer
                .open(purpose, &enrollment.id, &bytes)
                .map_err(|e| ServiceError::Internal(format!("stored {what}: {e}")))?;
            Ok(String::from_utf8_lossy(&clear).into_owned())
        };
        let mut stored = enrollment.options.clone();
        let mut take = |key: &str| {
            stored
                .as_object_mut()
                .and_then(|o| o.remove(key))
                .and_then(|v| v.as_str().map(str::to_owned))
        };
        let sealed_password = take(SEALED_PASSWORD_KEY);
        let sealed_qr = take(SEALED_AMAPI_QR_KEY);
        take(AMAPI_TOKEN_KEY);
        let mut options: AndroidOptions = serde_json::from_value(stored)
            .map_err(|e| ServiceError::Internal(format!("stored Android options: {e}")))?;
        if let (Some(sealed), Some(wifi)) = (sealed_password, options.wifi.as_mut()) {
            wifi.password = Some(open(WIFI_PASSWORD_PURPOSE, &sealed, "Wi-Fi password")?);
        }
        let qr = match sealed_qr {
            Some(q) => Some(open(AMAPI_QR_PURPOSE, &q, "AMAPI QR code")?),
            None => None,
        };
        Ok((options, qr))
    }

    fn extras(options: AndroidOptions) -> ProvisioningExtras {
        let wifi = options.wifi.map(|w| WifiConfig {
            ssid: w.ssid,
            hidden: w.hidden,
            security_type: w.security_type,
            password: w.password,
            eap: w.eap_method.map(|method| EapConfig {
                method,
                phase2_auth: w.phase2_auth,
                identity: w.identity,
                anonymous_identity: w.anonymous_identity,
                domain: w.domain,
                ca_certificate: w.ca_certificate,
                user_certificate: w.user_certificate,
            }),
        });
        ProvisioningExtras {
            wifi,
            locale: options.locale,
            time_zone: options.time_zone,
            skip_encryption: false,
            leave_all_system_apps_enabled: options.leave_all_system_apps_enabled,
        }
    }

    fn android_payload(&self, enrollment: &Enrollment) -> ServiceResult<serde_json::Value> {
        let (options, google_qr) = self.android_options(enrollment)?;
        let extras = Self::extras(options);
        // Only AMAPI enrollments are created (see `create`); a row without Google's
        // QR data would be one from before the custom agent was removed.
        let qr = google_qr.ok_or_else(|| {
            ServiceError::Conflict(format!(
                "enrollment {} was made for the custom Android agent, which is no longer supported; revoke it and create a new one once Android Enterprise is connected (`mdm android connect`)",
                enrollment.id
            ))
        })?;
        enrollment::android::merge_extras(&qr, &extras)
            .map_err(|e| ServiceError::BadRequest(e.to_string()))
    }

    pub async fn create(
        &self,
        admin: &AdminIdentity,
        req: CreateEnrollment,
    ) -> ServiceResult<EnrollmentView> {
        let platform = Platform::parse(&req.platform).ok_or_else(|| {
            ServiceError::BadRequest(format!(
                "platform must be \"apple\" or \"android\", got {:?}",
                req.platform
            ))
        })?;
        let name = req.name.trim().to_owned();
        if name.is_empty() || name.len() > 255 {
            return Err(ServiceError::BadRequest(
                "name must be 1 to 255 characters".into(),
            ));
        }
        let now = Utc::now();
        let expires_at = match (req.expires_at, req.expires_in_hours) {
            (Some(_), Some(_)) => {
                return Err(ServiceError::BadRequest(
                    "give expires_at or expires_in_hours, not both".into(),
                ))
            }
            (Some(at), None) if at > now => at,
            (Some(_), None) => {
                return Err(ServiceError::BadRequest("expires_at is in the past".into()))
            }
            (None, Some(h)) if h > 0 => now + chrono::Duration::hours(h),
            (None, Some(_)) => {
                return Err(ServiceError::BadRequest(
                    "expires_in_hours must be positive".into(),
                ))
            }
            (None, None) => now + chrono::Duration::hours(DEFAULT_LIFETIME_HOURS),
        };
        if req.max_uses.is_some_and(|m| m < 1) {
            return Err(ServiceError::BadRequest(
                "max_uses must be at least 1".into(),
            ));
        }
        if platform == Platform::Apple && req.android.is_some() {
            return Err(ServiceError::BadRequest(
                "android options given for an apple enrollment".into(),
            ));
        }
        let token = secret_token();
        // The id first: the sealed secrets below are bound to it.
        let id = uuid::Uuid::new_v4().to_string();
        let mut android = req.android.unwrap_or_default();
        let work_profile = android.work_profile;
        let amapi = if platform == Platform::Android {
            // Android Device Policy is the only agent: without an enterprise at Google
            // there is no enrollment token, so nothing a phone could enroll into.
            Some(self.android_enterprise().await?.ok_or_else(|| {
                ServiceError::Conflict(
                    "Android enrollment needs Android Enterprise: run `mdm android connect`, then finish the sign-up in a browser".into(),
                )
            })?)
        } else {
            None
        };
        let password = android.wifi.as_mut().and_then(|w| w.password.take());
        let mut options = serde_json::to_value(&android).unwrap_or_default();
        if let Some(password) = &password {
            use base64::Engine;
            let sealed = self
                .sealer
                .seal(WIFI_PASSWORD_PURPOSE, &id, password.as_bytes())
                .map_err(|e| ServiceError::Internal(e.to_string()))?;
            options[SEALED_PASSWORD_KEY] = base64::engine::general_purpose::STANDARD
                .encode(sealed)
                .into();
        }
        let enrollment = Enrollment {
            id,
            platform,
            name,
            created_by: admin.name.clone(),
            created_at: now,
            expires_at: Some(expires_at),
            max_uses: req.max_uses,
            uses: 0,
            revoked_at: None,
            assigned_user: req.user.filter(|u| !u.trim().is_empty()),
            assigned_group: req.group.filter(|g| !g.trim().is_empty()),
            options,
        };
        let mut enrollment = enrollment;
        // Validate the Android payload before anything is stored (or asked of Google).
        if let Some(android) = amapi {
            let mut extras = Self::extras(self.android_options(&enrollment)?.0);
            if let (Some(w), Some(p)) = (extras.wifi.as_mut(), &password) {
                w.password = Some(p.clone());
            }
            enrollment::android::validate_extras(&extras)
                .map_err(|e| ServiceError::BadRequest(e.to_string()))?;
            let created = android
                .create_enrollment_token(crate::services::android::TokenRequest {
                    enrollment_id: enrollment.id.clone(),
                    expires_at,
                    one_time_only: req.max_uses == Some(1),
                    work_profile,
                })
                .await?;
            let sealed = self
                .sealer
                .seal(AMAPI_QR_PURPOSE, &enrollment.id, created.qr_code.as_bytes())
                .map_err(|e| ServiceError::Internal(e.to_string()))?;
            use base64::Engine;
            enrollment.options[AMAPI_TOKEN_KEY] = created.name.clone().into();
            enrollment.options[SEALED_AMAPI_QR_KEY] = base64::engine::general_purpose::STANDARD
                .encode(sealed)
                .into();
            // The QR must build; if it or the database fails, the token goes again.
            let stored = match self.android_payload(&enrollment) {
                Ok(_) => self.store_enrollment(&enrollment, &token).await,
                Err(e) => Err(e),
            };
            if let Err(e) = stored {
                if let Err(undo) = android.delete_enrollment_token(&created.name).await {
                    tracing::warn!(token = %created.name, error = %undo, "enrollment not stored and its AMAPI token not deleted; it expires on its own");
                }
                return Err(e);
            }
        } else {
            self.store_enrollment(&enrollment, &token).await?;
        }
        let token_sealed = self
            .sealer
            .seal(TOKEN_PURPOSE, &enrollment.id, token.as_bytes())
            .map_err(|e| ServiceError::Internal(e.to_string()))?;
        self.store
            .record(
                NewEvent::new(kinds::ENROLLMENT_CREATED, format!("{} enrollment {:?} created", platform.as_str(), enrollment.name))
                    .actor(&admin.name)
                    .data(serde_json::json!({
                        "enrollment_id": enrollment.id, "expires_at": enrollment.expires_at,
                        "max_uses": enrollment.max_uses, "user": enrollment.assigned_user, "group": enrollment.assigned_group,
                    })),
            )
            .await?;
        self.view(enrollment, &token_sealed, 0)
    }

    async fn store_enrollment(&self, enrollment: &Enrollment, token: &str) -> ServiceResult<()> {
        let token_sealed = self
            .sealer
            .seal(TOKEN_PURPOSE, &enrollment.id, token.as_bytes())
            .map_err(|e| ServiceError::Internal(e.to_string()))?;
        self.store
            .create_enrollment(NewEnrollment {
                enrollment: enrollment.clone(),
                token_hash: hash_token(token),
                token_sealed,
            })
            .await?;
        Ok(())
    }

    pub async fn list(&self, include_inactive: bool) -> ServiceResult<Vec<EnrollmentView>> {
        let enrollments = self.store.enrollments(include_inactive).await?;
        let ids: Vec<String> = enrollments.iter().map(|(e, _)| e.id.clone()).collect();
        let url_uses = self.store.enrollment_url_uses(&ids).await?;
        enrollments
            .into_iter()
            .map(|(e, sealed)| {
                let uses = url_uses.get(&e.id).copied().unwrap_or(0);
                self.view(e, &sealed, uses)
            })
            .collect()
    }

    pub async fn get(&self, id: &str) -> ServiceResult<EnrollmentView> {
        let (e, sealed) = self
            .store
            .enrollment(id)
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("enrollment {id} not found")))?;
        let url_uses = self
            .store
            .enrollment_url_uses(std::slice::from_ref(&e.id))
            .await?;
        let uses = url_uses.get(&e.id).copied().unwrap_or(0);
        self.view(e, &sealed, uses)
    }

    /// What enrollment `id`'s QR code holds (for the QR images).
    pub async fn qr_payload(&self, id: &str) -> ServiceResult<String> {
        let view = self.get(id).await?;
        if view.qr_payload.is_empty() {
            // Only an enrollment of the removed custom agent has none: this gives
            // its 409 and what to do instead.
            self.android_payload(&view.enrollment)?;
        }
        Ok(view.qr_payload)
    }

    pub async fn revoke(&self, admin: &AdminIdentity, id: &str) -> ServiceResult<EnrollmentView> {
        // An AMAPI token is deleted first: if Google cannot be reached the enrollment
        // stays as it was (and the admin retries), rather than revoked here while its
        // QR code still enrolls phones.
        if let Some((existing, _)) = self.store.enrollment(id).await? {
            let token = existing.options[AMAPI_TOKEN_KEY]
                .as_str()
                .map(str::to_owned);
            if let (Some(token), None) = (token, existing.revoked_at) {
                let android = self.android.as_ref().ok_or_else(|| {
                    ServiceError::Internal("an AMAPI enrollment without the Android service".into())
                })?;
                android.delete_enrollment_token(&token).await?;
            }
        }
        let e = self.store.revoke_enrollment(id, Utc::now()).await?;
        self.store
            .record(
                NewEvent::new(
                    kinds::ENROLLMENT_REVOKED,
                    format!("enrollment {:?} revoked", e.name),
                )
                .actor(&admin.name)
                .data(serde_json::json!({ "enrollment_id": e.id })),
            )
            .await?;
        self.get(id).await
    }

    /// The enrollment behind a URL token, if it still admits devices; otherwise the
    /// message for the person holding the device (and the refusal is recorded). Every
    /// fetch of a valid token is counted as a use of its URL, refused or not; an
    /// unknown token only in the metrics (anyone can send those).
    async fn admitting(&self, token: &str) -> ServiceResult<Enrollment> {
        let Some(e) = self
            .store
            .enrollment_by_token_hash(&hash_token(token))
            .await?
        else {
            bump(&METRICS.enrollment_url_unknown);
            return Err(ServiceError::NotFound(
                "This enrollment link is not valid. Check that it was copied completely, or ask your IT administrator."
                    .into(),
            ));
        };
        self.store.count_enrollment_url_use(&e.id).await?;
        bump(&METRICS.enrollment_url_uses);
        if let Some(message) = e.refusal(Utc::now()) {
            self.store
                .record(
                    NewEvent::new(
                        kinds::ENROLLMENT_REFUSED,
                        format!("enrollment {:?} refused a device: {message}", e.name),
                    )
                    .severity(severity::LOW)
                    .data(
                        serde_json::json!({ "enrollment_id": e.id, "state": e.state(Utc::now()) }),
                    ),
                )
                .await?;
            return Err(ServiceError::Gone(message));
        }
        Ok(e)
    }

    /// What the enrollment URL answers anyone who opens it: the signed .mobileconfig
    /// of an Apple enrollment, with a fresh one-time SCEP challenge bound to the
    /// enrollment. An Android enrollment's provisioning data carries the Wi-Fi
    /// password and is the QR code itself: the URL refuses it (403) and says so.
    /// The roots of the server's HTTPS certificate that profiles install (tls.rs).
    pub fn with_server_trust(mut self, trust: crate::tls::ServerTrust) -> Self {
        self.server_trust = trust;
        self
    }

    /// The Apple enrollment profile's inputs for enrollment `id`.
    fn profile_spec(
        &self,
        id: &str,
        challenge: String,
        topic: String,
    ) -> ServiceResult<profiles::enrollment_profile::EnrollmentProfileSpec> {
        Ok(profiles::enrollment_profile::EnrollmentProfileSpec {
            organization: self.organization.clone(),
            display_name: format!("{} MDM", self.organization),
            identifier: format!("mdm.enrollment.{id}"),
            ca_certificate_der: self
                .pki
                .device_ca
                .cert()
                .to_der()
                .map_err(|err| ServiceError::Internal(err.to_string()))?,
            server_roots_der: self.server_trust.roots_der.clone(),
            scep_url: format!("{}/scep", self.public_url),
            scep_challenge: challenge,
            scep_subject_cn: format!("mdm-device-{}", uuid::Uuid::new_v4()),
            scep_key_size: 2048,
            scep_key_usage: 5,
            server_url: format!("{}{}", self.public_url, crate::http::apple::SERVER_PATH),
            check_in_url: format!("{}{}", self.public_url, crate::http::apple::CHECKIN_PATH),
            topic: Some(topic),
            access_rights: 8191,
            check_out_when_removed: true,
            server_capabilities: vec![
                "com.apple.mdm.per-user-connections".into(),
                "com.apple.mdm.bootstraptoken".into(),
            ],
            sign_message: true,
        })
    }

    /// Builds (and signs) a profile from this configuration with placeholder secrets,
    /// so that a configuration devices would refuse stops the server at start.
    pub fn check_profile_configuration(&self) -> Result<(), String> {
        let spec = self
            .profile_spec(
                "00000000-0000-0000-0000-000000000000",
                "0".repeat(40),
                "com.apple.mgmt.External.00000000-0000-0000-0000-000000000000".into(),
            )
            .map_err(|e| e.to_string())?;
        let built = profiles::enrollment_profile::build_enrollment_profile(&spec)
            .map_err(|e| e.to_string())?;
        enrollment::signing::sign_profile(&built.plist_xml, &self.pki.signing)
            .map(|_| ())
            .map_err(|e| format!("signing: {e}"))
    }

    pub async fn open_url(&self, token: &str) -> ServiceResult<Vec<u8>> {
        let e = self.admitting(token).await?;
        if e.platform == Platform::Android {
            return Err(ServiceError::Forbidden(
                "This is an Android enrollment: scan its QR code at the Android setup screen (tap the welcome screen six times). The provisioning data is given only to administrators."
                    .into(),
            ));
        }
        // Without the push topic the profile is invalid (Apple requires Topic) and a
        // device would refuse it after the user went through the installation.
        let Some(topic) = (self.push_topic)() else {
            tracing::error!("an Apple device tried to enroll, but no push certificate is uploaded (mdm push-cert upload)");
            return Err(ServiceError::Unavailable(
                "This server cannot enroll Apple devices yet: the administrator must first upload the MDM push certificate. Please try again later.".into(),
            ));
        };
        // Hex, not base64: SCEP clients take the challenge on a command line, where a
        // leading '-' would read as an option.
        let challenge = {
            let mut bytes = [0u8; 20];
            openssl::rand::rand_bytes(&mut bytes)
                .map_err(|e| ServiceError::Internal(e.to_string()))?;
            hex::encode(bytes)
        };
        let now = Utc::now();
        let mut expires = now + chrono::Duration::minutes(CHALLENGE_TTL_MINUTES);
        if let Some(at) = e.expires_at {
            expires = expires.min(at);
        }
        self.store
            .create_challenge(&e.id, &hash_token(&challenge), expires)
            .await?;
        let spec = self.profile_spec(&e.id, challenge, topic)?;
        let built = profiles::enrollment_profile::build_enrollment_profile(&spec)
            .map_err(|err| ServiceError::Internal(format!("enrollment profile: {err}")))?;
        enrollment::signing::sign_profile(&built.plist_xml, &self.pki.signing)
            .map_err(|err| ServiceError::Internal(format!("signing the profile: {err}")))
    }
}
