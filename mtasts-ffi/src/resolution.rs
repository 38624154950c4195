//! `mtasts_resolution`: the outcome of a lookup (the core's `Resolution`) and its policy.

use std::ffi::{CString, c_char};
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use mtasts_core::{Mode, Resolution, Source};

use crate::boundary::{
    CText, Tagged, arg_handle, arg_out, arg_str, ffi_boundary, free_handle, handle, name_table,
    opt_ptr, run_quiet,
};
use crate::error::out_of_range;
use crate::error::{Failure, mtasts_result};

/// A policy mode (RFC 8461 §5).
#[allow(non_camel_case_types)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum mtasts_mode {
    /// `none`: no policy, or a `mode: none` policy; no MTA-STS requirement (R-APPLY-3).
    MTASTS_MODE_NONE = 0,
    /// `testing`: deliver as usual, report failures through TLS-RPT (R-APPLY-2).
    MTASTS_MODE_TESTING = 1,
    /// `enforce`: deliver only to policy MX hosts over verified TLS (R-APPLY-1).
    MTASTS_MODE_ENFORCE = 2,
}

/// Where the answer of a resolution came from.
#[allow(non_camel_case_types)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum mtasts_source {
    /// The policy was fetched during this lookup.
    MTASTS_SOURCE_FETCHED = 0,
    /// The cached policy is current (RFC 8461 §5.1).
    MTASTS_SOURCE_CACHE = 1,
    /// Refreshing failed and the unexpired cached policy is used (R-FETCH-11); the
    /// resolution's failure says what failed.
    MTASTS_SOURCE_CACHE_AFTER_FAILURE = 2,
    /// The domain publishes no policy (no STS record, or an invalid one).
    MTASTS_SOURCE_NONE = 3,
    /// Whether the domain has a policy could not be determined and nothing usable is cached:
    /// deliver as if it had none, and report the failure (R-FETCH-12).
    MTASTS_SOURCE_UNAVAILABLE = 4,
    /// The shared policy cache could not be read and DNS and HTTPS gave no policy: whether a
    /// policy applies cannot be told. **Defer the message**; never deliver as if the domain
    /// had no policy. The resolution's failure is `MTASTS_CACHE`; `mtasts_resolution_mode()`,
    /// `mtasts_verdict_for_mx()` and `mtasts_mx_plan_from_hosts()` return `MTASTS_CACHE` for
    /// it (R-CACHE-7, fail closed).
    MTASTS_SOURCE_CACHE_UNREADABLE = 5,
}

const MODES: [(mtasts_mode, Mode); 3] = [
    (mtasts_mode::MTASTS_MODE_NONE, Mode::None),
    (mtasts_mode::MTASTS_MODE_TESTING, Mode::Testing),
    (mtasts_mode::MTASTS_MODE_ENFORCE, Mode::Enforce),
];

const SOURCES: [(mtasts_source, Source); 6] = [
    (mtasts_source::MTASTS_SOURCE_FETCHED, Source::Fetched),
    (mtasts_source::MTASTS_SOURCE_CACHE, Source::Cache),
    (
        mtasts_source::MTASTS_SOURCE_CACHE_AFTER_FAILURE,
        Source::CacheAfterFailure,
    ),
    (mtasts_source::MTASTS_SOURCE_NONE, Source::NoPolicy),
    (
        mtasts_source::MTASTS_SOURCE_UNAVAILABLE,
        Source::Unavailable,
    ),
    (
        mtasts_source::MTASTS_SOURCE_CACHE_UNREADABLE,
        Source::CacheUnreadable,
    ),
];

fn mode_of(mode: Mode) -> mtasts_mode {
    MODES
        .iter()
        .find(|(_, m)| *m == mode)
        .map_or(mtasts_mode::MTASTS_MODE_NONE, |(c, _)| *c)
}

fn source_of(source: Source) -> mtasts_source {
    // A source a newer core adds reads as "cannot tell": the safe reading.
    SOURCES
        .iter()
        .find(|(_, s)| *s == source)
        .map_or(mtasts_source::MTASTS_SOURCE_CACHE_UNREADABLE, |(c, _)| *c)
}

/// The outcome of `mtasts_resolver_resolve()`: the policy in effect (if any), where it came
/// from, and what failed on the way.
///
/// Immutable: every getter may be called from any thread. The strings it returns are views
/// valid until `mtasts_resolution_free()`. It does not depend on its resolver, which may be
/// freed first.
pub struct mtasts_resolution(Tagged<ResolutionData>);
handle!(mtasts_resolution, ResolutionData, 0x4d53_0004);

