//! Admin accounts (issue 10): passwords under the office's rules, TOTP, sessions,
//! roles granted to admin groups, API tokens with a role and an expiry, and who may
//! call what.
//!
//! Every request is authenticated against the database: a disabled admin, a revoked
//! session or token, a role changed a moment ago on another instance, all count on
//! the next request. Secrets are never logged nor stored in the clear: passwords as
//! Argon2id hashes, session and API tokens and recovery codes as SHA-256 (they carry
//! 256 or 80 random bits), TOTP secrets sealed with the master key.

pub mod audit;
pub mod context;
pub mod offboarding;
pub mod password;
pub mod roles;
pub mod totp;

use super::tokens::{generate_token, hash_token, AdminIdentity};
use super::{ServiceError, ServiceResult};
use crate::domain::event::{kinds as event_kinds, NewEvent};
use crate::storage::{AdminRow, ApiTokenRow, RoleRow, SessionRow, Storage};
use chrono::{DateTime, Duration, Utc};
use enrollment::seal::Sealer;
use password::PasswordPolicy;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::BTreeSet;
use std::sync::Arc;

/// Event kinds of this module. Strings, like every kind (domain/event.rs).
pub mod kinds {
    pub const AUTH_LOGIN: &str = "auth.login";
    pub const AUTH_LOGIN_FAILED: &str = "auth.login_failed";
    pub const AUTH_MFA_FAILED: &str = "auth.mfa_failed";
    pub const AUTH_RECOVERY_CODE_USED: &str = "auth.recovery_code_used";
    pub const AUTH_TOKEN_USED: &str = "auth.token_used";
    /// An authenticated caller asked for something its roles do not grant.
    pub const AUTH_DENIED: &str = "auth.denied";
    pub const AUTH_LOGOUT: &str = "auth.logout";
    pub const ADMIN_ACCOUNT_CREATED: &str = "admin.account_created";
    pub const ADMIN_ACCOUNT_DISABLED: &str = "admin.account_disabled";
    pub const ADMIN_ACCOUNT_ENABLED: &str = "admin.account_enabled";
    pub const ADMIN_PASSWORD_CHANGED: &str = "admin.password_changed";
    pub const ADMIN_PASSWORD_RESET: &str = "admin.password_reset";
    pub const ADMIN_MFA_ENROLLED: &str = "admin.mfa_enrolled";
    pub const ADMIN_MFA_RESET: &str = "admin.mfa_reset";
    pub const ADMIN_ROLE_CHANGED: &str = "admin.role_changed";
    pub const ADMIN_ROLE_DELETED: &str = "admin.role_deleted";
    pub const ADMIN_GROUP_CHANGED: &str = "admin.group_changed";
    pub const ADMIN_GROUP_DELETED: &str = "admin.group_deleted";
    pub const ADMIN_SESSION_REVOKED: &str = "admin.session_revoked";
    pub const ADMIN_USER_OFFBOARDED: &str = "admin.user_offboarded";
    pub const ADMIN_AUDIT_EXPORTED: &str = "admin.audit_exported";
    pub const OFFBOARDING_FINISHED: &str = "admin.offboarding_finished";
}

/// The purpose TOTP secrets are sealed under (the row is the admin's id).
pub const TOTP_SEAL_PURPOSE: &str = "admin.totp_secret";
/// Session tokens start with this; API tokens with `mdm_`.
pub const SESSION_PREFIX: &str = "mdms_";
/// The actor name of the `MDM_ADMIN_TOKEN` bootstrap.
pub const BOOTSTRAP_ACTOR: &str = "env:MDM_ADMIN_TOKEN";
/// A token's use is an event at most this often (per token).
pub const TOKEN_USE_EVENT_SECS: i64 = 60;

/// Passwords, sessions, lockout and tokens. The defaults are the office's policy's
/// numbers; `mdm serve` options change them, never below the policy (config.rs).
#[derive(Debug, Clone)]
pub struct AdminSettings {
    pub policy: PasswordPolicy,
    pub idle_timeout: Duration,
    pub session_lifetime: Duration,
    /// How long a login may wait for its second factor.
    pub mfa_wait: Duration,
    /// The issuer an authenticator app shows.
    pub issuer: String,
    pub token_default_days: i64,
    pub token_max_days: i64,
}

impl Default for AdminSettings {
    fn default() -> Self {
        AdminSettings {
            policy: PasswordPolicy::default(),
            idle_timeout: Duration::minutes(15),
            session_lifetime: Duration::hours(12),
            mfa_wait: Duration::minutes(5),
            issuer: "MDM".into(),
            token_default_days: 90,
            token_max_days: 366,
        }
    }
}

/// How the caller authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallerKind {
    /// `MDM_ADMIN_TOKEN`: the first start's bootstrap, with every right.
    Bootstrap,
    Session {
        id: String,
        cookie: bool,
    },
    Token {
        id: String,
    },
}

/// What a caller must do before anything else.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Restriction {
    /// Its password is older than the policy allows, or was set by someone else.
    PasswordChange,
    /// One of its roles is critical and it has no second factor yet.
    MfaEnrolment,
}

impl Restriction {
    pub fn message(&self) -> &'static str {
        match self {
            Restriction::PasswordChange => {
                "your password must be changed first (POST /api/v1/session/password, or `mdm passwd`)"
            }
            Restriction::MfaEnrolment => {
                "a role you hold is critical: enrol a second factor first (POST /api/v1/session/totp, or `mdm mfa enrol`)"
            }
        }
    }
}

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct Caller {
    pub identity: AdminIdentity,
    pub kind: CallerKind,
    /// The admin account behind it (None: bootstrap or a service account's token).
    pub admin_id: Option<String>,
    pub rights: BTreeSet<String>,
    pub roles: Vec<String>,
    pub restriction: Option<Restriction>,
}

impl Caller {
    pub fn has(&self, right: &str) -> bool {
        self.rights.contains(right)
    }
    pub fn name(&self) -> &str {
        &self.identity.name
    }
    pub fn is_session(&self) -> bool {
        matches!(self.kind, CallerKind::Session { .. })
    }
}

/// Credentials as the HTTP layer found them.
pub enum Credential<'a> {
    Bearer(&'a str),
    /// The console's cookie; unsafe methods must carry the CSRF token.
    Cookie {
        token: &'a str,
        csrf: Option<&'a str>,
        unsafe_method: bool,
    },
}

/// Why credentials were refused.
#[derive(Debug)]
pub enum AuthFailure {
    /// 401: nothing valid was presented (counts against the address).
    Invalid(String),
    /// 401: valid once, no longer (expired, disabled, revoked): not a guess.
    Ended(String),
    /// 403: a cookie request without its CSRF token.
    Csrf,
    Service(ServiceError),
}

impl From<ServiceError> for AuthFailure {
    fn from(e: ServiceError) -> Self {
        AuthFailure::Service(e)
    }
}

impl From<crate::storage::StoreError> for AuthFailure {
    fn from(e: crate::storage::StoreError) -> Self {
        AuthFailure::Service(e.into())
    }
}

/// A login request: password (with the second factor, or without it and then a
/// `ticket` with it), or a ticket with the second factor.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub username: Option<String>,
    pub password: Option<String>,
    pub totp: Option<String>,
    pub recovery_code: Option<String>,
    pub ticket: Option<String>,
    /// A console session: the token goes into a cookie, with a CSRF token.
    #[serde(default)]
    pub cookie: bool,
}

