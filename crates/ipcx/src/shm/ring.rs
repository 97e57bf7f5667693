//! The ring channel: one writer, one reader, variable-length messages in a power-of-two
//! data area of a shared segment.
//!
//! All access to shared memory goes through `Region` (atomics and bounds-checked
//! copies), so this module is safe code. The byte layout is in `docs/PROTOCOL.md`:
//!
//! ```text
//! offset  size  field (little-endian, native atomics)
//!      0     8  magic "IPCXRING"
//!      8     4  layout version (4)
//!     12     4  flags (reserved, 0)
//!     16     8  capacity of the data area in bytes (a power of two)
//!     24     8  writer owner: pid | (start time low 32 bits << 32); 0 = none
//!     32     8  reader owner: same
//!     40     4  closed bits: 1 = writer left, 2 = reader left
//!     44     4  never-sleeps bits: 1 = the writer spins only, 2 = the reader does
//!     64     8  reader-waits-at word: `tail | 1` while the reader waits in a receive at
//!                 `tail`, else 0 (its own cache line, beside words set at attach/close)
//!    128     8  head: bytes ever written (writer's cache line)
//!    136     4  reader-waiting futex word (1 while the reader sleeps)
//!    256     8  tail: bytes ever consumed (reader's cache line)
//!    264     4  writer-waiting futex word (1 while the writer sleeps)
//!    384     -  data area, `capacity` bytes
//! ```
//!
//! A record at ring position `p` (at `p % capacity`) is an 8-byte header (a `u32` length
//! word `w`: the payload length `n` in its low 29 bits and a gap `g` in 8-byte units in its
//! top 3; then the check `!w ^ (p >> 3) as u32`, sealing it to that position), `g` bytes
//! of gap, and the payload padded to 8 bytes. Payloads of [`ALIGN_FROM`] bytes or more
//! start on a 64-byte line of the data area (a gap of 0 to 56 bytes; none when the gap
//! could take the record past the largest message), smaller ones right after the header.
//! Where a record does not fit before the end of the data area, the writer puts a wrap
//! marker (length word `0xFFFF_FFFF`, sealed to its position like a header) and the record
//! starts at offset 0; it also **rewinds** to offset 0 when the reader has taken everything
//! and waits in a receive (see `RingWriter::rewind`), so a request/reply exchange reuses
//! the same few cache lines. A message is at most `capacity / 2 - 8` bytes, which
//! guarantees it always fits once the reader has caught up.
//!
//! **Publication and wake-up.** The writer copies the payload, then stores the record's
//! header with release ordering (the **seal**: a reader polling the slot at its tail takes
//! the record as soon as the header there carries that position's seal, without reading
//! `head`, whose cache line then stays with the writer: one cross-core transfer per
//! message fewer; a wrap marker is sealed the same way, after the record it leads to, and
//! a reader polling it follows it to that record), then swaps in the new `head`
//! (SeqCst, which also releases the bytes; on x86 the same `xchg` a SeqCst store is), then
//! loads the reader-waiting word. The reader, before sleeping, swaps 1 into the waiting
//! word, then re-reads `head` with a read-modify-write (`fetch_add(0)`), then sleeps on the
//! futex. Because the writer's publication and the reader's re-check are both
//! read-modify-writes of `head`, one is ordered before the other even under
//! acquire/release alone: either the reader finds the new record or the writer finds the
//! flag and wakes it. No lost wake-up (checked with loom, `loom_model.rs`), and the fast
//! path (reader not asleep) makes no system call and no extra atomic. The reverse direction
//! (the writer waiting for room) is symmetric on `tail` and the writer-waiting word; a
//! closing side `fetch_or`s its closed bit, clears the peer's waiting word and wakes it,
//! and a side about to sleep reads the closed bits with a read-modify-write too.
//!
//! **A peer that never sleeps.** A side in [`WaitMode::Spin`] sets its never-sleeps bit
//! while attached. Publishing to such a peer needs no wake-up protocol: the index is a
//! release store (no `xchg`, whose wait for the store buffer to drain was three quarters
//! of a streaming writer's own time) and the waiting word is not read. A side that may
//! sleep clears its bit at attach, so a stale bit (left by a spinning side that died) is
//! gone before the new side can sleep. Two hand-overs can still cost a wake-up, which the
//! side that misses it pays with one 50 ms sleep slice, never a hang: a side of an older
//! ipcx (which knows nothing of the bit) attaching over a stale one, and a spinning peer
//! replaced by one that sleeps while the publisher is held up between reading the bit and
//! storing its index. (Closing that second window would take a full fence per publish,
//! the very cost the bit saves.)
//!
//! **Untrusted memory.** Every index and length read from the segment is checked before use
//! (`head - tail <= capacity`, alignment, record inside the data area and below `head`);
//! a violation is [`ErrorKind::Corrupted`], never an access out of bounds or a panic.
//! A record taken by its seal is checked against the limit and the data area at once and
//! against `head` at the reader's next look there: the writer stores the head after each
//! seal, so the head may then be exactly at the start of that record (not yet stored) or
//! past it; anything else behind the tail is `Corrupted`. Bytes from an earlier lap do not
//! carry the current position's seal (the seal repeats only every 32 GiB of traffic), and
//! a writer that dies between a seal and its head store leaves a record that the next
//! writer counts as published.
//!
//! **A dead peer.** A blocked side sleeps in slices of 50 ms and checks at each one whether
//! the peer's owner word names a live process that started when it recorded (pid reuse is
//! caught by the start time from `/proc/PID/stat`); a peer that left cleanly sets its
//! closed bit and wakes the other side at once.

use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed, Release, SeqCst};
use std::time::{Duration, Instant};

use super::region::{Access, Region};
use crate::error::{Error, ErrorKind, Result};
use crate::sys::shm as sys;
use crate::Wait;

/// `"IPCXRING"`, little-endian.
pub const MAGIC: u64 = u64::from_le_bytes(*b"IPCXRING");
/// The layout version this build reads and writes.
pub const VERSION: u32 = 4;
/// Bytes before the data area.
pub const HEADER_LEN: usize = 384;
/// The default capacity of the data area (1 MiB).
pub const DEFAULT_CAPACITY: usize = 1 << 20;
/// The smallest capacity accepted.
pub const MIN_CAPACITY: usize = 1 << 10;
/// The largest capacity accepted (1 GiB).
pub const MAX_CAPACITY: usize = 1 << 30;
/// Bytes of a record header.
pub const RECORD_HEADER: usize = 8;
/// The cache line size the writer's store order is planned for (see `RingWriter::send`).
const CACHE_LINE: usize = 64;

const OFF_MAGIC: usize = 0;
const OFF_VERSION: usize = 8;
const OFF_CAPACITY: usize = 16;
const OFF_WRITER: usize = 24;
const OFF_READER: usize = 32;
const OFF_CLOSED: usize = 40;
/// Never-sleeps bits: the side's closed bit value while it is in spin mode.
pub(crate) const OFF_SPINNERS: usize = 44;
pub(crate) const OFF_HEAD: usize = 128;
const OFF_READER_WAITING: usize = 136;
const OFF_TAIL: usize = 256;
const OFF_WRITER_WAITING: usize = 264;
/// `tail | 1` while the reader waits in a receive for the record at `tail`, else 0 (see
/// `RingWriter::rewind`). Its own cache line: the writer reads it at every send that may
/// rewind, and a reader that never waits (a stream it lags behind) leaves it alone.
///
/// That line's 128-byte pair holds only words that change when a side attaches or leaves
/// (and the closed word, which a side about to sleep reads with a read-modify-write): a
/// core that misses on a line may fetch the other line of its pair too. With this word at
/// 320 (layout version 3), beside the tail at 256, each of the writer's reads of it also
/// took the tail's line, and the reader's next store to the tail had to take it back:
/// a 1 KiB spinning round trip took about 60 ns longer (measured on the 2-core EPYC
/// machine, with a C model and in ipcx).
pub(crate) const OFF_READER_WAITS: usize = 64;

