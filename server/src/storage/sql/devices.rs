//! [`DeviceStore`] on sea-orm.

use super::*;
use crate::domain::CommandStatus;
use crate::domain::Platform;
use crate::storage::entities::{commands, devices, identity_bindings, user_channels};
use crate::storage::*;
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect, Set,
};

fn device_from_row(m: devices::Model) -> Device {
    Device {
        platform: Platform::parse(&m.platform).unwrap_or(Platform::Apple),
        has_unlock_token: m.unlock_token.is_some(),
        has_bootstrap_token: m.bootstrap_token.is_some(),
        installed_profiles: m
            .installed_profiles
            .as_deref()
            .and_then(|s| serde_json::from_str(s).ok()),
        id: m.id,
        udid: m.udid,
        serial_number: m.serial_number,
        reported_serial_number: m.reported_serial_number,
        imei: m.imei,
        model: m.model,
        model_name: m.model_name,
        product_name: m.product_name,
        os_family: m.os_family,
        os_version: m.os_version,
        build_version: m.build_version,
        device_name: m.device_name,
        topic: m.topic,
        push_token: m.push_token,
        push_magic: m.push_magic,
        push_token_invalid_at: m.push_token_invalid_at,
        last_push_at: m.last_push_at,
        enrollment_id: m.enrollment_id,
        assigned_user: m.assigned_user,
        assigned_group: m.assigned_group,
        awaiting_configuration: m.awaiting_configuration,
        identity_fingerprint: m.identity_fingerprint,
        identity_subject: m.identity_subject,
        identity_not_after: m.identity_not_after,
        identity_revoked_at: m.identity_revoked_at,
        identity_revocation_reason: m.identity_revocation_reason,
        retired_at: m.retired_at,
        enrolled: m.enrolled,
        enrolled_at: m.enrolled_at,
        unenrolled_at: m.unenrolled_at,
        last_seen_at: m.last_seen_at,
        hardware_encrypted: m.hardware_encrypted,
        passcode_present: m.passcode_present,
        passcode_compliant: m.passcode_compliant,
        compliant: m.compliant,
        compliance_reasons: m
            .compliance_reasons
            .as_deref()
            .and_then(|s| serde_json::from_str(s).ok())
            .unwrap_or_default(),
        compliance_checked_at: m.compliance_checked_at,
        created_at: m.created_at,
        updated_at: m.updated_at,
    }
}

pub(super) fn new_device_row(
    record: AuthenticateRecord,
    now: DateTime<Utc>,
    enrolled: bool,
) -> devices::ActiveModel {
    devices::ActiveModel {
        id: Set(uuid::Uuid::new_v4().to_string()),
        platform: Set(Platform::Apple.as_str().to_owned()),
        udid: Set(Some(record.udid)),
        serial_number: Set(record.serial_number),
        imei: Set(record.imei),
        model: Set(record.model),
        model_name: Set(record.model_name),
        product_name: Set(record.product_name),
        os_family: Set(record.os_family),
        os_version: Set(record.os_version),
        build_version: Set(record.build_version),
        device_name: Set(record.device_name),
        topic: Set(record.topic),
        push_token: Set(None),
        push_magic: Set(None),
        unlock_token: Set(None),
        bootstrap_token: Set(None),
        awaiting_configuration: Set(false),
        identity_fingerprint: Set(Some(record.identity_fingerprint)),
        identity_subject: Set(Some(record.identity_subject)),
        identity_not_after: Set(Some(record.identity_not_after)),
        enrolled: Set(enrolled),
        enrolled_at: Set(enrolled.then_some(now)),
        unenrolled_at: Set(None),
        last_seen_at: Set(Some(now)),
        hardware_encrypted: Set(None),
        passcode_present: Set(None),
        passcode_compliant: Set(None),
        installed_profiles: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
        push_token_invalid_at: Set(None),
        last_push_at: Set(None),
        enrollment_id: Set(None),
        assigned_user: Set(None),
        assigned_group: Set(None),
        released_at: Set(None),
        reenrollment_approved_until: Set(None),
        reenrollment_keep_queue: Set(false),
        reported_serial_number: Set(None),
        identity_revoked_at: Set(None),
        identity_revocation_reason: Set(None),
        retired_at: Set(None),
        compliant: Set(None),
        compliance_reasons: Set(None),
        compliance_checked_at: Set(None),
    }
}