/// A resolution with its strings ready for C.
pub struct ResolutionData {
    pub(crate) resolution: Resolution,
    domain: CText,
    id: Option<CText>,
    text: Option<CText>,
    mx: Vec<CText>,
    failure: Option<(mtasts_result, Option<CText>, CText, bool)>,
    notice: Option<CText>,
    /// The JSON view, made on first request.
    json: OnceLock<CText>,
}

impl ResolutionData {
    pub(crate) fn new(resolution: Resolution) -> ResolutionData {
        let cached = resolution.cached_policy();
        ResolutionData {
            domain: CText::new(resolution.domain().as_str()),
            id: cached.map(|c| CText::new(&c.id)),
            text: cached.map(|c| CText::new(c.policy.text())),
            mx: cached.map_or_else(Vec::new, |c| {
                c.policy
                    .mx()
                    .iter()
                    .map(|p| CText::new(p.as_str()))
                    .collect()
            }),
            failure: resolution.failure().map(|e| {
                (
                    mtasts_result::for_error(e),
                    e.result_type().map(|t| CText::new(t.as_str())),
                    CText::new(&e.to_string()),
                    e.is_temporary(),
                )
            }),
            notice: resolution.notice().map(CText::new),
            json: OnceLock::new(),
            resolution,
        }
    }
}

fn no_policy(data: &ResolutionData) -> Failure {
    Failure::new(
        mtasts_result::MTASTS_NO_POLICY,
        format!(
            "{} has no policy in effect (source: {})",
            data.resolution.domain(),
            data.resolution.source()
        ),
    )
}

fn unix_seconds(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => i64::try_from(e.duration().as_secs()).map_or(i64::MIN, |s| -s),
    }
}

/// Frees a resolution. NULL is a no-op. The views obtained from it become invalid; verdicts
/// and MX plans made from it hold their own copies and stay valid.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mtasts_resolution_free(resolution: *mut mtasts_resolution) {
    // SAFETY: NULL or a live handle (caller's promise).
    unsafe { free_handle(resolution) }
}

/// The body shared by the one-value getters: checks the handle and the output, computes the
/// value, writes it.
///
/// # Safety
/// `resolution` is NULL or a live handle; `out` is NULL or writable.
unsafe fn get<T>(
    resolution: *const mtasts_resolution,
    out: *mut T,
    out_name: &'static str,
    value: impl FnOnce(&ResolutionData) -> Result<T, Failure>,
) -> mtasts_result {
    ffi_boundary!({
        // SAFETY: NULL or live pointers (caller's promise), checked here.
        let data = unsafe { arg_handle(resolution, "resolution") }?;
        let out = arg_out(out, out_name)?;
        let value = value(data)?;
        // SAFETY: checked by `arg_out`; writable (caller's promise).
        unsafe { out.write(value) };
        Ok(())
    })
}

/// The policy domain, normalised (lowercase A-labels, no trailing dot).
///
/// Ownership: `*domain_out` is a NUL-terminated view valid as long as `resolution`. NULL:
/// no parameter may be NULL. Returns `MTASTS_OK`, `MTASTS_NULL_PARAMETER`,
/// `MTASTS_INVALID_HANDLE` or `MTASTS_PANIC`. Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mtasts_resolution_domain(
    resolution: *const mtasts_resolution,
    domain_out: *mut *const c_char,
) -> mtasts_result {
    // SAFETY: forwarded from the caller.
    unsafe {
        get(resolution, domain_out, "domain_out", |data| {
            Ok(data.domain.ptr())
        })
    }
}

/// Where the answer came from: `MTASTS_SOURCE_FETCHED`, `_CACHE`, `_CACHE_AFTER_FAILURE`,
/// `_NONE` or `_UNAVAILABLE` (see `mtasts_source`).
///
/// NULL: no parameter may be NULL. Returns `MTASTS_OK`, `MTASTS_NULL_PARAMETER`,
/// `MTASTS_INVALID_HANDLE` or `MTASTS_PANIC`. Thread-safe. RFC 8461 §5.1.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mtasts_resolution_source(
    resolution: *const mtasts_resolution,
    source_out: *mut mtasts_source,
) -> mtasts_result {
    // SAFETY: forwarded from the caller.
    unsafe {
        get(resolution, source_out, "source_out", |data| {
            Ok(source_of(data.resolution.source()))
        })
    }
}

