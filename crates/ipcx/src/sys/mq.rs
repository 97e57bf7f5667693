//! Raw System V (`msgget`, `msgsnd`, `msgrcv`, `msgctl`, `ftok`) and POSIX (`mq_open`,
//! `mq_timedsend`, `mq_timedreceive`, `mq_getattr`, `mq_setattr`, `mq_unlink`) message
//! queue calls, and the per-thread timer that gives System V calls a deadline.
//!
//! Every `unsafe` block passes the kernel a pointer to memory the wrapper owns or borrows
//! for the call, of the length it says.
#![allow(unsafe_code)]

use std::cell::RefCell;
use std::ffi::{CStr, CString};
use std::mem::MaybeUninit;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Once;
use std::time::{Duration, Instant};

use super::{cpath, timespec, Errno, SysResult};

// ---------------------------------------------------------------------------------------
// System V

/// `ftok(3)`: a key from an existing path and a project id (its low 8 bits).
pub fn ftok(path: &Path, proj: u8) -> SysResult<i32> {
    let c = cpath(path)?;
    // SAFETY: `c` is a NUL-terminated path alive for the call.
    let k = unsafe { libc::ftok(c.as_ptr(), libc::c_int::from(proj)) };
    if k == -1 {
        Err(Errno::last())
    } else {
        Ok(k)
    }
}

/// `msgget(2)`: the id of the queue with `key` (`IPC_CREAT`, `IPC_EXCL` and the mode in
/// `flags`).
pub fn msgget(key: i32, flags: i32) -> SysResult<i32> {
    // SAFETY: msgget takes no pointers.
    let id = unsafe { libc::msgget(key, flags) };
    if id < 0 {
        Err(Errno::last())
    } else {
        Ok(id)
    }
}

/// `msgctl(IPC_RMID)`: remove the queue now; waiting callers get `EIDRM`.
#[doc(alias = "msgctl")]
pub fn msg_remove(id: i32) -> SysResult<()> {
    // SAFETY: IPC_RMID ignores the buffer argument, so null is allowed.
    let r = unsafe { libc::msgctl(id, libc::IPC_RMID, std::ptr::null_mut()) };
    if r < 0 {
        Err(Errno::last())
    } else {
        Ok(())
    }
}

/// What `msgctl(IPC_STAT)` reports.
#[derive(Clone, Copy, Debug)]
pub struct MsgStat {
    /// Messages waiting (`msg_qnum`).
    pub messages: u64,
    /// Bytes of payload waiting (`__msg_cbytes`).
    pub bytes: u64,
    /// The queue's byte limit (`msg_qbytes`).
    pub byte_limit: u64,
    /// Pid of the last `msgsnd` (`msg_lspid`), 0 if none.
    pub last_sender: i32,
    /// Pid of the last `msgrcv` (`msg_lrpid`), 0 if none.
    pub last_receiver: i32,
    /// Time of the last `msgsnd`, seconds since the epoch (0 if none).
    pub last_send: i64,
    /// Time of the last `msgrcv`.
    pub last_recv: i64,
    /// Time of the last change (creation or `IPC_SET`).
    pub changed: i64,
    /// Owner uid.
    pub uid: u32,
    /// Owner gid.
    pub gid: u32,
    /// Creator uid.
    pub creator_uid: u32,
    /// Permission bits.
    pub mode: u32,
    /// The key the queue was made with.
    pub key: i32,
}

fn stat_raw(id: i32) -> SysResult<libc::msqid_ds> {
    let mut ds = MaybeUninit::<libc::msqid_ds>::zeroed();
    // SAFETY: `ds` is a valid msqid_ds for the kernel to fill.
    let r = unsafe { libc::msgctl(id, libc::IPC_STAT, ds.as_mut_ptr()) };
    if r < 0 {
        return Err(Errno::last());
    }
    // SAFETY: IPC_STAT succeeded and filled the struct (it was zeroed before, too).
    Ok(unsafe { ds.assume_init() })
}