const WRITER_CLOSED: u32 = 1;
const READER_CLOSED: u32 = 2;
const WRAP: u32 = u32::MAX;
/// Bits of a header's length word that hold the payload length (no ring carries a message
/// of 2^29 bytes: the largest capacity is 1 GiB); the three above hold the gap.
const LENGTH_BITS: u32 = 29;
const LENGTH_MASK: u32 = (1 << LENGTH_BITS) - 1;
/// The largest gap between a header and its payload.
const MAX_GAP: usize = CACHE_LINE - RECORD_HEADER;
/// Payloads of at least this many bytes start on a cache line: the writer leaves a gap of
/// up to 56 bytes after the header (said in the header), so both sides copy whole lines,
/// and a 1 KiB payload spans 16 lines instead of 17 (measured in C on the 2-core EPYC
/// machine, spinning round trips in place: 1 KiB in 290 ns instead of 342, 512 B in 130
/// ns instead of 155; at 256 B and below the payload sharing the header's line was as fast
/// or faster, and 4 KiB was level).
pub const ALIGN_FROM: usize = 512;
/// No ring's positions (bytes ever written) reach this (at 100 GB/s, 1.5 years of traffic):
/// an index past it is damage, refused at attach, so sums of positions and record sizes
/// never overflow.
const MAX_POSITION: u64 = 1 << 62;
/// What the writer stores in the header slot after each record before it seals the
/// record: a length no ring accepts, so a reader that reaches the head before the next
/// record is written finds "nothing yet" there, never a stale header. (A header left from
/// an earlier lap in a slot that wrap skips kept untouched carries the same seal as the
/// current position once positions have advanced 2^35 bytes, 32 GiB, and would be taken
/// for a record: the 10 million message test found it.)
const NOT_YET: u64 = u64::MAX;
/// The size of the [`NOT_YET`] mark.
const MARK: u64 = RECORD_HEADER as u64;

/// Records (header, gap and padded payload) of at most this many bytes rewind to the start
/// of the data area as soon as they fit before the reader's position (see
/// `RingWriter::rewind`).
pub const REWIND_SMALL: usize = 2048;

/// How long a blocked side spins before it sleeps (blocking mode).
pub const SPIN_FOR: Duration = Duration::from_micros(30);
/// How long a writer that found the ring full waits for a quarter of it to free up
/// (beyond its message) before it takes any room (see `RingWriter::wait_room`).
const SLACK_FOR: Duration = Duration::from_micros(100);
/// Quick looks a waiting side takes before it first reads the clock (see `End::wait_for`).
const FIRST_LOOKS: u32 = 256;
/// Yields after spinning, before sleeping.
const YIELDS: u32 = 4;
/// The longest single sleep: a dead peer is noticed within about this long.
pub const SLEEP_SLICE: Duration = Duration::from_millis(50);

/// The largest message a ring of `capacity` bytes carries.
pub const fn max_message(capacity: usize) -> usize {
    capacity / 2 - RECORD_HEADER
}

/// A ring capacity that streams messages of `message_size` bytes well (`?capacity=`):
/// room for at least 8 of them and at least 256 KiB; for messages of 16 KiB and more,
/// room for 64 (4 MiB for 64 KiB messages).
///
/// Why large messages want a large ring: with only a few in flight, the reader copies
/// lines the writer has just written, still modified in the writer's core's cache, and
/// each crosses cores on its own; with many in flight the lines have moved on to the
/// shared last-level cache by the time they are read, and the copy streams. Measured on a
/// 2-core AMD EPYC virtual machine at 64 KiB: a 1 MiB ring about 13 GB/s, 4 MiB about
/// 30 GB/s.
pub const fn capacity_for(message_size: usize) -> usize {
    let want = if message_size >= 16 << 10 {
        message_size.saturating_mul(64)
    } else {
        message_size.saturating_add(RECORD_HEADER).saturating_mul(8)
    };
    let cap = want.next_power_of_two();
    if cap < 256 << 10 {
        256 << 10
    } else {
        cap
    }
}

/// The segment size a ring of `capacity` needs.
pub const fn segment_len(capacity: usize) -> usize {
    HEADER_LEN + capacity
}

/// How a blocked side waits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum WaitMode {
    /// Spin a short, bounded time, then sleep on a futex (the default).
    #[default]
    Blocking,
    /// Spin and never sleep: the lowest latency, a whole core while waiting (`?spin=1`).
    Spin,
}

/// The seal of a record starting at ring position `pos` (bytes ever written): the check
/// word of its header is `!length ^ seal(pos)`. It ties a header to the one position it
/// was written for, so a reader polling the slot at its `tail` can tell a record published
/// there from bytes left by an earlier lap.
#[inline]
fn seal(pos: u64) -> u32 {
    (pos >> 3) as u32
}

/// A record header as one little-endian word: the length word (see [`length_word`]), then
/// its sealed check.
#[inline]
fn header_word(word: u32, pos: u64) -> u64 {
    u64::from(word) | (u64::from(!word ^ seal(pos)) << 32)
}

/// The length word of a record header: the payload length in the low 29 bits, and in the
/// top 3 the gap between header and payload in 8-byte units (see [`ALIGN_FROM`]).
#[inline]
fn length_word(len: usize, gap: usize) -> u32 {
    len as u32 | ((gap / 8) as u32) << LENGTH_BITS
}

/// A length word's payload length and gap in bytes.
#[inline]
fn split_length_word(word: u32) -> (usize, usize) {
    ((word & LENGTH_MASK) as usize, (word >> LENGTH_BITS) as usize * 8)
}

/// The gap that puts the payload of a record whose header is at data-area offset `pos` at
/// the start of a cache line: 0 when the header ends a line, up to 56.
#[inline]
fn line_gap(pos: usize) -> usize {
    (CACHE_LINE - RECORD_HEADER).wrapping_sub(pos) & (CACHE_LINE - 1)
}

fn pad8(n: usize) -> usize {
    (n + 7) & !7
}

/// A record's size: header, gap and payload padded to 8 bytes (the one rule the writer
/// places records by and the reader steps over them by).
#[inline(always)]
fn record_len(len: usize, gap: usize) -> usize {
    RECORD_HEADER + gap + pad8(len)
}

/// What the writer needs to place a message: its length, and whether its payload goes on
/// a cache line of its own (see [`ALIGN_FROM`]).
#[derive(Clone, Copy)]
struct Shape {
    len: usize,
    aligned: bool,
}

impl Shape {
    /// A message of `len` bytes in a ring whose largest message is `max`: aligned from
    /// [`ALIGN_FROM`] bytes on, unless the gap could take it past the half of the ring
    /// that a record may use (then it never needs one).
    #[inline(always)]
    fn new(len: usize, max: usize) -> Shape {
        Shape { len, aligned: len >= ALIGN_FROM && pad8(len) + MAX_GAP <= max }
    }

