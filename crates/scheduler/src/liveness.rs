//! How runners know each other: a runner's name in the database (host, pid, start time), how
//! often it says it is alive, and when one that stopped saying so counts as dead.

use std::time::Duration;

/// A running trial without a heartbeat for this long belongs to a dead runner.
pub const STALE_AFTER: Duration = Duration::from_secs(60);
/// How often a runner tells the database it is alive.
pub const HEARTBEAT_EVERY: Duration = Duration::from_secs(10);

/// This process's name in the database: host, pid and start time.
pub fn runner_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "localhost".into());
    let started = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    format!("{host}:{}:{started}", std::process::id())
}

/// The host part of a runner's name.
pub fn host_of(runner: &str) -> &str {
    runner.split(':').next().unwrap_or_default()
}

/// Whether the runner named `runner` is a process of this host that no longer exists.
pub fn runner_is_dead_here(runner: &str, host: &str) -> bool {
    let mut parts = runner.split(':');
    let (Some(h), Some(pid)) = (
        parts.next(),
        parts.next().and_then(|p| p.parse::<i32>().ok()),
    ) else {
        return false;
    };
    if h != host {
        return false;
    }
    // SAFETY: kill with signal 0 only checks that the process exists.
    let alive = unsafe { libc::kill(pid, 0) } == 0
        || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM);
    !alive
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_runner_of_another_host_is_never_declared_dead() {
        assert!(!runner_is_dead_here("other:1:0", "here"));
        assert!(!runner_is_dead_here(
            &format!("here:{}:0", std::process::id()),
            "here"
        ));
        assert!(runner_is_dead_here("here:999999999:0", "here"));
    }
}
