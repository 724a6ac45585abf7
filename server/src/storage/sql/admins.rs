//! [`AdminStore`] on sea-orm, first half: admin accounts, roles and admin groups,
//! sessions and API tokens. The audit trail and off-boardings are in `audit.rs`.
//!
//! Nothing here is cached: a disabled admin, a revoked session or token, a changed
//! role is seen by the next request on every instance.

use super::events::insert_event;
use super::*;
use crate::storage::entities::{
    admin_group_members as members, admin_group_roles as group_roles, admin_groups as groups,
    admin_password_history as history, admin_recovery_codes as codes, admin_roles as roles,
    admin_sessions as sessions, admin_tokens as tokens, admins,
};
use crate::storage::*;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect, Set,
};
use std::collections::HashMap;

fn admin_from(m: admins::Model) -> AdminRow {
    AdminRow {
        id: m.id,
        name: m.name,
        display_name: m.display_name,
        email: m.email,
        password_hash: m.password_hash,
        password_changed_at: m.password_changed_at,
        must_change_password: m.must_change_password,
        failed_logins: m.failed_logins,
        locked_until: m.locked_until,
        last_failed_at: m.last_failed_at,
        last_login_at: m.last_login_at,
        last_login_address: m.last_login_address,
        totp_secret_sealed: m.totp_secret_sealed,
        totp_pending_sealed: m.totp_pending_sealed,
        totp_enabled_at: m.totp_enabled_at,
        totp_last_step: m.totp_last_step,
        disabled_at: m.disabled_at,
        disabled_reason: m.disabled_reason,
        created_at: m.created_at,
        created_by: m.created_by,
        updated_at: m.updated_at,
        language: m.language,
    }
}

fn role_from(m: roles::Model) -> RoleRow {
    RoleRow {
        rights: serde_json::from_str(&m.rights).unwrap_or_default(),
        name: m.name,
        description: m.description,
        critical: m.critical,
        built_in: m.built_in,
        updated_at: m.updated_at,
        updated_by: m.updated_by,
    }
}

fn session_from(m: sessions::Model, admin_name: String) -> SessionRow {
    SessionRow {
        id: m.id,
        admin_id: m.admin_id,
        admin_name,
        state: m.state,
        kind: m.kind,
        csrf_hash: m.csrf_hash,
        mfa: m.mfa,
        created_at: m.created_at,
        last_seen_at: m.last_seen_at,
        idle_timeout_secs: m.idle_timeout_secs,
        expires_at: m.expires_at,
        address: m.address,
        user_agent: m.user_agent,
        revoked_at: m.revoked_at,
    }
}

fn token_from(m: tokens::Model, admin_name: Option<String>) -> ApiTokenRow {
    ApiTokenRow {
        id: m.id,
        name: m.name,
        admin_id: m.admin_id,
        admin_name,
        role: m.role,
        created_at: m.created_at,
        created_by: m.created_by,
        expires_at: m.expires_at,
        last_used_at: m.last_used_at,
        last_used_address: m.last_used_address,
        revoked_at: m.revoked_at,
    }
}

/// Names of admins by id.
async fn admin_names<C: sea_orm::ConnectionTrait>(
    db: &C,
    ids: Vec<String>,
) -> StoreResult<HashMap<String, String>> {
    let mut out = HashMap::new();
    for chunk in ids.chunks(LOOKUP_BATCH) {
        for a in admins::Entity::find()
            .filter(admins::Column::Id.is_in(chunk.to_vec()))
            .all(db)
            .await?
        {
            out.insert(a.id, a.name);
        }
    }
    Ok(out)
}

async fn group_by_name<C: sea_orm::ConnectionTrait>(
    db: &C,
    name: &str,
) -> StoreResult<Option<groups::Model>> {
    Ok(groups::Entity::find()
        .filter(groups::Column::Name.eq(name))
        .one(db)
        .await?)
}

