//! Policy documents at rest: sealed whole, shown masked.
//!
//! A pre-shared Wi-Fi key is the only secret a policy can hold (domain passwords are
//! asked on the device, never written in a policy). The API shows it as
//! [`MASK`]; a document sent back with the mask keeps the stored key of the
//! network with the same SSID, so an admin can edit a policy they only saw masked.

use crate::services::{ServiceError, ServiceResult};
use enrollment::seal::Sealer;
use profiles::policy::PolicyDocument;
use serde::Serialize;
use serde_json::Value;

pub const MASK: &str = "********";
const PURPOSE: &str = "policy.document";

fn seal_row(policy_id: &str, version: i32) -> String {
    format!("{policy_id}:{version}")
}

pub fn seal(
    sealer: &Sealer,
    policy_id: &str,
    version: i32,
    doc: &PolicyDocument,
) -> ServiceResult<Vec<u8>> {
    let json = serde_json::to_vec(doc).map_err(|e| ServiceError::Internal(e.to_string()))?;
    sealer
        .seal(PURPOSE, &seal_row(policy_id, version), &json)
        .map_err(|e| ServiceError::Internal(format!("sealing the policy: {e}")))
}

pub fn open(
    sealer: &Sealer,
    policy_id: &str,
    version: i32,
    sealed: &[u8],
) -> ServiceResult<PolicyDocument> {
    let json = sealer
        .open(PURPOSE, &seal_row(policy_id, version), sealed)
        .map_err(|e| ServiceError::Internal(format!("policy {policy_id} v{version}: {e}")))?;
    serde_json::from_slice(&json)
        .map_err(|e| ServiceError::Internal(format!("policy {policy_id} v{version}: {e}")))
}

/// The document as the API shows it: every secret masked.
pub fn masked(doc: &PolicyDocument) -> Value {
    let mut value = serde_json::to_value(doc).unwrap_or(Value::Null);
    if let Some(networks) = value.get_mut("wifi").and_then(Value::as_array_mut) {
        for network in networks {
            if let Some(p) = network
                .get_mut("security")
                .and_then(|s| s.get_mut("passphrase"))
            {
                *p = Value::String(MASK.into());
            }
        }
    }
    value
}

/// Puts back the stored key where the admin sent the mask; a mask with nothing to
/// put back is an error (it would become the network's key).
pub fn unmask(
    doc: &mut PolicyDocument,
    previous: Option<&PolicyDocument>,
) -> Result<(), (String, String)> {
    let mut value = serde_json::to_value(&*doc).map_err(|e| ("".into(), e.to_string()))?;
    let old = previous.map(|p| serde_json::to_value(p).unwrap_or(Value::Null));
    let Some(networks) = value.get_mut("wifi").and_then(Value::as_array_mut) else {
        return Ok(());
    };
    let mut changed = false;
    for (i, network) in networks.iter_mut().enumerate() {
        let ssid = network.get("ssid").cloned();
        let Some(p) = network
            .get_mut("security")
            .and_then(|s| s.get_mut("passphrase"))
        else {
            continue;
        };
        if p.as_str() != Some(MASK) {
            continue;
        }
        let stored = old
            .as_ref()
            .and_then(|o| o.get("wifi"))
            .and_then(Value::as_array)
            .and_then(|list| list.iter().find(|n| n.get("ssid") == ssid.as_ref()))
            .and_then(|n| n.get("security"))
            .and_then(|s| s.get("passphrase"))
            .cloned();
        match stored {
            Some(key) => {
                *p = key;
                changed = true;
            }
            None => {
                return Err((
                    format!("wifi[{i}].security.passphrase"),
                    "is the mask the API shows, and no stored key of this SSID is there to keep: give the key".into(),
                ))
            }
        }
    }
    if changed {
        *doc = serde_json::from_value(value).map_err(|e| ("".into(), e.to_string()))?;
    }
    Ok(())
}

/// One line of a document diff.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct FieldChange {
    pub path: String,
    pub before: Option<Value>,
    pub after: Option<Value>,
}

/// Field-level differences between two (masked) documents.
pub fn diff(before: &Value, after: &Value) -> Vec<FieldChange> {
    let mut out = Vec::new();
    walk("", before, after, &mut out);
    out
}

fn walk(path: &str, a: &Value, b: &Value, out: &mut Vec<FieldChange>) {
    let join = |key: &str| {
        if path.is_empty() {
            key.to_owned()
        } else {
            format!("{path}.{key}")
        }
    };
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let mut keys: Vec<&String> = x.keys().chain(y.keys()).collect();
            keys.sort();
            keys.dedup();
            for k in keys {
                match (x.get(k), y.get(k)) {
                    (Some(v), Some(w)) => walk(&join(k), v, w, out),
                    (v, w) => out.push(FieldChange {
                        path: join(k),
                        before: v.cloned(),
                        after: w.cloned(),
                    }),
                }
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            for i in 0..x.len().max(y.len()) {
                let p = format!("{path}[{i}]");
                match (x.get(i), y.get(i)) {
                    (Some(v), Some(w)) => walk(&p, v, w, out),
                    (v, w) => out.push(FieldChange {
                        path: p,
                        before: v.cloned(),
                        after: w.cloned(),
                    }),
                }
            }
        }
        _ if a != b => out.push(FieldChange {
            path: path.to_owned(),
            before: Some(a.clone()),
            after: Some(b.clone()),
        }),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn diff_names_each_changed_field_by_path() {
        let a = json!({"passcode": {"min_length": 6}, "wifi": [{"ssid": "a"}]});
        let b = json!({"passcode": {"min_length": 8}, "wifi": [{"ssid": "a"}, {"ssid": "b"}]});
        let d = diff(&a, &b);
        assert_eq!(d.len(), 2);
        assert_eq!(d[0].path, "passcode.min_length");
        assert_eq!(d[1].path, "wifi[1]");
        assert!(diff(&a, &a).is_empty());
    }
}
