//! Memory-mapped files: safe shared file mappings, and a durable message log on them.
//!
//! A [`Mapping`] maps all or part of a file (or anonymous shared memory that children
//! inherit) with `MAP_SHARED`: every process mapping the same file sees the same bytes,
//! through the page cache, without a system call per access. The [`log`] module builds
//! an append-only, crash-safe message log on mappings (the `mmap:/path` address).
//!
//! ```
//! use ipcx::mmap::{MapOptions, Mapping};
//! # let dir = std::env::temp_dir().join(format!("ipcx-doc-map-{}", std::process::id()));
//! # std::fs::create_dir_all(&dir).unwrap();
//! let path = dir.join("data.bin");
//! let mut map = MapOptions::new().write(true).create(true).len(4096).open(&path)?;
//! map.write_at(100, b"hello")?;
//! map.flush()?; // msync(MS_SYNC): on the file's storage when this returns
//! let mut buf = [0u8; 5];
//! Mapping::open(&path)?.read_at(100, &mut buf)?;
//! assert_eq!(&buf, b"hello");
//! # std::fs::remove_dir_all(&dir).unwrap();
//! # Ok::<(), ipcx::Error>(())
//! ```
//!
//! ## Safe access
//!
//! Bytes another process may change at any moment are never lent out as `&[u8]`: reads
//! and writes are bounds-checked copies ([`Mapping::read_at`], [`Mapping::write_at`]),
//! and shared counters are atomics ([`Mapping::atomic_u32`], [`Mapping::atomic_u64`]).
//!
//! ## A file truncated under a mapping
//!
//! Touching a mapped page that lies wholly past the end of its file raises `SIGBUS`,
//! which would kill the process. ipcx guards every file mapping instead: the first file
//! mapping installs one process-wide `SIGBUS` handler (`sys::sigbus`) that knows the
//! address ranges of ipcx's mappings. A fault inside one of them is absorbed (a private
//! zero page is put over the faulting page, so the interrupted copy completes) and
//! flagged; every `read_at`/`write_at` checks the flag after its copy and returns
//! [`crate::ErrorKind::Corrupted`] ("the file was truncated by another process"), and
//! [`Mapping::truncated`] tells callers that use the atomics. A `SIGBUS` anywhere else is
//! passed to the handler that was installed before (Rust's own, or the default action).
//!
//! What is guaranteed: a truncation, whenever it happens, is reported by the access that
//! touched a page past the file's end (or a later one), never a crash; no system call is
//! spent on the check. What is not: bytes read from a truncated page are zeros, and bytes
//! written there are lost. The handler is process-wide: a program that installs its own
//! `SIGBUS` handler after ipcx's replaces it, and then a truncation kills the process as
//! usual. Where the guard cannot be used (its table of 1,024 mappings is full, or the
//! environment says `IPCX_SIGBUS_GUARD=0`), each access first checks the file's size with
//! `fstat(2)` instead, which leaves a window of under a microsecond between the check and
//! the copy. A caller who knows no process shrinks the file can skip that check with
//! [`Mapping::trust_size`].
//!
//! ## Flushing
//!
//! - [`Mapping::flush`] / [`Mapping::flush_range`]: `msync(MS_SYNC)`. When it returns,
//!   the modified pages in the range are written to the file's storage device (as far as
//!   the device honours cache flushes): they survive a power loss.
//! - [`Mapping::flush_async`] / [`Mapping::flush_range_async`]: `msync(MS_ASYNC)`. Only
//!   asks for write-back; on Linux the kernel already tracks dirty pages, so this returns
//!   at once and promises nothing about when the bytes reach the disk.
//! - Without any flush, stores are in the page cache at once: other processes mapping or
//!   `read(2)`ing the file see them immediately, and they survive the writer's death
//!   (even `kill -9`), but not a crash of the machine before the kernel writes them back.

pub mod crc;
pub mod log;

use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, AtomicU64};

use crate::error::{Error, ErrorKind, Result};
use crate::sys::{self, mmap::Region, Errno};

/// How [`MapOptions::open`] maps a file.
#[derive(Clone, Debug)]
pub struct MapOptions {
    write: bool,
    create: bool,
    len: Option<usize>,
    offset: u64,
    mode: u32,
}

impl Default for MapOptions {
    fn default() -> Self {
        MapOptions::new()
    }
}

