//! POSIX message queues: a named kernel queue of whole messages, taken highest
//! **priority** first and in order within a priority (`mq_overview(7)`).
//!
//! ```
//! use ipcx::posix_mq::Queue;
//!
//! let name = format!("/ipcx-doc-jobs-{}", std::process::id());
//! // Unlinked when `q` is dropped, as its creator.
//! let q = Queue::builder(name).max_messages(10).message_size(1024).create()?;
//! q.send(b"routine", 0)?;
//! q.send(b"urgent", 7)?;
//! let mut buf = Vec::new();
//! assert_eq!(q.recv_into(&mut buf)?, 7);
//! assert_eq!(buf, b"urgent");
//! # Ok::<(), ipcx::Error>(())
//! ```
//!
//! - **Names** are `/name`: one leading slash, no other, at most 255 bytes (NAME_MAX).
//! - **Creation** takes `maxmsg` (messages the queue holds) and `msgsize` (largest
//!   message), both defaulting to the system's `/proc/sys/fs/mqueue/msg_default` and
//!   `msgsize_default`, and a mode (default 0600, set exactly whatever the umask). A request
//!   above `/proc/sys/fs/mqueue/msg_max` or `msgsize_max` is refused with `TooLarge`
//!   naming the limit, also for privileged callers, whom the kernel would let through:
//!   a program behaves the same whoever runs it. [`Builder::beyond_system_limits`] lets
//!   the kernel decide instead (a process with `CAP_SYS_RESOURCE` may exceed them).
//! - **Ownership**: the value that created the queue unlinks it on drop unless
//!   [`Queue::keep`] is called. An unlinked queue lives on for descriptors already open.
//! - **Waiting**: blocking, non-blocking (`Full` / `WouldBlock`) and timed, each call one
//!   `mq_timedsend` / `mq_timedreceive` (a deadline already past makes the call return at
//!   once instead of sleeping, so the descriptor's `O_NONBLOCK` flag is never toggled). A
//!   receive that may wait first makes such a call with a zero deadline up to
//!   [`sys::SPIN_TRIES`] times: a reply that comes within those few microseconds costs no
//!   sleep and wake-up. [`Queue::set_nonblocking`] sets the flag for code that polls.
//! - **poll**: on Linux the queue is a descriptor: [`Queue`] implements `AsFd`, readable
//!   when a message waits, writable when there is room.
//! - **No peers**: a queue does not know who uses it; a receiver does not learn that a
//!   sender exited. An unlinked queue stays usable by those who have it open.

use std::ffi::CString;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::Duration;

use crate::address::{Address, Target};
use crate::error::{Error, ErrorKind, Result};
use crate::sys::mq::{self as raw, MqAttr};
use crate::sys::{self, Errno};
use crate::{Label, OpenOptions, Receiver, Sender, Wait};

pub use crate::sys::mq::MqAttr as Attributes;

/// Where the largest `maxmsg` an unprivileged queue may have is set.
pub const MSG_MAX_PATH: &str = "/proc/sys/fs/mqueue/msg_max";
/// Where the largest `msgsize` is set.
pub const MSGSIZE_MAX_PATH: &str = "/proc/sys/fs/mqueue/msgsize_max";
/// Where the default `maxmsg` is set.
pub const MSG_DEFAULT_PATH: &str = "/proc/sys/fs/mqueue/msg_default";
/// Where the default `msgsize` is set.
pub const MSGSIZE_DEFAULT_PATH: &str = "/proc/sys/fs/mqueue/msgsize_default";
/// Priorities go from 0 to this, exclusive (`sysconf(_SC_MQ_PRIO_MAX)` on Linux).
pub const PRIO_MAX: u32 = 32768;

/// Which ends a queue descriptor is opened for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// `O_RDONLY`.
    Receive,
    /// `O_WRONLY`.
    Send,
    /// `O_RDWR`.
    Both,
}

/// How to make or open a queue; ends in [`Builder::create`], [`Builder::open`] or
/// [`Builder::open_or_create`].
#[derive(Clone, Debug)]
pub struct Builder {
    name: String,
    mode: u32,
    access: Access,
    max_messages: Option<u64>,
    message_size: Option<u64>,
    beyond_limits: bool,
}

