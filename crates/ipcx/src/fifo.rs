//! Named pipes (FIFOs): unrelated processes that know a path, one way, framed by ipcx.
//!
//! A FIFO (`mkfifo(3)`) is a pipe with a name in the file system. Any process allowed by
//! its mode can open it for reading or writing; the kernel joins them.
//!
//! What ipcx adds:
//! - **Safe creation.** [`Fifo::create`] makes the FIFO with mode 0600 (or the mode asked
//!   for, exactly, whatever the umask), refuses to replace a path that exists and is not a
//!   FIFO, and never follows a symbolic link (`O_NOFOLLOW`, then `fstat` checks that what
//!   was opened is the FIFO that was looked at). The creator removes it on drop unless
//!   told to keep it, and records it in the [`crate::registry`] meanwhile, so `ipcx ls`
//!   shows who made it and `ipcx rm --stale` can clean up after a crash.
//! - **No endless waits.** Opening for writing waits for a reader, at most
//!   `OpenOptions::open_timeout`. Opening for reading never blocks; a receive waits for
//!   a writer as long as its own timeout says, re-reading after naps of 20 µs growing to
//!   10 ms (not `poll`, which would slow every later write on the pipe; a writer that
//!   opens and closes without writing between two naps goes unseen).
//! - **Whole messages with many writers.** The kernel makes a write of at most `PIPE_BUF`
//!   (4096) bytes atomic, so ipcx sends each message (frame header included) in one write
//!   and, by default, refuses larger ones with `TooLarge`: above `PIPE_BUF` two writers'
//!   messages could interleave. With a single writer, `?atomic=0` lifts the limit to the
//!   framing's maximum.
//! - **End of stream.** When the last writer closes, the reader gets `Disconnected` after
//!   the last message. `OpenOptions::persist` keeps a reader waiting for the next writer
//!   instead, with the same naps as before the first one. A message the last writer left
//!   unfinished (it died in the middle of a large one, or a foreign writer cut a frame) is
//!   not joined to the next writer's bytes: the reader drops its part and reports
//!   `ErrorKind::Incomplete`, then goes on with the next writer. (The cut shows as a
//!   moment with no writer; writers that overlap leave none, which is why several writers
//!   keep to atomic frames.)
//! - **Reads leave the access time alone.** The reader opens with `O_NOATIME` when it
//!   may (the FIFO's owner, or with `CAP_FOWNER`), as a stamp on nearly every read cost a
//!   64 B reader about a tenth of its rate; anyone else opens without it.

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::address::{Address, Target};
use crate::error::{Error, ErrorKind, Result};
use crate::frame::{FdHolder, FdStream, Framing, StreamReceiver, StreamSender, LENGTH_HEADER};
use crate::sys::{self, Errno, PIPE_BUF};
use crate::{Label, OpenOptions, Receiver, Sender, Wait};

/// A FIFO in the file system; the creator removes it on drop unless [`Fifo::keep`] is set.
#[derive(Debug)]
pub struct Fifo {
    path: PathBuf,
    remove_on_drop: bool,
    /// Our entry in the registry of created objects (`ipcx ls`), best effort.
    recorded: Option<crate::registry::Recorded>,
}

fn name_of(path: &Path) -> String {
    format!("fifo:{}", path.display())
}

fn check_existing(path: &Path, op: &'static str) -> Result<Option<sys::FileStat>> {
    match sys::lstat(path) {
        Ok(st) if st.is_fifo() => Ok(Some(st)),
        Ok(st) if st.file_type() == libc::S_IFLNK => Err(Error::new(
            ErrorKind::InvalidInput,
            op,
            name_of(path),
            "the path is a symbolic link; ipcx does not follow links to FIFOs (a link in a shared directory could redirect it); use the real path",
        )),
        Ok(st) => Err(Error::new(
            if op == "create" { ErrorKind::AlreadyExists } else { ErrorKind::InvalidInput },
            op,
            name_of(path),
            format!("the path exists and is {}, not a FIFO; ipcx will not replace or use it", st.type_name()),
        )),
        Err(Errno(libc::ENOENT)) => Ok(None),
        Err(e) => Err(Error::from_errno(op, name_of(path), e.0)),
    }
}

impl Fifo {
    /// Create a FIFO at `path` with `mode` (exactly; 0600 is ipcx's default). Fails with
    /// `AlreadyExists` if anything is at the path.
    #[doc(alias = "mkfifo")]
    pub fn create(path: impl AsRef<Path>, mode: u32) -> Result<Fifo> {
        let path = path.as_ref();
        crate::error::check_mode("create", &name_of(path), mode)?;
        check_existing(path, "create")?;
        match sys::mkfifo(path, mode) {
            Ok(()) => {
                let abs = std::path::absolute(path).unwrap_or_else(|_| path.to_owned());
                let recorded = Address::parse(&name_of(&abs))
                    .ok()
                    .and_then(|a| crate::registry::record(&a, "fifo"));
                Ok(Fifo { path: path.to_owned(), remove_on_drop: true, recorded })
            }
            Err(Errno(libc::EEXIST)) => Err(Error::new(
                ErrorKind::AlreadyExists,
                "create",
                name_of(path),
                "something was created at the path in the meantime; ipcx will not replace it",
            )),
            Err(e) => Err(crate::error::create_error("create", name_of(path), path, e.0)),
        }
    }

