//! Shared-memory segments and rings between real processes: millions of messages, peers
//! killed with SIGKILL, a scribbler damaging the ring, and bad input.

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ipcx::shm::{Ring, Segment};
use ipcx::{ErrorKind, OpenOptions, Receiver, Sender};
use ipcx_tests::{check_pattern, spawn, unique, unique_key, ChildGuard};

fn peer() -> Command {
    Command::new(PathBuf::from(env!("CARGO_BIN_EXE_ipcx-testpeer")))
}

fn shm_name() -> String {
    format!("/{}", unique("ipcx-test-shm"))
}

fn dev_shm(name: &str) -> PathBuf {
    PathBuf::from(format!("/dev/shm{name}"))
}

fn ipcs_has(key: i32) -> bool {
    let out = Command::new("ipcs").arg("-m").output().expect("ipcs");
    let want = format!("{:#010x}", key as u32);
    String::from_utf8_lossy(&out.stdout).lines().any(|l| l.starts_with(&want))
}

fn opts() -> OpenOptions {
    OpenOptions::new().open_timeout(Some(Duration::from_secs(10)))
}

fn finish(mut c: ChildGuard, what: &str) -> String {
    let out = c.wait_within(Duration::from_secs(120));
    assert!(out.status.success(), "{what}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Wait until the ring's writer (offset 24) or reader (32) owner word is set.
fn wait_attached(ring: &Ring, off: usize) {
    let t = Instant::now();
    while ring.segment().load_u64(off, Ordering::SeqCst).unwrap() == 0 {
        assert!(t.elapsed() < Duration::from_secs(10), "peer never attached");
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn kill9_later(pid: u32, after: Duration) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        std::thread::sleep(after);
        // SIGKILL without reaping: the peer stays a zombie until the guard reaps it, which
        // the ring's liveness check must see through.
        let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
    })
}

/// Messages between two peer processes, random sizes with sequence numbers and checksums:
/// nothing lost, duplicated, reordered or torn. `IPCX_SHM_MESSAGES` overrides the count.
#[test]
fn ten_million_messages_between_two_processes() {
    let n: u64 =
        std::env::var("IPCX_SHM_MESSAGES").ok().and_then(|v| v.parse().ok()).unwrap_or(10_000_000);
    let name = shm_name();
    let addr = format!("shm:{name}?capacity=65536");
    let ring = Ring::create(&addr).unwrap();
    let t = Instant::now();
    let check = spawn(peer().args(["check", &addr, &n.to_string()]));
    let mut gen = spawn(peer().args(["gen", &addr, &n.to_string(), "64"]));
    let mut check = check;
    // Both sides' outcomes, so a failure says which side saw what first.
    let g = gen.wait_within(Duration::from_secs(120));
    let c = check.wait_within(Duration::from_secs(120));
    let (ge, ce) = (String::from_utf8_lossy(&g.stderr), String::from_utf8_lossy(&c.stderr));
    assert!(g.status.success() && c.status.success(), "gen: {ge}\ncheck: {ce}");
    let out = String::from_utf8_lossy(&c.stdout).into_owned();
    assert_eq!(out.trim(), format!("ok {n}"));
    eprintln!("{n} messages in {:?}", t.elapsed());
    drop(ring);
    assert!(!dev_shm(&name).exists());
}

#[test]
fn kill_9_of_the_writer_wakes_the_waiting_reader_with_disconnected() {
    for (sysv, spin) in [(false, false), (true, false), (false, true)] {
        let addr = if sysv {
            format!("sysv-shm:{:#x}", unique_key() as u32)
        } else {
            format!("shm:{}", shm_name())
        };
        let addr = if spin { format!("{addr}?spin=1") } else { addr };
        let ring = Ring::create(&addr).unwrap();
        let mut rx = ipcx::open_receiver(&addr).unwrap();
        let child = spawn(peer().args(["hold", &addr, "30"]));
        wait_attached(&ring, 24);
        let killer = kill9_later(child.id(), Duration::from_millis(300));
        let t = Instant::now();
        let e = rx.recv_timeout(Duration::from_secs(5)).expect_err("the writer was killed");
        assert_eq!(e.kind(), ErrorKind::Disconnected, "{e}");
        assert!(t.elapsed() < Duration::from_secs(3), "noticed after {:?}", t.elapsed());
        killer.join().unwrap();
        drop(child);
    }
}

#[test]
fn kill_9_of_the_reader_unblocks_the_writer_on_a_full_ring() {
    for spin in ["0", "1"] {
        kill_9_of_the_reader(spin);
    }
}

fn kill_9_of_the_reader(spin: &str) {
    let addr = format!("shm:{}?capacity=4096&spin={spin}", shm_name());
    let ring = Ring::create(&addr).unwrap();
    let child = spawn(peer().args(["stall", &addr, "30"]));
    wait_attached(&ring, 32);
    let mut tx = ipcx::open_sender(&addr).unwrap();
    while tx.try_send(&[5; 100]).is_ok() {}
    let killer = kill9_later(child.id(), Duration::from_millis(300));
    let t = Instant::now();
    let e = tx.send_timeout(&[5; 100], Duration::from_secs(5)).expect_err("the reader was killed");
    assert_eq!(e.kind(), ErrorKind::Disconnected, "{e}");
    assert!(t.elapsed() < Duration::from_secs(3), "noticed after {:?}", t.elapsed());
    assert!(t.elapsed() >= Duration::from_millis(250), "returned before the kill");
    killer.join().unwrap();
}

#[test]
fn a_dead_writers_slot_is_taken_over_but_a_live_one_is_refused() {
    let name = shm_name();
    let addr = format!("shm:{name}");
    let ring = Ring::create(&addr).unwrap();
    let mut holder = spawn(peer().args(["hold", &addr, "30"]));
    wait_attached(&ring, 24);
    // A third process as a second writer: refused, naming the holder.
    let out = peer().args(["send", &addr, "text:x"]).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("already has a writer"), "{err}");
    assert!(err.contains(&holder.id().to_string()), "{err}");
    let e = ipcx::open_sender(&addr).err().expect("second writer");
    assert_eq!(e.kind(), ErrorKind::AlreadyExists);
    // Once the holder is dead, its slot is free.
    holder.kill9();
    let mut tx = ipcx::open_sender(&addr).unwrap();
    let mut rx = ipcx::open_receiver(&addr).unwrap();
    tx.send(b"after").unwrap();
    assert_eq!(rx.recv().unwrap(), b"after");
}

