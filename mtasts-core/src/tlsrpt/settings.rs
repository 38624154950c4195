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
//! | `tlsrpt.organization_name` | the report's `organization-name` (RFC 8460 §4.4); required to send | none |
//! | `tlsrpt.contact_info` | the report's `contact-info`, an email address, e.g. `postmaster@sender.example` (a `mailto:` URI is taken as its address); required to send | none |
//! | `tlsrpt.submitter` | the submitter domain: in the report's file name (R-RPT-7), `TLS-Report-Submitter`, the subject and the report id; required to send | none |
//! | `tlsrpt.mail_from` | envelope sender and `From:` of report mails (R-RPT-9) | `noreply-tlsrpt@<submitter>` |
//! | `tlsrpt.sendmail` | the sendmail-style command report mails go to: split on white space (no shell, no quoting), then mtasts appends `-f <mail_from> -- <recipient>` and writes the message to its stdin | `/usr/sbin/sendmail -oi` |
//! | `tlsrpt.smtp_relay` | `HOST:PORT` (`[IPv6]:PORT`): submit report mails over SMTP to this relay instead of the sendmail command | none |
//! | `tlsrpt.send_spread` | seconds after the end of the reported day over which sends are spread, per domain (R-RPT-10); 0 to 86400 | 14400 |
//! | `tlsrpt.retry_for` | seconds a failed delivery is retried from its first due time before the report is abandoned (R-RPT-10); 86400 to 604800 | 86400 |
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
use crate::config::{read_settings_file, reason_of};
use crate::domain::Domain;
use crate::error::{Error, Result};

/// The prefix of TLS reporting's keys in the settings file.
pub const TLSRPT_PREFIX: &str = "tlsrpt.";

/// TLS reporting's keys, in the documented order.
pub const TLSRPT_SETTINGS: [&str; 12] = [
    "tlsrpt.retention_days",
    "tlsrpt.collect_socket",
    "tlsrpt.collect_socket_mode",
    "tlsrpt.emit_socket",
    "tlsrpt.organization_name",
    "tlsrpt.contact_info",
    "tlsrpt.submitter",
    "tlsrpt.mail_from",
    "tlsrpt.sendmail",
    "tlsrpt.smtp_relay",
    "tlsrpt.send_spread",
    "tlsrpt.retry_for",
];

/// The sendmail command used when `tlsrpt.sendmail` is not set. `-oi`: a line holding a
/// single dot does not end the message. mtasts appends `-f <mail_from> -- <recipient>`
/// rather than using `-t`: what `-t` does with recipients also given as arguments differs
/// between Sendmail, Postfix and Exim, an explicit recipient does not.
pub const DEFAULT_SENDMAIL: &str = "/usr/sbin/sendmail -oi";
/// The default of `tlsrpt.send_spread`: sends are spread over the first 4 hours of the day
/// after the reported day.
pub const DEFAULT_SEND_SPREAD: Duration = Duration::from_secs(4 * 3600);
/// The longest `tlsrpt.send_spread`: the whole day after the reported day.
pub const MAX_SEND_SPREAD: Duration = Duration::from_secs(86_400);
/// The shortest (and default) `tlsrpt.retry_for`: R-RPT-10 retries for at least 24 hours.
pub const MIN_RETRY_FOR: Duration = Duration::from_secs(86_400);
/// The longest `tlsrpt.retry_for`: a week.
pub const MAX_RETRY_FOR: Duration = Duration::from_secs(7 * 86_400);

