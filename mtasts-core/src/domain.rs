//! Normalised domain and host names (R-DISC-1, R-MX-1).
//!
//! RFC 8461 §3.1 queries `_mta-sts.<policy-domain>` and §3.3 fetches from
//! `mta-sts.<policy-domain>`; §4.1 compares MX host names with policy patterns. All of these
//! work on one canonical form: lowercase A-labels (RFC 5890), no trailing dot. [`Domain`] is
//! that form, produced once at the edge by [`Domain::new`].

use std::borrow::Cow;
use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use idna::AsciiDenyList;
use idna::uts46::{DnsLength, Hyphens, Uts46};

use crate::error::Error;

/// Longest host name, in octets, without the trailing dot (RFC 1035 §2.3.4: 255 octets on the
/// wire, i.e. 253 in text form).
const MAX_NAME_LEN: usize = 253;
/// Longest label, in octets (RFC 1035 §2.3.4).
const MAX_LABEL_LEN: usize = 63;

/// A domain or host name in canonical form: lowercase A-labels, no trailing dot (R-DISC-1,
/// R-MX-1).
///
/// Used for policy domains (RFC 8461 §3.1), the policy host (§3.3) and MX host names (§4.1).
/// Two `Domain`s are the same name exactly when their strings are equal, so comparison,
/// hashing and ordering are plain string operations.
///
/// ```rust
/// use mtasts_core::Domain;
///
/// let d = Domain::new("Bücher.Example.")?;
/// assert_eq!(d.as_str(), "xn--bcher-kva.example");
/// assert_eq!(d.txt_name(), "_mta-sts.xn--bcher-kva.example");
/// assert_eq!(d.policy_url(), "https://mta-sts.xn--bcher-kva.example/.well-known/mta-sts.txt");
/// assert!(Domain::new("192.0.2.1").is_err());
/// # Ok::<(), mtasts_core::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Domain(String);

impl Domain {
    /// Validates and normalises a domain or host name (R-DISC-1, R-MX-1; RFC 8461 §3.1, §4.1).
    ///
    /// Normalisation: one trailing dot is removed; ASCII letters are lowercased; U-labels are
    /// converted to A-labels with UTS #46 (non-transitional processing, as IDNA2008 asks).
    /// Nothing else is changed: surrounding white space is an error, not trimmed.
    ///
    /// The result must be a host name (RFC 5321 `Domain`, RFC 1123 LDH rules): labels of
    /// letters, digits and `-`, 1 to 63 octets, neither starting nor ending with `-`; at most
    /// 253 octets in all. Labels starting with `xn--` must be valid A-labels.
    ///
    /// Rejected, with [`Error::InvalidDomain`] and a reason: the empty string and `.`; IPv4
    /// and IPv6 literals, bracketed or not (`[::1]`, `[IPv6:...]`), and names whose last label
    /// is numeric (they read as IPv4 addresses); empty labels (`a..b`); over-long labels or
    /// names; any character other than letters, digits, `-` and `.` after conversion
    /// (including `_`: `_mta-sts.example` is not a host name).
    ///
    /// A name that is already lowercase ASCII LDH without a trailing dot (the usual case, on
    /// the path of every cached lookup) is validated without IDNA processing, except for
    /// labels starting with `xn--`, which IDNA verifies.
    pub fn new(input: &str) -> Result<Domain, Error> {
        normalize_name(input)
            .map(|name| Domain(name.into_owned()))
            .map_err(|reason| Error::InvalidDomain {
                input: input.to_owned(),
                reason,
            })
    }

    /// The name: lowercase A-labels, no trailing dot.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The name of the TXT record announcing a policy: `_mta-sts.<domain>` (R-DISC-1,
    /// RFC 8461 §3.1).
    ///
    /// For a domain near the 253-octet limit this name is too long for DNS; the lookup then
    /// fails, as it should.
    pub fn txt_name(&self) -> String {
        format!("_mta-sts.{}", self.0)
    }

