//! What a sending MTA must do for each MX host under a policy (RFC 8461 §4 and §5; rules
//! R-MX-1 to R-MX-3 and R-APPLY-1 to R-APPLY-4).
//!
//! Two steps, because the certificate is only known once the MTA has connected:
//!
//! 1. Before connecting, [`Verdict::for_mx`] (one MX) or [`MxPlan::new`] (the whole MX list)
//!    says, from the policy and the MX host name alone, whether the MX may be used and under
//!    which TLS requirement. The policy pattern decides before any certificate (S-62).
//! 2. After STARTTLS, the MTA checks the certificate it got (with
//!    [`CertVerifier::check`](crate::CertVerifier::check)) or notes that STARTTLS was missing,
//!    and [`Verdict::decide`] gives the final answer for this MX: deliver (perhaps recording a
//!    failure for TLS-RPT), or do not deliver and try the next MX.
//!
//! **DANE** (R-APPLY-4, RFC 8461 §2): where DANE (RFC 7672) applies to an MX — the MTA found
//! a usable, DNSSEC-validated TLSA RRset for it — DANE takes precedence and MTA-STS is ignored
//! for that MX. mtasts does no DANE itself: the caller checks DANE first and, for a
//! DANE-protected MX, does not call [`Verdict::decide`] (it still may use the verdict's
//! [`Verdict::requires_tls`] to log that MTA-STS would also have required TLS).

use std::fmt;

use crate::dns::MxRecord;
use crate::domain::Domain;
use crate::error::ResultType;
use crate::policy::{Mode, Policy};
use crate::resolver::Resolution;

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
    /// hand it to [`Verdict::decide`].
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

/// What MTA-STS requires of one MX host, known before connecting (R-APPLY-1 to R-APPLY-3).
///
/// ```rust
/// use mtasts_core::{Policy, Verdict};
///
/// let policy = Policy::parse("version: STSv1\nmode: enforce\nmx: mail.example.com\nmax_age: 86400\n")?;
/// match Verdict::for_mx(Some(&policy), "MAIL.Example.COM.") {
///     Verdict::RequireTls { mx_host } => assert_eq!(mx_host.as_str(), "mail.example.com"),
///     other => panic!("{other:?}"),
/// }
/// let skip = Verdict::for_mx(Some(&policy), "evil.com");
/// assert_eq!(skip.failure().map(|f| f.reason_code()), Some("mx-mismatch"));
/// assert!(!skip.may_use());
/// assert_eq!(Verdict::for_mx(None, "anything"), Verdict::NoRequirement);
/// # Ok::<(), mtasts_core::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Verdict {
    /// No policy, or mode `none`: MTA-STS asks nothing; deliver as usual and record nothing
    /// (R-APPLY-3, S-64).
    NoRequirement,
    /// Mode `testing`: deliver as usual, whatever happens (R-APPLY-2). `would_fail` is the
    /// failure already known from the MX name (`mx-mismatch`); record it for TLS-RPT. The MTA
    /// should still try STARTTLS and check the certificate as for `enforce`, and record what
    /// fails ([`Verdict::decide`] does that bookkeeping).
    Testing {
        /// The MX pattern failure, if the host matches no pattern.
        would_fail: Option<MxFailure>,
    },
    /// Mode `enforce`, the MX matches the policy (R-APPLY-1, R-CERT-1 to R-CERT-3): deliver
    /// only over STARTTLS, TLS 1.2 or newer, SNI = `mx_host`, with a certificate chaining to a
    /// trusted root, unexpired, with a SAN DNS-ID matching `mx_host`. Anything less: do not
    /// deliver to this MX (a temporary failure), try the next.
    RequireTls {
        /// The MX host name, normalised: verify the certificate against it and send it as SNI.
        mx_host: Domain,
    },
    /// Mode `enforce`, the MX matches no pattern (or is not a host name): do not use this MX,
    /// count it as a temporary failure and try the next (R-APPLY-1; S-53 to S-55, S-62).
    Skip {
        /// `validation-failure` / `mx-mismatch`.
        failure: MxFailure,
    },
}

