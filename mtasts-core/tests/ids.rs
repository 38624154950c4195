//! Every rule ID (`R-<AREA>-<n>`) and scenario ID (`S-<nn>`) cited anywhere in the repository
//! must be defined in `docs/rules.md` or `docs/scenarios.md`. The test also prints, without
//! failing, the rules and scenarios that no test cites yet: run it with
//! `cargo test -p mtasts-core --test ids -- --nocapture` to see them.
//!
//! What counts as a citation (the forms are listed under "How IDs are cited" in
//! `docs/rules.md` and `docs/scenarios.md`; the tests at the end of this file show each):
//! - a whole token `R-<AREA>-<n>` or `S-<nn>` (exactly two digits), not glued to a letter, a
//!   digit, `_` or `-` on either side, so hash names such as SHA-256 and longer or shorter
//!   numbers are not citations;
//! - `R-<AREA>-*`, for every rule of the area;
//! - a range of two IDs of one area joined by `to`, `..` or `…` (a scenario range covers the
//!   defined scenarios within it), `R-<AREA>-<n>..<m>`, and the list `R-<AREA>-<n>/<m>`;
//! - a test named after a scenario: `fn s<nn>_…` (Rust), `def test_s<nn>_…` (Python).
//!
//! Files scanned: `.rs`, `.c`, `.h`, `.py`, `.pyi`, `.sh`, `.conf`, `.json`, `.md`, `Makefile`,
//! and the scripts without an extension in `scripts/`, `tests/realworld/` and `.ci/`; `target/`
//! and hidden directories are skipped. IDs in `docs/` are checked too but do not count as
//! citations. A file counts as a test when it lies in a `tests/` directory or is
//! `examples/c/test_*.c`.
//!
//! This file writes no real ID (its own examples spell `-` as `~`), so it cites nothing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// An ID as found in the text, before ranges are expanded.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    /// `R-<AREA>-<n>`
    Rule { area: String, n: u32 },
    /// `R-<AREA>-*`
    AllOfArea { area: String },
    /// `S-<nn>`
    Scenario { n: u32 },
}

#[derive(Debug)]
struct Found {
    token: Token,
    start: usize,
    end: usize,
}

/// What a citation expands to, before it is checked against the definitions.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Cited {
    /// One ID, which must be defined.
    Id(String),
    /// Every rule of an area, which must have at least one.
    Area(String),
    /// The defined scenarios from `S-<lo>` to `S-<hi>` (both ends must be defined).
    ScenarioRange(u32, u32),
}

fn rule_id(area: &str, n: u32) -> String {
    format!("R-{area}-{n}")
}

fn scenario_id(n: u32) -> String {
    format!("S-{n:02}")
}

fn glues(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Whether the ID ending at byte `end` of `line` ends there as a whole token.
fn ends_token(line: &str, end: usize) -> bool {
    let mut rest = line[end..].chars();
    match rest.next() {
        None => true,
        Some(c) if glues(c) => false,
        Some('-') => !rest.next().is_some_and(glues),
        Some(_) => true,
    }
}

/// Whether an ID may start at byte `start` of `line`.
fn starts_token(line: &str, start: usize) -> bool {
    line[..start]
        .chars()
        .next_back()
        .is_none_or(|c| !glues(c) && c != '-')
}

fn digits(s: &str) -> usize {
    s.bytes().take_while(u8::is_ascii_digit).count()
}

/// The IDs of one line, in order, with their byte spans.
fn tokens(line: &str) -> Vec<Found> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < line.len() {
        let rest = &line[i..];
        if !rest.starts_with("R-") && !rest.starts_with("S-") || !starts_token(line, i) {
            i += rest.chars().next().map_or(1, char::len_utf8);
            continue;
        }
        let after = &rest[2..];
        let mut found = None;
        if rest.starts_with('S') {
            let d = digits(after);
            if d == 2 && ends_token(line, i + 4) {
                let n = after[..2].parse().unwrap();
                found = Some((Token::Scenario { n }, i + 4));
            }
        } else {
            let a = after.bytes().take_while(u8::is_ascii_uppercase).count();
            if a > 0 && after[a..].starts_with('-') {
                let area = after[..a].to_owned();
                let num = &after[a + 1..];
                let d = digits(num);
                let base = i + 2 + a + 1;
                if d > 0 && ends_token(line, base + d) {
                    let n = num[..d].parse().unwrap();
                    found = Some((Token::Rule { area, n }, base + d));
                } else if num.starts_with('*') && ends_token(line, base + 1) {
                    found = Some((Token::AllOfArea { area }, base + 1));
                }
            }
        }
        match found {
            Some((token, end)) => {
                out.push(Found {
                    token,
                    start: i,
                    end,
                });
                i = end;
            }
            None => i += 2,
        }
    }
    out
}

