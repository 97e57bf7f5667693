//! # ipcx: the six classic ways Unix processes talk, safe and fast
//!
//! Processes have separate memory; to cooperate they need the kernel's help. ipcx wraps
//! each classic mechanism with its full native power, and puts one message API and one
//! address scheme over all of them, so a program switches mechanism by changing a string.
//!
//! | mechanism | module | use it when | unit | reach |
//! |---|---|---|---|---|
//! | pipe | [`pipe`] | parent and child | stream (framed by ipcx) | one machine |
//! | named pipe | [`fifo`] | unrelated processes that share a path | stream (framed) | one machine |
//! | message queue | [`sysv_mq`], [`posix_mq`] | many processes, messages by type or priority | message | one machine |
//! | shared memory | [`shm`] | the highest speed | message in a ring, or raw region | one machine |
//! | memory-mapped file | [`mmap`] | large or lasting data | record in a log | one machine |
//! | socket | [`socket`] | client/server, other machines | stream or datagram | network |
//!
//! ## One message API
//!
//! Every channel end implements [`Sender`] or [`Receiver`]. A message is a byte string;
//! its boundaries are kept on every mechanism, byte streams included (see [`frame`]).
//! Each call comes in three flavours: blocking (`send`, `recv`), non-blocking (`try_send`,
//! `try_recv`) and timed (`send_timeout`, `recv_timeout`). The `*_into` receives fill a
//! caller's buffer, so a receive loop does not allocate per message.
//!
//! ```
//! use ipcx::{Receiver, Sender};
//!
//! // A pipe inside one process, for the example; see `pipe::spawn_*` for a child.
//! let (mut tx, mut rx) = ipcx::pipe::pipe()?;
//! tx.send(b"hello")?;
//! tx.send(b"")?; // empty messages are messages too
//! let mut buf = Vec::new();
//! rx.recv_into(&mut buf)?;
//! assert_eq!(buf, b"hello");
//! assert_eq!(rx.recv()?, b"");
//! drop(tx);
//! assert_eq!(rx.recv().unwrap_err().kind(), ipcx::ErrorKind::Disconnected);
//! # Ok::<(), ipcx::Error>(())
//! ```
//!
//! ## One address scheme
//!
//! [`open_sender`] and [`open_receiver`] turn an address ([`address`]) into a boxed
//! channel end:
//!
//! ```no_run
//! use ipcx::{OpenOptions, Receiver};
//! let mut rx = ipcx::open_receiver_with("fifo:/tmp/jobs", &OpenOptions::new().create(true))?;
//! let job = rx.recv()?;
//! # Ok::<(), ipcx::Error>(())
//! ```
//!
//! ## Errors
//!
//! Every call returns [`Error`], whose [`ErrorKind`] names what a caller acts on (full,
//! would block, timed out, disconnected, too large, ...) and whose message names the
//! object, the operation and, where there is one, the limit and how to change it.
//!
//! ## Safety
//!
//! `unsafe` lives only in [`sys`] (the system calls) and the modules that must touch
//! memory another process shares; each block says why it is sound.

#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod address;
pub mod error;
pub mod fifo;
pub mod frame;
pub mod mmap;
pub mod pipe;
pub mod posix_mq;
pub mod registry;
pub mod shm;
pub mod socket;
pub mod sys;
pub mod sysv_mq;

use std::time::{Duration, Instant};

pub use address::Address;
pub use error::{Error, ErrorKind, Result};
pub use frame::Framing;

/// How long a call may wait.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wait {
    /// Block until the call can complete (or the peer is gone).
    Forever,
    /// Do not wait at all: `WouldBlock` / `Full` if the call cannot complete now.
    Never,
    /// Wait until this instant, then `TimedOut`.
    Until(Instant),
}

impl Wait {
    /// Wait at most `d` from now.
    pub fn timeout(d: Duration) -> Wait {
        Instant::now().checked_add(d).map_or(Wait::Forever, Wait::Until)
    }

    /// Blocking when `None`, else at most the duration.
    pub fn from_option(d: Option<Duration>) -> Wait {
        d.map_or(Wait::Forever, Wait::timeout)
    }

    /// The deadline, if any (`Never` is "now").
    pub fn deadline(self) -> Option<Instant> {
        match self {
            Wait::Forever => None,
            Wait::Never => Some(Instant::now()),
            Wait::Until(d) => Some(d),
        }
    }

