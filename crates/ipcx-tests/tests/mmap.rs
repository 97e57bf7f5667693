//! Memory-mapped files and the durable log, across real processes: crash safety under
//! `kill -9`, damaged records, named readers, futex wake-ups, retention, interop with a C
//! program, and bad input.
#![allow(unsafe_code)] // fork(2) and geteuid(2) in two tests, each block documented

use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use ipcx::mmap::log::{self, LogConfig, LogReader, LogWriter};
use ipcx::mmap::{MapOptions, Mapping};
use ipcx::{ErrorKind, Receiver, Sender, Wait};
use ipcx_tests::{check_pattern, dir_names, rand, spawn, TestDir};

const LOGPEER: &str = env!("CARGO_BIN_EXE_ipcx-logpeer");
const TESTPEER: &str = env!("CARGO_BIN_EXE_ipcx-testpeer");

fn seg_path(log: &Path, seq: u64) -> std::path::PathBuf {
    log.join(log::segment_file_name(seq))
}

/// Read every record from the start, without waiting.
fn read_all(addr: &str) -> Vec<Vec<u8>> {
    let sep = if addr.contains('?') { '&' } else { '?' };
    let mut rx = ipcx::open_receiver(&format!("{addr}{sep}from=start")).unwrap();
    let mut out = Vec::new();
    let mut buf = Vec::new();
    loop {
        match rx.recv_wait(&mut buf, Wait::Never) {
            Ok(()) => out.push(buf.clone()),
            Err(e) if e.kind() == ErrorKind::WouldBlock => return out,
            Err(e) => panic!("reading {addr}: {e}"),
        }
    }
}

/// Kill a writer appending patterned records to `addr` with durability every message, at
/// random moments, `iters` times; after each, the log must hold every acknowledged record
/// (all of them, or with `retained` the newest ones) in order, none torn. Returns the
/// number acknowledged and the next record number.
fn kill_9_loop(base: &str, addr: &str, iters: usize, retained: bool) -> (usize, u64) {
    let path = base.strip_prefix("mmap:").expect("an mmap: address");
    let mut seed = u64::from(std::process::id()) ^ 0x1234_5678 ^ iters as u64;
    let mut next = 0u64;
    let mut oldest = 0u64;
    let mut acked_total = 0usize;
    for iter in 0..iters {
        let mut child = spawn(Command::new(LOGPEER).args(["append", addr, &next.to_string()]));
        // 0..20 ms: some kills land while the writer opens and recovers the log.
        std::thread::sleep(Duration::from_micros(rand(&mut seed) % 20_000));
        let mut c = child.0.take().expect("child");
        let _ = c.kill();
        let out = c.wait_with_output().expect("reap writer");
        let stdout = String::from_utf8_lossy(&out.stdout);
        // Only whole lines: a number being printed when the kill came is not acknowledged.
        let complete = stdout.rfind('\n').map_or("", |i| &stdout[..i]);
        let acked: Vec<u64> = complete.lines().map(|l| l.parse().expect("a number")).collect();
        for (i, &s) in acked.iter().enumerate() {
            assert_eq!(s, next + i as u64, "iteration {iter}: acknowledgements out of order");
        }
        acked_total += acked.len();
        let records = if Path::new(path).exists() { read_all(base) } else { Vec::new() };
        let seqs: Vec<u64> = records
            .iter()
            .enumerate()
            .map(|(i, r)| {
                check_pattern(r).unwrap_or_else(|e| panic!("iteration {iter}: record {i}: {e}"))
            })
            .collect();
        let first = seqs.first().copied().unwrap_or(oldest);
        assert!(first >= oldest, "iteration {iter}: record {first} came back");
        if !retained {
            assert_eq!(first, 0, "iteration {iter}: the oldest records are gone");
        }
        for (i, &seq) in seqs.iter().enumerate() {
            assert_eq!(seq, first + i as u64, "iteration {iter}: record {i} out of order");
        }
        let n = first + seqs.len() as u64;
        if let Some(&last) = acked.last() {
            assert!(last < n, "iteration {iter}: acknowledged record {last} lost (log has {n})");
        }
        assert!(n >= next, "iteration {iter}: the log shrank from {next} to {n}");
        (next, oldest) = (n, first);
    }
    (acked_total, next)
}

/// Append patterned record `next` after the crashes; the log's records, read from the start.
fn append_after_crashes(base: &str, addr: &str, next: u64) -> Vec<Vec<u8>> {
    let mut tx = ipcx::open_sender(addr).unwrap();
    let mut m = Vec::new();
    ipcx_tests::pattern_message(next, 64, &mut m);
    tx.send(&m).unwrap();
    drop(tx);
    read_all(base)
}

#[test]
fn a_segment_truncated_under_a_syncing_writer_fails_its_send_and_does_not_grow_back() {
    // With sync=always the writer writes large records with pwritev, not through the
    // mapping, so the SIGBUS guard does not see a truncation: the file's size is checked
    // instead (a write past the cut would grow the file again, and the records in the cut
    // would be lost without an error).
    let dir = TestDir::new("mmap-trunc-sync");
    let path = dir.join("t.log");
    let addr = format!("mmap:{}?sync=always&segment=262144", path.display());
    let mut tx = ipcx::open_sender(&addr).unwrap();
    let big = vec![0x5a; 20 << 10];
    for _ in 0..3 {
        tx.send(&big).unwrap();
    }
    assert_eq!(read_all(&format!("mmap:{}", path.display())), vec![big.clone(); 3]);
    let seg = seg_path(&path, 1);
    let st = Command::new("truncate").arg("-s").arg("8192").arg(&seg).status();
    assert!(st.unwrap().success());
    let e = tx.send(&big).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Corrupted, "{e}");
    assert!(e.to_string().contains("truncated"), "{e}");
    assert_eq!(std::fs::metadata(&seg).unwrap().len(), 8192, "the send grew the file back");
}

/// Minor page faults the calling thread has taken so far.
fn thread_page_faults() -> i64 {
    let mut ru = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: `ru` is valid for getrusage to fill; RUSAGE_THREAD counts this thread only,
    // so tests running beside it in other threads do not count.
    let r = unsafe { libc::getrusage(libc::RUSAGE_THREAD, ru.as_mut_ptr()) };
    assert_eq!(r, 0, "getrusage");
    // SAFETY: getrusage succeeded and filled the struct.
    unsafe { ru.assume_init() }.ru_minflt
}

