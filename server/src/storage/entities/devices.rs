use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "devices")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub platform: String,
    pub udid: Option<String>,
    pub serial_number: Option<String>,
    pub imei: Option<String>,
    pub model: Option<String>,
    pub model_name: Option<String>,
    pub product_name: Option<String>,
    pub os_family: String,
    pub os_version: Option<String>,
    pub build_version: Option<String>,
    pub device_name: Option<String>,
    pub topic: Option<String>,
    pub push_token: Option<String>,
    pub push_magic: Option<String>,
    pub unlock_token: Option<Vec<u8>>,
    pub bootstrap_token: Option<Vec<u8>>,
    pub awaiting_configuration: bool,
    pub identity_fingerprint: Option<String>,
    pub identity_subject: Option<String>,
    pub identity_not_after: Option<String>,
    pub enrolled: bool,
    pub enrolled_at: Option<DateTimeUtc>,
    pub unenrolled_at: Option<DateTimeUtc>,
    pub last_seen_at: Option<DateTimeUtc>,
    pub hardware_encrypted: Option<bool>,
    pub passcode_present: Option<bool>,
    pub passcode_compliant: Option<bool>,
    pub installed_profiles: Option<String>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub push_token_invalid_at: Option<DateTimeUtc>,
    pub last_push_at: Option<DateTimeUtc>,
    pub enrollment_id: Option<String>,
    pub assigned_user: Option<String>,
    pub assigned_group: Option<String>,
    pub released_at: Option<DateTimeUtc>,
    pub reenrollment_approved_until: Option<DateTimeUtc>,
    pub reenrollment_keep_queue: bool,
    pub reported_serial_number: Option<String>,
    pub identity_revoked_at: Option<DateTimeUtc>,
    pub identity_revocation_reason: Option<String>,
    pub retired_at: Option<DateTimeUtc>,
    pub compliant: Option<bool>,
    pub compliance_reasons: Option<String>,
    pub compliance_checked_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
