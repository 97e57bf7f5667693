//! The conformance suite's frame: a mechanism under test implements [`Mech`]; the suite in
//! `tests/conformance.rs` runs every behaviour for each one in [`crate::mechs::all`].

use std::any::Any;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use ipcx::{BoxReceiver, BoxSender, OpenOptions};

use crate::{spawn, ChildGuard, TestDir};

/// What a test hands to a mechanism: where the peer program is.
#[derive(Debug, Clone)]
pub struct Ctx {
    /// The `ipcx-testpeer` binary.
    pub peer: PathBuf,
}

impl Ctx {
    /// A command running the peer program.
    pub fn peer(&self) -> Command {
        Command::new(&self.peer)
    }
}

/// Keeps a mechanism's objects alive; removes them on drop.
pub type Guard = Box<dyn Any>;

/// Open options for the test's own end: wait at most 10 s for the peer.
pub fn open_opts() -> OpenOptions {
    OpenOptions::new().open_timeout(Some(Duration::from_secs(10)))
}

/// A mechanism under test.
pub trait Mech {
    /// Its name in failure messages.
    fn name(&self) -> &'static str;
    /// The largest message both ends take.
    fn max_size(&self) -> usize;
    /// Whether a receiver learns that its peer exited (`Disconnected`), and if not, why.
    fn disconnect(&self) -> Result<(), &'static str> {
        Ok(())
    }
    /// Whether a sender can fill the channel while the peer does not read, and if not, why.
    fn backpressure(&self) -> Result<(), &'static str> {
        Ok(())
    }
    /// Make the object; the address both sides open, and a guard that removes it.
    fn create(&self, dir: &TestDir) -> (String, Guard);

    /// Make the object the way ipcx does when the caller names no mode (`OpenOptions::create`
    /// on an address without `mode=`), for the permission test; `Err(why)` for mechanisms
    /// that have no object another process could open. The default uses [`Mech::create`].
    fn create_default(&self, dir: &TestDir) -> Result<(String, Guard), &'static str> {
        Ok(self.create(dir))
    }

    /// An address naming nothing yet, which `ipcx recv ADDR --create` can create (for the
    /// `ipcx ls` / `ipcx rm --stale` test); `None` for mechanisms without named objects.
    /// The default makes the object with [`Mech::create`] and removes it again.
    fn fresh_address(&self, dir: &TestDir) -> Option<String> {
        let (addr, guard) = self.create(dir);
        drop(guard);
        Some(addr)
    }

    /// Both ends in this process, for the leak test (open/close cycles); `Err(why)` if the
    /// mechanism cannot. The default creates the object and opens the receiver, then the
    /// sender.
    fn open_pair(&self, dir: &TestDir) -> Result<(BoxSender, BoxReceiver, Guard), &'static str> {
        let (addr, guard) = self.create(dir);
        let rx = ipcx::open_receiver_with(&addr, &open_opts())
            .unwrap_or_else(|e| panic!("{}: {e}", self.name()));
        let tx = ipcx::open_sender_with(&addr, &open_opts())
            .unwrap_or_else(|e| panic!("{}: {e}", self.name()));
        Ok((tx, rx, guard))
    }

    /// The peer runs `ipcx-testpeer CMD ADDR REST...` and sends; we receive.
    fn peer_sends(
        &self,
        ctx: &Ctx,
        dir: &TestDir,
        cmd: &str,
        rest: &[&str],
    ) -> (ChildGuard, BoxReceiver, Guard) {
        let (addr, guard) = self.create(dir);
        let child = spawn(ctx.peer().arg(cmd).arg(&addr).args(rest));
        let rx = ipcx::open_receiver_with(&addr, &open_opts())
            .unwrap_or_else(|e| panic!("{}: {e}", self.name()));
        (child, rx, guard)
    }

    /// The peer runs `ipcx-testpeer CMD ADDR REST...` and receives; we send.
    fn peer_receives(
        &self,
        ctx: &Ctx,
        dir: &TestDir,
        cmd: &str,
        rest: &[&str],
    ) -> (ChildGuard, BoxSender, Guard) {
        let (addr, guard) = self.create(dir);
        let child = spawn(ctx.peer().arg(cmd).arg(&addr).args(rest));
        let tx = ipcx::open_sender_with(&addr, &open_opts())
            .unwrap_or_else(|e| panic!("{}: {e}", self.name()));
        (child, tx, guard)
    }
}
