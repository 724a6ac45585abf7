//! The built-in PKI: the device CA that issues identity certificates over SCEP, the
//! identity that signs enrollment profiles, and the root that issues the server's
//! own HTTPS certificate when the admin gives none. All three live in the database (keys
//! sealed with the master key) so that every server instance on one PostgreSQL uses
//! the same ones; all are created on first start unless the admin imports their own.

use super::{ServiceError, ServiceResult};
use crate::storage::{PkiObject, Storage};
use chrono::{DateTime, Utc};
use enrollment::ca::CertificateAuthority;
use enrollment::seal::Sealer;
use enrollment::server_tls::ServerTlsAuthority;
use enrollment::signing::SigningIdentity;
use serde::Serialize;
use std::sync::Arc;

pub const DEVICE_CA: &str = "device_ca";
pub const PROFILE_SIGNING: &str = "profile_signing";
pub const SERVER_TLS_CA: &str = "server_tls_ca";
const KEY_PURPOSE: &str = "pki.private_key";

/// The PKI in use.
pub struct Pki {
    pub device_ca: CertificateAuthority,
    pub signing: SigningIdentity,
    /// Issues the HTTPS certificate when no --tls-cert is given; phones trust it
    /// through the enrollment profile.
    pub server_tls_ca: Arc<ServerTlsAuthority>,
    pub summary: Vec<PkiSummary>,
}

/// What `mdm pki show` prints about one object.
#[derive(Debug, Clone, Serialize)]
pub struct PkiSummary {
    pub name: String,
    pub subject: String,
    pub issuer: String,
    pub fingerprint: String,
    pub not_after: String,
    pub days_left: i64,
    pub imported: bool,
    pub created_at: DateTime<Utc>,
}

fn summary(object: &PkiObject, cert: &openssl::x509::X509) -> PkiSummary {
    summarize(&object.name, cert, object.imported, object.created_at)
}

/// What `mdm pki show` prints about a certificate in use.
pub fn summarize(
    name: &str,
    cert: &openssl::x509::X509,
    imported: bool,
    created_at: DateTime<Utc>,
) -> PkiSummary {
    let dn = enrollment::identity::name_to_string;
    PkiSummary {
        name: name.to_owned(),
        subject: dn(cert.subject_name()),
        issuer: dn(cert.issuer_name()),
        fingerprint: enrollment::identity::fingerprint(cert),
        not_after: cert.not_after().to_string(),
        days_left: enrollment::identity::unix_time(cert.not_after())
            .map(|t| (t - Utc::now().timestamp()) / 86_400)
            .unwrap_or(0),
        imported,
        created_at,
    }
}

/// Seals the private key of the PKI object `name` (bound to that name).
fn seal(sealer: &Sealer, name: &str, key_pem: &[u8]) -> ServiceResult<Vec<u8>> {
    sealer
        .seal(KEY_PURPOSE, name, key_pem)
        .map_err(|e| ServiceError::Internal(e.to_string()))
}

fn open(sealer: &Sealer, object: &PkiObject) -> ServiceResult<Vec<u8>> {
    sealer.open(KEY_PURPOSE, &object.name, &object.private_key_sealed).map_err(|e| {
        ServiceError::Internal(format!(
            "the {} key cannot be opened with this master key ({e}); is MDM_MASTER_KEY the one the PKI was created with?",
            object.name
        ))
    })
}

/// Loads the PKI, creating what is missing. `organization` names the office in the
/// generated certificates.
pub async fn load_or_create(
    store: &Arc<dyn Storage>,
    sealer: &Sealer,
    organization: &str,
) -> ServiceResult<Pki> {
    for (name, make) in [
        (
            DEVICE_CA,
            make_device_ca as fn(&str) -> ServiceResult<(Vec<u8>, Vec<u8>)>,
        ),
        (PROFILE_SIGNING, make_signing),
        (SERVER_TLS_CA, make_server_tls_ca),
    ] {
        if store.pki_object(name).await?.is_none() {
            let (cert_pem, key_pem) = make(organization)?;
            let created = store
                .put_pki_object(
                    PkiObject {
                        name: name.into(),
                        certificate_pem: String::from_utf8_lossy(&cert_pem).into_owned(),
                        chain_pem: None,
                        private_key_sealed: seal(sealer, name, &key_pem)?,
                        imported: false,
                        created_at: Utc::now(),
                    },
                    false,
                )
                .await?;
            if created {
                tracing::info!(object = name, "created the built-in {name}");
            }
        }
    }
    load(store, sealer).await
}

