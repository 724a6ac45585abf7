//! Push: waking Apple devices through APNs so they fetch their commands.
//!
//! * [`certificate`]: reading the MDM push certificate, its topic and expiry.
//! * [`apns`]: the HTTP/2 APNs provider client.
//! * [`request`]: the push key's CSR and the vendor-signed request Apple's portal takes.
//! * [`vendor`]: an office's own MDM vendor certificate and its chain to Apple's root.
//! * [`mdmcert`]: the mdmcert.download flow, for offices without a vendor certificate.

pub mod apns;
pub mod certificate;
pub mod mdmcert;
pub mod request;
pub mod vendor;
