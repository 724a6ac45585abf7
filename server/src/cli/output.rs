//! Human-readable tables for the CLI.

use serde_json::Value;

fn s(v: &Value, key: &str) -> String {
    match v.get(key) {
        None | Some(Value::Null) => "-".into(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

/// Left-aligned columns, two spaces apart.
pub fn table(headers: &[&str], rows: Vec<Vec<String>>) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for row in &rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let mut out = cells
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c:<w$}", w = widths[i]))
            .collect::<Vec<_>>()
            .join("  ");
        out.truncate(out.trim_end().len());
        out + "\n"
    };
    let mut out = line(headers.iter().map(|h| h.to_string()).collect());
    for row in rows {
        out += &line(row);
    }
    out
}

pub fn fields(v: &Value, keys: &[&str]) -> String {
    let width = keys.iter().map(|k| k.len()).max().unwrap_or(0);
    keys.iter()
        .map(|k| format!("{k:<width$}  {}\n", s(v, k)))
        .collect()
}

pub fn device_list(v: &Value) -> String {
    let rows = v["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .map(|d| {
                    vec![
                        s(d, "id"),
                        s(d, "platform"),
                        s(d, "serial_number"),
                        s(d, "device_name"),
                        s(d, "os_family"),
                        s(d, "os_version"),
                        if d["enrolled"].as_bool() == Some(true) {
                            "yes".into()
                        } else {
                            "no".into()
                        },
                        match d["compliant"].as_bool() {
                            Some(true) => "yes".into(),
                            Some(false) => format!(
                                "no: {}",
                                d["compliance_reasons"]
                                    .as_array()
                                    .map(|r| r
                                        .iter()
                                        .filter_map(|x| x.as_str())
                                        .collect::<Vec<_>>()
                                        .join("; "))
                                    .unwrap_or_default()
                            ),
                            None => "-".into(),
                        },
                        s(d, "last_seen_at"),
                    ]
                })
                .collect()
        })
        .unwrap_or_default();
    let mut out = table(
        &[
            "ID",
            "PLATFORM",
            "SERIAL",
            "NAME",
            "OS",
            "VERSION",
            "ENROLLED",
            "COMPLIANT",
            "LAST SEEN",
        ],
        rows,
    );
    out += &format!(
        "{} of {} device(s)\n",
        v["items"].as_array().map_or(0, Vec::len),
        s(v, "total")
    );
    out
}

pub fn device(v: &Value) -> String {
    fields(
        v,
        &[
            "id",
            "platform",
            "udid",
            "serial_number",
            "device_name",
            "model",
            "model_name",
            "product_name",
            "os_family",
            "os_version",
            "build_version",
            "enrolled",
            "enrolled_at",
            "last_seen_at",
            "topic",
            "push_token",
            "has_unlock_token",
            "has_bootstrap_token",
            "hardware_encrypted",
            "passcode_present",
            "passcode_compliant",
            "identity_fingerprint",
            "identity_subject",
        ],
    ) + &android_device(v)
}

/// An Android device's AMAPI state, under the device's own fields.
fn android_device(v: &Value) -> String {
    let Some(a) = v.get("android").filter(|a| a.is_object()) else {
        return String::new();
    };
    let mut out = fields(
        a,
        &[
            "name",
            "management_mode",
            "ownership",
            "state",
            "api_level",
            "security_patch_level",
            "policy_name",
            "policy_version",
            "applied_policy_name",
            "applied_policy_version",
            "policy_applied",
            "policy_compliant",
            "encryption_status",
            "last_status_report_at",
        ],
    )
    .lines()
    .map(|l| format!("android.{l}\n"))
    .collect::<String>();
    if let Some(p) = a["security_posture"]["devicePosture"].as_str() {
        out += &format!("android.security_posture  {p}\n");
    }
    if let Some(details) = a["non_compliance"].as_array() {
        for d in details {
            out += &format!(
                "android.non_compliance  {} {}\n",
                d["settingName"].as_str().unwrap_or("?"),
                d["nonComplianceReason"].as_str().unwrap_or("")
            );
        }
    }
    out
}

pub fn queued(v: &Value) -> String {
    let items: Vec<&Value> = match v.get("commands").and_then(Value::as_array) {
        Some(list) => list.iter().collect(),
        None => vec![v],
    };
    table(
        &["DEVICE", "COMMAND UUID", "TYPE"],
        items
            .into_iter()
            .map(|q| {
                vec![
                    s(q, "device_id"),
                    s(q, "command_uuid"),
                    s(q, "request_type"),
                ]
            })
            .collect(),
    )
}

