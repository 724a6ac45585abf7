//! The PostgreSQL connection pool: a connection is tested before use only when it
//! sat idle.
//!
//! sqlx tests a connection with a round trip when it leaves the pool
//! (`test_before_acquire`) and again when it comes back (always, on release), and a
//! statement outside a transaction takes a connection and gives it back: three round
//! trips for one statement. The test on release stays (it is sqlx's own, and it
//! catches a connection the statement found broken). The test before use is kept
//! for what it is for, a connection that may have died while idle (PostgreSQL
//! restarted, a firewall dropped it): one idle for more than a second. One given
//! back a moment ago passed the release test then.

use sea_orm::sqlx::postgres::{PgConnectOptions, PgPool};
use sea_orm::sqlx::{ConnectOptions as _, Connection as _};
use sea_orm::{ConnectOptions, DatabaseConnection, DbErr, RuntimeErr, SqlxPostgresConnector};
use std::str::FromStr;
use std::time::Duration;

/// A connection idle for longer is tested before use.
const TEST_IF_IDLE_FOR: Duration = Duration::from_secs(1);

pub(super) async fn connect(
    url: &str,
    options: ConnectOptions,
) -> Result<DatabaseConnection, DbErr> {
    let conn_err = |e| DbErr::Conn(RuntimeErr::SqlxError(e));
    let connect = PgConnectOptions::from_str(url)
        .map_err(conn_err)?
        .disable_statement_logging();
    let pool: PgPool = options
        .sqlx_pool_options::<sea_orm::sqlx::Postgres>()
        .test_before_acquire(false)
        .before_acquire(|conn, meta| {
            Box::pin(async move {
                if meta.idle_for > TEST_IF_IDLE_FOR {
                    conn.ping().await?;
                }
                Ok(true)
            })
        })
        .connect_with(connect)
        .await
        .map_err(conn_err)?;
    Ok(SqlxPostgresConnector::from_sqlx_postgres_pool(pool))
}
