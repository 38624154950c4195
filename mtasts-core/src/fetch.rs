//! Fetching the policy file over HTTPS (RFC 8461 §3.3, rules §2), with ureq and rustls.

use std::fmt::Debug;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use ureq::Agent;
use ureq::config::Config as AgentConfig;
use ureq::http::Uri;
use ureq::tls::{Certificate, RootCerts, TlsConfig};
use ureq::unversioned::resolver::{ResolvedSocketAddrs, Resolver as UreqResolver};
use ureq::unversioned::transport::{DefaultConnector, NextTimeout};

use crate::dns::{DnsAnswer, DnsResolver};
use crate::domain::Domain;
use crate::error::{Error, Result};
use crate::process::PerProcess;

/// R-FETCH-8: the largest policy body accepted, in bytes.
pub const MAX_POLICY_SIZE: u64 = 64 * 1024;

/// The HTTP client's input buffer per connection: a 16 KiB header or a whole TLS record
/// (16 KiB of data and its overhead) fits.
const INPUT_BUFFER: usize = 32 * 1024;
/// The HTTP client's output buffer per connection (the GET request is a few hundred bytes).
const OUTPUT_BUFFER: usize = 8 * 1024;

/// Where the certificates that policy hosts (and later MX hosts) must chain to come from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum TrustRoots {
    /// The operating system's store (via rustls-native-certs). The default.
    #[default]
    System,
    /// The Mozilla root program's roots, compiled in (webpki-roots): the same answer on every
    /// host, whatever its CA bundle.
    Bundled,
    /// The certificates of a PEM file (one or more `CERTIFICATE` blocks).
    PemFile(PathBuf),
}

impl TrustRoots {
    /// Parses `system`, `bundled`, or a path to a PEM file (anything else).
    pub fn from_setting(setting: &str) -> TrustRoots {
        match setting {
            "system" => TrustRoots::System,
            "bundled" | "mozilla" | "webpki" => TrustRoots::Bundled,
            path => TrustRoots::PemFile(PathBuf::from(path)),
        }
    }

    /// The root certificates, DER-encoded.
    ///
    /// For [`TrustRoots::Bundled`] this is empty: the bundled roots are trust anchors only,
    /// used directly by the verifier.
    pub fn load(&self) -> Result<Vec<CertificateDer<'static>>> {
        match self {
            TrustRoots::System => {
                let found = rustls_native_certs::load_native_certs();
                for e in &found.errors {
                    log::warn!("reading the system trust store: {e}");
                }
                if found.certs.is_empty() {
                    return Err(Error::Config {
                        reason: "no trust roots found in the system store; install \
                                 ca-certificates, or configure `bundled` roots or a PEM file"
                            .into(),
                    });
                }
                Ok(found.certs)
            }
            TrustRoots::Bundled => Ok(Vec::new()),
            TrustRoots::PemFile(path) => {
                let unreadable = |e: &dyn std::fmt::Display| Error::Config {
                    reason: format!("trust roots {}: {e}", path.display()),
                };
                let certs = CertificateDer::pem_file_iter(path)
                    .map_err(|e| unreadable(&e))?
                    .collect::<std::result::Result<Vec<_>, _>>()
                    .map_err(|e| unreadable(&e))?;
                if certs.is_empty() {
                    return Err(unreadable(&"no CERTIFICATE block in the file"));
                }
                Ok(certs)
            }
        }
    }
}

/// Retrieves the policy file of a domain. Blocking; ends within the implementation's deadline.
pub trait PolicyFetcher: Send + Sync + Debug {
    /// The body of `https://mta-sts.<domain>/.well-known/mta-sts.txt`, after every check of
    /// rules §2 passed (status 200, `text/plain`, at most 64 KiB, no redirect, valid
    /// certificate). Errors are [`Error::PolicyFetch`], [`Error::PolicyCertificate`] or
    /// [`Error::InvalidPolicy`] (wrong media type).
    fn fetch(&self, domain: &Domain) -> Result<Vec<u8>>;
}

