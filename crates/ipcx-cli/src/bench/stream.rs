//! Lanes for pipes and FIFOs.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context, Result};

use super::lane::{Endpoint, IpcxEnd, Lane, RawStream, Setup};

/// Two anonymous pipes handed to the child as descriptors 3 (it reads) and 4 (it writes).
pub struct PipeLane;

impl Lane for PipeLane {
    fn name(&self) -> &'static str {
        "pipe"
    }
    fn setup(&self, _dir: &Path, _tag: &str, raw: bool, size: usize) -> Result<Setup> {
        // The raw lane gets the bare pipe(2); the ipcx lane the pipe as ipcx makes it.
        let make = || -> Result<_> {
            if raw {
                ipcx::sys::pipe().map_err(|e| anyhow!("pipe: errno {}", e.0))
            } else {
                Ok(ipcx::pipe::pipe_fds()?)
            }
        };
        let (a_r, a_w) = make()?;
        let (b_r, b_w) = make()?;
        let open_parent: Box<dyn FnOnce() -> Result<Box<dyn Endpoint>>> = if raw {
            Box::new(move || {
                Ok(Box::new(RawStream { tx: Some(File::from(a_w)), rx: File::from(b_r), size })
                    as Box<dyn Endpoint>)
            })
        } else {
            Box::new(move || {
                let (tx, rx) = (a_w.as_raw_fd(), b_r.as_raw_fd());
                // The library adopts the descriptors by number (`pipe:fd=N`).
                std::mem::forget(a_w);
                std::mem::forget(b_r);
                Ok(Box::new(IpcxEnd::open(&format!("pipe:fd={rx}"), &format!("pipe:fd={tx}"))?)
                    as Box<dyn Endpoint>)
            })
        };
        Ok(Setup {
            child_a: "pipe:fd=3".into(),
            child_b: "pipe:fd=4".into(),
            child_fds: vec![(a_r, 3), (b_w, 4)],
            open_parent,
            guard: Box::new(()),
        })
    }
    fn open_child(&self, a: &str, b: &str, raw: bool, size: usize) -> Result<Box<dyn Endpoint>> {
        if raw {
            let rx = ipcx::sys::adopt_fd(3).map_err(|e| anyhow!("fd 3: errno {}", e.0))?;
            let tx = ipcx::sys::adopt_fd(4).map_err(|e| anyhow!("fd 4: errno {}", e.0))?;
            return Ok(Box::new(RawStream { tx: Some(File::from(tx)), rx: File::from(rx), size }));
        }
        Ok(Box::new(IpcxEnd::open(a, b)?))
    }
}

/// Two FIFOs in the run's directory.
pub struct FifoLane;

/// The path of a `fifo:` address, without its options.
fn fifo_path(addr: &str) -> Result<PathBuf> {
    let addr = addr.split('?').next().unwrap_or(addr);
    addr.strip_prefix("fifo:").map(PathBuf::from).context("not a fifo: address")
}

impl Lane for FifoLane {
    fn name(&self) -> &'static str {
        "fifo"
    }
    fn setup(&self, dir: &Path, tag: &str, raw: bool, size: usize) -> Result<Setup> {
        let a = dir.join(format!("{tag}-a.fifo"));
        let b = dir.join(format!("{tag}-b.fifo"));
        let guard = (ipcx::fifo::Fifo::create(&a, 0o600)?, ipcx::fifo::Fifo::create(&b, 0o600)?);
        // Messages over PIPE_BUF need the single-writer setting.
        let opt = if size + 4 > ipcx::sys::PIPE_BUF { "?atomic=0" } else { "" };
        let (child_a, child_b) =
            (format!("fifo:{}{opt}", a.display()), format!("fifo:{}{opt}", b.display()));
        let (pa, pb) = (child_a.clone(), child_b.clone());
        let open_parent: Box<dyn FnOnce() -> Result<Box<dyn Endpoint>>> = if raw {
            Box::new(move || {
                // Open order matches the child's (it reads a, then writes b): no deadlock.
                let tx = std::fs::OpenOptions::new().write(true).open(fifo_path(&pa)?)?;
                let rx = File::open(fifo_path(&pb)?)?;
                Ok(Box::new(RawStream { tx: Some(tx), rx, size }) as Box<dyn Endpoint>)
            })
        } else {
            Box::new(move || Ok(Box::new(IpcxEnd::open(&pb, &pa)?) as Box<dyn Endpoint>))
        };
        Ok(Setup { child_a, child_b, child_fds: Vec::new(), open_parent, guard: Box::new(guard) })
    }
    fn open_child(&self, a: &str, b: &str, raw: bool, size: usize) -> Result<Box<dyn Endpoint>> {
        if raw {
            let rx = File::open(fifo_path(a)?)?;
            let tx = std::fs::OpenOptions::new().write(true).open(fifo_path(b)?)?;
            return Ok(Box::new(RawStream { tx: Some(tx), rx, size }));
        }
        Ok(Box::new(IpcxEnd::open(a, b)?))
    }
}
