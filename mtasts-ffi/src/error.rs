//! Result codes, the mapping from the core's `Error`, and the thread-local last error message.

use std::cell::RefCell;
use std::ffi::c_char;
use std::panic::{AssertUnwindSafe, catch_unwind};

use mtasts_core::Error;

/// The result of every fallible mtasts function. `MTASTS_OK` (0) is success; every other value
/// is an error whose message `mtasts_last_error()` returns.
///
/// Codes are grouped by family, and a number is never reused for another meaning:
/// - 0–99 glue: the call itself (parameters, handles, configuration, a caught panic);
/// - 100–199 DNS; 200–299 policy fetch; 300–399 syntax (domains, records, policies);
/// - 400–499 cache; 500–599 certificates; 600–699 TLS reporting (RFC 8460).
///
/// `mtasts_result_str()` gives a short static description of each code.
#[allow(non_camel_case_types)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum mtasts_result {
    /// Success.
    MTASTS_OK = 0,
    /// A pointer parameter that must not be NULL was NULL.
    MTASTS_NULL_PARAMETER = 1,
    /// A parameter is not usable: a string that is not UTF-8, a value out of its range, an
    /// unknown name.
    MTASTS_INVALID_PARAMETER = 2,
    /// mtasts panicked (a bug); the panic was caught and the call had no effect.
    MTASTS_PANIC = 3,
    /// A handle parameter is not a live handle of the expected type (another type's handle,
    /// a freed one, or a borrowed view passed to a `_free` function).
    MTASTS_INVALID_HANDLE = 4,
    /// An index is not below the count of the list it indexes.
    MTASTS_INDEX_OUT_OF_RANGE = 5,
    /// The resolution has no policy, so it has no policy field to return.
    MTASTS_NO_POLICY = 6,
    /// The configuration cannot be used (no readable resolv.conf, unreadable trust-root file,
    /// bad cache location, bad option value).
    MTASTS_CONFIG = 7,
    /// An error the library does not classify further (from a newer core).
    MTASTS_ERROR = 8,
    /// DNS: a query failed temporarily (SERVFAIL, REFUSED, timeout, network error); never
    /// "no record" (RFC 8461 §3.1, R-DISC-7).
    MTASTS_DNS_TEMPORARY = 100,
    /// Fetch: the policy could not be retrieved (status, redirect, size, deadline,
    /// connection; RFC 8461 §3.3). TLS-RPT `sts-policy-fetch-error`.
    MTASTS_POLICY_FETCH = 200,
    /// Fetch: the policy host's certificate was rejected (RFC 8461 §3.3). TLS-RPT
    /// `sts-webpki-invalid`.
    MTASTS_POLICY_CERTIFICATE = 201,
    /// Fetch: a fetch for this record id failed recently and is not retried yet (R-FETCH-10).
    MTASTS_FETCH_BACKOFF = 202,
    /// Syntax: a domain or host name is not usable (empty, an address, not a valid IDNA name).
    MTASTS_INVALID_DOMAIN = 300,
    /// Syntax: the `_mta-sts` TXT record is invalid, or there are several (RFC 8461 §3.1).
    MTASTS_INVALID_RECORD = 301,
    /// Syntax: the policy file is invalid (RFC 8461 §3.2). TLS-RPT `sts-policy-invalid`.
    MTASTS_INVALID_POLICY = 302,
    /// Syntax: an `mx` pattern cannot be used (RFC 8461 §3.2, R-POL-7).
    MTASTS_INVALID_MX_PATTERN = 303,
    /// Cache: the policy cache failed (I/O, corruption, connection).
    MTASTS_CACHE = 400,
    /// Certificates: a certificate chain cannot be read (empty, bad PEM, not DER). A chain
    /// that is read but rejected is not an error: see `mtasts_cert_check_result()`.
    MTASTS_INVALID_CHAIN = 500,
    /// TLS reporting: a session cannot be recorded as given (an unknown result type, an
    /// address that is not an IP address, a host name that is not one, a field over its
    /// limit, a day that is not `YYYY-MM-DD`, or a resolution whose policy cannot be told);
    /// nothing was recorded (R-RPT-3, R-RPT-4).
    MTASTS_INVALID_SESSION = 600,
    /// TLS reporting: the report store (beside the policy cache) cannot be opened, read or
    /// written; the session was not counted.
    MTASTS_REPORT_STORE = 601,
}

