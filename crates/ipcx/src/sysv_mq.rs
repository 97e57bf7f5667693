//! System V message queues: a kernel queue of whole messages, each with a **type** that
//! receivers select on (`msgget(2)`, `msgsnd(2)`, `msgrcv(2)`, `msgctl(2)`).
//!
//! ```
//! use ipcx::sysv_mq::{Queue, Selector};
//!
//! // By key: Queue::builder(SysvKey::Key(0x4d2)).mode(0o600).open_or_create()?;
//! // here a private queue, removed when `q` is dropped.
//! let mut q = Queue::private(0o600)?;
//! q.send(1, b"routine")?;
//! q.send(3, b"a type-3 message")?;
//! let mut buf = Vec::new();
//! let mtype = q.recv_into(Selector::Type(3), &mut buf)?;
//! assert_eq!((mtype, &buf[..]), (3, &b"a type-3 message"[..]));
//! assert_eq!(q.try_recv_into(Selector::Except(1), &mut buf).unwrap_err().kind(),
//!            ipcx::ErrorKind::WouldBlock);
//! assert_eq!(q.status()?.messages, 1);
//! # Ok::<(), ipcx::Error>(())
//! ```
//!
//! - **Keys**: a number (`sysv-mq:1234`, `sysv-mq:0x4d2`) or `ftok(path, proj)`
//!   (`sysv-mq:/path?proj=65`). Key 0 is `IPC_PRIVATE`: [`Queue::private`] makes such a
//!   queue (for a parent and its children, by id); it can never be *opened* by key.
//! - **Ownership**: a [`Queue`] owns its id. The value that created the queue removes it
//!   (`IPC_RMID`) on drop unless [`Queue::keep`] is called; others leave it in place.
//! - **Types and selectors**: every message has a type > 0. A receive takes a
//!   [`Selector`]: any message, the first of one type, the first of the lowest type
//!   `<= N`, or the first of any type except N (`MSG_EXCEPT`). The type received is
//!   returned.
//! - **Waiting**: blocking, non-blocking (`IPC_NOWAIT`, giving `Full` / `WouldBlock`) and
//!   timed. A receive that may wait first tries `IPC_NOWAIT` up to
//!   [`sys::SPIN_TRIES`] times: a reply that comes within those
//!   few microseconds costs no sleep and wake-up. System V has no timed call, so ipcx
//!   makes one that does not poll: the calling
//!   thread's own POSIX timer (`timer_create`, `SIGEV_THREAD_ID`) sends it a real-time
//!   signal (`SIGRTMIN+5`, whose handler does nothing and is installed without
//!   `SA_RESTART`) at the deadline, which interrupts the blocked `msgsnd`/`msgrcv` with
//!   `EINTR`. The timer re-fires every millisecond after the deadline until disarmed, so a
//!   signal that lands just before the call starts cannot leave it sleeping. Cost: nothing
//!   while waiting; two `timer_settime` calls per wait that really sleeps; a message that is
//!   already there (or coming within the spin) is taken with no timer at all. If the program
//!   has its own handler for that signal, ipcx leaves it alone and polls with `IPC_NOWAIT`
//!   in sleeps growing from 50 µs to 5 ms instead.
//! - **Removal**: a queue removed while a process waits on it wakes the waiter with
//!   `EIDRM`: ipcx reports [`ErrorKind::Disconnected`] saying the queue was removed.
//! - **No peers**: a queue does not know who uses it; a receiver does not learn that a
//!   sender exited (it waits for the next sender instead, as a mailbox does), and a sender
//!   can fill the queue with nobody reading. Only removal ends a queue.
//! - **Limits**: a message over `/proc/sys/kernel/msgmax` (or over the queue's byte limit,
//!   `msg_qbytes`, which starts at `/proc/sys/kernel/msgmnb`) is refused with `TooLarge`
//!   naming the limit; a full queue blocks, or gives `Full` without waiting. A value given a
//!   largest message ([`Builder::max_message`], `?max=N`) holds to it on both sides: it
//!   sends nothing longer, and a receive that meets a longer message gives `TooLarge` and
//!   leaves the message in the queue (`msgrcv` without `MSG_NOERROR` fails with `E2BIG`
//!   and takes nothing), for a receiver with a larger limit.
//! - **C interoperation**: a message is exactly C's `struct { long mtype; char mtext[]; }`:
//!   the payload is the bytes after the `long`, byte for byte, so a C struct sent with
//!   `msgsnd(id, &s, sizeof s - sizeof(long), 0)` arrives as `sizeof s - sizeof(long)` bytes
//!   laid out as the C compiler laid them out (padding included).

