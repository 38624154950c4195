//! `mtasts`: look up MTA-STS policies from the command line.
//!
//! Argument parsing and printing only; every decision is made by `mtasts-core`.

use std::io::{self, Write};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::{Args, Parser, Subcommand};
use mtasts_core::{Config, Error, Resolution, Resolver, TrustRoots};
use serde::Serialize;

mod logger;

/// Exit status when every domain resolved without a failure (a policy or none published).
const EXIT_OK: u8 = 0;
/// Exit status when a lookup met a failure (DNS, fetch, invalid policy, ...).
const EXIT_FAILURE: u8 = 1;
/// Exit status for usage errors: bad arguments, invalid domain names, unusable configuration.
const EXIT_USAGE: u8 = 2;

#[derive(Parser, Debug)]
#[command(
    name = "mtasts",
    version,
    about = "Look up and check MTA-STS (RFC 8461) policies",
    after_help = "Exit status: 0 policy found or none published, 1 a failure occurred, 2 usage error."
)]
struct Cli {
    #[command(flatten)]
    net: NetOptions,
    /// More log output on stderr (-v: info, -vv: debug).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    /// No log output on stderr.
    #[arg(short, long, global = true)]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Args, Debug)]
struct NetOptions {
    /// DNS server to query, as IP:PORT (repeatable). Default: the system's resolv.conf.
    #[arg(long = "nameserver", value_name = "IP:PORT", global = true)]
    nameservers: Vec<SocketAddr>,
    /// Trust roots for policy hosts: `system`, `bundled` (Mozilla's, compiled in) or a PEM file.
    #[arg(
        long,
        value_name = "system|bundled|FILE",
        default_value = "system",
        global = true
    )]
    trust_roots: String,
    /// Deadline of one policy fetch, in seconds (RFC 8461 §3.3).
    #[arg(long, value_name = "SECONDS", default_value_t = 30.0, global = true)]
    timeout: f64,
    /// Deadline of one DNS lookup, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 10.0, global = true)]
    dns_timeout: f64,
    /// For test setups only: fetch policies from this port instead of 443.
    #[arg(long, value_name = "PORT", global = true)]
    policy_port: Option<u16>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Resolve the MTA-STS policy of each DOMAIN: mode, MX patterns, max_age, id, source and
    /// any failure.
    Lookup {
        /// Recipient domains (ASCII or internationalised).
        #[arg(required = true, value_name = "DOMAIN")]
        domains: Vec<String>,
        /// Print JSON (one array, one object per domain) instead of a table.
        #[arg(long)]
        json: bool,
    },
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { EXIT_USAGE } else { EXIT_OK });
        }
    };
    logger::init(if cli.quiet { 0 } else { 1 + cli.verbose });
    let code = match cli.command {
        Command::Lookup { ref domains, json } => lookup(&cli.net, domains, json),
    };
    ExitCode::from(code)
}

fn config(net: &NetOptions) -> Result<Config, String> {
    let seconds = |name: &str, v: f64| {
        Duration::try_from_secs_f64(v)
            .ok()
            .filter(|d| !d.is_zero())
            .ok_or_else(|| format!("--{name} must be a positive number of seconds, not {v}"))
    };
    let mut config = Config::default();
    config.nameservers = net.nameservers.clone();
    config.trust_roots = TrustRoots::from_setting(&net.trust_roots);
    config.fetch_timeout = seconds("timeout", net.timeout)?;
    config.dns_timeout = seconds("dns-timeout", net.dns_timeout)?;
    config.policy_port = net.policy_port;
    Ok(config)
}

fn lookup(net: &NetOptions, domains: &[String], json: bool) -> u8 {
    let resolver = match config(net).and_then(|c| Resolver::new(c).map_err(|e| e.to_string())) {
        Ok(resolver) => resolver,
        Err(e) => {
            eprintln!("mtasts: {e}");
            return EXIT_USAGE;
        }
    };
    let mut code = EXIT_OK;
    let mut reports = Vec::with_capacity(domains.len());
    for domain in domains {
        let report = match resolver.resolve(domain) {
            Ok(resolution) => {
                if resolution.failure().is_some() {
                    code = code.max(EXIT_FAILURE);
                }
                Report::from_resolution(&resolution)
            }
            Err(e) => {
                code = EXIT_USAGE;
                Report::from_error(domain, &e)
            }
        };
        reports.push(report);
    }
    let mut out = io::stdout().lock();
    let written = if json {
        serde_json::to_writer_pretty(&mut out, &reports)
            .map_err(io::Error::other)
            .and_then(|()| writeln!(out))
    } else {
        print_table(&mut out, &reports)
    };
    if let Err(e) = written.and_then(|()| out.flush()) {
        // A closed pipe (`mtasts lookup ... | head`) is not worth a panic.
        if e.kind() != io::ErrorKind::BrokenPipe {
            eprintln!("mtasts: writing the output failed: {e}");
            return EXIT_FAILURE;
        }
    }
    code
}

