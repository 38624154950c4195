//! An in-process HTTPS server on loopback: certificate chosen by SNI, canned responses per
//! (SNI host, path), request counters.
//!
//! HTTP is hand-written and minimal: one request per connection, the request head is read (at
//! most [`MAX_HEAD`] bytes), then a body of the declared `Content-Length` (at most
//! [`MAX_BODY`] bytes; a TLS-RPT receiver keeps what was POSTed), the canned response is
//! written with `Connection: close`, the TLS session is closed. Routing uses the SNI host
//! name, not the `Host` header (both are logged). Responses queued for a route
//! ([`HttpsServer::queue_responses`]) are served first, one per request, before its standing
//! one (a receiver that answers 500 twice, then 200).

use std::collections::HashMap;
use std::fmt;
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{ServerConfig, ServerConnection, StreamOwned};

use crate::conns::{Connections, accept_loop, lock};
use crate::tls::provider;
use crate::{Error, Identity, normalize_name};

/// The path of the MTA-STS policy (RFC 8461 §3.3).
pub const POLICY_PATH: &str = "/.well-known/mta-sts.txt";

/// Largest request head accepted; a longer one gets `431` and the connection is closed.
pub const MAX_HEAD: usize = 16 * 1024;

/// Largest request body read (by `Content-Length`); a larger one gets `413`.
pub const MAX_BODY: usize = 32 * 1024 * 1024;

/// Read and write timeout of each connection (handshake, request head, each write).
const IO_TIMEOUT: Duration = Duration::from_secs(5);

/// Granularity at which a dripping response notices shutdown or a vanished client.
const DRIP_SLICE: Duration = Duration::from_millis(20);

/// How the body of a response is framed and sent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum BodyMode {
    /// `Content-Length` equal to the body, body sent at once.
    #[default]
    ContentLength,
    /// `Transfer-Encoding: chunked`, no `Content-Length` (S-13).
    Chunked,
    /// `Content-Length` of this value whatever the body's size; the body is sent as is and the
    /// connection closed (S-14).
    DeclaredLength(u64),
    /// `Content-Length` equal to the body; after the head, one byte of body per interval (S-18).
    /// Stops when the client goes away or the server shuts down.
    Drip(Duration),
}

/// A canned HTTP response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpResponse {
    /// Status code (200, 204, 301, 404, 500, …).
    pub status: u16,
    /// `Content-Type` header, if any.
    pub content_type: Option<String>,
    /// `Location` header, if any.
    pub location: Option<String>,
    /// Further headers, sent in order (do not add framing or `Connection` headers here).
    pub headers: Vec<(String, String)>,
    /// Body bytes.
    pub body: Vec<u8>,
    /// How the body is framed and sent.
    pub mode: BodyMode,
}

impl HttpResponse {
    /// A response with this status, no headers and an empty body.
    pub fn new(status: u16) -> HttpResponse {
        HttpResponse {
            status,
            content_type: None,
            location: None,
            headers: Vec::new(),
            body: Vec::new(),
            mode: BodyMode::ContentLength,
        }
    }

    /// `200`, `Content-Type: text/plain`, this body.
    pub fn policy(body: impl Into<Vec<u8>>) -> HttpResponse {
        HttpResponse::new(200)
            .with_content_type("text/plain")
            .with_body(body)
    }

    /// A redirect with this status (301, 302, …) to `location`.
    pub fn redirect(status: u16, location: &str) -> HttpResponse {
        let mut r = HttpResponse::new(status);
        r.location = Some(location.to_owned());
        r
    }

    /// The same response with this `Content-Type`.
    pub fn with_content_type(mut self, content_type: &str) -> HttpResponse {
        self.content_type = Some(content_type.to_owned());
        self
    }

    /// The same response with this body.
    pub fn with_body(mut self, body: impl Into<Vec<u8>>) -> HttpResponse {
        self.body = body.into();
        self
    }

    /// The same response with this body mode.
    pub fn with_mode(mut self, mode: BodyMode) -> HttpResponse {
        self.mode = mode;
        self
    }

    /// The same response with one more header.
    pub fn with_header(mut self, name: &str, value: &str) -> HttpResponse {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }
}

/// One request the server read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestRecord {
    /// The SNI host name (lowercase), empty if the client sent none.
    pub sni: String,
    /// The request method.
    pub method: String,
    /// The request target as sent (normally the path).
    pub target: String,
    /// The `Host` header, if present.
    pub host_header: Option<String>,
    /// The `Content-Type` header, if present.
    pub content_type: Option<String>,
    /// The request body (by `Content-Length`; empty without one).
    pub body: Vec<u8>,
    /// The status answered.
    pub status: u16,
}

