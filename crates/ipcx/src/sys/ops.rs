//! Raw calls for operations on IPC objects as a whole: find, inspect and remove System V
//! queues and segments and POSIX queues and shared memory by name, and the process facts
//! the registry needs (`ipcx ls`, `ipcx rm`).
//!
//! The mechanism modules have their own wrappers for the data path; these are the few
//! calls an operator's tool makes on objects it did not open. Each returns the bare
//! [`Errno`], like the rest of [`crate::sys`].
#![allow(unsafe_code)]

use std::mem::MaybeUninit;
use std::os::fd::{AsFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;

use super::mq::mq_name as cname;
use super::{cpath, cvt, Errno, SysResult};

// The removal and key calls live with their mechanisms' data-path wrappers; `ipcx rm`
// reaches them here.
pub use super::mmap::mkdir;
pub use super::mq::{ftok, msg_remove};
/// `shmctl(id, IPC_RMID)`: mark a System V segment for removal; it goes when the last
/// process detaches, and no new process can attach it by key from now on.
pub use super::shm::shm_rmid as shm_remove;
pub use super::shm::shm_unlink;

/// `msgget(key, 0)`: the id of the existing System V queue with this key (never creates).
#[doc(alias = "msgget")]
pub fn msg_id(key: i32) -> SysResult<i32> {
    // SAFETY: msgget takes plain integers; without IPC_CREAT it only looks the key up.
    cvt(unsafe { libc::msgget(key, 0) })
}

/// `shmget(key, 0, 0)`: the id of the existing System V segment with this key.
#[doc(alias = "shmget")]
pub fn shm_id(key: i32) -> SysResult<i32> {
    // SAFETY: shmget takes plain integers; without IPC_CREAT it only looks the key up.
    cvt(unsafe { libc::shmget(key, 0, 0) })
}

/// `mq_unlink(3)`: remove a POSIX queue's name; it goes when the last descriptor closes.
pub fn mq_unlink(name: &str) -> SysResult<()> {
    super::mq::mq_unlink(&cname(name)?)
}

/// What `ipcx ls` and `ipcx rm` learn about a POSIX queue without receiving from it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MqStat {
    /// The owner's uid.
    pub uid: u32,
    /// The permission bits.
    pub mode: u32,
    /// Messages waiting.
    pub waiting: i64,
    /// The queue's limits: messages and bytes per message.
    pub maxmsg: i64,
    /// Bytes per message.
    pub msgsize: i64,
}

/// Inspect a POSIX queue: `mq_open(O_RDONLY)`, `fstat` (a queue descriptor is a file
/// descriptor on Linux) and `mq_getattr`. Opening needs read permission; nothing is
/// received and the queue is closed again.
#[doc(alias = "mq_getattr")]
// `mq_attr` fields are `c_long`: i64 here, i32 on 32-bit targets.
#[allow(clippy::useless_conversion)]
pub fn mq_stat(name: &str) -> SysResult<MqStat> {
    let c = cname(name)?;
    // SAFETY: `c` is NUL-terminated; without O_CREAT no further arguments are read.
    let mqd = unsafe { libc::mq_open(c.as_ptr(), libc::O_RDONLY | libc::O_NONBLOCK) };
    if mqd == -1 as libc::mqd_t {
        return Err(Errno::last());
    }
    // SAFETY: on Linux an mqd_t is a file descriptor, open here and owned by nothing
    // else; the OwnedFd closes it once, on every path.
    let fd = unsafe { OwnedFd::from_raw_fd(mqd as RawFd) };
    let st = super::fstat(fd.as_fd())?;
    let mut attr = MaybeUninit::<libc::mq_attr>::uninit();
    // SAFETY: `mqd` is open (owned by `fd`); `attr` is valid for mq_getattr to fill.
    cvt(unsafe { libc::mq_getattr(mqd, attr.as_mut_ptr()) })?;
    // SAFETY: mq_getattr succeeded and filled the struct.
    let attr = unsafe { attr.assume_init() };
    Ok(MqStat {
        uid: st.uid,
        mode: st.mode & 0o7777,
        waiting: i64::from(attr.mq_curmsgs),
        maxmsg: i64::from(attr.mq_maxmsg),
        msgsize: i64::from(attr.mq_msgsize),
    })
}

/// The effective user id of this process.
pub fn euid() -> u32 {
    // SAFETY: geteuid cannot fail and takes no arguments.
    unsafe { libc::geteuid() }
}

/// `rmdir(2)`.
pub fn rmdir(path: &Path) -> SysResult<()> {
    let c = cpath(path)?;
    // SAFETY: `c` is a NUL-terminated path alive for the call.
    cvt(unsafe { libc::rmdir(c.as_ptr()) }).map(drop)
}

/// `rename(2)`: atomically replace `to` with `from`.
pub fn rename(from: &Path, to: &Path) -> SysResult<()> {
    let (f, t) = (cpath(from)?, cpath(to)?);
    // SAFETY: both are NUL-terminated paths alive for the call.
    cvt(unsafe { libc::rename(f.as_ptr(), t.as_ptr()) }).map(drop)
}

/// Clock ticks per second (`sysconf(_SC_CLK_TCK)`), the unit of process start times.
pub fn clock_ticks() -> u64 {
    // SAFETY: sysconf takes an integer name and reads nothing else.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as u64
    } else {
        100
    }
}
