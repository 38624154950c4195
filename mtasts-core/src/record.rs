//! The `_mta-sts` TXT record (rules file §1: R-DISC-2 to R-DISC-6; RFC 8461 §3.1).
//!
//! Grammar, case-sensitive:
//! ```text
//! record     = "v=STSv1" 1*(delim field) [delim]
//! delim      = *WSP ";" *WSP                 ; WSP = SP / HTAB
//! field      = "id=" 1*32(ALPHA / DIGIT)      ; required
//!            / ext-name "=" ext-value
//! ext-name   = (ALPHA / DIGIT) *31(ALPHA / DIGIT / "_" / "-" / ".")
//! ext-value  = 1*(%x21-3A / %x3C / %x3E-7E)    ; visible ASCII but "=" and ";"
//! ```

use crate::error::Error;

/// The literal every STS record starts with (case-sensitive).
const VERSION: &str = "v=STSv1";
/// Longest `id` value (RFC 8461 §3.1).
const MAX_ID_LEN: usize = 32;
/// Longest extension field name (RFC 8461 §3.1: one character and up to 31 more).
const MAX_EXT_NAME_LEN: usize = 32;

/// A syntactically valid STS TXT record (RFC 8461 §3.1).
///
/// Its `id` tells whether a cached policy is current (R-CACHE-2); unknown fields are kept
/// (R-DISC-5), and so is the text as published.
///
/// ```rust
/// use mtasts_core::Record;
///
/// let r = Record::parse("v=STSv1; id=20240101T000000; ext=x")?;
/// assert_eq!(r.id(), "20240101T000000");
/// assert_eq!(r.extensions(), &[("ext".to_string(), "x".to_string())]);
/// assert!(Record::parse("v=STSv1; id=2024-01-01").is_err());
/// # Ok::<(), mtasts_core::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    id: String,
    raw: String,
    extensions: Vec<(String, String)>,
}

impl Record {
    /// Parses one STS record, the character-strings of its TXT RR already concatenated
    /// (R-DISC-2, R-DISC-4; RFC 8461 §3.1).
    ///
    /// The grammar above is followed exactly, so each of these is an
    /// [`Error::InvalidRecord`] naming what is wrong: an `id` with a character other than
    /// letters and digits, or longer than 32; `v=STSv1` not first; an empty field (`;;`);
    /// space around `=`; white space after the last field without a `;`; no `id`.
    ///
    /// Tolerated: unknown fields (R-DISC-5), kept in [`Record::extensions`]; a repeated `id`
    /// (R-DISC-6): the first one is used, later ones need only be well-formed field values
    /// and are ignored with a logged warning.
    pub fn parse(txt: &str) -> Result<Record, Error> {
        parse_record(txt).map_err(|reason| Error::InvalidRecord { reason })
    }

    /// The policy id (`id=` field): 1 to 32 letters and digits (RFC 8461 §3.1).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The record text verbatim, as it was parsed.
    pub fn raw(&self) -> &str {
        &self.raw
    }

    /// The fields other than `v` and `id`, in order, as (name, value) (R-DISC-5: ignored by
    /// the protocol, kept for display).
    pub fn extensions(&self) -> &[(String, String)] {
        &self.extensions
    }
}

