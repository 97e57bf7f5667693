//! The one harness every lane goes through: two processes, ping-pong and one-way.

use std::any::Any;
use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use hdrhistogram::Histogram;

#[path = "../../ipcx-cli/src/bench/units.rs"]
#[allow(dead_code)] // shared with `ipcx bench`, which uses all of it
mod units;
use units::{fmt_ns, fmt_size, median_spread, paired, paired_quartiles, parse_size, round_order};

#[path = "../../ipcx-cli/src/bench/watchdog.rs"]
mod watchdog;

/// How long one measurement may take before its child is stopped.
const STALL_LIMIT: Duration = Duration::from_secs(120);

/// `ipcx-peers --watchdog PEER PARENT LABEL`: the watchdog of one measurement.
pub fn watchdog(args: &[String]) -> Result<()> {
    let [peer, parent, label] = args else { bail!("bad watchdog arguments {args:?}") };
    let what = format!("ipcx-peers: {label}");
    watchdog::watch(peer.parse()?, parent.parse()?, (STALL_LIMIT, watchdog::GRACE), &what, None)
}

/// A data message starts with this byte; the end marker with [`END`].
pub const DATA: u8 = 0;
pub const END: u8 = 0xFF;

/// One side of a channel pair, as the harness drives it. Every message is exactly the
/// measured size.
pub trait End {
    fn send(&mut self, msg: &[u8]) -> Result<()>;
    /// Receive one whole message into `buf` (resized to the message).
    fn recv(&mut self, buf: &mut Vec<u8>) -> Result<()>;
}

/// What the parent made before starting the child.
pub struct Prepared {
    /// Descriptors handed to the child: (ours, the number it gets there).
    pub fds: Vec<(OwnedFd, i32)>,
    /// A string the child needs to find the channels (a name).
    pub arg: String,
    /// Opens the parent's end once the child runs.
    pub connect: Box<dyn FnOnce() -> Result<Box<dyn End>>>,
    /// Kept until the measurement ends (removes the lane's objects on drop).
    pub guard: Box<dyn Any>,
}

/// A contestant: a peer crate, or ipcx on one mechanism.
pub trait Lane {
    /// Short key, as `--only` takes it.
    fn key(&self) -> &'static str;
    /// What the user would call it: crate and API.
    fn label(&self) -> &'static str;
    /// The ipcx mechanism it is compared with.
    fn mechanism(&self) -> &'static str;
    fn is_ipcx(&self) -> bool {
        false
    }
    /// A control: ipcx's own lane of the mechanism measured a second time, compared with
    /// the first like a peer, so the run shows how far a ratio strays when nothing differs.
    fn is_control(&self) -> bool {
        false
    }
    fn prepare(&self, id: &str, size: usize) -> Result<Prepared>;
    fn child(&self, arg: &str, size: usize) -> Result<Box<dyn End>>;
}

fn all_lanes() -> Vec<Box<dyn Lane>> {
    let mut v = crate::ipcx_lanes::lanes();
    v.extend(crate::peers::lanes());
    v.extend(crate::ipcx_lanes::controls());
    v
}

fn find(key: &str) -> Result<Box<dyn Lane>> {
    all_lanes().into_iter().find(|l| l.key() == key).with_context(|| {
        let keys: Vec<_> = all_lanes().iter().map(|l| l.key()).collect();
        format!("unknown lane `{key}`; expected one of {}", keys.join(", "))
    })
}

