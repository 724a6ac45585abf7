//! Android commands in the platform-neutral `commands` table, and the AMAPI operations
//! that map back to them (`android_operations`).

use super::events::insert_event;
use super::*;
use crate::domain::CommandStatus;
use crate::storage::entities::{android_operations as ops, commands};
use crate::storage::*;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set,
};

pub(super) async fn sent(
    store: &SqlStore,
    uuid: &str,
    device_id: &str,
    operation: &str,
    at: DateTime<Utc>,
) -> StoreResult<()> {
    let txn = store.begin_write().await?;
    commands::Entity::update_many()
        .col_expr(
            commands::Column::Status,
            Expr::value(CommandStatus::Sent.as_str()),
        )
        .col_expr(commands::Column::DeliveredAt, Expr::value(at))
        .col_expr(
            commands::Column::DeliveryCount,
            Expr::col(commands::Column::DeliveryCount).add(1),
        )
        .col_expr(commands::Column::UpdatedAt, Expr::value(at))
        .filter(commands::Column::Uuid.eq(uuid))
        .filter(commands::Column::Status.eq(CommandStatus::Pending.as_str()))
        .exec(&txn)
        .await?;
    ops::ActiveModel {
        name: Set(operation.to_owned()),
        command_uuid: Set(uuid.to_owned()),
        device_id: Set(device_id.to_owned()),
        created_at: Set(at),
        done_at: Set(None),
    }
    .insert(&txn)
    .await?;
    txn.commit().await?;
    Ok(())
}

pub(super) async fn operation(
    store: &SqlStore,
    name: &str,
) -> StoreResult<Option<(String, String)>> {
    Ok(ops::Entity::find_by_id(name)
        .one(store.connection())
        .await?
        .map(|m| (m.command_uuid, m.device_id)))
}

pub(super) async fn open(store: &SqlStore, limit: u64) -> StoreResult<Vec<String>> {
    Ok(ops::Entity::find()
        .select_only()
        .column(ops::Column::Name)
        .filter(ops::Column::DoneAt.is_null())
        .order_by_asc(ops::Column::CreatedAt)
        .limit(limit)
        .into_tuple()
        .all(store.connection())
        .await?)
}

pub(super) async fn finish(
    store: &SqlStore,
    uuid: &str,
    status: CommandStatus,
    result: serde_json::Value,
    at: DateTime<Utc>,
    event: NewEvent,
) -> StoreResult<bool> {
    let txn = store.begin_write().await?;
    let open: Vec<&str> = CommandStatus::ALL
        .iter()
        .filter(|s| s.is_open())
        .map(|s| s.as_str())
        .collect();
    let done = commands::Entity::update_many()
        .col_expr(commands::Column::Status, Expr::value(status.as_str()))
        .col_expr(commands::Column::Result, Expr::value(result.to_string()))
        .col_expr(commands::Column::CompletedAt, Expr::value(at))
        .col_expr(commands::Column::UpdatedAt, Expr::value(at))
        .filter(commands::Column::Uuid.eq(uuid))
        .filter(commands::Column::Status.is_in(open))
        .exec(&txn)
        .await?;
    ops::Entity::update_many()
        .col_expr(ops::Column::DoneAt, Expr::value(at))
        .filter(ops::Column::CommandUuid.eq(uuid))
        .filter(ops::Column::DoneAt.is_null())
        .exec(&txn)
        .await?;
    if done.rows_affected == 0 {
        txn.commit().await?;
        return Ok(false);
    }
    insert_event(&txn, event).await?;
    txn.commit().await?;
    Ok(true)
}
