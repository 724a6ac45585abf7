//! The sea-orm implementation of the storage traits, for SQLite and PostgreSQL.

use super::entities::{admin_tokens, commands, devices, events, user_channels};
use super::*;
use crate::domain::{CommandStatus, Platform};
use migrations::{Migrator, MigratorTrait};
use sea_orm::sea_query::{Expr, OnConflict, Order, Query};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectOptions, ConnectionTrait, Database,
    DatabaseConnection, DbBackend, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect, Set, TransactionTrait,
};
use std::time::Duration;

/// Rows per INSERT statement: well under SQLite's and PostgreSQL's bound-parameter
/// limits for our widest table.
const INSERT_BATCH: usize = 500;
/// Ids per `IN (...)` list.
const LOOKUP_BATCH: usize = 1000;
/// last_seen_at is refreshed at most this often, so an Idle poll does not always write.
const TOUCH_INTERVAL_SECS: i64 = 30;

#[derive(Clone)]
pub struct SqlStore {
    db: DatabaseConnection,
}

impl SqlStore {
    /// Connects and applies pending migrations.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let mut options = ConnectOptions::new(url.to_owned());
        let sqlite = url.starts_with("sqlite:");
        options
            .max_connections(if sqlite { 8 } else { 32 })
            .min_connections(1)
            .connect_timeout(Duration::from_secs(10))
            .sqlx_logging(false);
        if sqlite {
            // WAL lets readers run beside the single writer; the busy timeout makes
            // writers wait their turn instead of failing under load.
            options.map_sqlx_sqlite_opts(|o| {
                o.journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
                    .synchronous(sea_orm::sqlx::sqlite::SqliteSynchronous::Normal)
                    .busy_timeout(Duration::from_secs(30))
                    .foreign_keys(true)
                    .create_if_missing(true)
            });
        }
        let db = Database::connect(options).await?;
        Migrator::up(&db, None).await?;
        Ok(SqlStore { db })
    }

    pub fn backend(&self) -> DbBackend {
        self.db.get_database_backend()
    }

    pub fn connection(&self) -> &DatabaseConnection {
        &self.db
    }
}

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
        enrolled: m.enrolled,
        enrolled_at: m.enrolled_at,
        unenrolled_at: m.unenrolled_at,
        last_seen_at: m.last_seen_at,
        hardware_encrypted: m.hardware_encrypted,
        passcode_present: m.passcode_present,
        passcode_compliant: m.passcode_compliant,
        created_at: m.created_at,
        updated_at: m.updated_at,
    }
}

fn command_from_row(m: commands::Model) -> CommandRecord {
    CommandRecord {
        status: CommandStatus::parse(&m.status).unwrap_or(CommandStatus::Error),
        result_raw: m
            .result_raw
            .map(|raw| String::from_utf8_lossy(&raw).into_owned()),
        result: m
            .result
            .as_deref()
            .and_then(|s| serde_json::from_str(s).ok()),
        uuid: m.uuid,
        device_id: m.device_id,
        request_type: m.request_type,
        priority: m.priority,
        created_by: m.created_by,
        created_at: m.created_at,
        updated_at: m.updated_at,
        expires_at: m.expires_at,
        delivered_at: m.delivered_at,
        completed_at: m.completed_at,
        delivery_count: m.delivery_count,
        not_now_count: m.not_now_count,
    }
}

fn open_statuses() -> [&'static str; 3] {
    [
        CommandStatus::Pending.as_str(),
        CommandStatus::Sent.as_str(),
        CommandStatus::NotNow.as_str(),
    ]
}

/// Cancels a device's open commands (re-enrollment, check-out).
async fn cancel_open<C: ConnectionTrait>(
    db: &C,
    device_id: &str,
    now: DateTime<Utc>,
) -> StoreResult<u64> {
    let res = commands::Entity::update_many()
        .col_expr(
            commands::Column::Status,
            Expr::value(CommandStatus::Cancelled.as_str()),
        )
        .col_expr(commands::Column::CompletedAt, Expr::value(now))
        .col_expr(commands::Column::UpdatedAt, Expr::value(now))
        .filter(commands::Column::DeviceId.eq(device_id))
        .filter(commands::Column::Status.is_in(open_statuses()))
        .exec(db)
        .await?;
    Ok(res.rows_affected)
}

fn new_device_row(
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
    }
}