impl MapOptions {
    /// Read-only, the whole file, no creation.
    pub fn new() -> MapOptions {
        MapOptions { write: false, create: false, len: None, offset: 0, mode: 0o600 }
    }
    /// Map read-write (the file is opened `O_RDWR`).
    pub fn write(mut self, yes: bool) -> MapOptions {
        self.write = yes;
        self
    }
    /// Create the file if missing (implies `write`).
    pub fn create(mut self, yes: bool) -> MapOptions {
        self.create = yes;
        self
    }
    /// Map `len` bytes; a writable mapping grows the file to `offset + len` (blocks
    /// reserved with `fallocate`) if it is shorter. Default: from `offset` to the end.
    pub fn len(mut self, len: usize) -> MapOptions {
        self.len = Some(len);
        self
    }
    /// Start the mapping at this file offset (a multiple of the page size).
    pub fn offset(mut self, offset: u64) -> MapOptions {
        self.offset = offset;
        self
    }
    /// The mode of a created file (0600 by default).
    pub fn mode(mut self, mode: u32) -> MapOptions {
        self.mode = mode;
        self
    }

    /// Open (or create) the file and map it.
    #[doc(alias = "mmap")]
    pub fn open(&self, path: impl AsRef<Path>) -> Result<Mapping> {
        let path = path.as_ref();
        let name = path.display().to_string();
        let write = self.write || self.create;
        let mut flags = if write { libc::O_RDWR } else { libc::O_RDONLY };
        if self.create {
            crate::error::check_mode("open", &name, self.mode)?;
            flags |= libc::O_CREAT;
        }
        let fd = sys::open(path, flags, self.mode).map_err(|e| match e.0 {
            libc::EISDIR => is_dir_error(&name),
            _ => Error::from_errno("open", &name, e.0),
        })?;
        let st = sys::fstat(fd.as_fd()).map_err(|e| Error::from_errno("open", &name, e.0))?;
        if st.file_type() == libc::S_IFDIR {
            return Err(is_dir_error(&name));
        }
        if st.file_type() != libc::S_IFREG {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                "map",
                &name,
                format!(
                    "the path is {}, not a regular file; only files can be mapped",
                    st.type_name()
                ),
            ));
        }
        let page = sys::mmap::page_size() as u64;
        if self.offset % page != 0 {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                "map",
                &name,
                format!("offset {} is not a multiple of the page size ({page})", self.offset),
            ));
        }
        let size = st.size.max(0) as u64;
        let len = match self.len {
            Some(l) => l,
            None => usize::try_from(size.saturating_sub(self.offset)).unwrap_or(usize::MAX),
        };
        if len == 0 {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                "map",
                &name,
                if self.len.is_none() {
                    format!("the file has no bytes to map from offset {} (its size is {size}); give a length with a writable mapping to grow it", self.offset)
                } else {
                    "a mapping of zero bytes is not possible (mmap(2) refuses it); ask for at least one byte".to_owned()
                },
            ));
        }
        let want = self.offset.checked_add(len as u64).ok_or_else(|| {
            Error::new(ErrorKind::InvalidInput, "map", &name, "offset + length overflows")
        })?;
        if want > size {
            if !write {
                return Err(Error::new(
                    ErrorKind::InvalidInput,
                    "map",
                    &name,
                    format!("bytes {}..{want} are past the end of the file ({size} bytes); a read-only mapping cannot grow it", self.offset),
                ));
            }
            grow_file(fd.as_fd(), want).map_err(|e| grow_error(&name, want, e))?;
        }
        let region = sys::mmap::map(Some(fd.as_fd()), len, self.offset, write)
            .map_err(|e| Error::from_errno("map", &name, e.0))?;
        Ok(Mapping {
            region,
            file: Some(fd),
            path: Some(path.to_owned()),
            name,
            offset: self.offset,
            trust: false,
        })
    }
}

/// Grow a file to `len` bytes with its blocks reserved (`fallocate`), so stores through a
/// mapping cannot later fail for want of disk space (which would be `SIGBUS`); where the
/// file system cannot reserve, a sparse `ftruncate`.
fn grow_file(fd: std::os::fd::BorrowedFd<'_>, len: u64) -> std::result::Result<(), Errno> {
    match sys::mmap::fallocate(fd, len) {
        Err(Errno(libc::EOPNOTSUPP)) => sys::mmap::ftruncate(fd, len),
        other => other,
    }
}

fn is_dir_error(name: &str) -> Error {
    Error::new(
        ErrorKind::InvalidInput,
        "map",
        name,
        "the path is a directory; only regular files can be mapped",
    )
}

fn grow_error(name: &str, want: u64, e: Errno) -> Error {
    let mut err = Error::new(
        ErrorKind::Other,
        "grow",
        name,
        format!(
            "cannot make the file {want} bytes long: {}",
            std::io::Error::from_raw_os_error(e.0)
        ),
    )
    .with_errno(e.0);
    if e.0 == libc::EFBIG || e.0 == libc::ENOSPC {
        err =
            err.with_hint("the file system is full or the file size limit (ulimit -f) is reached");
    }
    err
}

