//! Hand-made hostile property lists: XML entity bombs, nesting far deeper than any
//! device sends, and binary plists whose object table is built by hand so that it can
//! hold what no serializer writes (references to itself, cycles, one object shared
//! by every slot so that a naive reader expands 2^n copies, offsets out of range).

use plist::{Dictionary, Value};

pub fn to_xml(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    value.to_writer_xml(&mut out).expect("plist to XML");
    out
}

pub fn to_binary(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    value.to_writer_binary(&mut out).expect("plist to binary");
    out
}

pub fn dict(entries: Vec<(&str, Value)>) -> Value {
    Value::Dictionary(
        entries
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect::<Dictionary>(),
    )
}

const XML_HEAD: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";

/// "Billion laughs": ten entities each expanding to ten of the previous one, used in
/// the value of `key` of a report (whose Status is invalid unless `key` is Status). A
/// reader that expanded it would build 10^9 copies of "lol".
pub fn billion_laughs(udid: &str, key: &str) -> Vec<u8> {
    let mut s = String::from(XML_HEAD);
    s.push_str("<!DOCTYPE plist [\n<!ENTITY lol0 \"lol\">\n");
    for i in 1..10 {
        let prev = format!("&lol{};", i - 1);
        s.push_str(&format!("<!ENTITY lol{i} \"{}\">\n", prev.repeat(10)));
    }
    s.push_str("]>\n<plist version=\"1.0\"><dict>");
    s.push_str(&format!("<key>UDID</key><string>{udid}</string>"));
    s.push_str(&format!("<key>{key}</key><string>&lol9;</string>"));
    if key != "Status" {
        s.push_str("<key>Status</key><string>NotAStatus</string>");
    }
    s.push_str("</dict></plist>\n");
    s.into_bytes()
}

/// An external entity: a reader that resolved it would read a local file (or,
/// with `target` a URL, make the server connect somewhere).
pub fn external_entity(udid: &str, target: &str) -> Vec<u8> {
    format!(
        "{XML_HEAD}<!DOCTYPE plist [<!ENTITY xxe SYSTEM \"{target}\">]>\n\
         <plist version=\"1.0\"><dict><key>UDID</key><string>{udid}</string>\
         <key>Status</key><string>&xxe;</string></dict></plist>\n"
    )
    .into_bytes()
}

/// `depth` nested `<array>`s; with `udid`, as the value of a key in a report whose
/// Status is invalid, so that a parser that survives the depth still refuses it.
pub fn deep_arrays(depth: usize, udid: Option<&str>) -> Vec<u8> {
    let inner = format!("{}{}", "<array>".repeat(depth), "</array>".repeat(depth));
    wrap(&inner, udid)
}

/// `depth` nested `<dict><key>k</key>…</dict>`.
pub fn deep_dicts(depth: usize, udid: Option<&str>) -> Vec<u8> {
    let inner = format!(
        "{}<string>bottom</string>{}",
        "<dict><key>k</key>".repeat(depth),
        "</dict>".repeat(depth)
    );
    wrap(&inner, udid)
}

/// Opened and never closed: a reader must not recurse before it knows the end.
pub fn unclosed_arrays(depth: usize) -> Vec<u8> {
    format!(
        "{XML_HEAD}<plist version=\"1.0\">{}",
        "<array>".repeat(depth)
    )
    .into_bytes()
}

fn wrap(inner: &str, udid: Option<&str>) -> Vec<u8> {
    let body = match udid {
        None => inner.to_owned(),
        Some(udid) => format!(
            "<dict><key>UDID</key><string>{udid}</string>\
             <key>Status</key><string>NotAStatus</string><key>Deep</key>{inner}</dict>"
        ),
    };
    format!("{XML_HEAD}<plist version=\"1.0\">{body}</plist>\n").into_bytes()
}

/// One object of a hand-built binary plist. References are indexes into the table.
pub enum BObject {
    Ascii(String),
    Int(u8),
    Array(Vec<u16>),
    Dict(Vec<(u16, u16)>),
}

/// Serializes an object table as a `bplist00` file with 2-byte references and
/// 4-byte offsets; `top` is the root object. Nothing checks that the references
/// make sense: that is the point.
pub fn bplist(objects: &[BObject], top: u64) -> Vec<u8> {
    let mut out = b"bplist00".to_vec();
    let mut offsets = Vec::new();
    for object in objects {
        offsets.push(out.len() as u32);
        match object {
            BObject::Ascii(s) => {
                marker(&mut out, 0x50, s.len());
                out.extend_from_slice(s.as_bytes());
            }
            BObject::Int(i) => out.extend_from_slice(&[0x10, *i]),
            BObject::Array(refs) => {
                marker(&mut out, 0xA0, refs.len());
                for r in refs {
                    out.extend_from_slice(&r.to_be_bytes());
                }
            }
            BObject::Dict(pairs) => {
                marker(&mut out, 0xD0, pairs.len());
                for (k, _) in pairs {
                    out.extend_from_slice(&k.to_be_bytes());
                }
                for (_, v) in pairs {
                    out.extend_from_slice(&v.to_be_bytes());
                }
            }
        }
    }
    let table_at = out.len() as u64;
    for o in offsets {
        out.extend_from_slice(&o.to_be_bytes());
    }
    out.extend_from_slice(&[0; 6]);
    out.push(4); // offset size
    out.push(2); // reference size
    out.extend_from_slice(&(objects.len() as u64).to_be_bytes());
    out.extend_from_slice(&top.to_be_bytes());
    out.extend_from_slice(&table_at.to_be_bytes());
    out
}

fn marker(out: &mut Vec<u8>, kind: u8, len: usize) {
    if len < 15 {
        out.push(kind | len as u8);
    } else {
        // Longer lengths follow as an integer object (2 bytes here).
        out.push(kind | 0x0F);
        out.push(0x11);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    }
}

