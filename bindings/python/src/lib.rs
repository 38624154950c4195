//! `mtasts._mtasts`: the private extension module of the `mtasts` Python package.
//!
//! A thin layer over `mtasts-core`: every Python method is one core call; blocking work (DNS,
//! HTTPS, the cache, probes) runs with the GIL released, on owned data. Python users import
//! `mtasts` (whose `__init__.py` re-exports these names), never this module.
//!
//! Layout: `errors.rs` maps the core error to the exceptions of `mtasts.exceptions` (the one
//! place); `enums.rs` hands out the members of the enums of `mtasts.enums`; one file per
//! group of classes.

use pyo3::prelude::*;

mod batch;
mod certs;
mod diagnosis;
mod enums;
mod errors;
mod failure;
mod policy;
mod probe;
mod refresh;
mod report;
mod resolution;
mod resolver;
mod util;
mod verdict;

/// The compiled part of mtasts. Import `mtasts` instead.
#[pymodule]
fn _mtasts(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    // The core logs through the `log` facade; send it to Python's `logging`, under loggers
    // named `mtasts.<rust module>` (e.g. `mtasts.mtasts_core.resolver`). Logger objects are
    // cached, levels are not, so `logging` configured after the import is honoured. Another
    // extension may have installed a `log` backend first: then ours is not installed.
    // mtasts' own records go to Python from debug up; the libraries under it (hickory,
    // rustls, ureq) only from warning up, judged here without the GIL: their debug records,
    // a dozen per lookup, each took the GIL from the lookup threads of `resolve_many`.
    let logger = pyo3_log::Logger::new(py, pyo3_log::Caching::Loggers)?
        .filter(log::LevelFilter::Warn)
        .filter_target("mtasts_core".to_owned(), log::LevelFilter::Debug)
        .set_prefix("mtasts");
    let _ = logger.install();

    m.add("__version__", env!("CARGO_PKG_VERSION"))?;

    m.add_class::<resolver::Resolver>()?;
    m.add_class::<batch::ResolveMany>()?;
    m.add_class::<resolution::Resolution>()?;
    m.add_class::<resolution::Failure>()?;
    m.add_class::<policy::Policy>()?;
    m.add_class::<policy::Record>()?;
    m.add_class::<verdict::MxRecord>()?;
    m.add_class::<failure::MxFailure>()?;
    m.add_class::<verdict::Verdict>()?;
    m.add_class::<verdict::Delivery>()?;
    m.add_class::<verdict::MxPlan>()?;
    m.add_class::<verdict::UsableMx>()?;
    m.add_class::<verdict::SkippedMx>()?;
    m.add_class::<certs::CertVerifier>()?;
    m.add_class::<certs::CertCheck>()?;
    m.add_class::<probe::ProbeReport>()?;
    m.add_class::<probe::ProbeTimings>()?;
    m.add_class::<refresh::RefreshReport>()?;
    m.add_class::<diagnosis::Diagnosis>()?;
    m.add_class::<diagnosis::Problem>()?;
    m.add_class::<report::Reporter>()?;
    m.add_class::<report::SessionFailure>()?;

    m.add_function(wrap_pyfunction!(policy::parse_policy, m)?)?;
    m.add_function(wrap_pyfunction!(policy::parse_record, m)?)?;
    m.add_function(wrap_pyfunction!(resolver::user_cache_location, m)?)?;
    Ok(())
}
