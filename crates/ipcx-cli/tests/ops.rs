//! `ipcx ls` and `ipcx rm` on real objects: FIFOs made by `ipcx recv --create` in child
//! processes (recorded in a private registry, `IPCX_REGISTRY`), and System V and POSIX
//! objects made here with libc, as any other program would.
// The test makes kernel objects with raw libc calls, as a foreign program would.
#![allow(unsafe_code)]

use std::ffi::CString;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use ipcx_tests::{spawn, unique, unique_key, ChildGuard, TestDir};
use serde_json::Value;

fn ipcx(reg: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ipcx"));
    c.env("IPCX_REGISTRY", reg).stdin(Stdio::null());
    c
}

fn run(cmd: &mut Command) -> Output {
    spawn(cmd).wait_within(Duration::from_secs(30))
}

fn ls_json(reg: &Path, extra: &[&str]) -> Vec<Value> {
    let o = run(ipcx(reg).arg("ls").arg("--json").args(extra));
    assert!(o.status.success(), "ls failed: {}", String::from_utf8_lossy(&o.stderr));
    match serde_json::from_slice(&o.stdout).expect("ls --json prints JSON") {
        Value::Array(v) => v,
        other => panic!("expected an array, got {other}"),
    }
}

fn find<'a>(objs: &'a [Value], address: &str) -> Option<&'a Value> {
    objs.iter().find(|o| o["address"] == address)
}

fn wait_for(p: &Path) {
    let t = Instant::now();
    while p.symlink_metadata().is_err() {
        assert!(t.elapsed() < Duration::from_secs(10), "{} never appeared", p.display());
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn euid() -> u32 {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() }
}

fn recv_creating(reg: &Path, fifo: &Path) -> ChildGuard {
    let addr = format!("fifo:{}", fifo.display());
    let g = spawn(ipcx(reg).args(["recv", &addr, "--create", "--count", "1"]));
    wait_for(fifo);
    // The FIFO exists a moment before its creator records it: wait for the entry too.
    ls_until(reg, &addr, "recorded", |o| o.is_some());
    g
}

#[test]
fn ls_shows_creator_and_liveness_and_rm_stale_removes_only_the_dead() {
    let dir = TestDir::new("ops-ls");
    let reg = dir.join("registry");
    let dead = dir.join("dead.fifo");
    let live = dir.join("live.fifo");
    let (dead_a, live_a) = (format!("fifo:{}", dead.display()), format!("fifo:{}", live.display()));
    let mut a = recv_creating(&reg, &dead);
    let mut b = recv_creating(&reg, &live);

    let objs = ls_json(&reg, &["--kind", "fifo"]);
    let o = find(&objs, &dead_a).unwrap_or_else(|| panic!("{dead_a} not listed: {objs:?}"));
    assert_eq!(o["pid"], a.id());
    assert_eq!(o["alive"], true);
    assert_eq!(o["ipcx"], true);
    assert_eq!(o["kind"], "fifo");
    assert_eq!(o["mode"], "0600");
    assert_eq!(o["uid"], euid());
    assert!(o["age_secs"].as_u64().unwrap() < 60);
    assert_eq!(find(&objs, &live_a).unwrap()["pid"], b.id());

    // The creator dies as in a crash: the FIFO stays behind, its creator is not alive.
    a.kill9();
    assert!(dead.exists(), "a killed creator leaves its FIFO");
    let objs = ls_json(&reg, &[]);
    assert_eq!(find(&objs, &dead_a).unwrap()["alive"], false);
    assert_eq!(find(&objs, &live_a).unwrap()["alive"], true);
    let table = run(ipcx(&reg).arg("ls"));
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(text.lines().any(|l| l.starts_with(&dead_a) && l.contains(" no ")), "{text}");

    // A named object whose creator lives is left alone unless forced.
    let o = run(ipcx(&reg).args(["rm", &live_a]));
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("still running"));
    assert!(live.exists());

    // --dry-run says, and removes nothing.
    let o = run(ipcx(&reg).args(["rm", "--stale", "--dry-run"]));
    assert!(o.status.success());
    assert!(String::from_utf8_lossy(&o.stdout).contains(&format!("would remove {dead_a}")));
    assert!(dead.exists());

    let o = run(ipcx(&reg).args(["rm", "--stale"]));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(out.contains(&format!("removed {dead_a}")), "{out}");
    assert!(out.contains("1 with a live creator left alone"), "{out}");
    assert!(!dead.exists(), "the dead creator's FIFO is removed");
    assert!(live.exists(), "the live creator's FIFO stays");
    let objs = ls_json(&reg, &[]);
    assert!(find(&objs, &dead_a).is_none());

    // The live receiver finishes normally and takes its FIFO and its entry with it.
    let o = run(ipcx(&reg).args(["send", &live_a, "bye"]));
    assert!(o.status.success());
    let out = b.wait_within(Duration::from_secs(10));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "bye");
    assert!(!live.exists());
    assert!(!reg.exists(), "the registry directory goes with its last entry");
}

