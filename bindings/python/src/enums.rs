//! The members of the `enum.Enum` classes of `mtasts.enums`, handed out by value.
//!
//! The enums are defined in Python (so they are real `enum.Enum`s, `str`-valued with the RFC
//! strings); Rust names a member by the core's stable string (`Mode::as_str`, ...). Each class's
//! members are read once, on first use, and kept: returning one is a lookup in a list of at
//! most 13 entries, with no Python call.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;

/// One enum class of `mtasts.enums`.
pub struct PyEnum {
    class: &'static str,
    members: PyOnceLock<Vec<(String, Py<PyAny>)>>,
}

impl PyEnum {
    const fn new(class: &'static str) -> PyEnum {
        PyEnum {
            class,
            members: PyOnceLock::new(),
        }
    }

    /// The member whose value is `value`.
    pub fn member<'py>(&self, py: Python<'py>, value: &str) -> PyResult<Bound<'py, PyAny>> {
        let members = self.members.get_or_try_init(py, || {
            let class = py.import("mtasts.enums")?.getattr(self.class)?;
            class
                .try_iter()?
                .map(|member| {
                    let member = member?;
                    let value: String = member.getattr("value")?.extract()?;
                    Ok((value, member.unbind()))
                })
                .collect::<PyResult<Vec<_>>>()
        })?;
        members
            .iter()
            .find(|(v, _)| v == value)
            .map(|(_, member)| member.bind(py).clone())
            .ok_or_else(|| {
                // The core has a value the Python enum lacks: the two are out of step.
                PyValueError::new_err(format!(
                    "mtasts.enums.{} has no member {value:?}",
                    self.class
                ))
            })
    }
}

/// `mtasts.Mode`.
pub static MODE: PyEnum = PyEnum::new("Mode");
/// `mtasts.Source`.
pub static SOURCE: PyEnum = PyEnum::new("Source");
/// `mtasts.ResultType`.
pub static RESULT_TYPE: PyEnum = PyEnum::new("ResultType");
/// `mtasts.FailureReason`.
pub static FAILURE_REASON: PyEnum = PyEnum::new("FailureReason");
/// `mtasts.Requirement`.
pub static REQUIREMENT: PyEnum = PyEnum::new("Requirement");
/// `mtasts.ProbeOutcome`.
pub static PROBE_OUTCOME: PyEnum = PyEnum::new("ProbeOutcome");

/// `mtasts.Mode` member of `mode`.
pub fn mode(py: Python<'_>, mode: mtasts_core::Mode) -> PyResult<Bound<'_, PyAny>> {
    MODE.member(py, mode.as_str())
}

/// `mtasts.ResultType` member of `result_type`.
pub fn result_type(
    py: Python<'_>,
    result_type: mtasts_core::ResultType,
) -> PyResult<Bound<'_, PyAny>> {
    RESULT_TYPE.member(py, result_type.as_str())
}

/// `mtasts.ResultType` member, or `None`.
pub fn opt_result_type(
    py: Python<'_>,
    result_type: Option<mtasts_core::ResultType>,
) -> PyResult<Option<Bound<'_, PyAny>>> {
    result_type.map(|t| self::result_type(py, t)).transpose()
}
