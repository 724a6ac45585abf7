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
//! Exchanges that queue while one runs commit together (a group commit): the next
//! turn takes all that wait, each in a savepoint of one transaction, and answers them
//! after its commit. One commit per exchange wrote the pages they share (the queue's
//! index, the events' last page) to the WAL once per exchange (docs/benchmarks.md).
//! An exchange that fails is rolled back to its savepoint and answered with its
//! error; the others still commit.
//!
//! A connection is reused only after a turn that finished cleanly. One whose
//! exchange failed alone, or whose group's transaction broke, is closed before the
//! answers go back, which rolls back whatever it left open; the next turn opens a
//! fresh one. A request waits for its turn at
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
/// The most exchanges one turn commits together: those already waiting when it
/// starts, as many as a busy server's requests in flight.
const GROUP: usize = 64;

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

/// An exchange whose turn has come: what to run and where its answer goes.
struct Started {
    statements: Vec<Statement>,
    then: Option<Then>,
    answer: oneshot::Sender<Answer>,
}

impl Exchange {
    /// Tells the request its turn has come; `None` if it gave up (or went away) first.
    fn start(self) -> Option<Started> {
        self.started.send(()).ok()?;
        Some(Started {
            statements: self.statements,
            then: self.then,
            answer: self.answer,
        })
    }
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

    /// How many exchanges wait in the queue for a turn.
    #[cfg(test)]
    fn waiting(&self) -> usize {
        self.queue.max_capacity() - self.queue.capacity()
    }
}

/// The writer's loop: one turn after another on one connection. A turn takes the
/// exchange that woke it and those already waiting behind it, up to [`GROUP`]: one
/// alone runs as it is; several share one transaction (a group commit), each in a
/// savepoint of its own. A connection is reused only after a turn that finished
/// cleanly; otherwise it is closed, which rolls back what it left open, and the next
/// turn opens a fresh one. Every answer goes back after the turn's commit.
fn serve(database: WriterDatabase, mut exchanges: mpsc::Receiver<Exchange>) {
    let mut kept: Option<Connection> = None;
    while let Some(first) = exchanges.blocking_recv() {
        let waiting = std::iter::from_fn(|| exchanges.try_recv().ok()).take(GROUP - 1);
        // A request that gave up (or went away) before its turn: nothing is done for it.
        let turn: Vec<Started> = std::iter::once(first)
            .chain(waiting)
            .filter_map(Exchange::start)
            .collect();
        if turn.is_empty() {
            continue;
        }
        let mut connection = match kept.take() {
            Some(connection) => connection,
            None => match open(&database) {
                Ok(connection) => connection,
                Err(e) => {
                    answer_all(turn, &e);
                    continue;
                }
            },
        };
        let (work, answers): (Vec<_>, Vec<_>) = turn
            .into_iter()
            .map(|s| ((s.statements, s.then), s.answer))
            .unzip();
        let (results, clean) = if work.len() == 1 {
            let (statements, then) = work.into_iter().next().expect("one exchange");
            let result = run_alone(&mut connection, statements, then);
            let clean = result.is_ok();
            (vec![result], clean)
        } else {
            run_group(&mut connection, work)
        };
        if clean {
            kept = Some(connection);
        } else if let Err((_, e)) = connection.close() {
            // Still open (SQLite refused to close it): dropping it closes it when
            // SQLite can, and this thread never uses it again.
            tracing::warn!(error = %e, "closing the device path's SQLite connection");
        }
        for (answer, result) in answers.into_iter().zip(results) {
            let _ = answer.send(result);
        }
    }
}

/// Answers every exchange of a turn that could not run with the same error.
fn answer_all(turn: Vec<Started>, e: &StoreError) {
    for started in turn {
        let _ = started.answer.send(Err(again(e)));
    }
}

/// The same error for another exchange of the turn it ended: of the same kind (an
/// outage stays an outage, so each request answers as the first one does).
fn again(e: &StoreError) -> StoreError {
    let copy = |d: &DbErr| DbErr::Custom(d.to_string());
    match e {
        StoreError::Unavailable(outage, d) => StoreError::Unavailable(*outage, copy(d)),
        StoreError::Db(d) => StoreError::Db(copy(d)),
        other => StoreError::Db(DbErr::Custom(other.to_string())),
    }
}

