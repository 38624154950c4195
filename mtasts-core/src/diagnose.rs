//! The domain owner's and postmaster's diagnostic (`mtasts check`, `Resolver.check` in
//! Python, `mtasts_resolver_check` in C): what a sender applying MTA-STS sees for a domain,
//! every problem with a stable code, its severity and how to fix it.
//!
//! [`Resolver::check`] looks up the TXT record as published, resolves the policy as a sender
//! would, looks up the MX hosts, sorts them out under the policy ([`MxPlan`]) and probes each
//! (STARTTLS and the certificate, [`probe`]), several at a time. The decisions are those of
//! the rest of the core; this module only gathers them and names the problems.

use std::fmt;
use std::thread;

use crate::certs::{CertVerifier, CertificateInfo};
use crate::dns::{DnsAnswer, DnsResolver};
use crate::domain::Domain;
use crate::error::{Error, ResultType};
use crate::failure::{FailureReason, MxFailure};
use crate::mx::MxRecord;
use crate::policy::Mode;
use crate::probe::{ProbeOptions, ProbeOutcome, ProbeReport, probe};
use crate::record::select_record;
use crate::resolution::{Resolution, Source};
use crate::resolver::Resolver;
use crate::verdict::{MxPlan, Verdict};

/// Most MX hosts probed at once.
const MAX_PARALLEL_PROBES: usize = 16;

/// How bad a [`Problem`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Severity {
    /// Senders applying the policy fail, defer or report: fix it.
    Error,
    /// Worth fixing; mail flows.
    Warning,
}

impl Severity {
    /// `error` or `warning`.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        }
    }
}

/// What a [`Problem`] is about: a stable code (see [`ProblemCode::as_str`]) and its fix.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ProblemCode {
    /// An MX host fails MTA-STS: the core's reason code (`mx-mismatch`,
    /// `certificate-expired`, ...).
    Mx(FailureReason),
    /// `sts-policy-invalid`: the policy file is invalid or not `text/plain`.
    StsPolicyInvalid,
    /// `sts-webpki-invalid`: the policy host's certificate is not valid.
    StsWebpkiInvalid,
    /// `sts-policy-fetch-error`: the policy could not be fetched.
    StsPolicyFetchError,
    /// `dns-temporary`: the TXT lookup failed temporarily.
    DnsTemporary,
    /// `invalid-record`: the `_mta-sts` TXT record is invalid, or there are several.
    InvalidRecord,
    /// `no-policy`: no STS TXT record.
    NoPolicy,
    /// `testing-mode`: the policy is `mode: testing`.
    TestingMode,
    /// `mode-none`: the policy is `mode: none`.
    ModeNone,
    /// `policy-warning`: the policy file has a tolerated oddity.
    PolicyWarning,
    /// `domain-not-found`: the domain does not exist in DNS.
    DomainNotFound,
    /// `mx-lookup-failed`: the MX lookup failed.
    MxLookupFailed,
    /// `null-mx`: the domain publishes a null MX (RFC 7505).
    NullMx,
    /// `mx-unreachable`: the probe did not get to STARTTLS.
    MxUnreachable,
    /// `no-usable-mx`: under `enforce`, no MX host can receive mail.
    NoUsableMx,
    /// `cache-unreadable`: the shared policy cache could not be read (cannot tell).
    CacheUnreadable,
}

