//! Message framing for byte streams (pipes, FIFOs, stream sockets).
//!
//! A byte stream has no message boundaries, so ipcx adds them. [`Framing`] picks how:
//!
//! - `length` (the default): a 4-byte little-endian length, then the payload. The receiver
//!   refuses a length over its maximum *before* allocating anything (`docs/PROTOCOL.md`).
//! - `lines`: each message is followed by `\n`; a message may not contain `\n`.
//! - `fixed:N`: every message is a record of exactly N bytes; a shorter message is padded
//!   with zero bytes, a longer one is refused. A received record is returned whole (the
//!   `ipcx` command prints it without its trailing zero bytes).
//! - `raw`: no framing at all; a receive returns whatever bytes one `read` brought.
//!
//! [`StreamSender`] and [`StreamReceiver`] implement the message traits over any
//! [`StreamIo`]. A send is one system call: a small frame (up to 2 KiB) is assembled and
//! written with `write`, a larger one goes out with `writev` (header and payload together).
//! A receive reads into an internal buffer: on a socket several small messages cost one
//! `read`; on a pipe each `read` takes one frame (see [`StreamIo::read_ahead`]). A large
//! payload is read straight into the caller's buffer, so it is copied once. The common
//! case (a small length-prefixed frame) takes a short path: at most one `read`, one copy.
//!
//! `unsafe` is allowed here for one reason: reading into uninitialised buffer space (the
//! receiver's own buffer and the spare capacity of the caller's `Vec`) so that no byte is
//! zeroed only to be overwritten. The [`StreamIo`] contract (an `unsafe trait`) promises
//! that a read initialised the bytes it reports.
#![allow(unsafe_code)]

use std::fmt;
use std::io::IoSlice;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::str::FromStr;

use crate::error::{Error, ErrorKind, Result};
use crate::sys::{self, Errno, SysResult};
use crate::{Receiver, Sender, Wait};

/// Bytes in the length-prefix header.
pub const LENGTH_HEADER: usize = 4;

/// The default largest frame a length-prefixed receiver accepts (16 MiB); `max=N` changes it.
pub const DEFAULT_MAX_FRAME: usize = 16 << 20;

/// Frames up to this size are assembled and sent with one `write`.
const SMALL_FRAME: usize = 2048;

/// The size of a receiver's read buffer.
const READ_BUF: usize = 64 << 10;

/// How far apart two addresses the CPU may take for one another are: a load whose address
/// matches an earlier store's in its low 12 bits waits for that store (4 KiB aliasing).
const ALIAS_SPAN: usize = 4096;

/// A heap buffer of bytes that starts on a 4 KiB boundary ([`ALIAS_SPAN`]).
///
/// A pipe's data sits in page-aligned kernel pages, and a frame written into an empty pipe
/// starts a page. Copied to or from a buffer that starts a few bytes past a 4 KiB
/// boundary, every load of the copy waits on the store just before it (the two addresses
/// alias): measured, a 1 KiB pipe stream moved 0.7x as many messages with the read buffer
/// 4 to 12 bytes past a boundary as with it on one, and where the allocator put the
/// buffer decided which a program got. Starting on a boundary takes the luck out.
#[derive(Debug)]
struct PageBuf<T> {
    /// `ALIAS_SPAN` more than the buffer's length, so that a boundary falls within.
    raw: Box<[T]>,
    off: usize,
}

impl<T: Copy> PageBuf<T> {
    fn new(len: usize, fill: T) -> PageBuf<T> {
        const { assert!(std::mem::size_of::<T>() == 1, "a PageBuf holds bytes") };
        let raw = vec![fill; len + ALIAS_SPAN].into_boxed_slice();
        let off = (ALIAS_SPAN - raw.as_ptr() as usize % ALIAS_SPAN) % ALIAS_SPAN;
        PageBuf { raw, off }
    }
}

impl<T> std::ops::Deref for PageBuf<T> {
    type Target = [T];
    #[inline(always)]
    fn deref(&self) -> &[T] {
        let end = self.raw.len() - ALIAS_SPAN + self.off;
        &self.raw[self.off..end]
    }
}

impl<T> std::ops::DerefMut for PageBuf<T> {
    #[inline(always)]
    fn deref_mut(&mut self) -> &mut [T] {
        let end = self.raw.len() - ALIAS_SPAN + self.off;
        &mut self.raw[self.off..end]
    }
}

/// How messages are delimited on a byte stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// 4-byte little-endian length, then the payload; frames over `max` are refused.
    Length {
        /// The largest payload accepted, checked before any allocation.
        max: usize,
    },
    /// Messages separated by `\n`.
    Lines,
    /// Records of exactly N bytes, zero-padded.
    Fixed(usize),
    /// No framing: each receive returns what one read returned.
    Raw,
}

impl Default for Framing {
    fn default() -> Framing {
        Framing::Length { max: DEFAULT_MAX_FRAME }
    }
}

impl Framing {
    /// The largest message this framing carries.
    pub fn max_message(&self) -> usize {
        match *self {
            Framing::Length { max } => max.min(u32::MAX as usize),
            Framing::Lines => DEFAULT_MAX_FRAME,
            Framing::Fixed(n) => n,
            Framing::Raw => usize::MAX,
        }
    }

