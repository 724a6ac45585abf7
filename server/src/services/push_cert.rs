//! The push key the server keeps between `mdm push-cert request` and the upload of
//! the certificate Apple issues for it, so that the key never leaves the server and
//! the upload needs only the certificate.
//!
//! It is a `pki_objects` row named `push_key` (no table of its own: it is one key with
//! a certificate, like the other PKI objects): the key sealed with the master key
//! (bound to the row's name and its own purpose), the self-signed certificate
//! mdmcert.download encrypts its mail to as `certificate_pem`, and the CSR sent as
//! `chain_pem`. A new request replaces it; a renewal writes the key in use again.

use super::{ServiceError, ServiceResult};
use crate::push::certificate::PushCertificate;
use crate::storage::{PkiObject, Storage};
use chrono::{DateTime, Utc};
use enrollment::seal::Sealer;
use openssl::pkey::{PKey, Private};
use openssl::x509::{X509Req, X509};
use std::sync::Arc;

pub const PUSH_KEY: &str = "push_key";
const KEY_PURPOSE: &str = "push.request_key";

/// The kept key and what was made with it.
pub struct KeptKey {
    pub key: PKey<Private>,
    pub exchange_cert: X509,
    pub csr: X509Req,
    pub created_at: DateTime<Utc>,
}

fn internal(e: impl std::fmt::Display) -> ServiceError {
    ServiceError::Internal(e.to_string())
}

/// Keeps (replacing any earlier) the push key of a request.
pub async fn keep(
    store: &Arc<dyn Storage>,
    sealer: &Sealer,
    key: &PKey<Private>,
    exchange_cert: &X509,
    csr: &X509Req,
) -> ServiceResult<()> {
    let key_pem = key.private_key_to_pem_pkcs8().map_err(internal)?;
    let object = PkiObject {
        name: PUSH_KEY.into(),
        certificate_pem: String::from_utf8_lossy(&exchange_cert.to_pem().map_err(internal)?)
            .into_owned(),
        chain_pem: Some(String::from_utf8_lossy(&csr.to_pem().map_err(internal)?).into_owned()),
        private_key_sealed: sealer
            .seal(KEY_PURPOSE, PUSH_KEY, &key_pem)
            .map_err(internal)?,
        imported: false,
        created_at: Utc::now(),
    };
    store.put_pki_object(object, true).await?;
    Ok(())
}

/// The kept key, if a request made one.
pub async fn kept(store: &Arc<dyn Storage>, sealer: &Sealer) -> ServiceResult<Option<KeptKey>> {
    let Some(object) = store.pki_object(PUSH_KEY).await? else {
        return Ok(None);
    };
    let key_pem = sealer
        .open(KEY_PURPOSE, PUSH_KEY, &object.private_key_sealed)
        .map_err(|e| {
            ServiceError::Internal(format!(
                "the kept push key cannot be opened with this master key ({e})"
            ))
        })?;
    let key = PKey::private_key_from_pem(&key_pem).map_err(internal)?;
    let exchange_cert = X509::from_pem(object.certificate_pem.as_bytes()).map_err(internal)?;
    let csr = X509Req::from_pem(object.chain_pem.unwrap_or_default().as_bytes())
        .map_err(|e| ServiceError::Internal(format!("the kept push request: {e}")))?;
    Ok(Some(KeptKey {
        key,
        exchange_cert,
        csr,
        created_at: object.created_at,
    }))
}

/// The key and topic of the push certificate in use: a renewal reuses both.
pub async fn active_key(
    store: &Arc<dyn Storage>,
    sealer: &Sealer,
) -> ServiceResult<Option<(PKey<Private>, String)>> {
    let Some(row) = store.active_push_certificate().await? else {
        return Ok(None);
    };
    let key_pem = sealer
        .open(
            super::push::CERTIFICATE_KEY_PURPOSE,
            &row.id,
            &row.private_key_sealed,
        )
        .map_err(|e| {
            ServiceError::Internal(format!(
                "the push certificate's key cannot be opened with this master key ({e})"
            ))
        })?;
    let key = PKey::private_key_from_pem(&key_pem).map_err(internal)?;
    Ok(Some((key, row.topic)))
}

/// Pairs a certificate from Apple with the kept key. Refused, saying why, when no key
/// is kept or the certificate is for another key (a renewal must keep the key, and a
/// certificate answers exactly one request).
pub async fn pair_with_kept_key(
    store: &Arc<dyn Storage>,
    sealer: &Sealer,
    cert_pem: &[u8],
) -> ServiceResult<PushCertificate> {
    let cert = X509::from_pem(cert_pem)
        .map_err(|_| ServiceError::BadRequest("the certificate is not valid PEM".into()))?;
    let Some(kept) = kept(store, sealer).await? else {
        return Err(ServiceError::BadRequest(
            "no push key is kept on the server: run `mdm push-cert request` on the server host first, \
             or upload the certificate with its key (--key, or a PKCS#12)"
                .into(),
        ));
    };
    let public = cert.public_key().map_err(|_| {
        ServiceError::BadRequest("the certificate's public key is unreadable".into())
    })?;
    if !public.public_eq(&kept.key) {
        return Err(ServiceError::Conflict(format!(
            "this certificate's public key is not the push key the server kept (from the request made on {}): \
             Apple issued it for another request. Upload the certificate Apple issued for that request, \
             or give this certificate's own key with --key",
            kept.created_at.date_naive()
        )));
    }
    let key_pem = kept.key.private_key_to_pem_pkcs8().map_err(internal)?;
    PushCertificate::from_pem(cert_pem, &key_pem, Utc::now())
        .map_err(|e| ServiceError::BadRequest(e.to_string()))
}
