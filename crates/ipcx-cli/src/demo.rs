//! `ipcx demo MECHANISM`: both sides of the classic example, explained.
//!
//! Every line goes through [`crate::io::stdout`], so a closed or full standard output ends
//! a demo with an error (quietly, for a reader that closed the pipe) instead of a panic;
//! the children, files and kernel objects a demo made are removed by guards on every path.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output};

use anyhow::{bail, Context, Result};
use ipcx::pipe::{self, ChildEnd};
use ipcx::{Framing, Receiver};

pub fn run(mechanism: &str) -> Result<()> {
    match mechanism {
        "pipe" => pipe_demo(),
        "fifo" => fifo_demo(),
        "mq" => mq_demo(),
        "shm" => shm_demo(),
        // The other process of `ipcx demo shm` (hidden).
        "shm-peer" => shm_demo_peer(),
        "socket" => socket_demo(),
        "mmap" => crate::demo_mmap::run(),
        "mmap-peer" => crate::demo_mmap::peer(),
        other => {
            bail!("demo `{other}`: unknown mechanism; expected pipe, fifo, mq, shm, socket or mmap")
        }
    }
}

pub(crate) fn me() -> Result<PathBuf> {
    std::env::current_exe().context("finding the ipcx executable to start the other side")
}

/// A child process of a demo: killed (if it still runs) and reaped when dropped, so a demo
/// that fails half way, or whose output is closed, leaves no zombie or orphan behind.
pub(crate) struct Reaped(Option<Child>);

impl Reaped {
    pub(crate) fn new(child: Child) -> Reaped {
        Reaped(Some(child))
    }

    fn id(&self) -> u32 {
        self.0.as_ref().map_or(0, Child::id)
    }

    /// Wait for the child to end by itself.
    pub(crate) fn wait(&mut self, what: &str) -> Result<ExitStatus> {
        match self.0.as_mut() {
            Some(c) => {
                let status = c.wait().with_context(|| format!("waiting for {what}"))?;
                self.0 = None;
                Ok(status)
            }
            None => bail!("waiting for {what}: it was already waited for"),
        }
    }

    /// Wait for the child to end by itself, and collect its piped output.
    pub(crate) fn output(&mut self, what: &str) -> Result<Output> {
        match self.0.take() {
            Some(c) => c.wait_with_output().with_context(|| format!("waiting for {what}")),
            None => bail!("waiting for {what}: it was already waited for"),
        }
    }
}

impl Drop for Reaped {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            // Errors ignored: a child that already ended cannot be killed (it is reaped
            // all the same), and a drop has no one to report to.
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A demo's private directory under the temporary directory, removed with all it holds
/// when dropped.
pub(crate) struct DemoDir(PathBuf);

impl DemoDir {
    /// Make `$TMPDIR/NAME`, mode 0700.
    pub(crate) fn create(name: &str) -> Result<DemoDir> {
        use std::os::unix::fs::DirBuilderExt;
        let dir = std::env::temp_dir().join(name);
        let dir = std::path::absolute(&dir).unwrap_or(dir);
        std::fs::DirBuilder::new().mode(0o700).create(&dir).with_context(|| {
            format!(
                "creating the demo directory {} (remove it if a crashed demo left it)",
                dir.display()
            )
        })?;
        Ok(DemoDir(dir))
    }