/// A POSIX message queue descriptor. See the [module docs](self).
#[derive(Debug)]
pub struct Queue {
    fd: OwnedFd,
    name: String,
    object: String,
    unlink_on_drop: bool,
    message_size: usize,
    max_messages: usize,
    /// Our entry in the registry of created objects (`ipcx ls`), best effort.
    recorded: Option<crate::registry::Recorded>,
}

fn obj(name: &str) -> String {
    format!("posix-mq:{name}")
}

fn queue_error(op: &'static str, object: &str, e: Errno) -> Error {
    match e.0 {
        libc::ENOENT => Error::errno_with(ErrorKind::NotFound, op, object, e.0, "no POSIX queue has this name; create it first (--create, or Builder::create)"),
        libc::EEXIST => Error::errno_with(ErrorKind::AlreadyExists, op, object, e.0, "a POSIX queue with this name exists already; open it instead, or pick another name"),
        libc::EMFILE => Error::errno_with(ErrorKind::Other, op, object, e.0, "too many open descriptors, or this user's queues would exceed RLIMIT_MSGQUEUE (ulimit -q): close or unlink some queues"),
        libc::ENOSPC => Error::errno_with(ErrorKind::Other, op, object, e.0, "the system's limit on POSIX queues is reached (/proc/sys/fs/mqueue/queues_max); unlink unused ones"),
        libc::ENOSYS => Error::errno_with(ErrorKind::Unsupported, op, object, e.0, "this kernel has no POSIX message queues (CONFIG_POSIX_MQUEUE)"),
        _ => Error::from_errno(op, object, e.0),
    }
}

fn check_name(name: &str, op: &'static str) -> Result<CString> {
    crate::address::check_posix_name(name)
        .map_err(|why| Error::new(ErrorKind::InvalidAddress, op, obj(name), why))?;
    raw::mq_name(name).map_err(|e| queue_error(op, &obj(name), e))
}

impl Builder {
    /// A builder for the queue `name` (`/name`), mode 0600, opened for both ends.
    pub fn new(name: impl Into<String>) -> Builder {
        Builder {
            name: name.into(),
            mode: crate::address::DEFAULT_MODE,
            access: Access::Both,
            max_messages: None,
            message_size: None,
            beyond_limits: false,
        }
    }

    /// Let the kernel judge `maxmsg`/`msgsize` instead of refusing requests above
    /// `msg_max`/`msgsize_max` here: a process with `CAP_SYS_RESOURCE` may go past them
    /// (up to the kernel's hard limits); others still get `TooLarge` naming the limit.
    pub fn beyond_system_limits(mut self, yes: bool) -> Builder {
        self.beyond_limits = yes;
        self
    }

    /// The permission bits of a created queue (default 0600).
    pub fn mode(mut self, mode: u32) -> Builder {
        self.mode = mode; // checked by `create`
        self
    }

    /// Open for receiving, sending, or both (the default).
    pub fn access(mut self, access: Access) -> Builder {
        self.access = access;
        self
    }

    /// How many messages a created queue holds (`mq_maxmsg`).
    pub fn max_messages(mut self, n: u64) -> Builder {
        self.max_messages = Some(n);
        self
    }

    /// The largest message a created queue takes (`mq_msgsize`).
    pub fn message_size(mut self, n: u64) -> Builder {
        self.message_size = Some(n);
        self
    }

    fn flags(&self) -> i32 {
        match self.access {
            Access::Receive => libc::O_RDONLY,
            Access::Send => libc::O_WRONLY,
            Access::Both => libc::O_RDWR,
        }
    }

    fn attr(&self) -> Result<Option<(u64, u64)>> {
        if self.max_messages.is_none() && self.message_size.is_none() {
            return Ok(None);
        }
        let o = obj(&self.name);
        let maxmsg =
            self.max_messages.unwrap_or_else(|| raw::read_limit(MSG_DEFAULT_PATH).unwrap_or(10));
        let msgsize = self
            .message_size
            .unwrap_or_else(|| raw::read_limit(MSGSIZE_DEFAULT_PATH).unwrap_or(8192));
        for (v, what) in [(maxmsg, "maxmsg"), (msgsize, "msgsize")] {
            if v == 0 {
                return Err(Error::new(
                    ErrorKind::InvalidInput,
                    "create",
                    o,
                    format!(
                        "{what}=0: a queue must hold at least one message of at least one byte"
                    ),
                ));
            }
        }
        for (v, what, path) in
            [(maxmsg, "maxmsg", MSG_MAX_PATH), (msgsize, "msgsize", MSGSIZE_MAX_PATH)]
        {
            if let Some(limit) = raw::read_limit(path) {
                if v > limit && !self.beyond_limits {
                    return Err(Error::too_large(
                        "create",
                        o,
                        limit,
                        format!("{what}={v} is above the system's limit of {limit} ({path}); ask for less, or raise it: sysctl fs.mqueue.{}={v}", path.rsplit('/').next().unwrap_or(what)),
                    ));
                }
            }
        }
        Ok(Some((maxmsg, msgsize)))
    }

