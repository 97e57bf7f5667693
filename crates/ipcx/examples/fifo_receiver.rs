//! The reading side of a named pipe: creates the FIFO (mode 0600), prints N messages,
//! removes it on exit.
//!
//! Run: `cargo run -p ipcx --example fifo_receiver -- /tmp/demo.fifo 3`, then the sender.

use ipcx::{OpenOptions, Receiver};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let path = args.next().ok_or("usage: fifo_receiver PATH COUNT")?;
    let count: usize = args.next().ok_or("usage: fifo_receiver PATH COUNT")?.parse()?;
    // `persist`: several writers may come and go before COUNT messages arrived.
    let opts = OpenOptions::new().create(true).persist(true);
    let mut rx = ipcx::open_receiver_with(&format!("fifo:{path}"), &opts)?;
    let mut buf = Vec::new();
    for _ in 0..count {
        rx.recv_into(&mut buf)?;
        println!("{}", String::from_utf8_lossy(&buf));
    }
    Ok(())
}
