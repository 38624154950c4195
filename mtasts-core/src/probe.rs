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

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{ClientConfig, ClientConnection, Resumption};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::{AlertDescription, DigitallySignedStruct, PeerIncompatible, ProtocolVersion};
use rustls::{SignatureScheme, Stream};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

use crate::certs::{CertCheck, CertVerifier};
use crate::dns::{DnsAnswer, DnsResolver};
use crate::domain::Domain;
use crate::error::{Error, Result};
use crate::verdict::{FailureReason, MxFailure};

/// The SMTP port (RFC 5321 §4.5.4.2): where MX hosts receive mail.
pub const SMTP_PORT: u16 = 25;

/// The longest reply line accepted, in bytes, CRLF included. RFC 5321 §4.5.3.1.5 allows 512;
/// a little more is tolerated, a never-ending line is not.
pub const MAX_REPLY_LINE: usize = 4096;

/// The most lines one multi-line reply may have. Real EHLO replies have a dozen or two.
pub const MAX_REPLY_LINES: usize = 100;

/// How long the probe waits for the answer to `QUIT` (within the deadline): the outcome is
/// known by then, a server that does not answer must not make the probe slow.
const QUIT_WAIT: Duration = Duration::from_secs(1);

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
        crate::resolver::check_duration("the probe timeout", self.timeout, crate::MAX_TIMEOUT)?;
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

fn incomplete(mut report: ProbeReport, start: Instant, reason: String) -> ProbeReport {
    report.outcome = ProbeOutcome::Incomplete { reason };
    report.timings.total = start.elapsed();
    report
}

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

