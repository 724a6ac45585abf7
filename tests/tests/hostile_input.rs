//! The malformed-input corpus (issue #14): hundreds of hostile and mutated inputs per
//! endpoint a peer can reach (the device endpoints with requests signed by a valid
//! enrolled identity, the Mdm-Signature header itself, SCEP, the enrollment URL, the
//! admin API with a valid token), sent twice against the real server.
//!
//! Every answer must be a 4xx (413 for a body past the limit, 401/404 where the
//! identity is the problem): never a 5xx, never a dropped connection. Afterwards the
//! process is still running and answers /healthz, its memory is back within a bound
//! of where it was after the first (warm-up) round, and every table of the database
//! holds exactly the rows it held before the corpus. Failures are collected and
//! reported together, each with the name of its input; mutation is seeded (the seed
//! is printed; MDM_HOSTILE_SEED=<n> replays a run).
//!
//! Mutation is reproducible in where and how it cuts (positions, kinds, random
//! bytes); the real messages it cuts carry fresh keys, nonces and signatures in every
//! run (UDIDs, ECDSA signatures, SCEP envelopes), so an input that depends on those
//! bytes reproduces by its name and kind rather than byte for byte.
//!
//! Three kinds of refusal write by design and have tests of their own, so that the
//! main corpus can demand that nothing at all is written: a request signed by one
//! device for another device's UDID (`security.identity_mismatch`), a SCEP message
//! refused with a CertRep FAILURE (`scep.refused`), and a wipe whose confirmation
//! does not match (`admin.device_wipe_refused`). Those tests allow at most one such
//! event per refusal and nothing else.

use base64::Engine;
use enrollment::identity::testing::{sign_detached, TestCa};
use enrollment::scep::client::{build_request, RequestOptions};
use mdm_tests::fixture::{Backend, ServerOptions, TestServer};
use mdm_tests::hostile::mutate::{mutate, XorShift};
use mdm_tests::hostile::plists::{self, dict, to_binary, to_xml};
use mdm_tests::hostile::{process, raw_http, snapshot};
use mdm_tests::on_every_backend;
use mdm_tests::simulator::{SimDevice, CHECKIN_PATH, SERVER_PATH};
use openssl::nid::Nid;
use openssl::x509::{X509Name, X509};
use plist::Value;
use reqwest::Method;
use serde_json::json;
use std::collections::BTreeMap;
use std::time::Duration;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;
const DEFAULT_SEED: u64 = 0x1405_EED0_C0FF_EE14;
/// Past every body limit the server has (device 1 MiB, admin API 8 MiB by default).
const OVERSIZE: usize = 12 * 1024 * 1024;
/// How far the server's resident memory may be above its level after the warm-up
/// round once the measured round is through. The measured round sends the same inputs
/// again, so a server that frees what it reads needs no new memory; the allocator,
/// though, keeps freed pages and fragments (glibc arenas per thread), so the level
/// moves by a few MiB from round to round (measured: +4 to +15 MiB after 1 to 5
/// rounds). 64 MiB is far above that noise and still catches a server that keeps what
/// it is sent or some state per request: 27 kB for each of the ~2,400 requests of a
/// round. MDM_HOSTILE_ROUNDS=n sends more rounds, to see whether the level climbs on.
const RSS_BOUND: u64 = 64 * 1024 * 1024;
/// A guard against a hang, not a performance check: an input the server never
/// answers becomes a reported failure instead of a test that never ends.
const HANG_GUARD: Duration = Duration::from_secs(300);

/// Rounds after the warm-up (MDM_HOSTILE_ROUNDS, default 1): more of them show
/// whether memory keeps growing or levels off.
fn measured_rounds() -> usize {
    std::env::var("MDM_HOSTILE_ROUNDS")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .filter(|n| *n >= 1)
        .unwrap_or(1)
}

fn seed() -> u64 {
    std::env::var("MDM_HOSTILE_SEED")
        .ok()
        .and_then(|s| {
            let s = s.trim();
            match s.strip_prefix("0x") {
                Some(hex) => u64::from_str_radix(hex, 16).ok(),
                None => s.parse().ok(),
            }
        })
        .unwrap_or(DEFAULT_SEED)
}

/// What an input must get.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Expect {
    /// Any 4xx.
    Refused,
    /// 413: the body is past the configured limit.
    TooLarge,
    /// 401 or 404: the identity (signature, UDID) is the problem.
    Identity,
    /// 401 exactly: a valid identity used for another device.
    Unauthorized,
    /// A read-only request with an extreme but well-typed parameter: any answer but a
    /// 5xx (a server may clamp a huge limit and answer 200).
    NoServerError,
    /// SCEP's own refusal: a 4xx, or 200 with a CertRep FAILURE signed by the CA.
    ScepRefusal,
}

enum Request {
    Http {
        method: Method,
        path: String,
        headers: Vec<(&'static str, Vec<u8>)>,
        body: Vec<u8>,
    },
    /// A request target sent byte for byte (GET), for what URL parsers normalise.
    Raw {
        target: Vec<u8>,
        headers: Vec<(&'static str, String)>,
    },
}

struct Case {
    endpoint: &'static str,
    name: String,
    request: Request,
    expect: Expect,
}

#[derive(Default)]
struct Corpus {
    cases: Vec<Case>,
    /// Mutants that decode as valid messages: a server must process those, so they
    /// are not sent (they would legitimately write).
    skipped_valid: BTreeMap<&'static str, usize>,
}

impl Corpus {
    fn add(
        &mut self,
        endpoint: &'static str,
        name: impl Into<String>,
        request: Request,
        expect: Expect,
    ) {
        self.cases.push(Case {
            endpoint,
            name: name.into(),
            request,
            expect,
        });
    }

    fn skip_valid(&mut self, endpoint: &'static str) {
        *self.skipped_valid.entry(endpoint).or_default() += 1;
    }

    fn counts(&self) -> BTreeMap<&'static str, usize> {
        let mut counts = BTreeMap::new();
        for c in &self.cases {
            *counts.entry(c.endpoint).or_default() += 1;
        }
        counts
    }
}

fn http(method: Method, path: impl Into<String>, body: Vec<u8>) -> Request {
    Request::Http {
        method,
        path: path.into(),
        headers: Vec::new(),
        body,
    }
}

fn with_header(mut request: Request, name: &'static str, value: impl Into<Vec<u8>>) -> Request {
    if let Request::Http { headers, .. } = &mut request {
        headers.push((name, value.into()));
    }
    request
}

/// A device request signed with `device`'s own identity, as iOS signs it.
fn signed(device: &SimDevice, path: &str, body: Vec<u8>) -> Request {
    let signature = sign_detached(&device.key, &device.cert, &body);
    with_header(
        with_header(http(Method::PUT, path, body), "Mdm-Signature", signature),
        "Content-Type",
        "application/x-apple-aspen-mdm-checkin",
    )
}

fn endpoint_of(path: &str) -> &'static str {
    if path == CHECKIN_PATH {
        "device /mdm/checkin"
    } else {
        "device /mdm/connect"
    }
}

/// Whether the server's own decoder takes the body as a valid message.
fn decodes(path: &str, body: &[u8]) -> bool {
    if path == CHECKIN_PATH {
        profiles::checkin::decode(body).is_ok()
    } else {
        profiles::report::decode(body).is_ok()
    }
}

/// Adds a signed device request unless it decodes as a valid message.
fn add_device_unless_valid(
    c: &mut Corpus,
    device: &SimDevice,
    path: &'static str,
    name: String,
    body: Vec<u8>,
) {
    if decodes(path, &body) {
        c.skip_valid(endpoint_of(path));
    } else {
        c.add(
            endpoint_of(path),
            name,
            signed(device, path, body),
            Expect::Refused,
        );
    }
}

fn long_string(len: usize) -> String {
    "A".repeat(len)
}

/// Real messages of an enrolled iPhone, as the simulator sends them.
fn checkin_samples(device: &SimDevice) -> Vec<(&'static str, Value)> {
    let udid = || Value::from(device.udid.clone());
    vec![
        (
            "Authenticate",
            dict(vec![
                ("MessageType", "Authenticate".into()),
                ("UDID", udid()),
                ("Topic", "com.apple.mgmt.External.test-topic".into()),
                ("SerialNumber", device.serial.clone().into()),
                ("ProductName", "iPhone15,2".into()),
                ("OSVersion", "18.1".into()),
                ("BuildVersion", "22B83".into()),
            ]),
        ),
        (
            "TokenUpdate",
            dict(vec![
                ("MessageType", "TokenUpdate".into()),
                ("UDID", udid()),
                ("Topic", "com.apple.mgmt.External.test-topic".into()),
                ("Token", Value::Data(device.push_token.clone())),
                ("PushMagic", device.push_magic.clone().into()),
                ("UnlockToken", Value::Data(device.unlock_token.clone())),
            ]),
        ),
        (
            "CheckOut",
            dict(vec![
                ("MessageType", "CheckOut".into()),
                ("UDID", udid()),
                ("Topic", "com.apple.mgmt.External.test-topic".into()),
            ]),
        ),
    ]
}