    /// Whether the deadline has passed.
    pub fn expired(self) -> bool {
        match self {
            Wait::Forever => false,
            Wait::Never => true,
            Wait::Until(d) => Instant::now() >= d,
        }
    }
}

/// What a mechanism tells about a received message beside its bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Label {
    /// A System V message type.
    Type(i64),
    /// A POSIX message priority.
    Priority(u32),
}

/// The sending end of a channel.
///
/// Implementors write [`Sender::send_wait`]; the other calls are built on it.
pub trait Sender {
    /// Send one message, waiting as `wait` says. On `Full`, `TimedOut` or `WouldBlock`
    /// nothing was sent.
    fn send_wait(&mut self, msg: &[u8], wait: Wait) -> Result<()>;

    /// The largest message this end accepts; a larger one gives `TooLarge`.
    fn max_message_size(&self) -> usize;

    /// The address this end was opened on, for messages.
    fn address(&self) -> &str;

    /// Send, blocking while the channel is full.
    fn send(&mut self, msg: &[u8]) -> Result<()> {
        self.send_wait(msg, Wait::Forever)
    }

    /// Send only if there is room now; `ErrorKind::Full` otherwise.
    fn try_send(&mut self, msg: &[u8]) -> Result<()> {
        self.send_wait(msg, Wait::Never)
    }

    /// Send, waiting at most `timeout` for room; `ErrorKind::TimedOut` otherwise.
    fn send_timeout(&mut self, msg: &[u8], timeout: Duration) -> Result<()> {
        self.send_wait(msg, Wait::timeout(timeout))
    }
}

/// The receiving end of a channel.
///
/// Implementors write [`Receiver::recv_wait`]; the other calls are built on it.
pub trait Receiver {
    /// Receive one message into `buf` (cleared first, its capacity reused), waiting as
    /// `wait` says. On `WouldBlock` or `TimedOut` nothing was taken from the channel.
    fn recv_wait(&mut self, buf: &mut Vec<u8>, wait: Wait) -> Result<()>;

    /// The address this end was opened on, for messages.
    fn address(&self) -> &str;

    /// The type or priority of the last message received, where the mechanism has one.
    fn last_label(&self) -> Option<Label> {
        None
    }

    /// Receive into `buf`, blocking until a message comes or the peer is gone.
    fn recv_into(&mut self, buf: &mut Vec<u8>) -> Result<()> {
        self.recv_wait(buf, Wait::Forever)
    }

    /// Receive into `buf` only if a message is waiting; `ErrorKind::WouldBlock` otherwise.
    fn try_recv_into(&mut self, buf: &mut Vec<u8>) -> Result<()> {
        self.recv_wait(buf, Wait::Never)
    }

    /// Receive into `buf`, waiting at most `timeout`; `ErrorKind::TimedOut` otherwise.
    fn recv_timeout_into(&mut self, buf: &mut Vec<u8>, timeout: Duration) -> Result<()> {
        self.recv_wait(buf, Wait::timeout(timeout))
    }

    /// Receive a message, blocking.
    fn recv(&mut self) -> Result<Vec<u8>> {
        let mut buf = Vec::new();
        self.recv_into(&mut buf)?;
        Ok(buf)
    }

    /// Receive a message if one is waiting.
    fn try_recv(&mut self) -> Result<Vec<u8>> {
        let mut buf = Vec::new();
        self.try_recv_into(&mut buf)?;
        Ok(buf)
    }

    /// Receive a message, waiting at most `timeout`.
    fn recv_timeout(&mut self, timeout: Duration) -> Result<Vec<u8>> {
        let mut buf = Vec::new();
        self.recv_timeout_into(&mut buf, timeout)?;
        Ok(buf)
    }
}

impl<T: Sender + ?Sized> Sender for Box<T> {
    fn send_wait(&mut self, msg: &[u8], wait: Wait) -> Result<()> {
        (**self).send_wait(msg, wait)
    }
    fn max_message_size(&self) -> usize {
        (**self).max_message_size()
    }
    fn address(&self) -> &str {
        (**self).address()
    }
}

impl<T: Receiver + ?Sized> Receiver for Box<T> {
    fn recv_wait(&mut self, buf: &mut Vec<u8>, wait: Wait) -> Result<()> {
        (**self).recv_wait(buf, wait)
    }
    fn address(&self) -> &str {
        (**self).address()
    }
    fn last_label(&self) -> Option<Label> {
        (**self).last_label()
    }
}

