//! Raw socket calls: `socket(2)`, `bind(2)`, `listen(2)`, `accept4(2)`, `connect(2)`,
//! `sendmsg(2)`/`recvmsg(2)` (with `SCM_RIGHTS` and `SCM_CREDENTIALS`), socket options.
//!
//! Every descriptor is created close-on-exec and becomes an [`OwnedFd`] the instant the
//! call returns; descriptors received with `SCM_RIGHTS` too (`MSG_CMSG_CLOEXEC`).

use std::io::IoSlice;
use std::mem::{size_of, MaybeUninit};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use std::os::fd::AsFd;

use super::{cvt, retry_eintr, Errno, SysResult};
use crate::frame::StreamIo;

/// Bytes in `sun_path`, the terminating NUL of a path included (108 on Linux).
pub const UNIX_PATH_CAPACITY: usize = 108;

/// A socket address of any family ipcx uses (Unix or IPv4/IPv6).
#[derive(Clone, Copy)]
pub struct SockAddr {
    storage: libc::sockaddr_storage,
    len: libc::socklen_t,
}

impl std::fmt::Debug for SockAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.to_inet() {
            Some(a) => write!(f, "SockAddr({a})"),
            None => write!(f, "SockAddr(family {}, {} bytes)", self.storage.ss_family, self.len),
        }
    }
}

fn zeroed_storage() -> libc::sockaddr_storage {
    // SAFETY: sockaddr_storage is plain old data; all zeroes is a valid (unspecified) value.
    unsafe { std::mem::zeroed() }
}

impl SockAddr {
    fn unix_bytes(bytes: &[u8], abstract_name: bool) -> SysResult<SockAddr> {
        // A path needs room for its NUL; an abstract name starts with a NUL instead.
        if bytes.len() + 1 > UNIX_PATH_CAPACITY {
            return Err(Errno(libc::ENAMETOOLONG));
        }
        if !abstract_name && bytes.contains(&0) {
            return Err(Errno(libc::EINVAL));
        }
        let mut storage = zeroed_storage();
        // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_un.
        let un = unsafe {
            &mut *(&mut storage as *mut libc::sockaddr_storage).cast::<libc::sockaddr_un>()
        };
        un.sun_family = libc::AF_UNIX as libc::sa_family_t;
        let start = usize::from(abstract_name);
        for (i, &b) in bytes.iter().enumerate() {
            un.sun_path[start + i] = b as libc::c_char;
        }
        let base = std::mem::offset_of!(libc::sockaddr_un, sun_path);
        // A path's length counts its NUL; an abstract name's counts exactly its bytes.
        let len = base + start + bytes.len() + usize::from(!abstract_name);
        Ok(SockAddr { storage, len: len as libc::socklen_t })
    }

    /// A Unix socket file; `ENAMETOOLONG` over 107 bytes.
    pub fn unix_path(path: &Path) -> SysResult<SockAddr> {
        SockAddr::unix_bytes(path.as_os_str().as_bytes(), false)
    }

    /// A Linux abstract Unix name (no file); `ENAMETOOLONG` over 107 bytes.
    pub fn unix_abstract(name: &[u8]) -> SysResult<SockAddr> {
        SockAddr::unix_bytes(name, true)
    }

    /// An IPv4 or IPv6 address.
    pub fn inet(addr: SocketAddr) -> SockAddr {
        let mut storage = zeroed_storage();
        let len = match addr {
            SocketAddr::V4(a) => {
                // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in.
                let sin = unsafe {
                    &mut *(&mut storage as *mut libc::sockaddr_storage).cast::<libc::sockaddr_in>()
                };
                sin.sin_family = libc::AF_INET as libc::sa_family_t;
                sin.sin_port = a.port().to_be();
                sin.sin_addr = libc::in_addr { s_addr: u32::from_ne_bytes(a.ip().octets()) };
                size_of::<libc::sockaddr_in>()
            }
            SocketAddr::V6(a) => {
                // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in6.
                let sin6 = unsafe {
                    &mut *(&mut storage as *mut libc::sockaddr_storage).cast::<libc::sockaddr_in6>()
                };
                sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
                sin6.sin6_port = a.port().to_be();
                sin6.sin6_addr = libc::in6_addr { s6_addr: a.ip().octets() };
                sin6.sin6_flowinfo = a.flowinfo();
                sin6.sin6_scope_id = a.scope_id();
                size_of::<libc::sockaddr_in6>()
            }
        };
        SockAddr { storage, len: len as libc::socklen_t }
    }

