//! The policy server's own settings ([`ServeSettings`]): the `serve.*` keys of the settings
//! file, beside the resolver's keys ([`Config`](crate::Config)), so one file configures the
//! Exim module, `mtasts refresh` and `mtasts serve` alike.
//!
//! | key | value | default |
//! |---|---|---|
//! | `serve.listen` | `unix:PATH` or `tcp:IP:PORT`; repeatable | none (systemd's sockets, or `--listen`) |
//! | `serve.socket_mode` | the Unix socket's permissions, octal | `0660` |
//! | `serve.socket_owner` | `USER[:GROUP]` (names or numbers) owning the Unix socket | the server's user |
//! | `serve.user` | `USER[:GROUP]` to run as once the sockets are open | not changed |
//! | `serve.max_connections` | client connections served at once | 512 |
//! | `serve.event_loops` | event-loop threads serving the connections; `auto`: one per CPU the process may run on | `auto` |
//! | `serve.client_timeout` | seconds a client may take to send a request | 300 |
//! | `serve.answer_timeout` | seconds within which every request is answered (`TEMP` then) | 30 |
//! | `serve.refresh_interval` | seconds between background refresh runs; 0 turns them off | 3600 |
//! | `serve.metrics` | `IP:PORT` on loopback for the Prometheus metrics; `off` | `off` |
//! | `serve.log` | `stderr` or `syslog` | `stderr` |
//! | `serve.syslog_socket` | the syslog daemon's socket | `/dev/log` |
//! | `serve.dane` | `auto`, `only` or `off`: DANE for map names without their own | `auto` |
//! | `serve.map.NAME.strict_testing` | `yes` / `no`: answer `testing` as `enforce` | `no` |
//! | `serve.map.NAME.tlsrpt` | `yes` / `no`: Postfix 3.10 TLSRPT attributes | `no` |
//! | `serve.map.NAME.sni` | `yes` / `no`: `servername=hostname` | `yes` |
//! | `serve.map.NAME.dane` | `auto`, `only` or `off` | `serve.dane` |
//!
//! The other faces accept the `serve.*` keys and leave them alone; `mtasts serve
//! --check-config` checks them.
//!
//! ```rust
//! let mut settings = mtasts_core::ServeSettings::default();
//! settings.load_str("serve.listen = unix:/run/mtasts/socketmap.sock\n\
//!                    serve.map.strict.strict_testing = yes\n", "example")?;
//! assert!(settings.options("strict").strict_testing);
//! assert!(!settings.options("postfix").strict_testing);
//! assert!(settings.set("serve.lisen", "tcp:127.0.0.1:1").is_err(), "typos are errors");
//! # Ok::<(), mtasts_core::Error>(())
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use crate::config::{parse_seconds, parse_yes_no, read_settings_file, reason_of};
use crate::error::{Error, Result};
use crate::socketmap::{DaneMode, MapOptions};

/// The prefix of the server's keys in the settings file.
pub const SERVE_PREFIX: &str = "serve.";

/// The most connections `serve.max_connections` may ask for.
pub const MAX_CONNECTIONS_LIMIT: usize = 65_536;
/// The most event loops `serve.event_loops` may ask for.
pub const MAX_EVENT_LOOPS: usize = 64;
/// The longest `serve.answer_timeout`: Postfix's socketmap client gives up after 100 s (its
/// built-in timeout), and every answer must come well before that.
pub const MAX_ANSWER_TIMEOUT: Duration = Duration::from_secs(90);

/// Where the server listens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Listen {
    /// A Unix stream socket at this path (Postfix's `socketmap:unix:PATH:NAME`).
    Unix(PathBuf),
    /// A TCP socket (Postfix's `socketmap:inet:HOST:PORT:NAME`).
    Tcp(SocketAddr),
}

impl FromStr for Listen {
    type Err = Error;

