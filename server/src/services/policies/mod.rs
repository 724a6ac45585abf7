//! Policies: one model (profiles::policy), versioned, assigned to device groups or
//! devices, compiled per platform and device, delivered only where the output
//! changed, and checked for compliance.
//!
//! * [`documents`]: sealing, masking and diffing documents.
//! * [`resolve`]: group membership and precedence.
//! * [`deliver`]: compile, compare, queue.
//! * [`compliance`]: each device's evaluation.
//! * [`watcher`]: what the event stream asks of policies (an enrollment, a changed
//!   directory user, a command result).

pub mod compliance;
pub mod deliver;
pub mod documents;
pub mod resolve;
pub mod watcher;

use crate::domain::event::{kinds, severity, NewEvent};
use crate::services::wake::DeviceWaker;
use crate::services::{ServiceError, ServiceResult};
use crate::storage::{AssignmentRow, DeviceGroupRow, PolicyRow, PolicyVersionRow, Storage};
use chrono::Utc;
use deliver::{AppleSettings, Deliverer, DeliveryReport, World};
use enrollment::seal::Sealer;
use profiles::policy::{self, FieldError, PolicyDocument};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Arc;

/// A refusal with the fields at fault (HTTP 400 with `errors`).
#[derive(Debug, Clone, Serialize)]
pub struct FieldProblem {
    pub path: String,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allowed: Option<String>,
}

impl From<&FieldError> for FieldProblem {
    fn from(e: &FieldError) -> Self {
        FieldProblem {
            path: e.path.clone(),
            message: e.message.clone(),
            allowed: e.allowed.clone(),
        }
    }
}

#[derive(Debug)]
pub enum PolicyError {
    Invalid(Vec<FieldProblem>),
    Service(ServiceError),
}

impl From<ServiceError> for PolicyError {
    fn from(e: ServiceError) -> Self {
        PolicyError::Service(e)
    }
}

impl From<crate::storage::StoreError> for PolicyError {
    fn from(e: crate::storage::StoreError) -> Self {
        PolicyError::Service(e.into())
    }
}

pub type PolicyResult<T> = Result<T, PolicyError>;

#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    pub rule: String,
    pub path: String,
    pub message: String,
}

fn findings_of(doc: &PolicyDocument) -> Vec<Finding> {
    policy::office_findings(doc)
        .into_iter()
        .map(|f| Finding {
            rule: f.rule,
            path: f.path,
            message: f.message,
        })
        .collect()
}

/// What each platform cannot express of a document, found by compiling it for a
/// sample user: reported whenever a policy is checked, saved or diffed, whether or
/// not a device has it yet.
pub fn platform_notes(doc: &PolicyDocument) -> Vec<deliver::Note> {
    let sample = policy::UserAttributes {
        username: "sample".into(),
        upn: "sample@example.org".into(),
        email: "sample@example.org".into(),
        display_name: "Sample User".into(),
        department: Some("Sample".into()),
        groups: Vec::new(),
    };
    let mut notes = Vec::new();
    let apple = policy::compile_apple(
        doc,
        Some(&sample),
        &policy::AppleContext {
            identifier_prefix: "mdm".into(),
            organization: "sample".into(),
            policy_key: "sample".into(),
            device_key: "sample".into(),
            scep: deliver::needs_certificate(doc).then(|| policy::ScepParams {
                url: "https://mdm.invalid/scep".into(),
                challenge: String::new(),
                subject_cn: "sample".into(),
                key_size: 2048,
                ca_fingerprint: None,
            }),
        },
    );
    if let Ok(out) = apple {
        notes.extend(out.notes);
    }
    if let Ok(out) = policy::compile_android(&[doc], Some(&sample)) {
        notes.extend(out.notes);
    }
    notes
        .into_iter()
        .map(|n| deliver::Note {
            platform: n.platform,
            policy: doc.name.clone(),
            path: n.path,
            message: n.message,
        })
        .collect()
}

