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

/// Why a received report could not be read: what is wrong, and where.
///
/// The field variants name the field by its path in the report (`policies[0].summary.
/// total-successful-session-count`), so a domain owner can find it in the sender's JSON.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReportError {
    /// A field the report needs is absent (or `null`).
    Missing {
        /// The field's path, e.g. `policies[0].policy.policy-domain`.
        field: String,
    },
    /// A field is present with the wrong JSON type, e.g. a count written as a string.
    WrongType {
        /// The field's path.
        field: String,
        /// What it should be: `a number`, `a string`, `an object`, `an array`.
        expected: &'static str,
    },
    /// A field has a value of the right type that the RFC does not allow (an unknown
    /// `policy-type`, a negative count).
    BadValue {
        /// The field's path.
        field: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The report is not JSON (RFC 8259) at all.
    NotJson {
        /// The JSON parser's message, with line and column.
        reason: String,
    },
    /// The gzip stream is damaged or ends early (RFC 8460 §5.2).
    Gzip {
        /// What is wrong with it.
        reason: String,
    },
    /// The report is larger than `limit` bytes once decompressed (a decompression bomb, or a
    /// report no sender writes): reading stopped there.
    TooLarge {
        /// The limit, [`MAX_REPORT_SIZE`](crate::MAX_REPORT_SIZE) unless the caller chose one.
        limit: u64,
    },
    /// A mail message (RFC 5322, MIME) that cannot be read, or that has no report attached.
    Mail {
        /// What is wrong with it.
        reason: String,
    },
    /// The file could not be read.
    Io {
        /// The system's message.
        reason: String,
    },
}

impl ReportError {
    /// The path of the field the error is about, for the field variants.
    pub fn field(&self) -> Option<&str> {
        match self {
            ReportError::Missing { field }
            | ReportError::WrongType { field, .. }
            | ReportError::BadValue { field, .. } => Some(field),
            _ => None,
        }
    }

    /// A short stable name for the error's kind (`missing`, `wrong-type`, `bad-value`,
    /// `not-json`, `gzip`, `too-large`, `mail`, `io`), as `--json` prints it.
    pub fn kind(&self) -> &'static str {
        match self {
            ReportError::Missing { .. } => "missing",
            ReportError::WrongType { .. } => "wrong-type",
            ReportError::BadValue { .. } => "bad-value",
            ReportError::NotJson { .. } => "not-json",
            ReportError::Gzip { .. } => "gzip",
            ReportError::TooLarge { .. } => "too-large",
            ReportError::Mail { .. } => "mail",
            ReportError::Io { .. } => "io",
        }
    }
}

impl std::fmt::Display for ReportError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReportError::Missing { field } => write!(f, "{field}: missing"),
            ReportError::WrongType { field, expected } => write!(f, "{field}: not {expected}"),
            ReportError::BadValue { field, reason } => write!(f, "{field}: {reason}"),
            ReportError::NotJson { reason } => write!(f, "not JSON: {reason}"),
            ReportError::Gzip { reason } => write!(f, "not a readable gzip stream: {reason}"),
            ReportError::TooLarge { limit } => write!(
                f,
                "larger than {limit} bytes once decompressed (not read further)"
            ),
            ReportError::Mail { reason } => write!(f, "mail message: {reason}"),
            ReportError::Io { reason } => write!(f, "cannot be read: {reason}"),
        }
    }
}

impl std::error::Error for ReportError {}

/// The path of `key` inside the field at `path` (the report itself is the empty path).
fn child(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// The field `key` of the object `v` (at `path`); `null` counts as absent.
fn field<'v>(v: &'v Value, key: &str) -> Option<&'v Value> {
    v.get(key).filter(|f| !f.is_null())
}

fn object<'v>(v: &'v Value, path: &str, key: &str) -> Result<&'v Value, ReportError> {
    match field(v, key) {
        None => Err(ReportError::Missing {
            field: child(path, key),
        }),
        Some(o) if o.is_object() => Ok(o),
        Some(_) => Err(ReportError::WrongType {
            field: child(path, key),
            expected: "an object",
        }),
    }
}

fn opt_text(v: &Value, path: &str, key: &str) -> Result<Option<String>, ReportError> {
    match field(v, key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(ReportError::WrongType {
            field: child(path, key),
            expected: "a string",
        }),
    }
}

fn text(v: &Value, path: &str, key: &str) -> Result<String, ReportError> {
    opt_text(v, path, key)?.ok_or_else(|| ReportError::Missing {
        field: child(path, key),
    })
}

