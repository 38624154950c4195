//! `mtasts check DOMAIN`: the domain owner's and postmaster's diagnostic, and
//! `mtasts verify-cert`: the certificate check of a chain in a file.
//!
//! Both only gather and print; the decisions are `mtasts-core`'s (`Resolver`, `MxPlan`,
//! `Verdict`, `probe`, `CertVerifier`). x509-parser is used to *display* certificates only.
//!
//! `mtasts check` uses a fresh in-memory cache (never the shared one): it shows the live state
//! of the domain, not what a cache remembers.
//!
//! # `mtasts check --json` schema
//!
//! One object:
//!
//! | key | value |
//! |---|---|
//! | `domain` | the domain, normalised (lowercase A-labels) |
//! | `txt` | `{"name": "_mta-sts.<domain>", "records": [string], "error": string or null}`: every TXT record there (character-strings joined), or the DNS error |
//! | `policy` | the policy in effect, or null: `{"url", "source" ("fetched", …), "id", "mode" ("enforce", "testing", "none"), "max_age", "mx": [pattern], "text" (raw), "warnings": [string]}` |
//! | `policy_failure` | what went wrong obtaining the policy, or null: `{"kind", "result_type" (RFC 8460, or null), "reason"}` |
//! | `notice` | the resolver's notice (e.g. why the TXT record is invalid), or null |
//! | `mx_lookup` | `{"implicit": bool (no MX records: the domain itself is the MX host, RFC 8461 R-MX-3), "error": string or null}` |
//! | `mx` | one object per MX host, in preference order, see below |
//! | `defer` | true when the policy is `enforce` and no MX host can receive mail: senders defer every message |
//! | `problems` | `[{"severity" ("error" or "warning"), "mx" (host or null), "code", "result_type" (RFC 8460 or null), "message", "fix"}]` |
//! | `ok` | true when there is no problem of severity `error` (exit status 0) |
//!
//! Each `mx` entry: `{"preference", "host", "matches_policy" (bool, or null without policy
//! patterns), "verdict" ("no-requirement", "testing", "require-tls", "skip"), "verdict_detail",
//! "probe", "certificate", "delivery"}` where
//! - `probe` is null with `--no-probe`, else `{"outcome" ("pass", "fail", "incomplete"),
//!   "result_type", "reason_code", "detail", "address", "connect_errors", "banner" ([line]),
//!   "starttls_offered", "tls_version", "cipher_suite", "chain_length", "timings_ms":
//!   {"connected", "banner", "starttls", "handshake", "total"}}`;
//! - `certificate` is the leaf the MX presented, or null: `{"subject", "issuer", "sans":
//!   ["DNS:name" or "IP:addr" ...], "not_before", "not_after" (RFC 3339), "error"}` (`error`:
//!   why it could not be displayed);
//! - `delivery`: what a sender applying the policy does with this MX: `deliver`, `try-next`
//!   (connected, but TLS or the certificate failed: a temporary failure), `skip` (not even
//!   tried: outside the policy), `unreachable` (the probe did not get to STARTTLS) or `unknown`
//!   (`--no-probe`).
//!
//! Problem codes: the MX reason codes of `mtasts-core` (`mx-mismatch`, `starttls-not-offered`,
//! `certificate-expired`, `certificate-not-trusted`, `certificate-host-mismatch`,
//! `certificate-no-san`, `tls-version-unsupported`, …), the RFC 8460 policy result types
//! (`sts-policy-fetch-error`, `sts-policy-invalid`, `sts-webpki-invalid`), and `invalid-record`,
//! `dns-temporary`, `no-policy`, `testing-mode`, `mode-none`, `policy-warning`,
//! `domain-not-found`, `mx-lookup-failed`, `null-mx`, `mx-unreachable`, `no-usable-mx`.
//!
//! Exit status: 0 no problem of severity `error`, 1 problems found, 2 usage error.
//!
//! # `mtasts verify-cert --json`
//!
//! `{"mx", "at" (RFC 3339), "result" ("pass" or "fail"), "result_type", "reason_code",
//! "detail"}`. Exit status: 0 pass, 1 fail, 2 usage (unreadable file, no certificate in it,
//! bad `--mx` or `--at`).

