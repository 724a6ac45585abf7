//! The office's link to Google for Android Enterprise: `mdm android connect` (the
//! service-account key, sealed; a sign-up URL), the sign-up callback that creates the
//! enterprise, and `mdm android status`.
//!
//! The AMAPI and Pub/Sub clients are built from the stored key when first needed and
//! rebuilt when a new connect replaces it (any server instance notices by the row's
//! `connected_at`), so that every instance talks to Google with the same key.

mod commands;
mod devices;
mod policies;
mod tokens;
mod usage_logs;

pub use commands::{AndroidCommand, WIPE_FLAGS};
pub use devices::record_from;
pub use policies::device_policy_id;
pub use tokens::{CreatedToken, TokenRequest, BASE_POLICY_ID};

use super::{ServiceError, ServiceResult};
use crate::android::amapi::Amapi;
use crate::android::google::{Google, GoogleError, RetryPolicy};
use crate::android::key::ServiceAccountKey;
use crate::android::pubsub::Pubsub;
use crate::android::token::TokenSource;
use crate::android::types::{Enterprise, NOTIFICATION_TYPES};
use crate::domain::event::{kinds, severity, NewEvent};
use crate::storage::{AndroidEnterpriseRow, Storage};
use chrono::{DateTime, SubsecRound, Utc};
use enrollment::seal::Sealer;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;

const KEY_PURPOSE: &str = "android.service_account";
/// The row the key is sealed to (storage keeps one connection).
const KEY_ROW: &str = "current";
pub const SIGNUP_CALLBACK_PATH: &str = "/android/signup-callback";
/// The query parameter of our callback URL that carries the sign-up secret. Its name
/// holds "token", so the access log redacts it (http/redact.rs).
pub const SIGNUP_SECRET_PARAM: &str = "signupToken";

/// Where Google is, and how patient to be with it.
#[derive(Debug, Clone)]
pub struct AndroidSettings {
    pub api_url: String,
    pub pubsub_url: String,
    pub retry: RetryPolicy,
    /// How long one request to Google may take.
    pub request_timeout: Duration,
}

