//! `mtasts_reporter` and `mtasts_report_failure`: recording TLS-RPT sessions (RFC 8460) into
//! the report store beside the policy cache (the core's `Reporter`, `Session`,
//! `SessionFailure`, `MtaEvent`).

use std::ffi::c_char;
use std::str::FromStr;
use std::sync::OnceLock;

use mtasts_core::{
    AppliedPolicy, Domain, MtaEvent, PolicyType, Reporter, Session, SessionFailure, UtcDay,
    classify_mta_error,
};

use crate::boundary::{
    Tagged, arg_array, arg_handle, arg_opt_str, arg_out, arg_str, ffi_boundary, free_handle,
    handle, name_table,
};
use crate::config::{mtasts_config, snapshot_all};
use crate::error::{Failure, mtasts_result};
use crate::resolution::mtasts_resolution;

/// Records TLS-RPT sessions (RFC 8460 §4) where the policy cache of its configuration lives:
/// the SQLite file's own tables or the Redis server's own keys, so every process and host
/// sharing the cache aggregates one set of daily counts (R-RPT-3, R-RPT-4).
///
/// Made by `mtasts_reporter_new()`, freed by `mtasts_reporter_free()`.
///
/// Thread-safety: share one reporter between the threads of a process; every function taking
/// a `const mtasts_reporter *` may be called concurrently, and each record is atomic with
/// those of every other process using the store. Fork: a reporter made before `fork()` keeps
/// working in the child (it opens its SQLite connections and Redis connections as needed).
pub struct mtasts_reporter(Tagged<Reporter>);
handle!(mtasts_reporter, Reporter, 0x4d53_0010);

/// One failure detail of a session (RFC 8460 §4.4 `failure-details`): a result type and what
/// is known of the MX side. Made by `mtasts_report_failure_new()`, freed by
/// `mtasts_report_failure_free()`; immutable and thread-safe.
pub struct mtasts_report_failure(Tagged<SessionFailure>);
handle!(mtasts_report_failure, SessionFailure, 0x4d53_0011);

/// The policy type of a session recorded with an explicit policy (RFC 8460 §4.4
/// `policy-type`), for `mtasts_reporter_record_policy()`.
#[allow(non_camel_case_types)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum mtasts_policy_type {
    /// `sts`: an MTA-STS policy, with its lines and MX patterns.
    MTASTS_POLICY_TYPE_STS = 0,
    /// `tlsa`: DANE applied (RFC 7672; R-APPLY-4), with the TLSA records as text.
    MTASTS_POLICY_TYPE_TLSA = 1,
    /// `no-policy-found`: no policy applied (also a `mode: none` policy, R-RPT-11).
    MTASTS_POLICY_TYPE_NO_POLICY_FOUND = 2,
}

/// What an MTA's delivery event says about one MX host, for
/// `mtasts_reporter_record_mta_event()` (the core's `MtaEvent`; Exim's transport events).
#[allow(non_camel_case_types)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum mtasts_mta_event {
    /// TLS was negotiated and the certificate verified (Exim: `smtp:ehlo` after STARTTLS,
    /// `$tls_out_certificate_verified` 1).
    MTASTS_MTA_EVENT_TLS_VERIFIED = 0,
    /// TLS was negotiated, the certificate not verified (`$tls_out_certificate_verified` 0):
    /// a failure under a `testing` policy, a success without a policy.
    MTASTS_MTA_EVENT_TLS_UNVERIFIED = 1,
    /// TLS was negotiated and verified by DANE (`$tls_out_dane` yes): a `tlsa` success.
    MTASTS_MTA_EVENT_TLS_DANE = 2,
    /// The message was delivered without TLS (Exim: `msg:delivery`, `$tls_out_cipher`
    /// empty): `starttls-not-supported`.
    MTASTS_MTA_EVENT_DELIVERED_IN_CLEAR = 3,
    /// Delivery to the host was deferred; `data` is the MTA's error text (Exim:
    /// `msg:host:defer`, `$event_data`). A session failure only when the text names a TLS
    /// problem (see `mtasts_report_classify_mta_error()`).
    MTASTS_MTA_EVENT_HOST_DEFERRED = 4,
    /// DANE failed; `data` is the RFC 8460 result type (Exim: `dane:fail`, `$event_data`).
    MTASTS_MTA_EVENT_DANE_FAILED = 5,
    /// The MTA left MX host `mx_host` out without connecting (Exim: the router's
    /// `ignore_target_hosts` under an `enforce` policy, R-APPLY-1): a `validation-failure`
    /// (`mx-mismatch`) when the host matches none of the patterns of an `enforce` policy;
    /// nothing is recorded for a host the policy lists, under `testing` (the MTA connects
    /// there: its TLS event counts the mismatch), without a policy or without `mx_host`.
    MTASTS_MTA_EVENT_MX_SKIPPED = 6,
}

