//! Protocol benchmark: what the device path costs the server, per operation, against
//! the real binary on loopback.
//!
//! For each engine and fleet size it measures, one after the other on one server:
//! - `/healthz` (the trivial endpoint: machines and runs compare through it);
//! - idle connects: a signed Idle answered with an empty 200 (the queue is empty);
//! - command cycles: a signed Idle answered with a DeviceInformation command, then
//!   the signed Acknowledged answered with an empty 200;
//!
//! and reports, per phase, the server's CPU time per operation (utime + stime of the
//! server process from /proc/<pid>/stat, its idle background rate subtracted),
//! operations per second and the p50/p99 latency the client sees. Then it times
//! queueing one command to every enrolled device through the API.
//!
//!   cargo bench -p mdm-tests --bench protocol -- [--devices 1000,10000,100000]
//!       [--concurrency 64] [--active 512] [--rounds 4] [--backend sqlite|postgres|both]
//!       [--perf DIR] [--history 10000000]
//!
//! PostgreSQL needs MDM_TEST_POSTGRES_URL. Devices are enrolled directly in the store;
//! `--active` of them hold real identity certificates and drive the requests: RSA 2048
//! keys from an RSA CA, what our enrollment profile has a real device make (one key
//! shared by the simulated devices, each with its own certificate). Bodies
//! are signed before the clock starts, so the client measures the server. `--perf DIR`
//! records a CPU profile of each phase (`perf record -g`) into DIR instead of timing
//! it faithfully (perf's own overhead lands in the figures of that run).
//! `--history N` first gives the fleet N finished (acknowledged) commands, spread
//! evenly over its devices, so that the device path is measured against a long
//! history as well as an empty one.

use enrollment::identity::testing::{rsa_2048_key, sign_detached};
use mdm_server::storage::{AuthenticateRecord, DeviceStore};
use mdm_tests::bench::{arg, backends, fleet_sizes, percentile, queue_to_all, xml, ServerCpu};
use mdm_tests::fixture::{Backend, ServerOptions, TestServer};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

struct Options {
    devices: Vec<usize>,
    concurrency: usize,
    active: usize,
    rounds: usize,
    backends: Vec<Backend>,
    perf: Option<PathBuf>,
    history: u64,
}

fn options() -> Options {
    let value = arg;
    Options {
        devices: fleet_sizes("1000,10000,100000"),
        concurrency: value("--concurrency").map_or(64, |v| v.parse().unwrap()),
        active: value("--active").map_or(512, |v| v.parse().unwrap()),
        rounds: value("--rounds").map_or(4, |v| v.parse().unwrap()),
        backends: backends(),
        perf: value("--perf").map(PathBuf::from),
        history: value("--history").map_or(0, |v| v.parse().expect("--history takes a number")),
    }
}

