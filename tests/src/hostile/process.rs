//! The server process as the kernel sees it: whether it is still running and how
//! much memory it holds (resident set size), read from /proc. The corpus test uses it
//! to tell a refused request from a crash, and to see memory come back.

/// `/proc/<pid>/status` fields, or None when the process is gone.
fn status(pid: u32) -> Option<String> {
    std::fs::read_to_string(format!("/proc/{pid}/status")).ok()
}

fn field<'a>(status: &'a str, name: &str) -> Option<&'a str> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(name))
        .map(str::trim)
}

/// Running: present and not a zombie (an exited child stays a zombie until reaped).
pub fn alive(pid: u32) -> bool {
    status(pid)
        .and_then(|s| field(&s, "State:").map(|st| !st.starts_with('Z') && !st.starts_with('X')))
        .unwrap_or(false)
}

/// Resident set size in bytes (`VmRSS`), or None when the process is gone.
pub fn rss_bytes(pid: u32) -> Option<u64> {
    let s = status(pid)?;
    let kib: u64 = field(&s, "VmRSS:")?
        .strip_suffix("kB")?
        .trim()
        .parse()
        .ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    #[test]
    fn this_process_is_alive_and_has_memory() {
        let pid = std::process::id();
        assert!(super::alive(pid));
        assert!(super::rss_bytes(pid).unwrap() > 0);
    }
}
