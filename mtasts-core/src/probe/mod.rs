//! The STARTTLS probe: connect to an MX host, STARTTLS, collect its certificate chain and check
//! it (RFC 8461 §4.2, §5; rules R-CERT-1 to R-CERT-3).
//!
//! One probe is: resolve the MX host's A and AAAA records (or take the addresses given), connect
//! to them in order until one answers, read the banner, `EHLO`, check that `STARTTLS` is
//! advertised, `STARTTLS`, a TLS 1.2 or 1.3 handshake with SNI = the MX host name, `QUIT`, and
//! then the certificate check of [`CertVerifier::check`] on the chain the server presented. All
//! of it runs under one deadline ([`ProbeOptions::timeout`]): every read and write is bounded by
//! the time left.
//!
//! During the handshake the chain is only recorded (the handshake signatures are verified, so
//! the server proved it holds the leaf's key); the decision about the chain is taken afterwards
//! by [`CertVerifier::check`], so a chain is classified the same way whether this probe got it
//! or an MTA's own TLS library did. This is safe because the probe sends no mail: the TLS
//! session carries nothing but `QUIT`.
//!
//! Hostile or broken servers are bounded: a reply line longer than [`MAX_REPLY_LINE`] bytes, a
//! reply of more than [`MAX_REPLY_LINES`] lines, or text that is not an SMTP reply end the probe
//! with [`ProbeOutcome::Incomplete`]; a silent or slow server ends it at the deadline.
//!
//! The parts, one per file: `reply` cuts SMTP replies from bytes (pure, sans-IO, and the
//! limits above); `transport` is the byte stream under the deadline and the connection to the
//! addresses; `dialogue` is banner, `EHLO`, `STARTTLS` and `QUIT` over any transport;
//! `tls` is the rustls client that records the chain and classifies a failed handshake. This
//! file holds the public API and runs the steps in order.

mod dialogue;
mod reply;
mod tls;
mod transport;

use std::fmt;
use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};

use rustls_pki_types::CertificateDer;

use crate::certs::{CertCheck, CertVerifier};
use crate::dns::{DnsAnswer, DnsResolver};
use crate::domain::Domain;
use crate::error::{Error, Result};
use crate::failure::{FailureReason, MxFailure};

pub use reply::{MAX_REPLY_LINE, MAX_REPLY_LINES};

/// The SMTP port (RFC 5321 §4.5.4.2): where MX hosts receive mail.
pub const SMTP_PORT: u16 = 25;

/// How a probe runs.
///
/// ```rust
/// use std::time::Duration;
/// let mut options = mtasts_core::ProbeOptions::default();
/// options.port = 2525;
/// options.timeout = Duration::from_secs(10);
/// assert_eq!(options.ehlo_name, "localhost");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProbeOptions {
    /// The port to connect to (default [`SMTP_PORT`], 25).
    pub port: u16,
    /// The deadline of the whole probe: address lookup, connection, SMTP dialogue, TLS
    /// handshake and `QUIT` (default 30 s). The address lookup is bounded by the resolver's
    /// own deadline; its time counts against this one.
    pub timeout: Duration,
    /// The name sent with `EHLO` (default `localhost`). Letters, digits, `.`, `-`, `:`, `[`
    /// and `]` only.
    pub ehlo_name: String,
    /// The time at which the certificates must be valid; `None` (the default): now.
    pub at: Option<SystemTime>,
}

impl ProbeOptions {
    /// Checks the options a probe would refuse: an unusable [`ProbeOptions::ehlo_name`] or a
    /// timeout that is zero or above [`MAX_TIMEOUT`](crate::MAX_TIMEOUT) ([`Error::Config`]).
    pub fn validate(&self) -> Result<()> {
        crate::config::check_duration("the probe timeout", self.timeout, crate::MAX_TIMEOUT)?;
        check_ehlo_name(&self.ehlo_name)
    }
}

impl Default for ProbeOptions {
    fn default() -> ProbeOptions {
        ProbeOptions {
            port: SMTP_PORT,
            timeout: Duration::from_secs(30),
            ehlo_name: "localhost".into(),
            at: None,
        }
    }
}

/// How a probe ended.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProbeOutcome {
    /// STARTTLS offered and accepted, TLS 1.2 or newer, certificate valid for the MX host.
    Pass,
    /// An MTA-STS failure of this MX: STARTTLS not offered or refused
    /// (`starttls-not-supported`), a failed TLS handshake (`validation-failure`), or a rejected
    /// certificate (R-CERT-2, R-CERT-3).
    Fail(MxFailure),
    /// The probe ended before STARTTLS could be assessed: no address, no connection, the
    /// deadline, a session refused at the banner, or a server not speaking SMTP. Not an
    /// MTA-STS failure: nothing for a TLS-RPT report, but the MX cannot take mail either.
    Incomplete {
        /// What happened.
        reason: String,
    },
}