/// Gives the fleet `total` finished commands, spread evenly over its devices, in
/// statements of a million rows (one connection: the fleet's numbering is a temporary
/// table).
async fn seed_history(server: &TestServer, total: u64) {
    use sea_orm::ConnectionTrait;
    let mut options = sea_orm::ConnectOptions::new(server.database_url.clone());
    options.max_connections(1).min_connections(1);
    let db = sea_orm::Database::connect(options).await.unwrap();
    let sqlite = matches!(server.backend, Backend::Sqlite);
    let (fleet, series, bytes, no) = if sqlite {
        (
            "CREATE TEMP TABLE bench_fleet (k INTEGER PRIMARY KEY, id TEXT NOT NULL, at TEXT NOT NULL); \
             INSERT INTO bench_fleet SELECT ROW_NUMBER() OVER (ORDER BY id) - 1, id, created_at FROM devices",
            "(WITH RECURSIVE s(n) AS (SELECT {from} UNION ALL SELECT n + 1 FROM s WHERE n < {to}) SELECT n FROM s)",
            "X'3c2f3e'",
            "0",
        )
    } else {
        (
            "CREATE TEMP TABLE bench_fleet AS SELECT (ROW_NUMBER() OVER (ORDER BY id) - 1)::bigint AS k, id, created_at AS at FROM devices; \
             CREATE INDEX ON bench_fleet (k)",
            "(SELECT generate_series({from}, {to}) AS n)",
            "'\\x3c2f3e'::bytea",
            "false",
        )
    };
    for statement in fleet.split("; ") {
        db.execute_unprepared(statement).await.unwrap();
    }
    let size: i64 = db
        .query_one(sea_orm::Statement::from_string(
            db.get_database_backend(),
            "SELECT COUNT(*) AS n FROM bench_fleet",
        ))
        .await
        .unwrap()
        .unwrap()
        .try_get("", "n")
        .unwrap();
    let started = Instant::now();
    let mut from = 0;
    while from < total {
        let to = (from + 1_000_000).min(total) - 1;
        let numbers = series
            .replace("{from}", &from.to_string())
            .replace("{to}", &to.to_string());
        db.execute_unprepared(&format!(
            "INSERT INTO commands (uuid, device_id, request_type, payload, payload_sealed, \
             priority, status, created_by, created_at, updated_at, delivered_at, completed_at, \
             delivery_count, not_now_count) \
             SELECT 'HISTORY-' || n, f.id, 'DeviceInformation', {bytes}, {no}, 0, \
             'acknowledged', 'bench', f.at, f.at, f.at, f.at, 1, 0 \
             FROM {numbers} AS h JOIN bench_fleet f ON f.k = h.n % {size}"
        ))
        .await
        .unwrap();
        from = to + 1;
        eprintln!(
            "  history: {from} finished commands ({:.0} s)",
            started.elapsed().as_secs_f64()
        );
    }
    if !sqlite {
        db.execute_unprepared("ANALYZE commands").await.unwrap();
    }
    db.close().await.unwrap();
}

/// A request ready to send: body and its Mdm-Signature, signed before the clock runs.
#[derive(Clone)]
struct Signed {
    body: Vec<u8>,
    signature: String,
}

/// One unit of work: requests sent in order by one client task, each with whether
/// the server must answer with a body (a command) or empty.
type Job = Vec<(Signed, bool)>;

struct ActiveDevice {
    id: String,
    udid: String,
    key: openssl::pkey::PKey<openssl::pkey::Private>,
    cert: openssl::x509::X509,
    idle: Signed,
}

/// What one phase measured, summed over its rounds.
#[derive(Default)]
struct Phase {
    ops: usize,
    wall: Duration,
    cpu: f64,
    latencies: Vec<Duration>,
}

impl Phase {
    fn cpu_ms_per_op(&self) -> f64 {
        self.cpu * 1000.0 / self.ops.max(1) as f64
    }
    fn per_sec(&self) -> f64 {
        self.ops as f64 / self.wall.as_secs_f64()
    }
    fn p(&mut self, p: f64) -> f64 {
        self.latencies.sort();
        percentile(&self.latencies, p).as_secs_f64() * 1000.0
    }
}

/// After a phase, the server finishes what the requests set going (event tailers);
/// that work is counted, the background's own rate is not.
const SETTLE: Duration = Duration::from_millis(700);

struct Bench<'a> {
    server: &'a TestServer,
    cpu: ServerCpu,
    /// CPU seconds per second the idle server spends on its own (tailers, upkeep).
    background: f64,
    http: reqwest::Client,
    opts: &'a Options,
    label: String,
}

