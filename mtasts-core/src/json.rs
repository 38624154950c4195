//! One JSON view per concept, defined once (issue 11): every face prints these — the
//! `mtasts` command's `--json`, Python's `to_dict()` and `python -m mtasts`, and the C ABI's
//! `mtasts_*_json()`. The schemas are documented in `docs/json.md`.
//!
//! Times are RFC 3339 UTC strings (`2026-12-01T21:00:00Z`), enums their stable lowercase
//! names, absent values `null`.

use serde::Serialize;

use crate::cache::Entry;
use crate::certs::{CertCheck, CertificateInfo};
use crate::clock::rfc3339;
use crate::diagnose::Diagnosis;
use crate::error::Error;
use crate::failure::MxFailure;
use crate::policy::{CachedPolicy, Policy};
use crate::probe::{ProbeOutcome, ProbeReport};
use crate::refresh::RefreshReport;
use crate::resolution::Resolution;
use crate::tlsrpt::{DayStatus, InputOutcome, ReportError, SendAction, SendOutcome, Summary};

/// The version of the schemas in `docs/json.md`. It grows when a field is removed, renamed
/// or changes meaning; adding a field does not change it.
pub const JSON_VERSION: u32 = 1;

/// A failure: its kind (`dns-temporary`, `policy-fetch`, `cache`, ...), RFC 8460 result type
/// and message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FailureView {
    /// [`Error::kind`].
    pub kind: &'static str,
    /// [`Error::result_type`], e.g. `sts-policy-fetch-error`.
    pub result_type: Option<&'static str>,
    /// The message.
    pub reason: String,
}

impl FailureView {
    /// The view of `e`.
    pub fn new(e: &Error) -> FailureView {
        FailureView {
            kind: e.kind(),
            result_type: e.result_type().map(|t| t.as_str()),
            reason: e.to_string(),
        }
    }
}

/// A policy: its record id and times when it was fetched, its fields and raw text.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PolicyView {
    /// The TXT record id it was fetched under (`null` for a policy only parsed).
    pub id: Option<String>,
    /// `enforce`, `testing` or `none`.
    pub mode: &'static str,
    /// `max_age` in seconds (clamped, R-POL-6).
    pub max_age: u32,
    /// The usable `mx` patterns, in policy order.
    pub mx: Vec<String>,
    /// When it was fetched (`null` for a policy only parsed).
    pub fetched_at: Option<String>,
    /// When it expires (R-CACHE-1; `null` for a policy only parsed).
    pub expires_at: Option<String>,
    /// The policy file as served (R-POL-8).
    pub text: String,
}

impl PolicyView {
    /// The view of a fetched (or cached) policy.
    pub fn cached(c: &CachedPolicy) -> PolicyView {
        PolicyView {
            id: Some(c.id.clone()),
            fetched_at: Some(rfc3339(c.fetched_at)),
            expires_at: Some(rfc3339(c.expires_at)),
            ..PolicyView::parsed(&c.policy)
        }
    }

    /// The view of a policy that was only parsed (no id, no times).
    pub fn parsed(p: &Policy) -> PolicyView {
        PolicyView {
            id: None,
            mode: p.mode().as_str(),
            max_age: p.max_age(),
            mx: p.mx().iter().map(ToString::to_string).collect(),
            fetched_at: None,
            expires_at: None,
            text: p.text().to_string(),
        }
    }
}

/// A resolution, as `mtasts lookup --json` prints one per domain: `{domain, mode, source,
/// policy, failure, notice}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ResolutionView {
    /// The normalised domain (or, for an input that is not a domain, the input).
    pub domain: String,
    /// The mode in effect ([`Resolution::mode`]).
    pub mode: &'static str,
    /// [`Source::as_str`](crate::Source::as_str); `null` when the input was not a domain.
    pub source: Option<&'static str>,
    /// The policy in effect.
    pub policy: Option<PolicyView>,
    /// What failed.
    pub failure: Option<FailureView>,
    /// A note that is not a failure.
    pub notice: Option<String>,
}

