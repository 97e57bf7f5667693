//! One address scheme for the library and the command.
//!
//! An address is `SCHEME:BODY[?KEY=VALUE&...]`:
//!
//! | address | meaning |
//! |---|---|
//! | `pipe:stdin`, `pipe:stdout`, `pipe:fd=N` | an inherited pipe end |
//! | `fifo:/path` | a named pipe |
//! | `sysv-mq:1234`, `sysv-mq:0x4d2`, `sysv-mq:/path?proj=65` | a System V queue by key or `ftok` |
//! | `posix-mq:/name` | a POSIX queue |
//! | `shm:/name`, `sysv-shm:KEY` | a shared-memory ring channel |
//! | `mmap:/path/file` | a durable message log in a memory-mapped file |
//! | `unix:/path`, `unix:@name`, `unix-seqpacket:/path`, `unix-dgram:/path` | Unix domain sockets |
//! | `tcp:host:port`, `tcp::port` | TCP (`tcp::port` is loopback) |
//!
//! Options every scheme that creates objects takes: `mode=0600` (octal permission bits,
//! 0 to 0777; the default is 0600; setuid, setgid and sticky bits are refused).
//! Byte streams (pipe, fifo, unix, tcp) take `framing=length|lines|fixed:N|raw` and
//! `max=N` (the largest length-prefixed frame accepted, default 16 MiB).
//!
//! [`Address::parse`] checks the whole address, options included, so a typo is caught
//! before any object is created; `Display` prints the address back in canonical form.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use crate::error::{Error, Result};
use crate::frame::Framing;

/// The mode of every object ipcx creates unless the address says `mode=`.
pub const DEFAULT_MODE: u32 = 0o600;

/// An end of an inherited pipe.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PipeEnd {
    /// File descriptor 0.
    Stdin,
    /// File descriptor 1.
    Stdout,
    /// Any inherited descriptor.
    Fd(i32),
}

/// A System V IPC key: a number, or a file and project id for `ftok(3)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SysvKey {
    /// A key given as a number (never 0, `IPC_PRIVATE`).
    Key(i32),
    /// `ftok(path, proj)`; `proj` comes from `?proj=N` (default 1).
    Ftok(PathBuf, u8),
}

/// The kind of a Unix domain socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnixKind {
    /// `SOCK_STREAM`, framed by ipcx.
    Stream,
    /// `SOCK_SEQPACKET`: the kernel keeps message boundaries.
    Seqpacket,
    /// `SOCK_DGRAM`.
    Datagram,
}

/// The name of a Unix domain socket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UnixName {
    /// A socket file.
    Path(PathBuf),
    /// A Linux abstract name (`unix:@name`): no file, gone when the last socket closes.
    Abstract(String),
}

/// What an address names.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Target {
    /// `pipe:...`
    Pipe(PipeEnd),
    /// `fifo:/path`
    Fifo(PathBuf),
    /// `sysv-mq:KEY`
    SysvMq(SysvKey),
    /// `posix-mq:/name`
    PosixMq(String),
    /// `shm:/name`
    Shm(String),
    /// `sysv-shm:KEY`
    SysvShm(SysvKey),
    /// `mmap:/path`
    Mmap(PathBuf),
    /// `unix:`, `unix-seqpacket:`, `unix-dgram:`
    Unix(UnixKind, UnixName),
    /// `tcp:host:port`; an empty host means loopback.
    Tcp(String, u16),
}

/// A parsed address: what it names and its options.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Address {
    target: Target,
    params: Vec<(String, String)>,
}

const STREAM_KEYS: &[&str] = &["framing", "max"];