    /// Bytes the framing adds to a message of `len` bytes on the wire.
    pub fn overhead(&self, len: usize) -> usize {
        match *self {
            Framing::Length { .. } => LENGTH_HEADER,
            Framing::Lines => 1,
            Framing::Fixed(n) => n.saturating_sub(len),
            Framing::Raw => 0,
        }
    }
}

impl FromStr for Framing {
    type Err = Error;
    fn from_str(s: &str) -> Result<Framing> {
        let bad = |why: String| Error::new(ErrorKind::InvalidAddress, "parse framing", s, why);
        match s {
            "length" => Ok(Framing::default()),
            "lines" => Ok(Framing::Lines),
            "raw" => Ok(Framing::Raw),
            _ => {
                let n = s.strip_prefix("fixed:").ok_or_else(|| {
                    bad("unknown framing; expected length, lines, fixed:N or raw".into())
                })?;
                match n.parse::<usize>() {
                    Ok(n) if n > 0 => Ok(Framing::Fixed(n)),
                    _ => Err(bad(format!("fixed:{n} needs a record size N >= 1"))),
                }
            }
        }
    }
}

impl fmt::Display for Framing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Framing::Length { .. } => f.write_str("length"),
            Framing::Lines => f.write_str("lines"),
            Framing::Fixed(n) => write!(f, "fixed:{n}"),
            Framing::Raw => f.write_str("raw"),
        }
    }
}

