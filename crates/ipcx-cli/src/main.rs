//! `ipcx`: send, receive, demonstrate and benchmark every Unix IPC mechanism.

mod bench;
mod demo;
mod demo_mmap;
mod io;
mod ops;

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use io::err_line;
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
    /// Move messages from one address to another, keeping boundaries, until FROM ends.
    Relay(RelayArgs),
    /// Run both sides of a classic example and explain what happened.
    Demo {
        /// Which mechanism: pipe, fifo, mq, shm, socket or mmap.
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
    /// (internal) the watchdog of one benchmark measurement.
    #[command(hide = true)]
    BenchWatchdog(bench::WatchdogArgs),
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
    /// Create the object if it does not exist. A queue, ring or log made this way stays
    /// after send exits (it holds the messages); anything else is removed unless --keep.
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
    /// Print each System V message's type (`type=N` before the message; on standard
    /// error with --framing raw or length).
    #[arg(long)]
    show_type: bool,
    /// Print each POSIX message's priority (`priority=N`, placed as --show-type's).
    #[arg(long)]
    show_priority: bool,
    /// For a socket address: listen (bind) and serve any number of clients until killed
    /// or --count messages; without it, connect to a server as a client.
    #[arg(long)]
    listen: bool,
    /// With --listen on a Unix socket: serve only clients of this uid (repeatable); a
    /// refused client is closed unserved and logged on standard error.
    #[arg(long = "allow-uid", value_name = "UID")]
    allow_uid: Vec<u32>,
    /// mmap: logs: start at the oldest record (a named reader is rewound there).
    #[arg(long, conflicts_with = "from_end")]
    from_start: bool,
    /// mmap: logs: start at the end, showing only records appended from now on.
    #[arg(long)]
    from_end: bool,
    /// mmap: logs: read as the named reader NAME, whose position is kept in the log, so
    /// the next `recv --reader NAME` resumes after the last record printed.
    #[arg(long, value_name = "NAME")]
    reader: Option<String>,
    /// mmap: logs: at the end of the log, wait for more records (without it, recv stops
    /// at the end and exits 0).
    #[arg(long)]
    follow: bool,
    /// mmap: logs: skip damaged records instead of stopping at the first one.
    #[arg(long)]
    skip_corrupted: bool,
}

#[derive(clap::Args, Debug)]
struct RelayArgs {
    /// Where messages come from. A socket address listens (serving its clients).
    from: String,
    /// Where they go. A socket address connects to a server.
    to: String,
    /// Create FROM if it is a FIFO, queue or ring that does not exist (removed on exit).
    #[arg(long)]
    create: bool,
    /// Keep going when FROM's peers leave (a FIFO's writers, a listener's clients).
    #[arg(long)]
    persist: bool,
    /// How long to wait for TO's peer to be there (default 10s).
    #[arg(long, value_parser = parse_duration)]
    timeout: Option<Duration>,
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

/// Set once a termination signal came: the command's own error (its object removed under
/// it) is not reported; the process dies of the signal instead.
static TERMINATING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// For a command that may create objects: on Ctrl-C, `kill` or a closed terminal, remove
/// what this process created (and would remove on exit), then die of the signal as
/// before. One thread takes the signals; starting it makes the process multi-threaded, so
/// only commands that create objects do.
fn remove_created_objects_on_termination() -> Result<()> {
    // (The removal makes the command's own calls fail; `main` then waits to be ended.)
    ipcx::sys::terminate::block_termination()
        .map_err(|e| anyhow::anyhow!("blocking termination signals: errno {}", e.0))?;
    std::thread::Builder::new()
        .name("termination".into())
        .spawn(|| {
            if let Ok(sig) = ipcx::sys::terminate::wait_termination() {
                TERMINATING.store(true, std::sync::atomic::Ordering::SeqCst);
                ops::remove_own_objects();
                ipcx::sys::terminate::die_of(sig);
            }
        })
        .context("starting the thread that cleans up on Ctrl-C")?;
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let creates = match &cli.command {
        Command::Send(a) => a.create,
        Command::Recv(a) => a.create || a.listen,
        Command::Relay(a) => a.create || is_socket(&a.from).unwrap_or(false),
        _ => false,
    };
    if creates {
        if let Err(e) = remove_created_objects_on_termination() {
            err_line(format_args!("ipcx: {e:#}"));
            return ExitCode::FAILURE;
        }
    }
    let result = match cli.command {
        Command::Send(a) => send(a),
        Command::Recv(a) => recv(a),
        Command::Relay(a) => relay(a),
        Command::Demo { mechanism } => demo::run(&mechanism),
        Command::Bench(a) => bench::run(a),
        Command::BenchPeer(a) => bench::peer(a),
        Command::BenchWatchdog(a) => bench::watchdog(a),
        Command::Ls(a) => ops::ls(a),
        Command::Rm(a) => ops::rm(a),
    };
    while TERMINATING.load(std::sync::atomic::Ordering::SeqCst) {
        std::thread::park(); // the termination thread ends the process
    }
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if io::is_broken_stdout(&e) => ExitCode::SUCCESS,
        Err(e) => {
            err_line(format_args!("ipcx: {e:#}"));
            ExitCode::FAILURE
        }
    }
}

