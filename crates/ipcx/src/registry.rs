//! The registry of objects ipcx created, so `ipcx ls` can say who made them and whether
//! that process still lives, and `ipcx rm --stale` can clean up after a crash.
//!
//! Each object ipcx creates by name (a FIFO, a socket file, a POSIX queue or shared-memory
//! object, a System V key, a log file) gets one small entry file in a per-user directory:
//!
//! - `$IPCX_REGISTRY` if set (tests use it to get a private registry), else
//! - `$XDG_RUNTIME_DIR/ipcx` if `XDG_RUNTIME_DIR` is set (the per-user runtime directory
//!   that the login manager creates 0700 and empties at logout), else
//! - `/tmp/ipcx-registry-UID`.
//!
//! The directory is created mode 0700 and, before every use, checked with `lstat` to be a
//! real directory (not a symbolic link), owned by the effective user and closed to group
//! and others; otherwise the registry is not used (someone could have planted it). It is
//! removed again when its last entry goes, so nothing is left in `/tmp` after a clean run.
//!
//! An entry holds the object's address, its kind, the creator's [`OwnerToken`] (pid and
//! process start time, field 22 of `/proc/PID/stat`, so a pid reused by an unrelated
//! process is not mistaken for a live owner), the uid and the creation time, as
//! `key=value` lines (see `docs/RELIABILITY.md`). It is written to a temporary file
//! (`O_EXCL | O_NOFOLLOW`, mode 0600) and renamed into place, so a reader never sees half.
//!
//! **Best effort.** The registry is bookkeeping for operators: a failure to record or
//! forget (a full disk, a hostile directory) never makes an IPC call fail. The creator's
//! guard ([`Recorded`]) forgets the entry when the object is removed; an entry whose
//! creator died is what `ipcx rm --stale` looks for. A kept object (`--keep`,
//! `OpenOptions::keep`) is marked `kept=1` and left alone by `--stale`.
//!
//! A mechanism joins with one line where it creates its object and one field in its owner
//! guard:
//!
//! ```no_run
//! # let addr = ipcx::Address::parse("fifo:/tmp/x").unwrap();
//! let recorded = ipcx::registry::record(&addr, "fifo"); // Option<Recorded>; drop forgets
//! ```

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::address::{Address, SysvKey, Target};
use crate::error::{Error, ErrorKind, Result};
use crate::sys::{self, ops, Errno};

/// Which process created an object: its pid and its start time, so that a later process
/// that happens to get the same pid is not taken for the creator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OwnerToken {
    /// The creator's process id.
    pub pid: i32,
    /// The creator's start time in clock ticks after boot (`/proc/PID/stat` field 22);
    /// 0 where `/proc` is not available.
    pub start: u64,
}

/// A process's state letter and start time from `/proc/PID/stat`, or `None` if there is
/// no such process.
fn proc_stat(pid: i32) -> Option<(char, u64)> {
    sys::process::stat(pid)
}

impl OwnerToken {
    /// The token of the calling process.
    pub fn current() -> OwnerToken {
        let pid = std::process::id() as i32;
        OwnerToken { pid, start: proc_stat(pid).map_or(0, |(_, s)| s) }
    }

    /// The token of a running process, or `None` if there is none with this pid.
    pub fn of(pid: i32) -> Option<OwnerToken> {
        if pid <= 0 {
            return None;
        }
        proc_stat(pid).map(|(_, start)| OwnerToken { pid, start })
    }

    /// Whether the creator still runs: a process with this pid exists, is not a zombie,
    /// and started when the creator did. Without `/proc`, only the pid is checked.
    pub fn is_alive(&self) -> bool {
        if self.pid <= 0 {
            return false;
        }
        match proc_stat(self.pid) {
            Some((state, start)) => {
                !matches!(state, 'Z' | 'X') && (self.start == 0 || start == self.start)
            }
            None if Path::new("/proc/self/stat").exists() => false,
            None => sys::process_alive(self.pid),
        }
    }
}