impl Verdict {
    /// The verdict for MX host `mx_host` under `policy` (`None`: the domain has no policy).
    ///
    /// `mx_host` is the MX record's exchange name, not a CNAME target (R-MX-1); it is
    /// normalised with [`Domain::new`] (case, trailing dot, U-labels). A name that is not a
    /// host name matches no pattern. For an implicit MX (R-MX-3, no MX records) pass the
    /// recipient domain itself, or use [`MxPlan::new`].
    pub fn for_mx(policy: Option<&Policy>, mx_host: &str) -> Verdict {
        let Some(policy) = policy else {
            return Verdict::NoRequirement; // R-APPLY-3
        };
        // R-MX-1, R-MX-2: an invalid host name is treated as not matching.
        let host = Domain::new(mx_host)
            .ok()
            .filter(|host| policy.matches_domain(host));
        match (policy.mode(), host) {
            (Mode::None, _) => Verdict::NoRequirement, // R-APPLY-3, R-CACHE-4
            (Mode::Testing, Some(_)) => Verdict::Testing { would_fail: None },
            (Mode::Testing, None) => Verdict::Testing {
                would_fail: Some(MxFailure::mx_mismatch(mx_host, policy)),
            },
            (Mode::Enforce, Some(mx_host)) => Verdict::RequireTls { mx_host },
            (Mode::Enforce, None) => Verdict::Skip {
                failure: MxFailure::mx_mismatch(mx_host, policy),
            },
        }
    }

    /// The verdict for MX host `mx_host` under the policy of `resolution`
    /// ([`Verdict::for_mx`] with [`Resolution::applicable_policy`]).
    ///
    /// # Errors
    /// The resolution's [`Error::Cache`](crate::Error::Cache) when whether a policy applies
    /// cannot be told ([`Source::CacheUnreadable`](crate::Source::CacheUnreadable)): defer the
    /// message, never treat the domain as having no policy.
    pub fn for_resolution(resolution: &Resolution, mx_host: &str) -> crate::Result<Verdict> {
        Ok(Verdict::for_mx(resolution.applicable_policy()?, mx_host))
    }

    /// True when MTA-STS requires verified TLS for this MX ([`Verdict::RequireTls`]).
    ///
    /// R-APPLY-4: a caller doing DANE checks DANE first; for an MX where DANE applies it
    /// ignores this verdict altogether (DANE's requirements replace MTA-STS's).
    pub fn requires_tls(&self) -> bool {
        matches!(self, Verdict::RequireTls { .. })
    }

    /// False only for [`Verdict::Skip`]: the MX must not be used at all.
    pub fn may_use(&self) -> bool {
        !matches!(self, Verdict::Skip { .. })
    }

    /// True when failures with this MX are to be reported through TLS-RPT: mode `testing` or
    /// `enforce` (RFC 8460 reports are about a policy in effect; none for `none`).
    pub fn reports_failures(&self) -> bool {
        !matches!(self, Verdict::NoRequirement)
    }

    /// The failure already known from the MX name: `Skip`'s failure, or `Testing`'s
    /// `would_fail`.
    pub fn failure(&self) -> Option<&MxFailure> {
        match self {
            Verdict::Skip { failure } => Some(failure),
            Verdict::Testing { would_fail } => would_fail.as_ref(),
            Verdict::NoRequirement | Verdict::RequireTls { .. } => None,
        }
    }

