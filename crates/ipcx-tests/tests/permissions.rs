//! Secure defaults: an object ipcx creates without being asked for a mode is closed to other
//! users (a child that drops to uid 65534 is refused, for every mechanism in
//! `mechs::all()`), and creating or opening by name in a shared directory cannot be
//! redirected by a symbolic link or by a name created in between.

use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::time::Duration;

use ipcx::fifo::Fifo;
use ipcx::{ErrorKind, OpenOptions};
use ipcx_tests::{mechs, spawn, unique, unique_key, TestDir};

const NOBODY: u32 = 65534;

fn peer() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_ipcx-testpeer"))
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("Uid:").map(|r| r.split_whitespace().nth(1) == Some("0"))
            })
        })
        .unwrap_or(false)
}

/// A directory everyone may search, so only the object's own mode decides.
fn open_dir(tag: &str) -> TestDir {
    let d = TestDir::new(tag);
    std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    d
}

/// Run `ipcx-testpeer try-open ADDR` as uid/gid 65534; its `rx=.. tx=..` line.
fn try_open_as_nobody(addr: &str) -> String {
    let mut c = std::process::Command::new(peer());
    c.arg("try-open").arg(addr).uid(NOBODY).gid(NOBODY);
    let out = spawn(&mut c).wait_within(Duration::from_secs(20));
    assert!(out.status.success(), "peer failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[test]
fn another_user_cannot_open_a_default_object_of_any_kind() {
    if !is_root() {
        eprintln!("skipped: switching a child to another uid needs root");
        return;
    }
    let mut tested = 0;
    for m in mechs::all() {
        let dir = open_dir(m.name());
        let (addr, _guard) = match m.create_default(&dir) {
            Ok(x) => x,
            Err(why) => {
                eprintln!("{}: skipped: {why}", m.name());
                continue;
            }
        };
        let seen = try_open_as_nobody(&addr);
        assert_eq!(
            seen,
            "rx=PermissionDenied tx=PermissionDenied",
            "{}: another user could open the default object {addr}",
            m.name()
        );
        tested += 1;
    }
    assert!(tested > 0, "no mechanism has a named object to test");
}

#[test]
fn the_permission_test_sees_an_object_opened_to_others() {
    // The control: the same child succeeds where the mode lets it in, so the test above
    // fails if ipcx's default were not private.
    if !is_root() {
        eprintln!("skipped: switching a child to another uid needs root");
        return;
    }
    let dir = open_dir("perm-open");
    let addr = format!("fifo:{}?mode=0666", dir.join("open.fifo").display());
    let _rx = ipcx::open_receiver_with(&addr, &OpenOptions::new().create(true)).unwrap();
    let seen = try_open_as_nobody(&addr);
    assert!(seen.starts_with("rx=ok"), "{seen}");
}

#[test]
fn a_default_fifo_is_mode_0600() {
    let dir = TestDir::new("perm-mode");
    let p = dir.join("f");
    let _rx = ipcx::open_receiver_with(
        &format!("fifo:{}", p.display()),
        &OpenOptions::new().create(true),
    )
    .unwrap();
    let md = std::fs::symlink_metadata(&p).unwrap();
    assert!(md.file_type().is_fifo());
    assert_eq!(md.permissions().mode() & 0o7777, 0o600);
}

#[test]
fn a_symlink_planted_at_a_fifo_path_is_refused() {
    let dir = TestDir::new("perm-link");
    let p = dir.join("jobs");
    let addr = format!("fifo:{}", p.display());

    // A dangling link: creating must not make a FIFO where it points.
    let target = dir.join("victim");
    std::os::unix::fs::symlink(&target, &p).unwrap();
    let e = Fifo::create(&p, 0o600).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    assert!(e.to_string().contains("symbolic link"), "{e}");
    let e =
        ipcx::open_receiver_with(&addr, &OpenOptions::new().create(true)).err().expect("refused");
    assert!(e.to_string().contains("symbolic link"), "{e}");
    assert!(target.symlink_metadata().is_err(), "nothing created through the link");

    // A link to a real FIFO elsewhere: neither end opens through it.
    std::fs::remove_file(&p).unwrap();
    let real = Fifo::create(&target, 0o600).unwrap();
    std::os::unix::fs::symlink(&target, &p).unwrap();
    let opts = OpenOptions::new().open_timeout(Some(Duration::from_millis(100)));
    let e = ipcx::open_receiver_with(&addr, &opts).err().expect("refused");
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    let e = ipcx::open_sender_with(&addr, &opts).err().expect("refused");
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    drop(real);
}

#[test]
fn a_name_created_in_between_is_not_used() {
    let dir = TestDir::new("perm-race");
    let p = dir.join("jobs");
    let addr = format!("fifo:{}", p.display());
    let opts = OpenOptions::new().open_timeout(Some(Duration::from_millis(100)));

    // Something already at the name: creating refuses it and leaves it as it was.
    std::fs::write(&p, b"precious").unwrap();
    let e = Fifo::create(&p, 0o600).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::AlreadyExists, "{e}");
    let e =
        ipcx::open_receiver_with(&addr, &OpenOptions::new().create(true)).err().expect("refused");
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    assert_eq!(std::fs::read(&p).unwrap(), b"precious");
    std::fs::remove_file(&p).unwrap();

    // The FIFO is swapped for a regular file between creation and opening: the open
    // checks what it opened (fstat) and refuses it.
    let f = Fifo::create(&p, 0o600).unwrap();
    std::fs::remove_file(&p).unwrap();
    std::fs::write(&p, b"swapped").unwrap();
    let e = ipcx::open_receiver_with(&addr, &opts).err().expect("refused");
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    let e = ipcx::open_sender_with(&addr, &opts).err().expect("refused");
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    assert_eq!(std::fs::read(&p).unwrap(), b"swapped", "nothing written to the impostor");
    drop(f);
    assert_eq!(std::fs::read(&p).unwrap(), b"swapped", "the owner removes only its FIFO");
}

/// Named objects a mode test may make, removed on drop even if the test fails midway (a
/// regression that lets a bad mode through must not leave a setuid object behind).
struct ModeObjects {
    dir: TestDir,
    posix_mq: String,
    shm: String,
    mq_key: i32,
    shm_key: i32,
}

impl ModeObjects {
    fn new(tag: &str) -> ModeObjects {
        ModeObjects {
            dir: TestDir::new(tag),
            posix_mq: format!("/{}", unique("ipcx-test-mode-mq")),
            shm: format!("/{}", unique("ipcx-test-mode-shm")),
            mq_key: unique_key(),
            shm_key: unique_key(),
        }
    }

    /// Every scheme that creates an object, each with a fresh name; `?mode=` is added.
    fn addresses(&self) -> Vec<(&'static str, String)> {
        let d = |n: &str| self.dir.join(n).display().to_string();
        vec![
            ("fifo", format!("fifo:{}", d("f"))),
            ("unix", format!("unix:{}", d("s.sock"))),
            ("unix-seqpacket", format!("unix-seqpacket:{}", d("p.sock"))),
            ("unix-dgram", format!("unix-dgram:{}", d("d.sock"))),
            ("mmap", format!("mmap:{}", d("log"))),
            ("posix-mq", format!("posix-mq:{}", self.posix_mq)),
            ("shm", format!("shm:{}", self.shm)),
            ("sysv-mq", format!("sysv-mq:{}", self.mq_key)),
            ("sysv-shm", format!("sysv-shm:{}", self.shm_key)),
        ]
    }

    /// What exists of the objects the addresses name.
    fn present(&self) -> Vec<String> {
        use ipcx::sys::ops;
        let mut found: Vec<String> = ipcx_tests::dir_names(self.dir.path());
        if ipcx::posix_mq::Queue::exists(&self.posix_mq).unwrap_or(true) {
            found.push(format!("posix-mq:{}", self.posix_mq));
        }
        if std::path::Path::new("/dev/shm").join(&self.shm[1..]).symlink_metadata().is_ok() {
            found.push(format!("shm:{}", self.shm));
        }
        if ops::msg_id(self.mq_key).is_ok() {
            found.push(format!("sysv-mq:{}", self.mq_key));
        }
        if ops::shm_id(self.shm_key).is_ok() {
            found.push(format!("sysv-shm:{}", self.shm_key));
        }
        found
    }
}

impl Drop for ModeObjects {
    fn drop(&mut self) {
        // Best effort: each is normally gone already (or never made). The directory goes
        // with `self.dir`.
        use ipcx::sys::ops;
        let _ = ops::mq_unlink(&self.posix_mq);
        let _ = ops::shm_unlink(&self.shm);
        if let Ok(id) = ops::msg_id(self.mq_key) {
            let _ = ops::msg_remove(id);
        }
        if let Ok(id) = ops::shm_id(self.shm_key) {
            let _ = ops::shm_remove(id);
        }
    }
}

#[test]
fn a_mode_above_0777_is_refused_before_any_object_is_made() {
    let objs = ModeObjects::new("perm-badmode");
    // Never wait: were the address let through, a sender must not block the test.
    let opts = OpenOptions::new().create(true).open_timeout(Some(Duration::from_millis(100)));
    for bad in ["4777", "1777", "2770", "10000", "04600", "0o4777"] {
        for (scheme, base) in objs.addresses() {
            let addr = format!("{base}?mode={bad}");
            let check = |what: &str, e: ipcx::Error| {
                assert_eq!(e.kind(), ErrorKind::InvalidAddress, "{what} {addr}: {e}");
                let s = e.to_string();
                // System V keys print in hex, as ipcs shows them.
                let shown = match base.split_once(':') {
                    Some((sch, key)) if sch.starts_with("sysv") && key.parse::<i32>().is_ok() => {
                        format!("{sch}:{:#x}?mode={bad}", key.parse::<i32>().unwrap() as u32)
                    }
                    _ => addr.clone(),
                };
                assert!(s.contains(&shown), "{what}: the error names the address: {s}");
                assert!(s.contains(&format!("mode={bad}")), "{what}: names the value: {s}");
                assert!(s.contains("0 to 0777") && s.contains("mode=600"), "{what}: {s}");
            };
            check("parse", ipcx::Address::parse(&addr).expect_err(&addr));
            check("receiver", ipcx::open_receiver_with(&addr, &opts).err().expect(&addr));
            check("sender", ipcx::open_sender_with(&addr, &opts).err().expect(&addr));
            let left = objs.present();
            assert!(left.is_empty(), "{scheme}: mode={bad} was refused but made {left:?}");
        }
    }
}

#[test]
fn a_mode_of_0640_is_made_exactly_by_every_mechanism() {
    use ipcx::sys::ops;
    let objs = ModeObjects::new("perm-mode0640");
    let opts = OpenOptions::new().create(true);
    for (scheme, base) in objs.addresses() {
        let addr = format!("{base}?mode=0640");
        let rx = ipcx::open_receiver_with(&addr, &opts).unwrap_or_else(|e| panic!("{addr}: {e}"));
        let file_mode =
            |p: PathBuf| std::fs::symlink_metadata(&p).map(|m| m.permissions().mode() & 0o7777);
        let mode = match scheme {
            "fifo" => file_mode(objs.dir.join("f")).unwrap(),
            "unix" => file_mode(objs.dir.join("s.sock")).unwrap(),
            "unix-seqpacket" => file_mode(objs.dir.join("p.sock")).unwrap(),
            "unix-dgram" => file_mode(objs.dir.join("d.sock")).unwrap(),
            "mmap" => {
                // The log's files take the mode; its directory adds search bits (0750).
                let dir = objs.dir.join("log");
                assert_eq!(file_mode(dir.clone()).unwrap(), 0o750, "{addr}");
                let files: Vec<u32> = std::fs::read_dir(&dir)
                    .unwrap()
                    .map(|e| e.unwrap().path())
                    .filter(|p| p.is_file())
                    .map(|p| file_mode(p).unwrap())
                    .collect();
                assert!(!files.is_empty(), "{addr}: no file in the log");
                assert!(files.iter().all(|&m| m == 0o640), "{addr}: {files:?} (decimal)");
                0o640
            }
            "posix-mq" => ops::mq_stat(&objs.posix_mq).unwrap().mode & 0o7777,
            "shm" => file_mode(PathBuf::from("/dev/shm").join(&objs.shm[1..])).unwrap(),
            "sysv-mq" => {
                let q = ipcx::sysv_mq::Queue::open(ipcx::address::SysvKey::Key(objs.mq_key));
                q.unwrap().status().unwrap().mode
            }
            "sysv-shm" => {
                let id = ops::shm_id(objs.shm_key).unwrap();
                ipcx::sys::shm::shm_stat(id).unwrap().mode
            }
            other => panic!("no mode check for {other}"),
        };
        assert_eq!(mode, 0o640, "{addr}: mode {mode:o}");
        drop(rx);
    }
    // Each receiver removed the kernel object it created on drop (the files go with the
    // directory; a log stays until then, as logs do).
    let left: Vec<String> = objs.present().into_iter().filter(|n| n.contains(':')).collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[test]
fn the_library_refuses_a_mode_above_0777_whichever_call_creates() {
    let dir = TestDir::new("perm-apimode");
    let (mq_key, shm_key) = (unique_key(), unique_key());
    let pmq = format!("/{}", unique("perm-apimode"));
    let shm = format!("/{}", unique("perm-apimode-shm"));
    let bad = 0o4600;
    let refused = |what: &str, e: ipcx::Error| {
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{what}: {e}");
        assert!(e.to_string().contains("above 0777"), "{what}: {e}");
    };
    refused("fifo", Fifo::create(dir.join("f"), bad).unwrap_err());
    let q = ipcx::posix_mq::Queue::builder(&pmq).mode(bad).create();
    refused("posix-mq", q.err().unwrap());
    let q = ipcx::sysv_mq::Queue::builder(ipcx::address::SysvKey::Key(mq_key)).mode(bad).create();
    refused("sysv-mq", q.err().unwrap());
    refused("sysv-mq private", ipcx::sysv_mq::Queue::private(bad).err().unwrap());
    refused("shm", ipcx::shm::Segment::create(&shm, 4096, bad).err().unwrap());
    refused("sysv-shm", ipcx::shm::Segment::create_sysv(shm_key, 4096, bad).err().unwrap());
    let m = ipcx::mmap::MapOptions::new().create(true).mode(bad).len(4096).open(dir.join("m"));
    refused("mapped file", m.err().unwrap());
    let cfg = ipcx::mmap::log::LogConfig { mode: bad, ..Default::default() };
    refused("log", ipcx::mmap::log::create(&dir.join("log"), &cfg).unwrap_err());
    // Nothing was made.
    assert_eq!(ipcx_tests::dir_names(dir.path()), Vec::<String>::new());
    assert!(!ipcx::posix_mq::Queue::exists(&pmq).unwrap());
    assert!(ipcx::sysv_mq::Queue::open(ipcx::address::SysvKey::Key(mq_key)).is_err());
    assert!(!PathBuf::from(format!("/dev/shm{shm}")).exists());
}