    /// The gap before the payload with the record's header at data-area offset `pos`.
    #[inline(always)]
    fn gap_at(self, pos: usize) -> usize {
        if self.aligned {
            line_gap(pos)
        } else {
            0
        }
    }

    /// The record's size with its header at data-area offset `pos`.
    #[inline(always)]
    fn need_at(self, pos: usize) -> usize {
        record_len(self.len, self.gap_at(pos))
    }

    /// Where the record goes with the head at data-area offset `pos`, `till_end` bytes
    /// before the end: `(skip, need)`, the bytes skipped to the start of the data area (0
    /// when it goes at the head) and its size there. It skips when it does not fit before
    /// the end, or when `rewind` (asked with its size at the start) says so.
    #[inline(always)]
    fn place(
        self,
        pos: usize,
        till_end: usize,
        rewind: impl FnOnce(usize) -> bool,
    ) -> (u64, usize) {
        let (here, at_start) = (self.need_at(pos), self.need_at(0));
        if here > till_end || rewind(at_start) {
            (till_end as u64, at_start)
        } else {
            (0, here)
        }
    }
}

#[cold]
#[inline(never)]
fn corrupted(object: &str, op: &'static str, what: impl Into<String>) -> Error {
    Error::new(
        ErrorKind::Corrupted,
        op,
        object,
        format!(
            "{}; the ring's shared memory was damaged (by a faulty process, or another program writing to the segment); remove the segment and start both sides again",
            what.into()
        ),
    )
}

#[cold]
#[inline(never)]
fn access(object: &str, op: &'static str, a: Access) -> Error {
    match a {
        Access::OutOfBounds => corrupted(object, op, "an offset lies outside the segment"),
        Access::ReadOnly => Error::new(
            ErrorKind::PermissionDenied,
            op,
            object,
            "the segment is mapped read-only; a ring needs a writable mapping",
        ),
    }
}

/// Write a fresh ring header of `capacity` into `region` (the creator does this before
/// anyone else attaches). The magic is stored last, with release ordering.
pub fn init(region: &Region, capacity: usize, object: &str) -> Result<()> {
    check_capacity(capacity, object, "create")?;
    if region.len() < segment_len(capacity) {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            "create",
            object,
            format!(
                "segment of {} bytes is smaller than a ring of capacity {capacity} needs ({})",
                region.len(),
                segment_len(capacity)
            ),
        ));
    }
    let e = |a| access(object, "create", a);
    region.fill(0, HEADER_LEN, 0).map_err(e)?;
    region.u32_at(OFF_VERSION).map_err(e)?.store(VERSION, Relaxed);
    region.u64_at(OFF_CAPACITY).map_err(e)?.store(capacity as u64, Relaxed);
    region.u64_at(OFF_MAGIC).map_err(e)?.store(MAGIC, Release);
    Ok(())
}

/// Check a capacity: a power of two from [`MIN_CAPACITY`] to [`MAX_CAPACITY`].
pub fn check_capacity(capacity: usize, object: &str, op: &'static str) -> Result<()> {
    if !capacity.is_power_of_two() || !(MIN_CAPACITY..=MAX_CAPACITY).contains(&capacity) {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            op,
            object,
            format!("ring capacity {capacity} must be a power of two from {MIN_CAPACITY} to {MAX_CAPACITY} bytes (?capacity=N)"),
        ));
    }
    Ok(())
}

/// Check that `region` holds a ring of this layout version; its capacity.
///
/// `Ok(None)` while the header is not yet initialised (all zero: the creator is still
/// writing it), so an opener can wait a moment.
pub fn check_header(region: &Region, object: &str, op: &'static str) -> Result<Option<usize>> {
    if region.len() < HEADER_LEN + MIN_CAPACITY {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            op,
            object,
            format!(
                "the segment is {} bytes, too small to be an ipcx ring (at least {}); it is not a ring",
                region.len(),
                HEADER_LEN + MIN_CAPACITY
            ),
        ));
    }
    let e = |a| access(object, op, a);
    let magic = region.load_u64(OFF_MAGIC, Acquire).map_err(e)?;
    if magic == 0 {
        return Ok(None);
    }
    if magic != MAGIC {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            op,
            object,
            format!("the segment is not an ipcx ring (magic {magic:#018x}, expected \"IPCXRING\"); use the shm module's Segment for raw segments"),
        ));
    }
    let version = region.load_u32(OFF_VERSION, Acquire).map_err(e)?;
    if version != VERSION {
        return Err(Error::new(
            ErrorKind::Unsupported,
            op,
            object,
            format!("the ring has layout version {version}, this ipcx reads version {VERSION}; use the same ipcx version on both sides"),
        ));
    }
    let cap = region.load_u64(OFF_CAPACITY, Acquire).map_err(e)?;
    let cap = usize::try_from(cap).unwrap_or(usize::MAX);
    if !cap.is_power_of_two()
        || !(MIN_CAPACITY..=MAX_CAPACITY).contains(&cap)
        || segment_len(cap) > region.len()
    {
        return Err(corrupted(
            object,
            op,
            format!(
                "the header's capacity {cap} does not fit the segment of {} bytes",
                region.len()
            ),
        ));
    }
    Ok(Some(cap))
}

/// This process's owner word: pid and start time. Cached per pid, so a child made by
/// `fork` computes its own.
fn owner_word() -> u64 {
    static CACHE: AtomicU64 = AtomicU64::new(0);
    let pid = sys::getpid() as u32;
    let w = CACHE.load(Relaxed);
    if w != 0 && (w & 0xffff_ffff) as u32 == pid {
        return w;
    }
    let start = sys::process_start_time(pid as i32).unwrap_or(0) as u32;
    let w = (u64::from(start) << 32) | u64::from(pid);
    CACHE.store(w, Relaxed);
    w
}

/// Whether the owner word names a live process (0: nobody).
fn owner_alive(word: u64) -> bool {
    word != 0 && sys::process_is((word & 0xffff_ffff) as u32 as i32, word >> 32)
}

/// The pid in an owner word.
fn owner_pid(word: u64) -> i32 {
    (word & 0xffff_ffff) as u32 as i32
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Side {
    Writer,
    Reader,
}

impl Side {
    fn owner_off(self) -> usize {
        match self {
            Side::Writer => OFF_WRITER,
            Side::Reader => OFF_READER,
        }
    }
    fn closed_bit(self) -> u32 {
        match self {
            Side::Writer => WRITER_CLOSED,
            Side::Reader => READER_CLOSED,
        }
    }
    /// The index this side publishes: `head` for the writer, `tail` for the reader.
    fn index_off(self) -> usize {
        match self {
            Side::Writer => OFF_HEAD,
            Side::Reader => OFF_TAIL,
        }
    }
    /// The futex word this side sleeps on.
    fn waiting_off(self) -> usize {
        match self {
            Side::Writer => OFF_WRITER_WAITING,
            Side::Reader => OFF_READER_WAITING,
        }
    }
    fn peer(self) -> Side {
        match self {
            Side::Writer => Side::Reader,
            Side::Reader => Side::Writer,
        }
    }
    fn name(self) -> &'static str {
        match self {
            Side::Writer => "writer",
            Side::Reader => "reader",
        }
    }
}

