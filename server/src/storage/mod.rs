//! Storage: one trait per concern, implemented once with sea-orm for SQLite and
//! PostgreSQL. Services depend on the traits (`Arc<dyn Storage>`), never on SQL.

mod entities;
mod sql;

pub use sql::SqlStore;

use crate::domain::{
    CommandRecord, CommandStatus, Device, DeviceFilter, Event, EventFilter, NewCommand, NewEvent,
    Page,
};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use profiles::report::DeviceFacts;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Db(sea_orm::DbErr),
    /// The database cannot serve right now; the same request may pass later.
    #[error("database unavailable ({0:?}): {1}")]
    Unavailable(Outage, sea_orm::DbErr),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    NotFound(String),
    /// The database refused a value the caller sent (a NUL character, text longer
    /// than its column): the caller's mistake, not the server's.
    #[error("{0}")]
    InvalidValue(String),
}

/// Why the database cannot serve right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outage {
    /// Not reachable: connection refused or lost, server shutting down, pool exhausted.
    Unreachable,
    /// Locked by another writer past the busy timeout, or a conflict a retry resolves.
    Busy,
    /// The disk holding the database is full.
    Full,
}

/// Every driver error passes here (`?` on a `DbErr`), so outages are recognised in
/// one place whatever statement met them.
impl From<sea_orm::DbErr> for StoreError {
    fn from(e: sea_orm::DbErr) -> Self {
        if let Some(reason) = sql::outage::invalid_value(&e) {
            return StoreError::InvalidValue(reason.into());
        }
        match sql::outage::classify(&e) {
            Some(outage) => StoreError::Unavailable(outage, e),
            None => StoreError::Db(e),
        }
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// What the identity check needs to know about a device, read in one query.
#[derive(Debug, Clone)]
pub struct DeviceIdentityRow {
    pub id: String,
    pub enrolled: bool,
    pub identity_fingerprint: Option<String>,
    pub os_family: String,
    pub last_seen_at: Option<DateTime<Utc>>,
    /// Set once the device's identity was revoked: its certificate speaks no more.
    pub identity_revoked_at: Option<DateTime<Utc>>,
    pub identity_revocation_reason: Option<String>,
    /// Whether the device had a command to send (pending, sent or NotNow'd) when the
    /// row was read, in the same statement; None when not read from the database.
    /// What lets an Idle be answered empty without a second statement when the
    /// queue cannot be remembered (PostgreSQL: docs/protocol.md).
    pub open_commands: Option<bool>,
}

/// Device facts an Authenticate message brings.
#[derive(Debug, Clone, Default)]
pub struct AuthenticateRecord {
    pub udid: String,
    pub serial_number: Option<String>,
    pub imei: Option<String>,
    pub model: Option<String>,
    pub model_name: Option<String>,
    pub product_name: Option<String>,
    pub os_family: String,
    pub os_version: Option<String>,
    pub build_version: Option<String>,
    pub device_name: Option<String>,
    pub topic: Option<String>,
    pub identity_fingerprint: String,
    pub identity_subject: String,
    pub identity_not_after: String,
}

#[derive(Debug, Clone)]
pub struct AuthenticateOutcome {
    pub device_id: String,
    pub was_known: bool,
    /// Set when this Authenticate moved the device to a new certificate: the old one,
    /// now retired (and revoked if our CA issued it).
    pub rebound_from: Option<String>,
    /// The rebind went through on an admin's approval (not a check-out or wipe).
    pub approved: bool,
    /// Set when this Authenticate linked the device to its enrollment (one use).
    pub linked_enrollment: Option<crate::domain::enrollment::Enrollment>,
    pub cancelled_commands: u64,
}

/// What the server may do when an Authenticate presents a certificate that is not the
/// one a known device is bound to.
#[derive(Debug, Clone)]
pub struct BindingRules {
    /// The certificate may move a device that checked out or was wiped without an
    /// admin: true only for a fresh certificate from our own SCEP server (a real
    /// re-enrollment); a certificate from an external CA always needs the approval.
    pub rebind_released: bool,
    /// The enrollment whose SCEP challenge issued this certificate: a device that
    /// binds through it for the first time counts one use (uses count devices, not
    /// certificates) and is linked to it, in the same transaction.
    pub enrollment_id: Option<String>,
    /// When our CA issued the certificate (None for an external CA's): a device whose
    /// identity was revoked binds again only a certificate issued after that.
    pub certificate_issued_at: Option<DateTime<Utc>>,
    pub now: DateTime<Utc>,
}

/// Why an Authenticate was not allowed to bind its certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BindingRefusal {
    /// The certificate already speaks for another device.
    BoundToAnotherDevice { device_id: String },
    /// The certificate was bound once and retired (its device re-enrolled, renewed,
    /// or had its identity revoked).
    Retired { device_id: String },
    /// The device is enrolled with another certificate, has not checked out or been
    /// wiped, and no admin approved a re-enrollment.
    DeviceHeld {
        device_id: String,
        current_fingerprint: Option<String>,
    },
    /// The certificate's enrollment admits no more devices (used up, revoked).
    EnrollmentClosed { message: String },
    /// The device's identity was revoked, and this certificate is not from a new
    /// enrollment (issued before the revocation, a renewal, or an external CA's).
    RevokedNeedsNewEnrollment { device_id: String },
}

#[derive(Debug, Clone, Default)]
pub struct TokenUpdateRecord {
    pub topic: Option<String>,
    pub push_token_hex: Option<String>,
    pub push_magic: Option<String>,
    /// Sealed; `None` keeps the stored one (the device sends it only once).
    pub unlock_token_sealed: Option<Vec<u8>>,
    pub awaiting_configuration: Option<bool>,
}

#[derive(Debug, Clone, Default)]
pub struct UserChannelRecord {
    pub user_id: String,
    pub user_short_name: Option<String>,
    pub user_long_name: Option<String>,
    pub push_token_hex: Option<String>,
    pub push_magic: Option<String>,
}

#[async_trait]
pub trait DeviceStore: Send + Sync {
    async fn identity_by_udid(&self, udid: &str) -> StoreResult<Option<DeviceIdentityRow>>;
    /// Creates or refreshes a device on Authenticate, in one transaction: binds the
    /// certificate to the device (one certificate, one device, for good), clears the
    /// push token and cancels what was queued for the previous enrollment. A device
    /// bound to another certificate moves to this one only as `rules` allow; the old
    /// certificate is then retired (and revoked if ours) and the escrowed secrets go.
    async fn authenticate(
        &self,
        record: AuthenticateRecord,
        rules: BindingRules,
    ) -> StoreResult<Result<AuthenticateOutcome, BindingRefusal>>;
    /// An admin's approval of a re-enrollment with a new certificate, valid until `until`.
    async fn approve_reenrollment(
        &self,
        device_id: &str,
        until: DateTime<Utc>,
        keep_queue: bool,
    ) -> StoreResult<()>;
    /// Returns true when this update completed enrollment (first TokenUpdate).
    async fn token_update(&self, device_id: &str, record: TokenUpdateRecord) -> StoreResult<bool>;
    async fn user_token_update(
        &self,
        device_id: &str,
        record: UserChannelRecord,
    ) -> StoreResult<()>;
    async fn set_bootstrap_token(
        &self,
        device_id: &str,
        sealed: Option<Vec<u8>>,
    ) -> StoreResult<()>;
    /// The device's sealed bootstrap token, if it escrowed one.
    async fn bootstrap_token(&self, device_id: &str) -> StoreResult<Option<Vec<u8>>>;
    /// The sealed unlock tokens of these devices (those that have one), batched.
    async fn unlock_tokens(
        &self,
        device_ids: &[String],
    ) -> StoreResult<std::collections::HashMap<String, Vec<u8>>>;
    /// Moves the last_seen_at of these devices forward to the time given with each
    /// (never back), in batched statements: the device path writes it behind.
    async fn touch_many(&self, seen: Vec<(String, DateTime<Utc>)>) -> StoreResult<()>;
    async fn device(&self, id: &str) -> StoreResult<Option<Device>>;
    /// These devices (those that exist), read in batches.
    async fn devices_by_id(&self, ids: &[String]) -> StoreResult<Vec<Device>>;
    async fn devices(&self, filter: &DeviceFilter) -> StoreResult<Page<Device>>;
    /// The ids (of those given) that exist, with their OS family.
    async fn existing_devices(&self, ids: &[String]) -> StoreResult<Vec<(String, String)>>;
    /// Inserts enrolled devices directly (benchmarks and imports), in batches.
    async fn insert_enrolled_devices(
        &self,
        devices: Vec<AuthenticateRecord>,
    ) -> StoreResult<Vec<String>>;
}

/// The next command to hand a device, already marked as sent.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub uuid: String,
    pub request_type: String,
    pub payload: Vec<u8>,
    pub payload_sealed: bool,
}

