//! Policies (issue 9): device groups, versioned policies, their assignments, what each
//! device was last sent, and each device's compliance.
//!
//! * `policy_versions` keeps every version whole. `document` is the policy as the API
//!   shows it, secrets (a pre-shared key) masked; `document_sealed` is the full
//!   document sealed with the server's key, the only copy a compiler reads.
//! * `device_policy_outputs` is one row per Apple device and policy: the SHA-256 of
//!   the profile last queued to it, and of what it was compiled from (`input_hash`:
//!   the policy version, the user's attributes, the server's version), so that an
//!   unchanged delivery need not compile the profile again to know it is unchanged. A change is re-sent only when the hash differs,
//!   and the row is written in the transaction that queues the command, with the old
//!   hash as a condition, so two instances never both queue the same change.
//! * `scep_challenges.device_id` and `issued_certificates.purpose`: the SCEP
//!   challenge of a policy's EAP-TLS network is bound to the device, and what it
//!   issues is a `wifi` certificate, never a device identity.
//! * `policy_event_cursor` is where the policy watcher stands in the event stream
//!   (enrollments, directory changes); it starts at the stream's end.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum DeviceGroups {
    Table,
    Id,
    Name,
    Kind,
    MatchValue,
    Description,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum DeviceGroupMembers {
    Table,
    GroupId,
    DeviceId,
}