/// A scribbler damages the header and data while a reader runs: the reader gets valid
/// messages or `Corrupted`, and never crashes.
#[test]
fn a_scribbled_ring_gives_corrupted_or_valid_messages_never_a_crash() {
    for round in 0..4u64 {
        let name = shm_name();
        let addr = format!("shm:{name}?capacity=4096");
        let ring = Ring::create(&addr).unwrap();
        let writer = spawn(peer().args(["gen", &addr, "1000000", "200"]));
        let mut rx = ipcx::open_receiver(&addr).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let scribbler = {
            let stop = stop.clone();
            let name = name.clone();
            std::thread::spawn(move || {
                let seg = Segment::open(&name, None).unwrap();
                let mut st = 0x1234_5678_u64 ^ round;
                std::thread::sleep(Duration::from_millis(20));
                while !stop.load(Ordering::Relaxed) {
                    let x = ipcx_tests::rand(&mut st);
                    // Hit the header (including head/tail) in round 0 and 2, the data otherwise.
                    let off = if round % 2 == 0 {
                        (x as usize >> 8) % 384
                    } else {
                        384 + (x as usize >> 8) % 4096
                    };
                    let _ = seg.write_bytes(off, &x.to_le_bytes()[..(x as usize % 8) + 1]);
                    std::thread::sleep(Duration::from_micros(200));
                }
            })
        };
        let (mut good, mut bad) = (0, 0);
        let t = Instant::now();
        while t.elapsed() < Duration::from_millis(700) {
            match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(m) => {
                    if check_pattern(&m).is_ok() {
                        good += 1;
                    }
                }
                Err(e) => match e.kind() {
                    ErrorKind::Corrupted => bad += 1,
                    ErrorKind::TimedOut | ErrorKind::Disconnected => {}
                    other => panic!("unexpected {other:?}: {e}"),
                },
            }
        }
        stop.store(true, Ordering::Relaxed);
        scribbler.join().unwrap();
        drop(writer);
        drop(rx);
        drop(ring);
        eprintln!("round {round}: {good} valid messages, {bad} Corrupted");
        assert!(bad > 0 || good > 0);
        assert!(!dev_shm(&name).exists());
    }
}

