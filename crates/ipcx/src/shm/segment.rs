//! Raw shared-memory segments: POSIX (`shm_open`, by `/name`) and System V (`shmget`, by
//! key), with safe, bounds-checked access.

use std::os::fd::AsFd;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use super::region::{Access, Region, ShmSafe};
use crate::address::{Address, SysvKey, Target};
use crate::error::{Error, ErrorKind, Result};
use crate::sys::shm as sys;
use crate::sys::Errno;

/// Which kind of segment, and its name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SegmentName {
    /// A POSIX segment, `/name` (in `/dev/shm` on Linux).
    Posix(String),
    /// A System V segment by key, with its id once attached.
    Sysv(i32),
}

impl SegmentName {
    /// The name as an address (`shm:/name`, `sysv-shm:KEY`), for messages.
    pub fn address(&self) -> String {
        match self {
            SegmentName::Posix(n) => format!("shm:{n}"),
            SegmentName::Sysv(k) => format!("sysv-shm:{:#x}", *k as u32),
        }
    }
}

/// Removes the name of a segment this process created, on drop, unless kept.
#[derive(Debug)]
pub(crate) struct Remover {
    name: SegmentName,
    sysv_id: Option<i32>,
    remove: bool,
    /// Our entry in the registry of created objects (`ipcx ls`), best effort.
    recorded: Option<crate::registry::Recorded>,
}

impl Remover {
    pub(crate) fn keep(&mut self) {
        self.remove = false;
        if let Some(r) = self.recorded.as_mut() {
            r.keep();
        }
    }
}

impl Drop for Remover {
    fn drop(&mut self) {
        if !self.remove {
            return;
        }
        match &self.name {
            SegmentName::Posix(n) => {
                let _ = sys::shm_unlink(n);
            }
            SegmentName::Sysv(_) => {
                if let Some(id) = self.sysv_id {
                    let _ = sys::shm_rmid(id);
                }
            }
        }
    }
}

/// A mapped shared-memory segment.
///
/// The bytes are reached only by copying ([`Segment::read_bytes`], [`Segment::write_bytes`],
/// typed [`Segment::read`]/[`Segment::write`] for [`ShmSafe`] data) or as atomics
/// ([`Segment::atomic_u32`], [`Segment::atomic_u64`]): another process may change them at
/// any moment, so no `&[u8]` over them is ever handed out. The creator removes the name on
/// drop unless [`Segment::keep`] is called (a System V segment then goes when the last
/// process detaches).
#[derive(Debug)]
pub struct Segment {
    region: Region,
    remover: Remover,
    object: String,
}

fn check_name(name: &str, op: &'static str) -> Result<()> {
    let ok = name.len() > 1
        && name.starts_with('/')
        && !name[1..].contains('/')
        && !name.contains('\0')
        && name.len() <= 256;
    if ok {
        Ok(())
    } else {
        Err(Error::new(
            ErrorKind::InvalidAddress,
            op,
            format!("shm:{name}"),
            "a POSIX shared-memory name is one slash and then a name without slashes, as /telemetry",
        ))
    }
}

fn check_size(size: usize, object: &str) -> Result<()> {
    if size == 0 {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            "create",
            object,
            "a segment of size 0 cannot be mapped; give a size of at least 1 byte",
        ));
    }
    Ok(())
}

fn errno_err(op: &'static str, object: &str, e: Errno) -> Error {
    match e.0 {
        libc::ENOENT => Error::new(
            ErrorKind::NotFound,
            op,
            object,
            "no segment by this name or key; create it first (ipcx recv --create)",
        )
        .with_errno(e.0),
        libc::EEXIST => Error::new(
            ErrorKind::AlreadyExists,
            op,
            object,
            "a segment by this name or key exists already; open it, or remove it (ipcx rm) if it is stale",
        )
        .with_errno(e.0),
        libc::EACCES | libc::EPERM => Error::new(
            ErrorKind::PermissionDenied,
            op,
            object,
            "the segment's mode does not let this user open it; its creator sets the mode (?mode=0660 for a group)",
        )
        .with_errno(e.0),
        _ => Error::from_errno(op, object, e.0),
    }
}