use crate::address::{Address, SysvKey, Target};
use crate::error::{Error, ErrorKind, Result};
use crate::sys::mq::{self as raw, MsgBuf};
use crate::sys::{self, Errno};
use crate::{Label, OpenOptions, Receiver, Sender, Wait};

pub use crate::sys::mq::MsgStat as Status;

/// Where the system's largest System V message is set.
pub const MSGMAX_PATH: &str = "/proc/sys/kernel/msgmax";
/// Where the default byte limit of a new System V queue is set.
pub const MSGMNB_PATH: &str = "/proc/sys/kernel/msgmnb";

/// Which message a receive takes (`msgrcv`'s `msgtyp` and `MSG_EXCEPT`).
///
/// In addresses (`sysv-mq:KEY?type=...` on a receiver): `0` is [`Selector::Any`], `N` is
/// [`Selector::Type`], `-N` is [`Selector::AtMost`], `!N` is [`Selector::Except`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Selector {
    /// The first message in the queue (`msgtyp` 0).
    #[default]
    Any,
    /// The first message of type N (`msgtyp` N > 0).
    Type(i64),
    /// The first message of the lowest type `<= N` (`msgtyp` -N).
    AtMost(i64),
    /// The first message whose type is not N (`msgtyp` N with `MSG_EXCEPT`).
    Except(i64),
}

impl Selector {
    /// Parse `0`, `N`, `-N` or `!N`.
    pub fn parse(s: &str) -> Option<Selector> {
        let num = |t: &str| t.parse::<i64>().ok().filter(|&n| n > 0);
        if s == "0" {
            Some(Selector::Any)
        } else if let Some(n) = s.strip_prefix('!') {
            num(n).map(Selector::Except)
        } else if let Some(n) = s.strip_prefix('-') {
            num(n).map(Selector::AtMost)
        } else {
            num(s).map(Selector::Type)
        }
    }

    /// The `msgtyp` and flags `msgrcv` takes for this selector.
    pub fn to_raw(self) -> (i64, i32) {
        match self {
            Selector::Any => (0, 0),
            Selector::Type(n) => (n, 0),
            Selector::AtMost(n) => (-n, 0),
            Selector::Except(n) => (n, libc::MSG_EXCEPT),
        }
    }

    fn check(self, object: &str) -> Result<()> {
        match self {
            Selector::Type(n) | Selector::AtMost(n) | Selector::Except(n) if n <= 0 => {
                Err(Error::new(
                    ErrorKind::InvalidInput,
                    "recv",
                    object,
                    format!("selector {self:?}: the type in a selector must be > 0"),
                ))
            }
            _ => Ok(()),
        }
    }
}

/// How to make or open a queue; ends in [`Builder::create`], [`Builder::open`] or
/// [`Builder::open_or_create`].
#[derive(Clone, Debug)]
pub struct Builder {
    key: SysvKey,
    mode: u32,
    access: u32,
    byte_limit: Option<u64>,
    max_message: Option<usize>,
}

/// A System V message queue, owned by its id. See the [module docs](self).
#[derive(Debug)]
pub struct Queue {
    id: i32,
    name: String,
    remove_on_drop: bool,
    max_message: usize,
    limit_note: String,
    /// Its receive limit is the largest message asked for (`max=`,
    /// [`Builder::max_message`]): a receive refuses a longer one, leaving it in the queue.
    buf: MsgBuf,
    /// Our entry in the registry of created objects (`ipcx ls`), best effort.
    recorded: Option<crate::registry::Recorded>,
}

fn key_name(key: &SysvKey) -> String {
    match key {
        SysvKey::Key(k) => format!("sysv-mq:{:#x}", *k as u32),
        SysvKey::Ftok(p, proj) => format!("sysv-mq:{}?proj={proj}", p.display()),
    }
}