fn report_samples(device: &SimDevice, command_uuid: &str) -> Vec<(&'static str, Value)> {
    let udid = || Value::from(device.udid.clone());
    vec![
        (
            "Idle",
            dict(vec![("UDID", udid()), ("Status", "Idle".into())]),
        ),
        (
            "Acknowledged",
            dict(vec![
                ("UDID", udid()),
                ("Status", "Acknowledged".into()),
                ("CommandUUID", command_uuid.into()),
                (
                    "QueryResponses",
                    dict(vec![
                        ("OSVersion", "18.1".into()),
                        ("BatteryLevel", Value::Real(0.5)),
                    ]),
                ),
            ]),
        ),
        (
            "Error",
            dict(vec![
                ("UDID", udid()),
                ("Status", "Error".into()),
                ("CommandUUID", command_uuid.into()),
                (
                    "ErrorChain",
                    Value::Array(vec![dict(vec![
                        ("ErrorCode", Value::Integer(12021.into())),
                        ("ErrorDomain", "MCMDMErrorDomain".into()),
                        ("LocalizedDescription", "Simulated failure".into()),
                    ])]),
                ),
            ]),
        ),
        (
            "NotNow",
            dict(vec![
                ("UDID", udid()),
                ("Status", "NotNow".into()),
                ("CommandUUID", command_uuid.into()),
            ]),
        ),
    ]
}

/// Values of the wrong type (and sizes no device sends) for type confusion.
fn confusers() -> Vec<(&'static str, Value)> {
    vec![
        ("integer", Value::Integer(42.into())),
        ("negative", Value::Integer((-1i64).into())),
        (
            "array",
            Value::Array(vec!["x".into(), Value::Integer(1.into())]),
        ),
        ("dict", dict(vec![("UDID", "nested".into())])),
        ("data", Value::Data(vec![0, 159, 146, 150])),
        ("bool", Value::Boolean(true)),
        ("real", Value::Real(f64::NAN)),
        (
            "date",
            Value::Date(std::time::SystemTime::UNIX_EPOCH.into()),
        ),
        ("empty", "".into()),
        ("100kB", long_string(100 * 1024).into()),
        ("nul", "a\u{0}b".into()),
    ]
}

/// Garbage shaped like DER: lengths that lie, nesting without end, a CMS wrapper
/// around junk.
fn garbage_der(rng: &mut XorShift) -> Vec<(String, Vec<u8>)> {
    let signed_data_oid = [
        0x06, 0x09, 0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x07, 0x02,
    ];
    let enveloped_oid = [
        0x06, 0x09, 0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x07, 0x03,
    ];
    let mut out = vec![
        ("empty".to_owned(), Vec::new()),
        (
            "length-4GiB".into(),
            vec![0x30, 0x84, 0xFF, 0xFF, 0xFF, 0xFF, 0x02, 0x01, 0x00],
        ),
        (
            "length-8-bytes".into(),
            vec![0x30, 0x88, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF],
        ),
        (
            "indefinite-unclosed".into(),
            vec![0x30, 0x80, 0x02, 0x01, 0x00],
        ),
        (
            "nested-indefinite-10000".into(),
            [0x30, 0x80].repeat(10_000),
        ),
        ("nested-definite-5000".into(), {
            // 5000 SEQUENCEs, each declaring the rest as its content.
            let mut v = vec![0x05, 0x00];
            for _ in 0..5000 {
                let len = v.len();
                let mut head = vec![0x30, 0x83, (len >> 16) as u8, (len >> 8) as u8, len as u8];
                head.append(&mut v);
                v = head;
            }
            v
        }),
        ("integer-100kB".into(), {
            let mut v = vec![0x02, 0x83, 0x01, 0x90, 0x00];
            v.resize(v.len() + 0x019000, 0x7F);
            v
        }),
        ("oid-huge-arc".into(), {
            let mut v = vec![0x06, 0x82, 0x10, 0x00];
            v.resize(v.len() + 0x0FFF, 0xFF);
            v.push(0x01);
            v
        }),
    ];
    for (label, oid) in [
        ("signed-data", signed_data_oid),
        ("enveloped-data", enveloped_oid),
    ] {
        for i in 0..6 {
            let n = 1 + rng.below(600);
            let junk = rng.bytes(n);
            let mut content = vec![0xA0, 0x82, (junk.len() >> 8) as u8, junk.len() as u8];
            content.extend_from_slice(&junk);
            let mut inner = oid.to_vec();
            inner.extend_from_slice(&content);
            let mut v = vec![0x30, 0x82, (inner.len() >> 8) as u8, inner.len() as u8];
            v.extend_from_slice(&inner);
            out.push((format!("{label}-junk{i}"), v));
        }
    }
    out
}

