//! The Apple device protocol: check-in messages and command reports.
//!
//! Every call arrives with a [`VerifiedIdentity`] (the certificate that signed the
//! request, already checked against the device CA by the HTTP layer). Except on
//! Authenticate, that certificate must be the one bound to the UDID.
//!
//! The device cache (server/src/cache) spares the database the questions whose
//! answer it already has: that a certificate is bound to this UDID and not revoked,
//! and that a device's queue is empty. Only answers that let a request through are
//! cached; every refusal is decided, and recorded, by the database.
//! `last_seen_at` is written behind (`last_seen.rs`).

pub mod last_seen;

use super::revocation::{RevocationService, RevokedBy};
use super::{seal_purpose, ServiceError, ServiceResult};
use crate::cache::DeviceCache;
use crate::domain::device::os_family_name;
use crate::domain::event::{kinds, severity, NewEvent};
use crate::domain::{CommandRecord, CommandStatus};
use crate::storage::RevocationEffect;
use crate::storage::{
    AuthenticateRecord, BindingRefusal, BindingRules, DeviceIdentityRow, FollowUp, FollowUpFn,
    ResultRecord, Storage, TokenUpdateRecord, UserChannelRecord,
};
use chrono::Utc;
use enrollment::crl::RevocationReason;
use enrollment::identity::VerifiedIdentity;
use enrollment::seal::Sealer;
use last_seen::LastSeen;
use profiles::checkin::{self, CheckinMessage};
use profiles::commands::AppleOs;
use profiles::report::{self, CommandReport, ReportStatus};
use std::sync::Arc;

/// What the server's own records say of a certificate presented at Authenticate.
#[derive(Debug, Default)]
struct CertificateOrigin {
    /// Issued by our SCEP server for an enrollment that still admits devices, and not
    /// a renewal: a real re-enrollment.
    fresh_from_enrollment: bool,
    enrollment_id: Option<String>,
    /// Why the certificate's enrollment admits nothing (revoked).
    closed: Option<String>,
    /// When our CA issued it.
    issued_at: Option<chrono::DateTime<Utc>>,
}

/// What to answer a check-in with.
#[derive(Debug, PartialEq)]
pub enum CheckinReply {
    /// 200 with an empty body.
    Ok,
    /// 200 with a plist body.
    Plist(Vec<u8>),
}

pub struct AppleService {
    store: Arc<dyn Storage>,
    sealer: Sealer,
    revocation: Arc<RevocationService>,
    cache: Arc<DeviceCache>,
    last_seen: Arc<LastSeen>,
}

impl AppleService {
    /// `cache` is kept current by the store (`SqlStore::with_device_cache`,
    /// `keep_current`); `last_seen` is flushed by its owner.
    pub fn new(
        store: Arc<dyn Storage>,
        sealer: Sealer,
        revocation: Arc<RevocationService>,
        cache: Arc<DeviceCache>,
        last_seen: Arc<LastSeen>,
    ) -> Self {
        AppleService {
            store,
            sealer,
            revocation,
            cache,
            last_seen,
        }
    }

    /// The certificates whose chain verified (for the HTTP layer's signature check).
    pub fn verified_chains(&self) -> &DeviceCache {
        &self.cache
    }

