//! `ipcx bench` as a user runs it: a quick run whose JSON must match the printed tables,
//! and bad input refused before any work.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use ipcx_tests::{spawn, TestDir};
use serde_json::Value;

fn ipcx() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ipcx"))
}

fn run(cmd: &mut Command, limit: Duration) -> Output {
    let mut g = spawn(cmd.stdin(Stdio::null()));
    g.wait_within(limit)
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

// The report's number formats (pinned to known figures by the file's own unit test).
#[path = "../src/bench/units.rs"]
#[allow(dead_code)]
mod units;
use units::{fmt_ns, fmt_rate};

/// The lanes the binary knows, from its own error message for an unknown one.
fn known_lanes() -> Vec<String> {
    let o = run(ipcx().args(["bench", "--lanes", "no-such-lane"]), Duration::from_secs(20));
    let e = text(&o.stderr);
    let list = e.split("expected one of ").nth(1).unwrap_or_else(|| panic!("no lane list: {e}"));
    list.trim().split(", ").map(str::to_owned).collect()
}

fn f(v: &Value, k: &str) -> f64 {
    v[k].as_f64().unwrap_or_else(|| panic!("{k} missing in {v}"))
}

#[test]
fn quick_run_reports_every_lane_and_its_json_matches_the_table() {
    let dir = TestDir::new("bench");
    let (json, svg) = (dir.join("out.json"), dir.join("out.svg"));
    let t = Instant::now();
    let o = run(
        ipcx()
            .args(["bench", "--quick", "--sizes", "64", "--budget-ms", "20", "--json"])
            .arg(&json)
            .arg("--svg")
            .arg(&svg),
        Duration::from_secs(120),
    );
    let out = text(&o.stdout);
    assert!(o.status.success(), "bench failed: {}\n{out}", text(&o.stderr));
    // Not a terminal: no progress bar.
    assert!(!text(&o.stderr).contains("\r\x1b[2K"), "stderr: {}", text(&o.stderr));
    eprintln!("quick bench took {:?}", t.elapsed());

    // The header describes the machine and the method.
    assert!(out.starts_with("ipcx bench: "), "{out}");
    assert!(out.contains("Linux "), "{out}");
    assert!(out.contains("limits: pipe-max-size="), "{out}");
    assert!(out.contains("pinned") && out.contains("warm-up"), "{out}");

    let report: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap())
        .unwrap_or_else(|e| panic!("the JSON report does not parse: {e}"));
    assert_eq!(report["sizes"], serde_json::json!([64]));
    assert!(report["machine"]["cores"].as_u64().unwrap() >= 1);
    assert!(report["method"]["pinned"].is_boolean());
    let lanes = report["lanes"].as_array().expect("lanes");
    let lines: Vec<&str> = out.lines().collect();
    let mut measured = 0;
    for lane in known_lanes() {
        for imp in ["ipcx", "raw"] {
            let r = lanes
                .iter()
                .find(|r| r["mechanism"] == lane.as_str() && r["implementation"] == imp)
                .unwrap_or_else(|| panic!("{lane} {imp} missing from the JSON"));
            let row = lines
                .iter()
                .find(|l| {
                    l.split_whitespace().next() == Some(lane.as_str())
                        && l.contains(&format!(" {imp} "))
                })
                .unwrap_or_else(|| panic!("no printed row for {lane} {imp}:\n{out}"));
            if let Some(why) = r["skipped"].as_str() {
                assert!(!why.trim().is_empty(), "{lane} {imp} skipped without a reason");
                // At 64 B no kernel limit refuses a lane: a failure is a lost message or
                // a stall (say the log lane's reader falling behind its retention).
                assert!(!why.starts_with("failed:"), "{lane} {imp} failed: {why}");
                assert!(
                    row.contains(&format!("skipped: {}", why.lines().next().unwrap())),
                    "{row}"
                );
                continue;
            }
            measured += 1;
            let p50 = f(r, "p50_ns");
            let mps = f(r, "msgs_per_s");
            assert!(p50 > 0.0 && mps > 0.0, "{lane} {imp}: {r}");
            assert!(f(r, "p99_ns") >= p50 && f(r, "max_ns") >= f(r, "p999_ns"), "{r}");
            assert_eq!(r["latency_reps"].as_array().unwrap().len(), 3, "quick: 3 repetitions");
            for want in [
                fmt_ns(p50),
                fmt_ns(f(r, "p99_ns")),
                fmt_ns(f(r, "p999_ns")),
                fmt_ns(f(r, "max_ns")),
                fmt_rate(mps),
                format!("{:.1}", f(r, "mb_per_s")),
                format!("{:.0}%/{:.0}%", f(r, "cpu_sender_pct"), f(r, "cpu_receiver_pct")),
            ] {
                assert!(
                    row.contains(&format!(" {want} ")),
                    "`{want}` not in the row of {lane} {imp}:\n{row}"
                );
            }
            let (lo, hi) = (&r["p50_spread_ns"][0], &r["p50_spread_ns"][1]);
            let spread =
                format!("[{}-{}]", fmt_ns(lo.as_f64().unwrap()), fmt_ns(hi.as_f64().unwrap()));
            assert!(row.contains(&spread), "{spread} not in {row}");
            if imp == "ipcx" {
                if let Some(ratio) = report["ratios"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|x| x["mechanism"] == lane.as_str())
                {
                    let want = format!("{:.2}x", f(ratio, "latency_ratio"));
                    assert!(row.contains(&want), "{want} not in {row}");
                }
            }
        }
    }
    assert!(measured > 0, "no lane measured anything:\n{out}");
    for rec in report["recommendations"].as_array().unwrap() {
        assert!(out.contains(rec.as_str().unwrap()), "{rec} not printed");
    }
    assert!(out.contains("request/reply on this machine: "), "{out}");

    let chart = std::fs::read_to_string(&svg).expect("the SVG charts");
    assert!(chart.starts_with("<svg"), "not an SVG");
    assert!(chart.contains("Round trip") && chart.contains("throughput"), "chart titles");
    assert!(chart.contains("64 B ipcx"), "legend");
}

