//! Admin accounts, roles and the audit trail (issue 10).
//!
//! * `admins`: people who administer the MDM. Argon2id password hash, when it was
//!   set and whether it must change at the next login, failed logins and the lockout
//!   they caused (here, not in memory, so every instance sees it), the TOTP secret
//!   (sealed with the master key; `totp_pending_sealed` while an enrolment waits for
//!   its first code, `totp_last_step` so that a code is accepted once), disabled or not.
//! * `admin_password_history`: earlier password hashes (the last few are kept) so a
//!   password is not reused. `admin_recovery_codes`: SHA-256 of the MFA recovery codes,
//!   each used once.
//! * `admin_roles`: the role matrix (name, who gets it, rights as a JSON array,
//!   critical or not). Roles are granted to `admin_groups` (`admin_group_roles`),
//!   never to a person; people are in groups (`admin_group_members`). The built-in
//!   roles and one group for each are created here.
//! * `admin_sessions`: logins (bearer or cookie), hashed like tokens, with their idle
//!   and absolute expiry; `pending_mfa` while the second factor is awaited.
//! * `admin_tokens` gains an owner (an admin, or none: a service account), a role and
//!   an expiry. Tokens created before are service tokens of the owner role.
//! * `audit_log`: the audit trail, append-only and hash-chained (each record hashes
//!   the previous record's hash and its own fields); `audit_head` is its last link and
//!   the event stream position the trail has read up to.
//! * `offboardings`, `offboarding_devices`: a user's devices retired or wiped in one
//!   action, each device's result tracked.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Admins {
    Table,
    Id,
    Name,
    DisplayName,
    Email,
    PasswordHash,
    PasswordChangedAt,
    MustChangePassword,
    FailedLogins,
    LockedUntil,
    LastFailedAt,
    LastLoginAt,
    LastLoginAddress,
    TotpSecretSealed,
    TotpPendingSealed,
    TotpEnabledAt,
    TotpLastStep,
    DisabledAt,
    DisabledReason,
    CreatedAt,
    CreatedBy,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum AdminPasswordHistory {
    Table,
    Id,
    AdminId,
    PasswordHash,
    CreatedAt,
}

#[derive(DeriveIden)]
enum AdminRecoveryCodes {
    Table,
    Id,
    AdminId,
    CodeHash,
    CreatedAt,
    UsedAt,
}

#[derive(DeriveIden)]
enum AdminRoles {
    Table,
    Name,
    Description,
    Rights,
    Critical,
    BuiltIn,
    UpdatedAt,
    UpdatedBy,
}

