//! The log sink the command-line faces share (`mtasts`, `table-mtasts`): `log` records as
//! lines on stderr (`TAG: LEVEL: MESSAGE`), or to the local syslog daemon (facility `mail`,
//! one datagram per line). Library users install their own `log` backend instead; the core
//! itself only ever logs through `log`.

use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::sync::{Mutex, OnceLock};

use log::{Level, LevelFilter, Log, Metadata, Record};

/// Facility `mail` (RFC 5424 §6.2.1: 2), shifted as PRI wants it.
const FACILITY_MAIL: u8 = 2 << 3;

struct Sink {
    tag: &'static str,
    /// The syslog socket once [`log_to_syslog`] succeeded; stderr otherwise.
    syslog: Mutex<Option<UnixDatagram>>,
}

impl Log for Sink {
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
                "<{}>{}[{}]: {level}: {text}",
                FACILITY_MAIL | severity,
                self.tag,
                std::process::id()
            );
            if socket.send(line.as_bytes()).is_ok() {
                return;
            }
        }
        // One write per line, so lines from the processes sharing a stderr (smtpd and its
        // table backends) never interleave.
        let line = format!("{}: {level}: {}\n", self.tag, record.args());
        let _ = std::io::Write::write_all(&mut std::io::stderr().lock(), line.as_bytes());
    }

    fn flush(&self) {}
}

static SINK: OnceLock<Sink> = OnceLock::new();

/// Installs the sink for this process, lines tagged `tag`, showing records up to `level`.
/// A second call only changes the level.
pub fn install_log_sink(tag: &'static str, level: LevelFilter) {
    let sink = SINK.get_or_init(|| Sink {
        tag,
        syslog: Mutex::new(None),
    });
    // Only fails if another logger is set already, which the faces never do.
    let _ = log::set_logger(sink);
    log::set_max_level(level);
}

/// Sends the sink's lines to the syslog daemon at `socket` (`/dev/log`) from now on.
///
/// # Errors
/// No such socket (the lines stay on stderr), or the sink is not installed.
pub fn log_to_syslog(socket: &Path) -> std::io::Result<()> {
    let sink = SINK
        .get()
        .ok_or_else(|| std::io::Error::other("the log sink is not installed"))?;
    let datagram = UnixDatagram::unbound()?;
    datagram.connect(socket)?;
    *sink.syslog.lock().unwrap_or_else(|p| p.into_inner()) = Some(datagram);
    Ok(())
}