/// What a report did: the command it answered (None if the device has no such
/// command) and the next command, already marked sent.
#[derive(Debug, Clone)]
pub struct ReportOutcome {
    pub recorded: Option<CommandRecord>,
    pub next: Option<Delivery>,
    /// Whether commands the device put off with NotNow (other than the one this
    /// report answered) wait for its next Idle, when the exchange read it: with a
    /// result, on SQLite, whose one instance remembers empty queues. None where it
    /// was not read.
    pub put_off_waiting: Option<bool>,
}

/// What follows a result this report stored first, decided from the stored record
/// (never from what the device claims the command was): the event that records it
/// and the facts it tells about the device. Written with the result, in the same
/// exchange with the database where the engine allows it.
#[derive(Debug, Clone, Default)]
pub struct FollowUp {
    pub event: Option<NewEvent>,
    /// The facts and the OS family they imply.
    pub facts: Option<(DeviceFacts, Option<String>)>,
}

#[derive(Debug, Clone)]
pub struct ResultRecord {
    pub status: CommandStatus,
    pub raw: Vec<u8>,
    pub parsed: serde_json::Value,
}

/// Makes what follows from a result the report completed, from its stored record.
/// Owned, since the store may run it on a thread of its own (sqlite_writer.rs).
pub type FollowUpFn = Box<dyn FnOnce(&CommandRecord) -> FollowUp + Send>;

#[async_trait]
pub trait CommandQueue: Send + Sync {
    /// Inserts all commands and the audit events that record them in one transaction
    /// (batched statements): a crash leaves all of it or none.
    async fn enqueue(&self, commands: Vec<NewCommand>, events: Vec<NewEvent>) -> StoreResult<()>;
    /// Handles a device's report (one transaction): stores the result of
    /// `result` (uuid, what the device said) if the command is this device's and
    /// still open, then takes the next command (priority, then FIFO; expired ones
    /// skipped; NotNow'd ones only when `new_exchange`, i.e. the device said Idle)
    /// and marks it sent; when this report completed the result, writes what
    /// `follow_up` makes of the stored record (its event, the device's facts).
    async fn report(
        &self,
        device_id: &str,
        result: Option<(&str, ResultRecord)>,
        follow_up: FollowUpFn,
        new_exchange: bool,
        now: DateTime<Utc>,
    ) -> StoreResult<ReportOutcome>;
    async fn cancel(&self, uuid: &str, now: DateTime<Utc>) -> StoreResult<CommandRecord>;
    async fn command(&self, uuid: &str) -> StoreResult<Option<CommandRecord>>;
    async fn device_commands(
        &self,
        device_id: &str,
        offset: u64,
        limit: u64,
    ) -> StoreResult<Page<CommandRecord>>;
    /// Marks open commands past their expiry as expired.
    async fn expire(&self, now: DateTime<Utc>) -> StoreResult<u64>;
    /// Deletes finished commands completed before `before`.
    async fn prune(&self, before: DateTime<Utc>) -> StoreResult<u64>;
}

#[async_trait]
pub trait EventLog: Send + Sync {
    async fn record(&self, event: NewEvent) -> StoreResult<()>;
    async fn events(&self, filter: &EventFilter) -> StoreResult<Vec<Event>>;
}

#[derive(Debug, Clone)]
pub struct AdminToken {
    pub id: String,
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
}

#[async_trait]
pub trait TokenStore: Send + Sync {
    async fn create_token(&self, name: &str, token_hash: &str) -> StoreResult<AdminToken>;
    async fn token_by_hash(&self, token_hash: &str) -> StoreResult<Option<AdminToken>>;
    async fn mark_token_used(&self, id: &str, at: DateTime<Utc>) -> StoreResult<()>;
    /// Tokens not revoked, oldest first.
    async fn tokens(&self) -> StoreResult<Vec<AdminToken>>;
    /// Revokes the token with this id, or every token with this name; returns how many.
    async fn revoke_tokens(&self, id_or_name: &str, at: DateTime<Utc>) -> StoreResult<u64>;
}

/// A stored push certificate (key still sealed).
#[derive(Debug, Clone)]
pub struct PushCertificateRow {
    pub id: String,
    pub topic: String,
    pub subject: String,
    pub fingerprint: String,
    pub certificate_pem: String,
    pub private_key_sealed: Vec<u8>,
    pub not_before: DateTime<Utc>,
    pub not_after: DateTime<Utc>,
    pub uploaded_by: String,
    pub uploaded_at: DateTime<Utc>,
}

/// Where to push a device.
#[derive(Debug, Clone)]
pub struct PushAddress {
    pub device_id: String,
    pub push_token: Option<String>,
    pub push_magic: Option<String>,
    pub token_invalid: bool,
}

/// One recorded exchange with APNs.
#[derive(Debug, Clone)]
pub struct PushAttemptRecord {
    pub device_id: String,
    pub attempted_at: DateTime<Utc>,
    pub attempt: i32,
    pub status: Option<i32>,
    pub reason: Option<String>,
    pub apns_id: Option<String>,
}

#[async_trait]
pub trait PushStore: Send + Sync {
    async fn active_push_certificate(&self) -> StoreResult<Option<PushCertificateRow>>;
    /// Makes `row` the certificate in use; the previous one is kept, marked replaced.
    async fn replace_push_certificate(&self, row: PushCertificateRow) -> StoreResult<()>;
    async fn push_addresses(&self, device_ids: &[String]) -> StoreResult<Vec<PushAddress>>;
    /// Records attempts (batched) and stamps the devices' last push time.
    async fn record_push_attempts(&self, attempts: Vec<PushAttemptRecord>) -> StoreResult<()>;
    async fn mark_push_tokens_invalid(
        &self,
        device_ids: &[String],
        at: DateTime<Utc>,
    ) -> StoreResult<()>;
    /// Enrolled devices with open commands, a valid push token, not seen and not
    /// pushed since `since`: the ones to wake again.
    async fn devices_to_repush(&self, since: DateTime<Utc>, limit: u64)
        -> StoreResult<Vec<String>>;
    async fn push_attempts(
        &self,
        device_id: &str,
        limit: u64,
    ) -> StoreResult<Vec<PushAttemptRecord>>;
    async fn prune_push_attempts(&self, before: DateTime<Utc>) -> StoreResult<u64>;
}

/// A certificate the built-in CA issued.
#[derive(Debug, Clone)]
pub struct IssuedCertificate {
    pub serial: String,
    pub fingerprint: String,
    pub subject: String,
    pub enrollment_id: Option<String>,
    pub device_id: Option<String>,
    pub renewed_from: Option<String>,
    pub issued_at: DateTime<Utc>,
    pub not_after: DateTime<Utc>,
    /// `identity` (an MDM device identity) or `wifi` (a policy's EAP-TLS
    /// certificate, never accepted as an identity).
    pub purpose: String,
}

/// Why a SCEP challenge cannot be redeemed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChallengeRefusal {
    Unknown,
    AlreadyUsed,
    Expired,
    /// The enrollment refuses devices (expired, revoked, used up): its message.
    Enrollment(String),
}

