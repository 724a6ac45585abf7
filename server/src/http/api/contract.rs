//! The API keeps its contract: before a handler runs, the request's path parameters,
//! query string and JSON body are checked against its operation in the served OpenAPI
//! document (http/api/openapi.rs), so that what the document calls malformed is
//! refused, always with 400 and the first problem named, and nothing the handlers
//! parse can disagree with it unnoticed (schemathesis checks the other direction in
//! tests/tests/api_contract.rs).
//!
//! What a schema cannot state (a certificate that does not parse, a password that
//! contains the account name, a policy that does not compile) is the service's to
//! refuse, with 422 (ServiceError::Unprocessable).
//!
//! The schemas are compiled once, from the same document the server serves, with the
//! `jsonschema` crate (JSON Schema 2020-12, the dialect of OpenAPI 3.1).

use super::rights::SCOPE;
use crate::http::error::ApiError;
use jsonschema::{Draft, Validator};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

/// Where a parameter travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Location {
    Path,
    Query,
}

/// How a parameter's text becomes the JSON value its schema describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scalar {
    Integer,
    Number,
    Boolean,
    String,
}

struct Parameter {
    name: String,
    location: Location,
    required: bool,
    scalar: Scalar,
    schema: Validator,
}

struct Operation {
    parameters: Vec<Parameter>,
    body: Option<Body>,
}

struct Body {
    required: bool,
    schema: Validator,
    /// For a `oneOf` of objects told apart by one field (a command's `type`, an
    /// evidence's `kind`): that field and each value's own schema, so that an error
    /// names what is wrong with the variant meant, not that no variant matched.
    variants: Option<Variants>,
}

/// The discriminating field, and each of its values with that variant's validator.
type Variants = (String, Vec<(String, Arc<Validator>)>);

/// The field that tells a `oneOf`'s object variants apart (each lists its values in
/// an `enum`), with each value's validator.
fn variants_of(schema: &Value, components: &Value) -> Option<Variants> {
    let resolved = match schema["$ref"].as_str() {
        Some(r) => {
            let name = r.strip_prefix("#/components/schemas/")?;
            &components["schemas"][name]
        }
        None => schema,
    };
    let one_of = resolved["oneOf"].as_array()?;
    let field = ["type", "kind"].into_iter().find(|f| {
        one_of
            .iter()
            .all(|v| v["properties"][*f]["enum"].is_array())
    })?;
    let mut variants = Vec::new();
    for variant in one_of {
        let v = Arc::new(validator(variant, components));
        for value in variant["properties"][field]["enum"].as_array()? {
            variants.push((value.as_str()?.to_owned(), v.clone()));
        }
    }
    Some((field.to_owned(), variants))
}

/// (METHOD, route under /api/v1) -> its checks.
type Contract = HashMap<(String, String), Operation>;

fn contract() -> &'static Contract {
    static CONTRACT: OnceLock<Contract> = OnceLock::new();
    CONTRACT.get_or_init(|| compile(&super::openapi::full_document()))
}

/// A validator for `schema`, whose `$ref`s point into the document's components.
fn validator(schema: &Value, components: &Value) -> Validator {
    let root = json!({ "components": components, "allOf": [schema] });
    jsonschema::options()
        .with_draft(Draft::Draft202012)
        .should_validate_formats(true)
        .build(&root)
        // The document is the server's own: a schema that does not compile is a bug
        // that the unit test below finds before any request does.
        .unwrap_or_else(|e| panic!("openapi.json holds a schema that does not compile: {e}"))
}

fn scalar_of(schema: &Value) -> Scalar {
    let kind = match &schema["type"] {
        Value::String(s) => s.as_str(),
        Value::Array(kinds) => kinds
            .iter()
            .filter_map(Value::as_str)
            .find(|k| *k != "null")
            .unwrap_or("string"),
        _ => "string",
    };
    match kind {
        "integer" => Scalar::Integer,
        "number" => Scalar::Number,
        "boolean" => Scalar::Boolean,
        _ => Scalar::String,
    }
}

fn compile(doc: &Value) -> Contract {
    let components = &doc["components"];
    let mut contract = Contract::new();
    let Some(paths) = doc["paths"].as_object() else {
        return contract;
    };
    for (route, operations) in paths {
        let Some(operations) = operations.as_object() else {
            continue;
        };
        let shared = operations.get("parameters").and_then(Value::as_array);
        for (method, operation) in operations {
            if method == "parameters" {
                continue;
            }
            let own = operation.get("parameters").and_then(Value::as_array);
            let parameters = shared
                .into_iter()
                .flatten()
                .chain(own.into_iter().flatten())
                .filter_map(|p| {
                    let location = match p["in"].as_str()? {
                        "path" => Location::Path,
                        "query" => Location::Query,
                        _ => return None,
                    };
                    let schema = p.get("schema").cloned().unwrap_or(json!({}));
                    Some(Parameter {
                        name: p["name"].as_str()?.to_owned(),
                        location,
                        required: p["required"].as_bool().unwrap_or(false),
                        scalar: scalar_of(&schema),
                        schema: validator(&schema, components),
                    })
                })
                .collect();
            let body = operation
                .get("requestBody")
                .and_then(|b| {
                    let schema = b["content"].get("application/json")?.get("schema")?;
                    Some((b["required"].as_bool().unwrap_or(false), schema))
                })
                .map(|(required, schema)| Body {
                    required,
                    schema: validator(schema, components),
                    variants: variants_of(schema, components),
                });
            contract.insert(
                (method.to_ascii_uppercase(), route.clone()),
                Operation { parameters, body },
            );
        }
    }
    contract
}

