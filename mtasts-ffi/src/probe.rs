//! `mtasts_probe_report`: the STARTTLS probe of an MX host (RFC 8461 §4.2, §5; R-CERT-1 to
//! R-CERT-3).

use std::ffi::c_char;
use std::net::SocketAddr;
use std::time::Duration;

use mtasts_core::{ProbeOptions, ProbeOutcome, ProbeReport, probe, probe_addrs};

use crate::boundary::{
    CText, Tagged, arg_array, arg_handle, arg_opt_str, arg_out, arg_str, ffi_boundary, free_handle,
    handle, opt_ptr,
};
use crate::certs::mtasts_cert_verifier;
use crate::error::out_of_range;
use crate::error::{Failure, mtasts_result};
use crate::resolver::mtasts_resolver;
use crate::verdict::{failure_view, mtasts_mx_failure, view_ptr};

/// How a probe ended.
#[allow(non_camel_case_types)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum mtasts_probe_outcome {
    /// STARTTLS offered and accepted, TLS 1.2 or newer, certificate valid for the MX host.
    MTASTS_PROBE_PASS = 0,
    /// An MTA-STS failure of the MX (STARTTLS missing or refused, failed handshake, rejected
    /// certificate): see the report's failure.
    MTASTS_PROBE_FAIL = 1,
    /// The probe ended before STARTTLS could be assessed (no address, no connection, the
    /// deadline, a refused session, not SMTP): not an MTA-STS failure, but the MX cannot take
    /// mail either. See the report's reason.
    MTASTS_PROBE_INCOMPLETE = 2,
}

/// Everything a STARTTLS probe saw, and its outcome.
///
/// Immutable: thread-safe. Views returned by its getters live as long as the report.
pub struct mtasts_probe_report(Tagged<ReportData>);
handle!(mtasts_probe_report, ReportData, 0x4d53_000b);

/// A probe report with its strings and views ready for C.
pub struct ReportData {
    report: ProbeReport,
    outcome: mtasts_probe_outcome,
    failure: Option<mtasts_mx_failure>,
    incomplete: Option<CText>,
    address: Option<CText>,
    tls_version: Option<CText>,
    cipher_suite: Option<CText>,
}

impl ReportData {
    fn new(report: ProbeReport) -> ReportData {
        use mtasts_probe_outcome as O;
        let (outcome, incomplete) = match &report.outcome {
            ProbeOutcome::Pass => (O::MTASTS_PROBE_PASS, None),
            ProbeOutcome::Fail(_) => (O::MTASTS_PROBE_FAIL, None),
            ProbeOutcome::Incomplete { reason } => {
                (O::MTASTS_PROBE_INCOMPLETE, Some(CText::new(reason)))
            }
            // Anything a newer core adds: reported as incomplete, with its description.
            other => (
                O::MTASTS_PROBE_INCOMPLETE,
                Some(CText::new(&other.to_string())),
            ),
        };
        ReportData {
            outcome,
            failure: failure_view(report.outcome.failure()),
            incomplete,
            address: report.address.map(|a| CText::new(&a.to_string())),
            tls_version: report.tls_version.as_deref().map(CText::new),
            cipher_suite: report.cipher_suite.as_deref().map(CText::new),
            report,
        }
    }
}

/// The probe options from the C parameters: 0 keeps a default.
pub(crate) fn options(port: u16, timeout_ms: u64, ehlo_name: Option<&str>) -> ProbeOptions {
    let mut options = ProbeOptions::default();
    if port > 0 {
        options.port = port;
    }
    if timeout_ms > 0 {
        options.timeout = Duration::from_millis(timeout_ms);
    }
    if let Some(name) = ehlo_name {
        options.ehlo_name = name.to_owned();
    }
    options
}

