//! ipcx's own lanes, opened by address through the library's common API, so a mechanism
//! merged later works here without a change (until then its lane reports the library's
//! error as the reason it was skipped).

use std::os::fd::AsRawFd;
use std::time::Duration;

use anyhow::Result;
use ipcx::{BoxReceiver, BoxSender, ErrorKind, OpenOptions};

use crate::harness::{End, Lane, Prepared};

struct IpcxEnd {
    tx: BoxSender,
    rx: BoxReceiver,
}

impl End for IpcxEnd {
    fn send(&mut self, msg: &[u8]) -> Result<()> {
        Ok(self.tx.send(msg)?)
    }
    fn recv(&mut self, buf: &mut Vec<u8>) -> Result<()> {
        Ok(self.rx.recv_into(buf)?)
    }
}

/// Open the receiver (creating its object), then the sender (waiting up to 10 s for the
/// other process to create its channel). Both processes open their receiver first, so
/// neither waits for the other, and no thread is started: a thread would leave the process
/// multi-threaded for the rest of the run, and every system call of a multi-threaded
/// process costs more (glibc's cancellation bookkeeping), which the peers' single-threaded
/// processes do not pay.
fn open(rx: &str, tx: &str) -> Result<Box<dyn End>> {
    let rx = ipcx::open_receiver_with(rx, &OpenOptions::new().create(true))?;
    let opts = OpenOptions::new().open_timeout(Some(Duration::from_secs(10)));
    // The other process creates this channel: wait for it even where the mechanism does
    // not wait by itself.
    let t = std::time::Instant::now();
    let tx = loop {
        match ipcx::open_sender_with(tx, &opts) {
            Err(e) if e.kind() == ErrorKind::NotFound && t.elapsed() < Duration::from_secs(10) => {
                std::thread::sleep(Duration::from_millis(1))
            }
            r => break r?,
        }
    };
    Ok(Box::new(IpcxEnd { tx, rx }))
}

/// A lane whose two channels are named by addresses built from the run's id.
struct ByAddress {
    key: &'static str,
    label: &'static str,
    mechanism: &'static str,
    /// The address of channel `ab` ("a": parent to child, "b": child to parent).
    addr: fn(id: &str, ab: &str, size: usize) -> String,
}

impl Lane for ByAddress {
    fn key(&self) -> &'static str {
        self.key
    }
    fn label(&self) -> &'static str {
        self.label
    }
    fn mechanism(&self) -> &'static str {
        self.mechanism
    }
    fn is_ipcx(&self) -> bool {
        true
    }
    fn prepare(&self, id: &str, size: usize) -> Result<Prepared> {
        let (a, b) = ((self.addr)(id, "a", size), (self.addr)(id, "b", size));
        Ok(Prepared {
            fds: Vec::new(),
            arg: id.to_owned(),
            connect: Box::new(move || open(&b, &a)),
            guard: Box::new(()),
        })
    }
    fn child(&self, id: &str, size: usize) -> Result<Box<dyn End>> {
        open(&(self.addr)(id, "a", size), &(self.addr)(id, "b", size))
    }
}

/// Two anonymous pipes made by the library, handed to the child as descriptors 3 and 4.
struct PipeLane;

impl Lane for PipeLane {
    fn key(&self) -> &'static str {
        "ipcx-pipe"
    }
    fn label(&self) -> &'static str {
        "ipcx pipe"
    }
    fn mechanism(&self) -> &'static str {
        "pipe"
    }
    fn is_ipcx(&self) -> bool {
        true
    }
    fn prepare(&self, _id: &str, _size: usize) -> Result<Prepared> {
        let (a_r, a_w) = ipcx::pipe::pipe_fds()?;
        let (b_r, b_w) = ipcx::pipe::pipe_fds()?;
        Ok(Prepared {
            fds: vec![(a_r, 3), (b_w, 4)],
            arg: "-".into(),
            connect: Box::new(move || {
                let (tx, rx) = (a_w.as_raw_fd(), b_r.as_raw_fd());
                // The library adopts the descriptors by number (`pipe:fd=N`).
                std::mem::forget(a_w);
                std::mem::forget(b_r);
                open(&format!("pipe:fd={rx}"), &format!("pipe:fd={tx}"))
            }),
            guard: Box::new(()),
        })
    }
    fn child(&self, _arg: &str, _size: usize) -> Result<Box<dyn End>> {
        open("pipe:fd=3", "pipe:fd=4")
    }
}