/// How report mails are submitted (R-RPT-9).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum MailTransport {
    /// A sendmail-style command: the program and its first arguments; mtasts appends
    /// `-f <mail_from> -- <recipient>` and writes the message to its standard input.
    Sendmail(Vec<String>),
    /// SMTP to a relay (no TLS, no AUTH: a relay on this host or a trusted network).
    SmtpRelay {
        /// The relay's host: an IP address, or a name looked up through mtasts's DNS.
        host: String,
        /// The relay's port.
        port: u16,
    },
}

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
    /// The report's `organization-name` (`tlsrpt.organization_name`).
    pub organization_name: Option<String>,
    /// The report's `contact-info` (`tlsrpt.contact_info`).
    pub contact_info: Option<String>,
    /// The submitter domain (`tlsrpt.submitter`, RFC 8460 §5.1, §5.3).
    pub submitter: Option<Domain>,
    /// The envelope sender and `From:` of report mails (`tlsrpt.mail_from`); `None`:
    /// `noreply-tlsrpt@<submitter>`.
    pub mail_from: Option<String>,
    /// The sendmail command (`tlsrpt.sendmail`), when set; `None`: [`DEFAULT_SENDMAIL`]
    /// unless a relay is set.
    pub sendmail: Option<Vec<String>>,
    /// The SMTP relay (`tlsrpt.smtp_relay`), when set.
    pub smtp_relay: Option<(String, u16)>,
    /// How long after the reported day sends are spread (`tlsrpt.send_spread`).
    pub send_spread: Duration,
    /// How long a failed delivery is retried (`tlsrpt.retry_for`).
    pub retry_for: Duration,
}

