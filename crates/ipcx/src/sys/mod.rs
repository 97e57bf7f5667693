//! Every raw system call ipcx makes on descriptors and paths, wrapped once.
//!
//! This is one of the few places allowed `unsafe`: each block calls into the C library
//! with arguments whose validity the wrapper's signature guarantees (a borrowed descriptor
//! is open for the call, a slice is valid for its length, a path is NUL-terminated).
//! A descriptor becomes an [`OwnedFd`] the instant the call that made it returns, so no
//! error path closes by hand. The wrappers return the bare [`Errno`]; the mechanism
//! modules turn it into an [`crate::Error`] that names the object.
//!
//! libc is used directly (not rustix) so that one errno model covers descriptors, System V
//! IPC, POSIX queues and futexes alike, none of which rustix covers all of.
#![allow(unsafe_code)]

pub mod shm;

use std::ffi::CString;
use std::io::IoSlice;
use std::mem::MaybeUninit;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::{Duration, Instant};

pub mod futex;
pub mod mmap;
pub mod mq;
pub mod ops;
pub mod process;
pub mod sigbus;
pub mod socket;
pub mod terminate;

/// A raw `errno` value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Errno(pub i32);

/// The result of a raw call.
pub type SysResult<T> = Result<T, Errno>;

impl Errno {
    /// The calling thread's current errno.
    pub fn last() -> Errno {
        Errno(std::io::Error::last_os_error().raw_os_error().unwrap_or(libc::EIO))
    }
}

/// The most bytes one `memcpy` call moves in [`copy_bytes`].
pub const COPY_PIECE: usize = 2048;

/// Copy `n` bytes from `src` to `dst`, as `ptr::copy_nonoverlapping` does, in `memcpy`
/// calls of at most [`COPY_PIECE`] bytes: every copy of a message into or out of shared
/// memory, a mapped file or a reassembly buffer goes through here.
///
/// Why pieces: above about 2 KiB (2112 bytes where the CPU has fast short `rep movsb`)
/// glibc's `memcpy` copies with `rep movsb`, and on AMD EPYC processors that runs at
/// 3-40 GB/s instead of about 55 GB/s unless the destination has the source's alignment
/// modulo 64 bytes. A record in a ring or a log starts at any multiple of 8 bytes, so most
/// large copies were slow ones: measured on a 2-core EPYC virtual machine (glibc 2.36),
/// 64 KiB with the destination 8 bytes past the source's alignment took 3.3 GB/s in one
/// call and 55 GB/s in 2 KiB calls; with matching alignment both took 55 GB/s. Below the
/// threshold `memcpy` uses vector loads and stores, which do not care.
///
/// # Safety
/// As for `ptr::copy_nonoverlapping`: `src` is valid for reads and `dst` for writes of `n`
/// bytes, and the two ranges do not overlap.
#[inline]
pub unsafe fn copy_bytes(src: *const u8, dst: *mut u8, n: usize) {
    let mut done = 0;
    // A loop with a remainder test (rather than equal chunks) is not merged back into one
    // `memcpy` by the optimiser; the bench's shm lane at 64 KiB shows it if it ever is.
    while n - done > COPY_PIECE {
        // SAFETY: `done + COPY_PIECE < n`, inside both ranges (the caller's contract).
        unsafe { std::ptr::copy_nonoverlapping(src.add(done), dst.add(done), COPY_PIECE) };
        done += COPY_PIECE;
    }
    // SAFETY: `done <= n`: the last `n - done` bytes of both ranges.
    unsafe { std::ptr::copy_nonoverlapping(src.add(done), dst.add(done), n - done) };
}

/// Append `n` bytes from `src` to `out` with [`copy_bytes`].
///
/// # Safety
/// `src` is valid for reads of `n` bytes and does not point into `out`.
pub unsafe fn append_bytes(out: &mut Vec<u8>, src: *const u8, n: usize) {
    out.reserve(n);
    let old = out.len();
    // SAFETY: `reserve` made room for `n` bytes after `old`, which the copy initialises
    // before the length covers them; the source is readable and apart from `out` (the
    // caller's contract).
    unsafe {
        copy_bytes(src, out.as_mut_ptr().add(old), n);
        out.set_len(old + n);
    }
}

/// `out.extend_from_slice(src)`, copied with [`copy_bytes`].
pub fn extend_bytes(out: &mut Vec<u8>, src: &[u8]) {
    // SAFETY: `src` is borrowed shared and `out` mutably, so they cannot overlap.
    unsafe { append_bytes(out, src.as_ptr(), src.len()) }
}

