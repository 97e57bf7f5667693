//! System V and POSIX message queues beyond the conformance suite: type selection,
//! priorities, timeouts that do not spin, status, removal under a waiting receiver, and
//! bad input, with real peer processes. Every test checks that its queue is gone after.

use std::os::fd::AsFd;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use ipcx::address::SysvKey;
use ipcx::sysv_mq::{self, Selector};
use ipcx::{posix_mq, ErrorKind, OpenOptions, Receiver, Sender};
use ipcx_tests::{spawn, unique, unique_key};

/// `unwrap_err` for results whose value has no `Debug` (boxed channel ends).
trait ErrOf {
    fn err_of(self) -> ipcx::Error;
}

impl<T> ErrOf for ipcx::Result<T> {
    #[track_caller]
    fn err_of(self) -> ipcx::Error {
        match self {
            Ok(_) => panic!("expected an error"),
            Err(e) => e,
        }
    }
}

fn peer() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ipcx-testpeer"))
}

fn run_peer(args: &[&str]) -> std::process::Output {
    let mut c = peer();
    c.args(args);
    spawn(&mut c).wait_within(Duration::from_secs(30))
}

fn peer_ok(args: &[&str]) {
    let out = run_peer(args);
    assert!(out.status.success(), "peer {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// Whether a System V queue with `key` exists.
fn sysv_exists(key: i32) -> bool {
    sysv_mq::Queue::open(SysvKey::Key(key)).is_ok()
}

fn pname() -> String {
    format!("/{}", unique("ipcx-test-pmq"))
}

/// This thread's CPU time (utime + stime from /proc/thread-self/stat, in 10 ms ticks), to
/// show a wait does not spin; per thread, so tests running in parallel do not count.
fn thread_cpu() -> Duration {
    let s = std::fs::read_to_string("/proc/thread-self/stat").expect("thread stat");
    let rest = s.rsplit_once(')').expect("stat format").1;
    let f: Vec<u64> =
        rest.split_whitespace().skip(11).take(2).map(|v| v.parse().unwrap()).collect();
    Duration::from_millis((f[0] + f[1]) * 10)
}

// ---------------------------------------------------------------------------------------
// System V

#[test]
fn sysv_receivers_select_by_type_exactly_and_in_order() {
    // Types 1..5 interleaved, sent by separate peer processes one after the other.
    let types = [1, 2, 3, 4, 5, 4, 2, 1, 5, 3, 4, 2, 1, 3, 5];
    let expect = |sel: &dyn Fn(i64) -> bool, sort_by_type: bool| {
        let mut v: Vec<(i64, String)> = types
            .iter()
            .enumerate()
            .filter(|(_, &t)| sel(t))
            .map(|(i, &t)| (t, format!("m{i}-t{t}")))
            .collect();
        if sort_by_type {
            v.sort_by_key(|(t, _)| *t); // stable: FIFO within a type
        }
        v
    };
    let cases: Vec<(Selector, Vec<(i64, String)>)> = vec![
        (Selector::Type(4), expect(&|t| t == 4, false)),
        (Selector::AtMost(3), expect(&|t| t <= 3, true)),
        (Selector::Except(2), expect(&|t| t != 2, false)),
        (Selector::Any, expect(&|_| true, false)),
    ];
    for (sel, want) in cases {
        let key = unique_key();
        let mut q = sysv_mq::Queue::create(SysvKey::Key(key), 0o600).unwrap();
        for (i, t) in types.iter().enumerate() {
            peer_ok(&["send", &format!("sysv-mq:{key}?type={t}"), &format!("text:m{i}-t{t}")]);
        }
        let mut got = Vec::new();
        let mut buf = Vec::new();
        loop {
            match q.try_recv_into(sel, &mut buf) {
                Ok(t) => got.push((t, String::from_utf8(buf.clone()).unwrap())),
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) => panic!("{sel:?}: {e}"),
            }
        }
        assert_eq!(got, want, "{sel:?}");
        drop(q);
        assert!(!sysv_exists(key), "queue left behind");
    }
}

#[test]
fn sysv_address_selectors_and_labels() {
    let key = unique_key();
    let _q = sysv_mq::Queue::create(SysvKey::Key(key), 0o600).unwrap();
    for t in [1, 2, 3] {
        peer_ok(&["send", &format!("sysv-mq:{key}?type={t}"), &format!("text:t{t}")]);
    }
    let mut rx = ipcx::open_receiver(&format!("sysv-mq:{key}?type=!1")).unwrap();
    assert_eq!(rx.try_recv().unwrap(), b"t2");
    assert_eq!(rx.last_label(), Some(ipcx::Label::Type(2)));
    let mut rx = ipcx::open_receiver(&format!("sysv-mq:{key}?type=-1")).unwrap();
    assert_eq!(rx.try_recv().unwrap(), b"t1");
    assert_eq!(rx.last_label(), Some(ipcx::Label::Type(1)));
    assert_eq!(rx.try_recv().err_of().kind(), ErrorKind::WouldBlock);
    let mut rx = ipcx::open_receiver(&format!("sysv-mq:{key}")).unwrap();
    assert_eq!(rx.try_recv().unwrap(), b"t3");
    for bad in ["x", "!0", "--1", "1.5"] {
        let e = ipcx::open_receiver(&format!("sysv-mq:{key}?type={bad}")).err_of();
        assert_eq!(e.kind(), ErrorKind::InvalidAddress, "{bad}: {e}");
        assert!(e.to_string().contains("any type except N"), "{e}");
    }
}

#[test]
fn sysv_timed_receive_waits_without_spinning_and_wakes_for_a_message() {
    let key = unique_key();
    let mut q = sysv_mq::Queue::create(SysvKey::Key(key), 0o600).unwrap();
    let mut buf = Vec::new();
    let cpu0 = thread_cpu();
    let t = Instant::now();
    let e = q.recv_timeout_into(Selector::Any, &mut buf, Duration::from_millis(500)).err_of();
    let took = t.elapsed();
    let cpu = thread_cpu() - cpu0;
    assert_eq!(e.kind(), ErrorKind::TimedOut, "{e}");
    assert!(took >= Duration::from_millis(495) && took < Duration::from_secs(2), "{took:?}");
    assert!(cpu < Duration::from_millis(60), "the wait used {cpu:?} of CPU: it spins");
    // A message that arrives during the wait ends it at once.
    let mut c = peer();
    c.args(["send", &format!("sysv-mq:{key}?type=9"), "text:late"]);
    let mut child = spawn(&mut c);
    let t = Instant::now();
    let ty = q.recv_timeout_into(Selector::Type(9), &mut buf, Duration::from_secs(10)).unwrap();
    assert_eq!((ty, &buf[..]), (9, &b"late"[..]));
    assert!(t.elapsed() < Duration::from_secs(5));
    child.wait_within(Duration::from_secs(10));
    // Many short waits in a row: the per-thread timer is reused and never misfires.
    for _ in 0..50 {
        let e = q.recv_timeout_into(Selector::Any, &mut buf, Duration::from_millis(2)).err_of();
        assert_eq!(e.kind(), ErrorKind::TimedOut);
    }
    // And blocking calls afterwards are not interrupted by a stale timer.
    q.send(1, b"after").unwrap();
    assert_eq!(q.recv(Selector::Any).unwrap(), (1, b"after".to_vec()));
}

#[test]
fn sysv_full_queue_gives_full_then_timed_send_times_out() {
    let key = unique_key();
    let addr = format!("sysv-mq:{key}");
    let mut tx = ipcx::open_sender_with(&addr, &OpenOptions::new().create(true)).unwrap();
    let msg = vec![1u8; 4000];
    let mut n = 0;
    let e = loop {
        match tx.try_send(&msg) {
            Ok(()) => n += 1,
            Err(e) => break e,
        }
        assert!(n < 1000, "never full");
    };
    assert_eq!(e.kind(), ErrorKind::Full, "{e}");
    assert!(e.to_string().contains("full"), "{e}");
    let t = Instant::now();
    let e = tx.send_timeout(&msg, Duration::from_millis(200)).err_of();
    assert_eq!(e.kind(), ErrorKind::TimedOut, "{e}");
    assert!(t.elapsed() >= Duration::from_millis(195));
    let st = sysv_mq::Queue::open(SysvKey::Key(key)).unwrap().status().unwrap();
    assert_eq!(st.messages, n);
    assert_eq!(st.bytes, n * 4000);
    assert!(st.bytes + 4000 > st.byte_limit, "{st:?}");
    drop(tx);
    assert!(!sysv_exists(key), "queue left behind");
}

#[test]
fn sysv_status_reports_messages_bytes_and_last_pids() {
    let key = unique_key();
    let q =
        sysv_mq::Queue::builder(SysvKey::Key(key)).mode(0o640).byte_limit(4096).create().unwrap();
    let mut c = peer();
    c.args(["send", &format!("sysv-mq:{key}?type=2"), "text:abc", "fill:100"]);
    let mut child = spawn(&mut c);
    let pid = child.id() as i32;
    assert!(child.wait_within(Duration::from_secs(10)).status.success());
    let st = q.status().unwrap();
    assert_eq!((st.messages, st.bytes, st.byte_limit), (2, 103, 4096), "{st:?}");
    assert_eq!(st.last_sender, pid);
    assert_eq!(st.last_receiver, 0);
    assert_eq!(st.mode, 0o640);
    assert_eq!(st.key, key);
    // The byte limit also caps the message size.
    assert_eq!(q.max_message_size(), 4096);
    let mut q2 = sysv_mq::Queue::open(SysvKey::Key(key)).unwrap();
    assert!(!q2.is_owner());
    q2.recv(Selector::Any).unwrap();
    assert_eq!(q.status().unwrap().last_receiver, std::process::id() as i32);
    drop(q2);
    assert!(sysv_exists(key), "a value that only opened the queue removed it");
    drop(q);
    assert!(!sysv_exists(key), "the creator did not remove the queue");
}

#[test]
fn sysv_queue_removed_under_a_waiting_receiver_is_disconnected() {
    // A peer process waits in msgrcv; we remove the queue.
    let key = unique_key();
    let q = sysv_mq::Queue::create(SysvKey::Key(key), 0o600).unwrap();
    let mut c = peer();
    c.args(["check", &format!("sysv-mq:{key}"), "1"]);
    let mut child = spawn(&mut c);
    std::thread::sleep(Duration::from_millis(300));
    q.remove().unwrap();
    let out = child.wait_within(Duration::from_secs(10));
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("the queue was removed"), "{err}");
    // The same in this process, on the timed path (the timer must not hide EIDRM).
    let key = unique_key();
    let mut q = sysv_mq::Queue::create(SysvKey::Key(key), 0o600).unwrap();
    q.keep();
    let id = q.id();
    let remover = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(200));
        sysv_mq::Queue::from_id(id).unwrap().remove().unwrap();
    });
    let mut buf = Vec::new();
    let e = q.recv_timeout_into(Selector::Any, &mut buf, Duration::from_secs(10)).err_of();
    remover.join().unwrap();
    assert_eq!(e.kind(), ErrorKind::Disconnected, "{e}");
    assert!(e.to_string().contains("removed"), "{e}");
    // Later calls on the stale id say the same.
    let e = q.try_send(1, b"x").err_of();
    assert_eq!(e.kind(), ErrorKind::Disconnected, "{e}");
    assert!(!sysv_exists(key));
}

