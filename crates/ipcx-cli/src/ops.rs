//! `ipcx ls` and `ipcx rm`: see and clean every IPC object on the machine.
//!
//! `ls` reads the kernel's own lists (`/proc/sysvipc/msg`, `/proc/sysvipc/shm`,
//! `/dev/shm`, `/dev/mqueue` where mounted) and the registry of objects ipcx created
//! (`ipcx::registry`), and merges them: an object ipcx created carries its creator's pid
//! and start time, so "alive" means that very process still runs, not just some process
//! with its pid.
//!
//! `rm` removes named objects, or with `--stale` every object in the caller's registry
//! whose creator is dead. It never removes an object whose creator is alive, that belongs
//! to another user, or that its creator kept on purpose (`--keep`; a log its writer closed
//! cleanly), unless `--force` is given, and it says what it removed.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{bail, Result};
use ipcx::address::{SysvKey, Target, UnixName};
use ipcx::registry::{Entry, OwnerToken, Registry};
use ipcx::sys::ops;
use ipcx::Address;
use serde::Serialize;

/// Arguments of `ipcx ls`.
#[derive(clap::Args, Debug)]
pub struct LsArgs {
    /// Print a JSON array instead of a table.
    #[arg(long)]
    json: bool,
    /// Only objects of this kind, as the KIND column shows it: sysv-mq, sysv-shm,
    /// posix-mq, shm, posix-sem, fifo, unix, unix-seqpacket, unix-dgram, mmap (repeat or
    /// separate with commas for several).
    #[arg(long, value_delimiter = ',')]
    kind: Vec<String>,
    /// Only objects owned by this user (a name or a uid).
    #[arg(long)]
    owner: Option<String>,
}

/// Arguments of `ipcx rm`.
#[derive(clap::Args, Debug)]
pub struct RmArgs {
    /// The objects to remove, as addresses (fifo:/path, sysv-mq:KEY, posix-mq:/name,
    /// shm:/name, sysv-shm:KEY, unix:/path, mmap:/path).
    addresses: Vec<String>,
    /// Remove every object ipcx created (in your registry) whose creator is dead.
    #[arg(long)]
    stale: bool,
    /// Say what would be removed, and remove nothing.
    #[arg(long)]
    dry_run: bool,
    /// Also remove objects whose creator is alive, that belong to another user, or that
    /// were kept on purpose (--keep).
    #[arg(long)]
    force: bool,
}

/// One IPC object, as `ls` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct Obj {
    /// The address, as ipcx writes it.
    pub address: String,
    /// sysv-mq, sysv-shm, posix-mq, shm, posix-sem, fifo, unix, unix-seqpacket,
    /// unix-dgram, mmap.
    pub kind: String,
    /// The owner's user name, or uid if it has none.
    pub owner: String,
    /// The owner's uid.
    pub uid: Option<u32>,
    /// Permission bits, octal.
    pub mode: Option<String>,
    /// Bytes held (queue contents, segment or file size).
    pub size: Option<u64>,
    /// Messages waiting (queues).
    pub messages: Option<u64>,
    /// The creator's pid (registry; for System V segments the kernel's cpid).
    pub pid: Option<i32>,
    /// Whether the creator still runs (`None`: unknown).
    pub alive: Option<bool>,
    /// Seconds since creation (or, for objects ipcx did not create, since the last change).
    pub age_secs: Option<u64>,
    /// Whether ipcx created it (it is in the registry).
    pub ipcx: bool,
    /// Whether its creator kept it on purpose.
    pub kept: bool,
    /// The System V id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<i32>,
    /// The System V key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<i32>,
    /// System V queues: the last sender's and receiver's pids.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lspid: Option<i32>,
    /// See `lspid`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lrpid: Option<i32>,
    /// System V segments: processes attached.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attached: Option<u64>,
    /// System V segments: the pid of the last attach or detach.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lpid: Option<i32>,
    /// System V objects: the last send and receive (queues) or attach and detach
    /// (segments), in seconds since the epoch; 0 for never.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_use: Option<[u64; 2]>,
}

