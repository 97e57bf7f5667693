//! `ipcx demo MECHANISM`: both sides of the classic example, explained.

use std::process::Command;

use anyhow::{bail, Context, Result};
use ipcx::pipe::{self, ChildEnd};
use ipcx::{Framing, Receiver};

pub fn run(mechanism: &str) -> Result<()> {
    match mechanism {
        "pipe" => pipe_demo(),
        "fifo" => fifo_demo(),
        "mmap" => crate::demo_mmap::run(),
        "mmap-peer" => crate::demo_mmap::peer(),
        other => bail!("demo `{other}`: unknown mechanism; expected pipe, fifo or mmap"),
    }
}

fn me() -> Result<std::path::PathBuf> {
    std::env::current_exe().context("finding the ipcx executable to start the other side")
}

fn pipe_demo() -> Result<()> {
    let mut cmd = Command::new(me()?);
    cmd.args(["send", "pipe:fd=3", "Hello, world!"]);
    let (mut child, mut rx) =
        pipe::spawn_from_child(&mut cmd, ChildEnd::Fd(3), Framing::default())?;
    let msg = rx.recv()?;
    let status = child.wait().context("waiting for the child")?;
    println!(
        "parent (pid {}) read from its child (pid {}): {}",
        std::process::id(),
        child.id(),
        String::from_utf8_lossy(&msg)
    );
    if !status.success() {
        bail!("the child failed: {status}");
    }
    println!("What happened: the parent made a pipe (pipe(2)), started a child holding the write end as descriptor 3, and kept the read end.");
    println!("The child wrote one length-prefixed message (writev(2)); the parent's read(2) returned it whole, and end of file told it the child was done.");
    Ok(())
}

fn fifo_demo() -> Result<()> {
    let dir = std::env::temp_dir().join(format!("ipcx-demo-{}", std::process::id()));
    std::fs::create_dir(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let result = fifo_demo_in(&dir);
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn fifo_demo_in(dir: &std::path::Path) -> Result<()> {
    let path = dir.join("demo.fifo");
    let fifo = ipcx::fifo::Fifo::create(&path, 0o600)?;
    let addr = format!("fifo:{}?framing=fixed:80", path.display());
    let mut rx = ipcx::open_receiver(&addr)?;
    let mut child = Command::new(me()?)
        .args(["send", &addr, "Send Message[0]", "Send Message[1]", "Send Message[2]"])
        .spawn()
        .context("starting the writer")?;
    let mut buf = Vec::new();
    for _ in 0..3 {
        rx.recv_into(&mut buf)?;
        let end = buf.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
        println!(
            "reader got an {}-byte record: {}",
            buf.len(),
            String::from_utf8_lossy(&buf[..end])
        );
    }
    let status = child.wait().context("waiting for the writer")?;
    if !status.success() {
        bail!("the writer failed: {status}");
    }
    drop(fifo);
    println!("What happened: a FIFO was made at {} (mkfifo, mode 0600); an unrelated writer process opened it by name and wrote three 80-byte records, each one atomic write(2).", path.display());
    println!("The reader read exactly 80 bytes per record, so the boundaries held; the FIFO was removed afterwards, as its creator does on exit.");
    Ok(())
}