    /// Make a new queue; `AlreadyExists` if the name is taken. The value owns it.
    #[doc(alias = "mq_open")]
    pub fn create(&self) -> Result<Queue> {
        let c = check_name(&self.name, "create")?;
        let o = obj(&self.name);
        crate::error::check_mode("create", &o, self.mode)?;
        let attr = self.attr()?;
        let fd = raw::mq_open(&c, self.flags() | libc::O_CREAT | libc::O_EXCL, self.mode, attr)
            .map_err(|e| match (e.0, attr) {
                (libc::EINVAL, Some((maxmsg, msgsize))) => {
                    let over = |v: u64, path: &str| raw::read_limit(path).filter(|&l| v > l);
                    match (over(maxmsg, MSG_MAX_PATH), over(msgsize, MSGSIZE_MAX_PATH)) {
                        (Some(l), _) => Error::too_large("create", &o, l, format!("maxmsg={maxmsg} is above the system's limit of {l} ({MSG_MAX_PATH}), which only a privileged process (CAP_SYS_RESOURCE) may exceed")),
                        (_, Some(l)) => Error::too_large("create", &o, l, format!("msgsize={msgsize} is above the system's limit of {l} ({MSGSIZE_MAX_PATH}), which only a privileged process (CAP_SYS_RESOURCE) may exceed")),
                        _ => Error::new(
                            ErrorKind::InvalidInput,
                            "create",
                            &o,
                            format!("the kernel refused maxmsg={maxmsg}, msgsize={msgsize} (see {MSG_MAX_PATH} and {MSGSIZE_MAX_PATH})"),
                        ),
                    }
                    .with_errno(e.0)
                }
                (libc::EMFILE, Some((maxmsg, msgsize))) => queue_error("create", &o, e).with_hint(format!(
                    "a queue of {maxmsg} messages of {msgsize} bytes counts about {} bytes against RLIMIT_MSGQUEUE",
                    maxmsg * (msgsize + 64)
                )),
                _ => queue_error("create", &o, e),
            })?;
        let mut q = Queue::finish(fd, self.name.clone(), o.clone(), true)?;
        // Exact mode whatever the umask; a failure here leaves a queue with fewer rights
        // than asked, so report it (and unlink it, as the owner's drop does).
        raw::fchmod(q.fd.as_fd(), self.mode).map_err(|e| queue_error("create", &o, e))?;
        q.recorded = Address::parse(&o).ok().and_then(|a| crate::registry::record(&a, "posix-mq"));
        Ok(q)
    }

    /// Open an existing queue; `NotFound` if there is none. It stays on drop.
    pub fn open(&self) -> Result<Queue> {
        let c = check_name(&self.name, "open")?;
        let o = obj(&self.name);
        let fd = raw::mq_open(&c, self.flags(), 0, None).map_err(|e| queue_error("open", &o, e))?;
        let q = Queue::finish(fd, self.name.clone(), o, false)?;
        // The sizes asked for are a created queue's; an existing queue of other sizes would
        // take messages, or refuse them, against what the caller expects.
        let (has_m, has_s) = (q.max_messages() as u64, q.message_size() as u64);
        let differs = self.max_messages.is_some_and(|m| m != has_m)
            || self.message_size.is_some_and(|s| s != has_s);
        if differs {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                "open",
                &q.object,
                format!(
                    "the queue exists with maxmsg={has_m} and msgsize={has_s}, not the {} asked for; drop maxmsg=/msgsize= to use it as it is, or remove it first (ipcx rm --force {})",
                    [self.max_messages.map(|m| format!("maxmsg={m}")), self.message_size.map(|s| format!("msgsize={s}"))]
                        .into_iter()
                        .flatten()
                        .collect::<Vec<_>>()
                        .join(" and "),
                    q.object
                ),
            ));
        }
        Ok(q)
    }

    /// Open the queue, creating it (and then owning it) if it is missing.
    pub fn open_or_create(&self) -> Result<Queue> {
        for _ in 0..100 {
            match self.create() {
                Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
                other => return other,
            }
            match self.open() {
                Err(e) if e.kind() == ErrorKind::NotFound => continue,
                other => return other,
            }
        }
        Err(Error::new(
            ErrorKind::Other,
            "open",
            obj(&self.name),
            "the queue kept appearing and disappearing while opening it",
        ))
    }
}

