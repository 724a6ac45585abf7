//! Which right each admin API route needs: one table, read by the `Admin` extractor
//! (http/api/auth.rs) on every request and written into openapi.json
//! (`x-required-right`). A route missing from the table is refused to everyone (fail
//! closed), and a test walks the OpenAPI document so that an endpoint added without
//! an entry fails it.
//!
//! Routes are actix patterns under /api/v1, as registered (`req.match_pattern()`).

use crate::services::admins::roles;
use serde_json::Value;

/// What a route needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// No credentials (login, this document).
    Public,
    /// Any authenticated caller, for itself (its session, password, second factor,
    /// tokens), even one that must change its password or enrol MFA first.
    Own,
    Right(&'static str),
    /// A command to devices: the command's own right ([`command_right`]); the route
    /// admits any caller holding at least one of them, the handler checks the one.
    Command,
}

use Need::{Command, Own, Public, Right};

/// (method, route, need). Keep sorted by route for reading.
pub const ROUTES: &[(&str, &str, Need)] = &[
    ("GET", "/openapi.json", Public),
    // Sessions and one's own account.
    ("POST", "/session", Public),
    ("GET", "/session", Own),
    ("DELETE", "/session", Own),
    ("POST", "/session/password", Own),
    ("POST", "/session/totp", Own),
    ("POST", "/session/totp/confirm", Own),
    ("GET", "/sessions", Own),
    ("DELETE", "/sessions/{id}", Own),
    ("GET", "/tokens", Own),
    ("POST", "/tokens", Own),
    ("DELETE", "/tokens/{id}", Own),
    // Admins, groups, roles.
    ("GET", "/admins", Right("admins.read")),
    ("POST", "/admins", Right("admins.manage")),
    ("GET", "/admins/{name}", Right("admins.read")),
    ("POST", "/admins/{name}/disable", Right("admins.manage")),
    ("POST", "/admins/{name}/enable", Right("admins.manage")),
    ("POST", "/admins/{name}/password", Right("admins.manage")),
    ("DELETE", "/admins/{name}/totp", Right("admins.manage")),
    ("GET", "/admin-groups", Right("admins.read")),
    ("PUT", "/admin-groups/{name}", Right("admins.manage")),
    ("DELETE", "/admin-groups/{name}", Right("admins.manage")),
    (
        "POST",
        "/admin-groups/{name}/members",
        Right("admins.manage"),
    ),
    ("POST", "/admin-groups/{name}/roles", Right("roles.manage")),
    ("GET", "/roles", Right("admins.read")),
    ("GET", "/roles/matrix", Right("admins.read")),
    ("GET", "/roles/matrix.csv", Right("admins.read")),
    ("PUT", "/roles/{name}", Right("roles.manage")),
    ("DELETE", "/roles/{name}", Right("roles.manage")),
    // The audit trail.
    ("GET", "/audit", Right("audit.read")),
    ("GET", "/audit/verify", Right("audit.read")),
    ("GET", "/audit/export.jsonl", Right("audit.read")),
    ("GET", "/audit/export.csv", Right("audit.read")),
    ("GET", "/audit/access-review", Right("audit.read")),
    // Off-boarding.
    (
        "POST",
        "/users/{username}/offboard",
        Right("users.offboard"),
    ),
    ("GET", "/offboarding", Right("directory.read")),
    ("GET", "/offboarding/{id}", Right("directory.read")),
    // Devices and commands.
    ("GET", "/devices", Right("devices.read")),
    ("GET", "/devices/{id}", Right("devices.read")),
    ("DELETE", "/devices/{id}", Right("devices.manage")),
    ("POST", "/devices/{id}/commands", Command),
    ("GET", "/devices/{id}/commands", Right("devices.read")),
    ("POST", "/devices/{id}/lock", Right("devices.lock")),
    ("POST", "/devices/{id}/wipe", Right("devices.wipe")),
    (
        "POST",
        "/devices/{id}/reenrollment",
        Right("devices.manage"),
    ),
    ("POST", "/devices/{id}/revoke", Right("devices.manage")),
    ("POST", "/devices/{id}/retire", Right("devices.manage")),
    ("POST", "/devices/{id}/push", Right("devices.manage")),
    ("GET", "/devices/{id}/push-attempts", Right("devices.read")),
    ("GET", "/devices/{id}/compliance", Right("policies.read")),
    ("POST", "/devices/{id}/compliance", Right("policies.write")),
    ("POST", "/commands", Command),
    ("GET", "/commands/{uuid}", Right("devices.read")),
    ("POST", "/commands/{uuid}/cancel", Right("commands.send")),
    // Enrollments, push, Android.
    ("POST", "/enrollments", Right("enrollments.write")),
    ("GET", "/enrollments", Right("enrollments.read")),
    ("GET", "/enrollments/{id}", Right("enrollments.read")),
    ("DELETE", "/enrollments/{id}", Right("enrollments.write")),
    ("GET", "/enrollments/{id}/qr.png", Right("enrollments.read")),
    ("GET", "/enrollments/{id}/qr.svg", Right("enrollments.read")),
    ("GET", "/push-certificate", Right("push.read")),
    ("PUT", "/push-certificate", Right("push.write")),
    ("GET", "/android", Right("android.read")),
    ("POST", "/android/connect", Right("android.write")),
    ("POST", "/android/sync", Right("android.write")),
    // Events.
    ("GET", "/events", Right("events.read")),
    ("GET", "/metrics", Right("events.read")),
    // Policies and device groups.
    ("GET", "/policies", Right("policies.read")),
    ("POST", "/policies/check", Right("policies.read")),
    ("POST", "/policies/deliver", Right("policies.write")),
    ("GET", "/policies/assignments", Right("policies.read")),
    ("GET", "/policies/{name}", Right("policies.read")),
    ("PUT", "/policies/{name}", Right("policies.write")),
    ("POST", "/policies/{name}/diff", Right("policies.read")),
    ("GET", "/policies/{name}/versions", Right("policies.read")),
    ("POST", "/policies/{name}/restore", Right("policies.write")),
    (
        "POST",
        "/policies/{name}/assignments",
        Right("policies.write"),
    ),
    (
        "DELETE",
        "/policies/{name}/assignments",
        Right("policies.write"),
    ),
    ("GET", "/device-groups", Right("policies.read")),
    ("POST", "/device-groups", Right("policies.write")),
    ("GET", "/device-groups/{name}", Right("policies.read")),
    ("DELETE", "/device-groups/{name}", Right("policies.write")),
    (
        "POST",
        "/device-groups/{name}/members",
        Right("policies.write"),
    ),
    // The directory.
    ("GET", "/directory/source", Right("directory.read")),
    ("PUT", "/directory/source", Right("directory.write")),
    ("POST", "/directory/sync", Right("directory.write")),
    ("GET", "/users", Right("directory.read")),
    ("POST", "/users", Right("directory.write")),
    ("POST", "/users/import", Right("directory.write")),
    ("GET", "/users/{username}", Right("directory.read")),
    ("PATCH", "/users/{username}", Right("directory.write")),
    ("DELETE", "/users/{username}", Right("directory.write")),
    ("GET", "/groups", Right("directory.read")),
    ("GET", "/groups/{name}", Right("directory.read")),
    // The incident register.
    ("POST", "/incidents", Right("incidents.write")),
    ("GET", "/incidents", Right("incidents.read")),
    ("GET", "/incidents/export.csv", Right("exports")),
    ("GET", "/incidents/export.json", Right("exports")),
    ("GET", "/incidents/verify", Right("incidents.read")),
    ("GET", "/incidents/figures", Right("incidents.read")),
    ("GET", "/incidents/report.html", Right("incidents.read")),
    ("GET", "/incidents/report.pdf", Right("incidents.read")),
    ("GET", "/incidents/{id}", Right("incidents.read")),
    ("PATCH", "/incidents/{id}", Right("incidents.write")),
    (
        "GET",
        "/incidents/{id}/report.html",
        Right("incidents.read"),
    ),
    ("GET", "/incidents/{id}/report.pdf", Right("incidents.read")),
    ("GET", "/incidents/{id}/history", Right("incidents.read")),
    ("POST", "/incidents/{id}/classify", Right("incidents.write")),
    ("POST", "/incidents/{id}/actions", Right("incidents.write")),
    ("POST", "/incidents/{id}/close", Right("incidents.write")),
    ("POST", "/incidents/{id}/evidence", Right("incidents.write")),
    ("GET", "/incidents/{id}/evidence", Right("incidents.read")),
    ("GET", "/incidents/{id}/approvals", Right("incidents.read")),
    (
        "POST",
        "/incidents/{id}/approvals/{approval}/approve",
        Right("incidents.approve"),
    ),
    (
        "POST",
        "/incidents/{id}/approvals/{approval}/deny",
        Right("incidents.approve"),
    ),
    ("GET", "/deliveries", Right("incidents.read")),
    ("POST", "/deliveries/{id}/replay", Right("incidents.write")),
    ("GET", "/lost-report-links", Right("incidents.read")),
    ("POST", "/lost-report-links", Right("incidents.write")),
    (
        "DELETE",
        "/lost-report-links/{id}",
        Right("incidents.write"),
    ),
];

