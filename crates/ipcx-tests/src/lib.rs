//! Test support for ipcx's cross-process suites: unique names, directories and processes
//! that clean up even when a test fails, and the message pattern (sequence number,
//! pseudo-random payload, checksum) that proves nothing was lost, duplicated, reordered
//! or torn.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

pub mod conformance;
pub mod mechs;

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A name unique on this machine for this run: the pid plus a counter.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}-{}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed))
}

/// A number unique on this machine for this run (for System V keys): pid and counter mixed.
pub fn unique_key() -> i32 {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let k = (0x5000_0000u32 | ((std::process::id() & 0xffff) << 12) | (n & 0xfff)) as i32;
    if k == 0 {
        1
    } else {
        k
    }
}

/// A private temporary directory, removed with everything in it on drop.
#[derive(Debug)]
pub struct TestDir(PathBuf);

impl TestDir {
    /// A fresh directory under the system temp dir, mode 0700.
    pub fn new(tag: &str) -> TestDir {
        let p = std::env::temp_dir().join(unique(&format!("ipcx-test-{tag}")));
        std::fs::create_dir(&p).expect("create test dir");
        TestDir(p)
    }
    /// The directory.
    pub fn path(&self) -> &Path {
        &self.0
    }
    /// A path inside it.
    pub fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
        // Entries for what was made here (a log or FIFO kept, or left by a killed child)
        // describe nothing now: forget them, and the registry directory if it empties.
        ipcx::registry::tidy();
    }
}

/// The names in a directory, sorted.
pub fn dir_names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// A child process killed and reaped on drop, so a failing test leaves no process behind.
#[derive(Debug)]
pub struct ChildGuard(pub Option<Child>);

impl ChildGuard {
    /// Wait for the child, at most `limit`; panics (after killing it) if it runs longer.
    pub fn wait_within(&mut self, limit: Duration) -> std::process::Output {
        let mut child = self.0.take().expect("child already waited for");
        let deadline = Instant::now() + limit;
        loop {
            match child.try_wait().expect("try_wait") {
                Some(_) => return child.wait_with_output().expect("collect output"),
                None if Instant::now() >= deadline => {
                    let _ = child.kill();
                    let out = child.wait_with_output().expect("collect output");
                    panic!(
                        "child ran longer than {limit:?} (watchdog); stderr: {}",
                        String::from_utf8_lossy(&out.stderr)
                    );
                }
                None => std::thread::sleep(Duration::from_millis(5)),
            }
        }
    }

    /// The child's pid.
    pub fn id(&self) -> u32 {
        self.0.as_ref().map_or(0, Child::id)
    }

    /// Kill the child with SIGKILL now.
    pub fn kill9(&mut self) {
        if let Some(c) = self.0.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
        self.0 = None;
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Spawn `cmd` with piped stdout/stderr, guarded.
pub fn spawn(cmd: &mut Command) -> ChildGuard {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    ChildGuard(Some(cmd.spawn().expect("spawn child")))
}

/// FNV-1a, 32 bits: a checksum the peer and the test agree on.
pub fn fnv1a(data: &[u8]) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for &b in data {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}

/// xorshift64*: deterministic pseudo-random numbers from a seed.
pub fn rand(state: &mut u64) -> u64 {
    let mut x = *state | 1;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    x.wrapping_mul(0x2545_f491_4f6c_dd1d)
}

/// The smallest patterned message: sequence number and checksum.
pub const PATTERN_MIN: usize = 12;

/// Message `seq` of the pattern, of a pseudo-random size from `PATTERN_MIN` to `max`.
pub fn pattern_message(seq: u64, max: usize, out: &mut Vec<u8>) {
    let mut st = seq.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0xdead_beef;
    let span = max.saturating_sub(PATTERN_MIN) + 1;
    let len = PATTERN_MIN + (rand(&mut st) as usize % span);
    out.clear();
    out.extend_from_slice(&seq.to_le_bytes());
    while out.len() < len - 4 {
        out.push(rand(&mut st) as u8);
    }
    let sum = fnv1a(out);
    out.extend_from_slice(&sum.to_le_bytes());
}

/// Check a patterned message: its sequence number if whole, else why not.
pub fn check_pattern(msg: &[u8]) -> Result<u64, String> {
    if msg.len() < PATTERN_MIN {
        return Err(format!(
            "message of {} bytes is shorter than the pattern's minimum",
            msg.len()
        ));
    }
    let (body, sum) = msg.split_at(msg.len() - 4);
    let want = u32::from_le_bytes(sum.try_into().expect("4 bytes"));
    if fnv1a(body) != want {
        return Err(format!(
            "checksum mismatch in a message of {} bytes (torn or corrupted)",
            msg.len()
        ));
    }
    Ok(u64::from_le_bytes(body[..8].try_into().expect("8 bytes")))
}

/// Count this process's open descriptors.
pub fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map(|d| d.count()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pattern_round_trips_and_detects_damage() {
        let mut m = Vec::new();
        for seq in 0..1000 {
            pattern_message(seq, 300, &mut m);
            assert!(m.len() >= PATTERN_MIN && m.len() <= 300);
            assert_eq!(check_pattern(&m), Ok(seq));
        }
        pattern_message(7, 100, &mut m);
        let last = m.len() - 5;
        m[last] ^= 1;
        assert!(check_pattern(&m).is_err());
        assert!(check_pattern(&m[..5]).is_err());
    }
}
