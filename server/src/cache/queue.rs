//! Devices whose queue is known to be empty: an Idle from one of them is answered
//! with an empty 200 without a statement. Set when an Idle's own read of the queue
//! found nothing to send; cleared by any command queued for the device (a
//! [`super::Change`]), whichever instance queued it.

use std::collections::HashSet;
use std::sync::Mutex;

/// Past this many devices the set starts again empty (a device missing from it
/// costs one read, nothing more).
const MAX_DEVICES: usize = 2_000_000;

#[derive(Default)]
pub(super) struct EmptyQueues {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    /// Moves on every change: a read that began before a change stores nothing.
    generation: u64,
    devices: HashSet<String>,
}

impl EmptyQueues {
    pub(super) fn generation(&self) -> u64 {
        self.inner.lock().unwrap().generation
    }

    pub(super) fn contains(&self, device_id: &str) -> bool {
        self.inner.lock().unwrap().devices.contains(device_id)
    }

    pub(super) fn insert(&self, device_id: &str, generation: u64) {
        let mut inner = self.inner.lock().unwrap();
        if inner.generation != generation || inner.devices.contains(device_id) {
            return;
        }
        if inner.devices.len() >= MAX_DEVICES {
            inner.devices.clear();
        }
        inner.devices.insert(device_id.to_owned());
    }

    pub(super) fn forget(&self, device_ids: &[String]) {
        let mut inner = self.inner.lock().unwrap();
        inner.generation += 1;
        for id in device_ids {
            inner.devices.remove(id);
        }
    }

    pub(super) fn forget_all(&self) {
        let mut inner = self.inner.lock().unwrap();
        inner.generation += 1;
        inner.devices.clear();
    }
}