    /// The address family (`AF_UNIX`, `AF_INET`, `AF_INET6`).
    pub fn family(&self) -> i32 {
        i32::from(self.storage.ss_family)
    }

    /// The IP address and port, for an `AF_INET`/`AF_INET6` address.
    pub fn to_inet(&self) -> Option<SocketAddr> {
        match self.family() {
            libc::AF_INET => {
                // SAFETY: the family says the storage holds a sockaddr_in.
                let sin = unsafe {
                    &*(&self.storage as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>()
                };
                let ip = Ipv4Addr::from(sin.sin_addr.s_addr.to_ne_bytes());
                Some(SocketAddr::V4(SocketAddrV4::new(ip, u16::from_be(sin.sin_port))))
            }
            libc::AF_INET6 => {
                // SAFETY: the family says the storage holds a sockaddr_in6.
                let sin6 = unsafe {
                    &*(&self.storage as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>()
                };
                Some(SocketAddr::V6(SocketAddrV6::new(
                    Ipv6Addr::from(sin6.sin6_addr.s6_addr),
                    u16::from_be(sin6.sin6_port),
                    sin6.sin6_flowinfo,
                    sin6.sin6_scope_id,
                )))
            }
            _ => None,
        }
    }

    fn as_ptr(&self) -> *const libc::sockaddr {
        (&self.storage as *const libc::sockaddr_storage).cast()
    }
}

/// `socket(2)` with `SOCK_CLOEXEC` (and `SOCK_NONBLOCK` if asked).
pub fn socket(domain: i32, ty: i32, nonblock: bool) -> SysResult<OwnedFd> {
    let flags = libc::SOCK_CLOEXEC | if nonblock { libc::SOCK_NONBLOCK } else { 0 };
    // SAFETY: socket takes no pointers.
    let fd = cvt(unsafe { libc::socket(domain, ty | flags, 0) })?;
    // SAFETY: socket returned a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `socketpair(AF_UNIX, ty | SOCK_CLOEXEC)`.
pub fn socketpair(ty: i32) -> SysResult<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: `fds` is a valid array of two ints for socketpair to fill.
    cvt(unsafe { libc::socketpair(libc::AF_UNIX, ty | libc::SOCK_CLOEXEC, 0, fds.as_mut_ptr()) })?;
    // SAFETY: socketpair succeeded; both descriptors are new and owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// `bind(2)`.
pub fn bind(fd: BorrowedFd<'_>, addr: &SockAddr) -> SysResult<()> {
    // SAFETY: `addr` points to `len` valid bytes of a socket address; `fd` is open.
    cvt(unsafe { libc::bind(fd.as_raw_fd(), addr.as_ptr(), addr.len) }).map(drop)
}

/// `listen(2)`.
pub fn listen(fd: BorrowedFd<'_>, backlog: i32) -> SysResult<()> {
    // SAFETY: listen takes no pointers; `fd` is open.
    cvt(unsafe { libc::listen(fd.as_raw_fd(), backlog) }).map(drop)
}

/// `accept4(2)` with `SOCK_CLOEXEC` (and `SOCK_NONBLOCK` on the listener's behalf when
/// the listener is non-blocking it returns `EAGAIN`), retried on `EINTR`.
#[doc(alias = "accept4")]
pub fn accept(fd: BorrowedFd<'_>) -> SysResult<OwnedFd> {
    loop {
        // SAFETY: null address pointers are allowed (the peer's address is not wanted).
        let r = unsafe {
            libc::accept4(
                fd.as_raw_fd(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                libc::SOCK_CLOEXEC,
            )
        };
        match cvt(r) {
            Err(Errno(libc::EINTR)) => continue,
            // SAFETY: accept4 returned a new descriptor that nothing else owns.
            Ok(n) => return Ok(unsafe { OwnedFd::from_raw_fd(n) }),
            Err(e) => return Err(e),
        }
    }
}

/// `connect(2)`, once (a non-blocking socket gives `EINPROGRESS`; `EINTR` means the
/// connection goes on in the background, as `EINPROGRESS`).
pub fn connect(fd: BorrowedFd<'_>, addr: &SockAddr) -> SysResult<()> {
    // SAFETY: `addr` points to `len` valid bytes of a socket address; `fd` is open.
    match cvt(unsafe { libc::connect(fd.as_raw_fd(), addr.as_ptr(), addr.len) }) {
        Err(Errno(libc::EINTR)) => Err(Errno(libc::EINPROGRESS)),
        other => other.map(drop),
    }
}

/// `getsockopt(SOL_SOCKET, SO_ERROR)`: the pending error (0 if none), cleared.
pub fn take_error(fd: BorrowedFd<'_>) -> SysResult<i32> {
    get_int_opt(fd, libc::SOL_SOCKET, libc::SO_ERROR)
}

/// `getsockopt` of an int option.
pub fn get_int_opt(fd: BorrowedFd<'_>, level: i32, name: i32) -> SysResult<i32> {
    let mut v: libc::c_int = 0;
    let mut len = size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `v` and `len` are valid for getsockopt to fill, `len` saying v's size.
    cvt(unsafe {
        libc::getsockopt(fd.as_raw_fd(), level, name, (&mut v as *mut libc::c_int).cast(), &mut len)
    })?;
    Ok(v)
}

/// `setsockopt` of an int option (`TCP_NODELAY`, `SO_REUSEADDR`, `SO_PASSCRED`, ...).
pub fn set_int_opt(fd: BorrowedFd<'_>, level: i32, name: i32, value: i32) -> SysResult<()> {
    // SAFETY: the option value is one int, of the length passed.
    cvt(unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (&value as *const libc::c_int).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    })
    .map(drop)
}

/// The credentials of a connected Unix socket's peer (`SO_PEERCRED`): pid, uid, gid.
#[doc(alias = "SO_PEERCRED")]
pub fn peer_cred(fd: BorrowedFd<'_>) -> SysResult<(i32, u32, u32)> {
    let mut c = libc::ucred { pid: 0, uid: 0, gid: 0 };
    let mut len = size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: `c` and `len` are valid for getsockopt to fill, `len` saying c's size.
    cvt(unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut c as *mut libc::ucred).cast(),
            &mut len,
        )
    })?;
    Ok((c.pid, c.uid, c.gid))
}