    /// The host serving the policy: `mta-sts.<domain>` (R-FETCH-1, RFC 8461 §3.3).
    pub fn policy_host(&self) -> String {
        format!("mta-sts.{}", self.0)
    }

    /// The URL of the policy: `https://mta-sts.<domain>/.well-known/mta-sts.txt` (R-FETCH-1,
    /// RFC 8461 §3.3).
    pub fn policy_url(&self) -> String {
        format!("https://mta-sts.{}/.well-known/mta-sts.txt", self.0)
    }
}

impl FromStr for Domain {
    type Err = Error;

    /// Same as [`Domain::new`].
    fn from_str(s: &str) -> Result<Domain, Error> {
        Domain::new(s)
    }
}

impl fmt::Display for Domain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for Domain {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// Normalises a host name to lowercase A-labels without a trailing dot, or says why it cannot
/// be one. Shared by [`Domain::new`] and [`crate::MxPattern::parse`], which wrap the reason in
/// their own error variant.
pub(crate) fn normalize_name(input: &str) -> Result<Cow<'_, str>, String> {
    if input.is_empty() {
        return Err("the name is empty".into());
    }
    if input.starts_with('[') {
        return Err("an address literal in brackets is not a host name".into());
    }
    let (name, had_dot) = match input.strip_suffix('.') {
        Some(stripped) => (stripped, true),
        None => (input, false),
    };
    if name.is_empty() {
        return Err("the root \".\" alone is not a host name".into());
    }
    if name.parse::<Ipv4Addr>().is_ok() {
        return Err("an IPv4 address is not a host name".into());
    }
    if name.parse::<Ipv6Addr>().is_ok() {
        return Err("an IPv6 address is not a host name".into());
    }

    // Fast path: already canonical ASCII. No allocation beyond the caller's copy, no IDNA
    // unless a label claims to be an A-label.
    if !had_dot && is_canonical_ascii(name) {
        check_host_name(name)?;
        return Ok(Cow::Borrowed(name));
    }

    let converted: String = if name.is_ascii() {
        name.to_ascii_lowercase()
    } else {
        to_a_labels(name)?
    };
    // UTS #46 maps some non-ASCII full stops (e.g. U+3002) to ".", so a trailing dot can
    // appear only now; one is still allowed when the input had none.
    let converted = match converted.strip_suffix('.') {
        Some(stripped) if !had_dot => stripped.to_owned(),
        _ => converted,
    };
    if converted.is_empty() {
        return Err("the root \".\" alone is not a host name".into());
    }
    check_characters(&converted)?;
    check_host_name(&converted)?;
    Ok(Cow::Owned(converted))
}

/// True when every byte is a lowercase letter, a digit, `-` or `.`.
fn is_canonical_ascii(name: &str) -> bool {
    name.bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
}

