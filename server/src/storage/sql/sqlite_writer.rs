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
//! transaction (one commit), and no test follows. Other writers (the
//! API, maintenance) still use the pool and meet this one at SQLite's lock as before.
//!
//! The queue is drained by a thread of the writer's own, which drives SQLite itself
//! (through rusqlite, on the same SQLite library as sqlx). Turns taken by a mutex in
//! the requests' tasks left the connection idle from each answer until the busy HTTP
//! worker polled the next request: half the cycles per second (docs/benchmarks.md).
//! And an sqlx connection is a thread of the driver's, so each statement was one more
//! hand-off there and back: its switches were about a seventh of the server's CPU.
//! Values are bound and read exactly as sqlx does (sqlite_values.rs), since the pool
//! reads and writes the same rows.
//!
//! An exchange may carry a continuation ([`Then`]): what to write next, made from the
//! rows its statements returned. It runs on the writer's thread, inside the same
//! transaction, so a device's report (the result, the next command, then the result's
//! event and the device's facts) is one transaction and one turn, as on PostgreSQL,
//! without a hand-off back to the request between its two halves.
//!
//! A connection is reused only after an exchange that finished cleanly. One whose
//! exchange failed is closed before the answer goes back, which rolls back whatever
//! it left open; the next exchange opens a fresh one. A request waits for its turn at
//! most the busy timeout (then a 503, and its exchange is skipped); once started, it
//! waits for the answer, so a 503 never hides a commit. An exchange runs to its end
//! once started, even if its request went away meanwhile (as a statement already sent
//! through the pool does).

use super::outage;
use super::sqlite_values::to_sql;
pub(super) use super::sqlite_values::Row;
use crate::storage::StoreError;
use rusqlite::{Connection, OpenFlags};
use sea_orm::{ConnAcquireErr, DbErr, RuntimeErr, Statement};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// Exchanges waiting for their turn; more wait (in the sender) for room.
const QUEUE: usize = 1024;
/// Distinct statements kept prepared: the device path has about a dozen.
const PREPARED: usize = 64;

pub(super) struct SqliteWriter {
    queue: mpsc::Sender<Exchange>,
    /// How long an exchange waits for its turn before it gives up (a 503) and is
    /// not run. Once started it is waited for to its end, which SQLite's busy
    /// timeout bounds: a request never answers 503 for an exchange that committed.
    wait: Duration,
}

/// Makes an exchange's second half from the rows of its first, on the writer's thread
/// and inside its transaction; an error rolls back both halves.
pub(super) type Then = Box<dyn FnOnce(&[Row]) -> Result<Vec<Statement>, DbErr> + Send>;

type Answer = Result<Vec<Row>, StoreError>;

struct Exchange {
    statements: Vec<Statement>,
    then: Option<Then>,
    /// Told when the exchange starts; closed by a request that gave up first.
    started: oneshot::Sender<()>,
    answer: oneshot::Sender<Answer>,
}

/// Where the writer's connection goes and how it behaves: the pool's database file,
/// with the pool's settings (sqlite_pool.rs).
#[derive(Clone, Debug)]
pub(super) struct WriterDatabase {
    pub(super) file: PathBuf,
    /// How long a statement waits for SQLite's write lock held by another connection.
    pub(super) busy_timeout: Duration,
}

impl SqliteWriter {
    /// Starts the writer's thread, which opens its connection at the first exchange.
    pub(super) fn new(database: WriterDatabase, wait: Duration) -> Self {
        let (queue, exchanges) = mpsc::channel(QUEUE);
        // Its own thread, not a task on the HTTP workers: the next exchange starts
        // as soon as the last one is answered, without waiting for a busy worker to
        // poll the request that sent it.
        std::thread::Builder::new()
            .name("mdm-sqlite-writer".into())
            .spawn(move || serve(database, exchanges))
            .expect("start the SQLite writer's thread");
        SqliteWriter { queue, wait }
    }

