//! The durable message log (`mmap:/path`): append-only records in memory-mapped segment
//! files, followed by any number of readers, crash-safe.
//!
//! ```
//! use ipcx::{Receiver, Sender};
//! # let dir = std::env::temp_dir().join(format!("ipcx-doc-log-{}", std::process::id()));
//! let log = format!("mmap:{}", dir.display());
//! let mut tx = ipcx::open_sender(&format!("{log}?sync=always"))?; // creates the log
//! tx.send(b"e1")?; // on disk when send returns
//! tx.send(b"e2")?;
//! let mut rx = ipcx::open_receiver(&format!("{log}?reader=audit"))?;
//! assert_eq!(rx.recv()?, b"e1");
//! drop(rx); // commits: reader `audit` has consumed e1
//! let mut rx = ipcx::open_receiver(&format!("{log}?reader=audit"))?;
//! assert_eq!(rx.recv()?, b"e2"); // resumed
//! # drop((tx, rx));
//! # ipcx::mmap::log::remove(&dir)?;
//! # Ok::<(), ipcx::Error>(())
//! ```
//!
//! ## On disk
//!
//! `mmap:/var/tmp/events.log` names a **directory** (created mode 0700, or the address's
//! `mode=` with search bits added):
//!
//! ```text
//! /var/tmp/events.log/
//!     00000000000000000001.seg   segment 1 (sealed: full, the writer moved on)
//!     00000000000000000002.seg   segment 2 (the one being appended to)
//!     audit.reader               the committed position of the reader named "audit"
//!     writer.lock                flock(2)ed by the one writer
//! ```
//!
//! Each segment is a file of fixed capacity (`?segment=BYTES`, 64 MiB by default),
//! reserved with `fallocate(2)` when it is made, so appending never runs out of space
//! halfway through a record (a full disk is reported by `send` when a new segment cannot
//! be made). A 4096-byte header (magic `IPCXLOG\0`, version, sequence number, capacity,
//! the committed end, a sealed flag, a futex word) is followed by records
//! `[u32 length][u32 CRC-32C][payload][zero padding to 8 bytes]`; the checksum covers the
//! segment's number, the length and the payload. The exact layout is in `docs/PROTOCOL.md`.
//!
//! ## Writing
//!
//! One writer at a time (an exclusive `flock` on `writer.lock`; a second writer waits,
//! at most `OpenOptions::open_timeout`). [`LogWriter::send`] copies the payload into the
//! mapping, then the record header, then publishes the new end with a store the readers
//! load with acquire ordering: a reader never sees a partial record. With `sync=always`
//! a record of 16 KiB or more goes into the file with one `pwritev(2)` instead (fewer page
//! faults; see `WRITE_BY_CALL_FROM`). `send` creates the
//! log if it does not exist. Durability (`?sync=`):
//!
//! | `sync=` | when `msync(MS_SYNC)` runs | a `send` that returned survives |
//! |---|---|---|
//! | `none` (default) | never (the kernel writes back in its own time) | the writer's death (`kill -9`); not a machine crash |
//! | `N` | after every N messages | the writer's death; a machine crash loses at most the last N-1 |
//! | `Tms`, `Ts` | at a send at least T after the last sync; a background thread syncs what a quiet writer left within T; and on close | the writer's death; a machine crash loses at most what was sent in the last T (about) |
//! | `always` | before every `send` returns | the writer's death and a machine crash |
//!
//! Segments roll over when the next record does not fit; with `?retain=N` only the
//! newest N segments are kept (older ones are removed as the writer rolls over; 0, the
//! default, keeps all).
//!
//! **Recycling.** With `retain` of 2 or more, the writer does not delete the segment that
//! retention removes at a roll-over but renames it and gives it the new number: its pages
//! are in the page cache and still mapped for writing, where a fresh segment costs a page
//! fault and a page the kernel must zero for every 4 KiB, more than writing the records
//! themselves (1 KiB records: about 3x the rate). Readers keep up to 256 MiB of segments
//! they have left mapped, and take the mapping back when a segment comes back under a new
//! number. So a log with retention works in a fixed set of files and pages; the writer's
//! and readers' resident size includes those mappings, and the disk space of a segment
//! deleted rather than recycled (by an operator, or with `retain=1`) is freed once no
//! reader holds it any more. The checksum's salt (the segment
//! number) keeps a record of a segment's earlier life from passing as a new one, after a
//! crash too.
//!
//! ## Crash safety
//!
//! A writer killed at any moment leaves at most one record past the committed end
//! (invisible to readers). When the next writer opens the log it checks every record
//! between the last verified point (the header's `checked`, advanced by every sync and by
//! a clean close) and the committed end against its checksum, cuts the log at the first
//! torn or damaged one (after a machine crash the end can be on disk before the data),
//! and appends after it. Records before the verified point are never cut: a damaged one
//! there is reported to readers as [`ErrorKind::Corrupted`].
//!
//! ## Reading
//!
//! A [`LogReader`] reads records in order and never changes the log. Where it starts:
//! - a named reader (`?reader=audit`) resumes at its committed position, kept in
//!   `audit.reader`; a new name starts at the oldest record;
//! - an anonymous reader starts at the oldest retained record;
//! - `?from=start` or `?from=end` override both (`end`: only records appended from now on).
//!
//! A named reader's position is committed when it asks for the next record (so a reader
//! that dies while handling a record gets it again: at-least-once), by
//! [`LogReader::commit`], and when it is dropped. The commit is two stores into a small
//! mapped file with two checksummed slots, so it costs no system call and a torn write
//! leaves the previous slot valid. Use one process per reader name.
//!
//! Readers map the segments read-write where they may (to raise the waiter flag in the
//! header; they write nothing else). A reader with read permission only (a log made with
//! `?mode=0644`, read by another user) maps them read-only and, unable to ask for a
//! wake-up, looks for new records every 10 ms while it waits. A named reader also needs
//! to create its position file in the log directory.
//!
//! A reader copies records straight out of its mapping of the segment (one copy into the
//! caller's buffer, then the checksum), up to the committed end it last loaded; it looks
//! at the segment header again (one atomic load) only when it has used up what it knew of. At the end of the log it looks
//! again for up to 30 µs (a busy spin that does not yield the core), then sleeps on a futex
//! word in the segment's header: it sets a waiter flag, re-checks, and sleeps; the writer
//! calls `futex(FUTEX_WAKE)` only when the flag is set, so while records flow no one makes
//! a system call to wake anyone. The writer leaving does not end a log: a receive waits
//! (or times out) for more, never `Disconnected`.
//!
//! A record whose checksum does not match (or whose length runs past the committed end)
//! is reported as [`ErrorKind::Corrupted`] naming its segment and offset; the reader stays
//! on it until told [`LogReader::skip_corrupted`] (or opened with `?skip=corrupted`, which
//! skips every damaged record and counts them in [`LogReader::corrupted_skipped`]). A
//! record whose length field is damaged cannot be stepped over, so skipping it skips the
//! rest of that segment.
//!
//! A reader whose position is in a segment that retention deleted or recycled skips to the
//! oldest retained segment; [`LogReader::skipped_segments`] tells how many segments it
//! lost. A segment recycled while the reader is in it is noticed from its header (its
//! number changed) and counts the same way; what the reader had copied before is whole
//! (the checksum, salted with the number, tells).
//!
//! ## A segment truncated by another process
//!
//! Segments are file mappings, guarded against `SIGBUS` (see [`super`]'s "A file truncated
//! under a mapping"): a reader or writer that touches a page past the end of a shrunk file
//! gets `Corrupted` ("the file was truncated by another process"), never a crash, and no
//! system call is spent on the check. A record the writer was appending when it found the
//! truncation is not published and its `send` fails; a record a reader was copying is not
//! delivered. Where the guard is unavailable, each access checks the file's size with
//! `fstat` first, with the small window that leaves. Keep the log directory private (0700
//! by default) so only its own writer and readers can touch it.

use std::io::IoSlice;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::SeqCst};
use std::time::{Duration, Instant};

use super::crc;
use super::{MapOptions, Mapping};
use crate::address::{Address, Target};
use crate::error::{Error, ErrorKind, Result};
use crate::sys::{self, Errno};
use crate::{OpenOptions, Receiver, Sender, Wait};

/// The 8 bytes every segment starts with.
pub const MAGIC: &[u8; 8] = b"IPCXLOG\0";
/// The segment format version this build reads and writes. Version 2 (this one) salts each
/// record's checksum with the segment's number, so a record left from a segment's earlier
/// life (segments are recycled) never passes as one of its current records.
pub const VERSION: u32 = 2;
/// Bytes before the first record of a segment.
pub const HEADER: u64 = 4096;
/// Bytes before each record's payload (length and checksum).
pub const RECORD_HEADER: u64 = 8;
/// The default segment capacity (64 MiB).
pub const DEFAULT_SEGMENT: u64 = 64 << 20;
/// The smallest segment capacity accepted.
pub const MIN_SEGMENT: u64 = 8192;
/// The largest segment capacity accepted (1 TiB).
pub const MAX_SEGMENT: u64 = 1 << 40;

// Header field offsets (see docs/PROTOCOL.md).
const H_VERSION: usize = 8;
const H_HEADER_SIZE: usize = 12;
const H_SEQ: usize = 16;
const H_CAPACITY: usize = 24;
const H_END: usize = 64;
const H_SEALED: usize = 72;
const H_CHECKED: usize = 80;
const H_NOTIFY: usize = 128;
const H_WAITERS: usize = 132;

