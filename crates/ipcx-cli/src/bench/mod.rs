//! `ipcx bench`: latency and throughput of each mechanism between two processes, with
//! ipcx's lane beside a raw lane (the same scenario on the bare system calls) in one run.
//!
//! Each measurement spawns a child (`ipcx bench-peer`, hidden) that opens the other end.
//! Ping-pong: the parent sends a message, the child echoes it, the parent times the round
//! trip into an HDR histogram. Throughput: the parent sends messages for a fixed time, then
//! an end marker; the child acknowledges the count, and the parent divides.
//! Each figure is the median of several repetitions, with their spread.

use std::fs::File;
use std::io::Read;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use hdrhistogram::Histogram;
use serde::Serialize;

mod lane;
mod mmap;
mod mq;
mod shm;
mod socket;
mod stream;

use lane::{Endpoint, Lane};

/// Every lane, in report order.
fn lanes() -> Vec<Box<dyn Lane>> {
    vec![
        Box::new(stream::PipeLane),
        Box::new(stream::FifoLane),
        Box::new(mq::SysvMqLane),
        Box::new(mq::PosixMqLane),
        Box::new(shm::ShmLane { spin: false }),
        Box::new(shm::ShmLane { spin: true }),
        Box::new(shm::CachelineLane),
        Box::new(shm::MemcpyLane),
        Box::new(socket::SocketLane("unix")),
        Box::new(socket::SocketLane("unix-seqpacket")),
        Box::new(socket::SocketLane("tcp")),
        Box::new(mmap::MmapLogLane { sync: false }),
        Box::new(mmap::MmapLogLane { sync: true }),
    ]
}

fn lane_names() -> String {
    lanes().iter().map(|l| l.name()).collect::<Vec<_>>().join(", ")
}

fn find_lane(name: &str) -> Result<Box<dyn Lane>> {
    lanes()
        .into_iter()
        .find(|l| l.name() == name)
        .with_context(|| format!("unknown lane `{name}`; expected one of {}", lane_names()))
}

#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    /// A short run (about a minute on 2 cores): fewer repetitions, shorter measurements.
    #[arg(long)]
    quick: bool,
    /// Message sizes in bytes, comma-separated (K and M suffixes allowed).
    #[arg(long, value_delimiter = ',', value_parser = parse_size, default_value = "64,1K,64K")]
    sizes: Vec<usize>,
    /// Only these mechanisms, comma-separated (default: all).
    #[arg(long, value_delimiter = ',')]
    lanes: Vec<String>,
    /// Repetitions of each measurement (default 3 quick, 5 full).
    #[arg(long)]
    reps: Option<usize>,
    /// Write every figure as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
}

#[derive(clap::Args, Debug)]
pub struct PeerArgs {
    #[arg(long)]
    mechanism: String,
    #[arg(long)]
    raw: bool,
    /// "echo" (ping-pong) or "sink" (throughput).
    #[arg(long)]
    mode: String,
    #[arg(long)]
    size: usize,
    /// The channel the child receives on.
    #[arg(long)]
    a: String,
    /// The channel the child sends on.
    #[arg(long)]
    b: String,
    #[arg(long)]
    cpu: Option<usize>,
}

fn parse_size(s: &str) -> std::result::Result<usize, String> {
    let t = s.trim();
    let (num, mult) = match t.chars().last() {
        Some('K' | 'k') => (&t[..t.len() - 1], 1024),
        Some('M' | 'm') => (&t[..t.len() - 1], 1024 * 1024),
        _ => (t, 1),
    };
    match num.parse::<usize>() {
        Ok(n) if n > 0 && n.checked_mul(mult).is_some_and(|b| b <= 16 << 20) => Ok(n * mult),
        _ => Err(format!("size `{s}` is not a byte count from 1 to 16M (like 64, 1K, 64K)")),
    }
}

/// The child side: echo every message, or count them and acknowledge at the end.
pub fn peer(args: PeerArgs) -> Result<()> {
    if let Some(cpu) = args.cpu {
        ipcx::sys::pin_to_cpu(cpu);
    }
    let lane = find_lane(&args.mechanism)?;
    let mut end = lane.open_child(&args.a, &args.b, args.raw, args.size)?;
    let mut buf = Vec::with_capacity(args.size);
    let cpu0 = ipcx::sys::cpu_time();
    let mut count = 0u64;
    match args.mode.as_str() {
        "echo" => {
            while end.recv(&mut buf)? {
                end.send(&buf)?;
                count += 1;
            }
        }
        "sink" => {
            while end.recv(&mut buf)? {
                count += 1;
            }
            end.send(&vec![1u8; args.size])?;
        }
        m => bail!("unknown peer mode {m}"),
    }
    let cpu = ipcx::sys::cpu_time() - cpu0;
    println!("{} {}", count, cpu.as_nanos());
    Ok(())
}