fn cvt(ret: libc::c_int) -> SysResult<libc::c_int> {
    if ret < 0 {
        Err(Errno::last())
    } else {
        Ok(ret)
    }
}

fn cvt_size(ret: libc::ssize_t) -> SysResult<usize> {
    if ret < 0 {
        Err(Errno::last())
    } else {
        Ok(ret as usize)
    }
}

/// A path as a C string; a path with a NUL byte is `EINVAL`.
pub fn cpath(path: &Path) -> SysResult<CString> {
    CString::new(path.as_os_str().as_bytes()).map_err(|_| Errno(libc::EINVAL))
}

/// `pipe2(O_CLOEXEC)`: (read end, write end).
#[doc(alias = "pipe2")]
pub fn pipe() -> SysResult<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: `fds` is a valid array of two ints for pipe2 to fill.
    cvt(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) })?;
    // SAFETY: pipe2 succeeded, so both descriptors are open and owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Run `call` (a system call returning a size, or -1 and `errno`) again while it fails
/// with `EINTR`.
#[inline(always)]
pub(crate) fn retry_eintr(mut call: impl FnMut() -> isize) -> SysResult<usize> {
    loop {
        match cvt_size(call()) {
            Err(Errno(libc::EINTR)) => continue,
            other => return other,
        }
    }
}

/// `read(2)`, retried on `EINTR`.
pub fn read(fd: BorrowedFd<'_>, buf: &mut [u8]) -> SysResult<usize> {
    // SAFETY: `buf` is valid for writes of `buf.len()` bytes; `fd` is open.
    retry_eintr(|| unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) })
}

/// `read(2)` into uninitialised spare capacity; returns the bytes now initialised.
pub fn read_uninit(fd: BorrowedFd<'_>, buf: &mut [MaybeUninit<u8>]) -> SysResult<usize> {
    // SAFETY: `buf` is valid for writes of `buf.len()` bytes (the kernel never reads
    // them); `fd` is open.
    retry_eintr(|| unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) })
}

/// `write(2)`, retried on `EINTR`.
pub fn write(fd: BorrowedFd<'_>, buf: &[u8]) -> SysResult<usize> {
    // SAFETY: `buf` is valid for reads of `buf.len()` bytes; `fd` is open.
    retry_eintr(|| unsafe { libc::write(fd.as_raw_fd(), buf.as_ptr().cast(), buf.len()) })
}

/// `writev(2)`, retried on `EINTR`.
pub fn writev(fd: BorrowedFd<'_>, bufs: &[IoSlice<'_>]) -> SysResult<usize> {
    let n = bufs.len().min(libc::c_int::MAX as usize) as libc::c_int;
    // SAFETY: `IoSlice` is ABI-compatible with `struct iovec` on Unix and each one
    // borrows valid memory for the call; `fd` is open.
    retry_eintr(|| unsafe { libc::writev(fd.as_raw_fd(), bufs.as_ptr().cast(), n) })
}

/// `pwritev(2)` at file offset `off`, retried on `EINTR`; may write only part.
pub fn pwritev(fd: BorrowedFd<'_>, bufs: &[IoSlice<'_>], off: u64) -> SysResult<usize> {
    let n = bufs.len().min(libc::c_int::MAX as usize) as libc::c_int;
    let off = libc::off_t::try_from(off).map_err(|_| Errno(libc::EFBIG))?;
    // SAFETY: as for `writev`; the offset is not a pointer.
    retry_eintr(|| unsafe { libc::pwritev(fd.as_raw_fd(), bufs.as_ptr().cast(), n, off) })
}

/// `kill(2)`: send signal `sig` to the process `pid` (a single process: `pid` must be
/// positive, never a process group).
pub fn kill(pid: i32, sig: i32) -> SysResult<()> {
    if pid <= 0 {
        return Err(Errno(libc::EINVAL));
    }
    // SAFETY: kill(2) takes two integers and touches no memory of this process.
    cvt(unsafe { libc::kill(pid, sig) }).map(drop)
}

/// Non-blocking attempts a blocking receive makes before it blocks (or polls).
pub const SPIN_TRIES: usize = 32;

