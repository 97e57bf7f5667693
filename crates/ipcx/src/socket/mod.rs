//! Sockets: Unix domain (stream, seqpacket, datagram) and TCP, with peer credentials,
//! descriptor passing and a listener that serves many clients.
//!
//! | address | socket | boundaries |
//! |---|---|---|
//! | `unix:/path`, `unix:@name` | `AF_UNIX`, `SOCK_STREAM` | framed by ipcx (`framing=`) |
//! | `unix-seqpacket:/path` | `AF_UNIX`, `SOCK_SEQPACKET` | kept by the kernel |
//! | `unix-dgram:/path` | `AF_UNIX`, `SOCK_DGRAM` | kept by the kernel |
//! | `tcp:host:port`, `tcp::port` | `AF_INET`/`AF_INET6`, `SOCK_STREAM`, `TCP_NODELAY` | framed by ipcx |
//!
//! ## Who listens
//!
//! `OpenOptions::create` means *listen*: [`crate::open_receiver_with`] with `create`
//! binds the address and returns a [`Server`], which accepts any number of clients and
//! yields their messages in one receiver, fairly (a ready client that just delivered goes
//! to the back of the line), never blocked by an idle client (it polls every
//! connection), and dropping (with a line on standard error) a client that breaks the
//! protocol (a frame over `max=`) while serving the others. Without `persist` the server
//! reports `Disconnected` once clients have sent to it and all have left; with `persist` (the
//! `ipcx recv --listen` default) it serves until dropped.
//!
//! Without `create`, an end *connects* as a client ([`Connection`], usable both ways).
//! `open_timeout` is how long a client keeps trying while nobody listens yet; without
//! one, a missing server is an immediate clear error (`NotFound`, "connection refused").
//! [`crate::open_sender_with`] with `create` listens and waits (at most `open_timeout`)
//! for one client, then sends to it.
//!
//! A datagram socket has no connection: its receiver always binds the name, and its
//! senders connect to it.
//!
//! ## Safety of the name
//!
//! A socket file is created with mode 0600 (or `mode=`), never wider even for an instant
//! (the socket's mode is set before `bind`, then made exact). The file appears at its
//! name only when the server is ready: the socket is bound at a temporary name beside it
//! (`.NAME.PID.N`, which is what `ss -x` shows), given its mode, listening, and then
//! renamed into place without replacing anything. So a client that sees the file is never
//! refused for being early, and a script may wait for the file as the sign that the
//! server is up. A socket file left by a dead server (a connect is refused) is replaced; a
//! live server's is never taken (`AlreadyExists`). The server removes its file on drop if
//! it is still the one it made. A path must fit `sun_path`: at most 107 bytes (a path too
//! long for the temporary name beside it is bound in place, and ready a moment later).
//!
//! ## Peer credentials
//!
//! Every Unix connection knows its peer's pid, uid and gid (`SO_PEERCRED`), read when it
//! is accepted; `?allow_uid=1000,1001` (or [`ServerOptions::allow_uids`]) makes a server
//! close any other uid's connection unserved, logging it on standard error.
//!
//! ## Descriptor passing
//!
//! [`Connection::send_with_fds`] sends open descriptors with a message (`SCM_RIGHTS`);
//! [`Connection::recv_with_fds`] returns them as `OwnedFd`s, refusing (with none leaked)
//! a message that carries more than the receiver allows. A receiver that takes none (the
//! default, `max_fds` 0) refuses a stream frame that carries some; a packet (seqpacket,
//! datagram) is delivered without them, the kernel having closed them, as with any
//! receive that asks for no control data.
//!
//! ## Example
//!
//! ```
//! use ipcx::{address::Address, socket, Receiver, Sender};
//!
//! let path = std::env::temp_dir().join(format!("ipcx-doc-{}.sock", std::process::id()));
//! let addr = Address::parse(&format!("unix:{}", path.display()))?;
//! let listener = socket::listen(&addr)?; // the socket file, mode 0600
//! let mut client = socket::connect(&addr, None)?;
//! client.send(b"ping")?;
//! let mut conn = listener.accept()?;
//! assert_eq!(conn.recv()?, b"ping");
//! assert_eq!(conn.peer_cred().unwrap().pid as u32, std::process::id());
//! conn.send(b"pong")?;
//! assert_eq!(client.recv()?, b"pong");
//! drop(listener); // removes the socket file
//! assert!(!path.exists());
//! # Ok::<(), ipcx::Error>(())
//! ```

pub mod tcp;
pub mod unix;

use std::collections::VecDeque;
use std::io::IoSlice;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::address::{Address, Target, UnixKind};
use crate::error::{Error, ErrorKind, Result};
use crate::frame::{Framing, StreamIo, StreamReceiver, StreamSender, LENGTH_HEADER};
use crate::sys::socket::{self as ss, SockStream};
use crate::sys::{self, Errno, SysResult};
use crate::{OpenOptions, Receiver, Sender, Wait};

/// The default largest seqpacket or datagram message (64 KiB); `max=N` changes it.
pub const DEFAULT_MAX_PACKET: usize = 64 << 10;

