//! SCEP (RFC 8894), server side, independent of any HTTP framework: the HTTP layer
//! answers `GetCACaps` with [`CA_CAPS`], `GetCACert` with [`ca_cert_response`], and
//! `PKIOperation` by [`parse_request`], its own policy (challenge, subject), then
//! [`crate::ca::CertificateAuthority::issue`] and [`cert_rep_success`] or
//! [`cert_rep_failure`].
//!
//! [`client`] is the device side, for the simulator and tests.

mod algorithms;
mod attributes;
pub mod client;
mod csr;
mod envelope;
mod reply;
mod request;
mod signed_data;

use openssl::x509::{X509Req, X509};

use crate::ca::CertificateAuthority;

pub use algorithms::{ContentCipher, DigestAlgorithm};
pub use reply::{cert_rep_failure, cert_rep_success};
pub use request::parse_request;

/// The `GetCACaps` answer. Each line is true of this implementation: requests may be
/// POSTed, signed with SHA-256 and encrypted with AES; renewal is supported.
pub const CA_CAPS: &str = "POSTPKIOperation\nSHA-256\nAES\nSCEPStandard\nRenewal\n";

/// Content type of a `GetCACaps` answer.
pub const CA_CAPS_CONTENT_TYPE: &str = "text/plain";

/// Content type of a `PKIOperation` answer (a CertRep).
pub const CERT_REP_CONTENT_TYPE: &str = "application/x-pki-message";

/// Content type of a `GetCACert` answer holding the CA certificate alone.
pub const CA_CERT_CONTENT_TYPE: &str = "application/x-x509-ca-cert";

/// `GetCACert`: the CA certificate alone, DER. There is no RA: the CA certificate
/// both encrypts requests and verifies replies.
pub fn ca_cert_response(ca: &CertificateAuthority) -> (&'static str, Vec<u8>) {
    let der = ca.cert().to_der().expect("a loaded certificate encodes");
    (CA_CERT_CONTENT_TYPE, der)
}

/// The `messageType` attribute (RFC 8894 §3.2.1.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageType {
    CertRep,
    RenewalReq,
    PkcsReq,
    CertPoll,
    GetCert,
    GetCrl,
}

impl MessageType {
    pub fn code(self) -> u8 {
        match self {
            MessageType::CertRep => 3,
            MessageType::RenewalReq => 17,
            MessageType::PkcsReq => 19,
            MessageType::CertPoll => 20,
            MessageType::GetCert => 21,
            MessageType::GetCrl => 22,
        }
    }

    pub fn from_code(text: &str) -> Option<Self> {
        Some(match text.trim() {
            "3" => MessageType::CertRep,
            "17" => MessageType::RenewalReq,
            "19" => MessageType::PkcsReq,
            "20" => MessageType::CertPoll,
            "21" => MessageType::GetCert,
            "22" => MessageType::GetCrl,
            _ => return None,
        })
    }
}

/// The `failInfo` attribute (RFC 8894 §3.2.1.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailInfo {
    BadAlg,
    BadMessageCheck,
    BadRequest,
    BadTime,
    BadCertId,
}

impl FailInfo {
    pub fn code(self) -> u8 {
        match self {
            FailInfo::BadAlg => 0,
            FailInfo::BadMessageCheck => 1,
            FailInfo::BadRequest => 2,
            FailInfo::BadTime => 3,
            FailInfo::BadCertId => 4,
        }
    }

    pub fn from_code(text: &str) -> Option<Self> {
        Some(match text.trim() {
            "0" => FailInfo::BadAlg,
            "1" => FailInfo::BadMessageCheck,
            "2" => FailInfo::BadRequest,
            "3" => FailInfo::BadTime,
            "4" => FailInfo::BadCertId,
            _ => return None,
        })
    }
}

/// A PKIOperation request, decrypted and verified.
pub struct PkiRequest {
    /// `PkcsReq` or `RenewalReq`: the only kinds that carry a CSR.
    pub message_type: MessageType,
    pub transaction_id: String,
    pub sender_nonce: Vec<u8>,
    /// Its self-signature has been verified.
    pub csr: X509Req,
    /// From the CSR's challengePassword attribute.
    pub challenge_password: Option<String>,
    /// The certificate that signed the message: self-signed for a PKCSReq, for a
    /// RenewalReq one issued by this CA and still valid.
    pub signer: X509,
    /// The digest the client signed with; replies use it too, but never below SHA-256.
    pub digest: DigestAlgorithm,
    /// The cipher the client encrypted the CSR with (DES variants are accepted for
    /// compatibility; a policy may refuse them).
    pub request_cipher: ContentCipher,
    /// The cipher the reply will be encrypted with: see [`ContentCipher::for_reply`].
    pub reply_cipher: ContentCipher,
}

impl std::fmt::Debug for PkiRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PkiRequest")
            .field("message_type", &self.message_type)
            .field("transaction_id", &self.transaction_id)
            .field("csr_subject", &self.csr.subject_name())
            .field("has_challenge", &self.challenge_password.is_some())
            .field("signer", &self.signer.subject_name())
            .field("digest", &self.digest)
            .field("request_cipher", &self.request_cipher)
            .finish_non_exhaustive()
    }
}

impl PkiRequest {
    /// What a failure reply to this request needs, e.g. after a wrong challenge.
    pub fn envelope(&self) -> RequestEnvelope {
        RequestEnvelope {
            message_type: Some(self.message_type),
            transaction_id: Some(self.transaction_id.clone()),
            sender_nonce: Some(self.sender_nonce.clone()),
            signer: Some(self.signer.clone()),
            digest: Some(self.digest),
        }
    }
}

/// What is known of a request even when it cannot be processed, so that a failure
/// CertRep can still be built. Nothing here has been verified.
#[derive(Debug, Clone, Default)]
pub struct RequestEnvelope {
    pub message_type: Option<MessageType>,
    pub transaction_id: Option<String>,
    pub sender_nonce: Option<Vec<u8>>,
    pub signer: Option<X509>,
    pub digest: Option<DigestAlgorithm>,
}

/// A request that cannot be served, with the failInfo to answer it with.
#[derive(Debug)]
pub struct ScepError {
    pub fail_info: FailInfo,
    pub reason: String,
    pub envelope: RequestEnvelope,
}

impl ScepError {
    pub(crate) fn new(
        fail_info: FailInfo,
        reason: impl Into<String>,
        envelope: &RequestEnvelope,
    ) -> Self {
        ScepError {
            fail_info,
            reason: reason.into(),
            envelope: envelope.clone(),
        }
    }
}

impl std::fmt::Display for ScepError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SCEP {:?}: {}", self.fail_info, self.reason)
    }
}

impl std::error::Error for ScepError {}