#[test]
fn sysv_bad_input_is_refused_clearly_and_leaves_nothing() {
    // Key 0 is IPC_PRIVATE.
    let e = ipcx::open_receiver_with("sysv-mq:0", &OpenOptions::new().create(true)).err_of();
    assert_eq!(e.kind(), ErrorKind::InvalidAddress);
    assert!(e.to_string().contains("IPC_PRIVATE"), "{e}");
    let e = sysv_mq::Queue::open(SysvKey::Key(0)).err_of();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    assert!(e.to_string().contains("IPC_PRIVATE"), "{e}");
    // A private queue works by id, and is removed by its creator.
    let mut p = sysv_mq::Queue::private(0o600).unwrap();
    let id = p.id();
    p.send(1, b"private").unwrap();
    assert_eq!(sysv_mq::Queue::from_id(id).unwrap().recv(Selector::Any).unwrap().1, b"private");
    drop(p);
    assert!(sysv_mq::Queue::from_id(id).is_err());
    // ftok of a path that does not exist.
    let missing = PathBuf::from(format!("/tmp/{}", unique("ipcx-no-such-file")));
    let addr = format!("sysv-mq:{}?proj=65", missing.display());
    let e = ipcx::open_sender_with(&addr, &OpenOptions::new().create(true)).err_of();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
    assert!(e.to_string().contains("ftok") && e.to_string().contains("does not exist"), "{e}");
    // ftok of a real path works, and two opens meet.
    let dir = ipcx_tests::TestDir::new("ftok");
    let f = dir.join("keyfile");
    std::fs::write(&f, b"").unwrap();
    let addr = format!("sysv-mq:{}?proj=65", f.display());
    let mut tx = ipcx::open_sender_with(&addr, &OpenOptions::new().create(true)).unwrap();
    let mut rx = ipcx::open_receiver(&addr).unwrap();
    tx.send(b"via ftok").unwrap();
    assert_eq!(rx.recv().unwrap(), b"via ftok");
    drop((tx, rx));
    // Type 0 or negative on send.
    let key = unique_key();
    for t in ["0", "-3", "!2", "x"] {
        let e = ipcx::open_sender_with(
            &format!("sysv-mq:{key}?type={t}"),
            &OpenOptions::new().create(true),
        )
        .err_of();
        assert_eq!(e.kind(), ErrorKind::InvalidAddress, "{t}");
        assert!(e.to_string().contains("must be a number > 0"), "{e}");
        assert!(!sysv_exists(key), "a refused open left a queue");
    }
    let mut q = sysv_mq::Queue::create(SysvKey::Key(key), 0o600).unwrap();
    for t in [0, -1] {
        let e = q.send(t, b"x").err_of();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert!(e.to_string().contains("must be > 0"), "{e}");
    }
    // Too large: the limit and where it is set.
    let max = q.max_message_size();
    let e = q.send(1, &vec![0; max + 1]).err_of();
    assert_eq!(e.kind(), ErrorKind::TooLarge);
    assert_eq!(e.limit(), Some(max as u64));
    assert!(e.to_string().contains("/proc/sys/kernel/msgmax"), "{e}");
    assert_eq!(q.status().unwrap().messages, 0);
    // Opening what does not exist.
    drop(q);
    let e = ipcx::open_receiver(&format!("sysv-mq:{key}")).err_of();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
    assert!(!sysv_exists(key));
    // Creating what exists.
    let q = sysv_mq::Queue::create(SysvKey::Key(key), 0o600).unwrap();
    let e = sysv_mq::Queue::create(SysvKey::Key(key), 0o600).err_of();
    assert_eq!(e.kind(), ErrorKind::AlreadyExists);
    drop(q);
    assert!(!sysv_exists(key));
}