/// The child: `--child KEY MODE SIZE ARG CPU`. Echo every data message, or count them
/// and acknowledge the end marker; print the count and the CPU time used.
pub fn child(args: &[String]) -> Result<()> {
    let [key, mode, size, arg, cpu] = args else { bail!("bad child arguments {args:?}") };
    if let Ok(c) = cpu.parse::<usize>() {
        ipcx::sys::pin_to_cpu(c);
    }
    let size: usize = size.parse()?;
    let lane = find(key)?;
    let mut end = lane.child(arg, size)?;
    let mut buf = Vec::with_capacity(size);
    let cpu0 = ipcx::sys::cpu_time();
    let mut count = 0u64;
    loop {
        end.recv(&mut buf)?;
        if buf.first() != Some(&DATA) {
            break;
        }
        count += 1;
        if mode == "echo" {
            end.send(&buf)?;
        }
    }
    if mode == "sink" {
        buf.resize(size, 0);
        buf[0] = DATA;
        end.send(&buf)?;
    }
    let cpu = ipcx::sys::cpu_time() - cpu0;
    println!("{count} {}", cpu.as_nanos());
    // Let the parent read the acknowledgement before this end goes away.
    let mut line = String::new();
    let _ = std::io::stdin().read_line(&mut line);
    Ok(())
}

struct Running {
    child: std::process::Child,
    end: Box<dyn End>,
    guard: Box<dyn Any>,
    /// Kills the child if the measurement stalls (a lost message on a spinning channel).
    watchdog: watchdog::Watchdog,
}

fn start(
    lane: &dyn Lane,
    mode: &str,
    size: usize,
    id: &str,
    cpu: Option<usize>,
) -> Result<Running> {
    let p = lane.prepare(id, size)?;
    let mut cmd = Command::new(std::env::current_exe()?);
    let cpu = cpu.map_or("-".to_owned(), |c| c.to_string());
    cmd.args(["--child", lane.key(), mode, &size.to_string(), &p.arg, &cpu]);
    cmd.stdout(Stdio::piped()).stdin(Stdio::piped());
    for (fd, target) in &p.fds {
        ipcx::sys::hand_fd_to_child(&mut cmd, fd.as_raw_fd(), *target);
    }
    let mut child = cmd.spawn().context("starting the child")?;
    drop(p.fds);
    let mut wd = Command::new(std::env::current_exe()?);
    wd.args(["--watchdog", &child.id().to_string(), &std::process::id().to_string()]);
    wd.arg(lane.label());
    let opened = watchdog::Watchdog::start(wd).and_then(|w| Ok((w, (p.connect)()?)));
    match opened {
        Ok((watchdog, end)) => Ok(Running { child, end, guard: p.guard, watchdog }),
        Err(e) => {
            let _ = child.kill();
            let _ = child.wait();
            Err(e)
        }
    }
}

fn finish(r: Running) -> Result<(u64, Duration)> {
    let Running { mut child, end, guard, watchdog } = r;
    let mut out = String::new();
    let mut stdout = child.stdout.take().context("child stdout")?;
    // Read the child's line before dropping our end: some channels lose a message still
    // in flight when the sender's side goes away.
    let mut byte = [0u8; 1];
    while stdout.read(&mut byte)? == 1 {
        if byte[0] == b'\n' {
            break;
        }
        out.push(byte[0] as char);
    }
    drop(child.stdin.take());
    drop(end);
    let status = child.wait()?;
    let stalled = watchdog.finish();
    drop(guard);
    if stalled {
        bail!(
            "no result within {} s: the measurement stalled and was stopped",
            STALL_LIMIT.as_secs()
        );
    }
    if !status.success() {
        bail!("the child failed ({status})");
    }
    let mut it = out.split_whitespace().map(|w| w.parse::<u64>());
    match (it.next(), it.next()) {
        (Some(Ok(n)), Some(Ok(ns))) => Ok((n, Duration::from_nanos(ns))),
        _ => bail!("the child printed `{out}`, not its counts"),
    }
}

/// Stop a child whose scenario failed (it may be waiting for a message forever).
fn abort(r: Running, e: anyhow::Error) -> anyhow::Error {
    let Running { mut child, end, guard, watchdog } = r;
    let _ = child.kill();
    let _ = child.wait();
    watchdog.finish();
    drop(end);
    drop(guard);
    e
}

