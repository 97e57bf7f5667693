//! Lanes for shared memory: the ring in blocking mode (`shm`) and spin mode (`shm-spin`),
//! each beside a raw ring (fixed slots on a bare mapping, spinning, no checks); and two
//! hardware-limit lanes measured in the same run: `cacheline` (two processes bouncing
//! one cache line) and `memcpy` (one core copying each message into a ring-sized area).

use std::path::Path;
use std::sync::atomic::Ordering::{Acquire, Release};
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{bail, Result};
use ipcx::shm::ring::capacity_for;
use ipcx::shm::{Ring, Segment};

use super::lane::{Endpoint, IpcxEnd, Lane, Setup};

/// The ring lane, blocking (`spin: false`) or spinning.
pub struct ShmLane {
    pub spin: bool,
}

fn names(dir: &Path, tag: &str) -> (String, String) {
    // The run's directory name is unique (it holds the pid); use its last part.
    let run = dir.file_name().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    (format!("/{run}-{tag}-a"), format!("/{run}-{tag}-b"))
}

impl Lane for ShmLane {
    fn name(&self) -> &'static str {
        if self.spin {
            "shm-spin"
        } else {
            "shm"
        }
    }
    fn setup(&self, dir: &Path, tag: &str, raw: bool, size: usize) -> Result<Setup> {
        let (a, b) = names(dir, tag);
        if raw {
            let ga = RawRing::create(&a, size)?;
            let gb = RawRing::create(&b, size)?;
            let (pa, pb) = (a.clone(), b.clone());
            return Ok(Setup {
                child_a: a,
                child_b: b,
                child_fds: Vec::new(),
                open_parent: Box::new(move || {
                    Ok(Box::new(RawEnd {
                        tx: RawRing::open(&pa, size)?,
                        rx: RawRing::open(&pb, size)?,
                    }) as Box<dyn Endpoint>)
                }),
                guard: Box::new((ga, gb)),
            });
        }
        let cap = capacity_for(size);
        let opt = if self.spin { "&spin=1" } else { "" };
        let (child_a, child_b) =
            (format!("shm:{a}?capacity={cap}{opt}"), format!("shm:{b}?capacity={cap}{opt}"));
        let guard = (Ring::create(&child_a)?, Ring::create(&child_b)?);
        let (pa, pb) = (child_a.clone(), child_b.clone());
        Ok(Setup {
            child_a,
            child_b,
            child_fds: Vec::new(),
            open_parent: Box::new(move || {
                Ok(Box::new(IpcxEnd::open(&pb, &pa)?) as Box<dyn Endpoint>)
            }),
            guard: Box::new(guard),
        })
    }
    fn open_child(&self, a: &str, b: &str, raw: bool, size: usize) -> Result<Box<dyn Endpoint>> {
        if raw {
            return Ok(Box::new(RawEnd {
                tx: RawRing::open(b, size)?,
                rx: RawRing::open(a, size)?,
            }));
        }
        Ok(Box::new(IpcxEnd::open(a, b)?))
    }
}

const END: u64 = u64::MAX;

/// The raw comparison: a ring of fixed slots of `size` bytes (plus an 8-byte length), head
/// and tail on their own cache lines, spin-then-yield waiting, no checks.
struct RawRing {
    seg: Segment,
    slots: u64,
    slot: usize,
    /// Our local copy of our index (head for a sender, tail for a receiver).
    pos: u64,
    /// Our cached copy of the other side's index.
    other: u64,
}

const RAW_HEAD: usize = 0;
const RAW_TAIL: usize = 128;
const RAW_DATA: usize = 256;

