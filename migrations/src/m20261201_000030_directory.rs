//! Users and groups from the office's directory (issue 9).
//!
//! `directory_users` holds every person devices can belong to, whatever brought them
//! in: the LDAP sync (`source` `ldap`, `external_id` the entry's entryUUID or
//! objectGUID, or its DN when it has neither), a CSV import (`csv`) or an admin
//! (`manual`). Users are never deleted by a sync: one that leaves the directory is
//! disabled with the reason "removed from the directory", since devices
//! (`devices.assigned_user` holds the username) and history refer to them.
//! `directory_groups` and `directory_group_members` are the groups and who is in
//! them. `directory_sources` is one row (`default`): where the directory is, how to
//! bind (the password sealed with the master key), what to read, how attributes map,
//! the schedule, the last sync's outcome, and a lease so that of several server
//! instances only one syncs at a time.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum DirectoryUsers {
    Table,
    Id,
    Username,
    Upn,
    Email,
    DisplayName,
    Department,
    Source,
    ExternalId,
    Disabled,
    DisabledReason,
    DisabledAt,
    SyncedAt,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum DirectoryGroups {
    Table,
    Id,
    Name,
    Source,
    ExternalId,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum DirectoryGroupMembers {
    Table,
    GroupId,
    UserId,
}

#[derive(DeriveIden)]
enum DirectorySources {
    Table,
    Id,
    Flavor,
    Url,
    StartTls,
    AllowPlaintext,
    BindDn,
    BindPasswordSealed,
    BaseDn,
    UserFilter,
    GroupFilter,
    UsernameAttr,
    UpnAttr,
    EmailAttr,
    DisplayNameAttr,
    DepartmentAttr,
    GroupNameAttr,
    DisabledAttr,
    DisabledValue,
    CaPem,
    IntervalSeconds,
    LastSyncAt,
    LastSyncStatus,
    LastSyncError,
    LastSyncCounts,
    LeaseOwner,
    LeaseUntil,
    UpdatedBy,
    CreatedAt,
    UpdatedAt,
}

fn ts(col: impl IntoIden) -> ColumnDef {
    ColumnDef::new(col).timestamp_with_time_zone().to_owned()
}

fn attr(col: impl IntoIden) -> ColumnDef {
    ColumnDef::new(col).string_len(128).not_null().to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        use DirectoryUsers as U;
        manager
            .create_table(
                Table::create()
                    .table(U::Table)
                    .col(
                        ColumnDef::new(U::Id)
                            .string_len(36)
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(U::Username)
                            .string_len(255)
                            .not_null()
                            .unique_key(),
                    )
                    .col(ColumnDef::new(U::Upn).string_len(512).not_null())
                    .col(ColumnDef::new(U::Email).string_len(512).not_null())
                    .col(ColumnDef::new(U::DisplayName).string_len(512).not_null())
                    .col(ColumnDef::new(U::Department).string_len(255).null())
                    .col(ColumnDef::new(U::Source).string_len(16).not_null())
                    .col(ColumnDef::new(U::ExternalId).text().null())
                    .col(
                        ColumnDef::new(U::Disabled)
                            .boolean()
                            .not_null()
                            .default(false),
                    )
                    .col(ColumnDef::new(U::DisabledReason).string_len(64).null())
                    .col(ts(U::DisabledAt).null())
                    .col(ts(U::SyncedAt).null())
                    .col(ts(U::CreatedAt).not_null())
                    .col(ts(U::UpdatedAt).not_null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_directory_users_source_external")
                    .table(U::Table)
                    .col(U::Source)
                    .col(U::ExternalId)
                    .to_owned(),
            )
            .await?;

        use DirectoryGroups as G;
        manager
            .create_table(
                Table::create()
                    .table(G::Table)
                    .col(
                        ColumnDef::new(G::Id)
                            .string_len(36)
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(G::Name)
                            .string_len(255)
                            .not_null()
                            .unique_key(),
                    )
                    .col(ColumnDef::new(G::Source).string_len(16).not_null())
                    .col(ColumnDef::new(G::ExternalId).text().null())
                    .col(ts(G::CreatedAt).not_null())
                    .col(ts(G::UpdatedAt).not_null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_directory_groups_source_external")
                    .table(G::Table)
                    .col(G::Source)
                    .col(G::ExternalId)
                    .to_owned(),
            )
            .await?;

        use DirectoryGroupMembers as M;
        manager
            .create_table(
                Table::create()
                    .table(M::Table)
                    .col(ColumnDef::new(M::GroupId).string_len(36).not_null())
                    .col(ColumnDef::new(M::UserId).string_len(36).not_null())
                    .primary_key(Index::create().col(M::GroupId).col(M::UserId))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_directory_group_members_user")
                    .table(M::Table)
                    .col(M::UserId)
                    .to_owned(),
            )
            .await?;

        use DirectorySources as S;
        manager
            .create_table(
                Table::create()
                    .table(S::Table)
                    .col(
                        ColumnDef::new(S::Id)
                            .string_len(16)
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(S::Flavor).string_len(32).not_null())
                    .col(ColumnDef::new(S::Url).text().not_null())
                    .col(ColumnDef::new(S::StartTls).boolean().not_null())
                    .col(
                        ColumnDef::new(S::AllowPlaintext)
                            .boolean()
                            .not_null()
                            .default(false),
                    )
                    .col(ColumnDef::new(S::BindDn).text().not_null())
                    .col(ColumnDef::new(S::BindPasswordSealed).binary().not_null())
                    .col(ColumnDef::new(S::BaseDn).text().not_null())
                    .col(ColumnDef::new(S::UserFilter).text().not_null())
                    .col(ColumnDef::new(S::GroupFilter).text().not_null())
                    .col(attr(S::UsernameAttr))
                    .col(attr(S::UpnAttr))
                    .col(attr(S::EmailAttr))
                    .col(attr(S::DisplayNameAttr))
                    .col(attr(S::DepartmentAttr))
                    .col(attr(S::GroupNameAttr))
                    .col(ColumnDef::new(S::DisabledAttr).string_len(128).null())
                    .col(ColumnDef::new(S::DisabledValue).text().null())
                    .col(ColumnDef::new(S::CaPem).text().null())
                    .col(ColumnDef::new(S::IntervalSeconds).integer().not_null())
                    .col(ts(S::LastSyncAt).null())
                    .col(ColumnDef::new(S::LastSyncStatus).string_len(16).null())
                    .col(ColumnDef::new(S::LastSyncError).text().null())
                    .col(ColumnDef::new(S::LastSyncCounts).text().null())
                    .col(ColumnDef::new(S::LeaseOwner).string_len(64).null())
                    .col(ts(S::LeaseUntil).null())
                    .col(ColumnDef::new(S::UpdatedBy).string_len(255).not_null())
                    .col(ts(S::CreatedAt).not_null())
                    .col(ts(S::UpdatedAt).not_null())
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            DirectorySources::Table.into_iden(),
            DirectoryGroupMembers::Table.into_iden(),
            DirectoryGroups::Table.into_iden(),
            DirectoryUsers::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