#[test]
fn large_records_synced_one_by_one_do_not_fault_on_every_page() {
    // With sync=always a record of 16 KiB or more is written with pwritev, not stored
    // through the mapping, where each of its pages took a fault (a fresh page, or one the
    // last sync write-protected): 16 or more per 64 KiB record. What is left is the header
    // page's end word, about one a record.
    let dir = TestDir::new("mmap-sync-faults");
    let path = dir.join("f.log");
    let addr = format!("mmap:{}?sync=always&segment=4194304", path.display());
    let mut tx = ipcx::open_sender(&addr).unwrap();
    let big = vec![0x6b; 64 << 10];
    tx.send(&big).unwrap();
    let before = thread_page_faults();
    for _ in 0..16 {
        tx.send(&big).unwrap();
    }
    let faults = thread_page_faults() - before;
    assert!(faults < 16 * 4, "{faults} page faults for 16 synced records of 64 KiB");
    assert_eq!(read_all(&format!("mmap:{}", path.display())).len(), 17);
}

/// No half-made segment or log directory (`.NAME.tmp-...`) is left in `dir`.
fn assert_no_temporaries(dir: &Path) {
    let names = dir_names(dir);
    assert!(!names.iter().any(|n| n.contains(".tmp-")), "left behind: {names:?}");
}

/// A log at `crash.log` in a fresh directory, with `options`, through [`kill_9_loop`]
/// (`kills` kills) and then [`append_after_crashes`]: the directory, the log's path, the
/// records read back and the sequence number appended after the crashes.
fn crash_log(tag: &str, options: &str, kills: usize, retained: bool) -> CrashedLog {
    let dir = TestDir::new(tag);
    let path = dir.join("crash.log");
    let base = format!("mmap:{}", path.display());
    let addr = format!("{base}?{options}");
    let (acked_total, next) = kill_9_loop(&base, &addr, kills, retained);
    eprintln!("crash test: {acked_total} acknowledged, {next} records in the log");
    assert!(acked_total > 50, "too few records were acknowledged ({acked_total}) to test much");
    // Appending continues after the last crash.
    let records = append_after_crashes(&base, &addr, next);
    assert_eq!(check_pattern(records.last().unwrap()), Ok(next));
    CrashedLog { dir, path, records, next }
}

struct CrashedLog {
    dir: TestDir,
    path: PathBuf,
    records: Vec<Vec<u8>>,
    next: u64,
}

#[test]
fn kill_9_at_random_moments_loses_no_acknowledged_record() {
    // Small segments, so kills also land around roll-overs.
    let log = crash_log("mmap-crash", "sync=always&segment=8192", 120, false);
    assert_eq!(log.records.len() as u64, log.next + 1);
    assert!(dir_names(&log.path).len() > 4, "the log should have rolled over several segments");
    // No half-made segment or log directory is left behind by the kills.
    assert_no_temporaries(&log.path);
    assert_no_temporaries(log.dir.path());
}

#[test]
fn kill_9_while_segments_are_recycled_keeps_every_retained_record() {
    // Retention of 3 small segments: most roll-overs recycle one, and kills land inside.
    let log = crash_log("mmap-crash-recycle", "sync=always&segment=8192&retain=3", 60, true);
    assert!(check_pattern(&log.records[0]).unwrap() > 0, "retention never removed a segment");
    assert_no_temporaries(&log.path);
    let names = dir_names(&log.path);
    assert_eq!(names.iter().filter(|n| n.ends_with(".seg")).count(), 3, "{names:?}");
}

fn write_records(path: &Path, n: usize) {
    let mut tx = ipcx::open_sender(&format!("mmap:{}", path.display())).unwrap();
    for i in 0..n {
        tx.send(format!("rec-{i:02}").as_bytes()).unwrap();
    }
}

#[test]
fn a_flipped_byte_is_reported_with_its_position_and_can_be_skipped() {
    let dir = TestDir::new("mmap-corrupt");
    let path = dir.join("c.log");
    write_records(&path, 10);
    // "rec-NN" is 6 bytes: each record is 8 + 8 bytes, from offset 4096.
    let rec5 = 4096 + 5 * 16;
    let f = std::fs::OpenOptions::new().write(true).open(seg_path(&path, 1)).unwrap();
    f.write_all_at(b"X", rec5 + 8 + 2).unwrap();
    let addr = ipcx::Address::parse(&format!("mmap:{}", path.display())).unwrap();
    let mut rx = log::open_receiver(&addr, &Default::default()).unwrap();
    let mut buf = Vec::new();
    for i in 0..5 {
        rx.recv_wait(&mut buf, Wait::Never).unwrap();
        assert_eq!(buf, format!("rec-{i:02}").as_bytes());
    }
    for _ in 0..2 {
        let e = rx.recv_wait(&mut buf, Wait::Never).expect_err("record 5 is damaged");
        assert_eq!(e.kind(), ErrorKind::Corrupted, "{e}");
        assert!(e.to_string().contains(&format!("offset {rec5}")), "{e}");
        assert!(e.to_string().contains("checksum"), "{e}");
    }
    assert!(rx.skip_corrupted());
    rx.recv_wait(&mut buf, Wait::Never).unwrap();
    assert_eq!(buf, b"rec-06");
    assert_eq!(rx.corrupted_skipped(), 1);

    // The address option skips on its own.
    let all = read_all(&format!("mmap:{}?skip=corrupted", path.display()));
    assert_eq!(all.len(), 9);
    assert!(!all.iter().any(|r| r == b"rec-05"));

    // A damaged length cannot be stepped over: skipping it skips the segment's rest.
    f.write_all_at(&0xffffu32.to_le_bytes(), 4096 + 7 * 16).unwrap();
    let mut rx = log::open_receiver(&addr, &Default::default()).unwrap();
    let mut got = 0;
    let e = loop {
        match rx.recv_wait(&mut buf, Wait::Never) {
            Ok(()) => got += 1,
            Err(e) if e.kind() == ErrorKind::Corrupted => {
                if e.to_string().contains("length") {
                    break e;
                }
                assert!(rx.skip_corrupted());
            }
            Err(e) => panic!("{e}"),
        }
    };
    assert!(e.to_string().contains(&format!("offset {}", 4096 + 7 * 16)), "{e}");
    assert_eq!(got, 6);
    assert!(rx.skip_corrupted());
    assert_eq!(rx.recv_wait(&mut buf, Wait::Never).unwrap_err().kind(), ErrorKind::WouldBlock);
}

