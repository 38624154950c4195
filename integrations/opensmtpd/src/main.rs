//! `table-mtasts`: the OpenSMTPD table backend of mtasts. smtpd runs it as
//! `/usr/libexec/opensmtpd/table-mtasts` for `table NAME mtasts:/etc/mtasts/mtasts.conf`,
//! with the table's name as `argv[0]` and the settings file as `argv[1]`. Everything it
//! answers is the core's (`mtasts_core::SmtpdTable`); this file only reads its arguments,
//! builds the resolver and connects the streams: 6.x's protocol runs on standard input in
//! both directions, 7.x's reads standard input and writes standard output.

use std::io::IsTerminal;
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use mtasts_core::{
    CacheLocation, Config, Resolver, SmtpdSettings, SmtpdTable, install_log_sink, log_to_syslog,
    table_role,
};

/// The settings file when smtpd.conf names none.
const DEFAULT_CONFIG: &str = "/etc/mtasts/mtasts.conf";
/// The cache when the settings name none: the one the MTA faces share.
const DEFAULT_CACHE: &str = "/var/cache/mtasts/cache.db";

fn main() -> ExitCode {
    let mut args = std::env::args_os();
    let name = args
        .next()
        .map(PathBuf::from)
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "mtasts".into());
    let config_path = args.next().map(PathBuf::from).or_else(|| {
        let default = PathBuf::from(DEFAULT_CONFIG);
        default.exists().then_some(default)
    });
    install_log_sink("table-mtasts", log::LevelFilter::Info);
    // smtpd gives its table backends its own stderr, which a daemonized smtpd points at
    // /dev/null: log to syslog then.
    if !std::io::stderr().is_terminal() {
        let _ = log_to_syslog(std::path::Path::new("/dev/log"));
    }
    let role = table_role(&name);
    let table = match build(config_path.as_deref()) {
        Ok((resolver, settings)) => SmtpdTable::new(Arc::new(resolver), role, settings),
        Err(e) => {
            // Never exit: smtpd stops when a backend does. Answer "cannot tell" instead.
            log::error!("table {name}: {e}: every answer is \"cannot tell\" (messages wait)");
            SmtpdTable::unavailable(role, e)
        }
    };
    let stdin = std::io::stdin();
    // 6.x replies on the same socket smtpd writes to (standard input).
    let reply_socket = match stdin.as_fd().try_clone_to_owned() {
        Ok(fd) => std::fs::File::from(fd),
        Err(e) => {
            log::error!("table {name}: cannot use standard input: {e}");
            return ExitCode::FAILURE;
        }
    };
    match table.serve(stdin.lock(), reply_socket, std::io::stdout().lock()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log::error!("table {name}: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The resolver and the table's settings from the settings file.
fn build(path: Option<&std::path::Path>) -> Result<(Resolver, SmtpdSettings), String> {
    let mut config = Config::default();
    config.cache = DEFAULT_CACHE
        .parse::<CacheLocation>()
        .map_err(|e| e.to_string())?;
    let mut settings = SmtpdSettings::default();
    if let Some(path) = path {
        // Read once; the resolver's keys and the table's `smtpd.*` keys from the same text.
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read the settings file {}: {e}", path.display()))?;
        let origin = path.display().to_string();
        config.load_str(&text, &origin).map_err(|e| e.to_string())?;
        settings
            .load_str(&text, &origin)
            .map_err(|e| e.to_string())?;
    }
    let resolver = Resolver::new(config).map_err(|e| e.to_string())?;
    Ok((resolver, settings))
}