/// Who is at the other end of a Unix connection (`SO_PEERCRED` / `SCM_CREDENTIALS`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerCred {
    /// Process id (as seen in this process's pid namespace).
    pub pid: i32,
    /// User id.
    pub uid: u32,
    /// Group id.
    pub gid: u32,
}

impl From<(i32, u32, u32)> for PeerCred {
    fn from((pid, uid, gid): (i32, u32, u32)) -> PeerCred {
        PeerCred { pid, uid, gid }
    }
}

fn nb(nonblock: bool) -> i32 {
    if nonblock {
        libc::MSG_DONTWAIT
    } else {
        0
    }
}

/// Run `op` under `wait` on a socket: blocking (after a few non-blocking tries for a
/// receive), one try, or tries with `poll` until the deadline (`ETIMEDOUT`).
fn with_wait<T>(
    fd: BorrowedFd<'_>,
    events: i16,
    wait: Wait,
    mut op: impl FnMut(bool) -> SysResult<T>,
) -> SysResult<T> {
    if wait == Wait::Forever && events == libc::POLLIN {
        if let Some(r) = sys::spin_tries(|| op(true)) {
            return r;
        }
    }
    let deadline = match wait {
        Wait::Forever => return op(false),
        Wait::Never => return op(true),
        Wait::Until(d) => d,
    };
    loop {
        match op(true) {
            Err(Errno(libc::EAGAIN)) => {}
            other => return other,
        }
        if sys::poll(fd, events, Some(deadline))?.none() {
            return Err(Errno(libc::ETIMEDOUT));
        }
    }
}

/// A socket that keeps message boundaries itself (seqpacket, datagram).
#[derive(Debug)]
struct Packet {
    fd: Arc<OwnedFd>,
    max: usize,
    /// Seqpacket: a 0-byte read is end of stream unless the sender's address or a
    /// timestamp came with it.
    seqpacket: bool,
    /// Seqpacket: the peer has an address, so every message it sends carries it.
    named_peer: bool,
    eof: bool,
    control: Vec<u64>,
    inbox: Vec<OwnedFd>,
    ctrunc: bool,
    last_cred: Option<PeerCred>,
}

impl Packet {
    fn new(fd: Arc<OwnedFd>, max: usize, seqpacket: bool, max_fds: usize) -> SysResult<Packet> {
        // Seqpacket: an empty message and end of stream both read as 0 bytes. A message
        // from a peer that has an address (ipcx's clients and pairs bind to one the kernel
        // picks; an accepted connection has its listener's) carries that address, so a
        // receive reads it along with the message and needs no control data. From an
        // unnamed peer (another program's client) a timestamp rides on every message
        // instead, which takes control data: about a tenth of the small-message rate.
        // Credentials would tell them apart too, but cost about a fifth (reference counts
        // on the sender's pid and cred, taken on one core and dropped on the other).
        // Datagrams: credentials name each sender.
        // (Not knowing counts as unnamed: the timestamp way is always right.)
        let named_peer = seqpacket && ss::peer_is_named(fd.as_fd()).unwrap_or(false);
        if !named_peer {
            let opt = if seqpacket { libc::SO_TIMESTAMP } else { libc::SO_PASSCRED };
            ss::set_int_opt(fd.as_fd(), libc::SOL_SOCKET, opt, 1)?;
        }
        let mut p = Packet {
            fd,
            max,
            seqpacket,
            named_peer,
            eof: false,
            control: Vec::new(),
            inbox: Vec::new(),
            ctrunc: false,
            last_cred: None,
        };
        p.set_max_fds(max_fds);
        Ok(p)
    }

    fn set_max_fds(&mut self, n: usize) {
        self.control = vec![0u64; ss::control_space(n).div_ceil(8)];
    }

