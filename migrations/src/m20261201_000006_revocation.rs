//! Revocation of device identities.
//!
//! On `devices`: `identity_revoked_at` and `identity_revocation_reason` mark a device
//! whose identity was revoked (wiped, retired, checked out, or by hand); its
//! certificate is refused from then on, and only a new enrollment brings it back.
//! `retired_at` marks a device an admin retired from the fleet.
//!
//! On `issued_certificates`: the RFC 5280 reason of each revocation, and an index on
//! `revoked_at`, which the CRL is built from and checked for staleness with.
//!
//! `certificate_revocation_lists` keeps the signed CRL of each CA (one row per CA),
//! shared by every server instance: its number only grows, and it is rebuilt when a
//! revocation newer than the ones it covers exists, or before it goes stale.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Devices {
    Table,
    IdentityRevokedAt,
    IdentityRevocationReason,
    RetiredAt,
}

#[derive(DeriveIden)]
enum IssuedCertificates {
    Table,
    RevokedAt,
    RevocationReason,
}

#[derive(DeriveIden)]
enum CertificateRevocationLists {
    Table,
    Ca,
    Number,
    Der,
    ThisUpdate,
    NextUpdate,
    CoversUntil,
    Entries,
}

fn ts(col: impl IntoIden) -> ColumnDef {
    ColumnDef::new(col).timestamp_with_time_zone().to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite's ALTER TABLE adds one at a time.
        for column in [
            ts(Devices::IdentityRevokedAt).null().to_owned(),
            ColumnDef::new(Devices::IdentityRevocationReason)
                .string_len(32)
                .null()
                .to_owned(),
            ts(Devices::RetiredAt).null().to_owned(),
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
        manager
            .alter_table(
                Table::alter()
                    .table(IssuedCertificates::Table)
                    .add_column(
                        ColumnDef::new(IssuedCertificates::RevocationReason)
                            .string_len(32)
                            .null(),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_issued_certificates_revoked_at")
                    .table(IssuedCertificates::Table)
                    .col(IssuedCertificates::RevokedAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(CertificateRevocationLists::Table)
                    .col(
                        ColumnDef::new(CertificateRevocationLists::Ca)
                            .string_len(64)
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(CertificateRevocationLists::Number)
                            .big_integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(CertificateRevocationLists::Der)
                            .binary()
                            .not_null(),
                    )
                    .col(ts(CertificateRevocationLists::ThisUpdate).not_null())
                    .col(ts(CertificateRevocationLists::NextUpdate).not_null())
                    .col(ts(CertificateRevocationLists::CoversUntil).null())
                    .col(
                        ColumnDef::new(CertificateRevocationLists::Entries)
                            .big_integer()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(
                Table::drop()
                    .table(CertificateRevocationLists::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .drop_index(
                Index::drop()
                    .name("idx_issued_certificates_revoked_at")
                    .table(IssuedCertificates::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(IssuedCertificates::Table)
                    .drop_column(IssuedCertificates::RevocationReason)
                    .to_owned(),
            )
            .await?;
        for column in [
            Devices::IdentityRevokedAt,
            Devices::IdentityRevocationReason,
            Devices::RetiredAt,
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
        Ok(())
    }
}