/// Try `attempt` (a non-blocking call) up to [`SPIN_TRIES`] times while it would block:
/// its first other result, or `None`. A reply that comes within the few microseconds
/// this takes costs the receiver no sleep and wake-up, which on a virtual machine is most
/// of a blocking round trip.
#[inline(always)]
pub fn spin_tries<T>(mut attempt: impl FnMut() -> SysResult<T>) -> Option<SysResult<T>> {
    for _ in 0..SPIN_TRIES {
        match attempt() {
            Err(Errno(libc::EAGAIN)) => std::hint::spin_loop(),
            other => return Some(other),
        }
    }
    None
}

/// Readiness reported by [`poll`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ready(pub i16);

impl Ready {
    /// Data (or end of file) can be read.
    pub fn readable(self) -> bool {
        self.0 & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0
    }
    /// The peer hung up.
    pub fn hangup(self) -> bool {
        self.0 & libc::POLLHUP != 0
    }
    /// Nothing happened before the deadline.
    pub fn none(self) -> bool {
        self.0 == 0
    }
}

/// Wait for `events` (`libc::POLLIN`, `libc::POLLOUT`) on one descriptor until `deadline`
/// (`None`: forever). Returns the events seen, empty on time-out; `EINTR` is retried with
/// the time that is left.
#[doc(alias = "ppoll")]
pub fn poll(fd: BorrowedFd<'_>, events: i16, deadline: Option<Instant>) -> SysResult<Ready> {
    loop {
        let ts;
        let tsp = match deadline {
            None => std::ptr::null(),
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                ts = timespec(left);
                &ts as *const libc::timespec
            }
        };
        let mut pfd = libc::pollfd { fd: fd.as_raw_fd(), events, revents: 0 };
        // SAFETY: `pfd` is one valid pollfd; `tsp` is null or points to `ts`, alive here.
        let r = unsafe { libc::ppoll(&mut pfd, 1, tsp, std::ptr::null()) };
        match cvt(r) {
            Err(Errno(libc::EINTR)) => continue,
            Err(e) => return Err(e),
            Ok(0) => return Ok(Ready(0)),
            Ok(_) => return Ok(Ready(pfd.revents)),
        }
    }
}

/// A `Duration` as a `timespec`, saturating.
pub fn timespec(d: Duration) -> libc::timespec {
    libc::timespec {
        tv_sec: d.as_secs().min(libc::time_t::MAX as u64) as libc::time_t,
        tv_nsec: d.subsec_nanos() as libc::c_long,
    }
}

/// The descriptor's status flags (`F_GETFL`).
pub fn status_flags(fd: BorrowedFd<'_>) -> SysResult<i32> {
    // SAFETY: F_GETFL takes no pointer argument; `fd` is open.
    cvt(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) })
}

/// Set or clear `O_NONBLOCK` on the open file description.
pub fn set_nonblocking(fd: BorrowedFd<'_>, on: bool) -> SysResult<()> {
    let flags = status_flags(fd)?;
    let new = if on { flags | libc::O_NONBLOCK } else { flags & !libc::O_NONBLOCK };
    if new != flags {
        // SAFETY: F_SETFL takes an int argument; `fd` is open.
        cvt(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, new) })?;
    }
    Ok(())
}

/// Whether `fd` is an open descriptor of this process.
pub fn fd_is_open(fd: RawFd) -> bool {
    // SAFETY: F_GETFD only inspects the descriptor table; an unused number gives EBADF.
    unsafe { libc::fcntl(fd, libc::F_GETFD) >= 0 }
}

/// Take ownership of an inherited descriptor after checking that it is open.
///
/// The caller promises nothing else in the process owns `fd` (it was handed over by a
/// parent, for instance); ipcx's `pipe:fd=N` address is that promise.
pub fn adopt_fd(fd: RawFd) -> SysResult<OwnedFd> {
    if !fd_is_open(fd) {
        return Err(Errno(libc::EBADF));
    }
    // Make sure it is not passed on to our own children.
    // SAFETY: F_SETFD with an int argument on an open descriptor.
    cvt(unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) })?;
    // SAFETY: the descriptor is open, and by the address's contract nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `fcntl(F_DUPFD_CLOEXEC)`: a new owned descriptor for the same open file.
pub fn dup(fd: BorrowedFd<'_>) -> SysResult<OwnedFd> {
    // SAFETY: F_DUPFD_CLOEXEC takes an int argument; `fd` is open.
    let n = cvt(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 3) })?;
    // SAFETY: the call returned a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(n) })
}

