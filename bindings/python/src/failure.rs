//! `mtasts.MxFailure`: why an MX host fails MTA-STS (the core's failure vocabulary).

use pyo3::prelude::*;

use mtasts_core::FailureReason;

use crate::enums::{self, FAILURE_REASON};
use crate::errors;
use crate::util;

/// An MX host failing MTA-STS: `reason` (a `FailureReason`, the stable code), its RFC 8460
/// `result_type` and a human-readable `detail`; `str()` gives all three.
///
/// Build one for what your own TLS code saw, e.g.
/// `MxFailure(FailureReason.STARTTLS_NOT_OFFERED, "no STARTTLS in the EHLO reply")`, and pass
/// it to `Verdict.decide`.
#[pyclass(frozen, eq, hash, module = "mtasts")]
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct MxFailure {
    inner: mtasts_core::MxFailure,
}

impl MxFailure {
    /// Wraps a core failure.
    pub fn from_core(inner: mtasts_core::MxFailure) -> MxFailure {
        MxFailure { inner }
    }

    /// The core failure.
    pub fn core(&self) -> &mtasts_core::MxFailure {
        &self.inner
    }
}

#[pymethods]
impl MxFailure {
    /// A failure for `reason` (a `FailureReason` or its code string), explained by `detail`.
    /// Raises `ValueError` for an unknown reason code.
    #[new]
    fn new(reason: &str, detail: String) -> PyResult<MxFailure> {
        let reason = FailureReason::from_code(reason)
            .ok_or_else(|| errors::value_error(format!("unknown failure reason {reason:?}")))?;
        Ok(MxFailure {
            inner: mtasts_core::MxFailure::new(reason, detail),
        })
    }

    /// The reason (a `FailureReason`), e.g. `FailureReason.MX_MISMATCH`.
    #[getter]
    fn reason<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        FAILURE_REASON.member(py, self.inner.reason_code())
    }

    /// The RFC 8460 result type to report (a `ResultType`).
    #[getter]
    fn result_type<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        enums::result_type(py, self.inner.result_type())
    }

    /// What exactly went wrong, for people.
    #[getter]
    fn detail(&self) -> &str {
        self.inner.detail()
    }

    fn __str__(&self) -> String {
        self.inner.to_string()
    }

    pub fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!(
            "MxFailure(reason={}, result_type={}, detail={})",
            util::repr(py, self.inner.reason_code())?,
            util::repr(py, self.inner.result_type().as_str())?,
            util::repr(py, self.inner.detail())?,
        ))
    }
}

pub fn opt_failure(failure: Option<&mtasts_core::MxFailure>) -> Option<MxFailure> {
    failure.cloned().map(MxFailure::from_core)
}
