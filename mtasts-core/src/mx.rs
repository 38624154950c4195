//! `mx` patterns of a policy: normalisation (R-POL-7) and matching (R-MX-1, R-MX-2).
//!
//! RFC 8461 §3.2 lets a policy list MX host patterns, each a host name or `*.` followed by a
//! host name; §4.1 says an MX host matches a pattern when it is that name, or for a wildcard,
//! when it is the base name with exactly one more label in front.

use std::fmt;

use crate::domain::{Domain, normalize_name};
use crate::error::Error;

/// One MX record: preference and exchange host (lowercase, no trailing dot).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MxRecord {
    /// Lower is preferred (RFC 5321 §5.1).
    pub preference: u16,
    /// The MX host name as published (the record's data, not a CNAME target; R-MX-1).
    pub exchange: String,
}

/// One `mx` pattern of a policy, normalised at parse time (R-POL-7, RFC 8461 §3.2).
///
/// Either a plain host name (`mail.example.com`) or a wildcard (`*.example.net`), stored as
/// lowercase A-labels without a trailing dot, so [`MxPattern::matches`] is a plain string
/// comparison.
///
/// ```rust
/// use mtasts_core::{Domain, MxPattern};
///
/// let p = MxPattern::parse("*.Bücher.example.")?;
/// assert_eq!(p.as_str(), "*.xn--bcher-kva.example");
/// assert!(p.is_wildcard());
/// assert!(p.matches(&Domain::new("mx1.bücher.example")?));
/// assert!(!p.matches(&Domain::new("a.mx1.xn--bcher-kva.example")?));
/// assert!(!p.matches(&Domain::new("xn--bcher-kva.example")?));
/// # Ok::<(), mtasts_core::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct MxPattern {
    /// True for `*.<base>`.
    wildcard: bool,
    /// The normalised pattern: `<base>` or `*.<base>`, `<base>` being a valid [`Domain`].
    text: String,
}

impl MxPattern {
    /// Parses and normalises one `mx` pattern (R-POL-7, RFC 8461 §3.2).
    ///
    /// U-labels are converted to A-labels, letters lowercased, one trailing dot removed,
    /// exactly as [`Domain::new`] does for the part after an optional leading `*.`.
    ///
    /// Unusable patterns give [`Error::InvalidMxPattern`] with a reason: empty, `*` alone,
    /// `*` anywhere but as the whole left-most label (`*.*.x`, `a.*.x`, `**.x`, `*x.example`),
    /// an IP address, or a base that is not a host name (`_x`, white space, ...). A policy
    /// drops such a pattern with a warning (see [`crate::Policy::parse`]).
    pub fn parse(pattern: &str) -> Result<MxPattern, Error> {
        let invalid = |reason: String| Error::InvalidMxPattern {
            pattern: pattern.to_owned(),
            reason,
        };
        if pattern.is_empty() {
            return Err(invalid("the pattern is empty".into()));
        }
        if pattern == "*" || pattern == "*." {
            return Err(invalid(
                "a lone '*' is not a pattern: a wildcard must be followed by a domain".into(),
            ));
        }
        let (wildcard, base) = match pattern.strip_prefix("*.") {
            Some(base) => (true, base),
            None => (false, pattern),
        };
        if base.contains('*') {
            return Err(invalid(
                "'*' is allowed only as the whole left-most label (\"*.example.com\")".into(),
            ));
        }
        let base = normalize_name(base).map_err(invalid)?;
        let text = if wildcard {
            format!("*.{base}")
        } else {
            base.into_owned()
        };
        Ok(MxPattern { wildcard, text })
    }

    /// True when `host` matches this pattern (R-MX-1, R-MX-2; RFC 8461 §4.1).
    ///
    /// A plain pattern matches only the same name. `*.example.com` matches a name with
    /// exactly one more left-most label: `a.example.com`, but neither `example.com` nor
    /// `a.b.example.com`. Both sides are already normalised, so this is a string comparison
    /// and allocates nothing.
    pub fn matches(&self, host: &Domain) -> bool {
        let host = host.as_str();
        if !self.wildcard {
            return host == self.text;
        }
        host.strip_suffix(self.base())
            .and_then(|front| front.strip_suffix('.'))
            .is_some_and(|label| !label.is_empty() && !label.contains('.'))
    }

    /// True for a wildcard pattern (`*.example.net`).
    pub fn is_wildcard(&self) -> bool {
        self.wildcard
    }

    /// The normalised pattern, e.g. `*.example.net` or `mail.example.com`.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The name after `*.` for a wildcard, the whole name otherwise.
    fn base(&self) -> &str {
        if self.wildcard {
            // `text` is "*." followed by the base (see `parse`), so this never falls back.
            self.text.get(2..).unwrap_or_default()
        } else {
            &self.text
        }
    }
}