fn invalid(message: String) -> Failure {
    Failure::new(mtasts_result::MTASTS_INVALID_PARAMETER, message)
}

/// The day parameter: NULL is today (UTC), otherwise `YYYY-MM-DD`.
///
/// # Safety
/// `day` is NULL or a NUL-terminated string.
unsafe fn arg_day(day: *const c_char) -> Result<UtcDay, Failure> {
    // SAFETY: forwarded.
    match unsafe { arg_opt_str(day, "day") }? {
        None => Ok(UtcDay::today()),
        Some(text) => Ok(UtcDay::from_str(text).map_err(mtasts_core::Error::from)?),
    }
}

/// The failures parameter: `count` handles, none NULL.
///
/// # Safety
/// `failures` is NULL or points to `count` pointers, each NULL or a live handle.
unsafe fn arg_failures(
    failures: *const *const mtasts_report_failure,
    count: usize,
) -> Result<Vec<SessionFailure>, Failure> {
    // SAFETY: forwarded.
    let handles = unsafe { arg_array(failures, count, "failures") }?;
    handles
        .iter()
        // SAFETY: each NULL or a live handle (caller's promise).
        .map(|&h| unsafe { arg_handle(h, "failures[i]") }.cloned())
        .collect()
}

/// `count` strings, none NULL.
///
/// # Safety
/// `strings` is NULL or points to `count` pointers, each NULL or a NUL-terminated string.
unsafe fn arg_strings(
    strings: *const *const c_char,
    count: usize,
    name: &str,
) -> Result<Vec<String>, Failure> {
    // SAFETY: forwarded.
    let entries = unsafe { arg_array(strings, count, name) }?;
    entries
        .iter()
        // SAFETY: each NULL or a NUL-terminated string (caller's promise).
        .map(|&s| unsafe { arg_str(s, name) }.map(str::to_owned))
        .collect()
}

/// An optional text field: NULL and `""` both mean "not known".
///
/// # Safety
/// `ptr` is NULL or a NUL-terminated string.
unsafe fn field<'a>(ptr: *const c_char, name: &str) -> Result<&'a str, Failure> {
    // SAFETY: forwarded.
    Ok(unsafe { arg_opt_str(ptr, name) }?.unwrap_or(""))
}

/// Opens a reporter recording where `config`'s cache lives (its `cache` setting: a SQLite
/// file, or a Redis server; with both, `FILE,redis://...`, the counts go to Redis, the
/// fleet's), with its `tlsrpt.*` settings (`tlsrpt.retention_days`). The same configuration
/// makes the resolver: `mtasts_resolver_new()`. The SQLite file is created if missing.
///
/// Ownership: `config` is borrowed (copied). On `MTASTS_OK`, `*reporter_out` is a new handle
/// the caller owns and frees with `mtasts_reporter_free()`. NULL: no parameter may be NULL.
/// Returns `MTASTS_OK`, `MTASTS_NULL_PARAMETER`, `MTASTS_INVALID_HANDLE`, `MTASTS_CONFIG`
/// (`cache = memory`: counts in one process's memory would be lost with it; a bad Redis URL),
/// `MTASTS_REPORT_STORE` (the SQLite file cannot be opened, or holds tables of a newer
/// mtasts) or `MTASTS_PANIC`. Thread-safe. RFC 8460 §4 (R-RPT-3).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mtasts_reporter_new(
    config: *const mtasts_config,
    reporter_out: *mut *mut mtasts_reporter,
) -> mtasts_result {
    ffi_boundary!({
        // SAFETY: NULL or live pointers (caller's promise), checked here.
        let config = unsafe { arg_handle(config, "config") }?;
        let out = arg_out(reporter_out, "reporter_out")?;
        let settings = snapshot_all(config);
        let reporter = Reporter::open(&settings.config, &settings.tlsrpt)?;
        // SAFETY: checked by `arg_out`; writable (caller's promise).
        unsafe { out.write_handle(reporter) };
        Ok(())
    })
}

