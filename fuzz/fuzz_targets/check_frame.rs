//! The stream frame decoder (`StreamReceiver`) over arbitrary bytes, read in arbitrary
//! pieces, with "would block" injected between reads. It never panics, never allocates
//! more than a frame's announced length when that length is within the limit, and
//! decodes exactly what a simple reference decoder finds in the same bytes: every message
//! whole, in order, then `Disconnected` at a clean end, `Corrupted` at a cut frame, or
//! `TooLarge` (then `Corrupted` for ever) at a frame over the limit.
//!
//! Input: byte 0 picks the framing (length, lines, fixed:N, raw), byte 1 its parameter
//! (the length limit / 4, or the record size - 1), byte 2 seeds the read sizes, byte 3
//! turns on "would block" injection; the rest is the stream.
// Shared by the fuzz target and the corpus replay test (crates/ipcx/tests).
#![allow(unsafe_code)]

use std::io::IoSlice;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd};

use ipcx::frame::{Framing, StreamIo, StreamReceiver};
use ipcx::sys::{Errno, SysResult};
use ipcx::{ErrorKind, Receiver, Wait};

struct Mem {
    data: Vec<u8>,
    pos: usize,
    seed: u32,
    inject: bool,
    blocked_last: bool,
    null: std::fs::File,
}

impl Mem {
    fn next(&mut self) -> u32 {
        self.seed = self.seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        self.seed >> 8
    }
}

// SAFETY: `read` copies at most `buf.len()` bytes into `buf` and reports exactly how many
// it initialised.
unsafe impl StreamIo for Mem {
    fn fd(&self) -> BorrowedFd<'_> {
        self.null.as_fd()
    }
    fn read(&mut self, buf: &mut [MaybeUninit<u8>], nonblock: bool) -> SysResult<usize> {
        if self.inject && nonblock && !self.blocked_last && self.next() % 3 == 0 {
            self.blocked_last = true;
            return Err(Errno(libc::EAGAIN));
        }
        self.blocked_last = false;
        let left = self.data.len() - self.pos;
        let piece = 1 + (self.next() as usize % 700);
        let n = left.min(buf.len()).min(piece);
        for (d, s) in buf[..n].iter_mut().zip(&self.data[self.pos..self.pos + n]) {
            d.write(*s);
        }
        self.pos += n;
        Ok(n)
    }
    fn write(&mut self, _bufs: &[IoSlice<'_>], _nonblock: bool) -> SysResult<usize> {
        Err(Errno(libc::EBADF))
    }
}

#[derive(Debug, PartialEq)]
enum End {
    Disconnected,
    Corrupted,
    TooLarge,
}

fn reference(framing: Framing, s: &[u8]) -> (Vec<Vec<u8>>, End) {
    let mut out = Vec::new();
    match framing {
        Framing::Length { max } => {
            let mut p = 0;
            loop {
                if p == s.len() {
                    return (out, End::Disconnected);
                }
                if s.len() - p < 4 {
                    return (out, End::Corrupted);
                }
                let len = u32::from_le_bytes(s[p..p + 4].try_into().unwrap()) as usize;
                if len > max {
                    return (out, End::TooLarge);
                }
                p += 4;
                if s.len() - p < len {
                    return (out, End::Corrupted);
                }
                out.push(s[p..p + len].to_vec());
                p += len;
            }
        }
        Framing::Lines => {
            let mut parts: Vec<&[u8]> = s.split(|&b| b == b'\n').collect();
            let last = parts.pop().unwrap_or(&[]);
            out.extend(parts.into_iter().map(<[u8]>::to_vec));
            if !last.is_empty() {
                out.push(last.to_vec());
            }
            (out, End::Disconnected)
        }
        Framing::Fixed(n) => {
            let mut chunks = s.chunks_exact(n);
            out.extend(chunks.by_ref().map(<[u8]>::to_vec));
            let end =
                if chunks.remainder().is_empty() { End::Disconnected } else { End::Corrupted };
            (out, end)
        }
        Framing::Raw => (vec![s.to_vec()], End::Disconnected),
    }
}

/// Run one input; panics on any violation.
pub fn check(data: &[u8]) {
    if data.len() < 4 {
        return;
    }
    let (ctl, stream) = data.split_at(4);
    let framing = match ctl[0] % 4 {
        0 => Framing::Length { max: ctl[1] as usize * 4 },
        1 => Framing::Lines,
        2 => Framing::Fixed(ctl[1] as usize + 1),
        _ => Framing::Raw,
    };
    let inject = ctl[3] & 1 == 1;
    let io = Mem {
        data: stream.to_vec(),
        pos: 0,
        seed: u32::from(ctl[2]),
        inject,
        blocked_last: false,
        null: std::fs::File::open("/dev/null").expect("/dev/null"),
    };
    let mut rx = StreamReceiver::new(io, framing, "fuzz:frame");
    let wait = if inject { Wait::Never } else { Wait::Forever };
    let mut got: Vec<Vec<u8>> = Vec::new();
    let mut buf = Vec::new();
    let end = loop {
        assert!(got.len() <= stream.len() + 1, "more messages than bytes");
        match rx.recv_wait(&mut buf, wait) {
            Ok(()) => got.push(buf.clone()),
            Err(e) => match e.kind() {
                ErrorKind::WouldBlock => continue,
                ErrorKind::Disconnected => break End::Disconnected,
                ErrorKind::Corrupted => break End::Corrupted,
                ErrorKind::TooLarge => break End::TooLarge,
                other => panic!("unexpected error {other:?}: {e}"),
            },
        }
    };
    // After the end, the receiver keeps saying so (never a message out of step).
    match rx.recv_wait(&mut buf, Wait::Never) {
        Ok(()) => panic!("a message after the end ({end:?})"),
        Err(e) if end == End::TooLarge => assert_eq!(e.kind(), ErrorKind::Corrupted),
        Err(_) => {}
    }
    if framing == Framing::Raw {
        assert_eq!(got.concat(), stream, "raw bytes lost or reordered");
        assert!(got.iter().all(|m| !m.is_empty()), "an empty raw read delivered");
        return;
    }
    let (want, want_end) = reference(framing, stream);
    assert_eq!(got, want, "decoded messages differ from the reference");
    assert_eq!(end, want_end);
}