/// `getsockname(2)` or `getpeername(2)` (same arguments), into a fresh address.
fn socket_name(
    fd: BorrowedFd<'_>,
    call: unsafe extern "C" fn(
        libc::c_int,
        *mut libc::sockaddr,
        *mut libc::socklen_t,
    ) -> libc::c_int,
) -> SysResult<SockAddr> {
    let mut a = SockAddr { storage: zeroed_storage(), len: 0 };
    a.len = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    // SAFETY: the storage and its length are valid for the call to fill.
    cvt(unsafe {
        call(fd.as_raw_fd(), (&mut a.storage as *mut libc::sockaddr_storage).cast(), &mut a.len)
    })?;
    Ok(a)
}

/// `getsockname(2)`.
pub fn local_addr(fd: BorrowedFd<'_>) -> SysResult<SockAddr> {
    socket_name(fd, libc::getsockname)
}

/// Whether the peer of a connected Unix socket has an address (`getpeername(2)` gives more
/// than the address family): then every message it sends carries that address, which
/// tells an empty seqpacket message from end of stream (see [`recv_from_vec`]).
pub fn peer_is_named(fd: BorrowedFd<'_>) -> SysResult<bool> {
    Ok(is_named(socket_name(fd, libc::getpeername)?.len))
}

/// Give an unbound Unix socket an address of the kernel's choosing: `bind(2)` with the
/// address family alone ("autobind", a unique abstract name such as `@0001f`).
pub fn autobind(fd: BorrowedFd<'_>) -> SysResult<()> {
    let mut a = SockAddr { storage: zeroed_storage(), len: 0 };
    a.storage.ss_family = libc::AF_UNIX as libc::sa_family_t;
    a.len = size_of::<libc::sa_family_t>() as libc::socklen_t;
    bind(fd, &a)
}

