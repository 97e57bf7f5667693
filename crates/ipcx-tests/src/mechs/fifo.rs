//! FIFOs: a FIFO in the test's directory, made by the test.

use crate::conformance::{Guard, Mech};
use crate::TestDir;

/// `fifo:/dir/conf.fifo`.
pub struct Fifo;

impl Mech for Fifo {
    fn name(&self) -> &'static str {
        "fifo"
    }
    fn max_size(&self) -> usize {
        ipcx::fifo::max_message(Default::default(), true)
    }
    fn create(&self, dir: &TestDir) -> (String, Guard) {
        let path = dir.join("conf.fifo");
        let f = ipcx::fifo::Fifo::create(&path, 0o600).unwrap();
        (format!("fifo:{}", path.display()), Box::new(f))
    }
}
