//! `mtasts_cert_verifier` and `mtasts_cert_check`: MX certificate chain checks (RFC 8461 §4.2;
//! R-CERT-2, R-CERT-3).

use std::ffi::c_char;
use std::time::SystemTime;

use mtasts_core::{CertCheck, CertVerifier, CertificateDer, TrustRoots};

use crate::boundary::{
    Tagged, arg_array, arg_bytes, arg_handle, arg_out, arg_str, ffi_boundary, free_handle, handle,
};
use crate::error::{Failure, mtasts_result};
use crate::verdict::{failure_view, mtasts_mx_failure, view_ptr};

/// Checks MX certificate chains against a set of trust roots.
///
/// Build it once (loading the system store takes milliseconds) and share it: every function
/// taking a `const mtasts_cert_verifier *` may be called from any thread at once.
pub struct mtasts_cert_verifier(Tagged<CertVerifier>);
handle!(mtasts_cert_verifier, CertVerifier, 0x4d53_0009);

/// The outcome of a certificate check: valid for the MX host, or a failure saying why not.
///
/// Immutable: thread-safe.
pub struct mtasts_cert_check(Tagged<CheckData>);
handle!(mtasts_cert_check, CheckData, 0x4d53_000a);

/// A check with its failure view.
pub struct CheckData {
    valid: bool,
    failure: Option<mtasts_mx_failure>,
}

impl CheckData {
    fn new(check: &CertCheck) -> CheckData {
        CheckData {
            valid: check.is_valid(),
            failure: failure_view(check.failure()),
        }
    }
}

/// Creates a verifier trusting `roots`: `"system"` (the operating system's store),
/// `"bundled"` (the Mozilla roots compiled into the library) or the path of a PEM file.
///
/// Ownership: `roots` is borrowed. On `MTASTS_OK`, `*verifier_out` is a new handle the caller
/// owns and frees with `mtasts_cert_verifier_free()`. NULL: no parameter may be NULL. Returns
/// `MTASTS_OK`, `MTASTS_NULL_PARAMETER`, `MTASTS_INVALID_PARAMETER` (not UTF-8, empty),
/// `MTASTS_CONFIG` (the roots cannot be loaded, or none is usable) or `MTASTS_PANIC`.
/// Thread-safe. RFC 8461 §4.2 (R-CERT-2).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mtasts_cert_verifier_new(
    roots: *const c_char,
    verifier_out: *mut *mut mtasts_cert_verifier,
) -> mtasts_result {
    ffi_boundary!({
        // SAFETY: NULL or live pointers (caller's promise), checked here.
        let roots = unsafe { arg_str(roots, "roots") }?;
        let out = arg_out(verifier_out, "verifier_out")?;
        if roots.is_empty() {
            return Err(Failure::new(
                mtasts_result::MTASTS_INVALID_PARAMETER,
                "roots is empty",
            ));
        }
        let verifier = CertVerifier::new(&TrustRoots::from_setting(roots))?;
        // SAFETY: checked by `arg_out`; writable (caller's promise).
        unsafe { out.write_handle(verifier) };
        Ok(())
    })
}

/// Creates a verifier trusting the certificates of a PEM buffer (one or more `CERTIFICATE`
/// blocks).
///
/// Ownership: the buffer is borrowed (copied). On `MTASTS_OK`, `*verifier_out` is a new handle
/// the caller owns and frees with `mtasts_cert_verifier_free()`. NULL: `pem` may be NULL only
/// when `pem_len` is 0; `verifier_out` must not be NULL. Returns `MTASTS_OK`,
/// `MTASTS_NULL_PARAMETER`, `MTASTS_CONFIG` (no usable certificate in the buffer) or
/// `MTASTS_PANIC`. Thread-safe. RFC 8461 §4.2 (R-CERT-2).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mtasts_cert_verifier_new_from_pem(
    pem: *const u8,
    pem_len: usize,
    verifier_out: *mut *mut mtasts_cert_verifier,
) -> mtasts_result {
    ffi_boundary!({
        // SAFETY: NULL or live pointers (caller's promise), checked here.
        let pem = unsafe { arg_bytes(pem, pem_len, "pem") }?;
        let out = arg_out(verifier_out, "verifier_out")?;
        let verifier = CertVerifier::from_pem_roots(pem)?;
        // SAFETY: checked by `arg_out`; writable (caller's promise).
        unsafe { out.write_handle(verifier) };
        Ok(())
    })
}

