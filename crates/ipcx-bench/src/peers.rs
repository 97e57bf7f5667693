//! The crates a user would pick instead of ipcx, each used the way its documentation
//! shows, at its fastest settings for these scenarios.
//!
//! `shared_memory` and `raw_sync` hand out raw pointers into the shared region, so this
//! module needs `unsafe` (each block says why it is sound).
#![allow(unsafe_code)]

use std::io::{Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};

use crate::harness::{End, Lane, Prepared};

/// Every peer lane, in report order.
pub fn lanes() -> Vec<Box<dyn Lane>> {
    vec![
        Box::new(UnnamedPipe),
        Box::new(LocalSocket),
        Box::new(IpcChannel),
        Box::new(PosixMqLane),
        Box::new(Iceoryx2),
        Box::new(SharedMemory::<raw_sync::events::Event>::new("shared_memory", false)),
        Box::new(SharedMemory::<raw_sync::events::BusyEvent>::new("shared_memory-busy", true)),
    ]
}

/// A byte stream carrying messages of exactly the measured size, no framing.
struct StreamEnd<R, W> {
    rx: R,
    tx: W,
    size: usize,
}

impl<R: Read, W: Write> End for StreamEnd<R, W> {
    fn send(&mut self, msg: &[u8]) -> Result<()> {
        Ok(self.tx.write_all(msg)?)
    }
    fn recv(&mut self, buf: &mut Vec<u8>) -> Result<()> {
        buf.resize(self.size, 0);
        Ok(self.rx.read_exact(buf)?)
    }
}

// ---------------------------------------------------------------- interprocess

/// `interprocess::unnamed_pipe`: two pipes, the child's ends handed over as fds 3 and 4.
struct UnnamedPipe;

impl Lane for UnnamedPipe {
    fn key(&self) -> &'static str {
        "interprocess-pipe"
    }
    fn label(&self) -> &'static str {
        "interprocess 2.4 unnamed_pipe"
    }
    fn mechanism(&self) -> &'static str {
        "pipe"
    }
    fn prepare(&self, _id: &str, size: usize) -> Result<Prepared> {
        let (a_tx, a_rx) = interprocess::unnamed_pipe::pipe()?;
        let (b_tx, b_rx) = interprocess::unnamed_pipe::pipe()?;
        Ok(Prepared {
            fds: vec![(OwnedFd::from(a_rx), 3), (OwnedFd::from(b_tx), 4)],
            arg: "-".into(),
            connect: Box::new(move || {
                Ok(Box::new(StreamEnd { rx: b_rx, tx: a_tx, size }) as Box<dyn End>)
            }),
            guard: Box::new(()),
        })
    }
    fn child(&self, _arg: &str, size: usize) -> Result<Box<dyn End>> {
        // SAFETY: the parent handed this process descriptors 3 and 4 (the pipe ends) and
        // nothing else here owns them.
        let (rx, tx) = unsafe { (OwnedFd::from_raw_fd(3), OwnedFd::from_raw_fd(4)) };
        Ok(Box::new(StreamEnd {
            rx: interprocess::unnamed_pipe::Recver::from(rx),
            tx: interprocess::unnamed_pipe::Sender::from(tx),
            size,
        }))
    }
}

/// `interprocess::local_socket` on a file path (a Unix stream socket on Linux).
struct LocalSocket;

fn sock_path(id: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("ipcx-peers-{id}.sock"))
}

/// Removes a path on drop.
struct RmOnDrop(std::path::PathBuf);
impl Drop for RmOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A local socket stream: `&Stream` reads and writes.
struct SockEnd {
    s: interprocess::local_socket::Stream,
    size: usize,
}

impl End for SockEnd {
    fn send(&mut self, msg: &[u8]) -> Result<()> {
        Ok((&self.s).write_all(msg)?)
    }
    fn recv(&mut self, buf: &mut Vec<u8>) -> Result<()> {
        buf.resize(self.size, 0);
        Ok((&self.s).read_exact(buf)?)
    }
}

