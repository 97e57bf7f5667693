//! Shared-memory rings: the test creates the ring's segment (POSIX or System V), both
//! sides attach; in blocking mode (spin, then futex) and in spin mode.

use crate::conformance::{Guard, Mech};
use crate::{unique, unique_key, TestDir};

/// `shm:/name` (blocking), `shm:/name?spin=1`, or `sysv-shm:KEY`.
pub struct Shm {
    /// The name in failure messages.
    pub label: &'static str,
    /// Spin, never sleep.
    pub spin: bool,
    /// System V instead of POSIX.
    pub sysv: bool,
}

impl Mech for Shm {
    fn name(&self) -> &'static str {
        self.label
    }
    fn max_size(&self) -> usize {
        ipcx::shm::ring::max_message(ipcx::shm::ring::DEFAULT_CAPACITY)
    }
    fn create(&self, _dir: &TestDir) -> (String, Guard) {
        let base = if self.sysv {
            format!("sysv-shm:{:#x}", unique_key() as u32)
        } else {
            format!("shm:/{}", unique("ipcx-test-conf"))
        };
        let addr = if self.spin { format!("{base}?spin=1") } else { base };
        let ring = ipcx::shm::Ring::create(&addr).unwrap_or_else(|e| panic!("{addr}: {e}"));
        (addr, Box::new(ring))
    }
}
