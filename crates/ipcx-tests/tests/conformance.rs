//! The conformance suite: every behaviour written once over the channel traits and run for
//! every mechanism in `ipcx_tests::mechs::all()`, between this test process and a real peer
//! process (`ipcx-testpeer`).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use ipcx::{ErrorKind, Receiver, Sender};
use ipcx_tests::conformance::Ctx;
use ipcx_tests::{check_pattern, mechs, pattern_message, ChildGuard, TestDir};

fn ctx() -> Ctx {
    Ctx { peer: PathBuf::from(env!("CARGO_BIN_EXE_ipcx-testpeer")) }
}

fn mechanisms() -> Vec<Box<dyn ipcx_tests::conformance::Mech>> {
    mechs::all()
}

fn expect_ok(mut child: ChildGuard, what: &str) -> String {
    let out = child.wait_within(Duration::from_secs(60));
    assert!(out.status.success(), "{what}: peer failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn hundred_thousand_messages_in_order_whole() {
    const N: u64 = 100_000;
    for m in mechanisms() {
        let dir = TestDir::new(m.name());
        let max = m.max_size().min(512).to_string();
        let (child, mut rx, _g) = m.peer_sends(&ctx(), &dir, "gen", &[&N.to_string(), &max]);
        let mut buf = Vec::new();
        for want in 0..N {
            rx.recv_timeout_into(&mut buf, Duration::from_secs(20))
                .unwrap_or_else(|e| panic!("{}: message {want}: {e}", m.name()));
            let seq =
                check_pattern(&buf).unwrap_or_else(|e| panic!("{}: message {want}: {e}", m.name()));
            assert_eq!(seq, want, "{}: out of order or lost", m.name());
        }
        expect_ok(child, m.name());
    }
}

#[test]
fn peer_receives_what_we_send_in_order() {
    const N: u64 = 20_000;
    for m in mechanisms() {
        let dir = TestDir::new(m.name());
        let (child, mut tx, _g) = m.peer_receives(&ctx(), &dir, "check", &[&N.to_string()]);
        let mut msg = Vec::new();
        for seq in 0..N {
            pattern_message(seq, m.max_size().min(2048), &mut msg);
            tx.send_timeout(&msg, Duration::from_secs(20))
                .unwrap_or_else(|e| panic!("{}: {e}", m.name()));
        }
        let out = expect_ok(child, m.name());
        assert_eq!(out.trim(), format!("ok {N}"), "{}", m.name());
    }
}

#[test]
fn empty_and_maximum_size_messages_keep_their_boundaries() {
    for m in mechanisms() {
        let dir = TestDir::new(m.name());
        let max = m.max_size().min(4 << 20);
        let fill_max = format!("fill:{max}");
        let (child, mut rx, _g) = m.peer_sends(
            &ctx(),
            &dir,
            "send",
            &["empty", &fill_max, "fill:1", "empty", "text:end"],
        );
        let mut buf = Vec::new();
        for want in [0, max, 1, 0] {
            rx.recv_timeout_into(&mut buf, Duration::from_secs(20))
                .unwrap_or_else(|e| panic!("{}: {e}", m.name()));
            assert_eq!(buf.len(), want, "{}: boundary lost", m.name());
            assert!(buf.iter().all(|&b| b == 0xab), "{}: content damaged", m.name());
        }
        rx.recv_timeout_into(&mut buf, Duration::from_secs(20)).unwrap();
        assert_eq!(buf, b"end", "{}", m.name());
        expect_ok(child, m.name());
    }
}

#[test]
fn receive_timeouts_are_honoured() {
    for m in mechanisms() {
        let dir = TestDir::new(m.name());
        let (mut child, mut rx, _g) = m.peer_sends(&ctx(), &dir, "hold", &["5"]);
        let e = rx.try_recv().expect_err("nothing was sent");
        assert_eq!(e.kind(), ErrorKind::WouldBlock, "{}: {e}", m.name());
        let t = Instant::now();
        let e = rx.recv_timeout(Duration::from_millis(200)).expect_err("nothing was sent");
        let took = t.elapsed();
        assert_eq!(e.kind(), ErrorKind::TimedOut, "{}: {e}", m.name());
        assert!(
            took >= Duration::from_millis(190) && took < Duration::from_secs(3),
            "{}: took {took:?}",
            m.name()
        );
        child.kill9();
    }
}

#[test]
fn a_full_channel_pushes_back_and_send_timeout_is_honoured() {
    for m in mechanisms() {
        if let Err(why) = m.backpressure() {
            eprintln!("{}: skipped: {why}", m.name());
            continue;
        }
        let dir = TestDir::new(m.name());
        let (mut child, mut tx, _g) = m.peer_receives(&ctx(), &dir, "stall", &["10"]);
        let msg = vec![7u8; m.max_size().min(1000)];
        let mut sent = 0;
        let e = loop {
            match tx.try_send(&msg) {
                Ok(()) => sent += 1,
                Err(e) => break e,
            }
            assert!(sent < 10_000_000, "{}: never filled", m.name());
        };
        assert_eq!(e.kind(), ErrorKind::Full, "{}: {e}", m.name());
        let t = Instant::now();
        let e = tx.send_timeout(&msg, Duration::from_millis(200)).expect_err("still full");
        assert_eq!(e.kind(), ErrorKind::TimedOut, "{}: {e}", m.name());
        assert!(t.elapsed() >= Duration::from_millis(190), "{}", m.name());
        child.kill9();
    }
}

#[test]
fn peer_exit_gives_disconnected_after_its_messages() {
    for m in mechanisms() {
        if let Err(why) = m.disconnect() {
            eprintln!("{}: skipped: {why}", m.name());
            continue;
        }
        let dir = TestDir::new(m.name());
        let (child, mut rx, _g) = m.peer_sends(&ctx(), &dir, "send", &["text:a", "text:b"]);
        assert_eq!(rx.recv_timeout(Duration::from_secs(10)).unwrap(), b"a");
        assert_eq!(rx.recv_timeout(Duration::from_secs(10)).unwrap(), b"b");
        expect_ok(child, m.name());
        let e = rx.recv_timeout(Duration::from_secs(10)).expect_err("peer is gone");
        assert_eq!(e.kind(), ErrorKind::Disconnected, "{}: {e}", m.name());
    }
}

#[test]
fn sending_to_a_peer_that_exited_gives_disconnected() {
    for m in mechanisms() {
        if let Err(why) = m.disconnect() {
            eprintln!("{}: skipped: {why}", m.name());
            continue;
        }
        let dir = TestDir::new(m.name());
        let (child, mut tx, _g) = m.peer_receives(&ctx(), &dir, "check", &["1"]);
        let mut msg = Vec::new();
        pattern_message(0, 64, &mut msg);
        tx.send(&msg).unwrap();
        expect_ok(child, m.name());
        let e =
            (0..1000).find_map(|_| tx.send(b"x").err()).expect("sends to a dead peer must fail");
        assert_eq!(e.kind(), ErrorKind::Disconnected, "{}: {e}", m.name());
    }
}

#[test]
fn oversized_messages_are_refused_naming_the_limit() {
    for m in mechanisms() {
        let dir = TestDir::new(m.name());
        let (child, mut tx, _g) = m.peer_receives(&ctx(), &dir, "check", &["1"]);
        let max = m.max_size();
        assert_eq!(tx.max_message_size(), max, "{}", m.name());
        let e = tx.send(&vec![0; max + 1]).expect_err("over the limit");
        assert_eq!(e.kind(), ErrorKind::TooLarge, "{}: {e}", m.name());
        assert_eq!(e.limit(), Some(max as u64), "{}", m.name());
        assert!(e.to_string().contains(&max.to_string()), "{}: {e}", m.name());
        let mut msg = Vec::new();
        pattern_message(0, 64, &mut msg);
        tx.send(&msg).unwrap();
        expect_ok(child, m.name());
    }
}
