//! One error type for every mechanism.
//!
//! An [`Error`] carries the [`ErrorKind`] a caller acts on, the operation that failed, the
//! object it failed on (written as an address, so it can be pasted back into `ipcx`), a
//! sentence saying what went wrong and what to do, the limit that was hit where there is
//! one, and the `errno` where the kernel gave one.

use std::fmt;

/// What went wrong, in the terms a caller acts on.
///
/// `#[non_exhaustive]`: later versions may name more cases; match with a `_` arm.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A non-blocking receive found nothing to receive.
    WouldBlock,
    /// A non-blocking send found no room (full pipe, queue or ring).
    Full,
    /// A timed call ran out of time.
    TimedOut,
    /// The peer closed its end or died; no more messages will come (or be taken).
    Disconnected,
    /// A message (or a requested size) exceeds a limit; [`Error::limit`] gives it.
    TooLarge,
    /// The named object does not exist.
    NotFound,
    /// The object exists already (or an address is in use).
    AlreadyExists,
    /// The caller may not use the object.
    PermissionDenied,
    /// The address string is malformed or names something unsupported.
    InvalidAddress,
    /// An argument is out of range (a message the framing cannot carry, a bad size...).
    InvalidInput,
    /// Bytes from a peer or a file break the protocol (bad header, frame, checksum).
    Corrupted,
    /// A sender left in the middle of a message: the part that came was dropped, and the
    /// receiver, still in step, goes on with the next message (a FIFO reader that
    /// outlives its writers, `OpenOptions::persist`).
    Incomplete,
    /// The mechanism or the operation is not available here.
    Unsupported,
    /// Anything else; [`Error::errno`] tells the kernel's reason.
    Other,
}

impl ErrorKind {
    fn as_str(self) -> &'static str {
        match self {
            ErrorKind::WouldBlock => "would block",
            ErrorKind::Full => "full",
            ErrorKind::TimedOut => "timed out",
            ErrorKind::Disconnected => "disconnected",
            ErrorKind::TooLarge => "too large",
            ErrorKind::NotFound => "not found",
            ErrorKind::AlreadyExists => "already exists",
            ErrorKind::PermissionDenied => "permission denied",
            ErrorKind::InvalidAddress => "invalid address",
            ErrorKind::InvalidInput => "invalid input",
            ErrorKind::Corrupted => "corrupted",
            ErrorKind::Incomplete => "incomplete message dropped",
            ErrorKind::Unsupported => "unsupported",
            ErrorKind::Other => "error",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error of every ipcx call.
///
/// Its `Display` is one line: `OPERATION OBJECT: what happened; what to do`.
pub struct Error(Box<Inner>);

struct Inner {
    kind: ErrorKind,
    op: &'static str,
    object: String,
    detail: String,
    errno: Option<i32>,
    limit: Option<u64>,
}

/// `Result<T, ipcx::Error>`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An error of `kind` while doing `op` (a verb such as "send", "open") on `object`.
    pub fn new(
        kind: ErrorKind,
        op: &'static str,
        object: impl Into<String>,
        detail: impl Into<String>,
    ) -> Error {
        Error(Box::new(Inner {
            kind,
            op,
            object: object.into(),
            detail: detail.into(),
            errno: None,
            limit: None,
        }))
    }

    /// An error from the kernel's `errno`, with its kind and a default explanation.
    pub fn from_errno(op: &'static str, object: impl Into<String>, errno: i32) -> Error {
        let kind = kind_of_errno(errno);
        let mut detail = describe_errno(errno);
        if let Some(hint) = hint_for(kind) {
            detail.push_str("; ");
            detail.push_str(hint);
        }
        let mut e = Error::new(kind, op, object, detail);
        e.0.errno = Some(errno);
        e
    }

    /// A message or size over `limit`: the detail should name the limit and where it is set.
    pub fn too_large(
        op: &'static str,
        object: impl Into<String>,
        limit: u64,
        detail: impl Into<String>,
    ) -> Error {
        Error::new(ErrorKind::TooLarge, op, object, detail).with_limit(limit)
    }

    /// An error of `kind` with its own explanation, keeping the kernel's `errno`.
    pub fn errno_with(
        kind: ErrorKind,
        op: &'static str,
        object: impl Into<String>,
        errno: i32,
        detail: impl Into<String>,
    ) -> Error {
        Error::new(kind, op, object, detail).with_errno(errno)
    }

    /// A malformed address: `detail` says what was expected.
    pub fn address(addr: &str, detail: impl Into<String>) -> Error {
        Error::new(ErrorKind::InvalidAddress, "parse address", addr, detail)
    }

    /// Attach the limit that was hit.
    pub fn with_limit(mut self, limit: u64) -> Error {
        self.0.limit = Some(limit);
        self
    }

    /// Attach an errno (keeps the kind).
    pub fn with_errno(mut self, errno: i32) -> Error {
        self.0.errno = Some(errno);
        self
    }

    /// Append a sentence to the explanation.
    pub fn with_hint(mut self, hint: impl AsRef<str>) -> Error {
        self.0.detail.push_str("; ");
        self.0.detail.push_str(hint.as_ref());
        self
    }

    /// What went wrong, in terms a caller acts on.
    pub fn kind(&self) -> ErrorKind {
        self.0.kind
    }

    /// The operation that failed ("send", "open", "create", ...).
    pub fn operation(&self) -> &'static str {
        self.0.op
    }

