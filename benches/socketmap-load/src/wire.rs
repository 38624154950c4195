//! The socketmap protocol as a client speaks it (the Sendmail/Postfix socketmap table, Postfix's
//! `socketmap_table(5)`): a request is the netstring `NAME KEY`, a reply the netstring
//! `OK <data>`, `NOTFOUND `, `TEMP <reason>` or `PERM <reason>`. Pure functions, table-tested.

use std::fmt;

/// The largest reply payload accepted, in bytes: the limit `mtasts serve` keeps to (R-SRV-1 in
/// docs/rules.md), far above any policy answer.
pub const MAX_REPLY: usize = 100_000;

/// The netstring of the request `MAP KEY`.
pub fn request(map: &str, key: &str) -> Vec<u8> {
    let payload = format!("{map} {key}");
    let mut out = format!("{}:", payload.len()).into_bytes();
    out.extend_from_slice(payload.as_bytes());
    out.push(b',');
    out
}

/// A reply that is not a well-formed netstring: the connection is unusable after it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WireError {
    /// The length is not decimal digits followed by `:`.
    BadLength,
    /// The length is above [`MAX_REPLY`].
    TooLong,
    /// The payload is not followed by `,`.
    MissingComma,
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            WireError::BadLength => "malformed netstring length in the reply",
            WireError::TooLong => "reply longer than 100000 bytes",
            WireError::MissingComma => "reply netstring not terminated by ','",
        })
    }
}

/// One netstring from the front of `buf`: `Ok(None)` when more bytes are needed,
/// `Ok(Some((payload, used)))` when complete (`used`: the bytes it took).
pub fn parse_reply(buf: &[u8]) -> Result<Option<(&[u8], usize)>, WireError> {
    // 100000 has six digits: a seventh can only be a longer length.
    let digits = buf
        .iter()
        .take(7)
        .take_while(|b| b.is_ascii_digit())
        .count();
    if digits > 6 {
        return Err(WireError::TooLong);
    }
    let Some(&after) = buf.get(digits) else {
        return Ok(None);
    };
    if digits == 0 || after != b':' {
        return Err(WireError::BadLength);
    }
    let length = buf[..digits]
        .iter()
        .fold(0usize, |n, d| n * 10 + usize::from(d - b'0'));
    if length > MAX_REPLY {
        return Err(WireError::TooLong);
    }
    let start = digits + 1;
    let end = start + length;
    match buf.get(end) {
        None => Ok(None),
        Some(b',') => Ok(Some((&buf[start..end], end + 1))),
        Some(_) => Err(WireError::MissingComma),
    }
}

/// What a reply says, in the classes the report counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer {
    /// `OK secure ...`: an enforced MTA-STS policy.
    OkSecure,
    /// `OK` with any other data.
    OkOther,
    /// `NOTFOUND `.
    NotFound,
    /// `TEMP ...`.
    Temp,
    /// `PERM ...`.
    Perm,
    /// Anything else (not a socketmap reply).
    Other,
}

impl Answer {
    /// Every class, in the order of [`Answer::index`].
    pub const ALL: [Answer; 6] = [
        Answer::OkSecure,
        Answer::OkOther,
        Answer::NotFound,
        Answer::Temp,
        Answer::Perm,
        Answer::Other,
    ];

    /// The class of a reply payload.
    pub fn of(payload: &[u8]) -> Answer {
        if payload.starts_with(b"OK secure") {
            Answer::OkSecure
        } else if payload.starts_with(b"OK ") {
            Answer::OkOther
        } else if payload.starts_with(b"NOTFOUND") {
            Answer::NotFound
        } else if payload.starts_with(b"TEMP") {
            Answer::Temp
        } else if payload.starts_with(b"PERM") {
            Answer::Perm
        } else {
            Answer::Other
        }
    }

    /// Its position in [`Answer::ALL`] (a counter array's index).
    pub fn index(self) -> usize {
        self as usize
    }

    /// Its name in the output.
    pub fn label(self) -> &'static str {
        match self {
            Answer::OkSecure => "OK secure",
            Answer::OkOther => "OK other",
            Answer::NotFound => "NOTFOUND",
            Answer::Temp => "TEMP",
            Answer::Perm => "PERM",
            Answer::Other => "other",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests() {
        assert_eq!(
            request("postfix", "example.com"),
            b"19:postfix example.com,"
        );
        assert_eq!(request("m", ""), b"2:m ,");
    }

    /// What `parse_reply` returns, with the payload borrowed from a test's input.
    type Parsed<'a> = Result<Option<(&'a [u8], usize)>, WireError>;

    #[test]
    fn replies() {
        let cases: &[(&[u8], Parsed)] = &[
            (b"", Ok(None)),
            (b"9", Ok(None)),
            (b"9:", Ok(None)),
            (b"9:NOTFOUND ", Ok(None)),
            (b"9:NOTFOUND ,", Ok(Some((b"NOTFOUND ", 12)))),
            (b"9:NOTFOUND ,4:OK x,", Ok(Some((b"NOTFOUND ", 12)))),
            (b"0:,", Ok(Some((b"", 3)))),
            (b"9:NOTFOUND x", Err(WireError::MissingComma)),
            (b":x,", Err(WireError::BadLength)),
            (b"9x", Err(WireError::BadLength)),
            (b"100001:", Err(WireError::TooLong)),
            (b"1000000", Err(WireError::TooLong)),
            (b"100000", Ok(None)),
        ];
        for (input, want) in cases {
            assert_eq!(
                &parse_reply(input),
                want,
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn answers() {
        let cases: &[(&[u8], Answer)] = &[
            (
                b"OK secure match=a.example servername=hostname",
                Answer::OkSecure,
            ),
            (b"OK dane", Answer::OkOther),
            (b"NOTFOUND ", Answer::NotFound),
            (b"TEMP example.com: timed out", Answer::Temp),
            (b"PERM malformed request", Answer::Perm),
            (b"", Answer::Other),
            (b"ok secure", Answer::Other),
        ];
        for (payload, want) in cases {
            assert_eq!(Answer::of(payload), *want);
        }
        for (i, a) in Answer::ALL.iter().enumerate() {
            assert_eq!(a.index(), i);
        }
    }
}
