//! Unit tests of the ring's logic over a heap buffer (these also run under Miri).

use super::*;
use proptest::prelude::*;

fn msg(i: u32, len: usize) -> Vec<u8> {
    (0..len).map(|k| (i as usize * 31 + k) as u8).collect()
}

#[test]
fn heap_ring_keeps_boundaries_and_wraps() {
    let (mut w, mut r) = heap_ring(1024, WaitMode::Blocking).unwrap();
    assert_eq!(w.max_message_size(), 504);
    let mut buf = Vec::new();
    // Many rounds of odd sizes force wrap markers at every offset.
    for i in 0..2000u32 {
        let len = (i as usize * 37) % 505;
        w.send(&msg(i, len), Wait::Never).unwrap();
        r.recv(&mut buf, Wait::Never).unwrap();
        assert_eq!(buf, msg(i, len), "message {i}");
    }
    assert_eq!(r.recv(&mut buf, Wait::Never).unwrap_err().kind(), ErrorKind::WouldBlock);
}

/// Request/reply rounds mixed with bursts sent while the reader is away (not in a
/// receive): every message whole and in order, and a burst always finds the whole ring's
/// room (the writer wraps early only for a reader waiting in a receive, which passes the
/// wrap marker at once; the skipped bytes count as used until it does).
#[test]
fn heap_ring_bursts_after_request_reply_find_the_whole_ring() {
    let (mut w, mut r) = heap_ring(32 << 10, WaitMode::Blocking).unwrap();
    let mut buf = Vec::new();
    let mut i = 0u32;
    for round in 0..12 {
        for _ in 0..20 {
            let len = (i as usize * 53) % 1500;
            w.send(&msg(i, len), Wait::Never).unwrap();
            r.recv(&mut buf, Wait::Never).unwrap();
            assert_eq!(buf, msg(i, len), "message {i}");
            i += 1;
        }
        // 14 to 25 records of 712 bytes: up to 17.8 KB of a 32 KiB ring.
        let burst = 14 + round;
        for k in 0..burst {
            w.send(&msg(i + k, 700), Wait::Never)
                .unwrap_or_else(|e| panic!("round {round}, burst message {k}: {e}"));
        }
        for k in 0..burst {
            r.recv(&mut buf, Wait::Never).unwrap();
            assert_eq!(buf, msg(i + k, 700), "burst message {}", i + k);
        }
        i += burst;
    }
    assert_eq!(r.recv(&mut buf, Wait::Never).unwrap_err().kind(), ErrorKind::WouldBlock);
}

#[test]
fn full_ring_says_full_and_too_large_names_the_limit() {
    let (mut w, mut r) = heap_ring(1024, WaitMode::Blocking).unwrap();
    let mut n = 0;
    let e = loop {
        match w.send(&[1; 100], Wait::Never) {
            Ok(()) => n += 1,
            Err(e) => break e,
        }
    };
    assert_eq!(e.kind(), ErrorKind::Full);
    assert_eq!(n, 1024 / 112);
    let e = w.send(&[0; 505], Wait::Never).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::TooLarge);
    assert_eq!(e.limit(), Some(504));
    let t = std::time::Instant::now();
    let e = w.send(&[1; 100], Wait::timeout(std::time::Duration::from_millis(60))).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::TimedOut);
    assert!(t.elapsed() >= std::time::Duration::from_millis(60));
    let mut buf = Vec::new();
    r.recv(&mut buf, Wait::Never).unwrap();
    w.send(&[1; 100], Wait::Never).unwrap();
}

#[test]
fn zero_copy_guards_publish_and_release() {
    let (mut w, mut r) = heap_ring(1024, WaitMode::Blocking).unwrap();
    {
        let mut g = w.reserve(10, Wait::Never).unwrap();
        g.write_at(0, b"hello").unwrap();
        g.write_at(5, b"world").unwrap();
        assert_eq!(g.write_at(6, b"world").unwrap_err().kind(), ErrorKind::InvalidInput);
        // Not committed yet: nothing to read.
        g.commit();
    }
    {
        // Dropped without commit: nothing is sent.
        let _g = w.reserve(3, Wait::Never).unwrap();
    }
    let g = r.recv_in_place(Wait::Never).unwrap();
    assert_eq!(g.len(), 10);
    let mut out = [0u8; 5];
    g.read_at(5, &mut out).unwrap();
    assert_eq!(&out, b"world");
    assert_eq!(g.read_at(6, &mut out).unwrap_err().kind(), ErrorKind::InvalidInput);
    drop(g);
    assert_eq!(r.recv_in_place(Wait::Never).unwrap_err().kind(), ErrorKind::WouldBlock);
}

