//! A loom model of the ring's index and wake-up protocol (`ring.rs`), step for step with
//! the same operations and orderings: publish an index (a SeqCst swap), then look at the
//! other side's waiting word; before sleeping, swap 1 into the own waiting word, then
//! re-read the index and the closed bits with read-modify-writes; sleep on a futex; clear
//! the word after waking. (Loom treats SeqCst like acquire/release, so a plain
//! store-then-load "Dekker" handshake fails under it; with the read-modify-writes the
//! protocol is correct under acquire/release alone, which loom does check.) Closing sets
//! a closed bit, clears the peer's waiting word and wakes it.
//!
//! The futex is modelled by a mutex and a condition variable (a check of the word and the
//! sleep are atomic with respect to a wake, as the kernel guarantees). The model sleeps
//! without a time-out, so a lost wake-up shows as a deadlock, which loom reports; the
//! payload slots are loom `UnsafeCell`s, so a reader that could see a slot the writer is
//! still writing (a torn read) is reported as a data race. The spin phase is left out: it
//! only adds polls before the same sleep protocol.
//!
//! Run: `RUSTFLAGS="--cfg loom" cargo test -p ipcx --release --lib loom`
#![allow(unsafe_code)]

use loom::cell::UnsafeCell;
use loom::sync::atomic::AtomicU32;
use loom::sync::atomic::AtomicU64;
use loom::sync::atomic::Ordering::{Acquire, Relaxed, SeqCst};
use loom::sync::{Arc, Condvar, Mutex};

const CAP: u64 = 2;
const WRITER_CLOSED: u32 = 1;
const READER_CLOSED: u32 = 2;

struct Futex {
    m: Mutex<()>,
    cv: Condvar,
}

impl Futex {
    fn new() -> Futex {
        Futex { m: Mutex::new(()), cv: Condvar::new() }
    }
    /// FUTEX_WAIT: sleep only if the word still holds `expected`.
    fn wait(&self, word: &AtomicU32, expected: u32) {
        let g = self.m.lock().unwrap();
        if word.load(SeqCst) == expected {
            drop(self.cv.wait(g).unwrap());
        }
    }
    /// FUTEX_WAKE.
    fn wake(&self) {
        let _g = self.m.lock().unwrap();
        self.cv.notify_all();
    }
}

struct Shared {
    head: AtomicU64,
    tail: AtomicU64,
    reader_waiting: AtomicU32,
    writer_waiting: AtomicU32,
    closed: AtomicU32,
    slots: [UnsafeCell<u64>; CAP as usize],
    reader_futex: Futex,
    writer_futex: Futex,
}

impl Shared {
    fn new() -> Shared {
        Shared {
            head: AtomicU64::new(0),
            tail: AtomicU64::new(0),
            reader_waiting: AtomicU32::new(0),
            writer_waiting: AtomicU32::new(0),
            closed: AtomicU32::new(0),
            slots: [UnsafeCell::new(0), UnsafeCell::new(0)],
            reader_futex: Futex::new(),
            writer_futex: Futex::new(),
        }
    }
}

/// `End::wait_for` without the spin phase: `None` when the peer is gone.
fn wait_for<T>(
    me_waiting: &AtomicU32,
    futex: &Futex,
    closed: &AtomicU32,
    peer_bit: u32,
    mut poll: impl FnMut(bool) -> Option<T>,
) -> Option<T> {
    if let Some(v) = poll(false) {
        return Some(v);
    }
    if closed.load(Acquire) & peer_bit != 0 {
        return poll(false);
    }
    loop {
        me_waiting.swap(1, SeqCst);
        if let Some(v) = poll(true) {
            me_waiting.store(0, Relaxed);
            return Some(v);
        }
        if closed.fetch_or(0, SeqCst) & peer_bit != 0 {
            me_waiting.store(0, Relaxed);
            return poll(false);
        }
        futex.wait(me_waiting, 1);
        me_waiting.store(0, Relaxed);
        if let Some(v) = poll(false) {
            return Some(v);
        }
        if closed.fetch_or(0, SeqCst) & peer_bit != 0 {
            return poll(false);
        }
    }
}

