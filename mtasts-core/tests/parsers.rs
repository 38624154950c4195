//! API-level tests of the pure parsers: every vector of `testdata/{records,policies,mx}.json`
//! (shared with the C and Python tests), and property tests that no input makes a parser
//! panic.

// Test helpers outside `#[test]` functions panic on malformed vectors, on purpose.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use mtasts_core::{Domain, Error, Mode, MxPattern, Policy, Record, select_record};
use proptest::prelude::*;
use serde::Deserialize;

fn load<T: for<'de> Deserialize<'de>>(name: &str) -> T {
    let path: PathBuf = [env!("CARGO_MANIFEST_DIR"), "testdata", name]
        .iter()
        .collect();
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path:?}: {e}"))
}

fn unhex(hex: &str) -> Vec<u8> {
    assert!(hex.len().is_multiple_of(2), "odd hex {hex:?}");
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect()
}

/// The reason of an error from the parsers, whatever the variant.
fn reason(e: &Error) -> &str {
    match e {
        Error::InvalidDomain { reason, .. }
        | Error::InvalidRecord { reason }
        | Error::InvalidPolicy { reason, .. }
        | Error::InvalidMxPattern { reason, .. } => reason,
        other => panic!("unexpected error kind {other:?}"),
    }
}

fn check_reason(what: &str, e: &Error, piece: Option<&str>) {
    if let Some(piece) = piece {
        assert!(
            reason(e).contains(piece),
            "{what}: reason {:?} lacks {piece:?}",
            reason(e)
        );
    }
}

