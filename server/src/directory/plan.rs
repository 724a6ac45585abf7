//! What a sync, a CSV import or an admin's edit changes in the stored users and
//! groups, worked out from the tables as they are (read in the transaction that
//! writes the result). Pure: no I/O, so every rule is tested here.
//!
//! Sync rules (docs/directory.md):
//! - an entry is the stored user with its external id (entryUUID, objectGUID, DN),
//!   else the user with its username (ignoring case; a CSV or hand-made user is taken
//!   over by the directory, a user re-created in the directory keeps its history);
//!   else a new user;
//! - a stored directory user no entry matched is disabled with the reason "removed
//!   from the directory", never deleted;
//! - an entry the directory marks disabled disables the user ("disabled in the
//!   directory"); when it no longer does, a user disabled by the directory (or
//!   removed from it) is enabled again; one disabled by hand stays disabled;
//! - groups the same way (external id, then name); a directory group's members are
//!   the directory's; a directory group that is gone is deleted (groups carry no
//!   history);
//! - an answer with no user at all while directory users are stored is refused: a
//!   wrong base DN or filter must not disable everyone.

use super::{kinds, normalize_dn, reasons, sources, LdapUser, Snapshot};
use crate::domain::NewEvent;
use crate::storage::{
    DirectoryGroupRecord, DirectoryPlan, DirectoryRefusal, DirectoryState, DirectorySyncStatus,
    DirectoryUserRecord,
};
use chrono::{DateTime, Utc};
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

/// Most warnings a sync reports (the count is always whole).
const MAX_WARNINGS: usize = 50;

pub const MAX_USERNAME: usize = 255;
pub const MAX_TEXT: usize = 512;
pub const MAX_DEPARTMENT: usize = 255;
pub const MAX_GROUP: usize = 255;

fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Text as the database takes it: no control characters (PostgreSQL refuses NUL),
/// trimmed, at most `max` characters.
fn clean(s: &str, max: usize) -> String {
    s.chars()
        .filter(|c| !c.is_control())
        .collect::<String>()
        .trim()
        .chars()
        .take(max)
        .collect()
}

/// Which fields of a user differ.
fn changed_fields(old: &DirectoryUserRecord, new: &DirectoryUserRecord) -> Vec<&'static str> {
    let mut changed = Vec::new();
    if old.username != new.username {
        changed.push("username");
    }
    if old.upn != new.upn {
        changed.push("upn");
    }
    if old.email != new.email {
        changed.push("email");
    }
    if old.display_name != new.display_name {
        changed.push("display_name");
    }
    if old.department != new.department {
        changed.push("department");
    }
    changed
}

/// The same row apart from bookkeeping times.
fn same_row(a: &DirectoryUserRecord, b: &DirectoryUserRecord) -> bool {
    let strip = |u: &DirectoryUserRecord| DirectoryUserRecord {
        synced_at: None,
        updated_at: u.created_at,
        ..u.clone()
    };
    strip(a) == strip(b)
}

/// Who changed what, collected while planning, written as events at the end.
#[derive(Default)]
struct Changes {
    /// user id -> changed fields ("groups" for memberships, "created").
    fields: BTreeMap<String, BTreeSet<&'static str>>,
    renamed_from: HashMap<String, String>,
}

impl Changes {
    fn mark(&mut self, user_id: &str, field: &'static str) {
        self.fields
            .entry(user_id.to_owned())
            .or_default()
            .insert(field);
    }

    fn events(self, names: &HashMap<String, String>, actor: Option<&str>, out: &mut Vec<NewEvent>) {
        for (id, fields) in self.fields {
            let Some(username) = names.get(&id) else {
                continue;
            };
            let fields: Vec<&str> = fields.into_iter().collect();
            let mut data = json!({ "username": username, "changed": fields });
            if let Some(old) = self.renamed_from.get(&id) {
                data["previous_username"] = json!(old);
            }
            let mut event = NewEvent::new(
                kinds::USER_CHANGED,
                format!("user {username}: {} changed", fields.join(", ")),
            )
            .data(data);
            if let Some(a) = actor {
                event = event.actor(a);
            }
            out.push(event);
        }
    }
}

/// Membership of the state, by group and by user.
struct Members {
    by_group: HashMap<String, HashSet<String>>,
}

impl Members {
    fn of(state: &DirectoryState) -> Members {
        let mut by_group: HashMap<String, HashSet<String>> = HashMap::new();
        for (g, u) in &state.members {
            by_group.entry(g.clone()).or_default().insert(u.clone());
        }
        Members { by_group }
    }
}

