//! The mdmcert.download flow, for offices without an MDM vendor certificate of their
//! own: mdmcert.download (a free service for open-source MDMs) signs the push CSR with
//! its vendor certificate and mails the request back.
//!
//! The protocol, as the service's existing clients (MicroMDM's `mdmctl
//! mdmcert.download`, Commandment) speak it: a JSON POST to `/api/v1/signrequest`
//! with `csr` (base64 of the PEM CSR), `email` (the address registered at the
//! service), `key` (the API key the service gives each product) and `encrypt` (base64
//! of a PEM certificate). The service answers `{"result": "success"}` and mails a file
//! (`mdm_signed_request.<date>.plist.b64.p7`): hex text of a PKCS#7 EnvelopedData,
//! encrypted to the `encrypt` certificate, whose content is the base64 request for
//! Apple's portal. Only the holder of that certificate's key can read the mail, so
//! the mailbox never holds the request in clear.
//!
//! The `encrypt` certificate here is a self-signed certificate over the push key
//! itself: the one key the server keeps is what opens the mail, and the request it
//! opens is checked to be for that same key.

use super::request::PushCertRequest;
use openssl::asn1::Asn1Time;
use openssl::bn::{BigNum, MsbOption};
use openssl::hash::MessageDigest;
use openssl::pkcs7::{Pkcs7, Pkcs7Flags};
use openssl::pkey::{PKey, Private};
use openssl::x509::{X509Name, X509Req, X509};
use serde::{Deserialize, Serialize};
use std::time::Duration;

pub const DEFAULT_URL: &str = "https://mdmcert.download/api/v1/signrequest";
/// The mail takes minutes; a year leaves room for a request opened late.
const EXCHANGE_CERT_DAYS: u32 = 365;
const TIMEOUT: Duration = Duration::from_secs(30);
/// The mailed file is a few kilobytes of hex; anything past this is not it.
pub const MAX_MAILED_FILE: usize = 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum MdmcertError {
    #[error("{0}")]
    Invalid(String),
    #[error("cannot reach mdmcert.download at {url}: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("mdmcert.download refused the request (HTTP {status}): {message}")]
    Refused { status: u16, message: String },
    #[error("cryptography failed: {0}")]
    Crypto(#[from] openssl::error::ErrorStack),
}

/// The body of `POST /api/v1/signrequest`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SignRequest {
    pub csr: String,
    pub email: String,
    pub key: String,
    pub encrypt: String,
}

/// The service's answer.
#[derive(Debug, Deserialize)]
struct SignResponse {
    result: Option<String>,
    reason: Option<String>,
    message: Option<String>,
    error: Option<String>,
}

/// The API URL: https, or plain http only to this host (a local test double), since
/// the API key travels in the body.
pub fn check_url(url: &str) -> Result<reqwest::Url, MdmcertError> {
    let parsed = reqwest::Url::parse(url)
        .map_err(|e| MdmcertError::Invalid(format!("the mdmcert.download URL {url:?}: {e}")))?;
    let loopback = parsed.host_str().is_some_and(|host| {
        host == "localhost"
            || host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    });
    match parsed.scheme() {
        "https" => Ok(parsed),
        "http" if loopback => Ok(parsed),
        _ => Err(MdmcertError::Invalid(format!(
            "the mdmcert.download URL {url:?} must be https (the API key travels in it)"
        ))),
    }
}

/// The certificate the service encrypts its mail to: self-signed, over the push key.
pub fn exchange_certificate(key: &PKey<Private>) -> Result<X509, MdmcertError> {
    let mut name = X509Name::builder()?;
    name.append_entry_by_text("CN", "MDM push request exchange")?;
    let name = name.build();
    let mut b = X509::builder()?;
    b.set_version(2)?;
    let mut serial = BigNum::new()?;
    serial.rand(127, MsbOption::MAYBE_ZERO, false)?;
    let serial = serial.to_asn1_integer()?;
    b.set_serial_number(&serial)?;
    b.set_subject_name(&name)?;
    b.set_issuer_name(&name)?;
    b.set_pubkey(key)?;
    let not_before = Asn1Time::days_from_now(0)?;
    let not_after = Asn1Time::days_from_now(EXCHANGE_CERT_DAYS)?;
    b.set_not_before(&not_before)?;
    b.set_not_after(&not_after)?;
    b.sign(key, MessageDigest::sha256())?;
    Ok(b.build())
}

