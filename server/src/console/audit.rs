//! The audit trail: its latest records, newest first and paged by sequence number
//! (the store's `audit_records`, as `GET /audit` reads them), the verification of
//! its hash chain by the very function `GET /audit/verify` calls (optionally against
//! an anchor published earlier), and a link to the API's CSV export, which the
//! console's session cookie reaches (a GET needs no CSRF header).

use super::i18n::Tr;
use super::login::idle_secs;
use super::page::Page;
use super::session::page_admin;
use super::{html, service, ConsoleError};
use crate::http::AppState;
use crate::services::admins::audit;
use crate::storage::AuditRecord;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use serde::Deserialize;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/audit", web::get().to(page));
}

const PAGE_SIZE: i64 = 50;

pub struct RecordRow {
    pub seq: i64,
    pub at: String,
    pub actor: String,
    pub address: String,
    pub action: String,
    pub outcome: String,
    pub outcome_class: &'static str,
}

fn outcome(tr: Tr, word: &str) -> (String, &'static str) {
    match word {
        "success" => (tr.t("audit-outcome-success"), "status-acknowledged"),
        "failure" => (tr.t("audit-outcome-failure"), "status-error"),
        "denied" => (tr.t("audit-outcome-denied"), "status-error"),
        other => (other.to_owned(), "status-sent"),
    }
}

fn row(tr: Tr, r: &AuditRecord) -> RecordRow {
    let (outcome, outcome_class) = outcome(tr, &r.outcome);
    RecordRow {
        seq: r.seq,
        at: tr.datetime(&r.at),
        actor: r.actor.clone(),
        address: r.address.clone().unwrap_or_else(|| "—".into()),
        action: r.action.clone(),
        outcome,
        outcome_class,
    }
}

/// The chain's verification as the page shows it.
pub struct ChainState {
    pub intact: bool,
    /// False until the admin asks for the verification.
    pub checked: bool,
    pub label: String,
    pub detail: String,
    pub head: String,
    /// Where the chain is broken (the service's findings, each naming its record).
    pub problems: Vec<String>,
    /// The anchor checked, when one was given: found or not.
    pub anchor: Option<String>,
}

#[derive(Template)]
#[template(path = "console/audit.html")]
struct AuditPage {
    p: Page,
    chain: ChainState,
    rows: Vec<RecordRow>,
    summary: String,
    anchor: String,
    newer: Option<String>,
    older: Option<String>,
}

#[derive(Deserialize)]
struct Query {
    /// The newest sequence number to show (paging back).
    before: Option<i64>,
    /// `SEQ:HASH` of an `audit.anchor` event, checked with the chain.
    anchor: Option<String>,
    /// Verify the chain now. Verification reads the whole trail, so it runs when
    /// asked (the button), not on every page of records.
    verify: Option<String>,
}

fn link(before: i64, anchor: &str) -> String {
    let mut to = format!("/console/audit?before={before}");
    if !anchor.is_empty() {
        to.push_str("&anchor=");
        to.push_str(
            &percent_encoding::utf8_percent_encode(anchor, percent_encoding::NON_ALPHANUMERIC)
                .to_string(),
        );
    }
    to
}

async fn page(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: web::Query<Query>,
) -> Result<HttpResponse, ConsoleError> {
    let admin = page_admin(&req).await?;
    admin.require("GET", "/audit")?;
    admin.require("GET", "/audit/verify")?;
    let tr = admin.tr;
    let anchor_text = query
        .anchor
        .as_deref()
        .map(str::trim)
        .unwrap_or_default()
        .to_owned();
    let (anchor, error) = if anchor_text.is_empty() {
        (None, None)
    } else {
        match audit::parse_anchor(&anchor_text) {
            Ok(a) => (Some(a), None),
            Err(why) => (None, Some(tr.t1("audit-anchor-invalid", &why))),
        }
    };
    let verified = if query.verify.is_some() {
        Some(
            audit::verify(state.store.as_ref(), &state.admins.audit_key, anchor)
                .await
                .map_err(service(tr))?,
        )
    } else {
        None
    };
    let (head_seq, head_hash) = match &verified {
        Some(v) => (v.head_seq, v.head_hash.clone()),
        None => state
            .store
            .audit_head()
            .await
            .map_err(|e| service(tr)(e.into()))?,
    };
    let head = head_seq.max(0);
    let top = query.before.unwrap_or(head).clamp(0, head);
    let after = (top - PAGE_SIZE).max(0);
    let mut records = state
        .store
        .audit_records(after, PAGE_SIZE as u64)
        .await
        .map_err(|e| service(tr)(e.into()))?;
    records.retain(|r| r.seq <= top);
    records.reverse();
    let head_text = tr.t1("audit-chain-head", &format!("{head_seq} · {head_hash}"));
    let chain = match &verified {
        None => ChainState {
            intact: false,
            checked: false,
            label: tr.t("audit-chain-unchecked"),
            detail: tr.t("audit-chain-unchecked-hint"),
            head: head_text,
            problems: Vec::new(),
            anchor: None,
        },
        Some(v) => ChainState {
            intact: v.intact,
            checked: true,
            label: if v.intact {
                tr.t("audit-chain-intact")
            } else {
                tr.t("audit-chain-broken")
            },
            detail: if v.intact {
                tr.n("audit-chain-records", v.records as i64)
            } else {
                tr.n("audit-chain-problems", v.problems.len() as i64)
            },
            head: head_text,
            problems: v.problems.clone(),
            anchor: v.anchor.as_ref().map(|a| {
                let named = format!("{}:{}", a.seq, a.hash);
                if a.found {
                    tr.t1("audit-anchor-found", &named)
                } else {
                    tr.t1("audit-anchor-missing", &named)
                }
            }),
        },
    };
    let page = AuditPage {
        p: Page::new(
            &admin,
            tr.t("nav-audit"),
            "/console/audit",
            idle_secs(&state),
        )
        .with_error(error),
        chain,
        rows: records.iter().map(|r| row(tr, r)).collect(),
        summary: tr.n("audit-records-count", head),
        newer: (top < head).then(|| link((top + PAGE_SIZE).min(head), &anchor_text)),
        older: (after > 0).then(|| link(after, &anchor_text)),
        anchor: anchor_text,
    };
    html(&page)
}