/// One object ipcx created, as the registry remembers it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The object's address, without options other than `proj` (`fifo:/tmp/jobs`).
    pub address: String,
    /// Its kind: the address scheme (`fifo`, `unix`, `sysv-mq`, `shm`, `mmap`, ...).
    pub kind: String,
    /// The creating process.
    pub owner: OwnerToken,
    /// The creator's effective uid.
    pub uid: u32,
    /// When it was created, in seconds since the Unix epoch.
    pub created: u64,
    /// Whether the creator chose to keep it after exiting (`--keep`).
    pub kept: bool,
    /// For System V objects, the numeric key (resolved from `ftok` where the address has
    /// a path).
    pub key: Option<i32>,
    /// For objects with a path (FIFO, socket file, log): device, inode and birth time in
    /// nanoseconds (0 where the file system does not keep one), so a different file made
    /// at the same name later (even one given the same inode number) is not taken for it.
    pub inode: Option<(u64, u64, u64)>,
}

impl Entry {
    fn to_text(&self) -> String {
        let mut s = format!(
            "address={}\nkind={}\npid={}\nstart={}\nuid={}\ncreated={}\nkept={}\n",
            self.address,
            self.kind,
            self.owner.pid,
            self.owner.start,
            self.uid,
            self.created,
            u8::from(self.kept)
        );
        if let Some(k) = self.key {
            s.push_str(&format!("key={k}\n"));
        }
        if let Some((dev, ino, born)) = self.inode {
            s.push_str(&format!("inode={dev}:{ino}:{born}\n"));
        }
        s
    }

    /// Parse an entry file; `None` if any field is missing or malformed.
    fn from_text(text: &str) -> Option<Entry> {
        let get = |k: &str| {
            text.lines().find_map(|l| l.strip_prefix(k).and_then(|r| r.strip_prefix('=')))
        };
        Some(Entry {
            address: get("address")?.to_owned(),
            kind: get("kind")?.to_owned(),
            owner: OwnerToken {
                pid: get("pid")?.parse().ok()?,
                start: get("start")?.parse().ok()?,
            },
            uid: get("uid")?.parse().ok()?,
            created: get("created")?.parse().ok()?,
            kept: get("kept")? == "1",
            key: match get("key") {
                Some(k) => Some(k.parse().ok()?),
                None => None,
            },
            inode: match get("inode") {
                Some(v) => {
                    let mut f = v.split(':').map(str::parse::<u64>);
                    Some((f.next()?.ok()?, f.next()?.ok()?, f.next()?.ok()?))
                }
                None => None,
            },
        })
    }

    /// Seconds since the object was created.
    pub fn age_secs(&self) -> u64 {
        now_secs().saturating_sub(self.created)
    }

    /// Whether what is at the entry's path now is the very file that was recorded
    /// (`None` when the entry has no path or the path is empty).
    pub fn same_object(&self) -> Option<bool> {
        self.inode?;
        let addr = Address::parse(&self.address).ok()?;
        let now = file_id(crate::address::target_path(addr.target())?)?;
        Some(Some(now) == self.inode)
    }

    /// Whether the object is still there: `Some(false)` only when it certainly is not
    /// (nothing at the path, no such key or name), `None` when that cannot be told.
    pub fn object_exists(&self) -> Option<bool> {
        let addr = Address::parse(&self.address).ok()?;
        let gone = |e: Errno| if e.0 == libc::ENOENT { Some(false) } else { None };
        match addr.target() {
            Target::Fifo(p)
            | Target::Mmap(p)
            | Target::Unix(_, crate::address::UnixName::Path(p)) => match sys::lstat(p) {
                Ok(_) => Some(self.inode.is_none() || file_id(p) == self.inode),
                Err(e) => gone(e),
            },
            Target::SysvMq(_) => ops::msg_id(self.key?).map_or_else(gone, |_| Some(true)),
            Target::SysvShm(_) => ops::shm_id(self.key?).map_or_else(gone, |_| Some(true)),
            Target::PosixMq(n) => ops::mq_stat(n).map_or_else(gone, |_| Some(true)),
            Target::Shm(n) => sys::lstat(&Path::new("/dev/shm").join(n.trim_start_matches('/')))
                .map_or_else(gone, |_| Some(true)),
            _ => None,
        }
    }
}

/// Device, inode and birth time (ns since the epoch, 0 if unknown) of the file at `p`,
/// not following a final link. The birth time (`statx`) tells apart two files that got
/// the same inode number one after the other.
pub fn file_id(p: &Path) -> Option<(u64, u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let md = std::fs::symlink_metadata(p).ok()?;
    let born = md
        .created()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos() as u64);
    Some((md.dev(), md.ino(), born))
}

fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn fnv1a64(data: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in data {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// The address as the registry stores it: options dropped (they do not change which
/// object it is), except `proj`, which is part of an `ftok` key.
pub fn object_address(addr: &Address) -> String {
    let s = addr.to_string();
    let mut base = s.split('?').next().unwrap_or(&s).to_owned();
    if let Some(p) = addr.param("proj") {
        base.push_str(&format!("?proj={p}"));
    }
    base
}

/// The System V key an address names, resolving an `ftok` path if the file exists.
pub fn sysv_key(addr: &Address) -> Option<i32> {
    match addr.target() {
        Target::SysvMq(k) | Target::SysvShm(k) => match k {
            SysvKey::Key(n) => Some(*n),
            SysvKey::Ftok(p, proj) => ops::ftok(p, *proj).ok(),
        },
        _ => None,
    }
}

/// The name an entry is stored under: System V objects by kind and key (two addresses
/// for the same key are one object), others by their address.
fn entry_id(addr: &Address) -> String {
    match (addr.target(), sysv_key(addr)) {
        (Target::SysvMq(_) | Target::SysvShm(_), Some(k)) => format!("{}:{k}", addr.scheme()),
        _ => object_address(addr),
    }
}

/// A registry directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Registry {
    dir: PathBuf,
}

impl Default for Registry {
    fn default() -> Registry {
        Registry { dir: Registry::default_dir() }
    }
}

impl Registry {
    /// The calling user's registry directory (see the module documentation).
    pub fn default_dir() -> PathBuf {
        if let Some(d) = std::env::var_os("IPCX_REGISTRY").filter(|d| !d.is_empty()) {
            return PathBuf::from(d);
        }
        if let Some(d) = std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
            return PathBuf::from(d).join("ipcx");
        }
        std::env::temp_dir().join(format!("ipcx-registry-{}", ops::euid()))
    }

    /// A registry in `dir` (created on first use).
    pub fn at(dir: impl Into<PathBuf>) -> Registry {
        Registry { dir: dir.into() }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn err(&self, op: &'static str, e: Errno) -> Error {
        Error::from_errno(op, format!("registry {}", self.dir.display()), e.0)
    }

    /// Check that the directory is ours alone: a real directory, owned by us, mode 0700.
    fn check_dir(&self, op: &'static str) -> Result<()> {
        let st = sys::lstat(&self.dir).map_err(|e| self.err(op, e))?;
        let why = if st.file_type() != libc::S_IFDIR {
            Some(format!("it is {}, not a directory", st.type_name()))
        } else if st.uid != ops::euid() {
            Some(format!("it belongs to uid {}, not to you (uid {})", st.uid, ops::euid()))
        } else if st.mode & 0o077 != 0 {
            Some(format!("its mode {:04o} lets other users in", st.mode & 0o7777))
        } else {
            None
        };
        match why {
            None => Ok(()),
            Some(why) => Err(Error::new(
                ErrorKind::PermissionDenied,
                op,
                format!("registry {}", self.dir.display()),
                format!("{why}; ipcx will not use it (remove it, or set IPCX_REGISTRY)"),
            )),
        }
    }

    fn ensure_dir(&self) -> Result<()> {
        match ops::mkdir(&self.dir, 0o700) {
            Ok(()) | Err(Errno(libc::EEXIST)) => self.check_dir("record"),
            Err(e) => Err(self.err("record", e)),
        }
    }

    fn file_for(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{:016x}.entry", fnv1a64(id.as_bytes())))
    }

    fn write_entry(&self, file: &Path, entry: &Entry) -> Result<()> {
        static SERIAL: AtomicU32 = AtomicU32::new(0);
        let tmp = self.dir.join(format!(
            ".{}.{}.{}.tmp",
            file.file_name().and_then(|n| n.to_str()).unwrap_or("entry"),
            std::process::id(),
            SERIAL.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = sys::unlink(&tmp);
        let flags = libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW;
        let fd = sys::open(&tmp, flags, 0o600).map_err(|e| self.err("record", e))?;
        let written = File::from(fd).write_all(entry.to_text().as_bytes());
        let res = match written {
            Ok(()) => ops::rename(&tmp, file).map_err(|e| self.err("record", e)),
            Err(e) => Err(Error::from_errno(
                "record",
                file.display().to_string(),
                e.raw_os_error().unwrap_or(libc::EIO),
            )),
        };
        if res.is_err() {
            let _ = sys::unlink(&tmp);
        }
        res
    }

    /// Record that the calling process created the object at `addr`, of `kind`. An entry
    /// already there for the same object (left by a creator that crashed) is replaced.
    pub fn record(&self, addr: &Address, kind: &str) -> Result<Recorded> {
        let address = object_address(addr);
        if address.contains('\n') {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                "record",
                address,
                "an address with a newline cannot be recorded",
            ));
        }
        let entry = Entry {
            address,
            kind: kind.to_owned(),
            owner: OwnerToken::current(),
            uid: ops::euid(),
            created: now_secs(),
            kept: false,
            key: sysv_key(addr),
            inode: crate::address::target_path(addr.target()).and_then(file_id),
        };
        let file = self.file_for(&entry_id(addr));
        // The directory may vanish between our mkdir and the write, when another
        // process forgets the last entry at that moment: make it again.
        let mut last = None;
        for _ in 0..50 {
            let attempt = self.ensure_dir().and_then(|()| {
                self.prune();
                self.write_entry(&file, &entry)
            });
            match attempt {
                Ok(()) => return Ok(Recorded { registry: self.clone(), file, entry, done: false }),
                Err(e) if e.errno() == Some(libc::ENOENT) => {
                    last = Some(e);
                    std::thread::yield_now();
                }
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| self.err("record", Errno(libc::ENOENT))))
    }

    /// Every entry, in no particular order. Unreadable or malformed entries are skipped.
    pub fn list(&self) -> Vec<Entry> {
        if self.check_dir("list").is_err() {
            return Vec::new();
        }
        let Ok(rd) = std::fs::read_dir(&self.dir) else { return Vec::new() };
        let mut out = Vec::new();
        for ent in rd.flatten() {
            let path = ent.path();
            if path.extension().and_then(|e| e.to_str()) != Some("entry") {
                continue;
            }
            // Read only regular files of ours, never through a link.
            match sys::lstat(&path) {
                Ok(st) if st.file_type() == libc::S_IFREG && st.uid == ops::euid() => {}
                _ => continue,
            }
            if let Some(e) = std::fs::read_to_string(&path).ok().and_then(|t| Entry::from_text(&t))
            {
                out.push(e);
            }
        }
        out
    }

    /// The entry for the object at `addr`, if any.
    pub fn find(&self, addr: &Address) -> Option<Entry> {
        self.read(&self.file_for(&entry_id(addr)))
    }

    fn read(&self, file: &Path) -> Option<Entry> {
        match sys::lstat(file) {
            Ok(st) if st.file_type() == libc::S_IFREG && st.uid == ops::euid() => {}
            _ => return None,
        }
        std::fs::read_to_string(file).ok().and_then(|t| Entry::from_text(&t))
    }

    /// Forget the object at `addr` if the calling process recorded it (another creator's
    /// entry for the same name is left alone).
    pub fn forget(&self, addr: &Address) {
        let file = self.file_for(&entry_id(addr));
        if self.read(&file).is_some_and(|e| e.owner == OwnerToken::current()) {
            self.remove_file(&file);
        }
    }

    /// Forget an entry whoever made it (`ipcx rm`, after removing the object).
    pub fn remove_entry(&self, entry: &Entry) {
        let id = match Address::parse(&entry.address) {
            Ok(a) => entry_id(&a),
            Err(_) => return,
        };
        let file = self.file_for(&id);
        if self.read(&file).is_some_and(|e| e == *entry) {
            self.remove_file(&file);
        }
    }

    /// Forget entries whose objects are certainly gone (removed by hand after `keep`,
    /// say), whoever made them: such an entry describes nothing.
    pub fn prune(&self) {
        for e in self.list() {
            if e.object_exists() == Some(false) {
                if let Ok(a) = Address::parse(&e.address) {
                    let _ = sys::unlink(&self.file_for(&entry_id(&a)));
                }
            }
        }
    }

    fn remove_file(&self, file: &Path) {
        // Best effort: an entry already gone leaves nothing to do; the directory stays if
        // other entries remain (ENOTEMPTY) or another process is writing one.
        let _ = sys::unlink(file);
        self.prune();
        let _ = ops::rmdir(&self.dir);
    }
}

/// The creator's handle on its registry entry: forgets it on drop unless kept.
#[derive(Debug)]
pub struct Recorded {
    registry: Registry,
    file: PathBuf,
    entry: Entry,
    done: bool,
}

impl Recorded {
    /// The object outlives its creator on purpose: mark the entry kept, and leave it when
    /// this handle is dropped (`ipcx rm --stale` then leaves it alone too).
    pub fn keep(&mut self) {
        if !self.done {
            self.entry.kept = true;
            let _ = self.registry.write_entry(&self.file, &self.entry);
            self.done = true;
        }
    }

    /// The entry as recorded.
    pub fn entry(&self) -> &Entry {
        &self.entry
    }
}

impl Drop for Recorded {
    fn drop(&mut self) {
        if !self.done && self.registry.read(&self.file).is_some_and(|e| e.owner == self.entry.owner)
        {
            self.registry.remove_file(&self.file);
        }
    }
}

/// Record, best effort, in the calling user's registry that this process created the
/// object at `addr`. `None` when the registry cannot be used; IPC goes on regardless.
pub fn record(addr: &Address, kind: &str) -> Option<Recorded> {
    Registry::default().record(addr, kind).ok()
}

/// Forget, best effort, the object at `addr` if this process recorded it.
pub fn forget(addr: &Address) {
    Registry::default().forget(addr)
}

/// Every entry of the calling user's registry.
pub fn list() -> Vec<Entry> {
    Registry::default().list()
}

/// Forget, best effort, the entry for the object at `addr` whoever made it: for code that
/// has just removed the object (a log removed with `ipcx::mmap::log::remove`).
pub fn forget_removed(addr: &Address) {
    let reg = Registry::default();
    if let Some(e) = reg.find(addr) {
        reg.remove_entry(&e);
    }
}

/// Forget, best effort, every entry of the calling user's registry whose object is
/// certainly gone, and remove the directory if that leaves it empty (tests call this
/// after removing what they made, so no registry directory is left in `/tmp`).
pub fn tidy() {
    let reg = Registry::default();
    reg.prune();
    let _ = ops::rmdir(&reg.dir);
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Dir(PathBuf);
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
            let _ = std::fs::remove_file(&self.0);
        }
    }
    fn tmp(tag: &str) -> Dir {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        Dir(std::env::temp_dir().join(format!("ipcx-reg-{tag}-{}-{n}", std::process::id())))
    }

    #[test]
    fn the_current_process_is_alive_and_a_reused_pid_is_not() {
        let me = OwnerToken::current();
        assert!(me.start > 0);
        assert!(me.is_alive());
        assert_eq!(OwnerToken::of(me.pid), Some(me));
        let reused = OwnerToken { pid: me.pid, start: me.start + 1 };
        assert!(!reused.is_alive(), "same pid, other start time: not the creator");
        assert!(!OwnerToken { pid: i32::MAX, start: 1 }.is_alive());
    }

    #[test]
    fn record_list_keep_forget() {
        let d = tmp("rlf");
        let reg = Registry::at(&d.0);
        let obj = tmp("rlf-obj");
        std::fs::write(&obj.0, "").unwrap();
        let a = Address::parse(&format!("fifo:{}?framing=lines", obj.0.display())).unwrap();
        let mut r = reg.record(&a, "fifo").unwrap();
        let st = sys::lstat(&d.0).unwrap();
        assert_eq!(st.mode & 0o7777, 0o700);
        let l = reg.list();
        assert_eq!(l.len(), 1);
        assert_eq!(l[0].address, format!("fifo:{}", obj.0.display()));
        assert_eq!(l[0].owner, OwnerToken::current());
        assert!(!l[0].kept);
        let sysv = Address::parse("sysv-mq:0x4d2").unwrap();
        let r2 = reg.record(&sysv, "sysv-mq").unwrap();
        assert_eq!(reg.find(&Address::parse("sysv-mq:1234").unwrap()).unwrap().key, Some(1234));
        drop(r2);
        assert_eq!(reg.list().len(), 1);
        r.keep();
        drop(r);
        let l = reg.list();
        assert!(l[0].kept, "a kept object's entry stays, marked kept");
        reg.remove_entry(&l[0]);
        assert!(reg.list().is_empty());
        assert!(!d.0.exists(), "the directory goes with its last entry");
    }

    #[test]
    fn entries_of_objects_removed_by_hand_are_pruned() {
        let d = tmp("prune");
        let reg = Registry::at(&d.0);
        let (o1, o2) = (tmp("prune-o1"), tmp("prune-o2"));
        std::fs::write(&o1.0, "").unwrap();
        std::fs::write(&o2.0, "").unwrap();
        let a1 = Address::parse(&format!("fifo:{}", o1.0.display())).unwrap();
        let a2 = Address::parse(&format!("fifo:{}", o2.0.display())).unwrap();
        let mut r1 = reg.record(&a1, "fifo").unwrap();
        r1.keep();
        drop(r1);
        std::fs::remove_file(&o1.0).unwrap();
        assert_eq!(reg.list()[0].object_exists(), Some(false));
        let r2 = reg.record(&a2, "fifo").unwrap();
        assert_eq!(reg.list().len(), 1, "the kept entry of a removed object is pruned");
        drop(r2);
        assert!(!d.0.exists());
    }

    #[test]
    fn forget_leaves_another_creators_entry() {
        let d = tmp("other");
        let reg = Registry::at(&d.0);
        let a = Address::parse(&format!("fifo:{}", std::env::temp_dir().display())).unwrap();
        let r = reg.record(&a, "fifo").unwrap();
        let mut other = r.entry().clone();
        other.owner.start += 1;
        reg.write_entry(&reg.file_for(&entry_id(&a)), &other).unwrap();
        reg.forget(&a);
        drop(r);
        assert_eq!(reg.list(), vec![other.clone()]);
        reg.remove_entry(&other);
    }

    #[test]
    fn a_symlinked_or_open_directory_is_refused() {
        let d = tmp("hostile");
        std::fs::create_dir(&d.0).unwrap();
        let target = d.0.join("elsewhere");
        std::fs::create_dir(&target).unwrap();
        let link = d.0.join("reg");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let a = Address::parse("fifo:/tmp/x").unwrap();
        let e = Registry::at(&link).record(&a, "fifo").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::PermissionDenied, "{e}");
        assert_eq!(
            std::fs::read_dir(&target).unwrap().count(),
            0,
            "nothing written through the link"
        );
        let open = d.0.join("open");
        std::fs::create_dir(&open).unwrap();
        std::fs::set_permissions(&open, std::os::unix::fs::PermissionsExt::from_mode(0o777))
            .unwrap();
        let e = Registry::at(&open).record(&a, "fifo").unwrap_err();
        assert!(e.to_string().contains("lets other users in"), "{e}");
        assert!(Registry::at(&open).list().is_empty());
        if ops::euid() == 0 {
            let theirs = d.0.join("theirs");
            std::fs::create_dir(&theirs).unwrap();
            std::fs::set_permissions(&theirs, std::os::unix::fs::PermissionsExt::from_mode(0o700))
                .unwrap();
            std::os::unix::fs::chown(&theirs, Some(65534), Some(65534)).unwrap();
            let e = Registry::at(&theirs).record(&a, "fifo").unwrap_err();
            assert!(e.to_string().contains("belongs to uid 65534"), "{e}");
        }
    }

    #[test]
    fn concurrent_records_and_forgets_leave_nothing_behind() {
        let d = tmp("conc");
        let objs: Vec<Dir> = (0..8).map(|i| tmp(&format!("conc-o{i}"))).collect();
        for o in &objs {
            std::fs::write(&o.0, "").unwrap();
        }
        std::thread::scope(|sc| {
            for o in &objs {
                let reg = Registry::at(&d.0);
                sc.spawn(move || {
                    let a = Address::parse(&format!("fifo:{}", o.0.display())).unwrap();
                    for _ in 0..50 {
                        let r = reg.record(&a, "fifo").expect("record under contention");
                        assert!(reg.find(&a).is_some());
                        drop(r);
                    }
                });
            }
        });
        assert!(!d.0.exists(), "every entry and the directory are gone");
    }

    #[test]
    fn malformed_entries_are_skipped() {
        let d = tmp("bad");
        let reg = Registry::at(&d.0);
        let a = Address::parse(&format!("fifo:{}", std::env::temp_dir().display())).unwrap();
        let r = reg.record(&a, "fifo").unwrap();
        std::fs::write(d.0.join("0000000000000000.entry"), "address=x\npid=notanumber\n").unwrap();
        assert_eq!(reg.list().len(), 1);
        assert_eq!(Entry::from_text(""), None);
        drop(r);
    }
}