/// Runs the SMTP dialogue and the TLS handshake. `Ok` when the handshake completed (the chain
/// is in the report); otherwise the outcome.
fn session(
    report: &mut ProbeReport,
    addrs: &[SocketAddr],
    start: Instant,
    deadline: Instant,
    options: &ProbeOptions,
) -> std::result::Result<(), ProbeOutcome> {
    let incomplete = |reason: String| ProbeOutcome::Incomplete { reason };
    let fail = |reason, detail: String| ProbeOutcome::Fail(MxFailure::new(reason, detail));
    let timeout_ms = deadline.saturating_duration_since(start).as_millis();

    let (sock, addr) = connect(report, addrs, deadline)?;
    report.address = Some(addr);
    report.timings.connected = Some(start.elapsed());
    let mut io = DeadlineStream { sock, deadline };
    let _ = io.sock.set_nodelay(true);
    let mut lines = LineReader::default();
    let step = |what: &str, e: SmtpError| match e {
        SmtpError::Io(e) if is_timeout(&e) => incomplete(format!(
            "{what}: nothing within the {timeout_ms} ms deadline"
        )),
        e => incomplete(format!("{what}: {e}")),
    };

    // Banner (RFC 5321 §4.3.1), possibly multi-line.
    let banner = lines
        .read_reply(&mut io)
        .map_err(|e| step("waiting for the banner", e))?;
    report.banner = banner.lines.clone();
    report.timings.banner = Some(start.elapsed());
    if banner.code != 220 {
        quit(&mut io, &mut lines);
        return Err(incomplete(format!(
            "the server refused the session: {banner}"
        )));
    }

    // EHLO (RFC 5321 §4.1.1.1); STARTTLS is an EHLO keyword (RFC 3207 §4).
    send(&mut io, &format!("EHLO {}\r\n", options.ehlo_name))
        .map_err(|e| step("sending EHLO", e))?;
    let ehlo = lines
        .read_reply(&mut io)
        .map_err(|e| step("waiting for the EHLO reply", e))?;
    report.ehlo = ehlo.lines.clone();
    if ehlo.code != 250 {
        quit(&mut io, &mut lines);
        return Err(fail(
            FailureReason::StarttlsNotOffered,
            format!("EHLO was refused ({ehlo}), so STARTTLS cannot be offered"),
        ));
    }
    report.starttls_offered = ehlo.lines.iter().skip(1).any(|line| {
        line.split_ascii_whitespace()
            .next()
            .is_some_and(|keyword| keyword.eq_ignore_ascii_case("STARTTLS"))
    });
    if !report.starttls_offered {
        quit(&mut io, &mut lines);
        // R-CERT-1: the MX must offer STARTTLS.
        return Err(fail(
            FailureReason::StarttlsNotOffered,
            "the EHLO reply does not advertise STARTTLS".into(),
        ));
    }

    send(&mut io, "STARTTLS\r\n").map_err(|e| step("sending STARTTLS", e))?;
    let reply = lines
        .read_reply(&mut io)
        .map_err(|e| step("waiting for the STARTTLS reply", e))?;
    if reply.code != 220 {
        quit(&mut io, &mut lines);
        return Err(fail(
            FailureReason::StarttlsRefused,
            format!("STARTTLS was advertised but refused: {reply}"),
        ));
    }
    report.timings.starttls = Some(start.elapsed());
    if !lines.buf.is_empty() {
        // Bytes sent before the client's ClientHello cannot be TLS: plaintext injected into
        // the session (CVE-2011-0411). Never feed them to TLS.
        return Err(fail(
            FailureReason::TlsHandshakeFailed,
            format!(
                "the server sent {} bytes after its 220 reply to STARTTLS, before TLS",
                lines.buf.len()
            ),
        ));
    }

    // R-CERT-1: TLS 1.2 or 1.3, SNI = the MX host name.
    let recorder = Arc::new(ChainRecorder::new());
    let config = client_config(Arc::clone(&recorder))
        .map_err(|e| incomplete(format!("TLS configuration: {e}")))?;
    let name = ServerName::try_from(report.mx_host.as_str().to_owned())
        .map_err(|e| incomplete(format!("SNI name {}: {e}", report.mx_host)))?;
    let mut conn = ClientConnection::new(config, name)
        .map_err(|e| incomplete(format!("TLS configuration: {e}")))?;
    while conn.is_handshaking() {
        if let Err(e) = conn.complete_io(&mut io) {
            report.chain = recorder.take();
            return Err(ProbeOutcome::Fail(tls_failure(&e, timeout_ms)));
        }
    }
    report.timings.handshake = Some(start.elapsed());
    report.tls_version = conn.protocol_version().map(version_name);
    report.cipher_suite = conn
        .negotiated_cipher_suite()
        .map(|s| format!("{:?}", s.suite()));
    report.chain = match conn.peer_certificates() {
        Some(chain) => chain.iter().map(|c| c.clone().into_owned()).collect(),
        None => recorder.take(),
    };

    // QUIT inside TLS; its answer does not change the outcome.
    io.deadline = io.deadline.min(Instant::now() + QUIT_WAIT);
    let mut tls = Stream::new(&mut conn, &mut io);
    let mut tls_lines = LineReader::default();
    if send(&mut tls, "QUIT\r\n").is_ok() {
        let _ = tls_lines.read_reply(&mut tls);
    }
    conn.send_close_notify();
    let _ = conn.write_tls(&mut io);
    Ok(())
}

/// Connects to the addresses in order; each attempt gets an equal share of the time left, so
/// a black-holed first address (IPv6 without a route, say) leaves time for the next.
fn connect(
    report: &mut ProbeReport,
    addrs: &[SocketAddr],
    deadline: Instant,
) -> std::result::Result<(TcpStream, SocketAddr), ProbeOutcome> {
    if addrs.is_empty() {
        return Err(ProbeOutcome::Incomplete {
            reason: "no address to connect to".into(),
        });
    }
    for (i, addr) in addrs.iter().enumerate() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            report
                .connect_errors
                .push(format!("{addr}: not tried, deadline passed"));
            continue;
        }
        let tries_left = u32::try_from(addrs.len() - i).unwrap_or(u32::MAX);
        let share = (left / tries_left).max(Duration::from_millis(1));
        match TcpStream::connect_timeout(addr, share) {
            Ok(sock) => return Ok((sock, *addr)),
            Err(e) => report.connect_errors.push(format!("{addr}: {e}")),
        }
    }
    Err(ProbeOutcome::Incomplete {
        reason: format!(
            "could not connect to any address: {}",
            report.connect_errors.join("; ")
        ),
    })
}

