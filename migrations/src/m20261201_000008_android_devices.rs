//! Android devices as Google's Android Management API reports them, and the AMAPI
//! policies the server wrote.
//!
//! `android_devices` extends `devices` (same id, `platform = 'android'`) with what only
//! AMAPI knows: the device's resource name, management mode, ownership, state, the
//! policy it should have and the one (and version) it applied, compliance, security
//! posture, encryption, the last status report, and `observed_at`, the newest report
//! time a stored state came from, so that an older notification delivered late never
//! overwrites a newer state.
//!
//! `android_policies` remembers each policy's content hash and version as AMAPI
//! answered: a policy is patched only when its content changes.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum AndroidDevices {
    Table,
    DeviceId,
    Name,
    ManagementMode,
    Ownership,
    State,
    AppliedState,
    ApiLevel,
    SecurityPatchLevel,
    PolicyName,
    AppliedPolicyName,
    AppliedPolicyVersion,
    PolicyCompliant,
    NonCompliance,
    SecurityPosture,
    EncryptionStatus,
    LastStatusReportAt,
    ObservedAt,
    Facts,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum AndroidPolicies {
    Table,
    Name,
    ContentHash,
    Version,
    PatchedAt,
}

fn ts(col: impl IntoIden) -> ColumnDef {
    ColumnDef::new(col).timestamp_with_time_zone().to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        use AndroidDevices as D;
        manager
            .create_table(
                Table::create()
                    .table(D::Table)
                    .col(
                        ColumnDef::new(D::DeviceId)
                            .string_len(36)
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(D::Name)
                            .string_len(256)
                            .not_null()
                            .unique_key(),
                    )
                    .col(ColumnDef::new(D::ManagementMode).string_len(32).null())
                    .col(ColumnDef::new(D::Ownership).string_len(32).null())
                    .col(ColumnDef::new(D::State).string_len(32).null())
                    .col(ColumnDef::new(D::AppliedState).string_len(32).null())
                    .col(ColumnDef::new(D::ApiLevel).integer().null())
                    .col(ColumnDef::new(D::SecurityPatchLevel).string_len(32).null())
                    .col(ColumnDef::new(D::PolicyName).string_len(256).null())
                    .col(ColumnDef::new(D::AppliedPolicyName).string_len(256).null())
                    .col(ColumnDef::new(D::AppliedPolicyVersion).big_integer().null())
                    .col(ColumnDef::new(D::PolicyCompliant).boolean().null())
                    .col(ColumnDef::new(D::NonCompliance).text().null())
                    .col(ColumnDef::new(D::SecurityPosture).text().null())
                    .col(ColumnDef::new(D::EncryptionStatus).string_len(48).null())
                    .col(ts(D::LastStatusReportAt).null())
                    .col(ts(D::ObservedAt).not_null())
                    .col(ColumnDef::new(D::Facts).text().not_null())
                    .col(ts(D::UpdatedAt).not_null())
                    .to_owned(),
            )
            .await?;
        use AndroidPolicies as P;
        manager
            .create_table(
                Table::create()
                    .table(P::Table)
                    .col(
                        ColumnDef::new(P::Name)
                            .string_len(256)
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(P::ContentHash).string_len(64).not_null())
                    .col(ColumnDef::new(P::Version).big_integer().null())
                    .col(ts(P::PatchedAt).not_null())
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(AndroidPolicies::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(AndroidDevices::Table).to_owned())
            .await
    }
}