/// A sync: the directory as read (`snapshot`) against the tables (`state`).
pub fn sync(
    state: &DirectoryState,
    snapshot: &Snapshot,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<DirectoryPlan, DirectoryRefusal> {
    let mut plan = DirectoryPlan::default();
    let mut warnings: Vec<String> = snapshot.warnings.clone();
    let mut changes = Changes::default();
    let mut counts: BTreeMap<&str, u64> = BTreeMap::new();
    let count = |k: &'static str, counts: &mut BTreeMap<&str, u64>| {
        *counts.entry(k).or_default() += 1;
    };

    let stored_active = state
        .users
        .iter()
        .filter(|u| u.source == sources::LDAP && !u.disabled)
        .count();
    if snapshot.users.is_empty() && stored_active > 0 {
        return Err(DirectoryRefusal::Conflict(format!(
            "the directory returned no users; refusing to flag the {stored_active} directory users stored here \
             as removed (check base_dn and user_filter)"
        )));
    }

    // The entries, each external id and username once.
    let mut entries: Vec<LdapUser> = Vec::new();
    {
        let mut ext_seen = HashSet::new();
        let mut name_seen = HashSet::new();
        for e in &snapshot.users {
            let username = clean(&e.username, usize::MAX);
            if username.is_empty() || username.chars().count() > MAX_USERNAME {
                warnings.push(format!(
                    "{}: username {:?} is empty or longer than {MAX_USERNAME} characters, left out",
                    e.dn, e.username
                ));
                continue;
            }
            if !ext_seen.insert(e.external_id.to_lowercase()) {
                warnings.push(format!("{}: the same entry twice, left out", e.dn));
                continue;
            }
            if !name_seen.insert(username.to_lowercase()) {
                warnings.push(format!(
                    "{}: username {username} is taken by another entry, left out",
                    e.dn
                ));
                continue;
            }
            entries.push(LdapUser {
                username,
                upn: clean(&e.upn, MAX_TEXT),
                email: clean(&e.email, MAX_TEXT),
                display_name: clean(&e.display_name, MAX_TEXT),
                department: e
                    .department
                    .as_deref()
                    .map(|d| clean(d, MAX_DEPARTMENT))
                    .filter(|d| !d.is_empty()),
                ..e.clone()
            });
        }
    }

    // Match entries to stored users: external id first, then username.
    let by_ext: HashMap<&str, usize> = state
        .users
        .iter()
        .enumerate()
        .filter(|(_, u)| u.source == sources::LDAP)
        .filter_map(|(i, u)| u.external_id.as_deref().map(|x| (x, i)))
        .collect();
    let by_name: HashMap<String, usize> = state
        .users
        .iter()
        .enumerate()
        .map(|(i, u)| (u.username.to_lowercase(), i))
        .collect();
    let mut matched: Vec<Option<usize>> = vec![None; entries.len()];
    let mut claimed: HashSet<usize> = HashSet::new();
    for (i, e) in entries.iter().enumerate() {
        if let Some(&si) = by_ext.get(e.external_id.as_str()) {
            matched[i] = Some(si);
            claimed.insert(si);
        }
    }
    for (i, e) in entries.iter().enumerate() {
        if matched[i].is_some() {
            continue;
        }
        if let Some(&si) = by_name.get(&e.username.to_lowercase()) {
            if claimed.insert(si) {
                matched[i] = Some(si);
            }
        }
    }

    // user id of each entry (for groups), by DN and by username.
    let mut id_by_dn: HashMap<String, String> = HashMap::new();
    let mut id_by_name: HashMap<String, String> = HashMap::new();
    let mut final_names: HashMap<String, String> = state
        .users
        .iter()
        .map(|u| (u.id.clone(), u.username.clone()))
        .collect();

    // Known users first (their renames free names), then new ones.
    let order: Vec<usize> = (0..entries.len())
        .filter(|i| matched[*i].is_some())
        .chain((0..entries.len()).filter(|i| matched[*i].is_none()))
        .collect();
    let mut taken: Option<HashSet<String>> = None;
    for i in order {
        let e = &entries[i];
        let id = match matched[i] {
            Some(si) => {
                let old = &state.users[si];
                let mut new = old.clone();
                let renamed = old.username != e.username;
                if renamed {
                    // A name still held by another stored user cannot be taken in the
                    // same transaction without an order of renames: left for a later
                    // sync, once that user has moved on.
                    if let Some(&holder) = by_name.get(&e.username.to_lowercase()) {
                        if holder != si {
                            warnings.push(format!(
                                "{}: cannot rename {} to {}: that username is held by another user",
                                e.dn, old.username, e.username
                            ));
                            plan.touch_users.push(old.id.clone());
                            id_by_dn.insert(normalize_dn(&e.dn), old.id.clone());
                            id_by_name.insert(old.username.to_lowercase(), old.id.clone());
                            continue;
                        }
                    }
                }
                new.username = e.username.clone();
                new.upn = e.upn.clone();
                new.email = e.email.clone();
                new.display_name = e.display_name.clone();
                new.department = e.department.clone();
                new.source = sources::LDAP.into();
                new.external_id = Some(e.external_id.clone());
                let by_directory = matches!(
                    old.disabled_reason.as_deref(),
                    Some(reasons::DISABLED_IN_DIRECTORY) | Some(reasons::REMOVED_FROM_DIRECTORY)
                );
                if e.disabled {
                    if !old.disabled {
                        new.disabled = true;
                        new.disabled_reason = Some(reasons::DISABLED_IN_DIRECTORY.into());
                        new.disabled_at = Some(now);
                        count("disabled", &mut counts);
                        plan.events.push(
                            NewEvent::new(
                                kinds::USER_DISABLED,
                                format!("user {} disabled in the directory", e.username),
                            )
                            .data(json!({ "username": e.username, "reason": reasons::DISABLED_IN_DIRECTORY })),
                        );
                    } else if old.disabled_reason.as_deref()
                        == Some(reasons::REMOVED_FROM_DIRECTORY)
                    {
                        new.disabled_reason = Some(reasons::DISABLED_IN_DIRECTORY.into());
                    }
                } else if old.disabled && by_directory {
                    new.disabled = false;
                    new.disabled_reason = None;
                    new.disabled_at = None;
                    count("enabled", &mut counts);
                    plan.events.push(
                        NewEvent::new(
                            kinds::USER_ENABLED,
                            format!("user {} enabled again in the directory", e.username),
                        )
                        .data(json!({ "username": e.username })),
                    );
                }
                let fields = changed_fields(old, &new);
                for f in &fields {
                    changes.mark(&old.id, f);
                }
                if renamed {
                    changes
                        .renamed_from
                        .insert(old.id.clone(), old.username.clone());
                    plan.renames
                        .push((old.username.clone(), new.username.clone()));
                }
                new.synced_at = Some(now);
                if same_row(old, &new) {
                    plan.touch_users.push(old.id.clone());
                    count("unchanged", &mut counts);
                } else {
                    new.updated_at = now;
                    if !fields.is_empty() {
                        count("updated", &mut counts);
                    } else {
                        count("unchanged", &mut counts);
                    }
                    plan.update_users.push(new);
                }
                final_names.insert(old.id.clone(), e.username.clone());
                old.id.clone()
            }
            None => {
                let taken = taken.get_or_insert_with(|| {
                    final_names.values().map(|n| n.to_lowercase()).collect()
                });
                if !taken.insert(e.username.to_lowercase()) {
                    warnings.push(format!(
                        "{}: username {} is still held by another user, left out",
                        e.dn, e.username
                    ));
                    continue;
                }
                let id = new_id();
                plan.insert_users.push(DirectoryUserRecord {
                    id: id.clone(),
                    username: e.username.clone(),
                    upn: e.upn.clone(),
                    email: e.email.clone(),
                    display_name: e.display_name.clone(),
                    department: e.department.clone(),
                    source: sources::LDAP.into(),
                    external_id: Some(e.external_id.clone()),
                    disabled: e.disabled,
                    disabled_reason: e
                        .disabled
                        .then(|| reasons::DISABLED_IN_DIRECTORY.to_owned()),
                    disabled_at: e.disabled.then_some(now),
                    synced_at: Some(now),
                    created_at: now,
                    updated_at: now,
                });
                count("created", &mut counts);
                changes.mark(&id, "created");
                final_names.insert(id.clone(), e.username.clone());
                id
            }
        };
        id_by_dn.insert(normalize_dn(&e.dn), id.clone());
        id_by_name.insert(e.username.to_lowercase(), id);
    }

    // Stored directory users no entry matched: removed from the directory.
    for (si, old) in state.users.iter().enumerate() {
        if old.source != sources::LDAP || claimed.contains(&si) {
            continue;
        }
        if old.disabled_reason.as_deref() == Some(reasons::REMOVED_FROM_DIRECTORY) {
            continue;
        }
        let mut new = old.clone();
        new.disabled = true;
        new.disabled_reason = Some(reasons::REMOVED_FROM_DIRECTORY.into());
        new.disabled_at = old.disabled_at.filter(|_| old.disabled).or(Some(now));
        new.updated_at = now;
        plan.update_users.push(new);
        count("removed", &mut counts);
        plan.events.push(
            NewEvent::new(
                kinds::USER_REMOVED,
                format!(
                    "user {} is no longer in the directory: disabled",
                    old.username
                ),
            )
            .data(json!({ "username": old.username, "reason": reasons::REMOVED_FROM_DIRECTORY })),
        );
    }

    // Groups.
    let members = Members::of(state);
    let g_by_ext: HashMap<&str, usize> = state
        .groups
        .iter()
        .enumerate()
        .filter(|(_, g)| g.source == sources::LDAP)
        .filter_map(|(i, g)| g.external_id.as_deref().map(|x| (x, i)))
        .collect();
    let g_by_name: HashMap<String, usize> = state
        .groups
        .iter()
        .enumerate()
        .map(|(i, g)| (g.name.to_lowercase(), i))
        .collect();
    let mut g_claimed: HashSet<usize> = HashSet::new();
    let mut ext_seen = HashSet::new();
    let mut name_seen = HashSet::new();
    let mut unresolved = 0u64;
    let mut groups_in: Vec<(&super::LdapGroup, String)> = Vec::new();
    for g in &snapshot.groups {
        let name = clean(&g.name, usize::MAX);
        if name.is_empty() || name.chars().count() > MAX_GROUP {
            warnings.push(format!(
                "{}: group name {:?} is empty or longer than {MAX_GROUP} characters, left out",
                g.dn, g.name
            ));
            continue;
        }
        if !ext_seen.insert(g.external_id.to_lowercase()) || !name_seen.insert(name.to_lowercase())
        {
            warnings.push(format!(
                "{}: group {name} appears twice in the directory, left out",
                g.dn
            ));
            continue;
        }
        groups_in.push((g, name));
    }
    // External ids first, then names, as for users.
    let mut g_matched: Vec<Option<usize>> = vec![None; groups_in.len()];
    for (i, (g, _)) in groups_in.iter().enumerate() {
        if let Some(&si) = g_by_ext.get(g.external_id.as_str()) {
            g_matched[i] = Some(si);
            g_claimed.insert(si);
        }
    }
    for (i, (_, name)) in groups_in.iter().enumerate() {
        if g_matched[i].is_none() {
            if let Some(&si) = g_by_name.get(&name.to_lowercase()) {
                if g_claimed.insert(si) {
                    g_matched[i] = Some(si);
                }
            }
        }
    }
    for (i, (g, name)) in groups_in.iter().enumerate() {
        let gid = match g_matched[i] {
            Some(si) => {
                let old = &state.groups[si];
                if old.name != *name {
                    if let Some(&holder) = g_by_name.get(&name.to_lowercase()) {
                        if holder != si {
                            warnings.push(format!(
                                "{}: cannot rename group {} to {name}: that name is held by another group",
                                g.dn, old.name
                            ));
                            continue;
                        }
                    }
                }
                let new = DirectoryGroupRecord {
                    name: name.clone(),
                    source: sources::LDAP.into(),
                    external_id: Some(g.external_id.clone()),
                    updated_at: now,
                    ..old.clone()
                };
                if new.name != old.name
                    || new.source != old.source
                    || new.external_id != old.external_id
                {
                    if new.name != old.name {
                        // Its members' group names changed.
                        for u in members.by_group.get(&old.id).into_iter().flatten() {
                            changes.mark(u, "groups");
                        }
                    }
                    plan.update_groups.push(new);
                    count("groups_updated", &mut counts);
                }
                old.id.clone()
            }
            None => {
                let id = new_id();
                plan.insert_groups.push(DirectoryGroupRecord {
                    id: id.clone(),
                    name: name.clone(),
                    source: sources::LDAP.into(),
                    external_id: Some(g.external_id.clone()),
                    created_at: now,
                    updated_at: now,
                });
                count("groups_created", &mut counts);
                id
            }
        };
        let mut wanted: HashSet<String> = HashSet::new();
        for dn in &g.member_dns {
            match id_by_dn.get(&normalize_dn(dn)) {
                Some(id) => {
                    wanted.insert(id.clone());
                }
                None => unresolved += 1,
            }
        }
        for uid in &g.member_uids {
            match id_by_name.get(&uid.trim().to_lowercase()) {
                Some(id) => {
                    wanted.insert(id.clone());
                }
                None => unresolved += 1,
            }
        }
        let empty = HashSet::new();
        let current = members.by_group.get(&gid).unwrap_or(&empty);
        let mut add: Vec<&String> = wanted.difference(current).collect();
        add.sort();
        for u in add {
            plan.add_members.push((gid.clone(), u.clone()));
            changes.mark(u, "groups");
            count("memberships_added", &mut counts);
        }
        let mut remove: Vec<&String> = current.difference(&wanted).collect();
        remove.sort();
        for u in remove {
            plan.remove_members.push((gid.clone(), u.clone()));
            changes.mark(u, "groups");
            count("memberships_removed", &mut counts);
        }
    }
    for (si, old) in state.groups.iter().enumerate() {
        if old.source == sources::LDAP && !g_claimed.contains(&si) {
            plan.delete_groups.push(old.id.clone());
            count("groups_deleted", &mut counts);
            for u in members.by_group.get(&old.id).into_iter().flatten() {
                changes.mark(u, "groups");
            }
        }
    }

    changes.events(&final_names, None, &mut plan.events);
    let total_warnings = warnings.len();
    warnings.truncate(MAX_WARNINGS);
    let mut summary = json!({
        "users": entries.len(),
        "groups": groups_in.len(),
        "created": 0, "updated": 0, "unchanged": 0, "disabled": 0, "enabled": 0, "removed": 0,
        "groups_created": 0, "groups_updated": 0, "groups_deleted": 0,
        "memberships_added": 0, "memberships_removed": 0,
        "unresolved_members": unresolved,
        "paged": snapshot.paged,
        "warnings_total": total_warnings,
        "warnings": warnings,
    });
    for (k, v) in &counts {
        summary[*k] = json!(v);
    }
    plan.events.push(
        NewEvent::new(
            kinds::SYNC_COMPLETED,
            format!(
                "directory sync: {} users ({} new, {} changed, {} disabled, {} removed), {} groups",
                entries.len(),
                counts.get("created").unwrap_or(&0),
                counts.get("updated").unwrap_or(&0),
                counts.get("disabled").unwrap_or(&0),
                counts.get("removed").unwrap_or(&0),
                groups_in.len()
            ),
        )
        .actor(actor)
        .data(summary.clone()),
    );
    plan.sync_status = Some(DirectorySyncStatus {
        at: now,
        status: "ok".into(),
        error: None,
        counts: summary.clone(),
    });
    plan.summary = summary;
    Ok(plan)
}

