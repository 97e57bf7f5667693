//! Pipes and FIFOs beyond the conformance suite: spawning with inherited ends, safe FIFO
//! creation, many writers on one FIFO, open time-outs.

use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use ipcx::fifo::{Fifo, FifoReceiver};
use ipcx::pipe::{self, ChildEnd};
use ipcx::{ErrorKind, Framing, OpenOptions, Receiver, Sender};
use ipcx_tests::{check_pattern, spawn, ChildGuard, TestDir};

/// A reader that outlives its writers, on a FIFO it creates at `dir/f` (`options` after
/// the path: `""`, `"?framing=raw"`): (the path, the receiver).
fn persistent_reader(dir: &TestDir, options: &str) -> (PathBuf, ipcx::BoxReceiver) {
    let p = dir.join("f");
    let opts = OpenOptions::new().create(true).persist(true);
    let rx = ipcx::open_receiver_with(&format!("fifo:{}{options}", p.display()), &opts).unwrap();
    (p, rx)
}

/// A writer that is not ipcx (or one cut short): it writes `bytes` to the FIFO and leaves.
fn write_and_leave(p: &std::path::Path, bytes: &[u8]) {
    use std::io::Write;
    std::fs::OpenOptions::new().write(true).open(p).unwrap().write_all(bytes).unwrap();
}

fn peer() -> Command {
    Command::new(PathBuf::from(env!("CARGO_BIN_EXE_ipcx-testpeer")))
}

/// A child echoing every message from its standard input to its standard output, and our
/// duplex end of the two pipes.
fn echo_child() -> (ChildGuard, pipe::Duplex) {
    let mut cmd = peer();
    cmd.args(["echo", "pipe:stdin", "pipe:stdout"]);
    let (child, d) =
        pipe::spawn_duplex(&mut cmd, ChildEnd::Stdin, ChildEnd::Stdout, Framing::default())
            .unwrap();
    (ChildGuard(Some(child)), d)
}

#[test]
fn a_child_echoes_over_its_stdin_and_stdout() {
    let (mut g, mut d) = echo_child();
    for m in [&b"ping"[..], &[0u8; 70_000][..], b"last"] {
        d.send(m).unwrap();
        assert_eq!(d.recv_timeout(Duration::from_secs(10)).unwrap(), m);
    }
    // An empty message ends the peer's echo loop (the peer's protocol).
    d.send(b"").unwrap();
    let out = g.wait_within(Duration::from_secs(10));
    assert!(out.status.success());
    let e = d.recv_timeout(Duration::from_secs(10)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Disconnected, "{e}");
}

#[test]
fn a_frame_larger_than_the_pipe_is_finished_whole_under_a_time_out() {
    // A timed send writes without blocking, so a frame larger than the pipe goes out in
    // parts; the rest of the frame must follow byte for byte (the child echoes each one).
    let (mut g, mut d) = echo_child();
    let mut msg = Vec::new();
    for seq in 0..6u64 {
        ipcx_tests::pattern_message(seq, 3 << 20, &mut msg);
        d.send_timeout(&msg, Duration::from_secs(20)).unwrap();
        let back = d.recv_timeout(Duration::from_secs(20)).unwrap();
        assert_eq!(back.len(), msg.len());
        assert_eq!(check_pattern(&back), Ok(seq));
    }
    d.send(b"").unwrap();
    assert!(g.wait_within(Duration::from_secs(10)).status.success());
}

#[test]
fn a_child_writes_to_a_numbered_descriptor() {
    let mut cmd = peer();
    cmd.args(["send", "pipe:fd=7", "text:one", "text:two"]);
    let (child, mut rx) =
        pipe::spawn_from_child(&mut cmd, ChildEnd::Fd(7), Framing::default()).unwrap();
    let mut g = ChildGuard(Some(child));
    assert_eq!(rx.recv_timeout(Duration::from_secs(10)).unwrap(), b"one");
    assert_eq!(rx.recv_timeout(Duration::from_secs(10)).unwrap(), b"two");
    assert!(g.wait_within(Duration::from_secs(10)).status.success());
    assert_eq!(rx.recv().unwrap_err().kind(), ErrorKind::Disconnected);
}

