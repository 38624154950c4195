//! Printing helpers shared by the commands: times, aligned tables, JSON, broken pipes.

use std::io::{self, Write};

use serde::Serialize;

/// Writes `render`'s output to stdout; a closed pipe (`mtasts ... | head`) is not an error.
/// Returns false if writing failed for another reason (reported on stderr).
pub fn to_stdout(render: impl FnOnce(&mut dyn Write) -> io::Result<()>) -> bool {
    let mut out = io::stdout().lock();
    match render(&mut out).and_then(|()| out.flush()) {
        Ok(()) => true,
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => true,
        Err(e) => {
            eprintln!("mtasts: writing the output failed: {e}");
            false
        }
    }
}

/// Pretty JSON followed by a newline.
pub fn json(out: &mut dyn Write, value: &impl Serialize) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, value).map_err(io::Error::other)?;
    writeln!(out)
}

/// One JSON object on one line (`--json-lines`).
pub fn json_line(out: &mut dyn Write, value: &impl Serialize) -> io::Result<()> {
    serde_json::to_writer(&mut *out, value).map_err(io::Error::other)?;
    writeln!(out)
}

/// A table with left-aligned columns separated by two spaces; the last column is not padded.
pub fn table<const N: usize>(
    out: &mut dyn Write,
    header: [&str; N],
    rows: &[[String; N]],
    mut after_row: impl FnMut(&mut dyn Write, usize) -> io::Result<()>,
) -> io::Result<()> {
    let mut widths = header.map(str::len);
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |out: &mut dyn Write, cells: [&str; N]| -> io::Result<()> {
        for (i, cell) in cells.iter().enumerate() {
            if i + 1 == N {
                writeln!(out, "{cell}")?;
            } else {
                write!(out, "{cell:<w$}  ", w = widths[i])?;
            }
        }
        Ok(())
    };
    line(out, header)?;
    for (i, row) in rows.iter().enumerate() {
        line(out, row.each_ref().map(String::as_str))?;
        after_row(out, i)?;
    }
    Ok(())
}
