//! `mtasts tlsrpt list`, `show DAY DOMAIN` and `send [--now] [--dry-run]`: the sender's side
//! of TLS reporting. Every decision is the core's `ReportSender` (what is due, the report,
//! its delivery, the retries); this file parses arguments and prints.
//!
//! Exit status: 0 done (for `send`: every due report delivered, or retried or abandoned as
//! the rules say), 1 a report could not be delivered this run (`send`), a day that is not in
//! the store (`show`), or the store could not be read; 2 usage or configuration (the
//! `tlsrpt.*` keys to set are named).

use std::io::{self, Write};

use clap::Args;
use mtasts_core::{
    Domain, ReportListView, ReportSender, SendAction, SendOptions, SendOutcomeView, TlsRptSettings,
    UtcDay, rfc3339,
};

use crate::output;
use crate::{EXIT_FAILURE, EXIT_OK, EXIT_USAGE, NetOptions};

/// Arguments of `mtasts tlsrpt list`.
#[derive(Args, Debug)]
pub struct ListArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

/// Arguments of `mtasts tlsrpt show`.
#[derive(Args, Debug)]
pub struct ShowArgs {
    /// The UTC day, YYYY-MM-DD.
    #[arg(value_name = "DAY")]
    day: String,
    /// The policy domain.
    #[arg(value_name = "DOMAIN")]
    domain: String,
}

/// Arguments of `mtasts tlsrpt send`.
#[derive(Args, Debug)]
pub struct SendArgs {
    /// Send every ended day now, not waiting for its send time or the retry back-off.
    #[arg(long)]
    now: bool,
    /// Send nothing and write nothing: print what would be done.
    #[arg(long)]
    dry_run: bool,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

/// The sender the settings describe, or the exit status after saying why not.
fn sender(net: &NetOptions) -> Result<ReportSender, u8> {
    let fail = |e: String| {
        eprintln!("mtasts: {e}");
        EXIT_USAGE
    };
    let config = crate::config(net).map_err(fail)?;
    let mut settings = TlsRptSettings::default();
    if let Some(file) = crate::settings_file(net) {
        settings.load_file(&file).map_err(|e| fail(e.to_string()))?;
    }
    ReportSender::open(&config, &settings).map_err(|e| fail(e.to_string()))
}

/// `mtasts tlsrpt list`.
pub fn list(net: &NetOptions, args: &ListArgs) -> u8 {
    let sender = match sender(net) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let days = match sender.list() {
        Ok(days) => days,
        Err(e) => {
            eprintln!("mtasts: {e}");
            return EXIT_FAILURE;
        }
    };
    let view = ReportListView::new(&days);
    let written = output::to_stdout(|out| {
        if args.json {
            return output::json(out, &view);
        }
        let rows: Vec<[String; 6]> = view
            .days
            .iter()
            .map(|d| {
                [
                    d.day.clone(),
                    d.domain.clone(),
                    d.successful_sessions.to_string(),
                    d.failed_sessions.to_string(),
                    d.state.to_string(),
                    match d.state {
                        "delivered" => d.delivered_at.clone().unwrap_or_default(),
                        "abandoned" => d.abandoned_at.clone().unwrap_or_default(),
                        "retrying" => format!(
                            "attempt {} at {}",
                            d.attempts + 1,
                            d.next_attempt.clone().unwrap_or_default()
                        ),
                        _ => d.due_at.clone(),
                    },
                ]
            })
            .collect();
        if rows.is_empty() {
            return writeln!(out, "no TLS-RPT counts in the store");
        }
        output::table(
            out,
            ["DAY", "DOMAIN", "SUCCESSFUL", "FAILED", "STATE", "WHEN"],
            &rows,
            |_, _| Ok(()),
        )
    });
    if written { EXIT_OK } else { EXIT_FAILURE }
}

/// `mtasts tlsrpt show DAY DOMAIN`: the report's JSON exactly as it will be sent (what is
/// gzip-compressed and POSTed or attached), followed by a newline.
pub fn show(net: &NetOptions, args: &ShowArgs) -> u8 {
    let day: UtcDay = match args.day.parse() {
        Ok(day) => day,
        Err(e) => {
            eprintln!("mtasts: {}: {e}", args.day);
            return EXIT_USAGE;
        }
    };
    let domain = match Domain::new(&args.domain) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("mtasts: {e}");
            return EXIT_USAGE;
        }
    };
    let sender = match sender(net) {
        Ok(s) => s,
        Err(code) => return code,
    };
    match sender.prepare(day, &domain) {
        Ok(Some(prepared)) => {
            if output::to_stdout(|out| writeln!(out, "{}", prepared.json)) {
                EXIT_OK
            } else {
                EXIT_FAILURE
            }
        }
        Ok(None) => {
            eprintln!("mtasts: no TLS-RPT counts for {domain} on {day}");
            EXIT_FAILURE
        }
        Err(e) => {
            eprintln!("mtasts: {e}");
            EXIT_FAILURE
        }
    }
}

/// `mtasts tlsrpt send`.
pub fn send(net: &NetOptions, args: &SendArgs) -> u8 {
    let sender = match sender(net) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let outcomes = match sender.send_due(SendOptions::new(args.now, args.dry_run)) {
        Ok(outcomes) => outcomes,
        Err(e) => {
            eprintln!("mtasts: {e}");
            return EXIT_FAILURE;
        }
    };
    let views: Vec<SendOutcomeView> = outcomes.iter().map(SendOutcomeView::new).collect();
    let written = output::to_stdout(|out| {
        if args.json {
            output::json(out, &views)
        } else {
            print_outcomes(out, &views)
        }
    });
    let retried = outcomes
        .iter()
        .any(|o| matches!(o.action, SendAction::Retry { .. }));
    if !written || retried {
        EXIT_FAILURE
    } else {
        EXIT_OK
    }
}

fn print_outcomes(out: &mut dyn Write, views: &[SendOutcomeView]) -> io::Result<()> {
    let mut waiting = 0;
    for v in views {
        let what = match v.action {
            "not-due" => {
                waiting += 1;
                continue;
            }
            "delivered" => format!("delivered to {}", v.uri.as_deref().unwrap_or_default()),
            "retry" => format!(
                "not delivered, retry at {}",
                v.at.as_deref().unwrap_or_default()
            ),
            "abandoned" => format!("abandoned: {}", v.reason.as_deref().unwrap_or_default()),
            _ => format!("would send to {}", v.uris.join(", ")),
        };
        writeln!(out, "{} {}: {what}", v.day, v.domain)?;
        for f in &v.failures {
            writeln!(out, "  {}: {}", f.uri, f.reason)?;
        }
    }
    if waiting > 0 {
        writeln!(
            out,
            "{waiting} report(s) not due yet (as of {}; `mtasts tlsrpt list` shows when)",
            rfc3339(std::time::SystemTime::now())
        )?;
    }
    Ok(())
}
