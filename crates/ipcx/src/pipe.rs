//! Pipes: a parent and its child, one way per pipe, framed by ipcx.
//!
//! A pipe (`pipe(2)`) is a kernel buffer with a write end and a read end, inherited across
//! `fork`/`exec`. It carries a byte stream, so ipcx frames messages on it ([`crate::frame`]).
//! For both directions use two pipes: [`duplex`] or [`spawn_duplex`].
//!
//! Hand an end to a child with [`spawn_to_child`] / [`spawn_from_child`]; the child opens
//! its end as `pipe:stdin`, `pipe:stdout` or `pipe:fd=N`:
//!
//! ```no_run
//! use ipcx::{pipe, Receiver};
//! use std::process::Command;
//!
//! let mut cmd = Command::new("ipcx");
//! cmd.args(["send", "pipe:fd=3", "Hello, world!"]);
//! let (mut child, mut rx) = pipe::spawn_from_child(&mut cmd, pipe::ChildEnd::Fd(3), Default::default())?;
//! assert_eq!(rx.recv()?, b"Hello, world!");
//! child.wait().unwrap();
//! # Ok::<(), ipcx::Error>(())
//! ```
//!
//! When the other end is closed (the peer exited or dropped it), a receive gives
//! `Disconnected` once every message before it was read, and a send gives `Disconnected`
//! (`EPIPE`), never a death by `SIGPIPE`: Rust programs ignore `SIGPIPE` from the start.

use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::process::{Child, Command, Stdio};

use crate::address::{Address, PipeEnd};
use crate::error::{Error, ErrorKind, Result};
use crate::frame::{FdHolder, FdStream, Framing, StreamReceiver, StreamSender};
use crate::sys;
use crate::{Label, Receiver, Sender, Wait};

/// The write end of a pipe.
pub type PipeSender = StreamSender<FdStream>;
/// The read end of a pipe.
pub type PipeReceiver = StreamReceiver<FdStream>;

fn sys_err(op: &'static str, what: &str, e: sys::Errno) -> Error {
    Error::from_errno(op, what, e.0)
}

fn sender_on(fd: FdHolder, framing: Framing, name: String) -> Result<PipeSender> {
    let io = FdStream::new(fd).map_err(|e| sys_err("open", &name, e))?;
    let max = framing.max_message();
    Ok(StreamSender::new(io, framing, name, max))
}

fn receiver_on(fd: FdHolder, framing: Framing, name: String) -> Result<PipeReceiver> {
    let io = FdStream::new(fd).map_err(|e| sys_err("open", &name, e))?;
    Ok(StreamReceiver::new(io, framing, name))
}

/// The pipe buffer ipcx asks for: room for a 64 KiB message and its frame header, so a
/// writer of such messages is not stopped 4 bytes short (the default is 64 KiB).
pub const PIPE_CAPACITY: usize = 256 << 10;

/// A pipe as ipcx makes it (close-on-exec, a [`PIPE_CAPACITY`] buffer), as raw descriptors
/// (read end, write end), for programs that hand ends to children themselves.
pub fn pipe_fds() -> Result<(OwnedFd, OwnedFd)> {
    new_pipe()
}

fn new_pipe() -> Result<(OwnedFd, OwnedFd)> {
    let (r, w) = sys::pipe().map_err(|e| {
        sys_err("create", "pipe", e)
            .with_hint("the process or system may be out of file descriptors (ulimit -n)")
    })?;
    // Best effort: past the per-user pipe budget the kernel refuses, and the default stays.
    let _ = sys::set_pipe_capacity(w.as_fd(), PIPE_CAPACITY);
    Ok((r, w))
}

/// A new pipe with the default (length-prefixed) framing: (sending end, receiving end).
#[doc(alias = "pipe2")]
pub fn pipe() -> Result<(PipeSender, PipeReceiver)> {
    pipe_with(Framing::default())
}

/// A new pipe with the given framing.
pub fn pipe_with(framing: Framing) -> Result<(PipeSender, PipeReceiver)> {
    let (r, w) = new_pipe()?;
    let wname = format!("pipe:fd={}", w.as_raw_fd());
    let rname = format!("pipe:fd={}", r.as_raw_fd());
    Ok((
        sender_on(FdHolder::Owned(w), framing, wname)?,
        receiver_on(FdHolder::Owned(r), framing, rname)?,
    ))
}

/// Both directions: two pipes, one sender and one receiver per side.
#[derive(Debug)]
pub struct Duplex {
    /// Sends to the other side.
    pub tx: PipeSender,
    /// Receives from the other side.
    pub rx: PipeReceiver,
}

