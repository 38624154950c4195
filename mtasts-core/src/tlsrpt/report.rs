//! The aggregate report of RFC 8460 §4.4 as data: what a day's counters become, written as
//! the JSON the RFC defines (R-RPT-6), and read back from reports received (both forms of
//! `mx-host`: the array of erratum 6241 and the single string of the RFC's text).

use serde_json::{Map, Value, json};

/// The policy a session was under (RFC 8460 §4.4 `policy-type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum PolicyType {
    /// An MTA-STS policy (`sts`).
    Sts,
    /// DANE TLSA records (`tlsa`).
    Tlsa,
    /// No policy (`no-policy-found`).
    NoPolicyFound,
}

impl PolicyType {
    /// The RFC's string.
    pub fn as_str(self) -> &'static str {
        match self {
            PolicyType::Sts => "sts",
            PolicyType::Tlsa => "tlsa",
            PolicyType::NoPolicyFound => "no-policy-found",
        }
    }

    /// The type named `name`, if it is one of the RFC's.
    pub fn from_name(name: &str) -> Option<PolicyType> {
        [PolicyType::Sts, PolicyType::Tlsa, PolicyType::NoPolicyFound]
            .into_iter()
            .find(|t| t.as_str() == name)
    }
}

/// One policy of a report, as RFC 8460 §4.4 `policy` describes it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ReportPolicy {
    /// `policy-type`.
    pub policy_type: PolicyType,
    /// `policy-string`: the policy's lines (for `sts`), or the TLSA records (for `tlsa`).
    pub policy_string: Vec<String>,
    /// `policy-domain`: always present (R-RPT-6), an A-label.
    pub policy_domain: String,
    /// `mx-host`: the policy's MX patterns as written (with `*.`), for `sts`.
    pub mx_host: Vec<String>,
}

/// One distinct failure (R-RPT-4) and how many sessions had it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FailureDetail {
    /// `result-type` (RFC 8460 §4.3).
    pub result_type: String,
    /// `sending-mta-ip`.
    pub sending_mta_ip: Option<String>,
    /// `receiving-mx-hostname`.
    pub receiving_mx_hostname: Option<String>,
    /// `receiving-mx-helo`.
    pub receiving_mx_helo: Option<String>,
    /// `receiving-ip`.
    pub receiving_ip: Option<String>,
    /// `failed-session-count`.
    pub failed_session_count: u64,
    /// `additional-information` (a URI).
    pub additional_information: Option<String>,
    /// `failure-reason-code`.
    pub failure_reason_code: Option<String>,
}

/// One policy's part of a report: its description, the counts and the failure details.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicySummary {
    /// The policy.
    pub policy: ReportPolicy,
    /// `total-successful-session-count`.
    pub total_successful: u64,
    /// `total-failure-session-count`.
    pub total_failure: u64,
    /// `failure-details`, in a stable order.
    pub failure_details: Vec<FailureDetail>,
}

/// An aggregate report (RFC 8460 §4.4).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    /// `organization-name`.
    pub organization_name: String,
    /// `date-range.start-datetime` (RFC 3339, `<day>T00:00:00Z`).
    pub start_datetime: String,
    /// `date-range.end-datetime` (`<day>T23:59:59Z`).
    pub end_datetime: String,
    /// `contact-info`.
    pub contact_info: String,
    /// `report-id`.
    pub report_id: String,
    /// `policies`: always an array (R-RPT-6).
    pub policies: Vec<PolicySummary>,
}

/// Why a received report could not be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReportError(pub String);

impl std::fmt::Display for ReportError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "not an RFC 8460 report: {}", self.0)
    }
}

impl std::error::Error for ReportError {}

fn put(map: &mut Map<String, Value>, key: &str, value: &Option<String>) {
    if let Some(v) = value {
        map.insert(key.into(), Value::String(v.clone()));
    }
}

