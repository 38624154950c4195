//! The command's log output: the core's shared sink (`mtasts: <level>: <message>` on stderr,
//! or syslog for `mtasts serve` with `serve.log = syslog`).

use log::LevelFilter;

/// Installs the logger: 0 silences it, 1 (the default) shows errors, 2 (`-v`) warnings and
/// info, 3 and more (`-vv`) debug. Warnings are not shown by default: each one is about a
/// domain whose failure or notice the command prints anyway (a DNS failure would be printed
/// twice).
pub fn init(verbosity: u8) {
    let level = match verbosity {
        0 => LevelFilter::Off,
        1 => LevelFilter::Error,
        2 => LevelFilter::Info,
        _ => LevelFilter::Debug,
    };
    mtasts_core::install_log_sink("mtasts", level);
}

/// Sends log lines to the local syslog daemon at `socket` from now on. An error (no such
/// socket) leaves them on stderr.
pub fn to_syslog(socket: &std::path::Path) -> std::io::Result<()> {
    mtasts_core::log_to_syslog(socket)
}