impl ProblemCode {
    /// The stable code, e.g. `no-usable-mx`, or the MX reason code.
    pub fn as_str(self) -> &'static str {
        match self {
            ProblemCode::Mx(reason) => reason.code(),
            ProblemCode::StsPolicyInvalid => "sts-policy-invalid",
            ProblemCode::StsWebpkiInvalid => "sts-webpki-invalid",
            ProblemCode::StsPolicyFetchError => "sts-policy-fetch-error",
            ProblemCode::DnsTemporary => "dns-temporary",
            ProblemCode::InvalidRecord => "invalid-record",
            ProblemCode::NoPolicy => "no-policy",
            ProblemCode::TestingMode => "testing-mode",
            ProblemCode::ModeNone => "mode-none",
            ProblemCode::PolicyWarning => "policy-warning",
            ProblemCode::DomainNotFound => "domain-not-found",
            ProblemCode::MxLookupFailed => "mx-lookup-failed",
            ProblemCode::NullMx => "null-mx",
            ProblemCode::MxUnreachable => "mx-unreachable",
            ProblemCode::NoUsableMx => "no-usable-mx",
            ProblemCode::CacheUnreadable => "cache-unreadable",
        }
    }

    /// How to fix it, for the domain's postmaster.
    pub fn fix(self) -> &'static str {
        match self {
            ProblemCode::Mx(reason) => fix_for(reason),
            ProblemCode::StsPolicyInvalid => {
                "fix the policy file (RFC 8461 §3.2: version, mode, mx lines, max_age) and \
                 serve it as text/plain"
            }
            ProblemCode::StsWebpkiInvalid => {
                "give the policy host mta-sts.<domain> a valid certificate from a publicly \
                 trusted CA naming it in its subjectAltName"
            }
            ProblemCode::StsPolicyFetchError => {
                "serve the policy at https://mta-sts.<domain>/.well-known/mta-sts.txt with \
                 status 200, without redirects"
            }
            ProblemCode::DnsTemporary => {
                "check that the domain's name servers answer for _mta-sts.<domain>"
            }
            ProblemCode::InvalidRecord => {
                "publish exactly one TXT record `v=STSv1; id=<1-32 letters or digits>;` at \
                 _mta-sts.<domain>"
            }
            ProblemCode::NoPolicy => {
                "publish a policy and a TXT record `v=STSv1; id=...;` at _mta-sts.<domain> to \
                 protect inbound mail"
            }
            ProblemCode::TestingMode => "switch to `mode: enforce` once the TLS reports are clean",
            ProblemCode::ModeNone => {
                "publish `mode: testing` or `mode: enforce` to protect inbound mail"
            }
            ProblemCode::PolicyWarning => "tidy up the policy file (RFC 8461 §3.2)",
            ProblemCode::DomainNotFound => "check the domain name",
            ProblemCode::MxLookupFailed => "check the domain's name servers",
            ProblemCode::NullMx => "remove the null MX record if the domain should receive mail",
            ProblemCode::MxUnreachable => {
                "check that the MX host resolves, accepts connections on the SMTP port and \
                 answers with a 220 banner"
            }
            ProblemCode::NoUsableMx => {
                "fix the MX problems above, or set the policy to `mode: testing` while you do"
            }
            ProblemCode::CacheUnreadable => {
                "make the policy cache readable (permissions, a damaged file, Redis down)"
            }
        }
    }
}

impl fmt::Display for ProblemCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How to fix an MX failure.
fn fix_for(reason: FailureReason) -> &'static str {
    match reason {
        FailureReason::MxMismatch => {
            "add an `mx:` line matching this host to the policy (and change the policy id in \
             the TXT record), or point the MX record at a host the policy names"
        }
        FailureReason::StarttlsNotOffered => {
            "enable STARTTLS on this MX (it must appear in the EHLO reply)"
        }
        FailureReason::StarttlsRefused => {
            "STARTTLS is advertised but refused: check the MX's TLS certificate and key \
             configuration"
        }
        FailureReason::TlsVersionUnsupported => "enable TLS 1.2 and TLS 1.3 on this MX",
        FailureReason::TlsHandshakeFailed => {
            "check the MX's TLS configuration (protocols, ciphers, certificate and key)"
        }
        FailureReason::CertificateExpired => "renew the MX's certificate and reload the MTA",
        FailureReason::CertificateNotYetValid => {
            "the certificate is not valid yet: check its dates and the clocks involved"
        }
        FailureReason::CertificateNotTrusted => {
            "use a certificate from a publicly trusted CA, and send the intermediate \
             certificates with it (full chain)"
        }
        FailureReason::CertificateHostMismatch => {
            "get a certificate whose subjectAltName includes the MX host name"
        }
        FailureReason::CertificateNoSan => {
            "the certificate names the host only in its subject CN, which is not used: get one \
             listing the MX host name as a subjectAltName DNS name"
        }
        FailureReason::CertificateBadUsage => {
            "use a certificate issued for TLS servers (extended key usage serverAuth)"
        }
        _ => "replace the MX's certificate with a valid one from a publicly trusted CA",
    }
}

/// One problem found: how bad, which MX (if any), what, the RFC 8460 result type a sender
/// reports it under (if any), and the details.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// How bad.
    pub severity: Severity,
    /// The MX host it is about, if any.
    pub mx: Option<String>,
    /// What it is.
    pub code: ProblemCode,
    /// The RFC 8460 result type senders report it under, if any.
    pub result_type: Option<ResultType>,
    /// What exactly is wrong.
    pub message: String,
}

impl Problem {
    fn new(severity: Severity, code: ProblemCode, message: String) -> Problem {
        Problem {
            severity,
            mx: None,
            code,
            result_type: None,
            message,
        }
    }