#[test]
fn a_kept_object_outlives_its_creator_and_is_not_stale() {
    let dir = TestDir::new("ops-keep");
    let reg = dir.join("registry");
    let f = dir.join("kept.fifo");
    let addr = format!("fifo:{}", f.display());
    let mut c = spawn(ipcx(&reg).args(["recv", &addr, "--create", "--keep", "--count", "1"]));
    wait_for(&f);
    assert!(run(ipcx(&reg).args(["send", &addr, "x"])).status.success());
    assert!(c.wait_within(Duration::from_secs(10)).status.success());
    let o = run(ipcx(&reg).args(["rm", "--stale"]));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("kept on purpose"), "{out}");
    assert!(out.contains(&format!("remove it with `ipcx rm --force {addr}`")), "{out}");
    assert!(f.exists());
    let objs = ls_json(&reg, &[]);
    assert_eq!(find(&objs, &addr).unwrap()["kept"], true);

    // Named, it is still refused without --force (README, RELIABILITY, `rm --help`), under
    // any name of the same file: an absolute or a relative path, another socket scheme.
    let o = run(ipcx(&reg).args(["rm", &addr]));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "a kept object was removed without --force");
    assert!(err.contains(&format!("{addr}: kept on purpose by its creator (pid ")), "{err}");
    assert!(err.contains("); not removed (add --force to remove it anyway)"), "{err}");
    assert!(f.exists());
    let o = run(ipcx(&reg).args(["rm", "fifo:kept.fifo"]).current_dir(dir.path()));
    assert!(!o.status.success(), "a relative name bypassed the check");
    assert!(String::from_utf8_lossy(&o.stderr).contains("kept on purpose"));
    let o = run(ipcx(&reg).args(["rm", "--dry-run", &addr]));
    assert!(!o.status.success(), "--dry-run says what would happen: a refusal");
    assert!(f.exists());

    let o = run(ipcx(&reg).args(["rm", "--force", &addr]));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(String::from_utf8_lossy(&o.stdout), format!("removed {addr}\n"));
    assert!(!f.exists());
    assert!(!reg.exists());
}

/// A System V queue made with libc, removed on drop.
struct Msq(i32);
impl Drop for Msq {
    fn drop(&mut self) {
        // SAFETY: IPC_RMID ignores the buffer; an id already removed gives EINVAL.
        unsafe { libc::msgctl(self.0, libc::IPC_RMID, std::ptr::null_mut()) };
    }
}
struct Shm(i32);
impl Drop for Shm {
    fn drop(&mut self) {
        // SAFETY: as above.
        unsafe { libc::shmctl(self.0, libc::IPC_RMID, std::ptr::null_mut()) };
    }
}
struct PosixShm(CString);
impl Drop for PosixShm {
    fn drop(&mut self) {
        // SAFETY: a NUL-terminated name.
        unsafe { libc::shm_unlink(self.0.as_ptr()) };
    }
}