#[async_trait]
impl AdminStore for SqlStore {
    async fn create_admin(
        &self,
        row: AdminRow,
        group_names: &[String],
        event: NewEvent,
    ) -> StoreResult<()> {
        let txn = self.begin_write().await?;
        if admins::Entity::find()
            .filter(admins::Column::Name.eq(row.name.as_str()))
            .one(&txn)
            .await?
            .is_some()
        {
            return Err(StoreError::Conflict(format!(
                "an admin named {:?} exists already",
                row.name
            )));
        }
        let mut group_ids = Vec::new();
        for name in group_names {
            let g = group_by_name(&txn, name)
                .await?
                .ok_or_else(|| StoreError::NotFound(format!("no admin group {name:?}")))?;
            group_ids.push(g.id);
        }
        admins::ActiveModel {
            id: Set(row.id.clone()),
            name: Set(row.name),
            display_name: Set(row.display_name),
            email: Set(row.email),
            password_hash: Set(row.password_hash),
            password_changed_at: Set(row.password_changed_at),
            must_change_password: Set(row.must_change_password),
            failed_logins: Set(0),
            locked_until: Set(None),
            last_failed_at: Set(None),
            last_login_at: Set(None),
            last_login_address: Set(None),
            totp_secret_sealed: Set(row.totp_secret_sealed),
            totp_pending_sealed: Set(row.totp_pending_sealed),
            totp_enabled_at: Set(row.totp_enabled_at),
            totp_last_step: Set(row.totp_last_step),
            disabled_at: Set(None),
            disabled_reason: Set(None),
            created_at: Set(row.created_at),
            created_by: Set(row.created_by),
            updated_at: Set(row.updated_at),
            language: Set(row.language),
        }
        .insert(&txn)
        .await?;
        group_ids.sort();
        group_ids.dedup();
        for group_id in group_ids {
            members::ActiveModel {
                group_id: Set(group_id),
                admin_id: Set(row.id.clone()),
            }
            .insert(&txn)
            .await?;
        }
        insert_event(&txn, event).await?;
        txn.commit().await?;
        Ok(())
    }

    async fn admin_by_name(&self, name: &str) -> StoreResult<Option<AdminRow>> {
        Ok(admins::Entity::find()
            .filter(admins::Column::Name.eq(name))
            .one(&self.db)
            .await?
            .map(admin_from))
    }

    async fn admin_by_id(&self, id: &str) -> StoreResult<Option<AdminRow>> {
        Ok(admins::Entity::find_by_id(id)
            .one(&self.db)
            .await?
            .map(admin_from))
    }

    async fn admins(&self) -> StoreResult<Vec<AdminRow>> {
        Ok(admins::Entity::find()
            .order_by_asc(admins::Column::Name)
            .all(&self.db)
            .await?
            .into_iter()
            .map(admin_from)
            .collect())
    }

    async fn set_admin_disabled(
        &self,
        admin_id: &str,
        at: Option<DateTime<Utc>>,
        reason: Option<String>,
        event: NewEvent,
    ) -> StoreResult<bool> {
        let txn = self.begin_write().await?;
        let now = Utc::now();
        let changed = admins::Entity::update_many()
            .col_expr(admins::Column::DisabledAt, Expr::value(at))
            .col_expr(admins::Column::DisabledReason, Expr::value(reason))
            .col_expr(admins::Column::FailedLogins, Expr::value(0))
            .col_expr(
                admins::Column::LockedUntil,
                Expr::value(None::<DateTime<Utc>>),
            )
            .col_expr(admins::Column::UpdatedAt, Expr::value(now))
            .filter(admins::Column::Id.eq(admin_id))
            .exec(&txn)
            .await?
            .rows_affected;
        if changed == 0 {
            return Ok(false);
        }
        if at.is_some() {
            // Blocked at once: its sessions and tokens end with it (the extractor
            // checks the account on every request as well).
            sessions::Entity::update_many()
                .col_expr(sessions::Column::RevokedAt, Expr::value(now))
                .filter(sessions::Column::AdminId.eq(admin_id))
                .filter(sessions::Column::RevokedAt.is_null())
                .exec(&txn)
                .await?;
            tokens::Entity::update_many()
                .col_expr(tokens::Column::RevokedAt, Expr::value(now))
                .filter(tokens::Column::AdminId.eq(admin_id))
                .filter(tokens::Column::RevokedAt.is_null())
                .exec(&txn)
                .await?;
            // The access policy: a person who leaves is removed from all groups.
            members::Entity::delete_many()
                .filter(members::Column::AdminId.eq(admin_id))
                .exec(&txn)
                .await?;
        }
        insert_event(&txn, event).await?;
        txn.commit().await?;
        Ok(true)
    }

    async fn admin_login_failed(
        &self,
        admin_id: &str,
        at: DateTime<Utc>,
        rule: LockoutRule,
    ) -> StoreResult<(i32, Option<DateTime<Utc>>)> {
        let txn = self.begin_write().await?;
        let mut query = admins::Entity::find_by_id(admin_id);
        if self.backend() == sea_orm::DbBackend::Postgres {
            query = query.lock_exclusive();
        }
        let Some(admin) = query.one(&txn).await? else {
            return Ok((0, None));
        };
        let failures = admin.failed_logins.saturating_add(1);
        let locked_until = if failures >= rule.threshold {
            let doublings = (failures - rule.threshold).min(20) as u32;
            let secs = rule
                .base_secs
                .saturating_mul(1i64 << doublings)
                .min(rule.max_secs);
            Some(at + chrono::Duration::seconds(secs))
        } else {
            None
        };
        admins::Entity::update_many()
            .col_expr(admins::Column::FailedLogins, Expr::value(failures))
            .col_expr(admins::Column::LockedUntil, Expr::value(locked_until))
            .col_expr(admins::Column::LastFailedAt, Expr::value(at))
            .filter(admins::Column::Id.eq(admin_id))
            .exec(&txn)
            .await?;
        txn.commit().await?;
        Ok((failures, locked_until))
    }

