//! [`IncidentStore`] on sea-orm: the register, its devices, and its history as one
//! hash chain whose head row is locked by every append.

use super::SqlStore;
use crate::domain::incident::{
    Approval, Evidence, HistoryEntry, Incident, IncidentFilter, LostReportLink,
};
use crate::storage::entities::{
    incident_approvals, incident_devices, incident_event_links, incident_evidence,
    incident_history, incident_register_head, incident_rule_cursor, incidents, lost_report_links,
};
use crate::storage::*;
use openssl::sha::sha256;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseTransaction, EntityTrait,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Set,
};

/// Timestamps are hashed as stored: truncated to microseconds, which both engines keep.
fn micros(at: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(at.timestamp_micros()).unwrap_or(at)
}

/// A register that cannot be read as written: a server error, not the caller's.
fn corrupt(message: String) -> StoreError {
    StoreError::Db(sea_orm::DbErr::Custom(message))
}

fn hex_sha256(bytes: &[u8]) -> String {
    hex::encode(sha256(bytes))
}

/// The fields one history link hashes.
pub struct Link<'a> {
    pub prev_hash: &'a str,
    pub seq: i64,
    pub incident_id: &'a str,
    pub at: DateTime<Utc>,
    pub actor: &'a str,
    pub change: &'a str,
    pub details: &'a str,
    pub snapshot_hash: &'a str,
}

impl Link<'_> {
    /// The previous link and every field of this one, each length-prefixed so that
    /// no two different entries hash alike.
    pub fn hash(&self) -> String {
        let at = self.at.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string();
        let seq = self.seq.to_string();
        let mut bytes = Vec::new();
        for part in [
            self.prev_hash,
            &seq,
            self.incident_id,
            &at,
            self.actor,
            self.change,
            self.details,
            self.snapshot_hash,
        ] {
            bytes.extend_from_slice(&(part.len() as u64).to_be_bytes());
            bytes.extend_from_slice(part.as_bytes());
        }
        hex_sha256(&bytes)
    }
}

fn body_of(incident: &Incident) -> StoreResult<String> {
    serde_json::to_string(incident).map_err(|e| corrupt(e.to_string()))
}

fn from_row(row: incidents::Model) -> StoreResult<Incident> {
    serde_json::from_str(&row.body)
        .map_err(|e| corrupt(format!("incident {}: unreadable body: {e}", row.id)))
}

/// Locks the chain head for this transaction (PostgreSQL: FOR UPDATE; SQLite holds
/// the database write lock already, see `begin_write`).
async fn lock_head(txn: &DatabaseTransaction) -> StoreResult<incident_register_head::Model> {
    let mut query = incident_register_head::Entity::find_by_id(1);
    if txn.get_database_backend() == sea_orm::DbBackend::Postgres {
        query = query.lock_exclusive();
    }
    query
        .one(txn)
        .await?
        .ok_or_else(|| corrupt("the incident register has no chain head".into()))
}

/// One change to write as a history link.
struct Change<'a> {
    incident: &'a Incident,
    body: &'a str,
    actor: &'a str,
    change: &'a str,
    details: &'a serde_json::Value,
    at: DateTime<Utc>,
}