/// The writer's page cache, KiB (allocated as pages are read, up to this).
const WRITER_CACHE_KIB: u32 = 64 * 1024;

/// Opens the writer's connection with the pool's settings (WAL, synchronous NORMAL,
/// foreign keys, temporary tables in memory, the busy timeout), as sqlx opens each of
/// the pool's, and a larger page cache of its own.
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
        .execute_batch(
            "PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; PRAGMA temp_store = MEMORY;",
        )
        .map_err(failed)?;
    // This connection makes most of the changes, so its page cache stays valid between
    // transactions (a reader's is dropped whenever another connection wrote). SQLite's
    // default 2 MiB holds the device path's working set for a few thousand devices,
    // not for 100,000, and every miss is a pread of a page the writer just had.
    connection
        .execute_batch(&format!("PRAGMA cache_size = -{WRITER_CACHE_KIB};"))
        .map_err(failed)?;
    connection.set_prepared_statement_cache_capacity(PREPARED);
    Ok(connection)
}

/// One exchange alone on the connection: its statements, then its continuation's, in
/// one transaction when there are several or a continuation. On an error the
/// transaction is left open, and the caller closes the connection, which rolls it back.
fn run_alone(
    connection: &mut Connection,
    statements: Vec<Statement>,
    then: Option<Then>,
) -> Answer {
    // A transaction takes the write lock at once (a deferred one that reads first
    // could fail with SQLITE_BUSY_SNAPSHOT instead of waiting).
    let transaction = then.is_some() || statements.len() > 1;
    if transaction {
        execute(connection, "BEGIN IMMEDIATE")?;
    }
    let rows = run(connection, statements, then)?;
    if transaction {
        execute(connection, "COMMIT")?;
    }
    // An exchange that leaves a transaction open failed: closing the connection
    // rolls back what it wrote, so it must not be answered as written.
    if !connection.is_autocommit() {
        return Err(DbErr::Custom("the exchange left a transaction open".into()).into());
    }
    Ok(rows)
}

/// Several exchanges in one transaction, each in a savepoint: one that fails is rolled
/// back to its savepoint and answered with its error, the others commit together.
/// Returns each exchange's answer, in order, and whether the connection is clean.
///
/// Why: under load, exchanges queue while one runs, and a commit per exchange wrote
/// the pages they share (the queue's index, the events' last page, the WAL's header)
/// once per exchange (docs/benchmarks.md). A savepoint costs no write of its own.
///
/// The group breaks when its transaction does: SQLite rolls a whole transaction back
/// on some errors (a full disk, I/O), a savepoint may fail to roll back, an exchange
/// may end the transaction itself (the device path sends no transaction control),
/// or the commit fails. Then nothing of the group is answered as written: every
/// exchange gets the error, and the connection is closed, which rolls back the rest.
fn run_group(
    connection: &mut Connection,
    work: Vec<(Vec<Statement>, Option<Then>)>,
) -> (Vec<Answer>, bool) {
    let count = work.len();
    let broken = |mut answers: Vec<Answer>, e: StoreError| {
        let mut results: Vec<Answer> = answers
            .drain(..)
            .map(|answer| match answer {
                Ok(_) => Err(again(&e)),
                failed => failed,
            })
            .collect();
        results.resize_with(count, || Err(again(&e)));
        (results, false)
    };
    if let Err(e) = execute(connection, "BEGIN IMMEDIATE") {
        return broken(Vec::new(), e);
    }
    let mut answers = Vec::with_capacity(count);
    for (statements, then) in work {
        if let Err(e) = execute(connection, "SAVEPOINT exchange") {
            return broken(answers, e);
        }
        let answer = run(connection, statements, then);
        if connection.is_autocommit() {
            // SQLite rolls the whole transaction back on a full disk or an I/O error:
            // the exchange's own error is then the group's, and its class (an outage
            // the devices retry after) holds for every member.
            let e = match &answer {
                Err(own) => again(own),
                Ok(_) => {
                    DbErr::Custom("the group's transaction ended inside an exchange".into()).into()
                }
            };
            answers.push(answer);
            return broken(answers, e);
        }
        let close = if answer.is_ok() {
            execute(connection, "RELEASE exchange")
        } else {
            execute(connection, "ROLLBACK TO exchange")
                .and_then(|()| execute(connection, "RELEASE exchange"))
        };
        answers.push(answer);
        if let Err(e) = close {
            return broken(answers, e);
        }
    }
    if let Err(e) = execute(connection, "COMMIT") {
        return broken(answers, e);
    }
    let clean = connection.is_autocommit();
    if !clean {
        return broken(
            answers,
            DbErr::Custom("the group's transaction stayed open".into()).into(),
        );
    }
    (answers, true)
}

