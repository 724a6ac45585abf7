//! API tokens from before admin accounts expire (issue 10, item 4).
//!
//! Migration 34 turned the tokens that existed into service tokens of the owner role
//! without an expiry: the one kind of credential that never ends, which the access
//! review kept flagging. Each such token still active gets the default token lifetime
//! of the release, 90 days, counted from this migration, and an
//! `admin.token_expiry_set` event (actor `migration`) names them, so that the audit
//! trail and the SIEM show when and why their expiry changed.
//!
//! Why here and why from now:
//! * A migration runs once per database, on its first open by this release, whatever
//!   opens it (`mdm serve` on any instance, or `mdm token` / `mdm admin` on the host),
//!   and is recorded as done; "at the first start" would need such a record of its
//!   own. Migration 34 is not changed: databases have run it already.
//! * A migration cannot read `mdm serve`'s options, so the lifetime is the release's
//!   default (`--token-default-days` defaults to 90, the same number). An office with a
//!   shorter policy revokes or replaces them sooner (`mdm token revoke`).
//! * Counted from now, not from their creation: most of these tokens are older than
//!   90 days, and expiring them at the upgrade would cut off the integrations that use
//!   them (a SIEM export, scripts) without warning. 90 days gives the time to replace
//!   them with tokens of a narrower role, while their end is known and listed.
//!
//! Revoked tokens are left as they are. `down` leaves the expiries: which ones this
//! migration set is in the event, not in the schema.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend, Statement};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The release's default token lifetime (`--token-default-days`).
const DAYS: i64 = 90;

/// "now" (with `offset`, an SQLite modifier such as '+90 days') as each engine stores
/// a timestamp with time zone: PostgreSQL's own type; on SQLite the RFC 3339 text
/// sqlx writes (UTC, `+00:00`), so that it reads back and compares like the rest.
fn now_sql(backend: DbBackend, days: i64) -> String {
    match backend {
        DbBackend::Postgres => format!("(CURRENT_TIMESTAMP + INTERVAL '{days} days')"),
        _ => format!("strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now', '+{days} days')"),
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        let backend = manager.get_database_backend();
        let rows = db
            .query_all(Statement::from_string(
                backend,
                "SELECT id, name FROM admin_tokens WHERE expires_at IS NULL AND revoked_at IS NULL ORDER BY created_at"
                    .to_owned(),
            ))
            .await?;
        if rows.is_empty() {
            return Ok(());
        }
        let mut tokens = Vec::new();
        for row in &rows {
            let id: String = row.try_get("", "id")?;
            let name: String = row.try_get("", "name")?;
            tokens.push(format!(
                "{{\"id\":{},\"name\":{}}}",
                json_string(&id),
                json_string(&name)
            ));
        }
        db.execute_unprepared(&format!(
            "UPDATE admin_tokens SET expires_at = {} WHERE expires_at IS NULL AND revoked_at IS NULL",
            now_sql(backend, DAYS)
        ))
        .await?;
        let data = format!(
            "{{\"tokens\":[{}],\"days\":{DAYS},\"reason\":\"tokens from before admin accounts had no expiry\"}}",
            tokens.join(",")
        );
        let message = format!(
            "{} API token(s) from before admin accounts expire in {DAYS} days from this upgrade: replace them (mdm token create, with a narrower role)",
            rows.len()
        );
        let (sql, values) = match backend {
            DbBackend::Postgres => (
                "INSERT INTO events (occurred_at, kind, severity, device_id, actor, message, data) VALUES (CURRENT_TIMESTAMP, $1, NULL, NULL, $2, $3, $4)".to_owned(),
                vec![
                    "admin.token_expiry_set".into(),
                    "migration".into(),
                    message.into(),
                    data.into(),
                ],
            ),
            _ => (
                format!(
                    "INSERT INTO events (occurred_at, kind, severity, device_id, actor, message, data) VALUES ({}, ?, NULL, NULL, ?, ?, ?)",
                    now_sql(backend, 0)
                ),
                vec![
                    "admin.token_expiry_set".into(),
                    "migration".into(),
                    message.into(),
                    data.into(),
                ],
            ),
        };
        db.execute(Statement::from_sql_and_values(backend, sql, values))
            .await?;
        Ok(())
    }

    async fn down(&self, _manager: &SchemaManager) -> Result<(), DbErr> {
        Ok(())
    }
}

/// A JSON string literal (the migration has no serde_json).
fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn json_strings_are_escaped() {
        assert_eq!(super::json_string("a\"b\\c\n"), "\"a\\\"b\\\\c\\u000a\"");
    }
}