/// One domain's outcome, as printed (`--json` schema; see the README).
#[derive(Serialize, Debug)]
struct Report {
    domain: String,
    mode: &'static str,
    source: Option<&'static str>,
    policy: Option<PolicyReport>,
    failure: Option<FailureReport>,
    notice: Option<String>,
}

#[derive(Serialize, Debug)]
struct PolicyReport {
    id: String,
    mode: &'static str,
    max_age: u32,
    mx: Vec<String>,
    fetched_at: String,
    expires_at: String,
    text: String,
}

#[derive(Serialize, Debug)]
struct FailureReport {
    kind: &'static str,
    result_type: Option<&'static str>,
    reason: String,
}

impl FailureReport {
    fn new(e: &Error) -> FailureReport {
        FailureReport {
            kind: e.kind(),
            result_type: e.result_type().map(|t| t.as_str()),
            reason: e.to_string(),
        }
    }
}

impl Report {
    fn from_resolution(r: &Resolution) -> Report {
        Report {
            domain: r.domain().to_string(),
            mode: r.mode().as_str(),
            source: Some(r.source().as_str()),
            policy: r.cached_policy().map(|c| PolicyReport {
                id: c.id.clone(),
                mode: c.policy.mode().as_str(),
                max_age: c.policy.max_age(),
                mx: c.policy.mx().iter().map(ToString::to_string).collect(),
                fetched_at: rfc3339(c.fetched_at),
                expires_at: rfc3339(c.expires_at),
                text: c.policy.text().to_string(),
            }),
            failure: r.failure().map(FailureReport::new),
            notice: r.notice().map(str::to_string),
        }
    }

    fn from_error(domain: &str, e: &Error) -> Report {
        Report {
            domain: domain.to_string(),
            mode: "none",
            source: None,
            policy: None,
            failure: Some(FailureReport::new(e)),
            notice: None,
        }
    }
}

fn print_table(out: &mut impl Write, reports: &[Report]) -> io::Result<()> {
    let header = ["DOMAIN", "MODE", "SOURCE", "ID", "MAX_AGE", "MX"];
    let rows: Vec<[String; 6]> = reports
        .iter()
        .map(|r| {
            let p = r.policy.as_ref();
            [
                r.domain.clone(),
                r.mode.to_string(),
                r.source.unwrap_or("-").to_string(),
                p.map_or("-".into(), |p| p.id.clone()),
                p.map_or("-".into(), |p| p.max_age.to_string()),
                p.filter(|p| !p.mx.is_empty())
                    .map_or("-".into(), |p| p.mx.join(",")),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |out: &mut dyn Write, cells: &[&str]| -> io::Result<()> {
        let last = cells.len() - 1;
        for (i, cell) in cells.iter().enumerate() {
            if i == last {
                writeln!(out, "{cell}")?;
            } else {
                write!(out, "{cell:<w$}  ", w = widths[i])?;
            }
        }
        Ok(())
    };
    line(out, &header)?;
    for (row, report) in rows.iter().zip(reports) {
        line(out, &row.each_ref().map(String::as_str))?;
        if let Some(f) = &report.failure {
            match f.result_type {
                Some(t) => writeln!(out, "  failure: {t}: {}", f.reason)?,
                None => writeln!(out, "  failure: {}", f.reason)?,
            }
        }
        if let Some(n) = &report.notice {
            writeln!(out, "  notice: {n}")?;
        }
    }
    Ok(())
}

/// `2026-11-22T11:21:23Z` for a time at or after 1970.
fn rfc3339(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (proleptic Gregorian calendar).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_formats_utc() {
        let at = |s| rfc3339(UNIX_EPOCH + Duration::from_secs(s));
        assert_eq!(at(0), "1970-01-01T00:00:00Z");
        assert_eq!(at(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(at(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(at(4_102_444_799), "2099-12-31T23:59:59Z");
    }
}