#[test]
fn a_child_without_the_descriptor_gets_a_clear_error() {
    let o =
        spawn(peer().args(["send", "pipe:fd=9", "text:x"])).wait_within(Duration::from_secs(10));
    assert!(!o.status.success());
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(e.contains("descriptor 9 is not open"), "{e}");
}

#[test]
fn writing_to_a_closed_pipe_is_disconnected_not_sigpipe() {
    let (mut tx, rx) = pipe::pipe().unwrap();
    drop(rx);
    let e = tx.send(b"x").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Disconnected, "{e}");
}

#[test]
fn wrong_child_end_is_refused() {
    let e = pipe::spawn_to_child(&mut peer(), ChildEnd::Stdout, Framing::default()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
}

#[test]
fn fifo_creation_is_exact_exclusive_and_owned() {
    let dir = TestDir::new("fifo");
    let p = dir.join("f");
    {
        let f = Fifo::create(&p, 0o640).unwrap();
        let m = std::fs::symlink_metadata(&p).unwrap();
        assert!(m.file_type().is_fifo());
        assert_eq!(m.permissions().mode() & 0o7777, 0o640, "mode exact whatever the umask");
        let e = Fifo::create(&p, 0o600).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::AlreadyExists, "{e}");
        assert!(f.is_owner());
    }
    assert!(!p.exists(), "the creator removes it on drop");

    let mut kept = Fifo::create(&p, 0o600).unwrap();
    kept.keep();
    drop(kept);
    assert!(p.exists(), "keep() leaves it");
    let reopened = Fifo::open_or_create(&p, 0o600).unwrap();
    assert!(!reopened.is_owner(), "an existing FIFO is used, not owned");
    drop(reopened);
    assert!(p.exists());
    std::fs::remove_file(&p).unwrap();
    ipcx::registry::Registry::default().prune(); // forget the kept FIFO's entry now
}

#[test]
fn fifo_refuses_regular_files_and_symbolic_links() {
    let dir = TestDir::new("fifo");
    let reg = dir.join("reg");
    std::fs::write(&reg, b"keep me").unwrap();
    let e = Fifo::create(&reg, 0o600).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::AlreadyExists);
    assert!(e.to_string().contains("regular file"), "{e}");
    let e = Fifo::open_or_create(&reg, 0o600).unwrap_err();
    assert!(e.to_string().contains("not a FIFO"), "{e}");
    assert_eq!(std::fs::read(&reg).unwrap(), b"keep me");

    // A link to a real FIFO is still refused: a link in /tmp could point anywhere.
    let real = dir.join("real");
    let _f = Fifo::create(&real, 0o600).unwrap();
    let link = dir.join("link");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let e = FifoReceiver::open(&link, Framing::default()).unwrap_err();
    assert!(e.to_string().contains("symbolic link"), "{e}");
    let e = Fifo::create(&link, 0o600).unwrap_err();
    assert!(e.to_string().contains("symbolic link"), "{e}");
}

#[test]
fn a_writer_waits_for_a_reader_at_most_its_timeout() {
    let dir = TestDir::new("fifo");
    let p = dir.join("f");
    let _f = Fifo::create(&p, 0o600).unwrap();
    let t = Instant::now();
    let e = ipcx::fifo::FifoSender::open(&p, Framing::default(), Some(Duration::from_millis(200)))
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::TimedOut, "{e}");
    assert!(t.elapsed() >= Duration::from_millis(190) && t.elapsed() < Duration::from_secs(3));
    assert!(e.to_string().contains("no reader"), "{e}");
}

#[test]
fn many_writers_never_interleave_messages() {
    const WRITERS: usize = 8;
    const N: u64 = 2_000;
    let dir = TestDir::new("fifo");
    let (p, mut rx) = persistent_reader(&dir, "");
    let addr = format!("fifo:{}", p.display());
    let max = ipcx::fifo::max_message(Framing::default(), true).to_string();
    let mut kids: Vec<ChildGuard> =
        (0..WRITERS).map(|_| spawn(peer().args(["gen", &addr, &N.to_string(), &max]))).collect();
    let mut seen = vec![0usize; N as usize];
    let mut buf = Vec::new();
    for i in 0..WRITERS as u64 * N {
        rx.recv_timeout_into(&mut buf, Duration::from_secs(30))
            .unwrap_or_else(|e| panic!("message {i}: {e}"));
        let seq = check_pattern(&buf).unwrap_or_else(|e| panic!("message {i}: {e}"));
        seen[seq as usize] += 1;
    }
    assert!(seen.iter().all(|&c| c == WRITERS), "each writer's every message arrives once");
    for k in &mut kids {
        assert!(k.wait_within(Duration::from_secs(30)).status.success());
    }
}

