//! `mtasts lookup`: resolve each domain's policy and print the outcome.
//!
//! Many domains (arguments, `--from-file`) run through the core's `Resolver::resolve_many`,
//! `--jobs` at a time, printed in input order. `--json-lines` prints each result as it comes,
//! so a list of any length runs in flat memory; the table and `--json` are printed at the end.

use std::io::{self, Write};
use std::ops::ControlFlow;

use clap::Args;
use mtasts_core::{ResolutionView, Resolver};

use crate::batch::Domains;
use crate::output;
use crate::{EXIT_FAILURE, EXIT_OK, EXIT_USAGE};

/// Arguments of `mtasts lookup`.
#[derive(Args, Debug)]
pub struct LookupArgs {
    #[command(flatten)]
    domains: Domains,
    /// Print JSON (one array, one object per domain) instead of a table.
    #[arg(long, conflicts_with = "json_lines")]
    json: bool,
    /// Print one JSON object per line, each as soon as it is known (in input order): for
    /// long lists.
    #[arg(long)]
    json_lines: bool,
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
    let mut write_failed = None;
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
        if !args.json_lines {
            reports.push(report);
            return ControlFlow::Continue(());
        }
        let written = bar.suspend(|| {
            serde_json::to_writer(&mut stdout, &report)
                .map_err(io::Error::other)
                .and_then(|()| writeln!(stdout))
        });
        match written {
            Ok(()) => ControlFlow::Continue(()),
            Err(e) => {
                write_failed = Some(e);
                ControlFlow::Break(())
            }
        }
    });
    bar.finish_and_clear();
    if let Some(e) = read_error.lock().unwrap_or_else(|p| p.into_inner()).take() {
        eprintln!("mtasts: {e}");
        code = EXIT_USAGE;
    }
    let written = match write_failed {
        // `mtasts lookup ... | head`: a closed pipe is not an error.
        Some(e) if e.kind() == io::ErrorKind::BrokenPipe => true,
        Some(e) => {
            eprintln!("mtasts: writing the output failed: {e}");
            false
        }
        None => {
            drop(stdout);
            args.json_lines
                || output::to_stdout(|out| {
                    if args.json {
                        output::json(out, &reports)
                    } else {
                        print_table(out, &reports)
                    }
                })
        }
    };
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