#[test]
fn ls_lists_system_v_and_posix_objects_and_rm_removes_them() {
    let dir = TestDir::new("ops-sysv");
    let reg = dir.join("registry");
    let (mkey, skey) = (unique_key(), unique_key());
    // SAFETY: plain integer arguments.
    let q = Msq(unsafe { libc::msgget(mkey, libc::IPC_CREAT | libc::IPC_EXCL | 0o600) });
    assert!(q.0 >= 0, "msgget: {}", std::io::Error::last_os_error());
    #[repr(C)]
    struct Msg {
        mtype: libc::c_long,
        text: [u8; 5],
    }
    let m = Msg { mtype: 1, text: *b"hello" };
    // SAFETY: `m` is a message buffer of mtype followed by 5 bytes.
    let r = unsafe { libc::msgsnd(q.0, (&m as *const Msg).cast(), 5, libc::IPC_NOWAIT) };
    assert_eq!(r, 0);
    // SAFETY: plain integer arguments.
    let s = Shm(unsafe { libc::shmget(skey, 8192, libc::IPC_CREAT | libc::IPC_EXCL | 0o640) });
    assert!(s.0 >= 0, "shmget: {}", std::io::Error::last_os_error());
    let pname = format!("/{}", unique("ipcx-ops-shm"));
    let p = PosixShm(CString::new(pname.clone()).unwrap());
    // SAFETY: a NUL-terminated name; the descriptor is closed right after.
    unsafe {
        let fd = libc::shm_open(p.0.as_ptr(), libc::O_CREAT | libc::O_EXCL | libc::O_RDWR, 0o600);
        assert!(fd >= 0);
        assert_eq!(libc::ftruncate(fd, 4096), 0);
        libc::close(fd);
    }

    let objs = ls_json(&reg, &[]);
    let mq =
        find(&objs, &format!("sysv-mq:{:#x}", mkey as u32)).unwrap_or_else(|| panic!("{objs:?}"));
    assert_eq!(mq["kind"], "sysv-mq");
    assert_eq!(mq["id"], q.0);
    assert_eq!(mq["messages"], 1);
    assert_eq!(mq["size"], 5);
    assert_eq!(mq["mode"], "0600");
    assert_eq!(mq["uid"], euid());
    assert_eq!(mq["ipcx"], false);
    assert!(mq["last_use"][0].as_u64().unwrap() > 0, "msgsnd set the last send time");
    assert_eq!(mq["lspid"], std::process::id());
    let sh = find(&objs, &format!("sysv-shm:{:#x}", skey as u32)).unwrap();
    assert_eq!(sh["size"], 8192);
    assert_eq!(sh["mode"], "0640");
    assert_eq!(sh["pid"], std::process::id());
    assert_eq!(sh["alive"], true, "the creator (this test) runs");
    let ps = find(&objs, &format!("shm:{pname}")).unwrap();
    assert_eq!(ps["size"], 4096);
    assert_eq!(ps["kind"], "shm");

    // Filters.
    let only = ls_json(&reg, &["--kind", "sysv-shm"]);
    assert!(only.iter().all(|o| o["kind"] == "sysv-shm"));
    assert!(find(&only, &format!("sysv-shm:{:#x}", skey as u32)).is_some());
    let nobody = ls_json(&reg, &["--owner", "65534"]);
    assert!(find(&nobody, &format!("sysv-mq:{:#x}", mkey as u32)).is_none());
    let mine = ls_json(&reg, &["--owner", &euid().to_string()]);
    assert!(find(&mine, &format!("sysv-mq:{:#x}", mkey as u32)).is_some());
    let bad = run(ipcx(&reg).args(["ls", "--kind", "nonsense"]));
    assert!(!bad.status.success());

    let o = run(ipcx(&reg).args([
        "rm",
        &format!("sysv-mq:{mkey}"),
        &format!("sysv-shm:{skey}"),
        &format!("shm:{pname}"),
    ]));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains(&format!("removed sysv-mq:{mkey}")), "{out}");
    // SAFETY: plain integer arguments; only a lookup.
    assert_eq!(unsafe { libc::msgget(mkey, 0) }, -1, "the queue is gone");
    // SAFETY: as above.
    assert_eq!(unsafe { libc::shmget(skey, 0, 0) }, -1, "the segment is gone");
    assert!(!Path::new("/dev/shm").join(&pname[1..]).exists());
    let o = run(ipcx(&reg).args(["rm", &format!("sysv-mq:{mkey}")]));
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("no such object"));
}