/// `msgctl(IPC_STAT)`.
pub fn msg_stat(id: i32) -> SysResult<MsgStat> {
    let ds = stat_raw(id)?;
    Ok(MsgStat {
        messages: ds.msg_qnum as u64,
        bytes: ds.__msg_cbytes as u64,
        byte_limit: ds.msg_qbytes as u64,
        last_sender: ds.msg_lspid,
        last_receiver: ds.msg_lrpid,
        last_send: ds.msg_stime as i64,
        last_recv: ds.msg_rtime as i64,
        changed: ds.msg_ctime as i64,
        uid: ds.msg_perm.uid,
        gid: ds.msg_perm.gid,
        creator_uid: ds.msg_perm.cuid,
        mode: u32::from(ds.msg_perm.mode) & 0o777,
        key: ds.msg_perm.__key,
    })
}

/// `msgctl(IPC_SET)` of `msg_qbytes` (raising it above `msgmnb` needs `CAP_SYS_RESOURCE`).
pub fn msg_set_byte_limit(id: i32, bytes: u64) -> SysResult<()> {
    let mut ds = stat_raw(id)?;
    ds.msg_qbytes = bytes as libc::msglen_t;
    // SAFETY: `ds` is a valid msqid_ds read by IPC_SET.
    let r = unsafe { libc::msgctl(id, libc::IPC_SET, &mut ds) };
    if r < 0 {
        Err(Errno::last())
    } else {
        Ok(())
    }
}

/// A `struct msgbuf { long mtype; char mtext[]; }` with room for `cap` payload bytes,
/// kept aligned for `long` and reused from message to message.
#[derive(Debug, Default)]
pub struct MsgBuf {
    words: Vec<libc::c_long>,
    /// The longest payload [`msgrcv`] takes (`None`: the capacity).
    limit: Option<usize>,
}

const LONG: usize = std::mem::size_of::<libc::c_long>();

impl MsgBuf {
    /// A buffer for payloads of up to `cap` bytes.
    pub fn with_capacity(cap: usize) -> MsgBuf {
        let mut b = MsgBuf::default();
        b.reserve(cap);
        b
    }

    /// Make room for a payload of `cap` bytes.
    pub fn reserve(&mut self, cap: usize) {
        let words = 1 + cap.div_ceil(LONG);
        if self.words.len() < words {
            self.words.resize(words, 0);
        }
    }

    /// Take at most `limit` payload bytes in [`msgrcv`] (a longer message gets `E2BIG`
    /// and stays queued), even where the capacity, counted in whole words, is more.
    pub fn limit_receive(&mut self, limit: Option<usize>) {
        self.limit = limit;
    }

    /// The limit set by [`MsgBuf::limit_receive`].
    pub fn receive_limit(&self) -> Option<usize> {
        self.limit
    }

    /// The payload room, in bytes.
    pub fn capacity(&self) -> usize {
        self.words.len().saturating_sub(1) * LONG
    }

    /// The message type field.
    #[allow(clippy::useless_conversion)] // c_long is i32 on 32-bit targets
    pub fn mtype(&self) -> i64 {
        i64::from(self.words.first().copied().unwrap_or(0))
    }

    /// The first `len` payload bytes (`len` at most the capacity).
    pub fn payload(&self, len: usize) -> &[u8] {
        let len = len.min(self.capacity());
        // SAFETY: the words after the first are `capacity()` initialised bytes, and `len`
        // is within them; u8 has no alignment or validity requirement.
        unsafe { std::slice::from_raw_parts(self.words.as_ptr().add(1).cast::<u8>(), len) }
    }

    /// Set the type and copy `payload` in (growing the buffer if needed).
    pub fn fill(&mut self, mtype: i64, payload: &[u8]) {
        self.reserve(payload.len());
        self.words[0] = mtype as libc::c_long;
        // SAFETY: the buffer has room for `payload.len()` bytes after the first word
        // (reserved above), and the two regions cannot overlap (we own `words`).
        unsafe {
            super::copy_bytes(
                payload.as_ptr(),
                self.words.as_mut_ptr().add(1).cast::<u8>(),
                payload.len(),
            );
        }
    }
}

/// `msgsnd(2)` of the first `len` payload bytes of `buf`, once (no `EINTR` retry).
pub fn msgsnd(id: i32, buf: &MsgBuf, len: usize, flags: i32) -> SysResult<()> {
    if len > buf.capacity() {
        return Err(Errno(libc::EINVAL));
    }
    // SAFETY: `buf.words` holds the type and at least `len` payload bytes.
    let r = unsafe { libc::msgsnd(id, buf.words.as_ptr().cast(), len, flags) };
    if r < 0 {
        Err(Errno::last())
    } else {
        Ok(())
    }
}