    /// A stable lowercase name: `no-requirement`, `testing`, `require-tls`, `skip`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Verdict::NoRequirement => "no-requirement",
            Verdict::Testing { .. } => "testing",
            Verdict::RequireTls { .. } => "require-tls",
            Verdict::Skip { .. } => "skip",
        }
    }

    /// The final answer for this MX once the MTA has tried STARTTLS (R-APPLY-1 to R-APPLY-3).
    ///
    /// `tls_failure` is what went wrong with TLS: STARTTLS not offered or refused, the
    /// handshake failed, or the certificate check failed
    /// ([`CertCheck::into_failure`](crate::CertCheck::into_failure)); `None` when STARTTLS
    /// succeeded and the certificate was verified for the MX host.
    ///
    /// - `NoRequirement`: deliver, report nothing, whatever `tls_failure` is.
    /// - `Testing`: deliver; report the MX-name failure if there is one (the pattern decides
    ///   before the certificate), else `tls_failure`.
    /// - `RequireTls`: deliver when `tls_failure` is `None`; otherwise do not deliver, try the
    ///   next MX.
    /// - `Skip`: do not deliver (the MTA should not even have connected).
    pub fn decide(&self, tls_failure: Option<MxFailure>) -> Delivery {
        match self {
            Verdict::NoRequirement => Delivery::Deliver { report: None },
            Verdict::Testing { would_fail } => Delivery::Deliver {
                report: would_fail.clone().or(tls_failure),
            },
            Verdict::RequireTls { .. } => match tls_failure {
                None => Delivery::Deliver { report: None },
                Some(failure) => Delivery::TryNext { failure },
            },
            Verdict::Skip { failure } => Delivery::TryNext {
                failure: failure.clone(),
            },
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Verdict::NoRequirement => f.write_str("no MTA-STS requirement"),
            Verdict::Testing { would_fail: None } => {
                f.write_str("testing: deliver, report TLS failures")
            }
            Verdict::Testing {
                would_fail: Some(failure),
            } => write!(f, "testing: deliver, report {failure}"),
            Verdict::RequireTls { mx_host } => {
                write!(f, "deliver only over verified TLS for {mx_host}")
            }
            Verdict::Skip { failure } => write!(f, "do not use this MX: {failure}"),
        }
    }
}

/// The final answer for one MX after STARTTLS (see [`Verdict::decide`]).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Delivery {
    /// Deliver the message to this MX.
    Deliver {
        /// A failure to record for TLS-RPT (mode `testing`), if any.
        report: Option<MxFailure>,
    },
    /// Do not deliver to this MX: a temporary failure; try the next MX, and when none is
    /// left, defer the message (4xx), never bounce it (R-APPLY-1). Report `failure`.
    TryNext {
        /// Why this MX was not used.
        failure: MxFailure,
    },
}

impl Delivery {
    /// True for [`Delivery::Deliver`].
    pub fn is_deliver(&self) -> bool {
        matches!(self, Delivery::Deliver { .. })
    }

    /// The failure to report, if any (for either variant).
    pub fn failure(&self) -> Option<&MxFailure> {
        match self {
            Delivery::Deliver { report } => report.as_ref(),
            Delivery::TryNext { failure } => Some(failure),
        }
    }
}

/// One MX host that may be used, with what MTA-STS requires of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UsableMx {
    /// The MX preference (0 for an implicit MX).
    pub preference: u16,
    /// The MX host name as given (connect to this host).
    pub host: String,
    /// `NoRequirement`, `Testing` or `RequireTls`.
    pub verdict: Verdict,
}

/// One MX host that must not be used, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SkippedMx {
    /// The MX preference (0 for an implicit MX).
    pub preference: u16,
    /// The MX host name as given.
    pub host: String,
    /// Why it is skipped (`validation-failure` / `mx-mismatch`); report it.
    pub failure: MxFailure,
}