    pub async fn checkin(
        &self,
        identity: &VerifiedIdentity,
        message: CheckinMessage,
    ) -> ServiceResult<CheckinReply> {
        let udid = message
            .enrollment()
            .device_key()
            .unwrap_or_default()
            .to_owned();
        match message {
            CheckinMessage::Authenticate(a) => self.authenticate(identity, udid, a).await,
            CheckinMessage::TokenUpdate(t) => {
                let device = self.authorize(identity, &udid).await?;
                let token_hex = t.token.as_ref().map(|d| hex::encode(d.as_ref()));
                if t.enrollment.is_user_channel() {
                    self.store
                        .user_token_update(
                            &device.id,
                            UserChannelRecord {
                                user_id: t.enrollment.user_id.clone().unwrap_or_default(),
                                user_short_name: t.enrollment.user_short_name.clone(),
                                user_long_name: t.enrollment.user_long_name.clone(),
                                push_token_hex: token_hex,
                                push_magic: t.push_magic.clone(),
                            },
                        )
                        .await?;
                    return Ok(CheckinReply::Ok);
                }
                let unlock_token_sealed = match &t.unlock_token {
                    Some(token) => {
                        Some(self.seal(seal_purpose::UNLOCK_TOKEN, &device.id, token.as_ref())?)
                    }
                    None => None,
                };
                let first = self
                    .store
                    .token_update(
                        &device.id,
                        TokenUpdateRecord {
                            topic: t.topic.clone(),
                            push_token_hex: token_hex,
                            push_magic: t.push_magic.clone(),
                            unlock_token_sealed,
                            awaiting_configuration: t.awaiting_configuration,
                        },
                    )
                    .await?;
                let (kind, text) = if first {
                    (kinds::DEVICE_ENROLLED, format!("device {udid} enrolled"))
                } else {
                    (
                        kinds::DEVICE_TOKEN_UPDATED,
                        format!("device {udid} updated its push token"),
                    )
                };
                self.store
                    .record(NewEvent::new(kind, text).device(&device.id).actor("device"))
                    .await?;
                Ok(CheckinReply::Ok)
            }
            CheckinMessage::CheckOut(_) => {
                let device = self.authorize(identity, &udid).await?;
                // The profile (and with it the identity) is gone from the device: the
                // certificate must not speak for it again.
                let cancelled = self
                    .revocation
                    .revoke(
                        &device.id,
                        RevocationReason::CessationOfOperation,
                        RevocationEffect::Revoke,
                        RevokedBy::Device,
                        "the device removed its MDM profile (CheckOut)",
                    )
                    .await?
                    .cancelled_commands;
                self.store
                    .record(
                        NewEvent::new(
                            kinds::DEVICE_CHECKED_OUT,
                            format!("device {udid} removed its MDM profile"),
                        )
                        .device(&device.id)
                        .actor("device")
                        .severity(severity::LOW)
                        .data(serde_json::json!({ "cancelled_commands": cancelled })),
                    )
                    .await?;
                Ok(CheckinReply::Ok)
            }
            CheckinMessage::SetBootstrapToken(s) => {
                let device = self.authorize(identity, &udid).await?;
                let sealed = match &s.bootstrap_token {
                    Some(token) => Some(self.seal(
                        seal_purpose::BOOTSTRAP_TOKEN,
                        &device.id,
                        token.as_ref(),
                    )?),
                    None => None,
                };
                let present = sealed.is_some();
                self.store.set_bootstrap_token(&device.id, sealed).await?;
                self.store
                    .record(
                        NewEvent::new(
                            kinds::DEVICE_BOOTSTRAP_TOKEN_SET,
                            if present {
                                "bootstrap token escrowed"
                            } else {
                                "bootstrap token cleared"
                            },
                        )
                        .device(&device.id)
                        .actor("device"),
                    )
                    .await?;
                Ok(CheckinReply::Ok)
            }
            CheckinMessage::GetBootstrapToken(_) => {
                let device = self.authorize(identity, &udid).await?;
                let sealed = self
                    .store
                    .bootstrap_token(&device.id)
                    .await?
                    .ok_or_else(|| {
                        ServiceError::NotFound(
                            "no bootstrap token is escrowed for this device".into(),
                        )
                    })?;
                let token = self
                    .sealer
                    .open(seal_purpose::BOOTSTRAP_TOKEN, &device.id, &sealed)
                    .map_err(|e| ServiceError::Internal(format!("bootstrap token: {e}")))?;
                self.store
                    .record(
                        NewEvent::new(
                            kinds::DEVICE_BOOTSTRAP_TOKEN_READ,
                            "bootstrap token handed back to the device",
                        )
                        .device(&device.id)
                        .actor("device"),
                    )
                    .await?;
                Ok(CheckinReply::Plist(checkin::bootstrap_token_reply(&token)))
            }
            CheckinMessage::UserAuthenticate(_) => {
                self.authorize(identity, &udid).await?;
                // Apple: a server that does not support user authentication answers
                // 410 Gone; the device then continues without a user channel.
                Err(ServiceError::Gone(
                    "this server does not support UserAuthenticate (user channel authentication)"
                        .into(),
                ))
            }
            CheckinMessage::DeclarativeManagement(_) => {
                self.authorize(identity, &udid).await?;
                Err(ServiceError::NotImplemented(
                    "declarative device management is not supported by this server yet".into(),
                ))
            }
        }
    }

