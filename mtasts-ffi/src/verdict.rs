//! MX decisions: `mtasts_mx_failure`, `mtasts_verdict` (one MX host), `mtasts_delivery` (after
//! STARTTLS) and `mtasts_mx_plan` (a whole MX list). RFC 8461 §4 and §5.

use std::ffi::c_char;

use mtasts_core::{Delivery, FailureReason, MxFailure, MxPlan, Verdict};

use crate::boundary::{
    CText, Handle, Tagged, arg_array, arg_handle, arg_opt_str, arg_out, arg_str, ffi_boundary,
    free_handle, handle, opt_ptr,
};
use crate::error::{Failure, mtasts_result};
use crate::policy::mtasts_resolution;
use crate::resolver::out_of_range;

/// Why an MX host fails MTA-STS: an RFC 8460 result type, a stable reason code and a detail
/// for people.
///
/// Either owned (made by `mtasts_mx_failure_new()`, freed with `mtasts_mx_failure_free()`) or
/// a borrowed view inside a verdict, delivery, plan, certificate check or probe report (valid
/// as long as that handle; never freed on its own). Immutable: thread-safe.
pub struct mtasts_mx_failure(Tagged<FailureData>);
handle!(mtasts_mx_failure, FailureData, 0x4d53_0005);

/// A failure with its strings ready for C.
pub struct FailureData {
    pub(crate) failure: MxFailure,
    result_type: CText,
    reason_code: CText,
    detail: CText,
}

impl FailureData {
    pub(crate) fn new(failure: MxFailure) -> FailureData {
        FailureData {
            result_type: CText::new(failure.result_type().as_str()),
            reason_code: CText::new(failure.reason_code()),
            detail: CText::new(failure.detail()),
            failure,
        }
    }
}

/// A borrowed failure view for a parent handle.
pub(crate) fn failure_view(failure: Option<&MxFailure>) -> Option<mtasts_mx_failure> {
    failure.map(|f| mtasts_mx_failure::borrowed(FailureData::new(f.clone())))
}

/// The pointer of an optional borrowed view: NULL for `None`.
pub(crate) fn view_ptr<H>(view: Option<&H>) -> *const H {
    view.map_or(std::ptr::null(), |v| v as *const H)
}

/// Makes a failure the caller observed itself with its own TLS library, to hand to
/// `mtasts_verdict_decide()`: `reason_code` is one of the stable codes (`"starttls-not-offered"`,
/// `"starttls-refused"`, `"tls-version-unsupported"`, `"tls-handshake-failed"`,
/// `"certificate-expired"`, `"certificate-not-yet-valid"`, `"certificate-not-trusted"`,
/// `"certificate-host-mismatch"`, `"certificate-no-san"`, `"certificate-bad-usage"`,
/// `"certificate-malformed"`, `"certificate-invalid"`, `"mx-mismatch"`); `detail` explains it
/// for people.
///
/// Ownership: the strings are borrowed (copied). On `MTASTS_OK`, `*failure_out` is a new handle
/// the caller owns and frees with `mtasts_mx_failure_free()`. NULL: no parameter may be NULL.
/// Returns `MTASTS_OK`, `MTASTS_NULL_PARAMETER`, `MTASTS_INVALID_PARAMETER` (not UTF-8, unknown
/// reason code) or `MTASTS_PANIC`. Thread-safe. RFC 8460 §4.3.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mtasts_mx_failure_new(
    reason_code: *const c_char,
    detail: *const c_char,
    failure_out: *mut *mut mtasts_mx_failure,
) -> mtasts_result {
    ffi_boundary!({
        // SAFETY: NULL or live pointers (caller's promise), checked here.
        let code = unsafe { arg_str(reason_code, "reason_code") }?;
        let detail = unsafe { arg_str(detail, "detail") }?;
        let out = arg_out(failure_out, "failure_out")?;
        let reason = FailureReason::from_code(code).ok_or_else(|| {
            Failure::new(
                mtasts_result::MTASTS_INVALID_PARAMETER,
                format!("{code:?} is not an MX failure reason code"),
            )
        })?;
        let failure = MxFailure::new(reason, detail);
        // SAFETY: checked by `arg_out`; writable (caller's promise).
        unsafe { out.write_handle(FailureData::new(failure)) };
        Ok(())
    })
}