    fn from_str(spec: &str) -> Result<Listen> {
        let bad = |why: &str| Error::Config {
            reason: format!("{spec:?}: {why}"),
        };
        if let Some(path) = spec.strip_prefix("unix:") {
            if path.is_empty() {
                return Err(bad("expected unix:PATH"));
            }
            return Ok(Listen::Unix(PathBuf::from(path)));
        }
        if let Some(addr) = spec.strip_prefix("tcp:") {
            return addr
                .parse()
                .map(Listen::Tcp)
                .map_err(|_| bad("expected tcp:IP:PORT"));
        }
        Err(bad("expected unix:PATH or tcp:IP:PORT"))
    }
}

impl fmt::Display for Listen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Listen::Unix(path) => write!(f, "unix:{}", path.display()),
            Listen::Tcp(addr) => write!(f, "tcp:{addr}"),
        }
    }
}

/// Where the server's log lines go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum LogTarget {
    /// Standard error (systemd's journal takes it from there).
    Stderr,
    /// The local syslog daemon (`/dev/log`), facility `mail`.
    Syslog,
}

/// One map name's settings as written; unset ones come from the defaults.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct MapOverrides {
    strict_testing: Option<bool>,
    tlsrpt: Option<bool>,
    sni: Option<bool>,
    dane: Option<DaneMode>,
}

/// The policy server's settings (see the module docs for the keys).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServeSettings {
    /// The listeners (`serve.listen`).
    pub listen: Vec<Listen>,
    /// The Unix socket's permissions (`serve.socket_mode`).
    pub socket_mode: u32,
    /// `USER[:GROUP]` owning the Unix socket (`serve.socket_owner`).
    pub socket_owner: Option<String>,
    /// `USER[:GROUP]` to run as after binding (`serve.user`).
    pub user: Option<String>,
    /// Client connections served at once (`serve.max_connections`).
    pub max_connections: usize,
    /// Event-loop threads serving the connections (`serve.event_loops`); `None` for one per
    /// CPU the process may run on ([`ServeSettings::event_loop_count`]).
    pub event_loops: Option<usize>,
    /// How long a client may take to send a request (`serve.client_timeout`).
    pub client_timeout: Duration,
    /// Every request is answered within this (`serve.answer_timeout`), with `TEMP` if the
    /// resolution is not done; the resolution goes on and caches what it finds.
    pub answer_timeout: Duration,
    /// The pause between background refresh runs (`serve.refresh_interval`); `None`: off.
    pub refresh_interval: Option<Duration>,
    /// The metrics listener (`serve.metrics`), on loopback only.
    pub metrics: Option<SocketAddr>,
    /// Where log lines go (`serve.log`).
    pub log: LogTarget,
    /// The syslog daemon's datagram socket (`serve.syslog_socket`).
    pub syslog_socket: PathBuf,
    /// DANE for map names without a `serve.map.NAME.dane` (`serve.dane`).
    pub dane: DaneMode,
    maps: BTreeMap<String, MapOverrides>,
}

impl Default for ServeSettings {
    fn default() -> ServeSettings {
        ServeSettings {
            listen: Vec::new(),
            socket_mode: 0o660,
            socket_owner: None,
            user: None,
            max_connections: 512,
            event_loops: None,
            client_timeout: Duration::from_secs(300),
            answer_timeout: Duration::from_secs(30),
            refresh_interval: Some(Duration::from_secs(3600)),
            metrics: None,
            log: LogTarget::Stderr,
            syslog_socket: PathBuf::from("/dev/log"),
            dane: DaneMode::Auto,
            maps: BTreeMap::new(),
        }
    }
}

/// The server's keys, for error messages (`NAME` stands for a map name).
pub const SERVE_SETTINGS: &[&str] = &[
    "serve.listen",
    "serve.socket_mode",
    "serve.socket_owner",
    "serve.user",
    "serve.max_connections",
    "serve.event_loops",
    "serve.client_timeout",
    "serve.answer_timeout",
    "serve.refresh_interval",
    "serve.metrics",
    "serve.log",
    "serve.syslog_socket",
    "serve.dane",
    "serve.map.NAME.strict_testing",
    "serve.map.NAME.tlsrpt",
    "serve.map.NAME.sni",
    "serve.map.NAME.dane",
];

