//! The incident register (issue 11): incidents with the columns the office's incident
//! policy prescribes, the devices they involve, and their history as one hash chain.
//!
//! `incidents` keeps the incident whole in `body` (JSON) and the columns lists filter
//! on beside it. `incident_history` is append-only: each entry hashes the previous
//! entry's hash, its own fields and the SHA-256 of the incident as it stood after the
//! change, so altering an incident, or any entry, breaks the chain (`mdm incidents
//! verify`). `incident_register_head` is one row: the chain's last link and the next
//! incident number; appends lock it, so links and numbers never fork.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Incidents {
    Table,
    Id,
    Number,
    IncidentType,
    Level,
    Classification,
    Status,
    DetectedAt,
    CreatedAt,
    UpdatedAt,
    Body,
}

#[derive(DeriveIden)]
enum IncidentDevices {
    Table,
    IncidentId,
    DeviceId,
}

#[derive(DeriveIden)]
enum IncidentHistory {
    Table,
    Seq,
    IncidentId,
    At,
    Actor,
    Change,
    Details,
    SnapshotHash,
    PrevHash,
    Hash,
}

#[derive(DeriveIden)]
enum IncidentEvidence {
    Table,
    Id,
    IncidentId,
    Kind,
    Source,
    Content,
    Sha256,
    CollectedAt,
    CollectedBy,
}

#[derive(DeriveIden)]
enum IncidentApprovals {
    Table,
    Id,
    IncidentId,
    DeviceId,
    Action,
    RequestedBy,
    RequestedAt,
    Status,
    DecidedBy,
    DecidedAt,
}

#[derive(DeriveIden)]
enum IncidentEventLinks {
    Table,
    EventId,
    IncidentId,
}

#[derive(DeriveIden)]
enum IncidentRuleCursor {
    Table,
    Id,
    LastEventId,
}

