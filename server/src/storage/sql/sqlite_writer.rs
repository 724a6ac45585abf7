//! SQLite: the device path's own writing connection.
//!
//! SQLite has one writer at a time, whatever the number of connections. Through the
//! pool, the device path's writes (taking a command, storing a result) ran on up to
//! eight connections, and a profile of the command cycle (docs/benchmarks.md) showed
//! what that costs on top of SQLite's own work, all of it on the driver's threads:
//! - every connection's page cache is dropped whenever another connection has
//!   committed, so most statements re-read their pages from the file;
//! - writers that meet the lock sleep in SQLite's busy handler and retry;
//! - every statement commits alone (holding the lock across hand-offs to the
//!   driver's thread would make the others wait longer), so each writes its own WAL
//!   frames;
//! - the pool tests each connection coming back (sqlx's `ping`, always on): one more
//!   hand-off to the driver's thread per exchange.
//!
//! Here the device path's writes take turns on one connection instead, in this
//! process's queue rather than in SQLite's lock: its cache stays warm, nobody sleeps
//! in the busy handler on its account, the statements of one exchange are one
//! transaction in one hand-off (one commit), and no test follows. Other writers (the
//! API, maintenance) still use the pool and meet this one at SQLite's lock as before.
//!
//! The queue is drained by a thread of the writer's own. Turns taken by a mutex in
//! the requests' tasks left the connection idle from each answer until the busy HTTP
//! worker polled the next request: half the cycles per second (docs/benchmarks.md).
//!
//! A connection is reused only after an exchange that finished cleanly. One whose
//! exchange failed is closed, which rolls back whatever it left open; the next
//! exchange opens a fresh one. An exchange runs to its end once started, even if its
//! request went away meanwhile (as a statement already sent through the pool does).

use sea_orm::sqlx::sqlite::{SqliteConnectOptions, SqliteConnection, SqliteRow};
use sea_orm::sqlx::{ConnectOptions as _, Executor as _};
use sea_orm::{ConnAcquireErr, DbErr, QueryResult, RuntimeErr, Statement};
use sea_query_binder::SqlxValues;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// Exchanges waiting for their turn; more wait (in the sender) for room.
const QUEUE: usize = 1024;

pub(super) struct SqliteWriter {
    queue: mpsc::Sender<Exchange>,
    /// How long an exchange waits for its turn and its answer before it gives up
    /// (a 503); one given up on before its turn is not run.
    wait: Duration,
}

struct Exchange {
    sql: String,
    values: sea_orm::Values,
    answer: oneshot::Sender<Result<Vec<SqliteRow>, DbErr>>,
}

impl SqliteWriter {
    /// Starts the writer's thread, which opens its connection at the first exchange.
    pub(super) fn new(options: SqliteConnectOptions, wait: Duration) -> Self {
        let (queue, exchanges) = mpsc::channel(QUEUE);
        // Its own thread, not a task on the HTTP workers: the next exchange starts
        // as soon as the last one is answered, without waiting for a busy worker to
        // poll the request that sent it.
        std::thread::Builder::new()
            .name("mdm-sqlite-writer".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("a current-thread runtime for the SQLite writer");
                runtime.block_on(serve(options, exchanges));
            })
            .expect("start the SQLite writer's thread");
        SqliteWriter { queue, wait }
    }

    /// Runs the statements in order, in one hand-off to the connection's thread and,
    /// when there are several, in one transaction; returns the rows they return, in
    /// order. Numbered parameters continue from one statement to the next.
    pub(super) async fn exchange(
        &self,
        statements: Vec<Statement>,
    ) -> Result<Vec<QueryResult>, DbErr> {
        let (sql, values) = joined(statements);
        let (answer, answered) = oneshot::channel();
        let exchange = Exchange {
            sql,
            values,
            answer,
        };
        let gave_up = || DbErr::ConnectionAcquire(ConnAcquireErr::Timeout);
        let rows = tokio::time::timeout(self.wait, async {
            self.queue
                .send(exchange)
                .await
                .map_err(|_| DbErr::ConnectionAcquire(ConnAcquireErr::ConnectionClosed))?;
            answered
                .await
                .map_err(|_| DbErr::ConnectionAcquire(ConnAcquireErr::ConnectionClosed))?
        })
        .await
        .map_err(|_| gave_up())??;
        Ok(rows.into_iter().map(QueryResult::from).collect())
    }
}