/// Sends `QUIT` and reads the answer, briefly, ignoring errors.
fn quit(io: &mut DeadlineStream, lines: &mut LineReader) {
    io.deadline = io.deadline.min(Instant::now() + QUIT_WAIT);
    if send(io, "QUIT\r\n").is_ok() {
        let _ = lines.read_reply(io);
    }
}

fn send(io: &mut impl Write, command: &str) -> std::result::Result<(), SmtpError> {
    io.write_all(command.as_bytes())?;
    io.flush()?;
    Ok(())
}

fn version_name(v: ProtocolVersion) -> String {
    match v {
        ProtocolVersion::TLSv1_2 => "TLSv1.2".into(),
        ProtocolVersion::TLSv1_3 => "TLSv1.3".into(),
        other => format!("{other:?}"),
    }
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
    )
}

/// Classifies a failed handshake (R-CERT-1): too old a TLS version, or anything else.
fn tls_failure(e: &io::Error, timeout_ms: u128) -> MxFailure {
    let tls = e.get_ref().and_then(|e| e.downcast_ref::<rustls::Error>());
    match tls {
        Some(
            tls @ (rustls::Error::AlertReceived(AlertDescription::ProtocolVersion)
            | rustls::Error::PeerIncompatible(
                PeerIncompatible::ServerDoesNotSupportTls12Or13
                | PeerIncompatible::ServerTlsVersionIsDisabledByOurConfig,
            )),
        ) => MxFailure::new(
            FailureReason::TlsVersionUnsupported,
            format!("TLS handshake failed ({tls}): the server offers no TLS version from 1.2 up"),
        ),
        Some(rustls::Error::AlertReceived(alert)) => MxFailure::new(
            FailureReason::TlsHandshakeFailed,
            format!("TLS handshake failed: the server sent the alert {alert:?}"),
        ),
        Some(tls) => MxFailure::new(
            FailureReason::TlsHandshakeFailed,
            format!("TLS handshake failed: {tls}"),
        ),
        None if is_timeout(e) => MxFailure::new(
            FailureReason::TlsHandshakeFailed,
            format!("TLS handshake not complete within the {timeout_ms} ms deadline"),
        ),
        None => MxFailure::new(
            FailureReason::TlsHandshakeFailed,
            format!("TLS handshake failed: {e}"),
        ),
    }
}

fn client_config(
    recorder: Arc<ChainRecorder>,
) -> std::result::Result<Arc<ClientConfig>, rustls::Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        // R-CERT-1: TLS 1.2 or newer (rustls implements nothing older anyway).
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .dangerous()
        .with_custom_certificate_verifier(recorder)
        .with_no_client_auth();
    // One probe, one session: nothing to resume.
    config.resumption = Resumption::disabled();
    Ok(Arc::new(config))
}

/// Records the chain the server presents and verifies the handshake signatures; the chain
/// itself is judged after the handshake by [`CertVerifier::check`] (see the module docs).
#[derive(Debug)]
struct ChainRecorder {
    chain: Mutex<Vec<CertificateDer<'static>>>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ChainRecorder {
    fn new() -> ChainRecorder {
        ChainRecorder {
            chain: Mutex::new(Vec::new()),
            algorithms: rustls::crypto::ring::default_provider().signature_verification_algorithms,
        }
    }

