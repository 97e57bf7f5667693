//! The durable log's reader over an arbitrary file: the fuzz input becomes the log's first
//! segment file (header and records); reading it must give whole records or errors, never
//! a panic, a hang or a bad record.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use ipcx::{Receiver, Wait};
use libfuzzer_sys::fuzz_target;

static SEG: OnceLock<(PathBuf, String)> = OnceLock::new();

/// Removes the log when libFuzzer ends the process with `exit` (a log is durable by
/// design, so nothing else would).
extern "C" fn remove_log() {
    if let Some(dir) = SEG.get().and_then(|(seg, _)| seg.parent()) {
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// A log made once per fuzzing process; its first segment is rewritten by every input.
fn segment() -> &'static (PathBuf, String) {
    SEG.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("ipcx-fuzz-log-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let addr = format!("mmap:{}?segment=8192", dir.display());
        let mut tx = ipcx::open_sender(&addr).expect("make the log");
        tx.send(b"seed record").expect("write a record");
        drop(tx);
        let seg = std::fs::read_dir(&dir)
            .expect("log directory")
            .map(|e| e.expect("entry").path())
            .find(|p| p.extension().is_some_and(|x| x == "seg"))
            .expect("a segment file");
        // SAFETY: `remove_log` is a plain function that touches only the finished
        // `OnceLock` and the file system; `atexit` runs it once, at exit.
        unsafe { libc::atexit(remove_log) };
        (seg, addr)
    })
}

fuzz_target!(|data: &[u8]| {
    let (seg, addr) = segment();
    if std::fs::write(seg, data).is_err() {
        return;
    }
    for q in ["?from=start", "?from=start&skip=corrupted"] {
        let a = format!("{}{}", addr, q.replacen('?', "&", 1));
        let Ok(mut rx) = ipcx::open_receiver(&a) else { continue };
        let mut buf = Vec::new();
        for _ in 0..64 {
            if rx.recv_wait(&mut buf, Wait::Never).is_err() && !q.contains("skip") {
                break;
            }
        }
    }
});