/// What both ends share: the region, the capacity, the object name and the side.
#[derive(Debug)]
struct End {
    region: Region,
    cap: usize,
    mask: u64,
    side: Side,
    me: u64,
    mode: WaitMode,
    object: String,
    /// Pid-liveness checks (off for in-process heap rings, where there is no peer pid).
    check_peer: bool,
    /// A reader that outlives its writers: a writer leaving is not `Disconnected`.
    persist: bool,
}

impl End {
    fn attach(
        region: Region,
        side: Side,
        mode: WaitMode,
        object: String,
        check_peer: bool,
    ) -> Result<End> {
        let op = "open";
        let cap = match check_header(&region, &object, op)? {
            Some(c) => c,
            None => {
                return Err(Error::new(
                    ErrorKind::InvalidInput,
                    op,
                    &object,
                    "the segment's ring header is not initialised (all zero); it is not a ring, or its creator died while making it",
                ))
            }
        };
        let me = if check_peer { owner_word() } else { 1 };
        let slot = region.u64_at(side.owner_off()).map_err(|a| access(&object, op, a))?;
        loop {
            let cur = slot.load(Acquire);
            if cur != 0 && (!check_peer || owner_alive(cur)) {
                return Err(Error::new(
                    ErrorKind::AlreadyExists,
                    op,
                    &object,
                    format!(
                        "the ring already has a {} (process {}); a ring has one writer and one reader (a duplex channel is two rings)",
                        side.name(),
                        owner_pid(cur)
                    ),
                ));
            }
            // Free, or its owner died: take the slot.
            if slot.compare_exchange(cur, me, AcqRel, Acquire).is_ok() {
                break;
            }
        }
        let spinners = region.u32_at(OFF_SPINNERS).map_err(|a| access(&object, op, a))?;
        if mode == WaitMode::Spin {
            spinners.fetch_or(side.closed_bit(), SeqCst);
        } else {
            spinners.fetch_and(!side.closed_bit(), SeqCst);
        }
        let closed = region.u32_at(OFF_CLOSED).map_err(|a| access(&object, op, a))?;
        closed.fetch_and(!side.closed_bit(), SeqCst);
        // A peer that is not attached now (it left, or its process died) has not come yet
        // as far as this end is concerned: on a kept ring, an earlier session's peer
        // leaving is not this end's `Disconnected`. So free a dead peer's slot and clear
        // the closed bit of a peer whose slot is free; then this end waits for a peer as
        // on a new ring. (A peer that attaches meanwhile clears its own bit anyway; one
        // that leaves meanwhile sets it again after freeing its slot.) Except a writer
        // that left messages unread: a reader attaching then takes what that writer sent
        // and ends after it, as it would had it attached first (which one attached first
        // is a race for the two programs).
        let peer = region.u64_at(side.peer().owner_off()).map_err(|a| access(&object, op, a))?;
        let p = peer.load(Acquire);
        if p != 0 && check_peer && !owner_alive(p) {
            let _ = peer.compare_exchange(p, 0, AcqRel, Acquire);
        }
        let index = |s: Side| {
            region
                .u64_at(s.index_off())
                .map(|w| w.load(Acquire))
                .map_err(|a| access(&object, op, a))
        };
        let messages_left = side == Side::Reader && index(Side::Writer)? != index(Side::Reader)?;
        if peer.load(Acquire) == 0 && !messages_left {
            closed.fetch_and(!side.peer().closed_bit(), SeqCst);
        }
        Ok(End {
            region,
            cap,
            mask: cap as u64 - 1,
            side,
            me,
            mode,
            object,
            check_peer,
            persist: false,
        })
    }

    #[inline]
    fn word32(&self, off: usize) -> &std::sync::atomic::AtomicU32 {
        // Offsets in the header are constants inside a region checked at attach.
        self.region.u32_at(off).expect("header word inside the checked region")
    }

    #[inline]
    fn word64(&self, off: usize) -> &std::sync::atomic::AtomicU64 {
        self.region.u64_at(off).expect("header word inside the checked region")
    }

    /// Whether the peer left or died.
    fn peer_gone(&self) -> bool {
        if self.persist {
            return false;
        }
        let peer = self.side.peer();
        // A read-modify-write, to pair with the closing side's `fetch_or` (see `wait_for`).
        if self.word32(OFF_CLOSED).fetch_or(0, SeqCst) & peer.closed_bit() != 0 {
            return true;
        }
        if !self.check_peer {
            return false;
        }
        let w = self.word64(peer.owner_off()).load(Acquire);
        // 0: never attached yet (wait for it), unless it left (closed bit, above).
        w != 0 && !owner_alive(w)
    }

    #[inline]
    fn peer_closed(&self) -> bool {
        !self.persist && self.word32(OFF_CLOSED).load(Acquire) & self.side.peer().closed_bit() != 0
    }

    /// Publish this side's index (`head` for the writer, `tail` for the reader) and wake
    /// the peer if it sleeps. To a peer that never sleeps, a release store and nothing
    /// more; otherwise the swap and the look at its waiting word of the wake-up protocol.
    #[inline]
    fn publish(&self, index: u64) {
        let off = self.side.index_off();
        let peer_spins = self.word32(OFF_SPINNERS).load(Relaxed) & self.side.peer().closed_bit();
        if peer_spins != 0 {
            self.word64(off).store(index, Release);
            return;
        }
        // A swap (not a store): see the wake-up protocol in the module docs.
        self.word64(off).swap(index, SeqCst);
        self.wake_peer();
    }

    /// Wake the peer if it sleeps (its waiting word is 1).
    #[inline]
    fn wake_peer(&self) {
        let w = self.word32(self.side.peer().waiting_off());
        if w.load(SeqCst) != 0 {
            w.store(0, SeqCst);
            sys::futex_wake(w, 1);
        }
    }