/// Scheme name, the options it takes, and a one-line description of its form.
const SCHEMES: &[(&str, &[&str], &str)] = &[
    ("pipe", &["framing", "max"], "pipe:stdin, pipe:stdout or pipe:fd=N"),
    ("fifo", &["mode", "framing", "max", "atomic"], "fifo:/path/to/fifo"),
    (
        "sysv-mq",
        &["mode", "type", "proj", "max", "qbytes"],
        "sysv-mq:KEY (decimal or 0x hex, not 0) or sysv-mq:/existing/path?proj=N",
    ),
    ("posix-mq", &["mode", "prio", "maxmsg", "msgsize"], "posix-mq:/name (one leading slash)"),
    ("shm", &["mode", "capacity", "spin"], "shm:/name (one leading slash)"),
    ("sysv-shm", &["mode", "capacity", "spin", "proj"], "sysv-shm:KEY or sysv-shm:/path?proj=N"),
    ("mmap", &["mode", "sync", "reader", "segment", "retain", "from", "skip"], "mmap:/path/to/log"),
    (
        "unix",
        &["mode", "framing", "max", "allow_uid"],
        "unix:/path/to/socket or unix:@abstract-name",
    ),
    (
        "unix-seqpacket",
        &["mode", "max", "allow_uid"],
        "unix-seqpacket:/path or unix-seqpacket:@name",
    ),
    ("unix-dgram", &["mode", "max"], "unix-dgram:/path or unix-dgram:@name"),
    ("tcp", &["framing", "max"], "tcp:HOST:PORT, tcp:[IPv6]:PORT or tcp::PORT (loopback)"),
];

fn scheme_list() -> String {
    SCHEMES.iter().map(|s| s.0).collect::<Vec<_>>().join(", ")
}

impl Address {
    /// Parse an address; the error says what was expected.
    pub fn parse(s: &str) -> Result<Address> {
        let Some((scheme, rest)) = s.split_once(':') else {
            return Err(Error::address(
                s,
                format!("expected SCHEME:NAME, where SCHEME is one of {}", scheme_list()),
            ));
        };
        let Some(&(scheme, keys, form)) = SCHEMES.iter().find(|e| e.0 == scheme) else {
            return Err(Error::address(
                s,
                format!("unknown scheme `{scheme}`; expected one of {}", scheme_list()),
            ));
        };
        let (body, query) = match rest.split_once('?') {
            Some((b, q)) => (b, Some(q)),
            None => (rest, None),
        };
        let mut params: Vec<(String, String)> = Vec::new();
        if let Some(q) = query {
            for pair in q.split('&').filter(|p| !p.is_empty()) {
                let (k, v) = pair.split_once('=').ok_or_else(|| {
                    Error::address(s, format!("option `{pair}` has no value; write KEY=VALUE"))
                })?;
                if !keys.contains(&k) {
                    return Err(Error::address(
                        s,
                        format!(
                            "unknown option `{k}` for {scheme}: addresses; expected one of {}",
                            keys.join(", ")
                        ),
                    ));
                }
                if params.iter().any(|(pk, _)| pk == k) {
                    return Err(Error::address(s, format!("option `{k}` is given twice")));
                }
                params.push((k.to_owned(), v.to_owned()));
            }
        }
        let bad = |why: &str| Error::address(s, format!("{why}; expected {form}"));
        let target = match scheme {
            "pipe" => Target::Pipe(match body {
                "stdin" => PipeEnd::Stdin,
                "stdout" => PipeEnd::Stdout,
                _ => {
                    let n = body.strip_prefix("fd=").ok_or_else(|| bad("unknown pipe end"))?;
                    let fd: i32 = n
                        .parse()
                        .ok()
                        .filter(|&fd| fd >= 0)
                        .ok_or_else(|| bad("the descriptor is not a number >= 0"))?;
                    PipeEnd::Fd(fd)
                }
            }),
            "fifo" => Target::Fifo(path_body(body).ok_or_else(|| bad("the path is empty"))?),
            "mmap" => Target::Mmap(path_body(body).ok_or_else(|| bad("the path is empty"))?),
            "sysv-mq" | "sysv-shm" => {
                let key = sysv_key(body, &params).map_err(|why| bad(&why))?;
                if scheme == "sysv-mq" {
                    Target::SysvMq(key)
                } else {
                    Target::SysvShm(key)
                }
            }
            "posix-mq" | "shm" => {
                check_posix_name(body).map_err(|why| bad(&why))?;
                if scheme == "shm" {
                    Target::Shm(body.to_owned())
                } else {
                    Target::PosixMq(body.to_owned())
                }
            }
            "unix" | "unix-seqpacket" | "unix-dgram" => {
                let kind = match scheme {
                    "unix" => UnixKind::Stream,
                    "unix-seqpacket" => UnixKind::Seqpacket,
                    _ => UnixKind::Datagram,
                };
                let name = if let Some(a) = body.strip_prefix('@') {
                    if a.is_empty() {
                        return Err(bad("the abstract name after @ is empty"));
                    }
                    UnixName::Abstract(a.to_owned())
                } else {
                    UnixName::Path(path_body(body).ok_or_else(|| bad("the path is empty"))?)
                };
                Target::Unix(kind, name)
            }
            "tcp" => {
                let (host, port) = split_host_port(body).map_err(|why| bad(&why))?;
                Target::Tcp(host, port)
            }
            _ => unreachable!("every scheme in SCHEMES is matched above"),
        };
        let addr = Address { target, params };
        // Check typed options now, so a typo fails before any object is made.
        addr.mode()?;
        if keys == STREAM_KEYS || keys.contains(&"framing") {
            addr.framing()?;
        }
        for key in ["maxmsg", "retain", "atomic"] {
            addr.param_u64(key)?;
        }
        for key in BYTE_KEYS {
            addr.param_bytes(key)?;
        }
        Ok(addr)
    }

