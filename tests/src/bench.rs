//! What the benchmarks share: their command line, the server's CPU clock, queueing a
//! command to a fleet and percentiles.

use crate::fixture::{Backend, TestServer};
pub use crate::simulator::plist_body as xml;
use std::time::{Duration, Instant};

/// The value after `--name` on the bench's command line.
pub fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
}

/// The runtime a benchmark's client runs on (all cores).
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// `--devices 1000,10000` (or `default`): the fleet sizes to measure.
pub fn fleet_sizes(default: &str) -> Vec<usize> {
    arg("--devices")
        .unwrap_or_else(|| default.into())
        .split(',')
        .map(|n| n.trim().parse().expect("--devices takes numbers"))
        .collect()
}

/// `--backend sqlite|postgres|both` (default both; PostgreSQL when
/// MDM_TEST_POSTGRES_URL names a server).
pub fn backends() -> Vec<Backend> {
    let pg = Backend::postgres_from_env();
    match arg("--backend").as_deref().unwrap_or("both") {
        "sqlite" => vec![Backend::Sqlite],
        "postgres" => vec![pg.expect("--backend postgres needs MDM_TEST_POSTGRES_URL")],
        _ => std::iter::once(Backend::Sqlite).chain(pg).collect(),
    }
}

/// Queues one DeviceInformation to every device in `ids` through the API (asserting
/// 202 and that each got one); returns how long the call took and its answer.
pub async fn queue_to_all(server: &TestServer, ids: &[String]) -> (Duration, serde_json::Value) {
    let started = Instant::now();
    let (code, body) = server
        .api(
            "POST",
            "/commands",
            Some(serde_json::json!({ "device_ids": ids, "type": "DeviceInformation" })),
        )
        .await;
    let took = started.elapsed();
    assert_eq!(code, 202, "{body}");
    assert_eq!(body["count"].as_u64().unwrap() as usize, ids.len());
    (took, body)
}

/// The server's CPU time so far (user + system, all threads), in seconds.
pub struct ServerCpu {
    pid: u32,
    tick: f64,
}

impl ServerCpu {
    pub fn new(pid: u32) -> Self {
        ServerCpu {
            pid,
            tick: 1.0 / clock_ticks_per_second(),
        }
    }

    pub fn seconds(&self) -> f64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid)).expect("stat");
        // The command name (field 2) may hold spaces: count from the closing paren.
        let rest = &stat[stat.rfind(')').unwrap() + 2..];
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let utime: f64 = fields[11].parse().unwrap();
        let stime: f64 = fields[12].parse().unwrap();
        (utime + stime) * self.tick
    }
}

/// CPU seconds the whole machine spent busy (every core, every process: /proc/stat's
/// first line less idle and iowait), to compare with wall time times [`cores`].
pub fn machine_busy_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/stat").expect("/proc/stat");
    let line = stat.lines().next().expect("the cpu line");
    let ticks: Vec<f64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|f| f.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal (guest time is within user).
    let busy: f64 = ticks.iter().take(8).sum::<f64>() - ticks[3] - ticks[4];
    busy / clock_ticks_per_second()
}

/// The cores this process may run on.
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn clock_ticks_per_second() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse::<f64>().ok())
        .unwrap_or(100.0)
}

/// The `p` quantile (0..=1) of sorted durations.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}
