//! Lanes for System V and POSIX message queues: two queues per measurement (the child
//! receives on `a` and sends on `b`); the end marker is an empty message. The raw lanes
//! make the bare `msgsnd`/`msgrcv` and `mq_send`/`mq_receive` calls with the same
//! buffers a C program would use.

use std::ffi::CString;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use ipcx::sys::mq::{self as raw, MsgBuf};

use super::lane::{Endpoint, IpcxEnd, Lane, Setup};

/// System V queues with keys unique to this run.
pub struct SysvMqLane;

fn sysv_key(tag: &str, end: u32) -> i32 {
    // pid and the measurement's number make the key unique on this machine for the run.
    let n: u32 = tag.trim_start_matches(|c: char| !c.is_ascii_digit()).parse().unwrap_or(0);
    let kind = u32::from(tag.starts_with('t'));
    (0x4000_0000 | ((std::process::id() & 0xffff) << 10) | ((n & 0xff) << 2) | (kind << 1) | end)
        as i32
}

struct RawSysv {
    tx: i32,
    rx: i32,
    sbuf: MsgBuf,
    rbuf: MsgBuf,
}

impl Endpoint for RawSysv {
    fn send(&mut self, msg: &[u8]) -> Result<()> {
        self.sbuf.fill(1, msg);
        raw::msgsnd(self.tx, &self.sbuf, msg.len(), 0).map_err(|e| anyhow!("msgsnd: errno {}", e.0))
    }
    fn recv(&mut self, buf: &mut Vec<u8>) -> Result<bool> {
        let n = raw::msgrcv(self.rx, &mut self.rbuf, 0, 0)
            .map_err(|e| anyhow!("msgrcv: errno {}", e.0))?;
        buf.clear();
        buf.extend_from_slice(self.rbuf.payload(n));
        Ok(n != 0)
    }
    fn finish(&mut self) -> Result<()> {
        self.send(&[])
    }
}

fn sysv_ids(a: &str, b: &str) -> Result<(i32, i32)> {
    let id = |s: &str| -> Result<i32> {
        let k: i32 = s.strip_prefix("sysv-mq:").context("not a sysv-mq: address")?.parse()?;
        raw::msgget(k, 0).map_err(|e| anyhow!("msgget {k}: errno {}", e.0))
    };
    Ok((id(a)?, id(b)?))
}

impl Lane for SysvMqLane {
    fn name(&self) -> &'static str {
        "sysv-mq"
    }
    fn setup(&self, _dir: &Path, tag: &str, raw_lane: bool, size: usize) -> Result<Setup> {
        let msgmax = raw::read_limit(ipcx::sysv_mq::MSGMAX_PATH).unwrap_or(8192) as usize;
        if size > msgmax {
            bail!(
                "messages of {size} bytes exceed the system's limit of {msgmax} ({}); raising it is a system setting (sysctl kernel.msgmax), not the benchmark's to change",
                ipcx::sysv_mq::MSGMAX_PATH
            );
        }
        let (ka, kb) = (sysv_key(tag, 0), sysv_key(tag, 1));
        use ipcx::address::SysvKey;
        let qa = ipcx::sysv_mq::Queue::create(SysvKey::Key(ka), 0o600)?;
        let qb = ipcx::sysv_mq::Queue::create(SysvKey::Key(kb), 0o600)?;
        let (child_a, child_b) = (format!("sysv-mq:{ka}"), format!("sysv-mq:{kb}"));
        let (pa, pb) = (child_a.clone(), child_b.clone());
        let open_parent: Box<dyn FnOnce() -> Result<Box<dyn Endpoint>>> = if raw_lane {
            Box::new(move || {
                let (rx, tx) = sysv_ids(&pb, &pa)?;
                Ok(Box::new(RawSysv {
                    tx,
                    rx,
                    sbuf: MsgBuf::with_capacity(size),
                    rbuf: MsgBuf::with_capacity(msgmax),
                }) as Box<dyn Endpoint>)
            })
        } else {
            Box::new(move || Ok(Box::new(IpcxEnd::open(&pb, &pa)?) as Box<dyn Endpoint>))
        };
        Ok(Setup {
            child_a,
            child_b,
            child_fds: Vec::new(),
            open_parent,
            guard: Box::new((qa, qb)),
        })
    }
    fn open_child(
        &self,
        a: &str,
        b: &str,
        raw_lane: bool,
        size: usize,
    ) -> Result<Box<dyn Endpoint>> {
        if raw_lane {
            let (rx, tx) = sysv_ids(a, b)?;
            let msgmax = raw::read_limit(ipcx::sysv_mq::MSGMAX_PATH).unwrap_or(8192) as usize;
            return Ok(Box::new(RawSysv {
                tx,
                rx,
                sbuf: MsgBuf::with_capacity(size),
                rbuf: MsgBuf::with_capacity(msgmax),
            }));
        }
        Ok(Box::new(IpcxEnd::open(a, b)?))
    }
}

