//! `mtasts.Resolver`: the core resolver, configured by keyword arguments.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use pyo3::prelude::*;
use pyo3::types::PyDict;

use mtasts_core::{CacheLocation, Config, Error, ProbeOptions, RefreshOptions, TrustRoots};

use crate::certs::{self, CertVerifier};
use crate::diagnosis::Diagnosis;
use crate::errors::IntoPyResult;
use crate::probe::ProbeReport;
use crate::refresh::RefreshReport;
use crate::resolution::Resolution;
use crate::util;
use crate::verdict::MxRecord;

/// Resolves MTA-STS policies (RFC 8461): discovers a domain's policy through its `_mta-sts`
/// TXT record, fetches and validates it over HTTPS, and caches it.
///
/// Configured by keyword arguments, all optional:
///
/// - `nameservers`: DNS servers as `"ip:port"` strings (default: the system's resolv.conf).
/// - `trust_roots`: `"system"` (the OS store, default), `"bundled"` (Mozilla's roots, compiled
///   in) or the path of a PEM file; for policy hosts and for `probe`.
/// - `cache`: `"memory"` (this process only, default), a SQLite file path (shared by every
///   process on the host: what an MTA uses), `"redis://host:port/db"`, or `"FILE,redis://..."`.
/// - `fetch_timeout`: deadline of one whole policy fetch, in seconds (default 30).
/// - `dns_timeout`: deadline of one DNS lookup, in seconds (default 10).
/// - `policy_port`: **tests only**, fetch policies from this port instead of 443.
/// - `recheck_interval`: a fixed interval between TXT checks of a cached domain, in seconds
///   (default: the TXT record's TTL, clamped to [60, 3600]).
///
/// Opening the cache happens here (with the GIL released); an unusable configuration raises
/// `ConfigError`, a cache that cannot be opened `CacheError`.
///
/// Thread-safe: share one `Resolver` between all threads; concurrent lookups of one domain
/// make one fetch. Every network or disk operation releases the GIL. A `Resolver` keeps
/// working in a child process after `os.fork()` (e.g. `multiprocessing` with the `fork` start
/// method); it cannot be pickled: with `spawn`, create one per process on the same cache.
#[pyclass(frozen, module = "mtasts")]
pub struct Resolver {
    inner: Arc<mtasts_core::Resolver>,
    config: Config,
    trust_roots: String,
    /// Built on first `probe` / `cert_verifier` (loading the system store takes milliseconds).
    verifier: OnceLock<Result<mtasts_core::CertVerifier, Error>>,
}

/// A positive number of seconds as a `Duration`, or `Error::Config` naming the argument.
pub fn seconds(name: &str, value: f64) -> Result<Duration, Error> {
    Duration::try_from_secs_f64(value)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| Error::Config {
            reason: format!("{name} must be a positive number of seconds, not {value}"),
        })
}

/// `ip:port` strings as socket addresses, or `Error::Config` naming the bad one.
fn socket_addrs(what: &str, addrs: &[String]) -> Result<Vec<SocketAddr>, Error> {
    addrs
        .iter()
        .map(|a| {
            a.parse().map_err(|_| Error::Config {
                reason: format!("{what} {a:?} is not an address as ip:port (e.g. 127.0.0.1:53)"),
            })
        })
        .collect()
}

impl Resolver {
    /// The verifier for this resolver's trust roots, built once.
    /// The resolver for `config` (GIL released while the cache is opened).
    fn build(py: Python<'_>, config: Config) -> PyResult<Resolver> {
        let for_core = config.clone();
        let inner = py
            .detach(move || mtasts_core::Resolver::new(for_core))
            .py()?;
        let trust_roots = match &config.trust_roots {
            TrustRoots::Bundled => "bundled".to_owned(),
            TrustRoots::PemFile(path) => path.to_string_lossy().into_owned(),
            _ => "system".to_owned(),
        };
        Ok(Resolver {
            inner: Arc::new(inner),
            config,
            trust_roots,
            verifier: OnceLock::new(),
        })
    }

    fn verifier(&self) -> Result<&mtasts_core::CertVerifier, Error> {
        self.verifier
            .get_or_init(|| mtasts_core::CertVerifier::new(&self.config.trust_roots))
            .as_ref()
            .map_err(Clone::clone)
    }
}

