//! The PKI side of enrollment: device identity verification and sealing of secrets.
//!
//! * [`identity`]: verifies that a request comes from a device certificate issued
//!   by the device CA (the `Mdm-Signature` CMS signature, or a client certificate
//!   forwarded by a TLS-terminating proxy).
//! * [`seal`]: authenticated encryption of secrets kept at rest (unlock tokens,
//!   bootstrap tokens, command payloads that carry a PIN, later CA keys).

pub mod android;
pub mod ca;
pub mod identity;
pub mod qr;
pub mod scep;
pub mod seal;
pub mod signing;
