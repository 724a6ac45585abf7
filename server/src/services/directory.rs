//! Users and groups: from the office's LDAP directory (synced on a schedule and on
//! demand), from CSV imports, or by hand; and the questions other modules ask about
//! them ([`DirectoryService::user_attributes`], [`DirectoryService::users_in_group`]).
//!
//! A sync reads the directory first (outside any transaction), then applies what it
//! read in one transaction with its events (`crate::directory::plan`). One sync runs
//! at a time in a process (a mutex), and of several server instances only the one
//! holding the lease in `directory_sources` syncs.
//!
//! The bind password is sealed as soon as it arrives (purpose
//! `directory.bind_password`, bound to the source row), opened only to bind, and
//! never returned, logged or put in an event.

use super::{ServiceError, ServiceResult};
use crate::directory::{
    csv_import, kinds, ldap, plan, reasons, AttributeMap, Flavor, Secret, SourceConfig,
};
use crate::domain::event::severity;
use crate::domain::NewEvent;
use crate::storage::{
    DirectoryGroupRecord, DirectoryRefusal, DirectorySourceRow, DirectoryUserRecord, Storage,
    UserDevice,
};
use chrono::{DateTime, Utc};
use enrollment::seal::Sealer;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

pub use crate::directory::plan::UserPatch;

const PASSWORD_PURPOSE: &str = "directory.bind_password";
const SOURCE_ROW: &str = "default";
/// The longest a sync may read the directory.
const SYNC_TIMEOUT: Duration = Duration::from_secs(600);
/// A sync lease outlives the longest sync; a crashed holder's lease lapses.
const LEASE_SECS: i64 = 900;
/// How often the scheduler looks at the source at most (a new configuration is
/// seen within this).
const TICK: Duration = Duration::from_secs(15);
pub const DEFAULT_INTERVAL_SECS: i32 = 3600;
pub const MIN_INTERVAL_SECS: i64 = 5;
pub const MAX_INTERVAL_SECS: i64 = 7 * 24 * 3600;

/// A user as other modules see it (the policy compilers fill `{{user.*}}` from it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UserView {
    pub username: String,
    pub upn: String,
    pub email: String,
    pub display_name: String,
    pub department: Option<String>,
    pub groups: Vec<String>,
    pub disabled: bool,
    /// `ldap`, `csv` or `manual`.
    pub source: String,
}

/// A user as the API shows it: with why it is disabled and its devices.
#[derive(Debug, Clone, Serialize)]
pub struct UserDetail {
    #[serde(flatten)]
    pub user: UserView,
    pub external_id: Option<String>,
    pub disabled_reason: Option<String>,
    pub disabled_at: Option<DateTime<Utc>>,
    pub synced_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub devices: Vec<UserDevice>,
}

fn view(u: &DirectoryUserRecord, groups: Vec<String>) -> UserView {
    UserView {
        username: u.username.clone(),
        upn: u.upn.clone(),
        email: u.email.clone(),
        display_name: u.display_name.clone(),
        department: u.department.clone(),
        groups,
        disabled: u.disabled,
        source: u.source.clone(),
    }
}