/// `fchmod(2)`: on a socket before `bind`, the mode its file gets (less the umask).
pub fn fchmod(fd: BorrowedFd<'_>, mode: u32) -> SysResult<()> {
    // SAFETY: fchmod takes no pointers; `fd` is open.
    cvt(unsafe { libc::fchmod(fd.as_raw_fd(), mode as libc::mode_t) }).map(drop)
}

/// `shutdown(2)`.
pub fn shutdown(fd: BorrowedFd<'_>, how: i32) -> SysResult<()> {
    // SAFETY: shutdown takes no pointers; `fd` is open.
    cvt(unsafe { libc::shutdown(fd.as_raw_fd(), how) }).map(drop)
}

fn msghdr(bufs: *mut libc::iovec, n: usize) -> libc::msghdr {
    // SAFETY: msghdr is plain old data; zeroes are a valid empty header.
    let mut m: libc::msghdr = unsafe { std::mem::zeroed() };
    m.msg_iov = bufs;
    m.msg_iovlen = n as _;
    m
}

/// `sendmsg(2)` of `bufs` with `flags` (`MSG_NOSIGNAL`, `MSG_DONTWAIT`), retried on `EINTR`.
#[doc(alias = "sendmsg")]
pub fn send(fd: BorrowedFd<'_>, bufs: &[IoSlice<'_>], flags: i32) -> SysResult<usize> {
    send_with_fds(fd, bufs, &[], flags)
}

/// `sendmsg(2)` carrying `fds` as one `SCM_RIGHTS` message (none if empty); one buffer
/// without descriptors goes out with `send(2)`, which skips importing an iovec array.
pub fn send_with_fds(
    fd: BorrowedFd<'_>,
    bufs: &[IoSlice<'_>],
    fds: &[BorrowedFd<'_>],
    flags: i32,
) -> SysResult<usize> {
    if let ([one], []) = (bufs, fds) {
        // SAFETY: `one` borrows valid memory for reads of its length; `fd` is open.
        return retry_eintr(|| unsafe {
            libc::send(fd.as_raw_fd(), one.as_ptr().cast(), one.len(), flags)
        });
    }
    let bytes = std::mem::size_of_val(fds);
    let space = if fds.is_empty() {
        0
    } else {
        // SAFETY: CMSG_SPACE only computes a size.
        (unsafe { libc::CMSG_SPACE(bytes as u32) }) as usize
    };
    // u64 elements keep the control buffer aligned for cmsghdr.
    let mut control = vec![0u64; space.div_ceil(8)];
    // IoSlice is ABI-compatible with iovec; sendmsg does not write through msg_iov.
    let mut m = msghdr(bufs.as_ptr() as *mut libc::iovec, bufs.len());
    if !fds.is_empty() {
        m.msg_control = control.as_mut_ptr().cast();
        m.msg_controllen = space as _;
        // SAFETY: the control buffer holds CMSG_SPACE(bytes), room for one header and
        // `bytes` of data, so CMSG_FIRSTHDR is non-null and CMSG_DATA has `bytes` of room.
        unsafe {
            let c = libc::CMSG_FIRSTHDR(&m);
            (*c).cmsg_level = libc::SOL_SOCKET;
            (*c).cmsg_type = libc::SCM_RIGHTS;
            (*c).cmsg_len = libc::CMSG_LEN(bytes as u32) as _;
            let data = libc::CMSG_DATA(c).cast::<RawFd>();
            for (i, f) in fds.iter().enumerate() {
                data.add(i).write_unaligned(f.as_raw_fd());
            }
        }
    }
    // SAFETY: `m` points at valid iovecs and (if any) a control buffer, all alive here.
    retry_eintr(|| unsafe { libc::sendmsg(fd.as_raw_fd(), &m, flags) })
}

/// `recv(2)` into uninitialised memory, retried on `EINTR`. With `MSG_TRUNC` on a
/// datagram or seqpacket socket the result is the message's real length.
#[doc(alias = "recv")]
pub fn recv_uninit(
    fd: BorrowedFd<'_>,
    buf: &mut [MaybeUninit<u8>],
    flags: i32,
) -> SysResult<usize> {
    // SAFETY: `buf` is valid for writes of its length; the kernel writes at most that.
    retry_eintr(|| unsafe { libc::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), flags) })
}

