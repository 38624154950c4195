//! `mtasts.RefreshReport`: what one `Resolver.refresh` run did.

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};

use crate::resolution::Failure;
use crate::util;

/// What one `Resolver.refresh` run did. Immutable.
///
/// - `examined`: cached policies looked at.
/// - `refreshed`: domains whose policy was fetched again (expiry moved forward).
/// - `unpublished`: domains that no longer publish a policy; the cached one stays in force
///   until it expires.
/// - `failed`: `(domain, Failure)` pairs; their cached policy stays in force while valid.
/// - `purged`: entries dropped for being unused for 180 days.
#[pyclass(frozen, module = "mtasts")]
pub struct RefreshReport {
    inner: mtasts_core::RefreshReport,
}

impl RefreshReport {
    /// Wraps a core report.
    pub fn new(inner: mtasts_core::RefreshReport) -> RefreshReport {
        RefreshReport { inner }
    }
}

#[pymethods]
impl RefreshReport {
    /// Cached policies looked at.
    #[getter]
    fn examined(&self) -> usize {
        self.inner.examined
    }

    /// Domains whose policy was fetched again.
    #[getter]
    fn refreshed<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        PyTuple::new(py, self.inner.refreshed.iter().map(|d| d.as_str()))
    }

    /// Domains that no longer publish a policy (no STS record).
    #[getter]
    fn unpublished<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        PyTuple::new(py, self.inner.unpublished.iter().map(|d| d.as_str()))
    }

    /// Domains whose refresh failed, as `(domain, Failure)` pairs.
    #[getter]
    fn failed<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        let pairs = self
            .inner
            .failed
            .iter()
            .map(|(d, e)| {
                let failure = Bound::new(py, Failure::new(e.clone()))?;
                PyTuple::new(
                    py,
                    [d.as_str().into_pyobject(py)?.into_any(), failure.into_any()],
                )
            })
            .collect::<PyResult<Vec<_>>>()?;
        PyTuple::new(py, pairs)
    }

    /// Entries dropped for being unused for 180 days.
    #[getter]
    fn purged(&self) -> usize {
        self.inner.purged
    }

    /// The report as a JSON-ready dict, as `mtasts refresh --json` prints it: `{examined,
    /// refreshed, unpublished, failed: [{domain, failure: {kind, result_type, reason}}],
    /// purged}`.
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        util::json_dict(
            py,
            mtasts_core::to_json(&mtasts_core::RefreshView::new(&self.inner)),
        )
    }

    fn __repr__(&self) -> String {
        format!(
            "RefreshReport(examined={}, refreshed={}, unpublished={}, failed={}, purged={})",
            self.inner.examined,
            self.inner.refreshed.len(),
            self.inner.unpublished.len(),
            self.inner.failed.len(),
            self.inner.purged
        )
    }
}
