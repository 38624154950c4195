//! The collector of libtlsrpt's datagrams (issue 15, item 3a): Postfix 3.10 and later, built
//! with sys4's libtlsrpt, send one datagram per delivery attempt to a Unix datagram socket;
//! [`Collector`] receives them there and records each of their sessions
//! ([`Datagram::sessions`]) through a [`Reporter`], into the store beside the policy cache.
//! A site running Postfix then needs no other reporting software.
//!
//! The loop is thin: reading, converting and counting are the core's pure functions; this
//! module adds the socket, the counters and the log lines.
//!
//! - **Hostile input.** A datagram that is not a valid libtlsrpt datagram (truncated, larger
//!   than [`MAX_DATAGRAM`], not UTF-8, not JSON, a wrong `dpv`, wrong types, an
//!   inconsistent policy) is refused: one log line (warning) naming why, one count under
//!   [`CollectorCounts::refused`], nothing recorded, and the collector goes on. Identical
//!   lines are rate-limited ([`LOG_REPEAT_WINDOW`]): the first is logged, repeats within the
//!   window are counted and summarised in one line when the window ends.
//! - **Store errors.** A datagram socket cannot push back: the sender was told its datagram
//!   was delivered when the kernel queued it. When the store cannot be written, the sessions
//!   are lost; the collector says so in one log line (error) with how many, and counts them
//!   ([`CollectorCounts::sessions_lost`]). It never drops a count silently.
//! - **Stopping.** [`Collector::run`] returns when the stop flag is set, within
//!   [`POLL_INTERVAL`]: the socket is read with that timeout.

use std::collections::{BTreeMap, HashMap};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use rustix::net::RecvFlags;

use super::datagram::{Datagram, DatagramError, MAX_DATAGRAM};
use super::reporter::Reporter;
use super::session::UtcDay;
use crate::clock::{Clock, SystemClock};
use crate::error::{Error, Result};

/// Where `mtasts tlsrpt collect` listens unless told otherwise (`tlsrpt.collect_socket`).
pub const DEFAULT_COLLECT_SOCKET: &str = "/run/mtasts/tlsrpt.sock";

/// The mode the socket gets unless told otherwise (`tlsrpt.collect_socket_mode`): owner and
/// group may send. Postfix's `smtp` processes run as `mail_owner` (`postfix`), so the socket's
/// group should be theirs (the systemd socket unit sets `SocketGroup=postfix`); any local
/// user who can send to the socket can add counts to the reports.
pub const DEFAULT_COLLECT_SOCKET_MODE: u32 = 0o660;

/// How long [`Collector::run`] waits for a datagram before it looks at the stop flag again.
pub const POLL_INTERVAL: Duration = Duration::from_millis(200);

/// How long [`Collector::run`] goes on reading the datagrams already queued once it is
/// told to stop.
pub const DRAIN_LIMIT: Duration = Duration::from_secs(1);

/// Identical log lines within this window after the first are counted, not logged; one
/// summary line says how many there were once the window has passed.
pub const LOG_REPEAT_WINDOW: Duration = Duration::from_secs(60);

/// The most distinct lines the rate limiter keeps track of at once.
const MAX_TRACKED_LINES: usize = 256;

/// What the collector has done since it started.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CollectorCounts {
    /// Datagrams received, whatever became of them.
    pub received: u64,
    /// Datagrams all of whose sessions were recorded.
    pub recorded: u64,
    /// Sessions recorded (a datagram holds one per policy).
    pub sessions: u64,
    /// Datagrams refused, by [`DatagramError::kind`] (e.g. `not-json`, `wrong-version`).
    pub refused: BTreeMap<&'static str, u64>,
    /// Datagrams of which at least one session could not be recorded (a store error).
    pub lost: u64,
    /// Sessions that could not be recorded (a store error): lost, and logged.
    pub sessions_lost: u64,
}

impl CollectorCounts {
    /// All refused datagrams, whatever the reason.
    pub fn refused_total(&self) -> u64 {
        self.refused.values().sum()
    }
}