/// A shared mapping of a file or of anonymous memory. Unmapped on drop.
#[derive(Debug)]
pub struct Mapping {
    region: Region,
    file: Option<OwnedFd>,
    path: Option<PathBuf>,
    name: String,
    offset: u64,
    trust: bool,
}

impl Mapping {
    /// Map a whole existing file read-only.
    pub fn open(path: impl AsRef<Path>) -> Result<Mapping> {
        MapOptions::new().open(path)
    }

    /// Map a whole existing file read-write.
    pub fn open_rw(path: impl AsRef<Path>) -> Result<Mapping> {
        MapOptions::new().write(true).open(path)
    }

    /// Anonymous shared memory of `len` bytes, zero-filled (`MAP_SHARED | MAP_ANONYMOUS`).
    /// A child made by `fork(2)` shares it with this process: the classic parent/child
    /// shared area. `exec` drops all mappings, so a child that runs another program must
    /// map a file instead.
    #[doc(alias = "MAP_ANONYMOUS")]
    pub fn anonymous(len: usize) -> Result<Mapping> {
        let region = sys::mmap::map(None, len, 0, true).map_err(|e| {
            if e.0 == libc::EINVAL && len == 0 {
                Error::new(
                    ErrorKind::InvalidInput,
                    "map",
                    "anonymous memory",
                    "a mapping of zero bytes is not possible (mmap(2) refuses it)",
                )
            } else {
                Error::from_errno("map", "anonymous memory", e.0)
            }
        })?;
        Ok(Mapping {
            region,
            file: None,
            path: None,
            name: "anonymous memory".into(),
            offset: 0,
            trust: true,
        })
    }

    /// The mapped length in bytes.
    pub fn len(&self) -> usize {
        self.region.len()
    }

    /// Always false: a mapping has at least one byte.
    pub fn is_empty(&self) -> bool {
        self.region.is_empty()
    }

    /// The file offset the mapping starts at.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The mapped file, if any.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Whether the mapping is writable.
    pub fn is_writable(&self) -> bool {
        self.region.writable()
    }

    /// Skip the `fstat` size check before each access (see the module docs). Only for
    /// files no process shrinks: a truncation then kills this process with `SIGBUS`.
    pub fn trust_size(&mut self, yes: bool) {
        self.trust = yes || self.file.is_none();
    }

    /// Check that `[off, off+n)` lies in the mapping and that no access has found the
    /// file truncated. Where the `SIGBUS` guard is not available (see the module docs),
    /// also check with an `fstat` that the file still covers the range.
    pub fn check(&self, off: usize, n: usize) -> Result<()> {
        self.check_bounds(off, n, "access")?;
        self.check_truncated("access")?;
        if self.trust || self.region.guarded() {
            return Ok(());
        }
        self.check_file(off, n)
    }

    /// Whether an access found the file truncated by another process (a page past its
    /// end was touched). From then on reads may give zeros and writes are lost.
    pub fn truncated(&self) -> bool {
        self.region.truncated()
    }

    /// `Corrupted` if an access found the file truncated.
    pub fn check_truncated(&self, op: &'static str) -> Result<()> {
        if !self.region.truncated() {
            return Ok(());
        }
        Err(Error::new(
            ErrorKind::Corrupted,
            op,
            &self.name,
            "the file was truncated by another process while mapped (or, on a file system without fallocate, the disk is full): an access fell past what the file backs (caught instead of SIGBUS), so bytes read there are zeros and bytes written there are lost; reopen the file",
        ))
    }