    fn send(&mut self, name: &str, msg: &[u8], fds: &[BorrowedFd<'_>], wait: Wait) -> Result<()> {
        if msg.len() > self.max {
            return Err(Error::too_large(
                "send",
                name,
                self.max as u64,
                format!(
                    "message of {} bytes exceeds the limit of {} bytes for this socket (raise it with ?max=N on both ends)",
                    msg.len(),
                    self.max
                ),
            ));
        }
        let bufs = [IoSlice::new(msg)];
        with_wait(self.fd.as_fd(), libc::POLLOUT, wait, |nonblock| {
            ss::send_with_fds(self.fd.as_fd(), &bufs, fds, libc::MSG_NOSIGNAL | nb(nonblock))
        })
        .map(drop)
        .map_err(|e| send_err(name, e))
    }

    /// Receive one packet; `max_fds` is the receiver's limit (its control room is sized
    /// for it by [`Packet::set_max_fds`]).
    fn recv(&mut self, name: &str, out: &mut Vec<u8>, max_fds: usize, wait: Wait) -> Result<()> {
        out.clear();
        if self.eof {
            return Err(disconnected(name));
        }
        self.inbox.clear();
        let (fd, control, max) = (&self.fd, &mut self.control, self.max);
        // From a named peer, to a receiver that takes no descriptors, `recvfrom` is enough:
        // the sender's address tells a message from end of stream, and descriptors sent
        // anyway are closed by the kernel, as they would be with any receive that takes none
        // (`recvmsg`, with its message header to copy in and out, cost about a sixth of the
        // small-message rate).
        let named_peer = self.named_peer;
        let r = if named_peer && max_fds == 0 {
            with_wait(fd.as_fd(), libc::POLLIN, wait, |nonblock| {
                let (len, named) =
                    ss::recv_from_vec(fd.as_fd(), out, max, libc::MSG_TRUNC | nb(nonblock))?;
                Ok(ss::Received { len, named, ..Default::default() })
            })
        } else {
            with_wait(fd.as_fd(), libc::POLLIN, wait, |nonblock| {
                let flags = libc::MSG_TRUNC | nb(nonblock);
                ss::recv_msg_vec(fd.as_fd(), out, max, control, named_peer, flags)
            })
        }
        .map_err(|e| recv_err(name, e))?;
        // A packet to a receiver that takes no descriptors arrives without any: the kernel
        // closed them (whichever way it was read).
        (self.inbox, self.ctrunc) =
            if max_fds == 0 { Default::default() } else { (r.fds, r.ctrunc) };
        self.last_cred = r.creds.map(PeerCred::from);
        if r.len == 0 && self.seqpacket && !r.named && !r.stamped {
            self.eof = true;
            return Err(disconnected(name));
        }
        if r.len > self.max {
            self.inbox.clear();
            out.clear();
            return Err(Error::too_large(
                "recv",
                name,
                self.max as u64,
                format!(
                    "a message of {} bytes arrived, over this receiver's limit of {} bytes; it was discarded (raise the limit with ?max=N)",
                    r.len, self.max
                ),
            ));
        }
        Ok(())
    }
}

fn disconnected(name: &str) -> Error {
    Error::new(ErrorKind::Disconnected, "recv", name, "the peer closed its end (end of stream)")
}

fn send_err(name: &str, e: Errno) -> Error {
    crate::frame::send_error(name, e, "the socket's buffer is full (the reader is not keeping up)")
}

fn recv_err(name: &str, e: Errno) -> Error {
    match e.0 {
        libc::EAGAIN => Error::new(ErrorKind::WouldBlock, "recv", name, "no message is waiting"),
        libc::ETIMEDOUT => {
            Error::new(ErrorKind::TimedOut, "recv", name, "no message arrived before the time-out")
        }
        _ => Error::from_errno("recv", name, e.0),
    }
}

fn too_many_fds(name: &str, max: usize) -> Error {
    Error::too_large(
        "recv",
        name,
        max as u64,
        format!(
            "a message carried more descriptors than the {max} this receiver accepts; the message was refused and every descriptor that came with it closed (raise the limit with set_max_fds)"
        ),
    )
}

// One per connection, long-lived: boxing the larger variant would only add a hop.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
enum Chan {
    Stream { tx: StreamSender<SockStream>, rx: StreamReceiver<SockStream> },
    Packet(Packet),
}

/// A connected socket: a channel end that sends and receives.
///
/// Made by [`unix::connect`], [`tcp::connect`], [`Listener::accept`], or the common API.
#[derive(Debug)]
pub struct Connection {
    fd: Arc<OwnedFd>,
    chan: Chan,
    peer: Option<PeerCred>,
    name: String,
    max_fds: usize,
}

impl Connection {
    /// Wrap a connected socket. `framing` applies to stream sockets; `max` to packets.
    fn new(
        fd: OwnedFd,
        kind: SockKind,
        framing: Framing,
        max: usize,
        name: String,
    ) -> Result<Connection> {
        let peer = if kind.is_unix() {
            Some(
                ss::peer_cred(fd.as_fd())
                    .map_err(|e| Error::from_errno("open", &name, e.0))?
                    .into(),
            )
        } else {
            None
        };
        let fd = Arc::new(fd);
        let chan = match kind {
            SockKind::Unix(UnixKind::Stream) | SockKind::Tcp => Chan::Stream {
                tx: StreamSender::new(
                    SockStream::new(fd.clone()),
                    framing,
                    name.clone(),
                    usize::MAX,
                ),
                rx: StreamReceiver::new(SockStream::new(fd.clone()), framing, name.clone()),
            },
            SockKind::Unix(k) => Chan::Packet(
                Packet::new(fd.clone(), max, k == UnixKind::Seqpacket, 0)
                    .map_err(|e| Error::from_errno("open", &name, e.0))?,
            ),
        };
        Ok(Connection { fd, chan, peer, name, max_fds: 0 })
    }

    /// The peer's pid, uid and gid, read when the connection was made (Unix sockets).
    #[doc(alias = "SO_PEERCRED")]
    pub fn peer_cred(&self) -> Option<PeerCred> {
        self.peer
    }

    /// Who sent the last message: for a datagram receiver, the credentials that came with
    /// it (`SCM_CREDENTIALS`); for a connection, the peer's ([`Connection::peer_cred`]).
    pub fn last_cred(&self) -> Option<PeerCred> {
        match &self.chan {
            Chan::Packet(p) if !p.seqpacket => p.last_cred,
            _ => self.peer,
        }
    }