/// What became of one datagram.
#[derive(Debug)]
#[non_exhaustive]
pub enum CollectOutcome {
    /// Every session was recorded.
    Recorded {
        /// How many.
        sessions: usize,
    },
    /// Not a valid datagram: nothing recorded.
    Refused(DatagramError),
    /// The store refused some sessions (`lost` of `sessions`); the others were recorded.
    Lost {
        /// Sessions in the datagram.
        sessions: usize,
        /// Sessions not recorded.
        lost: usize,
        /// The first store error.
        error: Error,
    },
}

/// Rate-limits identical log lines: the first of a kind is let through, repeats within
/// [`LOG_REPEAT_WINDOW`] are counted, and a summary is given once the window has passed.
/// Pure (time is passed in), so it is table-tested.
#[derive(Debug, Default)]
pub struct LogLimiter {
    /// line → (when it was last let through, repeats since then).
    lines: HashMap<String, (Instant, u64)>,
}

impl LogLimiter {
    /// A limiter that has seen nothing.
    pub fn new() -> LogLimiter {
        LogLimiter::default()
    }

    /// `Some(line)` when `line` should be logged at `now`, `None` when it repeats one logged
    /// less than [`LOG_REPEAT_WINDOW`] ago (then it is counted for the summary).
    pub fn admit(&mut self, line: &str, now: Instant) -> Option<String> {
        if let Some((since, repeats)) = self.lines.get_mut(line) {
            if now.duration_since(*since) < LOG_REPEAT_WINDOW {
                *repeats += 1;
                return None;
            }
            let summary = (*repeats > 0).then(|| repeated(line, *repeats));
            *since = now;
            *repeats = 0;
            return Some(match summary {
                Some(s) => format!("{line} ({s})"),
                None => line.to_string(),
            });
        }
        if self.lines.len() >= MAX_TRACKED_LINES {
            // Forget the lines without repeats first; a line forgotten is logged again the
            // next time, which is the safe side.
            self.lines.retain(|_, (_, repeats)| *repeats > 0);
            if self.lines.len() >= MAX_TRACKED_LINES {
                self.lines.clear();
            }
        }
        self.lines.insert(line.to_string(), (now, 0));
        Some(line.to_string())
    }

    /// The summaries due at `now`: one per line whose window has passed with repeats
    /// (`... repeated N more times in 60 s`); those lines are forgotten. With `all`, every
    /// pending summary (when the collector stops).
    pub fn due(&mut self, now: Instant, all: bool) -> Vec<String> {
        let mut out = Vec::new();
        self.lines.retain(|line, (since, repeats)| {
            let passed = now.duration_since(*since) >= LOG_REPEAT_WINDOW;
            if *repeats > 0 && (passed || all) {
                out.push(format!("{line} ({})", repeated(line, *repeats)));
                return false;
            }
            !passed
        });
        out.sort();
        out
    }
}

fn repeated(_line: &str, repeats: u64) -> String {
    format!(
        "and {repeats} more like it in {} s",
        LOG_REPEAT_WINDOW.as_secs()
    )
}

/// Receives libtlsrpt datagrams on a Unix datagram socket and records them (see the module
/// docs). Shareable between threads: [`Collector::counts`] may be read while another thread
/// runs [`Collector::run`].
#[derive(Debug)]
pub struct Collector {
    socket: UnixDatagram,
    /// The path bound, with the socket file's (device, inode), so that dropping removes it
    /// only if it is still this collector's.
    path: Option<(PathBuf, (u64, u64))>,
    reporter: Reporter,
    clock: Arc<dyn Clock>,
    counts: Mutex<CollectorCounts>,
    limiter: Mutex<LogLimiter>,
}

impl Collector {
    /// Binds the socket at `path` with file mode `mode` (e.g. `0o660`). A socket left at the
    /// path by an earlier run is replaced; anything else there is refused, never removed.
    ///
    /// # Errors
    /// [`Error::Config`] naming the path: something that is not a socket is there, the old
    /// socket cannot be removed, or the socket cannot be bound or given its mode.
    pub fn bind(path: &Path, mode: u32, reporter: Reporter) -> Result<Collector> {
        let bad = |why: String| Error::Config {
            reason: format!("cannot listen on {}: {why}", path.display()),
        };
        if let Ok(meta) = std::fs::symlink_metadata(path) {
            if !meta.file_type().is_socket() {
                return Err(bad(
                    "something that is not a socket is at that path: move it \
                     away, or listen elsewhere"
                        .into(),
                ));
            }
            std::fs::remove_file(path)
                .map_err(|e| bad(format!("cannot remove the socket an earlier run left: {e}")))?;
        }
        let socket = UnixDatagram::bind(path).map_err(|e| bad(e.to_string()))?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
            .map_err(|e| bad(format!("cannot set its mode {mode:o}: {e}")))?;
        let mut collector = Collector::from_socket(socket, reporter)?;
        collector.path = file_id(path).map(|id| (path.to_path_buf(), id));
        Ok(collector)
    }