#[test]
fn a_named_reader_resumes_where_it_stopped() {
    let dir = TestDir::new("mmap-reader");
    let path = dir.join("r.log");
    write_records(&path, 10);
    let addr = format!("mmap:{}?reader=audit", path.display());
    let mut buf = Vec::new();
    {
        let mut rx = ipcx::open_receiver(&addr).unwrap();
        for i in 0..4 {
            rx.recv_wait(&mut buf, Wait::Never).unwrap();
            assert_eq!(buf, format!("rec-{i:02}").as_bytes());
        }
    }
    let mut rx = ipcx::open_receiver(&addr).unwrap();
    rx.recv_wait(&mut buf, Wait::Never).unwrap();
    assert_eq!(buf, b"rec-04");
    drop(rx);
    // A second reader name has its own position; from=start rewinds.
    assert_eq!(read_all(&format!("mmap:{}?reader=other", path.display())).len(), 10);
    let mut rx = ipcx::open_receiver(&format!("{addr}&from=start")).unwrap();
    rx.recv_wait(&mut buf, Wait::Never).unwrap();
    assert_eq!(buf, b"rec-00");
    drop(rx);
    let mut rx = ipcx::open_receiver(&addr).unwrap();
    rx.recv_wait(&mut buf, Wait::Never).unwrap();
    assert_eq!(buf, b"rec-01", "from=start committed its new position");
    // from=end: only what comes next.
    let mut rx = ipcx::open_receiver(&format!("mmap:{}?from=end", path.display())).unwrap();
    assert_eq!(rx.recv_wait(&mut buf, Wait::Never).unwrap_err().kind(), ErrorKind::WouldBlock);
    write_records(&path, 1);
    rx.recv_wait(&mut buf, Wait::Never).unwrap();
    assert_eq!(buf, b"rec-00");
}

#[test]
fn a_waiting_reader_sleeps_on_the_futex_and_is_woken_by_another_process() {
    let dir = TestDir::new("mmap-wake");
    let path = dir.join("w.log");
    let addr = format!("mmap:{}", path.display());
    log::create(&path, &LogConfig::default()).unwrap();
    let seg = seg_path(&path, 1);
    let mut rx = ipcx::open_receiver(&addr).unwrap();
    let (seg2, addr2) = (seg.clone(), addr.clone());
    let helper = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        // The sleeping reader raises the waiter flag (header offset 132) once its short
        // spin is over; give a loaded machine time to get there.
        let mut flag = [0u8; 4];
        let t = Instant::now();
        while u32::from_le_bytes(flag) == 0 && t.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(10));
            std::fs::File::open(&seg2).unwrap().read_exact_at(&mut flag, 132).unwrap();
        }
        let out = spawn(Command::new(TESTPEER).args(["send", &addr2, "text:late"]))
            .wait_within(Duration::from_secs(20));
        assert!(out.status.success());
        u32::from_le_bytes(flag)
    });
    let t = Instant::now();
    let msg = rx.recv_timeout(Duration::from_secs(20)).unwrap();
    let took = t.elapsed();
    assert_eq!(msg, b"late");
    assert!(took >= Duration::from_millis(250), "woke after {took:?}, before the send");
    assert_eq!(helper.join().unwrap(), 1, "the reader did not raise the waiter flag");
    let mut flag = [0u8; 4];
    std::fs::File::open(&seg).unwrap().read_exact_at(&mut flag, 132).unwrap();
    assert_eq!(u32::from_le_bytes(flag), 0, "the writer clears the flag when it wakes");
    // The writer exited; the log goes on: a receive times out, it is not disconnected.
    let e = rx.recv_timeout(Duration::from_millis(100)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::TimedOut, "{e}");
}

#[test]
fn segments_roll_over_and_retention_deletes_the_oldest() {
    let dir = TestDir::new("mmap-retain");
    let path = dir.join("ret.log");
    let base = format!("mmap:{}", path.display());
    // A named reader that has read one record, then lags.
    let mut tx = ipcx::open_sender(&format!("{base}?segment=8192&retain=2")).unwrap();
    tx.send(&0u32.to_le_bytes()).unwrap();
    let a = ipcx::Address::parse(&format!("{base}?reader=slow")).unwrap();
    let mut slow = log::open_receiver(&a, &Default::default()).unwrap();
    let mut buf = Vec::new();
    slow.recv_wait(&mut buf, Wait::Never).unwrap();
    for i in 1..2000u32 {
        let mut m = i.to_le_bytes().to_vec();
        m.resize(100, 7);
        tx.send(&m).unwrap();
    }
    let segs = std::fs::read_dir(&path)
        .unwrap()
        .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().ends_with(".seg"))
        .count();
    assert_eq!(segs, 2, "retain=2 keeps two segments");
    assert!(!seg_path(&path, 1).exists());
    let records = read_all(&base);
    let first = u32::from_le_bytes(records[0][..4].try_into().unwrap());
    assert!(first > 1900, "oldest retained record is {first}");
    for (i, r) in records.iter().enumerate() {
        assert_eq!(u32::from_le_bytes(r[..4].try_into().unwrap()), first + i as u32);
    }
    assert_eq!(first as usize + records.len(), 2000);
    // The lagging reader's segment is gone (deleted, or recycled under a new number): it
    // may finish segment 1 from its mapping, then skips to the oldest retained segment.
    slow.recv_wait(&mut buf, Wait::Never).unwrap();
    let got = u32::from_le_bytes(buf[..4].try_into().unwrap());
    assert!(got == 1 || got == first, "got {got}");
    while slow.skipped_segments() == 0 {
        slow.recv_wait(&mut buf, Wait::Never).unwrap();
    }
    assert_eq!(u32::from_le_bytes(buf[..4].try_into().unwrap()), first);
}

/// (device, inode) of every segment file of a log, by segment number.
fn segment_inodes(log: &Path) -> Vec<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let mut v: Vec<(u64, u64)> = std::fs::read_dir(log)
        .unwrap()
        .filter_map(|e| {
            let e = e.unwrap();
            let name = e.file_name().to_string_lossy().into_owned();
            let seq = name.strip_suffix(".seg")?.parse().ok()?;
            Some((seq, e.metadata().unwrap().ino()))
        })
        .collect();
    v.sort_unstable();
    v
}

#[test]
fn retention_recycles_segments_and_a_following_reader_misses_nothing() {
    let dir = TestDir::new("mmap-recycle");
    let path = dir.join("r.log");
    let addr = format!("mmap:{}?segment=16K&retain=3", path.display());
    let back = format!("mmap:{}", dir.join("back.log").display());
    let mut tx = ipcx::open_sender(&addr).unwrap();
    drop(ipcx::open_sender(&back).unwrap());
    let first_inode = segment_inodes(&path)[0].1;
    // `segment=16K` made 16384-byte segment files.
    for name in dir_names(&path).iter().filter(|n| n.ends_with(".seg")) {
        assert_eq!(std::fs::metadata(path.join(name)).unwrap().len(), 16384, "{name}");
    }
    // Another process reads the log and echoes every record into a second log. This one
    // writes 6000 records of up to 300 bytes (about 60 segments) and keeps at most 100
    // (about one segment) unechoed, so the reader stays within the two segments retention
    // lets it lag: it must get every record, in order, undamaged.
    let mut child = spawn(Command::new(TESTPEER).args(["echo", &addr, &back]));
    let mut echoes = ipcx::open_receiver(&format!("{back}?from=start")).unwrap();
    let (mut m, mut buf) = (Vec::new(), Vec::new());
    let mut echoed = 0;
    for i in 0..6000 {
        ipcx_tests::pattern_message(i, 300, &mut m);
        tx.send(&m).unwrap();
        while i + 1 - echoed > 100 || (i == 5999 && echoed < 6000) {
            echoes.recv_timeout_into(&mut buf, Duration::from_secs(20)).unwrap();
            assert_eq!(check_pattern(&buf), Ok(echoed));
            echoed += 1;
        }
    }
    tx.send(b"").unwrap();
    let out = child.wait_within(Duration::from_secs(20));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // Three segments remain, and segment 1's file lives on under a later number.
    let segs = segment_inodes(&path);
    assert_eq!(segs.len(), 3, "{segs:?}");
    assert!(segs[0].0 > 40, "{segs:?}");
    assert!(segs.iter().any(|s| s.1 == first_inode), "segment 1's file not reused: {segs:?}");
    assert_no_temporaries(&path);
}