    /// Wait as `wait` says until `poll` gives a value. `poll(look)` looks at the other
    /// side's index: `Reload::No` a quick look (the reader: only the slot at its tail),
    /// `Yes` a load, `Strong` a read-modify-write (the re-check before sleeping);
    /// a gone peer is `Disconnected` (after a last poll), `busy` the non-blocking error.
    /// `first_looks` quick looks come before the first clock read ([`FIRST_LOOKS`], or 0
    /// for a caller that took them itself).
    fn wait_for<T>(
        &self,
        wait: Wait,
        op: &'static str,
        busy: ErrorKind,
        first_looks: u32,
        mut poll: impl FnMut(Reload) -> Result<Option<T>>,
    ) -> Result<T> {
        // A side that may wait starts with a quick look (the reader: the slot at its tail
        // only, so the head's line stays with the writer); a full look follows within the
        // first spin batch.
        let first = if wait == Wait::Never { Reload::Yes } else { Reload::No };
        if let Some(v) = poll(first)? {
            return Ok(v);
        }
        if self.peer_closed() {
            return poll(Reload::Yes)?.ok_or_else(|| self.disconnected(op));
        }
        let deadline = match wait {
            Wait::Never => return Err(self.busy(op, busy)),
            Wait::Forever => None,
            Wait::Until(d) => Some(d),
        };
        // A first batch of quick looks before any clock read: a reply often comes within a
        // few hundred nanoseconds, and reading the clock (tens of nanoseconds in a virtual
        // machine, about 15% of a spinning reader's time in a 64 B exchange) would delay
        // noticing it. A deadline is checked a few microseconds late at most.
        for _ in 0..first_looks {
            std::hint::spin_loop();
            if let Some(v) = poll(Reload::No)? {
                return Ok(v);
            }
        }
        let start = Instant::now();
        let mut next_check = start + SLEEP_SLICE;
        let mut yields = 0;
        loop {
            let now = Instant::now();
            if deadline.is_some_and(|d| now >= d) {
                return Err(self.timed_out(op, busy, wait));
            }
            if now >= next_check {
                if self.peer_gone() {
                    return poll(Reload::Yes)?.ok_or_else(|| self.disconnected(op));
                }
                next_check = now + SLEEP_SLICE;
            }
            let spinning = self.mode == WaitMode::Spin || now - start < SPIN_FOR;
            if spinning {
                // Spin mode never sleeps, but past the spin time it offers the core to
                // others between batches, so a peer sharing the core can run.
                if now - start >= SPIN_FOR {
                    std::thread::yield_now();
                }
                // Poll between single pause hints (a pause is tens of cycles), and read the
                // clock only every 64 polls.
                for i in 0..64 {
                    std::hint::spin_loop();
                    // A quick look (the reader: only the slot at its tail, so the head's
                    // line stays with the writer), a full one at the end of each batch.
                    let look = if i == 63 { Reload::Yes } else { Reload::No };
                    if let Some(v) = poll(look)? {
                        return Ok(v);
                    }
                }
                continue;
            }
            if yields < YIELDS {
                yields += 1;
                std::thread::yield_now();
                if let Some(v) = poll(Reload::Yes)? {
                    return Ok(v);
                }
                continue;
            }
            // Sleep: announce, re-check, then wait on the futex for one slice.
            let flag = self.word32(self.side.waiting_off());
            // The swap and the read-modify-write re-check of the index (`poll(true)`) pair
            // with the other side's index swap: one of the two sees the other.
            flag.swap(1, SeqCst);
            if let Some(v) = poll(Reload::Strong)? {
                flag.store(0, Relaxed);
                return Ok(v);
            }
            if self.peer_gone() {
                flag.store(0, Relaxed);
                return poll(Reload::Yes)?.ok_or_else(|| self.disconnected(op));
            }
            next_check = Instant::now() + SLEEP_SLICE;
            let mut slice = SLEEP_SLICE;
            if let Some(d) = deadline {
                slice = slice.min(d.saturating_duration_since(Instant::now()));
            }
            if !slice.is_zero() {
                sys::futex_wait(flag, 1, Some(slice));
            }
            flag.store(0, Relaxed);
            if let Some(v) = poll(Reload::Yes)? {
                return Ok(v);
            }
            if self.peer_gone() {
                return poll(Reload::Yes)?.ok_or_else(|| self.disconnected(op));
            }
        }
    }

    fn disconnected(&self, op: &'static str) -> Error {
        let peer = self.side.peer();
        Error::new(
            ErrorKind::Disconnected,
            op,
            &self.object,
            format!("the ring's {} closed its end or died", peer.name()),
        )
    }

    fn busy(&self, op: &'static str, kind: ErrorKind) -> Error {
        let what = if kind == ErrorKind::Full {
            "the ring is full (the reader has not caught up)"
        } else {
            "no message is waiting"
        };
        Error::new(kind, op, &self.object, what)
    }

    fn timed_out(&self, op: &'static str, kind: ErrorKind, wait: Wait) -> Error {
        let _ = wait;
        let what = if kind == ErrorKind::Full {
            "the ring stayed full until the deadline"
        } else {
            "no message came before the deadline"
        };
        Error::new(ErrorKind::TimedOut, op, &self.object, what)
    }

    fn release(&self) {
        self.word32(OFF_SPINNERS).fetch_and(!self.side.closed_bit(), SeqCst);
        let slot = self.word64(self.side.owner_off());
        let _ = slot.compare_exchange(self.me, 0, SeqCst, Relaxed);
        self.word32(OFF_CLOSED).fetch_or(self.side.closed_bit(), SeqCst);
        let w = self.word32(self.side.peer().waiting_off());
        w.store(0, SeqCst);
        sys::futex_wake(w, 1);
    }
}

/// The writing end of a ring.
#[derive(Debug)]
pub struct RingWriter {
    end: End,
    head: u64,
    cached_tail: u64,
    max: usize,
}

/// The reading end of a ring.
#[derive(Debug)]
pub struct RingReader {
    end: End,
    tail: u64,
    cached_head: u64,
    /// Where the last record taken by its seal (before the head showed it) started: the
    /// head may lag behind `tail` by that record, never further back.
    floor: u64,
    max: usize,
}

impl RingWriter {
    /// Attach as the writer of the ring in `region` (checked); `object` names it in errors.
    /// `check_peer: false` is for rings inside one process (tests), where liveness is moot.
    pub fn attach(
        region: Region,
        mode: WaitMode,
        object: String,
        check_peer: bool,
    ) -> Result<RingWriter> {
        let end = End::attach(region, Side::Writer, mode, object, check_peer)?;
        let mut head = end.word64(OFF_HEAD).load(Acquire);
        let tail = end.word64(OFF_TAIL).load(Acquire);
        let max = max_message(end.cap);
        // A writer that died between sealing a record and storing the head past it left a
        // record the reader may take (or have taken) by its seal: it counts as published,
        // so continue after it rather than overwrite it under the reader.
        if let Some((_, _, after)) = taken_by_seal(&end, head, max) {
            if tail <= after && after - tail <= end.cap as u64 {
                head = after;
                end.word64(OFF_HEAD).swap(head, SeqCst);
            }
        }
        let mut w = RingWriter { end, head, cached_tail: tail, max };
        w.check_indices(tail, "open")?;
        w.head = head;
        Ok(w)
    }

    fn check_indices(&self, tail: u64, op: &'static str) -> Result<()> {
        if tail > self.head
            || self.head - tail > self.end.cap as u64
            || (self.head | tail) % 8 != 0
            || self.head > MAX_POSITION
        {
            return Err(corrupted(
                &self.end.object,
                op,
                format!(
                    "head {} and tail {tail} are not consistent with capacity {}",
                    self.head, self.end.cap
                ),
            ));
        }
        Ok(())
    }

    /// The largest message this ring carries (`capacity / 2 - 8`).
    pub fn max_message_size(&self) -> usize {
        self.max
    }

    /// The data area's capacity in bytes.
    pub fn capacity(&self) -> usize {
        self.end.cap
    }

    /// The address or name in error messages.
    pub fn object(&self) -> &str {
        &self.end.object
    }

    /// Room for a record of `shape` at the current head, counting a wrap marker:
    /// `Some((skip, need))` (bytes to skip to the start of the data area, and the record's
    /// size there) when there is room.
    #[inline(always)]
    fn room(&mut self, shape: Shape, reload: bool) -> Result<Option<(u64, usize)>> {
        let pos = (self.head & self.end.mask) as usize;
        let till_end = self.end.cap - pos;
        let (skip, need) = shape.place(pos, till_end, |n| self.rewind(pos, n));
        let total = skip + need as u64;
        let cap = self.end.cap as u64;
        if self.head + total - self.cached_tail <= cap {
            return Ok(Some((skip, need)));
        }
        if !reload {
            return Ok(None);
        }
        let tail = self.end.word64(OFF_TAIL).load(SeqCst);
        self.check_indices(tail, "send")?;
        self.cached_tail = tail;
        Ok((self.head + total - tail <= cap).then_some((skip, need)))
    }

