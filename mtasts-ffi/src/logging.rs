//! Routes the library's log messages (the `log` facade) to a callback of the host, so an MTA
//! can write them into its own log.

use std::cell::Cell;
use std::ffi::{c_char, c_void};
use std::sync::{OnceLock, RwLock};

use log::{Level, LevelFilter, Log, Metadata, Record};

use crate::boundary::{CText, ffi_boundary};
use crate::error::{Failure, mtasts_result};

/// The level of a log message, most severe first. As a filter, a level passes the messages of
/// that level and the more severe ones; `MTASTS_LOG_OFF` passes none.
#[allow(non_camel_case_types)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum mtasts_log_level {
    /// No messages (as a filter only).
    MTASTS_LOG_OFF = 0,
    /// Errors: something failed that the host should look at.
    MTASTS_LOG_ERROR = 1,
    /// Warnings: failures of a domain's policy (fetch, DNS), unusable cache, dropped patterns.
    MTASTS_LOG_WARN = 2,
    /// Information: policies fetched.
    MTASTS_LOG_INFO = 3,
    /// Debugging detail (also from the TLS, HTTP and DNS libraries inside).
    MTASTS_LOG_DEBUG = 4,
    /// Everything.
    MTASTS_LOG_TRACE = 5,
}

/// A log callback: called with the `userdata` given to `mtasts_set_log_callback()`, the
/// message's level, and the message (UTF-8, NUL-terminated, `message_len` bytes without the
/// NUL). The message is valid only during the call: copy it to keep it.
///
/// It may be called from any thread that calls into mtasts (and from the worker threads of
/// `mtasts_resolver_refresh()`), at the same time from several threads: it must be
/// thread-safe. Messages logged by mtasts calls made from inside the callback are dropped.
pub type mtasts_log_callback = Option<
    unsafe extern "C" fn(
        userdata: *mut c_void,
        level: mtasts_log_level,
        message: *const c_char,
        message_len: usize,
    ),
>;

/// The callback and its user data (a pointer kept as an integer so it can live in a static).
#[derive(Clone, Copy)]
struct Sink {
    callback: unsafe extern "C" fn(*mut c_void, mtasts_log_level, *const c_char, usize),
    userdata: usize,
}

static SINK: RwLock<Option<Sink>> = RwLock::new(None);

thread_local! {
    /// True while this thread is inside the callback (messages are then dropped).
    static IN_CALLBACK: Cell<bool> = const { Cell::new(false) };
}

struct HostLogger;

impl Log for HostLogger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) || IN_CALLBACK.try_with(Cell::get).unwrap_or(true) {
            return;
        }
        // Copied out, so the lock is not held while the host's code runs.
        let Some(sink) = *SINK.read().unwrap_or_else(|p| p.into_inner()) else {
            return;
        };
        let level = match record.level() {
            Level::Error => mtasts_log_level::MTASTS_LOG_ERROR,
            Level::Warn => mtasts_log_level::MTASTS_LOG_WARN,
            Level::Info => mtasts_log_level::MTASTS_LOG_INFO,
            Level::Debug => mtasts_log_level::MTASTS_LOG_DEBUG,
            Level::Trace => mtasts_log_level::MTASTS_LOG_TRACE,
        };
        // mtasts' own messages name their domain; those of the libraries inside get their
        // module as a prefix.
        let text = if record.target().starts_with("mtasts") {
            record.args().to_string()
        } else {
            format!("{}: {}", record.target(), record.args())
        };
        let message = CText::new(&text);
        let _ = IN_CALLBACK.try_with(|c| c.set(true));
        // SAFETY: the host registered this callback for exactly this signature; the message
        // is NUL-terminated and lives until the call returns.
        unsafe {
            (sink.callback)(
                sink.userdata as *mut c_void,
                level,
                message.ptr(),
                message.len(),
            );
        }
        let _ = IN_CALLBACK.try_with(|c| c.set(false));
    }

    fn flush(&self) {}
}

static LOGGER: HostLogger = HostLogger;

/// Installs this library's logger on first use. Fails only when something else in the
/// process already installed a `log` logger (possible only when the Rust crate is linked into
/// a Rust program, never through the C library).
fn install() -> Result<(), Failure> {
    static INSTALLED: OnceLock<bool> = OnceLock::new();
    if *INSTALLED.get_or_init(|| log::set_logger(&LOGGER).is_ok()) {
        Ok(())
    } else {
        Err(Failure::new(
            mtasts_result::MTASTS_CONFIG,
            "another logger is already installed in this process",
        ))
    }
}

/// Routes mtasts' log messages of `level` and more severe to `callback` (see
/// `mtasts_log_callback`); `callback` NULL (or `level` `MTASTS_LOG_OFF`) turns logging off,
/// which is the default. Replaces any earlier callback. `userdata` is passed to every call as
/// is; it must stay valid while the callback is installed.
///
/// Install the callback before making resolvers and before starting threads; messages logged
/// while it is being replaced go to the old or the new callback.
///
/// Ownership: `userdata` stays the caller's. NULL: `callback` and `userdata` may be NULL.
/// Returns `MTASTS_OK`, `MTASTS_INVALID_PARAMETER` (`level` is not an `mtasts_log_level`),
/// `MTASTS_CONFIG` (another logger was installed in the process by Rust code) or
/// `MTASTS_PANIC`. Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mtasts_set_log_callback(
    callback: mtasts_log_callback,
    userdata: *mut c_void,
    level: u32,
) -> mtasts_result {
    ffi_boundary!({
        let filter = match level {
            0 => LevelFilter::Off,
            1 => LevelFilter::Error,
            2 => LevelFilter::Warn,
            3 => LevelFilter::Info,
            4 => LevelFilter::Debug,
            5 => LevelFilter::Trace,
            other => {
                return Err(Failure::new(
                    mtasts_result::MTASTS_INVALID_PARAMETER,
                    format!("{other} is not an mtasts_log_level"),
                ));
            }
        };
        install()?;
        let sink = callback.map(|callback| Sink {
            callback,
            userdata: userdata as usize,
        });
        *SINK.write().unwrap_or_else(|p| p.into_inner()) = sink;
        log::set_max_level(if sink.is_some() {
            filter
        } else {
            LevelFilter::Off
        });
        Ok(())
    })
}