/// A stored PKI object: certificate, optional chain, sealed key.
#[derive(Debug, Clone)]
pub struct PkiObject {
    pub name: String,
    pub certificate_pem: String,
    pub chain_pem: Option<String>,
    pub private_key_sealed: Vec<u8>,
    pub imported: bool,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct NewEnrollment {
    pub enrollment: crate::domain::enrollment::Enrollment,
    pub token_hash: String,
    pub token_sealed: Vec<u8>,
}

#[async_trait]
pub trait EnrollmentStore: Send + Sync {
    async fn create_enrollment(&self, new: NewEnrollment) -> StoreResult<()>;
    async fn enrollments(
        &self,
        include_inactive: bool,
    ) -> StoreResult<Vec<(crate::domain::enrollment::Enrollment, Vec<u8>)>>;
    /// The enrollment and its sealed token.
    async fn enrollment(
        &self,
        id: &str,
    ) -> StoreResult<Option<(crate::domain::enrollment::Enrollment, Vec<u8>)>>;
    async fn enrollment_by_token_hash(
        &self,
        hash: &str,
    ) -> StoreResult<Option<crate::domain::enrollment::Enrollment>>;
    async fn revoke_enrollment(
        &self,
        id: &str,
        at: DateTime<Utc>,
    ) -> StoreResult<crate::domain::enrollment::Enrollment>;
    async fn create_challenge(
        &self,
        enrollment_id: &str,
        challenge_hash: &str,
        expires_at: DateTime<Utc>,
    ) -> StoreResult<()>;
    /// A challenge for a managed device's own Wi-Fi (EAP-TLS) certificate: bound to
    /// the device, good while it is enrolled, not an enrollment use; what it issues
    /// has purpose `wifi`.
    async fn create_device_challenge(
        &self,
        enrollment_id: &str,
        device_id: &str,
        challenge_hash: &str,
        expires_at: DateTime<Utc>,
    ) -> StoreResult<()>;
    /// Read-only check that a challenge could be redeemed now; returns its enrollment.
    async fn check_challenge(
        &self,
        challenge_hash: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Result<crate::domain::enrollment::Enrollment, ChallengeRefusal>>;
    /// Redeems the challenge (once), counts a use of its enrollment and records the
    /// issued certificate, in one transaction; refuses if anything changed since the check.
    async fn redeem_challenge(
        &self,
        challenge_hash: &str,
        issued: IssuedCertificate,
        now: DateTime<Utc>,
    ) -> StoreResult<Result<crate::domain::enrollment::Enrollment, ChallengeRefusal>>;
    async fn issued_certificate(&self, fingerprint: &str)
        -> StoreResult<Option<IssuedCertificate>>;
    /// Records a renewed certificate and moves the device bound to the old one onto it,
    /// retiring (and revoking) the old one, in one transaction. Refused (with the
    /// reason) unless the old certificate is the current, unrevoked certificate of a
    /// device that is still enrolled, through an enrollment that was not revoked: so a
    /// certificate renews once, and a stale, retired or orphaned one never.
    /// Returns the device id.
    async fn record_renewal(
        &self,
        issued: IssuedCertificate,
    ) -> StoreResult<Result<String, String>>;
    async fn pki_object(&self, name: &str) -> StoreResult<Option<PkiObject>>;
    /// Stores a PKI object; `replace` overwrites, otherwise an existing one wins (an
    /// instance that generated concurrently loses and reloads).
    async fn put_pki_object(&self, object: PkiObject, replace: bool) -> StoreResult<bool>;
    async fn prune_challenges(&self, before: DateTime<Utc>) -> StoreResult<u64>;
}

/// What a revocation did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RevocationOutcome {
    /// Certificates of our CA revoked now (the current one and any older ones).
    pub certificates_revoked: u64,
    pub cancelled_commands: u64,
    /// The certificate that spoke for the device, now retired.
    pub fingerprint: Option<String>,
    /// The identity was revoked before (the first revocation's time and reason stay).
    pub already_revoked: bool,
}

/// How a revocation leaves the device record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RevocationEffect {
    /// The record stays, unenrolled, until a new enrollment brings the device back.
    Revoke,
    /// As Revoke, and the device is marked retired from the fleet.
    Retire,
    /// As Revoke, then the record and its commands are deleted.
    Delete,
}

/// A revoked certificate as the CRL lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevokedCertificate {
    pub serial: String,
    pub revoked_at: DateTime<Utc>,
    pub reason: Option<String>,
}

/// A signed CRL as stored, shared by every instance.
#[derive(Debug, Clone)]
pub struct StoredCrl {
    pub ca: String,
    pub number: i64,
    pub der: Vec<u8>,
    pub this_update: DateTime<Utc>,
    pub next_update: DateTime<Utc>,
    /// The newest revocation it lists.
    pub covers_until: Option<DateTime<Utc>>,
    pub entries: i64,
}

/// Revocation of device identities and the CRL built from it.
#[async_trait]
pub trait RevocationStore: Send + Sync {
    /// Revokes a device's identity in one transaction: the binding of its
    /// certificate is retired, every certificate our CA issued to it is revoked with
    /// `reason`, the device is unenrolled (push token and escrowed secrets dropped,
    /// queue cancelled) and may enroll again only with a certificate issued after
    /// now. None if no such device.
    async fn revoke_device_identity(
        &self,
        device_id: &str,
        reason: &str,
        effect: RevocationEffect,
        at: DateTime<Utc>,
    ) -> StoreResult<Option<RevocationOutcome>>;
    /// When and why our CA's certificate with this fingerprint was revoked.
    async fn certificate_revocation(
        &self,
        fingerprint: &str,
    ) -> StoreResult<Option<(DateTime<Utc>, Option<String>)>>;
    /// Revoked certificates that have not expired by `now`: what a CRL lists.
    async fn revoked_certificates(
        &self,
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<RevokedCertificate>>;
    /// The time of the newest revocation (an indexed max).
    async fn latest_revocation(&self) -> StoreResult<Option<DateTime<Utc>>>;
    async fn crl(&self, ca: &str) -> StoreResult<Option<StoredCrl>>;
    /// Stores a CRL if the stored one still has number `replacing` (None: none
    /// stored yet). False when another instance stored one first.
    async fn put_crl(&self, crl: StoredCrl, replacing: Option<i64>) -> StoreResult<bool>;
}

/// A change to an incident, applied under the register's lock: returns the changed
/// fields (for the history) or why the change is refused (nothing is written then).
pub type IncidentChange = Box<
    dyn FnOnce(&mut crate::domain::incident::Incident) -> Result<serde_json::Value, String> + Send,
>;

/// What became of an event the incident rules matched.
#[derive(Debug, Clone)]
pub enum EventOutcome {
    Filed(crate::domain::incident::Incident),
    /// Joined the open incident of the same type on the same device.
    Attached(crate::domain::incident::Incident),
    /// This event was handled before (by this or another instance).
    AlreadyHandled,
    /// An attach-only event found no open incident on its device.
    NoOpenIncident,
}

/// What `verify_register` found.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct RegisterVerification {
    pub incidents: u64,
    pub evidence: u64,
    pub links: u64,
    pub head_hash: String,
    /// Empty when the register and its history are intact.
    pub problems: Vec<String>,
}

/// The incident register and its hash-chained history.
#[async_trait]
pub trait IncidentStore: Send + Sync {
    /// Files an incident: assigns its number and writes its first history link, in
    /// one transaction.
    async fn file_incident(
        &self,
        incident: crate::domain::incident::Incident,
        actor: &str,
        details: serde_json::Value,
    ) -> StoreResult<crate::domain::incident::Incident>;
    /// Applies `apply` to the incident and records the change as a history link.
    async fn change_incident(
        &self,
        id: &str,
        actor: &str,
        change: &str,
        apply: IncidentChange,
    ) -> StoreResult<Result<(crate::domain::incident::Incident, serde_json::Value), String>>;
    /// Files `incident` for event `event_id`, or attaches the event to the open
    /// incident of the same type on the same device (`attach_only`: to an open
    /// incident of any type, never filing); each event once, in one transaction with
    /// its link.
    async fn file_or_attach_from_event(
        &self,
        event_id: i64,
        incident: crate::domain::incident::Incident,
        details: serde_json::Value,
        attach_only: bool,
    ) -> StoreResult<EventOutcome>;
    /// Stores evidence (its content exactly as given) with its SHA-256, as a link of
    /// the chain. Refused (with why) when the incident is closed.
    async fn add_evidence(
        &self,
        incident_id: &str,
        kind: &str,
        source: &str,
        content: String,
        actor: &str,
    ) -> StoreResult<Result<crate::domain::incident::Evidence, String>>;
    async fn evidence(
        &self,
        incident_id: &str,
    ) -> StoreResult<Vec<crate::domain::incident::Evidence>>;
    /// Records an action that waits for a second admin.
    async fn request_approval(
        &self,
        incident_id: &str,
        device_id: &str,
        action: &str,
        requested_by: &str,
    ) -> StoreResult<crate::domain::incident::Approval>;
    /// Approves or denies a pending action; refused (with why) for its requester or
    /// once decided.
    async fn decide_approval(
        &self,
        incident_id: &str,
        approval_id: &str,
        approver: &str,
        approve: bool,
    ) -> StoreResult<Result<crate::domain::incident::Approval, String>>;
    async fn approvals(
        &self,
        incident_id: &str,
    ) -> StoreResult<Vec<crate::domain::incident::Approval>>;
    /// A personal lost-report link (its token stored hashed only).
    async fn create_lost_link(
        &self,
        user: &str,
        devices: &[String],
        token_hash: &str,
        created_by: &str,
    ) -> StoreResult<crate::domain::incident::LostReportLink>;
    /// The link with this token hash, unless revoked.
    async fn lost_link_by_hash(
        &self,
        token_hash: &str,
    ) -> StoreResult<Option<crate::domain::incident::LostReportLink>>;
    async fn lost_links(&self) -> StoreResult<Vec<crate::domain::incident::LostReportLink>>;
    /// False when no such link was active.
    async fn revoke_lost_link(&self, id: &str) -> StoreResult<bool>;
    async fn lost_link_used(&self, id: &str) -> StoreResult<()>;
    /// How far the incident rules have read the event stream.
    async fn rule_cursor(&self) -> StoreResult<i64>;
    /// Moves that position forward (never back).
    async fn advance_rule_cursor(&self, to: i64) -> StoreResult<()>;
    /// By id, or by register number.
    async fn incident(
        &self,
        id_or_number: &str,
    ) -> StoreResult<Option<crate::domain::incident::Incident>>;
    async fn incidents(
        &self,
        filter: &crate::domain::incident::IncidentFilter,
    ) -> StoreResult<Page<crate::domain::incident::Incident>>;
    async fn incident_history(
        &self,
        id: &str,
    ) -> StoreResult<Vec<crate::domain::incident::HistoryEntry>>;
    /// Walks the whole chain and compares every incident with its last recorded state.
    async fn verify_register(&self) -> StoreResult<RegisterVerification>;
}