pub fn sign_request(
    csr: &X509Req,
    email: &str,
    api_key: &str,
    exchange: &X509,
) -> Result<SignRequest, MdmcertError> {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    Ok(SignRequest {
        csr: b64.encode(csr.to_pem()?),
        email: email.to_owned(),
        key: api_key.to_owned(),
        encrypt: b64.encode(exchange.to_pem()?),
    })
}

/// Sends the request; Ok once the service said it will mail the signed request.
pub async fn submit(url: &reqwest::Url, body: &SignRequest) -> Result<(), MdmcertError> {
    let unreachable = |e: reqwest::Error| MdmcertError::Unreachable {
        url: url.to_string(),
        reason: e.without_url().to_string(),
    };
    let client = reqwest::Client::builder()
        .timeout(TIMEOUT)
        .user_agent(concat!("mdm/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(unreachable)?;
    let response = client
        .post(url.clone())
        .json(body)
        .send()
        .await
        .map_err(unreachable)?;
    let status = response.status().as_u16();
    let text = response.text().await.map_err(unreachable)?;
    let parsed: Option<SignResponse> = serde_json::from_str(&text).ok();
    let result = parsed.as_ref().and_then(|p| p.result.clone());
    if status == 200 && result.as_deref() == Some("success") {
        return Ok(());
    }
    let message = parsed
        .and_then(|p| p.reason.or(p.message).or(p.error).or(p.result))
        .unwrap_or_else(|| text.chars().take(300).collect::<String>());
    Err(MdmcertError::Refused {
        status,
        message: if message.trim().is_empty() {
            "no reason given".into()
        } else {
            message
        },
    })
}

/// Opens the mailed file (hex of a PKCS#7 EnvelopedData) with the push key and its
/// exchange certificate, and returns the base64 request for Apple's portal, checked:
/// it parses, its vendor signature verifies, and its CSR is for this key.
pub fn decrypt_mailed(
    file: &[u8],
    key: &PKey<Private>,
    exchange: &X509,
) -> Result<String, MdmcertError> {
    if file.len() > MAX_MAILED_FILE {
        return Err(MdmcertError::Invalid(
            "this file is too large to be mdmcert.download's mail".into(),
        ));
    }
    let compact: Vec<u8> = file
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    let der = hex::decode(&compact).map_err(|_| {
        MdmcertError::Invalid(
            "this is not mdmcert.download's mailed file: it should be hexadecimal text (the .p7 attachment)".into(),
        )
    })?;
    let p7 = Pkcs7::from_der(&der).map_err(|_| {
        MdmcertError::Invalid("the mailed file does not hold a PKCS#7 message".into())
    })?;
    let content = p7.decrypt(key, exchange, Pkcs7Flags::empty()).map_err(|_| {
        MdmcertError::Invalid(
            "the mailed file cannot be opened with the push key the server kept: it answers another \
             request (a newer `mdm push-cert request` replaced the key), or it is not encrypted to this server"
                .into(),
        )
    })?;
    let request = PushCertRequest::parse(&content)
        .map_err(|e| MdmcertError::Invalid(format!("the mailed file opened, but {e}")))?;
    request
        .verify()
        .map_err(|e| MdmcertError::Invalid(format!("the mailed file opened, but {e}")))?;
    let public = PKey::public_key_from_der(&key.public_key_to_der()?)?;
    if !request
        .is_for(&public)
        .map_err(|e| MdmcertError::Invalid(e.to_string()))?
    {
        return Err(MdmcertError::Invalid(
            "the mailed request is for another key than the one the server kept: it answers an older request".into(),
        ));
    }
    let text = String::from_utf8(content)
        .map_err(|_| MdmcertError::Invalid("the mailed request is not text".into()))?;
    Ok(text.split_whitespace().collect())
}
