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
//! An exchange may carry a continuation ([`Then`]): what to write next, made from the
//! rows its statements returned. It runs on the writer's thread, inside the same
//! transaction, so a device's report (the result, the next command, then the result's
//! event and the device's facts) is one transaction and one turn, as on PostgreSQL,
//! without a hand-off back to the request between its two halves.
//!
//! A connection is reused only after an exchange that finished cleanly. One whose
//! exchange failed is closed, which rolls back whatever it left open; the next
//! exchange opens a fresh one. A request waits for its turn at most the busy timeout
//! (then a 503, and its exchange is skipped); once started, it waits for the answer,
//! so a 503 never hides a commit. An exchange runs to its end once started, even if
//! its request went away meanwhile (as a statement already sent through the pool does).

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
    /// How long an exchange waits for its turn before it gives up (a 503) and is
    /// not run. Once started it is waited for to its end, which SQLite's busy
    /// timeout bounds: a request never answers 503 for an exchange that committed.
    wait: Duration,
}

/// Makes an exchange's second half from the rows of its first, on the writer's thread
/// and inside its transaction; an error rolls back both halves.
pub(super) type Then = Box<dyn FnOnce(&[QueryResult]) -> Result<Vec<Statement>, DbErr> + Send>;

struct Exchange {
    statements: Vec<Statement>,
    then: Option<Then>,
    /// Told when the exchange starts; closed by a request that gave up first.
    started: oneshot::Sender<()>,
    answer: oneshot::Sender<Result<Vec<QueryResult>, DbErr>>,
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
    /// when there are several or a continuation, in one transaction; returns the rows
    /// they return, in order, then those of the continuation's statements.
    /// Numbered parameters continue from one statement to the next.
    pub(super) async fn exchange(
        &self,
        statements: Vec<Statement>,
        then: Option<Then>,
    ) -> Result<Vec<QueryResult>, DbErr> {
        let (started, mut turn) = oneshot::channel();
        let (answer, answered) = oneshot::channel();
        let exchange = Exchange {
            statements,
            then,
            started,
            answer,
        };
        let gone = || DbErr::ConnectionAcquire(ConnAcquireErr::ConnectionClosed);
        let waited = tokio::time::timeout(self.wait, async {
            self.queue.send(exchange).await.map_err(|_| gone())?;
            (&mut turn).await.map_err(|_| gone())
        })
        .await;
        match waited {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(e),
            Err(_) => {
                // Closing first decides the race with the writer: either it started
                // before (the exchange runs, and is waited for) or it will skip it.
                turn.close();
                if turn.try_recv().is_err() {
                    return Err(DbErr::ConnectionAcquire(ConnAcquireErr::Timeout));
                }
            }
        }
        answered.await.map_err(|_| gone())?
    }
}

/// The writer's loop: one exchange after another on one connection. A connection is
/// reused only after an exchange that finished cleanly; a failed one is closed, which
/// rolls back what it left open, and the next exchange opens a fresh one.
async fn serve(options: SqliteConnectOptions, mut exchanges: mpsc::Receiver<Exchange>) {
    let mut kept: Option<SqliteConnection> = None;
    while let Some(exchange) = exchanges.recv().await {
        if exchange.started.send(()).is_err() {
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
        let rows = run(&mut connection, exchange.statements, exchange.then).await;
        if rows.is_ok() {
            kept = Some(connection);
        }
        let _ = exchange.answer.send(rows);
    }
}

/// One exchange on the connection: its statements, then its continuation's, in one
/// transaction when there are several or a continuation. On an error the transaction
/// is left open, and the caller closes the connection, which rolls it back.
async fn run(
    connection: &mut SqliteConnection,
    statements: Vec<Statement>,
    then: Option<Then>,
) -> Result<Vec<QueryResult>, DbErr> {
    let Some(then) = then else {
        let (sql, values) = joined(statements, Wrap::Whole);
        return fetch(connection, &sql, values).await;
    };
    let (sql, values) = joined(statements, Wrap::Begin);
    let mut rows = fetch(connection, &sql, values).await?;
    // The continuation is the server's code, but it reads what a device sent: a
    // panic in it must not end the writer's thread (every later exchange would fail).
    let next = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| then(&rows)))
        .map_err(|_| DbErr::Custom("the continuation of a device exchange panicked".into()))??;
    let (sql, values) = joined(next, Wrap::Commit);
    rows.extend(fetch(connection, &sql, values).await?);
    Ok(rows)
}