/// What `policy check` says of a document.
#[derive(Debug, Clone, Serialize)]
pub struct CheckReport {
    pub valid: bool,
    pub errors: Vec<FieldProblem>,
    /// The office's rules (requirements) the policy breaks.
    pub findings: Vec<Finding>,
    /// What each platform cannot express (per platform, never dropped silently).
    pub platform_notes: Vec<deliver::Note>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SaveOutcome {
    pub policy: PolicyRow,
    pub version: i32,
    /// False when the document equals the current version: nothing was saved.
    pub changed: bool,
    pub findings: Vec<Finding>,
    /// What each platform cannot express of this policy (the delivery's notes are
    /// those of the devices it reached).
    pub platform_notes: Vec<deliver::Note>,
    pub delivery: DeliveryReport,
}

#[derive(Debug, Clone, Serialize)]
pub struct DiffReport {
    pub policy: String,
    pub current_version: Option<i32>,
    pub changes: Vec<documents::FieldChange>,
    pub findings: Vec<Finding>,
    pub platform_notes: Vec<deliver::Note>,
    /// What applying it would queue (nothing is queued by a diff).
    pub delivery: DeliveryReport,
}

#[derive(Debug, Clone, Serialize)]
pub struct AssignmentView {
    pub policy: String,
    pub target_kind: String,
    pub target: String,
    pub target_name: String,
    pub precedence: i32,
    pub created_by: String,
    pub created_at: chrono::DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PolicyView {
    #[serde(flatten)]
    pub policy: PolicyRow,
    pub document: serde_json::Value,
    pub content_hash: String,
    pub assignments: Vec<AssignmentView>,
    pub findings: Vec<Finding>,
}

#[derive(Debug, Clone, Serialize)]
pub struct VersionView {
    pub version: i32,
    pub created_by: String,
    pub created_at: chrono::DateTime<Utc>,
    pub note: Option<String>,
    pub content_hash: String,
    pub document: serde_json::Value,
}

impl From<PolicyVersionRow> for VersionView {
    fn from(v: PolicyVersionRow) -> Self {
        VersionView {
            version: v.version,
            created_by: v.created_by,
            created_at: v.created_at,
            note: v.note,
            content_hash: v.content_hash,
            document: v.document,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct NewGroup {
    pub name: String,
    #[serde(default = "manual")]
    pub kind: String,
    /// The directory group, department or enrollment group name the kind matches.
    #[serde(rename = "match")]
    pub match_value: Option<String>,
    pub description: Option<String>,
}

fn manual() -> String {
    "manual".into()
}

#[derive(Debug, Clone, Serialize)]
pub struct GroupView {
    #[serde(flatten)]
    pub group: DeviceGroupRow,
    /// Devices in the group now (manual members and those its rule places there).
    pub devices: Vec<String>,
}

/// The merged AMAPI policy of one Android device and what it could not express.
pub struct AndroidContent {
    pub policy: serde_json::Value,
    pub notes: Vec<deliver::Note>,
    /// Why the device's policies could not be compiled (it keeps the built-in one).
    pub errors: Vec<String>,
}

/// The Android device's AMAPI policy: the built-in base (status reporting, security
/// logs, the office's passcode floor) with its policies compiled over it.
pub async fn android_content(
    store: &dyn Storage,
    sealer: &Sealer,
    device_id: &str,
) -> ServiceResult<AndroidContent> {
    let scope = [device_id.to_owned()];
    let world = World::load(store, sealer, Some(&scope), &HashMap::new()).await?;
    Ok(match world.targets.first() {
        Some(target) => android_content_in(&world, target),
        None => AndroidContent {
            policy: crate::android::policy::built_in(),
            notes: Vec::new(),
            errors: Vec::new(),
        },
    })
}

/// [`android_content`] from a loaded world (a delivery to many devices loads once).
pub fn android_content_in(world: &World, target: &crate::storage::PolicyTarget) -> AndroidContent {
    let mut base = crate::android::policy::built_in();
    let ids = world.policies_of(target);
    if ids.is_empty() {
        return AndroidContent {
            policy: base,
            notes: Vec::new(),
            errors: Vec::new(),
        };
    }
    let docs: Vec<&PolicyDocument> = ids.iter().map(|id| &world.documents[id].1).collect();
    let user = world.user_of(target).map(deliver::user_attributes);
    match policy::compile_android(&docs, user.as_ref()) {
        Ok(out) => {
            if let (Some(b), Some(o)) = (base.as_object_mut(), out.policy.as_object()) {
                for (k, v) in o {
                    b.insert(k.clone(), v.clone());
                }
            }
            AndroidContent {
                policy: base,
                notes: out
                    .notes
                    .into_iter()
                    .map(|n| deliver::Note {
                        platform: n.platform,
                        policy: String::new(),
                        path: n.path,
                        message: n.message,
                    })
                    .collect(),
                errors: Vec::new(),
            }
        }
        Err(errors) => AndroidContent {
            // The device keeps the built-in policy; the delivery reports why.
            policy: base,
            notes: Vec::new(),
            errors: errors
                .iter()
                .map(|e| format!("{}: {}", e.path, e.message))
                .collect(),
        },
    }
}

pub struct PolicyService {
    store: Arc<dyn Storage>,
    sealer: Sealer,
    pki: Arc<crate::services::pki::Pki>,
    apple: AppleSettings,
    android: Arc<crate::services::android::AndroidService>,
    waker: Arc<dyn DeviceWaker>,
}

pub fn parse_text(text: &str, format: &str) -> PolicyResult<PolicyDocument> {
    let format = match format {
        "json" => policy::Format::Json,
        "toml" => policy::Format::Toml,
        "yaml" | "yml" => policy::Format::Yaml,
        other => {
            return Err(PolicyError::Invalid(vec![FieldProblem {
                path: "format".into(),
                message: format!("unknown format {other:?}"),
                allowed: Some("json, toml, yaml".into()),
            }]))
        }
    };
    policy::parse(text, format)
        .map_err(|errors| PolicyError::Invalid(errors.iter().map(Into::into).collect()))
}

fn validated(doc: &PolicyDocument) -> PolicyResult<()> {
    policy::validate(doc)
        .map_err(|errors| PolicyError::Invalid(errors.iter().map(Into::into).collect()))
}

impl PolicyService {
    pub fn new(
        store: Arc<dyn Storage>,
        sealer: Sealer,
        pki: Arc<crate::services::pki::Pki>,
        apple: AppleSettings,
        android: Arc<crate::services::android::AndroidService>,
        waker: Arc<dyn DeviceWaker>,
    ) -> Self {
        PolicyService {
            store,
            sealer,
            pki,
            apple,
            android,
            waker,
        }
    }

    fn deliverer(&self) -> Deliverer<'_> {
        Deliverer {
            store: self.store.as_ref(),
            sealer: &self.sealer,
            pki: &self.pki,
            apple: &self.apple,
        }
    }

    pub fn check(&self, doc: &PolicyDocument) -> CheckReport {
        let errors: Vec<FieldProblem> = policy::validate(doc)
            .err()
            .unwrap_or_default()
            .iter()
            .map(Into::into)
            .collect();
        CheckReport {
            platform_notes: if errors.is_empty() {
                platform_notes(doc)
            } else {
                Vec::new()
            },
            valid: errors.is_empty(),
            errors,
            findings: findings_of(doc),
        }
    }

    async fn policy_named(&self, name: &str) -> ServiceResult<PolicyRow> {
        self.store
            .policy(name)
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("no policy named {name:?}")))
    }

