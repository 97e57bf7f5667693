//! Pipes: the test spawns the peer with its end as descriptor 3.

use std::process::Stdio;

use ipcx::pipe::ChildEnd;
use ipcx::{BoxReceiver, BoxSender};

use crate::conformance::{Ctx, Guard, Mech};
use crate::{ChildGuard, TestDir};

/// `pipe:fd=3`.
pub struct Pipe;

impl Mech for Pipe {
    fn name(&self) -> &'static str {
        "pipe"
    }
    fn max_size(&self) -> usize {
        ipcx::frame::DEFAULT_MAX_FRAME
    }
    fn create(&self, _dir: &TestDir) -> (String, Guard) {
        unreachable!("pipes are made by spawning")
    }
    fn create_default(&self, _dir: &TestDir) -> Result<(String, Guard), &'static str> {
        Err("a pipe has no name: only processes handed one of its descriptors can use it")
    }
    fn fresh_address(&self, _dir: &TestDir) -> Option<String> {
        None
    }
    fn open_pair(&self, _dir: &TestDir) -> Result<(BoxSender, BoxReceiver, Guard), &'static str> {
        let (tx, rx) = ipcx::pipe::pipe().unwrap();
        Ok((Box::new(tx), Box::new(rx), Box::new(())))
    }
    fn peer_sends(
        &self,
        ctx: &Ctx,
        _dir: &TestDir,
        cmd: &str,
        rest: &[&str],
    ) -> (ChildGuard, BoxReceiver, Guard) {
        let mut c = ctx.peer();
        c.arg(cmd).arg(ChildEnd::Fd(3).address()).args(rest);
        c.stdout(Stdio::piped()).stderr(Stdio::piped());
        let (child, rx) =
            ipcx::pipe::spawn_from_child(&mut c, ChildEnd::Fd(3), Default::default()).unwrap();
        (ChildGuard(Some(child)), Box::new(rx), Box::new(()))
    }
    fn peer_receives(
        &self,
        ctx: &Ctx,
        _dir: &TestDir,
        cmd: &str,
        rest: &[&str],
    ) -> (ChildGuard, BoxSender, Guard) {
        let mut c = ctx.peer();
        c.arg(cmd).arg(ChildEnd::Fd(3).address()).args(rest);
        c.stdout(Stdio::piped()).stderr(Stdio::piped());
        let (child, tx) =
            ipcx::pipe::spawn_to_child(&mut c, ChildEnd::Fd(3), Default::default()).unwrap();
        (ChildGuard(Some(child)), Box::new(tx), Box::new(()))
    }
}
