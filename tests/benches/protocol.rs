//! Protocol benchmark: signed Idle -> command -> Acknowledged cycles against the real
//! server on loopback, next to the rate of a trivial endpoint of the same server in
//! the same run (the ratio is the figure), plus the time to queue one command to
//! every enrolled device.
//!
//!   cargo bench -p mdm-tests --bench protocol -- [--devices 1000,10000,100000]
//!       [--concurrency 64] [--active 512] [--rounds 4] [--backend sqlite|postgres|both]
//!
//! PostgreSQL needs MDM_TEST_POSTGRES_URL. Devices are enrolled directly in the store;
//! `--active` of them hold real identity certificates and drive the cycles.

use enrollment::identity::testing::sign_detached;
use mdm_server::storage::{AuthenticateRecord, DeviceStore};
use mdm_tests::fixture::{Backend, TestServer};
use plist::{Dictionary, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};

struct Options {
    devices: Vec<usize>,
    concurrency: usize,
    active: usize,
    rounds: usize,
    backends: Vec<Backend>,
}

fn options() -> Options {
    let args: Vec<String> = std::env::args().collect();
    let value = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let devices = value("--devices")
        .unwrap_or_else(|| "1000,10000,100000".into())
        .split(',')
        .map(|n| n.trim().parse().expect("--devices takes numbers"))
        .collect();
    let pg = Backend::postgres_from_env();
    let backends = match value("--backend").as_deref().unwrap_or("both") {
        "sqlite" => vec![Backend::Sqlite],
        "postgres" => vec![pg.expect("--backend postgres needs MDM_TEST_POSTGRES_URL")],
        _ => std::iter::once(Backend::Sqlite).chain(pg).collect(),
    };
    Options {
        devices,
        concurrency: value("--concurrency").map_or(64, |v| v.parse().unwrap()),
        active: value("--active").map_or(512, |v| v.parse().unwrap()),
        rounds: value("--rounds").map_or(4, |v| v.parse().unwrap()),
        backends,
    }
}

fn xml(entries: Vec<(&str, Value)>) -> Vec<u8> {
    let dict: Dictionary = entries
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
    let mut out = Vec::new();
    Value::Dictionary(dict).to_writer_xml(&mut out).unwrap();
    out
}

/// A request ready to send: body and its Mdm-Signature, signed before the clock runs.
#[derive(Clone)]
struct Signed {
    body: Vec<u8>,
    signature: String,
}