/// Appends one history link for the incident as it now stands and moves the head
/// (with the next incident number).
async fn append(
    txn: &DatabaseTransaction,
    head: &incident_register_head::Model,
    c: Change<'_>,
    next_number: i64,
) -> StoreResult<HistoryEntry> {
    let seq = head.last_seq + 1;
    let details_text = c.details.to_string();
    let snapshot_hash = hex_sha256(c.body.as_bytes());
    let hash = Link {
        prev_hash: &head.last_hash,
        seq,
        incident_id: &c.incident.id,
        at: c.at,
        actor: c.actor,
        change: c.change,
        details: &details_text,
        snapshot_hash: &snapshot_hash,
    }
    .hash();
    incident_history::ActiveModel {
        seq: Set(seq),
        incident_id: Set(c.incident.id.clone()),
        at: Set(c.at),
        actor: Set(c.actor.to_owned()),
        change: Set(c.change.to_owned()),
        details: Set(details_text),
        snapshot_hash: Set(snapshot_hash),
        prev_hash: Set(head.last_hash.clone()),
        hash: Set(hash.clone()),
    }
    .insert(txn)
    .await?;
    incident_register_head::ActiveModel {
        id: Set(1),
        last_seq: Set(seq),
        last_hash: Set(hash.clone()),
        next_number: Set(next_number),
    }
    .update(txn)
    .await?;
    Ok(HistoryEntry {
        seq,
        incident_id: c.incident.id.clone(),
        at: c.at,
        actor: c.actor.to_owned(),
        change: c.change.to_owned(),
        details: c.details.clone(),
        prev_hash: head.last_hash.clone(),
        hash,
    })
}

fn row_of(incident: &Incident, body: String) -> incidents::ActiveModel {
    incidents::ActiveModel {
        id: Set(incident.id.clone()),
        number: Set(incident.number),
        incident_type: Set(incident.incident_type.clone()),
        level: Set(incident.level),
        classification: Set(incident.classification.clone()),
        status: Set(incident.status.clone()),
        detected_at: Set(incident.detected_at),
        created_at: Set(incident.created_at),
        updated_at: Set(incident.updated_at),
        body: Set(body),
    }
}

async fn set_devices(txn: &DatabaseTransaction, incident: &Incident) -> StoreResult<()> {
    incident_devices::Entity::delete_many()
        .filter(incident_devices::Column::IncidentId.eq(incident.id.as_str()))
        .exec(txn)
        .await?;
    let mut seen = std::collections::HashSet::new();
    let rows: Vec<_> = incident
        .devices
        .iter()
        .filter(|d| seen.insert(d.as_str()))
        .map(|d| incident_devices::ActiveModel {
            incident_id: Set(incident.id.clone()),
            device_id: Set(d.clone()),
        })
        .collect();
    if !rows.is_empty() {
        incident_devices::Entity::insert_many(rows)
            .exec_without_returning(txn)
            .await?;
    }
    Ok(())
}

#[async_trait]
impl IncidentStore for SqlStore {
    async fn file_incident(
        &self,
        mut incident: Incident,
        actor: &str,
        details: serde_json::Value,
    ) -> StoreResult<Incident> {
        let txn = self.begin_write().await?;
        let head = lock_head(&txn).await?;
        let now = micros(incident.created_at);
        incident.number = head.next_number;
        incident.created_at = now;
        incident.updated_at = now;
        incident.detected_at = micros(incident.detected_at);
        let body = body_of(&incident)?;
        row_of(&incident, body.clone()).insert(&txn).await?;
        set_devices(&txn, &incident).await?;
        append(
            &txn,
            &head,
            Change {
                incident: &incident,
                body: &body,
                actor,
                change: "filed",
                details: &details,
                at: now,
            },
            head.next_number + 1,
        )
        .await?;
        txn.commit().await?;
        Ok(incident)
    }

    async fn change_incident(
        &self,
        id: &str,
        actor: &str,
        change: &str,
        apply: IncidentChange,
    ) -> StoreResult<Result<(Incident, serde_json::Value), String>> {
        let txn = self.begin_write().await?;
        let head = lock_head(&txn).await?;
        let Some(row) = incidents::Entity::find_by_id(id).one(&txn).await? else {
            return Err(StoreError::NotFound(format!("incident {id} not found")));
        };
        let mut incident = from_row(row)?;
        let details = match apply(&mut incident) {
            Ok(details) => details,
            // Refused by the rule: nothing written.
            Err(why) => return Ok(Err(why)),
        };
        let now = micros(Utc::now());
        incident.updated_at = now;
        let body = body_of(&incident)?;
        row_of(&incident, body.clone()).update(&txn).await?;
        set_devices(&txn, &incident).await?;
        append(
            &txn,
            &head,
            Change {
                incident: &incident,
                body: &body,
                actor,
                change,
                details: &details,
                at: now,
            },
            head.next_number,
        )
        .await?;
        txn.commit().await?;
        Ok(Ok((incident, details)))
    }

