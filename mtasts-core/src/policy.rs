//! The policy file served at `https://mta-sts.<domain>/.well-known/mta-sts.txt` (rules file
//! §3: R-POL-1 to R-POL-8; RFC 8461 §3.2).
//!
//! The parser follows the guiding principle of the rules file: where a strict reading would
//! silently downgrade a domain's protection it is lenient, logs a warning and records it in
//! [`Policy::warnings`]; where leniency would widen what an attacker can get accepted (the
//! mode, the `mx` patterns) it is strict.

use std::fmt;
use std::str::FromStr;

use crate::domain::Domain;
use crate::error::Error;
use crate::mx::MxPattern;
use crate::record::is_ext_name;

/// The largest `max_age` honoured, in seconds: 31557600, one year of 365.25 days (R-POL-6,
/// RFC 8461 §3.2). Larger values are clamped to it.
pub const MAX_AGE_LIMIT: u32 = 31_557_600;

/// The most tolerances one parse records in [`Policy::warnings`]; the rest are counted in
/// one last warning, so a policy of junk lines costs a bounded amount of memory and log.
pub const MAX_WARNINGS: usize = 20;

/// Most digits a `max_age` value may have (RFC 8461 §3.2: `1*10DIGIT`).
const MAX_AGE_DIGITS: usize = 10;

/// The only policy version defined (RFC 8461 §3.2).
const VERSION: &str = "STSv1";

/// The fields RFC 8461 §3.2 defines; anything else is an extension (R-POL-5).
const KNOWN_KEYS: [&str; 4] = ["version", "mode", "max_age", "mx"];

/// A policy's mode (RFC 8461 §5; R-APPLY-1 to R-APPLY-3).
///
/// The registered values are case-sensitive (R-POL-3): `Enforce` is not a mode.
///
/// ```rust
/// use mtasts_core::Mode;
///
/// assert_eq!("enforce".parse::<Mode>()?, Mode::Enforce);
/// assert_eq!(Mode::Testing.as_str(), "testing");
/// assert!("Enforce".parse::<Mode>().is_err());
/// # Ok::<(), mtasts_core::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Mode {
    /// `enforce`: deliver only to MX hosts that match the policy and present a valid
    /// certificate (R-APPLY-1).
    Enforce,
    /// `testing`: deliver anyway, report failures through TLS-RPT (R-APPLY-2).
    Testing,
    /// `none`: the domain has no active policy (R-APPLY-3, R-CACHE-4).
    None,
}

impl Mode {
    /// The registered string: `enforce`, `testing` or `none` (RFC 8461 §3.2).
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Enforce => "enforce",
            Mode::Testing => "testing",
            Mode::None => "none",
        }
    }
}

impl FromStr for Mode {
    type Err = Error;

    /// Parses a registered mode, case-sensitively (R-POL-3). Anything else is an
    /// [`Error::InvalidPolicy`] without a line number.
    fn from_str(s: &str) -> Result<Mode, Error> {
        parse_mode(s).map_err(|reason| Error::InvalidPolicy { line: None, reason })
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A valid MTA-STS policy (RFC 8461 §3.2), with the text it was parsed from.
///
/// Parsed once with [`Policy::parse`] or [`Policy::from_bytes`]; share it as `Arc<Policy>`.
///
/// ```rust
/// use mtasts_core::{Mode, Policy};
///
/// let text = "version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\nmx: *.example.net\r\nmax_age: 86400\r\n";
/// let policy = Policy::parse(text)?;
/// assert_eq!(policy.mode(), Mode::Enforce);
/// assert_eq!(policy.max_age(), 86400);
/// assert!(policy.matches("MAIL.Example.COM."));
/// assert!(policy.matches("mx1.example.net"));
/// assert!(!policy.matches("a.mx1.example.net"));
/// assert_eq!(policy.text(), text);
/// assert!(policy.warnings().is_empty());
/// # Ok::<(), mtasts_core::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    mode: Mode,
    max_age: u32,
    mx: Vec<MxPattern>,
    text: String,
    extensions: Vec<(String, String)>,
    warnings: Vec<String>,
}

impl Policy {
    /// Parses a policy file (R-POL-1 to R-POL-8; RFC 8461 §3.2).
    ///
    /// **Lines** (R-POL-1): a line ends with LF or CRLF. A bare CR, VT, FF, NEL or U+2028 is
    /// not a line end but a character of the line, so `mode: enforce\rmax_age: 5` is one
    /// `mode` line with an unknown value, and a value ending in a bare CR is a different value
    /// (an invalid `mode`, `version` or `max_age`; a dropped `mx` pattern; an ignored
    /// extension).
    ///
    /// **Tolerated**, each recorded in [`Policy::warnings`] (at most [`MAX_WARNINGS`], then
    /// one line counting the rest). Parsing logs nothing: the resolver logs a policy's
    /// warnings once, when it fetches the policy, never when a process loads it from the
    /// cache (a policy of 60 KB of junk lines must not flood an MTA's log per delivery):
    /// - R-POL-2: a UTF-8 byte order mark; no line end after the last line; blank lines; SP or
    ///   HTAB at the start of a line, before the `:`, or at the end of a line.
    /// - R-POL-2: a line without `:` (not a `key: value` line at all), and an unknown field
    ///   whose name or value does not follow the extension grammar of RFC 8461 §3.2: ignored.
    ///   Rejecting the whole policy would downgrade the domain to "no policy".
    /// - R-POL-3: a key differing from a known one only by case (`Mode`): an unknown field,
    ///   kept, with a warning saying why the known field may then be missing.
    /// - R-POL-4: a repeated `version`, `mode` or `max_age`: the first is used, later ones are
    ///   ignored whatever their value.
    /// - R-POL-6: `max_age` above [`MAX_AGE_LIMIT`]: clamped to it. `max_age: 0` is valid
    ///   (the policy expires at once) and kept, with a warning.
    /// - R-POL-7: an unusable `mx` pattern (see [`MxPattern::parse`]): dropped.
    ///
    /// Any SP/HTAB after the `:` is part of the syntax and needs no warning. Unknown fields
    /// are kept in [`Policy::extensions`] (R-POL-5).
    ///
    /// **Rejected** with [`Error::InvalidPolicy`], with the 1-based line when the problem is on
    /// a line (R-POL-3, R-POL-6, R-POL-7): a `version` other than `STSv1`; a `mode` other than
    /// `enforce`, `testing`, `none`; a `max_age` that is not 1 to 10 ASCII digits (`+5`,
    /// `5_000`, `-1`, `1.5`, non-ASCII digits, 11 digits); a missing `version`, `mode` or
    /// `max_age`; mode `enforce` or `testing` with no usable `mx` pattern left.
    ///
    /// [`Policy::text`] is `text` verbatim (R-POL-8).
    pub fn parse(text: &str) -> Result<Policy, Error> {
        let mut p = Parser::default();
        let body = match text.strip_prefix('\u{feff}') {
            Some(rest) => {
                p.warn(Some(1), "UTF-8 byte order mark ignored (R-POL-2)".into());
                rest
            }
            None => text,
        };
        if !body.is_empty() {
            let (lines, final_newline) = match body.strip_suffix('\n') {
                Some(lines) => (lines, true),
                None => (body, false),
            };
            let count = lines.split('\n').count();
            for (index, raw) in lines.split('\n').enumerate() {
                let n = index + 1;
                // A CR is part of a line end only before an LF: on a last line without LF,
                // a final CR is a bare CR and stays in the line (R-POL-1).
                let ends_with_lf = n < count || final_newline;
                let line = match raw.strip_suffix('\r') {
                    Some(line) if ends_with_lf => line,
                    _ => raw,
                };
                p.line(n, line)?;
            }
            if !final_newline {
                let last = count;
                p.warn(
                    Some(last),
                    "no line end after the last line; accepted (R-POL-2)".into(),
                );
            }
        }
        p.finish(text)
    }

