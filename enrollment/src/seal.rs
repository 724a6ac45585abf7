//! Authenticated encryption for secrets at rest (AES-256-GCM, openssl).
//!
//! Sealed form: `0x01 || nonce(12) || ciphertext || tag(16)`. The `purpose` string is
//! bound as associated data, so a sealed unlock token cannot be replayed into another
//! column (say, as a bootstrap token) without detection.

use openssl::rand::rand_bytes;
use openssl::symm::{decrypt_aead, encrypt_aead, Cipher};

const VERSION: u8 = 1;
const NONCE: usize = 12;
const TAG: usize = 16;
pub const KEY_LEN: usize = 32;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SealError {
    #[error("master key must be exactly 32 bytes, got {0}")]
    KeyLength(usize),
    #[error("sealed value is truncated or of an unknown version")]
    Malformed,
    #[error("sealed value does not authenticate with this master key (wrong key, or tampered)")]
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

    pub fn seal(&self, purpose: &str, plaintext: &[u8]) -> Result<Vec<u8>, SealError> {
        let mut nonce = [0u8; NONCE];
        rand_bytes(&mut nonce).map_err(|e| SealError::Crypto(e.to_string()))?;
        let mut tag = [0u8; TAG];
        let ciphertext = encrypt_aead(
            Cipher::aes_256_gcm(),
            &self.key,
            Some(&nonce),
            purpose.as_bytes(),
            plaintext,
            &mut tag,
        )
        .map_err(|e| SealError::Crypto(e.to_string()))?;
        let mut out = Vec::with_capacity(1 + NONCE + ciphertext.len() + TAG);
        out.push(VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ciphertext);
        out.extend_from_slice(&tag);
        Ok(out)
    }

    pub fn open(&self, purpose: &str, sealed: &[u8]) -> Result<Vec<u8>, SealError> {
        if sealed.len() < 1 + NONCE + TAG || sealed[0] != VERSION {
            return Err(SealError::Malformed);
        }
        let nonce = &sealed[1..1 + NONCE];
        let (ciphertext, tag) = sealed[1 + NONCE..].split_at(sealed.len() - 1 - NONCE - TAG);
        decrypt_aead(
            Cipher::aes_256_gcm(),
            &self.key,
            Some(nonce),
            purpose.as_bytes(),
            ciphertext,
            tag,
        )
        .map_err(|_| SealError::Unauthentic)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_refusals() {
        let sealer = Sealer::new(&Sealer::generate_key()).unwrap();
        let sealed = sealer.seal("unlock-token", b"secret").unwrap();
        assert!(!sealed.windows(6).any(|w| w == b"secret"));
        assert_eq!(sealer.open("unlock-token", &sealed).unwrap(), b"secret");
        assert_eq!(
            sealer.open("bootstrap-token", &sealed),
            Err(SealError::Unauthentic)
        );
        let other = Sealer::new(&Sealer::generate_key()).unwrap();
        assert_eq!(
            other.open("unlock-token", &sealed),
            Err(SealError::Unauthentic)
        );
        let mut tampered = sealed.clone();
        *tampered.last_mut().unwrap() ^= 1;
        assert_eq!(
            sealer.open("unlock-token", &tampered),
            Err(SealError::Unauthentic)
        );
        assert_eq!(sealer.open("x", &[1, 2]), Err(SealError::Malformed));
        assert_eq!(Sealer::new(&[0; 5]).unwrap_err(), SealError::KeyLength(5));
        assert!(!format!("{sealer:?}").contains(&format!("{:?}", sealer.key)));
    }
}
