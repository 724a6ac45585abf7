//! [`DirectoryStore`] on sea-orm: users, groups, memberships and the one
//! `directory_sources` row. Every change (a sync, a CSV import, an admin's edit) is
//! worked out from the tables as read inside its own write transaction and written
//! there with its events: all of it or nothing.

use super::*;
use crate::storage::entities::{
    devices, directory_group_members as members, directory_groups as groups,
    directory_sources as sources, directory_users as users, events,
};
use crate::storage::*;
use sea_orm::sea_query::{Expr, Func};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    Set,
};
use std::collections::HashMap;

/// The row's fixed id: one directory per server.
const ROW_ID: &str = "default";
/// Rows per multi-row INSERT (users have 14 columns).
const DIRECTORY_INSERT_BATCH: usize = 200;

fn user_from_model(m: users::Model) -> DirectoryUserRecord {
    DirectoryUserRecord {
        id: m.id,
        username: m.username,
        upn: m.upn,
        email: m.email,
        display_name: m.display_name,
        department: m.department,
        source: m.source,
        external_id: m.external_id,
        disabled: m.disabled,
        disabled_reason: m.disabled_reason,
        disabled_at: m.disabled_at,
        synced_at: m.synced_at,
        created_at: m.created_at,
        updated_at: m.updated_at,
    }
}

fn user_to_active(u: DirectoryUserRecord) -> users::ActiveModel {
    users::ActiveModel {
        id: Set(u.id),
        username: Set(u.username),
        upn: Set(u.upn),
        email: Set(u.email),
        display_name: Set(u.display_name),
        department: Set(u.department),
        source: Set(u.source),
        external_id: Set(u.external_id),
        disabled: Set(u.disabled),
        disabled_reason: Set(u.disabled_reason),
        disabled_at: Set(u.disabled_at),
        synced_at: Set(u.synced_at),
        created_at: Set(u.created_at),
        updated_at: Set(u.updated_at),
    }
}

fn group_from_model(m: groups::Model) -> DirectoryGroupRecord {
    DirectoryGroupRecord {
        id: m.id,
        name: m.name,
        source: m.source,
        external_id: m.external_id,
        created_at: m.created_at,
        updated_at: m.updated_at,
    }
}

fn group_to_active(g: DirectoryGroupRecord) -> groups::ActiveModel {
    groups::ActiveModel {
        id: Set(g.id),
        name: Set(g.name),
        source: Set(g.source),
        external_id: Set(g.external_id),
        created_at: Set(g.created_at),
        updated_at: Set(g.updated_at),
    }
}

fn source_from_model(m: sources::Model) -> DirectorySourceRow {
    DirectorySourceRow {
        flavor: m.flavor,
        url: m.url,
        start_tls: m.start_tls,
        allow_plaintext: m.allow_plaintext,
        bind_dn: m.bind_dn,
        bind_password_sealed: m.bind_password_sealed,
        base_dn: m.base_dn,
        user_filter: m.user_filter,
        group_filter: m.group_filter,
        username_attr: m.username_attr,
        upn_attr: m.upn_attr,
        email_attr: m.email_attr,
        display_name_attr: m.display_name_attr,
        department_attr: m.department_attr,
        group_name_attr: m.group_name_attr,
        disabled_attr: m.disabled_attr,
        disabled_value: m.disabled_value,
        ca_pem: m.ca_pem,
        interval_seconds: m.interval_seconds,
        last_sync_at: m.last_sync_at,
        last_sync_status: m.last_sync_status,
        last_sync_error: m.last_sync_error,
        last_sync_counts: m
            .last_sync_counts
            .and_then(|c| serde_json::from_str(&c).ok()),
        updated_by: m.updated_by,
        updated_at: m.updated_at,
    }
}

/// Group names of each user id.
async fn groups_by_user<C: sea_orm::ConnectionTrait>(
    db: &C,
    user_ids: Option<&[String]>,
) -> StoreResult<HashMap<String, Vec<String>>> {
    let names: HashMap<String, String> = groups::Entity::find()
        .all(db)
        .await?
        .into_iter()
        .map(|g| (g.id, g.name))
        .collect();
    let mut rows = Vec::new();
    match user_ids {
        None => rows = members::Entity::find().all(db).await?,
        Some(ids) => {
            for chunk in ids.chunks(LOOKUP_BATCH) {
                rows.extend(
                    members::Entity::find()
                        .filter(members::Column::UserId.is_in(chunk.iter().cloned()))
                        .all(db)
                        .await?,
                );
            }
        }
    }
    let mut out: HashMap<String, Vec<String>> = HashMap::new();
    for m in rows {
        if let Some(name) = names.get(&m.group_id) {
            out.entry(m.user_id).or_default().push(name.clone());
        }
    }
    for list in out.values_mut() {
        list.sort();
    }
    Ok(out)
}

