//! Shared-memory rings: the test creates the ring's segment (POSIX or System V), both
//! sides attach; in blocking mode (spin, then futex) and in spin mode.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use ipcx::BoxSender;

use crate::conformance::{open_opts, Ctx, Guard, Mech};
use crate::{spawn, unique, unique_key, ChildGuard, TestDir};

/// The reader's owner word in the ring's header (docs/PROTOCOL.md): 0 until a reader
/// attaches.
const READER_OWNER: usize = 32;

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
    fn peer_receives(
        &self,
        ctx: &Ctx,
        dir: &TestDir,
        cmd: &str,
        rest: &[&str],
    ) -> (ChildGuard, BoxSender, Guard) {
        let (addr, guard) = self.create(dir);
        let child = spawn(ctx.peer().arg(cmd).arg(&addr).args(rest));
        // A sender does not wait for a reader (the ring holds messages until one comes),
        // and a reader that never attached cannot be seen to die: wait until the peer's
        // reader has attached, so that killing the peer kills a reader.
        let ring = guard.downcast_ref::<ipcx::shm::Ring>().expect("the guard is the ring");
        let t = Instant::now();
        while ring.segment().load_u64(READER_OWNER, Ordering::Acquire).unwrap_or(0) == 0 {
            assert!(t.elapsed() < Duration::from_secs(10), "{addr}: the peer never attached");
            std::thread::sleep(Duration::from_millis(1));
        }
        let tx = ipcx::open_sender_with(&addr, &open_opts())
            .unwrap_or_else(|e| panic!("{}: {e}", self.label));
        (child, tx, guard)
    }
}
