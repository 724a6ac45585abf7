use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "offboarding_devices")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub offboarding_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub device_id: String,
    pub platform: String,
    pub action: String,
    pub status: String,
    pub command_uuid: Option<String>,
    pub detail: Option<String>,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