const READER_FILE_SIZE: usize = 4096;
const READER_MAGIC: &[u8; 4] = b"IPXR";
const SLOT: usize = 64;

/// When the writer makes appended records durable (`?sync=`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncPolicy {
    /// Never; the page cache decides.
    None,
    /// After every N messages.
    Every(u64),
    /// When at least this long has passed since the last sync (checked at each send and
    /// on close).
    Interval(Duration),
    /// Before every send returns.
    Always,
}

impl SyncPolicy {
    /// Parse `none`, `always`, `N`, `Tms` or `Ts`.
    pub fn parse(s: &str) -> Option<SyncPolicy> {
        match s {
            "none" => return Some(SyncPolicy::None),
            "always" => return Some(SyncPolicy::Always),
            _ => {}
        }
        if let Some(ms) = s.strip_suffix("ms") {
            return ms.parse().ok().map(|n| SyncPolicy::Interval(Duration::from_millis(n)));
        }
        if let Some(secs) = s.strip_suffix('s') {
            return secs.parse().ok().map(|n| SyncPolicy::Interval(Duration::from_secs(n)));
        }
        s.parse().ok().filter(|&n| n >= 1).map(SyncPolicy::Every)
    }
}

/// Where a reader starts (`?from=`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Start {
    /// A named reader's committed position, else the oldest record.
    Committed,
    /// The oldest retained record.
    Oldest,
    /// The end: only records appended from now on.
    End,
}

/// The settings of a log, from an address's options.
#[derive(Clone, Debug)]
pub struct LogConfig {
    /// Durability (`sync=`).
    pub sync: SyncPolicy,
    /// Capacity of new segments (`segment=`); `None`: the existing log's, or 64 MiB.
    pub segment: Option<u64>,
    /// Segments kept (`retain=`); 0 keeps all.
    pub retain: u64,
    /// Mode of created files (`mode=`).
    pub mode: u32,
    /// A named reader (`reader=`).
    pub reader: Option<String>,
    /// Where a reader starts (`from=start|end`).
    pub start: Start,
    /// Skip damaged records instead of stopping at them (`skip=corrupted`).
    pub skip_corrupted: bool,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            sync: SyncPolicy::None,
            segment: None,
            retain: 0,
            mode: crate::address::DEFAULT_MODE,
            reader: None,
            start: Start::Committed,
            skip_corrupted: false,
        }
    }
}

impl LogConfig {
    /// The settings an `mmap:` address gives.
    pub fn from_address(a: &Address) -> Result<LogConfig> {
        let bad = |why: String| Error::address(&a.to_string(), why);
        let sync = match a.param("sync") {
            None => SyncPolicy::None,
            Some(v) => SyncPolicy::parse(v).ok_or_else(|| {
                bad(format!("sync `{v}` is not none, always, a message count N >= 1, or an interval such as 100ms or 2s"))
            })?,
        };
        let segment = a.param_bytes("segment")?;
        if let Some(s) = segment {
            if !(MIN_SEGMENT..=MAX_SEGMENT).contains(&s) {
                return Err(bad(format!(
                    "segment={s} is outside {MIN_SEGMENT}..={MAX_SEGMENT} bytes"
                )));
            }
        }
        let reader = a.param("reader").map(str::to_owned);
        if let Some(r) = &reader {
            check_reader_name(r).map_err(bad)?;
        }
        let start = match a.param("from") {
            None => Start::Committed,
            Some("start") => Start::Oldest,
            Some("end") => Start::End,
            Some(v) => return Err(bad(format!("from `{v}` is not start or end"))),
        };
        let skip_corrupted = match a.param("skip") {
            None | Some("none") => false,
            Some("corrupted") => true,
            Some(v) => return Err(bad(format!("skip `{v}` is not corrupted or none"))),
        };
        Ok(LogConfig {
            sync,
            segment: segment.map(|s| (s + 7) & !7),
            retain: a.param_u64("retain")?.unwrap_or(0),
            mode: a.mode()?,
            reader,
            start,
            skip_corrupted,
        })
    }
}

fn check_reader_name(r: &str) -> std::result::Result<(), String> {
    let ok = !r.is_empty()
        && r.len() <= 64
        && !r.starts_with('.')
        && r.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.');
    if ok {
        Ok(())
    } else {
        Err(format!("reader name `{r}` must be 1 to 64 letters, digits, `_`, `-` or `.`, not starting with `.`"))
    }
}

/// A record's checksum: CRC-32C over the segment number (8 bytes), the length field, then
/// the payload.
pub fn record_crc(seq: u64, len: [u8; 4], payload: &[u8]) -> u32 {
    salted_crc(seq_salt(seq), len, payload)
}

/// The CRC-32C of a segment number: where each of its records' checksums starts.
fn seq_salt(seq: u64) -> u32 {
    crc::crc32c(&seq.to_le_bytes())
}

/// [`record_crc`] from the segment's [`seq_salt`], which a segment computes once.
fn salted_crc(salt: u32, len: [u8; 4], payload: &[u8]) -> u32 {
    crc::update(crc::update(salt, &len), payload)
}

fn pad8(n: u64) -> u64 {
    (n + 7) & !7
}

fn name_of(dir: &Path) -> String {
    format!("mmap:{}", dir.display())
}

/// The file name of segment `seq`.
pub fn segment_file_name(seq: u64) -> String {
    format!("{seq:020}.seg")
}

fn dir_mode(mode: u32) -> u32 {
    // Search permission wherever read permission is given.
    mode | ((mode & 0o444) >> 2)
}

/// The largest payload a segment of `capacity` bytes holds.
pub fn max_payload(capacity: u64) -> u64 {
    capacity - HEADER - RECORD_HEADER
}

/// The sequence numbers of the segments in `dir`, oldest first.
fn list_segments(dir: &Path, op: &'static str) -> Result<Vec<u64>> {
    let rd = std::fs::read_dir(dir).map_err(|e| io_error(op, dir, &e))?;
    let mut v = Vec::new();
    for ent in rd {
        let ent = ent.map_err(|e| io_error(op, dir, &e))?;
        let name = ent.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(num) = name.strip_suffix(".seg") {
            if num.len() == 20 && num.bytes().all(|b| b.is_ascii_digit()) {
                if let Ok(n) = num.parse::<u64>() {
                    v.push(n);
                }
            }
        }
    }
    v.sort_unstable();
    Ok(v)
}

fn io_error(op: &'static str, dir: &Path, e: &std::io::Error) -> Error {
    match e.raw_os_error() {
        Some(n) => Error::from_errno(op, name_of(dir), n),
        None => Error::new(ErrorKind::Other, op, name_of(dir), e.to_string()),
    }
}

fn not_a_log(dir: &Path, op: &'static str, why: impl std::fmt::Display) -> Error {
    Error::new(
        ErrorKind::InvalidInput,
        op,
        name_of(dir),
        format!("not an ipcx log: {why}; an mmap: address names a directory of segment files that ipcx made (see docs/PROTOCOL.md)"),
    )
}

/// Check what is at `dir`: Ok(true) a directory, Ok(false) nothing.
fn probe(dir: &Path, op: &'static str) -> Result<bool> {
    match sys::lstat(dir) {
        Ok(st) if st.file_type() == libc::S_IFDIR => Ok(true),
        Ok(st) => Err(not_a_log(dir, op, format!("the path is {}", st.type_name()))),
        Err(Errno(libc::ENOENT)) => Ok(false),
        Err(e) => Err(Error::from_errno(op, name_of(dir), e.0)),
    }
}

/// One mapped segment file.
#[derive(Debug)]
struct Segment {
    map: Mapping,
    seq: u64,
    cap: u64,
    /// [`seq_salt`] of `seq`, the start of every record checksum in this segment.
    salt: u32,
}

/// (device, inode) of a mapping's file.
fn file_id(map: &Mapping) -> Option<(u64, u64)> {
    let st = sys::fstat(map.fd()?).ok()?;
    Some((st.dev, st.ino))
}

/// (device, inode) of the file at `path` (not following a symbolic link).
fn path_id(path: &Path) -> Option<(u64, u64)> {
    let st = sys::lstat(path).ok()?;
    Some((st.dev, st.ino))
}

/// Whether `map` maps the file now at `path` (false when either cannot be told).
fn maps_file_at(map: &Mapping, path: &Path) -> bool {
    path_id(path).is_some_and(|id| file_id(map) == Some(id))
}

/// Records of this many bytes or more, when every record is synced (`sync=always`), go
/// into the file with one `pwritev(2)` instead of through the mapping. A store into the
/// mapping takes a page fault on every page the last sync cleaned (a sync write-protects
/// them again), and the next sync walks the mappings to clean them; a write into the page
/// cache takes neither. Measured on ext4, paired runs, records synced one by one: 14 page
/// faults per 64 KiB record before, about 1 after; time per record 13% less at 64 KiB and
/// 20% less at 32 KiB, even at 4 and 16 KiB, but about a quarter more at 64 B and 1 KiB,
/// where the mapping takes one fault a record anyway.
const WRITE_BY_CALL_FROM: usize = 16 << 10;

/// How a reader may map a segment.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Access {
    /// Read-write, required (the writer).
    Write,
    /// Read-write if allowed (to raise the waiter flag), else read-only (a reader with
    /// read permission only; it then polls the futex word in 10 ms steps).
    ReadPreferWrite,
}

