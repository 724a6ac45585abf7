//! The device path's two writes of the command queue, and its one read, written out
//! once.
//!
//! Every Idle and every result takes the next command, and every result is stored,
//! with a statement of a handful of shapes whose text never changes: only the device,
//! the time and the reported command's uuid do. Built by sea-query per request, the
//! text and its values cost the HTTP workers more than a tenth of a command cycle's
//! CPU (expression trees made, cloned, written and dropped: docs/benchmarks.md). Here
//! each shape's text is made once per engine, and a request only binds its values.
//!
//! Parameters are numbered (`$n` on PostgreSQL, `?n` on SQLite), so a value used in
//! several places is bound once; the statuses are literals of [`CommandStatus`].

use crate::domain::CommandStatus;
use chrono::{DateTime, Utc};
use sea_orm::{DbBackend, Statement, Value};
use std::sync::LazyLock;

/// One shape's text for each engine.
struct Text {
    postgres: String,
    sqlite: String,
}

impl Text {
    /// From the PostgreSQL text (`$n`): SQLite reads `?n` as the same parameter n.
    /// The texts hold no `$` but their parameters.
    fn numbered(postgres: String) -> Text {
        Text {
            sqlite: postgres.replace('$', "?"),
            postgres,
        }
    }

    fn bind(&self, backend: DbBackend, values: Vec<Value>) -> Statement {
        let sql = match backend {
            DbBackend::Postgres => &self.postgres,
            _ => &self.sqlite,
        };
        Statement::from_sql_and_values(backend, sql.as_str(), values)
    }
}

/// `take_next`'s shapes, by (new exchange, a reported command to leave alone).
static TAKE_NEXT: LazyLock<[Text; 4]> = LazyLock::new(|| {
    [(false, false), (false, true), (true, false), (true, true)]
        .map(|(new_exchange, reported)| Text::numbered(take_next_text(new_exchange, reported)))
});

/// `store_result`'s shapes: a result that closes the command, and a NotNow.
static STORE_RESULT: LazyLock<[Text; 2]> =
    LazyLock::new(|| [false, true].map(|not_now| Text::numbered(store_result_text(not_now))));

/// `put_off_waiting`'s one shape.
static PUT_OFF_WAITING: LazyLock<Text> = LazyLock::new(|| {
    let not_now = CommandStatus::NotNow.as_str();
    Text::numbered(format!(
        r#"SELECT * FROM "commands" WHERE "device_id" = $1 AND "status" = '{not_now}' AND "uuid" <> $2 LIMIT 1"#
    ))
});