/// The scope the admin API is mounted under.
pub const SCOPE: &str = "/api/v1";

/// What `method` on `route` (an actix pattern, with or without the /api/v1 scope)
/// needs; None when the route is not in the table.
pub fn required(method: &str, route: &str) -> Option<Need> {
    let route = route.strip_prefix(SCOPE).unwrap_or(route);
    ROUTES
        .iter()
        .find(|(m, r, _)| m.eq_ignore_ascii_case(method) && *r == route)
        .map(|(_, _, need)| *need)
}

/// The methods the API answers on `path` (a request path under /api/v1, not a
/// pattern), for the 405 answer to any other method: those of the routes whose
/// pattern matches it with the most literal segments (so /incidents/export.csv is
/// that route, not /incidents/{id}). Empty when no route matches: a 404.
pub fn allowed_methods(path: &str) -> Vec<&'static str> {
    let path = path.strip_prefix(SCOPE).unwrap_or(path);
    let segments: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    let literal_matches = |route: &str| -> Option<usize> {
        let parts: Vec<&str> = route.split('/').collect();
        if parts.len() != segments.len() {
            return None;
        }
        let mut literals = 0;
        for (part, segment) in parts.iter().zip(&segments) {
            if part.starts_with('{') && part.ends_with('}') {
                if segment.is_empty() {
                    return None;
                }
            } else if part == segment {
                literals += 1;
            } else {
                return None;
            }
        }
        Some(literals)
    };
    let best = ROUTES
        .iter()
        .filter_map(|(_, route, _)| literal_matches(route))
        .max();
    let mut methods: Vec<&'static str> = ROUTES
        .iter()
        .filter(|(_, route, _)| best.is_some() && literal_matches(route) == best)
        .map(|(method, _, _)| *method)
        .collect();
    methods.sort_unstable();
    methods.dedup();
    methods
}

