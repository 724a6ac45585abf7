//! Android security logs (USAGE_LOGS): `android_devices.usage_log_watermark` is the
//! newest event time already turned into events for the device. Pub/Sub delivers a
//! batch at least once: a batch seen again has nothing newer than the watermark and
//! becomes no second set of events.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum AndroidDevices {
    Table,
    UsageLogWatermark,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(AndroidDevices::Table)
                    .add_column(
                        ColumnDef::new(AndroidDevices::UsageLogWatermark)
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(AndroidDevices::Table)
                    .drop_column(AndroidDevices::UsageLogWatermark)
                    .to_owned(),
            )
            .await
    }
}
