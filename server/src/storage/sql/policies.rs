//! [`PolicyStore`] on sea-orm: device groups, policy versions, assignments, each
//! Apple device's last output per policy, compliance, and the watcher's cursor.
//!
//! Reads for a fan-out are batched (`IN` lists of [`LOOKUP_BATCH`]) and writes go in
//! one transaction: a policy change for 10,000 devices is a handful of statements per
//! thousand devices, not one per device.

use super::queue::insert_commands;
use super::*;
use crate::storage::entities::{
    device_group_members, device_groups, device_policy_outputs, devices, policies,
    policy_assignments, policy_event_cursor, policy_versions,
};
use crate::storage::*;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, DatabaseTransaction, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, Set, Statement,
};
use std::collections::HashMap;

fn group_from_row(m: device_groups::Model) -> DeviceGroupRow {
    DeviceGroupRow {
        id: m.id,
        name: m.name,
        kind: m.kind,
        match_value: m.match_value,
        description: m.description,
        created_at: m.created_at,
    }
}

fn policy_from_row(m: policies::Model) -> PolicyRow {
    PolicyRow {
        id: m.id,
        name: m.name,
        current_version: m.current_version,
        created_at: m.created_at,
        updated_at: m.updated_at,
    }
}

fn version_from_row(m: policy_versions::Model) -> StoreResult<PolicyVersionRow> {
    Ok(PolicyVersionRow {
        document: serde_json::from_str(&m.document)
            .map_err(|e| StoreError::Db(sea_orm::DbErr::Custom(format!("policy document: {e}"))))?,
        policy_id: m.policy_id,
        version: m.version,
        document_sealed: m.document_sealed,
        content_hash: m.content_hash,
        created_by: m.created_by,
        created_at: m.created_at,
        note: m.note,
    })
}

fn assignment_from_row(m: policy_assignments::Model) -> AssignmentRow {
    AssignmentRow {
        id: m.id,
        policy_id: m.policy_id,
        target_kind: m.target_kind,
        target: m.target,
        precedence: m.precedence,
        created_by: m.created_by,
        created_at: m.created_at,
    }
}

fn output_from_row(m: device_policy_outputs::Model) -> PolicyOutputRow {
    PolicyOutputRow {
        device_id: m.device_id,
        policy_id: m.policy_id,
        identifier: m.identifier,
        output_hash: m.output_hash,
        input_hash: m.input_hash,
        policy_version: m.policy_version,
        command_uuid: m.command_uuid,
        status: m.status,
    }
}

#[async_trait]
impl PolicyStore for SqlStore {
    async fn create_device_group(&self, group: DeviceGroupRow, event: NewEvent) -> StoreResult<()> {
        let txn = self.begin_write().await?;
        if device_groups::Entity::find()
            .filter(device_groups::Column::Name.eq(group.name.as_str()))
            .one(&txn)
            .await?
            .is_some()
        {
            return Err(StoreError::Conflict(format!(
                "a device group named {:?} exists",
                group.name
            )));
        }
        device_groups::ActiveModel {
            id: Set(group.id),
            name: Set(group.name),
            kind: Set(group.kind),
            match_value: Set(group.match_value),
            description: Set(group.description),
            created_at: Set(group.created_at),
            updated_at: Set(group.created_at),
        }
        .insert(&txn)
        .await?;
        super::events::insert_event(&txn, event).await?;
        txn.commit().await?;
        Ok(())
    }

    async fn device_groups(&self) -> StoreResult<Vec<DeviceGroupRow>> {
        Ok(device_groups::Entity::find()
            .order_by_asc(device_groups::Column::Name)
            .all(self.connection())
            .await?
            .into_iter()
            .map(group_from_row)
            .collect())
    }

    async fn delete_device_group(&self, id: &str, event: NewEvent) -> StoreResult<bool> {
        let txn = self.begin_write().await?;
        let deleted = device_groups::Entity::delete_by_id(id).exec(&txn).await?;
        if deleted.rows_affected == 0 {
            return Ok(false);
        }
        device_group_members::Entity::delete_many()
            .filter(device_group_members::Column::GroupId.eq(id))
            .exec(&txn)
            .await?;
        policy_assignments::Entity::delete_many()
            .filter(policy_assignments::Column::TargetKind.eq("group"))
            .filter(policy_assignments::Column::Target.eq(id))
            .exec(&txn)
            .await?;
        super::events::insert_event(&txn, event).await?;
        txn.commit().await?;
        Ok(true)
    }

