//! Enrollment: enrollments (QR codes), SCEP challenges, the certificates our CA
//! issued, the built-in PKI, and the link from a device to its enrollment.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Enrollments {
    Table,
    Id,
    Platform,
    Name,
    TokenHash,
    TokenSealed,
    CreatedBy,
    CreatedAt,
    ExpiresAt,
    MaxUses,
    Uses,
    RevokedAt,
    AssignedUser,
    AssignedGroup,
    Options,
}

#[derive(DeriveIden)]
enum ScepChallenges {
    Table,
    Id,
    ChallengeHash,
    EnrollmentId,
    CreatedAt,
    ExpiresAt,
    UsedAt,
}

#[derive(DeriveIden)]
enum IssuedCertificates {
    Table,
    Serial,
    Fingerprint,
    Subject,
    EnrollmentId,
    DeviceId,
    RenewedFrom,
    IssuedAt,
    NotAfter,
    RevokedAt,
}

#[derive(DeriveIden)]
enum PkiObjects {
    Table,
    Name,
    CertificatePem,
    ChainPem,
    PrivateKeySealed,
    Imported,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Devices {
    Table,
    EnrollmentId,
    AssignedUser,
    AssignedGroup,
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
                    .table(Enrollments::Table)
                    .col(
                        ColumnDef::new(Enrollments::Id)
                            .string_len(36)
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(Enrollments::Platform)
                            .string_len(16)
                            .not_null(),
                    )
                    .col(ColumnDef::new(Enrollments::Name).string_len(255).not_null())
                    .col(
                        ColumnDef::new(Enrollments::TokenHash)
                            .string_len(64)
                            .not_null(),
                    )
                    .col(ColumnDef::new(Enrollments::TokenSealed).binary().not_null())
                    .col(
                        ColumnDef::new(Enrollments::CreatedBy)
                            .string_len(255)
                            .not_null(),
                    )
                    .col(ts(Enrollments::CreatedAt).not_null())
                    .col(ts(Enrollments::ExpiresAt).null())
                    .col(ColumnDef::new(Enrollments::MaxUses).integer().null())
                    .col(ColumnDef::new(Enrollments::Uses).integer().not_null())
                    .col(ts(Enrollments::RevokedAt).null())
                    .col(
                        ColumnDef::new(Enrollments::AssignedUser)
                            .string_len(255)
                            .null(),
                    )
                    .col(
                        ColumnDef::new(Enrollments::AssignedGroup)
                            .string_len(255)
                            .null(),
                    )
                    .col(ColumnDef::new(Enrollments::Options).text().not_null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("enrollments_token_hash")
                    .table(Enrollments::Table)
                    .col(Enrollments::TokenHash)
                    .unique()
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(ScepChallenges::Table)
                    .col(
                        ColumnDef::new(ScepChallenges::Id)
                            .string_len(36)
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(ScepChallenges::ChallengeHash)
                            .string_len(64)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(ScepChallenges::EnrollmentId)
                            .string_len(36)
                            .not_null(),
                    )
                    .col(ts(ScepChallenges::CreatedAt).not_null())
                    .col(ts(ScepChallenges::ExpiresAt).not_null())
                    .col(ts(ScepChallenges::UsedAt).null())
                    .foreign_key(
                        ForeignKey::create()
                            .from(ScepChallenges::Table, ScepChallenges::EnrollmentId)
                            .to(Enrollments::Table, Enrollments::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("scep_challenges_hash")
                    .table(ScepChallenges::Table)
                    .col(ScepChallenges::ChallengeHash)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("scep_challenges_expires")
                    .table(ScepChallenges::Table)
                    .col(ScepChallenges::ExpiresAt)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(IssuedCertificates::Table)
                    .col(
                        ColumnDef::new(IssuedCertificates::Serial)
                            .string_len(64)
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(IssuedCertificates::Fingerprint)
                            .string_len(64)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(IssuedCertificates::Subject)
                            .string_len(512)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(IssuedCertificates::EnrollmentId)
                            .string_len(36)
                            .null(),
                    )
                    .col(
                        ColumnDef::new(IssuedCertificates::DeviceId)
                            .string_len(36)
                            .null(),
                    )
                    .col(
                        ColumnDef::new(IssuedCertificates::RenewedFrom)
                            .string_len(64)
                            .null(),
                    )
                    .col(ts(IssuedCertificates::IssuedAt).not_null())
                    .col(ts(IssuedCertificates::NotAfter).not_null())
                    .col(ts(IssuedCertificates::RevokedAt).null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("issued_certificates_fingerprint")
                    .table(IssuedCertificates::Table)
                    .col(IssuedCertificates::Fingerprint)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("issued_certificates_subject")
                    .table(IssuedCertificates::Table)
                    .col(IssuedCertificates::Subject)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(PkiObjects::Table)
                    .col(
                        ColumnDef::new(PkiObjects::Name)
                            .string_len(64)
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(PkiObjects::CertificatePem).text().not_null())
                    .col(ColumnDef::new(PkiObjects::ChainPem).text().null())
                    .col(
                        ColumnDef::new(PkiObjects::PrivateKeySealed)
                            .binary()
                            .not_null(),
                    )
                    .col(ColumnDef::new(PkiObjects::Imported).boolean().not_null())
                    .col(ts(PkiObjects::CreatedAt).not_null())
                    .to_owned(),
            )
            .await?;

        for column in [
            Devices::EnrollmentId,
            Devices::AssignedUser,
            Devices::AssignedGroup,
        ] {
            let def = match column {
                Devices::EnrollmentId => ColumnDef::new(column).string_len(36).null().to_owned(),
                _ => ColumnDef::new(column).string_len(255).null().to_owned(),
            };
            manager
                .alter_table(
                    Table::alter()
                        .table(Devices::Table)
                        .add_column(def)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in [
            Devices::EnrollmentId,
            Devices::AssignedUser,
            Devices::AssignedGroup,
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
        for table in [
            PkiObjects::Table.into_iden(),
            IssuedCertificates::Table.into_iden(),
            ScepChallenges::Table.into_iden(),
            Enrollments::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
