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
pub mod report;

/// A plist that could not be read as the message it claims to be.
///
/// Carries a short excerpt of the offending bytes so that the log can show what the
/// device sent without dumping secrets or megabytes.
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
        let shown = &bytes[..bytes.len().min(200)];
        ParseError {
            reason: reason.into(),
            excerpt: String::from_utf8_lossy(shown).into_owned(),
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