/// Frees a reporter. NULL is a no-op. No other thread may be using it.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mtasts_reporter_free(reporter: *mut mtasts_reporter) {
    // SAFETY: NULL or a live handle (caller's promise).
    unsafe { free_handle(reporter) }
}

/// Makes a failure detail: `result_type` is an RFC 8460 §4.3 result type
/// (`"starttls-not-supported"`, `"certificate-host-mismatch"`, `"certificate-expired"`,
/// `"certificate-not-trusted"`, `"validation-failure"`, `"sts-policy-fetch-error"`,
/// `"sts-policy-invalid"`, `"sts-webpki-invalid"`, and for DANE `"tlsa-invalid"`,
/// `"dnssec-invalid"`, `"dane-required"`); the other fields are what is known, each
/// NULL or `""` when not: `sending_mta_ip` (the address the MTA connected from),
/// `receiving_mx_hostname` (normalised to an A-label), `receiving_ip`, `receiving_mx_helo`
/// (at most 512 bytes), `failure_reason_code` (at most 256 bytes, e.g. a stable code such
/// as `"starttls-not-offered"` or the TLS library's message) and `additional_information`
/// (a URI, at most 2048 bytes).
///
/// Ownership: the strings are borrowed (copied). On `MTASTS_OK`, `*failure_out` is a new
/// handle the caller owns and frees with `mtasts_report_failure_free()`. NULL: `result_type`
/// and `failure_out` must not be NULL. Returns `MTASTS_OK`, `MTASTS_NULL_PARAMETER`,
/// `MTASTS_INVALID_PARAMETER` (a string that is not UTF-8), `MTASTS_INVALID_SESSION` (an
/// unknown result type, an address that is not an IP address, a host name that is not one,
/// a field over its limit; `mtasts_last_error()` names the field) or `MTASTS_PANIC`.
/// Thread-safe. RFC 8460 §4.3, §4.4 (R-RPT-4).
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn mtasts_report_failure_new(
    result_type: *const c_char,
    sending_mta_ip: *const c_char,
    receiving_mx_hostname: *const c_char,
    receiving_ip: *const c_char,
    receiving_mx_helo: *const c_char,
    failure_reason_code: *const c_char,
    additional_information: *const c_char,
    failure_out: *mut *mut mtasts_report_failure,
) -> mtasts_result {
    ffi_boundary!({
        // SAFETY: NULL or NUL-terminated strings (caller's promise), checked here.
        let result_type = unsafe { arg_str(result_type, "result_type") }?;
        let sending = unsafe { field(sending_mta_ip, "sending_mta_ip") }?;
        let host = unsafe { field(receiving_mx_hostname, "receiving_mx_hostname") }?;
        let ip = unsafe { field(receiving_ip, "receiving_ip") }?;
        let helo = unsafe { field(receiving_mx_helo, "receiving_mx_helo") }?;
        let code = unsafe { field(failure_reason_code, "failure_reason_code") }?;
        let info = unsafe { field(additional_information, "additional_information") }?;
        let out = arg_out(failure_out, "failure_out")?;
        let failure = SessionFailure::from_name(result_type)
            .and_then(|f| f.sending_mta_ip(sending))
            .and_then(|f| f.receiving_mx_hostname(host))
            .and_then(|f| f.receiving_ip(ip))
            .and_then(|f| f.receiving_mx_helo(helo))
            .and_then(|f| f.failure_reason_code(code))
            .and_then(|f| f.additional_information(info))
            .map_err(mtasts_core::Error::from)?;
        // SAFETY: checked by `arg_out`; writable (caller's promise).
        unsafe { out.write_handle(failure) };
        Ok(())
    })
}

