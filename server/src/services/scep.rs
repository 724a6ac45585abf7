//! The SCEP server (RFC 8894) for device identity certificates: checks the one-time
//! challenge of an enrollment, issues from the built-in device CA, renews what it
//! issued. Every failure is a SCEP failInfo reply, never an HTTP error. Failures that
//! name nothing of ours are only counted (metrics.rs): one event per garbage request
//! would let anyone fill the event log.

use super::pki::Pki;
use super::tokens::hash_token;
use super::{ServiceError, ServiceResult};
use crate::domain::event::{kinds, severity, NewEvent};
use crate::metrics::{bump, METRICS};
use crate::storage::{ChallengeRefusal, IssuedCertificate, Storage};
use chrono::{TimeZone, Utc};
use enrollment::ca::{CaError, KeyUsageBits};
use enrollment::scep::{self, FailInfo, MessageType, PkiRequest, RequestEnvelope};
use openssl::nid::Nid;
use openssl::x509::{X509Name, X509};
use std::sync::Arc;

/// Identity certificates are valid this long; Apple devices renew them by SCEP.
pub const CERTIFICATE_DAYS: u32 = 365;
/// Apple's SCEP payload "Key Usage" 5: signing and encryption.
const KEY_USAGE: u8 = 5;

pub struct ScepService {
    /// How long before its expiry a device certificate may be renewed.
    renewal_window: chrono::Duration,
    store: Arc<dyn Storage>,
    pki: Arc<Pki>,
    organization: String,
}

/// A reply to send: content type and body.
pub struct ScepReply {
    pub content_type: &'static str,
    pub body: Vec<u8>,
    /// The request carried a challenge no enrollment issued: a guess, which the HTTP
    /// layer counts against the client's address.
    pub wrong_challenge: bool,
}

/// When a certificate expires; a time that cannot be read counts as already past.
fn not_after(cert: &X509) -> chrono::DateTime<Utc> {
    enrollment::identity::unix_time(cert.not_after())
        .and_then(|secs| Utc.timestamp_opt(secs, 0).single())
        .unwrap_or(chrono::DateTime::<Utc>::MIN_UTC)
}

impl ScepService {
    pub fn new(
        store: Arc<dyn Storage>,
        pki: Arc<Pki>,
        organization: String,
        renewal_window: chrono::Duration,
    ) -> Self {
        ScepService {
            store,
            pki,
            organization,
            renewal_window,
        }
    }

    pub fn ca_caps(&self) -> ScepReply {
        ScepReply {
            content_type: scep::CA_CAPS_CONTENT_TYPE,
            body: scep::CA_CAPS.as_bytes().to_vec(),
            wrong_challenge: false,
        }
    }

    pub fn ca_cert(&self) -> ScepReply {
        let (content_type, body) = scep::ca_cert_response(&self.pki.device_ca);
        ScepReply {
            content_type,
            body,
            wrong_challenge: false,
        }
    }

    fn failure(&self, envelope: &RequestEnvelope, fail: FailInfo) -> ServiceResult<ScepReply> {
        let body = scep::cert_rep_failure(envelope, fail, &self.pki.device_ca).map_err(|e| {
            ServiceError::BadRequest(format!(
                "not a SCEP message this server can answer: {}",
                e.reason
            ))
        })?;
        Ok(ScepReply {
            content_type: scep::CERT_REP_CONTENT_TYPE,
            body,
            wrong_challenge: false,
        })
    }

    /// A refusal of a request that names nothing of ours (unparseable, no or unknown
    /// challenge, unsupported type, a signer we never issued): anyone can send these,
    /// so they are counted (metrics.rs), never written as events.
    fn refuse_anonymous(
        &self,
        envelope: &RequestEnvelope,
        fail: FailInfo,
        reason: &str,
    ) -> ServiceResult<ScepReply> {
        tracing::debug!(?fail, reason, "anonymous SCEP request refused");
        bump(&METRICS.scep_refused);
        self.failure(envelope, fail)
    }

    /// A refusal tied to something of ours (a challenge an enrollment issued, a
    /// certificate we issued): counted, and recorded as an event.
    async fn refuse(
        &self,
        envelope: &RequestEnvelope,
        fail: FailInfo,
        reason: &str,
    ) -> ServiceResult<ScepReply> {
        tracing::warn!(?fail, reason, "SCEP request refused");
        bump(&METRICS.scep_refused);
        self.store
            .record(
                NewEvent::new(kinds::SCEP_REFUSED, format!("SCEP request refused: {reason}"))
                    .severity(severity::LOW)
                    .data(serde_json::json!({ "fail_info": format!("{fail:?}"), "transaction_id": envelope.transaction_id })),
            )
            .await?;
        self.failure(envelope, fail)
    }