/// The writer's loop: one exchange after another on one connection. A connection is
/// reused only after an exchange that finished cleanly; a failed one is closed, which
/// rolls back what it left open, and the next exchange opens a fresh one.
async fn serve(options: SqliteConnectOptions, mut exchanges: mpsc::Receiver<Exchange>) {
    let mut kept: Option<SqliteConnection> = None;
    while let Some(exchange) = exchanges.recv().await {
        if exchange.answer.is_closed() {
            // The request gave up (or went away) before its turn: nothing was done.
            continue;
        }
        let mut connection = match kept.take() {
            Some(connection) => connection,
            None => match options.connect().await {
                Ok(connection) => connection,
                Err(e) => {
                    let _ = exchange
                        .answer
                        .send(Err(DbErr::Conn(RuntimeErr::SqlxError(e))));
                    continue;
                }
            },
        };
        let rows = (&mut connection)
            .fetch_all(sea_orm::sqlx::query_with(
                &exchange.sql,
                SqlxValues(exchange.values),
            ))
            .await
            .map_err(|e| DbErr::Query(RuntimeErr::SqlxError(e)));
        if rows.is_ok() {
            kept = Some(connection);
        }
        let _ = exchange.answer.send(rows);
    }
}

/// One string of statements with their values; several are wrapped in a transaction
/// that takes the write lock at once (a deferred one that reads first could fail
/// with SQLITE_BUSY_SNAPSHOT instead of waiting).
fn joined(statements: Vec<Statement>) -> (String, sea_orm::Values) {
    let several = statements.len() > 1;
    let mut sql = String::new();
    let mut values = Vec::new();
    if several {
        sql.push_str("BEGIN IMMEDIATE;\n");
    }
    for (i, statement) in statements.into_iter().enumerate() {
        if i > 0 {
            sql.push_str(";\n");
        }
        sql.push_str(&statement.sql);
        values.extend(statement.values.map(|v| v.0).unwrap_or_default());
    }
    if several {
        sql.push_str(";\nCOMMIT");
    }
    (sql, sea_orm::Values(values))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn statement(sql: &str, value: i64) -> Statement {
        Statement::from_sql_and_values(sea_orm::DbBackend::Sqlite, sql, [value.into()])
    }

    #[test]
    fn one_statement_runs_alone() {
        let (sql, values) = joined(vec![statement("SELECT ?", 1)]);
        assert_eq!(sql, "SELECT ?");
        assert_eq!(values.0.len(), 1);
    }

    fn count(rows: &[QueryResult]) -> i64 {
        rows[0].try_get::<i64>("", "n").unwrap()
    }

    /// The statements of one exchange commit together or not at all, and a failed
    /// exchange's connection (its transaction left open) is not the next one's.
    #[tokio::test]
    async fn a_failed_exchange_leaves_nothing_and_the_next_one_runs() {
        let path = std::env::temp_dir().join(format!("mdm-writer-{}.db", uuid::Uuid::new_v4()));
        let options = SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true)
            .journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal);
        let writer = SqliteWriter::new(options, Duration::from_secs(5));
        let plain = |sql: &str| Statement::from_string(sea_orm::DbBackend::Sqlite, sql);
        let counted = || plain("SELECT COUNT(*) AS n FROM t");
        writer
            .exchange(vec![plain("CREATE TABLE t (v INTEGER NOT NULL)")])
            .await
            .unwrap();

        let failed = writer
            .exchange(vec![
                statement("INSERT INTO t (v) VALUES (?)", 1),
                plain("INSERT INTO t (v) VALUES (NULL)"),
            ])
            .await;
        assert!(
            failed.is_err(),
            "the NOT NULL column refuses the second row"
        );
        assert_eq!(count(&writer.exchange(vec![counted()]).await.unwrap()), 0);

        let rows = writer
            .exchange(vec![
                statement("INSERT INTO t (v) VALUES (?) RETURNING v", 2),
                statement("INSERT INTO t (v) VALUES (?) RETURNING v", 3),
            ])
            .await
            .unwrap();
        let returned: Vec<i64> = rows.iter().map(|r| r.try_get("", "v").unwrap()).collect();
        assert_eq!(
            returned,
            vec![2, 3],
            "the rows of both statements, in order"
        );
        assert_eq!(count(&writer.exchange(vec![counted()]).await.unwrap()), 2);
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
    }

    #[test]
    fn several_run_in_one_transaction_with_their_values_in_order() {
        let (sql, values) = joined(vec![statement("SELECT ?", 1), statement("SELECT ?", 2)]);
        assert_eq!(sql, "BEGIN IMMEDIATE;\nSELECT ?;\nSELECT ?;\nCOMMIT");
        assert_eq!(values.0, vec![1i64.into(), 2i64.into()]);
    }
}
