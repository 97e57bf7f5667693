//! The `ipcx` command as a user types it: real processes, real FIFOs, real C programs.

use std::io::Write;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use ipcx_tests::{dir_names, spawn, ChildGuard, TestDir};

fn ipcx() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ipcx"))
}

/// Run to completion with a watchdog.
fn run(cmd: &mut Command) -> Output {
    let mut g = spawn(cmd.stdin(Stdio::null()));
    g.wait_within(Duration::from_secs(30))
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn wait_for_fifo(p: &Path) {
    let t = Instant::now();
    while !std::fs::symlink_metadata(p).map(|m| m.file_type().is_fifo()).unwrap_or(false) {
        assert!(t.elapsed() < Duration::from_secs(10), "{} never appeared", p.display());
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// `ipcx recv FIFO --create --count N` in `dir`, once its FIFO is there: (the FIFO's path,
/// its address, the receiver).
fn counting_receiver(dir: &TestDir, count: u32) -> (PathBuf, String, ChildGuard) {
    let f = dir.join("f");
    let addr = format!("fifo:{}", f.display());
    let n = count.to_string();
    let rx = spawn(ipcx().args(["recv", &addr, "--create", "--count", &n, "--timeout", "20s"]));
    wait_for_fifo(&f);
    (f, addr, rx)
}

/// A receiver of `count` messages on a new FIFO meets a writer that writes `bytes` and
/// leaves, then one that sends `next`: the receiver's output, once it is done.
fn after_a_writer_left(bytes: &[u8], count: u32, next: &[&str]) -> Output {
    let dir = TestDir::new("cli");
    let (f, addr, mut rx) = counting_receiver(&dir, count);
    let mut w = std::fs::OpenOptions::new().write(true).open(&f).unwrap();
    w.write_all(bytes).unwrap();
    drop(w);
    // The leaving shows only as a moment with no writer: let the receiver see it before
    // the next writer opens (overlapping writers give a reader no boundary).
    std::thread::sleep(Duration::from_millis(300));
    let o = run(ipcx().arg("send").arg(&addr).args(next));
    assert!(o.status.success(), "{}", stderr(&o));
    let out = rx.wait_within(Duration::from_secs(30));
    assert!(out.status.success(), "{}", stderr(&out));
    out
}

/// Expect failure with one line on stderr containing `want`, and nothing left in `dir`
/// beyond what the test put there.
fn expect_error(o: &Output, want: &str) {
    assert!(
        !o.status.success(),
        "expected failure; stdout: {}",
        String::from_utf8_lossy(&o.stdout)
    );
    let e = stderr(o);
    assert_eq!(e.trim_end().lines().count(), 1, "one line expected: {e}");
    assert!(e.starts_with("ipcx: "), "{e}");
    assert!(e.contains(want), "expected `{want}` in: {e}");
}

#[test]
fn recv_create_count_prints_messages_and_removes_the_fifo() {
    let dir = TestDir::new("cli");
    let (f, addr, mut rx) = counting_receiver(&dir, 2);
    let mode = std::fs::symlink_metadata(&f).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode, 0o600, "a created FIFO is owner-only");
    let mut tx = ipcx()
        .args(["send", &addr, "--framing", "lines"])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    tx.stdin.take().unwrap().write_all(b"a\nb\n").unwrap();
    assert!(tx.wait().unwrap().success());
    let out = rx.wait_within(Duration::from_secs(30));
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "a\nb\n");
    assert!(!f.exists(), "the FIFO created by --create is removed on exit");
}

#[test]
fn recv_with_count_waits_for_new_writers() {
    let dir = TestDir::new("cli");
    let (_, addr, mut rx) = counting_receiver(&dir, 3);
    for m in ["one", "two", "three"] {
        let o = run(ipcx().args(["send", &addr, m]));
        assert!(o.status.success(), "{}", stderr(&o));
    }
    let out = rx.wait_within(Duration::from_secs(30));
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "one\ntwo\nthree\n");
}

