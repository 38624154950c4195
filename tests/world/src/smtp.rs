//! Loopback SMTP servers standing in for MX hosts: enough ESMTP to offer STARTTLS (RFC 5321,
//! RFC 3207), each certificate case of scenarios S-50…S-64, and hostile behaviours.
//!
//! A normal session: a two-line `220` banner, `EHLO` answered with a multi-line `250` reply
//! (advertising `STARTTLS` unless told not to), `STARTTLS` → `220` → a TLS 1.2/1.3 handshake
//! (rustls, ring) presenting the server's [`Identity`] whatever the SNI, then `EHLO` again
//! (without `STARTTLS`), `NOOP`, `RSET`, `QUIT`. No mail is accepted.
//!
//! **TLS 1.0 only** ([`SmtpBehaviour::Tls10Only`]): rustls cannot speak TLS 1.0, so the server
//! emulates one: it accepts `STARTTLS`, reads the client's ClientHello record and answers with
//! a ServerHello selecting TLS 1.0 (`0x0301`, `TLS_RSA_WITH_AES_128_CBC_SHA`), as an old
//! server would. A TLS 1.2+ client must abort there (rustls sends a `protocol_version` alert).
//!
//! **A mail sink** ([`SmtpBehaviour::AcceptMail`]): a relay that takes mail in plain text
//! (`MAIL FROM`, `RCPT TO`, `DATA` with dot-unstuffing) and keeps every message
//! ([`SmtpServer::messages`]), for the TLS-RPT report mails.
//!
//! Every server binds a loopback address on an ephemeral port, serves each connection on its own
//! thread (at most [`MAX_CONNECTIONS`](crate::MAX_CONNECTIONS) at once), with 5 s read and write
//! timeouts, and stops every thread when dropped.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use rustls::{ServerConfig, ServerConnection, StreamOwned};

use crate::conns::{Connections, accept_loop, lock};
use crate::{Error, Identity};

/// Read and write timeout of each connection.
const IO_TIMEOUT: Duration = Duration::from_secs(5);

/// Longest command line the server reads; a longer one gets `500` and the connection closes.
const MAX_COMMAND: usize = 4096;

/// Most bytes a hostile server writes to one client before giving up.
const MAX_HOSTILE_BYTES: usize = 64 * 1024 * 1024;

/// Most commands kept in the log.
const MAX_LOG: usize = 10_000;

/// The name the servers call themselves in banners and EHLO replies.
pub const SMTP_SERVER_NAME: &str = "mx.testworld.invalid";

/// What an [`SmtpServer`] does with each connection.
#[derive(Clone)]
#[non_exhaustive]
pub enum SmtpBehaviour {
    /// A working MX: STARTTLS advertised and accepted, TLS with this identity (S-50…S-52,
    /// S-57…S-61 with the matching certificate).
    Starttls(Identity),
    /// STARTTLS is not advertised, and the command is answered `502` (S-56).
    NoStarttls,
    /// STARTTLS is advertised but answered `454 4.7.0` (TLS temporarily unavailable).
    RefuseStarttls,
    /// STARTTLS is advertised and accepted, then the server answers the ClientHello with a
    /// TLS 1.0 ServerHello (see the module documentation).
    Tls10Only,
    /// STARTTLS is advertised and accepted, then the server never answers the ClientHello
    /// (a TLS handshake that can only end at the client's deadline).
    StallAfterStarttls,
    /// STARTTLS is advertised; the `220` reply to it comes in one write with an extra
    /// `250` line, as an attacker on the path would inject it (CVE-2011-0411), then the
    /// server waits. A client must not carry those bytes into the TLS session.
    InjectAfterStarttls,
    /// Accepts the connection and never says anything (no banner).
    NoBanner,
    /// Sends `220-` and then `x` forever, never ending the line.
    EndlessLine,
    /// Sends `220-` continuation lines forever, never ending the reply.
    EndlessReply,
    /// Sends something that is not SMTP (an SSH banner), then waits.
    Garbage,
    /// Refuses the session with a `554` banner, then answers `503` to anything but `QUIT`.
    RejectSession,
    /// A mail sink: no STARTTLS; `MAIL FROM`, `RCPT TO` and `DATA` accepted, every message
    /// kept ([`SmtpServer::messages`]).
    AcceptMail,
}