/// Frees a failure made by `mtasts_mx_failure_new()`. NULL is a no-op. A borrowed view (from
/// a verdict, delivery, plan, check or probe report) is refused (left alone, an error logged).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mtasts_mx_failure_free(failure: *mut mtasts_mx_failure) {
    // SAFETY: NULL or a live handle (caller's promise).
    unsafe { free_handle(failure) }
}

/// The failure's three strings: the RFC 8460 result type (`"validation-failure"`,
/// `"certificate-expired"`, ...), the stable reason code (`"mx-mismatch"`, ...) and the
/// detail for people.
///
/// Ownership: NUL-terminated views valid as long as `failure` (and so as long as the handle
/// it is a view of). NULL: no parameter may be NULL. Returns `MTASTS_OK`,
/// `MTASTS_NULL_PARAMETER`, `MTASTS_INVALID_HANDLE` or `MTASTS_PANIC`. Thread-safe. RFC 8460
/// §4.3.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mtasts_mx_failure_strings(
    failure: *const mtasts_mx_failure,
    result_type_out: *mut *const c_char,
    reason_code_out: *mut *const c_char,
    detail_out: *mut *const c_char,
) -> mtasts_result {
    ffi_boundary!({
        // SAFETY: NULL or live pointers (caller's promise), checked here.
        let data = unsafe { arg_handle(failure, "failure") }?;
        let result_type = arg_out(result_type_out, "result_type_out")?;
        let reason_code = arg_out(reason_code_out, "reason_code_out")?;
        let detail = arg_out(detail_out, "detail_out")?;
        // SAFETY: checked by `arg_out`; writable (caller's promise).
        unsafe {
            result_type.write(data.result_type.ptr());
            reason_code.write(data.reason_code.ptr());
            detail.write(data.detail.ptr());
        }
        Ok(())
    })
}

/// What MTA-STS requires of one MX host, known before connecting.
#[allow(non_camel_case_types)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum mtasts_verdict_kind {
    /// No policy, or mode `none`: deliver as usual, record nothing (R-APPLY-3).
    MTASTS_VERDICT_NO_REQUIREMENT = 0,
    /// Mode `testing`: deliver as usual; record failures for TLS-RPT (R-APPLY-2).
    MTASTS_VERDICT_TESTING = 1,
    /// Mode `enforce`, the MX matches the policy: deliver only over STARTTLS, TLS 1.2+, SNI =
    /// the MX host, with a certificate valid for it (R-APPLY-1, R-CERT-1 to R-CERT-3).
    MTASTS_VERDICT_REQUIRE_TLS = 2,
    /// Mode `enforce`, the MX matches no pattern: do not use it; a temporary failure, try the
    /// next MX (R-APPLY-1).
    MTASTS_VERDICT_SKIP = 3,
}

/// What MTA-STS requires of one MX host (see `mtasts_verdict_kind`), from
/// `mtasts_verdict_for_mx()`, or a borrowed view inside an `mtasts_mx_plan`.
///
/// Immutable: thread-safe. Views returned by its getters live as long as the verdict.
pub struct mtasts_verdict(Tagged<VerdictData>);
handle!(mtasts_verdict, VerdictData, 0x4d53_0006);

/// A verdict with its strings and views ready for C.
pub struct VerdictData {
    verdict: Verdict,
    kind: mtasts_verdict_kind,
    name: CText,
    mx_host: Option<CText>,
    failure: Option<mtasts_mx_failure>,
}

