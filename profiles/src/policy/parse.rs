//! Reading a policy from JSON, TOML or YAML into [`PolicyDocument`].
//!
//! Only the shape is checked here (keys, types, enum values); the rules are
//! [`super::validate`]'s. A shape error stops the reader, so there is one error, with
//! the field path the reader was at and the position in the text.

use super::model::{FieldError, Format, PolicyDocument};

/// Parses a document. The error names the field (`wifi[0].security`), the position in
/// the text, and, for an unknown key or value, what is accepted there.
pub fn parse(text: &str, format: Format) -> Result<PolicyDocument, Vec<FieldError>> {
    if text.trim().is_empty() {
        return Err(vec![FieldError::new("", "the policy is empty")]);
    }
    let result = match format {
        Format::Json => {
            let mut de = serde_json::Deserializer::from_str(text);
            serde_path_to_error::deserialize(&mut de)
                .map_err(|e| convert(e.path().to_string(), e.into_inner().to_string()))
                .and_then(|doc| {
                    de.end()
                        .map(|()| doc)
                        .map_err(|e| convert(String::new(), e.to_string()))
                })
        }
        Format::Toml => {
            let de = toml::Deserializer::new(text);
            serde_path_to_error::deserialize(de).map_err(|e| {
                let path = e.path().to_string();
                let inner = e.into_inner();
                let message = match inner.span() {
                    Some(span) => {
                        let (line, column) = line_column(text, span.start);
                        format!(
                            "{} at line {line} column {column}",
                            inner.message().trim_end()
                        )
                    }
                    None => inner.message().trim_end().to_string(),
                };
                convert(path, message)
            })
        }
        Format::Yaml => {
            let de = serde_norway::Deserializer::from_str(text);
            serde_path_to_error::deserialize(de)
                .map_err(|e| convert(e.path().to_string(), e.into_inner().to_string()))
        }
    };
    result.map_err(|e| vec![e])
}

fn convert(path: String, message: String) -> FieldError {
    let path = if path == "." { String::new() } else { path };
    // serde_norway starts its messages with (part of) the path too.
    let message = match message.split_once(": ") {
        Some((head, rest)) if !head.is_empty() && !head.contains(' ') && path.starts_with(head) => {
            rest.to_string()
        }
        _ => message,
    };
    let path = refine(path, &message);
    let allowed = allowed_from(&message);
    FieldError {
        path,
        message,
        allowed,
    }
}

/// A key that the chosen `type` or `method` does not have is found after the table
/// is read (see `model.rs`), at the table's path: add the key.
fn refine(path: String, message: &str) -> String {
    match message
        .strip_prefix("unknown field `")
        .and_then(|rest| rest.split_once("` for "))
    {
        Some((key, _)) => format!("{path}.{key}"),
        None => path,
    }
}

/// "unknown field `x`, expected one of `a`, `b`" → "a, b".
fn allowed_from(message: &str) -> Option<String> {
    let at = message.find(", expected ")?;
    let rest = &message[at + ", expected ".len()..];
    let rest = rest.split(" at line ").next().unwrap_or(rest);
    let rest = rest.lines().next().unwrap_or(rest);
    if !rest.contains('`') {
        return None;
    }
    let rest = rest.strip_prefix("one of ").unwrap_or(rest);
    Some(
        rest.replace('`', "")
            .trim_end_matches(['.', ','])
            .to_string(),
    )
}

/// 1-based line and column (in characters) of a byte offset.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let mut end = offset.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let before = &text[..end];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
    (line, column)
}
