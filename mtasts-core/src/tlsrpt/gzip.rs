//! Compression of reports (RFC 8460 §5.2, R-RPT-7): gzip out; gzip in with a cap on the
//! decompressed size; and the report's file name (RFC 8460 §5.1).

use std::io::{Read, Write};
use std::time::UNIX_EPOCH;

use flate2::Compression;
use flate2::read::MultiGzDecoder;
use flate2::write::GzEncoder;

use super::report::{Report, ReportError};

/// The largest report mtasts reads: 16 MiB of JSON once decompressed.
///
/// A daily aggregate report holds counters and distinct failure tuples (R-RPT-4), so even a
/// large sender's is a few hundred kilobytes; 16 MiB leaves a wide margin. The cap is what
/// makes a decompression bomb (a few kilobytes of gzip that inflate to gigabytes) harmless:
/// decompression stops at the cap with [`ReportError::TooLarge`], so at most this much memory
/// is used, whatever the input claims.
pub const MAX_REPORT_SIZE: u64 = 16 * 1024 * 1024;

/// `data` gzip-compressed (RFC 1952), as reports are sent (RFC 8460 §5.2).
pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::with_capacity(data.len() / 4 + 64), Compression::best());
    // Invariant: the encoder writes into a Vec, which never fails, and deflate itself has no
    // failure mode; so neither call returns an error and nothing is lost here.
    let _ = encoder.write_all(data);
    encoder.finish().unwrap_or_default()
}

/// Decompresses a gzip stream (several concatenated members are one stream, RFC 1952 §2.2),
/// reading at most `limit` bytes of output.
///
/// # Errors
/// [`ReportError::Gzip`] for a damaged or truncated stream, [`ReportError::TooLarge`] when
/// the output would exceed `limit` bytes (nothing beyond `limit + 1` bytes is ever held).
pub fn gunzip(data: &[u8], limit: u64) -> Result<Vec<u8>, ReportError> {
    let mut out = Vec::new();
    MultiGzDecoder::new(data)
        .take(limit.saturating_add(1))
        .read_to_end(&mut out)
        .map_err(|e| ReportError::Gzip {
            reason: match e.kind() {
                std::io::ErrorKind::UnexpectedEof => "the stream ends early (truncated)".into(),
                _ => e.to_string(),
            },
        })?;
    if out.len() as u64 > limit {
        return Err(ReportError::TooLarge { limit });
    }
    Ok(out)
}

/// The file name of a report (RFC 8460 §5.1, R-RPT-7):
/// `submitter!policy-domain!begin!end!id.json.gz`, with `begin` and `end` in Unix seconds.
///
/// The RFC's `unique-id` is `1*(ALPHA / DIGIT)`, so every other character of `report_id` is
/// left out (`2026-12-01.example.com.1` gives `20261201examplecom1`); an id with none left is
/// omitted with its `!`, as the RFC allows. The domains are written in lowercase.
///
/// ```rust
/// assert_eq!(
///     mtasts_core::report_file_name("mail.sender.example", "example.com", 1480550400, 1480636799, "a1"),
///     "mail.sender.example!example.com!1480550400!1480636799!a1.json.gz"
/// );
/// ```
pub fn report_file_name(
    submitter: &str,
    policy_domain: &str,
    begin: u64,
    end: u64,
    report_id: &str,
) -> String {
    let id: String = report_id
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect();
    let submitter = submitter.to_ascii_lowercase();
    let domain = policy_domain.to_ascii_lowercase();
    if id.is_empty() {
        format!("{submitter}!{domain}!{begin}!{end}.json.gz")
    } else {
        format!("{submitter}!{domain}!{begin}!{end}!{id}.json.gz")
    }
}

impl Report {
    /// The report's JSON ([`Report::to_json`]) gzip-compressed: the body that is POSTed or
    /// attached (R-RPT-7, R-RPT-8, R-RPT-9).
    pub fn to_gzip(&self) -> Vec<u8> {
        gzip(self.to_json().to_string().as_bytes())
    }

