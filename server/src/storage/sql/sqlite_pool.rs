//! The SQLite connection pool: WAL, a bounded busy timeout, and no connection going
//! back into the pool while it is (or the driver believes it is) inside a
//! transaction.
//!
//! Why the last: on SQLITE_FULL or an I/O error SQLite rolls the whole transaction
//! back by itself. The driver then fails its own ROLLBACK ("no transaction is
//! active") and keeps counting the transaction as open; the next transaction on that
//! connection becomes a SAVEPOINT, and a second failure ends in a ROLLBACK TO that
//! leaves a real transaction open, holding the write lock, in a pooled connection:
//! every writer then waits for the busy timeout. A connection in that state is closed
//! on release instead; the pool opens a fresh one.

use sea_orm::sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqliteSynchronous,
};
use sea_orm::sqlx::{ConnectOptions as _, Connection as _};
use sea_orm::{ConnectOptions, DatabaseConnection, DbErr, RuntimeErr, SqlxSqliteConnector};
use std::str::FromStr;
use std::time::Duration;

pub(super) async fn connect(
    url: &str,
    options: ConnectOptions,
    busy_timeout: Duration,
) -> Result<DatabaseConnection, DbErr> {
    let conn_err = |e| DbErr::Conn(RuntimeErr::SqlxError(e));
    // WAL lets readers run beside the single writer; the busy timeout makes writers
    // wait their turn instead of failing under load, and bounds the wait (then
    // SQLITE_BUSY, a 503) when something else holds the lock.
    let connect = SqliteConnectOptions::from_str(url)
        .map_err(conn_err)?
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(busy_timeout)
        .foreign_keys(true)
        .create_if_missing(true)
        .disable_statement_logging();
    let pool: SqlitePool = options
        .sqlx_pool_options::<sea_orm::sqlx::Sqlite>()
        .after_release(|conn: &mut sea_orm::sqlx::SqliteConnection, _| {
            Box::pin(async move {
                // The ping goes through the connection's queue behind a pending
                // rollback, so the transaction state read next is final.
                conn.ping().await?;
                Ok(!conn.is_in_transaction())
            })
        })
        .connect_with(connect)
        .await
        .map_err(conn_err)?;
    Ok(SqlxSqliteConnector::from_sqlx_sqlite_pool(pool))
}