#[test]
fn sysv_receiver_refuses_a_message_over_its_max_and_leaves_it_in_the_queue() {
    let key = unique_key();
    // The creator owns the queue: it is removed when `q` drops, even if an assert fails.
    let mut q = sysv_mq::Queue::create(SysvKey::Key(key), 0o600).unwrap();
    let big: Vec<u8> = (0..100u8).collect();
    // A peer process sends: ten bytes (at the limit), 100 bytes (over it), then "after".
    peer_ok(&["send", &format!("sysv-mq:{key}"), "text:0123456789"]);
    q.send(1, &big).unwrap();
    q.send(1, b"after").unwrap();

    let addr = format!("sysv-mq:{key}?max=10");
    let mut small = ipcx::open_receiver(&addr).unwrap();
    assert_eq!(small.try_recv().unwrap(), b"0123456789", "a message at the limit is taken");
    for _ in 0..2 {
        let e = small.try_recv().err_of();
        assert_eq!((e.kind(), e.limit()), (ErrorKind::TooLarge, Some(10)), "{e}");
        let s = e.to_string();
        assert!(s.contains(&format!("sysv-mq:{:#x}?max=10", key as u32)), "names the queue: {s}");
        assert!(s.contains("limit of 10 bytes") && s.contains("left in the queue"), "{s}");
        assert!(s.contains("larger max="), "says what to do: {s}");
    }
    // A blocking receive does not wait past it either, and takes nothing.
    let e = small.recv_timeout(Duration::from_secs(10)).err_of();
    assert_eq!(e.kind(), ErrorKind::TooLarge, "{e}");
    assert_eq!(q.status().unwrap().messages, 2, "the refused message is still queued");

    // The builder's limit is the same.
    let mut built = sysv_mq::Queue::builder(SysvKey::Key(key)).max_message(96).open().unwrap();
    let mut buf = Vec::new();
    let e = built.try_recv_into(Selector::Any, &mut buf).err_of();
    assert_eq!((e.kind(), e.limit()), (ErrorKind::TooLarge, Some(96)), "{e}");

    // A receiver with a large enough max gets it whole, in order.
    let mut large = ipcx::open_receiver(&format!("sysv-mq:{key}?max=100")).unwrap();
    assert_eq!(large.try_recv().unwrap(), big);
    assert_eq!(small.try_recv().unwrap(), b"after");
    assert_eq!(q.status().unwrap().messages, 0);

    // One byte over is refused, whether or not the limit is a whole number of words.
    for (limit, len) in [(16usize, 17usize), (10, 11)] {
        q.send(1, &vec![7; len]).unwrap();
        let mut rx = ipcx::open_receiver(&format!("sysv-mq:{key}?max={limit}")).unwrap();
        assert_eq!(rx.try_recv().err_of().kind(), ErrorKind::TooLarge, "{len} over {limit}");
        assert_eq!(large.try_recv().unwrap(), vec![7; len]);
    }
    drop((small, large, built, q));
    assert!(!sysv_exists(key), "queue left behind");
}