    /// What the address names.
    pub fn target(&self) -> &Target {
        &self.target
    }

    /// The scheme, as written before the colon.
    pub fn scheme(&self) -> &'static str {
        match &self.target {
            Target::Pipe(_) => "pipe",
            Target::Fifo(_) => "fifo",
            Target::SysvMq(_) => "sysv-mq",
            Target::PosixMq(_) => "posix-mq",
            Target::Shm(_) => "shm",
            Target::SysvShm(_) => "sysv-shm",
            Target::Mmap(_) => "mmap",
            Target::Unix(UnixKind::Stream, _) => "unix",
            Target::Unix(UnixKind::Seqpacket, _) => "unix-seqpacket",
            Target::Unix(UnixKind::Datagram, _) => "unix-dgram",
            Target::Tcp(..) => "tcp",
        }
    }

    /// The raw value of an option, if given.
    pub fn param(&self, key: &str) -> Option<&str> {
        self.params.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// All options, in the order written.
    pub fn params(&self) -> impl Iterator<Item = (&str, &str)> {
        self.params.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Set (or replace) an option; used by programs that build addresses.
    pub fn set_param(&mut self, key: &str, value: impl Into<String>) {
        let value = value.into();
        match self.params.iter_mut().find(|(k, _)| k == key) {
            Some(slot) => slot.1 = value,
            None => self.params.push((key.to_owned(), value)),
        }
    }

    /// An unsigned option (decimal, or 0x hex), if given.
    pub fn param_u64(&self, key: &str) -> Result<Option<u64>> {
        self.param_parsed(key, parse_u64, "a whole number >= 0")
    }

    /// A byte count option (`capacity=`, `segment=`, `max=`, `msgsize=`, `qbytes=`), if
    /// given: a whole number, or one with a `K`, `M` or `G` suffix for KiB, MiB or GiB
    /// (`capacity=4M`).
    pub fn param_bytes(&self, key: &str) -> Result<Option<u64>> {
        self.param_parsed(
            key,
            parse_bytes,
            "a byte count: a whole number, or one with K, M or G for KiB, MiB or GiB (such as 65536 or 64K)",
        )
    }

    /// An option read by `parse`; an error saying it is not `expected` if that fails.
    fn param_parsed(
        &self,
        key: &str,
        parse: fn(&str) -> Option<u64>,
        expected: &str,
    ) -> Result<Option<u64>> {
        self.param(key)
            .map(|v| {
                parse(v).ok_or_else(|| {
                    Error::address(
                        &self.to_string(),
                        format!("option `{key}={v}` is not {expected}"),
                    )
                })
            })
            .transpose()
    }

    /// A signed option, if given.
    pub fn param_i64(&self, key: &str) -> Result<Option<i64>> {
        self.param(key)
            .map(|v| {
                v.parse::<i64>().map_err(|_| {
                    Error::address(
                        &self.to_string(),
                        format!("option `{key}={v}` is not a whole number"),
                    )
                })
            })
            .transpose()
    }

    /// The creation mode (`mode=0640`), [`DEFAULT_MODE`] when not given.
    ///
    /// Only permission bits are accepted, 0 to 0777: a mode with the setuid, setgid or
    /// sticky bit (`mode=4777`) or anything above is refused here, when the address is
    /// parsed, so no mechanism creates an object with such bits or silently drops them.
    pub fn mode(&self) -> Result<u32> {
        let Some(v) = self.param("mode") else {
            return Ok(DEFAULT_MODE);
        };
        let bad = |why: &str| {
            Error::address(
                &self.to_string(),
                format!(
                    "option `mode={v}` {why}; give permission bits only, in octal from 0 to 0777, such as mode=600 or mode=0640"
                ),
            )
        };
        let digits = v.strip_prefix("0o").unwrap_or(v);
        if digits.is_empty() || !digits.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
            return Err(bad("is not an octal number"));
        }
        match u32::from_str_radix(digits, 8) {
            Ok(m) if m <= 0o777 => Ok(m),
            _ => Err(bad(
                "has bits above 0777 (setuid 04000, setgid 02000, sticky 01000 or higher), which ipcx does not set on the objects it creates",
            )),
        }
    }

    /// The framing of a byte stream (`framing=`, `max=`); length-prefixed by default.
    pub fn framing(&self) -> Result<Framing> {
        let max = self.param_bytes("max")?;
        let framing = match self.param("framing") {
            None => Framing::default(),
            Some(v) => {
                v.parse::<Framing>().map_err(|e| e.context("parse address", self.to_string()))?
            }
        };
        Ok(match (framing, max) {
            (Framing::Length { .. }, Some(max)) => {
                Framing::Length { max: usize::try_from(max).unwrap_or(usize::MAX) }
            }
            (f, _) => f,
        })
    }
}

