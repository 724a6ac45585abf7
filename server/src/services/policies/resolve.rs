//! Which policies apply to which device, in which order.
//!
//! A device is in a group by hand (`manual`), through its user (`directory_group`:
//! the user is in that directory group; `department`: the user's department), or
//! through the enrollment it came by (`enrollment`: the enrollment was made for
//! that group name). Precedence: the device's own assignments first, then its
//! groups' assignments, each by `precedence` (higher first), ties by policy name, so
//! the order never depends on the database's row order.

use crate::storage::{AssignmentRow, DeviceGroupRow, DirectoryUserRow, PolicyTarget};
use std::collections::{HashMap, HashSet};

pub const GROUP_KINDS: [&str; 4] = ["manual", "directory_group", "department", "enrollment"];

/// The groups (ids) a device is in.
pub fn groups_of(
    target: &PolicyTarget,
    user: Option<&DirectoryUserRow>,
    groups: &[DeviceGroupRow],
) -> Vec<String> {
    groups
        .iter()
        .filter(|g| {
            let value = g.match_value.as_deref();
            match g.kind.as_str() {
                "manual" => target.manual_groups.contains(&g.id),
                "directory_group" => {
                    user.is_some_and(|u| value.is_some_and(|v| u.groups.iter().any(|x| x == v)))
                }
                "department" => user.is_some_and(|u| u.department.as_deref() == value),
                "enrollment" => value.is_some() && target.assigned_group.as_deref() == value,
                _ => false,
            }
        })
        .map(|g| g.id.clone())
        .collect()
}

/// The policies (ids) that apply to a device in these groups, highest precedence
/// first, each once.
pub fn policies_for(
    device_id: &str,
    group_ids: &[String],
    assignments: &[AssignmentRow],
    policy_names: &HashMap<String, String>,
) -> Vec<String> {
    let in_groups: HashSet<&str> = group_ids.iter().map(String::as_str).collect();
    let mut matching: Vec<(u8, i32, &str, &str)> = assignments
        .iter()
        .filter_map(|a| {
            let rank = match a.target_kind.as_str() {
                "device" if a.target == device_id => 0,
                "group" if in_groups.contains(a.target.as_str()) => 1,
                _ => return None,
            };
            let name = policy_names
                .get(&a.policy_id)
                .map(String::as_str)
                .unwrap_or("");
            Some((rank, a.precedence, name, a.policy_id.as_str()))
        })
        .collect();
    matching.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)).then(a.2.cmp(b.2)));
    let mut seen = HashSet::new();
    matching
        .into_iter()
        .filter(|m| seen.insert(m.3))
        .map(|m| m.3.to_owned())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    fn group(id: &str, kind: &str, value: Option<&str>) -> DeviceGroupRow {
        DeviceGroupRow {
            id: id.into(),
            name: id.into(),
            kind: kind.into(),
            match_value: value.map(Into::into),
            description: None,
            created_at: Utc::now(),
        }
    }

    fn assignment(policy: &str, kind: &str, target: &str, precedence: i32) -> AssignmentRow {
        AssignmentRow {
            id: format!("{policy}-{target}"),
            policy_id: policy.into(),
            target_kind: kind.into(),
            target: target.into(),
            precedence,
            created_by: "t".into(),
            created_at: Utc::now(),
        }
    }

    #[test]
    fn membership_follows_the_user_the_enrollment_and_the_hand() {
        let target = PolicyTarget {
            device_id: "d1".into(),
            platform: "apple".into(),
            os_family: "iOS".into(),
            assigned_user: Some("anna".into()),
            assigned_group: Some("front-desk".into()),
            enrollment_id: None,
            manual_groups: vec!["g-manual".into()],
        };
        let user = DirectoryUserRow {
            username: "anna".into(),
            upn: "anna@example.org".into(),
            email: "anna@example.org".into(),
            display_name: "Anna".into(),
            department: Some("Finance".into()),
            groups: vec!["staff".into()],
            disabled: false,
        };
        let groups = [
            group("g-manual", "manual", None),
            group("g-other", "manual", None),
            group("g-staff", "directory_group", Some("staff")),
            group("g-it", "directory_group", Some("it")),
            group("g-fin", "department", Some("Finance")),
            group("g-desk", "enrollment", Some("front-desk")),
        ];
        let mut ids = groups_of(&target, Some(&user), &groups);
        ids.sort();
        assert_eq!(ids, ["g-desk", "g-fin", "g-manual", "g-staff"]);
        // Without a directory user only the hand and the enrollment place it.
        let mut ids = groups_of(&target, None, &groups);
        ids.sort();
        assert_eq!(ids, ["g-desk", "g-manual"]);
    }

    #[test]
    fn device_assignments_outrank_groups_then_precedence_then_name() {
        let names: HashMap<String, String> = [("a", "alpha"), ("b", "beta"), ("c", "gamma")]
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let assignments = [
            assignment("b", "group", "g1", 0),
            assignment("a", "group", "g1", 0),
            assignment("c", "group", "g2", 5),
            assignment("b", "device", "d1", 0),
            assignment("a", "group", "g-not-mine", 9),
        ];
        let order = policies_for("d1", &["g1".into(), "g2".into()], &assignments, &names);
        assert_eq!(order, ["b", "c", "a"]);
    }
}