impl VerdictData {
    fn new(verdict: Verdict) -> VerdictData {
        use mtasts_verdict_kind as K;
        let (kind, mx_host) = match &verdict {
            Verdict::NoRequirement => (K::MTASTS_VERDICT_NO_REQUIREMENT, None),
            Verdict::Testing { .. } => (K::MTASTS_VERDICT_TESTING, None),
            Verdict::RequireTls { mx_host } => (
                K::MTASTS_VERDICT_REQUIRE_TLS,
                Some(CText::new(mx_host.as_str())),
            ),
            // `Skip`, and anything a newer core adds: not usable is the safe reading.
            _ => (K::MTASTS_VERDICT_SKIP, None),
        };
        VerdictData {
            kind,
            name: CText::new(verdict.as_str()),
            mx_host,
            failure: failure_view(verdict.failure()),
            verdict,
        }
    }
}

/// The verdict for MX host `mx_host` under the resolution's policy (R-MX-1, R-MX-2,
/// R-APPLY-1 to R-APPLY-3): `MTASTS_VERDICT_NO_REQUIREMENT` without a policy or under `none`;
/// `_TESTING` under `testing`; under `enforce`, `_REQUIRE_TLS` when the host matches a policy
/// pattern and `_SKIP` when it does not. `mx_host` is the MX record's name (not a CNAME
/// target), any case, optional trailing dot; a name that is not a host name matches nothing.
/// For an implicit MX (no MX records), pass the domain itself.
///
/// Ownership: `resolution` and `mx_host` are borrowed. On `MTASTS_OK`, `*verdict_out` is a new
/// handle the caller owns and frees with `mtasts_verdict_free()`; it does not depend on
/// `resolution`. NULL: no parameter may be NULL. Returns `MTASTS_OK`, `MTASTS_NULL_PARAMETER`,
/// `MTASTS_INVALID_HANDLE`, `MTASTS_INVALID_PARAMETER` (not UTF-8), `MTASTS_CACHE` (whether a
/// policy applies cannot be told, source `MTASTS_SOURCE_CACHE_UNREADABLE`: defer the message)
/// or `MTASTS_PANIC`. Thread-safe. RFC 8461 §4.1, §5.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mtasts_verdict_for_mx(
    resolution: *const mtasts_resolution,
    mx_host: *const c_char,
    verdict_out: *mut *mut mtasts_verdict,
) -> mtasts_result {
    ffi_boundary!({
        // SAFETY: NULL or live pointers (caller's promise), checked here.
        let data = unsafe { arg_handle(resolution, "resolution") }?;
        let host = unsafe { arg_str(mx_host, "mx_host") }?;
        let out = arg_out(verdict_out, "verdict_out")?;
        // Never fail open: a resolution that cannot tell is MTASTS_CACHE.
        let verdict = Verdict::for_resolution(&data.resolution, host)?;
        // SAFETY: checked by `arg_out`; writable (caller's promise).
        unsafe { out.write_handle(VerdictData::new(verdict)) };
        Ok(())
    })
}

/// Frees a verdict made by `mtasts_verdict_for_mx()`. NULL is a no-op. A borrowed view (from
/// an MX plan) is refused (left alone, an error logged).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mtasts_verdict_free(verdict: *mut mtasts_verdict) {
    // SAFETY: NULL or a live handle (caller's promise).
    unsafe { free_handle(verdict) }
}

/// The verdict's kind and what follows from it: `*requires_tls_out` (verified TLS required:
/// `_REQUIRE_TLS`), `*may_use_out` (false only for `_SKIP`: do not connect to this MX) and
/// `*reports_failures_out` (failures with this MX go into TLS-RPT reports: `testing` and
/// `enforce`).
///
/// DANE (RFC 7672) takes precedence: for an MX with usable TLSA records, apply DANE and
/// ignore this verdict (R-APPLY-4).
///
/// NULL: no parameter may be NULL. Returns `MTASTS_OK`, `MTASTS_NULL_PARAMETER`,
/// `MTASTS_INVALID_HANDLE` or `MTASTS_PANIC`. Thread-safe. RFC 8461 §5.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mtasts_verdict_summary(
    verdict: *const mtasts_verdict,
    kind_out: *mut mtasts_verdict_kind,
    requires_tls_out: *mut bool,
    may_use_out: *mut bool,
    reports_failures_out: *mut bool,
) -> mtasts_result {
    ffi_boundary!({
        // SAFETY: NULL or live pointers (caller's promise), checked here.
        let data = unsafe { arg_handle(verdict, "verdict") }?;
        let kind = arg_out(kind_out, "kind_out")?;
        let requires_tls = arg_out(requires_tls_out, "requires_tls_out")?;
        let may_use = arg_out(may_use_out, "may_use_out")?;
        let reports = arg_out(reports_failures_out, "reports_failures_out")?;
        // SAFETY: checked by `arg_out`; writable (caller's promise).
        unsafe {
            kind.write(data.kind);
            requires_tls.write(data.verdict.requires_tls());
            may_use.write(data.verdict.may_use());
            reports.write(data.verdict.reports_failures());
        }
        Ok(())
    })
}

