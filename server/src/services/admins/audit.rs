//! The audit trail: every admin action and its outcome (logins, failed logins, MFA
//! failures, token use, commands, locks, wipes, policy and role changes, exports),
//! who, when, from which address, what. Fed from the one event stream: a tailer reads
//! the events an admin (or a login attempt) caused and appends them to `audit_log`,
//! a hash chain (each record hashes the previous record's hash and its own fields).
//!
//! The links are HMAC-SHA256 under a key derived from the master key ([`audit_key`]):
//! someone who can write the database but not read the master key cannot rewrite a
//! record and recompute the links after it. Records from before the chain was keyed
//! keep their SHA-256 links (`chain_version` 1), which exports may hold; at its first
//! start the server links the last of them with a keyed record
//! ([`AuditTrail::seal_legacy`]), which pins them, and verification refuses a SHA-256
//! record after a keyed one. A cut-off end stays consistent under any key: the head
//! is published as an `audit.anchor` event (to the SIEM, an external witness) every
//! so many records or minutes, and [`verify`] checks that an anchor is still in the
//! chain.
//!
//! Events commit in id order on SQLite, but on PostgreSQL a transaction may commit a
//! lower id after a higher one is visible: the tailer keeps its stored position a
//! settle time behind the newest event and reads that window again each pass; an
//! event already in the trail is skipped (`audit_log.event_id` is unique), so none is
//! missed and none is doubled, whichever instance appends it.

use super::super::{ServiceError, ServiceResult};
use crate::domain::event::{Event, NewEvent};
use crate::storage::{
    audit_chain_hash, audit_chain_mac, AuditHeadState, AuditKey, AuditRecord, NewAuditRecord,
    Storage, AUDIT_CHAIN_HMAC, AUDIT_CHAIN_SHA256,
};
use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use std::sync::Arc;

/// What the audit chain's HMAC key is derived under from the master key (HKDF).
pub const AUDIT_KEY_INFO: &str = "mdm.audit.chain.v2";
/// The event that publishes the chain's head (seq and hash) for an external witness.
pub const ANCHOR_KIND: &str = "audit.anchor";
/// The record that links the SHA-256 records of an earlier release to the keyed chain.
pub const CHAIN_KEYED_ACTION: &str = "audit.chain_keyed";

/// The chain's key: HKDF-SHA256 of the master key for [`AUDIT_KEY_INFO`].
pub fn audit_key(sealer: &enrollment::seal::Sealer) -> Result<AuditKey, String> {
    sealer
        .derive_key(AUDIT_KEY_INFO)
        .map(AuditKey::new)
        .map_err(|e| format!("deriving the audit chain's key: {e}"))
}

/// When the head is published: after `records` new records, or `every` after the
/// last anchor when any record was appended since.
#[derive(Debug, Clone)]
pub struct AnchorSettings {
    pub every: Duration,
    pub records: i64,
}

impl Default for AnchorSettings {
    fn default() -> Self {
        AnchorSettings {
            every: Duration::minutes(15),
            records: 500,
        }
    }
}

/// An anchor as it is published and given back: `SEQ:HASH`.
pub fn parse_anchor(text: &str) -> Result<(i64, String), String> {
    let bad = || {
        format!(
            "an anchor is SEQ:HASH, the record number and its 64 hex digit hash as an {ANCHOR_KIND} event published them"
        )
    };
    let (seq, hash) = text.trim().split_once(':').ok_or_else(bad)?;
    let seq: i64 = seq
        .parse()
        .ok()
        .filter(|s| *s >= 0 && seq.len() <= 18)
        .ok_or_else(bad)?;
    let hash = hash.to_ascii_lowercase();
    if hash.len() != 64 || !hash.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(bad());
    }
    Ok((seq, hash))
}

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
    key: AuditKey,
    anchors: AnchorSettings,
}

