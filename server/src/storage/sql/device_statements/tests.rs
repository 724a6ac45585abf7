//! The statements written once change exactly what the sea-query statements they
//! replaced changed, and return the same rows: every shape, on SQLite through the
//! device path's own connection and through the pool, and on PostgreSQL when
//! MDM_TEST_POSTGRES_URL names one. The sea-query builders are kept here as the
//! reference.

use super::super::queue::open_statuses;
use super::{store_result, take_next};
use crate::domain::CommandStatus;
use crate::storage::entities::commands;
use crate::storage::sql::SqlStore;
use crate::storage::ResultRecord;
use chrono::{DateTime, Duration, TimeZone, Utc};
use sea_orm::sea_query::{Expr, Order, Query, UpdateStatement};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DbBackend, EntityTrait, QueryFilter,
    Set, Statement,
};

/// The first open command of a device in (priority, FIFO) order, expired ones
/// skipped; `statuses` says which are open for this exchange.
fn reference_next_command(
    device_id: &str,
    statuses: &[&'static str],
    now: DateTime<Utc>,
) -> sea_orm::sea_query::SelectStatement {
    Query::select()
        .column(commands::Column::Seq)
        .from(commands::Entity)
        .and_where(commands::Column::DeviceId.eq(device_id))
        .and_where(commands::Column::Status.is_in(statuses.iter().copied()))
        .cond_where(
            Condition::any()
                .add(commands::Column::ExpiresAt.is_null())
                .add(commands::Column::ExpiresAt.gt(now)),
        )
        .order_by(commands::Column::Priority, Order::Desc)
        .order_by(commands::Column::Seq, Order::Asc)
        .limit(1)
        .to_owned()
}

/// The reference of [`super::take_next`].
fn reference_take_next(
    device_id: &str,
    new_exchange: bool,
    reported: Option<&str>,
    now: DateTime<Utc>,
) -> UpdateStatement {
    use sea_orm::sea_query::SimpleExpr;
    let mut open = vec![
        CommandStatus::Pending.as_str(),
        CommandStatus::Sent.as_str(),
    ];
    if new_exchange {
        open.push(CommandStatus::NotNow.as_str());
    }
    let mut next = reference_next_command(device_id, &open, now);
    if let Some(uuid) = reported {
        next.and_where(commands::Column::Uuid.ne(uuid));
    }
    let is_next = || commands::Column::Seq.in_subquery(next.clone());
    let when_next = |then: SimpleExpr, otherwise: SimpleExpr| -> SimpleExpr {
        Expr::case(is_next(), then).finally(otherwise).into()
    };
    let update = if new_exchange {
        commands::Entity::update_many()
            .col_expr(
                commands::Column::Status,
                when_next(
                    Expr::value(CommandStatus::Sent.as_str()),
                    Expr::value(CommandStatus::Pending.as_str()),
                ),
            )
            .col_expr(
                commands::Column::DeliveredAt,
                when_next(
                    Expr::value(now),
                    Expr::col(commands::Column::DeliveredAt).into(),
                ),
            )
            .col_expr(
                commands::Column::UpdatedAt,
                when_next(
                    Expr::value(now),
                    Expr::col(commands::Column::UpdatedAt).into(),
                ),
            )
            .col_expr(
                commands::Column::DeliveryCount,
                when_next(
                    Expr::col(commands::Column::DeliveryCount).add(1),
                    Expr::col(commands::Column::DeliveryCount).into(),
                ),
            )
            .filter(commands::Column::DeviceId.eq(device_id))
            .filter(reported.map_or(Condition::all(), |uuid| {
                Condition::all().add(commands::Column::Uuid.ne(uuid))
            }))
            .filter(
                Condition::any()
                    .add(commands::Column::Status.eq(CommandStatus::NotNow.as_str()))
                    .add(is_next()),
            )
    } else {
        commands::Entity::update_many()
            .col_expr(
                commands::Column::Status,
                Expr::value(CommandStatus::Sent.as_str()),
            )
            .col_expr(commands::Column::DeliveredAt, Expr::value(now))
            .col_expr(commands::Column::UpdatedAt, Expr::value(now))
            .col_expr(
                commands::Column::DeliveryCount,
                Expr::col(commands::Column::DeliveryCount).add(1),
            )
            .filter(is_next())
    };
    returning_all(update)
}

fn returning_all(update: sea_orm::UpdateMany<commands::Entity>) -> UpdateStatement {
    use sea_orm::QueryTrait;
    let mut statement = update.into_query();
    statement.returning_all();
    statement
}

/// The reference of [`super::store_result`].
fn reference_result_update(
    device_id: &str,
    uuid: &str,
    result: ResultRecord,
    now: DateTime<Utc>,
) -> UpdateStatement {
    let not_now = result.status == CommandStatus::NotNow;
    let mut update = commands::Entity::update_many()
        .col_expr(
            commands::Column::Status,
            Expr::value(result.status.as_str()),
        )
        .col_expr(commands::Column::UpdatedAt, Expr::value(now))
        .col_expr(
            commands::Column::NotNowCount,
            Expr::col(commands::Column::NotNowCount).add(i32::from(not_now)),
        )
        .col_expr(commands::Column::ResultRaw, Expr::value(result.raw))
        .col_expr(
            commands::Column::Result,
            Expr::value(result.parsed.to_string()),
        )
        .filter(commands::Column::Uuid.eq(uuid))
        .filter(commands::Column::DeviceId.eq(device_id))
        .filter(commands::Column::Status.is_in(open_statuses()));
    if !not_now {
        update = update.col_expr(commands::Column::CompletedAt, Expr::value(now));
    }
    returning_all(update)
}

/// One device's queue in every state a statement must tell apart, and another
/// device's command that no statement of the first may touch.
async fn seeded(store: &SqlStore, now: DateTime<Utc>) {
    for id in ["d1", "d2", "d3"] {
        super::super::test_store::test_device(store, id, now).await;
    }
    // d3 has nothing to take: its one NotNow'd command expired.
    let queue: [(&str, &str, CommandStatus, i32, Option<i64>); 8] = [
        ("c1", "d1", CommandStatus::Pending, 0, None),
        ("c2", "d1", CommandStatus::NotNow, 0, None),
        ("c3", "d1", CommandStatus::Sent, 0, None),
        ("c4", "d1", CommandStatus::Pending, 5, Some(-60)),
        ("c5", "d1", CommandStatus::Pending, 1, Some(3600)),
        ("c6", "d1", CommandStatus::NotNow, 2, None),
        ("c7", "d2", CommandStatus::Pending, 9, None),
        ("c8", "d3", CommandStatus::NotNow, 0, Some(-60)),
    ];
    for (uuid, device, status, priority, expires_in) in queue {
        commands::ActiveModel {
            seq: sea_orm::NotSet,
            uuid: Set(uuid.into()),
            device_id: Set(device.into()),
            request_type: Set("DeviceInformation".into()),
            payload: Set(b"<plist/>".to_vec()),
            payload_sealed: Set(false),
            priority: Set(priority),
            status: Set(status.as_str().into()),
            created_by: Set("admin".into()),
            created_at: Set(now - Duration::hours(1)),
            updated_at: Set(now - Duration::hours(1)),
            expires_at: Set(expires_in.map(|s| now + Duration::seconds(s))),
            delivered_at: Set(None),
            completed_at: Set(None),
            delivery_count: Set(1),
            not_now_count: Set(0),
            result_raw: Set(None),
            result: Set(None),
        }
        .insert(&store.db)
        .await
        .unwrap();
    }
}

/// What one shape is asked to do, made by the reference and by the written text.
struct Case {
    name: String,
    reference: Box<dyn Fn(DbBackend) -> Statement>,
    written: Box<dyn Fn(DbBackend) -> Statement>,
}

fn cases(now: DateTime<Utc>) -> Vec<Case> {
    let mut cases = Vec::new();
    let takes = [
        ("d1", None),
        ("d1", Some("c3")),
        ("d1", Some("c6")),
        ("d3", None),
        ("d3", Some("c8")),
    ];
    for new_exchange in [false, true] {
        for (device, reported) in takes {
            cases.push(Case {
                name: format!(
                    "take_next {device} new_exchange={new_exchange} reported={reported:?}"
                ),
                reference: Box::new(move |b| {
                    b.build(&reference_take_next(device, new_exchange, reported, now))
                }),
                written: Box::new(move |b| take_next(b, device, new_exchange, reported, now)),
            });
        }
    }
    let statuses = [
        CommandStatus::Acknowledged,
        CommandStatus::NotNow,
        CommandStatus::Error,
    ];
    for status in statuses {
        // c3 is this device's open command, c7 another device's, c9 nobody's.
        for uuid in ["c3", "c7", "c9"] {
            let record = move || ResultRecord {
                status,
                raw: format!("<plist>{uuid}</plist>").into_bytes(),
                parsed: serde_json::json!({ "Status": status.as_str(), "uuid": uuid }),
            };
            cases.push(Case {
                name: format!("store_result {status:?} {uuid}"),
                reference: Box::new(move |b| {
                    b.build(&reference_result_update("d1", uuid, record(), now))
                }),
                written: Box::new(move |b| {
                    let r = record();
                    store_result(b, "d1", uuid, r.status, r.raw, &r.parsed, now)
                }),
            });
        }
    }
    cases
}

/// Empties the tables the cases write and seeds them again.
async fn reseeded(store: &SqlStore, now: DateTime<Utc>) {
    for table in ["commands", "devices"] {
        let sql = format!("DELETE FROM \"{table}\"");
        store.db.execute_unprepared(&sql).await.unwrap();
    }
    seeded(store, now).await;
}

/// Runs one statement on the seeded store, through the device path's writer or the
/// pool; returns the rows it returned and then the whole table. Ordered by uuid, seq
/// left out: reseeding numbers the same rows anew (their order stays).
async fn outcome(
    store: &SqlStore,
    statement: Statement,
    through_writer: bool,
) -> (Vec<commands::Model>, Vec<commands::Model>) {
    let returned = if through_writer {
        let writer = store.device_writer.as_ref().expect("a file database");
        super::super::queue::written(&writer.exchange(vec![statement], None).await.unwrap())
            .unwrap()
    } else {
        let mut rows = Vec::new();
        for row in store.db.query_all(statement).await.unwrap() {
            use sea_orm::FromQueryResult;
            rows.push(commands::Model::from_query_result(&row, "").unwrap());
        }
        rows
    };
    let table = commands::Entity::find().all(&store.db).await.unwrap();
    let by_uuid = |mut rows: Vec<commands::Model>| {
        rows.iter_mut().for_each(|m| m.seq = 0);
        rows.sort_by(|a, b| a.uuid.cmp(&b.uuid));
        rows
    };
    (by_uuid(returned), by_uuid(table))
}

/// Every case, by the reference and by the written text, on one store.
async fn compare(store: &SqlStore, through_writer: bool) {
    // Whole seconds: every engine keeps such a time exactly.
    let now = Utc.timestamp_opt(Utc::now().timestamp(), 0).unwrap();
    let backend = store.db.get_database_backend();
    for case in cases(now) {
        reseeded(store, now).await;
        let expected = outcome(store, (case.reference)(backend), false).await;
        reseeded(store, now).await;
        let got = outcome(store, (case.written)(backend), through_writer).await;
        assert_eq!(
            got, expected,
            "{} ({backend:?}, through the writer: {through_writer})",
            case.name
        );
        assert!(
            !expected.1.is_empty(),
            "{}: the seeded queue is there",
            case.name
        );
    }
}

#[tokio::test]
async fn on_sqlite_the_written_statements_do_what_sea_query_built() {
    let store = super::super::test_store::TempSqlite::open("statements").await;
    compare(&store, true).await;
    compare(&store, false).await;
}

#[tokio::test]
async fn on_postgres_the_written_statements_do_what_sea_query_built() {
    let Ok(url) = std::env::var("MDM_TEST_POSTGRES_URL") else {
        assert!(
            std::env::var("MDM_REQUIRE_POSTGRES").is_err(),
            "MDM_REQUIRE_POSTGRES is set but MDM_TEST_POSTGRES_URL is not"
        );
        eprintln!("skipped on_postgres_the_written_statements_do_what_sea_query_built: MDM_TEST_POSTGRES_URL is not set");
        return;
    };
    let name = format!("mdm_statements_{}", uuid::Uuid::new_v4().simple());
    let admin = sea_orm::Database::connect(url.as_str()).await.unwrap();
    admin
        .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
        .await
        .unwrap();
    let (base, query) = url
        .split_once('?')
        .map_or((url.as_str(), ""), |(b, q)| (b, q));
    let base = base.rsplit_once('/').map_or(base, |(server, _)| server);
    let query = if query.is_empty() {
        String::new()
    } else {
        format!("?{query}")
    };
    let store = SqlStore::connect(&format!("{base}/{name}{query}"))
        .await
        .unwrap();
    compare(&store, false).await;
    store.db.clone().close().await.ok();
    drop(store);
    admin
        .execute_unprepared(&format!("DROP DATABASE \"{name}\" WITH (FORCE)"))
        .await
        .unwrap();
}