/// A user as a CSV row or an admin gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserInput {
    /// The row of a CSV file (for messages), 0 for an admin's request.
    pub row: usize,
    pub username: String,
    pub upn: String,
    pub email: String,
    pub display_name: String,
    pub department: Option<String>,
    /// None: memberships are left as they are.
    pub groups: Option<Vec<String>>,
}

fn at(row: usize, column: &str) -> String {
    if row == 0 {
        column.to_owned()
    } else {
        format!("row {row}, column {column}")
    }
}

fn check_text(
    errors: &mut Vec<String>,
    row: usize,
    column: &str,
    value: &str,
    max: usize,
    required: bool,
) {
    if required && value.trim().is_empty() {
        errors.push(format!("{}: must not be empty", at(row, column)));
    } else if value.chars().count() > max {
        errors.push(format!("{}: longer than {max} characters", at(row, column)));
    } else if value.chars().any(char::is_control) {
        errors.push(format!("{}: contains a control character", at(row, column)));
    }
}

fn check_address(errors: &mut Vec<String>, row: usize, column: &str, value: &str) {
    let ok = match value.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && !domain.is_empty()
                && !domain.contains('@')
                && !value.chars().any(char::is_whitespace)
        }
        None => false,
    };
    if !ok {
        errors.push(format!(
            "{}: {value:?} is not an address of the form name@domain",
            at(row, column)
        ));
    }
}

