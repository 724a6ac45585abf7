//! Devices, their command queue, the event log and admin tokens.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Devices {
    Table,
    Id,
    Platform,
    Udid,
    SerialNumber,
    Imei,
    Model,
    ModelName,
    ProductName,
    OsFamily,
    OsVersion,
    BuildVersion,
    DeviceName,
    Topic,
    PushToken,
    PushMagic,
    UnlockToken,
    BootstrapToken,
    AwaitingConfiguration,
    IdentityFingerprint,
    IdentitySubject,
    IdentityNotAfter,
    Enrolled,
    EnrolledAt,
    UnenrolledAt,
    LastSeenAt,
    HardwareEncrypted,
    PasscodePresent,
    PasscodeCompliant,
    InstalledProfiles,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum UserChannels {
    Table,
    DeviceId,
    UserId,
    UserShortName,
    UserLongName,
    PushToken,
    PushMagic,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Commands {
    Table,
    Seq,
    Uuid,
    DeviceId,
    RequestType,
    Payload,
    PayloadSealed,
    Priority,
    Status,
    CreatedBy,
    CreatedAt,
    UpdatedAt,
    ExpiresAt,
    DeliveredAt,
    CompletedAt,
    DeliveryCount,
    NotNowCount,
    ResultRaw,
    Result,
}

#[derive(DeriveIden)]
enum Events {
    Table,
    Id,
    OccurredAt,
    Kind,
    Severity,
    DeviceId,
    Actor,
    Message,
    Data,
}

#[derive(DeriveIden)]
enum AdminTokens {
    Table,
    Id,
    Name,
    TokenHash,
    CreatedAt,
    LastUsedAt,
    RevokedAt,
}

fn ts(col: impl IntoIden) -> ColumnDef {
    ColumnDef::new(col).timestamp_with_time_zone().to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Devices::Table)
                    .col(ColumnDef::new(Devices::Id).string_len(36).not_null().primary_key())
                    .col(ColumnDef::new(Devices::Platform).string_len(16).not_null())
                    .col(ColumnDef::new(Devices::Udid).string_len(128).null())
                    .col(ColumnDef::new(Devices::SerialNumber).string_len(64).null())
                    .col(ColumnDef::new(Devices::Imei).string_len(64).null())
                    .col(ColumnDef::new(Devices::Model).string_len(128).null())
                    .col(ColumnDef::new(Devices::ModelName).string_len(128).null())
                    .col(ColumnDef::new(Devices::ProductName).string_len(128).null())
                    .col(ColumnDef::new(Devices::OsFamily).string_len(16).not_null())
                    .col(ColumnDef::new(Devices::OsVersion).string_len(32).null())
                    .col(ColumnDef::new(Devices::BuildVersion).string_len(32).null())
                    .col(ColumnDef::new(Devices::DeviceName).string_len(255).null())
                    .col(ColumnDef::new(Devices::Topic).string_len(255).null())
                    .col(ColumnDef::new(Devices::PushToken).string_len(512).null())
                    .col(ColumnDef::new(Devices::PushMagic).string_len(255).null())
                    .col(ColumnDef::new(Devices::UnlockToken).binary().null())
                    .col(ColumnDef::new(Devices::BootstrapToken).binary().null())
                    .col(
                        ColumnDef::new(Devices::AwaitingConfiguration)
                            .boolean()
                            .not_null()
                            .default(false),
                    )
                    .col(ColumnDef::new(Devices::IdentityFingerprint).string_len(64).null())
                    .col(ColumnDef::new(Devices::IdentitySubject).string_len(512).null())
                    .col(ColumnDef::new(Devices::IdentityNotAfter).string_len(64).null())
                    .col(ColumnDef::new(Devices::Enrolled).boolean().not_null().default(false))
                    .col(ts(Devices::EnrolledAt).null())
                    .col(ts(Devices::UnenrolledAt).null())
                    .col(ts(Devices::LastSeenAt).null())
                    .col(ColumnDef::new(Devices::HardwareEncrypted).boolean().null())
                    .col(ColumnDef::new(Devices::PasscodePresent).boolean().null())
                    .col(ColumnDef::new(Devices::PasscodeCompliant).boolean().null())
                    .col(ColumnDef::new(Devices::InstalledProfiles).text().null())
                    .col(ts(Devices::CreatedAt).not_null())
                    .col(ts(Devices::UpdatedAt).not_null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("devices_udid")
                    .table(Devices::Table)
                    .col(Devices::Udid)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("devices_serial_number")
                    .table(Devices::Table)
                    .col(Devices::SerialNumber)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(UserChannels::Table)
                    .col(ColumnDef::new(UserChannels::DeviceId).string_len(36).not_null())
                    .col(ColumnDef::new(UserChannels::UserId).string_len(128).not_null())
                    .col(ColumnDef::new(UserChannels::UserShortName).string_len(255).null())
                    .col(ColumnDef::new(UserChannels::UserLongName).string_len(255).null())
                    .col(ColumnDef::new(UserChannels::PushToken).string_len(512).null())
                    .col(ColumnDef::new(UserChannels::PushMagic).string_len(255).null())
                    .col(ts(UserChannels::UpdatedAt).not_null())
                    .primary_key(
                        Index::create()
                            .col(UserChannels::DeviceId)
                            .col(UserChannels::UserId),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(UserChannels::Table, UserChannels::DeviceId)
                            .to(Devices::Table, Devices::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Commands::Table)
                    .col(
                        ColumnDef::new(Commands::Seq)
                            .big_integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(Commands::Uuid).string_len(64).not_null())
                    .col(ColumnDef::new(Commands::DeviceId).string_len(36).not_null())
                    .col(ColumnDef::new(Commands::RequestType).string_len(128).not_null())
                    .col(ColumnDef::new(Commands::Payload).binary().not_null())
                    .col(ColumnDef::new(Commands::PayloadSealed).boolean().not_null())
                    .col(ColumnDef::new(Commands::Priority).integer().not_null())
                    .col(ColumnDef::new(Commands::Status).string_len(24).not_null())
                    .col(ColumnDef::new(Commands::CreatedBy).string_len(255).not_null())
                    .col(ts(Commands::CreatedAt).not_null())
                    .col(ts(Commands::UpdatedAt).not_null())
                    .col(ts(Commands::ExpiresAt).null())
                    .col(ts(Commands::DeliveredAt).null())
                    .col(ts(Commands::CompletedAt).null())
                    .col(ColumnDef::new(Commands::DeliveryCount).integer().not_null())
                    .col(ColumnDef::new(Commands::NotNowCount).integer().not_null())
                    .col(ColumnDef::new(Commands::ResultRaw).binary().null())
                    .col(ColumnDef::new(Commands::Result).text().null())
                    .foreign_key(
                        ForeignKey::create()
                            .from(Commands::Table, Commands::DeviceId)
                            .to(Devices::Table, Devices::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("commands_uuid")
                    .table(Commands::Table)
                    .col(Commands::Uuid)
                    .unique()
                    .to_owned(),
            )
            .await?;
        // The queue lookup: a device's commands in one status, in delivery order.
        // Finished commands sit under other status prefixes, so finding the next
        // command never reads a device's history.
        manager
            .create_index(
                Index::create()
                    .name("commands_queue")
                    .table(Commands::Table)
                    .col(Commands::DeviceId)
                    .col(Commands::Status)
                    .col(Commands::Priority)
                    .col(Commands::Seq)
                    .to_owned(),
            )
            .await?;
        // A device's history, newest first, for the admin API.
        manager
            .create_index(
                Index::create()
                    .name("commands_device_history")
                    .table(Commands::Table)
                    .col(Commands::DeviceId)
                    .col(Commands::Seq)
                    .to_owned(),
            )
            .await?;
        // Pruning of old results and expiry sweeps.
        manager
            .create_index(
                Index::create()
                    .name("commands_completed_at")
                    .table(Commands::Table)
                    .col(Commands::CompletedAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("commands_status_expires")
                    .table(Commands::Table)
                    .col(Commands::Status)
                    .col(Commands::ExpiresAt)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Events::Table)
                    .col(
                        ColumnDef::new(Events::Id)
                            .big_integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(ts(Events::OccurredAt).not_null())
                    .col(ColumnDef::new(Events::Kind).string_len(64).not_null())
                    .col(ColumnDef::new(Events::Severity).small_integer().null())
                    .col(ColumnDef::new(Events::DeviceId).string_len(36).null())
                    .col(ColumnDef::new(Events::Actor).string_len(255).null())
                    .col(ColumnDef::new(Events::Message).text().not_null())
                    .col(ColumnDef::new(Events::Data).text().not_null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("events_device")
                    .table(Events::Table)
                    .col(Events::DeviceId)
                    .col(Events::Id)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("events_kind")
                    .table(Events::Table)
                    .col(Events::Kind)
                    .col(Events::Id)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(AdminTokens::Table)
                    .col(ColumnDef::new(AdminTokens::Id).string_len(36).not_null().primary_key())
                    .col(ColumnDef::new(AdminTokens::Name).string_len(255).not_null())
                    .col(ColumnDef::new(AdminTokens::TokenHash).string_len(64).not_null())
                    .col(ts(AdminTokens::CreatedAt).not_null())
                    .col(ts(AdminTokens::LastUsedAt).null())
                    .col(ts(AdminTokens::RevokedAt).null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("admin_tokens_hash")
                    .table(AdminTokens::Table)
                    .col(AdminTokens::TokenHash)
                    .unique()
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            AdminTokens::Table.into_iden(),
            Events::Table.into_iden(),
            Commands::Table.into_iden(),
            UserChannels::Table.into_iden(),
            Devices::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