impl FromStr for Address {
    type Err = Error;
    fn from_str(s: &str) -> Result<Address> {
        Address::parse(s)
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:", self.scheme())?;
        match &self.target {
            Target::Pipe(PipeEnd::Stdin) => f.write_str("stdin")?,
            Target::Pipe(PipeEnd::Stdout) => f.write_str("stdout")?,
            Target::Pipe(PipeEnd::Fd(n)) => write!(f, "fd={n}")?,
            Target::Fifo(p) | Target::Mmap(p) => write!(f, "{}", p.display())?,
            Target::SysvMq(k) | Target::SysvShm(k) => match k {
                SysvKey::Key(n) => write!(f, "{:#x}", *n as u32)?,
                SysvKey::Ftok(p, _) => write!(f, "{}", p.display())?,
            },
            Target::PosixMq(n) | Target::Shm(n) => f.write_str(n)?,
            Target::Unix(_, UnixName::Path(p)) => write!(f, "{}", p.display())?,
            Target::Unix(_, UnixName::Abstract(n)) => write!(f, "@{n}")?,
            Target::Tcp(h, p) if h.contains(':') => write!(f, "[{h}]:{p}")?,
            Target::Tcp(h, p) => write!(f, "{h}:{p}")?,
        }
        for (i, (k, v)) in self.params.iter().enumerate() {
            write!(f, "{}{k}={v}", if i == 0 { '?' } else { '&' })?;
        }
        Ok(())
    }
}

fn path_body(body: &str) -> Option<PathBuf> {
    (!body.is_empty()).then(|| PathBuf::from(body))
}

/// The options that take a byte count ([`Address::param_bytes`]).
const BYTE_KEYS: [&str; 5] = ["max", "msgsize", "capacity", "segment", "qbytes"];

/// A byte count: a number ([`parse_u64`]) with an optional binary `K`, `M` or `G` suffix.
fn parse_bytes(v: &str) -> Option<u64> {
    let (num, shift) = match v.as_bytes().last()? {
        b'K' | b'k' => (&v[..v.len() - 1], 10),
        b'M' | b'm' => (&v[..v.len() - 1], 20),
        b'G' | b'g' => (&v[..v.len() - 1], 30),
        _ => (v, 0),
    };
    let n = parse_u64(num)?;
    n.checked_mul(1 << shift)
}

fn parse_u64(v: &str) -> Option<u64> {
    match v.strip_prefix("0x").or_else(|| v.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => v.parse().ok(),
    }
}

