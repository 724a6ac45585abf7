//! The sea-orm implementation of the storage traits, for SQLite and PostgreSQL:
//! one file per trait.

mod devices;
mod enrollment;
mod events;
mod push;
mod queue;
mod tokens;

use super::StoreError;
use migrations::{Migrator, MigratorTrait};
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend};
use std::time::Duration;

/// Rows per INSERT statement: well under SQLite's and PostgreSQL's bound-parameter
/// limits for our widest table.
const INSERT_BATCH: usize = 500;
/// Ids per `IN (...)` list.
const LOOKUP_BATCH: usize = 1000;
/// last_seen_at is refreshed at most this often, so an Idle poll does not always write.
const TOUCH_INTERVAL_SECS: i64 = 30;

#[derive(Clone)]
pub struct SqlStore {
    db: DatabaseConnection,
}

impl SqlStore {
    /// Connects and applies pending migrations.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let mut options = ConnectOptions::new(url.to_owned());
        let sqlite = url.starts_with("sqlite:");
        options
            .max_connections(if sqlite { 8 } else { 32 })
            .min_connections(1)
            .connect_timeout(Duration::from_secs(10))
            .sqlx_logging(false);
        if sqlite {
            // WAL lets readers run beside the single writer; the busy timeout makes
            // writers wait their turn instead of failing under load.
            options.map_sqlx_sqlite_opts(|o| {
                o.journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
                    .synchronous(sea_orm::sqlx::sqlite::SqliteSynchronous::Normal)
                    .busy_timeout(Duration::from_secs(30))
                    .foreign_keys(true)
                    .create_if_missing(true)
            });
        }
        let db = Database::connect(options).await?;
        Migrator::up(&db, None).await?;
        Ok(SqlStore { db })
    }

    pub fn backend(&self) -> DbBackend {
        self.db.get_database_backend()
    }

    pub fn connection(&self) -> &DatabaseConnection {
        &self.db
    }
}