fn refuse(message: String) -> ApiError {
    ApiError::bad_request(message)
}

/// The first problem `schema` finds in `value`, said for `what`.
fn check(schema: &Validator, value: &Value, what: &str) -> Result<(), ApiError> {
    match schema.iter_errors(value).next() {
        None => Ok(()),
        Some(e) => {
            let at = e.instance_path().to_string();
            Err(refuse(if at.is_empty() {
                format!("{what}: {e}")
            } else {
                format!("{what} at {at}: {e}")
            }))
        }
    }
}

/// A parameter's text as the JSON value its schema describes.
fn typed(parameter: &Parameter, text: &str) -> Result<Value, ApiError> {
    let what = || match parameter.location {
        Location::Path => format!("path parameter {:?}", parameter.name),
        Location::Query => format!("query parameter {:?}", parameter.name),
    };
    match parameter.scalar {
        Scalar::String => Ok(Value::String(text.to_owned())),
        Scalar::Integer => text
            .parse::<i64>()
            .map(Value::from)
            .map_err(|_| refuse(format!("{}: {text:?} is not an integer", what()))),
        Scalar::Number => text
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map(Value::Number)
            .ok_or_else(|| refuse(format!("{}: {text:?} is not a number", what()))),
        Scalar::Boolean => match text {
            "true" => Ok(Value::Bool(true)),
            "false" => Ok(Value::Bool(false)),
            _ => Err(refuse(format!(
                "{}: {text:?} is neither true nor false",
                what()
            ))),
        },
    }
}

/// The operation `method` `route` (an actix pattern, with or without /api/v1), if
/// the document describes it.
fn operation(method: &str, route: &str) -> Option<&'static Operation> {
    let route = route.strip_prefix(SCOPE).unwrap_or(route);
    contract().get(&(method.to_ascii_uppercase(), route.to_owned()))
}

/// Whether the operation takes a JSON body (so the middleware reads it first).
pub fn takes_body(method: &str, route: &str) -> bool {
    operation(method, route).is_some_and(|o| o.body.is_some())
}

/// `%XX` escapes decoded (malformed ones kept as they are); None when the result is
/// not UTF-8.
fn percent_decoded(segment: &str) -> Option<String> {
    percent_encoding::percent_decode_str(segment)
        .decode_utf8()
        .ok()
        .map(|text| text.into_owned())
}

/// The path parameters of `path` (the request's, percent-encoded) under `route`
/// (its pattern). The middleware runs before the router fills the request's own.
fn path_parameters(route: &str, path: &str) -> Vec<(String, String)> {
    let route = route.strip_prefix(SCOPE).unwrap_or(route);
    let path = path.strip_prefix(SCOPE).unwrap_or(path);
    route
        .split('/')
        .zip(path.split('/'))
        .filter_map(|(pattern, segment)| {
            let name = pattern.strip_prefix('{')?.strip_suffix('}')?;
            Some((name.to_owned(), percent_decoded(segment)?))
        })
        .collect()
}

/// Checks the path parameters and the query string.
pub fn check_parameters(
    method: &str,
    route: &str,
    path: &str,
    query: &str,
) -> Result<(), ApiError> {
    let Some(operation) = operation(method, route) else {
        return Ok(());
    };
    let path_values = path_parameters(route, path);
    let pairs: Vec<(String, String)> = if query.is_empty() {
        Vec::new()
    } else {
        serde_urlencoded::from_str(query)
            .map_err(|e| refuse(format!("invalid query string: {e}")))?
    };
    for parameter in &operation.parameters {
        let values: Vec<&str> = match parameter.location {
            Location::Path => path_values
                .iter()
                .filter(|(k, _)| *k == parameter.name)
                .map(|(_, v)| v.as_str())
                .collect(),
            Location::Query => pairs
                .iter()
                .filter(|(k, _)| *k == parameter.name)
                .map(|(_, v)| v.as_str())
                .collect(),
        };
        let what = match parameter.location {
            Location::Path => format!("path parameter {:?}", parameter.name),
            Location::Query => format!("query parameter {:?}", parameter.name),
        };
        match values.as_slice() {
            [] if parameter.required => return Err(refuse(format!("{what} is required"))),
            [] => {}
            [text] => check(&parameter.schema, &typed(parameter, text)?, &what)?,
            _ => return Err(refuse(format!("{what} is given more than once"))),
        }
    }
    Ok(())
}