    fn take(&self) -> Vec<CertificateDer<'static>> {
        std::mem::take(&mut *self.chain.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

impl ServerCertVerifier for ChainRecorder {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        let chain = std::iter::once(end_entity)
            .chain(intermediates)
            .map(|c| c.clone().into_owned())
            .collect();
        *self.chain.lock().unwrap_or_else(PoisonError::into_inner) = chain;
        // Deferred: R-CERT-2 and R-CERT-3 are decided by `CertVerifier::check` afterwards.
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// A TCP stream whose every read and write ends by one deadline.
struct DeadlineStream {
    sock: TcpStream,
    deadline: Instant,
}

impl DeadlineStream {
    fn left(&self) -> io::Result<Duration> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            Err(io::Error::new(io::ErrorKind::TimedOut, "deadline passed"))
        } else {
            Ok(left)
        }
    }
}

/// Socket timeouts show up as `WouldBlock` on Unix; call them what they are.
fn timeout_kind(e: io::Error) -> io::Error {
    if e.kind() == io::ErrorKind::WouldBlock {
        io::Error::new(io::ErrorKind::TimedOut, "deadline passed")
    } else {
        e
    }
}

impl Read for DeadlineStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.left()?;
        self.sock.set_read_timeout(Some(left))?;
        self.sock.read(buf).map_err(timeout_kind)
    }
}

impl Write for DeadlineStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let left = self.left()?;
        self.sock.set_write_timeout(Some(left))?;
        self.sock.write(buf).map_err(timeout_kind)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.sock.flush()
    }
}

/// What can go wrong reading SMTP replies.
#[derive(Debug)]
enum SmtpError {
    Io(io::Error),
    Closed,
    LineTooLong,
    TooManyLines,
    NotSmtp(String),
}

impl From<io::Error> for SmtpError {
    fn from(e: io::Error) -> SmtpError {
        SmtpError::Io(e)
    }
}

impl fmt::Display for SmtpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SmtpError::Io(e) => write!(f, "{e}"),
            SmtpError::Closed => f.write_str("the server closed the connection"),
            SmtpError::LineTooLong => write!(
                f,
                "a reply line longer than {MAX_REPLY_LINE} bytes (not an SMTP server?)"
            ),
            SmtpError::TooManyLines => {
                write!(f, "a reply of more than {MAX_REPLY_LINES} lines")
            }
            SmtpError::NotSmtp(line) => write!(f, "not an SMTP reply: {line:?}"),
        }
    }
}

/// One SMTP reply (RFC 5321 §4.2): a code and the text of each line.
#[derive(Debug)]
struct Reply {
    code: u16,
    lines: Vec<String>,
}

impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.code, self.lines.join(" / "))
    }
}

/// Reads CRLF-terminated lines, keeping bytes read past the last line for the next call.
#[derive(Default)]
struct LineReader {
    buf: Vec<u8>,
}