/// A session count: a JSON number that is a whole number ≥ 0 (RFC 8460 §4.4: "integer,
/// encoded as a JSON number"). `5326.0` is accepted (JSON does not tell the two apart).
fn count(v: &Value, path: &str, key: &str) -> Result<u64, ReportError> {
    let name = || child(path, key);
    match field(v, key) {
        None => Err(ReportError::Missing { field: name() }),
        Some(Value::Number(n)) => n
            .as_u64()
            .or_else(|| {
                n.as_f64()
                    .filter(|f| f.fract() == 0.0 && *f >= 0.0 && *f < 2f64.powi(53))
                    .map(|f| f as u64)
            })
            .ok_or_else(|| ReportError::BadValue {
                field: name(),
                reason: format!("{n} is not a whole number of sessions"),
            }),
        Some(_) => Err(ReportError::WrongType {
            field: name(),
            expected: "a number",
        }),
    }
}

/// An array of strings; a single string is read as an array of one (the RFC's own example
/// writes `mx-host` so: erratum 6241, R-RPT-6).
fn strings(v: &Value, path: &str, key: &str) -> Result<Vec<String>, ReportError> {
    match field(v, key) {
        None => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(vec![s.clone()]),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                item.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| ReportError::WrongType {
                        field: format!("{}[{i}]", child(path, key)),
                        expected: "a string",
                    })
            })
            .collect(),
        Some(_) => Err(ReportError::WrongType {
            field: child(path, key),
            expected: "an array of strings",
        }),
    }
}