    async fn authenticate(
        &self,
        identity: &VerifiedIdentity,
        udid: String,
        a: checkin::Authenticate,
    ) -> ServiceResult<CheckinReply> {
        let os = a
            .product_name
            .as_deref()
            .or(a.model.as_deref())
            .map(AppleOs::from_product)
            .unwrap_or(AppleOs::Unknown);
        let origin = self.certificate_origin(&identity.fingerprint).await?;
        if let Some(message) = origin.closed {
            // A certificate from a revoked enrollment enrolls nothing.
            return Err(self
                .refuse_binding(
                    identity,
                    &udid,
                    BindingRefusal::EnrollmentClosed { message },
                )
                .await?);
        }
        let rules = BindingRules {
            rebind_released: origin.fresh_from_enrollment,
            enrollment_id: origin.enrollment_id,
            certificate_issued_at: origin.issued_at,
            now: Utc::now(),
        };
        let outcome = self
            .store
            .authenticate(
                AuthenticateRecord {
                    udid: udid.clone(),
                    serial_number: a.serial_number,
                    imei: a.imei,
                    model: a.model,
                    model_name: a.model_name,
                    product_name: a.product_name,
                    os_family: os_family_name(os),
                    os_version: a.os_version,
                    build_version: a.build_version,
                    device_name: a.device_name,
                    topic: a.topic,
                    identity_fingerprint: identity.fingerprint.clone(),
                    identity_subject: identity.subject.clone(),
                    identity_not_after: identity.not_after.clone(),
                },
                rules,
            )
            .await?;
        let outcome = match outcome {
            Ok(outcome) => outcome,
            Err(refusal) => return Err(self.refuse_binding(identity, &udid, refusal).await?),
        };
        let event = NewEvent::new(
            kinds::DEVICE_AUTHENTICATED,
            format!("device {udid} started enrollment"),
        )
        .device(&outcome.device_id)
        .actor("device")
        .data(serde_json::json!({
            "re_enrollment": outcome.was_known,
            "cancelled_commands": outcome.cancelled_commands,
            "certificate": { "fingerprint": identity.fingerprint, "subject": identity.subject },
        }));
        self.store.record(event).await?;
        if let Some(enrollment) = &outcome.linked_enrollment {
            self.store
                .record(
                    NewEvent::new(
                        kinds::DEVICE_ENROLLMENT_LINKED,
                        format!("device enrolled through {:?}", enrollment.name),
                    )
                    .device(&outcome.device_id)
                    .data(serde_json::json!({
                        "enrollment_id": enrollment.id,
                        "user": enrollment.assigned_user,
                        "group": enrollment.assigned_group,
                        "uses": enrollment.uses,
                        "max_uses": enrollment.max_uses,
                    })),
                )
                .await?;
        }
        if let Some(previous) = outcome.rebound_from {
            // The record now answers to another certificate: whoever holds it gets
            // this device's commands. Allowed only after a check-out, a wipe or an
            // admin's approval, and always worth a look.
            self.store
                .record(
                    NewEvent::new(
                        kinds::DEVICE_IDENTITY_REBOUND,
                        format!("device {udid} re-enrolled with a new identity certificate"),
                    )
                    .device(&outcome.device_id)
                    .actor("device")
                    .severity(severity::HIGH)
                    .data(serde_json::json!({
                        "previous": previous,
                        "current": identity.fingerprint,
                        "approved_by_admin": outcome.approved,
                        "cancelled_commands": outcome.cancelled_commands,
                        "previous_certificate_revoked": true,
                        "escrowed_secrets_dropped": true,
                    })),
                )
                .await?;
        }
        Ok(CheckinReply::Ok)
    }

    /// What our own records say of the certificate: whether our SCEP server issued it
    /// for an enrollment (and which), whether it is a fresh one (what a real
    /// re-enrollment presents, unlike a renewal), and whether that enrollment is
    /// closed. A certificate from an external CA has no record.
    async fn certificate_origin(&self, fingerprint: &str) -> ServiceResult<CertificateOrigin> {
        let mut origin = CertificateOrigin::default();
        let Some(issued) = self.store.issued_certificate(fingerprint).await? else {
            return Ok(origin);
        };
        origin.issued_at = Some(issued.issued_at);
        if issued.purpose != "identity" {
            // A policy's Wi-Fi certificate from our CA proves nothing about which device
            // speaks: it never becomes (or replaces) a device identity.
            origin.closed = Some(format!(
                "this certificate was issued for {} (EAP-TLS), not as a device identity",
                issued.purpose
            ));
            return Ok(origin);
        }
        let Some(enrollment_id) = issued.enrollment_id else {
            return Ok(origin);
        };
        match self.store.enrollment(&enrollment_id).await? {
            Some((e, _)) if e.revoked_at.is_some() => {
                origin.closed = Some(format!(
                    "the enrollment {:?} this certificate came from was revoked",
                    e.name
                ));
            }
            Some(_) => {
                origin.fresh_from_enrollment = issued.renewed_from.is_none();
                origin.enrollment_id = Some(enrollment_id);
            }
            None => {}
        }
        Ok(origin)
    }

