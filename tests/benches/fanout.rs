//! End to end at fleet scale: every one of N enrolled devices receives one command.
//!
//! One `POST /api/v1/commands` queues a DeviceInformation to all N devices; the server
//! pushes each device through APNs (the test suite's fake: HTTP/2 over TLS, client
//! certificate required, every request validated); as each push arrives at the fake,
//! that device wakes, as a phone does: its signed Idle fetches the command and its
//! signed Acknowledged closes it. The figure is the time from the API call to the
//! last acknowledgement, with the server's CPU time over the same window.
//!
//!   cargo bench -p mdm-tests --bench fanout -- [--devices 100000] [--concurrency 64]
//!       [--backend sqlite|postgres|both] [--workers N (default: one per core, as `mdm serve`)]
//!
//! Besides the server's CPU it reports the client's (this process: the simulated
//! devices and the fake APNs) and the whole machine's over the same window, which
//! tell a run bound by CPU from one bound by waiting.
//!
//! The devices' identities (one key, N certificates from the test device CA) and
//! their Idle bodies are made before the clock starts; the Acknowledged, which names
//! the command the server chose, is signed by the client inside the window, as a
//! device would, so the client's signing shares the machine with the server.

use enrollment::identity::testing::{rsa_2048_key, sign_detached};
use mdm_server::storage::{AuthenticateRecord, DeviceStore};
use mdm_tests::bench::{self, percentile, xml, ServerCpu};
use mdm_tests::fake_apns::FakeApns;
use mdm_tests::fixture::{Backend, ServerOptions, TempDir, TestServer, TEST_PUSH_TOPIC};
use openssl::pkey::{PKey, Private};
use openssl::x509::X509;
use sea_orm::ConnectionTrait;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

struct Options {
    devices: Vec<usize>,
    concurrency: usize,
    backends: Vec<Backend>,
    workers: usize,
}

fn options() -> Options {
    Options {
        devices: bench::fleet_sizes("100000"),
        concurrency: bench::arg("--concurrency").map_or(64, |v| v.parse().unwrap()),
        backends: bench::backends(),
        // The server's own default: one HTTP worker per core.
        workers: bench::arg("--workers").map_or_else(bench::cores, |v| v.parse().unwrap()),
    }
}

/// Device i's UDID and push token (64 hex digits: the decimal index, zero-padded).
fn udid(i: usize) -> String {
    format!("FANOUT-{i:07}")
}

/// Gives every seeded device a push token and magic in one statement (a TokenUpdate
/// per device through the store would take longer than the run it prepares).
async fn give_push_tokens(server: &TestServer) {
    let token = match server.backend {
        Backend::Sqlite => "printf('%064d', CAST(substr(udid, 8) AS INTEGER))",
        Backend::Postgres(_) => "lpad(substr(udid, 8), 64, '0')",
    };
    let db = sea_orm::Database::connect(&server.database_url)
        .await
        .unwrap();
    db.execute_unprepared(&format!(
        "UPDATE devices SET push_token = {token}, push_magic = 'magic-' || udid \
         WHERE udid LIKE 'FANOUT-%'"
    ))
    .await
    .unwrap();
    db.close().await.unwrap();
}

struct Device {
    cert: X509,
    idle: Vec<u8>,
    idle_signature: String,
}