#[test]
fn a_recycled_segments_old_records_never_pass_as_new_ones() {
    // After a machine crash, a segment's committed end can reach the disk before the
    // records under it. In a recycled segment the bytes there are the records of its
    // earlier life, at the same offsets when sizes repeat: recovery must cut them off.
    let dir = TestDir::new("mmap-stale");
    let path = dir.join("s.log");
    let addr = format!("mmap:{}?segment=8192&retain=2", path.display());
    let first_inode = {
        ipcx::open_sender(&addr).unwrap();
        segment_inodes(&path)[0].1
    };
    let mut tx = ipcx::open_sender(&addr).unwrap();
    let msg = |i: u32| {
        let mut m = i.to_le_bytes().to_vec();
        m.resize(120, 0x5a);
        m
    };
    let mut i = 0u32;
    // Fill segments 1 and 2, then a few records into segment 3 (segment 1's file).
    while segment_inodes(&path).last().unwrap().0 < 3 {
        tx.send(&msg(i)).unwrap();
        i += 1;
    }
    for _ in 0..5 {
        tx.send(&msg(i)).unwrap();
        i += 1;
    }
    drop(tx);
    let segs = segment_inodes(&path);
    assert_eq!(segs.last().unwrap(), &(3, first_inode), "{segs:?}");
    // The crash: `end` says the whole earlier life is committed, `checked` is where the
    // last verified record ended.
    let f = std::fs::OpenOptions::new().read(true).write(true).open(seg_path(&path, 3)).unwrap();
    let mut w = [0u8; 8];
    f.read_exact_at(&mut w, 64).unwrap();
    let true_end = u64::from_le_bytes(w);
    let full_end = 4096 + (8192 - 4096) / 128 * 128;
    assert!(true_end < full_end);
    f.write_all_at(&full_end.to_le_bytes(), 64).unwrap();
    f.write_all_at(&true_end.to_le_bytes(), 80).unwrap();
    drop(f);
    // Reopening recovers: the end goes back to the last real record, appending goes on.
    let mut tx = ipcx::open_sender(&addr).unwrap();
    tx.send(&msg(i)).unwrap();
    drop(tx);
    let got = read_all(&format!("mmap:{}", path.display()));
    let nums: Vec<u32> =
        got.iter().map(|r| u32::from_le_bytes(r[..4].try_into().unwrap())).collect();
    assert_eq!(*nums.last().unwrap(), i, "{nums:?}");
    assert!(nums.windows(2).all(|w| w[1] == w[0] + 1), "stale records delivered: {nums:?}");
}

