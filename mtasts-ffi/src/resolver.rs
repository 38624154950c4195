//! `mtasts_resolver`: the thread-safe policy resolver, and cache refresh.

use std::ffi::c_char;
use std::ops::ControlFlow;
use std::time::Duration;

use mtasts_core::{Error, RefreshOptions, RefreshReport, Resolver};

use crate::boundary::{
    CText, Handle, Tagged, arg_array, arg_handle, arg_out, arg_str, ffi_boundary, free_handle,
    handle,
};
use crate::config::{mtasts_config, snapshot};
use crate::error::{Failure, mtasts_result, out_of_range};
use crate::resolution::{ResolutionData, mtasts_resolution};

/// Resolves MTA-STS policies (RFC 8461 §3 and §5): DNS, HTTPS fetch, validation, cache.
///
/// Made by `mtasts_resolver_new()`, freed by `mtasts_resolver_free()`.
///
/// Thread-safety: one resolver is meant to be shared by every thread of a process; all
/// functions taking a `const mtasts_resolver *` may be called concurrently. Concurrent
/// lookups of one domain make one fetch. Fork: a resolver made before `fork()` keeps working
/// in the child (it holds no threads and no connections between calls), as Exim's delivery
/// processes need; with a SQLite or Redis cache, parent and children share what they learn.
pub struct mtasts_resolver(Tagged<Resolver>);
handle!(mtasts_resolver, Resolver, 0x4d53_0002);

/// Creates a resolver from a configuration (which is copied: it may be freed afterwards).
///
/// Opens the cache and reads the DNS configuration and the trust roots now, so a bad
/// configuration is reported here rather than at the first lookup.
///
/// Ownership: `config` is borrowed. On `MTASTS_OK`, `*resolver_out` is a new handle the caller
/// owns and frees with `mtasts_resolver_free()`. NULL: `config` and `resolver_out` must not be
/// NULL. Returns `MTASTS_OK`, `MTASTS_NULL_PARAMETER`, `MTASTS_INVALID_HANDLE`, `MTASTS_CONFIG`
/// (unreadable resolv.conf or trust-root file), `MTASTS_CACHE` (the cache cannot be opened) or
/// `MTASTS_PANIC`; `mtasts_last_error()` says why. Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mtasts_resolver_new(
    config: *const mtasts_config,
    resolver_out: *mut *mut mtasts_resolver,
) -> mtasts_result {
    ffi_boundary!({
        // SAFETY: NULL or live pointers (caller's promise), checked here.
        let config = unsafe { arg_handle(config, "config") }?;
        let out = arg_out(resolver_out, "resolver_out")?;
        let resolver = Resolver::new(snapshot(config))?;
        // SAFETY: checked by `arg_out`; writable (caller's promise).
        unsafe { out.write_handle(resolver) };
        Ok(())
    })
}

/// Frees a resolver. NULL is a no-op. No other thread may be using it.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mtasts_resolver_free(resolver: *mut mtasts_resolver) {
    // SAFETY: NULL or a live handle (caller's promise).
    unsafe { free_handle(resolver) }
}

/// Resolves the MTA-STS policy of `domain` (ASCII or UTF-8 U-labels, any case, optional
/// trailing dot): from the cache when it is current, else through DNS and HTTPS. Blocking;
/// ends within the configured DNS and fetch deadlines.
///
/// Every problem with the domain's policy (DNS failure, fetch failure, invalid policy) is
/// part of the resolution, not an error, because the caller must still deliver or defer
/// according to it: see `mtasts_resolution_source()` and `mtasts_resolution_failure()`.
///
/// Ownership: `resolver` and `domain` are borrowed. On `MTASTS_OK`, `*resolution_out` is a new
/// handle the caller owns and frees with `mtasts_resolution_free()`; it stays valid after the
/// resolver is freed. NULL: no parameter may be NULL. Returns `MTASTS_OK`,
/// `MTASTS_NULL_PARAMETER`, `MTASTS_INVALID_HANDLE`, `MTASTS_INVALID_PARAMETER` (not UTF-8),
/// `MTASTS_INVALID_DOMAIN` (not a host name) or `MTASTS_PANIC`. Thread-safe. RFC 8461 §3, §5.1.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mtasts_resolver_resolve(
    resolver: *const mtasts_resolver,
    domain: *const c_char,
    resolution_out: *mut *mut mtasts_resolution,
) -> mtasts_result {
    ffi_boundary!({
        // SAFETY: NULL or live pointers (caller's promise), checked here.
        let resolver = unsafe { arg_handle(resolver, "resolver") }?;
        let domain = unsafe { arg_str(domain, "domain") }?;
        let out = arg_out(resolution_out, "resolution_out")?;
        let resolution = resolver.resolve(domain)?;
        // SAFETY: checked by `arg_out`; writable (caller's promise).
        unsafe { out.write_handle(ResolutionData::new(resolution)) };
        Ok(())
    })
}