/// The verdict's strings: `*name_out` its stable name (`"no-requirement"`, `"testing"`,
/// `"require-tls"`, `"skip"`); `*mx_host_out` the normalised MX host to verify the
/// certificate against and send as SNI (for `_REQUIRE_TLS`; NULL otherwise).
///
/// Ownership: NUL-terminated views valid as long as `verdict`. NULL: no parameter may be
/// NULL. Returns `MTASTS_OK`, `MTASTS_NULL_PARAMETER`, `MTASTS_INVALID_HANDLE` or
/// `MTASTS_PANIC`. Thread-safe. RFC 8461 §4.2.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mtasts_verdict_strings(
    verdict: *const mtasts_verdict,
    name_out: *mut *const c_char,
    mx_host_out: *mut *const c_char,
) -> mtasts_result {
    ffi_boundary!({
        // SAFETY: NULL or live pointers (caller's promise), checked here.
        let data = unsafe { arg_handle(verdict, "verdict") }?;
        let name = arg_out(name_out, "name_out")?;
        let host = arg_out(mx_host_out, "mx_host_out")?;
        // SAFETY: checked by `arg_out`; writable (caller's promise).
        unsafe {
            name.write(data.name.ptr());
            host.write(opt_ptr(data.mx_host.as_ref()));
        }
        Ok(())
    })
}

/// The failure already known from the MX host name: `_SKIP`'s `mx-mismatch`, or under
/// `_TESTING` the `mx-mismatch` to report; `*failure_out` is set to NULL when there is none.
///
/// Ownership: a borrowed view valid as long as `verdict`; never free it. NULL: no parameter
/// may be NULL. Returns `MTASTS_OK`, `MTASTS_NULL_PARAMETER`, `MTASTS_INVALID_HANDLE` or
/// `MTASTS_PANIC`. Thread-safe. RFC 8460 §4.3.3.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mtasts_verdict_failure(
    verdict: *const mtasts_verdict,
    failure_out: *mut *const mtasts_mx_failure,
) -> mtasts_result {
    ffi_boundary!({
        // SAFETY: NULL or live pointers (caller's promise), checked here.
        let data = unsafe { arg_handle(verdict, "verdict") }?;
        let out = arg_out(failure_out, "failure_out")?;
        // SAFETY: checked by `arg_out`; writable (caller's promise).
        unsafe { out.write(view_ptr(data.failure.as_ref())) };
        Ok(())
    })
}

/// The final answer for one MX once the MTA has tried STARTTLS (R-APPLY-1 to R-APPLY-3).
///
/// Immutable: thread-safe.
pub struct mtasts_delivery(Tagged<DeliveryData>);
handle!(mtasts_delivery, DeliveryData, 0x4d53_0007);

/// A delivery decision with its failure view.
pub struct DeliveryData {
    deliver: bool,
    failure: Option<mtasts_mx_failure>,
}

