//! Device input is hostile until proven otherwise: the decoders must return errors,
//! never panic, on truncated, mutated or random bytes, in XML and in binary plists.

use plist::{Dictionary, Value};

fn samples() -> Vec<Vec<u8>> {
    let mut report = Dictionary::new();
    report.insert("UDID".into(), "0000-1111".into());
    report.insert("Status".into(), "Acknowledged".into());
    report.insert("CommandUUID".into(), "ABC".into());
    report.insert(
        "QueryResponses".into(),
        Value::Dictionary(
            [("OSVersion".to_owned(), Value::from("18.1"))]
                .into_iter()
                .collect(),
        ),
    );
    let mut checkin = Dictionary::new();
    checkin.insert("MessageType".into(), "TokenUpdate".into());
    checkin.insert("UDID".into(), "0000-1111".into());
    checkin.insert("Token".into(), Value::Data(vec![1, 2, 3, 4]));
    checkin.insert("PushMagic".into(), "magic".into());
    let mut out = Vec::new();
    for dict in [report, checkin] {
        let mut xml = Vec::new();
        Value::Dictionary(dict.clone())
            .to_writer_xml(&mut xml)
            .unwrap();
        let mut binary = Vec::new();
        Value::Dictionary(dict)
            .to_writer_binary(&mut binary)
            .unwrap();
        out.push(xml);
        out.push(binary);
    }
    out
}

/// A small deterministic generator, so a failure reproduces.
struct XorShift(u64);
impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn decoders_never_panic_on_mangled_input() {
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    for sample in samples() {
        for cut in 0..sample.len() {
            let _ = profiles::checkin::decode(&sample[..cut]);
            let _ = profiles::report::decode(&sample[..cut]);
        }
        for _ in 0..3000 {
            let mut mutated = sample.clone();
            for _ in 0..(1 + rng.next() % 4) {
                let at = (rng.next() as usize) % mutated.len();
                mutated[at] = rng.next() as u8;
            }
            let _ = profiles::checkin::decode(&mutated);
            let _ = profiles::report::decode(&mutated);
        }
    }
    for _ in 0..2000 {
        let len = (rng.next() % 256) as usize;
        let mut random: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        if rng.next().is_multiple_of(2) && random.len() >= 8 {
            random[..8].copy_from_slice(b"bplist00");
        }
        let _ = profiles::checkin::decode(&random);
        let _ = profiles::report::decode(&random);
    }
}

/// Nesting that used to overflow the stack (5,000 levels aborted the server): refused
/// at the depth limit, in arrays and in dictionaries, XML and binary alike.
#[test]
fn deep_nesting_is_refused_without_recursion() {
    for depth in [65, 5_000, 200_000] {
        let arrays = format!(
            "<?xml version=\"1.0\"?><plist version=\"1.0\"><dict><key>UDID</key><string>x</string>\
             <key>Status</key><string>Idle</string><key>D</key>{}{}</dict></plist>",
            "<array>".repeat(depth),
            "</array>".repeat(depth)
        );
        let dicts = format!(
            "<?xml version=\"1.0\"?><plist version=\"1.0\">{}<true/>{}</plist>",
            "<dict><key>k</key>".repeat(depth),
            "</dict>".repeat(depth)
        );
        for body in [arrays, dicts] {
            let e = profiles::report::decode(body.as_bytes()).unwrap_err();
            assert!(e.reason.contains("deeper"), "{depth}: {}", e.reason);
            let e = profiles::checkin::decode(body.as_bytes()).unwrap_err();
            assert!(e.reason.contains("deeper"), "{depth}: {}", e.reason);
        }
    }
    // Unclosed nesting (truncated input) is refused the same way.
    let open = "<plist><array>".repeat(100_000);
    assert!(profiles::report::decode(open.as_bytes()).is_err());
}