fn detail(u: DirectoryUserRecord, groups: Vec<String>, devices: Vec<UserDevice>) -> UserDetail {
    UserDetail {
        user: view(&u, groups),
        external_id: u.external_id,
        disabled_reason: u.disabled_reason,
        disabled_at: u.disabled_at,
        synced_at: u.synced_at,
        created_at: u.created_at,
        updated_at: u.updated_at,
        devices,
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct GroupView {
    pub name: String,
    pub source: String,
    pub external_id: Option<String>,
    pub members: u64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

fn group_view(g: DirectoryGroupRecord, members: u64) -> GroupView {
    GroupView {
        name: g.name,
        source: g.source,
        external_id: g.external_id,
        members,
        created_at: g.created_at,
        updated_at: g.updated_at,
    }
}

/// Attribute names in a configuration request; unset ones take the flavor's default.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttributesRequest {
    pub username: Option<String>,
    pub upn: Option<String>,
    pub email: Option<String>,
    pub display_name: Option<String>,
    pub department: Option<String>,
    pub group_name: Option<String>,
    /// The attribute that marks a disabled account; "" for none.
    pub disabled: Option<String>,
    /// The value of it that means disabled (none: present means disabled;
    /// userAccountControl: the ACCOUNTDISABLE bit).
    pub disabled_value: Option<String>,
}

/// `PUT /directory/source`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceRequest {
    /// `openldap` (default) or `active_directory`.
    pub flavor: Option<String>,
    pub url: String,
    #[serde(default)]
    pub start_tls: bool,
    /// Accept plain ldap:// without StartTLS (the password crosses in clear).
    #[serde(default)]
    pub insecure_plaintext: bool,
    pub bind_dn: String,
    /// Sealed at once; omitted: the stored one is kept.
    pub bind_password: Option<Secret>,
    pub base_dn: String,
    pub user_filter: Option<String>,
    pub group_filter: Option<String>,
    #[serde(default)]
    pub attributes: AttributesRequest,
    /// PEM CA certificate(s) to trust for the directory's TLS certificate.
    pub ca_pem: Option<String>,
    /// Seconds between scheduled syncs; 0: only on demand.
    pub interval_seconds: Option<i64>,
    /// Connect and bind before saving (default); false saves without trying.
    pub verify: Option<bool>,
}

/// The configuration as shown: never the password.
#[derive(Debug, Clone, Serialize)]
pub struct SourceView {
    pub flavor: String,
    pub url: String,
    pub start_tls: bool,
    pub insecure_plaintext: bool,
    pub bind_dn: String,
    pub bind_password_set: bool,
    pub base_dn: String,
    pub user_filter: String,
    pub group_filter: String,
    pub attributes: AttributeMap,
    pub ca_pem: Option<String>,
    pub interval_seconds: i32,
    pub last_sync_at: Option<DateTime<Utc>>,
    pub last_sync_status: Option<String>,
    pub last_sync_error: Option<String>,
    pub last_sync_counts: Option<Value>,
    pub next_sync_at: Option<DateTime<Utc>>,
    pub updated_by: String,
    pub updated_at: DateTime<Utc>,
}

fn source_view(row: &DirectorySourceRow) -> SourceView {
    SourceView {
        flavor: row.flavor.clone(),
        url: row.url.clone(),
        start_tls: row.start_tls,
        insecure_plaintext: row.allow_plaintext,
        bind_dn: row.bind_dn.clone(),
        bind_password_set: !row.bind_password_sealed.is_empty(),
        base_dn: row.base_dn.clone(),
        user_filter: row.user_filter.clone(),
        group_filter: row.group_filter.clone(),
        attributes: attributes_of(row),
        ca_pem: row.ca_pem.clone(),
        interval_seconds: row.interval_seconds,
        last_sync_at: row.last_sync_at,
        last_sync_status: row.last_sync_status.clone(),
        last_sync_error: row.last_sync_error.clone(),
        last_sync_counts: row.last_sync_counts.clone(),
        next_sync_at: (row.interval_seconds > 0).then(|| {
            row.last_sync_at
                .map(|t| t + chrono::Duration::seconds(row.interval_seconds.into()))
                .unwrap_or(row.updated_at)
        }),
        updated_by: row.updated_by.clone(),
        updated_at: row.updated_at,
    }
}

fn attributes_of(row: &DirectorySourceRow) -> AttributeMap {
    AttributeMap {
        username: row.username_attr.clone(),
        upn: row.upn_attr.clone(),
        email: row.email_attr.clone(),
        display_name: row.display_name_attr.clone(),
        department: row.department_attr.clone(),
        group_name: row.group_name_attr.clone(),
        disabled: row.disabled_attr.clone(),
        disabled_value: row.disabled_value.clone(),
    }
}

/// An attribute description: a name or OID, with options (`member;range=...`).
fn check_attribute(field: &str, value: &str) -> ServiceResult<String> {
    let v = value.trim();
    let ok = !v.is_empty()
        && v.len() <= 128
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | ';'));
    if ok {
        Ok(v.to_owned())
    } else {
        Err(ServiceError::BadRequest(format!(
            "attributes.{field}: {value:?} is not an LDAP attribute name"
        )))
    }
}

