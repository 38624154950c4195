//! `mtasts lookup`: resolve each domain's policy and print the outcome.
//!
//! Many domains (arguments, `--from-file`) run through the core's `Resolver::resolve_many`,
//! `--jobs` at a time, printed in input order. `--json-lines` prints each result as it comes,
//! so a list of any length runs in flat memory; the table and `--json` are printed at the end.

use std::io::{self, Write};
use std::ops::ControlFlow;

use clap::Args;
use mtasts_core::{ResolutionView, Resolver};

use crate::batch::{Domains, Format, Sink};
use crate::output;
use crate::{EXIT_FAILURE, EXIT_OK, EXIT_USAGE};

/// Arguments of `mtasts lookup`.
#[derive(Args, Debug)]
pub struct LookupArgs {
    #[command(flatten)]
    domains: Domains,
    // `--json` prints one array with an object per domain.
    #[command(flatten)]
    format: Format,
}

/// Runs `mtasts lookup`; returns the exit status.
pub fn run(resolver: &Resolver, args: &LookupArgs) -> u8 {
    let (domains, read_error) = match args.domains.iter() {
        Ok(parts) => parts,
        Err(e) => {
            eprintln!("mtasts: {e}");
            return EXIT_USAGE;
        }
    };
    let bar = args.domains.progress();
    let mut code = EXIT_OK;
    let mut reports = Vec::new();
    let mut stdout = io::stdout().lock();
    let mut sink = Sink::default();
    resolver.resolve_many(domains, usize::from(args.domains.jobs), |item| {
        bar.inc(1);
        let report = match &item.result {
            Ok(resolution) => {
                if resolution.failure().is_some() {
                    code = code.max(EXIT_FAILURE);
                }
                ResolutionView::new(resolution)
            }
            Err(e) => {
                code = EXIT_USAGE;
                ResolutionView::for_error(&item.domain, e)
            }
        };
        if !args.format.json_lines {
            reports.push(report);
            return ControlFlow::Continue(());
        }
        sink.record(bar.suspend(|| output::json_line(&mut stdout, &report)))
    });
    bar.finish_and_clear();
    drop(stdout);
    sink.finish(&read_error, code, || {
        args.format.json_lines
            || output::to_stdout(|out| {
                if args.format.json {
                    output::json(out, &reports)
                } else {
                    print_table(out, &reports)
                }
            })
    })
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