/// A message an [`SmtpBehaviour::AcceptMail`] server took.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReceivedMail {
    /// The `MAIL FROM` address (without the angle brackets).
    pub from: String,
    /// The `RCPT TO` addresses.
    pub to: Vec<String>,
    /// The message, dot-unstuffed, CRLF line ends, without the final `.` line.
    pub data: Vec<u8>,
}

/// The largest message a mail sink keeps; a larger one gets `552`.
const MAX_MESSAGE: usize = 64 * 1024 * 1024;

impl fmt::Debug for SmtpBehaviour {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SmtpBehaviour::Starttls(_) => "Starttls",
            SmtpBehaviour::NoStarttls => "NoStarttls",
            SmtpBehaviour::RefuseStarttls => "RefuseStarttls",
            SmtpBehaviour::Tls10Only => "Tls10Only",
            SmtpBehaviour::StallAfterStarttls => "StallAfterStarttls",
            SmtpBehaviour::InjectAfterStarttls => "InjectAfterStarttls",
            SmtpBehaviour::NoBanner => "NoBanner",
            SmtpBehaviour::EndlessLine => "EndlessLine",
            SmtpBehaviour::EndlessReply => "EndlessReply",
            SmtpBehaviour::Garbage => "Garbage",
            SmtpBehaviour::RejectSession => "RejectSession",
            SmtpBehaviour::AcceptMail => "AcceptMail",
        })
    }
}

impl SmtpBehaviour {
    fn advertises_starttls(&self) -> bool {
        matches!(
            self,
            SmtpBehaviour::Starttls(_)
                | SmtpBehaviour::RefuseStarttls
                | SmtpBehaviour::Tls10Only
                | SmtpBehaviour::StallAfterStarttls
                | SmtpBehaviour::InjectAfterStarttls
        )
    }
}

#[derive(Default)]
struct Stats {
    connections: u64,
    handshakes: u64,
    sni: Vec<String>,
    commands: Vec<String>,
    messages: Vec<ReceivedMail>,
}

struct Shared {
    behaviour: SmtpBehaviour,
    tls: Option<Arc<ServerConfig>>,
    stats: Mutex<Stats>,
    stop: Arc<AtomicBool>,
}

impl Shared {
    fn log_command(&self, line: &str) {
        let mut stats = lock(&self.stats);
        if stats.commands.len() < MAX_LOG {
            stats.commands.push(line.to_owned());
        }
    }
}

/// An SMTP server on a loopback address (see the module documentation).
///
/// ```no_run
/// use mtasts_testworld::{CertSpec, SmtpBehaviour, SmtpServer, TestCa};
///
/// let ca = TestCa::new()?;
/// let identity = ca.issue(&CertSpec::dns(["mail.example.com"]))?;
/// let mx = SmtpServer::start(SmtpBehaviour::Starttls(identity))?;
/// // … probe mx.addr() as "mail.example.com" …
/// assert_eq!(mx.sni_names(), ["mail.example.com"]);
/// # Ok::<(), mtasts_testworld::Error>(())
/// ```
pub struct SmtpServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    conns: Arc<Connections>,
    accept: Option<JoinHandle<()>>,
}

impl fmt::Debug for SmtpServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpServer")
            .field("addr", &self.addr)
            .field("behaviour", &self.shared.behaviour)
            .finish_non_exhaustive()
    }
}

impl SmtpServer {
    /// Starts a server on `127.0.0.1`, ephemeral port.
    pub fn start(behaviour: SmtpBehaviour) -> Result<SmtpServer, Error> {
        SmtpServer::start_at(SocketAddr::new(Ipv4Addr::LOCALHOST.into(), 0), behaviour)
    }

    /// Starts a server on `addr` (a loopback address such as `127.0.0.1` or `[::1]`; port 0
    /// for an ephemeral one).
    pub fn start_at(addr: SocketAddr, behaviour: SmtpBehaviour) -> Result<SmtpServer, Error> {
        SmtpServer::from_listener(TcpListener::bind(addr)?, behaviour)
    }

