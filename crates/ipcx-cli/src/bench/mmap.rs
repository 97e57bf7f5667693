//! Lanes for the durable log (`mmap:`), with durability none (`mmap-log`) and every
//! message (`mmap-log-sync`). Ping-pong uses two logs, one per direction (a log is one
//! way). The raw lane writes the same records (a 4-byte length, then the payload) with one
//! `write(2)` each to a plain file, `fdatasync` after each in the sync lane, and the peer
//! reads them back with `pread(2)`, polling (a plain file has no wake-up).
//!
//! The sync lane measures the disk's `fsync` rate once (50 `fsync`s of a small file in the
//! bench directory) and prints it, since every-message durability cannot beat it.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Instant;

use anyhow::{Context, Result};

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
        match run() {
            Ok((n, secs)) => println!(
                "mmap-log-sync: this disk does {:.0} fsync/s ({n} fdatasync of a 4 KiB file in {}, {:.1} µs each); every-message durability cannot go faster",
                f64::from(n) / secs,
                dir.display(),
                secs * 1e6 / f64::from(n)
            ),
            Err(e) => println!("mmap-log-sync: could not measure the fsync rate: {e}"),
        }
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

    fn setup(&self, dir: &Path, tag: &str, raw: bool, _size: usize) -> Result<Setup> {
        if self.sync {
            report_fsync_rate(dir);
        }
        let (a, b) = if raw {
            let (a, b) = (dir.join(format!("{tag}-a.raw")), dir.join(format!("{tag}-b.raw")));
            File::create(&a)?;
            File::create(&b)?;
            (a, b)
        } else {
            let (a, b) = (dir.join(format!("{tag}-a.log")), dir.join(format!("{tag}-b.log")));
            for p in [&a, &b] {
                ipcx::mmap::log::create(p, &Default::default())?;
            }
            (a, b)
        };
        // Retention deletes the oldest segments even when a reader has not read them (as
        // documented), which a lagging sink would count as lost messages: keep 64 segments
        // (4 GiB), more than one measurement writes; the run's directory goes afterwards.
        let opts = if self.sync { "?sync=always&retain=64" } else { "?retain=64" };
        let (child_a, child_b) = if raw {
            (a.display().to_string(), b.display().to_string())
        } else {
            (format!("mmap:{}{opts}", a.display()), format!("mmap:{}{opts}", b.display()))
        };
        let (pa, pb) = (child_a.clone(), child_b.clone());
        let sync = self.sync;
        let open_parent: Box<dyn FnOnce() -> Result<Box<dyn Endpoint>>> = if raw {
            Box::new(move || Ok(Box::new(RawFile::open(&pb, &pa, sync)?) as Box<dyn Endpoint>))
        } else {
            Box::new(move || Ok(Box::new(IpcxEnd::open(&pb, &pa)?) as Box<dyn Endpoint>))
        };
        Ok(Setup {
            child_a,
            child_b,
            child_fds: Vec::new(),
            open_parent,
            guard: Box::new(Remove(vec![a, b])),
        })
    }

    fn open_child(&self, a: &str, b: &str, raw: bool, _size: usize) -> Result<Box<dyn Endpoint>> {
        if raw {
            return Ok(Box::new(RawFile::open(a, b, self.sync)?));
        }
        Ok(Box::new(IpcxEnd::open(a, b)?))
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
