//! `mtasts`: look up, refresh and inspect MTA-STS policies from the command line.
//!
//! Argument parsing and printing only; every decision is made by `mtasts-core`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use mtasts_core::{CacheLocation, Config, Resolver};

mod batch;
mod cache;
mod check;
mod collect;
mod logger;
mod lookup;
mod output;
mod send;
mod serve;
mod system;
mod tlsrpt;
mod verify;

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
    about = "Look up, refresh and check MTA-STS (RFC 8461) policies",
    after_help = "Exit status: 0 success (a policy found or none published), 1 a failure \
                  occurred, 2 usage error."
)]
struct Cli {
    #[command(flatten)]
    net: NetOptions,
    /// More log output on stderr (-v: warnings and info, -vv: debug; by default only errors:
    /// each domain's failure is in the output).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    /// No log output on stderr.
    #[arg(short, long, global = true)]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Args, Debug)]
pub(crate) struct NetOptions {
    /// Settings file (the mtasts settings format: `key = value` lines; see the README).
    /// Default: /etc/mtasts/mtasts.conf when it exists. Options given here override it.
    #[arg(long, value_name = "FILE", global = true, env = "MTASTS_CONFIG")]
    config: Option<PathBuf>,
    /// DNS server to query, as IP or IP:PORT (repeatable). Default: the system's resolv.conf.
    #[arg(long = "nameserver", value_name = "IP:PORT", global = true)]
    nameservers: Vec<String>,
    /// Trust roots for policy hosts and MX certificates: `system` (the default), `bundled`
    /// (Mozilla's, compiled in) or a PEM file.
    #[arg(long, value_name = "system|bundled|FILE", global = true)]
    trust_roots: Option<String>,
    /// Deadline of one policy fetch, in seconds (RFC 8461 §3.3; default 30).
    #[arg(long, value_name = "SECONDS", global = true)]
    timeout: Option<f64>,
    /// Deadline of one DNS lookup, in seconds (default 10).
    #[arg(long, value_name = "SECONDS", global = true)]
    dns_timeout: Option<f64>,
    /// Policy cache: `memory`, a SQLite file, `redis://HOST:PORT/DB`, or `FILE,redis://...`
    /// (default: ~/.cache/mtasts/cache.db; MTAs use /var/cache/mtasts/cache.db).
    #[arg(long, value_name = "LOCATION", global = true, env = "MTASTS_CACHE")]
    cache: Option<String>,
    /// For test setups only: fetch policies from this port instead of 443.
    #[arg(long, value_name = "PORT", global = true)]
    policy_port: Option<u16>,
}

/// The settings file read when `--config` is not given, if it exists.
const DEFAULT_CONFIG: &str = "/etc/mtasts/mtasts.conf";

#[derive(Subcommand, Debug)]
enum Command {
    /// Resolve the MTA-STS policy of each DOMAIN: mode, MX patterns, max_age, id, source and
    /// any failure.
    Lookup(lookup::LookupArgs),
    /// Fetch again the cached policies that are due (older than half their max_age or
    /// expiring within a day), and drop entries unused for 180 days. Run it daily from cron
    /// or a systemd timer.
    Refresh(cache::RefreshArgs),
    /// Inspect or empty the policy cache.
    #[command(subcommand)]
    Cache(cache::CacheCommand),
    /// Diagnose a domain's MTA-STS set-up: TXT record, policy, MX hosts, STARTTLS and
    /// certificates, with what is wrong and how to fix it. Exit status 1 when a problem is
    /// found.
    Check(check::CheckArgs),
    /// Check a certificate chain (PEM or DER, leaf first) for an MX host name: chain to the
    /// trust roots, validity, SAN match. Exit status 0 pass, 1 fail, 2 usage.
    VerifyCert(verify::VerifyCertArgs),
    /// Serve the TLS policy of recipient domains to Postfix (`smtp_tls_policy_maps =
    /// socketmap:unix:PATH:postfix`) until SIGTERM, from the shared cache.
    Serve(serve::ServeArgs),
    /// Ask a running `mtasts serve` for a domain's policy and print the reply (like
    /// `postmap -q DOMAIN socketmap:unix:PATH:postfix`).
    Query(serve::QueryArgs),
    /// TLS reporting (RFC 8460): send the daily reports (send, list, show), and summarise
    /// the reports a domain receives.
    #[command(subcommand)]
    Tlsrpt(tlsrpt::TlsrptCommand),
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
    // Commands that look policies up get a resolver (and so open the cache); check and
    // verify-cert build what they need themselves.
    let with_resolver = |run: &dyn Fn(&Resolver) -> u8| -> u8 {
        match config(&cli.net).and_then(|c| Resolver::new(c).map_err(|e| e.to_string())) {
            Ok(resolver) => run(&resolver),
            Err(e) => {
                eprintln!("mtasts: {e}");
                EXIT_USAGE
            }
        }
    };
    let code = match &cli.command {
        Command::Lookup(args) => with_resolver(&|r| lookup::run(r, args)),
        Command::Refresh(args) => with_resolver(&|r| cache::refresh(r, args)),
        Command::Cache(command) => with_resolver(&|r| cache::run(r, command)),
        Command::Check(args) => check::check(&cli.net, args),
        Command::VerifyCert(args) => verify::verify_cert(&cli.net, args),
        Command::Serve(args) => serve::serve(&cli.net, args, cli.quiet),
        Command::Query(args) => serve::query(args),
        Command::Tlsrpt(command) => tlsrpt::run(&cli.net, command),
    };
    ExitCode::from(code)
}

/// The resolver configuration: the defaults (with the user's cache), then the settings file,
/// then the options given. Every value is read by the core's `Config::set`, as every face
/// reads it.
fn config(net: &NetOptions) -> Result<Config, String> {
    config_with(net, |_| {})
}

/// The settings file in use: `--config`, or the default one when it exists.
fn settings_file(net: &NetOptions) -> Option<PathBuf> {
    net.config.clone().or_else(|| {
        let default = PathBuf::from(DEFAULT_CONFIG);
        default.exists().then_some(default)
    })
}

/// [`config`] with the command's own defaults (`defaults`) set before the file is read.
fn config_with(net: &NetOptions, defaults: impl FnOnce(&mut Config)) -> Result<Config, String> {
    let mut config = Config::default();
    config.cache = CacheLocation::user_default().unwrap_or(CacheLocation::Memory);
    defaults(&mut config);
    if let Some(file) = settings_file(net) {
        config.load_file(&file).map_err(|e| e.to_string())?;
    }
    let mut set = |option: &str, key: &str, value: String| {
        config
            .set(key, &value)
            .map_err(|e| format!("--{option}: {e}"))
    };
    if let Some(v) = &net.trust_roots {
        set("trust-roots", "trust_roots", v.clone())?;
    }
    if let Some(v) = net.timeout {
        set("timeout", "fetch_timeout", v.to_string())?;
    }
    if let Some(v) = net.dns_timeout {
        set("dns-timeout", "dns_timeout", v.to_string())?;
    }
    if let Some(v) = &net.cache {
        set("cache", "cache", v.clone())?;
    }
    if let Some(v) = net.policy_port {
        set("policy-port", "policy_port", v.to_string())?;
    }
    if !net.nameservers.is_empty() {
        // Given on the command line, they replace the file's.
        config.nameservers.clear();
        for v in &net.nameservers {
            config
                .set("nameserver", v)
                .map_err(|e| format!("--nameserver: {e}"))?;
        }
    }
    Ok(config)
}