    async fn change_group_members(
        &self,
        group_id: &str,
        add: &[String],
        remove: &[String],
        event: NewEvent,
    ) -> StoreResult<()> {
        let txn = self.begin_write().await?;
        for chunk in remove.chunks(LOOKUP_BATCH) {
            device_group_members::Entity::delete_many()
                .filter(device_group_members::Column::GroupId.eq(group_id))
                .filter(device_group_members::Column::DeviceId.is_in(chunk.iter().cloned()))
                .exec(&txn)
                .await?;
        }
        for chunk in add.chunks(INSERT_BATCH) {
            let rows = chunk.iter().map(|d| device_group_members::ActiveModel {
                group_id: Set(group_id.to_owned()),
                device_id: Set(d.clone()),
            });
            device_group_members::Entity::insert_many(rows)
                .on_conflict(
                    sea_orm::sea_query::OnConflict::columns([
                        device_group_members::Column::GroupId,
                        device_group_members::Column::DeviceId,
                    ])
                    .do_nothing()
                    .to_owned(),
                )
                .do_nothing()
                .exec(&txn)
                .await?;
        }
        super::events::insert_event(&txn, event).await?;
        txn.commit().await?;
        Ok(())
    }

    async fn group_members(&self, group_id: &str) -> StoreResult<Vec<String>> {
        Ok(device_group_members::Entity::find()
            .filter(device_group_members::Column::GroupId.eq(group_id))
            .order_by_asc(device_group_members::Column::DeviceId)
            .all(self.connection())
            .await?
            .into_iter()
            .map(|m| m.device_id)
            .collect())
    }

    async fn save_policy_version(
        &self,
        name: &str,
        version: PolicyVersionRow,
        event: NewEvent,
    ) -> StoreResult<PolicyRow> {
        let txn = self.begin_write().await?;
        let existing = policies::Entity::find()
            .filter(policies::Column::Name.eq(name))
            .one(&txn)
            .await?;
        let now = version.created_at;
        let (policy, number) = match existing {
            Some(p) => {
                let last = policy_versions::Entity::find()
                    .filter(policy_versions::Column::PolicyId.eq(p.id.as_str()))
                    .order_by_desc(policy_versions::Column::Version)
                    .one(&txn)
                    .await?
                    .map_or(0, |v| v.version);
                let mut active: policies::ActiveModel = p.into();
                active.current_version = Set(last + 1);
                active.updated_at = Set(now);
                (active.update(&txn).await?, last + 1)
            }
            None => (
                policies::ActiveModel {
                    id: Set(version.policy_id.clone()),
                    name: Set(name.to_owned()),
                    current_version: Set(1),
                    created_at: Set(now),
                    updated_at: Set(now),
                }
                .insert(&txn)
                .await?,
                1,
            ),
        };
        policy_versions::ActiveModel {
            policy_id: Set(policy.id.clone()),
            version: Set(number),
            document: Set(version.document.to_string()),
            document_sealed: Set(version.document_sealed),
            content_hash: Set(version.content_hash),
            created_by: Set(version.created_by),
            created_at: Set(now),
            note: Set(version.note),
        }
        .insert(&txn)
        .await?;
        let mut event = event;
        if let Some(data) = event.data.as_object_mut() {
            data.insert("version".into(), number.into());
            data.insert("policy_id".into(), policy.id.clone().into());
        }
        super::events::insert_event(&txn, event).await?;
        txn.commit().await?;
        Ok(policy_from_row(policy))
    }

    async fn policies(&self) -> StoreResult<Vec<PolicyRow>> {
        Ok(policies::Entity::find()
            .order_by_asc(policies::Column::Name)
            .all(self.connection())
            .await?
            .into_iter()
            .map(policy_from_row)
            .collect())
    }

    async fn policy(&self, id_or_name: &str) -> StoreResult<Option<PolicyRow>> {
        Ok(policies::Entity::find()
            .filter(
                Condition::any()
                    .add(policies::Column::Id.eq(id_or_name))
                    .add(policies::Column::Name.eq(id_or_name)),
            )
            .one(self.connection())
            .await?
            .map(policy_from_row))
    }