async fn fetch(
    connection: &mut SqliteConnection,
    sql: &str,
    values: sea_orm::Values,
) -> Result<Vec<QueryResult>, DbErr> {
    let rows: Vec<SqliteRow> = connection
        .fetch_all(sea_orm::sqlx::query_with(sql, SqlxValues(values)))
        .await
        .map_err(|e| DbErr::Query(RuntimeErr::SqlxError(e)))?;
    Ok(rows.into_iter().map(QueryResult::from).collect())
}

/// Where a string of statements stands in its transaction.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Wrap {
    /// All of it: a transaction of its own when there are several statements.
    Whole,
    /// The first half of a transaction: it begins it.
    Begin,
    /// The second half: it commits it (even when it has no statements).
    Commit,
}

/// One string of statements with their values, placed in their transaction (`wrap`).
/// A transaction takes the write lock at once (a deferred one that reads first could
/// fail with SQLITE_BUSY_SNAPSHOT instead of waiting).
fn joined(statements: Vec<Statement>, wrap: Wrap) -> (String, sea_orm::Values) {
    let several = statements.len() > 1;
    let mut parts = Vec::with_capacity(statements.len() + 2);
    if wrap == Wrap::Begin || (wrap == Wrap::Whole && several) {
        parts.push("BEGIN IMMEDIATE".to_owned());
    }
    let mut values = Vec::new();
    for statement in statements {
        parts.push(statement.sql);
        values.extend(statement.values.map(|v| v.0).unwrap_or_default());
    }
    if wrap == Wrap::Commit || (wrap == Wrap::Whole && several) {
        parts.push("COMMIT".to_owned());
    }
    (parts.join(";\n"), sea_orm::Values(values))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn statement(sql: &str, value: i64) -> Statement {
        Statement::from_sql_and_values(sea_orm::DbBackend::Sqlite, sql, [value.into()])
    }

    #[test]
    fn one_statement_runs_alone() {
        let (sql, values) = joined(vec![statement("SELECT ?", 1)], Wrap::Whole);
        assert_eq!(sql, "SELECT ?");
        assert_eq!(values.0.len(), 1);
    }

    fn plain(sql: &str) -> Statement {
        Statement::from_string(sea_orm::DbBackend::Sqlite, sql)
    }

    /// A test's own database file, removed with its WAL files when dropped.
    struct Scratch(std::path::PathBuf);

    impl Scratch {
        fn new() -> Self {
            let name = format!("mdm-writer-{}.db", uuid::Uuid::new_v4());
            Scratch(std::env::temp_dir().join(name))
        }

        fn options(&self) -> SqliteConnectOptions {
            SqliteConnectOptions::new()
                .filename(&self.0)
                .create_if_missing(true)
                .journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", self.0.display()));
            }
        }
    }

    /// A writer whose database has the tests' table `t`.
    async fn writer_with_table(options: SqliteConnectOptions, wait: Duration) -> SqliteWriter {
        let writer = SqliteWriter::new(options, wait);
        writer
            .exchange(vec![plain("CREATE TABLE t (v INTEGER NOT NULL)")], None)
            .await
            .unwrap();
        writer
    }

    async fn values_in(writer: &SqliteWriter) -> String {
        let sql = "SELECT coalesce(group_concat(v), '') AS vs FROM t";
        let rows = writer.exchange(vec![plain(sql)], None).await.unwrap();
        rows[0].try_get::<String>("", "vs").unwrap()
    }

    fn count(rows: &[QueryResult]) -> i64 {
        rows[0].try_get::<i64>("", "n").unwrap()
    }

    /// The statements of one exchange commit together or not at all, and a failed
    /// exchange's connection (its transaction left open) is not the next one's.
    #[tokio::test]
    async fn a_failed_exchange_leaves_nothing_and_the_next_one_runs() {
        let scratch = Scratch::new();
        let writer = writer_with_table(scratch.options(), Duration::from_secs(5)).await;
        let counted = || plain("SELECT COUNT(*) AS n FROM t");

        let failed = writer
            .exchange(
                vec![
                    statement("INSERT INTO t (v) VALUES (?)", 1),
                    plain("INSERT INTO t (v) VALUES (NULL)"),
                ],
                None,
            )
            .await;
        assert!(
            failed.is_err(),
            "the NOT NULL column refuses the second row"
        );
        assert_eq!(
            count(&writer.exchange(vec![counted()], None).await.unwrap()),
            0
        );

        let rows = writer
            .exchange(
                vec![
                    statement("INSERT INTO t (v) VALUES (?) RETURNING v", 2),
                    statement("INSERT INTO t (v) VALUES (?) RETURNING v", 3),
                ],
                None,
            )
            .await
            .unwrap();
        let returned: Vec<i64> = rows.iter().map(|r| r.try_get("", "v").unwrap()).collect();
        assert_eq!(
            returned,
            vec![2, 3],
            "the rows of both statements, in order"
        );
        assert_eq!(
            count(&writer.exchange(vec![counted()], None).await.unwrap()),
            2
        );
    }

    /// A continuation sees its first half's rows and writes in the same transaction: its
    /// error or its panic rolls back both halves, and the writer goes on.
    #[tokio::test]
    async fn a_continuation_shares_its_exchange_transaction() {
        let scratch = Scratch::new();
        let writer = writer_with_table(scratch.options(), Duration::from_secs(5)).await;

        // The second half is made from the first half's rows: twice what it returned.
        let doubled: Then = Box::new(|rows| {
            let v: i64 = rows[0].try_get("", "v")?;
            Ok(vec![statement(
                "INSERT INTO t (v) VALUES (?) RETURNING v",
                2 * v,
            )])
        });
        let rows = writer
            .exchange(
                vec![statement("INSERT INTO t (v) VALUES (?) RETURNING v", 21)],
                Some(doubled),
            )
            .await
            .unwrap();
        let returned: Vec<i64> = rows.iter().map(|r| r.try_get("", "v").unwrap()).collect();
        assert_eq!(returned, vec![21, 42], "both halves' rows, in order");
        assert_eq!(values_in(&writer).await, "21,42");

        let second_halves: [(&str, Then); 3] = [
            ("an error", Box::new(|_| Err(DbErr::Custom("no".into())))),
            (
                "a constraint (NOT NULL)",
                Box::new(move |_| Ok(vec![plain("INSERT INTO t (v) VALUES (NULL)")])),
            ),
            (
                "a panic",
                Box::new(|_| panic!("a continuation that panics")),
            ),
        ];
        for (v, (what, then)) in (1..).zip(second_halves) {
            let failed = writer
                .exchange(
                    vec![statement("INSERT INTO t (v) VALUES (?)", v)],
                    Some(then),
                )
                .await;
            assert!(
                failed.is_err(),
                "{what} in the second half fails the exchange"
            );
        }
        assert_eq!(
            values_in(&writer).await,
            "21,42",
            "no first half outlived its failed second half, and the writer still answers"
        );
    }

    /// A request that waited its turn too long is refused and its exchange never runs;
    /// one that started waits for its answer, however long SQLite's lock takes.
    #[tokio::test]
    async fn a_request_gives_up_only_before_its_turn() {
        use sea_orm::sqlx::Connection as _;
        let scratch = Scratch::new();
        let options = scratch.options().busy_timeout(Duration::from_secs(5));
        let writer = std::sync::Arc::new(
            writer_with_table(options.clone(), Duration::from_millis(300)).await,
        );

        // Another writer holds the lock for longer than the wait for a turn.
        let mut holder = SqliteConnection::connect_with(&options).await.unwrap();
        (&mut holder).execute("BEGIN IMMEDIATE").await.unwrap();
        let first = tokio::spawn({
            let writer = writer.clone();
            async move {
                writer
                    .exchange(vec![statement("INSERT INTO t (v) VALUES (?)", 1)], None)
                    .await
            }
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        let second = writer
            .exchange(vec![statement("INSERT INTO t (v) VALUES (?)", 2)], None)
            .await;
        assert!(
            matches!(
                second,
                Err(DbErr::ConnectionAcquire(ConnAcquireErr::Timeout))
            ),
            "the second never got its turn: {second:?}"
        );
        tokio::time::sleep(Duration::from_millis(700)).await;
        (&mut holder).execute("ROLLBACK").await.unwrap();
        first
            .await
            .unwrap()
            .expect("the first started before the wait ran out: it is waited for");

        assert_eq!(
            values_in(&writer).await,
            "1",
            "the first committed, the second never ran"
        );
    }

    #[test]
    fn several_run_in_one_transaction_with_their_values_in_order() {
        let (sql, values) = joined(
            vec![statement("SELECT ?", 1), statement("SELECT ?", 2)],
            Wrap::Whole,
        );
        assert_eq!(sql, "BEGIN IMMEDIATE;\nSELECT ?;\nSELECT ?;\nCOMMIT");
        assert_eq!(values.0, vec![1i64.into(), 2i64.into()]);
    }
}