fn refusal(r: DirectoryRefusal) -> ServiceError {
    match r {
        DirectoryRefusal::Invalid(list) => ServiceError::BadRequest(list.join("; ")),
        DirectoryRefusal::NotFound(m) => ServiceError::NotFound(m),
        DirectoryRefusal::Conflict(m) => ServiceError::Conflict(m),
    }
}

fn internal(e: impl std::fmt::Display) -> ServiceError {
    ServiceError::Internal(e.to_string())
}

/// What a finished sync answers: what it did, or why it failed (nothing written).
pub type SyncOutcome = Result<Value, String>;

struct Inner {
    store: Arc<dyn Storage>,
    sealer: Sealer,
    /// One sync at a time in this process.
    running: tokio::sync::Mutex<()>,
    /// This process's name in the lease.
    owner: String,
}

/// Cheap to clone: clones share the sync lock.
#[derive(Clone)]
pub struct DirectoryService {
    inner: Arc<Inner>,
}

impl DirectoryService {
    pub fn new(store: Arc<dyn Storage>, sealer: Sealer) -> Self {
        DirectoryService {
            inner: Arc::new(Inner {
                store,
                sealer,
                running: tokio::sync::Mutex::new(()),
                owner: uuid::Uuid::new_v4().to_string(),
            }),
        }
    }

    fn store(&self) -> &Arc<dyn Storage> {
        &self.inner.store
    }

    /// The user's attributes and groups, for filling in `{{user.*}}`; None when no
    /// user has that username (compared exactly, else ignoring case).
    pub async fn user_attributes(&self, username: &str) -> ServiceResult<Option<UserView>> {
        Ok(self
            .store()
            .directory_user(username)
            .await?
            .map(|(u, groups)| view(&u, groups)))
    }

    /// The usernames in a group (none when there is no such group).
    pub async fn users_in_group(&self, group: &str) -> ServiceResult<Vec<String>> {
        Ok(self
            .store()
            .directory_group_members(group)
            .await?
            .unwrap_or_default())
    }

    // --- the directory's configuration ---------------------------------------------

    pub async fn source(&self) -> ServiceResult<Option<SourceView>> {
        Ok(self
            .store()
            .directory_source()
            .await?
            .map(|row| source_view(&row)))
    }

    fn open_password(&self, row: &DirectorySourceRow) -> ServiceResult<Secret> {
        let bytes = self
            .inner
            .sealer
            .open(PASSWORD_PURPOSE, SOURCE_ROW, &row.bind_password_sealed)
            .map_err(|e| {
                ServiceError::Internal(format!(
                    "the directory's bind password cannot be opened with this master key ({e})"
                ))
            })?;
        String::from_utf8(bytes)
            .map(Secret::new)
            .map_err(|_| internal("the stored bind password is not text"))
    }

    fn config_of(&self, row: &DirectorySourceRow) -> ServiceResult<SourceConfig> {
        Ok(SourceConfig {
            flavor: Flavor::parse(&row.flavor).unwrap_or(Flavor::OpenLdap),
            url: row.url.clone(),
            start_tls: row.start_tls,
            allow_plaintext: row.allow_plaintext,
            bind_dn: row.bind_dn.clone(),
            bind_password: self.open_password(row)?,
            base_dn: row.base_dn.clone(),
            user_filter: row.user_filter.clone(),
            group_filter: row.group_filter.clone(),
            attributes: attributes_of(row),
            ca_pem: row.ca_pem.clone(),
        })
    }