impl Queue {
    fn finish(fd: OwnedFd, name: String, object: String, owner: bool) -> Result<Queue> {
        let mut q = Queue {
            fd,
            name,
            object,
            unlink_on_drop: owner,
            message_size: 0,
            max_messages: 0,
            recorded: None,
        };
        let a = raw::mq_getattr(q.fd.as_fd()).map_err(|e| queue_error("open", &q.object, e))?;
        q.message_size = usize::try_from(a.message_size).unwrap_or(usize::MAX);
        q.max_messages = usize::try_from(a.max_messages).unwrap_or(usize::MAX);
        Ok(q)
    }

    /// A builder for the queue `name`.
    pub fn builder(name: impl Into<String>) -> Builder {
        Builder::new(name)
    }

    /// Open the existing queue `name` for both ends.
    pub fn open(name: &str) -> Result<Queue> {
        Builder::new(name).open()
    }

    /// Make the queue `name` with the system's default sizes and mode 0600.
    pub fn create(name: &str) -> Result<Queue> {
        Builder::new(name).create()
    }

    /// Remove the name `name` (`mq_unlink`); open descriptors keep working.
    #[doc(alias = "mq_unlink")]
    pub fn unlink(name: &str) -> Result<()> {
        let c = check_name(name, "unlink")?;
        raw::mq_unlink(&c).map_err(|e| queue_error("unlink", &obj(name), e))
    }

    /// Whether a queue called `name` exists (a probe: opening it read-only).
    pub fn exists(name: &str) -> Result<bool> {
        let c = check_name(name, "open")?;
        match raw::mq_open(&c, libc::O_RDONLY, 0, None) {
            Ok(_) => Ok(true),
            Err(Errno(libc::ENOENT)) => Ok(false),
            Err(Errno(libc::EACCES)) => Ok(true),
            Err(e) => Err(queue_error("open", &obj(name), e)),
        }
    }

    /// The queue's name (`/name`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The largest message (`mq_msgsize`).
    pub fn message_size(&self) -> usize {
        self.message_size
    }

    /// How many messages the queue holds (`mq_maxmsg`).
    pub fn max_messages(&self) -> usize {
        self.max_messages
    }

    /// The queue's attributes now, including the messages waiting.
    #[doc(alias = "mq_getattr")]
    pub fn attributes(&self) -> Result<MqAttr> {
        raw::mq_getattr(self.fd.as_fd()).map_err(|e| queue_error("getattr", &self.object, e))
    }

    /// Set `O_NONBLOCK` on this descriptor (for code that `poll`s it): blocking calls then
    /// give `Full` / `WouldBlock` instead of waiting.
    #[doc(alias = "mq_setattr")]
    pub fn set_nonblocking(&self, on: bool) -> Result<()> {
        raw::mq_set_nonblocking(self.fd.as_fd(), on)
            .map_err(|e| queue_error("setattr", &self.object, e))
    }

    /// Leave the queue in place when this value is dropped.
    pub fn keep(&mut self) {
        self.unlink_on_drop = false;
        if let Some(r) = self.recorded.as_mut() {
            r.keep();
        }
    }

    /// Whether this value unlinks the queue on drop.
    pub fn is_owner(&self) -> bool {
        self.unlink_on_drop
    }

    /// Unlink the queue's name now.
    pub fn remove(mut self) -> Result<()> {
        self.unlink_on_drop = false;
        Queue::unlink(&self.name)
    }