fn resolve(key: &SysvKey, name: &str, op: &'static str) -> Result<i32> {
    match key {
        SysvKey::Key(0) => Err(Error::new(
            ErrorKind::InvalidInput,
            op,
            name,
            "key 0 is IPC_PRIVATE: every msgget with it makes a new queue that no other process can find by key; pick another key, or use Queue::private() and pass the id",
        )),
        SysvKey::Key(k) => Ok(*k),
        SysvKey::Ftok(path, proj) => raw::ftok(path, *proj).map_err(|e| {
            let why = match e.0 {
                libc::ENOENT => format!(
                    "ftok needs an existing file, and {} does not exist; create it or use a numeric key",
                    path.display()
                ),
                libc::EACCES => format!("ftok cannot look at {} (permission denied)", path.display()),
                _ => format!("ftok({}, {proj}) failed: {}", path.display(), Error::from_errno(op, name, e.0).detail()),
            };
            Error::new(crate::error::kind_of_errno(e.0), op, name, why).with_errno(e.0)
        }),
    }
}

fn queue_error(op: &'static str, name: &str, e: Errno) -> Error {
    match e.0 {
        libc::EIDRM => Error::errno_with(ErrorKind::Disconnected, op, name, e.0, "the queue was removed (msgctl IPC_RMID) while this call used it; no more messages will come"),
        libc::ENOENT => Error::errno_with(ErrorKind::NotFound, op, name, e.0, "no System V queue has this key; create it first (--create, or Builder::create)"),
        libc::EEXIST => Error::errno_with(ErrorKind::AlreadyExists, op, name, e.0, "a System V queue with this key exists already; open it instead, or pick another key"),
        libc::ENOSPC => Error::errno_with(ErrorKind::Other, op, name, e.0, "the system's limit on System V queues is reached (/proc/sys/kernel/msgmni); remove unused ones (ipcs -q, ipcrm)"),
        libc::EACCES => Error::from_errno(op, name, e.0)
            .with_hint("a System V queue's mode is set by its creator (ipcs -q shows it)"),
        _ => Error::from_errno(op, name, e.0),
    }
}

impl Builder {
    /// A builder for the queue with `key`, mode 0600.
    pub fn new(key: SysvKey) -> Builder {
        Builder {
            key,
            mode: crate::address::DEFAULT_MODE,
            access: 0o600,
            byte_limit: None,
            max_message: None,
        }
    }

    /// The permission bits of a created queue (default 0600).
    pub fn mode(mut self, mode: u32) -> Builder {
        self.mode = mode; // checked by `create`
        self
    }

    /// Set the byte limit (`msg_qbytes`) of a created queue; above
    /// `/proc/sys/kernel/msgmnb` this needs `CAP_SYS_RESOURCE`.
    pub fn byte_limit(mut self, bytes: u64) -> Builder {
        self.byte_limit = Some(bytes);
        self
    }

    /// Send and receive messages of at most this many bytes (`?max=N`; the system's limit
    /// applies too). A receive that meets a longer message gives `TooLarge` and leaves it
    /// in the queue for a receiver with a larger limit.
    pub fn max_message(mut self, bytes: usize) -> Builder {
        self.max_message = Some(bytes);
        self
    }

    /// Which permissions opening checks: 0o200 (send), 0o400 (receive), 0o600 (both,
    /// the default).
    pub fn access(mut self, bits: u32) -> Builder {
        self.access = bits & 0o600;
        self
    }

    /// Make a new queue; `AlreadyExists` if the key is taken. The value owns the queue.
    #[doc(alias = "msgget")]
    pub fn create(&self) -> Result<Queue> {
        let name = key_name(&self.key);
        crate::error::check_mode("create", &name, self.mode)?;
        let key = resolve(&self.key, &name, "create")?;
        let id = raw::msgget(key, libc::IPC_CREAT | libc::IPC_EXCL | self.mode as i32)
            .map_err(|e| queue_error("create", &name, e))?;
        self.finish(id, name, true)
    }

