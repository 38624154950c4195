//! `mtasts tlsrpt ...`: TLS reporting (RFC 8460). One subcommand per arm of
//! [`TlsrptCommand`]; `summarize` reads the reports a domain receives.
//!
//! `summarize FILE...`: every file is read by the core (`read_report_file`: JSON, gzip or a
//! mail message) and counted in one `Summary`; a file that cannot be read is named with
//! why, and the others are still summarised. Exit status: 0 every file read, 1 a file is not
//! a readable report (malformed JSON, a missing or mistyped field, damaged gzip, a message
//! without a report), 2 usage (bad arguments, a file that cannot be opened).

use std::io::{self, Write};
use std::path::PathBuf;

use clap::{Args, Subcommand};
use mtasts_core::{ReportError, Summary, SummaryView, read_report_file};

use crate::output;
use crate::{EXIT_FAILURE, EXIT_OK, EXIT_USAGE, NetOptions};

/// `mtasts tlsrpt ...`
#[derive(Subcommand, Debug)]
pub enum TlsrptCommand {
    /// Summarise the TLS-RPT reports a domain received (JSON, .json.gz, or whole .eml
    /// messages): per policy domain and sending organisation, the sessions, the failures by
    /// result type and the failing MX hosts. Exit status 0 all read, 1 a malformed report,
    /// 2 usage or an unreadable file.
    Summarize(SummarizeArgs),
    /// Collect the TLSRPT datagrams Postfix 3.10+ (libtlsrpt) sends, on a Unix datagram
    /// socket, into the report store beside the policy cache, until SIGTERM or SIGINT.
    /// Point Postfix at it with `smtp_tlsrpt_enable = yes` and `smtp_tlsrpt_socket_name =
    /// PATH`. Exit status 0 stopped by a signal, 1 the socket failed, 2 usage.
    Collect(crate::collect::CollectArgs),
    /// List the days and domains of the report store: sessions counted and where each
    /// report stands (open, scheduled, due, retrying, delivered, abandoned).
    List(crate::send::ListArgs),
    /// Print the report of DAY for DOMAIN exactly as it will be sent (RFC 8460 JSON).
    Show(crate::send::ShowArgs),
    /// Send the reports that are due (run it every few minutes from a timer): to the
    /// domain's rua URIs until one accepts, retried with back-off for at least 24 h. Exit
    /// status 1 when a report had to be retried.
    Send(crate::send::SendArgs),
}

/// Arguments of `mtasts tlsrpt summarize`.
#[derive(Args, Debug)]
pub struct SummarizeArgs {
    /// Report files: JSON, gzip-compressed JSON, or mail messages with the report attached.
    #[arg(value_name = "FILE", required = true)]
    files: Vec<PathBuf>,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

/// Runs `mtasts tlsrpt ...`; returns the exit status.
pub fn run(_net: &NetOptions, command: &TlsrptCommand) -> u8 {
    match command {
        TlsrptCommand::Summarize(args) => summarize(args),
        TlsrptCommand::Collect(args) => crate::collect::collect(_net, args),
        TlsrptCommand::List(args) => crate::send::list(_net, args),
        TlsrptCommand::Show(args) => crate::send::show(_net, args),
        TlsrptCommand::Send(args) => crate::send::send(_net, args),
    }
}

fn summarize(args: &SummarizeArgs) -> u8 {
    let mut summary = Summary::new();
    for file in &args.files {
        summary.add_input(&file.display().to_string(), read_report_file(file));
    }
    let mut code = EXIT_OK;
    for (file, e) in summary.failures() {
        eprintln!("mtasts: {file}: {e}");
        code = code.max(match e {
            ReportError::Io { .. } => EXIT_USAGE,
            _ => EXIT_FAILURE,
        });
    }
    let view = SummaryView::new(&summary);
    let written = output::to_stdout(|out| {
        if args.json {
            output::json(out, &view)
        } else {
            print_summary(out, &view)
        }
    });
    if !written {
        code = code.max(EXIT_FAILURE);
    }
    code
}

fn print_summary(out: &mut dyn Write, view: &SummaryView) -> io::Result<()> {
    let rows: Vec<[String; 6]> = view
        .summary
        .iter()
        .map(|r| {
            [
                r.policy_domain.clone(),
                r.organization.clone(),
                r.reports.to_string(),
                match (&r.start, &r.end) {
                    (Some(s), Some(e)) => format!("{}..{}", day(s), day(e)),
                    _ => "-".into(),
                },
                r.successful_sessions.to_string(),
                r.failed_sessions.to_string(),
            ]
        })
        .collect();
    if !rows.is_empty() {
        let header = [
            "POLICY DOMAIN",
            "ORGANISATION",
            "REPORTS",
            "DAYS",
            "SUCCESSFUL",
            "FAILED",
        ];
        output::table(out, header, &rows, |out, i| {
            let r = &view.summary[i];
            let list = |v: &[mtasts_core::SessionCountView]| {
                v.iter()
                    .map(|c| format!("{} {}", c.name, c.sessions))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            if !r.failures.is_empty() {
                writeln!(out, "  failures by result type: {}", list(&r.failures))?;
            }
            if !r.failing_mx_hosts.is_empty() {
                writeln!(out, "  failing MX hosts: {}", list(&r.failing_mx_hosts))?;
            }
            Ok(())
        })?;
    }
    let read = view.inputs.iter().filter(|i| i.status != "failed").count();
    let duplicates: Vec<&str> = view
        .inputs
        .iter()
        .filter(|i| i.status == "duplicate")
        .map(|i| i.file.as_str())
        .collect();
    let failed: Vec<&str> = view
        .inputs
        .iter()
        .filter(|i| i.status == "failed")
        .map(|i| i.file.as_str())
        .collect();
    write!(out, "{read} of {} files read", view.inputs.len())?;
    if !duplicates.is_empty() {
        write!(
            out,
            "; counted once already, not again: {}",
            duplicates.join(", ")
        )?;
    }
    if !failed.is_empty() {
        write!(out, "; not read: {}", failed.join(", "))?;
    }
    writeln!(out)
}

/// The day of an RFC 3339 time (`2016-04-01` of `2016-04-01T00:00:00Z`).
fn day(t: &str) -> &str {
    t.split('T').next().unwrap_or(t)
}