#[async_trait]
impl DeviceStore for SqlStore {
    async fn identity_by_udid(&self, udid: &str) -> StoreResult<Option<DeviceIdentityRow>> {
        let row: Option<(String, bool, Option<String>, String, Option<DateTime<Utc>>)> =
            devices::Entity::find()
                .select_only()
                .column(devices::Column::Id)
                .column(devices::Column::Enrolled)
                .column(devices::Column::IdentityFingerprint)
                .column(devices::Column::OsFamily)
                .column(devices::Column::LastSeenAt)
                .filter(devices::Column::Udid.eq(udid))
                .into_tuple()
                .one(&self.db)
                .await?;
        Ok(row.map(
            |(id, enrolled, identity_fingerprint, os_family, last_seen_at)| DeviceIdentityRow {
                id,
                enrolled,
                identity_fingerprint,
                os_family,
                last_seen_at,
            },
        ))
    }

    async fn authenticate(&self, record: AuthenticateRecord) -> StoreResult<AuthenticateOutcome> {
        let now = Utc::now();
        let txn = self.db.begin().await?;
        let existing = devices::Entity::find()
            .filter(devices::Column::Udid.eq(record.udid.as_str()))
            .one(&txn)
            .await?;
        let outcome = match existing {
            Some(row) => {
                let previous_fingerprint = row.identity_fingerprint.clone();
                let device_id = row.id.clone();
                let mut active: devices::ActiveModel = row.into();
                macro_rules! refresh {
                    ($($field:ident),*) => {$(
                        if record.$field.is_some() { active.$field = Set(record.$field.clone()); }
                    )*};
                }
                refresh!(
                    serial_number,
                    imei,
                    model,
                    model_name,
                    product_name,
                    os_version,
                    build_version,
                    device_name,
                    topic
                );
                active.os_family = Set(record.os_family.clone());
                active.identity_fingerprint = Set(Some(record.identity_fingerprint.clone()));
                active.identity_subject = Set(Some(record.identity_subject.clone()));
                active.identity_not_after = Set(Some(record.identity_not_after.clone()));
                // A new enrollment: the old push token is void until TokenUpdate.
                active.push_token = Set(None);
                active.push_magic = Set(None);
                active.enrolled = Set(false);
                active.last_seen_at = Set(Some(now));
                active.updated_at = Set(now);
                active.update(&txn).await?;
                let cancelled_commands = cancel_open(&txn, &device_id, now).await?;
                AuthenticateOutcome {
                    device_id,
                    was_known: true,
                    previous_fingerprint,
                    cancelled_commands,
                }
            }
            None => {
                let row = new_device_row(record, now, false);
                let device_id = row.id.clone().unwrap();
                row.insert(&txn).await?;
                AuthenticateOutcome {
                    device_id,
                    was_known: false,
                    previous_fingerprint: None,
                    cancelled_commands: 0,
                }
            }
        };
        txn.commit().await?;
        Ok(outcome)
    }

