//! [`CommandQueue`] on sea-orm.

use super::device_statements::{put_off_waiting, store_result, take_next};
use super::sqlite_writer::{Row, Then};
use super::*;
use crate::cache::Change;
use crate::domain::CommandStatus;
use crate::storage::entities::commands;
use crate::storage::*;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect, Set, TransactionTrait,
};

pub(super) fn command_from_row(m: commands::Model) -> CommandRecord {
    // A report that carries a secret is stored sealed (services/results.rs): kept
    // apart, for the service to open when an admin asks for this command. A clear
    // report is an XML plist, which never starts with a seal version byte.
    let (result_raw, result_sealed) = match m.result_raw {
        Some(raw) if ::enrollment::seal::is_sealed(&raw) => (None, Some(raw)),
        Some(raw) => (Some(String::from_utf8_lossy(&raw).into_owned()), None),
        None => (None, None),
    };
    CommandRecord {
        status: CommandStatus::parse(&m.status).unwrap_or(CommandStatus::Error),
        result_raw,
        result_sealed,
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

/// Inserts commands in batched statements (part of the caller's transaction) and
/// announces them to the other instances in it; returns the change for the caller
/// to apply to this instance's cache once it has committed.
pub(super) async fn insert_commands<C: ConnectionTrait>(
    txn: &C,
    new: Vec<NewCommand>,
    now: DateTime<Utc>,
) -> StoreResult<Change> {
    let mut devices: Vec<String> = new.iter().map(|c| c.device_id.clone()).collect();
    devices.sort_unstable();
    devices.dedup();
    let change = Change::Queues(devices);
    if !new.is_empty() {
        super::notify::announce(txn, &change).await?;
    }
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
                .exec(txn)
                .await?;
        }
    }
    if !batch.is_empty() {
        commands::Entity::insert_many(batch).exec(txn).await?;
    }
    Ok(change)
}

pub(super) fn open_statuses() -> [&'static str; 3] {
    [
        CommandStatus::Pending.as_str(),
        CommandStatus::Sent.as_str(),
        CommandStatus::NotNow.as_str(),
    ]
}

