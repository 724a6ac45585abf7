//! The audit trail: every admin action and its outcome (logins, failed logins, MFA
//! failures, token use, commands, locks, wipes, policy and role changes, exports),
//! who, when, from which address, what. Fed from the one event stream: a tailer reads
//! the events an admin (or a login attempt) caused and appends them to `audit_log`,
//! a hash chain (each record hashes the previous record's hash and its own fields).
//!
//! Events commit in id order on SQLite, but on PostgreSQL a transaction may commit a
//! lower id after a higher one is visible: the tailer keeps its stored position a
//! settle time behind the newest event and reads that window again each pass; an
//! event already in the trail is skipped (`audit_log.event_id` is unique), so none is
//! missed and none is doubled, whichever instance appends it.

use super::super::{ServiceError, ServiceResult};
use crate::domain::event::Event;
use crate::storage::{audit_chain_hash, AuditRecord, NewAuditRecord, Storage};
use chrono::{Duration, Utc};
use serde::Serialize;
use std::sync::Arc;

/// How far behind the newest event the stored position stays.
const SETTLE_SECS: i64 = 30;
/// Events read per pass.
const BATCH: u64 = 500;

/// What an event says happened: its outcome word.
fn outcome_of(event: &Event) -> &'static str {
    let k = event.kind.as_str();
    if k == super::kinds::AUTH_DENIED {
        "denied"
    } else if k.ends_with("_failed") || k.ends_with(".failed") {
        "failure"
    } else if k.ends_with("_refused") || k.ends_with(".refused") {
        "refused"
    } else {
        "success"
    }
}

/// The record an event becomes.
pub fn record_of(event: &Event) -> NewAuditRecord {
    let address = event
        .data
        .get("address")
        .and_then(|a| a.as_str())
        .map(|a| a.chars().take(64).collect());
    let details = serde_json::json!({
        "message": event.message,
        "device_id": event.device_id,
        "severity": event.severity,
        "data": event.data,
    });
    NewAuditRecord {
        event_id: Some(event.id),
        at: event.occurred_at,
        actor: event
            .actor
            .clone()
            .unwrap_or_else(|| "system".into())
            .chars()
            .take(255)
            .collect(),
        address,
        action: event.kind.chars().take(128).collect(),
        outcome: outcome_of(event).into(),
        details: details.to_string(),
    }
}

pub struct AuditTrail {
    store: Arc<dyn Storage>,
    interval: std::time::Duration,
}

impl AuditTrail {
    pub fn new(store: Arc<dyn Storage>, interval: std::time::Duration) -> Self {
        AuditTrail { store, interval }
    }

    /// Appends what is new; returns how many records.
    pub async fn run_once(&self) -> ServiceResult<u64> {
        let mut total = 0;
        loop {
            let cursor = self.store.audit_cursor().await?;
            let events = self.store.audit_candidate_events(cursor, BATCH).await?;
            if events.is_empty() {
                return Ok(total);
            }
            let ids: Vec<i64> = events.iter().map(|e| e.id).collect();
            let present: std::collections::HashSet<i64> = self
                .store
                .audited_event_ids(&ids)
                .await?
                .into_iter()
                .collect();
            let settled_before = Utc::now() - Duration::seconds(SETTLE_SECS);
            // The position moves over events old enough that nothing can commit
            // before them any more.
            let new_cursor = events
                .iter()
                .take_while(|e| e.occurred_at < settled_before)
                .map(|e| e.id)
                .last()
                .unwrap_or(cursor);
            let records: Vec<NewAuditRecord> = events
                .iter()
                .filter(|e| !present.contains(&e.id))
                .map(record_of)
                .collect();
            let full = events.len() as u64 == BATCH;
            if records.is_empty() && new_cursor == cursor {
                return Ok(total);
            }
            total += self.store.append_audit(records, new_cursor).await?;
            if !full {
                return Ok(total);
            }
            if new_cursor == cursor {
                // A full batch of recent events: the rest waits for the next pass.
                return Ok(total);
            }
        }
    }

