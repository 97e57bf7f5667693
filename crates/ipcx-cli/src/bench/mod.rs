//! `ipcx bench`: latency and throughput of each mechanism between two processes, with
//! ipcx's lane beside a raw lane (the same scenario on the bare system calls) in one run.
//!
//! Each measurement spawns a child (`ipcx bench-peer`, hidden) that opens the other end.
//! Ping-pong: the parent sends a message, the child echoes it, the parent times the round
//! trip into an HDR histogram. Throughput: the parent sends messages for a fixed time, then
//! an end marker; the child acknowledges the count, and the parent divides.
//! Each figure is the median of several repetitions, with their spread. The two processes
//! are pinned to separate CPUs when the machine allows it (the header says so either way).
//! The printed tables (`report.rs`), `--json` and `--svg` (`svg.rs`) all come from the same
//! [`LaneResult`]s.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use hdrhistogram::Histogram;
use serde::Serialize;

pub use units::{median_spread, paired, paired_quartiles, parse_size, round_order};

mod report;
mod svg;
mod units;
mod watchdog;

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
    /// Repetitions of each measurement (default 3 quick, 15 full).
    #[arg(long)]
    reps: Option<usize>,
    /// Write every figure as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Draw charts of latency and throughput per mechanism and size to this SVG file.
    #[arg(long)]
    svg: Option<PathBuf>,
    /// Time per measurement in milliseconds (default: --quick shares about 50 s among all
    /// measurements, at least 20 ms each; full mode 150 ms).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=600_000))]
    budget_ms: Option<u64>,
    /// (testing) How long a measurement may stall before its peer is stopped, in ms.
    #[arg(long, hide = true, default_value_t = 60_000)]
    stall_ms: u64,
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

#[derive(clap::Args, Debug)]
pub struct WatchdogArgs {
    /// The benchmark peer to kill when the measurement stalls.
    #[arg(long)]
    peer: i32,
    /// The measuring process, ended if it stays stuck after that.
    #[arg(long)]
    parent: i32,
    #[arg(long)]
    limit_ms: u64,
    /// How long the measuring process may stay stuck after the peer was killed.
    #[arg(long, default_value_t = watchdog::GRACE.as_millis() as u64)]
    grace_ms: u64,
    /// The lane, for the message.
    #[arg(long)]
    what: String,
    /// The run's directory, removed if the run is given up.
    #[arg(long)]
    dir: PathBuf,
}

/// The watchdog of one measurement (see `watchdog.rs`).
pub fn watchdog(a: WatchdogArgs) -> Result<()> {
    let times = (Duration::from_millis(a.limit_ms), Duration::from_millis(a.grace_ms));
    watchdog::watch(a.peer, a.parent, times, &a.what, Some(&a.dir))
}

/// The child side: echo every message, or count them and acknowledge at the end.
pub fn peer(args: PeerArgs) -> Result<()> {
    if let Some(cpu) = args.cpu {
        ipcx::sys::pin_to_cpu(cpu);
    }
    let lane = find_lane(&args.mechanism)?;
    let mut end = lane.open_child(&args.a, &args.b, args.raw, args.size)?;
    // For the test of the watchdog: a peer that opens its end and then never answers.
    if std::env::var_os("IPCX_BENCH_PEER_HANG").is_some() {
        std::thread::sleep(Duration::from_secs(3600));
    }
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
    stdout: std::process::ChildStdout,
    end: Box<dyn Endpoint>,
    _guard: Box<dyn std::any::Any>,
    /// Kills the child if the measurement stalls.
    watchdog: watchdog::Watchdog,
}

/// How long one measurement may take, in milliseconds, before its child is stopped: a lane
/// that loses a message or deadlocks is reported as failed instead of hanging the run.
static STALL_MS: AtomicU64 = AtomicU64::new(60_000);