    /// Open an existing queue; `NotFound` if there is none. The queue stays on drop.
    pub fn open(&self) -> Result<Queue> {
        let name = key_name(&self.key);
        let key = resolve(&self.key, &name, "open")?;
        let id = raw::msgget(key, self.access as i32).map_err(|e| queue_error("open", &name, e))?;
        self.finish(id, name, false)
    }

    /// Open the queue, creating it (and then owning it) if it is missing.
    pub fn open_or_create(&self) -> Result<Queue> {
        for _ in 0..100 {
            match self.create() {
                Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
                other => return other,
            }
            match self.open() {
                Err(e) if e.kind() == ErrorKind::NotFound => continue, // removed meanwhile
                other => return other,
            }
        }
        Err(Error::new(
            ErrorKind::Other,
            "open",
            key_name(&self.key),
            "the queue kept appearing and disappearing while opening it",
        ))
    }

    fn finish(&self, id: i32, name: String, owner: bool) -> Result<Queue> {
        let mut q = Queue {
            id,
            name,
            remove_on_drop: owner,
            max_message: 0,
            limit_note: String::new(),
            buf: MsgBuf::default(),
            recorded: None,
        };
        // Exactly max= bytes at most (the buffer's room is counted in whole words).
        q.buf.limit_receive(self.max_message);
        if owner {
            if let Some(b) = self.byte_limit {
                raw::msg_set_byte_limit(id, b).map_err(|e| {
                    let mut err = queue_error("create", &q.name, e);
                    if e.0 == libc::EPERM {
                        err = Error::too_large(
                            "create",
                            &q.name,
                            raw::read_limit(MSGMNB_PATH).unwrap_or(0),
                            format!("a byte limit of {b} is above {MSGMNB_PATH}, which only a privileged process (CAP_SYS_RESOURCE) may exceed"),
                        );
                    }
                    err
                })?;
            }
        }
        q.compute_limit();
        if owner {
            q.recorded =
                Address::parse(&q.name).ok().and_then(|a| crate::registry::record(&a, "sysv-mq"));
        }
        Ok(q)
    }
}

impl Queue {
    /// A builder for the queue with `key`.
    pub fn builder(key: SysvKey) -> Builder {
        Builder::new(key)
    }

    /// Make a new queue with `key` and `mode`; the value owns it.
    pub fn create(key: SysvKey, mode: u32) -> Result<Queue> {
        Builder::new(key).mode(mode).create()
    }

    /// Open the existing queue with `key`.
    pub fn open(key: SysvKey) -> Result<Queue> {
        Builder::new(key).open()
    }

    /// Open the queue with `key`, creating it with `mode` if it is missing.
    pub fn open_or_create(key: SysvKey, mode: u32) -> Result<Queue> {
        Builder::new(key).mode(mode).open_or_create()
    }

    /// A new queue without a key (`IPC_PRIVATE`), reachable only by its [`Queue::id`]
    /// (children inherit nothing: pass the id). The value owns it.
    pub fn private(mode: u32) -> Result<Queue> {
        crate::error::check_mode("create", "sysv-mq:IPC_PRIVATE", mode)?;
        let id = raw::msgget(libc::IPC_PRIVATE, libc::IPC_CREAT | mode as i32)
            .map_err(|e| queue_error("create", "sysv-mq:IPC_PRIVATE", e))?;
        let mut q = Queue {
            id,
            name: format!("sysv-mq:id={id}"),
            remove_on_drop: true,
            max_message: 0,
            limit_note: String::new(),
            buf: MsgBuf::default(),
            recorded: None,
        };
        q.compute_limit();
        Ok(q)
    }

    /// Use the queue with this id (from `ipcs -q` or another process); not owned.
    pub fn from_id(id: i32) -> Result<Queue> {
        let name = format!("sysv-mq:id={id}");
        raw::msg_stat(id).map_err(|e| queue_error("open", &name, e))?;
        let mut q = Queue {
            id,
            name,
            remove_on_drop: false,
            max_message: 0,
            limit_note: String::new(),
            buf: MsgBuf::default(),
            recorded: None,
        };
        q.compute_limit();
        Ok(q)
    }

