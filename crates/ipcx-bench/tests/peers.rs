//! `ipcx-peers` end to end, small: every lane either gives figures or says why it was
//! skipped, the ratios are printed against the ipcx lane of the same mechanism, and nothing
//! is left in /dev/shm or /tmp. Run with `cargo test -p ipcx-bench` (not part of `cargo
//! test`, which does not build the peer crates).

use std::process::Command;
use std::time::{Duration, Instant};

fn leftovers(pid: u32) -> Vec<String> {
    let mut v = Vec::new();
    for dir in ["/dev/shm", "/tmp", "/tmp/iceoryx2/services"] {
        if let Ok(rd) = std::fs::read_dir(dir) {
            for e in rd.flatten() {
                let n = e.file_name().to_string_lossy().into_owned();
                if n.contains(&format!("ipcx-peers-{pid}")) {
                    v.push(format!("{dir}/{n}"));
                }
            }
        }
    }
    v
}

#[test]
fn every_lane_reports_figures_or_a_reason_and_leaves_nothing() {
    let t = Instant::now();
    let child = Command::new(env!("CARGO_BIN_EXE_ipcx-peers"))
        .args(["--sizes", "64", "--reps", "2", "--budget-ms", "20"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run ipcx-peers");
    let pid = child.id();
    let o = child.wait_with_output().unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}\n{out}", String::from_utf8_lossy(&o.stderr));
    assert!(t.elapsed() < Duration::from_secs(120), "took {:?}", t.elapsed());
    let help = Command::new(env!("CARGO_BIN_EXE_ipcx-peers")).arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    let keys: Vec<&str> =
        help.lines().skip(1).filter_map(|l| l.split_whitespace().next()).collect();
    assert!(keys.len() >= 10, "{help}");
    let rows: Vec<&str> = out
        .lines()
        .filter(|l| l.contains(" µs ") || l.contains(" ns ") || l.contains("skipped:"))
        .collect();
    // One row per lane at the one size.
    assert_eq!(rows.len(), keys.len(), "{out}");
    // The peers that need nothing from other branches give figures.
    for peer in [
        "interprocess 2.4 unnamed_pipe",
        "interprocess 2.4 local_socket",
        "ipc-channel",
        "iceoryx2",
        "BusyEvent",
    ] {
        let row = rows.iter().find(|r| r.contains(peer)).unwrap_or_else(|| panic!("{peer}: {out}"));
        assert!(!row.contains("skipped"), "{row}");
    }
    // The pipe peer is compared with ipcx's pipe lane.
    let pipe = rows.iter().find(|r| r.starts_with("interprocess 2.4 unnamed_pipe")).unwrap();
    assert!(pipe.trim_end().ends_with('x'), "no ratio: {pipe}");
    assert!(out.contains("targets (ipcx at least as fast"), "{out}");
    // Each target gives the median ratio and the quartiles of the per-repetition ratios
    // around it: "latency met 0.03x (0.03-0.04), throughput ...".
    let verdict = out
        .lines()
        .find(|l| l.contains("unnamed_pipe") && l.contains("latency "))
        .unwrap_or_else(|| panic!("no verdict for the pipe peer: {out}"));
    for part in verdict.split(", ") {
        let (_, figs) = part.split_once("x (").unwrap_or_else(|| panic!("{verdict}"));
        let m: f64 =
            part[..part.len() - figs.len() - 3].rsplit(' ').next().unwrap().parse().unwrap();
        let (q1, q3) = figs.trim_end_matches(')').split_once('-').unwrap();
        let (q1, q3): (f64, f64) = (q1.parse().unwrap(), q3.parse().unwrap());
        assert!(q1 <= m + 0.005 && m <= q3 + 0.005, "median outside its quartiles: {verdict}");
    }
    // The children are gone and took their objects with them.
    assert_eq!(leftovers(pid), Vec::<String>::new());
}