/// What [`recv_msg`] received besides the bytes.
#[derive(Debug, Default)]
pub struct Received {
    /// Bytes of the message (its real length with `MSG_TRUNC`).
    pub len: usize,
    /// Descriptors received (`SCM_RIGHTS`), already owned and close-on-exec.
    pub fds: Vec<OwnedFd>,
    /// The control data did not fit (more descriptors than allowed): `MSG_CTRUNC`.
    pub ctrunc: bool,
    /// Sender credentials came with the message (`SCM_CREDENTIALS`, with `SO_PASSCRED`).
    pub creds: Option<(i32, u32, u32)>,
    /// A receive timestamp came with it (`SCM_TIMESTAMP`, with `SO_TIMESTAMP`): a message
    /// was dequeued (on a seqpacket socket, an empty message rather than end of stream).
    pub stamped: bool,
    /// The sender's address came with it (a Unix sender that has one): a message was
    /// dequeued, as with `stamped`.
    pub named: bool,
}

/// A Unix socket address to receive into: the kernel fills it with the sender's address
/// for a message from a sender that has one, and leaves it empty at end of stream.
fn name_buf() -> (libc::sockaddr_un, libc::socklen_t) {
    // SAFETY: sockaddr_un is plain old data; zeroes are a valid empty address.
    (unsafe { std::mem::zeroed() }, size_of::<libc::sockaddr_un>() as libc::socklen_t)
}

/// Whether a received address length names a sender (more than the address family): on a
/// seqpacket socket whose peer has an address, a message (named) rather than end of
/// stream (not).
fn is_named(len: libc::socklen_t) -> bool {
    len as usize > size_of::<libc::sa_family_t>()
}

/// `recvfrom(2)` of one message into the spare capacity of `out` (cleared first) for at
/// most `max` bytes, with the sender's address; retried on `EINTR`. Returns the length
/// (the real one with `MSG_TRUNC`) and whether the sender had an address. Cheaper than
/// [`recv_msg`] (no message header or control data to copy in and out), and on a
/// seqpacket socket whose peer has an address it still tells an empty message (named)
/// from end of stream (not).
pub fn recv_from_vec(
    fd: BorrowedFd<'_>,
    out: &mut Vec<u8>,
    max: usize,
    flags: i32,
) -> SysResult<(usize, bool)> {
    let (mut name, mut len) = name_buf();
    let n = into_spare(
        out,
        max,
        |buf| {
            // SAFETY: `buf` is valid for writes of its length and `name` for `len` bytes;
            // the kernel writes at most those.
            retry_eintr(|| unsafe {
                libc::recvfrom(
                    fd.as_raw_fd(),
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                    flags,
                    (&mut name as *mut libc::sockaddr_un).cast(),
                    &mut len,
                )
            })
        },
        |&n| n,
    )?;
    Ok((n, is_named(len)))
}

/// Control space for [`recv_msg`] receiving at most `max_fds` descriptors, credentials and
/// a timestamp.
pub fn control_space(max_fds: usize) -> usize {
    // SAFETY: CMSG_SPACE only computes a size.
    unsafe {
        (if max_fds > 0 { libc::CMSG_SPACE((max_fds * size_of::<RawFd>()) as u32) } else { 0 }
            + libc::CMSG_SPACE(size_of::<libc::ucred>() as u32)
            + libc::CMSG_SPACE(size_of::<libc::timeval>() as u32)) as usize
    }
}