// ---------------------------------------------------------------------------- records.json

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RecordVectors {
    #[allow(dead_code)]
    description: String,
    records: Vec<RecordVector>,
    select: Vec<SelectVector>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RecordVector {
    rule: String,
    /// Why the vector expects what it does, where that is a decision.
    #[allow(dead_code)]
    comment: Option<String>,
    input: String,
    valid: bool,
    id: Option<String>,
    extensions: Option<Vec<(String, String)>>,
    error: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SelectVector {
    rule: String,
    rrs: Option<Vec<String>>,
    rrs_hex: Option<Vec<String>>,
    outcome: String,
    id: Option<String>,
    error: Option<String>,
}

/// R-DISC-2 to R-DISC-6: `Record::parse` on every vector.
#[test]
fn record_vectors() {
    let v: RecordVectors = load("records.json");
    assert!(v.records.len() >= 40);
    for (i, case) in v.records.iter().enumerate() {
        let what = format!("records[{i}] {} {:?}", case.rule, case.input);
        match Record::parse(&case.input) {
            Ok(r) => {
                assert!(case.valid, "{what}: accepted");
                assert_eq!(Some(r.id()), case.id.as_deref(), "{what}");
                assert_eq!(r.raw(), case.input, "{what}");
                let ext = case.extensions.as_deref().unwrap_or_default();
                assert_eq!(r.extensions(), ext, "{what}");
            }
            Err(e) => {
                assert!(!case.valid, "{what}: rejected: {e}");
                assert!(matches!(e, Error::InvalidRecord { .. }), "{what}: {e:?}");
                check_reason(&what, &e, case.error.as_deref());
            }
        }
    }
}

/// R-DISC-2, R-DISC-3, R-DISC-4 (scenarios S-03 to S-07): `select_record` on every vector.
#[test]
fn select_vectors() {
    let v: RecordVectors = load("records.json");
    assert!(v.select.len() >= 15);
    for (i, case) in v.select.iter().enumerate() {
        let rrs: Vec<Vec<u8>> = match (&case.rrs, &case.rrs_hex) {
            (Some(rrs), None) => rrs.iter().map(|s| s.as_bytes().to_vec()).collect(),
            (None, Some(hex)) => hex.iter().map(|h| unhex(h)).collect(),
            _ => panic!("select[{i}]: exactly one of rrs, rrs_hex"),
        };
        let what = format!("select[{i}] {} {rrs:?}", case.rule);
        match (select_record(&rrs), case.outcome.as_str()) {
            (Ok(None), "none") => {}
            (Ok(Some(r)), "record") => assert_eq!(Some(r.id()), case.id.as_deref(), "{what}"),
            (Err(e), "error") => {
                assert!(matches!(e, Error::InvalidRecord { .. }), "{what}: {e:?}");
                check_reason(&what, &e, case.error.as_deref());
            }
            (got, want) => panic!("{what}: got {got:?}, want {want}"),
        }
    }
}

// --------------------------------------------------------------------------- policies.json

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyVectors {
    #[allow(dead_code)]
    description: String,
    policies: Vec<PolicyVector>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyVector {
    rule: String,
    name: String,
    input: Option<String>,
    input_hex: Option<String>,
    valid: bool,
    mode: Option<String>,
    max_age: Option<u32>,
    mx: Option<Vec<String>>,
    extensions: Option<Vec<(String, String)>>,
    warnings: Option<usize>,
    error: Option<String>,
    line: Option<usize>,
}

/// R-POL-1 to R-POL-8: `Policy::parse` / `Policy::from_bytes` on every vector.
#[test]
fn policy_vectors() {
    let v: PolicyVectors = load("policies.json");
    assert!(v.policies.len() >= 60);
    for (i, case) in v.policies.iter().enumerate() {
        let what = format!("policies[{i}] {} {}", case.rule, case.name);
        let (parsed, body) = match (&case.input, &case.input_hex) {
            (Some(text), None) => {
                let parsed = Policy::parse(text);
                // The byte entry point agrees with the text one.
                assert_eq!(Policy::from_bytes(text.as_bytes()), parsed, "{what}");
                (parsed, text.as_bytes().to_vec())
            }
            (None, Some(hex)) => {
                let body = unhex(hex);
                (Policy::from_bytes(&body), body)
            }
            _ => panic!("{what}: exactly one of input, input_hex"),
        };
        match parsed {
            Ok(p) => {
                assert!(case.valid, "{what}: accepted");
                let mode: Mode = case.mode.as_deref().expect("mode").parse().unwrap();
                assert_eq!(p.mode(), mode, "{what}");
                assert_eq!(Some(p.max_age()), case.max_age, "{what}");
                let mx: Vec<&str> = p.mx().iter().map(MxPattern::as_str).collect();
                let want_mx: Vec<&str> = case.mx.iter().flatten().map(String::as_str).collect();
                assert_eq!(mx, want_mx, "{what}");
                let ext = case.extensions.as_deref().unwrap_or_default();
                assert_eq!(p.extensions(), ext, "{what}");
                assert_eq!(
                    Some(p.warnings().len()),
                    case.warnings,
                    "{what}: {:#?}",
                    p.warnings()
                );
                assert_eq!(p.text().as_bytes(), body.as_slice(), "{what}: R-POL-8");
            }
            Err(e) => {
                assert!(!case.valid, "{what}: rejected: {e}");
                match &e {
                    Error::InvalidPolicy { line, .. } => {
                        assert_eq!(*line, case.line, "{what}: {e}")
                    }
                    other => panic!("{what}: {other:?}"),
                }
                check_reason(&what, &e, case.error.as_deref());
            }
        }
    }
}

// --------------------------------------------------------------------------------- mx.json

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MxVectors {
    #[allow(dead_code)]
    description: String,
    domains: Vec<NameVector>,
    patterns: Vec<NameVector>,
    matches: Vec<MatchVector>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NameVector {
    rule: String,
    input: String,
    valid: bool,
    normalized: Option<String>,
    wildcard: Option<bool>,
    error: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MatchVector {
    rule: String,
    pattern: String,
    host: String,
    matches: bool,
}

/// R-DISC-1, R-MX-1: `Domain::new` on every vector.
#[test]
fn domain_vectors() {
    let v: MxVectors = load("mx.json");
    assert!(v.domains.len() >= 25);
    for (i, case) in v.domains.iter().enumerate() {
        let what = format!("domains[{i}] {} {:?}", case.rule, case.input);
        match Domain::new(&case.input) {
            Ok(d) => {
                assert!(case.valid, "{what}: accepted as {d}");
                assert_eq!(Some(d.as_str()), case.normalized.as_deref(), "{what}");
            }
            Err(e) => {
                assert!(!case.valid, "{what}: rejected: {e}");
                assert!(matches!(e, Error::InvalidDomain { .. }), "{what}: {e:?}");
                check_reason(&what, &e, case.error.as_deref());
            }
        }
    }
}

/// R-POL-7: `MxPattern::parse` on every vector.
#[test]
fn pattern_vectors() {
    let v: MxVectors = load("mx.json");
    assert!(v.patterns.len() >= 20);
    for (i, case) in v.patterns.iter().enumerate() {
        let what = format!("patterns[{i}] {} {:?}", case.rule, case.input);
        match MxPattern::parse(&case.input) {
            Ok(p) => {
                assert!(case.valid, "{what}: accepted as {p}");
                assert_eq!(Some(p.as_str()), case.normalized.as_deref(), "{what}");
                assert_eq!(Some(p.is_wildcard()), case.wildcard, "{what}");
            }
            Err(e) => {
                assert!(!case.valid, "{what}: rejected: {e}");
                assert!(matches!(e, Error::InvalidMxPattern { .. }), "{what}: {e:?}");
                check_reason(&what, &e, case.error.as_deref());
            }
        }
    }
}

/// R-MX-1, R-MX-2 (scenarios S-50 to S-55): matching on every vector, both through
/// `MxPattern::matches` and through a one-pattern policy.
#[test]
fn match_vectors() {
    let v: MxVectors = load("mx.json");
    assert!(v.matches.len() >= 15);
    for (i, case) in v.matches.iter().enumerate() {
        let what = format!(
            "matches[{i}] {} {} vs {:?}",
            case.rule, case.pattern, case.host
        );
        let pattern = MxPattern::parse(&case.pattern).unwrap();
        let got = Domain::new(&case.host).is_ok_and(|h| pattern.matches(&h));
        assert_eq!(got, case.matches, "{what}");
        let policy = Policy::parse(&format!(
            "version: STSv1\nmode: enforce\nmx: {}\nmax_age: 86400\n",
            case.pattern
        ))
        .unwrap();
        assert_eq!(policy.matches(&case.host), case.matches, "{what} (policy)");
    }
}

// ------------------------------------------------------------------------------ proptests

/// Text built from the pieces the parsers care about, so the generator reaches deep states.
fn policy_like() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("version".to_string()),
        Just("mode".to_string()),
        Just("max_age".to_string()),
        Just("mx".to_string()),
        Just("STSv1".to_string()),
        Just("enforce".to_string()),
        Just("testing".to_string()),
        Just("none".to_string()),
        Just("*.".to_string()),
        Just(":".to_string()),
        Just(" ".to_string()),
        Just("\t".to_string()),
        Just("\n".to_string()),
        Just("\r\n".to_string()),
        Just("\r".to_string()),
        Just("\u{feff}".to_string()),
        Just("example.com".to_string()),
        Just("bücher".to_string()),
        Just(".".to_string()),
        "[0-9]{1,12}",
        "\\PC{0,8}",
    ];
    prop::collection::vec(piece, 0..40).prop_map(|v| v.concat())
}

fn record_like() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("v=STSv1".to_string()),
        Just("id=".to_string()),
        Just(";".to_string()),
        Just(" ".to_string()),
        Just("\t".to_string()),
        Just("=".to_string()),
        "[a-zA-Z0-9]{1,40}",
        "[!-~]{0,8}",
        "\\PC{0,4}",
    ];
    prop::collection::vec(piece, 0..20).prop_map(|v| v.concat())
}

fn name_like() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just(".".to_string()),
        Just("*.".to_string()),
        Just("*".to_string()),
        Just("-".to_string()),
        Just("xn--".to_string()),
        Just("ü".to_string()),
        Just("。".to_string()),
        Just("[".to_string()),
        Just(":".to_string()),
        "[a-zA-Z0-9]{1,70}",
        "[0-9]{1,3}",
        "\\PC{0,4}",
    ];
    prop::collection::vec(piece, 0..12).prop_map(|v| v.concat())
}

