//! Printing helpers shared by the commands: times, aligned tables, JSON, broken pipes.

use std::io::{self, Write};
use std::time::{SystemTime, UNIX_EPOCH};

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

/// `2026-11-22T11:21:23Z` for a time at or after 1970.
pub fn rfc3339(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (proleptic Gregorian calendar).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn rfc3339_formats_utc() {
        let at = |s| rfc3339(UNIX_EPOCH + Duration::from_secs(s));
        assert_eq!(at(0), "1970-01-01T00:00:00Z");
        assert_eq!(at(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(at(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(at(4_102_444_799), "2099-12-31T23:59:59Z");
    }
}
