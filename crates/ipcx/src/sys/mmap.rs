//! Raw calls for file mappings and the durable log: `mmap`, `munmap`, `mremap`, `msync`,
//! `ftruncate`, `fallocate`, `fsync`, `fdatasync`, `flock`, `renameat2`, and futex wait/wake
//! on a word in a shared mapping.
//!
//! [`Region`] owns one mapping and is the only way ipcx touches mapped bytes: it copies in
//! and out with bounds checks (never handing out a `&[u8]` over bytes another process may
//! change), and hands out atomics only at aligned, in-bounds offsets. What it cannot
//! check is whether the file behind it still covers the pages: a file mapping is guarded
//! by [`super::sigbus`], so an access past the end of a truncated file completes on a zero
//! page and raises [`Region::truncated`], which the caller checks after each access.
#![allow(unsafe_code)]

use std::os::fd::{AsRawFd, BorrowedFd};
use std::path::Path;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::SeqCst};
use std::time::Instant;

use super::{cpath, cvt, retry_eintr, Errno, SysResult};

/// The system's page size.
pub fn page_size() -> usize {
    // SAFETY: sysconf has no memory arguments.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if n > 0 {
        n as usize
    } else {
        4096
    }
}

/// One shared mapping (`MAP_SHARED`), unmapped on drop.
#[derive(Debug)]
pub struct Region {
    ptr: NonNull<u8>,
    len: usize,
    writable: bool,
    /// File mappings only: turns `SIGBUS` from a truncated file into [`Region::truncated`].
    guard: Option<super::sigbus::Guard>,
}

// SAFETY: the region is plain shared memory; every access goes through bounds-checked
// copies or atomics, which are sound from any thread.
unsafe impl Send for Region {}
// SAFETY: as above; `&Region` only offers copies and atomics.
unsafe impl Sync for Region {}

/// `mmap(2)` of `len` bytes of `fd` from `offset` (a multiple of the page size), or of
/// anonymous shared memory when `fd` is `None`. `MAP_SHARED`: other processes mapping the
/// same file (or children, for anonymous memory) see the same bytes.
#[doc(alias = "mmap")]
pub fn map(
    fd: Option<BorrowedFd<'_>>,
    len: usize,
    offset: u64,
    writable: bool,
) -> SysResult<Region> {
    if len == 0 {
        return Err(Errno(libc::EINVAL));
    }
    let prot = if writable { libc::PROT_READ | libc::PROT_WRITE } else { libc::PROT_READ };
    let (flags, raw) = match fd {
        Some(fd) => (libc::MAP_SHARED, fd.as_raw_fd()),
        None => (libc::MAP_SHARED | libc::MAP_ANONYMOUS, -1),
    };
    let off = libc::off_t::try_from(offset).map_err(|_| Errno(libc::EOVERFLOW))?;
    // SAFETY: a fresh mapping chosen by the kernel (null hint) overlaps nothing of ours;
    // `raw` is open for the call or -1 with MAP_ANONYMOUS.
    let p = unsafe { libc::mmap(std::ptr::null_mut(), len, prot, flags, raw, off) };
    if p == libc::MAP_FAILED {
        return Err(Errno::last());
    }
    let ptr = NonNull::new(p.cast::<u8>()).ok_or(Errno(libc::ENOMEM))?;
    let guard = fd.map(|_| super::sigbus::Guard::new(ptr.as_ptr() as usize, len));
    Ok(Region { ptr, len, writable, guard })
}

impl Region {
    /// Its length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether it has no bytes (never true: `map` refuses zero).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether it was mapped writable.
    pub fn writable(&self) -> bool {
        self.writable
    }

    /// Whether an access faulted past the end of the file (truncated by someone) since the
    /// mapping was made. Once true, what was read may be zeros and what was written is
    /// lost; the mapping stays usable only for reporting the error.
    #[inline]
    pub fn truncated(&self) -> bool {
        self.guard.as_ref().is_some_and(|g| g.hit())
    }

    /// Whether a truncation is caught ([`Region::truncated`]) rather than raising
    /// `SIGBUS`: a file mapping with a free guard slot.
    pub fn guarded(&self) -> bool {
        self.guard.as_ref().is_some_and(|g| g.is_active())
    }

    fn span(&self, off: usize, n: usize) -> bool {
        off.checked_add(n).is_some_and(|e| e <= self.len)
    }

