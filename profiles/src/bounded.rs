//! Reading untrusted plists without trusting their shape.
//!
//! A device's plist is read as a flat stream of events (plist's XML and binary event
//! readers keep their own stacks, they never recurse) and checked against
//! [`PlistLimits`] *before* any tree exists: nesting depth, number of elements,
//! string and data sizes. Only a plist within the limits is built into a
//! [`plist::Value`], again without recursion, and only that bounded tree is handed to
//! serde (whose deserializers do recurse, once per nesting level). A plist nesting
//! thousands of arrays used to overflow the worker thread's stack and abort the whole
//! server; here it stops at the first event past the depth limit.
//!
//! The element limit also bounds binary plists whose object table shares one array
//! between many parents: such a plist is a few hundred bytes but expands
//! exponentially as a tree, and the event count is what grows.
//!
//! Only XML and binary plists are accepted (what Apple devices send); the OpenStep
//! ASCII format that `plist::from_bytes` would also try is refused.

use crate::ParseError;
use plist::stream::{BinaryReader, Event, XmlReader};
use plist::{Dictionary, Value};
use std::io::Cursor;

/// How much of a plist a peer may send. Every limit is far above what a real device
/// message needs and far below what would exhaust a thread's stack or the memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlistLimits {
    /// Collections inside collections. Real device messages nest fewer than 10 deep
    /// (ProfileList > profile > PayloadContent > payload > value); serde needs a few
    /// hundred bytes of stack per level, so 64 levels cost well under 100 kB.
    pub max_depth: usize,
    /// Values of any kind (each key counts too). A macOS InstalledApplicationList of
    /// 1,000 apps is about 20,000.
    pub max_elements: usize,
    /// Bytes of one string (or dictionary key).
    pub max_string_bytes: usize,
    /// Bytes of one `<data>` value (certificates, tokens, profiles: kilobytes).
    pub max_data_bytes: usize,
}

impl PlistLimits {
    /// Limits for everything an Apple device sends to the check-in and server URLs.
    pub const DEVICE: PlistLimits = PlistLimits {
        max_depth: 64,
        max_elements: 250_000,
        max_string_bytes: 256 * 1024,
        max_data_bytes: 1024 * 1024,
    };
}

impl Default for PlistLimits {
    fn default() -> Self {
        PlistLimits::DEVICE
    }
}

/// Reads `body` (XML or binary plist) into a value, refusing it at the first event
/// that crosses a limit.
pub fn read_value(body: &[u8], limits: &PlistLimits) -> Result<Value, ParseError> {
    if body.starts_with(b"bplist00") {
        build(BinaryReader::new(Cursor::new(body)), body, limits)
    } else {
        build(XmlReader::new(Cursor::new(body)), body, limits)
    }
}

/// Reads `body` and requires its root to be a dictionary, as every device message is.
pub fn read_dictionary(body: &[u8], limits: &PlistLimits) -> Result<Dictionary, ParseError> {
    match read_value(body, limits)? {
        Value::Dictionary(dict) => Ok(dict),
        _ => Err(ParseError::new("not a plist dictionary", body)),
    }
}

/// A collection being filled: an array, or a dictionary with the key whose value
/// comes next.
enum Open {
    Array(Vec<Value>),
    Dict(Dictionary, Option<String>),
}