impl Obj {
    fn new(address: String, kind: &str) -> Obj {
        Obj {
            address,
            kind: kind.to_owned(),
            owner: String::new(),
            uid: None,
            mode: None,
            size: None,
            messages: None,
            pid: None,
            alive: None,
            age_secs: None,
            ipcx: false,
            kept: false,
            id: None,
            key: None,
            lspid: None,
            lrpid: None,
            attached: None,
            lpid: None,
            last_use: None,
        }
    }
}

fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// uid -> user name, from /etc/passwd.
fn users() -> HashMap<u32, String> {
    let text = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    text.lines()
        .filter_map(|l| {
            let mut f = l.split(':');
            let name = f.next()?;
            let uid = f.nth(1)?.parse().ok()?;
            Some((uid, name.to_owned()))
        })
        .collect()
}

/// Rows of a `/proc/sysvipc` table as maps from column name to value.
fn sysvipc_rows(path: &str) -> Vec<HashMap<String, i64>> {
    std::fs::read_to_string(path).map(|t| parse_sysvipc(&t)).unwrap_or_default()
}

/// Parse a `/proc/sysvipc` table; rows that are short or not numbers are skipped.
fn parse_sysvipc(text: &str) -> Vec<HashMap<String, i64>> {
    let mut lines = text.lines();
    let Some(header) = lines.next() else { return Vec::new() };
    let cols: Vec<&str> = header.split_whitespace().collect();
    lines
        .filter_map(|l| {
            let vals: Vec<&str> = l.split_whitespace().collect();
            if vals.len() < cols.len() {
                return None;
            }
            cols.iter()
                .zip(vals)
                .map(|(c, v)| {
                    // `perms` is printed in octal; everything else in decimal.
                    let n = if *c == "perms" {
                        i64::from_str_radix(v, 8).ok()?
                    } else {
                        v.parse().ok()?
                    };
                    Some(((*c).to_owned(), n))
                })
                .collect()
        })
        .collect()
}

/// A column of a `/proc/sysvipc` row; 0 if the kernel does not print it.
fn col(r: &HashMap<String, i64>, name: &str) -> i64 {
    r.get(name).copied().unwrap_or(0)
}

/// Wall-clock start time of a process, in seconds since the epoch.
fn process_started(pid: i32) -> Option<u64> {
    let tok = OwnerToken::of(pid)?;
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let btime: u64 = stat.lines().find_map(|l| l.strip_prefix("btime "))?.trim().parse().ok()?;
    Some(btime + tok.start / ops::clock_ticks())
}

/// Whether the process `pid` can be the one that created an object at `ctime`: it runs and
/// started no later than that (a pid reused since then started after).
fn creator_alive(pid: i32, ctime: u64) -> bool {
    match process_started(pid) {
        Some(started) => started <= ctime + 1 && OwnerToken::of(pid).is_some_and(|t| t.is_alive()),
        None => false,
    }
}

fn sysv_objects(out: &mut Vec<Obj>) {
    let now = now_secs();
    for r in sysvipc_rows("/proc/sysvipc/msg") {
        let (key, id) = (col(&r, "key") as i32, col(&r, "msqid") as i32);
        let addr = if key == 0 {
            format!("sysv-mq:IPC_PRIVATE(id={id})")
        } else {
            format!("sysv-mq:{:#x}", key as u32)
        };
        let mut o = Obj::new(addr, "sysv-mq");
        o.id = Some(id);
        o.key = Some(key);
        o.uid = Some(col(&r, "uid") as u32);
        o.mode = Some(format!("{:04o}", col(&r, "perms") & 0o777));
        o.size = Some(col(&r, "cbytes") as u64);
        o.messages = Some(col(&r, "qnum") as u64);
        o.lspid = Some(col(&r, "lspid") as i32);
        o.lrpid = Some(col(&r, "lrpid") as i32);
        o.last_use = Some([col(&r, "stime") as u64, col(&r, "rtime") as u64]);
        o.age_secs = Some(now.saturating_sub(col(&r, "ctime") as u64));
        out.push(o);
    }
    for r in sysvipc_rows("/proc/sysvipc/shm") {
        let (key, id) = (col(&r, "key") as i32, col(&r, "shmid") as i32);
        let addr = if key == 0 {
            format!("sysv-shm:IPC_PRIVATE(id={id})")
        } else {
            format!("sysv-shm:{:#x}", key as u32)
        };
        let mut o = Obj::new(addr, "sysv-shm");
        o.id = Some(id);
        o.key = Some(key);
        o.uid = Some(col(&r, "uid") as u32);
        o.mode = Some(format!("{:04o}", col(&r, "perms") & 0o777));
        o.size = Some(col(&r, "size") as u64);
        o.attached = Some(col(&r, "nattch") as u64);
        o.lpid = Some(col(&r, "lpid") as i32);
        o.last_use = Some([col(&r, "atime") as u64, col(&r, "dtime") as u64]);
        let cpid = col(&r, "cpid") as i32;
        o.pid = Some(cpid);
        o.alive = Some(creator_alive(cpid, col(&r, "ctime") as u64));
        o.age_secs = Some(now.saturating_sub(col(&r, "ctime") as u64));
        out.push(o);
    }
}

