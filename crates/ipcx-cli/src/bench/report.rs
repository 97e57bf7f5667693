//! The printed report: the classic comparison of the mechanisms extended with the measured
//! figures, one table per message size, and a recommendation computed from the figures.

use serde::Serialize;

use super::units::{fmt_ns, fmt_rate, fmt_size};
use super::{LaneResult, Ratio};

/// The classic textbook comparison of one mechanism.
#[derive(Clone, Copy, Debug, Serialize, PartialEq, Eq)]
pub struct Classic {
    /// When to pick it, in a few words.
    pub when_to_use: &'static str,
    /// Where the bytes sit between the two processes.
    pub medium: &'static str,
    /// What a read returns: bytes of a stream, or one message.
    pub unit: &'static str,
    /// One-way or two-way per channel.
    pub direction: &'static str,
    /// Which processes can use it.
    pub reach: &'static str,
    /// Every message goes through a system call (a "kernel path").
    pub kernel: bool,
    /// A hardware-limit lane (no channel at all): shown for reference, never recommended.
    pub limit: bool,
}

const fn c(
    when_to_use: &'static str,
    medium: &'static str,
    unit: &'static str,
    direction: &'static str,
    reach: &'static str,
    kernel: bool,
) -> Classic {
    Classic { when_to_use, medium, unit, direction, reach, kernel, limit: false }
}

/// The classic comparison for a lane by its name; lanes not in the table get dashes.
pub fn classic(name: &str) -> Classic {
    match name {
        "pipe" => {
            c("parent to child, shell-style", "kernel buffer", "bytes", "one-way", "related", true)
        }
        "fifo" => {
            c("unrelated processes, a path", "kernel buffer", "bytes", "one-way", "host", true)
        }
        "sysv-mq" => c(
            "typed messages, old systems",
            "kernel queue",
            "message",
            "both (types)",
            "host",
            true,
        ),
        "posix-mq" => {
            c("prioritised messages, notify", "kernel queue", "message", "one-way", "host", true)
        }
        "unix" => {
            c("local client/server stream", "socket buffer", "bytes", "two-way", "host", true)
        }
        "unix-seqpacket" => {
            c("local client/server messages", "socket buffer", "message", "two-way", "host", true)
        }
        "unix-dgram" => {
            c("local datagrams, many senders", "socket buffer", "message", "one-way", "host", true)
        }
        "tcp" => c("may go remote one day", "TCP/IP stack", "bytes", "two-way", "network", true),
        "shm" | "sysv-shm" => {
            c("lowest latency, big data", "shared pages", "message", "one-way", "host", false)
        }
        "shm-spin" => c(
            "latency above all (burns a CPU)",
            "shared pages",
            "message",
            "one-way",
            "host",
            false,
        ),
        "mmap-log-sync" => {
            c("durable log, each record synced", "mapped file", "record", "one-way", "host", true)
        }
        "mmap" | "mmap-log" => c(
            "durable log, replay, many readers",
            "mapped file",
            "record",
            "one-way",
            "host",
            false,
        ),
        "cacheline" => Classic {
            limit: true,
            ..c(
                "hardware floor: a line bounce",
                "CPU caches",
                "64 B line",
                "two-way",
                "1 machine",
                false,
            )
        },
        "memcpy" => Classic {
            limit: true,
            ..c("hardware ceiling: copy speed", "memory", "bytes", "-", "1 machine", false)
        },
        _ => c("-", "-", "-", "-", "-", false),
    }
}

