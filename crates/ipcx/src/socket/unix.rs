//! Unix domain sockets: socket files and Linux abstract names (`unix:@name`).

use std::os::fd::{AsFd, BorrowedFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::{connect_within, packet_max, Chan, Connection, Listener, Packet, PeerCred, SockKind};
use crate::address::{Address, Target, UnixKind, UnixName};
use crate::error::{Error, ErrorKind, Result};
use crate::frame::Framing;
use crate::sys::socket::{self as ss, SockAddr, UNIX_PATH_CAPACITY};
use crate::sys::{self, Errno};
use crate::{Receiver, Wait};

/// The longest socket path, in bytes (`sun_path` holds 108 with the terminating NUL).
pub const MAX_PATH: usize = UNIX_PATH_CAPACITY - 1;

/// A socket file made by `bind`; removed on drop if it is still the one made (same
/// device and inode), so a server never removes a successor's socket.
///
/// Only socket files are recorded in the [`crate::registry`]: an abstract name
/// (`unix:@name`) has no file, vanishes with its last socket, and so can never be left
/// behind by a crash nor removed by `ipcx rm`.
#[derive(Debug)]
pub struct SocketFile {
    path: PathBuf,
    dev: u64,
    ino: u64,
    remove: bool,
    /// Our entry in the registry of created objects (`ipcx ls`), best effort.
    recorded: Option<crate::registry::Recorded>,
}

impl SocketFile {
    fn new(path: &Path, addr: &Address) -> Option<SocketFile> {
        let st = sys::lstat(path).ok()?;
        let abs = std::path::absolute(path).unwrap_or_else(|_| path.to_owned());
        let recorded = Address::parse(&format!("{}:{}", addr.scheme(), abs.display()))
            .ok()
            .and_then(|a| crate::registry::record(&a, addr.scheme()));
        Some(SocketFile { path: path.to_owned(), dev: st.dev, ino: st.ino, remove: true, recorded })
    }
    /// Leave the file in place on drop.
    pub fn keep(&mut self) {
        self.remove = false;
        if let Some(r) = self.recorded.as_mut() {
            r.keep();
        }
    }
}

impl Drop for SocketFile {
    fn drop(&mut self) {
        if self.remove {
            // Only our own socket file; if it is gone or replaced there is nothing to do.
            if matches!(sys::lstat(&self.path), Ok(st) if st.dev == self.dev && st.ino == self.ino)
            {
                let _ = sys::unlink(&self.path);
            }
        }
    }
}

fn parts(addr: &Address) -> Result<(UnixKind, SockAddr, Option<&Path>)> {
    let Target::Unix(kind, name) = addr.target() else {
        return Err(Error::new(
            ErrorKind::InvalidAddress,
            "open",
            addr.to_string(),
            "not a unix: address",
        ));
    };
    let (sa, path) = match name {
        UnixName::Path(p) => (SockAddr::unix_path(p), Some(p.as_path())),
        UnixName::Abstract(n) => (SockAddr::unix_abstract(n.as_bytes()), None),
    };
    let len = match name {
        UnixName::Path(p) => p.as_os_str().len(),
        UnixName::Abstract(n) => n.len(),
    };
    let sa = sa.map_err(|e| match e.0 {
        libc::ENAMETOOLONG => Error::too_large(
            "open",
            addr.to_string(),
            MAX_PATH as u64,
            format!(
                "the socket name is {len} bytes, over the limit of {MAX_PATH} bytes (sun_path holds {UNIX_PATH_CAPACITY} bytes with the terminating NUL); use a shorter path, e.g. in /tmp or /run/user"
            ),
        ),
        _ => Error::address(&addr.to_string(), "the socket path contains a NUL byte"),
    })?;
    Ok((*kind, sa, path))
}

fn ty(kind: UnixKind) -> i32 {
    SockKind::Unix(kind).sock_type()
}

fn in_use(addr: &Address, why: &str) -> Error {
    Error::new(
        ErrorKind::AlreadyExists,
        "listen",
        addr.to_string(),
        format!("address in use by a live server{why}; stop it or pick another address"),
    )
    .with_errno(libc::EADDRINUSE)
}

/// Bind `fd` to an abstract name (`unix:@name`): it has no file, so an `EADDRINUSE` means
/// an open socket holds it.
fn bind_abstract(fd: BorrowedFd<'_>, addr: &Address, sa: &SockAddr) -> Result<()> {
    ss::bind(fd, sa).map_err(|e| match e.0 {
        libc::EADDRINUSE => in_use(addr, " (an abstract name is held by an open socket)"),
        _ => Error::from_errno("listen", addr.to_string(), e.0),
    })
}

fn bind_error(addr: &Address, e: Errno) -> Error {
    match e.0 {
        libc::ENOENT => Error::new(
            ErrorKind::NotFound,
            "listen",
            addr.to_string(),
            "the directory of the socket path does not exist; create it first",
        )
        .with_errno(e.0),
        _ => Error::from_errno("listen", addr.to_string(), e.0),
    }
}

/// Something already exists at `path`: remove it if it is a stale socket file (its server
/// is dead: a connect is refused), and refuse anything else: a live server, a socket of
/// another type, a file that is not a socket.
fn remove_if_stale(addr: &Address, kind: UnixKind, sa: &SockAddr, path: &Path) -> Result<()> {
    let err = |e| bind_error(addr, e);
    match sys::lstat(path) {
        Ok(st) if st.file_type() == libc::S_IFSOCK => {}
        Ok(st) => {
            return Err(Error::new(
                ErrorKind::AlreadyExists,
                "listen",
                addr.to_string(),
                format!(
                    "the path exists and is {}, not a socket; ipcx will not replace it",
                    st.type_name()
                ),
            ))
        }
        // Gone meanwhile: nothing to remove.
        Err(Errno(libc::ENOENT)) => return Ok(()),
        Err(e) => return Err(err(e)),
    }
    let probe = ss::socket(libc::AF_UNIX, ty(kind), true).map_err(err)?;
    match ss::connect(probe.as_fd(), sa) {
        // Stale: the socket file outlived its server. (Every ipcx server is listening
        // before its file appears, so a refusal never means "not listening yet".)
        Err(Errno(libc::ECONNREFUSED)) => match sys::unlink(path) {
            Ok(()) | Err(Errno(libc::ENOENT)) => Ok(()),
            Err(e) => Err(err(e)),
        },
        Err(Errno(libc::EPROTOTYPE)) => Err(in_use(addr, " (a socket of another type)")),
        // Whether it is live or stale, it is not ours to replace.
        Err(Errno(e @ (libc::EACCES | libc::EPERM))) => Err(Error::new(
            ErrorKind::PermissionDenied,
            "listen",
            addr.to_string(),
            "a socket file at the path does not let this user in (its mode or its directory); ipcx will not replace it",
        )
        .with_errno(e)),
        _ => Err(in_use(addr, "")),
    }
}

/// A temporary name beside `path` for a socket being readied, if it fits in `sun_path`.
fn temp_name(path: &Path) -> Option<(PathBuf, SockAddr)> {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut name = std::ffi::OsString::from(".");
    name.push(path.file_name()?);
    name.push(format!(".{}.{n}", std::process::id()));
    let tmp = path.with_file_name(name);
    let sa = SockAddr::unix_path(&tmp).ok()?;
    Some((tmp, sa))
}

/// Removes a temporary socket name on drop unless disarmed.
struct TempName(Option<PathBuf>);

impl Drop for TempName {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = sys::unlink(&p);
        }
    }
}

