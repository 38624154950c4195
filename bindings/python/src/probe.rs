//! `mtasts.ProbeReport` and `mtasts.ProbeTimings`: what a STARTTLS probe saw.

use std::time::Duration;

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyTuple};

use mtasts_core::ProbeOutcome;

use crate::enums::PROBE_OUTCOME;
use crate::failure::MxFailure;
use crate::util;

/// Everything a STARTTLS probe (`Resolver.probe`) saw, and its outcome. Immutable.
///
/// - `outcome`: a `ProbeOutcome`: `PASS`, `FAIL` (`failure` says which MTA-STS failure) or
///   `INCOMPLETE` (`reason` says why: no address, no connection, the deadline, ...).
/// - `mx_host` (normalised), `address` (`"ip:port"` the session ran on, or `None`),
///   `connect_errors`, `banner` and `ehlo` (reply lines), `starttls_offered`, `tls_version`
///   (e.g. `"TLSv1.3"`), `cipher_suite`, `chain` (the DER certificates presented, leaf first,
///   as a tuple of `bytes`), `timings` (a `ProbeTimings`).
#[pyclass(frozen, module = "mtasts")]
pub struct ProbeReport {
    inner: mtasts_core::ProbeReport,
}

impl ProbeReport {
    /// Wraps a core report.
    pub fn new(inner: mtasts_core::ProbeReport) -> ProbeReport {
        ProbeReport { inner }
    }
}

#[pymethods]
impl ProbeReport {
    /// How the probe ended (a `ProbeOutcome`).
    #[getter]
    fn outcome<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        PROBE_OUTCOME.member(py, self.inner.outcome.as_str())
    }

    /// The MTA-STS failure of the MX for `FAIL` (an `MxFailure`), else `None`.
    #[getter]
    fn failure(&self) -> Option<MxFailure> {
        self.inner
            .outcome
            .failure()
            .cloned()
            .map(MxFailure::from_core)
    }

    /// Why the probe could not assess STARTTLS, for `INCOMPLETE`; else `None`.
    #[getter]
    fn reason(&self) -> Option<&str> {
        match &self.inner.outcome {
            ProbeOutcome::Incomplete { reason } => Some(reason),
            _ => None,
        }
    }

    /// The MX host, normalised (SNI and the certificate check used it).
    #[getter]
    fn mx_host(&self) -> &str {
        self.inner.mx_host.as_str()
    }

    /// The address the SMTP session ran on, as `"ip:port"`, or `None`.
    #[getter]
    fn address(&self) -> Option<String> {
        self.inner.address.map(|a| a.to_string())
    }

    /// The addresses that could not be connected to, with the error, in the order tried.
    #[getter]
    fn connect_errors<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        PyTuple::new(py, &self.inner.connect_errors)
    }

    /// The banner's lines (text after the reply code).
    #[getter]
    fn banner<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        PyTuple::new(py, &self.inner.banner)
    }

    /// The lines of the reply to `EHLO` (before TLS).
    #[getter]
    fn ehlo<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        PyTuple::new(py, &self.inner.ehlo)
    }

    /// True when the EHLO reply advertised `STARTTLS`.
    #[getter]
    fn starttls_offered(&self) -> bool {
        self.inner.starttls_offered
    }

    /// The TLS version negotiated, e.g. `"TLSv1.3"`, or `None`.
    #[getter]
    fn tls_version(&self) -> Option<&str> {
        self.inner.tls_version.as_deref()
    }

    /// The cipher suite negotiated, e.g. `"TLS13_AES_256_GCM_SHA384"`, or `None`.
    #[getter]
    fn cipher_suite(&self) -> Option<&str> {
        self.inner.cipher_suite.as_deref()
    }

    /// The certificate chain the server presented, leaf first, as DER `bytes` (empty without
    /// a TLS handshake).
    #[getter]
    fn chain<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        PyTuple::new(
            py,
            self.inner
                .chain
                .iter()
                .map(|c| PyBytes::new(py, c.as_ref())),
        )
    }

    /// When each step finished (a `ProbeTimings`).
    #[getter]
    fn timings(&self) -> ProbeTimings {
        ProbeTimings {
            inner: self.inner.timings,
        }
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let failure = match self.failure() {
            Some(f) => f.__repr__(py)?,
            None => "None".into(),
        };
        Ok(format!(
            "ProbeReport(mx_host={}, outcome={}, failure={failure}, reason={}, address={}, tls_version={})",
            util::repr(py, self.mx_host())?,
            util::repr(py, self.inner.outcome.as_str())?,
            util::repr(py, self.reason())?,
            util::repr(py, self.address())?,
            util::repr(py, self.tls_version())?,
        ))
    }
}

/// When each step of a probe finished, in seconds from its start (`None`: not reached).
#[pyclass(frozen, module = "mtasts")]
pub struct ProbeTimings {
    inner: mtasts_core::ProbeTimings,
}

fn secs(d: Option<Duration>) -> Option<f64> {
    d.map(|d| d.as_secs_f64())
}

#[pymethods]
impl ProbeTimings {
    /// The addresses were known (looked up, or given).
    #[getter]
    fn resolved(&self) -> Option<f64> {
        secs(self.inner.resolved)
    }

    /// The TCP connection was established.
    #[getter]
    fn connected(&self) -> Option<f64> {
        secs(self.inner.connected)
    }

    /// The banner was read.
    #[getter]
    fn banner(&self) -> Option<f64> {
        secs(self.inner.banner)
    }

    /// The `220` answer to `STARTTLS` was read.
    #[getter]
    fn starttls(&self) -> Option<f64> {
        secs(self.inner.starttls)
    }

    /// The TLS handshake completed.
    #[getter]
    fn handshake(&self) -> Option<f64> {
        secs(self.inner.handshake)
    }

    /// The probe ended (after `QUIT` and the certificate check).
    #[getter]
    fn total(&self) -> f64 {
        self.inner.total.as_secs_f64()
    }

    fn __repr__(&self) -> String {
        let f = |v: Option<f64>| v.map_or_else(|| "None".to_string(), |v| format!("{v:.6}"));
        format!(
            "ProbeTimings(resolved={}, connected={}, banner={}, starttls={}, handshake={}, total={:.6})",
            f(self.resolved()),
            f(self.connected()),
            f(self.banner()),
            f(self.starttls()),
            f(self.handshake()),
            self.total()
        )
    }
}