    fn for_mx(severity: Severity, host: &str, failure: &MxFailure) -> Problem {
        Problem {
            severity,
            mx: Some(host.to_owned()),
            code: ProblemCode::Mx(failure.reason()),
            result_type: Some(failure.result_type()),
            message: failure.detail().to_owned(),
        }
    }

    /// How to fix it ([`ProblemCode::fix`]).
    pub fn fix(&self) -> &'static str {
        self.code.fix()
    }
}

/// What a sender applying the policy does with one MX host.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MxDelivery {
    /// Delivers to it.
    Deliver,
    /// Connects, but TLS or the certificate fails: a temporary failure, the next MX is tried.
    TryNext,
    /// Does not even try it: outside the policy.
    Skip,
    /// The probe did not get to STARTTLS.
    Unreachable,
    /// Not probed.
    Unknown,
}

impl MxDelivery {
    /// `deliver`, `try-next`, `skip`, `unreachable` or `unknown`.
    pub fn as_str(self) -> &'static str {
        match self {
            MxDelivery::Deliver => "deliver",
            MxDelivery::TryNext => "try-next",
            MxDelivery::Skip => "skip",
            MxDelivery::Unreachable => "unreachable",
            MxDelivery::Unknown => "unknown",
        }
    }
}

/// One MX host of the domain, in preference order.
#[derive(Clone, Debug)]
pub struct MxCheck {
    /// The MX preference (0 for the implicit MX).
    pub preference: u16,
    /// The MX host name.
    pub host: String,
    /// Whether it matches one of the policy's patterns (`None` without patterns).
    pub matches_policy: Option<bool>,
    /// What MTA-STS requires of it.
    pub verdict: Verdict,
    /// The STARTTLS probe, unless probing was off.
    pub probe: Option<ProbeReport>,
    /// The leaf certificate it presented, for display.
    pub certificate: Option<CertificateInfo>,
    /// What a sender does with it.
    pub delivery: MxDelivery,
}

/// The `_mta-sts` TXT record as published.
#[derive(Clone, Debug)]
pub struct TxtCheck {
    /// `_mta-sts.<domain>`.
    pub name: String,
    /// Every TXT record there, character-strings joined.
    pub records: Vec<Vec<u8>>,
    /// The DNS error, if the lookup failed.
    pub error: Option<Error>,
}

/// The MX lookup.
#[derive(Clone, Debug, Default)]
pub struct MxLookup {
    /// No MX records: the domain itself is the MX host (R-MX-3).
    pub implicit: bool,
    /// Why the lookup failed, if it did.
    pub error: Option<String>,
}

/// Everything [`Resolver::check`] found about a domain.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Diagnosis {
    /// The domain, normalised.
    pub domain: Domain,
    /// The TXT record as published.
    pub txt: TxtCheck,
    /// The policy as a sender resolves it.
    pub resolution: Resolution,
    /// The MX lookup.
    pub mx_lookup: MxLookup,
    /// Every MX host, in preference order.
    pub mx: Vec<MxCheck>,
    /// True when the policy is `enforce` and no MX host can receive mail: senders defer
    /// every message (R-APPLY-1).
    pub defer: bool,
    /// The problems, in the order found.
    pub problems: Vec<Problem>,
}

impl Diagnosis {
    /// True when no problem is of severity [`Severity::Error`].
    pub fn ok(&self) -> bool {
        !self.problems.iter().any(|p| p.severity == Severity::Error)
    }
}

/// How [`Resolver::check`] runs.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct CheckOptions {
    /// How to probe each MX host; `None`: no probe (the deliveries are then `unknown`).
    pub probe: Option<ProbeOptions>,
}