/// The mode in effect: the policy's mode, or `MTASTS_MODE_NONE` when there is no policy
/// (R-APPLY-3).
///
/// NULL: no parameter may be NULL. Returns `MTASTS_OK`, `MTASTS_NULL_PARAMETER`,
/// `MTASTS_INVALID_HANDLE`, `MTASTS_CACHE` (whether a policy applies cannot be told: source
/// `MTASTS_SOURCE_CACHE_UNREADABLE`; defer the message, `*mode_out` is not written) or
/// `MTASTS_PANIC`. Thread-safe. RFC 8461 §5.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mtasts_resolution_mode(
    resolution: *const mtasts_resolution,
    mode_out: *mut mtasts_mode,
) -> mtasts_result {
    // SAFETY: forwarded from the caller.
    unsafe {
        get(resolution, mode_out, "mode_out", |data| {
            Ok(mode_of(data.resolution.mode_in_effect()?))
        })
    }
}

/// Whether the resolution carries a policy (a fetched or cached one, `mode: none`
/// included). Without one, the policy getters return `MTASTS_NO_POLICY`.
///
/// NULL: no parameter may be NULL. Returns `MTASTS_OK`, `MTASTS_NULL_PARAMETER`,
/// `MTASTS_INVALID_HANDLE` or `MTASTS_PANIC`. Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mtasts_resolution_has_policy(
    resolution: *const mtasts_resolution,
    has_policy_out: *mut bool,
) -> mtasts_result {
    // SAFETY: forwarded from the caller.
    unsafe {
        get(resolution, has_policy_out, "has_policy_out", |data| {
            Ok(data.resolution.policy().is_some())
        })
    }
}

/// The `id` of the `_mta-sts` TXT record the policy was fetched under.
///
/// Ownership: `*id_out` is a NUL-terminated view valid as long as `resolution`. NULL: no
/// parameter may be NULL. Returns `MTASTS_OK`, `MTASTS_NULL_PARAMETER`,
/// `MTASTS_INVALID_HANDLE`, `MTASTS_NO_POLICY` or `MTASTS_PANIC`. Thread-safe. RFC 8461
/// §3.1.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mtasts_resolution_policy_id(
    resolution: *const mtasts_resolution,
    id_out: *mut *const c_char,
) -> mtasts_result {
    // SAFETY: forwarded from the caller.
    unsafe {
        get(resolution, id_out, "id_out", |data| {
            data.id
                .as_ref()
                .map(CText::ptr)
                .ok_or_else(|| no_policy(data))
        })
    }
}

/// The policy's `max_age` in seconds (values above 31557600 were clamped to it).
///
/// NULL: no parameter may be NULL. Returns `MTASTS_OK`, `MTASTS_NULL_PARAMETER`,
/// `MTASTS_INVALID_HANDLE`, `MTASTS_NO_POLICY` or `MTASTS_PANIC`. Thread-safe. RFC 8461
/// §3.2 (R-POL-6).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mtasts_resolution_max_age(
    resolution: *const mtasts_resolution,
    max_age_out: *mut u32,
) -> mtasts_result {
    // SAFETY: forwarded from the caller.
    unsafe {
        get(resolution, max_age_out, "max_age_out", |data| {
            data.resolution
                .policy()
                .map(|p| p.max_age())
                .ok_or_else(|| no_policy(data))
        })
    }
}

/// When the policy was last fetched, in seconds since the Unix epoch.
///
/// NULL: no parameter may be NULL. Returns `MTASTS_OK`, `MTASTS_NULL_PARAMETER`,
/// `MTASTS_INVALID_HANDLE`, `MTASTS_NO_POLICY` or `MTASTS_PANIC`. Thread-safe. RFC 8461
/// §5.1 (R-CACHE-1).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mtasts_resolution_fetched_at(
    resolution: *const mtasts_resolution,
    fetched_at_out: *mut i64,
) -> mtasts_result {
    // SAFETY: forwarded from the caller.
    unsafe {
        get(resolution, fetched_at_out, "fetched_at_out", |data| {
            data.resolution
                .cached_policy()
                .map(|c| unix_seconds(c.fetched_at))
                .ok_or_else(|| no_policy(data))
        })
    }
}