fn build<I>(events: I, body: &[u8], limits: &PlistLimits) -> Result<Value, ParseError>
where
    I: Iterator<Item = Result<Event<'static>, plist::Error>>,
{
    let mut stack: Vec<Open> = Vec::new();
    let mut root: Option<Value> = None;
    let mut elements = 0usize;
    for event in events {
        let event = event.map_err(|e| ParseError::new(format!("not a valid plist: {e}"), body))?;
        if root.is_some() {
            return Err(ParseError::new(
                "content after the plist's root value",
                body,
            ));
        }
        elements += 1;
        if elements > limits.max_elements {
            return Err(ParseError::too_large(
                format!("more than {} plist elements", limits.max_elements),
                body,
            ));
        }
        let value = match event {
            Event::StartArray(_) | Event::StartDictionary(_) => {
                if stack.len() >= limits.max_depth {
                    return Err(ParseError::new(
                        format!("plist nests deeper than {} levels", limits.max_depth),
                        body,
                    ));
                }
                // The announced length is the peer's claim: never preallocate from it.
                stack.push(match event {
                    Event::StartArray(_) => Open::Array(Vec::new()),
                    _ => Open::Dict(Dictionary::new(), None),
                });
                continue;
            }
            Event::EndCollection => match stack.pop() {
                Some(Open::Array(items)) => Value::Array(items),
                Some(Open::Dict(dict, None)) => Value::Dictionary(dict),
                Some(Open::Dict(_, Some(key))) => {
                    return Err(ParseError::new(
                        format!("dictionary key {key:?} has no value"),
                        body,
                    ))
                }
                None => return Err(ParseError::new("unbalanced plist collection", body)),
            },
            Event::String(s) => {
                if s.len() > limits.max_string_bytes {
                    return Err(ParseError::too_large(
                        format!(
                            "a plist string is longer than {} bytes",
                            limits.max_string_bytes
                        ),
                        body,
                    ));
                }
                Value::String(s.into_owned())
            }
            Event::Data(d) => {
                if d.len() > limits.max_data_bytes {
                    return Err(ParseError::too_large(
                        format!(
                            "a plist data value is longer than {} bytes",
                            limits.max_data_bytes
                        ),
                        body,
                    ));
                }
                Value::Data(d.into_owned())
            }
            Event::Boolean(b) => Value::Boolean(b),
            Event::Date(d) => Value::Date(d),
            Event::Integer(i) => Value::Integer(i),
            Event::Real(r) => Value::Real(r),
            Event::Uid(u) => Value::Uid(u),
            // Event is non-exhaustive: a kind this code does not know is refused.
            _ => return Err(ParseError::new("unsupported plist value", body)),
        };
        match stack.last_mut() {
            None => root = Some(value),
            Some(Open::Array(items)) => items.push(value),
            Some(Open::Dict(_, key @ None)) => match value {
                Value::String(k) => *key = Some(k),
                _ => return Err(ParseError::new("a dictionary key is not a string", body)),
            },
            Some(Open::Dict(dict, key @ Some(_))) => {
                let k = key.take().unwrap_or_default();
                dict.insert(k, value);
            }
        }
    }
    if !stack.is_empty() {
        return Err(ParseError::new("plist ends inside a collection", body));
    }
    root.ok_or_else(|| ParseError::new("empty plist", body))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nested_arrays(depth: usize) -> Vec<u8> {
        let mut xml =
            String::from(r#"<?xml version="1.0" encoding="UTF-8"?><plist version="1.0">"#);
        xml.push_str(&"<array>".repeat(depth));
        xml.push_str(&"</array>".repeat(depth));
        xml.push_str("</plist>");
        xml.into_bytes()
    }

    #[test]
    fn depth_at_the_limit_is_read_and_past_it_refused() {
        let limits = PlistLimits::DEVICE;
        assert!(read_value(&nested_arrays(limits.max_depth), &limits).is_ok());
        let err = read_value(&nested_arrays(limits.max_depth + 1), &limits).unwrap_err();
        assert!(err.reason.contains("deeper"), "{}", err.reason);
        assert!(!err.too_large);
        // What aborted the server: tens of thousands of levels cost nothing here.
        let err = read_value(&nested_arrays(50_000), &limits).unwrap_err();
        assert!(err.reason.contains("deeper"));
    }

    #[test]
    fn sizes_past_the_limits_are_too_large() {
        let limits = PlistLimits {
            max_depth: 8,
            max_elements: 10,
            max_string_bytes: 4,
            max_data_bytes: 2,
        };
        let xml = |inner: &str| {
            format!(r#"<?xml version="1.0" encoding="UTF-8"?><plist version="1.0">{inner}</plist>"#)
        };
        assert!(read_value(xml("<string>abcd</string>").as_bytes(), &limits).is_ok());
        let e = read_value(xml("<string>abcde</string>").as_bytes(), &limits).unwrap_err();
        assert!(e.too_large);
        let e = read_value(xml("<data>AAAA</data>").as_bytes(), &limits).unwrap_err();
        assert!(e.too_large, "{}", e.reason);
        let many = format!("<array>{}</array>", "<true/>".repeat(10));
        let e = read_value(xml(&many).as_bytes(), &limits).unwrap_err();
        assert!(e.too_large && e.reason.contains("elements"));
    }

    #[test]
    fn binary_plists_are_bounded_too() {
        let mut value = Value::Boolean(true);
        for _ in 0..100 {
            value = Value::Array(vec![value]);
        }
        let mut bin = Vec::new();
        value.to_writer_binary(&mut bin).unwrap();
        let err = read_value(&bin, &PlistLimits::DEVICE).unwrap_err();
        assert!(err.reason.contains("deeper"), "{}", err.reason);
    }

    #[test]
    fn round_trips_a_real_message_and_refuses_ascii_plists() {
        let mut dict = Dictionary::new();
        dict.insert("UDID".into(), "0000-1111".into());
        dict.insert("Token".into(), Value::Data(vec![1, 2, 3]));
        dict.insert(
            "Nested".into(),
            Value::Array(vec![Value::Integer(5.into()), Value::Boolean(false)]),
        );
        let value = Value::Dictionary(dict.clone());
        let mut xml = Vec::new();
        value.to_writer_xml(&mut xml).unwrap();
        let mut bin = Vec::new();
        value.to_writer_binary(&mut bin).unwrap();
        assert_eq!(read_dictionary(&xml, &PlistLimits::DEVICE).unwrap(), dict);
        assert_eq!(read_dictionary(&bin, &PlistLimits::DEVICE).unwrap(), dict);
        assert!(read_value(b"{ UDID = x; }", &PlistLimits::DEVICE).is_err());
        assert!(read_value(b"", &PlistLimits::DEVICE).is_err());
    }
}