/// What revoking, retiring or deleting a device did.
pub fn revocation(v: &Value) -> String {
    let mut text = format!(
        "device {}: identity revoked ({})\n{} certificate(s) revoked, {} command(s) cancelled\n",
        s(v, "device_id"),
        s(v, "reason"),
        v["certificates_revoked"].as_u64().unwrap_or(0),
        v["cancelled_commands"].as_u64().unwrap_or(0),
    );
    if v["already_revoked"].as_bool() == Some(true) {
        text.push_str("(its identity had been revoked before; the first reason stays)\n");
    }
    text
}

pub fn command(v: &Value) -> String {
    let mut out = fields(
        v,
        &[
            "uuid",
            "device_id",
            "request_type",
            "status",
            "priority",
            "created_by",
            "created_at",
            "expires_at",
            "delivered_at",
            "completed_at",
            "delivery_count",
            "not_now_count",
        ],
    );
    if let Some(result) = v.get("result").filter(|r| !r.is_null()) {
        out += &format!(
            "result\n{}\n",
            serde_json::to_string_pretty(result).unwrap_or_default()
        );
    }
    out
}

pub fn command_list(v: &Value) -> String {
    table(
        &[
            "COMMAND UUID",
            "TYPE",
            "STATUS",
            "PRIORITY",
            "CREATED",
            "BY",
        ],
        v["items"]
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .map(|c| {
                        vec![
                            s(c, "uuid"),
                            s(c, "request_type"),
                            s(c, "status"),
                            s(c, "priority"),
                            s(c, "created_at"),
                            s(c, "created_by"),
                        ]
                    })
                    .collect()
            })
            .unwrap_or_default(),
    )
}

pub fn events(v: &Value) -> String {
    table(
        &[
            "ID", "TIME", "KIND", "SEVERITY", "DEVICE", "ACTOR", "MESSAGE",
        ],
        v["items"]
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .map(|e| {
                        vec![
                            s(e, "id"),
                            s(e, "occurred_at"),
                            s(e, "kind"),
                            s(e, "severity"),
                            s(e, "device_id"),
                            s(e, "actor"),
                            s(e, "message"),
                        ]
                    })
                    .collect()
            })
            .unwrap_or_default(),
    )
}

pub fn push(v: &Value) -> String {
    fields(
        v,
        &[
            "device_id",
            "outcome",
            "http_status",
            "reason",
            "apns_id",
            "attempts",
        ],
    )
}

pub fn push_certificate(v: &Value) -> String {
    let mut out = fields(
        v,
        &[
            "topic",
            "subject",
            "fingerprint",
            "not_before",
            "not_after",
            "days_left",
            "uploaded_by",
            "uploaded_at",
        ],
    );
    if let Some(w) = v.get("warning").and_then(Value::as_str) {
        out += &format!("WARNING: {w}\n");
    }
    out
}

pub fn enrollment(v: &Value) -> String {
    fields(
        v,
        &[
            "id",
            "platform",
            "name",
            "state",
            "url",
            "assigned_user",
            "assigned_group",
            "expires_at",
            "max_uses",
            "uses",
            "url_uses",
            "created_by",
            "created_at",
            "revoked_at",
        ],
    )
}

pub fn enrollment_list(v: &Value) -> String {
    table(
        &[
            "ID", "PLATFORM", "NAME", "STATE", "USES", "MAX", "EXPIRES", "USER", "GROUP",
        ],
        v["items"]
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .map(|e| {
                        vec![
                            s(e, "id"),
                            s(e, "platform"),
                            s(e, "name"),
                            s(e, "state"),
                            s(e, "uses"),
                            s(e, "max_uses"),
                            s(e, "expires_at"),
                            s(e, "assigned_user"),
                            s(e, "assigned_group"),
                        ]
                    })
                    .collect()
            })
            .unwrap_or_default(),
    )
}

pub fn pki(v: &Value) -> String {
    table(
        &[
            "OBJECT",
            "SUBJECT",
            "EXPIRES",
            "DAYS LEFT",
            "IMPORTED",
            "SHA-256",
        ],
        v.as_array()
            .map(|items| {
                items
                    .iter()
                    .map(|o| {
                        vec![
                            s(o, "name"),
                            s(o, "subject"),
                            s(o, "not_after"),
                            s(o, "days_left"),
                            s(o, "imported"),
                            s(o, "fingerprint"),
                        ]
                    })
                    .collect()
            })
            .unwrap_or_default(),
    )
}