/// The HTTPS client of mtasts: one agent construction for every HTTPS request mtasts makes,
/// the policy fetch ([`HttpsFetcher`]) and the TLS-RPT report POST (R-RPT-8), so both follow
/// the same TLS rules: rustls with ring, TLS 1.2 and 1.3 only, webpki chain and name checks
/// against the configured roots (R-FETCH-2, R-FETCH-3), no redirects (R-FETCH-5), one global
/// deadline (R-FETCH-9), `https` only, no proxy, host names resolved through our
/// [`DnsResolver`] (R-FETCH-1), no pooled connections (fork safety, S-41).
#[derive(Debug)]
pub(crate) struct HttpsClient {
    dns: Arc<dyn DnsResolver>,
    roots: TrustRoots,
    pem_roots: Option<Vec<CertificateDer<'static>>>,
    deadline: Duration,
    port: Option<u16>,
    // Built on first use (loading the system store costs milliseconds, and a process that
    // answers from the cache never needs it), once per process: see `HttpsClient::agent`.
    agent: PerProcess<Agent>,
}

impl HttpsClient {
    /// A client resolving hosts through `dns`, verifying certificates against `roots`, and
    /// giving each request `deadline` in all. A PEM file of trust roots is read now, so a
    /// wrong path fails here, not at the first request.
    pub(crate) fn new(
        dns: Arc<dyn DnsResolver>,
        roots: TrustRoots,
        deadline: Duration,
    ) -> Result<HttpsClient> {
        let pem_roots = match &roots {
            TrustRoots::PemFile(_) => Some(roots.load()?),
            _ => None,
        };
        Ok(HttpsClient {
            dns,
            roots,
            pem_roots,
            deadline,
            port: None,
            agent: PerProcess::default(),
        })
    }

    /// The deadline of one request, all of it.
    pub(crate) fn deadline(&self) -> Duration {
        self.deadline
    }

    /// This process's agent, built on first use; fork-safe (S-41, see [`PerProcess`]).
    pub(crate) fn agent(&self) -> Result<Arc<Agent>> {
        self.agent.get_or_try_init(|| self.build_agent())
    }

    fn build_agent(&self) -> Result<Agent> {
        let roots = match (&self.roots, &self.pem_roots) {
            (TrustRoots::Bundled, _) => RootCerts::WebPki,
            (_, Some(certs)) => ders_to_roots(certs),
            (roots, None) => ders_to_roots(&roots.load()?),
        };
        let config = AgentConfig::builder()
            // R-FETCH-4: every status is looked at here, none is an ureq error.
            .http_status_as_error(false)
            // R-FETCH-5 (and R-RPT-8): never follow redirects; a 3xx comes back as a response.
            .max_redirects(0)
            // R-FETCH-9: one deadline for resolve, connect, TLS, headers and body.
            .timeout_global(Some(self.deadline))
            .https_only(true)
            // The host is resolved through our DNS (R-FETCH-1), never a proxy.
            .proxy(None)
            // No connection pool: a pooled TLS session must not survive into a forked child,
            // and policy fetches are rare.
            .max_idle_connections(0)
            .max_idle_connections_per_host(0)
            .max_response_header_size(16 * 1024)
            // A policy is at most 64 KiB and the request a few hundred bytes: ureq's 128 KiB
            // default buffers (zeroed for each connection, four of them) cost more CPU than
            // the TLS handshake's key exchange. The input buffer holds the largest header
            // (above) and a whole TLS record; a report body goes out through the output
            // buffer in pieces.
            .input_buffer_size(INPUT_BUFFER)
            .output_buffer_size(OUTPUT_BUFFER)
            .user_agent(concat!("mtasts/", env!("CARGO_PKG_VERSION")))
            // R-FETCH-2, R-FETCH-3: webpki chain and SAN checks, SNI = the URL's host, TLS >=
            // 1.2 (rustls implements nothing older).
            .tls_config(
                TlsConfig::builder()
                    .root_certs(roots)
                    .use_sni(true)
                    .unversioned_rustls_crypto_provider(Arc::new(
                        rustls::crypto::ring::default_provider(),
                    ))
                    .build(),
            )
            .build();
        let resolver = DnsBridge {
            dns: Arc::clone(&self.dns),
            port: self.port,
        };
        Ok(Agent::with_parts(config, DefaultConnector::new(), resolver))
    }
}