struct Run {
    child: std::process::Child,
    end: Box<dyn Endpoint>,
    _guard: Box<dyn std::any::Any>,
}

fn start(
    lane: &dyn Lane,
    raw: bool,
    mode: &str,
    size: usize,
    dir: &Path,
    tag: &str,
    cpus: &Pinning,
) -> Result<Run> {
    let mech = lane.name();
    let s = lane.setup(dir, tag, raw, size)?;
    let exe = std::env::current_exe()?;
    let mut cmd = Command::new(exe);
    cmd.args(["bench-peer", "--mechanism", mech, "--mode", mode, "--size", &size.to_string()]);
    cmd.args(["--a", &s.child_a, "--b", &s.child_b]);
    if raw {
        cmd.arg("--raw");
    }
    if let Some(c) = cpus.child {
        cmd.args(["--cpu", &c.to_string()]);
    }
    cmd.stdout(Stdio::piped());
    for (fd, target) in &s.child_fds {
        ipcx::sys::hand_fd_to_child(&mut cmd, fd.as_raw_fd(), *target);
    }
    let child = cmd.spawn().context("starting the benchmark peer")?;
    drop(s.child_fds);
    let end = (s.open_parent)()?;
    Ok(Run { child, end, _guard: s.guard })
}

fn finish(run: Run) -> Result<(u64, Duration)> {
    let Run { mut child, end, _guard } = run;
    drop(end);
    let mut out = String::new();
    child.stdout.take().context("peer stdout")?.read_to_string(&mut out)?;
    let status = child.wait()?;
    if !status.success() {
        bail!("the benchmark peer failed ({status})");
    }
    let mut it = out.split_whitespace().map(|w| w.parse::<u64>());
    match (it.next(), it.next()) {
        (Some(Ok(n)), Some(Ok(ns))) => Ok((n, Duration::from_nanos(ns))),
        _ => bail!("the benchmark peer printed `{out}`, not its counts"),
    }
}

/// Latency figures of one repetition, in nanoseconds.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Latency {
    pub p50_ns: u64,
    pub p99_ns: u64,
    pub p999_ns: u64,
    pub max_ns: u64,
    pub samples: u64,
}

/// Throughput figures of one repetition.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Throughput {
    pub msgs_per_s: f64,
    pub mb_per_s: f64,
    pub cpu_sender_s: f64,
    pub cpu_receiver_s: f64,
    pub messages: u64,
}

fn ping_pong(run: &mut Run, size: usize, warmup: Duration, budget: Duration) -> Result<Latency> {
    let msg = vec![0x5au8; size];
    let mut buf = Vec::with_capacity(size);
    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3)?;
    let t0 = Instant::now();
    let mut warm = true;
    loop {
        let s = Instant::now();
        run.end.send(&msg)?;
        if !run.end.recv(&mut buf)? {
            bail!("the peer stopped echoing");
        }
        let e = s.elapsed();
        if buf.len() != size {
            bail!("echo of {} bytes came back as {}", size, buf.len());
        }
        if warm {
            if t0.elapsed() >= warmup {
                warm = false;
            }
            continue;
        }
        hist.saturating_record(e.as_nanos() as u64);
        if t0.elapsed() >= warmup + budget && hist.len() >= 100 {
            break;
        }
    }
    run.end.finish()?;
    Ok(Latency {
        p50_ns: hist.value_at_quantile(0.5),
        p99_ns: hist.value_at_quantile(0.99),
        p999_ns: hist.value_at_quantile(0.999),
        max_ns: hist.max(),
        samples: hist.len(),
    })
}