#[async_trait]
impl DeviceStore for SqlStore {
    async fn identity_by_udid(&self, udid: &str) -> StoreResult<Option<DeviceIdentityRow>> {
        type Row = (
            String,
            bool,
            Option<String>,
            String,
            Option<DateTime<Utc>>,
            Option<DateTime<Utc>>,
            Option<String>,
            bool,
        );
        // The open commands are looked up in the same statement (one index probe on
        // (device_id, status, ...)): an Idle then needs no second one.
        let open = sea_orm::sea_query::Query::select()
            .expr(Expr::val(1))
            .from(commands::Entity)
            .and_where(
                Expr::col((commands::Entity, commands::Column::DeviceId))
                    .equals((devices::Entity, devices::Column::Id)),
            )
            .and_where(commands::Column::Status.is_in([
                CommandStatus::Pending.as_str(),
                CommandStatus::Sent.as_str(),
                CommandStatus::NotNow.as_str(),
            ]))
            .to_owned();
        let row: Option<Row> = devices::Entity::find()
            .select_only()
            .column(devices::Column::Id)
            .column(devices::Column::Enrolled)
            .column(devices::Column::IdentityFingerprint)
            .column(devices::Column::OsFamily)
            .column(devices::Column::LastSeenAt)
            .column(devices::Column::IdentityRevokedAt)
            .column(devices::Column::IdentityRevocationReason)
            .expr(Expr::exists(open))
            .filter(devices::Column::Udid.eq(udid))
            .into_tuple()
            .one(&self.db)
            .await?;
        Ok(row.map(
            |(
                id,
                enrolled,
                identity_fingerprint,
                os_family,
                last_seen_at,
                identity_revoked_at,
                identity_revocation_reason,
                open_commands,
            )| DeviceIdentityRow {
                id,
                enrolled,
                identity_fingerprint,
                os_family,
                last_seen_at,
                identity_revoked_at,
                identity_revocation_reason,
                open_commands: Some(open_commands),
            },
        ))
    }

    async fn authenticate(
        &self,
        record: AuthenticateRecord,
        rules: BindingRules,
    ) -> StoreResult<Result<AuthenticateOutcome, BindingRefusal>> {
        super::identity::authenticate(self, record, rules).await
    }

    async fn approve_reenrollment(
        &self,
        device_id: &str,
        until: DateTime<Utc>,
        keep_queue: bool,
    ) -> StoreResult<()> {
        let done = devices::Entity::update_many()
            .col_expr(
                devices::Column::ReenrollmentApprovedUntil,
                Expr::value(until),
            )
            .col_expr(
                devices::Column::ReenrollmentKeepQueue,
                Expr::value(keep_queue),
            )
            .filter(devices::Column::Id.eq(device_id))
            .exec(&self.db)
            .await?;
        if done.rows_affected == 0 {
            return Err(StoreError::NotFound(format!(
                "device {device_id} not found"
            )));
        }
        Ok(())
    }