/// `End::wake_peer`.
fn wake(peer_waiting: &AtomicU32, futex: &Futex) {
    if peer_waiting.load(SeqCst) != 0 {
        peer_waiting.store(0, SeqCst);
        futex.wake();
    }
}

/// `End::release`.
fn close(s: &Shared, my_bit: u32, peer_waiting: &AtomicU32, futex: &Futex) {
    s.closed.fetch_or(my_bit, SeqCst);
    peer_waiting.store(0, SeqCst);
    futex.wake();
}

fn writer(s: &Shared, n: u64) -> bool {
    let mut head = 0u64;
    for i in 0..n {
        let room =
            wait_for(&s.writer_waiting, &s.writer_futex, &s.closed, READER_CLOSED, |strong| {
                let tail = if strong { s.tail.fetch_add(0, SeqCst) } else { s.tail.load(SeqCst) };
                (head - tail < CAP).then_some(())
            });
        if room.is_none() {
            return false;
        }
        // SAFETY: loom checks that this access is exclusive (a race is a model failure).
        s.slots[(head % CAP) as usize].with_mut(|p| unsafe { *p = 100 + i });
        head += 1;
        s.head.swap(head, SeqCst);
        wake(&s.reader_waiting, &s.reader_futex);
    }
    true
}

fn reader(s: &Shared, n: u64) -> Vec<u64> {
    let mut tail = 0u64;
    let mut got = Vec::new();
    loop {
        let r = wait_for(&s.reader_waiting, &s.reader_futex, &s.closed, WRITER_CLOSED, |strong| {
            let head = if strong { s.head.fetch_add(0, SeqCst) } else { s.head.load(SeqCst) };
            (head != tail).then_some(())
        });
        if r.is_none() {
            return got;
        }
        // SAFETY: loom checks that no write to the slot races with this read.
        let v = s.slots[(tail % CAP) as usize].with(|p| unsafe { *p });
        got.push(v);
        tail += 1;
        s.tail.swap(tail, SeqCst);
        wake(&s.writer_waiting, &s.writer_futex);
        if got.len() as u64 == n {
            return got;
        }
    }
}

#[test]
fn loom_no_lost_wakeup_no_torn_read_in_order() {
    let mut b = loom::model::Builder::new();
    b.preemption_bound = Some(3);
    b.check(|| {
        let s = Arc::new(Shared::new());
        let w = {
            let s = s.clone();
            loom::thread::spawn(move || {
                let ok = writer(&s, 3);
                close(&s, WRITER_CLOSED, &s.reader_waiting, &s.reader_futex);
                ok
            })
        };
        let got = reader(&s, 3);
        assert_eq!(got, vec![100, 101, 102]);
        assert!(w.join().unwrap());
    });
}

#[test]
fn loom_a_closing_writer_always_wakes_the_reader() {
    let mut b = loom::model::Builder::new();
    b.preemption_bound = Some(3);
    b.check(|| {
        let s = Arc::new(Shared::new());
        let w = {
            let s = s.clone();
            loom::thread::spawn(move || {
                writer(&s, 1);
                close(&s, WRITER_CLOSED, &s.reader_waiting, &s.reader_futex);
            })
        };
        // Wants more than is sent: must end by seeing the close, not hang.
        let got = reader(&s, 5);
        assert_eq!(got, vec![100]);
        w.join().unwrap();
    });
}

#[test]
fn loom_a_closing_reader_always_wakes_a_writer_on_a_full_ring() {
    let mut b = loom::model::Builder::new();
    b.preemption_bound = Some(3);
    b.check(|| {
        let s = Arc::new(Shared::new());
        let w = {
            let s = s.clone();
            loom::thread::spawn(move || writer(&s, 4))
        };
        let got = reader(&s, 1);
        close(&s, READER_CLOSED, &s.writer_waiting, &s.writer_futex);
        assert_eq!(got, vec![100]);
        assert!(!w.join().unwrap(), "the writer must see the reader leave");
    });
}
