//! A minimal `log` backend: messages go to stderr as `mtasts: <level>: <message>`, or, for
//! `mtasts serve` with `serve.log = syslog`, to the local syslog daemon (`/dev/log`, facility
//! `mail`, tag `mtasts`), one datagram per line.

use std::os::unix::net::UnixDatagram;
use std::sync::Mutex;

use log::{Level, LevelFilter, Log, Metadata, Record};

/// Facility `mail` (RFC 5424 §6.2.1: 2), shifted as PRI wants it.
const FACILITY_MAIL: u8 = 2 << 3;

struct Logger {
    /// The syslog socket once `to_syslog` succeeded; stderr otherwise.
    syslog: Mutex<Option<UnixDatagram>>,
}

impl Log for Logger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let (level, severity) = match record.level() {
            Level::Error => ("error", 3),
            Level::Warn => ("warning", 4),
            Level::Info => ("info", 6),
            Level::Debug => ("debug", 7),
            Level::Trace => ("trace", 7),
        };
        let syslog = self.syslog.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(socket) = syslog.as_ref() {
            // The local form syslog daemons read from /dev/log: <PRI>TAG[PID]: MESSAGE (the
            // daemon adds the time and the host). One line: a message's newlines are spaces.
            let text = record.args().to_string().replace(['\n', '\r'], " ");
            let line = format!(
                "<{}>mtasts[{}]: {level}: {text}",
                FACILITY_MAIL | severity,
                std::process::id()
            );
            if socket.send(line.as_bytes()).is_ok() {
                return;
            }
        }
        eprintln!("mtasts: {level}: {}", record.args());
    }

    fn flush(&self) {}
}

static LOGGER: Logger = Logger {
    syslog: Mutex::new(None),
};

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
    // Only fails if a logger is already set, which cannot happen in this binary.
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(level);
}

/// Sends log lines to the local syslog daemon at `socket` (`/dev/log`) from now on. An error
/// (no such socket) leaves them on stderr.
pub fn to_syslog(path: &std::path::Path) -> std::io::Result<()> {
    let socket = UnixDatagram::unbound()?;
    socket.connect(path)?;
    *LOGGER.syslog.lock().unwrap_or_else(|p| p.into_inner()) = Some(socket);
    Ok(())
}
