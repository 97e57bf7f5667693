//! System V queues: a queue with a unique key, made by the test and removed by its guard.

use ipcx::address::SysvKey;
use ipcx::sysv_mq::Queue;

use crate::conformance::{Guard, Mech};
use crate::TestDir;

/// `sysv-mq:KEY`.
pub struct SysvMq;

/// Why queues skip the peer-exit behaviours.
pub const NO_PEERS: &str = "a message queue has no notion of a peer: it outlives the processes that use it, so a receiver waits for the next sender instead of seeing Disconnected (removing the queue gives Disconnected; see sysv_mq docs)";

impl Mech for SysvMq {
    fn name(&self) -> &'static str {
        "sysv-mq"
    }
    fn max_size(&self) -> usize {
        // Whatever the system allows (msgmax, 8192 by default): the same figure the
        // ends compute, from a throwaway private queue.
        Queue::private(0o600).expect("private queue").max_message_size()
    }
    fn disconnect(&self) -> Result<(), &'static str> {
        Err(NO_PEERS)
    }
    fn create(&self, _dir: &TestDir) -> (String, Guard) {
        let key = crate::unique_key();
        let q = Queue::create(SysvKey::Key(key), 0o600).expect("create sysv queue");
        (format!("sysv-mq:{key}"), Box::new(q))
    }
}
