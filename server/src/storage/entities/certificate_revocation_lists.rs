use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "certificate_revocation_lists")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub ca: String,
    pub number: i64,
    pub der: Vec<u8>,
    pub this_update: DateTimeUtc,
    pub next_update: DateTimeUtc,
    pub covers_until: Option<DateTimeUtc>,
    pub entries: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
