//! The Sendmail/Postfix socketmap protocol and the TLS policy answer for Postfix's
//! `smtp_tls_policy_maps` (rules R-SRV-1 to R-SRV-7): what the policy server says, as pure
//! functions, so every listener (and every test) gives the same reply.
//!
//! The wire format is netstrings (`<length>:<bytes>,`): a request is `NAME KEY`, a reply
//! `OK <data>`, `NOTFOUND `, `TEMP <reason>` or `PERM <reason>`.

use std::fmt;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Instant;

use crate::dane::{Dane, DaneCache};
use crate::domain::Domain;
use crate::error::{Error, Result};
use crate::metrics::{AnswerKind, Answered, Metrics};
use crate::policy::Mode;
use crate::resolution::{Resolution, Source};
use crate::resolver::Resolver;
use crate::serve_settings::ServeSettings;

/// R-SRV-1: the largest request accepted, in bytes (the netstring's payload).
pub const MAX_REQUEST: usize = 10_000;
/// R-SRV-1: the largest reply sent, in bytes (the netstring's payload).
pub const MAX_REPLY: usize = 100_000;

/// Why a netstring could not be read. The connection it came on is to be closed (R-SRV-1).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum NetstringError {
    /// The length is not decimal digits followed by `:` (or has a leading zero).
    BadLength,
    /// The length is larger than the limit.
    TooLong {
        /// The length announced (saturated at `usize::MAX`).
        length: usize,
        /// The limit.
        limit: usize,
    },
    /// The payload is not followed by `,`.
    MissingComma,
}

impl fmt::Display for NetstringError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NetstringError::BadLength => f.write_str("malformed netstring length"),
            NetstringError::TooLong { length, limit } => {
                write!(
                    f,
                    "netstring of {length} bytes exceeds the {limit}-byte limit"
                )
            }
            NetstringError::MissingComma => f.write_str("netstring not terminated by ','"),
        }
    }
}

impl std::error::Error for NetstringError {}

/// Reads one netstring from the front of `buf`.
///
/// `Ok(None)`: more bytes are needed (nothing is consumed). `Ok(Some((payload, used)))`: the
/// payload and how many bytes of `buf` the netstring took. A length above `limit` is refused
/// as soon as its digits are seen, before any payload is buffered.
pub fn read_netstring(buf: &[u8], limit: usize) -> Result<Option<(&[u8], usize)>, NetstringError> {
    let digits = buf.iter().take_while(|b| b.is_ascii_digit()).count();
    // The most digits a length within `limit` can have.
    let max_digits = limit.to_string().len();
    if digits > max_digits {
        return Err(NetstringError::TooLong {
            length: usize::MAX,
            limit,
        });
    }
    let Some(&after) = buf.get(digits) else {
        return Ok(None);
    };
    if digits == 0 || after != b':' || (digits > 1 && buf[0] == b'0') {
        return Err(NetstringError::BadLength);
    }
    let length = buf[..digits].iter().fold(0usize, |n, d| {
        n.saturating_mul(10).saturating_add(usize::from(d - b'0'))
    });
    if length > limit {
        return Err(NetstringError::TooLong { length, limit });
    }
    let start = digits + 1;
    let end = start + length;
    match buf.get(end) {
        None => Ok(None),
        Some(b',') => Ok(Some((&buf[start..end], end + 1))),
        Some(_) => Err(NetstringError::MissingComma),
    }
}

/// `payload` as a netstring.
pub fn netstring(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 8);
    push_netstring(&mut out, &[payload]);
    out
}

/// Appends the netstring of the concatenated `parts` to `out` (no intermediate copies: the
/// policy server writes every reply this way).
fn push_netstring(out: &mut Vec<u8>, parts: &[&[u8]]) {
    let length: usize = parts.iter().map(|p| p.len()).sum();
    // The length's decimal digits, without `format!`.
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    let mut n = length;
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.reserve(digits.len() - at + length + 2);
    out.extend_from_slice(&digits[at..]);
    out.push(b':');
    for part in parts {
        out.extend_from_slice(part);
    }
    out.push(b',');
}

/// One socketmap request: `NAME KEY` (R-SRV-1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// The map name (`postfix` in `socketmap:unix:/run/mtasts.sock:postfix`).
    pub map: String,
    /// The key asked for.
    pub key: String,
}

