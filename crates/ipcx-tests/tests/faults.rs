//! Fault figures, for every mechanism in `ipcx_tests::mechs::all()`:
//!
//! - a peer killed with SIGKILL at a random moment: the survivor gets every message the
//!   peer finished sending, whole and in order, then `Disconnected`, within a bounded
//!   time; never a hang, never a partial message;
//! - a full channel pushes back (`Full`, then blocking sends) and loses nothing;
//! - 10,000 open/close cycles leak no descriptor and no mapping.
//!
//! Scale: by default each direction runs 20 kills over 1,000 exchanges in all (20 rounds
//! of up to 50 messages before the kill), which keeps CI within a few minutes;
//! `IPCX_FAULT_SCALE=N` multiplies the rounds (N=50 gives 1,000 kills). The tests take a
//! lock so that the descriptor counts are not disturbed by the others in this binary.

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use ipcx::{ErrorKind, Receiver, Sender};
use ipcx_tests::conformance::{Ctx, Mech};
use ipcx_tests::{check_pattern, mechs, open_fds, pattern_message, rand, TestDir};

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

fn ctx() -> Ctx {
    Ctx { peer: PathBuf::from(env!("CARGO_BIN_EXE_ipcx-testpeer")) }
}

fn scale() -> u64 {
    std::env::var("IPCX_FAULT_SCALE").ok().and_then(|s| s.parse().ok()).unwrap_or(1).max(1)
}

const ROUNDS: u64 = 20;
const PER_ROUND: u64 = 50;
/// The longest any survivor may wait for its verdict.
const BOUND: Duration = Duration::from_secs(10);

fn seed() -> u64 {
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
    let s = t.as_nanos() as u64 ^ u64::from(std::process::id());
    eprintln!("fault seed {s}");
    s
}

/// A pause of 0 to 500 µs, so the kill lands at varied points of the peer's work.
fn jitter(st: &mut u64) {
    std::thread::sleep(Duration::from_micros(rand(st) % 500));
}

fn msg_max(m: &dyn Mech) -> usize {
    m.max_size().min(1024)
}

#[test]
fn a_sender_killed_at_random_leaves_whole_messages_then_disconnected() {
    let _l = serial();
    let mut st = seed();
    for m in mechs::all() {
        if let Err(why) = m.disconnect() {
            eprintln!("{}: skipped: {why}", m.name());
            continue;
        }
        let (mut kills, mut received) = (0u64, 0u64);
        for round in 0..ROUNDS * scale() {
            let dir = TestDir::new(m.name());
            let max = msg_max(&*m).to_string();
            let (mut child, mut rx, _g) = m.peer_sends(&ctx(), &dir, "gen", &["100000000", &max]);
            let mut buf = Vec::new();
            let mut next = 0u64;
            let kill_after = 1 + rand(&mut st) % PER_ROUND;
            let verdict = loop {
                if next == kill_after {
                    jitter(&mut st);
                    child.kill9();
                    kills += 1;
                }
                let t = Instant::now();
                match rx.recv_timeout_into(&mut buf, BOUND) {
                    Ok(()) => {
                        let seq = check_pattern(&buf).unwrap_or_else(|e| {
                            panic!("{}: round {round}: message {next}: {e}", m.name())
                        });
                        assert_eq!(seq, next, "{}: round {round}: lost or reordered", m.name());
                        next += 1;
                    }
                    Err(e) => break (e, t.elapsed()),
                }
            };
            let (e, took) = verdict;
            assert!(next >= kill_after, "{}: round {round}: ended before the kill: {e}", m.name());
            assert_eq!(
                e.kind(),
                ErrorKind::Disconnected,
                "{}: round {round}: after {next} messages: {e}",
                m.name()
            );
            assert!(took < BOUND, "{}: the verdict took {took:?}", m.name());
            received += next;
        }
        eprintln!(
            "{}: sender killed {kills} times; {received} messages received whole, 0 partial, 0 lost",
            m.name()
        );
    }
}

#[test]
fn a_receiver_killed_at_random_gives_the_sender_disconnected() {
    let _l = serial();
    let mut st = seed();
    for m in mechs::all() {
        if let Err(why) = m.disconnect() {
            eprintln!("{}: skipped: {why}", m.name());
            continue;
        }
        let (mut kills, mut sent) = (0u64, 0u64);
        for round in 0..ROUNDS * scale() {
            let dir = TestDir::new(m.name());
            let (mut child, mut tx, _g) = m.peer_receives(&ctx(), &dir, "check", &["100000000"]);
            let mut msg = Vec::new();
            let kill_after = 1 + rand(&mut st) % PER_ROUND;
            let mut seq = 0u64;
            let started = Instant::now();
            let e = loop {
                if seq == kill_after {
                    jitter(&mut st);
                    child.kill9();
                    kills += 1;
                }
                pattern_message(seq, msg_max(&*m), &mut msg);
                match tx.send_timeout(&msg, BOUND) {
                    Ok(()) => seq += 1,
                    Err(e) => break e,
                }
                assert!(
                    started.elapsed() < BOUND * 2,
                    "{}: round {round}: sends to a dead peer kept succeeding",
                    m.name()
                );
            };
            assert!(seq >= kill_after, "{}: round {round}: failed before the kill: {e}", m.name());
            assert_eq!(e.kind(), ErrorKind::Disconnected, "{}: round {round}: {e}", m.name());
            sent += seq;
        }
        eprintln!("{}: receiver killed {kills} times; {sent} messages sent", m.name());
    }
}

