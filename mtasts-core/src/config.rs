//! The settings of a resolver ([`Config`]), and the one settings format every face reads:
//! the `mtasts` command's `--config` file, the Exim module's file, `Resolver.from_config` in
//! Python and `mtasts_config_set` / `mtasts_config_load_file` in C.
//!
//! # The settings file
//!
//! One `key = value` per line; `#` starts a comment; blank lines are ignored; white space
//! around keys and values is ignored. An unknown key or a bad value is an error naming the
//! file, the line and the key (never silently ignored).
//!
//! | key | value | default |
//! |---|---|---|
//! | `cache` | `memory`, a SQLite file, `redis://HOST:PORT/DB`, or `FILE,redis://...` | `memory` |
//! | `nameserver` | `IP` or `IP:PORT`; repeatable; once given, only these are used | the system's resolv.conf |
//! | `trust_roots` | `system`, `bundled` or a PEM file | `system` |
//! | `fetch_timeout` | seconds for one policy fetch, all of it (R-FETCH-9) | 30 |
//! | `dns_timeout` | seconds for one DNS lookup | 10 |
//! | `recheck_interval` | seconds between TXT checks of a cached domain; 0: the record's TTL in [60, 3600] (R-CACHE-5) | 0 |
//! | `memory_entries` | most entries kept in this process's memory | 50000 |
//! | `log_level` | `off`, `error`, `warn`, `info` or `debug` (applied by the face's log sink) | `warn` |
//! | `policy_port` | tests only: fetch policies from this port | 443 |
//! | `smtpd.*` | the OpenSMTPD table backend's settings ([`SmtpdSettings`](crate::SmtpdSettings)); other faces ignore them | |
//! | `serve.*` | the policy server's settings ([`ServeSettings`](crate::ServeSettings)); other faces ignore them | |
//! | `tlsrpt.*` | TLS reporting's settings ([`TlsRptSettings`](crate::TlsRptSettings)); other readers ignore them | |
//!
//! ```rust
//! let mut config = mtasts_core::Config::default();
//! config.set("fetch_timeout", "10")?;
//! config.set("nameserver", "127.0.0.1")?;
//! assert!(config.set("fetch_timout", "10").is_err(), "typos are errors");
//! # Ok::<(), mtasts_core::Error>(())
//! ```

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use crate::cache::{CacheLocation, MEMORY_ENTRIES};
use crate::error::{Error, Result};
use crate::fetch::TrustRoots;
use crate::resolver::MAX_RECHECK;

/// How a [`Resolver`](crate::Resolver) reaches the network, and where it caches.
///
/// ```rust
/// use std::time::Duration;
/// let mut config = mtasts_core::Config::default();
/// config.nameservers = vec!["127.0.0.1:53".parse().unwrap()];
/// config.fetch_timeout = Duration::from_secs(10);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Config {
    /// DNS servers as `ip:port`. Empty (the default): the system's `/etc/resolv.conf`.
    pub nameservers: Vec<SocketAddr>,
    /// Trust roots for the policy host's certificate (default: the system store).
    pub trust_roots: TrustRoots,
    /// R-FETCH-9: the deadline of one policy fetch, all of it (default 30 s).
    pub fetch_timeout: Duration,
    /// The deadline of one DNS lookup (default 10 s).
    pub dns_timeout: Duration,
    /// R-CACHE-5: a fixed interval between TXT checks of a domain. `None` (the default): the
    /// TXT answer's TTL, clamped to [60 s, 3600 s].
    pub recheck_interval: Option<Duration>,
    /// **For tests only**: fetch policies from this port instead of 443 (see
    /// [`HttpsFetcher::with_port_override`](crate::HttpsFetcher::with_port_override)).
    pub policy_port: Option<u16>,
    /// Where the policy cache lives (default: this process's memory). MTAs should use a
    /// shared location (a SQLite file, Redis) so every process honours what one learnt
    /// (R-CACHE-7).
    pub cache: CacheLocation,
    /// The most entries this process keeps in memory (the whole cache for `memory`, the
    /// front layer of a shared cache otherwise); default [`MEMORY_ENTRIES`].
    pub memory_entries: usize,
    /// How much the face logs (the CLI's stderr, the C log callback, the Exim module);
    /// default [`LogLevel::Warn`]. The library itself always logs through `log`.
    pub log_level: LogLevel,
}

/// The longest deadline accepted for one fetch or one DNS lookup.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(600);