/// Probes MX host `mx_host`: looks up its A and AAAA records with the resolver's DNS servers,
/// connects to `port` (0: 25), reads the banner, `EHLO`, `STARTTLS`, a TLS 1.2+ handshake with
/// SNI = `mx_host`, `QUIT`, then checks the chain the server presented with `verifier`. The
/// whole probe ends within `timeout_ms` (0: 30000). `ehlo_name` is the name sent with `EHLO`
/// (NULL: `"localhost"`). No mail is sent.
///
/// Everything that happens on the network is in the report, not an error.
///
/// Ownership: everything is borrowed. On `MTASTS_OK`, `*report_out` is a new handle the caller
/// owns and frees with `mtasts_probe_report_free()`. NULL: `ehlo_name` may be NULL; no other
/// parameter may be. Returns `MTASTS_OK`, `MTASTS_NULL_PARAMETER`, `MTASTS_INVALID_HANDLE`,
/// `MTASTS_INVALID_PARAMETER` (not UTF-8), `MTASTS_INVALID_DOMAIN` (not a host name),
/// `MTASTS_CONFIG` (unusable EHLO name) or `MTASTS_PANIC`. Thread-safe. Blocking. RFC 8461
/// §4.2, §5 (R-CERT-1 to R-CERT-3), RFC 3207.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mtasts_resolver_probe(
    resolver: *const mtasts_resolver,
    verifier: *const mtasts_cert_verifier,
    mx_host: *const c_char,
    port: u16,
    timeout_ms: u64,
    ehlo_name: *const c_char,
    report_out: *mut *mut mtasts_probe_report,
) -> mtasts_result {
    ffi_boundary!({
        // SAFETY: NULL or live pointers (caller's promise), checked here.
        let resolver = unsafe { arg_handle(resolver, "resolver") }?;
        let verifier = unsafe { arg_handle(verifier, "verifier") }?;
        let host = unsafe { arg_str(mx_host, "mx_host") }?;
        let ehlo = unsafe { arg_opt_str(ehlo_name, "ehlo_name") }?;
        let out = arg_out(report_out, "report_out")?;
        let report = probe(
            host,
            resolver.dns().as_ref(),
            verifier,
            &options(port, timeout_ms, ehlo),
        )?;
        // SAFETY: checked by `arg_out`; writable (caller's promise).
        unsafe { out.write_handle(ReportData::new(report)) };
        Ok(())
    })
}

/// Probes MX host `mx_host` at the given addresses (`"ip:port"` strings, tried in order)
/// instead of looking it up; SNI and the certificate check still use `mx_host`. Otherwise as
/// `mtasts_resolver_probe()`.
///
/// Ownership: everything is borrowed. On `MTASTS_OK`, `*report_out` is a new handle the caller
/// owns and frees with `mtasts_probe_report_free()`. NULL: `ehlo_name` may be NULL; `addrs`
/// may be NULL only when `addrs_len` is 0; no element of `addrs` and no other parameter may be
/// NULL. Returns `MTASTS_OK`, `MTASTS_NULL_PARAMETER`, `MTASTS_INVALID_HANDLE`,
/// `MTASTS_INVALID_PARAMETER` (not UTF-8, an address that is not `ip:port`),
/// `MTASTS_INVALID_DOMAIN`, `MTASTS_CONFIG` or `MTASTS_PANIC`. Thread-safe. Blocking. RFC 8461
/// §4.2, §5.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mtasts_cert_verifier_probe(
    verifier: *const mtasts_cert_verifier,
    mx_host: *const c_char,
    addrs: *const *const c_char,
    addrs_len: usize,
    timeout_ms: u64,
    ehlo_name: *const c_char,
    report_out: *mut *mut mtasts_probe_report,
) -> mtasts_result {
    ffi_boundary!({
        // SAFETY: NULL or live pointers (caller's promise), checked here.
        let verifier = unsafe { arg_handle(verifier, "verifier") }?;
        let host = unsafe { arg_str(mx_host, "mx_host") }?;
        let list = unsafe { arg_array(addrs, addrs_len, "addrs") }?;
        let ehlo = unsafe { arg_opt_str(ehlo_name, "ehlo_name") }?;
        let out = arg_out(report_out, "report_out")?;
        let addrs = list
            .iter()
            .map(|addr| {
                // SAFETY: each element is NULL or a NUL-terminated string (caller's promise).
                let text = unsafe { arg_str(*addr, "addrs[i]") }?;
                text.parse::<SocketAddr>().map_err(|e| {
                    Failure::new(
                        mtasts_result::MTASTS_INVALID_PARAMETER,
                        format!("address {text:?} is not ip:port: {e}"),
                    )
                })
            })
            .collect::<Result<Vec<_>, Failure>>()?;
        let report = probe_addrs(host, &addrs, verifier, &options(0, timeout_ms, ehlo))?;
        // SAFETY: checked by `arg_out`; writable (caller's promise).
        unsafe { out.write_handle(ReportData::new(report)) };
        Ok(())
    })
}

/// Frees a probe report. NULL is a no-op.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mtasts_probe_report_free(report: *mut mtasts_probe_report) {
    // SAFETY: NULL or a live handle (caller's promise).
    unsafe { free_handle(report) }
}

