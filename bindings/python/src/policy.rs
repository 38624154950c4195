//! `mtasts.Policy`, `mtasts.Record`, `parse_policy` and `parse_record`.

use std::sync::Arc;
use std::time::SystemTime;

use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes, PyDict, PyString, PyTuple};

use mtasts_core::CachedPolicy;

use crate::enums;
use crate::errors::{self, IntoPyResult};
use crate::util;
use crate::verdict::Verdict;

/// A valid MTA-STS policy (RFC 8461 §3.2). Immutable.
///
/// From `Resolution.policy` (fetched or cached: `id`, `fetched_at` and `expires_at` are set)
/// or `parse_policy(text)` (they are `None`).
///
/// - `mode`: a `Mode`; `mx`: the usable `mx` patterns, normalised, as a tuple of strings;
///   `max_age`: seconds (clamped to one year).
/// - `id`: the record id the policy was fetched under.
/// - `text`: the policy file verbatim (unknown fields included; the TLS-RPT `policy-string`).
/// - `fetched_at`, `expires_at`: aware UTC `datetime`s.
/// - `warnings`: one message per tolerance applied while parsing; `extensions`: unknown
///   fields as `(key, value)` pairs.
#[pyclass(frozen, module = "mtasts")]
pub struct Policy {
    policy: Arc<mtasts_core::Policy>,
    cached: Option<Arc<CachedPolicy>>,
}

impl Policy {
    /// A cached (fetched) policy, with its id and times.
    pub fn cached(cached: &Arc<CachedPolicy>) -> Policy {
        Policy {
            policy: Arc::clone(&cached.policy),
            cached: Some(Arc::clone(cached)),
        }
    }

    /// The core policy.
    pub fn core(&self) -> &mtasts_core::Policy {
        &self.policy
    }
}

#[pymethods]
impl Policy {
    /// The policy's mode (a `Mode`).
    #[getter]
    fn mode<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        enums::mode(py, self.policy.mode())
    }

    /// The usable `mx` patterns, normalised, in the order of the file (empty only for mode
    /// `none`), e.g. `("mail.example.com", "*.example.net")`.
    #[getter]
    fn mx<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        PyTuple::new(py, self.policy.mx().iter().map(|p| p.as_str()))
    }

    /// How long the policy may be cached, in seconds from its last successful fetch.
    #[getter]
    fn max_age(&self) -> u32 {
        self.policy.max_age()
    }

    /// The id of the TXT record the policy was fetched under; `None` for a parsed policy.
    #[getter]
    fn id(&self) -> Option<&str> {
        self.cached.as_deref().map(|c| c.id.as_str())
    }

    /// The policy file verbatim, as fetched or parsed.
    #[getter]
    fn text(&self) -> &str {
        self.policy.text()
    }

    /// When the policy was fetched (aware UTC `datetime`); `None` for a parsed policy.
    #[getter]
    fn fetched_at(&self) -> Option<SystemTime> {
        self.cached.as_deref().map(|c| c.fetched_at)
    }

    /// When the policy expires, `max_age` after its last successful fetch (aware UTC
    /// `datetime`); `None` for a parsed policy.
    #[getter]
    fn expires_at(&self) -> Option<SystemTime> {
        self.cached.as_deref().map(|c| c.expires_at)
    }

    /// One message per tolerance applied while parsing (e.g. an unusable mx pattern dropped).
    #[getter]
    fn warnings<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        PyTuple::new(py, self.policy.warnings())
    }

    /// The unknown fields, as `(key, value)` pairs in the order of the file.
    #[getter]
    fn extensions<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        PyTuple::new(py, self.policy.extensions())
    }

    /// True when MX host `mx_host` matches one of the policy's `mx` patterns (whatever the
    /// mode). The name is normalised (case, trailing dot, Unicode); one that is not a host
    /// name matches nothing.
    fn matches(&self, mx_host: &str) -> bool {
        self.policy.matches(mx_host)
    }

    /// The `Verdict` for MX host `mx_host` under this policy.
    fn verdict(&self, mx_host: &str) -> Verdict {
        Verdict::new(mtasts_core::Verdict::for_mx(Some(&self.policy), mx_host))
    }

    /// The policy as a JSON-ready dict, as `mtasts lookup --json` prints it: `{id, mode,
    /// max_age, mx, fetched_at, expires_at, text}`; `mode` a string, times RFC 3339 UTC
    /// strings; `id` and the times `None` for a parsed policy.
    pub fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let view = match &self.cached {
            Some(cached) => mtasts_core::PolicyView::cached(cached),
            None => mtasts_core::PolicyView::parsed(&self.policy),
        };
        util::json_dict(py, mtasts_core::to_json(&view))
    }

    pub fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let mx: Vec<&str> = self.policy.mx().iter().map(|p| p.as_str()).collect();
        Ok(format!(
            "Policy(id={}, mode={}, mx={}, max_age={}, expires_at={})",
            util::repr(py, self.id())?,
            util::repr(py, self.policy.mode().as_str())?,
            util::repr(py, PyTuple::new(py, mx)?)?,
            self.policy.max_age(),
            util::repr(py, self.expires_at().map(util::rfc3339))?,
        ))
    }
}

