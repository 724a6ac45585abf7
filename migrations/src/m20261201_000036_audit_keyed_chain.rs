//! The audit chain keyed and anchored (issue 10, item 6).
//!
//! * `audit_log.chain_version`: how a record's hash was computed. 1: plain SHA-256
//!   over the previous hash and the record (every record before this release, left
//!   as it was: their hashes are in exports auditors may hold); 2: HMAC-SHA256 under
//!   a key derived from the master key, which someone who can only write the
//!   database cannot compute. The server links the last SHA-256 record with a keyed
//!   one at its first start (services/admins/audit.rs), and verification refuses a
//!   SHA-256 record after a keyed one.
//! * `audit_head.anchored_seq`, `anchored_at`: the last head published as an
//!   `audit.anchor` event (to the SIEM), so that one instance publishes each anchor.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum AuditLog {
    Table,
    ChainVersion,
}

#[derive(DeriveIden)]
enum AuditHead {
    Table,
    AnchoredSeq,
    AnchoredAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(AuditLog::Table)
                    .add_column(
                        ColumnDef::new(AuditLog::ChainVersion)
                            .small_integer()
                            .not_null()
                            .default(1),
                    )
                    .to_owned(),
            )
            .await?;
        // One column per statement: SQLite adds one at a time.
        manager
            .alter_table(
                Table::alter()
                    .table(AuditHead::Table)
                    .add_column(
                        ColumnDef::new(AuditHead::AnchoredSeq)
                            .big_integer()
                            .not_null()
                            .default(0),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(AuditHead::Table)
                    .add_column(
                        ColumnDef::new(AuditHead::AnchoredAt)
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (table, column) in [
            (
                AuditHead::Table.into_iden(),
                AuditHead::AnchoredAt.into_iden(),
            ),
            (
                AuditHead::Table.into_iden(),
                AuditHead::AnchoredSeq.into_iden(),
            ),
            (
                AuditLog::Table.into_iden(),
                AuditLog::ChainVersion.into_iden(),
            ),
        ] {
            manager
                .alter_table(Table::alter().table(table).drop_column(column).to_owned())
                .await?;
        }
        Ok(())
    }
}