    /// Records a refused binding as a security event on the device it concerns and
    /// returns the 403 the device gets.
    async fn refuse_binding(
        &self,
        identity: &VerifiedIdentity,
        udid: &str,
        refusal: BindingRefusal,
    ) -> ServiceResult<ServiceError> {
        let (kind, device_id, message, answer) = match &refusal {
            BindingRefusal::BoundToAnotherDevice { device_id } => (
                kinds::SECURITY_IDENTITY_TAKEOVER_REFUSED,
                device_id.clone(),
                format!("a certificate bound to this device tried to authenticate as device {udid}"),
                "this certificate is bound to another device",
            ),
            BindingRefusal::Retired { device_id } => {
                // A revoked certificate is no identity at all: 401, like any
                // request signed by one.
                tracing::warn!(udid, presented = %identity.fingerprint, "Authenticate with a revoked certificate refused");
                self.store
                    .record(
                        NewEvent::new(
                            kinds::SECURITY_REVOKED_IDENTITY_REFUSED,
                            format!("a revoked certificate of this device tried to authenticate as device {udid}"),
                        )
                        .device(device_id)
                        .actor("device")
                        .severity(severity::HIGH)
                        .data(serde_json::json!({
                            "udid": udid,
                            "presented": identity.fingerprint,
                            "presented_subject": identity.subject,
                            "message": "Authenticate",
                        })),
                    )
                    .await?;
                return Ok(ServiceError::Unauthorized(
                    "this certificate was revoked and can no longer enroll".into(),
                ));
            }
            BindingRefusal::RevokedNeedsNewEnrollment { device_id } => (
                kinds::ENROLLMENT_REFUSED,
                device_id.clone(),
                format!(
                    "device {udid}, whose identity was revoked, tried to enroll with a certificate that is not from a new enrollment"
                ),
                "this device's identity was revoked: it enrolls again only through a new enrollment (install the enrollment profile again)",
            ),
            BindingRefusal::EnrollmentClosed { message } => {
                tracing::warn!(udid, presented = %identity.fingerprint, %message, "Authenticate refused");
                self.store
                    .record(
                        NewEvent::new(
                            kinds::ENROLLMENT_REFUSED,
                            format!("device {udid} refused: {message}"),
                        )
                        .actor("device")
                        .severity(severity::LOW)
                        .data(serde_json::json!({ "udid": udid, "presented": identity.fingerprint })),
                    )
                    .await?;
                return Ok(ServiceError::Forbidden(message.clone()));
            }
            BindingRefusal::DeviceHeld { device_id, .. } => (
                kinds::SECURITY_REENROLLMENT_HELD,
                device_id.clone(),
                format!(
                    "device {udid} tried to enroll with a new certificate while still enrolled; \
                     an administrator must approve its re-enrollment"
                ),
                "this device is enrolled with another certificate; an administrator must approve its re-enrollment",
            ),
        };
        tracing::warn!(udid, presented = %identity.fingerprint, ?refusal, "Authenticate refused");
        let current = match &refusal {
            BindingRefusal::DeviceHeld {
                current_fingerprint,
                ..
            } => current_fingerprint.clone(),
            _ => None,
        };
        self.store
            .record(
                NewEvent::new(kind, message)
                    .device(&device_id)
                    .actor("device")
                    .severity(severity::HIGH)
                    .data(serde_json::json!({
                        "udid": udid,
                        "presented": identity.fingerprint,
                        "presented_subject": identity.subject,
                        "current": current,
                    })),
            )
            .await?;
        Ok(ServiceError::Forbidden(answer.into()))
    }

