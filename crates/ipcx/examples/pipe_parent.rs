//! A parent and its child over a pipe: the classic "Hello, world!" example.
//!
//! Run: `cargo run -p ipcx --example pipe_parent`. The program starts itself again as the
//! child (with the argument `child`), handing it the write end of a pipe as descriptor 3.

use std::process::Command;

use ipcx::pipe::{self, ChildEnd};
use ipcx::{Receiver, Sender};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    if std::env::args().nth(1).as_deref() == Some("child") {
        // The child: open the inherited end by address and write.
        let mut tx = ipcx::open_sender("pipe:fd=3")?;
        tx.send(b"Hello, world!")?;
        return Ok(());
    }
    let mut cmd = Command::new(std::env::current_exe()?);
    cmd.arg("child");
    let (mut child, mut rx) =
        pipe::spawn_from_child(&mut cmd, ChildEnd::Fd(3), Default::default())?;
    let msg = rx.recv()?;
    println!("parent got: {}", String::from_utf8_lossy(&msg));
    child.wait()?;
    Ok(())
}