    /// Copy `buf.len()` bytes from `off` out of the region; false if out of bounds.
    pub fn read(&self, off: usize, buf: &mut [u8]) -> bool {
        if !self.span(off, buf.len()) {
            return false;
        }
        // SAFETY: [off, off+len) is inside the mapping (checked above); `buf` is a distinct
        // Rust buffer. Another process may write the source bytes concurrently: the copy
        // then yields some mix of old and new bytes, which callers treat as untrusted
        // (checksums, bounds checks); no reference to the shared bytes outlives the call.
        unsafe { super::copy_bytes(self.ptr.as_ptr().add(off), buf.as_mut_ptr(), buf.len()) };
        true
    }

    /// Append `n` bytes from `off` to `out`; false if out of bounds.
    pub fn read_append(&self, off: usize, n: usize, out: &mut Vec<u8>) -> bool {
        if !self.span(off, n) {
            return false;
        }
        // SAFETY: the source is inside the mapping (checked above), never inside a Rust
        // vector. Concurrent writers elsewhere can only change which bytes are copied, as
        // for `read`.
        unsafe { super::append_bytes(out, self.ptr.as_ptr().add(off), n) };
        true
    }

    /// Copy `data` into the region at `off`; false if out of bounds or read-only.
    pub fn write(&self, off: usize, data: &[u8]) -> bool {
        if !self.writable || !self.span(off, data.len()) {
            return false;
        }
        // SAFETY: the destination is inside a writable mapping (checked above) and does
        // not overlap `data`, which is ordinary Rust memory.
        unsafe { super::copy_bytes(data.as_ptr(), self.ptr.as_ptr().add(off), data.len()) };
        true
    }

    /// Set `n` bytes at `off` to zero; false if out of bounds or read-only.
    pub fn zero(&self, off: usize, n: usize) -> bool {
        if !self.writable || !self.span(off, n) {
            return false;
        }
        // SAFETY: the range is inside a writable mapping (checked above).
        unsafe { std::ptr::write_bytes(self.ptr.as_ptr().add(off), 0, n) };
        true
    }

    /// The 32-bit atomic at `off` (4-aligned, in bounds), shared with other processes.
    pub fn atomic_u32(&self, off: usize) -> Option<&AtomicU32> {
        if off % 4 != 0 || !self.span(off, 4) || (!self.writable) {
            return None;
        }
        // SAFETY: in bounds and 4-aligned (the mapping is page-aligned); the mapping lives
        // as long as `&self`. Atomics may be changed by other processes at any time, which
        // is exactly what an atomic type allows.
        Some(unsafe { &*self.ptr.as_ptr().add(off).cast::<AtomicU32>() })
    }

    /// The 64-bit atomic at `off` (8-aligned, in bounds), shared with other processes.
    pub fn atomic_u64(&self, off: usize) -> Option<&AtomicU64> {
        if off % 8 != 0 || !self.span(off, 8) || (!self.writable) {
            return None;
        }
        // SAFETY: as for `atomic_u32`, with 8-byte alignment.
        Some(unsafe { &*self.ptr.as_ptr().add(off).cast::<AtomicU64>() })
    }

    /// `msync(2)` of the pages covering `[off, off+n)`: `MS_SYNC` waits until they are
    /// written to the file's storage; `MS_ASYNC` only schedules that (on Linux the dirty
    /// pages are already known to the kernel, so it returns at once).
    #[doc(alias = "msync")]
    pub fn sync(&self, off: usize, n: usize, wait: bool) -> SysResult<()> {
        if !self.span(off, n) {
            return Err(Errno(libc::EINVAL));
        }
        let page = page_size();
        let start = off - off % page;
        let end = (off + n).min(self.len);
        let len = end - start;
        if len == 0 {
            return Ok(());
        }
        let flags = if wait { libc::MS_SYNC } else { libc::MS_ASYNC };
        // SAFETY: [start, start+len) is inside the mapping and `start` is page-aligned.
        cvt(unsafe { libc::msync(self.ptr.as_ptr().add(start).cast(), len, flags) }).map(drop)
    }