impl Default for TlsRptSettings {
    fn default() -> TlsRptSettings {
        TlsRptSettings {
            retention: DEFAULT_RETENTION,
            collect_socket: PathBuf::from(DEFAULT_COLLECT_SOCKET),
            collect_socket_mode: DEFAULT_COLLECT_SOCKET_MODE,
            emit_socket: None,
            organization_name: None,
            contact_info: None,
            submitter: None,
            mail_from: None,
            sendmail: None,
            smtp_relay: None,
            send_spread: DEFAULT_SEND_SPREAD,
            retry_for: MIN_RETRY_FOR,
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

/// What sending needs, checked ([`TlsRptSettings::sending`]).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SendSettings {
    /// The report's `organization-name`.
    pub organization_name: String,
    /// The report's `contact-info`.
    pub contact_info: String,
    /// The submitter domain.
    pub submitter: Domain,
    /// Envelope sender and `From:` of report mails.
    pub mail_from: String,
    /// How report mails are submitted.
    pub transport: MailTransport,
    /// See [`TlsRptSettings::send_spread`].
    pub send_spread: Duration,
    /// See [`TlsRptSettings::retry_for`].
    pub retry_for: Duration,
}

/// True for a mail address mtasts writes into a header and an SMTP command (R-RPT-9): a
/// plain `dot-atom@domain`, the local part of RFC 5322 `atext` and dots, the domain of
/// letters, digits, `-` and `.`. No white space, no quotes, no angle brackets: header or
/// command injection (a CR or LF from DNS or the settings) is impossible with such an
/// address. Quoted local parts are refused rather than handled.
pub(crate) fn is_plain_address(address: &str) -> bool {
    let Some((local, domain)) = address.rsplit_once('@') else {
        return false;
    };
    let atext = |c: u8| c.is_ascii_alphanumeric() || b"!#$%&'*+-/=?^_`{|}~.".contains(&c);
    !local.is_empty()
        && !domain.is_empty()
        && local.len() <= 64
        && address.len() <= 254
        && local.bytes().all(atext)
        && domain
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'.')
}

/// Seconds from a setting's text, within `min..=max`.
fn seconds(value: &str, min: Duration, max: Duration) -> std::result::Result<Duration, String> {
    let secs: u64 = value
        .parse()
        .map_err(|_| "expected a whole number of seconds".to_string())?;
    let d = Duration::from_secs(secs);
    if d < min || d > max {
        return Err(format!(
            "out of range: {} to {} seconds",
            min.as_secs(),
            max.as_secs()
        ));
    }
    Ok(d)
}

/// `HOST:PORT` or `[IPv6]:PORT`.
fn host_port(value: &str) -> std::result::Result<(String, u16), String> {
    let bad = || "expected HOST:PORT or [IPv6]:PORT".to_string();
    let (host, port) = if let Some(rest) = value.strip_prefix('[') {
        let (host, port) = rest.split_once("]:").ok_or_else(bad)?;
        host.parse::<std::net::Ipv6Addr>().map_err(|_| bad())?;
        (host, port)
    } else {
        value.rsplit_once(':').ok_or_else(bad)?
    };
    let port: u16 = port.parse().map_err(|_| bad())?;
    if host.is_empty() || port == 0 || host.contains(char::is_whitespace) {
        return Err(bad());
    }
    Ok((host.to_string(), port))
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
            "tlsrpt.organization_name" | "tlsrpt.contact_info" => {
                if value.is_empty() || value.chars().any(char::is_control) {
                    return Err(bad("expected text without control characters".into()));
                }
                if key == "tlsrpt.organization_name" {
                    self.organization_name = Some(value.to_string());
                } else {
                    // RFC 8460 §4.4: an email address (the RFC's example, and what the big
                    // senders write); a `mailto:` URI of one is taken as its address.
                    let address = match value.get(..7) {
                        Some(scheme) if scheme.eq_ignore_ascii_case("mailto:") => &value[7..],
                        _ => value,
                    };
                    if address.is_empty() {
                        return Err(bad("expected an email address".into()));
                    }
                    self.contact_info = Some(address.to_string());
                }
            }
            "tlsrpt.submitter" => {
                self.submitter = Some(Domain::new(value).map_err(|e| bad(reason_of(e)))?);
            }
            "tlsrpt.mail_from" => {
                if !is_plain_address(value) {
                    return Err(bad("expected a plain address, local@domain".into()));
                }
                self.mail_from = Some(value.to_string());
            }
            "tlsrpt.sendmail" => {
                let words: Vec<String> = value.split_whitespace().map(str::to_string).collect();
                if words.is_empty() {
                    return Err(bad("expected a command".into()));
                }
                self.sendmail = Some(words);
            }
            "tlsrpt.smtp_relay" => self.smtp_relay = Some(host_port(value).map_err(bad)?),
            "tlsrpt.send_spread" => {
                self.send_spread = seconds(value, Duration::ZERO, MAX_SEND_SPREAD).map_err(bad)?;
            }
            "tlsrpt.retry_for" => {
                self.retry_for = seconds(value, MIN_RETRY_FOR, MAX_RETRY_FOR).map_err(bad)?;
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
        crate::config::load_section(self, text, origin, TLSRPT_PREFIX, TlsRptSettings::set)
    }

    /// What sending reports needs, checked: `organization_name`, `contact_info` and
    /// `submitter` set, and at most one of `sendmail` and `smtp_relay`.
    ///
    /// # Errors
    /// [`Error::Config`] saying which keys to set.
    pub fn sending(&self) -> Result<SendSettings> {
        let missing: Vec<&str> = [
            ("tlsrpt.organization_name", self.organization_name.is_none()),
            ("tlsrpt.contact_info", self.contact_info.is_none()),
            ("tlsrpt.submitter", self.submitter.is_none()),
        ]
        .into_iter()
        .filter_map(|(key, missing)| missing.then_some(key))
        .collect();
        let (Some(organization_name), Some(contact_info), Some(submitter)) = (
            self.organization_name.clone(),
            self.contact_info.clone(),
            self.submitter.clone(),
        ) else {
            return Err(Error::Config {
                reason: format!(
                    "sending TLS reports needs {} in the settings file (e.g. \
                     tlsrpt.organization_name = Example Mail, tlsrpt.contact_info = \
                     mailto:postmaster@example.com, tlsrpt.submitter = mail.example.com)",
                    missing.join(", ")
                ),
            });
        };
        let transport = match (&self.sendmail, &self.smtp_relay) {
            (Some(_), Some(_)) => {
                return Err(Error::Config {
                    reason: "tlsrpt.sendmail and tlsrpt.smtp_relay are both set: set one".into(),
                });
            }
            (_, Some((host, port))) => MailTransport::SmtpRelay {
                host: host.clone(),
                port: *port,
            },
            (Some(command), None) => MailTransport::Sendmail(command.clone()),
            (None, None) => MailTransport::Sendmail(
                DEFAULT_SENDMAIL
                    .split_whitespace()
                    .map(str::to_string)
                    .collect(),
            ),
        };
        let mail_from = self
            .mail_from
            .clone()
            .unwrap_or_else(|| format!("noreply-tlsrpt@{submitter}"));
        Ok(SendSettings {
            organization_name,
            contact_info,
            submitter,
            mail_from,
            transport,
            send_spread: self.send_spread,
            retry_for: self.retry_for,
        })
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

    #[test]
    fn sending_keys_and_what_to_configure() {
        let mut s = TlsRptSettings::default();
        let e = s.sending().unwrap_err().to_string();
        assert!(
            e.contains("tlsrpt.organization_name, tlsrpt.contact_info, tlsrpt.submitter"),
            "{e}"
        );
        s.load_str(
            "tlsrpt.organization_name = Example Mail\n\
             tlsrpt.contact_info = mailto:postmaster@example.com\n\
             tlsrpt.submitter = Mail.Example.COM\n",
            "t",
        )
        .unwrap();
        let send = s.sending().unwrap();
        // RFC 8460 §4.4: an email address; the mailto: URI's scheme is dropped.
        assert_eq!(send.contact_info, "postmaster@example.com");
        s.load_str("tlsrpt.contact_info = tlsrpt@example.com\n", "t")
            .unwrap();
        assert_eq!(s.sending().unwrap().contact_info, "tlsrpt@example.com");
        assert!(s.load_str("tlsrpt.contact_info = MAILTO:\n", "t").is_err());
        assert_eq!(send.submitter.as_str(), "mail.example.com");
        assert_eq!(send.mail_from, "noreply-tlsrpt@mail.example.com");
        assert_eq!(
            send.transport,
            MailTransport::Sendmail(vec!["/usr/sbin/sendmail".into(), "-oi".into()])
        );
        assert_eq!(
            (send.send_spread, send.retry_for),
            (DEFAULT_SEND_SPREAD, MIN_RETRY_FOR)
        );
        s.set("tlsrpt.smtp_relay", "127.0.0.1:2525").unwrap();
        assert_eq!(
            s.sending().unwrap().transport,
            MailTransport::SmtpRelay {
                host: "127.0.0.1".into(),
                port: 2525
            }
        );
        s.set("tlsrpt.smtp_relay", "[::1]:25").unwrap();
        s.set("tlsrpt.sendmail", "/usr/bin/msmtp -t").unwrap();
        assert!(s.sending().unwrap_err().to_string().contains("both set"));
        for (key, value, says) in [
            ("tlsrpt.submitter", "not a domain!", "tlsrpt.submitter"),
            ("tlsrpt.mail_from", "a b@example.com", "plain address"),
            (
                "tlsrpt.mail_from",
                "x@example.com\r\nBcc: y@z",
                "plain address",
            ),
            ("tlsrpt.organization_name", "a\u{7}b", "control"),
            ("tlsrpt.smtp_relay", "relay.example", "HOST:PORT"),
            ("tlsrpt.smtp_relay", "relay.example:0", "HOST:PORT"),
            ("tlsrpt.smtp_relay", "[relay]:25", "HOST:PORT"),
            ("tlsrpt.send_spread", "86401", "out of range"),
            ("tlsrpt.send_spread", "-1", "whole number"),
            ("tlsrpt.retry_for", "3600", "out of range"),
            ("tlsrpt.retry_for", "604801", "out of range"),
            ("tlsrpt.sendmial", "/bin/true", "unknown setting"),
        ] {
            let e = s.set(key, value).unwrap_err().to_string();
            assert!(e.contains(says), "{key}={value}: {e}");
        }
        s.set("tlsrpt.send_spread", "0").unwrap();
        s.set("tlsrpt.retry_for", "172800").unwrap();
        assert_eq!(s.send_spread, Duration::ZERO);
        assert_eq!(s.retry_for, Duration::from_secs(172_800));
    }
}