    async fn admin_login_succeeded(
        &self,
        admin_id: &str,
        at: DateTime<Utc>,
        address: Option<&str>,
    ) -> StoreResult<()> {
        admins::Entity::update_many()
            .col_expr(admins::Column::FailedLogins, Expr::value(0))
            .col_expr(
                admins::Column::LockedUntil,
                Expr::value(None::<DateTime<Utc>>),
            )
            .col_expr(admins::Column::LastLoginAt, Expr::value(at))
            .col_expr(
                admins::Column::LastLoginAddress,
                Expr::value(address.map(str::to_owned)),
            )
            .filter(admins::Column::Id.eq(admin_id))
            .exec(&self.db)
            .await?;
        Ok(())
    }

    async fn password_history(&self, admin_id: &str, limit: u64) -> StoreResult<Vec<String>> {
        Ok(history::Entity::find()
            .filter(history::Column::AdminId.eq(admin_id))
            .order_by_desc(history::Column::CreatedAt)
            .limit(limit)
            .all(&self.db)
            .await?
            .into_iter()
            .map(|h| h.password_hash)
            .collect())
    }

    async fn set_admin_password(
        &self,
        admin_id: &str,
        hash: &str,
        at: DateTime<Utc>,
        must_change: bool,
        keep: u64,
        event: NewEvent,
    ) -> StoreResult<()> {
        let txn = self.begin_write().await?;
        let admin = admins::Entity::find_by_id(admin_id)
            .one(&txn)
            .await?
            .ok_or_else(|| StoreError::NotFound("no such admin".into()))?;
        history::ActiveModel {
            id: Set(uuid::Uuid::new_v4().to_string()),
            admin_id: Set(admin_id.to_owned()),
            password_hash: Set(admin.password_hash),
            created_at: Set(admin.password_changed_at),
        }
        .insert(&txn)
        .await?;
        // Only the newest `keep` stay.
        let old: Vec<String> = history::Entity::find()
            .filter(history::Column::AdminId.eq(admin_id))
            .order_by_desc(history::Column::CreatedAt)
            .all(&txn)
            .await?
            .into_iter()
            .skip(keep as usize)
            .map(|h| h.id)
            .collect();
        if !old.is_empty() {
            history::Entity::delete_many()
                .filter(history::Column::Id.is_in(old))
                .exec(&txn)
                .await?;
        }
        admins::Entity::update_many()
            .col_expr(admins::Column::PasswordHash, Expr::value(hash))
            .col_expr(admins::Column::PasswordChangedAt, Expr::value(at))
            .col_expr(admins::Column::MustChangePassword, Expr::value(must_change))
            .col_expr(admins::Column::UpdatedAt, Expr::value(at))
            .filter(admins::Column::Id.eq(admin_id))
            .exec(&txn)
            .await?;
        insert_event(&txn, event).await?;
        txn.commit().await?;
        Ok(())
    }

    async fn set_totp_pending(&self, admin_id: &str, sealed: Option<Vec<u8>>) -> StoreResult<()> {
        admins::Entity::update_many()
            .col_expr(admins::Column::TotpPendingSealed, Expr::value(sealed))
            .filter(admins::Column::Id.eq(admin_id))
            .exec(&self.db)
            .await?;
        Ok(())
    }

    async fn enable_totp(
        &self,
        admin_id: &str,
        sealed: Vec<u8>,
        step: i64,
        recovery_hashes: &[String],
        at: DateTime<Utc>,
        event: NewEvent,
    ) -> StoreResult<()> {
        let txn = self.begin_write().await?;
        admins::Entity::update_many()
            .col_expr(admins::Column::TotpSecretSealed, Expr::value(Some(sealed)))
            .col_expr(
                admins::Column::TotpPendingSealed,
                Expr::value(None::<Vec<u8>>),
            )
            .col_expr(admins::Column::TotpEnabledAt, Expr::value(at))
            .col_expr(admins::Column::TotpLastStep, Expr::value(step))
            .col_expr(admins::Column::UpdatedAt, Expr::value(at))
            .filter(admins::Column::Id.eq(admin_id))
            .exec(&txn)
            .await?;
        codes::Entity::delete_many()
            .filter(codes::Column::AdminId.eq(admin_id))
            .exec(&txn)
            .await?;
        for h in recovery_hashes {
            codes::ActiveModel {
                id: Set(uuid::Uuid::new_v4().to_string()),
                admin_id: Set(admin_id.to_owned()),
                code_hash: Set(h.clone()),
                created_at: Set(at),
                used_at: Set(None),
            }
            .insert(&txn)
            .await?;
        }
        insert_event(&txn, event).await?;
        txn.commit().await?;
        Ok(())
    }