    fn compute_limit(&mut self) {
        let msgmax = raw::read_limit(MSGMAX_PATH).unwrap_or(8192) as usize;
        let qbytes = raw::msg_stat(self.id).map(|s| s.byte_limit as usize).ok();
        let (mut max, mut note) = (msgmax, format!("the system's limit {MSGMAX_PATH}"));
        if let Some(q) = qbytes.filter(|&q| q < max) {
            (max, note) =
                (q, format!("this queue's byte limit (msg_qbytes, default {MSGMNB_PATH})"));
        }
        if let Some(w) = self.buf.receive_limit().filter(|&w| w < max) {
            (max, note) = (w, "the limit set by max= on the address".to_owned());
        }
        self.max_message = max;
        self.limit_note = note;
        self.buf.reserve(max);
    }

    /// The queue's id (`ipcs -q` shows it).
    pub fn id(&self) -> i32 {
        self.id
    }

    /// The queue's name as an address, for messages.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The largest message this value sends (`msgmax`, or less: see the module docs); with
    /// [`Builder::max_message`], also the largest it receives.
    pub fn max_message_size(&self) -> usize {
        self.max_message
    }

    /// Leave the queue in place when this value is dropped.
    pub fn keep(&mut self) {
        self.remove_on_drop = false;
        if let Some(r) = self.recorded.as_mut() {
            r.keep();
        }
    }

    /// Whether this value removes the queue on drop.
    pub fn is_owner(&self) -> bool {
        self.remove_on_drop
    }

    /// Remove the queue now (`IPC_RMID`): waiting senders and receivers get
    /// `Disconnected`, waiting messages are lost.
    #[doc(alias = "IPC_RMID")]
    pub fn remove(mut self) -> Result<()> {
        self.remove_on_drop = false;
        raw::msg_remove(self.id).map_err(|e| queue_error("remove", &self.name, e))
    }

    /// Messages waiting, bytes used, byte limit, last sender and receiver (`IPC_STAT`).
    #[doc(alias = "IPC_STAT")]
    pub fn status(&self) -> Result<Status> {
        raw::msg_stat(self.id).map_err(|e| self.io_error("status", e))
    }

    /// Change the byte limit (`msg_qbytes`; above `msgmnb` needs `CAP_SYS_RESOURCE`).
    #[doc(alias = "IPC_SET")]
    pub fn set_byte_limit(&mut self, bytes: u64) -> Result<()> {
        raw::msg_set_byte_limit(self.id, bytes).map_err(|e| self.io_error("set byte limit", e))?;
        self.compute_limit();
        Ok(())
    }

    fn io_error(&self, op: &'static str, e: Errno) -> Error {
        // A removed queue's id gives EINVAL (or EIDRM while a call waited on it).
        if e.0 == libc::EINVAL && raw::msg_stat(self.id).is_err_and(|s| s.0 == libc::EINVAL) {
            return queue_error(op, &self.name, Errno(libc::EIDRM));
        }
        queue_error(op, &self.name, e)
    }