/// What a login gave.
#[derive(Debug, Serialize)]
pub struct LoginOutcome {
    /// The password was right; the second factor is needed with this ticket.
    pub mfa_required: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ticket: Option<String>,
    /// The session token (bearer sessions; a cookie session's is in the cookie).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    #[serde(skip)]
    pub cookie_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub csrf_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session: Option<SessionView>,
    pub must_change_password: bool,
    pub mfa_enrolment_required: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct SessionView {
    pub id: String,
    pub admin: String,
    pub kind: String,
    pub mfa: bool,
    pub created_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    pub idle_timeout_secs: i32,
    pub expires_at: DateTime<Utc>,
    pub address: Option<String>,
    pub user_agent: Option<String>,
}

impl From<&SessionRow> for SessionView {
    fn from(s: &SessionRow) -> Self {
        SessionView {
            id: s.id.clone(),
            admin: s.admin_name.clone(),
            kind: s.kind.clone(),
            mfa: s.mfa,
            created_at: s.created_at,
            last_seen_at: s.last_seen_at,
            idle_timeout_secs: s.idle_timeout_secs,
            expires_at: s.expires_at,
            address: s.address.clone(),
            user_agent: s.user_agent.clone(),
        }
    }
}

/// Why a login failed, as the caller is told.
#[derive(Debug)]
pub enum LoginError {
    /// 401, the same words whether the account exists or not.
    Refused(String),
    /// 429 with Retry-After: locked after failed logins.
    Locked(i64),
    Service(ServiceError),
}

impl From<ServiceError> for LoginError {
    fn from(e: ServiceError) -> Self {
        LoginError::Service(e)
    }
}

impl From<crate::storage::StoreError> for LoginError {
    fn from(e: crate::storage::StoreError) -> Self {
        LoginError::Service(e.into())
    }
}

/// An admin as the API shows it (never its hashes or secrets).
#[derive(Debug, Clone, Serialize)]
pub struct AdminView {
    pub id: String,
    pub name: String,
    pub display_name: String,
    pub email: Option<String>,
    pub groups: Vec<String>,
    pub roles: Vec<String>,
    pub critical: bool,
    pub mfa_enabled: bool,
    pub recovery_codes_left: u64,
    pub password_changed_at: DateTime<Utc>,
    pub password_expires_at: DateTime<Utc>,
    pub must_change_password: bool,
    pub locked_until: Option<DateTime<Utc>>,
    pub failed_logins: i32,
    pub last_login_at: Option<DateTime<Utc>>,
    pub last_login_address: Option<String>,
    pub disabled: bool,
    pub disabled_at: Option<DateTime<Utc>>,
    pub disabled_reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
}

/// A new admin account.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewAdmin {
    pub name: String,
    pub display_name: String,
    pub email: Option<String>,
    pub password: String,
    #[serde(default)]
    pub groups: Vec<String>,
    /// The password was chosen by someone else: it must change at the first login.
    #[serde(default)]
    pub temporary: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    pub name: String,
    pub role: String,
    pub expires_in_days: Option<i64>,
    /// A service account's token (no admin behind it); needs admins.manage.
    #[serde(default)]
    pub service_account: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleUpdate {
    pub description: String,
    pub rights: Vec<String>,
    pub critical: bool,
}

/// TOTP enrolment: shown once, until confirmed with a code.
#[derive(Debug, Serialize)]
pub struct TotpEnrolment {
    pub otpauth_uri: String,
    pub secret: String,
    pub qr_svg: String,
}

/// Admin names identify their owner (the policy): letters, digits, '.', '_', '-',
/// starting with a letter. Not a word that says the account is privileged.
pub fn valid_admin_name(name: &str) -> Result<(), String> {
    let ok = (2..=64).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-'));
    if !ok {
        return Err(format!(
            "admin name {name:?}: 2 to 64 lower-case letters, digits, '.', '_' or '-', starting with a letter (e.g. jan.kowalski)"
        ));
    }
    const PRIVILEGED: [&str; 5] = ["admin", "root", "owner", "superuser", "administrator"];
    if PRIVILEGED
        .iter()
        .any(|p| name.split(['.', '_', '-']).any(|part| part == *p))
    {
        return Err(format!(
            "admin name {name:?}: an account name must identify its owner and not reveal that it is privileged (use the person's name, e.g. jan.kowalski)"
        ));
    }
    Ok(())
}

fn random_secret(prefix: &str) -> String {
    let token = generate_token();
    format!("{prefix}{}", token.trim_start_matches("mdm_"))
}

pub struct AdminService {
    store: Arc<dyn Storage>,
    sealer: Sealer,
    settings: AdminSettings,
    /// Hash of MDM_ADMIN_TOKEN, when set.
    bootstrap_hash: Option<String>,
}

impl AdminService {
    pub fn new(
        store: Arc<dyn Storage>,
        sealer: Sealer,
        settings: AdminSettings,
        bootstrap: Option<&str>,
    ) -> Self {
        AdminService {
            store,
            sealer,
            settings,
            bootstrap_hash: bootstrap.filter(|t| !t.is_empty()).map(hash_token),
        }
    }

    pub fn settings(&self) -> &AdminSettings {
        &self.settings
    }

    pub fn store(&self) -> &Arc<dyn Storage> {
        &self.store
    }

    // ---- who is calling ------------------------------------------------------

    /// Turns credentials into a caller with its rights. Nothing is cached.
    pub async fn authenticate(
        &self,
        credential: Credential<'_>,
        address: Option<&str>,
    ) -> Result<Caller, AuthFailure> {
        let now = Utc::now();
        match credential {
            Credential::Bearer(token) => {
                let hashed = hash_token(token);
                if let Some(b) = &self.bootstrap_hash {
                    if openssl::memcmp::eq(b.as_bytes(), hashed.as_bytes()) {
                        return Ok(Caller {
                            identity: AdminIdentity {
                                name: BOOTSTRAP_ACTOR.into(),
                            },
                            kind: CallerKind::Bootstrap,
                            admin_id: None,
                            rights: roles::RIGHTS.iter().map(|(r, _)| (*r).to_owned()).collect(),
                            roles: vec!["owner".into()],
                            restriction: None,
                        });
                    }
                }
                if token.starts_with(SESSION_PREFIX) {
                    self.session_caller(&hashed, false, None, now).await
                } else {
                    self.token_caller(&hashed, address, now).await
                }
            }
            Credential::Cookie {
                token,
                csrf,
                unsafe_method,
            } => {
                let check = unsafe_method.then(|| csrf.map(hash_token).unwrap_or_default());
                self.session_caller(&hash_token(token), true, check, now)
                    .await
            }
        }
    }

