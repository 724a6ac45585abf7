//! [`TokenStore`] on sea-orm.

use super::*;
use crate::storage::entities::admin_tokens;
use crate::storage::*;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, EntityTrait, QueryFilter, QueryOrder, Set,
};

fn token_from_row(m: admin_tokens::Model) -> AdminToken {
    AdminToken {
        id: m.id,
        name: m.name,
        created_at: m.created_at,
        last_used_at: m.last_used_at,
    }
}

#[async_trait]
impl TokenStore for SqlStore {
    async fn create_token(&self, name: &str, token_hash: &str) -> StoreResult<AdminToken> {
        let row = admin_tokens::ActiveModel {
            id: Set(uuid::Uuid::new_v4().to_string()),
            name: Set(name.to_owned()),
            token_hash: Set(token_hash.to_owned()),
            created_at: Set(Utc::now()),
            last_used_at: Set(None),
            revoked_at: Set(None),
            admin_id: Set(None),
            role: Set("owner".into()),
            expires_at: Set(None),
            created_by: Set(None),
            last_used_address: Set(None),
        }
        .insert(&self.db)
        .await?;
        Ok(token_from_row(row))
    }

    async fn token_by_hash(&self, token_hash: &str) -> StoreResult<Option<AdminToken>> {
        Ok(admin_tokens::Entity::find()
            .filter(admin_tokens::Column::TokenHash.eq(token_hash))
            .filter(admin_tokens::Column::RevokedAt.is_null())
            .one(&self.db)
            .await?
            .map(token_from_row))
    }

    async fn mark_token_used(&self, id: &str, at: DateTime<Utc>) -> StoreResult<()> {
        let stale = at - chrono::Duration::seconds(TOUCH_INTERVAL_SECS);
        admin_tokens::Entity::update_many()
            .col_expr(admin_tokens::Column::LastUsedAt, Expr::value(at))
            .filter(admin_tokens::Column::Id.eq(id))
            .filter(
                Condition::any()
                    .add(admin_tokens::Column::LastUsedAt.is_null())
                    .add(admin_tokens::Column::LastUsedAt.lt(stale)),
            )
            .exec(&self.db)
            .await?;
        Ok(())
    }

    async fn tokens(&self) -> StoreResult<Vec<AdminToken>> {
        Ok(admin_tokens::Entity::find()
            .filter(admin_tokens::Column::RevokedAt.is_null())
            .order_by_asc(admin_tokens::Column::CreatedAt)
            .all(&self.db)
            .await?
            .into_iter()
            .map(token_from_row)
            .collect())
    }

    async fn revoke_tokens(&self, id_or_name: &str, at: DateTime<Utc>) -> StoreResult<u64> {
        Ok(admin_tokens::Entity::update_many()
            .col_expr(admin_tokens::Column::RevokedAt, Expr::value(at))
            .filter(admin_tokens::Column::RevokedAt.is_null())
            .filter(
                Condition::any()
                    .add(admin_tokens::Column::Id.eq(id_or_name))
                    .add(admin_tokens::Column::Name.eq(id_or_name)),
            )
            .exec(&self.db)
            .await?
            .rows_affected)
    }
}