/// Picks the STS record among the TXT RRs of `_mta-sts.<domain>` (R-DISC-2, R-DISC-3,
/// R-DISC-4; RFC 8461 §3.1).
///
/// Each item is one RR, its character-strings already concatenated without separators
/// (R-DISC-2); it may be any bytes. An RR counts as an STS record when it starts with
/// `v=STSv1` followed by SP, HTAB or `;` (so `v=STSv1 ;id=a` counts, `v=STSv12;id=a` and a
/// bare `v=STSv1` do not); the others are ignored.
///
/// - `Ok(None)`: no STS record at all.
/// - `Ok(Some(record))`: exactly one, and it is valid.
/// - `Err(Error::InvalidRecord)`: more than one STS record, or the one is invalid (including
///   one that is not UTF-8). Both mean "no policy" (R-DISC-3, R-DISC-4).
///
/// ```rust
/// use mtasts_core::select_record;
///
/// let rrs = ["site-verification=x", "v=STSv1; id=abc;"];
/// assert_eq!(select_record(&rrs)?.unwrap().id(), "abc");
/// assert!(select_record(&["v=STSv1; id=a", "v=STSv1; id=b"]).is_err());
/// assert!(select_record::<&str>(&[])?.is_none());
/// # Ok::<(), mtasts_core::Error>(())
/// ```
pub fn select_record<T: AsRef<[u8]>>(rrs: &[T]) -> Result<Option<Record>, Error> {
    let mut sts = rrs.iter().map(AsRef::as_ref).filter(|rr| is_sts_record(rr));
    let Some(first) = sts.next() else {
        return Ok(None);
    };
    let others = sts.count();
    if others > 0 {
        return Err(Error::InvalidRecord {
            reason: format!(
                "{} STS records found; RFC 8461 §3.1 requires exactly one",
                others + 1
            ),
        });
    }
    // On a UTF-8 error, `valid_up_to()` is the index of the first bad byte, so it is in bounds.
    let txt = std::str::from_utf8(first).map_err(|e| Error::InvalidRecord {
        reason: format!(
            "the STS record is not ASCII text (byte 0x{:02x} at offset {})",
            first[e.valid_up_to()],
            e.valid_up_to()
        ),
    })?;
    Record::parse(txt).map(Some)
}

/// R-DISC-3: an RR counts as an STS record when it starts with `v=STSv1` followed by SP,
/// HTAB or `;`.
fn is_sts_record(rr: &[u8]) -> bool {
    rr.strip_prefix(VERSION.as_bytes())
        .is_some_and(|rest| matches!(rest.first(), Some(b' ' | b'\t' | b';')))
}

fn is_wsp(c: char) -> bool {
    c == ' ' || c == '\t'
}

/// The record grammar; the error is the reason.
fn parse_record(txt: &str) -> Result<Record, String> {
    let Some(mut rest) = txt.strip_prefix(VERSION) else {
        return Err(missing_version(txt));
    };
    let mut id: Option<&str> = None;
    let mut extensions = Vec::new();
    let mut fields = 0usize;
    while !rest.is_empty() {
        // delim = *WSP ";" *WSP
        let after_wsp = rest.trim_start_matches(is_wsp);
        let Some(after_semi) = after_wsp.strip_prefix(';') else {
            if after_wsp.is_empty() && fields > 0 {
                // Trailing white space without a final ';' is outside the grammar, but
                // rejecting the record would silently drop the domain's protection (the
                // rules file's guiding principle): tolerate it and say so.
                log::warn!("_mta-sts record ends in white space without ';' (tolerated)");
                break;
            }
            return Err(if after_wsp.is_empty() {
                format!("expected ';' after \"{VERSION}\"")
            } else if fields == 0 && !rest.starts_with(is_wsp) {
                let token = rest.split([' ', '\t', ';']).next().unwrap_or_default();
                format!("the record starts with \"{VERSION}{token}\", not \"{VERSION}\"")
            } else if fields == 0 {
                format!("expected ';' after \"{VERSION}\"")
            } else {
                let token = after_wsp.split([' ', '\t', ';']).next().unwrap_or_default();
                format!("expected ';' before {token:?}")
            });
        };
        let field_start = after_semi.trim_start_matches(is_wsp);
        if field_start.is_empty() {
            // The optional trailing delim.
            break;
        }
        // The field runs up to the next WSP or ';' (neither can occur inside a field).
        let end = field_start
            .find([' ', '\t', ';'])
            .unwrap_or(field_start.len());
        let (field, tail) = field_start.split_at(end);
        if field.is_empty() {
            return Err("empty field (\";;\")".into());
        }
        let Some((name, value)) = field.split_once('=') else {
            return Err(format!(
                "field {field:?} has no '=' (no space is allowed around '=')"
            ));
        };
        if name == "id" {
            match id {
                None => {
                    check_id(value)?;
                    id = Some(value);
                }
                Some(first) => {
                    check_ext_value(name, value)?;
                    log::warn!(
                        "_mta-sts record: id {value:?} ignored, the first id {first:?} is used (R-DISC-6)"
                    );
                }
            }
        } else {
            check_ext_name(name)?;
            check_ext_value(name, value)?;
            extensions.push((name.to_owned(), value.to_owned()));
        }
        fields += 1;
        rest = tail;
    }
    let Some(id) = id else {
        return Err("no id field".into());
    };
    Ok(Record {
        id: id.to_owned(),
        raw: txt.to_owned(),
        extensions,
    })
}