    /// Send a message of type `mtype` (> 0), waiting as `wait` says (`Full` when
    /// `Wait::Never` finds the queue full).
    #[doc(alias = "msgsnd")]
    pub fn send_wait(&mut self, mtype: i64, msg: &[u8], wait: Wait) -> Result<()> {
        if mtype <= 0 {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                "send",
                &self.name,
                format!("message type {mtype}: System V message types must be > 0"),
            ));
        }
        if msg.len() > self.max_message {
            return Err(Error::too_large(
                "send",
                &self.name,
                self.max_message as u64,
                format!(
                    "message of {} bytes exceeds this queue's limit of {} ({})",
                    msg.len(),
                    self.max_message,
                    self.limit_note
                ),
            ));
        }
        self.buf.fill(mtype, msg);
        let (id, len, buf) = (self.id, msg.len(), &self.buf);
        let r = match wait {
            Wait::Never => raw::msgsnd(id, buf, len, libc::IPC_NOWAIT),
            Wait::Forever => {
                raw::with_deadline(None, || raw::msgsnd(id, buf, len, 0), unreachable_poll)
            }
            Wait::Until(d) => match raw::msgsnd(id, buf, len, libc::IPC_NOWAIT) {
                Err(Errno(libc::EAGAIN)) => raw::with_deadline(
                    Some(d),
                    || raw::msgsnd(id, buf, len, 0),
                    || raw::msgsnd(id, buf, len, libc::IPC_NOWAIT),
                ),
                other => other,
            },
        };
        r.map_err(|e| match e.0 {
            libc::EAGAIN => Error::new(
                ErrorKind::Full,
                "send",
                &self.name,
                "the queue is full (its byte limit msg_qbytes, or as many messages as bytes); a receiver must take messages first",
            )
            .with_errno(e.0),
            libc::ETIMEDOUT => Error::new(
                ErrorKind::TimedOut,
                "send",
                &self.name,
                "the queue stayed full until the deadline: no receiver took a message in time; start one, or give the send a longer time-out",
            ),
            _ => self.io_error("send", e),
        })
    }

    /// Send, blocking while the queue is full.
    pub fn send(&mut self, mtype: i64, msg: &[u8]) -> Result<()> {
        self.send_wait(mtype, msg, Wait::Forever)
    }

    /// Send only if there is room now (`IPC_NOWAIT`); `Full` otherwise.
    pub fn try_send(&mut self, mtype: i64, msg: &[u8]) -> Result<()> {
        self.send_wait(mtype, msg, Wait::Never)
    }

    /// Send, waiting at most `timeout` for room; `TimedOut` otherwise.
    pub fn send_timeout(
        &mut self,
        mtype: i64,
        msg: &[u8],
        timeout: std::time::Duration,
    ) -> Result<()> {
        self.send_wait(mtype, msg, Wait::timeout(timeout))
    }

    /// Receive the first message `sel` selects into `buf` (cleared first), waiting as
    /// `wait` says; returns its type.
    #[doc(alias = "msgrcv")]
    pub fn recv_wait(&mut self, sel: Selector, buf: &mut Vec<u8>, wait: Wait) -> Result<i64> {
        sel.check(&self.name)?;
        let (msgtyp, flags) = sel.to_raw();
        let id = self.id;
        loop {
            let b = &mut self.buf;
            // A wait first tries without waiting a few times (`sys::spin_tries`): a reply
            // that comes within the spin costs no sleep and wake-up, most of a blocking
            // round trip on a virtual machine.
            let spin = |b: &mut MsgBuf| {
                sys::spin_tries(|| match raw::msgrcv(id, b, msgtyp, flags | libc::IPC_NOWAIT) {
                    // (EINTR cannot come from a call that does not wait; were it to, the
                    // spin goes on.)
                    Err(Errno(libc::ENOMSG | libc::EINTR)) => Err(Errno(libc::EAGAIN)),
                    other => other,
                })
                .unwrap_or(Err(Errno(libc::ENOMSG)))
            };
            let r = match wait {
                Wait::Never => raw::msgrcv(id, b, msgtyp, flags | libc::IPC_NOWAIT),
                Wait::Forever => match spin(b) {
                    Err(Errno(libc::ENOMSG)) => loop {
                        match raw::msgrcv(id, b, msgtyp, flags) {
                            Err(Errno(libc::EINTR)) => continue,
                            other => break other,
                        }
                    },
                    other => other,
                },
                Wait::Until(d) => match spin(b) {
                    Err(Errno(libc::ENOMSG)) => {
                        let cell = std::cell::RefCell::new(b);
                        raw::with_deadline(
                            Some(d),
                            || raw::msgrcv(id, &mut cell.borrow_mut(), msgtyp, flags),
                            || {
                                raw::msgrcv(
                                    id,
                                    &mut cell.borrow_mut(),
                                    msgtyp,
                                    flags | libc::IPC_NOWAIT,
                                )
                            },
                        )
                    }
                    other => other,
                },
            };
            match r {
                Ok(n) => {
                    buf.clear();
                    sys::extend_bytes(buf, self.buf.payload(n));
                    return Ok(self.buf.mtype());
                }
                Err(Errno(libc::E2BIG)) => {
                    // The selected message is longer than the buffer, and stays in the queue
                    // (no MSG_NOERROR). Longer than the max= asked for: refuse it. Else
                    // msgmax was raised after this queue was opened: grow (never past the
                    // max= asked for) and retry.
                    let cap = self.buf.capacity();
                    if let Some(limit) = self.buf.receive_limit().filter(|&l| cap >= l) {
                        return Err(self.too_long_to_receive(sel, limit));
                    }
                    let now = raw::read_limit(MSGMAX_PATH).unwrap_or(0) as usize;
                    let mut grow = now.max(cap.saturating_mul(2)).max(cap.saturating_add(1));
                    if let Some(limit) = self.buf.receive_limit() {
                        grow = grow.min(limit);
                    }
                    self.buf.reserve(grow);
                }
                Err(Errno(libc::ENOMSG)) => {
                    return Err(Error::new(
                        ErrorKind::WouldBlock,
                        "recv",
                        &self.name,
                        format!("no message selected by {sel:?} is waiting"),
                    ))
                }
                Err(Errno(libc::ETIMEDOUT)) => {
                    return Err(Error::new(
                        ErrorKind::TimedOut,
                        "recv",
                        &self.name,
                        format!("no message selected by {sel:?} came before the deadline"),
                    ))
                }
                Err(e) => return Err(self.io_error("recv", e)),
            }
        }
    }

    /// The error of a receive that met a message longer than `limit` (left in the queue).
    fn too_long_to_receive(&self, sel: Selector, limit: usize) -> Error {
        let msgmax = raw::read_limit(MSGMAX_PATH)
            .map_or_else(|| "the system's limit".to_owned(), |m| format!("{m} bytes"));
        Error::too_large(
            "recv",
            &self.name,
            limit as u64,
            format!(
                "the next message selected by {sel:?} is longer than this receiver's limit of {limit} bytes (max= on the address, or Builder::max_message); System V does not tell its exact size. It is left in the queue, where it stays first for this selector: receive it with a larger max= (at most {MSGMAX_PATH}, now {msgmax})"
            ),
        )
    }

    /// Receive, blocking until a selected message comes; returns its type.
    pub fn recv_into(&mut self, sel: Selector, buf: &mut Vec<u8>) -> Result<i64> {
        self.recv_wait(sel, buf, Wait::Forever)
    }

    /// Receive only if a selected message is waiting; `WouldBlock` otherwise.
    pub fn try_recv_into(&mut self, sel: Selector, buf: &mut Vec<u8>) -> Result<i64> {
        self.recv_wait(sel, buf, Wait::Never)
    }

    /// Receive, waiting at most `timeout`; `TimedOut` otherwise.
    pub fn recv_timeout_into(
        &mut self,
        sel: Selector,
        buf: &mut Vec<u8>,
        timeout: std::time::Duration,
    ) -> Result<i64> {
        self.recv_wait(sel, buf, Wait::timeout(timeout))
    }

    /// Receive a message and its type, blocking.
    pub fn recv(&mut self, sel: Selector) -> Result<(i64, Vec<u8>)> {
        let mut buf = Vec::new();
        let t = self.recv_into(sel, &mut buf)?;
        Ok((t, buf))
    }
}