/// Frees a failure detail. NULL is a no-op.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mtasts_report_failure_free(failure: *mut mtasts_report_failure) {
    // SAFETY: NULL or a live handle (caller's promise).
    unsafe { free_handle(failure) }
}

/// Records one session (one attempt to negotiate TLS with one MX host, R-RPT-3) with the
/// domain of `resolution`, on `day` (`"YYYY-MM-DD"`, UTC; NULL: today), under the policy the
/// resolution applied: `sts` with the policy's lines and MX patterns for a `testing` or
/// `enforce` policy (`testing` failures count exactly like `enforce` ones), `no-policy-found`
/// without a policy or with `mode: none` (R-RPT-11). `failures` are the `count` failure
/// details seen at the MX host (0: TLS succeeded); a failure to obtain the policy that the
/// resolution carries (fetch error, invalid policy, rejected certificate) is added as a
/// detail too, so such a session is failed (R-RPT-5). A detail given twice counts once.
///
/// Ownership: every parameter is borrowed. NULL: `reporter` and `resolution` must not be
/// NULL; `day` may be; `failures` only when `count` is 0, and no entry may be NULL. Returns
/// `MTASTS_OK` (counted), `MTASTS_NULL_PARAMETER`, `MTASTS_INVALID_HANDLE`,
/// `MTASTS_INVALID_PARAMETER` (`day` not UTF-8), `MTASTS_INVALID_SESSION` (a bad day, more
/// than 16 details, or a resolution whose policy cannot be told,
/// `MTASTS_SOURCE_CACHE_UNREADABLE`: the message is deferred and there was no session),
/// `MTASTS_REPORT_STORE` (not counted: the store cannot be written; log it, never hold up
/// a delivery for it) or `MTASTS_PANIC`. Thread-safe. RFC 8460 §4.4.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mtasts_reporter_record_resolution(
    reporter: *const mtasts_reporter,
    resolution: *const mtasts_resolution,
    day: *const c_char,
    failures: *const *const mtasts_report_failure,
    count: usize,
) -> mtasts_result {
    ffi_boundary!({
        // SAFETY: NULL or live pointers (caller's promise), checked here.
        let reporter = unsafe { arg_handle(reporter, "reporter") }?;
        let data = unsafe { arg_handle(resolution, "resolution") }?;
        let day = unsafe { arg_day(day) }?;
        let failures = unsafe { arg_failures(failures, count) }?;
        let session = Session::from_resolution(day, &data.resolution, failures)
            .map_err(mtasts_core::Error::from)?;
        Ok(reporter.record(&session)?)
    })
}