fn one_way(run: &mut Run, size: usize, budget: Duration) -> Result<(u64, Duration, Duration)> {
    let msg = vec![0xa5u8; size];
    let mut buf = Vec::with_capacity(size);
    let cpu0 = ipcx::sys::cpu_time();
    let t0 = Instant::now();
    let mut sent = 0u64;
    // Check the clock every few messages: a clock read per message would be measured too.
    while sent % 64 != 0 || t0.elapsed() < budget {
        run.end.send(&msg)?;
        sent += 1;
    }
    run.end.finish()?;
    if !run.end.recv(&mut buf)? {
        bail!("the peer did not acknowledge");
    }
    Ok((sent, t0.elapsed(), ipcx::sys::cpu_time() - cpu0))
}

struct Pinning {
    child: Option<usize>,
    note: String,
}

fn pin() -> Pinning {
    let cpus = ipcx::sys::allowed_cpus();
    if cpus.len() >= 2 && ipcx::sys::pin_to_cpu(cpus[0]) {
        Pinning {
            child: Some(cpus[1]),
            note: format!("sender pinned to CPU {}, peer to CPU {}", cpus[0], cpus[1]),
        }
    } else {
        Pinning { child: None, note: format!("not pinned: only {} CPU(s) allowed", cpus.len()) }
    }
}

/// The median and the spread (min, max) of a set of figures.
pub fn median_spread(v: &[f64]) -> (f64, f64, f64) {
    if v.is_empty() {
        return (f64::NAN, f64::NAN, f64::NAN);
    }
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    let n = s.len();
    let med = if n % 2 == 1 { s[n / 2] } else { (s[n / 2 - 1] + s[n / 2]) / 2.0 };
    (med, s[0], s[n - 1])
}

#[derive(Debug, Serialize)]
struct LaneResult {
    mechanism: String,
    implementation: &'static str,
    size: usize,
    skipped: Option<String>,
    latency_reps: Vec<Latency>,
    throughput_reps: Vec<Throughput>,
    p50_ns: f64,
    p50_spread_ns: (f64, f64),
    p99_ns: f64,
    p999_ns: f64,
    max_ns: f64,
    msgs_per_s: f64,
    msgs_per_s_spread: (f64, f64),
    mb_per_s: f64,
}

#[derive(Debug, Serialize)]
struct Report {
    machine: Machine,
    pinning: String,
    quick: bool,
    reps: usize,
    sizes: Vec<usize>,
    lanes: Vec<LaneResult>,
    ratios: Vec<Ratio>,
}

#[derive(Debug, Serialize)]
struct Ratio {
    mechanism: String,
    size: usize,
    /// ipcx median latency / raw median latency (1.0 = equal; lower is better).
    latency_ratio: f64,
    /// ipcx throughput / raw throughput (1.0 = equal; higher is better).
    throughput_ratio: f64,
}

#[derive(Debug, Serialize)]
struct Machine {
    cpu: String,
    cores: usize,
    kernel: String,
    limits: Vec<(String, String)>,
}

fn machine() -> Machine {
    let read = |p: &str| {
        std::fs::read_to_string(p).map(|s| s.trim().to_owned()).unwrap_or_else(|_| "?".into())
    };
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let limits = [
        "/proc/sys/fs/pipe-max-size",
        "/proc/sys/kernel/msgmax",
        "/proc/sys/kernel/msgmnb",
        "/proc/sys/kernel/msgmni",
        "/proc/sys/fs/mqueue/msg_max",
        "/proc/sys/fs/mqueue/msgsize_max",
        "/proc/sys/kernel/shmmax",
        "/proc/sys/net/core/wmem_default",
    ]
    .iter()
    .map(|p| (p.trim_start_matches("/proc/sys/").to_owned(), read(p)))
    .collect();
    Machine {
        cpu,
        cores: ipcx::sys::allowed_cpus().len(),
        kernel: read("/proc/sys/kernel/osrelease"),
        limits,
    }
}

