//! `ipcx`: send, receive, demonstrate and benchmark every Unix IPC mechanism.

mod bench;
mod demo;
mod io;
mod ops;

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use ipcx::{ErrorKind, Framing};

/// Send, receive, demonstrate and benchmark the classic Unix IPC mechanisms.
///
/// An ADDRESS names a channel: pipe:stdin, pipe:stdout, pipe:fd=N, fifo:/path,
/// sysv-mq:KEY, posix-mq:/name, shm:/name, sysv-shm:KEY, mmap:/path, unix:/path,
/// unix:@name, unix-seqpacket:/path, unix-dgram:/path, tcp:HOST:PORT.
/// Options follow a `?`: mode=0600 (default), framing=length|lines|fixed:N|raw, max=N.
#[derive(Parser, Debug)]
#[command(name = "ipcx", version, about, long_about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Send messages: the MESSAGE arguments, or standard input split by --framing.
    Send(SendArgs),
    /// Receive messages and print them, one line each (or as --framing says).
    Recv(RecvArgs),
    /// Run both sides of a classic example and explain what happened.
    Demo {
        /// Which mechanism: pipe or fifo.
        mechanism: String,
    },
    /// Measure latency and throughput of every mechanism beside its raw system calls.
    Bench(bench::BenchArgs),
    /// List the machine's IPC objects of every kind, with owner, creator and liveness.
    Ls(ops::LsArgs),
    /// Remove IPC objects by address, or (--stale) those whose ipcx creator died.
    Rm(ops::RmArgs),
    /// (internal) the child side of a benchmark lane.
    #[command(hide = true)]
    BenchPeer(bench::PeerArgs),
}

#[derive(clap::Args, Debug)]
struct SendArgs {
    /// Where to send (see ADDRESS above).
    address: String,
    /// Messages to send; without any, standard input is read.
    messages: Vec<String>,
    /// How standard input is split into messages: lines (the default), raw, fixed:N or
    /// length. The framing on the wire is the address's own (?framing=, default length),
    /// so `ipcx recv` with its default prints each line as one message.
    #[arg(long)]
    framing: Option<String>,
    /// Create the object if it does not exist (it is removed again on exit unless --keep).
    #[arg(long)]
    create: bool,
    /// Leave an object created by --create in place.
    #[arg(long)]
    keep: bool,
    /// Give up after this long (opening and sending), e.g. 500ms, 5s, 1m.
    #[arg(long, value_parser = parse_duration)]
    timeout: Option<Duration>,
}

#[derive(clap::Args, Debug)]
struct RecvArgs {
    /// Where to receive from (see ADDRESS above).
    address: String,
    /// Stop after this many messages (exit 0); a FIFO then waits for new writers.
    #[arg(long)]
    count: Option<u64>,
    /// Give up after this long in all (exit 1 with a message), e.g. 500ms, 5s, 1m.
    #[arg(long, value_parser = parse_duration)]
    timeout: Option<Duration>,
    /// Create the object if it does not exist (it is removed again on exit unless --keep).
    #[arg(long)]
    create: bool,
    /// Leave an object created by --create in place.
    #[arg(long)]
    keep: bool,
    /// How messages are printed: lines (one per line, the default), raw (bytes as they
    /// are), fixed:N (records, printed without trailing zero bytes), length (4-byte
    /// length prefix). On a byte stream address without framing= it is also the framing
    /// on the wire.
    #[arg(long)]
    framing: Option<String>,
}