/// Records one session under a policy the caller states (R-RPT-3): `policy_type` is
/// `MTASTS_POLICY_TYPE_TLSA` (DANE applied: `policy_strings` are the TLSA records as text,
/// R-APPLY-4), `MTASTS_POLICY_TYPE_NO_POLICY_FOUND` (no strings, no patterns) or
/// `MTASTS_POLICY_TYPE_STS` (the policy's lines and its `mx` patterns), for `domain` (the
/// policy domain, ASCII or U-labels), on `day` (`"YYYY-MM-DD"`, UTC; NULL: today), with the
/// `failure_count` failure details (0: a success).
///
/// Ownership: every parameter is borrowed. NULL: `reporter` and `domain` must not be NULL;
/// `day` may be; an array may be NULL only when its count is 0, and no entry may be NULL.
/// Returns `MTASTS_OK` (counted), `MTASTS_NULL_PARAMETER`, `MTASTS_INVALID_HANDLE`,
/// `MTASTS_INVALID_PARAMETER` (not UTF-8, an unknown `policy_type`),
/// `MTASTS_INVALID_SESSION` (the domain is not a host name, a pattern is not an MX pattern,
/// strings or patterns for `no-policy-found`, a bad day, more than 16 details),
/// `MTASTS_REPORT_STORE` (not counted) or `MTASTS_PANIC`. Thread-safe. RFC 8460 §4.4.
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn mtasts_reporter_record_policy(
    reporter: *const mtasts_reporter,
    policy_type: u32,
    domain: *const c_char,
    policy_strings: *const *const c_char,
    policy_string_count: usize,
    mx_hosts: *const *const c_char,
    mx_host_count: usize,
    day: *const c_char,
    failures: *const *const mtasts_report_failure,
    failure_count: usize,
) -> mtasts_result {
    use mtasts_policy_type as T;
    ffi_boundary!({
        // SAFETY: NULL or live pointers (caller's promise), checked here.
        let reporter = unsafe { arg_handle(reporter, "reporter") }?;
        let kind = match policy_type {
            x if x == T::MTASTS_POLICY_TYPE_STS as u32 => PolicyType::Sts,
            x if x == T::MTASTS_POLICY_TYPE_TLSA as u32 => PolicyType::Tlsa,
            x if x == T::MTASTS_POLICY_TYPE_NO_POLICY_FOUND as u32 => PolicyType::NoPolicyFound,
            other => {
                return Err(invalid(format!(
                    "{other} is not an mtasts_policy_type value"
                )));
            }
        };
        let domain = unsafe { arg_str(domain, "domain") }?;
        let strings =
            unsafe { arg_strings(policy_strings, policy_string_count, "policy_strings") }?;
        let patterns = unsafe { arg_strings(mx_hosts, mx_host_count, "mx_hosts") }?;
        let day = unsafe { arg_day(day) }?;
        let failures = unsafe { arg_failures(failures, failure_count) }?;
        let policy = AppliedPolicy::new(kind, domain, strings, patterns)
            .map_err(mtasts_core::Error::from)?;
        let session = if failures.is_empty() {
            Session::success(day, policy)
        } else {
            Session::failure(day, policy, failures).map_err(mtasts_core::Error::from)?
        };
        Ok(reporter.record(&session)?)
    })
}

