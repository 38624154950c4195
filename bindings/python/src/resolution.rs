//! `mtasts.Resolution` (what `Resolver.resolve` returns) and `mtasts.Failure`.

use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::enums::{self, SOURCE};
use crate::errors;
use crate::policy::Policy;
use crate::util;
use crate::verdict::{self, MxPlan, Verdict};

/// The outcome of `Resolver.resolve`: the policy in effect (or none), where it came from,
/// and what went wrong on the way. Immutable.
///
/// - `domain`: the policy domain, normalised (lowercase A-labels, no trailing dot).
/// - `source`: a `Source`: `FETCHED`, `CACHE`, `CACHE_AFTER_FAILURE` (refreshing failed, the
///   unexpired cached policy is used), `NONE` (no policy published), `UNAVAILABLE` (a
///   policy could not be obtained and nothing is cached: deliver as if there were none, and
///   report `failure`) or `CACHE_UNREADABLE` (the shared cache could not be read and no
///   policy was found: whether one applies cannot be told, so defer; `mode`, `verdict()` and
///   `mx_plan()` raise `CacheError`).
/// - `policy`: the `Policy` in effect, or `None`. A fetched `mode: none` policy is returned as
///   such.
/// - `mode`: the `Mode` in effect (`Mode.NONE` when there is no policy; raises `CacheError`
///   when it cannot be told).
/// - `failure`: a `Failure` (with its RFC 8460 result type), or `None`.
/// - `notice`: a note for the domain's postmaster that is not a failure (e.g. the TXT record
///   is invalid, so the domain has no policy), or `None`.
#[pyclass(frozen, module = "mtasts")]
pub struct Resolution {
    inner: mtasts_core::Resolution,
}

impl Resolution {
    /// Wraps a core resolution.
    pub fn new(inner: mtasts_core::Resolution) -> Resolution {
        Resolution { inner }
    }

    /// The core resolution.
    pub fn core(&self) -> &mtasts_core::Resolution {
        &self.inner
    }
}

#[pymethods]
impl Resolution {
    /// The policy domain, normalised (lowercase A-labels, no trailing dot).
    #[getter]
    fn domain(&self) -> &str {
        self.inner.domain().as_str()
    }

    /// Where the answer came from (a `Source`).
    #[getter]
    fn source<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        SOURCE.member(py, self.inner.source().as_str())
    }

    /// The policy in effect, or `None`.
    #[getter]
    fn policy(&self) -> Option<Policy> {
        self.inner.cached_policy().map(Policy::cached)
    }

    /// The mode in effect (a `Mode`): the policy's, or `Mode.NONE` without a policy.
    ///
    /// Raises `CacheError` when whether a policy applies cannot be told (`source` is
    /// `Source.CACHE_UNREADABLE`): defer the message (never fail open).
    #[getter]
    fn mode<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let mode = self.inner.mode_in_effect().map_err(|e| errors::to_py(&e))?;
        enums::mode(py, mode)
    }

    /// What failed while resolving (a `Failure`), or `None`.
    #[getter]
    fn failure(&self) -> Option<Failure> {
        self.inner.failure().cloned().map(Failure::new)
    }

    /// True when the domain itself does not exist in DNS (still no policy; a typo, or a
    /// resolver that answers NXDOMAIN for everything it does not serve). Known on the lookup
    /// that queried DNS; `notice` then says so.
    #[getter]
    fn domain_not_found(&self) -> bool {
        self.inner.domain_not_found()
    }

    /// A note for the domain's postmaster that is not a failure, or `None`.
    #[getter]
    fn notice(&self) -> Option<&str> {
        self.inner.notice()
    }

    /// The `Verdict` for MX host `mx_host` under this resolution's policy: what MTA-STS
    /// requires of it before connecting. The name is normalised (case, trailing dot,
    /// Unicode); one that is not a host name matches no pattern.
    ///
    /// Raises `CacheError` when whether a policy applies cannot be told (`source` is
    /// `Source.CACHE_UNREADABLE`): defer the message, never treat the domain as policy-less.
    fn verdict(&self, mx_host: &str) -> PyResult<Verdict> {
        mtasts_core::Verdict::for_resolution(&self.inner, mx_host)
            .map(Verdict::new)
            .map_err(|e| errors::to_py(&e))
    }

    /// Sorts out the domain's MX hosts under this resolution's policy: an `MxPlan` with the
    /// hosts that may be used (each with its `Verdict`), those that must not, and whether to
    /// defer the message.
    ///
    /// `mx` is a sequence of host names in priority order (each gets its position as
    /// preference), or of `MxRecord`s (e.g. from `Resolver.lookup_mx`), not a mix. Empty: the
    /// implicit MX, the domain itself (RFC 5321 §5.1).
    fn mx_plan(&self, mx: &Bound<'_, PyAny>) -> PyResult<MxPlan> {
        verdict::plan(&self.inner, mx)
    }

    /// The resolution as a JSON-ready dict, the object `mtasts lookup --json` prints for a
    /// domain: `{domain, mode, source, policy, failure, notice}` with strings for the enums
    /// and RFC 3339 UTC strings for times (see `Policy.to_dict` and `Failure.to_dict`).
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let view = mtasts_core::ResolutionView::new(&self.inner);
        util::json_dict(py, mtasts_core::to_json(&view))
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let policy = match self.inner.cached_policy() {
            Some(p) => Policy::cached(p).__repr__(py)?,
            None => "None".into(),
        };
        let failure = match self.inner.failure() {
            Some(e) => Failure::new(e.clone()).__repr__(py)?,
            None => "None".into(),
        };
        Ok(format!(
            "Resolution(domain={}, source={}, mode={}, policy={policy}, failure={failure})",
            util::repr(py, self.domain())?,
            util::repr(py, self.inner.source().as_str())?,
            util::repr(py, self.inner.mode().as_str())?,
        ))
    }
}

