use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "android_devices")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub device_id: String,
    pub name: String,
    pub management_mode: Option<String>,
    pub ownership: Option<String>,
    pub state: Option<String>,
    pub applied_state: Option<String>,
    pub api_level: Option<i32>,
    pub security_patch_level: Option<String>,
    pub policy_name: Option<String>,
    pub applied_policy_name: Option<String>,
    pub applied_policy_version: Option<i64>,
    pub policy_compliant: Option<bool>,
    pub non_compliance: Option<String>,
    pub security_posture: Option<String>,
    pub encryption_status: Option<String>,
    pub last_status_report_at: Option<DateTimeUtc>,
    pub observed_at: DateTimeUtc,
    pub facts: String,
    pub updated_at: DateTimeUtc,
    pub usage_log_watermark: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