/// When the policy expires (last fetch + `max_age`), in seconds since the Unix epoch.
///
/// NULL: no parameter may be NULL. Returns `MTASTS_OK`, `MTASTS_NULL_PARAMETER`,
/// `MTASTS_INVALID_HANDLE`, `MTASTS_NO_POLICY` or `MTASTS_PANIC`. Thread-safe. RFC 8461
/// §5.1 (R-CACHE-1).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mtasts_resolution_expires_at(
    resolution: *const mtasts_resolution,
    expires_at_out: *mut i64,
) -> mtasts_result {
    // SAFETY: forwarded from the caller.
    unsafe {
        get(resolution, expires_at_out, "expires_at_out", |data| {
            data.resolution
                .cached_policy()
                .map(|c| unix_seconds(c.expires_at))
                .ok_or_else(|| no_policy(data))
        })
    }
}

/// How many `mx` patterns the policy has (0 for a `mode: none` policy without any).
///
/// NULL: no parameter may be NULL. Returns `MTASTS_OK`, `MTASTS_NULL_PARAMETER`,
/// `MTASTS_INVALID_HANDLE`, `MTASTS_NO_POLICY` or `MTASTS_PANIC`. Thread-safe. RFC 8461
/// §3.2.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mtasts_resolution_mx_count(
    resolution: *const mtasts_resolution,
    count_out: *mut usize,
) -> mtasts_result {
    // SAFETY: forwarded from the caller.
    unsafe {
        get(resolution, count_out, "count_out", |data| {
            data.resolution
                .policy()
                .map(|_| data.mx.len())
                .ok_or_else(|| no_policy(data))
        })
    }
}

/// A note for the postmaster that is not a failure (e.g. the TXT record is invalid, so the
/// domain has no policy); `*notice_out` is set to NULL when there is none.
///
/// Ownership: a NUL-terminated view valid as long as `resolution`. NULL: no parameter may
/// be NULL. Returns `MTASTS_OK`, `MTASTS_NULL_PARAMETER`, `MTASTS_INVALID_HANDLE` or
/// `MTASTS_PANIC`. Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mtasts_resolution_notice(
    resolution: *const mtasts_resolution,
    notice_out: *mut *const c_char,
) -> mtasts_result {
    // SAFETY: forwarded from the caller.
    unsafe {
        get(resolution, notice_out, "notice_out", |data| {
            Ok(opt_ptr(data.notice.as_ref()))
        })
    }
}

/// Whether the resolution's failure may go away on its own (DNS, network, fetch backoff,
/// cache): false when nothing failed. A caller that must choose between deferring and
/// giving up defers on a temporary failure.
///
/// NULL: no parameter may be NULL. Returns `MTASTS_OK`, `MTASTS_NULL_PARAMETER`,
/// `MTASTS_INVALID_HANDLE` or `MTASTS_PANIC`. Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mtasts_resolution_failure_is_temporary(
    resolution: *const mtasts_resolution,
    temporary_out: *mut bool,
) -> mtasts_result {
    // SAFETY: forwarded from the caller.
    unsafe {
        get(resolution, temporary_out, "temporary_out", |data| {
            Ok(data.failure.as_ref().is_some_and(|f| f.3))
        })
    }
}

/// The `mx` pattern at `index` (below `mtasts_resolution_mx_count()`), as normalised by the
/// parser: lowercase A-labels, optionally starting with `*.`.
///
/// Ownership: `*pattern_out` is a NUL-terminated view valid as long as `resolution`. NULL: no
/// pointer parameter may be NULL. Returns `MTASTS_OK`, `MTASTS_NULL_PARAMETER`,
/// `MTASTS_INVALID_HANDLE`, `MTASTS_NO_POLICY`, `MTASTS_INDEX_OUT_OF_RANGE` or `MTASTS_PANIC`.
/// Thread-safe. RFC 8461 §3.2 (R-POL-7).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mtasts_resolution_mx_get(
    resolution: *const mtasts_resolution,
    index: usize,
    pattern_out: *mut *const c_char,
) -> mtasts_result {
    // SAFETY: forwarded from the caller.
    unsafe {
        get(resolution, pattern_out, "pattern_out", |data| {
            data.resolution.policy().ok_or_else(|| no_policy(data))?;
            let pattern = data.mx.get(index).ok_or_else(|| out_of_range(index))?;
            Ok(pattern.ptr())
        })
    }
}

