//! Authenticated encryption for secrets at rest (AES-256-GCM, openssl).
//!
//! Sealed form: `version || nonce(12) || ciphertext || tag(16)`. The associated data
//! binds a sealed value to where it belongs, so that someone who can write the
//! database but not read the master key cannot move it elsewhere undetected:
//! - version 2 (written now): the `purpose` (the column: unlock token, bootstrap
//!   token, ...) and the `row` (the id of the record that owns it: device id, command
//!   uuid, enrollment id, ...). A value copied into another column or another row no
//!   longer opens.
//! - version 1 (written by earlier releases): the purpose alone. Such values still
//!   open, with any row, so an upgrade loses nothing; every write seals at version 2,
//!   so they are replaced as their rows are written again.

use openssl::rand::rand_bytes;
use openssl::symm::{decrypt_aead, encrypt_aead, Cipher};

/// Purpose-only associated data (earlier releases); opened, never written.
const VERSION_PURPOSE: u8 = 1;
/// Purpose and row in the associated data.
const VERSION_ROW: u8 = 2;
const NONCE: usize = 12;
const TAG: usize = 16;
pub const KEY_LEN: usize = 32;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SealError {
    #[error("master key must be exactly 32 bytes, got {0}")]
    KeyLength(usize),
    #[error("sealed value is truncated or of an unknown version")]
    Malformed,
    #[error("sealed value does not authenticate with this master key for this record (wrong key, tampered, or moved from another row)")]
    Unauthentic,
    #[error("encryption failed: {0}")]
    Crypto(String),
}

/// The master key. Debug never shows it.
#[derive(Clone)]
pub struct Sealer {
    key: [u8; KEY_LEN],
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(<master key redacted>)")
    }
}

impl Sealer {
    pub fn new(key: &[u8]) -> Result<Self, SealError> {
        let key: [u8; KEY_LEN] = key
            .try_into()
            .map_err(|_| SealError::KeyLength(key.len()))?;
        Ok(Sealer { key })
    }

    pub fn generate_key() -> [u8; KEY_LEN] {
        let mut key = [0u8; KEY_LEN];
        rand_bytes(&mut key).expect("the OS random generator works");
        key
    }

    /// Seals `plaintext` for the column `purpose` of the record `row`.
    pub fn seal(&self, purpose: &str, row: &str, plaintext: &[u8]) -> Result<Vec<u8>, SealError> {
        let mut nonce = [0u8; NONCE];
        rand_bytes(&mut nonce).map_err(|e| SealError::Crypto(e.to_string()))?;
        let mut tag = [0u8; TAG];
        let ciphertext = encrypt_aead(
            Cipher::aes_256_gcm(),
            &self.key,
            Some(&nonce),
            &associated_data(purpose, row),
            plaintext,
            &mut tag,
        )
        .map_err(|e| SealError::Crypto(e.to_string()))?;
        let mut out = Vec::with_capacity(1 + NONCE + ciphertext.len() + TAG);
        out.push(VERSION_ROW);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ciphertext);
        out.extend_from_slice(&tag);
        Ok(out)
    }

    /// Opens a value sealed for the column `purpose` of the record `row`. A value
    /// sealed for another row (or column, or with another key) is `Unauthentic`.
    pub fn open(&self, purpose: &str, row: &str, sealed: &[u8]) -> Result<Vec<u8>, SealError> {
        if sealed.len() < 1 + NONCE + TAG {
            return Err(SealError::Malformed);
        }
        let aad = match sealed[0] {
            VERSION_ROW => associated_data(purpose, row),
            VERSION_PURPOSE => purpose.as_bytes().to_vec(),
            _ => return Err(SealError::Malformed),
        };
        let nonce = &sealed[1..1 + NONCE];
        let (ciphertext, tag) = sealed[1 + NONCE..].split_at(sealed.len() - 1 - NONCE - TAG);
        decrypt_aead(
            Cipher::aes_256_gcm(),
            &self.key,
            Some(nonce),
            &aad,
            ciphertext,
            tag,
        )
        .map_err(|_| SealError::Unauthentic)
    }
}

impl Sealer {
    /// A key for another purpose than sealing (`info` names it, e.g. the audit
    /// chain's HMAC key), derived from the master key with HKDF-SHA256 (RFC 5869, no
    /// salt). Whoever holds the master key can derive it again; the master key cannot
    /// be recovered from it, and keys for different `info` are independent.
    pub fn derive_key(&self, info: &str) -> Result<[u8; KEY_LEN], SealError> {
        use openssl::md::Md;
        use openssl::pkey::Id;
        use openssl::pkey_ctx::PkeyCtx;
        let crypto = |e: openssl::error::ErrorStack| SealError::Crypto(e.to_string());
        let mut ctx = PkeyCtx::new_id(Id::HKDF).map_err(crypto)?;
        ctx.derive_init().map_err(crypto)?;
        ctx.set_hkdf_md(Md::sha256()).map_err(crypto)?;
        ctx.set_hkdf_key(&self.key).map_err(crypto)?;
        ctx.add_hkdf_info(info.as_bytes()).map_err(crypto)?;
        let mut out = [0u8; KEY_LEN];
        let len = ctx.derive(Some(&mut out)).map_err(crypto)?;
        if len != KEY_LEN {
            return Err(SealError::Crypto(format!(
                "HKDF gave {len} bytes, not {KEY_LEN}"
            )));
        }
        Ok(out)
    }
}

/// Whether `bytes` look like a sealed value (a known version byte and room for the
/// nonce and tag). Lets a column hold either clear text that starts with a printable
/// character (an XML plist) or a sealed value, without a flag column.
pub fn is_sealed(bytes: &[u8]) -> bool {
    bytes.len() >= 1 + NONCE + TAG && matches!(bytes[0], VERSION_PURPOSE | VERSION_ROW)
}