#[test]
fn rm_refuses_another_users_object_unless_forced() {
    if euid() != 0 {
        eprintln!("skipped: giving a queue to another user needs root");
        return;
    }
    let dir = TestDir::new("ops-other");
    let reg = dir.join("registry");
    let key = unique_key();
    // SAFETY: plain integer arguments.
    let q = Msq(unsafe { libc::msgget(key, libc::IPC_CREAT | libc::IPC_EXCL | 0o600) });
    assert!(q.0 >= 0);
    // SAFETY: `ds` is filled by IPC_STAT, then written back with another owner.
    unsafe {
        let mut ds: libc::msqid_ds = std::mem::zeroed();
        assert_eq!(libc::msgctl(q.0, libc::IPC_STAT, &mut ds), 0);
        ds.msg_perm.uid = 65534;
        assert_eq!(libc::msgctl(q.0, libc::IPC_SET, &mut ds), 0);
    }
    let addr = format!("sysv-mq:{key}");
    let o = run(ipcx(&reg).args(["rm", &addr]));
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("not to you"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    // SAFETY: lookup only.
    assert_eq!(unsafe { libc::msgget(key, 0) }, q.0, "still there");
    let o = run(ipcx(&reg).args(["rm", "--force", &addr]));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // SAFETY: lookup only.
    assert_eq!(unsafe { libc::msgget(key, 0) }, -1);
}

#[test]
fn rm_removes_a_posix_queue_by_name() {
    let dir = TestDir::new("ops-pmq");
    let reg = dir.join("registry");
    let name = format!("/{}", unique("ipcx-ops-mq"));
    let c = CString::new(name.clone()).unwrap();
    // SAFETY: a NUL-terminated name; with O_CREAT mq_open reads a mode and a null attr.
    let mqd = unsafe {
        libc::mq_open(
            c.as_ptr(),
            libc::O_CREAT | libc::O_EXCL | libc::O_RDWR,
            0o600 as libc::mode_t,
            std::ptr::null_mut::<libc::mq_attr>(),
        )
    };
    assert!(mqd >= 0, "mq_open: {}", std::io::Error::last_os_error());
    // SAFETY: closes the descriptor just opened; the queue stays until unlinked.
    unsafe { libc::mq_close(mqd) };
    struct Unlink(CString);
    impl Drop for Unlink {
        fn drop(&mut self) {
            // SAFETY: a NUL-terminated name; ENOENT once removed.
            unsafe { libc::mq_unlink(self.0.as_ptr()) };
        }
    }
    let _g = Unlink(c.clone());
    let addr = format!("posix-mq:{name}");
    let o = run(ipcx(&reg).args(["rm", "--dry-run", &addr]));
    assert!(String::from_utf8_lossy(&o.stdout).contains(&format!("would remove {addr}")));
    let o = run(ipcx(&reg).args(["rm", &addr]));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // SAFETY: as above; only an open attempt.
    let again = unsafe { libc::mq_open(c.as_ptr(), libc::O_RDONLY) };
    assert_eq!(again, -1, "the queue is gone");
}

#[test]
fn rm_checks_the_type_of_what_is_at_a_path() {
    let dir = TestDir::new("ops-type");
    let reg = dir.join("registry");
    let f = dir.join("plain");
    std::fs::write(&f, "data").unwrap();
    let o = run(ipcx(&reg).args(["rm", &format!("fifo:{}", f.display())]));
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("is not a FIFO"));
    assert!(f.exists(), "a regular file is not removed as a FIFO");
    let o = run(ipcx(&reg).args(["rm"]));
    assert!(!o.status.success());
}