/// An ipcx lane measured a second time as if it were a peer: the control that shows the
/// method's own spread (see [`Lane::is_control`]).
struct Control {
    key: &'static str,
    label: &'static str,
    of: Box<dyn Lane>,
}

impl Lane for Control {
    fn key(&self) -> &'static str {
        self.key
    }
    fn label(&self) -> &'static str {
        self.label
    }
    fn mechanism(&self) -> &'static str {
        self.of.mechanism()
    }
    fn is_control(&self) -> bool {
        true
    }
    fn prepare(&self, id: &str, size: usize) -> Result<Prepared> {
        self.of.prepare(id, size)
    }
    fn child(&self, arg: &str, size: usize) -> Result<Box<dyn End>> {
        self.of.child(arg, size)
    }
}

/// The ring's capacity for messages of `size` bytes, as `ipcx bench` sizes it.
fn ring(size: usize) -> usize {
    ipcx::shm::ring::capacity_for(size)
}

fn tmp(id: &str, ab: &str, ext: &str) -> String {
    std::env::temp_dir().join(format!("ipcx-peers-{id}-{ab}.{ext}")).display().to_string()
}

fn posix_mq() -> ByAddress {
    ByAddress {
        key: "ipcx-posix-mq",
        label: "ipcx POSIX queue",
        mechanism: "posix-mq",
        // Fewer messages when they are big, so that both queues fit RLIMIT_MSGQUEUE.
        addr: |id, ab, size| {
            let maxmsg = (300_000 / size).clamp(1, 10);
            format!("posix-mq:/ipcx-peers-{id}-{ab}?maxmsg={maxmsg}&msgsize={size}")
        },
    }
}

/// The controls: the lanes whose targets are closest to a tie.
pub fn controls() -> Vec<Box<dyn Lane>> {
    vec![
        Box::new(Control {
            key: "control-pipe",
            label: "control: ipcx pipe again",
            of: Box::new(PipeLane),
        }),
        Box::new(Control {
            key: "control-posix-mq",
            label: "control: ipcx POSIX queue again",
            of: Box::new(posix_mq()),
        }),
    ]
}

pub fn lanes() -> Vec<Box<dyn Lane>> {
    vec![
        Box::new(PipeLane),
        Box::new(ByAddress {
            key: "ipcx-unix",
            label: "ipcx unix stream",
            mechanism: "unix",
            addr: |id, ab, _| format!("unix:{}", tmp(id, ab, "sock")),
        }),
        Box::new(ByAddress {
            key: "ipcx-unix-seqpacket",
            label: "ipcx unix seqpacket",
            mechanism: "unix-seqpacket",
            addr: |id, ab, size| {
                format!("unix-seqpacket:{}?max={}", tmp(id, ab, "sock"), size.max(1 << 16))
            },
        }),
        Box::new(posix_mq()),
        Box::new(ByAddress {
            key: "ipcx-shm",
            label: "ipcx shared-memory ring",
            mechanism: "shm",
            addr: |id, ab, size| format!("shm:/ipcx-peers-{id}-{ab}?capacity={}", ring(size)),
        }),
        Box::new(ByAddress {
            key: "ipcx-shm-spin",
            label: "ipcx shared-memory ring, spinning",
            mechanism: "shm-spin",
            addr: |id, ab, size| {
                format!("shm:/ipcx-peers-{id}-{ab}?capacity={}&spin=1", ring(size))
            },
        }),
    ]
}