impl Config {
    /// Checks that every value is usable, so that no later arithmetic on it can overflow and
    /// no operation can wait for ever: deadlines in (0, [`MAX_TIMEOUT`]], a fixed recheck
    /// interval in (0, [`MAX_RECHECK`]] (a longer one would read as a forged entry, see
    /// [`Entry::clamped`](crate::Entry::clamped)), at least one memory entry.
    /// [`ResolverBuilder::build`](crate::ResolverBuilder::build) calls it.
    ///
    /// # Errors
    /// [`Error::Config`] naming the setting and its allowed range.
    pub fn validate(&self) -> Result<()> {
        check_duration("fetch_timeout", self.fetch_timeout, MAX_TIMEOUT)?;
        check_duration("dns_timeout", self.dns_timeout, MAX_TIMEOUT)?;
        if let Some(interval) = self.recheck_interval {
            check_duration("recheck_interval", interval, MAX_RECHECK)?;
        }
        if self.memory_entries == 0 {
            return Err(Error::Config {
                reason: "memory_entries must be at least 1".into(),
            });
        }
        Ok(())
    }
}

/// [`Error::Config`] unless `value` is in (0, `max`].
pub(crate) fn check_duration(name: &str, value: Duration, max: Duration) -> Result<()> {
    if value.is_zero() || value > max {
        return Err(Error::Config {
            reason: format!(
                "{name} {} s is out of range: it must be more than 0 and at most {} s",
                value.as_secs_f64(),
                max.as_secs()
            ),
        });
    }
    Ok(())
}

impl Default for Config {
    fn default() -> Config {
        Config {
            nameservers: Vec::new(),
            trust_roots: TrustRoots::System,
            fetch_timeout: Duration::from_secs(30),
            dns_timeout: Duration::from_secs(10),
            recheck_interval: None,
            policy_port: None,
            cache: CacheLocation::Memory,
            memory_entries: MEMORY_ENTRIES,
            log_level: LogLevel::Warn,
        }
    }
}

/// How much a face logs ([`Config::log_level`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum LogLevel {
    /// Nothing.
    Off,
    /// Errors only.
    Error,
    /// Errors and warnings (the default).
    #[default]
    Warn,
    /// Also informational messages (each fetch).
    Info,
    /// Everything.
    Debug,
}

impl LogLevel {
    /// `off`, `error`, `warn`, `info` or `debug`.
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Off => "off",
            LogLevel::Error => "error",
            LogLevel::Warn => "warn",
            LogLevel::Info => "info",
            LogLevel::Debug => "debug",
        }
    }

    /// The `log` crate's filter for this level.
    pub fn filter(self) -> log::LevelFilter {
        match self {
            LogLevel::Off => log::LevelFilter::Off,
            LogLevel::Error => log::LevelFilter::Error,
            LogLevel::Warn => log::LevelFilter::Warn,
            LogLevel::Info => log::LevelFilter::Info,
            LogLevel::Debug => log::LevelFilter::Debug,
        }
    }
}

/// The settings keys, in the documented order.
pub const SETTINGS: [&str; 9] = [
    "cache",
    "nameserver",
    "trust_roots",
    "fetch_timeout",
    "dns_timeout",
    "recheck_interval",
    "memory_entries",
    "log_level",
    "policy_port",
];

impl Config {
    /// Applies one setting of the settings file (see the module docs), checked as
    /// [`Config::validate`] checks it. `nameserver` adds a server; every other key replaces.
    ///
    /// # Errors
    /// [`Error::Config`] naming the key, for an unknown key or a bad value; the configuration
    /// is then unchanged.
    pub fn set(&mut self, key: &str, value: &str) -> Result<()> {
        let value = value.trim();
        let bad = |why: String| Error::Config {
            reason: format!("{key} = {value:?}: {why}"),
        };
        let seconds = |allow_zero: bool| parse_seconds(value, allow_zero).map_err(bad);
        let mut next = self.clone();
        match key {
            "cache" => next.cache = value.parse().map_err(|e: Error| bad(e.to_string()))?,
            "nameserver" => next.nameservers.push(parse_nameserver(value).map_err(bad)?),
            "trust_roots" => {
                if value.is_empty() {
                    return Err(bad("expected system, bundled or a PEM file".into()));
                }
                next.trust_roots = TrustRoots::from_setting(value);
            }
            "fetch_timeout" => next.fetch_timeout = seconds(false)?,
            "dns_timeout" => next.dns_timeout = seconds(false)?,
            "recheck_interval" => {
                let interval = seconds(true)?;
                next.recheck_interval = (!interval.is_zero()).then_some(interval);
            }
            "memory_entries" => {
                next.memory_entries = value
                    .parse()
                    .map_err(|_| bad("expected a whole number of entries".into()))?;
            }
            "log_level" => {
                next.log_level = [
                    LogLevel::Off,
                    LogLevel::Error,
                    LogLevel::Warn,
                    LogLevel::Info,
                    LogLevel::Debug,
                ]
                .into_iter()
                .find(|l| l.as_str() == value)
                .ok_or_else(|| bad("expected off, error, warn, info or debug".into()))?;
            }
            "policy_port" => {
                let port: u16 = value
                    .parse()
                    .map_err(|_| bad("expected a port number".into()))?;
                next.policy_port = (port != 443 && port != 0).then_some(port);
            }
            // The policy server's keys: checked by `ServeSettings`, which `mtasts serve` (and
            // its --check-config) reads from the same file.
            _ if key.starts_with(crate::serve_settings::SERVE_PREFIX) => return Ok(()),
            // The OpenSMTPD table backend's keys: checked by `SmtpdSettings`.
            _ if key.starts_with(crate::smtpd_table::SMTPD_PREFIX) => return Ok(()),
            // TLS reporting's keys: checked by `TlsRptSettings`.
            _ if key.starts_with(crate::tlsrpt::TLSRPT_PREFIX) => return Ok(()),
            _ => {
                return Err(Error::Config {
                    reason: format!("unknown setting {key:?} (known: {})", SETTINGS.join(", ")),
                });
            }
        }
        next.validate().map_err(|e| bad(e.to_string()))?;
        *self = next;
        Ok(())
    }