/// Poll `ipcx ls --json` until `pred` holds for the object at `addr` (or it is absent, when
/// `pred` is given `None`).
fn ls_until(
    reg: &Path,
    addr: &str,
    what: &str,
    pred: impl Fn(Option<&Value>) -> bool,
) -> Vec<Value> {
    let t = Instant::now();
    loop {
        let objs = ls_json(reg, &[]);
        if pred(find(&objs, addr)) {
            return objs;
        }
        assert!(t.elapsed() < Duration::from_secs(10), "{addr}: never {what}: {objs:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs `ipcx rm --force` on its addresses when dropped (errors ignored: most are gone).
struct RemoveOnDrop(PathBuf, Vec<String>);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        for a in &self.1 {
            let _ = ipcx(&self.0).args(["rm", "--force", a]).output();
        }
    }
}

#[test]
fn ls_and_rm_stale_cover_an_object_of_every_kind() {
    for m in ipcx_tests::mechs::all() {
        let dir = TestDir::new(&format!("ops-{}", m.name()));
        let dir2 = TestDir::new(&format!("ops-{}-live", m.name()));
        let reg = dir.join("registry");
        let (Some(addr), Some(live_addr)) = (m.fresh_address(&dir), m.fresh_address(&dir2)) else {
            eprintln!("{}: skipped: no named object", m.name());
            continue;
        };
        // Declared before the children, so dropped after them: if an assertion fails, the
        // objects they made are still removed (kernel objects outlive a test process).
        let _cleanup = RemoveOnDrop(reg.clone(), vec![addr.clone(), live_addr.clone()]);
        let parsed = ipcx::Address::parse(&addr).unwrap();
        let shown = ipcx::registry::object_address(&parsed);
        let live_shown = ipcx::registry::object_address(&ipcx::Address::parse(&live_addr).unwrap());
        // `recv` stops at the end of a log unless told to wait for more.
        let wait: &[&str] = if parsed.scheme() == "mmap" { &["--follow"] } else { &[] };
        let recv =
            |a: &str| spawn(ipcx(&reg).args(["recv", a, "--create", "--count", "1"]).args(wait));
        let (mut creator, mut live) = (recv(&addr), recv(&live_addr));
        // The object exists a moment before its creator records it (System V objects
        // are listed from the kernel's table even unrecorded): wait for the entry.
        let objs = ls_until(&reg, &shown, "listed", |o| o.is_some_and(|o| o["ipcx"] == true));
        let o = find(&objs, &shown).unwrap();
        assert_eq!(o["pid"], creator.id(), "{}: {o}", m.name());
        assert_eq!(o["alive"], true, "{}: {o}", m.name());
        assert_eq!(o["uid"], euid(), "{}: {o}", m.name());
        assert_eq!(o["kind"], parsed.scheme(), "{}: {o}", m.name());
        assert_eq!(o["ipcx"], true, "{}: {o}", m.name());

        // Killed as in a crash: the object stays, its creator is dead.
        creator.kill9();
        ls_until(&reg, &shown, "shown dead", |o| o.is_some_and(|o| o["alive"] == false));
        ls_until(&reg, &live_shown, "listed alive", |o| {
            o.is_some_and(|o| o["alive"] == true && o["ipcx"] == true)
        });
        let out = run(ipcx(&reg).args(["rm", "--stale"]));
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{}: {}", m.name(), String::from_utf8_lossy(&out.stderr));
        assert!(text.contains(&format!("removed {shown}")), "{}: {text}", m.name());
        let objs = ls_json(&reg, &[]);
        assert!(find(&objs, &shown).is_none(), "{}: still listed after rm --stale", m.name());
        assert!(find(&objs, &live_shown).is_some(), "{}: the live one was removed", m.name());
        live.kill9();
        let out = run(ipcx(&reg).args(["rm", "--stale"]));
        assert!(out.status.success(), "{}", m.name());
        assert!(find(&ls_json(&reg, &[]), &live_shown).is_none(), "{}", m.name());
    }
}

#[test]
fn a_registry_that_cannot_be_used_never_breaks_ipc() {
    let dir = TestDir::new("ops-noreg");
    // The registry path is a regular file: nothing can be recorded there.
    let reg = dir.join("not-a-dir");
    std::fs::write(&reg, b"x").unwrap();
    let f = dir.join("f");
    let addr = format!("fifo:{}", f.display());
    let mut c = spawn(ipcx(&reg).args(["recv", &addr, "--create", "--count", "1"]));
    wait_for(&f);
    assert!(run(ipcx(&reg).args(["send", &addr, "still works"])).status.success());
    let out = c.wait_within(Duration::from_secs(10));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "still works");
    assert_eq!(std::fs::read(&reg).unwrap(), b"x", "the file is left as it was");
    assert!(!f.exists());
}

