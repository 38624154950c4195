//! MX decisions: `MxRecord`, `MxFailure`, `Verdict`, `Delivery`, `MxPlan`, `UsableMx`,
//! `SkippedMx`.

use pyo3::prelude::*;
use pyo3::types::{PyString, PyTuple};

use mtasts_core::{Delivery as CoreDelivery, FailureReason, Verdict as CoreVerdict};

use crate::certs::CertCheck;
use crate::enums::{self, FAILURE_REASON, REQUIREMENT};
use crate::errors;
use crate::util;

/// One MX record: `preference` (lower is preferred) and `host`. Build your own from another
/// DNS library, or get them from `Resolver.lookup_mx`; pass them to `Resolution.mx_plan`.
#[pyclass(frozen, eq, hash, module = "mtasts")]
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct MxRecord {
    preference: u16,
    host: String,
}

impl From<mtasts_core::MxRecord> for MxRecord {
    fn from(r: mtasts_core::MxRecord) -> MxRecord {
        MxRecord {
            preference: r.preference,
            host: r.exchange,
        }
    }
}

#[pymethods]
impl MxRecord {
    #[new]
    fn new(preference: u16, host: String) -> MxRecord {
        MxRecord { preference, host }
    }

    /// The MX preference: lower is preferred (RFC 5321 §5.1).
    #[getter]
    fn preference(&self) -> u16 {
        self.preference
    }

    /// The MX host name as published (not a CNAME target).
    #[getter]
    fn host(&self) -> &str {
        &self.host
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!(
            "MxRecord(preference={}, host={})",
            self.preference,
            util::repr(py, self.host.as_str())?
        ))
    }
}

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

fn opt_failure(failure: Option<&mtasts_core::MxFailure>) -> Option<MxFailure> {
    failure.cloned().map(MxFailure::from_core)
}

/// What MTA-STS requires of one MX host, known before connecting (RFC 8461 §5).
///
/// - `requirement`: a `Requirement`: `NO_REQUIREMENT` (no policy or mode `none`), `TESTING`
///   (deliver anyway, record failures), `REQUIRE_TLS` (enforce: STARTTLS and a certificate
///   valid for `mx_host`), `SKIP` (enforce, the host matches no pattern: do not use it).
/// - `mx_host`: for `REQUIRE_TLS`, the normalised host name to verify the certificate against
///   and send as SNI; else `None`.
/// - `failure`: the failure known from the host name (`SKIP`, or `TESTING` with a host outside
///   the policy), or `None`.
///
/// After trying STARTTLS, `decide()` gives the final answer for this MX.
#[pyclass(frozen, module = "mtasts")]
pub struct Verdict {
    inner: CoreVerdict,
}

impl Verdict {
    /// Wraps a core verdict.
    pub fn new(inner: CoreVerdict) -> Verdict {
        Verdict { inner }
    }
}

