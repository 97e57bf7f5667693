//! A helper process for the durable log's tests.
//!
//! ```text
//! ipcx-logpeer append ADDR START     append patterned records START, START+1, ... forever,
//!                                    printing each sequence number once `send` returned
//! ```
//! Exit status 1 with one line on stderr on failure.

use ipcx::Sender;
use ipcx_tests::pattern_message;
use std::io::Write;

fn run(args: &[String]) -> Result<(), String> {
    match args.first().map(String::as_str) {
        Some("append") => {
            let addr = args.get(1).ok_or("missing ADDR")?;
            let start: u64 =
                args.get(2).ok_or("missing START")?.parse().map_err(|_| "bad START")?;
            let mut tx = ipcx::open_sender(addr).map_err(|e| e.to_string())?;
            let out = std::io::stdout();
            let mut out = out.lock();
            let mut m = Vec::new();
            for seq in start.. {
                pattern_message(seq, 64, &mut m);
                tx.send(&m).map_err(|e| format!("record {seq}: {e}"))?;
                writeln!(out, "{seq}").and_then(|()| out.flush()).map_err(|e| e.to_string())?;
            }
            Ok(())
        }
        other => Err(format!("unknown command {other:?}; see the source for usage")),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Err(e) = run(&args) {
        eprintln!("ipcx-logpeer: {e}");
        std::process::exit(1);
    }
}