impl ResolutionView {
    /// The view of `r`.
    pub fn new(r: &Resolution) -> ResolutionView {
        ResolutionView {
            domain: r.domain().to_string(),
            mode: r.mode().as_str(),
            source: Some(r.source().as_str()),
            policy: r.cached_policy().map(|c| PolicyView::cached(c)),
            failure: r.failure().map(FailureView::new),
            notice: r.notice().map(str::to_string),
        }
    }

    /// The view for an input that could not be resolved at all (not a domain): mode `none`,
    /// no source, the error as failure.
    pub fn for_error(input: &str, e: &Error) -> ResolutionView {
        ResolutionView {
            domain: input.to_string(),
            mode: "none",
            source: None,
            policy: None,
            failure: Some(FailureView::new(e)),
            notice: None,
        }
    }
}

/// A running backoff of a cache entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BackoffView {
    /// The record id the failed fetch was for (empty: a failed TXT lookup).
    pub id: String,
    /// No new attempt before this time.
    pub until: String,
    /// The failure's RFC 8460 result type.
    pub result_type: &'static str,
    /// The failure's message.
    pub reason: String,
}

/// A cache entry, as `mtasts cache list|show --json` prints it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct EntryView {
    /// The policy domain.
    pub domain: String,
    /// The cached policy's mode, `null` without a policy.
    pub mode: Option<&'static str>,
    /// The cached policy's record id.
    pub id: Option<String>,
    /// The cached policy's `max_age`.
    pub max_age: Option<u32>,
    /// The cached policy's `mx` patterns.
    pub mx: Vec<String>,
    /// When the policy was fetched.
    pub fetched_at: Option<String>,
    /// When the policy expires.
    pub expires_at: Option<String>,
    /// When the TXT record is checked again (R-CACHE-5).
    pub next_check: String,
    /// The running backoff (R-FETCH-10).
    pub backoff: Option<BackoffView>,
    /// Refreshes that failed in a row.
    pub failures: u32,
    /// When a lookup last used the entry (R-CACHE-8).
    pub last_used: String,
    /// The raw policy text, in the detailed view only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

impl EntryView {
    /// The view of `e`; with `with_text`, the raw policy text too.
    pub fn new(e: &Entry, with_text: bool) -> EntryView {
        let p = e.policy.as_deref();
        EntryView {
            domain: e.domain.to_string(),
            mode: p.map(|p| p.policy.mode().as_str()),
            id: p.map(|p| p.id.clone()),
            max_age: p.map(|p| p.policy.max_age()),
            mx: p.map_or_else(Vec::new, |p| {
                p.policy.mx().iter().map(ToString::to_string).collect()
            }),
            fetched_at: p.map(|p| rfc3339(p.fetched_at)),
            expires_at: p.map(|p| rfc3339(p.expires_at)),
            next_check: rfc3339(e.next_check),
            backoff: e.backoff.as_ref().map(|b| BackoffView {
                id: b.id.clone(),
                until: rfc3339(b.until),
                result_type: b.result_type.as_str(),
                reason: b.reason.clone(),
            }),
            failures: e.failures,
            last_used: rfc3339(e.last_used),
            text: with_text
                .then(|| p.map(|p| p.policy.text().to_string()))
                .flatten(),
        }
    }
}

/// One failed refresh.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FailedRefreshView {
    /// The domain.
    pub domain: String,
    /// What failed.
    pub failure: FailureView,
}

/// A refresh run, as `mtasts refresh --json` prints it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RefreshView {
    /// Cached policies looked at.
    pub examined: usize,
    /// Domains whose policy was fetched again.
    pub refreshed: Vec<String>,
    /// Domains that no longer publish a policy.
    pub unpublished: Vec<String>,
    /// Domains whose refresh failed.
    pub failed: Vec<FailedRefreshView>,
    /// Entries dropped for being unused.
    pub purged: usize,
}

