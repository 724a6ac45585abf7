//! The one policy model and its two compilers (issue 9).
//!
//! An admin writes one [`PolicyDocument`] (JSON through the API, TOML or YAML files):
//! passcode rules, Wi-Fi networks joined with the user's domain account, mail
//! accounts filled with the user's directory attributes, trusted root certificates.
//!
//! * [`parse`] reads it, [`validate`] checks it (every error, with the field path,
//!   what is wrong and what is allowed), [`office_findings`] says which of the
//!   office's rules (`../shared/docs/requirements.md`) it breaks; [`baseline`] is a
//!   policy that breaks none.
//! * [`compile_apple`] makes one configuration profile per policy and device,
//!   byte-for-byte deterministic; [`compile_android`] merges a device's policies into
//!   the Android Management API `Policy` fields they set. What a platform cannot
//!   express is returned as a [`PlatformNote`], never dropped in silence.
//!
//! Pure code: no I/O, no clock, no randomness. See `docs/policies.md`.

mod android;
mod apple;
mod model;
mod office_rules;
mod parse;
mod template;
mod validate;

#[cfg(test)]
mod tests;

pub use android::{compile_android, AndroidOutput, GMAIL_PACKAGE};
pub use apple::{compile_apple, AppleContext, AppleOutput, ScepParams};
pub use model::{
    Eap, FieldError, Finding, Format, Inner, MailAccount, MailKind, Passcode, PlatformNote,
    PolicyDocument, TrustedCertificate, UserAttributes, WifiNetwork, WifiSecurity,
};
pub use office_rules::{baseline, baseline_toml, office_findings, RULES};
/// The office's limits the rules check (longest auto-lock, shortest PIN, most failed attempts).
pub mod office_rules_limits {
    pub use super::office_rules::{MAX_AUTO_LOCK_MINUTES, MAX_FAILED_ATTEMPTS, MIN_PIN_LENGTH};
}
pub use parse::parse;
pub use template::{render_template, template_variables, VARIABLES};
pub use validate::{pem_certificate, validate, AUTO_LOCK_MINUTES};