#[test]
fn a_closed_writer_gives_disconnected_after_its_messages() {
    let (mut w, mut r) = heap_ring(1024, WaitMode::Blocking).unwrap();
    w.send(b"last", Wait::Never).unwrap();
    drop(w);
    let mut buf = Vec::new();
    r.recv(&mut buf, Wait::Forever).unwrap();
    assert_eq!(buf, b"last");
    assert_eq!(r.recv(&mut buf, Wait::Forever).unwrap_err().kind(), ErrorKind::Disconnected);
}

#[test]
fn a_closed_reader_gives_the_writer_disconnected() {
    let (mut w, r) = heap_ring(1024, WaitMode::Blocking).unwrap();
    drop(r);
    assert_eq!(w.send(b"x", Wait::Forever).unwrap_err().kind(), ErrorKind::Disconnected);
}

#[cfg_attr(miri, ignore)]
#[test]
fn threads_exchange_a_hundred_thousand_messages_blocking_and_spinning() {
    for mode in [WaitMode::Blocking, WaitMode::Spin] {
        let (mut w, mut r) = heap_ring(4096, mode).unwrap();
        let n = 100_000u32;
        let t = std::thread::spawn(move || {
            for i in 0..n {
                w.send(&msg(i, (i as usize * 13) % 300), Wait::Forever).unwrap();
            }
        });
        let mut buf = Vec::new();
        for i in 0..n {
            r.recv(&mut buf, Wait::Forever).unwrap();
            assert_eq!(buf, msg(i, (i as usize * 13) % 300));
        }
        t.join().unwrap();
        assert_eq!(r.recv(&mut buf, Wait::Forever).unwrap_err().kind(), ErrorKind::Disconnected);
    }
}

#[test]
fn damaged_indices_and_records_are_corrupted_not_crashes() {
    // A valid ring with one message, then its head pushed past the capacity.
    let mut data = vec![0u8; ring::segment_len(1024)];
    data[128..136].copy_from_slice(&4096u64.to_le_bytes());
    assert_eq!(fuzz_reader(&data), (0, Some(ErrorKind::Corrupted)));
    // A record whose length check does not match.
    let mut data = vec![0u8; ring::segment_len(1024)];
    data[128..136].copy_from_slice(&16u64.to_le_bytes());
    data[384..388].copy_from_slice(&8u32.to_le_bytes());
    assert_eq!(fuzz_reader(&data), (0, Some(ErrorKind::Corrupted)));
    // The same record made valid reads once, then would block.
    data[388..392].copy_from_slice(&(!8u32).to_le_bytes());
    assert_eq!(fuzz_reader(&data), (1, Some(ErrorKind::WouldBlock)));
    // A sealed record longer than the head allows: taken by its seal (the reader does not
    // look at the head while records are sealed at its tail), then the head behind the
    // tail is damage.
    data[384..388].copy_from_slice(&100u32.to_le_bytes());
    data[388..392].copy_from_slice(&(!100u32).to_le_bytes());
    assert_eq!(fuzz_reader(&data), (1, Some(ErrorKind::Corrupted)));
    // A record whose check lacks its position's seal (written for another lap) is not
    // taken by the seal; under the head it is damage.
    let mut data = vec![0u8; ring::segment_len(1024)];
    data[128..136].copy_from_slice(&1040u64.to_le_bytes());
    data[256..264].copy_from_slice(&1024u64.to_le_bytes());
    data[384..388].copy_from_slice(&8u32.to_le_bytes());
    data[388..392].copy_from_slice(&(!8u32).to_le_bytes());
    assert_eq!(fuzz_reader(&data), (0, Some(ErrorKind::Corrupted)));
    data[388..392].copy_from_slice(&(!8u32 ^ (1024 >> 3)).to_le_bytes());
    assert_eq!(fuzz_reader(&data), (1, Some(ErrorKind::WouldBlock)));
    // Not a ring at all.
    data[0] = 1;
    assert_eq!(fuzz_reader(&data).1, Some(ErrorKind::InvalidInput));
}