impl RefreshView {
    /// The view of `report`.
    pub fn new(report: &RefreshReport) -> RefreshView {
        let names = |v: &[crate::Domain]| v.iter().map(ToString::to_string).collect();
        RefreshView {
            examined: report.examined,
            refreshed: names(&report.refreshed),
            unpublished: names(&report.unpublished),
            failed: report
                .failed
                .iter()
                .map(|(d, e)| FailedRefreshView {
                    domain: d.to_string(),
                    failure: FailureView::new(e),
                })
                .collect(),
            purged: report.purged,
        }
    }
}

/// `view` as pretty JSON (two-space indent, no final newline), the text every face prints.
pub fn to_json(view: &impl Serialize) -> String {
    // Serializing these views cannot fail: plain structs of strings, numbers and options.
    serde_json::to_string_pretty(view).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}

/// The TXT record of a diagnosis.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TxtView {
    /// `_mta-sts.<domain>`.
    pub name: String,
    /// Every TXT record there (character-strings joined, invalid UTF-8 replaced).
    pub records: Vec<String>,
    /// The DNS error, if the lookup failed.
    pub error: Option<String>,
}

/// The policy of a diagnosis.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CheckedPolicyView {
    /// `https://mta-sts.<domain>/.well-known/mta-sts.txt`.
    pub url: String,
    /// Where it came from ([`Source::as_str`](crate::Source::as_str)).
    pub source: &'static str,
    /// The TXT record id it was fetched under.
    pub id: String,
    /// `enforce`, `testing` or `none`.
    pub mode: &'static str,
    /// `max_age` in seconds.
    pub max_age: u32,
    /// The usable `mx` patterns.
    pub mx: Vec<String>,
    /// The policy file as served.
    pub text: String,
    /// Its tolerated oddities.
    pub warnings: Vec<String>,
}

/// The MX lookup of a diagnosis.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MxLookupView {
    /// No MX records: the domain itself is the MX host (R-MX-3).
    pub implicit: bool,
    /// Why the lookup failed.
    pub error: Option<String>,
}

/// The durations of a probe, in milliseconds.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TimingsView {
    /// Until connected.
    pub connected: Option<f64>,
    /// Until the banner.
    pub banner: Option<f64>,
    /// Until STARTTLS was accepted.
    pub starttls: Option<f64>,
    /// Until the TLS handshake ended.
    pub handshake: Option<f64>,
    /// In all.
    pub total: f64,
}

/// A STARTTLS probe of one MX host.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ProbeView {
    /// `pass`, `fail` or `incomplete`.
    pub outcome: &'static str,
    /// For `fail`, the RFC 8460 result type.
    pub result_type: Option<&'static str>,
    /// For `fail`, the reason code.
    pub reason_code: Option<&'static str>,
    /// What failed.
    pub detail: Option<String>,
    /// The address connected to.
    pub address: Option<String>,
    /// Addresses that could not be connected to, and why.
    pub connect_errors: Vec<String>,
    /// The banner lines.
    pub banner: Vec<String>,
    /// Whether STARTTLS was in the EHLO reply.
    pub starttls_offered: bool,
    /// The TLS version negotiated.
    pub tls_version: Option<String>,
    /// The cipher suite negotiated.
    pub cipher_suite: Option<String>,
    /// How many certificates the MX presented.
    pub chain_length: usize,
    /// The durations.
    pub timings_ms: TimingsView,
}

fn millis(d: std::time::Duration) -> f64 {
    (d.as_secs_f64() * 1000.0 * 1000.0).round() / 1000.0
}