    /// Use the FIFO at `path`, creating it (and then owning it) if it is missing.
    pub fn open_or_create(path: impl AsRef<Path>, mode: u32) -> Result<Fifo> {
        let path = path.as_ref();
        match check_existing(path, "open")? {
            Some(_) => Ok(Fifo { path: path.to_owned(), remove_on_drop: false, recorded: None }),
            None => match Fifo::create(path, mode) {
                Err(e)
                    if e.kind() == ErrorKind::AlreadyExists
                        && check_existing(path, "open")?.is_some() =>
                {
                    Ok(Fifo { path: path.to_owned(), remove_on_drop: false, recorded: None })
                }
                other => other,
            },
        }
    }

    /// Leave the FIFO in place when this value is dropped.
    pub fn keep(&mut self) {
        self.remove_on_drop = false;
        if let Some(r) = self.recorded.as_mut() {
            r.keep();
        }
    }

    /// Whether this value removes the FIFO on drop.
    pub fn is_owner(&self) -> bool {
        self.remove_on_drop
    }

    /// The FIFO's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Fifo {
    fn drop(&mut self) {
        if self.remove_on_drop {
            // Only remove what is still a FIFO; an error here (already removed by an
            // operator, say) leaves nothing to do.
            if matches!(sys::lstat(&self.path), Ok(st) if st.is_fifo()) {
                let _ = sys::unlink(&self.path);
            }
        }
    }
}

fn open_checked(path: &Path, flags: i32, op: &'static str) -> std::result::Result<OwnedFd, Error> {
    let fd = sys::open(path, flags | libc::O_NOFOLLOW, 0).map_err(|e| match e.0 {
        libc::ELOOP => Error::new(
            ErrorKind::InvalidInput,
            op,
            name_of(path),
            "the path became a symbolic link; ipcx does not follow links to FIFOs",
        )
        .with_errno(e.0),
        libc::ENOENT => Error::new(
            ErrorKind::NotFound,
            op,
            name_of(path),
            "no FIFO at this path; create it (mkfifo, or ipcx recv --create)",
        )
        .with_errno(e.0),
        _ => Error::from_errno(op, name_of(path), e.0),
    })?;
    let st = sys::fstat(std::os::fd::AsFd::as_fd(&fd))
        .map_err(|e| Error::from_errno(op, name_of(path), e.0))?;
    if !st.is_fifo() {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            op,
            name_of(path),
            format!("the path is {}, not a FIFO", st.type_name()),
        ));
    }
    // Best effort, as for pipes: room for a 64 KiB message and its header.
    let _ = sys::set_pipe_capacity(std::os::fd::AsFd::as_fd(&fd), crate::pipe::PIPE_CAPACITY);
    Ok(fd)
}

/// The largest message a FIFO sender takes with `framing`: `PIPE_BUF` less the framing's
/// bytes when writes must be atomic, else the framing's own limit.
pub fn max_message(framing: Framing, atomic: bool) -> usize {
    if !atomic {
        return framing.max_message();
    }
    match framing {
        Framing::Length { max } => (PIPE_BUF - LENGTH_HEADER).min(max),
        Framing::Lines => PIPE_BUF - 1,
        Framing::Fixed(n) => n,
        Framing::Raw => PIPE_BUF,
    }
}

/// The writing end of a FIFO.
#[derive(Debug)]
pub struct FifoSender {
    inner: StreamSender<FdStream>,
    atomic: bool,
    _fifo: Option<Fifo>,
}

/// The reading end of a FIFO.
#[derive(Debug)]
pub struct FifoReceiver {
    inner: StreamReceiver<FdStream>,
    _fifo: Option<Fifo>,
}

fn prepare(
    addr: &Address,
    opts: &OpenOptions,
    op: &'static str,
) -> Result<(PathBuf, Option<Fifo>)> {
    let Target::Fifo(path) = addr.target() else {
        return Err(Error::new(
            ErrorKind::InvalidAddress,
            op,
            addr.to_string(),
            "not a fifo: address",
        ));
    };
    let fifo = if opts.create {
        let mut f = Fifo::open_or_create(path, addr.mode()?)?;
        if opts.keep {
            f.keep();
        }
        Some(f).filter(Fifo::is_owner)
    } else {
        if check_existing(path, op)?.is_none() {
            return Err(Error::new(
                ErrorKind::NotFound,
                op,
                addr.to_string(),
                "no FIFO at this path; create it (mkfifo, or pass --create / OpenOptions::create)",
            ));
        }
        None
    };
    Ok((path.clone(), fifo))
}