    /// The object it failed on, written as an address where possible.
    pub fn object(&self) -> &str {
        &self.0.object
    }

    /// The explanation, without the operation and the object.
    pub fn detail(&self) -> &str {
        &self.0.detail
    }

    /// The kernel's errno, where the kernel gave one.
    pub fn errno(&self) -> Option<i32> {
        self.0.errno
    }

    /// The limit that was exceeded, for [`ErrorKind::TooLarge`] (bytes or a count).
    pub fn limit(&self) -> Option<u64> {
        self.0.limit
    }

    /// The same error told about another object or operation (used when a lower layer
    /// reports on a file descriptor and the caller knows the address).
    pub fn context(mut self, op: &'static str, object: impl Into<String>) -> Error {
        self.0.op = op;
        self.0.object = object.into();
        self
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.0.op, self.0.object, self.0.detail)
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Error")
            .field("kind", &self.0.kind)
            .field("op", &self.0.op)
            .field("object", &self.0.object)
            .field("detail", &self.0.detail)
            .field("errno", &self.0.errno)
            .field("limit", &self.0.limit)
            .finish()
    }
}

impl std::error::Error for Error {}

impl From<Error> for std::io::Error {
    fn from(e: Error) -> std::io::Error {
        use std::io::ErrorKind as K;
        let kind = match e.kind() {
            ErrorKind::WouldBlock | ErrorKind::Full => K::WouldBlock,
            ErrorKind::TimedOut => K::TimedOut,
            ErrorKind::Disconnected => K::BrokenPipe,
            ErrorKind::NotFound => K::NotFound,
            ErrorKind::AlreadyExists => K::AlreadyExists,
            ErrorKind::PermissionDenied => K::PermissionDenied,
            ErrorKind::InvalidAddress | ErrorKind::InvalidInput | ErrorKind::TooLarge => {
                K::InvalidInput
            }
            ErrorKind::Corrupted => K::InvalidData,
            ErrorKind::Incomplete => K::UnexpectedEof,
            ErrorKind::Unsupported => K::Unsupported,
            ErrorKind::Other => K::Other,
        };
        std::io::Error::new(kind, e)
    }
}

