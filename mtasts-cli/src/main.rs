//! `mtasts`: look up, refresh and inspect MTA-STS policies from the command line.
//!
//! Argument parsing and printing only; every decision is made by `mtasts-core`.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use mtasts_core::{CacheLocation, Config, Resolver, TrustRoots};

mod cache;
mod check;
mod logger;
mod lookup;
mod output;
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
    /// Trust roots for policy hosts and MX certificates: `system`, `bundled` (Mozilla's,
    /// compiled in) or a PEM file.
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
    /// Policy cache: `memory`, a SQLite file, `redis://HOST:PORT/DB`, or `FILE,redis://...`
    /// (default: ~/.cache/mtasts/cache.db; MTAs use /var/cache/mtasts/cache.db).
    #[arg(long, value_name = "LOCATION", global = true, env = "MTASTS_CACHE")]
    cache: Option<String>,
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
        Command::Lookup { domains, json } => with_resolver(&|r| lookup::run(r, domains, *json)),
        Command::Refresh(args) => with_resolver(&|r| cache::refresh(r, args)),
        Command::Cache(command) => with_resolver(&|r| cache::run(r, command)),
        Command::Check(args) => check::check(&cli.net, args),
        Command::VerifyCert(args) => verify::verify_cert(&cli.net, args),
    };
    ExitCode::from(code)
}

/// The resolver configuration the global options describe.
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
    config.cache = match &net.cache {
        Some(location) => location.parse().map_err(|e| format!("--cache: {e}"))?,
        None => CacheLocation::user_default().unwrap_or(CacheLocation::Memory),
    };
    Ok(config)
}