    /// A collector on a socket bound already (e.g. handed over by systemd's socket
    /// activation).
    ///
    /// # Errors
    /// [`Error::Config`] when the socket's read timeout cannot be set.
    pub fn from_socket(socket: UnixDatagram, reporter: Reporter) -> Result<Collector> {
        socket
            .set_read_timeout(Some(POLL_INTERVAL))
            .map_err(|e| Error::Config {
                reason: format!("cannot set the collector socket's timeout: {e}"),
            })?;
        Ok(Collector {
            socket,
            path: None,
            reporter,
            clock: Arc::new(SystemClock),
            counts: Mutex::new(CollectorCounts::default()),
            limiter: Mutex::new(LogLimiter::new()),
        })
    }

    /// The clock whose UTC day datagrams are counted on (tests move it).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Collector {
        self.clock = clock;
        self
    }

    /// The path the socket was bound to by [`Collector::bind`].
    pub fn path(&self) -> Option<&Path> {
        self.path.as_ref().map(|(p, _)| p.as_path())
    }

    /// The counts so far.
    pub fn counts(&self) -> CollectorCounts {
        self.counts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Receives and records datagrams until `stop` is set (looked at every
    /// [`POLL_INTERVAL`]); then records those already queued (for at most
    /// [`DRAIN_LIMIT`]) and logs the pending summaries of repeated lines.
    ///
    /// # Errors
    /// [`Error::Config`] when the socket itself fails (not for any datagram: those are
    /// refused or recorded, and the loop goes on).
    pub fn run(&self, stop: &AtomicBool) -> Result<()> {
        let mut buf = vec![0u8; MAX_DATAGRAM + 1];
        while !stop.load(Ordering::Relaxed) {
            self.receive(&mut buf)?;
            self.log_due(false);
        }
        // What senders queued before the stop is still recorded (for at most DRAIN_LIMIT):
        // once the socket is gone, nobody would read it.
        let drained = self.socket.set_nonblocking(true).is_ok();
        let until = Instant::now() + DRAIN_LIMIT;
        while drained && Instant::now() < until && self.receive(&mut buf)?.is_some() {}
        let _ = self.socket.set_nonblocking(false);
        self.log_due(true);
        Ok(())
    }

    /// Receives one datagram, waiting at most [`POLL_INTERVAL`], and handles it; `None`
    /// when none came. `buf` must hold more than [`MAX_DATAGRAM`] bytes.
    ///
    /// # Errors
    /// As [`Collector::run`].
    pub fn receive(&self, buf: &mut [u8]) -> Result<Option<CollectOutcome>> {
        debug_assert!(buf.len() > MAX_DATAGRAM);
        // MSG_TRUNC: the kernel returns the datagram's real length even when it is longer
        // than the buffer, so an oversized datagram is refused with its size, never read
        // as a truncated one.
        match rustix::net::recv(&self.socket, &mut *buf, RecvFlags::TRUNC) {
            Ok((_, size)) => {
                let bytes = &buf[..size.min(buf.len())];
                Ok(Some(self.handle_sized(bytes, size)))
            }
            Err(e) if e == rustix::io::Errno::AGAIN || e == rustix::io::Errno::INTR => Ok(None),
            Err(e) => Err(Error::Config {
                reason: format!(
                    "the collector socket cannot be read: {}",
                    std::io::Error::from(e)
                ),
            }),
        }
    }

    /// Handles one datagram's bytes as received: parses it, records its sessions, counts and
    /// logs what happened (see the module docs).
    pub fn handle(&self, bytes: &[u8]) -> CollectOutcome {
        self.handle_sized(bytes, bytes.len())
    }

    fn handle_sized(&self, bytes: &[u8], size: usize) -> CollectOutcome {
        let day = UtcDay::of(self.clock.now());
        let parsed = if size > MAX_DATAGRAM {
            Err(DatagramError::TooLarge {
                size,
                limit: MAX_DATAGRAM,
            })
        } else {
            Datagram::parse(bytes).and_then(|d| d.sessions(day))
        };
        let outcome = match parsed {
            Err(e) => CollectOutcome::Refused(e),
            Ok(sessions) => {
                let mut first_error = None;
                let mut lost = 0;
                for session in &sessions {
                    if let Err(e) = self.reporter.record(session) {
                        lost += 1;
                        first_error.get_or_insert(e);
                    }
                }
                match first_error {
                    None => CollectOutcome::Recorded {
                        sessions: sessions.len(),
                    },
                    Some(error) => CollectOutcome::Lost {
                        sessions: sessions.len(),
                        lost,
                        error,
                    },
                }
            }
        };
        self.count(&outcome);
        match &outcome {
            CollectOutcome::Recorded { .. } => {}
            CollectOutcome::Refused(e) => {
                self.log(
                    log::Level::Warn,
                    format!("tlsrpt collect: refused a datagram of {size} bytes: {e}"),
                );
            }
            CollectOutcome::Lost {
                sessions,
                lost,
                error,
            } => self.log(
                log::Level::Error,
                format!(
                    "tlsrpt collect: {lost} of {sessions} sessions of a datagram lost (the \
                     store cannot be written; the sender cannot be told to resend): {error}"
                ),
            ),
        }
        outcome
    }

    fn count(&self, outcome: &CollectOutcome) {
        let mut c = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        c.received += 1;
        match outcome {
            CollectOutcome::Recorded { sessions } => {
                c.recorded += 1;
                c.sessions += *sessions as u64;
            }
            CollectOutcome::Refused(e) => *c.refused.entry(e.kind()).or_default() += 1,
            CollectOutcome::Lost { sessions, lost, .. } => {
                c.lost += 1;
                c.sessions += (*sessions - *lost) as u64;
                c.sessions_lost += *lost as u64;
            }
        }
    }

    fn log(&self, level: log::Level, line: String) {
        let admitted = self
            .limiter
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .admit(&line, Instant::now());
        if let Some(line) = admitted {
            log::log!(level, "{line}");
        }
    }

    fn log_due(&self, all: bool) {
        let due = self
            .limiter
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .due(Instant::now(), all);
        for line in due {
            log::warn!("{line}");
        }
    }
}

/// The (device, inode) of the file at `path`.
fn file_id(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::symlink_metadata(path)
        .ok()
        .map(|m| (m.dev(), m.ino()))
}

impl Drop for Collector {
    /// Removes the socket [`Collector::bind`] made, so no sender queues datagrams nobody
    /// reads.
    fn drop(&mut self) {
        if let Some((path, id)) = &self.path
            && file_id(path) == Some(*id)
        {
            let _ = std::fs::remove_file(path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_lines_are_logged_once_per_window_and_summarised() {
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let mut l = LogLimiter::new();
        assert_eq!(l.admit("a", at(0)).as_deref(), Some("a"));
        assert_eq!(l.admit("b", at(1)).as_deref(), Some("b"), "another line");
        assert_eq!(l.admit("a", at(2)), None);
        assert_eq!(l.admit("a", at(59)), None);
        assert!(l.due(at(30), false).is_empty(), "window not over");
        assert_eq!(
            l.admit("a", at(60)).as_deref(),
            Some("a (and 2 more like it in 60 s)")
        );
        assert_eq!(l.admit("a", at(61)), None);
        assert_eq!(
            l.due(at(125), false),
            ["a (and 1 more like it in 60 s)"],
            "the summary comes once the window has passed"
        );
        assert!(l.due(at(200), false).is_empty(), "and only once");
        assert_eq!(l.admit("a", at(201)).as_deref(), Some("a"), "forgotten");
        assert_eq!(l.admit("a", at(202)), None);
        assert_eq!(l.due(at(203), true), ["a (and 1 more like it in 60 s)"]);
        // Many distinct lines: each is logged, the tracking stays bounded.
        for i in 0..(MAX_TRACKED_LINES * 3) {
            assert!(l.admit(&format!("line {i}"), at(300)).is_some());
        }
        assert!(l.lines.len() <= MAX_TRACKED_LINES);
    }
}