/// Records what an MTA's delivery event says about MX host `mx_host` (its name, NULL or ""
/// when not known) at `receiving_ip`, connected from `sending_mta_ip` (each NULL or "" when
/// not known), for the domain of `resolution`, on `day` (NULL: today): see
/// `mtasts_mta_event` for the kinds; `data` is the event's text (the error text of
/// `MTASTS_MTA_EVENT_HOST_DEFERRED`, the result type of `MTASTS_MTA_EVENT_DANE_FAILED`;
/// NULL for the others). The decision which session an event is, and its result type, is
/// the core's (`MtaEvent::session`), the same for every face: a verified TLS session is a
/// success, an unverified one a `validation-failure` under a `testing` policy, a delivery in
/// clear `starttls-not-supported`, a deferral whose text names a TLS problem its classified
/// failure, a DANE failure a `tlsa` failure of its type, a host left out that the policy does
/// not list an `mx-mismatch`. `*recorded_out` is false when the event is no TLS session
/// outcome (a deferral for another reason, a host left out that the policy lists: nothing is
/// recorded).
///
/// Ownership: every parameter is borrowed. NULL: `reporter`, `resolution` and
/// `recorded_out` must not be NULL; `data` must not be NULL for the two kinds that use it.
/// Returns `MTASTS_OK`, `MTASTS_NULL_PARAMETER`, `MTASTS_INVALID_HANDLE`,
/// `MTASTS_INVALID_PARAMETER` (not UTF-8, an unknown `event`), `MTASTS_INVALID_SESSION` (a
/// bad host name, address or day; a resolution whose policy cannot be told),
/// `MTASTS_REPORT_STORE` (not counted) or `MTASTS_PANIC`; `*recorded_out` is written only on
/// `MTASTS_OK`. Thread-safe. RFC 8460 §4.3, §4.4 (R-RPT-3, R-RPT-4, R-RPT-5).
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn mtasts_reporter_record_mta_event(
    reporter: *const mtasts_reporter,
    resolution: *const mtasts_resolution,
    event: u32,
    data: *const c_char,
    mx_host: *const c_char,
    receiving_ip: *const c_char,
    sending_mta_ip: *const c_char,
    day: *const c_char,
    recorded_out: *mut bool,
) -> mtasts_result {
    use mtasts_mta_event as E;
    ffi_boundary!({
        // SAFETY: NULL or live pointers (caller's promise), checked here.
        let reporter = unsafe { arg_handle(reporter, "reporter") }?;
        let resolution = unsafe { arg_handle(resolution, "resolution") }?;
        let host = unsafe { field(mx_host, "mx_host") }?;
        let ip = unsafe { field(receiving_ip, "receiving_ip") }?;
        let sending = unsafe { field(sending_mta_ip, "sending_mta_ip") }?;
        let day = unsafe { arg_day(day) }?;
        let out = arg_out(recorded_out, "recorded_out")?;
        let text = || unsafe { arg_str(data, "data") };
        let event = match event {
            x if x == E::MTASTS_MTA_EVENT_TLS_VERIFIED as u32 => MtaEvent::TlsEstablished {
                verified: true,
                dane: false,
            },
            x if x == E::MTASTS_MTA_EVENT_TLS_UNVERIFIED as u32 => MtaEvent::TlsEstablished {
                verified: false,
                dane: false,
            },
            x if x == E::MTASTS_MTA_EVENT_TLS_DANE as u32 => MtaEvent::TlsEstablished {
                verified: true,
                dane: true,
            },
            x if x == E::MTASTS_MTA_EVENT_DELIVERED_IN_CLEAR as u32 => MtaEvent::DeliveredInClear,
            x if x == E::MTASTS_MTA_EVENT_HOST_DEFERRED as u32 => {
                MtaEvent::HostDeferred { error: text()? }
            }
            x if x == E::MTASTS_MTA_EVENT_DANE_FAILED as u32 => MtaEvent::DaneFailed {
                result_type: text()?,
            },
            x if x == E::MTASTS_MTA_EVENT_MX_SKIPPED as u32 => MtaEvent::MxSkipped,
            other => {
                return Err(invalid(format!("{other} is not an mtasts_mta_event value")));
            }
        };
        // The MX-side fields; the result type is the event's (replaced by the core).
        let detail = SessionFailure::new(mtasts_core::ResultType::ValidationFailure)
            .receiving_mx_hostname(host)
            .and_then(|f| f.receiving_ip(ip))
            .and_then(|f| f.sending_mta_ip(sending))
            .map_err(mtasts_core::Error::from)?;
        let session = event
            .session(day, &resolution.resolution, &detail)
            .map_err(mtasts_core::Error::from)?;
        if let Some(session) = &session {
            reporter.record(session)?;
        }
        // SAFETY: checked by `arg_out`; writable (caller's promise).
        unsafe { out.write(session.is_some()) };
        Ok(())
    })
}