async fn insert_events<C: sea_orm::ConnectionTrait>(
    db: &C,
    list: Vec<NewEvent>,
    at: DateTime<Utc>,
) -> StoreResult<()> {
    let rows: Vec<events::ActiveModel> = list
        .into_iter()
        .map(|e| events::ActiveModel {
            id: sea_orm::NotSet,
            occurred_at: Set(at),
            kind: Set(e.kind.to_owned()),
            severity: Set(e.severity),
            device_id: Set(e.device_id),
            actor: Set(e.actor),
            message: Set(e.message),
            data: Set(e.data.to_string()),
        })
        .collect();
    for chunk in rows.chunks(INSERT_BATCH) {
        events::Entity::insert_many(chunk.to_vec()).exec(db).await?;
    }
    Ok(())
}

async fn write_plan<C: sea_orm::ConnectionTrait>(
    db: &C,
    plan: &DirectoryPlan,
    now: DateTime<Utc>,
) -> StoreResult<()> {
    // Memberships go first (those of deleted groups and users with them), then rows
    // that free a name (updates, renames) before rows that take one (inserts).
    for (group_id, user_id) in &plan.remove_members {
        members::Entity::delete_many()
            .filter(members::Column::GroupId.eq(group_id.as_str()))
            .filter(members::Column::UserId.eq(user_id.as_str()))
            .exec(db)
            .await?;
    }
    for chunk in plan.delete_groups.chunks(LOOKUP_BATCH) {
        members::Entity::delete_many()
            .filter(members::Column::GroupId.is_in(chunk.iter().cloned()))
            .exec(db)
            .await?;
        groups::Entity::delete_many()
            .filter(groups::Column::Id.is_in(chunk.iter().cloned()))
            .exec(db)
            .await?;
    }
    for chunk in plan.delete_users.chunks(LOOKUP_BATCH) {
        members::Entity::delete_many()
            .filter(members::Column::UserId.is_in(chunk.iter().cloned()))
            .exec(db)
            .await?;
        users::Entity::delete_many()
            .filter(users::Column::Id.is_in(chunk.iter().cloned()))
            .exec(db)
            .await?;
    }
    for user in &plan.update_users {
        user_to_active(user.clone()).update(db).await?;
    }
    for (old, new) in &plan.renames {
        devices::Entity::update_many()
            .col_expr(devices::Column::AssignedUser, Expr::value(new.clone()))
            .filter(devices::Column::AssignedUser.eq(old.as_str()))
            .exec(db)
            .await?;
    }
    for chunk in plan.touch_users.chunks(LOOKUP_BATCH) {
        users::Entity::update_many()
            .col_expr(users::Column::SyncedAt, Expr::value(Some(now)))
            .filter(users::Column::Id.is_in(chunk.iter().cloned()))
            .exec(db)
            .await?;
    }
    for chunk in plan.insert_users.chunks(DIRECTORY_INSERT_BATCH) {
        users::Entity::insert_many(chunk.iter().cloned().map(user_to_active))
            .exec(db)
            .await?;
    }
    for group in &plan.update_groups {
        group_to_active(group.clone()).update(db).await?;
    }
    for chunk in plan.insert_groups.chunks(DIRECTORY_INSERT_BATCH) {
        groups::Entity::insert_many(chunk.iter().cloned().map(group_to_active))
            .exec(db)
            .await?;
    }
    for chunk in plan.add_members.chunks(INSERT_BATCH) {
        members::Entity::insert_many(chunk.iter().map(|(g, u)| members::ActiveModel {
            group_id: Set(g.clone()),
            user_id: Set(u.clone()),
        }))
        .exec(db)
        .await?;
    }
    if let Some(status) = &plan.sync_status {
        sources::Entity::update_many()
            .col_expr(sources::Column::LastSyncAt, Expr::value(Some(status.at)))
            .col_expr(
                sources::Column::LastSyncStatus,
                Expr::value(Some(status.status.clone())),
            )
            .col_expr(
                sources::Column::LastSyncError,
                Expr::value(status.error.clone()),
            )
            .col_expr(
                sources::Column::LastSyncCounts,
                Expr::value(Some(status.counts.to_string())),
            )
            .filter(sources::Column::Id.eq(ROW_ID))
            .exec(db)
            .await?;
    }
    insert_events(db, plan.events.clone(), now).await
}

#[async_trait]
impl DirectoryStore for SqlStore {
    async fn directory_source(&self) -> StoreResult<Option<DirectorySourceRow>> {
        Ok(sources::Entity::find_by_id(ROW_ID)
            .one(self.connection())
            .await?
            .map(source_from_model))
    }