impl Request {
    /// Parses a request payload. `None` when it is not UTF-8 or has no space; the reply to
    /// that is [`Reply::Perm`].
    pub fn parse(payload: &[u8]) -> Option<Request> {
        let (map, key) = Request::split(payload)?;
        Some(Request {
            map: map.to_string(),
            key: key.to_string(),
        })
    }

    /// The map name and the key of a request payload, borrowed ([`Request::parse`] without
    /// copies).
    pub fn split(payload: &[u8]) -> Option<(&str, &str)> {
        std::str::from_utf8(payload).ok()?.split_once(' ')
    }
}

/// R-SRV-4: the recipient domain a key names, or `None` for a key that is not a plain domain
/// name (`[host]`, `[host]:port`, `host:port`, an IP literal, a parent-domain probe `.x`,
/// or not a host name at all): those are answered `NOTFOUND `.
pub fn policy_domain(key: &str) -> Option<Domain> {
    // An IPv6 literal holds a colon; an IPv4 one is all-numeric, as below.
    if key.starts_with('.') || key.starts_with('[') || key.contains(':') {
        return None;
    }
    let domain = Domain::new(key).ok()?;
    // An all-numeric dotted name is an IPv4 address (or one written loosely), never a domain.
    let ipv4ish = domain
        .as_str()
        .split('.')
        .all(|label| label.bytes().all(|b| b.is_ascii_digit()));
    (!ipv4ish).then_some(domain)
}

/// How a map name treats DANE (R-SRV-6).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum DaneMode {
    /// Answer `dane` where the MX hosts have usable, validated TLSA records (the default).
    #[default]
    Auto,
    /// As `Auto`, but answer `dane-only` (Postfix then never falls back to unauthenticated
    /// TLS for such a domain).
    Only,
    /// Never look DANE up: MTA-STS alone.
    Off,
}

/// The options of one map name (as the Python resolver's "zones").
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct MapOptions {
    /// Answer a `testing` policy as `enforce` (R-SRV-3).
    pub strict_testing: bool,
    /// Add the TLSRPT attributes Postfix 3.10 and later read; off by default because older
    /// Postfix rejects them (R-SRV-5).
    pub tlsrpt: bool,
    /// Add `servername=hostname`, so Postfix sends SNI (R-SRV-2). Default on.
    pub sni: bool,
    /// DANE first (R-SRV-6). Default [`DaneMode::Auto`].
    pub dane: DaneMode,
}

impl MapOptions {
    /// The defaults: no strict testing, no TLSRPT attributes, SNI on, DANE auto.
    pub fn new() -> MapOptions {
        MapOptions {
            strict_testing: false,
            tlsrpt: false,
            sni: true,
            dane: DaneMode::Auto,
        }
    }
}

/// A socketmap reply (R-SRV-1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    /// `OK <data>`: the TLS policy for Postfix.
    Ok(String),
    /// `NOTFOUND `: no MTA-STS requirement; Postfix applies its defaults.
    NotFound,
    /// `TEMP <reason>`: Postfix defers the message (R-SRV-7).
    Temp(String),
    /// `PERM <reason>`: a request that cannot be answered; Postfix defers as well.
    Perm(String),
}

impl Reply {
    /// The reply's payload, at most [`MAX_REPLY`] bytes (a longer `OK` becomes `TEMP`).
    pub fn payload(&self) -> String {
        let text = match self {
            Reply::Ok(data) => format!("OK {data}"),
            Reply::NotFound => "NOTFOUND ".to_string(),
            Reply::Temp(reason) => format!("TEMP {}", one_line(reason)),
            Reply::Perm(reason) => format!("PERM {}", one_line(reason)),
        };
        if text.len() <= MAX_REPLY {
            text
        } else {
            "TEMP the policy answer exceeds the socketmap reply limit".to_string()
        }
    }

    /// The reply as a netstring, ready to write.
    pub fn to_netstring(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.write_netstring(&mut out);
        out
    }

    /// Appends the reply's netstring to `out`: the same bytes as [`Reply::to_netstring`],
    /// built without intermediate strings for `OK` and `NOTFOUND` (every cached answer).
    pub fn write_netstring(&self, out: &mut Vec<u8>) {
        match self {
            Reply::Ok(data) if "OK ".len() + data.len() <= MAX_REPLY => {
                push_netstring(out, &[b"OK ", data.as_bytes()]);
            }
            Reply::NotFound => push_netstring(out, &[b"NOTFOUND "]),
            other => push_netstring(out, &[other.payload().as_bytes()]),
        }
    }
}