/// Checks one user's fields: every problem, each with its row and column.
pub fn check_user(input: &UserInput) -> Vec<String> {
    let mut errors = Vec::new();
    let r = input.row;
    check_text(
        &mut errors,
        r,
        "username",
        &input.username,
        MAX_USERNAME,
        true,
    );
    if input.username.chars().any(char::is_whitespace) {
        errors.push(format!("{}: must not contain spaces", at(r, "username")));
    }
    check_text(&mut errors, r, "upn", &input.upn, MAX_TEXT, true);
    if errors.iter().all(|e| !e.starts_with(&at(r, "upn"))) {
        check_address(&mut errors, r, "upn", &input.upn);
    }
    check_text(&mut errors, r, "email", &input.email, MAX_TEXT, true);
    if errors.iter().all(|e| !e.starts_with(&at(r, "email"))) {
        check_address(&mut errors, r, "email", &input.email);
    }
    check_text(
        &mut errors,
        r,
        "display_name",
        &input.display_name,
        MAX_TEXT,
        true,
    );
    if let Some(d) = &input.department {
        check_text(&mut errors, r, "department", d, MAX_DEPARTMENT, false);
    }
    for g in input.groups.iter().flatten() {
        if g.chars().count() > MAX_GROUP || g.chars().any(char::is_control) {
            errors.push(format!(
                "{}: group {g:?} is longer than {MAX_GROUP} characters or holds a control character",
                at(r, "groups")
            ));
        }
    }
    errors
}

/// Local (CSV, hand-made) groups and memberships being planned.
struct LocalGroups<'a> {
    state: &'a DirectoryState,
    by_name: HashMap<String, (String, String)>, // lower name -> (id, source)
    members: Members,
    source: &'static str,
}

impl<'a> LocalGroups<'a> {
    fn new(state: &'a DirectoryState, source: &'static str) -> Self {
        LocalGroups {
            state,
            by_name: state
                .groups
                .iter()
                .map(|g| (g.name.to_lowercase(), (g.id.clone(), g.source.clone())))
                .collect(),
            members: Members::of(state),
            source,
        }
    }

