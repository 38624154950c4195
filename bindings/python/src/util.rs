//! Small conversions shared by the classes: Python `repr()` of values, RFC 3339 times.

use std::time::SystemTime;

use pyo3::BoundObject;
use pyo3::prelude::*;
use pyo3::types::PyDict;

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

/// A JSON text of the core's views ([`mtasts_core::to_json`]) as a Python dict, through
/// `json.loads`: `to_dict()` returns exactly the object the other faces print.
pub fn json_dict<'py>(py: Python<'py>, json: String) -> PyResult<Bound<'py, PyDict>> {
    let value = py.import("json")?.call_method1("loads", (json,))?;
    Ok(value.cast_into::<PyDict>()?)
}
