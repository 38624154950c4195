//! `mtasts.Reporter` and `mtasts.SessionFailure`: recording TLS-RPT sessions (RFC 8460) into
//! the report store beside the policy cache (the core's `Reporter`, `Session`,
//! `SessionFailure`).

use std::path::PathBuf;

use pyo3::prelude::*;
use pyo3::types::PyString;

use mtasts_core::{AppliedPolicy, Config, Domain, PolicyType, Session, TlsRptSettings, UtcDay};

use crate::enums;
use crate::errors::{IntoPyResult, type_error, value_error};
use crate::failure::MxFailure;
use crate::resolution::Resolution;
use crate::util;

/// The day argument: `None` (today, UTC), a `datetime.date` or a `"YYYY-MM-DD"` string.
fn day_of(day: Option<&Bound<'_, PyAny>>) -> PyResult<UtcDay> {
    let Some(day) = day else {
        return Ok(UtcDay::today());
    };
    let text: String = if day.is_instance_of::<PyString>() {
        day.extract()?
    } else if day.hasattr("isoformat")? && day.hasattr("day")? && !day.hasattr("hour")? {
        day.call_method0("isoformat")?.extract()?
    } else {
        return Err(type_error(
            "day must be None, a datetime.date or a \"YYYY-MM-DD\" str",
        ));
    };
    text.parse::<UtcDay>()
        .map_err(mtasts_core::Error::from)
        .map_err(|e| crate::errors::to_py(&e))
}

/// The policy type argument: a `PolicyType` or its string.
fn policy_type_of(name: &str) -> PyResult<PolicyType> {
    PolicyType::from_name(name).ok_or_else(|| {
        value_error(format!(
            "unknown policy type {name:?} (sts, tlsa, no-policy-found)"
        ))
    })
}

/// One failure detail of a TLS session (RFC 8460 §4.4 `failure-details`): the `result_type`
/// (a `ResultType` or its string) and what is known of the MX side, each `""` (the default)
/// when not known: `sending_mta_ip` (the address you connected from), `receiving_mx_hostname`
/// (normalised to an A-label), `receiving_ip`, `receiving_mx_helo`, `failure_reason_code`
/// (e.g. a stable code such as `"starttls-not-offered"`, or your TLS library's message) and
/// `additional_information` (a URI). Immutable, hashable.
///
/// Raises `InvalidSession` (a `ValueError`) for an unknown result type, an address that is
/// not an IP address, a host name that is not one, or a field over its limit (HELO 512
/// bytes, reason code 256, additional information 2048).
///
/// `SessionFailure.from_mx_failure(failure, ...)` takes the result type and reason code from
/// an `MxFailure` (what `Verdict.decide`, `CertCheck` and `probe` give).
#[pyclass(frozen, eq, hash, module = "mtasts")]
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct SessionFailure {
    inner: mtasts_core::SessionFailure,
}

impl SessionFailure {
    fn with_fields(
        failure: mtasts_core::SessionFailure,
        sending_mta_ip: &str,
        receiving_mx_hostname: &str,
        receiving_ip: &str,
        receiving_mx_helo: &str,
    ) -> PyResult<SessionFailure> {
        let inner = failure
            .sending_mta_ip(sending_mta_ip)
            .and_then(|f| f.receiving_mx_hostname(receiving_mx_hostname))
            .and_then(|f| f.receiving_ip(receiving_ip))
            .and_then(|f| f.receiving_mx_helo(receiving_mx_helo))
            .map_err(mtasts_core::Error::from)
            .py()?;
        Ok(SessionFailure { inner })
    }
}