/// Frees a verifier. NULL is a no-op. No other thread may be using it.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mtasts_cert_verifier_free(verifier: *mut mtasts_cert_verifier) {
    // SAFETY: NULL or a live handle (caller's promise).
    unsafe { free_handle(verifier) }
}

/// The time a check is made at: `at_unix` seconds since the epoch, or now for 0.
fn check_time(at_unix: u64) -> Result<SystemTime, Failure> {
    if at_unix == 0 {
        return Ok(SystemTime::now());
    }
    mtasts_core::from_unix_seconds(at_unix).map_err(|e| {
        Failure::new(
            mtasts_result::MTASTS_INVALID_PARAMETER,
            format!("at_unix: {e}"),
        )
    })
}

/// Checks a certificate chain for MX host `mx_host`: the chain as an array of DER
/// certificates, leaf first (then intermediates in any order; a root may be included), as an
/// MTA's TLS library hands it over (OpenSSL's `SSL_get0_verified_chain`/`i2d_X509`, GnuTLS's
/// `gnutls_certificate_get_peers`).
///
/// The chain must reach a trusted root, every certificate must be valid at `at_unix` (seconds
/// since the epoch; 0 = now), and a SAN DNS-ID of the leaf must match `mx_host` (no CN
/// fallback; `*` only as the whole left-most label). A rejected chain is not an error: the
/// check says why (`mtasts_cert_check_result()`).
///
/// Ownership: everything is borrowed. On `MTASTS_OK`, `*check_out` is a new handle the caller
/// owns and frees with `mtasts_cert_check_free()`. NULL: `certs` and `cert_lens` may be NULL
/// only when `count` is 0; no certificate pointer may be NULL; `verifier`, `mx_host` and
/// `check_out` must not be NULL. Returns `MTASTS_OK`, `MTASTS_NULL_PARAMETER`,
/// `MTASTS_INVALID_HANDLE`, `MTASTS_INVALID_PARAMETER` (not UTF-8, or `at_unix` after
/// 9999-12-31), `MTASTS_INVALID_DOMAIN` (`mx_host` is not a host name), `MTASTS_INVALID_CHAIN`
/// (no certificate) or `MTASTS_PANIC`.
/// Thread-safe. RFC 8461 §4.2 (R-CERT-2, R-CERT-3), RFC 6125.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mtasts_cert_verifier_check_der(
    verifier: *const mtasts_cert_verifier,
    certs: *const *const u8,
    cert_lens: *const usize,
    count: usize,
    mx_host: *const c_char,
    at_unix: u64,
    check_out: *mut *mut mtasts_cert_check,
) -> mtasts_result {
    ffi_boundary!({
        // SAFETY: NULL or live pointers (caller's promise), checked here.
        let verifier = unsafe { arg_handle(verifier, "verifier") }?;
        let certs = unsafe { arg_array(certs, count, "certs") }?;
        let lens = unsafe { arg_array(cert_lens, count, "cert_lens") }?;
        let host = unsafe { arg_str(mx_host, "mx_host") }?;
        let out = arg_out(check_out, "check_out")?;
        let chain = certs
            .iter()
            .zip(lens)
            .map(|(cert, len)| {
                if cert.is_null() {
                    return Err(Failure::new(
                        mtasts_result::MTASTS_NULL_PARAMETER,
                        "an element of `certs` is NULL",
                    ));
                }
                // SAFETY: each certificate points to `len` readable bytes (caller's promise).
                let der = unsafe { arg_bytes(*cert, *len, "certs[i]") }?;
                Ok(CertificateDer::from(der))
            })
            .collect::<Result<Vec<_>, Failure>>()?;
        let check = verifier.check(&chain, host, check_time(at_unix)?)?;
        // SAFETY: checked by `arg_out`; writable (caller's promise).
        unsafe { out.write_handle(CheckData::new(&check)) };
        Ok(())
    })
}

