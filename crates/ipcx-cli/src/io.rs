//! Printing received messages, and telling a closed standard output from a real error.

use std::io::{self, Write};

use anyhow::Result;
use ipcx::{Framing, Label};

/// Writes messages to standard output in the chosen format.
pub struct Output {
    format: Framing,
    out: io::BufWriter<io::Stdout>,
}

impl Output {
    pub fn new(format: Framing) -> Output {
        Output { format, out: io::BufWriter::new(io::stdout()) }
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

/// Whether the error is standard output closed by its reader (`ipcx recv ... | head`):
/// that ends the program quietly, as it does for `cat`.
pub fn is_broken_stdout(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<io::Error>().is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
    })
}
