//! `mtasts refresh` and `mtasts cache list|show|purge`.

use std::io::IsTerminal;
use std::io::{self, Write};
use std::time::Duration;

use clap::{Args, Subcommand};
use mtasts_core::{Domain, EntryView, RefreshOptions, RefreshView, Resolver};

use crate::output;
use crate::{EXIT_FAILURE, EXIT_OK, EXIT_USAGE};

/// Options of `mtasts refresh`.
#[derive(Args, Debug)]
pub struct RefreshArgs {
    /// Refresh every cached policy, not only the due ones.
    #[arg(long)]
    all: bool,
    /// Refresh at most this many domains at once.
    #[arg(long, value_name = "N", default_value_t = 4)]
    concurrency: usize,
    /// Wait a random time up to SECONDS before starting (spreads a fleet's timers).
    #[arg(long, value_name = "SECONDS", default_value_t = 0)]
    jitter: u64,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

/// `mtasts cache ...`
#[derive(Subcommand, Debug)]
pub enum CacheCommand {
    /// List every cached domain: mode, id, fetch and expiry times, backoff, failures.
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show everything cached for DOMAIN, the raw policy text included.
    Show {
        /// The policy domain.
        domain: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Remove the cached entries of the DOMAINs given, or every entry.
    Purge {
        /// Domains to remove; none: all.
        domains: Vec<String>,
    },
}

/// Runs `mtasts refresh`; exit 1 if any refresh failed.
pub fn refresh(resolver: &Resolver, args: &RefreshArgs) -> u8 {
    let mut options = RefreshOptions::default();
    options.all = args.all;
    options.concurrency = args.concurrency;
    options.jitter = Duration::from_secs(args.jitter);
    // On a terminal, a progress bar once the due domains are known.
    let mut bar = None;
    let progress = |p: mtasts_core::RefreshProgress| {
        let bar = bar.get_or_insert_with(|| crate::batch::progress_bar(Some(p.total as u64)));
        bar.set_position(p.done as u64);
    };
    let result = resolver.refresh_due_with_progress(&options, progress);
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let report = match result {
        Ok(report) => report,
        Err(e) => {
            eprintln!("mtasts: refresh of {}: {e}", resolver.store().location());
            return EXIT_FAILURE;
        }
    };
    let json = RefreshView::new(&report);
    let written = output::to_stdout(|out| {
        if args.json {
            return output::json(out, &json);
        }
        writeln!(
            out,
            "{} cached policies examined, {} refreshed, {} failed, {} no longer published, {} unused entries dropped",
            json.examined,
            json.refreshed.len(),
            json.failed.len(),
            json.unpublished.len(),
            json.purged
        )?;
        for d in &json.refreshed {
            writeln!(out, "refreshed    {d}")?;
        }
        for d in &json.unpublished {
            writeln!(
                out,
                "unpublished  {d} (the cached policy stays in force until it expires)"
            )?;
        }
        for f in &report.failed {
            let t = f.1.result_type().map_or("", |t| t.as_str());
            writeln!(out, "failed       {} {t}: {}", f.0, f.1)?;
        }
        Ok(())
    });
    if !written || !report.failed.is_empty() {
        EXIT_FAILURE
    } else {
        EXIT_OK
    }
}

/// Runs `mtasts cache ...`.
pub fn run(resolver: &Resolver, command: &CacheCommand) -> u8 {
    let store = resolver.store();
    let failed = |e: &dyn std::fmt::Display| {
        eprintln!("mtasts: cache {}: {e}", store.location());
        EXIT_FAILURE
    };
    match command {
        CacheCommand::List { json } => {
            let mut entries = match store.entries() {
                Ok(entries) => entries,
                Err(e) => return failed(&e),
            };
            entries.sort_by(|a, b| a.domain.cmp(&b.domain));
            let views: Vec<EntryView> = entries.iter().map(|e| EntryView::new(e, false)).collect();
            let written = output::to_stdout(|out| {
                if *json {
                    output::json(out, &views)
                } else {
                    list_table(out, &views)
                }
            });
            if written { EXIT_OK } else { EXIT_FAILURE }
        }
        CacheCommand::Show { domain, json } => {
            let domain = match Domain::new(domain) {
                Ok(d) => d,
                Err(e) => {
                    eprintln!("mtasts: {e}");
                    return EXIT_USAGE;
                }
            };
            let entry = match store.get(&domain) {
                Ok(Some(entry)) => entry,
                Ok(None) => {
                    eprintln!(
                        "mtasts: {domain} is not in the cache ({})",
                        store.location()
                    );
                    return EXIT_FAILURE;
                }
                Err(e) => return failed(&e),
            };
            let view = EntryView::new(&entry, true);
            let written = output::to_stdout(|out| {
                if *json {
                    output::json(out, &view)
                } else {
                    // Policy text and reasons come from remote servers: on a terminal their
                    // control characters are shown escaped, never interpreted.
                    show_text(out, &view, std::io::stdout().is_terminal())
                }
            });
            if written { EXIT_OK } else { EXIT_FAILURE }
        }
        CacheCommand::Purge { domains } => {
            let removed = if domains.is_empty() {
                store.clear()
            } else {
                let mut removed = 0;
                for d in domains {
                    let domain = match Domain::new(d) {
                        Ok(d) => d,
                        Err(e) => {
                            eprintln!("mtasts: {e}");
                            return EXIT_USAGE;
                        }
                    };
                    match store.remove(&domain) {
                        Ok(true) => removed += 1,
                        Ok(false) => {}
                        Err(e) => return failed(&e),
                    }
                }
                Ok(removed)
            };
            match removed {
                Ok(n) => {
                    let written = output::to_stdout(|out| {
                        writeln!(out, "{n} entries removed from {}", store.location())
                    });
                    if written { EXIT_OK } else { EXIT_FAILURE }
                }
                Err(e) => failed(&e),
            }
        }
    }
}

fn list_table(out: &mut dyn Write, views: &[EntryView]) -> io::Result<()> {
    let dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
    let rows: Vec<[String; 7]> = views
        .iter()
        .map(|v| {
            [
                v.domain.clone(),
                v.mode.unwrap_or("-").to_string(),
                dash(&v.id),
                dash(&v.fetched_at),
                dash(&v.expires_at),
                v.failures.to_string(),
                v.backoff
                    .as_ref()
                    .map_or("-".into(), |b| format!("{} until {}", b.id, b.until)),
            ]
        })
        .collect();
    let header = [
        "DOMAIN", "MODE", "ID", "FETCHED", "EXPIRES", "FAILURES", "BACKOFF",
    ];
    output::table(out, header, &rows, |_, _| Ok(()))
}

fn show_text(out: &mut dyn Write, v: &EntryView, terminal: bool) -> io::Result<()> {
    let safe = |s: &str| -> String {
        if terminal {
            mtasts_core::escape_controls(s).into_owned()
        } else {
            s.to_owned()
        }
    };
    let dash = |s: &Option<String>| s.as_deref().map_or_else(|| "-".into(), safe);
    writeln!(out, "domain:      {}", v.domain)?;
    writeln!(
        out,
        "mode:        {}",
        v.mode.unwrap_or("- (no policy cached)")
    )?;
    writeln!(out, "id:          {}", dash(&v.id))?;
    writeln!(
        out,
        "max_age:     {}",
        v.max_age.map_or("-".into(), |m| m.to_string())
    )?;
    writeln!(
        out,
        "mx:          {}",
        if v.mx.is_empty() {
            "-".into()
        } else {
            v.mx.join(", ")
        }
    )?;
    writeln!(out, "fetched:     {}", dash(&v.fetched_at))?;
    writeln!(out, "expires:     {}", dash(&v.expires_at))?;
    writeln!(out, "next check:  {}", v.next_check)?;
    match &v.backoff {
        Some(b) => writeln!(
            out,
            "backoff:     id {} until {} ({}: {})",
            safe(&b.id),
            b.until,
            b.result_type,
            safe(&b.reason)
        )?,
        None => writeln!(out, "backoff:     -")?,
    }
    writeln!(out, "failures:    {}", v.failures)?;
    writeln!(out, "last used:   {}", v.last_used)?;
    if let Some(text) = &v.text {
        writeln!(out, "policy text:")?;
        for line in text.lines() {
            writeln!(out, "  {}", safe(line))?;
        }
    }
    Ok(())
}
