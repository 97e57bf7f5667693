//! What a benchmark lane is: how the parent and the child each open their end.
//!
//! A mechanism joins `ipcx bench` by implementing [`Lane`] in a file of its own and being
//! listed in [`super::lanes`]. Its ipcx lane goes through the library; its raw lane does the
//! same work on the bare system calls, so the two can be compared in one run.

use std::any::Any;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::path::Path;

use anyhow::{Context, Result};
use ipcx::{BoxReceiver, BoxSender, ErrorKind, Receiver, Sender};

/// One side of a lane: send a message, receive one (false at the end marker).
pub trait Endpoint {
    fn send(&mut self, msg: &[u8]) -> Result<()>;
    /// Receive one message into `buf`; false when the peer has finished.
    fn recv(&mut self, buf: &mut Vec<u8>) -> Result<bool>;
    /// Tell the peer no more messages come.
    fn finish(&mut self) -> Result<()>;
}

/// What the parent needs to start a lane's child and then open its own end.
pub struct Setup {
    /// The channel the child receives on (an address, or what the raw lane understands).
    pub child_a: String,
    /// The channel the child sends on.
    pub child_b: String,
    /// Descriptors handed to the child: (ours, the number it gets there).
    pub child_fds: Vec<(OwnedFd, i32)>,
    /// Opens the parent's end once the child runs.
    pub open_parent: Box<dyn FnOnce() -> Result<Box<dyn Endpoint>>>,
    /// Kept until the measurement ends; removes the lane's objects on drop.
    pub guard: Box<dyn Any>,
}

/// A mechanism's benchmark lane, in its ipcx and raw forms.
pub trait Lane {
    /// The mechanism's name, as `--lanes` takes it.
    fn name(&self) -> &'static str;
    /// Why the lane cannot run on this machine, if it cannot (reported as skipped).
    fn unavailable(&self) -> Option<String> {
        None
    }
    /// Make the channels for one measurement with messages of `size` bytes.
    fn setup(&self, dir: &Path, tag: &str, raw: bool, size: usize) -> Result<Setup>;
    /// The child's end, from the `child_a`/`child_b` strings of [`Setup`].
    fn open_child(&self, a: &str, b: &str, raw: bool, size: usize) -> Result<Box<dyn Endpoint>>;
    /// The classic comparison (when to use, medium, unit, direction, reach) shown beside
    /// the figures; by default looked up by [`Lane::name`] in the report's table.
    fn classic(&self) -> super::report::Classic {
        super::report::classic(self.name())
    }
}

/// The ipcx side of any lane: a boxed sender and receiver from the library. The end
/// marker is an empty message (or the peer disconnecting).
pub struct IpcxEnd {
    pub tx: Option<BoxSender>,
    pub rx: BoxReceiver,
}

impl IpcxEnd {
    /// Open both ends by address; the sender waits at most 10 s for its peer.
    pub fn open(rx: &str, tx: &str) -> Result<IpcxEnd> {
        let rx = ipcx::open_receiver(rx)?;
        let opts = ipcx::OpenOptions::new().open_timeout(Some(std::time::Duration::from_secs(10)));
        let tx = ipcx::open_sender_with(tx, &opts)?;
        Ok(IpcxEnd { tx: Some(tx), rx })
    }
}

impl Endpoint for IpcxEnd {
    fn send(&mut self, msg: &[u8]) -> Result<()> {
        Ok(self.tx.as_mut().context("sender already finished")?.send(msg)?)
    }
    fn recv(&mut self, buf: &mut Vec<u8>) -> Result<bool> {
        match self.rx.recv_into(buf) {
            Ok(()) => Ok(!buf.is_empty()),
            Err(e) if e.kind() == ErrorKind::Disconnected => Ok(false),
            Err(e) => Err(e.into()),
        }
    }
    fn finish(&mut self) -> Result<()> {
        if let Some(mut tx) = self.tx.take() {
            tx.send(b"")?;
        }
        Ok(())
    }
}

/// The raw lane for byte streams: `write(2)` the message, `read(2)` until `size` bytes;
/// the end marker is end of file.
pub struct RawStream {
    pub tx: Option<File>,
    pub rx: File,
    pub size: usize,
}

impl Endpoint for RawStream {
    fn send(&mut self, msg: &[u8]) -> Result<()> {
        Ok(self.tx.as_mut().context("sender already finished")?.write_all(msg)?)
    }
    fn recv(&mut self, buf: &mut Vec<u8>) -> Result<bool> {
        buf.resize(self.size, 0);
        let mut got = 0;
        while got < self.size {
            match self.rx.read(&mut buf[got..])? {
                0 => return Ok(false),
                n => got += n,
            }
        }
        Ok(true)
    }
    fn finish(&mut self) -> Result<()> {
        self.tx = None;
        Ok(())
    }
}
