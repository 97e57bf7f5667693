//! Printing received messages and reports, and telling a closed standard output from a
//! real error.

use std::io::{self, Write};

use anyhow::Result;
use ipcx::{Framing, Label};

/// Writes messages to standard output in the chosen format.
pub struct Output {
    format: Framing,
    out: io::BufWriter<Stdout>,
}

impl Output {
    pub fn new(format: Framing) -> Output {
        Output { format, out: io::BufWriter::new(stdout()) }
    }

    /// Print one message (and its type or priority, where the mechanism has one), then
    /// flush, so that a reader at a terminal or in a pipeline sees it at once.
    pub fn message(&mut self, msg: &[u8], label: Option<Label>) -> Result<()> {
        let label = label.map(|l| match l {
            Label::Type(t) => format!("type={t}"),
            Label::Priority(p) => format!("priority={p}"),
            _ => String::new(),
        });
        match self.format {
            Framing::Lines => {
                if let Some(l) = &label {
                    write!(self.out, "{l}\t")?;
                }
                self.out.write_all(msg)?;
                self.out.write_all(b"\n")?;
            }
            Framing::Fixed(_) => {
                if let Some(l) = &label {
                    write!(self.out, "{l}\t")?;
                }
                let end = msg.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
                self.out.write_all(&msg[..end])?;
                self.out.write_all(b"\n")?;
            }
            Framing::Raw | Framing::Length { .. } => {
                // Binary output stays clean: the label goes to standard error.
                if let Some(l) = &label {
                    eprintln!("{l}");
                }
                if matches!(self.format, Framing::Length { .. }) {
                    self.out.write_all(&(msg.len() as u32).to_le_bytes())?;
                }
                self.out.write_all(msg)?;
            }
        }
        self.out.flush()?;
        Ok(())
    }
}

/// Standard output, whose write errors say that they are standard output's and keep their
/// kind: `writeln!(out, ...)?` ends a command with "writing to standard output: No space
/// left on device" instead of the panic of `println!`, and a reader that closed the pipe
/// (`ipcx ... | head -1`) stays a `BrokenPipe` that [`is_broken_stdout`] recognises.
pub struct Stdout(io::StdoutLock<'static>);

/// Standard output, locked for this thread (line buffered, as `println!` writes it).
pub fn stdout() -> Stdout {
    Stdout(io::stdout().lock())
}

fn on_stdout(e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("writing to standard output: {e}"))
}

impl Write for Stdout {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf).map_err(on_stdout)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush().map_err(on_stdout)
    }
}

/// A line on standard error; a failure to write it (a full or closed stderr) is ignored:
/// there is nowhere left to report it, and the exit status still tells.
pub fn err_line(line: std::fmt::Arguments<'_>) {
    let _ = writeln!(io::stderr(), "{line}");
}

/// Whether the error is standard output closed by its reader (`ipcx recv ... | head`):
/// that ends the program quietly, as it does for `cat`.
pub fn is_broken_stdout(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<io::Error>().is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
    })
}