fn parse_duration(s: &str) -> std::result::Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| !(c.is_ascii_digit() || c == '.')) {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let n: f64 =
        num.parse().map_err(|_| format!("`{s}` is not a duration such as 500ms, 5s or 1m"))?;
    let secs = match unit {
        "ns" => n / 1e9,
        "us" | "µs" => n / 1e6,
        "ms" => n / 1e3,
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(format!("unknown unit `{unit}` in `{s}`; use ms, s, m or h")),
    };
    if !secs.is_finite() || secs < 0.0 {
        return Err(format!("`{s}` is not a duration"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Whether the address is a byte stream whose wire framing `--framing` also sets.
fn apply_framing(address: &str, framing: Option<&str>) -> Result<String> {
    let addr = ipcx::Address::parse(address)?;
    let is_stream = matches!(
        addr.target(),
        ipcx::address::Target::Pipe(_)
            | ipcx::address::Target::Fifo(_)
            | ipcx::address::Target::Unix(ipcx::address::UnixKind::Stream, _)
            | ipcx::address::Target::Tcp(..)
    );
    match framing {
        Some(f) if is_stream && addr.param("framing").is_none() => {
            let mut a = addr;
            a.set_param("framing", f);
            Ok(ipcx::Address::parse(&a.to_string())?.to_string())
        }
        _ => Ok(address.to_owned()),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Send(a) => send(a),
        Command::Recv(a) => recv(a),
        Command::Demo { mechanism } => demo::run(&mechanism),
        Command::Bench(a) => bench::run(a),
        Command::BenchPeer(a) => bench::peer(a),
        Command::Ls(a) => ops::ls(a),
        Command::Rm(a) => ops::rm(a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if io::is_broken_stdout(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ipcx: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn send(a: SendArgs) -> Result<()> {
    use ipcx::Sender;
    let addr = a.address.as_str();
    let opts = ipcx::OpenOptions::new().create(a.create).keep(a.keep).open_timeout(a.timeout);
    let wait = ipcx::Wait::from_option(a.timeout);
    let mut tx = ipcx::open_sender_with(addr, &opts)?;
    if !a.messages.is_empty() {
        for m in &a.messages {
            tx.send_wait(m.as_bytes(), wait)?;
        }
        return Ok(());
    }
    let input_framing = a.framing.as_deref().unwrap_or("lines");
    let input_framing: Framing = input_framing.parse()?;
    let mut input = ipcx::open_receiver(&format!("pipe:stdin?framing={input_framing}"))
        .context("reading messages from standard input")?;
    let mut buf = Vec::new();
    loop {
        match ipcx::Receiver::recv_into(&mut input, &mut buf) {
            Ok(()) => tx.send_wait(&buf, wait)?,
            Err(e) if e.kind() == ErrorKind::Disconnected => return Ok(()),
            Err(e) => return Err(e).context("reading messages from standard input"),
        }
    }
}

fn recv(a: RecvArgs) -> Result<()> {
    use ipcx::Receiver;
    let addr = apply_framing(&a.address, a.framing.as_deref())?;
    let output: Framing = a.framing.as_deref().unwrap_or("lines").parse()?;
    let persist = a.count.is_some();
    let opts = ipcx::OpenOptions::new()
        .create(a.create)
        .keep(a.keep)
        .persist(persist)
        .open_timeout(a.timeout);
    let wait = ipcx::Wait::from_option(a.timeout);
    let mut rx = ipcx::open_receiver_with(&addr, &opts)?;
    let mut out = io::Output::new(output);
    let mut buf = Vec::new();
    let mut got = 0u64;
    while a.count.is_none_or(|c| got < c) {
        match rx.recv_wait(&mut buf, wait) {
            Ok(()) => {
                out.message(&buf, rx.last_label())?;
                got += 1;
            }
            Err(e) if e.kind() == ErrorKind::Disconnected && a.count.is_none() => break,
            Err(e) if e.kind() == ErrorKind::TimedOut => {
                let want = a.count.map(|c| format!(" of {c}")).unwrap_or_default();
                bail!("recv {}: timed out after {got}{want} message(s)", rx.address());
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("2").unwrap(), Duration::from_secs(2));
        assert_eq!(parse_duration("1m").unwrap(), Duration::from_secs(60));
        assert!(parse_duration("5 parsecs").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn framing_flag_sets_stream_framing_only() {
        assert_eq!(apply_framing("fifo:/x", Some("lines")).unwrap(), "fifo:/x?framing=lines");
        assert_eq!(
            apply_framing("fifo:/x?framing=raw", Some("lines")).unwrap(),
            "fifo:/x?framing=raw"
        );
        assert_eq!(apply_framing("posix-mq:/q", Some("raw")).unwrap(), "posix-mq:/q");
    }
}