fn sysv_key(body: &str, params: &[(String, String)]) -> std::result::Result<SysvKey, String> {
    let proj = params.iter().find(|(k, _)| k == "proj").map(|(_, v)| v.as_str());
    if body.starts_with('/') || body.starts_with('.') {
        let proj = match proj {
            None => 1,
            Some(p) => match parse_u64(p) {
                Some(n @ 1..=255) => n as u8,
                _ => return Err(format!("proj `{p}` must be 1..=255 (ftok uses its low 8 bits)")),
            },
        };
        return Ok(SysvKey::Ftok(PathBuf::from(body), proj));
    }
    if proj.is_some() {
        return Err("proj= goes with a path key (sysv-mq:/path?proj=N), not a number".into());
    }
    let n = if let Some(neg) = body.strip_prefix('-') {
        parse_u64(neg).and_then(|n| i64::try_from(n).ok()).map(|n| -n)
    } else {
        parse_u64(body).and_then(|n| i64::try_from(n).ok())
    };
    let n = n.ok_or_else(|| format!("key `{body}` is not a number or a path"))?;
    // Keys are 32-bit; accept 0x80000000..=0xffffffff as their two's complement.
    let key = if (i64::from(i32::MIN)..=i64::from(u32::MAX)).contains(&n) {
        n as u32 as i32
    } else {
        return Err(format!("key `{body}` does not fit in 32 bits"));
    };
    if key == 0 {
        return Err(
            "key 0 is IPC_PRIVATE, which no other process can open by key; pick another key".into(),
        );
    }
    Ok(SysvKey::Key(key))
}

/// The longest POSIX IPC name Linux accepts, without the leading slash (NAME_MAX).
pub const POSIX_NAME_MAX: usize = 255;

pub(crate) fn check_posix_name(body: &str) -> std::result::Result<(), String> {
    let Some(rest) = body.strip_prefix('/') else {
        return Err(format!("name `{body}` must start with a slash"));
    };
    if rest.is_empty() {
        return Err("the name after the slash is empty".into());
    }
    if rest.contains('/') {
        return Err(format!("name `{body}` has a second slash; only the leading one is allowed"));
    }
    if rest.len() > POSIX_NAME_MAX {
        return Err(format!(
            "name is {} bytes long, over the limit of {POSIX_NAME_MAX} (NAME_MAX)",
            rest.len()
        ));
    }
    if rest == "." || rest == ".." || rest.contains('\0') {
        return Err(format!("name `{body}` is not a valid file name"));
    }
    Ok(())
}

fn split_host_port(body: &str) -> std::result::Result<(String, u16), String> {
    let (host, port) = if let Some(rest) = body.strip_prefix('[') {
        let (h, p) = rest.split_once(']').ok_or("an IPv6 host needs a closing ]")?;
        let p = p.strip_prefix(':').ok_or("a port must follow the IPv6 host")?;
        (h.to_owned(), p)
    } else {
        let (h, p) = body.rsplit_once(':').ok_or("the port is missing")?;
        if h.contains(':') {
            return Err("an IPv6 host must be written in brackets, as tcp:[::1]:7000".into());
        }
        (h.to_owned(), p)
    };
    if host.contains(['[', ']']) {
        return Err(format!("host `{host}` has a stray bracket"));
    }
    let port: u16 = port.parse().map_err(|_| format!("port `{port}` is not a number 0..=65535"))?;
    Ok((host, port))
}