fn stall_limit() -> Duration {
    Duration::from_millis(STALL_MS.load(Ordering::Relaxed))
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
    let mut cmd = Command::new(&exe);
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
    let mut child = cmd.spawn().context("starting the benchmark peer")?;
    drop(s.child_fds);
    let what = format!("ipcx: bench: the {mech} {} {mode} lane", if raw { "raw" } else { "ipcx" });
    let mut wd = Command::new(&exe);
    wd.args(["bench-watchdog", "--peer", &child.id().to_string()]);
    wd.args(["--parent", &std::process::id().to_string()]);
    wd.args(["--limit-ms", &stall_limit().as_millis().to_string(), "--what", &what]);
    wd.arg("--dir").arg(dir);
    let opened = watchdog::Watchdog::start(wd).and_then(|w| {
        let stdout = child.stdout.take().context("peer stdout")?;
        Ok((w, stdout, (s.open_parent)()?))
    });
    match opened {
        Ok((watchdog, stdout, end)) => Ok(Run { child, stdout, end, _guard: s.guard, watchdog }),
        Err(e) => {
            // Do not leave the child waiting for a peer that will never come.
            let _ = child.kill();
            let _ = child.wait();
            Err(e)
        }
    }
}

fn finish(run: Run) -> Result<(u64, Duration)> {
    let Run { mut child, mut stdout, end, _guard, watchdog } = run;
    drop(end);
    let mut out = String::new();
    let read = stdout.read_to_string(&mut out);
    let stalled = watchdog.finish();
    let status = child.wait()?;
    if stalled {
        bail!(
            "no result within {} s: the measurement stalled and was stopped",
            stall_limit().as_secs_f64()
        );
    }
    read?;
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

impl Latency {
    /// The percentiles of a histogram of round trips in nanoseconds.
    pub fn of(hist: &Histogram<u64>) -> Latency {
        Latency {
            p50_ns: hist.value_at_quantile(0.5),
            p99_ns: hist.value_at_quantile(0.99),
            p999_ns: hist.value_at_quantile(0.999),
            max_ns: hist.max(),
            samples: hist.len(),
        }
    }
}

/// Throughput figures of one repetition.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Throughput {
    pub msgs_per_s: f64,
    pub mb_per_s: f64,
    /// CPU time (user + system) each side used in the whole run (warm-up included).
    pub cpu_sender_s: f64,
    pub cpu_receiver_s: f64,
    /// Wall-clock time of the whole run (warm-up included), for the CPU shares.
    pub elapsed_s: f64,
    /// Messages counted (the rates divide these by their own time, warm-up excluded).
    pub messages: u64,
    /// Messages sent in the warm-up before counting.
    pub warmup_messages: u64,
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
    Ok(Latency::of(&hist))
}

/// One throughput run: messages sent during the warm-up and then counted, the time the
/// counted ones took (until the receiver acknowledged the last), the whole run's wall
/// time and the sender's CPU time over the whole run.
struct OneWay {
    warm: u64,
    sent: u64,
    elapsed: Duration,
    wall: Duration,
    cpu: Duration,
}

fn one_way(run: &mut Run, size: usize, warmup: Duration, budget: Duration) -> Result<OneWay> {
    let msg = vec![0xa5u8; size];
    let mut buf = Vec::with_capacity(size);
    let cpu0 = ipcx::sys::cpu_time();
    let start = Instant::now();
    // Read the clock every few messages (every message once they are big): a clock read
    // per small message would be measured too, and a long batch of big ones overshoots.
    let every = (4096 / size.max(1)).clamp(1, 64) as u64;
    let mut warm = 0u64;
    while warm % every != 0 || start.elapsed() < warmup {
        run.end.send(&msg)?;
        warm += 1;
    }
    let t0 = Instant::now();
    let mut sent = 0u64;
    while sent % every != 0 || t0.elapsed() < budget {
        run.end.send(&msg)?;
        sent += 1;
    }
    run.end.finish()?;
    if !run.end.recv(&mut buf)? {
        bail!("the peer did not acknowledge");
    }
    let elapsed = t0.elapsed();
    Ok(OneWay { warm, sent, elapsed, wall: start.elapsed(), cpu: ipcx::sys::cpu_time() - cpu0 })
}

struct Pinning {
    pinned: bool,
    child: Option<usize>,
    note: String,
}

