//! Shared memory: raw segments, and a synchronized ring channel over one.
//!
//! Two processes that map the same memory exchange data without the kernel copying it,
//! which makes shared memory the fastest mechanism, and the easiest to get wrong. ipcx
//! gives two levels:
//!
//! - **Segments** ([`Segment`]): POSIX (`shm_open`, `shm:/name`) or System V (`shmget`,
//!   `sysv-shm:KEY`); created with a size and a mode (0600 by default); opened with a check
//!   of the size the caller expects; read-only mappings; the creator removes the name on
//!   drop unless kept. The bytes are reached only by copies and atomics, never as a
//!   `&[u8]` another process could change under it; typed access for plain data through
//!   the [`ShmSafe`] marker trait.
//! - **The ring channel** (`shm:/name?capacity=N`, `sysv-shm:KEY`): one writer and one
//!   reader per ring (a duplex channel is two rings); variable-length messages up to
//!   `capacity / 2 - 8` bytes with their boundaries kept; no system call on the fast path
//!   (the writer wakes the reader's futex only when the reader sleeps); a blocked side
//!   notices a dead peer (even `kill -9`) within about 50 ms; the reader checks every
//!   index and length it reads, so a damaged ring gives `Corrupted`, never a crash.
//!   [`ShmSender::reserve`] and [`ShmReceiver::recv_in_place`] write and read large
//!   messages in place (zero copy). `?spin=1` never sleeps: the lowest latency for a
//!   dedicated core.
//!
//! ```
//! use ipcx::shm::{Ring, ShmReceiver, ShmSender};
//! use ipcx::{Receiver, Sender};
//! # let name = format!("/ipcx-doc-{}", std::process::id());
//! let ring = Ring::create(&format!("shm:{name}?capacity=4096"))?; // removed on drop
//! let mut tx = ShmSender::open(&format!("shm:{name}"))?;
//! let mut rx = ShmReceiver::open(&format!("shm:{name}"))?;
//! tx.send(b"hello")?;
//! assert_eq!(rx.recv()?, b"hello");
//! // Zero copy: write in place, publish, read in place.
//! let mut g = tx.reserve(5, ipcx::Wait::Forever)?;
//! g.write_at(0, b"world")?;
//! g.commit();
//! let m = rx.recv_in_place(ipcx::Wait::Forever)?;
//! let mut out = [0u8; 5];
//! m.read_at(0, &mut out)?;
//! assert_eq!(&out, b"world");
//! # drop(m); drop(ring);
//! # Ok::<(), ipcx::Error>(())
//! ```

mod region;
pub mod ring;
mod segment;

use std::time::{Duration, Instant};

pub use region::ShmSafe;
pub use ring::{ReadGuard, WaitMode, WriteGuard};
pub use segment::{Segment, SegmentName};

use crate::address::{Address, Target};
use crate::error::{Error, ErrorKind, Result};
use crate::{OpenOptions, Receiver, Sender, Wait};
use ring::{RingReader, RingWriter};
use segment::Remover;

/// A ring's segment held by its creator (no side attached): removes it on drop unless kept.
#[derive(Debug)]
pub struct Ring {
    seg: Segment,
    capacity: usize,
}

fn capacity_of(addr: &Address) -> Result<Option<usize>> {
    Ok(addr.param_bytes("capacity")?.map(|c| usize::try_from(c).unwrap_or(usize::MAX)))
}

fn mode_of(addr: &Address) -> Result<WaitMode> {
    match addr.param_u64("spin")? {
        None | Some(0) => Ok(WaitMode::Blocking),
        Some(1) => Ok(WaitMode::Spin),
        Some(n) => {
            Err(Error::address(&addr.to_string(), format!("spin={n}: expected spin=0 or spin=1")))
        }
    }
}

fn check_target(addr: &Address, op: &'static str) -> Result<()> {
    match addr.target() {
        Target::Shm(_) | Target::SysvShm(_) => Ok(()),
        _ => Err(Error::new(
            ErrorKind::InvalidAddress,
            op,
            addr.to_string(),
            "not a shm: or sysv-shm: address",
        )),
    }
}

impl Ring {
    /// Create the ring an address names, with `?capacity=N` (default 1 MiB) and
    /// `?mode=` (default 0600). `AlreadyExists` if the segment exists.
    pub fn create(addr: &str) -> Result<Ring> {
        Ring::create_addr(&Address::parse(addr)?)
    }