#[test]
fn a_reader_inside_a_segment_being_recycled_skips_ahead_in_order() {
    let dir = TestDir::new("mmap-recycle-lag");
    let path = dir.join("l.log");
    let addr = format!("mmap:{}?segment=8192&retain=2", path.display());
    let mut tx = ipcx::open_sender(&addr).unwrap();
    let msg = |i: u32, len: usize| {
        let mut m = i.to_le_bytes().to_vec();
        m.resize(len, 0x33);
        m
    };
    // Segment 1 full of 100-byte records; the reader takes one, so it knows the end.
    let mut i = 0u32;
    while segment_inodes(&path).len() < 2 {
        tx.send(&msg(i, 100)).unwrap();
        i += 1;
    }
    let a = ipcx::Address::parse(&format!("{addr}&from=start")).unwrap();
    let mut rx = log::open_receiver(&a, &Default::default()).unwrap();
    let mut buf = Vec::new();
    rx.recv_wait(&mut buf, Wait::Never).unwrap();
    assert_eq!(buf[..4], 0u32.to_le_bytes());
    // Segment 1 is recycled and rewritten with records of another size under it.
    while segment_inodes(&path).last().unwrap().0 < 4 {
        tx.send(&msg(i, 44)).unwrap();
        i += 1;
    }
    let mut last = 0;
    let mut n = 0;
    loop {
        match rx.recv_wait(&mut buf, Wait::Never) {
            Ok(()) => {
                let v = u32::from_le_bytes(buf[..4].try_into().unwrap());
                assert!(v > last, "record {v} after {last}");
                last = v;
                n += 1;
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(last, i - 1);
    assert!(n > 10, "{n} records after the skip");
    assert!(rx.skipped_segments() > 0);
}

#[test]
fn every_durability_setting_delivers_everything() {
    for sync in ["none", "always", "3", "5ms", "1s"] {
        let dir = TestDir::new("mmap-sync");
        let path = dir.join("s.log");
        let addr = format!("mmap:{}?sync={sync}&segment=8192", path.display());
        let mut tx = ipcx::open_sender(&addr).unwrap();
        for i in 0..300u32 {
            tx.send(&i.to_le_bytes()).unwrap();
        }
        drop(tx);
        let got = read_all(&format!("mmap:{}", path.display()));
        assert_eq!(got.len(), 300, "sync={sync}");
        assert!(got.iter().enumerate().all(|(i, r)| r == &(i as u32).to_le_bytes()));
    }
    let e = ipcx::open_sender("mmap:/tmp/x?sync=sometimes").err().unwrap();
    assert_eq!(e.kind(), ErrorKind::InvalidAddress);
    assert!(e.to_string().contains("sometimes"), "{e}");
}

#[test]
fn a_second_writer_waits_for_the_first() {
    let dir = TestDir::new("mmap-lock");
    let path = dir.join("l.log");
    let addr = format!("mmap:{}", path.display());
    let first = ipcx::open_sender(&addr).unwrap();
    let opts = ipcx::OpenOptions::new().open_timeout(Some(Duration::from_millis(100)));
    let e = ipcx::open_sender_with(&addr, &opts).err().expect("the lock is held");
    assert_eq!(e.kind(), ErrorKind::TimedOut);
    assert!(e.to_string().contains("another writer"), "{e}");
    drop(first);
    ipcx::open_sender_with(&addr, &opts).unwrap();
}

// ---- mappings ----

#[test]
fn mappings_read_write_grow_and_flush() {
    let dir = TestDir::new("mmap-map");
    let p = dir.join("m.bin");
    let mut m = MapOptions::new().create(true).len(100).open(&p).unwrap();
    assert_eq!(std::fs::metadata(&p).unwrap().len(), 100);
    m.write_at(90, b"0123456789").unwrap();
    let e = m.write_at(95, b"0123456789").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    m.resize(10000).unwrap();
    assert_eq!(m.len(), 10000);
    m.write_at(9000, b"far").unwrap();
    m.flush_range(9000, 3).unwrap();
    m.flush_async().unwrap();
    m.flush().unwrap();
    let mut b = [0u8; 3];
    std::fs::File::open(&p).unwrap().read_exact_at(&mut b, 9000).unwrap();
    assert_eq!(&b, b"far");
    // A read-only mapping of part of the file, at a page offset.
    let ro = MapOptions::new().offset(4096).len(5000).open(&p).unwrap();
    let mut b = [0u8; 3];
    ro.read_at(9000 - 4096, &mut b).unwrap();
    assert_eq!(&b, b"far");
    assert_eq!(ro.write_at(0, b"x").unwrap_err().kind(), ErrorKind::PermissionDenied);
    // Atomics in the file, shared.
    let a = m.atomic_u64(64).unwrap();
    a.store(0x1122_3344_5566_7788, std::sync::atomic::Ordering::SeqCst);
    let mut w = [0u8; 8];
    m.read_at(64, &mut w).unwrap();
    assert_eq!(u64::from_le_bytes(w), 0x1122_3344_5566_7788);
    assert!(m.atomic_u64(3).is_err());
}

#[test]
fn anonymous_shared_memory_is_shared_with_a_forked_child() {
    let m = Mapping::anonymous(4096).unwrap();
    m.write_at(0, b"parent").unwrap();
    // SAFETY: the child only copies into the mapping (no allocation, no lock) and exits
    // with _exit, so forking a multi-threaded test process is sound here.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0);
    if pid == 0 {
        let mut b = [0u8; 6];
        let ok = m.read_at(0, &mut b).is_ok() && &b == b"parent" && m.write_at(8, b"child").is_ok();
        // SAFETY: _exit ends the child without running the parent's destructors.
        unsafe { libc::_exit(if ok { 0 } else { 1 }) };
    }
    let mut status = 0;
    // SAFETY: waiting for our own child; `status` is valid for the call.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0);
    let mut b = [0u8; 5];
    m.read_at(8, &mut b).unwrap();
    assert_eq!(&b, b"child");
}

const C_PROGRAM: &str = r#"
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static uint32_t crc32c(uint32_t c, const unsigned char *p, size_t n) {
    c = ~c;
    while (n--) { c ^= *p++; for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0x82F63B78u & -(c & 1)); }
    return ~c;
}

int main(int argc, char **argv) {
    int fd = open(argv[2], O_RDWR);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0) { perror("open"); return 2; }
    unsigned char *m = mmap(0, st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (m == MAP_FAILED) { perror("mmap"); return 2; }
    if (strcmp(argv[1], "map") == 0) {
        printf("%s\n", (char *)m);              /* what ipcx wrote at offset 0 */
        strcpy((char *)m + 100, "hello-from-c"); /* for ipcx to read */
        if (msync(m, st.st_size, MS_SYNC) < 0) { perror("msync"); return 2; }
        return 0;
    }
    /* "log": print every record of a segment, per docs/PROTOCOL.md */
    if (memcmp(m, "IPCXLOG\0", 8) != 0) { fprintf(stderr, "bad magic\n"); return 3; }
    uint64_t end, off = 4096;
    memcpy(&end, m + 64, 8);
    while (off < end) {
        uint32_t len, sum;
        memcpy(&len, m + off, 4);
        memcpy(&sum, m + off + 4, 4);
        /* salted with the segment number (header offset 16), then length, payload */
        uint32_t c = crc32c(crc32c(crc32c(0, m + 16, 8), m + off, 4), m + off + 8, len);
        if (c != sum) { fprintf(stderr, "bad checksum at %llu\n", (unsigned long long)off); return 4; }
        printf("%.*s\n", (int)len, (char *)m + off + 8);
        off += 8 + ((len + 7) & ~7u);
    }
    return 0;
}
"#;

#[test]
fn a_c_program_shares_the_mapping_and_reads_the_log_format() {
    let dir = TestDir::new("mmap-c");
    let src = dir.join("interop.c");
    let exe = dir.join("interop");
    std::fs::write(&src, C_PROGRAM).unwrap();
    let cc = Command::new("cc").arg("-O1").arg("-o").arg(&exe).arg(&src).output();
    let Ok(cc) = cc else {
        eprintln!("skipped: no C compiler (cc) on this machine");
        return;
    };
    assert!(cc.status.success(), "cc failed: {}", String::from_utf8_lossy(&cc.stderr));

    let file = dir.join("shared.bin");
    let m = MapOptions::new().create(true).len(4096).open(&file).unwrap();
    m.write_at(0, b"hello-from-rust\0").unwrap();
    m.flush().unwrap();
    let out = Command::new(&exe).arg("map").arg(&file).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "hello-from-rust");
    let mut b = [0u8; 12];
    m.read_at(100, &mut b).unwrap();
    assert_eq!(&b, b"hello-from-c");

    let log = dir.join("c.log");
    write_records(&log, 3);
    let mut tx = ipcx::open_sender(&format!("mmap:{}", log.display())).unwrap();
    tx.send(b"").unwrap();
    tx.send(b"a longer record, not a multiple of eight").unwrap();
    drop(tx);
    let out = Command::new(&exe).arg("log").arg(seg_path(&log, 1)).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "rec-00\nrec-01\nrec-02\n\na longer record, not a multiple of eight\n"
    );
}

// ---- bad input ----