impl LineReader {
    fn read_line(&mut self, io: &mut impl Read) -> std::result::Result<Vec<u8>, SmtpError> {
        loop {
            if let Some(end) = self.buf.iter().position(|b| *b == b'\n') {
                if end + 1 > MAX_REPLY_LINE {
                    return Err(SmtpError::LineTooLong);
                }
                let mut line: Vec<u8> = self.buf.drain(..=end).collect();
                line.pop(); // LF
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                return Ok(line);
            }
            if self.buf.len() >= MAX_REPLY_LINE {
                return Err(SmtpError::LineTooLong);
            }
            let mut chunk = [0u8; 1024];
            let n = io.read(&mut chunk)?;
            if n == 0 {
                return Err(SmtpError::Closed);
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// Reads one reply, multi-line or not: `250-first`, `250-second`, `250 last`
    /// (RFC 5321 §4.2.1). Tolerated: a bare LF line end, a code alone on the last line.
    fn read_reply(&mut self, io: &mut impl Read) -> std::result::Result<Reply, SmtpError> {
        let mut code = None;
        let mut lines = Vec::new();
        loop {
            if lines.len() >= MAX_REPLY_LINES {
                return Err(SmtpError::TooManyLines);
            }
            let line = self.read_line(io)?;
            let (this_code, more, text) = parse_line(&line)?;
            if code.is_some_and(|c| c != this_code) {
                return Err(SmtpError::NotSmtp(printable(&line)));
            }
            code = Some(this_code);
            lines.push(text);
            if !more {
                return Ok(Reply {
                    code: this_code,
                    lines,
                });
            }
        }
    }
}

/// Splits a reply line into code, "more lines follow" and text.
fn parse_line(line: &[u8]) -> std::result::Result<(u16, bool, String), SmtpError> {
    let not_smtp = || SmtpError::NotSmtp(printable(line));
    let digits = line.get(..3).ok_or_else(not_smtp)?;
    if !digits.iter().all(u8::is_ascii_digit) || !(b'2'..=b'5').contains(&digits[0]) {
        return Err(not_smtp());
    }
    let code = digits
        .iter()
        .fold(0u16, |acc, d| acc * 10 + u16::from(d - b'0'));
    let (more, text) = match line.get(3) {
        None => (false, &[][..]),
        Some(b' ') => (false, &line[4..]),
        Some(b'-') => (true, &line[4..]),
        Some(_) => return Err(not_smtp()),
    };
    Ok((code, more, printable(text)))
}

/// The text as UTF-8 (lossy), control characters replaced, at most [`MAX_REPLY_LINE`] bytes.
fn printable(bytes: &[u8]) -> String {
    let bytes = &bytes[..bytes.len().min(MAX_REPLY_LINE)];
    String::from_utf8_lossy(bytes)
        .chars()
        .map(|c| {
            if c.is_control() && c != '\t' {
                '\u{fffd}'
            } else {
                c
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn replies(input: &[u8]) -> Vec<std::result::Result<(u16, Vec<String>), String>> {
        let mut reader = LineReader::default();
        let mut io = input;
        let mut out = Vec::new();
        loop {
            match reader.read_reply(&mut io) {
                Ok(r) => out.push(Ok((r.code, r.lines))),
                Err(SmtpError::Closed) => return out,
                Err(e) => {
                    out.push(Err(e.to_string()));
                    return out;
                }
            }
        }
    }

    #[test]
    fn multi_line_replies() {
        let got = replies(
            b"220-mx.example ESMTP\r\n220 ready\r\n250-mx\r\n250-STARTTLS\r\n250 SIZE\r\n221\n",
        );
        assert_eq!(
            got,
            vec![
                Ok((220, vec!["mx.example ESMTP".into(), "ready".into()])),
                Ok((250, vec!["mx".into(), "STARTTLS".into(), "SIZE".into()])),
                Ok((221, vec![String::new()])),
            ]
        );
    }

    #[test]
    fn hostile_replies() {
        let cases: &[(&[u8], &str)] = &[
            (b"SSH-2.0-OpenSSH_9.6\r\n", "not an SMTP reply"),
            (b"220-a\r\n250 b\r\n", "not an SMTP reply"),
            (b"2200 x\r\n", "not an SMTP reply"),
            (b"620 x\r\n", "not an SMTP reply"),
            (b"22\r\n", "not an SMTP reply"),
        ];
        for (input, want) in cases {
            let got = replies(input);
            let last = got.last().unwrap().as_ref().unwrap_err();
            assert!(last.contains(want), "{input:?}: {last}");
        }
        let endless = vec![b'x'; 100_000];
        let got = replies(&endless);
        assert!(got[0].as_ref().unwrap_err().contains("longer than"));
        let many = b"220-x\r\n".repeat(1000);
        let got = replies(&many);
        assert!(got[0].as_ref().unwrap_err().contains("more than"));
        assert_eq!(printable(b"a\x1b[31mb"), "a\u{fffd}[31mb");
    }

    #[test]
    fn ehlo_names() {
        assert!(check_ehlo_name("localhost").is_ok());
        assert!(check_ehlo_name("[192.0.2.1]").is_ok());
        assert!(check_ehlo_name("a\r\nMAIL FROM").is_err());
        assert!(check_ehlo_name("").is_err());
    }
}