    /// [`Ring::create`] from a parsed address.
    pub fn create_addr(addr: &Address) -> Result<Ring> {
        check_target(addr, "create")?;
        let capacity = capacity_of(addr)?.unwrap_or(ring::DEFAULT_CAPACITY);
        ring::check_capacity(capacity, &addr.to_string(), "create")?;
        let seg = Segment::create_addr(addr, ring::segment_len(capacity))?;
        ring::init(seg.region(), capacity, seg.address())?;
        Ok(Ring { seg, capacity })
    }

    /// The data area's capacity in bytes.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// The largest message the ring carries.
    pub fn max_message_size(&self) -> usize {
        ring::max_message(self.capacity)
    }

    /// Leave the segment in place when dropped.
    pub fn keep(&mut self) {
        self.seg.keep();
    }

    /// The segment (for inspection; its bytes are the ring's header and data).
    pub fn segment(&self) -> &Segment {
        &self.seg
    }
}

/// Open (or with `create`, create) the ring's segment and check its header; the region,
/// the remover (set if we created it), the capacity and the object name.
fn open_ring(addr: &Address, opts: &OpenOptions) -> Result<(segment::Segment, usize)> {
    check_target(addr, "open")?;
    let want_cap = capacity_of(addr)?;
    let object = addr.to_string();
    if let Some(c) = want_cap {
        ring::check_capacity(c, &object, "open")?;
    }
    if opts.create {
        match Ring::create_addr(addr) {
            Ok(mut r) => {
                if opts.keep {
                    r.keep();
                }
                return Ok((r.seg, r.capacity));
            }
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
    }
    // Wait for the segment (open_timeout) and for its creator to finish the header (up to
    // a second more, whatever the timeout).
    let start = Instant::now();
    let not_found_until = start + opts.open_timeout.unwrap_or(Duration::ZERO);
    let init_until = not_found_until.max(start + Duration::from_secs(1));
    loop {
        let seg = match Segment::open_addr(addr, None) {
            Ok(s) => s,
            Err(e) if e.kind() == ErrorKind::NotFound && Instant::now() < not_found_until => {
                std::thread::sleep(Duration::from_millis(2));
                continue;
            }
            Err(e)
                if e.kind() == ErrorKind::InvalidInput
                    && e.detail().contains("size 0")
                    && Instant::now() < init_until =>
            {
                std::thread::sleep(Duration::from_millis(1));
                continue;
            }
            Err(e) => return Err(e.context("open", object)),
        };
        match ring::check_header(seg.region(), &object, "open")? {
            None if Instant::now() < init_until => {
                std::thread::sleep(Duration::from_millis(1));
            }
            None => {
                return Err(Error::new(
                    ErrorKind::InvalidInput,
                    "open",
                    object,
                    "the segment is not an ipcx ring (its header is all zero); use Segment for raw segments",
                ))
            }
            Some(cap) => {
                if let Some(w) = want_cap.filter(|&w| w != cap) {
                    return Err(Error::new(
                        ErrorKind::InvalidInput,
                        "open",
                        object,
                        format!("the ring's capacity is {cap} bytes, but ?capacity={w} was asked for; drop the option or use the same capacity on both sides"),
                    ));
                }
                return Ok((seg, cap));
            }
        }
    }
}

/// The writing end of a ring channel.
#[derive(Debug)]
pub struct ShmSender {
    w: RingWriter,
    _remover: Remover,
    address: String,
}

/// The reading end of a ring channel.
#[derive(Debug)]
pub struct ShmReceiver {
    r: RingReader,
    _remover: Remover,
    address: String,
}

/// Open the writing end of `shm:/name` or `sysv-shm:KEY` (with `opts.create`, creating the
/// ring if it is missing; `opts.open_timeout` waits for it to appear).
pub fn open_sender(addr: &Address, opts: &OpenOptions) -> Result<ShmSender> {
    let (seg, _) = open_ring(addr, opts)?;
    let (region, remover, _) = seg.into_parts();
    let w = RingWriter::attach(region, mode_of(addr)?, addr.to_string(), true)?;
    Ok(ShmSender { w, _remover: remover, address: addr.to_string() })
}

/// Open the reading end of `shm:/name` or `sysv-shm:KEY`.
pub fn open_receiver(addr: &Address, opts: &OpenOptions) -> Result<ShmReceiver> {
    let (seg, _) = open_ring(addr, opts)?;
    let (region, remover, _) = seg.into_parts();
    let mut r = RingReader::attach(region, mode_of(addr)?, addr.to_string(), true)?;
    r.set_persist(opts.persist);
    Ok(ShmReceiver { r, _remover: remover, address: addr.to_string() })
}

impl ShmSender {
    /// Open the writing end of an existing ring.
    pub fn open(addr: &str) -> Result<ShmSender> {
        open_sender(&Address::parse(addr)?, &OpenOptions::new())
    }

    /// Reserve a message of `len` bytes in the ring, write it in place, then
    /// [`WriteGuard::commit`]. Waits for room as `wait` says.
    pub fn reserve(&mut self, len: usize, wait: Wait) -> Result<WriteGuard<'_>> {
        self.w.reserve(len, wait)
    }

    /// The data area's capacity.
    pub fn capacity(&self) -> usize {
        self.w.capacity()
    }
}

