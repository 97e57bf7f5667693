//! Raw calls for shared memory: POSIX (`shm_open`) and System V (`shmget`) segments,
//! mappings, futexes and the process facts (start time, liveness) a ring needs to notice a
//! dead peer.
//!
//! A mapping is returned as a [`Mapping`] that owns the address range and unmaps it on
//! drop; nothing here forms a Rust reference into it.
#![allow(unsafe_code)]

use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::sync::atomic::AtomicU32;
use std::time::Duration;

use super::mq::mq_name as cname;
use super::{cvt, Errno, SysResult};

/// `shm_open(3)` with `O_CLOEXEC | O_NOFOLLOW` added; `fchmod` after a create so the mode
/// is exact whatever the umask.
pub fn shm_open(name: &str, flags: i32, mode: u32) -> SysResult<OwnedFd> {
    let c = cname(name)?;
    // SAFETY: `c` is a NUL-terminated name alive for the call.
    let fd = cvt(unsafe {
        libc::shm_open(c.as_ptr(), flags | libc::O_CLOEXEC | libc::O_NOFOLLOW, mode as libc::mode_t)
    })?;
    // SAFETY: shm_open returned a new descriptor that nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    if flags & libc::O_CREAT != 0 {
        // SAFETY: `fd` is open; fchmod takes no pointer.
        cvt(unsafe { libc::fchmod(fd.as_raw_fd(), mode as libc::mode_t) })?;
    }
    Ok(fd)
}

/// `shm_unlink(3)`.
pub fn shm_unlink(name: &str) -> SysResult<()> {
    let c = cname(name)?;
    // SAFETY: `c` is a NUL-terminated name alive for the call.
    cvt(unsafe { libc::shm_unlink(c.as_ptr()) }).map(drop)
}

pub use super::mmap::ftruncate;

/// A mapped address range, unmapped (or detached, for System V) on drop.
#[derive(Debug)]
pub struct Mapping {
    ptr: *mut u8,
    len: usize,
    sysv: bool,
}

// SAFETY: a Mapping is an address range owned by the process; moving the owner to another
// thread changes nothing about it. All access through it goes through raw pointers with
// atomics or copies (see `crate::shm`).
unsafe impl Send for Mapping {}
// SAFETY: as above; `&Mapping` only hands out the base pointer and length.
unsafe impl Sync for Mapping {}

impl Mapping {
    /// The first byte.
    pub fn as_ptr(&self) -> *mut u8 {
        self.ptr
    }
    /// The length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }
    /// Whether the mapping is empty (never, for a successful map).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        if self.sysv {
            // SAFETY: `ptr` came from shmat and is detached only here.
            unsafe { libc::shmdt(self.ptr.cast()) };
        } else {
            // SAFETY: `ptr`/`len` came from mmap and are unmapped only here.
            unsafe { libc::munmap(self.ptr.cast(), self.len) };
        }
    }
}

/// `mmap(2)` a shared mapping of `len` bytes of `fd` from offset 0.
pub fn mmap_shared(fd: BorrowedFd<'_>, len: usize, writable: bool) -> SysResult<Mapping> {
    if len == 0 {
        return Err(Errno(libc::EINVAL));
    }
    let prot = if writable { libc::PROT_READ | libc::PROT_WRITE } else { libc::PROT_READ };
    // SAFETY: a fresh mapping at an address the kernel picks; no existing memory is affected.
    let p =
        unsafe { libc::mmap(std::ptr::null_mut(), len, prot, libc::MAP_SHARED, fd.as_raw_fd(), 0) };
    if p == libc::MAP_FAILED {
        return Err(Errno::last());
    }
    Ok(Mapping { ptr: p.cast(), len, sysv: false })
}

/// `shmget(2)`: the id of the segment with `key`, created with `flags` (`IPC_CREAT`,
/// `IPC_EXCL`, mode bits).
pub fn shmget(key: i32, size: usize, flags: i32) -> SysResult<i32> {
    // SAFETY: no pointers.
    cvt(unsafe { libc::shmget(key, size, flags) })
}