/// Decides about one MX after STARTTLS: `tls_failure` is what went wrong with TLS (from
/// `mtasts_cert_check_result()`, `mtasts_probe_report_result()`, or
/// `mtasts_mx_failure_new()` for what the MTA's own TLS library saw), or NULL when STARTTLS
/// succeeded and the certificate was verified for the MX host.
///
/// `_NO_REQUIREMENT`: deliver, report nothing. `_TESTING`: deliver; report the MX-name failure
/// if any, else `tls_failure`. `_REQUIRE_TLS`: deliver when `tls_failure` is NULL, else do not
/// deliver (a temporary failure: try the next MX; when none is left, defer, never bounce).
/// `_SKIP`: do not deliver.
///
/// Ownership: `verdict` and `tls_failure` are borrowed (copied from). On `MTASTS_OK`,
/// `*delivery_out` is a new handle the caller owns and frees with `mtasts_delivery_free()`.
/// NULL: `tls_failure` may be NULL (no TLS failure); `verdict` and `delivery_out` must not be.
/// Returns `MTASTS_OK`, `MTASTS_NULL_PARAMETER`, `MTASTS_INVALID_HANDLE` or `MTASTS_PANIC`.
/// Thread-safe. RFC 8461 §5.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mtasts_verdict_decide(
    verdict: *const mtasts_verdict,
    tls_failure: *const mtasts_mx_failure,
    delivery_out: *mut *mut mtasts_delivery,
) -> mtasts_result {
    ffi_boundary!({
        // SAFETY: NULL or live pointers (caller's promise), checked here.
        let data = unsafe { arg_handle(verdict, "verdict") }?;
        let tls_failure = if tls_failure.is_null() {
            None
        } else {
            // SAFETY: as above.
            Some(
                unsafe { arg_handle(tls_failure, "tls_failure") }?
                    .failure
                    .clone(),
            )
        };
        let out = arg_out(delivery_out, "delivery_out")?;
        let delivery: Delivery = data.verdict.decide(tls_failure);
        let decided = DeliveryData {
            deliver: delivery.is_deliver(),
            failure: failure_view(delivery.failure()),
        };
        // SAFETY: checked by `arg_out`; writable (caller's promise).
        unsafe { out.write_handle(decided) };
        Ok(())
    })
}

/// Frees a delivery decision. NULL is a no-op.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mtasts_delivery_free(delivery: *mut mtasts_delivery) {
    // SAFETY: NULL or a live handle (caller's promise).
    unsafe { free_handle(delivery) }
}

/// The decision: `*deliver_out` true to deliver to this MX, false to try the next one (and
/// defer when none is left); `*failure_out` the failure to report through TLS-RPT (for either
/// answer), or NULL.
///
/// Ownership: `*failure_out` is a borrowed view valid as long as `delivery`; never free it.
/// NULL: no parameter may be NULL. Returns `MTASTS_OK`, `MTASTS_NULL_PARAMETER`,
/// `MTASTS_INVALID_HANDLE` or `MTASTS_PANIC`. Thread-safe. RFC 8461 §5, RFC 8460 §4.3.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mtasts_delivery_result(
    delivery: *const mtasts_delivery,
    deliver_out: *mut bool,
    failure_out: *mut *const mtasts_mx_failure,
) -> mtasts_result {
    ffi_boundary!({
        // SAFETY: NULL or live pointers (caller's promise), checked here.
        let data = unsafe { arg_handle(delivery, "delivery") }?;
        let deliver = arg_out(deliver_out, "deliver_out")?;
        let failure = arg_out(failure_out, "failure_out")?;
        // SAFETY: checked by `arg_out`; writable (caller's promise).
        unsafe {
            deliver.write(data.deliver);
            failure.write(view_ptr(data.failure.as_ref()));
        }
        Ok(())
    })
}

/// A recipient domain's MX list sorted out under its policy: the MX hosts that may be tried
/// (each with its verdict) and those that must not be used (each with its failure).
///
/// Immutable: thread-safe. Views returned by its getters live as long as the plan.
pub struct mtasts_mx_plan(Tagged<PlanData>);
handle!(mtasts_mx_plan, PlanData, 0x4d53_0008);

/// A plan with its strings and views ready for C.
pub struct PlanData {
    plan: MxPlan,
    usable: Vec<(CText, mtasts_verdict)>,
    skipped: Vec<(CText, mtasts_mx_failure)>,
}

