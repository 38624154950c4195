//! `mtasts_diagnosis`: what `mtasts check` finds about a domain (the core's
//! `Resolver::check`), with getters and its JSON view.

use std::ffi::c_char;
use std::sync::OnceLock;

use mtasts_core::{CheckOptions, Diagnosis, DiagnosisView, Domain, Severity};

use crate::boundary::{
    CText, Tagged, arg_handle, arg_opt_str, arg_out, arg_str, ffi_boundary, free_handle, handle,
    opt_ptr,
};
use crate::certs::mtasts_cert_verifier;
use crate::error::{Failure, mtasts_result, out_of_range};
use crate::probe::options;
use crate::resolver::mtasts_resolver;

/// How bad a problem of a diagnosis is.
#[allow(non_camel_case_types)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum mtasts_severity {
    /// Senders applying the policy fail, defer or report: fix it.
    MTASTS_SEVERITY_ERROR = 0,
    /// Worth fixing; mail flows.
    MTASTS_SEVERITY_WARNING = 1,
}

/// What `mtasts_resolver_check()` found about a domain: its TXT record, its policy, its MX
/// hosts (probed or not) and every problem, each with a stable code and how to fix it.
///
/// Immutable: thread-safe. Views returned by its getters live as long as the diagnosis.
pub struct mtasts_diagnosis(Tagged<DiagnosisData>);
handle!(mtasts_diagnosis, DiagnosisData, 0x4d53_000c);

/// A diagnosis with its strings ready for C.
pub struct DiagnosisData {
    diagnosis: Diagnosis,
    /// Per problem: code, MX host, message, fix.
    problems: Vec<(CText, Option<CText>, CText, CText)>,
    json: OnceLock<CText>,
}

impl DiagnosisData {
    fn new(diagnosis: Diagnosis) -> DiagnosisData {
        DiagnosisData {
            problems: diagnosis
                .problems
                .iter()
                .map(|p| {
                    (
                        CText::new(p.code.as_str()),
                        p.mx.as_deref().map(CText::new),
                        CText::new(&p.message),
                        CText::new(p.fix()),
                    )
                })
                .collect(),
            diagnosis,
            json: OnceLock::new(),
        }
    }
}

/// Diagnoses `domain` as `mtasts check` does: its `_mta-sts` TXT record, its policy as a
/// sender resolves it (with this resolver and its cache: give it a memory cache for the live
/// state), its MX hosts under the policy and, unless `probe` is false, each MX host's
/// STARTTLS and certificate (checked with `verifier`; `port` 0: 25, `timeout_ms` 0: 30000 per
/// probe, `ehlo_name` NULL: `"localhost"`). Every finding is in the diagnosis, not an error.
///
/// Ownership: everything is borrowed. On `MTASTS_OK`, `*diagnosis_out` is a new handle the
/// caller owns and frees with `mtasts_diagnosis_free()`. NULL: `ehlo_name` may be NULL; no
/// other parameter may be. Returns `MTASTS_OK`, `MTASTS_NULL_PARAMETER`,
/// `MTASTS_INVALID_HANDLE`, `MTASTS_INVALID_PARAMETER` (not UTF-8), `MTASTS_INVALID_DOMAIN`
/// (not a host name), `MTASTS_CONFIG` (an unusable EHLO name or timeout) or `MTASTS_PANIC`.
/// Thread-safe. Blocking: up to 16 probes at once, each within its deadline. RFC 8461.
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn mtasts_resolver_check(
    resolver: *const mtasts_resolver,
    verifier: *const mtasts_cert_verifier,
    domain: *const c_char,
    probe: bool,
    port: u16,
    timeout_ms: u64,
    ehlo_name: *const c_char,
    diagnosis_out: *mut *mut mtasts_diagnosis,
) -> mtasts_result {
    ffi_boundary!({
        // SAFETY: NULL or live pointers (caller's promise), checked here.
        let resolver = unsafe { arg_handle(resolver, "resolver") }?;
        let verifier = unsafe { arg_handle(verifier, "verifier") }?;
        let domain = unsafe { arg_str(domain, "domain") }?;
        let ehlo = unsafe { arg_opt_str(ehlo_name, "ehlo_name") }?;
        let out = arg_out(diagnosis_out, "diagnosis_out")?;
        let domain = Domain::new(domain)?;
        let mut check = CheckOptions::default();
        if probe {
            let probe_options = options(port, timeout_ms, ehlo);
            probe_options.validate()?;
            check.probe = Some(probe_options);
        }
        let diagnosis = resolver.check(&domain, verifier, &check);
        // SAFETY: checked by `arg_out`; writable (caller's promise).
        unsafe { out.write_handle(DiagnosisData::new(diagnosis)) };
        Ok(())
    })
}

/// Frees a diagnosis. NULL is a no-op. The views obtained from it become invalid.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mtasts_diagnosis_free(diagnosis: *mut mtasts_diagnosis) {
    // SAFETY: NULL or a live handle (caller's promise).
    unsafe { free_handle(diagnosis) }
}