fn unreachable_poll<T>() -> crate::sys::SysResult<T> {
    // Only used where there is no deadline, when with_deadline never polls.
    Err(Errno(libc::EAGAIN))
}

impl Drop for Queue {
    fn drop(&mut self) {
        if self.remove_on_drop {
            // Already removed (by an operator, say) is fine: nothing to do.
            let _ = raw::msg_remove(self.id);
        }
    }
}

/// The sending end of a `sysv-mq:` address: sends every message with one type.
#[derive(Debug)]
pub struct SysvSender {
    queue: Queue,
    mtype: i64,
    address: String,
}

/// The receiving end of a `sysv-mq:` address: receives what its selector selects.
#[derive(Debug)]
pub struct SysvReceiver {
    queue: Queue,
    selector: Selector,
    last: Option<i64>,
    address: String,
}

fn key_of(addr: &Address) -> Result<&SysvKey> {
    match addr.target() {
        Target::SysvMq(k) => Ok(k),
        _ => Err(Error::new(
            ErrorKind::InvalidAddress,
            "open",
            addr.to_string(),
            "not a sysv-mq: address",
        )),
    }
}

fn open_queue(addr: &Address, opts: &OpenOptions, access: u32) -> Result<Queue> {
    let mut b = Builder::new(key_of(addr)?.clone()).mode(addr.mode()?).access(access);
    if let Some(q) = addr.param_bytes("qbytes")? {
        b = b.byte_limit(q);
    }
    if let Some(m) = addr.param_bytes("max")? {
        b = b.max_message(usize::try_from(m).unwrap_or(usize::MAX));
    }
    let mut q = if opts.create { b.open_or_create()? } else { b.open()? };
    if opts.keep {
        q.keep();
    }
    q.name = addr.to_string();
    Ok(q)
}