impl AuditTrail {
    pub fn new(
        store: Arc<dyn Storage>,
        interval: std::time::Duration,
        key: AuditKey,
        anchors: AnchorSettings,
    ) -> Self {
        AuditTrail {
            store,
            interval,
            key,
            anchors,
        }
    }

    /// When the chain ends in a record hashed without the key (written by a release
    /// before the chain was keyed), appends a keyed record after it: its link covers
    /// the last SHA-256 hash, so the records before it can no longer be rewritten
    /// without the key either. True when it did. Run at start, before serving.
    pub async fn seal_legacy(&self) -> ServiceResult<bool> {
        let (seq, hash) = self.store.audit_head().await?;
        if seq == 0 {
            return Ok(false);
        }
        let last = self.store.audit_records(seq - 1, 1).await?;
        let Some(last) = last.first().filter(|r| r.seq == seq) else {
            // The head names a record that is not there: verification says so.
            return Ok(false);
        };
        if last.chain_version != AUDIT_CHAIN_SHA256 {
            return Ok(false);
        }
        let details = serde_json::json!({
            "message": format!(
                "the audit chain is keyed from here on; the {seq} record(s) before are hashed with SHA-256 and pinned by this record's link"
            ),
            "legacy_records": seq,
            "legacy_head": hash,
        });
        self.store
            .append_audit(
                vec![NewAuditRecord {
                    event_id: None,
                    at: Utc::now(),
                    actor: "system".into(),
                    address: None,
                    action: CHAIN_KEYED_ACTION.into(),
                    outcome: "success".into(),
                    details: details.to_string(),
                }],
                0,
                &self.key,
            )
            .await?;
        tracing::info!(
            legacy_records = seq,
            "audit trail: records of an earlier release linked into the keyed chain"
        );
        Ok(true)
    }

