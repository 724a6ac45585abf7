//! Reading a PKIOperation request: SignedData → EnvelopedData → PKCS#10.

use openssl::asn1::Asn1Time;
use openssl::x509::{X509Req, X509};

use super::envelope::{self, EnvelopeError};
use super::signed_data::{Parsed, SignedDataError};
use super::{csr, FailInfo, MessageType, PkiRequest, RequestEnvelope, ScepError};
use crate::ca::CertificateAuthority;

/// Parses a PKIOperation message (DER or BER): verifies its signature with the
/// certificate it carries, checks the SCEP attributes, decrypts the CSR with the CA
/// key and verifies the CSR's self-signature. For a RenewalReq the signer must be a
/// certificate this CA issued that is valid now.
///
/// Errors carry the failInfo to answer with and whatever was learnt of the request
/// (its [`RequestEnvelope`]) so that [`super::cert_rep_failure`] can answer it.
pub fn parse_request(der: &[u8], ca: &CertificateAuthority) -> Result<PkiRequest, ScepError> {
    let mut envelope = RequestEnvelope::default();
    let parsed = Parsed::read(der, None).map_err(|e| signed_data_error(e, &envelope))?;

    let attrs = &parsed.attributes;
    envelope.transaction_id = attrs.transaction_id.clone();
    envelope.sender_nonce = attrs.sender_nonce.clone();
    envelope.signer = Some(parsed.signer.clone());
    envelope.digest = parsed.digest;
    envelope.message_type = attrs
        .message_type
        .as_deref()
        .and_then(MessageType::from_code);

    let (content, digest) = parsed
        .verify()
        .map_err(|e| signed_data_error(e, &envelope))?;

    let fail = |info: FailInfo, reason: &str| ScepError::new(info, reason, &envelope);
    let transaction_id = attrs
        .transaction_id
        .clone()
        .filter(|t| !t.is_empty())
        .ok_or_else(|| fail(FailInfo::BadRequest, "no transactionID"))?;
    let sender_nonce = attrs
        .sender_nonce
        .clone()
        .filter(|n| !n.is_empty())
        .ok_or_else(|| fail(FailInfo::BadRequest, "no senderNonce"))?;
    let message_type = match envelope.message_type {
        Some(t @ (MessageType::PkcsReq | MessageType::RenewalReq)) => t,
        Some(other) => {
            // CertPoll, GetCert and GetCRL are never needed: we never answer PENDING
            // and keep no certificate store for clients to query.
            return Err(fail(
                FailInfo::BadRequest,
                &format!("{other:?} is not supported"),
            ));
        }
        None => return Err(fail(FailInfo::BadRequest, "missing or unknown messageType")),
    };
    if message_type == MessageType::RenewalReq {
        check_renewal_signer(&parsed.signer, ca, &envelope)?;
    }

    let opened = envelope::open(&content, ca.key(), ca.cert()).map_err(|e| match e {
        EnvelopeError::UnsupportedAlgorithm(what) => {
            fail(FailInfo::BadAlg, &format!("unsupported algorithm: {what}"))
        }
        EnvelopeError::Malformed(what) => fail(
            FailInfo::BadRequest,
            &format!("malformed EnvelopedData: {what}"),
        ),
        EnvelopeError::Undecryptable => undecryptable(&envelope),
    })?;
    // Until the CSR is known to be sound, every failure reads the same (see
    // envelope::open): garbage from a wrong key must not be told from a bad padding.
    let csr = X509Req::from_der(&opened.content).map_err(|_| undecryptable(&envelope))?;
    let csr_key = csr.public_key().map_err(|_| undecryptable(&envelope))?;
    if !csr.verify(&csr_key).unwrap_or(false) {
        return Err(fail(
            FailInfo::BadMessageCheck,
            "the CSR's self-signature does not verify",
        ));
    }
    let challenge_password = csr::challenge_password(&opened.content)
        .map_err(|e| fail(FailInfo::BadRequest, &format!("CSR attributes: {e}")))?;

    Ok(PkiRequest {
        message_type,
        transaction_id,
        sender_nonce,
        csr,
        challenge_password,
        signer: parsed.signer,
        digest,
        request_cipher: opened.cipher,
        reply_cipher: opened.cipher.for_reply(),
    })
}

fn check_renewal_signer(
    signer: &X509,
    ca: &CertificateAuthority,
    envelope: &RequestEnvelope,
) -> Result<(), ScepError> {
    if !ca.issued(signer) {
        return Err(ScepError::new(
            FailInfo::BadCertId,
            "a RenewalReq must be signed by a certificate this CA issued",
            envelope,
        ));
    }
    let now = Asn1Time::days_from_now(0)
        .map_err(|e| ScepError::new(FailInfo::BadTime, e.to_string(), envelope))?;
    if signer.not_before() > now || signer.not_after() < now {
        return Err(ScepError::new(
            FailInfo::BadTime,
            format!(
                "the certificate to renew is not valid now (valid {} to {})",
                signer.not_before(),
                signer.not_after()
            ),
            envelope,
        ));
    }
    Ok(())
}

fn undecryptable(envelope: &RequestEnvelope) -> ScepError {
    ScepError::new(
        FailInfo::BadMessageCheck,
        "the request content does not decrypt to a CSR",
        envelope,
    )
}

fn signed_data_error(e: SignedDataError, envelope: &RequestEnvelope) -> ScepError {
    match e {
        SignedDataError::Malformed(what) => ScepError::new(
            FailInfo::BadRequest,
            format!("not a PKIMessage: {what}"),
            envelope,
        ),
        SignedDataError::UnsupportedDigest(what) => ScepError::new(
            FailInfo::BadAlg,
            format!("unsupported digest {what}"),
            envelope,
        ),
        SignedDataError::UnknownSigner => ScepError::new(
            FailInfo::BadRequest,
            "the PKIMessage does not carry its signer's certificate",
            envelope,
        ),
        SignedDataError::BadSignature => ScepError::new(
            FailInfo::BadMessageCheck,
            "the PKIMessage signature does not verify",
            envelope,
        ),
    }
}