    async fn reset_totp(&self, admin_id: &str, event: NewEvent) -> StoreResult<()> {
        let txn = self.begin_write().await?;
        admins::Entity::update_many()
            .col_expr(
                admins::Column::TotpSecretSealed,
                Expr::value(None::<Vec<u8>>),
            )
            .col_expr(
                admins::Column::TotpPendingSealed,
                Expr::value(None::<Vec<u8>>),
            )
            .col_expr(
                admins::Column::TotpEnabledAt,
                Expr::value(None::<DateTime<Utc>>),
            )
            .col_expr(admins::Column::TotpLastStep, Expr::value(None::<i64>))
            .filter(admins::Column::Id.eq(admin_id))
            .exec(&txn)
            .await?;
        codes::Entity::delete_many()
            .filter(codes::Column::AdminId.eq(admin_id))
            .exec(&txn)
            .await?;
        insert_event(&txn, event).await?;
        txn.commit().await?;
        Ok(())
    }

    async fn use_totp_step(&self, admin_id: &str, step: i64) -> StoreResult<bool> {
        // Conditional: of two requests with the same code, on any instances, one wins.
        Ok(admins::Entity::update_many()
            .col_expr(admins::Column::TotpLastStep, Expr::value(step))
            .filter(admins::Column::Id.eq(admin_id))
            .filter(
                Condition::any()
                    .add(admins::Column::TotpLastStep.is_null())
                    .add(admins::Column::TotpLastStep.lt(step)),
            )
            .exec(&self.db)
            .await?
            .rows_affected
            == 1)
    }

    async fn use_recovery_code(
        &self,
        admin_id: &str,
        code_hash: &str,
        at: DateTime<Utc>,
    ) -> StoreResult<bool> {
        Ok(codes::Entity::update_many()
            .col_expr(codes::Column::UsedAt, Expr::value(at))
            .filter(codes::Column::AdminId.eq(admin_id))
            .filter(codes::Column::CodeHash.eq(code_hash))
            .filter(codes::Column::UsedAt.is_null())
            .exec(&self.db)
            .await?
            .rows_affected
            >= 1)
    }

    async fn recovery_codes_left(&self, admin_id: &str) -> StoreResult<u64> {
        Ok(codes::Entity::find()
            .filter(codes::Column::AdminId.eq(admin_id))
            .filter(codes::Column::UsedAt.is_null())
            .count(&self.db)
            .await?)
    }

    async fn roles(&self) -> StoreResult<Vec<RoleRow>> {
        Ok(roles::Entity::find()
            .order_by_asc(roles::Column::Name)
            .all(&self.db)
            .await?
            .into_iter()
            .map(role_from)
            .collect())
    }

    async fn put_role(&self, role: RoleRow, event: NewEvent) -> StoreResult<bool> {
        let txn = self.begin_write().await?;
        let existing = roles::Entity::find_by_id(role.name.as_str())
            .one(&txn)
            .await?;
        let model = roles::ActiveModel {
            name: Set(role.name.clone()),
            description: Set(role.description),
            rights: Set(serde_json::to_string(&role.rights).unwrap_or_else(|_| "[]".into())),
            critical: Set(role.critical),
            built_in: Set(existing.as_ref().is_some_and(|e| e.built_in)),
            updated_at: Set(role.updated_at),
            updated_by: Set(role.updated_by),
        };
        let created = existing.is_none();
        if created {
            model.insert(&txn).await?;
        } else {
            model.update(&txn).await?;
        }
        insert_event(&txn, event).await?;
        txn.commit().await?;
        Ok(created)
    }