    async fn token_update(&self, device_id: &str, record: TokenUpdateRecord) -> StoreResult<bool> {
        let now = Utc::now();
        let txn = self.begin_write().await?;
        let row = devices::Entity::find_by_id(device_id)
            .one(&txn)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("device {device_id} not found")))?;
        let first = !row.enrolled;
        let mut active: devices::ActiveModel = row.into();
        if record.topic.is_some() {
            active.topic = Set(record.topic);
        }
        if record.push_token_hex.is_some() {
            active.push_token = Set(record.push_token_hex);
            // A new token is worth trying again even if APNs refused the old one.
            active.push_token_invalid_at = Set(None);
        }
        if record.push_magic.is_some() {
            active.push_magic = Set(record.push_magic);
        }
        if record.unlock_token_sealed.is_some() {
            active.unlock_token = Set(record.unlock_token_sealed);
        }
        if let Some(awaiting) = record.awaiting_configuration {
            active.awaiting_configuration = Set(awaiting);
        }
        if first {
            active.enrolled = Set(true);
            active.enrolled_at = Set(Some(now));
            active.unenrolled_at = Set(None);
        }
        active.last_seen_at = Set(Some(now));
        active.updated_at = Set(now);
        active.update(&txn).await?;
        // The device's cached identity row says whether it is enrolled.
        let change = Change::Device(device_id.to_owned());
        super::notify::announce(&txn, &change).await?;
        txn.commit().await?;
        self.changed(&change);
        Ok(first)
    }

    async fn user_token_update(
        &self,
        device_id: &str,
        record: UserChannelRecord,
    ) -> StoreResult<()> {
        let row = user_channels::ActiveModel {
            device_id: Set(device_id.to_owned()),
            user_id: Set(record.user_id),
            user_short_name: Set(record.user_short_name),
            user_long_name: Set(record.user_long_name),
            push_token: Set(record.push_token_hex),
            push_magic: Set(record.push_magic),
            updated_at: Set(Utc::now()),
        };
        user_channels::Entity::insert(row)
            .on_conflict(
                OnConflict::columns([
                    user_channels::Column::DeviceId,
                    user_channels::Column::UserId,
                ])
                .update_columns([
                    user_channels::Column::UserShortName,
                    user_channels::Column::UserLongName,
                    user_channels::Column::PushToken,
                    user_channels::Column::PushMagic,
                    user_channels::Column::UpdatedAt,
                ])
                .to_owned(),
            )
            .exec(&self.db)
            .await?;
        Ok(())
    }

    async fn set_bootstrap_token(
        &self,
        device_id: &str,
        sealed: Option<Vec<u8>>,
    ) -> StoreResult<()> {
        devices::Entity::update_many()
            .col_expr(devices::Column::BootstrapToken, Expr::value(sealed))
            .col_expr(devices::Column::UpdatedAt, Expr::value(Utc::now()))
            .filter(devices::Column::Id.eq(device_id))
            .exec(&self.db)
            .await?;
        Ok(())
    }

    async fn bootstrap_token(&self, device_id: &str) -> StoreResult<Option<Vec<u8>>> {
        let row: Option<Option<Vec<u8>>> = devices::Entity::find_by_id(device_id)
            .select_only()
            .column(devices::Column::BootstrapToken)
            .into_tuple()
            .one(&self.db)
            .await?;
        row.ok_or_else(|| StoreError::NotFound(format!("device {device_id} not found")))
    }

    async fn unlock_tokens(
        &self,
        device_ids: &[String],
    ) -> StoreResult<std::collections::HashMap<String, Vec<u8>>> {
        let mut found = std::collections::HashMap::new();
        for chunk in device_ids.chunks(LOOKUP_BATCH) {
            let rows: Vec<(String, Option<Vec<u8>>)> = devices::Entity::find()
                .select_only()
                .column(devices::Column::Id)
                .column(devices::Column::UnlockToken)
                .filter(devices::Column::Id.is_in(chunk.iter().cloned()))
                .filter(devices::Column::UnlockToken.is_not_null())
                .into_tuple()
                .all(&self.db)
                .await?;
            found.extend(
                rows.into_iter()
                    .filter_map(|(id, token)| Some((id, token?))),
            );
        }
        Ok(found)
    }

    async fn touch_many(&self, seen: Vec<(String, DateTime<Utc>)>) -> StoreResult<()> {
        use sea_orm::sea_query::CaseStatement;
        // Each device its own time, in one statement per batch; a time older than
        // the stored one (another instance wrote a later one) leaves it.
        for batch in seen.chunks(TOUCH_BATCH) {
            let mut newer = CaseStatement::new();
            for (id, at) in batch {
                newer = newer.case(
                    Condition::all()
                        .add(devices::Column::Id.eq(id.as_str()))
                        .add(
                            Condition::any()
                                .add(devices::Column::LastSeenAt.is_null())
                                .add(devices::Column::LastSeenAt.lt(*at)),
                        ),
                    Expr::value(*at),
                );
            }
            devices::Entity::update_many()
                .col_expr(
                    devices::Column::LastSeenAt,
                    newer.finally(Expr::col(devices::Column::LastSeenAt)).into(),
                )
                .filter(devices::Column::Id.is_in(batch.iter().map(|(id, _)| id.as_str())))
                .exec(&self.db)
                .await?;
        }
        Ok(())
    }

    async fn device(&self, id: &str) -> StoreResult<Option<Device>> {
        Ok(devices::Entity::find_by_id(id)
            .one(&self.db)
            .await?
            .map(device_from_row))
    }

    async fn devices_by_id(&self, ids: &[String]) -> StoreResult<Vec<Device>> {
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(LOOKUP_BATCH) {
            out.extend(
                devices::Entity::find()
                    .filter(devices::Column::Id.is_in(chunk.iter().cloned()))
                    .all(&self.db)
                    .await?
                    .into_iter()
                    .map(device_from_row),
            );
        }
        Ok(out)
    }

    async fn devices(&self, filter: &DeviceFilter) -> StoreResult<Page<Device>> {
        let mut query = devices::Entity::find();
        if let Some(p) = &filter.platform {
            query = query.filter(devices::Column::Platform.eq(p.as_str()));
        }
        if let Some(e) = filter.enrolled {
            query = query.filter(devices::Column::Enrolled.eq(e));
        }
        if let Some(s) = &filter.serial_number {
            query = query.filter(devices::Column::SerialNumber.eq(s.as_str()));
        }
        if let Some(u) = &filter.udid {
            query = query.filter(devices::Column::Udid.eq(u.as_str()));
        }
        if let Some(f) = &filter.os_family {
            query = query.filter(devices::Column::OsFamily.eq(f.as_str()));
        }
        if let Some(noncompliant) = filter.noncompliant {
            query = query.filter(devices::Column::Compliant.eq(!noncompliant));
        }
        if let Some(u) = filter.user.as_deref().filter(|u| !u.is_empty()) {
            query = query.filter(devices::Column::AssignedUser.eq(u));
        }
        if let Some(g) = filter.group.as_deref().filter(|g| !g.is_empty()) {
            query = query.filter(devices::Column::AssignedGroup.eq(g));
        }
        if let Some(q) = filter.search.as_deref().filter(|q| !q.is_empty()) {
            query = query.filter(
                Condition::any()
                    .add(devices::Column::DeviceName.contains(q))
                    .add(devices::Column::SerialNumber.contains(q))
                    .add(devices::Column::Model.contains(q))
                    .add(devices::Column::Udid.contains(q)),
            );
        }
        let total = query.clone().count(&self.db).await?;
        // SQL offsets are signed 64-bit: a larger one (a caller's u64) would not bind.
        let offset = filter.offset.unwrap_or(0).min(i64::MAX as u64);
        let limit = filter.limit.unwrap_or(100).clamp(1, 1000);
        let items = query
            .order_by_asc(devices::Column::CreatedAt)
            .order_by_asc(devices::Column::Id)
            .offset(offset)
            .limit(limit)
            .all(&self.db)
            .await?
            .into_iter()
            .map(device_from_row)
            .collect();
        Ok(Page {
            items,
            total,
            offset,
            limit,
        })
    }

    async fn existing_devices(&self, ids: &[String]) -> StoreResult<Vec<(String, String)>> {
        let mut found = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(LOOKUP_BATCH) {
            let rows: Vec<(String, String)> = devices::Entity::find()
                .select_only()
                .column(devices::Column::Id)
                .column(devices::Column::OsFamily)
                .filter(devices::Column::Id.is_in(chunk.iter().cloned()))
                .into_tuple()
                .all(&self.db)
                .await?;
            found.extend(rows);
        }
        Ok(found)
    }

    async fn insert_enrolled_devices(
        &self,
        records: Vec<AuthenticateRecord>,
    ) -> StoreResult<Vec<String>> {
        let now = Utc::now();
        let mut ids = Vec::with_capacity(records.len());
        let txn = self.begin_write().await?;
        let mut batch = Vec::with_capacity(INSERT_BATCH);
        let mut bindings = Vec::with_capacity(records.len());
        for record in records {
            let row = new_device_row(record, now, true);
            ids.push(row.id.clone().unwrap());
            bindings.push(identity_bindings::ActiveModel {
                fingerprint: Set(row
                    .identity_fingerprint
                    .clone()
                    .unwrap()
                    .unwrap_or_default()),
                device_id: row.id.clone(),
                bound_at: Set(now),
                retired_at: Set(None),
            });
            batch.push(row);
            if batch.len() == INSERT_BATCH / 2 {
                devices::Entity::insert_many(std::mem::take(&mut batch))
                    .exec(&txn)
                    .await?;
            }
        }
        if !batch.is_empty() {
            devices::Entity::insert_many(batch).exec(&txn).await?;
        }
        while !bindings.is_empty() {
            let rest = bindings.split_off(bindings.len().min(INSERT_BATCH));
            identity_bindings::Entity::insert_many(std::mem::replace(&mut bindings, rest))
                .exec(&txn)
                .await?;
        }
        txn.commit().await?;
        Ok(ids)
    }
}

