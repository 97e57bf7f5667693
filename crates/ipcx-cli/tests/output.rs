//! A closed or failing standard output, as `ipcx demo mq | head -1` or `> /dev/full` give
//! it: every command that prints ends without a panic (exit 0 for a reader that left, as
//! `cat` does; exit 1 and one `ipcx: ...` line for any other write error), and a demo
//! reaps its children and removes every file, directory and kernel object it made.

use std::fs::File;
use std::os::fd::OwnedFd;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use ipcx_tests::{dir_names, unique, ChildGuard, TestDir};

const DEMOS: [&str; 6] = ["pipe", "fifo", "mq", "shm", "socket", "mmap"];

/// The demo's own environment: its temporary files in `tmp`, its registry beside them, and
/// a marker its children inherit, to find any of them still running afterwards.
fn demo(mechanism: &str, tmp: &Path, marker: &str) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ipcx"));
    c.args(["demo", mechanism])
        .env("TMPDIR", tmp)
        .env("IPCX_REGISTRY", tmp.join("registry"))
        .env("IPCX_TEST_MARKER", marker)
        .stdin(Stdio::null())
        .stderr(Stdio::piped());
    c
}

/// Run with `stdout` as standard output; at most 60 seconds.
fn run_with_stdout(cmd: &mut Command, stdout: impl Into<Stdio>) -> (u32, Output) {
    cmd.stdout(stdout);
    let mut g = ChildGuard(Some(cmd.spawn().expect("spawn ipcx")));
    let pid = g.id();
    (pid, g.wait_within(Duration::from_secs(60)))
}

/// A pipe whose reader has already gone: every write gets EPIPE.
fn closed_pipe() -> OwnedFd {
    let (r, w) = ipcx::pipe::pipe_fds().expect("pipe");
    drop(r);
    w
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Pids of running processes that carry `marker` in their environment.
fn processes_with(marker: &str) -> Vec<String> {
    let want = format!("IPCX_TEST_MARKER={marker}");
    let Ok(rd) = std::fs::read_dir("/proc") else { return Vec::new() };
    rd.flatten()
        .filter(|e| e.file_name().to_string_lossy().bytes().all(|b| b.is_ascii_digit()))
        .filter(|e| {
            std::fs::read(e.path().join("environ"))
                .is_ok_and(|env| env.split(|&b| b == 0).any(|v| v == want.as_bytes()))
        })
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}

/// Nothing of demo process `pid` is left: files and directories in `tmp` (the registry
/// included), POSIX and System V objects named after its pid, processes it started.
fn assert_nothing_left(what: &str, pid: u32, tmp: &Path, marker: &str) {
    assert_eq!(dir_names(tmp), Vec::<String>::new(), "{what}: left in $TMPDIR");
    let tag = format!("ipcx-demo-{pid}");
    if let Ok(rd) = std::fs::read_dir("/dev/shm") {
        let left: Vec<String> = rd
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(&format!("{tag}-")))
            .collect();
        assert!(left.is_empty(), "{what}: left in /dev/shm: {left:?}");
    }
    assert_eq!(
        ipcx::sys::ops::mq_stat(&format!("/{tag}")).err(),
        Some(ipcx::sys::Errno(libc::ENOENT)),
        "{what}: POSIX queue /{tag} left"
    );
    let key = 0x4950_0000 | (pid as i32 & 0xffff);
    assert_eq!(
        ipcx::sys::ops::msg_id(key).err(),
        Some(ipcx::sys::Errno(libc::ENOENT)),
        "{what}: System V queue {key:#x} left"
    );
    assert_eq!(processes_with(marker), Vec::<String>::new(), "{what}: children still running");
}

#[test]
fn demos_end_quietly_when_the_reader_of_their_output_is_gone() {
    for m in DEMOS {
        let dir = TestDir::new(&format!("out-closed-{m}"));
        let marker = unique("closed");
        let (pid, o) = run_with_stdout(&mut demo(m, dir.path(), &marker), closed_pipe());
        let err = stderr(&o);
        assert!(!err.contains("panicked"), "demo {m}: {err}");
        assert_eq!(o.status.code(), Some(0), "demo {m}: {err}");
        assert_eq!(err, "", "demo {m}: a closed output is no error");
        assert_nothing_left(&format!("demo {m}"), pid, dir.path(), &marker);
    }
}

#[test]
fn demos_cut_off_after_their_first_line_end_quietly() {
    use std::io::BufRead;
    for m in DEMOS {
        let dir = TestDir::new(&format!("out-head-{m}"));
        let marker = unique("head");
        // As `ipcx demo M | head -1`: one line read, then the pipe closed.
        let mut g = ChildGuard(Some(
            demo(m, dir.path(), &marker).stdout(Stdio::piped()).spawn().expect("spawn ipcx"),
        ));
        let pid = g.id();
        let out = g.0.as_mut().and_then(|c| c.stdout.take()).expect("piped stdout");
        let mut first = String::new();
        std::io::BufReader::new(out).read_line(&mut first).expect("read the first line");
        assert!(first.ends_with('\n'), "demo {m}: {first:?}");
        let o = g.wait_within(Duration::from_secs(60));
        let err = stderr(&o);
        assert!(!err.contains("panicked"), "demo {m}: {err}");
        assert_eq!(o.status.code(), Some(0), "demo {m}: {err}");
        assert_nothing_left(&format!("demo {m} | head -1"), pid, dir.path(), &marker);
    }
}