#[derive(Default)]
struct Sites {
    certs: HashMap<String, Arc<CertifiedKey>>,
    routes: HashMap<(String, String), HttpResponse>,
    queued: HashMap<(String, String), std::collections::VecDeque<HttpResponse>>,
}

#[derive(Default)]
struct Stats {
    requests: HashMap<String, u64>,
    hellos: HashMap<String, u64>,
    total_requests: u64,
    log: Vec<RequestRecord>,
}

/// Most requests kept in the log (counters keep counting beyond it).
const MAX_LOG: usize = 10_000;

struct Shared {
    sites: RwLock<Sites>,
    stats: Mutex<Stats>,
    stop: Arc<AtomicBool>,
}

impl Shared {
    fn sites(&self) -> std::sync::RwLockReadGuard<'_, Sites> {
        self.sites.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn sites_mut(&self) -> std::sync::RwLockWriteGuard<'_, Sites> {
        self.sites.write().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Chooses the certificate by SNI; an unknown or missing SNI aborts the handshake.
struct SniResolver {
    shared: Arc<Shared>,
}

impl fmt::Debug for SniResolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SniResolver")
    }
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let sni = hello.server_name().map(normalize_name).unwrap_or_default();
        *lock(&self.shared.stats)
            .hellos
            .entry(sni.clone())
            .or_insert(0) += 1;
        self.shared.sites().certs.get(&sni).cloned()
    }
}

/// An HTTPS server on `127.0.0.1`, ephemeral port, TLS 1.2 and 1.3 (rustls with ring).
///
/// Hosts are added with [`HttpsServer::set_identity`] and [`HttpsServer::set_response`] and can
/// be changed or removed while it runs. Dropping it (or [`HttpsServer::shutdown`]) stops every
/// thread it started.
pub struct HttpsServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    conns: Arc<Connections>,
    accept: Option<JoinHandle<()>>,
}

impl fmt::Debug for HttpsServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpsServer")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl HttpsServer {
    /// Starts a server with no hosts.
    pub fn start() -> Result<HttpsServer, Error> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let shared = Arc::new(Shared {
            sites: RwLock::new(Sites::default()),
            stats: Mutex::new(Stats::default()),
            stop: Arc::clone(&stop),
        });
        let config = Arc::new(
            ServerConfig::builder_with_provider(Arc::new(provider()))
                .with_safe_default_protocol_versions()?
                .with_no_client_auth()
                .with_cert_resolver(Arc::new(SniResolver {
                    shared: Arc::clone(&shared),
                })),
        );
        let conns = Arc::new(Connections::default());
        let loop_conns = Arc::clone(&conns);
        let loop_shared = Arc::clone(&shared);
        let accept = thread::Builder::new()
            .name("testworld-https".into())
            .spawn(move || {
                let _ = accept_loop(listener, stop, |stream| {
                    let config = Arc::clone(&config);
                    let shared = Arc::clone(&loop_shared);
                    loop_conns.spawn(stream, "testworld-https-conn", move |stream| {
                        serve(stream, config, &shared);
                    });
                });
            })?;
        Ok(HttpsServer {
            addr,
            shared,
            conns,
            accept: Some(accept),
        })
    }

    /// The listening address (`127.0.0.1:port`).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The listening port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Presents `identity` to clients whose SNI is `host` (replacing any previous one).
    pub fn set_identity(&self, host: &str, identity: &Identity) -> Result<(), Error> {
        let key = identity.certified_key()?;
        self.shared
            .sites_mut()
            .certs
            .insert(normalize_name(host), key);
        Ok(())
    }

    /// Serves `response` for `path` on `host` (replacing any previous one). Paths without a
    /// response get `404`.
    pub fn set_response(&self, host: &str, path: &str, response: HttpResponse) {
        self.shared
            .sites_mut()
            .routes
            .insert((normalize_name(host), path.to_owned()), response);
    }

    /// Serves `responses` for `path` on `host`, one per request in order, before the route's
    /// standing response ([`HttpsServer::set_response`]) takes over again: e.g. two `500`
    /// and then the standing `200`.
    pub fn queue_responses(&self, host: &str, path: &str, responses: Vec<HttpResponse>) {
        self.shared
            .sites_mut()
            .queued
            .entry((normalize_name(host), path.to_owned()))
            .or_default()
            .extend(responses);
    }

    /// Serves `response` for [`POLICY_PATH`] on `host`.
    pub fn set_policy_response(&self, host: &str, response: HttpResponse) {
        self.set_response(host, POLICY_PATH, response);
    }

    /// Stops serving `path` on `host` (it becomes `404`).
    pub fn remove_response(&self, host: &str, path: &str) {
        self.shared
            .sites_mut()
            .routes
            .remove(&(normalize_name(host), path.to_owned()));
    }

    /// Forgets `host` entirely: its certificate (handshakes for it now fail) and its responses.
    pub fn remove_host(&self, host: &str) {
        let host = normalize_name(host);
        let mut sites = self.shared.sites_mut();
        sites.certs.remove(&host);
        sites.routes.retain(|(h, _), _| *h != host);
    }

    /// How many requests for `host` (by SNI) had their head read.
    pub fn requests(&self, host: &str) -> u64 {
        let stats = lock(&self.shared.stats);
        stats
            .requests
            .get(&normalize_name(host))
            .copied()
            .unwrap_or(0)
    }

    /// How many requests had their head read, all hosts together.
    pub fn total_requests(&self) -> u64 {
        lock(&self.shared.stats).total_requests
    }

    /// How many TLS ClientHellos named `host` in SNI, whether or not the handshake then
    /// succeeded (a client rejecting the certificate still counts).
    pub fn handshakes(&self, host: &str) -> u64 {
        let stats = lock(&self.shared.stats);
        stats
            .hellos
            .get(&normalize_name(host))
            .copied()
            .unwrap_or(0)
    }

    /// The requests read so far, oldest first (the first 10 000 only).
    pub fn request_log(&self) -> Vec<RequestRecord> {
        lock(&self.shared.stats).log.clone()
    }

    /// Sets every counter back to zero and empties the log.
    pub fn reset_counters(&self) {
        *lock(&self.shared.stats) = Stats::default();
    }

    /// Stops the server, cuts open connections (including drips) and joins every thread.
    /// Also done on drop.
    pub fn shutdown(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
        self.conns.shutdown_all();
    }
}

