//! What the database holds, table by table, so that a test can prove a request wrote
//! nothing: every row of every table rendered as text by the database itself (so no
//! column type is left out), sorted, counted and hashed. Comparing two snapshots
//! names the tables that changed and the rows that appeared or went away.

use sea_orm::{ConnectionTrait, DatabaseBackend, DatabaseConnection, Statement};
use std::collections::{BTreeMap, BTreeSet};

/// One table: its rows as text, in a stable order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableRows {
    pub rows: Vec<String>,
}

impl TableRows {
    /// SHA-256 of the ordered rows, for a one-line summary.
    pub fn hash(&self) -> String {
        let mut h = openssl::sha::Sha256::new();
        for r in &self.rows {
            h.update(r.as_bytes());
            h.update(b"\n");
        }
        hex::encode(&h.finish()[..8])
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub tables: BTreeMap<String, TableRows>,
}

async fn strings(db: &DatabaseConnection, sql: &str, column: &str) -> Vec<String> {
    let rows = db
        .query_all(Statement::from_string(db.get_database_backend(), sql))
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    rows.iter()
        .map(|r| {
            r.try_get::<String>("", column)
                .unwrap_or_else(|e| panic!("{sql}: {e}"))
        })
        .collect()
}

fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Every table of the schema (the migrations' bookkeeping included).
/// Tables written by the readers of the event stream (prefixes).
const STREAM_READERS: &[&str] = &["incident", "deliver", "policy_event_cursor", "audit_"];

async fn table_names(db: &DatabaseConnection) -> Vec<String> {
    let sql = match db.get_database_backend() {
        DatabaseBackend::Sqlite => {
            "SELECT name AS t FROM sqlite_master WHERE type = 'table' \
             AND name NOT LIKE 'sqlite_%' ORDER BY name"
        }
        DatabaseBackend::Postgres => {
            "SELECT table_name::text AS t FROM information_schema.tables \
             WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' ORDER BY 1"
        }
        other => panic!("no snapshot for {other:?}"),
    };
    strings(db, sql, "t").await
}

/// A row as one string, built by the database: PostgreSQL renders a whole row with
/// `t::text`; SQLite has no such cast, so each column goes through `quote()`, which
/// also renders blobs (as X'..') and tells NULL from 'NULL'.
async fn row_text_expression(db: &DatabaseConnection, table: &str) -> String {
    match db.get_database_backend() {
        DatabaseBackend::Postgres => "t::text".into(),
        _ => {
            let columns = strings(
                db,
                &format!(
                    "SELECT name AS c FROM pragma_table_info('{}') ORDER BY cid",
                    table.replace('\'', "''")
                ),
                "c",
            )
            .await;
            let parts: Vec<String> = columns
                .iter()
                .map(|c| format!("quote(t.{})", quote_ident(c)))
                .collect();
            parts.join(" || '|' || ")
        }
    }
}

/// Waits (at most 15 s) until the policy watcher has read every event: what it writes
/// for an event (a new device's first compliance evaluation) follows from a request
/// made before the snapshot, and must not land inside the window the snapshot guards.
async fn settle(db: &DatabaseConnection) {
    let sql = "SELECT (SELECT COALESCE(MAX(id), 0) FROM events) \
               - (SELECT COALESCE(MAX(last_event_id), 0) FROM policy_event_cursor) AS behind";
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        let behind: i64 = db
            .query_one(Statement::from_string(
                db.get_database_backend(),
                sql.to_owned(),
            ))
            .await
            .ok()
            .flatten()
            .and_then(|row| row.try_get("", "behind").ok())
            .unwrap_or(0);
        if behind <= 0 || std::time::Instant::now() > deadline {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// Rows of every table; `filter` (table, SQL condition on `t`) leaves rows out of
/// one table, for the tests whose refusals write an event by design.
pub async fn take(db: &DatabaseConnection, filter: Option<(&str, &str)>) -> Snapshot {
    settle(db).await;
    let mut tables = BTreeMap::new();
    for table in table_names(db).await {
        // What the event stream's readers write (incidents filed from events, their
        // bookkeeping, outgoing deliveries) follows from the events a request may
        // write, not from the request: its own checks cover it.
        if STREAM_READERS.iter().any(|p| table.starts_with(p)) {
            continue;
        }
        let expr = row_text_expression(db, &table).await;
        let condition = match filter {
            Some((t, cond)) if t == table => format!(" WHERE {cond}"),
            _ => String::new(),
        };
        let sql = format!(
            "SELECT {expr} AS r FROM {} t{condition} ORDER BY 1",
            quote_ident(&table)
        );
        let mut rows = strings(db, &sql, "r").await;
        // The database sorts by its collation; sort again so both engines agree.
        rows.sort();
        tables.insert(table, TableRows { rows });
    }
    Snapshot { tables }
}

/// How many rows of `table` match `condition` (both written by the test).
pub async fn count(db: &DatabaseConnection, table: &str, condition: &str) -> i64 {
    let sql = format!(
        "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM {} WHERE {condition}",
        quote_ident(table)
    );
    let row = db
        .query_one(Statement::from_string(
            db.get_database_backend(),
            sql.clone(),
        ))
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .expect("a count");
    row.try_get::<i64>("", "n")
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

impl Snapshot {
    /// One line per table: name, row count, hash.
    pub fn summary(&self) -> String {
        self.tables
            .iter()
            .map(|(t, rows)| format!("{t}: {} rows, {}", rows.rows.len(), rows.hash()))
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// What changed from `self` to `after`: empty when nothing did.
    pub fn differences(&self, after: &Snapshot) -> Vec<String> {
        let mut out = Vec::new();
        let names: BTreeSet<&String> = self.tables.keys().chain(after.tables.keys()).collect();
        for name in names {
            let empty = TableRows { rows: Vec::new() };
            let before = self.tables.get(name).unwrap_or(&empty);
            let now = after.tables.get(name).unwrap_or(&empty);
            if before == now {
                continue;
            }
            let old: BTreeSet<&String> = before.rows.iter().collect();
            let new: BTreeSet<&String> = now.rows.iter().collect();
            let excerpt = |rows: Vec<&&String>| {
                rows.iter()
                    .take(5)
                    .map(|r| {
                        if r.chars().count() > 300 {
                            format!("{}…", r.chars().take(300).collect::<String>())
                        } else {
                            r.to_string()
                        }
                    })
                    .collect::<Vec<_>>()
                    .join("\n      ")
            };
            out.push(format!(
                "table {name}: {} rows ({}) before, {} rows ({}) after\n    added: {}\n      {}\n    removed: {}\n      {}",
                before.rows.len(),
                before.hash(),
                now.rows.len(),
                now.hash(),
                new.difference(&old).count(),
                excerpt(new.difference(&old).collect()),
                old.difference(&new).count(),
                excerpt(old.difference(&new).collect()),
            ));
        }
        out
    }
}