/// Open `fifo:/path` for writing. Waits for a reader, at most `opts.open_timeout`.
pub fn open_sender(addr: &Address, opts: &OpenOptions) -> Result<FifoSender> {
    let (path, fifo) = prepare(addr, opts, "open")?;
    let framing = addr.framing()?;
    let atomic = addr.param_u64("atomic")?.unwrap_or(1) != 0;
    if atomic && matches!(framing, Framing::Fixed(n) if n > PIPE_BUF) {
        return Err(Error::too_large(
            "open",
            addr.to_string(),
            PIPE_BUF as u64,
            format!("{framing} records are larger than PIPE_BUF ({PIPE_BUF}), so two writers' records could interleave; with a single writer add ?atomic=0"),
        ));
    }
    let fd = match opts.open_timeout {
        None => open_checked(&path, libc::O_WRONLY, "open")?,
        Some(t) => open_writer_within(&path, t)?,
    };
    let io = FdStream::new(FdHolder::Owned(fd))
        .map_err(|e| Error::from_errno("open", addr.to_string(), e.0))?;
    let max = max_message(framing, atomic);
    Ok(FifoSender {
        inner: StreamSender::new(io, framing, addr.to_string(), max),
        atomic,
        _fifo: fifo,
    })
}

fn open_writer_within(path: &Path, timeout: Duration) -> Result<OwnedFd> {
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(1);
    loop {
        match open_checked(path, libc::O_WRONLY | libc::O_NONBLOCK, "open") {
            Err(e) if e.errno() == Some(libc::ENXIO) => {
                let now = Instant::now();
                if now >= deadline {
                    return Err(Error::new(
                        ErrorKind::TimedOut,
                        "open",
                        name_of(path),
                        format!("no reader opened the FIFO within {timeout:?}; start the receiver first"),
                    ));
                }
                // No kernel event tells a would-be writer that a reader came, so wait in
                // growing steps (1 ms up to 20 ms): no busy loop, little added latency.
                std::thread::sleep(pause.min(deadline - now));
                pause = (pause * 2).min(Duration::from_millis(20));
            }
            other => return other,
        }
    }
}

/// Open `fifo:/path` for reading. Never blocks; a receive waits for a writer.
/// With `opts.persist` the reader outlives its writers and waits for the next one.
pub fn open_receiver(addr: &Address, opts: &OpenOptions) -> Result<FifoReceiver> {
    let (path, fifo) = prepare(addr, opts, "open")?;
    let framing = addr.framing()?;
    // O_NOATIME: otherwise nearly every read stamps the FIFO's access time (the writes
    // keep moving its modification time past it, so even `relatime` updates it). Only the
    // owner (or a holder of CAP_FOWNER) may ask; anyone else gets EPERM and opens without.
    let read_flags = libc::O_RDONLY | libc::O_NONBLOCK;
    let fd = match open_checked(&path, read_flags | libc::O_NOATIME, "open") {
        Err(e) if e.errno() == Some(libc::EPERM) => open_checked(&path, read_flags, "open")?,
        other => other?,
    };
    let io = FdStream::new(FdHolder::Owned(fd))
        .map_err(|e| Error::from_errno("open", addr.to_string(), e.0))?;
    let io = if opts.persist { io.persist() } else { io.await_first_writer() };
    Ok(FifoReceiver { inner: StreamReceiver::new(io, framing, addr.to_string()), _fifo: fifo })
}

impl FifoSender {
    /// Open with explicit settings: `framing`, at most `timeout` waiting for a reader.
    pub fn open(
        path: impl AsRef<Path>,
        framing: Framing,
        timeout: Option<Duration>,
    ) -> Result<FifoSender> {
        let addr = Address::parse(&format!("fifo:{}?framing={framing}", path.as_ref().display()))?;
        open_sender(&addr, &OpenOptions::new().open_timeout(timeout))
    }

    /// Whether messages are limited to one atomic write.
    pub fn is_atomic(&self) -> bool {
        self.atomic
    }
}

impl FifoReceiver {
    /// Open with explicit settings.
    pub fn open(path: impl AsRef<Path>, framing: Framing) -> Result<FifoReceiver> {
        let addr = Address::parse(&format!("fifo:{}?framing={framing}", path.as_ref().display()))?;
        open_receiver(&addr, &OpenOptions::new())
    }
}

impl Sender for FifoSender {
    fn send_wait(&mut self, msg: &[u8], wait: Wait) -> Result<()> {
        self.inner.send_wait(msg, wait).map_err(|e| {
            if e.kind() == ErrorKind::TooLarge && self.atomic {
                e.with_hint(format!(
                    "a write of at most PIPE_BUF ({PIPE_BUF}) bytes is atomic, so messages from several writers never interleave; with a single writer open with ?atomic=0"
                ))
            } else {
                e
            }
        })
    }
    fn max_message_size(&self) -> usize {
        self.inner.max_message_size()
    }
    fn address(&self) -> &str {
        self.inner.address()
    }
}

impl Receiver for FifoReceiver {
    fn recv_wait(&mut self, buf: &mut Vec<u8>, wait: Wait) -> Result<()> {
        self.inner.recv_wait(buf, wait)
    }
    fn address(&self) -> &str {
        self.inner.address()
    }
    fn last_label(&self) -> Option<Label> {
        None
    }
}