    /// The socket descriptor.
    pub fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Accept at most `n` descriptors per message from now on. 0, the default, takes none:
    /// the kernel closes any that come; a stream frame that carried some is refused, a
    /// packet is delivered without them. Unix sockets only.
    pub fn set_max_fds(&mut self, n: usize) {
        self.max_fds = n;
        match &mut self.chan {
            Chan::Packet(p) => p.set_max_fds(n),
            Chan::Stream { rx, .. } => {
                let control =
                    if n == 0 { Vec::new() } else { vec![0u64; ss::control_space(n).div_ceil(8)] };
                rx_stream_mut(rx).set_control(control);
            }
        }
    }

    /// Send `msg` with open descriptors (`SCM_RIGHTS`): the receiver gets its own
    /// descriptors for the same open files (a file, a shared-memory segment, a socket).
    /// Blocks while the socket is full. Unix sockets only.
    #[doc(alias = "SCM_RIGHTS")]
    pub fn send_with_fds(&mut self, msg: &[u8], fds: &[BorrowedFd<'_>]) -> Result<()> {
        let name = self.name.clone();
        if ss::local_addr(self.fd.as_fd()).map(|a| a.family()) != Ok(libc::AF_UNIX) {
            return Err(Error::new(
                ErrorKind::Unsupported,
                "send",
                name,
                "only Unix domain sockets carry descriptors (SCM_RIGHTS)",
            ));
        }
        match &mut self.chan {
            Chan::Packet(p) => p.send(&name, msg, fds, Wait::Forever),
            Chan::Stream { tx, .. } => {
                if !matches!(tx.framing(), Framing::Length { .. }) {
                    return Err(Error::new(
                        ErrorKind::Unsupported,
                        "send",
                        name,
                        "descriptors go with length-framed messages only (framing=length)",
                    ));
                }
                if msg.len() > tx.max_message_size() {
                    return tx.send(msg); // the framing's own TooLarge error
                }
                // Finish any message a non-blocking send left half sent.
                tx.get_mut().flush(false).map_err(|e| send_err(&name, e))?;
                let header = (msg.len() as u32).to_le_bytes();
                let parts = [IoSlice::new(&header), IoSlice::new(msg)];
                let total = LENGTH_HEADER + msg.len();
                // The descriptors go with the first bytes of the frame; the rest follows.
                let mut done =
                    ss::send_with_fds(tx.get_ref().fd(), &parts, fds, libc::MSG_NOSIGNAL)
                        .map_err(|e| send_err(&name, e))?;
                while done < total {
                    let rest: Vec<IoSlice<'_>> = if done < LENGTH_HEADER {
                        vec![IoSlice::new(&header[done..]), IoSlice::new(msg)]
                    } else {
                        vec![IoSlice::new(&msg[done - LENGTH_HEADER..])]
                    };
                    done += ss::send(tx.get_ref().fd(), &rest, libc::MSG_NOSIGNAL)
                        .map_err(|e| send_err(&name, e))?;
                }
                Ok(())
            }
        }
    }

    /// Receive a message and the descriptors sent with it (at most `max_fds`; a message
    /// with more is refused with `TooLarge` and all of its descriptors closed).
    pub fn recv_with_fds(&mut self, max_fds: usize) -> Result<(Vec<u8>, Vec<OwnedFd>)> {
        if self.max_fds != max_fds {
            self.set_max_fds(max_fds);
        }
        let mut buf = Vec::new();
        self.recv_into(&mut buf)?;
        Ok((buf, self.take_fds()))
    }

    fn take_fds(&mut self) -> Vec<OwnedFd> {
        match &mut self.chan {
            Chan::Packet(p) => std::mem::take(&mut p.inbox),
            Chan::Stream { rx, .. } => rx_stream_mut(rx).take_fds(),
        }
    }

    /// Shut down the sending direction: the peer reads end of stream after what was sent.
    pub fn shutdown_send(&self) -> Result<()> {
        ss::shutdown(self.fd.as_fd(), libc::SHUT_WR)
            .map_err(|e| Error::from_errno("shutdown", &self.name, e.0))
    }
}

fn rx_stream_mut(rx: &mut StreamReceiver<SockStream>) -> &mut SockStream {
    rx.get_mut()
}

impl Sender for Connection {
    fn send_wait(&mut self, msg: &[u8], wait: Wait) -> Result<()> {
        match &mut self.chan {
            Chan::Stream { tx, .. } => tx.send_wait(msg, wait),
            Chan::Packet(p) => p.send(&self.name, msg, &[], wait),
        }
    }
    fn max_message_size(&self) -> usize {
        match &self.chan {
            Chan::Stream { tx, .. } => tx.max_message_size(),
            Chan::Packet(p) => p.max,
        }
    }
    fn address(&self) -> &str {
        &self.name
    }
}

impl Receiver for Connection {
    fn recv_wait(&mut self, buf: &mut Vec<u8>, wait: Wait) -> Result<()> {
        let max_fds = self.max_fds;
        match &mut self.chan {
            Chan::Stream { rx, .. } => {
                rx_stream_mut(rx).take_fds();
                let r = rx.recv_wait(buf, wait);
                let s = rx_stream_mut(rx);
                if s.take_ctrunc() | (s.fds_len() > max_fds) {
                    s.take_fds();
                    r?;
                    buf.clear();
                    return Err(too_many_fds(&self.name, max_fds));
                }
                r
            }
            Chan::Packet(p) => {
                let r = p.recv(&self.name, buf, max_fds, wait);
                if std::mem::take(&mut p.ctrunc) | (p.inbox.len() > max_fds) {
                    p.inbox.clear();
                    r?;
                    buf.clear();
                    return Err(too_many_fds(&self.name, max_fds));
                }
                r
            }
        }
    }
    fn address(&self) -> &str {
        &self.name
    }
}

/// The kind of socket an address names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SockKind {
    /// A Unix domain socket of this kind.
    Unix(UnixKind),
    /// TCP.
    Tcp,
}

