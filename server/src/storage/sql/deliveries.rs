//! [`DeliveryStore`] on sea-orm: the queue of events going out to webhooks, syslog
//! and e-mail receivers, per receiver, with a lease so that two instances never send one
//! delivery at the same time.

use super::SqlStore;
use crate::storage::entities::{deliveries, delivery_cursors, events};
use crate::storage::*;
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set};

fn delivery_of(m: deliveries::Model) -> OutboundDelivery {
    OutboundDelivery {
        id: m.id,
        receiver: m.receiver,
        event_id: m.event_id,
        payload: m.payload,
        attempts: m.attempts,
        next_attempt_at: m.next_attempt_at,
        delivered_at: m.delivered_at,
        last_error: m.last_error,
        created_at: m.created_at,
    }
}

#[async_trait]
impl DeliveryStore for SqlStore {
    async fn delivery_cursor(&self, receiver: &str) -> StoreResult<Option<i64>> {
        Ok(delivery_cursors::Entity::find_by_id(receiver)
            .one(self.connection())
            .await?
            .map(|c| c.last_event_id))
    }

    async fn latest_event_id(&self) -> StoreResult<i64> {
        let latest: Option<Option<i64>> = events::Entity::find()
            .select_only()
            .column_as(events::Column::Id.max(), "latest")
            .into_tuple()
            .one(self.connection())
            .await?;
        Ok(latest.flatten().unwrap_or(0))
    }

    async fn enqueue_deliveries(
        &self,
        receiver: &str,
        items: Vec<(i64, String)>,
        cursor: i64,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        let txn = self.begin_write().await?;
        if !items.is_empty() {
            let rows = items
                .into_iter()
                .map(|(event_id, payload)| deliveries::ActiveModel {
                    id: sea_orm::NotSet,
                    receiver: Set(receiver.to_owned()),
                    event_id: Set(event_id),
                    payload: Set(payload),
                    attempts: Set(0),
                    next_attempt_at: Set(now),
                    delivered_at: Set(None),
                    last_error: Set(None),
                    created_at: Set(now),
                });
            // Another instance may have queued the same events: those stay once.
            deliveries::Entity::insert_many(rows)
                .on_conflict(
                    OnConflict::columns([
                        deliveries::Column::Receiver,
                        deliveries::Column::EventId,
                    ])
                    .do_nothing()
                    .to_owned(),
                )
                .exec_without_returning(&txn)
                .await?;
        }
        delivery_cursors::Entity::insert(delivery_cursors::ActiveModel {
            receiver: Set(receiver.to_owned()),
            last_event_id: Set(0),
        })
        .on_conflict(
            OnConflict::column(delivery_cursors::Column::Receiver)
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(&txn)
        .await?;
        // Forward only: an instance that read an older position never moves it back.
        delivery_cursors::Entity::update_many()
            .col_expr(delivery_cursors::Column::LastEventId, Expr::value(cursor))
            .filter(delivery_cursors::Column::Receiver.eq(receiver))
            .filter(delivery_cursors::Column::LastEventId.lt(cursor))
            .exec(&txn)
            .await?;
        txn.commit().await?;
        Ok(())
    }

    async fn claim_due_deliveries(
        &self,
        now: DateTime<Utc>,
        lease: chrono::Duration,
        limit: u64,
    ) -> StoreResult<Vec<OutboundDelivery>> {
        let due = deliveries::Entity::find()
            .filter(deliveries::Column::DeliveredAt.is_null())
            .filter(deliveries::Column::NextAttemptAt.lte(now))
            .order_by_asc(deliveries::Column::Id)
            .limit(limit)
            .all(self.connection())
            .await?;
        let mut claimed = Vec::with_capacity(due.len());
        for d in due {
            // Conditional on the row unchanged: of two instances, one sends it.
            let won = deliveries::Entity::update_many()
                .col_expr(deliveries::Column::NextAttemptAt, Expr::value(now + lease))
                .filter(deliveries::Column::Id.eq(d.id))
                .filter(deliveries::Column::NextAttemptAt.eq(d.next_attempt_at))
                .filter(deliveries::Column::DeliveredAt.is_null())
                .exec(self.connection())
                .await?;
            if won.rows_affected == 1 {
                claimed.push(delivery_of(d));
            }
        }
        Ok(claimed)
    }

    async fn delivery_done(
        &self,
        id: i64,
        outcome: Result<DateTime<Utc>, (String, DateTime<Utc>)>,
    ) -> StoreResult<()> {
        let update = deliveries::Entity::update_many()
            .col_expr(
                deliveries::Column::Attempts,
                Expr::col(deliveries::Column::Attempts).add(1),
            )
            .filter(deliveries::Column::Id.eq(id));
        let update = match outcome {
            Ok(at) => update
                .col_expr(deliveries::Column::DeliveredAt, Expr::value(at))
                .col_expr(
                    deliveries::Column::LastError,
                    Expr::value(Option::<String>::None),
                ),
            Err((error, retry_at)) => update
                .col_expr(deliveries::Column::LastError, Expr::value(error))
                .col_expr(deliveries::Column::NextAttemptAt, Expr::value(retry_at)),
        };
        update.exec(self.connection()).await?;
        Ok(())
    }

    async fn deliveries(&self, filter: &DeliveryFilter) -> StoreResult<Vec<OutboundDelivery>> {
        let mut query = deliveries::Entity::find();
        if let Some(r) = &filter.receiver {
            query = query.filter(deliveries::Column::Receiver.eq(r.as_str()));
        }
        match filter.status.as_deref() {
            Some("delivered") => {
                query = query.filter(deliveries::Column::DeliveredAt.is_not_null())
            }
            Some("pending") => query = query.filter(deliveries::Column::DeliveredAt.is_null()),
            Some("failed") => {
                query = query
                    .filter(deliveries::Column::DeliveredAt.is_null())
                    .filter(deliveries::Column::LastError.is_not_null())
            }
            _ => {}
        }
        Ok(query
            .order_by_desc(deliveries::Column::Id)
            .limit(filter.limit.unwrap_or(100).clamp(1, 1000))
            .all(self.connection())
            .await?
            .into_iter()
            .map(delivery_of)
            .collect())
    }

    async fn replay_delivery(&self, id: i64, now: DateTime<Utc>) -> StoreResult<bool> {
        let done = deliveries::Entity::update_many()
            .col_expr(deliveries::Column::NextAttemptAt, Expr::value(now))
            .col_expr(
                deliveries::Column::DeliveredAt,
                Expr::value(Option::<DateTime<Utc>>::None),
            )
            .filter(deliveries::Column::Id.eq(id))
            .exec(self.connection())
            .await?;
        Ok(done.rows_affected == 1)
    }
}
