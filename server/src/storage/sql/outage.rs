//! Tells a database that cannot serve right now (unreachable, locked, full) apart
//! from a bug or a bad statement. The first is worth a retry and answers 503; the
//! second stays an internal error. Only this file knows the drivers' error codes.

use crate::storage::Outage;
use sea_orm::sqlx;
use sea_orm::sqlx::error::DatabaseError;
use sea_orm::{ConnAcquireErr, DbErr, RuntimeErr};

/// SQLite primary result codes (the low byte of an extended code).
const SQLITE_BUSY: i32 = 5;
const SQLITE_LOCKED: i32 = 6;
const SQLITE_NOMEM: i32 = 7;
const SQLITE_IOERR: i32 = 10;
const SQLITE_FULL: i32 = 13;
const SQLITE_CANTOPEN: i32 = 14;
/// errno for "no space left on device" (Linux and the BSDs agree).
const ENOSPC: i32 = 28;

/// Why `e` is a passing outage rather than a failure of this statement, if it is one.
pub fn classify(e: &DbErr) -> Option<Outage> {
    match e {
        DbErr::ConnectionAcquire(ConnAcquireErr::Timeout) => Some(Outage::Unreachable),
        DbErr::ConnectionAcquire(ConnAcquireErr::ConnectionClosed) => Some(Outage::Unreachable),
        DbErr::Conn(RuntimeErr::Internal(_)) => Some(Outage::Unreachable),
        DbErr::Conn(RuntimeErr::SqlxError(e))
        | DbErr::Exec(RuntimeErr::SqlxError(e))
        | DbErr::Query(RuntimeErr::SqlxError(e)) => sqlx_outage(e),
        _ => None,
    }
}

fn sqlx_outage(e: &sqlx::Error) -> Option<Outage> {
    match e {
        sqlx::Error::Io(io) => Some(io_outage(io)),
        sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => Some(Outage::Unreachable),
        sqlx::Error::Database(db) => {
            if let Some(sqlite) = db.try_downcast_ref::<sqlx::sqlite::SqliteError>() {
                let code = sqlite
                    .code()
                    .and_then(|c| c.parse::<i32>().ok())
                    .unwrap_or(0);
                sqlite_outage(code)
            } else if let Some(pg) = db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>() {
                postgres_outage(pg.code())
            } else {
                None
            }
        }
        _ => None,
    }
}

fn io_outage(io: &std::io::Error) -> Outage {
    if io.raw_os_error() == Some(ENOSPC) || io.kind() == std::io::ErrorKind::StorageFull {
        Outage::Full
    } else {
        Outage::Unreachable
    }
}

/// By the primary code: the extended ones (SQLITE_BUSY_SNAPSHOT, SQLITE_IOERR_WRITE,
/// ...) say the same for our purpose.
pub(super) fn sqlite_outage(extended: i32) -> Option<Outage> {
    match extended & 0xff {
        SQLITE_BUSY | SQLITE_LOCKED => Some(Outage::Busy),
        SQLITE_FULL => Some(Outage::Full),
        SQLITE_IOERR | SQLITE_CANTOPEN | SQLITE_NOMEM => Some(Outage::Unreachable),
        _ => None,
    }
}

/// Why the database refused a value it was given, when that is the value's fault:
/// PostgreSQL refuses NUL characters in text (SQLite stores them) and text longer
/// than a `varchar(n)` column. Such a request is a 400, not a 500.
pub fn invalid_value(e: &DbErr) -> Option<&'static str> {
    let (DbErr::Exec(RuntimeErr::SqlxError(sqlx::Error::Database(db)))
    | DbErr::Query(RuntimeErr::SqlxError(sqlx::Error::Database(db)))) = e
    else {
        return None;
    };
    let pg = db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>()?;
    match pg.code() {
        "22021" | "22P05" => {
            Some("a value contains a character that cannot be stored (such as NUL)")
        }
        "22001" => Some("a value is longer than the database allows"),
        _ => None,
    }
}

/// By SQLSTATE (PostgreSQL appendix A): connection exceptions, the server shutting
/// down or starting, insufficient resources, and transactions a retry would pass.
fn postgres_outage(sqlstate: &str) -> Option<Outage> {
    match sqlstate {
        "53100" => Some(Outage::Full),
        "57P01" | "57P02" | "57P03" | "58030" => Some(Outage::Unreachable),
        "40001" | "40P01" | "55P03" | "57014" => Some(Outage::Busy),
        s if s.starts_with("08") => Some(Outage::Unreachable),
        s if s.starts_with("53") => Some(Outage::Busy),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_codes() {
        assert_eq!(sqlite_outage(5), Some(Outage::Busy));
        assert_eq!(sqlite_outage(517), Some(Outage::Busy)); // BUSY_SNAPSHOT
        assert_eq!(sqlite_outage(13), Some(Outage::Full));
        assert_eq!(sqlite_outage(778), Some(Outage::Unreachable)); // IOERR_WRITE
        assert_eq!(sqlite_outage(2067), None); // CONSTRAINT_UNIQUE
        assert_eq!(sqlite_outage(1), None);
    }

    #[test]
    fn postgres_states() {
        assert_eq!(postgres_outage("08006"), Some(Outage::Unreachable));
        assert_eq!(postgres_outage("57P01"), Some(Outage::Unreachable));
        assert_eq!(postgres_outage("53100"), Some(Outage::Full));
        assert_eq!(postgres_outage("53300"), Some(Outage::Busy));
        assert_eq!(postgres_outage("40001"), Some(Outage::Busy));
        assert_eq!(postgres_outage("23505"), None); // unique violation
        assert_eq!(postgres_outage("42P01"), None); // undefined table
    }

    #[test]
    fn full_disk_io() {
        let e = std::io::Error::from_raw_os_error(ENOSPC);
        assert_eq!(io_outage(&e), Outage::Full);
        let e = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert_eq!(io_outage(&e), Outage::Unreachable);
    }

    #[test]
    fn pool_timeout_is_unreachable() {
        assert_eq!(
            classify(&DbErr::ConnectionAcquire(ConnAcquireErr::Timeout)),
            Some(Outage::Unreachable)
        );
        assert_eq!(classify(&DbErr::RecordNotFound("x".into())), None);
    }
}