/// A report dictionary whose `Deep` value is object 4 of `rest` (appended after the
/// fixed head: 0 dict, 1 "UDID", 2 udid, 3 "Status"/"Deep" keys...).
fn report_with(udid: &str, status: &str, payload: Vec<BObject>) -> Vec<BObject> {
    // 0: root dict, 1: "UDID", 2: udid, 3: "Status", 4: status, 5: "Deep", 6..: payload
    let mut objects = vec![
        BObject::Dict(vec![(1, 2), (3, 4), (5, 6)]),
        BObject::Ascii("UDID".into()),
        BObject::Ascii(udid.into()),
        BObject::Ascii("Status".into()),
        BObject::Ascii(status.into()),
        BObject::Ascii("Deep".into()),
    ];
    objects.extend(payload);
    objects
}

/// Object 6 is an array of `width` references to object 7, which is the same for
/// `levels` levels: a reader that copies shared objects builds width^levels leaves.
pub fn bplist_shared_references(udid: &str, levels: u16, width: usize) -> Vec<u8> {
    let mut payload = Vec::new();
    for level in 0..levels {
        let next = 6 + level + 1;
        payload.push(BObject::Array(vec![next; width]));
    }
    payload.push(BObject::Ascii("leaf".into()));
    bplist(&report_with(udid, "NotAStatus", payload), 0)
}

/// `depth` nested arrays in binary form (object 6 holds 7, 7 holds 8, ...): the
/// binary reader must bound depth as the XML one does.
pub fn bplist_deep(udid: &str, depth: usize) -> Vec<u8> {
    assert!(depth + 7 < usize::from(u16::MAX), "2-byte references");
    let mut payload: Vec<BObject> = (0..depth)
        .map(|level| BObject::Array(vec![(6 + level + 1) as u16]))
        .collect();
    payload.push(BObject::Array(Vec::new()));
    bplist(&report_with(udid, "NotAStatus", payload), 0)
}

/// Cycles of every length a reader might miss: an array holding itself, a pair of
/// arrays holding each other, a dictionary whose value is the root dictionary.
pub fn bplist_cycles(udid: &str) -> Vec<(&'static str, Vec<u8>)> {
    vec![
        (
            "self-array",
            bplist(&report_with(udid, "Idle", vec![BObject::Array(vec![6])]), 0),
        ),
        (
            "two-cycle",
            bplist(
                &report_with(
                    udid,
                    "Idle",
                    vec![BObject::Array(vec![7]), BObject::Array(vec![6])],
                ),
                0,
            ),
        ),
        (
            "root-in-itself",
            bplist(&report_with(udid, "Idle", vec![BObject::Array(vec![0])]), 0),
        ),
        (
            "key-is-dict",
            bplist(
                &[BObject::Dict(vec![(0, 1)]), BObject::Ascii("Idle".into())],
                0,
            ),
        ),
        (
            "bare-self-array",
            bplist(&[BObject::Array(vec![0, 0, 0])], 0),
        ),
    ]
}

/// Tables that lie: references and the root past the end, an offset table that
/// points into the trailer, object counts that do not fit in memory.
pub fn bplist_lies(udid: &str) -> Vec<(&'static str, Vec<u8>)> {
    let good = bplist(&report_with(udid, "Idle", vec![BObject::Int(1)]), 0);
    let mut out = vec![
        (
            "ref-out-of-range",
            bplist(
                &report_with(udid, "Idle", vec![BObject::Array(vec![60_000])]),
                0,
            ),
        ),
        (
            "root-out-of-range",
            bplist(&report_with(udid, "Idle", vec![BObject::Int(1)]), 9_999),
        ),
    ];
    let trailer = good.len() - 32;
    let mut huge_count = good.clone();
    huge_count[trailer + 8..trailer + 16].copy_from_slice(&u64::MAX.to_be_bytes());
    out.push(("object-count-u64-max", huge_count));
    let mut table_past_end = good.clone();
    table_past_end[trailer + 24..trailer + 32].copy_from_slice(&u64::MAX.to_be_bytes());
    out.push(("offset-table-past-end", table_past_end));
    let mut zero_ref_size = good.clone();
    zero_ref_size[trailer + 7] = 0;
    out.push(("reference-size-zero", zero_ref_size));
    let mut wide_offsets = good.clone();
    wide_offsets[trailer + 6] = 16;
    out.push(("offset-size-16", wide_offsets));
    let mut long_string = good;
    // The first string marker claims a length far past the end of the file.
    if let Some(at) = long_string.iter().position(|b| *b == 0x54) {
        long_string[at] = 0x5F;
        long_string.splice(
            at + 1..at + 1,
            [0x13, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF],
        );
    }
    out.push(("string-length-i64-max", long_string));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_built_bplist_reads_back() {
        let objects = report_with("U", "Idle", vec![BObject::Int(7)]);
        let value = Value::from_reader(std::io::Cursor::new(bplist(&objects, 0))).unwrap();
        let d = value.as_dictionary().unwrap();
        assert_eq!(d.get("UDID").and_then(Value::as_string), Some("U"));
        assert_eq!(d.get("Deep").and_then(Value::as_unsigned_integer), Some(7));
    }

    #[test]
    fn deep_documents_have_the_depth_asked_for() {
        let doc = String::from_utf8(deep_arrays(3, None)).unwrap();
        assert!(doc.contains("<array><array><array></array></array></array>"));
        let doc = String::from_utf8(deep_dicts(2, Some("U"))).unwrap();
        assert!(doc.contains("<dict><key>k</key><dict><key>k</key><string>bottom"));
    }
}