/// Sorts out an MX list under the resolution's policy (R-MX-1 to R-MX-3, R-APPLY-1):
/// `hosts` are the MX host names of the domain in the MTA's priority order (lowest preference
/// first); `hosts_len` 0 means the domain has no MX records, so the domain itself is the
/// (implicit) MX host.
///
/// Ownership: everything is borrowed (copied). On `MTASTS_OK`, `*plan_out` is a new handle the
/// caller owns and frees with `mtasts_mx_plan_free()`. NULL: `hosts` may be NULL only when
/// `hosts_len` is 0; no element of `hosts` may be NULL; `resolution` and `plan_out` must not be
/// NULL. Returns `MTASTS_OK`, `MTASTS_NULL_PARAMETER`, `MTASTS_INVALID_HANDLE`,
/// `MTASTS_INVALID_PARAMETER` (a host is not UTF-8), `MTASTS_CACHE` (cannot tell, as for
/// `mtasts_verdict_for_mx()`) or `MTASTS_PANIC`. Thread-safe. RFC 8461
/// §4.1, §5; RFC 5321 §5.1.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mtasts_mx_plan_from_hosts(
    resolution: *const mtasts_resolution,
    hosts: *const *const c_char,
    hosts_len: usize,
    plan_out: *mut *mut mtasts_mx_plan,
) -> mtasts_result {
    ffi_boundary!({
        // SAFETY: NULL or live pointers (caller's promise), checked here.
        let data = unsafe { arg_handle(resolution, "resolution") }?;
        let list = unsafe { arg_array(hosts, hosts_len, "hosts") }?;
        let names = list
            .iter()
            .map(|host| {
                // SAFETY: each element is NULL or a NUL-terminated string (caller's promise).
                unsafe { arg_opt_str(*host, "hosts[i]") }?.ok_or_else(|| {
                    Failure::new(
                        mtasts_result::MTASTS_NULL_PARAMETER,
                        "an element of `hosts` is NULL",
                    )
                })
            })
            .collect::<Result<Vec<&str>, Failure>>()?;
        let out = arg_out(plan_out, "plan_out")?;
        let policy = data.resolution.applicable_policy()?;
        let plan = MxPlan::from_hosts(policy, data.resolution.domain(), &names);
        let planned = PlanData {
            usable: plan
                .usable
                .iter()
                .map(|u| {
                    let verdict = mtasts_verdict::borrowed(VerdictData::new(u.verdict.clone()));
                    (CText::new(&u.host), verdict)
                })
                .collect(),
            skipped: plan
                .skipped
                .iter()
                .map(|s| {
                    let failure = mtasts_mx_failure::borrowed(FailureData::new(s.failure.clone()));
                    (CText::new(&s.host), failure)
                })
                .collect(),
            plan,
        };
        // SAFETY: checked by `arg_out`; writable (caller's promise).
        unsafe { out.write_handle(planned) };
        Ok(())
    })
}

/// Frees an MX plan. NULL is a no-op. The views obtained from it become invalid.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mtasts_mx_plan_free(plan: *mut mtasts_mx_plan) {
    // SAFETY: NULL or a live handle (caller's promise).
    unsafe { free_handle(plan) }
}

