//! RFC 6238 TOTP codes (HMAC-SHA-1, 6 digits, 30 s) computed by the tests
//! themselves, from the base32 secret the server showed: not by the server's crate.

/// The code for `unix` (seconds since the epoch).
pub fn code(secret_base32: &str, unix: u64) -> String {
    let mut bits = 0u64;
    let mut count = 0;
    let mut key = Vec::new();
    for c in secret_base32.trim_end_matches('=').chars() {
        let v = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
            .find(c.to_ascii_uppercase())
            .expect("base32") as u64;
        bits = (bits << 5) | v;
        count += 5;
        if count >= 8 {
            key.push((bits >> (count - 8)) as u8);
            count -= 8;
        }
    }
    let counter = (unix / 30).to_be_bytes();
    let pkey = openssl::pkey::PKey::hmac(&key).unwrap();
    let mut signer =
        openssl::sign::Signer::new(openssl::hash::MessageDigest::sha1(), &pkey).unwrap();
    signer.update(&counter).unwrap();
    let mac = signer.sign_to_vec().unwrap();
    let offset = (mac[19] & 0x0f) as usize;
    let value = u32::from_be_bytes([
        mac[offset] & 0x7f,
        mac[offset + 1],
        mac[offset + 2],
        mac[offset + 3],
    ]);
    format!("{:06}", value % 1_000_000)
}

/// The code for now, and the Unix time it was computed for.
pub fn now_code(secret_base32: &str) -> String {
    let unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs();
    code(secret_base32, unix)
}