/// One event on its way to one receiver.
#[derive(Debug, Clone, serde::Serialize)]
pub struct OutboundDelivery {
    pub id: i64,
    pub receiver: String,
    pub event_id: i64,
    pub payload: String,
    pub attempts: i32,
    pub next_attempt_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliveryFilter {
    pub receiver: Option<String>,
    /// pending, failed or delivered.
    pub status: Option<String>,
    pub limit: Option<u64>,
}

/// The queue of events going out to webhooks and syslog receivers.
#[async_trait]
pub trait DeliveryStore: Send + Sync {
    /// How far `receiver` has read the event stream; None for a receiver never seen.
    async fn delivery_cursor(&self, receiver: &str) -> StoreResult<Option<i64>>;
    /// The newest event's id (0 when there is none).
    async fn latest_event_id(&self) -> StoreResult<i64>;
    /// Queues (event id, payload) items for `receiver` (each event once) and moves
    /// its position forward to `cursor`, in one transaction.
    async fn enqueue_deliveries(
        &self,
        receiver: &str,
        items: Vec<(i64, String)>,
        cursor: i64,
        now: DateTime<Utc>,
    ) -> StoreResult<()>;
    /// Due deliveries, each leased to this caller for `lease`.
    async fn claim_due_deliveries(
        &self,
        now: DateTime<Utc>,
        lease: chrono::Duration,
        limit: u64,
    ) -> StoreResult<Vec<OutboundDelivery>>;
    /// Records an attempt: delivered at, or failed with why and when to retry.
    async fn delivery_done(
        &self,
        id: i64,
        outcome: Result<DateTime<Utc>, (String, DateTime<Utc>)>,
    ) -> StoreResult<()>;
    /// The delivery log, newest first.
    async fn deliveries(&self, filter: &DeliveryFilter) -> StoreResult<Vec<OutboundDelivery>>;
    /// Sends a delivery again (a failed one, or one a receiver lost).
    async fn replay_delivery(&self, id: i64, now: DateTime<Utc>) -> StoreResult<bool>;
}

/// How often each enrollment's URL was used (fetches, not devices enrolled).
#[async_trait]
pub trait EnrollmentUseStore: Send + Sync {
    /// Counts one use of the enrollment's URL.
    async fn count_enrollment_url_use(&self, enrollment_id: &str) -> StoreResult<()>;
    /// URL uses of the given enrollments, by id; an id not found is left out.
    async fn enrollment_url_uses(
        &self,
        ids: &[String],
    ) -> StoreResult<std::collections::HashMap<String, i64>>;
}

/// The connection to Google's Android Management API (one row: one enterprise).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AndroidEnterpriseRow {
    pub project_id: String,
    pub client_email: String,
    /// The service-account key JSON, sealed (purpose `android.service_account`).
    pub service_account_sealed: Vec<u8>,
    pub pubsub_topic: Option<String>,
    pub pubsub_subscription: Option<String>,
    pub signup_url_name: Option<String>,
    pub signup_url: Option<String>,
    /// Hex SHA-256 of the secret in our sign-up callback URL.
    pub signup_secret_hash: Option<String>,
    /// `enterprises/{id}` once the sign-up finished.
    pub enterprise_name: Option<String>,
    pub enterprise_display_name: Option<String>,
    pub notification_types: Vec<String>,
    pub connected_by: String,
    pub connected_at: DateTime<Utc>,
    pub enterprise_created_at: Option<DateTime<Utc>>,
    pub last_sync_at: Option<DateTime<Utc>>,
    pub last_pull_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub last_error_at: Option<DateTime<Utc>>,
}

/// An Android device as AMAPI last reported it, in storage terms.
#[derive(Debug, Clone, PartialEq)]
pub struct AndroidDeviceRecord {
    /// `enterprises/{e}/devices/{d}`.
    pub name: String,
    /// Our enrollment the device came through (the token's additionalData).
    pub enrollment_id: Option<String>,
    pub serial_number: Option<String>,
    pub imei: Option<String>,
    pub model: Option<String>,
    pub os_version: Option<String>,
    pub build_version: Option<String>,
    pub management_mode: Option<String>,
    pub ownership: Option<String>,
    pub state: Option<String>,
    pub applied_state: Option<String>,
    pub api_level: Option<i32>,
    pub security_patch_level: Option<String>,
    pub policy_name: Option<String>,
    pub applied_policy_name: Option<String>,
    pub applied_policy_version: Option<i64>,
    pub policy_compliant: Option<bool>,
    pub non_compliance: Option<serde_json::Value>,
    pub security_posture: Option<serde_json::Value>,
    pub encryption_status: Option<String>,
    pub encrypted: Option<bool>,
    pub device_secure: Option<bool>,
    pub enrolled_at: Option<DateTime<Utc>>,
    pub last_status_report_at: Option<DateTime<Utc>>,
    /// The newest report time this state is from: a record older than the stored
    /// one is stale and ignored.
    pub observed_at: DateTime<Utc>,
    /// Hardware and software facts as Google gave them.
    pub facts: serde_json::Value,
}

/// A stored Android device: its id in `devices` and its AMAPI state.
#[derive(Debug, Clone, PartialEq)]
pub struct AndroidDeviceState {
    pub device_id: String,
    pub record: AndroidDeviceRecord,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum AndroidUpsert {
    /// A device seen for the first time (device.enrolled recorded with it).
    Created(String),
    /// Stored; the state it replaced.
    Updated(Box<AndroidDeviceState>),
    /// Older than what is stored: nothing changed.
    Stale(String),
}

/// What the Android puller and sync record about the link to Google.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AndroidHealth {
    Synced,
    Pulled,
}