/// What an MTA's error text says about TLS (the core's `classify_mta_error`; Exim's
/// `msg:host:defer` texts): `*result_type_out` the RFC 8460 result type and
/// `*reason_code_out` the stable reason code (e.g. `"starttls-not-supported"`,
/// `"starttls-not-offered"`), both NULL when the text names no TLS problem (a refused
/// connection, a 4xx reply).
///
/// Ownership: `text` is borrowed; the strings written are static (valid for the life of the
/// process, never freed). NULL: no parameter may be NULL. Returns `MTASTS_OK`,
/// `MTASTS_NULL_PARAMETER`, `MTASTS_INVALID_PARAMETER` (not UTF-8) or `MTASTS_PANIC`.
/// Thread-safe. RFC 8460 §4.3.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mtasts_report_classify_mta_error(
    text: *const c_char,
    result_type_out: *mut *const c_char,
    reason_code_out: *mut *const c_char,
) -> mtasts_result {
    static RESULT_TYPES: OnceLock<Vec<std::ffi::CString>> = OnceLock::new();
    static REASONS: OnceLock<Vec<std::ffi::CString>> = OnceLock::new();
    ffi_boundary!({
        // SAFETY: NULL or live pointers (caller's promise), checked here.
        let text = unsafe { arg_str(text, "text") }?;
        let result_type = arg_out(result_type_out, "result_type_out")?;
        let reason_code = arg_out(reason_code_out, "reason_code_out")?;
        let reasons = name_table(&REASONS, || {
            mtasts_core::FailureReason::ALL
                .iter()
                .map(|r| r.code())
                .collect()
        });
        let types = name_table(&RESULT_TYPES, || {
            mtasts_core::FailureReason::ALL
                .iter()
                .map(|r| r.result_type().as_str())
                .collect()
        });
        let (t, r) = match classify_mta_error(text).and_then(|reason| {
            mtasts_core::FailureReason::ALL
                .iter()
                .position(|r| *r == reason)
        }) {
            Some(i) => (types[i].as_ptr(), reasons[i].as_ptr()),
            None => (std::ptr::null(), std::ptr::null()),
        };
        // SAFETY: checked by `arg_out`; writable (caller's promise).
        unsafe {
            result_type.write(t);
            reason_code.write(r);
        }
        Ok(())
    })
}

/// The counts recorded for `domain` (the policy domain) on `day` (`"YYYY-MM-DD"`; NULL:
/// today), over every applied policy of type `policy_type` (an `mtasts_policy_type`):
/// successful sessions, failed sessions and failure-detail counts summed (R-RPT-3, R-RPT-4):
/// what the report for that day will say. All 0 when nothing was recorded.
///
/// NULL: `day` may be NULL; no other parameter may be. Returns `MTASTS_OK`,
/// `MTASTS_NULL_PARAMETER`, `MTASTS_INVALID_HANDLE`, `MTASTS_INVALID_PARAMETER` (not UTF-8,
/// an unknown `policy_type`), `MTASTS_INVALID_DOMAIN`, `MTASTS_INVALID_SESSION` (a bad day),
/// `MTASTS_REPORT_STORE` (the store cannot be read) or `MTASTS_PANIC`. Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mtasts_reporter_counts(
    reporter: *const mtasts_reporter,
    day: *const c_char,
    domain: *const c_char,
    policy_type: u32,
    successful_out: *mut u64,
    failed_out: *mut u64,
    failure_details_out: *mut u64,
) -> mtasts_result {
    use mtasts_policy_type as T;
    ffi_boundary!({
        // SAFETY: NULL or live pointers (caller's promise), checked here.
        let reporter = unsafe { arg_handle(reporter, "reporter") }?;
        let day = unsafe { arg_day(day) }?;
        let domain = Domain::new(unsafe { arg_str(domain, "domain") }?)?;
        let kind = match policy_type {
            x if x == T::MTASTS_POLICY_TYPE_STS as u32 => PolicyType::Sts,
            x if x == T::MTASTS_POLICY_TYPE_TLSA as u32 => PolicyType::Tlsa,
            x if x == T::MTASTS_POLICY_TYPE_NO_POLICY_FOUND as u32 => PolicyType::NoPolicyFound,
            other => {
                return Err(invalid(format!(
                    "{other} is not an mtasts_policy_type value"
                )));
            }
        };
        let successful = arg_out(successful_out, "successful_out")?;
        let failed = arg_out(failed_out, "failed_out")?;
        let details = arg_out(failure_details_out, "failure_details_out")?;
        let (s, f, d) = reporter
            .store()
            .day_report(day, &domain)?
            .map_or((0, 0, 0), |report| report.totals(kind));
        // SAFETY: checked by `arg_out`; writable (caller's promise).
        unsafe {
            successful.write(s);
            failed.write(f);
            details.write(d);
        }
        Ok(())
    })
}
