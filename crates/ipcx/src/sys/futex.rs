//! Futex wait and wake on a word in memory that other processes may map (no
//! `FUTEX_PRIVATE_FLAG`): the one place ipcx makes the `futex(2)` system call. The shared
//! ring (`sys::shm`) and the durable log (`sys::mmap`) wrap these with their own timeout
//! conventions.
#![allow(unsafe_code)]

use std::sync::atomic::AtomicU32;
use std::time::Duration;

use super::{timespec, Errno, SysResult};

/// `futex(FUTEX_WAIT)`: sleep while `*word == expected`, at most `timeout` (`None`:
/// forever). `Ok` when woken; otherwise the errno (`EAGAIN`: the word had changed,
/// `EINTR`: a signal, `ETIMEDOUT`: the time-out passed).
#[doc(alias = "futex")]
#[inline]
pub fn wait(word: &AtomicU32, expected: u32, timeout: Option<Duration>) -> SysResult<()> {
    let ts = timeout.map(timespec);
    let tsp = ts.as_ref().map_or(std::ptr::null(), |t| t as *const libc::timespec);
    // SAFETY: `word` is a live, aligned atomic for the call; FUTEX_WAIT reads it atomically
    // in the kernel; `tsp` is null or points to `ts`, alive here; the other arguments are
    // ignored by FUTEX_WAIT.
    let r = unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT,
            expected,
            tsp,
            std::ptr::null::<u32>(),
            0u32,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(Errno::last())
    }
}

/// `futex(FUTEX_WAKE)`: wake at most `n` waiters sleeping on `word` (in any process
/// sharing it). How many were woken is not needed.
#[inline]
pub fn wake(word: &AtomicU32, n: u32) {
    let n = n.min(i32::MAX as u32) as libc::c_int;
    // SAFETY: `word` is a live, aligned atomic; FUTEX_WAKE uses its address as a key only
    // and reads no other pointer.
    unsafe {
        libc::syscall(libc::SYS_futex, word.as_ptr(), libc::FUTEX_WAKE, n, 0usize, 0usize, 0u32);
    }
}