fn send(a: SendArgs) -> Result<()> {
    use ipcx::Sender;
    let addr = a.address.as_str();
    // Removing a queue, ring or log send made would take the messages just sent with it.
    let keep = a.keep || (a.create && holds_messages(addr)?);
    let opts = ipcx::OpenOptions::new().create(a.create).keep(keep).open_timeout(a.timeout);
    let wait = ipcx::Wait::from_option(a.timeout);
    let mut tx = ipcx::open_sender_with(addr, &opts)?;
    if !a.messages.is_empty() {
        let n = a.messages.len();
        for (i, m) in a.messages.iter().enumerate() {
            tx.send_wait(m.as_bytes(), wait).with_context(|| {
                let rest = if i + 1 < n { "; the ones after it were not sent" } else { "" };
                format!("message {} of {n} not sent ({i} sent before it{rest})", i + 1)
            })?;
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

/// Whether the object keeps messages after their sender leaves (a queue, a ring, a log),
/// so that removing it would drop messages no receiver has taken yet.
fn holds_messages(addr: &str) -> Result<bool> {
    Ok(matches!(
        ipcx::Address::parse(addr)?.scheme(),
        "sysv-mq" | "posix-mq" | "shm" | "sysv-shm" | "mmap"
    ))
}

/// Whether a receive error only says that bytes were dropped, the receiver still in step:
/// `Incomplete`, or, from a FIFO reader that outlives its writers, a bad frame, which it
/// drops once that frame's writers have left. The command warns and goes on.
fn dropped_and_going_on(e: &ipcx::Error, persistent_fifo: bool) -> bool {
    e.kind() == ErrorKind::Incomplete || (persistent_fifo && e.kind() == ErrorKind::TooLarge)
}

/// Turn recv's log flags into `mmap:` address options; refuse them for other addresses.
fn apply_log_flags(address: &str, a: &RecvArgs) -> Result<(String, bool)> {
    let mut addr = ipcx::Address::parse(address)?;
    let is_log = matches!(addr.target(), ipcx::address::Target::Mmap(_));
    let any = a.from_start || a.from_end || a.reader.is_some() || a.follow || a.skip_corrupted;
    if !is_log {
        if any {
            bail!("--from-start, --from-end, --reader, --follow and --skip-corrupted are for mmap: logs");
        }
        return Ok((address.to_owned(), false));
    }
    if let Some(r) = &a.reader {
        addr.set_param("reader", r.as_str());
    }
    if a.from_start {
        addr.set_param("from", "start");
    }
    if a.from_end {
        addr.set_param("from", "end");
    }
    if a.skip_corrupted {
        addr.set_param("skip", "corrupted");
    }
    Ok((ipcx::Address::parse(&addr.to_string())?.to_string(), !a.follow))
}

fn recv(a: RecvArgs) -> Result<()> {
    use ipcx::Receiver;
    let addr = apply_framing(&a.address, a.framing.as_deref())?;
    let (mut addr, stop_at_end) = apply_log_flags(&addr, &a)?;
    if !a.allow_uid.is_empty() {
        addr = with_allow_uids(&addr, &a.allow_uid, a.listen)?;
    }
    let output: Framing = a.framing.as_deref().unwrap_or("lines").parse()?;
    let persist = a.count.is_some() || a.listen;
    let opts = ipcx::OpenOptions::new()
        .create(a.create || a.listen)
        .keep(a.keep)
        .persist(persist)
        .open_timeout(a.timeout);
    let wait = if stop_at_end { ipcx::Wait::Never } else { ipcx::Wait::from_option(a.timeout) };
    let parsed = ipcx::Address::parse(&addr)?;
    let scheme = parsed.scheme();
    if a.show_type && scheme != "sysv-mq" {
        bail!("--show-type is for System V queues (sysv-mq:), not {scheme}: addresses");
    }
    if a.show_priority && scheme != "posix-mq" {
        bail!("--show-priority is for POSIX queues (posix-mq:), not {scheme}: addresses");
    }
    let mut rx = ipcx::open_receiver_with(&addr, &opts)?;
    if let ipcx::address::Target::Tcp(_, 0) = parsed.target() {
        // Port 0: the kernel picked one, which clients need to know.
        err_line(format_args!("ipcx recv: listening on {}", rx.address()));
    }
    let mut out = io::Output::new(output);
    let mut buf = Vec::new();
    let mut got = 0u64;
    while a.count.is_none_or(|c| got < c) {
        match rx.recv_wait(&mut buf, wait) {
            Ok(()) => {
                let label = rx.last_label().filter(|l| match l {
                    ipcx::Label::Type(_) => a.show_type,
                    ipcx::Label::Priority(_) => a.show_priority,
                    _ => false,
                });
                out.message(&buf, label)?;
                got += 1;
            }
            Err(e) if e.kind() == ErrorKind::Disconnected && a.count.is_none() => break,
            Err(e) if dropped_and_going_on(&e, persist && scheme == "fifo") => {
                err_line(format_args!("ipcx recv: {e}"))
            }
            // A log without --follow: its end is the end of the output.
            Err(e) if e.kind() == ErrorKind::WouldBlock && stop_at_end => break,
            Err(e) if e.kind() == ErrorKind::TimedOut => {
                let want = a.count.map(|c| format!(" of {c}")).unwrap_or_default();
                bail!("recv {}: timed out after {got}{want} message(s)", rx.address());
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// `--allow-uid` as the address's `allow_uid=` option (a server's allow list).
fn with_allow_uids(address: &str, uids: &[u32], listen: bool) -> Result<String> {
    let mut addr = ipcx::Address::parse(address)?;
    if !listen {
        bail!("--allow-uid restricts the clients of a server: add --listen");
    }
    let list = uids.iter().map(u32::to_string).collect::<Vec<_>>().join(",");
    addr.set_param("allow_uid", list);
    Ok(ipcx::Address::parse(&addr.to_string())?.to_string())
}

fn is_socket(addr: &str) -> Result<bool> {
    Ok(matches!(
        ipcx::Address::parse(addr)?.target(),
        ipcx::address::Target::Unix(..) | ipcx::address::Target::Tcp(..)
    ))
}

fn relay(a: RelayArgs) -> Result<()> {
    use ipcx::{Receiver, Sender};
    // A socket FROM listens: the relay is the server its clients send to.
    // The destination first: a source opened (or created) before it could take messages
    // that then have nowhere to go if the destination cannot be reached.
    let to_opts =
        ipcx::OpenOptions::new().open_timeout(Some(a.timeout.unwrap_or(Duration::from_secs(10))));
    let mut tx = ipcx::open_sender_with(&a.to, &to_opts).map_err(|e| {
        // The library's hint says --create, which relay applies to FROM only.
        let hint = if e.kind() == ErrorKind::NotFound {
            format!(" (relay's --create makes FROM only; make TO first, e.g. ipcx recv {} --create, or start its receiver)", a.to)
        } else {
            String::new()
        };
        anyhow::Error::new(e).context(format!("opening {} to relay to{hint}", a.to))
    })?;
    let from_opts =
        ipcx::OpenOptions::new().create(a.create || is_socket(&a.from)?).persist(a.persist);
    let mut rx = ipcx::open_receiver_with(&a.from, &from_opts)
        .with_context(|| format!("opening {} to relay from", a.from))?;
    let from_fifo = ipcx::Address::parse(&a.from)?.scheme() == "fifo";
    let mut buf = Vec::new();
    let mut moved = 0u64;
    loop {
        match rx.recv_into(&mut buf) {
            Ok(()) => {
                tx.send(&buf).with_context(|| {
                    format!(
                        "after {moved} message(s) moved; message {} ({} bytes), already taken from {}, was not delivered",
                        moved + 1,
                        buf.len(),
                        a.from
                    )
                })?;
                moved += 1;
            }
            Err(e) if dropped_and_going_on(&e, a.persist && from_fifo) => {
                err_line(format_args!("ipcx relay: {e}"))
            }
            Err(e) if e.kind() == ErrorKind::Disconnected => {
                err_line(format_args!(
                    "ipcx relay: {} ended; {moved} message(s) sent to {}",
                    a.from, a.to
                ));
                return Ok(());
            }
            Err(e) => return Err(e).context(format!("after {moved} message(s)")),
        }
    }
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