#[test]
fn a_persistent_reader_drops_a_message_its_last_writer_cut_and_goes_on_with_the_next() {
    let dir = TestDir::new("fifo");
    let (p, mut rx) = persistent_reader(&dir, "");
    let addr = format!("fifo:{}", p.display());
    let mut buf = Vec::new();
    for (cut, why) in [(&b"\x14\0\0\0partial"[..], "message"), (&b"\x14\0"[..], "frame header")] {
        // A foreign writer (or one killed in the middle of a large message): one whole
        // frame, then part of the next, then it is gone.
        write_and_leave(&p, &[&b"\x03\0\0\0abc"[..], cut].concat());
        rx.recv_timeout_into(&mut buf, Duration::from_secs(10)).unwrap();
        assert_eq!(buf, b"abc");
        let e = rx.recv_timeout_into(&mut buf, Duration::from_secs(10)).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Incomplete, "{e}");
        assert!(e.to_string().contains(why) && e.to_string().contains("next writer"), "{e}");
        // The next writer's messages arrive whole, not joined to the cut one.
        let mut tx = ipcx::open_sender(&addr).unwrap();
        tx.send(b"hello-from-new-writer").unwrap();
        tx.send(b"second").unwrap();
        drop(tx);
        for want in [&b"hello-from-new-writer"[..], b"second"] {
            rx.recv_timeout_into(&mut buf, Duration::from_secs(10)).unwrap();
            assert_eq!(buf, want);
        }
        // With no writer, the reader waits (here until its time-out) rather than ending.
        let e = rx.recv_timeout_into(&mut buf, Duration::from_millis(50)).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::TimedOut, "{e}");
    }
    // A reader that does not persist reports the cut as corruption and ends there.
    let mut once = ipcx::open_receiver(&addr).unwrap();
    write_and_leave(&p, b"\x14\0\0\0partial");
    let e = once.recv_timeout_into(&mut buf, Duration::from_secs(10)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Corrupted, "{e}");
}

#[test]
fn a_persistent_raw_or_lines_reader_waits_for_the_next_writer() {
    let dir = TestDir::new("fifo");
    for framing in ["raw", "lines"] {
        let (p, mut rx) = persistent_reader(&dir, &format!("?framing={framing}"));
        let mut buf = Vec::new();
        // Before any writer, and between writers, a receive waits (no end of stream).
        let e = rx.recv_timeout_into(&mut buf, Duration::from_millis(50)).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::TimedOut, "{framing}: {e}");
        for word in ["one\n", "two\n"] {
            write_and_leave(&p, word.as_bytes());
            rx.recv_timeout_into(&mut buf, Duration::from_secs(10)).unwrap();
            let got = String::from_utf8_lossy(&buf).into_owned();
            assert_eq!(got.trim_end(), word.trim_end(), "{framing}");
            let e = rx.recv_timeout_into(&mut buf, Duration::from_millis(50)).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::TimedOut, "{framing}: {e}");
        }
    }
}

#[test]
fn over_pipe_buf_needs_the_single_writer_setting() {
    let dir = TestDir::new("fifo");
    let p = dir.join("f");
    let _f = Fifo::create(&p, 0o600).unwrap();
    let addr = format!("fifo:{}", p.display());
    let _rx = ipcx::open_receiver(&addr).unwrap();
    let mut tx = ipcx::open_sender(&addr).unwrap();
    let e = tx.send(&[0; 5000]).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::TooLarge);
    assert_eq!(e.limit(), Some(4092));
    assert!(e.to_string().contains("PIPE_BUF"), "{e}");
    assert!(e.to_string().contains("atomic=0"), "{e}");
    let mut single = ipcx::open_sender(&format!("{addr}?atomic=0")).unwrap();
    assert!(single.try_send(&[0; 5000]).is_ok());
}