fn dev_full() -> Option<File> {
    match File::options().write(true).open("/dev/full") {
        Ok(f) => Some(f),
        Err(e) => {
            eprintln!("skipped: /dev/full: {e}");
            None
        }
    }
}

/// One line on standard error, `ipcx: writing to standard output: ...`, and exit 1.
fn assert_one_line_error(what: &str, o: &Output) {
    let err = stderr(o);
    assert!(!err.contains("panicked"), "{what}: {err}");
    assert_eq!(o.status.code(), Some(1), "{what}: {err}");
    assert_eq!(err.lines().count(), 1, "{what}: {err}");
    assert!(
        err.starts_with("ipcx: writing to standard output: No space left on device"),
        "{what}: {err}"
    );
}

#[test]
fn demos_report_a_full_output_in_one_line_and_clean_up() {
    for m in DEMOS {
        let Some(full) = dev_full() else { return };
        let dir = TestDir::new(&format!("out-full-{m}"));
        let marker = unique("full");
        let (pid, o) = run_with_stdout(&mut demo(m, dir.path(), &marker), full);
        assert_one_line_error(&format!("demo {m} > /dev/full"), &o);
        assert_nothing_left(&format!("demo {m} > /dev/full"), pid, dir.path(), &marker);
    }
}

#[test]
fn ls_and_rm_end_cleanly_on_a_closed_or_full_output() {
    let dir = TestDir::new("out-ops");
    let reg = dir.join("registry");
    let ipcx = || {
        let mut c = Command::new(env!("CARGO_BIN_EXE_ipcx"));
        c.env("IPCX_REGISTRY", &reg).stdin(Stdio::null()).stderr(Stdio::piped());
        c
    };
    // A kept log, so that `ls` lists something and `rm --stale` has a line to say.
    let log = format!("mmap:{}", dir.join("a.log").display());
    let o = ipcx().args(["send", &log, "x"]).stdout(Stdio::null()).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let cmds: [&[&str]; 4] =
        [&["ls"], &["ls", "--json"], &["rm", "--stale", "--dry-run"], &["rm", "--stale"]];
    for args in cmds {
        let what = format!("ipcx {}", args.join(" "));
        let (_, o) = run_with_stdout(ipcx().args(args), closed_pipe());
        assert!(!stderr(&o).contains("panicked"), "{what}: {}", stderr(&o));
        assert_eq!(o.status.code(), Some(0), "{what} | (closed): {}", stderr(&o));
        if let Some(full) = dev_full() {
            let (_, o) = run_with_stdout(ipcx().args(args), full);
            assert_one_line_error(&format!("{what} > /dev/full"), &o);
        }
    }
    assert!(dir.join("a.log").exists(), "a kept log is left by --stale");
    let o = ipcx().args(["rm", "--force", &log]).stdout(Stdio::null()).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!reg.exists());
}

#[test]
fn demo_pipe_names_the_system_call_the_child_used() {
    // The sender writes a small frame's header and payload with one write(2)
    // (docs/PROTOCOL.md); writev(2) is only for frames over 2 KiB.
    let o = Command::new(env!("CARGO_BIN_EXE_ipcx")).args(["demo", "pipe"]).output().unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!out.contains("writev"), "{out}");
    assert!(out.contains("its 4-byte header and payload together in one write(2)"), "{out}");
}

#[test]
fn bench_reports_a_full_or_closed_output_without_a_panic() {
    let dir = TestDir::new("out-bench");
    let bench = || {
        let mut c = Command::new(env!("CARGO_BIN_EXE_ipcx"));
        c.args(["bench", "--quick", "--sizes", "64", "--lanes", "pipe", "--reps", "1"])
            .args(["--budget-ms", "20"])
            .env("TMPDIR", dir.path())
            .stdin(Stdio::null())
            .stderr(Stdio::piped());
        c
    };
    // A full output fails at the header, before any measurement.
    if let Some(full) = dev_full() {
        let (_, o) = run_with_stdout(&mut bench(), full);
        assert_one_line_error("bench > /dev/full", &o);
    }
    // A reader that left: the run ends quietly, as `cat` would.
    let (_, o) = run_with_stdout(&mut bench(), closed_pipe());
    assert!(!stderr(&o).contains("panicked"), "{}", stderr(&o));
    assert_eq!(o.status.code(), Some(0), "bench | (closed): {}", stderr(&o));
    assert_eq!(dir_names(dir.path()), Vec::<String>::new(), "bench left files in $TMPDIR");
}