/// A recipient domain's MX list sorted out under its policy (R-MX-1 to R-MX-3, R-APPLY-1 to
/// R-APPLY-3).
///
/// ```rust
/// use mtasts_core::{Domain, MxPlan, MxRecord, Policy};
///
/// let policy = Policy::parse("version: STSv1\nmode: enforce\nmx: *.example.net\nmax_age: 86400\n")?;
/// let mx = [
///     MxRecord { preference: 10, exchange: "backup.example.org".into() },
///     MxRecord { preference: 20, exchange: "mx1.example.net".into() },
/// ];
/// let plan = MxPlan::new(Some(&policy), &Domain::new("example.net")?, &mx);
/// assert_eq!(plan.usable.len(), 1);
/// assert_eq!(plan.usable[0].host, "mx1.example.net");
/// assert_eq!(plan.skipped[0].failure.reason_code(), "mx-mismatch");
/// assert!(!plan.defer);
/// # Ok::<(), mtasts_core::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct MxPlan {
    /// The MX hosts that may be tried, in the order given, each with its verdict. Under
    /// `enforce` each still has to pass STARTTLS and the certificate check
    /// ([`Verdict::decide`]).
    pub usable: Vec<UsableMx>,
    /// The MX hosts that must not be used (`enforce` only), in the order given.
    pub skipped: Vec<SkippedMx>,
    /// True when the policy is `enforce` and no MX is usable: defer the message (4xx) and
    /// report; never bounce it (R-APPLY-1).
    pub defer: bool,
    /// True when the MX list was empty and the domain itself was taken as the MX host
    /// (R-MX-3, RFC 5321 §5.1).
    pub implicit_mx: bool,
}

impl MxPlan {
    /// Sorts out `mx`, the MX records of `domain` in the caller's priority order
    /// ([`DnsResolver::mx`](crate::DnsResolver::mx) sorts by preference), under `policy`
    /// (`None`: no policy).
    ///
    /// An empty list (NODATA for MX) means the implicit MX: `domain` itself, preference 0
    /// (R-MX-3). A null MX (RFC 7505, a single MX `.`) means the domain accepts no mail at all;
    /// the caller bounces such mail before asking MTA-STS (here its empty host name would be
    /// an MX that matches nothing).
    pub fn new(policy: Option<&Policy>, domain: &Domain, mx: &[MxRecord]) -> MxPlan {
        let implicit = [MxRecord {
            preference: 0,
            exchange: domain.as_str().to_owned(),
        }];
        let (records, implicit_mx) = if mx.is_empty() {
            (&implicit[..], true)
        } else {
            (mx, false)
        };
        let mut plan = MxPlan {
            usable: Vec::with_capacity(records.len()),
            skipped: Vec::new(),
            defer: false,
            implicit_mx,
        };
        for record in records {
            match Verdict::for_mx(policy, &record.exchange) {
                Verdict::Skip { failure } => plan.skipped.push(SkippedMx {
                    preference: record.preference,
                    host: record.exchange.clone(),
                    failure,
                }),
                verdict => plan.usable.push(UsableMx {
                    preference: record.preference,
                    host: record.exchange.clone(),
                    verdict,
                }),
            }
        }
        // Only `enforce` skips MX hosts, so "nothing usable" happens only under `enforce`
        // (R-APPLY-1: defer, never bounce).
        plan.defer = plan.usable.is_empty();
        plan
    }

    /// [`MxPlan::new`] for MX host names already in priority order (for callers that hold
    /// host strings rather than [`MxRecord`]s); each gets its position in `hosts` as
    /// preference. An empty list is the implicit MX (R-MX-3).
    pub fn from_hosts<S: AsRef<str>>(
        policy: Option<&Policy>,
        domain: &Domain,
        hosts: &[S],
    ) -> MxPlan {
        let records: Vec<MxRecord> = hosts
            .iter()
            .enumerate()
            .map(|(i, host)| MxRecord {
                preference: u16::try_from(i).unwrap_or(u16::MAX),
                exchange: host.as_ref().to_owned(),
            })
            .collect();
        MxPlan::new(policy, domain, &records)
    }