    /// Applies the settings file at `path` over this configuration (see the module docs).
    ///
    /// # Errors
    /// [`Error::Config`] naming the file and the line, for an unreadable file, a line that is
    /// not `key = value`, an unknown key or a bad value; the configuration is then unchanged.
    pub fn load_file(&mut self, path: impl AsRef<Path>) -> Result<()> {
        let (text, origin) = read_settings_file(path.as_ref())?;
        self.load_str(&text, &origin)
    }

    /// [`Config::load_file`] for settings text already read; `origin` names it in errors.
    ///
    /// # Errors
    /// As [`Config::load_file`].
    pub fn load_str(&mut self, text: &str, origin: &str) -> Result<()> {
        let mut next = self.clone();
        for (n, content, split) in setting_lines(text) {
            let at = |why: String| Error::Config {
                reason: format!("{origin}:{n}: {why}"),
            };
            let Some((key, value)) = split else {
                return Err(at(format!("expected `key = value`, not {content:?}")));
            };
            next.set(key, value).map_err(|e| at(reason_of(e)))?;
        }
        *self = next;
        Ok(())
    }

    /// The defaults with the settings file at `path` applied.
    ///
    /// # Errors
    /// As [`Config::load_file`].
    pub fn from_file(path: impl AsRef<Path>) -> Result<Config> {
        let mut config = Config::default();
        config.load_file(path)?;
        Ok(config)
    }
}

/// The reason text of a configuration error.
pub(crate) fn reason_of(e: Error) -> String {
    match e {
        Error::Config { reason } => reason,
        other => other.to_string(),
    }
}

/// The lines of settings text that hold something, comments removed: (line number from 1,
/// the content, and its `key = value` split with the key trimmed, when it has an `=`). What
/// every reader of the settings file ([`Config`], `ServeSettings`, `SmtpdSettings`) walks.
pub(crate) fn setting_lines(
    text: &str,
) -> impl Iterator<Item = (usize, &str, Option<(&str, &str)>)> {
    text.lines().enumerate().filter_map(|(n, line)| {
        let content = line.split('#').next().unwrap_or_default().trim();
        let split = content
            .split_once('=')
            .map(|(key, value)| (key.trim(), value));
        (!content.is_empty()).then_some((n + 1, content, split))
    })
}

/// The settings file at `path` and its name for error messages.
pub(crate) fn read_settings_file(path: &Path) -> Result<(String, String)> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::Config {
        reason: format!("cannot read {}: {e}", path.display()),
    })?;
    Ok((text, path.display().to_string()))
}

/// Applies, with `set`, the settings of `text` whose key starts with `prefix` (a face's own
/// keys: the others are [`Config`]'s, which reports their mistakes). An error names
/// `origin` and the line.
pub(crate) fn load_prefixed(
    text: &str,
    origin: &str,
    prefix: &str,
    mut set: impl FnMut(&str, &str) -> Result<()>,
) -> Result<()> {
    for (n, _, split) in setting_lines(text) {
        if let Some((key, value)) = split.filter(|(key, _)| key.starts_with(prefix)) {
            set(key, value).map_err(|e| Error::Config {
                reason: format!("{origin}:{n}: {}", reason_of(e)),
            })?;
        }
    }
    Ok(())
}

/// [`load_prefixed`] into a copy of `target` with `set`, which replaces `target` only when
/// every line applied: a face's settings are all or nothing.
pub(crate) fn load_section<T: Clone>(
    target: &mut T,
    text: &str,
    origin: &str,
    prefix: &str,
    set: impl Fn(&mut T, &str, &str) -> Result<()>,
) -> Result<()> {
    let mut next = target.clone();
    load_prefixed(text, origin, prefix, |key, value| {
        set(&mut next, key, value)
    })?;
    *target = next;
    Ok(())
}