/// A byte stream that framing runs over: a pipe, a FIFO, a stream socket.
///
/// `nonblock` asks for one non-blocking attempt (`EAGAIN` when not ready); otherwise the
/// call may block. Implementations retry `EINTR`.
///
/// # Safety
///
/// [`StreamIo::read`] must return `Ok(n)` only with `n <= buf.len()` and the first `n`
/// bytes of `buf` initialised (as `read(2)` does).
pub unsafe trait StreamIo {
    /// The descriptor, for `poll`.
    fn fd(&self) -> BorrowedFd<'_>;
    /// Read into `buf`; 0 means end of stream.
    fn read(&mut self, buf: &mut [MaybeUninit<u8>], nonblock: bool) -> SysResult<usize>;
    /// Write from `bufs`; may write only part.
    fn write(&mut self, bufs: &[IoSlice<'_>], nonblock: bool) -> SysResult<usize>;
    /// Whether a read must first wait for a writer (a FIFO before its first writer comes,
    /// where `read` would report end of file at once).
    fn awaits_writer(&self) -> bool {
        false
    }
    /// Whether a receive may read past the frame it needs (several small frames per
    /// read): yes on a socket (a Unix stream's 64 B rate rose by about a fifth), unless
    /// descriptors ride with particular bytes; not on a pipe (see `FdStream`).
    fn read_ahead(&self) -> bool {
        true
    }
    /// Told once a writer is known to be there: a read returned data or would block.
    fn saw_data(&mut self) {}
    /// Told that a read found the end of the stream. `true` where that ends only the
    /// current writers (a persistent FIFO reader): the receive then waits for the next
    /// writer instead of reporting `Disconnected`, and a frame the last writer left
    /// unfinished is dropped ([`ErrorKind::Incomplete`]).
    fn rejoin(&mut self) -> bool {
        false
    }
    /// Whether end of file only ends the current writers (see [`StreamIo::rejoin`]): a
    /// stream put out of step by a bad frame can then start clean once they have left.
    fn persists(&self) -> bool {
        false
    }
    /// Whether a blocking receive may read without blocking a few times before it blocks
    /// (not for descriptors shared with other programs, whose mode must not change).
    fn spin_reads(&self) -> bool {
        true
    }
}

/// Either a descriptor this end owns, or standard input/output, which the process keeps.
#[derive(Debug)]
pub enum FdHolder {
    /// Closed on drop.
    Owned(OwnedFd),
    /// Left open on drop; its original blocking mode is restored.
    Std(BorrowedFd<'static>),
}

impl AsFd for FdHolder {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match self {
            FdHolder::Owned(fd) => fd.as_fd(),
            FdHolder::Std(fd) => *fd,
        }
    }
}

/// A pipe or FIFO descriptor used as a [`StreamIo`].
///
/// Non-blocking attempts need `O_NONBLOCK` on the open file; it is switched lazily, only
/// when the kind of call changes, so a run of blocking calls (or of timed ones) costs no
/// extra system call.
#[derive(Debug)]
pub struct FdStream {
    fd: FdHolder,
    nonblocking: bool,
    original_nonblocking: bool,
    await_writer: bool,
    persist: bool,
}

impl FdStream {
    /// Wrap a descriptor; reads its current blocking mode.
    pub fn new(fd: FdHolder) -> SysResult<FdStream> {
        let nb = sys::status_flags(fd.as_fd())? & libc::O_NONBLOCK != 0;
        Ok(FdStream {
            fd,
            nonblocking: nb,
            original_nonblocking: nb,
            await_writer: false,
            persist: false,
        })
    }

    /// For a FIFO's read end: poll before reading until a writer has sent something.
    pub fn await_first_writer(mut self) -> FdStream {
        self.await_writer = true;
        self
    }

    /// For a FIFO's read end that outlives its writers: wait for the first writer, and
    /// after the last one leaves, for the next (see [`StreamIo::rejoin`]).
    pub fn persist(mut self) -> FdStream {
        self.await_writer = true;
        self.persist = true;
        self
    }

    #[inline]
    fn mode(&mut self, nonblock: bool) -> SysResult<()> {
        if self.nonblocking != nonblock {
            sys::set_nonblocking(self.fd.as_fd(), nonblock)?;
            self.nonblocking = nonblock;
        }
        Ok(())
    }
}

impl Drop for FdStream {
    fn drop(&mut self) {
        if let FdHolder::Std(fd) = self.fd {
            if self.nonblocking != self.original_nonblocking {
                // Best effort: standard input/output is shared with other programs, so
                // put its mode back; nothing useful can be done if that fails.
                let _ = sys::set_nonblocking(fd, self.original_nonblocking);
            }
        }
    }
}

// SAFETY: `read` is `read(2)` on the descriptor, which initialises exactly the bytes it
// reports and never more than the buffer's length.
unsafe impl StreamIo for FdStream {
    fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
    #[inline]
    fn read(&mut self, buf: &mut [MaybeUninit<u8>], nonblock: bool) -> SysResult<usize> {
        self.mode(nonblock)?;
        sys::read_uninit(self.fd.as_fd(), buf)
    }
    #[inline]
    fn write(&mut self, bufs: &[IoSlice<'_>], nonblock: bool) -> SysResult<usize> {
        self.mode(nonblock)?;
        match bufs {
            // One buffer goes out with write(2): writev(2) costs a pipe writer about a
            // quarter of its small-message throughput (importing and walking the iovec).
            [one] => sys::write(self.fd.as_fd(), one),
            _ => sys::writev(self.fd.as_fd(), bufs),
        }
    }
    fn awaits_writer(&self) -> bool {
        self.await_writer
    }
    fn saw_data(&mut self) {
        self.await_writer = false;
    }
    fn rejoin(&mut self) -> bool {
        self.await_writer |= self.persist;
        self.persist
    }
    fn persists(&self) -> bool {
        self.persist
    }
    fn read_ahead(&self) -> bool {
        // No: a pipe reader that drains everything leaves the pipe empty at each write,
        // and a write into an empty pipe always calls the reader's wake-up (measured: 64 B
        // throughput 0.85x raw reading ahead, 1.0x reading one frame per read). Standard
        // input is shared with other programs besides.
        false
    }
    fn spin_reads(&self) -> bool {
        // Standard input/output is shared with other programs: never leave it in
        // non-blocking mode, so it reads blocking as it always did.
        matches!(self.fd, FdHolder::Owned(_))
    }
}

/// Run one I/O attempt under `wait`: blocking, one non-blocking try, or non-blocking tries
/// with `poll` until the deadline (`ETIMEDOUT` then).
#[inline(always)]
fn with_wait<S: StreamIo, T>(
    io: &mut S,
    events: i16,
    wait: Wait,
    mut op: impl FnMut(&mut S, bool) -> SysResult<T>,
) -> SysResult<T> {
    if wait == Wait::Forever && events == libc::POLLIN && io.spin_reads() {
        // Read without blocking a few times (`sys::spin_tries`), then block in the read
        // itself. A reply that comes within the spin is taken without the reader's wake-up
        // latency, and a peer streaming to a reader that stays awake pays no wake-up per
        // write. The spin reads rather than polls: a single `poll` on a pipe makes the
        // kernel call the reader's wake-up on every later write (`pipe->poll_usage`, Linux
        // 5.16+), which cost the writer about 15% of its small-message throughput.
        return sys::spin_tries(|| op(io, true)).unwrap_or_else(|| op(io, false));
    }
    let deadline = match wait {
        Wait::Forever => return op(io, false),
        Wait::Never => return op(io, true),
        Wait::Until(d) => d,
    };
    loop {
        match op(io, true) {
            Err(Errno(libc::EAGAIN)) => {}
            other => return other,
        }
        if sys::poll(io.fd(), events, Some(deadline))?.none() {
            return Err(Errno(libc::ETIMEDOUT));
        }
    }
}

/// Wait, under `wait`, until a FIFO opened for reading has had a writer: `read` (without
/// blocking) returns data, or would block (a writer is there). `None` when a writer is
/// there and nothing was read yet; the read's result otherwise (`EAGAIN`/`ETIMEDOUT` when
/// the wait ended first).
///
/// Before the first writer a read reports end of file at once. The wait re-reads after
/// naps that grow from 20 µs to 10 ms rather than `poll`ing: one `poll` on a pipe makes
/// every later write on it pay a wake-up call (see [`with_wait`]). Data is never missed
/// (a read returns what a writer left even after it closed); what a nap can miss is a
/// writer that opened and closed without writing anything, and the reader then waits for
/// the next one.
fn await_writer<S: StreamIo>(
    io: &mut S,
    wait: Wait,
    mut read: impl FnMut(&mut S) -> SysResult<usize>,
) -> Option<SysResult<usize>> {
    let mut nap = std::time::Duration::from_micros(20);
    loop {
        match read(io) {
            Ok(0) => {}
            Err(Errno(libc::EAGAIN)) => {
                io.saw_data();
                return None;
            }
            other => return Some(other),
        }
        let now = std::time::Instant::now();
        let left = match wait {
            Wait::Forever => nap,
            Wait::Never => return Some(Err(Errno(libc::EAGAIN))),
            Wait::Until(d) if d <= now => return Some(Err(Errno(libc::ETIMEDOUT))),
            Wait::Until(d) => d - now,
        };
        std::thread::sleep(nap.min(left));
        nap = (nap * 2).min(std::time::Duration::from_millis(10));
    }
}

/// One read into `buf` under `wait`: first, for a FIFO that has not had a writer yet (or
/// whose writers all left, for a persistent reader), wait for one ([`await_writer`]).
#[inline(always)]
fn read_waiting<S: StreamIo>(
    io: &mut S,
    wait: Wait,
    buf: &mut [MaybeUninit<u8>],
) -> SysResult<usize> {
    let first =
        if io.awaits_writer() { await_writer(io, wait, |io| io.read(buf, true)) } else { None };
    first.unwrap_or_else(|| with_wait(io, libc::POLLIN, wait, |io, nb| io.read(buf, nb)))
}

/// Write the rest of a frame whose first `done` bytes went out. A frame once begun is
/// finished, even past a deadline: half a frame would put the stream out of step for every
/// later message. This waits only while the reader keeps its end open (a closed end gives
/// `EPIPE`).
#[cold]
#[inline(never)]
fn finish_frame<S: StreamIo>(
    io: &mut S,
    name: &str,
    parts: [&[u8]; 2],
    mut done: usize,
) -> Result<()> {
    let total = parts[0].len() + parts[1].len();
    while done < total {
        let (a, b) = match parts[0].get(done..) {
            Some(a) if !a.is_empty() => (a, parts[1]),
            _ => (&parts[1][done - parts[0].len()..], &[][..]),
        };
        let rest = [IoSlice::new(a), IoSlice::new(b)];
        let n = if b.is_empty() { 1 } else { 2 };
        done += io.write(&rest[..n], false).map_err(|e| send_error(name, e, STREAM_FULL))?;
    }
    Ok(())
}

/// What a stream sender says when its stream is full.
const STREAM_FULL: &str = "the stream is full (the reader is not keeping up)";

/// A sender's error for a failed send to `name` (`full`: what to say when there is no
/// room now). Shared by the stream and packet senders.
#[cold]
#[inline(never)]
pub(crate) fn send_error(name: &str, e: Errno, full: &str) -> Error {
    match e.0 {
        libc::EAGAIN => Error::new(ErrorKind::Full, "send", name, full),
        libc::ETIMEDOUT => Error::new(
            ErrorKind::TimedOut,
            "send",
            name,
            "no room before the time-out (the reader is not reading)",
        ),
        libc::ECONNREFUSED => Error::new(
            ErrorKind::Disconnected,
            "send",
            name,
            "the receiver is gone (connection refused)",
        )
        .with_errno(e.0),
        _ => Error::from_errno("send", name, e.0),
    }
}

/// The sending end of a framed byte stream.
#[derive(Debug)]
pub struct StreamSender<S> {
    io: S,
    framing: Framing,
    name: String,
    max: usize,
    pad: Vec<u8>,
    small: PageBuf<u8>,
}

impl<S: StreamIo> StreamSender<S> {
    /// Frame messages onto `io`; `name` (an address) appears in errors; `max` caps the
    /// message size below the framing's own limit (a FIFO's atomic-write limit, say).
    pub fn new(io: S, framing: Framing, name: impl Into<String>, max: usize) -> Self {
        let pad = match framing {
            Framing::Fixed(n) => vec![0; n],
            _ => Vec::new(),
        };
        StreamSender {
            io,
            framing,
            name: name.into(),
            max: max.min(framing.max_message()),
            pad,
            small: PageBuf::new(SMALL_FRAME, 0),
        }
    }

    /// The underlying stream.
    pub fn get_ref(&self) -> &S {
        &self.io
    }

    /// The underlying stream, mutably (writing to it directly between messages only).
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.io
    }

    /// The framing in use.
    pub fn framing(&self) -> Framing {
        self.framing
    }

    #[inline]
    fn check(&self, msg: &[u8]) -> Result<()> {
        if msg.len() > self.max || (self.framing == Framing::Lines && msg.contains(&b'\n')) {
            return Err(self.refuse(msg));
        }
        Ok(())
    }

    /// Why `msg` cannot be sent (it failed [`StreamSender::check`]).
    #[cold]
    #[inline(never)]
    fn refuse(&self, msg: &[u8]) -> Error {
        if msg.len() > self.max {
            let why = match self.framing {
                Framing::Fixed(n) => format!(
                    "message of {} bytes does not fit a fixed:{n} record; send at most {n} bytes",
                    msg.len()
                ),
                _ => format!(
                    "message of {} bytes exceeds the limit of {} bytes for this stream{}",
                    msg.len(),
                    self.max,
                    if self.max < self.framing.max_message() {
                        ""
                    } else {
                        " (raise it with ?max=N on both ends)"
                    }
                ),
            };
            return Error::too_large("send", &self.name, self.max as u64, why);
        }
        Error::new(
            ErrorKind::InvalidInput,
            "send",
            &self.name,
            "message contains a newline, which lines framing cannot carry; use framing=length",
        )
    }
}

impl<S: StreamIo> Sender for StreamSender<S> {
    fn send_wait(&mut self, msg: &[u8], wait: Wait) -> Result<()> {
        self.check(msg)?;
        let header = (msg.len() as u32).to_le_bytes();
        let (head, tail): (&[u8], &[u8]) = match self.framing {
            Framing::Length { .. } => (&header, msg),
            Framing::Lines => (msg, b"\n"),
            Framing::Fixed(n) => (msg, &self.pad[..n - msg.len()]),
            Framing::Raw => (msg, &[]),
        };
        let total = head.len() + tail.len();
        // A frame that is the message alone (a full fixed record, raw bytes) goes out as
        // it is. A small frame of two parts is copied into one buffer and written with
        // write(2): cheaper in the kernel than assembling two iovecs. A large one goes out
        // with writev(2).
        let done = if tail.is_empty() {
            with_wait(&mut self.io, libc::POLLOUT, wait, |io, nb| {
                io.write(&[IoSlice::new(head)], nb)
            })
        } else if total <= SMALL_FRAME {
            let small = &mut self.small[..total];
            small[..head.len()].copy_from_slice(head);
            small[head.len()..].copy_from_slice(tail);
            let one = [IoSlice::new(small)];
            with_wait(&mut self.io, libc::POLLOUT, wait, |io, nb| io.write(&one, nb))
        } else {
            let two = [IoSlice::new(head), IoSlice::new(tail)];
            with_wait(&mut self.io, libc::POLLOUT, wait, |io, nb| io.write(&two, nb))
        };
        match done {
            Ok(done) if done == total => Ok(()),
            Ok(done) => finish_frame(&mut self.io, &self.name, [head, tail], done),
            Err(e) => Err(send_error(&self.name, e, STREAM_FULL)),
        }
    }

    fn max_message_size(&self) -> usize {
        self.max
    }

    fn address(&self) -> &str {
        &self.name
    }
}

impl<S: StreamIo> StreamReceiver<S> {
    /// A persistent reader put out of step by a bad frame: drop every byte until the
    /// writers present have all left (end of file), then start clean with the next
    /// writer, as after a frame cut by a departing writer. Waits as `wait` says; a
    /// time-out leaves the rest of the dropping to the next receive.
    #[cold]
    #[inline(never)]
    fn resync(&mut self, wait: Wait) -> Result<()> {
        self.dropped += (self.end - self.start) as u64 + self.partial.len() as u64;
        (self.start, self.end) = (0, 0);
        self.partial.clear();
        self.pending = None;
        loop {
            let (buf, io) = (&mut self.buf, &mut self.io);
            let n = with_wait(io, libc::POLLIN, wait, |io, nb| io.read(&mut buf[..], nb))
                .map_err(|e| self.err(e))?;
            if n > 0 {
                self.dropped += n as u64;
                continue;
            }
            self.io.rejoin();
            let why = self.broken.take().unwrap_or_default();
            let dropped = std::mem::take(&mut self.dropped);
            return Err(self.incomplete(format!(
                "{why}: the stream was out of step, and {dropped} bytes from there on were dropped until its writers left"
            )));
        }
    }
}

/// The receiving end of a framed byte stream.
#[derive(Debug)]
pub struct StreamReceiver<S> {
    io: S,
    framing: Framing,
    name: String,
    buf: PageBuf<MaybeUninit<u8>>,
    start: usize,
    end: usize,
    /// A frame cut off by a time-out: its length; its bytes so far are in `partial`.
    pending: Option<usize>,
    partial: Vec<u8>,
    eof: bool,
    broken: Option<String>,
    /// Bytes a persistent reader has dropped so far to get back in step.
    dropped: u64,
    /// The length of the last frame, to choose how to read the next one.
    last_len: usize,
}

impl<S: StreamIo> StreamReceiver<S> {
    /// Read messages framed by `framing` from `io`; `name` (an address) appears in errors.
    pub fn new(io: S, framing: Framing, name: impl Into<String>) -> Self {
        let cap = match framing {
            Framing::Fixed(n) => READ_BUF.max(n.min(DEFAULT_MAX_FRAME)),
            _ => READ_BUF,
        };
        StreamReceiver {
            io,
            framing,
            name: name.into(),
            buf: PageBuf::new(cap, MaybeUninit::uninit()),
            start: 0,
            end: 0,
            pending: None,
            partial: Vec::new(),
            eof: false,
            broken: None,
            dropped: 0,
            last_len: 0,
        }
    }

    /// The underlying stream.
    pub fn get_ref(&self) -> &S {
        &self.io
    }

    /// The underlying stream, mutably (for its own settings; reading from it directly
    /// would put the framing out of step).
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.io
    }

    /// The framing in use.
    pub fn framing(&self) -> Framing {
        self.framing
    }

    fn buffered(&self) -> &[u8] {
        // SAFETY: bytes start..end of `buf` were initialised by reads (`fill` advances
        // `end` only by what `StreamIo::read` reported), and the slice borrows `self`.
        unsafe {
            std::slice::from_raw_parts(
                self.buf.as_ptr().add(self.start).cast(),
                self.end - self.start,
            )
        }
    }

    #[cold]
    #[inline(never)]
    fn err(&self, e: Errno) -> Error {
        match e.0 {
            libc::EAGAIN => {
                Error::new(ErrorKind::WouldBlock, "recv", &self.name, "no message is waiting")
            }
            libc::ETIMEDOUT => Error::new(
                ErrorKind::TimedOut,
                "recv",
                &self.name,
                "no message arrived before the time-out",
            ),
            _ => Error::from_errno("recv", &self.name, e.0),
        }
    }

    /// A read found the end of the stream: the end (`eof`), or, for a persistent reader,
    /// only its writers' leaving (`eof` stays false, which tells the callers; the next
    /// read waits for a writer).
    #[inline]
    fn read_nothing(&mut self) {
        self.eof = !self.io.rejoin();
    }

    /// Bytes a persistent reader dropped to stay in step (`what` says which); the next
    /// frame starts with the next writer.
    #[cold]
    #[inline(never)]
    fn incomplete(&self, what: String) -> Error {
        Error::new(
            ErrorKind::Incomplete,
            "recv",
            &self.name,
            format!("{what}; the next receive goes on with the next writer"),
        )
    }

    #[cold]
    #[inline(never)]
    fn disconnected(&self) -> Error {
        Error::new(
            ErrorKind::Disconnected,
            "recv",
            &self.name,
            "the writer closed its end (end of stream)",
        )
    }

    /// Read more bytes into the buffer. `Ok(false)` at end of stream.
    fn fill(&mut self, wait: Wait) -> Result<bool> {
        self.fill_at_most(wait, usize::MAX)
    }

    /// Read at most `limit` more bytes into the buffer. `Ok(false)` at end of stream.
    /// Always inlined: it is the read of the short receive path.
    #[inline(always)]
    fn fill_at_most(&mut self, wait: Wait, limit: usize) -> Result<bool> {
        if self.eof {
            return Ok(false);
        }
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        } else if self.end == self.buf.len() {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        let stop = self.end.saturating_add(limit).min(self.buf.len());
        let n = read_waiting(&mut self.io, wait, &mut self.buf[self.end..stop])
            .map_err(|e| self.err(e))?;
        if n == 0 {
            self.read_nothing();
            return Ok(false);
        }
        self.io.saw_data();
        self.end += n;
        Ok(true)
    }

    /// How much to read for the `rest` of a frame: all that is there where the stream
    /// reads ahead, else just the rest (see [`StreamIo::read_ahead`]).
    fn frame_read(&self, rest: usize) -> usize {
        if self.io.read_ahead() {
            usize::MAX
        } else {
            rest
        }
    }

    /// Grow the read buffer (for lines longer than it), up to `limit` bytes.
    fn grow(&mut self, limit: usize) {
        let new_len = (self.buf.len() * 2).min(limit.max(self.buf.len()));
        if new_len > self.buf.len() {
            let mut bigger = PageBuf::new(new_len, MaybeUninit::uninit());
            bigger[..self.end - self.start].copy_from_slice(&self.buf[self.start..self.end]);
            self.end -= self.start;
            self.start = 0;
            self.buf = bigger;
        }
    }

    /// Complete a frame of `len` bytes in `out` (which may hold its first bytes already).
    fn read_exact_into(&mut self, out: &mut Vec<u8>, len: usize, wait: Wait) -> Result<()> {
        loop {
            let take = (len - out.len()).min(self.end - self.start);
            sys::extend_bytes(out, &self.buffered()[..take]);
            self.start += take;
            if out.len() == len {
                return Ok(());
            }
            // A large rest, or the rest of a frame already being read directly, goes
            // straight into the caller's buffer (never past the frame's end).
            let direct =
                self.last_len >= self.buf.len() / 2 && !out.is_empty() && self.start == self.end;
            let step = if direct || len - out.len() >= self.buf.len() / 2 {
                // A large rest goes straight into the caller's buffer: one copy.
                let want = len - out.len();
                out.reserve(want);
                let spare = &mut out.spare_capacity_mut()[..want];
                match with_wait(&mut self.io, libc::POLLIN, wait, |io, nb| io.read(spare, nb)) {
                    Ok(0) => {
                        self.read_nothing();
                        Ok(false)
                    }
                    Ok(n) => {
                        // SAFETY: by the `StreamIo` contract the read initialised the first
                        // `n` (<= `want`) spare bytes, and `reserve` made room for them.
                        unsafe { out.set_len(out.len() + n) };
                        Ok(true)
                    }
                    Err(e) => Err(self.err(e)),
                }
            } else {
                self.fill_at_most(wait, self.frame_read(len - out.len()))
            };
            match step {
                Ok(true) => {}
                Ok(false) if !self.eof => {
                    let got = out.len();
                    out.clear();
                    return Err(self.incomplete(format!(
                        "the last writer left in the middle of a message ({got} of {len} bytes came); its part was dropped"
                    )));
                }
                Ok(false) => {
                    let got = out.len();
                    self.broken = Some(format!(
                        "the stream ended inside a message: expected {len} bytes, got {got}"
                    ));
                    return Err(Error::new(
                        ErrorKind::Corrupted,
                        "recv",
                        &self.name,
                        format!(
                            "the stream ended inside a message: expected {len} bytes, got {got} (the writer died or wrote a truncated frame)"
                        ),
                    ));
                }
                Err(e) => {
                    // Keep what arrived for the next call.
                    std::mem::swap(out, &mut self.partial);
                    self.pending = Some(len);
                    return Err(e);
                }
            }
        }
    }

    /// Receive a length-prefixed frame. The common case (nothing buffered, or a whole frame
    /// buffered, and a small payload) is kept short here: one read at most, one copy;
    /// everything else goes through [`StreamReceiver::recv_length_slow`].
    #[inline(always)]
    fn recv_length(&mut self, out: &mut Vec<u8>, max: usize, wait: Wait) -> Result<()> {
        if self.start == self.end && self.last_len < self.buf.len() / 2 {
            // Read the header and a payload as long as the last one (or all there is,
            // where the stream reads ahead).
            if !self.fill_at_most(wait, self.frame_read(LENGTH_HEADER + self.last_len))? && self.eof
            {
                return Err(self.disconnected());
            }
        }
        let b = self.buffered();
        if b.len() >= LENGTH_HEADER {
            let len = u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize;
            if len <= max && len <= b.len() - LENGTH_HEADER {
                out.clear();
                sys::extend_bytes(out, &b[LENGTH_HEADER..LENGTH_HEADER + len]);
                self.start += LENGTH_HEADER + len;
                self.last_len = len;
                return Ok(());
            }
        }
        self.recv_length_slow(out, max, wait)
    }

    #[inline(never)]
    fn recv_length_slow(&mut self, out: &mut Vec<u8>, max: usize, wait: Wait) -> Result<()> {
        // After a large message, expect another: read just the header, so the payload goes
        // straight into the caller's buffer instead of through ours (one copy, not two).
        // Otherwise read the header and a payload as long as the last one (or every whole
        // small frame that is there, where the stream reads ahead).
        let limit = if self.last_len >= self.buf.len() / 2 {
            LENGTH_HEADER
        } else {
            self.frame_read(LENGTH_HEADER + self.last_len)
        };
        while self.end - self.start < LENGTH_HEADER {
            let want = limit.saturating_sub(self.end - self.start);
            if !self.fill_at_most(wait, want)? {
                if !self.eof {
                    // Writers left (a persistent reader): wait for the next one, dropping
                    // a header the last one did not finish.
                    if self.start == self.end {
                        continue;
                    }
                    let got = self.end - self.start;
                    self.start = self.end;
                    return Err(self.incomplete(format!(
                        "the last writer left in the middle of a frame header ({got} of 4 bytes came); its part was dropped"
                    )));
                }
                if self.start == self.end {
                    return Err(self.disconnected());
                }
                let got = self.end - self.start;
                self.broken =
                    Some(format!("the stream ended inside a frame header ({got} of 4 bytes)"));
                return Err(Error::new(
                    ErrorKind::Corrupted,
                    "recv",
                    &self.name,
                    format!("the stream ended inside a frame header ({got} of 4 bytes)"),
                ));
            }
        }
        let b = self.buffered();
        let len = u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize;
        if len > max {
            // Four bytes of text read as a length: the writer sent lines or raw bytes.
            let head = [b[0], b[1], b[2], b[3]];
            self.broken = Some(format!("a frame of {len} bytes exceeded the limit of {max}"));
            let what = if head.iter().all(|c| c.is_ascii_graphic() || *c == b' ') {
                format!(
                    "these bytes are text ({:?}), not a 4-byte length header: the writer does not use length framing; receive with framing=lines (recv --framing lines) or raw",
                    String::from_utf8_lossy(&head)
                )
            } else {
                "refused before allocating (raise it with ?max=N if the sender is trusted, and reopen: the stream is out of step)".to_owned()
            };
            return Err(Error::too_large(
                "recv",
                &self.name,
                max as u64,
                format!(
                    "the frame header announces {len} bytes, over this receiver's limit of {max} bytes; {what}"
                ),
            ));
        }
        self.start += LENGTH_HEADER;
        self.last_len = len;
        out.clear();
        self.read_exact_into(out, len, wait)
    }

    fn recv_line(&mut self, out: &mut Vec<u8>, wait: Wait) -> Result<()> {
        let max = DEFAULT_MAX_FRAME;
        let mut scanned = 0;
        loop {
            if let Some(i) = self.buffered()[scanned..].iter().position(|&b| b == b'\n') {
                let line_end = scanned + i;
                out.clear();
                sys::extend_bytes(out, &self.buffered()[..line_end]);
                self.start += line_end + 1;
                return Ok(());
            }
            scanned = self.end - self.start;
            if scanned > max {
                self.broken = Some(format!("a line exceeded {max} bytes"));
                return Err(Error::too_large(
                    "recv",
                    &self.name,
                    max as u64,
                    format!("a line longer than {max} bytes arrived without a newline"),
                ));
            }
            if self.start == 0 && self.end == self.buf.len() {
                self.grow(max + 1);
            }
            if !self.fill(wait)? {
                if self.start == self.end {
                    if !self.eof {
                        continue; // writers left: wait for the next one
                    }
                    return Err(self.disconnected());
                }
                // The last line had no newline: deliver it, as `cat` would print it.
                out.clear();
                sys::extend_bytes(out, self.buffered());
                self.start = self.end;
                return Ok(());
            }
        }
    }

    fn recv_raw(&mut self, out: &mut Vec<u8>, wait: Wait) -> Result<()> {
        out.clear();
        if self.start < self.end {
            sys::extend_bytes(out, self.buffered());
            self.start = self.end;
            return Ok(());
        }
        if self.eof {
            return Err(self.disconnected());
        }
        out.reserve(READ_BUF);
        let n = loop {
            let n = read_waiting(&mut self.io, wait, out.spare_capacity_mut())
                .map_err(|e| self.err(e))?;
            if n > 0 {
                break n;
            }
            self.read_nothing();
            if self.eof {
                return Err(self.disconnected());
            }
        };
        // SAFETY: `out` was empty; by the `StreamIo` contract the read initialised the
        // first `n` bytes of its spare capacity.
        unsafe { out.set_len(n) };
        self.io.saw_data();
        Ok(())
    }
}

impl<S: StreamIo> Receiver for StreamReceiver<S> {
    fn recv_wait(&mut self, out: &mut Vec<u8>, wait: Wait) -> Result<()> {
        if let (Framing::Length { max }, None, None) = (self.framing, &self.broken, self.pending) {
            return self.recv_length(out, max, wait);
        }
        self.recv_other(out, wait)
    }

