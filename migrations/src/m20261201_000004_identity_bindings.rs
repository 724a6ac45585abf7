//! Device identity: which certificate speaks for which device, for good.
//!
//! `identity_bindings` has one row per certificate fingerprint that was ever bound to
//! a device; its primary key is what makes "one certificate, one device" hold even
//! between two concurrent Authenticates. A binding that ends (the device re-enrolled
//! with another certificate) keeps its row with `retired_at` set, so a retired
//! certificate can never bind again, to this device or another.
//!
//! On `devices`: `released_at` marks a device that checked out or acknowledged a
//! wipe (it may re-enroll with a new certificate), and an admin's approval of a
//! re-enrollment lasts until `reenrollment_approved_until`, optionally keeping the
//! queue. `reported_serial_number` is the serial number from the device's
//! DeviceInformation answer, which a wipe is confirmed against.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum IdentityBindings {
    Table,
    Fingerprint,
    DeviceId,
    BoundAt,
    RetiredAt,
}

#[derive(DeriveIden)]
enum Devices {
    Table,
    ReleasedAt,
    ReenrollmentApprovedUntil,
    ReenrollmentKeepQueue,
    ReportedSerialNumber,
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
                    .table(IdentityBindings::Table)
                    .col(
                        ColumnDef::new(IdentityBindings::Fingerprint)
                            .string_len(64)
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(IdentityBindings::DeviceId)
                            .string_len(36)
                            .not_null(),
                    )
                    .col(ts(IdentityBindings::BoundAt).not_null())
                    .col(ts(IdentityBindings::RetiredAt).null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("identity_bindings_device")
                    .table(IdentityBindings::Table)
                    .col(IdentityBindings::DeviceId)
                    .to_owned(),
            )
            .await?;
        // Devices enrolled before this migration keep the certificate they have.
        manager
            .get_connection()
            .execute_unprepared(
                "INSERT INTO identity_bindings (fingerprint, device_id, bound_at) \
                 SELECT identity_fingerprint, id, COALESCE(enrolled_at, created_at) FROM devices \
                 WHERE identity_fingerprint IS NOT NULL",
            )
            .await?;
        for column in [
            ts(Devices::ReleasedAt).null().to_owned(),
            ts(Devices::ReenrollmentApprovedUntil).null().to_owned(),
            ColumnDef::new(Devices::ReenrollmentKeepQueue)
                .boolean()
                .not_null()
                .default(false)
                .to_owned(),
            ColumnDef::new(Devices::ReportedSerialNumber)
                .string_len(255)
                .null()
                .to_owned(),
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Devices::Table)
                        .add_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in [
            Devices::ReleasedAt,
            Devices::ReenrollmentApprovedUntil,
            Devices::ReenrollmentKeepQueue,
            Devices::ReportedSerialNumber,
        ] {
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
            .drop_table(Table::drop().table(IdentityBindings::Table).to_owned())
            .await
    }
}