/// A boxed sending end, as [`open_sender`] returns.
pub type BoxSender = Box<dyn Sender + Send>;
/// A boxed receiving end, as [`open_receiver`] returns.
pub type BoxReceiver = Box<dyn Receiver + Send>;

/// How [`open_sender_with`] and [`open_receiver_with`] open an address.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct OpenOptions {
    /// Create the object if it does not exist (and remove it when the end is dropped,
    /// unless `keep`; a durable log, `mmap:`, is never removed: it outlives its ends by
    /// design).
    pub create: bool,
    /// Leave a created object in place when the end is dropped.
    pub keep: bool,
    /// How long opening may wait for a peer (a FIFO's reader, a socket's server).
    pub open_timeout: Option<Duration>,
    /// Keep receiving when a peer leaves, waiting for the next one (a FIFO's writers).
    pub persist: bool,
}

impl OpenOptions {
    /// Open an existing object, waiting for a peer as long as it takes.
    pub fn new() -> OpenOptions {
        OpenOptions::default()
    }
    /// Create the object if it is missing (removed again when the end is dropped, unless
    /// [`OpenOptions::keep`]; a durable log, `mmap:`, stays).
    pub fn create(mut self, yes: bool) -> OpenOptions {
        self.create = yes;
        self
    }
    /// Keep a created object after the end is dropped.
    pub fn keep(mut self, yes: bool) -> OpenOptions {
        self.keep = yes;
        self
    }
    /// Outlive peers: after one leaves, wait for the next instead of `Disconnected`.
    pub fn persist(mut self, yes: bool) -> OpenOptions {
        self.persist = yes;
        self
    }
    /// Wait at most `d` for a peer while opening.
    pub fn open_timeout(mut self, d: Option<Duration>) -> OpenOptions {
        self.open_timeout = d;
        self
    }
}

/// Open the sending end named by `addr` (see [`address`]).
pub fn open_sender(addr: &str) -> Result<BoxSender> {
    open_sender_with(addr, &OpenOptions::new())
}

/// Open the receiving end named by `addr` (see [`address`]).
pub fn open_receiver(addr: &str) -> Result<BoxReceiver> {
    open_receiver_with(addr, &OpenOptions::new())
}

/// Open the sending end named by `addr` with options.
pub fn open_sender_with(addr: &str, opts: &OpenOptions) -> Result<BoxSender> {
    let a = Address::parse(addr)?;
    match a.target() {
        address::Target::Pipe(end) => Ok(Box::new(pipe::open_sender(end, a.framing()?, &a)?)),
        address::Target::Fifo(_) => Ok(Box::new(fifo::open_sender(&a, opts)?)),
        address::Target::SysvMq(_) => Ok(Box::new(sysv_mq::open_sender(&a, opts)?)),
        address::Target::PosixMq(_) => Ok(Box::new(posix_mq::open_sender(&a, opts)?)),
        address::Target::Shm(_) | address::Target::SysvShm(_) => {
            Ok(Box::new(shm::open_sender(&a, opts)?))
        }
        address::Target::Unix(..) | address::Target::Tcp(..) => socket::open_sender(&a, opts),
        address::Target::Mmap(_) => Ok(Box::new(mmap::log::open_sender(&a, opts)?)),
    }
}

/// Open the receiving end named by `addr` with options.
pub fn open_receiver_with(addr: &str, opts: &OpenOptions) -> Result<BoxReceiver> {
    let a = Address::parse(addr)?;
    match a.target() {
        address::Target::Pipe(end) => Ok(Box::new(pipe::open_receiver(end, a.framing()?, &a)?)),
        address::Target::Fifo(_) => Ok(Box::new(fifo::open_receiver(&a, opts)?)),
        address::Target::SysvMq(_) => Ok(Box::new(sysv_mq::open_receiver(&a, opts)?)),
        address::Target::PosixMq(_) => Ok(Box::new(posix_mq::open_receiver(&a, opts)?)),
        address::Target::Shm(_) | address::Target::SysvShm(_) => {
            Ok(Box::new(shm::open_receiver(&a, opts)?))
        }
        address::Target::Unix(..) | address::Target::Tcp(..) => socket::open_receiver(&a, opts),
        address::Target::Mmap(_) => Ok(Box::new(mmap::log::open_receiver(&a, opts)?)),
    }
}
