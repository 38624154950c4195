//! The vocabulary of MX failures (RFC 8460 §4.3, rules §6): why an MX host fails MTA-STS, as
//! a stable reason code with its TLS-RPT result type. Pure: the verdicts, the certificate
//! checks, the probe and TLS-RPT reporting all build on it.

use std::fmt;

use crate::error::ResultType;
use crate::policy::Policy;

/// Why an MX host fails MTA-STS, as a stable code with its RFC 8460 result type.
///
/// [`FailureReason::code`] is the reason code carried by [`MxFailure`]; it never changes once
/// released, so logs, C callers and Python callers may match on it.
///
/// ```rust
/// use mtasts_core::{FailureReason, ResultType};
///
/// assert_eq!(FailureReason::MxMismatch.code(), "mx-mismatch");
/// assert_eq!(FailureReason::MxMismatch.result_type(), ResultType::ValidationFailure);
/// assert_eq!(FailureReason::from_code("certificate-expired"), Some(FailureReason::CertificateExpired));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FailureReason {
    /// `mx-mismatch`: the MX host matches none of the policy's `mx` patterns (R-MX-1, R-MX-2),
    /// or is not a host name at all. `validation-failure` (rules §6).
    MxMismatch,
    /// `starttls-not-offered`: the MX did not advertise STARTTLS in its EHLO reply (or refused
    /// EHLO). `starttls-not-supported` (R-CERT-1).
    StarttlsNotOffered,
    /// `starttls-refused`: the MX advertised STARTTLS but answered the command with something
    /// other than 220. `starttls-not-supported` (R-CERT-1).
    StarttlsRefused,
    /// `tls-version-unsupported`: the MX offers no TLS version from 1.2 up. `validation-failure`
    /// (R-CERT-1).
    TlsVersionUnsupported,
    /// `tls-handshake-failed`: the TLS handshake failed for another reason (alert, bad record,
    /// deadline, connection closed). `validation-failure`.
    TlsHandshakeFailed,
    /// `certificate-expired`: a certificate of the chain is past its `notAfter` (R-CERT-2).
    /// `certificate-expired`.
    CertificateExpired,
    /// `certificate-not-yet-valid`: a certificate of the chain is before its `notBefore`
    /// (R-CERT-2). `certificate-expired`: RFC 8460 has no separate type for it.
    CertificateNotYetValid,
    /// `certificate-not-trusted`: the chain does not reach a trusted root (R-CERT-2), or a
    /// signature in it does not verify. `certificate-not-trusted`.
    CertificateNotTrusted,
    /// `certificate-host-mismatch`: no SAN DNS-ID of the leaf matches the MX host (R-CERT-3).
    /// `certificate-host-mismatch`.
    CertificateHostMismatch,
    /// `certificate-no-san`: the leaf has no SAN DNS-ID at all, so it names its host only in the
    /// subject CN, which is never used (R-CERT-3, S-60). `certificate-host-mismatch`.
    CertificateNoSan,
    /// `certificate-bad-usage`: the leaf may not be used for a TLS server (extended key usage
    /// without serverAuth, a CA certificate as leaf). `validation-failure`.
    CertificateBadUsage,
    /// `certificate-malformed`: a certificate of the chain cannot be parsed (bad DER, bad
    /// time, unsupported version or critical extension). `validation-failure`.
    CertificateMalformed,
    /// `certificate-invalid`: any other reason the chain was rejected (name constraints, path
    /// length, path too complex). `validation-failure`.
    CertificateInvalid,
}

impl FailureReason {
    /// Every reason, in the order declared.
    pub const ALL: [FailureReason; 13] = [
        FailureReason::MxMismatch,
        FailureReason::StarttlsNotOffered,
        FailureReason::StarttlsRefused,
        FailureReason::TlsVersionUnsupported,
        FailureReason::TlsHandshakeFailed,
        FailureReason::CertificateExpired,
        FailureReason::CertificateNotYetValid,
        FailureReason::CertificateNotTrusted,
        FailureReason::CertificateHostMismatch,
        FailureReason::CertificateNoSan,
        FailureReason::CertificateBadUsage,
        FailureReason::CertificateMalformed,
        FailureReason::CertificateInvalid,
    ];

    /// The stable reason code, e.g. `mx-mismatch`, `certificate-expired`.
    pub fn code(self) -> &'static str {
        match self {
            FailureReason::MxMismatch => "mx-mismatch",
            FailureReason::StarttlsNotOffered => "starttls-not-offered",
            FailureReason::StarttlsRefused => "starttls-refused",
            FailureReason::TlsVersionUnsupported => "tls-version-unsupported",
            FailureReason::TlsHandshakeFailed => "tls-handshake-failed",
            FailureReason::CertificateExpired => "certificate-expired",
            FailureReason::CertificateNotYetValid => "certificate-not-yet-valid",
            FailureReason::CertificateNotTrusted => "certificate-not-trusted",
            FailureReason::CertificateHostMismatch => "certificate-host-mismatch",
            FailureReason::CertificateNoSan => "certificate-no-san",
            FailureReason::CertificateBadUsage => "certificate-bad-usage",
            FailureReason::CertificateMalformed => "certificate-malformed",
            FailureReason::CertificateInvalid => "certificate-invalid",
        }
    }

    /// The RFC 8460 §4.3 result type a TLS-RPT report gives this failure (rules §6).
    pub fn result_type(self) -> ResultType {
        match self {
            // Rules §6: an MX outside the policy is `validation-failure` / `mx-mismatch`.
            FailureReason::MxMismatch => ResultType::ValidationFailure,
            FailureReason::StarttlsNotOffered | FailureReason::StarttlsRefused => {
                ResultType::StarttlsNotSupported
            }
            // RFC 8460 §4.3.1 has no type for a too old TLS version or a failed handshake.
            FailureReason::TlsVersionUnsupported | FailureReason::TlsHandshakeFailed => {
                ResultType::ValidationFailure
            }
            // RFC 8460 has no "not yet valid": outside the validity period is "expired".
            FailureReason::CertificateExpired | FailureReason::CertificateNotYetValid => {
                ResultType::CertificateExpired
            }
            FailureReason::CertificateNotTrusted => ResultType::CertificateNotTrusted,
            FailureReason::CertificateHostMismatch | FailureReason::CertificateNoSan => {
                ResultType::CertificateHostMismatch
            }
            FailureReason::CertificateBadUsage
            | FailureReason::CertificateMalformed
            | FailureReason::CertificateInvalid => ResultType::ValidationFailure,
        }
    }

    /// The reason with this code; `None` for an unknown code.
    pub fn from_code(code: &str) -> Option<FailureReason> {
        FailureReason::ALL.into_iter().find(|r| r.code() == code)
    }
}