/// `msgrcv(2)` into `buf` (up to its capacity, or its receive limit if smaller), once (no
/// `EINTR` retry); returns the payload length; the type is `buf.mtype()`.
pub fn msgrcv(id: i32, buf: &mut MsgBuf, msgtyp: i64, flags: i32) -> SysResult<usize> {
    if buf.words.is_empty() {
        buf.reserve(0);
    }
    let cap = buf.limit.map_or(buf.capacity(), |l| l.min(buf.capacity()));
    // SAFETY: `buf.words` has room for the type and `cap` payload bytes.
    let r = unsafe {
        libc::msgrcv(id, buf.words.as_mut_ptr().cast(), cap, msgtyp as libc::c_long, flags)
    };
    if r < 0 {
        Err(Errno::last())
    } else {
        Ok(r as usize)
    }
}

/// Read a number from a `/proc/sys` file (a system limit).
pub fn read_limit(path: &str) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

// ---------------------------------------------------------------------------------------
// A deadline for calls that have no timed form (System V msgsnd/msgrcv).
//
// Each thread that needs one gets a POSIX timer (`timer_create(CLOCK_MONOTONIC)`) whose
// expiry sends `DEADLINE_SIGNAL` to that thread only (`SIGEV_THREAD_ID`). The signal's
// handler does nothing and is installed without `SA_RESTART`, so a blocking `msgrcv`
// returns `EINTR` when the timer fires. The timer keeps firing every millisecond after
// the deadline until disarmed, which closes the race where the signal lands between the
// deadline check and the start of the system call. Cost: two `timer_settime` calls per
// blocking wait that actually has to sleep, and one `timer_create` per thread; no CPU is
// used while waiting.

/// The signal the deadline timer sends: `SIGRTMIN + 5`.
pub fn deadline_signal() -> i32 {
    libc::SIGRTMIN() + 5
}

extern "C" fn wake_only(_: libc::c_int) {}

static INSTALL: Once = Once::new();
static INSTALLED: AtomicBool = AtomicBool::new(false);

/// Install the no-op handler once, if the signal is still at its default disposition.
/// Returns whether the handler is ours (otherwise the caller must poll).
fn install_handler() -> bool {
    INSTALL.call_once(|| {
        let sig = deadline_signal();
        let mut old = MaybeUninit::<libc::sigaction>::zeroed();
        // SAFETY: a null new action only queries; `old` is valid for the kernel to fill.
        if unsafe { libc::sigaction(sig, std::ptr::null(), old.as_mut_ptr()) } != 0 {
            return;
        }
        // SAFETY: sigaction succeeded and filled `old`.
        let old = unsafe { old.assume_init() };
        if old.sa_sigaction != libc::SIG_DFL {
            return; // The program uses the signal itself: leave it alone.
        }
        // SAFETY: a zeroed sigaction is valid (empty mask, no flags).
        let mut sa: libc::sigaction = unsafe { std::mem::zeroed() };
        sa.sa_sigaction = wake_only as extern "C" fn(libc::c_int) as usize;
        sa.sa_flags = 0; // no SA_RESTART: the blocked call must return EINTR
                         // SAFETY: `sa` is a valid action whose handler is async-signal-safe (does nothing).
        if unsafe { libc::sigaction(sig, &sa, std::ptr::null_mut()) } == 0 {
            INSTALLED.store(true, Ordering::Release);
        }
    });
    INSTALLED.load(Ordering::Acquire)
}

/// A thread's deadline timer, and the process it was made in (timers are not inherited
/// by a forked child, whose copy of the thread-local must then be replaced).
struct ThreadTimer(libc::timer_t, u32);

impl Drop for ThreadTimer {
    fn drop(&mut self) {
        // SAFETY: the timer was made by timer_create on this thread and is deleted once.
        // An error would mean it is already gone: nothing to do.
        unsafe { libc::timer_delete(self.0) };
    }
}

thread_local! {
    static TIMER: RefCell<Option<ThreadTimer>> = const { RefCell::new(None) };
}