#[test]
fn receiving_leaves_the_fifo_access_time_alone() {
    // ipcx opens a FIFO it reads with O_NOATIME (the owner may): without it, nearly every
    // read stamps the FIFO's access time, a tenth of a 64 B reader's rate. A non-owner
    // falls back to a plain open (the permission tests open a 0666 FIFO as another user).
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
    let dir = TestDir::new("fifo");
    let p = dir.join("f");
    let _f = Fifo::create(&p, 0o600).unwrap();
    let past = std::time::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&p)
        .unwrap()
        .set_times(std::fs::FileTimes::new().set_accessed(past))
        .unwrap();
    assert_eq!(std::fs::metadata(&p).unwrap().atime(), 1_000_000_000);
    let addr = format!("fifo:{}", p.display());
    let mut rx = ipcx::open_receiver(&addr).unwrap();
    let mut kid = spawn(peer().args(["gen", &addr, "1000", "64"]));
    let mut buf = Vec::new();
    for i in 0..1000 {
        rx.recv_timeout_into(&mut buf, Duration::from_secs(30))
            .unwrap_or_else(|e| panic!("message {i}: {e}"));
        check_pattern(&buf).unwrap_or_else(|e| panic!("message {i}: {e}"));
    }
    assert!(kid.wait_within(Duration::from_secs(30)).status.success());
    let md = std::fs::metadata(&p).unwrap();
    assert!(md.mtime() > 1_000_000_000, "the writes moved the modification time");
    assert_eq!(md.atime(), 1_000_000_000, "a receive changed the FIFO's access time");
}

#[test]
fn a_descriptor_open_the_wrong_way_is_refused_at_open_and_left_open() {
    use std::os::fd::AsRawFd;
    let (r, w) = ipcx::pipe::pipe_fds().unwrap();
    let e = ipcx::open_receiver(&format!("pipe:fd={}", w.as_raw_fd())).err().unwrap();
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    assert!(e.to_string().contains("open for writing only"), "{e}");
    let e = ipcx::open_sender(&format!("pipe:fd={}", r.as_raw_fd())).err().unwrap();
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    assert!(e.to_string().contains("open for reading only"), "{e}");
    // Both descriptors are still open and work: the refusal did not close them.
    let mut tx = ipcx::pipe::PipeSender::new(
        ipcx::frame::FdStream::new(ipcx::frame::FdHolder::Owned(w)).unwrap(),
        Framing::default(),
        "pipe:w",
        1 << 20,
    );
    let mut rx = ipcx::pipe::PipeReceiver::new(
        ipcx::frame::FdStream::new(ipcx::frame::FdHolder::Owned(r)).unwrap(),
        Framing::default(),
        "pipe:r",
    );
    tx.send(b"still open").unwrap();
    assert_eq!(rx.recv().unwrap(), b"still open");
}

#[test]
fn a_persistent_reader_gets_back_in_step_when_a_bad_writer_leaves() {
    let dir = TestDir::new("fifo");
    let (p, mut rx) = persistent_reader(&dir, "");
    let addr = format!("fifo:{}", p.display());
    let mut buf = Vec::new();
    // A writer whose header announces far more than the receiver's limit, then leaves.
    write_and_leave(&p, b"\xff\xff\xff\x7fhello");
    let e = rx.recv_timeout_into(&mut buf, Duration::from_secs(10)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::TooLarge, "{e}");
    // The next receive drops the rest of that writer's bytes and says so, once.
    let e = rx.recv_timeout_into(&mut buf, Duration::from_secs(10)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Incomplete, "{e}");
    assert!(e.to_string().contains("9 bytes from there on were dropped"), "{e}");
    // Then the next writer is read from the start of its first frame.
    let mut tx = ipcx::open_sender(&addr).unwrap();
    tx.send(b"good").unwrap();
    drop(tx);
    rx.recv_timeout_into(&mut buf, Duration::from_secs(10)).unwrap();
    assert_eq!(buf, b"good");
}