impl Report {
    /// The report's JSON (R-RPT-6): every required field, `policies` an array,
    /// `policy-domain` always, `mx-host` an array of patterns.
    pub fn to_json(&self) -> Value {
        let policies: Vec<Value> = self
            .policies
            .iter()
            .map(|p| {
                let mut policy = Map::new();
                policy.insert("policy-type".into(), json!(p.policy.policy_type.as_str()));
                if !p.policy.policy_string.is_empty() {
                    policy.insert("policy-string".into(), json!(p.policy.policy_string));
                }
                policy.insert("policy-domain".into(), json!(p.policy.policy_domain));
                if !p.policy.mx_host.is_empty() {
                    policy.insert("mx-host".into(), json!(p.policy.mx_host));
                }
                let mut entry = Map::new();
                entry.insert("policy".into(), Value::Object(policy));
                entry.insert(
                    "summary".into(),
                    json!({
                        "total-successful-session-count": p.total_successful,
                        "total-failure-session-count": p.total_failure,
                    }),
                );
                if !p.failure_details.is_empty() {
                    let details: Vec<Value> = p
                        .failure_details
                        .iter()
                        .map(|d| {
                            let mut m = Map::new();
                            m.insert("result-type".into(), json!(d.result_type));
                            put(&mut m, "sending-mta-ip", &d.sending_mta_ip);
                            put(&mut m, "receiving-mx-hostname", &d.receiving_mx_hostname);
                            put(&mut m, "receiving-mx-helo", &d.receiving_mx_helo);
                            put(&mut m, "receiving-ip", &d.receiving_ip);
                            m.insert("failed-session-count".into(), json!(d.failed_session_count));
                            put(&mut m, "additional-information", &d.additional_information);
                            put(&mut m, "failure-reason-code", &d.failure_reason_code);
                            Value::Object(m)
                        })
                        .collect();
                    entry.insert("failure-details".into(), Value::Array(details));
                }
                Value::Object(entry)
            })
            .collect();
        json!({
            "organization-name": self.organization_name,
            "date-range": {
                "start-datetime": self.start_datetime,
                "end-datetime": self.end_datetime,
            },
            "contact-info": self.contact_info,
            "report-id": self.report_id,
            "policies": policies,
        })
    }