/// `{kind, result_type, reason}` of a core error, as `mtasts lookup --json` prints it.
pub fn failure_dict<'py>(py: Python<'py>, e: &mtasts_core::Error) -> PyResult<Bound<'py, PyDict>> {
    util::json_dict(py, mtasts_core::to_json(&mtasts_core::FailureView::new(e)))
}

/// Something that went wrong while resolving a policy (or refreshing it): not raised, but
/// part of a `Resolution` or `RefreshReport`, because the caller must still deliver or defer.
///
/// - `kind`: the core's stable name: `dns-temporary`, `policy-fetch`, `policy-certificate`,
///   `invalid-policy`, `fetch-backoff`, `cache`, ...
/// - `result_type`: the RFC 8460 `ResultType` to report it under, or `None`.
/// - `reason`: the message (also `str(failure)`).
/// - `temporary`: true for failures that may go away on their own (DNS, network, backoff).
#[pyclass(frozen, module = "mtasts")]
pub struct Failure {
    inner: mtasts_core::Error,
}

impl Failure {
    /// Wraps a core error.
    pub fn new(inner: mtasts_core::Error) -> Failure {
        Failure { inner }
    }
}

#[pymethods]
impl Failure {
    /// The core's stable name for the failure, e.g. `dns-temporary`, `policy-fetch`.
    #[getter]
    fn kind(&self) -> &'static str {
        self.inner.kind()
    }

    /// The RFC 8460 result type to report (a `ResultType`), or `None`.
    #[getter]
    fn result_type<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        enums::opt_result_type(py, self.inner.result_type())
    }

    /// What went wrong, for people.
    #[getter]
    fn reason(&self) -> String {
        self.inner.to_string()
    }

    /// True when the failure may go away on its own (DNS, network, fetch backoff, cache).
    #[getter]
    fn temporary(&self) -> bool {
        self.inner.is_temporary()
    }

    /// The failure as the matching `mtasts.Error` subclass (e.g. `DnsTemporaryError`,
    /// `FetchError`, `CertificateError`, `ParseError`), for callers who want to raise it.
    fn exception<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        errors::exception(py, &self.inner)
    }

    /// `{kind, result_type, reason}`, JSON-ready (as `mtasts lookup --json` prints it).
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        failure_dict(py, &self.inner)
    }

    fn __str__(&self) -> String {
        self.inner.to_string()
    }

    pub fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!(
            "Failure(kind={}, result_type={}, reason={})",
            util::repr(py, self.inner.kind())?,
            util::repr(py, self.inner.result_type().map(|t| t.as_str()))?,
            util::repr(py, self.inner.to_string())?,
        ))
    }
}