impl ShmReceiver {
    /// Open the reading end of an existing ring.
    pub fn open(addr: &str) -> Result<ShmReceiver> {
        open_receiver(&Address::parse(addr)?, &OpenOptions::new())
    }

    /// Read the next message in place; its slot is released when the guard drops.
    pub fn recv_in_place(&mut self, wait: Wait) -> Result<ReadGuard<'_>> {
        self.r.recv_in_place(wait)
    }
}

impl Sender for ShmSender {
    fn send_wait(&mut self, msg: &[u8], wait: Wait) -> Result<()> {
        self.w.send(msg, wait)
    }
    fn max_message_size(&self) -> usize {
        self.w.max_message_size()
    }
    fn address(&self) -> &str {
        &self.address
    }
}

impl Receiver for ShmReceiver {
    fn recv_wait(&mut self, buf: &mut Vec<u8>, wait: Wait) -> Result<()> {
        self.r.recv(buf, wait)
    }
    fn address(&self) -> &str {
        &self.address
    }
}

/// A ring inside this process's heap: a writer and a reader over the same memory, with the
/// same checks as a shared one (tests, fuzzing, examples). Peer liveness is not checked
/// (both ends live in this process); a dropped end still gives the other `Disconnected`.
pub fn heap_ring(capacity: usize, mode: WaitMode) -> Result<(RingWriter, RingReader)> {
    let region = region::Region::heap(ring::segment_len(capacity));
    ring::init(&region, capacity, "shm:(heap)")?;
    let w = RingWriter::attach(region.clone(), mode, "shm:(heap)".into(), false)?;
    let r = RingReader::attach(region, mode, "shm:(heap)".into(), false)?;
    Ok((w, r))
}

/// Feed arbitrary bytes to a ring reader as if they were a ring's shared memory, and read
/// until it stops; for fuzzing and property tests. Returns how many messages were read and
/// the last error kind. It must never panic, whatever `data` holds.
///
/// Unless `data[0]` is odd the header's magic, version and capacity (1 KiB) are made valid
/// and the owner words cleared, so the reader gets past the attach checks to the indices
/// and records.
pub fn fuzz_reader(data: &[u8]) -> (usize, Option<ErrorKind>) {
    let cap = ring::MIN_CAPACITY;
    let region = region::Region::heap(ring::segment_len(cap));
    let n = data.len().min(region.len());
    let _ = region.copy_in(0, &data[..n]);
    if data.first().is_none_or(|b| b % 2 == 0) {
        let _ = region.copy_in(0, &ring::MAGIC.to_le_bytes());
        let _ = region.copy_in(8, &ring::VERSION.to_le_bytes());
        let _ = region.copy_in(16, &(cap as u64).to_le_bytes());
        let _ = region.fill(24, 16, 0);
    }
    let mut r = match RingReader::attach(region, WaitMode::Spin, "shm:(fuzz)".into(), false) {
        Ok(r) => r,
        Err(e) => return (0, Some(e.kind())),
    };
    let mut buf = Vec::new();
    for i in 0..256 {
        if let Err(e) = r.recv(&mut buf, Wait::Never) {
            return (i, Some(e.kind()));
        }
    }
    (256, None)
}

#[cfg(test)]
mod tests;

#[cfg(all(test, loom))]
mod loom_model;