impl Resolver {
    /// Diagnoses `domain`: its TXT record, its policy as a sender resolves it (with this
    /// resolver and its cache: use a memory cache for the live state), its MX hosts under the
    /// policy, and, with [`CheckOptions::probe`], each MX host's STARTTLS and certificate
    /// (checked with `verifier`). Blocking; the probes run up to 16 at a time, each within its
    /// own deadline.
    pub fn check(
        &self,
        domain: &Domain,
        verifier: &CertVerifier,
        options: &CheckOptions,
    ) -> Diagnosis {
        let dns = self.dns();
        let txt_name = domain.txt_name();
        let (records, txt_error) = match dns.txt(&txt_name) {
            Ok(answer) => (answer.records().unwrap_or_default(), None),
            Err(e) => (Vec::new(), Some(e)),
        };
        let resolution = self.resolve_domain(domain);
        let mut d = Diagnosis {
            domain: domain.clone(),
            txt: TxtCheck {
                name: txt_name,
                records,
                error: txt_error,
            },
            resolution,
            mx_lookup: MxLookup::default(),
            mx: Vec::new(),
            defer: false,
            problems: Vec::new(),
        };
        policy_problems(&d.resolution, &d.txt.records, &mut d.problems);

        // The MX records (R-MX-3: none means the domain itself).
        let mx_records: Vec<MxRecord> = match dns.mx(domain.as_str()) {
            Ok(DnsAnswer::Found { records, .. }) => records,
            Ok(DnsAnswer::NoData { .. }) => Vec::new(),
            Ok(DnsAnswer::NxDomain { .. }) => {
                d.mx_lookup.error = Some("the domain does not exist (NXDOMAIN)".into());
                d.problems.push(Problem::new(
                    Severity::Error,
                    ProblemCode::DomainNotFound,
                    format!("{domain} does not exist in DNS"),
                ));
                return d;
            }
            Err(e) => {
                d.mx_lookup.error = Some(e.to_string());
                d.problems.push(Problem::new(
                    Severity::Error,
                    ProblemCode::MxLookupFailed,
                    e.to_string(),
                ));
                return d;
            }
        };
        let null_mx = mx_records.len() == 1 && mx_records[0].exchange.is_empty();
        if null_mx {
            d.problems.push(Problem::new(
                Severity::Warning,
                ProblemCode::NullMx,
                format!("{domain} publishes a null MX (RFC 7505): it accepts no mail"),
            ));
        }
        let plan = match MxPlan::for_resolution(&d.resolution, &mx_records) {
            Ok(plan) => plan,
            Err(e) => {
                // Never fail open: with the shared cache unreadable, mail is deferred.
                d.problems.push(Problem::new(
                    Severity::Error,
                    ProblemCode::CacheUnreadable,
                    e.to_string(),
                ));
                d.defer = true;
                return d;
            }
        };
        d.mx_lookup.implicit = plan.implicit_mx;

        // Every MX in preference order, usable or not, with its verdict.
        let mut hosts: Vec<(u16, String, Verdict)> = plan
            .usable
            .iter()
            .map(|m| (m.preference, m.host.clone(), m.verdict.clone()))
            .chain(plan.skipped.iter().map(|m| {
                (
                    m.preference,
                    m.host.clone(),
                    Verdict::Skip {
                        failure: m.failure.clone(),
                    },
                )
            }))
            .collect();
        hosts.sort_by_key(|(preference, _, _)| *preference);

        let reports: Vec<Option<ProbeReport>> = match &options.probe {
            Some(probe_options) if !null_mx => {
                probe_all(dns.as_ref(), verifier, probe_options, &hosts)
            }
            _ => hosts.iter().map(|_| None).collect(),
        };

        let policy = d.resolution.policy();
        for ((preference, host, verdict), report) in hosts.into_iter().zip(reports) {
            let matches_policy = policy
                .filter(|p| !p.mx().is_empty())
                .map(|p| p.matches(&host));
            // Failures count as errors where a sender would act on or report them.
            let severity = if verdict.reports_failures() {
                Severity::Error
            } else {
                Severity::Warning
            };
            if let Some(failure) = verdict.failure() {
                d.problems
                    .push(Problem::for_mx(Severity::Error, &host, failure));
            }
            let delivery = match (&report, verdict.may_use()) {
                (_, false) => MxDelivery::Skip,
                (None, true) => MxDelivery::Unknown,
                (Some(r), true) => match &r.outcome {
                    ProbeOutcome::Incomplete { .. } => MxDelivery::Unreachable,
                    outcome => {
                        if verdict.decide(outcome.failure().cloned()).is_deliver() {
                            MxDelivery::Deliver
                        } else {
                            MxDelivery::TryNext
                        }
                    }
                },
            };
            if let Some(r) = &report {
                match &r.outcome {
                    ProbeOutcome::Fail(failure) => {
                        d.problems.push(Problem::for_mx(severity, &host, failure));
                    }
                    ProbeOutcome::Incomplete { reason } => d.problems.push(Problem {
                        mx: Some(host.clone()),
                        ..Problem::new(severity, ProblemCode::MxUnreachable, reason.clone())
                    }),
                    _ => {}
                }
            }
            d.mx.push(MxCheck {
                preference,
                certificate: report
                    .as_ref()
                    .and_then(|r| r.chain.first())
                    .map(CertificateInfo::of),
                host,
                matches_policy,
                verdict,
                probe: report,
                delivery,
            });
        }

        // R-APPLY-1: under enforce, no deliverable MX means every message is deferred.
        let enforce = d.resolution.mode() == Mode::Enforce;
        d.defer = enforce
            && if options.probe.is_some() {
                !d.mx.iter().any(|m| m.delivery == MxDelivery::Deliver)
            } else {
                plan.defer
            };
        if d.defer {
            d.problems.push(Problem::new(
                Severity::Error,
                ProblemCode::NoUsableMx,
                format!(
                    "no MX host of {domain} passes the enforce policy: senders applying \
                     MTA-STS defer every message"
                ),
            ));
        }
        d
    }
}

