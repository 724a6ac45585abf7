use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "directory_sources")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub flavor: String,
    pub url: String,
    pub start_tls: bool,
    pub allow_plaintext: bool,
    pub bind_dn: String,
    pub bind_password_sealed: Vec<u8>,
    pub base_dn: String,
    pub user_filter: String,
    pub group_filter: String,
    pub username_attr: String,
    pub upn_attr: String,
    pub email_attr: String,
    pub display_name_attr: String,
    pub department_attr: String,
    pub group_name_attr: String,
    pub disabled_attr: Option<String>,
    pub disabled_value: Option<String>,
    pub ca_pem: Option<String>,
    pub interval_seconds: i32,
    pub last_sync_at: Option<DateTimeUtc>,
    pub last_sync_status: Option<String>,
    pub last_sync_error: Option<String>,
    pub last_sync_counts: Option<String>,
    pub lease_owner: Option<String>,
    pub lease_until: Option<DateTimeUtc>,
    pub updated_by: String,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