    /// Sets a user's memberships in groups outside the directory to `names`
    /// (creating missing groups); true when they changed.
    fn set(
        &mut self,
        plan: &mut DirectoryPlan,
        errors: &mut Vec<String>,
        row: usize,
        user_id: &str,
        names: &[String],
        now: DateTime<Utc>,
    ) -> bool {
        let mut wanted: BTreeSet<String> = BTreeSet::new();
        for name in names {
            let name = name.trim();
            if name.is_empty() {
                continue;
            }
            let id = match self.by_name.get(&name.to_lowercase()) {
                Some((_, source)) if source == sources::LDAP => {
                    errors.push(format!(
                        "{}: group {name:?} comes from the directory; its members are set by the directory sync",
                        at(row, "groups")
                    ));
                    continue;
                }
                Some((id, _)) => id.clone(),
                None => {
                    let id = new_id();
                    plan.insert_groups.push(DirectoryGroupRecord {
                        id: id.clone(),
                        name: name.to_owned(),
                        source: self.source.into(),
                        external_id: None,
                        created_at: now,
                        updated_at: now,
                    });
                    self.by_name
                        .insert(name.to_lowercase(), (id.clone(), self.source.into()));
                    id
                }
            };
            wanted.insert(id);
        }
        let current: BTreeSet<String> = self
            .members
            .by_group
            .iter()
            .filter(|(_, users)| users.contains(user_id))
            .map(|(g, _)| g.clone())
            .filter(|g| {
                self.state
                    .groups
                    .iter()
                    .any(|sg| &sg.id == g && sg.source != sources::LDAP)
            })
            .collect();
        let mut changed = false;
        for g in wanted.difference(&current) {
            plan.add_members.push((g.clone(), user_id.to_owned()));
            self.members
                .by_group
                .entry(g.clone())
                .or_default()
                .insert(user_id.to_owned());
            changed = true;
        }
        for g in current.difference(&wanted) {
            plan.remove_members.push((g.clone(), user_id.to_owned()));
            if let Some(users) = self.members.by_group.get_mut(g) {
                users.remove(user_id);
            }
            changed = true;
        }
        changed
    }
}

fn find<'a>(state: &'a DirectoryState, username: &str) -> Option<&'a DirectoryUserRecord> {
    state
        .users
        .iter()
        .find(|u| u.username == username)
        .or_else(|| {
            let lower = username.to_lowercase();
            state
                .users
                .iter()
                .find(|u| u.username.to_lowercase() == lower)
        })
}

/// A CSV import: every row is created or updated, or (any error) nothing is.
/// Users from the directory cannot be imported over, nor put in its groups.
pub fn import(
    state: &DirectoryState,
    rows: &[UserInput],
    actor: &str,
    now: DateTime<Utc>,
) -> Result<DirectoryPlan, DirectoryRefusal> {
    let mut plan = DirectoryPlan::default();
    let mut errors = Vec::new();
    let mut changes = Changes::default();
    let mut groups = LocalGroups::new(state, sources::CSV);
    let mut names: HashMap<String, String> = state
        .users
        .iter()
        .map(|u| (u.id.clone(), u.username.clone()))
        .collect();
    let (mut created, mut updated, mut unchanged) = (0u64, 0u64, 0u64);
    let mut seen: HashMap<String, usize> = HashMap::new();
    for input in rows {
        if let Some(first) = seen.insert(input.username.to_lowercase(), input.row) {
            errors.push(format!(
                "{}: {} is also in row {first}",
                at(input.row, "username"),
                input.username
            ));
            continue;
        }
        let problems = check_user(input);
        if !problems.is_empty() {
            errors.extend(problems);
            continue;
        }
        let id = match find(state, &input.username) {
            Some(old) if old.source == sources::LDAP => {
                errors.push(format!(
                    "{}: {} comes from the directory; the directory sync sets its attributes",
                    at(input.row, "username"),
                    old.username
                ));
                continue;
            }
            Some(old) => {
                let new = DirectoryUserRecord {
                    upn: input.upn.trim().to_owned(),
                    email: input.email.trim().to_owned(),
                    display_name: input.display_name.trim().to_owned(),
                    department: input
                        .department
                        .as_deref()
                        .map(str::trim)
                        .filter(|d| !d.is_empty())
                        .map(str::to_owned),
                    updated_at: now,
                    ..old.clone()
                };
                let fields = changed_fields(old, &new);
                if fields.is_empty() {
                    unchanged += 1;
                } else {
                    updated += 1;
                    for f in fields {
                        changes.mark(&old.id, f);
                    }
                    plan.update_users.push(new);
                }
                old.id.clone()
            }
            None => {
                let id = new_id();
                plan.insert_users.push(DirectoryUserRecord {
                    id: id.clone(),
                    username: input.username.trim().to_owned(),
                    upn: input.upn.trim().to_owned(),
                    email: input.email.trim().to_owned(),
                    display_name: input.display_name.trim().to_owned(),
                    department: input
                        .department
                        .as_deref()
                        .map(str::trim)
                        .filter(|d| !d.is_empty())
                        .map(str::to_owned),
                    source: sources::CSV.into(),
                    external_id: None,
                    disabled: false,
                    disabled_reason: None,
                    disabled_at: None,
                    synced_at: None,
                    created_at: now,
                    updated_at: now,
                });
                names.insert(id.clone(), input.username.trim().to_owned());
                changes.mark(&id, "created");
                created += 1;
                id
            }
        };
        if let Some(list) = &input.groups {
            if groups.set(&mut plan, &mut errors, input.row, &id, list, now) {
                changes.mark(&id, "groups");
            }
        }
    }
    if !errors.is_empty() {
        return Err(DirectoryRefusal::Invalid(errors));
    }
    // A user counted unchanged whose groups changed is an update too.
    let summary = json!({
        "rows": rows.len(),
        "created": created,
        "updated": updated,
        "unchanged": unchanged,
        "groups_created": plan.insert_groups.len(),
        "memberships_added": plan.add_members.len(),
        "memberships_removed": plan.remove_members.len(),
    });
    changes.events(&names, Some(actor), &mut plan.events);
    plan.events.push(
        NewEvent::new(
            kinds::ADMIN_USERS_IMPORTED,
            format!(
                "CSV import: {} rows, {created} users created, {updated} updated",
                rows.len()
            ),
        )
        .actor(actor)
        .data(summary.clone()),
    );
    plan.summary = summary;
    Ok(plan)
}