impl fmt::Display for FailureReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// An MX host failing MTA-STS: the RFC 8460 result type, a stable reason code and a
/// human-readable detail (rules §6).
///
/// ```rust
/// use mtasts_core::{FailureReason, MxFailure};
///
/// let f = MxFailure::new(FailureReason::StarttlsNotOffered, "no STARTTLS in the EHLO reply");
/// assert_eq!(f.result_type().as_str(), "starttls-not-supported");
/// assert_eq!(f.reason_code(), "starttls-not-offered");
/// assert_eq!(f.to_string(), "starttls-not-supported (starttls-not-offered): no STARTTLS in the EHLO reply");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct MxFailure {
    reason: FailureReason,
    detail: String,
}

impl MxFailure {
    /// A failure for `reason`, explained by `detail`. Callers doing TLS themselves (OpenSSL,
    /// GnuTLS) build one for what they saw, e.g. [`FailureReason::StarttlsNotOffered`], and
    /// hand it to [`Verdict::decide`](crate::Verdict::decide).
    pub fn new(reason: FailureReason, detail: impl Into<String>) -> MxFailure {
        MxFailure {
            reason,
            detail: detail.into(),
        }
    }

    /// The MX host `host` matches none of the policy's patterns (R-MX-1, R-MX-2).
    pub(crate) fn mx_mismatch(host: &str, policy: &Policy) -> MxFailure {
        let patterns: Vec<&str> = policy.mx().iter().map(|p| p.as_str()).collect();
        MxFailure::new(
            FailureReason::MxMismatch,
            format!(
                "MX host {host:?} matches none of the policy's mx patterns ({})",
                patterns.join(", ")
            ),
        )
    }

    /// The reason.
    pub fn reason(&self) -> FailureReason {
        self.reason
    }

    /// The RFC 8460 result type to report.
    pub fn result_type(&self) -> ResultType {
        self.reason.result_type()
    }

    /// The stable reason code, e.g. `mx-mismatch` (see [`FailureReason::code`]).
    pub fn reason_code(&self) -> &'static str {
        self.reason.code()
    }

    /// What exactly went wrong, for people.
    pub fn detail(&self) -> &str {
        &self.detail
    }
}

impl fmt::Display for MxFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ({}): {}",
            self.result_type(),
            self.reason_code(),
            self.detail
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rules §6: each reason code has the RFC 8460 result type the rules give it.
    #[test]
    fn reason_codes_map_to_result_types() {
        use FailureReason as R;
        use ResultType as T;
        let cases: &[(R, &str, T)] = &[
            (R::MxMismatch, "mx-mismatch", T::ValidationFailure),
            (
                R::StarttlsNotOffered,
                "starttls-not-offered",
                T::StarttlsNotSupported,
            ),
            (
                R::StarttlsRefused,
                "starttls-refused",
                T::StarttlsNotSupported,
            ),
            (
                R::TlsVersionUnsupported,
                "tls-version-unsupported",
                T::ValidationFailure,
            ),
            (
                R::TlsHandshakeFailed,
                "tls-handshake-failed",
                T::ValidationFailure,
            ),
            (
                R::CertificateExpired,
                "certificate-expired",
                T::CertificateExpired,
            ),
            (
                R::CertificateNotYetValid,
                "certificate-not-yet-valid",
                T::CertificateExpired,
            ),
            (
                R::CertificateNotTrusted,
                "certificate-not-trusted",
                T::CertificateNotTrusted,
            ),
            (
                R::CertificateHostMismatch,
                "certificate-host-mismatch",
                T::CertificateHostMismatch,
            ),
            (
                R::CertificateNoSan,
                "certificate-no-san",
                T::CertificateHostMismatch,
            ),
            (
                R::CertificateBadUsage,
                "certificate-bad-usage",
                T::ValidationFailure,
            ),
            (
                R::CertificateMalformed,
                "certificate-malformed",
                T::ValidationFailure,
            ),
            (
                R::CertificateInvalid,
                "certificate-invalid",
                T::ValidationFailure,
            ),
        ];
        assert_eq!(cases.len(), FailureReason::ALL.len(), "every reason listed");
        for (reason, code, result_type) in cases {
            assert_eq!(reason.code(), *code);
            assert_eq!(reason.result_type(), *result_type, "{code}");
            assert_eq!(FailureReason::from_code(code), Some(*reason));
            assert_eq!(reason.to_string(), *code);
        }
        assert_eq!(FailureReason::from_code("mx_mismatch"), None);
    }
}