fn thread_timer() -> Option<libc::timer_t> {
    let pid = std::process::id();
    match TIMER.with(|c| c.borrow().as_ref().map(|t| (t.0, t.1))) {
        Some((t, p)) if p == pid => return Some(t),
        Some(_) => {
            // Made in the parent before a fork: not ours to delete; forget it.
            if let Some(stale) = TIMER.with(|c| c.borrow_mut().take()) {
                std::mem::forget(stale);
            }
        }
        None => {}
    }
    if !install_handler() {
        return None;
    }
    // SAFETY: a zeroed sigevent is valid; the fields set below are the ones the kernel
    // reads for SIGEV_THREAD_ID.
    let mut sev: libc::sigevent = unsafe { std::mem::zeroed() };
    sev.sigev_notify = libc::SIGEV_THREAD_ID;
    sev.sigev_signo = deadline_signal();
    // SAFETY: gettid takes no arguments.
    sev.sigev_notify_thread_id = unsafe { libc::gettid() };
    let mut t = MaybeUninit::<libc::timer_t>::uninit();
    // SAFETY: `sev` is a valid sigevent and `t` is valid for the kernel to fill.
    if unsafe { libc::timer_create(libc::CLOCK_MONOTONIC, &mut sev, t.as_mut_ptr()) } != 0 {
        return None;
    }
    // SAFETY: timer_create succeeded and wrote the id.
    let t = unsafe { t.assume_init() };
    TIMER.with(|c| *c.borrow_mut() = Some(ThreadTimer(t, pid)));
    Some(t)
}

fn arm(t: libc::timer_t, first: Duration) -> bool {
    let spec = libc::itimerspec {
        // Never zero (zero disarms); fire again every ms until disarmed.
        it_value: timespec(first.max(Duration::from_nanos(1))),
        it_interval: timespec(Duration::from_millis(1)),
    };
    // SAFETY: `spec` is valid for the call; the old value is not wanted.
    unsafe { libc::timer_settime(t, 0, &spec, std::ptr::null_mut()) == 0 }
}

fn disarm(t: libc::timer_t) {
    let zero = libc::itimerspec {
        it_value: timespec(Duration::ZERO),
        it_interval: timespec(Duration::ZERO),
    };
    // SAFETY: as in `arm`. Failure would leave a timer whose signal does nothing.
    unsafe { libc::timer_settime(t, 0, &zero, std::ptr::null_mut()) };
}

/// Unblock the deadline signal in this thread, returning whether it had been blocked.
fn unblock_signal() -> Option<libc::sigset_t> {
    // SAFETY: the sets are valid for the calls; sigemptyset/sigaddset only write them.
    unsafe {
        let mut set = MaybeUninit::<libc::sigset_t>::zeroed().assume_init();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, deadline_signal());
        let mut old = MaybeUninit::<libc::sigset_t>::zeroed().assume_init();
        if libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, &mut old) != 0 {
            return None;
        }
        if libc::sigismember(&old, deadline_signal()) == 1 {
            Some(old)
        } else {
            None
        }
    }
}

fn restore_mask(old: &libc::sigset_t) {
    // SAFETY: `old` is a mask read from pthread_sigmask.
    unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, old, std::ptr::null_mut()) };
}

/// Run the blocking call `f` (which returns `EINTR` when interrupted) until it succeeds,
/// fails, or `deadline` passes (`ETIMEDOUT`). `None` waits forever (retrying `EINTR`).
///
/// Where no timer can be made (the program owns the signal), waits by polling `poll_once`
/// (the non-blocking form) with a backoff from 50 µs to 5 ms.
pub fn with_deadline<T>(
    deadline: Option<Instant>,
    mut f: impl FnMut() -> SysResult<T>,
    mut poll_once: impl FnMut() -> SysResult<T>,
) -> SysResult<T> {
    let Some(deadline) = deadline else {
        loop {
            match f() {
                Err(Errno(libc::EINTR)) => continue,
                other => return other,
            }
        }
    };
    let Some(t) = thread_timer() else {
        let mut pause = Duration::from_micros(50);
        loop {
            match poll_once() {
                Err(Errno(libc::EAGAIN | libc::ENOMSG)) => {}
                other => return other,
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(Errno(libc::ETIMEDOUT));
            }
            std::thread::sleep(pause.min(deadline - now));
            pause = (pause * 2).min(Duration::from_millis(5));
        }
    };
    let blocked = unblock_signal();
    let result = loop {
        let now = Instant::now();
        if now >= deadline {
            break Err(Errno(libc::ETIMEDOUT));
        }
        if !arm(t, deadline - now) {
            break Err(Errno::last());
        }
        match f() {
            Err(Errno(libc::EINTR)) => continue,
            other => break other,
        }
    };
    disarm(t);
    if let Some(old) = blocked {
        restore_mask(&old);
    }
    result
}