fn access_err(op: &'static str, object: &str, a: Access, what: &str) -> Error {
    match a {
        Access::OutOfBounds => Error::new(
            ErrorKind::InvalidInput,
            op,
            object,
            format!("{what} lies outside the segment"),
        ),
        Access::ReadOnly => Error::new(
            ErrorKind::PermissionDenied,
            op,
            object,
            "the segment is mapped read-only; open it with Segment::open to write",
        ),
    }
}

/// The key of a System V address (a number, or `ftok` of a path).
pub fn sysv_key(key: &SysvKey, object: &str) -> Result<i32> {
    match key {
        SysvKey::Key(k) => Ok(*k),
        SysvKey::Ftok(p, proj) => sys::ftok(p, *proj)
            .map_err(|e| errno_err("ftok", object, e).with_hint("the key's path must exist")),
    }
}

impl Segment {
    /// Create the POSIX segment `name` (`/name`) of `size` bytes with `mode` (exactly;
    /// ipcx's default is 0600). `AlreadyExists` if it exists.
    #[doc(alias = "shm_open")]
    pub fn create(name: &str, size: usize, mode: u32) -> Result<Segment> {
        check_name(name, "create")?;
        let object = format!("shm:{name}");
        crate::error::check_mode("create", &object, mode)?;
        check_size(size, &object)?;
        let fd = sys::shm_open(name, libc::O_RDWR | libc::O_CREAT | libc::O_EXCL, mode)
            .map_err(|e| errno_err("create", &object, e))?;
        // From here on the name is ours: remove it if anything below fails.
        let recorded =
            Address::parse(&object).ok().and_then(|a| crate::registry::record(&a, "shm"));
        let remover = Remover {
            name: SegmentName::Posix(name.to_owned()),
            sysv_id: None,
            remove: true,
            recorded,
        };
        sys::ftruncate(fd.as_fd(), size as u64).map_err(|e| errno_err("create", &object, e))?;
        let map = sys::mmap_shared(fd.as_fd(), size, true)
            .map_err(|e| errno_err("create", &object, e))?;
        Ok(Segment { region: Region::from_mapping(map, true), remover, object })
    }

    /// Open the POSIX segment `name` for reading and writing. With `expected_size`, a
    /// segment of another size is refused, naming both sizes.
    pub fn open(name: &str, expected_size: Option<usize>) -> Result<Segment> {
        Segment::open_posix(name, expected_size, true)
    }

    /// Open the POSIX segment `name` read-only: writes through this mapping are refused
    /// (and the kernel would refuse them too).
    pub fn open_read_only(name: &str, expected_size: Option<usize>) -> Result<Segment> {
        Segment::open_posix(name, expected_size, false)
    }