    async fn policy_version(
        &self,
        policy_id: &str,
        version: i32,
    ) -> StoreResult<Option<PolicyVersionRow>> {
        policy_versions::Entity::find_by_id((policy_id.to_owned(), version))
            .one(self.connection())
            .await?
            .map(version_from_row)
            .transpose()
    }

    async fn policy_versions(&self, policy_id: &str) -> StoreResult<Vec<PolicyVersionRow>> {
        policy_versions::Entity::find()
            .filter(policy_versions::Column::PolicyId.eq(policy_id))
            .order_by_desc(policy_versions::Column::Version)
            .all(self.connection())
            .await?
            .into_iter()
            .map(version_from_row)
            .collect()
    }

    async fn current_versions(&self, policy_ids: &[String]) -> StoreResult<Vec<PolicyVersionRow>> {
        let mut out = Vec::new();
        for chunk in policy_ids.chunks(LOOKUP_BATCH) {
            let current: Vec<policies::Model> = policies::Entity::find()
                .filter(policies::Column::Id.is_in(chunk.iter().cloned()))
                .all(self.connection())
                .await?;
            let mut condition = Condition::any();
            for p in &current {
                condition = condition.add(
                    Condition::all()
                        .add(policy_versions::Column::PolicyId.eq(p.id.as_str()))
                        .add(policy_versions::Column::Version.eq(p.current_version)),
                );
            }
            if current.is_empty() {
                continue;
            }
            for row in policy_versions::Entity::find()
                .filter(condition)
                .all(self.connection())
                .await?
            {
                out.push(version_from_row(row)?);
            }
        }
        Ok(out)
    }

    async fn add_assignment(&self, row: AssignmentRow, event: NewEvent) -> StoreResult<()> {
        let txn = self.begin_write().await?;
        let existing = policy_assignments::Entity::find()
            .filter(policy_assignments::Column::PolicyId.eq(row.policy_id.as_str()))
            .filter(policy_assignments::Column::TargetKind.eq(row.target_kind.as_str()))
            .filter(policy_assignments::Column::Target.eq(row.target.as_str()))
            .one(&txn)
            .await?;
        match existing {
            Some(found) => {
                // Assigning again changes only the precedence.
                let mut active: policy_assignments::ActiveModel = found.into();
                active.precedence = Set(row.precedence);
                active.update(&txn).await?;
            }
            None => {
                policy_assignments::ActiveModel {
                    id: Set(row.id),
                    policy_id: Set(row.policy_id),
                    target_kind: Set(row.target_kind),
                    target: Set(row.target),
                    precedence: Set(row.precedence),
                    created_by: Set(row.created_by),
                    created_at: Set(row.created_at),
                }
                .insert(&txn)
                .await?;
            }
        }
        super::events::insert_event(&txn, event).await?;
        txn.commit().await?;
        Ok(())
    }

    async fn remove_assignment(
        &self,
        policy_id: &str,
        target_kind: &str,
        target: &str,
        event: NewEvent,
    ) -> StoreResult<bool> {
        let txn = self.begin_write().await?;
        let deleted = policy_assignments::Entity::delete_many()
            .filter(policy_assignments::Column::PolicyId.eq(policy_id))
            .filter(policy_assignments::Column::TargetKind.eq(target_kind))
            .filter(policy_assignments::Column::Target.eq(target))
            .exec(&txn)
            .await?;
        if deleted.rows_affected == 0 {
            return Ok(false);
        }
        super::events::insert_event(&txn, event).await?;
        txn.commit().await?;
        Ok(true)
    }

    async fn assignments(&self) -> StoreResult<Vec<AssignmentRow>> {
        Ok(policy_assignments::Entity::find()
            .order_by_asc(policy_assignments::Column::CreatedAt)
            .all(self.connection())
            .await?
            .into_iter()
            .map(assignment_from_row)
            .collect())
    }