    async fn delete_role(&self, name: &str, event: NewEvent) -> StoreResult<bool> {
        let txn = self.begin_write().await?;
        let Some(role) = roles::Entity::find_by_id(name).one(&txn).await? else {
            return Ok(false);
        };
        if role.built_in {
            return Err(StoreError::Conflict(format!(
                "{name} is a built-in role: edit it instead of deleting it"
            )));
        }
        let granted = group_roles::Entity::find()
            .filter(group_roles::Column::RoleName.eq(name))
            .count(&txn)
            .await?;
        if granted > 0 {
            return Err(StoreError::Conflict(format!(
                "role {name} is granted to {granted} admin group(s): revoke it first"
            )));
        }
        let tokens_with_it = tokens::Entity::find()
            .filter(tokens::Column::Role.eq(name))
            .filter(tokens::Column::RevokedAt.is_null())
            .count(&txn)
            .await?;
        if tokens_with_it > 0 {
            return Err(StoreError::Conflict(format!(
                "role {name} is carried by {tokens_with_it} API token(s): revoke them first"
            )));
        }
        roles::Entity::delete_by_id(name).exec(&txn).await?;
        insert_event(&txn, event).await?;
        txn.commit().await?;
        Ok(true)
    }

    async fn admin_groups(&self) -> StoreResult<Vec<AdminGroupRow>> {
        let all = groups::Entity::find()
            .order_by_asc(groups::Column::Name)
            .all(&self.db)
            .await?;
        let member_rows = members::Entity::find().all(&self.db).await?;
        let names = admin_names(
            &self.db,
            member_rows.iter().map(|m| m.admin_id.clone()).collect(),
        )
        .await?;
        let role_rows = group_roles::Entity::find().all(&self.db).await?;
        Ok(all
            .into_iter()
            .map(|g| {
                let mut member_names: Vec<String> = member_rows
                    .iter()
                    .filter(|m| m.group_id == g.id)
                    .filter_map(|m| names.get(&m.admin_id).cloned())
                    .collect();
                member_names.sort();
                let mut role_names: Vec<String> = role_rows
                    .iter()
                    .filter(|r| r.group_id == g.id)
                    .map(|r| r.role_name.clone())
                    .collect();
                role_names.sort();
                AdminGroupRow {
                    id: g.id,
                    name: g.name,
                    description: g.description,
                    members: member_names,
                    roles: role_names,
                    created_at: g.created_at,
                    updated_at: g.updated_at,
                }
            })
            .collect())
    }

    async fn put_admin_group(
        &self,
        name: &str,
        description: &str,
        at: DateTime<Utc>,
        event: NewEvent,
    ) -> StoreResult<bool> {
        let txn = self.begin_write().await?;
        let created = match group_by_name(&txn, name).await? {
            Some(g) => {
                groups::ActiveModel {
                    id: Set(g.id),
                    description: Set(description.to_owned()),
                    updated_at: Set(at),
                    ..Default::default()
                }
                .update(&txn)
                .await?;
                false
            }
            None => {
                groups::ActiveModel {
                    id: Set(uuid::Uuid::new_v4().to_string()),
                    name: Set(name.to_owned()),
                    description: Set(description.to_owned()),
                    created_at: Set(at),
                    updated_at: Set(at),
                }
                .insert(&txn)
                .await?;
                true
            }
        };
        insert_event(&txn, event).await?;
        txn.commit().await?;
        Ok(created)
    }

    async fn delete_admin_group(&self, name: &str, event: NewEvent) -> StoreResult<bool> {
        let txn = self.begin_write().await?;
        let Some(g) = group_by_name(&txn, name).await? else {
            return Ok(false);
        };
        members::Entity::delete_many()
            .filter(members::Column::GroupId.eq(g.id.as_str()))
            .exec(&txn)
            .await?;
        group_roles::Entity::delete_many()
            .filter(group_roles::Column::GroupId.eq(g.id.as_str()))
            .exec(&txn)
            .await?;
        groups::Entity::delete_by_id(g.id).exec(&txn).await?;
        insert_event(&txn, event).await?;
        txn.commit().await?;
        Ok(true)
    }

