//! `mtasts lookup`: resolve each domain's policy and print the outcome.

use std::io::{self, Write};

use mtasts_core::{ResolutionView, Resolver};

use crate::output;
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
                ResolutionView::new(&resolution)
            }
            Err(e) => {
                code = EXIT_USAGE;
                ResolutionView::for_error(domain, &e)
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

fn print_table(out: &mut dyn Write, reports: &[ResolutionView]) -> io::Result<()> {
    let rows: Vec<[String; 6]> = reports
        .iter()
        .map(|r| {
            let p = r.policy.as_ref();
            [
                r.domain.clone(),
                r.mode.to_string(),
                r.source.unwrap_or("-").to_string(),
                p.and_then(|p| p.id.clone()).unwrap_or_else(|| "-".into()),
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
