//! [`AndroidStore`] on sea-orm: the one `android_enterprises` row.

use super::events::insert_event;
use super::*;
use crate::storage::entities::android_enterprises as rows;
use crate::storage::*;
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set};

/// The row's fixed id: one office, one enterprise.
const ROW_ID: &str = "current";

fn from_model(m: rows::Model) -> AndroidEnterpriseRow {
    AndroidEnterpriseRow {
        project_id: m.project_id,
        client_email: m.client_email,
        service_account_sealed: m.service_account_sealed,
        pubsub_topic: m.pubsub_topic,
        pubsub_subscription: m.pubsub_subscription,
        signup_url_name: m.signup_url_name,
        signup_url: m.signup_url,
        signup_secret_hash: m.signup_secret_hash,
        enterprise_name: m.enterprise_name,
        enterprise_display_name: m.enterprise_display_name,
        // Written by us as a JSON array; anything else reads as none.
        notification_types: serde_json::from_str(&m.notification_types).unwrap_or_default(),
        connected_by: m.connected_by,
        connected_at: m.connected_at,
        enterprise_created_at: m.enterprise_created_at,
        last_sync_at: m.last_sync_at,
        last_pull_at: m.last_pull_at,
        last_error: m.last_error,
        last_error_at: m.last_error_at,
    }
}

#[async_trait]
impl AndroidStore for SqlStore {
    async fn android_enterprise(&self) -> StoreResult<Option<AndroidEnterpriseRow>> {
        Ok(rows::Entity::find_by_id(ROW_ID)
            .one(self.connection())
            .await?
            .map(from_model))
    }

    async fn replace_android_enterprise(
        &self,
        row: AndroidEnterpriseRow,
        event: NewEvent,
    ) -> StoreResult<()> {
        let txn = self.begin_write().await?;
        rows::Entity::delete_by_id(ROW_ID).exec(&txn).await?;
        rows::ActiveModel {
            id: Set(ROW_ID.to_owned()),
            project_id: Set(row.project_id),
            client_email: Set(row.client_email),
            service_account_sealed: Set(row.service_account_sealed),
            pubsub_topic: Set(row.pubsub_topic),
            pubsub_subscription: Set(row.pubsub_subscription),
            signup_url_name: Set(row.signup_url_name),
            signup_url: Set(row.signup_url),
            signup_secret_hash: Set(row.signup_secret_hash),
            enterprise_name: Set(row.enterprise_name),
            enterprise_display_name: Set(row.enterprise_display_name),
            notification_types: Set(
                serde_json::to_string(&row.notification_types).unwrap_or_else(|_| "[]".into())
            ),
            connected_by: Set(row.connected_by),
            connected_at: Set(row.connected_at),
            enterprise_created_at: Set(row.enterprise_created_at),
            last_sync_at: Set(row.last_sync_at),
            last_pull_at: Set(row.last_pull_at),
            last_error: Set(row.last_error),
            last_error_at: Set(row.last_error_at),
        }
        .insert(&txn)
        .await?;
        insert_event(&txn, event).await?;
        txn.commit().await?;
        Ok(())
    }

    async fn finish_android_signup(
        &self,
        signup_url_name: &str,
        enterprise_name: &str,
        display_name: Option<&str>,
        notification_types: &[String],
        at: DateTime<Utc>,
        event: NewEvent,
    ) -> StoreResult<()> {
        let txn = self.begin_write().await?;
        // Conditional on the sign-up still pending: two callbacks racing (a reload of
        // the browser tab) finish it once.
        let done = rows::Entity::update_many()
            .col_expr(rows::Column::EnterpriseName, Expr::value(enterprise_name))
            .col_expr(
                rows::Column::EnterpriseDisplayName,
                Expr::value(display_name.map(str::to_owned)),
            )
            .col_expr(
                rows::Column::NotificationTypes,
                Expr::value(serde_json::to_string(notification_types).unwrap_or_default()),
            )
            .col_expr(rows::Column::EnterpriseCreatedAt, Expr::value(at))
            .col_expr(
                rows::Column::SignupSecretHash,
                Expr::value(Option::<String>::None),
            )
            .col_expr(rows::Column::LastError, Expr::value(Option::<String>::None))
            .col_expr(
                rows::Column::LastErrorAt,
                Expr::value(Option::<DateTime<Utc>>::None),
            )
            .filter(rows::Column::Id.eq(ROW_ID))
            .filter(rows::Column::SignupUrlName.eq(signup_url_name))
            .filter(rows::Column::EnterpriseName.is_null())
            .exec(&txn)
            .await?;
        if done.rows_affected != 1 {
            return Err(StoreError::Conflict(
                "this sign-up is no longer pending: it finished already or a newer `mdm android connect` replaced it".into(),
            ));
        }
        insert_event(&txn, event).await?;
        txn.commit().await?;
        Ok(())
    }