impl RawRing {
    fn geometry(size: usize) -> (u64, usize) {
        let slot = (size + 8 + 63) & !63;
        let slots = ((1usize << 20) / slot).clamp(16, 1 << 14).next_power_of_two();
        (slots as u64, slot)
    }
    fn create(name: &str, size: usize) -> Result<Segment> {
        let (slots, slot) = RawRing::geometry(size);
        Ok(Segment::create(name, RAW_DATA + slots as usize * slot, 0o600)?)
    }
    fn open(name: &str, size: usize) -> Result<RawRing> {
        let (slots, slot) = RawRing::geometry(size);
        let seg = Segment::open(name, Some(RAW_DATA + slots as usize * slot))?;
        Ok(RawRing { seg, slots, slot, pos: 0, other: 0 })
    }
    fn word(&self, off: usize) -> &AtomicU64 {
        self.seg.atomic_u64(off).expect("index word inside the segment")
    }
    fn spin_until(&self, mut ok: impl FnMut() -> bool) {
        let mut n = 0u32;
        while !ok() {
            n += 1;
            if n < 20_000 {
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
        }
    }
    fn send(&mut self, len: u64, msg: &[u8]) -> Result<()> {
        if self.pos - self.other >= self.slots {
            let pos = self.pos;
            let slots = self.slots;
            let tail = self.word(RAW_TAIL);
            let mut seen = 0;
            self.spin_until(|| {
                seen = tail.load(Acquire);
                pos - seen < slots
            });
            self.other = seen;
        }
        let off = RAW_DATA + (self.pos % self.slots) as usize * self.slot;
        self.seg.write_bytes(off, &len.to_le_bytes())?;
        self.seg.write_bytes(off + 8, msg)?;
        self.pos += 1;
        self.word(RAW_HEAD).store(self.pos, Release);
        Ok(())
    }
    fn recv(&mut self, buf: &mut Vec<u8>) -> Result<bool> {
        if self.other == self.pos {
            let pos = self.pos;
            let head = self.word(RAW_HEAD);
            let mut seen = 0;
            self.spin_until(|| {
                seen = head.load(Acquire);
                seen != pos
            });
            self.other = seen;
        }
        let off = RAW_DATA + (self.pos % self.slots) as usize * self.slot;
        let len: u64 = self.seg.read(off)?;
        let more = len != END;
        if more {
            buf.resize(len as usize, 0);
            self.seg.read_bytes(off + 8, buf)?;
        }
        self.pos += 1;
        self.word(RAW_TAIL).store(self.pos, Release);
        Ok(more)
    }
}

struct RawEnd {
    tx: RawRing,
    rx: RawRing,
}

impl Endpoint for RawEnd {
    fn send(&mut self, msg: &[u8]) -> Result<()> {
        self.tx.send(msg.len() as u64, msg)
    }
    fn recv(&mut self, buf: &mut Vec<u8>) -> Result<bool> {
        self.rx.recv(buf)
    }
    fn finish(&mut self) -> Result<()> {
        self.tx.send(END, &[])
    }
}

/// Two processes bouncing one cache line: the hardware's floor for a round trip.
///
/// One 64-byte line holds three words: the parent's request count, the child's
/// acknowledged count and the child's reply count. No payload moves (the size only
/// shapes the figures); a round trip is the line going to the child and back.
pub struct CachelineLane;

const CL_REQ: usize = 0;
const CL_ACK: usize = 8;
const CL_REPLY: usize = 16;

fn hardware_only(raw: bool, what: &str) -> Result<()> {
    if raw {
        bail!("{what} is a hardware-limit lane; it has no separate raw form");
    }
    Ok(())
}

impl Lane for CachelineLane {
    fn name(&self) -> &'static str {
        "cacheline"
    }
    fn setup(&self, dir: &Path, tag: &str, raw: bool, size: usize) -> Result<Setup> {
        hardware_only(raw, "cacheline")?;
        let (a, _) = names(dir, tag);
        let seg = Segment::create(&a, 4096, 0o600)?;
        let pa = a.clone();
        Ok(Setup {
            child_a: a.clone(),
            child_b: a,
            child_fds: Vec::new(),
            open_parent: Box::new(move || {
                Ok(Box::new(LineEnd {
                    seg: Segment::open(&pa, Some(4096))?,
                    parent: true,
                    n: 0,
                    size,
                }) as Box<dyn Endpoint>)
            }),
            guard: Box::new(seg),
        })
    }
    fn open_child(&self, a: &str, _b: &str, _raw: bool, size: usize) -> Result<Box<dyn Endpoint>> {
        Ok(Box::new(LineEnd { seg: Segment::open(a, Some(4096))?, parent: false, n: 0, size }))
    }
}

struct LineEnd {
    seg: Segment,
    parent: bool,
    /// Parent: requests sent. Child: requests seen (and replies sent).
    n: u64,
    size: usize,
}