struct ActiveDevice {
    id: String,
    udid: String,
    key: openssl::pkey::PKey<openssl::pkey::Private>,
    cert: openssl::x509::X509,
    idle: Signed,
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

struct Figures {
    cycles_per_sec: f64,
    p50: Duration,
    p99: Duration,
    requests_per_sec: f64,
    trivial_per_sec: f64,
}

async fn run_cycles(server: &TestServer, devices: &[ActiveDevice], opts: &Options) -> Figures {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(opts.concurrency)
        .build()
        .unwrap();
    let url = server.url("/mdm/connect");
    let mut latencies = Vec::new();
    let mut cycles = 0usize;
    let mut busy = Duration::ZERO;
    let ids: Vec<String> = devices.iter().map(|d| d.id.clone()).collect();
    // Round 0 warms up (connection pools, caches) and is not counted.
    for round in 0..=opts.rounds {
        // Queue one command to each active device, then sign the acknowledgements.
        let (code, body) = server
            .api(
                "POST",
                "/commands",
                Some(serde_json::json!({ "device_ids": ids, "type": "SecurityInfo" })),
            )
            .await;
        assert_eq!(code, 202, "{body}");
        let work: Vec<(Signed, Signed)> = body["commands"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                let device = devices
                    .iter()
                    .find(|d| d.id == c["device_id"].as_str().unwrap())
                    .unwrap();
                let ack = xml(vec![
                    ("UDID", device.udid.clone().into()),
                    ("Status", "Acknowledged".into()),
                    ("CommandUUID", c["command_uuid"].as_str().unwrap().into()),
                ]);
                let signature = sign_detached(&device.key, &device.cert, &ack);
                (
                    device.idle.clone(),
                    Signed {
                        body: ack,
                        signature,
                    },
                )
            })
            .collect();
        let work = Arc::new(std::sync::Mutex::new(work));
        let started = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..opts.concurrency {
            let work = work.clone();
            let http = http.clone();
            let url = url.clone();
            tasks.push(tokio::spawn(async move {
                let mut lat = Vec::new();
                loop {
                    let next = work.lock().unwrap().pop();
                    let Some((idle, ack)) = next else { break };
                    for (request, expect_command) in [(idle, true), (ack, false)] {
                        let t = Instant::now();
                        let resp = http
                            .put(&url)
                            .header("Mdm-Signature", &request.signature)
                            .body(request.body)
                            .send()
                            .await
                            .expect("request");
                        assert_eq!(resp.status(), 200);
                        let bytes = resp.bytes().await.unwrap();
                        lat.push(t.elapsed());
                        assert_eq!(!bytes.is_empty(), expect_command, "unexpected reply");
                    }
                }
                lat
            }));
        }
        let mut round_latencies = Vec::new();
        for t in tasks {
            round_latencies.extend(t.await.unwrap());
        }
        if round > 0 {
            latencies.extend(round_latencies);
            busy += started.elapsed();
            cycles += devices.len();
        }
    }
    // The trivial endpoint, same client, same concurrency, same number of requests.
    let total = latencies.len();
    let health = server.url("/healthz");
    let counter = Arc::new(std::sync::atomic::AtomicUsize::new(total));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..opts.concurrency {
        let (http, health, counter) = (http.clone(), health.clone(), counter.clone());
        tasks.push(tokio::spawn(async move {
            while counter
                .fetch_update(
                    std::sync::atomic::Ordering::SeqCst,
                    std::sync::atomic::Ordering::SeqCst,
                    |n| n.checked_sub(1),
                )
                .is_ok()
            {
                let resp = http.get(&health).send().await.expect("healthz");
                assert_eq!(resp.status(), 200);
                resp.bytes().await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let trivial = started.elapsed();
    latencies.sort();
    Figures {
        cycles_per_sec: cycles as f64 / busy.as_secs_f64(),
        p50: percentile(&latencies, 0.5),
        p99: percentile(&latencies, 0.99),
        requests_per_sec: total as f64 / busy.as_secs_f64(),
        trivial_per_sec: total as f64 / trivial.as_secs_f64(),
    }
}

async fn bench(backend: Backend, fleet: usize, opts: &Options) {
    let server = TestServer::start(backend.clone()).await;
    let store = server.store().await;
    let active = opts.active.min(fleet);
    let mut records = Vec::with_capacity(fleet);
    let mut identities = Vec::with_capacity(active);
    for i in 0..fleet {
        let udid = format!("BENCH-{i:07}");
        let fingerprint = if i < active {
            let (key, cert) = server.ca.issue(&udid);
            let fp = enrollment::identity::fingerprint(&cert);
            identities.push((udid.clone(), key, cert));
            fp
        } else {
            format!("{i:064}")
        };
        records.push(AuthenticateRecord {
            udid,
            serial_number: Some(format!("BN{i:07}")),
            os_family: "iOS".into(),
            identity_fingerprint: fingerprint,
            identity_subject: "CN=bench".into(),
            identity_not_after: "-".into(),
            ..Default::default()
        });
    }
    let seeded = Instant::now();
    let ids = store.insert_enrolled_devices(records).await.unwrap();
    let seed_time = seeded.elapsed();
    let devices: Vec<ActiveDevice> = identities
        .into_iter()
        .zip(ids.iter())
        .map(|((udid, key, cert), id)| {
            let body = xml(vec![
                ("UDID", udid.clone().into()),
                ("Status", "Idle".into()),
            ]);
            let signature = sign_detached(&key, &cert, &body);
            ActiveDevice {
                id: id.clone(),
                udid,
                key,
                cert,
                idle: Signed { body, signature },
            }
        })
        .collect();

    let figures = run_cycles(&server, &devices, opts).await;

    // One command to the whole fleet, through the API, timed end to end.
    let started = Instant::now();
    let (code, body) = server
        .api(
            "POST",
            "/commands",
            Some(serde_json::json!({ "device_ids": ids, "type": "DeviceInformation" })),
        )
        .await;
    let fan_out = started.elapsed();
    assert_eq!(code, 202, "{body}");
    assert_eq!(body["count"].as_u64().unwrap() as usize, fleet);

    println!(
        "| {} | {} | {:.0} | {:.1} | {:.1} | {:.0} | {:.0} | {:.2} | {:.2} | {:.1} |",
        backend.name(),
        fleet,
        figures.cycles_per_sec,
        figures.p50.as_secs_f64() * 1000.0,
        figures.p99.as_secs_f64() * 1000.0,
        figures.requests_per_sec,
        figures.trivial_per_sec,
        figures.requests_per_sec / figures.trivial_per_sec,
        fan_out.as_secs_f64(),
        seed_time.as_secs_f64(),
    );
}

fn main() {
    let opts = options();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    println!(
        "concurrency {}, active devices {}, rounds {}; server: --workers 1",
        opts.concurrency, opts.active, opts.rounds
    );
    println!("| backend | devices | cycles/s | p50 ms | p99 ms | protocol req/s | /healthz req/s | ratio | queue to all (s) | seed (s) |");
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for backend in &opts.backends {
        for &fleet in &opts.devices {
            runtime.block_on(bench(backend.clone(), fleet, &opts));
        }
    }
}