#[derive(DeriveIden)]
enum AdminGroups {
    Table,
    Id,
    Name,
    Description,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum AdminGroupMembers {
    Table,
    GroupId,
    AdminId,
}

#[derive(DeriveIden)]
enum AdminGroupRoles {
    Table,
    GroupId,
    RoleName,
}

#[derive(DeriveIden)]
enum AdminSessions {
    Table,
    Id,
    TokenHash,
    AdminId,
    State,
    Kind,
    CsrfHash,
    Mfa,
    CreatedAt,
    LastSeenAt,
    IdleTimeoutSecs,
    ExpiresAt,
    Address,
    UserAgent,
    RevokedAt,
}

#[derive(DeriveIden)]
enum AdminTokens {
    Table,
    AdminId,
    Role,
    ExpiresAt,
    CreatedBy,
    LastUsedAddress,
}

#[derive(DeriveIden)]
enum AuditLog {
    Table,
    Seq,
    EventId,
    At,
    Actor,
    Address,
    Action,
    Outcome,
    Details,
    PrevHash,
    Hash,
}

#[derive(DeriveIden)]
enum AuditHead {
    Table,
    Id,
    LastSeq,
    LastHash,
    LastEventId,
}

#[derive(DeriveIden)]
enum Offboardings {
    Table,
    Id,
    Username,
    RequestedBy,
    RequestedAt,
    Status,
    CompletedAt,
}

#[derive(DeriveIden)]
enum OffboardingDevices {
    Table,
    OffboardingId,
    DeviceId,
    Platform,
    Action,
    Status,
    CommandUuid,
    Detail,
    UpdatedAt,
}

fn ts(col: impl IntoIden) -> ColumnDef {
    ColumnDef::new(col).timestamp_with_time_zone().to_owned()
}

fn id(col: impl IntoIden) -> ColumnDef {
    ColumnDef::new(col)
        .string_len(36)
        .not_null()
        .primary_key()
        .to_owned()
}

/// The built-in roles as this release defines them: name, who gets it, rights,
/// critical. Editable afterwards (`PUT /api/v1/roles/{name}`); the service knows the
/// rights' meaning (services/admins/roles.rs).
const BUILT_IN_ROLES: &[(&str, &str, &str, &[&str], bool)] = &[
    (
        "owner",
        "owners",
        "Heads of IT who answer for the MDM: every right, including admins, roles and the audit trail.",
        &["*"],
        true,
    ),
    (
        "device_admin",
        "device-admins",
        "IT staff who run the fleet: devices, commands including wipe, enrollments, policies, push, Android.",
        &[
            "devices.read",
            "devices.query",
            "devices.lock",
            "devices.lost_mode",
            "devices.wipe",
            "devices.manage",
            "commands.send",
            "users.offboard",
            "enrollments.read",
            "enrollments.write",
            "policies.read",
            "policies.write",
            "directory.read",
            "push.read",
            "push.write",
            "android.read",
            "android.write",
            "incidents.read",
            "events.read",
        ],
        true,
    ),
    (
        "help_desk",
        "help-desk",
        "First-line support: device information, lock and lost mode for a user's lost phone; no wipe, no policies.",
        &[
            "devices.read",
            "devices.query",
            "devices.lock",
            "devices.lost_mode",
            "enrollments.read",
            "directory.read",
        ],
        true,
    ),
    (
        "incident_manager",
        "incident-managers",
        "The security officer and deputies: the incident register, approvals, evidence, lock and lost mode.",
        &[
            "incidents.read",
            "incidents.write",
            "incidents.approve",
            "devices.read",
            "devices.query",
            "devices.lock",
            "devices.lost_mode",
            "directory.read",
            "events.read",
            "exports",
        ],
        true,
    ),
    (
        "auditor",
        "auditors",
        "Internal audit and the yearly access review: reads everything, changes nothing.",
        &[
            "devices.read",
            "enrollments.read",
            "policies.read",
            "directory.read",
            "push.read",
            "android.read",
            "incidents.read",
            "events.read",
            "admins.read",
            "audit.read",
            "exports",
        ],
        true,
    ),
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        use Admins as A;
        manager
            .create_table(
                Table::create()
                    .table(A::Table)
                    .col(id(A::Id))
                    .col(
                        ColumnDef::new(A::Name)
                            .string_len(64)
                            .not_null()
                            .unique_key(),
                    )
                    .col(ColumnDef::new(A::DisplayName).string_len(255).not_null())
                    .col(ColumnDef::new(A::Email).string_len(255).null())
                    .col(ColumnDef::new(A::PasswordHash).text().not_null())
                    .col(ts(A::PasswordChangedAt).not_null())
                    .col(
                        ColumnDef::new(A::MustChangePassword)
                            .boolean()
                            .not_null()
                            .default(false),
                    )
                    .col(
                        ColumnDef::new(A::FailedLogins)
                            .integer()
                            .not_null()
                            .default(0),
                    )
                    .col(ts(A::LockedUntil).null())
                    .col(ts(A::LastFailedAt).null())
                    .col(ts(A::LastLoginAt).null())
                    .col(ColumnDef::new(A::LastLoginAddress).string_len(64).null())
                    .col(ColumnDef::new(A::TotpSecretSealed).binary().null())
                    .col(ColumnDef::new(A::TotpPendingSealed).binary().null())
                    .col(ts(A::TotpEnabledAt).null())
                    .col(ColumnDef::new(A::TotpLastStep).big_integer().null())
                    .col(ts(A::DisabledAt).null())
                    .col(ColumnDef::new(A::DisabledReason).text().null())
                    .col(ts(A::CreatedAt).not_null())
                    .col(ColumnDef::new(A::CreatedBy).string_len(255).not_null())
                    .col(ts(A::UpdatedAt).not_null())
                    .to_owned(),
            )
            .await?;

        use AdminPasswordHistory as H;
        manager
            .create_table(
                Table::create()
                    .table(H::Table)
                    .col(id(H::Id))
                    .col(ColumnDef::new(H::AdminId).string_len(36).not_null())
                    .col(ColumnDef::new(H::PasswordHash).text().not_null())
                    .col(ts(H::CreatedAt).not_null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_admin_password_history_admin")
                    .table(H::Table)
                    .col(H::AdminId)
                    .col(H::CreatedAt)
                    .to_owned(),
            )
            .await?;

        use AdminRecoveryCodes as R;
        manager
            .create_table(
                Table::create()
                    .table(R::Table)
                    .col(id(R::Id))
                    .col(ColumnDef::new(R::AdminId).string_len(36).not_null())
                    .col(ColumnDef::new(R::CodeHash).string_len(64).not_null())
                    .col(ts(R::CreatedAt).not_null())
                    .col(ts(R::UsedAt).null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_admin_recovery_codes_admin")
                    .table(R::Table)
                    .col(R::AdminId)
                    .col(R::CodeHash)
                    .to_owned(),
            )
            .await?;

        use AdminRoles as Ro;
        manager
            .create_table(
                Table::create()
                    .table(Ro::Table)
                    .col(
                        ColumnDef::new(Ro::Name)
                            .string_len(64)
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(Ro::Description).text().not_null())
                    .col(ColumnDef::new(Ro::Rights).text().not_null())
                    .col(ColumnDef::new(Ro::Critical).boolean().not_null())
                    .col(
                        ColumnDef::new(Ro::BuiltIn)
                            .boolean()
                            .not_null()
                            .default(false),
                    )
                    .col(ts(Ro::UpdatedAt).not_null())
                    .col(ColumnDef::new(Ro::UpdatedBy).string_len(255).not_null())
                    .to_owned(),
            )
            .await?;

        use AdminGroups as G;
        manager
            .create_table(
                Table::create()
                    .table(G::Table)
                    .col(id(G::Id))
                    .col(
                        ColumnDef::new(G::Name)
                            .string_len(64)
                            .not_null()
                            .unique_key(),
                    )
                    .col(ColumnDef::new(G::Description).text().not_null())
                    .col(ts(G::CreatedAt).not_null())
                    .col(ts(G::UpdatedAt).not_null())
                    .to_owned(),
            )
            .await?;

        use AdminGroupMembers as M;
        manager
            .create_table(
                Table::create()
                    .table(M::Table)
                    .col(ColumnDef::new(M::GroupId).string_len(36).not_null())
                    .col(ColumnDef::new(M::AdminId).string_len(36).not_null())
                    .primary_key(Index::create().col(M::GroupId).col(M::AdminId))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_admin_group_members_admin")
                    .table(M::Table)
                    .col(M::AdminId)
                    .to_owned(),
            )
            .await?;

        use AdminGroupRoles as GR;
        manager
            .create_table(
                Table::create()
                    .table(GR::Table)
                    .col(ColumnDef::new(GR::GroupId).string_len(36).not_null())
                    .col(ColumnDef::new(GR::RoleName).string_len(64).not_null())
                    .primary_key(Index::create().col(GR::GroupId).col(GR::RoleName))
                    .to_owned(),
            )
            .await?;

        use AdminSessions as S;
        manager
            .create_table(
                Table::create()
                    .table(S::Table)
                    .col(id(S::Id))
                    .col(
                        ColumnDef::new(S::TokenHash)
                            .string_len(64)
                            .not_null()
                            .unique_key(),
                    )
                    .col(ColumnDef::new(S::AdminId).string_len(36).not_null())
                    .col(ColumnDef::new(S::State).string_len(16).not_null())
                    .col(ColumnDef::new(S::Kind).string_len(16).not_null())
                    .col(ColumnDef::new(S::CsrfHash).string_len(64).null())
                    .col(ColumnDef::new(S::Mfa).boolean().not_null().default(false))
                    .col(ts(S::CreatedAt).not_null())
                    .col(ts(S::LastSeenAt).not_null())
                    .col(ColumnDef::new(S::IdleTimeoutSecs).integer().not_null())
                    .col(ts(S::ExpiresAt).not_null())
                    .col(ColumnDef::new(S::Address).string_len(64).null())
                    .col(ColumnDef::new(S::UserAgent).string_len(255).null())
                    .col(ts(S::RevokedAt).null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_admin_sessions_admin")
                    .table(S::Table)
                    .col(S::AdminId)
                    .to_owned(),
            )
            .await?;

        // Tokens: an owner (NULL: a service account), a role, an expiry. Existing
        // tokens become service tokens with the owner role (the default).
        for column in [
            ColumnDef::new(AdminTokens::AdminId)
                .string_len(36)
                .null()
                .to_owned(),
            ColumnDef::new(AdminTokens::Role)
                .string_len(64)
                .not_null()
                .default("owner")
                .to_owned(),
            ts(AdminTokens::ExpiresAt).null().to_owned(),
            ColumnDef::new(AdminTokens::CreatedBy)
                .string_len(255)
                .null()
                .to_owned(),
            ColumnDef::new(AdminTokens::LastUsedAddress)
                .string_len(64)
                .null()
                .to_owned(),
        ] {
            let mut column = column;
            manager
                .alter_table(
                    Table::alter()
                        .table(AdminTokens::Table)
                        .add_column(&mut column)
                        .to_owned(),
                )
                .await?;
        }

        use AuditLog as L;
        manager
            .create_table(
                Table::create()
                    .table(L::Table)
                    .col(
                        ColumnDef::new(L::Seq)
                            .big_integer()
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(L::EventId).big_integer().null().unique_key())
                    .col(ts(L::At).not_null())
                    .col(ColumnDef::new(L::Actor).string_len(255).not_null())
                    .col(ColumnDef::new(L::Address).string_len(64).null())
                    .col(ColumnDef::new(L::Action).string_len(128).not_null())
                    .col(ColumnDef::new(L::Outcome).string_len(32).not_null())
                    .col(ColumnDef::new(L::Details).text().not_null())
                    .col(ColumnDef::new(L::PrevHash).string_len(64).not_null())
                    .col(ColumnDef::new(L::Hash).string_len(64).not_null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_audit_log_at")
                    .table(L::Table)
                    .col(L::At)
                    .to_owned(),
            )
            .await?;

        use AuditHead as AH;
        manager
            .create_table(
                Table::create()
                    .table(AH::Table)
                    .col(ColumnDef::new(AH::Id).integer().not_null().primary_key())
                    .col(ColumnDef::new(AH::LastSeq).big_integer().not_null())
                    .col(ColumnDef::new(AH::LastHash).string_len(64).not_null())
                    .col(ColumnDef::new(AH::LastEventId).big_integer().not_null())
                    .to_owned(),
            )
            .await?;
        // The chain starts from a genesis link of 64 zeros; the trail reads the event
        // stream from its start, so the admin events before this release are in it.
        manager
            .exec_stmt(
                Query::insert()
                    .into_table(AH::Table)
                    .columns([AH::Id, AH::LastSeq, AH::LastHash, AH::LastEventId])
                    .values_panic([1.into(), 0i64.into(), "0".repeat(64).into(), 0i64.into()])
                    .to_owned(),
            )
            .await?;

        use Offboardings as O;
        manager
            .create_table(
                Table::create()
                    .table(O::Table)
                    .col(id(O::Id))
                    .col(ColumnDef::new(O::Username).string_len(255).not_null())
                    .col(ColumnDef::new(O::RequestedBy).string_len(255).not_null())
                    .col(ts(O::RequestedAt).not_null())
                    .col(ColumnDef::new(O::Status).string_len(16).not_null())
                    .col(ts(O::CompletedAt).null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_offboardings_username")
                    .table(O::Table)
                    .col(O::Username)
                    .to_owned(),
            )
            .await?;
        use OffboardingDevices as OD;
        manager
            .create_table(
                Table::create()
                    .table(OD::Table)
                    .col(ColumnDef::new(OD::OffboardingId).string_len(36).not_null())
                    .col(ColumnDef::new(OD::DeviceId).string_len(36).not_null())
                    .col(ColumnDef::new(OD::Platform).string_len(16).not_null())
                    .col(ColumnDef::new(OD::Action).string_len(16).not_null())
                    .col(ColumnDef::new(OD::Status).string_len(16).not_null())
                    .col(ColumnDef::new(OD::CommandUuid).string_len(64).null())
                    .col(ColumnDef::new(OD::Detail).text().null())
                    .col(ts(OD::UpdatedAt).not_null())
                    .primary_key(Index::create().col(OD::OffboardingId).col(OD::DeviceId))
                    .to_owned(),
            )
            .await?;

        // The built-in roles, and one admin group for each.
        for (n, (role, group, description, rights, critical)) in BUILT_IN_ROLES.iter().enumerate() {
            let rights = format!(
                "[{}]",
                rights
                    .iter()
                    .map(|r| format!("\"{r}\""))
                    .collect::<Vec<_>>()
                    .join(",")
            );
            manager
                .exec_stmt(
                    Query::insert()
                        .into_table(Ro::Table)
                        .columns([
                            Ro::Name,
                            Ro::Description,
                            Ro::Rights,
                            Ro::Critical,
                            Ro::BuiltIn,
                            Ro::UpdatedAt,
                            Ro::UpdatedBy,
                        ])
                        .values_panic([
                            (*role).into(),
                            (*description).into(),
                            rights.into(),
                            (*critical).into(),
                            true.into(),
                            Expr::current_timestamp().into(),
                            "migration".into(),
                        ])
                        .to_owned(),
                )
                .await?;
            let group_id = format!("00000000-0000-4000-8000-00000000000{}", n + 1);
            manager
                .exec_stmt(
                    Query::insert()
                        .into_table(G::Table)
                        .columns([G::Id, G::Name, G::Description, G::CreatedAt, G::UpdatedAt])
                        .values_panic([
                            group_id.clone().into(),
                            (*group).into(),
                            format!("Holders of the {role} role").into(),
                            Expr::current_timestamp().into(),
                            Expr::current_timestamp().into(),
                        ])
                        .to_owned(),
                )
                .await?;
            manager
                .exec_stmt(
                    Query::insert()
                        .into_table(GR::Table)
                        .columns([GR::GroupId, GR::RoleName])
                        .values_panic([group_id.into(), (*role).into()])
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            OffboardingDevices::Table.into_iden(),
            Offboardings::Table.into_iden(),
            AuditHead::Table.into_iden(),
            AuditLog::Table.into_iden(),
            AdminSessions::Table.into_iden(),
            AdminGroupRoles::Table.into_iden(),
            AdminGroupMembers::Table.into_iden(),
            AdminGroups::Table.into_iden(),
            AdminRoles::Table.into_iden(),
            AdminRecoveryCodes::Table.into_iden(),
            AdminPasswordHistory::Table.into_iden(),
            Admins::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        for column in [
            AdminTokens::AdminId.into_iden(),
            AdminTokens::Role.into_iden(),
            AdminTokens::ExpiresAt.into_iden(),
            AdminTokens::CreatedBy.into_iden(),
            AdminTokens::LastUsedAddress.into_iden(),
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(AdminTokens::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