// ---------------------------------------------------------------------------------------
// POSIX

/// A POSIX queue name as a C string; a name with a NUL byte is `EINVAL`.
pub fn mq_name(name: &str) -> SysResult<CString> {
    CString::new(name).map_err(|_| Errno(libc::EINVAL))
}

/// Attributes of a POSIX queue (`struct mq_attr`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MqAttr {
    /// `O_NONBLOCK` set on the descriptor.
    pub nonblocking: bool,
    /// Most messages the queue holds (`mq_maxmsg`).
    pub max_messages: u64,
    /// Largest message (`mq_msgsize`).
    pub message_size: u64,
    /// Messages now waiting (`mq_curmsgs`).
    pub current_messages: u64,
}

fn to_attr(a: &libc::mq_attr) -> MqAttr {
    MqAttr {
        nonblocking: a.mq_flags & libc::O_NONBLOCK as libc::c_long != 0,
        max_messages: a.mq_maxmsg as u64,
        message_size: a.mq_msgsize as u64,
        current_messages: a.mq_curmsgs as u64,
    }
}

/// `mq_open(3)`; with `O_CREAT`, `mode` and (if given) `(maxmsg, msgsize)` are used.
/// The descriptor is close-on-exec (Linux queues are descriptors; `mq_close` is `close`).
pub fn mq_open(name: &CStr, oflag: i32, mode: u32, attr: Option<(u64, u64)>) -> SysResult<OwnedFd> {
    // SAFETY: a zeroed mq_attr is valid.
    let mut a: libc::mq_attr = unsafe { std::mem::zeroed() };
    let ap = match attr {
        Some((maxmsg, msgsize)) => {
            a.mq_maxmsg = maxmsg.min(libc::c_long::MAX as u64) as libc::c_long;
            a.mq_msgsize = msgsize.min(libc::c_long::MAX as u64) as libc::c_long;
            &mut a as *mut libc::mq_attr
        }
        None => std::ptr::null_mut(),
    };
    // SAFETY: `name` is NUL-terminated; the variadic mode and attr pointer are read only
    // with O_CREAT, and `ap` is null or points to `a`, alive for the call.
    let q =
        unsafe { libc::mq_open(name.as_ptr(), oflag | libc::O_CLOEXEC, mode as libc::c_uint, ap) };
    if q < 0 {
        return Err(Errno::last());
    }
    // SAFETY: on Linux an mqd_t is a file descriptor, new and owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(q) })
}

/// `fchmod(2)` on a queue's descriptor: sets the mode exactly, whatever the umask.
pub fn fchmod(fd: BorrowedFd<'_>, mode: u32) -> SysResult<()> {
    // SAFETY: no pointers; `fd` is open.
    if unsafe { libc::fchmod(fd.as_raw_fd(), mode as libc::mode_t) } < 0 {
        Err(Errno::last())
    } else {
        Ok(())
    }
}

/// `mq_unlink(3)`.
pub fn mq_unlink(name: &CStr) -> SysResult<()> {
    // SAFETY: `name` is NUL-terminated.
    if unsafe { libc::mq_unlink(name.as_ptr()) } < 0 {
        Err(Errno::last())
    } else {
        Ok(())
    }
}

/// `mq_getattr(3)`.
pub fn mq_getattr(q: BorrowedFd<'_>) -> SysResult<MqAttr> {
    // SAFETY: a zeroed mq_attr is valid for the kernel to fill.
    let mut a: libc::mq_attr = unsafe { std::mem::zeroed() };
    // SAFETY: `a` is valid; `q` is an open queue descriptor.
    if unsafe { libc::mq_getattr(q.as_raw_fd(), &mut a) } < 0 {
        return Err(Errno::last());
    }
    Ok(to_attr(&a))
}

