//! What the Apple device path may know without asking the database: certificates
//! whose chain verified and the device each speaks for (`identity.rs`), and devices
//! whose queue is known to be empty (`queue.rs`).
//!
//! Why it stays correct:
//! - Storage announces every write that could make a cached answer wrong (commands
//!   queued; an identity bound, moved, revoked or deleted) as a [`Change`]: to this
//!   instance after the commit, and on PostgreSQL to every instance by a NOTIFY sent
//!   inside the same transaction, so it arrives exactly when the write is visible
//!   (`storage/sql/notify.rs`).
//! - An entry is only stored if no change of its kind was applied since the database
//!   read it comes from began (each map counts its changes: a generation), so a
//!   change that races a read is never lost under a stale entry.
//! - While changes from other instances cannot be trusted to arrive (the PostgreSQL
//!   listener is down or silent) the cache is emptied and bypassed: every request
//!   asks the database, as it would without a cache.

pub mod identity;
pub mod queue;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// A write that cached answers must not outlive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A device's identity or state changed (its certificate bound, moved, revoked,
    /// its enrollment completed, the device deleted): what is known of it goes.
    Device(String),
    /// Commands were queued for these devices.
    Queues(Vec<String>),
    /// Commands were queued for more devices than one message names.
    AllQueues,
}

pub struct DeviceCache {
    live: AtomicBool,
    /// Whether other instances may write the database (PostgreSQL). Their changes
    /// arrive by NOTIFY, after their commit and asynchronously: a request arriving in
    /// between would be answered from a stale binding or empty queue. So with a
    /// shared database only the verified-chain cache is used (a chain's verdict does
    /// not depend on anyone's writes; the binding and revocation are then always
    /// read from the database).
    shared: AtomicBool,
    identities: identity::Identities,
    queues: queue::EmptyQueues,
}

impl DeviceCache {
    /// A cache that starts bypassed until [`DeviceCache::set_live`] (on PostgreSQL,
    /// once the listener listens).
    pub fn new() -> Arc<Self> {
        Arc::new(DeviceCache {
            live: AtomicBool::new(false),
            shared: AtomicBool::new(false),
            identities: identity::Identities::default(),
            queues: queue::EmptyQueues::default(),
        })
    }

    /// Whether entries may be used and stored.
    pub fn is_live(&self) -> bool {
        self.live.load(Ordering::Acquire)
    }

    /// Other instances may write the database: bindings and empty queues are not
    /// remembered (see the `shared` field).
    pub fn share_database(&self) {
        self.shared.store(true, Ordering::Release);
    }

    /// Whether bindings and empty queues may be used and stored.
    fn answers_from_memory(&self) -> bool {
        self.is_live() && !self.shared.load(Ordering::Acquire)
    }

    /// Empties the cache and turns it on or off. Emptied in both directions: what was
    /// learnt before changes could be missed is not trusted after.
    pub fn set_live(&self, live: bool) {
        if !live {
            self.live.store(false, Ordering::Release);
        }
        self.identities.forget_all();
        self.queues.forget_all();
        if live {
            self.live.store(true, Ordering::Release);
        }
    }

    pub fn apply(&self, change: &Change) {
        match change {
            Change::Device(id) => {
                self.identities.forget_device(id);
                self.queues.forget(std::slice::from_ref(id));
            }
            Change::Queues(ids) => self.queues.forget(ids),
            Change::AllQueues => self.queues.forget_all(),
        }
    }

    /// Read before the database read whose outcome may be stored with
    /// [`DeviceCache::mark_queue_empty`].
    pub fn queue_generation(&self) -> u64 {
        self.queues.generation()
    }

    /// Whether this device's queue is known to hold nothing to send.
    pub fn queue_known_empty(&self, device_id: &str) -> bool {
        self.answers_from_memory() && self.queues.contains(device_id)
    }

    /// The device's queue was found empty by a read that began at `generation`.
    pub fn mark_queue_empty(&self, device_id: &str, generation: u64) {
        if self.answers_from_memory() {
            self.queues.insert(device_id, generation);
        }
    }

    /// Read before the database read whose outcome may be stored with
    /// [`DeviceCache::bind`].
    pub fn identity_generation(&self) -> u64 {
        self.identities.generation()
    }

    /// The device the certificate `fingerprint` was found bound to, if that device
    /// is `udid` (and the certificate was not revoked: only accepted bindings are
    /// stored).
    pub fn bound_device(
        &self,
        fingerprint: &str,
        udid: &str,
        now: i64,
    ) -> Option<crate::storage::DeviceIdentityRow> {
        if !self.answers_from_memory() {
            return None;
        }
        self.identities.bound(fingerprint, udid, now)
    }

