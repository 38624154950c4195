//! `mtasts tlsrpt summarize`: the table and `--json` of the reports in
//! `mtasts-core/testdata/tlsrpt/`, and a malformed report among good ones (named with its
//! field on stderr, the others still summarised, exit 1); an unreadable file is exit 2.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn testdata(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../mtasts-core/testdata/tlsrpt")
        .join(name)
}

fn summarize(args: &[&Path], json: bool) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_mtasts"));
    command.args(["tlsrpt", "summarize"]);
    if json {
        command.arg("--json");
    }
    command.args(args).output().unwrap()
}

#[test]
fn the_table_of_the_rfc_example_and_a_mail_message() {
    let out = summarize(
        &[&testdata("rfc8460-example.json"), &testdata("report.eml")],
        false,
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(lines[0].starts_with("POLICY DOMAIN"), "{stdout}");
    let cells = |line: &str| {
        line.split_whitespace()
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        cells(lines[1]),
        [
            "company-y.example",
            "Company-X",
            "1",
            "2016-04-01..2016-04-01",
            "5326",
            "303"
        ]
    );
    assert_eq!(
        lines[2],
        "  failures by result type: starttls-not-supported 200, certificate-expired 100, validation-failure 3"
    );
    assert_eq!(
        lines[3],
        "  failing MX hosts: mx2.mail.company-y.example 200, mx1.mail.company-y.example 100, mx-backup.mail.company-y.example 3"
    );
    assert!(
        lines[4].starts_with("company-y.example  Sender Example Ltd  1"),
        "{stdout}"
    );
    assert_eq!(lines.last(), Some(&"2 of 2 files read"));
}

#[test]
fn json_output_is_the_summary_view() {
    let out = summarize(&[&testdata("report-forwarded.eml")], true);
    assert_eq!(out.status.code(), Some(0));
    let view: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(view["ok"], true);
    assert_eq!(view["inputs"][0]["format"], "mail+json");
    let row = &view["summary"][0];
    assert_eq!(row["policy_domain"], "company-y.example");
    assert_eq!(row["successful_sessions"], 5326);
    assert_eq!(row["failed_sessions"], 303);
    assert_eq!(row["failing_mx_hosts"].as_array().unwrap().len(), 3);
}

#[test]
fn a_malformed_report_is_named_with_its_field_and_the_others_are_summarised() {
    let dir = std::env::temp_dir().join(format!("mtasts-cli-tlsrpt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let text = std::fs::read_to_string(testdata("rfc8460-example.json")).unwrap();
    let broken = dir.join("broken.json");
    std::fs::write(
        &broken,
        text.replace(
            "\"total-successful-session-count\": 5326",
            "\"total-successful-session-count\": \"5326\"",
        ),
    )
    .unwrap();
    let out = summarize(&[&broken, &testdata("report.eml")], false);
    let json = summarize(&[&broken, &testdata("report.eml")], true);
    let missing = summarize(&[&dir.join("absent.json"), &testdata("report.eml")], false);
    std::fs::remove_dir_all(&dir).unwrap();

    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(
        stderr.trim_end(),
        format!(
            "mtasts: {}: policies[0].summary.total-successful-session-count: not a number",
            broken.display()
        )
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.contains("Sender Example Ltd"), "{stdout}");
    assert!(!stdout.contains("Company-X"), "{stdout}");
    assert!(
        stdout.ends_with(&format!(
            "1 of 2 files read; not read: {}\n",
            broken.display()
        )),
        "{stdout}"
    );

    assert_eq!(json.status.code(), Some(1));
    let view: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(view["ok"], false);
    assert_eq!(view["inputs"][0]["status"], "failed");
    assert_eq!(view["inputs"][0]["error"]["kind"], "wrong-type");
    assert_eq!(
        view["inputs"][0]["error"]["field"],
        "policies[0].summary.total-successful-session-count"
    );
    assert_eq!(view["inputs"][1]["status"], "counted");
    assert_eq!(view["summary"].as_array().unwrap().len(), 1);

    assert_eq!(missing.status.code(), Some(2), "an unreadable file");
    assert!(
        String::from_utf8(missing.stderr)
            .unwrap()
            .contains("absent.json: cannot be read")
    );
    assert!(
        String::from_utf8(missing.stdout)
            .unwrap()
            .contains("Sender Example Ltd")
    );
}