/// Bind `fd` at the socket file `path` so that the file appears only when the socket is
/// ready: bound at a temporary name beside it, given its mode, listening (`listen`), then
/// renamed into place without replacing anything. A client that finds the file is never
/// refused for being early, and a concurrent server never mistakes a starting one for a
/// stale file. A stale socket file (its server is dead) is replaced; a live one never.
fn bind_file(
    fd: BorrowedFd<'_>,
    addr: &Address,
    kind: UnixKind,
    (sa, path): (&SockAddr, &Path),
    mode: u32,
    listen: bool,
) -> Result<Option<SocketFile>> {
    let err = |e| bind_error(addr, e);
    let ready = |at: &Path| -> Result<()> {
        sys::chmod_nofollow(at, mode).map_err(err)?;
        if listen {
            ss::listen(fd, libc::SOMAXCONN).map_err(err)?;
        }
        Ok(())
    };
    let Some((tmp, tsa)) = temp_name(path) else {
        // No room in sun_path for a name beside it: bind in place, and until `listen` a
        // client may be refused.
        if let Err(Errno(libc::EADDRINUSE)) = ss::bind(fd, sa) {
            remove_if_stale(addr, kind, sa, path)?;
            ss::bind(fd, sa).map_err(|e| match e.0 {
                libc::EADDRINUSE => in_use(addr, " (another server took the address meanwhile)"),
                _ => err(e),
            })?;
        }
        let file = SocketFile::new(path, addr);
        ready(path)?;
        return Ok(file);
    };
    match ss::bind(fd, &tsa) {
        Ok(()) => {}
        // Left by a crashed process that had our pid: it is ours to reuse.
        Err(Errno(libc::EADDRINUSE)) => {
            let _ = sys::unlink(&tmp);
            ss::bind(fd, &tsa).map_err(err)?;
        }
        Err(e) => return Err(err(e)),
    }
    let mut guard = TempName(Some(tmp.clone()));
    ready(&tmp)?;
    // Two tries after removing a stale file: a third server may take the name meanwhile.
    for _ in 0..3 {
        let placed = match sys::rename_noreplace(&tmp, path) {
            Ok(()) => {
                guard.0 = None;
                Ok(())
            }
            // A file system without RENAME_NOREPLACE: a hard link never replaces either
            // (and the guard removes the temporary name).
            Err(Errno(libc::EINVAL | libc::ENOSYS)) => sys::link(&tmp, path),
            r => r,
        };
        match placed {
            Ok(()) => return Ok(SocketFile::new(path, addr)),
            Err(Errno(libc::EEXIST)) => remove_if_stale(addr, kind, sa, path)?,
            Err(e) => return Err(err(e)),
        }
    }
    Err(in_use(addr, " (another server took the address meanwhile)"))
}

