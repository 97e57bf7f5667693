//! The `ipcx` command on message queues: types, selectors, priorities, `--show-type`,
//! `--show-priority`, `--create`, and errors, between real `ipcx` processes.

use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};

use ipcx::address::SysvKey;
use ipcx::sysv_mq::Queue;

static N: AtomicU32 = AtomicU32::new(0);

fn key() -> i32 {
    (0x3000_0000
        | ((std::process::id() & 0xffff) << 8)
        | (N.fetch_add(1, Ordering::Relaxed) & 0xff)) as i32
}

fn pname() -> String {
    format!("/ipcx-cli-test-{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}

fn ipcx(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ipcx")).args(args).output().expect("run ipcx")
}

fn ok(args: &[&str]) -> String {
    let out = ipcx(args);
    assert!(out.status.success(), "ipcx {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

fn fails(args: &[&str]) -> String {
    let out = ipcx(args);
    assert!(!out.status.success(), "ipcx {args:?} should fail");
    String::from_utf8(out.stderr).unwrap()
}

#[test]
fn send_with_types_and_receive_by_type_with_show_type() {
    let k = key();
    let q = Queue::create(SysvKey::Key(k), 0o600).unwrap();
    let addr = format!("sysv-mq:{k}");
    for (t, m) in [(3, "hello"), (4, "four-a"), (1, "one"), (4, "four-b"), (4, "four-c")] {
        ok(&["send", &format!("{addr}?type={t}"), m]);
    }
    // Only type-4 messages, without labels unless asked.
    assert_eq!(
        ok(&["recv", &format!("{addr}?type=4"), "--count", "3", "--timeout", "5s"]),
        "four-a\nfour-b\nfour-c\n"
    );
    // Raw payload bytes on stdout, the type on stderr.
    let out = ipcx(&["recv", &addr, "--framing", "raw", "--count", "1", "--show-type"]);
    assert!(out.status.success());
    assert_eq!(out.stdout, b"hello");
    assert_eq!(String::from_utf8_lossy(&out.stderr).trim(), "type=3");
    // Lines with the label in front.
    assert_eq!(ok(&["recv", &addr, "--count", "1", "--show-type"]), "type=1\tone\n");
    assert_eq!(q.status().unwrap().messages, 0);
    // Errors: type 0 on send, --show-priority on a System V queue, a timeout.
    assert!(fails(&["send", &format!("{addr}?type=0"), "x"]).contains("must be a number > 0"));
    assert!(fails(&["recv", &addr, "--show-priority"]).contains("--show-priority is for POSIX"));
    assert!(fails(&["recv", &addr, "--timeout", "100ms"]).contains("timed out"));
}

#[test]
fn posix_priorities_with_show_priority() {
    let name = pname();
    let q = ipcx::posix_mq::Queue::create(&name).unwrap();
    let addr = format!("posix-mq:{name}");
    ok(&["send", &addr, "routine"]);
    ok(&["send", &format!("{addr}?prio=7"), "urgent"]);
    assert_eq!(
        ok(&["recv", &addr, "--show-priority", "--count", "2"]),
        "priority=7\turgent\npriority=0\troutine\n"
    );
    assert!(fails(&["recv", &addr, "--show-type"]).contains("--show-type is for System V"));
    drop(q);
    assert!(!ipcx::posix_mq::Queue::exists(&name).unwrap());
}

#[test]
fn create_makes_a_queue_and_removes_it_unless_kept() {
    let k = key();
    let addr = format!("sysv-mq:{k}");
    // Without --create: a clear error.
    assert!(fails(&["send", &addr, "x"]).contains("create it first"));
    // --create --keep leaves it (with the message) for a later receiver.
    ok(&["send", &addr, "--create", "--keep", "kept"]);
    assert_eq!(Queue::open(SysvKey::Key(k)).unwrap().status().unwrap().messages, 1);
    assert_eq!(ok(&["recv", &addr, "--count", "1"]), "kept\n");
    // The queue existed, so this --create did not own it: still there.
    ok(&["send", &addr, "--create", "again"]);
    assert!(Queue::open(SysvKey::Key(k)).is_ok());
    Queue::open(SysvKey::Key(k)).unwrap().remove().unwrap();
    // --create alone: made and removed again on exit.
    assert!(fails(&["recv", &addr, "--create", "--timeout", "100ms"]).contains("timed out"));
    assert!(Queue::open(SysvKey::Key(k)).is_err(), "queue left behind");
    // POSIX too.
    let name = pname();
    let paddr = format!("posix-mq:{name}?maxmsg=5&msgsize=128");
    ok(&["send", &paddr, "--create", "--keep", "p"]);
    let q = ipcx::posix_mq::Queue::open(&name).unwrap();
    assert_eq!((q.max_messages(), q.message_size()), (5, 128));
    assert_eq!(ok(&["recv", &format!("posix-mq:{name}"), "--count", "1"]), "p\n");
    q.remove().unwrap();
    assert!(!ipcx::posix_mq::Queue::exists(&name).unwrap());
}

/// Removes the queues named in it when dropped, so a failed test leaves none behind.
struct Cleanup(Option<i32>, Option<String>);

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Some(k) = self.0 {
            if let Ok(q) = Queue::open(SysvKey::Key(k)) {
                let _ = q.remove();
            }
        }
        if let Some(name) = &self.1 {
            if let Ok(q) = ipcx::posix_mq::Queue::open(name) {
                let _ = q.remove();
            }
        }
    }
}

#[test]
fn send_create_leaves_the_queue_it_made_holding_the_message() {
    // Removing a queue send created, on exit, would drop the message just sent.
    let (k, name) = (key(), pname());
    let _g = Cleanup(Some(k), Some(name.clone()));
    let addr = format!("sysv-mq:{k}");
    ok(&["send", &addr, "--create", "waiting"]);
    assert_eq!(Queue::open(SysvKey::Key(k)).unwrap().status().unwrap().messages, 1);
    assert_eq!(ok(&["recv", &addr, "--count", "1"]), "waiting\n");
    let paddr = format!("posix-mq:{name}");
    ok(&["send", &paddr, "--create", "waiting too"]);
    assert_eq!(ok(&["recv", &paddr, "--count", "1"]), "waiting too\n");
}

#[test]
fn demo_mq_runs() {
    let out = ok(&["demo", "mq"]);
    assert!(out.contains("receive type 3 only        -> type 3: report"), "{out}");
    assert!(out.contains("priority 7: urgent"), "{out}");
}
