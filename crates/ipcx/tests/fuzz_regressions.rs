//! Every input a fuzz target (`fuzz/`) ever crashed on, kept as a test so the bug stays
//! fixed, and the committed fuzz corpora replayed through the targets' own checks (shared
//! source: `fuzz/fuzz_targets/check_*.rs`), so `cargo test` on stable keeps them green.

use std::path::PathBuf;

use ipcx::Address;

#[path = "../../../fuzz/fuzz_targets/check_addr.rs"]
mod check_addr;
#[path = "../../../fuzz/fuzz_targets/check_frame.rs"]
mod check_frame;

fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus").join(target);
    let mut v: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .map(|p| {
            let data = std::fs::read(&p).unwrap();
            (p, data)
        })
        .collect();
    v.sort();
    assert!(!v.is_empty(), "empty corpus {}", dir.display());
    v
}

#[test]
fn addr_corpus_replays_clean() {
    for (_, data) in corpus("addr") {
        check_addr::check(&data);
    }
}

#[test]
fn frame_corpus_replays_clean() {
    for (_, data) in corpus("frame") {
        check_frame::check(&data);
    }
}

/// `frame`: the reference decoder's own edge cases, kept explicit.
#[test]
fn frame_edge_cases() {
    // length framing, limit 64: a frame over the limit, a cut header, a cut payload.
    check_frame::check(&[0, 16, 1, 0, 65, 0, 0, 0]);
    check_frame::check(&[0, 16, 1, 1, 1, 0]);
    check_frame::check(&[0, 16, 1, 1, 5, 0, 0, 0, b'a', b'b']);
    check_frame::check(&[0, 16, 3, 1, 0xff, 0xff, 0xff, 0xff]);
    // lines without a final newline, fixed records with a short tail, raw.
    check_frame::check(b"\x01\x00\x02\x01a\n\nb");
    check_frame::check(&[2, 2, 9, 1, 1, 2, 3, 4, 5]);
    check_frame::check(&[3, 0, 9, 1, 1, 2, 3]);
}

/// The address property the `addr` fuzz target checks: an accepted address prints to a
/// string that parses back to the same address.
fn round_trips_or_is_refused(s: &str) {
    if let Ok(a) = Address::parse(s) {
        let printed = a.to_string();
        let again = Address::parse(&printed)
            .unwrap_or_else(|e| panic!("{s:?} printed as {printed:?}, which does not parse: {e}"));
        assert_eq!(a, again, "{s:?} -> {printed:?}");
    }
}

/// `addr`: a TCP host with a stray `[` (`tcp:[[x]:5`) was accepted as host `[x` and
/// printed as `tcp:[x:5`, which does not parse. Brackets inside a host are now refused.
#[test]
fn addr_stray_bracket_in_tcp_host() {
    let s = "tcp:[[ifoeee\u{2}\0\0\0\u{8}\u{0}2]:5?max=0x8";
    round_trips_or_is_refused(s);
    assert!(Address::parse("tcp:[[x]:5").is_err());
    assert!(Address::parse("tcp:a]b:5").is_err());
    round_trips_or_is_refused("tcp:[::1]:5");
    round_trips_or_is_refused("tcp:[localhost]:5");
}

/// Inputs that crashed the ring reader (`fuzz/regressions/ring_reader-*`): a tail near the
/// top of u64 overflowed when the next position was computed (caught by overflow checks,
/// which `cargo test` has on).
#[test]
fn ring_reader_crashes_stay_fixed() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/regressions");
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        if p.file_name().is_some_and(|f| f.to_string_lossy().starts_with("ring_reader-")) {
            let _ = ipcx::shm::fuzz_reader(&std::fs::read(&p).unwrap());
            n += 1;
        }
    }
    assert!(n > 0, "no ring_reader regressions in {}", dir.display());
}
