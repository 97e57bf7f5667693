//! The watchdog of one measurement, as a separate process: a lane that loses a message or
//! deadlocks is stopped instead of hanging the run, and the measuring process stays
//! single-threaded. (A watchdog thread made it multi-threaded, and every system call of a
//! multi-threaded process costs more: glibc's cancellation bookkeeping, the kernel's
//! reference on the file. The sender of a 64 B pipe lost about a tenth of its rate.)
//!
//! The measuring process starts the watchdog (its own executable, with a hidden argument)
//! with a pipe on its standard input and closes that pipe when the measurement is over.
//! If the pipe is still open after the limit, the watchdog kills the peer and prints
//! `stalled`; if it is still open after a grace period more (a mechanism that does not
//! notice that its peer died), it says so, removes the run's directory and ends the
//! measuring process. `ipcx-peers` includes this file with `#[path]`.

use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

/// How long the measuring process may stay stuck after its peer was killed.
pub const GRACE: Duration = Duration::from_secs(10);

/// A running watchdog, seen from the measuring process.
pub struct Watchdog {
    proc: Child,
    stdin: Option<ChildStdin>,
}

impl Watchdog {
    /// Start the watchdog: `cmd` runs [`watch`] in a new process (the caller adds its
    /// arguments); its standard input and output are set here.
    pub fn start(mut cmd: Command) -> Result<Watchdog> {
        cmd.stdin(Stdio::piped()).stdout(Stdio::piped());
        let mut proc = cmd.spawn().context("starting the benchmark watchdog")?;
        let stdin = proc.stdin.take();
        Ok(Watchdog { proc, stdin })
    }

    /// The measurement is over: stop the watchdog. Whether it had killed the peer first.
    pub fn finish(mut self) -> bool {
        drop(self.stdin.take());
        let mut out = String::new();
        if let Some(mut o) = self.proc.stdout.take() {
            let _ = o.read_to_string(&mut out);
        }
        let _ = self.proc.wait();
        out.contains("stalled")
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        if self.stdin.take().is_some() {
            let _ = self.proc.wait();
        }
    }
}

/// The watchdog process: wait for standard input to close, at most `limit`; past it kill
/// `peer` and print `stalled`; past `grace` more ([`GRACE`] in a run), say that `what`
/// (which names the program and the lane) is stuck, remove `dir` (if any) and end
/// `parent`. Returns when standard input closes.
pub fn watch(
    peer: i32,
    parent: i32,
    (limit, grace): (Duration, Duration),
    what: &str,
    dir: Option<&Path>,
) -> Result<()> {
    let stdin = std::io::stdin();
    let closed = |until: Instant| -> bool {
        // Readable means closed (end of file): the measuring process writes nothing. A
        // failed poll counts as closed: never kill on a doubt.
        ipcx::sys::poll(stdin.as_fd(), libc::POLLIN, Some(until)).map_or(true, |r| !r.none())
    };
    let start = Instant::now();
    if closed(start + limit) {
        return Ok(());
    }
    let _ = ipcx::sys::kill(peer, libc::SIGKILL);
    let mut out = std::io::stdout();
    let _ = writeln!(out, "stalled");
    let _ = out.flush();
    if closed(Instant::now() + grace) {
        return Ok(());
    }
    eprintln!(
        "{what} made no progress for {} s, even after its peer was stopped; giving up the run",
        start.elapsed().as_secs()
    );
    if let Some(d) = dir {
        let _ = std::fs::remove_dir_all(d);
    }
    let _ = ipcx::sys::kill(parent, libc::SIGTERM);
    std::process::exit(1)
}