    /// Parses a policy body as fetched (R-FETCH-7 has already checked the media type).
    ///
    /// The body must be UTF-8 (RFC 8461 §3.2); otherwise [`Error::InvalidPolicy`] names the
    /// first bad byte and its line. A UTF-8 byte order mark is tolerated with a warning
    /// (R-POL-2); [`Policy::text`] keeps it, as it keeps every byte received.
    pub fn from_bytes(body: &[u8]) -> Result<Policy, Error> {
        match std::str::from_utf8(body) {
            Ok(text) => Policy::parse(text),
            Err(e) => {
                // The index of the first bad byte: in bounds, since the error is about it.
                let at = e.valid_up_to();
                let line = body[..at].iter().filter(|&&b| b == b'\n').count() + 1;
                Err(Error::InvalidPolicy {
                    line: Some(line),
                    reason: format!("not UTF-8 text (byte 0x{:02x} at offset {at})", body[at]),
                })
            }
        }
    }

    /// The policy's mode (R-APPLY-1 to R-APPLY-3).
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// How long the policy may be cached, in seconds, from its last successful fetch
    /// (R-CACHE-1), after the clamp to [`MAX_AGE_LIMIT`] (R-POL-6).
    pub fn max_age(&self) -> u32 {
        self.max_age
    }

    /// The usable `mx` patterns, normalised, in the order of the file (R-POL-7). Empty only
    /// for mode `none`.
    pub fn mx(&self) -> &[MxPattern] {
        &self.mx
    }

    /// The policy text verbatim, as given to [`Policy::parse`] or received by
    /// [`Policy::from_bytes`], a byte order mark and unknown fields included (R-POL-8; used
    /// for TLS-RPT `policy-string` and for display).
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The unknown fields, as (key, value), in the order of the file (R-POL-5). Only
    /// well-formed ones: a malformed line is ignored with a warning instead.
    pub fn extensions(&self) -> &[(String, String)] {
        &self.extensions
    }

    /// One message per tolerance applied while parsing (R-POL-2, R-POL-4, R-POL-6, R-POL-7),
    /// e.g. `line 3: mx pattern "*" dropped: ...`; at most [`MAX_WARNINGS`] of them, then one
    /// `N more tolerated problems`.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// True when the MX host name `mx_host` matches one of the policy's patterns (R-MX-1,
    /// R-MX-2; RFC 8461 §4.1). The name is normalised with [`Domain::new`] first (case,
    /// trailing dot, U-labels); a name that is not a valid host name matches nothing.
    ///
    /// This is the pattern check alone, whatever the mode: acting on it is R-APPLY-*.
    pub fn matches(&self, mx_host: &str) -> bool {
        Domain::new(mx_host).is_ok_and(|host| self.matches_domain(&host))
    }

    /// True when the MX host name matches one of the policy's patterns (R-MX-1, R-MX-2;
    /// RFC 8461 §4.1). Pass the MX record's name, not a CNAME target.
    pub fn matches_domain(&self, mx_host: &Domain) -> bool {
        self.mx.iter().any(|pattern| pattern.matches(mx_host))
    }
}

/// SP or HTAB, the only white space the policy grammar knows.
fn is_wsp(c: char) -> bool {
    c == ' ' || c == '\t'
}

/// A hint for values that hold a bare CR, which looks like a line end but is not (R-POL-1).
fn cr_hint(value: &str) -> &'static str {
    if value.contains('\r') {
        " (a bare CR is not a line end, R-POL-1)"
    } else {
        ""
    }
}

/// `mode` values are case-sensitive (R-POL-3).
fn parse_mode(value: &str) -> Result<Mode, String> {
    match value {
        "enforce" => Ok(Mode::Enforce),
        "testing" => Ok(Mode::Testing),
        "none" => Ok(Mode::None),
        other => Err(format!(
            "unknown mode {other:?}: expected \"enforce\", \"testing\" or \"none\"{} (R-POL-3)",
            cr_hint(other)
        )),
    }
}

