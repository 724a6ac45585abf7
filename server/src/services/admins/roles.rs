//! Rights and roles: what each right allows, and the role matrix in the office
//! policy's columns (system name, role name, description, rights, critical).
//!
//! A right is granted only through a role, a role only to an admin group (never to a
//! person); an admin holds the union of the rights of its groups' roles. `*` in a
//! role's rights is every right (the owner role), including rights a later release
//! adds.

use crate::storage::RoleRow;
use std::collections::BTreeSet;

/// Every right, with what it allows. `http/api/rights.rs` maps each route to one.
pub const RIGHTS: &[(&str, &str)] = &[
    ("devices.read", "list and show devices, their commands and push attempts"),
    ("devices.query", "send information queries (DeviceInformation, SecurityInfo, ProfileList, ...)"),
    ("devices.lock", "lock a device"),
    ("devices.lost_mode", "lost mode: enable, disable, locate, play a sound"),
    ("devices.wipe", "erase a device"),
    ("devices.manage", "retire, revoke, delete devices, approve re-enrollments, push now"),
    ("commands.send", "any other command (profiles, restart, passcode, raw) and cancel commands"),
    ("enrollments.read", "list and show enrollments"),
    ("enrollments.write", "create and revoke enrollments"),
    ("policies.read", "read policies, device groups and compliance"),
    ("policies.write", "change policies, assignments and device groups; deliver"),
    ("directory.read", "read directory users and groups, the off-boarding list"),
    ("directory.write", "configure and sync the directory, change users by hand"),
    ("users.offboard", "off-board a user: retire or wipe their devices"),
    ("push.read", "show the push certificate"),
    ("push.write", "upload the push certificate"),
    ("android.read", "show the link to Android Enterprise"),
    ("android.write", "connect Android Enterprise, sync devices"),
    ("incidents.read", "read the incident register, its history, evidence and reports"),
    ("incidents.write", "file and update incidents, evidence, personal lost-report links, replay deliveries"),
    ("incidents.approve", "approve or deny an action waiting for a second administrator"),
    ("events.read", "read the event stream and the server's counters"),
    ("exports", "bulk exports: the incident register, the audit trail"),
    ("admins.read", "list admins, admin groups, roles, the role matrix, tokens and sessions"),
    ("admins.manage", "create, disable, enable admins; reset passwords and MFA; groups' members; others' tokens and sessions"),
    ("roles.manage", "change roles and which groups hold them"),
    ("audit.read", "read and verify the audit trail, the yearly access review"),
];

/// The pseudo-right of routes any authenticated admin may call for itself (its
/// session, password, second factor, own tokens).
pub const SELF: &str = "self";
/// The pseudo-right of routes that need no credentials (login, openapi.json).
pub const PUBLIC: &str = "public";

pub fn is_right(name: &str) -> bool {
    RIGHTS.iter().any(|(r, _)| *r == name)
}

/// The rights a set of roles grants ("*" expanded).
pub fn rights_of(roles: &[RoleRow]) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for role in roles {
        for r in &role.rights {
            if r == "*" {
                out.extend(RIGHTS.iter().map(|(r, _)| (*r).to_owned()));
            } else {
                out.insert(r.clone());
            }
        }
    }
    out
}

/// Checks a role's rights: each a known right, or "*". Returns them sorted.
pub fn validate_rights(rights: &[String]) -> Result<Vec<String>, String> {
    let unknown: Vec<&String> = rights
        .iter()
        .filter(|r| r.as_str() != "*" && !is_right(r))
        .collect();
    if !unknown.is_empty() {
        return Err(format!(
            "unknown right(s) {}; the rights are: {}",
            unknown
                .iter()
                .map(|r| format!("{r:?}"))
                .collect::<Vec<_>>()
                .join(", "),
            RIGHTS
                .iter()
                .map(|(r, _)| *r)
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    let set: BTreeSet<String> = rights.iter().cloned().collect();
    Ok(set.into_iter().collect())
}

/// Role and group names: lower case letters, digits, '_' and '-'.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

/// The system the matrix is kept for (the policy's "system name" column).
pub const SYSTEM_NAME: &str = "MDM";

/// The role matrix's columns, in the policy's order.
pub const MATRIX_COLUMNS: [&str; 5] = [
    "system name",
    "role name",
    "description",
    "rights",
    "critical",
];

/// One row of the matrix per role: rights spelled out ("*" as every right).
pub fn matrix_rows(roles: &[RoleRow]) -> Vec<[String; 5]> {
    roles
        .iter()
        .map(|role| {
            let rights = rights_of(std::slice::from_ref(role));
            [
                SYSTEM_NAME.to_owned(),
                role.name.clone(),
                role.description.clone(),
                rights.into_iter().collect::<Vec<_>>().join(" "),
                if role.critical { "yes" } else { "no" }.to_owned(),
            ]
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn star_is_every_right_and_unknown_rights_are_refused() {
        let owner = RoleRow {
            name: "owner".into(),
            description: String::new(),
            rights: vec!["*".into()],
            critical: true,
            built_in: true,
            updated_at: chrono::Utc::now(),
            updated_by: String::new(),
        };
        assert_eq!(rights_of(&[owner]).len(), RIGHTS.len());
        assert!(validate_rights(&["devices.read".into(), "devices.read".into()]).is_ok());
        let err = validate_rights(&["devices.explode".into()]).unwrap_err();
        assert!(err.contains("devices.explode"), "{err}");
    }
}