    /// The report's file name ([`report_file_name`]) for `submitter`: its date range in Unix
    /// seconds and the policy domain of its first policy.
    ///
    /// # Errors
    /// [`ReportError::BadValue`] if a date-time of the range is not RFC 3339,
    /// [`ReportError::Missing`] if the report has no policy.
    pub fn file_name(&self, submitter: &str) -> Result<String, ReportError> {
        let seconds = |value: &str, field: &str| -> Result<u64, ReportError> {
            crate::clock::parse_time(value)
                .ok()
                .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                .map(|d| d.as_secs())
                .ok_or_else(|| ReportError::BadValue {
                    field: field.into(),
                    reason: format!("{value:?} is not an RFC 3339 date-time"),
                })
        };
        let begin = seconds(&self.start_datetime, "date-range.start-datetime")?;
        let end = seconds(&self.end_datetime, "date-range.end-datetime")?;
        let domain = self
            .policies
            .first()
            .map(|p| p.policy.policy_domain.as_str())
            .ok_or_else(|| ReportError::Missing {
                field: "policies[0].policy.policy-domain".into(),
            })?;
        Ok(report_file_name(
            submitter,
            domain,
            begin,
            end,
            &self.report_id,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gzip_round_trips_and_is_gzip() {
        let data = b"{\"organization-name\": \"x\"}".repeat(100);
        let packed = gzip(&data);
        assert_eq!(&packed[..2], &[0x1f, 0x8b], "the gzip magic bytes");
        assert!(packed.len() < data.len() / 4);
        assert_eq!(gunzip(&packed, MAX_REPORT_SIZE).unwrap(), data);
        let mut two = packed.clone();
        two.extend_from_slice(&gzip(b"more"));
        let mut both = data.clone();
        both.extend_from_slice(b"more");
        assert_eq!(gunzip(&two, MAX_REPORT_SIZE).unwrap(), both, "two members");
    }

    #[test]
    fn damaged_gzip_is_a_typed_error() {
        let packed = gzip(&b"0123456789".repeat(1000));
        for cut in [5, 12, packed.len() / 2, packed.len() - 4] {
            assert!(
                matches!(
                    gunzip(&packed[..cut], MAX_REPORT_SIZE),
                    Err(ReportError::Gzip { .. })
                ),
                "cut at {cut}"
            );
        }
        let mut flipped = packed.clone();
        let at = flipped.len() - 6;
        flipped[at] ^= 0xff;
        assert!(matches!(
            gunzip(&flipped, MAX_REPORT_SIZE),
            Err(ReportError::Gzip { .. })
        ));
        assert!(matches!(
            gunzip(b"\x1f\x8bnot really", MAX_REPORT_SIZE),
            Err(ReportError::Gzip { .. })
        ));
    }

    #[test]
    fn a_decompression_bomb_stops_at_the_cap() {
        // 64 MiB of zeros compress to about 64 KiB; read with the 16 MiB cap.
        let mut encoder = GzEncoder::new(Vec::new(), Compression::best());
        let zeros = vec![0u8; 1024 * 1024];
        for _ in 0..64 {
            encoder.write_all(&zeros).unwrap();
        }
        let bomb = encoder.finish().unwrap();
        assert!(bomb.len() < 128 * 1024, "{} bytes", bomb.len());
        assert_eq!(
            gunzip(&bomb, MAX_REPORT_SIZE),
            Err(ReportError::TooLarge {
                limit: MAX_REPORT_SIZE
            })
        );
        assert_eq!(
            gunzip(&gzip(&[0; 11]), 10),
            Err(ReportError::TooLarge { limit: 10 })
        );
        assert_eq!(
            gunzip(&gzip(&[0; 10]), 10).unwrap(),
            [0; 10],
            "exactly the cap"
        );
    }

    #[test]
    fn r_rpt_7_file_names() {
        assert_eq!(
            report_file_name(
                "Mail.Sender.Example",
                "Example.COM",
                1,
                2,
                "2026-12-01.example.com.1"
            ),
            "mail.sender.example!example.com!1!2!20261201examplecom1.json.gz"
        );
        assert_eq!(
            report_file_name("s.example", "d.example", 1, 2, "--"),
            "s.example!d.example!1!2.json.gz",
            "no id left: omitted"
        );
    }
}
