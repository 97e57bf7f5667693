//! The `ipcx` command on sockets: interop with `socat`, `--listen`, `--allow-uid`, the
//! relay verb and the socket demo, all as real processes.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use ipcx_tests::{dir_names, spawn, ChildGuard, TestDir};

fn ipcx() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ipcx"))
}

/// Wait for a guarded child, at most 30 s.
fn finish(mut child: ChildGuard) -> Output {
    child.wait_within(Duration::from_secs(30))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn need_socat() {
    let found = Command::new("socat").arg("-V").output().is_ok_and(|o| o.status.success());
    assert!(found, "socat is needed for the interop tests: apt-get install socat (.ci/run does)");
}

fn wait_for(p: &Path) {
    let t = Instant::now();
    while !p.exists() {
        assert!(t.elapsed() < Duration::from_secs(10), "{} never appeared", p.display());
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn stdout(o: &Output) -> String {
    assert!(o.status.success(), "failed: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn socat_sends_lines_to_an_ipcx_tcp_listener() {
    need_socat();
    let port = free_port();
    let rx = spawn(ipcx().args([
        "recv",
        &format!("tcp:127.0.0.1:{port}"),
        "--listen",
        "--framing",
        "lines",
        "--count",
        "3",
        "--timeout",
        "20s",
    ]));
    let mut tx = Command::new("socat")
        .args(["-", &format!("TCP:127.0.0.1:{port},retry=100,interval=0.05")])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    tx.stdin.take().unwrap().write_all(b"one\ntwo words\nthree\n").unwrap();
    assert!(tx.wait().unwrap().success());
    assert_eq!(stdout(&finish(rx)), "one\ntwo words\nthree\n");
}

#[test]
fn ipcx_sends_lines_to_socat_over_tcp_and_unix() {
    need_socat();
    let port = free_port();
    let s = spawn(Command::new("socat").args([
        "-u",
        &format!("TCP-LISTEN:{port},bind=127.0.0.1,reuseaddr"),
        "-",
    ]));
    let out = ipcx()
        .args(["send", &format!("tcp:127.0.0.1:{port}?framing=lines"), "alpha", "beta"])
        .args(["--timeout", "10s"])
        .output()
        .unwrap();
    stdout(&out);
    assert_eq!(stdout(&finish(s)), "alpha\nbeta\n");

    let dir = TestDir::new("socat-unix");
    let path = dir.join("s.sock");
    let s =
        spawn(Command::new("socat").args(["-u", &format!("UNIX-LISTEN:{}", path.display()), "-"]));
    wait_for(&path);
    stdout(
        &ipcx()
            .args(["send", &format!("unix:{}?framing=lines", path.display()), "gamma"])
            .output()
            .unwrap(),
    );
    assert_eq!(stdout(&finish(s)), "gamma\n");
}

#[test]
fn recv_listen_serves_several_clients_and_removes_its_socket() {
    let dir = TestDir::new("listen");
    let path = dir.join("s.sock");
    let a = format!("unix:{}", path.display());
    let rx = spawn(ipcx().args(["recv", &a, "--listen", "--count", "3", "--timeout", "20s"]));
    wait_for(&path);
    for m in ["first", "second", "third"] {
        stdout(&ipcx().args(["send", &a, m]).output().unwrap());
    }
    let out = stdout(&finish(rx));
    assert_eq!(out, "first\nsecond\nthird\n");
    assert!(!path.exists(), "the listener removed its socket file");
    // Nobody listens now: a clear error.
    let o = ipcx().args(["send", &a, "x"]).output().unwrap();
    assert!(!o.status.success());
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(e.contains("no server is listening") && e.contains("give the client a time-out"));
    // A client that waited already is not told to wait.
    let o = ipcx().args(["send", &a, "x", "--timeout", "100ms"]).output().unwrap();
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(e.contains("tried for") && e.contains("or wait longer"), "{e}");
    assert!(!e.contains("give the client a time-out"), "{e}");
}

#[test]
fn allow_uid_refuses_other_users_and_logs_them() {
    let dir = TestDir::new("allow");
    let path = dir.join("s.sock");
    let a = format!("unix:{}", path.display());
    let rx = spawn(ipcx().args([
        "recv",
        &a,
        "--listen",
        "--allow-uid",
        "4242",
        "--allow-uid",
        "4243",
        "--count",
        "1",
        "--timeout",
        "4s",
    ]));
    wait_for(&path);
    let _ = ipcx().args(["send", &a, "refused"]).output().unwrap();
    let o = finish(rx);
    assert!(!o.status.success(), "no message may be served");
    assert!(o.stdout.is_empty());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("refused a client"), "{err}");
    assert!(err.contains("not on the allow list"), "{err}");
}

#[test]
fn relay_moves_fifo_messages_to_a_tcp_listener_in_order() {
    let dir = TestDir::new("relay");
    let fifo = dir.join("in.fifo");
    let port = free_port();
    let n = 500;
    let rx = spawn(ipcx().args([
        "recv",
        &format!("tcp:127.0.0.1:{port}"),
        "--listen",
        "--count",
        &n.to_string(),
        "--timeout",
        "30s",
    ]));
    let relay = spawn(ipcx().args([
        "relay",
        &format!("fifo:{}", fifo.display()),
        &format!("tcp:127.0.0.1:{port}"),
        "--create",
    ]));
    wait_for(&fifo);
    let mut tx = ipcx()
        .args(["send", &format!("fifo:{}", fifo.display()), "--timeout", "10s"])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = String::new();
    for i in 0..n {
        input.push_str(&format!("message {i} {}\n", "x".repeat(i % 50)));
    }
    tx.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    assert!(tx.wait().unwrap().success());
    assert_eq!(stdout(&finish(rx)), input, "all messages, whole and in order");
    let r = finish(relay);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    assert!(String::from_utf8_lossy(&r.stderr).contains(&format!("{n} message(s) sent")));
    assert!(!fifo.exists(), "the relay removes the FIFO it created");
}

#[test]
fn demo_socket_shows_request_answer_and_credentials() {
    let o = ipcx().args(["demo", "socket"]).output().unwrap();
    let out = stdout(&o);
    assert!(out.contains("request: What is the answer?"), "{out}");
    assert!(out.contains("answer: 42"), "{out}");
    assert!(out.contains("the client is pid "), "{out}");
    assert!(out.contains("uid ") && out.contains("gid "), "{out}");
}

/// CPU time (user + system, in clock ticks) of a process, from /proc/PID/stat.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    // Fields 14 and 15 of stat (utime, stime) are 12 and 13 after the command name.
    f.get(11).and_then(|u| u.parse::<u64>().ok()).unwrap_or(0)
        + f.get(12).and_then(|s| s.parse::<u64>().ok()).unwrap_or(0)
}

#[test]
fn a_server_out_of_descriptors_does_not_spin_and_keeps_serving() {
    let dir = TestDir::new("emfile");
    let path = dir.join("s.sock");
    let a = format!("unix:{}", path.display());
    let exe = env!("CARGO_BIN_EXE_ipcx");
    let rx = spawn(Command::new("sh").args([
        "-c",
        &format!("ulimit -n 12 && exec {exe} recv {a} --listen --count 1 --timeout 20s"),
    ]));
    let pid = rx.id();
    wait_for(&path);
    // More clients than the server has descriptors for.
    let mut clients: Vec<std::os::unix::net::UnixStream> =
        (0..20).map(|_| std::os::unix::net::UnixStream::connect(&path).unwrap()).collect();
    std::thread::sleep(Duration::from_millis(300));
    let before = cpu_ticks(pid);
    std::thread::sleep(Duration::from_millis(1000));
    let spent = cpu_ticks(pid) - before;
    assert!(spent < 30, "the server spun while out of descriptors: {spent} ticks in 1 s");
    // The clients it did accept are still served.
    clients[0].write_all(&5u32.to_le_bytes()).unwrap();
    clients[0].write_all(b"first").unwrap();
    let o = finish(rx);
    assert_eq!(stdout(&o), "first\n");
    assert!(String::from_utf8_lossy(&o.stderr).contains("cannot accept a client"));
}

/// The socket file appears only once its server listens: a client that connects the
/// moment it sees the file is never refused. (Bound in place, the file exists from
/// `bind` to `listen` with nobody listening, and such a client got "connection refused".)
#[test]
fn a_socket_file_appears_only_when_its_server_listens() {
    let dir = TestDir::new("ready");
    for i in 0..25 {
        let path = dir.join(&format!("s{i}.sock"));
        let rx = spawn(ipcx().args([
            "recv",
            &format!("unix:{}", path.display()),
            "--listen",
            "--count",
            "1",
            "--timeout",
            "20s",
        ]));
        let t = Instant::now();
        // Spin: the earliest possible moment after the file appears.
        while path.symlink_metadata().is_err() {
            assert!(t.elapsed() < Duration::from_secs(10), "{} never appeared", path.display());
            std::hint::spin_loop();
        }
        let mut c = std::os::unix::net::UnixStream::connect(&path)
            .unwrap_or_else(|e| panic!("round {i}: the file was there but connect failed: {e}"));
        c.write_all(&2u32.to_le_bytes()).unwrap();
        c.write_all(b"ok").unwrap();
        assert_eq!(stdout(&finish(rx)), "ok\n");
        let left = dir_names(dir.path());
        assert!(left.is_empty(), "the server left files behind: {left:?}");
    }
}

/// Servers started together on one path: exactly one gets it, the others are told it is
/// in use, and none takes the winner's file for a stale one and replaces it.
#[test]
fn servers_racing_for_one_path_leave_exactly_one_live() {
    let dir = TestDir::new("race");
    for i in 0..10 {
        let path = dir.join(&format!("r{i}.sock"));
        let a = format!("unix:{}", path.display());
        let mut kids: Vec<ChildGuard> = (0..3)
            .map(|_| {
                spawn(ipcx().args(["recv", &a, "--listen", "--count", "1", "--timeout", "5s"]))
            })
            .collect();
        wait_for(&path);
        // The losers exit at once; give them the time to.
        std::thread::sleep(Duration::from_millis(300));
        let running: Vec<usize> = (0..kids.len())
            .filter(|&k| kids[k].0.as_mut().unwrap().try_wait().unwrap().is_none())
            .collect();
        assert_eq!(running.len(), 1, "round {i}: {} servers still running", running.len());
        let mut c = std::os::unix::net::UnixStream::connect(&path).unwrap();
        c.write_all(&3u32.to_le_bytes()).unwrap();
        c.write_all(b"won").unwrap();
        for (k, kid) in kids.into_iter().enumerate() {
            let o = finish(kid);
            if k == running[0] {
                assert_eq!(stdout(&o), "won\n");
            } else {
                assert!(!o.status.success());
                let err = String::from_utf8_lossy(&o.stderr);
                assert!(err.contains("in use by a live server"), "{err}");
            }
        }
        assert!(!path.exists(), "round {i}: the winner's socket file was not removed");
    }
}