use std::fs;
use std::io::{self, Read, Write};
use std::path::PathBuf;
use std::thread;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::Args;
use mtasts_core::{
    CacheLocation, CertCheck, CertVerifier, CertificateDer, DnsAnswer, Domain, FailureReason, Mode,
    MxFailure, MxPlan, MxRecord, ProbeOptions, ProbeOutcome, ProbeReport, Resolution, Resolver,
    Source, Verdict, probe, select_record,
};
use serde::Serialize;
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};

use crate::output::{self, rfc3339};
use crate::{EXIT_FAILURE, EXIT_OK, EXIT_USAGE, NetOptions, config};

/// Most MX hosts probed at once.
const MAX_PARALLEL_PROBES: usize = 16;

/// Arguments of `mtasts check`.
#[derive(Args, Debug)]
pub struct CheckArgs {
    /// The recipient domain to check (ASCII or internationalised).
    #[arg(value_name = "DOMAIN")]
    domain: String,
    /// Print JSON instead of a table (schema: see the README).
    #[arg(long)]
    json: bool,
    /// The SMTP port of the MX hosts.
    #[arg(long, value_name = "PORT", default_value_t = mtasts_core::SMTP_PORT)]
    port: u16,
    /// Deadline of each MX probe (connection, SMTP, STARTTLS, TLS, QUIT), in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 30.0)]
    probe_timeout: f64,
    /// The name to send with EHLO.
    #[arg(long, value_name = "NAME", default_value = "localhost")]
    ehlo_name: String,
    /// Do not connect to the MX hosts: DNS, policy and MX patterns only.
    #[arg(long)]
    no_probe: bool,
}

/// Arguments of `mtasts verify-cert`.
#[derive(Args, Debug)]
pub struct VerifyCertArgs {
    /// The MX host name the certificate must be valid for.
    #[arg(long, value_name = "HOST")]
    mx: String,
    /// Check validity at this time (RFC 3339, e.g. 2030-01-01T00:00:00Z, or Unix seconds)
    /// instead of now.
    #[arg(long, value_name = "TIME")]
    at: Option<String>,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
    /// The chain, leaf first: PEM (CERTIFICATE blocks) or concatenated DER; `-` for stdin.
    #[arg(value_name = "CHAIN")]
    chain: PathBuf,
}

// ------------------------------------------------------------------------- mtasts check

/// `mtasts check DOMAIN`.
pub fn check(net: &NetOptions, args: &CheckArgs) -> u8 {
    let setup = || -> Result<_, String> {
        let mut config = config(net)?;
        // The live state, not a cached one (see the module docs).
        config.cache = CacheLocation::Memory;
        let verifier = CertVerifier::new(&config.trust_roots).map_err(|e| e.to_string())?;
        let resolver = Resolver::new(config).map_err(|e| e.to_string())?;
        let domain = Domain::new(&args.domain).map_err(|e| e.to_string())?;
        let timeout = Duration::try_from_secs_f64(args.probe_timeout)
            .ok()
            .filter(|d| !d.is_zero())
            .ok_or_else(|| {
                format!(
                    "--probe-timeout must be a positive number of seconds, not {}",
                    args.probe_timeout
                )
            })?;
        let mut options = ProbeOptions::default();
        options.port = args.port;
        options.timeout = timeout;
        options.ehlo_name = args.ehlo_name.clone();
        options
            .validate()
            .map_err(|e| format!("--ehlo-name: {e}"))?;
        Ok((resolver, verifier, domain, options))
    };
    let (resolver, verifier, domain, options) = match setup() {
        Ok(parts) => parts,
        Err(e) => {
            eprintln!("mtasts: {e}");
            return EXIT_USAGE;
        }
    };
    let report = match run_check(&resolver, &verifier, &domain, &options, !args.no_probe) {
        Ok(report) => report,
        Err(e) => {
            eprintln!("mtasts: {e}");
            return EXIT_USAGE;
        }
    };
    let written = output::to_stdout(|out| {
        if args.json {
            output::json(out, &report)
        } else {
            print_check(out, &report)
        }
    });
    if !written || !report.ok {
        EXIT_FAILURE
    } else {
        EXIT_OK
    }
}