    /// Runs the statements in order and, when there are several or a continuation, in
    /// one transaction; returns the rows they return, in order, then those of the
    /// continuation's statements.
    pub(super) async fn exchange(
        &self,
        statements: Vec<Statement>,
        then: Option<Then>,
    ) -> Result<Vec<Row>, StoreError> {
        let (started, mut turn) = oneshot::channel();
        let (answer, answered) = oneshot::channel();
        let exchange = Exchange {
            statements,
            then,
            started,
            answer,
        };
        let unavailable = |e: ConnAcquireErr| StoreError::from(DbErr::ConnectionAcquire(e));
        let gone = || unavailable(ConnAcquireErr::ConnectionClosed);
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
                    return Err(unavailable(ConnAcquireErr::Timeout));
                }
            }
        }
        answered.await.map_err(|_| gone())?
    }
}

/// The writer's loop: one exchange after another on one connection. A connection is
/// reused only after an exchange that finished cleanly; a failed one is closed, which
/// rolls back what it left open, and the next exchange opens a fresh one.
fn serve(database: WriterDatabase, mut exchanges: mpsc::Receiver<Exchange>) {
    let mut kept: Option<Connection> = None;
    while let Some(exchange) = exchanges.blocking_recv() {
        if exchange.started.send(()).is_err() {
            // The request gave up (or went away) before its turn: nothing was done.
            continue;
        }
        let mut connection = match kept.take() {
            Some(connection) => connection,
            None => match open(&database) {
                Ok(connection) => connection,
                Err(e) => {
                    let _ = exchange.answer.send(Err(e));
                    continue;
                }
            },
        };
        // An exchange that leaves a transaction open failed: closing the connection
        // rolls back what it wrote, so it must not be answered as written.
        let rows = run(&mut connection, exchange.statements, exchange.then).and_then(|rows| {
            if connection.is_autocommit() {
                Ok(rows)
            } else {
                Err(DbErr::Custom("the exchange left a transaction open".into()).into())
            }
        });
        if rows.is_ok() {
            kept = Some(connection);
        } else if let Err((_, e)) = connection.close() {
            // Still open (SQLite refused to close it): dropping it closes it when
            // SQLite can, and this thread never uses it again.
            tracing::warn!(error = %e, "closing the device path's SQLite connection");
        }
        let _ = exchange.answer.send(rows);
    }
}

/// Opens the writer's connection with the pool's settings (WAL, synchronous NORMAL,
/// foreign keys, the busy timeout), as sqlx opens each of the pool's.
fn open(database: &WriterDatabase) -> Result<Connection, StoreError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX
        | OpenFlags::SQLITE_OPEN_PRIVATE_CACHE;
    let connection = Connection::open_with_flags(&database.file, flags).map_err(failed)?;
    connection
        .busy_timeout(database.busy_timeout)
        .map_err(failed)?;
    // Setting the journal mode answers with the mode now in force.
    let mode: String = connection
        .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
        .map_err(failed)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(DbErr::Custom(format!("the database stays in journal mode {mode}")).into());
    }
    connection
        .execute_batch("PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;")
        .map_err(failed)?;
    connection.set_prepared_statement_cache_capacity(PREPARED);
    Ok(connection)
}

/// One exchange on the connection: its statements, then its continuation's, in one
/// transaction when there are several or a continuation. On an error the transaction
/// is left open, and the caller closes the connection, which rolls it back.
fn run(connection: &mut Connection, statements: Vec<Statement>, then: Option<Then>) -> Answer {
    // A transaction takes the write lock at once (a deferred one that reads first
    // could fail with SQLITE_BUSY_SNAPSHOT instead of waiting).
    let transaction = then.is_some() || statements.len() > 1;
    if transaction {
        connection
            .execute_batch("BEGIN IMMEDIATE")
            .map_err(failed)?;
    }
    let mut rows = Vec::new();
    for statement in statements {
        query(connection, statement, &mut rows)?;
    }
    if let Some(then) = then {
        // The continuation is the server's code, but it reads what a device sent: a
        // panic in it must not end the writer's thread (every later exchange would fail).
        let next = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| then(&rows)))
            .map_err(|_| {
                DbErr::Custom("the continuation of a device exchange panicked".into())
            })??;
        for statement in next {
            query(connection, statement, &mut rows)?;
        }
    }
    if transaction {
        connection.execute_batch("COMMIT").map_err(failed)?;
    }
    Ok(rows)
}

