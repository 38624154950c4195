//! TLS reporting's own settings ([`TlsRptSettings`]): the `tlsrpt.*` keys of the settings
//! file, beside the resolver's keys ([`Config`](crate::Config)), so one file configures the
//! resolver and the recording of every face.
//!
//! | key | value | default |
//! |---|---|---|
//! | `tlsrpt.retention_days` | days a delivered (or abandoned) day's counts are kept after the day ended; 2 to 366 | 7 |
//! | `tlsrpt.collect_socket` | where `mtasts tlsrpt collect` receives libtlsrpt datagrams (an absolute path) | `/run/mtasts/tlsrpt.sock` |
//! | `tlsrpt.collect_socket_mode` | that socket's file mode, octal | `0660` |
//! | `tlsrpt.emit_socket` | send every recorded session as a libtlsrpt datagram to this collector socket (an absolute path) instead of storing it; empty: store | (empty) |
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

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::collector::{DEFAULT_COLLECT_SOCKET, DEFAULT_COLLECT_SOCKET_MODE};

use super::store::{DEFAULT_RETENTION, check_retention};
use crate::config::{load_prefixed, read_settings_file, reason_of};
use crate::error::{Error, Result};

/// The prefix of TLS reporting's keys in the settings file.
pub const TLSRPT_PREFIX: &str = "tlsrpt.";

/// TLS reporting's keys, in the documented order.
pub const TLSRPT_SETTINGS: [&str; 4] = [
    "tlsrpt.retention_days",
    "tlsrpt.collect_socket",
    "tlsrpt.collect_socket_mode",
    "tlsrpt.emit_socket",
];

/// TLS reporting's settings (see the module docs for the keys).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct TlsRptSettings {
    /// How long a day's counts are kept once its report is delivered or abandoned, counted
    /// from the end of the day ([`ReportStore::prune`](crate::ReportStore::prune)); default
    /// [`DEFAULT_RETENTION`](crate::DEFAULT_RETENTION).
    pub retention: Duration,
    /// Where `mtasts tlsrpt collect` binds its datagram socket; default
    /// [`DEFAULT_COLLECT_SOCKET`](crate::DEFAULT_COLLECT_SOCKET).
    pub collect_socket: PathBuf,
    /// The mode of that socket; default
    /// [`DEFAULT_COLLECT_SOCKET_MODE`](crate::DEFAULT_COLLECT_SOCKET_MODE).
    pub collect_socket_mode: u32,
    /// When set, [`Reporter::open`](crate::Reporter::open) sends each session as a libtlsrpt
    /// datagram to this collector socket ([`DatagramEmitter`](crate::DatagramEmitter))
    /// instead of storing it.
    pub emit_socket: Option<PathBuf>,
}

impl Default for TlsRptSettings {
    fn default() -> TlsRptSettings {
        TlsRptSettings {
            retention: DEFAULT_RETENTION,
            collect_socket: PathBuf::from(DEFAULT_COLLECT_SOCKET),
            collect_socket_mode: DEFAULT_COLLECT_SOCKET_MODE,
            emit_socket: None,
        }
    }
}

/// An absolute path (a Unix socket's: at most 107 bytes, `sun_path`).
fn socket_path(value: &str) -> std::result::Result<PathBuf, String> {
    let path = PathBuf::from(value);
    if !path.is_absolute() {
        return Err("expected an absolute path".into());
    }
    if value.len() > 107 {
        return Err(format!(
            "{} bytes is longer than a Unix socket path may be (107)",
            value.len()
        ));
    }
    Ok(path)
}

/// An octal file mode up to `0777`, e.g. `0660` or `660`.
pub(crate) fn parse_socket_mode(value: &str) -> std::result::Result<u32, String> {
    u32::from_str_radix(value, 8)
        .ok()
        .filter(|m| *m <= 0o777)
        .ok_or_else(|| "expected an octal file mode such as 0660".to_string())
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
            "tlsrpt.collect_socket" => self.collect_socket = socket_path(value).map_err(bad)?,
            "tlsrpt.collect_socket_mode" => {
                self.collect_socket_mode = parse_socket_mode(value).map_err(bad)?;
            }
            "tlsrpt.emit_socket" => {
                self.emit_socket = if value.is_empty() {
                    None
                } else {
                    Some(socket_path(value).map_err(bad)?)
                };
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
            ("tlsrpt.collect_socket", "tlsrpt.sock", "absolute path"),
            (
                "tlsrpt.collect_socket",
                &format!("/{}", "x".repeat(107)),
                "longer",
            ),
            ("tlsrpt.collect_socket_mode", "0999", "octal"),
            ("tlsrpt.collect_socket_mode", "1777", "octal"),
            ("tlsrpt.emit_socket", "run/x.sock", "absolute path"),
        ] {
            let before = s.clone();
            let e = s.set(key, value).unwrap_err();
            assert!(e.to_string().contains(says), "{key}={value}: {e}");
            assert_eq!(s, before);
        }
        s.load_str(
            "tlsrpt.collect_socket = /run/x.sock\ntlsrpt.collect_socket_mode = 600\n\
             tlsrpt.emit_socket = /run/tlsrpt/tlsrpt.sock\n",
            "t.conf",
        )
        .unwrap();
        assert_eq!(s.collect_socket, Path::new("/run/x.sock"));
        assert_eq!(s.collect_socket_mode, 0o600);
        assert_eq!(
            s.emit_socket.as_deref(),
            Some(Path::new("/run/tlsrpt/tlsrpt.sock"))
        );
        s.set("tlsrpt.emit_socket", "").unwrap();
        assert_eq!(s.emit_socket, None, "empty: store");
        let e = s
            .load_str("cache = memory\n\ntlsrpt.retention_days = x\n", "t.conf")
            .unwrap_err();
        assert!(
            e.to_string().contains("t.conf:3: tlsrpt.retention_days"),
            "{e}"
        );
    }
}
