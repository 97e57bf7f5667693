//! Sockets beyond the conformance suite: many clients, hostile and idle clients, partial
//! I/O, peer credentials and allow lists, descriptor passing, names and their errors.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::process::Command;
use std::time::{Duration, Instant};

use ipcx::address::Address;
use ipcx::socket::{self, Server, ServerOptions};
use ipcx::{ErrorKind, Receiver, Sender, Wait};
use ipcx_tests::{check_pattern, open_fds, spawn, unique, ChildGuard, TestDir};

fn peer() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ipcx-testpeer"))
}

fn addr(s: &str) -> Address {
    Address::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
}

fn server(a: &str, persist: bool) -> Server {
    let l = socket::listen(&addr(a)).unwrap_or_else(|e| panic!("{a}: {e}"));
    Server::new(l, ServerOptions { persist, quiet: true, ..Default::default() })
}

const T: Duration = Duration::from_secs(20);

/// `f()` once it gives something, trying for at most 5 s. A socket closed here lives on
/// for an instant in any child a parallel test is forking (until its exec closes it), so
/// "the peer is gone" is checked this way.
fn eventually<R>(mut f: impl FnMut() -> Option<R>) -> Option<R> {
    let t = Instant::now();
    loop {
        if let Some(r) = f() {
            return Some(r);
        }
        if t.elapsed() > Duration::from_secs(5) {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The error of connecting to `a`, where nobody listens (any more).
fn refused(a: &str) -> ipcx::Error {
    eventually(|| socket::connect(&addr(a), None).err()).expect("nobody listens")
}

fn ok(mut c: ChildGuard) {
    let out = c.wait_within(Duration::from_secs(60));
    assert!(out.status.success(), "peer failed: {}", String::from_utf8_lossy(&out.stderr));
}

/// 50 client processes, 1,000 messages each, to one listener: nothing lost, each
/// client's order kept (clients are told apart by their pid, from `SO_PEERCRED`).
fn many_clients(scheme: &str) {
    const CLIENTS: usize = 50;
    const EACH: u64 = 1000;
    let dir = TestDir::new("sock-many");
    let a = format!("{scheme}:{}", dir.join("s.sock").display());
    let mut srv = server(&a, true);
    let kids: Vec<ChildGuard> =
        (0..CLIENTS).map(|_| spawn(peer().args(["gen", &a, &EACH.to_string(), "200"]))).collect();
    let pids: Vec<i32> = kids.iter().map(|k| k.id() as i32).collect();
    let mut next: HashMap<i32, u64> = HashMap::new();
    let mut buf = Vec::new();
    for n in 0..CLIENTS as u64 * EACH {
        srv.recv_timeout_into(&mut buf, T).unwrap_or_else(|e| panic!("message {n}: {e}"));
        let seq = check_pattern(&buf).unwrap_or_else(|e| panic!("message {n}: {e}"));
        let pid = srv.last_peer().expect("unix peers have credentials").pid;
        assert!(pids.contains(&pid), "a message from an unknown pid {pid}");
        let want = next.entry(pid).or_insert(0);
        assert_eq!(seq, *want, "client {pid}: out of order or lost");
        *want += 1;
    }
    assert_eq!(next.len(), CLIENTS);
    assert!(next.values().all(|&n| n == EACH));
    for k in kids {
        ok(k);
    }
    assert_eq!(srv.try_recv().unwrap_err().kind(), ErrorKind::WouldBlock, "nothing extra");
}

#[test]
fn fifty_stream_clients_a_thousand_messages_each_nothing_lost_order_kept() {
    many_clients("unix");
}

#[test]
fn fifty_seqpacket_clients_a_thousand_messages_each_nothing_lost_order_kept() {
    many_clients("unix-seqpacket");
}

#[test]
fn fifty_tcp_clients_to_one_listener() {
    const CLIENTS: usize = 50;
    const EACH: u64 = 1000;
    let l = socket::listen(&addr("tcp:127.0.0.1:0")).unwrap();
    let a = l.address().to_owned();
    let mut srv =
        Server::new(l, ServerOptions { persist: true, quiet: true, ..Default::default() });
    let kids: Vec<ChildGuard> =
        (0..CLIENTS).map(|_| spawn(peer().args(["gen", &a, &EACH.to_string(), "100"]))).collect();
    let mut count: HashMap<u64, u64> = HashMap::new();
    let mut buf = Vec::new();
    for n in 0..CLIENTS as u64 * EACH {
        srv.recv_timeout_into(&mut buf, T).unwrap_or_else(|e| panic!("message {n}: {e}"));
        *count.entry(check_pattern(&buf).unwrap()).or_default() += 1;
    }
    // No credentials over TCP: every sequence number arrived once per client.
    assert!((0..EACH).all(|s| count.get(&s) == Some(&(CLIENTS as u64))));
    for k in kids {
        ok(k);
    }
}

#[test]
fn hostile_oversized_frame_drops_that_client_and_an_idle_client_blocks_nobody() {
    let dir = TestDir::new("sock-hostile");
    let path = dir.join("s.sock");
    let a = format!("unix:{}?max=1000", path.display());
    let mut srv = server(&a, true);
    // An idle client: connects and sends nothing, ever.
    let _idle = UnixStream::connect(&path).unwrap();
    // A hostile client announces a 1 GB frame.
    let mut hostile = UnixStream::connect(&path).unwrap();
    hostile.write_all(&(1u32 << 30).to_le_bytes()).unwrap();
    hostile.write_all(b"junk").unwrap();
    // A well-behaved client process.
    let good = spawn(peer().args(["gen", &format!("unix:{}", path.display()), "200", "900"]));
    for want in 0..200 {
        let m = srv.recv_timeout(T).unwrap_or_else(|e| panic!("message {want}: {e}"));
        assert_eq!(check_pattern(&m).unwrap(), want);
    }
    ok(good);
    // The hostile client was closed by the server.
    hostile.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut b = [0u8; 1];
    // Closed: end of file, or a reset when the server closed with the junk unread.
    match hostile.read(&mut b) {
        Ok(0) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        other => panic!("the server should have closed the hostile client: {other:?}"),
    }
    // The idle client is still served: its message arrives after all this.
    let mut idle2 = UnixStream::connect(&path).unwrap();
    idle2.write_all(&2u32.to_le_bytes()).unwrap();
    idle2.write_all(b"ok").unwrap();
    assert_eq!(srv.recv_timeout(T).unwrap(), b"ok");
}

#[test]
fn a_frame_written_one_byte_at_a_time_arrives_whole_while_others_are_served() {
    let dir = TestDir::new("sock-bytes");
    let path = dir.join("s.sock");
    let mut srv = server(&format!("unix:{}", path.display()), true);
    let p2 = path.clone();
    let slow = std::thread::spawn(move || {
        let mut s = UnixStream::connect(&p2).unwrap();
        let mut frame = 11u32.to_le_bytes().to_vec();
        frame.extend_from_slice(b"hello world");
        for b in frame {
            s.write_all(&[b]).unwrap();
            std::thread::sleep(Duration::from_millis(100));
        }
        s
    });
    std::thread::sleep(Duration::from_millis(50));
    // Meanwhile a fast client is served at once.
    let mut fast = socket::connect(&addr(&format!("unix:{}", path.display())), None).unwrap();
    fast.send(b"fast").unwrap();
    let t = Instant::now();
    assert_eq!(srv.recv_timeout(T).unwrap(), b"fast");
    // The slow frame takes 1.5 s to write; the fast message must not wait for it.
    assert!(t.elapsed() < Duration::from_millis(700), "the slow writer held up the server");
    assert_eq!(srv.recv_timeout(T).unwrap(), b"hello world");
    drop(slow.join().unwrap());
}

#[test]
fn a_connection_closed_mid_frame_gives_corrupted_never_half_a_message() {
    let dir = TestDir::new("sock-cut");
    let path = dir.join("s.sock");
    let l = socket::listen(&addr(&format!("unix:{}", path.display()))).unwrap();
    let mut raw = UnixStream::connect(&path).unwrap();
    let mut conn = l.accept_wait(Wait::timeout(T)).unwrap();
    raw.write_all(&100u32.to_le_bytes()).unwrap();
    raw.write_all(&[1u8; 10]).unwrap();
    drop(raw);
    let e = conn.recv_timeout(T).expect_err("the frame was cut");
    assert_eq!(e.kind(), ErrorKind::Corrupted, "{e}");
    assert!(e.to_string().contains("expected 100 bytes, got 10"), "{e}");
    // A header cut short is caught too.
    let mut raw = UnixStream::connect(&path).unwrap();
    let mut conn = l.accept_wait(Wait::timeout(T)).unwrap();
    raw.write_all(&[5, 0]).unwrap();
    drop(raw);
    assert_eq!(conn.recv_timeout(T).unwrap_err().kind(), ErrorKind::Corrupted);
}

#[test]
fn large_and_small_frames_mixed_arrive_whole_through_every_receive_path() {
    let dir = TestDir::new("sock-mixed");
    let a = format!("unix:{}", dir.join("s.sock").display());
    let l = socket::listen(&addr(&a)).unwrap();
    // Sizes from 12 bytes to 100 kB: frames above and below the read buffer's half, so
    // the receiver switches between batched and direct reads.
    let child = spawn(peer().args(["gen", &a, "3000", "100000"]));
    let mut conn = l.accept_wait(Wait::timeout(T)).unwrap();
    let mut buf = Vec::new();
    let mut want = 0;
    while want < 3000 {
        // Non-blocking and very short timed receives too, which may stop inside a frame.
        let r = match want % 3 {
            0 => conn.try_recv_into(&mut buf),
            1 => conn.recv_timeout_into(&mut buf, Duration::from_micros(50)),
            _ => conn.recv_timeout_into(&mut buf, T),
        };
        match r {
            Ok(()) => {
                assert_eq!(check_pattern(&buf).unwrap(), want);
                want += 1;
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                conn.recv_timeout_into(&mut buf, T).unwrap();
                assert_eq!(check_pattern(&buf).unwrap(), want);
                want += 1;
            }
            Err(e) => panic!("message {want}: {e}"),
        }
    }
    ok(child);
}

#[test]
fn a_slow_reader_gets_everything_in_order() {
    let dir = TestDir::new("sock-slow");
    let a = format!("unix:{}", dir.join("s.sock").display());
    let l = socket::listen(&addr(&a)).unwrap();
    let child = spawn(peer().args(["gen", &a, "3000", "20000"]));
    let mut conn = l.accept_wait(Wait::timeout(T)).unwrap();
    let mut buf = Vec::new();
    for want in 0..3000 {
        if want % 300 == 0 {
            std::thread::sleep(Duration::from_millis(30));
        }
        conn.recv_timeout_into(&mut buf, T).unwrap();
        assert_eq!(check_pattern(&buf).unwrap(), want);
    }
    ok(child);
    assert_eq!(conn.recv_timeout(T).unwrap_err().kind(), ErrorKind::Disconnected);
}

#[test]
fn a_writer_stopped_and_continued_mid_frame_still_delivers_whole_messages() {
    let dir = TestDir::new("sock-stop");
    let a = format!("unix:{}", dir.join("s.sock").display());
    let l = socket::listen(&addr(&a)).unwrap();
    // Large messages (up to 1 MiB): each frame spans many writes and reads.
    let child = spawn(peer().args(["gen", &a, "60", "1000000"]));
    let mut conn = l.accept_wait(Wait::timeout(T)).unwrap();
    let pid = child.id().to_string();
    let mut buf = Vec::new();
    let mut want = 0;
    let mut stops = 0;
    while want < 60 {
        if want / 6 >= stops {
            stops += 1;
            // Freeze the writer wherever it is (often inside a frame): what can be taken
            // meanwhile is whole messages only, then nothing (WouldBlock), never a part.
            let _ = Command::new("kill").args(["-STOP", &pid]).status();
            std::thread::sleep(Duration::from_millis(30));
            loop {
                match conn.try_recv_into(&mut buf) {
                    Ok(()) => {
                        assert_eq!(check_pattern(&buf).unwrap(), want);
                        want += 1;
                    }
                    Err(e) => {
                        assert_eq!(e.kind(), ErrorKind::WouldBlock, "{e}");
                        break;
                    }
                }
            }
            let _ = Command::new("kill").args(["-CONT", &pid]).status();
            continue;
        }
        conn.recv_timeout_into(&mut buf, T).unwrap_or_else(|e| panic!("message {want}: {e}"));
        assert_eq!(check_pattern(&buf).unwrap(), want);
        want += 1;
    }
    ok(child);
}

#[test]
fn peer_credentials_name_the_client_process() {
    let dir = TestDir::new("sock-cred");
    for scheme in ["unix", "unix-seqpacket"] {
        let a = format!("{scheme}:{}", dir.join(&format!("{scheme}.sock")).display());
        let l = socket::listen(&addr(&a)).unwrap();
        let mut child = spawn(peer().args(["hold", &a, "10"]));
        let conn = l.accept_wait(Wait::timeout(T)).unwrap();
        let p = conn.peer_cred().expect("credentials");
        assert_eq!(p.pid as u32, child.id(), "{scheme}");
        assert_eq!(p.uid, my_uid(), "{scheme}");
        child.kill9();
    }
}

/// This process's uid (the owner of /proc/self).
fn my_uid() -> u32 {
    std::fs::metadata("/proc/self").map(|m| std::os::unix::fs::MetadataExt::uid(&m)).unwrap()
}

/// Serve until one client has been refused (at most 20 s): nothing may be received.
fn refused_once(srv: &mut Server) {
    let t = Instant::now();
    while srv.refused() == 0 {
        assert!(t.elapsed() < T, "the client never came");
        let e = srv
            .recv_timeout(Duration::from_millis(100))
            .expect_err("a refused client is never served");
        assert_eq!(e.kind(), ErrorKind::TimedOut, "{e}");
    }
    assert_eq!(srv.refused(), 1);
    let e =
        srv.recv_timeout(Duration::from_millis(300)).expect_err("nothing from the refused client");
    assert_eq!(e.kind(), ErrorKind::TimedOut, "{e}");
}

#[test]
fn a_uid_not_on_the_allow_list_is_refused_and_never_served() {
    let dir = TestDir::new("sock-allow");
    let me = my_uid();
    // Our own uid is not on this list: our client is refused.
    let a = format!("unix:{}", dir.join("a.sock").display());
    let l = socket::listen(&addr(&a)).unwrap();
    let mut srv = Server::new(
        l,
        ServerOptions { allow_uids: Some(vec![me.wrapping_add(4242)]), quiet: true, persist: true },
    );
    let child = spawn(peer().args(["send", &a, "text:sneaky"]));
    refused_once(&mut srv);
    drop(child);

    if me != 0 {
        eprintln!("skipped the privilege-dropping half: not running as root");
        return;
    }
    // As root: a child that drops to uid 65534 is refused; a root child is served.
    use std::os::unix::process::CommandExt;
    let open = TestDir::new("sock-allow-open");
    std::fs::set_permissions(open.path(), std::fs::Permissions::from_mode(0o711)).unwrap();
    let a = format!("unix:{}?mode=0666", open.join("b.sock").display());
    let l = socket::listen(&addr(&a)).unwrap();
    let mut srv =
        Server::new(l, ServerOptions { allow_uids: Some(vec![0]), quiet: true, persist: true });
    let nobody = spawn(peer().args(["send", &a, "text:from-nobody"]).uid(65534).gid(65534));
    refused_once(&mut srv);
    drop(nobody);
    let root = spawn(peer().args(["send", &a, "text:from-root"]));
    assert_eq!(srv.recv_timeout(T).unwrap(), b"from-root");
    ok(root);
}

#[test]
fn descriptors_passed_read_the_file_the_sender_opened_and_over_limit_leaks_none() {
    let dir = TestDir::new("sock-fds");
    for scheme in ["unix", "unix-seqpacket"] {
        let a = format!("{scheme}:{}", dir.join(&format!("{scheme}.sock")).display());
        let l = socket::listen(&addr(&a)).unwrap();
        let mut client = socket::connect(&addr(&a), Some(T)).unwrap();
        let mut server = l.accept_wait(Wait::timeout(T)).unwrap();
        let files: Vec<std::fs::File> = (0..3)
            .map(|i| {
                let p = dir.join(&format!("{scheme}-{i}.txt"));
                std::fs::write(&p, format!("file {i}")).unwrap();
                std::fs::File::open(&p).unwrap()
            })
            .collect();
        client.send_with_fds(b"one file", &[files[1].as_fd()]).unwrap();
        let (msg, fds) = server.recv_with_fds(2).unwrap();
        assert_eq!(msg, b"one file");
        assert_eq!(fds.len(), 1, "{scheme}");
        let mut got = String::new();
        std::fs::File::from(fds.into_iter().next().unwrap()).read_to_string(&mut got).unwrap();
        assert_eq!(got, "file 1", "{scheme}: the descriptor reads the sender's file");

        let before = open_fds();
        let all: Vec<_> = files.iter().map(|f| f.as_fd()).collect();
        client.send_with_fds(b"three files", &all).unwrap();
        client.send(b"after").unwrap();
        let e = server.recv_with_fds(2).expect_err("3 descriptors over a limit of 2");
        assert_eq!(e.kind(), ErrorKind::TooLarge, "{scheme}: {e}");
        assert_eq!(e.limit(), Some(2));
        assert_eq!(open_fds(), before, "{scheme}: a refused message leaked descriptors");
        // The connection goes on.
        let (msg, fds) = server.recv_with_fds(2).unwrap();
        assert_eq!((msg.as_slice(), fds.len()), (&b"after"[..], 0));
        // A receiver that takes no descriptors leaks none either.
        server.set_max_fds(0);
        let before = open_fds();
        client.send_with_fds(b"unwanted", &all).unwrap();
        client.send(b"last").unwrap();
        let mut buf = Vec::new();
        if scheme == "unix-seqpacket" {
            // A packet is delivered without them (the kernel closed them).
            server.recv_timeout_into(&mut buf, T).unwrap();
            assert_eq!(buf, b"unwanted");
        }
        for _ in 0..3 {
            if server.recv_timeout_into(&mut buf, T).is_ok() && buf == b"last" {
                break;
            }
        }
        assert_eq!(buf, b"last", "{scheme}");
        assert_eq!(open_fds(), before, "{scheme}: unwanted descriptors leaked");
    }
}

#[test]
fn socket_files_are_0600_replaced_when_stale_never_when_live_and_removed_on_drop() {
    let dir = TestDir::new("sock-names");
    let path = dir.join("s.sock");
    let a = format!("unix:{}", path.display());
    let l = socket::listen(&addr(&a)).unwrap();
    let mode = std::fs::symlink_metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    // Live: never stolen.
    let e = socket::listen(&addr(&a)).expect_err("live server");
    assert_eq!(e.kind(), ErrorKind::AlreadyExists, "{e}");
    assert!(e.to_string().contains("live server"), "{e}");
    drop(l);
    assert!(!path.exists(), "the listener removes its file on drop");

    // Stale: a socket file whose server is gone (std leaves its file behind).
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
    assert!(path.exists());
    let e = refused(&a);
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
    assert!(e.to_string().contains("connection refused"), "{e}");
    let l = socket::listen(&addr(&a)).expect("a stale socket file is replaced");
    let mut c = socket::connect(&addr(&a), None).unwrap();
    c.send(b"x").unwrap();
    assert_eq!(l.accept().unwrap().recv().unwrap(), b"x");
    drop(l);
    assert!(!path.exists());

    // Not a socket: never replaced.
    std::fs::write(&path, "data").unwrap();
    let e = socket::listen(&addr(&a)).expect_err("a regular file");
    assert_eq!(e.kind(), ErrorKind::AlreadyExists);
    assert_eq!(std::fs::read(&path).unwrap(), b"data");

    // Too long a path names the limit.
    let long = format!("unix:/tmp/{}", "x".repeat(120));
    let e = socket::listen(&addr(&long)).expect_err("too long");
    assert_eq!(e.kind(), ErrorKind::TooLarge);
    assert_eq!(e.limit(), Some(107));
    assert!(e.to_string().contains("107"), "{e}");
    let e = socket::connect(&addr(&long), None).expect_err("too long");
    assert_eq!(e.limit(), Some(107));
    // Exactly at the limit: 107 bytes bind; 108 do not.
    let base = dir.path().as_os_str().len() + 1;
    let at = dir.join(&"y".repeat(107 - base));
    let l = socket::listen(&addr(&format!("unix:{}", at.display()))).expect("107 bytes fit");
    drop(l);
    let over = dir.join(&"y".repeat(108 - base));
    let e = socket::listen(&addr(&format!("unix:{}", over.display()))).unwrap_err();
    assert_eq!((e.kind(), e.limit()), (ErrorKind::TooLarge, Some(107)), "{e}");
    assert!(!over.exists());
    // An explicit mode is exact whatever the umask.
    let p2 = dir.join("m.sock");
    let _l = socket::listen(&addr(&format!("unix:{}?mode=0660", p2.display()))).unwrap();
    assert_eq!(std::fs::symlink_metadata(&p2).unwrap().permissions().mode() & 0o777, 0o660);
}

#[test]
fn abstract_names_work_and_a_live_one_is_never_taken() {
    let a = format!("unix:@{}", unique("ipcx-test-abs"));
    let l = socket::listen(&addr(&a)).unwrap();
    assert_eq!(socket::listen(&addr(&a)).unwrap_err().kind(), ErrorKind::AlreadyExists);
    let child = spawn(peer().args(["send", &a, "text:abstract"]));
    let mut c = l.accept_wait(Wait::timeout(T)).unwrap();
    assert_eq!(c.recv_timeout(T).unwrap(), b"abstract");
    ok(child);
    drop(l);
    // The name goes with the last copy of the listening socket; a child being spawned
    // by a parallel test holds copies for an instant between fork and exec.
    let t = Instant::now();
    let e = loop {
        match socket::connect(&addr(&a), None) {
            Err(e) => break e,
            Ok(_) if t.elapsed() < Duration::from_secs(5) => {
                std::thread::sleep(Duration::from_millis(20))
            }
            Ok(_) => panic!("the abstract name outlived its listener"),
        }
    };
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
}

#[test]
fn a_client_with_a_timeout_waits_for_the_server_and_gives_up_clearly() {
    let dir = TestDir::new("sock-wait");
    let a = format!("unix:{}", dir.join("s.sock").display());
    let t = Instant::now();
    let e = socket::connect(&addr(&a), Some(Duration::from_millis(300))).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
    assert!(t.elapsed() >= Duration::from_millis(290));
    // The client started first still gets through once the server comes.
    let child = spawn(peer().args(["send", &a, "text:late"]));
    std::thread::sleep(Duration::from_millis(300));
    let mut srv = server(&a, false);
    assert_eq!(srv.recv_timeout(T).unwrap(), b"late");
    ok(child);
    assert_eq!(srv.recv_timeout(T).unwrap_err().kind(), ErrorKind::Disconnected);
}

#[test]
fn datagrams_keep_boundaries_name_their_sender_and_a_gone_receiver_is_disconnected() {
    let dir = TestDir::new("sock-dgram");
    let path = dir.join("d.sock");
    let a = format!("unix-dgram:{}", path.display());
    // A stale socket file left by a dead receiver is replaced.
    drop(std::os::unix::net::UnixDatagram::bind(&path).unwrap());
    assert!(path.exists());
    let mut rx = eventually(|| socket::unix::bind_datagram(&addr(&a)).ok())
        .expect("a stale datagram socket file is replaced");
    let e = socket::unix::bind_datagram(&addr(&a)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::AlreadyExists, "a live receiver's name is never taken");
    let child = spawn(peer().args(["send", &a, "text:one", "empty", "fill:5000"]));
    assert_eq!(rx.recv_timeout(T).unwrap(), b"one");
    assert_eq!(rx.last_cred().map(|c| c.pid as u32), Some(child.id()));
    assert_eq!(rx.recv_timeout(T).unwrap(), b"");
    assert_eq!(rx.recv_timeout(T).unwrap().len(), 5000);
    ok(child);
    let mut tx = socket::connect(&addr(&a), None).unwrap();
    let e = tx.send(&vec![0; socket::DEFAULT_MAX_PACKET + 1]).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::TooLarge);
    tx.send(b"x").unwrap();
    drop(rx);
    assert!(!path.exists());
    let e = eventually(|| tx.send(b"y").err()).expect("the receiver is gone");
    assert_eq!(e.kind(), ErrorKind::Disconnected, "{e}");
}

#[test]
fn tcp_with_only_a_port_binds_loopback_and_a_taken_port_is_refused() {
    let l = socket::listen(&addr("tcp::0")).unwrap();
    assert!(l.address().starts_with("tcp:127.0.0.1:"), "{}", l.address());
    let e = socket::listen(&addr(l.address())).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::AlreadyExists, "{e}");
    let mut c = socket::connect(&addr(l.address()), None).unwrap();
    assert!(c.peer_cred().is_none(), "TCP has no credentials");
    let f = std::fs::File::open("/proc/self/stat").unwrap();
    assert_eq!(c.send_with_fds(b"fd", &[f.as_fd()]).unwrap_err().kind(), ErrorKind::Unsupported);
    c.send(b"hi").unwrap();
    let mut s = l.accept().unwrap();
    assert_eq!(s.recv().unwrap(), b"hi");
    s.send(b"back").unwrap();
    assert_eq!(c.recv().unwrap(), b"back");
    let port = l.address().rsplit(':').next().unwrap().to_owned();
    drop((l, s));
    let e = refused(&format!("tcp:127.0.0.1:{port}"));
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
    assert!(e.to_string().contains("refused"), "{e}");
}

#[test]
fn the_common_api_listens_with_create_and_connects_without() {
    let dir = TestDir::new("sock-api");
    let a = format!("unix:{}", dir.join("s.sock").display());
    let opts = ipcx::OpenOptions::new().create(true);
    let mut rx = ipcx::open_receiver_with(&a, &opts).unwrap();
    let mut tx = ipcx::open_sender_with(&a, &ipcx::OpenOptions::new()).unwrap();
    tx.send(b"via the common API").unwrap();
    assert_eq!(rx.recv_timeout(T).unwrap(), b"via the common API");
    drop(tx);
    assert_eq!(rx.recv_timeout(T).unwrap_err().kind(), ErrorKind::Disconnected);
}

#[test]
fn a_second_server_probing_the_name_does_not_end_the_first() {
    let dir = TestDir::new("sock-probe");
    let a = format!("unix:{}", dir.join("s.sock").display());
    let mut srv = server(&a, false);
    // The would-be second server connects to find out whether the first is alive.
    assert_eq!(socket::listen(&addr(&a)).unwrap_err().kind(), ErrorKind::AlreadyExists);
    let e = srv.recv_timeout(Duration::from_millis(300)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::TimedOut, "the probe must not count as a client: {e}");
    let child = spawn(peer().args(["send", &a, "text:real"]));
    assert_eq!(srv.recv_timeout(T).unwrap(), b"real");
    ok(child);
    assert_eq!(srv.recv_timeout(T).unwrap_err().kind(), ErrorKind::Disconnected);
}

#[test]
fn a_busy_client_does_not_starve_a_quiet_one() {
    let dir = TestDir::new("sock-fair");
    let a = format!("unix:{}", dir.join("s.sock").display());
    let l = socket::listen(&addr(&a)).unwrap();
    // Both clients send everything before the server reads anything: 100 messages
    // waiting from one (as many as its socket buffer holds), one from the other.
    ok(spawn(peer().args(["gen", &a, "100", "60"])));
    ok(spawn(peer().args(["send", &a, "text:quiet"])));
    let mut srv =
        Server::new(l, ServerOptions { persist: true, quiet: true, ..Default::default() });
    let mut buf = Vec::new();
    let mut at = None;
    for i in 0..101 {
        srv.recv_timeout_into(&mut buf, T).unwrap();
        if buf == b"quiet" {
            at = Some(i);
        }
    }
    let at = at.expect("the quiet client's message arrived");
    assert!(at <= 2, "the quiet client waited behind {at} messages of the busy one");
}

#[test]
fn tcp_over_ipv6_loopback() {
    let l = match socket::listen(&addr("tcp:[::1]:0")) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("skipped: no IPv6 loopback here ({e})");
            return;
        }
    };
    assert!(l.address().starts_with("tcp:[::1]:"), "{}", l.address());
    let child = spawn(peer().args(["send", l.address(), "text:six"]));
    assert_eq!(l.accept_wait(Wait::timeout(T)).unwrap().recv_timeout(T).unwrap(), b"six");
    ok(child);
}

