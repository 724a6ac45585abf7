//! Values between sea-query and SQLite on the device path's own connection
//! (sqlite_writer.rs), encoded and decoded exactly as sqlx does on the pool's.
//!
//! The same rows are written by both: a command queued through the pool is taken by
//! the writer, a result the writer stores is read back through the pool. So a value
//! the writer binds must be stored as sqlx would store it (a date is RFC 3339 text
//! with automatic sub-second digits, a UUID a 16-byte blob), and a value it reads must
//! be understood as sqlx would understand it (a date may be text in any of SQLite's
//! formats, a Unix time or a Julian day). The tests compare both ways with sqlx itself.

use chrono::{DateTime, FixedOffset, NaiveDateTime, SecondsFormat, TimeZone, Utc};
use rusqlite::types::Value as Sql;
use sea_orm::sea_query::Value;
use sea_orm::DbErr;
use std::sync::Arc;

/// What sqlx stores for `value` (sea-query-binder's choice of sqlx type, then sqlx's
/// encoding of it). A kind sqlx cannot store in SQLite is an error, as it is there.
pub(super) fn to_sql(value: Value) -> Result<Sql, DbErr> {
    fn or_null<T>(v: Option<T>, f: impl FnOnce(T) -> Sql) -> Sql {
        v.map_or(Sql::Null, f)
    }
    let date_time = |t: DateTime<FixedOffset>| Sql::Text(rfc3339(&t));
    Ok(match value {
        Value::Bool(b) => or_null(b, |b| Sql::Integer(b.into())),
        Value::TinyInt(i) => or_null(i, |i| Sql::Integer(i.into())),
        Value::SmallInt(i) => or_null(i, |i| Sql::Integer(i.into())),
        Value::Int(i) => or_null(i, |i| Sql::Integer(i.into())),
        Value::BigInt(i) => or_null(i, Sql::Integer),
        Value::TinyUnsigned(i) => or_null(i, |i| Sql::Integer(i.into())),
        Value::SmallUnsigned(i) => or_null(i, |i| Sql::Integer(i.into())),
        Value::Unsigned(i) => or_null(i, |i| Sql::Integer(i.into())),
        Value::BigUnsigned(Some(i)) => Sql::Integer(
            i64::try_from(i)
                .map_err(|_| DbErr::Custom(format!("{i} does not fit SQLite's integer")))?,
        ),
        Value::BigUnsigned(None) => Sql::Null,
        Value::Float(f) => or_null(f, |f| Sql::Real(f.into())),
        Value::Double(f) => or_null(f, Sql::Real),
        Value::String(s) => or_null(s, |s| Sql::Text(*s)),
        Value::Char(c) => or_null(c, |c| Sql::Text(c.to_string())),
        Value::Bytes(b) => or_null(b, |b| Sql::Blob(*b)),
        Value::Json(j) => or_null(j, |j| Sql::Text(j.to_string())),
        Value::Uuid(u) => or_null(u, |u| Sql::Blob(u.as_bytes().to_vec())),
        Value::ChronoDate(d) => or_null(d, |d| Sql::Text(d.format("%F").to_string())),
        Value::ChronoTime(t) => or_null(t, |t| Sql::Text(t.format("%T%.f").to_string())),
        Value::ChronoDateTime(t) => or_null(t, |t| Sql::Text(t.format("%F %T%.f").to_string())),
        Value::ChronoDateTimeUtc(t) => or_null(t, |t| date_time(t.fixed_offset())),
        Value::ChronoDateTimeLocal(t) => or_null(t, |t| date_time(t.fixed_offset())),
        Value::ChronoDateTimeWithTimeZone(t) => or_null(t, |t| date_time(*t)),
        other => {
            return Err(DbErr::Custom(format!(
                "the device path's SQLite connection binds no {other:?}"
            )))
        }
    })
}

/// How sqlx writes a date with its time zone.
fn rfc3339(t: &DateTime<FixedOffset>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, false)
}

/// One row as SQLite returned it, owned: its columns' names and values.
#[derive(Debug, Clone)]
pub(super) struct Row {
    pub(super) names: Arc<[String]>,
    pub(super) values: Vec<Sql>,
}

impl Row {
    /// The value of column `name`, decoded as sqlx decodes it into a `T`.
    pub(super) fn get<T: FromSql>(&self, name: &str) -> Result<T, DbErr> {
        let at = self
            .names
            .iter()
            .position(|n| n == name)
            .ok_or_else(|| DbErr::Type(format!("no column {name} in the row")))?;
        T::from_sql(&self.values[at])
            .ok_or_else(|| DbErr::Type(format!("column {name} holds {:?}", self.values[at])))
    }
}