    /// The certificate `fingerprint` speaks for `device` (`udid`), as a read that
    /// began at `generation` found.
    pub fn bind(
        &self,
        fingerprint: &str,
        udid: &str,
        device: &crate::storage::DeviceIdentityRow,
        generation: u64,
    ) {
        if self.answers_from_memory() {
            self.identities.bind(fingerprint, udid, device, generation);
        }
    }

    /// The bound device was seen at `at` (what decides when last_seen is written).
    pub fn seen(&self, fingerprint: &str, at: chrono::DateTime<chrono::Utc>) {
        self.identities.seen(fingerprint, at);
    }
}

impl enrollment::identity::VerifiedChains for DeviceCache {
    fn verified(
        &self,
        fingerprint: &str,
        now: i64,
    ) -> Option<Arc<enrollment::identity::VerifiedIdentity>> {
        if !self.is_live() {
            return None;
        }
        self.identities.verified(fingerprint, now)
    }

    fn signer(
        &self,
        fingerprint: &str,
        now: i64,
    ) -> Option<(
        Arc<enrollment::identity::VerifiedIdentity>,
        Arc<enrollment::identity::SignerKey>,
    )> {
        if !self.is_live() {
            return None;
        }
        self.identities.signer(fingerprint, now)
    }

    fn remember(
        &self,
        identity: Arc<enrollment::identity::VerifiedIdentity>,
        not_after: i64,
        key: Option<enrollment::identity::SignerKey>,
    ) {
        if self.is_live() {
            self.identities.remember(identity, not_after, key);
        }
    }
}

/// The text of a change in a NOTIFY payload (at most 8000 bytes: callers split
/// `Queues` well below it) and back.
impl Change {
    pub fn to_payload(&self) -> String {
        match self {
            Change::Device(id) => format!("d:{id}"),
            Change::Queues(ids) => format!("q:{}", ids.join(",")),
            Change::AllQueues => "q*".into(),
        }
    }

    /// None for a payload this version does not know: the caller then forgets
    /// everything, the only safe reading of a change it cannot parse.
    pub fn from_payload(payload: &str) -> Option<Change> {
        if payload == "q*" {
            return Some(Change::AllQueues);
        }
        if let Some(id) = payload.strip_prefix("d:") {
            return Some(Change::Device(id.to_owned()));
        }
        let ids = payload.strip_prefix("q:")?;
        Some(Change::Queues(
            ids.split(',')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_round_trip() {
        for change in [
            Change::Device("a-b".into()),
            Change::Queues(vec!["x".into(), "y".into()]),
            Change::AllQueues,
        ] {
            assert_eq!(Change::from_payload(&change.to_payload()), Some(change));
        }
        assert_eq!(Change::from_payload("z:?"), None);
    }

    #[test]
    fn bypassed_until_live_and_emptied_when_it_goes_down() {
        let cache = DeviceCache::new();
        let g = cache.queue_generation();
        cache.mark_queue_empty("d1", g);
        assert!(!cache.queue_known_empty("d1"), "not live: nothing stored");
        cache.set_live(true);
        let g = cache.queue_generation();
        cache.mark_queue_empty("d1", g);
        assert!(cache.queue_known_empty("d1"));
        cache.set_live(false);
        assert!(!cache.queue_known_empty("d1"));
        cache.set_live(true);
        assert!(!cache.queue_known_empty("d1"), "emptied, not restored");
    }

    #[test]
    fn a_shared_database_keeps_queues_and_bindings_out() {
        let cache = DeviceCache::new();
        cache.share_database();
        cache.set_live(true);
        let g = cache.queue_generation();
        cache.mark_queue_empty("d1", g);
        assert!(
            !cache.queue_known_empty("d1"),
            "another instance may queue a command before its NOTIFY arrives"
        );
    }

    #[test]
    fn a_change_during_the_read_keeps_its_outcome_out() {
        let cache = DeviceCache::new();
        cache.set_live(true);
        let g = cache.queue_generation();
        // A command is queued (elsewhere) while the read that found nothing runs.
        cache.apply(&Change::Queues(vec!["d1".into()]));
        cache.mark_queue_empty("d1", g);
        assert!(!cache.queue_known_empty("d1"));
        let g = cache.queue_generation();
        cache.mark_queue_empty("d1", g);
        assert!(cache.queue_known_empty("d1"));
        cache.apply(&Change::Device("d1".into()));
        assert!(!cache.queue_known_empty("d1"));
    }
}