    pub fn spawn(self) {
        tokio::spawn(async move {
            loop {
                if let Err(e) = self.run_once().await {
                    tracing::warn!(error = %e, "audit trail: appending failed; retrying");
                }
                tokio::time::sleep(self.interval).await;
            }
        });
    }
}

#[derive(Debug, Serialize)]
pub struct Verification {
    pub intact: bool,
    pub records: u64,
    pub head_seq: i64,
    pub head_hash: String,
    pub problems: Vec<String>,
}

/// Walks the chain: every record's seq follows the previous one, its prev_hash is the
/// previous record's hash, its hash is what its fields hash to, and the head names the
/// last record. Finds altered, removed and reordered records, and a cut-off end.
pub async fn verify(store: &dyn Storage) -> ServiceResult<Verification> {
    let (head_seq, head_hash) = store.audit_head().await?;
    let mut problems = Vec::new();
    let mut prev_hash = "0".repeat(64);
    let mut expected = 1i64;
    let mut count = 0u64;
    let mut after = 0i64;
    loop {
        let page = store.audit_records(after, 1000).await?;
        if page.is_empty() {
            break;
        }
        for r in &page {
            count += 1;
            if r.seq != expected {
                problems.push(format!(
                    "record {} follows record {}: {} record(s) missing or reordered",
                    r.seq,
                    expected - 1,
                    (r.seq - expected).abs()
                ));
            }
            if r.prev_hash != prev_hash {
                problems.push(format!(
                    "record {}: its previous-hash does not match the record before it (a record removed, inserted or reordered)",
                    r.seq
                ));
            }
            let computed = hash_of(r);
            if computed != r.hash {
                problems.push(format!(
                    "record {}: its content does not match its hash (altered)",
                    r.seq
                ));
            }
            prev_hash = r.hash.clone();
            expected = r.seq + 1;
            after = r.seq;
        }
        if problems.len() > 100 {
            problems.push("more problems not listed".into());
            break;
        }
    }
    if after != head_seq || prev_hash != head_hash {
        problems.push(format!(
            "the chain's head names record {head_seq}, the last record is {after}: records removed at the end, or the head altered"
        ));
    }
    Ok(Verification {
        intact: problems.is_empty(),
        records: count,
        head_seq,
        head_hash,
        problems,
    })
}

fn hash_of(r: &AuditRecord) -> String {
    audit_chain_hash(
        &r.prev_hash,
        r.seq,
        r.event_id,
        r.at,
        &r.actor,
        r.address.as_deref(),
        &r.action,
        &r.outcome,
        &r.details_raw,
    )
}

/// Every record, in chain order (for exports).
pub async fn all_records(store: &dyn Storage) -> ServiceResult<Vec<AuditRecord>> {
    let mut out = Vec::new();
    let mut after = 0;
    loop {
        let page = store.audit_records(after, 1000).await?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        out.extend(page);
    }
    Ok(out)
}

/// JSON lines, one record per line, with its hashes.
pub fn to_json_lines(records: &[AuditRecord]) -> String {
    let mut out = String::new();
    for r in records {
        out.push_str(&serde_json::to_string(r).unwrap_or_default());
        out.push('\n');
    }
    out
}

pub const CSV_COLUMNS: [&str; 10] = [
    "seq",
    "at",
    "actor",
    "address",
    "action",
    "outcome",
    "details",
    "event_id",
    "prev_hash",
    "hash",
];

pub fn to_csv(records: &[AuditRecord]) -> ServiceResult<String> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let fail = |e: csv::Error| ServiceError::Internal(e.to_string());
    w.write_record(CSV_COLUMNS).map_err(fail)?;
    for r in records {
        w.write_record([
            r.seq.to_string(),
            r.at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            r.actor.clone(),
            r.address.clone().unwrap_or_default(),
            r.action.clone(),
            r.outcome.clone(),
            r.details_raw.clone(),
            r.event_id.map(|e| e.to_string()).unwrap_or_default(),
            r.prev_hash.clone(),
            r.hash.clone(),
        ])
        .map_err(fail)?;
    }
    let bytes = w
        .into_inner()
        .map_err(|e| ServiceError::Internal(e.to_string()))?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}
