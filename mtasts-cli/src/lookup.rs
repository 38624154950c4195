//! `mtasts lookup`: resolve each domain's policy and print the outcome.

use std::io::{self, Write};

use mtasts_core::{Error, Resolution, Resolver};
use serde::Serialize;

use crate::output::{self, rfc3339};
use crate::{EXIT_FAILURE, EXIT_OK, EXIT_USAGE};

/// Runs `mtasts lookup`; returns the exit status.
pub fn run(resolver: &Resolver, domains: &[String], json: bool) -> u8 {
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
    let written = output::to_stdout(|out| {
        if json {
            output::json(out, &reports)
        } else {
            print_table(out, &reports)
        }
    });
    if written {
        code
    } else {
        code.max(EXIT_FAILURE)
    }
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
pub struct FailureReport {
    kind: &'static str,
    result_type: Option<&'static str>,
    reason: String,
}

impl FailureReport {
    pub fn new(e: &Error) -> FailureReport {
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

fn print_table(out: &mut dyn Write, reports: &[Report]) -> io::Result<()> {
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
    let header = ["DOMAIN", "MODE", "SOURCE", "ID", "MAX_AGE", "MX"];
    output::table(out, header, &rows, |out, i| {
        let report = &reports[i];
        if let Some(f) = &report.failure {
            match f.result_type {
                Some(t) => writeln!(out, "  failure: {t}: {}", f.reason)?,
                None => writeln!(out, "  failure: {}", f.reason)?,
            }
        }
        if let Some(n) = &report.notice {
            writeln!(out, "  notice: {n}")?;
        }
        Ok(())
    })
}