    /// A renewal signed by a revoked certificate: refused the SCEP way (a CertRep
    /// FAILURE with badCertId, RFC 8894 §3.3.2.2, which clients report and do not
    /// retry) and recorded as a security event on the device it belonged to.
    async fn refuse_revoked(
        &self,
        envelope: &RequestEnvelope,
        fingerprint: &str,
        revoked_at: chrono::DateTime<Utc>,
        reason: Option<String>,
    ) -> ServiceResult<ScepReply> {
        tracing::warn!(
            fingerprint,
            "SCEP renewal with a revoked certificate refused"
        );
        bump(&METRICS.scep_refused);
        let device = self
            .store
            .issued_certificate(fingerprint)
            .await?
            .and_then(|c| c.device_id);
        let mut event = NewEvent::new(
            kinds::SECURITY_REVOKED_IDENTITY_REFUSED,
            "SCEP renewal signed by a revoked certificate refused",
        )
        .actor("scep")
        .severity(severity::MEDIUM)
        .data(serde_json::json!({
            "presented": fingerprint,
            "revoked_at": revoked_at,
            "reason": reason,
            "transaction_id": envelope.transaction_id,
        }));
        if let Some(device) = &device {
            event = event.device(device);
        }
        self.store.record(event).await?;
        self.failure(envelope, FailInfo::BadCertId)
    }

    /// A subject never used before: devices are told apart by their certificate.
    fn unique_subject(&self) -> ServiceResult<(X509Name, String)> {
        let cn = format!("mdm-device-{}", uuid::Uuid::new_v4());
        let mut b = X509Name::builder().map_err(|e| ServiceError::Internal(e.to_string()))?;
        b.append_entry_by_nid(Nid::COMMONNAME, &cn)
            .map_err(|e| ServiceError::Internal(e.to_string()))?;
        b.append_entry_by_nid(Nid::ORGANIZATIONNAME, &self.organization)
            .map_err(|e| ServiceError::Internal(e.to_string()))?;
        Ok((b.build(), format!("CN={cn},O={}", self.organization)))
    }

    fn issue(&self, req: &PkiRequest) -> Result<(X509, IssuedCertificate), (FailInfo, String)> {
        let (subject, subject_text) = self
            .unique_subject()
            .map_err(|e| (FailInfo::BadRequest, e.to_string()))?;
        let cert = self
            .pki
            .device_ca
            .issue(
                &req.csr,
                &subject,
                CERTIFICATE_DAYS,
                KeyUsageBits(KEY_USAGE),
            )
            .map_err(|e| match e {
                CaError::UnsupportedKey(_) => (FailInfo::BadAlg, e.to_string()),
                other => (FailInfo::BadRequest, other.to_string()),
            })?;
        let serial = cert
            .serial_number()
            .to_bn()
            .ok()
            .and_then(|b| b.to_hex_str().ok().map(|s| s.to_string()))
            .unwrap_or_default();
        let record = IssuedCertificate {
            serial,
            fingerprint: enrollment::identity::fingerprint(&cert),
            subject: subject_text,
            enrollment_id: None,
            device_id: None,
            renewed_from: None,
            issued_at: Utc::now(),
            not_after: not_after(&cert),
            purpose: "identity".into(),
        };
        Ok((cert, record))
    }

    fn success(&self, req: &PkiRequest, cert: &X509) -> ServiceResult<ScepReply> {
        let body = scep::cert_rep_success(req, cert, &self.pki.device_ca)
            .map_err(|e| ServiceError::Internal(format!("building CertRep: {}", e.reason)))?;
        Ok(ScepReply {
            content_type: scep::CERT_REP_CONTENT_TYPE,
            body,
            wrong_challenge: false,
        })
    }

    pub async fn pki_operation(&self, message: &[u8]) -> ServiceResult<ScepReply> {
        let req = match scep::parse_request(message, &self.pki.device_ca) {
            Ok(req) => req,
            Err(e) => return self.refuse_anonymous(&e.envelope, e.fail_info, &e.reason),
        };
        let envelope = req.envelope();
        match req.message_type {
            // A PKCSReq signed by a certificate we issued is a renewal too (RFC 8894
            // §3.3.1.2; certmonger rekeys this way): no challenge is needed then.
            MessageType::PkcsReq if self.pki.device_ca.issued(&req.signer) => {
                self.renew(&req, &envelope).await
            }
            MessageType::PkcsReq => self.enroll(&req, &envelope).await,
            MessageType::RenewalReq => self.renew(&req, &envelope).await,
            other => self.refuse_anonymous(
                &envelope,
                FailInfo::BadRequest,
                &format!("{other:?} is not supported"),
            ),
        }
    }

