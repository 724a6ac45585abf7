//! [`EventLog`] on sea-orm.

use super::*;
use crate::storage::entities::events;
use crate::storage::*;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set};

#[async_trait]
impl EventLog for SqlStore {
    async fn record(&self, event: NewEvent) -> StoreResult<()> {
        insert_event(&self.db, event).await
    }

    async fn events(&self, filter: &EventFilter) -> StoreResult<Vec<Event>> {
        let mut query = events::Entity::find();
        if let Some(d) = &filter.device_id {
            query = query.filter(events::Column::DeviceId.eq(d.as_str()));
        }
        if let Some(k) = &filter.kind {
            query = if k.ends_with('.') {
                query.filter(events::Column::Kind.starts_with(k.as_str()))
            } else {
                query.filter(events::Column::Kind.eq(k.as_str()))
            };
        }
        if let Some(after) = filter.after_id {
            query = query.filter(events::Column::Id.gt(after));
        }
        let rows = query
            .order_by_asc(events::Column::Id)
            .limit(filter.limit.unwrap_or(100).clamp(1, 1000))
            .all(&self.db)
            .await?;
        Ok(rows
            .into_iter()
            .map(|m| Event {
                id: m.id,
                occurred_at: m.occurred_at,
                kind: m.kind,
                severity: m.severity,
                device_id: m.device_id,
                actor: m.actor,
                message: m.message,
                data: serde_json::from_str(&m.data).unwrap_or(serde_json::Value::Null),
            })
            .collect())
    }
}

/// Appends an event on any connection (so a transaction can include it).
pub(super) async fn insert_event<C: sea_orm::ConnectionTrait>(
    db: &C,
    event: NewEvent,
) -> StoreResult<()> {
    db.execute(db.get_database_backend().build(&event_insert(event)))
        .await?;
    Ok(())
}

/// The statement that appends an event.
pub(super) fn event_insert(event: NewEvent) -> sea_orm::sea_query::InsertStatement {
    use sea_orm::QueryTrait;
    // Events an admin caused carry the address of the request that caused them (the
    // audit trail's "from which address"; services/admins/context.rs).
    let data = if event.actor.is_some() {
        crate::services::admins::context::annotate(event.data).to_string()
    } else {
        event.data.to_string()
    };
    events::Entity::insert(events::ActiveModel {
        id: sea_orm::NotSet,
        occurred_at: Set(Utc::now()),
        kind: Set(event.kind.to_owned()),
        severity: Set(event.severity),
        device_id: Set(event.device_id),
        actor: Set(event.actor),
        message: Set(event.message),
        data: Set(data),
    })
    .into_query()
}