#[test]
fn recv_with_count_drops_a_message_a_departed_writer_cut_and_goes_on() {
    // A writer that leaves in the middle of a frame (20 bytes announced, 7 sent).
    let cut = b"\x03\0\0\0abc\x14\0\0\0partial";
    let out = after_a_writer_left(cut, 3, &["hello-from-new-writer", "second"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "abc\nhello-from-new-writer\nsecond\n");
    let e = stderr(&out);
    assert!(e.contains("left in the middle of a message") && e.contains("dropped"), "{e}");
}

#[test]
fn recv_with_count_outlasts_a_writer_that_sends_a_bad_header() {
    let out = after_a_writer_left(b"\xff\xff\xff\x7fhello", 1, &["good"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "good\n");
    let e = stderr(&out);
    assert!(e.contains("over this receiver's limit") && e.contains("dropped"), "{e}");
}

#[test]
fn relay_opens_its_destination_before_it_takes_any_message() {
    let dir = TestDir::new("cli");
    let f = dir.join("in");
    let from = format!("fifo:{}", f.display());
    // Nobody listens on this port (bound, never listening).
    let hold = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = hold.local_addr().unwrap().port();
    drop(hold);
    let to = format!("tcp:127.0.0.1:{port}");
    let mut relay = spawn(ipcx().args(["relay", &from, "--create", &to, "--timeout", "1s"]));
    let t = Instant::now();
    while t.elapsed() < Duration::from_millis(500) {
        assert!(
            std::fs::symlink_metadata(&f).is_err(),
            "the relay made its source before its destination was there"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let out = relay.wait_within(Duration::from_secs(30));
    assert!(!out.status.success());
    assert!(stderr(&out).contains(&to), "{}", stderr(&out));
    assert!(std::fs::symlink_metadata(&f).is_err(), "source left behind");
}

#[test]
fn a_command_ended_by_a_signal_removes_what_it_created() {
    use std::os::unix::process::ExitStatusExt;
    let dir = TestDir::new("cli");
    let reg = dir.join("registry");
    let pid = std::process::id();
    let key = 0x3100_0000 | ((pid & 0xffff) << 8) as i32;
    let shm_name = format!("/ipcx-cli-sig-{pid}");
    let mq_name = format!("/ipcx-cli-sigq-{pid}");
    let gone = |p: &Path| std::fs::symlink_metadata(p).is_err();
    let sysv_exists = move || ipcx::sysv_mq::Queue::open(ipcx::address::SysvKey::Key(key)).is_ok();
    type Exists = Box<dyn Fn() -> bool>;
    let cases: Vec<(String, Vec<&str>, Exists)> = vec![
        (format!("fifo:{}", dir.join("f").display()), vec!["--create"], {
            let p = dir.join("f");
            Box::new(move || !gone(&p))
        }),
        (format!("unix:{}", dir.join("s.sock").display()), vec!["--listen"], {
            let p = dir.join("s.sock");
            Box::new(move || !gone(&p))
        }),
        (format!("sysv-mq:{key}"), vec!["--create"], Box::new(sysv_exists)),
        (format!("posix-mq:{mq_name}"), vec!["--create"], {
            let n = mq_name.clone();
            Box::new(move || ipcx::posix_mq::Queue::exists(&n).unwrap_or(false))
        }),
        (format!("shm:{shm_name}"), vec!["--create"], {
            let p = PathBuf::from(format!("/dev/shm{shm_name}"));
            Box::new(move || !gone(&p))
        }),
    ];
    // Signals this test process ignores (a background job ignores SIGINT, nohup SIGHUP)
    // stay ignored in its children, which then rightly do not end: leave those out.
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let ignored = status
        .lines()
        .find_map(|l| l.strip_prefix("SigIgn:"))
        .map(|h| u64::from_str_radix(h.trim(), 16).unwrap())
        .unwrap();
    let signals: Vec<i32> = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP]
        .into_iter()
        .filter(|&s| ignored & (1 << (s - 1)) == 0)
        .collect();
    assert!(!signals.is_empty(), "every termination signal is ignored here");
    for (i, (addr, flags, exists)) in cases.iter().enumerate() {
        let sig = signals[i % signals.len()];
        let mut rx = spawn(ipcx().args(["recv", addr]).args(flags).env("IPCX_REGISTRY", &reg));
        let t = Instant::now();
        while !exists() {
            assert!(t.elapsed() < Duration::from_secs(10), "{addr} never appeared");
            std::thread::sleep(Duration::from_millis(5));
        }
        // The registry entry is written just after the object: give it a moment.
        std::thread::sleep(Duration::from_millis(100));
        ipcx::sys::kill(rx.id() as i32, sig).unwrap();
        let out = rx.wait_within(Duration::from_secs(10));
        assert_eq!(out.status.signal(), Some(sig), "{addr}: {}", stderr(&out));
        assert!(!exists(), "{addr} left behind after signal {sig}");
    }
}

#[test]
fn errors_name_the_likely_cause() {
    // Text read as a length-framed stream: say that it is text, and which framing fits.
    let mut c = ipcx();
    c.args(["recv", "pipe:stdin"]).stdin(Stdio::piped()).stdout(Stdio::piped());
    c.stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    child.stdin.take().unwrap().write_all(b"hello\n").unwrap();
    let o = child.wait_with_output().unwrap();
    expect_error(&o, "not a 4-byte length header");
    assert!(stderr(&o).contains("--framing lines"), "{}", stderr(&o));
    // --create in a directory that does not exist: the directory is what is missing.
    let dir = TestDir::new("cli");
    let missing = dir.join("no-such-dir");
    let addr = format!("fifo:{}/f", missing.display());
    let o = run(ipcx().args(["recv", &addr, "--create", "--timeout", "1s"]));
    expect_error(&o, &format!("the directory {} does not exist", missing.display()));
    assert!(!stderr(&o).contains("--create"), "--create was given: {}", stderr(&o));
    // The same for a log.
    let log = format!("mmap:{}/log", missing.display());
    let o = run(ipcx().args(["recv", &log, "--create", "--timeout", "1s"]));
    expect_error(&o, &format!("the directory {} does not exist", missing.display()));
    // A client pointed at a file that is no socket: not "no server is listening".
    let file = dir.join("plain");
    std::fs::write(&file, b"").unwrap();
    let o = run(ipcx().args(["send", &format!("unix:{}", file.display()), "x"]));
    expect_error(&o, "the path is not a socket");
}

#[test]
fn send_says_which_message_failed_and_what_was_sent() {
    let dir = TestDir::new("cli");
    let (_, addr, mut rx) = counting_receiver(&dir, 1);
    let big = "a".repeat(9000);
    let o = run(ipcx().args(["send", &addr, "ok1", &big, "ok3"]));
    expect_error(&o, "message 2 of 3 not sent (1 sent before it; the ones after it were not sent)");
    let out = rx.wait_within(Duration::from_secs(30));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "ok1\n");
}

#[test]
fn a_tcp_server_on_port_0_says_which_port_it_got() {
    let o = run(ipcx().args(["recv", "tcp:127.0.0.1:0", "--listen", "--timeout", "200ms"]));
    let e = stderr(&o);
    let line = e.lines().find(|l| l.starts_with("ipcx recv: listening on tcp:127.0.0.1:"));
    let port: u16 = line.and_then(|l| l.rsplit(':').next()).and_then(|p| p.parse().ok()).unwrap();
    assert_ne!(port, 0, "{e}");
}

#[test]
fn recv_without_count_ends_when_the_writer_closes() {
    let dir = TestDir::new("cli");
    let f = dir.join("f");
    let addr = format!("fifo:{}", f.display());
    let mut rx = spawn(ipcx().args(["recv", &addr, "--create", "--timeout", "20s"]));
    wait_for_fifo(&f);
    let o = run(ipcx().args(["send", &addr, "x", "", "y"]));
    assert!(o.status.success(), "{}", stderr(&o));
    let out = rx.wait_within(Duration::from_secs(30));
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "x\n\ny\n", "the empty message is kept");
}

fn cc(dir: &TestDir, name: &str, src: &str) -> PathBuf {
    let c = dir.join(&format!("{name}.c"));
    std::fs::write(&c, src).unwrap();
    let exe = dir.join(name);
    let o = Command::new("cc").arg("-O1").arg("-o").arg(&exe).arg(&c).output().expect(
        "a C compiler (`cc`) is needed for the interop tests; .ci/run installs gcc if missing",
    );
    assert!(o.status.success(), "cc failed: {}", stderr(&o));
    exe
}

const C_WRITER: &str = r#"
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
int main(int argc, char **argv) {
    int fd = open(argv[1], O_WRONLY);
    if (fd < 0) { perror("open"); return 1; }
    for (int i = 0; i < 3; i++) {
        char rec[80];
        memset(rec, 0, sizeof rec);
        snprintf(rec, sizeof rec, "Send Message[%d]", i);
        if (write(fd, rec, sizeof rec) != sizeof rec) { perror("write"); return 1; }
    }
    return 0;
}
"#;

const C_READER: &str = r#"
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>
int main(int argc, char **argv) {
    int fd = open(argv[1], O_RDONLY);
    if (fd < 0) { perror("open"); return 1; }
    char rec[80];
    for (int i = 0; i < 3; i++) {
        size_t got = 0;
        while (got < sizeof rec) {
            ssize_t n = read(fd, rec + got, sizeof rec - got);
            if (n <= 0) { fprintf(stderr, "short record %d\n", i); return 1; }
            got += n;
        }
        fwrite(rec, 1, sizeof rec, stdout);
    }
    return 0;
}
"#;

#[test]
fn fixed_records_interoperate_byte_for_byte_with_c_programs() {
    let dir = TestDir::new("cli");
    let writer = cc(&dir, "writer", C_WRITER);
    let reader = cc(&dir, "reader", C_READER);
    let f = dir.join("r.fifo");
    let fifo = ipcx::fifo::Fifo::create(&f, 0o600).unwrap();
    let addr = format!("fifo:{}", f.display());

    // C writes 80-byte records; ipcx prints them without their trailing zeros.
    let mut rx = spawn(ipcx().args([
        "recv",
        &addr,
        "--framing",
        "fixed:80",
        "--count",
        "3",
        "--timeout",
        "20s",
    ]));
    let o = run(Command::new(&writer).arg(&f));
    assert!(o.status.success(), "{}", stderr(&o));
    let out = rx.wait_within(Duration::from_secs(30));
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "Send Message[0]\nSend Message[1]\nSend Message[2]\n"
    );

    // ipcx sends fixed:80 records; C reads exactly the zero-padded bytes.
    let mut c = spawn(Command::new(&reader).arg(&f));
    let fixed = format!("{addr}?framing=fixed:80");
    let o = run(ipcx().args(["send", &fixed, "alpha", "", "Send Message[2]"]));
    assert!(o.status.success(), "{}", stderr(&o));
    let out = c.wait_within(Duration::from_secs(30));
    assert!(out.status.success(), "{}", stderr(&out));
    let mut want = Vec::new();
    for m in ["alpha", "", "Send Message[2]"] {
        let mut rec = m.as_bytes().to_vec();
        rec.resize(80, 0);
        want.extend(rec);
    }
    assert_eq!(out.stdout, want);
    drop(fifo);
}