/// The order of one round of measurements (indices into `lanes`): each ipcx lane right
/// before the peers compared with it, so that each ratio pairs repetitions taken moments
/// apart; lanes of no ipcx mechanism last.
fn measuring_order(lanes: &[Box<dyn Lane>]) -> Vec<usize> {
    let mut order: Vec<usize> = Vec::new();
    for (i, l) in lanes.iter().enumerate().filter(|(_, l)| l.is_ipcx()) {
        order.push(i);
        order.extend(
            (0..lanes.len())
                .filter(|&j| !lanes[j].is_ipcx() && lanes[j].mechanism() == l.mechanism()),
        );
    }
    let rest: Vec<usize> = (0..lanes.len()).filter(|j| !order.contains(j)).collect();
    order.extend(rest);
    order
}

/// The median over repetitions of `g(ipcx) / g(peer)`, repetition by repetition (the
/// peer's k-th taken right after ipcx's k-th): a swing of the machine between
/// repetitions moves both sides of a pair, not the ratio. With the quartiles of those
/// per-repetition ratios: how far one repetition strays.
fn paired_ratio(
    ipcx: &[Figures],
    peer: &[Figures],
    g: fn(&Figures) -> f64,
) -> (f64, Option<(f64, f64)>) {
    let (a, b): (Vec<f64>, Vec<f64>) = (ipcx.iter().map(g).collect(), peer.iter().map(g).collect());
    (paired(&a, &b), paired_quartiles(&a, &b))
}

/// A paired ratio as `0.97x (0.93-1.02)`, so a ratio near 1 can be told from noise.
fn ratio_text((m, q): (f64, Option<(f64, f64)>)) -> String {
    match q {
        Some((q1, q3)) => format!("{m:.2}x ({q1:.2}-{q3:.2})"),
        None => format!("{m:.2}x"),
    }
}

#[derive(Clone, Copy, Debug, Default)]
struct Figures {
    p50: f64,
    p99: f64,
    p999: f64,
    max: f64,
    msgs_per_s: f64,
    cpu_sender: f64,
    cpu_receiver: f64,
}

fn ping_pong(
    end: &mut dyn End,
    size: usize,
    warmup: Duration,
    budget: Duration,
) -> Result<Histogram<u64>> {
    let mut msg = vec![0x5au8; size];
    msg[0] = DATA;
    let mut buf = Vec::with_capacity(size);
    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3)?;
    let t0 = Instant::now();
    loop {
        let s = Instant::now();
        end.send(&msg)?;
        end.recv(&mut buf)?;
        let e = s.elapsed();
        if buf.len() != size {
            bail!("an echo of {size} bytes came back as {}", buf.len());
        }
        let t = t0.elapsed();
        if t < warmup {
            continue;
        }
        hist.saturating_record(e.as_nanos() as u64);
        if t >= warmup + budget && hist.len() >= 100 {
            break;
        }
    }
    msg[0] = END;
    end.send(&msg)?;
    Ok(hist)
}

/// Returns (warm-up messages, counted messages, their time, whole run's time, CPU time).
fn one_way(
    end: &mut dyn End,
    size: usize,
    warmup: Duration,
    budget: Duration,
) -> Result<(u64, u64, Duration, Duration, Duration)> {
    let mut msg = vec![0xa5u8; size];
    msg[0] = DATA;
    let mut buf = Vec::with_capacity(size);
    let cpu0 = ipcx::sys::cpu_time();
    let start = Instant::now();
    // Read the clock every few messages (every message once they are big): a clock read
    // per small message would be measured too, and a long batch of big ones overshoots.
    let every = (4096 / size.max(1)).clamp(1, 64) as u64;
    let mut warm = 0u64;
    while warm % every != 0 || start.elapsed() < warmup {
        end.send(&msg)?;
        warm += 1;
    }
    let t0 = Instant::now();
    let mut sent = 0u64;
    while sent % every != 0 || t0.elapsed() < budget {
        end.send(&msg)?;
        sent += 1;
    }
    msg[0] = END;
    end.send(&msg)?;
    end.recv(&mut buf)?;
    let elapsed = t0.elapsed();
    Ok((warm, sent, elapsed, start.elapsed(), ipcx::sys::cpu_time() - cpu0))
}