impl Lane for LocalSocket {
    fn key(&self) -> &'static str {
        "interprocess-socket"
    }
    fn label(&self) -> &'static str {
        "interprocess 2.4 local_socket"
    }
    fn mechanism(&self) -> &'static str {
        "unix"
    }
    fn prepare(&self, id: &str, size: usize) -> Result<Prepared> {
        use interprocess::local_socket::{prelude::*, GenericFilePath, ListenerOptions};
        let path = sock_path(id);
        let name = path.as_path().to_fs_name::<GenericFilePath>()?;
        let listener = ListenerOptions::new().name(name).create_sync()?;
        Ok(Prepared {
            fds: Vec::new(),
            arg: path.display().to_string(),
            connect: Box::new(move || {
                let s = listener.accept()?;
                Ok(Box::new(SockEnd { s, size }) as Box<dyn End>)
            }),
            guard: Box::new(RmOnDrop(path)),
        })
    }
    fn child(&self, path: &str, size: usize) -> Result<Box<dyn End>> {
        use interprocess::local_socket::{prelude::*, GenericFilePath, Stream};
        let s = Stream::connect(path.to_fs_name::<GenericFilePath>()?)?;
        Ok(Box::new(SockEnd { s, size }))
    }
}

// ---------------------------------------------------------------- ipc-channel

/// `ipc-channel` byte channels, bootstrapped through an `IpcOneShotServer`.
struct IpcChannel;

type Pair = (ipc_channel::ipc::IpcBytesSender, ipc_channel::ipc::IpcBytesReceiver);

struct IpcChannelEnd(Pair);

impl End for IpcChannelEnd {
    fn send(&mut self, msg: &[u8]) -> Result<()> {
        Ok(self.0 .0.send(msg)?)
    }
    fn recv(&mut self, buf: &mut Vec<u8>) -> Result<()> {
        *buf = self.0 .1.recv().map_err(|e| anyhow!("ipc-channel recv: {e:?}"))?;
        Ok(())
    }
}

impl Lane for IpcChannel {
    fn key(&self) -> &'static str {
        "ipc-channel"
    }
    fn label(&self) -> &'static str {
        "ipc-channel 0.20 bytes_channel"
    }
    fn mechanism(&self) -> &'static str {
        "unix-seqpacket"
    }
    fn prepare(&self, _id: &str, _size: usize) -> Result<Prepared> {
        let (server, name) = ipc_channel::ipc::IpcOneShotServer::<Pair>::new()?;
        Ok(Prepared {
            fds: Vec::new(),
            arg: name,
            connect: Box::new(move || {
                let (_rx, pair) =
                    server.accept().map_err(|e| anyhow!("ipc-channel accept: {e}"))?;
                Ok(Box::new(IpcChannelEnd(pair)) as Box<dyn End>)
            }),
            guard: Box::new(()),
        })
    }
    fn child(&self, name: &str, _size: usize) -> Result<Box<dyn End>> {
        let (a_tx, a_rx) = ipc_channel::ipc::bytes_channel()?;
        let (b_tx, b_rx) = ipc_channel::ipc::bytes_channel()?;
        let boot = ipc_channel::ipc::IpcSender::<Pair>::connect(name.to_owned())?;
        boot.send((a_tx, b_rx)).map_err(|e| anyhow!("ipc-channel bootstrap: {e}"))?;
        Ok(Box::new(IpcChannelEnd((b_tx, a_rx))))
    }
}

// ---------------------------------------------------------------- posixmq

/// `posixmq`: two POSIX queues sized for the message.
struct PosixMqLane;

struct MqEnd {
    tx: posixmq::PosixMq,
    rx: posixmq::PosixMq,
    size: usize,
}

impl End for MqEnd {
    fn send(&mut self, msg: &[u8]) -> Result<()> {
        Ok(self.tx.send(0, msg)?)
    }
    fn recv(&mut self, buf: &mut Vec<u8>) -> Result<()> {
        buf.resize(self.size, 0);
        let (_, n) = self.rx.recv(buf)?;
        buf.truncate(n);
        Ok(())
    }
}