impl Segment {
    fn path(dir: &Path, seq: u64) -> PathBuf {
        dir.join(segment_file_name(seq))
    }

    /// The temporary name segment `seq` is made under (removed first if a previous
    /// attempt of this process left it).
    fn temp_path(dir: &Path, seq: u64) -> PathBuf {
        let tmp = dir.join(format!(".{}.tmp-{}", segment_file_name(seq), std::process::id()));
        let _ = std::fs::remove_file(&tmp);
        tmp
    }

    /// Open and check segment `seq` of `dir` (mapped read-write: readers set the waiter
    /// flag; they never write anything else).
    fn open(dir: &Path, seq: u64, op: &'static str, access: Access) -> Result<Segment> {
        let path = Segment::path(dir, seq);
        let file = path.file_name().and_then(|f| f.to_str()).unwrap_or("?").to_owned();
        let mapped = match MapOptions::new().write(true).open(&path) {
            Err(e)
                if e.kind() == ErrorKind::PermissionDenied && access == Access::ReadPreferWrite =>
            {
                MapOptions::new().open(&path)
            }
            other => other,
        };
        let map = mapped.map_err(|e| {
            if e.kind() == ErrorKind::InvalidInput && e.detail().contains("no bytes") {
                not_a_log(dir, op, format!("segment {file} is empty"))
            } else {
                e.context(op, name_of(dir))
            }
        })?;
        Segment::check(dir, seq, op, map)
    }

    /// Open segment `seq` as [`Segment::open`] does, but through a mapping in `held` of
    /// the same file if there is one (a segment the writer recycled): its pages are
    /// mapped already, where a new mapping would fault each one in again.
    fn open_reusing(
        dir: &Path,
        seq: u64,
        op: &'static str,
        access: Access,
        held: &mut std::collections::VecDeque<(Segment, (u64, u64))>,
    ) -> Result<Segment> {
        let id = if held.is_empty() { None } else { path_id(&Segment::path(dir, seq)) };
        if let Some(i) = id.and_then(|id| held.iter().position(|h| h.1 == id)) {
            let (old, _) = held.remove(i).expect("the index was just found");
            return Segment::check(dir, seq, op, old.map);
        }
        Segment::open(dir, seq, op, access)
    }

    /// Check the header of `map`, the file of segment `seq`.
    fn check(dir: &Path, seq: u64, op: &'static str, map: Mapping) -> Result<Segment> {
        let file = segment_file_name(seq);
        if (map.len() as u64) < HEADER {
            return Err(not_a_log(
                dir,
                op,
                format!(
                    "segment {file} is {} bytes, shorter than its {HEADER}-byte header",
                    map.len()
                ),
            ));
        }
        let mut h = [0u8; 32];
        map.read_at(0, &mut h).map_err(|e| e.context(op, name_of(dir)))?;
        if &h[..8] != MAGIC {
            return Err(not_a_log(dir, op, format!("segment {file} does not start with IPCXLOG")));
        }
        let u32_at = |o: usize| u32::from_le_bytes(h[o..o + 4].try_into().expect("4 bytes"));
        let u64_at = |o: usize| u64::from_le_bytes(h[o..o + 8].try_into().expect("8 bytes"));
        let version = u32_at(H_VERSION);
        if version != VERSION {
            return Err(Error::new(
                ErrorKind::Unsupported,
                op,
                name_of(dir),
                format!("segment {file} is log format version {version}; this ipcx reads version {VERSION}; use the ipcx that wrote it"),
            ));
        }
        let corrupt = |why: String| {
            Error::new(ErrorKind::Corrupted, op, name_of(dir), format!("segment {file}: {why}"))
        };
        if u32_at(H_HEADER_SIZE) as u64 != HEADER {
            return Err(corrupt(format!("header size {} is not {HEADER}", u32_at(H_HEADER_SIZE))));
        }
        if u64_at(H_SEQ) != seq {
            // The writer recycles a segment retention retires: renamed away, then given
            // its new number. Opened by the old name just before, it now says another.
            if u64_at(H_SEQ) > seq && !maps_file_at(&map, &Segment::path(dir, seq)) {
                return Err(Error::new(
                    ErrorKind::NotFound,
                    op,
                    name_of(dir),
                    format!("segment {file} was retired by retention meanwhile"),
                ));
            }
            return Err(corrupt(format!("its header says segment {}", u64_at(H_SEQ))));
        }
        let cap = u64_at(H_CAPACITY);
        if cap != map.len() as u64 {
            return Err(corrupt(format!(
                "the file is {} bytes but its header says {cap} (truncated or damaged)",
                map.len()
            )));
        }
        Ok(Segment { map, seq, cap, salt: seq_salt(seq) })
    }

    /// Make segment `seq` in `dir`: a temporary file, space reserved, header written,
    /// then renamed into place so no reader ever sees a half-made segment.
    fn create(dir: &Path, seq: u64, cap: u64, mode: u32, durable: bool) -> Result<Segment> {
        let op = "create segment";
        let final_path = Segment::path(dir, seq);
        let tmp = Segment::temp_path(dir, seq);
        let fd = sys::open(&tmp, libc::O_RDWR | libc::O_CREAT | libc::O_EXCL, 0o600)
            .map_err(|e| Error::from_errno(op, name_of(dir), e.0))?;
        let cleanup = |e: Error| {
            let _ = std::fs::remove_file(&tmp);
            e
        };
        set_mode(&tmp, mode).map_err(|e| cleanup(e.context(op, name_of(dir))))?;
        match sys::mmap::fallocate(fd.as_fd(), cap) {
            Ok(()) => {}
            Err(Errno(libc::EOPNOTSUPP)) => {
                // No block reservation on this file system: a full disk may then show
                // as SIGBUS on a store into the mapping. Documented in PROTOCOL.md.
                sys::mmap::ftruncate(fd.as_fd(), cap)
                    .map_err(|e| cleanup(space_error(dir, seq, cap, e)))?
            }
            Err(e) => return Err(cleanup(space_error(dir, seq, cap, e))),
        }
        drop(fd);
        let map = MapOptions::new()
            .write(true)
            .open(&tmp)
            .map_err(|e| cleanup(e.context(op, name_of(dir))))?;
        let seg = Segment::init(map, seq, cap, durable).map_err(cleanup)?;
        sys::rename_noreplace(&tmp, &final_path).map_err(|e| {
            cleanup(Error::from_errno(op, name_of(dir), e.0).with_hint(format!(
                "segment {} appeared meanwhile; is another writer using the log?",
                segment_file_name(seq)
            )))
        })?;
        Ok(seg)
    }

    /// Write a fresh header into `map` (a file of `cap` bytes, under a temporary name)
    /// for segment `seq`: no records, not sealed.
    fn init(map: Mapping, seq: u64, cap: u64, durable: bool) -> Result<Segment> {
        let seg = Segment { map, seq, cap, salt: seq_salt(seq) };
        // The number first: a reader still on a recycled segment's earlier life sees it
        // change before anything else does.
        seg.word64(H_SEQ).store(seq, SeqCst);
        let mut h = [0u8; 32];
        h[..8].copy_from_slice(MAGIC);
        h[H_VERSION..H_VERSION + 4].copy_from_slice(&VERSION.to_le_bytes());
        h[H_HEADER_SIZE..H_HEADER_SIZE + 4].copy_from_slice(&(HEADER as u32).to_le_bytes());
        h[H_SEQ..H_SEQ + 8].copy_from_slice(&seq.to_le_bytes());
        h[H_CAPACITY..H_CAPACITY + 8].copy_from_slice(&cap.to_le_bytes());
        seg.map.write_at(0, &h)?;
        seg.end_word().store(HEADER, SeqCst);
        seg.checked_word().store(HEADER, SeqCst);
        seg.word32(H_SEALED).store(0, SeqCst);
        // No record header at the start (a recycled segment has an old one there).
        seg.region().zero(HEADER as usize, RECORD_HEADER as usize);
        // Anyone still sleeping on the old life's futex word looks again.
        seg.notify().fetch_add(1, SeqCst);
        sys::mmap::futex_wake_all(seg.notify());
        if durable {
            seg.map.flush_range(0, (HEADER + RECORD_HEADER) as usize)?;
        }
        Ok(seg)
    }

    /// Whether the writer has recycled this segment under another number since it was
    /// opened (retention retired it).
    fn recycled(&self) -> bool {
        // After the record copies a caller made: their loads come before this one.
        std::sync::atomic::fence(std::sync::atomic::Ordering::Acquire);
        self.region().load_u64(H_SEQ).is_some_and(|s| s != self.seq)
    }

    fn region(&self) -> &sys::mmap::Region {
        self.map.region()
    }
    fn word64(&self, off: usize) -> &AtomicU64 {
        self.region().atomic_u64(off).expect("header words are in bounds and aligned")
    }
    fn word32(&self, off: usize) -> &AtomicU32 {
        self.region().atomic_u32(off).expect("header words are in bounds and aligned")
    }
    fn end_word(&self) -> &AtomicU64 {
        self.word64(H_END)
    }
    fn checked_word(&self) -> &AtomicU64 {
        self.word64(H_CHECKED)
    }
    fn sealed(&self) -> bool {
        self.region().load_u32(H_SEALED).is_some_and(|v| v != 0)
    }
    fn end(&self) -> u64 {
        self.region().load_u64(H_END).expect("header words are in bounds and aligned")
    }
    fn notify_value(&self) -> u32 {
        self.region().load_u32(H_NOTIFY).expect("header words are in bounds and aligned")
    }
    fn writable(&self) -> bool {
        self.map.is_writable()
    }
    fn notify(&self) -> &AtomicU32 {
        self.word32(H_NOTIFY)
    }
    fn waiters(&self) -> &AtomicU32 {
        self.word32(H_WAITERS)
    }