    /// Starts one server per behaviour, all on the **same port**, server `i` on
    /// `127.0.1.<i+1>`, so MX hosts with different behaviours can be reached by a client
    /// that has one port setting (`mtasts check --port`). Point each MX host's A record at its
    /// server's [`SmtpServer::ip`]. Needs the whole `127.0.0.0/8` on the loopback interface
    /// (Linux; not macOS): [`Error::Io`] otherwise.
    pub fn start_group(behaviours: Vec<SmtpBehaviour>) -> Result<Vec<SmtpServer>, Error> {
        let ip = |i: usize| -> Result<Ipv4Addr, Error> {
            let last = u8::try_from(i + 1)
                .map_err(|_| Error::Spec("at most 255 servers in a group".into()))?;
            Ok(Ipv4Addr::new(127, 0, 1, last))
        };
        if behaviours.is_empty() {
            return Ok(Vec::new());
        }
        'attempt: for _ in 0..16 {
            let first = TcpListener::bind((ip(0)?, 0))?;
            let port = first.local_addr()?.port();
            let mut listeners = vec![first];
            for i in 1..behaviours.len() {
                match TcpListener::bind((ip(i)?, port)) {
                    Ok(l) => listeners.push(l),
                    Err(e) if e.kind() == io::ErrorKind::AddrInUse => continue 'attempt,
                    Err(e) => return Err(e.into()),
                }
            }
            return listeners
                .into_iter()
                .zip(behaviours)
                .map(|(l, b)| SmtpServer::from_listener(l, b))
                .collect();
        }
        Err(Error::Io(io::Error::other(
            "no port is free on every address of the group",
        )))
    }

    fn from_listener(listener: TcpListener, behaviour: SmtpBehaviour) -> Result<SmtpServer, Error> {
        let addr = listener.local_addr()?;
        let tls = match &behaviour {
            SmtpBehaviour::Starttls(identity) => Some(identity.server_config()?),
            _ => None,
        };
        let stop = Arc::new(AtomicBool::new(false));
        let shared = Arc::new(Shared {
            behaviour,
            tls,
            stats: Mutex::new(Stats::default()),
            stop: Arc::clone(&stop),
        });
        let conns = Arc::new(Connections::default());
        let loop_conns = Arc::clone(&conns);
        let loop_shared = Arc::clone(&shared);
        let accept = thread::Builder::new()
            .name("testworld-smtp".into())
            .spawn(move || {
                let _ = accept_loop(listener, stop, |stream| {
                    lock(&loop_shared.stats).connections += 1;
                    let shared = Arc::clone(&loop_shared);
                    loop_conns.spawn(stream, "testworld-smtp-conn", move |stream| {
                        serve(stream, &shared);
                    });
                });
            })?;
        Ok(SmtpServer {
            addr,
            shared,
            conns,
            accept: Some(accept),
        })
    }

    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The listening IP address.
    pub fn ip(&self) -> IpAddr {
        self.addr.ip()
    }

    /// The listening port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// How many connections were accepted.
    pub fn connections(&self) -> u64 {
        lock(&self.shared.stats).connections
    }

    /// How many TLS handshakes completed.
    pub fn tls_handshakes(&self) -> u64 {
        lock(&self.shared.stats).handshakes
    }

    /// The SNI names clients sent in completed handshakes, in order (empty string: no SNI).
    pub fn sni_names(&self) -> Vec<String> {
        lock(&self.shared.stats).sni.clone()
    }

    /// The command lines received, in order, across connections (`EHLO localhost`,
    /// `STARTTLS`, …; the first 10 000).
    pub fn commands(&self) -> Vec<String> {
        lock(&self.shared.stats).commands.clone()
    }

    /// The messages taken so far ([`SmtpBehaviour::AcceptMail`]), in order.
    pub fn messages(&self) -> Vec<ReceivedMail> {
        lock(&self.shared.stats).messages.clone()
    }

    /// Stops the server, cuts open connections and joins every thread. Also done on drop.
    pub fn shutdown(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
        self.conns.shutdown_all();
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn serve(stream: TcpStream, shared: &Shared) {
    if stream.set_read_timeout(Some(IO_TIMEOUT)).is_err()
        || stream.set_write_timeout(Some(IO_TIMEOUT)).is_err()
    {
        return;
    }
    let _ = stream.set_nodelay(true);
    let mut stream = stream;
    match &shared.behaviour {
        SmtpBehaviour::NoBanner => drain(&mut stream, shared),
        SmtpBehaviour::EndlessLine => {
            let _ = stream.write_all(b"220-");
            flood(&mut stream, shared, &[b'x'; 1024]);
        }
        SmtpBehaviour::EndlessReply => {
            flood(
                &mut stream,
                shared,
                b"220-mx.testworld.invalid keeps talking\r\n",
            );
        }
        SmtpBehaviour::Garbage => {
            if stream.write_all(b"SSH-2.0-OpenSSH_9.6\r\n").is_ok() {
                drain(&mut stream, shared);
            }
        }
        SmtpBehaviour::RejectSession => {
            let banner = format!("554 5.3.2 {SMTP_SERVER_NAME} no service for you\r\n");
            if stream.write_all(banner.as_bytes()).is_ok() {
                let _ = commands(&mut stream, shared, Phase::Rejected);
            }
        }
        SmtpBehaviour::Starttls(_)
        | SmtpBehaviour::InjectAfterStarttls
        | SmtpBehaviour::NoStarttls
        | SmtpBehaviour::RefuseStarttls
        | SmtpBehaviour::Tls10Only
        | SmtpBehaviour::StallAfterStarttls
        | SmtpBehaviour::AcceptMail => dialogue(stream, shared),
    }
}

fn dialogue(mut stream: TcpStream, shared: &Shared) {
    let banner = format!(
        "220-{SMTP_SERVER_NAME} ESMTP mtasts test world\r\n220 {SMTP_SERVER_NAME} ready\r\n"
    );
    if stream.write_all(banner.as_bytes()).is_err() {
        return;
    }
    // A fresh line reader per phase: plaintext read ahead of STARTTLS is discarded (RFC 3207
    // §4.2), as a careful server does.
    if commands(&mut stream, shared, Phase::Plain) != Next::StartTls {
        let _ = stream.shutdown(Shutdown::Both);
        return;
    }
    match (&shared.behaviour, &shared.tls) {
        (SmtpBehaviour::Starttls(_), Some(config)) => {
            let Ok(conn) = ServerConnection::new(Arc::clone(config)) else {
                return;
            };
            let mut tls = StreamOwned::new(conn, stream);
            while tls.conn.is_handshaking() {
                if tls.conn.complete_io(&mut tls.sock).is_err() {
                    let _ = tls.sock.shutdown(Shutdown::Both);
                    return;
                }
            }
            {
                let mut stats = lock(&shared.stats);
                stats.handshakes += 1;
                let sni = tls.conn.server_name().unwrap_or_default().to_owned();
                stats.sni.push(sni);
            }
            let _ = commands(&mut tls, shared, Phase::Tls);
            tls.conn.send_close_notify();
            let _ = tls.flush();
            let _ = tls.sock.shutdown(Shutdown::Both);
        }
        (SmtpBehaviour::Tls10Only, _) => {
            tls10_server_hello(&mut stream);
            drain(&mut stream, shared);
        }
        (SmtpBehaviour::StallAfterStarttls | SmtpBehaviour::InjectAfterStarttls, _) => {
            drain(&mut stream, shared)
        }
        _ => {}
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Plain,
    Tls,
    Rejected,
}

#[derive(Debug, PartialEq, Eq)]
enum Next {
    Close,
    StartTls,
}

/// Reads a message after `DATA` up to the `.` line, dot-unstuffed; `None` on EOF, an error
/// or a message over [`MAX_MESSAGE`].
fn read_data<S: Read>(stream: &mut S, buf: &mut Vec<u8>) -> Option<Vec<u8>> {
    let mut data = Vec::new();
    loop {
        let line = read_line(stream, buf).ok()??;
        if line == "." {
            return Some(data);
        }
        let line = line.strip_prefix('.').unwrap_or(&line);
        data.extend_from_slice(line.as_bytes());
        data.extend_from_slice(b"\r\n");
        if data.len() > MAX_MESSAGE {
            return None;
        }
    }
}

/// The address of `MAIL FROM:<a>` or `RCPT TO:<a>` (`arg` is what follows the verb).
fn path_of(arg: &str) -> Option<String> {
    let (_, rest) = arg.split_once(':')?;
    let rest = rest.trim();
    let inner = rest.strip_prefix('<')?;
    let end = inner.find('>')?;
    Some(inner[..end].to_owned())
}

/// Serves commands until `QUIT`, EOF, an error, or an accepted `STARTTLS`.
fn commands<S: Read + Write>(stream: &mut S, shared: &Shared, phase: Phase) -> Next {
    let mut buf = Vec::new();
    let mut from: Option<String> = None;
    let mut to: Vec<String> = Vec::new();
    loop {
        let line = match read_line(stream, &mut buf) {
            Ok(Some(line)) => line,
            Ok(None) => return Next::Close,
            Err(()) => {
                let _ = stream.write_all(b"500 5.5.6 line too long\r\n");
                return Next::Close;
            }
        };
        shared.log_command(&line);
        let verb = line
            .split_ascii_whitespace()
            .next()
            .unwrap_or_default()
            .to_ascii_uppercase();
        let arg = line.get(verb.len()..).unwrap_or_default().trim();
        let sink = matches!(shared.behaviour, SmtpBehaviour::AcceptMail);
        let (reply, next) = match verb.as_str() {
            "MAIL" if sink => match path_of(arg) {
                Some(path) => {
                    from = Some(path);
                    to.clear();
                    ("250 2.1.0 ok\r\n".to_owned(), None)
                }
                None => ("501 5.5.4 syntax: MAIL FROM:<address>\r\n".to_owned(), None),
            },
            "RCPT" if sink && from.is_none() => ("503 5.5.1 MAIL first\r\n".to_owned(), None),
            "RCPT" if sink => match path_of(arg) {
                Some(path) => {
                    to.push(path);
                    ("250 2.1.5 ok\r\n".to_owned(), None)
                }
                None => ("501 5.5.4 syntax: RCPT TO:<address>\r\n".to_owned(), None),
            },
            "DATA" if sink && to.is_empty() => ("503 5.5.1 RCPT first\r\n".to_owned(), None),
            "DATA" if sink => {
                if stream
                    .write_all(b"354 end with <CRLF>.<CRLF>\r\n")
                    .and_then(|()| stream.flush())
                    .is_err()
                {
                    return Next::Close;
                }
                match read_data(stream, &mut buf) {
                    Some(data) => {
                        lock(&shared.stats).messages.push(ReceivedMail {
                            from: from.take().unwrap_or_default(),
                            to: std::mem::take(&mut to),
                            data,
                        });
                        ("250 2.0.0 queued\r\n".to_owned(), None)
                    }
                    None => {
                        let _ = stream.write_all(b"552 5.3.4 message not taken\r\n");
                        return Next::Close;
                    }
                }
            }
            _ => reply(&verb, arg, &shared.behaviour, phase),
        };
        if stream.write_all(reply.as_bytes()).is_err() || stream.flush().is_err() {
            return Next::Close;
        }
        if let Some(next) = next {
            return next;
        }
    }
}

fn reply(verb: &str, arg: &str, behaviour: &SmtpBehaviour, phase: Phase) -> (String, Option<Next>) {
    if verb == "QUIT" {
        return ("221 2.0.0 bye\r\n".into(), Some(Next::Close));
    }
    if phase == Phase::Rejected {
        return ("503 5.5.1 no service\r\n".into(), None);
    }
    match verb {
        "EHLO" => {
            let mut r = format!("250-{SMTP_SERVER_NAME} greets {arg}\r\n");
            r.push_str("250-PIPELINING\r\n250-SIZE 10240000\r\n");
            if phase == Phase::Plain && behaviour.advertises_starttls() {
                r.push_str("250-STARTTLS\r\n");
            }
            r.push_str("250 8BITMIME\r\n");
            (r, None)
        }
        "HELO" => (format!("250 {SMTP_SERVER_NAME}\r\n"), None),
        "NOOP" | "RSET" => ("250 2.0.0 ok\r\n".into(), None),
        "STARTTLS" if phase == Phase::Tls => ("503 5.5.1 TLS already active\r\n".into(), None),
        "STARTTLS" => match behaviour {
            SmtpBehaviour::Starttls(_)
            | SmtpBehaviour::Tls10Only
            | SmtpBehaviour::StallAfterStarttls => (
                "220 2.0.0 ready to start TLS\r\n".into(),
                Some(Next::StartTls),
            ),
            SmtpBehaviour::RefuseStarttls => (
                "454 4.7.0 TLS not available due to temporary reason\r\n".into(),
                None,
            ),
            SmtpBehaviour::InjectAfterStarttls => (
                "220 2.0.0 ready to start TLS\r\n250 2.0.0 injected before TLS\r\n".into(),
                Some(Next::StartTls),
            ),
            _ => ("502 5.5.1 command not implemented\r\n".into(), None),
        },
        _ => ("502 5.5.2 command not recognized\r\n".into(), None),
    }
}

/// One command line (CRLF or LF removed); `Ok(None)` at EOF or on an I/O error, `Err` for a
/// line longer than [`MAX_COMMAND`].
fn read_line<S: Read>(stream: &mut S, buf: &mut Vec<u8>) -> Result<Option<String>, ()> {
    loop {
        if let Some(end) = buf.iter().position(|b| *b == b'\n') {
            let mut line: Vec<u8> = buf.drain(..=end).collect();
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            return Ok(Some(String::from_utf8_lossy(&line).into_owned()));
        }
        if buf.len() > MAX_COMMAND {
            return Err(());
        }
        let mut chunk = [0u8; 512];
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return Ok(None),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

/// Reads and discards until EOF, an error or shutdown (a server that never speaks).
fn drain(stream: &mut TcpStream, shared: &Shared) {
    let mut buf = [0u8; 512];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                if shared.stop.load(Ordering::SeqCst) {
                    return;
                }
            }
            Err(_) => return,
        }
    }
}

/// Writes `chunk` over and over until the client goes away, shutdown, or
/// [`MAX_HOSTILE_BYTES`].
fn flood(stream: &mut TcpStream, shared: &Shared, chunk: &[u8]) {
    let mut sent = 0;
    while sent < MAX_HOSTILE_BYTES && !shared.stop.load(Ordering::SeqCst) {
        if stream.write_all(chunk).is_err() {
            return;
        }
        sent += chunk.len();
    }
}

/// Reads the ClientHello record and answers with a TLS 1.0 ServerHello (RFC 2246 §7.4.1.3):
/// version 3.1, a zero random, no session id, `TLS_RSA_WITH_AES_128_CBC_SHA`, no compression.
fn tls10_server_hello(stream: &mut TcpStream) {
    let mut header = [0u8; 5];
    if stream.read_exact(&mut header).is_err() || header[0] != 0x16 {
        return;
    }
    let len = usize::from(u16::from_be_bytes([header[3], header[4]]));
    let mut hello = vec![0u8; len];
    if stream.read_exact(&mut hello).is_err() {
        return;
    }
    let mut body = vec![0x03, 0x01]; // server_version TLS 1.0
    body.extend([0u8; 32]); // random
    body.push(0); // session_id length
    body.extend([0x00, 0x2f]); // TLS_RSA_WITH_AES_128_CBC_SHA
    body.push(0); // compression: null
    let body_len = u8::try_from(body.len()).unwrap_or(u8::MAX);
    let mut handshake = vec![0x02, 0x00, 0x00, body_len]; // server_hello
    handshake.extend(body);
    let record_len = u8::try_from(handshake.len()).unwrap_or(u8::MAX);
    let mut record = vec![0x16, 0x03, 0x01, 0x00, record_len];
    record.extend(handshake);
    let _ = stream.write_all(&record);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CertSpec, TestCa};
    use rustls::ClientConnection;
    use rustls::pki_types::ServerName;
    use std::io::{BufRead, BufReader};

    /// Reads one (multi-line) reply; returns its lines.
    fn reply(reader: &mut impl BufRead) -> Vec<String> {
        let mut lines = Vec::new();
        loop {
            let mut line = String::new();
            assert!(reader.read_line(&mut line).unwrap() > 0, "EOF");
            let done = line.as_bytes().get(3) != Some(&b'-');
            lines.push(line.trim_end().to_owned());
            if done {
                return lines;
            }
        }
    }

    fn plain(server: &SmtpServer) -> (BufReader<TcpStream>, TcpStream) {
        let stream = TcpStream::connect(server.addr()).unwrap();
        stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        (BufReader::new(stream.try_clone().unwrap()), stream)
    }

    #[test]
    fn starttls_session() {
        let ca = TestCa::new().unwrap();
        let identity = ca.issue(&CertSpec::dns(["mail.example.com"])).unwrap();
        let server = SmtpServer::start(SmtpBehaviour::Starttls(identity)).unwrap();
        let (mut reader, mut writer) = plain(&server);
        let banner = reply(&mut reader);
        assert_eq!(banner.len(), 2);
        assert!(banner[0].starts_with("220-"));
        writer.write_all(b"EHLO client.test\r\n").unwrap();
        let ehlo = reply(&mut reader);
        assert!(ehlo.contains(&"250-STARTTLS".to_owned()), "{ehlo:?}");
        writer.write_all(b"STARTTLS\r\n").unwrap();
        assert!(reply(&mut reader)[0].starts_with("220 "));

        let name = ServerName::try_from("mail.example.com").unwrap();
        let conn = ClientConnection::new(ca.client_config().unwrap(), name).unwrap();
        let mut tls = StreamOwned::new(conn, writer);
        tls.write_all(b"EHLO client.test\r\n").unwrap();
        let mut tls_reader = BufReader::new(tls);
        let ehlo = reply(&mut tls_reader);
        assert!(!ehlo.iter().any(|l| l.contains("STARTTLS")), "{ehlo:?}");
        tls_reader.get_mut().write_all(b"QUIT\r\n").unwrap();
        assert!(reply(&mut tls_reader)[0].starts_with("221 "));
        assert_eq!(server.sni_names(), ["mail.example.com"]);
        assert_eq!(server.tls_handshakes(), 1);
        assert_eq!(
            server.commands(),
            ["EHLO client.test", "STARTTLS", "EHLO client.test", "QUIT"]
        );
    }

    #[test]
    fn no_starttls_and_refused_starttls() {
        for (behaviour, code) in [
            (SmtpBehaviour::NoStarttls, "502"),
            (SmtpBehaviour::RefuseStarttls, "454"),
        ] {
            let advertised = behaviour.advertises_starttls();
            let server = SmtpServer::start(behaviour).unwrap();
            let (mut reader, mut writer) = plain(&server);
            reply(&mut reader);
            writer.write_all(b"EHLO client.test\r\n").unwrap();
            let ehlo = reply(&mut reader);
            assert_eq!(ehlo.iter().any(|l| l.ends_with("STARTTLS")), advertised);
            writer.write_all(b"STARTTLS\r\nQUIT\r\n").unwrap();
            assert!(reply(&mut reader)[0].starts_with(code));
            assert!(reply(&mut reader)[0].starts_with("221"));
        }
    }

    #[test]
    fn group_shares_one_port_and_drop_stops_the_servers() {
        let servers = match SmtpServer::start_group(vec![
            SmtpBehaviour::NoStarttls,
            SmtpBehaviour::RejectSession,
        ]) {
            Ok(servers) => servers,
            Err(e) => {
                eprintln!("127.0.1.x not available here, skipped: {e}");
                return;
            }
        };
        assert_eq!(servers[0].port(), servers[1].port());
        assert_ne!(servers[0].ip(), servers[1].ip());
        let (mut reader, _w) = plain(&servers[1]);
        assert!(reply(&mut reader)[0].starts_with("554"));
        let addr = servers[0].addr();
        drop(servers);
        assert!(TcpStream::connect(addr).is_err(), "stopped on drop");
    }
}
