//! The sea-orm implementation of the storage traits, for SQLite and PostgreSQL:
//! one file per trait.

mod admins;
mod android;
mod android_commands;
mod android_devices;
mod audit;
mod deliveries;
mod device_statements;
mod devices;
mod directory;
mod enrollment;
mod enrollment_uses;
mod events;
mod identity;
mod incidents;
mod notify;
pub(super) mod outage;
mod pg_pool;
mod policies;
mod push;
mod queue;
mod revocation;
mod sqlite_pool;
mod sqlite_values;
mod sqlite_writer;
#[cfg(test)]
mod test_store;
mod tokens;

use super::StoreError;
use crate::cache::{Change, DeviceCache};
use migrations::{Migrator, MigratorTrait};
use sea_orm::{
    ConnectOptions, ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend,
    TransactionTrait,
};
use std::sync::Arc;
use std::time::Duration;

/// Rows per INSERT statement: well under SQLite's and PostgreSQL's bound-parameter
/// limits for our widest table.
const INSERT_BATCH: usize = 500;
/// Ids per `IN (...)` list.
const LOOKUP_BATCH: usize = 1000;
/// An admin token's last_used_at is refreshed at most this often.
const TOUCH_INTERVAL_SECS: i64 = 30;
/// Devices per last_seen_at statement (three values each).
const TOUCH_BATCH: usize = 200;
/// How long a request waits for a database connection (PostgreSQL: the time to
/// (re)connect included) before it gives up with a 503: a database that is down
/// must not hold requests until the client's own timeout.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long an SQLite writer waits for the write lock. Longer than any write the
/// server makes itself (the largest, a 100,000-device fan-out, inserts in about 3 s),
/// so only a stuck or foreign lock holder turns into a 503.
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Clone)]
pub struct SqlStore {
    db: DatabaseConnection,
    /// This instance's device cache, told of each change this store commits.
    cache: Option<Arc<DeviceCache>>,
    /// On SQLite, the connection the device path writes through (sqlite_writer.rs).
    device_writer: Option<Arc<sqlite_writer::SqliteWriter>>,
}

impl SqlStore {
    /// Connects and applies pending migrations.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let mut options = ConnectOptions::new(url.to_owned());
        let sqlite = url.starts_with("sqlite:");
        options
            .max_connections(if sqlite { 8 } else { 32 })
            .min_connections(1)
            .connect_timeout(ACQUIRE_TIMEOUT)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .sqlx_logging(false);
        let (db, device_writer) = if sqlite {
            let (db, connect) = sqlite_pool::connect(url, options, SQLITE_BUSY_TIMEOUT).await?;
            // An in-memory database lives in its connections: a writer of its own
            // would have to share it through SQLite's shared cache, whose table locks
            // behave otherwise; in memory, the device path stays on the pool.
            let in_memory = url.contains(":memory:") || url.contains("mode=memory");
            let writer = (!in_memory).then(|| {
                let database = sqlite_writer::WriterDatabase {
                    file: connect.get_filename().to_owned(),
                    busy_timeout: SQLITE_BUSY_TIMEOUT,
                };
                Arc::new(sqlite_writer::SqliteWriter::new(
                    database,
                    SQLITE_BUSY_TIMEOUT,
                ))
            });
            (db, writer)
        } else {
            (pg_pool::connect(url, options).await?, None)
        };
        Migrator::up(&db, None).await?;
        Ok(SqlStore {
            db,
            cache: None,
            device_writer,
        })
    }

    /// The store whose commits keep `cache` current on this instance (see
    /// [`SqlStore::keep_current`] for the others').
    pub fn with_device_cache(mut self, cache: Arc<DeviceCache>) -> Self {
        self.cache = Some(cache);
        self
    }

    /// After a commit: this instance's cache forgets what `change` makes stale (the
    /// other instances hear it from the NOTIFY sent in the transaction).
    pub(super) fn changed(&self, change: &Change) {
        if let Some(cache) = &self.cache {
            cache.apply(change);
        }
    }

    /// Begins a transaction that is going to write. On SQLite it takes the write lock
    /// at once: a deferred transaction that reads first and writes later fails with
    /// SQLITE_BUSY_SNAPSHOT, without waiting, whenever another connection committed
    /// in between (concurrent enrollments do); one that holds the lock from the
    /// start waits its turn under the busy timeout instead. PostgreSQL needs nothing.
    pub(super) async fn begin_write(&self) -> Result<DatabaseTransaction, sea_orm::DbErr> {
        let txn = self.db.begin().await?;
        if self.backend() == DbBackend::Sqlite {
            // Any write statement takes the lock, even one that changes no row.
            txn.execute_unprepared("UPDATE seaql_migrations SET version = version WHERE 0")
                .await?;
        }
        Ok(txn)
    }

    pub fn backend(&self) -> DbBackend {
        self.db.get_database_backend()
    }

    pub fn connection(&self) -> &DatabaseConnection {
        &self.db
    }
}