fn as_nobody(args: &[&str]) -> std::process::Output {
    use std::os::unix::process::CommandExt;
    let mut c = peer();
    c.args(args).uid(65534).gid(65534);
    spawn(&mut c).wait_within(Duration::from_secs(20))
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .map(|s| {
            s.lines().any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(2) == Some("0"))
        })
        .unwrap_or(false)
}

#[test]
fn another_user_is_refused_a_0600_queue() {
    if !is_root() {
        eprintln!("skipped: dropping to uid 65534 in a child needs root");
        return;
    }
    let key = unique_key();
    let q = sysv_mq::Queue::create(SysvKey::Key(key), 0o600).unwrap();
    for args in [vec!["check", "", "1"], vec!["send", "", "text:x"]] {
        let addr = format!("sysv-mq:{key}");
        let a: Vec<&str> =
            args.iter().map(|s| if s.is_empty() { addr.as_str() } else { s }).collect();
        let out = as_nobody(&a);
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("Permission denied") && err.contains("0600"), "{err}");
    }
    assert_eq!(q.status().unwrap().messages, 0);
    let name = pname();
    let p = posix_mq::Queue::create(&name).unwrap();
    let out = as_nobody(&["check", &format!("posix-mq:{name}"), "1"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("Permission denied"), "{err}");
    // With mode 0666 the other user gets in (so the refusal above was the mode's doing).
    let key2 = unique_key();
    let _q2 = sysv_mq::Queue::create(SysvKey::Key(key2), 0o666).unwrap();
    let out = as_nobody(&["send", &format!("sysv-mq:{key2}"), "text:x"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    drop((q, p));
    assert!(!sysv_exists(key));
    assert!(!posix_mq::Queue::exists(&name).unwrap());
}

// ---------------------------------------------------------------------------------------
// POSIX

#[test]
fn posix_priorities_come_out_highest_first_fifo_within() {
    let name = pname();
    let q = posix_mq::Queue::create(&name).unwrap();
    let sends = [(0, "a0"), (5, "b5"), (1, "c1"), (5, "d5"), (0, "e0"), (9, "f9"), (1, "g1")];
    for (p, m) in sends {
        peer_ok(&["send", &format!("posix-mq:{name}?prio={p}"), &format!("text:{m}")]);
    }
    let mut rx = ipcx::open_receiver(&format!("posix-mq:{name}")).unwrap();
    let mut got = Vec::new();
    for _ in 0..sends.len() {
        let m = rx.try_recv().unwrap();
        let Some(ipcx::Label::Priority(p)) = rx.last_label() else { panic!("no priority") };
        got.push((p, String::from_utf8(m).unwrap()));
    }
    let want: Vec<(u32, String)> =
        [(9, "f9"), (5, "b5"), (5, "d5"), (1, "c1"), (1, "g1"), (0, "a0"), (0, "e0")]
            .iter()
            .map(|(p, m)| (*p, m.to_string()))
            .collect();
    assert_eq!(got, want);
    drop((rx, q));
    assert!(!posix_mq::Queue::exists(&name).unwrap(), "queue left behind");
}

#[test]
fn posix_timeouts_nonblocking_and_poll() {
    let name = pname();
    let q = posix_mq::Queue::builder(&name)
        .max_messages(2)
        .message_size(64)
        .mode(0o666)
        .create()
        .unwrap();
    // Mode exactly as asked, whatever the umask (022 here would make 0644).
    let st = ipcx::sys::fstat(q.as_fd()).unwrap();
    assert_eq!(st.mode & 0o777, 0o666);
    let mut buf = Vec::new();
    assert_eq!(q.try_recv_into(&mut buf).err_of().kind(), ErrorKind::WouldBlock);
    let t = Instant::now();
    let e = q.recv_timeout_into(&mut buf, Duration::from_millis(200)).err_of();
    assert_eq!(e.kind(), ErrorKind::TimedOut);
    assert!(t.elapsed() >= Duration::from_millis(195));
    // poll: not readable, then readable after a peer sends.
    let r = ipcx::sys::poll(q.as_fd(), libc::POLLIN, Some(Instant::now())).unwrap();
    assert!(r.none());
    peer_ok(&["send", &format!("posix-mq:{name}?prio=3"), "text:hi"]);
    let r = ipcx::sys::poll(q.as_fd(), libc::POLLIN, Some(Instant::now() + Duration::from_secs(5)))
        .unwrap();
    assert!(r.readable());
    assert_eq!(q.recv_into(&mut buf).unwrap(), 3);
    assert_eq!(buf, b"hi");
    // Full: two messages fit.
    q.try_send(b"1", 0).unwrap();
    q.try_send(b"2", 0).unwrap();
    let e = q.try_send(b"3", 0).err_of();
    assert_eq!(e.kind(), ErrorKind::Full, "{e}");
    let t = Instant::now();
    assert_eq!(
        q.send_timeout(b"3", 0, Duration::from_millis(200)).err_of().kind(),
        ErrorKind::TimedOut
    );
    assert!(t.elapsed() >= Duration::from_millis(195));
    // Non-blocking mode: a blocking call returns at once.
    q.set_nonblocking(true).unwrap();
    assert!(q.attributes().unwrap().nonblocking);
    assert_eq!(q.attributes().unwrap().current_messages, 2);
    assert_eq!(q.send(b"3", 0).err_of().kind(), ErrorKind::Full);
    q.recv_into(&mut buf).unwrap();
    q.recv_into(&mut buf).unwrap();
    assert_eq!(q.recv_into(&mut buf).err_of().kind(), ErrorKind::WouldBlock);
    // Too large, bad priority.
    let e = q.send(&[0; 65], 0).err_of();
    assert_eq!((e.kind(), e.limit()), (ErrorKind::TooLarge, Some(64)));
    assert!(e.to_string().contains("64"), "{e}");
    assert_eq!(q.send(b"x", 40000).err_of().kind(), ErrorKind::InvalidInput);
    drop(q);
    assert!(!posix_mq::Queue::exists(&name).unwrap());
}

#[test]
fn posix_bad_names_and_attributes_over_the_limits_are_refused() {
    for bad in ["jobs", "/a/b", "/", "//x"] {
        let e = posix_mq::Queue::create(bad).err_of();
        assert_eq!(e.kind(), ErrorKind::InvalidAddress, "{bad}: {e}");
        let e = ipcx::open_receiver(&format!("posix-mq:{bad}")).err_of();
        assert_eq!(e.kind(), ErrorKind::InvalidAddress, "{bad}: {e}");
    }
    let long = format!("/{}", "x".repeat(256));
    assert!(posix_mq::Queue::create(&long).err_of().to_string().contains("NAME_MAX"));
    let name = pname();
    let msg_max = ipcx::sys::mq::read_limit(posix_mq::MSG_MAX_PATH).unwrap();
    let size_max = ipcx::sys::mq::read_limit(posix_mq::MSGSIZE_MAX_PATH).unwrap();
    let e = posix_mq::Queue::builder(&name).max_messages(msg_max + 1).create().err_of();
    assert_eq!((e.kind(), e.limit()), (ErrorKind::TooLarge, Some(msg_max)));
    assert!(e.to_string().contains("/proc/sys/fs/mqueue/msg_max"), "{e}");
    let addr = format!("posix-mq:{name}?msgsize={}", size_max + 1);
    let e = ipcx::open_sender_with(&addr, &OpenOptions::new().create(true)).err_of();
    assert_eq!((e.kind(), e.limit()), (ErrorKind::TooLarge, Some(size_max)));
    assert!(e.to_string().contains("/proc/sys/fs/mqueue/msgsize_max"), "{e}");
    let e = posix_mq::Queue::builder(&name).max_messages(0).create().err_of();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    let e = ipcx::open_sender(&format!("posix-mq:{name}?prio=40000")).err_of();
    assert_eq!(e.kind(), ErrorKind::InvalidAddress);
    assert!(!posix_mq::Queue::exists(&name).unwrap(), "a refused create left a queue");
    // Open without create; create twice.
    assert_eq!(posix_mq::Queue::open(&name).err_of().kind(), ErrorKind::NotFound);
    let q = posix_mq::Queue::create(&name).unwrap();
    assert_eq!(posix_mq::Queue::create(&name).err_of().kind(), ErrorKind::AlreadyExists);
    let mut other = posix_mq::Queue::open(&name).unwrap();
    assert!(!other.is_owner());
    other.keep();
    drop(other);
    assert!(posix_mq::Queue::exists(&name).unwrap());
    drop(q);
    assert!(!posix_mq::Queue::exists(&name).unwrap());
}

#[test]
fn posix_unlinked_queue_keeps_working_for_open_descriptors() {
    let name = pname();
    let q = posix_mq::Queue::create(&name).unwrap();
    let r = posix_mq::Queue::builder(&name).access(posix_mq::Access::Receive).open().unwrap();
    q.remove().unwrap_or_else(|e| panic!("{e}"));
    assert!(!posix_mq::Queue::exists(&name).unwrap());
    // The creator's value is gone but `r` still holds the queue; nothing can send to it by
    // name any more, and a receive simply finds nothing.
    let mut buf = Vec::new();
    assert_eq!(r.try_recv_into(&mut buf).err_of().kind(), ErrorKind::WouldBlock);
    // A receive-only descriptor cannot send.
    assert_eq!(r.try_send(b"x", 0).err_of().kind(), ErrorKind::PermissionDenied);
}

/// Whether this process has CAP_SYS_RESOURCE (bit 24 of CapEff), which lets it exceed
/// the queue limits (root in a container may not have it).
fn has_sys_resource() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            let l = s.lines().find(|l| l.starts_with("CapEff:"))?;
            u64::from_str_radix(l.split_whitespace().nth(1)?, 16).ok()
        })
        .is_some_and(|caps| caps & (1 << 24) != 0)
}