/// Cancels a device's open commands (re-enrollment, check-out).
pub(super) async fn cancel_open<C: ConnectionTrait>(
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

#[async_trait]
impl CommandQueue for SqlStore {
    async fn enqueue(&self, new: Vec<NewCommand>, events: Vec<NewEvent>) -> StoreResult<()> {
        let txn = self.db.begin().await?;
        let change = insert_commands(&txn, new, Utc::now()).await?;
        for event in events {
            super::events::insert_event(&txn, event).await?;
        }
        txn.commit().await?;
        self.changed(&change);
        Ok(())
    }

    async fn report(
        &self,
        device_id: &str,
        result: Option<(&str, ResultRecord)>,
        follow_up: FollowUpFn,
        new_exchange: bool,
        now: DateTime<Utc>,
    ) -> StoreResult<ReportOutcome> {
        // An Idle carries no result: taking the next command is its one statement,
        // which needs no transaction.
        let Some(result) = result else {
            let take = take_next(self.backend(), device_id, new_exchange, None, now);
            let rows = self.exchange(&self.db, vec![take], None).await?;
            return Ok(ReportOutcome {
                recorded: None,
                next: sent_among(rows),
                put_off_waiting: None,
            });
        };
        // The result, what follows from it and taking the next command are one
        // transaction: on SQLite, one turn of the device path's writer, which makes
        // what follows on its own thread (sqlite_writer.rs); elsewhere, a transaction
        // of the pool's.
        if self.device_writer.is_some() {
            return self
                .report_on(&self.db, device_id, result, follow_up, new_exchange, now)
                .await;
        }
        let txn = self.db.begin().await?;
        let outcome = self
            .report_on(&txn, device_id, result, follow_up, new_exchange, now)
            .await?;
        txn.commit().await?;
        Ok(outcome)
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
        // SQL offsets are signed 64-bit: a larger one would not bind.
        let offset = offset.min(i64::MAX as u64);
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

fn delivery(m: commands::Model) -> Delivery {
    Delivery {
        uuid: m.uuid,
        request_type: m.request_type,
        payload: m.payload,
        payload_sealed: m.payload_sealed,
    }
}

fn command_row(row: &sea_orm::QueryResult) -> StoreResult<commands::Model> {
    use sea_orm::FromQueryResult;
    Ok(commands::Model::from_query_result(row, "")?)
}

/// The command among these rows that was just marked sent.
fn sent_among(rows: Vec<commands::Model>) -> Option<Delivery> {
    rows.into_iter()
        .find(|m| m.status == CommandStatus::Sent.as_str())
        .map(delivery)
}

impl SqlStore {
    /// Stores a result and takes the next command, then writes what follows from a
    /// result this report completed (its event, the device's facts), in one exchange.
    async fn report_on<C: ConnectionTrait>(
        &self,
        db: &C,
        device_id: &str,
        (uuid, result): (&str, ResultRecord),
        follow_up: FollowUpFn,
        new_exchange: bool,
        now: DateTime<Utc>,
    ) -> StoreResult<ReportOutcome> {
        let backend = db.get_database_backend();
        let store = store_result(
            backend,
            device_id,
            uuid,
            result.status,
            result.raw,
            &result.parsed,
            now,
        );
        let take = take_next(backend, device_id, new_exchange, Some(uuid), now);
        let then: FollowWith = {
            let (device_id, uuid) = (device_id.to_owned(), uuid.to_owned());
            Box::new(move |rows| {
                let Some(stored) = rows.iter().find(|m| m.uuid == uuid) else {
                    return Ok(Vec::new());
                };
                let follow = follow_up(&command_from_row(stored.clone()));
                let mut statements = Vec::new();
                if let Some(event) = follow.event {
                    statements.push(backend.build(&super::events::event_insert(event)));
                }
                if let Some((facts, family)) = &follow.facts {
                    statements.push(backend.build(&super::devices::facts_update(
                        &device_id,
                        facts,
                        family.as_deref(),
                        now,
                    )));
                }
                Ok(statements)
            })
        };
        // Taking the next command never touches the reported one: a row of its uuid is
        // the stored result, the one marked sent among the others is the next command.
        // What follows writes no rows back.
        // (On PostgreSQL one statement with both as data-modifying CTEs would save a
        // round trip; measured, it did not lower the CPU per cycle: docs/benchmarks.md.)
        let mut statements = vec![store, take];
        // On SQLite (one instance: empty queues are remembered), whether commands put
        // off with NotNow still wait, so that an exchange ending with nothing left is
        // known empty and the device's next Idle stays off the database. With a shared
        // PostgreSQL empty queues are never remembered: the read would be a round trip
        // for nothing.
        let reads_put_off = self.device_writer.is_some();
        if reads_put_off {
            statements.push(put_off_waiting(backend, device_id, uuid));
        }
        let rows = self.exchange(db, statements, Some(then)).await?;
        let (stored, others): (Vec<_>, Vec<_>) = rows.into_iter().partition(|m| m.uuid == uuid);
        let put_off_waiting = reads_put_off.then(|| {
            others
                .iter()
                .any(|m| m.status == CommandStatus::NotNow.as_str())
        });
        let next = sent_among(others);
        let recorded = match stored.into_iter().next() {
            Some(m) => Some(command_from_row(m)),
            None => commands::Entity::find()
                .filter(commands::Column::Uuid.eq(uuid))
                .filter(commands::Column::DeviceId.eq(device_id))
                .one(db)
                .await?
                .map(command_from_row),
        };
        Ok(ReportOutcome {
            recorded,
            next,
            put_off_waiting,
        })
    }

    /// Runs the device path's statements in order, then those `then` makes of their
    /// rows, in one exchange with the database where the engine allows it; returns the
    /// commands they return, in order.
    ///
    /// On SQLite they go to the device path's own connection, in one turn of its
    /// thread and one transaction (sqlite_writer.rs). PostgreSQL's extended protocol
    /// takes one statement per round trip, in `db` (the report's transaction).
    async fn exchange<C: ConnectionTrait>(
        &self,
        db: &C,
        statements: Vec<sea_orm::Statement>,
        then: Option<FollowWith>,
    ) -> StoreResult<Vec<commands::Model>> {
        if let Some(writer) = &self.device_writer {
            let then = then.map(|then| -> Then { Box::new(move |rows| then(&written(rows)?)) });
            return Ok(written(&writer.exchange(statements, then).await?)?);
        }
        let mut rows = Vec::new();
        for statement in statements {
            for row in db.query_all(statement).await? {
                rows.push(command_row(&row)?);
            }
        }
        if let Some(then) = then {
            for statement in then(&rows)? {
                for row in db.query_all(statement).await? {
                    rows.push(command_row(&row)?);
                }
            }
        }
        Ok(rows)
    }
}

/// Makes the second half of a device exchange from the commands its first half
/// returned; an error rolls back both halves.
type FollowWith =
    Box<dyn FnOnce(&[commands::Model]) -> Result<Vec<sea_orm::Statement>, sea_orm::DbErr> + Send>;

/// The commands among the rows of the device path's SQLite connection, read as sea-orm
/// reads them through the pool (the values as sqlx decodes them: sqlite_values.rs).
pub(super) fn written(rows: &[Row]) -> Result<Vec<commands::Model>, sea_orm::DbErr> {
    use super::sqlite_values::FromSql;
    use commands::Column as C;
    use sea_orm::IdenStatic;
    fn get<T: FromSql>(row: &Row, column: C) -> Result<T, sea_orm::DbErr> {
        row.get(column.as_str())
    }
    rows.iter()
        .map(|row| {
            Ok(commands::Model {
                seq: get(row, C::Seq)?,
                uuid: get(row, C::Uuid)?,
                device_id: get(row, C::DeviceId)?,
                request_type: get(row, C::RequestType)?,
                payload: get(row, C::Payload)?,
                payload_sealed: get(row, C::PayloadSealed)?,
                priority: get(row, C::Priority)?,
                status: get(row, C::Status)?,
                created_by: get(row, C::CreatedBy)?,
                created_at: get(row, C::CreatedAt)?,
                updated_at: get(row, C::UpdatedAt)?,
                expires_at: get(row, C::ExpiresAt)?,
                delivered_at: get(row, C::DeliveredAt)?,
                completed_at: get(row, C::CompletedAt)?,
                delivery_count: get(row, C::DeliveryCount)?,
                not_now_count: get(row, C::NotNowCount)?,
                result_raw: get(row, C::ResultRaw)?,
                result: get(row, C::Result)?,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use sea_orm::Statement;

    /// What the device path's SQLite connection writes, the pool reads, and the other
    /// way round: rows read through both are the same commands.
    #[tokio::test]
    async fn the_device_path_reads_commands_as_the_pool_does() {
        let store = super::test_store::TempSqlite::open("queue").await;
        let now = Utc::now();
        super::test_store::test_device(&store, "d1", now).await;
        let command = |n: u8, expires_at| NewCommand {
            uuid: format!("c{n}"),
            device_id: "d1".into(),
            request_type: "DeviceInformation".into(),
            payload: vec![0, n, 255],
            payload_sealed: n == 2,
            priority: n.into(),
            expires_at,
            created_by: "admin ż".into(),
        };
        let later = now + chrono::Duration::hours(1);
        store
            .enqueue(
                vec![command(1, None), command(2, Some(later)), command(3, None)],
                Vec::new(),
            )
            .await
            .unwrap();
        // Queued through the pool; taken, answered and the next one taken by the writer.
        let nothing_follows = || -> FollowUpFn { Box::new(|_| FollowUp::default()) };
        let taken = store
            .report("d1", None, nothing_follows(), true, now)
            .await
            .unwrap();
        assert_eq!(taken.next.map(|d| d.uuid).as_deref(), Some("c3"));
        let result = ResultRecord {
            status: CommandStatus::Acknowledged,
            raw: b"<plist/>".to_vec(),
            parsed: serde_json::json!({"Status": "Acknowledged"}),
        };
        let answered = store
            .report("d1", Some(("c3", result)), nothing_follows(), false, now)
            .await
            .unwrap();
        assert_eq!(answered.next.map(|d| d.uuid).as_deref(), Some("c2"));

        let all = || Statement::from_string(DbBackend::Sqlite, "SELECT * FROM commands");
        let writer = store.device_writer.as_ref().expect("a file database");
        let mut by_writer = written(&writer.exchange(vec![all()], None).await.unwrap()).unwrap();
        by_writer.sort_by_key(|m| m.seq);
        let by_pool = commands::Entity::find()
            .order_by_asc(commands::Column::Seq)
            .all(&store.db)
            .await
            .unwrap();
        assert_eq!(by_writer, by_pool);
        let answered = &by_pool[2];
        assert!(answered.result_raw.is_some() && answered.completed_at.is_some());
        assert!(by_pool[1].delivered_at.is_some() && by_pool[1].expires_at.is_some());
    }

    /// A result's report tells whether commands put off with NotNow wait for the
    /// next Idle: the one it answers with NotNow is not among them, another device's
    /// are not, and once they are answered none waits.
    #[tokio::test]
    async fn a_result_tells_whether_put_off_commands_wait() {
        let store = super::test_store::TempSqlite::open("put-off").await;
        let now = Utc::now();
        for device in ["d1", "d2"] {
            super::test_store::test_device(&store, device, now).await;
        }
        let command = |uuid: &str, device: &str| NewCommand {
            uuid: uuid.into(),
            device_id: device.into(),
            request_type: "ProfileList".into(),
            payload: Vec::new(),
            payload_sealed: false,
            priority: 0,
            expires_at: None,
            created_by: "admin".into(),
        };
        let queued = vec![command("a", "d1"), command("b", "d1"), command("x", "d2")];
        store.enqueue(queued, Vec::new()).await.unwrap();
        let nothing_follows = || -> FollowUpFn { Box::new(|_| FollowUp::default()) };
        let result = |status| ResultRecord {
            status,
            raw: b"<plist/>".to_vec(),
            parsed: serde_json::json!({}),
        };
        // d1's reports: an Idle (no result) starts an exchange, a result goes on in it.
        let report = |answer: Option<(&'static str, CommandStatus)>| {
            let store = &store;
            async move {
                let new_exchange = answer.is_none();
                let answer = answer.map(|(uuid, status)| (uuid, result(status)));
                store
                    .report("d1", answer, nothing_follows(), new_exchange, now)
                    .await
                    .unwrap()
            }
        };
        // d2's NotNow'd command is d2's alone.
        store
            .report("d2", None, nothing_follows(), true, now)
            .await
            .unwrap();
        let x = store
            .report(
                "d2",
                Some(("x", result(CommandStatus::NotNow))),
                nothing_follows(),
                false,
                now,
            )
            .await
            .unwrap();
        assert_eq!(
            x.put_off_waiting,
            Some(false),
            "its own NotNow is not counted"
        );

        let idle = report(None).await;
        assert_eq!(idle.next.map(|d| d.uuid).as_deref(), Some("a"));
        assert_eq!(
            idle.put_off_waiting, None,
            "an Idle reads no more than its command"
        );
        let a = report(Some(("a", CommandStatus::NotNow))).await;
        assert_eq!(a.next.map(|d| d.uuid).as_deref(), Some("b"));
        assert_eq!(
            a.put_off_waiting,
            Some(false),
            "the answered NotNow is not counted"
        );
        let b = report(Some(("b", CommandStatus::Acknowledged))).await;
        assert!(b.next.is_none());
        assert_eq!(b.put_off_waiting, Some(true), "a waits for the next Idle");

        let idle = report(None).await;
        assert_eq!(idle.next.map(|d| d.uuid).as_deref(), Some("a"));
        let a = report(Some(("a", CommandStatus::Acknowledged))).await;
        assert!(a.next.is_none());
        assert_eq!(a.put_off_waiting, Some(false), "nothing left");
    }
}