#[test]
fn bad_input_gives_clear_errors_and_leaves_nothing() {
    // A name without a slash.
    let e = ipcx::open_receiver("shm:noslash").err().unwrap();
    assert_eq!(e.kind(), ErrorKind::InvalidAddress);
    assert!(e.to_string().contains("slash"), "{e}");
    let e = Segment::create("noslash", 4096, 0o600).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidAddress);

    // Size 0.
    let name = shm_name();
    let e = Segment::create(&name, 0, 0o600).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    assert!(e.to_string().contains("size 0"), "{e}");
    assert!(!dev_shm(&name).exists());
    let e = Segment::create_sysv(unique_key(), 0, 0o600).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);

    // Size mismatch names both sizes.
    let seg = Segment::create(&name, 8192, 0o600).unwrap();
    let e = Segment::open(&name, Some(4096)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    assert!(e.to_string().contains("8192") && e.to_string().contains("4096"), "{e}");
    // A raw segment is not a ring.
    seg.write_bytes(0, b"not a ring at all").unwrap();
    let e = ipcx::open_receiver(&format!("shm:{name}")).err().unwrap();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    assert!(e.to_string().contains("not an ipcx ring"), "{e}");
    // A ring of another capacity.
    drop(seg);
    assert!(!dev_shm(&name).exists());
    // (Byte counts take K, M and G: 4K is 4096.)
    let ring = Ring::create(&format!("shm:{name}?capacity=4K")).unwrap();
    assert_eq!(ring.segment().len(), ipcx::shm::ring::segment_len(4096));
    let e = ipcx::open_sender(&format!("shm:{name}?capacity=8K")).err().unwrap();
    assert!(e.to_string().contains("4096") && e.to_string().contains("8192"), "{e}");
    // A ring of another layout version.
    let other = ipcx::shm::ring::VERSION + 1;
    ring.segment().write::<u32>(8, &other).unwrap();
    let e = ipcx::open_receiver(&format!("shm:{name}")).err().unwrap();
    assert_eq!(e.kind(), ErrorKind::Unsupported, "{e}");
    assert!(e.to_string().contains(&format!("version {other}")), "{e}");
    ring.segment().write::<u32>(8, &ipcx::shm::ring::VERSION).unwrap();
    ipcx::open_receiver(&format!("shm:{name}")).unwrap();
    // A capacity that is not a power of two.
    let e = Ring::create(&format!("shm:{}?capacity=5000", shm_name())).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    drop(ring);
    assert!(!dev_shm(&name).exists());

    // The System V size mismatch too.
    let key = unique_key();
    let seg = Segment::create_sysv(key, 8192, 0o600).unwrap();
    let e = Segment::open_sysv(key, Some(100)).unwrap_err();
    assert!(e.to_string().contains("8192") && e.to_string().contains("100"), "{e}");
    drop(seg);
    assert!(!ipcs_has(key));
}

#[test]
fn read_only_mappings_refuse_writes() {
    let name = shm_name();
    let seg = Segment::create(&name, 4096, 0o600).unwrap();
    seg.write::<u64>(0, &42).unwrap();
    let ro = Segment::open_read_only(&name, Some(4096)).unwrap();
    assert_eq!(ro.read::<u64>(0).unwrap(), 42);
    assert_eq!(ro.load_u64(0, Ordering::SeqCst).unwrap(), 42);
    assert_eq!(ro.write::<u64>(0, &1).unwrap_err().kind(), ErrorKind::PermissionDenied);
    assert_eq!(ro.atomic_u32(0).unwrap_err().kind(), ErrorKind::PermissionDenied);
    let key = unique_key();
    let sv = Segment::create_sysv(key, 4096, 0o600).unwrap();
    sv.write::<u32>(8, &7).unwrap();
    let ro = Segment::open_sysv_read_only(key, None).unwrap();
    assert_eq!(ro.read::<u32>(8).unwrap(), 7);
    assert_eq!(ro.write_bytes(0, b"x").unwrap_err().kind(), ErrorKind::PermissionDenied);
}