/// A borrowed view of standard input or output, which the process keeps owning.
pub fn std_fd(fd: RawFd) -> SysResult<BorrowedFd<'static>> {
    if !fd_is_open(fd) {
        return Err(Errno(libc::EBADF));
    }
    // SAFETY: descriptors 0 and 1 stay open for the life of the process in every program
    // that uses them as channels; callers only pass 0 or 1.
    Ok(unsafe { BorrowedFd::borrow_raw(fd) })
}

/// `open(2)` with `O_CLOEXEC` added.
pub fn open(path: &Path, flags: i32, mode: u32) -> SysResult<OwnedFd> {
    let c = cpath(path)?;
    loop {
        // SAFETY: `c` is a NUL-terminated path alive for the call.
        let r = unsafe { libc::open(c.as_ptr(), flags | libc::O_CLOEXEC, mode as libc::c_uint) };
        match cvt(r) {
            Err(Errno(libc::EINTR)) => continue,
            // SAFETY: open returned a new descriptor that nothing else owns.
            Ok(fd) => return Ok(unsafe { OwnedFd::from_raw_fd(fd) }),
            Err(e) => return Err(e),
        }
    }
}

/// `mkfifo(3)` then a `chmod` that does not follow a symbolic link, so the mode is exact
/// whatever the umask.
pub fn mkfifo(path: &Path, mode: u32) -> SysResult<()> {
    let c = cpath(path)?;
    // SAFETY: `c` is a NUL-terminated path alive for the call.
    cvt(unsafe { libc::mkfifo(c.as_ptr(), 0o600 & mode as libc::mode_t) })?;
    chmod_nofollow(path, mode)
}

/// Set `path`'s mode without following a symbolic link at its end (`fchmodat` with
/// `AT_SYMLINK_NOFOLLOW`; `EOPNOTSUPP` if the path is a link). Used right after creating
/// a FIFO, socket or directory: were the new object replaced by a link in between, a
/// plain `chmod` would change the mode of whatever the link points to.
pub fn chmod_nofollow(path: &Path, mode: u32) -> SysResult<()> {
    let c = cpath(path)?;
    // SAFETY: `c` is a NUL-terminated path alive for the call.
    cvt(unsafe {
        libc::fchmodat(libc::AT_FDCWD, c.as_ptr(), mode as libc::mode_t, libc::AT_SYMLINK_NOFOLLOW)
    })
    .map(drop)
}

/// `unlink(2)`.
pub fn unlink(path: &Path) -> SysResult<()> {
    let c = cpath(path)?;
    // SAFETY: `c` is a NUL-terminated path alive for the call.
    cvt(unsafe { libc::unlink(c.as_ptr()) }).map(drop)
}

/// `link(2)`: a second name for `from`'s file; `EEXIST` if `to` exists.
pub fn link(from: &Path, to: &Path) -> SysResult<()> {
    let (f, t) = (cpath(from)?, cpath(to)?);
    // SAFETY: both paths are NUL-terminated and alive for the call.
    cvt(unsafe { libc::link(f.as_ptr(), t.as_ptr()) }).map(drop)
}

/// `renameat2(RENAME_NOREPLACE)`: `EEXIST` if `to` exists (even an empty directory).
#[doc(alias = "renameat2")]
pub fn rename_noreplace(from: &Path, to: &Path) -> SysResult<()> {
    let (f, t) = (cpath(from)?, cpath(to)?);
    // SAFETY: both paths are NUL-terminated and alive for the call.
    cvt(unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            f.as_ptr(),
            libc::AT_FDCWD,
            t.as_ptr(),
            libc::RENAME_NOREPLACE,
        )
    })
    .map(drop)
}

/// What `stat` tells ipcx about a file.
#[derive(Clone, Copy, Debug)]
pub struct FileStat {
    /// `st_mode` (type and permissions).
    pub mode: u32,
    /// Device and inode, to tell whether two opens reached the same file.
    pub dev: u64,
    /// Inode number.
    pub ino: u64,
    /// Size in bytes.
    pub size: i64,
    /// Owner.
    pub uid: u32,
}

