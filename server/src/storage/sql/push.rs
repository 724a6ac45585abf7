//! The sea-orm implementation of [`PushStore`].

use super::*;
use crate::domain::CommandStatus;
use crate::storage::entities::{commands, devices, push_attempts, push_certificates};
use crate::storage::*;
use sea_orm::sea_query::{Expr, Query};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    Set,
};

const BATCH: usize = 500;

fn cert_from_row(m: push_certificates::Model) -> PushCertificateRow {
    PushCertificateRow {
        id: m.id,
        topic: m.topic,
        subject: m.subject,
        fingerprint: m.fingerprint,
        certificate_pem: m.certificate_pem,
        private_key_sealed: m.private_key_sealed,
        not_before: m.not_before,
        not_after: m.not_after,
        uploaded_by: m.uploaded_by,
        uploaded_at: m.uploaded_at,
    }
}

#[async_trait]
impl PushStore for SqlStore {
    async fn active_push_certificate(&self) -> StoreResult<Option<PushCertificateRow>> {
        Ok(push_certificates::Entity::find()
            .filter(push_certificates::Column::ReplacedAt.is_null())
            .order_by_desc(push_certificates::Column::UploadedAt)
            .one(self.connection())
            .await?
            .map(cert_from_row))
    }

    async fn replace_push_certificate(&self, row: PushCertificateRow) -> StoreResult<()> {
        let txn = self.begin_write().await?;
        push_certificates::Entity::update_many()
            .col_expr(
                push_certificates::Column::ReplacedAt,
                Expr::value(row.uploaded_at),
            )
            .filter(push_certificates::Column::ReplacedAt.is_null())
            .exec(&txn)
            .await?;
        push_certificates::ActiveModel {
            id: Set(row.id),
            topic: Set(row.topic),
            subject: Set(row.subject),
            fingerprint: Set(row.fingerprint),
            certificate_pem: Set(row.certificate_pem),
            private_key_sealed: Set(row.private_key_sealed),
            not_before: Set(row.not_before),
            not_after: Set(row.not_after),
            uploaded_by: Set(row.uploaded_by),
            uploaded_at: Set(row.uploaded_at),
            replaced_at: Set(None),
        }
        .insert(&txn)
        .await?;
        txn.commit().await?;
        Ok(())
    }

    async fn push_addresses(&self, device_ids: &[String]) -> StoreResult<Vec<PushAddress>> {
        let mut out = Vec::with_capacity(device_ids.len());
        for chunk in device_ids.chunks(1000) {
            let rows: Vec<(
                String,
                Option<String>,
                Option<String>,
                Option<DateTime<Utc>>,
            )> = devices::Entity::find()
                .select_only()
                .column(devices::Column::Id)
                .column(devices::Column::PushToken)
                .column(devices::Column::PushMagic)
                .column(devices::Column::PushTokenInvalidAt)
                .filter(devices::Column::Id.is_in(chunk.iter().cloned()))
                .into_tuple()
                .all(self.connection())
                .await?;
            out.extend(
                rows.into_iter()
                    .map(|(device_id, push_token, push_magic, invalid)| PushAddress {
                        device_id,
                        push_token,
                        push_magic,
                        token_invalid: invalid.is_some(),
                    }),
            );
        }
        Ok(out)
    }

    async fn record_push_attempts(&self, attempts: Vec<PushAttemptRecord>) -> StoreResult<()> {
        if attempts.is_empty() {
            return Ok(());
        }
        let txn = self.begin_write().await?;
        let latest = attempts
            .iter()
            .map(|a| a.attempted_at)
            .max()
            .unwrap_or_else(Utc::now);
        let mut ids: Vec<String> = attempts.iter().map(|a| a.device_id.clone()).collect();
        ids.sort();
        ids.dedup();
        for chunk in attempts.chunks(BATCH) {
            push_attempts::Entity::insert_many(chunk.iter().map(|a| push_attempts::ActiveModel {
                id: sea_orm::NotSet,
                device_id: Set(a.device_id.clone()),
                attempted_at: Set(a.attempted_at),
                attempt: Set(a.attempt),
                status: Set(a.status),
                reason: Set(a.reason.clone()),
                apns_id: Set(a.apns_id.clone()),
            }))
            .exec(&txn)
            .await?;
        }
        for chunk in ids.chunks(1000) {
            devices::Entity::update_many()
                .col_expr(devices::Column::LastPushAt, Expr::value(latest))
                .filter(devices::Column::Id.is_in(chunk.iter().cloned()))
                .exec(&txn)
                .await?;
        }
        txn.commit().await?;
        Ok(())
    }

    async fn mark_push_tokens_invalid(
        &self,
        device_ids: &[String],
        at: DateTime<Utc>,
    ) -> StoreResult<()> {
        for chunk in device_ids.chunks(1000) {
            devices::Entity::update_many()
                .col_expr(devices::Column::PushTokenInvalidAt, Expr::value(at))
                .filter(devices::Column::Id.is_in(chunk.iter().cloned()))
                .exec(self.connection())
                .await?;
        }
        Ok(())
    }

    async fn devices_to_repush(
        &self,
        since: DateTime<Utc>,
        limit: u64,
    ) -> StoreResult<Vec<String>> {
        // Devices with an open command: found through the (status, expires_at) index,
        // so the cost follows the open queue, not history.
        let open = Query::select()
            .column(commands::Column::DeviceId)
            .from(commands::Entity)
            .and_where(commands::Column::Status.is_in([
                CommandStatus::Pending.as_str(),
                CommandStatus::Sent.as_str(),
            ]))
            .to_owned();
        let ids: Vec<String> = devices::Entity::find()
            .select_only()
            .column(devices::Column::Id)
            .filter(devices::Column::Id.in_subquery(open))
            .filter(devices::Column::Enrolled.eq(true))
            .filter(devices::Column::PushToken.is_not_null())
            .filter(devices::Column::PushTokenInvalidAt.is_null())
            .filter(
                Condition::any()
                    .add(devices::Column::LastSeenAt.is_null())
                    .add(devices::Column::LastSeenAt.lt(since)),
            )
            .filter(
                Condition::any()
                    .add(devices::Column::LastPushAt.is_null())
                    .add(devices::Column::LastPushAt.lt(since)),
            )
            .limit(limit)
            .into_tuple()
            .all(self.connection())
            .await?;
        Ok(ids)
    }

    async fn push_attempts(
        &self,
        device_id: &str,
        limit: u64,
    ) -> StoreResult<Vec<PushAttemptRecord>> {
        Ok(push_attempts::Entity::find()
            .filter(push_attempts::Column::DeviceId.eq(device_id))
            .order_by_desc(push_attempts::Column::Id)
            .limit(limit.clamp(1, 1000))
            .all(self.connection())
            .await?
            .into_iter()
            .map(|m| PushAttemptRecord {
                device_id: m.device_id,
                attempted_at: m.attempted_at,
                attempt: m.attempt,
                status: m.status,
                reason: m.reason,
                apns_id: m.apns_id,
            })
            .collect())
    }

    async fn prune_push_attempts(&self, before: DateTime<Utc>) -> StoreResult<u64> {
        Ok(push_attempts::Entity::delete_many()
            .filter(push_attempts::Column::AttemptedAt.lt(before))
            .exec(self.connection())
            .await?
            .rows_affected)
    }
}