#[async_trait]
pub trait AndroidStore: Send + Sync {
    async fn android_enterprise(&self) -> StoreResult<Option<AndroidEnterpriseRow>>;
    /// Replaces the connection (a new `mdm android connect`) and records `event`, in
    /// one transaction.
    async fn replace_android_enterprise(
        &self,
        row: AndroidEnterpriseRow,
        event: NewEvent,
    ) -> StoreResult<()>;
    /// Records the enterprise created from the pending sign-up named
    /// `signup_url_name`, and `event`, in one transaction. Conflict when that sign-up
    /// is no longer the pending one (finished already, or replaced by a new connect).
    async fn finish_android_signup(
        &self,
        signup_url_name: &str,
        enterprise_name: &str,
        display_name: Option<&str>,
        notification_types: &[String],
        at: DateTime<Utc>,
        event: NewEvent,
    ) -> StoreResult<()>;
    /// Stores what AMAPI reported about a device, creating it (linked to its
    /// enrollment, whose use is counted) on first sight; in one transaction with the
    /// `device.enrolled` event of a new device.
    async fn upsert_android_device(
        &self,
        record: AndroidDeviceRecord,
        now: DateTime<Utc>,
    ) -> StoreResult<AndroidUpsert>;
    async fn android_device(&self, device_id: &str) -> StoreResult<Option<AndroidDeviceState>>;
    async fn android_device_by_name(&self, name: &str) -> StoreResult<Option<AndroidDeviceState>>;
    /// An Android command Google accepted: the command is `sent`, and `operation`
    /// (its long-running operation) maps back to it.
    async fn android_command_sent(
        &self,
        uuid: &str,
        device_id: &str,
        operation: &str,
        at: DateTime<Utc>,
    ) -> StoreResult<()>;
    /// The command and device an operation stands for.
    async fn android_operation(&self, name: &str) -> StoreResult<Option<(String, String)>>;
    /// Operations whose command is not finished, oldest first.
    async fn open_android_operations(&self, limit: u64) -> StoreResult<Vec<String>>;
    /// Finishes an open Android command with `status` and `result` (shown as the
    /// command's result), and records `event`, in one transaction. Returns false
    /// (nothing written) when the command was finished already: a repeated COMMAND
    /// notification changes nothing.
    async fn finish_android_command(
        &self,
        uuid: &str,
        status: crate::domain::CommandStatus,
        result: serde_json::Value,
        at: DateTime<Utc>,
        event: NewEvent,
    ) -> StoreResult<bool>;
    /// The newest security-log event time already recorded for the device.
    async fn android_usage_watermark(&self, device_id: &str) -> StoreResult<Option<DateTime<Utc>>>;
    /// Records the events of a USAGE_LOGS batch and moves the watermark from
    /// `previous` to `watermark`, in one transaction; false (nothing written) when the
    /// watermark is no longer `previous`.
    async fn record_android_usage(
        &self,
        device_id: &str,
        previous: Option<DateTime<Utc>>,
        watermark: DateTime<Utc>,
        events: Vec<NewEvent>,
    ) -> StoreResult<bool>;
    /// Records that Google now has the device assigned to policy `name`.
    async fn set_android_policy_name(&self, device_id: &str, name: &str) -> StoreResult<()>;
    /// A policy's stored content hash and version.
    async fn android_policy(&self, name: &str) -> StoreResult<Option<(String, Option<i64>)>>;
    async fn put_android_policy(
        &self,
        name: &str,
        content_hash: &str,
        version: Option<i64>,
        at: DateTime<Utc>,
    ) -> StoreResult<()>;
    /// A successful sync or pull at `at`: clears the last error.
    async fn android_healthy(&self, what: AndroidHealth, at: DateTime<Utc>) -> StoreResult<()>;
    /// A failure talking to Google; `event` (if any) is recorded only when the
    /// message differs from the one already stored, so a lasting fault is one event,
    /// not one per attempt. Returns whether the message was new.
    async fn android_failed(
        &self,
        message: &str,
        at: DateTime<Utc>,
        event: Option<NewEvent>,
    ) -> StoreResult<bool>;
}

