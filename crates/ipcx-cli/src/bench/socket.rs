//! Lanes for sockets: Unix stream, Unix seqpacket and TCP (loopback). The parent listens,
//! the child connects; one connection carries both directions. The raw lane does the same
//! on bare `socket`/`bind`/`listen`/`accept`/`connect` and `write`/`read`.

use std::io::IoSlice;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use ipcx::address::Address;
use ipcx::socket::{self, Connection};
use ipcx::sys::socket::{self as ss, SockAddr};
use ipcx::{ErrorKind, Receiver, Sender, Wait};

use super::lane::{Endpoint, Lane, Setup};

/// A socket lane: `unix`, `unix-seqpacket` or `tcp`.
pub struct SocketLane(pub &'static str);

fn errno(what: &str) -> impl Fn(ipcx::sys::Errno) -> anyhow::Error + '_ {
    move |e| anyhow!("{what}: {}", std::io::Error::from_raw_os_error(e.0))
}

impl SocketLane {
    fn ty(&self) -> i32 {
        if self.0 == "unix-seqpacket" {
            libc::SOCK_SEQPACKET
        } else {
            libc::SOCK_STREAM
        }
    }
    fn packet(&self) -> bool {
        self.0 == "unix-seqpacket"
    }
}

/// The ipcx side: one [`Connection`] both ways; the end marker is an empty message.
struct ConnEnd(Connection);

impl Endpoint for ConnEnd {
    fn send(&mut self, msg: &[u8]) -> Result<()> {
        Ok(self.0.send(msg)?)
    }
    fn recv(&mut self, buf: &mut Vec<u8>) -> Result<bool> {
        match self.0.recv_into(buf) {
            Ok(()) => Ok(!buf.is_empty()),
            Err(e) if e.kind() == ErrorKind::Disconnected => Ok(false),
            Err(e) => Err(e.into()),
        }
    }
    fn finish(&mut self) -> Result<()> {
        Ok(self.0.send(b"")?)
    }
}

/// The raw side: `write`/`read` on the connected socket; the end marker is `shutdown`.
struct RawSock {
    fd: OwnedFd,
    size: usize,
    packet: bool,
}

impl Endpoint for RawSock {
    fn send(&mut self, msg: &[u8]) -> Result<()> {
        let mut done = 0;
        while done < msg.len() {
            done += ss::send(self.fd.as_fd(), &[IoSlice::new(&msg[done..])], libc::MSG_NOSIGNAL)
                .map_err(errno("send"))?;
        }
        Ok(())
    }
    fn recv(&mut self, buf: &mut Vec<u8>) -> Result<bool> {
        buf.resize(self.size, 0);
        if self.packet {
            let n = ipcx::sys::read(self.fd.as_fd(), buf).map_err(errno("recv"))?;
            return Ok(n > 0);
        }
        let mut got = 0;
        while got < self.size {
            match ipcx::sys::read(self.fd.as_fd(), &mut buf[got..]).map_err(errno("recv"))? {
                0 => return Ok(false),
                n => got += n,
            }
        }
        Ok(true)
    }
    fn finish(&mut self) -> Result<()> {
        ss::shutdown(self.fd.as_fd(), libc::SHUT_WR).map_err(errno("shutdown"))
    }
}

fn raw_addr(a: &str) -> Result<(i32, SockAddr)> {
    let addr = Address::parse(a)?;
    Ok(match addr.target() {
        ipcx::address::Target::Tcp(h, p) => {
            let ip: std::net::IpAddr = h.parse().context("the raw lane takes a numeric host")?;
            (libc::AF_INET, SockAddr::inet(std::net::SocketAddr::new(ip, *p)))
        }
        ipcx::address::Target::Unix(_, ipcx::address::UnixName::Path(p)) => {
            (libc::AF_UNIX, SockAddr::unix_path(p).map_err(errno("address"))?)
        }
        _ => bail!("not a socket address for the raw lane: {a}"),
    })
}

fn nodelay(fd: &OwnedFd, domain: i32) -> Result<()> {
    if domain == libc::AF_INET {
        ss::set_int_opt(fd.as_fd(), libc::IPPROTO_TCP, libc::TCP_NODELAY, 1)
            .map_err(errno("TCP_NODELAY"))?;
    }
    Ok(())
}

impl Lane for SocketLane {
    fn name(&self) -> &'static str {
        self.0
    }
    fn setup(&self, dir: &Path, tag: &str, raw: bool, size: usize) -> Result<Setup> {
        let addr = if self.0 == "tcp" {
            "tcp:127.0.0.1:0".to_owned()
        } else {
            format!("{}:{}", self.0, dir.join(format!("{tag}.sock")).display())
        };
        // A seqpacket message of `size` bytes needs the limit raised to it.
        let addr = if self.packet() { format!("{addr}?max={}", size.max(1 << 16)) } else { addr };
        if raw {
            let (domain, sa) = raw_addr(&addr)?;
            let l = ss::socket(domain, self.ty(), false).map_err(errno("socket"))?;
            ss::set_int_opt(l.as_fd(), libc::SOL_SOCKET, libc::SO_REUSEADDR, 1)
                .map_err(errno("SO_REUSEADDR"))?;
            ss::bind(l.as_fd(), &sa).map_err(errno("bind"))?;
            ss::listen(l.as_fd(), 16).map_err(errno("listen"))?;
            let child_a = match ss::local_addr(l.as_fd()).ok().and_then(|a| a.to_inet()) {
                Some(a) => format!("tcp:{a}"),
                None => addr,
            };
            let packet = self.packet();
            let open_parent: Box<dyn FnOnce() -> Result<Box<dyn Endpoint>>> = Box::new(move || {
                let fd = ss::accept(l.as_fd()).map_err(errno("accept"))?;
                nodelay(&fd, domain)?;
                Ok(Box::new(RawSock { fd, size, packet }) as Box<dyn Endpoint>)
            });
            return Ok(Setup {
                child_a,
                child_b: String::new(),
                child_fds: Vec::new(),
                open_parent,
                guard: Box::new(()),
            });
        }
        let l = std::sync::Arc::new(socket::listen(&Address::parse(&addr)?)?);
        let child_a = l.address().to_owned();
        let guard = l.clone();
        let open_parent: Box<dyn FnOnce() -> Result<Box<dyn Endpoint>>> = Box::new(move || {
            let c = l.accept_wait(Wait::timeout(Duration::from_secs(10)))?;
            Ok(Box::new(ConnEnd(c)) as Box<dyn Endpoint>)
        });
        Ok(Setup {
            child_a,
            child_b: String::new(),
            child_fds: Vec::new(),
            open_parent,
            guard: Box::new(guard),
        })
    }
    fn open_child(&self, a: &str, _b: &str, raw: bool, size: usize) -> Result<Box<dyn Endpoint>> {
        if raw {
            let (domain, sa) = raw_addr(a)?;
            let fd = ss::socket(domain, self.ty(), false).map_err(errno("socket"))?;
            ss::connect(fd.as_fd(), &sa).map_err(errno("connect"))?;
            nodelay(&fd, domain)?;
            return Ok(Box::new(RawSock { fd, size, packet: self.packet() }));
        }
        let c = socket::connect(&Address::parse(a)?, Some(Duration::from_secs(10)))?;
        Ok(Box::new(ConnEnd(c)))
    }
}