#[pymethods]
impl SessionFailure {
    #[new]
    #[pyo3(signature = (
        result_type,
        *,
        sending_mta_ip = "",
        receiving_mx_hostname = "",
        receiving_ip = "",
        receiving_mx_helo = "",
        failure_reason_code = "",
        additional_information = "",
    ))]
    fn new(
        result_type: &str,
        sending_mta_ip: &str,
        receiving_mx_hostname: &str,
        receiving_ip: &str,
        receiving_mx_helo: &str,
        failure_reason_code: &str,
        additional_information: &str,
    ) -> PyResult<SessionFailure> {
        let failure = mtasts_core::SessionFailure::from_name(result_type)
            .and_then(|f| f.failure_reason_code(failure_reason_code))
            .and_then(|f| f.additional_information(additional_information))
            .map_err(mtasts_core::Error::from)
            .py()?;
        SessionFailure::with_fields(
            failure,
            sending_mta_ip,
            receiving_mx_hostname,
            receiving_ip,
            receiving_mx_helo,
        )
    }

    /// The failure `failure` (an `MxFailure`) describes: its result type, and its stable
    /// reason code as `failure_reason_code`; with the MX-side fields given.
    #[staticmethod]
    #[pyo3(signature = (
        failure,
        *,
        sending_mta_ip = "",
        receiving_mx_hostname = "",
        receiving_ip = "",
        receiving_mx_helo = "",
    ))]
    fn from_mx_failure(
        failure: &MxFailure,
        sending_mta_ip: &str,
        receiving_mx_hostname: &str,
        receiving_ip: &str,
        receiving_mx_helo: &str,
    ) -> PyResult<SessionFailure> {
        SessionFailure::with_fields(
            mtasts_core::SessionFailure::from_mx_failure(failure.core()),
            sending_mta_ip,
            receiving_mx_hostname,
            receiving_ip,
            receiving_mx_helo,
        )
    }

    /// The RFC 8460 result type (a `ResultType`).
    #[getter]
    fn result_type<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        enums::result_type(py, self.inner.result_type())
    }

    /// `sending-mta-ip`, or `None`.
    #[getter]
    fn sending_mta_ip(&self) -> Option<String> {
        self.inner.to_detail(0).sending_mta_ip
    }

    /// `receiving-mx-hostname` (an A-label), or `None`.
    #[getter]
    fn receiving_mx_hostname(&self) -> Option<String> {
        self.inner.to_detail(0).receiving_mx_hostname
    }

    /// `receiving-ip`, or `None`.
    #[getter]
    fn receiving_ip(&self) -> Option<String> {
        self.inner.to_detail(0).receiving_ip
    }

    /// `receiving-mx-helo`, or `None`.
    #[getter]
    fn receiving_mx_helo(&self) -> Option<String> {
        self.inner.to_detail(0).receiving_mx_helo
    }

    /// `failure-reason-code`, or `None`.
    #[getter]
    fn failure_reason_code(&self) -> Option<String> {
        self.inner.to_detail(0).failure_reason_code
    }

    /// `additional-information`, or `None`.
    #[getter]
    fn additional_information(&self) -> Option<String> {
        self.inner.to_detail(0).additional_information
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let d = self.inner.to_detail(0);
        Ok(format!(
            "SessionFailure({}, sending_mta_ip={}, receiving_mx_hostname={}, receiving_ip={}, \
             receiving_mx_helo={}, failure_reason_code={}, additional_information={})",
            util::repr(py, d.result_type)?,
            util::repr(py, d.sending_mta_ip)?,
            util::repr(py, d.receiving_mx_hostname)?,
            util::repr(py, d.receiving_ip)?,
            util::repr(py, d.receiving_mx_helo)?,
            util::repr(py, d.failure_reason_code)?,
            util::repr(py, d.additional_information)?,
        ))
    }
}

/// Records TLS-RPT sessions (RFC 8460) where the policy cache lives: `cache` is a SQLite
/// file (its own tables beside the cache's) or `"redis://host:port/db"` (its own keys); with
/// both (`"FILE,redis://..."`) the counts go to Redis, the fleet's. Every process and host
/// sharing the cache aggregates one set of daily counts, read by `mtasts tlsrpt` and the
/// sender. `retention_days` (2 to 366, default 7) is how long a delivered day's counts are
/// kept. `Reporter.from_config(path)` reads `cache` and `tlsrpt.*` from a settings file.
///
/// Raises `ConfigError` for `cache="memory"` (counts in one process's memory would be lost
/// with it) or a bad value, `ReportStoreError` when the store cannot be opened.
///
/// One session is one attempt to negotiate TLS with one MX host (R-RPT-3). Every method
/// releases the GIL while it reads or writes the store; share one `Reporter` between
/// threads. A record that cannot be written raises `ReportStoreError` and is not counted:
/// log it, never hold up a delivery for it.
#[pyclass(frozen, module = "mtasts")]
pub struct Reporter {
    inner: mtasts_core::Reporter,
    cache: String,
}

impl Reporter {
    fn open(py: Python<'_>, config: Config, settings: TlsRptSettings) -> PyResult<Reporter> {
        let cache = config.cache.to_string();
        let inner = py
            .detach(move || mtasts_core::Reporter::open(&config, &settings))
            .py()?;
        Ok(Reporter { inner, cache })
    }

    fn record_session(&self, py: Python<'_>, session: Session) -> PyResult<()> {
        let inner = &self.inner;
        py.detach(move || inner.record(&session)).py()
    }
}

fn cores(failures: Vec<PyRef<'_, SessionFailure>>) -> Vec<mtasts_core::SessionFailure> {
    failures.iter().map(|f| f.inner.clone()).collect()
}

#[pymethods]
impl Reporter {
    #[new]
    #[pyo3(signature = (*, cache, retention_days = 7))]
    fn new(py: Python<'_>, cache: PathBuf, retention_days: u32) -> PyResult<Reporter> {
        let mut config = Config::default();
        match cache.to_str() {
            Some(location) => config.set("cache", location).py()?,
            None => config.cache = mtasts_core::CacheLocation::sqlite(cache),
        }
        let mut settings = TlsRptSettings::default();
        settings
            .set("tlsrpt.retention_days", &retention_days.to_string())
            .py()?;
        Reporter::open(py, config, settings)
    }

