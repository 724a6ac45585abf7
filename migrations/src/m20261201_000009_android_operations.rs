//! AMAPI long-running operations of Android commands: `devices.issueCommand` answers
//! an operation, and the COMMAND notification (or `operations.get`) names it again
//! when the phone has run the command. This maps it to our command in `commands`
//! (platform-neutral: status and result are kept there, as for Apple devices).

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum AndroidOperations {
    Table,
    Name,
    CommandUuid,
    DeviceId,
    CreatedAt,
    DoneAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        use AndroidOperations as T;
        manager
            .create_table(
                Table::create()
                    .table(T::Table)
                    .col(
                        ColumnDef::new(T::Name)
                            .string_len(512)
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(T::CommandUuid)
                            .string_len(64)
                            .not_null()
                            .unique_key(),
                    )
                    .col(ColumnDef::new(T::DeviceId).string_len(36).not_null())
                    .col(
                        ColumnDef::new(T::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(ColumnDef::new(T::DoneAt).timestamp_with_time_zone().null())
                    .to_owned(),
            )
            .await?;
        // The sync asks Google about operations not done yet.
        manager
            .create_index(
                Index::create()
                    .name("idx_android_operations_open")
                    .table(T::Table)
                    .col(T::DoneAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(AndroidOperations::Table).to_owned())
            .await
    }
}
