//! EnvelopedData (RFC 5652 §6): the encrypted inner layer of a PKIMessage.
//!
//! Sealing is openssl's CMS encryption, which also covers EC recipients (key
//! agreement). Opening a request is done here, by hand, because the cipher the client
//! chose must be known (and vetted) and single DES, which a common client still
//! sends, is only in openssl's legacy provider.

use std::sync::OnceLock;

use cms::content_info::ContentInfo;
use cms::enveloped_data::{EnvelopedData, RecipientIdentifier, RecipientInfo};
use der::asn1::OctetString;
use der::Decode;
use openssl::cipher::{Cipher, CipherRef};
use openssl::cipher_ctx::CipherCtx;
use openssl::cms::{CMSOptions, CmsContentInfo};
use openssl::lib_ctx::LibCtx;
use openssl::pkey::{Id, PKeyRef, Private};
use openssl::provider::Provider;
use openssl::rand::rand_bytes;
use openssl::rsa::Padding;
use openssl::stack::Stack;
use openssl::x509::X509;
use x509_cert::Certificate;

use super::algorithms::{oid, ContentCipher};

#[derive(Debug)]
pub(crate) enum EnvelopeError {
    Malformed(String),
    UnsupportedAlgorithm(String),
    /// Deliberately without detail: see [`open`].
    Undecryptable,
}

pub(crate) struct Opened {
    pub content: Vec<u8>,
    pub cipher: ContentCipher,
}

/// Encrypts `content` to `recipient` (RSA key transport, or ECDH for an EC key).
pub(crate) fn seal(
    content: &[u8],
    recipient: &X509,
    cipher: ContentCipher,
) -> Result<Vec<u8>, openssl::error::ErrorStack> {
    let mut recipients = Stack::new()?;
    recipients.push(recipient.clone())?;
    CmsContentInfo::encrypt(&recipients, content, cipher.symm(), CMSOptions::BINARY)?.to_der()
}

/// Decrypts an EnvelopedData addressed to `cert`/`key` (RSA key transport).
///
/// A wrong RSA padding is not reported as such: the content key is then replaced by
/// a random one and decryption goes on, failing like any corrupt ciphertext. A
/// difference would be a padding oracle (Bleichenbacher) against the CA key.
pub(crate) fn open(
    der: &[u8],
    key: &PKeyRef<Private>,
    cert: &X509,
) -> Result<Opened, EnvelopeError> {
    let enveloped = decode(der)?;
    let eci = &enveloped.encrypted_content;
    let cipher = ContentCipher::from_oid(&eci.content_enc_alg.oid).ok_or_else(|| {
        EnvelopeError::UnsupportedAlgorithm(format!(
            "content encryption {}",
            eci.content_enc_alg.oid
        ))
    })?;
    let iv = eci
        .content_enc_alg
        .parameters
        .as_ref()
        .and_then(|p| p.decode_as::<OctetString>().ok())
        .filter(|iv| iv.as_bytes().len() == cipher.iv_len())
        .ok_or_else(|| EnvelopeError::Malformed("missing or wrong-sized IV".into()))?;
    let ciphertext = eci
        .encrypted_content
        .as_ref()
        .ok_or_else(|| EnvelopeError::Malformed("no encrypted content".into()))?;

    let encrypted_key = recipient_key(&enveloped, cert)?;
    if key.id() != Id::RSA {
        return Err(EnvelopeError::UnsupportedAlgorithm(
            "the CA key is not RSA".into(),
        ));
    }
    let content_key = unwrap_content_key(key, encrypted_key, cipher.key_len())?;
    let implementation = fetch(cipher)?;
    let content = decrypt(
        &implementation,
        &content_key,
        iv.as_bytes(),
        ciphertext.as_bytes(),
    )
    .ok_or(EnvelopeError::Undecryptable)?;
    Ok(Opened { content, cipher })
}

fn decode(der: &[u8]) -> Result<EnvelopedData, EnvelopeError> {
    // openssl reads BER (some clients stream their envelope) and writes DER.
    let normalized = CmsContentInfo::from_der(der)
        .and_then(|c| c.to_der())
        .map_err(|e| EnvelopeError::Malformed(format!("not CMS: {e}")))?;
    let info =
        ContentInfo::from_der(&normalized).map_err(|e| EnvelopeError::Malformed(e.to_string()))?;
    if info.content_type != oid::ENVELOPED_DATA {
        return Err(EnvelopeError::Malformed(format!(
            "content is {}, not EnvelopedData",
            info.content_type
        )));
    }
    info.content
        .decode_as()
        .map_err(|e| EnvelopeError::Malformed(e.to_string()))
}