impl FileStat {
    fn from(st: &libc::stat) -> FileStat {
        FileStat {
            mode: st.st_mode,
            dev: st.st_dev,
            ino: st.st_ino,
            size: st.st_size,
            uid: st.st_uid,
        }
    }
    /// The file type bits.
    pub fn file_type(&self) -> u32 {
        self.mode & libc::S_IFMT
    }
    /// A FIFO.
    pub fn is_fifo(&self) -> bool {
        self.file_type() == libc::S_IFIFO
    }
    /// A name for the file type, for messages.
    pub fn type_name(&self) -> &'static str {
        match self.file_type() {
            libc::S_IFIFO => "a FIFO",
            libc::S_IFREG => "a regular file",
            libc::S_IFDIR => "a directory",
            libc::S_IFLNK => "a symbolic link",
            libc::S_IFSOCK => "a socket",
            libc::S_IFCHR => "a character device",
            libc::S_IFBLK => "a block device",
            _ => "a file of unknown type",
        }
    }
}

/// `fstat(2)`.
pub fn fstat(fd: BorrowedFd<'_>) -> SysResult<FileStat> {
    let mut st = MaybeUninit::<libc::stat>::uninit();
    // SAFETY: `st` is valid for fstat to fill; `fd` is open.
    cvt(unsafe { libc::fstat(fd.as_raw_fd(), st.as_mut_ptr()) })?;
    // SAFETY: fstat succeeded and filled the struct.
    Ok(FileStat::from(unsafe { &st.assume_init() }))
}

/// `lstat(2)`: does not follow a final symbolic link.
pub fn lstat(path: &Path) -> SysResult<FileStat> {
    let c = cpath(path)?;
    let mut st = MaybeUninit::<libc::stat>::uninit();
    // SAFETY: `c` is NUL-terminated; `st` is valid for lstat to fill.
    cvt(unsafe { libc::lstat(c.as_ptr(), st.as_mut_ptr()) })?;
    // SAFETY: lstat succeeded and filled the struct.
    Ok(FileStat::from(unsafe { &st.assume_init() }))
}

/// The system's `PIPE_BUF`: writes of at most this many bytes to a pipe are atomic.
pub const PIPE_BUF: usize = libc::PIPE_BUF;

/// Arrange for `fd` (open in this process) to appear as descriptor `target` in the child
/// that `cmd` spawns, with close-on-exec cleared there.
pub fn hand_fd_to_child(cmd: &mut std::process::Command, fd: RawFd, target: RawFd) {
    use std::os::unix::process::CommandExt;
    // SAFETY: the closure runs in the child between fork and exec, and only calls dup2
    // and fcntl, which are async-signal-safe; it allocates nothing and takes no lock.
    unsafe {
        cmd.pre_exec(move || {
            if fd == target {
                let flags = libc::fcntl(fd, libc::F_GETFD);
                if flags < 0 || libc::fcntl(fd, libc::F_SETFD, flags & !libc::FD_CLOEXEC) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            } else if libc::dup2(fd, target) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// The pipe's capacity in bytes (`F_GETPIPE_SZ`).
pub fn pipe_capacity(fd: BorrowedFd<'_>) -> SysResult<usize> {
    // SAFETY: F_GETPIPE_SZ takes no argument; `fd` is open.
    cvt(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETPIPE_SZ) }).map(|n| n as usize)
}

/// Ask for a pipe buffer of at least `bytes` (`F_SETPIPE_SZ`); returns the size granted.
/// Unprivileged processes are capped by `/proc/sys/fs/pipe-max-size`.
pub fn set_pipe_capacity(fd: BorrowedFd<'_>, bytes: usize) -> SysResult<usize> {
    let bytes = bytes.min(libc::c_int::MAX as usize) as libc::c_int;
    // SAFETY: F_SETPIPE_SZ takes an int argument; `fd` is open.
    cvt(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETPIPE_SZ, bytes) }).map(|n| n as usize)
}

/// Whether a process with this pid exists (`kill(pid, 0)`; `EPERM` means it exists).
pub fn process_alive(pid: i32) -> bool {
    if pid <= 0 {
        return false;
    }
    // SAFETY: signal 0 performs only the existence and permission check.
    let r = unsafe { libc::kill(pid, 0) };
    r == 0 || Errno::last().0 == libc::EPERM
}

/// Pin the calling thread to one CPU (`sched_setaffinity`); false if that is not allowed.
pub fn pin_to_cpu(cpu: usize) -> bool {
    if cpu >= libc::CPU_SETSIZE as usize {
        return false;
    }
    // SAFETY: a zeroed cpu_set_t is a valid empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `cpu` is below CPU_SETSIZE, checked above.
    unsafe { libc::CPU_SET(cpu, &mut set) };
    // SAFETY: `set` is a valid cpu_set_t of the size passed; pid 0 is the calling thread.
    unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) == 0 }
}