    /// Check that no access found the file truncated (and, without the SIGBUS guard, one
    /// `fstat` that the file still covers the whole segment).
    fn check_file(&self, dir: &Path, op: &'static str) -> Result<()> {
        self.map.check(0, self.cap as usize).map_err(|e| self.segment_error(dir, op, e))
    }

    /// Write `parts` one after another at `off` with `pwritev(2)`, not through the
    /// mapping. For a large record that is synced at once (see [`WRITE_BY_CALL_FROM`]).
    /// Readers see the bytes through their mappings (one page cache) once the end word
    /// says so. The file's size is checked first: a write past a truncation would grow the
    /// file again instead of failing.
    fn write_by_call(&self, dir: &Path, off: u64, parts: [&[u8]; 3]) -> Result<()> {
        let Some(fd) = self.map.fd() else {
            return Err(Error::new(
                ErrorKind::Unsupported,
                "send",
                name_of(dir),
                "the segment is not a file",
            ));
        };
        // The one `fstat` the mapping's own check makes when it has no SIGBUS guard.
        self.map
            .check_file(0, self.cap as usize)
            .map_err(|e| self.segment_error(dir, "send", e))?;
        let mut bufs = parts.map(IoSlice::new);
        let mut rest = &mut bufs[..];
        let mut at = off;
        while !rest.is_empty() {
            let wrote = match sys::pwritev(fd, rest, at) {
                // A regular file writes something or fails; never loop on nothing.
                Ok(0) => Err(Errno(libc::EIO)),
                r => r,
            };
            let n = wrote.map_err(|e| {
                Error::from_errno("send", name_of(dir), e.0).with_hint(format!(
                    "writing a record into segment {}",
                    segment_file_name(self.seq)
                ))
            })?;
            at += n as u64;
            IoSlice::advance_slices(&mut rest, n);
        }
        Ok(())
    }

    /// Check only that no access found the file truncated (no system call).
    fn check_truncated(&self, dir: &Path, op: &'static str) -> Result<()> {
        self.map.check_truncated(op).map_err(|e| self.segment_error(dir, op, e))
    }

    fn segment_error(&self, dir: &Path, op: &'static str, e: Error) -> Error {
        Error::new(
            ErrorKind::Corrupted,
            op,
            name_of(dir),
            format!("segment {}: {}", segment_file_name(self.seq), e.detail()),
        )
    }

    /// Wake readers sleeping on this segment, if any said they sleep.
    fn wake(&self) {
        let w = self.waiters();
        if w.load(SeqCst) != 0 && w.swap(0, SeqCst) != 0 {
            self.notify().fetch_add(1, SeqCst);
            sys::mmap::futex_wake_all(self.notify());
        }
    }

    /// Read and verify the record at `off` (below `end`), payload into `buf` (left empty
    /// when the record is bad).
    fn record(&self, off: u64, end: u64, buf: &mut Vec<u8>) -> std::result::Result<u64, Bad> {
        buf.clear();
        if off + RECORD_HEADER > end {
            return Err(Bad::Length);
        }
        let r = self.region();
        let mut h = [0u8; 8];
        if !r.read(off as usize, &mut h) {
            return Err(Bad::Length);
        }
        let len = u32::from_le_bytes(h[..4].try_into().expect("4 bytes"));
        let stored = u32::from_le_bytes(h[4..].try_into().expect("4 bytes"));
        let next = off + RECORD_HEADER + pad8(u64::from(len));
        if next > end || !r.read_append((off + RECORD_HEADER) as usize, len as usize, buf) {
            return Err(Bad::Length);
        }
        let sum = salted_crc(self.salt, h[..4].try_into().expect("4 bytes"), buf);
        if sum != stored {
            buf.clear();
            return Err(Bad::Checksum { stored, computed: sum, next });
        }
        Ok(next)
    }
}

enum Bad {
    /// The length runs past the committed end: the next record cannot be found.
    Length,
    /// The checksum does not match; the length gives the next record.
    Checksum { stored: u32, computed: u32, next: u64 },
}

fn set_mode(path: &Path, mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(|e| {
        Error::from_errno(
            "chmod",
            path.display().to_string(),
            e.raw_os_error().unwrap_or(libc::EIO),
        )
    })
}

fn space_error(dir: &Path, seq: u64, cap: u64, e: Errno) -> Error {
    let mut err = Error::new(
        ErrorKind::Other,
        "create segment",
        name_of(dir),
        format!(
            "cannot reserve {cap} bytes for segment {}: {}",
            segment_file_name(seq),
            std::io::Error::from_raw_os_error(e.0)
        ),
    )
    .with_errno(e.0);
    if matches!(e.0, libc::ENOSPC | libc::EFBIG | libc::EDQUOT) {
        err = err.with_hint("the file system is full, or the file size limit (ulimit -f) or quota is reached; free space, or lower ?retain= or ?segment=");
    }
    err
}

/// Create an empty log at `dir` if nothing is there. Ok(true) if this call made it.
/// The directory appears whole (made under a temporary name, then renamed into place).
pub fn create(dir: &Path, cfg: &LogConfig) -> Result<bool> {
    crate::error::check_mode("create", &name_of(dir), cfg.mode)?;
    if probe(dir, "create")? {
        return Ok(false);
    }
    let parent = dir.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let base = dir.file_name().and_then(|n| n.to_str()).unwrap_or("log");
    static MADE: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = MADE.fetch_add(1, SeqCst);
    remove_dead_creations(parent, base);
    let tmp = parent.join(format!(".{base}.tmp-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    sys::mmap::mkdir(&tmp, dir_mode(cfg.mode))
        .map_err(|e| crate::error::create_error("create", name_of(dir), dir, e.0))?;
    let made = (|| {
        let cap = cfg.segment.unwrap_or(DEFAULT_SEGMENT);
        let durable = cfg.sync != SyncPolicy::None;
        drop(
            Segment::create(&tmp, 1, cap, cfg.mode, durable)
                .map_err(|e| e.context("create", name_of(dir)))?,
        );
        match sys::rename_noreplace(&tmp, dir) {
            Ok(()) => Ok(true),
            Err(Errno(libc::EEXIST | libc::ENOTEMPTY)) => Ok(false),
            Err(e) => Err(Error::from_errno("create", name_of(dir), e.0)),
        }
    })();
    if !matches!(made, Ok(true)) {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    if matches!(made, Ok(true)) && cfg.sync != SyncPolicy::None {
        sync_dir(parent);
    }
    made
}

/// Remove half-made segments (`.NAME.seg.tmp-PID`) a writer killed during a roll-over
/// left behind. Only the lock holder makes segments, so none of them is in use.
fn remove_stale_temporaries(dir: &Path) {
    let Ok(rd) = std::fs::read_dir(dir) else { return };
    for ent in rd.flatten() {
        let name = ent.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') && name.contains(".seg.tmp-") {
            // Best effort: a leftover only costs disk space.
            let _ = std::fs::remove_file(ent.path());
        }
    }
}

/// Remove log directories half-made (`.BASE.tmp-PID-N`) by processes that have died.
fn remove_dead_creations(parent: &Path, base: &str) {
    let Ok(rd) = std::fs::read_dir(parent) else { return };
    let prefix = format!(".{base}.tmp-");
    for ent in rd.flatten() {
        let name = ent.file_name();
        let name = name.to_string_lossy();
        let Some(rest) = name.strip_prefix(&prefix) else { continue };
        let pid = rest.split('-').next().and_then(|p| p.parse::<i32>().ok());
        if pid.is_some_and(|p| !sys::process_alive(p)) {
            // Best effort, as above.
            let _ = std::fs::remove_dir_all(ent.path());
        }
    }
}

fn sync_dir(dir: &Path) {
    // Best effort: makes a new directory entry durable; a failure leaves the data in
    // place, only the name's durability is weaker, so it is not reported.
    if let Ok(fd) = sys::open(dir, libc::O_RDONLY | libc::O_DIRECTORY, 0) {
        let _ = sys::mmap::fsync(fd.as_fd());
    }
}

/// Whether `name` is a file ipcx makes in a log directory: a segment, a reader's
/// position file, the writer's lock, or a half-made segment.
fn is_log_file(name: &str) -> bool {
    let segment = name
        .strip_suffix(".seg")
        .is_some_and(|n| n.len() == 20 && n.bytes().all(|b| b.is_ascii_digit()));
    let reader = name.strip_suffix(".reader").is_some_and(|n| !n.is_empty());
    let temporary = name.starts_with('.') && name.contains(".seg.tmp-");
    segment || reader || temporary || name == "writer.lock"
}

/// Check that the log at `dir` may be removed: it is a log (it holds segment files), it
/// holds nothing but files ipcx makes in a log (regular files, no subdirectories or
/// links), and no writer has it open (its `writer.lock` is free). The list of files to
/// remove on success.
pub fn check_removable(dir: &Path) -> Result<Vec<PathBuf>> {
    let op = "remove";
    if !probe(dir, op)? {
        return Err(Error::new(ErrorKind::NotFound, op, name_of(dir), "no log at this path"));
    }
    if list_segments(dir, op)?.is_empty() {
        return Err(not_a_log(
            dir,
            op,
            "the directory holds no segment files; ipcx leaves it alone",
        ));
    }
    let mut files = Vec::new();
    for ent in std::fs::read_dir(dir).map_err(|e| io_error(op, dir, &e))? {
        let ent = ent.map_err(|e| io_error(op, dir, &e))?;
        let path = ent.path();
        let name = ent.file_name();
        let regular = matches!(sys::lstat(&path), Ok(st) if st.file_type() == libc::S_IFREG);
        if !regular || !name.to_str().is_some_and(is_log_file) {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                op,
                name_of(dir),
                format!(
                    "the directory also holds {}, which is not a file of an ipcx log; ipcx removes only logs it made (remove that file first, or the directory by hand)",
                    name.to_string_lossy()
                ),
            ));
        }
        files.push(path);
    }
    let lock_path = dir.join("writer.lock");
    match sys::open(&lock_path, libc::O_RDONLY | libc::O_NOFOLLOW, 0) {
        Ok(lock) => {
            if let Err(e) = sys::mmap::flock_exclusive(lock.as_fd(), true) {
                return Err(if e.0 == libc::EWOULDBLOCK {
                    Error::new(
                        ErrorKind::AlreadyExists,
                        op,
                        name_of(dir),
                        "a writer has the log open (it holds writer.lock); stop it first",
                    )
                } else {
                    Error::from_errno(op, name_of(dir), e.0)
                });
            }
        }
        Err(Errno(libc::ENOENT)) => {}
        Err(e) => return Err(Error::from_errno(op, name_of(dir), e.0)),
    }
    Ok(files)
}