#[test]
fn posix_sizes_beyond_the_system_limits_only_when_asked_and_allowed() {
    let name = pname();
    let size_max = ipcx::sys::mq::read_limit(posix_mq::MSGSIZE_MAX_PATH).unwrap();
    let big = posix_mq::Queue::builder(&name).message_size(size_max * 2);
    // Refused here by default, whoever runs it.
    assert_eq!(big.create().err_of().kind(), ErrorKind::TooLarge);
    // Asked for: the kernel lets a privileged process through, and refuses others with the
    // limit named.
    match big.clone().beyond_system_limits(true).create() {
        Ok(q) => {
            assert!(has_sys_resource(), "an unprivileged process got past msgsize_max");
            assert_eq!(q.message_size() as u64, size_max * 2);
            let msg = vec![3u8; q.message_size()];
            q.send(&msg, 1).unwrap();
            let mut buf = Vec::new();
            q.recv_into(&mut buf).unwrap();
            assert_eq!(buf, msg);
        }
        Err(e) => {
            assert!(!has_sys_resource(), "{e}");
            assert_eq!((e.kind(), e.limit()), (ErrorKind::TooLarge, Some(size_max)), "{e}");
            assert!(e.to_string().contains("msgsize_max"), "{e}");
        }
    }
    assert!(!posix_mq::Queue::exists(&name).unwrap());
}

