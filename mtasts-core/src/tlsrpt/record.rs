//! The TLS-RPT record (RFC 8460 §3): `v=TLSRPTv1; rua=<uri>,<uri>…` at `_smtp._tls.<domain>`
//! (R-RPT-1, R-RPT-2).

use std::fmt;

use crate::dns::{DnsAnswer, DnsResolver};
use crate::domain::Domain;
use crate::error::Result;

/// The version tag every TLS-RPT record starts with.
pub const TLSRPT_VERSION: &str = "v=TLSRPTv1";

/// Where reports go: one `rua` URI that mtasts can deliver to.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ReportUri {
    /// `mailto:ADDRESS[!SIZE]`: a report message to this address, at most `max_size` bytes
    /// when the URI gives a limit.
    Mailto {
        /// The address, %-decoded.
        address: String,
        /// The size limit in bytes (`!10m` is 10 × 2²⁰), if any.
        max_size: Option<u64>,
    },
    /// `https://…`: the report POSTed there (R-RPT-8).
    Https {
        /// The URL as published (its `%2C`, `%21`, `%3B` kept).
        url: String,
    },
}

impl fmt::Display for ReportUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReportUri::Mailto {
                address,
                max_size: Some(size),
            } => write!(f, "mailto:{address}!{size}"),
            ReportUri::Mailto { address, .. } => write!(f, "mailto:{address}"),
            ReportUri::Https { url } => f.write_str(url),
        }
    }
}

/// A parsed TLS-RPT record.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct TlsRptRecord {
    /// The URIs reports go to, in the record's order, each once; those with other schemes,
    /// and those that cannot be used, are left out (R-RPT-2).
    pub rua: Vec<ReportUri>,
    /// The `rua` URIs left out, as written: for their scheme, or followed by why they cannot
    /// be used (e.g. `mailto:nobody (... not an address)`), for diagnosis.
    pub skipped: Vec<String>,
    /// Extension fields (`name=value`), in order.
    pub extensions: Vec<(String, String)>,
    /// The record's text, as published (what groups reports: R-RPT-6 one report per record).
    pub text: String,
}

/// What the `_smtp._tls` TXT RRset says for a domain.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReportRecordAnswer {
    /// Exactly one valid record with at least one usable URI: the domain wants reports.
    Found(TlsRptRecord),
    /// No reports: no record (NXDOMAIN, NODATA, no `v=TLSRPTv1` RR), more than one, an
    /// invalid one, or one without a usable URI. The reason, except for plain absence.
    NoReports {
        /// Why not, when a record was there.
        reason: Option<String>,
        /// The TTL of the answer, for caching it (seconds), when known.
        ttl: Option<u32>,
    },
}

/// R-RPT-1: an RR counts as a TLS-RPT record when it starts with `v=TLSRPTv1` followed by SP,
/// HTAB or `;`.
fn is_tlsrpt_record(rr: &[u8]) -> bool {
    rr.strip_prefix(TLSRPT_VERSION.as_bytes())
        .is_some_and(|rest| matches!(rest.first(), Some(b' ' | b'\t' | b';')))
}

/// R-RPT-1: the record among the TXT RRs of `_smtp._tls.<domain>` (each RR's strings
/// already concatenated): exactly one, valid, with a usable `rua` URI, or no reports.
pub fn select_report_record<T: AsRef<[u8]>>(rrs: &[T], ttl: Option<u32>) -> ReportRecordAnswer {
    let no = |reason: Option<String>| ReportRecordAnswer::NoReports { reason, ttl };
    let found: Vec<&[u8]> = rrs
        .iter()
        .map(AsRef::as_ref)
        .filter(|rr| is_tlsrpt_record(rr))
        .collect();
    match found.as_slice() {
        [] => no(None),
        [one] => match std::str::from_utf8(one) {
            Err(_) => no(Some("the TLS-RPT record is not ASCII text".into())),
            Ok(text) => match parse_report_record(text) {
                Ok(record) if record.rua.is_empty() => no(Some(format!(
                    "the TLS-RPT record has no mailto: or https: URI (skipped: {})",
                    record.skipped.join(", ")
                ))),
                Ok(record) => ReportRecordAnswer::Found(record),
                Err(why) => no(Some(format!("invalid TLS-RPT record: {why}"))),
            },
        },
        many => no(Some(format!(
            "{} TLS-RPT records; RFC 8460 §3 requires exactly one",
            many.len()
        ))),
    }
}