#[test]
fn bad_input_gives_clear_errors() {
    let dir = TestDir::new("mmap-bad");
    // A file that is not a log.
    let file = dir.join("notes.txt");
    std::fs::write(&file, "just text\n").unwrap();
    for open in [true, false] {
        let addr = format!("mmap:{}", file.display());
        let e = if open {
            ipcx::open_sender(&addr).err().unwrap()
        } else {
            ipcx::open_receiver(&addr).err().unwrap()
        };
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
        assert!(e.to_string().contains("not an ipcx log"), "{e}");
    }
    // A directory with a segment that is not one.
    let fake = dir.join("fake.log");
    std::fs::create_dir(&fake).unwrap();
    std::fs::write(seg_path(&fake, 1), vec![b'z'; 8192]).unwrap();
    let e = ipcx::open_receiver(&format!("mmap:{}", fake.display())).err().unwrap();
    assert!(e.to_string().contains("does not start with IPCXLOG"), "{e}");
    // A directory that holds no log.
    let empty = dir.join("empty.d");
    std::fs::create_dir(&empty).unwrap();
    let e = ipcx::open_sender(&format!("mmap:{}", empty.display())).err().unwrap();
    assert!(e.to_string().contains("no segment files"), "{e}");
    // A log of another version.
    let other = dir.join("v1.log");
    write_records(&other, 1);
    std::fs::OpenOptions::new()
        .write(true)
        .open(seg_path(&other, 1))
        .unwrap()
        .write_all_at(&1u32.to_le_bytes(), 8)
        .unwrap();
    let e = ipcx::open_receiver(&format!("mmap:{}", other.display())).err().unwrap();
    assert_eq!(e.kind(), ErrorKind::Unsupported, "{e}");
    assert!(e.to_string().contains("version 1; this ipcx reads version 2"), "{e}");
    // A missing log, for a receiver.
    let e = log::remove(&empty).unwrap_err();
    assert!(e.to_string().contains("no segment files"), "{e}");
    assert!(empty.exists(), "remove leaves a directory that is not a log alone");
    log::remove(&other).unwrap();
    assert!(!other.exists());
    let e = ipcx::open_receiver(&format!("mmap:{}", dir.join("none.log").display())).err().unwrap();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
    // Zero-length maps.
    let zero = dir.join("zero.bin");
    std::fs::write(&zero, b"").unwrap();
    let e = Mapping::open(&zero).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    assert!(e.to_string().contains("no bytes"), "{e}");
    let e = MapOptions::new().write(true).len(0).open(&zero).unwrap_err();
    assert!(e.to_string().contains("zero bytes"), "{e}");
    assert_eq!(Mapping::anonymous(0).unwrap_err().kind(), ErrorKind::InvalidInput);
    // A directory.
    for w in [false, true] {
        let e = MapOptions::new().write(w).open(dir.path()).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
        assert!(e.to_string().contains("directory"), "{e}");
    }
    // Past the end, read-only.
    let e = MapOptions::new().len(100).open(&file).unwrap_err();
    assert!(e.to_string().contains("past the end"), "{e}");
}

#[test]
fn no_permission_is_reported() {
    let dir = TestDir::new("mmap-perm");
    let path = dir.join("p.log");
    write_records(&path, 1);
    let addr = format!("mmap:{}", path.display());
    // SAFETY: geteuid has no arguments and cannot fail.
    if unsafe { libc::geteuid() } == 0 {
        // Root passes permission checks: ask as another user.
        std::fs::set_permissions(dir.path(), std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        for cmd in [["send", &addr, "text:x"], ["check", &addr, "1"]] {
            let mut c = Command::new(TESTPEER);
            std::os::unix::process::CommandExt::uid(&mut c, 65534);
            std::os::unix::process::CommandExt::gid(&mut c, 65534);
            let out = spawn(c.args(cmd)).wait_within(Duration::from_secs(20));
            assert!(!out.status.success(), "{cmd:?} as nobody should fail");
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(err.contains("Permission denied") && err.contains("0600"), "{err}");
        }
    } else {
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o000))
            .unwrap();
        let e = ipcx::open_sender(&addr).err().unwrap();
        assert_eq!(e.kind(), ErrorKind::PermissionDenied, "{e}");
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .unwrap();
    }
}

#[test]
fn a_full_disk_during_append_is_an_error_and_the_log_stays_readable() {
    let dir = TestDir::new("mmap-full");
    let path = dir.join("f.log");
    let base = format!("mmap:{}", path.display());
    // The log starts with 64 KiB segments; the limited writer asks for 4 MiB ones, so
    // its first roll-over needs a file larger than its file size limit (ulimit -f 1024:
    // 512 KiB in sh, 1 MiB in bash), which stands in for a full disk. SIGXFSZ is ignored
    // so the kernel reports EFBIG instead of killing the writer.
    log::create(&path, &LogConfig { segment: Some(65536), ..LogConfig::default() }).unwrap();
    let mut args = vec!["send".to_string(), format!("{base}?segment=4194304")];
    args.extend(std::iter::repeat_n("fill:30000".to_string(), 20));
    let out = spawn(
        Command::new("sh")
            .arg("-c")
            .arg("trap '' XFSZ; ulimit -f 1024 && exec \"$0\" \"$@\"")
            .arg(TESTPEER)
            .args(&args),
    )
    .wait_within(Duration::from_secs(60));
    assert!(!out.status.success(), "a 4 MiB segment cannot be made under the limit");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("file size limit") && err.contains("cannot reserve"), "{err}");
    let check = |want: usize| {
        let records = read_all(&base);
        assert_eq!(records.len(), want);
        assert!(records.iter().all(|r| r.len() == 30000 && r.iter().all(|&b| b == 0xab)));
        // No half-made segment was left behind.
        for e in std::fs::read_dir(&path).unwrap() {
            let name = e.unwrap().file_name().to_string_lossy().into_owned();
            assert!(!name.contains("tmp"), "left behind: {name}");
        }
    };
    check(2); // two records fit in the first 64 KiB segment

    // A real full file system, where this process may mount a small tmpfs.
    // SAFETY: geteuid has no arguments and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return;
    }
    let mnt = dir.join("small-fs");
    std::fs::create_dir(&mnt).unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=256k", "tmpfs"])
        .arg(&mnt)
        .status()
        .is_ok_and(|s| s.success());
    if !mounted {
        eprintln!("skipped the tmpfs part: mount is not allowed here");
        return;
    }
    struct Unmount(std::path::PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(&self.0).status();
        }
    }
    let _unmount = Unmount(mnt.clone());
    let small = format!("mmap:{}?segment=65536", mnt.join("l.log").display());
    let mut tx = ipcx::open_sender(&small).unwrap();
    let msg = vec![0xab; 30000];
    let mut sent = 0;
    let e = loop {
        match tx.send(&msg) {
            Ok(()) => sent += 1,
            Err(e) => break e,
        }
        assert!(sent < 100, "a 256 KiB file system never filled");
    };
    assert_eq!(e.errno(), Some(libc::ENOSPC), "{e}");
    assert!(e.to_string().contains("file system is full"), "{e}");
    // The failed send changed nothing; everything sent before is there.
    assert_eq!(read_all(&format!("mmap:{}", mnt.join("l.log").display())).len(), sent);
    drop(tx);
}