/// The plan's summary: `*defer_out` true when the policy is `enforce` and no MX host may be
/// used (defer the message with a 4xx, never bounce it: R-APPLY-1); `*implicit_mx_out` true
/// when the list was empty and the domain itself was taken as the MX host (R-MX-3);
/// `*usable_count_out` and `*skipped_count_out` the lengths of the two lists.
///
/// NULL: no parameter may be NULL. Returns `MTASTS_OK`, `MTASTS_NULL_PARAMETER`,
/// `MTASTS_INVALID_HANDLE` or `MTASTS_PANIC`. Thread-safe. RFC 8461 §5.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mtasts_mx_plan_summary(
    plan: *const mtasts_mx_plan,
    defer_out: *mut bool,
    implicit_mx_out: *mut bool,
    usable_count_out: *mut usize,
    skipped_count_out: *mut usize,
) -> mtasts_result {
    ffi_boundary!({
        // SAFETY: NULL or live pointers (caller's promise), checked here.
        let data = unsafe { arg_handle(plan, "plan") }?;
        let defer = arg_out(defer_out, "defer_out")?;
        let implicit = arg_out(implicit_mx_out, "implicit_mx_out")?;
        let usable = arg_out(usable_count_out, "usable_count_out")?;
        let skipped = arg_out(skipped_count_out, "skipped_count_out")?;
        // SAFETY: checked by `arg_out`; writable (caller's promise).
        unsafe {
            defer.write(data.plan.defer);
            implicit.write(data.plan.implicit_mx);
            usable.write(data.usable.len());
            skipped.write(data.skipped.len());
        }
        Ok(())
    })
}

/// The usable MX host at `index` (below the usable count), in the order given, with its
/// verdict (`_NO_REQUIREMENT`, `_TESTING` or `_REQUIRE_TLS`; under `_REQUIRE_TLS` it still has
/// to pass STARTTLS and the certificate check: `mtasts_verdict_decide()`).
///
/// Ownership: `*host_out` (NUL-terminated, as given) and `*verdict_out` are borrowed views
/// valid as long as `plan`; never free them. NULL: no pointer parameter may be NULL. Returns
/// `MTASTS_OK`, `MTASTS_NULL_PARAMETER`, `MTASTS_INVALID_HANDLE`, `MTASTS_INDEX_OUT_OF_RANGE`
/// or `MTASTS_PANIC`. Thread-safe. RFC 8461 §5.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mtasts_mx_plan_usable(
    plan: *const mtasts_mx_plan,
    index: usize,
    host_out: *mut *const c_char,
    verdict_out: *mut *const mtasts_verdict,
) -> mtasts_result {
    ffi_boundary!({
        // SAFETY: NULL or live pointers (caller's promise), checked here.
        let data = unsafe { arg_handle(plan, "plan") }?;
        let host_out = arg_out(host_out, "host_out")?;
        let verdict_out = arg_out(verdict_out, "verdict_out")?;
        let (host, verdict) = data.usable.get(index).ok_or_else(|| out_of_range(index))?;
        // SAFETY: checked by `arg_out`; writable (caller's promise).
        unsafe {
            host_out.write(host.ptr());
            verdict_out.write(verdict as *const mtasts_verdict);
        }
        Ok(())
    })
}

/// The MX host at `index` (below the skipped count) that must not be used (`enforce` only),
/// with why (`validation-failure` / `mx-mismatch`; report it).
///
/// Ownership: `*host_out` (NUL-terminated, as given) and `*failure_out` are borrowed views
/// valid as long as `plan`; never free them. NULL: no pointer parameter may be NULL. Returns
/// `MTASTS_OK`, `MTASTS_NULL_PARAMETER`, `MTASTS_INVALID_HANDLE`, `MTASTS_INDEX_OUT_OF_RANGE`
/// or `MTASTS_PANIC`. Thread-safe. RFC 8461 §5 (R-APPLY-1).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mtasts_mx_plan_skipped(
    plan: *const mtasts_mx_plan,
    index: usize,
    host_out: *mut *const c_char,
    failure_out: *mut *const mtasts_mx_failure,
) -> mtasts_result {
    ffi_boundary!({
        // SAFETY: NULL or live pointers (caller's promise), checked here.
        let data = unsafe { arg_handle(plan, "plan") }?;
        let host_out = arg_out(host_out, "host_out")?;
        let failure_out = arg_out(failure_out, "failure_out")?;
        let (host, failure) = data.skipped.get(index).ok_or_else(|| out_of_range(index))?;
        // SAFETY: checked by `arg_out`; writable (caller's promise).
        unsafe {
            host_out.write(host.ptr());
            failure_out.write(failure as *const mtasts_mx_failure);
        }
        Ok(())
    })
}