    /// Send `msg` with priority `prio` (0 lowest, below 32768), waiting as `wait` says.
    #[doc(alias = "mq_timedsend")]
    pub fn send_wait(&self, msg: &[u8], prio: u32, wait: Wait) -> Result<()> {
        if msg.len() > self.message_size {
            return Err(Error::too_large(
                "send",
                &self.object,
                self.message_size as u64,
                format!(
                    "message of {} bytes exceeds this queue's limit of {} (its msgsize, set at creation; at most {MSGSIZE_MAX_PATH})",
                    msg.len(),
                    self.message_size
                ),
            ));
        }
        if prio >= PRIO_MAX {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                "send",
                &self.object,
                format!("priority {prio}: POSIX queue priorities go from 0 to {}", PRIO_MAX - 1),
            ));
        }
        let fd = self.fd.as_fd();
        let r = loop {
            let ts = raw::realtime_deadline(wait.deadline());
            match raw::mq_send(fd, msg, prio, ts.as_ref()) {
                Err(Errno(libc::EINTR)) => continue,
                other => break other,
            }
        };
        r.map_err(|e| match (e.0, wait) {
            (libc::EAGAIN, _) | (libc::ETIMEDOUT, Wait::Never) => Error::new(
                ErrorKind::Full,
                "send",
                &self.object,
                format!(
                    "the queue holds its maximum of {} messages; a receiver must take some first",
                    self.max_messages
                ),
            )
            .with_errno(e.0),
            (libc::ETIMEDOUT, _) => Error::new(
                ErrorKind::TimedOut,
                "send",
                &self.object,
                "the queue stayed full until the deadline: no receiver took a message in time; start one, or give the send a longer time-out",
            ),
            (libc::EBADF, _) => Error::new(
                ErrorKind::PermissionDenied,
                "send",
                &self.object,
                "this descriptor was not opened for sending",
            ),
            _ => queue_error("send", &self.object, e),
        })
    }

    /// Send, blocking while the queue is full.
    pub fn send(&self, msg: &[u8], prio: u32) -> Result<()> {
        self.send_wait(msg, prio, Wait::Forever)
    }

    /// Send only if there is room now; `Full` otherwise.
    pub fn try_send(&self, msg: &[u8], prio: u32) -> Result<()> {
        self.send_wait(msg, prio, Wait::Never)
    }

    /// Send, waiting at most `timeout` for room; `TimedOut` otherwise.
    pub fn send_timeout(&self, msg: &[u8], prio: u32, timeout: Duration) -> Result<()> {
        self.send_wait(msg, prio, Wait::timeout(timeout))
    }

    /// Receive the oldest message of the highest priority into `buf` (cleared; room for
    /// the queue's message size is reserved, so a loop reusing `buf` does not allocate);
    /// returns its priority.
    #[doc(alias = "mq_timedreceive")]
    pub fn recv_wait(&self, buf: &mut Vec<u8>, wait: Wait) -> Result<u32> {
        buf.clear();
        buf.reserve(self.message_size);
        let fd = self.fd.as_fd();
        if wait != Wait::Never {
            // Try without waiting a few times (`sys::spin_tries`; a zero deadline returns
            // at once) before sleeping: a reply that comes within the spin costs no sleep
            // and wake-up, most of a blocking round trip on a virtual machine.
            const NOW: libc::timespec = libc::timespec { tv_sec: 0, tv_nsec: 0 };
            let spun = sys::spin_tries(|| match raw::mq_receive(fd, buf, Some(&NOW)) {
                Err(Errno(libc::ETIMEDOUT)) => Err(Errno(libc::EAGAIN)),
                other => other,
            });
            if let Some(Ok(prio)) = spun {
                return Ok(prio);
            }
        }
        let r = loop {
            let ts = raw::realtime_deadline(wait.deadline());
            match raw::mq_receive(fd, buf, ts.as_ref()) {
                Err(Errno(libc::EINTR)) => continue,
                other => break other,
            }
        };
        r.map_err(|e| match (e.0, wait) {
            (libc::EAGAIN, _) | (libc::ETIMEDOUT, Wait::Never) => {
                Error::new(ErrorKind::WouldBlock, "recv", &self.object, "no message is waiting")
                    .with_errno(e.0)
            }
            (libc::ETIMEDOUT, _) => Error::new(
                ErrorKind::TimedOut,
                "recv",
                &self.object,
                "no message came before the deadline",
            ),
            (libc::EBADF, _) => Error::new(
                ErrorKind::PermissionDenied,
                "recv",
                &self.object,
                "this descriptor was not opened for receiving",
            ),
            _ => queue_error("recv", &self.object, e),
        })
    }

    /// Receive, blocking; returns the priority.
    pub fn recv_into(&self, buf: &mut Vec<u8>) -> Result<u32> {
        self.recv_wait(buf, Wait::Forever)
    }

    /// Receive only if a message is waiting; `WouldBlock` otherwise.
    pub fn try_recv_into(&self, buf: &mut Vec<u8>) -> Result<u32> {
        self.recv_wait(buf, Wait::Never)
    }

    /// Receive, waiting at most `timeout`; `TimedOut` otherwise.
    pub fn recv_timeout_into(&self, buf: &mut Vec<u8>, timeout: Duration) -> Result<u32> {
        self.recv_wait(buf, Wait::timeout(timeout))
    }

    /// Receive a message and its priority, blocking.
    pub fn recv(&self) -> Result<(Vec<u8>, u32)> {
        let mut buf = Vec::new();
        let p = self.recv_into(&mut buf)?;
        Ok((buf, p))
    }
}