#[test]
fn another_user_is_refused_a_0600_segment() {
    use std::os::unix::process::CommandExt;
    // SAFETY-free check: only root can switch users for the child.
    if unsafe_free_euid() != 0 {
        eprintln!("skipped: needs root to run a child as another user");
        return;
    }
    for sysv in [false, true] {
        let addr = if sysv {
            format!("sysv-shm:{:#x}", unique_key() as u32)
        } else {
            format!("shm:{}", shm_name())
        };
        let ring = Ring::create(&addr).unwrap();
        let out = peer().args(["send", &addr, "text:x"]).uid(65534).gid(65534).output().unwrap();
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("mode does not let this user"), "{addr}: {err}");
        // With a mode that lets others in, the same user may send.
        drop(ring);
        let open = format!("{addr}?mode=0666");
        let ring = Ring::create(&open).unwrap();
        let mut rx = ipcx::open_receiver_with(&addr, &opts()).unwrap();
        let out = peer().args(["send", &addr, "text:x"]).uid(65534).gid(65534).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(rx.recv().unwrap(), b"x");
        drop(ring);
    }
}

fn unsafe_free_euid() -> u32 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(u32::MAX)
}

#[test]
fn a_duplex_channel_is_two_rings_and_leaves_nothing_behind() {
    let (a, b) = (shm_name(), shm_name());
    let (ra, rb) =
        (Ring::create(&format!("shm:{a}")).unwrap(), Ring::create(&format!("shm:{b}")).unwrap());
    let echo = spawn(peer().args(["echo", &format!("shm:{a}"), &format!("shm:{b}")]));
    let mut tx = ipcx::open_sender(&format!("shm:{a}")).unwrap();
    let mut rx = ipcx::open_receiver(&format!("shm:{b}")).unwrap();
    for i in 0..1000u32 {
        tx.send(&i.to_le_bytes()).unwrap();
        assert_eq!(rx.recv().unwrap(), i.to_le_bytes());
    }
    tx.send(b"").unwrap();
    finish(echo, "echo");
    drop((tx, rx, ra, rb));
    assert!(!dev_shm(&a).exists() && !dev_shm(&b).exists());
}

/// Whether any byte of the ring's data area past the first 8 KiB and one record of `slack`
/// bytes was ever written (a fresh segment is all zeros).
fn written_past_early_wrap(ring: &Ring, slack: usize) -> bool {
    use ipcx::shm::ring::HEADER_LEN;
    const EARLY_WRAP: usize = 8 << 10;
    let seg = ring.segment();
    let mut rest = vec![0u8; seg.len() - HEADER_LEN - EARLY_WRAP - slack];
    seg.read_bytes(HEADER_LEN + EARLY_WRAP + slack, &mut rest).unwrap();
    rest.iter().any(|&b| b != 0)
}

/// How many times the writer rewound to the start from within the first KiB of a lap (the
/// head, bytes ever written, less the records' bytes is what wraps skipped: a rewind from
/// offset `p` skips the lap less `p`, a wrap at the end less than one record).
fn rewinds(ring: &Ring, records: u64) -> u64 {
    use ipcx::shm::ring::HEADER_LEN;
    let head = ring.segment().read::<u64>(128).unwrap();
    let lap = (ring.segment().len() - HEADER_LEN) as u64;
    (head - records) / (lap - 1024)
}