/// The reason for a record that does not start with `v=STSv1`.
fn missing_version(txt: &str) -> String {
    if txt.trim_start_matches(is_wsp).starts_with(VERSION) {
        "white space before \"v=STSv1\" is not allowed".into()
    } else if txt.contains(VERSION) {
        "\"v=STSv1\" must be the first field".into()
    } else if txt.is_empty() {
        "the record is empty".into()
    } else {
        "the record does not start with \"v=STSv1\"".into()
    }
}

/// `"id=" 1*32(ALPHA / DIGIT)`.
fn check_id(value: &str) -> Result<(), String> {
    if value.is_empty() {
        return Err("id is empty".into());
    }
    if let Some(c) = value.chars().find(|c| !c.is_ascii_alphanumeric()) {
        return Err(format!(
            "id {value:?} has a character other than letters and digits ({c:?})"
        ));
    }
    if value.len() > MAX_ID_LEN {
        return Err(format!(
            "id {value:?} is {} characters long, more than {MAX_ID_LEN}",
            value.len()
        ));
    }
    Ok(())
}

/// `ext-name = (ALPHA / DIGIT) *31(ALPHA / DIGIT / "_" / "-" / ".")`, as a reason.
fn check_ext_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("a field has an empty name".into());
    }
    if !is_ext_name(name) {
        return Err(format!(
            "field name {name:?} is not 1 to {MAX_EXT_NAME_LEN} letters, digits, '_', '-' or '.' starting with a letter or digit"
        ));
    }
    Ok(())
}

/// `ext-name = (ALPHA / DIGIT) *31(ALPHA / DIGIT / "_" / "-" / ".")`; the same grammar names
/// policy extension fields (RFC 8461 §3.2).
pub(crate) fn is_ext_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    match bytes.first() {
        Some(first) if first.is_ascii_alphanumeric() => {
            bytes.len() <= MAX_EXT_NAME_LEN
                && bytes[1..]
                    .iter()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
        }
        _ => false,
    }
}