/// A statement of transaction control, prepared once per connection.
fn execute(connection: &Connection, sql: &str) -> Result<(), StoreError> {
    connection
        .prepare_cached(sql)
        .and_then(|mut statement| statement.raw_execute())
        .map(drop)
        .map_err(failed)
}

/// One exchange's statements, then its continuation's, with no transaction control of
/// its own; returns their rows, in order.
fn run(connection: &Connection, statements: Vec<Statement>, then: Option<Then>) -> Answer {
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

    /// Sends these exchanges while the writer's thread is busy with another one, so
    /// that they all wait for the same next turn; returns their answers.
    async fn queued_together(
        writer: &std::sync::Arc<SqliteWriter>,
        exchanges: Vec<(Vec<Statement>, Option<Then>)>,
    ) -> Vec<Answer> {
        // The turn before: a continuation that holds the writer's thread until told.
        let (running, is_running) = std::sync::mpsc::channel();
        let (go, told) = std::sync::mpsc::channel::<()>();
        let holds: Then = Box::new(move |_| {
            running.send(()).unwrap();
            told.recv().unwrap();
            Ok(Vec::new())
        });
        let before = tokio::spawn({
            let writer = writer.clone();
            async move { writer.exchange(Vec::new(), Some(holds)).await }
        });
        while is_running.try_recv().is_err() {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let count = exchanges.len();
        let mut answers = Vec::new();
        for (statements, then) in exchanges {
            let writer = writer.clone();
            answers.push(tokio::spawn(async move {
                writer.exchange(statements, then).await
            }));
        }
        while writer.waiting() < count {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        go.send(()).unwrap();
        before.await.unwrap().unwrap();
        let mut results = Vec::new();
        for answer in answers {
            results.push(answer.await.unwrap());
        }
        results
    }

    /// The WAL's frames since the last checkpoint: what the commits since wrote.
    fn wal_frames(scratch: &Scratch) -> i64 {
        let reader = Connection::open(&scratch.0).unwrap();
        reader
            .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| row.get(1))
            .unwrap()
    }

    /// Exchanges that queue while one runs commit together: the page they share is
    /// written to the WAL once for the group, not once for each of them.
    #[tokio::test]
    async fn exchanges_that_queue_commit_together() {
        let scratch = Scratch::new();
        let writer = std::sync::Arc::new(
            writer_with_table(scratch.database(), Duration::from_secs(5)).await,
        );
        writer
            .exchange(vec![plain("PRAGMA wal_checkpoint(TRUNCATE)")], None)
            .await
            .unwrap();
        assert_eq!(wal_frames(&scratch), 0);
        let exchanges = (1..=20).map(|v| (vec![insert(v)], None)).collect();
        let answers = queued_together(&writer, exchanges).await;
        assert!(answers.iter().all(Result::is_ok), "{answers:?}");
        let frames = wal_frames(&scratch);
        assert!(
            frames <= 2,
            "20 single-row commits write the table's page at least 20 times, one group \
             once: {frames} frames"
        );
        let expected: Vec<String> = (1..=20).map(|v| v.to_string()).collect();
        assert_eq!(values_in(&writer).await, expected.join(","));
    }

    /// In a group, an exchange that fails (a statement, a continuation's error or
    /// panic) is rolled back to its own savepoint and answered with its own error;
    /// the others commit. One that ends the group's transaction fails the whole group:
    /// nothing of it is answered as written, and the writer goes on.
    #[tokio::test]
    async fn in_a_group_a_failed_exchange_leaves_nothing_and_the_others_commit() {
        let scratch = Scratch::new();
        let writer = std::sync::Arc::new(
            writer_with_table(scratch.database(), Duration::from_secs(5)).await,
        );
        let returning = |v| statement("INSERT INTO t (v) VALUES (?) RETURNING v", v);
        let tenfold: Then = Box::new(move |rows| {
            let v: i64 = rows[0].get("v")?;
            Ok(vec![statement(
                "INSERT INTO t (v) VALUES (?) RETURNING v",
                10 * v,
            )])
        });
        let panics: Then = Box::new(|_| panic!("a continuation that panics"));
        let refuses: Then = Box::new(|_| Err(DbErr::Custom("no".into())));
        let answers = queued_together(
            &writer,
            vec![
                (vec![insert(1)], None),
                (vec![returning(2), returning(3)], Some(tenfold)),
                (
                    vec![insert(4), plain("INSERT INTO t (v) VALUES (NULL)")],
                    None,
                ),
                (vec![insert(5)], Some(panics)),
                (vec![insert(6)], Some(refuses)),
                (vec![returning(7)], None),
            ],
        )
        .await;
        let ok: Vec<bool> = answers.iter().map(Result::is_ok).collect();
        assert_eq!(ok, [true, true, false, false, false, true], "{answers:?}");
        assert!(
            matches!(answers[2], Err(StoreError::Db(_))),
            "the NOT NULL column's own error: {:?}",
            answers[2]
        );
        assert_eq!(returned(answers[1].as_ref().unwrap()), vec![2, 3, 20]);
        assert_eq!(returned(answers[5].as_ref().unwrap()), vec![7]);
        assert_eq!(values_in(&writer).await, "1,2,3,20,7");

        // An exchange that ends the transaction breaks its group: all of it fails.
        let answers = queued_together(
            &writer,
            vec![
                (vec![insert(8)], None),
                (vec![insert(9)], None),
                (vec![plain("ROLLBACK")], None),
                (vec![insert(10)], None),
            ],
        )
        .await;
        let ok: Vec<bool> = answers.iter().map(Result::is_ok).collect();
        assert_eq!(ok, [false; 4], "{answers:?}");
        assert_eq!(values_in(&writer).await, "1,2,3,20,7");
        writer.exchange(vec![insert(11)], None).await.unwrap();
        assert_eq!(
            values_in(&writer).await,
            "1,2,3,20,7,11",
            "the writer goes on"
        );
    }

    /// A full disk makes SQLite roll the whole transaction back (a single-row insert
    /// keeps no statement journal to undo only itself): the group fails, and every
    /// member is answered with the outage, which the device path turns into a 503 its
    /// devices retry after, not a 500.
    #[tokio::test]
    async fn a_full_disk_in_a_group_is_an_outage_for_all_of_it() {
        let scratch = Scratch::new();
        let writer = std::sync::Arc::new(
            writer_with_table(scratch.database(), Duration::from_secs(5)).await,
        );
        writer.exchange(vec![insert(1)], None).await.unwrap();
        let rows = writer
            .exchange(vec![plain("PRAGMA page_count")], None)
            .await
            .unwrap();
        let pages: i64 = rows[0].get("page_count").unwrap();
        // The database may not grow: the small inserts fit on the table's page, the
        // large value needs pages of its own.
        writer
            .exchange(
                vec![plain(&format!("PRAGMA max_page_count = {pages}"))],
                None,
            )
            .await
            .unwrap();
        let answers = queued_together(
            &writer,
            vec![
                (vec![insert(2)], None),
                (
                    vec![plain("INSERT INTO t (v) VALUES (zeroblob(100000))")],
                    None,
                ),
                (vec![insert(3)], None),
            ],
        )
        .await;
        for answer in &answers {
            assert!(
                matches!(
                    answer,
                    Err(StoreError::Unavailable(crate::storage::Outage::Full, _))
                ),
                "{answers:?}"
            );
        }
        // The connection was closed with the group; its successor has no such limit.
        writer.exchange(vec![insert(4)], None).await.unwrap();
        assert_eq!(values_in(&writer).await, "1,4");
    }
}
