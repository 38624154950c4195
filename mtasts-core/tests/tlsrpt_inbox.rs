//! API-level tests of the domain owner's side of TLS-RPT (issue 15 item 7): the RFC 8460
//! example report and the hand-written fixtures of `testdata/tlsrpt/` are read and
//! summarised; what `Report::to_json` and `Report::to_gzip` write is read back; malformed
//! inputs each give their typed error. `testdata/tlsrpt/generated-report.json` is what
//! `Report::to_json` writes for `full_report()` (drift-checked here; the Python suite
//! validates it against `schema.json`); `MTASTS_UPDATE_GOLDEN=1` rewrites it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use mtasts_core::{
    FailureDetail, InputOutcome, MAX_REPORT_SIZE, PolicySummary, PolicyType, Report, ReportError,
    ReportFormat, ReportPolicy, Summary, SummaryView, gzip, parse_json, read_report,
    read_report_file,
};
use serde_json::{Value, json};

fn testdata(name: &str) -> PathBuf {
    [env!("CARGO_MANIFEST_DIR"), "testdata", "tlsrpt", name]
        .iter()
        .collect()
}

fn bytes(name: &str) -> Vec<u8> {
    std::fs::read(testdata(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// A report using every field of RFC 8460 §4.4 and every policy type.
fn full_report() -> Report {
    Report {
        organization_name: "Sender Example Ltd".into(),
        start_datetime: "2026-12-01T00:00:00Z".into(),
        end_datetime: "2026-12-01T23:59:59Z".into(),
        contact_info: "tlsrpt@sender.example".into(),
        report_id: "2026-12-01.company-y.example.7".into(),
        policies: vec![
            PolicySummary {
                policy: ReportPolicy {
                    policy_type: PolicyType::Sts,
                    policy_string: vec![
                        "version: STSv1".into(),
                        "mode: enforce".into(),
                        "mx: *.mail.company-y.example".into(),
                        "max_age: 604800".into(),
                    ],
                    policy_domain: "company-y.example".into(),
                    mx_host: vec!["*.mail.company-y.example".into()],
                },
                total_successful: 1200,
                total_failure: 12,
                failure_details: vec![
                    FailureDetail {
                        result_type: "certificate-expired".into(),
                        sending_mta_ip: Some("192.0.2.10".into()),
                        receiving_mx_hostname: Some("mx1.mail.company-y.example".into()),
                        receiving_mx_helo: Some("mx1.mail.company-y.example".into()),
                        receiving_ip: Some("2001:db8::25".into()),
                        failed_session_count: 10,
                        additional_information: Some("https://sender.example/tlsrpt/7".into()),
                        failure_reason_code: Some("certificate-expired".into()),
                    },
                    FailureDetail {
                        result_type: "sts-policy-fetch-error".into(),
                        failed_session_count: 2,
                        failure_reason_code: Some("HTTP status 404, expected 200".into()),
                        ..FailureDetail::default()
                    },
                ],
            },
            PolicySummary {
                policy: ReportPolicy {
                    policy_type: PolicyType::Tlsa,
                    policy_string: vec!["3 1 1 0123456789abcdef".into()],
                    policy_domain: "company-y.example".into(),
                    mx_host: vec![],
                },
                total_successful: 30,
                total_failure: 0,
                failure_details: vec![],
            },
            PolicySummary {
                policy: ReportPolicy {
                    policy_type: PolicyType::NoPolicyFound,
                    policy_string: vec![],
                    policy_domain: "company-y.example".into(),
                    mx_host: vec![],
                },
                total_successful: 4,
                total_failure: 1,
                failure_details: vec![FailureDetail {
                    result_type: "starttls-not-supported".into(),
                    sending_mta_ip: Some("192.0.2.10".into()),
                    receiving_mx_hostname: Some("MX2.mail.company-y.example.".into()),
                    failed_session_count: 1,
                    ..FailureDetail::default()
                }],
            },
        ],
    }
}

#[test]
fn the_rfc_8460_example_parses_and_summarises() {
    let json: Value = serde_json::from_slice(&bytes("rfc8460-example.json")).unwrap();
    let report = Report::from_json(&json).unwrap();
    assert_eq!(report.organization_name, "Company-X");
    assert_eq!(report.report_id, "5065427c-23d3-47ca-b6e0-946ea0e8c4be");
    let p = &report.policies[0];
    assert_eq!(p.policy.policy_type, PolicyType::Sts);
    assert_eq!(
        p.policy.mx_host,
        ["*.mail.company-y.example"],
        "the RFC's single string"
    );
    assert_eq!(p.policy.policy_string.len(), 4);
    assert_eq!((p.total_successful, p.total_failure), (5326, 303));
    assert_eq!(p.failure_details.len(), 3);
    assert_eq!(
        p.failure_details[2].failure_reason_code.as_deref(),
        Some("X509_V_ERR_PROXY_PATH_LENGTH_EXCEEDED")
    );

    let mut summary = Summary::new();
    summary.add_input(
        "rfc8460-example.json",
        read_report_file(&testdata("rfc8460-example.json")),
    );
    let rows: Vec<_> = summary.rows().collect();
    assert_eq!(rows.len(), 1);
    let row = rows[0];
    assert_eq!(
        (row.policy_domain.as_str(), row.organization.as_str()),
        ("company-y.example", "Company-X")
    );
    assert_eq!((row.reports, row.successful, row.failed), (1, 5326, 303));
    assert_eq!(
        row.result_types(),
        [
            ("starttls-not-supported", 200),
            ("certificate-expired", 100),
            ("validation-failure", 3)
        ]
    );
    assert_eq!(
        row.mx_hosts(),
        [
            ("mx2.mail.company-y.example", 200),
            ("mx1.mail.company-y.example", 100),
            ("mx-backup.mail.company-y.example", 3)
        ]
    );
    let view = serde_json::to_value(SummaryView::new(&summary)).unwrap();
    assert_eq!(view["ok"], true);
    assert_eq!(view["inputs"][0]["status"], "counted");
    assert_eq!(view["inputs"][0]["format"], "json");
    assert_eq!(view["summary"][0]["start"], "2016-04-01T00:00:00Z");
    assert_eq!(view["summary"][0]["end"], "2016-04-01T23:59:59Z");
    assert_eq!(view["summary"][0]["failed_sessions"], 303);
    assert_eq!(
        view["summary"][0]["failures"][0],
        json!({"name": "starttls-not-supported", "sessions": 200})
    );
}

#[test]
fn generated_report_json_is_what_to_json_writes() {
    let actual = full_report().to_json();
    let path = testdata("generated-report.json");
    if std::env::var_os("MTASTS_UPDATE_GOLDEN").is_some() {
        let text = serde_json::to_string_pretty(&actual).unwrap() + "\n";
        std::fs::write(&path, text).unwrap();
    }
    let golden: Value = serde_json::from_slice(&bytes("generated-report.json"))
        .unwrap_or_else(|e| panic!("{e} (MTASTS_UPDATE_GOLDEN=1 writes it)"));
    assert_eq!(
        actual, golden,
        "Report::to_json changed: MTASTS_UPDATE_GOLDEN=1 rewrites the file, which the schema test reads"
    );
    assert_eq!(Report::from_json(&golden).unwrap(), full_report());
}

#[test]
fn summarize_reads_what_to_json_and_to_gzip_write() {
    let report = full_report();
    let json = report.to_json().to_string();
    let plain = read_report(json.as_bytes()).unwrap();
    assert_eq!(plain.format, ReportFormat::Json);
    assert_eq!(plain.report, report);
    let packed = read_report(&report.to_gzip()).unwrap();
    assert_eq!(packed.format, ReportFormat::Gzip);
    assert_eq!(packed.report, report);

    let dir = std::env::temp_dir().join(format!("mtasts-tlsrpt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let name = report.file_name("mail.sender.example").unwrap();
    assert_eq!(
        name,
        "mail.sender.example!company-y.example!1796083200!1796169599!20261201companyyexample7.json.gz"
    );
    let file = dir.join(&name);
    std::fs::write(&file, report.to_gzip()).unwrap();
    let mut summary = Summary::new();
    summary.add_input(&name, read_report_file(&file));
    std::fs::remove_dir_all(&dir).unwrap();
    let row = summary.rows().next().unwrap();
    assert_eq!(row.reports, 1, "three policies of one domain: one report");
    assert_eq!((row.successful, row.failed), (1234, 13));
    assert_eq!(
        row.result_types(),
        [
            ("certificate-expired", 10),
            ("sts-policy-fetch-error", 2),
            ("starttls-not-supported", 1)
        ]
    );
    assert_eq!(
        row.mx_hosts(),
        [
            ("mx1.mail.company-y.example", 10),
            ("mx2.mail.company-y.example", 1)
        ],
        "host names lowercased, final dot dropped; the fetch error names no host"
    );
}

#[test]
fn eml_fixtures_round_trip() {
    // report.eml: R-RPT-9's message, the attachment the gzip of generated-report.json.
    let mail = read_report(&bytes("report.eml")).unwrap();
    assert_eq!(mail.format, ReportFormat::MailGzip);
    assert_eq!(mail.report, full_report());
    // report-forwarded.eml: forwarded (message/rfc822 in multipart/mixed), LF line ends,
    // the report as application/tlsrpt+json in quoted-printable.
    let forwarded = read_report(&bytes("report-forwarded.eml")).unwrap();
    assert_eq!(forwarded.format, ReportFormat::MailJson);
    let example: Value = serde_json::from_slice(&bytes("rfc8460-example.json")).unwrap();
    assert_eq!(forwarded.report, Report::from_json(&example).unwrap());

    let mut summary = Summary::new();
    for name in ["report.eml", "report-forwarded.eml", "rfc8460-example.json"] {
        summary.add_input(name, read_report_file(&testdata(name)));
    }
    assert!(matches!(
        summary.inputs()[2].outcome,
        InputOutcome::Duplicate { .. }
    ));
    let rows: Vec<_> = summary.rows().collect();
    let orgs: Vec<_> = rows.iter().map(|r| r.organization.as_str()).collect();
    assert_eq!(orgs, ["Company-X", "Sender Example Ltd"]);
    assert_eq!(
        rows[0].successful, 5326,
        "the duplicate is not counted twice"
    );
}

#[test]
fn malformed_inputs_give_their_typed_error() {
    let json = full_report().to_json().to_string();
    let packed = gzip(json.as_bytes());
    let truncated = read_report(&packed[..packed.len() / 2]).unwrap_err();
    assert!(matches!(truncated, ReportError::Gzip { .. }), "{truncated}");

    // 17 MiB of spaces inside a JSON string: 17 KiB of gzip.
    let bomb_json = format!("{{\"organization-name\": \"{}\"}}", " ".repeat(17 << 20));
    let bomb = gzip(bomb_json.as_bytes());
    assert!(bomb.len() < 64 * 1024);
    assert_eq!(
        read_report(&bomb).unwrap_err(),
        ReportError::TooLarge {
            limit: MAX_REPORT_SIZE
        }
    );

    assert!(matches!(
        read_report(b"this is not a report").unwrap_err(),
        ReportError::NotJson { .. }
    ));
    assert!(matches!(
        parse_json(b"{\"organization-name\": \"x\",}").unwrap_err(),
        ReportError::NotJson { .. }
    ));

    let mut missing: Value = serde_json::from_str(&json).unwrap();
    missing["policies"][1]
        .as_object_mut()
        .unwrap()
        .remove("summary");
    assert_eq!(
        read_report(missing.to_string().as_bytes()).unwrap_err(),
        ReportError::Missing {
            field: "policies[1].summary".into()
        }
    );
    let mut wrong: Value = serde_json::from_str(&json).unwrap();
    wrong["policies"][0]["summary"]["total-successful-session-count"] = json!("1200");
    let err = read_report(&gzip(wrong.to_string().as_bytes())).unwrap_err();
    assert_eq!(
        err.to_string(),
        "policies[0].summary.total-successful-session-count: not a number"
    );

    let eml = String::from_utf8(bytes("report.eml")).unwrap();
    let no_attachment = eml.replace("application/tlsrpt+gzip", "text/plain");
    assert!(matches!(
        read_report(no_attachment.as_bytes()).unwrap_err(),
        ReportError::Mail { .. }
    ));
    let damaged = eml.replacen("H4sI", "H4*I", 1);
    assert!(matches!(
        read_report(damaged.as_bytes()).unwrap_err(),
        ReportError::Mail { .. }
    ));
    let cut = &eml[..eml.len() * 2 / 3];
    assert!(matches!(
        read_report(cut.as_bytes()).unwrap_err(),
        ReportError::Gzip { .. }
    ));
    let unreadable = read_report_file(&testdata("no-such-file.json")).unwrap_err();
    assert!(matches!(unreadable, ReportError::Io { .. }));
}