#[test]
fn rm_stale_leaves_a_file_made_later_at_a_dead_creators_name() {
    let dir = TestDir::new("ops-reuse");
    let reg = dir.join("registry");
    let f = dir.join("f");
    let addr = format!("fifo:{}", f.display());
    let mut a = recv_creating(&reg, &f);
    a.kill9();
    // Someone else makes a new FIFO at the same name after the crash.
    std::fs::remove_file(&f).unwrap();
    let c = CString::new(f.to_str().unwrap()).unwrap();
    // SAFETY: a NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    assert!(find(&ls_json(&reg, &[]), &addr).is_none(), "the new FIFO is not ipcx's");
    let o = run(ipcx(&reg).args(["rm", "--stale"]));
    assert!(o.status.success());
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("now holds another file"), "{out}");
    assert!(f.exists(), "the newcomer's FIFO is left alone");
    assert!(!reg.exists(), "the stale entry is forgotten");
}

#[test]
fn rm_removes_a_log_only_while_it_holds_only_log_files_and_no_writer() {
    let dir = TestDir::new("ops-log");
    let reg = dir.join("registry");
    let log = dir.join("a.log");
    let addr = format!("mmap:{}", log.display());
    // The sender creates the log and exits cleanly: a log outlives its creator by design,
    // so the entry is kept, and --stale leaves it.
    assert!(run(ipcx(&reg).args(["send", &addr, "hello"])).status.success());
    let objs = ls_json(&reg, &["--kind", "mmap"]);
    let o = find(&objs, &addr).unwrap_or_else(|| panic!("{addr} not listed: {objs:?}"));
    assert_eq!(o["ipcx"], true);
    assert_eq!(o["kept"], true);
    assert_eq!(o["alive"], false);
    assert!(o["size"].as_u64().unwrap() > 0);
    let o = run(ipcx(&reg).args(["rm", "--stale"]));
    assert!(String::from_utf8_lossy(&o.stdout).contains("kept on purpose"));
    assert!(log.exists());
    // Named, a kept log is refused too unless forced.
    let o = run(ipcx(&reg).args(["rm", &addr]));
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("kept on purpose: a log outlives its writers by design"), "{err}");
    assert!(log.exists());

    // A file that is not the log's own: refused even with --force, and nothing removed.
    let note = log.join("notes.txt");
    std::fs::write(&note, "mine").unwrap();
    let o = run(ipcx(&reg).args(["rm", "--force", &addr]));
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("notes.txt, which is not a file of an ipcx log"), "{err}");
    assert!(note.exists() && log.join("00000000000000000001.seg").exists());
    std::fs::remove_file(&note).unwrap();

    // A writer has it open: refused, even with --force.
    let w = ipcx::open_sender(&addr).unwrap();
    let o = run(ipcx(&reg).args(["rm", "--force", &addr]));
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("a writer has the log open"), "{err}");
    assert!(log.exists());
    drop(w);

    let o = run(ipcx(&reg).args(["rm", "--force", &addr]));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(!log.exists(), "the log's files and directory are removed");
    assert!(!reg.exists(), "and its entry forgotten");

    // A creator that dies leaves its entry unkept; --stale still leaves a log that holds
    // records (durable data) unless forced.
    let mut c = spawn(ipcx(&reg).args(["recv", &addr, "--create", "--follow", "--count", "2"]));
    ls_until(&reg, &addr, "recorded", |o| o.is_some_and(|o| o["alive"] == true));
    assert!(run(ipcx(&reg).args(["send", &addr, "data"])).status.success());
    c.kill9();
    let o = run(ipcx(&reg).args(["rm", "--stale"]));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success());
    assert!(out.contains(&format!("left {addr}: it holds records")), "{out}");
    assert!(log.exists());
    let o = run(ipcx(&reg).args(["rm", "--stale", "--force"]));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains(&format!("removed {addr}")), "{out}");
    assert!(!log.exists());
    assert!(!reg.exists());
}

