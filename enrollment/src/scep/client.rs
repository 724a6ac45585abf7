//! The device side of SCEP, for the device simulator and tests: builds PKCSReq and
//! RenewalReq messages and reads CertRep replies.

use der::asn1::BitString;
use der::{Decode, Encode};
use openssl::asn1::Asn1Time;
use openssl::bn::{BigNum, MsbOption};
use openssl::cms::CmsContentInfo;
use openssl::hash::{hash, MessageDigest};
use openssl::pkey::{PKey, Private};
use openssl::rand::rand_bytes;
use openssl::sign::Signer;
use openssl::x509::{X509Builder, X509NameRef, X509Req, X509};
use x509_cert::name::Name;
use x509_cert::request::{CertReq, CertReqInfo, Version};
use x509_cert::spki::SubjectPublicKeyInfoOwned;

use super::algorithms::{csr_signature_identifier, ContentCipher, DigestAlgorithm};
use super::attributes::PkiAttributes;
use super::signed_data::{self, Parsed, SignedDataError};
use super::{csr, envelope, FailInfo, MessageType};

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("could not build the request: {0}")]
    Build(String),
    #[error("the CertRep is malformed: {0}")]
    Malformed(String),
    #[error("the CertRep is not signed by the CA")]
    BadSignature,
    #[error("the CertRep answers another request: {0}")]
    Mismatch(&'static str),
    #[error("the CertRep's certificate envelope does not open: {0}")]
    Envelope(String),
}

impl From<openssl::error::ErrorStack> for ClientError {
    fn from(e: openssl::error::ErrorStack) -> Self {
        ClientError::Build(e.to_string())
    }
}

impl From<der::Error> for ClientError {
    fn from(e: der::Error) -> Self {
        ClientError::Build(e.to_string())
    }
}

/// What to ask for. Build with [`RequestOptions::new`], then set the public fields.
pub struct RequestOptions<'a> {
    /// The key to certify.
    pub key: &'a PKey<Private>,
    /// The subject put in the CSR (and in the self-signed signer certificate).
    pub subject: &'a X509NameRef,
    pub challenge: Option<&'a str>,
    /// The CA certificate from GetCACert: requests are encrypted to it.
    pub ca_cert: &'a X509,
    /// For a RenewalReq: the certificate to renew and its key, which sign the request.
    pub renew_with: Option<(&'a X509, &'a PKey<Private>)>,
    /// AES-256-CBC unless a test wants to see another cipher accepted.
    pub cipher: ContentCipher,
}

impl<'a> RequestOptions<'a> {
    pub fn new(key: &'a PKey<Private>, subject: &'a X509NameRef, ca_cert: &'a X509) -> Self {
        RequestOptions {
            key,
            subject,
            challenge: None,
            ca_cert,
            renew_with: None,
            cipher: ContentCipher::Aes256Cbc,
        }
    }
}

/// A request ready to send, and what is needed to read its reply.
pub struct ClientRequest {
    pub der: Vec<u8>,
    pub message_type: MessageType,
    pub transaction_id: String,
    pub sender_nonce: Vec<u8>,
    /// The key being certified: the issued certificate is the one for it.
    key: PKey<Private>,
    /// Who signed the request, and so whom the reply is encrypted to.
    signer_cert: X509,
    signer_key: PKey<Private>,
}

impl ClientRequest {
    pub fn signer(&self) -> &X509 {
        &self.signer_cert
    }
}

/// Builds a PKCSReq (or a RenewalReq with `renew_with`): a CSR with the subject and
/// challenge, encrypted to the CA, signed with SHA-256 by a self-signed certificate
/// for the key (or by the certificate being renewed).
pub fn build_request(opts: &RequestOptions<'_>) -> Result<ClientRequest, ClientError> {
    let csr_der = build_csr(opts.key, opts.subject, opts.challenge)?;
    let (message_type, signer_cert, signer_key) = match opts.renew_with {
        Some((cert, key)) => (MessageType::RenewalReq, cert.clone(), key.clone()),
        None => (
            MessageType::PkcsReq,
            self_signed(opts.key, opts.subject)?,
            opts.key.clone(),
        ),
    };
    // RFC 8894 §3.2.1.1: a hash of the public key keeps retries in one transaction.
    let transaction_id = hex::encode_upper(hash(
        MessageDigest::sha256(),
        &opts.key.public_key_to_der()?,
    )?);
    let mut sender_nonce = vec![0u8; 16];
    rand_bytes(&mut sender_nonce)?;

    let enveloped = envelope::seal(&csr_der, opts.ca_cert, opts.cipher)?;
    let attributes = PkiAttributes {
        message_type: Some(message_type.code().to_string()),
        transaction_id: Some(transaction_id.clone()),
        sender_nonce: Some(sender_nonce.clone()),
        ..PkiAttributes::default()
    };
    let der = signed_data::sign(
        &enveloped,
        &attributes,
        &signer_cert,
        &signer_key,
        DigestAlgorithm::Sha256,
        &[],
    )
    .map_err(|e| ClientError::Build(e.0))?;
    Ok(ClientRequest {
        der,
        message_type,
        transaction_id,
        sender_nonce,
        key: opts.key.clone(),
        signer_cert,
        signer_key,
    })
}