fn file_facts(o: &mut Obj, md: &std::fs::Metadata) {
    o.uid = Some(md.uid());
    o.mode = Some(format!("{:04o}", md.mode() & 0o7777));
    o.age_secs = Some(now_secs().saturating_sub(md.ctime().max(0) as u64));
}

/// Whether a POSIX queue file system is mounted at /dev/mqueue.
fn mqueue_mounted() -> bool {
    std::fs::read_to_string("/proc/self/mountinfo")
        .map(|m| {
            m.lines().any(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                f.get(4) == Some(&"/dev/mqueue")
                    && l.split(" - ").nth(1).is_some_and(|t| t.starts_with("mqueue"))
            })
        })
        .unwrap_or(false)
}

fn posix_objects(out: &mut Vec<Obj>) {
    if let Ok(rd) = std::fs::read_dir("/dev/shm") {
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let Ok(md) = e.path().symlink_metadata() else { continue };
            if !md.file_type().is_file() {
                continue;
            }
            let mut o = match name.strip_prefix("sem.") {
                Some(sem) => Obj::new(format!("/dev/shm/sem.{sem}"), "posix-sem"),
                None => Obj::new(format!("shm:/{name}"), "shm"),
            };
            file_facts(&mut o, &md);
            o.size = Some(md.len());
            out.push(o);
        }
    }
    if mqueue_mounted() {
        if let Ok(rd) = std::fs::read_dir("/dev/mqueue") {
            for e in rd.flatten() {
                let name = format!("/{}", e.file_name().to_string_lossy());
                let Ok(md) = e.path().symlink_metadata() else { continue };
                let mut o = Obj::new(format!("posix-mq:{name}"), "posix-mq");
                file_facts(&mut o, &md);
                // The file reads "QSIZE:N NOTIFY:..."; QSIZE is the bytes waiting.
                let text = std::fs::read_to_string(e.path()).unwrap_or_default();
                o.size = text
                    .split_whitespace()
                    .find_map(|f| f.strip_prefix("QSIZE:"))
                    .and_then(|n| n.parse().ok());
                o.messages = ops::mq_stat(&name).ok().map(|s| s.waiting.max(0) as u64);
                out.push(o);
            }
        }
    }
}

/// Does the object an entry names still exist? Fills in what can be learned about it.
fn registry_object(e: &Entry) -> Option<Obj> {
    let addr = Address::parse(&e.address).ok()?;
    if e.same_object() == Some(false) {
        return None; // another file took the name: not what ipcx created
    }
    let mut o = Obj::new(e.address.clone(), addr.scheme());
    match addr.target() {
        Target::Fifo(p) | Target::Mmap(p) | Target::Unix(_, UnixName::Path(p)) => {
            let md = p.symlink_metadata().ok()?;
            let ft = md.file_type();
            let right = match addr.target() {
                Target::Fifo(_) => std::os::unix::fs::FileTypeExt::is_fifo(&ft),
                Target::Unix(..) => std::os::unix::fs::FileTypeExt::is_socket(&ft),
                // A log is a directory of segment files.
                _ => ft.is_dir(),
            };
            if !right {
                return None;
            }
            file_facts(&mut o, &md);
            if ft.is_dir() {
                o.size = Some(dir_bytes(p));
            }
        }
        Target::PosixMq(name) => match ops::mq_stat(name) {
            Ok(s) => {
                o.uid = Some(s.uid);
                o.mode = Some(format!("{:04o}", s.mode));
                o.messages = Some(s.waiting.max(0) as u64);
            }
            Err(ipcx::sys::Errno(libc::ENOENT)) => return None,
            Err(_) => {}
        },
        Target::Shm(name) => {
            let md =
                Path::new("/dev/shm").join(name.trim_start_matches('/')).symlink_metadata().ok()?;
            file_facts(&mut o, &md);
            o.size = Some(md.len());
        }
        Target::SysvMq(_) | Target::SysvShm(_) => {
            // Listed from /proc/sysvipc; merged there. Here only when the key is gone.
            return None;
        }
        _ => return None,
    }
    Some(o)
}