#[test]
fn recv_timeout_fails_with_a_clear_message() {
    let dir = TestDir::new("cli");
    let f = dir.join("f");
    let _fifo = ipcx::fifo::Fifo::create(&f, 0o600).unwrap();
    let t = Instant::now();
    let o = run(ipcx().args([
        "recv",
        &format!("fifo:{}", f.display()),
        "--count",
        "1",
        "--timeout",
        "300ms",
    ]));
    assert!(t.elapsed() >= Duration::from_millis(290));
    expect_error(&o, "timed out after 0 of 1 message(s)");
}

#[test]
fn bad_input_gives_one_clear_line_and_leaves_nothing() {
    let dir = TestDir::new("cli");
    let regular = dir.join("regular");
    std::fs::write(&regular, b"data").unwrap();
    let link = dir.join("link");
    std::os::unix::fs::symlink(dir.join("target.fifo"), &link).unwrap();
    let _target = ipcx::fifo::Fifo::create(dir.join("target.fifo"), 0o600).unwrap();
    let before = dir_names(dir.path());
    let cases: Vec<(Vec<String>, &str)> = vec![
        (vec!["send".into(), "bogus:/x".into(), "m".into()], "unknown scheme `bogus`"),
        (vec!["send".into(), "fifo".into(), "m".into()], "expected SCHEME:NAME"),
        (vec!["recv".into(), "fifo:/x?mode=9".into()], "octal"),
        (vec!["recv".into(), "tcp:host".into()], "port is missing"),
        (
            vec!["send".into(), format!("fifo:{}", dir.join("missing").display()), "m".into()],
            "no FIFO at this path",
        ),
        (
            vec!["recv".into(), format!("fifo:{}", regular.display())],
            "is a regular file, not a FIFO",
        ),
        (
            vec!["recv".into(), format!("fifo:{}", link.display()), "--create".into()],
            "symbolic link",
        ),
        (vec!["send".into(), format!("fifo:{}", link.display()), "m".into()], "symbolic link"),
        (
            vec![
                "recv".into(),
                format!("posix-mq:/{}", ipcx_tests::unique("nope")),
                "--count".into(),
                "1".into(),
            ],
            "no POSIX queue has this name",
        ),
        (vec!["demo".into(), "carrier-pigeon".into()], "unknown mechanism"),
    ];
    for (args, want) in cases {
        let o = run(ipcx().args(&args));
        expect_error(&o, want);
    }
    assert_eq!(dir_names(dir.path()), before, "a failed command leaves nothing behind");
    assert_eq!(std::fs::read(&regular).unwrap(), b"data", "a regular file is never touched");
}

