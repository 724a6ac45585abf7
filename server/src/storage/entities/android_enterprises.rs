use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "android_enterprises")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub project_id: String,
    pub client_email: String,
    pub service_account_sealed: Vec<u8>,
    pub pubsub_topic: Option<String>,
    pub pubsub_subscription: Option<String>,
    pub signup_url_name: Option<String>,
    pub signup_url: Option<String>,
    pub signup_secret_hash: Option<String>,
    pub enterprise_name: Option<String>,
    pub enterprise_display_name: Option<String>,
    pub notification_types: String,
    pub connected_by: String,
    pub connected_at: DateTimeUtc,
    pub enterprise_created_at: Option<DateTimeUtc>,
    pub last_sync_at: Option<DateTimeUtc>,
    pub last_pull_at: Option<DateTimeUtc>,
    pub last_error: Option<String>,
    pub last_error_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