/// Everything a device can get wrong in a signed request.
fn device_corpus(c: &mut Corpus, rng: &mut XorShift, device: &SimDevice, command_uuid: &str) {
    let stranger = uuid::Uuid::new_v4().to_string().to_uppercase();
    for (path, samples) in [
        (CHECKIN_PATH, checkin_samples(device)),
        (SERVER_PATH, report_samples(device, command_uuid)),
    ] {
        let endpoint = endpoint_of(path);
        let encoded: Vec<(String, Vec<u8>)> = samples
            .iter()
            .flat_map(|(name, v)| {
                [
                    (format!("{name}.xml"), to_xml(v)),
                    (format!("{name}.bplist"), to_binary(v)),
                ]
            })
            .collect();
        // Mutated real messages.
        for i in 0..250 {
            let (name, sample) = &encoded[rng.below(encoded.len())];
            let (_, donor) = &encoded[rng.below(encoded.len())];
            let (mut kinds, mut body) = mutate(rng, sample, donor);
            if rng.below(3) == 0 {
                let (k2, b2) = mutate(rng, &body, donor);
                kinds = format!("{kinds}+{k2}");
                body = b2;
            }
            add_device_unless_valid(
                c,
                device,
                path,
                format!("{name} mutant {i} ({kinds})"),
                body,
            );
        }
        // Type confusion: each field of each real message, in turn, of the wrong type.
        for (name, sample) in &samples {
            let fields = sample.as_dictionary().expect("samples are dictionaries");
            for key in fields.keys() {
                for (label, value) in confusers() {
                    let mut d = fields.clone();
                    d.insert(key.clone(), value);
                    let v = Value::Dictionary(d);
                    add_device_unless_valid(
                        c,
                        device,
                        path,
                        format!("{name} {key}={label} xml"),
                        to_xml(&v),
                    );
                    add_device_unless_valid(
                        c,
                        device,
                        path,
                        format!("{name} {key}={label} bplist"),
                        to_binary(&v),
                    );
                }
            }
        }
        // Unknown values where the protocol has a closed set.
        let (field, unknown) = if path == CHECKIN_PATH {
            (
                "MessageType",
                [
                    "Bogus",
                    "",
                    "authenticate",
                    "TokenUpdate ",
                    "Authenticate\u{0}",
                    "DeclarativeManagement2",
                ],
            )
        } else {
            (
                "Status",
                [
                    "Bogus",
                    "",
                    "idle",
                    "Acknowledged ",
                    "Idle\u{0}",
                    "NotNowPlease",
                ],
            )
        };
        for value in unknown {
            let mut d = samples[0].1.as_dictionary().unwrap().clone();
            d.insert(field.into(), value.into());
            add_device_unless_valid(
                c,
                device,
                path,
                format!("{field}={value:?}"),
                to_xml(&Value::Dictionary(d)),
            );
        }
        // Entities: expansion bombs and references to files and (loopback) URLs.
        // A reader that kept an entity literal could still take the message: the one
        // in Padding rides on an invalid Status, so that only the bomb is tested.
        for key in ["Status", "UDID", "Padding"] {
            c.add(
                endpoint,
                format!("billion laughs in {key}"),
                signed(device, path, plists::billion_laughs(&device.udid, key)),
                Expect::Refused,
            );
        }
        for target in [
            "file:///etc/passwd",
            "file:///dev/zero",
            "http://127.0.0.1:9/x",
        ] {
            c.add(
                endpoint,
                format!("external entity {target}"),
                signed(device, path, plists::external_entity(&device.udid, target)),
                Expect::Refused,
            );
        }
        // Nesting far past anything real, bare and inside an otherwise plausible message.
        for depth in [2_000, 5_000, 50_000] {
            c.add(
                endpoint,
                format!("{depth} nested arrays"),
                signed(device, path, plists::deep_arrays(depth, None)),
                Expect::Refused,
            );
            c.add(
                endpoint,
                format!("{depth} nested arrays in a message"),
                signed(device, path, plists::deep_arrays(depth, Some(&device.udid))),
                Expect::Refused,
            );
            c.add(
                endpoint,
                format!("{depth} nested dicts"),
                signed(device, path, plists::deep_dicts(depth, None)),
                Expect::Refused,
            );
            c.add(
                endpoint,
                format!("{depth} nested dicts in a message"),
                signed(device, path, plists::deep_dicts(depth, Some(&device.udid))),
                Expect::Refused,
            );
            c.add(
                endpoint,
                format!("{depth} nested arrays, binary"),
                signed(device, path, plists::bplist_deep(&device.udid, depth)),
                Expect::Refused,
            );
        }
        c.add(
            endpoint,
            "50000 unclosed arrays",
            signed(device, path, plists::unclosed_arrays(50_000)),
            Expect::Refused,
        );
        // Binary plists: shared references that expand exponentially, cycles, lies.
        for (levels, width) in [(32u16, 2usize), (64, 2), (16, 14)] {
            c.add(
                endpoint,
                format!("bplist {width}^{levels} shared references"),
                signed(
                    device,
                    path,
                    plists::bplist_shared_references(&device.udid, levels, width),
                ),
                Expect::Refused,
            );
        }
        for (name, body) in plists::bplist_cycles(&device.udid)
            .into_iter()
            .chain(plists::bplist_lies(&device.udid))
        {
            c.add(
                endpoint,
                format!("bplist {name}"),
                signed(device, path, body),
                Expect::Refused,
            );
        }
        // Random bytes, bare and behind the magic numbers of both formats.
        for i in 0..40 {
            let len = rng.below(4096);
            let mut body = rng.bytes(len);
            let magic: &[u8] = match i % 3 {
                0 => b"bplist00",
                1 => b"<?xml version=\"1.0\"?><plist version=\"1.0\">",
                _ => b"",
            };
            body.splice(0..0, magic.iter().copied());
            add_device_unless_valid(c, device, path, format!("random {i} ({len} bytes)"), body);
        }
        for (name, body) in [
            ("empty body", Vec::new()),
            ("whitespace", b"  \n\t ".to_vec()),
            ("magic only", b"bplist00".to_vec()),
            ("plist element only", b"<plist version=\"1.0\"/>".to_vec()),
            (
                "two roots",
                [to_xml(&samples[0].1), to_xml(&samples[0].1)].concat(),
            ),
            (
                "utf-16",
                to_xml(&samples[0].1).iter().flat_map(|b| [*b, 0]).collect(),
            ),
            ("nul bytes", vec![0; 1024]),
            (
                "json",
                serde_json::to_vec(&json!({"UDID": device.udid, "Status": "Idle"})).unwrap(),
            ),
        ] {
            add_device_unless_valid(c, device, path, name.to_owned(), body);
        }
        // 100 kB strings where the identity or the message kind goes.
        // (Not an Authenticate: one for an unknown UDID enrolls a new device.)
        let mut big = samples[1].1.as_dictionary().unwrap().clone();
        big.insert("UDID".into(), long_string(100 * 1024).into());
        c.add(
            endpoint,
            "100kB UDID",
            signed(device, path, to_xml(&Value::Dictionary(big))),
            Expect::Identity,
        );
        let mut big = samples[0].1.as_dictionary().unwrap().clone();
        big.insert(field.into(), long_string(100 * 1024).into());
        c.add(
            endpoint,
            format!("100kB {field}"),
            signed(device, path, to_xml(&Value::Dictionary(big))),
            Expect::Refused,
        );
        let mut big = samples[0].1.as_dictionary().unwrap().clone();
        big.insert(field.into(), "Bogus".into());
        big.insert(long_string(100 * 1024), "key of 100 kB".into());
        c.add(
            endpoint,
            "100kB key",
            signed(device, path, to_xml(&Value::Dictionary(big))),
            Expect::Refused,
        );
        // Another UDID, never enrolled: 404 (an unknown Authenticate would enroll it).
        for (name, sample) in &samples {
            if *name == "Authenticate" {
                continue;
            }
            let mut d = sample.as_dictionary().unwrap().clone();
            d.insert("UDID".into(), stranger.clone().into());
            let v = Value::Dictionary(d);
            c.add(
                endpoint,
                format!("{name} for an unknown UDID, xml"),
                signed(device, path, to_xml(&v)),
                Expect::Identity,
            );
            c.add(
                endpoint,
                format!("{name} for an unknown UDID, bplist"),
                signed(device, path, to_binary(&v)),
                Expect::Identity,
            );
        }
        // Bodies past the limit.
        let mut padded = samples[0].1.as_dictionary().unwrap().clone();
        padded.insert(field.into(), "Bogus".into());
        padded.insert("Padding".into(), Value::Data(vec![0x41; 2 * 1024 * 1024]));
        c.add(
            endpoint,
            "2 MiB padded message",
            signed(device, path, to_xml(&Value::Dictionary(padded))),
            Expect::Refused,
        );
        c.add(
            endpoint,
            "12 MiB body",
            signed(device, path, vec![b'<'; OVERSIZE]),
            Expect::TooLarge,
        );
    }
}

/// The Mdm-Signature header itself: missing, not base64, base64 of garbage, mutated
/// real signatures, signatures by strangers. The bodies name a UDID that is not
/// enrolled, so that even a signature that verified could not change anything.
fn signature_corpus(c: &mut Corpus, rng: &mut XorShift, device: &SimDevice) {
    let stranger = uuid::Uuid::new_v4().to_string().to_uppercase();
    let rogue = TestCa::new("Rogue CA");
    let (rogue_key, rogue_cert) = rogue.issue("intruder");
    for (path, body) in [
        (
            CHECKIN_PATH,
            to_xml(&dict(vec![
                ("MessageType", "TokenUpdate".into()),
                ("UDID", stranger.clone().into()),
                ("Topic", "com.apple.mgmt.External.test-topic".into()),
                ("Token", Value::Data(vec![7; 32])),
                ("PushMagic", "magic".into()),
            ])),
        ),
        (
            SERVER_PATH,
            to_xml(&dict(vec![
                ("UDID", stranger.clone().into()),
                ("Status", "Idle".into()),
            ])),
        ),
    ] {
        let endpoint = "Mdm-Signature";
        let plain = |headers: Vec<(&'static str, Vec<u8>)>| Request::Http {
            method: Method::PUT,
            path: path.into(),
            headers,
            body: body.clone(),
        };
        c.add(
            endpoint,
            format!("{path} no header"),
            plain(vec![]),
            Expect::Identity,
        );
        for (name, value) in [
            ("empty", b"".to_vec()),
            ("percent signs", b"%%%".to_vec()),
            ("padding only", b"====".to_vec()),
            ("one char", b"a".to_vec()),
            ("bad padding", b"abc=d".to_vec()),
            ("url-safe alphabet", b"-_-_".to_vec()),
            ("non-ascii bytes", vec![0xFF, 0xFE, 0x80, 0x41]),
            ("spaces", b"aGVs bG8g d29y bGQ=".to_vec()),
            ("base64 of text", B64.encode("hello world").into_bytes()),
        ] {
            c.add(
                endpoint,
                format!("{path} header {name}"),
                plain(vec![("Mdm-Signature", value)]),
                Expect::Identity,
            );
        }
        c.add(
            endpoint,
            format!("{path} header 100 kB"),
            plain(vec![("Mdm-Signature", vec![b'A'; 100 * 1024])]),
            Expect::Refused,
        );
        for i in 0..25 {
            let len = 1 + rng.below(3000);
            c.add(
                endpoint,
                format!("{path} base64 of {len} random bytes #{i}"),
                plain(vec![(
                    "Mdm-Signature",
                    B64.encode(rng.bytes(len)).into_bytes(),
                )]),
                Expect::Identity,
            );
        }
        for (name, der) in garbage_der(rng) {
            let header = B64.encode(der).into_bytes();
            // Past the server's request-head limit the answer is 431, before any
            // identity check.
            let expect = if header.len() > 16 * 1024 {
                Expect::Refused
            } else {
                Expect::Identity
            };
            c.add(
                endpoint,
                format!("{path} garbage DER {name}"),
                plain(vec![("Mdm-Signature", header)]),
                expect,
            );
        }
        let real = B64
            .decode(sign_detached(&device.key, &device.cert, &body))
            .unwrap();
        for i in 0..60 {
            let (kind, der) = mutate(rng, &real, &real);
            c.add(
                endpoint,
                format!("{path} mutated real signature {i} ({kind})"),
                plain(vec![("Mdm-Signature", B64.encode(der).into_bytes())]),
                Expect::Identity,
            );
        }
        c.add(
            endpoint,
            format!("{path} signed by a foreign CA"),
            plain(vec![(
                "Mdm-Signature",
                sign_detached(&rogue_key, &rogue_cert, &body).into_bytes(),
            )]),
            Expect::Identity,
        );
        c.add(
            endpoint,
            format!("{path} signature over another body"),
            plain(vec![(
                "Mdm-Signature",
                sign_detached(&device.key, &device.cert, b"another body").into_bytes(),
            )]),
            Expect::Identity,
        );
        // Without --trust-client-cert-header a Client-Cert header proves nothing.
        let client_cert = format!(":{}:", B64.encode(device.cert.to_der().unwrap()));
        c.add(
            endpoint,
            format!("{path} Client-Cert from an untrusted peer"),
            plain(vec![("Client-Cert", client_cert.into_bytes())]),
            Expect::Identity,
        );
    }
}