/// Bytes in the regular files of a directory (a log's segments and reader files).
fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| e.path().symlink_metadata().ok())
                .filter(|md| md.file_type().is_file())
                .map(|md| md.len())
                .sum()
        })
        .unwrap_or(0)
}

fn merge_entry(o: &mut Obj, e: &Entry) {
    o.ipcx = true;
    o.kept = e.kept;
    o.pid = Some(e.owner.pid);
    o.alive = Some(e.owner.is_alive());
    o.age_secs = Some(e.age_secs());
    if o.uid.is_none() {
        o.uid = Some(e.uid);
    }
}

/// Every IPC object on the machine that this user can see, and how many registry entries
/// name objects that are gone.
pub fn inventory() -> (Vec<Obj>, usize) {
    let mut objs = Vec::new();
    sysv_objects(&mut objs);
    posix_objects(&mut objs);
    let mut gone = 0;
    for e in Registry::default().list() {
        // The kind shown is the address's scheme, whatever the creator wrote.
        let Ok(scheme) = Address::parse(&e.address).map(|a| a.scheme()) else {
            continue;
        };
        let sysv = matches!(scheme, "sysv-mq" | "sysv-shm");
        let found = objs.iter_mut().find(|o| {
            if sysv {
                o.kind == scheme && e.key.is_some() && o.key == e.key
            } else {
                o.address == e.address
            }
        });
        match found {
            Some(o) => {
                if sysv {
                    // Keep the address the creator used (an ftok path, say).
                    o.address = e.address.clone();
                }
                merge_entry(o, &e)
            }
            None if sysv => gone += 1,
            None => match registry_object(&e) {
                Some(mut o) => {
                    merge_entry(&mut o, &e);
                    objs.push(o);
                }
                None => gone += 1,
            },
        }
    }
    let names = users();
    for o in &mut objs {
        o.owner = match o.uid {
            Some(u) => names.get(&u).cloned().unwrap_or_else(|| u.to_string()),
            None => "-".into(),
        };
    }
    objs.sort_by(|a, b| (&a.kind, &a.address).cmp(&(&b.kind, &b.address)));
    (objs, gone)
}

fn resolve_owner(s: &str) -> Result<u32> {
    if let Ok(n) = s.parse() {
        return Ok(n);
    }
    match users().into_iter().find(|(_, name)| name == s) {
        Some((uid, _)) => Ok(uid),
        None => bail!("no user `{s}` in /etc/passwd; give a user name or a numeric uid"),
    }
}

/// Every KIND that `ls` shows: `posix-sem` from `/dev/shm`, the others the schemes of the
/// addresses of objects with a name (a registry entry's kind is its address's scheme).
const KINDS: &[&str] = &[
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
];

fn human_age(s: u64) -> String {
    match s {
        0..=119 => format!("{s}s"),
        120..=7199 => format!("{}m", s / 60),
        7200..=172_799 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86400),
    }
}

fn size_cell(o: &Obj) -> String {
    match (o.messages, o.size) {
        (Some(m), Some(b)) => format!("{m} msg, {b} B"),
        (Some(m), None) => format!("{m} msg"),
        (None, Some(b)) => format!("{b} B"),
        (None, None) => "-".into(),
    }
}