/// `recvmsg(2)` with room for `control` (from [`control_space`], as u64s for alignment)
/// and, if `want_name`, the sender's address ([`Received::named`]); `MSG_CMSG_CLOEXEC`
/// added; retried on `EINTR`.
pub fn recv_msg(
    fd: BorrowedFd<'_>,
    buf: &mut [MaybeUninit<u8>],
    control: &mut [u64],
    want_name: bool,
    flags: i32,
) -> SysResult<Received> {
    let mut iov = libc::iovec { iov_base: buf.as_mut_ptr().cast(), iov_len: buf.len() };
    let mut m = msghdr(&mut iov, 1);
    if !control.is_empty() {
        m.msg_control = control.as_mut_ptr().cast();
        m.msg_controllen = std::mem::size_of_val(control) as _;
    }
    let (mut name, len) = name_buf();
    if want_name {
        m.msg_name = (&mut name as *mut libc::sockaddr_un).cast();
        m.msg_namelen = len;
    }
    // SAFETY: `m` points at one iovec over `buf`, at `control` and (or null) at `name`,
    // all valid for writes of their lengths, alive for the call.
    let n = retry_eintr(|| unsafe {
        libc::recvmsg(fd.as_raw_fd(), &mut m, flags | libc::MSG_CMSG_CLOEXEC)
    })?;
    let mut out = Received {
        len: n,
        ctrunc: m.msg_flags & libc::MSG_CTRUNC != 0,
        named: is_named(m.msg_namelen),
        ..Default::default()
    };
    if m.msg_controllen == 0 {
        return Ok(out);
    }
    // SAFETY: the kernel filled msg_controllen bytes of `control` with well-formed
    // cmsghdrs; CMSG_FIRSTHDR/NXTHDR stay inside that length, and every descriptor in an
    // SCM_RIGHTS message was installed in this process for us alone.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&m);
        while !c.is_null() {
            let data = libc::CMSG_DATA(c);
            let data_len = (*c).cmsg_len as usize - (data as usize - c as usize);
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_RIGHTS {
                for i in 0..data_len / size_of::<RawFd>() {
                    let raw = data.cast::<RawFd>().add(i).read_unaligned();
                    out.fds.push(OwnedFd::from_raw_fd(raw));
                }
            } else if (*c).cmsg_level == libc::SOL_SOCKET
                && (*c).cmsg_type == libc::SCM_CREDENTIALS
                && data_len >= size_of::<libc::ucred>()
            {
                let u = data.cast::<libc::ucred>().read_unaligned();
                out.creds = Some((u.pid, u.uid, u.gid));
            } else if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_TIMESTAMP {
                out.stamped = true;
            }
            c = libc::CMSG_NXTHDR(&m, c);
        }
    }
    Ok(out)
}

/// [`recv_msg`] into the spare capacity of `out` (cleared first) for at most `max` bytes;
/// `out` then holds what was read (at most `max` bytes, though `len` is the real length
/// when `MSG_TRUNC` is passed).
pub fn recv_msg_vec(
    fd: BorrowedFd<'_>,
    out: &mut Vec<u8>,
    max: usize,
    control: &mut [u64],
    want_name: bool,
    flags: i32,
) -> SysResult<Received> {
    into_spare(out, max, |buf| recv_msg(fd, buf, control, want_name, flags), |r| r.len)
}

/// Clear `out` and run `read`, a receive that initialises the first `len(result)` bytes
/// of the buffer it gets (or fewer than that when the message was longer and `MSG_TRUNC`
/// reports its real length), on `max` bytes of `out`'s spare capacity; `out` then holds
/// what was read.
fn into_spare<T>(
    out: &mut Vec<u8>,
    max: usize,
    read: impl FnOnce(&mut [MaybeUninit<u8>]) -> SysResult<T>,
    len: impl Fn(&T) -> usize,
) -> SysResult<T> {
    out.clear();
    out.reserve(max);
    let r = read(&mut out.spare_capacity_mut()[..max])?;
    // SAFETY: the receive initialised the first min(len, max) bytes of the spare capacity,
    // which `reserve` made at least `max` long.
    unsafe { out.set_len(len(&r).min(max)) };
    Ok(r)
}

fn dontwait(nonblock: bool) -> i32 {
    if nonblock {
        libc::MSG_DONTWAIT
    } else {
        0
    }
}

/// A connected stream socket as a [`StreamIo`]: `send` with `MSG_NOSIGNAL` (a closed peer
/// gives `EPIPE`, not a signal) and `MSG_DONTWAIT` per call, so the descriptor's own
/// blocking mode never changes. When descriptors are accepted, reads use `recvmsg` and
/// keep what came in an inbox.
///
/// A socket, unlike a pipe, may take only part of a non-blocking send. Rather than block
/// to finish the frame (which would make `try_send` wait for the reader), the rest of
/// that one message is kept and sent before anything else; a later send that cannot
/// flush it reports `EAGAIN` (full). Dropping the stream flushes it, waiting at most
/// [`FLUSH_ON_DROP`] for the reader.
#[derive(Debug)]
pub struct SockStream {
    fd: std::sync::Arc<OwnedFd>,
    control: Vec<u64>,
    inbox: Vec<OwnedFd>,
    ctrunc: bool,
    backlog: Vec<u8>,
    sent: usize,
}