    async fn current_document(
        &self,
        policy: &PolicyRow,
    ) -> ServiceResult<(PolicyVersionRow, PolicyDocument)> {
        let version = self
            .store
            .policy_version(&policy.id, policy.current_version)
            .await?
            .ok_or_else(|| {
                ServiceError::Internal(format!("policy {} has no current version", policy.name))
            })?;
        let doc = documents::open(
            &self.sealer,
            &policy.id,
            version.version,
            &version.document_sealed,
        )?;
        Ok((version, doc))
    }

    /// Saves `doc` as the policy `name`'s new version (creating it) and delivers the
    /// change to the devices it applies to. An unchanged document saves nothing and
    /// queues nothing.
    pub async fn save(
        &self,
        actor: &str,
        name: &str,
        mut doc: PolicyDocument,
        note: Option<String>,
    ) -> PolicyResult<SaveOutcome> {
        if doc.name != name {
            return Err(PolicyError::Invalid(vec![FieldProblem {
                path: "name".into(),
                message: format!("is {:?}, but the policy being saved is {name:?}", doc.name),
                allowed: Some(format!("{name:?}")),
            }]));
        }
        let existing = self.store.policy(name).await?;
        let current = match &existing {
            Some(p) => Some(self.current_document(p).await?),
            None => None,
        };
        documents::unmask(&mut doc, current.as_ref().map(|c| &c.1)).map_err(
            |(path, message)| {
                PolicyError::Invalid(vec![FieldProblem {
                    path,
                    message,
                    allowed: None,
                }])
            },
        )?;
        validated(&doc)?;
        let findings = findings_of(&doc);
        if let (Some(p), Some((_, old))) = (&existing, &current) {
            if *old == doc {
                return Ok(SaveOutcome {
                    policy: p.clone(),
                    version: p.current_version,
                    changed: false,
                    platform_notes: platform_notes(&doc),
                    findings,
                    delivery: DeliveryReport::default(),
                });
            }
        }
        let policy_id = existing
            .as_ref()
            .map_or_else(|| uuid::Uuid::new_v4().to_string(), |p| p.id.clone());
        let next = existing.as_ref().map_or(1, |p| p.current_version + 1);
        let shown = documents::masked(&doc);
        let version = PolicyVersionRow {
            policy_id: policy_id.clone(),
            version: next,
            content_hash: hex::encode(openssl::sha::sha256(shown.to_string().as_bytes())),
            document: shown,
            document_sealed: documents::seal(&self.sealer, &policy_id, next, &doc)?,
            created_by: actor.to_owned(),
            created_at: Utc::now(),
            note,
        };
        let event = NewEvent::new(
            kinds::ADMIN_POLICY_SAVED,
            format!("policy {name} saved (version {next})"),
        )
        .actor(actor)
        .data(serde_json::json!({
            "policy": name,
            "findings": findings.iter().map(|f| &f.rule).collect::<Vec<_>>(),
        }));
        let policy = self.store.save_policy_version(name, version, event).await?;
        if policy.current_version != next {
            // Another admin saved a version in between: the seal is bound to the
            // version number, so this save is refused rather than stored unreadable.
            return Err(PolicyError::Service(ServiceError::Conflict(format!(
                "policy {name} changed while saving (now version {}); try again",
                policy.current_version
            ))));
        }
        let delivery = self.deliver(actor, None, false).await?;
        Ok(SaveOutcome {
            version: policy.current_version,
            policy,
            changed: true,
            platform_notes: platform_notes(&doc),
            findings,
            delivery,
        })
    }