impl SockKind {
    fn is_unix(self) -> bool {
        matches!(self, SockKind::Unix(_))
    }
    fn sock_type(self) -> i32 {
        match self {
            SockKind::Unix(UnixKind::Stream) | SockKind::Tcp => libc::SOCK_STREAM,
            SockKind::Unix(UnixKind::Seqpacket) => libc::SOCK_SEQPACKET,
            SockKind::Unix(UnixKind::Datagram) => libc::SOCK_DGRAM,
        }
    }
}

/// What a [`Server`] accepts.
#[derive(Clone, Debug, Default)]
pub struct ServerOptions {
    /// Only these uids are served (Unix sockets); others are closed unserved and logged.
    pub allow_uids: Option<Vec<u32>>,
    /// Keep serving after all clients have left (else `Disconnected` then).
    pub persist: bool,
    /// Do not log refused and dropped clients on standard error.
    pub quiet: bool,
}

/// A bound, listening socket; a Unix socket file is removed on drop if still ours.
#[derive(Debug)]
pub struct Listener {
    fd: OwnedFd,
    kind: SockKind,
    framing: Framing,
    max: usize,
    name: String,
    _file: Option<unix::SocketFile>,
}

impl Listener {
    /// The listening descriptor.
    pub fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// The address clients connect to (for `tcp:...:0`, the port chosen).
    pub fn address(&self) -> &str {
        &self.name
    }

    /// Leave the socket file in place on drop.
    pub fn keep(&mut self) {
        if let Some(f) = &mut self._file {
            f.keep();
        }
    }

    /// Accept one client, waiting as `wait` says.
    pub fn accept_wait(&self, wait: Wait) -> Result<Connection> {
        let deadline = match wait {
            Wait::Forever => None,
            Wait::Never => Some(Instant::now()),
            Wait::Until(d) => Some(d),
        };
        loop {
            match ss::accept(self.fd.as_fd()) {
                Ok(fd) => return self.wrap(fd),
                Err(Errno(libc::EAGAIN | libc::ECONNABORTED)) => {}
                Err(e) => return Err(Error::from_errno("accept", &self.name, e.0)),
            }
            let ready = sys::poll(self.fd.as_fd(), libc::POLLIN, deadline)
                .map_err(|e| Error::from_errno("accept", &self.name, e.0))?;
            if ready.none() {
                return Err(match wait {
                    Wait::Never => Error::new(
                        ErrorKind::WouldBlock,
                        "accept",
                        &self.name,
                        "no client is waiting to connect",
                    ),
                    _ => Error::new(
                        ErrorKind::TimedOut,
                        "accept",
                        &self.name,
                        "no client connected before the time-out",
                    ),
                });
            }
        }
    }

    fn wrap(&self, fd: OwnedFd) -> Result<Connection> {
        if self.kind == SockKind::Tcp {
            ss::set_int_opt(fd.as_fd(), libc::IPPROTO_TCP, libc::TCP_NODELAY, 1)
                .map_err(|e| Error::from_errno("accept", &self.name, e.0))?;
        }
        Connection::new(fd, self.kind, self.framing, self.max, self.name.clone())
    }

    /// Accept one client, blocking.
    pub fn accept(&self) -> Result<Connection> {
        self.accept_wait(Wait::Forever)
    }
}

struct Client {
    conn: Connection,
    queued: bool,
}

/// A listener that serves many clients as one receiver (see the module doc).
pub struct Server {
    listener: Listener,
    opts: ServerOptions,
    clients: Vec<Option<Client>>,
    ready: VecDeque<usize>,
    live: usize,
    seen: bool,
    pollfds: Vec<libc::pollfd>,
    poll_ids: Vec<usize>,
    last_peer: Option<PeerCred>,
    refused: u64,
    accept_paused: Option<Instant>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("listener", &self.listener)
            .field("clients", &self.live)
            .finish()
    }
}

impl Server {
    /// Serve clients of `listener`.
    pub fn new(listener: Listener, opts: ServerOptions) -> Server {
        Server {
            listener,
            opts,
            clients: Vec::new(),
            ready: VecDeque::new(),
            live: 0,
            seen: false,
            pollfds: Vec::new(),
            poll_ids: Vec::new(),
            last_peer: None,
            refused: 0,
            accept_paused: None,
        }
    }

    /// The listener.
    pub fn listener(&self) -> &Listener {
        &self.listener
    }

    /// Who sent the last message received.
    pub fn last_peer(&self) -> Option<PeerCred> {
        self.last_peer
    }