/// Resolves many domains at once, at most `concurrency` at a time (0 counts as 1; at most
/// 256), each exactly as `mtasts_resolver_resolve()` would: the same cache, single-flight (a
/// domain listed twice is fetched once) and deadlines. Blocking; returns when every domain
/// has its answer. A hung domain holds up only itself, for its own deadline.
///
/// `domains` is an array of `count` strings. For each index `i`, `resolutions_out[i]` is set
/// to a new resolution the caller owns and frees with `mtasts_resolution_free()`, or to NULL
/// when that domain could not be looked up; `results_out[i]` (when `results_out` is not NULL)
/// is then that domain's code: `MTASTS_OK`, `MTASTS_NULL_PARAMETER` (a NULL entry),
/// `MTASTS_INVALID_PARAMETER` (not UTF-8) or `MTASTS_INVALID_DOMAIN`. One bad entry never
/// stops the others.
///
/// Ownership: `resolver`, `domains` and its strings are borrowed. NULL: `resolver` must not
/// be NULL; `domains` and `resolutions_out` may be NULL only when `count` is 0. Returns
/// `MTASTS_OK` (every slot written), `MTASTS_NULL_PARAMETER`, `MTASTS_INVALID_HANDLE` or
/// `MTASTS_PANIC` (nothing written then). Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mtasts_resolver_resolve_many(
    resolver: *const mtasts_resolver,
    domains: *const *const c_char,
    count: usize,
    concurrency: u32,
    resolutions_out: *mut *mut mtasts_resolution,
    results_out: *mut mtasts_result,
) -> mtasts_result {
    ffi_boundary!({
        // SAFETY: NULL or live pointers (caller's promise), checked here.
        let resolver = unsafe { arg_handle(resolver, "resolver") }?;
        // SAFETY: NULL or `count` readable pointers (caller's promise).
        let entries = unsafe { arg_array(domains, count, "domains") }?;
        if count > 0 && resolutions_out.is_null() {
            return Err(Failure::new(
                mtasts_result::MTASTS_NULL_PARAMETER,
                "parameter `resolutions_out` is NULL",
            ));
        }
        // Each entry checked on its own: a bad one is that domain's result, not the batch's.
        let mut codes = vec![mtasts_result::MTASTS_OK; count];
        let mut valid = Vec::with_capacity(count);
        for (i, &entry) in entries.iter().enumerate() {
            // SAFETY: NULL or a NUL-terminated string (caller's promise).
            match unsafe { arg_str(entry, "domains[i]") } {
                Ok(domain) => valid.push((i, domain.to_string())),
                Err(failure) => codes[i] = failure.code,
            }
        }
        let mut handles: Vec<*mut mtasts_resolution> = vec![std::ptr::null_mut(); count];
        let (indices, names): (Vec<usize>, Vec<String>) = valid.into_iter().unzip();
        resolver.resolve_many(names, concurrency as usize, |item| {
            let slot = indices[item.index];
            match item.result {
                Ok(resolution) => {
                    handles[slot] = Box::into_raw(Box::new(mtasts_resolution::owned(
                        ResolutionData::new(resolution),
                    )));
                }
                Err(e) => codes[slot] = mtasts_result::for_error(&e),
            }
            ControlFlow::Continue(())
        });
        // SAFETY: `count` writable slots each (caller's promise); checked non-NULL above.
        unsafe {
            std::ptr::copy_nonoverlapping(handles.as_ptr(), resolutions_out, count);
            if !results_out.is_null() {
                std::ptr::copy_nonoverlapping(codes.as_ptr(), results_out, count);
            }
        }
        Ok(())
    })
}

/// What one cache refresh did (see `mtasts_resolver_refresh()`).
///
/// Thread-safety: immutable; may be read from any thread.
pub struct mtasts_refresh_report(Tagged<RefreshData>);
handle!(mtasts_refresh_report, RefreshData, 0x4d53_0003);

