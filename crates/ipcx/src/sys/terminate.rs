//! Termination signals taken by a thread instead of killing the process at once, so a
//! command can remove what it created before it dies of the signal (as the shell expects).
//!
//! [`block_termination`] blocks `SIGINT`, `SIGTERM` and `SIGHUP` in the calling thread; a
//! thread started after it inherits the mask, and one thread then takes the signal with
//! [`wait_termination`] and, its clean-up done, ends the process with [`die_of`]. Call it
//! before the process starts other threads or children (a child inherits the mask).

use super::{Errno, SysResult};

/// The signals that end a command: Ctrl-C, `kill`, a closed terminal.
const TERMINATION: [i32; 3] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP];

fn set_of(sigs: &[i32]) -> libc::sigset_t {
    // SAFETY: sigemptyset/sigaddset only write the set they are given, a valid local;
    // the signal numbers are valid, so neither can fail.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for &s in sigs {
            libc::sigaddset(&mut set, s);
        }
        set
    }
}

fn mask(how: i32, sigs: &[i32]) -> SysResult<()> {
    let set = set_of(sigs);
    // SAFETY: `set` is a valid signal set; the old mask is not wanted (null).
    match unsafe { libc::pthread_sigmask(how, &set, std::ptr::null_mut()) } {
        0 => Ok(()),
        e => Err(Errno(e)),
    }
}

/// Block `SIGINT`, `SIGTERM` and `SIGHUP` in the calling thread (and in threads it starts
/// afterwards), so that they wait for [`wait_termination`].
pub fn block_termination() -> SysResult<()> {
    mask(libc::SIG_BLOCK, &TERMINATION)
}

/// Wait for one of the blocked termination signals; returns its number.
pub fn wait_termination() -> SysResult<i32> {
    let set = set_of(&TERMINATION);
    let mut sig = 0;
    loop {
        // SAFETY: `set` and `sig` are valid for the call.
        match unsafe { libc::sigwait(&set, &mut sig) } {
            0 => return Ok(sig),
            libc::EINTR => continue,
            e => return Err(Errno(e)),
        }
    }
}

/// End the process as signal `sig` would have: its default action restored, the signal
/// unblocked and raised again. (Exit status 128 + `sig` if it somehow did not end it.)
pub fn die_of(sig: i32) -> ! {
    // SAFETY: restoring the default action takes no memory of ours; `sig` is one of the
    // termination signals.
    unsafe { libc::signal(sig, libc::SIG_DFL) };
    let _ = mask(libc::SIG_UNBLOCK, &[sig]);
    // SAFETY: raise(3) sends `sig` to the calling thread, whose mask now lets it through.
    unsafe { libc::raise(sig) };
    std::process::exit(128 + sig)
}