/// Version 2 associated data: the purpose's length first, so that no (purpose, row)
/// pair can be read as another one.
fn associated_data(purpose: &str, row: &str) -> Vec<u8> {
    let mut aad = Vec::with_capacity(4 + purpose.len() + row.len());
    aad.extend_from_slice(&(purpose.len() as u32).to_be_bytes());
    aad.extend_from_slice(purpose.as_bytes());
    aad.extend_from_slice(row.as_bytes());
    aad
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_refusals() {
        let sealer = Sealer::new(&Sealer::generate_key()).unwrap();
        let sealed = sealer.seal("unlock-token", "device-1", b"secret").unwrap();
        assert!(is_sealed(&sealed));
        assert!(!sealed.windows(6).any(|w| w == b"secret"));
        assert_eq!(
            sealer.open("unlock-token", "device-1", &sealed).unwrap(),
            b"secret"
        );
        assert_eq!(
            sealer.open("bootstrap-token", "device-1", &sealed),
            Err(SealError::Unauthentic)
        );
        let other = Sealer::new(&Sealer::generate_key()).unwrap();
        assert_eq!(
            other.open("unlock-token", "device-1", &sealed),
            Err(SealError::Unauthentic)
        );
        let mut tampered = sealed.clone();
        *tampered.last_mut().unwrap() ^= 1;
        assert_eq!(
            sealer.open("unlock-token", "device-1", &tampered),
            Err(SealError::Unauthentic)
        );
        assert_eq!(sealer.open("x", "r", &[2, 2]), Err(SealError::Malformed));
        let mut unknown = sealed.clone();
        unknown[0] = 9;
        assert_eq!(
            sealer.open("unlock-token", "device-1", &unknown),
            Err(SealError::Malformed)
        );
        assert!(!is_sealed(
            b"<?xml version=\"1.0\" encoding=\"UTF-8\"?><plist/>"
        ));
        assert_eq!(Sealer::new(&[0; 5]).unwrap_err(), SealError::KeyLength(5));
        assert!(!format!("{sealer:?}").contains(&format!("{:?}", sealer.key)));
    }

    /// A value moved to another row (a database writer swapping two devices' unlock
    /// tokens) does not open there, and the boundary between purpose and row cannot
    /// be shifted to make two bindings collide.
    #[test]
    fn bound_to_its_row() {
        let sealer = Sealer::new(&Sealer::generate_key()).unwrap();
        let sealed = sealer.seal("unlock-token", "device-1", b"secret").unwrap();
        assert_eq!(
            sealer.open("unlock-token", "device-2", &sealed),
            Err(SealError::Unauthentic)
        );
        assert_eq!(
            sealer.open("unlock-token", "", &sealed),
            Err(SealError::Unauthentic)
        );
        let shifted = sealer.seal("ab", "c", b"v").unwrap();
        assert_eq!(
            sealer.open("a", "bc", &shifted),
            Err(SealError::Unauthentic)
        );
        assert_eq!(sealer.open("ab", "c", &shifted).unwrap(), b"v");
    }

    /// HKDF-SHA256 as RFC 5869 defines it (extract with a zero salt, then one block
    /// of expand), computed here with plain HMACs; different purposes, different keys.
    #[test]
    fn derived_keys_are_rfc_5869_hkdf() {
        use openssl::hash::MessageDigest;
        use openssl::pkey::PKey;
        use openssl::sign::Signer;
        let hmac = |key: &[u8], data: &[u8]| {
            let pkey = PKey::hmac(key).unwrap();
            let mut s = Signer::new(MessageDigest::sha256(), &pkey).unwrap();
            s.update(data).unwrap();
            s.sign_to_vec().unwrap()
        };
        let sealer = Sealer::new(&Sealer::generate_key()).unwrap();
        let prk = hmac(&[0u8; 32], &sealer.key);
        let expected = hmac(&prk, &[&b"mdm.audit.chain"[..], &[1u8]].concat());
        let derived = sealer.derive_key("mdm.audit.chain").unwrap();
        assert_eq!(derived.to_vec(), expected);
        assert_ne!(derived, sealer.derive_key("something else").unwrap());
        assert_ne!(derived, sealer.key);
    }

    /// Values sealed before rows were bound (version 1: purpose only) still open, for
    /// any row, and only for their purpose; a version 2 value relabelled as version 1
    /// (to drop the row binding) does not open.
    #[test]
    fn purpose_only_values_from_earlier_releases_still_open() {
        let sealer = Sealer::new(&Sealer::generate_key()).unwrap();
        let mut nonce = [0u8; NONCE];
        rand_bytes(&mut nonce).unwrap();
        let mut tag = [0u8; TAG];
        let ciphertext = encrypt_aead(
            Cipher::aes_256_gcm(),
            &sealer.key,
            Some(&nonce),
            b"unlock-token",
            b"old secret",
            &mut tag,
        )
        .unwrap();
        let legacy = [&[VERSION_PURPOSE][..], &nonce, &ciphertext, &tag].concat();
        assert!(is_sealed(&legacy));
        assert_eq!(
            sealer.open("unlock-token", "any-device", &legacy).unwrap(),
            b"old secret"
        );
        assert_eq!(
            sealer.open("bootstrap-token", "any-device", &legacy),
            Err(SealError::Unauthentic)
        );
        let mut downgraded = sealer.seal("unlock-token", "device-1", b"new").unwrap();
        downgraded[0] = VERSION_PURPOSE;
        assert_eq!(
            sealer.open("unlock-token", "device-1", &downgraded),
            Err(SealError::Unauthentic)
        );
    }
}