#[test]
fn permission_denied_for_another_user() {
    let dir = TestDir::new("cli");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let f = dir.join("private.fifo");
    let _fifo = ipcx::fifo::Fifo::create(&f, 0o600).unwrap();
    let o = run(ipcx().args(["recv", &format!("fifo:{}", f.display())]).uid(65534).gid(65534));
    expect_error(&o, "Permission denied");
    assert!(stderr(&o).contains("0600"), "the hint names the mode: {}", stderr(&o));
}

fn recv_from_bytes(bytes: &[u8], extra: &[&str]) -> Output {
    let mut child = ipcx()
        .args(["recv", "pipe:stdin"])
        .args(extra)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(bytes).unwrap();
    drop(stdin);
    let mut g = ipcx_tests::ChildGuard(Some(child));
    g.wait_within(Duration::from_secs(30))
}

#[test]
fn truncated_and_oversized_frames_are_refused() {
    // A header announcing 100 bytes, then only 10.
    let mut truncated = 100u32.to_le_bytes().to_vec();
    truncated.extend_from_slice(&[1; 10]);
    let o = recv_from_bytes(&truncated, &[]);
    expect_error(&o, "ended inside a message: expected 100 bytes, got 10");

    // A header announcing 4 GiB: refused before allocating.
    let o = recv_from_bytes(&u32::MAX.to_le_bytes(), &[]);
    expect_error(&o, "over this receiver's limit of 16777216 bytes");

    // A configured maximum is honoured too.
    let mut frame = 200u32.to_le_bytes().to_vec();
    frame.extend_from_slice(&[0; 200]);
    let o = recv_from_bytes(&frame, &["--count", "1"]);
    assert!(o.status.success());
    let mut c = ipcx()
        .args(["recv", "pipe:stdin?max=100"])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    c.stdin.take().unwrap().write_all(&frame).unwrap();
    let o = ipcx_tests::ChildGuard(Some(c)).wait_within(Duration::from_secs(30));
    expect_error(&o, "limit of 100 bytes");
}