/// `yes`/`true`/`on` or `no`/`false`/`off`, as the settings file writes a switch.
pub(crate) fn parse_yes_no(value: &str) -> std::result::Result<bool, String> {
    match value {
        "yes" | "true" | "on" => Ok(true),
        "no" | "false" | "off" => Ok(false),
        _ => Err("expected yes or no".into()),
    }
}

/// A number of seconds as the settings file writes it (fractions allowed; zero only when
/// `allow_zero`).
pub(crate) fn parse_seconds(
    value: &str,
    allow_zero: bool,
) -> std::result::Result<Duration, String> {
    let secs: f64 = value
        .parse()
        .map_err(|_| "expected a number of seconds".to_string())?;
    if !secs.is_finite() || secs < 0.0 || (secs == 0.0 && !allow_zero) {
        return Err("expected a positive number of seconds".into());
    }
    Duration::try_from_secs_f64(secs).map_err(|e| e.to_string())
}

/// `IP`, `IP:PORT` or `[IPv6]:PORT`; port 53 when none is given.
fn parse_nameserver(value: &str) -> std::result::Result<SocketAddr, String> {
    if let Ok(addr) = value.parse::<SocketAddr>() {
        return Ok(addr);
    }
    value
        .parse::<IpAddr>()
        .map(|ip| SocketAddr::new(ip, 53))
        .map_err(|_| "expected IP, IP:PORT or [IPv6]:PORT".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_setting_reads_and_typos_are_errors() {
        let mut c = Config::default();
        for (key, value) in [
            ("cache", "memory"),
            ("nameserver", "127.0.0.1"),
            ("nameserver", "[::1]:5353"),
            ("trust_roots", "bundled"),
            ("fetch_timeout", "2.5"),
            ("dns_timeout", "3"),
            ("recheck_interval", "120"),
            ("memory_entries", "1000"),
            ("log_level", "debug"),
            ("policy_port", "8443"),
        ] {
            c.set(key, value).unwrap_or_else(|e| panic!("{key}: {e}"));
        }
        assert_eq!(
            c.nameservers,
            vec![
                "127.0.0.1:53".parse::<SocketAddr>().unwrap(),
                "[::1]:5353".parse().unwrap()
            ]
        );
        assert_eq!(c.fetch_timeout, Duration::from_millis(2500));
        assert_eq!(c.recheck_interval, Some(Duration::from_secs(120)));
        assert_eq!(c.log_level, LogLevel::Debug);
        assert_eq!(c.policy_port, Some(8443));
        c.set("recheck_interval", "0").unwrap();
        assert_eq!(c.recheck_interval, None);
        for (key, value, says) in [
            ("fetch_timout", "1", "unknown setting"),
            ("fetch_timeout", "0", "positive"),
            ("fetch_timeout", "-1", "positive"),
            ("fetch_timeout", "1e19", "fetch_timeout"),
            ("fetch_timeout", "ten", "seconds"),
            ("recheck_interval", "86400", "recheck_interval"),
            ("nameserver", "dns.example", "IP"),
            ("cache", "ftp://x", "cache"),
            ("memory_entries", "0", "memory_entries"),
            ("log_level", "loud", "off, error"),
            ("policy_port", "70000", "port"),
        ] {
            let before = c.clone();
            let e = c.set(key, value).unwrap_err();
            assert!(e.to_string().contains(says), "{key}={value}: {e}");
            assert_eq!(c, before, "{key}={value}: unchanged after an error");
        }
    }

    #[test]
    fn files_name_the_line_of_a_problem() {
        let mut c = Config::default();
        c.load_str(
            "# mtasts\n\ncache = memory  # here\nnameserver=127.0.0.1:53\n  fetch_timeout = 5\n",
            "test.conf",
        )
        .unwrap();
        assert_eq!(c.fetch_timeout, Duration::from_secs(5));
        for (text, says) in [
            (
                "fetch_timeout = 5\nfetch_timout = 5\n",
                "test.conf:2: unknown setting",
            ),
            ("just words\n", "test.conf:1: expected `key = value`"),
            ("dns_timeout = 0\n", "test.conf:1: dns_timeout"),
        ] {
            let before = c.clone();
            let e = c.load_str(text, "test.conf").unwrap_err();
            assert!(e.to_string().contains(says), "{text:?}: {e}");
            assert_eq!(c, before, "a file with an error changes nothing");
        }
        let e = Config::from_file("/nonexistent/mtasts.conf").unwrap_err();
        assert!(
            e.to_string()
                .contains("cannot read /nonexistent/mtasts.conf"),
            "{e}"
        );
    }
}