#[test]
fn sysv_byte_limit_above_msgmnb_needs_privilege_and_leaves_nothing_when_refused() {
    let key = unique_key();
    let mnb = ipcx::sys::mq::read_limit(sysv_mq::MSGMNB_PATH).unwrap();
    let r = sysv_mq::Queue::builder(SysvKey::Key(key)).byte_limit(mnb * 2).create();
    match r {
        Ok(q) => {
            assert!(has_sys_resource());
            assert_eq!(q.status().unwrap().byte_limit, mnb * 2);
        }
        Err(e) => {
            assert!(!has_sys_resource(), "{e}");
            assert_eq!((e.kind(), e.limit()), (ErrorKind::TooLarge, Some(mnb)), "{e}");
            assert!(e.to_string().contains("/proc/sys/kernel/msgmnb"), "{e}");
        }
    }
    assert!(!sysv_exists(key), "queue left behind");
}

#[test]
fn posix_sizes_that_do_not_match_an_existing_queue_are_refused() {
    let name = pname();
    // The creator owns the queue: removed when `q` drops, even if an assert fails.
    let q = posix_mq::Queue::builder(&name).max_messages(4).message_size(1000).create().unwrap();
    let e = ipcx::open_receiver(&format!("posix-mq:{name}?msgsize=100")).err_of();
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    let s = e.to_string();
    assert!(
        s.contains("maxmsg=4 and msgsize=1000") && s.contains("not the msgsize=100 asked"),
        "{s}"
    );
    let e = ipcx::open_sender(&format!("posix-mq:{name}?maxmsg=5&msgsize=1000")).err_of();
    assert!(e.to_string().contains("not the maxmsg=5 and msgsize=1000 asked"), "{e}");
    // Matching sizes, or none, open it as it is.
    assert!(ipcx::open_sender(&format!("posix-mq:{name}?maxmsg=4&msgsize=1000")).is_ok());
    assert!(ipcx::open_receiver(&format!("posix-mq:{name}")).is_ok());
    drop(q);
    assert!(!posix_mq::Queue::exists(&name).unwrap());
}