/// `ipcx ls`.
pub fn ls(args: LsArgs) -> Result<()> {
    for k in &args.kind {
        if !KINDS.contains(&k.as_str()) {
            bail!("unknown kind `{k}`; expected one of {}", KINDS.join(", "));
        }
    }
    let owner = args.owner.as_deref().map(resolve_owner).transpose()?;
    let (mut objs, gone) = inventory();
    objs.retain(|o| {
        (args.kind.is_empty() || args.kind.contains(&o.kind))
            && owner.is_none_or(|u| o.uid == Some(u))
    });
    let mut stdout = crate::io::stdout();
    if args.json {
        writeln!(stdout, "{}", serde_json::to_string_pretty(&objs)?)?;
        stdout.flush()?;
        return Ok(());
    }
    let rows: Vec<[String; 8]> = objs
        .iter()
        .map(|o| {
            [
                o.address.clone(),
                if o.ipcx { format!("{}*", o.kind) } else { o.kind.clone() },
                o.owner.clone(),
                o.mode.clone().unwrap_or_else(|| "-".into()),
                size_cell(o),
                o.pid.map_or("-".into(), |p| p.to_string()),
                match (o.alive, o.kept) {
                    (Some(true), _) => "yes".into(),
                    (Some(false), true) => "no (kept)".into(),
                    (Some(false), false) => "no".into(),
                    (None, _) => "-".into(),
                },
                o.age_secs.map_or("-".into(), human_age),
            ]
        })
        .collect();
    let head = ["ADDRESS", "KIND", "OWNER", "MODE", "SIZE", "PID", "ALIVE", "AGE"];
    let mut w = head.map(str::len);
    for r in &rows {
        for (i, c) in r.iter().enumerate() {
            w[i] = w[i].max(c.chars().count());
        }
    }
    let mut out = String::new();
    let line = |cells: &[String], out: &mut String| {
        let mut l = String::new();
        for (i, c) in cells.iter().enumerate() {
            let _ = write!(l, "{c:<width$}  ", width = w[i]);
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(&head.map(String::from), &mut out);
    for r in &rows {
        line(r, &mut out);
    }
    if rows.is_empty() {
        out.push_str("(no IPC objects)\n");
    }
    out.push_str(
        "\n* created by ipcx: PID is the creator, ALIVE whether that very process still runs.\n",
    );
    if !mqueue_mounted() {
        out.push_str("POSIX queues are listed only if ipcx created them: no mqueue file system is mounted at /dev/mqueue (mount -t mqueue none /dev/mqueue to see all).\n");
    }
    match gone {
        0 => {}
        1 => out.push_str(
            "1 registry entry names an object that is already gone; `ipcx rm --stale` forgets it.\n",
        ),
        n => {
            let _ = writeln!(
                out,
                "{n} registry entries name objects that are already gone; `ipcx rm --stale` forgets them."
            );
        }
    }
    stdout.write_all(out.as_bytes())?;
    stdout.flush()?;
    Ok(())
}

/// What is at an address now: its owner, and whether it exists.
struct Found {
    uid: Option<u32>,
    sysv_id: Option<i32>,
}

fn sysv_row(table: &str, idcol: &str, id: i32) -> Option<HashMap<String, i64>> {
    sysvipc_rows(table).into_iter().find(|r| r.get(idcol) == Some(&i64::from(id)))
}

/// Look the object up; `Ok(None)` if it does not exist; `Err` if it exists but is not
/// what the address says (a regular file at a FIFO's path, say).
fn find(addr: &Address) -> Result<Option<Found>, String> {
    let file = |p: &Path, want: &str, ok: fn(&std::fs::FileType) -> bool| match p.symlink_metadata()
    {
        Ok(md) if ok(&md.file_type()) => Ok(Some(Found { uid: Some(md.uid()), sysv_id: None })),
        Ok(_) => Err(format!("{} is not {want}; not removed", p.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("{}: {e}", p.display())),
    };
    use std::os::unix::fs::FileTypeExt;
    match addr.target() {
        Target::Fifo(p) => file(p, "a FIFO", |t| t.is_fifo()),
        Target::Unix(_, UnixName::Path(p)) => file(p, "a socket", |t| t.is_socket()),
        Target::Mmap(p) => file(p, "a directory (an ipcx log)", |t| t.is_dir()),
        Target::Unix(_, UnixName::Abstract(_)) => {
            Err("an abstract socket has no file to remove; it goes with its last socket".into())
        }
        Target::SysvMq(k) | Target::SysvShm(k) => {
            let key = match k {
                SysvKey::Key(n) => *n,
                SysvKey::Ftok(..) => match ipcx::registry::sysv_key(addr) {
                    Some(n) => n,
                    None => return Ok(None),
                },
            };
            let mq = matches!(addr.target(), Target::SysvMq(_));
            let id = if mq { ops::msg_id(key) } else { ops::shm_id(key) };
            match id {
                Ok(id) => {
                    let row = if mq {
                        sysv_row("/proc/sysvipc/msg", "msqid", id)
                    } else {
                        sysv_row("/proc/sysvipc/shm", "shmid", id)
                    };
                    Ok(Some(Found { uid: row.map(|r| col(&r, "uid") as u32), sysv_id: Some(id) }))
                }
                Err(ipcx::sys::Errno(libc::ENOENT)) => Ok(None),
                Err(e) => Err(ipcx::Error::from_errno("find", addr.to_string(), e.0).to_string()),
            }
        }
        Target::PosixMq(name) => match ops::mq_stat(name) {
            Ok(s) => Ok(Some(Found { uid: Some(s.uid), sysv_id: None })),
            Err(ipcx::sys::Errno(libc::ENOENT)) => Ok(None),
            // Cannot read it: another user's, most likely; the owner is unknown.
            Err(_) => Ok(Some(Found { uid: None, sysv_id: None })),
        },
        Target::Shm(name) => file(
            &Path::new("/dev/shm").join(name.trim_start_matches('/')),
            "a shared-memory object",
            |t| t.is_file(),
        ),
        Target::Pipe(_) | Target::Tcp(..) => {
            Err("a pipe or a TCP address names no object that could be removed".into())
        }
        _ => Err("this kind of address cannot be removed".into()),
    }
}

fn remove(addr: &Address, found: &Found) -> Result<(), String> {
    let errno = |op: &'static str, e: ipcx::sys::Errno| {
        ipcx::Error::from_errno(op, addr.to_string(), e.0).to_string()
    };
    match addr.target() {
        Target::Fifo(p) | Target::Unix(_, UnixName::Path(p)) => {
            ipcx::sys::unlink(p).map_err(|e| errno("unlink", e))
        }
        // Only the log's own files, and only while no writer has it open.
        Target::Mmap(p) => ipcx::mmap::log::remove(p).map_err(|e| e.to_string()),
        Target::SysvMq(_) => {
            ops::msg_remove(found.sysv_id.unwrap_or(-1)).map_err(|e| errno("msgctl(IPC_RMID)", e))
        }
        Target::SysvShm(_) => {
            ops::shm_remove(found.sysv_id.unwrap_or(-1)).map_err(|e| errno("shmctl(IPC_RMID)", e))
        }
        Target::PosixMq(n) => ops::mq_unlink(n).map_err(|e| errno("mq_unlink", e)),
        Target::Shm(n) => ops::shm_unlink(n).map_err(|e| errno("shm_unlink", e)),
        _ => Err("cannot be removed".into()),
    }
}

/// Remove what this process created and was to remove when it exits (its registry
/// entries that are not kept), for a command ended by a termination signal, as its ends'
/// drops would have. Best effort and quiet. Logs are left: a log outlives its writers.
pub fn remove_own_objects() {
    let reg = Registry::default();
    let me = ipcx::registry::OwnerToken::current();
    for e in reg.list() {
        if e.owner != me || e.kept || e.kind == "mmap" || e.same_object() == Some(false) {
            continue;
        }
        let Ok(addr) = Address::parse(&e.address) else { continue };
        if let Ok(Some(found)) = find(&addr) {
            if remove(&addr, &found).is_ok() {
                reg.remove_entry(&e);
            }
        }
    }
}

fn user_name(uid: u32) -> String {
    users().get(&uid).cloned().unwrap_or_else(|| format!("uid {uid}"))
}

/// A line `ipcx: ...` on standard error (the exit status says that something was not
/// removed).
fn warn(line: std::fmt::Arguments<'_>) {
    crate::io::err_line(format_args!("ipcx: {line}"));
}

/// The registry's entry for the object an address names: under the address itself, or, for
/// a file, under whatever address its creator recorded for that very file (same device,
/// inode and birth time), so `fifo:./x` finds the entry of `fifo:/tmp/x`, and `unix:/s`
/// that of `unix-dgram:/s`.
fn entry_for(reg: &Registry, addr: &Address) -> Option<Entry> {
    if let Some(e) = reg.find(addr) {
        return Some(e);
    }
    let id = ipcx::registry::file_id(ipcx::address::target_path(addr.target())?)?;
    reg.list().into_iter().find(|e| e.inode == Some(id))
}

/// Why an object in the registry is kept, for the messages of `rm`.
fn kept_why(e: &Entry) -> String {
    if e.kind == "mmap" {
        format!("kept on purpose: a log outlives its writers by design, and its creator (pid {}) closed it cleanly", e.owner.pid)
    } else {
        format!("kept on purpose by its creator (pid {})", e.owner.pid)
    }
}

/// `ipcx rm`.
pub fn rm(args: RmArgs) -> Result<()> {
    if args.addresses.is_empty() && !args.stale {
        bail!("name the objects to remove (ipcx rm fifo:/tmp/x sysv-mq:1234 ...), or pass --stale");
    }
    let mut out = crate::io::stdout();
    let reg = Registry::default();
    let me = ops::euid();
    let verb = if args.dry_run { "would remove" } else { "removed" };
    let forgot = if args.dry_run { "would forget" } else { "forgot" };
    let mut failures = 0;
    if args.stale {
        let (mut removed, mut live, mut kept) = (0, 0, 0);
        for e in reg.list() {
            if e.owner.is_alive() {
                live += 1;
                continue;
            }
            if e.kept && !args.force && e.object_exists() != Some(false) {
                kept += 1;
                writeln!(
                    out,
                    "left {} ({}): {}; remove it with `ipcx rm --force {}`",
                    e.address,
                    e.kind,
                    kept_why(&e),
                    e.address
                )?;
                continue;
            }
            let Ok(addr) = Address::parse(&e.address) else { continue };
            if e.same_object() == Some(false) {
                writeln!(
                    out,
                    "{forgot} {} (its name now holds another file, left alone)",
                    e.address
                )?;
                if !args.dry_run {
                    reg.remove_entry(&e);
                }
                continue;
            }
            if let (Target::Mmap(p), false) = (addr.target(), args.force) {
                // A log survives its writer's crash by design: a dead creator makes it
                // stale only while it holds no records, no writer has it open and it
                // holds nothing but log files.
                let why = match ipcx::mmap::log::check_removable(p) {
                    Err(e) if e.kind() == ipcx::ErrorKind::NotFound => None,
                    Err(e) => Some(e.detail().to_owned()),
                    Ok(_) => match ipcx::mmap::log::holds_records(p) {
                        Ok(true) => Some("it holds records (a log keeps them across crashes); name it to remove it, or add --force".to_owned()),
                        Ok(false) => None,
                        Err(e) => Some(e.detail().to_owned()),
                    },
                };
                if let Some(why) = why {
                    writeln!(out, "left {}: {why}", e.address)?;
                    continue;
                }
            }
            match find(&addr) {
                Ok(Some(f)) if f.uid.is_some_and(|u| u != me) && !args.force => {
                    writeln!(
                        out,
                        "left {}: it belongs to {} now",
                        e.address,
                        user_name(f.uid.unwrap_or(0))
                    )?;
                }
                Ok(Some(f)) => {
                    let r = if args.dry_run { Ok(()) } else { remove(&addr, &f) };
                    match r {
                        Ok(()) => {
                            removed += 1;
                            if !args.dry_run {
                                reg.remove_entry(&e);
                            }
                            writeln!(
                                out,
                                "{verb} {} ({}, creator pid {} is gone)",
                                e.address, e.kind, e.owner.pid
                            )?;
                        }
                        Err(why) => {
                            failures += 1;
                            warn(format_args!("{}: {why}", e.address));
                        }
                    }
                }
                Ok(None) => {
                    if !args.dry_run {
                        reg.remove_entry(&e);
                    }
                    writeln!(out, "{forgot} {} (already gone)", e.address)?;
                }
                Err(why) => {
                    writeln!(out, "left {}: {why}", e.address)?;
                }
            }
        }
        writeln!(
            out,
            "{verb} {removed} stale object{}; {live} with a live creator left alone{}",
            if removed == 1 { "" } else { "s" },
            if kept > 0 { format!("; {kept} kept on purpose left alone") } else { String::new() }
        )?;
    }
    for a in &args.addresses {
        let addr = match Address::parse(a) {
            Ok(addr) => addr,
            Err(e) => {
                failures += 1;
                warn(format_args!("{e}"));
                continue;
            }
        };
        let entry = entry_for(&reg, &addr);
        let found = match find(&addr) {
            Ok(Some(f)) => f,
            Ok(None) => {
                failures += 1;
                warn(format_args!("{a}: no such object"));
                if let Some(e) = &entry {
                    if !args.dry_run {
                        reg.remove_entry(e);
                    }
                }
                continue;
            }
            Err(why) => {
                failures += 1;
                warn(format_args!("{a}: {why}"));
                continue;
            }
        };
        if let Some(e) = entry.as_ref().filter(|e| e.owner.is_alive()) {
            if !args.force {
                failures += 1;
                warn(format_args!("{a}: in use: its creator, pid {}, is still running; not removed (add --force to remove it anyway)", e.owner.pid));
                continue;
            }
        }
        // An entry for a file that has been replaced since describes another object.
        if let Some(e) = entry.as_ref().filter(|e| e.kept && e.same_object() != Some(false)) {
            if !args.force {
                failures += 1;
                warn(format_args!(
                    "{a}: {}; not removed (add --force to remove it anyway)",
                    kept_why(e)
                ));
                continue;
            }
        }
        match found.uid {
            Some(u) if u != me && !args.force => {
                failures += 1;
                warn(format_args!(
                    "{a}: belongs to {}, not to you; not removed (add --force to remove it anyway)",
                    user_name(u)
                ));
                continue;
            }
            None if !args.force => {
                failures += 1;
                warn(format_args!("{a}: cannot tell who owns it (no permission to inspect it); not removed (add --force to try anyway)"));
                continue;
            }
            _ => {}
        }
        let r = if args.dry_run { Ok(()) } else { remove(&addr, &found) };
        match r {
            Ok(()) => {
                if let (Some(e), false) = (&entry, args.dry_run) {
                    reg.remove_entry(e);
                }
                writeln!(out, "{verb} {a}")?;
            }
            Err(why) => {
                failures += 1;
                warn(format_args!("{a}: {why}"));
            }
        }
    }
    out.flush()?;
    if failures > 0 {
        bail!("{failures} object{} not removed (see above)", if failures == 1 { "" } else { "s" });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sysvipc_tables_parse_by_column_name_and_skip_bad_rows() {
        let text = "       key      msqid perms      cbytes       qnum lspid lrpid   uid   gid  cuid  cgid      stime      rtime      ctime\n\
                    1234          5   600          10          2   100   101     0     0     0     0          1          2          3\n\
                    -5            6   644           0          0     0     0  1000  1000  1000  1000          0          0          9\n\
                    7 8\n\
                    x y z\n";
        let rows = parse_sysvipc(text);
        assert_eq!(rows.len(), 2);
        assert_eq!(col(&rows[0], "key"), 1234);
        assert_eq!(col(&rows[0], "perms"), 0o600, "perms are octal");
        assert_eq!(col(&rows[0], "qnum"), 2);
        assert_eq!(col(&rows[1], "key"), -5);
        assert_eq!(col(&rows[1], "uid"), 1000);
        assert_eq!(col(&rows[1], "nonexistent"), 0);
        assert!(parse_sysvipc("").is_empty());
    }

    #[test]
    fn ages_read_like_a_person_would_say_them() {
        assert_eq!(human_age(5), "5s");
        assert_eq!(human_age(600), "10m");
        assert_eq!(human_age(3 * 3600), "3h");
        assert_eq!(human_age(5 * 86400), "5d");
    }
}
