//! Lanes for the durable log (`mmap:`), with durability none (`mmap-log`) and every
//! message (`mmap-log-sync`). Ping-pong uses two logs, one per direction (a log is one
//! way). The raw lane writes the same records (a 4-byte length, then the payload) with one
//! `write(2)` each to a plain file, `fdatasync` after each in the sync lane, and the peer
//! reads them back with `pread(2)`, polling (a plain file has no wake-up).
//!
//! The `mmap-log` lane measures the log in its steady state, as a long-running log runs:
//! its logs keep [`RETAIN`] segments of [`SEGMENT`] bytes and are filled past that before
//! the measurement, so every roll-over recycles a retained segment whose pages are already
//! in the page cache (a fresh log's first lap pays a page fault and a zeroed page per
//! 4 KiB, which is the file system's cost, not the log's). A log applies no backpressure
//! (a reader that falls further behind than retention loses records), so the lane's sender
//! keeps at most [`WINDOW`] bytes ahead of its reader, which reports its count through a
//! small shared mapping every [`PACE_EVERY`] messages; the same mapping tells the parent
//! when the child's reader is open at the end of the filled log. The logs of each
//! measurement are removed after it, so their dirty pages are dropped, never written back.
//!
//! The sync lane measures the disk's `fsync` rate once (50 `fsync`s of a small file in the
//! bench directory) and prints it, since every-message durability cannot beat it.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use ipcx::mmap::log::{LogConfig, LogWriter};
use ipcx::mmap::{MapOptions, Mapping};

use super::lane::{Endpoint, IpcxEnd, Lane, Setup};

/// The log lane; `sync` selects `?sync=always`.
pub struct MmapLogLane {
    pub sync: bool,
}

/// Removes the lane's logs and files.
struct Remove(Vec<PathBuf>);

impl Drop for Remove {
    fn drop(&mut self) {
        for p in &self.0 {
            // Best effort: the bench directory is removed at the end anyway.
            let _ = std::fs::remove_dir_all(p).or_else(|_| std::fs::remove_file(p));
        }
    }
}

static FSYNC_RATE: OnceLock<()> = OnceLock::new();

/// Time `n` fsyncs of a 4 KiB file rewritten each time; print the rate.
fn report_fsync_rate(dir: &Path) {
    FSYNC_RATE.get_or_init(|| {
        let p = dir.join("fsync-probe");
        let run = || -> std::io::Result<(u32, f64)> {
            let f = File::create(&p)?;
            let block = [0x5au8; 4096];
            let n = 50;
            let t = Instant::now();
            for _ in 0..n {
                f.write_all_at(&block, 0)?;
                f.sync_data()?;
            }
            Ok((n, t.elapsed().as_secs_f64()))
        };
        // A closed output is reported when the tables are written; not here.
        use std::io::Write as _;
        let mut out = crate::io::stdout();
        let _ = match run() {
            Ok((n, secs)) => writeln!(
                out,
                "mmap-log-sync: this disk does {:.0} fsync/s ({n} fdatasync of a 4 KiB file in {}, {:.1} µs each); every-message durability cannot go faster",
                f64::from(n) / secs,
                dir.display(),
                secs * 1e6 / f64::from(n)
            ),
            Err(e) => writeln!(out, "mmap-log-sync: could not measure the fsync rate: {e}"),
        };
        let _ = std::fs::remove_file(&p);
    });
}

