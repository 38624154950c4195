//! `mtasts.Diagnosis` and `mtasts.Problem`: what `Resolver.check` finds (the core's
//! `Resolver::check`, as `mtasts check` prints it).

use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::enums;
use crate::resolution::Resolution;
use crate::util;

/// What `Resolver.check` found about a domain: its TXT record, its policy, its MX hosts
/// (probed or not) and every problem. Immutable.
///
/// - `domain`: the domain, normalised.
/// - `ok`: no problem of severity `"error"` (as `mtasts check`'s exit status 0).
/// - `defer`: the policy is `enforce` and no MX host can receive mail: senders defer every
///   message.
/// - `problems`: a tuple of `Problem`.
/// - `resolution`: the `Resolution` of the policy, as a sender resolves it.
/// - `to_dict()`: everything, as `mtasts check --json` prints it (docs/json.md).
#[pyclass(frozen, module = "mtasts")]
pub struct Diagnosis {
    inner: mtasts_core::Diagnosis,
}

impl Diagnosis {
    /// Wraps a core diagnosis.
    pub fn new(inner: mtasts_core::Diagnosis) -> Diagnosis {
        Diagnosis { inner }
    }
}

#[pymethods]
impl Diagnosis {
    /// The domain, normalised (lowercase A-labels).
    #[getter]
    fn domain(&self) -> &str {
        self.inner.domain.as_str()
    }

    /// True when no problem is of severity `"error"`.
    #[getter]
    fn ok(&self) -> bool {
        self.inner.ok()
    }

    /// True when senders applying the policy defer every message (enforce, no usable MX).
    #[getter]
    fn defer(&self) -> bool {
        self.inner.defer
    }

    /// The problems, in the order found (a tuple of `Problem`).
    #[getter]
    fn problems(&self) -> Vec<Problem> {
        self.inner
            .problems
            .iter()
            .map(|p| Problem { inner: p.clone() })
            .collect()
    }

    /// The policy as a sender resolves it.
    #[getter]
    fn resolution(&self) -> Resolution {
        Resolution::new(self.inner.resolution.clone())
    }

    /// The diagnosis as a JSON-ready dict: the object `mtasts check --json` prints.
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let view = mtasts_core::DiagnosisView::new(&self.inner);
        util::json_dict(py, mtasts_core::to_json(&view))
    }

    fn __repr__(&self) -> String {
        format!(
            "Diagnosis(domain={:?}, ok={}, defer={}, problems={})",
            self.inner.domain.as_str(),
            if self.inner.ok() { "True" } else { "False" },
            if self.inner.defer { "True" } else { "False" },
            self.inner.problems.len()
        )
    }
}

/// One problem of a `Diagnosis`: `severity` (`"error"` or `"warning"`), a stable `code`
/// (`"mx-mismatch"`, `"no-usable-mx"`, ...; see docs/json.md), the `mx` host it is about (or
/// `None`), the RFC 8460 `result_type` senders report it under (a `ResultType`, or `None`),
/// the `message` and how to `fix` it.
#[pyclass(frozen, module = "mtasts")]
pub struct Problem {
    inner: mtasts_core::Problem,
}

#[pymethods]
impl Problem {
    /// `"error"` or `"warning"`.
    #[getter]
    fn severity(&self) -> &'static str {
        self.inner.severity.as_str()
    }

    /// The stable code.
    #[getter]
    fn code(&self) -> &'static str {
        self.inner.code.as_str()
    }

    /// The MX host it is about, or `None`.
    #[getter]
    fn mx(&self) -> Option<&str> {
        self.inner.mx.as_deref()
    }

    /// The RFC 8460 result type (a `ResultType`), or `None`.
    #[getter]
    fn result_type<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        self.inner
            .result_type
            .map(|t| enums::result_type(py, t))
            .transpose()
    }

    /// What is wrong.
    #[getter]
    fn message(&self) -> &str {
        &self.inner.message
    }

    /// How to fix it.
    #[getter]
    fn fix(&self) -> &'static str {
        self.inner.fix()
    }

    fn __repr__(&self) -> String {
        format!(
            "Problem(severity={:?}, code={:?}, mx={:?})",
            self.inner.severity.as_str(),
            self.inner.code.as_str(),
            self.inner.mx
        )
    }
}