/// The fleet's identities and signed Idle bodies, made on every core.
fn make_devices(server: &TestServer, key: &PKey<Private>, n: usize) -> Vec<Device> {
    let threads = std::thread::available_parallelism().map_or(2, |p| p.get());
    let chunk = n.div_ceil(threads);
    std::thread::scope(|scope| {
        let parts: Vec<_> = (0..threads)
            .map(|t| {
                scope.spawn(move || {
                    (t * chunk..((t + 1) * chunk).min(n))
                        .map(|i| {
                            let cert = server.ca.issue_for(&udid(i), key);
                            let idle =
                                xml(vec![("UDID", udid(i).into()), ("Status", "Idle".into())]);
                            let idle_signature = sign_detached(key, &cert, &idle);
                            Device {
                                cert,
                                idle,
                                idle_signature,
                            }
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        parts.into_iter().flat_map(|p| p.join().unwrap()).collect()
    })
}

async fn run(backend: Backend, n: usize, opts: &Options) {
    let apple_ca = enrollment::identity::testing::TestCa::new("Fake Apple Push CA");
    let fake = Arc::new(FakeApns::start(&apple_ca.cert).await);
    let dir = TempDir::new("mdm-fanout");
    let ca_file = dir.0.join("apns-ca.pem");
    std::fs::write(&ca_file, fake.server_ca_pem()).unwrap();
    let server = TestServer::start_with(
        backend.clone(),
        ServerOptions {
            extra_args: vec![
                "--apns-url".into(),
                fake.url(),
                "--apns-ca-cert".into(),
                ca_file.display().to_string(),
                // The whole simulated fleet speaks from 127.0.0.1: the per-address
                // limit (30,000 a minute, for devices behind one NAT) would refuse it.
                "--device-rate-per-address".into(),
                "0".into(),
            ],
            workers: opts.workers,
            rsa_device_ca: true,
            ..Default::default()
        },
    )
    .await;
    server.upload_push_certificate_from(&apple_ca).await;

    let prepared = Instant::now();
    // What a real device holds: an RSA 2048 key from an RSA CA (see the fixture's
    // `rsa_device_ca`). One key for the fleet, each device its own certificate: the
    // server reads and verifies every certificate once, as for distinct keys.
    let key = rsa_2048_key();
    let devices = Arc::new(make_devices(&server, &key, n));
    let records = devices
        .iter()
        .enumerate()
        .map(|(i, d)| AuthenticateRecord {
            udid: udid(i),
            serial_number: Some(format!("FO{i:07}")),
            os_family: "iOS".into(),
            topic: Some(TEST_PUSH_TOPIC.into()),
            identity_fingerprint: enrollment::identity::fingerprint(&d.cert),
            identity_subject: format!("CN={}", udid(i)),
            identity_not_after: "-".into(),
            ..Default::default()
        })
        .collect();
    let ids = server
        .store()
        .await
        .insert_enrolled_devices(records)
        .await
        .unwrap();
    give_push_tokens(&server).await;
    let prepare_time = prepared.elapsed();
    tokio::time::sleep(Duration::from_secs(1)).await;

    let cpu = ServerCpu::new(server.pid());
    let cpu_before = cpu.seconds();
    // The simulated devices and the fake APNs run in this process, on the same
    // cores: their CPU, and the whole machine's, bound the wall time from below.
    let client = ServerCpu::new(std::process::id());
    let client_before = client.seconds();
    let machine_before = bench::machine_busy_seconds();
    let started = Instant::now();

    // Devices wake in the order their pushes reach the fake APNs.
    let (woken, wake) = tokio::sync::mpsc::unbounded_channel::<usize>();
    let all_pushed = Arc::new(Mutex::new(None::<Duration>));
    let follower = {
        let (fake, all_pushed) = (fake.clone(), all_pushed.clone());
        tokio::spawn(async move {
            let mut seen = 0;
            let mut pushed = vec![false; n];
            let mut distinct = 0;
            while distinct < n {
                let new = fake.received_after(seen, Duration::from_secs(300)).await;
                assert!(
                    !new.is_empty(),
                    "no push for 300 s: {distinct} of {n} pushed"
                );
                seen += new.len();
                for push in new {
                    assert_eq!(push.status, 200, "the fake refused a push: {push:?}");
                    let i: usize = push.token.parse().expect("a fan-out token");
                    if !std::mem::replace(&mut pushed[i], true) {
                        distinct += 1;
                        woken.send(i).unwrap();
                    }
                }
            }
            *all_pushed.lock().unwrap() = Some(started.elapsed());
            seen
        })
    };

    bench::queue_to_all(&server, &ids).await;
    let queued = started.elapsed();

    let wake = Arc::new(tokio::sync::Mutex::new(wake));
    let done = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(opts.concurrency)
        .build()
        .unwrap();
    let url = server.url("/mdm/connect");
    let key = Arc::new(key);
    let mut tasks = Vec::new();
    for _ in 0..opts.concurrency {
        let (wake, done, http, url, devices, key) = (
            wake.clone(),
            done.clone(),
            http.clone(),
            url.clone(),
            devices.clone(),
            key.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            loop {
                if done.load(std::sync::atomic::Ordering::SeqCst) >= n {
                    break;
                }
                let next = tokio::time::timeout(Duration::from_millis(200), async {
                    wake.lock().await.recv().await
                })
                .await;
                let Ok(Some(i)) = next else { continue };
                let device = &devices[i];
                let t = Instant::now();
                let command = http
                    .put(&url)
                    .header("Mdm-Signature", &device.idle_signature)
                    .body(device.idle.clone())
                    .send()
                    .await
                    .expect("Idle")
                    .bytes()
                    .await
                    .unwrap();
                latencies.push(t.elapsed());
                let command = plist::Value::from_reader_xml(&command[..])
                    .unwrap_or_else(|e| panic!("{}: no command after its push: {e}", udid(i)));
                let uuid = command
                    .as_dictionary()
                    .and_then(|d| d.get("CommandUUID"))
                    .and_then(|v| v.as_string())
                    .expect("CommandUUID")
                    .to_owned();
                let ack = xml(vec![
                    ("UDID", udid(i).into()),
                    ("Status", "Acknowledged".into()),
                    ("CommandUUID", uuid.into()),
                ]);
                let signature = sign_detached(&key, &device.cert, &ack);
                let t = Instant::now();
                let resp = http
                    .put(&url)
                    .header("Mdm-Signature", signature)
                    .body(ack)
                    .send()
                    .await
                    .expect("Acknowledged");
                assert_eq!(resp.status(), 200);
                assert!(resp.bytes().await.unwrap().is_empty(), "one command each");
                latencies.push(t.elapsed());
                done.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
            latencies
        }));
    }
    let mut latencies = Vec::new();
    for t in tasks {
        latencies.extend(t.await.unwrap());
    }
    let total = started.elapsed();
    let server_cpu = cpu.seconds() - cpu_before;
    let client_cpu = client.seconds() - client_before;
    let machine_cpu = bench::machine_busy_seconds() - machine_before;
    let pushes = follower.await.unwrap();
    let pushed = all_pushed.lock().unwrap().expect("all pushed");
    latencies.sort();
    println!(
        "| {} | {} | {:.1} | {:.1} | {:.1} | {:.1} | {:.0} | {:.1} | {:.3} | {:.1} | {:.1} | {} | {:.1} | {:.1} | {} |",
        backend.name(),
        n,
        total.as_secs_f64(),
        queued.as_secs_f64(),
        pushed.as_secs_f64(),
        server_cpu,
        n as f64 / total.as_secs_f64(),
        percentile(&latencies, 0.99).as_secs_f64() * 1000.0,
        server_cpu * 1000.0 / n as f64,
        percentile(&latencies, 0.5).as_secs_f64() * 1000.0,
        prepare_time.as_secs_f64(),
        pushes,
        client_cpu,
        machine_cpu,
        bench::cores(),
    );
}

fn main() {
    let opts = options();
    let runtime = bench::runtime();
    println!(
        "concurrency {}; server: --workers {}, release build, fake APNs on loopback",
        opts.concurrency, opts.workers
    );
    println!(
        "| backend | devices | queue to last ack (s) | API queue call (s) | last push (s) | server CPU (s) | devices/s | request p99 ms | server CPU ms/device | request p50 ms | prepare (s) | pushes | client CPU (s) | machine CPU (s) | cores |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for backend in &opts.backends {
        for &n in &opts.devices {
            runtime.block_on(run(backend.clone(), n, &opts));
        }
    }
}
