//! A `SIGBUS` guard for file mappings: a file truncated by another process under a mapping
//! becomes an error the caller sees, not the death of the process.
//!
//! Touching a mapped page that lies past the end of its file raises `SIGBUS`. Each guarded
//! mapping registers its address range in a fixed table; one process-wide handler, installed
//! on first use, looks the faulting address up there. When it belongs to a guarded mapping,
//! the handler maps a private zero page over the faulting page (so the interrupted copy or
//! atomic completes, reading zeros or writing into memory nobody sees) and raises the
//! mapping's `hit` flag; the caller checks the flag after each access and reports the
//! truncation. Any other `SIGBUS` goes to the handler that was there before (Rust's own, or
//! the default action, which ends the process as it would have without ipcx).
//!
//! Limits: the table has [`SLOTS`] entries (a mapping registered past that is not guarded,
//! and [`Guard::is_active`] says so); a program that installs its own `SIGBUS` handler
//! after ipcx replaces this one; `IPCX_SIGBUS_GUARD=0` in the environment keeps it from
//! being installed (callers then fall back to checking the file's size before access).
#![allow(unsafe_code)]

use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicUsize, Ordering::*};
use std::sync::Once;

/// How many mappings can be guarded at once.
pub const SLOTS: usize = 1024;

/// `start` of a free slot.
const FREE: usize = 0;
/// `start` of a slot being filled or emptied.
const BUSY: usize = usize::MAX;

struct Slot {
    start: AtomicUsize,
    end: AtomicUsize,
    hit: AtomicBool,
}

#[allow(clippy::declare_interior_mutable_const)]
const EMPTY: Slot =
    Slot { start: AtomicUsize::new(FREE), end: AtomicUsize::new(0), hit: AtomicBool::new(false) };

static TABLE: [Slot; SLOTS] = [EMPTY; SLOTS];
static PAGE: AtomicUsize = AtomicUsize::new(4096);
static PREVIOUS: AtomicPtr<libc::sigaction> = AtomicPtr::new(std::ptr::null_mut());
static INSTALL: Once = Once::new();
static INSTALLED: AtomicBool = AtomicBool::new(false);

/// One guarded address range; unregistered on drop.
#[derive(Debug)]
pub struct Guard {
    slot: Option<usize>,
}

impl Guard {
    /// Guard `[start, start + len)`. Never fails: with the table full or the handler not
    /// installable the guard is inactive ([`Guard::is_active`] false).
    pub fn new(start: usize, len: usize) -> Guard {
        install();
        if !INSTALLED.load(Acquire) || len == 0 {
            return Guard { slot: None };
        }
        for (i, s) in TABLE.iter().enumerate() {
            if s.start.compare_exchange(FREE, BUSY, AcqRel, Relaxed).is_ok() {
                s.hit.store(false, Relaxed);
                s.end.store(start + len, Relaxed);
                s.start.store(start, Release);
                return Guard { slot: Some(i) };
            }
        }
        Guard { slot: None }
    }

    /// Whether the range is guarded (else a truncation raises `SIGBUS` as usual).
    pub fn is_active(&self) -> bool {
        self.slot.is_some()
    }

    /// Whether an access to the range faulted past the end of its file since it was
    /// registered.
    #[inline]
    pub fn hit(&self) -> bool {
        self.slot.is_some_and(|i| TABLE[i].hit.load(Acquire))
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(i) = self.slot {
            TABLE[i].start.store(FREE, Release);
        }
    }
}

fn install() {
    INSTALL.call_once(|| {
        if std::env::var_os("IPCX_SIGBUS_GUARD").is_some_and(|v| v == "0") {
            return;
        }
        // SAFETY: sysconf has no memory arguments.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        if page > 0 {
            PAGE.store(page as usize, Relaxed);
        }
        // SAFETY: `sigaction` structs are plain data; zeroed is a valid empty value.
        let mut new: libc::sigaction = unsafe { std::mem::zeroed() };
        new.sa_sigaction = on_sigbus as *const () as usize;
        new.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
        // SAFETY: as above.
        let old: &'static mut libc::sigaction = Box::leak(Box::new(unsafe { std::mem::zeroed() }));
        // SAFETY: `sa_mask` is ours to fill.
        unsafe { libc::sigemptyset(&mut new.sa_mask) };
        // The previous action is published before the handler can run (it is installed by
        // the same call that reads it, so store it first from a scratch query).
        // SAFETY: a query (null new action) of SIGBUS into `old`, valid memory.
        if unsafe { libc::sigaction(libc::SIGBUS, std::ptr::null(), &mut *old) } != 0 {
            return;
        }
        PREVIOUS.store(old, Release);
        // SAFETY: `new` is a fully set up action whose handler is `on_sigbus`, which only
        // does async-signal-safe work (atomics, mmap, sigaction, calling the old handler).
        if unsafe { libc::sigaction(libc::SIGBUS, &new, std::ptr::null_mut()) } == 0 {
            INSTALLED.store(true, Release);
        }
    });
}

extern "C" fn on_sigbus(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    // SAFETY: with SA_SIGINFO the kernel passes a valid siginfo; for SIGBUS from a memory
    // access `si_addr` is the faulting address.
    let addr = unsafe { (*info).si_addr() } as usize;
    let page = PAGE.load(Relaxed);
    for s in TABLE.iter() {
        let start = s.start.load(Acquire);
        if start == FREE || start == BUSY || addr < start || addr >= s.end.load(Relaxed) {
            continue;
        }
        let at = addr & !(page - 1);
        // SAFETY: the page lies in a guarded mapping this process owns (registered and not
        // yet unregistered, so not yet unmapped); replacing it with a private zero page
        // changes only what that mapping's later accesses see, which the owner checks
        // through the `hit` flag before trusting anything it read or wrote.
        let p = unsafe {
            libc::mmap(
                at as *mut libc::c_void,
                page,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED,
                -1,
                0,
            )
        };
        if p != libc::MAP_FAILED {
            s.hit.store(true, Release);
            return;
        }
        break;
    }
    // Not ours: hand it to what was there before.
    let prev = PREVIOUS.load(Acquire);
    // SAFETY: `prev` was stored (leaked, so alive forever) before this handler was installed.
    let prev = unsafe { &*prev };
    let h = prev.sa_sigaction;
    if h == libc::SIG_DFL || h == libc::SIG_IGN {
        // Put the default action back and return: the access faults again and the process
        // ends as it would have without ipcx.
        // SAFETY: zeroed is a valid empty action; its handler is SIG_DFL (0).
        let mut dfl: libc::sigaction = unsafe { std::mem::zeroed() };
        dfl.sa_sigaction = libc::SIG_DFL;
        // SAFETY: installs the default action for SIGBUS; async-signal-safe.
        unsafe { libc::sigaction(libc::SIGBUS, &dfl, std::ptr::null_mut()) };
    } else if prev.sa_flags & libc::SA_SIGINFO != 0 {
        // SAFETY: the previous handler was installed with SA_SIGINFO, so it has this type.
        let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
            unsafe { std::mem::transmute(h) };
        f(sig, info, ctx);
    } else {
        // SAFETY: a plain handler takes the signal number only.
        let f: extern "C" fn(libc::c_int) = unsafe { std::mem::transmute(h) };
        f(sig);
    }
}
