//! Plist values as JSON for the admin API: data as base64, dates as RFC 3339.

use base64::Engine;
use serde_json::Value as Json;

pub fn to_json(value: &plist::Value) -> Json {
    match value {
        plist::Value::Array(items) => Json::Array(items.iter().map(to_json).collect()),
        plist::Value::Dictionary(dict) => {
            Json::Object(dict.iter().map(|(k, v)| (k.clone(), to_json(v))).collect())
        }
        plist::Value::Boolean(b) => Json::Bool(*b),
        plist::Value::Data(d) => Json::String(base64::engine::general_purpose::STANDARD.encode(d)),
        plist::Value::Date(d) => Json::String(d.to_xml_format()),
        plist::Value::Real(r) => serde_json::Number::from_f64(*r)
            .map(Json::Number)
            .unwrap_or(Json::Null),
        plist::Value::Integer(i) => i
            .as_signed()
            .map(Json::from)
            .or_else(|| i.as_unsigned().map(Json::from))
            .unwrap_or(Json::Null),
        plist::Value::String(s) => Json::String(s.clone()),
        plist::Value::Uid(u) => Json::from(u.get()),
        _ => Json::Null,
    }
}