    fn check_bounds(&self, off: usize, n: usize, op: &'static str) -> Result<()> {
        if off.checked_add(n).is_none_or(|e| e > self.len()) {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                op,
                &self.name,
                format!(
                    "bytes {off}..{} are outside the mapping of {} bytes",
                    off.saturating_add(n),
                    self.len()
                ),
            ));
        }
        Ok(())
    }

    fn check_file(&self, off: usize, n: usize) -> Result<()> {
        let Some(fd) = &self.file else { return Ok(()) };
        let st =
            sys::fstat(fd.as_fd()).map_err(|e| Error::from_errno("access", &self.name, e.0))?;
        let page = sys::mmap::page_size() as u64;
        let size = st.size.max(0) as u64;
        // Pages partly inside the file are readable (the rest reads as zeros).
        let backed = size.div_ceil(page) * page;
        let need = self.offset + (off + n) as u64;
        if n > 0 && need > backed {
            return Err(Error::new(
                ErrorKind::Corrupted,
                "access",
                &self.name,
                format!(
                    "the file was truncated to {size} bytes by another process while mapped; bytes up to {need} are gone, so ipcx refused to touch them (that would raise SIGBUS)"
                ),
            ));
        }
        Ok(())
    }

    /// Copy `buf.len()` bytes at `off` out of the mapping.
    pub fn read_at(&self, off: usize, buf: &mut [u8]) -> Result<()> {
        self.check(off, buf.len())?;
        self.region.read(off, buf);
        self.check_truncated("read")
    }

    /// Copy `data` into the mapping at `off`.
    pub fn write_at(&self, off: usize, data: &[u8]) -> Result<()> {
        if !self.region.writable() {
            return Err(self.read_only("write"));
        }
        self.check(off, data.len())?;
        self.region.write(off, data);
        self.check_truncated("write")
    }

    fn read_only(&self, op: &'static str) -> Error {
        Error::new(
            ErrorKind::PermissionDenied,
            op,
            &self.name,
            "the mapping is read-only; map it with MapOptions::write(true)",
        )
    }

    /// The shared 32-bit atomic at `off` (4-aligned), e.g. a futex word or a counter.
    /// The file-size check is made once, here.
    pub fn atomic_u32(&self, off: usize) -> Result<&AtomicU32> {
        self.check(off, 4)?;
        self.region.atomic_u32(off).ok_or_else(|| self.bad_atomic(off, 4))
    }

    /// The shared 64-bit atomic at `off` (8-aligned).
    pub fn atomic_u64(&self, off: usize) -> Result<&AtomicU64> {
        self.check(off, 8)?;
        self.region.atomic_u64(off).ok_or_else(|| self.bad_atomic(off, 8))
    }

    fn bad_atomic(&self, off: usize, align: usize) -> Error {
        if !self.region.writable() {
            return self.read_only("access");
        }
        Error::new(
            ErrorKind::InvalidInput,
            "access",
            &self.name,
            format!("offset {off} is not a multiple of {align}, as an atomic needs"),
        )
    }

    /// `msync(MS_SYNC)` of the whole mapping: written to storage when this returns.
    #[doc(alias = "msync")]
    pub fn flush(&self) -> Result<()> {
        self.flush_range(0, self.len())
    }

    /// `msync(MS_ASYNC)` of the whole mapping: write-back scheduled, nothing promised.
    pub fn flush_async(&self) -> Result<()> {
        self.flush_range_async(0, self.len())
    }

    /// `msync(MS_SYNC)` of the pages covering `[off, off+len)`.
    pub fn flush_range(&self, off: usize, len: usize) -> Result<()> {
        self.sync(off, len, true)
    }

    /// `msync(MS_ASYNC)` of the pages covering `[off, off+len)`.
    pub fn flush_range_async(&self, off: usize, len: usize) -> Result<()> {
        self.sync(off, len, false)
    }

    fn sync(&self, off: usize, len: usize, wait: bool) -> Result<()> {
        self.check_bounds(off, len, "flush")?;
        self.region.sync(off, len, wait).map_err(|e| Error::from_errno("flush", &self.name, e.0))
    }

    /// Grow (or shrink) the mapping to `new_len` bytes, growing the file first if it is
    /// shorter (`fallocate`, which reserves the blocks, then `mremap`). Only writable file
    /// mappings grow; a full disk is then an error here, not `SIGBUS` at a later store.
    pub fn resize(&mut self, new_len: usize) -> Result<()> {
        let Some(fd) = &self.file else {
            return Err(Error::new(
                ErrorKind::Unsupported,
                "grow",
                &self.name,
                "anonymous shared memory cannot grow (its size is fixed when it is made)",
            ));
        };
        if !self.region.writable() {
            return Err(self.read_only("grow"));
        }
        if new_len == 0 {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                "grow",
                &self.name,
                "a mapping of zero bytes is not possible",
            ));
        }
        let st = sys::fstat(fd.as_fd()).map_err(|e| Error::from_errno("grow", &self.name, e.0))?;
        let want = self.offset + new_len as u64;
        if (st.size.max(0) as u64) < want {
            // Reserve the new blocks as well as growing the size.
            grow_file(fd.as_fd(), want).map_err(|e| grow_error(&self.name, want, e))?;
        }
        self.region.remap(new_len).map_err(|e| Error::from_errno("grow", &self.name, e.0))
    }

    /// The size of the file now (`fstat`), or the mapping's length for anonymous memory.
    pub fn file_size(&self) -> Result<u64> {
        match &self.file {
            None => Ok(self.len() as u64),
            Some(fd) => sys::fstat(fd.as_fd())
                .map(|st| st.size.max(0) as u64)
                .map_err(|e| Error::from_errno("stat", &self.name, e.0)),
        }
    }

    pub(crate) fn region(&self) -> &Region {
        &self.region
    }

    pub(crate) fn fd(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
        self.file.as_ref().map(|f| f.as_fd())
    }
}