/// Runs one statement (prepared once per connection) and appends the rows it returns.
fn query(
    connection: &Connection,
    statement: Statement,
    rows: &mut Vec<Row>,
) -> Result<(), StoreError> {
    let mut prepared = connection.prepare_cached(&statement.sql).map_err(failed)?;
    let values = statement.values.map(|v| v.0).unwrap_or_default();
    if values.len() != prepared.parameter_count() {
        return Err(DbErr::Custom(format!(
            "{} values for {} parameters",
            values.len(),
            prepared.parameter_count()
        ))
        .into());
    }
    for (at, value) in (1..).zip(values) {
        prepared
            .raw_bind_parameter(at, to_sql(value)?)
            .map_err(failed)?;
    }
    let names: Arc<[String]> = prepared
        .column_names()
        .into_iter()
        .map(str::to_owned)
        .collect();
    let mut returned = prepared.raw_query();
    while let Some(row) = returned.next().map_err(failed)? {
        let values = (0..names.len())
            .map(|at| row.get_ref(at).map(Into::into))
            .collect::<Result<_, _>>()
            .map_err(failed)?;
        rows.push(Row {
            names: names.clone(),
            values,
        });
    }
    Ok(())
}

/// An SQLite error, told apart as the pool's are (outage.rs): busy, full and I/O
/// errors are outages (503), the rest failures of the statement.
fn failed(e: rusqlite::Error) -> StoreError {
    let outage = e
        .sqlite_error()
        .and_then(|code| outage::sqlite_outage(code.extended_code));
    let e = DbErr::Query(RuntimeErr::Internal(e.to_string()));
    match outage {
        Some(outage) => StoreError::Unavailable(outage, e),
        None => StoreError::Db(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn statement(sql: &str, value: i64) -> Statement {
        Statement::from_sql_and_values(sea_orm::DbBackend::Sqlite, sql, [value.into()])
    }

    fn insert(v: i64) -> Statement {
        statement("INSERT INTO t (v) VALUES (?)", v)
    }

    fn plain(sql: &str) -> Statement {
        Statement::from_string(sea_orm::DbBackend::Sqlite, sql)
    }

    /// A test's own database file, removed with its WAL files when dropped.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new() -> Self {
            let name = format!("mdm-writer-{}.db", uuid::Uuid::new_v4());
            Scratch(std::env::temp_dir().join(name))
        }

        /// Another connection that holds SQLite's write lock until it rolls back.
        fn lock_holder(&self) -> Connection {
            let holder = Connection::open(&self.0).unwrap();
            holder.execute_batch("BEGIN IMMEDIATE").unwrap();
            holder
        }

        fn database(&self) -> WriterDatabase {
            WriterDatabase {
                file: self.0.clone(),
                busy_timeout: Duration::from_secs(5),
            }
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
    async fn writer_with_table(database: WriterDatabase, wait: Duration) -> SqliteWriter {
        let writer = SqliteWriter::new(database, wait);
        writer
            .exchange(vec![plain("CREATE TABLE t (v INTEGER NOT NULL)")], None)
            .await
            .unwrap();
        writer
    }

    async fn values_in(writer: &SqliteWriter) -> String {
        let sql = "SELECT coalesce(group_concat(v), '') AS vs FROM t";
        let rows = writer.exchange(vec![plain(sql)], None).await.unwrap();
        rows[0].get::<String>("vs").unwrap()
    }

    fn returned(rows: &[Row]) -> Vec<i64> {
        rows.iter().map(|r| r.get("v").unwrap()).collect()
    }

    /// The statements of one exchange commit together or not at all, and a failed
    /// exchange's connection (its transaction left open) is not the next one's.
    #[tokio::test]
    async fn a_failed_exchange_leaves_nothing_and_the_next_one_runs() {
        let scratch = Scratch::new();
        let writer = writer_with_table(scratch.database(), Duration::from_secs(5)).await;

        let failed = writer
            .exchange(
                vec![insert(1), plain("INSERT INTO t (v) VALUES (NULL)")],
                None,
            )
            .await;
        assert!(
            matches!(failed, Err(StoreError::Db(_))),
            "the NOT NULL column refuses the second row, a failure and no outage: {failed:?}"
        );
        assert_eq!(values_in(&writer).await, "");

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
        assert_eq!(
            returned(&rows),
            vec![2, 3],
            "the rows of both statements, in order"
        );
        assert_eq!(values_in(&writer).await, "2,3");

        let miscounted = Statement::from_sql_and_values(
            sea_orm::DbBackend::Sqlite,
            "INSERT INTO t (v) VALUES (?)",
            [1i64.into(), 2i64.into()],
        );
        assert!(
            writer.exchange(vec![miscounted], None).await.is_err(),
            "values that do not match the parameters are refused"
        );
        assert_eq!(values_in(&writer).await, "2,3");

        let left_open = writer.exchange(vec![plain("BEGIN")], None).await;
        assert!(
            left_open.is_err(),
            "an exchange that leaves a transaction open is not answered as written"
        );
        writer.exchange(vec![insert(4)], None).await.unwrap();
        assert_eq!(values_in(&writer).await, "2,3,4", "the writer goes on");
    }

    /// A continuation sees its first half's rows and writes in the same transaction: its
    /// error or its panic rolls back both halves, and the writer goes on.
    #[tokio::test]
    async fn a_continuation_shares_its_exchange_transaction() {
        let scratch = Scratch::new();
        let writer = writer_with_table(scratch.database(), Duration::from_secs(5)).await;

        // The second half is made from the first half's rows: twice what it returned.
        let doubled: Then = Box::new(|rows| {
            let v: i64 = rows[0].get("v")?;
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
        assert_eq!(returned(&rows), vec![21, 42], "both halves' rows, in order");
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
            let failed = writer.exchange(vec![insert(v)], Some(then)).await;
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
        let scratch = Scratch::new();
        let writer = std::sync::Arc::new(
            writer_with_table(scratch.database(), Duration::from_millis(300)).await,
        );

        // Another writer holds the lock for longer than the wait for a turn.
        let holder = scratch.lock_holder();
        let first = tokio::spawn({
            let writer = writer.clone();
            async move { writer.exchange(vec![insert(1)], None).await }
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        let second = writer.exchange(vec![insert(2)], None).await;
        assert!(
            matches!(
                second,
                Err(StoreError::Unavailable(
                    _,
                    DbErr::ConnectionAcquire(ConnAcquireErr::Timeout)
                ))
            ),
            "the second never got its turn: {second:?}"
        );
        tokio::time::sleep(Duration::from_millis(700)).await;
        holder.execute_batch("ROLLBACK").unwrap();
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

    /// SQLite's lock held past the busy timeout is an outage (a 503), not a failure.
    #[tokio::test]
    async fn a_lock_held_past_the_busy_timeout_is_an_outage() {
        let scratch = Scratch::new();
        let database = WriterDatabase {
            busy_timeout: Duration::from_millis(100),
            ..scratch.database()
        };
        let writer = writer_with_table(database, Duration::from_secs(5)).await;
        let holder = scratch.lock_holder();
        let busy = writer.exchange(vec![insert(1)], None).await;
        assert!(
            matches!(
                busy,
                Err(StoreError::Unavailable(crate::storage::Outage::Busy, _))
            ),
            "{busy:?}"
        );
        holder.execute_batch("ROLLBACK").unwrap();
        writer
            .exchange(vec![insert(2)], None)
            .await
            .expect("the lock released, the writer goes on");
        assert_eq!(values_in(&writer).await, "2");
    }
}
