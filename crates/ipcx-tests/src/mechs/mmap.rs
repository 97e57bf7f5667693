//! The durable log: a log directory in the test's directory, made by the test.

use crate::conformance::{Guard, Mech};
use crate::TestDir;

/// `mmap:/dir/conf.log`.
pub struct MmapLog;

impl Mech for MmapLog {
    fn name(&self) -> &'static str {
        "mmap-log"
    }
    fn max_size(&self) -> usize {
        ipcx::mmap::log::max_payload(ipcx::mmap::log::DEFAULT_SEGMENT) as usize
    }
    fn disconnect(&self) -> Result<(), &'static str> {
        Err("a log outlives its writer and readers: a writer exiting does not end it, and a reader waits for more (or times out)")
    }
    fn backpressure(&self) -> Result<(), &'static str> {
        Err("a log never fills while readers lag: it grows, in new segments, until the disk is full (tested in tests/mmap.rs)")
    }
    fn create(&self, dir: &TestDir) -> (String, Guard) {
        let path = dir.join("conf.log");
        ipcx::mmap::log::create(&path, &Default::default()).unwrap();
        (format!("mmap:{}", path.display()), Box::new(()))
    }
    fn fresh_address(&self, dir: &TestDir) -> Option<String> {
        // A log is never removed on drop, so the default (create, then drop) would leave
        // one in place: name a path where nothing is yet.
        Some(format!("mmap:{}", dir.join("fresh.log").display()))
    }
}