impl LineEnd {
    fn w(&self, off: usize) -> &AtomicU64 {
        self.seg.atomic_u64(off).expect("word inside the segment")
    }
    fn wait(&self, off: usize, mut ok: impl FnMut(u64) -> bool) -> u64 {
        let w = self.w(off);
        let mut n = 0u32;
        loop {
            let v = w.load(Acquire);
            if ok(v) {
                return v;
            }
            n += 1;
            if n < 50_000 {
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
        }
    }
}

impl Endpoint for LineEnd {
    fn send(&mut self, _msg: &[u8]) -> Result<()> {
        if self.parent {
            let n = self.n;
            self.wait(CL_ACK, |v| v == n);
            self.n += 1;
            self.w(CL_REQ).store(self.n, Release);
        } else {
            self.w(CL_REPLY).store(self.n, Release);
        }
        Ok(())
    }
    fn recv(&mut self, buf: &mut Vec<u8>) -> Result<bool> {
        buf.resize(self.size, 0);
        if self.parent {
            let n = self.n;
            self.wait(CL_REPLY, |v| v >= n);
            return Ok(true);
        }
        let n = self.n;
        let v = self.wait(CL_REQ, |v| v != n);
        if v == END {
            return Ok(false);
        }
        self.n = v;
        self.w(CL_ACK).store(v, Release);
        Ok(true)
    }
    fn finish(&mut self) -> Result<()> {
        let n = self.n;
        self.wait(CL_ACK, |v| v == n);
        self.w(CL_REQ).store(END, Ordering::Release);
        Ok(())
    }
}

/// The copy limit for the ring's throughput: what one side of a ring does per message,
/// with nothing else in the way.
///
/// The parent copies each message from its own buffer (hot, as the sender's is) into a
/// shared mapping, at 64-byte aligned offsets cycling through an area of the **same size
/// as the `shm` lane's ring for that message size** ([`ipcx::shm::ring::capacity_for`]: 256 KiB up to 4 MiB
/// for 64 KiB messages), so the destination streams through L2/L3 exactly as the ring's
/// data area does. The child does nothing until the end, then reports the count. The
/// throughput column is therefore the bandwidth of one core's `memcpy` into a ring-sized
/// area: the writer's half of a ring transfer without the reader.
///
/// Why this is the limit and not a smaller or larger copy: a copy between buffers hot in
/// L1 (the same 64 KiB each time) would measure a cache no ring of useful capacity uses,
/// and overstate the limit; a copy through an area larger than the ring would understate
/// it. A ring cannot reach this figure: every line the writer stores must also cross to
/// the reader's core (the reader's copy runs at the same time on the other core and pulls
/// each line over), which this lane leaves out. The `shm` lane's **raw** form (fixed
/// slots, no checks) shows what the cross-core transfer itself allows on the machine.
pub struct MemcpyLane;

const MC_COUNT: usize = 0;
const MC_DATA: usize = 4096;

/// The area the lane cycles through for messages of `size` bytes: the ring's capacity.
fn memcpy_area(size: usize) -> usize {
    capacity_for(size)
}

impl Lane for MemcpyLane {
    fn name(&self) -> &'static str {
        "memcpy"
    }
    fn setup(&self, dir: &Path, tag: &str, raw: bool, size: usize) -> Result<Setup> {
        hardware_only(raw, "memcpy")?;
        let (a, _) = names(dir, tag);
        let area = memcpy_area(size);
        let seg = Segment::create(&a, MC_DATA + area, 0o600)?;
        let pa = a.clone();
        Ok(Setup {
            child_a: a.clone(),
            child_b: a,
            child_fds: Vec::new(),
            open_parent: Box::new(move || {
                Ok(Box::new(CopyEnd {
                    seg: Segment::open(&pa, Some(MC_DATA + area))?,
                    area,
                    parent: true,
                    off: 0,
                    n: 0,
                    size,
                }) as Box<dyn Endpoint>)
            }),
            guard: Box::new(seg),
        })
    }
    fn open_child(&self, a: &str, _b: &str, _raw: bool, size: usize) -> Result<Box<dyn Endpoint>> {
        let area = memcpy_area(size);
        Ok(Box::new(CopyEnd {
            seg: Segment::open(a, Some(MC_DATA + area))?,
            area,
            parent: false,
            off: 0,
            n: u64::MAX,
            size,
        }))
    }
}

struct CopyEnd {
    seg: Segment,
    /// Bytes of the area the copies cycle through.
    area: usize,
    parent: bool,
    off: usize,
    /// Parent: messages copied. Child: messages left to report (MAX: not yet known).
    n: u64,
    size: usize,
}

impl Endpoint for CopyEnd {
    fn send(&mut self, msg: &[u8]) -> Result<()> {
        if !self.parent {
            return Ok(());
        }
        if self.off + msg.len() > self.area {
            self.off = 0;
        }
        self.seg.write_bytes(MC_DATA + self.off, msg)?;
        self.off = (self.off + msg.len() + 63) & !63;
        self.n += 1;
        Ok(())
    }
    fn recv(&mut self, buf: &mut Vec<u8>) -> Result<bool> {
        if self.parent {
            // The "echo" of the ping-pong form: copy the message back out.
            buf.resize(self.size, 0);
            self.seg.read_bytes(MC_DATA, buf)?;
            return Ok(true);
        }
        if self.n == u64::MAX {
            let w = self.seg.atomic_u64(MC_COUNT)?;
            let mut spins = 0u32;
            loop {
                let v = w.load(Acquire);
                if v != 0 {
                    self.n = v - 1;
                    break;
                }
                spins += 1;
                if spins < 1000 {
                    std::hint::spin_loop();
                } else {
                    std::thread::sleep(std::time::Duration::from_micros(100));
                }
            }
        }
        if self.n == 0 {
            return Ok(false);
        }
        self.n -= 1;
        Ok(true)
    }
    fn finish(&mut self) -> Result<()> {
        self.seg.atomic_u64(MC_COUNT)?.store(self.n + 1, Release);
        Ok(())
    }
}