#[pymethods]
impl Verdict {
    /// The requirement (a `Requirement`).
    #[getter]
    fn requirement<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        REQUIREMENT.member(py, self.inner.as_str())
    }

    /// For `REQUIRE_TLS`: the MX host, normalised, to verify the certificate against and send
    /// as SNI. Else `None`.
    #[getter]
    fn mx_host(&self) -> Option<&str> {
        match &self.inner {
            CoreVerdict::RequireTls { mx_host } => Some(mx_host.as_str()),
            _ => None,
        }
    }

    /// The failure already known from the MX name (`SKIP`, or `TESTING` with a host outside
    /// the policy): an `MxFailure`, or `None`.
    #[getter]
    fn failure(&self) -> Option<MxFailure> {
        opt_failure(self.inner.failure())
    }

    /// True when MTA-STS requires verified TLS for this MX (`REQUIRE_TLS`). Where DANE
    /// applies to the MX, DANE takes precedence.
    #[getter]
    fn requires_tls(&self) -> bool {
        self.inner.requires_tls()
    }

    /// False only for `SKIP`: the MX must not be used at all.
    #[getter]
    fn may_use(&self) -> bool {
        self.inner.may_use()
    }

    /// True when failures with this MX are reported through TLS-RPT (modes `testing` and
    /// `enforce`).
    #[getter]
    fn reports_failures(&self) -> bool {
        self.inner.reports_failures()
    }

    /// The final answer for this MX once STARTTLS was tried: a `Delivery`.
    ///
    /// `tls_failure` is what went wrong with TLS: an `MxFailure` (STARTTLS not offered,
    /// handshake failed, ...) or the `CertCheck` of the certificate the MX presented; `None`
    /// (or a valid `CertCheck`) when STARTTLS succeeded with a verified certificate.
    #[pyo3(signature = (tls_failure = None))]
    fn decide(&self, tls_failure: Option<&Bound<'_, PyAny>>) -> PyResult<Delivery> {
        let failure = match tls_failure {
            None => None,
            Some(obj) if obj.is_none() => None,
            Some(obj) => {
                if let Ok(f) = obj.cast::<MxFailure>() {
                    Some(f.get().inner.clone())
                } else if let Ok(check) = obj.cast::<CertCheck>() {
                    check.get().core().clone().into_failure()
                } else {
                    return Err(errors::type_error(format!(
                        "decide() takes an MxFailure, a CertCheck or None, not {}",
                        obj.get_type().name()?
                    )));
                }
            }
        };
        Ok(Delivery {
            inner: self.inner.decide(failure),
        })
    }

    fn __str__(&self) -> String {
        self.inner.to_string()
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let failure = match self.inner.failure() {
            Some(f) => MxFailure::from_core(f.clone()).__repr__(py)?,
            None => "None".into(),
        };
        Ok(format!(
            "Verdict(requirement={}, mx_host={}, failure={failure})",
            util::repr(py, self.inner.as_str())?,
            util::repr(py, self.mx_host())?,
        ))
    }
}

/// The final answer for one MX after STARTTLS (`Verdict.decide`).
///
/// - `deliver`: True: deliver to this MX. False: do not; it is a temporary failure, try the
///   next MX, and when none is left defer the message (4xx), never bounce it.
/// - `failure`: the `MxFailure` to report through TLS-RPT (for `deliver`, the failure mode
///   `testing` records), or `None`.
#[pyclass(frozen, module = "mtasts")]
pub struct Delivery {
    inner: CoreDelivery,
}

#[pymethods]
impl Delivery {
    /// True: deliver to this MX. False: try the next one.
    #[getter]
    fn deliver(&self) -> bool {
        self.inner.is_deliver()
    }

    /// The failure to report (either case), or `None`.
    #[getter]
    fn failure(&self) -> Option<MxFailure> {
        opt_failure(self.inner.failure())
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let failure = match self.inner.failure() {
            Some(f) => MxFailure::from_core(f.clone()).__repr__(py)?,
            None => "None".into(),
        };
        Ok(format!(
            "Delivery(deliver={}, failure={failure})",
            if self.inner.is_deliver() {
                "True"
            } else {
                "False"
            },
        ))
    }
}

/// One MX host that may be used: `preference`, `host` (connect to it) and its `Verdict`.
#[pyclass(frozen, module = "mtasts")]
pub struct UsableMx {
    inner: mtasts_core::UsableMx,
}

#[pymethods]
impl UsableMx {
    /// The MX preference (0 for the implicit MX).
    #[getter]
    fn preference(&self) -> u16 {
        self.inner.preference
    }

    /// The MX host name as given.
    #[getter]
    fn host(&self) -> &str {
        &self.inner.host
    }

    /// What MTA-STS requires of it (`NO_REQUIREMENT`, `TESTING` or `REQUIRE_TLS`).
    #[getter]
    fn verdict(&self) -> Verdict {
        Verdict::new(self.inner.verdict.clone())
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!(
            "UsableMx(preference={}, host={}, verdict={})",
            self.inner.preference,
            util::repr(py, self.inner.host.as_str())?,
            self.verdict().__repr__(py)?,
        ))
    }
}

/// One MX host that must not be used: `preference`, `host`, and the `MxFailure` to report.
#[pyclass(frozen, module = "mtasts")]
pub struct SkippedMx {
    inner: mtasts_core::SkippedMx,
}

#[pymethods]
impl SkippedMx {
    /// The MX preference (0 for the implicit MX).
    #[getter]
    fn preference(&self) -> u16 {
        self.inner.preference
    }

    /// The MX host name as given.
    #[getter]
    fn host(&self) -> &str {
        &self.inner.host
    }