/// SCEP messages that are not SCEP at all, and operations that do not exist.
fn scep_garbage_corpus(c: &mut Corpus, rng: &mut XorShift) {
    let endpoint = "SCEP (not SCEP)";
    let post = |body: Vec<u8>| {
        with_header(
            http(Method::POST, "/scep?operation=PKIOperation", body),
            "Content-Type",
            "application/x-pki-message",
        )
    };
    let get_message = |message: &str| {
        http(
            Method::GET,
            format!(
                "/scep?operation=PKIOperation&message={}",
                urlencode(message)
            ),
            Vec::new(),
        )
    };
    for i in 0..60 {
        let len = rng.below(4096);
        let bytes = rng.bytes(len);
        c.add(
            endpoint,
            format!("POST {len} random bytes #{i}"),
            post(bytes.clone()),
            Expect::Refused,
        );
        if i % 2 == 0 {
            c.add(
                endpoint,
                format!("GET base64 of {len} random bytes #{i}"),
                get_message(&B64.encode(bytes)),
                Expect::Refused,
            );
        }
    }
    for (name, der) in garbage_der(rng) {
        c.add(
            endpoint,
            format!("POST garbage DER {name}"),
            post(der.clone()),
            Expect::Refused,
        );
        if der.len() < 64 * 1024 {
            c.add(
                endpoint,
                format!("GET garbage DER {name}"),
                get_message(&B64.encode(der)),
                Expect::Refused,
            );
        }
    }
    for (name, message) in [
        ("not base64", "%%%"),
        ("bad padding", "abc=d"),
        ("bangs", "!!!!"),
        ("empty", ""),
    ] {
        c.add(
            endpoint,
            format!("GET message {name}"),
            get_message(message),
            Expect::Refused,
        );
    }
    c.add(
        endpoint,
        "GET PKIOperation without message",
        http(Method::GET, "/scep?operation=PKIOperation", Vec::new()),
        Expect::Refused,
    );
    for op in [
        "",
        "getcacert",
        "GetCACert ",
        "GetCACaps\u{0}",
        "PKIOPERATION",
        "../../etc/passwd",
        "GetNextCACert",
        "ÄÖÜ",
    ] {
        c.add(
            endpoint,
            format!("GET operation {op:?}"),
            http(
                Method::GET,
                format!("/scep?operation={}", urlencode(op)),
                Vec::new(),
            ),
            Expect::Refused,
        );
    }
    c.add(
        endpoint,
        "GET operation of 10 kB",
        http(
            Method::GET,
            format!("/scep?operation={}", long_string(10 * 1024)),
            Vec::new(),
        ),
        Expect::Refused,
    );
    c.add(
        endpoint,
        "GET without operation",
        http(Method::GET, "/scep", Vec::new()),
        Expect::Refused,
    );
    c.add(
        endpoint,
        "POST GetCACert",
        with_header(
            http(Method::POST, "/scep?operation=GetCACert", b"x".to_vec()),
            "Content-Type",
            "application/x-pki-message",
        ),
        Expect::Refused,
    );
    c.add(
        endpoint,
        "POST without operation",
        http(Method::POST, "/scep", b"x".to_vec()),
        Expect::Refused,
    );
    c.add(
        endpoint,
        "POST 12 MiB",
        post(vec![0x30; OVERSIZE]),
        Expect::TooLarge,
    );
    for target in [
        &b"/scep?operation=%GG"[..],
        b"/scep?%%%",
        b"/scep?operation=GetCACert&operation=GetCACaps",
        b"/scep?operation=PKIOperation&message=%ZZ",
        b"/scep?operation=PKIOperation&message=MA%00%00",
    ] {
        c.add(
            endpoint,
            format!("raw GET {}", String::from_utf8_lossy(target)),
            Request::Raw {
                target: target.to_vec(),
                headers: Vec::new(),
            },
            Expect::Refused,
        );
    }
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

const TOKEN_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// The enrollment URL: tokens that are random, almost right, far too long, or that
/// try to climb out of the path.
fn enrollment_corpus(c: &mut Corpus, rng: &mut XorShift, real_token: &str) {
    let endpoint = "enrollment URL";
    for i in 0..100 {
        let len = 1 + rng.below(200);
        let token = rng.ascii(len, TOKEN_ALPHABET);
        c.add(
            endpoint,
            format!("random token #{i} ({len} chars)"),
            http(Method::GET, format!("/enroll/{token}"), Vec::new()),
            Expect::Refused,
        );
    }
    let real: Vec<u8> = real_token.bytes().collect();
    let mut mutants = 0;
    while mutants < 60 {
        let mut t = real.clone();
        let what = match rng.below(4) {
            0 => {
                let at = rng.below(t.len());
                t[at] = TOKEN_ALPHABET[rng.below(TOKEN_ALPHABET.len())];
                "one char changed"
            }
            1 => {
                t.truncate(rng.below(t.len()));
                "truncated"
            }
            2 => {
                t.push(TOKEN_ALPHABET[rng.below(TOKEN_ALPHABET.len())]);
                "one char appended"
            }
            _ => {
                let at = rng.below(t.len());
                t[at] = if t[at].is_ascii_lowercase() {
                    t[at].to_ascii_uppercase()
                } else {
                    t[at].to_ascii_lowercase()
                };
                "case of one char changed"
            }
        };
        if t == real || t.is_empty() {
            continue;
        }
        mutants += 1;
        let token = String::from_utf8(t).unwrap();
        c.add(
            endpoint,
            format!("real token, {what} #{mutants}"),
            http(Method::GET, format!("/enroll/{token}"), Vec::new()),
            Expect::Refused,
        );
    }
    for len in [1024, 8 * 1024, 64 * 1024, 200 * 1024] {
        c.add(
            endpoint,
            format!("token of {len} chars"),
            Request::Raw {
                target: format!("/enroll/{}", long_string(len)).into_bytes(),
                headers: Vec::new(),
            },
            Expect::Refused,
        );
    }
    for target in [
        &b"/enroll/../api/v1/devices"[..],
        b"/enroll/../../../../etc/passwd",
        b"/enroll/..%2f..%2fapi%2fv1%2fdevices",
        b"/enroll/%2e%2e/%2e%2e/healthz",
        b"/enroll/..\\..\\windows\\win.ini",
        b"/enroll/%00",
        b"/enroll/%ff%fe",
        b"/enroll/%GG",
        b"/enroll/%",
        b"/enroll/%c0%ae%c0%ae%c0%af",
        b"/enroll/%0d%0aSet-Cookie:%20x=y",
        b"/enroll/\xe2\x80\xae\xf0\x9f\x98\x80",
        b"/enroll/tok;jsessionid=1",
        b"/enroll/tok?token=x&token=y",
        b"/enroll/tok#frag",
        b"/enroll/",
        b"/enroll",
        b"/enroll//",
        b"/enroll/%2F",
        b"/enroll/*",
        b"/enroll/tok/extra/segments",
        b"//enroll//tok",
    ] {
        c.add(
            endpoint,
            format!("raw GET {}", String::from_utf8_lossy(target)),
            Request::Raw {
                target: target.to_vec(),
                headers: Vec::new(),
            },
            Expect::Refused,
        );
    }
    for method in [Method::POST, Method::PUT, Method::DELETE, Method::PATCH] {
        c.add(
            endpoint,
            format!("{method} on the real URL with a random token"),
            http(
                method,
                format!("/enroll/{}", rng.ascii(43, TOKEN_ALPHABET)),
                b"{}".to_vec(),
            ),
            Expect::Refused,
        );
    }
}

/// The admin API with a valid token: bodies that are not JSON, JSON nested 10,000
/// deep, wrong types, unknown fields, huge strings, ids that do not exist, query
/// strings that do not parse.
fn admin_corpus(
    c: &mut Corpus,
    rng: &mut XorShift,
    token: &str,
    device_id: &str,
    enrollment_id: &str,
    command_uuid: &str,
) {
    let endpoint = "admin API";
    let api = |method: Method, path: &str, body: Vec<u8>| {
        let r = with_header(
            http(method, format!("/api/v1{path}"), body),
            "Authorization",
            format!("Bearer {token}"),
        );
        with_header(r, "Content-Type", "application/json")
    };
    let writes: Vec<(Method, String, serde_json::Value)> = vec![
        (
            Method::POST,
            format!("/devices/{device_id}/commands"),
            json!({"type": "DeviceLock", "message": "hi"}),
        ),
        (
            Method::POST,
            "/commands".into(),
            json!({"device_ids": [device_id], "type": "DeviceInformation", "queries": ["OSVersion"]}),
        ),
        (
            Method::POST,
            "/enrollments".into(),
            json!({"platform": "apple", "name": "Front office", "max_uses": 3}),
        ),
        (
            Method::POST,
            format!("/devices/{device_id}/lock"),
            json!({"message": "Lost", "phone_number": "+48 1"}),
        ),
        (
            Method::POST,
            format!("/devices/{device_id}/wipe"),
            json!({"confirm": "wrong-serial"}),
        ),
        (
            Method::PUT,
            "/push-certificate".into(),
            json!({"certificate_pem": "x", "private_key_pem": "y"}),
        ),
    ];
    for (method, path, valid) in &writes {
        let valid = serde_json::to_vec(valid).unwrap();
        // Mutants that are not JSON any more (those that still parse are left out:
        // they may be valid requests).
        let mut sent = 0;
        let mut tries = 0;
        while sent < 40 && tries < 400 {
            tries += 1;
            let (kind, body) = mutate(rng, &valid, b"{\"a\":[1,2,{\"b\":null}]}");
            if serde_json::from_slice::<serde_json::Value>(&body).is_ok() {
                c.skip_valid(endpoint);
                continue;
            }
            sent += 1;
            c.add(
                endpoint,
                format!("{method} {path} malformed JSON #{sent} ({kind})"),
                api(method.clone(), path, body),
                Expect::Refused,
            );
        }
        for (name, body) in [
            ("10000 [", "[".repeat(10_000).into_bytes()),
            (
                "10000 [] balanced",
                format!("{}{}", "[".repeat(10_000), "]".repeat(10_000)).into_bytes(),
            ),
            (
                "10000 {\"a\":",
                format!("{}1{}", "{\"a\":".repeat(10_000), "}".repeat(10_000)).into_bytes(),
            ),
            ("100000 [", "[".repeat(100_000).into_bytes()),
            ("null", b"null".to_vec()),
            ("array", b"[]".to_vec()),
            ("string", b"\"DeviceLock\"".to_vec()),
            ("number 1e999999", b"1e999999".to_vec()),
            ("lone surrogate", b"{\"type\": \"\\ud800\"}".to_vec()),
            ("invalid utf-8", b"{\"type\": \"\xff\xfe\"}".to_vec()),
            (
                "trailing garbage",
                [valid.clone(), b"}}}".to_vec()].concat(),
            ),
            (
                "duplicate keys",
                b"{\"type\":\"DeviceLock\",\"type\":\"EraseDevice\"}".to_vec(),
            ),
            ("12 MiB", {
                let mut v = b"{\"name\":\"".to_vec();
                v.resize(v.len() + OVERSIZE, b'A');
                v.extend_from_slice(b"\"}");
                v
            }),
        ] {
            let expect = if body.len() > OVERSIZE {
                Expect::TooLarge
            } else {
                Expect::Refused
            };
            c.add(
                endpoint,
                format!("{method} {path} {name}"),
                api(method.clone(), path, body),
                expect,
            );
        }
        if !path.ends_with("/lock") {
            // The lock body is optional: no body locks with no message.
            c.add(
                endpoint,
                format!("{method} {path} empty body"),
                api(method.clone(), path, Vec::new()),
                Expect::Refused,
            );
        }
        let text_plain = with_header(
            with_header(
                http(
                    method.clone(),
                    format!("/api/v1{path}"),
                    b"type=DeviceLock".to_vec(),
                ),
                "Authorization",
                format!("Bearer {token}"),
            ),
            "Content-Type",
            "text/plain",
        );
        c.add(
            endpoint,
            format!("{method} {path} form body as text/plain"),
            text_plain,
            Expect::Refused,
        );
    }
    // Wrong types, unknown fields, values out of range: each on a real target, so
    // only the refusal keeps it from being written.
    let huge = long_string(1024 * 1024);
    let typed: Vec<(&str, String, serde_json::Value)> = vec![
        (
            "type as number",
            format!("/devices/{device_id}/commands"),
            json!({"type": 5}),
        ),
        (
            "type as array",
            format!("/devices/{device_id}/commands"),
            json!({"type": ["DeviceLock"]}),
        ),
        (
            "unknown type",
            format!("/devices/{device_id}/commands"),
            json!({"type": "FormatHardDisk"}),
        ),
        (
            "no type",
            format!("/devices/{device_id}/commands"),
            json!({"message": "hi"}),
        ),
        (
            "message as number",
            format!("/devices/{device_id}/commands"),
            json!({"type": "DeviceLock", "message": 5}),
        ),
        (
            "unknown field",
            format!("/devices/{device_id}/commands"),
            json!({"type": "DeviceLock", "mesage": "typo"}),
        ),
        (
            "priority as text",
            format!("/devices/{device_id}/commands"),
            json!({"type": "DeviceLock", "priority": "high"}),
        ),
        (
            "priority past i32",
            format!("/devices/{device_id}/commands"),
            json!({"type": "DeviceLock", "priority": 99_999_999_999i64}),
        ),
        (
            "expires_at not a date",
            format!("/devices/{device_id}/commands"),
            json!({"type": "DeviceLock", "expires_at": "yesterday"}),
        ),
        (
            "expires_in_seconds as text",
            format!("/devices/{device_id}/commands"),
            json!({"type": "DeviceLock", "expires_in_seconds": "soon"}),
        ),
        (
            "queries as string",
            format!("/devices/{device_id}/commands"),
            json!({"type": "DeviceInformation", "queries": "OSVersion"}),
        ),
        (
            "1 MiB lock message",
            format!("/devices/{device_id}/commands"),
            json!({"type": "DeviceLock", "message": huge}),
        ),
        (
            "device_ids as string",
            "/commands".into(),
            json!({"device_ids": device_id, "type": "DeviceLock"}),
        ),
        (
            "device_ids as numbers",
            "/commands".into(),
            json!({"device_ids": [1, 2], "type": "DeviceLock"}),
        ),
        (
            "device_ids unknown",
            "/commands".into(),
            json!({"device_ids": [uuid::Uuid::new_v4().to_string()], "type": "DeviceLock"}),
        ),
        (
            "device_ids of 1 MiB",
            "/commands".into(),
            json!({"device_ids": [huge], "type": "DeviceLock"}),
        ),
        (
            "device_ids mixed known and unknown",
            "/commands".into(),
            json!({"device_ids": [device_id, "nope"], "type": "DeviceLock"}),
        ),
        (
            "platform as number",
            "/enrollments".into(),
            json!({"platform": 1, "name": "x"}),
        ),
        (
            "unknown platform",
            "/enrollments".into(),
            json!({"platform": "beos", "name": "x"}),
        ),
        (
            "max_uses as text",
            "/enrollments".into(),
            json!({"platform": "apple", "name": "x", "max_uses": "ten"}),
        ),
        (
            "max_uses past i32",
            "/enrollments".into(),
            json!({"platform": "apple", "name": "x", "max_uses": 1e12}),
        ),
        (
            "expires_in_hours past i64",
            "/enrollments".into(),
            json!({"platform": "apple", "name": "x", "expires_in_hours": 1e300}),
        ),
        (
            "expires_at not a date",
            "/enrollments".into(),
            json!({"platform": "apple", "name": "x", "expires_at": "tomorrow"}),
        ),
        (
            "unknown field",
            "/enrollments".into(),
            json!({"platform": "apple", "name": "x", "admin": true}),
        ),
        (
            "name of 1 MiB",
            "/enrollments".into(),
            json!({"platform": "apple", "name": huge}),
        ),
        (
            "android options for apple as string",
            "/enrollments".into(),
            json!({"platform": "apple", "name": "x", "android": "yes"}),
        ),
        (
            "lock unknown field",
            format!("/devices/{device_id}/lock"),
            json!({"message": "x", "wipe_too": true}),
        ),
        (
            "lock message as array",
            format!("/devices/{device_id}/lock"),
            json!({"message": ["x"]}),
        ),
        // (A wipe whose confirmation does not match is audited by design: see
        // refused_wipes_write_only_their_audit_event.)
        (
            "wipe confirm as number",
            format!("/devices/{device_id}/wipe"),
            json!({"confirm": 1}),
        ),
        (
            "wipe unknown field",
            format!("/devices/{device_id}/wipe"),
            json!({"confirm": "x", "force": true}),
        ),
        (
            "push cert unknown field",
            "/push-certificate".into(),
            json!({"certificate_pem": "x", "private_key_pem": "y", "p12": "z"}),
        ),
        (
            "push cert garbage PEM of 1 MiB",
            "/push-certificate".into(),
            json!({"certificate_pem": huge, "private_key_pem": huge}),
        ),
        (
            "push cert pkcs12 not base64",
            "/push-certificate".into(),
            json!({"pkcs12_base64": "%%%", "password": "x"}),
        ),
        (
            "push cert pkcs12 garbage",
            "/push-certificate".into(),
            json!({"pkcs12_base64": B64.encode(rng.bytes(2000)), "password": "x"}),
        ),
        ("push cert nothing", "/push-certificate".into(), json!({})),
    ];
    for (name, path, body) in typed {
        let method = if path == "/push-certificate" {
            Method::PUT
        } else {
            Method::POST
        };
        c.add(
            endpoint,
            format!("{method} {path} {name}"),
            api(method, &path, serde_json::to_vec(&body).unwrap()),
            Expect::Refused,
        );
    }
    // Ids in paths that are no id.
    let mut ids: Vec<String> = vec![
        "00000000-0000-0000-0000-000000000000".into(),
        "not-a-uuid".into(),
        "' OR 1=1 --".into(),
        "%00".into(),
        "..".into(),
        "%2e%2e%2fhealthz".into(),
        "*".into(),
        "%25".into(),
        "%E2%80%AE".into(),
        long_string(10 * 1024),
    ];
    for _ in 0..10 {
        let len = 1 + rng.below(80);
        ids.push(rng.ascii(len, TOKEN_ALPHABET));
    }
    for id in &ids {
        for (method, path) in [
            (Method::GET, format!("/devices/{id}")),
            (Method::GET, format!("/devices/{id}/commands")),
            (Method::POST, format!("/devices/{id}/commands")),
            (Method::POST, format!("/devices/{id}/lock")),
            (Method::POST, format!("/devices/{id}/push")),
            (Method::GET, format!("/devices/{id}/push-attempts")),
            (Method::GET, format!("/commands/{id}")),
            (Method::DELETE, format!("/commands/{id}")),
            (Method::GET, format!("/enrollments/{id}")),
            (Method::DELETE, format!("/enrollments/{id}")),
            (Method::GET, format!("/enrollments/{id}/qr.png")),
            (Method::GET, format!("/enrollments/{id}/qr.svg")),
        ] {
            let body = if method == Method::POST {
                br#"{"type":"DeviceLock"}"#.to_vec()
            } else {
                Vec::new()
            };
            let short: String = id.chars().take(24).collect();
            c.add(
                endpoint,
                format!(
                    "{method} {} (id {short:?}, {} chars)",
                    path.replace(id.as_str(), "<id>"),
                    id.len()
                ),
                api(method, &path, body),
                Expect::Refused,
            );
        }
    }
    // Query strings that do not parse.
    for path in [
        "/devices?limit=abc".to_owned(),
        "/devices?limit=-1".into(),
        "/devices?offset=1.5".into(),
        "/devices?enrolled=maybe".into(),
        "/devices?limit=1&limit=2".into(),
        "/devices?limit=184467440737095516160".into(),
        "/events?after_id=abc".into(),
        "/events?after_id=9223372036854775808".into(),
        "/events?limit=-5".into(),
        "/enrollments?all=maybe".into(),
        format!("/enrollments/{enrollment_id}/qr.png?scale=abc"),
        format!("/enrollments/{enrollment_id}/qr.png?scale=-1"),
        format!("/enrollments/{enrollment_id}/qr.png?scale=99999999999"),
        format!("/devices/{device_id}/commands?limit=x"),
        format!("/devices/{device_id}/commands?offset=-1"),
        format!("/devices/{device_id}/push-attempts?limit=-3"),
    ] {
        c.add(
            endpoint,
            format!("GET {path}"),
            api(Method::GET, &path, Vec::new()),
            Expect::Refused,
        );
    }
    // Well-typed extremes: clamping is as good an answer as a refusal, a 5xx is not.
    for path in [
        "/devices?limit=18446744073709551615".to_owned(),
        "/devices?offset=18446744073709551615".into(),
        "/events?after_id=-9223372036854775808".into(),
        "/events?limit=18446744073709551615".into(),
        format!("/events?kind={}", long_string(10 * 1024)),
        format!("/devices?search={}", urlencode("%' OR 1=1 --")),
        format!(
            "/devices/{device_id}/commands?offset=18446744073709551615&limit=18446744073709551615"
        ),
        format!("/devices/{device_id}/push-attempts?limit=18446744073709551615"),
        format!("/enrollments/{enrollment_id}/qr.png?scale=4294967295"),
    ] {
        c.add(
            endpoint,
            format!("GET {path}"),
            api(Method::GET, &path, Vec::new()),
            Expect::NoServerError,
        );
    }
    for target in [
        "/api/v1/devices?limit=%GG".to_owned(),
        format!("/api/v1/devices/{device_id}/commands?limit=%"),
        "/api/v1/events?after_id=1%00".to_owned(),
        format!("/api/v1/commands/{command_uuid}%00"),
        "/api/v1/../api/v1/devices".to_owned(),
    ] {
        let headers = vec![("Authorization", format!("Bearer {token}"))];
        c.add(
            endpoint,
            format!("raw GET {target}"),
            Request::Raw {
                target: target.into_bytes(),
                headers,
            },
            Expect::Refused,
        );
    }
    // Tokens that are not the token.
    for (name, header) in [
        ("no scheme", token.to_owned()),
        (
            "basic",
            format!("Basic {}", B64.encode(format!("admin:{token}"))),
        ),
        ("token with a char more", format!("Bearer {token}x")),
        ("empty bearer", "Bearer ".into()),
        ("10 kB bearer", format!("Bearer {}", long_string(10 * 1024))),
    ] {
        let r = with_header(
            http(
                Method::POST,
                "/api/v1/enrollments",
                br#"{"platform":"apple","name":"x"}"#.to_vec(),
            ),
            "Authorization",
            header,
        );
        c.add(
            endpoint,
            format!("POST /enrollments with {name}"),
            with_header(r, "Content-Type", "application/json"),
            Expect::Refused,
        );
    }
    c.add(
        endpoint,
        "PATCH /devices",
        api(Method::PATCH, "/devices", b"{}".to_vec()),
        Expect::Refused,
    );
}

/// What happened to one input.
struct Answer {
    status: u16,
    body: Vec<u8>,
}

async fn send(
    client: &reqwest::Client,
    base_url: &str,
    request: &Request,
) -> Result<Answer, String> {
    match request {
        Request::Raw { target, headers } => {
            let headers: Vec<(&str, &str)> =
                headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
            raw_http::get(base_url, target, &headers)
                .await
                .map(|status| Answer {
                    status,
                    body: Vec::new(),
                })
        }
        Request::Http {
            method,
            path,
            headers,
            body,
        } => {
            let mut req = client.request(method.clone(), format!("{base_url}{path}"));
            for (name, value) in headers {
                let value = reqwest::header::HeaderValue::from_bytes(value)
                    .map_err(|e| format!("test bug: header {name}: {e}"))?;
                req = req.header(*name, value);
            }
            let resp = req
                .body(body.clone())
                .send()
                .await
                .map_err(|e| format!("no answer: {e:?}"))?;
            let status = resp.status().as_u16();
            let body = resp
                .bytes()
                .await
                .map_err(|e| format!("answer cut off: {e:?}"))?;
            Ok(Answer {
                status,
                body: body.to_vec(),
            })
        }
    }
}

/// A CertRep FAILURE: signed by `ca` and carrying pkiStatus "2" (RFC 8894).
fn is_cert_rep_failure(body: &[u8], ca: &X509) -> bool {
    use openssl::pkcs7::{Pkcs7, Pkcs7Flags};
    use openssl::stack::Stack;
    use openssl::x509::store::X509StoreBuilder;
    let Ok(p7) = Pkcs7::from_der(body) else {
        return false;
    };
    let mut store = X509StoreBuilder::new().unwrap();
    store.add_cert(ca.clone()).unwrap();
    let mut certs = Stack::new().unwrap();
    certs.push(ca.clone()).unwrap();
    let mut content = Vec::new();
    if p7
        .verify(
            &certs,
            &store.build(),
            None,
            Some(&mut content),
            Pkcs7Flags::NOVERIFY | Pkcs7Flags::BINARY,
        )
        .is_err()
    {
        return false;
    }
    // pkiStatus (2.16.840.1.113733.1.9.3) with the value SET { PrintableString "2" }.
    let attr = [
        0x06, 0x0A, 0x60, 0x86, 0x48, 0x01, 0x86, 0xF8, 0x45, 0x01, 0x09, 0x03, 0x31, 0x03, 0x13,
        0x01, b'2',
    ];
    body.windows(attr.len()).any(|w| w == attr)
}

#[derive(Default)]
struct Round {
    failures: Vec<String>,
    statuses: BTreeMap<(&'static str, u16), usize>,
    cert_rep_failures: usize,
    body_bytes: usize,
    /// Set when the server process died: the input that killed it.
    died_at: Option<String>,
}

fn judge(case: &Case, answer: &Answer, ca: &X509) -> Result<bool, String> {
    let s = answer.status;
    let client_error = (400..500).contains(&s);
    let ok = match case.expect {
        Expect::Refused => client_error,
        Expect::TooLarge => s == 413,
        Expect::Identity => s == 401 || s == 404,
        Expect::Unauthorized => s == 401,
        Expect::NoServerError => s < 500,
        Expect::ScepRefusal => {
            if s == 200 {
                if is_cert_rep_failure(&answer.body, ca) {
                    return Ok(true);
                }
                false
            } else {
                client_error
            }
        }
    };
    if ok {
        Ok(false)
    } else {
        let text = String::from_utf8_lossy(&answer.body[..answer.body.len().min(200)]).into_owned();
        Err(format!("expected {:?}, got {s}: {text}", case.expect))
    }
}

async fn run_round(
    server: &TestServer,
    client: &reqwest::Client,
    cases: &[Case],
    label: &str,
    ca: &X509,
) -> Round {
    let mut round = Round::default();
    // MDM_HOSTILE_VERBOSE=1 prints every input's answer, not only the failures.
    let verbose = std::env::var_os("MDM_HOSTILE_VERBOSE").is_some();
    for case in cases {
        if let (Request::Http { body, .. }, false) =
            (&case.request, case.expect == Expect::TooLarge)
        {
            round.body_bytes += body.len();
        }
        match send(client, &server.base_url, &case.request).await {
            Ok(answer) => {
                if verbose {
                    eprintln!(
                        "[{label}] {} / {}: {}",
                        case.endpoint, case.name, answer.status
                    );
                }
                *round
                    .statuses
                    .entry((case.endpoint, answer.status))
                    .or_default() += 1;
                match judge(case, &answer, ca) {
                    Ok(true) => round.cert_rep_failures += 1,
                    Ok(false) => {}
                    Err(why) => round.failures.push(format!(
                        "[{label}] {} / {}: {why}",
                        case.endpoint, case.name
                    )),
                }
            }
            Err(why) => {
                if !process::alive(server.pid()) {
                    round.failures.push(format!(
                        "[{label}] {} / {}: the server died: {why}",
                        case.endpoint, case.name
                    ));
                    round.died_at = Some(case.name.clone());
                    return round;
                }
                round.failures.push(format!(
                    "[{label}] {} / {}: {why}",
                    case.endpoint, case.name
                ));
            }
        }
    }
    round
}

fn print_counts(corpus: &Corpus, seed: u64, test: &str) {
    eprintln!(
        "{test}: seed {seed:#x} (MDM_HOSTILE_SEED replays it), {} inputs",
        corpus.cases.len()
    );
    for (endpoint, n) in corpus.counts() {
        eprintln!("  {endpoint}: {n} inputs");
    }
    for (endpoint, n) in &corpus.skipped_valid {
        eprintln!("  {endpoint}: {n} mutants decode as valid requests and were not sent");
    }
}

fn print_statuses(round: &Round) {
    let mut lines: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for ((endpoint, status), n) in &round.statuses {
        lines
            .entry(endpoint)
            .or_default()
            .push(format!("{status}×{n}"));
    }
    for (endpoint, statuses) in lines {
        eprintln!("  {endpoint}: {}", statuses.join(" "));
    }
}

struct Outcome {
    failures: Vec<String>,
    cert_rep_failures: usize,
    /// How many times the corpus was sent whole.
    rounds: usize,
}

/// Sends the corpus twice (warm-up, then measured), checks every answer, liveness,
/// /healthz and memory; returns the failures for the caller to add the database
/// comparison to.
/// Sends the corpus like [`blast`] when the refusals may write events of one kind
/// (and nothing else): every other table and event must be unchanged. Returns the
/// outcome and how many events of `kind` were added, for the caller to bound.
async fn blast_recording_only(
    server: &TestServer,
    corpus: &Corpus,
    ca: &X509,
    kind: &str,
) -> (Outcome, Option<i64>) {
    let db = server.store().await;
    // Incident events follow from the recorded ones (services/incident_rules.rs).
    let others = format!("kind <> '{kind}' AND kind NOT LIKE 'incident.%'");
    let recorded = format!("kind = '{kind}'");
    let filter = Some(("events", others.as_str()));
    let before = snapshot::take(db.connection(), filter).await;
    let recorded_before = snapshot::count(db.connection(), "events", &recorded).await;
    let mut outcome = blast(server, corpus, ca).await;
    if !process::alive(server.pid()) {
        return (outcome, None);
    }
    let after = snapshot::take(db.connection(), filter).await;
    outcome.failures.extend(
        before
            .differences(&after)
            .into_iter()
            .map(|d| format!("database changed: {d}")),
    );
    let added = snapshot::count(db.connection(), "events", &recorded).await - recorded_before;
    (outcome, Some(added))
}

async fn blast(server: &TestServer, corpus: &Corpus, ca: &X509) -> Outcome {
    // A fresh connection for every input: after a refusal the server may close the
    // connection, and a pooled one reused after that would fail for the next input,
    // which would then be blamed for a drop it did not cause.
    let client = reqwest::Client::builder()
        .timeout(HANG_GUARD)
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let pid = server.pid();
    let mut failures = Vec::new();
    let warm = run_round(server, &client, &corpus.cases, "warm-up", ca).await;
    eprintln!("warm-up round answers:");
    print_statuses(&warm);
    let died = warm.died_at.is_some();
    failures.extend(warm.failures);
    let mut cert_rep_failures = warm.cert_rep_failures;
    let mut rounds = 1;
    if !died {
        let baseline = process::rss_bytes(pid).expect("server RSS");
        let mut after = baseline;
        for n in 1..=measured_rounds() {
            let label = format!("measured {n}");
            let measured = run_round(server, &client, &corpus.cases, &label, ca).await;
            cert_rep_failures += measured.cert_rep_failures;
            rounds += 1;
            failures.extend(measured.failures);
            if measured.died_at.is_some() {
                break;
            }
            after = process::rss_bytes(pid).expect("server RSS");
            eprintln!(
                "server RSS {:.1} MiB after the warm-up round, {:.1} MiB after measured round {n} ({:.1} MiB of bodies read in it)",
                baseline as f64 / 1048576.0,
                after as f64 / 1048576.0,
                measured.body_bytes as f64 / 1048576.0
            );
        }
        if after > baseline + RSS_BOUND {
            failures.push(format!(
                "memory: RSS grew from {baseline} to {after} bytes over the measured rounds (bound {RSS_BOUND})"
            ));
        }
    }
    if !process::alive(pid) {
        failures.push("the server process is no longer running".into());
    } else {
        match client.get(server.url("/healthz")).send().await {
            Ok(r) if r.status() == 200 => {}
            Ok(r) => failures.push(format!("/healthz answered {}", r.status())),
            Err(e) => failures.push(format!("/healthz: {e}")),
        }
    }
    Outcome {
        failures,
        cert_rep_failures,
        rounds,
    }
}

fn report(test: &str, failures: &[String]) {
    assert!(
        failures.is_empty(),
        "{test}: {} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// The server as it runs, but with the abuse limits off: rate limits and the
/// failed-guess lockout would answer most of the corpus with 429 before any parser
/// sees it, which proves nothing about the parsers (abuse.rs tests the limits).
async fn start(backend: Backend) -> TestServer {
    let unlimited = [
        "--device-rate-per-identity",
        "--device-rate-per-address",
        "--enroll-rate-per-address",
        "--enroll-max-failures",
    ];
    TestServer::start_with(
        backend,
        ServerOptions {
            extra_args: unlimited
                .iter()
                .flat_map(|flag| [flag.to_string(), "0".to_owned()])
                .collect(),
            ..Default::default()
        },
    )
    .await
}

async fn enrolled_device(server: &TestServer) -> (SimDevice, String) {
    let device = SimDevice::iphone(&server.base_url, &server.ca);
    device.enroll().await;
    let id = server.get(&format!("/devices/udid:{}", device.udid)).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    (device, id)
}

async fn device_ca(server: &TestServer) -> X509 {
    let der = reqwest::get(server.url("/scep?operation=GetCACert"))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    X509::from_der(&der).expect("GetCACert answers a DER certificate")
}

/// The whole corpus: every endpoint, every answer 4xx, nothing written.
async fn hostile_inputs_are_refused_and_write_nothing(backend: Backend) {
    let test = "hostile_inputs_are_refused_and_write_nothing";
    let server = start(backend).await;
    let (device, device_id) = enrolled_device(&server).await;
    // A pending command and a live enrollment: state that a request getting through
    // would change.
    let command_uuid = server
        .queue(&device_id, json!({"type": "ProfileList"}))
        .await;
    let (status, enrollment) = server
        .api(
            "POST",
            "/enrollments",
            Some(json!({"platform": "apple", "name": "Front office"})),
        )
        .await;
    assert_eq!(status, 201, "{enrollment}");
    let enrollment_token = enrollment["token"].as_str().unwrap().to_owned();
    let enrollment_id = enrollment["id"].as_str().unwrap().to_owned();
    let ca = device_ca(&server).await;

    let seed = seed();
    let mut rng = XorShift::new(seed);
    let mut corpus = Corpus::default();
    device_corpus(&mut corpus, &mut rng, &device, &command_uuid);
    signature_corpus(&mut corpus, &mut rng, &device);
    scep_garbage_corpus(&mut corpus, &mut rng);
    enrollment_corpus(&mut corpus, &mut rng, &enrollment_token);
    admin_corpus(
        &mut corpus,
        &mut rng,
        &server.admin_token,
        &device_id,
        &enrollment_id,
        &command_uuid,
    );
    print_counts(&corpus, seed, test);

    let db = server.store().await;
    let before = snapshot::take(db.connection(), None).await;
    eprintln!("database before: {}", before.summary());
    let mut outcome = blast(&server, &corpus, &ca).await;
    if process::alive(server.pid()) {
        let after = snapshot::take(db.connection(), None).await;
        outcome.failures.extend(
            before
                .differences(&after)
                .into_iter()
                .map(|d| format!("database changed: {d}")),
        );
    }
    report(test, &outcome.failures);
}

/// Requests signed by one enrolled device for another: refused with 401, and each
/// recorded as one `security.identity_mismatch` event (by design); nothing else.
async fn identity_mismatch_is_refused_and_only_recorded(backend: Backend) {
    let test = "identity_mismatch_is_refused_and_only_recorded";
    let server = start(backend).await;
    let (attacker, _) = enrolled_device(&server).await;
    let (victim, victim_id) = enrolled_device(&server).await;
    let command_uuid = server
        .queue(&victim_id, json!({"type": "ProfileList"}))
        .await;
    let ca = device_ca(&server).await;
    let seed = seed();
    let mut rng = XorShift::new(seed);
    let mut corpus = Corpus::default();
    // The victim's real messages, signed by the attacker: every kind but
    // Authenticate (which re-enrolls a device with a new identity by design).
    for (path, samples) in [
        (CHECKIN_PATH, checkin_samples(&victim)),
        (SERVER_PATH, report_samples(&victim, &command_uuid)),
    ] {
        for (name, sample) in samples.iter().filter(|(n, _)| *n != "Authenticate") {
            for (format, body) in [("xml", to_xml(sample)), ("bplist", to_binary(sample))] {
                c_add_mismatch(
                    &mut corpus,
                    &attacker,
                    path,
                    format!("{name} {format}"),
                    body.clone(),
                );
                // Decodable variants with extra fields a device might add.
                let mut d = sample.as_dictionary().unwrap().clone();
                d.insert("EnrollmentID".into(), rng.ascii(12, TOKEN_ALPHABET).into());
                c_add_mismatch(
                    &mut corpus,
                    &attacker,
                    path,
                    format!("{name} {format} with EnrollmentID"),
                    to_xml(&Value::Dictionary(d)),
                );
            }
        }
    }
    print_counts(&corpus, seed, test);
    let (mut outcome, added) =
        blast_recording_only(&server, &corpus, &ca, "security.identity_mismatch").await;
    if let Some(added) = added {
        let sent = (outcome.rounds * corpus.cases.len()) as i64;
        if added != sent {
            outcome.failures.push(format!(
                "{added} identity_mismatch events for {sent} refused requests"
            ));
        }
    }
    report(test, &outcome.failures);
}

fn c_add_mismatch(
    c: &mut Corpus,
    attacker: &SimDevice,
    path: &'static str,
    name: String,
    body: Vec<u8>,
) {
    c.add(
        "identity mismatch",
        format!("{path} {name}"),
        signed(attacker, path, body),
        Expect::Unauthorized,
    );
}

/// Real SCEP requests (wrong challenge), truncated and bit-flipped, by POST and GET:
/// each is refused, with a 4xx when it is no SCEP message any more (nothing
/// written) or with a CertRep FAILURE (at most one `scep.refused` event each, as
/// enrollment.md documents); no certificate is ever issued, nothing else changes.
async fn scep_mutants_are_refused_and_only_recorded(backend: Backend) {
    let test = "scep_mutants_are_refused_and_only_recorded";
    let server = start(backend).await;
    let ca = device_ca(&server).await;
    let key = mdm_tests::enroll::rsa_key();
    let mut name = X509Name::builder().unwrap();
    name.append_entry_by_nid(Nid::COMMONNAME, "hostile")
        .unwrap();
    let name = name.build();
    let mut opts = RequestOptions::new(&key, &name, &ca);
    opts.challenge = Some("not-the-challenge");
    let pkcs_req = build_request(&opts).expect("build a PKCSReq").der;
    // A renewal signed by a certificate this CA never issued.
    let stranger = TestCa::new("Stranger CA");
    let (stranger_key, stranger_cert) = stranger.issue("stranger");
    let mut opts = RequestOptions::new(&key, &name, &ca);
    opts.renew_with = Some((&stranger_cert, &stranger_key));
    let renewal = build_request(&opts).expect("build a RenewalReq").der;

    let seed = seed();
    let mut rng = XorShift::new(seed);
    let mut corpus = Corpus::default();
    let endpoint = "SCEP PKIOperation";
    for (label, real) in [("PKCSReq", &pkcs_req), ("RenewalReq", &renewal)] {
        let post = |body: Vec<u8>| {
            with_header(
                http(Method::POST, "/scep?operation=PKIOperation", body),
                "Content-Type",
                "application/x-pki-message",
            )
        };
        corpus.add(
            endpoint,
            format!("{label} as is"),
            post(real.clone()),
            Expect::ScepRefusal,
        );
        for i in 0..150 {
            let donor = if rng.below(2) == 0 {
                &pkcs_req
            } else {
                &renewal
            };
            let (kind, der) = mutate(&mut rng, real, donor);
            if i % 3 == 0 {
                // Standard base64 with '+' left unescaped, as some clients send it.
                let message = B64.encode(&der);
                corpus.add(
                    endpoint,
                    format!("GET {label} mutant {i} ({kind})"),
                    http(
                        Method::GET,
                        format!("/scep?operation=PKIOperation&message={message}"),
                        Vec::new(),
                    ),
                    Expect::ScepRefusal,
                );
            } else {
                corpus.add(
                    endpoint,
                    format!("POST {label} mutant {i} ({kind})"),
                    post(der),
                    Expect::ScepRefusal,
                );
            }
        }
        for cut in [0, 1, 2, 10, real.len() / 4, real.len() / 2, real.len() - 1] {
            corpus.add(
                endpoint,
                format!("POST {label} cut at {cut}"),
                post(real[..cut].to_vec()),
                Expect::ScepRefusal,
            );
        }
    }
    print_counts(&corpus, seed, test);
    let (mut outcome, added) = blast_recording_only(&server, &corpus, &ca, "scep.refused").await;
    if let Some(added) = added {
        eprintln!(
            "{} CertRep FAILURE answers, {added} scep.refused events",
            outcome.cert_rep_failures
        );
        // A CertRep refusal may be recorded (at most once); a 4xx never writes.
        if added > outcome.cert_rep_failures as i64 {
            outcome.failures.push(format!(
                "{added} scep.refused events for {} CertRep FAILURE answers: refusals answered with a 4xx wrote events",
                outcome.cert_rep_failures
            ));
        }
    }
    report(test, &outcome.failures);
}

/// Wipes whose confirmation is missing or does not match the device: refused with a
/// 4xx, and each one audited as `admin.device_wipe_refused` (by design: a refused
/// wipe is worth an admin's look); no command queued, nothing else written.
async fn refused_wipes_write_only_their_audit_event(backend: Backend) {
    let test = "refused_wipes_write_only_their_audit_event";
    let server = start(backend).await;
    let (device, device_id) = enrolled_device(&server).await;
    let (other, _) = enrolled_device(&server).await;
    let ca = device_ca(&server).await;
    let seed = seed();
    let mut rng = XorShift::new(seed);
    let mut corpus = Corpus::default();
    let mut confirmations = vec![
        ("no confirm", json!({})),
        ("confirm null", json!({"confirm": null})),
        ("empty confirm", json!({"confirm": ""})),
        ("another device's serial", json!({"confirm": other.serial})),
        ("another device's UDID", json!({"confirm": other.udid})),
        (
            "serial in lower case",
            json!({"confirm": device.serial.to_lowercase()}),
        ),
        (
            "serial with a space",
            json!({"confirm": format!("{} ", device.serial)}),
        ),
        ("10 kB confirm", json!({"confirm": long_string(10 * 1024)})),
    ];
    for _ in 0..12 {
        let len = 1 + rng.below(40);
        confirmations.push(("random", json!({"confirm": rng.ascii(len, TOKEN_ALPHABET)})));
    }
    for (name, body) in confirmations {
        let request = with_header(
            with_header(
                http(
                    Method::POST,
                    format!("/api/v1/devices/{device_id}/wipe"),
                    serde_json::to_vec(&body).unwrap(),
                ),
                "Authorization",
                format!("Bearer {}", server.admin_token),
            ),
            "Content-Type",
            "application/json",
        );
        corpus.add("wipe", format!("{name} {body}"), request, Expect::Refused);
    }
    print_counts(&corpus, seed, test);
    let (mut outcome, added) =
        blast_recording_only(&server, &corpus, &ca, "admin.device_wipe_refused").await;
    if let Some(added) = added {
        let sent = (outcome.rounds * corpus.cases.len()) as i64;
        if added > sent {
            outcome.failures.push(format!(
                "{added} wipe_refused events for {sent} refused wipes"
            ));
        }
    }
    report(test, &outcome.failures);
}

on_every_backend!(
    hostile_inputs_are_refused_and_write_nothing,
    identity_mismatch_is_refused_and_only_recorded,
    scep_mutants_are_refused_and_only_recorded,
    refused_wipes_write_only_their_audit_event,
);
