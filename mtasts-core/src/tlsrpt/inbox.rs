//! Reading the reports a domain receives (issue 15 item 7): a file's bytes are JSON, gzip,
//! or a whole mail message with the report attached (RFC 8460 §5.2, §5.3); which one is
//! decided from the bytes, not from the file name.

use std::io::Read;
use std::path::Path;

use serde_json::Value;

use super::gzip::{MAX_REPORT_SIZE, gunzip};
use super::mime;
use super::report::{Report, ReportError};

/// The largest file [`read_report_file`] reads: 64 MiB. A mail message carries the report
/// base64-encoded (a third larger), with headers and a text part; four times
/// [`MAX_REPORT_SIZE`] is ample for any report mtasts would accept.
pub const MAX_REPORT_FILE_SIZE: u64 = 4 * MAX_REPORT_SIZE;

/// The form a received report came in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ReportFormat {
    /// The JSON of RFC 8460 §4.4 (`application/tlsrpt+json`, a `.json` file).
    Json,
    /// Gzip-compressed JSON (`application/tlsrpt+gzip`, a `.json.gz` file, the HTTPS body).
    Gzip,
    /// A mail message (`.eml`) with the report attached as `application/tlsrpt+gzip`.
    MailGzip,
    /// A mail message with the report attached as `application/tlsrpt+json`.
    MailJson,
}

impl ReportFormat {
    /// A short stable name: `json`, `gzip`, `mail+gzip`, `mail+json`.
    pub fn as_str(self) -> &'static str {
        match self {
            ReportFormat::Json => "json",
            ReportFormat::Gzip => "gzip",
            ReportFormat::MailGzip => "mail+gzip",
            ReportFormat::MailJson => "mail+json",
        }
    }
}

/// A report as read from what was received, with the form it came in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReceivedReport {
    /// The form of the input.
    pub format: ReportFormat,
    /// The report.
    pub report: Report,
}

