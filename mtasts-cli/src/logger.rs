//! A minimal `log` backend: messages go to stderr as `mtasts: <level>: <message>`.

use log::{Level, LevelFilter, Log, Metadata, Record};

struct Stderr;

impl Log for Stderr {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &Record<'_>) {
        if self.enabled(record.metadata()) {
            let level = match record.level() {
                Level::Error => "error",
                Level::Warn => "warning",
                Level::Info => "info",
                Level::Debug => "debug",
                Level::Trace => "trace",
            };
            eprintln!("mtasts: {level}: {}", record.args());
        }
    }

    fn flush(&self) {}
}

static LOGGER: Stderr = Stderr;

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