    /// A reporter configured from the settings file at `path` (its `cache` and `tlsrpt.*`
    /// keys; the other keys are checked as `Resolver.from_config` checks them).
    #[staticmethod]
    fn from_config(py: Python<'_>, path: PathBuf) -> PyResult<Reporter> {
        let (config, settings) = py
            .detach(|| {
                let config = Config::from_file(&path)?;
                let mut settings = TlsRptSettings::default();
                settings.load_file(&path)?;
                Ok::<_, mtasts_core::Error>((config, settings))
            })
            .py()?;
        Reporter::open(py, config, settings)
    }

    /// Records one session with the domain of `resolution` (a `Resolution`) under the policy
    /// it applied: `sts` (the policy's lines and MX patterns) for `testing` and `enforce`
    /// (testing failures count exactly like enforce ones, R-RPT-3), `no-policy-found` without
    /// a policy or with `mode: none` (R-RPT-11). `failures` are the `SessionFailure`s seen at
    /// the MX host (none: TLS succeeded); a failure to obtain the policy that the resolution
    /// carries is added as a failure detail too (R-RPT-5). `day`: a `datetime.date`, a
    /// `"YYYY-MM-DD"` string or `None` (today, UTC).
    ///
    /// Raises `InvalidSession` for a bad day, more than 16 details, or a resolution whose
    /// policy cannot be told (`Source.CACHE_UNREADABLE`: the message is deferred and there
    /// was no session), `ReportStoreError` when the store cannot be written.
    #[pyo3(signature = (resolution, failures = Vec::new(), *, day = None))]
    fn record(
        &self,
        py: Python<'_>,
        resolution: &Resolution,
        failures: Vec<PyRef<'_, SessionFailure>>,
        day: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let session = Session::from_resolution(day_of(day)?, resolution.core(), cores(failures))
            .map_err(mtasts_core::Error::from)
            .py()?;
        self.record_session(py, session)
    }

    /// Records one session under a policy you state: `policy_type` (a `PolicyType` or its
    /// string) `"tlsa"` when DANE applied (`policy_strings`: the TLSA records as text,
    /// R-APPLY-4), `"no-policy-found"`, or `"sts"` (`policy_strings`: the policy's lines,
    /// `mx_hosts`: its patterns), for `domain`, with `failures` (none: a success).
    ///
    /// Raises `InvalidSession` (the domain is not a host name, a pattern is not an MX pattern,
    /// strings for `no-policy-found`, a bad day, more than 16 details), `ValueError` for an
    /// unknown policy type, `ReportStoreError` when the store cannot be written.
    #[pyo3(signature = (
        policy_type,
        domain,
        failures = Vec::new(),
        *,
        policy_strings = Vec::new(),
        mx_hosts = Vec::new(),
        day = None,
    ))]
    #[allow(clippy::too_many_arguments)]
    fn record_policy(
        &self,
        py: Python<'_>,
        policy_type: &str,
        domain: &str,
        failures: Vec<PyRef<'_, SessionFailure>>,
        policy_strings: Vec<String>,
        mx_hosts: Vec<String>,
        day: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let kind = policy_type_of(policy_type)?;
        let day = day_of(day)?;
        let policy = AppliedPolicy::new(kind, domain, policy_strings, mx_hosts)
            .map_err(mtasts_core::Error::from)
            .py()?;
        let failures = cores(failures);
        let session = if failures.is_empty() {
            Session::success(day, policy)
        } else {
            Session::failure(day, policy, failures)
                .map_err(mtasts_core::Error::from)
                .py()?
        };
        self.record_session(py, session)
    }

    /// The counts recorded for `domain` on `day` (default today) over every applied policy of
    /// `policy_type` (default `"sts"`): `(successful, failed, failure_details)`, the last the
    /// failure details' counts summed; what that day's report will say (R-RPT-3, R-RPT-4).
    /// `(0, 0, 0)` when nothing was recorded. Raises `InvalidDomain`, `InvalidSession` (a bad
    /// day), `ReportStoreError` (the store cannot be read).
    #[pyo3(signature = (domain, *, day = None, policy_type = "sts"))]
    fn counts(
        &self,
        py: Python<'_>,
        domain: &str,
        day: Option<&Bound<'_, PyAny>>,
        policy_type: &str,
    ) -> PyResult<(u64, u64, u64)> {
        let kind = policy_type_of(policy_type)?;
        let day = day_of(day)?;
        let domain = Domain::new(domain).py()?;
        let store = self.inner.store();
        let report = py.detach(|| store.day_report(day, &domain)).py()?;
        Ok(report.map_or((0, 0, 0), |r| r.totals(kind)))
    }

    /// Where the counts are kept: the cache location, normalised.
    #[getter]
    fn cache(&self) -> &str {
        &self.cache
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!(
            "Reporter(cache={})",
            util::repr(py, self.cache.as_str())?
        ))
    }
}