impl mtasts_result {
    /// Every code, in number order.
    pub const ALL: [mtasts_result; 21] = [
        mtasts_result::MTASTS_OK,
        mtasts_result::MTASTS_NULL_PARAMETER,
        mtasts_result::MTASTS_INVALID_PARAMETER,
        mtasts_result::MTASTS_PANIC,
        mtasts_result::MTASTS_INVALID_HANDLE,
        mtasts_result::MTASTS_INDEX_OUT_OF_RANGE,
        mtasts_result::MTASTS_NO_POLICY,
        mtasts_result::MTASTS_CONFIG,
        mtasts_result::MTASTS_ERROR,
        mtasts_result::MTASTS_DNS_TEMPORARY,
        mtasts_result::MTASTS_POLICY_FETCH,
        mtasts_result::MTASTS_POLICY_CERTIFICATE,
        mtasts_result::MTASTS_FETCH_BACKOFF,
        mtasts_result::MTASTS_INVALID_DOMAIN,
        mtasts_result::MTASTS_INVALID_RECORD,
        mtasts_result::MTASTS_INVALID_POLICY,
        mtasts_result::MTASTS_INVALID_MX_PATTERN,
        mtasts_result::MTASTS_CACHE,
        mtasts_result::MTASTS_INVALID_CHAIN,
        mtasts_result::MTASTS_INVALID_SESSION,
        mtasts_result::MTASTS_REPORT_STORE,
    ];

    /// The code with this number, if there is one.
    pub fn from_u32(code: u32) -> Option<mtasts_result> {
        mtasts_result::ALL.into_iter().find(|c| *c as u32 == code)
    }

    /// The code of a core error.
    pub fn for_error(error: &Error) -> mtasts_result {
        use mtasts_result as R;
        match error {
            Error::InvalidDomain { .. } => R::MTASTS_INVALID_DOMAIN,
            Error::InvalidRecord { .. } => R::MTASTS_INVALID_RECORD,
            Error::InvalidPolicy { .. } => R::MTASTS_INVALID_POLICY,
            Error::InvalidMxPattern { .. } => R::MTASTS_INVALID_MX_PATTERN,
            Error::DnsTemporary { .. } => R::MTASTS_DNS_TEMPORARY,
            Error::PolicyFetch { .. } => R::MTASTS_POLICY_FETCH,
            Error::PolicyCertificate { .. } => R::MTASTS_POLICY_CERTIFICATE,
            Error::FetchBackoff { .. } => R::MTASTS_FETCH_BACKOFF,
            Error::Config { .. } => R::MTASTS_CONFIG,
            Error::Cache { .. } => R::MTASTS_CACHE,
            Error::InvalidChain { .. } => R::MTASTS_INVALID_CHAIN,
            Error::InvalidSession(_) => R::MTASTS_INVALID_SESSION,
            Error::ReportStore { .. } => R::MTASTS_REPORT_STORE,
            _ => R::MTASTS_ERROR,
        }
    }

    /// The static description of the code, NUL-terminated.
    fn description(self) -> &'static std::ffi::CStr {
        use mtasts_result as R;
        match self {
            R::MTASTS_OK => c"success",
            R::MTASTS_NULL_PARAMETER => c"a required pointer parameter is NULL",
            R::MTASTS_INVALID_PARAMETER => c"a parameter is not valid (not UTF-8, out of range)",
            R::MTASTS_PANIC => c"internal error: mtasts panicked (a bug; the call had no effect)",
            R::MTASTS_INVALID_HANDLE => c"not a live handle of the expected type",
            R::MTASTS_INDEX_OUT_OF_RANGE => c"index out of range",
            R::MTASTS_NO_POLICY => c"the resolution has no policy",
            R::MTASTS_CONFIG => c"the configuration cannot be used",
            R::MTASTS_ERROR => c"unclassified error",
            R::MTASTS_DNS_TEMPORARY => c"temporary DNS failure",
            R::MTASTS_POLICY_FETCH => c"the policy could not be fetched",
            R::MTASTS_POLICY_CERTIFICATE => c"the policy host's certificate was rejected",
            R::MTASTS_FETCH_BACKOFF => c"the policy fetch failed recently and is not retried yet",
            R::MTASTS_INVALID_DOMAIN => c"invalid domain or host name",
            R::MTASTS_INVALID_RECORD => c"invalid _mta-sts TXT record",
            R::MTASTS_INVALID_POLICY => c"invalid policy",
            R::MTASTS_INVALID_MX_PATTERN => c"unusable mx pattern",
            R::MTASTS_CACHE => c"policy cache failure",
            R::MTASTS_INVALID_CHAIN => c"the certificate chain cannot be read",
            R::MTASTS_INVALID_SESSION => c"the TLS-RPT session cannot be recorded as given",
            R::MTASTS_REPORT_STORE => c"the TLS-RPT report store failed",
        }
    }
}

