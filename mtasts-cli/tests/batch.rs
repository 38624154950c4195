//! Many domains at once: `mtasts lookup --from-file/--jobs/--json-lines` and `mtasts check`
//! with several domains, against the hermetic test world.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Output;

use mtasts_testworld::{DomainSpec, World};
use serde_json::Value;

fn run(world: &World, args: &[&str], stdin: Option<&[u8]>) -> Output {
    common::run_with_stdin(common::mtasts(world).args(args), stdin)
}

fn world(n: usize) -> (World, Vec<String>) {
    let world = World::start().unwrap();
    let names: Vec<String> = (0..n).map(|i| format!("l{i:02}.batch.test")).collect();
    for name in &names {
        world.add_policy_domain(&DomainSpec::new(name)).unwrap();
    }
    (world, names)
}

fn json_lines(out: &Output) -> Vec<Value> {
    String::from_utf8(out.stdout.clone())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect()
}

#[test]
fn a_file_of_domains_streams_json_lines_in_input_order() {
    let (world, names) = world(20);
    let dir = std::env::temp_dir().join(format!("mtasts-batch-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("domains.txt");
    let mut text = String::from("# customers\n\n");
    for name in &names {
        text.push_str(&format!("  {name}\r\n"));
    }
    std::fs::write(&file, text).unwrap();
    let out = run(
        &world,
        &[
            "lookup",
            "--json-lines",
            "--jobs",
            "4",
            "--from-file",
            file.to_str().unwrap(),
        ],
        None,
    );
    let lines = json_lines(&out);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got: Vec<&str> = lines
        .iter()
        .map(|v| v["domain"].as_str().unwrap())
        .collect();
    assert_eq!(got, names.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(
        lines
            .iter()
            .all(|v| v["mode"] == "enforce" && v["source"] == "fetched")
    );
    // Not a terminal: no progress bar on stderr.
    assert!(!String::from_utf8_lossy(&out.stderr).contains("ETA"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn standard_input_follows_the_arguments_and_a_bad_line_is_its_own_error() {
    let (world, names) = world(3);
    let mut stdin = format!("{}\n", names[1]).into_bytes();
    stdin.extend_from_slice(b"bad\xff\xfe.test\n");
    stdin.extend_from_slice(format!("{}\n", names[2]).as_bytes());
    let out = run(
        &world,
        &["lookup", "--json", "--from-file", "-", &names[0]],
        Some(&stdin),
    );
    let reports: Vec<Value> = serde_json::from_slice(&out.stdout).expect("a JSON array");
    let got: Vec<&str> = reports
        .iter()
        .map(|v| v["domain"].as_str().unwrap())
        .collect();
    assert_eq!(got[0], names[0]);
    assert_eq!(got[1], names[1]);
    assert_eq!(got[3], names[2]);
    assert!(
        reports[2]["failure"]["reason"]
            .as_str()
            .unwrap()
            .contains("domain"),
        "{:?}",
        reports[2]
    );
    assert_eq!(
        out.status.code(),
        Some(2),
        "an invalid domain is a usage error"
    );
}

#[test]
fn an_unreadable_list_and_a_bad_job_count_are_usage_errors() {
    let (world, _) = world(0);
    let out = run(
        &world,
        &["lookup", "--from-file", "/nonexistent/list"],
        None,
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/list"));
    for jobs in ["0", "257", "x"] {
        let out = run(&world, &["lookup", "--jobs", jobs, "a.test"], None);
        assert_eq!(out.status.code(), Some(2), "--jobs {jobs}");
    }
    let out = run(&world, &["lookup"], None);
    assert_eq!(out.status.code(), Some(2), "no domain at all");
}

#[test]
fn check_takes_many_domains_like_lookup() {
    let (world, names) = world(3);
    let out = run(
        &world,
        &[
            "check",
            "--no-probe",
            "--json",
            "--jobs",
            "2",
            &names[0],
            &names[1],
            &names[2],
        ],
        None,
    );
    let reports: Vec<Value> = serde_json::from_slice(&out.stdout).expect("a JSON array");
    let got: Vec<&str> = reports
        .iter()
        .map(|v| v["domain"].as_str().unwrap())
        .collect();
    assert_eq!(got, names.iter().map(String::as_str).collect::<Vec<_>>());
    // One domain: one object, as before.
    let out = run(&world, &["check", "--no-probe", "--json", &names[0]], None);
    let one: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(one["domain"], names[0].as_str());
    let out = run(
        &world,
        &["check", "--no-probe", "--json-lines", &names[0], &names[1]],
        None,
    );
    assert_eq!(json_lines(&out).len(), 2);
    let out = run(&world, &["check", "--no-probe", &names[0], &names[1]], None);
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text.matches("Domain: ").count(), 2, "{text}");
}