fn quoted(statuses: &[CommandStatus]) -> String {
    statuses
        .iter()
        .map(|s| format!("'{}'", s.as_str()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// $1 the device, $2 now, $3 the reported command's uuid.
fn take_next_text(new_exchange: bool, reported: bool) -> String {
    use CommandStatus::{NotNow, Pending, Sent};
    let (pending, sent, not_now) = (Pending.as_str(), Sent.as_str(), NotNow.as_str());
    let open = if new_exchange {
        quoted(&[Pending, Sent, NotNow])
    } else {
        quoted(&[Pending, Sent])
    };
    let not_reported = if reported { r#" AND "uuid" <> $3"# } else { "" };
    // The first open command in (priority, FIFO) order, expired ones skipped; compared
    // with `=`, not `IN` (as sea-query wrote it): SQLite runs a scalar subquery once
    // into a register, where `IN` fills a temporary b-tree every statement (opened,
    // sized and freed: an eighth of the writer's samples). With no open command both
    // are false in effect: `= NULL` is NULL, which WHERE and CASE take as false.
    let next = format!(
        r#"SELECT "seq" FROM "commands" WHERE "device_id" = $1 AND "status" IN ({open}) AND ("expires_at" IS NULL OR "expires_at" > $2){not_reported} ORDER BY "priority" DESC, "seq" ASC LIMIT 1"#
    );
    if !new_exchange {
        return format!(
            r#"UPDATE "commands" SET "status" = '{sent}', "delivered_at" = $2, "updated_at" = $2, "delivery_count" = "delivery_count" + 1 WHERE "seq" = ({next}) RETURNING *"#
        );
    }
    // A new exchange: the next one is sent, the other NotNow'd ones go back to pending.
    let is_next = format!(r#""seq" = ({next})"#);
    format!(
        r#"UPDATE "commands" SET "status" = CASE WHEN {is_next} THEN '{sent}' ELSE '{pending}' END, "delivered_at" = CASE WHEN {is_next} THEN $2 ELSE "delivered_at" END, "updated_at" = CASE WHEN {is_next} THEN $2 ELSE "updated_at" END, "delivery_count" = CASE WHEN {is_next} THEN "delivery_count" + 1 ELSE "delivery_count" END WHERE "device_id" = $1{not_reported} AND ("status" = '{not_now}' OR {is_next}) RETURNING *"#
    )
}

/// $1 the status, $2 now, $3 the raw report, $4 the parsed one, $5 the command's
/// uuid, $6 the device.
fn store_result_text(not_now: bool) -> String {
    use CommandStatus::{NotNow, Pending, Sent};
    let open = quoted(&[Pending, Sent, NotNow]);
    // A NotNow keeps the command open and counts; any other status closes it.
    let counted_or_closed = if not_now {
        r#""not_now_count" = "not_now_count" + 1"#
    } else {
        r#""completed_at" = $2"#
    };
    format!(
        r#"UPDATE "commands" SET "status" = $1, "updated_at" = $2, {counted_or_closed}, "result_raw" = $3, "result" = $4 WHERE "uuid" = $5 AND "device_id" = $6 AND "status" IN ({open}) RETURNING *"#
    )
}

/// Takes the device's next command and marks it sent, in one statement (atomic, so
/// two concurrent requests of one device cannot take the same command); returns the
/// rows it changed.
///
/// Within an exchange, the first open command in (priority, FIFO) order; the
/// NotNow'd ones wait for the next Idle. An Idle (`new_exchange`) starts a new
/// exchange: what the device put off with NotNow during the last one is offered
/// again, in its original place. So the first command among the pending, sent and
/// NotNow'd ones is marked sent, and the other NotNow'd ones go back to pending.
/// `reported`, the command whose result this request carries, is never taken.
pub(super) fn take_next(
    backend: DbBackend,
    device_id: &str,
    new_exchange: bool,
    reported: Option<&str>,
    now: DateTime<Utc>,
) -> Statement {
    let shape = usize::from(new_exchange) * 2 + usize::from(reported.is_some());
    let mut values = vec![Value::from(device_id), Value::from(now)];
    values.extend(reported.map(Value::from));
    TAKE_NEXT[shape].bind(backend, values)
}

/// Stores a result: one conditional statement, so only an open command of this
/// device takes it; a repeated or late report (cancelled, expired, already
/// answered) changes nothing, the first answer stands. Returns the updated row.
pub(super) fn store_result(
    backend: DbBackend,
    device_id: &str,
    uuid: &str,
    status: CommandStatus,
    raw: Vec<u8>,
    parsed: &serde_json::Value,
    now: DateTime<Utc>,
) -> Statement {
    let not_now = status == CommandStatus::NotNow;
    STORE_RESULT[usize::from(not_now)].bind(
        backend,
        vec![
            Value::from(status.as_str()),
            Value::from(now),
            Value::from(raw),
            Value::from(parsed.to_string()),
            Value::from(uuid),
            Value::from(device_id),
        ],
    )
}

/// A command of the device put off with NotNow, other than `reported`, if one waits
/// for its next Idle: one seek on the queue's index (device, status, ...). Expired
/// ones count too, which can only keep a queue from being taken for empty.
pub(super) fn put_off_waiting(backend: DbBackend, device_id: &str, reported: &str) -> Statement {
    PUT_OFF_WAITING.bind(backend, vec![Value::from(device_id), Value::from(reported)])
}

#[cfg(test)]
mod tests;
