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
    fn create_default(&self, dir: &TestDir) -> Result<(String, Guard), &'static str> {
        let addr = format!("fifo:{}", dir.join("default.fifo").display());
        let rx = ipcx::open_receiver_with(&addr, &ipcx::OpenOptions::new().create(true)).unwrap();
        Ok((addr, Box::new(rx)))
    }
}
