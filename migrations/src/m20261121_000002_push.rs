//! Push: the MDM push certificate, every push attempt, and per-device push state.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum PushCertificates {
    Table,
    Id,
    Topic,
    Subject,
    Fingerprint,
    CertificatePem,
    PrivateKeySealed,
    NotBefore,
    NotAfter,
    UploadedBy,
    UploadedAt,
    ReplacedAt,
}

#[derive(DeriveIden)]
enum PushAttempts {
    Table,
    Id,
    DeviceId,
    AttemptedAt,
    Attempt,
    Status,
    Reason,
    ApnsId,
}

#[derive(DeriveIden)]
enum Devices {
    Table,
    PushTokenInvalidAt,
    LastPushAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(PushCertificates::Table)
                    .col(
                        ColumnDef::new(PushCertificates::Id)
                            .string_len(36)
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(PushCertificates::Topic)
                            .string_len(255)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(PushCertificates::Subject)
                            .string_len(1024)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(PushCertificates::Fingerprint)
                            .string_len(64)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(PushCertificates::CertificatePem)
                            .text()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(PushCertificates::PrivateKeySealed)
                            .binary()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(PushCertificates::NotBefore)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(PushCertificates::NotAfter)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(PushCertificates::UploadedBy)
                            .string_len(255)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(PushCertificates::UploadedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    // NULL for the certificate in use; older ones are kept for the record.
                    .col(
                        ColumnDef::new(PushCertificates::ReplacedAt)
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(PushAttempts::Table)
                    .col(
                        ColumnDef::new(PushAttempts::Id)
                            .big_integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(PushAttempts::DeviceId)
                            .string_len(36)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(PushAttempts::AttemptedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(ColumnDef::new(PushAttempts::Attempt).integer().not_null())
                    .col(ColumnDef::new(PushAttempts::Status).integer().null())
                    .col(ColumnDef::new(PushAttempts::Reason).string_len(512).null())
                    .col(ColumnDef::new(PushAttempts::ApnsId).string_len(64).null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("push_attempts_device")
                    .table(PushAttempts::Table)
                    .col(PushAttempts::DeviceId)
                    .col(PushAttempts::Id)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("push_attempts_attempted_at")
                    .table(PushAttempts::Table)
                    .col(PushAttempts::AttemptedAt)
                    .to_owned(),
            )
            .await?;
        // SQLite takes one column per ALTER TABLE.
        for column in [Devices::PushTokenInvalidAt, Devices::LastPushAt] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Devices::Table)
                        .add_column(ColumnDef::new(column).timestamp_with_time_zone().null())
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in [Devices::PushTokenInvalidAt, Devices::LastPushAt] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Devices::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .drop_table(Table::drop().table(PushAttempts::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(PushCertificates::Table).to_owned())
            .await
    }
}
