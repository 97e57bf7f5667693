//! The `ipcx` command over shared-memory rings, across processes.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn ipcx() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ipcx"))
}

#[test]
fn recv_create_count_and_send_work_across_processes() {
    let name = format!("/ipcx-cli-test-{}", std::process::id());
    let addr = format!("shm:{name}");
    let recv = ipcx()
        .args(["recv", &addr, "--create", "--count", "5", "--timeout", "20s"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Each sender is its own process; the receiver waits for the next one (persist).
    for i in 0..5 {
        let t = Instant::now();
        loop {
            let out = ipcx().args(["send", &addr, &format!("hello {i}")]).output().unwrap();
            if out.status.success() {
                break;
            }
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(err.contains("no segment") || err.contains("not initialised"), "{err}");
            assert!(t.elapsed() < Duration::from_secs(10), "receiver never created the ring");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    let out = recv.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines, ["hello 0", "hello 1", "hello 2", "hello 3", "hello 4"]);
    assert!(!std::path::Path::new(&format!("/dev/shm{name}")).exists(), "ring left behind");
}

#[test]
fn demo_shm_exchanges_both_ways_and_cleans_up() {
    let out = ipcx().args(["demo", "shm"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text.matches("got back \"pong from pid").count(), 3, "{text}");
    assert!(text.contains("counter = 1"), "{text}");
    assert!(text.contains("hello from the child"), "{text}");
    assert!(text.contains("written by the parent"), "{text}");
}