/// A bad invocation fails at once with a clear error, prints nothing on standard output
/// (no header, no measurement) and leaves no file behind.
fn refused(args: &[&str], dir: &Path, want: &str) {
    let t = Instant::now();
    let o = run(ipcx().args(args), Duration::from_secs(20));
    let e = text(&o.stderr);
    assert!(!o.status.success(), "{args:?} succeeded");
    assert!(e.contains(want), "{args:?}: expected `{want}` in: {e}");
    assert!(o.stdout.is_empty(), "{args:?} did work: {}", text(&o.stdout));
    assert!(t.elapsed() < Duration::from_secs(5), "{args:?} took {:?}", t.elapsed());
    assert_eq!(
        std::fs::read_dir(dir).unwrap().count(),
        0,
        "{args:?} left files in {}",
        dir.display()
    );
}

#[test]
fn bad_input_is_refused_before_any_work() {
    let dir = TestDir::new("bench-bad");
    let ok = dir.join("ok.json");
    let ok = ok.to_str().unwrap();
    let missing = dir.join("no/such/dir/out");
    let missing = missing.to_str().unwrap();
    refused(
        &["bench", "--lanes", "pipe,nope"],
        dir.path(),
        "unknown lane `nope`; expected one of pipe",
    );
    refused(&["bench", "--sizes", "0"], dir.path(), "is not a byte count");
    refused(&["bench", "--sizes", "64,lots"], dir.path(), "size `lots` is not a byte count");
    refused(&["bench", "--sizes", "17M"], dir.path(), "from 1 to 16M");
    refused(&["bench", "--json", missing], dir.path(), "cannot write the JSON report to");
    refused(
        &["bench", "--json", ok, "--svg", missing],
        dir.path(),
        "cannot write the SVG charts to",
    );
    refused(&["bench", "--budget-ms", "0"], dir.path(), "budget-ms");
    refused(&["bench", "--frobnicate"], dir.path(), "--frobnicate");
}

/// On a terminal, a progress bar is drawn on standard error (and erased at the end).
/// `script(1)` gives the command a pseudo-terminal.
#[test]
fn progress_bar_on_a_terminal() {
    if Command::new("script").arg("--version").output().is_err() {
        eprintln!("skipped: script(1) from util-linux is not installed");
        return;
    }
    let cmd = format!(
        "{} bench --quick --lanes pipe --sizes 64 --reps 2 --budget-ms 5",
        env!("CARGO_BIN_EXE_ipcx")
    );
    let o = run(Command::new("script").args(["-qec", &cmd, "/dev/null"]), Duration::from_secs(60));
    let out = text(&o.stdout);
    assert!(o.status.success(), "{out}");
    assert!(out.contains("\r\x1b[2K[#"), "no progress bar on a terminal: {out:?}");
    assert!(out.contains("pipe raw 64 B"), "the bar names the lane: {out:?}");
    assert!(out.contains("== 64 B messages =="), "{out}");
}

