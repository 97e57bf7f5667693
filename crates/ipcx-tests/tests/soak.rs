//! The soak: the conformance suite's ordered, checksummed stream, 10 million messages per
//! mechanism in each direction. Not in CI; run it with
//!
//! ```text
//! cargo test --release -p ipcx-tests --test soak -- --ignored --nocapture soak
//! ```
//!
//! `IPCX_SOAK_MESSAGES=N` changes the count; `IPCX_SOAK_MECHS=pipe,shm` runs only the named
//! mechanisms (names as in `ipcx_tests::mechs::all()`). It prints one line of figures per mechanism and direction for
//! `docs/RELIABILITY.md`: messages, bytes, seconds, messages lost, damaged, or out of order
//! (which must all be zero; any of them fails the test).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use ipcx::{Receiver, Sender};
use ipcx_tests::conformance::Ctx;
use ipcx_tests::{check_pattern, mechs, pattern_message, TestDir};

fn ctx() -> Ctx {
    Ctx { peer: PathBuf::from(env!("CARGO_BIN_EXE_ipcx-testpeer")) }
}

fn count() -> u64 {
    std::env::var("IPCX_SOAK_MESSAGES").ok().and_then(|s| s.parse().ok()).unwrap_or(10_000_000)
}

/// Messages of 12 to 256 bytes: many messages, so many chances for a boundary to slip.
const MAX: usize = 256;

fn soak_run() {
    let n = count();
    let only: Option<Vec<String>> = std::env::var("IPCX_SOAK_MECHS")
        .ok()
        .map(|s| s.split(',').map(|n| n.trim().to_owned()).collect());
    for m in mechs::all() {
        if only.as_ref().is_some_and(|o| !o.iter().any(|n| n == m.name())) {
            continue;
        }
        let max = m.max_size().min(MAX);
        // Peer to us.
        let dir = TestDir::new(m.name());
        let t = Instant::now();
        let (mut child, mut rx, _g) =
            m.peer_sends(&ctx(), &dir, "gen", &[&n.to_string(), &max.to_string()]);
        let (mut buf, mut bytes) = (Vec::new(), 0u64);
        for want in 0..n {
            rx.recv_timeout_into(&mut buf, Duration::from_secs(60))
                .unwrap_or_else(|e| panic!("{}: message {want}: {e}", m.name()));
            let seq = check_pattern(&buf)
                .unwrap_or_else(|e| panic!("{}: message {want} damaged: {e}", m.name()));
            assert_eq!(seq, want, "{}: message lost or out of order", m.name());
            bytes += buf.len() as u64;
        }
        let out = child.wait_within(Duration::from_secs(60));
        assert!(out.status.success(), "{}: {}", m.name(), String::from_utf8_lossy(&out.stderr));
        let secs = t.elapsed().as_secs_f64();
        println!(
            "soak {} peer->us: {n} messages, {bytes} bytes, {secs:.1} s ({:.0} msg/s), lost 0, damaged 0, out of order 0",
            m.name(),
            n as f64 / secs
        );

        // Us to the peer, which checks every sequence number and checksum.
        let dir = TestDir::new(m.name());
        let t = Instant::now();
        let (child, mut tx, _g) = m.peer_receives(&ctx(), &dir, "check", &[&n.to_string()]);
        let (mut msg, mut bytes) = (Vec::new(), 0u64);
        for seq in 0..n {
            pattern_message(seq, max, &mut msg);
            tx.send_timeout(&msg, Duration::from_secs(60))
                .unwrap_or_else(|e| panic!("{}: message {seq}: {e}", m.name()));
            bytes += msg.len() as u64;
        }
        let mut child = child;
        let out = child.wait_within(Duration::from_secs(120));
        assert!(out.status.success(), "{}: {}", m.name(), String::from_utf8_lossy(&out.stderr));
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), format!("ok {n}"));
        let secs = t.elapsed().as_secs_f64();
        println!(
            "soak {} us->peer: {n} messages, {bytes} bytes, {secs:.1} s ({:.0} msg/s), lost 0, damaged 0, out of order 0",
            m.name(),
            n as f64 / secs
        );
    }
}

#[test]
#[ignore = "soak: 10 million messages per mechanism and direction; run with -- --ignored soak"]
fn soak_ten_million_messages_per_mechanism() {
    soak_run();
}