fn measure(
    lane: &dyn Lane,
    size: usize,
    id: &str,
    cpu: Option<usize>,
    warmup: Duration,
    budget: Duration,
) -> Result<Figures> {
    let mut r = start(lane, "echo", size, &format!("{id}l"), cpu)?;
    let h = match ping_pong(r.end.as_mut(), size, warmup, budget) {
        Ok(h) => h,
        Err(e) => return Err(abort(r, e)),
    };
    finish(r)?;
    let mut r = start(lane, "sink", size, &format!("{id}t"), cpu)?;
    let (warm, sent, elapsed, wall, cpu) = match one_way(r.end.as_mut(), size, warmup, budget) {
        Ok(t) => t,
        Err(e) => return Err(abort(r, e)),
    };
    let (n, child_cpu) = finish(r)?;
    if n != warm + sent {
        bail!("the receiver counted {n} messages, {} were sent", warm + sent);
    }
    let secs = elapsed.as_secs_f64();
    let wall = wall.as_secs_f64();
    Ok(Figures {
        p50: h.value_at_quantile(0.5) as f64,
        p99: h.value_at_quantile(0.99) as f64,
        p999: h.value_at_quantile(0.999) as f64,
        max: h.max() as f64,
        msgs_per_s: sent as f64 / secs,
        cpu_sender: cpu.as_secs_f64() / wall,
        cpu_receiver: child_cpu.as_secs_f64() / wall,
    })
}

const USAGE: &str =
    "usage: ipcx-peers [--quick] [--sizes 64,1K,64K] [--only KEY,..] [--reps N] [--budget-ms MS]";