/// `max_age` is 1 to 10 ASCII digits (R-POL-6); the value before the clamp.
fn parse_max_age(value: &str) -> Result<u64, String> {
    if value.is_empty() {
        return Err("max_age is empty (R-POL-6)".into());
    }
    if let Some(c) = value.chars().find(|c| !c.is_ascii_digit()) {
        return Err(format!(
            "max_age {value:?} has a character other than the ASCII digits 0-9 ({c:?}){} (R-POL-6)",
            cr_hint(value)
        ));
    }
    if value.len() > MAX_AGE_DIGITS {
        return Err(format!(
            "max_age {value:?} has {} digits, more than {MAX_AGE_DIGITS} (R-POL-6)",
            value.len()
        ));
    }
    // At most 10 decimal digits: below 10^10, no overflow.
    Ok(value
        .bytes()
        .fold(0u64, |n, b| n * 10 + u64::from(b - b'0')))
}

/// RFC 8461 §3.2 `sts-policy-ext-value`: visible characters, SP and UTF-8 (the caller has
/// trimmed SP/HTAB at both ends), at least one.
fn is_ext_value(value: &str) -> bool {
    !value.is_empty()
        && value
            .chars()
            .all(|c| c == ' ' || c.is_ascii_graphic() || !c.is_ascii())
}

/// Parsing state; one field per known key, holding the line it was first seen on.
#[derive(Default)]
struct Parser {
    version: Option<usize>,
    mode: Option<(usize, Mode)>,
    max_age: Option<(usize, u32)>,
    mx: Vec<MxPattern>,
    dropped_mx: usize,
    extensions: Vec<(String, String)>,
    /// The first line of each key that differs from a known key only by case (`Mode`).
    case_variants: Vec<(usize, String)>,
    warnings: Vec<String>,
    /// Tolerances past [`MAX_WARNINGS`], counted only.
    more_warnings: usize,
}

impl Parser {
    /// Records a tolerance for [`Policy::warnings`]: the first [`MAX_WARNINGS`], then only
    /// counted (the count is added as a last warning when parsing ends).
    fn warn(&mut self, line: Option<usize>, message: String) {
        if self.warnings.len() >= MAX_WARNINGS {
            self.more_warnings += 1;
            return;
        }
        self.warnings.push(match line {
            Some(n) => format!("line {n}: {message}"),
            None => message,
        });
    }

    /// One line, its line end removed.
    fn line(&mut self, n: usize, line: &str) -> Result<(), Error> {
        let invalid = |reason: String| Error::InvalidPolicy {
            line: Some(n),
            reason,
        };
        if line.chars().all(is_wsp) {
            self.warn(Some(n), "blank line ignored (R-POL-2)".into());
            return Ok(());
        }
        let content = line.trim_start_matches(is_wsp);
        if content.len() != line.len() {
            self.warn(
                Some(n),
                "white space at the start of the line ignored (R-POL-2)".into(),
            );
        }
        let Some((key_part, value_part)) = content.split_once(':') else {
            self.warn(
                Some(n),
                format!("{content:?} is not a \"key: value\" line; ignored (R-POL-2)"),
            );
            return Ok(());
        };
        let key = key_part.trim_end_matches(is_wsp);
        if key.len() != key_part.len() {
            self.warn(
                Some(n),
                format!("white space before ':' after {key:?} ignored (R-POL-2)"),
            );
        }
        let value_untrimmed = value_part.trim_start_matches(is_wsp);
        let value = value_untrimmed.trim_end_matches(is_wsp);
        if value.len() != value_untrimmed.len() {
            self.warn(
                Some(n),
                "white space at the end of the line ignored (R-POL-2)".into(),
            );
        }

        match key {
            "version" => {
                if let Some(first) = self.version {
                    self.warn_duplicate(n, key, first);
                } else if value == VERSION {
                    self.version = Some(n);
                } else {
                    return Err(invalid(format!(
                        "unknown version {value:?}: only \"{VERSION}\" is defined{} (R-POL-3)",
                        cr_hint(value)
                    )));
                }
            }
            "mode" => {
                if let Some((first, _)) = self.mode {
                    self.warn_duplicate(n, key, first);
                } else {
                    self.mode = Some((n, parse_mode(value).map_err(invalid)?));
                }
            }
            "max_age" => {
                if let Some((first, _)) = self.max_age {
                    self.warn_duplicate(n, key, first);
                } else {
                    let seconds = parse_max_age(value).map_err(invalid)?;
                    let max_age = match u32::try_from(seconds) {
                        Ok(s) if s <= MAX_AGE_LIMIT => s,
                        _ => {
                            self.warn(
                                Some(n),
                                format!(
                                    "max_age {seconds} is more than {MAX_AGE_LIMIT} (one year); clamped to {MAX_AGE_LIMIT} (R-POL-6)"
                                ),
                            );
                            MAX_AGE_LIMIT
                        }
                    };
                    if max_age == 0 {
                        self.warn(
                            Some(n),
                            "max_age 0: the policy expires at once and will not be cached (R-POL-6)".into(),
                        );
                    }
                    self.max_age = Some((n, max_age));
                }
            }
            "mx" => match MxPattern::parse(value) {
                Ok(pattern) => self.mx.push(pattern),
                Err(e) => {
                    self.dropped_mx += 1;
                    self.warn(Some(n), format!("{e}; dropped (R-POL-7)"));
                }
            },
            _ => self.extension(n, key, value),
        }
        Ok(())
    }

    /// R-POL-4: a later occurrence of a non-`mx` field is ignored.
    fn warn_duplicate(&mut self, n: usize, key: &str, first: usize) {
        self.warn(
            Some(n),
            format!("duplicate {key} ignored, the one on line {first} is used (R-POL-4)"),
        );
    }

    /// R-POL-5: an unknown field is kept when well-formed, ignored with a warning otherwise.
    fn extension(&mut self, n: usize, key: &str, value: &str) {
        if let Some(known) = KNOWN_KEYS.iter().find(|k| k.eq_ignore_ascii_case(key)) {
            if !self
                .case_variants
                .iter()
                .any(|(_, k)| k.eq_ignore_ascii_case(key))
            {
                self.case_variants.push((n, key.to_owned()));
            }
            self.warn(
                Some(n),
                format!(
                    "{key:?} is not {known:?} (field names are case-sensitive); an unknown field (R-POL-3)"
                ),
            );
        }
        if !is_ext_name(key) {
            self.warn(
                Some(n),
                format!(
                    "{key:?} is not a valid field name (RFC 8461 §3.2); line ignored (R-POL-2)"
                ),
            );
        } else if !is_ext_value(value) {
            self.warn(
                Some(n),
                format!(
                    "value {value:?} of unknown field {key:?} is empty or has control characters{}; line ignored (R-POL-2)",
                    cr_hint(value)
                ),
            );
        } else {
            self.extensions.push((key.to_owned(), value.to_owned()));
        }
    }