impl ProbeView {
    /// The view of `r`.
    pub fn new(r: &ProbeReport) -> ProbeView {
        let failure = r.outcome.failure();
        ProbeView {
            outcome: r.outcome.as_str(),
            result_type: failure.map(|f| f.result_type().as_str()),
            reason_code: failure.map(MxFailure::reason_code),
            detail: match &r.outcome {
                ProbeOutcome::Fail(f) => Some(f.detail().to_owned()),
                ProbeOutcome::Incomplete { reason } => Some(reason.clone()),
                _ => None,
            },
            address: r.address.map(|a| a.to_string()),
            connect_errors: r.connect_errors.clone(),
            banner: r.banner.clone(),
            starttls_offered: r.starttls_offered,
            tls_version: r.tls_version.clone(),
            cipher_suite: r.cipher_suite.clone(),
            chain_length: r.chain.len(),
            timings_ms: TimingsView {
                connected: r.timings.connected.map(millis),
                banner: r.timings.banner.map(millis),
                starttls: r.timings.starttls.map(millis),
                handshake: r.timings.handshake.map(millis),
                total: millis(r.timings.total),
            },
        }
    }
}

/// A certificate, for display.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CertView {
    /// The subject DN.
    pub subject: String,
    /// The issuer DN.
    pub issuer: String,
    /// `DNS:name` / `IP:addr` subjectAltNames.
    pub sans: Vec<String>,
    /// Start of validity.
    pub not_before: Option<String>,
    /// End of validity.
    pub not_after: Option<String>,
    /// Why it could not be displayed.
    pub error: Option<String>,
}

impl CertView {
    /// The view of `c`.
    pub fn new(c: &CertificateInfo) -> CertView {
        CertView {
            subject: c.subject.clone(),
            issuer: c.issuer.clone(),
            sans: c.sans.clone(),
            not_before: c.not_before.map(rfc3339),
            not_after: c.not_after.map(rfc3339),
            error: c.error.clone(),
        }
    }
}

/// One MX host of a diagnosis.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MxCheckView {
    /// The MX preference.
    pub preference: u16,
    /// The MX host name.
    pub host: String,
    /// Whether it matches a policy pattern (`null` without patterns).
    pub matches_policy: Option<bool>,
    /// [`Verdict::as_str`](crate::Verdict::as_str).
    pub verdict: &'static str,
    /// The verdict, for people.
    pub verdict_detail: String,
    /// The probe, `null` when not probed.
    pub probe: Option<ProbeView>,
    /// The leaf certificate presented.
    pub certificate: Option<CertView>,
    /// [`MxDelivery::as_str`](crate::MxDelivery::as_str).
    pub delivery: &'static str,
}

/// One problem of a diagnosis.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ProblemView {
    /// `error` or `warning`.
    pub severity: &'static str,
    /// The MX host it is about.
    pub mx: Option<String>,
    /// [`ProblemCode::as_str`](crate::ProblemCode::as_str).
    pub code: &'static str,
    /// The RFC 8460 result type.
    pub result_type: Option<&'static str>,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub fix: &'static str,
}

/// A diagnosis, as `mtasts check --json` prints it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DiagnosisView {
    /// The domain, normalised.
    pub domain: String,
    /// The TXT record.
    pub txt: TxtView,
    /// The policy in effect.
    pub policy: Option<CheckedPolicyView>,
    /// What went wrong obtaining the policy.
    pub policy_failure: Option<FailureView>,
    /// The resolver's notice.
    pub notice: Option<String>,
    /// The MX lookup.
    pub mx_lookup: MxLookupView,
    /// Every MX host.
    pub mx: Vec<MxCheckView>,
    /// Senders defer every message.
    pub defer: bool,
    /// The problems.
    pub problems: Vec<ProblemView>,
    /// No problem of severity `error`.
    pub ok: bool,
}