/// CPUs this process may run on.
pub fn allowed_cpus() -> Vec<usize> {
    // SAFETY: a zeroed cpu_set_t is a valid empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is valid for the kernel to fill, of the size passed.
    let ok =
        unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) }
            == 0;
    if !ok {
        return Vec::new();
    }
    // SAFETY: CPU_ISSET only reads the set; every index is below CPU_SETSIZE.
    (0..libc::CPU_SETSIZE as usize).filter(|&c| unsafe { libc::CPU_ISSET(c, &set) }).collect()
}

/// CPU time (user + system) this process has used so far (`getrusage(RUSAGE_SELF)`).
pub fn cpu_time() -> Duration {
    let mut ru = MaybeUninit::<libc::rusage>::uninit();
    // SAFETY: `ru` is valid for getrusage to fill.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, ru.as_mut_ptr()) } != 0 {
        return Duration::ZERO;
    }
    // SAFETY: getrusage succeeded and filled the struct.
    let ru = unsafe { ru.assume_init() };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// `ppoll(2)` on many descriptors until `deadline` (`None`: forever); the number ready
/// (0 on time-out). `EINTR` is retried with the time that is left.
#[doc(alias = "ppoll")]
pub fn poll_many(fds: &mut [libc::pollfd], deadline: Option<Instant>) -> SysResult<usize> {
    loop {
        let ts;
        let tsp = match deadline {
            None => std::ptr::null(),
            Some(d) => {
                ts = timespec(d.saturating_duration_since(Instant::now()));
                &ts as *const libc::timespec
            }
        };
        // SAFETY: `fds` is a valid array of its length; `tsp` is null or points to `ts`.
        let r = unsafe {
            libc::ppoll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, tsp, std::ptr::null())
        };
        match cvt(r) {
            Err(Errno(libc::EINTR)) => continue,
            other => return other.map(|n| n as usize),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The mode set right after creating an object never passes through a symbolic link
    /// that replaced it: the link is refused and its target keeps its mode.
    #[test]
    fn chmod_nofollow_refuses_a_symbolic_link_and_leaves_its_target_alone() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("ipcx-chmod-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir(&dir).unwrap();
        let target = dir.join("target");
        std::fs::write(&target, b"x").unwrap();
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o600)).unwrap();
        let link = dir.join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let r = chmod_nofollow(&link, 0o666);
        let mode = std::fs::metadata(&target).unwrap().permissions().mode() & 0o777;
        let fifo = dir.join("fifo");
        let made = mkfifo(&fifo, 0o640)
            .map(|()| std::fs::symlink_metadata(&fifo).unwrap().permissions().mode() & 0o777);
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(r.is_err(), "a link must be refused");
        assert_eq!(mode, 0o600, "the link's target kept its mode");
        assert_eq!(made, Ok(0o640), "a FIFO still gets its exact mode");
    }

    /// Every length around the piece size, at every offset within an 8-byte word: each
    /// byte lands where a plain copy puts it, and nothing beyond the range is touched.
    #[test]
    fn copies_in_pieces_match_a_plain_copy() {
        let src: Vec<u8> = (0..3 * COPY_PIECE + 64).map(|i| (i * 7 + i / 251) as u8).collect();
        for len in [
            0,
            1,
            7,
            COPY_PIECE - 1,
            COPY_PIECE,
            COPY_PIECE + 1,
            2 * COPY_PIECE,
            3 * COPY_PIECE + 5,
        ] {
            for off in 0..8 {
                let mut dst = vec![0xEEu8; len + 16];
                // SAFETY: `src[off..]` holds at least `len` bytes, `dst[8..]` has room for
                // them, and the two vectors are distinct.
                unsafe { copy_bytes(src.as_ptr().add(off), dst.as_mut_ptr().add(8), len) };
                assert_eq!(&dst[8..8 + len], &src[off..off + len], "len {len}, offset {off}");
                assert!(dst[..8].iter().chain(&dst[8 + len..]).all(|&b| b == 0xEE));

                let mut out = b"abc".to_vec();
                extend_bytes(&mut out, &src[off..off + len]);
                assert_eq!(&out[..3], b"abc");
                assert_eq!(&out[3..], &src[off..off + len], "extend: len {len}, offset {off}");
            }
        }
    }
}