#[test]
fn an_oversized_packet_is_refused_naming_the_limit_and_the_connection_goes_on() {
    let dir = TestDir::new("sock-bigpacket");
    let p = dir.join("s.sock");
    let l = socket::listen(&addr(&format!("unix-seqpacket:{}?max=1000", p.display()))).unwrap();
    // The client allows itself more than the server takes.
    let mut c =
        socket::connect(&addr(&format!("unix-seqpacket:{}?max=5000", p.display())), None).unwrap();
    let mut s = l.accept_wait(Wait::timeout(T)).unwrap();
    c.send(&[7; 2000]).unwrap();
    c.send(b"small").unwrap();
    let mut buf = vec![1, 2, 3];
    let e = s.recv_timeout_into(&mut buf, T).unwrap_err();
    assert_eq!((e.kind(), e.limit()), (ErrorKind::TooLarge, Some(1000)), "{e}");
    assert!(e.to_string().contains("2000 bytes"), "{e}");
    assert!(buf.is_empty(), "no part of the refused message is handed out");
    assert_eq!(s.recv_timeout(T).unwrap(), b"small");
}

/// Read `conn` to its end: the messages, then `Disconnected`.
fn drain(conn: &mut socket::Connection) -> Vec<Vec<u8>> {
    let mut got = Vec::new();
    loop {
        match conn.recv_timeout(T) {
            Ok(m) => got.push(m),
            Err(e) if e.kind() == ErrorKind::Disconnected => return got,
            Err(e) => panic!("{e}"),
        }
    }
}