impl DiagnosisView {
    /// The view of `d`.
    pub fn new(d: &Diagnosis) -> DiagnosisView {
        let r = &d.resolution;
        DiagnosisView {
            domain: d.domain.to_string(),
            txt: TxtView {
                name: d.txt.name.clone(),
                records: d
                    .txt
                    .records
                    .iter()
                    .map(|r| String::from_utf8_lossy(r).into_owned())
                    .collect(),
                error: d.txt.error.as_ref().map(ToString::to_string),
            },
            policy: r.cached_policy().map(|c| CheckedPolicyView {
                url: d.domain.policy_url(),
                source: r.source().as_str(),
                id: c.id.clone(),
                mode: c.policy.mode().as_str(),
                max_age: c.policy.max_age(),
                mx: c.policy.mx().iter().map(ToString::to_string).collect(),
                text: c.policy.text().to_owned(),
                warnings: c.policy.warnings().to_vec(),
            }),
            policy_failure: r.failure().map(FailureView::new),
            notice: r.notice().map(str::to_owned),
            mx_lookup: MxLookupView {
                implicit: d.mx_lookup.implicit,
                error: d.mx_lookup.error.clone(),
            },
            mx: d
                .mx
                .iter()
                .map(|m| MxCheckView {
                    preference: m.preference,
                    host: m.host.clone(),
                    matches_policy: m.matches_policy,
                    verdict: m.verdict.as_str(),
                    verdict_detail: m.verdict.to_string(),
                    probe: m.probe.as_ref().map(ProbeView::new),
                    certificate: m.certificate.as_ref().map(CertView::new),
                    delivery: m.delivery.as_str(),
                })
                .collect(),
            defer: d.defer,
            problems: d
                .problems
                .iter()
                .map(|p| ProblemView {
                    severity: p.severity.as_str(),
                    mx: p.mx.clone(),
                    code: p.code.as_str(),
                    result_type: p.result_type.map(|t| t.as_str()),
                    message: p.message.clone(),
                    fix: p.fix(),
                })
                .collect(),
            ok: d.ok(),
        }
    }
}

/// A certificate chain check, as `mtasts verify-cert --json` prints it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CertCheckView {
    /// The MX host the chain was checked for.
    pub mx: String,
    /// The time it was checked at.
    pub at: String,
    /// `pass` or `fail`.
    pub result: &'static str,
    /// For `fail`, the RFC 8460 result type.
    pub result_type: Option<&'static str>,
    /// For `fail`, the reason code.
    pub reason_code: Option<&'static str>,
    /// For `fail`, what is wrong.
    pub detail: Option<String>,
}

impl CertCheckView {
    /// The view of `check`, made for `mx` at `at`.
    pub fn new(check: &CertCheck, mx: &str, at: std::time::SystemTime) -> CertCheckView {
        let failure = check.failure();
        CertCheckView {
            mx: mx.to_owned(),
            at: rfc3339(at),
            result: if check.is_valid() { "pass" } else { "fail" },
            result_type: failure.map(|f| f.result_type().as_str()),
            reason_code: failure.map(MxFailure::reason_code),
            detail: failure.map(|f| f.detail().to_owned()),
        }
    }
}

/// Why a received report could not be read, as `mtasts tlsrpt summarize --json` prints it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ReportErrorView {
    /// [`ReportError::kind`]: `missing`, `wrong-type`, `bad-value`, `not-json`, `gzip`,
    /// `too-large`, `mail`, `io`.
    pub kind: &'static str,
    /// The path of the field it is about (`policies[0].summary.total-failure-session-count`),
    /// `null` when it is not about a field.
    pub field: Option<String>,
    /// The message.
    pub reason: String,
}

impl ReportErrorView {
    /// The view of `e`.
    pub fn new(e: &ReportError) -> ReportErrorView {
        ReportErrorView {
            kind: e.kind(),
            field: e.field().map(str::to_owned),
            reason: e.to_string(),
        }
    }
}