    async fn policy_targets(
        &self,
        device_ids: Option<&[String]>,
    ) -> StoreResult<Vec<PolicyTarget>> {
        // Only the columns placement needs: a fleet-wide delivery reads every device.
        type Row = (
            String,
            String,
            String,
            Option<String>,
            Option<String>,
            Option<String>,
        );
        let base = || {
            devices::Entity::find()
                .select_only()
                .columns([
                    devices::Column::Id,
                    devices::Column::Platform,
                    devices::Column::OsFamily,
                    devices::Column::AssignedUser,
                    devices::Column::AssignedGroup,
                    devices::Column::EnrollmentId,
                ])
                .filter(devices::Column::Enrolled.eq(true))
                .filter(devices::Column::RetiredAt.is_null())
                .order_by_asc(devices::Column::Id)
        };
        let rows: Vec<Row> = match device_ids {
            None => base().into_tuple().all(self.connection()).await?,
            Some(ids) => {
                let mut rows = Vec::new();
                for chunk in ids.chunks(LOOKUP_BATCH) {
                    rows.extend(
                        base()
                            .filter(devices::Column::Id.is_in(chunk.iter().cloned()))
                            .into_tuple::<Row>()
                            .all(self.connection())
                            .await?,
                    );
                }
                rows
            }
        };
        let mut manual: HashMap<String, Vec<String>> = HashMap::new();
        let ids: Vec<String> = rows.iter().map(|r| r.0.clone()).collect();
        if device_ids.is_none() {
            for m in device_group_members::Entity::find()
                .all(self.connection())
                .await?
            {
                manual.entry(m.device_id).or_default().push(m.group_id);
            }
        } else {
            for chunk in ids.chunks(LOOKUP_BATCH) {
                for m in device_group_members::Entity::find()
                    .filter(device_group_members::Column::DeviceId.is_in(chunk.iter().cloned()))
                    .all(self.connection())
                    .await?
                {
                    manual.entry(m.device_id).or_default().push(m.group_id);
                }
            }
        }
        Ok(rows
            .into_iter()
            .map(
                |(id, platform, os_family, assigned_user, assigned_group, enrollment_id)| {
                    PolicyTarget {
                        manual_groups: manual.remove(&id).unwrap_or_default(),
                        device_id: id,
                        platform,
                        os_family,
                        assigned_user,
                        assigned_group,
                        enrollment_id,
                    }
                },
            )
            .collect())
    }

    async fn users_for_policies(&self, usernames: &[String]) -> StoreResult<Vec<DirectoryUserRow>> {
        // The directory's tables belong to the directory module; read them by name so
        // that the policy engine does not depend on its entities.
        let backend = self.backend();
        let mut users: Vec<DirectoryUserRow> = Vec::new();
        for chunk in usernames.chunks(LOOKUP_BATCH) {
            if chunk.is_empty() {
                continue;
            }
            let placeholders: Vec<String> = (1..=chunk.len())
                .map(|i| match backend {
                    DbBackend::Postgres => format!("${i}"),
                    _ => "?".to_owned(),
                })
                .collect();
            let values: Vec<sea_orm::Value> = chunk.iter().map(|u| u.clone().into()).collect();
            let sql = format!(
                "SELECT u.username, u.upn, u.email, u.display_name, u.department, u.disabled, g.name AS group_name \
                 FROM directory_users u \
                 LEFT JOIN directory_group_members m ON m.user_id = u.id \
                 LEFT JOIN directory_groups g ON g.id = m.group_id \
                 WHERE u.username IN ({}) ORDER BY u.username, g.name",
                placeholders.join(", ")
            );
            let rows = self
                .connection()
                .query_all(Statement::from_sql_and_values(backend, sql, values))
                .await?;
            for row in rows {
                let username: String = row.try_get("", "username")?;
                let group: Option<String> = row.try_get("", "group_name")?;
                if users.last().map(|u| u.username.as_str()) != Some(username.as_str()) {
                    users.push(DirectoryUserRow {
                        upn: row.try_get("", "upn")?,
                        email: row.try_get("", "email")?,
                        display_name: row.try_get("", "display_name")?,
                        department: row.try_get("", "department")?,
                        disabled: row.try_get("", "disabled")?,
                        groups: Vec::new(),
                        username,
                    });
                }
                if let (Some(g), Some(user)) = (group, users.last_mut()) {
                    user.groups.push(g);
                }
            }
        }
        Ok(users)
    }

    async fn policy_outputs(&self, device_ids: &[String]) -> StoreResult<Vec<PolicyOutputRow>> {
        let mut out = Vec::new();
        for chunk in device_ids.chunks(LOOKUP_BATCH) {
            out.extend(
                device_policy_outputs::Entity::find()
                    .filter(device_policy_outputs::Column::DeviceId.is_in(chunk.iter().cloned()))
                    .all(self.connection())
                    .await?
                    .into_iter()
                    .map(output_from_row),
            );
        }
        Ok(out)
    }

