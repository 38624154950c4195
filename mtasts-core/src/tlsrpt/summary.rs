//! The domain owner's view of the reports received (issue 15 item 7): per policy domain and
//! per sending organisation, the sessions, the failures by result type and the failing MX
//! hosts, over any number of reports.

use std::collections::{BTreeMap, BTreeSet};
use std::time::SystemTime;

use super::inbox::{ReceivedReport, ReportFormat};
use super::report::{Report, ReportError};

/// What the reports of one sending organisation say about one policy domain.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SummaryRow {
    /// The policy domain (`policy-domain`, lowercased, without a final dot).
    pub policy_domain: String,
    /// The sending organisation (`organization-name`, as written).
    pub organization: String,
    /// How many reports contributed.
    pub reports: u64,
    /// The earliest `start-datetime` of those reports (`None` if none could be read as
    /// RFC 3339).
    pub start: Option<SystemTime>,
    /// The latest `end-datetime`.
    pub end: Option<SystemTime>,
    /// Sessions that negotiated TLS (`total-successful-session-count`, summed).
    pub successful: u64,
    /// Sessions that failed (`total-failure-session-count`, summed).
    pub failed: u64,
    /// `failed-session-count` summed per `result-type`. One session may count under
    /// several result types (RFC 8460 §4.4), so these need not add up to `failed`.
    pub by_result_type: BTreeMap<String, u64>,
    /// `failed-session-count` summed per `receiving-mx-hostname` (lowercased, without a
    /// final dot). Details that name no MX host count only under their result type.
    pub failing_mx: BTreeMap<String, u64>,
}

impl SummaryRow {
    /// [`SummaryRow::by_result_type`], most sessions first (ties by name).
    pub fn result_types(&self) -> Vec<(&str, u64)> {
        by_count(&self.by_result_type)
    }

    /// [`SummaryRow::failing_mx`], most sessions first (ties by name).
    pub fn mx_hosts(&self) -> Vec<(&str, u64)> {
        by_count(&self.failing_mx)
    }
}

fn by_count(map: &BTreeMap<String, u64>) -> Vec<(&str, u64)> {
    let mut v: Vec<(&str, u64)> = map.iter().map(|(k, n)| (k.as_str(), *n)).collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    v
}

/// How one input fared.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SummaryInput {
    /// The file name (or other label) the input was given under.
    pub file: String,
    /// What came of it.
    pub outcome: InputOutcome,
}

/// What came of one input of a [`Summary`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum InputOutcome {
    /// Read and counted.
    Counted {
        /// The form it came in.
        format: ReportFormat,
        /// Its `report-id`.
        report_id: String,
    },
    /// Read, but the same report (`organization-name` and `report-id`) was counted
    /// already: a report is often received twice, once per `rua` URI. Not counted again.
    Duplicate {
        /// The form it came in.
        format: ReportFormat,
        /// Its `report-id`.
        report_id: String,
    },
    /// Not read.
    Failed(ReportError),
}

/// The summary of the reports received: rows per (policy domain, organisation), in that
/// order, and the outcome of every input in the order given (`mtasts tlsrpt summarize`).
///
/// ```rust,no_run
/// use mtasts_core::{Summary, SummaryView, read_report_file, to_json};
///
/// let mut summary = Summary::new();
/// for file in ["a.eml", "b.json.gz"] {
///     summary.add_input(file, read_report_file(file.as_ref()));
/// }
/// for row in summary.rows() {
///     println!("{} {}: {} failed", row.policy_domain, row.organization, row.failed);
/// }
/// println!("{}", to_json(&SummaryView::new(&summary)));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    rows: BTreeMap<(String, String), SummaryRow>,
    seen: BTreeSet<(String, String)>,
    inputs: Vec<SummaryInput>,
}

fn host_name(name: &str) -> String {
    name.trim().trim_end_matches('.').to_ascii_lowercase()
}

impl Summary {
    /// An empty summary.
    pub fn new() -> Summary {
        Summary::default()
    }

    /// Counts `report`; false (and nothing counted) if the same report (organisation and
    /// `report-id`) was counted already.
    pub fn add(&mut self, report: &Report) -> bool {
        let key = (report.organization_name.clone(), report.report_id.clone());
        if !self.seen.insert(key) {
            return false;
        }
        let start = crate::clock::parse_time(&report.start_datetime).ok();
        let end = crate::clock::parse_time(&report.end_datetime).ok();
        // A report with several policies of one domain counts once for that domain.
        let mut counted = BTreeSet::new();
        for p in &report.policies {
            let domain = host_name(&p.policy.policy_domain);
            let row = self
                .rows
                .entry((domain.clone(), report.organization_name.clone()))
                .or_insert_with(|| SummaryRow {
                    policy_domain: domain.clone(),
                    organization: report.organization_name.clone(),
                    ..SummaryRow::default()
                });
            if counted.insert(domain) {
                row.reports += 1;
                row.start = match (row.start, start) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
                row.end = match (row.end, end) {
                    (Some(a), Some(b)) => Some(a.max(b)),
                    (a, b) => a.or(b),
                };
            }
            row.successful = row.successful.saturating_add(p.total_successful);
            row.failed = row.failed.saturating_add(p.total_failure);
            for d in &p.failure_details {
                let n = d.failed_session_count;
                let t = row.by_result_type.entry(d.result_type.clone()).or_default();
                *t = t.saturating_add(n);
                if let Some(mx) = d.receiving_mx_hostname.as_deref().map(host_name)
                    && !mx.is_empty()
                {
                    let m = row.failing_mx.entry(mx).or_default();
                    *m = m.saturating_add(n);
                }
            }
        }
        true
    }