impl AsFd for Queue {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl Drop for Queue {
    fn drop(&mut self) {
        if self.unlink_on_drop {
            // Already unlinked (by another process, say) is fine: nothing to do.
            if let Ok(c) = raw::mq_name(&self.name) {
                let _ = raw::mq_unlink(&c);
            }
        }
    }
}

/// The sending end of a `posix-mq:` address: every message with one priority (`?prio=N`).
#[derive(Debug)]
pub struct PosixSender {
    queue: Queue,
    prio: u32,
    address: String,
}

/// The receiving end of a `posix-mq:` address.
#[derive(Debug)]
pub struct PosixReceiver {
    queue: Queue,
    last: Option<u32>,
    address: String,
}

fn open_queue(addr: &Address, opts: &OpenOptions, access: Access) -> Result<Queue> {
    let Target::PosixMq(name) = addr.target() else {
        return Err(Error::new(
            ErrorKind::InvalidAddress,
            "open",
            addr.to_string(),
            "not a posix-mq: address",
        ));
    };
    let mut b = Builder::new(name.clone()).mode(addr.mode()?).access(access);
    if let Some(n) = addr.param_u64("maxmsg")? {
        b = b.max_messages(n);
    }
    if let Some(n) = addr.param_bytes("msgsize")? {
        b = b.message_size(n);
    }
    let mut q = if opts.create { b.open_or_create()? } else { b.open()? };
    if opts.keep {
        q.keep();
    }
    q.object = addr.to_string();
    Ok(q)
}

/// Open `posix-mq:/name[?prio=N]` for sending with priority N (default 0).
pub fn open_sender(addr: &Address, opts: &OpenOptions) -> Result<PosixSender> {
    let prio = match addr.param_u64("prio")? {
        None => 0,
        Some(p) if p < u64::from(PRIO_MAX) => p as u32,
        Some(p) => {
            return Err(Error::address(
                &addr.to_string(),
                format!("prio={p}: POSIX queue priorities go from 0 to {}", PRIO_MAX - 1),
            ))
        }
    };
    let queue = open_queue(addr, opts, Access::Send)?;
    Ok(PosixSender { queue, prio, address: addr.to_string() })
}

/// Open `posix-mq:/name` for receiving (highest priority first).
pub fn open_receiver(addr: &Address, opts: &OpenOptions) -> Result<PosixReceiver> {
    let queue = open_queue(addr, opts, Access::Receive)?;
    Ok(PosixReceiver { queue, last: None, address: addr.to_string() })
}

impl PosixSender {
    /// The queue.
    pub fn queue(&self) -> &Queue {
        &self.queue
    }
}

impl PosixReceiver {
    /// The queue.
    pub fn queue(&self) -> &Queue {
        &self.queue
    }
}

impl Sender for PosixSender {
    fn send_wait(&mut self, msg: &[u8], wait: Wait) -> Result<()> {
        self.queue.send_wait(msg, self.prio, wait)
    }
    fn max_message_size(&self) -> usize {
        self.queue.message_size
    }
    fn address(&self) -> &str {
        &self.address
    }
}

impl Receiver for PosixReceiver {
    fn recv_wait(&mut self, buf: &mut Vec<u8>, wait: Wait) -> Result<()> {
        self.last = Some(self.queue.recv_wait(buf, wait)?);
        Ok(())
    }
    fn address(&self) -> &str {
        &self.address
    }
    fn last_label(&self) -> Option<Label> {
        self.last.map(Label::Priority)
    }
}