#[pymethods]
impl Resolver {
    #[new]
    #[pyo3(signature = (
        *,
        nameservers = None,
        trust_roots = PathBuf::from("system"),
        cache = PathBuf::from("memory"),
        fetch_timeout = 30.0,
        dns_timeout = 10.0,
        policy_port = None,
        recheck_interval = None,
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        nameservers: Option<Vec<String>>,
        trust_roots: PathBuf,
        cache: PathBuf,
        fetch_timeout: f64,
        dns_timeout: f64,
        policy_port: Option<u16>,
        recheck_interval: Option<f64>,
    ) -> PyResult<Resolver> {
        // Every value is read by the core's settings parser, as every face reads it.
        let mut config = Config::default();
        let mut set = |key: &str, value: String| config.set(key, &value).py();
        for server in nameservers.unwrap_or_default() {
            set("nameserver", server)?;
        }
        set("trust_roots", trust_roots.to_string_lossy().into_owned())?;
        set("fetch_timeout", fetch_timeout.to_string())?;
        set("dns_timeout", dns_timeout.to_string())?;
        if let Some(port) = policy_port {
            set("policy_port", port.to_string())?;
        }
        if let Some(interval) = recheck_interval {
            if interval <= 0.0 {
                return Err::<Resolver, _>(Error::Config {
                    reason: format!(
                        "recheck_interval must be a positive number of seconds, not {interval}"
                    ),
                })
                .py();
            }
            set("recheck_interval", interval.to_string())?;
        }
        match cache.to_str() {
            Some(location) => set("cache", location.to_owned())?,
            None => config.cache = CacheLocation::sqlite(cache),
        }
        Resolver::build(py, config)
    }

    /// A resolver configured from the settings file at `path` (the mtasts settings format:
    /// `key = value` lines, `#` comments; the keys `cache`, `nameserver`, `trust_roots`,
    /// `fetch_timeout`, `dns_timeout`, `recheck_interval`, `memory_entries`, `log_level`,
    /// `policy_port`). Raises `ConfigError` naming the file and line of an unknown key or a bad
    /// value.
    #[staticmethod]
    fn from_config(py: Python<'_>, path: PathBuf) -> PyResult<Resolver> {
        let config = py.detach(|| Config::from_file(&path)).py()?;
        Resolver::build(py, config)
    }

    /// Resolves the MTA-STS policy of `domain` (ASCII or Unicode, any case, optional trailing
    /// dot) and returns a `Resolution`.
    ///
    /// Raises only `InvalidDomain` (not a host name): a DNS, fetch or policy failure is part
    /// of the resolution (`failure`), because the caller must still deliver or defer according
    /// to it. Blocking (GIL released); ends within the DNS and fetch deadlines. Within the
    /// recheck interval a cached answer costs no network at all.
    fn resolve(&self, py: Python<'_>, domain: String) -> PyResult<Resolution> {
        let inner = &self.inner;
        let resolution = py.detach(move || inner.resolve(&domain)).py()?;
        Ok(Resolution::new(resolution))
    }

    /// Resolves many domains, at most `concurrency` at a time (1 to 256), and returns an
    /// iterator of `(domain, result)` pairs **in input order**, each as soon as it and every
    /// one before it is known. `result` is a `Resolution`, or an `InvalidDomain` exception
    /// instance (given, not raised) for a name that is not a host name.
    ///
    /// Every lookup is `resolve`: the same cache, single-flight (a domain listed twice is
    /// fetched once) and deadlines. `domains` may be any iterable of `str`, read as needed
    /// (a generator over a file of 100,000 names runs in flat memory); an exception it raises,
    /// or an item that is not a `str`, is raised by the iterator after the results before it.
    /// The lookups run on threads without the GIL. Dropping the iterator stops the batch.
    #[pyo3(signature = (domains, concurrency = 8))]
    fn resolve_many(
        &self,
        domains: Bound<'_, PyAny>,
        concurrency: i64,
    ) -> PyResult<crate::batch::ResolveMany> {
        if domains.is_instance_of::<pyo3::types::PyString>() {
            return Err(crate::errors::type_error(
                "resolve_many() takes an iterable of domains, not one str",
            ));
        }
        let max = mtasts_core::MAX_CONCURRENCY as i64;
        if !(1..=max).contains(&concurrency) {
            return Err(crate::errors::value_error(format!(
                "concurrency must be from 1 to {max}, not {concurrency}"
            )));
        }
        crate::batch::start(Arc::clone(&self.inner), domains, concurrency as usize)
    }

    /// Resolves `domain` and returns the object `mtasts lookup --json` prints for it (the
    /// core's resolution view, see `docs/json.md`), as a dict. Never raises for the domain:
    /// a name that is not a host name gives `source` None and its error as `failure`.
    /// Blocking (GIL released).
    fn lookup_view<'py>(&self, py: Python<'py>, domain: String) -> PyResult<Bound<'py, PyDict>> {
        let inner = &self.inner;
        let view = py.detach(move || match inner.resolve(&domain) {
            Ok(resolution) => mtasts_core::ResolutionView::new(&resolution),
            Err(e) => mtasts_core::ResolutionView::for_error(&domain, &e),
        });
        util::json_dict(py, mtasts_core::to_json(&view))
    }

    /// The MX records of `domain`, sorted by preference, looked up through this resolver's
    /// name servers: a tuple of `MxRecord` to pass to `Resolution.mx_plan`.
    ///
    /// An empty tuple when the domain has no MX records (NODATA) or does not exist (NXDOMAIN):
    /// for `mx_plan` that is the implicit MX, the domain itself. Raises `DnsTemporaryError`
    /// on SERVFAIL, REFUSED or a timeout, `InvalidDomain` for a name that is not a host name.
    fn lookup_mx(&self, py: Python<'_>, domain: String) -> PyResult<Vec<MxRecord>> {
        let inner = &self.inner;
        let records = py
            .detach(move || {
                let domain = mtasts_core::Domain::new(&domain)?;
                inner.dns().mx(domain.as_str())
            })
            .py()?;
        Ok(records
            .records()
            .unwrap_or_default()
            .into_iter()
            .map(MxRecord::from)
            .collect())
    }

    /// Fetches again the cached policies that are due (fetched more than half their `max_age`
    /// ago or expiring within a day; every cached policy with `all=True`), and drops entries
    /// unused for 180 days (unless `purge_unused=False`). At most `concurrency` domains at
    /// once; `jitter` seconds of random delay first (for fleets of hosts). Failures are
    /// reported and never remove a valid policy. Blocking (GIL released). Returns a
    /// `RefreshReport`; raises `CacheError` when the cache cannot be read.
    #[pyo3(signature = (*, all = false, concurrency = 4, jitter = 0.0, purge_unused = true))]
    fn refresh(
        &self,
        py: Python<'_>,
        all: bool,
        concurrency: usize,
        jitter: f64,
        purge_unused: bool,
    ) -> PyResult<RefreshReport> {
        let mut options = RefreshOptions::default();
        options.all = all;
        options.concurrency = concurrency;
        options.jitter = if jitter == 0.0 {
            Duration::ZERO
        } else {
            seconds("jitter", jitter).py()?
        };
        options.purge_unused = purge_unused;
        let inner = &self.inner;
        let report = py.detach(move || inner.refresh_due(&options)).py()?;
        Ok(RefreshReport::new(report))
    }

    /// Connects to MX host `mx_host` like a sending MTA: SMTP banner, `EHLO`, `STARTTLS`, a TLS
    /// 1.2+ handshake with SNI = `mx_host`, `QUIT`; then checks the certificate chain it got
    /// against this resolver's trust roots (or `verifier`) at `at` (default now). Returns a
    /// `ProbeReport`; what happens on the network is in the report, never raised.
    ///
    /// The host's addresses come from this resolver's name servers (port `port`), or from
    /// `addresses` (`"ip:port"` strings, tried in order). `timeout` seconds bound the whole
    /// probe. Raises `InvalidDomain` for a host that is not a host name, `ConfigError` for bad
    /// options or unusable trust roots. Blocking (GIL released).
    #[pyo3(signature = (
        mx_host,
        *,
        port = 25,
        timeout = 30.0,
        ehlo_name = String::from("localhost"),
        at = None,
        addresses = None,
        verifier = None,
    ))]
    #[allow(clippy::too_many_arguments)]
    fn probe(
        &self,
        py: Python<'_>,
        mx_host: String,
        port: u16,
        timeout: f64,
        ehlo_name: String,
        at: Option<SystemTime>,
        addresses: Option<Vec<String>>,
        verifier: Option<&Bound<'_, CertVerifier>>,
    ) -> PyResult<ProbeReport> {
        let mut options = ProbeOptions::default();
        options.port = port;
        options.timeout = seconds("timeout", timeout).py()?;
        options.ehlo_name = ehlo_name;
        options.at = at;
        let addresses = addresses
            .map(|a| socket_addrs("address", &a))
            .transpose()
            .py()?;
        let given = verifier.map(|v| v.get().inner().clone());
        let report = py
            .detach(|| {
                let verifier = match &given {
                    Some(v) => v,
                    None => self.verifier()?,
                };
                match &addresses {
                    Some(addrs) => mtasts_core::probe_addrs(&mx_host, addrs, verifier, &options),
                    None => mtasts_core::probe(&mx_host, &**self.inner.dns(), verifier, &options),
                }
            })
            .py()?;
        Ok(ProbeReport::new(report))
    }

    /// Diagnoses `domain` as `mtasts check` does: its `_mta-sts` TXT record, its policy as a
    /// sender resolves it (with this resolver and its cache: use `cache="memory"` for the
    /// live state), its MX hosts under the policy and, with `probe` (the default), each MX
    /// host's STARTTLS and certificate (`port`, `timeout` seconds per probe, `ehlo_name`),
    /// checked against this resolver's trust roots. Returns a `Diagnosis`.
    ///
    /// Raises `InvalidDomain` for a name that is not a host name, `ConfigError` for bad
    /// options. Blocking (GIL released); up to 16 probes at once, each within its deadline.
    #[pyo3(signature = (domain, *, probe = true, port = 25, timeout = 30.0, ehlo_name = String::from("localhost")))]
    fn check(
        &self,
        py: Python<'_>,
        domain: String,
        probe: bool,
        port: u16,
        timeout: f64,
        ehlo_name: String,
    ) -> PyResult<Diagnosis> {
        let domain = mtasts_core::Domain::new(&domain).py()?;
        let mut options = mtasts_core::CheckOptions::default();
        if probe {
            let mut probe_options = ProbeOptions::default();
            probe_options.port = port;
            probe_options.timeout = seconds("timeout", timeout).py()?;
            probe_options.ehlo_name = ehlo_name;
            probe_options.validate().py()?;
            options.probe = Some(probe_options);
        }
        let diagnosis = py
            .detach(|| {
                let verifier = self.verifier()?;
                Ok::<_, Error>(self.inner.check(&domain, verifier, &options))
            })
            .py()?;
        Ok(Diagnosis::new(diagnosis))
    }

    /// A `CertVerifier` for this resolver's trust roots (built once, then shared), to check
    /// the certificate chains your own TLS connections got. Raises `ConfigError` when the
    /// trust roots cannot be loaded.
    fn cert_verifier(&self, py: Python<'_>) -> PyResult<CertVerifier> {
        let verifier = py.detach(|| self.verifier().cloned()).py()?;
        Ok(certs::CertVerifier::from_core(
            verifier,
            self.trust_roots.clone(),
        ))
    }

    /// The DNS servers, as `"ip:port"` strings (empty: the system's resolv.conf).
    #[getter]
    fn nameservers(&self) -> Vec<String> {
        self.config
            .nameservers
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    /// The trust roots setting: `"system"`, `"bundled"` or a PEM file path.
    #[getter]
    fn trust_roots(&self) -> &str {
        &self.trust_roots
    }

    /// The cache location, normalised (`"memory"`, a path, a Redis URL, or layers joined by
    /// commas).
    #[getter]
    fn cache(&self) -> String {
        self.config.cache.to_string()
    }

    /// The deadline of one policy fetch, in seconds.
    #[getter]
    fn fetch_timeout(&self) -> f64 {
        self.config.fetch_timeout.as_secs_f64()
    }

    /// The deadline of one DNS lookup, in seconds.
    #[getter]
    fn dns_timeout(&self) -> f64 {
        self.config.dns_timeout.as_secs_f64()
    }

    /// The port policies are fetched from instead of 443 (tests only), or `None`.
    #[getter]
    fn policy_port(&self) -> Option<u16> {
        self.config.policy_port
    }

    /// The fixed interval between TXT checks, in seconds, or `None` (the record's TTL).
    #[getter]
    fn recheck_interval(&self) -> Option<f64> {
        self.config.recheck_interval.map(|d| d.as_secs_f64())
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!(
            "Resolver(nameservers={}, trust_roots={}, cache={}, fetch_timeout={}, dns_timeout={}, policy_port={})",
            util::repr(py, self.nameservers())?,
            util::repr(py, self.trust_roots.as_str())?,
            util::repr(py, self.cache())?,
            util::repr(py, self.fetch_timeout())?,
            util::repr(py, self.dns_timeout())?,
            util::repr(py, self.policy_port())?,
        ))
    }
}

/// The cache location the `mtasts` command uses by default: `$XDG_CACHE_HOME/mtasts/cache.db`,
/// else `~/.cache/mtasts/cache.db`; `None` when neither `XDG_CACHE_HOME` nor `HOME` is set.
/// Pass it as `Resolver(cache=...)` to share the command's cache.
#[pyfunction]
pub fn user_cache_location() -> Option<String> {
    CacheLocation::user_default().map(|l| l.to_string())
}