    /// What saving `doc` would change: the fields, and the devices that would get a
    /// new profile (in `group` only, if given). Nothing is written.
    pub async fn diff(
        &self,
        name: &str,
        mut doc: PolicyDocument,
        group: Option<&str>,
    ) -> PolicyResult<DiffReport> {
        let existing = self.store.policy(name).await?;
        let current = match &existing {
            Some(p) => Some(self.current_document(p).await?),
            None => None,
        };
        documents::unmask(&mut doc, current.as_ref().map(|c| &c.1)).map_err(
            |(path, message)| {
                PolicyError::Invalid(vec![FieldProblem {
                    path,
                    message,
                    allowed: None,
                }])
            },
        )?;
        validated(&doc)?;
        let before = current
            .as_ref()
            .map(|(v, _)| v.document.clone())
            .unwrap_or(serde_json::json!({}));
        let changes = documents::diff(&before, &documents::masked(&doc));
        let policy_id = existing
            .as_ref()
            .map_or_else(|| "(new)".to_owned(), |p| p.id.clone());
        let mut overrides = HashMap::new();
        overrides.insert(policy_id.clone(), doc.clone());
        let mut world = World::load(self.store.as_ref(), &self.sealer, None, &overrides).await?;
        world
            .names
            .entry(policy_id.clone())
            .or_insert(name.to_owned());
        if let Some(group) = group {
            let g = self.group_named(group).await?;
            if existing.is_none() {
                // A new policy is diffed as if assigned to the group.
                world.assignments.push(AssignmentRow {
                    id: "(diff)".into(),
                    policy_id: policy_id.clone(),
                    target_kind: "group".into(),
                    target: g.id.clone(),
                    precedence: 0,
                    created_by: String::new(),
                    created_at: Utc::now(),
                });
            }
            let members = self.members_in(&world, &g);
            world.targets.retain(|t| members.contains(&t.device_id));
        }
        let mut delivery = DeliveryReport {
            dry_run: true,
            ..Default::default()
        };
        self.deliverer()
            .deliver_apple(&world, true, "diff", &mut delivery)
            .await?;
        Ok(DiffReport {
            policy: name.to_owned(),
            current_version: existing.map(|p| p.current_version),
            changes,
            findings: findings_of(&doc),
            platform_notes: platform_notes(&doc),
            delivery,
        })
    }

