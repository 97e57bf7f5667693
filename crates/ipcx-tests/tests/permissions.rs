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
use ipcx_tests::{mechs, spawn, TestDir};

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