impl Lane for MmapLogLane {
    fn name(&self) -> &'static str {
        if self.sync {
            "mmap-log-sync"
        } else {
            "mmap-log"
        }
    }

    fn setup(&self, dir: &Path, tag: &str, raw: bool, size: usize) -> Result<Setup> {
        if self.sync {
            report_fsync_rate(dir);
        }
        if raw {
            let (a, b) = (dir.join(format!("{tag}-a.raw")), dir.join(format!("{tag}-b.raw")));
            File::create(&a)?;
            File::create(&b)?;
            let (child_a, child_b) = (a.display().to_string(), b.display().to_string());
            let (pa, pb) = (child_a.clone(), child_b.clone());
            let sync = self.sync;
            return Ok(Setup {
                child_a,
                child_b,
                child_fds: Vec::new(),
                open_parent: Box::new(move || {
                    Ok(Box::new(RawFile::open(&pb, &pa, sync)?) as Box<dyn Endpoint>)
                }),
                guard: Box::new(Remove(vec![a, b])),
            });
        }
        let (a, b) = (dir.join(format!("{tag}-a.log")), dir.join(format!("{tag}-b.log")));
        let mut made = Remove(vec![a.clone(), b.clone()]);
        let opts = if self.sync {
            // Every message is synced: the disk sets the pace, no reader lags, and a
            // fresh log per measurement measures what a user gets.
            for p in [&a, &b] {
                ipcx::mmap::log::create(p, &LogConfig::default())?;
            }
            "?sync=always&retain=64".to_owned()
        } else {
            for p in [&a, &b] {
                fill_past_retention(p, size)?;
            }
            let progress = dir.join(format!("{tag}.progress"));
            MapOptions::new().create(true).len(PROGRESS_LEN).open(&progress)?;
            made.0.push(progress.clone());
            // `progress` is the last option: [`Paced::open`] takes it off.
            format!("?retain={RETAIN}&progress={}", progress.display())
        };
        let (child_a, child_b) =
            (format!("mmap:{}{opts}", a.display()), format!("mmap:{}{opts}", b.display()));
        let (pa, pb) = (child_a.clone(), child_b.clone());
        let paced = !self.sync;
        let open_parent: Box<dyn FnOnce() -> Result<Box<dyn Endpoint>>> = Box::new(move || {
            if paced {
                Ok(Box::new(Paced::open(&pb, &pa, size, Side::Parent)?) as Box<dyn Endpoint>)
            } else {
                Ok(Box::new(IpcxEnd::open(&pb, &pa)?) as Box<dyn Endpoint>)
            }
        });
        Ok(Setup { child_a, child_b, child_fds: Vec::new(), open_parent, guard: Box::new(made) })
    }

    fn open_child(&self, a: &str, b: &str, raw: bool, size: usize) -> Result<Box<dyn Endpoint>> {
        if raw {
            return Ok(Box::new(RawFile::open(a, b, self.sync)?));
        }
        if self.sync {
            return Ok(Box::new(IpcxEnd::open(a, b)?));
        }
        Ok(Box::new(Paced::open(a, b, size, Side::Child)?))
    }
}

/// Segment size of the steady-state log lane's logs.
pub const SEGMENT: u64 = 8 << 20;
/// Segments each of its logs keeps (and recycles).
pub const RETAIN: u64 = 6;
/// How far (in bytes of records) its sender may run ahead of its reader: well inside
/// retention, so nothing it sends is recycled before it is read.
pub const WINDOW: u64 = (RETAIN - 2) * SEGMENT / 2;
/// How often (in messages) its reader publishes its count and its sender looks at it.
pub const PACE_EVERY: u64 = 256;
/// The progress mapping: the child's "reader open" flag, then each side's received count.
const PROGRESS_LEN: usize = 64;
const READY: usize = 0;
const CHILD_RECEIVED: usize = 8;
const PARENT_RECEIVED: usize = 16;

/// Make the log at `dir` and append records of `size` bytes until it has recycled a
/// segment: all [`RETAIN`] segments exist and their pages are in the page cache.
fn fill_past_retention(dir: &Path, size: usize) -> Result<()> {
    let cfg = LogConfig { segment: Some(SEGMENT), retain: RETAIN, ..LogConfig::default() };
    ipcx::mmap::log::create(dir, &cfg)?;
    let mut w = LogWriter::open(dir, &cfg)?;
    let first = w.position().0;
    let record = vec![0x5a; size.min(w.max_message())];
    while w.position().0 <= first + RETAIN {
        w.append(&record)?;
    }
    Ok(())
}

/// Which process a [`Paced`] end is in.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Side {
    Parent,
    Child,
}

/// The steady-state log lane's end: the library's log, with the sender kept at most
/// [`WINDOW`] ahead of the reader through the shared progress mapping.
struct Paced {
    inner: IpcxEnd,
    progress: Mapping,
    /// Offsets of this side's received count and the peer's.
    mine: usize,
    peers: usize,
    sent: u64,
    received: u64,
    /// [`WINDOW`] in messages of the lane's size.
    window: u64,
}