    /// Takes a device's report and returns the next command plist, if any.
    pub async fn report(
        &self,
        identity: &VerifiedIdentity,
        report: CommandReport,
    ) -> ServiceResult<Option<Vec<u8>>> {
        let report = Arc::new(report);
        let udid = report
            .enrollment
            .device_key()
            .unwrap_or_default()
            .to_owned();
        let device = self.authorize(identity, &udid).await?;
        let now = Utc::now();
        if LastSeen::due(device.last_seen_at, now) {
            self.last_seen.note(&device.id, now);
            self.cache.seen(&identity.fingerprint, now);
        }
        if report.enrollment.is_user_channel() {
            // No user-channel commands exist yet; the user channel is answered empty.
            return Ok(None);
        }
        // A NotNow'd command waits for the device's next Idle: the device says NotNow
        // when it cannot act (locked, busy), and asking again at once would loop.
        let new_exchange = report.status == ReportStatus::Idle;
        let result = match &report.command_uuid {
            Some(uuid) => result_record(&self.sealer, uuid, &report)?.map(|r| (uuid.as_str(), r)),
            None => None,
        };
        let answered = result.is_some();
        let idle = new_exchange && !answered;
        // Empty when the row just read said so (same statement as the binding), or
        // when this instance knows the queue empty.
        if idle && (device.open_commands == Some(false) || self.cache.queue_known_empty(&device.id))
        {
            return Ok(None);
        }
        let generation = self.cache.queue_generation();
        // The store may make what follows on a thread of its own: it owns its share.
        let follow_up: FollowUpFn = {
            let report = report.clone();
            Box::new(move |command: &CommandRecord| follow_up(command, &report))
        };
        let outcome = self
            .store
            .report(&device.id, result, follow_up, new_exchange, now)
            .await?;
        // An exchange that ends with nothing left: no command to send now, none put
        // off with NotNow for the next Idle (read where empty queues are remembered),
        // and the one answered closed by its result.
        let exchange_ended_empty = answered
            && report.status != ReportStatus::NotNow
            && outcome.next.is_none()
            && outcome.put_off_waiting == Some(false);
        if (idle && outcome.next.is_none()) || exchange_ended_empty {
            // Nothing to send, NotNow'd commands included: so it stays until a
            // command is queued for this device.
            self.cache.mark_queue_empty(&device.id, generation);
        }
        if answered
            && self
                .after_result(&device, &report, outcome.recorded.as_ref())
                .await?
        {
            // The device is wiping itself: nothing more is sent to it.
            return Ok(None);
        }
        let Some(delivery) = outcome.next else {
            return Ok(None);
        };
        let plist = if delivery.payload_sealed {
            self.sealer
                .open(
                    seal_purpose::COMMAND_PAYLOAD,
                    &delivery.uuid,
                    &delivery.payload,
                )
                .map_err(|e| ServiceError::Internal(format!("command {}: {e}", delivery.uuid)))?
        } else {
            delivery.payload
        };
        Ok(Some(plist))
    }

    /// What follows a stored result outside the report's own writes ([`follow_up`]):
    /// a security event when the command was never this device's, the revocation
    /// of a wiped device's identity. Returns true when the identity was
    /// revoked (the device is wiping).
    async fn after_result(
        &self,
        device: &DeviceIdentityRow,
        report: &CommandReport,
        recorded: Option<&CommandRecord>,
    ) -> ServiceResult<bool> {
        let uuid = report.command_uuid.as_deref().unwrap_or_default();
        let Some(command) = recorded else {
            self.store
                .record(
                    NewEvent::new(
                        kinds::SECURITY_FOREIGN_RESULT,
                        format!("device reported a result for command {uuid}, which was never queued for it"),
                    )
                    .device(&device.id)
                    .actor("device")
                    .severity(severity::LOW)
                    .data(serde_json::json!({ "command_uuid": uuid, "status": report.status.as_str() })),
                )
                .await?;
            return Ok(false);
        };
        if report.status == ReportStatus::Acknowledged && command.request_type == "EraseDevice" {
            // The certificate is erased with the device; one that speaks again was
            // copied off it. A wiped device comes back only through a new enrollment.
            self.revocation
                .revoke(
                    &device.id,
                    RevocationReason::CessationOfOperation,
                    RevocationEffect::Revoke,
                    RevokedBy::Device,
                    "wiped (EraseDevice acknowledged)",
                )
                .await?;
            return Ok(true);
        }
        Ok(false)
    }

