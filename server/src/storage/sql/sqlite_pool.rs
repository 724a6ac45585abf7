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
//!
//! Each connection is a thread of the driver's, and every exchange with it a hand-off
//! between threads: the statement itself, the driver's own test of a connection
//! coming back to the pool (always on), and the test of one leaving it (turned off
//! here: a local file does not hang up). The check above costs no exchange: the
//! driver's count of open transactions only ever goes down while a connection is
//! released (a dropped transaction's ROLLBACK may still be queued; nothing that opens
//! one can be), so a count of zero read at once is final, and a connection whose
//! count is not zero is closed, whether it is stuck or merely has its ROLLBACK queued
//! (a transaction dropped without commit: refusals and errors, rare).

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
) -> Result<(DatabaseConnection, SqliteConnectOptions), DbErr> {
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
        // The rows a RETURNING clause gives back wait in a temporary table: in memory,
        // its pager opens no temporary file (which starts by looking for a directory
        // to put it in: docs/benchmarks.md).
        .pragma("temp_store", "memory")
        .create_if_missing(true)
        .disable_statement_logging();
    let pool: SqlitePool = options
        .sqlx_pool_options::<sea_orm::sqlx::Sqlite>()
        .test_before_acquire(false)
        .after_release(|conn: &mut sea_orm::sqlx::SqliteConnection, _| {
            let idle = !conn.is_in_transaction();
            Box::pin(async move { Ok(idle) })
        })
        .connect_with(connect.clone())
        .await
        .map_err(conn_err)?;
    Ok((SqlxSqliteConnector::from_sqlx_sqlite_pool(pool), connect))
}