impl Default for AndroidSettings {
    fn default() -> Self {
        AndroidSettings {
            api_url: crate::android::amapi::DEFAULT_BASE_URL.into(),
            pubsub_url: crate::android::pubsub::DEFAULT_BASE_URL.into(),
            retry: RetryPolicy::default(),
            request_timeout: Duration::from_secs(30),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectRequest {
    /// The service-account key file's JSON object, as downloaded.
    pub service_account: serde_json::Value,
    /// `projects/{project}/topics/{topic}` AMAPI publishes notifications to.
    pub pubsub_topic: Option<String>,
    /// `projects/{project}/subscriptions/{subscription}` we pull them from.
    pub pubsub_subscription: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ConnectView {
    pub project_id: String,
    pub client_email: String,
    /// Open this in a browser and sign up the organisation (none when the key of an
    /// existing enterprise was replaced).
    pub signup_url: Option<String>,
    /// The enterprise the new key now serves (key rotation).
    pub enterprise: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct StatusView {
    pub project_id: String,
    pub client_email: String,
    pub connected_by: String,
    pub connected_at: DateTime<Utc>,
    /// `signup_pending`, `enterprise_created` or `error`.
    pub state: &'static str,
    pub signup_url: Option<String>,
    pub enterprise: Option<String>,
    pub enterprise_display_name: Option<String>,
    pub enterprise_created_at: Option<DateTime<Utc>>,
    pub pubsub_topic: Option<String>,
    pub pubsub_subscription: Option<String>,
    pub notification_types: Vec<String>,
    pub last_sync_at: Option<DateTime<Utc>>,
    pub last_pull_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub last_error_at: Option<DateTime<Utc>>,
}

/// The clients for one stored key.
pub struct Link {
    pub connected_at: DateTime<Utc>,
    pub project_id: String,
    pub amapi: Amapi,
    pub pubsub: Pubsub,
}

pub struct AndroidService {
    store: Arc<dyn Storage>,
    sealer: Sealer,
    settings: AndroidSettings,
    public_url: String,
    http: reqwest::Client,
    link: tokio::sync::Mutex<Option<Arc<Link>>>,
    /// Set once at start (serve.rs): wiped devices' identities are revoked with it.
    revocation: std::sync::OnceLock<Arc<crate::services::revocation::RevocationService>>,
    /// One lock per AMAPI policy name: a save's delivery and the policy watcher may
    /// push the same device's policy at once, and each would otherwise see the old
    /// hash and patch Google (tokens.rs, `ensure_policy`).
    policy_locks: std::sync::Mutex<std::collections::HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

/// Google's answer in terms of our API: Google down is a 503 (try again), anything
/// else Google refused is the admin's to fix (400 with Google's reason).
pub fn google_error(e: GoogleError) -> ServiceError {
    if e.is_transient() {
        ServiceError::Unavailable(format!("Google is unavailable, try again later: {e}"))
    } else {
        ServiceError::BadRequest(format!("Google refused the request: {e}"))
    }
}

fn check_resource(value: &Option<String>, field: &str, kind: &str) -> ServiceResult<()> {
    if let Some(v) = value {
        let parts: Vec<&str> = v.split('/').collect();
        let ok = parts.len() == 4
            && parts[0] == "projects"
            && parts[2] == kind
            && !parts[1].is_empty()
            && !parts[3].is_empty()
            && v.chars().all(|c| c.is_ascii_graphic());
        if !ok {
            return Err(ServiceError::BadRequest(format!(
                "{field} must look like projects/<project>/{kind}/<name>, got {v:?}"
            )));
        }
    }
    Ok(())
}

fn sha256_hex(s: &str) -> String {
    hex::encode(openssl::sha::sha256(s.as_bytes()))
}

impl AndroidService {
    pub fn new(
        store: Arc<dyn Storage>,
        sealer: Sealer,
        settings: AndroidSettings,
        public_url: String,
    ) -> ServiceResult<Self> {
        let http = reqwest::Client::builder()
            .timeout(settings.request_timeout)
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| ServiceError::Internal(format!("HTTP client: {e}")))?;
        Ok(AndroidService {
            store,
            sealer,
            settings,
            public_url,
            http,
            link: tokio::sync::Mutex::new(None),
            revocation: std::sync::OnceLock::new(),
            policy_locks: std::sync::Mutex::new(std::collections::HashMap::new()),
        })
    }

    /// The lock of one AMAPI policy name (made on first use; a policy per device and
    /// the built-in one, so the map stays the size of the fleet).
    fn policy_lock(&self, name: &str) -> Arc<tokio::sync::Mutex<()>> {
        self.policy_locks
            .lock()
            .expect("policy locks")
            .entry(name.to_owned())
            .or_default()
            .clone()
    }

    pub fn set_revocation(&self, revocation: Arc<crate::services::revocation::RevocationService>) {
        let _ = self.revocation.set(revocation);
    }

    pub fn store(&self) -> &Arc<dyn Storage> {
        &self.store
    }

    fn build_link(&self, key: ServiceAccountKey, connected_at: DateTime<Utc>) -> Link {
        let project_id = key.project_id.clone();
        let google = Arc::new(Google::new(
            self.http.clone(),
            TokenSource::new(key, self.http.clone()),
            self.settings.retry,
        ));
        Link {
            connected_at,
            project_id,
            amapi: Amapi::new(google.clone(), &self.settings.api_url),
            pubsub: Pubsub::new(google, &self.settings.pubsub_url),
        }
    }

    /// The clients for the stored connection (None before `mdm android connect`).
    pub async fn link_for(&self, row: &AndroidEnterpriseRow) -> ServiceResult<Arc<Link>> {
        let mut cached = self.link.lock().await;
        if let Some(l) = cached.as_ref() {
            if l.connected_at == row.connected_at {
                return Ok(l.clone());
            }
        }
        let json = self
            .sealer
            .open(KEY_PURPOSE, KEY_ROW, &row.service_account_sealed)
            .map_err(|e| ServiceError::Internal(format!("stored service-account key: {e}")))?;
        let key = ServiceAccountKey::parse(&json)
            .map_err(|e| ServiceError::Internal(format!("stored service-account key: {e}")))?;
        let link = Arc::new(self.build_link(key, row.connected_at));
        *cached = Some(link.clone());
        Ok(link)
    }

    /// The connection with its enterprise, or why there is none yet.
    pub async fn enterprise(&self) -> ServiceResult<(AndroidEnterpriseRow, String, Arc<Link>)> {
        let row = self.store.android_enterprise().await?.ok_or_else(|| {
            ServiceError::NotConfigured(
                "Android is not connected to Google: run `mdm android connect --service-account key.json`".into(),
            )
        })?;
        let name = row.enterprise_name.clone().ok_or_else(|| {
            ServiceError::NotConfigured(
                "the Android Enterprise sign-up is not finished: open the sign-up URL `mdm android connect` printed".into(),
            )
        })?;
        let link = self.link_for(&row).await?;
        Ok((row, name, link))
    }

    /// Checks the key and the Pub/Sub names, asks Google for a sign-up URL, and only
    /// then stores the key (sealed): a key Google refuses leaves nothing behind.
    pub async fn connect(&self, actor: &str, req: ConnectRequest) -> ServiceResult<ConnectView> {
        let json = serde_json::to_vec(&req.service_account)
            .map_err(|e| ServiceError::BadRequest(format!("service_account: {e}")))?;
        let key =
            ServiceAccountKey::parse(&json).map_err(|e| ServiceError::BadRequest(e.to_string()))?;
        check_resource(&req.pubsub_topic, "pubsub_topic", "topics")?;
        check_resource(
            &req.pubsub_subscription,
            "pubsub_subscription",
            "subscriptions",
        )?;
        if req.pubsub_topic.is_some() != req.pubsub_subscription.is_some() {
            return Err(ServiceError::BadRequest(
                "give both pubsub_topic (AMAPI publishes to it) and pubsub_subscription (the server pulls from it), or neither (devices are then only synced periodically)".into(),
            ));
        }
        if let Some(existing) = self.store.android_enterprise().await? {
            if let Some(enterprise) = existing.enterprise_name.clone() {
                return self
                    .rotate_key(actor, existing, enterprise, key, json, req)
                    .await;
            }
        }
        let secret = super::tokens::generate_token();
        let callback = format!(
            "{}{SIGNUP_CALLBACK_PATH}?{SIGNUP_SECRET_PARAM}={secret}",
            self.public_url
        );
        // Microseconds: what PostgreSQL keeps, so the cached link matches the row.
        let now = Utc::now().trunc_subsecs(6);
        let link = self.build_link(key.clone(), now);
        let signup = link
            .amapi
            .create_signup_url(&key.project_id, &callback)
            .await
            .map_err(google_error)?;
        let sealed = self
            .sealer
            .seal(KEY_PURPOSE, KEY_ROW, &json)
            .map_err(|e| ServiceError::Internal(format!("sealing the key: {e}")))?;
        let row = AndroidEnterpriseRow {
            project_id: key.project_id.clone(),
            client_email: key.client_email.clone(),
            service_account_sealed: sealed,
            pubsub_topic: req.pubsub_topic,
            pubsub_subscription: req.pubsub_subscription,
            signup_url_name: Some(signup.name.clone()),
            signup_url: Some(signup.url.clone()),
            signup_secret_hash: Some(sha256_hex(&secret)),
            enterprise_name: None,
            enterprise_display_name: None,
            notification_types: Vec::new(),
            connected_by: actor.to_owned(),
            connected_at: now,
            enterprise_created_at: None,
            last_sync_at: None,
            last_pull_at: None,
            last_error: None,
            last_error_at: None,
        };
        let event = NewEvent::new(
            kinds::ADMIN_ANDROID_CONNECTED,
            format!(
                "Android Enterprise: service account {} of project {} stored; sign-up pending",
                key.client_email, key.project_id
            ),
        )
        .actor(actor)
        .data(
            serde_json::json!({ "project_id": key.project_id, "client_email": key.client_email }),
        );
        self.store.replace_android_enterprise(row, event).await?;
        *self.link.lock().await = Some(Arc::new(link));
        Ok(ConnectView {
            project_id: key.project_id,
            client_email: key.client_email,
            signup_url: Some(signup.url),
            enterprise: None,
        })
    }

    /// `connect` once the enterprise exists: a new key of the same project replaces
    /// the old one (key rotation) after it proved itself on the enterprise
    /// (`enterprises.get`); the enterprise, its topic and the devices stay. A key of
    /// another project would orphan the enterprise and is refused.
    async fn rotate_key(
        &self,
        actor: &str,
        existing: AndroidEnterpriseRow,
        enterprise: String,
        key: ServiceAccountKey,
        json: Vec<u8>,
        req: ConnectRequest,
    ) -> ServiceResult<ConnectView> {
        if existing.project_id != key.project_id {
            return Err(ServiceError::Conflict(format!(
                "this server is connected to {enterprise} through project {}; a key of project {} cannot manage it (delete the enterprise in the old project first)",
                existing.project_id, key.project_id
            )));
        }
        let changed =
            |given: &Option<String>, stored: &Option<String>| given.is_some() && given != stored;
        if changed(&req.pubsub_topic, &existing.pubsub_topic)
            || changed(&req.pubsub_subscription, &existing.pubsub_subscription)
        {
            return Err(ServiceError::BadRequest(
                "the enterprise's Pub/Sub topic and subscription stay as they are when its key is replaced".into(),
            ));
        }
        // Microseconds: what PostgreSQL keeps, so the cached link matches the row.
        let now = Utc::now().trunc_subsecs(6);
        let link = self.build_link(key.clone(), now);
        link.amapi
            .get_enterprise(&enterprise)
            .await
            .map_err(google_error)?;
        let sealed = self
            .sealer
            .seal(KEY_PURPOSE, KEY_ROW, &json)
            .map_err(|e| ServiceError::Internal(format!("sealing the key: {e}")))?;
        let row = AndroidEnterpriseRow {
            client_email: key.client_email.clone(),
            service_account_sealed: sealed,
            connected_by: actor.to_owned(),
            connected_at: now,
            last_error: None,
            last_error_at: None,
            ..existing
        };
        let event = NewEvent::new(
            kinds::ADMIN_ANDROID_CONNECTED,
            format!(
                "Android Enterprise {enterprise}: service account key replaced ({})",
                key.client_email
            ),
        )
        .actor(actor)
        .data(serde_json::json!({ "enterprise": enterprise, "client_email": key.client_email }));
        self.store.replace_android_enterprise(row, event).await?;
        *self.link.lock().await = Some(Arc::new(link));
        Ok(ConnectView {
            project_id: key.project_id,
            client_email: key.client_email,
            signup_url: None,
            enterprise: Some(enterprise),
        })
    }

    /// Google sent the admin's browser back: create the enterprise, with our Pub/Sub
    /// topic and notification types.
    pub async fn finish_signup(
        &self,
        secret: &str,
        enterprise_token: &str,
    ) -> ServiceResult<Enterprise> {
        let row = self.store.android_enterprise().await?.ok_or_else(|| {
            ServiceError::NotFound("no Android Enterprise sign-up is pending".into())
        })?;
        if row.enterprise_name.is_some() {
            return Err(ServiceError::Conflict(
                "the Android Enterprise sign-up has finished already".into(),
            ));
        }
        let (Some(expected), Some(signup_url_name)) =
            (&row.signup_secret_hash, &row.signup_url_name)
        else {
            return Err(ServiceError::NotFound(
                "no Android Enterprise sign-up is pending".into(),
            ));
        };
        if !openssl::memcmp::eq(sha256_hex(secret).as_bytes(), expected.as_bytes()) {
            return Err(ServiceError::Forbidden(
                "this sign-up link is not the one `mdm android connect` made (a newer connect replaces older links)".into(),
            ));
        }
        if enterprise_token.is_empty() || enterprise_token.len() > 4096 {
            return Err(ServiceError::BadRequest(
                "enterpriseToken is missing".into(),
            ));
        }
        let link = self.link_for(&row).await?;
        let types: Vec<String> = if row.pubsub_topic.is_some() {
            NOTIFICATION_TYPES.iter().map(|t| t.to_string()).collect()
        } else {
            Vec::new()
        };
        let wanted = Enterprise {
            name: None,
            enterprise_display_name: None,
            pubsub_topic: row.pubsub_topic.clone(),
            enabled_notification_types: types.clone(),
        };
        let created = link
            .amapi
            .create_enterprise(&row.project_id, signup_url_name, enterprise_token, &wanted)
            .await
            .map_err(google_error)?;
        let name = created
            .name
            .clone()
            .filter(|n| n.starts_with("enterprises/"))
            .ok_or_else(|| ServiceError::Internal("enterprises.create answered no name".into()))?;
        let event = NewEvent::new(
            kinds::ANDROID_ENTERPRISE_CREATED,
            format!("Android Enterprise {name} created"),
        )
        .severity(severity::NON_CRITICAL)
        .data(serde_json::json!({
            "enterprise": name,
            "pubsub_topic": row.pubsub_topic,
            "notification_types": created.enabled_notification_types,
        }));
        self.store
            .finish_android_signup(
                signup_url_name,
                &name,
                created.enterprise_display_name.as_deref(),
                &created.enabled_notification_types,
                Utc::now(),
                event,
            )
            .await?;
        Ok(created)
    }

    pub async fn status(&self) -> ServiceResult<StatusView> {
        let row = self.store.android_enterprise().await?.ok_or_else(|| {
            ServiceError::NotFound(
                "Android is not connected to Google: run `mdm android connect --service-account key.json`".into(),
            )
        })?;
        let state = if row.last_error.is_some() {
            "error"
        } else if row.enterprise_name.is_some() {
            "enterprise_created"
        } else {
            "signup_pending"
        };
        Ok(StatusView {
            project_id: row.project_id,
            client_email: row.client_email,
            connected_by: row.connected_by,
            connected_at: row.connected_at,
            state,
            signup_url: row.signup_url.filter(|_| row.enterprise_name.is_none()),
            enterprise: row.enterprise_name,
            enterprise_display_name: row.enterprise_display_name,
            enterprise_created_at: row.enterprise_created_at,
            pubsub_topic: row.pubsub_topic,
            pubsub_subscription: row.pubsub_subscription,
            notification_types: row.notification_types,
            last_sync_at: row.last_sync_at,
            last_pull_at: row.last_pull_at,
            last_error: row.last_error,
            last_error_at: row.last_error_at,
        })
    }

    /// Records a failure talking to Google. A configuration error (403, a deleted
    /// enterprise, a refused key) becomes one `android.configuration_error` event
    /// (severity 3: Android devices are unmanaged until an admin acts) and shows in
    /// `mdm android status`; a transient one is only logged and shown.
    pub async fn record_failure(&self, what: &str, e: &GoogleError) {
        // Keyed by Google's answer, not by the call: the puller and the sync meeting the
        // same 403 are one fault, one event.
        let message = e.to_string();
        // A 404 on the enterprise's own collections means the enterprise (or the
        // subscription) is gone; on one device or operation it means only that one.
        const ENTERPRISE_LEVEL: &[&str] = &[
            "devices.list",
            "subscriptions.pull",
            "enterprises.get",
            "enrollmentTokens.create",
            "enterprises.policies.patch",
        ];
        let configuration =
            e.is_configuration() || (e.status() == Some(404) && ENTERPRISE_LEVEL.contains(&what));
        if !configuration {
            tracing::warn!(%message, operation = what, "Google unavailable");
        }
        let event = configuration.then(|| {
            NewEvent::new(
                kinds::ANDROID_CONFIGURATION_ERROR,
                format!("Android Enterprise: Google refused {what}: {message}"),
            )
            .severity(severity::HIGH)
            .data(serde_json::json!({ "status": e.status(), "operation": what }))
        });
        match self.store.android_failed(&message, Utc::now(), event).await {
            Ok(true) if configuration => {
                tracing::error!(%message, operation = what, "Android Enterprise configuration error")
            }
            Ok(_) => {}
            Err(err) => tracing::warn!(%err, "cannot record the Android failure"),
        }
    }
}