/// One input of a summary: `{file, status (counted, duplicate, failed), format, report_id,
/// error}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ReportInputView {
    /// The file as given.
    pub file: String,
    /// `counted`, `duplicate` (the same report was counted already) or `failed`.
    pub status: &'static str,
    /// [`ReportFormat::as_str`](crate::ReportFormat::as_str): `json`, `gzip`, `mail+gzip`, `mail+json`; `null` if failed.
    pub format: Option<&'static str>,
    /// The report's `report-id`; `null` if failed.
    pub report_id: Option<String>,
    /// Why it could not be read; `null` unless failed.
    pub error: Option<ReportErrorView>,
}

/// A count of sessions under one name (a result type, an MX host).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SessionCountView {
    /// The result type or MX host name.
    pub name: String,
    /// The sessions.
    pub sessions: u64,
}

/// One row of a summary: a policy domain as one sending organisation reported it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SummaryRowView {
    /// The policy domain.
    pub policy_domain: String,
    /// The sending organisation (`organization-name`).
    pub organization: String,
    /// Reports counted.
    pub reports: u64,
    /// The earliest start of their date ranges.
    pub start: Option<String>,
    /// The latest end of their date ranges.
    pub end: Option<String>,
    /// Successful sessions.
    pub successful_sessions: u64,
    /// Failed sessions.
    pub failed_sessions: u64,
    /// Failed sessions per result type, most first (a session may count under several).
    pub failures: Vec<SessionCountView>,
    /// Failed sessions per receiving MX host, most first.
    pub failing_mx_hosts: Vec<SessionCountView>,
}

/// A summary of received reports, as `mtasts tlsrpt summarize --json` prints it:
/// `{summary: [row], inputs: [input], ok}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SummaryView {
    /// The rows, by policy domain, then organisation.
    pub summary: Vec<SummaryRowView>,
    /// Every input, in the order given.
    pub inputs: Vec<ReportInputView>,
    /// True when every input was read.
    pub ok: bool,
}

impl SummaryView {
    /// The view of `s`.
    pub fn new(s: &Summary) -> SummaryView {
        let counts = |v: Vec<(&str, u64)>| {
            v.into_iter()
                .map(|(name, sessions)| SessionCountView {
                    name: name.to_owned(),
                    sessions,
                })
                .collect()
        };
        SummaryView {
            summary: s
                .rows()
                .map(|r| SummaryRowView {
                    policy_domain: r.policy_domain.clone(),
                    organization: r.organization.clone(),
                    reports: r.reports,
                    start: r.start.map(rfc3339),
                    end: r.end.map(rfc3339),
                    successful_sessions: r.successful,
                    failed_sessions: r.failed,
                    failures: counts(r.result_types()),
                    failing_mx_hosts: counts(r.mx_hosts()),
                })
                .collect(),
            inputs: s
                .inputs()
                .iter()
                .map(|i| {
                    let (status, format, report_id, error) = match &i.outcome {
                        InputOutcome::Counted { format, report_id } => (
                            "counted",
                            Some(format.as_str()),
                            Some(report_id.clone()),
                            None,
                        ),
                        InputOutcome::Duplicate { format, report_id } => (
                            "duplicate",
                            Some(format.as_str()),
                            Some(report_id.clone()),
                            None,
                        ),
                        InputOutcome::Failed(e) => {
                            ("failed", None, None, Some(ReportErrorView::new(e)))
                        }
                    };
                    ReportInputView {
                        file: i.file.clone(),
                        status,
                        format,
                        report_id,
                        error,
                    }
                })
                .collect(),
            ok: s.failures().next().is_none(),
        }
    }
}

/// One (day, domain) of the report store, as `mtasts tlsrpt list --json` prints it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ReportDayView {
    /// The UTC day, `YYYY-MM-DD`.
    pub day: String,
    /// The policy domain.
    pub domain: String,
    /// Successful sessions counted.
    pub successful_sessions: u64,
    /// Failed sessions counted.
    pub failed_sessions: u64,
    /// [`DeliveryState::as_str`](crate::DeliveryState::as_str): `open`, `scheduled`, `due`,
    /// `retrying`, `delivered`, `abandoned`.
    pub state: &'static str,
    /// Delivery attempts so far.
    pub attempts: u32,
    /// When the report is (was) due.
    pub due_at: String,
    /// The next attempt after a failed one; `null` if none is set.
    pub next_attempt: Option<String>,
    /// When it was delivered; `null` if not.
    pub delivered_at: Option<String>,
    /// When it was abandoned; `null` if not.
    pub abandoned_at: Option<String>,
}