/// A user made by hand.
pub fn create_user(
    state: &DirectoryState,
    input: &UserInput,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<DirectoryPlan, DirectoryRefusal> {
    let problems = check_user(input);
    if !problems.is_empty() {
        return Err(DirectoryRefusal::Invalid(problems));
    }
    if let Some(old) = find(state, &input.username) {
        return Err(DirectoryRefusal::Conflict(format!(
            "user {} exists already (source {})",
            old.username, old.source
        )));
    }
    let mut plan = DirectoryPlan::default();
    let id = new_id();
    let user = DirectoryUserRecord {
        id: id.clone(),
        username: input.username.trim().to_owned(),
        upn: input.upn.trim().to_owned(),
        email: input.email.trim().to_owned(),
        display_name: input.display_name.trim().to_owned(),
        department: input
            .department
            .as_deref()
            .map(str::trim)
            .filter(|d| !d.is_empty())
            .map(str::to_owned),
        source: sources::MANUAL.into(),
        external_id: None,
        disabled: false,
        disabled_reason: None,
        disabled_at: None,
        synced_at: None,
        created_at: now,
        updated_at: now,
    };
    plan.insert_users.push(user.clone());
    let mut errors = Vec::new();
    if let Some(list) = &input.groups {
        LocalGroups::new(state, sources::MANUAL).set(&mut plan, &mut errors, 0, &id, list, now);
    }
    if !errors.is_empty() {
        return Err(DirectoryRefusal::Invalid(errors));
    }
    let mut changes = Changes::default();
    changes.mark(&id, "created");
    changes.events(
        &HashMap::from([(id.clone(), user.username.clone())]),
        Some(actor),
        &mut plan.events,
    );
    plan.events.push(
        NewEvent::new(
            kinds::ADMIN_USER_CREATED,
            format!("user {} created by hand", user.username),
        )
        .actor(actor)
        .data(json!({ "username": user.username })),
    );
    plan.summary = json!({ "username": user.username });
    Ok(plan)
}

/// An admin's change to a user: fields, groups, disabled. A directory user's fields
/// and groups belong to the directory; only `disabled` can be set here.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserPatch {
    pub upn: Option<String>,
    pub email: Option<String>,
    pub display_name: Option<String>,
    /// Some(None) clears it.
    pub department: Option<Option<String>>,
    pub groups: Option<Vec<String>>,
    pub disabled: Option<bool>,
}