/// `..`, `…`, `to`, `–` or `—` between two IDs, with optional spaces: a range.
fn is_range_separator(between: &str) -> bool {
    matches!(between.trim(), ".." | "…" | "to" | "–" | "—")
}

/// A short suffix right after a rule ID: `..8`, `…8` (range) or `/4/5` (list).
fn rule_suffix(rest: &str) -> (Option<u32>, Vec<u32>) {
    for dots in ["..", "…"] {
        if let Some(tail) = rest.strip_prefix(dots) {
            let d = digits(tail);
            if d > 0 && !tail[d..].starts_with(|c: char| glues(c) || c == '.') {
                return (Some(tail[..d].parse().unwrap()), Vec::new());
            }
        }
    }
    let mut list = Vec::new();
    let mut tail = rest;
    while let Some(t) = tail.strip_prefix('/') {
        let d = digits(t);
        if d == 0 || t[d..].starts_with(glues) {
            break;
        }
        list.push(t[..d].parse().unwrap());
        tail = &t[d..];
    }
    (None, list)
}

/// The citations of one line, ranges and lists expanded as far as the text alone allows.
fn citations_in_line(line: &str) -> Vec<Cited> {
    let found = tokens(line);
    let mut out = Vec::new();
    let mut k = 0;
    while k < found.len() {
        let here = &found[k];
        let next = found.get(k + 1);
        let ranged = next.filter(|n| is_range_separator(&line[here.end..n.start]));
        match (&here.token, ranged.map(|n| &n.token)) {
            (Token::Rule { area, n: lo }, Some(Token::Rule { area: a2, n: hi })) if area == a2 => {
                if lo > hi {
                    // Not a range: keep both ends so that both are checked.
                    out.push(Cited::Id(rule_id(area, *lo)));
                    out.push(Cited::Id(rule_id(area, *hi)));
                } else {
                    out.extend((*lo..=*hi).map(|n| Cited::Id(rule_id(area, n))));
                }
                k += 2;
                continue;
            }
            (Token::Scenario { n: lo }, Some(Token::Scenario { n: hi })) => {
                out.push(Cited::ScenarioRange(*lo, *hi));
                k += 2;
                continue;
            }
            (Token::Rule { area, n }, _) => {
                let (hi, list) = rule_suffix(&line[here.end..]);
                match hi {
                    Some(hi) if hi > *n => {
                        out.extend((*n..=hi).map(|m| Cited::Id(rule_id(area, m))));
                    }
                    Some(hi) => {
                        out.push(Cited::Id(rule_id(area, *n)));
                        out.push(Cited::Id(rule_id(area, hi)));
                    }
                    None => out.push(Cited::Id(rule_id(area, *n))),
                }
                out.extend(list.into_iter().map(|m| Cited::Id(rule_id(area, m))));
            }
            (Token::AllOfArea { area }, _) => out.push(Cited::Area(area.clone())),
            (Token::Scenario { n }, _) => out.push(Cited::Id(scenario_id(*n))),
        }
        k += 1;
    }
    // Tests named after their scenario.
    for prefix in ["fn s", "def test_s"] {
        let mut from = 0;
        while let Some(at) = line[from..].find(prefix) {
            let start = from + at;
            let num = &line[start + prefix.len()..];
            if starts_token(line, start) && digits(num) == 2 && num[2..].starts_with('_') {
                out.push(Cited::Id(scenario_id(num[..2].parse().unwrap())));
            }
            from = start + prefix.len();
        }
    }
    out
}

/// The IDs defined by a docs file: the first cell of its table rows.
fn defined_in(path: &Path, prefix: &str) -> BTreeSet<String> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    let mut ids = BTreeSet::new();
    for (no, line) in text.lines().enumerate() {
        let Some(row) = line.strip_prefix('|') else {
            continue;
        };
        let cell = row.split('|').next().unwrap_or("").trim();
        let whole = tokens(cell);
        let is_id = whole.len() == 1 && whole[0].start == 0 && whole[0].end == cell.len();
        if !is_id || !cell.starts_with(prefix) {
            continue;
        }
        assert!(
            ids.insert(cell.to_owned()),
            "{}:{}: {cell} is defined twice",
            path.display(),
            no + 1
        );
    }
    ids
}