/// The policy file exactly as fetched (unknown fields included), for TLS-RPT's
/// `policy-string` and for display.
///
/// Ownership: `*text_out` is a view valid as long as `resolution`; it is NUL-terminated, and
/// `*len_out` is its length in bytes without the NUL. NULL: no parameter may be NULL. Returns
/// `MTASTS_OK`, `MTASTS_NULL_PARAMETER`, `MTASTS_INVALID_HANDLE`, `MTASTS_NO_POLICY` or
/// `MTASTS_PANIC`. Thread-safe. RFC 8461 §3.2 (R-POL-8).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mtasts_resolution_policy_text(
    resolution: *const mtasts_resolution,
    text_out: *mut *const c_char,
    len_out: *mut usize,
) -> mtasts_result {
    ffi_boundary!({
        // SAFETY: NULL or live pointers (caller's promise), checked here.
        let data = unsafe { arg_handle(resolution, "resolution") }?;
        let text_out = arg_out(text_out, "text_out")?;
        let len_out = arg_out(len_out, "len_out")?;
        let text = data.text.as_ref().ok_or_else(|| no_policy(data))?;
        // SAFETY: checked by `arg_out`; writable (caller's promise).
        unsafe {
            text_out.write(text.ptr());
            len_out.write(text.len());
        }
        Ok(())
    })
}

/// Whether the domain itself does not exist in DNS (its `_mta-sts` and MX records answered
/// NXDOMAIN): still "no policy" (RFC 8461), but a typo or a resolver that answers NXDOMAIN for
/// every name it does not serve. Known on the lookup that queried DNS, not on later answers
/// from the cache; the notice (`mtasts_resolution_notice()`) then says so.
///
/// NULL: no parameter may be NULL. Returns `MTASTS_OK`, `MTASTS_NULL_PARAMETER`,
/// `MTASTS_INVALID_HANDLE` or `MTASTS_PANIC`. Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mtasts_resolution_domain_not_found(
    resolution: *const mtasts_resolution,
    not_found_out: *mut bool,
) -> mtasts_result {
    // SAFETY: forwarded from the caller.
    unsafe {
        get(resolution, not_found_out, "not_found_out", |data| {
            Ok(data.resolution.domain_not_found())
        })
    }
}

/// The resolution as JSON: the object `mtasts lookup --json` prints for the domain (the
/// core's resolution view, schema in `docs/json.md`): `{domain, mode, source, policy,
/// failure, notice}`.
///
/// Ownership: `*json_out` is a view valid as long as `resolution`; it is NUL-terminated, and
/// `*len_out` is its length in bytes without the NUL. NULL: no parameter may be NULL. Returns
/// `MTASTS_OK`, `MTASTS_NULL_PARAMETER`, `MTASTS_INVALID_HANDLE` or `MTASTS_PANIC`.
/// Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mtasts_resolution_json(
    resolution: *const mtasts_resolution,
    json_out: *mut *const c_char,
    len_out: *mut usize,
) -> mtasts_result {
    ffi_boundary!({
        // SAFETY: NULL or live pointers (caller's promise), checked here.
        let data = unsafe { arg_handle(resolution, "resolution") }?;
        let json_out = arg_out(json_out, "json_out")?;
        let len_out = arg_out(len_out, "len_out")?;
        let json = data.json.get_or_init(|| {
            CText::new(&mtasts_core::to_json(&mtasts_core::ResolutionView::new(
                &data.resolution,
            )))
        });
        // SAFETY: checked by `arg_out`; writable (caller's promise).
        unsafe {
            json_out.write(json.ptr());
            len_out.write(json.len());
        }
        Ok(())
    })
}

/// Whether MX host `mx_host` matches one of the policy's `mx` patterns (case and a trailing
/// dot ignored; `*.example.net` matches exactly one more label). The host is the MX record's
/// name, not a CNAME target.
///
/// NULL: no parameter may be NULL. Returns `MTASTS_OK`, `MTASTS_NULL_PARAMETER`,
/// `MTASTS_INVALID_HANDLE`, `MTASTS_INVALID_PARAMETER` (not UTF-8), `MTASTS_NO_POLICY` or
/// `MTASTS_PANIC`. Thread-safe. RFC 8461 §4.1 (R-MX-1, R-MX-2).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mtasts_resolution_mx_matches(
    resolution: *const mtasts_resolution,
    mx_host: *const c_char,
    matches_out: *mut bool,
) -> mtasts_result {
    ffi_boundary!({
        // SAFETY: NULL or live pointers (caller's promise), checked here.
        let data = unsafe { arg_handle(resolution, "resolution") }?;
        let host = unsafe { arg_str(mx_host, "mx_host") }?;
        let out = arg_out(matches_out, "matches_out")?;
        let policy = data.resolution.policy().ok_or_else(|| no_policy(data))?;
        let matches = policy.matches(host);
        // SAFETY: checked by `arg_out`; writable (caller's promise).
        unsafe { out.write(matches) };
        Ok(())
    })
}

