//! POSIX queues: a queue with a unique name, made by the test and unlinked by its guard.

use ipcx::posix_mq::Queue;

use crate::conformance::{Guard, Mech};
use crate::TestDir;

/// `posix-mq:/ipcx-test-...`.
pub struct PosixMq;

impl Mech for PosixMq {
    fn name(&self) -> &'static str {
        "posix-mq"
    }
    fn max_size(&self) -> usize {
        ipcx::sys::mq::read_limit(ipcx::posix_mq::MSGSIZE_DEFAULT_PATH).unwrap_or(8192) as usize
    }
    fn disconnect(&self) -> Result<(), &'static str> {
        Err(super::sysv_mq::NO_PEERS)
    }
    fn create(&self, _dir: &TestDir) -> (String, Guard) {
        let name = format!("/{}", crate::unique("ipcx-test-pmq"));
        let q = Queue::create(&name).expect("create POSIX queue");
        (format!("posix-mq:{name}"), Box::new(q))
    }
}