/// A refresh report with its strings ready for C.
pub struct RefreshData {
    report: RefreshReport,
    refreshed: Vec<CText>,
    unpublished: Vec<CText>,
    failed: Vec<CText>,
    failures: Vec<(mtasts_result, CText)>,
}

/// The lists of a refresh report.
#[allow(non_camel_case_types)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum mtasts_refresh_list {
    /// Domains whose policy was fetched again (its expiry moved forward).
    MTASTS_REFRESH_REFRESHED = 0,
    /// Domains whose refresh failed; their cached policy stays in force while valid.
    MTASTS_REFRESH_FAILED = 1,
    /// Domains that no longer publish a policy; the cached one stays until it expires.
    MTASTS_REFRESH_UNPUBLISHED = 2,
}

/// Refreshes the cached policies that are due (fetched more than half their `max_age` ago,
/// or expiring within a day), or every cached policy when `all` is true, and drops entries
/// unused for 180 days. Blocking; runs at most `concurrency` fetches at once (0 counts as 1),
/// after a random wait of up to `jitter_ms` milliseconds (0: none). Failures never remove a
/// valid policy.
///
/// Meant for a cron job or a daemon, not for the MTA's delivery path: mtasts runs no hidden
/// background threads.
///
/// Ownership: `resolver` is borrowed. On `MTASTS_OK`, `*report_out` is a new handle the caller
/// owns and frees with `mtasts_refresh_report_free()`. NULL: `resolver` and `report_out` must
/// not be NULL. Returns `MTASTS_OK`, `MTASTS_NULL_PARAMETER`, `MTASTS_INVALID_HANDLE`,
/// `MTASTS_CACHE` (the cache cannot be listed) or `MTASTS_PANIC`. Thread-safe. RFC 8461 §10.2
/// (R-CACHE-6, R-CACHE-8).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mtasts_resolver_refresh(
    resolver: *const mtasts_resolver,
    all: bool,
    concurrency: u32,
    jitter_ms: u64,
    report_out: *mut *mut mtasts_refresh_report,
) -> mtasts_result {
    ffi_boundary!({
        // SAFETY: NULL or a live pointer (caller's promise), checked here.
        let resolver = unsafe { arg_handle(resolver, "resolver") }?;
        let out = arg_out(report_out, "report_out")?;
        let mut options = RefreshOptions::default();
        options.all = all;
        options.concurrency = usize::try_from(concurrency).unwrap_or(usize::MAX);
        options.jitter = Duration::from_millis(jitter_ms);
        let report = resolver.refresh_due(&options)?;
        let text = |domains: &[mtasts_core::Domain]| {
            domains.iter().map(|d| CText::new(d.as_str())).collect()
        };
        let data = RefreshData {
            refreshed: text(&report.refreshed),
            unpublished: text(&report.unpublished),
            failed: report
                .failed
                .iter()
                .map(|(domain, _)| CText::new(domain.as_str()))
                .collect(),
            failures: report
                .failed
                .iter()
                .map(|(_, error): &(_, Error)| {
                    (
                        mtasts_result::for_error(error),
                        CText::new(&error.to_string()),
                    )
                })
                .collect(),
            report,
        };
        // SAFETY: checked by `arg_out`; writable (caller's promise).
        unsafe { out.write_handle(data) };
        Ok(())
    })
}

/// Frees a refresh report. NULL is a no-op.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mtasts_refresh_report_free(report: *mut mtasts_refresh_report) {
    // SAFETY: NULL or a live handle (caller's promise).
    unsafe { free_handle(report) }
}

/// The numbers of a refresh: cached policies examined, and entries purged for being unused
/// for 180 days.
///
/// NULL: no parameter may be NULL. Returns `MTASTS_OK`, `MTASTS_NULL_PARAMETER`,
/// `MTASTS_INVALID_HANDLE` or `MTASTS_PANIC`. Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mtasts_refresh_report_counts(
    report: *const mtasts_refresh_report,
    examined_out: *mut usize,
    purged_out: *mut usize,
) -> mtasts_result {
    ffi_boundary!({
        // SAFETY: NULL or a live pointer (caller's promise), checked here.
        let data = unsafe { arg_handle(report, "report") }?;
        let examined = arg_out(examined_out, "examined_out")?;
        let purged = arg_out(purged_out, "purged_out")?;
        // SAFETY: checked by `arg_out`; writable (caller's promise).
        unsafe {
            examined.write(data.report.examined);
            purged.write(data.report.purged);
        }
        Ok(())
    })
}