    /// Reads a report as a domain owner receives it. Tolerant where senders differ: `mx-host`
    /// as an array or a single string, `policies` missing counts as empty, unknown fields
    /// ignored; strict where the meaning depends on it (the counts must be numbers).
    ///
    /// # Errors
    /// [`ReportError`] naming what is missing or malformed.
    pub fn from_json(value: &Value) -> Result<Report, ReportError> {
        let err = |what: &str| ReportError(what.to_string());
        let text = |v: &Value, key: &str| -> Result<String, ReportError> {
            v.get(key)
                .and_then(Value::as_str)
                .map(str::to_string)
                .ok_or_else(|| err(&format!("no {key}")))
        };
        let opt = |v: &Value, key: &str| v.get(key).and_then(Value::as_str).map(str::to_string);
        let count = |v: &Value, key: &str| -> Result<u64, ReportError> {
            v.get(key)
                .and_then(Value::as_u64)
                .ok_or_else(|| err(&format!("no {key} count")))
        };
        let range = value
            .get("date-range")
            .ok_or_else(|| err("no date-range"))?;
        let mut policies = Vec::new();
        for p in value
            .get("policies")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let policy = p
                .get("policy")
                .ok_or_else(|| err("a policies entry without policy"))?;
            let kind = text(policy, "policy-type")?;
            let policy_type = PolicyType::from_name(&kind)
                .ok_or_else(|| err(&format!("unknown policy-type {kind:?}")))?;
            let strings = |key: &str| -> Vec<String> {
                match policy.get(key) {
                    Some(Value::String(s)) => vec![s.clone()],
                    Some(Value::Array(items)) => items
                        .iter()
                        .filter_map(Value::as_str)
                        .map(str::to_string)
                        .collect(),
                    _ => Vec::new(),
                }
            };
            let summary = p
                .get("summary")
                .ok_or_else(|| err("a policy without summary"))?;
            let mut failure_details = Vec::new();
            for d in p
                .get("failure-details")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                failure_details.push(FailureDetail {
                    result_type: text(d, "result-type")?,
                    sending_mta_ip: opt(d, "sending-mta-ip"),
                    receiving_mx_hostname: opt(d, "receiving-mx-hostname"),
                    receiving_mx_helo: opt(d, "receiving-mx-helo"),
                    receiving_ip: opt(d, "receiving-ip"),
                    failed_session_count: count(d, "failed-session-count")?,
                    additional_information: opt(d, "additional-information"),
                    failure_reason_code: opt(d, "failure-reason-code"),
                });
            }
            policies.push(PolicySummary {
                policy: ReportPolicy {
                    policy_type,
                    policy_string: strings("policy-string"),
                    policy_domain: text(policy, "policy-domain")?,
                    mx_host: strings("mx-host"),
                },
                total_successful: count(summary, "total-successful-session-count")?,
                total_failure: count(summary, "total-failure-session-count")?,
                failure_details,
            });
        }
        Ok(Report {
            organization_name: text(value, "organization-name")?,
            start_datetime: text(range, "start-datetime")?,
            end_datetime: text(range, "end-datetime")?,
            contact_info: opt(value, "contact-info").unwrap_or_default(),
            report_id: text(value, "report-id")?,
            policies,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s81() -> Report {
        Report {
            organization_name: "Example Sender".into(),
            start_datetime: "2026-12-01T00:00:00Z".into(),
            end_datetime: "2026-12-01T23:59:59Z".into(),
            contact_info: "postmaster@sender.example".into(),
            report_id: "2026-12-01.example.com.1".into(),
            policies: vec![PolicySummary {
                policy: ReportPolicy {
                    policy_type: PolicyType::Sts,
                    policy_string: vec![
                        "version: STSv1".into(),
                        "mode: testing".into(),
                        "mx: *.example.com".into(),
                        "max_age: 86400".into(),
                    ],
                    policy_domain: "example.com".into(),
                    mx_host: vec!["*.example.com".into()],
                },
                total_successful: 0,
                total_failure: 3,
                failure_details: vec![
                    FailureDetail {
                        result_type: "certificate-expired".into(),
                        sending_mta_ip: Some("192.0.2.1".into()),
                        receiving_mx_hostname: Some("mx1.example.com".into()),
                        receiving_ip: Some("198.51.100.1".into()),
                        failed_session_count: 2,
                        ..FailureDetail::default()
                    },
                    FailureDetail {
                        result_type: "starttls-not-supported".into(),
                        receiving_mx_hostname: Some("mx2.example.com".into()),
                        failed_session_count: 1,
                        ..FailureDetail::default()
                    },
                ],
            }],
        }
    }

    #[test]
    fn s81_the_json_of_rfc_8460_4_4_and_back() {
        let report = s81();
        let json = report.to_json();
        assert_eq!(json["date-range"]["start-datetime"], "2026-12-01T00:00:00Z");
        let policy = &json["policies"][0];
        assert_eq!(policy["policy"]["policy-type"], "sts");
        assert_eq!(policy["policy"]["policy-domain"], "example.com");
        assert_eq!(
            policy["policy"]["mx-host"],
            json!(["*.example.com"]),
            "R-RPT-6: an array"
        );
        assert_eq!(policy["summary"]["total-failure-session-count"], 3);
        assert_eq!(policy["failure-details"][0]["failed-session-count"], 2);
        assert_eq!(
            policy["failure-details"][1]["result-type"],
            "starttls-not-supported"
        );
        assert!(
            policy["failure-details"][1].get("sending-mta-ip").is_none(),
            "absent, not null"
        );
        assert_eq!(Report::from_json(&json).unwrap(), report);
    }

    #[test]
    fn received_reports_are_read_tolerantly_where_senders_differ() {
        let mut json = s81().to_json();
        json["policies"][0]["policy"]["mx-host"] = json!("*.example.com");
        json["unknown-field"] = json!(1);
        let report = Report::from_json(&json).unwrap();
        assert_eq!(
            report.policies[0].policy.mx_host,
            ["*.example.com"],
            "the RFC text's string"
        );
        let mut no_count = s81().to_json();
        no_count["policies"][0]["summary"]["total-failure-session-count"] = json!("3");
        assert!(
            Report::from_json(&no_count)
                .unwrap_err()
                .0
                .contains("count")
        );
        let mut bad_type = s81().to_json();
        bad_type["policies"][0]["policy"]["policy-type"] = json!("dmarc");
        assert!(
            Report::from_json(&bad_type)
                .unwrap_err()
                .0
                .contains("policy-type")
        );
        assert!(Report::from_json(&json!({"organization-name": "x"})).is_err());
    }
}