    async fn apply_policy_outputs(
        &self,
        changes: Vec<OutputChange>,
        events: Vec<NewEvent>,
    ) -> StoreResult<Vec<OutputChange>> {
        let now = Utc::now();
        let txn = self.begin_write().await?;
        let mut in_effect = Vec::with_capacity(changes.len());
        let mut any_took = false;
        let mut commands = Vec::with_capacity(changes.len());
        for change in changes {
            let took = match &change {
                OutputChange::Install {
                    row,
                    expected,
                    command,
                } => {
                    let took = match expected {
                        Some(old) => {
                            device_policy_outputs::Entity::update_many()
                                .col_expr(
                                    device_policy_outputs::Column::OutputHash,
                                    Expr::value(row.output_hash.clone()),
                                )
                                .col_expr(
                                    device_policy_outputs::Column::InputHash,
                                    Expr::value(row.input_hash.clone()),
                                )
                                .col_expr(
                                    device_policy_outputs::Column::Identifier,
                                    Expr::value(row.identifier.clone()),
                                )
                                .col_expr(
                                    device_policy_outputs::Column::PolicyVersion,
                                    Expr::value(row.policy_version),
                                )
                                .col_expr(
                                    device_policy_outputs::Column::CommandUuid,
                                    Expr::value(command.uuid.clone()),
                                )
                                .col_expr(
                                    device_policy_outputs::Column::Status,
                                    Expr::value("queued"),
                                )
                                .col_expr(
                                    device_policy_outputs::Column::UpdatedAt,
                                    Expr::value(now),
                                )
                                .filter(
                                    device_policy_outputs::Column::DeviceId
                                        .eq(row.device_id.as_str()),
                                )
                                .filter(
                                    device_policy_outputs::Column::PolicyId
                                        .eq(row.policy_id.as_str()),
                                )
                                .filter(device_policy_outputs::Column::OutputHash.eq(old.as_str()))
                                .exec(&txn)
                                .await?
                                .rows_affected
                                == 1
                        }
                        None => {
                            device_policy_outputs::Entity::insert(
                                device_policy_outputs::ActiveModel {
                                    device_id: Set(row.device_id.clone()),
                                    policy_id: Set(row.policy_id.clone()),
                                    identifier: Set(row.identifier.clone()),
                                    output_hash: Set(row.output_hash.clone()),
                                    input_hash: Set(row.input_hash.clone()),
                                    policy_version: Set(row.policy_version),
                                    command_uuid: Set(Some(command.uuid.clone())),
                                    status: Set("queued".into()),
                                    updated_at: Set(now),
                                },
                            )
                            .on_conflict(
                                sea_orm::sea_query::OnConflict::columns([
                                    device_policy_outputs::Column::DeviceId,
                                    device_policy_outputs::Column::PolicyId,
                                ])
                                .do_nothing()
                                .to_owned(),
                            )
                            .exec_without_returning(&txn)
                            .await?
                                == 1
                        }
                    };
                    if took {
                        commands.push(command.clone());
                    }
                    took
                }
                OutputChange::Refresh {
                    device_id,
                    policy_id,
                    expected,
                    input_hash,
                } => {
                    device_policy_outputs::Entity::update_many()
                        .col_expr(
                            device_policy_outputs::Column::InputHash,
                            Expr::value(input_hash.clone()),
                        )
                        .filter(device_policy_outputs::Column::DeviceId.eq(device_id.as_str()))
                        .filter(device_policy_outputs::Column::PolicyId.eq(policy_id.as_str()))
                        .filter(device_policy_outputs::Column::OutputHash.eq(expected.as_str()))
                        .exec(&txn)
                        .await?
                        .rows_affected
                        == 1
                }
                OutputChange::Remove {
                    device_id,
                    policy_id,
                    expected,
                    command,
                } => {
                    let took = device_policy_outputs::Entity::delete_many()
                        .filter(device_policy_outputs::Column::DeviceId.eq(device_id.as_str()))
                        .filter(device_policy_outputs::Column::PolicyId.eq(policy_id.as_str()))
                        .filter(device_policy_outputs::Column::OutputHash.eq(expected.as_str()))
                        .exec(&txn)
                        .await?
                        .rows_affected
                        == 1;
                    if took {
                        commands.push(command.clone());
                    }
                    took
                }
            };
            any_took |= took;
            if took || made_concurrently(&txn, &change).await? {
                in_effect.push(change);
            }
        }
        let change = insert_commands(&txn, commands, now).await?;
        if any_took {
            for event in events {
                super::events::insert_event(&txn, event).await?;
            }
        }
        txn.commit().await?;
        self.changed(&change);
        Ok(in_effect)
    }