/// A request/reply exchange keeps to the start of the ring (the writer rewinds when its
/// reader has taken everything and waits for more, so the same lines go back and forth),
/// and a stream whose reader is away uses the whole ring.
#[test]
fn request_reply_rewinds_and_streams_use_all_of_the_ring() {
    let (a, b) =
        (format!("shm:{}?capacity=64K", shm_name()), format!("shm:{}?capacity=64K", shm_name()));
    let (ra, rb) = (Ring::create(&a).unwrap(), Ring::create(&b).unwrap());
    let echo = spawn(peer().args(["echo", &a, &b]));
    let mut tx = ipcx::open_sender(&a).unwrap();
    let mut rx = ipcx::open_receiver(&b).unwrap();
    let (mut m, mut buf) = (Vec::new(), Vec::new());
    // Records of 112 to 312 bytes, about 420 KB: more than six laps of a 64 KiB ring if
    // none rewound. A record rewinds when it fits before the head's offset, that is when
    // it is no longer than the one before (about half of them), and the other side is
    // back in its receive.
    let mut records = 0;
    for seq in 0..2000u64 {
        ipcx_tests::pattern_message(seq, 100 + (seq as usize * 37) % 200, &mut m);
        records += 8 + m.len().div_ceil(8) as u64 * 8;
        tx.send(&m).unwrap();
        rx.recv_timeout_into(&mut buf, Duration::from_secs(20)).unwrap();
        assert_eq!(check_pattern(&buf), Ok(seq));
    }
    tx.send(b"").unwrap();
    finish(echo, "echo");
    // The other side is usually, not always, back in its receive when the next message is
    // sent (a loaded machine may be running something else): most chances rewind. (Before
    // small records rewound, only a record past the first 8 KiB could: about 50 in all.)
    let (wa, wb) = (rewinds(&ra, records + 8), rewinds(&rb, records + 8));
    assert!(wa >= 400 && wb >= 400, "rewinds: {wa} of requests, {wb} of replies");
    assert!(!written_past_early_wrap(&ra, 0), "a request/reply exchange left the first 8 KiB");

    // A stream sent while the reader is away (not in a receive) goes on through the ring.
    let c = format!("shm:{}?capacity=64K", shm_name());
    let rc = Ring::create(&c).unwrap();
    let mut tx = ipcx::open_sender(&c).unwrap();
    let mut rx = ipcx::open_receiver(&c).unwrap();
    for seq in 0..250u64 {
        ipcx_tests::pattern_message(seq, 200, &mut m);
        tx.send(&m).unwrap();
    }
    assert!(written_past_early_wrap(&rc, 512), "a stream of 52 KB stayed in 8 KiB");
    for seq in 0..250u64 {
        rx.recv_timeout_into(&mut buf, Duration::from_secs(5)).unwrap();
        assert_eq!(check_pattern(&buf), Ok(seq));
    }
}

fn start_time(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let rest = &s[s.rfind(')').unwrap() + 1..];
    rest.split_whitespace().nth(19).unwrap().parse().unwrap()
}

/// An owner word naming a live pid with another start time is a reused pid: its slot is
/// taken over. The same pid with its real start time is a live owner: refused.
#[test]
fn a_reused_pid_is_not_mistaken_for_the_owner() {
    let addr = format!("shm:{}", shm_name());
    let ring = Ring::create(&addr).unwrap();
    let me = std::process::id();
    let real = (start_time(me) as u32 as u64) << 32 | u64::from(me);
    ring.segment().atomic_u64(24).unwrap().store(real, Ordering::SeqCst);
    let e = ipcx::open_sender(&addr).err().expect("a live owner");
    assert_eq!(e.kind(), ErrorKind::AlreadyExists, "{e}");
    let forged = real ^ (0x5a5a_5a5a << 32);
    ring.segment().atomic_u64(24).unwrap().store(forged, Ordering::SeqCst);
    let _tx = ipcx::open_sender(&addr).expect("the recorded owner is gone (pid reused)");
}