#[test]
fn a_file_shrunk_under_a_reader_is_an_error_not_a_crash() {
    let dir = TestDir::new("mmap-shrink");
    let path = dir.join("s.log");
    write_records(&path, 5);
    let mut rx = ipcx::open_receiver(&format!("mmap:{}", path.display())).unwrap();
    let mut buf = Vec::new();
    rx.recv_wait(&mut buf, Wait::Never).unwrap();
    let st = Command::new("truncate").arg("-s").arg("4096").arg(seg_path(&path, 1)).status();
    assert!(st.unwrap().success());
    // Records in pages the truncation left may still be delivered; then the reader must
    // report the truncation, not crash.
    let mut delivered = 0;
    let e = loop {
        match rx.recv_wait(&mut buf, Wait::Never) {
            Ok(()) => delivered += 1,
            Err(e) => break e,
        }
        assert!(delivered <= 4, "records past the truncation were delivered");
    };
    assert_eq!(e.kind(), ErrorKind::Corrupted, "{e}");
    assert!(e.to_string().contains("truncated"), "{e}");
    // A writer refuses it too.
    let e = ipcx::open_sender(&format!("mmap:{}", path.display())).err().unwrap();
    assert_eq!(e.kind(), ErrorKind::Corrupted, "{e}");

    // The same for a plain mapping.
    let p = dir.join("plain.bin");
    let m = MapOptions::new().create(true).len(3 * 4096).open(&p).unwrap();
    m.write_at(9000, b"x").unwrap();
    let st = Command::new("truncate").arg("-s").arg("0").arg(&p).status();
    assert!(st.unwrap().success());
    let mut b = [0u8; 1];
    let e = m.read_at(9000, &mut b).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Corrupted, "{e}");
    assert!(e.to_string().contains("truncated by another process"), "{e}");
    assert_eq!(m.write_at(0, b"y").unwrap_err().kind(), ErrorKind::Corrupted);
}

/// The SIGBUS guard: another process truncates the file while this one copies through the
/// mapping as fast as it can, with the `fstat` check switched off (`trust_size`). Without
/// the guard the first touch of a page past the new end kills this test process.
#[test]
fn a_truncation_in_the_middle_of_copies_is_caught_never_a_crash() {
    let dir = TestDir::new("mmap-race");
    let p = dir.join("race.bin");
    let len = 64 * 4096;
    let mut m = MapOptions::new().create(true).len(len).open(&p).unwrap();
    m.trust_size(true);
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(format!("sleep 0.05; truncate -s 4096 '{}'", p.display()))
        .spawn()
        .unwrap();
    let mut buf = vec![0u8; len];
    let data = vec![7u8; len];
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let (mut reads, mut writes) = (0u64, 0u64);
    let e = loop {
        let r = if (reads + writes) % 2 == 0 {
            m.read_at(0, &mut buf).map(|()| reads += 1)
        } else {
            m.write_at(0, &data).map(|()| writes += 1)
        };
        if let Err(e) = r {
            break e;
        }
        assert!(std::time::Instant::now() < deadline, "the truncation was never noticed");
    };
    assert!(child.wait().unwrap().success());
    assert_eq!(e.kind(), ErrorKind::Corrupted, "{e}");
    assert!(e.to_string().contains("truncated by another process"), "{e}");
    assert!(m.truncated());
    // Every later access is refused too.
    assert_eq!(m.read_at(0, &mut buf[..1]).unwrap_err().kind(), ErrorKind::Corrupted);
    eprintln!("caught after {reads} full reads and {writes} full writes");
}

#[test]
fn the_writer_writes_the_documented_layout() {
    let dir = TestDir::new("mmap-layout");
    let path = dir.join("x.log");
    let mut w = LogWriter::open(&path, &LogConfig::default()).unwrap();
    w.append(b"abc").unwrap();
    drop(w);
    let mut f = std::fs::File::open(seg_path(&path, 1)).unwrap();
    let mut h = vec![0u8; 4096 + 16];
    f.read_exact(&mut h).unwrap();
    assert_eq!(&h[..8], b"IPCXLOG\0");
    let u32_at = |o: usize| u32::from_le_bytes(h[o..o + 4].try_into().unwrap());
    let u64_at = |o: usize| u64::from_le_bytes(h[o..o + 8].try_into().unwrap());
    assert_eq!(u32_at(8), 2, "version");
    assert_eq!(u32_at(12), 4096, "header size");
    assert_eq!(u64_at(16), 1, "segment number");
    assert_eq!(u64_at(24), 64 << 20, "capacity");
    assert_eq!(u64_at(64), 4096 + 16, "end");
    assert_eq!(u64_at(80), 4096 + 16, "checked (clean close)");
    assert_eq!(u32_at(4096), 3);
    // The checksum covers the segment number, the length field, then the payload.
    let mut crc_in = 1u64.to_le_bytes().to_vec();
    crc_in.extend_from_slice(&3u32.to_le_bytes());
    crc_in.extend_from_slice(b"abc");
    assert_eq!(u32_at(4100), ipcx::mmap::crc::crc32c(&crc_in));
    assert_eq!(&h[4104..4112], b"abc\0\0\0\0\0");
    let r = LogReader::open(&path, &LogConfig::default()).unwrap();
    assert_eq!(r.position(), (1, 4096));
}

#[test]
fn random_damage_never_panics_and_never_delivers_a_bad_record() {
    // Records are patterned (their own checksum), so a delivered record can be checked
    // independently of the log's CRC.
    let dir = TestDir::new("mmap-fuzz");
    let mut seed = 0x9e37_79b9u64 ^ u64::from(std::process::id());
    for case in 0..150 {
        let path = dir.join(&format!("f{case}.log"));
        let addr = format!("mmap:{}?segment=8192", path.display());
        let mut tx = ipcx::open_sender(&addr).unwrap();
        let mut m = Vec::new();
        for seq in 0..40 {
            ipcx_tests::pattern_message(seq, 120, &mut m);
            tx.send(&m).unwrap();
        }
        drop(tx);
        let segs: Vec<_> = std::fs::read_dir(&path)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "seg"))
            .collect();
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(&segs[rand(&mut seed) as usize % segs.len()])
            .unwrap();
        for _ in 0..1 + rand(&mut seed) % 4 {
            // Mostly the records, sometimes the header's fields.
            let off = if rand(&mut seed) % 4 == 0 {
                rand(&mut seed) % 136
            } else {
                4096 + rand(&mut seed) % 4096
            };
            f.write_all_at(&[rand(&mut seed) as u8], off).unwrap();
        }
        // Readers: only whole, in-order records, or clear errors; no panic.
        let read = |skip: bool| {
            let q = if skip { "&skip=corrupted&from=start" } else { "&from=start" };
            let Ok(mut rx) = ipcx::open_receiver(&format!("{addr}{q}")) else { return };
            let mut buf = Vec::new();
            let mut last: Option<u64> = None;
            for _ in 0..200 {
                match rx.recv_wait(&mut buf, Wait::Never) {
                    Ok(()) => {
                        let seq = check_pattern(&buf)
                            .unwrap_or_else(|e| panic!("case {case}: bad record delivered: {e}"));
                        assert!(last.is_none_or(|l| seq > l), "case {case}: out of order");
                        last = Some(seq);
                    }
                    Err(e) => {
                        assert!(
                            matches!(
                                e.kind(),
                                ErrorKind::WouldBlock
                                    | ErrorKind::Corrupted
                                    | ErrorKind::InvalidInput
                                    | ErrorKind::Unsupported
                            ),
                            "case {case}: {e}"
                        );
                        return;
                    }
                }
            }
        };
        read(false);
        read(true);
        // A writer opening the damaged log recovers or refuses clearly; either way the
        // readers still see only good records.
        if let Ok(mut tx) = ipcx::open_sender(&addr) {
            ipcx_tests::pattern_message(1000, 120, &mut m);
            let _ = tx.send(&m);
        }
        read(true);
        std::fs::remove_dir_all(&path).unwrap();
    }
}