impl Drop for HttpsServer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

type Tls = StreamOwned<ServerConnection, TcpStream>;

fn serve(stream: TcpStream, config: Arc<ServerConfig>, shared: &Shared) {
    if stream.set_read_timeout(Some(IO_TIMEOUT)).is_err()
        || stream.set_write_timeout(Some(IO_TIMEOUT)).is_err()
    {
        return;
    }
    let _ = stream.set_nodelay(true);
    let Ok(conn) = ServerConnection::new(config) else {
        return;
    };
    let mut tls = StreamOwned::new(conn, stream);
    match read_head(&mut tls) {
        Ok((head, rest)) => respond(&mut tls, &head, rest, shared),
        Err(HeadError::TooLarge) => {
            let mut r = HttpResponse::new(431);
            r.body = b"request head too large\n".to_vec();
            let _ = write_response(&mut tls, &r, false, &shared.stop);
        }
        Err(HeadError::Io) => {}
    }
    tls.conn.send_close_notify();
    let _ = tls.flush();
    let _ = tls.sock.shutdown(Shutdown::Both);
}

enum HeadError {
    TooLarge,
    Io,
}

/// Reads until the blank line ending the request head; the head, and what was read after it.
fn read_head(tls: &mut Tls) -> Result<(Vec<u8>, Vec<u8>), HeadError> {
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 2048];
    loop {
        if let Some(end) = find(&head, b"\r\n\r\n") {
            let rest = head.split_off(end + 4);
            head.truncate(end);
            return Ok((head, rest));
        }
        if head.len() > MAX_HEAD {
            return Err(HeadError::TooLarge);
        }
        match tls.read(&mut buf) {
            Ok(0) | Err(_) => return Err(HeadError::Io),
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Reads the rest of a body of `length` bytes, `rest` being its start.
fn read_body(tls: &mut Tls, mut rest: Vec<u8>, length: usize) -> Option<Vec<u8>> {
    let mut buf = [0u8; 16 * 1024];
    while rest.len() < length {
        match tls.read(&mut buf) {
            Ok(0) | Err(_) => return None,
            Ok(n) => rest.extend_from_slice(&buf[..n]),
        }
    }
    rest.truncate(length);
    Some(rest)
}

fn respond(tls: &mut Tls, head: &[u8], rest: Vec<u8>, shared: &Shared) {
    let text = String::from_utf8_lossy(head);
    let mut lines = text.split("\r\n");
    let mut parts = lines.next().unwrap_or("").split_ascii_whitespace();
    let method = parts.next().unwrap_or("").to_owned();
    let target = parts.next().unwrap_or("").to_owned();
    let fields: Vec<(&str, &str)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim(), v.trim()))
        .collect();
    let field = |name: &str| {
        fields
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| (*v).to_owned())
    };
    let host_header = field("host");
    let content_type = field("content-type");
    let length = field("content-length").and_then(|v| v.parse::<usize>().ok());
    let body = match length {
        Some(n) if n > MAX_BODY => {
            let r = HttpResponse::new(413);
            let _ = write_response(tls, &r, false, &shared.stop);
            return;
        }
        Some(n) => match read_body(tls, rest, n) {
            Some(body) => body,
            None => return,
        },
        None => Vec::new(),
    };
    let sni = tls
        .conn
        .server_name()
        .map(normalize_name)
        .unwrap_or_default();
    let path = route_path(&target).to_owned();
    let key = (sni.clone(), path);
    let queued = shared
        .sites_mut()
        .queued
        .get_mut(&key)
        .and_then(std::collections::VecDeque::pop_front);
    let response = queued
        .or_else(|| shared.sites().routes.get(&key).cloned())
        .unwrap_or_else(|| {
            HttpResponse::new(404)
                .with_content_type("text/plain")
                .with_body("not found\n")
        });
    {
        let mut stats = lock(&shared.stats);
        stats.total_requests += 1;
        *stats.requests.entry(sni.clone()).or_insert(0) += 1;
        if stats.log.len() < MAX_LOG {
            stats.log.push(RequestRecord {
                sni: sni.clone(),
                method: method.clone(),
                target: target.clone(),
                host_header,
                content_type,
                body,
                status: response.status,
            });
        }
    }
    let _ = write_response(tls, &response, method == "HEAD", &shared.stop);
}