    /// Makes an earlier version current again (as a new version with its content).
    pub async fn restore(
        &self,
        actor: &str,
        name: &str,
        version: i32,
    ) -> PolicyResult<SaveOutcome> {
        let policy = self.policy_named(name).await?;
        let row = self
            .store
            .policy_version(&policy.id, version)
            .await?
            .ok_or_else(|| {
                ServiceError::NotFound(format!("policy {name} has no version {version}"))
            })?;
        let doc = documents::open(&self.sealer, &policy.id, version, &row.document_sealed)?;
        self.save(
            actor,
            name,
            doc,
            Some(format!("restored from version {version}")),
        )
        .await
    }

    /// Compiles and delivers for every device (or these), queueing only changes.
    pub async fn deliver(
        &self,
        actor: &str,
        scope: Option<&[String]>,
        dry_run: bool,
    ) -> ServiceResult<DeliveryReport> {
        let world = World::load(self.store.as_ref(), &self.sealer, scope, &HashMap::new()).await?;
        let mut report = DeliveryReport {
            dry_run,
            ..Default::default()
        };
        self.deliverer()
            .deliver_apple(&world, dry_run, actor, &mut report)
            .await?;
        if !report.installed_on.is_empty() || !report.removed_from.is_empty() {
            let mut woken: Vec<String> = report
                .installed_on
                .iter()
                .chain(&report.removed_from)
                .cloned()
                .collect();
            woken.dedup();
            if !dry_run {
                self.waker.wake(&woken).await;
            }
        }
        let mut notes = std::collections::BTreeSet::new();
        for target in world.targets.iter().filter(|t| t.platform == "android") {
            let content = android_content_in(&world, target);
            notes.extend(content.notes);
            if !content.errors.is_empty() {
                report.problems.push(deliver::Problem {
                    device_id: target.device_id.clone(),
                    policy: String::new(),
                    message: format!(
                        "the device keeps the built-in policy: {}",
                        content.errors.join("; ")
                    ),
                });
            }
            if dry_run {
                continue;
            }
            match self
                .android
                .apply_policy_content(&target.device_id, &content.policy)
                .await
            {
                Ok(true) => report.android_updated += 1,
                Ok(false) => {}
                Err(e) => report.problems.push(deliver::Problem {
                    device_id: target.device_id.clone(),
                    policy: String::new(),
                    message: format!("Android policy not sent: {e}"),
                }),
            }
        }
        report.platform_notes.extend(notes);
        Ok(report)
    }

    pub async fn list(&self) -> ServiceResult<Vec<PolicyRow>> {
        Ok(self.store.policies().await?)
    }

    async fn assignment_views(
        &self,
        policy_id: Option<&str>,
    ) -> ServiceResult<Vec<AssignmentView>> {
        let groups = self.store.device_groups().await?;
        let names: HashMap<String, String> = self
            .store
            .policies()
            .await?
            .into_iter()
            .map(|p| (p.id, p.name))
            .collect();
        Ok(self
            .store
            .assignments()
            .await?
            .into_iter()
            .filter(|a| policy_id.is_none_or(|id| a.policy_id == id))
            .map(|a| AssignmentView {
                policy: names.get(&a.policy_id).cloned().unwrap_or_default(),
                target_name: if a.target_kind == "group" {
                    groups
                        .iter()
                        .find(|g| g.id == a.target)
                        .map_or_else(|| a.target.clone(), |g| g.name.clone())
                } else {
                    a.target.clone()
                },
                target_kind: a.target_kind,
                target: a.target,
                precedence: a.precedence,
                created_by: a.created_by,
                created_at: a.created_at,
            })
            .collect())
    }