/// Rejects the first character that is not a lowercase letter, digit, `-` or `.`, naming it.
fn check_characters(name: &str) -> Result<(), String> {
    match name
        .chars()
        .find(|&c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.'))
    {
        None => Ok(()),
        Some(':') => {
            Err("character ':' is not allowed in a host name (an IPv6 address or a port?)".into())
        }
        Some(c) => Err(format!(
            "character {c:?} is not allowed in a host name (letters, digits, '-' and '.' only)"
        )),
    }
}

/// LDH host-name rules on a name made of lowercase letters, digits, `-` and `.` only: label
/// and name lengths, hyphen positions, numeric last label, and A-label validity of `xn--`
/// labels.
fn check_host_name(name: &str) -> Result<(), String> {
    if name.len() > MAX_NAME_LEN {
        return Err(format!(
            "the name is {} octets long, more than {MAX_NAME_LEN}",
            name.len()
        ));
    }
    for label in name.split('.') {
        if label.is_empty() {
            return Err("the name has an empty label (\"..\" or a leading dot)".into());
        }
        if label.len() > MAX_LABEL_LEN {
            return Err(format!(
                "label {label:?} is {} octets long, more than {MAX_LABEL_LEN}",
                label.len()
            ));
        }
        if label.starts_with('-') {
            return Err(format!("label {label:?} starts with '-'"));
        }
        if label.ends_with('-') {
            return Err(format!("label {label:?} ends with '-'"));
        }
        if label.starts_with("xn--") && !is_valid_a_label(label) {
            return Err(format!("label {label:?} is not a valid A-label (IDNA)"));
        }
    }
    // Split always yields at least one item; the loop above has checked it is not empty.
    let last = name.rsplit('.').next().unwrap_or(name);
    if is_numeric_label(last) {
        return Err(format!(
            "the last label {last:?} is numeric: that is an IPv4 address, not a host name"
        ));
    }
    Ok(())
}

/// A last label that URL parsers and resolvers read as part of an IPv4 address: decimal
/// digits, or `0x` followed by hex digits (WHATWG URL "ends in a number").
fn is_numeric_label(label: &str) -> bool {
    if label.bytes().all(|b| b.is_ascii_digit()) {
        return true;
    }
    match label.strip_prefix("0x") {
        Some(hex) => hex.bytes().all(|b| b.is_ascii_hexdigit()),
        None => false,
    }
}

/// An `xn--` label is a valid A-label when UTS #46 ToASCII (which decodes and validates the
/// Punycode) gives it back unchanged.
fn is_valid_a_label(label: &str) -> bool {
    Uts46::new()
        .to_ascii(
            label.as_bytes(),
            AsciiDenyList::STD3,
            Hyphens::CheckFirstLast,
            DnsLength::Ignore,
        )
        .is_ok_and(|ascii| ascii == label)
}

/// UTS #46 ToASCII of a name with non-ASCII characters. The LDH checks are done afterwards by
/// the caller, so the reason for those is precise; an IDNA failure is reported with the first
/// label that fails on its own.
fn to_a_labels(name: &str) -> Result<String, String> {
    let uts46 = Uts46::new();
    let convert = |s: &str| {
        uts46
            .to_ascii(
                s.as_bytes(),
                AsciiDenyList::EMPTY,
                Hyphens::CheckFirstLast,
                DnsLength::Ignore,
            )
            .map(Cow::into_owned)
    };
    convert(name).map_err(
        |_| match name.split('.').find(|label| convert(label).is_err()) {
            Some(label) => format!("label {label:?} is not a valid internationalized label (IDNA)"),
            None => "the name is not a valid internationalized domain name (IDNA)".into(),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// R-DISC-1 / R-MX-1: accepted names and their canonical form.
    #[test]
    fn normalises_valid_names() {
        let long_label = "a".repeat(63);
        let long_name = format!("{0}.{0}.{0}.{1}", "a".repeat(63), "b".repeat(61));
        assert_eq!(long_name.len(), 253);
        let cases: &[(&str, &str)] = &[
            ("example.com", "example.com"),
            ("Example.COM", "example.com"),
            ("Example.COM.", "example.com"),
            ("example.com.", "example.com"),
            ("MAIL.Example.COM.", "mail.example.com"),
            ("localhost", "localhost"),
            ("a-b.c-d.example", "a-b.c-d.example"),
            ("ab--cd.example", "ab--cd.example"),
            ("123.example", "123.example"),
            ("example.com0", "example.com0"),
            ("bücher.example", "xn--bcher-kva.example"),
            ("BÜCHER.example.", "xn--bcher-kva.example"),
            ("xn--bcher-kva.example", "xn--bcher-kva.example"),
            ("XN--BCHER-KVA.EXAMPLE", "xn--bcher-kva.example"),
            ("例え.テスト", "xn--r8jz45g.xn--zckzah"),
            ("bücher。example", "xn--bcher-kva.example"),
            ("bücher.example。", "xn--bcher-kva.example"),
            ("ｅｘａｍｐｌｅ．ｃｏｍ", "example.com"),
            (&long_label, &long_label),
            (&long_name, &long_name),
        ];
        for (input, want) in cases {
            let d = Domain::new(input).unwrap_or_else(|e| panic!("{input:?}: {e}"));
            assert_eq!(d.as_str(), *want, "input {input:?}");
            assert_eq!(d.to_string(), *want);
            assert_eq!(d.as_ref(), *want);
            assert_eq!(input.parse::<Domain>().unwrap(), d);
            // Idempotent: the canonical form normalises to itself.
            assert_eq!(Domain::new(d.as_str()).unwrap(), d);
        }
    }

    /// R-DISC-1 / R-MX-1: rejected names, each with the reason's key words.
    #[test]
    fn rejects_invalid_names() {
        let long_label = format!("{}.example", "a".repeat(64));
        let long_name = format!("{0}.{0}.{0}.{1}", "a".repeat(63), "b".repeat(62));
        let cases: &[(&str, &str)] = &[
            ("", "empty"),
            (".", "root"),
            ("..", "empty label"),
            ("a..b", "empty label"),
            (".example.com", "empty label"),
            ("example.com..", "empty label"),
            ("192.0.2.1", "IPv4"),
            ("192.0.2.1.", "IPv4"),
            ("127.1", "numeric"),
            ("1.2.3.0x7f", "numeric"),
            ("example.123", "numeric"),
            ("::1", "IPv6"),
            ("2001:db8::1", "IPv6"),
            ("[::1]", "address literal"),
            ("[192.0.2.1]", "address literal"),
            ("[IPv6:2001:db8::1]", "address literal"),
            ("example.com:25", "':'"),
            ("_mta-sts.example.com", "'_'"),
            ("a_b.example", "'_'"),
            (" example.com", "' '"),
            ("example.com ", "' '"),
            ("exa mple.com", "' '"),
            ("example.com\n", "'\\n'"),
            ("*.example.com", "'*'"),
            ("-a.example", "starts with '-'"),
            ("a-.example", "ends with '-'"),
            ("example.-com", "starts with '-'"),
            (&long_label, "more than 63"),
            (&long_name, "more than 253"),
            ("xn--zz.example", "A-label"),
            ("xn--.example", "ends with '-'"),
            ("XN--ZZ.example", "A-label"),
            ("bücher_x.example", "'_'"),
            ("a\u{0}b.example", "not allowed"),
            ("bü\u{0}.example", ""),
            ("\u{200b}.example", ""),
            ("bücher..example", "empty label"),
            ("ü-.example", ""),
            ("-ü.example", ""),
        ];
        for (input, reason) in cases {
            match Domain::new(input) {
                Ok(d) => panic!("{input:?} accepted as {d}"),
                Err(Error::InvalidDomain {
                    input: got,
                    reason: why,
                }) => {
                    assert_eq!(got, *input);
                    assert!(
                        why.contains(reason),
                        "{input:?}: reason {why:?} lacks {reason:?}"
                    );
                }
                Err(other) => panic!("{input:?}: wrong error {other:?}"),
            }
        }
    }

    /// R-DISC-1, R-FETCH-1: derived names.
    #[test]
    fn derived_names() {
        let d = Domain::new("Example.COM.").unwrap();
        assert_eq!(d.txt_name(), "_mta-sts.example.com");
        assert_eq!(d.policy_host(), "mta-sts.example.com");
        assert_eq!(
            d.policy_url(),
            "https://mta-sts.example.com/.well-known/mta-sts.txt"
        );
    }

    /// The fast path borrows the input: no IDNA, no copy inside the normaliser.
    #[test]
    fn fast_path_borrows() {
        assert!(matches!(
            normalize_name("mail.example.com"),
            Ok(Cow::Borrowed("mail.example.com"))
        ));
        assert!(matches!(
            normalize_name("Mail.example.com"),
            Ok(Cow::Owned(_))
        ));
    }
}
