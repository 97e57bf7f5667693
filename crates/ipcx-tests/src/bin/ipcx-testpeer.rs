//! The other process in ipcx's cross-process tests.
//!
//! ```text
//! ipcx-testpeer gen ADDR N MAX        send N patterned messages of up to MAX bytes
//! ipcx-testpeer check ADDR N [MS]     receive N patterned messages, verify order and sums
//!                                     (after waiting MS milliseconds, if given)
//! ipcx-testpeer try-open ADDR         try to open ADDR both ways; print `rx=KIND tx=KIND`
//!                                     (`ok`, or the error kind)
//! ipcx-testpeer echo IN OUT           send back every message until IN disconnects or an empty one comes
//! ipcx-testpeer send ADDR SPEC...     send messages: "empty", "fill:N" (N bytes of 0xab), "text:..."
//! ipcx-testpeer send-unnamed PATH SPEC...  the same over a plain seqpacket socket that
//!                                     connects to the Unix socket file PATH without
//!                                     binding (as another program's client does)
//! ipcx-testpeer hold ADDR SECS        open ADDR for sending, then sleep (a peer that never sends)
//! ipcx-testpeer stall ADDR SECS       open ADDR for receiving, then sleep (a peer that never reads)
//! ```
//! Every open waits at most 10 s for its peer. Exit status 0 on success; on failure one
//! line on stderr and status 1.

use std::time::Duration;

use ipcx::{OpenOptions, Receiver, Sender};
use ipcx_tests::{check_pattern, pattern_message};

fn open_tx(addr: &str) -> Result<ipcx::BoxSender, String> {
    ipcx::open_sender_with(addr, &OpenOptions::new().open_timeout(Some(Duration::from_secs(10))))
        .map_err(|e| e.to_string())
}

fn open_rx(addr: &str) -> Result<ipcx::BoxReceiver, String> {
    ipcx::open_receiver_with(addr, &OpenOptions::new().open_timeout(Some(Duration::from_secs(10))))
        .map_err(|e| e.to_string())
}

fn num(s: Option<&String>, what: &str) -> Result<u64, String> {
    s.ok_or(format!("missing {what}"))?.parse().map_err(|_| format!("bad {what}"))
}

/// A message from its spec: "empty", "fill:N" (N bytes of 0xab) or "text:...".
fn spec_message(spec: &str) -> Result<Vec<u8>, String> {
    if spec == "empty" {
        Ok(Vec::new())
    } else if let Some(n) = spec.strip_prefix("fill:") {
        Ok(vec![0xab; n.parse::<usize>().map_err(|_| "bad fill size")?])
    } else if let Some(t) = spec.strip_prefix("text:") {
        Ok(t.as_bytes().to_vec())
    } else {
        Err(format!("unknown message spec {spec}"))
    }
}

fn run(args: &[String]) -> Result<(), String> {
    let cmd = args.first().map(String::as_str).unwrap_or("");
    match cmd {
        "gen" => {
            let mut tx = open_tx(args.get(1).ok_or("missing ADDR")?)?;
            let n = num(args.get(2), "N")?;
            let max = num(args.get(3), "MAX")? as usize;
            let mut m = Vec::new();
            for seq in 0..n {
                pattern_message(seq, max, &mut m);
                tx.send(&m).map_err(|e| format!("message {seq}: {e}"))?;
            }
            Ok(())
        }
        "check" => {
            let mut rx = open_rx(args.get(1).ok_or("missing ADDR")?)?;
            let n = num(args.get(2), "N")?;
            if args.len() > 3 {
                std::thread::sleep(Duration::from_millis(num(args.get(3), "MS")?));
            }
            let mut buf = Vec::new();
            for want in 0..n {
                rx.recv_timeout_into(&mut buf, Duration::from_secs(20))
                    .map_err(|e| format!("message {want}: {e}"))?;
                let seq = check_pattern(&buf)?;
                if seq != want {
                    return Err(format!("expected message {want}, got {seq}"));
                }
            }
            println!("ok {n}");
            Ok(())
        }
        "echo" => {
            let mut rx = open_rx(args.get(1).ok_or("missing IN")?)?;
            let mut tx = open_tx(args.get(2).ok_or("missing OUT")?)?;
            let mut buf = Vec::new();
            loop {
                match rx.recv_into(&mut buf) {
                    Ok(()) if buf.is_empty() => return Ok(()),
                    Ok(()) => tx.send(&buf).map_err(|e| e.to_string())?,
                    Err(e) if e.kind() == ipcx::ErrorKind::Disconnected => return Ok(()),
                    Err(e) => return Err(e.to_string()),
                }
            }
        }
        "send" => {
            let mut tx = open_tx(args.get(1).ok_or("missing ADDR")?)?;
            for spec in &args[2..] {
                tx.send(&spec_message(spec)?).map_err(|e| e.to_string())?;
            }
            Ok(())
        }
        "send-unnamed" => {
            use ipcx::sys::socket as ss;
            use std::os::fd::AsFd;
            let path = std::path::Path::new(args.get(1).ok_or("missing PATH")?);
            let e = |what: &'static str| move |e: ipcx::sys::Errno| format!("{what}: {e:?}");
            let sa = ss::SockAddr::unix_path(path).map_err(e("address"))?;
            let fd = ss::socket(libc::AF_UNIX, libc::SOCK_SEQPACKET, false).map_err(e("socket"))?;
            ss::connect(fd.as_fd(), &sa).map_err(e("connect"))?;
            for spec in &args[2..] {
                let msg = spec_message(spec)?;
                ss::send(fd.as_fd(), &[std::io::IoSlice::new(&msg)], libc::MSG_NOSIGNAL)
                    .map_err(e("send"))?;
            }
            Ok(())
        }
        "hold" => {
            let _tx = open_tx(args.get(1).ok_or("missing ADDR")?)?;
            std::thread::sleep(Duration::from_secs(num(args.get(2), "SECS")?));
            Ok(())
        }
        "stall" => {
            let _rx = open_rx(args.get(1).ok_or("missing ADDR")?)?;
            std::thread::sleep(Duration::from_secs(num(args.get(2), "SECS")?));
            Ok(())
        }
        "try-open" => {
            let addr = args.get(1).ok_or("missing ADDR")?;
            let opts = OpenOptions::new().open_timeout(Some(Duration::from_millis(200)));
            let show = |r: Result<(), ipcx::Error>| match r {
                Ok(()) => "ok".to_owned(),
                Err(e) => format!("{:?}", e.kind()),
            };
            let rx = show(ipcx::open_receiver_with(addr, &opts).map(drop));
            let tx = show(ipcx::open_sender_with(addr, &opts).map(drop));
            println!("rx={rx} tx={tx}");
            Ok(())
        }
        _ => Err(format!("unknown command `{cmd}`; see the source for usage")),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Err(e) = run(&args) {
        eprintln!("ipcx-testpeer: {e}");
        std::process::exit(1);
    }
}