/// Open `sysv-mq:KEY[?type=N]` for sending messages of type N (default 1, must be > 0).
pub fn open_sender(addr: &Address, opts: &OpenOptions) -> Result<SysvSender> {
    let mtype = match addr.param("type") {
        None => 1,
        Some(t) => t.parse::<i64>().ok().filter(|&n| n > 0).ok_or_else(|| {
            Error::address(
                &addr.to_string(),
                format!("type `{t}`: a sender's message type must be a number > 0"),
            )
        })?,
    };
    let queue = open_queue(addr, opts, 0o200)?;
    Ok(SysvSender { queue, mtype, address: addr.to_string() })
}

/// Open `sysv-mq:KEY[?type=SEL]` for receiving; SEL is `0` (any, the default), `N` (type
/// N), `-N` (lowest type <= N) or `!N` (any type but N).
pub fn open_receiver(addr: &Address, opts: &OpenOptions) -> Result<SysvReceiver> {
    let selector = match addr.param("type") {
        None => Selector::Any,
        Some(t) => Selector::parse(t).ok_or_else(|| {
            Error::address(
                &addr.to_string(),
                format!("type `{t}`: a receiver's selector is 0 (any), N (type N), -N (lowest type <= N) or !N (any type except N), with N > 0"),
            )
        })?,
    };
    let queue = open_queue(addr, opts, 0o400)?;
    Ok(SysvReceiver { queue, selector, last: None, address: addr.to_string() })
}

impl SysvSender {
    /// The queue.
    pub fn queue(&mut self) -> &mut Queue {
        &mut self.queue
    }
    /// The type this end sends.
    pub fn message_type(&self) -> i64 {
        self.mtype
    }
}

impl SysvReceiver {
    /// The queue.
    pub fn queue(&mut self) -> &mut Queue {
        &mut self.queue
    }
    /// The selector this end receives with.
    pub fn selector(&self) -> Selector {
        self.selector
    }
}

impl Sender for SysvSender {
    fn send_wait(&mut self, msg: &[u8], wait: Wait) -> Result<()> {
        self.queue.send_wait(self.mtype, msg, wait)
    }
    fn max_message_size(&self) -> usize {
        self.queue.max_message
    }
    fn address(&self) -> &str {
        &self.address
    }
}

impl Receiver for SysvReceiver {
    fn recv_wait(&mut self, buf: &mut Vec<u8>, wait: Wait) -> Result<()> {
        let t = self.queue.recv_wait(self.selector, buf, wait)?;
        self.last = Some(t);
        Ok(())
    }
    fn address(&self) -> &str {
        &self.address
    }
    fn last_label(&self) -> Option<Label> {
        self.last.map(Label::Type)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors_parse() {
        assert_eq!(Selector::parse("0"), Some(Selector::Any));
        assert_eq!(Selector::parse("4"), Some(Selector::Type(4)));
        assert_eq!(Selector::parse("-3"), Some(Selector::AtMost(3)));
        assert_eq!(Selector::parse("!2"), Some(Selector::Except(2)));
        for bad in ["", "x", "!0", "-0", "!-2", "--3", "1.5"] {
            assert_eq!(Selector::parse(bad), None, "{bad}");
        }
        assert_eq!(Selector::Except(2).to_raw(), (2, libc::MSG_EXCEPT));
        assert_eq!(Selector::AtMost(3).to_raw(), (-3, 0));
    }
}