fn is_scanned(rel: &Path) -> bool {
    let name = rel.file_name().and_then(|n| n.to_str()).unwrap_or("");
    if name == "Makefile" {
        return true;
    }
    match rel.extension().and_then(|e| e.to_str()) {
        Some(ext) => matches!(
            ext,
            "rs" | "c" | "h" | "py" | "pyi" | "sh" | "conf" | "json" | "md"
        ),
        // Scripts without an extension.
        None => ["scripts", "tests/realworld", ".ci"]
            .iter()
            .any(|dir| rel.parent() == Some(Path::new(dir))),
    }
}

/// Whether a file is a test, for the report of rules no test cites.
fn is_test(rel: &Path) -> bool {
    let in_tests_dir = rel
        .parent()
        .is_some_and(|p| p.components().any(|c| c.as_os_str() == "tests"));
    let c_test = rel.parent() == Some(Path::new("examples/c"))
        && rel
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with("test_") && n.ends_with(".c"));
    in_tests_dir || c_test
}

/// The scanned files under `dir`, as paths relative to `root`.
fn walk(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{dir:?}: {e}"));
    for entry in entries {
        let entry = entry.unwrap();
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let kind = entry.file_type().unwrap();
        if kind.is_dir() {
            let skipped = matches!(name.as_ref(), "target" | "__pycache__" | "node_modules")
                || (name.starts_with('.') && name != ".ci");
            if !skipped {
                walk(root, &path, out);
            }
        } else if kind.is_file() {
            let rel = path.strip_prefix(root).unwrap().to_path_buf();
            if is_scanned(&rel) {
                out.push(rel);
            }
        }
    }
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

#[test]
fn every_cited_rule_and_scenario_is_defined_in_docs() {
    let root = repo_root();
    let rules = defined_in(&root.join("docs/rules.md"), "R-");
    let scenarios = defined_in(&root.join("docs/scenarios.md"), "S-");
    assert!(rules.len() >= 60, "docs/rules.md defines only {rules:?}");
    assert!(
        scenarios.len() >= 60,
        "docs/scenarios.md defines only {scenarios:?}"
    );
    let defined: BTreeSet<&String> = rules.iter().chain(&scenarios).collect();
    let scenario_numbers: Vec<u32> = scenarios.iter().map(|s| s[2..].parse().unwrap()).collect();

    let mut files = Vec::new();
    walk(&root, &root, &mut files);
    files.sort();
    assert!(
        files
            .iter()
            .any(|f| f == Path::new("mtasts-core/src/lib.rs")),
        "the walk from {root:?} missed the sources"
    );

    let mut undefined = String::new();
    let mut cited_by_tests: BTreeSet<String> = BTreeSet::new();
    let mut citations = 0;
    for rel in &files {
        // Binary or non-UTF-8 files cite nothing.
        let Ok(text) = std::fs::read_to_string(root.join(rel)) else {
            continue;
        };
        let in_docs = rel.starts_with("docs");
        let test = is_test(rel);
        for (no, line) in text.lines().enumerate() {
            for cited in citations_in_line(line) {
                let ids: Vec<String> = match &cited {
                    Cited::Id(id) => {
                        if !defined.contains(id) {
                            let _ = writeln!(
                                undefined,
                                "  {}:{}: {id}   in: {}",
                                rel.display(),
                                no + 1,
                                line.trim()
                            );
                        }
                        vec![id.clone()]
                    }
                    Cited::Area(area) => {
                        let prefix = format!("R-{area}-");
                        let all: Vec<String> = rules
                            .iter()
                            .filter(|r| r.starts_with(&prefix))
                            .cloned()
                            .collect();
                        if all.is_empty() {
                            let _ = writeln!(
                                undefined,
                                "  {}:{}: {prefix}* (no such area)   in: {}",
                                rel.display(),
                                no + 1,
                                line.trim()
                            );
                        }
                        all
                    }
                    Cited::ScenarioRange(lo, hi) => {
                        for end in [lo, hi] {
                            let id = scenario_id(*end);
                            if !defined.contains(&id) {
                                let _ = writeln!(
                                    undefined,
                                    "  {}:{}: {id} (end of a range)   in: {}",
                                    rel.display(),
                                    no + 1,
                                    line.trim()
                                );
                            }
                        }
                        scenario_numbers
                            .iter()
                            .filter(|n| (lo..=hi).contains(n))
                            .map(|n| scenario_id(*n))
                            .collect()
                    }
                };
                if in_docs {
                    continue;
                }
                citations += 1;
                if test {
                    cited_by_tests.extend(ids);
                }
            }
        }
    }

    let uncited_rules: Vec<&String> = rules
        .iter()
        .filter(|r| !cited_by_tests.contains(*r))
        .collect();
    let uncited_scenarios: Vec<&String> = scenarios
        .iter()
        .filter(|s| !cited_by_tests.contains(*s))
        .collect();
    println!(
        "ids: {} files scanned, {citations} citations outside docs/; docs/ defines {} rules and {} scenarios",
        files.len(),
        rules.len(),
        scenarios.len()
    );
    println!(
        "ids: {} rules no test cites (informational): {}",
        uncited_rules.len(),
        join(&uncited_rules)
    );
    println!(
        "ids: {} scenarios no test cites (informational): {}",
        uncited_scenarios.len(),
        join(&uncited_scenarios)
    );

    assert!(
        undefined.is_empty(),
        "IDs cited but not defined in docs/rules.md or docs/scenarios.md:\n{undefined}"
    );
}

/// The IDs in document order (rule 2 of an area before rule 10), space-separated.
fn join(ids: &[&String]) -> String {
    if ids.is_empty() {
        return "none".to_owned();
    }
    let mut sorted = ids.to_vec();
    sorted.sort_by_key(|id| {
        let (stem, n) = id.rsplit_once('-').unwrap();
        (stem.to_owned(), n.parse::<u32>().unwrap())
    });
    sorted
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(" ")
}

/// IDs written so that this file does not cite them: `~` stands for `-`.
fn text(s: &str) -> String {
    s.replace('~', "-")
}

fn ids_of(line: &str) -> Vec<Cited> {
    citations_in_line(&text(line))
}

fn id(s: &str) -> Cited {
    Cited::Id(text(s))
}

#[test]
fn the_extractor_takes_whole_tokens_only() {
    assert_eq!(ids_of("see R~MX~1, and S~05."), [id("R~MX~1"), id("S~05")]);
    assert_eq!(ids_of("(R~FETCH~10)"), [id("R~FETCH~10")]);
    assert_eq!(ids_of("`S~39`: downgrade"), [id("S~39")]);
    // Not IDs: hash names, other tokens ending in S or R, wrong digit counts, glued text.
    for line in [
        "SHA~256 and SHA~1",
        "TLS~1, XS~01, MR~MX~1, a_S~01, x~S~01",
        "S~1 S~100 S~01a S~01_x S~01~2 R~MX~ R~MX~x R~mx~1 R~MX~1b",
        "0x5S~12 deadbeefS~12",
    ] {
        assert_eq!(ids_of(line), [], "{line}");
    }
    // A value after a space is not part of the ID.
    assert_eq!(ids_of("R~POL~6 ~1 is invalid"), [id("R~POL~6")]);
}

#[test]
fn the_extractor_expands_ranges_lists_and_areas() {
    let r = |n: u32| id(&format!("R~MX~{n}"));
    assert_eq!(ids_of("R~MX~1 to R~MX~3"), [r(1), r(2), r(3)]);
    assert_eq!(ids_of("R~MX~1..3;"), [r(1), r(2), r(3)]);
    assert_eq!(ids_of("R~MX~1 … R~MX~2"), [r(1), r(2)]);
    assert_eq!(ids_of("R~MX~2/3"), [r(2), r(3)]);
    assert_eq!(ids_of("R~MX~*"), [Cited::Area("MX".into())]);
    assert_eq!(ids_of("S~01…S~25"), [Cited::ScenarioRange(1, 25)]);
    assert_eq!(ids_of("S~30 … S~39"), [Cited::ScenarioRange(30, 39)]);
    assert_eq!(ids_of("S~50..S~64"), [Cited::ScenarioRange(50, 64)]);
    assert_eq!(ids_of("S~57 to S~60"), [Cited::ScenarioRange(57, 60)]);
    // Two areas are not a range; a sentence ending in ".." after an ID is not one either.
    assert_eq!(ids_of("R~MX~1 to R~CERT~3"), [id("R~MX~1"), id("R~CERT~3")]);
    assert_eq!(ids_of("R~MX~1..."), [r(1)]);
    assert_eq!(ids_of("S~04, S~05"), [id("S~04"), id("S~05")]);
    // Tests named after a scenario.
    assert_eq!(ids_of("fn s41_forked_child() {"), [id("S~41")]);
    assert_eq!(ids_of("def test_s30_second_lookup():"), [id("S~30")]);
    assert_eq!(ids_of("fn probe_s41_x() fn s4_x() fn s412_x()"), []);
}