    pub(crate) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for DemoDir {
    fn drop(&mut self) {
        // Best effort: a drop cannot report; what is left is named by the demo's pid.
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn pipe_demo() -> Result<()> {
    let mut out = crate::io::stdout();
    let mut cmd = Command::new(me()?);
    cmd.args(["send", "pipe:fd=3", "Hello, world!"]);
    let (child, mut rx) = pipe::spawn_from_child(&mut cmd, ChildEnd::Fd(3), Framing::default())?;
    let mut child = Reaped::new(child);
    let child_pid = child.id();
    let msg = rx.recv()?;
    let status = child.wait("the child")?;
    writeln!(
        out,
        "parent (pid {}) read from its child (pid {child_pid}): {}",
        std::process::id(),
        String::from_utf8_lossy(&msg)
    )?;
    if !status.success() {
        bail!("the child failed: {status}");
    }
    writeln!(out, "What happened: the parent made a pipe (pipe(2)), started a child holding the write end as descriptor 3, and kept the read end.")?;
    // One write(2) of header and payload together (docs/PROTOCOL.md, "A sender writes
    // header and payload with one system call"): writev(2) is for frames over 2 KiB.
    writeln!(out, "The child wrote one length-prefixed message, its 4-byte header and payload together in one write(2); the parent's read(2) returned it whole, and end of file told it the child was done.")?;
    Ok(())
}

fn fifo_demo() -> Result<()> {
    let mut out = crate::io::stdout();
    // Declared first, so dropped last: after the writer is reaped and the FIFO removed.
    let dir = DemoDir::create(&format!("ipcx-demo-{}", std::process::id()))?;
    let path = dir.path().join("demo.fifo");
    let fifo = ipcx::fifo::Fifo::create(&path, 0o600)?;
    let addr = format!("fifo:{}?framing=fixed:80", path.display());
    let mut rx = ipcx::open_receiver(&addr)?;
    let mut child = Reaped::new(
        Command::new(me()?)
            .args(["send", &addr, "Send Message[0]", "Send Message[1]", "Send Message[2]"])
            .spawn()
            .context("starting the writer")?,
    );
    let mut buf = Vec::new();
    for _ in 0..3 {
        rx.recv_into(&mut buf)?;
        let end = buf.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
        writeln!(
            out,
            "reader got an {}-byte record: {}",
            buf.len(),
            String::from_utf8_lossy(&buf[..end])
        )?;
    }
    let status = child.wait("the writer")?;
    if !status.success() {
        bail!("the writer failed: {status}");
    }
    drop(fifo);
    writeln!(out, "What happened: a FIFO was made at {} (mkfifo, mode 0600); an unrelated writer process opened it by name and wrote three 80-byte records, each one atomic write(2).", path.display())?;
    writeln!(out, "The reader read exactly 80 bytes per record, so the boundaries held; the FIFO was removed afterwards, as its creator does on exit.")?;
    Ok(())
}

fn send_child(addr: &str, msg: &str) -> Result<()> {
    let status =
        Command::new(me()?).args(["send", addr, msg]).status().context("starting a sender")?;
    if !status.success() {
        bail!("the sender of `{msg}` failed: {status}");
    }
    Ok(())
}

fn mq_demo() -> Result<()> {
    use ipcx::sysv_mq::{Queue, Selector};
    // System V: messages carry a type; a receiver picks by type.
    let key = 0x4950_0000 | (std::process::id() as i32 & 0xffff);
    let mut out = crate::io::stdout();
    let mut q = Queue::create(ipcx::address::SysvKey::Key(key), 0o600)?;
    for (t, m) in [(1, "job A"), (3, "report"), (2, "job C"), (1, "job B")] {
        send_child(&format!("sysv-mq:{key}?type={t}"), m)?;
    }
    writeln!(out, "System V queue key {key:#x} (id {}): 4 senders each sent one message with a type (1, 3, 2, 1).", q.id())?;
    let mut buf = Vec::new();
    let t = q.recv_into(Selector::Type(3), &mut buf)?;
    writeln!(out, "  receive type 3 only        -> type {t}: {}", String::from_utf8_lossy(&buf))?;
    while let Ok(t) = q.try_recv_into(Selector::AtMost(2), &mut buf) {
        writeln!(
            out,
            "  receive lowest type <= 2   -> type {t}: {}",
            String::from_utf8_lossy(&buf)
        )?;
    }
    q.remove()?;
    // POSIX: messages carry a priority; the highest comes out first.
    let name = format!("/ipcx-demo-{}", std::process::id());
    let pq = ipcx::posix_mq::Queue::create(&name)?;
    for (p, m) in [(0, "routine"), (7, "urgent"), (0, "routine 2")] {
        send_child(&format!("posix-mq:{name}?prio={p}"), m)?;
    }
    writeln!(out, "POSIX queue {name}: 3 senders sent priorities 0, 7, 0.")?;
    for _ in 0..3 {
        let p = pq.recv_into(&mut buf)?;
        writeln!(
            out,
            "  receive                    -> priority {p}: {}",
            String::from_utf8_lossy(&buf)
        )?;
    }
    drop(pq);
    writeln!(out, "What happened: the kernel kept each message whole in a queue that outlives its senders (msgsnd, mq_send).")?;
    writeln!(out, "msgrcv picked messages by type (3, then lowest <= 2 in order); mq_receive gave the highest priority first, FIFO within one priority. Both queues were removed by their creator afterwards.")?;
    Ok(())
}

const SHM_ENV: &str = "IPCX_DEMO_SHM";

/// Two processes talk both ways over a duplex channel (two rings), then share a raw
/// segment with typed, atomic access.
fn shm_demo() -> Result<()> {
    let mut out = crate::io::stdout();
    let tag = format!("ipcx-demo-{}", std::process::id());
    let (a, b, raw) = (format!("/{tag}-ping"), format!("/{tag}-pong"), format!("/{tag}-raw"));
    let ping = ipcx::shm::Ring::create(&format!("shm:{a}?capacity=65536"))?;
    let pong = ipcx::shm::Ring::create(&format!("shm:{b}?capacity=65536"))?;
    let seg = ipcx::shm::Segment::create(&raw, 4096, 0o600)?;
    seg.write_bytes(16, b"written by the parent")?;
    let mut tx = ipcx::open_sender(&format!("shm:{a}"))?;
    let mut rx = ipcx::open_receiver(&format!("shm:{b}"))?;
    // The child's output comes back through a pipe and is printed here, in order: only
    // this process writes to standard output, and sees (and reports) its errors.
    let mut child = Reaped::new(
        Command::new(me()?)
            .args(["demo", "shm-peer"])
            .env(SHM_ENV, format!("{a} {b} {raw}"))
            .stdout(std::process::Stdio::piped())
            .spawn()
            .context("starting the other process")?,
    );
    for i in 0..3 {
        let msg = format!("ping {i} from pid {}", std::process::id());
        ipcx::Sender::send(&mut tx, msg.as_bytes())?;
        let reply = rx.recv()?;
        writeln!(out, "parent sent {msg:?}, got back {:?}", String::from_utf8_lossy(&reply))?;
    }
    ipcx::Sender::send(&mut tx, b"")?;
    let peer = child.output("the other process")?;
    out.write_all(&peer.stdout)?;
    if !peer.status.success() {
        bail!("the other process failed: {}", peer.status);
    }
    let visits = seg.load_u64(0, std::sync::atomic::Ordering::SeqCst)?;
    let mut note = [0u8; 20];
    seg.read_bytes(64, &mut note)?;
    writeln!(
        out,
        "raw segment shm:{raw}: counter = {visits}, the child left {:?}",
        String::from_utf8_lossy(&note)
    )?;
    drop((tx, rx, ping, pong, seg));
    writeln!(out, "What happened: two rings in POSIX shared memory (shm_open + mmap, mode 0600) made one duplex channel; each message was copied into the ring and published by one atomic index store, with no system call while the other side was awake.")?;
    writeln!(out, "Then both processes mapped a raw 4 KiB segment: the child incremented a shared counter atomically and copied bytes in; every segment was removed by its creator at the end.")?;
    Ok(())
}

fn shm_demo_peer() -> Result<()> {
    let names = std::env::var(SHM_ENV).context("shm-peer is started by `ipcx demo shm`")?;
    let mut it = names.split(' ');
    let (Some(a), Some(b), Some(raw)) = (it.next(), it.next(), it.next()) else {
        bail!("shm-peer: expected three names in {SHM_ENV}");
    };
    let mut rx = ipcx::open_receiver(&format!("shm:{a}"))?;
    let mut tx = ipcx::open_sender(&format!("shm:{b}"))?;
    let mut buf = Vec::new();
    loop {
        rx.recv_into(&mut buf)?;
        if buf.is_empty() {
            break;
        }
        let reply =
            format!("pong from pid {} to {}", std::process::id(), String::from_utf8_lossy(&buf));
        ipcx::Sender::send(&mut tx, reply.as_bytes())?;
    }
    let seg = ipcx::shm::Segment::open(raw, Some(4096))?;
    seg.atomic_u64(0)?.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let mut note = [0u8; 21];
    seg.read_bytes(16, &mut note)?;
    writeln!(
        crate::io::stdout(),
        "child read from the raw segment: {:?}",
        String::from_utf8_lossy(&note)
    )?;
    seg.write_bytes(64, b"hello from the child")?;
    Ok(())
}

fn socket_demo() -> Result<()> {
    use ipcx::address::Address;
    use ipcx::Sender;
    let mut out = crate::io::stdout();
    // Declared first, so dropped last, after the listener has removed its socket file.
    let dir = DemoDir::create(&format!("ipcx-demo-{}", std::process::id()))?;
    let path = dir.path().join("demo.sock");
    let addr = Address::parse(&format!("unix:{}", path.display()))?;
    {
        let listener = ipcx::socket::listen(&addr)?;
        writeln!(out, "server: listening on {} (socket file mode 0600)", listener.address())?;
        let client_addr = addr.clone();
        let client = std::thread::spawn(move || -> Result<Vec<u8>> {
            let mut c =
                ipcx::socket::connect(&client_addr, Some(std::time::Duration::from_secs(5)))?;
            c.send(b"What is the answer?")?;
            Ok(c.recv()?)
        });
        let mut conn = listener.accept()?;
        let request = conn.recv()?;
        let p = conn.peer_cred().context("a Unix connection always has credentials")?;
        writeln!(out, "server: request: {}", String::from_utf8_lossy(&request))?;
        writeln!(
            out,
            "server: the client is pid {}, uid {}, gid {} (SO_PEERCRED, from the kernel)",
            p.pid, p.uid, p.gid
        )?;
        conn.send(b"42")?;
        let answer = client.join().map_err(|_| anyhow::anyhow!("the client thread panicked"))??;
        writeln!(out, "client: answer: {}", String::from_utf8_lossy(&answer))?;
        writeln!(out, "What happened: the server bound a Unix stream socket (socket(2), bind(2), listen(2)); the client connected (connect(2)) and sent a length-prefixed request.")?;
        writeln!(out, "The server accepted (accept4(2)), asked the kernel who the client was (getsockopt SO_PEERCRED: it cannot be forged), and answered on the same connection. The socket file is removed when the server closes.")?;
    }
    Ok(())
}
