//! The PKI side of enrollment: device identity verification and sealing of secrets.
//!
//! * [`identity`]: verifies that a request comes from a device certificate issued
//!   by the device CA (the `Mdm-Signature` CMS signature, or a client certificate
//!   forwarded by a TLS-terminating proxy).
//! * [`crl`]: the device CA's revocation list.
//! * [`server_tls`]: the server's own TLS root and the HTTPS certificates it issues.
//! * [`seal`]: authenticated encryption of secrets kept at rest (unlock tokens,
//!   bootstrap tokens, command payloads that carry a PIN, later CA keys).

pub mod android;
pub mod ca;
pub mod crl;
pub mod identity;
pub mod qr;
pub mod scep;
pub mod seal;
pub mod server_tls;
pub mod signing;