/// The default [`PolicyFetcher`]: ureq over rustls (TLS 1.2 and 1.3 only), the policy host
/// resolved through the given [`DnsResolver`].
#[derive(Debug)]
pub struct HttpsFetcher {
    client: HttpsClient,
}

impl HttpsFetcher {
    /// A fetcher resolving policy hosts through `dns`, verifying certificates against
    /// `roots`, and giving each fetch `deadline` in all (R-FETCH-9).
    ///
    /// A PEM file of trust roots is read now, so a wrong path fails here, not at the first
    /// fetch.
    pub fn new(
        dns: Arc<dyn DnsResolver>,
        roots: TrustRoots,
        deadline: Duration,
    ) -> Result<HttpsFetcher> {
        Ok(HttpsFetcher {
            client: HttpsClient::new(dns, roots, deadline)?,
        })
    }

    /// **For tests only**: connect to this port instead of 443, so a test world can serve
    /// every policy host from one loopback listener on an ephemeral port. The host name, SNI
    /// and certificate checks are unchanged.
    pub fn with_port_override(mut self, port: Option<u16>) -> HttpsFetcher {
        self.client.port = port;
        self
    }
}

fn ders_to_roots(certs: &[CertificateDer<'static>]) -> RootCerts {
    RootCerts::from(
        certs
            .iter()
            .map(|c| Certificate::from_der(c.as_ref()).to_owned()),
    )
}

impl PolicyFetcher for HttpsFetcher {
    fn fetch(&self, domain: &Domain) -> Result<Vec<u8>> {
        let url = domain.policy_url();
        let agent = self.client.agent()?;
        let fetch_error = |reason: String| Error::PolicyFetch {
            url: url.clone(),
            reason,
        };
        let mut response = agent
            .get(&url)
            .header("Accept", "text/plain")
            // R-FETCH-6: no HTTP caching anywhere on the way.
            .header("Cache-Control", "no-cache")
            .call()
            .map_err(|e| classify(&url, e, self.client.deadline))?;

        let status = response.status().as_u16();
        if (300..400).contains(&status) {
            let location = header(&response, "location").unwrap_or_default();
            return Err(fetch_error(format!(
                "HTTP status {status} redirect to {location:?} not followed (RFC 8461 §3.3)"
            )));
        }
        if status != 200 {
            // R-FETCH-4: 200 only (204, 304, 404, 500 ... are fetch errors).
            return Err(fetch_error(format!("HTTP status {status}, expected 200")));
        }
        // R-FETCH-8: refuse a declared oversize body without reading it.
        if let Some(length) = header(&response, "content-length") {
            match length.trim().parse::<u64>() {
                Ok(n) if n > MAX_POLICY_SIZE => {
                    return Err(fetch_error(format!(
                        "Content-Length {n} exceeds the {MAX_POLICY_SIZE}-byte limit"
                    )));
                }
                Ok(_) => {}
                Err(_) => return Err(fetch_error(format!("bad Content-Length {length:?}"))),
            }
        }
        // R-FETCH-7: text/plain, parameters ignored.
        let content_type = header(&response, "content-type");
        let media_type = content_type
            .as_deref()
            .and_then(|v| v.split(';').next())
            .map(str::trim);
        if !media_type.is_some_and(|m| m.eq_ignore_ascii_case("text/plain")) {
            return Err(Error::InvalidPolicy {
                line: None,
                reason: match content_type {
                    Some(t) => format!("served as {t:?}, not text/plain"),
                    None => "served without a Content-Type, not text/plain".into(),
                },
            });
        }
        // R-FETCH-8 while streaming: Content-Length may be absent (chunked) or lie. ureq
        // refuses any read once its limit is used up, even at the end of the body, so the
        // limit is one byte more than the largest body accepted: reading that byte is how an
        // oversize body shows.
        let body = response
            .body_mut()
            .with_config()
            .limit(MAX_POLICY_SIZE + 1)
            .read_to_vec()
            .map_err(|e| classify(&url, e, self.client.deadline))?;
        if body.len() as u64 > MAX_POLICY_SIZE {
            return Err(fetch_error(format!(
                "body exceeds the {MAX_POLICY_SIZE}-byte limit"
            )));
        }
        Ok(body)
    }
}

pub(crate) fn header(response: &ureq::http::Response<ureq::Body>, name: &str) -> Option<String> {
    response
        .headers()
        .get(name)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
}

/// Maps an ureq error to `sts-webpki-invalid` (certificate) or `sts-policy-fetch-error`.
pub(crate) fn classify(url: &str, error: ureq::Error, deadline: Duration) -> Error {
    let fetch = |reason: String| Error::PolicyFetch {
        url: url.to_string(),
        reason,
    };
    let tls = match &error {
        ureq::Error::Rustls(e) => Some(e),
        ureq::Error::Io(e) => e.get_ref().and_then(|e| e.downcast_ref::<rustls::Error>()),
        _ => None,
    };
    if let Some(e) = tls {
        return match e {
            rustls::Error::InvalidCertificate(cert) => Error::PolicyCertificate {
                url: url.to_string(),
                reason: describe_certificate_error(cert),
            },
            other => fetch(format!("TLS handshake failed: {other}")),
        };
    }
    let too_slow = || {
        fetch(format!(
            "no complete response within the {} s deadline",
            deadline.as_secs_f32()
        ))
    };
    match error {
        ureq::Error::Timeout(_) => too_slow(),
        ureq::Error::BodyExceedsLimit(_) => {
            fetch(format!("body exceeds the {MAX_POLICY_SIZE}-byte limit"))
        }
        ureq::Error::HostNotFound => fetch("the policy host has no address".into()),
        ureq::Error::Io(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
            fetch("connection refused".into())
        }
        ureq::Error::Io(e) if e.kind() == io::ErrorKind::TimedOut => too_slow(),
        other => fetch(other.to_string()),
    }
}

fn describe_certificate_error(e: &rustls::CertificateError) -> String {
    use rustls::CertificateError as C;
    match e {
        C::UnknownIssuer => "certificate not issued by a trusted CA".into(),
        C::Expired | C::ExpiredContext { .. } => "certificate expired".into(),
        C::NotValidYet | C::NotValidYetContext { .. } => "certificate not yet valid".into(),
        C::NotValidForName | C::NotValidForNameContext { .. } => {
            "certificate not valid for the policy host name".into()
        }
        other => format!("{other:?}"),
    }
}

/// ureq's view of our DNS: the policy host is resolved with the same resolver, and so the
/// same name servers, as the TXT record (R-FETCH-1).
#[derive(Debug)]
struct DnsBridge {
    dns: Arc<dyn DnsResolver>,
    port: Option<u16>,
}

impl UreqResolver for DnsBridge {
    fn resolve(
        &self,
        uri: &Uri,
        _config: &AgentConfig,
        timeout: NextTimeout,
    ) -> std::result::Result<ResolvedSocketAddrs, ureq::Error> {
        let host = uri.host().ok_or(ureq::Error::HostNotFound)?;
        let port = self.port.or(uri.port_u16()).unwrap_or(443);
        // R-FETCH-9: the policy host's A/AAAA lookups are inside the fetch deadline.
        let left = (!timeout.after.is_not_happening()).then(|| *timeout.after);
        let ips = match self.dns.ip_within(host, left) {
            Ok(DnsAnswer::Found { records, .. }) => records,
            Ok(_) => return Err(ureq::Error::HostNotFound),
            Err(e) => return Err(ureq::Error::Io(io::Error::other(e.to_string()))),
        };
        let mut addrs = self.empty(); // starts with length 0
        for ip in ips {
            if addrs.try_push(SocketAddr::new(ip, port)).is_err() {
                break; // ureq keeps at most 16 addresses
            }
        }
        if addrs.is_empty() {
            return Err(ureq::Error::HostNotFound);
        }
        Ok(addrs)
    }
}
