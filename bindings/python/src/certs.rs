//! `mtasts.CertVerifier` and `mtasts.CertCheck`: MX certificate chains checked by the core
//! (rustls-webpki), whatever TLS library got them.

use std::path::PathBuf;
use std::time::SystemTime;

use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes, PyString};

use mtasts_core::{CertificateDer, TrustRoots};

use crate::errors::{self, IntoPyResult};
use crate::failure::MxFailure;
use crate::util;

/// Checks MX certificate chains against a set of trust roots (RFC 8461 §4.2): the chain must
/// reach a trusted root, every certificate must be valid at the time given, and a SAN DNS-ID
/// of the leaf must match the MX host (wildcards as the whole left-most label only; never the
/// subject CN).
///
/// `trust_roots`: `"system"` (default), `"bundled"` (Mozilla's roots, compiled in) or the path
/// of a PEM file. Loading them happens here (GIL released); `ConfigError` when they cannot be
/// loaded. Build one and share it: it is immutable and thread-safe.
#[pyclass(frozen, module = "mtasts")]
pub struct CertVerifier {
    inner: mtasts_core::CertVerifier,
    trust_roots: String,
}

impl CertVerifier {
    /// Wraps a core verifier built for `trust_roots`.
    pub fn from_core(inner: mtasts_core::CertVerifier, trust_roots: String) -> CertVerifier {
        CertVerifier { inner, trust_roots }
    }

    /// The core verifier.
    pub fn inner(&self) -> &mtasts_core::CertVerifier {
        &self.inner
    }
}

/// A chain as given from Python: encoded (PEM text, or DER bytes, one or concatenated), or a
/// list of DER certificates.
enum Chain {
    Encoded(Vec<u8>),
    Certificates(Vec<CertificateDer<'static>>),
}

fn bytes_of(obj: &Bound<'_, PyAny>) -> Option<Vec<u8>> {
    if let Ok(b) = obj.cast::<PyBytes>() {
        Some(b.as_bytes().to_vec())
    } else if let Ok(b) = obj.cast::<PyByteArray>() {
        Some(b.to_vec())
    } else {
        None
    }
}

fn chain_of(obj: &Bound<'_, PyAny>) -> PyResult<Chain> {
    if let Ok(s) = obj.cast::<PyString>() {
        return Ok(Chain::Encoded(s.to_cow()?.as_bytes().to_vec()));
    }
    if let Some(bytes) = bytes_of(obj) {
        return Ok(Chain::Encoded(bytes));
    }
    let wrong = |what: &str| {
        errors::type_error(format!(
            "a certificate chain is PEM text (str), DER bytes, or a list of DER bytes (leaf \
             first), not {what}"
        ))
    };
    let Ok(items) = obj.try_iter() else {
        return Err(wrong(&obj.get_type().name()?.to_string()));
    };
    let mut certificates = Vec::new();
    for item in items {
        let item = item?;
        match bytes_of(&item) {
            Some(der) => certificates.push(CertificateDer::from(der)),
            None => {
                return Err(wrong(&format!(
                    "a sequence holding {}",
                    item.get_type().name()?
                )));
            }
        }
    }
    Ok(Chain::Certificates(certificates))
}

#[pymethods]
impl CertVerifier {
    #[new]
    #[pyo3(signature = (trust_roots = PathBuf::from("system")))]
    fn new(py: Python<'_>, trust_roots: PathBuf) -> PyResult<CertVerifier> {
        let roots = match trust_roots.to_str() {
            Some(s) => TrustRoots::from_setting(s),
            None => TrustRoots::PemFile(trust_roots.clone()),
        };
        let inner = py
            .detach(move || mtasts_core::CertVerifier::new(&roots))
            .py()?;
        Ok(CertVerifier {
            inner,
            trust_roots: trust_roots.to_string_lossy().into_owned(),
        })
    }

    /// Checks `chain` for MX host `mx_host` at time `at` (an aware `datetime`; default now) and
    /// returns a `CertCheck`.
    ///
    /// `chain` is leaf first, then intermediates (a root may be included): PEM text (`str`),
    /// DER `bytes` (one certificate, e.g. `ssl.SSLSocket.getpeercert(binary_form=True)`, or
    /// several concatenated), or a list of DER `bytes`. A rejected chain is not an error but a
    /// `CertCheck` with a `failure`; raises `InvalidChain` when the chain cannot be read,
    /// `InvalidDomain` when `mx_host` is not a host name, `TypeError` for other types.
    #[pyo3(signature = (chain, mx_host, *, at = None))]
    fn check(
        &self,
        py: Python<'_>,
        chain: &Bound<'_, PyAny>,
        mx_host: String,
        at: Option<SystemTime>,
    ) -> PyResult<CertCheck> {
        let chain = chain_of(chain)?;
        let at = at.unwrap_or_else(SystemTime::now);
        let inner = &self.inner;
        let check = py
            .detach(move || match chain {
                Chain::Encoded(bytes) => inner.check_encoded(&bytes, &mx_host, at),
                Chain::Certificates(certs) => inner.check(&certs, &mx_host, at),
            })
            .py()?;
        Ok(CertCheck { inner: check })
    }

    /// The trust roots setting: `"system"`, `"bundled"` or a PEM file path.
    #[getter]
    fn trust_roots(&self) -> &str {
        &self.trust_roots
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!(
            "CertVerifier(trust_roots={})",
            util::repr(py, self.trust_roots.as_str())?
        ))
    }
}

/// The outcome of a certificate check: `valid`, or not and `failure` (an `MxFailure`) says
/// why (`certificate-expired`, `certificate-host-mismatch`, `certificate-not-trusted`, ...).
/// Pass it to `Verdict.decide`.
#[pyclass(frozen, module = "mtasts")]
pub struct CertCheck {
    inner: mtasts_core::CertCheck,
}

impl CertCheck {
    /// The core check.
    pub fn core(&self) -> &mtasts_core::CertCheck {
        &self.inner
    }
}

#[pymethods]
impl CertCheck {
    /// True when the chain is acceptable for the MX host.
    #[getter]
    fn valid(&self) -> bool {
        self.inner.is_valid()
    }

    /// Why the chain was rejected (an `MxFailure`), or `None`.
    #[getter]
    fn failure(&self) -> Option<MxFailure> {
        self.inner.failure().cloned().map(MxFailure::from_core)
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(match self.failure() {
            None => "CertCheck(valid=True, failure=None)".into(),
            Some(f) => format!("CertCheck(valid=False, failure={})", f.__repr__(py)?),
        })
    }
}