    async fn upsert_android_device(
        &self,
        record: AndroidDeviceRecord,
        now: DateTime<Utc>,
    ) -> StoreResult<AndroidUpsert> {
        super::android_devices::upsert(self, record, now).await
    }

    async fn android_device(&self, device_id: &str) -> StoreResult<Option<AndroidDeviceState>> {
        super::android_devices::by_id(self, device_id).await
    }

    async fn android_device_by_name(&self, name: &str) -> StoreResult<Option<AndroidDeviceState>> {
        super::android_devices::by_name(self, name).await
    }

    async fn android_command_sent(
        &self,
        uuid: &str,
        device_id: &str,
        operation: &str,
        at: DateTime<Utc>,
    ) -> StoreResult<()> {
        super::android_commands::sent(self, uuid, device_id, operation, at).await
    }

    async fn android_operation(&self, name: &str) -> StoreResult<Option<(String, String)>> {
        super::android_commands::operation(self, name).await
    }

    async fn open_android_operations(&self, limit: u64) -> StoreResult<Vec<String>> {
        super::android_commands::open(self, limit).await
    }

    async fn finish_android_command(
        &self,
        uuid: &str,
        status: crate::domain::CommandStatus,
        result: serde_json::Value,
        at: DateTime<Utc>,
        event: NewEvent,
    ) -> StoreResult<bool> {
        super::android_commands::finish(self, uuid, status, result, at, event).await
    }

    async fn android_usage_watermark(&self, device_id: &str) -> StoreResult<Option<DateTime<Utc>>> {
        super::android_devices::usage_watermark(self, device_id).await
    }

    async fn record_android_usage(
        &self,
        device_id: &str,
        previous: Option<DateTime<Utc>>,
        watermark: DateTime<Utc>,
        events: Vec<NewEvent>,
    ) -> StoreResult<bool> {
        super::android_devices::record_usage(self, device_id, previous, watermark, events).await
    }

    async fn set_android_policy_name(&self, device_id: &str, name: &str) -> StoreResult<()> {
        super::android_devices::set_policy_name(self, device_id, name).await
    }

    async fn android_policy(&self, name: &str) -> StoreResult<Option<(String, Option<i64>)>> {
        super::android_devices::policy(self, name).await
    }

    async fn put_android_policy(
        &self,
        name: &str,
        content_hash: &str,
        version: Option<i64>,
        at: DateTime<Utc>,
    ) -> StoreResult<()> {
        super::android_devices::put_policy(self, name, content_hash, version, at).await
    }

    async fn android_healthy(&self, what: AndroidHealth, at: DateTime<Utc>) -> StoreResult<()> {
        let column = match what {
            AndroidHealth::Synced => rows::Column::LastSyncAt,
            AndroidHealth::Pulled => rows::Column::LastPullAt,
        };
        rows::Entity::update_many()
            .col_expr(column, Expr::value(at))
            .col_expr(rows::Column::LastError, Expr::value(Option::<String>::None))
            .col_expr(
                rows::Column::LastErrorAt,
                Expr::value(Option::<DateTime<Utc>>::None),
            )
            .filter(rows::Column::Id.eq(ROW_ID))
            .exec(self.connection())
            .await?;
        Ok(())
    }

    async fn android_failed(
        &self,
        message: &str,
        at: DateTime<Utc>,
        event: Option<NewEvent>,
    ) -> StoreResult<bool> {
        let txn = self.begin_write().await?;
        let changed = rows::Entity::update_many()
            .col_expr(rows::Column::LastError, Expr::value(message))
            .col_expr(rows::Column::LastErrorAt, Expr::value(at))
            .filter(rows::Column::Id.eq(ROW_ID))
            .filter(
                rows::Column::LastError
                    .is_null()
                    .or(rows::Column::LastError.ne(message)),
            )
            .exec(&txn)
            .await?;
        let new = changed.rows_affected == 1;
        if let (true, Some(event)) = (new, event) {
            insert_event(&txn, event).await?;
        }
        txn.commit().await?;
        Ok(new)
    }
}
