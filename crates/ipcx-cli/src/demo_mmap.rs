//! `ipcx demo mmap`: two processes share a memory-mapped file; `flush` puts it on disk;
//! then the durable log carries messages between them.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use ipcx::mmap::{MapOptions, Mapping};
use ipcx::{Receiver, Sender};

const ENV: &str = "IPCX_DEMO_MAP";

/// Kilobytes of this process's mapping of `path` that are dirty (modified in memory,
/// not yet written to the file's disk), from `/proc/self/smaps`.
fn dirty_kb(path: &std::path::Path) -> Option<u64> {
    let smaps = std::fs::read_to_string("/proc/self/smaps").ok()?;
    let name = path.to_str()?;
    let mut inside = false;
    let mut kb = None;
    for line in smaps.lines() {
        let first = line.split_whitespace().next().unwrap_or("");
        if first.contains('-') && !first.ends_with(':') {
            inside = line.ends_with(name);
            continue;
        }
        if inside && (line.starts_with("Shared_Dirty:") || line.starts_with("Private_Dirty:")) {
            let v: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
            kb = Some(kb.unwrap_or(0) + v);
        }
    }
    kb
}

fn text_at(m: &Mapping, off: usize) -> Result<String> {
    let mut b = [0u8; 128];
    m.read_at(off, &mut b)?;
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    Ok(String::from_utf8_lossy(&b[..end]).into_owned())
}

/// The demo's directory, and the log made in it: removed (and the log's registry entry
/// forgotten, so `ipcx ls` does not count an entry for a log that is gone) on every path.
struct DemoFiles {
    dir: crate::demo::DemoDir,
    log: PathBuf,
}

impl DemoFiles {
    fn create() -> Result<DemoFiles> {
        let dir = crate::demo::DemoDir::create(&format!("ipcx-demo-mmap-{}", std::process::id()))?;
        let log = dir.path().join("events.log");
        Ok(DemoFiles { dir, log })
    }

    fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for DemoFiles {
    fn drop(&mut self) {
        // The log marks itself kept when closed (a log outlives its writer by design); this
        // one is the demo's own, and goes with the directory (`DemoDir`, dropped next), so
        // its registry entry goes now.
        if let Ok(a) = ipcx::Address::parse(&format!("mmap:{}", self.log.display())) {
            ipcx::registry::forget_removed(&a);
        }
    }
}

pub fn run() -> Result<()> {
    let files = DemoFiles::create()?;
    run_in(&files)
}

fn run_in(files: &DemoFiles) -> Result<()> {
    let mut out = crate::io::stdout();
    let path = files.dir().join("shared.bin");
    let map = MapOptions::new().create(true).len(4096).open(&path)?;
    let note = format!("hello from pid {}, stored into the mapping", std::process::id());
    map.write_at(0, note.as_bytes())?;
    writeln!(
        out,
        "writer (pid {}) mapped {} (4096 bytes, MAP_SHARED) and stored: {note}",
        std::process::id(),
        path.display()
    )?;

    let mut reader = crate::demo::Reaped::new(
        Command::new(crate::demo::me()?)
            .args(["demo", "mmap-peer"])
            .env(ENV, &path)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .context("starting the reader process")?,
    );
    let peer = reader.output("the reader process")?;
    out.write_all(&peer.stdout)?;
    if !peer.status.success() {
        bail!("the reader failed: {}", String::from_utf8_lossy(&peer.stderr).trim_end());
    }
    writeln!(out, "writer reads back what the other process stored: {}", text_at(&map, 512)?)?;

    let before = dirty_kb(&path);
    let t = Instant::now();
    map.flush()?;
    let took = t.elapsed();
    match (before, dirty_kb(&path)) {
        (Some(b), Some(a)) => writeln!(
            out,
            "before flush, {b} kB of the mapping were dirty (in memory only, /proc/self/smaps); flush() = msync(MS_SYNC) took {took:?} and left {a} kB dirty: the changes are on the disk now, and survive a power cut"
        )?,
        _ => writeln!(out, "flush() = msync(MS_SYNC) took {took:?}: the changes are on the disk now, and survive a power cut")?,
    }
    writeln!(out, "What happened: both processes mapped the same file with mmap(2), MAP_SHARED, so they shared its page-cache pages: a store by one was seen by the other at once, with no system call. Until flush, those pages were only in memory (safe from a crash of either process, not from a power cut); msync(MS_SYNC) wrote them to the file's disk.")?;

    // The durable log on top.
    let log = &files.log;
    let addr = format!("mmap:{}?sync=always", log.display());
    let mut tx = ipcx::open_sender(&addr)?;
    for e in ["e1", "e2", "e3"] {
        tx.send(e.as_bytes())?;
    }
    drop(tx);
    let mut rx = ipcx::open_receiver(&format!("mmap:{}?reader=demo", log.display()))?;
    let mut got = Vec::new();
    while let Ok(m) = rx.try_recv() {
        got.push(String::from_utf8_lossy(&m).into_owned());
    }
    writeln!(out, "Then a durable log: `ipcx send mmap:{} e1 e2 e3` appends three checksummed records (sync=always: msync before each send returns); the reader `demo` got {:?} and its position is kept in the log, so it would resume after them.", log.display(), got)?;
    Ok(())
}

/// The other process: map the same file, read the writer's note, store a reply.
pub fn peer() -> Result<()> {
    let path = std::env::var_os(ENV).context("ipcx demo mmap-peer is started by ipcx demo mmap")?;
    let map = Mapping::open_rw(&path)?;
    writeln!(
        crate::io::stdout(),
        "reader (pid {}) mapped the same file and read: {}",
        std::process::id(),
        text_at(&map, 0)?
    )?;
    map.write_at(512, format!("a reply stored by pid {}", std::process::id()).as_bytes())?;
    Ok(())
}