struct MqGuard(Vec<String>);
impl Drop for MqGuard {
    fn drop(&mut self) {
        for n in &self.0 {
            let _ = posixmq::remove_queue(n);
        }
    }
}

fn mq_names(id: &str) -> (String, String) {
    (format!("/ipcx-peers-{id}-a"), format!("/ipcx-peers-{id}-b"))
}

impl Lane for PosixMqLane {
    fn key(&self) -> &'static str {
        "posixmq"
    }
    fn label(&self) -> &'static str {
        "posixmq 1.0"
    }
    fn mechanism(&self) -> &'static str {
        "posix-mq"
    }
    fn prepare(&self, id: &str, size: usize) -> Result<Prepared> {
        let (a, b) = mq_names(id);
        let guard = MqGuard(vec![a.clone(), b.clone()]);
        let make = |n: &str| {
            posixmq::OpenOptions::readwrite()
                .create_new()
                .mode(0o600)
                .capacity(10)
                .max_msg_len(size)
                .open(n)
                .with_context(|| format!("creating {n} for {size}-byte messages (see /proc/sys/fs/mqueue/msgsize_max)"))
        };
        let tx = make(&a)?;
        let rx = make(&b)?;
        Ok(Prepared {
            fds: Vec::new(),
            arg: id.to_owned(),
            connect: Box::new(move || Ok(Box::new(MqEnd { tx, rx, size }) as Box<dyn End>)),
            guard: Box::new(guard),
        })
    }
    fn child(&self, id: &str, size: usize) -> Result<Box<dyn End>> {
        let (a, b) = mq_names(id);
        let rx = posixmq::OpenOptions::readwrite().existing().open(&a)?;
        let tx = posixmq::OpenOptions::readwrite().existing().open(&b)?;
        Ok(Box::new(MqEnd { tx, rx, size }))
    }
}

// ---------------------------------------------------------------- iceoryx2

/// `iceoryx2` publish-subscribe on `[u8]` slices: one service each way, the subscriber
/// polled in a busy loop (its lowest-latency use), no history, and a publisher that
/// blocks rather than drops when the subscriber's buffer is full (so every message
/// counts, as with the other lanes).
struct Iceoryx2;

mod iox {
    use super::*;
    use iceoryx2::port::publisher::Publisher;
    use iceoryx2::port::subscriber::Subscriber;
    use iceoryx2::prelude::*;
    use iceoryx2::service::port_factory::publish_subscribe::PortFactory;
    use iceoryx2::service::port_factory::PortFactory as _;

    type Svc = ipc::Service;

    /// Ports first: fields drop in order, and the node must outlive its ports.
    pub struct IoxEnd {
        publisher: Publisher<Svc, [u8], ()>,
        subscriber: Subscriber<Svc, [u8], ()>,
        _out: PortFactory<Svc, [u8], ()>,
        _in: PortFactory<Svc, [u8], ()>,
        _node: Node<Svc>,
    }

    const BUFFER: usize = 16;

    fn service(node: &Node<Svc>, name: &str) -> Result<PortFactory<Svc, [u8], ()>> {
        let name: ServiceName =
            name.try_into().map_err(|e| anyhow!("service name {name}: {e:?}"))?;
        node.service_builder(&name)
            .publish_subscribe::<[u8]>()
            .enable_safe_overflow(false)
            .history_size(0)
            .subscriber_max_buffer_size(BUFFER)
            .max_publishers(1)
            .max_subscribers(1)
            .open_or_create()
            .map_err(|e| anyhow!("iceoryx2 service {name}: {e:?}"))
    }

