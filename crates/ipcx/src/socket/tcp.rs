//! TCP: `tcp:host:port`; `tcp::port` is loopback, all interfaces only when asked
//! (`tcp:0.0.0.0:port`, `tcp:[::]:port`). Every connection has `TCP_NODELAY`: a framed
//! message goes out at once, not after Nagle's delay.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, ToSocketAddrs};
use std::os::fd::AsFd;
use std::time::Duration;

use super::{connect_within, packet_max, Connection, Listener, SockKind};
use crate::address::{Address, Target};
use crate::error::{Error, ErrorKind, Result};
use crate::sys::socket::{self as ss, SockAddr};

fn resolve(addr: &Address, op: &'static str) -> Result<Vec<SocketAddr>> {
    let Target::Tcp(host, port) = addr.target() else {
        return Err(Error::new(
            ErrorKind::InvalidAddress,
            op,
            addr.to_string(),
            "not a tcp: address",
        ));
    };
    if host.is_empty() {
        return Ok(vec![SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), *port)]);
    }
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, *port)]);
    }
    let found: Vec<SocketAddr> = (host.as_str(), *port)
        .to_socket_addrs()
        .map_err(|e| {
            Error::new(
                ErrorKind::NotFound,
                op,
                addr.to_string(),
                format!("cannot resolve host `{host}`: {e}"),
            )
        })?
        .collect();
    if found.is_empty() {
        return Err(Error::new(
            ErrorKind::NotFound,
            op,
            addr.to_string(),
            format!("host `{host}` has no address"),
        ));
    }
    Ok(found)
}

fn family(sa: &SocketAddr) -> i32 {
    if sa.is_ipv4() {
        libc::AF_INET
    } else {
        libc::AF_INET6
    }
}

/// Bind and listen on `tcp:...` (`SO_REUSEADDR`, so a restart is not held up by old
/// connections in TIME_WAIT; a live listener still holds the port: `AlreadyExists`).
pub fn listen(addr: &Address) -> Result<Listener> {
    let name = addr.to_string();
    let mut last = None;
    for sa in resolve(addr, "listen")? {
        let e = |e: crate::sys::Errno| Error::from_errno("listen", &name, e.0);
        let fd = ss::socket(family(&sa), libc::SOCK_STREAM, true).map_err(e)?;
        ss::set_int_opt(fd.as_fd(), libc::SOL_SOCKET, libc::SO_REUSEADDR, 1).map_err(e)?;
        if let Err(err) = ss::bind(fd.as_fd(), &SockAddr::inet(sa)) {
            last = Some(match err.0 {
                libc::EADDRINUSE => Error::new(
                    ErrorKind::AlreadyExists,
                    "listen",
                    &name,
                    format!(
                        "port {} is in use by another server; stop it or pick another port",
                        sa.port()
                    ),
                )
                .with_errno(err.0),
                _ => e(err),
            });
            continue;
        }
        ss::listen(fd.as_fd(), libc::SOMAXCONN).map_err(e)?;
        let local = ss::local_addr(fd.as_fd()).map_err(e)?.to_inet().unwrap_or(sa);
        // Name the address clients can use (the chosen port when 0 was asked).
        let mut a = Address::parse(&format!("tcp:{}", bracket(local)))?;
        for (k, v) in addr.params() {
            a.set_param(k, v);
        }
        return Ok(Listener {
            fd,
            kind: SockKind::Tcp,
            framing: addr.framing()?,
            max: packet_max(addr)?,
            name: a.to_string(),
            _file: None,
        });
    }
    Err(last
        .unwrap_or_else(|| Error::new(ErrorKind::NotFound, "listen", &name, "no address to bind")))
}

fn bracket(sa: SocketAddr) -> String {
    match sa {
        SocketAddr::V4(a) => format!("{}:{}", a.ip(), a.port()),
        SocketAddr::V6(a) => format!("[{}]:{}", a.ip(), a.port()),
    }
}

/// Connect to `tcp:...` (`TCP_NODELAY`), trying for at most `timeout` while refused.
pub fn connect(addr: &Address, timeout: Option<Duration>) -> Result<Connection> {
    let name = addr.to_string();
    let mut last = None;
    for sa in resolve(addr, "connect")? {
        match connect_within(family(&sa), libc::SOCK_STREAM, &SockAddr::inet(sa), timeout, &name) {
            Ok(fd) => {
                ss::set_int_opt(fd.as_fd(), libc::IPPROTO_TCP, libc::TCP_NODELAY, 1)
                    .map_err(|e| Error::from_errno("connect", &name, e.0))?;
                return Connection::new(fd, SockKind::Tcp, addr.framing()?, 0, name);
            }
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        Error::new(ErrorKind::NotFound, "connect", &name, "no address to connect to")
    }))
}