/// Indices near the top of u64 are damage, refused when a side attaches: no sum of a
/// position and a record size overflows after that (a debug build's sends panicked).
#[test]
fn positions_past_any_ring_are_refused_at_attach() {
    use std::sync::atomic::Ordering::SeqCst;
    let cap = 1024;
    let region = region::Region::heap(ring::segment_len(cap));
    ring::init(&region, cap, "shm:(heap)").unwrap();
    let far = u64::MAX - 7;
    region.u64_at(ring::OFF_HEAD).unwrap().store(far, SeqCst);
    region.u64_at(256).unwrap().store(far, SeqCst);
    let e = RingWriter::attach(region.clone(), WaitMode::Blocking, "w".into(), false).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Corrupted, "{e}");
    let e = RingReader::attach(region, WaitMode::Blocking, "r".into(), false).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Corrupted, "{e}");
}

#[test]
fn segment_typed_access_is_bounds_checked() {
    let s = Segment::anonymous(64);
    s.write::<u64>(8, &0x1122_3344_5566_7788).unwrap();
    assert_eq!(s.read::<u64>(8).unwrap(), 0x1122_3344_5566_7788);
    s.write::<[u16; 3]>(61 - 5, &[1, 2, 3]).unwrap();
    assert_eq!(s.read::<[u16; 3]>(56).unwrap(), [1, 2, 3]);
    assert_eq!(s.read::<u64>(60).unwrap_err().kind(), ErrorKind::InvalidInput);
    assert_eq!(s.write_bytes(usize::MAX, b"x").unwrap_err().kind(), ErrorKind::InvalidInput);
    assert_eq!(s.atomic_u64(4).unwrap_err().kind(), ErrorKind::InvalidInput);
    s.atomic_u32(4).unwrap().fetch_add(5, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(s.load_u32(4, std::sync::atomic::Ordering::SeqCst).unwrap(), 5);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: if cfg!(miri) { 8 } else { 2000 }, ..ProptestConfig::default() })]

    /// Whatever bytes the shared memory holds, the reader returns messages or an error,
    /// never panics or reads out of bounds.
    #[test]
    fn the_reader_survives_any_bytes(data in proptest::collection::vec(any::<u8>(), 0..1500), seed in any::<u64>()) {
        let _ = fuzz_reader(&data);
        // And a plausible ring: valid header, indices from the seed, random records.
        let mut d = data.clone();
        d.resize(ring::segment_len(1024), 0);
        d[0] = 0;
        d[128..136].copy_from_slice(&((seed % 2048) & !7).to_le_bytes());
        d[256..264].copy_from_slice(&(((seed >> 20) % 1024) & !7).to_le_bytes());
        let _ = fuzz_reader(&d);
    }
}

#[test]
fn capacity_for_sizes_rings_for_streaming() {
    use super::ring::{capacity_for, max_message};
    assert_eq!(capacity_for(0), 256 << 10);
    assert_eq!(capacity_for(64), 256 << 10);
    assert_eq!(capacity_for(1024), 256 << 10);
    assert_eq!(capacity_for(8 << 10), 256 << 10);
    assert_eq!(capacity_for(16 << 10), 1 << 20);
    assert_eq!(capacity_for(64 << 10), 4 << 20);
    for n in [0, 1, 64, 1000, 4096, 65536, 1 << 20] {
        let c = capacity_for(n);
        assert!(c.is_power_of_two() && max_message(c) >= n, "{n}: {c}");
    }
}

#[test]
fn a_writer_waiting_on_a_full_ring_takes_one_freed_message_in_bounded_time() {
    // A writer that finds the ring full holds out for a quarter of it, but only for a
    // bounded time: a reader that frees exactly one message while the writer waits (and
    // then waits for this writer, as in request/reply) must not leave it blocked.
    for mode in [WaitMode::Blocking, WaitMode::Spin] {
        let (mut w, mut r) = heap_ring(1024, mode).unwrap();
        while w.send(&[1; 100], Wait::Never).is_ok() {}
        std::thread::scope(|s| {
            s.spawn(move || {
                std::thread::sleep(std::time::Duration::from_millis(50));
                let mut buf = Vec::new();
                r.recv(&mut buf, Wait::Never).unwrap();
                // Keep the reader attached (not closed) until the writer is done.
                std::thread::sleep(std::time::Duration::from_secs(2));
                drop(r);
            });
            let t = std::time::Instant::now();
            w.send(&[2; 100], Wait::timeout(std::time::Duration::from_secs(5))).unwrap();
            assert!(t.elapsed() < std::time::Duration::from_secs(1), "{mode:?}: {:?}", t.elapsed());
        });
    }
}