fn make_device_ca(organization: &str) -> ServiceResult<(Vec<u8>, Vec<u8>)> {
    let ca = CertificateAuthority::generate(&format!("{organization} Device CA"), organization, 10)
        .map_err(|e| ServiceError::Internal(e.to_string()))?;
    Ok((ca.cert_pem(), ca.key_pem()))
}

fn make_server_tls_ca(organization: &str) -> ServiceResult<(Vec<u8>, Vec<u8>)> {
    let ca = ServerTlsAuthority::generate(organization)
        .map_err(|e| ServiceError::Internal(e.to_string()))?;
    Ok((ca.cert_pem(), ca.key_pem()))
}

fn make_signing(organization: &str) -> ServiceResult<(Vec<u8>, Vec<u8>)> {
    let id = SigningIdentity::generate(&format!("{organization} Profile Signing"), organization, 5)
        .map_err(|e| ServiceError::Internal(e.to_string()))?;
    let cert = id
        .cert_pem()
        .map_err(|e| ServiceError::Internal(e.to_string()))?;
    let key = id
        .key_pem()
        .map_err(|e| ServiceError::Internal(e.to_string()))?;
    Ok((cert, key))
}

pub async fn load(store: &Arc<dyn Storage>, sealer: &Sealer) -> ServiceResult<Pki> {
    let ca_object = store
        .pki_object(DEVICE_CA)
        .await?
        .ok_or_else(|| ServiceError::NotFound("no device CA yet: start the server once".into()))?;
    let device_ca = CertificateAuthority::from_pem(
        ca_object.certificate_pem.as_bytes(),
        &open(sealer, &ca_object)?,
    )
    .map_err(|e| ServiceError::Internal(format!("device CA: {e}")))?;
    let signing_object = store.pki_object(PROFILE_SIGNING).await?.ok_or_else(|| {
        ServiceError::NotFound("no profile signing identity yet: start the server once".into())
    })?;
    let signing = SigningIdentity::from_pem(
        signing_object.certificate_pem.as_bytes(),
        &open(sealer, &signing_object)?,
        signing_object.chain_pem.as_deref().map(str::as_bytes),
    )
    .map_err(|e| ServiceError::Internal(format!("profile signing identity: {e}")))?;
    let tls_object = store.pki_object(SERVER_TLS_CA).await?.ok_or_else(|| {
        ServiceError::NotFound("no server TLS root yet: start the server once".into())
    })?;
    let server_tls_ca = ServerTlsAuthority::from_pem(
        tls_object.certificate_pem.as_bytes(),
        &open(sealer, &tls_object)?,
    )
    .map_err(|e| ServiceError::Internal(format!("server TLS root: {e}")))?;
    let summary = vec![
        summary(&ca_object, device_ca.cert()),
        summary(&signing_object, &signing.cert),
        summary(&tls_object, server_tls_ca.cert()),
    ];
    Ok(Pki {
        device_ca,
        signing,
        server_tls_ca: Arc::new(server_tls_ca),
        summary,
    })
}

/// Replaces a PKI object with the admin's own certificate and key (checked first).
pub async fn import(
    store: &Arc<dyn Storage>,
    sealer: &Sealer,
    name: &str,
    cert_pem: &[u8],
    key_pem: &[u8],
    chain_pem: Option<&[u8]>,
) -> ServiceResult<()> {
    match name {
        DEVICE_CA => {
            CertificateAuthority::from_pem(cert_pem, key_pem)
                .map_err(|e| ServiceError::BadRequest(e.to_string()))?;
        }
        PROFILE_SIGNING => {
            SigningIdentity::from_pem(cert_pem, key_pem, chain_pem)
                .map_err(|e| ServiceError::BadRequest(e.to_string()))?;
        }
        SERVER_TLS_CA => {
            ServerTlsAuthority::from_pem(cert_pem, key_pem)
                .map_err(|e| ServiceError::BadRequest(e.to_string()))?;
        }
        other => {
            return Err(ServiceError::BadRequest(format!(
                "unknown PKI object {other}"
            )))
        }
    }
    store
        .put_pki_object(
            PkiObject {
                name: name.into(),
                certificate_pem: String::from_utf8_lossy(cert_pem).into_owned(),
                chain_pem: chain_pem.map(|c| String::from_utf8_lossy(c).into_owned()),
                private_key_sealed: seal(sealer, name, key_pem)?,
                imported: true,
                created_at: Utc::now(),
            },
            true,
        )
        .await?;
    Ok(())
}