    async fn put_directory_source(
        &self,
        row: DirectorySourceRow,
        event: NewEvent,
    ) -> StoreResult<()> {
        let txn = self.begin_write().await?;
        let existing = sources::Entity::find_by_id(ROW_ID).one(&txn).await?;
        let mut model = sources::ActiveModel {
            id: Set(ROW_ID.to_owned()),
            flavor: Set(row.flavor),
            url: Set(row.url),
            start_tls: Set(row.start_tls),
            allow_plaintext: Set(row.allow_plaintext),
            bind_dn: Set(row.bind_dn),
            bind_password_sealed: Set(row.bind_password_sealed),
            base_dn: Set(row.base_dn),
            user_filter: Set(row.user_filter),
            group_filter: Set(row.group_filter),
            username_attr: Set(row.username_attr),
            upn_attr: Set(row.upn_attr),
            email_attr: Set(row.email_attr),
            display_name_attr: Set(row.display_name_attr),
            department_attr: Set(row.department_attr),
            group_name_attr: Set(row.group_name_attr),
            disabled_attr: Set(row.disabled_attr),
            disabled_value: Set(row.disabled_value),
            ca_pem: Set(row.ca_pem),
            interval_seconds: Set(row.interval_seconds),
            updated_by: Set(row.updated_by),
            updated_at: Set(row.updated_at),
            ..Default::default()
        };
        if existing.is_some() {
            model.update(&txn).await?;
        } else {
            model.created_at = Set(row.updated_at);
            model.last_sync_at = Set(None);
            model.last_sync_status = Set(None);
            model.last_sync_error = Set(None);
            model.last_sync_counts = Set(None);
            model.lease_owner = Set(None);
            model.lease_until = Set(None);
            model.insert(&txn).await?;
        }
        super::events::insert_event(&txn, event).await?;
        txn.commit().await?;
        Ok(())
    }

    async fn take_directory_lease(
        &self,
        owner: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
        due_before: Option<DateTime<Utc>>,
    ) -> StoreResult<bool> {
        let mut update = sources::Entity::update_many()
            .col_expr(sources::Column::LeaseOwner, Expr::value(Some(owner)))
            .col_expr(sources::Column::LeaseUntil, Expr::value(Some(until)))
            .filter(sources::Column::Id.eq(ROW_ID))
            .filter(
                Condition::any()
                    .add(sources::Column::LeaseUntil.is_null())
                    .add(sources::Column::LeaseUntil.lt(now))
                    .add(sources::Column::LeaseOwner.eq(owner)),
            );
        if let Some(due) = due_before {
            update = update.filter(
                Condition::any()
                    .add(sources::Column::LastSyncAt.is_null())
                    .add(sources::Column::LastSyncAt.lte(due)),
            );
        }
        Ok(update.exec(self.connection()).await?.rows_affected == 1)
    }

    async fn release_directory_lease(&self, owner: &str) -> StoreResult<()> {
        sources::Entity::update_many()
            .col_expr(
                sources::Column::LeaseOwner,
                Expr::value(Option::<String>::None),
            )
            .col_expr(
                sources::Column::LeaseUntil,
                Expr::value(Option::<DateTime<Utc>>::None),
            )
            .filter(sources::Column::Id.eq(ROW_ID))
            .filter(sources::Column::LeaseOwner.eq(owner))
            .exec(self.connection())
            .await?;
        Ok(())
    }

    async fn change_directory(
        &self,
        change: DirectoryChange,
    ) -> StoreResult<Result<DirectoryPlan, DirectoryRefusal>> {
        let txn = self.begin_write().await?;
        let state = DirectoryState {
            users: users::Entity::find()
                .all(&txn)
                .await?
                .into_iter()
                .map(user_from_model)
                .collect(),
            groups: groups::Entity::find()
                .all(&txn)
                .await?
                .into_iter()
                .map(group_from_model)
                .collect(),
            members: members::Entity::find()
                .all(&txn)
                .await?
                .into_iter()
                .map(|m| (m.group_id, m.user_id))
                .collect(),
        };
        let plan = match change(&state) {
            Ok(plan) => plan,
            Err(why) => {
                txn.rollback().await?;
                return Ok(Err(why));
            }
        };
        write_plan(&txn, &plan, Utc::now()).await?;
        txn.commit().await?;
        Ok(Ok(plan))
    }

    async fn directory_sync_failed(
        &self,
        error: &str,
        at: DateTime<Utc>,
        event: NewEvent,
    ) -> StoreResult<bool> {
        let txn = self.begin_write().await?;
        let Some(row) = sources::Entity::find_by_id(ROW_ID).one(&txn).await? else {
            txn.rollback().await?;
            return Ok(false);
        };
        let new = row.last_sync_status.as_deref() != Some("failed")
            || row.last_sync_error.as_deref() != Some(error);
        sources::Entity::update_many()
            .col_expr(sources::Column::LastSyncAt, Expr::value(Some(at)))
            .col_expr(
                sources::Column::LastSyncStatus,
                Expr::value(Some("failed".to_owned())),
            )
            .col_expr(
                sources::Column::LastSyncError,
                Expr::value(Some(error.to_owned())),
            )
            .filter(sources::Column::Id.eq(ROW_ID))
            .exec(&txn)
            .await?;
        if new {
            super::events::insert_event(&txn, event).await?;
        }
        txn.commit().await?;
        Ok(new)
    }