/// Whether the log at `dir` holds any record (more than one segment, or a segment whose
/// committed end is past its header).
pub fn holds_records(dir: &Path) -> Result<bool> {
    let segs = list_segments(dir, "inspect")?;
    if segs.len() > 1 {
        return Ok(true);
    }
    for seq in segs {
        if Segment::open(dir, seq, "inspect", Access::ReadPreferWrite)?.end() > HEADER {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Remove the log at `dir`: its segment, reader and lock files, then the directory. A
/// directory that holds anything else, or a log a writer has open, is left alone (see
/// [`check_removable`]). Its registry entry, if any, is forgotten.
pub fn remove(dir: &Path) -> Result<()> {
    for f in check_removable(dir)? {
        match sys::unlink(&f) {
            Ok(()) | Err(Errno(libc::ENOENT)) => {}
            Err(e) => return Err(Error::from_errno("remove", name_of(dir), e.0)),
        }
    }
    crate::sys::ops::rmdir(dir).map_err(|e| match e.0 {
        libc::ENOTEMPTY | libc::EEXIST => Error::new(
            ErrorKind::InvalidInput,
            "remove",
            name_of(dir),
            "a file appeared in the log directory while it was being removed; it is left in place",
        )
        .with_errno(e.0),
        _ => Error::from_errno("remove", name_of(dir), e.0),
    })?;
    let abs = std::path::absolute(dir).unwrap_or_else(|_| dir.to_owned());
    if let Ok(a) = Address::parse(&name_of(&abs)) {
        crate::registry::forget_removed(&a);
    }
    Ok(())
}

/// Record a log this process just made in the [`crate::registry`] (best effort).
fn record(dir: &Path) -> Option<crate::registry::Recorded> {
    let abs = std::path::absolute(dir).unwrap_or_else(|_| dir.to_owned());
    Address::parse(&name_of(&abs)).ok().and_then(|a| crate::registry::record(&a, "mmap"))
}

/// The appending end of a log.
#[derive(Debug)]
pub struct LogWriter {
    dir: PathBuf,
    addr: String,
    cfg: LogConfig,
    seg: Segment,
    cap: u64,
    end: u64,
    since_sync: u64,
    last_sync: Instant,
    /// Sealed segments still mapped (with `retain` >= 2), oldest first: the one that
    /// retention retires next is recycled with its pages still mapped for writing.
    retired: std::collections::VecDeque<Segment>,
    /// With `sync=Tms`: the thread that syncs what a quiet writer left unsynced.
    flusher: Option<Flusher>,
    _lock: std::os::fd::OwnedFd,
    /// The registry entry if this writer made the log; marked kept when it closes.
    recorded: Option<crate::registry::Recorded>,
}

/// A background thread that, every interval, `fdatasync`s the segment being appended to
/// if something was appended since the last sync (so `sync=Tms` holds when sends stop).
#[derive(Debug)]
struct Flusher {
    shared: std::sync::Arc<FlushShared>,
    thread: Option<std::thread::JoinHandle<()>>,
}

#[derive(Debug)]
struct FlushShared {
    dirty: std::sync::atomic::AtomicBool,
    state: std::sync::Mutex<(Option<std::os::fd::OwnedFd>, bool)>,
    wake: std::sync::Condvar,
}

impl Flusher {
    fn start(every: Duration, seg: &Segment) -> Flusher {
        let shared = std::sync::Arc::new(FlushShared {
            dirty: std::sync::atomic::AtomicBool::new(false),
            state: std::sync::Mutex::new((None, false)),
            wake: std::sync::Condvar::new(),
        });
        let mut f = Flusher { shared: shared.clone(), thread: None };
        f.follow(seg);
        f.thread = std::thread::Builder::new()
            .name("ipcx-log-flush".into())
            .spawn(move || {
                let mut g = shared.state.lock().unwrap_or_else(|p| p.into_inner());
                loop {
                    g = shared.wake.wait_timeout(g, every).unwrap_or_else(|p| p.into_inner()).0;
                    if g.1 {
                        return;
                    }
                    if shared.dirty.swap(false, SeqCst) {
                        if let Some(fd) = &g.0 {
                            // A failure here is found again by the next sync the writer
                            // makes itself (on close at the latest), which reports it.
                            let _ = sys::mmap::fdatasync(fd.as_fd());
                        }
                    }
                }
            })
            .ok();
        f
    }

    /// Sync this segment from now on.
    fn follow(&self, seg: &Segment) {
        let fd = seg.map.fd().and_then(|fd| sys::dup(fd).ok());
        self.shared.state.lock().unwrap_or_else(|p| p.into_inner()).0 = fd;
    }
}

impl Drop for Flusher {
    fn drop(&mut self) {
        self.shared.state.lock().unwrap_or_else(|p| p.into_inner()).1 = true;
        self.shared.wake.notify_all();
        if let Some(t) = self.thread.take() {
            // The thread only syncs and exits; a panic in it has nothing to report.
            let _ = t.join();
        }
    }
}

impl LogWriter {
    /// Open the log at `dir` for appending, creating it if missing.
    pub fn open(dir: impl AsRef<Path>, cfg: &LogConfig) -> Result<LogWriter> {
        let dir = dir.as_ref();
        let addr = name_of(dir);
        LogWriter::open_inner(dir, cfg, addr, None)
    }

    fn open_inner(
        dir: &Path,
        cfg: &LogConfig,
        addr: String,
        lock_timeout: Option<Duration>,
    ) -> Result<LogWriter> {
        let op = "open";
        let recorded = if create(dir, cfg)? { record(dir) } else { None };
        let lock_path = dir.join("writer.lock");
        let lock = sys::open(
            &lock_path,
            libc::O_RDWR | libc::O_CREAT | libc::O_NOFOLLOW,
            cfg.mode & 0o666,
        )
        .map_err(|e| Error::from_errno(op, &addr, e.0))?;
        take_lock(&lock, lock_timeout).map_err(|e| e.context(op, addr.clone()))?;
        remove_stale_temporaries(dir);
        if let (Some(parent), Some(base)) = (dir.parent(), dir.file_name().and_then(|b| b.to_str()))
        {
            remove_dead_creations(
                if parent.as_os_str().is_empty() { Path::new(".") } else { parent },
                base,
            );
        }
        let segs = list_segments(dir, op)?;
        let Some(&last) = segs.last() else {
            return Err(not_a_log(dir, op, "the directory holds no segment files"));
        };
        // A writer that died between making segment N+1 and sealing N leaves N unsealed.
        if segs.len() >= 2 {
            let prev = Segment::open(dir, segs[segs.len() - 2], op, Access::Write)?;
            if !prev.sealed() {
                prev.word32(H_SEALED).store(1, SeqCst);
                prev.notify().fetch_add(1, SeqCst);
                sys::mmap::futex_wake_all(prev.notify());
            }
        }
        let seg = Segment::open(dir, last, op, Access::Write)?;
        seg.check_file(dir, op)?;
        let cap = cfg.segment.unwrap_or(seg.cap);
        let mut w = LogWriter {
            dir: dir.to_owned(),
            addr,
            cfg: LogConfig { segment: Some(cap), ..cfg.clone() },
            end: HEADER,
            cap,
            seg,
            since_sync: 0,
            last_sync: Instant::now(),
            retired: std::collections::VecDeque::new(),
            flusher: None,
            _lock: lock,
            recorded,
        };
        if let SyncPolicy::Interval(t) = cfg.sync {
            w.flusher = Some(Flusher::start(t, &w.seg));
        }
        w.recover();
        if w.seg.sealed() {
            w.roll()?;
        }
        Ok(w)
    }

    /// Check the records written since the last verified point; cut the log at the first
    /// torn or damaged one.
    fn recover(&mut self) {
        let seg = &self.seg;
        let cap = seg.cap;
        let end = seg.end_word().load(SeqCst);
        let checked = seg.checked_word().load(SeqCst);
        let sane = |v: u64| (HEADER..=cap).contains(&v) && v % 8 == 0;
        let (mut pos, limit) = if sane(end) && sane(checked) && checked <= end {
            (checked, end)
        } else {
            // The header itself is damaged: trust nothing, scan the whole segment.
            (HEADER, cap)
        };
        let mut scratch = Vec::new();
        while pos < limit {
            match seg.record(pos, limit, &mut scratch) {
                Ok(next) => pos = next,
                Err(_) => break,
            }
        }
        seg.end_word().store(pos, SeqCst);
        seg.checked_word().store(pos, SeqCst);
        if pos + RECORD_HEADER <= cap {
            // Clear a half-written record header, so no tool reading past the end
            // mistakes it for a record.
            seg.region().zero(pos as usize, RECORD_HEADER as usize);
        }
        self.end = pos;
        if pos != end {
            seg.notify().fetch_add(1, SeqCst);
            sys::mmap::futex_wake_all(seg.notify());
        }
    }

    /// The largest message this log takes: a segment less its header and a record header.
    pub fn max_message(&self) -> usize {
        usize::try_from(max_payload(self.cap)).unwrap_or(usize::MAX).min(u32::MAX as usize)
    }

    fn roll(&mut self) -> Result<()> {
        let durable = self.cfg.sync != SyncPolicy::None;
        if durable && self.since_sync > 0 {
            // What the policy has not synced yet must not stay behind in a sealed segment.
            self.sync_now()?;
        }
        let seq = self.seg.seq + 1;
        // Retention: the segments the new one pushes out. The oldest of them (unless it
        // is the one being sealed now, which readers may still be on) becomes the new
        // segment, its pages already in the page cache and mapped: a fresh segment's
        // every page is a fault and a page the kernel must zero, which cost the writer
        // more than the records themselves.
        let victims: Vec<u64> = match self.cfg.retain {
            0 => Vec::new(),
            n => list_segments(&self.dir, "send")
                .unwrap_or_default()
                .into_iter()
                .filter(|&s| s < (seq + 1).saturating_sub(n))
                .collect(),
        };
        let recycled = match victims.first() {
            Some(&v) if v < self.seg.seq => self.recycle(v, seq, durable),
            _ => None,
        };
        let next = match recycled {
            Some(seg) => seg,
            None => Segment::create(&self.dir, seq, self.cap, self.cfg.mode, durable)
                .map_err(|e| e.context("send", self.addr.clone()))?,
        };
        if durable {
            sync_dir(&self.dir);
        }
        let old = std::mem::replace(&mut self.seg, next);
        old.checked_word().store(self.end.max(HEADER).min(old.cap), SeqCst);
        old.word32(H_SEALED).store(1, SeqCst);
        if durable {
            let _ = old.map.flush_range(0, HEADER as usize);
        }
        // Readers at the end of the old segment must move on: wake them all.
        old.notify().fetch_add(1, SeqCst);
        sys::mmap::futex_wake_all(old.notify());
        self.end = HEADER;
        self.since_sync = 0;
        if let Some(f) = &self.flusher {
            f.follow(&self.seg);
        }
        for s in victims {
            // The recycled one has a new name already; a segment already gone (an
            // operator removed it) needs nothing.
            let _ = std::fs::remove_file(Segment::path(&self.dir, s));
        }
        if self.cfg.retain >= 2 {
            self.retired.push_back(old);
            let keep_from = seq.saturating_sub(self.cfg.retain);
            while self.retired.front().is_some_and(|s| s.seq < keep_from) {
                self.retired.pop_front();
            }
        }
        Ok(())
    }

    /// Make retired segment `victim` into segment `seq`: rename it to a temporary name
    /// (it leaves the log at once, as a deletion would), write a fresh header (its number
    /// first, so a reader still on its earlier life notices), and rename it into place.
    /// `None` when it cannot be (it is gone, or of another capacity): make a new one.
    fn recycle(&mut self, victim: u64, seq: u64, durable: bool) -> Option<Segment> {
        let from = Segment::path(&self.dir, victim);
        let tmp = Segment::temp_path(&self.dir, seq);
        let i = self.retired.iter().position(|s| s.seq == victim);
        let held = i.and_then(|i| self.retired.remove(i));
        std::fs::rename(&from, &tmp).ok()?;
        let made = (|| {
            let map = match held {
                Some(seg) if maps_file_at(&seg.map, &tmp) => seg.map,
                _ => MapOptions::new().write(true).open(&tmp).ok()?,
            };
            if map.len() as u64 != self.cap || map.truncated() {
                return None;
            }
            set_mode(&tmp, self.cfg.mode).ok()?;
            let seg = Segment::init(map, seq, self.cap, durable).ok()?;
            sys::rename_noreplace(&tmp, &Segment::path(&self.dir, seq)).ok()?;
            Some(seg)
        })();
        if made.is_none() {
            let _ = std::fs::remove_file(&tmp);
        }
        made
    }

    fn sync_now(&mut self) -> Result<()> {
        self.seg
            .map
            .flush_range(0, self.end as usize)
            .map_err(|e| e.context("sync", self.addr.clone()))?;
        self.seg.checked_word().store(self.end, SeqCst);
        self.since_sync = 0;
        self.last_sync = Instant::now();
        Ok(())
    }

    /// Append one record. Returns when it is visible to readers, and durable as `sync=`
    /// says.
    pub fn append(&mut self, msg: &[u8]) -> Result<()> {
        let max = self.max_message();
        if msg.len() > max {
            return Err(Error::too_large(
                "send",
                self.addr.clone(),
                max as u64,
                format!(
                    "message of {} bytes exceeds this log's limit of {max} (a segment of {} bytes less headers); raise ?segment=",
                    msg.len(),
                    self.cap
                ),
            ));
        }
        let rec = RECORD_HEADER + pad8(msg.len() as u64);
        if self.end + rec > self.seg.cap {
            self.roll()?;
        }
        self.seg.check_file(&self.dir, "send")?;
        let off = self.end;
        let len = (msg.len() as u32).to_le_bytes();
        let sum = salted_crc(self.seg.salt, len, msg);
        let pad = &[0u8; 8][..(rec - RECORD_HEADER) as usize - msg.len()];
        let mut h = [0u8; 8];
        h[..4].copy_from_slice(&len);
        h[4..].copy_from_slice(&sum.to_le_bytes());
        if self.cfg.sync == SyncPolicy::Always && msg.len() >= WRITE_BY_CALL_FROM {
            // A large record synced at once: write it with one system call instead of
            // through the mapping (see `Segment::write_by_call`).
            self.seg.write_by_call(&self.dir, off, [&h, msg, pad])?;
        } else {
            let r = self.seg.region();
            r.write((off + RECORD_HEADER) as usize, msg);
            if !pad.is_empty() {
                r.write((off + RECORD_HEADER) as usize + msg.len(), pad);
            }
            r.write(off as usize, &h);
        }
        // A truncation by another process during the copies was caught (the SIGBUS guard):
        // the record is not published, and the send fails.
        self.seg.check_truncated(&self.dir, "send")?;
        self.end = off + rec;
        // Publish: readers load `end` and then read the bytes before it.
        self.seg.end_word().store(self.end, SeqCst);
        self.since_sync += 1;
        let due = match self.cfg.sync {
            SyncPolicy::None => false,
            SyncPolicy::Always => true,
            SyncPolicy::Every(n) => self.since_sync >= n,
            SyncPolicy::Interval(t) => self.last_sync.elapsed() >= t,
        };
        if !due {
            if let Some(f) = &self.flusher {
                f.shared.dirty.store(true, SeqCst);
            }
        }
        if due {
            self.sync_now()?;
        }
        self.seg.wake();
        Ok(())
    }

    /// Make everything appended so far durable now (`msync(MS_SYNC)`).
    pub fn sync(&mut self) -> Result<()> {
        self.sync_now()
    }

    /// The log's directory.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// The segment being appended to and the committed end in it.
    pub fn position(&self) -> (u64, u64) {
        (self.seg.seq, self.end)
    }
}

impl Drop for LogWriter {
    fn drop(&mut self) {
        if self.cfg.sync != SyncPolicy::None {
            // Errors cannot be reported from drop; the records stay in the page cache
            // and the next writer re-verifies them at open.
            let _ = self.sync_now();
        } else {
            // A clean close: everything up to the end was written by this process.
            self.seg.checked_word().store(self.end, SeqCst);
        }
        // As for a reader: a clean close marks the log this writer made kept.
        if let Some(r) = self.recorded.as_mut() {
            r.keep();
        }
    }
}

fn take_lock(lock: &std::os::fd::OwnedFd, timeout: Option<Duration>) -> Result<()> {
    let busy = || {
        Error::new(
            ErrorKind::TimedOut,
            "lock",
            "",
            "another writer holds the log (one writer at a time); wait for it to finish",
        )
    };
    match timeout {
        None => sys::mmap::flock_exclusive(lock.as_fd(), false)
            .map_err(|e| Error::from_errno("lock", "", e.0)),
        Some(t) => {
            let deadline = Instant::now() + t;
            let mut pause = Duration::from_millis(1);
            loop {
                match sys::mmap::flock_exclusive(lock.as_fd(), true) {
                    Ok(()) => return Ok(()),
                    Err(Errno(libc::EWOULDBLOCK)) => {
                        let now = Instant::now();
                        if now >= deadline {
                            return Err(busy());
                        }
                        // flock has no timed form: wait in growing steps (1 to 20 ms).
                        std::thread::sleep(pause.min(deadline - now));
                        pause = (pause * 2).min(Duration::from_millis(20));
                    }
                    Err(e) => return Err(Error::from_errno("lock", "", e.0)),
                }
            }
        }
    }
}

/// A named reader's committed position: two checksummed slots in a small mapped file.
#[derive(Debug)]
struct PositionFile {
    map: Mapping,
    gen: u64,
}

impl PositionFile {
    fn open(dir: &Path, name: &str, mode: u32) -> Result<(PositionFile, Option<(u64, u64)>)> {
        let path = dir.join(format!("{name}.reader"));
        let map = MapOptions::new()
            .create(true)
            .mode(mode & 0o666)
            .len(READER_FILE_SIZE)
            .open(&path)
            .map_err(|e| e.context("open reader", name_of(dir)))?;
        let mut best: Option<(u64, u64, u64)> = None;
        let mut any = false;
        for slot in 0..2 {
            let mut b = [0u8; 40];
            map.read_at(slot * SLOT, &mut b)?;
            any |= b.iter().any(|&x| x != 0);
            if &b[..4] != READER_MAGIC {
                continue;
            }
            let want = u32::from_le_bytes(b[36..40].try_into().expect("4 bytes"));
            if crc::crc32c(&b[..36]) != want {
                continue;
            }
            let g = u64::from_le_bytes(b[8..16].try_into().expect("8 bytes"));
            let seq = u64::from_le_bytes(b[16..24].try_into().expect("8 bytes"));
            let off = u64::from_le_bytes(b[24..32].try_into().expect("8 bytes"));
            if best.is_none_or(|(bg, ..)| g > bg) {
                best = Some((g, seq, off));
            }
        }
        if best.is_none() && any {
            return Err(Error::new(
                ErrorKind::Corrupted,
                "open reader",
                name_of(dir),
                format!("the position file {name}.reader is damaged (no valid slot); remove it to restart reader `{name}` from the oldest record"),
            ));
        }
        let gen = best.map_or(0, |b| b.0);
        Ok((PositionFile { map, gen }, best.map(|(_, s, o)| (s, o))))
    }

    fn store(&mut self, seq: u64, off: u64) {
        self.gen += 1;
        let mut b = [0u8; 40];
        b[..4].copy_from_slice(READER_MAGIC);
        b[4..8].copy_from_slice(&1u32.to_le_bytes());
        b[8..16].copy_from_slice(&self.gen.to_le_bytes());
        b[16..24].copy_from_slice(&seq.to_le_bytes());
        b[24..32].copy_from_slice(&off.to_le_bytes());
        let sum = crc::crc32c(&b[..36]);
        b[36..40].copy_from_slice(&sum.to_le_bytes());
        // The slot with the older generation is overwritten; the other stays valid.
        // A failure (the file truncated by someone) loses only this commit.
        let _ = self.map.write_at((self.gen % 2) as usize * SLOT, &b);
    }
}

/// The reading end of a log.
#[derive(Debug)]
pub struct LogReader {
    dir: PathBuf,
    addr: String,
    seg: Option<Segment>,
    seq: u64,
    off: u64,
    position: Option<PositionFile>,
    pending: Option<(u64, u64)>,
    bad_next: Option<u64>,
    skip: bool,
    skipped_segments: u64,
    corrupted_skipped: u64,
    /// The committed end of the current segment as last loaded (records below it are
    /// immutable, so they are read without looking at the header again).
    known_end: u64,
    /// Whether the segment was sealed when `known_end` was loaded (so that is its end).
    known_sealed: bool,
    /// Segments this reader has left, still mapped (up to [`HELD_BYTES`]), with their
    /// files' identities: a segment the writer recycles comes back as one of them.
    held: std::collections::VecDeque<(Segment, (u64, u64))>,
    /// The registry entry if this reader made the log; marked kept when it closes.
    recorded: Option<crate::registry::Recorded>,
}

/// How long a reader at the end keeps looking (busy, without yielding the core) before it
/// sleeps on the futex.
const SPIN_FOR: Duration = Duration::from_micros(30);

/// How many bytes of segments a reader keeps mapped after leaving them, for reuse.
const HELD_BYTES: u64 = 256 << 20;

impl LogReader {
    /// Open the log at `dir` for reading (see the module docs for where it starts).
    pub fn open(dir: impl AsRef<Path>, cfg: &LogConfig) -> Result<LogReader> {
        let dir = dir.as_ref();
        LogReader::open_inner(dir, cfg, name_of(dir), false)
    }

    fn open_inner(dir: &Path, cfg: &LogConfig, addr: String, create_it: bool) -> Result<LogReader> {
        let op = "open";
        let mut recorded = None;
        if !probe(dir, op)? {
            if create_it {
                if create(dir, cfg)? {
                    recorded = record(dir);
                }
            } else {
                return Err(Error::new(
                    ErrorKind::NotFound,
                    op,
                    addr,
                    "no log at this path; sending to it creates it (ipcx send), or open with --create",
                ));
            }
        }
        let segs = list_segments(dir, op)?;
        let (Some(&first), Some(&last)) = (segs.first(), segs.last()) else {
            return Err(not_a_log(dir, op, "the directory holds no segment files"));
        };
        // Check the format now, so a foreign file is reported at open.
        let last_seg = Segment::open(dir, last, op, Access::ReadPreferWrite)?;
        let (position, saved) = match &cfg.reader {
            Some(name) => {
                let (p, s) = PositionFile::open(dir, name, cfg.mode)?;
                (Some(p), s)
            }
            None => (None, None),
        };
        let (seq, off) = match (cfg.start, saved) {
            (Start::End, _) => (last, last_seg.end()),
            (Start::Committed, Some(p)) => p,
            _ => (first, HEADER),
        };
        let mut r = LogReader {
            dir: dir.to_owned(),
            addr,
            seg: None,
            seq,
            off,
            position,
            pending: None,
            bad_next: None,
            skip: cfg.skip_corrupted,
            skipped_segments: 0,
            corrupted_skipped: 0,
            known_end: 0,
            known_sealed: false,
            held: std::collections::VecDeque::new(),
            recorded,
        };
        if seq == last {
            r.seg = Some(last_seg);
        }
        if cfg.start != Start::Committed {
            r.pending = Some((seq, off));
        }
        Ok(r)
    }

    /// Commit the position after the last record received (a named reader resumes there).
    pub fn commit(&mut self) {
        if let (Some((seq, off)), Some(p)) = (self.pending.take(), self.position.as_mut()) {
            p.store(seq, off);
        }
    }

    /// The current position: segment number and byte offset in it.
    pub fn position(&self) -> (u64, u64) {
        (self.seq, self.off)
    }

    /// After a `Corrupted` error, step over the damaged record (or, if its length is
    /// damaged, the rest of its segment). False if there is nothing to skip.
    pub fn skip_corrupted(&mut self) -> bool {
        match self.bad_next.take() {
            Some(next) => {
                self.off = next;
                self.corrupted_skipped += 1;
                self.pending = Some((self.seq, self.off));
                true
            }
            None => false,
        }
    }

    /// Damaged records skipped so far.
    pub fn corrupted_skipped(&self) -> u64 {
        self.corrupted_skipped
    }

    /// Segments deleted by retention before this reader got to them.
    pub fn skipped_segments(&self) -> u64 {
        self.skipped_segments
    }

    fn ensure_segment(&mut self) -> Result<()> {
        while self.seg.as_ref().is_none_or(|s| s.seq != self.seq) {
            self.leave_segment();
            let (dir, seq) = (&self.dir, self.seq);
            match Segment::open_reusing(dir, seq, "recv", Access::ReadPreferWrite, &mut self.held) {
                Ok(s) => {
                    self.seg = Some(s);
                    self.known_end = 0;
                    self.known_sealed = false;
                }
                Err(e) if e.kind() == ErrorKind::NotFound => self.skip_retired()?,
                Err(e) => return Err(e.context("recv", self.addr.clone())),
            }
        }
        Ok(())
    }

    /// Keep the current segment's mapping for reuse, within [`HELD_BYTES`].
    fn leave_segment(&mut self) {
        let Some(seg) = self.seg.take() else { return };
        let Some(id) = file_id(&seg.map) else { return };
        self.held.push_back((seg, id));
        while self.held.iter().map(|h| h.0.cap).sum::<u64>() > HELD_BYTES {
            self.held.pop_front();
        }
    }

    /// The current segment was deleted or recycled by retention: go on at the oldest
    /// later one.
    fn skip_retired(&mut self) -> Result<()> {
        let segs = list_segments(&self.dir, "recv")?;
        let Some(&next) = segs.iter().find(|&&s| s > self.seq) else {
            return Err(Error::new(
                ErrorKind::Corrupted,
                "recv",
                self.addr.clone(),
                format!("segment {} is missing and no later one exists (the previous segment is marked sealed, or the reader's position names it): the log is damaged", segment_file_name(self.seq)),
            ));
        };
        self.skipped_segments += next - self.seq;
        self.seq = next;
        self.off = HEADER;
        self.leave_segment();
        Ok(())
    }

    /// Read and verify the record at `off` (below `end`) from the mapping into `buf`.
    fn record_at(
        &mut self,
        off: u64,
        end: u64,
        buf: &mut Vec<u8>,
    ) -> Result<std::result::Result<u64, Bad>> {
        // `end` lies inside the segment (checked when it was loaded, after the one `fstat`
        // that stands in for the SIGBUS guard where it is missing), so the copies are in
        // bounds; a truncation during them is caught by the guard, and reported as such
        // rather than as the damage it leaves.
        let seg = self.seg.as_ref().expect("a segment is open");
        let record = seg.record(off, end, buf);
        seg.check_truncated(&self.dir, "recv")?;
        Ok(record)
    }

    fn receive(&mut self, buf: &mut Vec<u8>, wait: Wait) -> Result<()> {
        self.commit();
        let deadline = wait.deadline();
        let mut spun = false;
        loop {
            self.ensure_segment()?;
            let seq = self.seq;
            if self.off < HEADER {
                self.off = HEADER;
            }
            if self.off >= self.known_end {
                // Look at the header again: one fstat first, so a truncated file is an
                // error rather than SIGBUS.
                let seg = self.seg.as_ref().expect("ensure_segment maps it");
                seg.check_file(&self.dir, "recv")?;
                // Sealed first: the writer stores the final end before it seals.
                let sealed = seg.sealed();
                let end = seg.end();
                if seg.recycled() {
                    if self.known_sealed && self.off == self.known_end {
                        // Read to its end before it was recycled: nothing was lost.
                        self.seq += 1;
                        self.off = HEADER;
                    } else {
                        self.skip_retired()?;
                    }
                    continue;
                }
                if !(HEADER..=seg.cap).contains(&end) || end % 8 != 0 {
                    return Err(Error::new(
                        ErrorKind::Corrupted,
                        "recv",
                        self.addr.clone(),
                        format!(
                            "segment {}: its committed end {end} is out of range",
                            segment_file_name(seq)
                        ),
                    ));
                }
                if self.off > end {
                    // The log was cut after a crash below where this reader stood.
                    self.off = end;
                }
                self.known_end = end;
                self.known_sealed = sealed;
            }
            let (off, end) = (self.off, self.known_end);
            if off < end {
                match self.record_at(off, end, buf)? {
                    Ok(next) => {
                        self.off = next;
                        self.pending = Some((seq, next));
                        return Ok(());
                    }
                    Err(_) if self.seg.as_ref().is_some_and(Segment::recycled) => {
                        // Not damage: the writer is reusing the segment under us.
                        self.skip_retired()?;
                        continue;
                    }
                    Err(bad) => {
                        let (why, next) = match bad {
                            Bad::Length => ("its length runs past the committed end (the length field is damaged; skipping it skips the rest of the segment)".to_owned(), end),
                            Bad::Checksum { stored, computed, next } => (format!("checksum mismatch (stored {stored:#010x}, computed {computed:#010x})"), next),
                        };
                        if self.skip {
                            self.off = next;
                            self.corrupted_skipped += 1;
                            self.pending = Some((seq, next));
                            continue;
                        }
                        self.bad_next = Some(next);
                        return Err(Error::new(
                            ErrorKind::Corrupted,
                            "recv",
                            self.addr.clone(),
                            format!(
                                "damaged record in segment {} at offset {off}: {why}; LogReader::skip_corrupted() (or ?skip=corrupted) steps over it",
                                segment_file_name(seq)
                            ),
                        ));
                    }
                }
            }
            let seg = self.seg.as_ref().expect("ensure_segment maps it");
            if seg.sealed() {
                // Re-read the end: the writer stores its last end before sealing.
                if seg.end() == end {
                    self.seq += 1;
                    self.off = HEADER;
                }
                continue;
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(match wait {
                    Wait::Never => Error::new(
                        ErrorKind::WouldBlock,
                        "recv",
                        self.addr.clone(),
                        "no record past this reader's position yet",
                    ),
                    _ => Error::new(
                        ErrorKind::TimedOut,
                        "recv",
                        self.addr.clone(),
                        "no record was appended in time (a log has no end: the writer leaving does not end it)",
                    ),
                });
            }
            // While records flow the next one is usually a moment away: look again a
            // bounded number of times before paying for a sleep and a wake-up.
            if !spun {
                spun = true;
                // No `sched_yield` here: on a busy machine it hands the core to whatever
                // else is runnable for a whole time slice, while the next record is
                // usually well under a microsecond away. The clock is read every 64 looks.
                let t0 = Instant::now();
                let moved = 'spin: loop {
                    for _ in 0..64 {
                        std::hint::spin_loop();
                        if seg.end() != end || seg.sealed() {
                            break 'spin true;
                        }
                    }
                    if t0.elapsed() >= SPIN_FOR {
                        break false;
                    }
                };
                if moved {
                    continue;
                }
            }
            spun = false;
            // Say we sleep, then re-check before sleeping (the writer checks the flag
            // after publishing; one of us sees the other).
            let mut until = deadline;
            if seg.writable() {
                seg.waiters().store(1, SeqCst);
            } else {
                // A read-only reader cannot ask to be woken: it looks every 10 ms.
                let step = Instant::now() + Duration::from_millis(10);
                until = Some(deadline.map_or(step, |d| d.min(step)));
            }
            let v = seg.notify_value();
            if seg.end() != end || seg.sealed() {
                continue;
            }
            seg.region()
                .wait_u32(H_NOTIFY, v, until)
                .map_err(|e| Error::from_errno("recv", self.addr.clone(), e.0))?;
        }
    }
}

impl Drop for LogReader {
    fn drop(&mut self) {
        self.commit();
        // A log outlives its creator by design: a clean close marks it kept (`ipcx rm
        // --stale` leaves it); only a creator that dies leaves it unkept.
        if let Some(r) = self.recorded.as_mut() {
            r.keep();
        }
    }
}

/// Open `mmap:/path` for appending (creating the log if it does not exist). The log is
/// durable: it is never removed on drop (remove it with [`remove`] or `rm -r`).
pub fn open_sender(addr: &Address, opts: &OpenOptions) -> Result<LogWriter> {
    let path = log_path(addr)?;
    let cfg = LogConfig::from_address(addr)?;
    if cfg.reader.is_some() || cfg.start != Start::Committed || cfg.skip_corrupted {
        return Err(Error::address(
            &addr.to_string(),
            "reader=, from= and skip= are options of a receiving end",
        ));
    }
    LogWriter::open_inner(path, &cfg, addr.to_string(), opts.open_timeout)
}

/// Open `mmap:/path` for reading. `opts.create` makes an empty log if none is there.
pub fn open_receiver(addr: &Address, opts: &OpenOptions) -> Result<LogReader> {
    let path = log_path(addr)?;
    let cfg = LogConfig::from_address(addr)?;
    LogReader::open_inner(path, &cfg, addr.to_string(), opts.create)
}

fn log_path(addr: &Address) -> Result<&Path> {
    match addr.target() {
        Target::Mmap(path) => Ok(path),
        _ => Err(Error::new(
            ErrorKind::InvalidAddress,
            "open",
            addr.to_string(),
            "not an mmap: address",
        )),
    }
}

impl Sender for LogWriter {
    fn send_wait(&mut self, msg: &[u8], _wait: Wait) -> Result<()> {
        // A log never pushes back: it grows until the disk is full.
        self.append(msg)
    }
    fn max_message_size(&self) -> usize {
        self.max_message()
    }
    fn address(&self) -> &str {
        &self.addr
    }
}

impl Receiver for LogReader {
    fn recv_wait(&mut self, buf: &mut Vec<u8>, wait: Wait) -> Result<()> {
        self.receive(buf, wait)
    }
    fn address(&self) -> &str {
        &self.addr
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sync_policies_parse() {
        assert_eq!(SyncPolicy::parse("none"), Some(SyncPolicy::None));
        assert_eq!(SyncPolicy::parse("always"), Some(SyncPolicy::Always));
        assert_eq!(SyncPolicy::parse("10"), Some(SyncPolicy::Every(10)));
        assert_eq!(
            SyncPolicy::parse("250ms"),
            Some(SyncPolicy::Interval(Duration::from_millis(250)))
        );
        assert_eq!(SyncPolicy::parse("2s"), Some(SyncPolicy::Interval(Duration::from_secs(2))));
        assert_eq!(SyncPolicy::parse("0"), None);
        assert_eq!(SyncPolicy::parse("soon"), None);
    }

    #[test]
    fn reader_names_are_checked() {
        assert!(check_reader_name("audit").is_ok());
        assert!(check_reader_name("a.b-c_1").is_ok());
        for bad in ["", ".hidden", "a/b", "x y", &"n".repeat(65)] {
            assert!(check_reader_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn write_read_in_process() {
        let dir = std::env::temp_dir().join(format!("ipcx-unit-log-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let cfg = LogConfig { segment: Some(MIN_SEGMENT), ..LogConfig::default() };
        let mut w = LogWriter::open(&dir, &cfg).unwrap();
        let mut r = LogReader::open(&dir, &cfg).unwrap();
        for i in 0..500u32 {
            w.append(&i.to_le_bytes().repeat((i % 7) as usize)).unwrap();
        }
        let mut buf = Vec::new();
        for i in 0..500u32 {
            r.recv_wait(&mut buf, Wait::Never).unwrap();
            assert_eq!(buf, i.to_le_bytes().repeat((i % 7) as usize));
        }
        assert_eq!(r.recv_wait(&mut buf, Wait::Never).unwrap_err().kind(), ErrorKind::WouldBlock);
        assert!(list_segments(&dir, "t").unwrap().len() > 1, "rolled over");
        drop((w, r));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