    async fn session_caller(
        &self,
        hashed: &str,
        cookie: bool,
        csrf: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<Caller, AuthFailure> {
        let session =
            self.store.session_by_hash(hashed).await?.ok_or_else(|| {
                AuthFailure::Invalid("invalid, expired or revoked session".into())
            })?;
        if session.state != "active" {
            return Err(AuthFailure::Ended(
                "this login waits for its second factor (POST /api/v1/session with the ticket and a code)".into(),
            ));
        }
        if (session.kind == "cookie") != cookie {
            return Err(AuthFailure::Invalid(
                "invalid, expired or revoked session".into(),
            ));
        }
        if now >= session.expires_at
            || now >= session.last_seen_at + Duration::seconds(session.idle_timeout_secs.into())
        {
            return Err(AuthFailure::Ended(
                "the session has expired: log in again (mdm login)".into(),
            ));
        }
        if let Some(expected) = csrf {
            let given_ok = session.csrf_hash.as_deref().is_some_and(|h| {
                !expected.is_empty() && openssl::memcmp::eq(h.as_bytes(), expected.as_bytes())
            });
            if !given_ok {
                return Err(AuthFailure::Csrf);
            }
        }
        let admin = self
            .store
            .admin_by_id(&session.admin_id)
            .await?
            .ok_or_else(|| AuthFailure::Ended("the account no longer exists".into()))?;
        if admin.disabled_at.is_some() {
            return Err(AuthFailure::Ended("the account is disabled".into()));
        }
        let (held, _) = self.store.roles_of_admin(&admin.id).await?;
        let critical = held.iter().any(|r| r.critical);
        let mfa_enabled = admin.totp_secret_sealed.is_some();
        if critical && mfa_enabled && !session.mfa {
            // A role became critical, or a second factor was set up elsewhere, since
            // this login: it proves less than the account now needs.
            return Err(AuthFailure::Ended(
                "your account now needs a second factor: log in again".into(),
            ));
        }
        let restriction = if admin.must_change_password
            || self.settings.policy.expired(admin.password_changed_at, now)
        {
            Some(Restriction::PasswordChange)
        } else if critical && !mfa_enabled {
            Some(Restriction::MfaEnrolment)
        } else {
            None
        };
        // last_seen_at moves at most every tenth of the idle timeout (and at least every
        // 10 s): a session in use never looks idle, a busy console does not write on
        // every request.
        let every = Duration::seconds((i64::from(session.idle_timeout_secs) / 10).clamp(0, 10));
        if now - session.last_seen_at >= every {
            self.store.touch_session(&session.id, now).await?;
        }
        Ok(Caller {
            identity: AdminIdentity {
                name: admin.name.clone(),
            },
            kind: CallerKind::Session {
                id: session.id,
                cookie,
            },
            admin_id: Some(admin.id),
            rights: roles::rights_of(&held),
            roles: held.into_iter().map(|r| r.name).collect(),
            restriction,
        })
    }

    async fn token_caller(
        &self,
        hashed: &str,
        address: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Caller, AuthFailure> {
        let token = self
            .store
            .api_token_by_hash(hashed)
            .await?
            .ok_or_else(|| AuthFailure::Invalid("invalid or revoked API token".into()))?;
        if token.expires_at.is_some_and(|at| now >= at) {
            return Err(AuthFailure::Ended("the API token has expired".into()));
        }
        let role = self
            .store
            .roles()
            .await?
            .into_iter()
            .find(|r| r.name == token.role);
        let mut rights = role
            .as_ref()
            .map(|r| roles::rights_of(std::slice::from_ref(r)))
            .unwrap_or_default();
        let name = match &token.admin_id {
            Some(admin_id) => {
                let admin = self.store.admin_by_id(admin_id).await?.ok_or_else(|| {
                    AuthFailure::Ended("the token's admin no longer exists".into())
                })?;
                if admin.disabled_at.is_some() {
                    return Err(AuthFailure::Ended("the token's admin is disabled".into()));
                }
                // A token never grants more than its admin holds now.
                let (held, _) = self.store.roles_of_admin(admin_id).await?;
                let admin_rights = roles::rights_of(&held);
                rights.retain(|r| admin_rights.contains(r));
                admin.name
            }
            None => format!("token:{}", token.name),
        };
        if self
            .store
            .mark_api_token_used(&token.id, now, address, TOKEN_USE_EVENT_SECS)
            .await?
        {
            self.store
                .record(
                    NewEvent::new(
                        kinds::AUTH_TOKEN_USED,
                        format!("API token {:?} used", token.name),
                    )
                    .actor(&name)
                    .data(json!({
                        "token_id": token.id, "token": token.name, "role": token.role,
                        "address": address,
                    })),
                )
                .await?;
        }
        Ok(Caller {
            identity: AdminIdentity { name },
            kind: CallerKind::Token { id: token.id },
            admin_id: token.admin_id,
            rights,
            roles: vec![token.role],
            restriction: None,
        })
    }

    /// Records that an authenticated caller was refused for lack of a right.
    pub async fn record_denied(&self, caller: &Caller, method: &str, route: &str, right: &str) {
        let _ = self
            .store
            .record(
                NewEvent::new(
                    kinds::AUTH_DENIED,
                    format!("{method} {route} refused: needs {right}"),
                )
                .actor(caller.name())
                .data(json!({ "method": method, "route": route, "right": right })),
            )
            .await;
    }

    // ---- login ---------------------------------------------------------------

    pub async fn login(
        &self,
        req: LoginRequest,
        address: Option<&str>,
        user_agent: Option<&str>,
    ) -> Result<LoginOutcome, LoginError> {
        let now = Utc::now();
        if let Some(ticket) = req.ticket.as_deref() {
            return self.finish_login(ticket, &req, address, now).await;
        }
        let (Some(username), Some(password)) = (req.username.as_deref(), req.password.as_deref())
        else {
            return Err(LoginError::Refused(
                "a login needs username and password (or a ticket and a code)".into(),
            ));
        };
        let username: String = username.trim().chars().take(64).collect();
        let generic = || LoginError::Refused("wrong username or password".into());
        let Some(admin) = self.store.admin_by_name(&username).await? else {
            // As long as a real check, so timing tells nothing.
            password::verify(password.to_owned(), password::dummy_hash().to_owned()).await;
            self.record_failure(&username, address, "unknown account", None)
                .await?;
            return Err(generic());
        };
        if let Some(until) = admin.locked_until.filter(|u| *u > now) {
            self.record_failure(&username, address, "account locked", None)
                .await?;
            return Err(LoginError::Locked((until - now).num_seconds().max(1)));
        }
        if !password::verify(password.to_owned(), admin.password_hash.clone()).await {
            let (failures, locked) = self
                .store
                .admin_login_failed(&admin.id, now, self.settings.policy.lockout)
                .await?;
            self.record_failure(
                &username,
                address,
                "wrong password",
                Some(json!({ "failures": failures, "locked_until": locked })),
            )
            .await?;
            return Err(generic());
        }
        if admin.disabled_at.is_some() {
            self.record_failure(&username, address, "account disabled", None)
                .await?;
            return Err(LoginError::Refused("this account is disabled".into()));
        }
        let (held, _) = self.store.roles_of_admin(&admin.id).await?;
        let critical = held.iter().any(|r| r.critical);
        let kind = if req.cookie { "cookie" } else { "bearer" };
        if admin.totp_secret_sealed.is_some() {
            if req.totp.is_none() && req.recovery_code.is_none() {
                // Password right, second factor awaited: a ticket for it.
                let ticket = random_secret("mdmt_");
                let row = SessionRow {
                    id: uuid::Uuid::new_v4().to_string(),
                    admin_id: admin.id.clone(),
                    admin_name: admin.name.clone(),
                    state: "pending_mfa".into(),
                    kind: kind.into(),
                    csrf_hash: None,
                    mfa: false,
                    created_at: now,
                    last_seen_at: now,
                    idle_timeout_secs: self.settings.mfa_wait.num_seconds() as i32,
                    expires_at: now + self.settings.mfa_wait,
                    address: address.map(str::to_owned),
                    user_agent: user_agent.map(|u| u.chars().take(255).collect()),
                    revoked_at: None,
                };
                self.store.create_session(row, &hash_token(&ticket)).await?;
                return Ok(LoginOutcome {
                    mfa_required: true,
                    ticket: Some(ticket),
                    token: None,
                    cookie_token: None,
                    csrf_token: None,
                    session: None,
                    must_change_password: false,
                    mfa_enrolment_required: false,
                });
            }
            self.second_factor(&admin, &req, address, now).await?;
        }
        let mfa = admin.totp_secret_sealed.is_some();
        let token = random_secret(SESSION_PREFIX);
        let csrf = req.cookie.then(|| random_secret("csrf_"));
        let row = SessionRow {
            id: uuid::Uuid::new_v4().to_string(),
            admin_id: admin.id.clone(),
            admin_name: admin.name.clone(),
            state: "active".into(),
            kind: kind.into(),
            csrf_hash: csrf.as_deref().map(hash_token),
            mfa,
            created_at: now,
            last_seen_at: now,
            idle_timeout_secs: self.settings.idle_timeout.num_seconds() as i32,
            expires_at: now + self.settings.session_lifetime,
            address: address.map(str::to_owned),
            user_agent: user_agent.map(|u| u.chars().take(255).collect()),
            revoked_at: None,
        };
        self.store
            .create_session(row.clone(), &hash_token(&token))
            .await?;
        self.logged_in(&admin, &row, address, now).await?;
        Ok(self.outcome(&admin, &row, token, csrf, critical, now))
    }

    fn outcome(
        &self,
        admin: &AdminRow,
        row: &SessionRow,
        token: String,
        csrf: Option<String>,
        critical: bool,
        now: DateTime<Utc>,
    ) -> LoginOutcome {
        let cookie = row.kind == "cookie";
        LoginOutcome {
            mfa_required: false,
            ticket: None,
            token: (!cookie).then(|| token.clone()),
            cookie_token: cookie.then_some(token),
            csrf_token: csrf,
            session: Some(SessionView::from(row)),
            must_change_password: admin.must_change_password
                || self.settings.policy.expired(admin.password_changed_at, now),
            mfa_enrolment_required: critical && admin.totp_secret_sealed.is_none(),
        }
    }

    async fn logged_in(
        &self,
        admin: &AdminRow,
        row: &SessionRow,
        address: Option<&str>,
        now: DateTime<Utc>,
    ) -> ServiceResult<()> {
        self.store
            .admin_login_succeeded(&admin.id, now, address)
            .await?;
        self.store
            .record(
                NewEvent::new(kinds::AUTH_LOGIN, format!("{} logged in", admin.name))
                    .actor(&admin.name)
                    .data(json!({
                        "session_id": row.id, "kind": row.kind, "mfa": row.mfa,
                        "address": address,
                    })),
            )
            .await?;
        Ok(())
    }

    async fn finish_login(
        &self,
        ticket: &str,
        req: &LoginRequest,
        address: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<LoginOutcome, LoginError> {
        let refused =
            || LoginError::Refused("invalid or expired login ticket: log in again".into());
        let session = self
            .store
            .session_by_hash(&hash_token(ticket))
            .await?
            .filter(|s| s.state == "pending_mfa" && now < s.expires_at)
            .ok_or_else(refused)?;
        let admin = self
            .store
            .admin_by_id(&session.admin_id)
            .await?
            .ok_or_else(refused)?;
        if admin.disabled_at.is_some() {
            return Err(LoginError::Refused("this account is disabled".into()));
        }
        if let Some(until) = admin.locked_until.filter(|u| *u > now) {
            return Err(LoginError::Locked((until - now).num_seconds().max(1)));
        }
        if req.totp.is_none() && req.recovery_code.is_none() {
            return Err(LoginError::Refused(
                "the ticket needs a code: totp or recovery_code".into(),
            ));
        }
        self.second_factor(&admin, req, address, now).await?;
        // The ticket is used once: of two uses, one revokes it.
        if self
            .store
            .revoke_sessions(Some(&admin.id), Some(&session.id), now)
            .await?
            == 0
        {
            return Err(refused());
        }
        let token = random_secret(SESSION_PREFIX);
        let csrf = (session.kind == "cookie").then(|| random_secret("csrf_"));
        let row = SessionRow {
            id: uuid::Uuid::new_v4().to_string(),
            state: "active".into(),
            mfa: true,
            created_at: now,
            last_seen_at: now,
            idle_timeout_secs: self.settings.idle_timeout.num_seconds() as i32,
            expires_at: now + self.settings.session_lifetime,
            csrf_hash: csrf.as_deref().map(hash_token),
            revoked_at: None,
            ..session
        };
        self.store
            .create_session(row.clone(), &hash_token(&token))
            .await?;
        let (held, _) = self.store.roles_of_admin(&admin.id).await?;
        let critical = held.iter().any(|r| r.critical);
        self.logged_in(&admin, &row, address, now).await?;
        Ok(self.outcome(&admin, &row, token, csrf, critical, now))
    }

    /// Checks the TOTP code or recovery code of `req`; a wrong one counts as a failed
    /// login (the lockout applies) and is an auth.mfa_failed event.
    async fn second_factor(
        &self,
        admin: &AdminRow,
        req: &LoginRequest,
        address: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<(), LoginError> {
        let ok = if let Some(code) = req.totp.as_deref() {
            let secret = self.open_totp(admin)?;
            match totp::check(&secret, code, now.timestamp().max(0) as u64) {
                Some(step) => self.store.use_totp_step(&admin.id, step).await?,
                None => false,
            }
        } else if let Some(code) = req.recovery_code.as_deref() {
            let used = self
                .store
                .use_recovery_code(&admin.id, &totp::recovery_hash(code), now)
                .await?;
            if used {
                let left = self.store.recovery_codes_left(&admin.id).await?;
                self.store
                    .record(
                        NewEvent::new(
                            kinds::AUTH_RECOVERY_CODE_USED,
                            format!("{} used a recovery code ({left} left)", admin.name),
                        )
                        .actor(&admin.name)
                        .data(json!({ "left": left, "address": address })),
                    )
                    .await?;
            }
            used
        } else {
            false
        };
        if ok {
            return Ok(());
        }
        let (failures, locked) = self
            .store
            .admin_login_failed(&admin.id, now, self.settings.policy.lockout)
            .await?;
        self.store
            .record(
                NewEvent::new(
                    kinds::AUTH_MFA_FAILED,
                    format!("second factor of {} refused", admin.name),
                )
                .actor(&admin.name)
                .data(json!({
                    "address": address, "failures": failures, "locked_until": locked,
                    "method": if req.totp.is_some() { "totp" } else { "recovery_code" },
                })),
            )
            .await?;
        Err(LoginError::Refused("wrong or already used code".into()))
    }

    async fn record_failure(
        &self,
        username: &str,
        address: Option<&str>,
        reason: &str,
        extra: Option<serde_json::Value>,
    ) -> ServiceResult<()> {
        let mut data = json!({ "username": username, "reason": reason, "address": address });
        if let (Some(serde_json::Value::Object(extra)), Some(map)) = (extra, data.as_object_mut()) {
            map.extend(extra);
        }
        self.store
            .record(
                NewEvent::new(
                    kinds::AUTH_LOGIN_FAILED,
                    format!("login of {username:?} refused: {reason}"),
                )
                .actor(username)
                .data(data),
            )
            .await?;
        Ok(())
    }

    fn open_totp(&self, admin: &AdminRow) -> ServiceResult<Vec<u8>> {
        let sealed = admin
            .totp_secret_sealed
            .as_deref()
            .ok_or_else(|| ServiceError::BadRequest("no second factor enrolled".into()))?;
        self.sealer
            .open(TOTP_SEAL_PURPOSE, &admin.id, sealed)
            .map_err(|e| ServiceError::Internal(format!("TOTP secret of {}: {e}", admin.name)))
    }

    pub async fn logout(&self, caller: &Caller) -> ServiceResult<()> {
        if let (CallerKind::Session { id, .. }, Some(admin_id)) = (&caller.kind, &caller.admin_id) {
            self.store
                .revoke_sessions(Some(admin_id), Some(id), Utc::now())
                .await?;
            self.store
                .record(
                    NewEvent::new(kinds::AUTH_LOGOUT, format!("{} logged out", caller.name()))
                        .actor(caller.name())
                        .data(json!({ "session_id": id })),
                )
                .await?;
            return Ok(());
        }
        Err(ServiceError::Forbidden(
            "only a session logs out; an API token is revoked (DELETE /api/v1/tokens/{id})".into(),
        ))
    }

    /// Who the caller is: for `GET /session`.
    /// The console language the admin chose (None: not chosen, or not an account).
    pub async fn language(&self, caller: &Caller) -> ServiceResult<Option<String>> {
        let Some(id) = caller.admin_id.as_deref() else {
            return Ok(None);
        };
        Ok(self.store.admin_by_id(id).await?.and_then(|a| a.language))
    }

    /// Remembers the console language an admin chose (one of `languages`).
    pub async fn set_language(
        &self,
        caller: &Caller,
        language: &str,
        languages: &[&str],
    ) -> ServiceResult<()> {
        if !languages.contains(&language) {
            return Err(ServiceError::BadRequest(format!(
                "unknown language {language:?}: one of {}",
                languages.join(", ")
            )));
        }
        let id = caller.admin_id.as_deref().ok_or_else(|| {
            ServiceError::Forbidden("only an admin account has a language".into())
        })?;
        Ok(self.store.set_admin_language(id, language).await?)
    }

    pub async fn whoami(&self, caller: &Caller) -> ServiceResult<serde_json::Value> {
        let admin = match &caller.admin_id {
            Some(id) => self.store.admin_by_id(id).await?,
            None => None,
        };
        let session = match &caller.kind {
            CallerKind::Session { id, .. } => self
                .store
                .sessions(caller.admin_id.as_deref(), Utc::now())
                .await?
                .into_iter()
                .find(|s| &s.id == id)
                .map(|s| SessionView::from(&s)),
            _ => None,
        };
        Ok(json!({
            "name": caller.name(),
            "kind": match caller.kind {
                CallerKind::Bootstrap => "bootstrap",
                CallerKind::Session { cookie: true, .. } => "cookie_session",
                CallerKind::Session { .. } => "session",
                CallerKind::Token { .. } => "token",
            },
            "display_name": admin.as_ref().map(|a| a.display_name.clone()),
            "roles": caller.roles,
            "rights": caller.rights,
            "restriction": caller.restriction,
            "restriction_message": caller.restriction.map(|r| r.message()),
            "mfa_enabled": admin.as_ref().map(|a| a.totp_secret_sealed.is_some()),
            "password_expires_at": admin.as_ref().map(|a| a.password_changed_at + Duration::days(self.settings.policy.max_age_days)),
            "session": session,
        }))
    }

    // ---- accounts ------------------------------------------------------------

    /// Refuses to hand out rights the caller does not hold itself (through a group,
    /// a role or a role's grant): no one gives more than it has.
    fn no_escalation(&self, caller: &Caller, rights: BTreeSet<String>) -> ServiceResult<()> {
        match rights.iter().find(|r| !caller.has(r)) {
            Some(missing) => Err(ServiceError::Forbidden(format!(
                "this would grant {missing}, which you do not hold yourself"
            ))),
            None => Ok(()),
        }
    }

    /// The rights the roles of these admin groups grant.
    async fn rights_of_groups(&self, groups: &[String]) -> ServiceResult<BTreeSet<String>> {
        let all_roles = self.store.roles().await?;
        let mut held = Vec::new();
        for g in self.store.admin_groups().await? {
            if groups.contains(&g.name) {
                held.extend(
                    all_roles
                        .iter()
                        .filter(|r| g.roles.contains(&r.name))
                        .cloned(),
                );
            }
        }
        Ok(roles::rights_of(&held))
    }

    async fn rights_of_roles(&self, names: &[String]) -> ServiceResult<BTreeSet<String>> {
        let held: Vec<RoleRow> = self
            .store
            .roles()
            .await?
            .into_iter()
            .filter(|r| names.contains(&r.name))
            .collect();
        Ok(roles::rights_of(&held))
    }

    /// An admin created through the API: into groups whose rights the caller holds.
    pub async fn create_admin_as(
        &self,
        caller: &Caller,
        new: NewAdmin,
    ) -> ServiceResult<AdminView> {
        let rights = self.rights_of_groups(&new.groups).await?;
        self.no_escalation(caller, rights)?;
        self.create_admin(caller.name(), new).await
    }

    pub async fn create_admin(&self, actor: &str, new: NewAdmin) -> ServiceResult<AdminView> {
        let name = new.name.trim().to_owned();
        valid_admin_name(&name).map_err(ServiceError::BadRequest)?;
        let display_name = new.display_name.trim().to_owned();
        if display_name.is_empty() || display_name.len() > 255 {
            return Err(ServiceError::BadRequest(
                "display_name: the person's name, 1 to 255 characters".into(),
            ));
        }
        let problems = self
            .settings
            .policy
            .problems(&name, &display_name, &new.password);
        if !problems.is_empty() {
            return Err(ServiceError::BadRequest(problems.join("; ")));
        }
        let hash = password::hash(new.password)
            .await
            .map_err(ServiceError::Internal)?;
        let now = Utc::now();
        let row = AdminRow {
            id: uuid::Uuid::new_v4().to_string(),
            name: name.clone(),
            display_name,
            email: new.email.filter(|e| !e.trim().is_empty()),
            password_hash: hash,
            password_changed_at: now,
            must_change_password: new.temporary,
            failed_logins: 0,
            locked_until: None,
            last_failed_at: None,
            last_login_at: None,
            last_login_address: None,
            totp_secret_sealed: None,
            totp_pending_sealed: None,
            totp_enabled_at: None,
            totp_last_step: None,
            disabled_at: None,
            disabled_reason: None,
            created_at: now,
            created_by: actor.to_owned(),
            updated_at: now,
            language: None,
        };
        self.store
            .create_admin(
                row,
                &new.groups,
                NewEvent::new(
                    kinds::ADMIN_ACCOUNT_CREATED,
                    format!("admin account {name} created"),
                )
                .actor(actor)
                .data(json!({ "name": name, "groups": new.groups, "temporary_password": new.temporary })),
            )
            .await?;
        self.admin(&name).await
    }

    async fn find(&self, name: &str) -> ServiceResult<AdminRow> {
        self.store
            .admin_by_name(name)
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("no admin named {name:?}")))
    }

    async fn view(&self, a: AdminRow) -> ServiceResult<AdminView> {
        let (held, groups) = self.store.roles_of_admin(&a.id).await?;
        let left = if a.totp_secret_sealed.is_some() {
            self.store.recovery_codes_left(&a.id).await?
        } else {
            0
        };
        Ok(AdminView {
            groups,
            critical: held.iter().any(|r| r.critical),
            roles: held.into_iter().map(|r| r.name).collect(),
            mfa_enabled: a.totp_secret_sealed.is_some(),
            recovery_codes_left: left,
            password_expires_at: a.password_changed_at
                + Duration::days(self.settings.policy.max_age_days),
            password_changed_at: a.password_changed_at,
            must_change_password: a.must_change_password,
            locked_until: a.locked_until.filter(|u| *u > Utc::now()),
            failed_logins: a.failed_logins,
            last_login_at: a.last_login_at,
            last_login_address: a.last_login_address,
            disabled: a.disabled_at.is_some(),
            disabled_at: a.disabled_at,
            disabled_reason: a.disabled_reason,
            created_at: a.created_at,
            created_by: a.created_by,
            id: a.id,
            name: a.name,
            display_name: a.display_name,
            email: a.email,
        })
    }

    pub async fn admin(&self, name: &str) -> ServiceResult<AdminView> {
        let a = self.find(name).await?;
        self.view(a).await
    }

    pub async fn admins(&self) -> ServiceResult<Vec<AdminView>> {
        let mut out = Vec::new();
        for a in self.store.admins().await? {
            out.push(self.view(a).await?);
        }
        Ok(out)
    }

    /// Disables an admin: refused from its next request on, on every instance; its
    /// sessions and tokens revoked, its group memberships removed (the policy).
    pub async fn disable(
        &self,
        actor: &str,
        name: &str,
        reason: Option<String>,
    ) -> ServiceResult<AdminView> {
        let a = self.find(name).await?;
        if actor == a.name {
            return Err(ServiceError::Conflict(
                "an admin cannot disable its own account".into(),
            ));
        }
        let (_, groups) = self.store.roles_of_admin(&a.id).await?;
        let reason = reason
            .map(|r| r.trim().chars().take(500).collect::<String>())
            .filter(|r| !r.is_empty());
        self.store
            .set_admin_disabled(
                &a.id,
                Some(Utc::now()),
                reason.clone(),
                NewEvent::new(
                    kinds::ADMIN_ACCOUNT_DISABLED,
                    format!("admin account {name} disabled"),
                )
                .actor(actor)
                .severity(crate::domain::event::severity::LOW)
                .data(json!({ "name": name, "reason": reason, "removed_from_groups": groups })),
            )
            .await?;
        self.admin(name).await
    }

    pub async fn enable(&self, actor: &str, name: &str) -> ServiceResult<AdminView> {
        let a = self.find(name).await?;
        self.store
            .set_admin_disabled(
                &a.id,
                None,
                None,
                NewEvent::new(
                    kinds::ADMIN_ACCOUNT_ENABLED,
                    format!("admin account {name} enabled"),
                )
                .actor(actor)
                .data(json!({ "name": name })),
            )
            .await?;
        self.admin(name).await
    }

    /// Sets another admin's password (a reset: temporary unless said otherwise, so it
    /// must change at the next login).
    pub async fn reset_password(
        &self,
        actor: &str,
        name: &str,
        new: String,
        temporary: bool,
    ) -> ServiceResult<AdminView> {
        let a = self.find(name).await?;
        self.set_password(&a, new, temporary, kinds::ADMIN_PASSWORD_RESET, actor)
            .await?;
        self.admin(name).await
    }

    /// An admin changes its own password, proving the current one.
    pub async fn change_own_password(
        &self,
        caller: &Caller,
        current: &str,
        new: String,
    ) -> ServiceResult<()> {
        let admin_id = caller.admin_id.as_deref().ok_or_else(|| {
            ServiceError::Forbidden("only an admin account has a password".into())
        })?;
        let a = self
            .store
            .admin_by_id(admin_id)
            .await?
            .ok_or_else(|| ServiceError::NotFound("no such admin".into()))?;
        if !password::verify(current.to_owned(), a.password_hash.clone()).await {
            self.store
                .admin_login_failed(&a.id, Utc::now(), self.settings.policy.lockout)
                .await?;
            return Err(ServiceError::Forbidden(
                "the current password is wrong".into(),
            ));
        }
        self.set_password(&a, new, false, kinds::ADMIN_PASSWORD_CHANGED, &a.name)
            .await
    }

    async fn set_password(
        &self,
        a: &AdminRow,
        new: String,
        must_change: bool,
        kind: &'static str,
        actor: &str,
    ) -> ServiceResult<()> {
        let problems = self
            .settings
            .policy
            .problems(&a.name, &a.display_name, &new);
        if !problems.is_empty() {
            return Err(ServiceError::BadRequest(problems.join("; ")));
        }
        let mut earlier = self
            .store
            .password_history(&a.id, self.settings.policy.history)
            .await?;
        earlier.push(a.password_hash.clone());
        if password::matches_any(new.clone(), earlier).await {
            return Err(ServiceError::BadRequest(format!(
                "a password must differ from the current one and the last {}",
                self.settings.policy.history
            )));
        }
        let hash = password::hash(new).await.map_err(ServiceError::Internal)?;
        let now = Utc::now();
        self.store
            .set_admin_password(
                &a.id,
                &hash,
                now,
                must_change,
                // The history holds the earlier passwords; the current one is in the
                // account row.
                self.settings.policy.history.saturating_sub(1).max(1),
                NewEvent::new(kind, format!("password of {} set", a.name))
                    .actor(actor)
                    .data(json!({ "name": a.name, "must_change": must_change })),
            )
            .await?;
        Ok(())
    }

    pub async fn totp_begin(&self, caller: &Caller) -> ServiceResult<TotpEnrolment> {
        let admin_id = caller.admin_id.as_deref().ok_or_else(|| {
            ServiceError::Forbidden("only an admin account has a second factor".into())
        })?;
        let a = self
            .store
            .admin_by_id(admin_id)
            .await?
            .ok_or_else(|| ServiceError::NotFound("no such admin".into()))?;
        if a.totp_secret_sealed.is_some() {
            return Err(ServiceError::Conflict(
                "a second factor is enrolled already; an admin with admins.manage can reset it (DELETE /api/v1/admins/{name}/totp)".into(),
            ));
        }
        let secret = totp::new_secret();
        let sealed = self
            .sealer
            .seal(TOTP_SEAL_PURPOSE, &a.id, &secret)
            .map_err(|e| ServiceError::Internal(e.to_string()))?;
        self.store.set_totp_pending(&a.id, Some(sealed)).await?;
        let uri = totp::otpauth_uri(&secret, &self.settings.issuer, &a.name)
            .map_err(ServiceError::Internal)?;
        let qr_svg =
            enrollment::qr::svg(&uri).map_err(|e| ServiceError::Internal(e.to_string()))?;
        Ok(TotpEnrolment {
            otpauth_uri: uri,
            secret: totp::base32(&secret),
            qr_svg,
        })
    }

    /// Confirms the enrolment with a first code; returns the recovery codes (shown
    /// this once).
    pub async fn totp_confirm(&self, caller: &Caller, code: &str) -> ServiceResult<Vec<String>> {
        let admin_id = caller.admin_id.as_deref().ok_or_else(|| {
            ServiceError::Forbidden("only an admin account has a second factor".into())
        })?;
        let a = self
            .store
            .admin_by_id(admin_id)
            .await?
            .ok_or_else(|| ServiceError::NotFound("no such admin".into()))?;
        let sealed = a.totp_pending_sealed.clone().ok_or_else(|| {
            ServiceError::Conflict(
                "no enrolment waits for a code: POST /api/v1/session/totp first".into(),
            )
        })?;
        let secret = self
            .sealer
            .open(TOTP_SEAL_PURPOSE, &a.id, &sealed)
            .map_err(|e| ServiceError::Internal(e.to_string()))?;
        let now = Utc::now();
        let Some(step) = totp::check(&secret, code, now.timestamp().max(0) as u64) else {
            self.store
                .record(
                    NewEvent::new(
                        kinds::AUTH_MFA_FAILED,
                        format!("TOTP enrolment of {} refused a code", a.name),
                    )
                    .actor(&a.name)
                    .data(json!({ "enrolment": true })),
                )
                .await?;
            return Err(ServiceError::BadRequest(
                "wrong code: check the authenticator's clock and try the next code".into(),
            ));
        };
        let codes = totp::recovery_codes();
        let hashes: Vec<String> = codes.iter().map(|c| totp::recovery_hash(c)).collect();
        self.store
            .enable_totp(
                &a.id,
                sealed,
                step,
                &hashes,
                now,
                NewEvent::new(
                    kinds::ADMIN_MFA_ENROLLED,
                    format!("{} enrolled a second factor", a.name),
                )
                .actor(&a.name)
                .data(json!({ "method": "totp", "recovery_codes": codes.len() })),
            )
            .await?;
        if let CallerKind::Session { id, .. } = &caller.kind {
            self.store.set_session_mfa(id).await?;
        }
        Ok(codes)
    }

    pub async fn reset_totp(&self, actor: &str, name: &str) -> ServiceResult<AdminView> {
        let a = self.find(name).await?;
        self.store
            .reset_totp(
                &a.id,
                NewEvent::new(
                    kinds::ADMIN_MFA_RESET,
                    format!("second factor of {name} reset"),
                )
                .actor(actor)
                .severity(crate::domain::event::severity::LOW)
                .data(json!({ "name": name })),
            )
            .await?;
        // Its sessions proved a factor it no longer has.
        self.store
            .revoke_sessions(Some(&a.id), None, Utc::now())
            .await?;
        self.admin(name).await
    }

    // ---- sessions ------------------------------------------------------------

    /// Sessions: the caller's own, or (with admins.read) an admin's or everyone's.
    pub async fn sessions(
        &self,
        caller: &Caller,
        of: Option<&str>,
    ) -> ServiceResult<Vec<SessionView>> {
        let admin_id = match of {
            Some("all") => {
                self.need(caller, "admins.read")?;
                None
            }
            Some(name) => {
                let a = self.find(name).await?;
                if Some(&a.id) != caller.admin_id.as_ref() {
                    self.need(caller, "admins.read")?;
                }
                Some(a.id)
            }
            // A service account or the bootstrap token has no sessions of its own:
            // its list is empty (?admin=<name> or ?admin=all lists others').
            None => match caller.admin_id.clone() {
                Some(id) => Some(id),
                None => return Ok(Vec::new()),
            },
        };
        Ok(self
            .store
            .sessions(admin_id.as_deref(), Utc::now())
            .await?
            .into_iter()
            .filter(|s| s.state == "active")
            .map(|s| SessionView::from(&s))
            .collect())
    }

    /// Revokes a session: one's own, or anyone's with admins.manage.
    pub async fn revoke_session(&self, caller: &Caller, id: &str) -> ServiceResult<()> {
        let now = Utc::now();
        let own = match &caller.admin_id {
            Some(admin_id) => {
                self.store
                    .revoke_sessions(Some(admin_id), Some(id), now)
                    .await?
            }
            None => 0,
        };
        let revoked = if own > 0 {
            own
        } else {
            if !caller.has("admins.manage") {
                return Err(ServiceError::NotFound(format!("no session {id} of yours")));
            }
            // Any admin's: the store needs the admin, found through the list.
            let session = self
                .store
                .sessions(None, now)
                .await?
                .into_iter()
                .find(|s| s.id == id)
                .ok_or_else(|| ServiceError::NotFound(format!("no active session {id}")))?;
            self.store
                .revoke_sessions(Some(&session.admin_id), Some(id), now)
                .await?
        };
        if revoked > 0 {
            self.store
                .record(
                    NewEvent::new(
                        kinds::ADMIN_SESSION_REVOKED,
                        format!("session {id} revoked"),
                    )
                    .actor(caller.name())
                    .data(json!({ "session_id": id })),
                )
                .await?;
        }
        Ok(())
    }

    fn need(&self, caller: &Caller, right: &str) -> ServiceResult<()> {
        if caller.has(right) {
            Ok(())
        } else {
            Err(ServiceError::Forbidden(format!(
                "this needs the right {right}, which your roles do not grant"
            )))
        }
    }

    // ---- API tokens ----------------------------------------------------------

    /// Creates a token: the caller's own (a role it holds), or a service account's
    /// (admins.manage). Returns the row and the secret, shown once.
    pub async fn create_token(
        &self,
        caller: &Caller,
        req: NewToken,
    ) -> ServiceResult<(ApiTokenRow, String)> {
        let name = req.name.trim().to_owned();
        if name.is_empty() || name.len() > 255 || name.contains(':') {
            return Err(ServiceError::BadRequest(
                "a token needs a name of 1 to 255 characters without ':' (who or what uses it)"
                    .into(),
            ));
        }
        let role = self
            .store
            .roles()
            .await?
            .into_iter()
            .find(|r| r.name == req.role)
            .ok_or_else(|| ServiceError::BadRequest(format!("no role {:?}", req.role)))?;
        let role_rights = roles::rights_of(std::slice::from_ref(&role));
        // A token never carries more than its creator holds.
        if let Some(missing) = role_rights.iter().find(|r| !caller.has(r)) {
            return Err(ServiceError::Forbidden(format!(
                "role {} grants {missing}, which you do not hold",
                role.name
            )));
        }
        let admin_id = if req.service_account {
            self.need(caller, "admins.manage")?;
            None
        } else {
            Some(caller.admin_id.clone().ok_or_else(|| {
                ServiceError::BadRequest(
                    "this caller is no admin account: create a service account's token (service_account: true)".into(),
                )
            })?)
        };
        if !caller.is_session() && !caller.has("admins.manage") {
            return Err(ServiceError::Forbidden(
                "tokens are created from a login session (mdm login), not with another token"
                    .into(),
            ));
        }
        let days = req
            .expires_in_days
            .unwrap_or(self.settings.token_default_days);
        if !(1..=self.settings.token_max_days).contains(&days) {
            return Err(ServiceError::BadRequest(format!(
                "expires_in_days must be 1 to {}",
                self.settings.token_max_days
            )));
        }
        self.issue_token(&name, admin_id, &role.name, days, caller.name())
            .await
    }

    /// Writes a token (also `mdm token create` on the server host).
    pub async fn issue_token(
        &self,
        name: &str,
        admin_id: Option<String>,
        role: &str,
        days: i64,
        actor: &str,
    ) -> ServiceResult<(ApiTokenRow, String)> {
        let now = Utc::now();
        let secret = generate_token();
        let row = ApiTokenRow {
            id: uuid::Uuid::new_v4().to_string(),
            name: name.to_owned(),
            admin_id,
            admin_name: None,
            role: role.to_owned(),
            created_at: now,
            created_by: Some(actor.to_owned()),
            expires_at: Some(now + Duration::days(days)),
            last_used_at: None,
            last_used_address: None,
            revoked_at: None,
        };
        self.store
            .create_api_token(
                row.clone(),
                &hash_token(&secret),
                NewEvent::new(
                    event_kinds::ADMIN_TOKEN_CREATED,
                    format!("admin token {name:?} created"),
                )
                .actor(actor)
                .data(json!({
                    "token_id": row.id, "name": name, "role": role,
                    "service_account": row.admin_id.is_none(), "expires_at": row.expires_at,
                })),
            )
            .await?;
        Ok((row, secret))
    }

    /// Tokens: the caller's own, or all with admins.read.
    pub async fn tokens(&self, caller: &Caller, all: bool) -> ServiceResult<Vec<ApiTokenRow>> {
        if all || caller.admin_id.is_none() {
            self.need(caller, "admins.read")?;
            return Ok(self.store.api_tokens(None).await?);
        }
        Ok(self.store.api_tokens(caller.admin_id.as_deref()).await?)
    }

    pub async fn revoke_token(&self, caller: &Caller, id: &str) -> ServiceResult<()> {
        let now = Utc::now();
        let event = NewEvent::new(
            event_kinds::ADMIN_TOKEN_REVOKED,
            format!("admin token {id} revoked"),
        )
        .actor(caller.name())
        .data(json!({ "token_id": id }));
        let own = match &caller.admin_id {
            Some(admin_id) => {
                self.store
                    .revoke_api_token(id, Some(admin_id), now, event.clone())
                    .await?
            }
            None => false,
        };
        if own {
            return Ok(());
        }
        if !caller.has("admins.manage") {
            return Err(ServiceError::NotFound(format!(
                "no active token {id} of yours"
            )));
        }
        if self.store.revoke_api_token(id, None, now, event).await? {
            Ok(())
        } else {
            Err(ServiceError::NotFound(format!("no active token {id}")))
        }
    }

    // ---- roles and groups ------------------------------------------------------

    pub async fn roles(&self) -> ServiceResult<Vec<RoleRow>> {
        Ok(self.store.roles().await?)
    }

    pub async fn put_role(
        &self,
        caller: &Caller,
        name: &str,
        update: RoleUpdate,
    ) -> ServiceResult<(RoleRow, bool)> {
        let actor = caller.name();
        if !roles::valid_name(name) {
            return Err(ServiceError::BadRequest(
                "a role name has 1 to 64 lower-case letters, digits, '_' or '-'".into(),
            ));
        }
        let description = update.description.trim().to_owned();
        if description.is_empty() {
            return Err(ServiceError::BadRequest(
                "description: who gets this role (the matrix's column)".into(),
            ));
        }
        let rights = roles::validate_rights(&update.rights).map_err(ServiceError::BadRequest)?;
        let wanted = RoleRow {
            name: name.to_owned(),
            description: String::new(),
            rights: rights.clone(),
            critical: false,
            built_in: false,
            updated_at: Utc::now(),
            updated_by: String::new(),
        };
        self.no_escalation(caller, roles::rights_of(&[wanted]))?;
        let before = self
            .store
            .roles()
            .await?
            .into_iter()
            .find(|r| r.name == name);
        if name == "owner" && !rights.iter().any(|r| r == "*") {
            return Err(ServiceError::Conflict(
                "the owner role keeps every right (\"*\"): the server must always have someone who can manage it".into(),
            ));
        }
        let role = RoleRow {
            name: name.to_owned(),
            description,
            rights,
            critical: update.critical,
            built_in: before.as_ref().is_some_and(|b| b.built_in),
            updated_at: Utc::now(),
            updated_by: actor.to_owned(),
        };
        let created = self
            .store
            .put_role(
                role.clone(),
                NewEvent::new(kinds::ADMIN_ROLE_CHANGED, format!("role {name} saved"))
                    .actor(actor)
                    .data(json!({
                        "role": name,
                        "before": before.as_ref().map(|b| json!({ "rights": b.rights, "critical": b.critical, "description": b.description })),
                        "after": { "rights": role.rights, "critical": role.critical, "description": role.description },
                    })),
            )
            .await?;
        Ok((role, created))
    }

    pub async fn delete_role(&self, actor: &str, name: &str) -> ServiceResult<()> {
        if !self
            .store
            .delete_role(
                name,
                NewEvent::new(kinds::ADMIN_ROLE_DELETED, format!("role {name} deleted"))
                    .actor(actor)
                    .data(json!({ "role": name })),
            )
            .await?
        {
            return Err(ServiceError::NotFound(format!("no role {name:?}")));
        }
        Ok(())
    }

    pub async fn groups(&self) -> ServiceResult<Vec<crate::storage::AdminGroupRow>> {
        Ok(self.store.admin_groups().await?)
    }

    pub async fn put_group(
        &self,
        actor: &str,
        name: &str,
        description: &str,
    ) -> ServiceResult<bool> {
        if !roles::valid_name(name) {
            return Err(ServiceError::BadRequest(
                "a group name has 1 to 64 lower-case letters, digits, '_' or '-'".into(),
            ));
        }
        Ok(self
            .store
            .put_admin_group(
                name,
                description.trim(),
                Utc::now(),
                NewEvent::new(
                    kinds::ADMIN_GROUP_CHANGED,
                    format!("admin group {name} saved"),
                )
                .actor(actor)
                .data(json!({ "group": name, "description": description })),
            )
            .await?)
    }

    pub async fn delete_group(&self, actor: &str, name: &str) -> ServiceResult<()> {
        if !self
            .store
            .delete_admin_group(
                name,
                NewEvent::new(
                    kinds::ADMIN_GROUP_DELETED,
                    format!("admin group {name} deleted"),
                )
                .actor(actor)
                .data(json!({ "group": name })),
            )
            .await?
        {
            return Err(ServiceError::NotFound(format!("no admin group {name:?}")));
        }
        Ok(())
    }

    /// Members and roles of a group. Granting a role needs roles.manage (checked by the
    /// caller's route); members need admins.manage.
    #[allow(clippy::too_many_arguments)]
    pub async fn change_group(
        &self,
        caller: &Caller,
        name: &str,
        add_members: Vec<String>,
        remove_members: Vec<String>,
        add_roles: Vec<String>,
        remove_roles: Vec<String>,
    ) -> ServiceResult<()> {
        if !(add_members.is_empty() && remove_members.is_empty()) {
            self.need(caller, "admins.manage")?;
        }
        if !(add_roles.is_empty() && remove_roles.is_empty()) {
            self.need(caller, "roles.manage")?;
        }
        if !add_members.is_empty() {
            let rights = self.rights_of_groups(&[name.to_owned()]).await?;
            self.no_escalation(caller, rights)?;
        }
        if !add_roles.is_empty() {
            let rights = self.rights_of_roles(&add_roles).await?;
            self.no_escalation(caller, rights)?;
        }
        self.store
            .change_admin_group(
                name,
                &add_members,
                &remove_members,
                &add_roles,
                &remove_roles,
                NewEvent::new(
                    kinds::ADMIN_GROUP_CHANGED,
                    format!("admin group {name} changed"),
                )
                .actor(caller.name())
                .data(json!({
                    "group": name, "add_members": add_members, "remove_members": remove_members,
                    "add_roles": add_roles, "remove_roles": remove_roles,
                })),
            )
            .await?;
        Ok(())
    }

    /// The role matrix: the policy's columns and one row per role.
    pub async fn matrix(&self) -> ServiceResult<serde_json::Value> {
        let all = self.store.roles().await?;
        let groups = self.store.admin_groups().await?;
        let rows: Vec<serde_json::Value> = all
            .iter()
            .zip(roles::matrix_rows(&all))
            .map(|(role, row)| {
                json!({
                    "system_name": row[0], "role_name": row[1], "description": row[2],
                    "rights": roles::rights_of(std::slice::from_ref(role)),
                    "critical": role.critical,
                    "granted_to_groups": groups.iter().filter(|g| g.roles.contains(&role.name)).map(|g| g.name.clone()).collect::<Vec<_>>(),
                    "built_in": role.built_in,
                })
            })
            .collect();
        Ok(json!({
            "system_name": roles::SYSTEM_NAME,
            "columns": roles::MATRIX_COLUMNS,
            "rows": rows,
            "rights": roles::RIGHTS.iter().map(|(r, d)| json!({ "right": r, "allows": d })).collect::<Vec<_>>(),
        }))
    }

    /// The matrix as CSV in the policy's columns (rights space-separated).
    pub async fn matrix_csv(&self) -> ServiceResult<String> {
        let all = self.store.roles().await?;
        let mut w = csv::Writer::from_writer(Vec::new());
        let fail = |e: csv::Error| ServiceError::Internal(e.to_string());
        w.write_record(roles::MATRIX_COLUMNS).map_err(fail)?;
        for row in roles::matrix_rows(&all) {
            w.write_record(&row).map_err(fail)?;
        }
        let bytes = w
            .into_inner()
            .map_err(|e| ServiceError::Internal(e.to_string()))?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    /// The yearly access review: every admin's groups and roles against the matrix,
    /// last login and MFA state, with what deviates from the policy.
    pub async fn access_review(&self) -> ServiceResult<serde_json::Value> {
        let now = Utc::now();
        let mut admins = Vec::new();
        let mut findings = 0;
        for a in self.admins().await? {
            let mut problems = Vec::new();
            if a.disabled && !a.groups.is_empty() {
                problems.push("disabled but still in admin groups".to_owned());
            }
            if !a.disabled && a.critical && !a.mfa_enabled {
                problems.push("holds a critical role without a second factor".to_owned());
            }
            if !a.disabled && a.roles.is_empty() {
                problems.push("active account without any role".to_owned());
            }
            if !a.disabled && a.last_login_at.unwrap_or(a.created_at) < now - Duration::days(90) {
                problems.push("no login for 90 days or more: still needed?".to_owned());
            }
            if !a.disabled && a.password_expires_at < now {
                problems.push("password expired".to_owned());
            }
            findings += problems.len();
            admins.push(json!({
                "name": a.name, "display_name": a.display_name, "disabled": a.disabled,
                "groups": a.groups, "roles": a.roles, "critical": a.critical,
                "mfa_enabled": a.mfa_enabled, "last_login_at": a.last_login_at,
                "password_changed_at": a.password_changed_at, "findings": problems,
            }));
        }
        let tokens: Vec<serde_json::Value> = self
            .store
            .api_tokens(None)
            .await?
            .into_iter()
            .map(|t| {
                let mut problems = Vec::new();
                if t.expires_at.is_none() {
                    problems.push("never expires (created before expiry was required): replace it");
                }
                if t.expires_at.is_some_and(|e| e < now) {
                    problems.push("expired: revoke it");
                }
                findings += problems.len();
                json!({
                    "id": t.id, "name": t.name, "admin": t.admin_name, "role": t.role,
                    "service_account": t.admin_id.is_none(), "expires_at": t.expires_at,
                    "last_used_at": t.last_used_at, "findings": problems,
                })
            })
            .collect();
        Ok(json!({
            "generated_at": now,
            "matrix": self.matrix().await?,
            "admins": admins,
            "tokens": tokens,
            "findings": findings,
        }))
    }
}

/// `mdm admin ...` on the server host builds the service as `serve` does, with the
/// settings of the same options (`ServeConfig::admin`): a password set on the host
/// follows the rules the server enforces.
pub fn service(store: Arc<dyn Storage>, sealer: Sealer, settings: AdminSettings) -> AdminService {
    AdminService::new(store, sealer, settings, None)
}

/// What the HTTP layer holds of this module.
pub struct AdminServices {
    pub accounts: AdminService,
    pub offboarding: Arc<offboarding::OffboardingService>,
    /// The audit chain's HMAC key (derived from the master key), for verification.
    pub audit_key: crate::storage::AuditKey,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_names_identify_a_person_and_hide_privilege() {
        assert!(valid_admin_name("jan.kowalski").is_ok());
        assert!(valid_admin_name("anna-nowak2").is_ok());
        assert!(valid_admin_name("admin").is_err());
        assert!(valid_admin_name("jan.admin").is_err());
        assert!(valid_admin_name("Jan").is_err());
        assert!(valid_admin_name("x").is_err());
        assert!(valid_admin_name("token:x").is_err());
    }
}