    /// Checks and stores the directory's configuration. The connection and bind are
    /// tried first (unless `verify` is false): a configuration that does not work is
    /// refused with why, and nothing is saved.
    pub async fn configure(&self, actor: &str, req: SourceRequest) -> ServiceResult<SourceView> {
        let bad = ServiceError::BadRequest;
        let flavor = match req.flavor.as_deref() {
            None => Flavor::OpenLdap,
            Some(f) => Flavor::parse(f).ok_or_else(|| {
                bad(format!(
                    "flavor {f:?} is not one of openldap, active_directory"
                ))
            })?,
        };
        let url = req.url.trim().to_owned();
        ldap::check_url(&url, req.start_tls, req.insecure_plaintext).map_err(bad)?;
        let bind_dn = req.bind_dn.trim().to_owned();
        if bind_dn.is_empty() {
            return Err(bad("bind_dn must not be empty".into()));
        }
        let base_dn = req.base_dn.trim().to_owned();
        if base_dn.is_empty() {
            return Err(bad("base_dn must not be empty".into()));
        }
        let user_filter = req
            .user_filter
            .map(|f| f.trim().to_owned())
            .filter(|f| !f.is_empty())
            .unwrap_or_else(|| flavor.default_user_filter().to_owned());
        let group_filter = req
            .group_filter
            .map(|f| f.trim().to_owned())
            .filter(|f| !f.is_empty())
            .unwrap_or_else(|| flavor.default_group_filter().to_owned());
        for (field, filter) in [
            ("user_filter", &user_filter),
            ("group_filter", &group_filter),
        ] {
            if ::ldap3::parse_filter(filter).is_err() {
                return Err(bad(format!(
                    "{field}: {filter:?} is not an LDAP search filter (RFC 4515), e.g. (objectClass=inetOrgPerson)"
                )));
            }
        }
        let defaults = flavor.default_attributes();
        let a = &req.attributes;
        let pick = |field: &str, given: &Option<String>, default: &str| match given {
            Some(v) => check_attribute(field, v),
            None => Ok(default.to_owned()),
        };
        let disabled = match &a.disabled {
            Some(v) if v.trim().is_empty() => None,
            Some(v) => Some(check_attribute("disabled", v)?),
            None => defaults.disabled.clone(),
        };
        let attributes = AttributeMap {
            username: pick("username", &a.username, &defaults.username)?,
            upn: pick("upn", &a.upn, &defaults.upn)?,
            email: pick("email", &a.email, &defaults.email)?,
            display_name: pick("display_name", &a.display_name, &defaults.display_name)?,
            department: pick("department", &a.department, &defaults.department)?,
            group_name: pick("group_name", &a.group_name, &defaults.group_name)?,
            disabled_value: a
                .disabled_value
                .as_deref()
                .map(str::trim)
                .filter(|v| !v.is_empty() && disabled.is_some())
                .map(str::to_owned),
            disabled,
        };
        let ca_pem = req
            .ca_pem
            .map(|p| p.trim().to_owned())
            .filter(|p| !p.is_empty());
        if let Some(pem) = &ca_pem {
            ldap::parse_ca_pem(pem).map_err(bad)?;
        }
        let interval = req.interval_seconds.unwrap_or(DEFAULT_INTERVAL_SECS.into());
        if interval != 0 && !(MIN_INTERVAL_SECS..=MAX_INTERVAL_SECS).contains(&interval) {
            return Err(bad(format!(
                "interval_seconds must be 0 (sync on demand only) or {MIN_INTERVAL_SECS} to {MAX_INTERVAL_SECS}"
            )));
        }
        let existing = self.store().directory_source().await?;
        let password = match req.bind_password {
            Some(p) if p.expose().is_empty() => {
                return Err(bad(
                    "bind_password must not be empty (an empty password binds anonymously)".into(),
                ))
            }
            Some(p) => p,
            None => match &existing {
                Some(row) => self.open_password(row)?,
                None => return Err(bad("bind_password is required".into())),
            },
        };
        let config = SourceConfig {
            flavor,
            url: url.clone(),
            start_tls: req.start_tls,
            allow_plaintext: req.insecure_plaintext,
            bind_dn: bind_dn.clone(),
            bind_password: password,
            base_dn: base_dn.clone(),
            user_filter: user_filter.clone(),
            group_filter: group_filter.clone(),
            attributes: attributes.clone(),
            ca_pem: ca_pem.clone(),
        };
        if req.verify.unwrap_or(true) {
            ldap::check(&config).await.map_err(|e| {
                bad(format!(
                    "{e}. Nothing was saved (give verify=false, --no-verify, to save it anyway)"
                ))
            })?;
        }
        let sealed = self
            .inner
            .sealer
            .seal(
                PASSWORD_PURPOSE,
                SOURCE_ROW,
                config.bind_password.expose().as_bytes(),
            )
            .map_err(internal)?;
        let now = Utc::now();
        let row = DirectorySourceRow {
            flavor: flavor.as_str().into(),
            url: url.clone(),
            start_tls: req.start_tls,
            allow_plaintext: req.insecure_plaintext,
            bind_dn: bind_dn.clone(),
            bind_password_sealed: sealed,
            base_dn: base_dn.clone(),
            user_filter,
            group_filter,
            username_attr: attributes.username,
            upn_attr: attributes.upn,
            email_attr: attributes.email,
            display_name_attr: attributes.display_name,
            department_attr: attributes.department,
            group_name_attr: attributes.group_name,
            disabled_attr: attributes.disabled,
            disabled_value: attributes.disabled_value,
            ca_pem,
            interval_seconds: interval as i32,
            last_sync_at: None,
            last_sync_status: None,
            last_sync_error: None,
            last_sync_counts: None,
            updated_by: actor.to_owned(),
            updated_at: now,
        };
        if req.insecure_plaintext && !url.starts_with("ldaps://") && !req.start_tls {
            tracing::warn!(%url, "directory configured without TLS: the bind password crosses the network in clear");
        }
        self.store()
            .put_directory_source(
                row,
                NewEvent::new(
                    kinds::ADMIN_SOURCE_CONFIGURED,
                    format!("directory source set to {url} ({})", flavor.as_str()),
                )
                .actor(actor)
                .data(json!({
                    "url": url, "bind_dn": bind_dn, "base_dn": base_dn, "flavor": flavor.as_str(),
                    "start_tls": req.start_tls, "insecure_plaintext": req.insecure_plaintext,
                    "interval_seconds": interval,
                })),
            )
            .await?;
        self.source()
            .await?
            .ok_or_else(|| internal("the directory source vanished after it was stored"))
    }