#[derive(Serialize, Debug)]
struct CheckReport {
    domain: String,
    txt: TxtReport,
    policy: Option<PolicyView>,
    policy_failure: Option<PolicyFailure>,
    notice: Option<String>,
    mx_lookup: MxLookup,
    mx: Vec<MxReport>,
    defer: bool,
    problems: Vec<Problem>,
    ok: bool,
}

#[derive(Serialize, Debug)]
struct TxtReport {
    name: String,
    records: Vec<String>,
    error: Option<String>,
}

#[derive(Serialize, Debug)]
struct PolicyView {
    url: String,
    source: &'static str,
    id: String,
    mode: &'static str,
    max_age: u32,
    mx: Vec<String>,
    text: String,
    warnings: Vec<String>,
}

#[derive(Serialize, Debug)]
struct PolicyFailure {
    kind: &'static str,
    result_type: Option<&'static str>,
    reason: String,
}

#[derive(Serialize, Debug)]
struct MxLookup {
    implicit: bool,
    error: Option<String>,
}

#[derive(Serialize, Debug)]
struct MxReport {
    preference: u16,
    host: String,
    matches_policy: Option<bool>,
    verdict: &'static str,
    verdict_detail: String,
    probe: Option<ProbeView>,
    certificate: Option<CertView>,
    delivery: &'static str,
}

#[derive(Serialize, Debug)]
struct ProbeView {
    outcome: &'static str,
    result_type: Option<&'static str>,
    reason_code: Option<&'static str>,
    detail: Option<String>,
    address: Option<String>,
    connect_errors: Vec<String>,
    banner: Vec<String>,
    starttls_offered: bool,
    tls_version: Option<String>,
    cipher_suite: Option<String>,
    chain_length: usize,
    timings_ms: TimingsView,
}

#[derive(Serialize, Debug)]
struct TimingsView {
    connected: Option<f64>,
    banner: Option<f64>,
    starttls: Option<f64>,
    handshake: Option<f64>,
    total: f64,
}

#[derive(Serialize, Debug)]
struct CertView {
    subject: String,
    issuer: String,
    sans: Vec<String>,
    not_before: Option<String>,
    not_after: Option<String>,
    error: Option<String>,
}

#[derive(Serialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum Severity {
    Error,
    Warning,
}

#[derive(Serialize, Debug)]
struct Problem {
    severity: Severity,
    mx: Option<String>,
    code: String,
    result_type: Option<&'static str>,
    message: String,
    fix: String,
}

impl Problem {
    fn new(severity: Severity, code: &str, message: String, fix: &str) -> Problem {
        Problem {
            severity,
            mx: None,
            code: code.to_owned(),
            result_type: None,
            message,
            fix: fix.to_owned(),
        }
    }