/// Whether `text` is an IP address (R-SRV-4); most patterns are host names, told apart
/// without a parse by their last character (an IPv4 address ends in a digit, an IPv6 address
/// holds a colon).
fn looks_like_ip(text: &str) -> bool {
    let could_be = text.contains(':') || text.ends_with(|c: char| c.is_ascii_digit());
    could_be && text.parse::<IpAddr>().is_ok()
}

/// A reason on one line, control characters replaced (a reason is untrusted text).
fn one_line(reason: &str) -> String {
    reason
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// What Postfix is told for a resolution, under a map's options (R-SRV-2, R-SRV-3, R-SRV-5,
/// R-SRV-7). DANE (R-SRV-6) is decided before this, by the caller.
pub fn tls_policy_reply(resolution: &Resolution, options: &MapOptions) -> Reply {
    // R-SRV-7, never fail open: when whether a policy applies cannot be told, defer.
    let policy = match resolution.applicable_policy() {
        Ok(policy) => policy,
        Err(e) => return Reply::Temp(format!("{}: {e}", resolution.domain())),
    };
    let Some(policy) = policy else {
        // R-SRV-3: no policy, or one that could not be obtained (RFC 8461 §5: no policy).
        return Reply::NotFound;
    };
    match policy.mode() {
        Mode::Enforce => {}
        Mode::Testing if options.strict_testing => {}
        // R-SRV-3, R-APPLY-2, R-APPLY-3.
        Mode::Testing | Mode::None => return Reply::NotFound,
    }
    // R-SRV-2: policy order, each pattern once; `*.x` is `.x` for Postfix. R-SRV-4: an IP
    // literal never reaches `match=` (the parser drops those already).
    let mut matches: Vec<&str> = Vec::with_capacity(policy.mx().len());
    for pattern in policy.mx() {
        let text = pattern.as_str();
        let entry = text.strip_prefix('*').unwrap_or(text);
        if !looks_like_ip(entry.trim_start_matches('.')) && !matches.contains(&entry) {
            matches.push(entry);
        }
    }
    if matches.is_empty() {
        // R-APPLY-1: an enforce policy that lists no usable MX host allows no delivery. (The
        // parser already refuses such a policy, R-POL-7; this answer keeps it so.)
        return Reply::Temp(format!(
            "{}: the enforce policy lists no usable MX host",
            resolution.domain()
        ));
    }
    let mut data = String::with_capacity(64 + matches.iter().map(|m| m.len() + 1).sum::<usize>());
    data.push_str("secure match=");
    for (i, entry) in matches.iter().enumerate() {
        if i > 0 {
            data.push(':');
        }
        data.push_str(entry);
    }
    if options.sni {
        data.push_str(" servername=hostname");
    }
    if options.tlsrpt {
        let mut attributes = format!(" policy_type=sts policy_domain={}", resolution.domain());
        for pattern in policy.mx() {
            attributes.push_str(" mx_host_pattern=");
            attributes.push_str(pattern.as_str());
        }
        for line in policy.text().lines() {
            let line = one_line(line.trim_end_matches('\r'));
            if !line.trim().is_empty() {
                attributes.push_str(&format!(" {{ policy_string = {} }}", line.trim()));
            }
        }
        if resolution.source() == Source::CacheAfterFailure
            && let Some(kind) = resolution.failure().and_then(|f| f.result_type())
        {
            attributes.push_str(&format!(" policy_failure={}", kind.as_str()));
        }
        // The attributes are for reporting only: a policy too long for them keeps its
        // enforcement and loses the attributes.
        if "OK ".len() + data.len() + attributes.len() <= MAX_REPLY {
            data.push_str(&attributes);
        }
    }
    Reply::Ok(data)
}

/// The reply under DANE's word (R-SRV-6, R-APPLY-4), given the MTA-STS reply `sts`
/// ([`tls_policy_reply`]):
///
/// - a DANE lookup that failed temporarily: `TEMP`, never a fall-back to MTA-STS;
/// - every MX host with usable, validated TLSA records: `OK dane` (`OK dane-only` under
///   [`DaneMode::Only`]);
/// - only some: the MTA-STS `secure` answer when there is one (Postfix's policy is per
///   domain, and `dane` would let it reach the other hosts with unauthenticated TLS),
///   otherwise `dane`;
/// - DANE not applicable, or [`DaneMode::Off`] (`dane` is `None`): `sts` as it is.
pub fn dane_reply(
    dane: Option<std::result::Result<&Dane, &Error>>,
    sts: Reply,
    options: &MapOptions,
) -> Reply {
    let word = match options.dane {
        DaneMode::Only => "dane-only",
        DaneMode::Auto | DaneMode::Off => "dane",
    };
    match dane {
        Some(Err(e)) => Reply::Temp(format!("DANE lookup failed: {e}")),
        Some(Ok(Dane::Applies { .. })) => Reply::Ok(word.to_string()),
        Some(Ok(Dane::Partial { .. })) if !matches!(sts, Reply::Ok(_)) => {
            Reply::Ok(word.to_string())
        }
        _ => sts,
    }
}

/// What answers socketmap requests: the resolver, the map names' options, the DANE decisions
/// and the counters. Built anew on a configuration reload; connections pick the new one up
/// at their next request ([`ServerHandle`]).
#[derive(Debug)]
pub struct PolicyServer {
    resolver: Arc<Resolver>,
    settings: ServeSettings,
    dane: Arc<DaneCache>,
    metrics: Arc<Metrics>,
}

/// What one answer took, for the counters and the log.
pub(crate) struct Work {
    cache_hit: bool,
    resolution: Option<Resolution>,
}

impl PolicyServer {
    /// A server answering from `resolver` under `settings`; `dane` and `metrics` may be
    /// carried over from the server this one replaces.
    pub fn new(
        resolver: Arc<Resolver>,
        settings: ServeSettings,
        dane: Arc<DaneCache>,
        metrics: Arc<Metrics>,
    ) -> PolicyServer {
        PolicyServer {
            resolver,
            settings,
            dane,
            metrics,
        }
    }

    /// The resolver answers come from.
    pub fn resolver(&self) -> &Arc<Resolver> {
        &self.resolver
    }

    /// The settings this server answers under.
    pub fn settings(&self) -> &ServeSettings {
        &self.settings
    }

    /// The counters.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// The DANE decisions kept.
    pub fn dane_cache(&self) -> &Arc<DaneCache> {
        &self.dane
    }

    /// The answer to one request payload (R-SRV-1 to R-SRV-7) when it needs no network work
    /// (what the caches hold, a malformed request, a key that is not a domain), counted in
    /// the metrics; `None` when a lookup is needed, which [`EventLoops`](crate::EventLoops)
    /// runs on a thread of its own within `serve.answer_timeout`. A cached answer never waits
    /// for another domain's fetch.
    ///
    /// `received` is when the request was read (an event loop reads the clock once for all
    /// it read at once); the latency counted runs from then.
    pub fn answer_cached(&self, payload: &[u8], received: Instant) -> Option<Reply> {
        let (reply, work) = self.reply_now(payload)?;
        self.count(&reply, &work, received);
        Some(reply)
    }

    /// Counts an answer in the metrics: one asked for at `started` (also the answers of
    /// [`PolicyServer::lookup_answer`] and [`PolicyServer::overdue_answer`], which their
    /// caller counts).
    pub(crate) fn count(&self, reply: &Reply, work: &Work, started: Instant) {
        let failure = work
            .resolution
            .as_ref()
            .and_then(|r| r.failure())
            .and_then(|f| f.result_type());
        let kind = match reply {
            Reply::Ok(data) if data.starts_with("dane") => AnswerKind::Dane,
            Reply::Ok(_) => AnswerKind::Secure,
            Reply::NotFound => AnswerKind::NotFound,
            Reply::Temp(_) => AnswerKind::Temp,
            Reply::Perm(_) => AnswerKind::Perm,
        };
        let fetched = work
            .resolution
            .as_ref()
            .is_some_and(|r| r.source() == Source::Fetched);
        self.metrics.record(&Answered {
            kind,
            cache_hit: work.cache_hit,
            fetched,
            failure,
            latency: started.elapsed(),
        });
    }

    /// The answer when no network work is needed, or `None`.
    fn reply_now(&self, payload: &[u8]) -> Option<(Reply, Work)> {
        let nothing = || Work {
            cache_hit: false,
            resolution: None,
        };
        let Some((map, key)) = Request::split(payload) else {
            log::warn!("a malformed request: answered PERM");
            return Some((
                Reply::Perm("malformed request: expected \"NAME KEY\" in UTF-8".into()),
                nothing(),
            ));
        };
        // R-SRV-4: only a plain domain name has an MTA-STS policy.
        let Some(domain) = policy_domain(key) else {
            return Some((Reply::NotFound, nothing()));
        };
        let options = self.settings.options(map);
        let want_dane = options.dane != DaneMode::Off;
        // The cached path: both answers known without any network work.
        let dane = want_dane.then(|| self.dane.cached(&domain)).flatten();
        if want_dane == dane.is_some()
            && let Some(resolution) = self.resolver.resolve_from_cache(&domain)
        {
            let sts = tls_policy_reply(&resolution, &options);
            let reply = dane_reply(dane.as_deref().map(Ok), sts, &options);
            return Some((
                reply,
                Work {
                    cache_hit: true,
                    resolution: Some(resolution),
                },
            ));
        }
        None
    }

    /// The domain and map options of a request that needs network work.
    fn late_request(&self, payload: &[u8]) -> Option<(Domain, MapOptions)> {
        let (map, key) = Request::split(payload)?;
        Some((policy_domain(key)?, self.settings.options(map)))
    }

    /// The network path for a request [`PolicyServer::answer_cached`] did not answer, with
    /// no deadline of its own: the caller (an event loop) keeps `serve.answer_timeout` and
    /// answers [`PolicyServer::overdue_answer`] when it passes. Not counted: the caller
    /// counts the answer it gives ([`PolicyServer::count`]).
    pub(crate) fn lookup_answer(&self, payload: &[u8]) -> (Reply, Work) {
        let Some((domain, options)) = self.late_request(payload) else {
            return internal_fault();
        };
        let want_dane = options.dane != DaneMode::Off;
        let (dane, resolution) = network_lookup(&self.resolver, &self.dane, want_dane, &domain);
        late_reply(&domain, &options, dane, resolution)
    }

    /// The answer when the lookup for `payload` is not done within `serve.answer_timeout`:
    /// the unexpired cached policy, or `TEMP` (never `NOTFOUND`: a policy may exist). Not
    /// counted, as [`PolicyServer::lookup_answer`].
    pub(crate) fn overdue_answer(&self, payload: &[u8]) -> (Reply, Work) {
        match self.late_request(payload) {
            Some((domain, options)) => self.overdue(&domain, &options),
            None => internal_fault(),
        }
    }

    fn overdue(&self, domain: &Domain, options: &MapOptions) -> (Reply, Work) {
        let timeout = self.settings.answer_timeout.as_secs_f64();
        // RFC 8461 §5.1: an unexpired cached policy is in force while its recheck runs.
        if let Some(cached) = self.resolver.resolve_cached_policy(domain) {
            log::info!(
                "{domain}: no fresh answer within {timeout} s: the cached policy is applied \
                 meanwhile"
            );
            let reply = tls_policy_reply(&cached, options);
            return (
                reply,
                Work {
                    cache_hit: true,
                    resolution: Some(cached),
                },
            );
        }
        log::warn!(
            "{domain}: no answer within {timeout} s (serve.answer_timeout): answered TEMP; \
             the lookup goes on"
        );
        (
            Reply::Temp(format!(
                "{domain}: no answer within {timeout} s, try again later"
            )),
            Work {
                cache_hit: false,
                resolution: None,
            },
        )
    }
}

/// What a request that reached the network path without a domain gets: a fault, answered
/// `TEMP`, never "no policy" (R-SRV-7).
fn internal_fault() -> (Reply, Work) {
    (
        Reply::Temp("internal error: a request answered twice".into()),
        Work {
            cache_hit: false,
            resolution: None,
        },
    )
}

/// The network work of one request: DANE first when wanted (R-SRV-6), then MTA-STS unless
/// DANE decided alone (it applies, or its lookup failed).
#[allow(clippy::type_complexity)]
fn network_lookup(
    resolver: &Resolver,
    dane: &DaneCache,
    want_dane: bool,
    domain: &Domain,
) -> (Option<Result<Arc<Dane>>>, Option<Resolution>) {
    let status = want_dane.then(|| dane.status(resolver.dns().as_ref(), domain));
    let resolution = match status.as_ref().map(|d| d.as_deref()) {
        Some(Ok(Dane::Applies { .. }) | Err(_)) => None,
        _ => Some(resolver.resolve_domain(domain)),
    };
    (status, resolution)
}

/// The reply once the network work is done.
fn late_reply(
    domain: &Domain,
    options: &MapOptions,
    dane: Option<Result<Arc<Dane>>>,
    resolution: Option<Resolution>,
) -> (Reply, Work) {
    let sts = match &resolution {
        Some(resolution) => tls_policy_reply(resolution, options),
        None => Reply::NotFound,
    };
    let dane = dane.as_ref().map(|d| d.as_deref());
    let reply = dane_reply(dane, sts, options);
    log_answer(domain, &reply, dane, resolution.as_ref());
    (
        reply,
        Work {
            cache_hit: false,
            resolution,
        },
    )
}

/// One log line for what the server decided beyond the resolution (the resolver logs its
/// own events: a policy fetched, a DNS or fetch failure with its RFC 8460 result type): a
/// `TEMP` answer, and DANE taking precedence.
fn log_answer(
    domain: &Domain,
    reply: &Reply,
    dane: Option<std::result::Result<&Dane, &Error>>,
    resolution: Option<&Resolution>,
) {
    match (reply, dane) {
        (Reply::Temp(reason), _) => {
            let result_type = resolution
                .and_then(|r| r.failure())
                .and_then(|f| f.result_type())
                .map(|t| format!("; result type {}", t.as_str()))
                .unwrap_or_default();
            log::warn!("{domain}: answered TEMP: {reason}{result_type}");
        }
        (_, Some(Ok(Dane::Applies { .. } | Dane::Partial { .. }))) => {
            log::info!("{domain}: DANE applies; answered {}", reply.payload());
        }
        _ => {}
    }
}

/// The current [`PolicyServer`], replaceable while connections are served (SIGHUP). Each
/// connection keeps its own reference and takes the new one at its next request; the check
/// is one read of a generation number that changes only on a reload.
#[derive(Debug)]
pub struct ServerHandle {
    generation: AtomicU64,
    current: RwLock<Arc<PolicyServer>>,
    stopping: AtomicBool,
}

impl ServerHandle {
    /// A handle on `server`.
    pub fn new(server: PolicyServer) -> ServerHandle {
        ServerHandle {
            generation: AtomicU64::new(0),
            current: RwLock::new(Arc::new(server)),
            stopping: AtomicBool::new(false),
        }
    }

    /// Starts the stop: connections between requests close (within 100 ms); one
    /// whose request has begun gets its answer first.
    pub fn stop(&self) {
        self.stopping.store(true, Ordering::SeqCst);
    }

    /// Whether [`ServerHandle::stop`] was called.
    pub fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    /// The current server.
    pub fn current(&self) -> Arc<PolicyServer> {
        Arc::clone(&self.current.read().unwrap_or_else(|p| p.into_inner()))
    }

    /// Makes `server` the current one; requests already being answered finish with the old.
    pub fn replace(&self, server: PolicyServer) {
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(server);
        self.generation.fetch_add(1, Ordering::Release);
    }

    /// The current server with its generation, for [`ServerHandle::refresh`].
    pub(crate) fn held(&self) -> (u64, Arc<PolicyServer>) {
        (self.generation.load(Ordering::Acquire), self.current())
    }

    /// `held` brought up to date (a reload since it was taken).
    pub(crate) fn refresh(&self, held: &mut (u64, Arc<PolicyServer>)) {
        let generation = self.generation.load(Ordering::Acquire);
        if generation != held.0 {
            *held = (generation, self.current());
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::sync::Arc;
    use std::time::{Duration, SystemTime};

    use super::*;
    use crate::error::Error;
    use crate::policy::{CachedPolicy, Policy};

    const S70: &str =
        "version: STSv1\nmode: enforce\nmx: mail.example.com\nmx: *.example.net\nmax_age: 86400\n";

    fn resolution(text: Option<&str>, source: Source, failure: Option<Error>) -> Resolution {
        let now = SystemTime::now();
        Resolution {
            domain: Domain::new("example.com").unwrap(),
            source,
            policy: text.map(|t| {
                Arc::new(CachedPolicy {
                    id: "1".into(),
                    policy: Arc::new(Policy::parse(t).unwrap()),
                    fetched_at: now,
                    expires_at: now + Duration::from_secs(86_400),
                })
            }),
            failure,
            notice: None,
            domain_not_found: false,
        }
    }

    fn reply(text: Option<&str>, source: Source, options: &MapOptions) -> String {
        tls_policy_reply(&resolution(text, source, None), options).payload()
    }

    #[test]
    fn s70_enforce_gives_secure_with_the_patterns_in_policy_order() {
        let got = reply(Some(S70), Source::Fetched, &MapOptions::new());
        assert_eq!(
            got,
            "OK secure match=mail.example.com:.example.net servername=hostname"
        );
        // The same from the cache; each pattern once, in order, whatever the repeats.
        let repeated = "version: STSv1\nmode: enforce\nmx: b.example\nmx: a.example\nmx: B.example\nmax_age: 60\n";
        assert_eq!(
            reply(Some(repeated), Source::Cache, &MapOptions::new()),
            "OK secure match=b.example:a.example servername=hostname"
        );
        let no_sni = MapOptions {
            sni: false,
            ..MapOptions::new()
        };
        assert_eq!(
            reply(Some(S70), Source::Cache, &no_sni),
            "OK secure match=mail.example.com:.example.net"
        );
    }

    #[test]
    fn s72_s73_testing_none_and_no_policy_are_notfound_unless_strict() {
        let testing = S70.replace("enforce", "testing");
        assert_eq!(
            reply(Some(&testing), Source::Fetched, &MapOptions::new()),
            "NOTFOUND "
        );
        let strict = MapOptions {
            strict_testing: true,
            ..MapOptions::new()
        };
        assert!(reply(Some(&testing), Source::Fetched, &strict).starts_with("OK secure match="));
        let none = S70.replace("enforce", "none");
        assert_eq!(reply(Some(&none), Source::Fetched, &strict), "NOTFOUND ");
        assert_eq!(reply(None, Source::NoPolicy, &strict), "NOTFOUND ");
        let failed = resolution(
            None,
            Source::Unavailable,
            Some(Error::PolicyFetch {
                url: "https://mta-sts.example.com/.well-known/mta-sts.txt".into(),
                reason: "HTTP status 404".into(),
            }),
        );
        assert_eq!(tls_policy_reply(&failed, &strict), Reply::NotFound);
    }

    #[test]
    fn s75_tlsrpt_attributes_only_when_enabled() {
        let tlsrpt = MapOptions {
            tlsrpt: true,
            ..MapOptions::new()
        };
        assert_eq!(
            reply(Some(S70), Source::Fetched, &tlsrpt),
            "OK secure match=mail.example.com:.example.net servername=hostname \
             policy_type=sts policy_domain=example.com mx_host_pattern=mail.example.com \
             mx_host_pattern=*.example.net { policy_string = version: STSv1 } \
             { policy_string = mode: enforce } { policy_string = mx: mail.example.com } \
             { policy_string = mx: *.example.net } { policy_string = max_age: 86400 }"
        );
        // Served from the cache after a failed refresh: the failure's result type is told.
        let after_failure = resolution(
            Some(S70),
            Source::CacheAfterFailure,
            Some(Error::PolicyCertificate {
                url: "https://mta-sts.example.com/.well-known/mta-sts.txt".into(),
                reason: "certificate expired".into(),
            }),
        );
        let got = tls_policy_reply(&after_failure, &tlsrpt).payload();
        assert!(got.ends_with(" policy_failure=sts-webpki-invalid"), "{got}");
        assert!(!reply(Some(S70), Source::Fetched, &MapOptions::new()).contains("policy_type"));
    }

    #[test]
    fn s78_cannot_tell_is_temp_never_notfound() {
        let unreadable = resolution(
            None,
            Source::CacheUnreadable,
            Some(Error::Cache {
                reason: "database disk image is malformed".into(),
            }),
        );
        let got = tls_policy_reply(&unreadable, &MapOptions::new());
        assert!(matches!(got, Reply::Temp(_)), "{got:?}");
        assert!(got.payload().starts_with("TEMP example.com: "));
    }

    #[test]
    fn s76_s77_dane_first() {
        let secure = || {
            tls_policy_reply(
                &resolution(Some(S70), Source::Cache, None),
                &MapOptions::new(),
            )
        };
        let only = MapOptions {
            dane: DaneMode::Only,
            ..MapOptions::new()
        };
        let applies: Result<Dane> = Ok(Dane::Applies {
            hosts: vec!["mx.example.com".into()],
        });
        let partial: Result<Dane> = Ok(Dane::Partial {
            with_tlsa: vec!["a.example.com".into()],
            without: vec!["b.example.com".into()],
        });
        let not: Result<Dane> = Ok(Dane::NotApplicable {
            reason: "unsigned".into(),
        });
        let failed: Result<Dane> = Err(Error::DnsTemporary {
            name: "_25._tcp.mx.example.com".into(),
            reason: "server answered SERVFAIL".into(),
        });
        let auto = MapOptions::new();
        type Row<'a> = (
            Option<&'a Result<Dane>>,
            Reply,
            &'a MapOptions,
            &'a str,
            &'a str,
        );
        let rows: [Row<'_>; 9] = [
            (
                Some(&applies),
                secure(),
                &auto,
                "OK dane",
                "S-76: DANE wins over enforce",
            ),
            (
                Some(&applies),
                Reply::NotFound,
                &auto,
                "OK dane",
                "S-76 without MTA-STS",
            ),
            (
                Some(&applies),
                secure(),
                &only,
                "OK dane-only",
                "dane-only when so configured",
            ),
            (
                Some(&partial),
                secure(),
                &auto,
                "OK secure match=",
                "some hosts: MTA-STS for all",
            ),
            (
                Some(&partial),
                Reply::NotFound,
                &auto,
                "OK dane",
                "some hosts, no MTA-STS",
            ),
            (
                Some(&not),
                secure(),
                &auto,
                "OK secure match=",
                "no DANE: MTA-STS",
            ),
            (
                None,
                secure(),
                &auto,
                "OK secure match=",
                "DANE off: MTA-STS",
            ),
            (
                Some(&failed),
                secure(),
                &auto,
                "TEMP DANE lookup failed",
                "S-77: never a fall-back",
            ),
            (
                Some(&failed),
                Reply::NotFound,
                &auto,
                "TEMP DANE lookup failed",
                "S-77",
            ),
        ];
        for (dane, sts, options, want, why) in rows {
            let got = dane_reply(dane.map(|d| d.as_ref()), sts, options).payload();
            assert!(got.starts_with(want), "{why}: {got}");
        }
    }

    #[test]
    fn s71_s74_keys() {
        assert_eq!(
            policy_domain("Example.COM.").unwrap().as_str(),
            "example.com"
        );
        assert_eq!(
            policy_domain("bücher.example").unwrap().as_str(),
            "xn--bcher-kva.example"
        );
        for key in [
            "[mail.example.com]",
            "[mail.example.com]:587",
            "mail.example.com:25",
            "192.0.2.1",
            "192.0.2.1.",
            "2001:db8::1",
            "::ffff:192.0.2.1",
            "[IPv6:2001:db8::1]",
            ".example.com",
            "",
            "exa mple.com",
            "10.1",
        ] {
            assert_eq!(policy_domain(key), None, "{key:?}");
        }
    }

    #[test]
    fn requests_and_replies_on_the_wire() {
        assert_eq!(
            Request::parse(b"postfix example.com").unwrap(),
            Request {
                map: "postfix".into(),
                key: "example.com".into()
            }
        );
        assert_eq!(
            Request::split(b"postfix example.com"),
            Some(("postfix", "example.com"))
        );
        assert_eq!(Request::parse(b"postfix"), None);
        assert_eq!(Request::parse(b"postfix \xff.example"), None);
        assert_eq!(Reply::NotFound.to_netstring(), b"9:NOTFOUND ,");
        assert_eq!(
            Reply::Temp("a\nb".into()).payload(),
            "TEMP a b",
            "one line, whatever the reason holds"
        );
        let huge = Reply::Ok("x".repeat(MAX_REPLY));
        assert!(huge.payload().starts_with("TEMP "));
    }

    #[test]
    fn netstring_edge_cases() {
        let limit = MAX_REQUEST;
        assert_eq!(
            read_netstring(b"3:abc,4:", limit).unwrap(),
            Some((&b"abc"[..], 6))
        );
        assert_eq!(read_netstring(b"0:,", limit).unwrap(), Some((&b""[..], 3)));
        // Incomplete: nothing consumed.
        for partial in [&b""[..], b"3", b"3:", b"3:ab", b"3:abc"] {
            assert_eq!(read_netstring(partial, limit).unwrap(), None, "{partial:?}");
        }
        assert_eq!(
            read_netstring(b"03:abc,", limit),
            Err(NetstringError::BadLength)
        );
        assert_eq!(
            read_netstring(b":abc,", limit),
            Err(NetstringError::BadLength)
        );
        assert_eq!(read_netstring(b"3x", limit), Err(NetstringError::BadLength));
        assert_eq!(
            read_netstring(b"-3:abc,", limit),
            Err(NetstringError::BadLength)
        );
        assert_eq!(
            read_netstring(b"3:abcd", limit),
            Err(NetstringError::MissingComma)
        );
        assert!(matches!(
            read_netstring(b"10001:", limit),
            Err(NetstringError::TooLong { length: 10_001, .. })
        ));
        // A huge length is refused from its digits alone, before any payload.
        assert!(matches!(
            read_netstring(b"99999999999999999999999", limit),
            Err(NetstringError::TooLong { .. })
        ));
        assert_eq!(netstring(b"OK x"), b"4:OK x,");
    }
}