    /// Clients connected now.
    pub fn clients(&self) -> usize {
        self.live
    }

    /// Connections refused by the uid allow list so far.
    pub fn refused(&self) -> u64 {
        self.refused
    }

    fn log(&self, what: std::fmt::Arguments<'_>) {
        if !self.opts.quiet {
            eprintln!("ipcx: {}: {what}", self.listener.name);
        }
    }

    /// Accept every client waiting now.
    fn accept_pending(&mut self) -> Result<()> {
        loop {
            let fd = match ss::accept(self.listener.fd.as_fd()) {
                Ok(fd) => fd,
                Err(Errno(libc::EAGAIN)) => return Ok(()),
                // A client that gave up before being accepted is no error of the server's.
                Err(Errno(libc::ECONNABORTED | libc::EPROTO)) => continue,
                Err(Errno(e @ (libc::EMFILE | libc::ENFILE))) => {
                    self.log(format_args!(
                        "cannot accept a client: {}; pausing accepts for 100 ms",
                        std::io::Error::from_raw_os_error(e)
                    ));
                    // The listener stays readable; polling it now would spin.
                    self.accept_paused = Some(Instant::now() + Duration::from_millis(100));
                    return Ok(());
                }
                Err(e) => return Err(Error::from_errno("accept", &self.listener.name, e.0)),
            };
            let conn = match self.listener.wrap(fd) {
                Ok(c) => c,
                Err(e) => {
                    self.log(format_args!("client dropped at accept: {e}"));
                    continue;
                }
            };
            if let (Some(allow), Some(p)) = (&self.opts.allow_uids, conn.peer) {
                if !allow.contains(&p.uid) {
                    self.refused += 1;
                    self.log(format_args!(
                        "refused a client: pid {} uid {} gid {} is not on the allow list ({:?}); closed unserved",
                        p.pid, p.uid, p.gid, allow
                    ));
                    continue;
                }
            }
            let client = Client { conn, queued: true };
            let id = match self.clients.iter().position(Option::is_none) {
                Some(i) => {
                    self.clients[i] = Some(client);
                    i
                }
                None => {
                    self.clients.push(Some(client));
                    self.clients.len() - 1
                }
            };
            self.live += 1;
            self.ready.push_back(id);
        }
    }

    fn drop_client(&mut self, id: usize) {
        if self.clients[id].take().is_some() {
            self.live -= 1;
        }
    }
}