impl ServeSettings {
    /// The event loops to start: `serve.event_loops`, or one per CPU this process may run on
    /// (its affinity mask, as `taskset` or systemd's `CPUAffinity=` set it).
    pub fn event_loop_count(&self) -> usize {
        self.event_loops.unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map_or(1, std::num::NonZero::get)
                .min(MAX_EVENT_LOOPS)
        })
    }

    /// The options of map name `map`: its own settings over the defaults.
    pub fn options(&self, map: &str) -> MapOptions {
        let mut options = MapOptions::new();
        options.dane = self.dane;
        if let Some(own) = self.maps.get(map) {
            options.strict_testing = own.strict_testing.unwrap_or(options.strict_testing);
            options.tlsrpt = own.tlsrpt.unwrap_or(options.tlsrpt);
            options.sni = own.sni.unwrap_or(options.sni);
            options.dane = own.dane.unwrap_or(options.dane);
        }
        options
    }

    /// The map names that have settings of their own.
    pub fn map_names(&self) -> impl Iterator<Item = &str> {
        self.maps.keys().map(String::as_str)
    }

    /// Applies one `serve.*` setting. `serve.listen` adds a listener; every other key
    /// replaces.
    ///
    /// # Errors
    /// [`Error::Config`] naming the key, for an unknown key or a bad value; the settings are
    /// then unchanged.
    pub fn set(&mut self, key: &str, value: &str) -> Result<()> {
        let value = value.trim();
        let bad = |why: &str| Error::Config {
            reason: format!("{key} = {value:?}: {why}"),
        };
        let seconds = |allow_zero: bool, max: Duration| -> Result<Duration> {
            let duration = parse_seconds(value, allow_zero).map_err(|e| bad(&e))?;
            if duration > max {
                return Err(bad(&format!("at most {} seconds", max.as_secs())));
            }
            Ok(duration)
        };
        let yes_no = || parse_yes_no(value).map_err(|e| bad(&e));
        let dane = || match value {
            "auto" => Ok(DaneMode::Auto),
            "only" => Ok(DaneMode::Only),
            "off" => Ok(DaneMode::Off),
            _ => Err(bad("expected auto, only or off")),
        };
        let user = || {
            let valid = |part: &str| {
                !part.is_empty()
                    && part
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b))
            };
            let (name, group) = value.split_once(':').unwrap_or((value, "x"));
            if valid(name) && valid(group) {
                Ok(Some(value.to_string()))
            } else {
                Err(bad("expected USER or USER:GROUP"))
            }
        };
        let mut next = self.clone();
        match key {
            "serve.listen" => next
                .listen
                .push(value.parse().map_err(|e| bad(&reason_of(e)))?),
            "serve.socket_mode" => {
                next.socket_mode = u32::from_str_radix(value, 8)
                    .ok()
                    .filter(|m| *m <= 0o777)
                    .ok_or_else(|| bad("expected an octal mode such as 0660"))?;
            }
            "serve.socket_owner" => next.socket_owner = user()?,
            "serve.user" => next.user = user()?,
            "serve.event_loops" => {
                next.event_loops = match value {
                    "auto" => None,
                    _ => Some(
                        value
                            .parse()
                            .ok()
                            .filter(|n| (1..=MAX_EVENT_LOOPS).contains(n))
                            .ok_or_else(|| {
                                bad(&format!(
                                    "expected auto or a number from 1 to {MAX_EVENT_LOOPS}"
                                ))
                            })?,
                    ),
                };
            }
            "serve.max_connections" => {
                next.max_connections = value
                    .parse()
                    .ok()
                    .filter(|n| (1..=MAX_CONNECTIONS_LIMIT).contains(n))
                    .ok_or_else(|| {
                        bad(&format!(
                            "expected a number of connections from 1 to {MAX_CONNECTIONS_LIMIT}"
                        ))
                    })?;
            }
            "serve.client_timeout" => {
                next.client_timeout = seconds(false, Duration::from_secs(3600))?;
            }
            "serve.answer_timeout" => next.answer_timeout = seconds(false, MAX_ANSWER_TIMEOUT)?,
            "serve.refresh_interval" => {
                let interval = seconds(true, Duration::from_secs(86_400))?;
                next.refresh_interval = (!interval.is_zero()).then_some(interval);
            }
            "serve.metrics" => {
                next.metrics = if value == "off" {
                    None
                } else {
                    let addr: SocketAddr = value
                        .parse()
                        .map_err(|_| bad("expected IP:PORT on loopback, or off"))?;
                    // The counters tell which domains are being mailed: loopback only.
                    if !addr.ip().is_loopback() {
                        return Err(bad("the metrics listener must be on a loopback address"));
                    }
                    Some(addr)
                };
            }
            "serve.log" => {
                next.log = match value {
                    "stderr" => LogTarget::Stderr,
                    "syslog" => LogTarget::Syslog,
                    _ => return Err(bad("expected stderr or syslog")),
                };
            }
            "serve.syslog_socket" => {
                if !value.starts_with('/') {
                    return Err(bad("expected an absolute path"));
                }
                next.syslog_socket = PathBuf::from(value);
            }
            "serve.dane" => next.dane = dane()?,
            _ => {
                let Some((map, option)) = key
                    .strip_prefix("serve.map.")
                    .and_then(|rest| rest.rsplit_once('.'))
                    .filter(|(map, _)| !map.is_empty() && !map.contains(char::is_whitespace))
                else {
                    return Err(Error::Config {
                        reason: format!(
                            "unknown setting {key:?} (known: {})",
                            SERVE_SETTINGS.join(", ")
                        ),
                    });
                };
                let own = next.maps.entry(map.to_string()).or_default();
                match option {
                    "strict_testing" => own.strict_testing = Some(yes_no()?),
                    "tlsrpt" => own.tlsrpt = Some(yes_no()?),
                    "sni" => own.sni = Some(yes_no()?),
                    "dane" => own.dane = Some(dane()?),
                    _ => {
                        return Err(Error::Config {
                            reason: format!(
                                "unknown setting {key:?} (a map name takes strict_testing, \
                                 tlsrpt, sni and dane)"
                            ),
                        });
                    }
                }
            }
        }
        *self = next;
        Ok(())
    }

    /// Applies the `serve.*` lines of settings text (other keys are the resolver's, read by
    /// [`Config::load_str`](crate::Config::load_str)); `origin` names the text in errors.
    ///
    /// # Errors
    /// [`Error::Config`] naming the origin and the line; the settings are then unchanged.
    pub fn load_str(&mut self, text: &str, origin: &str) -> Result<()> {
        crate::config::load_section(self, text, origin, SERVE_PREFIX, ServeSettings::set)
    }

    /// [`ServeSettings::load_str`] for the file at `path`.
    ///
    /// # Errors
    /// As [`ServeSettings::load_str`], and for a file that cannot be read.
    pub fn load_file(&mut self, path: impl AsRef<Path>) -> Result<()> {
        let (text, origin) = read_settings_file(path.as_ref())?;
        self.load_str(&text, &origin)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_reads_and_mistakes_are_errors() {
        let mut s = ServeSettings::default();
        let good = [
            ("serve.listen", "unix:/run/mtasts/socketmap.sock"),
            ("serve.listen", "tcp:127.0.0.1:8461"),
            ("serve.listen", "tcp:[::1]:8461"),
            ("serve.socket_mode", "0600"),
            ("serve.socket_owner", "postfix:postfix"),
            ("serve.user", "mtasts"),
            ("serve.max_connections", "1024"),
            ("serve.event_loops", "1"),
            ("serve.client_timeout", "60"),
            ("serve.answer_timeout", "20"),
            ("serve.refresh_interval", "0"),
            ("serve.metrics", "127.0.0.1:9461"),
            ("serve.log", "syslog"),
            ("serve.syslog_socket", "/run/systemd/journal/dev-log"),
            ("serve.dane", "only"),
            ("serve.map.postfix.tlsrpt", "yes"),
            ("serve.map.strict.strict_testing", "yes"),
            ("serve.map.strict.sni", "no"),
            ("serve.map.nodane.dane", "off"),
        ];
        for (key, value) in good {
            s.set(key, value)
                .unwrap_or_else(|e| panic!("{key} = {value}: {e}"));
        }
        assert_eq!(s.listen.len(), 3);
        assert_eq!(s.listen[0].to_string(), "unix:/run/mtasts/socketmap.sock");
        assert_eq!(s.socket_mode, 0o600);
        assert_eq!(s.event_loop_count(), 1);
        assert_eq!(s.refresh_interval, None);
        assert_eq!(s.log, LogTarget::Syslog);
        assert!(s.options("postfix").tlsrpt);
        assert_eq!(
            s.options("postfix").dane,
            DaneMode::Only,
            "serve.dane applies"
        );
        assert_eq!(
            s.options("nodane").dane,
            DaneMode::Off,
            "the map's own wins"
        );
        let strict = s.options("strict");
        assert!(strict.strict_testing && !strict.sni && !strict.tlsrpt);
        let before = s.clone();
        let bad = [
            ("serve.lisen", "unix:/x", "unknown setting"),
            (
                "serve.listen",
                "/run/x.sock",
                "expected unix:PATH or tcp:IP:PORT",
            ),
            ("serve.listen", "tcp:localhost:25", "expected tcp:IP:PORT"),
            ("serve.socket_mode", "rw", "octal"),
            ("serve.socket_mode", "1777", "octal"),
            ("serve.user", "root;rm", "USER"),
            ("serve.max_connections", "0", "from 1"),
            ("serve.event_loops", "0", "auto or a number from 1 to 64"),
            ("serve.event_loops", "many", "auto or a number"),
            ("serve.answer_timeout", "120", "at most 90"),
            ("serve.client_timeout", "-1", "positive"),
            ("serve.metrics", "0.0.0.0:9461", "loopback"),
            ("serve.log", "journal", "stderr or syslog"),
            ("serve.syslog_socket", "dev/log", "absolute path"),
            ("serve.dane", "yes", "auto, only or off"),
            ("serve.map.postfix.tlsrpt", "maybe", "yes or no"),
            ("serve.map.postfix.strict", "yes", "a map name takes"),
            ("serve.map..sni", "no", "unknown setting"),
        ];
        for (key, value, why) in bad {
            let e = s.set(key, value).expect_err(key).to_string();
            assert!(e.contains(why), "{key} = {value}: {e}");
        }
        assert_eq!(s, before, "a refused setting changes nothing");
    }

    #[test]
    fn files_keep_the_resolver_keys_for_the_resolver_and_name_bad_lines() {
        let mut s = ServeSettings::default();
        s.load_str(
            "cache = /var/cache/mtasts/cache.db\n# a comment\n\nserve.listen = tcp:127.0.0.1:1 # c\n",
            "mtasts.conf",
        )
        .unwrap();
        assert_eq!(s.listen, vec![Listen::Tcp("127.0.0.1:1".parse().unwrap())]);
        let e = s
            .load_str(
                "serve.listen = tcp:127.0.0.1:2\nserve.dane = sometimes\n",
                "f",
            )
            .unwrap_err()
            .to_string();
        assert!(e.contains("f:2:"), "{e}");
        assert_eq!(s.listen.len(), 1, "a file with a bad line changes nothing");
    }
}