impl Sender for Duplex {
    fn send_wait(&mut self, msg: &[u8], wait: Wait) -> Result<()> {
        self.tx.send_wait(msg, wait)
    }
    fn max_message_size(&self) -> usize {
        self.tx.max_message_size()
    }
    fn address(&self) -> &str {
        Sender::address(&self.tx)
    }
}

impl Receiver for Duplex {
    fn recv_wait(&mut self, buf: &mut Vec<u8>, wait: Wait) -> Result<()> {
        self.rx.recv_wait(buf, wait)
    }
    fn address(&self) -> &str {
        Receiver::address(&self.rx)
    }
    fn last_label(&self) -> Option<Label> {
        None
    }
}

/// Two connected duplex ends (within one process, before a fork, or for threads).
pub fn duplex() -> Result<(Duplex, Duplex)> {
    let (a_tx, b_rx) = pipe()?;
    let (b_tx, a_rx) = pipe()?;
    Ok((Duplex { tx: a_tx, rx: a_rx }, Duplex { tx: b_tx, rx: b_rx }))
}

/// Where a child finds its end of a pipe.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChildEnd {
    /// As its standard input (the child opens `pipe:stdin`).
    Stdin,
    /// As its standard output (the child opens `pipe:stdout`).
    Stdout,
    /// As descriptor N (the child opens `pipe:fd=N`); N should be 3 or more.
    Fd(RawFd),
}

impl ChildEnd {
    /// The address the child opens.
    pub fn address(self) -> String {
        match self {
            ChildEnd::Stdin => "pipe:stdin".into(),
            ChildEnd::Stdout => "pipe:stdout".into(),
            ChildEnd::Fd(n) => format!("pipe:fd={n}"),
        }
    }
}

fn place(
    cmd: &mut Command,
    end: ChildEnd,
    fd: OwnedFd,
    child_reads: bool,
) -> Result<Option<OwnedFd>> {
    match (end, child_reads) {
        (ChildEnd::Stdin, true) => {
            cmd.stdin(Stdio::from(fd));
            Ok(None)
        }
        (ChildEnd::Stdout, false) => {
            cmd.stdout(Stdio::from(fd));
            Ok(None)
        }
        (ChildEnd::Fd(n), _) if n > 2 => {
            sys::hand_fd_to_child(cmd, fd.as_raw_fd(), n);
            Ok(Some(fd))
        }
        _ => Err(Error::new(
            ErrorKind::InvalidInput,
            "spawn",
            end.address(),
            if child_reads {
                "a child reads from stdin or a descriptor of 3 or more, not stdout"
            } else {
                "a child writes to stdout or a descriptor of 3 or more, not stdin"
            },
        )),
    }
}

/// Spawn `cmd` with the read end of a new pipe at `end`; returns the child and the
/// sending end. The parent's copy of the child's end is closed once the child runs (a
/// `Stdin`/`Stdout` end is taken back out of `cmd`, which is reset to inherit), so the
/// child's exit is seen as `Disconnected`.
pub fn spawn_to_child(
    cmd: &mut Command,
    end: ChildEnd,
    framing: Framing,
) -> Result<(Child, PipeSender)> {
    let (r, w) = new_pipe()?;
    let keep = place(cmd, end, r, true)?;
    let child = cmd.spawn().map_err(|e| spawn_err(cmd, e));
    release(cmd, &[end]);
    let child = child?;
    drop(keep);
    let name = format!("pipe:to-child-{}", child.id());
    Ok((child, sender_on(FdHolder::Owned(w), framing, name)?))
}

/// Spawn `cmd` with the write end of a new pipe at `end`; returns the child and the
/// receiving end.
pub fn spawn_from_child(
    cmd: &mut Command,
    end: ChildEnd,
    framing: Framing,
) -> Result<(Child, PipeReceiver)> {
    let (r, w) = new_pipe()?;
    let keep = place(cmd, end, w, false)?;
    let child = cmd.spawn().map_err(|e| spawn_err(cmd, e));
    release(cmd, &[end]);
    let child = child?;
    drop(keep);
    let name = format!("pipe:from-child-{}", child.id());
    Ok((child, receiver_on(FdHolder::Owned(r), framing, name)?))
}

/// Spawn `cmd` with two pipes: it reads at `child_in` and writes at `child_out`.
pub fn spawn_duplex(
    cmd: &mut Command,
    child_in: ChildEnd,
    child_out: ChildEnd,
    framing: Framing,
) -> Result<(Child, Duplex)> {
    let (to_r, to_w) = new_pipe()?;
    let (from_r, from_w) = new_pipe()?;
    let keep_in = place(cmd, child_in, to_r, true)?;
    let keep_out = place(cmd, child_out, from_w, false)?;
    let child = cmd.spawn().map_err(|e| spawn_err(cmd, e));
    release(cmd, &[child_in, child_out]);
    let child = child?;
    drop((keep_in, keep_out));
    let id = child.id();
    let tx = sender_on(FdHolder::Owned(to_w), framing, format!("pipe:to-child-{id}"))?;
    let rx = receiver_on(FdHolder::Owned(from_r), framing, format!("pipe:from-child-{id}"))?;
    Ok((child, Duplex { tx, rx }))
}