/// A failed call: the code returned and the message kept as the thread's last error.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) code: mtasts_result,
    pub(crate) message: String,
}

impl Failure {
    pub(crate) fn new(code: mtasts_result, message: impl Into<String>) -> Failure {
        Failure {
            code,
            message: message.into(),
        }
    }
}

impl From<Error> for Failure {
    fn from(error: Error) -> Failure {
        Failure::new(mtasts_result::for_error(&error), error.to_string())
    }
}

thread_local! {
    /// The message of the last call on this thread that did not return `MTASTS_OK`.
    static LAST_ERROR: RefCell<String> = const { RefCell::new(String::new()) };
}

/// Keeps `message` as this thread's last error.
pub(crate) fn set_last_error(message: &str) {
    // `try_with`: during thread teardown the slot may be gone; the message is then dropped.
    let _ = LAST_ERROR.try_with(|last| {
        let mut last = last.borrow_mut();
        last.clear();
        last.push_str(message);
    });
}

/// A short static description of a result code, e.g. `"temporary DNS failure"` for
/// `MTASTS_DNS_TEMPORARY`.
///
/// Returns a NUL-terminated string valid for the life of the process (never free it), or
/// NULL for a number that is not an mtasts_result code.
///
/// Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn mtasts_result_str(code: u32) -> *const c_char {
    run_quiet(std::ptr::null(), || {
        mtasts_result::from_u32(code).map_or(std::ptr::null(), |c| c.description().as_ptr())
    })
}

/// Copies the message of the last call on this thread that did not return `MTASTS_OK` into
/// `buf`, with snprintf semantics.
///
/// At most `len - 1` bytes of the message are written, followed by a NUL (nothing is written
/// when `len` is 0). `*needed_out` is set to the full length of the message in bytes, without
/// the NUL: the message was cut when `*needed_out >= len`; call again with a buffer of
/// `*needed_out + 1` bytes. When no call has failed on this thread yet, the message is empty.
/// Calls that succeed leave the message unchanged (like `errno`), and so does this call.
///
/// Ownership: `buf` is the caller's, written only. NULL: `buf` may be NULL only when `len` is 0
/// (to ask for the length); `needed_out` must not be NULL. Returns `MTASTS_OK` or
/// `MTASTS_NULL_PARAMETER`.
///
/// Thread-safe: each thread has its own last error.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mtasts_last_error(
    buf: *mut c_char,
    len: usize,
    needed_out: *mut usize,
) -> mtasts_result {
    if needed_out.is_null() || (buf.is_null() && len > 0) {
        // Reported by code only: setting the message would lose the one asked for.
        return mtasts_result::MTASTS_NULL_PARAMETER;
    }
    run_quiet(mtasts_result::MTASTS_PANIC, || {
        let needed = LAST_ERROR
            .try_with(|last| {
                let last = last.borrow();
                let message = last.as_bytes();
                if len > 0 {
                    let n = message.len().min(len - 1);
                    // SAFETY: `buf` is non-NULL with `len` writable bytes (caller's promise);
                    // `n + 1 <= len`.
                    unsafe {
                        std::ptr::copy_nonoverlapping(message.as_ptr(), buf.cast::<u8>(), n);
                        buf.add(n).write(0);
                    }
                }
                message.len()
            })
            .unwrap_or(0);
        // SAFETY: checked non-NULL above; writable (caller's promise).
        unsafe { needed_out.write(needed) };
        mtasts_result::MTASTS_OK
    })
}

/// Runs a function that returns no result code (`_free`, the static-string getters): a panic
/// is caught and `fallback` returned instead.
pub(crate) fn run_quiet<T>(fallback: T, body: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(body)).unwrap_or(fallback)
}

/// `MTASTS_INDEX_OUT_OF_RANGE` for `index`.
pub(crate) fn out_of_range(index: usize) -> Failure {
    Failure::new(
        mtasts_result::MTASTS_INDEX_OUT_OF_RANGE,
        format!("index {index} is out of range"),
    )
}