    fn open_posix(name: &str, expected: Option<usize>, writable: bool) -> Result<Segment> {
        check_name(name, "open")?;
        let object = format!("shm:{name}");
        let flags = if writable { libc::O_RDWR } else { libc::O_RDONLY };
        let fd = sys::shm_open(name, flags, 0).map_err(|e| errno_err("open", &object, e))?;
        let st = crate::sys::fstat(fd.as_fd()).map_err(|e| errno_err("open", &object, e))?;
        let size = usize::try_from(st.size).unwrap_or(0);
        check_expected(&object, size, expected)?;
        if size == 0 {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                "open",
                &object,
                "the segment has size 0 (its creator has not sized it yet, or it is not in use)",
            ));
        }
        let map = sys::mmap_shared(fd.as_fd(), size, writable)
            .map_err(|e| errno_err("open", &object, e))?;
        let remover = Remover {
            name: SegmentName::Posix(name.to_owned()),
            sysv_id: None,
            remove: false,
            recorded: None,
        };
        Ok(Segment { region: Region::from_mapping(map, writable), remover, object })
    }

    /// Create the System V segment with `key` (not 0) of `size` bytes with `mode`.
    #[doc(alias = "shmget")]
    pub fn create_sysv(key: i32, size: usize, mode: u32) -> Result<Segment> {
        let object = SegmentName::Sysv(key).address();
        crate::error::check_mode("create", &object, mode)?;
        if key == libc::IPC_PRIVATE {
            return Err(Error::new(
                ErrorKind::InvalidAddress,
                "create",
                &object,
                "key 0 is IPC_PRIVATE; pick another key",
            ));
        }
        check_size(size, &object)?;
        let id = sys::shmget(key, size, libc::IPC_CREAT | libc::IPC_EXCL | mode as i32)
            .map_err(|e| errno_err("create", &object, e))?;
        let recorded =
            Address::parse(&object).ok().and_then(|a| crate::registry::record(&a, "sysv-shm"));
        let remover =
            Remover { name: SegmentName::Sysv(key), sysv_id: Some(id), remove: true, recorded };
        let map = sys::shmat(id, size, true).map_err(|e| errno_err("create", &object, e))?;
        Ok(Segment { region: Region::from_mapping(map, true), remover, object })
    }

    /// Open the System V segment with `key` (size checked as for [`Segment::open`]).
    pub fn open_sysv(key: i32, expected_size: Option<usize>) -> Result<Segment> {
        Segment::open_sysv_mode(key, expected_size, true)
    }

    /// Open the System V segment with `key` read-only (`SHM_RDONLY`).
    pub fn open_sysv_read_only(key: i32, expected_size: Option<usize>) -> Result<Segment> {
        Segment::open_sysv_mode(key, expected_size, false)
    }

    fn open_sysv_mode(key: i32, expected: Option<usize>, writable: bool) -> Result<Segment> {
        let object = SegmentName::Sysv(key).address();
        let id = sys::shmget(key, 0, 0).map_err(|e| errno_err("open", &object, e))?;
        let st = sys::shm_stat(id).map_err(|e| errno_err("open", &object, e))?;
        check_expected(&object, st.size, expected)?;
        let map = sys::shmat(id, st.size, writable).map_err(|e| errno_err("open", &object, e))?;
        let remover = Remover {
            name: SegmentName::Sysv(key),
            sysv_id: Some(id),
            remove: false,
            recorded: None,
        };
        Ok(Segment { region: Region::from_mapping(map, writable), remover, object })
    }

    /// Create the segment an address names (`shm:/name` or `sysv-shm:KEY`).
    pub fn create_addr(addr: &Address, size: usize) -> Result<Segment> {
        match addr.target() {
            Target::Shm(n) => Segment::create(n, size, addr.mode()?),
            Target::SysvShm(k) => {
                Segment::create_sysv(sysv_key(k, &addr.to_string())?, size, addr.mode()?)
            }
            _ => Err(Error::new(
                ErrorKind::InvalidAddress,
                "create",
                addr.to_string(),
                "not a shm: or sysv-shm: address",
            )),
        }
    }

    /// Open the segment an address names.
    pub fn open_addr(addr: &Address, expected_size: Option<usize>) -> Result<Segment> {
        match addr.target() {
            Target::Shm(n) => Segment::open(n, expected_size),
            Target::SysvShm(k) => {
                Segment::open_sysv(sysv_key(k, &addr.to_string())?, expected_size)
            }
            _ => Err(Error::new(
                ErrorKind::InvalidAddress,
                "open",
                addr.to_string(),
                "not a shm: or sysv-shm: address",
            )),
        }
    }

    /// A segment in this process's heap with the same access rules (tests, examples).
    pub fn anonymous(size: usize) -> Segment {
        Segment {
            region: Region::heap(size),
            remover: Remover {
                name: SegmentName::Posix("/anonymous".into()),
                sysv_id: None,
                remove: false,
                recorded: None,
            },
            object: "shm:(anonymous)".into(),
        }
    }

    /// Leave the segment in place when this value is dropped.
    pub fn keep(&mut self) {
        self.remover.keep();
    }

    /// Whether dropping this value removes the segment.
    pub fn is_owner(&self) -> bool {
        self.remover.remove
    }

    /// The segment as an address, for messages.
    pub fn address(&self) -> &str {
        &self.object
    }

    /// Its size in bytes.
    pub fn len(&self) -> usize {
        self.region.len()
    }

    /// Whether it is empty (never, for a mapped segment).
    pub fn is_empty(&self) -> bool {
        self.region.is_empty()
    }

    /// Whether this mapping may write.
    pub fn is_writable(&self) -> bool {
        self.region.is_writable()
    }

    /// Copy `out.len()` bytes from `offset`.
    pub fn read_bytes(&self, offset: usize, out: &mut [u8]) -> Result<()> {
        self.region.copy_out(offset, out).map_err(|a| {
            access_err("read", &self.object, a, &format!("{} bytes at offset {offset}", out.len()))
        })
    }

    /// Copy `data` to `offset`.
    pub fn write_bytes(&self, offset: usize, data: &[u8]) -> Result<()> {
        self.region.copy_in(offset, data).map_err(|a| {
            access_err(
                "write",
                &self.object,
                a,
                &format!("{} bytes at offset {offset}", data.len()),
            )
        })
    }

    /// Copy a `T` out from `offset`.
    pub fn read<T: ShmSafe>(&self, offset: usize) -> Result<T> {
        self.region.read_value(offset).map_err(|a| {
            access_err(
                "read",
                &self.object,
                a,
                &format!("a value of {} bytes at offset {offset}", std::mem::size_of::<T>()),
            )
        })
    }

    /// Copy `value` in at `offset`.
    pub fn write<T: ShmSafe>(&self, offset: usize, value: &T) -> Result<()> {
        self.region.write_value(offset, value).map_err(|a| {
            access_err(
                "write",
                &self.object,
                a,
                &format!("a value of {} bytes at offset {offset}", std::mem::size_of::<T>()),
            )
        })
    }

    /// Load the aligned `u32` at `offset` atomically (works on read-only mappings).
    pub fn load_u32(&self, offset: usize, order: Ordering) -> Result<u32> {
        self.region.load_u32(offset, order).map_err(|a| {
            access_err("read", &self.object, a, &format!("an aligned u32 at offset {offset}"))
        })
    }

    /// Load the aligned `u64` at `offset` atomically.
    pub fn load_u64(&self, offset: usize, order: Ordering) -> Result<u64> {
        self.region.load_u64(offset, order).map_err(|a| {
            access_err("read", &self.object, a, &format!("an aligned u64 at offset {offset}"))
        })
    }

    /// The aligned `u32` at `offset` as an atomic (writable mappings only).
    pub fn atomic_u32(&self, offset: usize) -> Result<&AtomicU32> {
        self.region.u32_at(offset).map_err(|a| {
            access_err("access", &self.object, a, &format!("an aligned u32 at offset {offset}"))
        })
    }

    /// The aligned `u64` at `offset` as an atomic (writable mappings only).
    pub fn atomic_u64(&self, offset: usize) -> Result<&AtomicU64> {
        self.region.u64_at(offset).map_err(|a| {
            access_err("access", &self.object, a, &format!("an aligned u64 at offset {offset}"))
        })
    }

    pub(crate) fn region(&self) -> &Region {
        &self.region
    }

    pub(crate) fn into_parts(self) -> (Region, Remover, String) {
        (self.region, self.remover, self.object)
    }
}

fn check_expected(object: &str, size: usize, expected: Option<usize>) -> Result<()> {
    match expected {
        Some(want) if want != size => Err(Error::new(
            ErrorKind::InvalidInput,
            "open",
            object,
            format!("the segment is {size} bytes, but {want} bytes were expected; open it with its real size or recreate it"),
        )),
        _ => Ok(()),
    }
}