/// The command holds the child's end of a pipe given as its stdin/stdout; let it go, or
/// the parent keeps the pipe open and never sees the child's end of file.
fn release(cmd: &mut Command, ends: &[ChildEnd]) {
    for end in ends {
        match end {
            ChildEnd::Stdin => {
                cmd.stdin(Stdio::inherit());
            }
            ChildEnd::Stdout => {
                cmd.stdout(Stdio::inherit());
            }
            ChildEnd::Fd(_) => {}
        }
    }
}

fn spawn_err(cmd: &Command, e: std::io::Error) -> Error {
    let prog = cmd.get_program().to_string_lossy().into_owned();
    let kind = match e.kind() {
        std::io::ErrorKind::NotFound => ErrorKind::NotFound,
        std::io::ErrorKind::PermissionDenied => ErrorKind::PermissionDenied,
        _ => ErrorKind::Other,
    };
    Error::new(kind, "spawn", prog, e.to_string())
}

fn inherited(end: &PipeEnd, addr: &Address, op: &'static str, reading: bool) -> Result<FdHolder> {
    let name = addr.to_string();
    let not_open = |fd: RawFd| {
        Error::new(
            ErrorKind::NotFound,
            op,
            &name,
            format!("descriptor {fd} is not open in this process; the parent must hand it over (ipcx::pipe::spawn_to_child / spawn_from_child)"),
        )
    };
    let (fd, held) = match *end {
        PipeEnd::Stdin => (0, sys::std_fd(0).map(FdHolder::Std).map_err(|_| not_open(0))?),
        PipeEnd::Stdout => (1, sys::std_fd(1).map(FdHolder::Std).map_err(|_| not_open(1))?),
        PipeEnd::Fd(n) if n <= 2 => {
            (n, sys::std_fd(n).map(FdHolder::Std).map_err(|_| not_open(n))?)
        }
        PipeEnd::Fd(n) => (n, sys::adopt_fd(n).map(FdHolder::Owned).map_err(|_| not_open(n))?),
    };
    // A descriptor open the wrong way would fail at the first message with EBADF: say so
    // now. (An unreadable mode leaves the check to the first call.)
    let mode = sys::status_flags(held.as_fd()).map(|f| f & libc::O_ACCMODE);
    let wrong = match (mode, reading) {
        (Ok(libc::O_WRONLY), true) => Some("open for writing only; a receiver reads"),
        (Ok(libc::O_RDONLY), false) => Some("open for reading only; a sender writes"),
        _ => None,
    };
    if let Some(why) = wrong {
        if let FdHolder::Owned(o) = held {
            // Not ours after all: leave the descriptor open for its owner.
            let _ = std::os::fd::IntoRawFd::into_raw_fd(o);
        }
        return Err(Error::new(
            ErrorKind::InvalidInput,
            op,
            &name,
            format!("descriptor {fd} is {why}; hand over the other end of the pipe"),
        ));
    }
    Ok(held)
}

/// Open an inherited pipe end for sending (`pipe:stdout`, `pipe:fd=N`).
///
/// `pipe:fd=N` takes ownership of descriptor N: it is closed when the sender is dropped.
pub fn open_sender(end: &PipeEnd, framing: Framing, addr: &Address) -> Result<PipeSender> {
    if *end == PipeEnd::Stdin {
        return Err(Error::new(
            ErrorKind::InvalidAddress,
            "open",
            addr.to_string(),
            "pipe:stdin is for receiving; send to pipe:stdout or pipe:fd=N",
        ));
    }
    sender_on(inherited(end, addr, "open", false)?, framing, addr.to_string())
}

/// Open an inherited pipe end for receiving (`pipe:stdin`, `pipe:fd=N`).
pub fn open_receiver(end: &PipeEnd, framing: Framing, addr: &Address) -> Result<PipeReceiver> {
    if *end == PipeEnd::Stdout {
        return Err(Error::new(
            ErrorKind::InvalidAddress,
            "open",
            addr.to_string(),
            "pipe:stdout is for sending; receive from pipe:stdin or pipe:fd=N",
        ));
    }
    receiver_on(inherited(end, addr, "open", true)?, framing, addr.to_string())
}

/// The kernel buffer of a pipe end, in bytes (`F_GETPIPE_SZ`).
pub fn capacity(end: &impl std::os::fd::AsFd) -> Result<usize> {
    sys::pipe_capacity(end.as_fd()).map_err(|e| sys_err("query", "pipe", e))
}