fn is_wsp(c: char) -> bool {
    c == ' ' || c == '\t'
}

/// Parses one record (RFC 8460 §3 grammar):
/// `v=TLSRPTv1 1*(field-delim field) [field-delim]`, `field-delim = *WSP ";" *WSP`,
/// `rua=uri *(*WSP "," *WSP uri)` (required, once), extensions `name=value`.
///
/// # Errors
/// The reason, for text that does not follow the grammar.
pub fn parse_report_record(text: &str) -> std::result::Result<TlsRptRecord, String> {
    let Some(rest) = text.strip_prefix(TLSRPT_VERSION) else {
        return Err(format!("does not start with {TLSRPT_VERSION}"));
    };
    let mut record = TlsRptRecord {
        rua: Vec::new(),
        skipped: Vec::new(),
        extensions: Vec::new(),
        text: text.to_string(),
    };
    let mut seen_rua = false;
    let mut fields = rest.split(';');
    // What follows the version up to the first ';' must be white space only.
    if !fields.next().unwrap_or_default().chars().all(is_wsp) {
        return Err("text after the version before the first ';'".into());
    }
    let fields: Vec<&str> = fields.collect();
    for (i, field) in fields.iter().enumerate() {
        let field = field.trim_matches(is_wsp);
        if field.is_empty() {
            // Only a trailing delimiter may leave an empty field.
            if i + 1 == fields.len() {
                continue;
            }
            return Err("an empty field".into());
        }
        let Some((name, value)) = field.split_once('=') else {
            return Err(format!("{field:?} is not name=value"));
        };
        if name == "rua" {
            // The grammar lets `rua` come more than once (`1*(field-delim tlsrpt-field)`):
            // every URI of every rua field is used.
            seen_rua = true;
            for uri in value.split(',') {
                let uri = uri.trim_matches(is_wsp);
                if uri.is_empty() {
                    return Err("an empty URI in rua".into());
                }
                // R-RPT-2: a URI that cannot be used (another scheme, a malformed address or
                // size) is skipped; the others still get the reports.
                match parse_uri(uri) {
                    Ok(Some(parsed)) if !record.rua.contains(&parsed) => record.rua.push(parsed),
                    Ok(Some(_)) => {}
                    Ok(None) => record.skipped.push(uri.to_string()),
                    Err(why) => record.skipped.push(format!("{uri} ({why})")),
                }
            }
            continue;
        }
        let valid_name = name.len() <= 32
            && name
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphanumeric())
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
        let valid_value = !value.is_empty()
            && value
                .bytes()
                .all(|b| matches!(b, 0x21..=0x3a | 0x3c | 0x3e..=0x7e));
        if !valid_name || !valid_value {
            return Err(format!("{field:?} is not a valid extension"));
        }
        record
            .extensions
            .push((name.to_string(), value.to_string()));
    }
    if !seen_rua {
        return Err("no rua field".into());
    }
    Ok(record)
}

/// One `rua` URI: `Some` for `mailto:` and `https:`, `None` for another scheme.
fn parse_uri(uri: &str) -> std::result::Result<Option<ReportUri>, String> {
    if uri.bytes().any(|b| !(0x21..=0x7e).contains(&b)) {
        return Err(format!("the URI {uri:?} holds a space or a non-ASCII byte"));
    }
    let lower = uri.to_ascii_lowercase();
    if let Some(rest) = lower
        .strip_prefix("mailto:")
        .map(|_| &uri["mailto:".len()..])
    {
        // R-RPT-2: a trailing `!SIZE[k|m|g|t]` is the size limit (a '!' of the address itself
        // is written %21).
        let (address, max_size) = match rest.rsplit_once('!') {
            Some((address, size)) => (address, Some(parse_size(size)?)),
            None => (rest, None),
        };
        // A query (RFC 6068 `?subject=...`) is not part of the address.
        let address = address.split_once('?').map_or(address, |(a, _)| a);
        let address = percent_decode(address)?;
        let Some((local, host)) = address.rsplit_once('@') else {
            return Err(format!("{uri:?}: not an address"));
        };
        if local.is_empty() || host.is_empty() || host.contains(['@', ' ']) {
            return Err(format!("{uri:?}: not an address"));
        }
        return Ok(Some(ReportUri::Mailto { address, max_size }));
    }
    if lower.starts_with("https://") {
        if uri.len() <= "https://".len() || uri["https://".len()..].starts_with('/') {
            return Err(format!("{uri:?}: no host"));
        }
        return Ok(Some(ReportUri::Https {
            url: uri.to_string(),
        }));
    }
    Ok(None)
}