    /// Whether to rewind to the start of the data area now, before its end: when the reader
    /// has taken everything and waits in a receive for more (its waits-at word is
    /// `head | 1`), and the record (of `need` bytes at the start, at most
    /// [`REWIND_SMALL`]) fits before the reader's position. The writer puts a wrap marker
    /// at the head, which the waiting reader follows at once; the skipped bytes count as
    /// used until it has.
    ///
    /// A request/reply exchange then reuses the same lines, which stay in both cores'
    /// caches, instead of moving through the ring, whose lines come back from further away
    /// (measured in C on the 2-core EPYC machine: a 64 B round trip 190 ns moving through
    /// the first 8 KiB, 95 ns in place, 380 ns moving through 256 KiB; 1 KiB with its
    /// payload on whole lines, 290 ns in place and 343 ns moving through 8 KiB; in ipcx, a
    /// 1 KiB round trip 343 ns in place and 398 ns moving). Larger records do not rewind:
    /// their copies take longer than the lines' trips. A stream whose reader lags never
    /// finds it waiting at the head and goes on through the whole ring; it reads the word,
    /// on a line of its own that only a waiting reader writes, at each send.
    #[inline(always)]
    fn rewind(&mut self, pos: usize, need: usize) -> bool {
        if need > REWIND_SMALL || pos < need {
            return false;
        }
        // Acquire: pairs with the reader's release store, made after it read every record
        // before `head`, so none of their bytes is overwritten under it.
        if self.end.word64(OFF_READER_WAITS).load(Acquire) != self.head | 1 {
            return false;
        }
        self.cached_tail = self.head;
        true
    }

    fn too_large(&self, len: usize) -> Error {
        Error::too_large(
            "send",
            &self.end.object,
            self.max as u64,
            format!(
                "a message of {len} bytes is over the ring's limit of {} bytes (half its capacity of {}, less an 8-byte header); open the ring with a larger ?capacity=N (a power of two)",
                self.max, self.end.cap
            ),
        )
    }

    /// Reserve room for a message of `len` bytes, waiting as `wait` says; write it in place
    /// through the guard and [`WriteGuard::commit`] it. Dropping the guard sends nothing.
    ///
    /// Always inlined, with `room` and `rewind`, into `send`: behind a call boundary (a
    /// `WriteGuard` returned through memory) the record's stores started only once the
    /// loads of shared words before them were done, and a 64 B round trip took about
    /// 180 ns instead of 90 ns (measured in the 2-core VM, the other side bare).
    #[inline(always)]
    pub fn reserve(&mut self, len: usize, wait: Wait) -> Result<WriteGuard<'_>> {
        if len > self.max {
            return Err(self.too_large(len));
        }
        if self.end.peer_closed() {
            return Err(self.end.disconnected("send"));
        }
        let shape = Shape::new(len, self.max);
        let (skip, need) = match self.room(shape, false)? {
            Some(s) => s,
            None => self.wait_room(shape, wait)?,
        };
        let start = self.head + skip;
        let gap = shape.gap_at((start & self.end.mask) as usize);
        // The header is written by `commit`, after the payload: it is what seals the record;
        // a wrap marker at the head goes after that (the reader polls there, and finds the
        // record already sealed when it follows the marker).
        Ok(WriteGuard {
            off: HEADER_LEN + (start & self.end.mask) as usize + RECORD_HEADER + gap,
            len,
            gap,
            start,
            new_head: start + need as u64,
            w: self,
        })
    }

    fn wait_room(&mut self, shape: Shape, wait: Wait) -> Result<(u64, usize)> {
        let cap = self.end.cap as u64;
        let mask = self.end.mask;
        let head = self.head;
        let pos = (head & mask) as usize;
        let till_end = self.end.cap - pos;
        let (skip, need) = shape.place(pos, till_end, |_| false);
        let total = skip + need as u64;
        // Once the ring is full and the writer has to wait, it waits (up to SLACK_FOR) for
        // a quarter of the ring beyond this message before going on (a first look takes
        // any room): a writer that resumes the moment one message's room frees up writes right
        // behind the reader, into lines still in the reader's cache, and the reader then
        // reads lines still in the writer's, so every line crosses cores on its own. With
        // the slack the two work a quarter ring apart and the copies stream (64 KiB
        // messages, spin mode: about 0.5x the memory-copy lane without it).
        let (quarter, mut slack, mut first) = ((cap / 4).min(cap - total), 0, true);
        // Bounded in time: a reader that takes one message and then waits for something
        // from this writer (a request/reply protocol over a duplex pair) must not leave
        // it waiting for room that will not come.
        let started = Instant::now();
        let end = &self.end;
        let mut seen_tail = self.cached_tail;
        let r = end.wait_for(wait, "send", ErrorKind::Full, FIRST_LOOKS, |look| {
            let t = end.word64(OFF_TAIL);
            let tail = if look == Reload::Strong { t.fetch_add(0, SeqCst) } else { t.load(SeqCst) };
            if tail > head || head - tail > cap || tail % 8 != 0 {
                return Err(corrupted(
                    &end.object,
                    "send",
                    format!("head {head} and tail {tail} are not consistent with capacity {cap}"),
                ));
            }
            seen_tail = tail;
            let fits = head + total + slack - tail <= cap;
            if first {
                (first, slack) = (false, quarter);
            } else if slack > 0 && started.elapsed() >= SLACK_FOR {
                slack = 0;
            }
            Ok(fits.then_some((skip, need)))
        });
        self.cached_tail = seen_tail;
        r
    }

    /// Send one message (copied into the ring), waiting for room as `wait` says.
    #[inline]
    pub fn send(&mut self, msg: &[u8], wait: Wait) -> Result<()> {
        let mut g = self.reserve(msg.len(), wait)?;
        // The payload bytes that share the header's cache line are stored last, together
        // with the seal: the reader polls that line, and it moves to this core once for
        // all of them instead of once for the first bytes and again for the seal. After a
        // wrap marker the reader polls the marker's line instead: the payload goes in
        // order, and the marker last.
        let first = if g.wrap_at().is_some() {
            0
        } else {
            ((CACHE_LINE - g.off % CACHE_LINE) % CACHE_LINE).min(msg.len())
        };
        g.write_at(first, &msg[first..])?;
        g.mark_next();
        if first > 0 {
            g.write_at(0, &msg[..first])?;
        }
        g.seal();
        Ok(())
    }

    #[inline]
    fn publish(&mut self, new_head: u64) {
        self.head = new_head;
        self.end.publish(new_head);
    }
}

impl Drop for RingWriter {
    fn drop(&mut self) {
        self.end.release();
    }
}

/// A message being written in place; [`WriteGuard::commit`] publishes it.
#[derive(Debug)]
pub struct WriteGuard<'a> {
    w: &'a mut RingWriter,
    /// The payload's region offset.
    off: usize,
    len: usize,
    /// The gap between header and payload (the header is at `off - 8 - gap`).
    gap: usize,
    /// The record's ring position (where its header is).
    start: u64,
    new_head: u64,
}