/// One line of a generated policy: key, value, and the R-POL-2 tolerances applied to it.
#[derive(Clone, Debug)]
struct GenLine {
    key: String,
    value: String,
    leading_ws: bool,
    ws_before_colon: bool,
    ws_after_colon: &'static str,
    trailing_ws: bool,
    crlf: bool,
    blank_before: bool,
}

/// A valid policy with random field order, values and tolerable decorations, and the number of
/// warnings it must give.
fn decorated_policy() -> impl Strategy<Value = (String, Mode, u64, usize, usize)> {
    let mode = prop_oneof![Just(Mode::Enforce), Just(Mode::Testing), Just(Mode::None)];
    let max_age = prop_oneof![0u64..100, 0u64..=31_557_601, 0u64..=9_999_999_999];
    let mx = prop::collection::vec(
        "(\\*\\.)?[a-zA-Z0-9]{1,10}(\\.[a-zA-Z]{1,10}){1,3}\\.?",
        1..4,
    );
    let ext = prop::collection::vec(("x-[a-z0-9_.-]{0,20}", "[!-~]{1,10}( [!-~]{1,10})?"), 0..3);
    let decoration = (
        any::<bool>(),
        any::<bool>(),
        prop_oneof![Just(""), Just(" "), Just("\t"), Just("  \t")],
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
    );
    (
        mode,
        max_age,
        mx,
        ext,
        prop::collection::vec(decoration, 12),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_flat_map(
            |(mode, max_age, mx, ext, decorations, bom, final_newline)| {
                let mut fields = vec![
                    ("version".to_string(), "STSv1".to_string()),
                    ("mode".to_string(), mode.as_str().to_string()),
                    ("max_age".to_string(), max_age.to_string()),
                ];
                let mx_count = mx.len();
                fields.extend(mx.into_iter().map(|m| ("mx".to_string(), m)));
                let ext_count = ext.len();
                fields.extend(ext);
                let lines: Vec<GenLine> = fields
                    .into_iter()
                    .zip(decorations)
                    .map(|((key, value), (l, b, a, t, c, blank))| GenLine {
                        key,
                        value,
                        leading_ws: l,
                        ws_before_colon: b,
                        ws_after_colon: a,
                        trailing_ws: t,
                        crlf: c,
                        blank_before: blank,
                    })
                    .collect();
                (
                    Just(lines).prop_shuffle(),
                    Just((mode, max_age, mx_count, ext_count, bom, final_newline)),
                )
            },
        )
        .prop_map(
            |(lines, (mode, max_age, mx_count, ext_count, bom, final_newline))| {
                let mut text = String::new();
                let mut warnings = 0;
                if bom {
                    text.push('\u{feff}');
                    warnings += 1;
                }
                let n = lines.len();
                for (i, l) in lines.iter().enumerate() {
                    let end = if l.crlf { "\r\n" } else { "\n" };
                    if l.blank_before {
                        text.push_str(end);
                        warnings += 1;
                    }
                    if l.leading_ws {
                        text.push_str(" \t");
                        warnings += 1;
                    }
                    text.push_str(&l.key);
                    if l.ws_before_colon {
                        text.push(' ');
                        warnings += 1;
                    }
                    text.push(':');
                    text.push_str(l.ws_after_colon);
                    text.push_str(&l.value);
                    if l.trailing_ws {
                        text.push_str("\t ");
                        warnings += 1;
                    }
                    if i + 1 < n || final_newline {
                        text.push_str(end);
                    }
                }
                if !final_newline {
                    warnings += 1;
                }
                if max_age == 0 || max_age > u64::from(mtasts_core::MAX_AGE_LIMIT) {
                    warnings += 1;
                }
                (text, mode, max_age, mx_count + ext_count * 1000, warnings)
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn record_parse_never_panics(s in "\\PC*", t in record_like()) {
        let _ = Record::parse(&s);
        if let Ok(r) = Record::parse(&t) {
            prop_assert_eq!(r.raw(), t.as_str());
            prop_assert!(!r.id().is_empty() && r.id().len() <= 32);
        }
    }

    #[test]
    fn select_record_never_panics(
        rrs in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..64), 0..4),
        texts in prop::collection::vec(record_like(), 0..3),
    ) {
        let _ = select_record(&rrs);
        let _ = select_record(&texts);
        let mut prefixed = rrs.clone();
        for rr in &mut prefixed {
            rr.splice(0..0, b"v=STSv1;".iter().copied());
        }
        let _ = select_record(&prefixed);
    }

    #[test]
    fn policy_from_bytes_never_panics(body in prop::collection::vec(any::<u8>(), 0..512)) {
        if let Ok(p) = Policy::from_bytes(&body) {
            prop_assert_eq!(p.text().as_bytes(), body.as_slice());
        }
    }

    #[test]
    fn policy_parse_keeps_text(s in "\\PC*", t in policy_like()) {
        for text in [&s, &t] {
            if let Ok(p) = Policy::parse(text) {
                prop_assert_eq!(p.text(), text.as_str());
                prop_assert!(p.max_age() <= mtasts_core::MAX_AGE_LIMIT);
                prop_assert!(p.mode() == Mode::None || !p.mx().is_empty());
            }
        }
    }

    #[test]
    fn domain_new_never_panics(s in "\\PC*", t in name_like()) {
        for input in [&s, &t] {
            if let Ok(d) = Domain::new(input) {
                // Canonical: idempotent, lowercase LDH, bounded.
                prop_assert_eq!(Domain::new(d.as_str()), Ok(d.clone()));
                prop_assert!(d.as_str().len() <= 253);
                prop_assert!(d.as_str().bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.'));
            }
        }
    }

    #[test]
    fn mx_pattern_never_panics(s in "\\PC*", t in name_like(), host in name_like()) {
        for input in [&s, &t] {
            if let Ok(p) = MxPattern::parse(input) {
                prop_assert_eq!(MxPattern::parse(p.as_str()), Ok(p.clone()));
                if let Ok(h) = Domain::new(&host) {
                    // A plain pattern matches exactly its own name (R-MX-1).
                    if !p.is_wildcard() {
                        prop_assert_eq!(p.matches(&h), h.as_str() == p.as_str());
                    }
                }
            }
        }
    }

    /// R-POL-2, R-POL-5, R-POL-6, R-POL-7, R-POL-8: a valid policy with any mix of the
    /// tolerated decorations parses to the same values, with one warning per tolerance.
    #[test]
    fn decorated_policies_parse((text, mode, max_age, counts, warnings) in decorated_policy()) {
        let p = Policy::parse(&text);
        prop_assert!(p.is_ok(), "{:?}: {:?}", text, p);
        let p = p.unwrap();
        prop_assert_eq!(p.text(), text.as_str());
        prop_assert_eq!(p.mode(), mode);
        prop_assert_eq!(u64::from(p.max_age()), max_age.min(u64::from(mtasts_core::MAX_AGE_LIMIT)));
        prop_assert_eq!(p.mx().len(), counts % 1000);
        prop_assert_eq!(p.extensions().len(), counts / 1000);
        // Issue 10 (log amplification): at most MAX_WARNINGS, then one line counting the rest.
        let cap = mtasts_core::MAX_WARNINGS;
        if warnings <= cap {
            prop_assert_eq!(p.warnings().len(), warnings, "{:?}: {:#?}", text, p.warnings());
        } else {
            prop_assert_eq!(p.warnings().len(), cap + 1, "{:?}: {:#?}", text, p.warnings());
            let more = format!("{} more tolerated problems", warnings - cap);
            prop_assert_eq!(p.warnings().last(), Some(&more));
        }
    }
}