pub fn run(args: BenchArgs) -> Result<()> {
    let lanes: Vec<Box<dyn Lane>> = if args.lanes.is_empty() {
        lanes()
    } else {
        args.lanes.iter().map(|l| find_lane(l)).collect::<Result<_>>()?
    };
    if let Some(p) = &args.json {
        // Fail before any work if the report cannot be written.
        File::create(p)
            .with_context(|| format!("cannot write the JSON report to {}", p.display()))?;
    }
    let reps = args.reps.unwrap_or(if args.quick { 3 } else { 5 }).max(1);
    let (warmup, budget) = if args.quick {
        (Duration::from_millis(20), Duration::from_millis(100))
    } else {
        (Duration::from_millis(100), Duration::from_millis(500))
    };
    let pinning = pin();
    let m = machine();
    println!("ipcx bench: {} ({} cores), Linux {}; {}", m.cpu, m.cores, m.kernel, pinning.note);
    println!(
        "{} repetition(s) per figure, median shown with [min-max] spread; {} per measurement",
        reps,
        fmt_dur(budget)
    );
    let dir = std::env::temp_dir().join(format!("ipcx-bench-{}", std::process::id()));
    std::fs::create_dir(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let result = run_lanes(&lanes, &args.sizes, reps, warmup, budget, &dir, &pinning);
    let _ = std::fs::remove_dir_all(&dir);
    let results = result?;
    let ratios = ratios(&results);
    print_report(&results, &ratios, &args.sizes);
    if let Some(p) = &args.json {
        let report = Report {
            machine: m,
            pinning: pinning.note,
            quick: args.quick,
            reps,
            sizes: args.sizes.clone(),
            lanes: results,
            ratios,
        };
        let f = File::create(p).with_context(|| format!("writing {}", p.display()))?;
        serde_json::to_writer_pretty(f, &report)?;
        println!("figures written to {}", p.display());
    }
    Ok(())
}

fn run_lanes(
    lanes: &[Box<dyn Lane>],
    sizes: &[usize],
    reps: usize,
    warmup: Duration,
    budget: Duration,
    dir: &Path,
    pinning: &Pinning,
) -> Result<Vec<LaneResult>> {
    let mut out = Vec::new();
    let mut seq = 0;
    for &size in sizes {
        for lane in lanes {
            let (lane, mech) = (lane.as_ref(), lane.name());
            for raw in [false, true] {
                let mut lat = Vec::new();
                let mut thr = Vec::new();
                let mut skipped = lane.unavailable();
                for _ in 0..reps {
                    if skipped.is_some() {
                        break;
                    }
                    seq += 1;
                    let attempt = (|| -> Result<()> {
                        let mut r =
                            start(lane, raw, "echo", size, dir, &format!("l{seq}"), pinning)?;
                        let l = ping_pong(&mut r, size, warmup, budget);
                        finish(r)?;
                        lat.push(l?);
                        let mut r =
                            start(lane, raw, "sink", size, dir, &format!("t{seq}"), pinning)?;
                        let t = one_way(&mut r, size, budget);
                        let (n, child_cpu) = finish(r)?;
                        let (sent, elapsed, cpu) = t?;
                        if n != sent {
                            bail!("{mech}: the receiver counted {n} messages, {sent} were sent");
                        }
                        let secs = elapsed.as_secs_f64();
                        thr.push(Throughput {
                            msgs_per_s: sent as f64 / secs,
                            mb_per_s: sent as f64 * size as f64 / secs / 1e6,
                            cpu_sender_s: cpu.as_secs_f64(),
                            cpu_receiver_s: child_cpu.as_secs_f64(),
                            messages: sent,
                        });
                        Ok(())
                    })();
                    if let Err(e) = attempt {
                        skipped = Some(format!("{e:#}"));
                        break;
                    }
                }
                out.push(summarize(mech, raw, size, lat, thr, skipped));
            }
        }
    }
    Ok(out)
}

fn summarize(
    mech: &str,
    raw: bool,
    size: usize,
    lat: Vec<Latency>,
    thr: Vec<Throughput>,
    skipped: Option<String>,
) -> LaneResult {
    let f = |g: fn(&Latency) -> u64| {
        median_spread(&lat.iter().map(|l| g(l) as f64).collect::<Vec<_>>())
    };
    let (p50, p50_lo, p50_hi) = f(|l| l.p50_ns);
    let (mps, mps_lo, mps_hi) =
        median_spread(&thr.iter().map(|t| t.msgs_per_s).collect::<Vec<_>>());
    LaneResult {
        mechanism: mech.to_owned(),
        implementation: if raw { "raw" } else { "ipcx" },
        size,
        skipped,
        p50_ns: p50,
        p50_spread_ns: (p50_lo, p50_hi),
        p99_ns: f(|l| l.p99_ns).0,
        p999_ns: f(|l| l.p999_ns).0,
        max_ns: f(|l| l.max_ns).0,
        msgs_per_s: mps,
        msgs_per_s_spread: (mps_lo, mps_hi),
        mb_per_s: mps * size as f64 / 1e6,
        latency_reps: lat,
        throughput_reps: thr,
    }
}

fn ratios(results: &[LaneResult]) -> Vec<Ratio> {
    results
        .iter()
        .filter(|r| r.implementation == "ipcx" && r.skipped.is_none())
        .filter_map(|i| {
            let raw = results.iter().find(|r| {
                r.implementation == "raw"
                    && r.mechanism == i.mechanism
                    && r.size == i.size
                    && r.skipped.is_none()
            })?;
            Some(Ratio {
                mechanism: i.mechanism.clone(),
                size: i.size,
                latency_ratio: i.p50_ns / raw.p50_ns,
                throughput_ratio: i.msgs_per_s / raw.msgs_per_s,
            })
        })
        .collect()
}

fn fmt_dur(d: Duration) -> String {
    fmt_ns(d.as_nanos() as f64)
}

fn fmt_ns(ns: f64) -> String {
    if ns.is_nan() {
        "-".into()
    } else if ns < 1e3 {
        format!("{ns:.0} ns")
    } else if ns < 1e6 {
        format!("{:.2} µs", ns / 1e3)
    } else if ns < 1e9 {
        format!("{:.2} ms", ns / 1e6)
    } else {
        format!("{:.2} s", ns / 1e9)
    }
}

fn fmt_size(n: usize) -> String {
    if n >= 1 << 20 && n % (1 << 20) == 0 {
        format!("{} MiB", n >> 20)
    } else if n >= 1024 && n % 1024 == 0 {
        format!("{} KiB", n >> 10)
    } else {
        format!("{n} B")
    }
}

fn print_report(results: &[LaneResult], ratios: &[Ratio], sizes: &[usize]) {
    for &size in sizes {
        println!();
        println!("== {} messages ==", fmt_size(size));
        println!(
            "{:<16} {:<5} {:>10} {:>19} {:>10} {:>10} {:>10} {:>12} {:>10} {:>9} {:>9}",
            "mechanism",
            "impl",
            "rtt p50",
            "[spread]",
            "p99",
            "p99.9",
            "max",
            "msgs/s",
            "MB/s",
            "lat/raw",
            "thr/raw"
        );
        for r in results.iter().filter(|r| r.size == size) {
            if let Some(why) = &r.skipped {
                println!("{:<16} {:<5} skipped: {why}", r.mechanism, r.implementation);
                continue;
            }
            let ratio = ratios.iter().find(|x| {
                x.mechanism == r.mechanism && x.size == size && r.implementation == "ipcx"
            });
            println!(
                "{:<16} {:<5} {:>10} {:>19} {:>10} {:>10} {:>10} {:>12.0} {:>10.1} {:>9} {:>9}",
                r.mechanism,
                r.implementation,
                fmt_ns(r.p50_ns),
                format!("[{}-{}]", fmt_ns(r.p50_spread_ns.0), fmt_ns(r.p50_spread_ns.1)),
                fmt_ns(r.p99_ns),
                fmt_ns(r.p999_ns),
                fmt_ns(r.max_ns),
                r.msgs_per_s,
                r.mb_per_s,
                ratio.map_or("".into(), |x| format!("{:.2}x", x.latency_ratio)),
                ratio.map_or("".into(), |x| format!("{:.2}x", x.throughput_ratio)),
            );
        }
        if let Some(best) = results
            .iter()
            .filter(|r| r.size == size && r.implementation == "ipcx" && r.skipped.is_none())
            .min_by(|a, b| a.p50_ns.total_cmp(&b.p50_ns))
        {
            println!(
                "fastest request/reply at {} on this machine: {}, {} round trip",
                fmt_size(size),
                best.mechanism,
                fmt_ns(best.p50_ns)
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_and_spread_of_known_samples() {
        assert_eq!(median_spread(&[3.0, 1.0, 2.0]), (2.0, 1.0, 3.0));
        assert_eq!(median_spread(&[4.0, 1.0, 3.0, 2.0]), (2.5, 1.0, 4.0));
        assert!(median_spread(&[]).0.is_nan());
    }

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("64").unwrap(), 64);
        assert_eq!(parse_size("1K").unwrap(), 1024);
        assert_eq!(parse_size("64k").unwrap(), 65536);
        assert!(parse_size("0").is_err());
        assert!(parse_size("abc").is_err());
        assert!(parse_size("1G").is_err());
    }
}
