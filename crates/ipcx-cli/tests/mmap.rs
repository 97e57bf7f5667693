//! The `ipcx` command on durable logs: send, recv --from-start, --reader (resumes),
//! --follow, and `ipcx demo mmap`.

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const IPCX: &str = env!("CARGO_BIN_EXE_ipcx");

/// A private directory in /tmp, removed on drop.
struct Dir(PathBuf);

impl Dir {
    fn new(tag: &str) -> Dir {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let p =
            std::env::temp_dir().join(format!("ipcx-cli-test-{tag}-{}-{n}", std::process::id()));
        std::fs::create_dir(&p).unwrap();
        Dir(p)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn ipcx(args: &[&str]) -> Output {
    let out = Command::new(IPCX).args(args).output().unwrap();
    assert!(out.status.success(), "ipcx {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    out
}

fn stdout(args: &[&str]) -> String {
    String::from_utf8(ipcx(args).stdout).unwrap()
}

#[test]
fn send_then_recv_from_start_and_as_a_named_reader() {
    let d = Dir::new("log");
    let addr = format!("mmap:{}", d.0.join("events.log").display());
    ipcx(&["send", &addr, "e1", "e2"]);
    assert_eq!(stdout(&["recv", &addr, "--from-start"]), "e1\ne2\n");
    assert_eq!(stdout(&["recv", &addr, "--reader", "audit"]), "e1\ne2\n");
    assert_eq!(stdout(&["recv", &addr, "--reader", "audit"]), "", "resumes at the end");
    ipcx(&["send", &addr, "e3"]);
    assert_eq!(stdout(&["recv", &addr, "--reader", "audit"]), "e3\n");
    assert_eq!(
        stdout(&["recv", &addr, "--reader", "audit", "--count", "1", "--from-start"]),
        "e1\n"
    );
    assert_eq!(stdout(&["recv", &addr, "--reader", "audit"]), "e2\ne3\n");
    assert_eq!(stdout(&["recv", &addr, "--from-end"]), "");
    // Log flags on another mechanism are refused.
    let out = Command::new(IPCX).args(["recv", "fifo:/nonexistent", "--follow"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("mmap: logs"));
}

#[test]
fn recv_follow_waits_for_new_records() {
    let d = Dir::new("follow");
    let addr = format!("mmap:{}", d.0.join("f.log").display());
    ipcx(&["send", &addr, "first"]);
    let mut follower = Command::new(IPCX)
        .args(["recv", &addr, "--follow", "--count", "3", "--timeout", "20s"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert!(follower.try_wait().unwrap().is_none(), "--follow must wait at the end");
    let t = Instant::now();
    ipcx(&["send", &addr, "second", "third"]);
    let out = follower.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "first\nsecond\nthird\n");
    assert!(t.elapsed() < Duration::from_secs(10));
}

#[test]
fn demo_mmap_runs() {
    let s = stdout(&["demo", "mmap"]);
    assert!(s.contains("mapped the same file and read: hello from pid"), "{s}");
    assert!(s.contains("a reply stored by pid"), "{s}");
    assert!(s.contains("msync(MS_SYNC)"), "{s}");
    assert!(s.contains(r#"got ["e1", "e2", "e3"]"#), "{s}");
}

#[test]
fn recv_stops_at_a_damaged_record_unless_told_to_skip_it() {
    use std::os::unix::fs::FileExt;
    let d = Dir::new("damaged");
    let log = d.0.join("d.log");
    let addr = format!("mmap:{}", log.display());
    ipcx(&["send", &addr, "aaaaaa", "bbbbbb", "cccccc"]);
    // The second record's payload: header 4096, first record 16 bytes, its own header 8.
    let f =
        std::fs::OpenOptions::new().write(true).open(log.join("00000000000000000001.seg")).unwrap();
    f.write_all_at(b"X", 4096 + 16 + 8).unwrap();
    let out = Command::new(IPCX).args(["recv", &addr, "--from-start"]).output().unwrap();
    assert!(!out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout), "aaaaaa\n");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("damaged record") && err.contains("offset 4112"), "{err}");
    assert_eq!(stdout(&["recv", &addr, "--from-start", "--skip-corrupted"]), "aaaaaa\ncccccc\n");
}