/// The path of a file-backed target, for messages and clean-up.
pub fn target_path(t: &Target) -> Option<&Path> {
    match t {
        Target::Fifo(p) | Target::Mmap(p) => Some(p),
        Target::Unix(_, UnixName::Path(p)) => Some(p),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    fn roundtrip(s: &str) {
        let a = Address::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"));
        assert_eq!(a.to_string(), s);
        assert_eq!(Address::parse(&a.to_string()).unwrap(), a);
    }

    #[test]
    fn every_scheme_parses_and_prints() {
        for s in [
            "pipe:stdin",
            "pipe:stdout",
            "pipe:fd=5",
            "fifo:/tmp/f",
            "fifo:/tmp/f?mode=640&framing=fixed:80",
            "sysv-mq:0x4d2?type=4",
            "sysv-mq:/tmp?proj=65",
            "posix-mq:/jobs?prio=7",
            "posix-mq:/jobs?maxmsg=10&msgsize=1024",
            "shm:/ring",
            "sysv-shm:0x4d",
            "mmap:/var/tmp/events.log?sync=always",
            "unix:/tmp/s.sock",
            "unix:@svc",
            "unix-seqpacket:/tmp/p",
            "unix-dgram:@d",
            "tcp:host:7000",
            "tcp::9000",
            "tcp:[::1]:80",
        ] {
            roundtrip(s);
        }
        assert_eq!(
            Address::parse("sysv-mq:0x4d2").unwrap().target(),
            &Target::SysvMq(SysvKey::Key(1234))
        );
        // Keys print in hex, as ipcs(1) shows them, whichever way they were written; a key
        // over 0x7fffffff (a negative key_t) prints unsigned and parses back the same.
        assert_eq!(Address::parse("sysv-mq:1234").unwrap().to_string(), "sysv-mq:0x4d2");
        let high = Address::parse("sysv-mq:0xfffffffe").unwrap();
        assert_eq!(high.target(), &Target::SysvMq(SysvKey::Key(-2)));
        assert_eq!(high.to_string(), "sysv-mq:0xfffffffe");
    }

    #[test]
    fn bad_addresses_say_what_was_expected() {
        for (s, want) in [
            ("nothing", "expected SCHEME:NAME"),
            ("ftp:/x", "unknown scheme `ftp`"),
            ("fifo:", "path is empty"),
            ("pipe:fd=x", "not a number"),
            ("sysv-mq:0", "IPC_PRIVATE"),
            ("sysv-mq:abc", "not a number or a path"),
            ("posix-mq:jobs", "must start with a slash"),
            ("posix-mq:/a/b", "second slash"),
            ("tcp:host", "port is missing"),
            ("tcp:host:99999", "not a number 0..=65535"),
            ("fifo:/x?mode=999", "octal"),
            ("fifo:/x?mode=+600", "octal"),
            ("fifo:/x?mode=0o", "octal"),
            ("fifo:/x?mode=4777", "bits above 0777"),
            ("unix:/s?mode=1777", "bits above 0777"),
            ("shm:/r?mode=10000", "0 to 0777"),
            ("posix-mq:/q?mode=077777777777", "bits above 0777"),
            ("fifo:/x?bogus=1", "unknown option `bogus`"),
            ("fifo:/x?framing=fixed:0", "fixed"),
            ("fifo:/x?framing=zip", "framing"),
            ("fifo:/x?max=-1", "not a byte count"),
            ("shm:/r?capacity=4X", "not a byte count"),
            ("shm:/r?capacity=K", "not a byte count"),
            ("mmap:/l?segment=99999999999G", "not a byte count"),
            ("mmap:/l?retain=2K", "whole number"),
            ("fifo:/x?mode", "has no value"),
        ] {
            let e = Address::parse(s).expect_err(s);
            assert_eq!(e.kind(), ErrorKind::InvalidAddress, "{s}");
            assert!(e.to_string().contains(want), "{s}: {e}");
        }
    }

    #[test]
    fn options_have_typed_getters() {
        let a = Address::parse("fifo:/x?mode=0640&max=100").unwrap();
        assert_eq!(a.mode().unwrap(), 0o640);
        assert_eq!(a.framing().unwrap(), Framing::Length { max: 100 });
        assert_eq!(Address::parse("fifo:/x").unwrap().mode().unwrap(), 0o600);
        for (v, want) in [("0", 0), ("777", 0o777), ("0o640", 0o640), ("00600", 0o600)] {
            let a = Address::parse(&format!("fifo:/x?mode={v}")).unwrap();
            assert_eq!(a.mode().unwrap(), want, "{v}");
        }
    }

    #[test]
    fn byte_counts_take_binary_suffixes() {
        for (v, want) in [("4096", 4096), ("0x1000", 4096), ("64K", 64 << 10), ("64k", 64 << 10)]
            .into_iter()
            .chain([("8M", 8 << 20), ("1G", 1 << 30), ("0x10K", 16 << 10)])
        {
            let a = Address::parse(&format!("shm:/r?capacity={v}")).unwrap();
            assert_eq!(a.param_bytes("capacity").unwrap(), Some(want), "{v}");
        }
        let a = Address::parse("fifo:/x?max=2K").unwrap();
        assert_eq!(a.framing().unwrap(), Framing::Length { max: 2048 });
        // Counts are not sizes: no suffix there.
        assert!(Address::parse("posix-mq:/q?maxmsg=1K").is_err());
    }
}