/// `mq_setattr(3)`: only `O_NONBLOCK` can change.
#[doc(alias = "mq_setattr")]
pub fn mq_set_nonblocking(q: BorrowedFd<'_>, on: bool) -> SysResult<()> {
    // SAFETY: a zeroed mq_attr is valid.
    let mut a: libc::mq_attr = unsafe { std::mem::zeroed() };
    a.mq_flags = if on { libc::O_NONBLOCK as libc::c_long } else { 0 };
    // SAFETY: `a` is valid for reading; the old value is not wanted.
    if unsafe { libc::mq_setattr(q.as_raw_fd(), &a, std::ptr::null_mut()) } < 0 {
        return Err(Errno::last());
    }
    Ok(())
}

/// How long a POSIX call may wait: its absolute `CLOCK_REALTIME` timeout, or none.
/// `Some(past)` makes the call return `ETIMEDOUT` at once if it would block.
pub fn realtime_deadline(deadline: Option<Instant>) -> Option<libc::timespec> {
    let d = deadline?;
    let left = d.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Some(libc::timespec { tv_sec: 0, tv_nsec: 0 });
    }
    let mut now = MaybeUninit::<libc::timespec>::uninit();
    // SAFETY: `now` is valid for the call to fill.
    unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, now.as_mut_ptr()) };
    // SAFETY: clock_gettime(CLOCK_REALTIME) cannot fail with a valid pointer.
    let now = unsafe { now.assume_init() };
    let ns = now.tv_nsec as u64 + u64::from(left.subsec_nanos());
    Some(libc::timespec {
        tv_sec: now
            .tv_sec
            .saturating_add(left.as_secs().min(i32::MAX as u64) as libc::time_t)
            .saturating_add((ns / 1_000_000_000) as libc::time_t),
        tv_nsec: (ns % 1_000_000_000) as libc::c_long,
    })
}

/// `mq_send` / `mq_timedsend`, once (no `EINTR` retry).
#[doc(alias = "mq_timedsend")]
pub fn mq_send(
    q: BorrowedFd<'_>,
    msg: &[u8],
    prio: u32,
    timeout: Option<&libc::timespec>,
) -> SysResult<()> {
    // SAFETY: `msg` is valid for its length; the timeout is null or valid.
    let r = unsafe {
        match timeout {
            None => libc::mq_send(q.as_raw_fd(), msg.as_ptr().cast(), msg.len(), prio),
            Some(ts) => libc::mq_timedsend(q.as_raw_fd(), msg.as_ptr().cast(), msg.len(), prio, ts),
        }
    };
    if r < 0 {
        Err(Errno::last())
    } else {
        Ok(())
    }
}

