//! What the benchmarks share: the server's CPU clock, plist bodies and percentiles.

use plist::{Dictionary, Value};
use std::time::Duration;

/// A plist body from key/value pairs, as a device writes one.
pub fn xml(entries: Vec<(&str, Value)>) -> Vec<u8> {
    let dict: Dictionary = entries
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
    let mut out = Vec::new();
    Value::Dictionary(dict).to_writer_xml(&mut out).unwrap();
    out
}

/// The server's CPU time so far (user + system, all threads), in seconds.
pub struct ServerCpu {
    pid: u32,
    tick: f64,
}

impl ServerCpu {
    pub fn new(pid: u32) -> Self {
        let hz = std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse::<f64>().ok())
            .unwrap_or(100.0);
        ServerCpu {
            pid,
            tick: 1.0 / hz,
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

/// The `p` quantile (0..=1) of sorted durations.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}