impl Bench<'_> {
    /// Sends every job, `concurrency` at a time, and adds what it cost to `phase`.
    /// `ops` is what the round counts as operations (requests or cycles).
    async fn round(&self, url: &str, jobs: Vec<Job>, ops: usize, phase: &mut Phase) {
        let jobs = Arc::new(Mutex::new(jobs));
        tokio::time::sleep(SETTLE).await;
        let cpu_before = self.cpu.seconds();
        let started = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..self.opts.concurrency {
            let (jobs, http, url) = (jobs.clone(), self.http.clone(), url.to_owned());
            tasks.push(tokio::spawn(async move {
                let mut lat = Vec::new();
                loop {
                    let next = jobs.lock().unwrap().pop();
                    let Some(job) = next else { break };
                    for (request, expect_body) in job {
                        let t = Instant::now();
                        let resp = http
                            .put(&url)
                            .header("Mdm-Signature", &request.signature)
                            .body(request.body)
                            .send()
                            .await
                            .expect("request");
                        let status = resp.status();
                        let bytes = resp.bytes().await.unwrap();
                        lat.push(t.elapsed());
                        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&bytes));
                        assert_eq!(!bytes.is_empty(), expect_body, "unexpected reply");
                    }
                }
                lat
            }));
        }
        for t in tasks {
            phase.latencies.extend(t.await.unwrap());
        }
        let wall = started.elapsed();
        tokio::time::sleep(SETTLE).await;
        let cpu = self.cpu.seconds() - cpu_before - self.background * (wall + SETTLE).as_secs_f64();
        phase.ops += ops;
        phase.wall += wall;
        phase.cpu += cpu.max(0.0);
    }

    /// `GET /healthz`, as many requests as `total`, same client and concurrency.
    async fn healthz(&self, total: usize) -> Phase {
        let url = self.server.url("/healthz");
        let counter = Arc::new(std::sync::atomic::AtomicUsize::new(total));
        tokio::time::sleep(SETTLE).await;
        let cpu_before = self.cpu.seconds();
        let started = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..self.opts.concurrency {
            let (http, url, counter) = (self.http.clone(), url.clone(), counter.clone());
            tasks.push(tokio::spawn(async move {
                let mut lat = Vec::new();
                while counter
                    .fetch_update(
                        std::sync::atomic::Ordering::SeqCst,
                        std::sync::atomic::Ordering::SeqCst,
                        |n| n.checked_sub(1),
                    )
                    .is_ok()
                {
                    let t = Instant::now();
                    let resp = http.get(&url).send().await.expect("healthz");
                    assert_eq!(resp.status(), 200);
                    resp.bytes().await.unwrap();
                    lat.push(t.elapsed());
                }
                lat
            }));
        }
        let mut phase = Phase::default();
        for t in tasks {
            phase.latencies.extend(t.await.unwrap());
        }
        phase.wall = started.elapsed();
        tokio::time::sleep(SETTLE).await;
        phase.cpu = (self.cpu.seconds()
            - cpu_before
            - self.background * (phase.wall + SETTLE).as_secs_f64())
        .max(0.0);
        phase.ops = total;
        phase
    }

    /// Starts `perf record` on the server for one phase, when asked to.
    fn perf(&self, phase: &str) -> Option<std::process::Child> {
        let dir = self.opts.perf.as_ref()?;
        std::fs::create_dir_all(dir).unwrap();
        let out = dir.join(format!("{}-{phase}.data", self.label));
        let child = std::process::Command::new("perf")
            .args([
                "record",
                "-g",
                "-q",
                "-p",
                &self.server.pid().to_string(),
                "-o",
            ])
            .arg(&out)
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("perf record (apt-get install linux-perf)");
        std::thread::sleep(Duration::from_millis(500));
        Some(child)
    }
}

fn stop_perf(child: Option<std::process::Child>) {
    if let Some(mut child) = child {
        let pid = child.id().to_string();
        let _ = std::process::Command::new("kill")
            .args(["-INT", &pid])
            .status();
        let _ = child.wait();
    }
}

/// Idle connects: every active device sends its signed Idle, answered empty.
async fn idle_phase(bench: &Bench<'_>, devices: &[ActiveDevice]) -> Phase {
    let url = bench.server.url("/mdm/connect");
    let jobs = || -> Vec<Job> {
        devices
            .iter()
            .map(|d| vec![(d.idle.clone(), false)])
            .collect()
    };
    // The first round warms up (connections, whatever the server keeps) uncounted.
    bench
        .round(&url, jobs(), devices.len(), &mut Phase::default())
        .await;
    let perf = bench.perf("idle");
    let mut phase = Phase::default();
    for _ in 0..bench.opts.rounds {
        bench.round(&url, jobs(), devices.len(), &mut phase).await;
    }
    stop_perf(perf);
    phase
}

/// Command cycles: per round one DeviceInformation queued to each active device
/// (through the API, not counted), then Idle -> command, Acknowledged -> empty.
async fn cycle_phase(bench: &Bench<'_>, devices: &[ActiveDevice]) -> Phase {
    let url = bench.server.url("/mdm/connect");
    let ids: Vec<String> = devices.iter().map(|d| d.id.clone()).collect();
    let mut phase = Phase::default();
    let mut perf = None;
    for round in 0..=bench.opts.rounds {
        let (_, body) = queue_to_all(bench.server, &ids).await;
        let jobs: Vec<Job> = body["commands"]
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
                vec![
                    (device.idle.clone(), true),
                    (
                        Signed {
                            body: ack,
                            signature,
                        },
                        false,
                    ),
                ]
            })
            .collect();
        if round == 0 {
            // Warm-up, uncounted.
            bench
                .round(&url, jobs, devices.len(), &mut Phase::default())
                .await;
            perf = bench.perf("cycle");
        } else {
            bench.round(&url, jobs, devices.len(), &mut phase).await;
        }
    }
    stop_perf(perf);
    phase
}