    pub fn open(id: &str, parent: bool, size: usize) -> Result<IoxEnd> {
        set_log_level(LogLevel::Error);
        let node =
            NodeBuilder::new().create::<Svc>().map_err(|e| anyhow!("iceoryx2 node: {e:?}"))?;
        let a = service(&node, &format!("ipcx-peers/{id}/a"))?;
        let b = service(&node, &format!("ipcx-peers/{id}/b"))?;
        let (out, inn) = if parent { (a, b) } else { (b, a) };
        let subscriber = inn
            .subscriber_builder()
            .buffer_size(BUFFER)
            .create()
            .map_err(|e| anyhow!("iceoryx2 subscriber: {e:?}"))?;
        let publisher = out
            .publisher_builder()
            .initial_max_slice_len(size)
            .unable_to_deliver_strategy(UnableToDeliverStrategy::Block)
            .create()
            .map_err(|e| anyhow!("iceoryx2 publisher: {e:?}"))?;
        // Wait for the other side's subscriber: with no history, a sample published before
        // it connects is lost.
        let t = Instant::now();
        while out.dynamic_config().number_of_subscribers() == 0 {
            if t.elapsed() > Duration::from_secs(10) {
                bail!("iceoryx2: the other side never subscribed");
            }
            std::thread::sleep(Duration::from_micros(100));
        }
        Ok(IoxEnd { publisher, subscriber, _out: out, _in: inn, _node: node })
    }

    impl End for IoxEnd {
        fn send(&mut self, msg: &[u8]) -> Result<()> {
            let s = self
                .publisher
                .loan_slice_uninit(msg.len())
                .map_err(|e| anyhow!("iceoryx2 loan: {e:?}"))?;
            s.write_from_slice(msg).send().map_err(|e| anyhow!("iceoryx2 send: {e:?}"))?;
            Ok(())
        }
        fn recv(&mut self, buf: &mut Vec<u8>) -> Result<()> {
            loop {
                if let Some(s) =
                    self.subscriber.receive().map_err(|e| anyhow!("iceoryx2 receive: {e:?}"))?
                {
                    buf.clear();
                    buf.extend_from_slice(s.payload());
                    return Ok(());
                }
                std::hint::spin_loop();
            }
        }
    }
}

impl Lane for Iceoryx2 {
    fn key(&self) -> &'static str {
        "iceoryx2"
    }
    fn label(&self) -> &'static str {
        "iceoryx2 0.7 publish-subscribe"
    }
    /// Busy-polled, so it is compared with the spinning ring.
    fn mechanism(&self) -> &'static str {
        "shm-spin"
    }
    fn prepare(&self, id: &str, size: usize) -> Result<Prepared> {
        let id = id.to_owned();
        Ok(Prepared {
            fds: Vec::new(),
            arg: id.clone(),
            connect: Box::new(move || Ok(Box::new(iox::open(&id, true, size)?) as Box<dyn End>)),
            guard: Box::new(()),
        })
    }
    fn child(&self, id: &str, size: usize) -> Result<Box<dyn End>> {
        Ok(Box::new(iox::open(id, false, size)?))
    }
}

// ---------------------------------------------------------------- shared_memory + raw_sync

/// `shared_memory` for a region holding one slot each way, and `raw_sync` events
/// (auto-reset; `Event` blocks on a process-shared condition variable, `BusyEvent` spins)
/// saying when a slot is full and when it is empty again.
struct SharedMemory<E> {
    key: &'static str,
    busy: bool,
    e: std::marker::PhantomData<E>,
}

impl<E> SharedMemory<E> {
    fn new(key: &'static str, busy: bool) -> Self {
        SharedMemory { key, busy, e: std::marker::PhantomData }
    }
}

/// Room for one event (the `raw_sync` Event is a mutex and a condition variable).
const EV: usize = 256;

/// Events: 0 a-full, 1 a-empty, 2 b-full, 3 b-empty; then slot a, then slot b.
fn region_len(size: usize) -> usize {
    4 * EV + 2 * size
}

struct ShmEnd {
    // Events point into the mapping: they go first.
    events: Vec<Box<dyn raw_sync::events::EventImpl>>,
    shmem: shared_memory::Shmem,
    size: usize,
    /// Index of our outgoing slot (0 = a, 1 = b).
    out: usize,
}

impl ShmEnd {
    fn slot(&self, which: usize) -> *mut u8 {
        // SAFETY: the region is `region_len(size)` bytes, so both slots are inside it.
        unsafe { self.shmem.as_ptr().add(4 * EV + which * self.size) }
    }
}