/// POSIX queues named after the run; each holds 10 messages of the measured size.
pub struct PosixMqLane;

struct RawPosix {
    tx: OwnedFd,
    rx: OwnedFd,
}

impl Endpoint for RawPosix {
    fn send(&mut self, msg: &[u8]) -> Result<()> {
        raw::mq_send(self.tx.as_fd(), msg, 0, None).map_err(|e| anyhow!("mq_send: errno {}", e.0))
    }
    fn recv(&mut self, buf: &mut Vec<u8>) -> Result<bool> {
        let _prio = raw::mq_receive(self.rx.as_fd(), buf, None)
            .map_err(|e| anyhow!("mq_receive: errno {}", e.0))?;
        Ok(!buf.is_empty())
    }
    fn finish(&mut self) -> Result<()> {
        self.send(&[])
    }
}

fn posix_open(a: &str, b: &str) -> Result<RawPosix> {
    let open = |s: &str, flags: i32| -> Result<OwnedFd> {
        let name = s.strip_prefix("posix-mq:").context("not a posix-mq: address")?;
        let name = name.split('?').next().unwrap_or(name);
        let c = CString::new(name)?;
        raw::mq_open(&c, flags, 0, None).map_err(|e| anyhow!("mq_open {name}: errno {}", e.0))
    };
    Ok(RawPosix { rx: open(a, libc::O_RDONLY)?, tx: open(b, libc::O_WRONLY)? })
}

impl Lane for PosixMqLane {
    fn name(&self) -> &'static str {
        "posix-mq"
    }
    fn setup(&self, _dir: &Path, tag: &str, raw_lane: bool, size: usize) -> Result<Setup> {
        let base = format!("/ipcx-bench-{}-{tag}", std::process::id());
        // Fewer messages when they are large, so both queues fit the per-user byte limit
        // (RLIMIT_MSGQUEUE, 800 KiB by default); the raw lane uses the same queues.
        let maxmsg = (300_000 / size).clamp(1, 10) as u64;
        // Above msgsize_max only a privileged process may go: let the kernel decide, and
        // report the limit if it says no.
        let make = |end: &str| {
            ipcx::posix_mq::Queue::builder(format!("{base}-{end}"))
                .max_messages(maxmsg)
                .message_size(size as u64)
                .beyond_system_limits(true)
                .create()
        };
        let (qa, qb) = (make("a")?, make("b")?);
        let (child_a, child_b) =
            (format!("posix-mq:{}", qa.name()), format!("posix-mq:{}", qb.name()));
        let (pa, pb) = (child_a.clone(), child_b.clone());
        let open_parent: Box<dyn FnOnce() -> Result<Box<dyn Endpoint>>> = if raw_lane {
            Box::new(move || Ok(Box::new(posix_open(&pb, &pa)?) as Box<dyn Endpoint>))
        } else {
            Box::new(move || Ok(Box::new(IpcxEnd::open(&pb, &pa)?) as Box<dyn Endpoint>))
        };
        Ok(Setup {
            child_a,
            child_b,
            child_fds: Vec::new(),
            open_parent,
            guard: Box::new((qa, qb)),
        })
    }
    fn open_child(
        &self,
        a: &str,
        b: &str,
        raw_lane: bool,
        _size: usize,
    ) -> Result<Box<dyn Endpoint>> {
        if raw_lane {
            return Ok(Box::new(posix_open(a, b)?));
        }
        Ok(Box::new(IpcxEnd::open(a, b)?))
    }
}
