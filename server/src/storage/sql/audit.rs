//! [`AdminStore`] on sea-orm, second half: the audit trail (an append-only hash chain
//! whose head row every append locks) and off-boardings.

use super::events::insert_event;
use super::*;
use crate::storage::entities::{audit_head, audit_log, offboarding_devices, offboardings};
use crate::storage::*;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set,
};

/// Truncated to microseconds before it is stored and hashed: what is read back hashes
/// the same on both engines.
fn micros(at: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(at.timestamp_micros()).unwrap_or(at)
}

fn corrupt(message: &str) -> StoreError {
    StoreError::Db(sea_orm::DbErr::Custom(message.to_owned()))
}

pub(super) async fn audit_cursor(store: &SqlStore) -> StoreResult<i64> {
    Ok(audit_head::Entity::find_by_id(1)
        .one(store.connection())
        .await?
        .map_or(0, |h| h.last_event_id))
}

pub(super) async fn audit_head(store: &SqlStore) -> StoreResult<(i64, String)> {
    let head = audit_head::Entity::find_by_id(1)
        .one(store.connection())
        .await?
        .ok_or_else(|| corrupt("the audit trail has no chain head"))?;
    Ok((head.last_seq, head.last_hash))
}

pub(super) async fn audit_head_state(store: &SqlStore) -> StoreResult<AuditHeadState> {
    let head = audit_head::Entity::find_by_id(1)
        .one(store.connection())
        .await?
        .ok_or_else(|| corrupt("the audit trail has no chain head"))?;
    Ok(AuditHeadState {
        last_seq: head.last_seq,
        last_hash: head.last_hash,
        anchored_seq: head.anchored_seq,
        anchored_at: head.anchored_at,
    })
}

pub(super) async fn record_audit_anchor(
    store: &SqlStore,
    seq: i64,
    previous_anchored_seq: i64,
    at: DateTime<Utc>,
    event: NewEvent,
) -> StoreResult<bool> {
    let txn = store.begin_write().await?;
    // Compare and set: of instances that read the same anchor, one publishes.
    let claimed = audit_head::Entity::update_many()
        .col_expr(audit_head::Column::AnchoredSeq, Expr::value(seq))
        .col_expr(audit_head::Column::AnchoredAt, Expr::value(micros(at)))
        .filter(audit_head::Column::Id.eq(1))
        .filter(audit_head::Column::AnchoredSeq.eq(previous_anchored_seq))
        .exec(&txn)
        .await?
        .rows_affected
        == 1;
    if !claimed {
        return Ok(false);
    }
    insert_event(&txn, event).await?;
    txn.commit().await?;
    Ok(true)
}

