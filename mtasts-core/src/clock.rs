//! Time, injected: the engine asks a [`Clock`] so tests can move time (R-CACHE-1, R-FETCH-10).

use std::fmt::Debug;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A source of wall-clock time.
///
/// Policy expiry, recheck intervals and fetch backoff are all wall-clock instants, because
/// they are stored in a cache shared between processes and hosts.
pub trait Clock: Send + Sync + Debug {
    /// The current time.
    fn now(&self) -> SystemTime;
}

/// The system's clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// A clock that only moves when told to: for tests of expiry, recheck and backoff.
///
/// ```rust
/// use std::time::{Duration, UNIX_EPOCH};
/// use mtasts_core::{Clock, ManualClock};
///
/// let clock = ManualClock::new(UNIX_EPOCH + Duration::from_secs(1_700_000_000));
/// clock.advance(Duration::from_secs(86_401));
/// assert_eq!(clock.now(), UNIX_EPOCH + Duration::from_secs(1_700_086_401));
/// ```
#[derive(Debug)]
pub struct ManualClock {
    now: Mutex<SystemTime>,
}

impl ManualClock {
    /// A clock standing at `start`.
    pub fn new(start: SystemTime) -> ManualClock {
        ManualClock {
            now: Mutex::new(start),
        }
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        let mut now = self.now.lock().unwrap_or_else(|p| p.into_inner());
        *now += by;
    }

    /// Sets the clock to `to` (which may be in the past).
    pub fn set(&self, to: SystemTime) {
        *self.now.lock().unwrap_or_else(|p| p.into_inner()) = to;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> SystemTime {
        *self.now.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Formats `t` as an RFC 3339 UTC timestamp with whole seconds, e.g. `2026-11-22T11:21:23Z`
/// (proleptic Gregorian calendar; times before 1970 print as 1970-01-01T00:00:00Z).
///
/// The latest time mtasts accepts from a caller: 9999-12-31T23:59:59Z.
pub const MAX_UNIX_SECONDS: u64 = 253_402_300_799;

/// The instant `secs` seconds after the Unix epoch, as callers of the C ABI and the command
/// give times.
///
/// # Errors
/// [`Error::Config`](crate::Error::Config) for a time after [`MAX_UNIX_SECONDS`] (which
/// would otherwise overflow the arithmetic done on it).
///
/// ```rust
/// assert!(mtasts_core::from_unix_seconds(951_782_400).is_ok());
/// assert!(mtasts_core::from_unix_seconds(u64::MAX).is_err());
/// ```
pub fn from_unix_seconds(secs: u64) -> crate::Result<SystemTime> {
    if secs > MAX_UNIX_SECONDS {
        return Err(crate::Error::Config {
            reason: format!(
                "time {secs} (seconds since 1970) is out of range: at most {MAX_UNIX_SECONDS} \
                 (9999-12-31T23:59:59Z)"
            ),
        });
    }
    Ok(UNIX_EPOCH + std::time::Duration::from_secs(secs))
}

/// ```rust
/// use std::time::{Duration, UNIX_EPOCH};
/// assert_eq!(
///     mtasts_core::rfc3339(UNIX_EPOCH + Duration::from_secs(951_782_400)),
///     "2000-02-29T00:00:00Z"
/// );
/// ```
pub fn rfc3339(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from a day count since 1970-01-01 (H. Hinnant's algorithm).
    let z = i64::try_from(days).unwrap_or(i64::MAX / 2) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_formats_utc() {
        let at = |s| rfc3339(UNIX_EPOCH + Duration::from_secs(s));
        assert_eq!(at(0), "1970-01-01T00:00:00Z");
        assert_eq!(at(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(at(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(at(4_102_444_799), "2099-12-31T23:59:59Z");
        assert_eq!(
            rfc3339(UNIX_EPOCH - Duration::from_secs(5)),
            "1970-01-01T00:00:00Z"
        );
    }
}