/// The rights a command route may be entered with.
pub const COMMAND_RIGHTS: [&str; 5] = [
    "commands.send",
    "devices.query",
    "devices.lock",
    "devices.lost_mode",
    "devices.wipe",
];

/// The right a command (a request body's `type`, Apple's or Android's) needs: lock,
/// lost mode, wipe and information queries have their own, so that a help desk can
/// lock a lost phone without being able to erase it; any other command (profiles,
/// restart, passcode, raw plists) needs commands.send.
pub fn command_right(body: &Value) -> &'static str {
    match body.get("type").and_then(Value::as_str).unwrap_or_default() {
        "DeviceLock" | "LOCK" => "devices.lock",
        "EnableLostMode" | "DisableLostMode" | "PlayLostModeSound" | "DeviceLocation"
        | "START_LOST_MODE" | "STOP_LOST_MODE" => "devices.lost_mode",
        "EraseDevice" | "WIPE" => "devices.wipe",
        "DeviceInformation"
        | "SecurityInfo"
        | "ProfileList"
        | "CertificateList"
        | "InstalledApplicationList"
        | "REQUEST_DEVICE_INFO" => "devices.query",
        _ => "commands.send",
    }
}

const COMMAND_NOTE: &str = "Required right: commands.send, or the command's own right: DeviceLock/LOCK devices.lock; EnableLostMode, DisableLostMode, PlayLostModeSound, DeviceLocation, START_LOST_MODE, STOP_LOST_MODE devices.lost_mode; EraseDevice/WIPE devices.wipe; DeviceInformation, SecurityInfo, ProfileList, CertificateList, InstalledApplicationList, REQUEST_DEVICE_INFO devices.query.";

