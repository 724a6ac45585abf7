//! The second factor: TOTP (RFC 6238: HMAC-SHA-1, 6 digits, 30-second steps, one
//! step of clock skew either way), computed by the `totp-rs` crate, and single-use
//! recovery codes.

use totp_rs::{Algorithm, Builder, Totp};

/// 160-bit secrets, as RFC 4226 recommends.
pub const SECRET_BYTES: usize = 20;
pub const RECOVERY_CODES: usize = 10;

pub fn new_secret() -> Vec<u8> {
    let mut secret = vec![0u8; SECRET_BYTES];
    openssl::rand::rand_bytes(&mut secret).expect("the OS random generator works");
    secret
}

fn totp(secret: &[u8], issuer: &str, account: &str) -> Result<Totp, String> {
    Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(6)
        .with_skew(1)
        .with_step_duration(30)
        .with_secret(secret.to_vec())
        .with_issuer(Some(issuer.replace(':', " ")))
        .with_account_name(account.replace(':', " "))
        .build()
        .map_err(|e| format!("TOTP: {e:?}"))
}

/// The otpauth:// URI an authenticator app scans (as a QR code).
pub fn otpauth_uri(secret: &[u8], issuer: &str, account: &str) -> Result<String, String> {
    totp(secret, issuer, account)?
        .to_url()
        .map_err(|e| format!("TOTP: {e:?}"))
}

pub fn base32(secret: &[u8]) -> String {
    totp_rs::Secret::from(secret.to_vec()).to_base32()
}

/// The time step a code is valid for at `unix_time` (within the skew), if any.
pub fn check(secret: &[u8], code: &str, unix_time: u64) -> Option<i64> {
    let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    if code.len() != 6 || !code.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let totp = totp(secret, "mdm", "admin").ok()?;
    totp.check(&code, unix_time).map(|step| step as i64)
}

/// Ten codes of 16 base32 characters (80 bits) in groups of four.
pub fn recovery_codes() -> Vec<String> {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    (0..RECOVERY_CODES)
        .map(|_| {
            let mut bytes = [0u8; 16];
            openssl::rand::rand_bytes(&mut bytes).expect("the OS random generator works");
            let chars: Vec<char> = bytes
                .iter()
                .map(|b| ALPHABET[(*b as usize) % ALPHABET.len()] as char)
                .collect();
            chars
                .chunks(4)
                .map(|c| c.iter().collect::<String>())
                .collect::<Vec<_>>()
                .join("-")
        })
        .collect()
}

/// What is stored of a recovery code: SHA-256 of its normalised form (80 random
/// bits need no slow hash).
pub fn recovery_hash(code: &str) -> String {
    let normal: String = code
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_uppercase())
        .collect();
    hex::encode(openssl::sha::sha256(normal.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 Appendix B, SHA-1 (the 8-digit values' last 6 digits).
    #[test]
    fn rfc_6238_test_vectors() {
        let secret = b"12345678901234567890";
        for (time, code) in [
            (59u64, "287082"),
            (1111111109, "081804"),
            (1111111111, "050471"),
            (1234567890, "005924"),
            (2000000000, "279037"),
        ] {
            assert!(check(secret, code, time).is_some(), "{time} {code}");
        }
        assert!(check(secret, "287083", 59).is_none());
        assert!(
            check(secret, "287082", 59 + 90).is_none(),
            "outside the skew"
        );
    }

    #[test]
    fn recovery_codes_are_distinct_and_normalised() {
        let codes = recovery_codes();
        assert_eq!(codes.len(), 10);
        assert_eq!(codes[0].len(), 19);
        let lower = codes[0].to_lowercase().replace('-', " ");
        assert_eq!(recovery_hash(&lower), recovery_hash(&codes[0]));
        assert_ne!(recovery_hash(&codes[0]), recovery_hash(&codes[1]));
    }
}