impl ProbeOutcome {
    /// A stable lowercase name: `pass`, `fail`, `incomplete`.
    pub fn as_str(&self) -> &'static str {
        match self {
            ProbeOutcome::Pass => "pass",
            ProbeOutcome::Fail(_) => "fail",
            ProbeOutcome::Incomplete { .. } => "incomplete",
        }
    }

    /// The MTA-STS failure, for [`Fail`](ProbeOutcome::Fail).
    pub fn failure(&self) -> Option<&MxFailure> {
        match self {
            ProbeOutcome::Fail(failure) => Some(failure),
            ProbeOutcome::Pass | ProbeOutcome::Incomplete { .. } => None,
        }
    }
}

impl fmt::Display for ProbeOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProbeOutcome::Pass => f.write_str("pass"),
            ProbeOutcome::Fail(failure) => write!(f, "fail: {failure}"),
            ProbeOutcome::Incomplete { reason } => write!(f, "incomplete: {reason}"),
        }
    }
}

/// When each step of a probe finished, counted from its start.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProbeTimings {
    /// The addresses were known (looked up, or given).
    pub resolved: Option<Duration>,
    /// The TCP connection was established.
    pub connected: Option<Duration>,
    /// The banner was read.
    pub banner: Option<Duration>,
    /// The `220` answer to `STARTTLS` was read.
    pub starttls: Option<Duration>,
    /// The TLS handshake completed.
    pub handshake: Option<Duration>,
    /// The probe ended (after `QUIT` and the certificate check).
    pub total: Duration,
}

/// Everything a probe saw, and its outcome.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProbeReport {
    /// The MX host, normalised; SNI and the certificate check use it.
    pub mx_host: Domain,
    /// The address the session ran on (the first that accepted the connection).
    pub address: Option<SocketAddr>,
    /// The addresses that could not be connected to, with the error, in the order tried.
    pub connect_errors: Vec<String>,
    /// The banner's lines (text after the reply code; control characters replaced).
    pub banner: Vec<String>,
    /// The lines of the reply to `EHLO` (before TLS).
    pub ehlo: Vec<String>,
    /// True when the EHLO reply advertised `STARTTLS`.
    pub starttls_offered: bool,
    /// The TLS version negotiated, e.g. `TLSv1.3`.
    pub tls_version: Option<String>,
    /// The cipher suite negotiated, e.g. `TLS13_AES_256_GCM_SHA384`.
    pub cipher_suite: Option<String>,
    /// The chain the server presented, leaf first, DER (empty without a TLS handshake).
    pub chain: Vec<CertificateDer<'static>>,
    /// How the probe ended.
    pub outcome: ProbeOutcome,
    /// When each step finished.
    pub timings: ProbeTimings,
}

impl ProbeReport {
    /// A report for `mx_host` with nothing seen yet.
    fn new(mx_host: Domain) -> ProbeReport {
        ProbeReport {
            mx_host,
            address: None,
            connect_errors: Vec::new(),
            banner: Vec::new(),
            ehlo: Vec::new(),
            starttls_offered: false,
            tls_version: None,
            cipher_suite: None,
            chain: Vec::new(),
            outcome: ProbeOutcome::Incomplete {
                reason: "not started".into(),
            },
            timings: ProbeTimings::default(),
        }
    }
}

/// Probes MX host `mx_host` (R-CERT-1 to R-CERT-3): its addresses come from `dns` (A and
/// AAAA, tried in the order given, port [`ProbeOptions::port`]), its chain is checked with
/// `verifier`.
///
/// Returns an error only for unusable input: `mx_host` not a host name
/// ([`Error::InvalidDomain`]) or options [`ProbeOptions::validate`] refuses ([`Error::Config`]).
/// Everything that happens on the network is in the report.
pub fn probe(
    mx_host: &str,
    dns: &dyn DnsResolver,
    verifier: &CertVerifier,
    options: &ProbeOptions,
) -> Result<ProbeReport> {
    let start = Instant::now();
    let host = Domain::new(mx_host)?;
    options.validate()?;
    let mut report = ProbeReport::new(host);
    let addrs: Vec<SocketAddr> = match dns.ip(report.mx_host.as_str()) {
        Ok(DnsAnswer::Found { records, .. }) => records
            .into_iter()
            .map(|ip| SocketAddr::new(ip, options.port))
            .collect(),
        Ok(DnsAnswer::NxDomain { .. }) => {
            return Ok(incomplete(
                report,
                start,
                format!("the MX host {mx_host} does not exist (NXDOMAIN)"),
            ));
        }
        Ok(DnsAnswer::NoData { .. }) => {
            return Ok(incomplete(
                report,
                start,
                format!("the MX host {mx_host} has no A or AAAA record"),
            ));
        }
        Err(e) => return Ok(incomplete(report, start, e.to_string())),
    };
    report.timings.resolved = Some(start.elapsed());
    Ok(run(report, &addrs, start, verifier, options))
}