    async fn file_or_attach_from_event(
        &self,
        event_id: i64,
        incident: Incident,
        details: serde_json::Value,
        attach_only: bool,
    ) -> StoreResult<EventOutcome> {
        let txn = self.begin_write().await?;
        let head = lock_head(&txn).await?;
        if incident_event_links::Entity::find_by_id(event_id)
            .one(&txn)
            .await?
            .is_some()
        {
            return Ok(EventOutcome::AlreadyHandled);
        }
        // An open incident of this type on this device takes the event (of any type,
        // for an event that only completes the record of one, such as a wipe done).
        let mut open = None;
        if let Some(device) = incident.devices.first() {
            let ids: Vec<String> = incident_devices::Entity::find()
                .select_only()
                .column(incident_devices::Column::IncidentId)
                .filter(incident_devices::Column::DeviceId.eq(device.as_str()))
                .into_tuple()
                .all(&txn)
                .await?;
            if !ids.is_empty() {
                let mut query = incidents::Entity::find().filter(incidents::Column::Id.is_in(ids));
                if !attach_only {
                    query = query.filter(
                        incidents::Column::IncidentType.eq(incident.incident_type.as_str()),
                    );
                }
                open = query
                    .filter(incidents::Column::Status.ne("completed"))
                    .filter(incidents::Column::Classification.ne("rejected"))
                    .order_by_desc(incidents::Column::Number)
                    .one(&txn)
                    .await?;
            }
        }
        if open.is_none() && attach_only {
            return Ok(EventOutcome::NoOpenIncident);
        }
        let now = micros(Utc::now());
        let (outcome, incident_id) = match open {
            Some(row) => {
                let mut existing = from_row(row)?;
                existing.updated_at = now;
                let body = body_of(&existing)?;
                row_of(&existing, body.clone()).update(&txn).await?;
                append(
                    &txn,
                    &head,
                    Change {
                        incident: &existing,
                        body: &body,
                        actor: "rules",
                        change: "event",
                        details: &details,
                        at: now,
                    },
                    head.next_number,
                )
                .await?;
                let id = existing.id.clone();
                (EventOutcome::Attached(existing), id)
            }
            None => {
                let mut incident = incident;
                incident.number = head.next_number;
                incident.created_at = now;
                incident.updated_at = now;
                incident.detected_at = micros(incident.detected_at);
                let body = body_of(&incident)?;
                row_of(&incident, body.clone()).insert(&txn).await?;
                set_devices(&txn, &incident).await?;
                append(
                    &txn,
                    &head,
                    Change {
                        incident: &incident,
                        body: &body,
                        actor: "rules",
                        change: "filed",
                        details: &details,
                        at: now,
                    },
                    head.next_number + 1,
                )
                .await?;
                let id = incident.id.clone();
                (EventOutcome::Filed(incident), id)
            }
        };
        incident_event_links::ActiveModel {
            event_id: Set(event_id),
            incident_id: Set(incident_id),
        }
        .insert(&txn)
        .await?;
        txn.commit().await?;
        Ok(outcome)
    }