/// Parses an MTA-STS policy file (RFC 8461 §3.2) and returns a `Policy` (without id or
/// times).
///
/// `text` is `str`, or `bytes` as fetched (which must be UTF-8). Tolerated problems (CRLF,
/// white space, a byte order mark, an unusable `mx` pattern dropped, `max_age` above a year
/// clamped, ...) are listed in `Policy.warnings`; anything else raises `ParseError`, whose
/// `line` is the 1-based line of the problem (or `None`).
#[pyfunction]
pub fn parse_policy(text: &Bound<'_, PyAny>) -> PyResult<Policy> {
    let policy = if let Ok(s) = text.cast::<PyString>() {
        mtasts_core::Policy::parse(&s.to_cow()?)
    } else if let Ok(b) = text.cast::<PyBytes>() {
        mtasts_core::Policy::from_bytes(b.as_bytes())
    } else if let Ok(b) = text.cast::<PyByteArray>() {
        mtasts_core::Policy::from_bytes(&b.to_vec())
    } else {
        return Err(errors::type_error(format!(
            "parse_policy() takes str or bytes, not {}",
            text.get_type().name()?
        )));
    }
    .py()?;
    Ok(Policy {
        policy: Arc::new(policy),
        cached: None,
    })
}

/// A syntactically valid STS TXT record (RFC 8461 §3.1), from `parse_record`. Immutable.
///
/// - `id`: the policy id (1 to 32 letters and digits).
/// - `raw`: the record text verbatim.
/// - `extensions`: the fields other than `v` and `id`, as `(name, value)` pairs.
#[pyclass(frozen, module = "mtasts")]
pub struct Record {
    inner: mtasts_core::Record,
}

#[pymethods]
impl Record {
    /// The policy id (`id=` field).
    #[getter]
    fn id(&self) -> &str {
        self.inner.id()
    }

    /// The record text verbatim.
    #[getter]
    fn raw(&self) -> &str {
        self.inner.raw()
    }

    /// The fields other than `v` and `id`, as `(name, value)` pairs, in order.
    #[getter]
    fn extensions<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        PyTuple::new(py, self.inner.extensions())
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!(
            "Record(id={}, raw={})",
            util::repr(py, self.inner.id())?,
            util::repr(py, self.inner.raw())?,
        ))
    }
}

/// Parses one `_mta-sts` TXT record (RFC 8461 §3.1), its character-strings already joined,
/// e.g. `"v=STSv1; id=20240101T000000;"`, and returns a `Record`. Raises `ParseError` (with
/// `line` `None`) naming what is wrong.
#[pyfunction]
pub fn parse_record(txt: &str) -> PyResult<Record> {
    let inner = mtasts_core::Record::parse(txt).py()?;
    Ok(Record { inner })
}