    /// Publishes the head as an `audit.anchor` event when it is due; returns it then.
    pub async fn anchor_if_due(&self, now: DateTime<Utc>) -> ServiceResult<Option<(i64, String)>> {
        let head = self.store.audit_head_state().await?;
        let new_records = head.last_seq - head.anchored_seq;
        if new_records <= 0 {
            return Ok(None);
        }
        let due = new_records >= self.anchors.records
            || head
                .anchored_at
                .is_none_or(|at| now - at >= self.anchors.every);
        if !due {
            return Ok(None);
        }
        let anchor = format!("{}:{}", head.last_seq, head.last_hash);
        let event = NewEvent::new(
            ANCHOR_KIND,
            format!(
                "audit chain head: record {} has hash {} (keep it: `mdm audit verify --anchor {anchor}` checks the chain still holds it)",
                head.last_seq, head.last_hash
            ),
        )
        .data(serde_json::json!({
            "seq": head.last_seq,
            "hash": head.last_hash,
            "anchor": anchor,
            "previous_anchor_seq": head.anchored_seq,
        }));
        let published = self
            .store
            .record_audit_anchor(head.last_seq, head.anchored_seq, now, event)
            .await?;
        Ok(published.then_some((head.last_seq, head.last_hash)))
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
            total += self
                .store
                .append_audit(records, new_cursor, &self.key)
                .await?;
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
                if let Err(e) = self.anchor_if_due(Utc::now()).await {
                    tracing::warn!(error = %e, "audit trail: publishing the anchor failed; retrying");
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
    /// Records linked under the key (HMAC-SHA256).
    pub keyed_records: u64,
    /// Records of an earlier release, hashed with SHA-256 (before the first keyed one).
    pub legacy_records: u64,
    pub head_seq: i64,
    pub head_hash: String,
    /// The anchor checked, when one was given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub anchor: Option<AnchorCheck>,
    pub problems: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct AnchorCheck {
    pub seq: i64,
    pub hash: String,
    /// The chain still has that record with that hash.
    pub found: bool,
}

/// Walks the chain: every record's seq follows the previous one, its prev_hash is the
/// previous record's hash, its hash is what its fields hash to under the key (or,
/// before the first keyed record, with SHA-256), and the head names the last record.
/// Finds altered, removed and reordered records, a cut-off end, a chain rewritten
/// without the key (links recomputed with plain SHA-256), and with `anchor` (a head
/// published earlier) a chain cut off or rewritten before that anchor.
pub async fn verify(
    store: &dyn Storage,
    key: &AuditKey,
    anchor: Option<(i64, String)>,
) -> ServiceResult<Verification> {
    verify_chain(&StoredChain(store), key, anchor).await
}

/// The two reads a verification makes: the store's in production; in the tests, a
/// chain that grows between them.
trait ChainSource {
    async fn head(&self) -> ServiceResult<AuditHeadState>;
    async fn records_after(&self, after: i64, limit: u64) -> ServiceResult<Vec<AuditRecord>>;
}

struct StoredChain<'a>(&'a dyn Storage);

impl ChainSource for StoredChain<'_> {
    async fn head(&self) -> ServiceResult<AuditHeadState> {
        Ok(self.0.audit_head_state().await?)
    }
    async fn records_after(&self, after: i64, limit: u64) -> ServiceResult<Vec<AuditRecord>> {
        Ok(self.0.audit_records(after, limit).await?)
    }
}

/// Records and the head are committed together, but a verification reads them in
/// several statements while admins keep acting. So the head is read after the walk:
/// it names at least every record the walk saw (a head behind them is a finding).
/// The records appended between the walk's last page and that read are then walked up
/// to the head, and records appended after it are left to the next verification.
async fn verify_chain<S: ChainSource>(
    source: &S,
    key: &AuditKey,
    anchor: Option<(i64, String)>,
) -> ServiceResult<Verification> {
    let mut walk = ChainWalk::new(key, anchor.as_ref());
    walk.through(source, i64::MAX).await?;
    let head = source.head().await?;
    if walk.listed_all && walk.after < head.last_seq {
        walk.through(source, head.last_seq).await?;
    }
    Ok(walk.finish(head, anchor))
}

/// What the walk has seen so far.
struct ChainWalk<'k> {
    key: &'k AuditKey,
    /// The anchor's seq and hash, to compare with the record of that seq.
    anchor: Option<(i64, String)>,
    problems: Vec<String>,
    prev_hash: String,
    expected: i64,
    count: u64,
    keyed: u64,
    legacy: u64,
    /// The last record's seq.
    after: i64,
    anchor_seen: Option<bool>,
    /// False when the walk stopped early on too many problems.
    listed_all: bool,
}

impl<'k> ChainWalk<'k> {
    fn new(key: &'k AuditKey, anchor: Option<&(i64, String)>) -> Self {
        let genesis = "0".repeat(64);
        ChainWalk {
            key,
            anchor: anchor.cloned(),
            problems: Vec::new(),
            // Seq 0 is the genesis link every chain starts from.
            anchor_seen: anchor
                .filter(|(seq, _)| *seq == 0)
                .map(|(_, hash)| *hash == genesis),
            prev_hash: genesis,
            expected: 1,
            count: 0,
            keyed: 0,
            legacy: 0,
            after: 0,
            listed_all: true,
        }
    }

    /// Checks the records after the last one seen, up to seq `last` or the end.
    async fn through<S: ChainSource>(&mut self, source: &S, last: i64) -> ServiceResult<()> {
        loop {
            let page = source.records_after(self.after, 1000).await?;
            let Some(end) = page.last().map(|r| r.seq) else {
                return Ok(());
            };
            for r in page.iter().take_while(|r| r.seq <= last) {
                self.check(r);
            }
            if end > last {
                return Ok(());
            }
            if self.problems.len() > 100 {
                self.problems.push("more problems not listed".into());
                self.listed_all = false;
                return Ok(());
            }
        }
    }