    fn for_mx(severity: Severity, host: &str, failure: &MxFailure) -> Problem {
        Problem {
            severity,
            mx: Some(host.to_owned()),
            code: failure.reason_code().to_owned(),
            result_type: Some(failure.result_type().as_str()),
            message: failure.detail().to_owned(),
            fix: fix_for(failure.reason()).to_owned(),
        }
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

fn run_check(
    resolver: &Resolver,
    verifier: &CertVerifier,
    domain: &Domain,
    options: &ProbeOptions,
    probe_mx: bool,
) -> Result<CheckReport, String> {
    let mut problems = Vec::new();
    let dns = resolver.dns();

    // The TXT record, as published.
    let txt_name = domain.txt_name();
    let (records, txt_error) = match dns.txt(&txt_name) {
        Ok(answer) => (answer.records().unwrap_or_default(), None),
        Err(e) => (Vec::new(), Some(e.to_string())),
    };
    let txt = TxtReport {
        name: txt_name,
        records: records
            .iter()
            .map(|r| String::from_utf8_lossy(r).into_owned())
            .collect(),
        error: txt_error,
    };

    // The policy, resolved as a sender would (fresh cache).
    let resolution = resolver.resolve_domain(domain);
    policy_problems(&resolution, &records, &mut problems);
    let policy = resolution.cached_policy().map(|c| PolicyView {
        url: domain.policy_url(),
        source: resolution.source().as_str(),
        id: c.id.clone(),
        mode: c.policy.mode().as_str(),
        max_age: c.policy.max_age(),
        mx: c.policy.mx().iter().map(ToString::to_string).collect(),
        text: c.policy.text().to_owned(),
        warnings: c.policy.warnings().to_vec(),
    });

    // The MX records (R-MX-3: none means the domain itself).
    let mut mx_lookup = MxLookup {
        implicit: false,
        error: None,
    };
    let mx_records: Vec<MxRecord> = match dns.mx(domain.as_str()) {
        Ok(DnsAnswer::Found { records, .. }) => records,
        Ok(DnsAnswer::NoData { .. }) => Vec::new(),
        Ok(DnsAnswer::NxDomain { .. }) => {
            mx_lookup.error = Some("the domain does not exist (NXDOMAIN)".into());
            problems.push(Problem::new(
                Severity::Error,
                "domain-not-found",
                format!("{domain} does not exist in DNS"),
                "check the domain name",
            ));
            return Ok(finish(
                domain,
                txt,
                policy,
                &resolution,
                mx_lookup,
                Vec::new(),
                false,
                problems,
            ));
        }
        Err(e) => {
            mx_lookup.error = Some(e.to_string());
            problems.push(Problem::new(
                Severity::Error,
                "mx-lookup-failed",
                e.to_string(),
                "check the domain's name servers",
            ));
            return Ok(finish(
                domain,
                txt,
                policy,
                &resolution,
                mx_lookup,
                Vec::new(),
                false,
                problems,
            ));
        }
    };
    let null_mx = mx_records.len() == 1 && mx_records[0].exchange.is_empty();
    if null_mx {
        problems.push(Problem::new(
            Severity::Warning,
            "null-mx",
            format!("{domain} publishes a null MX (RFC 7505): it accepts no mail"),
            "remove the null MX record if the domain should receive mail",
        ));
    }
    let plan = match MxPlan::for_resolution(&resolution, &mx_records) {
        Ok(plan) => plan,
        Err(e) => {
            // Never fail open: with the shared cache unreadable, mail is deferred.
            problems.push(Problem::new(
                Severity::Error,
                "cache-unreadable",
                e.to_string(),
                "make the policy cache readable (permissions, a damaged file, Redis down)",
            ));
            return Ok(finish(
                domain,
                txt,
                policy,
                &resolution,
                mx_lookup,
                Vec::new(),
                true,
                problems,
            ));
        }
    };
    mx_lookup.implicit = plan.implicit_mx;

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

    // Probe them, several at a time.
    let reports: Vec<Option<ProbeReport>> = if probe_mx && !null_mx {
        probe_all(dns.as_ref(), verifier, options, &hosts)
    } else {
        hosts.iter().map(|_| None).collect()
    };

    let policy_ref = resolution.policy();
    let mut mx = Vec::with_capacity(hosts.len());
    for ((preference, host, verdict), report) in hosts.into_iter().zip(reports) {
        let matches_policy = policy_ref
            .filter(|p| !p.mx().is_empty())
            .map(|p| p.matches(&host));
        // Failures count as errors where a sender would act on or report them.
        let severity = if verdict.reports_failures() {
            Severity::Error
        } else {
            Severity::Warning
        };
        if let Some(failure) = verdict.failure() {
            problems.push(Problem::for_mx(Severity::Error, &host, failure));
        }
        let delivery = match (&report, verdict.may_use()) {
            (_, false) => "skip",
            (None, true) => "unknown",
            (Some(r), true) => match &r.outcome {
                ProbeOutcome::Incomplete { .. } => "unreachable",
                outcome => {
                    if verdict.decide(outcome.failure().cloned()).is_deliver() {
                        "deliver"
                    } else {
                        "try-next"
                    }
                }
            },
        };
        if let Some(r) = &report {
            match &r.outcome {
                ProbeOutcome::Fail(failure) => {
                    problems.push(Problem::for_mx(severity, &host, failure));
                }
                ProbeOutcome::Incomplete { reason } => problems.push(Problem {
                    mx: Some(host.clone()),
                    ..Problem::new(
                        severity,
                        "mx-unreachable",
                        reason.clone(),
                        "check that the MX host resolves, accepts connections on the SMTP port \
                         and answers with a 220 banner",
                    )
                }),
                _ => {}
            }
        }
        mx.push(MxReport {
            preference,
            host,
            matches_policy,
            verdict: verdict.as_str(),
            verdict_detail: verdict.to_string(),
            certificate: report
                .as_ref()
                .and_then(|r| r.chain.first())
                .map(describe_certificate),
            probe: report.as_ref().map(probe_view),
            delivery,
        });
    }

    // R-APPLY-1: under enforce, no deliverable MX means every message is deferred.
    let enforce = resolution.mode() == Mode::Enforce;
    let defer = enforce
        && if probe_mx {
            !mx.iter().any(|m| m.delivery == "deliver")
        } else {
            plan.defer
        };
    if defer {
        problems.push(Problem::new(
            Severity::Error,
            "no-usable-mx",
            format!(
                "no MX host of {domain} passes the enforce policy: senders applying MTA-STS \
                 defer every message"
            ),
            "fix the MX problems above, or set the policy to `mode: testing` while you do",
        ));
    }
    Ok(finish(
        domain,
        txt,
        policy,
        &resolution,
        mx_lookup,
        mx,
        defer,
        problems,
    ))
}

#[allow(clippy::too_many_arguments)]
fn finish(
    domain: &Domain,
    txt: TxtReport,
    policy: Option<PolicyView>,
    resolution: &Resolution,
    mx_lookup: MxLookup,
    mx: Vec<MxReport>,
    defer: bool,
    problems: Vec<Problem>,
) -> CheckReport {
    let ok = !problems.iter().any(|p| p.severity == Severity::Error);
    CheckReport {
        domain: domain.to_string(),
        txt,
        policy,
        policy_failure: resolution.failure().map(|e| PolicyFailure {
            kind: e.kind(),
            result_type: e.result_type().map(|t| t.as_str()),
            reason: e.to_string(),
        }),
        notice: resolution.notice().map(str::to_owned),
        mx_lookup,
        mx,
        defer,
        problems,
        ok,
    }
}

/// Problems with the TXT record and the policy.
fn policy_problems(resolution: &Resolution, records: &[Vec<u8>], problems: &mut Vec<Problem>) {
    if let Some(failure) = resolution.failure() {
        let (code, fix) = match failure.result_type() {
            Some(mtasts_core::ResultType::StsPolicyInvalid) => (
                "sts-policy-invalid",
                "fix the policy file (RFC 8461 §3.2: version, mode, mx lines, max_age) and \
                 serve it as text/plain",
            ),
            Some(mtasts_core::ResultType::StsWebpkiInvalid) => (
                "sts-webpki-invalid",
                "give the policy host mta-sts.<domain> a valid certificate from a publicly \
                 trusted CA naming it in its subjectAltName",
            ),
            _ if failure.kind() == "dns-temporary" => (
                "dns-temporary",
                "check that the domain's name servers answer for _mta-sts.<domain>",
            ),
            _ => (
                "sts-policy-fetch-error",
                "serve the policy at https://mta-sts.<domain>/.well-known/mta-sts.txt with \
                 status 200, without redirects",
            ),
        };
        problems.push(Problem {
            result_type: failure.result_type().map(|t| t.as_str()),
            ..Problem::new(Severity::Error, code, failure.to_string(), fix)
        });
    }
    if resolution.source() == Source::NoPolicy {
        match select_record(records) {
            Err(e) => problems.push(Problem::new(
                Severity::Error,
                "invalid-record",
                e.to_string(),
                "publish exactly one TXT record `v=STSv1; id=<1-32 letters or digits>;` at \
                 _mta-sts.<domain>",
            )),
            Ok(_) => problems.push(Problem::new(
                Severity::Warning,
                "no-policy",
                "the domain publishes no MTA-STS policy (no STS TXT record)".into(),
                "publish a policy and a TXT record `v=STSv1; id=...;` at _mta-sts.<domain> to \
                 protect inbound mail",
            )),
        }
    }
    if let Some(policy) = resolution.policy() {
        match policy.mode() {
            Mode::Testing => problems.push(Problem::new(
                Severity::Warning,
                "testing-mode",
                "the policy is in testing mode: senders report failures but deliver anyway".into(),
                "switch to `mode: enforce` once the TLS reports are clean",
            )),
            Mode::None => problems.push(Problem::new(
                Severity::Warning,
                "mode-none",
                "the policy has mode none: MTA-STS is withdrawn".into(),
                "publish `mode: testing` or `mode: enforce` to protect inbound mail",
            )),
            Mode::Enforce => {}
        }
        for warning in policy.warnings() {
            problems.push(Problem::new(
                Severity::Warning,
                "policy-warning",
                warning.clone(),
                "tidy up the policy file (RFC 8461 §3.2)",
            ));
        }
    }
}

fn probe_all(
    dns: &dyn mtasts_core::DnsResolver,
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

fn millis(d: Duration) -> f64 {
    (d.as_secs_f64() * 1000.0 * 1000.0).round() / 1000.0
}

fn probe_view(r: &ProbeReport) -> ProbeView {
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

/// Subject, issuer, SANs and validity of a certificate, for display only.
fn describe_certificate(der: &CertificateDer<'_>) -> CertView {
    match X509Certificate::from_der(der.as_ref()) {
        Ok((_, cert)) => {
            let sans = match cert.subject_alternative_name() {
                Ok(Some(ext)) => ext
                    .value
                    .general_names
                    .iter()
                    .map(|name| match name {
                        GeneralName::DNSName(n) => format!("DNS:{n}"),
                        GeneralName::IPAddress(ip) => match ip.len() {
                            4 => format!(
                                "IP:{}",
                                std::net::Ipv4Addr::new(ip[0], ip[1], ip[2], ip[3])
                            ),
                            16 => {
                                let mut b = [0u8; 16];
                                b.copy_from_slice(ip);
                                format!("IP:{}", std::net::Ipv6Addr::from(b))
                            }
                            _ => format!("{name}"),
                        },
                        other => other.to_string(),
                    })
                    .collect(),
                _ => Vec::new(),
            };
            let time = |secs: i64| {
                u64::try_from(secs)
                    .ok()
                    .map(|s| rfc3339(UNIX_EPOCH + Duration::from_secs(s)))
            };
            CertView {
                subject: cert.subject().to_string(),
                issuer: cert.issuer().to_string(),
                sans,
                not_before: time(cert.validity().not_before.timestamp()),
                not_after: time(cert.validity().not_after.timestamp()),
                error: None,
            }
        }
        Err(e) => CertView {
            subject: String::new(),
            issuer: String::new(),
            sans: Vec::new(),
            not_before: None,
            not_after: None,
            error: Some(format!("cannot display the certificate: {e}")),
        },
    }
}

fn print_check(out: &mut dyn Write, r: &CheckReport) -> io::Result<()> {
    writeln!(out, "Domain: {}", r.domain)?;
    writeln!(out)?;
    writeln!(out, "TXT {}", r.txt.name)?;
    if let Some(e) = &r.txt.error {
        writeln!(out, "  lookup failed: {e}")?;
    } else if r.txt.records.is_empty() {
        writeln!(out, "  (none)")?;
    }
    for record in &r.txt.records {
        writeln!(out, "  {record}")?;
    }
    writeln!(out)?;
    match &r.policy {
        Some(p) => {
            writeln!(
                out,
                "Policy: {} ({}, id {}, max_age {})",
                p.mode, p.source, p.id, p.max_age
            )?;
            writeln!(out, "  {}", p.url)?;
            if !p.mx.is_empty() {
                writeln!(out, "  mx: {}", p.mx.join(", "))?;
            }
            for line in p.text.lines() {
                writeln!(out, "  | {line}")?;
            }
        }
        None => writeln!(out, "Policy: none")?,
    }
    if let Some(f) = &r.policy_failure {
        writeln!(out, "  failure: {}", f.reason)?;
    }
    if let Some(n) = &r.notice {
        writeln!(out, "  notice: {n}")?;
    }
    writeln!(out)?;
    let implicit = if r.mx_lookup.implicit {
        " (no MX records: the domain itself)"
    } else {
        ""
    };
    writeln!(out, "MX hosts{implicit}")?;
    if let Some(e) = &r.mx_lookup.error {
        writeln!(out, "  lookup failed: {e}")?;
    }
    if !r.mx.is_empty() {
        let rows: Vec<[String; 7]> =
            r.mx.iter()
                .map(|m| {
                    let probe = m.probe.as_ref();
                    [
                        m.preference.to_string(),
                        m.host.clone(),
                        match m.matches_policy {
                            Some(true) => "match".into(),
                            Some(false) => "NO MATCH".into(),
                            None => "-".into(),
                        },
                        probe.map_or("-".into(), |p| match p.reason_code {
                            Some(code) => format!("fail: {code}"),
                            None => p.outcome.to_owned(),
                        }),
                        probe
                            .and_then(|p| p.tls_version.clone())
                            .unwrap_or_else(|| "-".into()),
                        m.certificate
                            .as_ref()
                            .and_then(|c| c.not_after.as_deref())
                            .map_or("-".into(), |t| format!("until {}", &t[..10.min(t.len())])),
                        m.delivery.to_owned(),
                    ]
                })
                .collect();
        let header = [
            "PREF",
            "HOST",
            "POLICY",
            "PROBE",
            "TLS",
            "CERTIFICATE",
            "DELIVERY",
        ];
        output::table(out, header, &rows, |out, i| {
            let m = &r.mx[i];
            if let Some(c) = &m.certificate {
                match &c.error {
                    Some(e) => writeln!(out, "      certificate: {e}")?,
                    None => {
                        let sans = if c.sans.is_empty() {
                            "none".into()
                        } else {
                            c.sans.join(", ")
                        };
                        writeln!(out, "      subject: {}", c.subject)?;
                        writeln!(out, "      SAN:     {sans}")?;
                        writeln!(out, "      issuer:  {}", c.issuer)?;
                        writeln!(
                            out,
                            "      valid:   {} to {}",
                            c.not_before.as_deref().unwrap_or("?"),
                            c.not_after.as_deref().unwrap_or("?")
                        )?;
                    }
                }
            }
            if let Some(p) = &m.probe {
                if let Some(detail) = &p.detail {
                    writeln!(out, "      probe:   {detail}")?;
                }
                if let Some(addr) = &p.address {
                    let cipher = p.cipher_suite.as_deref().unwrap_or("-");
                    writeln!(
                        out,
                        "      via {addr} in {:.1} ms, STARTTLS {}, {cipher}",
                        p.timings_ms.total,
                        if p.starttls_offered {
                            "offered"
                        } else {
                            "not offered"
                        }
                    )?;
                }
            }
            Ok(())
        })?;
    }
    writeln!(out)?;
    let errors = r
        .problems
        .iter()
        .filter(|p| p.severity == Severity::Error)
        .count();
    let warnings = r.problems.len() - errors;
    if r.problems.is_empty() {
        writeln!(out, "No problems found.")?;
        return Ok(());
    }
    writeln!(out, "Problems: {errors} error(s), {warnings} warning(s)")?;
    for p in &r.problems {
        let severity = match p.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        let what = match &p.mx {
            Some(mx) => format!("{mx}: {}", p.code),
            None => p.code.clone(),
        };
        writeln!(out, "  {severity:<7}  {what}: {}", p.message)?;
        writeln!(out, "           fix: {}", p.fix)?;
    }
    Ok(())
}

// ------------------------------------------------------------------------- verify-cert

#[derive(Serialize, Debug)]
struct VerifyReport {
    mx: String,
    at: String,
    result: &'static str,
    result_type: Option<&'static str>,
    reason_code: Option<&'static str>,
    detail: Option<String>,
}

/// `mtasts verify-cert --mx HOST [--at TIME] CHAIN`.
pub fn verify_cert(net: &NetOptions, args: &VerifyCertArgs) -> u8 {
    let setup = || -> Result<_, String> {
        let roots = config(net)?.trust_roots;
        let verifier = CertVerifier::new(&roots).map_err(|e| e.to_string())?;
        let at = match &args.at {
            Some(t) => parse_time(t).map_err(|e| format!("--at: {e}"))?,
            None => SystemTime::now(),
        };
        let mut input = Vec::new();
        if args.chain.as_os_str() == "-" {
            io::stdin()
                .read_to_end(&mut input)
                .map_err(|e| format!("reading stdin: {e}"))?;
        } else {
            input = fs::read(&args.chain).map_err(|e| format!("{}: {e}", args.chain.display()))?;
        }
        let check = verifier
            .check_encoded(&input, &args.mx, at)
            .map_err(|e| e.to_string())?;
        Ok((check, at))
    };
    let (check, at) = match setup() {
        Ok(done) => done,
        Err(e) => {
            eprintln!("mtasts: {e}");
            return EXIT_USAGE;
        }
    };
    let failure = check.failure();
    let report = VerifyReport {
        mx: args.mx.clone(),
        at: rfc3339(at),
        result: if check.is_valid() { "pass" } else { "fail" },
        result_type: failure.map(|f| f.result_type().as_str()),
        reason_code: failure.map(MxFailure::reason_code),
        detail: failure.map(|f| f.detail().to_owned()),
    };
    let written = output::to_stdout(|out| {
        if args.json {
            return output::json(out, &report);
        }
        match failure {
            None => writeln!(out, "pass: the chain is valid for {}", args.mx),
            Some(f) => writeln!(out, "fail: {f}"),
        }
    });
    match (written, check) {
        (true, CertCheck::Valid) => EXIT_OK,
        _ => EXIT_FAILURE,
    }
}

/// Unix seconds, or an RFC 3339 date-time (`2030-01-01T00:00:00Z`, `…+02:00`, fractions
/// ignored), or a bare date (midnight UTC).
fn parse_time(s: &str) -> Result<SystemTime, String> {
    let bad =
        || format!("{s:?} is neither Unix seconds nor an RFC 3339 time (2030-01-01T00:00:00Z)");
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        let secs: u64 = s.parse().map_err(|_| bad())?;
        return Ok(UNIX_EPOCH + Duration::from_secs(secs));
    }
    let num = |part: &str| -> Result<i64, String> {
        if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        part.parse().map_err(|_| bad())
    };
    let (date, time) = match s.find(['T', 't', ' ']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let d: Vec<&str> = date.split('-').collect();
    let [y, m, d] = d.as_slice() else {
        return Err(bad());
    };
    let (year, month, day) = (num(y)?, num(m)?, num(d)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || y.len() != 4 {
        return Err(bad());
    }
    let mut secs = days_from_civil(year, month, day) * 86_400;
    if let Some(time) = time {
        let (clock, offset) = if let Some(rest) = time.strip_suffix(['Z', 'z']) {
            (rest, 0)
        } else if let Some(i) = time.rfind(['+', '-']) {
            let (sign, zone) = (if &time[i..=i] == "-" { -1 } else { 1 }, &time[i + 1..]);
            let Some((h, m)) = zone.split_once(':') else {
                return Err(bad());
            };
            (&time[..i], sign * (num(h)? * 3600 + num(m)? * 60))
        } else {
            return Err(bad());
        };
        let clock = clock.split('.').next().unwrap_or_default();
        let parts: Vec<&str> = clock.split(':').collect();
        let [h, mi, se] = parts.as_slice() else {
            return Err(bad());
        };
        let (h, mi, se) = (num(h)?, num(mi)?, num(se)?);
        if h > 23 || mi > 59 || se > 60 {
            return Err(bad());
        }
        secs += h * 3600 + mi * 60 + se - offset;
    }
    let secs = u64::try_from(secs).map_err(|_| format!("{s:?} is before 1970"))?;
    Ok(UNIX_EPOCH + Duration::from_secs(secs))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times() {
        let secs = |s: &str| parse_time(s).map(|t| t.duration_since(UNIX_EPOCH).unwrap().as_secs());
        assert_eq!(secs("0"), Ok(0));
        assert_eq!(secs("1700000000"), Ok(1_700_000_000));
        assert_eq!(secs("2023-11-14T22:13:20Z"), Ok(1_700_000_000));
        assert_eq!(secs("2023-11-14T22:13:20.999Z"), Ok(1_700_000_000));
        assert_eq!(secs("2023-11-15T00:13:20+02:00"), Ok(1_700_000_000));
        assert_eq!(secs("2023-11-14T21:13:20-01:00"), Ok(1_700_000_000));
        assert_eq!(secs("2000-02-29"), Ok(951_782_400));
        assert_eq!(secs("2100-01-01T00:00:00Z"), Ok(4_102_444_800));
        for bad in [
            "",
            "yesterday",
            "2023-13-01",
            "2023-11-14T25:00:00Z",
            "2023-11-14T22:13:20",
            "1969-12-31T23:59:59Z",
            "-5",
            "2023-11-14T22:13Z",
        ] {
            assert!(parse_time(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn every_reason_has_a_fix() {
        for reason in FailureReason::ALL {
            assert!(!fix_for(reason).is_empty());
        }
    }
}