pub(super) async fn audit_candidate_events(
    store: &SqlStore,
    after_id: i64,
    limit: u64,
) -> StoreResult<Vec<Event>> {
    use crate::storage::entities::events;
    use sea_orm::Condition;
    let rows = events::Entity::find()
        .filter(events::Column::Id.gt(after_id))
        .filter(
            Condition::any()
                .add(events::Column::Kind.starts_with("admin."))
                .add(events::Column::Kind.starts_with("auth."))
                .add(
                    Condition::all()
                        .add(events::Column::Actor.is_not_null())
                        .add(events::Column::Actor.ne("device")),
                ),
        )
        .order_by_asc(events::Column::Id)
        .limit(limit)
        .all(store.connection())
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

pub(super) async fn audited_event_ids(store: &SqlStore, ids: &[i64]) -> StoreResult<Vec<i64>> {
    let mut out = Vec::new();
    for chunk in ids.chunks(LOOKUP_BATCH) {
        out.extend(
            audit_log::Entity::find()
                .select_only()
                .column(audit_log::Column::EventId)
                .filter(audit_log::Column::EventId.is_in(chunk.to_vec()))
                .into_tuple::<Option<i64>>()
                .all(store.connection())
                .await?
                .into_iter()
                .flatten(),
        );
    }
    Ok(out)
}

pub(super) async fn append_audit(
    store: &SqlStore,
    records: Vec<NewAuditRecord>,
    cursor: i64,
    key: &AuditKey,
) -> StoreResult<u64> {
    let txn = store.begin_write().await?;
    // The head is locked for the transaction (PostgreSQL: FOR UPDATE; SQLite holds
    // the write lock since BEGIN): appends from several instances never fork.
    let mut query = audit_head::Entity::find_by_id(1);
    if store.backend() == sea_orm::DbBackend::Postgres {
        query = query.lock_exclusive();
    }
    let head = query
        .one(&txn)
        .await?
        .ok_or_else(|| corrupt("the audit trail has no chain head"))?;
    // Another instance may have appended some of these since they were read.
    let ids: Vec<i64> = records.iter().filter_map(|r| r.event_id).collect();
    let mut present = std::collections::HashSet::new();
    for chunk in ids.chunks(LOOKUP_BATCH) {
        present.extend(
            audit_log::Entity::find()
                .select_only()
                .column(audit_log::Column::EventId)
                .filter(audit_log::Column::EventId.is_in(chunk.to_vec()))
                .into_tuple::<Option<i64>>()
                .all(&txn)
                .await?
                .into_iter()
                .flatten(),
        );
    }
    let mut seq = head.last_seq;
    let mut prev = head.last_hash.clone();
    let mut appended = 0;
    for r in records {
        if r.event_id.is_some_and(|id| !present.insert(id)) {
            continue;
        }
        seq += 1;
        let at = micros(r.at);
        let hash = audit_chain_mac(
            key,
            &prev,
            seq,
            r.event_id,
            at,
            &r.actor,
            r.address.as_deref(),
            &r.action,
            &r.outcome,
            &r.details,
        );
        audit_log::ActiveModel {
            seq: Set(seq),
            event_id: Set(r.event_id),
            at: Set(at),
            actor: Set(r.actor),
            address: Set(r.address),
            action: Set(r.action),
            outcome: Set(r.outcome),
            details: Set(r.details),
            prev_hash: Set(prev.clone()),
            hash: Set(hash.clone()),
            chain_version: Set(AUDIT_CHAIN_HMAC),
        }
        .insert(&txn)
        .await?;
        prev = hash;
        appended += 1;
    }
    audit_head::ActiveModel {
        id: Set(1),
        last_seq: Set(seq),
        last_hash: Set(prev),
        last_event_id: Set(head.last_event_id.max(cursor)),
        anchored_seq: Set(head.anchored_seq),
        anchored_at: Set(head.anchored_at),
    }
    .update(&txn)
    .await?;
    txn.commit().await?;
    Ok(appended)
}

pub(super) async fn audit_records(
    store: &SqlStore,
    after_seq: i64,
    limit: u64,
) -> StoreResult<Vec<AuditRecord>> {
    Ok(audit_log::Entity::find()
        .filter(audit_log::Column::Seq.gt(after_seq))
        .order_by_asc(audit_log::Column::Seq)
        .limit(limit)
        .all(store.connection())
        .await?
        .into_iter()
        .map(|m| AuditRecord {
            seq: m.seq,
            event_id: m.event_id,
            at: m.at,
            actor: m.actor,
            address: m.address,
            action: m.action,
            outcome: m.outcome,
            details: serde_json::from_str(&m.details)
                .unwrap_or_else(|_| serde_json::Value::String(m.details.clone())),
            details_raw: m.details,
            prev_hash: m.prev_hash,
            hash: m.hash,
            chain_version: m.chain_version,
        })
        .collect())
}

pub(super) async fn create_offboarding(
    store: &SqlStore,
    row: OffboardingRow,
    event: NewEvent,
) -> StoreResult<()> {
    let txn = store.begin_write().await?;
    offboardings::ActiveModel {
        id: Set(row.id.clone()),
        username: Set(row.username),
        requested_by: Set(row.requested_by),
        requested_at: Set(row.requested_at),
        status: Set(row.status),
        completed_at: Set(row.completed_at),
    }
    .insert(&txn)
    .await?;
    for d in row.devices {
        offboarding_devices::ActiveModel {
            offboarding_id: Set(row.id.clone()),
            device_id: Set(d.device_id),
            platform: Set(d.platform),
            action: Set(d.action),
            status: Set(d.status),
            command_uuid: Set(d.command_uuid),
            detail: Set(d.detail),
            updated_at: Set(d.updated_at),
        }
        .insert(&txn)
        .await?;
    }
    insert_event(&txn, event).await?;
    txn.commit().await?;
    Ok(())
}

pub(super) async fn update_offboarding_device(
    store: &SqlStore,
    offboarding_id: &str,
    d: OffboardingDeviceRow,
) -> StoreResult<()> {
    offboarding_devices::Entity::update_many()
        .col_expr(offboarding_devices::Column::Status, Expr::value(d.status))
        .col_expr(
            offboarding_devices::Column::CommandUuid,
            Expr::value(d.command_uuid),
        )
        .col_expr(offboarding_devices::Column::Detail, Expr::value(d.detail))
        .col_expr(
            offboarding_devices::Column::UpdatedAt,
            Expr::value(d.updated_at),
        )
        .filter(offboarding_devices::Column::OffboardingId.eq(offboarding_id))
        .filter(offboarding_devices::Column::DeviceId.eq(d.device_id))
        .exec(store.connection())
        .await?;
    Ok(())
}

pub(super) async fn set_offboarding_status(
    store: &SqlStore,
    id: &str,
    status: &str,
    completed_at: Option<DateTime<Utc>>,
) -> StoreResult<bool> {
    Ok(offboardings::Entity::update_many()
        .col_expr(offboardings::Column::Status, Expr::value(status))
        .col_expr(offboardings::Column::CompletedAt, Expr::value(completed_at))
        .filter(offboardings::Column::Id.eq(id))
        .filter(offboardings::Column::Status.eq("in_progress"))
        .exec(store.connection())
        .await?
        .rows_affected
        == 1)
}

async fn with_devices(
    store: &SqlStore,
    rows: Vec<offboardings::Model>,
) -> StoreResult<Vec<OffboardingRow>> {
    let ids: Vec<String> = rows.iter().map(|o| o.id.clone()).collect();
    let mut devices: Vec<offboarding_devices::Model> = Vec::new();
    for chunk in ids.chunks(LOOKUP_BATCH) {
        devices.extend(
            offboarding_devices::Entity::find()
                .filter(offboarding_devices::Column::OffboardingId.is_in(chunk.to_vec()))
                .order_by_asc(offboarding_devices::Column::DeviceId)
                .all(store.connection())
                .await?,
        );
    }
    Ok(rows
        .into_iter()
        .map(|o| OffboardingRow {
            devices: devices
                .iter()
                .filter(|d| d.offboarding_id == o.id)
                .map(|d| OffboardingDeviceRow {
                    device_id: d.device_id.clone(),
                    platform: d.platform.clone(),
                    action: d.action.clone(),
                    status: d.status.clone(),
                    command_uuid: d.command_uuid.clone(),
                    detail: d.detail.clone(),
                    updated_at: d.updated_at,
                })
                .collect(),
            id: o.id,
            username: o.username,
            requested_by: o.requested_by,
            requested_at: o.requested_at,
            status: o.status,
            completed_at: o.completed_at,
        })
        .collect())
}

pub(super) async fn offboarding(store: &SqlStore, id: &str) -> StoreResult<Option<OffboardingRow>> {
    let Some(row) = offboardings::Entity::find_by_id(id)
        .one(store.connection())
        .await?
    else {
        return Ok(None);
    };
    Ok(with_devices(store, vec![row]).await?.pop())
}

pub(super) async fn offboardings(
    store: &SqlStore,
    open_only: bool,
    usernames: Option<&[String]>,
) -> StoreResult<Vec<OffboardingRow>> {
    let mut query = offboardings::Entity::find();
    if open_only {
        query = query.filter(offboardings::Column::Status.eq("in_progress"));
    }
    if let Some(names) = usernames {
        if names.is_empty() {
            return Ok(Vec::new());
        }
        query = query.filter(offboardings::Column::Username.is_in(names.to_vec()));
    }
    let rows = query
        .order_by_desc(offboardings::Column::RequestedAt)
        .limit(1000)
        .all(store.connection())
        .await?;
    with_devices(store, rows).await
}