/// A Rust value read from an SQLite value, as sqlx reads it.
pub(super) trait FromSql: Sized {
    fn from_sql(value: &Sql) -> Option<Self>;
}

impl<T: FromSql> FromSql for Option<T> {
    fn from_sql(value: &Sql) -> Option<Self> {
        match value {
            Sql::Null => Some(None),
            v => T::from_sql(v).map(Some),
        }
    }
}

impl FromSql for String {
    fn from_sql(value: &Sql) -> Option<Self> {
        match value {
            Sql::Text(s) => Some(s.clone()),
            _ => None,
        }
    }
}

impl FromSql for Vec<u8> {
    fn from_sql(value: &Sql) -> Option<Self> {
        match value {
            Sql::Blob(b) => Some(b.clone()),
            // sqlx reads a text column's bytes when asked for bytes.
            Sql::Text(s) => Some(s.as_bytes().to_vec()),
            _ => None,
        }
    }
}

impl FromSql for i64 {
    fn from_sql(value: &Sql) -> Option<Self> {
        match value {
            Sql::Integer(i) => Some(*i),
            _ => None,
        }
    }
}

/// Strict where sqlx would truncate: a count that does not fit is an error, not a
/// different count.
impl FromSql for i32 {
    fn from_sql(value: &Sql) -> Option<Self> {
        match value {
            Sql::Integer(i) => i32::try_from(*i).ok(),
            _ => None,
        }
    }
}

impl FromSql for bool {
    fn from_sql(value: &Sql) -> Option<Self> {
        match value {
            Sql::Integer(i) => Some(*i != 0),
            _ => None,
        }
    }
}

impl FromSql for DateTime<Utc> {
    fn from_sql(value: &Sql) -> Option<Self> {
        let t = match value {
            Sql::Text(s) => date_time_from_text(s),
            Sql::Integer(unix) => Utc.timestamp_opt(*unix, 0).single(),
            Sql::Real(julian_day) => date_time_from_julian_day(*julian_day),
            _ => None,
        };
        t.map(|t| t.with_timezone(&Utc))
    }
}

/// The text forms of a date and time that SQLite's own date functions write and
/// read, with or without a zone (none means UTC); RFC 3339 first, as sqlx tries.
fn date_time_from_text(s: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.to_utc());
    }
    const FORMS: [&str; 12] = [
        "%F %T%.f",
        "%F %R",
        "%F %RZ",
        "%F %R%:z",
        "%F %T%.fZ",
        "%F %T%.f%:z",
        "%FT%R",
        "%FT%RZ",
        "%FT%R%:z",
        "%FT%T%.f",
        "%FT%T%.fZ",
        "%FT%T%.f%:z",
    ];
    FORMS.iter().find_map(|form| {
        DateTime::parse_from_str(s, form)
            .map(|t| t.to_utc())
            .or_else(|_| NaiveDateTime::parse_from_str(s, form).map(|t| t.and_utc()))
            .ok()
    })
}

/// A Julian day number (SQLite's `julianday()`), to the nanosecond it can carry.
fn date_time_from_julian_day(day: f64) -> Option<DateTime<Utc>> {
    const UNIX_EPOCH_JULIAN_DAY: f64 = 2_440_587.5;
    let seconds = (day - UNIX_EPOCH_JULIAN_DAY) * 86_400.0;
    if !seconds.is_finite() {
        return None;
    }
    // Truncating casts as sqlx makes them; out-of-range values saturate, and chrono
    // refuses what is out of its range.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let (whole, nanos) = (seconds.trunc() as i64, (seconds.fract() * 1e9).abs() as u32);
    Utc.timestamp_opt(whole, nanos).single()
}

#[cfg(test)]
mod tests {
    use super::*;
    use sea_orm::sqlx::sqlite::SqliteConnection;
    use sea_orm::sqlx::{Connection as _, Row as _};
    use sea_query_binder::SqlxValues;

    /// What SQLite stored for a bound value: its type and its literal (`quote`).
    fn stored_by_rusqlite(value: Value) -> (String, String) {
        let connection = rusqlite::Connection::open_in_memory().unwrap();
        let bound = to_sql(value).unwrap();
        connection
            .query_row("SELECT typeof(?1), quote(?1)", [bound], |row| {
                Ok((row.get(0)?, row.get(1)?))
            })
            .unwrap()
    }

