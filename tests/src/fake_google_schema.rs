//! Request validation for the fake AMAPI: the methods and schemas of Google's own
//! discovery document (`androidmanagement-v1.json`), checked the way Google's front end
//! checks a JSON payload: every field must be one the schema names (Google answers
//! 400 "Invalid JSON payload received. Unknown name ..."), every value of the type and
//! format the schema gives, every enum value one of the listed ones.
//!
//! The document is read from `MDM_AMAPI_DISCOVERY`, or from `../shared/schemas/...`
//! next to the project (CI has it); without it the fake validates nothing and says so.

use serde_json::Value;
use std::path::PathBuf;

pub struct Discovery {
    doc: Value,
    methods: Vec<Method>,
}

struct Method {
    id: String,
    http_method: String,
    template: Vec<String>,
    request: Option<String>,
}

fn discovery_path() -> PathBuf {
    std::env::var_os("MDM_AMAPI_DISCOVERY")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../../shared/schemas/android-management/androidmanagement-v1.json")
        })
}

fn collect(resource: &Value, out: &mut Vec<Method>) {
    if let Some(methods) = resource["methods"].as_object() {
        for m in methods.values() {
            let path = m["flatPath"].as_str().or(m["path"].as_str()).unwrap_or("");
            out.push(Method {
                id: m["id"].as_str().unwrap_or("").to_owned(),
                http_method: m["httpMethod"].as_str().unwrap_or("").to_owned(),
                template: path.split('/').map(str::to_owned).collect(),
                request: m["request"]["$ref"].as_str().map(str::to_owned),
            });
        }
    }
    if let Some(resources) = resource["resources"].as_object() {
        for r in resources.values() {
            collect(r, out);
        }
    }
}

fn segment_matches(template: &str, actual: &str) -> bool {
    match template.strip_prefix('{') {
        Some(rest) => {
            let suffix = rest.split_once('}').map(|(_, s)| s).unwrap_or("");
            if suffix.is_empty() {
                !actual.is_empty() && !actual.contains(':')
            } else {
                actual.len() > suffix.len() && actual.ends_with(suffix)
            }
        }
        None => template == actual,
    }
}

