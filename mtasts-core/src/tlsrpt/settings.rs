//! TLS reporting's own settings ([`TlsRptSettings`]): the `tlsrpt.*` keys of the settings
//! file, beside the resolver's keys ([`Config`](crate::Config)), so one file configures the
//! resolver and the recording of every face.
//!
//! | key | value | default |
//! |---|---|---|
//! | `tlsrpt.retention_days` | days a delivered (or abandoned) day's counts are kept after the day ended; 2 to 366 | 7 |
//!
//! The other readers of the file accept the `tlsrpt.*` keys and leave them alone.
//!
//! ```rust
//! let mut settings = mtasts_core::TlsRptSettings::default();
//! settings.load_str("cache = memory\ntlsrpt.retention_days = 30\n", "example")?;
//! assert_eq!(settings.retention.as_secs(), 30 * 86_400);
//! assert!(settings.set("tlsrpt.retention_dyas", "30").is_err(), "typos are errors");
//! # Ok::<(), mtasts_core::Error>(())
//! ```

use std::path::Path;
use std::time::Duration;

use super::store::{DEFAULT_RETENTION, check_retention};
use crate::config::{load_prefixed, read_settings_file, reason_of};
use crate::error::{Error, Result};

/// The prefix of TLS reporting's keys in the settings file.
pub const TLSRPT_PREFIX: &str = "tlsrpt.";

/// TLS reporting's keys, in the documented order.
pub const TLSRPT_SETTINGS: [&str; 1] = ["tlsrpt.retention_days"];

/// TLS reporting's settings (see the module docs for the keys).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct TlsRptSettings {
    /// How long a day's counts are kept once its report is delivered or abandoned, counted
    /// from the end of the day ([`ReportStore::prune`](crate::ReportStore::prune)); default
    /// [`DEFAULT_RETENTION`](crate::DEFAULT_RETENTION).
    pub retention: Duration,
}

impl Default for TlsRptSettings {
    fn default() -> TlsRptSettings {
        TlsRptSettings {
            retention: DEFAULT_RETENTION,
        }
    }
}

impl TlsRptSettings {
    /// Applies one `tlsrpt.*` setting.
    ///
    /// # Errors
    /// [`Error::Config`] naming the key, for an unknown key or a bad value; the settings are
    /// then unchanged.
    pub fn set(&mut self, key: &str, value: &str) -> Result<()> {
        let value = value.trim();
        let bad = |why: String| Error::Config {
            reason: format!("{key} = {value:?}: {why}"),
        };
        match key {
            "tlsrpt.retention_days" => {
                let days: u64 = value
                    .parse()
                    .map_err(|_| bad("expected a whole number of days".into()))?;
                let retention = Duration::from_secs(days.saturating_mul(86_400));
                check_retention(retention).map_err(|e| bad(reason_of(e)))?;
                self.retention = retention;
            }
            _ => {
                return Err(Error::Config {
                    reason: format!(
                        "unknown setting {key:?} (known: {})",
                        TLSRPT_SETTINGS.join(", ")
                    ),
                });
            }
        }
        Ok(())
    }

    /// Applies the `tlsrpt.*` lines of settings text (other keys are other readers');
    /// `origin` names the text in errors.
    ///
    /// # Errors
    /// [`Error::Config`] naming the origin and the line; the settings are then unchanged.
    pub fn load_str(&mut self, text: &str, origin: &str) -> Result<()> {
        let mut next = self.clone();
        load_prefixed(text, origin, TLSRPT_PREFIX, |key, value| {
            next.set(key, value)
        })?;
        *self = next;
        Ok(())
    }

    /// [`TlsRptSettings::load_str`] for the file at `path`.
    ///
    /// # Errors
    /// As [`TlsRptSettings::load_str`], and for a file that cannot be read.
    pub fn load_file(&mut self, path: impl AsRef<Path>) -> Result<()> {
        let (text, origin) = read_settings_file(path.as_ref())?;
        self.load_str(&text, &origin)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_read_and_mistakes_are_errors() {
        let mut s = TlsRptSettings::default();
        assert_eq!(s.retention, DEFAULT_RETENTION);
        s.set("tlsrpt.retention_days", " 2 ").unwrap();
        assert_eq!(s.retention, Duration::from_secs(2 * 86_400));
        for (key, value, says) in [
            ("tlsrpt.retention_days", "1", "at least 2"),
            ("tlsrpt.retention_days", "367", "at most 366"),
            ("tlsrpt.retention_days", "1.5", "whole number"),
            (
                "tlsrpt.retention_days",
                "99999999999999999999",
                "whole number",
            ),
            ("tlsrpt.retension_days", "7", "unknown setting"),
        ] {
            let before = s.clone();
            let e = s.set(key, value).unwrap_err();
            assert!(e.to_string().contains(says), "{key}={value}: {e}");
            assert_eq!(s, before);
        }
        let e = s
            .load_str("cache = memory\n\ntlsrpt.retention_days = x\n", "t.conf")
            .unwrap_err();
        assert!(
            e.to_string().contains("t.conf:3: tlsrpt.retention_days"),
            "{e}"
        );
    }
}