#[test]
fn a_full_channel_pushes_back_without_loss() {
    let _l = serial();
    const N: u64 = 50_000;
    for m in mechs::all() {
        if let Err(why) = m.backpressure() {
            eprintln!("{}: skipped: {why}", m.name());
            continue;
        }
        let dir = TestDir::new(m.name());
        // The peer opens, then reads nothing for a second, then checks all N messages.
        let (mut child, mut tx, _g) =
            m.peer_receives(&ctx(), &dir, "check", &[&N.to_string(), "1000"]);
        let mut msg = Vec::new();
        let mut seq = 0;
        let mut fulls = 0;
        while seq < N {
            pattern_message(seq, msg_max(&*m), &mut msg);
            match tx.try_send(&msg) {
                Ok(()) => seq += 1,
                Err(e) if e.kind() == ErrorKind::Full => {
                    fulls += 1;
                    break;
                }
                Err(e) => panic!("{}: {e}", m.name()),
            }
        }
        assert_eq!(fulls, 1, "{}: the channel never filled in {N} messages", m.name());
        let filled = seq;
        while seq < N {
            pattern_message(seq, msg_max(&*m), &mut msg);
            tx.send_timeout(&msg, Duration::from_secs(20))
                .unwrap_or_else(|e| panic!("{}: message {seq}: {e}", m.name()));
            seq += 1;
        }
        let out = child.wait_within(Duration::from_secs(60));
        assert!(out.status.success(), "{}: {}", m.name(), String::from_utf8_lossy(&out.stderr));
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), format!("ok {N}"), "{}", m.name());
        eprintln!("{}: full after {filled} messages; all {N} delivered in order", m.name());
    }
}

fn maps_lines() -> usize {
    std::fs::read_to_string("/proc/self/maps").map(|s| s.lines().count()).unwrap_or(0)
}

#[test]
fn ten_thousand_open_close_cycles_leak_nothing() {
    let _l = serial();
    const CYCLES: usize = 10_000;
    for m in mechs::all() {
        let dir = TestDir::new(m.name());
        let mut buf = Vec::new();
        let mut cycle = |i: usize| -> bool {
            match m.open_pair(&dir) {
                Ok((mut tx, mut rx, guard)) => {
                    tx.send(b"x").unwrap_or_else(|e| panic!("{}: cycle {i}: {e}", m.name()));
                    rx.recv_timeout_into(&mut buf, Duration::from_secs(10))
                        .unwrap_or_else(|e| panic!("{}: cycle {i}: {e}", m.name()));
                    assert_eq!(buf, b"x");
                    drop((tx, rx, guard));
                    true
                }
                Err(why) => {
                    eprintln!("{}: skipped: {why}", m.name());
                    false
                }
            }
        };
        // Warm up: first-use allocations (buffers, thread-locals) are not leaks.
        if !(0..50).all(&mut cycle) {
            continue;
        }
        let (fds, maps) = (open_fds(), maps_lines());
        for i in 0..CYCLES {
            cycle(i);
        }
        let (fds2, maps2) = (open_fds(), maps_lines());
        assert_eq!(fds2, fds, "{}: descriptors leaked over {CYCLES} cycles", m.name());
        assert!(
            maps2 <= maps + 4,
            "{}: mappings grew from {maps} to {maps2} over {CYCLES} cycles",
            m.name()
        );
        eprintln!("{}: {CYCLES} cycles: fds {fds} -> {fds2}, maps {maps} -> {maps2}", m.name());
    }
}

#[test]
fn a_sender_killed_inside_a_large_message_never_delivers_part_of_it() {
    // Messages larger than the pipe buffer take several writes, so a kill can cut one in
    // the middle. The receiver must then report the cut (`Corrupted`: the stream ended
    // inside a message) or the end, and never hand over the part it got.
    let _l = serial();
    let mut st = seed();
    for m in mechs::all() {
        if m.disconnect().is_err() || m.max_size() < (256 << 10) {
            eprintln!("{}: skipped: messages fit one atomic write", m.name());
            continue;
        }
        let (mut cut, mut whole) = (0, 0u64);
        for round in 0..(10 * scale()) {
            let dir = TestDir::new(m.name());
            let max = m.max_size().min(4 << 20).to_string();
            let (mut child, mut rx, _g) = m.peer_sends(&ctx(), &dir, "gen", &["1000000", &max]);
            let mut buf = Vec::new();
            rx.recv_timeout_into(&mut buf, BOUND).unwrap();
            check_pattern(&buf).unwrap();
            // Making a large patterned message takes the peer milliseconds; land anywhere
            // in the next few.
            std::thread::sleep(Duration::from_micros(rand(&mut st) % 200_000));
            child.kill9();
            let mut next = 1;
            let e = loop {
                match rx.recv_timeout_into(&mut buf, BOUND) {
                    Ok(()) => {
                        let seq = check_pattern(&buf).unwrap_or_else(|e| {
                            panic!(
                                "{}: round {round}: a partial message was delivered: {e}",
                                m.name()
                            )
                        });
                        assert_eq!(seq, next, "{}", m.name());
                        next += 1;
                    }
                    Err(e) => break e,
                }
            };
            match e.kind() {
                ErrorKind::Corrupted => cut += 1,
                ErrorKind::Disconnected => {}
                _ => panic!("{}: round {round}: {e}", m.name()),
            }
            whole += next;
        }
        eprintln!("{}: {whole} large messages whole; {cut} cut by the kill and refused", m.name());
    }
}