    pub async fn show(&self, name: &str) -> ServiceResult<PolicyView> {
        let policy = self.policy_named(name).await?;
        let (version, doc) = self.current_document(&policy).await?;
        let assignments = self.assignment_views(Some(&policy.id)).await?;
        Ok(PolicyView {
            document: version.document,
            content_hash: version.content_hash,
            findings: findings_of(&doc),
            assignments,
            policy,
        })
    }

    pub async fn versions(&self, name: &str) -> ServiceResult<Vec<VersionView>> {
        let policy = self.policy_named(name).await?;
        Ok(self
            .store
            .policy_versions(&policy.id)
            .await?
            .into_iter()
            .map(Into::into)
            .collect())
    }

    pub async fn assignments(&self) -> ServiceResult<Vec<AssignmentView>> {
        self.assignment_views(None).await
    }

    async fn target_of(&self, kind: &str, target: &str) -> ServiceResult<String> {
        match kind {
            "group" => Ok(self.group_named(target).await?.id),
            "device" => {
                if self.store.device(target).await?.is_none() {
                    return Err(ServiceError::NotFound(format!("no device {target}")));
                }
                Ok(target.to_owned())
            }
            other => Err(ServiceError::BadRequest(format!(
                "an assignment targets a group or a device, not {other:?}"
            ))),
        }
    }

    pub async fn assign(
        &self,
        actor: &str,
        name: &str,
        kind: &str,
        target: &str,
        precedence: i32,
    ) -> ServiceResult<DeliveryReport> {
        let policy = self.policy_named(name).await?;
        let target_id = self.target_of(kind, target).await?;
        self.store
            .add_assignment(
                AssignmentRow {
                    id: uuid::Uuid::new_v4().to_string(),
                    policy_id: policy.id.clone(),
                    target_kind: kind.to_owned(),
                    target: target_id,
                    precedence,
                    created_by: actor.to_owned(),
                    created_at: Utc::now(),
                },
                NewEvent::new(
                    kinds::ADMIN_POLICY_ASSIGNED,
                    format!("policy {name} assigned to {kind} {target}"),
                )
                .actor(actor)
                .data(serde_json::json!({"policy": name, "target_kind": kind, "target": target, "precedence": precedence})),
            )
            .await?;
        self.deliver(actor, None, false).await
    }

    pub async fn unassign(
        &self,
        actor: &str,
        name: &str,
        kind: &str,
        target: &str,
    ) -> ServiceResult<DeliveryReport> {
        let policy = self.policy_named(name).await?;
        let target_id = self.target_of(kind, target).await?;
        let removed = self
            .store
            .remove_assignment(
                &policy.id,
                kind,
                &target_id,
                NewEvent::new(
                    kinds::ADMIN_POLICY_UNASSIGNED,
                    format!("policy {name} no longer assigned to {kind} {target}"),
                )
                .actor(actor)
                .data(serde_json::json!({"policy": name, "target_kind": kind, "target": target})),
            )
            .await?;
        if !removed {
            return Err(ServiceError::NotFound(format!(
                "policy {name} is not assigned to {kind} {target}"
            )));
        }
        self.deliver(actor, None, false).await
    }

    // ---- device groups ----

    async fn group_named(&self, name: &str) -> ServiceResult<DeviceGroupRow> {
        self.store
            .device_groups()
            .await?
            .into_iter()
            .find(|g| g.name == name || g.id == name)
            .ok_or_else(|| ServiceError::NotFound(format!("no device group named {name:?}")))
    }

    fn members_in(&self, world: &World, group: &DeviceGroupRow) -> Vec<String> {
        world
            .targets
            .iter()
            .filter(|t| {
                resolve::groups_of(t, world.user_of(t), std::slice::from_ref(group))
                    .contains(&group.id)
            })
            .map(|t| t.device_id.clone())
            .collect()
    }