impl WriteGuard<'_> {
    /// The message's length.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the message is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Copy `data` into the message at `at`; `InvalidInput` if it does not fit.
    #[inline]
    pub fn write_at(&mut self, at: usize, data: &[u8]) -> Result<()> {
        if at.checked_add(data.len()).is_none_or(|e| e > self.len) {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                "write",
                &self.w.end.object,
                format!(
                    "{} bytes at offset {at} do not fit in the reserved message of {} bytes",
                    data.len(),
                    self.len
                ),
            ));
        }
        self.w
            .end
            .region
            .copy_in(self.off + at, data)
            .map_err(|a| access(&self.w.end.object, "write", a))
    }

    /// Where a wrap marker goes: the head, when the record starts past it (at offset 0).
    #[inline]
    fn wrap_at(&self) -> Option<u64> {
        (self.start != self.w.head).then_some(self.w.head)
    }

    /// Publish the message to the reader.
    #[inline]
    pub fn commit(self) {
        self.mark_next();
        self.seal();
    }

    /// Mark the next header slot "not yet", so that the seal's release store publishes the
    /// mark along with the record. Unless the record fills the ring to the brim: then that
    /// slot still holds the header of the oldest record (unread, or read since), written
    /// exactly one lap ago, whose seal cannot match.
    #[inline]
    fn mark_next(&self) {
        if self.new_head + MARK - self.w.cached_tail <= self.w.end.cap as u64 {
            let next = HEADER_LEN + (self.new_head & self.w.end.mask) as usize;
            if let Ok(w) = self.w.end.region.u64_at(next) {
                w.store(NOT_YET, Relaxed);
            }
        }
    }

    /// Seal the record (a release store of its header, after the payload and the mark),
    /// then the wrap marker before it if any (sealed too), then publish the head. A reader
    /// polling the slot may take the record (or follow the marker to it) as soon as it
    /// sees the seal; the head is for a reader that looks there (and for the sleep
    /// handshake).
    #[inline]
    fn seal(self) {
        let word = header_word(length_word(self.len, self.gap), self.start);
        // The slot was bounds-checked by `reserve` (the payload lies after it).
        if let Ok(w) = self.w.end.region.u64_at(self.off - RECORD_HEADER - self.gap) {
            w.store(word, Release);
        }
        if let Some(at) = self.wrap_at() {
            // Inside the data area: `at` is masked, and every slot holds a whole word.
            let slot = HEADER_LEN + (at & self.w.end.mask) as usize;
            if let Ok(w) = self.w.end.region.u64_at(slot) {
                w.store(header_word(WRAP, at), Release);
            }
        }
        let h = self.new_head;
        self.w.publish(h);
    }
}

impl RingReader {
    /// Attach as the reader of the ring in `region` (checked).
    pub fn attach(
        region: Region,
        mode: WaitMode,
        object: String,
        check_peer: bool,
    ) -> Result<RingReader> {
        let end = End::attach(region, Side::Reader, mode, object, check_peer)?;
        // A reader killed while it waited left its waits-at word set.
        end.word64(OFF_READER_WAITS).store(0, Relaxed);
        let tail = end.word64(OFF_TAIL).load(Acquire);
        let max = max_message(end.cap);
        let r = RingReader { end, tail, cached_head: tail, floor: tail, max };
        if tail % 8 != 0 || tail > MAX_POSITION {
            return Err(corrupted(
                &r.end.object,
                "open",
                format!("tail {tail} is not 8-byte aligned or is past any position a ring reaches"),
            ));
        }
        Ok(r)
    }

    /// The largest message this ring carries.
    pub fn max_message_size(&self) -> usize {
        self.max
    }

    /// The address or name in error messages.
    pub fn object(&self) -> &str {
        &self.end.object
    }

    /// Outlive writers: when one leaves or dies, wait for the next instead of giving
    /// `Disconnected`.
    pub fn set_persist(&mut self, yes: bool) {
        self.end.persist = yes;
    }

    /// The next record, if one is published: (payload offset in the region, length, the
    /// tail after it). Checks everything read from shared memory.
    #[inline(always)]
    fn next(&mut self, reload: bool) -> Result<Option<(usize, usize, u64)>> {
        let reload = if reload { Reload::Yes } else { Reload::No };
        let mut st = (self.tail, self.cached_head, self.floor);
        let r = scan(&self.end, &mut st, self.max, reload);
        (self.tail, self.cached_head, self.floor) = st;
        r
    }

    #[inline(always)]
    fn next_wait(&mut self, wait: Wait) -> Result<(usize, usize, u64)> {
        if let Some(r) = self.next(false)? {
            return Ok(r);
        }
        // `wait_for` borrows the end; the state it updates is copied back after.
        let end = &self.end;
        let mut st = (self.tail, self.cached_head, self.floor);
        let max = self.max;
        // Say where we wait in a receive (a word on a line of its own, which the writer
        // reads): a writer that finds us at its head may then rewind. Release: every record
        // before `tail` has been read (and its slot released) before.
        let waits = (wait != Wait::Never).then(|| end.word64(OFF_READER_WAITS));
        if let Some(w) = waits {
            w.store(st.0 | 1, Release);
            // First a tight spin of quick looks (the slot at the tail only), inlined here: a
            // reply that comes within a few hundred nanoseconds is taken without the calls
            // and checks of the general wait (measured: a 64 B round trip about a third
            // shorter).
            for _ in 0..FIRST_LOOKS {
                std::hint::spin_loop();
                if let Some(r) = scan(end, &mut st, max, Reload::No)? {
                    w.store(0, Relaxed);
                    (self.tail, self.cached_head, self.floor) = st;
                    return Ok(r);
                }
            }
        }
        // The quick looks before the clock were taken above.
        let r = end
            .wait_for(wait, "recv", ErrorKind::WouldBlock, 0, |look| scan(end, &mut st, max, look));
        if let Some(w) = waits {
            w.store(0, Relaxed);
        }
        (self.tail, self.cached_head, self.floor) = st;
        r
    }

    /// Receive one message into `buf` (cleared first), waiting as `wait` says.
    #[inline(always)]
    pub fn recv(&mut self, buf: &mut Vec<u8>, wait: Wait) -> Result<()> {
        let g = self.recv_in_place(wait)?;
        buf.clear();
        g.append_to(buf)?;
        Ok(())
    }

    /// The next message, read in place; the slot is released when the guard drops.
    #[inline(always)]
    pub fn recv_in_place(&mut self, wait: Wait) -> Result<ReadGuard<'_>> {
        let (off, len, new_tail) = self.next_wait(wait)?;
        Ok(ReadGuard { r: self, off, len, new_tail })
    }

    #[inline]
    fn release(&mut self, new_tail: u64) {
        self.tail = new_tail;
        self.end.publish(new_tail);
    }
}

/// Whether [`scan`] may look at the shared head again (and how a waiting side looks at
/// the other side's index).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Reload {
    /// Use the cached head (and the seal at the tail) only.
    No,
    /// Load the head.
    Yes,
    /// Load it with a read-modify-write (before sleeping).
    Strong,
}

/// The record sealed at `tail`, if the writer has committed one there: (payload offset,
/// length, the tail after it). Only a header whose check word carries this position's seal
/// counts, with a length within the limit and a record inside the data area; anything else
/// (an older lap's bytes, a wrap marker, damage) is left to the head path of [`scan`].
#[inline(always)]
fn sealed_at(end: &End, tail: u64, max: usize) -> Option<(usize, usize, u64)> {
    let pos = (tail & end.mask) as usize;
    // Acquire: pairs with the writer's release store of the header, after the payload.
    let word = end.region.load_u64(HEADER_LEN + pos, Acquire).ok()?;
    sealed_in(end, word, tail, max)
}