    async fn add_evidence(
        &self,
        incident_id: &str,
        kind: &str,
        source: &str,
        content: String,
        actor: &str,
    ) -> StoreResult<Result<Evidence, String>> {
        let txn = self.begin_write().await?;
        let head = lock_head(&txn).await?;
        let Some(row) = incidents::Entity::find_by_id(incident_id).one(&txn).await? else {
            return Err(StoreError::NotFound(format!(
                "incident {incident_id} not found"
            )));
        };
        let incident = from_row(row.clone())?;
        if incident.closed_at.is_some() {
            return Ok(Err(format!("incident No. {} is closed", incident.number)));
        }
        let now = micros(Utc::now());
        let sha = hex_sha256(content.as_bytes());
        let id = uuid::Uuid::new_v4().to_string();
        incident_evidence::ActiveModel {
            id: Set(id.clone()),
            incident_id: Set(incident_id.to_owned()),
            kind: Set(kind.to_owned()),
            source: Set(source.to_owned()),
            content: Set(content.clone()),
            sha256: Set(sha.clone()),
            collected_at: Set(now),
            collected_by: Set(actor.to_owned()),
        }
        .insert(&txn)
        .await?;
        let details = serde_json::json!({
            "evidence_id": id, "kind": kind, "source": source, "sha256": sha,
        });
        append(
            &txn,
            &head,
            Change {
                incident: &incident,
                body: &row.body,
                actor,
                change: "evidence",
                details: &details,
                at: now,
            },
            head.next_number,
        )
        .await?;
        txn.commit().await?;
        Ok(Ok(Evidence {
            id,
            incident_id: incident_id.to_owned(),
            kind: kind.to_owned(),
            source: source.to_owned(),
            content: serde_json::from_str(&content).unwrap_or(serde_json::Value::String(content)),
            sha256: sha,
            collected_at: now,
            collected_by: actor.to_owned(),
        }))
    }

    async fn evidence(&self, incident_id: &str) -> StoreResult<Vec<Evidence>> {
        let rows = incident_evidence::Entity::find()
            .filter(incident_evidence::Column::IncidentId.eq(incident_id))
            .order_by_asc(incident_evidence::Column::CollectedAt)
            .all(self.connection())
            .await?;
        Ok(rows
            .into_iter()
            .map(|r| Evidence {
                content: serde_json::from_str(&r.content)
                    .unwrap_or(serde_json::Value::String(r.content)),
                id: r.id,
                incident_id: r.incident_id,
                kind: r.kind,
                source: r.source,
                sha256: r.sha256,
                collected_at: r.collected_at,
                collected_by: r.collected_by,
            })
            .collect())
    }

    async fn request_approval(
        &self,
        incident_id: &str,
        device_id: &str,
        action: &str,
        requested_by: &str,
    ) -> StoreResult<Approval> {
        let row = incident_approvals::ActiveModel {
            id: Set(uuid::Uuid::new_v4().to_string()),
            incident_id: Set(incident_id.to_owned()),
            device_id: Set(device_id.to_owned()),
            action: Set(action.to_owned()),
            requested_by: Set(requested_by.to_owned()),
            requested_at: Set(micros(Utc::now())),
            status: Set("pending".into()),
            decided_by: Set(None),
            decided_at: Set(None),
        }
        .insert(self.connection())
        .await?;
        Ok(approval_of(row))
    }