/// What `shmctl(IPC_STAT)` tells.
#[derive(Clone, Copy, Debug)]
pub struct ShmStat {
    /// Size in bytes.
    pub size: usize,
    /// Permission bits.
    pub mode: u32,
    /// Processes attached.
    pub nattch: u64,
    /// Creator's pid.
    pub cpid: i32,
}

/// `shmctl(IPC_STAT)`.
pub fn shm_stat(id: i32) -> SysResult<ShmStat> {
    // SAFETY: a zeroed shmid_ds is valid for the kernel to fill.
    let mut ds: libc::shmid_ds = unsafe { std::mem::zeroed() };
    // SAFETY: `ds` is valid for writes for the call.
    cvt(unsafe { libc::shmctl(id, libc::IPC_STAT, &mut ds) })?;
    Ok(ShmStat {
        size: ds.shm_segsz as usize,
        mode: u32::from(ds.shm_perm.mode as u16) & 0o777,
        nattch: ds.shm_nattch as u64,
        cpid: ds.shm_cpid,
    })
}

/// `shmctl(IPC_RMID)`: the segment goes when the last process detaches.
pub fn shm_rmid(id: i32) -> SysResult<()> {
    // SAFETY: IPC_RMID ignores the buffer argument.
    cvt(unsafe { libc::shmctl(id, libc::IPC_RMID, std::ptr::null_mut()) }).map(drop)
}

/// `shmat(2)` the segment `id` (`len` is its size, from [`shm_stat`]).
pub fn shmat(id: i32, len: usize, writable: bool) -> SysResult<Mapping> {
    let flags = if writable { 0 } else { libc::SHM_RDONLY };
    // SAFETY: attach at an address the kernel picks; no existing memory is affected.
    let p = unsafe { libc::shmat(id, std::ptr::null(), flags) };
    if p as isize == -1 {
        return Err(Errno::last());
    }
    Ok(Mapping { ptr: p.cast(), len, sysv: true })
}

pub use super::mq::ftok;

/// Sleep while `*word == expected`, at most `timeout` (`None`: forever). Returns on a wake,
/// a changed value, a signal or the time-out; the caller re-checks its condition. The word
/// may live in memory shared between processes (no `FUTEX_PRIVATE_FLAG`).
#[inline]
pub fn futex_wait(word: &AtomicU32, expected: u32, timeout: Option<Duration>) {
    // Every outcome sends the caller back to re-check its condition.
    let _ = super::futex::wait(word, expected, timeout);
}

/// Wake at most `n` waiters sleeping on `word` (in any process sharing it).
#[inline]
pub fn futex_wake(word: &AtomicU32, n: u32) {
    super::futex::wake(word, n);
}

/// This process's id.
pub fn getpid() -> i32 {
    // SAFETY: no arguments.
    unsafe { libc::getpid() }
}

/// The start time of process `pid` (clock ticks since boot, field 22 of
/// `/proc/PID/stat`), or `None` if it does not exist or is a zombie (dead, not yet reaped).
pub fn process_start_time(pid: i32) -> Option<u64> {
    if pid <= 0 {
        return None;
    }
    match super::process::stat(pid)? {
        ('Z' | 'X' | 'x', _) => None,
        (_, start) => Some(start),
    }
}

/// Whether process `pid` that started at `start` (as [`process_start_time`] says) is still
/// running: it exists, is not a zombie, and is the same process (not a reused pid).
/// A `start` of 0 means "unknown": only existence is checked.
pub fn process_is(pid: i32, start: u64) -> bool {
    if !super::process_alive(pid) {
        return false;
    }
    match process_start_time(pid) {
        Some(t) => start == 0 || t == start,
        // No /proc entry readable: trust kill(2) unless /proc exists and says no.
        None => !std::path::Path::new("/proc/self/stat").exists(),
    }
}