fn pin() -> Pinning {
    let cpus = ipcx::sys::allowed_cpus();
    if cpus.len() >= 2 && ipcx::sys::pin_to_cpu(cpus[0]) {
        Pinning {
            pinned: true,
            child: Some(cpus[1]),
            note: format!("sender pinned to CPU {}, peer to CPU {}", cpus[0], cpus[1]),
        }
    } else {
        Pinning {
            pinned: false,
            child: None,
            note: format!("not pinned: {} CPU(s) allowed, pinning needs 2", cpus.len()),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct LaneResult {
    mechanism: String,
    implementation: &'static str,
    size: usize,
    /// Why there are no figures (the mechanism is missing, or the lane failed).
    skipped: Option<String>,
    classic: report::Classic,
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
    /// CPU time of each side as a share of the throughput run's wall-clock time (100% = one
    /// CPU busy all the time).
    cpu_sender_pct: f64,
    cpu_receiver_pct: f64,
}

#[derive(Debug, Serialize)]
struct Report {
    machine: Machine,
    method: Method,
    quick: bool,
    reps: usize,
    sizes: Vec<usize>,
    lanes: Vec<LaneResult>,
    ratios: Vec<Ratio>,
    targets: Vec<Target>,
    recommendations: Vec<String>,
}

/// How the figures were taken.
#[derive(Debug, Serialize)]
struct Method {
    /// Whether the two processes were pinned to separate CPUs.
    pinned: bool,
    pinning: String,
    warmup_ms: f64,
    budget_ms: f64,
    reps: usize,
    latency: &'static str,
    throughput: &'static str,
}

#[derive(Debug, Serialize)]
pub struct Ratio {
    mechanism: String,
    size: usize,
    /// ipcx latency / raw latency, the median of per-repetition ratios of the medians
    /// (1.0 = equal; lower is better).
    latency_ratio: f64,
    /// ipcx throughput / raw throughput, paired the same way (higher is better).
    throughput_ratio: f64,
    /// The quartiles of the per-repetition latency ratios (absent with unequal counts).
    latency_ratio_quartiles: Option<(f64, f64)>,
    /// The quartiles of the per-repetition throughput ratios.
    throughput_ratio_quartiles: Option<(f64, f64)>,
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

/// Repetitions in the full mode. Many short ones rather than a few long ones: on a
/// 2-core virtual machine one repetition's ipcx/raw ratio strays by 5-15% (the host moves
/// the CPUs, and a stream settles into a sleeping or a busy pattern by chance), so the
/// median of 5 moved by that much from run to run (a pipe at 1 KiB: 0.92x in one full run,
/// 0.99x in the next), while the median of 15 paired ratios is within about 2% (the same
/// pipe: 0.95-0.97x in three runs of 15 x 150 ms, 0.98x in one of 30 x 200 ms). The full
/// run takes about as long as with 5 x 500 ms.
const FULL_REPS: usize = 15;
/// Time per measurement in the full mode (see [`FULL_REPS`]).
const FULL_BUDGET_MS: u64 = 150;

/// Time per measurement: --budget-ms, or in quick mode about 50 s shared among all the
/// measurements (each lane, size, ipcx and raw, repetition, and the two scenarios, less
/// about 20 ms each to start the child and set up its channels), at least 20 ms; full
/// mode [`FULL_BUDGET_MS`]. The warm-up before each scenario counts is a quarter of that.
fn budget(quick: bool, measurements: usize, budget_ms: Option<u64>) -> (Duration, Duration) {
    let b = match (budget_ms, quick) {
        (Some(ms), _) => Duration::from_millis(ms),
        (None, true) => {
            let per = 50_000.0 / measurements.max(1) as f64 - 20.0;
            Duration::from_secs_f64((per / 1.25).clamp(20.0, 150.0) / 1e3)
        }
        (None, false) => Duration::from_millis(FULL_BUDGET_MS),
    };
    (b / 4, b)
}

/// Check that `path` can be written, before any measurement, leaving it as it was: an
/// existing file is opened for appending (not truncated), a new one removed again.
fn check_writable(path: &Path, what: &str) -> Result<()> {
    let existed = path.symlink_metadata().is_ok();
    std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .with_context(|| format!("cannot write the {what} to {}", path.display()))?;
    if !existed {
        let _ = std::fs::remove_file(path);
    }
    Ok(())
}

pub fn run(args: BenchArgs) -> Result<()> {
    // Every check on the input comes before any work.
    let lanes: Vec<Box<dyn Lane>> = if args.lanes.is_empty() {
        lanes()
    } else {
        args.lanes.iter().map(|l| find_lane(l.trim())).collect::<Result<_>>()?
    };
    if args.sizes.is_empty() {
        bail!("--sizes needs at least one size (like 64,1K,64K)");
    }
    if let Some(p) = &args.json {
        check_writable(p, "JSON report")?;
    }
    if let Some(p) = &args.svg {
        check_writable(p, "SVG charts")?;
    }
    let reps = args.reps.unwrap_or(if args.quick { 3 } else { FULL_REPS }).max(1);
    STALL_MS.store(args.stall_ms.max(1), Ordering::Relaxed);
    let measurements = lanes.len() * args.sizes.len() * 2 * reps * 2;
    let (warmup, budget) = budget(args.quick, measurements, args.budget_ms);
    // Describe the machine before pinning narrows this process to one CPU.
    let m = machine();
    let pinning = pin();
    // Written with errors checked, not println!: a closed output (`| head`) or a full
    // disk ends the run with an error instead of a panic.
    let mut out = crate::io::stdout();
    writeln!(out, "ipcx bench: {} ({} cores allowed), Linux {}", m.cpu, m.cores, m.kernel)?;
    writeln!(
        out,
        "limits: {}",
        m.limits
            .iter()
            .map(|(k, v)| format!("{}={v}", k.rsplit('/').next().unwrap_or(k)))
            .collect::<Vec<_>>()
            .join(" ")
    )?;
    writeln!(
        out,
        "method: two processes, {}; {} warm-up, then {} per measurement; {} repetition(s) \
         per figure, taken in turns across the lanes (every other round in reverse), median shown \
         with [min-max] spread; \
         ratios are medians of per-repetition ratios (each pair taken moments apart; their quartiles are in --json); \
         cpu tx/rx = CPU time of sender and receiver over the throughput run's wall-clock time",
        pinning.note,
        units::fmt_ns(warmup.as_nanos() as f64),
        units::fmt_ns(budget.as_nanos() as f64),
        reps
    )?;
    out.flush()?;
    drop(out); // not locked while the lanes run (a lane's setup may print)
    let dir = std::env::temp_dir().join(format!("ipcx-bench-{}", std::process::id()));
    std::fs::create_dir(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut progress = Progress::new(lanes.len() * args.sizes.len() * 2 * reps);
    let result =
        run_lanes(&lanes, &args.sizes, reps, warmup, budget, &dir, &pinning, &mut progress);
    progress.clear();
    let _ = std::fs::remove_dir_all(&dir);
    let results = result?;
    let ratios = ratios(&results);
    let mut out = crate::io::stdout();
    report::print_tables(&mut out, &results, &ratios, &args.sizes)?;
    let recommendations = report::recommendations(&results, &args.sizes);
    writeln!(out)?;
    for r in &recommendations {
        writeln!(out, "{r}")?;
    }
    let targets = targets(&results);
    if !targets.is_empty() {
        writeln!(out, "\nagainst the hardware limits (median of per-repetition ratios):")?;
        for t in &targets {
            writeln!(
                out,
                "  {:>6}  {:<45} {:>6.2}x  (target {}: {})",
                units::fmt_size(t.size),
                t.what,
                t.ratio,
                t.target,
                if t.met { "met" } else { "MISSED" }
            )?;
        }
    }
    if let Some(p) = &args.svg {
        svg::draw(p, &results, &args.sizes)?;
        writeln!(out, "charts drawn to {}", p.display())?;
    }
    if let Some(p) = &args.json {
        let report = Report {
            machine: m,
            method: Method {
                pinned: pinning.pinned,
                pinning: pinning.note,
                warmup_ms: warmup.as_secs_f64() * 1e3,
                budget_ms: budget.as_secs_f64() * 1e3,
                reps,
                latency:
                    "ping-pong round trip, HDR histogram (3 significant digits) per repetition",
                throughput: "one-way stream: warm-up, then counted for the budget, then an end marker the peer acknowledges",
            },
            quick: args.quick,
            reps,
            sizes: args.sizes.clone(),
            lanes: results,
            ratios,
            targets,
            recommendations,
        };
        let f = File::create(p).with_context(|| format!("writing {}", p.display()))?;
        serde_json::to_writer_pretty(f, &report)?;
        writeln!(out, "figures written to {}", p.display())?;
    }
    Ok(())
}

/// A progress bar on standard error, drawn only when it is a terminal.
struct Progress {
    on: bool,
    total: usize,
    done: usize,
    t0: Instant,
}

impl Progress {
    fn new(total: usize) -> Progress {
        use std::io::IsTerminal;
        Progress { on: std::io::stderr().is_terminal(), total, done: 0, t0: Instant::now() }
    }
    fn show(&self, what: &str) {
        if !self.on {
            return;
        }
        let width = 30;
        let filled = self.done * width / self.total.max(1);
        let eta = if self.done > 0 {
            let per = self.t0.elapsed().as_secs_f64() / self.done as f64;
            format!(" ~{:.0} s left", per * (self.total - self.done) as f64)
        } else {
            String::new()
        };
        eprint!(
            "\r\x1b[2K[{}{}] {}/{} {what}{eta}",
            "#".repeat(filled),
            ".".repeat(width - filled),
            self.done,
            self.total
        );
    }
    fn step(&mut self) {
        self.done += 1;
    }
    fn clear(&self) {
        if self.on {
            eprint!("\r\x1b[2K");
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn run_lanes(
    lanes: &[Box<dyn Lane>],
    sizes: &[usize],
    reps: usize,
    warmup: Duration,
    budget: Duration,
    dir: &Path,
    pinning: &Pinning,
    progress: &mut Progress,
) -> Result<Vec<LaneResult>> {
    /// One lane in one form (ipcx or raw) at one size, as its repetitions come in.
    struct Slot<'a> {
        lane: &'a dyn Lane,
        raw: bool,
        lat: Vec<Latency>,
        thr: Vec<Throughput>,
        skipped: Option<String>,
    }
    let mut out = Vec::new();
    let mut seq = 0;
    for &size in sizes {
        let mut slots: Vec<Slot> = Vec::new();
        for lane in lanes {
            for raw in [false, true] {
                let mut skipped = lane.unavailable().map(|why| format!("unavailable: {why}"));
                if raw && lane.classic().limit {
                    skipped = Some("a hardware-limit lane has no raw form".into());
                }
                let (lat, thr) = (Vec::new(), Vec::new());
                slots.push(Slot { lane: lane.as_ref(), raw, lat, thr, skipped });
            }
        }
        // Repetitions go round all the lanes in turn, so that a burst of load from
        // elsewhere on the machine falls on several lanes rather than all of one lane's
        // repetitions; every other round goes the other way, so that neither form of a
        // lane is always measured first (or always right after the other lanes).
        for rep in 0..reps {
            for slot in round_order(slots.iter_mut().collect(), rep) {
                if slot.skipped.is_some() {
                    progress.step();
                    continue;
                }
                let (lane, raw, mech) = (slot.lane, slot.raw, slot.lane.name());
                let imp = if raw { "raw" } else { "ipcx" };
                progress.show(&format!("{mech} {imp} {}", units::fmt_size(size)));
                seq += 1;
                let attempt = (|| -> Result<()> {
                    let mut r = start(lane, raw, "echo", size, dir, &format!("l{seq}"), pinning)?;
                    let l = ping_pong(&mut r, size, warmup, budget);
                    finish(r)?;
                    slot.lat.push(l?);
                    let mut r = start(lane, raw, "sink", size, dir, &format!("t{seq}"), pinning)?;
                    let t = one_way(&mut r, size, warmup, budget);
                    let (n, child_cpu) = finish(r)?;
                    let t = t?;
                    if n != t.warm + t.sent {
                        bail!(
                            "{mech}: the receiver counted {n} messages, {} were sent",
                            t.warm + t.sent
                        );
                    }
                    let secs = t.elapsed.as_secs_f64();
                    slot.thr.push(Throughput {
                        msgs_per_s: t.sent as f64 / secs,
                        mb_per_s: t.sent as f64 * size as f64 / secs / 1e6,
                        cpu_sender_s: t.cpu.as_secs_f64(),
                        cpu_receiver_s: child_cpu.as_secs_f64(),
                        elapsed_s: t.wall.as_secs_f64(),
                        messages: t.sent,
                        warmup_messages: t.warm,
                    });
                    Ok(())
                })();
                progress.step();
                if let Err(e) = attempt {
                    // A lane that fails once is not measured again: its figures would
                    // come from the repetitions that happened to work.
                    slot.skipped = Some(format!("failed: {e:#}"));
                    slot.lat.clear();
                    slot.thr.clear();
                }
            }
        }
        for s in slots {
            out.push(summarize(
                s.lane.name(),
                s.lane.classic(),
                s.raw,
                size,
                s.lat,
                s.thr,
                s.skipped,
            ));
        }
    }
    Ok(out)
}

fn summarize(
    mech: &str,
    classic: report::Classic,
    raw: bool,
    size: usize,
    lat: Vec<Latency>,
    thr: Vec<Throughput>,
    skipped: Option<String>,
) -> LaneResult {
    let f = |g: fn(&Latency) -> u64| {
        median_spread(&lat.iter().map(|l| g(l) as f64).collect::<Vec<_>>())
    };
    let t = |g: fn(&Throughput) -> f64| median_spread(&thr.iter().map(g).collect::<Vec<_>>());
    let (p50, p50_lo, p50_hi) = f(|l| l.p50_ns);
    let (mps, mps_lo, mps_hi) = t(|t| t.msgs_per_s);
    LaneResult {
        mechanism: mech.to_owned(),
        implementation: if raw { "raw" } else { "ipcx" },
        size,
        skipped,
        classic,
        p50_ns: p50,
        p50_spread_ns: (p50_lo, p50_hi),
        p99_ns: f(|l| l.p99_ns).0,
        p999_ns: f(|l| l.p999_ns).0,
        max_ns: f(|l| l.max_ns).0,
        msgs_per_s: mps,
        msgs_per_s_spread: (mps_lo, mps_hi),
        mb_per_s: mps * size as f64 / 1e6,
        cpu_sender_pct: t(|t| 100.0 * t.cpu_sender_s / t.elapsed_s).0,
        cpu_receiver_pct: t(|t| 100.0 * t.cpu_receiver_s / t.elapsed_s).0,
        latency_reps: lat,
        throughput_reps: thr,
    }
}

fn p50s(r: &LaneResult) -> Vec<f64> {
    r.latency_reps.iter().map(|l| l.p50_ns as f64).collect()
}

fn rates(r: &LaneResult) -> Vec<f64> {
    r.throughput_reps.iter().map(|t| t.msgs_per_s).collect()
}

fn find<'a>(
    results: &'a [LaneResult],
    mech: &str,
    imp: &str,
    size: usize,
) -> Option<&'a LaneResult> {
    results.iter().find(|r| {
        r.mechanism == mech && r.implementation == imp && r.size == size && r.skipped.is_none()
    })
}

fn ratios(results: &[LaneResult]) -> Vec<Ratio> {
    results
        .iter()
        .filter(|r| r.implementation == "ipcx" && r.skipped.is_none())
        .filter_map(|i| {
            let raw = find(results, &i.mechanism, "raw", i.size)?;
            let (lat, raw_lat) = (p50s(i), p50s(raw));
            let (thr, raw_thr) = (rates(i), rates(raw));
            Some(Ratio {
                mechanism: i.mechanism.clone(),
                size: i.size,
                latency_ratio: paired(&lat, &raw_lat),
                throughput_ratio: paired(&thr, &raw_thr),
                latency_ratio_quartiles: paired_quartiles(&lat, &raw_lat),
                throughput_ratio_quartiles: paired_quartiles(&thr, &raw_thr),
            })
        })
        .collect()
}

/// A figure measured against a hardware limit or another lane, with the target.
#[derive(Debug, Serialize)]
pub struct Target {
    what: String,
    size: usize,
    ratio: f64,
    /// "<= 2.0" or ">= 0.6".
    target: String,
    met: bool,
}

/// The ratios the targets are set in, paired by repetition ([`paired`]): the ring's
/// 64 B round trip against the cache-line bounce, its 64 KiB throughput against the
/// memory copy, and the log's 1 KiB throughput against the ring's.
fn targets(results: &[LaneResult]) -> Vec<Target> {
    /// (lane, against, size, latency (else throughput), the bound, at most (else at least)).
    const SET: [(&str, &str, usize, bool, f64, bool); 5] = [
        ("shm", "cacheline", 64, true, 2.0, true),
        ("shm", "memcpy", 64 << 10, false, 0.6, false),
        ("shm-spin", "cacheline", 64, true, 2.0, true),
        ("shm-spin", "memcpy", 64 << 10, false, 0.6, false),
        ("mmap-log", "shm", 1024, false, 0.8, false),
    ];
    SET.iter()
        .filter_map(|&(lane, base, size, latency, bound, at_most)| {
            let (a, b) = (find(results, lane, "ipcx", size)?, find(results, base, "ipcx", size)?);
            let (ratio, what) = if latency {
                (paired(&p50s(a), &p50s(b)), "round trip")
            } else {
                (paired(&rates(a), &rates(b)), "throughput")
            };
            Some(Target {
                what: format!("{lane} {what} / {base} {what}"),
                size,
                ratio,
                target: format!("{} {bound:.1}", if at_most { "<=" } else { ">=" }),
                met: if at_most { ratio <= bound } else { ratio >= bound },
            })
        })
        .collect()
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
    fn percentiles_of_known_samples() {
        // 1..=10000 ns once each: the quantiles are known exactly, and the histogram keeps
        // 3 significant digits (an error of at most 0.1%).
        let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).unwrap();
        for v in 1..=10_000u64 {
            h.record(v).unwrap();
        }
        let l = Latency::of(&h);
        let near = |got: u64, want: u64| got.abs_diff(want) * 1000 <= want;
        assert!(near(l.p50_ns, 5000), "p50 {}", l.p50_ns);
        assert!(near(l.p99_ns, 9900), "p99 {}", l.p99_ns);
        assert!(near(l.p999_ns, 9990), "p99.9 {}", l.p999_ns);
        assert!(near(l.max_ns, 10_000), "max {}", l.max_ns);
        assert_eq!(l.samples, 10_000);
        // A long tail: 990 fast round trips and 10 slow ones move p99.9 and max, not p50.
        let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).unwrap();
        h.record_n(1000, 990).unwrap();
        h.record_n(1_000_000, 10).unwrap();
        let l = Latency::of(&h);
        assert!(near(l.p50_ns, 1000) && near(l.p99_ns, 1000), "{l:?}");
        assert!(near(l.p999_ns, 1_000_000) && near(l.max_ns, 1_000_000), "{l:?}");
    }

    fn result(mech: &str, imp: &'static str, p50: f64, mps: f64) -> LaneResult {
        let lat = Latency { p50_ns: p50 as u64, p99_ns: 0, p999_ns: 0, max_ns: 0, samples: 1 };
        let thr = Throughput {
            msgs_per_s: mps,
            mb_per_s: 0.0,
            cpu_sender_s: 0.5,
            cpu_receiver_s: 0.25,
            elapsed_s: 1.0,
            messages: 1,
            warmup_messages: 0,
        };
        summarize(mech, report::classic(mech), imp == "raw", 64, vec![lat], vec![thr], None)
    }

    #[test]
    fn summary_ratios_and_recommendation() {
        let rs = vec![
            result("pipe", "ipcx", 11_000.0, 100_000.0),
            result("pipe", "raw", 10_000.0, 200_000.0),
            result("shm", "ipcx", 300.0, 5_000_000.0),
            result("cacheline", "ipcx", 100.0, 9_000_000.0),
        ];
        assert_eq!(rs[0].cpu_sender_pct, 50.0);
        assert_eq!(rs[0].cpu_receiver_pct, 25.0);
        let r = ratios(&rs);
        assert_eq!(r.len(), 1);
        assert!((r[0].latency_ratio - 1.1).abs() < 1e-9);
        assert!((r[0].throughput_ratio - 0.5).abs() < 1e-9);
        let rec = report::recommendations(&rs, &[64]);
        assert_eq!(
            rec[0],
            "for 64 B request/reply on this machine: shm, 300 ns; kernel paths: ~11.00 µs \
             (hardware floor: 100 ns)"
        );
        assert_eq!(rec[1], "for 64 B one-way streaming: shm, 5.00M msgs/s (320.0 MB/s)");
    }

    #[test]
    fn quartiles_of_paired_ratios_are_interpolated() {
        // Ratios 1, 2, 3, 4, 5 in shuffled pairs: quartiles at positions 1 and 3.
        let a = [3.0, 10.0, 4.0, 2.0, 1.0];
        let b = [1.0, 2.0, 1.0, 1.0, 1.0];
        assert_eq!(paired_quartiles(&a, &b), Some((2.0, 4.0)));
        // Four ratios 1, 2, 3, 4: positions 0.75 and 2.25.
        let q = paired_quartiles(&[1.0, 2.0, 3.0, 4.0], &[1.0; 4]).unwrap();
        assert!((q.0 - 1.75).abs() < 1e-9 && (q.1 - 3.25).abs() < 1e-9, "{q:?}");
        // One repetition: both quartiles are its ratio; unequal counts: none.
        assert_eq!(paired_quartiles(&[6.0], &[3.0]), Some((2.0, 2.0)));
        assert_eq!(paired_quartiles(&[1.0, 2.0], &[1.0]), None);
    }

    #[test]
    fn paired_ratios_cancel_drift_between_rounds() {
        // Round 1 on a slow placement (everything 3x), round 2 fast: the pairs agree on 2x,
        // while the ratio of medians would not.
        assert_eq!(paired(&[600.0, 200.0, 200.0], &[300.0, 100.0, 100.0]), 2.0);
        assert_eq!(paired(&[600.0, 200.0, 220.0], &[100.0, 100.0, 100.0]), 2.2);
        // Unequal counts: the ratio of the medians.
        assert_eq!(paired(&[4.0, 2.0], &[1.0]), 3.0);
        let rs = vec![result("shm", "ipcx", 300.0, 1.0), result("cacheline", "ipcx", 100.0, 1.0)];
        let t = targets(&rs);
        assert_eq!(t.len(), 1);
        assert!((t[0].ratio - 3.0).abs() < 1e-9 && !t[0].met, "{t:?}");
    }

    #[test]
    fn quick_budget_shrinks_with_the_lanes() {
        // 2 lanes, 3 sizes, 3 repetitions: room to spare, capped at 150 ms.
        assert_eq!(budget(true, 2 * 3 * 2 * 3 * 2, None).1, Duration::from_millis(150));
        // 12 lanes: about 50 s in all.
        let m = 12 * 3 * 2 * 3 * 2;
        let b = budget(true, m, None).1;
        let total = m as f64 * (b.as_secs_f64() * 1.25 + 0.020);
        assert!((45.0..=55.0).contains(&total), "{b:?} -> {total} s");
        // Never below the floor; an explicit budget wins; full mode is longer.
        assert_eq!(budget(true, 100_000, None).1, Duration::from_millis(20));
        assert_eq!(
            budget(true, 10, Some(7)),
            (Duration::from_micros(1750), Duration::from_millis(7))
        );
        assert_eq!(budget(false, 10, None).1, Duration::from_millis(FULL_BUDGET_MS));
    }

    #[test]
    fn classic_table_knows_the_mechanisms() {
        for m in [
            "pipe",
            "fifo",
            "sysv-mq",
            "posix-mq",
            "unix",
            "unix-seqpacket",
            "tcp",
            "shm",
            "shm-spin",
            "mmap-log",
            "mmap-log-sync",
            "cacheline",
            "memcpy",
        ] {
            assert_ne!(report::classic(m).medium, "-", "{m}");
        }
        assert!(report::classic("memcpy").limit && !report::classic("shm").kernel);
        assert_eq!(report::classic("no-such").when_to_use, "-");
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