    /// Records the outcome of reading the input `file` (e.g. from
    /// [`read_report_file`](crate::read_report_file)) and counts its report, if any.
    pub fn add_input(&mut self, file: &str, read: Result<ReceivedReport, ReportError>) {
        let outcome = match read {
            Ok(r) => {
                let report_id = r.report.report_id.clone();
                if self.add(&r.report) {
                    InputOutcome::Counted {
                        format: r.format,
                        report_id,
                    }
                } else {
                    InputOutcome::Duplicate {
                        format: r.format,
                        report_id,
                    }
                }
            }
            Err(e) => InputOutcome::Failed(e),
        };
        self.inputs.push(SummaryInput {
            file: file.to_string(),
            outcome,
        });
    }

    /// The rows, by policy domain, then organisation.
    pub fn rows(&self) -> impl Iterator<Item = &SummaryRow> {
        self.rows.values()
    }

    /// Every input recorded with [`Summary::add_input`], in order.
    pub fn inputs(&self) -> &[SummaryInput] {
        &self.inputs
    }

    /// The inputs that could not be read, with why.
    pub fn failures(&self) -> impl Iterator<Item = (&str, &ReportError)> {
        self.inputs.iter().filter_map(|i| match &i.outcome {
            InputOutcome::Failed(e) => Some((i.file.as_str(), e)),
            _ => None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::report::{FailureDetail, PolicySummary, PolicyType, ReportPolicy};
    use super::*;

    fn report(
        org: &str,
        id: &str,
        day: &str,
        domain: &str,
        ok: u64,
        fails: &[(&str, Option<&str>, u64)],
    ) -> Report {
        Report {
            organization_name: org.into(),
            start_datetime: format!("{day}T00:00:00Z"),
            end_datetime: format!("{day}T23:59:59Z"),
            contact_info: String::new(),
            report_id: id.into(),
            policies: vec![PolicySummary {
                policy: ReportPolicy {
                    policy_type: PolicyType::Sts,
                    policy_string: vec![],
                    policy_domain: domain.into(),
                    mx_host: vec![],
                },
                total_successful: ok,
                total_failure: fails.iter().map(|f| f.2).sum(),
                failure_details: fails
                    .iter()
                    .map(|(t, mx, n)| FailureDetail {
                        result_type: (*t).into(),
                        receiving_mx_hostname: mx.map(str::to_string),
                        failed_session_count: *n,
                        ..FailureDetail::default()
                    })
                    .collect(),
            }],
        }
    }

    #[test]
    fn rows_per_domain_and_organisation_in_order() {
        let mut s = Summary::new();
        assert!(s.add(&report(
            "Zeta",
            "1",
            "2026-12-02",
            "example.com",
            10,
            &[("certificate-expired", Some("MX1.example.com."), 2)]
        )));
        assert!(s.add(&report("Alpha", "1", "2026-12-01", "example.com", 5, &[])));
        assert!(s.add(&report(
            "Zeta",
            "2",
            "2026-12-01",
            "Example.COM",
            7,
            &[
                ("certificate-expired", Some("mx1.example.com"), 1),
                ("starttls-not-supported", Some("mx2.example.com"), 3),
                ("validation-failure", None, 3),
            ]
        )));
        assert!(s.add(&report("Alpha", "9", "2026-12-01", "a.example", 1, &[])));
        assert!(
            !s.add(&report("Zeta", "2", "2026-12-01", "example.com", 7, &[])),
            "a duplicate"
        );
        let rows: Vec<_> = s.rows().collect();
        let keys: Vec<_> = rows
            .iter()
            .map(|r| (r.policy_domain.as_str(), r.organization.as_str()))
            .collect();
        assert_eq!(
            keys,
            [
                ("a.example", "Alpha"),
                ("example.com", "Alpha"),
                ("example.com", "Zeta")
            ]
        );
        let zeta = rows[2];
        assert_eq!((zeta.reports, zeta.successful, zeta.failed), (2, 17, 9));
        assert_eq!(
            zeta.result_types(),
            [
                ("certificate-expired", 3),
                ("starttls-not-supported", 3),
                ("validation-failure", 3)
            ]
        );
        assert_eq!(
            zeta.mx_hosts(),
            [("mx1.example.com", 3), ("mx2.example.com", 3)]
        );
        assert_eq!(
            crate::clock::rfc3339(zeta.start.unwrap()),
            "2026-12-01T00:00:00Z"
        );
        assert_eq!(
            crate::clock::rfc3339(zeta.end.unwrap()),
            "2026-12-02T23:59:59Z"
        );
    }

    #[test]
    fn inputs_are_recorded_failed_ones_too() {
        let mut s = Summary::new();
        let r = report("O", "1", "2026-12-01", "example.com", 1, &[]);
        s.add_input(
            "a.json",
            Ok(ReceivedReport {
                format: ReportFormat::Json,
                report: r.clone(),
            }),
        );
        s.add_input(
            "b.eml",
            Err(ReportError::Missing {
                field: "report-id".into(),
            }),
        );
        s.add_input(
            "c.json.gz",
            Ok(ReceivedReport {
                format: ReportFormat::Gzip,
                report: r,
            }),
        );
        assert!(matches!(
            s.inputs()[0].outcome,
            InputOutcome::Counted { .. }
        ));
        assert!(matches!(
            s.inputs()[2].outcome,
            InputOutcome::Duplicate { .. }
        ));
        let failed: Vec<_> = s.failures().map(|(f, e)| format!("{f}: {e}")).collect();
        assert_eq!(failed, ["b.eml: report-id: missing"]);
        assert_eq!(s.rows().count(), 1);
    }
}