/// Checks an encoded certificate chain for MX host `mx_host`: PEM text (one or more
/// `CERTIFICATE` blocks, leaf first; other blocks ignored) or concatenated DER certificates.
/// Otherwise as `mtasts_cert_verifier_check_der()`.
///
/// Ownership: everything is borrowed. On `MTASTS_OK`, `*check_out` is a new handle the caller
/// owns and frees with `mtasts_cert_check_free()`. NULL: `chain` may be NULL only when
/// `chain_len` is 0; `verifier`, `mx_host` and `check_out` must not be NULL. Returns
/// `MTASTS_OK`, `MTASTS_NULL_PARAMETER`, `MTASTS_INVALID_HANDLE`, `MTASTS_INVALID_PARAMETER`
/// (not UTF-8, or `at_unix` after 9999-12-31), `MTASTS_INVALID_DOMAIN`, `MTASTS_INVALID_CHAIN`
/// (empty, bad PEM, not DER) or `MTASTS_PANIC`. Thread-safe. RFC 8461 §4.2 (R-CERT-2, R-CERT-3).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mtasts_cert_verifier_check_encoded(
    verifier: *const mtasts_cert_verifier,
    chain: *const u8,
    chain_len: usize,
    mx_host: *const c_char,
    at_unix: u64,
    check_out: *mut *mut mtasts_cert_check,
) -> mtasts_result {
    ffi_boundary!({
        // SAFETY: NULL or live pointers (caller's promise), checked here.
        let verifier = unsafe { arg_handle(verifier, "verifier") }?;
        let chain = unsafe { arg_bytes(chain, chain_len, "chain") }?;
        let host = unsafe { arg_str(mx_host, "mx_host") }?;
        let out = arg_out(check_out, "check_out")?;
        let check = verifier.check_encoded(chain, host, check_time(at_unix)?)?;
        // SAFETY: checked by `arg_out`; writable (caller's promise).
        unsafe { out.write_handle(CheckData::new(&check)) };
        Ok(())
    })
}

/// Frees a certificate check. NULL is a no-op.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mtasts_cert_check_free(check: *mut mtasts_cert_check) {
    // SAFETY: NULL or a live handle (caller's promise).
    unsafe { free_handle(check) }
}

/// The outcome of a check: `*valid_out` true when the chain is acceptable for the MX host;
/// `*failure_out` why not (`certificate-expired`, `certificate-not-trusted`,
/// `certificate-host-mismatch`, `validation-failure`, with a reason code), or NULL when valid.
/// Hand the failure to `mtasts_verdict_decide()`.
///
/// Ownership: `*failure_out` is a borrowed view valid as long as `check`; never free it. NULL:
/// no parameter may be NULL. Returns `MTASTS_OK`, `MTASTS_NULL_PARAMETER`,
/// `MTASTS_INVALID_HANDLE` or `MTASTS_PANIC`. Thread-safe. RFC 8460 §4.3.1.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mtasts_cert_check_result(
    check: *const mtasts_cert_check,
    valid_out: *mut bool,
    failure_out: *mut *const mtasts_mx_failure,
) -> mtasts_result {
    ffi_boundary!({
        // SAFETY: NULL or live pointers (caller's promise), checked here.
        let data = unsafe { arg_handle(check, "check") }?;
        let valid = arg_out(valid_out, "valid_out")?;
        let failure = arg_out(failure_out, "failure_out")?;
        // SAFETY: checked by `arg_out`; writable (caller's promise).
        unsafe {
            valid.write(data.valid);
            failure.write(view_ptr(data.failure.as_ref()));
        }
        Ok(())
    })
}
