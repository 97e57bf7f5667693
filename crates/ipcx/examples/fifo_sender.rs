//! The writing side of a named pipe: waits up to 5 s for a reader, sends its arguments.
//!
//! Run: `cargo run -p ipcx --example fifo_sender -- /tmp/demo.fifo one two three`.

use std::time::Duration;

use ipcx::{OpenOptions, Sender};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let path = args.next().ok_or("usage: fifo_sender PATH MESSAGE...")?;
    let opts = OpenOptions::new().open_timeout(Some(Duration::from_secs(5)));
    let mut tx = ipcx::open_sender_with(&format!("fifo:{path}"), &opts)?;
    for m in args {
        tx.send(m.as_bytes())?;
    }
    Ok(())
}