fn list(data: &RefreshData, which: u32) -> Result<&[CText], Failure> {
    use mtasts_refresh_list as L;
    match which {
        x if x == L::MTASTS_REFRESH_REFRESHED as u32 => Ok(&data.refreshed),
        x if x == L::MTASTS_REFRESH_UNPUBLISHED as u32 => Ok(&data.unpublished),
        x if x == L::MTASTS_REFRESH_FAILED as u32 => Ok(&data.failed),
        other => Err(Failure::new(
            mtasts_result::MTASTS_INVALID_PARAMETER,
            format!("{other} is not an mtasts_refresh_list value"),
        )),
    }
}

/// How many domains a list of the report holds: `list` is one of `MTASTS_REFRESH_REFRESHED`,
/// `MTASTS_REFRESH_FAILED`, `MTASTS_REFRESH_UNPUBLISHED`.
///
/// NULL: `report` and `count_out` must not be NULL. Returns `MTASTS_OK`,
/// `MTASTS_NULL_PARAMETER`, `MTASTS_INVALID_HANDLE`, `MTASTS_INVALID_PARAMETER` (unknown list)
/// or `MTASTS_PANIC`. Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mtasts_refresh_report_count(
    report: *const mtasts_refresh_report,
    list_kind: u32,
    count_out: *mut usize,
) -> mtasts_result {
    ffi_boundary!({
        // SAFETY: NULL or a live pointer (caller's promise), checked here.
        let data = unsafe { arg_handle(report, "report") }?;
        let out = arg_out(count_out, "count_out")?;
        let count = list(data, list_kind)?.len();
        // SAFETY: checked by `arg_out`; writable (caller's promise).
        unsafe { out.write(count) };
        Ok(())
    })
}

/// The domain at `index` of a list of the report (see `mtasts_refresh_report_count()`),
/// normalised (lowercase A-labels).
///
/// Ownership: `*domain_out` is a NUL-terminated view valid as long as `report`. NULL: no
/// pointer parameter may be NULL. Returns `MTASTS_OK`, `MTASTS_NULL_PARAMETER`,
/// `MTASTS_INVALID_HANDLE`, `MTASTS_INVALID_PARAMETER` (unknown list),
/// `MTASTS_INDEX_OUT_OF_RANGE` or `MTASTS_PANIC`. Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mtasts_refresh_report_domain(
    report: *const mtasts_refresh_report,
    list_kind: u32,
    index: usize,
    domain_out: *mut *const c_char,
) -> mtasts_result {
    ffi_boundary!({
        // SAFETY: NULL or a live pointer (caller's promise), checked here.
        let data = unsafe { arg_handle(report, "report") }?;
        let out = arg_out(domain_out, "domain_out")?;
        let domain = list(data, list_kind)?
            .get(index)
            .ok_or_else(|| out_of_range(index))?;
        // SAFETY: checked by `arg_out`; writable (caller's promise).
        unsafe { out.write(domain.ptr()) };
        Ok(())
    })
}

/// Why the refresh of the domain at `index` of the `MTASTS_REFRESH_FAILED` list failed: the
/// result code of the failure (e.g. `MTASTS_POLICY_FETCH`) and its message.
///
/// Ownership: `*reason_out` is a NUL-terminated view valid as long as `report`. NULL: no
/// pointer parameter may be NULL. Returns `MTASTS_OK`, `MTASTS_NULL_PARAMETER`,
/// `MTASTS_INVALID_HANDLE`, `MTASTS_INDEX_OUT_OF_RANGE` or `MTASTS_PANIC`. Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mtasts_refresh_report_failure(
    report: *const mtasts_refresh_report,
    index: usize,
    code_out: *mut mtasts_result,
    reason_out: *mut *const c_char,
) -> mtasts_result {
    ffi_boundary!({
        // SAFETY: NULL or a live pointer (caller's promise), checked here.
        let data = unsafe { arg_handle(report, "report") }?;
        let code = arg_out(code_out, "code_out")?;
        let reason = arg_out(reason_out, "reason_out")?;
        let (failure_code, text) = data
            .failures
            .get(index)
            .ok_or_else(|| out_of_range(index))?;
        // SAFETY: checked by `arg_out`; writable (caller's promise).
        unsafe {
            code.write(*failure_code);
            reason.write(text.ptr());
        }
        Ok(())
    })
}