/// Writes each operation's right into the document: `x-required-right`, a sentence in
/// its description, and the 403 answer. Public operations get `security: []`.
pub fn annotate(doc: &mut Value) {
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else {
        return;
    };
    for (path, ops) in paths.iter_mut() {
        let Some(ops) = ops.as_object_mut() else {
            continue;
        };
        for (method, op) in ops.iter_mut() {
            let Some(op) = op.as_object_mut() else {
                continue;
            };
            let need = required(method, path);
            let (name, sentence) = match need {
                Some(Need::Public) => {
                    op.insert("security".into(), Value::Array(Vec::new()));
                    ("public", "No credentials needed.".to_owned())
                }
                Some(Need::Own) => (
                    roles::SELF,
                    "Any authenticated admin, for itself (also while its password must change or its second factor is to be enrolled).".to_owned(),
                ),
                Some(Need::Right(r)) => (r, format!("Required right: {r}.")),
                Some(Need::Command) => ("commands.send", COMMAND_NOTE.to_owned()),
                // Not in the table: refused to everyone, and the test says so.
                None => ("none (refused: not in the rights table)", "Refused: no right is defined for this route.".to_owned()),
            };
            op.insert("x-required-right".into(), Value::String(name.into()));
            let description = match op.get("description").and_then(Value::as_str) {
                Some(d) if !d.is_empty() => format!("{d}\n\n{sentence}"),
                _ => sentence,
            };
            op.insert("description".into(), Value::String(description));
            if !matches!(need, Some(Need::Public)) {
                if let Some(responses) = op.get_mut("responses").and_then(Value::as_object_mut) {
                    responses
                        .entry("403")
                        .or_insert(serde_json::json!({ "$ref": "#/components/responses/Error" }));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_documented_operation_has_a_right_and_every_right_exists() {
        let doc = super::super::openapi::full_document();
        let mut documented = Vec::new();
        for (path, ops) in doc["paths"].as_object().unwrap() {
            for method in ops.as_object().unwrap().keys() {
                let method = method.to_uppercase();
                assert!(
                    required(&method, path).is_some(),
                    "{method} {path} is documented but has no entry in http/api/rights.rs"
                );
                documented.push((method, path.clone()));
            }
        }
        for (method, route, need) in ROUTES {
            assert!(
                documented.iter().any(|(m, p)| m == method && p == route),
                "{method} {route} is in the rights table but not in openapi.json"
            );
            if let Need::Right(r) = need {
                assert!(roles::is_right(r), "{method} {route}: unknown right {r}");
            }
        }
        for r in COMMAND_RIGHTS {
            assert!(roles::is_right(r));
        }
    }

    #[test]
    fn undeclared_methods_are_told_the_allowed_ones() {
        assert_eq!(allowed_methods("/api/v1/devices"), vec!["GET"]);
        assert!(allowed_methods("/api/v1/devices/abc").contains(&"DELETE"));
        assert_eq!(allowed_methods("/api/v1/incidents/export.csv"), vec!["GET"]);
        assert!(allowed_methods("/api/v1/no-such-thing").is_empty());
        assert!(allowed_methods("/api/v1/devices//lock").is_empty());
    }

    #[test]
    fn commands_need_their_own_rights() {
        let right = |t: &str| command_right(&serde_json::json!({ "type": t }));
        assert_eq!(right("EraseDevice"), "devices.wipe");
        assert_eq!(right("WIPE"), "devices.wipe");
        assert_eq!(right("DeviceLock"), "devices.lock");
        assert_eq!(right("EnableLostMode"), "devices.lost_mode");
        assert_eq!(right("DeviceInformation"), "devices.query");
        assert_eq!(right("Raw"), "commands.send");
        assert_eq!(right("InstallProfile"), "commands.send");
        assert_eq!(
            command_right(&serde_json::json!({ "type": 5 })),
            "commands.send"
        );
    }
}