#[test]
fn a_closed_stdout_ends_recv_quietly() {
    // Many length-prefixed messages on stdin; stdout's reader goes away at once.
    let mut input = Vec::new();
    for i in 0..100_000u32 {
        let m = format!("message {i}");
        input.extend_from_slice(&(m.len() as u32).to_le_bytes());
        input.extend_from_slice(m.as_bytes());
    }
    let (r, w) = ipcx::sys::pipe().unwrap();
    drop(r);
    let mut child = ipcx()
        .args(["recv", "pipe:stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::from(w))
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let _ = stdin.write_all(&input);
    drop(stdin);
    let o = ipcx_tests::ChildGuard(Some(child)).wait_within(Duration::from_secs(30));
    assert!(o.status.success(), "exit {:?}: {}", o.status, stderr(&o));
    assert_eq!(stderr(&o), "", "no error text for a closed stdout");
}

#[test]
fn send_reads_stdin_per_framing() {
    // fixed:4 input splitting, length framing on the wire, printed as lines.
    let mut c = ipcx()
        .args(["send", "pipe:stdout", "--framing", "fixed:4"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    c.stdin.take().unwrap().write_all(b"abcdefgh").unwrap();
    let o = ipcx_tests::ChildGuard(Some(c)).wait_within(Duration::from_secs(30));
    assert!(o.status.success());
    assert_eq!(o.stdout, b"\x04\0\0\0abcd\x04\0\0\0efgh");
}

#[test]
fn demos_run_both_sides_and_explain() {
    let o = run(ipcx().args(["demo", "pipe"]));
    assert!(o.status.success(), "{}", stderr(&o));
    let s = String::from_utf8_lossy(&o.stdout);
    assert!(s.contains("from its child") && s.contains("Hello, world!"), "{s}");
    assert!(s.contains("What happened"), "{s}");

    let o = run(ipcx().args(["demo", "fifo"]));
    assert!(o.status.success(), "{}", stderr(&o));
    let s = String::from_utf8_lossy(&o.stdout);
    for i in 0..3 {
        assert!(s.contains(&format!("80-byte record: Send Message[{i}]")), "{s}");
    }
    assert!(s.contains("What happened"), "{s}");
}

#[test]
fn help_lists_the_verbs() {
    let o = run(ipcx().arg("--help"));
    let s = String::from_utf8_lossy(&o.stdout);
    for verb in ["send", "recv", "demo", "bench"] {
        assert!(s.contains(verb), "{s}");
    }
    assert!(!s.contains("bench-peer"), "internal verbs stay hidden");
}