#[derive(Debug)]
pub enum CertRepOutcome {
    Success(X509),
    Failure(FailInfo),
    Pending,
}

/// Verifies a CertRep's signature against `ca_cert`, checks that it answers
/// `request` (transactionID, recipientNonce), and on success decrypts the issued
/// certificate.
pub fn parse_cert_rep(
    der: &[u8],
    request: &ClientRequest,
    ca_cert: &X509,
) -> Result<CertRepOutcome, ClientError> {
    let parsed = Parsed::read(der, Some(ca_cert)).map_err(|e| match e {
        SignedDataError::Malformed(m) => ClientError::Malformed(m),
        SignedDataError::UnsupportedDigest(d) => ClientError::Malformed(format!("digest {d}")),
        SignedDataError::BadSignature | SignedDataError::UnknownSigner => ClientError::BadSignature,
    })?;
    let (content, _) = parsed.verify().map_err(|_| ClientError::BadSignature)?;
    let attrs = &parsed.attributes;
    if attrs
        .message_type
        .as_deref()
        .and_then(MessageType::from_code)
        != Some(MessageType::CertRep)
    {
        return Err(ClientError::Malformed("not a CertRep".into()));
    }
    if attrs.transaction_id.as_deref() != Some(request.transaction_id.as_str()) {
        return Err(ClientError::Mismatch("transactionID"));
    }
    if attrs.recipient_nonce.as_deref() != Some(request.sender_nonce.as_slice()) {
        return Err(ClientError::Mismatch("recipientNonce"));
    }
    match attrs.pki_status.as_deref() {
        Some("0") => open_cert_envelope(&content, request).map(CertRepOutcome::Success),
        Some("2") => attrs
            .fail_info
            .as_deref()
            .and_then(FailInfo::from_code)
            .map(CertRepOutcome::Failure)
            .ok_or_else(|| ClientError::Malformed("FAILURE without a known failInfo".into())),
        Some("3") => Ok(CertRepOutcome::Pending),
        other => Err(ClientError::Malformed(format!("pkiStatus {other:?}"))),
    }
}

/// Decrypts a CertRep's pkcsPKIEnvelope (as certmonger's `scep-submit` prints it)
/// and returns the certificate issued for the request's key.
pub fn open_cert_envelope(enveloped: &[u8], request: &ClientRequest) -> Result<X509, ClientError> {
    let envelope_error = |e: openssl::error::ErrorStack| ClientError::Envelope(e.to_string());
    let certs_only = CmsContentInfo::from_der(enveloped)
        .map_err(envelope_error)?
        .decrypt(&request.signer_key, &request.signer_cert)
        .map_err(envelope_error)?;
    let certs =
        signed_data::read_certs_only(&certs_only).map_err(|e| ClientError::Malformed(e.0))?;
    certs
        .into_iter()
        .find(|c| {
            c.public_key()
                .map(|k| k.public_eq(&request.key))
                .unwrap_or(false)
        })
        .ok_or_else(|| ClientError::Malformed("no certificate for our key".into()))
}

fn build_csr(
    key: &PKey<Private>,
    subject: &X509NameRef,
    challenge: Option<&str>,
) -> Result<Vec<u8>, ClientError> {
    // openssl cannot add request attributes, hence the CSR is assembled here.
    let info = CertReqInfo {
        version: Version::V1,
        subject: Name::from_der(&subject.to_der()?)?,
        public_key: SubjectPublicKeyInfoOwned::from_der(&key.public_key_to_der()?)?,
        attributes: csr::challenge_attributes(challenge)?,
    };
    let algorithm = csr_signature_identifier(key)
        .ok_or_else(|| ClientError::Build("the key is neither RSA nor EC".into()))?;
    let mut signer = Signer::new(MessageDigest::sha256(), key)?;
    signer.update(&info.to_der()?)?;
    let signature = BitString::from_bytes(&signer.sign_to_vec()?)?;
    let request = CertReq {
        info,
        algorithm,
        signature,
    };
    let der = request.to_der()?;
    // Round-trip through openssl so that a malformed CSR is caught here, not at the CA.
    X509Req::from_der(&der)?;
    Ok(der)
}

/// The throw-away certificate that signs a PKCSReq (RFC 8894 §2.3).
fn self_signed(key: &PKey<Private>, subject: &X509NameRef) -> Result<X509, ClientError> {
    let mut b = X509Builder::new()?;
    b.set_version(2)?;
    let mut serial = BigNum::new()?;
    serial.rand(64, MsbOption::MAYBE_ZERO, false)?;
    let serial_number = serial.to_asn1_integer()?;
    b.set_serial_number(&serial_number)?;
    b.set_subject_name(subject)?;
    b.set_issuer_name(subject)?;
    b.set_pubkey(key)?;
    let not_before = Asn1Time::days_from_now(0)?;
    b.set_not_before(&not_before)?;
    let not_after = Asn1Time::days_from_now(1)?;
    b.set_not_after(&not_after)?;
    b.sign(key, MessageDigest::sha256())?;
    Ok(b.build())
}