    /// The device this request may speak for: known, and bound to this certificate.
    async fn authorize(
        &self,
        identity: &VerifiedIdentity,
        udid: &str,
    ) -> ServiceResult<DeviceIdentityRow> {
        if let Some(device) =
            self.cache
                .bound_device(&identity.fingerprint, udid, Utc::now().timestamp())
        {
            return Ok(device);
        }
        let generation = self.cache.identity_generation();
        let device = self
            .store
            .identity_by_udid(udid)
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("device {udid} is not enrolled")))?;
        if device.identity_fingerprint.as_deref() != Some(identity.fingerprint.as_str()) {
            tracing::warn!(
                udid,
                presented = %identity.fingerprint,
                "request signed by a certificate not bound to this device"
            );
            self.store
                .record(
                    NewEvent::new(
                        kinds::SECURITY_IDENTITY_MISMATCH,
                        format!("request for device {udid} was signed by a certificate bound to another identity"),
                    )
                    .device(&device.id)
                    .actor("device")
                    .severity(severity::MEDIUM)
                    .data(serde_json::json!({
                        "udid": udid,
                        "expected": device.identity_fingerprint,
                        "presented": identity.fingerprint,
                        "presented_subject": identity.subject,
                    })),
                )
                .await?;
            return Err(ServiceError::Unauthorized(
                "the signing certificate is not the one this device enrolled with".into(),
            ));
        }
        if let Some(revoked_at) = device.identity_revoked_at {
            let reason = device
                .identity_revocation_reason
                .clone()
                .unwrap_or_else(|| "unspecified".into());
            tracing::warn!(udid, presented = %identity.fingerprint, %reason, "request signed by a revoked certificate");
            self.store
                .record(
                    NewEvent::new(
                        kinds::SECURITY_REVOKED_IDENTITY_REFUSED,
                        format!("device {udid} spoke with its revoked certificate"),
                    )
                    .device(&device.id)
                    .actor("device")
                    .severity(severity::MEDIUM)
                    .data(serde_json::json!({
                        "udid": udid,
                        "presented": identity.fingerprint,
                        "revoked_at": revoked_at,
                        "reason": reason,
                    })),
                )
                .await?;
            return Err(ServiceError::Unauthorized(format!(
                "this device's identity certificate was revoked ({reason}); it must enroll again"
            )));
        }
        self.cache
            .bind(&identity.fingerprint, udid, &device, generation);
        Ok(device)
    }

    fn seal(&self, purpose: &str, row: &str, secret: &[u8]) -> ServiceResult<Vec<u8>> {
        self.sealer
            .seal(purpose, row, secret)
            .map_err(|e| ServiceError::Internal(e.to_string()))
    }
}

/// The result to store for a report, None for Idle; one carrying a secret is sealed
/// to its command (services/results.rs).
fn result_record(
    sealer: &Sealer,
    command_uuid: &str,
    report: &CommandReport,
) -> ServiceResult<Option<ResultRecord>> {
    let status = match report.status {
        ReportStatus::Idle => return Ok(None),
        ReportStatus::Acknowledged => CommandStatus::Acknowledged,
        ReportStatus::Error => CommandStatus::Error,
        ReportStatus::CommandFormatError => CommandStatus::CommandFormatError,
        ReportStatus::NotNow => CommandStatus::NotNow,
    };
    let protected = super::results::protect(sealer, command_uuid, &report.raw)?;
    let mut parsed = serde_json::json!({
        "status": report.status.as_str(),
        "error_chain": report.error_chain,
        "fields": protected.fields,
    });
    if !protected.sealed_fields.is_empty() {
        parsed["sealed_fields"] = protected.sealed_fields.into();
    }
    Ok(Some(ResultRecord {
        status,
        raw: protected.raw,
        parsed,
    }))
}

/// What a result this report completed writes with it: its event, and the facts a
/// query result tells about the device. What the command was comes from the stored
/// record, never from the report.
fn follow_up(command: &CommandRecord, report: &CommandReport) -> FollowUp {
    let facts = (command.status == CommandStatus::Acknowledged)
        .then(|| report::device_facts(&command.request_type, &report.raw))
        .flatten()
        .map(|facts| {
            let family = facts
                .product_name
                .as_deref()
                .map(|p| os_family_name(AppleOs::from_product(p)));
            (facts, family)
        });
    FollowUp {
        event: describe_result(command),
        facts,
    }
}

/// The event stream's line for a finished command (NotNow is not an outcome yet).
fn describe_result(command: &CommandRecord) -> Option<NewEvent> {
    if command.status == CommandStatus::NotNow {
        return None;
    }
    Some(
        NewEvent::new(
            kinds::COMMAND_RESULT,
            format!("{} {}", command.request_type, command.status.as_str()),
        )
        .device(&command.device_id)
        .actor("device")
        .data(serde_json::json!({
            "command_uuid": command.uuid,
            "request_type": command.request_type,
            "status": command.status.as_str(),
        })),
    )
}