    /// `mremap(2)` to `new_len` bytes, moving the mapping if needed.
    #[doc(alias = "mremap")]
    pub fn remap(&mut self, new_len: usize) -> SysResult<()> {
        if new_len == 0 {
            return Err(Errno(libc::EINVAL));
        }
        // Unregister first: the old addresses may be reused once the mapping moves.
        let had_guard = self.guard.take().is_some();
        // SAFETY: `ptr`/`len` describe a mapping we own; MREMAP_MAYMOVE lets the kernel
        // pick a new address, and no reference into the old one survives (`&mut self`).
        let p = unsafe {
            libc::mremap(self.ptr.as_ptr().cast(), self.len, new_len, libc::MREMAP_MAYMOVE)
        };
        let moved = if p == libc::MAP_FAILED { Err(Errno::last()) } else { Ok(()) };
        if let Some(p) = NonNull::new(p.cast::<u8>()).filter(|_| moved.is_ok()) {
            self.ptr = p;
            self.len = new_len;
        }
        if had_guard {
            self.guard = Some(super::sigbus::Guard::new(self.ptr.as_ptr() as usize, self.len));
        }
        moved
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        // Unregister before unmapping: the address may be reused at once.
        drop(self.guard.take());
        // SAFETY: we own this mapping and nothing borrows it any more. An error (none is
        // possible for a valid range) would leave nothing to do.
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}

/// `ftruncate(2)`: set the file's size.
pub fn ftruncate(fd: BorrowedFd<'_>, len: u64) -> SysResult<()> {
    let len = libc::off_t::try_from(len).map_err(|_| Errno(libc::EFBIG))?;
    // SAFETY: no memory arguments; `fd` is open.
    retry_eintr(|| unsafe { libc::ftruncate(fd.as_raw_fd(), len) } as isize).map(drop)
}

/// `fallocate(2)` mode 0: reserve blocks for `[0, len)` and grow the file to `len`, so
/// later stores through a mapping cannot fail for want of space (which would be SIGBUS).
/// `EOPNOTSUPP` where the file system cannot; the caller may fall back to `ftruncate`.
pub fn fallocate(fd: BorrowedFd<'_>, len: u64) -> SysResult<()> {
    let len = libc::off_t::try_from(len).map_err(|_| Errno(libc::EFBIG))?;
    // SAFETY: no memory arguments; `fd` is open.
    retry_eintr(|| unsafe { libc::fallocate(fd.as_raw_fd(), 0, 0, len) } as isize).map(drop)
}

/// `fsync(2)`.
pub fn fsync(fd: BorrowedFd<'_>) -> SysResult<()> {
    // SAFETY: no memory arguments; `fd` is open.
    cvt(unsafe { libc::fsync(fd.as_raw_fd()) }).map(drop)
}

/// `fdatasync(2)`.
pub fn fdatasync(fd: BorrowedFd<'_>) -> SysResult<()> {
    // SAFETY: no memory arguments; `fd` is open.
    cvt(unsafe { libc::fdatasync(fd.as_raw_fd()) }).map(drop)
}

/// `flock(2)` exclusive; `EWOULDBLOCK` when `nonblocking` and another holds it.
#[doc(alias = "flock")]
pub fn flock_exclusive(fd: BorrowedFd<'_>, nonblocking: bool) -> SysResult<()> {
    let op = if nonblocking { libc::LOCK_EX | libc::LOCK_NB } else { libc::LOCK_EX };
    // SAFETY: no memory arguments; `fd` is open.
    retry_eintr(|| unsafe { libc::flock(fd.as_raw_fd(), op) } as isize).map(drop)
}

/// `mkdir(2)` then a `chmod` that does not follow a symbolic link, so the mode is exact
/// whatever the umask.
pub fn mkdir(path: &Path, mode: u32) -> SysResult<()> {
    let c = cpath(path)?;
    // SAFETY: `c` is a NUL-terminated path alive for the call.
    cvt(unsafe { libc::mkdir(c.as_ptr(), 0o700 & mode as libc::mode_t) })?;
    super::chmod_nofollow(path, mode)
}

/// Block while the shared word still holds `expected`, until woken or `deadline`
/// (`futex(FUTEX_WAIT)` without `FUTEX_PRIVATE_FLAG`, since the word lives in memory
/// other processes map). Returns false on time-out; spurious wake-ups return true.
#[doc(alias = "futex")]
pub fn futex_wait(word: &AtomicU32, expected: u32, deadline: Option<Instant>) -> SysResult<bool> {
    let timeout = match deadline {
        None => None,
        Some(d) => {
            let now = Instant::now();
            if now >= d {
                return Ok(false);
            }
            Some(d - now)
        }
    };
    match super::futex::wait(word, expected, timeout) {
        Ok(()) | Err(Errno(libc::EAGAIN)) | Err(Errno(libc::EINTR)) => Ok(true),
        Err(Errno(libc::ETIMEDOUT)) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Wake every process waiting on the shared word (`futex(FUTEX_WAKE)`, not private).
pub fn futex_wake_all(word: &AtomicU32) {
    super::futex::wake(word, i32::MAX as u32);
}

/// CRC-32C of `data` continuing from `crc` with the CPU's `crc32` instruction (SSE4.2),
/// or `None` where the CPU lacks it (the caller then uses the table-driven code).
#[cfg(target_arch = "x86_64")]
pub fn crc32c_hw(crc: u32, data: &[u8]) -> Option<u32> {
    if !std::arch::is_x86_feature_detected!("sse4.2") {
        return None;
    }
    // SAFETY: the CPU supports SSE4.2 (checked just above), the only requirement of the
    // target_feature function; it reads `data` only through safe slice accesses.
    Some(unsafe { crc32c_sse42(crc, data) })
}

/// See the x86-64 version; other CPUs use the table.
#[cfg(not(target_arch = "x86_64"))]
pub fn crc32c_hw(_crc: u32, _data: &[u8]) -> Option<u32> {
    None
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "sse4.2")]
unsafe fn crc32c_sse42(crc: u32, data: &[u8]) -> u32 {
    use crate::mmap::crc::{shift_long, shift_short, LONG, SHORT};
    use std::arch::x86_64::{_mm_crc32_u64, _mm_crc32_u8};
    let word = |b: &[u8]| u64::from_le_bytes(b.try_into().expect("8 bytes"));
    let mut c = u64::from(!crc);
    let mut rest = data;
    // Three streams at a time: the instruction's latency is three times its issue rate.
    for (block, shift) in [(LONG, shift_long as fn(u32) -> u32), (SHORT, shift_short)] {
        while rest.len() >= 3 * block {
            let (a, tail) = rest.split_at(block);
            let (b, tail) = tail.split_at(block);
            let (d, tail) = tail.split_at(block);
            let (mut c1, mut c2) = (0u64, 0u64);
            for ((x, y), z) in a.chunks_exact(8).zip(b.chunks_exact(8)).zip(d.chunks_exact(8)) {
                c = _mm_crc32_u64(c, word(x));
                c1 = _mm_crc32_u64(c1, word(y));
                c2 = _mm_crc32_u64(c2, word(z));
            }
            let joined = shift(c as u32) ^ c1 as u32;
            c = u64::from(shift(joined) ^ c2 as u32);
            rest = tail;
        }
    }
    let mut chunks = rest.chunks_exact(8);
    for ch in &mut chunks {
        c = _mm_crc32_u64(c, word(ch));
    }
    let mut c = c as u32;
    for &b in chunks.remainder() {
        c = _mm_crc32_u8(c, b);
    }
    !c
}

impl Region {
    /// Load the aligned 32-bit word at `off` atomically (works on a read-only region).
    pub fn load_u32(&self, off: usize) -> Option<u32> {
        if off % 4 != 0 || !self.span(off, 4) {
            return None;
        }
        // SAFETY: in bounds and 4-aligned; only a load is made through the reference,
        // which is valid on read-only memory too, and the reference does not escape.
        Some(unsafe { &*self.ptr.as_ptr().add(off).cast::<AtomicU32>() }.load(SeqCst))
    }

    /// Load the aligned 64-bit word at `off` atomically (works on a read-only region).
    pub fn load_u64(&self, off: usize) -> Option<u64> {
        if off % 8 != 0 || !self.span(off, 8) {
            return None;
        }
        // SAFETY: as for `load_u32`, with 8-byte alignment.
        Some(unsafe { &*self.ptr.as_ptr().add(off).cast::<AtomicU64>() }.load(SeqCst))
    }

    /// [`futex_wait`] on the aligned word at `off` (works on a read-only region: waiting
    /// only reads the word). `EINVAL` if out of bounds or misaligned.
    pub fn wait_u32(
        &self,
        off: usize,
        expected: u32,
        deadline: Option<Instant>,
    ) -> SysResult<bool> {
        if off % 4 != 0 || !self.span(off, 4) {
            return Err(Errno(libc::EINVAL));
        }
        // SAFETY: in bounds and aligned; the reference is used only for its address by the
        // kernel, which reads the word; it does not escape the call.
        futex_wait(unsafe { &*self.ptr.as_ptr().add(off).cast::<AtomicU32>() }, expected, deadline)
    }
}
