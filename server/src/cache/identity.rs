//! Certificates that signed device requests: whether their chain to the device CA
//! verified (until the earliest notAfter of that chain), and, once the database said
//! so, which device (UDID) the certificate is bound to.
//!
//! Keyed by the certificate's SHA-256 fingerprint, so an entry is only ever found
//! for the very certificate that was checked; the signature over each request body
//! is still verified with that certificate's key (enrollment/src/identity.rs). Only
//! an accepted binding is stored (bound to this UDID, not revoked): a mismatch or a
//! revoked certificate goes to the database, and its security event, every time. A
//! device's change (its identity revoked, moved to another certificate, the device
//! deleted) removes the whole entry of its certificate.

use crate::storage::DeviceIdentityRow;
use chrono::{DateTime, Utc};
use enrollment::identity::{SignerKey, VerifiedIdentity};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Past this many certificates the map starts again empty.
const MAX_CERTIFICATES: usize = 2_000_000;

#[derive(Default)]
pub(super) struct Identities {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    /// Moves on every device change: a binding read before one is not stored.
    generation: u64,
    certificates: HashMap<String, Entry>,
    /// Device id -> the fingerprint of the certificate bound to it here.
    devices: HashMap<String, String>,
}

struct Entry {
    identity: Arc<VerifiedIdentity>,
    /// The certificate's key, to check a request's signature without openssl's
    /// PKCS#7 decoding (none for a certificate a proxy forwarded).
    key: Option<Arc<SignerKey>>,
    /// Seconds since the UNIX epoch: the entry is not used from then on.
    valid_until: i64,
    bound: Option<Bound>,
}

struct Bound {
    udid: String,
    device: DeviceIdentityRow,
}

impl Inner {
    fn remove(&mut self, fingerprint: &str) {
        if let Some(entry) = self.certificates.remove(fingerprint) {
            if let Some(bound) = entry.bound {
                self.devices.remove(&bound.device.id);
            }
        }
    }
}

impl Identities {
    pub(super) fn generation(&self) -> u64 {
        self.inner.lock().unwrap().generation
    }

    pub(super) fn verified(&self, fingerprint: &str, now: i64) -> Option<Arc<VerifiedIdentity>> {
        let mut inner = self.inner.lock().unwrap();
        let entry = inner.certificates.get(fingerprint)?;
        if now >= entry.valid_until {
            inner.remove(fingerprint);
            return None;
        }
        Some(entry.identity.clone())
    }

    pub(super) fn signer(
        &self,
        fingerprint: &str,
        now: i64,
    ) -> Option<(Arc<VerifiedIdentity>, Arc<SignerKey>)> {
        let inner = self.inner.lock().unwrap();
        let entry = inner.certificates.get(fingerprint)?;
        if now >= entry.valid_until {
            return None;
        }
        Some((entry.identity.clone(), entry.key.clone()?))
    }

    pub(super) fn remember(
        &self,
        identity: Arc<VerifiedIdentity>,
        valid_until: i64,
        key: Option<SignerKey>,
    ) {
        let mut inner = self.inner.lock().unwrap();
        if inner.certificates.len() >= MAX_CERTIFICATES {
            inner.certificates.clear();
            inner.devices.clear();
        }
        let entry = inner
            .certificates
            .entry(identity.fingerprint.clone())
            .or_insert(Entry {
                identity,
                key: None,
                valid_until,
                bound: None,
            });
        if entry.key.is_none() {
            entry.key = key.map(Arc::new);
        }
    }

    pub(super) fn bound(
        &self,
        fingerprint: &str,
        udid: &str,
        now: i64,
    ) -> Option<DeviceIdentityRow> {
        let inner = self.inner.lock().unwrap();
        let entry = inner.certificates.get(fingerprint)?;
        let bound = entry.bound.as_ref()?;
        (now < entry.valid_until && bound.udid == udid).then(|| bound.device.clone())
    }

    /// Stores a binding on the certificate's entry (none without one: a chain not
    /// verified here binds nothing) if no device change came since `generation`.
    pub(super) fn bind(
        &self,
        fingerprint: &str,
        udid: &str,
        device: &DeviceIdentityRow,
        generation: u64,
    ) {
        let mut inner = self.inner.lock().unwrap();
        if inner.generation != generation || !inner.certificates.contains_key(fingerprint) {
            return;
        }
        // One certificate per device here, as in the database.
        if let Some(previous) = inner.devices.get(&device.id).cloned() {
            if previous != fingerprint {
                inner.remove(&previous);
            }
        }
        let Some(entry) = inner.certificates.get_mut(fingerprint) else {
            return;
        };
        if let Some(old) = entry.bound.take() {
            inner.devices.remove(&old.device.id);
        }
        let Some(entry) = inner.certificates.get_mut(fingerprint) else {
            return;
        };
        entry.bound = Some(Bound {
            udid: udid.to_owned(),
            // Whether it has commands is the queue cache's business, not a binding's.
            device: DeviceIdentityRow {
                open_commands: None,
                ..device.clone()
            },
        });
        inner
            .devices
            .insert(device.id.clone(), fingerprint.to_owned());
    }

    pub(super) fn seen(&self, fingerprint: &str, at: DateTime<Utc>) {
        let mut inner = self.inner.lock().unwrap();
        if let Some(bound) = inner
            .certificates
            .get_mut(fingerprint)
            .and_then(|e| e.bound.as_mut())
        {
            bound.device.last_seen_at = Some(at);
        }
    }

    pub(super) fn forget_device(&self, device_id: &str) {
        let mut inner = self.inner.lock().unwrap();
        inner.generation += 1;
        if let Some(fingerprint) = inner.devices.remove(device_id) {
            inner.remove(&fingerprint);
        }
    }

    pub(super) fn forget_all(&self) {
        let mut inner = self.inner.lock().unwrap();
        inner.generation += 1;
        inner.certificates.clear();
        inner.devices.clear();
    }
}