/// One table per size. Every figure printed comes from the same `LaneResult` fields the
/// JSON report holds, formatted with [`fmt_ns`], [`fmt_rate`] and one decimal for MB/s.
pub fn print_tables(
    out: &mut impl std::io::Write,
    results: &[LaneResult],
    ratios: &[Ratio],
    sizes: &[usize],
) -> std::io::Result<()> {
    for &size in sizes {
        writeln!(out)?;
        writeln!(out, "== {} messages ==", fmt_size(size))?;
        writeln!(
            out,
            "{:<15} {:<14} {:<7} {:<12} {:<9} {:<4} {:>9} {:>21} {:>9} {:>9} {:>9} {:>8} {:>19} {:>8} {:>9} {:>7} {:>7}  when to use",
            "mechanism",
            "medium",
            "unit",
            "direction",
            "reach",
            "impl",
            "rtt p50",
            "[spread]",
            "p99",
            "p99.9",
            "max",
            "msgs/s",
            "[spread]",
            "MB/s",
            "cpu tx/rx",
            "lat/raw",
            "thr/raw",
        )?;
        for r in results.iter().filter(|r| r.size == size) {
            let cl = &r.classic;
            let (medium, unit, dir, reach, when) = if r.implementation == "ipcx" {
                (cl.medium, cl.unit, cl.direction, cl.reach, cl.when_to_use)
            } else {
                ("", "", "", "", "")
            };
            let head = format!(
                "{:<15} {:<14} {:<7} {:<12} {:<9} {:<4}",
                r.mechanism, medium, unit, dir, reach, r.implementation
            );
            if let Some(why) = &r.skipped {
                writeln!(out, "{head} skipped: {}", why.replace('\n', " "))?;
                continue;
            }
            let ratio = ratios
                .iter()
                .find(|x| x.mechanism == r.mechanism && x.size == size)
                .filter(|_| r.implementation == "ipcx");
            writeln!(
                out,
                "{head} {:>9} {:>21} {:>9} {:>9} {:>9} {:>8} {:>19} {:>8.1} {:>9} {:>7} {:>7}  {}",
                fmt_ns(r.p50_ns),
                format!("[{}-{}]", fmt_ns(r.p50_spread_ns.0), fmt_ns(r.p50_spread_ns.1)),
                fmt_ns(r.p99_ns),
                fmt_ns(r.p999_ns),
                fmt_ns(r.max_ns),
                fmt_rate(r.msgs_per_s),
                format!(
                    "[{}-{}]",
                    fmt_rate(r.msgs_per_s_spread.0),
                    fmt_rate(r.msgs_per_s_spread.1)
                ),
                r.mb_per_s,
                format!("{:.0}%/{:.0}%", r.cpu_sender_pct, r.cpu_receiver_pct),
                ratio.map_or(String::new(), |x| format!("{:.2}x", x.latency_ratio)),
                ratio.map_or(String::new(), |x| format!("{:.2}x", x.throughput_ratio)),
                when
            )?;
        }
    }
    Ok(())
}

/// What to pick, from the measured figures: per size, the lowest median round trip, the
/// typical kernel path, and the highest throughput (ipcx lanes, hardware limits aside).
pub fn recommendations(results: &[LaneResult], sizes: &[usize]) -> Vec<String> {
    let mut out = Vec::new();
    for &size in sizes {
        let ok: Vec<&LaneResult> = results
            .iter()
            .filter(|r| r.size == size && r.implementation == "ipcx" && r.skipped.is_none())
            .filter(|r| !r.classic.limit)
            .collect();
        let Some(best) = ok.iter().min_by(|a, b| a.p50_ns.total_cmp(&b.p50_ns)) else {
            continue;
        };
        let kernel: Vec<f64> = ok.iter().filter(|r| r.classic.kernel).map(|r| r.p50_ns).collect();
        let mut line = format!(
            "for {} request/reply on this machine: {}, {}",
            fmt_size(size),
            best.mechanism,
            fmt_ns(best.p50_ns)
        );
        if !kernel.is_empty() && !best.classic.kernel {
            line += &format!("; kernel paths: ~{}", fmt_ns(super::median_spread(&kernel).0));
        }
        if let Some(floor) = results.iter().find(|r| {
            r.size == size
                && r.implementation == "ipcx"
                && r.skipped.is_none()
                && r.mechanism == "cacheline"
        }) {
            line += &format!(" (hardware floor: {})", fmt_ns(floor.p50_ns));
        }
        out.push(line);
        if let Some(t) = ok.iter().max_by(|a, b| a.msgs_per_s.total_cmp(&b.msgs_per_s)) {
            out.push(format!(
                "for {} one-way streaming: {}, {} msgs/s ({:.1} MB/s)",
                fmt_size(size),
                t.mechanism,
                fmt_rate(t.msgs_per_s),
                t.mb_per_s
            ));
        }
    }
    out
}