/// Kilobytes of this process's mappings of `path` that are dirty (not yet written back).
fn dirty_kb(path: &Path) -> u64 {
    let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
    let name = path.to_str().unwrap();
    let mut inside = false;
    let mut kb = 0;
    for line in smaps.lines() {
        let first = line.split_whitespace().next().unwrap_or("");
        if first.contains('-') && !first.ends_with(':') {
            inside = line.ends_with(name);
        } else if inside
            && (line.starts_with("Shared_Dirty:") || line.starts_with("Private_Dirty:"))
        {
            kb += line.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap();
        }
    }
    kb
}

#[test]
fn sync_by_interval_flushes_a_quiet_writer_and_sync_none_does_not() {
    let dir = TestDir::new("mmap-interval");
    for (sync, want_clean) in [("50ms", true), ("none", false)] {
        let path = dir.join(&format!("{sync}.log"));
        let a = ipcx::Address::parse(&format!("mmap:{}?sync={sync}", path.display())).unwrap();
        let mut w = log::open_sender(&a, &Default::default()).unwrap();
        w.append(b"first").unwrap(); // syncs at once with an interval (none yet)
        std::thread::sleep(Duration::from_millis(80));
        w.append(b"second").unwrap();
        w.append(b"third").unwrap();
        let seg = seg_path(&path, 1);
        assert!(dirty_kb(&seg) > 0, "sync={sync}: the appends left no dirty page");
        // No more sends: only the background flusher can write them back.
        std::thread::sleep(Duration::from_millis(400));
        let dirty = dirty_kb(&seg);
        if want_clean {
            assert_eq!(dirty, 0, "sync={sync}: still {dirty} kB dirty after 8 intervals");
        } else {
            assert!(dirty > 0, "sync={sync}: the page cache wrote back on its own");
        }
    }
}

#[test]
fn a_reader_with_read_permission_only_still_follows_the_log() {
    let dir = TestDir::new("mmap-ro");
    let path = dir.join("ro.log");
    let addr = format!("mmap:{}?mode=0644", path.display());
    let mut tx = ipcx::open_sender(&addr).unwrap();
    let mut m = Vec::new();
    for seq in 0..3 {
        ipcx_tests::pattern_message(seq, 100, &mut m);
        tx.send(&m).unwrap();
    }
    let plain = format!("mmap:{}", path.display());
    // SAFETY: geteuid has no arguments and cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    let mut child = if root {
        std::fs::set_permissions(dir.path(), std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        let mut c = Command::new(TESTPEER);
        std::os::unix::process::CommandExt::uid(&mut c, 65534);
        std::os::unix::process::CommandExt::gid(&mut c, 65534);
        Some(spawn(c.args(["check", &plain, "4"])))
    } else {
        for e in std::fs::read_dir(&path).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "seg") {
                std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o444))
                    .unwrap();
            }
        }
        None
    };
    if child.is_none() {
        let mut rx = ipcx::open_receiver(&plain).unwrap();
        for want in 0..3 {
            assert_eq!(check_pattern(&rx.recv_timeout(Duration::from_secs(5)).unwrap()), Ok(want));
        }
        return;
    }
    // The read-only reader waits (polling, it cannot raise the waiter flag) for the 4th.
    std::thread::sleep(Duration::from_millis(200));
    ipcx_tests::pattern_message(3, 100, &mut m);
    tx.send(&m).unwrap();
    let out = child.as_mut().unwrap().wait_within(Duration::from_secs(20));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "ok 4");
}

#[test]
fn a_damaged_position_slot_falls_back_to_the_other_one() {
    let dir = TestDir::new("mmap-slots");
    let path = dir.join("p.log");
    write_records(&path, 10);
    let addr = format!("mmap:{}?reader=r", path.display());
    let mut buf = Vec::new();
    {
        let mut rx = ipcx::open_receiver(&addr).unwrap();
        for _ in 0..3 {
            rx.recv_wait(&mut buf, Wait::Never).unwrap();
        }
    } // commits: generation 1 (after rec-00), 2 (after rec-01), 3 (after rec-02)
    let f = std::fs::OpenOptions::new().write(true).open(path.join("r.reader")).unwrap();
    // Generation 3 is in the slot at 64 (odd generations), 2 in the slot at 0.
    f.write_all_at(&[0xee], 64 + 20).unwrap();
    let mut rx = ipcx::open_receiver(&addr).unwrap();
    rx.recv_wait(&mut buf, Wait::Never).unwrap();
    assert_eq!(buf, b"rec-02", "resumed from the older, valid slot");
    drop(rx);
    let f = std::fs::OpenOptions::new().write(true).open(path.join("r.reader")).unwrap();
    f.write_all_at(&[0xee; 128], 0).unwrap();
    let e = ipcx::open_receiver(&addr).err().expect("both slots are damaged");
    assert_eq!(e.kind(), ErrorKind::Corrupted, "{e}");
    assert!(e.to_string().contains("r.reader is damaged"), "{e}");
}

#[test]
fn a_writer_removes_what_killed_writers_left_half_made() {
    let dir = TestDir::new("mmap-stale");
    let path = dir.join("s.log");
    write_records(&path, 1);
    // A segment being made when its writer was killed, and a log directory being made
    // by a process that is gone (pid 0x7ffffff0 is above any pid_max).
    let seg_tmp = path.join(".00000000000000000002.seg.tmp-12345");
    std::fs::write(&seg_tmp, b"half").unwrap();
    let dir_tmp = dir.join(&format!(".s.log.tmp-{}-0", 0x7fff_fff0));
    std::fs::create_dir(&dir_tmp).unwrap();
    let live_tmp = dir.join(&format!(".s.log.tmp-{}-99", std::process::id()));
    std::fs::create_dir(&live_tmp).unwrap();
    drop(ipcx::open_sender(&format!("mmap:{}", path.display())).unwrap());
    assert!(!seg_tmp.exists());
    assert!(!dir_tmp.exists());
    assert!(live_tmp.exists(), "a live process's creation must be left alone");
    assert_eq!(read_all(&format!("mmap:{}", path.display())).len(), 1);
}