    fn check(&mut self, r: &AuditRecord) {
        let problems = &mut self.problems;
        self.count += 1;
        if r.seq != self.expected {
            problems.push(format!(
                "record {} follows record {}: {} record(s) missing or reordered",
                r.seq,
                self.expected - 1,
                (r.seq - self.expected).abs()
            ));
        }
        if r.prev_hash != self.prev_hash {
            problems.push(format!(
                "record {}: its previous-hash does not match the record before it (a record removed, inserted or reordered)",
                r.seq
            ));
        }
        let computed = match r.chain_version {
            AUDIT_CHAIN_HMAC => {
                self.keyed += 1;
                Some(mac_of(self.key, r))
            }
            AUDIT_CHAIN_SHA256 if self.keyed == 0 => {
                self.legacy += 1;
                Some(hash_of(r))
            }
            AUDIT_CHAIN_SHA256 => {
                problems.push(format!(
                    "record {}: hashed with plain SHA-256 after keyed records: the chain was rewritten by someone without the server's key",
                    r.seq
                ));
                None
            }
            other => {
                problems.push(format!("record {}: unknown chain version {other}", r.seq));
                None
            }
        };
        if computed.is_some_and(|c| c != r.hash) {
            problems.push(format!(
                "record {}: its content does not match its hash (altered{})",
                r.seq,
                if r.chain_version == AUDIT_CHAIN_HMAC {
                    ", or its link was not computed with this server's key"
                } else {
                    ""
                }
            ));
        }
        if let Some((seq, hash)) = &self.anchor {
            if r.seq == *seq {
                self.anchor_seen = Some(r.hash == *hash);
            }
        }
        self.prev_hash = r.hash.clone();
        self.expected = r.seq + 1;
        self.after = r.seq;
    }

    fn finish(self, head: AuditHeadState, anchor: Option<(i64, String)>) -> Verification {
        let ChainWalk {
            mut problems,
            prev_hash,
            count,
            keyed,
            legacy,
            after,
            anchor_seen,
            listed_all,
            ..
        } = self;
        let (head_seq, head_hash) = (head.last_seq, head.last_hash);
        if listed_all && count > 0 && keyed == 0 {
            problems.push(
                "no record is linked with the server's key: every link is plain SHA-256, which anyone who can write the database can recompute (the chain was rewritten without the key)"
                    .into(),
            );
        }
        if listed_all && (after != head_seq || prev_hash != head_hash) {
            problems.push(format!(
                "the chain's head names record {head_seq}, the last record is {after}: records removed at the end, or the head altered"
            ));
        }
        if head.anchored_seq > head_seq {
            problems.push(format!(
                "the last anchor published names record {}, beyond the chain's end ({head_seq}): records removed at the end",
                head.anchored_seq
            ));
        }
        let anchor = anchor.map(|(seq, hash)| {
            match anchor_seen {
                Some(true) => {}
                Some(false) => problems.push(format!(
                    "anchor {seq}: record {seq} no longer has the published hash {hash}: the chain was rewritten"
                )),
                None if listed_all => problems.push(format!(
                    "anchor {seq}:{hash} is missing: the chain no longer reaches the record it published (cut off, or records removed)"
                )),
                None => {}
            }
            AnchorCheck {
                seq,
                hash,
                found: anchor_seen == Some(true),
            }
        });
        Verification {
            intact: problems.is_empty(),
            records: count,
            keyed_records: keyed,
            legacy_records: legacy,
            head_seq,
            head_hash,
            anchor,
            problems,
        }
    }
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

fn mac_of(key: &AuditKey, r: &AuditRecord) -> String {
    audit_chain_mac(
        key,
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

pub const CSV_COLUMNS: [&str; 11] = [
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
    "chain_version",
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
            r.chain_version.to_string(),
        ])
        .map_err(fail)?;
    }
    let bytes = w
        .into_inner()
        .map_err(|e| ServiceError::Internal(e.to_string()))?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    /// A chain in memory whose admins keep acting while it is verified: one record is
    /// appended (with the head, as the store commits them) at each moment the test
    /// names.
    struct GrowingChain {
        key: AuditKey,
        records: RefCell<Vec<AuditRecord>>,
        head: RefCell<AuditHeadState>,
        /// Append a record after the walk's first empty page.
        on_end_of_walk: RefCell<u32>,
        /// Append a record just before, and just after, the head is read.
        around_head_read: bool,
    }