#[test]
fn a_stale_header_at_the_head_is_never_taken_for_a_record() {
    // A header word left in a slot from an earlier lap carries the same seal as the slot's
    // current position once positions have advanced 2^35 bytes (the seal is the position
    // over 8, in 32 bits); wrap can leave such a slot untouched that long. Plant one where
    // the next record will start, as if from 2^35 bytes ago, and check the reader waits.
    let cap = 1024;
    let region = super::region::Region::heap(super::ring::segment_len(cap));
    super::ring::init(&region, cap, "shm:(heap)").unwrap();
    let mut w = RingWriter::attach(region.clone(), WaitMode::Blocking, "w".into(), false).unwrap();
    let mut r = RingReader::attach(region.clone(), WaitMode::Blocking, "r".into(), false).unwrap();
    let next: u64 = 112; // where the record after a 100-byte message starts
    let len = 40u32;
    let stale = u64::from(len) | (u64::from(!len ^ (next >> 3) as u32) << 32);
    region.copy_in(super::ring::HEADER_LEN + next as usize, &stale.to_le_bytes()).unwrap();
    w.send(&[7; 100], Wait::Never).unwrap();
    let mut buf = Vec::new();
    r.recv(&mut buf, Wait::Never).unwrap();
    assert_eq!(buf, [7; 100]);
    let e = r.recv(&mut buf, Wait::Never).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::WouldBlock, "a stale header was read as a record: {buf:?}");
    w.send(&[8; 3], Wait::Never).unwrap();
    r.recv(&mut buf, Wait::Never).unwrap();
    assert_eq!(buf, [8; 3]);
}

/// A ring of `cap` bytes whose writer and reader wait in the given modes.
fn mixed_ring(cap: usize, wm: WaitMode, rm: WaitMode) -> (region::Region, RingWriter, RingReader) {
    let region = region::Region::heap(ring::segment_len(cap));
    ring::init(&region, cap, "shm:(heap)").unwrap();
    let w = RingWriter::attach(region.clone(), wm, "shm:(heap)".into(), false).unwrap();
    let r = RingReader::attach(region.clone(), rm, "shm:(heap)".into(), false).unwrap();
    (region, w, r)
}

/// Each side in spin mode sets its never-sleeps bit while attached (so the other side
/// publishes to it without the wake-up protocol) and clears it when it leaves; a side that
/// may sleep clears a stale one when it attaches.
#[test]
fn a_spinning_side_says_so_while_attached() {
    use std::sync::atomic::Ordering::Acquire;
    let bits = |r: &region::Region| r.load_u32(ring::OFF_SPINNERS, Acquire).unwrap();
    let (region, w, r) = mixed_ring(4096, WaitMode::Spin, WaitMode::Blocking);
    assert_eq!(bits(&region), 1, "the spinning writer's bit alone");
    drop(w);
    assert_eq!(bits(&region), 0, "cleared when the writer leaves");
    drop(r);
    let (region, w, r) = mixed_ring(4096, WaitMode::Blocking, WaitMode::Spin);
    assert_eq!(bits(&region), 2, "the spinning reader's bit alone");
    drop(r);
    // A spinning reader that died left its bit: a blocking reader clears it.
    region.u32_at(ring::OFF_SPINNERS).unwrap().fetch_or(2, Acquire);
    let r =
        RingReader::attach(region.clone(), WaitMode::Blocking, "shm:(heap)".into(), false).unwrap();
    assert_eq!(bits(&region), 0);
    drop((w, r));
}