    // --- sync ------------------------------------------------------------------------

    /// Syncs now (waiting for a sync this process is running). Ok(Err(why)) when the
    /// directory could not be read or its answer was refused: nothing changed.
    pub async fn sync(&self, actor: &str) -> ServiceResult<SyncOutcome> {
        let row = self.store().directory_source().await?.ok_or_else(|| {
            ServiceError::NotConfigured(
                "no directory is configured: PUT /api/v1/directory/source (mdm directory configure)"
                    .into(),
            )
        })?;
        let _running = tokio::time::timeout(SYNC_TIMEOUT, self.inner.running.lock())
            .await
            .map_err(|_| ServiceError::Conflict("a directory sync is still running".into()))?;
        let now = Utc::now();
        if !self
            .store()
            .take_directory_lease(
                &self.inner.owner,
                now,
                now + chrono::Duration::seconds(LEASE_SECS),
                None,
            )
            .await?
        {
            return Err(ServiceError::Conflict(
                "another server instance is syncing the directory; try again when it is done"
                    .into(),
            ));
        }
        // The row again: a configuration stored while we waited is the one to use.
        let row = self.store().directory_source().await?.unwrap_or(row);
        let outcome = self.run_sync(&row, actor).await;
        if let Err(e) = self
            .store()
            .release_directory_lease(&self.inner.owner)
            .await
        {
            tracing::warn!(error = %e, "releasing the directory sync lease");
        }
        outcome
    }