    pub async fn create_group(&self, actor: &str, req: NewGroup) -> ServiceResult<GroupView> {
        let name = req.name.trim();
        if name.is_empty() || name.chars().count() > 64 || name.chars().any(char::is_control) {
            return Err(ServiceError::BadRequest(
                "name: 1 to 64 characters, no control characters".into(),
            ));
        }
        if !resolve::GROUP_KINDS.contains(&req.kind.as_str()) {
            return Err(ServiceError::BadRequest(format!(
                "kind: {:?} is not a group kind; allowed: {}",
                req.kind,
                resolve::GROUP_KINDS.join(", ")
            )));
        }
        let match_value = req.match_value.filter(|m| !m.trim().is_empty());
        if req.kind == "manual" && match_value.is_some() {
            return Err(ServiceError::BadRequest(
                "match: a manual group has members, not a rule".into(),
            ));
        }
        if req.kind != "manual" && match_value.is_none() {
            return Err(ServiceError::BadRequest(format!(
                "match: a {} group needs the name it matches",
                req.kind
            )));
        }
        let group = DeviceGroupRow {
            id: uuid::Uuid::new_v4().to_string(),
            name: name.to_owned(),
            kind: req.kind.clone(),
            match_value,
            description: req.description,
            created_at: Utc::now(),
        };
        self.store
            .create_device_group(
                group.clone(),
                NewEvent::new(
                    kinds::ADMIN_DEVICE_GROUP_CHANGED,
                    format!("device group {name} created"),
                )
                .actor(actor)
                .data(serde_json::json!({"group": name, "kind": req.kind, "change": "created"})),
            )
            .await?;
        self.group(&group.name).await
    }

    pub async fn groups(&self) -> ServiceResult<Vec<GroupView>> {
        let world = World::load(self.store.as_ref(), &self.sealer, None, &HashMap::new()).await?;
        Ok(world
            .groups
            .iter()
            .map(|g| GroupView {
                devices: self.members_in(&world, g),
                group: g.clone(),
            })
            .collect())
    }

    pub async fn group(&self, name: &str) -> ServiceResult<GroupView> {
        let group = self.group_named(name).await?;
        let world = World::load(self.store.as_ref(), &self.sealer, None, &HashMap::new()).await?;
        Ok(GroupView {
            devices: self.members_in(&world, &group),
            group,
        })
    }

    pub async fn delete_group(&self, actor: &str, name: &str) -> ServiceResult<DeliveryReport> {
        let group = self.group_named(name).await?;
        self.store
            .delete_device_group(
                &group.id,
                NewEvent::new(
                    kinds::ADMIN_DEVICE_GROUP_CHANGED,
                    format!("device group {name} deleted"),
                )
                .actor(actor)
                .data(serde_json::json!({"group": name, "change": "deleted"})),
            )
            .await?;
        self.deliver(actor, None, false).await
    }

    pub async fn change_members(
        &self,
        actor: &str,
        name: &str,
        add: Vec<String>,
        remove: Vec<String>,
    ) -> ServiceResult<DeliveryReport> {
        let group = self.group_named(name).await?;
        if group.kind != "manual" {
            return Err(ServiceError::BadRequest(format!(
                "group {name} is a {} group: its members follow its rule",
                group.kind
            )));
        }
        let found = self.store.existing_devices(&add).await?;
        if found.len() != add.len() {
            let known: std::collections::HashSet<&str> =
                found.iter().map(|(id, _)| id.as_str()).collect();
            let missing: Vec<&str> = add
                .iter()
                .map(String::as_str)
                .filter(|id| !known.contains(id))
                .take(10)
                .collect();
            return Err(ServiceError::NotFound(format!(
                "unknown device id(s): {}; nothing was changed",
                missing.join(", ")
            )));
        }
        let mut scope: Vec<String> = add.iter().chain(&remove).cloned().collect();
        scope.sort();
        scope.dedup();
        self.store
            .change_group_members(
                &group.id,
                &add,
                &remove,
                NewEvent::new(
                    kinds::ADMIN_DEVICE_GROUP_CHANGED,
                    format!(
                        "device group {name}: {} added, {} removed",
                        add.len(),
                        remove.len()
                    ),
                )
                .actor(actor)
                .data(serde_json::json!({"group": name, "change": "members", "added": add.len(), "removed": remove.len()})),
            )
            .await?;
        self.deliver(actor, Some(&scope), false).await
    }