    async fn change_admin_group(
        &self,
        name: &str,
        add_members: &[String],
        remove_members: &[String],
        add_roles: &[String],
        remove_roles: &[String],
        event: NewEvent,
    ) -> StoreResult<()> {
        let txn = self.begin_write().await?;
        let g = group_by_name(&txn, name)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("no admin group {name:?}")))?;
        let admin_id = |n: &String| {
            let txn = &txn;
            let n = n.clone();
            async move {
                admins::Entity::find()
                    .filter(admins::Column::Name.eq(n.as_str()))
                    .one(txn)
                    .await?
                    .map(|a| a.id)
                    .ok_or_else(|| StoreError::NotFound(format!("no admin named {n:?}")))
            }
        };
        for n in add_members {
            let id = admin_id(n).await?;
            let exists = members::Entity::find_by_id((g.id.clone(), id.clone()))
                .one(&txn)
                .await?
                .is_some();
            if !exists {
                members::ActiveModel {
                    group_id: Set(g.id.clone()),
                    admin_id: Set(id),
                }
                .insert(&txn)
                .await?;
            }
        }
        for n in remove_members {
            let id = admin_id(n).await?;
            members::Entity::delete_by_id((g.id.clone(), id))
                .exec(&txn)
                .await?;
        }
        for r in add_roles {
            if roles::Entity::find_by_id(r.as_str())
                .one(&txn)
                .await?
                .is_none()
            {
                return Err(StoreError::NotFound(format!("no role {r:?}")));
            }
            let exists = group_roles::Entity::find_by_id((g.id.clone(), r.clone()))
                .one(&txn)
                .await?
                .is_some();
            if !exists {
                group_roles::ActiveModel {
                    group_id: Set(g.id.clone()),
                    role_name: Set(r.clone()),
                }
                .insert(&txn)
                .await?;
            }
        }
        for r in remove_roles {
            group_roles::Entity::delete_by_id((g.id.clone(), r.clone()))
                .exec(&txn)
                .await?;
        }
        groups::ActiveModel {
            id: Set(g.id),
            updated_at: Set(Utc::now()),
            ..Default::default()
        }
        .update(&txn)
        .await?;
        insert_event(&txn, event).await?;
        txn.commit().await?;
        Ok(())
    }

    async fn roles_of_admin(&self, admin_id: &str) -> StoreResult<(Vec<RoleRow>, Vec<String>)> {
        let group_ids: Vec<String> = members::Entity::find()
            .filter(members::Column::AdminId.eq(admin_id))
            .all(&self.db)
            .await?
            .into_iter()
            .map(|m| m.group_id)
            .collect();
        if group_ids.is_empty() {
            return Ok((Vec::new(), Vec::new()));
        }
        let mut group_names: Vec<String> = groups::Entity::find()
            .filter(groups::Column::Id.is_in(group_ids.clone()))
            .all(&self.db)
            .await?
            .into_iter()
            .map(|g| g.name)
            .collect();
        group_names.sort();
        let mut role_names: Vec<String> = group_roles::Entity::find()
            .filter(group_roles::Column::GroupId.is_in(group_ids))
            .all(&self.db)
            .await?
            .into_iter()
            .map(|r| r.role_name)
            .collect();
        role_names.sort();
        role_names.dedup();
        if role_names.is_empty() {
            return Ok((Vec::new(), group_names));
        }
        let held = roles::Entity::find()
            .filter(roles::Column::Name.is_in(role_names))
            .order_by_asc(roles::Column::Name)
            .all(&self.db)
            .await?
            .into_iter()
            .map(role_from)
            .collect();
        Ok((held, group_names))
    }

    async fn create_session(&self, row: SessionRow, token_hash: &str) -> StoreResult<()> {
        sessions::ActiveModel {
            id: Set(row.id),
            token_hash: Set(token_hash.to_owned()),
            admin_id: Set(row.admin_id),
            state: Set(row.state),
            kind: Set(row.kind),
            csrf_hash: Set(row.csrf_hash),
            mfa: Set(row.mfa),
            created_at: Set(row.created_at),
            last_seen_at: Set(row.last_seen_at),
            idle_timeout_secs: Set(row.idle_timeout_secs),
            expires_at: Set(row.expires_at),
            address: Set(row.address),
            user_agent: Set(row.user_agent),
            revoked_at: Set(None),
        }
        .insert(&self.db)
        .await?;
        Ok(())
    }

    async fn session_by_hash(&self, token_hash: &str) -> StoreResult<Option<SessionRow>> {
        let Some(s) = sessions::Entity::find()
            .filter(sessions::Column::TokenHash.eq(token_hash))
            .filter(sessions::Column::RevokedAt.is_null())
            .one(&self.db)
            .await?
        else {
            return Ok(None);
        };
        let name = admins::Entity::find_by_id(s.admin_id.as_str())
            .one(&self.db)
            .await?
            .map(|a| a.name)
            .unwrap_or_default();
        Ok(Some(session_from(s, name)))
    }

    async fn touch_session(&self, id: &str, at: DateTime<Utc>) -> StoreResult<()> {
        sessions::Entity::update_many()
            .col_expr(sessions::Column::LastSeenAt, Expr::value(at))
            .filter(sessions::Column::Id.eq(id))
            .filter(sessions::Column::LastSeenAt.lt(at))
            .exec(&self.db)
            .await?;
        Ok(())
    }

    async fn set_admin_language(&self, admin_id: &str, language: &str) -> StoreResult<()> {
        admins::Entity::update_many()
            .col_expr(admins::Column::Language, Expr::value(language))
            .filter(admins::Column::Id.eq(admin_id))
            .exec(&self.db)
            .await?;
        Ok(())
    }

    async fn activate_session(
        &self,
        id: &str,
        token_hash: &str,
        csrf_hash: Option<String>,
        mfa: bool,
        at: DateTime<Utc>,
    ) -> StoreResult<bool> {
        Ok(sessions::Entity::update_many()
            .col_expr(sessions::Column::State, Expr::value("active"))
            .col_expr(sessions::Column::TokenHash, Expr::value(token_hash))
            .col_expr(sessions::Column::CsrfHash, Expr::value(csrf_hash))
            .col_expr(sessions::Column::Mfa, Expr::value(mfa))
            .col_expr(sessions::Column::LastSeenAt, Expr::value(at))
            .filter(sessions::Column::Id.eq(id))
            .filter(sessions::Column::State.eq("pending_mfa"))
            .filter(sessions::Column::RevokedAt.is_null())
            .exec(&self.db)
            .await?
            .rows_affected
            == 1)
    }

    async fn set_session_mfa(&self, id: &str) -> StoreResult<()> {
        sessions::Entity::update_many()
            .col_expr(sessions::Column::Mfa, Expr::value(true))
            .filter(sessions::Column::Id.eq(id))
            .exec(&self.db)
            .await?;
        Ok(())
    }

    async fn revoke_sessions(
        &self,
        admin_id: Option<&str>,
        id: Option<&str>,
        at: DateTime<Utc>,
    ) -> StoreResult<u64> {
        let mut update = sessions::Entity::update_many()
            .col_expr(sessions::Column::RevokedAt, Expr::value(at))
            .filter(sessions::Column::RevokedAt.is_null());
        if let Some(a) = admin_id {
            update = update.filter(sessions::Column::AdminId.eq(a));
        }
        if let Some(i) = id {
            update = update.filter(sessions::Column::Id.eq(i));
        }
        if admin_id.is_none() && id.is_none() {
            return Ok(0);
        }
        Ok(update.exec(&self.db).await?.rows_affected)
    }

    async fn sessions(
        &self,
        admin_id: Option<&str>,
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<SessionRow>> {
        let mut query = sessions::Entity::find()
            .filter(sessions::Column::RevokedAt.is_null())
            .filter(sessions::Column::ExpiresAt.gt(now));
        if let Some(a) = admin_id {
            query = query.filter(sessions::Column::AdminId.eq(a));
        }
        let rows = query
            .order_by_asc(sessions::Column::CreatedAt)
            .all(&self.db)
            .await?;
        let names =
            admin_names(&self.db, rows.iter().map(|s| s.admin_id.clone()).collect()).await?;
        Ok(rows
            .into_iter()
            .filter(|s| {
                s.last_seen_at + chrono::Duration::seconds(s.idle_timeout_secs.into()) > now
            })
            .map(|s| {
                let name = names.get(&s.admin_id).cloned().unwrap_or_default();
                session_from(s, name)
            })
            .collect())
    }

    async fn create_api_token(
        &self,
        row: ApiTokenRow,
        token_hash: &str,
        event: NewEvent,
    ) -> StoreResult<()> {
        let txn = self.begin_write().await?;
        tokens::ActiveModel {
            id: Set(row.id),
            name: Set(row.name),
            token_hash: Set(token_hash.to_owned()),
            created_at: Set(row.created_at),
            last_used_at: Set(None),
            revoked_at: Set(None),
            admin_id: Set(row.admin_id),
            role: Set(row.role),
            expires_at: Set(row.expires_at),
            created_by: Set(row.created_by),
            last_used_address: Set(None),
        }
        .insert(&txn)
        .await?;
        insert_event(&txn, event).await?;
        txn.commit().await?;
        Ok(())
    }

    async fn api_token_by_hash(&self, token_hash: &str) -> StoreResult<Option<ApiTokenRow>> {
        let Some(t) = tokens::Entity::find()
            .filter(tokens::Column::TokenHash.eq(token_hash))
            .filter(tokens::Column::RevokedAt.is_null())
            .one(&self.db)
            .await?
        else {
            return Ok(None);
        };
        let name = match &t.admin_id {
            Some(id) => admins::Entity::find_by_id(id.as_str())
                .one(&self.db)
                .await?
                .map(|a| a.name),
            None => None,
        };
        Ok(Some(token_from(t, name)))
    }

    async fn api_tokens(&self, admin_id: Option<&str>) -> StoreResult<Vec<ApiTokenRow>> {
        let mut query = tokens::Entity::find().filter(tokens::Column::RevokedAt.is_null());
        if let Some(a) = admin_id {
            query = query.filter(tokens::Column::AdminId.eq(a));
        }
        let rows = query
            .order_by_asc(tokens::Column::CreatedAt)
            .all(&self.db)
            .await?;
        let names = admin_names(
            &self.db,
            rows.iter().filter_map(|t| t.admin_id.clone()).collect(),
        )
        .await?;
        Ok(rows
            .into_iter()
            .map(|t| {
                let name = t.admin_id.as_ref().and_then(|id| names.get(id).cloned());
                token_from(t, name)
            })
            .collect())
    }

    async fn revoke_api_token(
        &self,
        id: &str,
        admin_id: Option<&str>,
        at: DateTime<Utc>,
        event: NewEvent,
    ) -> StoreResult<bool> {
        let txn = self.begin_write().await?;
        let mut update = tokens::Entity::update_many()
            .col_expr(tokens::Column::RevokedAt, Expr::value(at))
            .filter(tokens::Column::RevokedAt.is_null())
            .filter(tokens::Column::Id.eq(id));
        if let Some(a) = admin_id {
            update = update.filter(tokens::Column::AdminId.eq(a));
        }
        let revoked = update.exec(&txn).await?.rows_affected > 0;
        if revoked {
            insert_event(&txn, event).await?;
        }
        txn.commit().await?;
        Ok(revoked)
    }

    async fn mark_api_token_used(
        &self,
        id: &str,
        at: DateTime<Utc>,
        address: Option<&str>,
        every_secs: i64,
    ) -> StoreResult<bool> {
        let stale = at - chrono::Duration::seconds(every_secs);
        Ok(tokens::Entity::update_many()
            .col_expr(tokens::Column::LastUsedAt, Expr::value(at))
            .col_expr(
                tokens::Column::LastUsedAddress,
                Expr::value(address.map(str::to_owned)),
            )
            .filter(tokens::Column::Id.eq(id))
            .filter(
                Condition::any()
                    .add(tokens::Column::LastUsedAt.is_null())
                    .add(tokens::Column::LastUsedAt.lt(stale)),
            )
            .exec(&self.db)
            .await?
            .rows_affected
            == 1)
    }

    async fn audit_cursor(&self) -> StoreResult<i64> {
        super::audit::audit_cursor(self).await
    }

    async fn audit_candidate_events(&self, after_id: i64, limit: u64) -> StoreResult<Vec<Event>> {
        super::audit::audit_candidate_events(self, after_id, limit).await
    }

    async fn audited_event_ids(&self, ids: &[i64]) -> StoreResult<Vec<i64>> {
        super::audit::audited_event_ids(self, ids).await
    }

    async fn append_audit(
        &self,
        records: Vec<NewAuditRecord>,
        cursor: i64,
        key: &AuditKey,
    ) -> StoreResult<u64> {
        super::audit::append_audit(self, records, cursor, key).await
    }

    async fn audit_records(&self, after_seq: i64, limit: u64) -> StoreResult<Vec<AuditRecord>> {
        super::audit::audit_records(self, after_seq, limit).await
    }

    async fn audit_head(&self) -> StoreResult<(i64, String)> {
        super::audit::audit_head(self).await
    }

    async fn audit_head_state(&self) -> StoreResult<AuditHeadState> {
        super::audit::audit_head_state(self).await
    }

    async fn record_audit_anchor(
        &self,
        seq: i64,
        previous_anchored_seq: i64,
        at: DateTime<Utc>,
        event: NewEvent,
    ) -> StoreResult<bool> {
        super::audit::record_audit_anchor(self, seq, previous_anchored_seq, at, event).await
    }

    async fn create_offboarding(&self, row: OffboardingRow, event: NewEvent) -> StoreResult<()> {
        super::audit::create_offboarding(self, row, event).await
    }

    async fn update_offboarding_device(
        &self,
        offboarding_id: &str,
        device: OffboardingDeviceRow,
    ) -> StoreResult<()> {
        super::audit::update_offboarding_device(self, offboarding_id, device).await
    }

    async fn set_offboarding_status(
        &self,
        id: &str,
        status: &str,
        completed_at: Option<DateTime<Utc>>,
    ) -> StoreResult<bool> {
        super::audit::set_offboarding_status(self, id, status, completed_at).await
    }

    async fn offboarding(&self, id: &str) -> StoreResult<Option<OffboardingRow>> {
        super::audit::offboarding(self, id).await
    }

    async fn offboardings(
        &self,
        open_only: bool,
        usernames: Option<&[String]>,
    ) -> StoreResult<Vec<OffboardingRow>> {
        super::audit::offboardings(self, open_only, usernames).await
    }
}