/// The error of making `path` (a FIFO, a log's directory) that failed with `errno`: for a
/// missing or unwritable directory, one that names the directory and what to do, rather
/// than telling a caller who asked to create the object to create it first.
pub(crate) fn create_error(
    op: &'static str,
    object: String,
    path: &std::path::Path,
    errno: i32,
) -> Error {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    let d = dir.display();
    let detail = match errno {
        libc::ENOENT | libc::ENOTDIR if dir.symlink_metadata().is_err() => {
            format!("the directory {d} does not exist; create it first (mkdir -p {d})")
        }
        libc::EACCES | libc::EPERM => {
            format!("no permission to create anything in {d}; choose a directory you may write to (or ask its owner)")
        }
        libc::ENOENT | libc::ENOTDIR | libc::EROFS => format!(
            "nothing can be created in {d} ({}); choose a directory on a writable file system",
            describe_errno(errno)
        ),
        _ => return Error::from_errno(op, object, errno),
    };
    Error::errno_with(kind_of_errno(errno), op, object, errno, detail)
}

/// Refuse a mode with bits outside the permission bits (setuid, setgid, sticky, or more):
/// ipcx creates objects with permission bits only, whichever way the mode was given
/// (`?mode=` is checked the same way when an address is parsed).
pub(crate) fn check_mode(op: &'static str, object: &str, mode: u32) -> Result<()> {
    if mode & !0o777 == 0 {
        return Ok(());
    }
    Err(Error::new(
        ErrorKind::InvalidInput,
        op,
        object,
        format!(
            "mode {mode:#o} has bits above 0777 (setuid 04000, setgid 02000, sticky 01000 or higher), which ipcx does not set on the objects it creates; give permission bits only, 0 to 0o777, such as 0o600"
        ),
    ))
}

/// The kind a caller acts on for a raw errno.
pub fn kind_of_errno(errno: i32) -> ErrorKind {
    match errno {
        libc::EAGAIN => ErrorKind::WouldBlock,
        libc::ETIMEDOUT => ErrorKind::TimedOut,
        libc::EPIPE | libc::ECONNRESET | libc::ENOTCONN | libc::ECONNABORTED | libc::EIDRM => {
            ErrorKind::Disconnected
        }
        libc::EMSGSIZE | libc::E2BIG | libc::ENAMETOOLONG | libc::EFBIG | libc::ENOSPC => {
            ErrorKind::TooLarge
        }
        libc::ENOENT | libc::ENXIO => ErrorKind::NotFound,
        libc::EEXIST | libc::EADDRINUSE => ErrorKind::AlreadyExists,
        libc::EACCES | libc::EPERM => ErrorKind::PermissionDenied,
        libc::EINVAL => ErrorKind::InvalidInput,
        libc::ENOSYS | libc::EOPNOTSUPP => ErrorKind::Unsupported,
        _ => ErrorKind::Other,
    }
}

fn describe_errno(errno: i32) -> String {
    let text = std::io::Error::from_raw_os_error(errno).to_string();
    // std writes "Text (os error N)"; keep it, the number helps when searching.
    text
}

fn hint_for(kind: ErrorKind) -> Option<&'static str> {
    match kind {
        ErrorKind::PermissionDenied => {
            Some("check the object's owner and mode (ipcx creates objects 0600, owner only)")
        }
        ErrorKind::NotFound => Some("check the name, or create it first (--create)"),
        ErrorKind::Disconnected => Some("the peer closed its end or exited"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_operation_object_and_cause() {
        let e = Error::too_large(
            "send",
            "sysv-mq:1234",
            8192,
            "message of 9000 bytes exceeds this queue's limit of 8192 (see /proc/sys/kernel/msgmax)",
        );
        assert_eq!(e.kind(), ErrorKind::TooLarge);
        assert_eq!(e.limit(), Some(8192));
        let s = e.to_string();
        assert!(s.starts_with("send sysv-mq:1234: message of 9000 bytes"), "{s}");
    }

    #[test]
    fn errno_mapping() {
        let e = Error::from_errno("open", "fifo:/x", libc::EACCES);
        assert_eq!(e.kind(), ErrorKind::PermissionDenied);
        assert_eq!(e.errno(), Some(libc::EACCES));
        assert!(e.to_string().contains("0600"), "{e}");
        assert_eq!(kind_of_errno(libc::EPIPE), ErrorKind::Disconnected);
        assert_eq!(kind_of_errno(libc::ENOENT), ErrorKind::NotFound);
    }
}