#[test]
fn empty_seqpacket_messages_sent_just_before_the_peer_exits_are_not_taken_for_its_end() {
    // Both reads of 0 bytes: an empty message, or the end of the stream. A message from a
    // peer with an address (ipcx binds its clients and pairs) carries it; from a plain
    // unbound client (another program's), a timestamp does. Each way, and through both
    // receive paths (plain, and with descriptors accepted), the empty messages queued
    // before the peer exited come out before the end.
    let dir = TestDir::new("sock-empty");
    let p = dir.join("s.sock");
    let a = format!("unix-seqpacket:{}", p.display());
    let l = socket::listen(&addr(&a)).unwrap();
    let want: Vec<Vec<u8>> = vec![b"".to_vec(), b"x".to_vec(), b"".to_vec()];
    for (how, max_fds) in [("send", 0), ("send-unnamed", 0), ("send", 1), ("send-unnamed", 1)] {
        let target = if how == "send" { a.clone() } else { p.display().to_string() };
        let child = spawn(peer().args([how, &target, "empty", "text:x", "empty"]));
        let mut s = l.accept_wait(Wait::timeout(T)).unwrap();
        s.set_max_fds(max_fds);
        // Which way the receiver tells them apart: the sender's address, or timestamps.
        let named = ipcx::sys::socket::peer_is_named(s.as_fd()).unwrap();
        assert_eq!(named, how == "send", "{how}");
        ok(child); // gone before the first read
        assert_eq!(drain(&mut s), want, "{how}, max_fds {max_fds}");
    }
    let (mut tx, mut rx) =
        socket::unix::pair(ipcx::address::UnixKind::Seqpacket, Default::default()).unwrap();
    assert!(ipcx::sys::socket::peer_is_named(rx.as_fd()).unwrap(), "a pair's ends are named");
    for m in &want {
        tx.send(m).unwrap();
    }
    drop(tx);
    assert_eq!(drain(&mut rx), want, "a pair");
}
