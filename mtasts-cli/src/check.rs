//! `mtasts check DOMAIN`: the domain owner's and postmaster's diagnostic. It only prints:
//! the diagnosis is `mtasts-core`'s (`Resolver::check`), and so is its JSON view
//! (`DiagnosisView`, docs/json.md).
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

use std::io::{self, Write};
use std::ops::ControlFlow;
use std::time::Duration;

use clap::Args;
use mtasts_core::{
    CacheLocation, CertVerifier, CheckOptions, DiagnosisView, ProbeOptions, Resolver,
};

use crate::batch::{Domains, Format, Sink};
use crate::output;
use crate::{EXIT_FAILURE, EXIT_OK, EXIT_USAGE, NetOptions, config};

/// Arguments of `mtasts check`.
#[derive(Args, Debug)]
pub struct CheckArgs {
    #[command(flatten)]
    domains: Domains,
    // `--json` prints one object for one domain, an array for several.
    #[command(flatten)]
    format: Format,
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

/// `mtasts check DOMAIN...`.
pub fn check(net: &NetOptions, args: &CheckArgs) -> u8 {
    let setup = || -> Result<_, String> {
        let mut config = config(net)?;
        // The live state, not a cached one (see the module docs).
        config.cache = CacheLocation::Memory;
        let verifier = CertVerifier::new(&config.trust_roots).map_err(|e| e.to_string())?;
        let resolver = Resolver::new(config).map_err(|e| e.to_string())?;
        let timeout = Duration::try_from_secs_f64(args.probe_timeout)
            .ok()
            .filter(|d| !d.is_zero())
            .ok_or_else(|| {
                format!(
                    "--probe-timeout must be a positive number of seconds, not {}",
                    args.probe_timeout
                )
            })?;
        let mut probe = ProbeOptions::default();
        probe.port = args.port;
        probe.timeout = timeout;
        probe.ehlo_name = args.ehlo_name.clone();
        probe.validate().map_err(|e| format!("--ehlo-name: {e}"))?;
        let mut options = CheckOptions::default();
        options.probe = (!args.no_probe).then_some(probe);
        let (domains, read_error) = args.domains.iter().map_err(|e| e.to_string())?;
        Ok((resolver, verifier, options, domains, read_error))
    };
    let (resolver, verifier, options, domains, read_error) = match setup() {
        Ok(parts) => parts,
        Err(e) => {
            eprintln!("mtasts: {e}");
            return EXIT_USAGE;
        }
    };
    let single = args.domains.from_file.is_none() && args.domains.domains.len() == 1;
    let bar = args.domains.progress();
    let mut code = EXIT_OK;
    let mut reports = Vec::new();
    let mut stdout = io::stdout().lock();
    let mut sink = Sink::default();
    let jobs = usize::from(args.domains.jobs);
    resolver.check_many(domains, jobs, &verifier, &options, |item| {
        bar.inc(1);
        let report = match item.result {
            Ok(diagnosis) => DiagnosisView::new(&diagnosis),
            Err(e) => {
                bar.suspend(|| eprintln!("mtasts: {}: {e}", item.domain));
                code = EXIT_USAGE;
                return ControlFlow::Continue(());
            }
        };
        if !report.ok {
            code = code.max(EXIT_FAILURE);
        }
        sink.record(bar.suspend(|| {
            if args.format.json_lines {
                output::json_line(&mut stdout, &report)
            } else if args.format.json {
                reports.push(report);
                Ok(())
            } else {
                // Each report as it comes, a blank line between two.
                let gap = if item.index > 0 { "\n" } else { "" };
                write!(stdout, "{gap}").and_then(|()| print_check(&mut stdout, &report))
            }
        }))
    });
    bar.finish_and_clear();
    let flushed = stdout.flush();
    drop(stdout);
    sink.finish(&read_error, code, || {
        if args.format.json {
            output::to_stdout(|out| match (single, reports.first()) {
                (true, Some(report)) => output::json(out, report),
                _ => output::json(out, &reports),
            })
        } else {
            output::to_stdout(|_| flushed)
        }
    })
}

fn print_check(out: &mut dyn Write, r: &DiagnosisView) -> io::Result<()> {
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
    let errors = r.problems.iter().filter(|p| p.severity == "error").count();
    let warnings = r.problems.len() - errors;
    if r.problems.is_empty() {
        writeln!(out, "No problems found.")?;
        return Ok(());
    }
    writeln!(out, "Problems: {errors} error(s), {warnings} warning(s)")?;
    for p in &r.problems {
        let severity = p.severity;
        let what = match &p.mx {
            Some(mx) => format!("{mx}: {}", p.code),
            None => p.code.to_owned(),
        };
        writeln!(out, "  {severity:<7}  {what}: {}", p.message)?;
        writeln!(out, "           fix: {}", p.fix)?;
    }
    Ok(())
}