/// `10m` is 10 × 2²⁰ bytes; units k, m, g, t (RFC 7489 §6.4's convention, which RFC 8460
/// follows).
fn parse_size(size: &str) -> std::result::Result<u64, String> {
    let (digits, shift) = match size.char_indices().last() {
        Some((i, 'k' | 'K')) => (&size[..i], 10),
        Some((i, 'm' | 'M')) => (&size[..i], 20),
        Some((i, 'g' | 'G')) => (&size[..i], 30),
        Some((i, 't' | 'T')) => (&size[..i], 40),
        _ => (size, 0),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("{size:?} is not a size"));
    }
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("{size:?} is too large"))?;
    n.checked_mul(1u64 << shift)
        .ok_or_else(|| format!("{size:?} is too large"))
}

fn percent_decode(text: &str) -> std::result::Result<String, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| format!("{text:?}: a bad %-escape"))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| format!("{text:?}: not UTF-8 once decoded"))
}

/// R-RPT-1: looks up `_smtp._tls.<domain>` through `dns`. NXDOMAIN and NODATA are no
/// reports; a temporary failure is an `Err` (never "no record": try again later).
///
/// # Errors
/// [`Error::DnsTemporary`](crate::Error::DnsTemporary).
pub fn discover_report_record(
    dns: &dyn DnsResolver,
    domain: &Domain,
) -> Result<ReportRecordAnswer> {
    let name = format!("_smtp._tls.{}", domain.as_str());
    Ok(match dns.txt(&name)? {
        DnsAnswer::Found { records, ttl } => select_report_record(&records, Some(ttl)),
        DnsAnswer::NxDomain { ttl } | DnsAnswer::NoData { ttl } => {
            ReportRecordAnswer::NoReports { reason: None, ttl }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mailto(address: &str, max_size: Option<u64>) -> ReportUri {
        ReportUri::Mailto {
            address: address.into(),
            max_size,
        }
    }

    fn https(url: &str) -> ReportUri {
        ReportUri::Https { url: url.into() }
    }

    #[test]
    fn r_rpt_2_valid_records() {
        let rows: Vec<(&str, Vec<ReportUri>)> = vec![
            (
                "v=TLSRPTv1; rua=mailto:tlsrpt@example.com",
                vec![mailto("tlsrpt@example.com", None)],
            ),
            (
                "v=TLSRPTv1;rua=mailto:a@example.com,https://reports.example.com/v1;",
                vec![
                    mailto("a@example.com", None),
                    https("https://reports.example.com/v1"),
                ],
            ),
            (
                "v=TLSRPTv1 ; rua=mailto:a@example.com!10m , mailto:b@example.com!512",
                vec![
                    mailto("a@example.com", Some(10 << 20)),
                    mailto("b@example.com", Some(512)),
                ],
            ),
            (
                "v=TLSRPTv1; rua=mailto:weird%21name%2C@example.com!1k",
                vec![mailto("weird!name,@example.com", Some(1024))],
            ),
            (
                "v=TLSRPTv1; rua=https://r.example/a%2Cb; x-ext=1",
                vec![https("https://r.example/a%2Cb")],
            ),
            (
                "v=TLSRPTv1; rua=MAILTO:a@example.com,mailto:a@example.com",
                vec![mailto("a@example.com", None)],
            ),
            // Two rua fields: both lists are used.
            (
                "v=TLSRPTv1; rua=mailto:a@b.example; rua=https://r.example/v1,mailto:a@b.example",
                vec![mailto("a@b.example", None), https("https://r.example/v1")],
            ),
            // A query is no part of the address.
            (
                "v=TLSRPTv1; rua=mailto:a@b.example?subject=tlsrpt!1m",
                vec![mailto("a@b.example", Some(1 << 20))],
            ),
        ];
        for (text, rua) in rows {
            let record = parse_report_record(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(record.rua, rua, "{text}");
            assert_eq!(record.text, text);
        }
        let record = parse_report_record(
            "v=TLSRPTv1; rua=ftp://x.example/r,http://x.example/r,mailto:a@b.example",
        )
        .unwrap();
        assert_eq!(record.rua, vec![mailto("a@b.example", None)]);
        assert_eq!(
            record.skipped,
            ["ftp://x.example/r", "http://x.example/r"],
            "R-RPT-2"
        );
        // A URI that cannot be used is skipped with its reason; the others are kept.
        for (bad, why) in [
            ("mailto:nobody", "not an address"),
            ("mailto:a@b.example!10x", "not a size"),
            ("mailto:a@b.example!", "not a size"),
            ("mailto:a@b.example!99999999999999999999t", "too large"),
            ("mailto:a%zz@b.example", "%-escape"),
            ("https://", "no host"),
            ("https://r.example/\u{e9}", "non-ASCII"),
        ] {
            let text = format!("v=TLSRPTv1; rua={bad},https://ok.example/v1");
            let record = parse_report_record(&text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(record.rua, vec![https("https://ok.example/v1")], "{text}");
            assert_eq!(record.skipped.len(), 1, "{text}");
            assert!(
                record.skipped[0].starts_with(bad) && record.skipped[0].contains(why),
                "{text}: {:?}",
                record.skipped
            );
        }
    }

    #[test]
    fn r_rpt_1_2_invalid_records_mean_no_reports() {
        for (text, why) in [
            ("v=TLSRPTv1", "no rua"),
            ("v=TLSRPTv1;", "no rua"),
            ("v=TLSRPTv1; x=1", "no rua"),
            ("v=TLSRPTv1x; rua=mailto:a@b.example", "before the first"),
            ("v=TLSRPTv1; rua=", "empty URI"),
            ("v=TLSRPTv1; rua=mailto:a@b.example,", "empty URI"),
            ("v=TLSRPTv1;; rua=mailto:a@b.example", "empty field"),
            ("v=TLSRPTv1; rua=mailto:a@b.example; bad ext=1", "extension"),
            ("v=TLSRPTv1; rua=mailto:a@b.example; ext", "name=value"),
        ] {
            let e = parse_report_record(text).expect_err(text);
            assert!(e.contains(why), "{text}: {e}");
        }
    }

    #[test]
    fn r_rpt_1_exactly_one_record() {
        let one = "v=TLSRPTv1; rua=mailto:a@b.example";
        assert!(matches!(
            select_report_record(&[one, "v=spf1 -all"], Some(300)),
            ReportRecordAnswer::Found(r) if r.rua.len() == 1
        ));
        let none = select_report_record(
            &["v=spf1 -all", "v=TLSRPTv10; rua=mailto:a@b.example"],
            Some(300),
        );
        assert_eq!(
            none,
            ReportRecordAnswer::NoReports {
                reason: None,
                ttl: Some(300)
            }
        );
        let two = select_report_record(&[one, "v=TLSRPTv1;rua=mailto:c@d.example"], None);
        assert!(
            matches!(two, ReportRecordAnswer::NoReports { reason: Some(r), .. } if r.contains("2 TLS-RPT records"))
        );
        let unusable = select_report_record(&["v=TLSRPTv1; rua=http://r.example/x"], None);
        assert!(
            matches!(unusable, ReportRecordAnswer::NoReports { reason: Some(r), .. } if r.contains("no mailto: or https:"))
        );
        let binary =
            select_report_record(&[b"v=TLSRPTv1; rua=mailto:\xff@b.example".as_slice()], None);
        assert!(matches!(
            binary,
            ReportRecordAnswer::NoReports {
                reason: Some(_),
                ..
            }
        ));
    }
}