/// Reads a received report from the bytes of a file or an HTTPS body: JSON, gzip, or a mail
/// message, told apart by their first bytes (the gzip magic `1f 8b`; `{` after optional
/// whitespace and a UTF-8 byte order mark; otherwise a header field line, or an mbox
/// `From ` line, for a message). Decompressed and decoded reports are capped at
/// [`MAX_REPORT_SIZE`].
///
/// # Errors
/// A [`ReportError`]: for the content, naming the field ([`Report::from_json`]); for the
/// container, [`ReportError::Gzip`], [`ReportError::TooLarge`], [`ReportError::Mail`] or
/// [`ReportError::NotJson`].
pub fn read_report(bytes: &[u8]) -> Result<ReceivedReport, ReportError> {
    let received = |format, json: &[u8]| -> Result<ReceivedReport, ReportError> {
        Ok(ReceivedReport {
            format,
            report: parse_json(json)?,
        })
    };
    if bytes.starts_with(&[0x1f, 0x8b]) {
        return received(ReportFormat::Gzip, &gunzip(bytes, MAX_REPORT_SIZE)?);
    }
    let text = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    match text.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{' | b'[') => return received(ReportFormat::Json, bytes),
        None => {
            return Err(ReportError::NotJson {
                reason: "the input is empty".into(),
            });
        }
        Some(_) => {}
    }
    if !looks_like_mail(text) {
        return Err(ReportError::NotJson {
            reason: "the input is neither JSON, gzip nor a mail message".into(),
        });
    }
    // An mbox file's first line (`From sender date`) is not a header field.
    let message = match text.strip_prefix(b"From ") {
        Some(_) => text
            .iter()
            .position(|&b| b == b'\n')
            .map_or(&[][..], |i| &text[i + 1..]),
        None => text,
    };
    let attachment = mime::find_report(message)?;
    if attachment.gzip {
        received(
            ReportFormat::MailGzip,
            &gunzip(&attachment.bytes, MAX_REPORT_SIZE)?,
        )
    } else if attachment.bytes.len() as u64 > MAX_REPORT_SIZE {
        Err(ReportError::TooLarge {
            limit: MAX_REPORT_SIZE,
        })
    } else {
        received(ReportFormat::MailJson, &attachment.bytes)
    }
}

/// True when the first line is an mbox `From ` line or a header field (`Name: value`, the
/// name printable ASCII without `:`, RFC 5322 §2.2).
fn looks_like_mail(text: &[u8]) -> bool {
    if text.starts_with(b"From ") {
        return true;
    }
    let line = text.split(|&b| b == b'\n').next().unwrap_or_default();
    match line.iter().position(|&b| b == b':') {
        Some(colon) if colon > 0 => line[..colon]
            .iter()
            .all(|&b| b.is_ascii_graphic() && b != b':'),
        _ => false,
    }
}

/// Parses report JSON (RFC 8259, UTF-8) and reads it with [`Report::from_json`].
///
/// # Errors
/// [`ReportError::NotJson`] with the parser's line and column, or the error of
/// [`Report::from_json`].
pub fn parse_json(bytes: &[u8]) -> Result<Report, ReportError> {
    let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    let value: Value = serde_json::from_slice(bytes).map_err(|e| ReportError::NotJson {
        reason: e.to_string(),
    })?;
    Report::from_json(&value)
}

/// Reads the file at `path` (at most [`MAX_REPORT_FILE_SIZE`] bytes) with [`read_report`].
///
/// # Errors
/// [`ReportError::Io`] if it cannot be read, [`ReportError::TooLarge`] if it is larger than
/// [`MAX_REPORT_FILE_SIZE`], else those of [`read_report`].
pub fn read_report_file(path: &Path) -> Result<ReceivedReport, ReportError> {
    let io = |e: std::io::Error| ReportError::Io {
        reason: e.to_string(),
    };
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .map_err(io)?
        .take(MAX_REPORT_FILE_SIZE + 1)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if bytes.len() as u64 > MAX_REPORT_FILE_SIZE {
        return Err(ReportError::TooLarge {
            limit: MAX_REPORT_FILE_SIZE,
        });
    }
    read_report(&bytes)
}

#[cfg(test)]
mod tests {
    use super::super::gzip::gzip;
    use super::*;

    const MINIMAL: &str = r#"{"organization-name": "o", "date-range": {"start-datetime":
        "2026-12-01T00:00:00Z", "end-datetime": "2026-12-01T23:59:59Z"}, "report-id": "r",
        "policies": []}"#;

    #[test]
    fn the_format_is_told_from_the_bytes() {
        assert_eq!(
            read_report(MINIMAL.as_bytes()).unwrap().format,
            ReportFormat::Json
        );
        let bom = [b"\xef\xbb\xbf \n".as_slice(), MINIMAL.as_bytes()].concat();
        assert_eq!(read_report(&bom).unwrap().format, ReportFormat::Json);
        assert_eq!(
            read_report(&gzip(MINIMAL.as_bytes())).unwrap().format,
            ReportFormat::Gzip
        );
        let mail = format!(
            "From sender@example Mon Dec  2 00:00:00 2026\nSubject: r\nContent-Type: application/tlsrpt+json\n\n{MINIMAL}"
        );
        assert_eq!(
            read_report(mail.as_bytes()).unwrap().format,
            ReportFormat::MailJson
        );
    }

    #[test]
    fn what_is_not_a_report_says_so() {
        for input in [&b""[..], b"   \n", b"hello world", b"<xml/>"] {
            assert!(
                matches!(read_report(input), Err(ReportError::NotJson { .. })),
                "{input:?}"
            );
        }
        let err = read_report(b"{\"organization-name\": ").unwrap_err();
        assert!(matches!(err, ReportError::NotJson { .. }), "{err}");
        assert!(err.to_string().contains("line 1"), "{err}");
        assert_eq!(
            read_report(b"[1, 2]").unwrap_err(),
            ReportError::WrongType {
                field: "(the report)".into(),
                expected: "an object"
            }
        );
        assert!(matches!(
            read_report(b"Subject: no report\n\njust text"),
            Err(ReportError::Mail { .. })
        ));
    }
}