/// [`probe`] with the addresses given instead of looked up (tried in order; their ports are
/// used, not [`ProbeOptions::port`]). SNI and the certificate check still use `mx_host`.
pub fn probe_addrs(
    mx_host: &str,
    addrs: &[SocketAddr],
    verifier: &CertVerifier,
    options: &ProbeOptions,
) -> Result<ProbeReport> {
    let start = Instant::now();
    let host = Domain::new(mx_host)?;
    options.validate()?;
    let mut report = ProbeReport::new(host);
    report.timings.resolved = Some(start.elapsed());
    Ok(run(report, addrs, start, verifier, options))
}

/// Refuses an EHLO name that could not go on the command line as it is: empty, longer than
/// 255 bytes, or with a byte outside letters, digits, `.`, `-`, `:`, `[`, `]` (CR and LF
/// among them, so no command can be smuggled after `EHLO`).
fn check_ehlo_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 255
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(Error::Config {
            reason: format!(
                "unusable EHLO name {name:?}: letters, digits, '.', '-', ':', '[', ']' only"
            ),
        })
    }
}

/// Ends the probe early with an [`Incomplete`](ProbeOutcome::Incomplete) outcome.
fn incomplete(mut report: ProbeReport, start: Instant, reason: String) -> ProbeReport {
    report.outcome = ProbeOutcome::Incomplete { reason };
    report.timings.total = start.elapsed();
    report
}

/// Runs the session on `addrs` under the probe's deadline, then, when the handshake
/// completed, decides on the chain with `verifier`.
fn run(
    mut report: ProbeReport,
    addrs: &[SocketAddr],
    start: Instant,
    verifier: &CertVerifier,
    options: &ProbeOptions,
) -> ProbeReport {
    let deadline = start + options.timeout;
    let outcome = session(&mut report, addrs, start, deadline, options);
    report.outcome = match outcome {
        // The handshake completed: now the chain decides (R-CERT-2, R-CERT-3).
        Ok(()) => {
            let at = options.at.unwrap_or_else(SystemTime::now);
            match verifier.check(&report.chain, report.mx_host.as_str(), at) {
                Ok(CertCheck::Valid) => ProbeOutcome::Pass,
                Ok(CertCheck::Invalid(failure)) => ProbeOutcome::Fail(failure),
                Err(e) => ProbeOutcome::Fail(MxFailure::new(
                    FailureReason::CertificateMalformed,
                    e.to_string(),
                )),
            }
        }
        Err(outcome) => outcome,
    };
    report.timings.total = start.elapsed();
    report
}

/// Connects, runs the SMTP dialogue and the TLS handshake, and ends the session. `Ok` when
/// the handshake completed (the chain is in the report); otherwise the outcome.
fn session(
    report: &mut ProbeReport,
    addrs: &[SocketAddr],
    start: Instant,
    deadline: Instant,
    options: &ProbeOptions,
) -> std::result::Result<(), ProbeOutcome> {
    let timeout_ms = deadline.saturating_duration_since(start).as_millis();
    let (sock, addr) = transport::connect(addrs, deadline, &mut report.connect_errors)
        .map_err(|reason| ProbeOutcome::Incomplete { reason })?;
    report.address = Some(addr);
    report.timings.connected = Some(start.elapsed());
    let mut io = transport::DeadlineStream::new(sock, deadline);
    dialogue::starttls(&mut io, report, &options.ehlo_name, start, timeout_ms)?;
    let mut conn = tls::handshake(&mut io, report, start, timeout_ms)?;
    // QUIT inside TLS; its answer does not change the outcome.
    tls::close(&mut conn, &mut io);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ehlo_names() {
        assert!(check_ehlo_name("localhost").is_ok());
        assert!(check_ehlo_name("[192.0.2.1]").is_ok());
        assert!(check_ehlo_name("a\r\nMAIL FROM").is_err());
        assert!(check_ehlo_name("").is_err());
    }
}