/// How the probe ended: `*outcome_out` (`MTASTS_PROBE_PASS`, `_FAIL`, `_INCOMPLETE`);
/// `*failure_out` the MTA-STS failure for `_FAIL` (else NULL; hand it to
/// `mtasts_verdict_decide()`); `*reason_out` what happened for `_INCOMPLETE` (else NULL);
/// `*total_ms_out` how long the probe took, in milliseconds.
///
/// Ownership: `*failure_out` and `*reason_out` are borrowed views valid as long as `report`;
/// never free them. NULL: no parameter may be NULL. Returns `MTASTS_OK`,
/// `MTASTS_NULL_PARAMETER`, `MTASTS_INVALID_HANDLE` or `MTASTS_PANIC`. Thread-safe. RFC 8460
/// §4.3.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mtasts_probe_report_result(
    report: *const mtasts_probe_report,
    outcome_out: *mut mtasts_probe_outcome,
    failure_out: *mut *const mtasts_mx_failure,
    reason_out: *mut *const c_char,
    total_ms_out: *mut u64,
) -> mtasts_result {
    ffi_boundary!({
        // SAFETY: NULL or live pointers (caller's promise), checked here.
        let data = unsafe { arg_handle(report, "report") }?;
        let outcome = arg_out(outcome_out, "outcome_out")?;
        let failure = arg_out(failure_out, "failure_out")?;
        let reason = arg_out(reason_out, "reason_out")?;
        let total = arg_out(total_ms_out, "total_ms_out")?;
        let millis = u64::try_from(data.report.timings.total.as_millis()).unwrap_or(u64::MAX);
        // SAFETY: checked by `arg_out`; writable (caller's promise).
        unsafe {
            outcome.write(data.outcome);
            failure.write(view_ptr(data.failure.as_ref()));
            reason.write(opt_ptr(data.incomplete.as_ref()));
            total.write(millis);
        }
        Ok(())
    })
}

/// What the probe saw of the session: `*address_out` the address it ran on (`"ip:port"`, or
/// NULL when no connection was made); `*starttls_offered_out` whether the EHLO reply
/// advertised STARTTLS; `*tls_version_out` and `*cipher_suite_out` what the handshake
/// negotiated (`"TLSv1_3"`, `"TLS13_AES_256_GCM_SHA384"`; NULL without a handshake).
///
/// Ownership: the strings are NUL-terminated views valid as long as `report`. NULL: no
/// parameter may be NULL. Returns `MTASTS_OK`, `MTASTS_NULL_PARAMETER`,
/// `MTASTS_INVALID_HANDLE` or `MTASTS_PANIC`. Thread-safe. RFC 3207.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mtasts_probe_report_session(
    report: *const mtasts_probe_report,
    address_out: *mut *const c_char,
    starttls_offered_out: *mut bool,
    tls_version_out: *mut *const c_char,
    cipher_suite_out: *mut *const c_char,
) -> mtasts_result {
    ffi_boundary!({
        // SAFETY: NULL or live pointers (caller's promise), checked here.
        let data = unsafe { arg_handle(report, "report") }?;
        let address = arg_out(address_out, "address_out")?;
        let offered = arg_out(starttls_offered_out, "starttls_offered_out")?;
        let version = arg_out(tls_version_out, "tls_version_out")?;
        let suite = arg_out(cipher_suite_out, "cipher_suite_out")?;
        // SAFETY: checked by `arg_out`; writable (caller's promise).
        unsafe {
            address.write(opt_ptr(data.address.as_ref()));
            offered.write(data.report.starttls_offered);
            version.write(opt_ptr(data.tls_version.as_ref()));
            suite.write(opt_ptr(data.cipher_suite.as_ref()));
        }
        Ok(())
    })
}

/// How many certificates the server presented (0 without a TLS handshake).
///
/// NULL: no parameter may be NULL. Returns `MTASTS_OK`, `MTASTS_NULL_PARAMETER`,
/// `MTASTS_INVALID_HANDLE` or `MTASTS_PANIC`. Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mtasts_probe_report_chain_count(
    report: *const mtasts_probe_report,
    count_out: *mut usize,
) -> mtasts_result {
    ffi_boundary!({
        // SAFETY: NULL or live pointers (caller's promise), checked here.
        let data = unsafe { arg_handle(report, "report") }?;
        let out = arg_out(count_out, "count_out")?;
        // SAFETY: checked by `arg_out`; writable (caller's promise).
        unsafe { out.write(data.report.chain.len()) };
        Ok(())
    })
}

/// The certificate at `index` of the chain the server presented (0 is the leaf), DER.
///
/// Ownership: `*der_out` points to `*len_out` bytes valid as long as `report` (not
/// NUL-terminated). NULL: no pointer parameter may be NULL. Returns `MTASTS_OK`,
/// `MTASTS_NULL_PARAMETER`, `MTASTS_INVALID_HANDLE`, `MTASTS_INDEX_OUT_OF_RANGE` or
/// `MTASTS_PANIC`. Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mtasts_probe_report_chain_get(
    report: *const mtasts_probe_report,
    index: usize,
    der_out: *mut *const u8,
    len_out: *mut usize,
) -> mtasts_result {
    ffi_boundary!({
        // SAFETY: NULL or live pointers (caller's promise), checked here.
        let data = unsafe { arg_handle(report, "report") }?;
        let der = arg_out(der_out, "der_out")?;
        let len = arg_out(len_out, "len_out")?;
        let cert = data
            .report
            .chain
            .get(index)
            .ok_or_else(|| out_of_range(index))?;
        // SAFETY: checked by `arg_out`; writable (caller's promise).
        unsafe {
            der.write(cert.as_ref().as_ptr());
            len.write(cert.as_ref().len());
        }
        Ok(())
    })
}