async fn bench(backend: Backend, fleet: usize, opts: &Options) {
    let server = TestServer::start_with(
        backend.clone(),
        ServerOptions {
            rsa_device_ca: true,
            ..Default::default()
        },
    )
    .await;
    let key = rsa_2048_key();
    let store = server.store().await;
    let active = opts.active.min(fleet);
    let mut records = Vec::with_capacity(fleet);
    let mut identities = Vec::with_capacity(active);
    for i in 0..fleet {
        let udid = format!("BENCH-{i:07}");
        let fingerprint = if i < active {
            let cert = server.ca.issue_for(&udid, &key);
            let fp = enrollment::identity::fingerprint(&cert);
            identities.push((udid.clone(), key.clone(), cert));
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
    if opts.history > 0 {
        seed_history(&server, opts.history).await;
    }
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

    let cpu = ServerCpu::new(server.pid());
    // The idle server's own rate (tailers every 500 ms, upkeep every second).
    tokio::time::sleep(Duration::from_secs(1)).await;
    let quiet = Duration::from_secs(3);
    let before = cpu.seconds();
    tokio::time::sleep(quiet).await;
    let background = (cpu.seconds() - before) / quiet.as_secs_f64();
    let bench = Bench {
        server: &server,
        cpu,
        background,
        http: reqwest::Client::builder()
            .pool_max_idle_per_host(opts.concurrency)
            .build()
            .unwrap(),
        opts,
        label: format!("{}-{fleet}", backend.name()),
    };

    let mut idle = idle_phase(&bench, &devices).await;
    let mut cycle = cycle_phase(&bench, &devices).await;
    // As many /healthz requests as the protocol phases sent.
    let perf = bench.perf("healthz");
    let mut health = bench.healthz(idle.ops + 2 * cycle.ops).await;
    stop_perf(perf);

    // One command to the whole fleet, through the API, timed end to end.
    let (fan_out, _) = queue_to_all(&server, &ids).await;

    println!(
        "| {} | {} | {:.3} | {:.0} | {:.3} | {:.0} | {:.1} | {:.1} | {:.3} | {:.0} | {:.1} | {:.1} | {:.2} | {:.2} | {:.1} |",
        backend.name(),
        fleet,
        health.cpu_ms_per_op(),
        health.per_sec(),
        idle.cpu_ms_per_op(),
        idle.per_sec(),
        idle.p(0.5),
        idle.p(0.99),
        cycle.cpu_ms_per_op(),
        cycle.per_sec(),
        cycle.p(0.5),
        cycle.p(0.99),
        background * 1000.0,
        fan_out.as_secs_f64(),
        seed_time.as_secs_f64(),
    );
    // p50 of /healthz, to tell queueing in the client from the server's own time.
    eprintln!(
        "  {}: healthz p50 {:.1} ms p99 {:.1} ms; idle {} requests, cycles {}",
        bench.label,
        health.p(0.5),
        health.p(0.99),
        idle.ops,
        cycle.ops
    );
}

fn main() {
    let opts = options();
    let runtime = mdm_tests::bench::runtime();
    println!(
        "concurrency {}, active devices {}, rounds {}, finished commands in the history {}; server: --workers 1",
        opts.concurrency, opts.active, opts.rounds, opts.history
    );
    println!(
        "| backend | devices | /healthz CPU ms/req | /healthz req/s | idle CPU ms/req | idle req/s | idle p50 ms | idle p99 ms | cycle CPU ms/cycle | cycles/s | cycle req p50 ms | cycle req p99 ms | background CPU ms/s | queue to all (s) | seed (s) |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for backend in &opts.backends {
        for &fleet in &opts.devices {
            runtime.block_on(bench(backend.clone(), fleet, &opts));
        }
    }
}