/// What failed while resolving, if anything: `*code_out` is the failure's result code
/// (`MTASTS_DNS_TEMPORARY`, `MTASTS_POLICY_FETCH`, `MTASTS_POLICY_CERTIFICATE`,
/// `MTASTS_FETCH_BACKOFF`, `MTASTS_INVALID_POLICY`, ...) or `MTASTS_OK` when nothing failed;
/// `*result_type_out` the RFC 8460 result type to report it under (`"sts-policy-fetch-error"`,
/// `"sts-policy-invalid"`, `"sts-webpki-invalid"`), or NULL; `*reason_out` a one-line
/// message, or NULL when nothing failed.
///
/// A failure does not make the call fail: the resolution still says what to do (with
/// `MTASTS_SOURCE_CACHE_AFTER_FAILURE`, use the cached policy; with
/// `MTASTS_SOURCE_UNAVAILABLE`, deliver as if there were no policy, and report).
///
/// Ownership: the strings are NUL-terminated views valid as long as `resolution`. NULL: no
/// parameter may be NULL. Returns `MTASTS_OK`, `MTASTS_NULL_PARAMETER`,
/// `MTASTS_INVALID_HANDLE` or `MTASTS_PANIC`. Thread-safe. RFC 8460 §4.3, RFC 8461 §3.3.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mtasts_resolution_failure(
    resolution: *const mtasts_resolution,
    code_out: *mut mtasts_result,
    result_type_out: *mut *const c_char,
    reason_out: *mut *const c_char,
) -> mtasts_result {
    ffi_boundary!({
        // SAFETY: NULL or live pointers (caller's promise), checked here.
        let data = unsafe { arg_handle(resolution, "resolution") }?;
        let code_out = arg_out(code_out, "code_out")?;
        let type_out = arg_out(result_type_out, "result_type_out")?;
        let reason_out = arg_out(reason_out, "reason_out")?;
        let (code, result_type, reason) = match &data.failure {
            Some((code, result_type, reason, _)) => {
                (*code, opt_ptr(result_type.as_ref()), reason.ptr())
            }
            None => (mtasts_result::MTASTS_OK, std::ptr::null(), std::ptr::null()),
        };
        // SAFETY: checked by `arg_out`; writable (caller's promise).
        unsafe {
            code_out.write(code);
            type_out.write(result_type);
            reason_out.write(reason);
        }
        Ok(())
    })
}

/// The name of a mode: `"none"`, `"testing"`, `"enforce"`, as in the policy file.
///
/// Returns a NUL-terminated string valid for the life of the process (never free it), or
/// NULL for a value that is not an `mtasts_mode`. Thread-safe. RFC 8461 §3.2.
#[unsafe(no_mangle)]
pub extern "C" fn mtasts_mode_str(mode: u32) -> *const c_char {
    static NAMES: OnceLock<Vec<CString>> = OnceLock::new();
    run_quiet(std::ptr::null(), || {
        let names = name_table(&NAMES, || MODES.iter().map(|(_, m)| m.as_str()).collect());
        MODES
            .iter()
            .position(|(c, _)| *c as u32 == mode)
            .map_or(std::ptr::null(), |i| names[i].as_ptr())
    })
}

/// The name of a source: `"fetched"`, `"cache"`, `"cache-after-failure"`, `"none"`,
/// `"unavailable"`, `"cache-unreadable"` (as printed by `mtasts lookup`).
///
/// Returns a NUL-terminated string valid for the life of the process (never free it), or
/// NULL for a value that is not an `mtasts_source`. Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn mtasts_source_str(source: u32) -> *const c_char {
    static NAMES: OnceLock<Vec<CString>> = OnceLock::new();
    run_quiet(std::ptr::null(), || {
        let names = name_table(&NAMES, || SOURCES.iter().map(|(_, s)| s.as_str()).collect());
        SOURCES
            .iter()
            .position(|(c, _)| *c as u32 == source)
            .map_or(std::ptr::null(), |i| names[i].as_ptr())
    })
}