/// The statement that writes what a query result told about a device (part of its
/// report: storage/sql/queue.rs).
pub(super) fn facts_update(
    device_id: &str,
    facts: &DeviceFacts,
    os_family: Option<&str>,
    now: DateTime<Utc>,
) -> sea_orm::sea_query::UpdateStatement {
    use sea_orm::QueryTrait;
    let mut update = devices::Entity::update_many()
        .col_expr(devices::Column::UpdatedAt, Expr::value(now))
        .filter(devices::Column::Id.eq(device_id));
    macro_rules! set_if {
        ($($field:ident => $col:ident),*) => {$(
            if let Some(v) = facts.$field.clone() {
                update = update.col_expr(devices::Column::$col, Expr::value(v));
            }
        )*};
    }
    set_if!(os_version => OsVersion, build_version => BuildVersion, product_name => ProductName,
        model => Model, model_name => ModelName, serial_number => SerialNumber,
        serial_number => ReportedSerialNumber,
        device_name => DeviceName, hardware_encrypted => HardwareEncrypted,
        passcode_present => PasscodePresent, passcode_compliant => PasscodeCompliant);
    if let Some(profiles) = &facts.installed_profiles {
        let json = serde_json::to_string(profiles).unwrap_or_else(|_| "[]".into());
        update = update.col_expr(devices::Column::InstalledProfiles, Expr::value(json));
    }
    if let Some(family) = os_family {
        update = update.col_expr(devices::Column::OsFamily, Expr::value(family));
    }
    update.into_query()
}