/// The path used for routing: absolute-form targets lose scheme and authority, the query is
/// dropped.
fn route_path(target: &str) -> &str {
    let mut path = target;
    if let Some(rest) = path
        .strip_prefix("https://")
        .or_else(|| path.strip_prefix("http://"))
    {
        path = rest.find('/').map_or("/", |i| &rest[i..]);
    }
    path.split('?').next().unwrap_or(path)
}

fn write_response(
    tls: &mut Tls,
    r: &HttpResponse,
    head_only: bool,
    stop: &AtomicBool,
) -> io::Result<()> {
    let mut head = format!("HTTP/1.1 {} {}\r\n", r.status, reason(r.status));
    if let Some(ct) = &r.content_type {
        head.push_str(&format!("Content-Type: {ct}\r\n"));
    }
    if let Some(location) = &r.location {
        head.push_str(&format!("Location: {location}\r\n"));
    }
    for (k, v) in &r.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    match r.mode {
        BodyMode::ContentLength | BodyMode::Drip(_) => {
            head.push_str(&format!("Content-Length: {}\r\n", r.body.len()));
        }
        BodyMode::DeclaredLength(n) => head.push_str(&format!("Content-Length: {n}\r\n")),
        BodyMode::Chunked => head.push_str("Transfer-Encoding: chunked\r\n"),
    }
    head.push_str("Connection: close\r\n\r\n");
    tls.write_all(head.as_bytes())?;
    if head_only {
        return tls.flush();
    }
    match r.mode {
        BodyMode::ContentLength | BodyMode::DeclaredLength(_) => tls.write_all(&r.body)?,
        BodyMode::Chunked => {
            for chunk in r.body.chunks(8192) {
                tls.write_all(format!("{:x}\r\n", chunk.len()).as_bytes())?;
                tls.write_all(chunk)?;
                tls.write_all(b"\r\n")?;
            }
            tls.write_all(b"0\r\n\r\n")?;
        }
        BodyMode::Drip(interval) => {
            tls.flush()?;
            for byte in &r.body {
                if !wait_while_client_listens(&tls.sock, interval, stop) {
                    return Ok(());
                }
                tls.write_all(std::slice::from_ref(byte))?;
                tls.flush()?;
            }
        }
    }
    tls.flush()
}

/// Sleeps for `interval` in small slices; returns `false` early if the server is stopping or the
/// client sent anything (a close_notify, a FIN) or the socket failed.
fn wait_while_client_listens(sock: &TcpStream, interval: Duration, stop: &AtomicBool) -> bool {
    let deadline = Instant::now() + interval;
    loop {
        if stop.load(Ordering::SeqCst) {
            return false;
        }
        if sock.set_nonblocking(true).is_err() {
            return false;
        }
        let mut probe = [0u8; 1];
        let peeked = sock.peek(&mut probe);
        if sock.set_nonblocking(false).is_err() {
            return false;
        }
        match peeked {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            _ => return false,
        }
        let now = Instant::now();
        if now >= deadline {
            return true;
        }
        thread::sleep(DRIP_SLICE.min(deadline - now));
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        413 => "Content Too Large",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

#[cfg(test)]
mod tests {
    use super::route_path;

    #[test]
    fn route_path_strips_authority_and_query() {
        for (target, path) in [
            ("/.well-known/mta-sts.txt", "/.well-known/mta-sts.txt"),
            ("/x?y=1", "/x"),
            ("https://h.test/a/b?c", "/a/b"),
            ("https://h.test", "/"),
        ] {
            assert_eq!(route_path(target), path, "{target}");
        }
    }
}