    async fn run_sync(&self, row: &DirectorySourceRow, actor: &str) -> ServiceResult<SyncOutcome> {
        let config = self.config_of(row)?;
        let url = config.url.clone();
        // On a task of its own: a panic in the LDAP client is a failed sync, not a
        // dead scheduler.
        let read = tokio::time::timeout(
            SYNC_TIMEOUT,
            tokio::spawn(async move { ldap::fetch(&config).await }),
        )
        .await;
        let now = Utc::now();
        let failure = match read {
            Err(_) => format!(
                "the directory at {url} was not read within {} s",
                SYNC_TIMEOUT.as_secs()
            ),
            Ok(Err(join)) => format!("reading the directory at {url} failed unexpectedly ({join})"),
            Ok(Ok(Err(e))) => e.0,
            Ok(Ok(Ok(snapshot))) => {
                let who = actor.to_owned();
                match self
                    .store()
                    .change_directory(Box::new(move |state| {
                        plan::sync(state, &snapshot, &who, now)
                    }))
                    .await?
                {
                    Ok(plan) => {
                        tracing::info!(summary = %plan.summary, "directory synced");
                        return Ok(Ok(plan.summary));
                    }
                    Err(DirectoryRefusal::Invalid(list)) => list.join("; "),
                    Err(DirectoryRefusal::Conflict(m) | DirectoryRefusal::NotFound(m)) => m,
                }
            }
        };
        tracing::warn!(error = %failure, "directory sync failed");
        self.store()
            .directory_sync_failed(
                &failure,
                now,
                NewEvent::new(
                    kinds::SYNC_FAILED,
                    format!("directory sync failed: {failure}"),
                )
                .severity(severity::LOW)
                .actor(actor)
                .data(json!({ "error": failure, "url": url })),
            )
            .await?;
        Ok(Err(failure))
    }