    fn address(&self) -> &str {
        &self.name
    }
}

impl<S: StreamIo> StreamReceiver<S> {
    /// A receive other than [`StreamReceiver::recv_length`]'s common case.
    #[inline(never)]
    fn recv_other(&mut self, out: &mut Vec<u8>, wait: Wait) -> Result<()> {
        if self.broken.is_some() && self.io.persists() {
            return self.resync(wait);
        }
        if let Some(why) = &self.broken {
            return Err(Error::new(
                ErrorKind::Corrupted,
                "recv",
                &self.name,
                format!("{why}; the stream is out of step and must be reopened"),
            ));
        }
        if let Some(len) = self.pending.take() {
            std::mem::swap(out, &mut self.partial);
            self.partial.clear();
            return self.read_exact_into(out, len, wait);
        }
        match self.framing {
            Framing::Length { max } => self.recv_length(out, max, wait),
            Framing::Fixed(n) => {
                out.clear();
                while self.start == self.end && !self.fill_at_most(wait, self.frame_read(n))? {
                    if self.eof {
                        return Err(self.disconnected());
                    }
                }
                self.read_exact_into(out, n, wait)
            }
            Framing::Lines => self.recv_line(out, wait),
            Framing::Raw => self.recv_raw(out, wait),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pipe_pair(framing: Framing) -> (StreamSender<FdStream>, StreamReceiver<FdStream>) {
        let (r, w) = crate::pipe::pipe_fds().unwrap();
        let rx = FdStream::new(FdHolder::Owned(r)).unwrap();
        let tx = FdStream::new(FdHolder::Owned(w)).unwrap();
        (
            StreamSender::new(tx, framing, "test", DEFAULT_MAX_FRAME),
            StreamReceiver::new(rx, framing, "test"),
        )
    }

    fn on_boundary<T>(s: &[T]) -> bool {
        s.as_ptr() as usize % ALIAS_SPAN == 0
    }

    #[test]
    fn page_bufs_start_on_a_4k_boundary_wherever_the_allocator_puts_them() {
        // Blocks of odd sizes in between move where the next allocation lands.
        let mut keep = Vec::new();
        for pad in [1usize, 3, 17, 100, 1000, 4095, 4097] {
            keep.push(vec![0u8; pad]);
            let b = PageBuf::new(1 << 10, 0u8);
            assert!(on_boundary(&b), "{:p} after a {pad}-byte block", b.as_ptr());
            assert_eq!(b.len(), 1 << 10);
            let u = PageBuf::new(READ_BUF, MaybeUninit::<u8>::uninit());
            assert!(on_boundary(&u) && u.len() == READ_BUF);
        }
    }

    #[test]
    fn stream_buffers_start_on_a_4k_boundary_and_keep_to_it_when_they_grow() {
        let (mut tx, mut rx) = pipe_pair(Framing::Length { max: DEFAULT_MAX_FRAME });
        assert!(on_boundary(&tx.small) && tx.small.len() == SMALL_FRAME);
        assert!(on_boundary(&rx.buf) && rx.buf.len() == READ_BUF);
        let mut out = Vec::new();
        for msg in [&b"short"[..], &[7u8; 1500][..], &[9u8; 3000][..]] {
            tx.send(msg).unwrap();
            rx.recv_into(&mut out).unwrap();
            assert_eq!(out, msg);
        }

        // A line longer than the read buffer makes it grow: still on a boundary, and the
        // bytes read before the growth are kept.
        let (mut tx, mut rx) = pipe_pair(Framing::Lines);
        let long = vec![b'x'; READ_BUF + 100];
        let writer = std::thread::spawn(move || {
            tx.send(&long).unwrap();
            tx.send(b"next").unwrap();
        });
        rx.recv_into(&mut out).unwrap();
        assert_eq!(out.len(), READ_BUF + 100);
        assert!(out.iter().all(|&b| b == b'x'));
        assert!(rx.buf.len() > READ_BUF && on_boundary(&rx.buf));
        rx.recv_into(&mut out).unwrap();
        assert_eq!(out, b"next");
        writer.join().unwrap();
    }
}