/// `mq_receive` / `mq_timedreceive` into `buf`'s spare capacity (at least the queue's
/// message size must be reserved), once; sets the length and returns the priority.
#[doc(alias = "mq_timedreceive")]
pub fn mq_receive(
    q: BorrowedFd<'_>,
    buf: &mut Vec<u8>,
    timeout: Option<&libc::timespec>,
) -> SysResult<u32> {
    buf.clear();
    let cap = buf.capacity();
    let mut prio: libc::c_uint = 0;
    // SAFETY: `buf` has `cap` bytes of (uninitialised) room that the kernel only writes;
    // `prio` is valid; the timeout is null or valid.
    let r = unsafe {
        match timeout {
            None => libc::mq_receive(q.as_raw_fd(), buf.as_mut_ptr().cast(), cap, &mut prio),
            Some(ts) => {
                libc::mq_timedreceive(q.as_raw_fd(), buf.as_mut_ptr().cast(), cap, &mut prio, ts)
            }
        }
    };
    if r < 0 {
        return Err(Errno::last());
    }
    let n = (r as usize).min(cap);
    // SAFETY: the kernel wrote `n` bytes (at most the capacity) at the start of `buf`.
    unsafe { buf.set_len(n) };
    Ok(prio)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn private_queue() -> i32 {
        msgget(libc::IPC_PRIVATE, libc::IPC_CREAT | 0o600).expect("private queue")
    }

    fn mask_has_signal() -> bool {
        // SAFETY: a null new set only reads the mask into `cur`.
        unsafe {
            let mut cur = MaybeUninit::<libc::sigset_t>::zeroed().assume_init();
            libc::pthread_sigmask(libc::SIG_BLOCK, std::ptr::null(), &mut cur);
            libc::sigismember(&cur, deadline_signal()) == 1
        }
    }

    #[test]
    fn deadline_interrupts_msgrcv_even_when_the_thread_blocks_the_signal() {
        std::thread::spawn(|| {
            // SAFETY: the sets are valid; this thread blocks the deadline signal.
            unsafe {
                let mut set = MaybeUninit::<libc::sigset_t>::zeroed().assume_init();
                libc::sigemptyset(&mut set);
                libc::sigaddset(&mut set, deadline_signal());
                libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
            }
            assert!(mask_has_signal());
            let id = private_queue();
            let mut buf = MsgBuf::with_capacity(16);
            let t = Instant::now();
            let cell = RefCell::new(&mut buf);
            let r = with_deadline(
                Some(t + Duration::from_millis(100)),
                || msgrcv(id, &mut cell.borrow_mut(), 0, 0),
                || msgrcv(id, &mut cell.borrow_mut(), 0, libc::IPC_NOWAIT),
            );
            let took = t.elapsed();
            msg_remove(id).unwrap();
            assert_eq!(r, Err(Errno(libc::ETIMEDOUT)));
            assert!(took >= Duration::from_millis(99) && took < Duration::from_secs(2), "{took:?}");
            assert!(mask_has_signal(), "the thread's signal mask was not restored");
        })
        .join()
        .unwrap();
    }

    #[test]
    fn a_message_already_waiting_is_taken_and_the_timer_is_disarmed() {
        let id = private_queue();
        let mut buf = MsgBuf::default();
        buf.fill(7, b"abc");
        msgsnd(id, &buf, 3, 0).unwrap();
        let mut rbuf = MsgBuf::with_capacity(8);
        let cell = RefCell::new(&mut rbuf);
        let n = with_deadline(
            Some(Instant::now() + Duration::from_millis(20)),
            || msgrcv(id, &mut cell.borrow_mut(), 0, 0),
            || msgrcv(id, &mut cell.borrow_mut(), 0, libc::IPC_NOWAIT),
        )
        .unwrap();
        assert_eq!((n, rbuf.mtype(), rbuf.payload(n)), (3, 7, &b"abc"[..]));
        // The message was there: no timer was needed; and none is left armed.
        if let Some(t) = TIMER.with(|c| c.borrow().as_ref().map(|t| t.0)) {
            let mut cur = MaybeUninit::<libc::itimerspec>::zeroed();
            // SAFETY: `t` is this thread's live timer; `cur` is valid to fill.
            assert_eq!(unsafe { libc::timer_gettime(t, cur.as_mut_ptr()) }, 0);
            // SAFETY: timer_gettime succeeded and filled it.
            let cur = unsafe { cur.assume_init() };
            assert_eq!((cur.it_value.tv_sec, cur.it_value.tv_nsec), (0, 0));
        }
        // After a wait that did sleep and time out, the timer is disarmed too.
        let cell = RefCell::new(&mut rbuf);
        let r = with_deadline(
            Some(Instant::now() + Duration::from_millis(5)),
            || msgrcv(id, &mut cell.borrow_mut(), 0, 0),
            || msgrcv(id, &mut cell.borrow_mut(), 0, libc::IPC_NOWAIT),
        );
        assert_eq!(r, Err(Errno(libc::ETIMEDOUT)));
        let t = TIMER.with(|c| c.borrow().as_ref().map(|t| t.0)).expect("a timer was made");
        let mut cur = MaybeUninit::<libc::itimerspec>::zeroed();
        // SAFETY: as above.
        assert_eq!(unsafe { libc::timer_gettime(t, cur.as_mut_ptr()) }, 0);
        // SAFETY: as above.
        let cur = unsafe { cur.assume_init() };
        assert_eq!((cur.it_value.tv_sec, cur.it_value.tv_nsec), (0, 0), "timer left armed");
        msg_remove(id).unwrap();
    }
}
