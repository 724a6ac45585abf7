//! Keeping every instance's device cache (server/src/cache) in step with writes made
//! anywhere, by PostgreSQL LISTEN/NOTIFY.
//!
//! A write that a cached answer must not outlive sends its [`Change`] with
//! `pg_notify` inside its own transaction: PostgreSQL delivers it to every listening
//! instance when, and only if, the transaction commits, after the write is visible.
//! Each instance listens on one dedicated connection. Its cache is live only while
//! that connection is known to work: on start, after a lost connection (then
//! emptied, since what was sent meanwhile is lost) and when a heartbeat (a NOTIFY
//! this instance sends itself every few seconds) does not come back in time, which
//! also catches a connection a firewall dropped without a word. SQLite has one
//! instance: there the store applies its changes in-process only.

use super::SqlStore;
use crate::cache::{Change, DeviceCache};
use sea_orm::sqlx::postgres::PgListener;
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, DbErr, Statement};
use std::sync::Arc;
use std::time::Duration;

const CHANNEL: &str = "mdm_device_cache";
/// A change naming more devices than this is sent as "all queues".
const MAX_LISTED: usize = 1000;
/// Device ids per message: 36-character ids and commas, well under PostgreSQL's
/// 8000-byte payload limit.
const IDS_PER_MESSAGE: usize = 150;
/// How often the listener proves itself; a heartbeat not back by the next one turns
/// the cache off until the connection is made again.
const HEARTBEAT: Duration = Duration::from_secs(5);
/// Wait between attempts to listen again.
const RETRY: Duration = Duration::from_secs(1);

/// Sends `change` to every instance as part of `db`'s transaction (PostgreSQL only).
pub(super) async fn announce<C: ConnectionTrait>(db: &C, change: &Change) -> Result<(), DbErr> {
    if db.get_database_backend() != DbBackend::Postgres {
        return Ok(());
    }
    let messages = match change {
        Change::Queues(ids) if ids.len() > MAX_LISTED => vec![Change::AllQueues.to_payload()],
        Change::Queues(ids) => ids
            .chunks(IDS_PER_MESSAGE)
            .map(|chunk| Change::Queues(chunk.to_vec()).to_payload())
            .collect(),
        other => vec![other.to_payload()],
    };
    for payload in messages {
        db.execute(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT pg_notify($1, $2)",
            [CHANNEL.into(), payload.into()],
        ))
        .await?;
    }
    Ok(())
}

impl SqlStore {
    /// Keeps `cache` current with the writes of every instance: on PostgreSQL, a
    /// listener (the cache is bypassed until it listens); on SQLite the cache is live
    /// at once, the store's own changes being the only ones.
    pub fn keep_current(&self, cache: Arc<DeviceCache>, url: &str) {
        if self.backend() != DbBackend::Postgres {
            cache.set_live(true);
            return;
        }
        cache.share_database();
        let (url, db) = (url.to_owned(), self.db.clone());
        tokio::spawn(async move {
            let me = uuid::Uuid::new_v4().simple().to_string();
            let mut first = true;
            loop {
                cache.set_live(false);
                let (reason, was_live) = listen(&url, &db, &cache, &me).await;
                cache.set_live(false);
                // Once per outage, not per attempt.
                if was_live || first {
                    tracing::warn!(%reason, "device cache bypassed: not listening to the other instances' changes");
                }
                first = false;
                tokio::time::sleep(RETRY).await;
            }
        });
    }
}

/// Listens until the connection is lost or goes silent; returns why, and whether
/// it listened at all.
async fn listen(
    url: &str,
    db: &DatabaseConnection,
    cache: &DeviceCache,
    me: &str,
) -> (String, bool) {
    let mut listener = match PgListener::connect(url).await {
        Ok(l) => l,
        Err(e) => return (format!("cannot connect: {e}"), false),
    };
    // A lost connection ends the listener at once: the cache must go off before any
    // attempt to connect again, which may take long.
    listener.eager_reconnect(false);
    if let Err(e) = listener.listen(CHANNEL).await {
        return (format!("LISTEN failed: {e}"), false);
    }
    // Notifications are read on their own task so that waiting for one is never
    // cancelled half-way; dropping `receiver` ends it.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let receiver = AbortOnDrop(tokio::spawn(async move {
        while let Ok(Some(notification)) = listener.try_recv().await {
            if tx.send(notification.payload().to_owned()).is_err() {
                break;
            }
        }
    }));
    cache.set_live(true);
    tracing::info!("device cache live: listening to the other instances' changes");
    let heartbeat = format!("ping:{me}:");
    let (mut sent, mut echoed) = (0u64, 0u64);
    let mut ticker = tokio::time::interval(HEARTBEAT);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker.tick().await;
    let reason = loop {
        tokio::select! {
            message = rx.recv() => {
                let Some(payload) = message else {
                    break "the listening connection was lost".to_owned();
                };
                if let Some(n) = payload.strip_prefix(heartbeat.as_str()) {
                    echoed = echoed.max(n.parse().unwrap_or(0));
                } else if payload.starts_with("ping:") {
                    // Another instance's heartbeat.
                } else {
                    match Change::from_payload(&payload) {
                        Some(change) => cache.apply(&change),
                        // From a newer version: forgetting everything is always safe.
                        None => cache.set_live(true),
                    }
                }
            }
            _ = ticker.tick() => {
                if echoed < sent {
                    break format!("no heartbeat back within {HEARTBEAT:?}");
                }
                sent += 1;
                // Sent on its own task: a slow pool must not hold up the changes.
                let (db, payload) = (db.clone(), format!("{heartbeat}{sent}"));
                tokio::spawn(async move {
                    let _ = db
                        .execute(Statement::from_sql_and_values(
                            DbBackend::Postgres,
                            "SELECT pg_notify($1, $2)",
                            [CHANNEL.into(), payload.into()],
                        ))
                        .await;
                });
            }
        }
    };
    drop(receiver);
    (reason, true)
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