/// `ext-value = 1*(%x21-3A / %x3C / %x3E-7E)`. The caller splits the field at its first `=`
/// and at WSP or `;`, so only `=` and non-visible characters can still be wrong.
fn check_ext_value(name: &str, value: &str) -> Result<(), String> {
    if value.is_empty() {
        return Err(format!("field {name:?} has an empty value"));
    }
    if let Some(c) = value
        .chars()
        .find(|c| !matches!(c, '\x21'..='\x3a' | '\x3c' | '\x3e'..='\x7e'))
    {
        return Err(format!(
            "value {value:?} of field {name:?} has a character other than visible ASCII or one of '=' and ';' ({c:?})"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(id: &str, ext: &[(&str, &str)]) -> Result<(String, Vec<(String, String)>), String> {
        Ok((
            id.to_owned(),
            ext.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        ))
    }

    fn err(reason: &str) -> Result<(String, Vec<(String, String)>), String> {
        Err(reason.to_owned())
    }

    /// R-DISC-4, R-DISC-5, R-DISC-6: `Record::parse` against the grammar. An `Err` holds a
    /// piece of the expected reason.
    #[test]
    fn record_grammar() {
        let id32 = "a".repeat(32);
        let id33 = format!("v=STSv1; id={}", "a".repeat(33));
        let ext32 = format!("v=STSv1; id=a; {}=x", "n".repeat(32));
        let ext33 = format!("v=STSv1; id=a; {}=x", "n".repeat(33));
        let id32_rec = format!("v=STSv1; id={id32}");
        let cases: Vec<(&str, &str, Result<_, String>)> = vec![
            (
                "S-01",
                "v=STSv1; id=20240101T000000;",
                ok("20240101T000000", &[]),
            ),
            ("R-DISC-4 minimal", "v=STSv1;id=a", ok("a", &[])),
            ("R-DISC-4 no space", "v=STSv1;id=abc;", ok("abc", &[])),
            ("R-DISC-3 WSP before ;", "v=STSv1 ;id=a", ok("a", &[])),
            ("R-DISC-4 tabs", "v=STSv1\t;\tid=a\t;\t", ok("a", &[])),
            (
                "R-DISC-4 many spaces",
                "v=STSv1   ;   id=a   ;   ",
                ok("a", &[]),
            ),
            ("R-DISC-4 32-char id", &id32_rec, ok(&id32, &[])),
            (
                "R-DISC-4 mixed case id",
                "v=STSv1; id=AbC123",
                ok("AbC123", &[]),
            ),
            (
                "R-DISC-5 extension",
                "v=STSv1; id=a; foo=bar",
                ok("a", &[("foo", "bar")]),
            ),
            (
                "R-DISC-5 ext before id",
                "v=STSv1; x-y.z_1=!\"#$%&'()*+,-./09:<>?@Z[\\]^_`{|}~; id=a",
                ok("a", &[("x-y.z_1", "!\"#$%&'()*+,-./09:<>?@Z[\\]^_`{|}~")]),
            ),
            (
                "R-DISC-5 ext named v",
                "v=STSv1; id=a; v=STSv2",
                ok("a", &[("v", "STSv2")]),
            ),
            (
                "R-DISC-5 ext named ID",
                "v=STSv1; ID=x; id=a",
                ok("a", &[("ID", "x")]),
            ),
            (
                "R-DISC-5 32-char ext name",
                &ext32,
                ok("a", &[(&"n".repeat(32), "x")]),
            ),
            (
                "R-DISC-6 duplicate id",
                "v=STSv1; id=first; id=second",
                ok("first", &[]),
            ),
            (
                "R-DISC-6 dup id not alnum",
                "v=STSv1; id=first; id=2024-01-01",
                ok("first", &[]),
            ),
            (
                "S-07 id with -",
                "v=STSv1; id=2024-01-01",
                err("id \"2024-01-01\" has a character other than letters and digits ('-')"),
            ),
            (
                "R-DISC-4 id with _",
                "v=STSv1; id=a_b",
                err("other than letters and digits"),
            ),
            (
                "R-DISC-4 id non-ASCII",
                "v=STSv1; id=café",
                err("other than letters and digits"),
            ),
            (
                "R-DISC-4 33-char id",
                &id33,
                err("33 characters long, more than 32"),
            ),
            ("R-DISC-4 empty id", "v=STSv1; id=", err("id is empty")),
            (
                "R-DISC-4 first id bad, second good",
                "v=STSv1; id=a-b; id=c",
                err("other than letters"),
            ),
            (
                "R-DISC-6 dup id bad value",
                "v=STSv1; id=a; id=b=c",
                err("'='"),
            ),
            ("R-DISC-4 no id", "v=STSv1; foo=bar", err("no id field")),
            ("R-DISC-4 only version", "v=STSv1", err("no id field")),
            ("R-DISC-4 only version ;", "v=STSv1;", err("no id field")),
            (
                "R-DISC-4 v= not first",
                "id=a; v=STSv1",
                err("must be the first field"),
            ),
            (
                "R-DISC-4 leading space",
                " v=STSv1; id=a",
                err("white space before"),
            ),
            (
                "R-DISC-4 lowercase version",
                "v=stsv1; id=a",
                err("does not start with"),
            ),
            (
                "R-DISC-4 uppercase V",
                "V=STSv1; id=a",
                err("does not start with"),
            ),
            ("R-DISC-4 empty", "", err("empty")),
            (
                "R-DISC-3 STSv12",
                "v=STSv12; id=a",
                err("starts with \"v=STSv12\""),
            ),
            (
                "R-DISC-4 no delim after version",
                "v=STSv1 id=a",
                err("expected ';' after \"v=STSv1\""),
            ),
            ("R-DISC-4 ;; inside", "v=STSv1;; id=a", err("empty field")),
            ("R-DISC-4 ; ; inside", "v=STSv1; ; id=a", err("empty field")),
            ("R-DISC-4 ;; at end", "v=STSv1; id=a;;", err("empty field")),
            (
                "R-DISC-4 space before =",
                "v=STSv1; id =a",
                err("has no '='"),
            ),
            (
                "R-DISC-4 space after =",
                "v=STSv1; id= a",
                err("id is empty"),
            ),
            (
                "R-DISC-4 spaces around =",
                "v=STSv1; id = a",
                err("has no '='"),
            ),
            (
                "R-DISC-4 missing ; between fields",
                "v=STSv1; id=a foo=bar",
                err("expected ';' before \"foo=bar\""),
            ),
            (
                "R-DISC-4 trailing space tolerated (guiding principle: no silent downgrade)",
                "v=STSv1; id=a ",
                ok("a", &[]),
            ),
            (
                "R-DISC-4 trailing CR",
                "v=STSv1; id=a\r",
                err("other than letters and digits ('\\r')"),
            ),
            (
                "R-DISC-4 ext empty value",
                "v=STSv1; id=a; foo=",
                err("empty value"),
            ),
            (
                "R-DISC-4 ext = in value",
                "v=STSv1; id=a; foo=b=c",
                err("'='"),
            ),
            ("R-DISC-4 ext no =", "v=STSv1; id=a; foo", err("has no '='")),
            (
                "R-DISC-4 ext empty name",
                "v=STSv1; id=a; =x",
                err("empty name"),
            ),
            (
                "R-DISC-4 ext name starts with _",
                "v=STSv1; id=a; _x=y",
                err("field name \"_x\""),
            ),
            (
                "R-DISC-4 ext name bad char",
                "v=STSv1; id=a; a/b=y",
                err("field name \"a/b\""),
            ),
            ("R-DISC-4 33-char ext name", &ext33, err("field name")),
            (
                "R-DISC-4 ext non-ASCII value",
                "v=STSv1; id=a; foo=é",
                err("visible ASCII"),
            ),
            (
                "R-DISC-4 ext control char",
                "v=STSv1; id=a; foo=a\u{7f}",
                err("visible ASCII"),
            ),
            (
                "R-DISC-4 ext bad value, no id",
                "v=STSv1; foo=é",
                err("visible ASCII"),
            ),
        ];
        for (name, input, want) in cases {
            let got = Record::parse(input);
            match (&got, &want) {
                (Ok(r), Ok((id, ext))) => {
                    assert_eq!(r.id(), id, "{name}");
                    assert_eq!(r.extensions(), ext.as_slice(), "{name}");
                    assert_eq!(r.raw(), input, "{name}");
                }
                (Err(Error::InvalidRecord { reason }), Err(part)) => {
                    assert!(
                        reason.contains(part.as_str()),
                        "{name}: {reason:?} lacks {part:?}"
                    );
                }
                _ => panic!("{name}: {input:?} gave {got:?}, want {want:?}"),
            }
        }
    }

    /// R-DISC-3: which RRs count as STS records.
    #[test]
    fn counts_as_sts() {
        let cases: &[(&[u8], bool)] = &[
            (b"v=STSv1;id=a", true),
            (b"v=STSv1 ;id=a", true),
            (b"v=STSv1\t;id=a", true),
            (b"v=STSv1 id=a", true),
            (b"v=STSv1;\xff", true),
            (b"v=STSv1", false),
            (b"v=STSv12;id=a", false),
            (b"v=STSv1x;id=a", false),
            (b"v=stsv1;id=a", false),
            (b" v=STSv1;id=a", false),
            (b"site-verification=x", false),
            (b"", false),
        ];
        for (rr, want) in cases {
            assert_eq!(
                is_sts_record(rr),
                *want,
                "{:?}",
                String::from_utf8_lossy(rr)
            );
        }
    }

    /// The id selected, no record, or a piece of the reason.
    type Selected = Result<Option<&'static str>, &'static str>;

    /// R-DISC-2, R-DISC-3, R-DISC-4 (scenarios S-04 to S-07): choosing among TXT RRs.
    #[test]
    fn selecting_the_record() {
        // Ok(Some(id)), Ok(None), or Err(part of the reason).
        let cases: Vec<(&str, Vec<&[u8]>, Selected)> = vec![
            ("R-DISC-3 no RRs", vec![], Ok(None)),
            (
                "R-DISC-3 no STS RR",
                vec![b"site-verification=x", b"v=spf1 -all"],
                Ok(None),
            ),
            (
                "R-DISC-3 bare version is not STS",
                vec![b"v=STSv1"],
                Ok(None),
            ),
            (
                "R-DISC-3 STSv12 is not STS",
                vec![b"v=STSv12; id=a"],
                Ok(None),
            ),
            (
                "R-DISC-3 non-UTF-8 unrelated RR",
                vec![b"\xff\xfe", b"v=STSv1; id=a"],
                Ok(Some("a")),
            ),
            (
                "S-05 one STS + unrelated",
                vec![b"site-verification=x", b"v=STSv1; id=a"],
                Ok(Some("a")),
            ),
            (
                "S-06 concatenated strings",
                vec![b"v=STSv1; id=abc;"],
                Ok(Some("abc")),
            ),
            (
                "R-DISC-3 STSv12 beside a valid one",
                vec![b"v=STSv12; id=x", b"v=STSv1; id=a"],
                Ok(Some("a")),
            ),
            (
                "S-04 two STS records",
                vec![b"v=STSv1; id=a", b"v=STSv1; id=b"],
                Err("2 STS records found"),
            ),
            (
                "R-DISC-3 two, one invalid",
                vec![b"v=STSv1; id=a", b"v=STSv1; id=b-c"],
                Err("2 STS records found"),
            ),
            (
                "R-DISC-3 three",
                vec![b"v=STSv1; id=a", b"v=STSv1 ;id=b", b"v=STSv1;x"],
                Err("3 STS records found"),
            ),
            (
                "S-07 the one is invalid",
                vec![b"v=STSv1; id=2024-01-01"],
                Err("other than letters and digits"),
            ),
            (
                "R-DISC-3 counts, then invalid",
                vec![b"v=STSv1 id=a"],
                Err("expected ';'"),
            ),
            (
                "R-DISC-4 non-UTF-8 STS RR",
                vec![b"v=STSv1; id=\xff"],
                Err("byte 0xff at offset 12"),
            ),
        ];
        for (name, rrs, want) in cases {
            let got = select_record(&rrs);
            match (&got, want) {
                (Ok(None), Ok(None)) => {}
                (Ok(Some(r)), Ok(Some(id))) => assert_eq!(r.id(), id, "{name}"),
                (Err(Error::InvalidRecord { reason }), Err(part)) => {
                    assert!(reason.contains(part), "{name}: {reason:?} lacks {part:?}");
                }
                _ => panic!("{name}: got {got:?}, want {want:?}"),
            }
        }
        // Works on owned byte vectors and strings too.
        let owned: Vec<Vec<u8>> = vec![b"v=STSv1; id=a".to_vec()];
        assert_eq!(select_record(&owned).unwrap().unwrap().id(), "a");
        let strings = vec![String::from("v=STSv1; id=a")];
        assert_eq!(select_record(&strings).unwrap().unwrap().id(), "a");
    }

    #[test]
    fn ext_name_grammar() {
        assert!(is_ext_name("a"));
        assert!(is_ext_name("9a_b-c.d"));
        assert!(is_ext_name(&"a".repeat(32)));
        assert!(!is_ext_name(&"a".repeat(33)));
        assert!(!is_ext_name(""));
        assert!(!is_ext_name("-a"));
        assert!(!is_ext_name(".a"));
        assert!(!is_ext_name("a b"));
        assert!(!is_ext_name("é"));
    }
}