/// The encrypted content key of the key-transport recipient that names `cert`; if
/// none names it, the only key-transport recipient (some clients address the CA
/// by a stale or reissued certificate with the same key).
fn recipient_key<'a>(enveloped: &'a EnvelopedData, cert: &X509) -> Result<&'a [u8], EnvelopeError> {
    let ours = cert
        .to_der()
        .ok()
        .and_then(|d| Certificate::from_der(&d).ok());
    let ktris: Vec<_> = enveloped
        .recip_infos
        .0
        .iter()
        .filter_map(|ri| match ri {
            RecipientInfo::Ktri(k) => Some(k),
            _ => None,
        })
        .collect();
    let names_us = |rid: &RecipientIdentifier| match (rid, &ours) {
        (RecipientIdentifier::IssuerAndSerialNumber(ias), Some(c)) => {
            ias.issuer == c.tbs_certificate.issuer
                && ias.serial_number == c.tbs_certificate.serial_number
        }
        (RecipientIdentifier::SubjectKeyIdentifier(ski), _) => cert
            .subject_key_id()
            .map(|ours| ours.as_slice() == ski.0.as_bytes())
            .unwrap_or(false),
        _ => false,
    };
    let chosen = match ktris.iter().find(|k| names_us(&k.rid)) {
        Some(k) => *k,
        None if ktris.len() == 1 => ktris[0],
        None => {
            return Err(EnvelopeError::Malformed(
                "no key-transport recipient for the CA".into(),
            ))
        }
    };
    if chosen.key_enc_alg.oid != oid::RSA_ENCRYPTION {
        return Err(EnvelopeError::UnsupportedAlgorithm(format!(
            "key transport {}",
            chosen.key_enc_alg.oid
        )));
    }
    Ok(chosen.enc_key.as_bytes())
}

fn unwrap_content_key(
    key: &PKeyRef<Private>,
    encrypted: &[u8],
    key_len: usize,
) -> Result<Vec<u8>, EnvelopeError> {
    let mut decoy = vec![0u8; key_len];
    rand_bytes(&mut decoy).map_err(|e| EnvelopeError::Malformed(e.to_string()))?;
    let rsa = key
        .rsa()
        .map_err(|e| EnvelopeError::Malformed(e.to_string()))?;
    let mut buf = vec![0u8; rsa.size() as usize];
    match rsa.private_decrypt(encrypted, &mut buf, Padding::PKCS1) {
        Ok(n) if n == key_len => {
            buf.truncate(n);
            Ok(buf)
        }
        _ => Ok(decoy),
    }
}

fn decrypt(cipher: &CipherRef, key: &[u8], iv: &[u8], ciphertext: &[u8]) -> Option<Vec<u8>> {
    let mut ctx = CipherCtx::new().ok()?;
    ctx.decrypt_init(Some(cipher), Some(key), Some(iv)).ok()?;
    let mut out = Vec::with_capacity(ciphertext.len() + cipher.block_size());
    ctx.cipher_update_vec(ciphertext, &mut out).ok()?;
    ctx.cipher_final_vec(&mut out).ok()?;
    Some(out)
}

/// The implementation of `cipher`. Single DES comes from a private library context
/// with the legacy provider, so the rest of the process never sees legacy algorithms.
fn fetch(cipher: ContentCipher) -> Result<Cipher, EnvelopeError> {
    let unavailable = |e: openssl::error::ErrorStack| {
        EnvelopeError::UnsupportedAlgorithm(format!("{}: {e}", cipher.openssl_name()))
    };
    if cipher != ContentCipher::DesCbc {
        return Cipher::fetch(None, cipher.openssl_name(), None).map_err(unavailable);
    }
    let legacy = legacy_context().ok_or_else(|| {
        EnvelopeError::UnsupportedAlgorithm(
            "DES-CBC: openssl's legacy provider is not installed".into(),
        )
    })?;
    Cipher::fetch(Some(&legacy.ctx), cipher.openssl_name(), None).map_err(unavailable)
}

struct LegacyContext {
    // Field order is drop order: providers before the context they live in.
    _providers: Vec<Provider>,
    ctx: LibCtx,
}

fn legacy_context() -> Option<&'static LegacyContext> {
    static LEGACY: OnceLock<Option<LegacyContext>> = OnceLock::new();
    LEGACY
        .get_or_init(|| {
            let ctx = LibCtx::new().ok()?;
            let legacy = Provider::load(Some(&ctx), "legacy").ok()?;
            let default = Provider::load(Some(&ctx), "default").ok()?;
            Some(LegacyContext {
                _providers: vec![legacy, default],
                ctx,
            })
        })
        .as_ref()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ca::CertificateAuthority;

    #[test]
    fn seals_and_opens_with_each_accepted_cipher() {
        let ca = CertificateAuthority::generate("Envelope CA", "", 1).unwrap();
        for cipher in [
            ContentCipher::Aes128Cbc,
            ContentCipher::Aes192Cbc,
            ContentCipher::Aes256Cbc,
            ContentCipher::DesEde3Cbc,
        ] {
            let sealed = seal(b"hello", ca.cert(), cipher).unwrap();
            let opened = open(&sealed, ca.key(), ca.cert()).unwrap();
            assert_eq!(opened.content, b"hello");
            assert_eq!(opened.cipher, cipher);
        }
    }

    #[test]
    fn a_wrong_key_looks_like_corruption() {
        let ca = CertificateAuthority::generate("Envelope CA", "", 1).unwrap();
        let other = CertificateAuthority::generate("Other CA", "", 1).unwrap();
        let sealed = seal(&[7u8; 300], other.cert(), ContentCipher::Aes256Cbc).unwrap();
        // The only recipient is tried with our key: the padding failure is hidden,
        // and at worst the decoy key yields garbage, never an error naming RSA.
        match open(&sealed, ca.key(), ca.cert()) {
            Err(EnvelopeError::Undecryptable) => {}
            Ok(opened) => assert_ne!(opened.content, vec![7u8; 300]),
            Err(e) => panic!("unexpected {e:?}"),
        }
    }
}