#[test]
fn a_kept_object_of_every_kind_is_marked_kept_and_left_by_rm_stale() {
    for m in ipcx_tests::mechs::all() {
        let dir = TestDir::new(&format!("ops-keep-{}", m.name()));
        let reg = dir.join("registry");
        let Some(addr) = m.fresh_address(&dir) else {
            eprintln!("{}: skipped: no named object", m.name());
            continue;
        };
        // Declared before the children, so dropped after them: if an assertion fails, the
        // objects they made are still removed (kernel objects outlive a test process).
        let _cleanup = RemoveOnDrop(reg.clone(), vec![addr.clone()]);
        let parsed = ipcx::Address::parse(&addr).unwrap();
        let shown = ipcx::registry::object_address(&parsed);
        let wait: &[&str] = if parsed.scheme() == "mmap" { &["--follow"] } else { &[] };
        let mut c = spawn(
            ipcx(&reg).args(["recv", &addr, "--create", "--keep", "--count", "1"]).args(wait),
        );
        ls_until(&reg, &shown, "recorded", |o| o.is_some_and(|o| o["ipcx"] == true));
        let o = run(ipcx(&reg).args(["send", &addr, "x"]));
        assert!(o.status.success(), "{}: {}", m.name(), String::from_utf8_lossy(&o.stderr));
        let out = c.wait_within(Duration::from_secs(10));
        assert!(out.status.success(), "{}: {}", m.name(), String::from_utf8_lossy(&out.stderr));
        let objs = ls_until(&reg, &shown, "shown dead", |o| o.is_some_and(|o| o["alive"] == false));
        assert_eq!(find(&objs, &shown).unwrap()["kept"], true, "{}", m.name());
        let o = run(ipcx(&reg).args(["rm", "--stale"]));
        let text = String::from_utf8_lossy(&o.stdout);
        assert!(text.contains(&format!("left {shown}")), "{}: {text}", m.name());
        assert!(find(&ls_json(&reg, &[]), &shown).is_some(), "{}: removed", m.name());
        let o = run(ipcx(&reg).args(["rm", &addr]));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "{}: removed without --force", m.name());
        assert!(
            err.contains("kept on purpose") && err.contains("add --force"),
            "{}: {err}",
            m.name()
        );
        assert!(find(&ls_json(&reg, &[]), &shown).is_some(), "{}: removed", m.name());
        let o = run(ipcx(&reg).args(["rm", "--force", &addr]));
        assert!(o.status.success(), "{}: {}", m.name(), String::from_utf8_lossy(&o.stderr));
        assert!(find(&ls_json(&reg, &[]), &shown).is_none(), "{}: still listed", m.name());
        assert!(!reg.exists(), "{}: the entry is forgotten", m.name());
    }
}

#[test]
fn rm_stale_dry_run_says_what_it_would_remove_in_plain_words() {
    let dir = TestDir::new("ops-words");
    let reg = dir.join("registry");
    let (f1, f2) = (dir.join("one.fifo"), dir.join("two.fifo"));
    let mut a = recv_creating(&reg, &f1);
    a.kill9();
    let o = run(ipcx(&reg).args(["rm", "--stale", "--dry-run"]));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        out.lines().any(|l| l == "would remove 1 stale object; 0 with a live creator left alone"),
        "{out}"
    );
    let mut b = recv_creating(&reg, &f2);
    b.kill9();
    let o = run(ipcx(&reg).args(["rm", "--stale", "--dry-run"]));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("would remove 2 stale objects; 0 with"), "{out}");
    assert!(f1.exists() && f2.exists(), "--dry-run removes nothing");
    let o = run(ipcx(&reg).args(["rm", "--stale"]));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("removed 2 stale objects; 0 with"), "{out}");
    assert!(!f1.exists() && !f2.exists());
    assert!(!reg.exists());
}