/// A side that sleeps is woken by a spinning peer at once, both ways: a reader waiting for
/// a message, and a writer waiting for room. The two go in lockstep (an acknowledgement
/// through a channel after each step), so every step needs one wake-up of the sleeping
/// side. (A spinning side publishes without the wake-up protocol only to a peer that never
/// sleeps; to this one, a missed wake-up costs a 50 ms sleep slice, a second over these 20
/// steps.)
#[cfg_attr(miri, ignore)]
#[test]
fn a_sleeping_side_is_woken_by_a_spinning_peer() {
    use std::sync::mpsc::channel;
    let pause = Duration::from_millis(3);
    let steps = 20u32;
    let bound = pause * steps + Duration::from_millis(500);

    // The reader sleeps before each message (a pause is far past its spin and yields).
    let (_region, mut w, mut r) = mixed_ring(4096, WaitMode::Spin, WaitMode::Blocking);
    let (ack, acked) = channel();
    let start = Instant::now();
    let t = std::thread::spawn(move || {
        for i in 0..steps {
            std::thread::sleep(pause);
            w.send(&msg(i, 64), Wait::Forever).unwrap();
            acked.recv().unwrap();
        }
    });
    let mut buf = Vec::new();
    for i in 0..steps {
        r.recv(&mut buf, Wait::Forever).unwrap();
        assert_eq!(buf, msg(i, 64));
        ack.send(()).unwrap();
    }
    t.join().unwrap();
    let took = start.elapsed();
    assert!(took < bound, "{steps} wake-ups of a sleeping reader took {took:?}");

    // The writer sleeps on a full ring until the spinning reader frees room.
    let (_region, mut w, mut r) = mixed_ring(1024, WaitMode::Blocking, WaitMode::Spin);
    let mut n = 0u32;
    while w.send(&msg(n, 200), Wait::Never).is_ok() {
        n += 1;
    }
    let (ack, acked) = channel();
    let start = Instant::now();
    let t = std::thread::spawn(move || {
        let mut buf = Vec::new();
        for i in 0..steps {
            std::thread::sleep(pause);
            r.recv(&mut buf, Wait::Forever).unwrap();
            assert_eq!(buf, msg(i, 200));
            acked.recv().unwrap();
        }
    });
    for i in n..n + steps {
        w.send(&msg(i, 200), Wait::Forever).unwrap();
        ack.send(()).unwrap();
    }
    t.join().unwrap();
    let took = start.elapsed();
    assert!(took < bound, "{steps} wake-ups of a writer waiting for room took {took:?}");
}

/// Two messages of `len` bytes to a reader that is not waiting (records one after the
/// other, `record` bytes each), then one to a reader waiting in a receive at the head,
/// which rewinds (unless `rewinds` is false: a record over `REWIND_SMALL`): the record
/// goes to the start of the data area after a wrap marker sealed at the head, which the
/// waiting reader follows.
fn send_to_a_waiting_reader(
    cap: usize,
    len: usize,
    record: u64,
    rewinds: bool,
) -> (region::Region, RingWriter, RingReader) {
    use std::sync::atomic::Ordering::Acquire;
    let (region, mut w, mut r) = mixed_ring(cap, WaitMode::Spin, WaitMode::Spin);
    let head = |reg: &region::Region| reg.load_u64(ring::OFF_HEAD, Acquire).unwrap();
    let mut buf = Vec::new();
    for i in 0..2 {
        w.send(&msg(i, len), Wait::Never).unwrap();
        r.recv(&mut buf, Wait::Never).unwrap();
        assert_eq!(buf, msg(i, len));
    }
    assert_eq!(head(&region), 2 * record, "records one after the other");
    std::thread::scope(|s| {
        let t = s.spawn(|| {
            let mut b = Vec::new();
            r.recv(&mut b, Wait::timeout(Duration::from_secs(20))).map(|_| b)
        });
        while region.load_u64(ring::OFF_READER_WAITS, Acquire).unwrap() != (2 * record) | 1 {
            std::thread::yield_now();
        }
        w.send(&msg(2, len), Wait::Never).unwrap();
        assert_eq!(t.join().unwrap().unwrap(), msg(2, len));
    });
    assert_eq!(region.load_u64(ring::OFF_READER_WAITS, Acquire).unwrap(), 0);
    if rewinds {
        assert_eq!(head(&region), cap as u64 + record, "the third record went to offset 0");
    } else {
        assert_eq!(head(&region), 3 * record, "the third record followed the second");
    }
    (region, w, r)
}

