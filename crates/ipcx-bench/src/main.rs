//! `ipcx-peers`: ipcx beside the crates a user would pick instead, in one run.
//!
//! Every scenario runs between two processes (this binary re-executes itself as the child,
//! pinned to another CPU when there is one): ping-pong round trips into an HDR histogram,
//! then one-way throughput for a fixed time. Each peer crate and each ipcx lane goes
//! through the same harness ([`End`]), with messages of exactly the measured size whose
//! first byte says whether it is data (0) or the end marker (0xFF).
//!
//! Run: `cargo run --release -p ipcx-bench -- [--quick] [--sizes 64,1K,64K] [--only NAME,..]`.

mod harness;
mod ipcx_lanes;
mod peers;

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let r = match args.first().map(String::as_str) {
        Some("--child") => harness::child(&args[1..]),
        Some("--watchdog") => harness::watchdog(&args[1..]),
        _ => harness::run(&args),
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ipcx-peers: {e:#}");
            ExitCode::FAILURE
        }
    }
}