    async fn policy_output_acknowledged(&self, command_uuid: &str) -> StoreResult<()> {
        device_policy_outputs::Entity::update_many()
            .col_expr(
                device_policy_outputs::Column::Status,
                Expr::value("installed"),
            )
            .col_expr(
                device_policy_outputs::Column::UpdatedAt,
                Expr::value(Utc::now()),
            )
            .filter(device_policy_outputs::Column::CommandUuid.eq(command_uuid))
            .exec(self.connection())
            .await?;
        Ok(())
    }

    async fn set_compliance(
        &self,
        device_id: &str,
        compliant: bool,
        reasons: &[String],
        at: DateTime<Utc>,
        event: Option<NewEvent>,
    ) -> StoreResult<Option<bool>> {
        let txn = self.begin_write().await?;
        let Some(device) = devices::Entity::find_by_id(device_id).one(&txn).await? else {
            return Err(StoreError::NotFound(format!(
                "device {device_id} not found"
            )));
        };
        let previous = device.compliant;
        let reasons_json = serde_json::to_string(reasons).unwrap_or_else(|_| "[]".into());
        devices::Entity::update_many()
            .col_expr(devices::Column::Compliant, Expr::value(compliant))
            .col_expr(
                devices::Column::ComplianceReasons,
                Expr::value(reasons_json),
            )
            .col_expr(devices::Column::ComplianceCheckedAt, Expr::value(at))
            .filter(devices::Column::Id.eq(device_id))
            .exec(&txn)
            .await?;
        // The event marks a change of state, not every evaluation. A device's first
        // evaluation is not a fall out of compliance (a new phone has reported
        // nothing yet): it is recorded at low severity, which files no incident.
        if let Some(mut event) = event.filter(|_| previous != Some(compliant)) {
            if previous.is_none() {
                event.severity = event.severity.map(|s| s.min(1));
            }
            super::events::insert_event(&txn, event).await?;
        }
        txn.commit().await?;
        Ok(previous)
    }

    async fn policy_cursor(&self) -> StoreResult<i64> {
        Ok(policy_event_cursor::Entity::find_by_id(1)
            .one(self.connection())
            .await?
            .map_or(0, |c| c.last_event_id))
    }

    async fn advance_policy_cursor(&self, to: i64) -> StoreResult<()> {
        // Only forward: an instance that read an older position never moves it back.
        policy_event_cursor::Entity::update_many()
            .col_expr(policy_event_cursor::Column::LastEventId, Expr::value(to))
            .filter(policy_event_cursor::Column::Id.eq(1))
            .filter(policy_event_cursor::Column::LastEventId.lt(to))
            .exec(self.connection())
            .await?;
        Ok(())
    }
}

/// Whether a change whose expectation failed was already made by a concurrent
/// delivery (the watcher's and an admin's, or two instances', compiled the same
/// output): the device has that output queued, or the profile is gone. A refresh
/// only records inputs, and is never reported.
async fn made_concurrently(db: &DatabaseTransaction, change: &OutputChange) -> StoreResult<bool> {
    let (device_id, policy_id) = match change {
        OutputChange::Install { row, .. } => (&row.device_id, &row.policy_id),
        OutputChange::Remove {
            device_id,
            policy_id,
            ..
        } => (device_id, policy_id),
        OutputChange::Refresh { .. } => return Ok(false),
    };
    let current = device_policy_outputs::Entity::find()
        .filter(device_policy_outputs::Column::DeviceId.eq(device_id.as_str()))
        .filter(device_policy_outputs::Column::PolicyId.eq(policy_id.as_str()))
        .one(db)
        .await?;
    Ok(match change {
        OutputChange::Install { row, .. } => {
            current.is_some_and(|c| c.output_hash == row.output_hash)
        }
        _ => current.is_none(),
    })
}