#[test]
fn ls_counts_entries_of_objects_already_gone_in_plain_words() {
    let dir = TestDir::new("ops-gone");
    let reg = dir.join("registry");
    let (a, b) = (dir.join("a.log"), dir.join("b.log"));
    for log in [&a, &b] {
        let o = run(ipcx(&reg).args(["send", &format!("mmap:{}", log.display()), "x"]));
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    // Removed by hand, behind ipcx's back: the entries describe nothing now.
    std::fs::remove_dir_all(&a).unwrap();
    let o = run(ipcx(&reg).arg("ls"));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("\n1 registry entry names an object that is already gone; `ipcx rm --stale` forgets it.\n"), "{out}");
    std::fs::remove_dir_all(&b).unwrap();
    let o = run(ipcx(&reg).arg("ls"));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("\n2 registry entries name objects that are already gone; `ipcx rm --stale` forgets them.\n"), "{out}");
    let o = run(ipcx(&reg).args(["rm", "--stale"]));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains(&format!("forgot mmap:{} (already gone)", a.display())), "{out}");
    assert!(!reg.exists(), "{out}");
}

#[test]
fn demo_mmap_forgets_the_log_it_removes() {
    let dir = TestDir::new("ops-demo-mmap");
    let reg = dir.join("registry");
    let tmp = dir.join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    let o = run(ipcx(&reg).args(["demo", "mmap"]).env("TMPDIR", &tmp));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(ipcx_tests::dir_names(&tmp).is_empty(), "the demo's directory is removed");
    let o = run(ipcx(&reg).arg("ls"));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(!out.contains("registry entr"), "{out}");
    assert!(!reg.exists(), "the demo's log left a registry entry behind");
}

#[test]
fn ls_accepts_every_kind_it_shows() {
    for kind in [
        "sysv-mq",
        "sysv-shm",
        "posix-mq",
        "shm",
        "posix-sem",
        "fifo",
        "unix",
        "unix-seqpacket",
        "unix-dgram",
        "mmap",
    ] {
        let dir = TestDir::new("ops-kinds");
        let o = run(ipcx(&dir.join("registry")).args(["ls", "--kind", kind]));
        assert!(o.status.success(), "--kind {kind}: {}", String::from_utf8_lossy(&o.stderr));
    }
    let dir = TestDir::new("ops-dgram");
    let reg = dir.join("registry");
    let sock = dir.join("d.sock");
    let addr = format!("unix-dgram:{}", sock.display());
    let _c = spawn(ipcx(&reg).args(["recv", &addr, "--create", "--count", "1"]));
    ls_until(&reg, &addr, "listed", |o| o.is_some_and(|o| o["kind"] == "unix-dgram"));
    let objs = ls_json(&reg, &["--kind", "unix-dgram"]);
    assert!(objs.iter().all(|o| o["kind"] == "unix-dgram"), "{objs:?}");
    assert!(find(&objs, &addr).is_some(), "{objs:?}");
    let text = run(ipcx(&reg).args(["ls", "--kind", "unix-seqpacket,unix-dgram"]));
    assert!(String::from_utf8_lossy(&text.stdout).contains(&addr));
    // `unix` is the KIND of stream sockets, as `ls` shows it.
    assert!(find(&ls_json(&reg, &["--kind", "unix"]), &addr).is_none());
    let bad = run(ipcx(&reg).args(["ls", "--kind", "unix-datagram"]));
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(!bad.status.success());
    assert!(err.contains("unknown kind `unix-datagram`") && err.contains("unix-dgram"), "{err}");
}