/// A device group: its members are listed by hand (`manual`) or follow a rule: the
/// users of a directory group (`directory_group`), of a department (`department`), or
/// the devices enrolled through enrollments made for a group name (`enrollment`).
#[derive(Debug, Clone, serde::Serialize)]
pub struct DeviceGroupRow {
    pub id: String,
    pub name: String,
    pub kind: String,
    pub match_value: Option<String>,
    pub description: Option<String>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct PolicyRow {
    pub id: String,
    pub name: String,
    pub current_version: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// One version of a policy: `document` masks secrets; `document_sealed` is whole.
#[derive(Debug, Clone)]
pub struct PolicyVersionRow {
    pub policy_id: String,
    pub version: i32,
    pub document: serde_json::Value,
    pub document_sealed: Vec<u8>,
    pub content_hash: String,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub note: Option<String>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct AssignmentRow {
    pub id: String,
    pub policy_id: String,
    /// `group` (a device group's id) or `device` (a device id).
    pub target_kind: String,
    pub target: String,
    /// Higher wins; a device's own assignment outranks any group's.
    pub precedence: i32,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
}

/// What one Apple device was last sent for one policy.
#[derive(Debug, Clone)]
pub struct PolicyOutputRow {
    pub device_id: String,
    pub policy_id: String,
    pub identifier: String,
    pub output_hash: String,
    /// SHA-256 of what the output was compiled from (see deliver.rs).
    pub input_hash: String,
    pub policy_version: i32,
    pub command_uuid: Option<String>,
    /// `queued` (InstallProfile sent or waiting), `installed` (acknowledged), `removing`.
    pub status: String,
}

/// A change to one device's outputs, applied only if the row still holds `expected`
/// (the hash read before rendering; None: no row): two instances rendering the same
/// change commit it once.
#[derive(Debug, Clone)]
pub enum OutputChange {
    Install {
        row: PolicyOutputRow,
        expected: Option<String>,
        command: crate::domain::NewCommand,
    },
    Remove {
        device_id: String,
        policy_id: String,
        expected: String,
        command: crate::domain::NewCommand,
    },
    /// The inputs changed but the output did not: only the input hash is stored, so
    /// the next delivery skips compiling; nothing is queued.
    Refresh {
        device_id: String,
        policy_id: String,
        expected: String,
        input_hash: String,
    },
}

/// What the policy engine needs of a device to place it in groups and fill in its
/// user's attributes.
#[derive(Debug, Clone)]
pub struct PolicyTarget {
    pub device_id: String,
    pub platform: String,
    pub os_family: String,
    pub assigned_user: Option<String>,
    pub assigned_group: Option<String>,
    pub enrollment_id: Option<String>,
    pub manual_groups: Vec<String>,
}

/// A directory user as the policy compilers see it.
#[derive(Debug, Clone)]
pub struct DirectoryUserRow {
    pub username: String,
    pub upn: String,
    pub email: String,
    pub display_name: String,
    pub department: Option<String>,
    pub groups: Vec<String>,
    pub disabled: bool,
}

#[async_trait]
pub trait PolicyStore: Send + Sync {
    async fn create_device_group(&self, group: DeviceGroupRow, event: NewEvent) -> StoreResult<()>;
    async fn device_groups(&self) -> StoreResult<Vec<DeviceGroupRow>>;
    /// Deletes the group, its members and its assignments.
    async fn delete_device_group(&self, id: &str, event: NewEvent) -> StoreResult<bool>;
    async fn change_group_members(
        &self,
        group_id: &str,
        add: &[String],
        remove: &[String],
        event: NewEvent,
    ) -> StoreResult<()>;
    async fn group_members(&self, group_id: &str) -> StoreResult<Vec<String>>;

    /// Saves a new version (creating the policy at version 1); the caller decided
    /// that it differs from the current one.
    async fn save_policy_version(
        &self,
        name: &str,
        version: PolicyVersionRow,
        event: NewEvent,
    ) -> StoreResult<PolicyRow>;
    async fn policies(&self) -> StoreResult<Vec<PolicyRow>>;
    async fn policy(&self, id_or_name: &str) -> StoreResult<Option<PolicyRow>>;
    async fn policy_version(
        &self,
        policy_id: &str,
        version: i32,
    ) -> StoreResult<Option<PolicyVersionRow>>;
    async fn policy_versions(&self, policy_id: &str) -> StoreResult<Vec<PolicyVersionRow>>;
    /// The current version of each of these policies.
    async fn current_versions(&self, policy_ids: &[String]) -> StoreResult<Vec<PolicyVersionRow>>;

    async fn add_assignment(&self, row: AssignmentRow, event: NewEvent) -> StoreResult<()>;
    async fn remove_assignment(
        &self,
        policy_id: &str,
        target_kind: &str,
        target: &str,
        event: NewEvent,
    ) -> StoreResult<bool>;
    async fn assignments(&self) -> StoreResult<Vec<AssignmentRow>>;

    /// Enrolled, not retired devices (all, or these), with their manual groups.
    async fn policy_targets(&self, device_ids: Option<&[String]>)
        -> StoreResult<Vec<PolicyTarget>>;
    /// Directory users by username (those that exist).
    async fn users_for_policies(&self, usernames: &[String]) -> StoreResult<Vec<DirectoryUserRow>>;
    async fn policy_outputs(&self, device_ids: &[String]) -> StoreResult<Vec<PolicyOutputRow>>;
    /// Applies the changes whose expectation holds, with their commands and the
    /// events (when any change was applied), in one transaction. Returns the changes in
    /// effect after it: those applied, and those a concurrent delivery already made
    /// (the same output queued, the profile already removed), whose commands it queued.
    async fn apply_policy_outputs(
        &self,
        changes: Vec<OutputChange>,
        events: Vec<NewEvent>,
    ) -> StoreResult<Vec<OutputChange>>;
    /// An InstallProfile the device acknowledged marks its output installed.
    async fn policy_output_acknowledged(&self, command_uuid: &str) -> StoreResult<()>;
    /// Stores the device's evaluation; returns the previous `compliant`.
    async fn set_compliance(
        &self,
        device_id: &str,
        compliant: bool,
        reasons: &[String],
        at: DateTime<Utc>,
        event: Option<NewEvent>,
    ) -> StoreResult<Option<bool>>;
    async fn policy_cursor(&self) -> StoreResult<i64>;
    async fn advance_policy_cursor(&self, to: i64) -> StoreResult<()>;
}

pub trait Storage:
    AndroidStore
    + DeviceStore
    + CommandQueue
    + EventLog
    + TokenStore
    + PushStore
    + EnrollmentStore
    + EnrollmentUseStore
    + RevocationStore
    + IncidentStore
    + DeliveryStore
    + DirectoryStore
    + PolicyStore
    + AdminStore
{
}
impl<
        T: AndroidStore
            + DeviceStore
            + CommandQueue
            + EventLog
            + TokenStore
            + PushStore
            + EnrollmentStore
            + EnrollmentUseStore
            + RevocationStore
            + IncidentStore
            + DeliveryStore
            + DirectoryStore
            + PolicyStore
            + AdminStore,
    > Storage for T
{
}

/// A person devices can belong to, as stored in `directory_users`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DirectoryUserRecord {
    pub id: String,
    pub username: String,
    pub upn: String,
    pub email: String,
    pub display_name: String,
    pub department: Option<String>,
    /// `ldap`, `csv` or `manual`.
    pub source: String,
    /// The LDAP entry's entryUUID (objectGUID in Active Directory), or its DN.
    pub external_id: Option<String>,
    pub disabled: bool,
    pub disabled_reason: Option<String>,
    pub disabled_at: Option<DateTime<Utc>>,
    pub synced_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A group of users, as stored in `directory_groups`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DirectoryGroupRecord {
    pub id: String,
    pub name: String,
    pub source: String,
    pub external_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Everything in the directory tables, read inside the transaction that changes them.
#[derive(Debug, Clone, Default)]
pub struct DirectoryState {
    pub users: Vec<DirectoryUserRecord>,
    pub groups: Vec<DirectoryGroupRecord>,
    /// (group id, user id).
    pub members: Vec<(String, String)>,
}

/// What to write to the directory tables, worked out from a [`DirectoryState`] by
/// `crate::directory::plan`; written in one transaction with its events.
#[derive(Debug, Clone, Default)]
pub struct DirectoryPlan {
    pub insert_users: Vec<DirectoryUserRecord>,
    pub update_users: Vec<DirectoryUserRecord>,
    /// Ids of users seen unchanged by a sync: only `synced_at` moves.
    pub touch_users: Vec<String>,
    pub delete_users: Vec<String>,
    /// (old, new) usernames: devices assigned to the old name follow the user.
    pub renames: Vec<(String, String)>,
    pub insert_groups: Vec<DirectoryGroupRecord>,
    pub update_groups: Vec<DirectoryGroupRecord>,
    pub delete_groups: Vec<String>,
    pub add_members: Vec<(String, String)>,
    pub remove_members: Vec<(String, String)>,
    pub events: Vec<NewEvent>,
    /// A sync's outcome for the source row (status `ok`, its counts as JSON).
    pub sync_status: Option<DirectorySyncStatus>,
    /// What the change did, for the caller (counts, warnings).
    pub summary: serde_json::Value,
}

#[derive(Debug, Clone)]
pub struct DirectorySyncStatus {
    pub at: DateTime<Utc>,
    pub status: String,
    pub error: Option<String>,
    pub counts: serde_json::Value,
}

/// The directory's connection settings (`directory_sources`, one row).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectorySourceRow {
    /// `openldap` or `active_directory`.
    pub flavor: String,
    pub url: String,
    pub start_tls: bool,
    /// Plain ldap:// without StartTLS, explicitly accepted by the admin.
    pub allow_plaintext: bool,
    pub bind_dn: String,
    /// Sealed (purpose `directory.bind_password`, row `default`).
    pub bind_password_sealed: Vec<u8>,
    pub base_dn: String,
    pub user_filter: String,
    pub group_filter: String,
    pub username_attr: String,
    pub upn_attr: String,
    pub email_attr: String,
    pub display_name_attr: String,
    pub department_attr: String,
    pub group_name_attr: String,
    pub disabled_attr: Option<String>,
    pub disabled_value: Option<String>,
    pub ca_pem: Option<String>,
    pub interval_seconds: i32,
    pub last_sync_at: Option<DateTime<Utc>>,
    pub last_sync_status: Option<String>,
    pub last_sync_error: Option<String>,
    pub last_sync_counts: Option<serde_json::Value>,
    pub updated_by: String,
    pub updated_at: DateTime<Utc>,
}

/// A device assigned to a user (`devices.assigned_user`), for the off-boarding list.
#[derive(Debug, Clone, serde::Serialize)]
pub struct UserDevice {
    pub id: String,
    pub platform: String,
    pub device_name: Option<String>,
    pub serial_number: Option<String>,
    pub model: Option<String>,
    pub enrolled: bool,
    pub last_seen_at: Option<DateTime<Utc>>,
}

/// Why a change of the directory tables is refused (nothing is written).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DirectoryRefusal {
    /// The input is wrong: one message per problem (a CSV file's row and column).
    Invalid(Vec<String>),
    NotFound(String),
    Conflict(String),
}

/// A change of the directory tables computed from what they hold: returns the plan
/// to write, or why nothing may be written.
pub type DirectoryChange =
    Box<dyn FnOnce(&DirectoryState) -> Result<DirectoryPlan, DirectoryRefusal> + Send>;

/// Users and groups from the office's directory, CSV imports and admins.
#[async_trait]
pub trait DirectoryStore: Send + Sync {
    async fn directory_source(&self) -> StoreResult<Option<DirectorySourceRow>>;
    /// Replaces the connection settings (the last sync's outcome is kept) and records
    /// `event`, in one transaction.
    async fn put_directory_source(
        &self,
        row: DirectorySourceRow,
        event: NewEvent,
    ) -> StoreResult<()>;
    /// Takes the sync lease for `owner` until `until` when no other holder's lease is
    /// current (and, with `due_before`, only when the last sync is older than that):
    /// of several instances, one syncs.
    async fn take_directory_lease(
        &self,
        owner: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
        due_before: Option<DateTime<Utc>>,
    ) -> StoreResult<bool>;
    async fn release_directory_lease(&self, owner: &str) -> StoreResult<()>;
    /// Reads the directory tables and writes what `change` makes of them, in one
    /// transaction: all of it, or (when `change` refuses, with why) nothing.
    async fn change_directory(
        &self,
        change: DirectoryChange,
    ) -> StoreResult<Result<DirectoryPlan, DirectoryRefusal>>;
    /// Records a failed sync; `event` is recorded only when the error differs from
    /// the stored one (a lasting fault is one event, not one per attempt).
    async fn directory_sync_failed(
        &self,
        error: &str,
        at: DateTime<Utc>,
        event: NewEvent,
    ) -> StoreResult<bool>;
    /// Users, by username, each with the names of its groups.
    async fn directory_users(
        &self,
        disabled: Option<bool>,
    ) -> StoreResult<Vec<(DirectoryUserRecord, Vec<String>)>>;
    /// A user by username (exactly, else ignoring case), with its groups.
    async fn directory_user(
        &self,
        username: &str,
    ) -> StoreResult<Option<(DirectoryUserRecord, Vec<String>)>>;
    /// Groups by name, each with its number of members.
    async fn directory_groups(&self) -> StoreResult<Vec<(DirectoryGroupRecord, u64)>>;
    /// The usernames in a group; None when there is no such group.
    async fn directory_group_members(&self, name: &str) -> StoreResult<Option<Vec<String>>>;
    /// The devices assigned to each of these usernames.
    async fn devices_of_users(
        &self,
        usernames: &[String],
    ) -> StoreResult<std::collections::HashMap<String, Vec<UserDevice>>>;
}

/// An admin account as stored in `admins` (issue 10).
#[derive(Debug, Clone)]
pub struct AdminRow {
    pub id: String,
    pub name: String,
    pub display_name: String,
    pub email: Option<String>,
    /// Argon2id, PHC string.
    pub password_hash: String,
    pub password_changed_at: DateTime<Utc>,
    pub must_change_password: bool,
    pub failed_logins: i32,
    pub locked_until: Option<DateTime<Utc>>,
    pub last_failed_at: Option<DateTime<Utc>>,
    pub last_login_at: Option<DateTime<Utc>>,
    pub last_login_address: Option<String>,
    /// Sealed (purpose `admin.totp_secret`, row the admin's id).
    pub totp_secret_sealed: Option<Vec<u8>>,
    /// An enrolment waiting for its first code (sealed like the secret).
    pub totp_pending_sealed: Option<Vec<u8>>,
    pub totp_enabled_at: Option<DateTime<Utc>>,
    pub totp_last_step: Option<i64>,
    pub disabled_at: Option<DateTime<Utc>>,
    pub disabled_reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
    pub updated_at: DateTime<Utc>,
    /// The console's language (en, pl, uk) the admin chose; None: not chosen yet.
    pub language: Option<String>,
}

/// A role of the role matrix.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RoleRow {
    pub name: String,
    pub description: String,
    pub rights: Vec<String>,
    pub critical: bool,
    pub built_in: bool,
    pub updated_at: DateTime<Utc>,
    pub updated_by: String,
}

/// A group of admins, with its members' names and its roles.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AdminGroupRow {
    pub id: String,
    pub name: String,
    pub description: String,
    pub members: Vec<String>,
    pub roles: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A login: bearer (CLI, scripts) or cookie (console).
#[derive(Debug, Clone, serde::Serialize)]
pub struct SessionRow {
    pub id: String,
    pub admin_id: String,
    pub admin_name: String,
    /// `pending_mfa` (password accepted, second factor awaited) or `active`.
    pub state: String,
    /// `bearer` or `cookie`.
    pub kind: String,
    #[serde(skip)]
    pub csrf_hash: Option<String>,
    pub mfa: bool,
    pub created_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    pub idle_timeout_secs: i32,
    pub expires_at: DateTime<Utc>,
    pub address: Option<String>,
    pub user_agent: Option<String>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// An API token: an admin's or a service account's, with a role and an expiry.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ApiTokenRow {
    pub id: String,
    pub name: String,
    /// None: a service account's token.
    pub admin_id: Option<String>,
    pub admin_name: Option<String>,
    pub role: String,
    pub created_at: DateTime<Utc>,
    pub created_by: Option<String>,
    pub expires_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub last_used_address: Option<String>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// One record of the audit trail.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AuditRecord {
    pub seq: i64,
    pub event_id: Option<i64>,
    pub at: DateTime<Utc>,
    pub actor: String,
    pub address: Option<String>,
    pub action: String,
    pub outcome: String,
    pub details: serde_json::Value,
    /// `details` exactly as stored (and hashed).
    #[serde(skip)]
    pub details_raw: String,
    pub prev_hash: String,
    pub hash: String,
    /// How `hash` was computed: [`AUDIT_CHAIN_SHA256`] (records from before the
    /// chain was keyed) or [`AUDIT_CHAIN_HMAC`].
    pub chain_version: i16,
}

/// The chain's head and the last anchor published of it.
#[derive(Debug, Clone)]
pub struct AuditHeadState {
    pub last_seq: i64,
    pub last_hash: String,
    /// The seq the last `audit.anchor` event named (0: none yet).
    pub anchored_seq: i64,
    pub anchored_at: Option<DateTime<Utc>>,
}

/// A record to append (the chain fields are computed by the store).
#[derive(Debug, Clone)]
pub struct NewAuditRecord {
    pub event_id: Option<i64>,
    pub at: DateTime<Utc>,
    pub actor: String,
    pub address: Option<String>,
    pub action: String,
    pub outcome: String,
    /// Serialized once: what is hashed is exactly what is stored.
    pub details: String,
}

/// An off-boarding of one user, with its devices.
#[derive(Debug, Clone, serde::Serialize)]
pub struct OffboardingRow {
    pub id: String,
    pub username: String,
    pub requested_by: String,
    pub requested_at: DateTime<Utc>,
    /// `in_progress`, `done` or `failed` (some device failed; the others are done).
    pub status: String,
    pub completed_at: Option<DateTime<Utc>>,
    pub devices: Vec<OffboardingDeviceRow>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct OffboardingDeviceRow {
    pub device_id: String,
    pub platform: String,
    /// `retire` or `wipe`.
    pub action: String,
    /// `pending` (command sent, not yet acknowledged), `done` or `failed`.
    pub status: String,
    pub command_uuid: Option<String>,
    pub detail: Option<String>,
    pub updated_at: DateTime<Utc>,
}

/// The lockout rule the store applies to a failed login, atomically.
#[derive(Debug, Clone, Copy)]
pub struct LockoutRule {
    /// Failures in a row before the account is locked.
    pub threshold: i32,
    /// The first lock's length; each further failure doubles it...
    pub base_secs: i64,
    /// ...up to this.
    pub max_secs: i64,
}

/// Admin accounts, roles and groups, sessions, API tokens, the audit trail and
/// off-boardings (issue 10).
#[async_trait]
pub trait AdminStore: Send + Sync {
    /// Creates an admin in the named groups (all must exist: NotFound) and records
    /// `event`; Conflict when the name is taken.
    async fn create_admin(
        &self,
        row: AdminRow,
        groups: &[String],
        event: NewEvent,
    ) -> StoreResult<()>;
    async fn admin_by_name(&self, name: &str) -> StoreResult<Option<AdminRow>>;
    async fn admin_by_id(&self, id: &str) -> StoreResult<Option<AdminRow>>;
    async fn admins(&self) -> StoreResult<Vec<AdminRow>>;
    /// Disables (`at` Some) or enables an admin; disabling revokes its sessions and
    /// tokens and removes it from every admin group, in the same transaction. Returns false when there is no such admin.
    async fn set_admin_disabled(
        &self,
        admin_id: &str,
        at: Option<DateTime<Utc>>,
        reason: Option<String>,
        event: NewEvent,
    ) -> StoreResult<bool>;
    /// Counts a failed login and locks the account per `rule`; returns the failures
    /// in a row and the lock's end.
    async fn admin_login_failed(
        &self,
        admin_id: &str,
        at: DateTime<Utc>,
        rule: LockoutRule,
    ) -> StoreResult<(i32, Option<DateTime<Utc>>)>;
    async fn admin_login_succeeded(
        &self,
        admin_id: &str,
        at: DateTime<Utc>,
        address: Option<&str>,
    ) -> StoreResult<()>;
    /// The admin's earlier password hashes, newest first.
    async fn password_history(&self, admin_id: &str, limit: u64) -> StoreResult<Vec<String>>;
    /// Sets the password (the old hash goes to the history, of which `keep` stay),
    /// and records `event`.
    #[allow(clippy::too_many_arguments)]
    async fn set_admin_password(
        &self,
        admin_id: &str,
        hash: &str,
        at: DateTime<Utc>,
        must_change: bool,
        keep: u64,
        event: NewEvent,
    ) -> StoreResult<()>;
    async fn set_totp_pending(&self, admin_id: &str, sealed: Option<Vec<u8>>) -> StoreResult<()>;
    /// Makes the pending secret the admin's (its first code was `step`), replaces the
    /// recovery codes, records `event`.
    async fn enable_totp(
        &self,
        admin_id: &str,
        sealed: Vec<u8>,
        step: i64,
        recovery_hashes: &[String],
        at: DateTime<Utc>,
        event: NewEvent,
    ) -> StoreResult<()>;
    /// Removes the admin's second factor and recovery codes.
    async fn reset_totp(&self, admin_id: &str, event: NewEvent) -> StoreResult<()>;
    /// Accepts a TOTP step once: true when it is later than the last one used.
    async fn use_totp_step(&self, admin_id: &str, step: i64) -> StoreResult<bool>;
    /// Uses a recovery code (by hash) once: true when it was there and unused.
    async fn use_recovery_code(
        &self,
        admin_id: &str,
        code_hash: &str,
        at: DateTime<Utc>,
    ) -> StoreResult<bool>;
    async fn recovery_codes_left(&self, admin_id: &str) -> StoreResult<u64>;