    /// [`MxPlan::new`] with the domain and policy of a [`Resolution`].
    ///
    /// # Errors
    /// As [`Verdict::for_resolution`]: when whether a policy applies cannot be told.
    pub fn for_resolution(resolution: &Resolution, mx: &[MxRecord]) -> crate::Result<MxPlan> {
        Ok(MxPlan::new(
            resolution.applicable_policy()?,
            resolution.domain(),
            mx,
        ))
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

    fn policy(mode: &str) -> Policy {
        Policy::parse(&format!(
            "version: STSv1\nmode: {mode}\nmx: mail.example.com\nmx: *.example.net\nmax_age: 86400\n"
        ))
        .unwrap()
    }

    /// R-MX-1, R-MX-2, R-APPLY-1..3 for one MX, every mode.
    #[test]
    fn verdict_table() {
        let enforce = policy("enforce");
        let testing = policy("testing");
        let none = policy("none");
        #[derive(Debug, PartialEq)]
        enum Want {
            Nothing,
            Test(Option<&'static str>),
            Require(&'static str),
            Skip,
        }
        let cases: &[(Option<&Policy>, &str, Want)] = &[
            (
                Some(&enforce),
                "mail.example.com",
                Want::Require("mail.example.com"),
            ),
            (
                Some(&enforce),
                "MAIL.Example.COM.",
                Want::Require("mail.example.com"),
            ),
            (
                Some(&enforce),
                "mx1.example.net",
                Want::Require("mx1.example.net"),
            ),
            (Some(&enforce), "a.mx1.example.net", Want::Skip),
            (Some(&enforce), "example.net", Want::Skip),
            (Some(&enforce), "evil.com", Want::Skip),
            (Some(&enforce), "", Want::Skip),
            (Some(&enforce), "192.0.2.1", Want::Skip),
            (Some(&enforce), "mail example.com", Want::Skip),
            (Some(&testing), "mail.example.com", Want::Test(None)),
            (Some(&testing), "evil.com", Want::Test(Some("mx-mismatch"))),
            (
                Some(&testing),
                "[192.0.2.1]",
                Want::Test(Some("mx-mismatch")),
            ),
            (Some(&none), "evil.com", Want::Nothing),
            (None, "evil.com", Want::Nothing),
            (None, "", Want::Nothing),
        ];
        for (policy, host, want) in cases {
            let verdict = Verdict::for_mx(*policy, host);
            let got = match &verdict {
                Verdict::NoRequirement => Want::Nothing,
                Verdict::Testing { would_fail } => {
                    Want::Test(would_fail.as_ref().map(MxFailure::reason_code))
                }
                Verdict::RequireTls { mx_host } => Want::Require(match mx_host.as_str() {
                    "mail.example.com" => "mail.example.com",
                    "mx1.example.net" => "mx1.example.net",
                    other => panic!("unexpected host {other}"),
                }),
                Verdict::Skip { failure } => {
                    assert_eq!(failure.reason(), FailureReason::MxMismatch);
                    assert_eq!(failure.result_type(), ResultType::ValidationFailure);
                    assert!(failure.detail().contains("*.example.net"), "{failure}");
                    Want::Skip
                }
            };
            assert_eq!(&got, want, "{host:?} under {:?}", policy.map(|p| p.mode()));
            assert_eq!(verdict.requires_tls(), matches!(want, Want::Require(_)));
            assert_eq!(verdict.may_use(), !matches!(want, Want::Skip));
            assert_eq!(verdict.reports_failures(), !matches!(want, Want::Nothing));
        }
    }

    /// R-APPLY-1..3 after TLS.
    #[test]
    fn decide_after_tls() {
        let expired = MxFailure::new(FailureReason::CertificateExpired, "expired");
        let enforce = policy("enforce");
        let testing = policy("testing");

        let require = Verdict::for_mx(Some(&enforce), "mail.example.com");
        assert_eq!(require.decide(None), Delivery::Deliver { report: None });
        assert_eq!(
            require.decide(Some(expired.clone())),
            Delivery::TryNext {
                failure: expired.clone()
            }
        );

        let skip = Verdict::for_mx(Some(&enforce), "evil.com");
        let d = skip.decide(None);
        assert!(!d.is_deliver());
        assert_eq!(d.failure().unwrap().reason_code(), "mx-mismatch");

        let test_ok = Verdict::for_mx(Some(&testing), "mail.example.com");
        assert_eq!(
            test_ok.decide(Some(expired.clone())),
            Delivery::Deliver {
                report: Some(expired.clone())
            }
        );
        // The pattern decides before the certificate (S-62, S-63).
        let test_bad = Verdict::for_mx(Some(&testing), "evil.com");
        let d = test_bad.decide(Some(expired.clone()));
        assert!(d.is_deliver());
        assert_eq!(d.failure().unwrap().reason_code(), "mx-mismatch");

        let none = Verdict::for_mx(None, "evil.com");
        assert_eq!(
            none.decide(Some(expired)),
            Delivery::Deliver { report: None }
        );
    }

    fn mx(list: &[(u16, &str)]) -> Vec<MxRecord> {
        list.iter()
            .map(|(p, h)| MxRecord {
                preference: *p,
                exchange: (*h).to_owned(),
            })
            .collect()
    }

    /// The MX list helper: order kept, skipped ones listed, defer only under enforce.
    #[test]
    fn plans() {
        let enforce = policy("enforce");
        let testing = policy("testing");
        let domain = Domain::new("example.com").unwrap();
        let list = mx(&[
            (5, "evil.com"),
            (10, "mail.example.com"),
            (20, "a.mx1.example.net"),
            (30, "mx2.example.net"),
        ]);

        let plan = MxPlan::new(Some(&enforce), &domain, &list);
        let usable: Vec<_> = plan.usable.iter().map(|m| m.host.as_str()).collect();
        assert_eq!(usable, ["mail.example.com", "mx2.example.net"]);
        assert!(plan.usable.iter().all(|m| m.verdict.requires_tls()));
        let skipped: Vec<_> = plan
            .skipped
            .iter()
            .map(|m| (m.preference, m.host.as_str()))
            .collect();
        assert_eq!(skipped, [(5, "evil.com"), (20, "a.mx1.example.net")]);
        assert!(!plan.defer && !plan.implicit_mx);

        let bad = mx(&[(10, "evil.com"), (20, "example.net")]);
        let plan = MxPlan::new(Some(&enforce), &domain, &bad);
        assert!(plan.defer, "enforce, nothing usable: defer, never bounce");
        assert_eq!(plan.skipped.len(), 2);

        let plan = MxPlan::new(Some(&testing), &domain, &bad);
        assert!(!plan.defer);
        assert_eq!(plan.usable.len(), 2);
        assert!(plan.skipped.is_empty());

        let plan = MxPlan::new(None, &domain, &bad);
        assert!(!plan.defer);
        assert!(
            plan.usable
                .iter()
                .all(|m| m.verdict == Verdict::NoRequirement)
        );

        let plan = MxPlan::from_hosts(Some(&enforce), &domain, &["evil.com", "mx1.example.net"]);
        assert_eq!(plan.skipped[0].preference, 0);
        assert_eq!(plan.usable[0].preference, 1);
        assert_eq!(plan.usable[0].host, "mx1.example.net");
        let empty: [&str; 0] = [];
        assert!(MxPlan::from_hosts(Some(&enforce), &domain, &empty).implicit_mx);
    }

    /// R-MX-3: no MX records, the domain itself is the MX host.
    #[test]
    fn implicit_mx() {
        let enforce = policy("enforce");
        let plan = MxPlan::new(
            Some(&enforce),
            &Domain::new("mail.example.com").unwrap(),
            &[],
        );
        assert!(plan.implicit_mx);
        assert_eq!(plan.usable.len(), 1);
        assert_eq!(plan.usable[0].host, "mail.example.com");
        assert_eq!(plan.usable[0].preference, 0);
        assert!(plan.usable[0].verdict.requires_tls());

        let plan = MxPlan::new(Some(&enforce), &Domain::new("example.com").unwrap(), &[]);
        assert!(plan.implicit_mx && plan.defer);
        assert_eq!(plan.skipped[0].host, "example.com");
    }
}