impl Paced {
    /// Open by the lane's addresses; the progress file is their `progress=` option. The
    /// reader starts at the end of the filled log.
    fn open(rx: &str, tx: &str, size: usize, side: Side) -> Result<Paced> {
        let (log_rx, path) = rx.rsplit_once("&progress=").context("no progress= option")?;
        let log_tx = tx.rsplit_once("&progress=").map_or(tx, |(a, _)| a);
        let progress = MapOptions::new().write(true).len(PROGRESS_LEN).open(path)?;
        let inner = IpcxEnd::open(&format!("{log_rx}&from=end"), log_tx)?;
        let ready = progress.atomic_u64(READY)?;
        match side {
            // The reader is open at the end of the log: the parent may start.
            Side::Child => ready.store(1, Ordering::Release),
            Side::Parent => {
                let t = Instant::now();
                while ready.load(Ordering::Acquire) == 0 {
                    if t.elapsed() > Duration::from_secs(10) {
                        bail!("the log lane's peer did not open its reader within 10 s");
                    }
                    std::thread::sleep(Duration::from_micros(100));
                }
            }
        }
        let (mine, peers) = match side {
            Side::Child => (CHILD_RECEIVED, PARENT_RECEIVED),
            Side::Parent => (PARENT_RECEIVED, CHILD_RECEIVED),
        };
        // A record is its header and its payload padded to 8 bytes.
        let record = ipcx::mmap::log::RECORD_HEADER + (size as u64).next_multiple_of(8);
        let window = (WINDOW / record).max(2 * PACE_EVERY);
        Ok(Paced { inner, progress, mine, peers, sent: 0, received: 0, window })
    }
}

impl Endpoint for Paced {
    fn send(&mut self, msg: &[u8]) -> Result<()> {
        self.inner.send(msg)?;
        self.sent += 1;
        if self.sent % PACE_EVERY == 0 {
            let peer = self.progress.atomic_u64(self.peers)?;
            let t = Instant::now();
            let mut spins = 0u32;
            while self.sent - peer.load(Ordering::Acquire) > self.window {
                if t.elapsed() > Duration::from_secs(10) {
                    bail!("the log lane's reader made no progress for 10 s");
                }
                spins += 1;
                if spins > 1000 {
                    std::thread::yield_now();
                } else {
                    std::hint::spin_loop();
                }
            }
        }
        Ok(())
    }
    fn recv(&mut self, buf: &mut Vec<u8>) -> Result<bool> {
        let more = self.inner.recv(buf)?;
        self.received += 1;
        if self.received % PACE_EVERY == 0 {
            self.progress.atomic_u64(self.mine)?.store(self.received, Ordering::Release);
        }
        Ok(more)
    }
    fn finish(&mut self) -> Result<()> {
        self.inner.finish()
    }
}

/// The raw lane: length-prefixed records appended with `write(2)`, read with `pread(2)`.
struct RawFile {
    tx: Option<File>,
    rx: File,
    rx_off: u64,
    sync: bool,
    scratch: Vec<u8>,
}

impl RawFile {
    fn open(rx: &str, tx: &str, sync: bool) -> Result<RawFile> {
        let rx = File::open(rx).with_context(|| format!("opening {rx}"))?;
        let tx = std::fs::OpenOptions::new()
            .append(true)
            .open(tx)
            .with_context(|| format!("opening {tx}"))?;
        Ok(RawFile { tx: Some(tx), rx, rx_off: 0, sync, scratch: Vec::new() })
    }

    fn read_exact_at(&mut self, buf: &mut [u8]) -> Result<()> {
        let mut got = 0;
        let mut idle = 0u32;
        while got < buf.len() {
            match self.rx.read_at(&mut buf[got..], self.rx_off + got as u64)? {
                0 => {
                    // Nothing yet: a plain file has no wake-up, so poll, yielding the CPU.
                    idle += 1;
                    if idle > 64 {
                        std::thread::yield_now();
                    } else {
                        std::hint::spin_loop();
                    }
                }
                n => got += n,
            }
        }
        self.rx_off += buf.len() as u64;
        Ok(())
    }
}

impl Endpoint for RawFile {
    fn send(&mut self, msg: &[u8]) -> Result<()> {
        use std::io::Write;
        let tx = self.tx.as_mut().context("sender already finished")?;
        self.scratch.clear();
        self.scratch.extend_from_slice(&(msg.len() as u32).to_le_bytes());
        self.scratch.extend_from_slice(msg);
        tx.write_all(&self.scratch)?;
        if self.sync {
            tx.sync_data()?;
        }
        Ok(())
    }
    fn recv(&mut self, buf: &mut Vec<u8>) -> Result<bool> {
        let mut len = [0u8; 4];
        self.read_exact_at(&mut len)?;
        let len = u32::from_le_bytes(len) as usize;
        buf.resize(len, 0);
        self.read_exact_at(buf)?;
        Ok(len > 0)
    }
    fn finish(&mut self) -> Result<()> {
        if let Some(tx) = self.tx.as_mut() {
            use std::io::Write;
            tx.write_all(&0u32.to_le_bytes())?;
        }
        self.tx = None;
        Ok(())
    }
}