fn rs<T>(r: std::result::Result<T, Box<dyn std::error::Error>>, what: &str) -> Result<T> {
    r.map_err(|e| anyhow!("raw_sync {what}: {e}"))
}

impl End for ShmEnd {
    fn send(&mut self, msg: &[u8]) -> Result<()> {
        use raw_sync::{events::EventState, Timeout};
        let (full, empty) = (2 * self.out, 2 * self.out + 1);
        rs(self.events[empty].wait(Timeout::Infinite), "wait")?;
        // SAFETY: the slot holds `size` bytes (`msg.len() == size`), and the empty event
        // says the reader is not touching it until we signal full.
        unsafe {
            std::ptr::copy_nonoverlapping(
                msg.as_ptr(),
                self.slot(self.out),
                msg.len().min(self.size),
            )
        };
        rs(self.events[full].set(EventState::Signaled), "set")
    }
    fn recv(&mut self, buf: &mut Vec<u8>) -> Result<()> {
        use raw_sync::{events::EventState, Timeout};
        let inn = 1 - self.out;
        rs(self.events[2 * inn].wait(Timeout::Infinite), "wait")?;
        buf.resize(self.size, 0);
        // SAFETY: as in `send`: the full event hands the slot to us until we signal empty.
        unsafe { std::ptr::copy_nonoverlapping(self.slot(inn), buf.as_mut_ptr(), self.size) };
        rs(self.events[2 * inn + 1].set(EventState::Signaled), "set")
    }
}

impl<E: raw_sync::events::EventInit + 'static> Lane for SharedMemory<E> {
    fn key(&self) -> &'static str {
        self.key
    }
    fn label(&self) -> &'static str {
        if self.busy {
            "shared_memory 0.12+raw_sync BusyEvent"
        } else {
            "shared_memory 0.12+raw_sync Event"
        }
    }
    /// The spinning `BusyEvent` is compared with the spinning ring, `Event` (which sleeps
    /// in the kernel) with the blocking one.
    fn mechanism(&self) -> &'static str {
        if self.busy {
            "shm-spin"
        } else {
            "shm"
        }
    }
    fn prepare(&self, id: &str, size: usize) -> Result<Prepared> {
        if E::size_of(None) > EV {
            bail!("a raw_sync event needs {} bytes, more than the {EV} reserved", E::size_of(None));
        }
        let os_id = format!("ipcx-peers-{id}");
        let shmem = shared_memory::ShmemConf::new()
            .size(region_len(size))
            .os_id(&os_id)
            .create()
            .map_err(|e| anyhow!("shared_memory create {os_id}: {e}"))?;
        let mut events = Vec::new();
        for i in 0..4 {
            // SAFETY: each event gets its own EV-byte piece of the fresh mapping, which
            // lives as long as `shmem` (dropped after the events, see `ShmEnd`).
            events.push(rs(unsafe { E::new(shmem.as_ptr().add(i * EV), true) }, "new")?.0);
        }
        use raw_sync::events::EventState;
        rs(events[1].set(EventState::Signaled), "set")?;
        rs(events[3].set(EventState::Signaled), "set")?;
        Ok(Prepared {
            fds: Vec::new(),
            arg: os_id,
            connect: Box::new(move || {
                Ok(Box::new(ShmEnd { events, shmem, size, out: 0 }) as Box<dyn End>)
            }),
            guard: Box::new(()),
        })
    }
    fn child(&self, os_id: &str, size: usize) -> Result<Box<dyn End>> {
        let shmem = shared_memory::ShmemConf::new()
            .os_id(os_id)
            .open()
            .map_err(|e| anyhow!("shared_memory open {os_id}: {e}"))?;
        if shmem.len() < region_len(size) {
            bail!("shared_memory {os_id} is {} bytes, want {}", shmem.len(), region_len(size));
        }
        let mut events = Vec::new();
        for i in 0..4 {
            // SAFETY: the parent initialised an event at each of these offsets.
            events.push(rs(unsafe { E::from_existing(shmem.as_ptr().add(i * EV)) }, "open")?.0);
        }
        Ok(Box::new(ShmEnd { events, shmem, size, out: 1 }))
    }
}
