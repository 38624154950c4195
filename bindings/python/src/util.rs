//! Small conversions shared by the classes: Python `repr()` of values, RFC 3339 times.

use std::time::SystemTime;

use pyo3::BoundObject;
use pyo3::prelude::*;

/// Python's `repr()` of a value converted to Python (for `__repr__` methods).
pub fn repr<'py, T>(py: Python<'py>, value: T) -> PyResult<String>
where
    T: IntoPyObject<'py>,
{
    let object = value.into_pyobject(py).map_err(Into::into)?.into_bound();
    Ok(object.into_any().repr()?.to_string())
}

/// A time as RFC 3339 UTC text (`2024-01-01T00:00:00Z`), the core's format (as `mtasts
/// --json` prints it).
pub fn rfc3339(t: SystemTime) -> String {
    mtasts_core::rfc3339(t)
}