#[derive(DeriveIden)]
enum Policies {
    Table,
    Id,
    Name,
    CurrentVersion,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum PolicyVersions {
    Table,
    PolicyId,
    Version,
    Document,
    DocumentSealed,
    ContentHash,
    CreatedBy,
    CreatedAt,
    Note,
}

#[derive(DeriveIden)]
enum PolicyAssignments {
    Table,
    Id,
    PolicyId,
    TargetKind,
    Target,
    Precedence,
    CreatedBy,
    CreatedAt,
}

#[derive(DeriveIden)]
enum DevicePolicyOutputs {
    Table,
    DeviceId,
    PolicyId,
    Identifier,
    OutputHash,
    InputHash,
    PolicyVersion,
    CommandUuid,
    Status,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum PolicyEventCursor {
    Table,
    Id,
    LastEventId,
}

#[derive(DeriveIden)]
enum ScepChallenges {
    Table,
    DeviceId,
}

#[derive(DeriveIden)]
enum IssuedCertificates {
    Table,
    Purpose,
}

#[derive(DeriveIden)]
enum Devices {
    Table,
    Compliant,
    ComplianceReasons,
    ComplianceCheckedAt,
}

fn at(col: impl IntoIden) -> ColumnDef {
    ColumnDef::new(col)
        .timestamp_with_time_zone()
        .not_null()
        .to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(DeviceGroups::Table)
                    .col(
                        ColumnDef::new(DeviceGroups::Id)
                            .string()
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(DeviceGroups::Name)
                            .string()
                            .not_null()
                            .unique_key(),
                    )
                    .col(ColumnDef::new(DeviceGroups::Kind).string().not_null())
                    .col(ColumnDef::new(DeviceGroups::MatchValue).string().null())
                    .col(ColumnDef::new(DeviceGroups::Description).string().null())
                    .col(at(DeviceGroups::CreatedAt))
                    .col(at(DeviceGroups::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(DeviceGroupMembers::Table)
                    .col(
                        ColumnDef::new(DeviceGroupMembers::GroupId)
                            .string()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(DeviceGroupMembers::DeviceId)
                            .string()
                            .not_null(),
                    )
                    .primary_key(
                        Index::create()
                            .col(DeviceGroupMembers::GroupId)
                            .col(DeviceGroupMembers::DeviceId),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_device_group_members_device")
                    .table(DeviceGroupMembers::Table)
                    .col(DeviceGroupMembers::DeviceId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Policies::Table)
                    .col(
                        ColumnDef::new(Policies::Id)
                            .string()
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(Policies::Name)
                            .string()
                            .not_null()
                            .unique_key(),
                    )
                    .col(
                        ColumnDef::new(Policies::CurrentVersion)
                            .integer()
                            .not_null(),
                    )
                    .col(at(Policies::CreatedAt))
                    .col(at(Policies::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(PolicyVersions::Table)
                    .col(ColumnDef::new(PolicyVersions::PolicyId).string().not_null())
                    .col(ColumnDef::new(PolicyVersions::Version).integer().not_null())
                    .col(ColumnDef::new(PolicyVersions::Document).text().not_null())
                    .col(
                        ColumnDef::new(PolicyVersions::DocumentSealed)
                            .binary()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(PolicyVersions::ContentHash)
                            .string()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(PolicyVersions::CreatedBy)
                            .string()
                            .not_null(),
                    )
                    .col(at(PolicyVersions::CreatedAt))
                    .col(ColumnDef::new(PolicyVersions::Note).string().null())
                    .primary_key(
                        Index::create()
                            .col(PolicyVersions::PolicyId)
                            .col(PolicyVersions::Version),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(PolicyAssignments::Table)
                    .col(
                        ColumnDef::new(PolicyAssignments::Id)
                            .string()
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(PolicyAssignments::PolicyId)
                            .string()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(PolicyAssignments::TargetKind)
                            .string()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(PolicyAssignments::Target)
                            .string()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(PolicyAssignments::Precedence)
                            .integer()
                            .not_null()
                            .default(0),
                    )
                    .col(
                        ColumnDef::new(PolicyAssignments::CreatedBy)
                            .string()
                            .not_null(),
                    )
                    .col(at(PolicyAssignments::CreatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_policy_assignments_unique")
                    .table(PolicyAssignments::Table)
                    .col(PolicyAssignments::PolicyId)
                    .col(PolicyAssignments::TargetKind)
                    .col(PolicyAssignments::Target)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_policy_assignments_target")
                    .table(PolicyAssignments::Table)
                    .col(PolicyAssignments::TargetKind)
                    .col(PolicyAssignments::Target)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(DevicePolicyOutputs::Table)
                    .col(
                        ColumnDef::new(DevicePolicyOutputs::DeviceId)
                            .string()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(DevicePolicyOutputs::PolicyId)
                            .string()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(DevicePolicyOutputs::Identifier)
                            .string()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(DevicePolicyOutputs::OutputHash)
                            .string()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(DevicePolicyOutputs::InputHash)
                            .string()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(DevicePolicyOutputs::PolicyVersion)
                            .integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(DevicePolicyOutputs::CommandUuid)
                            .string()
                            .null(),
                    )
                    .col(
                        ColumnDef::new(DevicePolicyOutputs::Status)
                            .string()
                            .not_null(),
                    )
                    .col(at(DevicePolicyOutputs::UpdatedAt))
                    .primary_key(
                        Index::create()
                            .col(DevicePolicyOutputs::DeviceId)
                            .col(DevicePolicyOutputs::PolicyId),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_device_policy_outputs_policy")
                    .table(DevicePolicyOutputs::Table)
                    .col(DevicePolicyOutputs::PolicyId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(PolicyEventCursor::Table)
                    .col(
                        ColumnDef::new(PolicyEventCursor::Id)
                            .integer()
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(PolicyEventCursor::LastEventId)
                            .big_integer()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .get_connection()
            .execute_unprepared(
                "INSERT INTO policy_event_cursor (id, last_event_id) \
                 SELECT 1, COALESCE(MAX(id), 0) FROM events",
            )
            .await?;
        // A policy's EAP-TLS network asks our SCEP CA for a certificate of the device's
        // own: its challenge is bound to the device (not an enrollment use), and the
        // certificate's purpose is `wifi`, which never passes as a device identity.
        manager
            .alter_table(
                Table::alter()
                    .table(ScepChallenges::Table)
                    .add_column(ColumnDef::new(ScepChallenges::DeviceId).string().null())
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(IssuedCertificates::Table)
                    .add_column(
                        ColumnDef::new(IssuedCertificates::Purpose)
                            .string()
                            .not_null()
                            .default("identity"),
                    )
                    .to_owned(),
            )
            .await?;
        for column in [
            ColumnDef::new(Devices::Compliant)
                .boolean()
                .null()
                .to_owned(),
            ColumnDef::new(Devices::ComplianceReasons)
                .text()
                .null()
                .to_owned(),
            ColumnDef::new(Devices::ComplianceCheckedAt)
                .timestamp_with_time_zone()
                .null()
                .to_owned(),
        ] {
            // SQLite adds one column per ALTER TABLE.
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
        manager
            .alter_table(
                Table::alter()
                    .table(ScepChallenges::Table)
                    .drop_column(ScepChallenges::DeviceId)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(IssuedCertificates::Table)
                    .drop_column(IssuedCertificates::Purpose)
                    .to_owned(),
            )
            .await?;
        for column in [
            Devices::Compliant,
            Devices::ComplianceReasons,
            Devices::ComplianceCheckedAt,
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
            PolicyEventCursor::Table.into_iden(),
            DevicePolicyOutputs::Table.into_iden(),
            PolicyAssignments::Table.into_iden(),
            PolicyVersions::Table.into_iden(),
            Policies::Table.into_iden(),
            DeviceGroupMembers::Table.into_iden(),
            DeviceGroups::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