    /// Why it is skipped (`mx-mismatch`, result type `validation-failure`); report it.
    #[getter]
    fn failure(&self) -> MxFailure {
        MxFailure::from_core(self.inner.failure.clone())
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!(
            "SkippedMx(preference={}, host={}, failure={})",
            self.inner.preference,
            util::repr(py, self.inner.host.as_str())?,
            self.failure().__repr__(py)?,
        ))
    }
}

/// A recipient domain's MX hosts sorted out under its policy (`Resolution.mx_plan`).
///
/// - `usable`: the `UsableMx` hosts that may be tried, in the order given.
/// - `skipped`: the `SkippedMx` hosts that must not be used (mode `enforce` only).
/// - `defer`: True when the policy is `enforce` and no MX is usable: defer the message (4xx)
///   and report; never bounce it.
/// - `implicit_mx`: True when the MX list was empty and the domain itself was taken as MX.
#[pyclass(frozen, module = "mtasts")]
pub struct MxPlan {
    inner: mtasts_core::MxPlan,
}

#[pymethods]
impl MxPlan {
    /// The MX hosts that may be tried, in order (a tuple of `UsableMx`).
    #[getter]
    fn usable<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        PyTuple::new(
            py,
            self.inner
                .usable
                .iter()
                .map(|u| UsableMx { inner: u.clone() }),
        )
    }

    /// The MX hosts that must not be used, in order (a tuple of `SkippedMx`).
    #[getter]
    fn skipped<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        PyTuple::new(
            py,
            self.inner
                .skipped
                .iter()
                .map(|s| SkippedMx { inner: s.clone() }),
        )
    }

    /// True when the policy is `enforce` and no MX is usable: defer, never bounce.
    #[getter]
    fn defer(&self) -> bool {
        self.inner.defer
    }

    /// True when the MX list was empty and the domain itself was taken as the MX host.
    #[getter]
    fn implicit_mx(&self) -> bool {
        self.inner.implicit_mx
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let usable: Vec<&str> = self.inner.usable.iter().map(|u| u.host.as_str()).collect();
        let skipped: Vec<&str> = self.inner.skipped.iter().map(|s| s.host.as_str()).collect();
        Ok(format!(
            "MxPlan(usable={}, skipped={}, defer={}, implicit_mx={})",
            util::repr(py, usable)?,
            util::repr(py, skipped)?,
            if self.inner.defer { "True" } else { "False" },
            if self.inner.implicit_mx {
                "True"
            } else {
                "False"
            },
        ))
    }
}

/// `Resolution.mx_plan`: `mx` is a sequence of host names or of `MxRecord`s.
pub fn plan(resolution: &mtasts_core::Resolution, mx: &Bound<'_, PyAny>) -> PyResult<MxPlan> {
    let not_sequence = || {
        errors::type_error(
            "mx_plan() takes a sequence of host names or of MxRecord, not a single string",
        )
    };
    if mx.is_instance_of::<PyString>() {
        return Err(not_sequence());
    }
    let mut hosts: Vec<String> = Vec::new();
    let mut records: Vec<mtasts_core::MxRecord> = Vec::new();
    for item in mx.try_iter()? {
        let item = item?;
        if let Ok(record) = item.cast::<MxRecord>() {
            let record = record.get();
            records.push(mtasts_core::MxRecord {
                preference: record.preference,
                exchange: record.host.clone(),
            });
        } else if let Ok(host) = item.cast::<PyString>() {
            hosts.push(host.to_cow()?.into_owned());
        } else {
            return Err(errors::type_error(format!(
                "mx_plan() takes host names (str) or MxRecord items, not {}",
                item.get_type().name()?
            )));
        }
    }
    // Never fail open: a resolution that cannot tell raises (CacheError).
    let policy = resolution
        .applicable_policy()
        .map_err(|e| errors::to_py(&e))?;
    let inner = match (hosts.is_empty(), records.is_empty()) {
        (_, true) => mtasts_core::MxPlan::from_hosts(policy, resolution.domain(), &hosts),
        (true, false) => mtasts_core::MxPlan::new(policy, resolution.domain(), &records),
        (false, false) => {
            return Err(errors::type_error(
                "mx_plan() takes host names or MxRecord items, not a mix of both",
            ));
        }
    };
    Ok(MxPlan { inner })
}