/// The outcome in three numbers: `*ok_out` true when no problem is of severity error (the
/// exit status 0 of `mtasts check`), `*defer_out` true when the policy is `enforce` and no MX
/// host can receive mail (senders defer every message, R-APPLY-1), `*problems_out` the number
/// of problems.
///
/// NULL: no parameter may be NULL. Returns `MTASTS_OK`, `MTASTS_NULL_PARAMETER`,
/// `MTASTS_INVALID_HANDLE` or `MTASTS_PANIC`. Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mtasts_diagnosis_summary(
    diagnosis: *const mtasts_diagnosis,
    ok_out: *mut bool,
    defer_out: *mut bool,
    problems_out: *mut usize,
) -> mtasts_result {
    ffi_boundary!({
        // SAFETY: NULL or live pointers (caller's promise), checked here.
        let data = unsafe { arg_handle(diagnosis, "diagnosis") }?;
        let ok_out = arg_out(ok_out, "ok_out")?;
        let defer_out = arg_out(defer_out, "defer_out")?;
        let problems_out = arg_out(problems_out, "problems_out")?;
        // SAFETY: checked by `arg_out`; writable (caller's promise).
        unsafe {
            ok_out.write(data.diagnosis.ok());
            defer_out.write(data.diagnosis.defer);
            problems_out.write(data.problems.len());
        }
        Ok(())
    })
}

/// The problem at `index` (below the count of `mtasts_diagnosis_summary()`): its severity,
/// stable code (`mx-mismatch`, `no-usable-mx`, ...; see docs/json.md), the MX host it is
/// about (NULL for none), what is wrong and how to fix it.
///
/// Ownership: the strings are NUL-terminated views valid as long as `diagnosis`. NULL: no
/// parameter may be NULL. Returns `MTASTS_OK`, `MTASTS_NULL_PARAMETER`,
/// `MTASTS_INVALID_HANDLE`, `MTASTS_INDEX_OUT_OF_RANGE` or `MTASTS_PANIC`. Thread-safe.
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn mtasts_diagnosis_problem(
    diagnosis: *const mtasts_diagnosis,
    index: usize,
    severity_out: *mut mtasts_severity,
    code_out: *mut *const c_char,
    mx_out: *mut *const c_char,
    message_out: *mut *const c_char,
    fix_out: *mut *const c_char,
) -> mtasts_result {
    ffi_boundary!({
        // SAFETY: NULL or live pointers (caller's promise), checked here.
        let data = unsafe { arg_handle(diagnosis, "diagnosis") }?;
        let severity_out = arg_out(severity_out, "severity_out")?;
        let code_out = arg_out(code_out, "code_out")?;
        let mx_out = arg_out(mx_out, "mx_out")?;
        let message_out = arg_out(message_out, "message_out")?;
        let fix_out = arg_out(fix_out, "fix_out")?;
        let problem = data.diagnosis.problems.get(index);
        let (code, mx, message, fix) = data
            .problems
            .get(index)
            .ok_or_else(|| out_of_range(index))?;
        let severity = match problem.map(|p| p.severity) {
            Some(Severity::Warning) => mtasts_severity::MTASTS_SEVERITY_WARNING,
            _ => mtasts_severity::MTASTS_SEVERITY_ERROR,
        };
        // SAFETY: checked by `arg_out`; writable (caller's promise).
        unsafe {
            severity_out.write(severity);
            code_out.write(code.ptr());
            mx_out.write(opt_ptr(mx.as_ref()));
            message_out.write(message.ptr());
            fix_out.write(fix.ptr());
        }
        Ok::<(), Failure>(())
    })
}

/// The diagnosis as JSON: the object `mtasts check --json` prints (the core's diagnosis
/// view, schema in docs/json.md).
///
/// Ownership: `*json_out` is a view valid as long as `diagnosis`; it is NUL-terminated, and
/// `*len_out` is its length in bytes without the NUL. NULL: no parameter may be NULL. Returns
/// `MTASTS_OK`, `MTASTS_NULL_PARAMETER`, `MTASTS_INVALID_HANDLE` or `MTASTS_PANIC`.
/// Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mtasts_diagnosis_json(
    diagnosis: *const mtasts_diagnosis,
    json_out: *mut *const c_char,
    len_out: *mut usize,
) -> mtasts_result {
    ffi_boundary!({
        // SAFETY: NULL or live pointers (caller's promise), checked here.
        let data = unsafe { arg_handle(diagnosis, "diagnosis") }?;
        let json_out = arg_out(json_out, "json_out")?;
        let len_out = arg_out(len_out, "len_out")?;
        let json = data.json.get_or_init(|| {
            CText::new(&mtasts_core::to_json(&DiagnosisView::new(&data.diagnosis)))
        });
        // SAFETY: checked by `arg_out`; writable (caller's promise).
        unsafe {
            json_out.write(json.ptr());
            len_out.write(json.len());
        }
        Ok(())
    })
}
