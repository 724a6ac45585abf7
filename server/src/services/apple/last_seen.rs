//! `last_seen_at`, written behind: a device request notes when its device was seen
//! and returns; the notes are written in batched statements every few seconds, and
//! once more when the server stops. An Idle answered from the cache thus writes
//! nothing while it waits, and a thousand devices seen in a second cost a handful
//! of statements instead of a thousand.
//!
//! A device is noted at most once per [`REFRESH`] (the time the request read from
//! its row, or the cache's copy of it, tells), so last_seen_at is at most
//! `REFRESH + FLUSH_EVERY` behind. A crash loses at most the last few seconds of
//! notes: a last-seen time, not a record.

use crate::storage::Storage;
use chrono::{DateTime, Duration, Utc};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// last_seen_at is not moved for less than this.
pub const REFRESH: Duration = Duration::seconds(30);
/// How often the notes are written.
const FLUSH_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

pub struct LastSeen {
    store: Arc<dyn Storage>,
    pending: Mutex<HashMap<String, DateTime<Utc>>>,
}

impl LastSeen {
    pub fn new(store: Arc<dyn Storage>) -> Arc<Self> {
        Arc::new(LastSeen {
            store,
            pending: Mutex::new(HashMap::new()),
        })
    }

    /// Whether a device last seen at `previous` is worth noting at `now`.
    pub fn due(previous: Option<DateTime<Utc>>, now: DateTime<Utc>) -> bool {
        previous.is_none_or(|seen| now - seen > REFRESH)
    }

    pub fn note(&self, device_id: &str, at: DateTime<Utc>) {
        let mut pending = self.pending.lock().unwrap();
        match pending.get_mut(device_id) {
            Some(t) => *t = (*t).max(at),
            None => {
                pending.insert(device_id.to_owned(), at);
            }
        }
    }

    /// Writes the notes taken so far. On failure they are kept for the next flush.
    pub async fn flush(&self) {
        let notes: Vec<(String, DateTime<Utc>)> =
            std::mem::take(&mut *self.pending.lock().unwrap())
                .into_iter()
                .collect();
        if notes.is_empty() {
            return;
        }
        if let Err(e) = self.store.touch_many(notes.clone()).await {
            tracing::warn!(error = %e, devices = notes.len(), "last_seen_at not written; kept for the next attempt");
            for (id, at) in notes {
                self.note(&id, at);
            }
        }
    }

    /// Flushes every few seconds, for the life of the process.
    pub fn spawn(self: &Arc<Self>) {
        let me = self.clone();
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(FLUSH_EVERY);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticker.tick().await;
                me.flush().await;
            }
        });
    }
}