impl Receiver for Server {
    fn recv_wait(&mut self, out: &mut Vec<u8>, wait: Wait) -> Result<()> {
        let mut spins = 0;
        loop {
            while let Some(id) = self.ready.pop_front() {
                let Some(c) = self.clients[id].as_mut() else { continue };
                c.queued = false;
                match c.conn.recv_wait(out, Wait::Never) {
                    Ok(()) => {
                        c.queued = true;
                        self.last_peer = c.conn.peer;
                        // Only a client that spoke counts: a connection that carries
                        // nothing (another server probing for a stale socket file)
                        // must not end a server that has not served anyone yet.
                        self.seen = true;
                        self.ready.push_back(id);
                        return Ok(());
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                    Err(e) if e.kind() == ErrorKind::Disconnected => self.drop_client(id),
                    Err(e) => {
                        let who = c
                            .conn
                            .peer
                            .map(|p| format!(" (pid {} uid {})", p.pid, p.uid))
                            .unwrap_or_default();
                        self.log(format_args!("dropped a client{who}: {e}"));
                        self.drop_client(id);
                    }
                }
            }
            if !self.opts.persist && self.seen && self.live == 0 {
                self.accept_pending()?;
                if self.live == 0 {
                    return Err(Error::new(
                        ErrorKind::Disconnected,
                        "recv",
                        &self.listener.name,
                        "every client has disconnected (open with persist to keep serving)",
                    ));
                }
                continue;
            }
            // Before sleeping in poll, look at every client a few times without blocking
            // (as a single connection does): a message that comes within the spin costs
            // no wake-up. New connections wait for the poll, a few microseconds at most.
            if spins < sys::SPIN_TRIES && wait != Wait::Never && self.live > 0 {
                spins += 1;
                for (id, c) in self.clients.iter_mut().enumerate() {
                    if let Some(c) = c.as_mut().filter(|c| !c.queued) {
                        c.queued = true;
                        self.ready.push_back(id);
                    }
                }
                std::hint::spin_loop();
                continue;
            }
            self.pollfds.clear();
            self.poll_ids.clear();
            let paused = self.accept_paused.filter(|&t| t > Instant::now());
            self.accept_paused = paused;
            self.pollfds.push(libc::pollfd {
                // A negative descriptor is skipped by poll.
                fd: if paused.is_some() { -1 } else { self.listener.fd.as_raw_fd() },
                events: libc::POLLIN,
                revents: 0,
            });
            for (id, c) in self.clients.iter().enumerate() {
                if let Some(c) = c {
                    self.pollfds.push(libc::pollfd {
                        fd: c.conn.fd.as_raw_fd(),
                        events: libc::POLLIN,
                        revents: 0,
                    });
                    self.poll_ids.push(id);
                }
            }
            let deadline = match wait {
                Wait::Forever => None,
                Wait::Never => Some(Instant::now()),
                Wait::Until(d) => Some(d),
            };
            let wake = match (deadline, paused) {
                (Some(d), Some(p)) => Some(d.min(p)),
                (d, p) => d.or(p),
            };
            let n = sys::poll_many(&mut self.pollfds, wake)
                .map_err(|e| Error::from_errno("recv", &self.listener.name, e.0))?;
            if n == 0 && paused.is_some_and(|p| deadline.is_none_or(|d| p < d)) {
                continue; // the pause is over: poll the listener again
            }
            if n == 0 {
                return Err(match wait {
                    Wait::Never => Error::new(
                        ErrorKind::WouldBlock,
                        "recv",
                        &self.listener.name,
                        "no message is waiting",
                    ),
                    _ => Error::new(
                        ErrorKind::TimedOut,
                        "recv",
                        &self.listener.name,
                        "no message arrived before the time-out",
                    ),
                });
            }
            for i in 1..self.pollfds.len() {
                if self.pollfds[i].revents != 0 {
                    let id = self.poll_ids[i - 1];
                    if let Some(c) = self.clients[id].as_mut() {
                        if !c.queued {
                            c.queued = true;
                            self.ready.push_back(id);
                        }
                    }
                }
            }
            if self.pollfds[0].revents != 0 {
                self.accept_pending()?;
            }
        }
    }
    fn address(&self) -> &str {
        &self.listener.name
    }
}

/// A listening end that sends to its first client.
#[derive(Debug)]
pub struct ServerSender {
    conn: Connection,
    _listener: Listener,
}

impl ServerSender {
    /// The client's credentials.
    pub fn peer_cred(&self) -> Option<PeerCred> {
        self.conn.peer_cred()
    }
}

impl Sender for ServerSender {
    fn send_wait(&mut self, msg: &[u8], wait: Wait) -> Result<()> {
        self.conn.send_wait(msg, wait)
    }
    fn max_message_size(&self) -> usize {
        self.conn.max_message_size()
    }
    fn address(&self) -> &str {
        Sender::address(&self.conn)
    }
}

/// The options from the address: `allow_uid=1,2`.
fn allow_uids(addr: &Address) -> Result<Option<Vec<u32>>> {
    let Some(v) = addr.param("allow_uid") else { return Ok(None) };
    v.split(',')
        .map(|u| {
            u.trim().parse::<u32>().map_err(|_| {
                Error::address(
                    &addr.to_string(),
                    format!("allow_uid `{u}` is not a uid (a whole number)"),
                )
            })
        })
        .collect::<Result<Vec<u32>>>()
        .map(Some)
}

fn kind_of(addr: &Address) -> Result<SockKind> {
    match addr.target() {
        Target::Unix(k, _) => Ok(SockKind::Unix(*k)),
        Target::Tcp(..) => Ok(SockKind::Tcp),
        _ => Err(Error::new(
            ErrorKind::InvalidAddress,
            "open",
            addr.to_string(),
            "not a socket address",
        )),
    }
}

fn packet_max(addr: &Address) -> Result<usize> {
    Ok(addr
        .param_bytes("max")?
        .map_or(DEFAULT_MAX_PACKET, |m| usize::try_from(m).unwrap_or(usize::MAX)))
}

/// Bind and listen on the address (`create`).
pub fn listen(addr: &Address) -> Result<Listener> {
    match kind_of(addr)? {
        SockKind::Tcp => tcp::listen(addr),
        SockKind::Unix(_) => unix::listen(addr),
    }
}

/// Connect to the address, trying for at most `timeout` while no server listens.
pub fn connect(addr: &Address, timeout: Option<Duration>) -> Result<Connection> {
    match kind_of(addr)? {
        SockKind::Tcp => tcp::connect(addr, timeout),
        SockKind::Unix(_) => unix::connect(addr, timeout),
    }
}

/// The common API's receiving end for a socket address.
pub fn open_receiver(addr: &Address, opts: &OpenOptions) -> Result<crate::BoxReceiver> {
    let kind = kind_of(addr)?;
    if kind == SockKind::Unix(UnixKind::Datagram) {
        let mut rx = unix::bind_datagram(addr)?;
        if opts.keep {
            rx.keep();
        }
        return Ok(Box::new(rx));
    }
    if opts.create {
        let allow = allow_uids(addr)?;
        if allow.is_some() && kind == SockKind::Tcp {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                "listen",
                addr.to_string(),
                "allow_uid needs a Unix socket: TCP peers have no credentials",
            ));
        }
        let mut l = listen(addr)?;
        if opts.keep {
            l.keep();
        }
        let so = ServerOptions { allow_uids: allow, persist: opts.persist, quiet: false };
        return Ok(Box::new(Server::new(l, so)));
    }
    Ok(Box::new(connect(addr, opts.open_timeout)?))
}

