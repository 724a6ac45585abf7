//! Building CertRep replies (RFC 8894 §3.3.2).

use openssl::rand::rand_bytes;
use openssl::x509::X509;

use super::attributes::PkiAttributes;
use super::envelope;
use super::signed_data::{self, BuildError};
use super::{DigestAlgorithm, FailInfo, MessageType, PkiRequest, RequestEnvelope, ScepError};
use crate::ca::CertificateAuthority;

const PKI_STATUS_SUCCESS: &str = "0";
const PKI_STATUS_FAILURE: &str = "2";

/// CertRep SUCCESS: the issued certificate in a certs-only SignedData, encrypted to
/// the request's signer, in a SignedData signed by the CA.
pub fn cert_rep_success(
    req: &PkiRequest,
    issued: &X509,
    ca: &CertificateAuthority,
) -> Result<Vec<u8>, ScepError> {
    let failed = |e: BuildError| {
        ScepError::new(
            FailInfo::BadRequest,
            format!("building the CertRep: {e}"),
            &req.envelope(),
        )
    };
    // The issued certificate alone: micromdm's client takes the first certificate of
    // this set as its own, and DER set order cannot be chosen. The CA certificate
    // travels in the outer SignedData.
    let certs_only = signed_data::certs_only(&[issued]).map_err(failed)?;
    let enveloped =
        envelope::seal(&certs_only, &req.signer, req.reply_cipher).map_err(|e| failed(e.into()))?;
    let attributes = PkiAttributes {
        pki_status: Some(PKI_STATUS_SUCCESS.into()),
        ..reply_attributes(Some(&req.transaction_id), Some(&req.sender_nonce)).map_err(failed)?
    };
    signed_data::sign(
        &enveloped,
        &attributes,
        ca.cert(),
        ca.key(),
        reply_digest(Some(req.digest)),
        &[],
    )
    .map_err(failed)
}

/// CertRep FAILURE with `fail`. It needs the request's transactionID; the
/// recipientNonce is left out if the request had no senderNonce.
pub fn cert_rep_failure(
    envelope: &RequestEnvelope,
    fail: FailInfo,
    ca: &CertificateAuthority,
) -> Result<Vec<u8>, ScepError> {
    let failed = |reason: String| ScepError::new(FailInfo::BadRequest, reason, envelope);
    let transaction_id = envelope
        .transaction_id
        .as_deref()
        .ok_or_else(|| failed("no transactionID to answer to".into()))?;
    let attributes = PkiAttributes {
        pki_status: Some(PKI_STATUS_FAILURE.into()),
        fail_info: Some(fail.code().to_string()),
        ..reply_attributes(Some(transaction_id), envelope.sender_nonce.as_deref())
            .map_err(|e| failed(e.to_string()))?
    };
    // RFC 8894 omits the pkcsPKIEnvelope of a failure. The content is an empty
    // OCTET STRING rather than absent: openssl-based clients (certmonger) take an
    // absent content for a detached signature and refuse to verify it.
    signed_data::sign(
        &[],
        &attributes,
        ca.cert(),
        ca.key(),
        reply_digest(envelope.digest),
        &[],
    )
    .map_err(|e| failed(format!("building the CertRep: {e}")))
}

fn reply_attributes(
    transaction_id: Option<&str>,
    recipient_nonce: Option<&[u8]>,
) -> Result<PkiAttributes, BuildError> {
    let mut sender_nonce = vec![0u8; 16];
    rand_bytes(&mut sender_nonce)?;
    Ok(PkiAttributes {
        message_type: Some(MessageType::CertRep.code().to_string()),
        transaction_id: transaction_id.map(str::to_owned),
        sender_nonce: Some(sender_nonce),
        recipient_nonce: recipient_nonce.map(<[u8]>::to_vec),
        ..PkiAttributes::default()
    })
}

/// The client's digest, so that it can verify the reply, but never below SHA-256:
/// the CA key must not sign SHA-1 digests of content a client helps choose.
fn reply_digest(requested: Option<DigestAlgorithm>) -> DigestAlgorithm {
    requested
        .unwrap_or(DigestAlgorithm::Sha256)
        .max(DigestAlgorithm::Sha256)
}
