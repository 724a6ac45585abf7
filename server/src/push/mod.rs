//! Push: waking Apple devices through APNs so they fetch their commands.
//!
//! * [`certificate`]: reading the MDM push certificate, its topic and expiry.
//! * [`apns`]: the HTTP/2 APNs provider client.

pub mod apns;
pub mod certificate;