    /// A hint for a missing `key` when a case variant of it (`Mode`) was seen.
    fn case_hint(&self, key: &str) -> String {
        self.case_variants
            .iter()
            .find(|(_, k)| k.eq_ignore_ascii_case(key))
            .map(|(line, k)| format!(" (line {line} has {k:?}: field names are case-sensitive)"))
            .unwrap_or_default()
    }

    /// "no mode field", with a hint when a case variant (`Mode`) was seen.
    fn missing(&self, key: &str) -> Error {
        Error::InvalidPolicy {
            line: None,
            reason: format!("no {key} field{} (R-POL-3)", self.case_hint(key)),
        }
    }

    /// The checks on the whole file, then the policy.
    fn finish(self, text: &str) -> Result<Policy, Error> {
        if self.version.is_none() {
            return Err(self.missing("version"));
        }
        let Some((_, mode)) = self.mode else {
            return Err(self.missing("mode"));
        };
        let Some((_, max_age)) = self.max_age else {
            return Err(self.missing("max_age"));
        };
        if mode != Mode::None && self.mx.is_empty() {
            let reason = if self.dropped_mx > 0 {
                let dropped = match self.dropped_mx {
                    1 => "its only pattern was dropped".to_string(),
                    n => format!("all {n} were dropped"),
                };
                format!("mode {mode} needs a usable mx pattern, and {dropped} (R-POL-7)")
            } else {
                format!(
                    "mode {mode} needs at least one mx field{} (R-POL-7)",
                    self.case_hint("mx")
                )
            };
            return Err(Error::InvalidPolicy { line: None, reason });
        }
        let mut warnings = self.warnings;
        if self.more_warnings > 0 {
            warnings.push(format!("{} more tolerated problems", self.more_warnings));
        }
        Ok(Policy {
            mode,
            max_age,
            mx: self.mx,
            text: text.to_owned(),
            extensions: self.extensions,
            warnings,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a case expects: a policy, or an error with its line and a piece of its reason.
    enum Want {
        Ok {
            mode: Mode,
            max_age: u32,
            mx: &'static [&'static str],
            ext: &'static [(&'static str, &'static str)],
            /// One piece per expected warning, in order.
            warnings: &'static [&'static str],
        },
        Err {
            line: Option<usize>,
            reason: &'static str,
        },
    }

    const fn ok(
        mode: Mode,
        max_age: u32,
        mx: &'static [&'static str],
        ext: &'static [(&'static str, &'static str)],
        warnings: &'static [&'static str],
    ) -> Want {
        Want::Ok {
            mode,
            max_age,
            mx,
            ext,
            warnings,
        }
    }

    const fn err(line: Option<usize>, reason: &'static str) -> Want {
        Want::Err { line, reason }
    }

    const E: Mode = Mode::Enforce;
    const T: Mode = Mode::Testing;
    const N: Mode = Mode::None;
    const MX: &[&str] = &["mail.example.com"];

    fn check(name: &str, input: &str, want: &Want) {
        let got = Policy::parse(input);
        match (&got, want) {
            (
                Ok(p),
                Want::Ok {
                    mode,
                    max_age,
                    mx,
                    ext,
                    warnings,
                },
            ) => {
                assert_eq!(p.mode(), *mode, "{name}");
                assert_eq!(p.max_age(), *max_age, "{name}");
                let got_mx: Vec<&str> = p.mx().iter().map(MxPattern::as_str).collect();
                assert_eq!(got_mx, *mx, "{name}");
                let got_ext: Vec<(&str, &str)> = p
                    .extensions()
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect();
                assert_eq!(got_ext, *ext, "{name}");
                assert_eq!(
                    p.warnings().len(),
                    warnings.len(),
                    "{name}: warnings {:#?}",
                    p.warnings()
                );
                for (w, piece) in p.warnings().iter().zip(warnings.iter()) {
                    assert!(w.contains(piece), "{name}: warning {w:?} lacks {piece:?}");
                }
                assert_eq!(p.text(), input, "{name}: R-POL-8 text verbatim");
            }
            (Err(Error::InvalidPolicy { line, reason }), Want::Err { line: l, reason: r }) => {
                assert_eq!(line, l, "{name}: line ({reason})");
                assert!(reason.contains(r), "{name}: {reason:?} lacks {r:?}");
            }
            _ => panic!("{name}: {input:?} gave {got:?}"),
        }
    }

    /// R-POL-1 to R-POL-8, one row per rule, tolerance, clamp and rejection.
    #[test]
    fn policy_rules() {
        let cases: &[(&str, &str, Want)] = &[
            // Valid policies.
            (
                "R-POL-1 LF",
                "version: STSv1\nmode: enforce\nmx: mail.example.com\nmax_age: 86400\n",
                ok(E, 86400, MX, &[], &[]),
            ),
            (
                "R-POL-1 CRLF",
                "version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\nmax_age: 86400\r\n",
                ok(E, 86400, MX, &[], &[]),
            ),
            (
                "R-POL-1 mixed LF and CRLF",
                "version: STSv1\r\nmode: testing\nmx: mail.example.com\r\nmax_age: 60\n",
                ok(T, 60, MX, &[], &[]),
            ),
            (
                "R-POL-2 no space after ':'",
                "version:STSv1\nmode:enforce\nmx:mail.example.com\nmax_age:86400\n",
                ok(E, 86400, MX, &[], &[]),
            ),
            (
                "R-POL-2 tabs and spaces after ':'",
                "version:\t STSv1\nmode:  enforce\nmx:\tmail.example.com\nmax_age: \t86400\n",
                ok(E, 86400, MX, &[], &[]),
            ),
            (
                "S-22 mode none without mx",
                "version: STSv1\nmode: none\nmax_age: 86400\n",
                ok(N, 86400, &[], &[], &[]),
            ),
            (
                "R-POL-7 mode none with mx",
                "version: STSv1\nmode: none\nmx: mail.example.com\nmax_age: 1\n",
                ok(N, 1, MX, &[], &[]),
            ),
            (
                "R-POL-7 several mx, order kept",
                "version: STSv1\nmode: enforce\nmx: mail.example.com\nmx: *.example.net\nmx: backup.example.org\nmax_age: 86400\n",
                ok(
                    E,
                    86400,
                    &["mail.example.com", "*.example.net", "backup.example.org"],
                    &[],
                    &[],
                ),
            ),
            (
                "R-POL-3 fields in any order",
                "max_age: 5\nmx: mail.example.com\nmode: enforce\nversion: STSv1\n",
                ok(E, 5, MX, &[], &[]),
            ),
            // R-POL-2 tolerances.
            (
                "R-POL-2 BOM",
                "\u{feff}version: STSv1\nmode: enforce\nmx: mail.example.com\nmax_age: 86400\n",
                ok(E, 86400, MX, &[], &["line 1: UTF-8 byte order mark"]),
            ),
            (
                "R-POL-2 no final newline",
                "version: STSv1\nmode: enforce\nmx: mail.example.com\nmax_age: 86400",
                ok(E, 86400, MX, &[], &["line 4: no line end"]),
            ),
            (
                "R-POL-2 no final CRLF",
                "version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\nmax_age: 86400",
                ok(E, 86400, MX, &[], &["no line end"]),
            ),
            (
                "R-POL-2 blank lines",
                "\nversion: STSv1\n\r\nmode: enforce\n \t\nmx: mail.example.com\nmax_age: 86400\n\n",
                ok(
                    E,
                    86400,
                    MX,
                    &[],
                    &[
                        "line 1: blank",
                        "line 3: blank",
                        "line 5: blank",
                        "line 8: blank",
                    ],
                ),
            ),
            (
                "R-POL-2 leading white space",
                "  version: STSv1\n\tmode: enforce\nmx: mail.example.com\nmax_age: 86400\n",
                ok(
                    E,
                    86400,
                    MX,
                    &[],
                    &[
                        "line 1: white space at the start",
                        "line 2: white space at the start",
                    ],
                ),
            ),
            (
                "R-POL-2 white space before ':'",
                "version : STSv1\nmode\t: enforce\nmx : mail.example.com\nmax_age: 86400\n",
                ok(
                    E,
                    86400,
                    MX,
                    &[],
                    &[
                        "line 1: white space before ':'",
                        "line 2: white space before ':'",
                        "line 3: white space before ':'",
                    ],
                ),
            ),
            (
                "R-POL-2 trailing white space",
                "version: STSv1 \nmode: enforce\t\r\nmx: mail.example.com  \nmax_age: 86400 \n",
                ok(
                    E,
                    86400,
                    MX,
                    &[],
                    &[
                        "line 1: white space at the end",
                        "line 2: white space at the end",
                        "line 3: white space at the end",
                        "line 4: white space at the end",
                    ],
                ),
            ),
            (
                "R-POL-2 line without ':'",
                "version: STSv1\nmode: enforce\nthis is not a field\nmx: mail.example.com\nmax_age: 86400\n",
                ok(
                    E,
                    86400,
                    MX,
                    &[],
                    &["line 3: \"this is not a field\" is not a \"key: value\" line"],
                ),
            ),
            (
                "R-POL-2 bare mx without ':'",
                "version: STSv1\nmode: enforce\nmx\nmx: mail.example.com\nmax_age: 86400\n",
                ok(E, 86400, MX, &[], &["line 3: \"mx\" is not"]),
            ),
            // R-POL-4 duplicates.
            (
                "S-23 CRLF, unknown field, duplicate mode",
                "version: STSv1\r\nmode: enforce\r\nfoo: bar\r\nmode: testing\r\nmx: mail.example.com\r\nmax_age: 86400\r\n",
                ok(
                    E,
                    86400,
                    MX,
                    &[("foo", "bar")],
                    &["line 4: duplicate mode ignored, the one on line 2 is used"],
                ),
            ),
            (
                "R-POL-4 duplicate version",
                "version: STSv1\nversion: STSv2\nmode: enforce\nmx: mail.example.com\nmax_age: 86400\n",
                ok(E, 86400, MX, &[], &["line 2: duplicate version"]),
            ),
            (
                "R-POL-4 duplicate max_age",
                "version: STSv1\nmode: enforce\nmax_age: 100\nmx: mail.example.com\nmax_age: 200\n",
                ok(
                    E,
                    100,
                    MX,
                    &[],
                    &["line 5: duplicate max_age ignored, the one on line 3"],
                ),
            ),
            (
                "R-POL-4 later duplicate invalid",
                "version: STSv1\nmode: testing\nmode: bogus\nmx: mail.example.com\nmax_age: 86400\nmax_age: -1\n",
                ok(
                    T,
                    86400,
                    MX,
                    &[],
                    &["line 3: duplicate mode", "line 6: duplicate max_age"],
                ),
            ),
            (
                "R-POL-4 first duplicate invalid",
                "version: STSv1\nmode: bogus\nmode: enforce\nmx: mail.example.com\nmax_age: 86400\n",
                err(Some(2), "unknown mode \"bogus\""),
            ),
            // R-POL-5 unknown fields.
            (
                "R-POL-5 extensions kept in order",
                "version: STSv1\nz-last: 1\nmode: enforce\nfoo_bar.baz: some value with spaces\nmx: mail.example.com\nmax_age: 86400\nutf8: grüße\n",
                ok(
                    E,
                    86400,
                    MX,
                    &[
                        ("z-last", "1"),
                        ("foo_bar.baz", "some value with spaces"),
                        ("utf8", "grüße"),
                    ],
                    &[],
                ),
            ),
            (
                "R-POL-5 repeated extension kept",
                "version: STSv1\nmode: enforce\nx: 1\nx: 2\nmx: mail.example.com\nmax_age: 86400\n",
                ok(E, 86400, MX, &[("x", "1"), ("x", "2")], &[]),
            ),
            (
                "R-POL-5 extension with ':' in value",
                "version: STSv1\nmode: enforce\nurl: https://example.com/x\nmx: mail.example.com\nmax_age: 86400\n",
                ok(E, 86400, MX, &[("url", "https://example.com/x")], &[]),
            ),
            (
                "R-POL-5 extension empty value",
                "version: STSv1\nmode: enforce\nfoo:\nmx: mail.example.com\nmax_age: 86400\n",
                ok(
                    E,
                    86400,
                    MX,
                    &[],
                    &["line 3: value \"\" of unknown field \"foo\""],
                ),
            ),
            (
                "R-POL-5 extension bad name",
                "version: STSv1\nmode: enforce\nfoo bar: x\n_x: y\n: z\nmx: mail.example.com\nmax_age: 86400\n",
                ok(
                    E,
                    86400,
                    MX,
                    &[],
                    &[
                        "line 3: \"foo bar\" is not a valid field name",
                        "line 4: \"_x\" is not a valid",
                        "line 5: \"\" is not a valid",
                    ],
                ),
            ),
            (
                "R-POL-5 extension with tab in value",
                "version: STSv1\nmode: enforce\nfoo: a\tb\nmx: mail.example.com\nmax_age: 86400\n",
                ok(E, 86400, MX, &[], &["line 3: value \"a\\tb\""]),
            ),
            // R-POL-3 case-sensitive keys and values; missing fields.
            (
                "R-POL-3 Mode is unknown",
                "version: STSv1\nMode: enforce\nmx: mail.example.com\nmax_age: 86400\n",
                err(
                    None,
                    "no mode field (line 2 has \"Mode\": field names are case-sensitive)",
                ),
            ),
            (
                "R-POL-3 Mode beside mode",
                "version: STSv1\nMode: enforce\nmode: testing\nmx: mail.example.com\nmax_age: 86400\n",
                ok(
                    T,
                    86400,
                    MX,
                    &[("Mode", "enforce")],
                    &["line 2: \"Mode\" is not \"mode\""],
                ),
            ),
            (
                "R-POL-3 VERSION",
                "VERSION: STSv1\nmode: enforce\nmx: mail.example.com\nmax_age: 86400\n",
                err(None, "no version field (line 1 has \"VERSION\""),
            ),
            (
                "R-POL-3 MX is unknown",
                "version: STSv1\nmode: enforce\nMX: mail.example.com\nmax_age: 86400\n",
                err(
                    None,
                    "mode enforce needs at least one mx field (line 3 has \"MX\"",
                ),
            ),
            (
                "R-POL-3 missing version",
                "mode: enforce\nmx: mail.example.com\nmax_age: 86400\n",
                err(None, "no version field"),
            ),
            (
                "R-POL-3 missing mode",
                "version: STSv1\nmx: mail.example.com\nmax_age: 86400\n",
                err(None, "no mode field"),
            ),
            (
                "S-21 missing max_age",
                "version: STSv1\nmode: enforce\nmx: mail.example.com\n",
                err(None, "no max_age field"),
            ),
            ("R-POL-3 empty", "", err(None, "no version field")),
            ("R-POL-3 newline only", "\n", err(None, "no version field")),
            (
                "R-POL-3 BOM only",
                "\u{feff}",
                err(None, "no version field"),
            ),
            (
                "R-POL-3 version STSv2",
                "version: STSv2\nmode: enforce\nmx: mail.example.com\nmax_age: 86400\n",
                err(Some(1), "unknown version \"STSv2\""),
            ),
            (
                "R-POL-3 version stsv1",
                "version: stsv1\nmode: enforce\nmx: mail.example.com\nmax_age: 86400\n",
                err(Some(1), "unknown version \"stsv1\""),
            ),
            (
                "R-POL-3 version empty",
                "version:\nmode: enforce\nmx: mail.example.com\nmax_age: 86400\n",
                err(Some(1), "unknown version \"\""),
            ),
            (
                "R-POL-3 mode Enforce",
                "version: STSv1\nmode: Enforce\nmx: mail.example.com\nmax_age: 86400\n",
                err(Some(2), "unknown mode \"Enforce\""),
            ),
            (
                "R-POL-3 mode empty",
                "version: STSv1\nmode: \nmx: mail.example.com\nmax_age: 86400\n",
                err(Some(2), "unknown mode \"\""),
            ),
            (
                "R-POL-3 mode with inner space",
                "version: STSv1\nmode: en force\nmx: mail.example.com\nmax_age: 86400\n",
                err(Some(2), "unknown mode"),
            ),
            (
                "R-POL-3 mode report",
                "version: STSv1\nmode: report\nmx: mail.example.com\nmax_age: 86400\n",
                err(Some(2), "unknown mode \"report\""),
            ),
            // R-POL-1: bare CR and other characters are not line ends.
            (
                "R-POL-1 bare CR joins lines",
                "version: STSv1\nmode: enforce\rmax_age: 5\nmx: mail.example.com\n",
                err(
                    Some(2),
                    "unknown mode \"enforce\\rmax_age: 5\": expected \"enforce\", \"testing\" or \"none\" (a bare CR is not a line end, R-POL-1)",
                ),
            ),
            (
                "R-POL-1 mode ends in CR",
                "version: STSv1\r\nmode: enforce\r\r\nmx: mail.example.com\r\nmax_age: 86400\r\n",
                err(Some(2), "bare CR"),
            ),
            (
                "R-POL-1 version ends in CR",
                "version: STSv1\r\rmode: enforce\nmx: mail.example.com\nmax_age: 86400\n",
                err(Some(1), "bare CR"),
            ),
            (
                "R-POL-1 max_age ends in CR, no LF",
                "version: STSv1\nmode: enforce\nmx: mail.example.com\nmax_age: 86400\r",
                err(Some(4), "bare CR"),
            ),
            (
                "R-POL-1 mx ends in CR",
                "version: STSv1\nmode: enforce\nmx: mail.example.com\r\r\nmx: backup.example.com\nmax_age: 86400\n",
                ok(
                    E,
                    86400,
                    &["backup.example.com"],
                    &[],
                    &["line 3: unusable mx pattern \"mail.example.com\\r\""],
                ),
            ),
            (
                "R-POL-1 only CR line ends",
                "version: STSv1\rmode: enforce\rmx: mail.example.com\rmax_age: 86400\r",
                err(Some(1), "unknown version"),
            ),
            (
                "R-POL-1 extension ends in CR",
                "version: STSv1\nmode: enforce\nfoo: bar\r\r\nmx: mail.example.com\nmax_age: 86400\n",
                ok(
                    E,
                    86400,
                    MX,
                    &[],
                    &[
                        "line 3: value \"bar\\r\" of unknown field \"foo\" is empty or has control characters (a bare CR",
                    ],
                ),
            ),
            (
                "R-POL-1 U+2028 is not a line end",
                "version: STSv1\nmode: enforce\u{2028}max_age: 5\nmx: mail.example.com\n",
                err(Some(2), "unknown mode"),
            ),
            (
                "R-POL-1 NEL is not a line end",
                "version: STSv1\nmode: enforce\u{85}max_age: 5\nmx: mail.example.com\n",
                err(Some(2), "unknown mode"),
            ),
            (
                "R-POL-1 VT is not a line end",
                "version: STSv1\nmode: enforce\u{b}max_age: 5\nmx: mail.example.com\n",
                err(Some(2), "unknown mode"),
            ),
            (
                "R-POL-1 FF is not white space",
                "version: STSv1\nmode: enforce\u{c}\nmx: mail.example.com\nmax_age: 5\n",
                err(Some(2), "unknown mode"),
            ),
            // R-POL-6 max_age.
            (
                "R-POL-6 max_age 0",
                "version: STSv1\nmode: enforce\nmx: mail.example.com\nmax_age: 0\n",
                ok(E, 0, MX, &[], &["line 4: max_age 0"]),
            ),
            (
                "R-POL-6 max_age 10 zeros",
                "version: STSv1\nmode: enforce\nmx: mail.example.com\nmax_age: 0000000000\n",
                ok(E, 0, MX, &[], &["max_age 0"]),
            ),
            (
                "R-POL-6 leading zeros",
                "version: STSv1\nmode: enforce\nmx: mail.example.com\nmax_age: 0086400\n",
                ok(E, 86400, MX, &[], &[]),
            ),
            (
                "R-POL-6 at the limit",
                "version: STSv1\nmode: enforce\nmx: mail.example.com\nmax_age: 31557600\n",
                ok(E, MAX_AGE_LIMIT, MX, &[], &[]),
            ),
            (
                "R-POL-6 limit + 1 clamped",
                "version: STSv1\nmode: enforce\nmx: mail.example.com\nmax_age: 31557601\n",
                ok(
                    E,
                    MAX_AGE_LIMIT,
                    MX,
                    &[],
                    &["line 4: max_age 31557601 is more than 31557600 (one year); clamped"],
                ),
            ),
            (
                "R-POL-6 u32::MAX clamped",
                "version: STSv1\nmode: enforce\nmx: mail.example.com\nmax_age: 4294967295\n",
                ok(E, MAX_AGE_LIMIT, MX, &[], &["clamped"]),
            ),
            (
                "R-POL-6 10 digits clamped",
                "version: STSv1\nmode: enforce\nmx: mail.example.com\nmax_age: 9999999999\n",
                ok(
                    E,
                    MAX_AGE_LIMIT,
                    MX,
                    &[],
                    &["max_age 9999999999 is more than"],
                ),
            ),
            (
                "R-POL-6 11 digits",
                "version: STSv1\nmode: enforce\nmx: mail.example.com\nmax_age: 10000000000\n",
                err(Some(4), "has 11 digits, more than 10"),
            ),
            (
                "R-POL-6 11 digits, zeros",
                "version: STSv1\nmode: enforce\nmx: mail.example.com\nmax_age: 00000000001\n",
                err(Some(4), "11 digits"),
            ),
            (
                "R-POL-6 +5",
                "version: STSv1\nmode: enforce\nmx: mail.example.com\nmax_age: +5\n",
                err(
                    Some(4),
                    "max_age \"+5\" has a character other than the ASCII digits 0-9 ('+')",
                ),
            ),
            (
                "R-POL-6 5_000",
                "version: STSv1\nmode: enforce\nmx: mail.example.com\nmax_age: 5_000\n",
                err(Some(4), "('_')"),
            ),
            (
                "R-POL-6 -1",
                "version: STSv1\nmode: enforce\nmx: mail.example.com\nmax_age: -1\n",
                err(Some(4), "('-')"),
            ),
            (
                "R-POL-6 1.5",
                "version: STSv1\nmode: enforce\nmx: mail.example.com\nmax_age: 1.5\n",
                err(Some(4), "('.')"),
            ),
            (
                "R-POL-6 1e3",
                "version: STSv1\nmode: enforce\nmx: mail.example.com\nmax_age: 1e3\n",
                err(Some(4), "('e')"),
            ),
            (
                "R-POL-6 0x10",
                "version: STSv1\nmode: enforce\nmx: mail.example.com\nmax_age: 0x10\n",
                err(Some(4), "('x')"),
            ),
            (
                "R-POL-6 with unit",
                "version: STSv1\nmode: enforce\nmx: mail.example.com\nmax_age: 86400s\n",
                err(Some(4), "('s')"),
            ),
            (
                "R-POL-6 inner space",
                "version: STSv1\nmode: enforce\nmx: mail.example.com\nmax_age: 86 400\n",
                err(Some(4), "(' ')"),
            ),
            (
                "R-POL-6 Arabic-Indic digits",
                "version: STSv1\nmode: enforce\nmx: mail.example.com\nmax_age: ٨٦٤٠٠\n",
                err(Some(4), "('٨')"),
            ),
            (
                "R-POL-6 fullwidth digits",
                "version: STSv1\nmode: enforce\nmx: mail.example.com\nmax_age: ８６４００\n",
                err(Some(4), "ASCII digits"),
            ),
            (
                "R-POL-6 empty",
                "version: STSv1\nmode: enforce\nmx: mail.example.com\nmax_age:\n",
                err(Some(4), "max_age is empty"),
            ),
            (
                "R-POL-6 blank",
                "version: STSv1\nmode: enforce\nmx: mail.example.com\nmax_age:   \n",
                err(Some(4), "max_age is empty"),
            ),
            // R-POL-7 mx patterns.
            (
                "R-POL-7 IDN wildcard",
                "version: STSv1\nmode: enforce\nmx: *.bücher.example\nmax_age: 86400\n",
                ok(E, 86400, &["*.xn--bcher-kva.example"], &[], &[]),
            ),
            (
                "R-POL-7 uppercase and trailing dot",
                "version: STSv1\nmode: enforce\nmx: MAIL.Example.COM.\nmax_age: 86400\n",
                ok(E, 86400, MX, &[], &[]),
            ),
            (
                "R-POL-7 unusable patterns dropped",
                "version: STSv1\nmode: enforce\nmx: *\nmx: *.*.example.com\nmx: a.*.example.com\nmx: **.example.com\nmx: 192.0.2.1\nmx:\nmx: _x\nmx: mail.example.com\nmax_age: 86400\n",
                ok(
                    E,
                    86400,
                    MX,
                    &[],
                    &[
                        "line 3: unusable mx pattern \"*\"",
                        "line 4:",
                        "line 5:",
                        "line 6:",
                        "line 7: unusable mx pattern \"192.0.2.1\"",
                        "line 8: unusable mx pattern \"\"",
                        "line 9: unusable mx pattern \"_x\"",
                    ],
                ),
            ),
            (
                "R-POL-7 enforce, all dropped",
                "version: STSv1\nmode: enforce\nmx: *\nmx: _x\nmax_age: 86400\n",
                err(
                    None,
                    "mode enforce needs a usable mx pattern, and all 2 were dropped",
                ),
            ),
            (
                "R-POL-7 testing, all dropped",
                "version: STSv1\nmode: testing\nmx: [::1]\nmax_age: 86400\n",
                err(None, "mode testing needs a usable mx pattern"),
            ),
            (
                "R-POL-7 enforce, no mx",
                "version: STSv1\nmode: enforce\nmax_age: 86400\n",
                err(None, "mode enforce needs at least one mx field"),
            ),
            (
                "R-POL-7 testing, no mx",
                "version: STSv1\nmode: testing\nmax_age: 86400\n",
                err(None, "mode testing needs at least one mx field"),
            ),
            (
                "R-POL-7 none, all dropped",
                "version: STSv1\nmode: none\nmx: *\nmax_age: 86400\n",
                ok(N, 86400, &[], &[], &["line 3: unusable mx pattern \"*\""]),
            ),
        ];
        for (name, input, want) in cases {
            check(name, input, want);
        }
    }

    /// R-POL-8: the text is kept verbatim; from_bytes handles encodings (R-POL-2).
    #[test]
    fn from_bytes() {
        let text = "version: STSv1\nmode: enforce\nmx: mail.example.com\nmax_age: 86400\n";
        let p = Policy::from_bytes(text.as_bytes()).unwrap();
        assert_eq!(p.text(), text);
        assert_eq!(p, Policy::parse(text).unwrap());

        let bom = [b"\xef\xbb\xbf".as_slice(), text.as_bytes()].concat();
        let p = Policy::from_bytes(&bom).unwrap();
        assert_eq!(p.text().as_bytes(), bom.as_slice(), "BOM kept in text()");
        assert_eq!(p.warnings().len(), 1);
        assert_eq!(p.mode(), Mode::Enforce);

        let latin1 = b"version: STSv1\nmode: enforce\nmx: m\xfcller.example\nmax_age: 86400\n";
        match Policy::from_bytes(latin1) {
            Err(Error::InvalidPolicy { line, reason }) => {
                assert_eq!(line, Some(3));
                assert!(reason.contains("byte 0xfc at offset 34"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
        // UTF-16 with its BOM is not UTF-8.
        assert!(matches!(
            Policy::from_bytes(b"\xff\xfev\x00"),
            Err(Error::InvalidPolicy { line: Some(1), .. })
        ));
    }

    /// R-MX-1, R-MX-2 through the policy (scenarios S-50 to S-55, S-61, S-62).
    #[test]
    fn policy_matches_mx_hosts() {
        let p = Policy::parse(
            "version: STSv1\nmode: enforce\nmx: mail.example.com\nmx: *.example.net\nmax_age: 86400\n",
        )
        .unwrap();
        let cases = [
            ("mail.example.com", true),   // S-50
            ("MAIL.Example.COM.", true),  // S-51
            ("mx1.example.net", true),    // S-52, S-61
            ("a.mx1.example.net", false), // S-53, S-62
            ("example.net", false),       // S-54
            ("evil.com", false),          // S-55
            ("", false),
            ("192.0.2.1", false),
            ("mail.example.com..", false),
        ];
        for (host, want) in cases {
            assert_eq!(p.matches(host), want, "{host}");
            if let Ok(d) = Domain::new(host) {
                assert_eq!(p.matches_domain(&d), want, "{host}");
            }
        }
        let none = Policy::parse("version: STSv1\nmode: none\nmax_age: 86400\n").unwrap();
        assert!(!none.matches("mail.example.com"));
    }

    /// R-POL-3: modes are case-sensitive and round-trip.
    #[test]
    fn mode_strings() {
        for mode in [Mode::Enforce, Mode::Testing, Mode::None] {
            assert_eq!(mode.as_str().parse::<Mode>().unwrap(), mode);
            assert_eq!(mode.to_string(), mode.as_str());
        }
        for bad in ["Enforce", "TESTING", "None", "", " none", "enforce "] {
            assert!(
                matches!(
                    bad.parse::<Mode>(),
                    Err(Error::InvalidPolicy { line: None, .. })
                ),
                "{bad:?}"
            );
        }
    }
}