/// Zero copy across processes: messages written in place through `reserve` reach a peer
/// whole; messages read in place through `recv_in_place` are whole, read in pieces.
#[test]
fn zero_copy_reserve_and_read_in_place_across_processes() {
    use ipcx::shm::{ShmReceiver, ShmSender};
    use ipcx::Wait;
    const N: u64 = 2000;
    let addr = format!("shm:{}?capacity=262144", shm_name());
    let _ring = Ring::create(&addr).unwrap();
    let check = spawn(peer().args(["check", &addr, &N.to_string()]));
    let mut tx = ShmSender::open(&addr).unwrap();
    let mut m = Vec::new();
    for seq in 0..N {
        ipcx_tests::pattern_message(seq, 100_000, &mut m);
        let mut g = tx.reserve(m.len(), Wait::Forever).unwrap();
        let half = m.len() / 2;
        g.write_at(half, &m[half..]).unwrap();
        g.write_at(0, &m[..half]).unwrap();
        g.commit();
    }
    assert_eq!(finish(check, "check").trim(), format!("ok {N}"));

    let addr = format!("shm:{}?capacity=262144", shm_name());
    let _ring = Ring::create(&addr).unwrap();
    let gen = spawn(peer().args(["gen", &addr, &N.to_string(), "100000"]));
    let mut rx = ShmReceiver::open(&addr).unwrap();
    let mut buf = Vec::new();
    for want in 0..N {
        let g = rx.recv_in_place(Wait::timeout(Duration::from_secs(20))).unwrap();
        buf.clear();
        buf.resize(g.len(), 0);
        let (a, b) = buf.split_at_mut(g.len() / 3);
        g.read_at(0, a).unwrap();
        g.read_at(a.len(), b).unwrap();
        assert_eq!(check_pattern(&buf), Ok(want));
    }
    finish(gen, "gen");
}

/// Plain `#[repr(C)]` data through the `ShmSafe` marker, between two mappings.
#[test]
fn typed_repr_c_values_cross_mappings() {
    #[repr(C)]
    #[derive(Clone, Copy, Debug, PartialEq)]
    struct Sample {
        id: u32,
        flags: u32,
        value: f64,
        history: [u16; 4],
    }
    // SAFETY: repr(C), no padding (4 + 4 + 8 + 8 bytes), every bit pattern valid, no
    // pointers or descriptors.
    #[allow(unsafe_code)]
    unsafe impl ipcx::shm::ShmSafe for Sample {}

    let name = shm_name();
    let a = Segment::create(&name, 4096, 0o600).unwrap();
    let b = Segment::open(&name, Some(4096)).unwrap();
    let s = Sample { id: 7, flags: 3, value: 2.5, history: [1, 2, 3, 4] };
    a.write(100, &s).unwrap();
    assert_eq!(b.read::<Sample>(100).unwrap(), s);
    let e = b.read::<Sample>(4096 - 8).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    assert!(e.to_string().contains("outside the segment"), "{e}");
}

/// Unlinks a named ring when dropped, so a failed test leaves nothing in /dev/shm.
struct Unlink(String);

impl Drop for Unlink {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(dev_shm(&self.0));
    }
}

#[test]
fn a_kept_ring_serves_new_peers_after_earlier_ones_left() {
    let name = shm_name();
    let _g = Unlink(name.clone());
    let addr = format!("shm:{name}");
    // A reader makes the ring, keeps it, and leaves cleanly.
    drop(ipcx::open_receiver_with(&addr, &OpenOptions::new().create(true).keep(true)).unwrap());
    // A later writer (another process) is not told that reader is gone: its messages wait.
    finish(spawn(peer().args(["send", &addr, "text:one", "text:two"])), "first writer");
    // A later reader takes them, then ends: that writer has gone, exactly as when the
    // reader attaches before the writer leaves (which comes first is a race).
    let mut rx = ipcx::open_receiver(&addr).unwrap();
    assert_eq!(rx.recv_timeout(Duration::from_secs(10)).unwrap(), b"one");
    assert_eq!(rx.recv_timeout(Duration::from_secs(10)).unwrap(), b"two");
    let e = rx.recv_timeout(Duration::from_secs(10)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Disconnected, "{e}");
    drop(rx);
    // A reader that comes to the emptied ring is in a new session: it waits for the next
    // writer rather than ending at once.
    let mut rx = ipcx::open_receiver(&addr).unwrap();
    let e = rx.recv_timeout(Duration::from_millis(200)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::TimedOut, "{e}");
    let late = spawn(peer().args(["send", &addr, "text:late"]));
    assert_eq!(rx.recv_timeout(Duration::from_secs(10)).unwrap(), b"late");
    finish(late, "second writer");
    // Within a session a writer's leaving still ends the stream.
    let e = rx.recv_timeout(Duration::from_secs(10)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Disconnected, "{e}");
}