    async fn directory_users(
        &self,
        disabled: Option<bool>,
    ) -> StoreResult<Vec<(DirectoryUserRecord, Vec<String>)>> {
        let mut query = users::Entity::find();
        if let Some(d) = disabled {
            query = query.filter(users::Column::Disabled.eq(d));
        }
        let rows = query
            .order_by_asc(users::Column::Username)
            .all(self.connection())
            .await?;
        let mut by_user = if disabled.is_some() {
            let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
            groups_by_user(self.connection(), Some(&ids)).await?
        } else {
            groups_by_user(self.connection(), None).await?
        };
        Ok(rows
            .into_iter()
            .map(|m| {
                let groups = by_user.remove(&m.id).unwrap_or_default();
                (user_from_model(m), groups)
            })
            .collect())
    }

    async fn directory_user(
        &self,
        username: &str,
    ) -> StoreResult<Option<(DirectoryUserRecord, Vec<String>)>> {
        let exact = users::Entity::find()
            .filter(users::Column::Username.eq(username))
            .one(self.connection())
            .await?;
        let row = match exact {
            Some(row) => Some(row),
            // Directory names are case-insensitive: jan.kowalski is Jan.Kowalski.
            None => {
                users::Entity::find()
                    .filter(
                        Expr::expr(Func::lower(Expr::col(users::Column::Username)))
                            .eq(username.to_lowercase()),
                    )
                    .order_by_asc(users::Column::Username)
                    .one(self.connection())
                    .await?
            }
        };
        let Some(row) = row else {
            return Ok(None);
        };
        let mut groups = groups_by_user(self.connection(), Some(std::slice::from_ref(&row.id)))
            .await?
            .remove(&row.id)
            .unwrap_or_default();
        groups.sort();
        Ok(Some((user_from_model(row), groups)))
    }

    async fn directory_groups(&self) -> StoreResult<Vec<(DirectoryGroupRecord, u64)>> {
        let rows = groups::Entity::find()
            .order_by_asc(groups::Column::Name)
            .all(self.connection())
            .await?;
        let counts: Vec<(String, i64)> = members::Entity::find()
            .select_only()
            .column(members::Column::GroupId)
            .column_as(members::Column::UserId.count(), "n")
            .group_by(members::Column::GroupId)
            .into_tuple()
            .all(self.connection())
            .await?;
        let counts: HashMap<String, i64> = counts.into_iter().collect();
        Ok(rows
            .into_iter()
            .map(|g| {
                let n = counts.get(&g.id).copied().unwrap_or(0).max(0) as u64;
                (group_from_model(g), n)
            })
            .collect())
    }

    async fn directory_group_members(&self, name: &str) -> StoreResult<Option<Vec<String>>> {
        let Some(group) = groups::Entity::find()
            .filter(groups::Column::Name.eq(name))
            .one(self.connection())
            .await?
        else {
            return Ok(None);
        };
        let ids: Vec<String> = members::Entity::find()
            .filter(members::Column::GroupId.eq(group.id))
            .all(self.connection())
            .await?
            .into_iter()
            .map(|m| m.user_id)
            .collect();
        let mut names = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(LOOKUP_BATCH) {
            names.extend(
                users::Entity::find()
                    .filter(users::Column::Id.is_in(chunk.iter().cloned()))
                    .all(self.connection())
                    .await?
                    .into_iter()
                    .map(|u| u.username),
            );
        }
        names.sort();
        Ok(Some(names))
    }

    async fn devices_of_users(
        &self,
        usernames: &[String],
    ) -> StoreResult<HashMap<String, Vec<UserDevice>>> {
        let mut out: HashMap<String, Vec<UserDevice>> = HashMap::new();
        for chunk in usernames.chunks(LOOKUP_BATCH) {
            let rows = devices::Entity::find()
                .filter(devices::Column::AssignedUser.is_in(chunk.iter().cloned()))
                .order_by_asc(devices::Column::CreatedAt)
                .all(self.connection())
                .await?;
            for d in rows {
                let Some(user) = d.assigned_user.clone() else {
                    continue;
                };
                out.entry(user).or_default().push(UserDevice {
                    id: d.id,
                    platform: d.platform,
                    device_name: d.device_name,
                    serial_number: d.serial_number.or(d.reported_serial_number),
                    model: d.model,
                    enrolled: d.enrolled,
                    last_seen_at: d.last_seen_at,
                });
            }
        }
        Ok(out)
    }
}