    async fn stored_by_sqlx(connection: &mut SqliteConnection, value: Value) -> (String, String) {
        let values = SqlxValues(sea_orm::Values(vec![value]));
        let row = sea_orm::sqlx::query_with("SELECT typeof(?1) AS t, quote(?1) AS q", values)
            .fetch_one(connection)
            .await
            .unwrap();
        (row.get("t"), row.get("q"))
    }

    /// Every kind of value the device path may bind is stored as sqlx stores it.
    #[tokio::test]
    async fn values_are_stored_as_sqlx_stores_them() {
        let mut sqlx = SqliteConnection::connect("sqlite::memory:").await.unwrap();
        let at = Utc.with_ymd_and_hms(2026, 12, 3, 20, 30, 5).unwrap();
        let values = vec![
            Value::Bool(Some(true)),
            Value::Bool(None),
            Value::TinyInt(Some(-3)),
            Value::SmallInt(Some(300)),
            Value::Int(Some(-70_000)),
            Value::BigInt(Some(1 << 40)),
            Value::TinyUnsigned(Some(200)),
            Value::SmallUnsigned(Some(60_000)),
            Value::Unsigned(Some(4_000_000_000)),
            Value::BigUnsigned(Some(1 << 50)),
            Value::Float(Some(1.5)),
            Value::Double(Some(-2.25)),
            Value::String(Some(Box::new("Zażółć ' \0 gęślą".into()))),
            Value::String(None),
            Value::Char(Some('ż')),
            Value::Bytes(Some(Box::new(vec![0, 1, 254, 255]))),
            Value::Json(Some(Box::new(serde_json::json!({"a": [1, "b", null]})))),
            Value::Uuid(Some(Box::new(uuid::Uuid::new_v4()))),
            Value::ChronoDate(Some(Box::new(at.date_naive()))),
            Value::ChronoTime(Some(Box::new(at.time()))),
            Value::ChronoDateTime(Some(Box::new(at.naive_utc()))),
            Value::ChronoDateTimeUtc(Some(Box::new(at))),
            Value::ChronoDateTimeUtc(Some(Box::new(at + chrono::Duration::nanoseconds(1)))),
            Value::ChronoDateTimeUtc(Some(Box::new(Utc::now()))),
            Value::ChronoDateTimeUtc(None),
            Value::ChronoDateTimeWithTimeZone(Some(Box::new(
                at.with_timezone(&FixedOffset::east_opt(3600).unwrap()),
            ))),
        ];
        for value in values {
            let ours = stored_by_rusqlite(value.clone());
            let theirs = stored_by_sqlx(&mut sqlx, value.clone()).await;
            assert_eq!(ours, theirs, "{value:?}");
        }
    }

    /// Dates in every form SQLite may hold read as sqlx reads them.
    #[tokio::test]
    async fn dates_are_read_as_sqlx_reads_them() {
        let mut sqlx = SqliteConnection::connect("sqlite::memory:").await.unwrap();
        let connection = rusqlite::Connection::open_in_memory().unwrap();
        let held = [
            "'2026-12-03T20:30:05+00:00'",
            "'2026-12-03T20:30:05.123456789+00:00'",
            "'2026-12-03T21:30:05.5+01:00'",
            "'2026-12-03T20:30:05Z'",
            "'2026-12-03 20:30:05'",
            "'2026-12-03 20:30:05.250'",
            "'2026-12-03 20:30'",
            "'2026-12-03 20:30Z'",
            "'2026-12-03 20:30+02:00'",
            "'2026-12-03 20:30:05Z'",
            "'2026-12-03 20:30:05.1-03:30'",
            "'2026-12-03T20:30'",
            "'2026-12-03T20:30:05.75'",
            "datetime(1796330000, 'unixepoch')",
            "1796330000",
            "julianday('2026-12-03 20:30:05.5')",
            "'not a date'",
            "'2026-13-03 20:30:05'",
        ];
        for sql in held {
            let query = format!("SELECT {sql} AS t");
            let value: Sql = connection.query_row(&query, [], |row| row.get(0)).unwrap();
            let ours = DateTime::<Utc>::from_sql(&value);
            let row = sea_orm::sqlx::query(&query)
                .fetch_one(&mut sqlx)
                .await
                .unwrap();
            let theirs = row.try_get::<DateTime<Utc>, _>("t").ok();
            assert_eq!(ours, theirs, "{sql}");
        }
    }
}