/// A 64 B message rewinds to a waiting reader; the marker and the record after it are read
/// the same way by a reader that comes later (by the head, not polling), and the next
/// record, to a reader not waiting, follows the last.
#[test]
fn a_writer_rewinds_to_a_reader_waiting_at_the_head() {
    let cap = 4096;
    let (region, mut w, mut r) = send_to_a_waiting_reader(cap, 64, 72, true);
    let mut buf = Vec::new();
    w.send(&msg(3, 64), Wait::Never).unwrap();
    r.recv(&mut buf, Wait::Never).unwrap();
    assert_eq!(buf, msg(3, 64));
    let head = region.load_u64(ring::OFF_HEAD, std::sync::atomic::Ordering::Acquire).unwrap();
    assert_eq!(head, cap as u64 + 144);
}

/// Payloads of `ALIGN_FROM` bytes or more start on a cache line of the data area, with the
/// gap said in the header's length word; smaller ones follow their header. Every size from
/// 0 to past the limit of alignment goes through wraps whole, the gap at every offset.
#[test]
fn payloads_of_512_bytes_and_more_start_on_a_cache_line() {
    use std::sync::atomic::Ordering::Acquire;
    let cap = 8192;
    let (region, mut w, mut r) = mixed_ring(cap, WaitMode::Blocking, WaitMode::Blocking);
    let word = |off: usize| region.load_u32(ring::HEADER_LEN + off, Acquire).unwrap();
    let bytes = |off: usize, n: usize| {
        let mut b = vec![0; n];
        region.copy_out(ring::HEADER_LEN + off, &mut b).unwrap();
        b
    };
    let mut buf = Vec::new();
    // At offset 0: a gap of 56, the payload at 64.
    w.send(&msg(1, 1000), Wait::Never).unwrap();
    assert_eq!(word(0), 1000 | 7 << 29);
    assert_eq!(bytes(64, 1000), msg(1, 1000));
    // At 1064: a small payload right after its header.
    w.send(&msg(2, 100), Wait::Never).unwrap();
    assert_eq!(word(1064), 100);
    assert_eq!(bytes(1072, 100), msg(2, 100));
    // At 1176 (24 past a line): a gap of 32, the payload at 1216 (19 lines).
    w.send(&msg(3, 600), Wait::Never).unwrap();
    assert_eq!(word(1176), 600 | 4 << 29);
    assert_eq!(bytes(1216, 600), msg(3, 600));
    for i in 1..=3 {
        r.recv(&mut buf, Wait::Never).unwrap();
        assert_eq!(buf, msg(i, [1000, 100, 600][i as usize - 1]));
    }
    // A payload whose gap could take it past the largest message has none (at 1816).
    let max = w.max_message_size();
    w.send(&msg(4, max), Wait::Never).unwrap();
    assert_eq!(word(1816), max as u32);
    assert_eq!(bytes(1824, max), msg(4, max));
    r.recv(&mut buf, Wait::Never).unwrap();
    assert_eq!(buf, msg(4, max));
    for i in 0..600u32 {
        let len = (i as usize * 41) % 3000;
        w.send(&msg(i, len), Wait::Never).unwrap();
        r.recv(&mut buf, Wait::Never).unwrap();
        assert_eq!(buf, msg(i, len), "message {i}");
    }
}

/// A record of 1 KiB rewinds to a reader waiting at the head like a small one (records of
/// 1088 bytes: the header, a gap of 56, the payload), its payload on a line of its own at
/// the start.
#[test]
fn a_one_kib_record_rewinds_to_a_waiting_reader() {
    let (region, _w, _r) = send_to_a_waiting_reader(8192, 1024, 1088, true);
    let mut b = vec![0; 1024];
    region.copy_out(ring::HEADER_LEN + 64, &mut b).unwrap();
    assert_eq!(b, msg(2, 1024));
}

/// A record of exactly `REWIND_SMALL` bytes (header, gap of 56, payload of 1984) rewinds;
/// a longer one (payload of 2048, record of 2112) does not.
#[test]
fn records_up_to_rewind_small_rewind_and_longer_ones_do_not() {
    assert_eq!(ring::REWIND_SMALL, 2048);
    send_to_a_waiting_reader(16384, 1984, 2048, true);
    send_to_a_waiting_reader(16384, 2048, 2112, false);
}