pub fn update_user(
    state: &DirectoryState,
    username: &str,
    patch: &UserPatch,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<DirectoryPlan, DirectoryRefusal> {
    let old = find(state, username)
        .ok_or_else(|| DirectoryRefusal::NotFound(format!("no user {username}")))?;
    let edits_fields = patch.upn.is_some()
        || patch.email.is_some()
        || patch.display_name.is_some()
        || patch.department.is_some()
        || patch.groups.is_some();
    if old.source == sources::LDAP && edits_fields {
        return Err(DirectoryRefusal::Conflict(format!(
            "user {} comes from the directory: change its attributes and groups there (only disabled can be set here)",
            old.username
        )));
    }
    let mut new = old.clone();
    if let Some(v) = &patch.upn {
        new.upn = v.trim().to_owned();
    }
    if let Some(v) = &patch.email {
        new.email = v.trim().to_owned();
    }
    if let Some(v) = &patch.display_name {
        new.display_name = v.trim().to_owned();
    }
    if let Some(v) = &patch.department {
        new.department = v
            .as_deref()
            .map(str::trim)
            .filter(|d| !d.is_empty())
            .map(str::to_owned);
    }
    let problems = check_user(&UserInput {
        row: 0,
        username: new.username.clone(),
        upn: new.upn.clone(),
        email: new.email.clone(),
        display_name: new.display_name.clone(),
        department: new.department.clone(),
        groups: patch.groups.clone(),
    });
    // A directory user's stored fields are the directory's, whatever they hold.
    if !problems.is_empty() && old.source != sources::LDAP {
        return Err(DirectoryRefusal::Invalid(problems));
    }
    let mut plan = DirectoryPlan::default();
    let mut changes = Changes::default();
    for f in changed_fields(old, &new) {
        changes.mark(&old.id, f);
    }
    match patch.disabled {
        Some(true) if !old.disabled => {
            new.disabled = true;
            new.disabled_reason = Some(reasons::DISABLED_BY_HAND.into());
            new.disabled_at = Some(now);
            plan.events.push(
                NewEvent::new(
                    kinds::USER_DISABLED,
                    format!("user {} disabled by hand", old.username),
                )
                .actor(actor)
                .data(json!({ "username": old.username, "reason": reasons::DISABLED_BY_HAND })),
            );
        }
        Some(false) if old.disabled => {
            new.disabled = false;
            new.disabled_reason = None;
            new.disabled_at = None;
            plan.events.push(
                NewEvent::new(
                    kinds::USER_ENABLED,
                    format!("user {} enabled by hand", old.username),
                )
                .actor(actor)
                .data(json!({ "username": old.username })),
            );
        }
        _ => {}
    }
    let mut errors = Vec::new();
    if let Some(list) = &patch.groups {
        let source = if old.source == sources::CSV {
            sources::CSV
        } else {
            sources::MANUAL
        };
        if LocalGroups::new(state, source).set(&mut plan, &mut errors, 0, &old.id, list, now) {
            changes.mark(&old.id, "groups");
        }
    }
    if !errors.is_empty() {
        return Err(DirectoryRefusal::Invalid(errors));
    }
    if new != *old {
        new.updated_at = now;
        plan.update_users.push(new.clone());
    }
    let changed: Vec<&str> = changes
        .fields
        .get(&old.id)
        .map(|f| f.iter().copied().collect())
        .unwrap_or_default();
    changes.events(
        &HashMap::from([(old.id.clone(), old.username.clone())]),
        Some(actor),
        &mut plan.events,
    );
    if !changed.is_empty() || new.disabled != old.disabled {
        plan.events.push(
            NewEvent::new(
                kinds::ADMIN_USER_UPDATED,
                format!("user {} changed by hand", old.username),
            )
            .actor(actor)
            .data(
                json!({ "username": old.username, "changed": changed, "disabled": new.disabled }),
            ),
        );
    }
    plan.summary = json!({ "username": old.username });
    Ok(plan)
}

/// Deletes a user made by hand or imported, with its memberships. Directory users
/// are never deleted (disable them, or remove them from the directory), nor users
/// with devices (`devices` is how many are assigned to the user).
pub fn delete_user(
    state: &DirectoryState,
    username: &str,
    devices: usize,
    actor: &str,
) -> Result<DirectoryPlan, DirectoryRefusal> {
    let old = find(state, username)
        .ok_or_else(|| DirectoryRefusal::NotFound(format!("no user {username}")))?;
    if old.source == sources::LDAP {
        return Err(DirectoryRefusal::Conflict(format!(
            "user {} comes from the directory: it is disabled when it leaves the directory, never deleted",
            old.username
        )));
    }
    if devices > 0 {
        return Err(DirectoryRefusal::Conflict(format!(
            "{devices} device(s) are assigned to {}: disable the user instead (PATCH disabled=true)",
            old.username
        )));
    }
    let mut plan = DirectoryPlan {
        delete_users: vec![old.id.clone()],
        ..Default::default()
    };
    plan.events.push(
        NewEvent::new(
            kinds::ADMIN_USER_DELETED,
            format!("user {} deleted", old.username),
        )
        .actor(actor)
        .data(json!({ "username": old.username, "source": old.source })),
    );
    plan.summary = json!({ "username": old.username });
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use super::super::LdapGroup;
    use super::*;

    fn now() -> DateTime<Utc> {
        Utc::now()
    }

    fn entry(uid: &str, uuid: &str) -> LdapUser {
        LdapUser {
            dn: format!("uid={uid},ou=people,dc=example,dc=org"),
            external_id: uuid.into(),
            username: uid.into(),
            upn: format!("{uid}@example.org"),
            email: format!("{uid}@example.org"),
            display_name: uid.to_uppercase(),
            department: Some("IT".into()),
            disabled: false,
        }
    }

    /// Applies a plan to a state the way storage does.
    fn apply(state: &mut DirectoryState, plan: &DirectoryPlan) {
        for (g, u) in &plan.remove_members {
            state.members.retain(|m| !(&m.0 == g && &m.1 == u));
        }
        state.groups.retain(|g| !plan.delete_groups.contains(&g.id));
        state
            .members
            .retain(|m| !plan.delete_groups.contains(&m.0) && !plan.delete_users.contains(&m.1));
        state.users.retain(|u| !plan.delete_users.contains(&u.id));
        for u in &plan.update_users {
            let slot = state.users.iter_mut().find(|s| s.id == u.id).unwrap();
            *slot = u.clone();
        }
        state.users.extend(plan.insert_users.iter().cloned());
        for g in &plan.update_groups {
            let slot = state.groups.iter_mut().find(|s| s.id == g.id).unwrap();
            *slot = g.clone();
        }
        state.groups.extend(plan.insert_groups.iter().cloned());
        state.members.extend(plan.add_members.iter().cloned());
    }

    fn kinds_of(plan: &DirectoryPlan) -> Vec<&'static str> {
        plan.events.iter().map(|e| e.kind).collect()
    }

    fn user<'a>(state: &'a DirectoryState, name: &str) -> &'a DirectoryUserRecord {
        state.users.iter().find(|u| u.username == name).unwrap()
    }

    #[test]
    fn a_sync_creates_then_changes_nothing_then_follows_the_directory() {
        let mut state = DirectoryState::default();
        let mut snap = Snapshot {
            users: vec![entry("jan", "u1"), entry("anna", "u2"), entry("ola", "u3")],
            groups: vec![LdapGroup {
                dn: "cn=staff,ou=groups,dc=example,dc=org".into(),
                external_id: "g1".into(),
                name: "staff".into(),
                member_dns: vec!["UID=jan, ou=people,dc=example,dc=org".into()],
                member_uids: vec!["anna".into(), "nobody".into()],
            }],
            ..Default::default()
        };
        let plan = sync(&state, &snap, "t", now()).unwrap();
        assert_eq!(plan.insert_users.len(), 3);
        assert_eq!(plan.add_members.len(), 2);
        assert_eq!(plan.summary["unresolved_members"], 1);
        apply(&mut state, &plan);

        // Unchanged: nothing but synced_at.
        let plan = sync(&state, &snap, "t", now()).unwrap();
        assert!(plan.update_users.is_empty() && plan.insert_users.is_empty());
        assert_eq!(plan.touch_users.len(), 3);
        assert_eq!(kinds_of(&plan), vec![kinds::SYNC_COMPLETED]);

        // A changed attribute, a disabled account, a removed one, a renamed one.
        snap.users[0].display_name = "Jan Kowalski".into();
        snap.users[1].disabled = true;
        snap.users.remove(2);
        snap.users.push(LdapUser {
            username: "jan.k".into(),
            ..entry("x", "u1")
        });
        snap.users.remove(0);
        let plan = sync(&state, &snap, "t", now()).unwrap();
        let kinds = kinds_of(&plan);
        assert!(kinds.contains(&kinds::USER_DISABLED), "{kinds:?}");
        assert!(kinds.contains(&kinds::USER_REMOVED), "{kinds:?}");
        assert!(kinds.contains(&kinds::USER_CHANGED), "{kinds:?}");
        assert_eq!(plan.renames, vec![("jan".to_owned(), "jan.k".to_owned())]);
        // The rename keeps jan's membership (the DN changed, so the group now lists
        // a DN that is not the user's any more).
        apply(&mut state, &plan);
        let ola = user(&state, "ola");
        assert!(ola.disabled);
        assert_eq!(
            ola.disabled_reason.as_deref(),
            Some(reasons::REMOVED_FROM_DIRECTORY)
        );
        let anna = user(&state, "anna");
        assert_eq!(
            anna.disabled_reason.as_deref(),
            Some(reasons::DISABLED_IN_DIRECTORY)
        );
        assert_eq!(state.users.len(), 3, "never deleted");

        // Back in the directory and enabled: enabled again.
        snap.users[0].disabled = false;
        snap.users.push(entry("ola", "u3"));
        let plan = sync(&state, &snap, "t", now()).unwrap();
        assert_eq!(
            kinds_of(&plan)
                .iter()
                .filter(|k| **k == kinds::USER_ENABLED)
                .count(),
            2
        );
        apply(&mut state, &plan);
        assert!(state.users.iter().all(|u| !u.disabled));
    }

    #[test]
    fn a_user_disabled_by_hand_stays_disabled() {
        let mut state = DirectoryState::default();
        let snap = Snapshot {
            users: vec![entry("jan", "u1")],
            ..Default::default()
        };
        let next = sync(&state, &snap, "t", now()).unwrap();
        apply(&mut state, &next);
        let patch = UserPatch {
            disabled: Some(true),
            ..Default::default()
        };
        let next = update_user(&state, "jan", &patch, "alice", now()).unwrap();
        apply(&mut state, &next);
        let plan = sync(&state, &snap, "t", now()).unwrap();
        apply(&mut state, &plan);
        assert_eq!(
            user(&state, "jan").disabled_reason.as_deref(),
            Some(reasons::DISABLED_BY_HAND)
        );
        // Its attributes belong to the directory.
        let patch = UserPatch {
            email: Some("x@y".into()),
            ..Default::default()
        };
        assert!(matches!(
            update_user(&state, "jan", &patch, "alice", now()),
            Err(DirectoryRefusal::Conflict(_))
        ));
    }

    #[test]
    fn an_empty_answer_never_disables_everyone() {
        let mut state = DirectoryState::default();
        let snap = Snapshot {
            users: vec![entry("jan", "u1")],
            ..Default::default()
        };
        let next = sync(&state, &snap, "t", now()).unwrap();
        apply(&mut state, &next);
        let err = sync(&state, &Snapshot::default(), "t", now()).unwrap_err();
        assert!(matches!(err, DirectoryRefusal::Conflict(m) if m.contains("no users")));
    }

    #[test]
    fn the_directory_takes_over_an_imported_user_and_group() {
        let mut state = DirectoryState::default();
        let rows = vec![UserInput {
            row: 2,
            username: "Jan".into(),
            upn: "jan@example.org".into(),
            email: "jan@example.org".into(),
            display_name: "Jan".into(),
            department: None,
            groups: Some(vec!["staff".into()]),
        }];
        let next = import(&state, &rows, "alice", now()).unwrap();
        apply(&mut state, &next);
        assert_eq!(state.users[0].source, sources::CSV);
        let snap = Snapshot {
            users: vec![entry("jan", "u1")],
            groups: vec![LdapGroup {
                dn: "cn=staff,dc=example,dc=org".into(),
                external_id: "g1".into(),
                name: "staff".into(),
                member_dns: vec![],
                member_uids: vec!["jan".into()],
            }],
            ..Default::default()
        };
        let plan = sync(&state, &snap, "t", now()).unwrap();
        assert!(plan.insert_users.is_empty());
        apply(&mut state, &plan);
        assert_eq!(state.users.len(), 1);
        assert_eq!(state.users[0].source, sources::LDAP);
        assert_eq!(state.groups[0].source, sources::LDAP);
        assert_eq!(state.members.len(), 1);
        // Now the import may not touch either.
        match import(&state, &rows, "alice", now()) {
            Err(DirectoryRefusal::Invalid(errors)) => {
                assert!(
                    errors[0].starts_with("row 2, column username"),
                    "{errors:?}"
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn csv_rows_are_checked_with_row_and_column() {
        let state = DirectoryState::default();
        let good = UserInput {
            row: 2,
            username: "anna".into(),
            upn: "anna@example.org".into(),
            email: "anna@example.org".into(),
            display_name: "Anna".into(),
            department: None,
            groups: None,
        };
        let rows = vec![
            good.clone(),
            UserInput {
                row: 3,
                email: "not-an-address".into(),
                username: "ewa".into(),
                ..good.clone()
            },
            UserInput {
                row: 4,
                ..good.clone()
            },
        ];
        match import(&state, &rows, "alice", now()) {
            Err(DirectoryRefusal::Invalid(errors)) => {
                assert_eq!(errors.len(), 2, "{errors:?}");
                assert!(errors[0].starts_with("row 3, column email"), "{errors:?}");
                assert!(
                    errors[1].starts_with("row 4, column username"),
                    "{errors:?}"
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn deleting_is_for_users_without_devices_outside_the_directory() {
        let mut state = DirectoryState::default();
        let input = UserInput {
            row: 0,
            username: "kiosk".into(),
            upn: "kiosk@example.org".into(),
            email: "kiosk@example.org".into(),
            display_name: "Kiosk".into(),
            department: None,
            groups: Some(vec!["lobby".into()]),
        };
        let next = create_user(&state, &input, "alice", now()).unwrap();
        apply(&mut state, &next);
        assert!(matches!(
            create_user(&state, &input, "alice", now()),
            Err(DirectoryRefusal::Conflict(_))
        ));
        assert!(matches!(
            delete_user(&state, "kiosk", 1, "alice"),
            Err(DirectoryRefusal::Conflict(_))
        ));
        let next = delete_user(&state, "kiosk", 0, "alice").unwrap();
        apply(&mut state, &next);
        assert!(state.users.is_empty() && state.members.is_empty());
    }
}
