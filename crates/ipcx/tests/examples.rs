//! The examples run end to end, as their doc comments say.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The built example; `cargo test` builds examples before running tests (a run filtered
/// with `--test examples` alone does not: use `cargo test -p ipcx`).
fn example(name: &str) -> PathBuf {
    // target/<profile>/deps/examples-HASH -> target/<profile>/examples/NAME
    let exe = std::env::current_exe().unwrap();
    exe.parent().unwrap().parent().unwrap().join("examples").join(name)
}

fn wait(mut c: std::process::Child, limit: Duration) -> std::process::Output {
    let t = Instant::now();
    while c.try_wait().unwrap().is_none() {
        if t.elapsed() > limit {
            let _ = c.kill();
            panic!("example ran longer than {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    c.wait_with_output().unwrap()
}

#[test]
fn pipe_parent_reads_its_child() {
    let c = Command::new(example("pipe_parent")).stdout(Stdio::piped()).spawn().unwrap();
    let o = wait(c, Duration::from_secs(20));
    assert!(o.status.success());
    assert_eq!(String::from_utf8_lossy(&o.stdout), "parent got: Hello, world!\n");
}

/// Removes the directory even when the test fails.
struct Dir(PathBuf);

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn fifo_sender_and_receiver_talk_through_a_path() {
    let dir = std::env::temp_dir().join(format!("ipcx-example-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let _guard = Dir(dir.clone());
    let path = dir.join("demo.fifo");
    let rx = Command::new(example("fifo_receiver"))
        .arg(&path)
        .arg("3")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // The receiver creates the FIFO; the sender needs it to exist.
    let t = Instant::now();
    while !path.exists() {
        assert!(t.elapsed() < Duration::from_secs(20), "the receiver never made the FIFO");
        std::thread::sleep(Duration::from_millis(5));
    }
    let tx = Command::new(example("fifo_sender"))
        .arg(&path)
        .args(["one", "two", "three"])
        .spawn()
        .unwrap();
    let to = wait(tx, Duration::from_secs(20));
    let ro = wait(rx, Duration::from_secs(20));
    let leftover = path.exists();
    assert!(to.status.success() && ro.status.success());
    assert_eq!(String::from_utf8_lossy(&ro.stdout), "one\ntwo\nthree\n");
    assert!(!leftover, "the receiver removes the FIFO it created");
}