impl Discovery {
    /// The discovery document, or None (with a note on stderr) when it is not there.
    pub fn load() -> Option<Discovery> {
        let path = discovery_path();
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(_) => {
                eprintln!(
                    "NOTE: {} not found: the fake AMAPI does not validate request bodies (set MDM_AMAPI_DISCOVERY)",
                    path.display()
                );
                return None;
            }
        };
        let doc: Value = serde_json::from_str(&text).expect("the discovery document is JSON");
        let mut methods = Vec::new();
        collect(&doc, &mut methods);
        Some(Discovery { doc, methods })
    }

    /// The method `http_method path` calls (path without the leading slash, such as
    /// `v1/enterprises/LC1/devices/d1:issueCommand`): its id and request schema.
    pub fn method(&self, http_method: &str, path: &str) -> Option<(&str, Option<&str>)> {
        let actual: Vec<&str> = path.split('/').collect();
        self.methods
            .iter()
            .find(|m| {
                m.http_method == http_method
                    && m.template.len() == actual.len()
                    && m.template
                        .iter()
                        .zip(&actual)
                        .all(|(t, a)| segment_matches(t, a))
            })
            .map(|m| (m.id.as_str(), m.request.as_deref()))
    }

    /// Checks `value` against the named schema; the error reads like Google's.
    pub fn validate(&self, schema: &str, value: &Value) -> Result<(), String> {
        let s = self
            .doc
            .get("schemas")
            .and_then(|s| s.get(schema))
            .ok_or_else(|| format!("no schema {schema}"))?;
        self.check(s, value, schema)
    }

    fn check(&self, schema: &Value, value: &Value, at: &str) -> Result<(), String> {
        if value.is_null() {
            return Ok(());
        }
        if let Some(r) = schema["$ref"].as_str() {
            let target = &self.doc["schemas"][r];
            return self.check(target, value, at);
        }
        let bad = |what: &str| {
            Err(format!(
                "Invalid JSON payload received. Invalid value at '{at}' ({what}): {value}"
            ))
        };
        match schema["type"].as_str().unwrap_or("any") {
            "object" => {
                let Some(obj) = value.as_object() else {
                    return bad("object");
                };
                for (k, v) in obj {
                    let field = format!("{at}.{k}");
                    if let Some(p) = schema["properties"].get(k) {
                        self.check(p, v, &field)?;
                    } else if let Some(extra) = schema.get("additionalProperties") {
                        self.check(extra, v, &field)?;
                    } else {
                        return Err(format!(
                            "Invalid JSON payload received. Unknown name \"{k}\" at '{at}': Cannot find field."
                        ));
                    }
                }
                Ok(())
            }
            "array" => {
                let Some(items) = value.as_array() else {
                    return bad("array");
                };
                for (i, v) in items.iter().enumerate() {
                    self.check(&schema["items"], v, &format!("{at}[{i}]"))?;
                }
                Ok(())
            }
            "boolean" => {
                if value.is_boolean() {
                    Ok(())
                } else {
                    bad("bool")
                }
            }
            "integer" => match value {
                Value::Number(n) if n.is_i64() || n.is_u64() => Ok(()),
                Value::String(s) if s.parse::<i64>().is_ok() => Ok(()),
                _ => bad("int32"),
            },
            "number" => match value {
                Value::Number(_) => Ok(()),
                _ => bad("number"),
            },
            "string" => {
                let format = schema["format"].as_str().unwrap_or("");
                // proto3 JSON: int64 may be a number or a decimal string.
                if format == "int64" {
                    return match value {
                        Value::Number(n) if n.is_i64() || n.is_u64() => Ok(()),
                        Value::String(s) if s.parse::<i64>().is_ok() => Ok(()),
                        _ => bad("int64"),
                    };
                }
                let Some(s) = value.as_str() else {
                    return bad("string");
                };
                if let Some(allowed) = schema["enum"].as_array() {
                    if !allowed.iter().any(|a| a.as_str() == Some(s)) {
                        return bad("enum");
                    }
                }
                match format {
                    "google-duration" => {
                        let ok = s
                            .strip_suffix('s')
                            .is_some_and(|n| !n.is_empty() && n.parse::<f64>().is_ok());
                        if ok {
                            Ok(())
                        } else {
                            bad("google.protobuf.Duration")
                        }
                    }
                    "google-datetime" => chrono::DateTime::parse_from_rfc3339(s)
                        .map(|_| ())
                        .or_else(|_| bad("google.protobuf.Timestamp")),
                    "byte" => {
                        use base64::Engine;
                        let std = base64::engine::general_purpose::STANDARD.decode(s).is_ok();
                        let url = base64::engine::general_purpose::URL_SAFE.decode(s).is_ok();
                        if std || url {
                            Ok(())
                        } else {
                            bad("bytes")
                        }
                    }
                    _ => Ok(()),
                }
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_validator_refuses_what_google_refuses() {
        let Some(d) = Discovery::load() else { return };
        assert_eq!(
            d.method("POST", "v1/enterprises/LC1/devices/d1:issueCommand"),
            Some((
                "androidmanagement.enterprises.devices.issueCommand",
                Some("Command")
            ))
        );
        assert_eq!(
            d.method("GET", "v1/enterprises/LC1/devices/d1")
                .map(|m| m.0),
            Some("androidmanagement.enterprises.devices.get")
        );
        d.validate("Command", &json!({"type": "LOCK", "duration": "600s"}))
            .unwrap();
        assert!(d.validate("Command", &json!({"type": "BLINK"})).is_err());
        assert!(d
            .validate("Command", &json!({"type": "LOCK", "colour": 1}))
            .is_err());
        assert!(d
            .validate("Command", &json!({"duration": "10 minutes"}))
            .is_err());
        d.validate("Policy", &json!({"passwordPolicies": [{"passwordQuality": "NUMERIC", "passwordMinimumLength": 6}]}))
            .unwrap();
        assert!(d
            .validate(
                "Policy",
                &json!({"passwordPolicies": [{"passwordMinimumLength": "six"}]})
            )
            .is_err());
    }
}