    impl GrowingChain {
        fn new(records: i64) -> Self {
            let chain = GrowingChain {
                key: AuditKey::new([7; 32]),
                records: RefCell::new(Vec::new()),
                head: RefCell::new(AuditHeadState {
                    last_seq: 0,
                    last_hash: "0".repeat(64),
                    anchored_seq: 0,
                    anchored_at: None,
                }),
                on_end_of_walk: RefCell::new(0),
                around_head_read: false,
            };
            for _ in 0..records {
                chain.append();
            }
            chain
        }

        fn append(&self) {
            let mut records = self.records.borrow_mut();
            let seq = records.len() as i64 + 1;
            let mut record = AuditRecord {
                seq,
                event_id: Some(seq),
                at: DateTime::from_timestamp(1_700_000_000 + seq, 0).unwrap(),
                actor: "admin:ops".into(),
                address: Some("127.0.0.1".into()),
                action: "device.lock".into(),
                outcome: "ok".into(),
                details: serde_json::json!({}),
                details_raw: "{}".into(),
                prev_hash: records
                    .last()
                    .map_or_else(|| "0".repeat(64), |r| r.hash.clone()),
                hash: String::new(),
                chain_version: AUDIT_CHAIN_HMAC,
            };
            record.hash = mac_of(&self.key, &record);
            let mut head = self.head.borrow_mut();
            head.last_seq = seq;
            head.last_hash = record.hash.clone();
            records.push(record);
        }
    }

    impl ChainSource for GrowingChain {
        async fn head(&self) -> ServiceResult<AuditHeadState> {
            if self.around_head_read {
                self.append();
            }
            let head = self.head.borrow().clone();
            if self.around_head_read {
                self.append();
            }
            Ok(head)
        }

        async fn records_after(&self, after: i64, limit: u64) -> ServiceResult<Vec<AuditRecord>> {
            let page: Vec<AuditRecord> = self
                .records
                .borrow()
                .iter()
                .filter(|r| r.seq > after)
                .take(limit as usize)
                .cloned()
                .collect();
            let mut appends = self.on_end_of_walk.borrow_mut();
            if page.is_empty() && *appends > 0 {
                *appends -= 1;
                drop(appends);
                self.append();
            }
            Ok(page)
        }
    }

    fn verify_now(chain: &GrowingChain) -> Verification {
        let key = AuditKey::new([7; 32]);
        futures::executor::block_on(verify_chain(chain, &key, None)).unwrap()
    }

    #[test]
    fn records_appended_while_the_chain_is_walked_are_no_finding() {
        // 2,500 records: the walk reads three pages and ends on an empty one.
        let mut chain = GrowingChain::new(2_500);
        *chain.on_end_of_walk.get_mut() = 1;
        chain.around_head_read = true;
        let report = verify_now(&chain);
        assert!(report.intact, "{:?}", report.problems);
        // The record appended after the last page and the one appended before the head
        // was read are walked; the one appended after it is left for the next time.
        assert_eq!(report.records, 2_502);
        assert_eq!(report.head_seq, 2_502);
        assert_eq!(chain.records.borrow().len(), 2_503);
    }

    #[test]
    fn a_head_behind_the_records_is_still_found() {
        let chain = GrowingChain::new(5);
        chain.head.borrow_mut().last_seq = 4;
        let report = verify_now(&chain);
        assert!(!report.intact);
        assert_eq!(
            report.problems,
            ["the chain's head names record 4, the last record is 5: records removed at the end, or the head altered"]
        );
    }
}