/// Checks a JSON body (`bytes`, as sent). Some(bytes) when the handler is to read
/// other bytes: the same JSON with whole numbers written as integers (JSON Schema
/// takes 5.0 for the integer 5, serde does not).
pub fn check_body(method: &str, route: &str, bytes: &[u8]) -> Result<Option<Vec<u8>>, ApiError> {
    let Some(body) = operation(method, route).and_then(|o| o.body.as_ref()) else {
        return Ok(None);
    };
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return if body.required {
            Err(refuse("a JSON body is required".into()))
        } else {
            Ok(None)
        };
    }
    let mut value: Value =
        serde_json::from_slice(bytes).map_err(|e| refuse(format!("invalid JSON body: {e}")))?;
    let value_for_check = &value;
    if let (Err(e), Some((field, variants))) = (
        check(&body.schema, value_for_check, "the JSON body"),
        &body.variants,
    ) {
        let meant = value_for_check.get(field).and_then(Value::as_str);
        return Err(
            match variants.iter().find(|(v, _)| Some(v.as_str()) == meant) {
                Some((name, schema)) => {
                    check(schema, value_for_check, &format!("the JSON body ({name})"))
                        .err()
                        .unwrap_or(e)
                }
                None => {
                    let names: Vec<&str> = variants.iter().map(|(v, _)| v.as_str()).collect();
                    let given = match meant {
                        Some(v) => format!("{v:?}"),
                        None => "missing".into(),
                    };
                    refuse(format!(
                        "the JSON body: {field:?} is {given}; it must be one of {}",
                        names.join(", ")
                    ))
                }
            },
        );
    }
    check(&body.schema, value_for_check, "the JSON body")?;
    // The document lets an optional field be null, meaning absent (the CLI sends unset
    // options so); the handlers get it absent. A PATCH keeps its top-level nulls: there
    // null clears a field, absent keeps it.
    let nulls_left_out = leave_out_nulls(&mut value, method.eq_ignore_ascii_case("PATCH"));
    let whole = integers_made_whole(&mut value);
    Ok((nulls_left_out || whole).then(|| value.to_string().into_bytes()))
}

/// Removes object members whose value is null, at any depth (but the top level's
/// when `keep_top`); true if any was.
fn leave_out_nulls(value: &mut Value, keep_top: bool) -> bool {
    match value {
        Value::Object(map) => {
            let before = map.len();
            if !keep_top {
                map.retain(|_, v| !v.is_null());
            }
            let removed = map.len() != before;
            map.values_mut()
                .fold(removed, |any, v| leave_out_nulls(v, false) | any)
        }
        Value::Array(items) => items
            .iter_mut()
            .fold(false, |any, v| leave_out_nulls(v, false) | any),
        _ => false,
    }
}

/// Rewrites floats without a fraction (in i64's range) as integers; true if any was.
fn integers_made_whole(value: &mut Value) -> bool {
    match value {
        Value::Number(n) if n.is_f64() => {
            let f = n.as_f64().unwrap_or(f64::NAN);
            if f.fract() == 0.0 && f.abs() < 9.0e15 {
                *value = Value::from(f as i64);
                true
            } else {
                false
            }
        }
        Value::Array(items) => items
            .iter_mut()
            .fold(false, |any, v| integers_made_whole(v) | any),
        Value::Object(map) => map
            .values_mut()
            .fold(false, |any, v| integers_made_whole(v) | any),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_schema_of_the_document_compiles() {
        let contract = compile(&super::super::openapi::full_document());
        assert!(contract.len() > 50, "{} operations", contract.len());
    }

    #[test]
    fn path_parameters_are_read_from_the_path() {
        assert_eq!(
            path_parameters(
                "/api/v1/devices/{id}/lock",
                "/api/v1/devices/udid%3AAB%20C/lock"
            ),
            vec![("id".to_owned(), "udid:AB C".to_owned())]
        );
        assert_eq!(percent_decoded("%FF"), None);
        assert_eq!(percent_decoded("a%2"), Some("a%2".into()));
    }

    #[test]
    fn query_values_are_typed_then_checked() {
        let doc = json!({
            "paths": { "/things": { "get": { "parameters": [
                { "name": "limit", "in": "query", "schema": { "type": "integer", "minimum": 1, "maximum": 10 } },
                { "name": "on", "in": "query", "schema": { "type": "boolean" } },
                { "name": "kind", "in": "query", "schema": { "type": "string", "enum": ["a", "b"] } }
            ] } } },
            "components": {}
        });
        let contract = compile(&doc);
        let op = &contract[&("GET".to_owned(), "/things".to_owned())];
        let run = |q: &str| -> Result<(), String> {
            let pairs: Vec<(String, String)> = serde_urlencoded::from_str(q).unwrap();
            for p in &op.parameters {
                for (_, v) in pairs.iter().filter(|(k, _)| *k == p.name) {
                    let value = typed(p, v).map_err(|e| e.message)?;
                    check(&p.schema, &value, &p.name).map_err(|e| e.message)?;
                }
            }
            Ok(())
        };
        assert!(run("limit=5&on=true&kind=a").is_ok());
        assert!(run("limit=0").unwrap_err().contains("minimum"));
        assert!(run("limit=x").unwrap_err().contains("not an integer"));
        assert!(run("on=null")
            .unwrap_err()
            .contains("neither true nor false"));
        assert!(run("kind=null").is_err());
    }
}