    async fn roles(&self) -> StoreResult<Vec<RoleRow>>;
    /// Creates or replaces a role; returns true when it was created.
    async fn put_role(&self, role: RoleRow, event: NewEvent) -> StoreResult<bool>;
    /// Deletes a role granted to no group (Conflict otherwise).
    async fn delete_role(&self, name: &str, event: NewEvent) -> StoreResult<bool>;
    async fn admin_groups(&self) -> StoreResult<Vec<AdminGroupRow>>;
    /// Creates a group or changes its description; true when created.
    async fn put_admin_group(
        &self,
        name: &str,
        description: &str,
        at: DateTime<Utc>,
        event: NewEvent,
    ) -> StoreResult<bool>;
    async fn delete_admin_group(&self, name: &str, event: NewEvent) -> StoreResult<bool>;
    /// Adds and removes members (admin names) and roles of a group, in one
    /// transaction with `event`. NotFound for an unknown group, admin or role.
    async fn change_admin_group(
        &self,
        name: &str,
        add_members: &[String],
        remove_members: &[String],
        add_roles: &[String],
        remove_roles: &[String],
        event: NewEvent,
    ) -> StoreResult<()>;
    /// The roles an admin holds through its groups, and the groups' names.
    async fn roles_of_admin(&self, admin_id: &str) -> StoreResult<(Vec<RoleRow>, Vec<String>)>;

