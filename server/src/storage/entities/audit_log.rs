use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "audit_log")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub seq: i64,
    pub event_id: Option<i64>,
    pub at: DateTimeUtc,
    pub actor: String,
    pub address: Option<String>,
    pub action: String,
    pub outcome: String,
    pub details: String,
    pub prev_hash: String,
    pub hash: String,
    /// 1: SHA-256 (before the chain was keyed), 2: HMAC-SHA256 under the audit key.
    pub chain_version: i16,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