#[derive(DeriveIden)]
enum IncidentRegisterHead {
    Table,
    Id,
    LastSeq,
    LastHash,
    NextNumber,
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
                    .table(Incidents::Table)
                    .col(
                        ColumnDef::new(Incidents::Id)
                            .string_len(36)
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(Incidents::Number)
                            .big_integer()
                            .not_null()
                            .unique_key(),
                    )
                    .col(
                        ColumnDef::new(Incidents::IncidentType)
                            .string_len(64)
                            .not_null(),
                    )
                    .col(ColumnDef::new(Incidents::Level).small_integer().not_null())
                    .col(
                        ColumnDef::new(Incidents::Classification)
                            .string_len(16)
                            .not_null(),
                    )
                    .col(ColumnDef::new(Incidents::Status).string_len(16).not_null())
                    .col(ts(Incidents::DetectedAt).not_null())
                    .col(ts(Incidents::CreatedAt).not_null())
                    .col(ts(Incidents::UpdatedAt).not_null())
                    .col(ColumnDef::new(Incidents::Body).text().not_null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_incidents_detected_at")
                    .table(Incidents::Table)
                    .col(Incidents::DetectedAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(IncidentDevices::Table)
                    .col(
                        ColumnDef::new(IncidentDevices::IncidentId)
                            .string_len(36)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(IncidentDevices::DeviceId)
                            .string_len(64)
                            .not_null(),
                    )
                    .primary_key(
                        Index::create()
                            .col(IncidentDevices::IncidentId)
                            .col(IncidentDevices::DeviceId),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_incident_devices_device")
                    .table(IncidentDevices::Table)
                    .col(IncidentDevices::DeviceId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(IncidentHistory::Table)
                    .col(
                        ColumnDef::new(IncidentHistory::Seq)
                            .big_integer()
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(IncidentHistory::IncidentId)
                            .string_len(36)
                            .not_null(),
                    )
                    .col(ts(IncidentHistory::At).not_null())
                    .col(
                        ColumnDef::new(IncidentHistory::Actor)
                            .string_len(255)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(IncidentHistory::Change)
                            .string_len(32)
                            .not_null(),
                    )
                    .col(ColumnDef::new(IncidentHistory::Details).text().not_null())
                    .col(
                        ColumnDef::new(IncidentHistory::SnapshotHash)
                            .string_len(64)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(IncidentHistory::PrevHash)
                            .string_len(64)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(IncidentHistory::Hash)
                            .string_len(64)
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_incident_history_incident")
                    .table(IncidentHistory::Table)
                    .col(IncidentHistory::IncidentId)
                    .col(IncidentHistory::Seq)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(IncidentRegisterHead::Table)
                    .col(
                        ColumnDef::new(IncidentRegisterHead::Id)
                            .integer()
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(IncidentRegisterHead::LastSeq)
                            .big_integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(IncidentRegisterHead::LastHash)
                            .string_len(64)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(IncidentRegisterHead::NextNumber)
                            .big_integer()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await?;
        // Evidence as the server collected it, with its SHA-256 (also in the chain).
        manager
            .create_table(
                Table::create()
                    .table(IncidentEvidence::Table)
                    .col(
                        ColumnDef::new(IncidentEvidence::Id)
                            .string_len(36)
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(IncidentEvidence::IncidentId)
                            .string_len(36)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(IncidentEvidence::Kind)
                            .string_len(32)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(IncidentEvidence::Source)
                            .string_len(255)
                            .not_null(),
                    )
                    .col(ColumnDef::new(IncidentEvidence::Content).text().not_null())
                    .col(
                        ColumnDef::new(IncidentEvidence::Sha256)
                            .string_len(64)
                            .not_null(),
                    )
                    .col(ts(IncidentEvidence::CollectedAt).not_null())
                    .col(
                        ColumnDef::new(IncidentEvidence::CollectedBy)
                            .string_len(255)
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_incident_evidence_incident")
                    .table(IncidentEvidence::Table)
                    .col(IncidentEvidence::IncidentId)
                    .to_owned(),
            )
            .await?;
        // Actions waiting for a second admin (a playbook's wipe).
        manager
            .create_table(
                Table::create()
                    .table(IncidentApprovals::Table)
                    .col(
                        ColumnDef::new(IncidentApprovals::Id)
                            .string_len(36)
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(IncidentApprovals::IncidentId)
                            .string_len(36)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(IncidentApprovals::DeviceId)
                            .string_len(64)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(IncidentApprovals::Action)
                            .string_len(32)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(IncidentApprovals::RequestedBy)
                            .string_len(255)
                            .not_null(),
                    )
                    .col(ts(IncidentApprovals::RequestedAt).not_null())
                    .col(
                        ColumnDef::new(IncidentApprovals::Status)
                            .string_len(16)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(IncidentApprovals::DecidedBy)
                            .string_len(255)
                            .null(),
                    )
                    .col(ts(IncidentApprovals::DecidedAt).null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_incident_approvals_incident")
                    .table(IncidentApprovals::Table)
                    .col(IncidentApprovals::IncidentId)
                    .to_owned(),
            )
            .await?;
        // Which event filed or joined which incident: its primary key makes the rules
        // engine handle an event once, whichever instance sees it, whenever.
        manager
            .create_table(
                Table::create()
                    .table(IncidentEventLinks::Table)
                    .col(
                        ColumnDef::new(IncidentEventLinks::EventId)
                            .big_integer()
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(IncidentEventLinks::IncidentId)
                            .string_len(36)
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await?;
        // How far the rules engine has read the event stream.
        manager
            .create_table(
                Table::create()
                    .table(IncidentRuleCursor::Table)
                    .col(
                        ColumnDef::new(IncidentRuleCursor::Id)
                            .integer()
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(IncidentRuleCursor::LastEventId)
                            .big_integer()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .exec_stmt(
                Query::insert()
                    .into_table(IncidentRuleCursor::Table)
                    .columns([IncidentRuleCursor::Id, IncidentRuleCursor::LastEventId])
                    .values_panic([1.into(), 0i64.into()])
                    .to_owned(),
            )
            .await?;
        // The chain starts from a fixed genesis link: 64 zeros.
        manager
            .exec_stmt(
                Query::insert()
                    .into_table(IncidentRegisterHead::Table)
                    .columns([
                        IncidentRegisterHead::Id,
                        IncidentRegisterHead::LastSeq,
                        IncidentRegisterHead::LastHash,
                        IncidentRegisterHead::NextNumber,
                    ])
                    .values_panic([1.into(), 0i64.into(), "0".repeat(64).into(), 1i64.into()])
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            IncidentRuleCursor::Table.into_iden(),
            IncidentEventLinks::Table.into_iden(),
            IncidentEvidence::Table.into_iden(),
            IncidentApprovals::Table.into_iden(),
            IncidentRegisterHead::Table.into_iden(),
            IncidentHistory::Table.into_iden(),
            IncidentDevices::Table.into_iden(),
            Incidents::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