impl ReportDayView {
    /// The view of `s`.
    pub fn new(s: &DayStatus) -> ReportDayView {
        let d = &s.delivery;
        ReportDayView {
            day: d.day.to_string(),
            domain: d.domain.to_string(),
            successful_sessions: s.successful,
            failed_sessions: s.failed,
            state: s.state.as_str(),
            attempts: d.attempts,
            due_at: rfc3339(s.due_at),
            next_attempt: d.next_attempt.map(rfc3339),
            delivered_at: d.delivered_at.map(rfc3339),
            abandoned_at: d.abandoned_at.map(rfc3339),
        }
    }
}

/// The report store's days, as `mtasts tlsrpt list --json` prints it: `{days: [day]}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ReportListView {
    /// Every (day, domain), by day and domain.
    pub days: Vec<ReportDayView>,
}

impl ReportListView {
    /// The view of `days`.
    pub fn new(days: &[DayStatus]) -> ReportListView {
        ReportListView {
            days: days.iter().map(ReportDayView::new).collect(),
        }
    }
}

/// One URI that did not take a report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct UriFailureView {
    /// The URI (or `_smtp._tls.<domain>` for a failed record lookup).
    pub uri: String,
    /// Why.
    pub reason: String,
    /// True when retrying cannot help.
    pub permanent: bool,
}

/// What `mtasts tlsrpt send --json` did with one (day, domain).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SendOutcomeView {
    /// The UTC day.
    pub day: String,
    /// The policy domain.
    pub domain: String,
    /// The report id; `null` when no report was made.
    pub report_id: Option<String>,
    /// `not-due`, `delivered`, `retry`, `abandoned` or `would-send` (`--dry-run`).
    pub action: &'static str,
    /// `delivered`: the URI that took it.
    pub uri: Option<String>,
    /// `not-due`: when it will be; `retry`: the next attempt.
    pub at: Option<String>,
    /// `abandoned`: why.
    pub reason: Option<String>,
    /// `would-send`: the URIs, in order.
    pub uris: Vec<String>,
    /// The URIs that did not take it, in the order tried.
    pub failures: Vec<UriFailureView>,
    /// True for `--dry-run`: nothing was sent or written.
    pub dry_run: bool,
}

impl SendOutcomeView {
    /// The view of `o`.
    pub fn new(o: &SendOutcome) -> SendOutcomeView {
        let mut view = SendOutcomeView {
            day: o.day.to_string(),
            domain: o.domain.to_string(),
            report_id: o.report_id.clone(),
            action: "not-due",
            uri: None,
            at: None,
            reason: None,
            uris: Vec::new(),
            failures: o
                .failures
                .iter()
                .map(|f| UriFailureView {
                    uri: f.uri.clone(),
                    reason: f.reason.clone(),
                    permanent: f.permanent,
                })
                .collect(),
            dry_run: o.dry_run,
        };
        match &o.action {
            SendAction::NotDue { at } => view.at = Some(rfc3339(*at)),
            SendAction::Delivered { uri } => {
                view.action = "delivered";
                view.uri = Some(uri.clone());
            }
            SendAction::Retry { next_attempt } => {
                view.action = "retry";
                view.at = Some(rfc3339(*next_attempt));
            }
            SendAction::Abandoned { reason } => {
                view.action = "abandoned";
                view.reason = Some(reason.clone());
            }
            SendAction::WouldSend { uris } => {
                view.action = "would-send";
                view.uris = uris.clone();
            }
        }
        view
    }
}