    async fn token_update(&self, device_id: &str, record: TokenUpdateRecord) -> StoreResult<bool> {
        let now = Utc::now();
        let txn = self.db.begin().await?;
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
        txn.commit().await?;
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

    async fn check_out(&self, device_id: &str) -> StoreResult<u64> {
        let now = Utc::now();
        let txn = self.db.begin().await?;
        devices::Entity::update_many()
            .col_expr(devices::Column::Enrolled, Expr::value(false))
            .col_expr(devices::Column::UnenrolledAt, Expr::value(now))
            .col_expr(
                devices::Column::PushToken,
                Expr::value(Option::<String>::None),
            )
            .col_expr(
                devices::Column::PushMagic,
                Expr::value(Option::<String>::None),
            )
            .col_expr(
                devices::Column::UnlockToken,
                Expr::value(Option::<Vec<u8>>::None),
            )
            .col_expr(
                devices::Column::BootstrapToken,
                Expr::value(Option::<Vec<u8>>::None),
            )
            .col_expr(devices::Column::UpdatedAt, Expr::value(now))
            .filter(devices::Column::Id.eq(device_id))
            .exec(&txn)
            .await?;
        let cancelled = cancel_open(&txn, device_id, now).await?;
        txn.commit().await?;
        Ok(cancelled)
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

    async fn secrets(&self, device_id: &str) -> StoreResult<SecretsRow> {
        let row: Option<(Option<Vec<u8>>, Option<Vec<u8>>)> =
            devices::Entity::find_by_id(device_id)
                .select_only()
                .column(devices::Column::UnlockToken)
                .column(devices::Column::BootstrapToken)
                .into_tuple()
                .one(&self.db)
                .await?;
        let (unlock, bootstrap) =
            row.ok_or_else(|| StoreError::NotFound(format!("device {device_id} not found")))?;
        Ok(SecretsRow {
            unlock_token_sealed: unlock,
            bootstrap_token_sealed: bootstrap,
        })
    }

    async fn touch(&self, device_id: &str, at: DateTime<Utc>) -> StoreResult<()> {
        let stale = at - chrono::Duration::seconds(TOUCH_INTERVAL_SECS);
        devices::Entity::update_many()
            .col_expr(devices::Column::LastSeenAt, Expr::value(at))
            .filter(devices::Column::Id.eq(device_id))
            .filter(
                Condition::any()
                    .add(devices::Column::LastSeenAt.is_null())
                    .add(devices::Column::LastSeenAt.lt(stale)),
            )
            .exec(&self.db)
            .await?;
        Ok(())
    }

    async fn apply_facts(
        &self,
        device_id: &str,
        facts: &DeviceFacts,
        os_family: Option<&str>,
    ) -> StoreResult<()> {
        let mut update = devices::Entity::update_many()
            .col_expr(devices::Column::UpdatedAt, Expr::value(Utc::now()))
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
            device_name => DeviceName, hardware_encrypted => HardwareEncrypted,
            passcode_present => PasscodePresent, passcode_compliant => PasscodeCompliant);
        if let Some(profiles) = &facts.installed_profiles {
            let json = serde_json::to_string(profiles).unwrap_or_else(|_| "[]".into());
            update = update.col_expr(devices::Column::InstalledProfiles, Expr::value(json));
        }
        if let Some(family) = os_family {
            update = update.col_expr(devices::Column::OsFamily, Expr::value(family));
        }
        update.exec(&self.db).await?;
        Ok(())
    }

    async fn device(&self, id: &str) -> StoreResult<Option<Device>> {
        Ok(devices::Entity::find_by_id(id)
            .one(&self.db)
            .await?
            .map(device_from_row))
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
        let offset = filter.offset.unwrap_or(0);
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
        let txn = self.db.begin().await?;
        let mut batch = Vec::with_capacity(INSERT_BATCH);
        for record in records {
            let row = new_device_row(record, now, true);
            ids.push(row.id.clone().unwrap());
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
        txn.commit().await?;
        Ok(ids)
    }
}

#[async_trait]
impl CommandQueue for SqlStore {
    async fn enqueue(&self, new: Vec<NewCommand>) -> StoreResult<()> {
        let now = Utc::now();
        let txn = self.db.begin().await?;
        let mut batch = Vec::with_capacity(INSERT_BATCH);
        for c in new {
            batch.push(commands::ActiveModel {
                seq: sea_orm::NotSet,
                uuid: Set(c.uuid),
                device_id: Set(c.device_id),
                request_type: Set(c.request_type),
                payload: Set(c.payload),
                payload_sealed: Set(c.payload_sealed),
                priority: Set(c.priority),
                status: Set(CommandStatus::Pending.as_str().to_owned()),
                created_by: Set(c.created_by),
                created_at: Set(now),
                updated_at: Set(now),
                expires_at: Set(c.expires_at),
                delivered_at: Set(None),
                completed_at: Set(None),
                delivery_count: Set(0),
                not_now_count: Set(0),
                result_raw: Set(None),
                result: Set(None),
            });
            if batch.len() == INSERT_BATCH {
                commands::Entity::insert_many(std::mem::take(&mut batch))
                    .exec(&txn)
                    .await?;
            }
        }
        if !batch.is_empty() {
            commands::Entity::insert_many(batch).exec(&txn).await?;
        }
        txn.commit().await?;
        Ok(())
    }

    async fn deliver_next(
        &self,
        device_id: &str,
        new_exchange: bool,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<Delivery>> {
        if new_exchange {
            // An Idle starts a new exchange: what the device put off with NotNow
            // during the last one is offered again, in its original place.
            commands::Entity::update_many()
                .col_expr(
                    commands::Column::Status,
                    Expr::value(CommandStatus::Pending.as_str()),
                )
                .filter(commands::Column::DeviceId.eq(device_id))
                .filter(commands::Column::Status.eq(CommandStatus::NotNow.as_str()))
                .exec(&self.db)
                .await?;
        }
        // Taking the next command is one statement: mark sent the first open command
        // in (priority, FIFO) order and return it. Atomic, so two concurrent requests
        // of one device cannot take the same command.
        let next = Query::select()
            .column(commands::Column::Seq)
            .from(commands::Entity)
            .and_where(commands::Column::DeviceId.eq(device_id))
            .and_where(commands::Column::Status.is_in([
                CommandStatus::Pending.as_str(),
                CommandStatus::Sent.as_str(),
            ]))
            .cond_where(
                Condition::any()
                    .add(commands::Column::ExpiresAt.is_null())
                    .add(commands::Column::ExpiresAt.gt(now)),
            )
            .order_by(commands::Column::Priority, Order::Desc)
            .order_by(commands::Column::Seq, Order::Asc)
            .limit(1)
            .to_owned();
        let taken = commands::Entity::update_many()
            .col_expr(
                commands::Column::Status,
                Expr::value(CommandStatus::Sent.as_str()),
            )
            .col_expr(commands::Column::DeliveredAt, Expr::value(now))
            .col_expr(commands::Column::UpdatedAt, Expr::value(now))
            .col_expr(
                commands::Column::DeliveryCount,
                Expr::col(commands::Column::DeliveryCount).add(1),
            )
            .filter(commands::Column::Seq.in_subquery(next))
            .exec_with_returning(&self.db)
            .await?;
        Ok(taken.into_iter().next().map(|m| Delivery {
            uuid: m.uuid,
            request_type: m.request_type,
            payload: m.payload,
            payload_sealed: m.payload_sealed,
        }))
    }

    async fn record_result(
        &self,
        device_id: &str,
        uuid: &str,
        result: ResultRecord,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<CommandRecord>> {
        let not_now = result.status == CommandStatus::NotNow;
        // One conditional statement: only an open command of this device takes the
        // result; a repeated or late report (cancelled, expired, already answered)
        // changes nothing, the first answer stands.
        let mut update = commands::Entity::update_many()
            .col_expr(
                commands::Column::Status,
                Expr::value(result.status.as_str()),
            )
            .col_expr(commands::Column::UpdatedAt, Expr::value(now))
            .col_expr(
                commands::Column::NotNowCount,
                Expr::col(commands::Column::NotNowCount).add(i32::from(not_now)),
            )
            .col_expr(commands::Column::ResultRaw, Expr::value(result.raw))
            .col_expr(
                commands::Column::Result,
                Expr::value(result.parsed.to_string()),
            )
            .filter(commands::Column::Uuid.eq(uuid))
            .filter(commands::Column::DeviceId.eq(device_id))
            .filter(commands::Column::Status.is_in(open_statuses()));
        if !not_now {
            update = update.col_expr(commands::Column::CompletedAt, Expr::value(now));
        }
        if let Some(updated) = update
            .exec_with_returning(&self.db)
            .await?
            .into_iter()
            .next()
        {
            return Ok(Some(command_from_row(updated)));
        }
        Ok(commands::Entity::find()
            .filter(commands::Column::Uuid.eq(uuid))
            .filter(commands::Column::DeviceId.eq(device_id))
            .one(&self.db)
            .await?
            .map(command_from_row))
    }

    async fn cancel(&self, uuid: &str, now: DateTime<Utc>) -> StoreResult<CommandRecord> {
        let res = commands::Entity::update_many()
            .col_expr(
                commands::Column::Status,
                Expr::value(CommandStatus::Cancelled.as_str()),
            )
            .col_expr(commands::Column::CompletedAt, Expr::value(now))
            .col_expr(commands::Column::UpdatedAt, Expr::value(now))
            .filter(commands::Column::Uuid.eq(uuid))
            .filter(commands::Column::Status.is_in([
                CommandStatus::Pending.as_str(),
                CommandStatus::NotNow.as_str(),
            ]))
            .exec(&self.db)
            .await?;
        let row = commands::Entity::find()
            .filter(commands::Column::Uuid.eq(uuid))
            .one(&self.db)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("command {uuid} not found")))?;
        if res.rows_affected == 0 {
            return Err(StoreError::Conflict(format!(
                "command {uuid} is {} and can no longer be cancelled",
                row.status
            )));
        }
        Ok(command_from_row(row))
    }

    async fn command(&self, uuid: &str) -> StoreResult<Option<CommandRecord>> {
        Ok(commands::Entity::find()
            .filter(commands::Column::Uuid.eq(uuid))
            .one(&self.db)
            .await?
            .map(command_from_row))
    }

    async fn device_commands(
        &self,
        device_id: &str,
        offset: u64,
        limit: u64,
    ) -> StoreResult<Page<CommandRecord>> {
        let query = commands::Entity::find().filter(commands::Column::DeviceId.eq(device_id));
        let total = query.clone().count(&self.db).await?;
        let limit = limit.clamp(1, 1000);
        let items = query
            .order_by_desc(commands::Column::Seq)
            .offset(offset)
            .limit(limit)
            .all(&self.db)
            .await?
            .into_iter()
            .map(command_from_row)
            .collect();
        Ok(Page {
            items,
            total,
            offset,
            limit,
        })
    }

    async fn expire(&self, now: DateTime<Utc>) -> StoreResult<u64> {
        let res = commands::Entity::update_many()
            .col_expr(
                commands::Column::Status,
                Expr::value(CommandStatus::Expired.as_str()),
            )
            .col_expr(commands::Column::CompletedAt, Expr::value(now))
            .col_expr(commands::Column::UpdatedAt, Expr::value(now))
            .filter(commands::Column::Status.is_in(open_statuses()))
            .filter(commands::Column::ExpiresAt.lte(now))
            .exec(&self.db)
            .await?;
        Ok(res.rows_affected)
    }

    async fn prune(&self, before: DateTime<Utc>) -> StoreResult<u64> {
        let res = commands::Entity::delete_many()
            .filter(commands::Column::CompletedAt.lt(before))
            .exec(&self.db)
            .await?;
        Ok(res.rows_affected)
    }
}

#[async_trait]
impl EventLog for SqlStore {
    async fn record(&self, event: NewEvent) -> StoreResult<()> {
        events::ActiveModel {
            id: sea_orm::NotSet,
            occurred_at: Set(Utc::now()),
            kind: Set(event.kind.to_owned()),
            severity: Set(event.severity),
            device_id: Set(event.device_id),
            actor: Set(event.actor),
            message: Set(event.message),
            data: Set(event.data.to_string()),
        }
        .insert(&self.db)
        .await?;
        Ok(())
    }

    async fn events(&self, filter: &EventFilter) -> StoreResult<Vec<Event>> {
        let mut query = events::Entity::find();
        if let Some(d) = &filter.device_id {
            query = query.filter(events::Column::DeviceId.eq(d.as_str()));
        }
        if let Some(k) = &filter.kind {
            query = if k.ends_with('.') {
                query.filter(events::Column::Kind.starts_with(k.as_str()))
            } else {
                query.filter(events::Column::Kind.eq(k.as_str()))
            };
        }
        if let Some(after) = filter.after_id {
            query = query.filter(events::Column::Id.gt(after));
        }
        let rows = query
            .order_by_asc(events::Column::Id)
            .limit(filter.limit.unwrap_or(100).clamp(1, 1000))
            .all(&self.db)
            .await?;
        Ok(rows
            .into_iter()
            .map(|m| Event {
                id: m.id,
                occurred_at: m.occurred_at,
                kind: m.kind,
                severity: m.severity,
                device_id: m.device_id,
                actor: m.actor,
                message: m.message,
                data: serde_json::from_str(&m.data).unwrap_or(serde_json::Value::Null),
            })
            .collect())
    }
}

fn token_from_row(m: admin_tokens::Model) -> AdminToken {
    AdminToken {
        id: m.id,
        name: m.name,
        created_at: m.created_at,
        last_used_at: m.last_used_at,
    }
}

#[async_trait]
impl TokenStore for SqlStore {
    async fn create_token(&self, name: &str, token_hash: &str) -> StoreResult<AdminToken> {
        let row = admin_tokens::ActiveModel {
            id: Set(uuid::Uuid::new_v4().to_string()),
            name: Set(name.to_owned()),
            token_hash: Set(token_hash.to_owned()),
            created_at: Set(Utc::now()),
            last_used_at: Set(None),
            revoked_at: Set(None),
        }
        .insert(&self.db)
        .await?;
        Ok(token_from_row(row))
    }

    async fn token_by_hash(&self, token_hash: &str) -> StoreResult<Option<AdminToken>> {
        Ok(admin_tokens::Entity::find()
            .filter(admin_tokens::Column::TokenHash.eq(token_hash))
            .filter(admin_tokens::Column::RevokedAt.is_null())
            .one(&self.db)
            .await?
            .map(token_from_row))
    }

    async fn mark_token_used(&self, id: &str, at: DateTime<Utc>) -> StoreResult<()> {
        let stale = at - chrono::Duration::seconds(TOUCH_INTERVAL_SECS);
        admin_tokens::Entity::update_many()
            .col_expr(admin_tokens::Column::LastUsedAt, Expr::value(at))
            .filter(admin_tokens::Column::Id.eq(id))
            .filter(
                Condition::any()
                    .add(admin_tokens::Column::LastUsedAt.is_null())
                    .add(admin_tokens::Column::LastUsedAt.lt(stale)),
            )
            .exec(&self.db)
            .await?;
        Ok(())
    }
}