    async fn decide_approval(
        &self,
        incident_id: &str,
        approval_id: &str,
        approver: &str,
        approve: bool,
    ) -> StoreResult<Result<Approval, String>> {
        let Some(row) = incident_approvals::Entity::find_by_id(approval_id)
            .filter(incident_approvals::Column::IncidentId.eq(incident_id))
            .one(self.connection())
            .await?
        else {
            return Err(StoreError::NotFound(format!(
                "approval {approval_id} not found on this incident"
            )));
        };
        if row.requested_by == approver {
            return Ok(Err(format!(
                "{approver} started this action and cannot approve it: a second administrator must"
            )));
        }
        let status = if approve { "approved" } else { "denied" };
        // Conditional on still pending: of two admins deciding at once, one decides.
        let decided = incident_approvals::Entity::update_many()
            .col_expr(
                incident_approvals::Column::Status,
                sea_orm::sea_query::Expr::value(status),
            )
            .col_expr(
                incident_approvals::Column::DecidedBy,
                sea_orm::sea_query::Expr::value(approver),
            )
            .col_expr(
                incident_approvals::Column::DecidedAt,
                sea_orm::sea_query::Expr::value(micros(Utc::now())),
            )
            .filter(incident_approvals::Column::Id.eq(approval_id))
            .filter(incident_approvals::Column::Status.eq("pending"))
            .exec(self.connection())
            .await?;
        if decided.rows_affected != 1 {
            return Ok(Err(format!("approval {approval_id} was decided already")));
        }
        let row = incident_approvals::Entity::find_by_id(approval_id)
            .one(self.connection())
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("approval {approval_id} not found")))?;
        Ok(Ok(approval_of(row)))
    }

    async fn approvals(&self, incident_id: &str) -> StoreResult<Vec<Approval>> {
        Ok(incident_approvals::Entity::find()
            .filter(incident_approvals::Column::IncidentId.eq(incident_id))
            .order_by_asc(incident_approvals::Column::RequestedAt)
            .all(self.connection())
            .await?
            .into_iter()
            .map(approval_of)
            .collect())
    }

    async fn create_lost_link(
        &self,
        user: &str,
        devices: &[String],
        token_hash: &str,
        created_by: &str,
    ) -> StoreResult<LostReportLink> {
        let row = lost_report_links::ActiveModel {
            id: Set(uuid::Uuid::new_v4().to_string()),
            user_name: Set(user.to_owned()),
            devices: Set(serde_json::to_string(devices).unwrap_or_else(|_| "[]".into())),
            token_hash: Set(token_hash.to_owned()),
            created_by: Set(created_by.to_owned()),
            created_at: Set(micros(Utc::now())),
            revoked_at: Set(None),
            last_used_at: Set(None),
        }
        .insert(self.connection())
        .await?;
        Ok(lost_link_of(row))
    }

    async fn lost_link_by_hash(&self, token_hash: &str) -> StoreResult<Option<LostReportLink>> {
        Ok(lost_report_links::Entity::find()
            .filter(lost_report_links::Column::TokenHash.eq(token_hash))
            .filter(lost_report_links::Column::RevokedAt.is_null())
            .one(self.connection())
            .await?
            .map(lost_link_of))
    }

    async fn lost_links(&self) -> StoreResult<Vec<LostReportLink>> {
        Ok(lost_report_links::Entity::find()
            .order_by_asc(lost_report_links::Column::CreatedAt)
            .all(self.connection())
            .await?
            .into_iter()
            .map(lost_link_of)
            .collect())
    }

    async fn revoke_lost_link(&self, id: &str) -> StoreResult<bool> {
        let done = lost_report_links::Entity::update_many()
            .col_expr(
                lost_report_links::Column::RevokedAt,
                sea_orm::sea_query::Expr::value(micros(Utc::now())),
            )
            .filter(lost_report_links::Column::Id.eq(id))
            .filter(lost_report_links::Column::RevokedAt.is_null())
            .exec(self.connection())
            .await?;
        Ok(done.rows_affected == 1)
    }

    async fn lost_link_used(&self, id: &str) -> StoreResult<()> {
        lost_report_links::Entity::update_many()
            .col_expr(
                lost_report_links::Column::LastUsedAt,
                sea_orm::sea_query::Expr::value(micros(Utc::now())),
            )
            .filter(lost_report_links::Column::Id.eq(id))
            .exec(self.connection())
            .await?;
        Ok(())
    }

    async fn rule_cursor(&self) -> StoreResult<i64> {
        Ok(incident_rule_cursor::Entity::find_by_id(1)
            .one(self.connection())
            .await?
            .map_or(0, |c| c.last_event_id))
    }

    async fn advance_rule_cursor(&self, to: i64) -> StoreResult<()> {
        // Only forward: an instance that read an older position never moves it back.
        incident_rule_cursor::Entity::update_many()
            .col_expr(
                incident_rule_cursor::Column::LastEventId,
                sea_orm::sea_query::Expr::value(to),
            )
            .filter(incident_rule_cursor::Column::Id.eq(1))
            .filter(incident_rule_cursor::Column::LastEventId.lt(to))
            .exec(self.connection())
            .await?;
        Ok(())
    }

    async fn incident(&self, id_or_number: &str) -> StoreResult<Option<Incident>> {
        let query = match id_or_number.parse::<i64>() {
            Ok(number) => incidents::Entity::find().filter(incidents::Column::Number.eq(number)),
            Err(_) => incidents::Entity::find().filter(incidents::Column::Id.eq(id_or_number)),
        };
        query
            .one(self.connection())
            .await?
            .map(from_row)
            .transpose()
    }

    async fn incidents(&self, filter: &IncidentFilter) -> StoreResult<Page<Incident>> {
        let mut query = incidents::Entity::find();
        if let Some(level) = filter.level {
            query = query.filter(incidents::Column::Level.eq(level));
        }
        if let Some(level) = filter.min_level {
            query = query.filter(incidents::Column::Level.gte(level));
        }
        if let Some(status) = &filter.status {
            query = query.filter(incidents::Column::Status.eq(status.as_str()));
        }
        if let Some(c) = &filter.classification {
            query = query.filter(incidents::Column::Classification.eq(c.as_str()));
        }
        if let Some(from) = filter.from {
            query = query.filter(incidents::Column::DetectedAt.gte(from));
        }
        if let Some(to) = filter.to {
            query = query.filter(incidents::Column::DetectedAt.lt(to));
        }
        if let Some(device) = &filter.device {
            let ids: Vec<String> = incident_devices::Entity::find()
                .select_only()
                .column(incident_devices::Column::IncidentId)
                .filter(incident_devices::Column::DeviceId.eq(device.as_str()))
                .into_tuple()
                .all(self.connection())
                .await?;
            query = query.filter(incidents::Column::Id.is_in(ids));
        }
        let total = query.clone().count(self.connection()).await?;
        let limit = filter.limit.unwrap_or(100).clamp(1, 1000);
        let offset = filter.offset.unwrap_or(0);
        let rows = query
            .order_by_asc(incidents::Column::Number)
            .offset(offset)
            .limit(limit)
            .all(self.connection())
            .await?;
        Ok(Page {
            items: rows.into_iter().map(from_row).collect::<StoreResult<_>>()?,
            total,
            offset,
            limit,
        })
    }

    async fn incident_history(&self, id: &str) -> StoreResult<Vec<HistoryEntry>> {
        let rows = incident_history::Entity::find()
            .filter(incident_history::Column::IncidentId.eq(id))
            .order_by_asc(incident_history::Column::Seq)
            .all(self.connection())
            .await?;
        Ok(rows.into_iter().map(entry_of).collect())
    }

    async fn verify_register(&self) -> StoreResult<RegisterVerification> {
        let mut report = RegisterVerification::default();
        let mut prev = "0".repeat(64);
        let mut expected_seq = 1;
        let mut latest: std::collections::HashMap<String, String> = Default::default();
        let mut evidence_hashes: std::collections::HashMap<String, String> = Default::default();
        // In pages, oldest first: the walk's memory does not grow with history.
        let mut after = 0i64;
        loop {
            let page = incident_history::Entity::find()
                .filter(incident_history::Column::Seq.gt(after))
                .order_by_asc(incident_history::Column::Seq)
                .limit(1000)
                .all(self.connection())
                .await?;
            if page.is_empty() {
                break;
            }
            for row in page {
                after = row.seq;
                report.links += 1;
                let computed = Link {
                    prev_hash: &row.prev_hash,
                    seq: row.seq,
                    incident_id: &row.incident_id,
                    at: row.at,
                    actor: &row.actor,
                    change: &row.change,
                    details: &row.details,
                    snapshot_hash: &row.snapshot_hash,
                }
                .hash();
                if row.seq != expected_seq {
                    report
                        .problems
                        .push(format!("history entry {} is missing", expected_seq));
                }
                if row.prev_hash != prev {
                    report.problems.push(format!(
                        "history entry {} does not follow entry {}",
                        row.seq,
                        row.seq - 1
                    ));
                }
                if computed != row.hash {
                    report
                        .problems
                        .push(format!("history entry {} was altered", row.seq));
                }
                if row.change == "evidence" {
                    if let Ok(d) = serde_json::from_str::<serde_json::Value>(&row.details) {
                        if let (Some(id), Some(sha)) =
                            (d["evidence_id"].as_str(), d["sha256"].as_str())
                        {
                            evidence_hashes.insert(id.to_owned(), sha.to_owned());
                        }
                    }
                }
                prev = row.hash.clone();
                expected_seq = row.seq + 1;
                latest.insert(row.incident_id.clone(), row.snapshot_hash);
            }
        }
        let head = incident_register_head::Entity::find_by_id(1)
            .one(self.connection())
            .await?;
        match head {
            Some(h) if h.last_hash == prev && h.last_seq == expected_seq - 1 => {}
            _ => report.problems.push(
                "the register's head does not match its last history entry (entries removed?)"
                    .into(),
            ),
        }
        let rows = incidents::Entity::find()
            .order_by_asc(incidents::Column::Number)
            .all(self.connection())
            .await?;
        for row in rows {
            report.incidents += 1;
            let ok_body = latest.remove(&row.id) == Some(hex_sha256(row.body.as_bytes()));
            let columns_match = from_row(row.clone())
                .map(|i| {
                    i.number == row.number
                        && i.incident_type == row.incident_type
                        && i.level == row.level
                        && i.classification == row.classification
                        && i.status == row.status
                })
                .unwrap_or(false);
            if !(ok_body && columns_match) {
                report.problems.push(format!(
                    "incident No. {} differs from its last recorded state (altered outside the server)",
                    row.number
                ));
            }
        }
        for (id, _) in latest {
            report
                .problems
                .push(format!("incident {id} has history but was removed"));
        }
        // Evidence: its content must hash to what the chain recorded when it was taken.
        let mut after_id = String::new();
        loop {
            let page = incident_evidence::Entity::find()
                .filter(incident_evidence::Column::Id.gt(after_id.as_str()))
                .order_by_asc(incident_evidence::Column::Id)
                .limit(500)
                .all(self.connection())
                .await?;
            if page.is_empty() {
                break;
            }
            for row in page {
                after_id = row.id.clone();
                report.evidence += 1;
                let recorded = evidence_hashes.remove(&row.id);
                if recorded.as_deref() != Some(hex_sha256(row.content.as_bytes()).as_str())
                    || recorded.as_deref() != Some(row.sha256.as_str())
                {
                    report.problems.push(format!(
                        "evidence {} ({}) differs from what was collected",
                        row.id, row.kind
                    ));
                }
            }
        }
        for (id, _) in evidence_hashes {
            report.problems.push(format!("evidence {id} was removed"));
        }
        report.head_hash = prev;
        Ok(report)
    }
}

fn lost_link_of(row: lost_report_links::Model) -> LostReportLink {
    LostReportLink {
        id: row.id,
        user: row.user_name,
        devices: serde_json::from_str(&row.devices).unwrap_or_default(),
        created_by: row.created_by,
        created_at: row.created_at,
        revoked_at: row.revoked_at,
        last_used_at: row.last_used_at,
    }
}

fn approval_of(row: incident_approvals::Model) -> Approval {
    Approval {
        id: row.id,
        incident_id: row.incident_id,
        device_id: row.device_id,
        action: row.action,
        requested_by: row.requested_by,
        requested_at: row.requested_at,
        status: row.status,
        decided_by: row.decided_by,
        decided_at: row.decided_at,
    }
}

fn entry_of(row: incident_history::Model) -> HistoryEntry {
    HistoryEntry {
        seq: row.seq,
        incident_id: row.incident_id,
        at: row.at,
        actor: row.actor,
        change: row.change,
        details: serde_json::from_str(&row.details).unwrap_or(serde_json::Value::Null),
        prev_hash: row.prev_hash,
        hash: row.hash,
    }
}