/// Problems with the TXT record and the policy.
fn policy_problems(resolution: &Resolution, records: &[Vec<u8>], problems: &mut Vec<Problem>) {
    if let Some(failure) = resolution.failure() {
        let code = match failure.result_type() {
            Some(ResultType::StsPolicyInvalid) => ProblemCode::StsPolicyInvalid,
            Some(ResultType::StsWebpkiInvalid) => ProblemCode::StsWebpkiInvalid,
            _ if matches!(failure, Error::DnsTemporary { .. }) => ProblemCode::DnsTemporary,
            _ if matches!(failure, Error::Cache { .. }) => ProblemCode::CacheUnreadable,
            _ => ProblemCode::StsPolicyFetchError,
        };
        problems.push(Problem {
            result_type: failure.result_type(),
            ..Problem::new(Severity::Error, code, failure.to_string())
        });
    }
    if resolution.source() == Source::NoPolicy {
        match select_record(records) {
            Err(e) => problems.push(Problem::new(
                Severity::Error,
                ProblemCode::InvalidRecord,
                e.to_string(),
            )),
            Ok(_) => problems.push(Problem::new(
                Severity::Warning,
                ProblemCode::NoPolicy,
                "the domain publishes no MTA-STS policy (no STS TXT record)".into(),
            )),
        }
    }
    if let Some(policy) = resolution.policy() {
        match policy.mode() {
            Mode::Testing => problems.push(Problem::new(
                Severity::Warning,
                ProblemCode::TestingMode,
                "the policy is in testing mode: senders report failures but deliver anyway".into(),
            )),
            Mode::None => problems.push(Problem::new(
                Severity::Warning,
                ProblemCode::ModeNone,
                "the policy has mode none: MTA-STS is withdrawn".into(),
            )),
            Mode::Enforce => {}
        }
        for warning in policy.warnings() {
            problems.push(Problem::new(
                Severity::Warning,
                ProblemCode::PolicyWarning,
                warning.clone(),
            ));
        }
    }
}

fn probe_all(
    dns: &dyn DnsResolver,
    verifier: &CertVerifier,
    options: &ProbeOptions,
    hosts: &[(u16, String, Verdict)],
) -> Vec<Option<ProbeReport>> {
    let mut out = Vec::with_capacity(hosts.len());
    for batch in hosts.chunks(MAX_PARALLEL_PROBES) {
        thread::scope(|s| {
            let handles: Vec<_> = batch
                .iter()
                .map(|(_, host, _)| s.spawn(move || probe(host, dns, verifier, options)))
                .collect();
            for handle in handles {
                // A host that is not a host name (Err) or a panicking probe: nothing to show.
                out.push(handle.join().ok().and_then(Result::ok));
            }
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_has_a_fix_and_a_distinct_name() {
        let mut codes: Vec<ProblemCode> = FailureReason::ALL
            .into_iter()
            .map(ProblemCode::Mx)
            .collect();
        codes.extend([
            ProblemCode::StsPolicyInvalid,
            ProblemCode::StsWebpkiInvalid,
            ProblemCode::StsPolicyFetchError,
            ProblemCode::DnsTemporary,
            ProblemCode::InvalidRecord,
            ProblemCode::NoPolicy,
            ProblemCode::TestingMode,
            ProblemCode::ModeNone,
            ProblemCode::PolicyWarning,
            ProblemCode::DomainNotFound,
            ProblemCode::MxLookupFailed,
            ProblemCode::NullMx,
            ProblemCode::MxUnreachable,
            ProblemCode::NoUsableMx,
            ProblemCode::CacheUnreadable,
        ]);
        let mut names = std::collections::HashSet::new();
        for code in codes {
            assert!(!code.fix().is_empty(), "{code}");
            assert!(names.insert(code.as_str()), "{code} twice");
        }
    }
}