    async fn enroll(
        &self,
        req: &PkiRequest,
        envelope: &RequestEnvelope,
    ) -> ServiceResult<ScepReply> {
        let Some(challenge) = req.challenge_password.as_deref().filter(|c| !c.is_empty()) else {
            return self.refuse_anonymous(envelope, FailInfo::BadRequest, "no challenge password");
        };
        let hash = hash_token(challenge);
        let now = Utc::now();
        match self.store.check_challenge(&hash, now).await? {
            Ok(_) => {}
            // No enrollment issued it: a guess, counted against the address too.
            Err(refusal @ ChallengeRefusal::Unknown) => {
                bump(&METRICS.scep_unknown_challenge);
                let mut reply =
                    self.refuse_anonymous(envelope, FailInfo::BadRequest, &describe(&refusal))?;
                reply.wrong_challenge = true;
                return Ok(reply);
            }
            // Used, expired, or its enrollment refuses: an event of that enrollment.
            Err(refusal) => {
                return self
                    .refuse(envelope, FailInfo::BadRequest, &describe(&refusal))
                    .await
            }
        }
        let (cert, record) = match self.issue(req) {
            Ok(issued) => issued,
            Err((fail, reason)) => return self.refuse(envelope, fail, &reason).await,
        };
        let fingerprint = record.fingerprint.clone();
        match self.store.redeem_challenge(&hash, record, now).await? {
            Ok(enrollment) => {
                self.store
                    .record(
                        NewEvent::new(
                            kinds::SCEP_CERTIFICATE_ISSUED,
                            format!("identity certificate issued through enrollment {:?}", enrollment.name),
                        )
                        .actor("scep")
                        .data(serde_json::json!({ "enrollment_id": enrollment.id, "fingerprint": fingerprint })),
                    )
                    .await?;
                self.success(req, &cert)
            }
            Err(refusal) => {
                self.refuse(envelope, FailInfo::BadRequest, &describe(&refusal))
                    .await
            }
        }
    }

    async fn renew(
        &self,
        req: &PkiRequest,
        envelope: &RequestEnvelope,
    ) -> ServiceResult<ScepReply> {
        let old = enrollment::identity::fingerprint(&req.signer);
        if !self.pki.device_ca.issued(&req.signer) {
            return self.refuse_anonymous(
                envelope,
                FailInfo::BadCertId,
                "renewal signed by a certificate this CA did not issue",
            );
        }
        if let Some((revoked_at, reason)) = self.store.certificate_revocation(&old).await? {
            return self
                .refuse_revoked(envelope, &old, revoked_at, reason)
                .await;
        }
        if not_after(&req.signer) <= Utc::now() {
            return self
                .refuse(
                    envelope,
                    FailInfo::BadTime,
                    "renewal signed by an expired certificate",
                )
                .await;
        }
        if not_after(&req.signer) - Utc::now() > self.renewal_window {
            return self
                .refuse(
                    envelope,
                    FailInfo::BadTime,
                    &format!(
                        "renewal before the renewal window ({} days before expiry)",
                        self.renewal_window.num_days()
                    ),
                )
                .await;
        }
        let (cert, mut record) = match self.issue(req) {
            Ok(issued) => issued,
            Err((fail, reason)) => return self.refuse(envelope, fail, &reason).await,
        };
        record.renewed_from = Some(old.clone());
        let fingerprint = record.fingerprint.clone();
        let device = match self.store.record_renewal(record).await? {
            Ok(device) => device,
            // The certificate just made is discarded: nothing about it was stored.
            Err(reason) => return self.refuse(envelope, FailInfo::BadCertId, &reason).await,
        };
        self.store
            .record(
                NewEvent::new(
                    kinds::DEVICE_IDENTITY_RENEWED,
                    "identity certificate renewed",
                )
                .actor("scep")
                .device(&device)
                .data(serde_json::json!({ "previous": old, "current": fingerprint })),
            )
            .await?;
        self.success(req, &cert)
    }
}

fn describe(refusal: &ChallengeRefusal) -> String {
    match refusal {
        ChallengeRefusal::Unknown => "unknown challenge".into(),
        ChallengeRefusal::AlreadyUsed => "challenge already used".into(),
        ChallengeRefusal::Expired => "challenge expired".into(),
        ChallengeRefusal::Enrollment(message) => message.clone(),
    }
}