#[cfg(test)]
mod tests {
    use super::super::test_store::{test_device, TempSqlite};
    use super::*;
    use crate::domain::event::kinds::POLICY_PROFILES_QUEUED;
    use crate::storage::entities::{commands, events};
    use sea_orm::PaginatorTrait;

    fn command(uuid: &str, request_type: &str) -> crate::domain::NewCommand {
        crate::domain::NewCommand {
            uuid: uuid.into(),
            device_id: "d1".into(),
            request_type: request_type.into(),
            payload: vec![1],
            payload_sealed: false,
            priority: 0,
            expires_at: None,
            created_by: "admin:ops".into(),
        }
    }

    fn install(uuid: &str, output_hash: &str, expected: Option<&str>) -> OutputChange {
        OutputChange::Install {
            row: PolicyOutputRow {
                device_id: "d1".into(),
                policy_id: "staff".into(),
                identifier: "org.example.staff".into(),
                output_hash: output_hash.into(),
                input_hash: format!("inputs of {output_hash}"),
                policy_version: 1,
                command_uuid: Some(uuid.into()),
                status: "queued".into(),
            },
            expected: expected.map(Into::into),
            command: command(uuid, "InstallProfile"),
        }
    }

    fn remove(uuid: &str, expected: &str) -> OutputChange {
        OutputChange::Remove {
            device_id: "d1".into(),
            policy_id: "staff".into(),
            expected: expected.into(),
            command: command(uuid, "RemoveProfile"),
        }
    }

    /// The watcher's delivery and an admin's (or two instances') compile the same
    /// change from the same state: the second finds it made. It reports the change,
    /// as the device does get it, but queues no second command and no second event.
    #[tokio::test]
    async fn a_change_a_concurrent_delivery_made_the_same_is_in_effect_and_made_once() {
        let store = TempSqlite::open("policy-outputs").await;
        test_device(&store, "d1", Utc::now()).await;
        let apply = |changes: Vec<OutputChange>| {
            let event = NewEvent::new(POLICY_PROFILES_QUEUED, "policy profiles queued");
            store.apply_policy_outputs(changes, vec![event])
        };
        let uuids = |changes: &[OutputChange]| -> Vec<String> {
            changes
                .iter()
                .map(|c| match c {
                    OutputChange::Install { command, .. }
                    | OutputChange::Remove { command, .. } => command.uuid.clone(),
                    OutputChange::Refresh { .. } => "refresh".into(),
                })
                .collect()
        };

        assert_eq!(
            uuids(&apply(vec![install("c1", "h1", None)]).await.unwrap()),
            ["c1"]
        );
        assert_eq!(
            uuids(&apply(vec![install("c2", "h1", None)]).await.unwrap()),
            ["c2"]
        );
        // Compiled from a state read before h1 was queued, to another output: the
        // device does not get it, and it is not reported.
        assert!(apply(vec![install("c3", "h2", None)])
            .await
            .unwrap()
            .is_empty());
        // A new version replacing h1, delivered twice.
        assert_eq!(
            uuids(&apply(vec![install("c4", "h3", Some("h1"))]).await.unwrap()),
            ["c4"]
        );
        assert_eq!(
            uuids(&apply(vec![install("c5", "h3", Some("h1"))]).await.unwrap()),
            ["c5"]
        );
        // Removed twice; a removal of an output the device no longer has is not made
        // by anyone when the device has another one.
        assert!(apply(vec![remove("c6", "h1")]).await.unwrap().is_empty());
        assert_eq!(
            uuids(&apply(vec![remove("c7", "h3")]).await.unwrap()),
            ["c7"]
        );
        assert_eq!(
            uuids(&apply(vec![remove("c8", "h3")]).await.unwrap()),
            ["c8"]
        );

        let mut queued: Vec<String> = commands::Entity::find()
            .all(&store.db)
            .await
            .unwrap()
            .into_iter()
            .map(|c| c.uuid)
            .collect();
        queued.sort();
        assert_eq!(queued, ["c1", "c4", "c7"]);
        let reported = events::Entity::find()
            .filter(events::Column::Kind.eq(POLICY_PROFILES_QUEUED))
            .count(&store.db)
            .await
            .unwrap();
        assert_eq!(reported, 3, "one event per delivery that queued something");
    }
}