/// Bind `unix:...` and (stream, seqpacket) listen; the file gets the address's mode.
pub fn listen(addr: &Address) -> Result<Listener> {
    let (kind, sa, path) = parts(addr)?;
    let name = addr.to_string();
    let e = |e: Errno| Error::from_errno("listen", &name, e.0);
    let dgram = kind == UnixKind::Datagram;
    // A listener never blocks in accept (the server polls); a datagram socket is read
    // with per-call flags and stays blocking.
    let fd = ss::socket(libc::AF_UNIX, ty(kind), !dgram).map_err(e)?;
    let mode = addr.mode()?;
    let file = match path {
        Some(p) => {
            // The file takes the socket's mode (less the umask) at bind: never wider than
            // asked; it is made exact before it appears at its name.
            ss::fchmod(fd.as_fd(), mode & 0o777).map_err(e)?;
            bind_file(fd.as_fd(), addr, kind, (&sa, p), mode, !dgram)?
        }
        None => {
            bind_abstract(fd.as_fd(), addr, &sa)?;
            if !dgram {
                ss::listen(fd.as_fd(), libc::SOMAXCONN).map_err(e)?;
            }
            None
        }
    };
    Ok(Listener {
        fd,
        kind: SockKind::Unix(kind),
        framing: if kind == UnixKind::Stream { addr.framing()? } else { Framing::default() },
        max: packet_max(addr)?,
        name,
        _file: file,
    })
}

/// Connect to `unix:...`, trying for at most `timeout` while no server listens.
pub fn connect(addr: &Address, timeout: Option<Duration>) -> Result<Connection> {
    let (kind, sa, _) = parts(addr)?;
    let name = addr.to_string();
    let fd = connect_within(libc::AF_UNIX, ty(kind), &sa, timeout, &name)?;
    if kind == UnixKind::Datagram {
        let fd = Arc::new(fd);
        let p = Packet::new(fd.clone(), packet_max(addr)?, false, 0)
            .map_err(|e| Error::from_errno("connect", &name, e.0))?;
        return Ok(Connection { fd, chan: Chan::Packet(p), peer: None, name, max_fds: 0 });
    }
    let framing = if kind == UnixKind::Stream { addr.framing()? } else { Framing::default() };
    Connection::new(fd, SockKind::Unix(kind), framing, packet_max(addr)?, name)
}

/// A connected pair of Unix sockets of `kind` (`socketpair(2)`), e.g. for a child.
pub fn pair(kind: UnixKind, framing: Framing) -> Result<(Connection, Connection)> {
    let (a, b) =
        ss::socketpair(ty(kind)).map_err(|e| Error::from_errno("socketpair", "unix:", e.0))?;
    if kind == UnixKind::Seqpacket {
        // Named ends tell an empty message from end of stream without a timestamp on every
        // message (see `Packet::new`). Best effort: an unnamed end is told apart by
        // timestamps instead (slower, still right).
        for fd in [&a, &b] {
            let _ = ss::autobind(fd.as_fd());
        }
    }
    let mk = |fd| {
        Connection::new(
            fd,
            SockKind::Unix(kind),
            framing,
            super::DEFAULT_MAX_PACKET,
            "unix:(pair)".into(),
        )
    };
    Ok((mk(a)?, mk(b)?))
}

/// The receiving end of a datagram socket: it owns its name; any number of senders.
#[derive(Debug)]
pub struct DatagramReceiver {
    conn: Connection,
    _file: Option<SocketFile>,
}

/// Bind `unix-dgram:...` for receiving (replacing a stale file, never a live one).
pub fn bind_datagram(addr: &Address) -> Result<DatagramReceiver> {
    let l = listen(addr)?;
    let Listener { fd, max, name, _file, .. } = l;
    let fd = Arc::new(fd);
    let p = Packet::new(fd.clone(), max, false, 0)
        .map_err(|e| Error::from_errno("listen", &name, e.0))?;
    Ok(DatagramReceiver {
        conn: Connection { fd, chan: Chan::Packet(p), peer: None, name, max_fds: 0 },
        _file,
    })
}

impl DatagramReceiver {
    /// Leave the socket file in place on drop.
    pub fn keep(&mut self) {
        if let Some(f) = &mut self._file {
            f.keep();
        }
    }
    /// Who sent the last datagram (`SCM_CREDENTIALS`).
    pub fn last_cred(&self) -> Option<PeerCred> {
        self.conn.last_cred()
    }
    /// The socket as a [`Connection`], for [`Connection::recv_with_fds`].
    pub fn connection(&mut self) -> &mut Connection {
        &mut self.conn
    }
}

impl Receiver for DatagramReceiver {
    fn recv_wait(&mut self, buf: &mut Vec<u8>, wait: Wait) -> Result<()> {
        self.conn.recv_wait(buf, wait)
    }
    fn address(&self) -> &str {
        Receiver::address(&self.conn)
    }
}