    async fn create_session(&self, row: SessionRow, token_hash: &str) -> StoreResult<()>;
    async fn session_by_hash(&self, token_hash: &str) -> StoreResult<Option<SessionRow>>;
    /// Moves last_seen_at forward to `at` (never back). The caller decides how often:
    /// a fraction of the session's idle timeout.
    async fn touch_session(&self, id: &str, at: DateTime<Utc>) -> StoreResult<()>;
    /// Remembers the console language an admin chose.
    async fn set_admin_language(&self, admin_id: &str, language: &str) -> StoreResult<()>;
    /// A pending session passed its second factor: active, with a new token hash.
    async fn activate_session(
        &self,
        id: &str,
        token_hash: &str,
        csrf_hash: Option<String>,
        mfa: bool,
        at: DateTime<Utc>,
    ) -> StoreResult<bool>;
    /// The session's admin proved its second factor (an enrolment just confirmed).
    async fn set_session_mfa(&self, id: &str) -> StoreResult<()>;
    /// Revokes one session (by id, of `admin_id` when given) or, with `id` None, all
    /// of the admin's; returns how many.
    async fn revoke_sessions(
        &self,
        admin_id: Option<&str>,
        id: Option<&str>,
        at: DateTime<Utc>,
    ) -> StoreResult<u64>;
    /// Sessions not revoked nor expired (of one admin, or all).
    async fn sessions(
        &self,
        admin_id: Option<&str>,
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<SessionRow>>;

    async fn create_api_token(
        &self,
        row: ApiTokenRow,
        token_hash: &str,
        event: NewEvent,
    ) -> StoreResult<()>;
    /// A token not revoked (expired ones too: the caller says why it refuses).
    async fn api_token_by_hash(&self, token_hash: &str) -> StoreResult<Option<ApiTokenRow>>;
    /// Tokens not revoked (of one admin, or all).
    async fn api_tokens(&self, admin_id: Option<&str>) -> StoreResult<Vec<ApiTokenRow>>;
    /// Revokes a token by id (of `admin_id` when given); true when one was.
    async fn revoke_api_token(
        &self,
        id: &str,
        admin_id: Option<&str>,
        at: DateTime<Utc>,
        event: NewEvent,
    ) -> StoreResult<bool>;
    /// Notes a token's use; true when its previous noted use is older than
    /// `every_secs` (the caller then records the use as an event).
    async fn mark_api_token_used(
        &self,
        id: &str,
        at: DateTime<Utc>,
        address: Option<&str>,
        every_secs: i64,
    ) -> StoreResult<bool>;

    /// Where the audit trail has read the event stream up to.
    async fn audit_cursor(&self) -> StoreResult<i64>;
    /// Events the audit trail takes (admin.*, auth.*, and anything an actor other
    /// than a device caused), after `after_id`, oldest first.
    async fn audit_candidate_events(&self, after_id: i64, limit: u64) -> StoreResult<Vec<Event>>;
    /// Of these event ids, those already in the trail.
    async fn audited_event_ids(&self, ids: &[i64]) -> StoreResult<Vec<i64>>;
    /// Appends records to the chain (records of events already in it are skipped)
    /// and moves the cursor forward to `cursor`; returns how many were appended.
    /// Each link is an HMAC-SHA256 under `key` ([`audit_chain_mac`]).
    async fn append_audit(
        &self,
        records: Vec<NewAuditRecord>,
        cursor: i64,
        key: &AuditKey,
    ) -> StoreResult<u64>;
    /// Records by seq, from `after_seq`, at most `limit`.
    async fn audit_records(&self, after_seq: i64, limit: u64) -> StoreResult<Vec<AuditRecord>>;
    /// The chain head: last seq and hash.
    async fn audit_head(&self) -> StoreResult<(i64, String)>;
    /// The head with the last anchor published of it.
    async fn audit_head_state(&self) -> StoreResult<AuditHeadState>;
    /// Notes that `seq` is anchored (published by `event`, recorded in the same
    /// transaction), unless another instance anchored since `previous_anchored_seq`
    /// was read: then nothing is written and false returned.
    async fn record_audit_anchor(
        &self,
        seq: i64,
        previous_anchored_seq: i64,
        at: DateTime<Utc>,
        event: NewEvent,
    ) -> StoreResult<bool>;

    async fn create_offboarding(&self, row: OffboardingRow, event: NewEvent) -> StoreResult<()>;
    async fn update_offboarding_device(
        &self,
        offboarding_id: &str,
        device: OffboardingDeviceRow,
    ) -> StoreResult<()>;
    /// Finishes an off-boarding still in progress; false when it was not (any more).
    async fn set_offboarding_status(
        &self,
        id: &str,
        status: &str,
        completed_at: Option<DateTime<Utc>>,
    ) -> StoreResult<bool>;
    async fn offboarding(&self, id: &str) -> StoreResult<Option<OffboardingRow>>;
    /// Off-boardings not finished, or of these users (newest first).
    async fn offboardings(
        &self,
        open_only: bool,
        usernames: Option<&[String]>,
    ) -> StoreResult<Vec<OffboardingRow>>;
}

/// A record hashed with plain SHA-256 ([`audit_chain_hash`]): the chain before it was
/// keyed. Anyone who can write the database can recompute such links.
pub const AUDIT_CHAIN_SHA256: i16 = 1;
/// A record linked with HMAC-SHA256 under the audit key ([`audit_chain_mac`]): only
/// the holder of the master key can compute such links.
pub const AUDIT_CHAIN_HMAC: i16 = 2;

/// The audit chain's HMAC key, derived from the master key (services/admins/audit.rs).
/// Debug never shows it.
#[derive(Clone)]
pub struct AuditKey([u8; 32]);

impl AuditKey {
    pub fn new(key: [u8; 32]) -> Self {
        AuditKey(key)
    }
}

impl std::fmt::Debug for AuditKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuditKey(<redacted>)")
    }
}

/// A record's link under the audit key: HMAC-SHA256 over the same fields as
/// [`audit_chain_hash`], hex.
#[allow(clippy::too_many_arguments)]
pub fn audit_chain_mac(
    key: &AuditKey,
    prev_hash: &str,
    seq: i64,
    event_id: Option<i64>,
    at: DateTime<Utc>,
    actor: &str,
    address: Option<&str>,
    action: &str,
    outcome: &str,
    details: &str,
) -> String {
    let bytes = audit_chain_input(
        prev_hash, seq, event_id, at, actor, address, action, outcome, details,
    );
    let mac = openssl::pkey::PKey::hmac(&key.0)
        .and_then(|pkey| {
            let mut signer =
                openssl::sign::Signer::new(openssl::hash::MessageDigest::sha256(), &pkey)?;
            signer.update(&bytes)?;
            signer.sign_to_vec()
        })
        // HMAC over memory does not fail; were it to, the link matches nothing.
        .unwrap_or_default();
    hex::encode(mac)
}

/// The audit trail's chain before it was keyed: a record's hash covers the previous
/// record's hash and every field of its own, each length-prefixed so that no two
/// different records hash alike. Timestamps are hashed as stored (microseconds, which
/// both engines keep).
#[allow(clippy::too_many_arguments)]
pub fn audit_chain_hash(
    prev_hash: &str,
    seq: i64,
    event_id: Option<i64>,
    at: DateTime<Utc>,
    actor: &str,
    address: Option<&str>,
    action: &str,
    outcome: &str,
    details: &str,
) -> String {
    hex::encode(openssl::sha::sha256(&audit_chain_input(
        prev_hash, seq, event_id, at, actor, address, action, outcome, details,
    )))
}

/// What a link covers: the previous link and the record's fields, length-prefixed.
#[allow(clippy::too_many_arguments)]
fn audit_chain_input(
    prev_hash: &str,
    seq: i64,
    event_id: Option<i64>,
    at: DateTime<Utc>,
    actor: &str,
    address: Option<&str>,
    action: &str,
    outcome: &str,
    details: &str,
) -> Vec<u8> {
    let at = at.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string();
    let seq = seq.to_string();
    let event_id = event_id.map(|e| e.to_string()).unwrap_or_default();
    let mut bytes = Vec::new();
    for part in [
        prev_hash,
        &seq,
        &event_id,
        &at,
        actor,
        address.unwrap_or(""),
        action,
        outcome,
        details,
    ] {
        bytes.extend_from_slice(&(part.len() as u64).to_be_bytes());
        bytes.extend_from_slice(part.as_bytes());
    }
    bytes
}