    /// Syncs on the source's schedule, in the background, for as long as the server
    /// runs.
    pub fn spawn_scheduler(&self) {
        let this = self.clone();
        tokio::spawn(async move {
            loop {
                let wait = match this.scheduled().await {
                    Ok(wait) => wait,
                    // A database outage is logged once a minute where it is met.
                    Err(e @ ServiceError::StorageUnavailable(_)) => {
                        tracing::debug!(error = %e, "directory schedule");
                        TICK
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "directory schedule");
                        TICK
                    }
                };
                tokio::time::sleep(wait).await;
            }
        });
    }

    /// One look at the schedule: syncs when due; returns how long to wait.
    async fn scheduled(&self) -> ServiceResult<Duration> {
        let Some(row) = self.store().directory_source().await? else {
            return Ok(TICK);
        };
        if row.interval_seconds <= 0 {
            return Ok(TICK);
        }
        let interval = chrono::Duration::seconds(row.interval_seconds.into());
        let now = Utc::now();
        if let Some(last) = row.last_sync_at {
            if last + interval > now {
                let left = (last + interval - now).to_std().unwrap_or(TICK);
                return Ok(left.min(TICK));
            }
        }
        let every = interval.to_std().unwrap_or(TICK).min(TICK);
        let Ok(_running) = self.inner.running.try_lock() else {
            return Ok(every);
        };
        if !self
            .store()
            .take_directory_lease(
                &self.inner.owner,
                now,
                now + chrono::Duration::seconds(LEASE_SECS),
                Some(now - interval),
            )
            .await?
        {
            return Ok(every);
        }
        let outcome = self.run_sync(&row, "directory-schedule").await;
        if let Err(e) = self
            .store()
            .release_directory_lease(&self.inner.owner)
            .await
        {
            tracing::warn!(error = %e, "releasing the directory sync lease");
        }
        // Logged by run_sync, recorded in the source row and the event stream.
        let _logged: SyncOutcome = outcome?;
        Ok(every)
    }

    // --- users and groups ------------------------------------------------------------

    async fn with_devices(
        &self,
        users: Vec<(DirectoryUserRecord, Vec<String>)>,
    ) -> ServiceResult<Vec<UserDetail>> {
        let names: Vec<String> = users.iter().map(|(u, _)| u.username.clone()).collect();
        let mut devices = self.store().devices_of_users(&names).await?;
        Ok(users
            .into_iter()
            .map(|(u, groups)| {
                let d = devices.remove(&u.username).unwrap_or_default();
                detail(u, groups, d)
            })
            .collect())
    }

    /// Users by username; `disabled: Some(true)` is the off-boarding list (disabled
    /// or removed users, with their devices).
    pub async fn users(&self, disabled: Option<bool>) -> ServiceResult<Vec<UserDetail>> {
        let users = self.store().directory_users(disabled).await?;
        self.with_devices(users).await
    }

    pub async fn user(&self, username: &str) -> ServiceResult<UserDetail> {
        let found = self
            .store()
            .directory_user(username)
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("no user {username}")))?;
        Ok(self.with_devices(vec![found]).await?.remove(0))
    }

    pub async fn create_user(
        &self,
        actor: &str,
        input: plan::UserInput,
    ) -> ServiceResult<UserDetail> {
        let username = input.username.trim().to_owned();
        let who = actor.to_owned();
        let now = Utc::now();
        self.store()
            .change_directory(Box::new(move |state| {
                plan::create_user(state, &input, &who, now)
            }))
            .await?
            .map_err(refusal)?;
        self.user(&username).await
    }

    pub async fn update_user(
        &self,
        actor: &str,
        username: &str,
        patch: UserPatch,
    ) -> ServiceResult<UserDetail> {
        let who = actor.to_owned();
        let name = username.to_owned();
        let now = Utc::now();
        let plan = self
            .store()
            .change_directory(Box::new(move |state| {
                plan::update_user(state, &name, &patch, &who, now)
            }))
            .await?
            .map_err(refusal)?;
        let username = plan.summary["username"]
            .as_str()
            .unwrap_or(username)
            .to_owned();
        self.user(&username).await
    }

    pub async fn delete_user(&self, actor: &str, username: &str) -> ServiceResult<Value> {
        let found = self
            .store()
            .directory_user(username)
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("no user {username}")))?;
        let devices = self
            .store()
            .devices_of_users(std::slice::from_ref(&found.0.username))
            .await?
            .remove(&found.0.username)
            .map(|d| d.len())
            .unwrap_or(0);
        let who = actor.to_owned();
        let name = found.0.username.clone();
        let plan = self
            .store()
            .change_directory(Box::new(move |state| {
                plan::delete_user(state, &name, devices, &who)
            }))
            .await?
            .map_err(refusal)?;
        Ok(json!({ "deleted": plan.summary["username"] }))
    }

    /// Imports a CSV file: all rows, or none and every problem with its row and
    /// column (`Ok(Err(problems))`).
    pub async fn import_csv(
        &self,
        actor: &str,
        bytes: &[u8],
    ) -> ServiceResult<Result<Value, Vec<String>>> {
        let rows = match csv_import::parse(bytes) {
            Ok(rows) => rows,
            Err(errors) => return Ok(Err(errors)),
        };
        let who = actor.to_owned();
        let now = Utc::now();
        match self
            .store()
            .change_directory(Box::new(move |state| plan::import(state, &rows, &who, now)))
            .await?
        {
            Ok(plan) => Ok(Ok(plan.summary)),
            Err(DirectoryRefusal::Invalid(errors)) => Ok(Err(csv_import::limit(errors))),
            Err(other) => Err(refusal(other)),
        }
    }

    pub async fn groups(&self) -> ServiceResult<Vec<GroupView>> {
        Ok(self
            .store()
            .directory_groups()
            .await?
            .into_iter()
            .map(|(g, n)| group_view(g, n))
            .collect())
    }

    /// A group with its members' usernames.
    pub async fn group(&self, name: &str) -> ServiceResult<Value> {
        let groups = self.store().directory_groups().await?;
        let Some((g, n)) = groups.into_iter().find(|(g, _)| g.name == name) else {
            return Err(ServiceError::NotFound(format!("no group {name}")));
        };
        let members = self.users_in_group(&g.name).await?;
        let mut v = serde_json::to_value(group_view(g, n)).map_err(internal)?;
        v["usernames"] = json!(members);
        Ok(v)
    }
}

/// Reasons a user can be disabled, for documentation and clients.
pub const DISABLED_REASONS: [&str; 3] = [
    reasons::DISABLED_IN_DIRECTORY,
    reasons::REMOVED_FROM_DIRECTORY,
    reasons::DISABLED_BY_HAND,
];