pub fn run(args: &[String]) -> Result<()> {
    let mut quick = false;
    let mut sizes = vec![64, 1024, 65536];
    let mut only: Vec<String> = Vec::new();
    let mut reps = None;
    let mut budget_ms = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut val = || it.next().with_context(|| format!("{a} needs a value; {USAGE}"));
        match a.as_str() {
            "--quick" => quick = true,
            "--sizes" => {
                sizes = val()?
                    .split(',')
                    .map(parse_size)
                    .collect::<std::result::Result<_, _>>()
                    .map_err(anyhow::Error::msg)?
            }
            "--only" => only = val()?.split(',').map(str::to_owned).collect(),
            "--reps" => reps = Some(val()?.parse::<usize>().context("--reps")?.max(1)),
            "--budget-ms" => budget_ms = Some(val()?.parse::<u64>().context("--budget-ms")?),
            "-h" | "--help" => {
                println!("{USAGE}");
                for l in all_lanes() {
                    println!("  {:<22} {} (beside ipcx {})", l.key(), l.label(), l.mechanism());
                }
                return Ok(());
            }
            _ => bail!("unknown argument `{a}`; {USAGE}"),
        }
    }
    let lanes: Vec<Box<dyn Lane>> = if only.is_empty() {
        all_lanes()
    } else {
        only.iter().map(|k| find(k)).collect::<Result<_>>()?
    };
    // Many short repetitions rather than a few long ones, as in `ipcx bench` (its
    // `FULL_REPS`): one repetition's ratio strays by 5-15% on a 2-core virtual machine,
    // and the median of 15 pairs settles where the median of 5 did not.
    let reps = reps.unwrap_or(if quick { 3 } else { 15 });
    let budget = Duration::from_millis(budget_ms.unwrap_or(if quick { 150 } else { 200 }));
    let warmup = budget / 5;
    let cpus = ipcx::sys::allowed_cpus();
    let child_cpu =
        if cpus.len() >= 2 && ipcx::sys::pin_to_cpu(cpus[0]) { Some(cpus[1]) } else { None };
    println!(
        "ipcx-peers: {} CPU(s); {}; {reps} repetition(s) taken in turns across the lanes \
         (every other round in reverse), median shown; {} ms per measurement",
        cpus.len(),
        match child_cpu {
            Some(c) => format!("parent pinned to CPU {}, child to CPU {c}", cpus[0]),
            None => "not pinned (fewer than 2 CPUs allowed)".into(),
        },
        budget.as_millis()
    );
    let t0 = Instant::now();
    let mut seq = 0;
    let mut verdicts = Vec::new();
    let mut controls = Vec::new();
    for &size in &sizes {
        println!();
        println!("== {} messages ==", fmt_size(size));
        println!(
            "{:<38} {:<15} {:>10} {:>10} {:>10} {:>10} {:>12} {:>9} {:>9} {:>10} {:>10}",
            "lane",
            "vs ipcx",
            "rtt p50",
            "p99",
            "p99.9",
            "max",
            "msgs/s",
            "MB/s",
            "cpu tx/rx",
            "p50 ratio",
            "thr ratio"
        );
        // Repetitions go round all the lanes in turn, so that a burst of load from
        // elsewhere falls on several lanes rather than on all of one lane's repetitions.
        let mut figs: Vec<Vec<Figures>> = lanes.iter().map(|_| Vec::new()).collect();
        let mut errs: Vec<Option<anyhow::Error>> = lanes.iter().map(|_| None).collect();
        // Every other round goes the other way, so that no lane is always measured first.
        let round = measuring_order(&lanes);
        for rep in 0..reps {
            for i in round_order(round.clone(), rep) {
                let lane = &lanes[i];
                if errs[i].is_some() {
                    continue;
                }
                seq += 1;
                let id = format!("{}-{seq}", std::process::id());
                match measure(lane.as_ref(), size, &id, child_cpu, warmup, budget) {
                    Ok(f) => figs[i].push(f),
                    Err(e) => errs[i] = Some(e),
                }
            }
        }
        let mut rows: Vec<(&dyn Lane, Result<Figures>, &[Figures])> = Vec::new();
        for ((lane, figs), err) in lanes.iter().zip(&figs).zip(errs) {
            let r = match err {
                Some(e) => Err(e),
                None => {
                    let m = |g: fn(&Figures) -> f64| {
                        median_spread(&figs.iter().map(g).collect::<Vec<_>>()).0
                    };
                    Ok(Figures {
                        p50: m(|f| f.p50),
                        p99: m(|f| f.p99),
                        p999: m(|f| f.p999),
                        max: m(|f| f.max),
                        msgs_per_s: m(|f| f.msgs_per_s),
                        cpu_sender: m(|f| f.cpu_sender),
                        cpu_receiver: m(|f| f.cpu_receiver),
                    })
                }
            };
            // Ratios need the ipcx lane of the same mechanism (listed first): the median of
            // the per-repetition ratios, each pair taken moments apart.
            let ipcx = rows
                .iter()
                .find(|(l, _, _)| l.is_ipcx() && l.mechanism() == lane.mechanism())
                .and_then(|(_, r, reps)| r.as_ref().ok().map(|_| *reps));
            let ratios = ipcx.filter(|_| !lane.is_ipcx()).map(|i| {
                (paired_ratio(i, figs, |f| f.p50), paired_ratio(i, figs, |f| f.msgs_per_s))
            });
            match &r {
                Ok(f) => {
                    let (lat, thr) = match ratios {
                        Some((l, t)) => (format!("{:.2}x", l.0), format!("{:.2}x", t.0)),
                        None => (String::new(), String::new()),
                    };
                    println!(
                        "{:<38} {:<15} {:>10} {:>10} {:>10} {:>10} {:>12.0} {:>9.1} {:>9} {:>10} {:>10}",
                        lane.label(),
                        lane.mechanism(),
                        fmt_ns(f.p50),
                        fmt_ns(f.p99),
                        fmt_ns(f.p999),
                        fmt_ns(f.max),
                        f.msgs_per_s,
                        f.msgs_per_s * size as f64 / 1e6,
                        format!("{:.0}%/{:.0}%", f.cpu_sender * 100.0, f.cpu_receiver * 100.0),
                        lat,
                        thr
                    );
                }
                Err(e) => println!(
                    "{:<38} {:<15} skipped: {}",
                    lane.label(),
                    lane.mechanism(),
                    format!("{e:#}").replace('\n', " ")
                ),
            }
            // A control's ratios are the method's spread, not a target: listed apart.
            let lines = if lane.is_control() { &mut controls } else { &mut verdicts };
            let head = format!("{:>6}  {:<38}", fmt_size(size), lane.label());
            if let (Some((l, t)), Ok(_)) = (ratios, &r) {
                let ok = |met: bool| match (lane.is_control(), met) {
                    (true, _) => "",
                    (false, true) => "met ",
                    (false, false) => "MISSED ",
                };
                lines.push(format!(
                    "{head} latency {}{}, throughput {}{}",
                    ok(l.0 <= 1.0),
                    ratio_text(l),
                    ok(t.0 >= 1.0),
                    ratio_text(t),
                ));
            }
            if ipcx.is_none() && !lane.is_ipcx() {
                lines.push(format!(
                    "{head} no figure: the ipcx {} lane was not measured",
                    lane.mechanism()
                ));
            }
            rows.push((lane.as_ref(), r, figs));
        }
    }
    // iceoryx2 leaves its (empty) directories behind; remove them if nothing else is there.
    for d in ["nodes", "services", ""] {
        let _ = std::fs::remove_dir(std::path::Path::new("/tmp/iceoryx2").join(d));
    }
    println!();
    println!(
        "targets (ipcx at least as fast as the peer on the same mechanism; medians of \
         per-repetition ratios, their quartiles in parentheses):"
    );
    if verdicts.is_empty() {
        println!("  none comparable: no peer had its ipcx lane measured in this run");
    }
    for v in &verdicts {
        println!("  {v}");
    }
    if !controls.is_empty() {
        println!();
        println!(
            "controls (ipcx against itself, measured the same way: no difference at all \
             gives these ratios, so a target missed or met by less than their spread is a tie):"
        );
        for c in &controls {
            println!("  {c}");
        }
    }
    println!();
    println!(
        "cpu tx/rx: CPU time of the sender and the receiver over the throughput run's \
         wall-clock time. Ratios are ipcx/peer, each the median of the per-repetition \
         ratios (the peer measured right after the ipcx lane of the same mechanism): p50 \
         ratio below 1 means ipcx's round trip is shorter, thr ratio above 1 means ipcx \
         moves more messages per second. Ran in {:.0} s.",
        t0.elapsed().as_secs_f64()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rate(r: f64) -> Figures {
        Figures { msgs_per_s: r, ..Figures::default() }
    }

    #[test]
    fn each_peer_is_measured_right_after_its_ipcx_lane() {
        let lanes = all_lanes();
        let order = measuring_order(&lanes);
        let mut sorted = order.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..lanes.len()).collect::<Vec<_>>(), "every lane once");
        for (k, &j) in order.iter().enumerate().filter(|(_, &j)| !lanes[j].is_ipcx()) {
            // Back to the nearest ipcx lane: only peers of the same mechanism in between.
            let before = order[..k].iter().rev().find(|&&i| lanes[i].is_ipcx());
            let i =
                *before.unwrap_or_else(|| panic!("{} has no ipcx lane before it", lanes[j].key()));
            assert_eq!(
                lanes[i].mechanism(),
                lanes[j].mechanism(),
                "{} after {}",
                lanes[j].key(),
                lanes[i].key()
            );
        }
    }

    #[test]
    fn ratios_pair_repetitions() {
        // The machine swings between a fast and a slow state; ipcx was 10% ahead in four
        // pairs, and the machine slowed down between the two halves of the last one.
        // Medians taken apart would say 0.55x.
        let ipcx = [11.0, 5.5, 11.0, 5.5, 5.5].map(rate);
        let peer = [10.0, 5.0, 10.0, 5.0, 10.0].map(rate);
        let r = paired_ratio(&ipcx, &peer, |f| f.msgs_per_s).0;
        assert!((r - 1.1).abs() < 1e-9, "{r}");
        let apart = median_spread(&ipcx.map(|f| f.msgs_per_s)).0
            / median_spread(&peer.map(|f| f.msgs_per_s)).0;
        assert!((apart - 0.55).abs() < 1e-9, "{apart}");
    }
}