/// A peer that never answers is stopped after the stall limit and its lane reported as
/// failed, with the reason; the run goes on and ends.
#[test]
fn a_stalled_lane_is_stopped_and_reported() {
    let t = Instant::now();
    let o = run(
        ipcx()
            .args(["bench", "--lanes", "pipe", "--sizes", "64", "--reps", "1", "--budget-ms", "5"])
            .args(["--stall-ms", "300"])
            .env("IPCX_BENCH_PEER_HANG", "1"),
        Duration::from_secs(60),
    );
    let out = text(&o.stdout);
    assert!(o.status.success(), "{}\n{out}", text(&o.stderr));
    for imp in ["ipcx", "raw"] {
        let row = out
            .lines()
            .find(|l| l.starts_with("pipe ") && l.contains(&format!(" {imp} ")))
            .unwrap_or_else(|| panic!("no {imp} row:\n{out}"));
        assert!(row.contains("skipped: failed: no result within 0.3 s"), "{row}");
    }
    assert!(t.elapsed() < Duration::from_secs(20), "took {:?}", t.elapsed());
}

/// The measuring process stays single-threaded while it measures: its watchdog is a
/// process of its own. (A thread made every system call of the sender dearer: glibc's
/// cancellation bookkeeping and the kernel's file reference of a multi-threaded process.)
#[test]
fn the_measuring_process_has_one_thread() {
    let mut g = spawn(
        ipcx()
            .args(["bench", "--lanes", "pipe", "--sizes", "64", "--reps", "2"])
            .args(["--budget-ms", "400"])
            .stdin(Stdio::null())
            .stdout(Stdio::null()),
    );
    let tasks = format!("/proc/{}/task", g.id());
    let (mut most, mut looks) = (0, 0);
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(60) {
        match std::fs::read_dir(&tasks) {
            Ok(d) => {
                most = most.max(d.count());
                looks += 1;
            }
            Err(_) => break,
        }
        // Done once it is a zombie (state Z, after the command name in parentheses).
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", g.id())).unwrap_or_default();
        if stat.rsplit(')').next().is_none_or(|r| r.trim_start().starts_with('Z')) {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let o = g.wait_within(Duration::from_secs(60));
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(looks > 20, "the run ended before it could be looked at ({looks} looks)");
    assert_eq!(most, 1, "the measuring process ran {most} threads");
}

/// A measuring process still stuck after its peer was stopped is given up: the watchdog
/// says which lane, removes the run's directory and ends the measuring process.
/// (Stand-ins: two `sleep`s for the peer and the measuring process; the watchdog's
/// standard input stays open, as when the measurement never reports that it is over.)
#[test]
fn a_run_still_stuck_after_its_peer_was_stopped_is_given_up() {
    use std::os::unix::process::ExitStatusExt;
    let dir = TestDir::new("bench-giveup");
    let run_dir = dir.join("run");
    std::fs::create_dir(&run_dir).unwrap();
    std::fs::write(run_dir.join("segment"), b"left by the lane").unwrap();
    let mut peer = spawn(Command::new("sleep").arg("600"));
    let mut parent = spawn(Command::new("sleep").arg("600"));
    let (p, q) = (peer.id().to_string(), parent.id().to_string());
    let o = spawn(
        ipcx()
            .args(["bench-watchdog", "--peer", &p, "--parent", &q, "--limit-ms", "200"])
            .args(["--grace-ms", "300", "--what", "the stuck lane", "--dir"])
            .arg(&run_dir)
            .stdin(Stdio::piped()),
    )
    .wait_within(Duration::from_secs(30));
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert_eq!(text(&o.stdout).trim(), "stalled");
    assert!(err.contains("the stuck lane made no progress"), "{err}");
    assert!(!run_dir.exists(), "the run's directory is removed");
    let t = Duration::from_secs(10);
    assert_eq!(peer.wait_within(t).status.signal(), Some(9), "the peer is killed");
    assert_eq!(parent.wait_within(t).status.signal(), Some(15), "the measuring process is ended");
}
