//! Google's side of Android Enterprise: the Android Management API (AMAPI) and the
//! Pub/Sub subscription its notifications arrive on, as Google documents them.
//!
//! * [`key`]: the service-account key file and the RFC 7523 JWT assertion it signs.
//! * [`token`]: OAuth 2.0 access tokens from that assertion, cached and refreshed.
//! * [`google`]: one authorised REST call with Google's faults handled (retry with
//!   backoff on 429/5xx honouring Retry-After, one token refresh on 401).
//! * [`amapi`]: the AMAPI methods we use; [`types`] their resources.
//! * [`pubsub`]: `subscriptions.pull` and `subscriptions.acknowledge`.
//! * [`policy`]: the built-in policy every device gets.
//!
//! Protocol only: no storage, no HTTP server. `services::android` decides what to do.

pub mod amapi;
pub mod google;
pub mod key;
pub mod policy;
pub mod pubsub;
pub mod token;
pub mod types;