/// How long dropping a stream socket waits to flush the rest of a partly sent message.
pub const FLUSH_ON_DROP: std::time::Duration = std::time::Duration::from_secs(5);

impl SockStream {
    /// Send what is left of an earlier message (`EAGAIN` if non-blocking and it cannot
    /// all go now), so that something else may be written directly.
    pub fn flush(&mut self, nonblock: bool) -> SysResult<()> {
        while self.sent < self.backlog.len() {
            let rest = [IoSlice::new(&self.backlog[self.sent..])];
            self.sent += send(self.fd.as_fd(), &rest, libc::MSG_NOSIGNAL | dontwait(nonblock))?;
        }
        self.backlog.clear();
        self.sent = 0;
        Ok(())
    }
}

impl Drop for SockStream {
    fn drop(&mut self) {
        let deadline = std::time::Instant::now() + FLUSH_ON_DROP;
        while self.sent < self.backlog.len() {
            match self.flush(true) {
                Err(Errno(libc::EAGAIN)) => {
                    // Best effort: a reader that never reads loses the message's tail.
                    match super::poll(self.fd.as_fd(), libc::POLLOUT, Some(deadline)) {
                        Ok(r) if !r.none() => {}
                        _ => return,
                    }
                }
                Ok(()) => return,
                Err(_) => return,
            }
        }
    }
}

impl SockStream {
    /// Wrap a connected stream socket (shared by its sending and receiving halves).
    pub fn new(fd: std::sync::Arc<OwnedFd>) -> SockStream {
        SockStream {
            fd,
            control: Vec::new(),
            inbox: Vec::new(),
            ctrunc: false,
            backlog: Vec::new(),
            sent: 0,
        }
    }
    /// Room for control messages on each read (empty: plain `recv`, descriptors refused).
    pub fn set_control(&mut self, control: Vec<u64>) {
        self.control = control;
    }
    /// The descriptors received so far.
    pub fn take_fds(&mut self) -> Vec<OwnedFd> {
        std::mem::take(&mut self.inbox)
    }
    /// How many descriptors are waiting to be taken.
    pub fn fds_len(&self) -> usize {
        self.inbox.len()
    }
    /// Whether a read since the last call lost control data (`MSG_CTRUNC`).
    pub fn take_ctrunc(&mut self) -> bool {
        std::mem::take(&mut self.ctrunc)
    }
}

// SAFETY: `read` is `recv(2)`/`recvmsg(2)` into `buf`, which initialises exactly the
// bytes it reports, never more than the buffer's length.
unsafe impl StreamIo for SockStream {
    fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
    fn read(&mut self, buf: &mut [MaybeUninit<u8>], nonblock: bool) -> SysResult<usize> {
        if self.control.is_empty() {
            return recv_uninit(self.fd.as_fd(), buf, dontwait(nonblock));
        }
        let r = recv_msg(self.fd.as_fd(), buf, &mut self.control, false, dontwait(nonblock))?;
        self.inbox.extend(r.fds);
        self.ctrunc |= r.ctrunc;
        Ok(r.len)
    }
    fn read_ahead(&self) -> bool {
        // Descriptors arrive with the bytes they ride on: reading ahead could take the
        // next message's before this one is handed over.
        self.control.is_empty()
    }
    fn write(&mut self, bufs: &[IoSlice<'_>], nonblock: bool) -> SysResult<usize> {
        if !self.backlog.is_empty() {
            self.flush(nonblock)?;
        }
        let n = send(self.fd.as_fd(), bufs, libc::MSG_NOSIGNAL | dontwait(nonblock))?;
        let total: usize = bufs.iter().map(|b| b.len()).sum();
        if nonblock && n > 0 && n < total {
            // Keep the rest of this message; it goes before the next one.
            let mut skip = n;
            for b in bufs {
                let take = skip.min(b.len());
                self.backlog.extend_from_slice(&b[take..]);
                skip -= take;
            }
            return Ok(total);
        }
        Ok(n)
    }
}