/// [`sealed_at`] for the header `word` already loaded from the slot at `tail`.
#[inline(always)]
fn sealed_in(end: &End, word: u64, tail: u64, max: usize) -> Option<(usize, usize, u64)> {
    let pos = (tail & end.mask) as usize;
    let (lw, check) = (word as u32, (word >> 32) as u32);
    if check != !lw ^ seal(tail) {
        return None;
    }
    // A wrap marker's length word reads as a length over any limit.
    let (len, gap) = split_length_word(lw);
    if len > max {
        return None;
    }
    let need = record_len(len, gap);
    if need > end.cap - pos {
        return None;
    }
    // The tail came from shared memory: a position near the top of u64 is damage, not a
    // record (found by the ring_reader fuzz target).
    Some((HEADER_LEN + pos + RECORD_HEADER + gap, len, tail.checked_add(need as u64)?))
}

/// The record the reader may take by seals alone at `tail`: the one sealed there, or the
/// one sealed at the start of the data area after a wrap marker sealed there (the writer
/// seals the marker last). (payload offset, length, the tail after it.)
#[inline(always)]
fn taken_by_seal(end: &End, tail: u64, max: usize) -> Option<(usize, usize, u64)> {
    let pos = (tail & end.mask) as usize;
    // Acquire: pairs with the writer's release store of the marker, after the record.
    let word = end.region.load_u64(HEADER_LEN + pos, Acquire).ok()?;
    if word == header_word(WRAP, tail) {
        // A position near the top of u64 is damage (as in `sealed_at`).
        let start = tail.checked_add((end.cap - pos) as u64)?;
        return sealed_at(end, start, max);
    }
    sealed_in(end, word, tail, max)
}

/// Find the next record: first by its seal at the tail (no look at the head, whose cache
/// line then stays with the writer), else by the head.
#[inline(always)]
fn scan(
    end: &End,
    (tail, cached_head, floor): &mut (u64, u64, u64),
    max: usize,
    reload: Reload,
) -> Result<Option<(usize, usize, u64)>> {
    let cap = end.cap as u64;
    let obj = &end.object;
    loop {
        if *cached_head <= *tail {
            // Look at the line after the seal's too (the value is not used): a record of
            // more than a few words spans both, and the writer fills the second before it
            // seals the first, so the two misses overlap instead of following each other.
            let next_line = ((*tail & end.mask) as usize | 63) + 1;
            if next_line < end.cap {
                let _ = end.region.load_u64(HEADER_LEN + next_line, Relaxed);
            }
            // And at the start of the data area: a writer that rewinds (see
            // `RingWriter::rewind`) writes its record there and then a wrap marker at the
            // tail, so that line is fetched while the marker is awaited, not after.
            if *tail & end.mask != 0 {
                let _ = end.region.load_u64(HEADER_LEN, Relaxed);
            }
            if let Some(r) = taken_by_seal(end, *tail, max) {
                // Where the head may still be: this record's start, or its wrap marker's.
                *floor = *tail;
                return Ok(Some(r));
            }
            let h = end.word64(OFF_HEAD);
            let head = match reload {
                Reload::No => return Ok(None),
                Reload::Yes => h.load(SeqCst),
                Reload::Strong => h.fetch_add(0, SeqCst),
            };
            if head < *tail && head == *floor {
                // The writer sealed the record taken by its seal but has not stored the
                // head past it yet (it stores the head after each seal, so the head is
                // then exactly where that record starts; anything else behind the tail is
                // damage, reported below).
                return Ok(None);
            }
            if head < *tail || head - *tail > cap || head % 8 != 0 {
                return Err(corrupted(
                    obj,
                    "recv",
                    format!(
                        "head {head} and tail {} are not consistent with capacity {cap}",
                        *tail
                    ),
                ));
            }
            *cached_head = head;
            if head == *tail {
                return Ok(None);
            }
        }
        let pos = (*tail & end.mask) as usize;
        let mut hdr = [0u8; 8];
        end.region.copy_out(HEADER_LEN + pos, &mut hdr).map_err(|a| access(obj, "recv", a))?;
        let len = u32::from_le_bytes([hdr[0], hdr[1], hdr[2], hdr[3]]);
        let check = u32::from_le_bytes([hdr[4], hdr[5], hdr[6], hdr[7]]);
        let till_end = cap - pos as u64;
        let avail = *cached_head - *tail;
        if len == WRAP && check == !WRAP ^ seal(*tail) {
            if till_end > avail {
                return Err(corrupted(
                    obj,
                    "recv",
                    format!("a wrap marker at {pos} skips {till_end} bytes, past the head"),
                ));
            }
            *tail += till_end;
            continue;
        }
        if check != !len ^ seal(*tail) {
            return Err(corrupted(
                obj,
                "recv",
                format!(
                    "the record header at {pos} is damaged (length {len:#x}, check {check:#x})"
                ),
            ));
        }
        let (len, gap) = split_length_word(len);
        if len > max {
            return Err(corrupted(
                obj,
                "recv",
                format!("a record claims {len} bytes, over the ring's limit of {max}"),
            ));
        }
        let need = record_len(len, gap) as u64;
        if need > till_end || need > avail {
            return Err(corrupted(
                obj,
                "recv",
                format!("a record of {len} bytes at {pos} runs past the end of the data area or the head"),
            ));
        }
        return Ok(Some((HEADER_LEN + pos + RECORD_HEADER + gap, len, *tail + need)));
    }
}

impl Drop for RingReader {
    fn drop(&mut self) {
        self.end.release();
    }
}

/// A message read in place; dropping the guard releases its slot to the writer.
#[derive(Debug)]
pub struct ReadGuard<'a> {
    r: &'a mut RingReader,
    off: usize,
    len: usize,
    new_tail: u64,
}

impl ReadGuard<'_> {
    /// The message's length.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the message is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Copy `out.len()` bytes of the message from offset `at`; `InvalidInput` past its end.
    pub fn read_at(&self, at: usize, out: &mut [u8]) -> Result<()> {
        if at.checked_add(out.len()).is_none_or(|e| e > self.len) {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                "read",
                &self.r.end.object,
                format!(
                    "{} bytes at offset {at} lie outside the message of {} bytes",
                    out.len(),
                    self.len
                ),
            ));
        }
        self.r
            .end
            .region
            .copy_out(self.off + at, out)
            .map_err(|a| access(&self.r.end.object, "read", a))
    }

    /// Append the whole message to `buf`.
    #[inline]
    pub fn append_to(&self, buf: &mut Vec<u8>) -> Result<()> {
        self.r
            .end
            .region
            .copy_out_append(self.off, self.len, buf)
            .map_err(|a| access(&self.r.end.object, "read", a))
    }

    /// The whole message as a new vector.
    pub fn to_vec(&self) -> Result<Vec<u8>> {
        let mut v = Vec::with_capacity(self.len);
        self.append_to(&mut v)?;
        Ok(v)
    }
}

impl Drop for ReadGuard<'_> {
    #[inline]
    fn drop(&mut self) {
        let t = self.new_tail;
        self.r.release(t);
    }
}