impl fmt::Display for MxPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// R-POL-7: usable patterns and their normalised form.
    #[test]
    fn normalises_patterns() {
        let cases: &[(&str, &str, bool)] = &[
            ("mail.example.com", "mail.example.com", false),
            ("MAIL.Example.COM.", "mail.example.com", false),
            ("*.example.net", "*.example.net", true),
            ("*.Example.NET.", "*.example.net", true),
            ("*.bücher.example", "*.xn--bcher-kva.example", true),
            ("mx.bücher.example", "mx.xn--bcher-kva.example", false),
            ("*.xn--bcher-kva.example", "*.xn--bcher-kva.example", true),
            ("*.com", "*.com", true),
            ("localhost", "localhost", false),
        ];
        for (input, want, wildcard) in cases {
            let p = MxPattern::parse(input).unwrap_or_else(|e| panic!("{input:?}: {e}"));
            assert_eq!(p.as_str(), *want, "{input:?}");
            assert_eq!(p.to_string(), *want);
            assert_eq!(p.is_wildcard(), *wildcard, "{input:?}");
            assert_eq!(MxPattern::parse(p.as_str()).unwrap(), p, "idempotent");
        }
    }

    /// R-POL-7: unusable patterns.
    #[test]
    fn rejects_unusable_patterns() {
        let cases: &[(&str, &str)] = &[
            ("", "empty"),
            ("*", "lone"),
            ("*.", "lone"),
            ("*.*.example.com", "left-most"),
            ("a.*.example.com", "left-most"),
            ("**.example.com", "left-most"),
            ("*example.com", "left-most"),
            ("*x.example.com", "left-most"),
            ("example.*", "left-most"),
            ("192.0.2.1", "IPv4"),
            ("*.192.0.2.1", "IPv4"),
            ("*.example.123", "numeric"),
            ("2001:db8::25", "IPv6"),
            ("[192.0.2.1]", "address literal"),
            ("_x", "'_'"),
            ("_mx.example.com", "'_'"),
            ("*._x.example.com", "'_'"),
            ("mail..example.com", "empty label"),
            ("*..example.com", "empty label"),
            (".example.com", "empty label"),
            ("mail.example.com..", "empty label"),
            ("mail example.com", "' '"),
            (" mail.example.com", "' '"),
            ("mail.example.com\r", "'\\r'"),
            ("-mail.example.com", "'-'"),
            ("*.-x.example.com", "'-'"),
        ];
        for (input, reason) in cases {
            match MxPattern::parse(input) {
                Ok(p) => panic!("{input:?} accepted as {p}"),
                Err(Error::InvalidMxPattern {
                    pattern,
                    reason: why,
                }) => {
                    assert_eq!(pattern, *input);
                    assert!(why.contains(reason), "{input:?}: {why:?} lacks {reason:?}");
                }
                Err(other) => panic!("{input:?}: wrong error {other:?}"),
            }
        }
    }

    /// R-MX-1, R-MX-2 (scenarios S-50..S-55, S-61, S-62).
    #[test]
    fn matching() {
        let cases: &[(&str, &str, bool)] = &[
            ("mail.example.com", "mail.example.com", true),
            ("mail.example.com", "MAIL.Example.COM.", true), // S-51
            ("mail.example.com", "a.mail.example.com", false),
            ("mail.example.com", "example.com", false),
            ("mail.example.com", "mail.example.co", false),
            ("mail.example.com", "xmail.example.com", false),
            ("*.example.net", "mx1.example.net", true), // S-52
            ("*.example.net", "MX1.EXAMPLE.NET.", true),
            ("*.example.net", "a.mx1.example.net", false), // S-53, R-MX-2
            ("*.example.net", "example.net", false),       // S-54, R-MX-2
            ("*.example.net", "evil.com", false),          // S-55
            ("*.example.net", "mx1example.net", false),
            ("*.example.net", "mx1.xexample.net", false),
            ("*.example.net", "mx1.example.net.evil", false),
            ("*.bücher.example", "mx.xn--bcher-kva.example", true),
            ("*.xn--bcher-kva.example", "mx.bücher.example", true),
            ("*.example.net", "*.example.net", false), // not a host name at all
        ];
        for (pattern, host, want) in cases {
            let p = MxPattern::parse(pattern).unwrap();
            let got = Domain::new(host).map(|h| p.matches(&h)).unwrap_or(false);
            assert_eq!(got, *want, "{pattern} vs {host}");
        }
    }
}