/// The common API's sending end for a socket address.
pub fn open_sender(addr: &Address, opts: &OpenOptions) -> Result<crate::BoxSender> {
    let kind = kind_of(addr)?;
    if opts.create && kind != SockKind::Unix(UnixKind::Datagram) {
        let mut l = listen(addr)?;
        if opts.keep {
            l.keep();
        }
        let conn = l.accept_wait(Wait::from_option(opts.open_timeout))?;
        if let (Some(allow), Some(p)) = (allow_uids(addr)?, conn.peer) {
            if !allow.contains(&p.uid) {
                return Err(Error::new(
                    ErrorKind::PermissionDenied,
                    "accept",
                    addr.to_string(),
                    format!("the client (pid {} uid {}) is not on the allow list", p.pid, p.uid),
                ));
            }
        }
        return Ok(Box::new(ServerSender { conn, _listener: l }));
    }
    Ok(Box::new(connect(addr, opts.open_timeout)?))
}

/// Connect a new socket of `domain`/`ty` to `sa`; while nobody listens (refused, no
/// file, backlog full) try again until `timeout` (none: one attempt). Returns a blocking
/// descriptor. A Unix seqpacket socket is first bound to an address the kernel picks
/// (see [`Packet::new`]).
fn connect_within(
    domain: i32,
    ty: i32,
    sa: &ss::SockAddr,
    timeout: Option<Duration>,
    name: &str,
) -> Result<OwnedFd> {
    let deadline = timeout.map(|t| Instant::now() + t);
    let mut pause = Duration::from_millis(1);
    loop {
        let fd =
            ss::socket(domain, ty, true).map_err(|e| Error::from_errno("connect", name, e.0))?;
        if (domain, ty) == (libc::AF_UNIX, libc::SOCK_SEQPACKET) {
            // Best effort: without an address the peer tells an empty message from end of
            // stream by timestamps instead (slower, still right).
            let _ = ss::autobind(fd.as_fd());
        }
        let r = match ss::connect(fd.as_fd(), sa) {
            Err(Errno(libc::EINPROGRESS)) => match sys::poll(fd.as_fd(), libc::POLLOUT, deadline) {
                Ok(r) if r.none() => Err(Errno(libc::ETIMEDOUT)),
                Ok(_) => match ss::take_error(fd.as_fd()) {
                    Ok(0) => Ok(()),
                    Ok(e) => Err(Errno(e)),
                    Err(e) => Err(e),
                },
                Err(e) => Err(e),
            },
            other => other,
        };
        match r {
            Ok(()) => {
                sys::set_nonblocking(fd.as_fd(), false)
                    .map_err(|e| Error::from_errno("connect", name, e.0))?;
                return Ok(fd);
            }
            Err(Errno(libc::ECONNREFUSED | libc::ENOENT | libc::EAGAIN))
                if deadline.is_some_and(|d| Instant::now() < d) =>
            {
                // Nobody listens yet, and no kernel event says when someone will: wait in
                // growing steps (1 ms up to 50 ms).
                let left = deadline.map_or(pause, |d| d.saturating_duration_since(Instant::now()));
                std::thread::sleep(pause.min(left));
                pause = (pause * 2).min(Duration::from_millis(50));
            }
            Err(Errno(e)) => return Err(connect_error(name, e, timeout)),
        }
    }
}

fn connect_error(name: &str, e: i32, timeout: Option<Duration>) -> Error {
    let tried = timeout.map(|t| format!(" (tried for {t:?})")).unwrap_or_default();
    let start = if timeout.is_some() {
        "start one (ipcx recv ADDRESS --listen), or wait longer for it"
    } else {
        "start one (ipcx recv ADDRESS --listen), or give the client a time-out to wait for it"
    };
    // A path that is there but is no socket: nothing could ever listen on it.
    let not_socket = (e == libc::ECONNREFUSED)
        .then(|| crate::Address::parse(name).ok())
        .flatten()
        .and_then(|a| crate::address::target_path(a.target()).and_then(|p| sys::lstat(p).ok()))
        .filter(|st| st.file_type() != libc::S_IFSOCK);
    if not_socket.is_some() {
        return Error::new(
            ErrorKind::InvalidInput,
            "connect",
            name,
            "the path is not a socket (another kind of file is there), so no server can listen on it; check the address",
        )
        .with_errno(e);
    }
    match e {
        libc::ECONNREFUSED => Error::new(
            ErrorKind::NotFound,
            "connect",
            name,
            format!("connection refused: no server is listening at this address{tried}; {start}"),
        ),
        libc::ENOENT => Error::new(
            ErrorKind::NotFound,
            "connect",
            name,
            format!("no socket file at this path: no server is listening{tried}; {start}"),
        ),
        libc::EAGAIN => Error::new(
            ErrorKind::Full,
            "connect",
            name,
            format!("the server's queue of waiting clients is full{tried}; try again later"),
        ),
        libc::ETIMEDOUT => Error::new(
            ErrorKind::TimedOut,
            "connect",
            name,
            format!("the server did not answer{tried}"),
        ),
        libc::EACCES | libc::EPERM => Error::new(
            ErrorKind::PermissionDenied,
            "connect",
            name,
            "this user may not connect: the socket file's mode (ipcx makes it 0600, owner only; the server may set ?mode=0660) or its directory forbid it",
        ),
        _ => Error::from_errno("connect", name, e),
    }
    .with_errno(e)
}