/// The array `key`; absent is empty.
fn array<'v>(v: &'v Value, path: &str, key: &str) -> Result<&'v [Value], ReportError> {
    match field(v, key) {
        None => Ok(&[]),
        Some(Value::Array(items)) => Ok(items),
        Some(_) => Err(ReportError::WrongType {
            field: child(path, key),
            expected: "an array",
        }),
    }
}

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
    /// and `policy-string` as an array or a single string, `policies` and `contact-info`
    /// missing read as empty, `null` read as absent, unknown fields ignored, counts written
    /// `5.0` read as 5. Strict where the meaning depends on it: every field present has the
    /// type the RFC gives it, counts are whole numbers ≥ 0, `policy-type` is one of the RFC's.
    ///
    /// # Errors
    /// [`ReportError::Missing`], [`ReportError::WrongType`] or [`ReportError::BadValue`],
    /// naming the field by its path (`policies[0].summary.total-failure-session-count`).
    pub fn from_json(value: &Value) -> Result<Report, ReportError> {
        if !value.is_object() {
            return Err(ReportError::WrongType {
                field: "(the report)".into(),
                expected: "an object",
            });
        }
        // In the order of RFC 8460 §4.4, so the first problem named is the first one there.
        let organization_name = text(value, "", "organization-name")?;
        let range = object(value, "", "date-range")?;
        let start_datetime = text(range, "date-range", "start-datetime")?;
        let end_datetime = text(range, "date-range", "end-datetime")?;
        let contact_info = opt_text(value, "", "contact-info")?.unwrap_or_default();
        let report_id = text(value, "", "report-id")?;
        let mut policies = Vec::new();
        for (i, p) in array(value, "", "policies")?.iter().enumerate() {
            let at = format!("policies[{i}]");
            if !p.is_object() {
                return Err(ReportError::WrongType {
                    field: at,
                    expected: "an object",
                });
            }
            let policy = object(p, &at, "policy")?;
            let policy_at = child(&at, "policy");
            let kind = text(policy, &policy_at, "policy-type")?;
            let policy_type =
                PolicyType::from_name(&kind).ok_or_else(|| ReportError::BadValue {
                    field: child(&policy_at, "policy-type"),
                    reason: format!(
                        "{kind:?} is not a policy type of RFC 8460 (sts, tlsa, no-policy-found)"
                    ),
                })?;
            let summary = object(p, &at, "summary")?;
            let summary_at = child(&at, "summary");
            let mut failure_details = Vec::new();
            for (j, d) in array(p, &at, "failure-details")?.iter().enumerate() {
                let d_at = format!("{at}.failure-details[{j}]");
                if !d.is_object() {
                    return Err(ReportError::WrongType {
                        field: d_at,
                        expected: "an object",
                    });
                }
                failure_details.push(FailureDetail {
                    result_type: text(d, &d_at, "result-type")?,
                    sending_mta_ip: opt_text(d, &d_at, "sending-mta-ip")?,
                    receiving_mx_hostname: opt_text(d, &d_at, "receiving-mx-hostname")?,
                    receiving_mx_helo: opt_text(d, &d_at, "receiving-mx-helo")?,
                    receiving_ip: opt_text(d, &d_at, "receiving-ip")?,
                    failed_session_count: count(d, &d_at, "failed-session-count")?,
                    additional_information: opt_text(d, &d_at, "additional-information")?,
                    failure_reason_code: opt_text(d, &d_at, "failure-reason-code")?,
                });
            }
            policies.push(PolicySummary {
                policy: ReportPolicy {
                    policy_type,
                    policy_string: strings(policy, &policy_at, "policy-string")?,
                    policy_domain: text(policy, &policy_at, "policy-domain")?,
                    mx_host: strings(policy, &policy_at, "mx-host")?,
                },
                total_successful: count(summary, &summary_at, "total-successful-session-count")?,
                total_failure: count(summary, &summary_at, "total-failure-session-count")?,
                failure_details,
            });
        }
        Ok(Report {
            organization_name,
            start_datetime,
            end_datetime,
            contact_info,
            report_id,
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
        json["policies"][0]["failure-details"][0]["receiving-ip"] = Value::Null;
        json["policies"][0]["summary"]["total-failure-session-count"] = json!(3.0);
        let report = Report::from_json(&json).unwrap();
        assert_eq!(
            report.policies[0].failure_details[0].receiving_ip, None,
            "null is absent"
        );
        assert_eq!(report.policies[0].total_failure, 3, "3.0 is 3");
    }

    #[test]
    fn malformed_reports_name_the_field() {
        type Break = fn(&mut Value);
        let cases: Vec<(Break, ReportError)> = vec![
            (
                |j| j["policies"][0]["summary"]["total-successful-session-count"] = json!("5"),
                ReportError::WrongType {
                    field: "policies[0].summary.total-successful-session-count".into(),
                    expected: "a number",
                },
            ),
            (
                |j| j["policies"][0]["summary"]["total-failure-session-count"] = json!(-1),
                ReportError::BadValue {
                    field: "policies[0].summary.total-failure-session-count".into(),
                    reason: "-1 is not a whole number of sessions".into(),
                },
            ),
            (
                |j| j["policies"][0]["failure-details"][1]["failed-session-count"] = json!(1.5),
                ReportError::BadValue {
                    field: "policies[0].failure-details[1].failed-session-count".into(),
                    reason: "1.5 is not a whole number of sessions".into(),
                },
            ),
            (
                |j| {
                    j["policies"][0]["failure-details"][0]
                        .as_object_mut()
                        .unwrap()
                        .remove("result-type");
                },
                ReportError::Missing {
                    field: "policies[0].failure-details[0].result-type".into(),
                },
            ),
            (
                |j| j["policies"][0]["policy"]["policy-type"] = json!("dmarc"),
                ReportError::BadValue {
                    field: "policies[0].policy.policy-type".into(),
                    reason:
                        "\"dmarc\" is not a policy type of RFC 8460 (sts, tlsa, no-policy-found)"
                            .into(),
                },
            ),
            (
                |j| j["policies"][0]["policy"]["mx-host"] = json!(["*.example.com", 7]),
                ReportError::WrongType {
                    field: "policies[0].policy.mx-host[1]".into(),
                    expected: "a string",
                },
            ),
            (
                |j| {
                    j["policies"][0]["policy"]
                        .as_object_mut()
                        .unwrap()
                        .remove("policy-domain");
                },
                ReportError::Missing {
                    field: "policies[0].policy.policy-domain".into(),
                },
            ),
            (
                |j| j["policies"] = json!({"policy": {}}),
                ReportError::WrongType {
                    field: "policies".into(),
                    expected: "an array",
                },
            ),
            (
                |j| j["date-range"] = json!("2026-12-01"),
                ReportError::WrongType {
                    field: "date-range".into(),
                    expected: "an object",
                },
            ),
            (
                |j| j["report-id"] = json!(12),
                ReportError::WrongType {
                    field: "report-id".into(),
                    expected: "a string",
                },
            ),
            (
                |j| {
                    j.as_object_mut().unwrap().remove("organization-name");
                },
                ReportError::Missing {
                    field: "organization-name".into(),
                },
            ),
        ];
        for (break_it, want) in cases {
            let mut json = s81().to_json();
            break_it(&mut json);
            let got = Report::from_json(&json).unwrap_err();
            assert_eq!(got, want);
            assert_eq!(got.field(), want.field());
            assert!(got.to_string().starts_with(want.field().unwrap()), "{got}");
        }
        assert_eq!(
            ReportError::WrongType {
                field: "policies[0].summary.total-successful-session-count".into(),
                expected: "a number"
            }
            .to_string(),
            "policies[0].summary.total-successful-session-count: not a number"
        );
        assert!(Report::from_json(&json!({"organization-name": "x"})).is_err());
    }
}
