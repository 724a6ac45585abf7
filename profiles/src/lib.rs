//! Apple MDM protocol types, kept apart from storage and HTTP.
//!
//! * [`bounded`]: reads untrusted plists within limits (depth, elements, sizes),
//!   without recursion; every decoder of device input goes through it.
//! * [`checkin`]: the messages a device sends to the CheckInURL.
//! * [`report`]: what a device sends to the ServerURL (Idle or a command result),
//!   and parsers for the results that update the device record.
//! * [`commands`]: typed builders for the commands an admin can queue, producing the
//!   exact plists Apple documents.
//!
//! Pure code: no I/O, no clocks, no randomness except command UUIDs.

pub mod bounded;
pub mod checkin;
pub mod commands;
pub mod enrollment_profile;
pub mod policy;
pub mod report;

/// A plist that could not be read as the message it claims to be.
///
/// Carries a short excerpt of the offending bytes so that the log can show what the
/// device sent without dumping secrets or megabytes: see [`excerpt`].
#[derive(Debug, thiserror::Error)]
#[error("{reason}")]
pub struct ParseError {
    pub reason: String,
    pub excerpt: String,
    /// The plist crossed a size limit (elements, string or data bytes): HTTP 413.
    pub too_large: bool,
}

impl ParseError {
    pub fn new(reason: impl Into<String>, bytes: &[u8]) -> Self {
        ParseError {
            reason: reason.into(),
            excerpt: excerpt(bytes),
            too_large: false,
        }
    }

    /// A plist refused because one of its sizes crossed a [`bounded::PlistLimits`].
    pub fn too_large(reason: impl Into<String>, bytes: &[u8]) -> Self {
        ParseError {
            too_large: true,
            ..ParseError::new(reason, bytes)
        }
    }
}

/// How many bytes of a refused plist the log may show at most.
pub const EXCERPT_BYTES: usize = 200;

/// What of a refused device plist may go to the log. Device messages carry secrets
/// (TokenUpdate's Token, PushMagic and UnlockToken, SetBootstrapToken, command
/// results with passcodes or bypass codes), and a message broken further down still
/// carries them near the start. So the excerpt is the text before the first `<data`
/// element (every binary secret is one) and before the value of the first key whose
/// name says secret (token, magic, password, passcode, pin, secret, key, code), at
/// most [`EXCERPT_BYTES`]; a binary plist is shown only as its size, since its values
/// cannot be told apart without parsing it.
pub fn excerpt(bytes: &[u8]) -> String {
    if bytes.starts_with(b"bplist") {
        return format!("<binary plist, {} bytes>", bytes.len());
    }
    let mut end = bytes.len().min(EXCERPT_BYTES);
    if let Some(at) = find(&bytes[..end], b"<data") {
        end = at;
    }
    // A key whose value is secret: show the key, cut before its value.
    let mut from = 0;
    while let Some(at) = find(&bytes[from..end], b"<key>") {
        let name_start = from + at + b"<key>".len();
        let Some(close) = find(&bytes[name_start..end], b"</key>") else {
            // The key's name runs past the excerpt: it may be secret-named, drop it.
            end = from + at;
            break;
        };
        let name = String::from_utf8_lossy(&bytes[name_start..name_start + close]);
        let value_start = name_start + close + b"</key>".len();
        if is_secret_key(&name) {
            end = value_start;
            break;
        }
        from = value_start;
    }
    let mut shown = String::from_utf8_lossy(&bytes[..end]).into_owned();
    if end < bytes.len() {
        shown.push('…');
    }
    shown
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Plist keys whose values are secrets, by the words Apple names them with.
fn is_secret_key(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    const WORDS: &[&str] = &[
        "token",
        "magic",
        "password",
        "passcode",
        "pin",
        "secret",
        "key",
        "code",
        "challenge",
    ];
    WORDS.iter().any(|w| name.contains(w))
}

#[cfg(test)]
mod excerpt_tests {
    use super::*;

    #[test]
    fn secrets_are_cut_from_excerpts() {
        let token_update = b"<?xml version=\"1.0\"?><plist><dict><key>MessageType</key><string>TokenUpdate</string><key>PushMagic</key><string>SECRET-MAGIC</string><key>Token</key><data>U0VDUkVU</data></dict></plist>";
        let e = excerpt(token_update);
        assert!(e.contains("TokenUpdate"), "{e}");
        assert!(e.ends_with("<key>PushMagic</key>…"), "{e}");
        assert!(!e.contains("SECRET"), "{e}");

        let data_first = b"<plist><dict><key>Stuff</key><data>U0VDUkVU</data>";
        assert_eq!(excerpt(data_first), "<plist><dict><key>Stuff</key>…");

        let unlock = b"<dict><key>UnlockToken</key><data>AAAA</data>";
        assert_eq!(excerpt(unlock), "<dict><key>UnlockToken</key>…");

        let pin = b"<dict><key>PIN</key><string>123456</string></dict>";
        assert_eq!(excerpt(pin), "<dict><key>PIN</key>…");
    }

    #[test]
    fn harmless_text_is_kept_and_bounded() {
        assert_eq!(excerpt(b"not a plist"), "not a plist");
        let long = vec![b'x'; 1000];
        let e = excerpt(&long);
        assert_eq!(e.len(), EXCERPT_BYTES + "…".len());
        assert_eq!(excerpt(b"bplist00\x01\x02"), "<binary plist, 10 bytes>");
        // A key cut by the length bound is dropped, not shown half.
        let mut cut = vec![b'a'; EXCERPT_BYTES - 8];
        cut.extend_from_slice(b"<key>UnlockToken</key><data>AA</data>");
        assert!(!excerpt(&cut).contains("<key>"));
        assert_eq!(excerpt(b""), "");
    }
}
