//! Golden JSON files for `mtasts lookup --json` and `mtasts check --json` (issue 11: the JSON
//! views moved into the core and must print the same). `MTASTS_UPDATE_GOLDEN=1` rewrites them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use serde_json::Value;

/// What varies between runs (times, durations, ports, addresses of the test world) replaced by
/// placeholders, so the rest is compared exactly.
pub fn normalise(value: &mut Value, ports: &[u16]) {
    match value {
        Value::Object(map) => {
            for (key, v) in map.iter_mut() {
                if key == "timings_ms" || key.ends_with("_ms") {
                    *v = Value::from("<ms>");
                } else {
                    normalise(v, ports);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| normalise(v, ports)),
        Value::String(s) => {
            for port in ports {
                *s = s.replace(&format!(":{port}"), ":<port>");
            }
            *s = mask_times(s);
            *s = mask_millis(s);
        }
        _ => {}
    }
}

/// True for an RFC 3339 UTC time as the command prints them (`2026-12-01T21:00:00Z`) that
/// depends on the clock: the test certificates' fixed validity years (2000, 2001, 2099) stay.
fn is_time(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 20
        && b[4] == b'-'
        && b[10] == b'T'
        && b[19] == b'Z'
        && !["2000", "2001", "2099"].contains(&&s[..4])
}

/// Times inside longer text (e.g. "not retried before 2026-…Z") become `<time>`.
fn mask_times(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find(|c: char| c.is_ascii_digit()) {
        out.push_str(&rest[..i]);
        let candidate = &rest[i..];
        if candidate.len() >= 20 && candidate.is_char_boundary(20) && is_time(&candidate[..20]) {
            out.push_str("<time>");
            rest = &candidate[20..];
        } else {
            out.push_str(&candidate[..1]);
            rest = &candidate[1..];
        }
    }
    out.push_str(rest);
    out
}

/// Durations in messages ("within 1503 ms") become `<n> ms`.
fn mask_millis(s: &str) -> String {
    let words: Vec<&str> = s.split(' ').collect();
    let mut out = Vec::with_capacity(words.len());
    for (i, w) in words.iter().enumerate() {
        let next_is_ms = words.get(i + 1).is_some_and(|n| n.starts_with("ms"));
        if next_is_ms && !w.is_empty() && w.chars().all(|c| c.is_ascii_digit() || c == '.') {
            out.push("<n>");
        } else {
            out.push(w);
        }
    }
    out.join(" ")
}

/// Compares `actual` with the golden file `name`, or rewrites it with MTASTS_UPDATE_GOLDEN=1.
pub fn check(name: &str, actual: &Value) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    let text = serde_json::to_string_pretty(actual).unwrap() + "\n";
    if std::env::var_os("MTASTS_UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, &text).unwrap();
        return;
    }
    let golden = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (MTASTS_UPDATE_GOLDEN=1 writes it)", path.display()));
    if golden != text {
        let actual_path = path.with_extension("actual.json");
        std::fs::write(&actual_path, &text).unwrap();
        panic!(
            "{} differs from the golden file; the output is in {} (diff them)",
            path.display(),
            actual_path.display()
        );
    }
}