    // ---- compliance ----

    /// Evaluates these devices and stores the result; a device falling out of
    /// compliance emits `device.compliance_changed` (severity 2), which files an
    /// incident, and one coming back emits it at severity 0.
    pub async fn evaluate(
        &self,
        device_ids: &[String],
    ) -> ServiceResult<Vec<(String, compliance::Evaluation)>> {
        let world = World::load(
            self.store.as_ref(),
            &self.sealer,
            Some(device_ids),
            &HashMap::new(),
        )
        .await?;
        let mut outputs: HashMap<String, Vec<crate::storage::PolicyOutputRow>> = HashMap::new();
        for o in self.store.policy_outputs(device_ids).await? {
            outputs.entry(o.device_id.clone()).or_default().push(o);
        }
        let mut results = Vec::new();
        // The Apple devices' reported state in one batched read, not one per device.
        let apple_ids: Vec<String> = world
            .targets
            .iter()
            .filter(|t| t.platform != "android")
            .map(|t| t.device_id.clone())
            .collect();
        let mut apple: HashMap<String, crate::domain::Device> = self
            .store
            .devices_by_id(&apple_ids)
            .await?
            .into_iter()
            .map(|d| (d.id.clone(), d))
            .collect();
        for target in &world.targets {
            let ids = world.policies_of(target);
            let docs: Vec<(String, &PolicyDocument)> = ids
                .iter()
                .map(|id| (world.name(id), &world.documents[id].1))
                .collect();
            let evaluation = if target.platform == "android" {
                let Some(state) = self.store.android_device(&target.device_id).await? else {
                    continue;
                };
                compliance::evaluate_android(&state.record, &docs)
            } else {
                let Some(device) = apple.remove(&target.device_id) else {
                    continue;
                };
                let mine: Vec<(String, &crate::storage::PolicyOutputRow)> = outputs
                    .get(&target.device_id)
                    .into_iter()
                    .flatten()
                    .map(|o| (world.name(&o.policy_id), o))
                    .collect();
                compliance::evaluate_apple(&device, &docs, &mine)
            };
            let event = NewEvent::new(
                kinds::DEVICE_COMPLIANCE_CHANGED,
                if evaluation.compliant {
                    format!("device {} is compliant", target.device_id)
                } else {
                    format!(
                        "device {} is not compliant: {}",
                        target.device_id,
                        evaluation.reasons.join("; ")
                    )
                },
            )
            .device(&target.device_id)
            .actor("policies")
            .severity(if evaluation.compliant {
                severity::NON_CRITICAL
            } else {
                severity::MEDIUM
            })
            .data(serde_json::json!({
                "compliant": evaluation.compliant,
                "reasons": evaluation.reasons,
                "platform": target.platform,
            }));
            self.store
                .set_compliance(
                    &target.device_id,
                    evaluation.compliant,
                    &evaluation.reasons,
                    Utc::now(),
                    Some(event),
                )
                .await?;
            results.push((target.device_id.clone(), evaluation));
        }
        Ok(results)
    }

    /// Queues SecurityInfo and ProfileList to these Apple devices: their answers
    /// feed [`Self::evaluate`].
    pub async fn query_state(&self, actor: &str, device_ids: &[String]) -> ServiceResult<usize> {
        let world = World::load(
            self.store.as_ref(),
            &self.sealer,
            Some(device_ids),
            &HashMap::new(),
        )
        .await?;
        let mut commands = Vec::new();
        for target in world.targets.iter().filter(|t| t.platform == "apple") {
            for spec in [
                profiles::commands::CommandSpec::SecurityInfo,
                profiles::commands::CommandSpec::ProfileList,
            ] {
                commands.push(self.deliverer().command(target, &spec, actor)?);
            }
        }
        if commands.is_empty() {
            return Ok(0);
        }
        let devices: Vec<String> = world
            .targets
            .iter()
            .filter(|t| t.platform == "apple")
            .map(|t| t.device_id.clone())
            .collect();
        let n = commands.len();
        self.store.enqueue(commands, Vec::new()).await?;
        self.waker.wake(&devices).await;
        Ok(n)
    }
}
