//! The one place where a core [`mtasts_core::Error`] becomes a Python exception of
//! `mtasts.exceptions` (defined there, in Python, once).

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyModule};

use mtasts_core::Error;

use crate::enums;

/// The class of `mtasts.exceptions` each core error kind is raised as.
///
/// Matched on `Error::kind()` (the core's stable names) rather than the variants, so a kind
/// the core adds later is still raised, as the root class `Error`.
fn class_name(e: &Error) -> &'static str {
    match e.kind() {
        "invalid-domain" => "InvalidDomain",
        "invalid-record" | "invalid-policy" | "invalid-mx-pattern" => "ParseError",
        "invalid-chain" => "InvalidChain",
        "dns-temporary" => "DnsTemporaryError",
        "policy-fetch" | "fetch-backoff" => "FetchError",
        "policy-certificate" => "CertificateError",
        "cache" => "CacheError",
        "config" => "ConfigError",
        "invalid-session" => "InvalidSession",
        "report-store" => "ReportStoreError",
        _ => "Error",
    }
}

/// The exception instance for `e`: its class from `class_name`, the message (`Display`), and
/// the attributes `kind`, `result_type` and, for a `ParseError`, `line`.
pub fn exception<'py>(py: Python<'py>, e: &Error) -> PyResult<Bound<'py, PyAny>> {
    static MODULE: PyOnceLock<Py<PyModule>> = PyOnceLock::new();
    let module =
        MODULE.get_or_try_init(py, || py.import("mtasts.exceptions").map(Bound::unbind))?;
    let name = class_name(e);
    let class = module.bind(py).getattr(name)?;
    let kwargs = PyDict::new(py);
    kwargs.set_item("kind", e.kind())?;
    kwargs.set_item("result_type", enums::opt_result_type(py, e.result_type())?)?;
    if name == "ParseError" {
        let line = match e {
            Error::InvalidPolicy { line, .. } => *line,
            _ => None,
        };
        kwargs.set_item("line", line)?;
    }
    class.call((e.to_string(),), Some(&kwargs))
}

/// `e` as a `PyErr`, ready to be raised.
pub fn to_py(e: &Error) -> PyErr {
    Python::attach(|py| match exception(py, e) {
        Ok(exception) => PyErr::from_value(exception),
        Err(failed) => failed,
    })
}

/// Extension for `mtasts_core::Result`: `.py()?` raises the mapped exception.
pub trait IntoPyResult<T> {
    /// The value, or the core error as a Python exception.
    fn py(self) -> PyResult<T>;
}

impl<T> IntoPyResult<T> for mtasts_core::Result<T> {
    fn py(self) -> PyResult<T> {
        self.map_err(|e| to_py(&e))
    }
}

/// A `ValueError` for an argument of the right type with an unusable value, where the core
/// has no error for it (e.g. a timeout that is not a positive number of seconds).
pub fn value_error(message: impl Into<String>) -> PyErr {
    PyValueError::new_err(message.into())
}

/// A `TypeError` for an argument of the wrong type.
pub fn type_error(message: impl Into<String>) -> PyErr {
    PyTypeError::new_err(message.into())
}
