//! The Sendmail/Postfix socketmap protocol and the TLS policy answer for Postfix's
//! `smtp_tls_policy_maps` (rules R-SRV-1 to R-SRV-7): what the policy server says, as pure
//! functions, so every listener (and every test) gives the same reply.
//!
//! The wire format is netstrings (`<length>:<bytes>,`): a request is `NAME KEY`, a reply
//! `OK <data>`, `NOTFOUND `, `TEMP <reason>` or `PERM <reason>`.

use std::fmt;
use std::net::IpAddr;

use crate::domain::Domain;
use crate::policy::Mode;
use crate::resolution::{Resolution, Source};

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
    let mut out = format!("{}:", payload.len()).into_bytes();
    out.extend_from_slice(payload);
    out.push(b',');
    out
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
        let text = std::str::from_utf8(payload).ok()?;
        let (map, key) = text.split_once(' ')?;
        Some(Request {
            map: map.to_string(),
            key: key.to_string(),
        })
    }
}

/// R-SRV-4: the recipient domain a key names, or `None` for a key that is not a plain domain
/// name (`[host]`, `[host]:port`, `host:port`, an IP literal, a parent-domain probe `.x`,
/// or not a host name at all): those are answered `NOTFOUND `.
pub fn policy_domain(key: &str) -> Option<Domain> {
    if key.starts_with('.') || key.starts_with('[') || key.contains(':') {
        return None;
    }
    if key.parse::<IpAddr>().is_ok() {
        return None;
    }
    let domain = Domain::new(key).ok()?;
    // An all-numeric dotted name is an IPv4 address written loosely, never a domain.
    let ipv4ish = domain
        .as_str()
        .split('.')
        .all(|label| label.bytes().all(|b| b.is_ascii_digit()));
    (!ipv4ish).then_some(domain)
}

/// The options of one map name (as the Python resolver's "zones").
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct MapOptions {
    /// Answer a `testing` policy as `enforce` (R-SRV-3).
    pub strict_testing: bool,
    /// Add the TLSRPT attributes Postfix 3.10 and later read; off by default because older
    /// Postfix rejects them (R-SRV-5).
    pub tlsrpt: bool,
    /// Add `servername=hostname`, so Postfix sends SNI (R-SRV-2). Default on.
    pub sni: bool,
}

impl MapOptions {
    /// The defaults: no strict testing, no TLSRPT attributes, SNI on.
    pub fn new() -> MapOptions {
        MapOptions {
            strict_testing: false,
            tlsrpt: false,
            sni: true,
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
        netstring(self.payload().as_bytes())
    }
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
    let mut matches: Vec<String> = Vec::new();
    for pattern in policy.mx() {
        let text = pattern.as_str();
        let entry = match text.strip_prefix('*') {
            Some(suffix) => suffix.to_string(),
            None => text.to_string(),
        };
        if entry.trim_start_matches('.').parse::<IpAddr>().is_err() && !matches.contains(&entry) {
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
    let mut data = format!("secure match={}", matches.join(":"));
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

/// The answer to one request payload: parse, classify the key, resolve, reply (R-SRV-1 to
/// R-SRV-5, R-SRV-7). `options` gives the options of a map name; names it does not know get
/// `default`.
pub fn answer(
    resolver: &crate::resolver::Resolver,
    payload: &[u8],
    options: &dyn Fn(&str) -> MapOptions,
) -> Reply {
    let Some(request) = Request::parse(payload) else {
        return Reply::Perm("malformed request: expected \"NAME KEY\" in UTF-8".into());
    };
    // R-SRV-4: only a plain domain name has an MTA-STS policy.
    let Some(domain) = policy_domain(&request.key) else {
        return Reply::NotFound;
    };
    let resolution = resolver.resolve_domain(&domain);
    tls_policy_reply(&resolution, &options(&request.map))
}

/// Serves one socketmap connection until the peer closes it: requests answered in order,
/// pipelined or not. Returns `Err` (and the caller closes the connection, R-SRV-1) for a
/// malformed netstring, an oversized request, a read that timed out, or a failed write; the
/// stream's own timeouts bound every read and write.
pub fn serve_connection<S: std::io::Read + std::io::Write>(
    resolver: &crate::resolver::Resolver,
    stream: &mut S,
    options: &dyn Fn(&str) -> MapOptions,
) -> std::io::Result<()> {
    let mut buf: Vec<u8> = Vec::with_capacity(512);
    let mut chunk = [0u8; 4096];
    loop {
        // Every complete request in the buffer first (pipelining), in order.
        loop {
            let parsed = read_netstring(&buf, MAX_REQUEST)
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
            let Some((payload, used)) = parsed else { break };
            let reply = answer(resolver, payload, options);
            stream.write_all(&reply.to_netstring())?;
            buf.drain(..used);
        }
        stream.flush()?;
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return if buf.is_empty() {
                Ok(())
            } else {
                Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "the connection closed inside a request",
                ))
            };
        }
        buf.extend_from_slice(&chunk[..n]);
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
            "2001:db8::1",
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
