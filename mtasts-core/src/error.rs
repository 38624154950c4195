//! The one error type of mtasts, and the RFC 8460 result types failures map to.

use std::fmt;
use std::time::SystemTime;

/// The result types of RFC 8460 §4.3 that a TLS-RPT report gives a failure: all eleven it
/// registers, the MTA-STS ones mtasts's own failures carry and the DANE ones (§4.3.2.1) an
/// MTA doing DANE reports.
///
/// Every failure mtasts reports carries one of these (rules file §6), so a caller can both act
/// on it and aggregate it into a report. [`ResultType::as_str`] gives the registered string.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum ResultType {
    /// `starttls-not-supported`: the MX did not offer or refused STARTTLS (RFC 8460 §4.3.1).
    StarttlsNotSupported,
    /// `certificate-host-mismatch`: no SAN DNS-ID of the certificate matches the MX host.
    CertificateHostMismatch,
    /// `certificate-expired`: a certificate in the chain is expired (or not yet valid).
    CertificateExpired,
    /// `certificate-not-trusted`: the chain does not reach a trusted root.
    CertificateNotTrusted,
    /// `validation-failure`: any other failure, e.g. an MX host outside the policy (RFC 8460 §4.3.3).
    ValidationFailure,
    /// `sts-policy-fetch-error`: the policy could not be retrieved (RFC 8460 §4.3.2.2).
    StsPolicyFetchError,
    /// `sts-policy-invalid`: the policy was retrieved but is not valid (RFC 8460 §4.3.2.2).
    StsPolicyInvalid,
    /// `sts-webpki-invalid`: the policy host's certificate failed validation (RFC 8460 §4.3.2.2).
    StsWebpkiInvalid,
    /// `tlsa-invalid`: a validation error in the TLSA records of a DANE policy (RFC 8460
    /// §4.3.2.1). mtasts's resolver gives no failure of this type itself; MTAs doing DANE do
    /// (Postfix 3.10's datagrams, a face recording a `tlsa` session).
    TlsaInvalid,
    /// `dnssec-invalid`: no valid records returned from the recursive resolver (RFC 8460
    /// §4.3.2.1, DANE).
    DnssecInvalid,
    /// `dane-required`: the sending system is configured to require DANE TLSA records for all
    /// MX hosts of the destination domain, and none were found (RFC 8460 §4.3.2.1).
    DaneRequired,
}

impl ResultType {
    /// Every result type, in RFC order.
    pub const ALL: [ResultType; 11] = [
        ResultType::StarttlsNotSupported,
        ResultType::CertificateHostMismatch,
        ResultType::CertificateExpired,
        ResultType::CertificateNotTrusted,
        ResultType::ValidationFailure,
        ResultType::StsPolicyFetchError,
        ResultType::StsPolicyInvalid,
        ResultType::StsWebpkiInvalid,
        ResultType::TlsaInvalid,
        ResultType::DnssecInvalid,
        ResultType::DaneRequired,
    ];

    /// The string registered by RFC 8460, e.g. `sts-policy-fetch-error`.
    pub fn as_str(self) -> &'static str {
        match self {
            ResultType::StarttlsNotSupported => "starttls-not-supported",
            ResultType::CertificateHostMismatch => "certificate-host-mismatch",
            ResultType::CertificateExpired => "certificate-expired",
            ResultType::CertificateNotTrusted => "certificate-not-trusted",
            ResultType::ValidationFailure => "validation-failure",
            ResultType::StsPolicyFetchError => "sts-policy-fetch-error",
            ResultType::StsPolicyInvalid => "sts-policy-invalid",
            ResultType::StsWebpkiInvalid => "sts-webpki-invalid",
            ResultType::TlsaInvalid => "tlsa-invalid",
            ResultType::DnssecInvalid => "dnssec-invalid",
            ResultType::DaneRequired => "dane-required",
        }
    }

    /// Parses a registered result-type string; `None` for anything else.
    pub fn from_name(name: &str) -> Option<ResultType> {
        ResultType::ALL.into_iter().find(|t| t.as_str() == name)
    }
}

impl fmt::Display for ResultType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Everything that can go wrong in mtasts.
///
/// Each variant carries enough context for a one-line message (`Display`), and
/// [`Error::result_type`] says how a TLS-RPT report classifies it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// A domain or host name given to mtasts is not usable: empty, an address literal, not a
    /// valid (IDNA) host name, or too long.
    InvalidDomain {
        /// What the caller passed.
        input: String,
        /// Why it was rejected.
        reason: String,
    },
    /// The `_mta-sts` TXT record is not a valid STS record (R-DISC-4), or there is more than
    /// one (R-DISC-3). Both mean "no policy"; the error explains why.
    InvalidRecord {
        /// Why the record was rejected.
        reason: String,
    },
    /// The policy file is not valid (R-POL-3, R-POL-6, R-POL-7) or was served with the wrong
    /// media type (R-FETCH-7). Maps to `sts-policy-invalid`.
    InvalidPolicy {
        /// 1-based line of the policy file the problem is on, where there is one.
        line: Option<usize>,
        /// Why the policy was rejected.
        reason: String,
    },
    /// An `mx` pattern that cannot be used (R-POL-7).
    InvalidMxPattern {
        /// The pattern as written.
        pattern: String,
        /// Why it cannot be used.
        reason: String,
    },
    /// A DNS query failed temporarily: SERVFAIL, REFUSED, timeout or a network error
    /// (R-DISC-7). Never to be read as "no record".
    DnsTemporary {
        /// The name that was queried.
        name: String,
        /// What failed.
        reason: String,
    },
    /// The policy could not be fetched (R-FETCH-4, -5, -8, -9; status, redirect, size,
    /// deadline, connection). Maps to `sts-policy-fetch-error`.
    PolicyFetch {
        /// The URL that was fetched.
        url: String,
        /// What failed.
        reason: String,
    },
    /// The policy host's certificate failed validation (R-FETCH-2). Maps to `sts-webpki-invalid`.
    PolicyCertificate {
        /// The URL that was fetched.
        url: String,
        /// Why the certificate was rejected.
        reason: String,
    },
    /// A fetch for this (domain, id) failed recently and is not retried before `retry_at`
    /// (R-FETCH-10). Carries the result type and reason of that failure.
    FetchBackoff {
        /// The result type of the failure that started the backoff.
        result_type: ResultType,
        /// The reason of that failure.
        reason: String,
        /// When a new fetch may be attempted.
        retry_at: SystemTime,
    },
    /// The configuration cannot be used (unreadable trust-root file, bad name server, ...).
    Config {
        /// What is wrong and how to fix it.
        reason: String,
    },
    /// The policy cache failed (I/O, corruption, connection).
    Cache {
        /// What failed.
        reason: String,
    },
    /// A certificate chain handed to mtasts cannot be read: empty, bad PEM, or not DER
    /// (R-CERT-2). A chain that is read but rejected is not an error but a
    /// [`CertCheck::Invalid`](crate::CertCheck::Invalid).
    InvalidChain {
        /// What is wrong with the input.
        reason: String,
    },
    /// A TLS-RPT session handed to mtasts cannot be recorded as given: an empty or invalid
    /// domain, an unknown result type, a field over its length limit, ... (the
    /// [`SessionError`](crate::SessionError) says which).
    InvalidSession(crate::tlsrpt::SessionError),
    /// The TLS-RPT report store (the tables or keys beside the policy cache) could not be
    /// read or written. Nothing was counted, or (for a read) nothing is returned: the store
    /// never drops or invents counts silently.
    ReportStore {
        /// What failed, with the location.
        reason: String,
    },
}

impl Error {
    /// The RFC 8460 result type of this failure, if it is one a TLS-RPT report carries.
    ///
    /// Input, configuration and cache errors have none: they say nothing about the recipient
    /// domain's policy. An invalid TXT record has none either: it means "no policy" (R-DISC-4).
    pub fn result_type(&self) -> Option<ResultType> {
        match self {
            Error::InvalidPolicy { .. } | Error::InvalidMxPattern { .. } => {
                Some(ResultType::StsPolicyInvalid)
            }
            // A TXT lookup that fails means the policy could not be retrieved (rules §6: every
            // reported failure carries a result type); `kind()` still tells the two apart.
            Error::PolicyFetch { .. } | Error::DnsTemporary { .. } => {
                Some(ResultType::StsPolicyFetchError)
            }
            Error::PolicyCertificate { .. } => Some(ResultType::StsWebpkiInvalid),
            Error::FetchBackoff { result_type, .. } => Some(*result_type),
            Error::InvalidDomain { .. }
            | Error::InvalidRecord { .. }
            | Error::Config { .. }
            | Error::Cache { .. }
            | Error::InvalidChain { .. }
            | Error::InvalidSession(_)
            | Error::ReportStore { .. } => None,
        }
    }

    /// True for failures that may go away on their own (DNS, network, backoff): a caller that
    /// must decide between deferring and giving up should defer.
    pub fn is_temporary(&self) -> bool {
        matches!(
            self,
            Error::DnsTemporary { .. }
                | Error::PolicyFetch { .. }
                | Error::FetchBackoff { .. }
                | Error::Cache { .. }
                | Error::ReportStore { .. }
        )
    }

    /// A short stable name for the error's kind, e.g. `dns-temporary`; used by `--json` output
    /// and the bindings.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::InvalidDomain { .. } => "invalid-domain",
            Error::InvalidRecord { .. } => "invalid-record",
            Error::InvalidPolicy { .. } => "invalid-policy",
            Error::InvalidMxPattern { .. } => "invalid-mx-pattern",
            Error::DnsTemporary { .. } => "dns-temporary",
            Error::PolicyFetch { .. } => "policy-fetch",
            Error::PolicyCertificate { .. } => "policy-certificate",
            Error::FetchBackoff { .. } => "fetch-backoff",
            Error::Config { .. } => "config",
            Error::Cache { .. } => "cache",
            Error::InvalidChain { .. } => "invalid-chain",
            Error::InvalidSession(_) => "invalid-session",
            Error::ReportStore { .. } => "report-store",
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidDomain { input, reason } => {
                write!(f, "invalid domain {input:?}: {reason}")
            }
            Error::InvalidRecord { reason } => write!(f, "invalid _mta-sts TXT record: {reason}"),
            Error::InvalidPolicy {
                line: Some(line),
                reason,
            } => write!(f, "invalid policy, line {line}: {reason}"),
            Error::InvalidPolicy { line: None, reason } => write!(f, "invalid policy: {reason}"),
            Error::InvalidMxPattern { pattern, reason } => {
                write!(f, "unusable mx pattern {pattern:?}: {reason}")
            }
            Error::DnsTemporary { name, reason } => {
                write!(f, "temporary DNS failure for {name}: {reason}")
            }
            Error::PolicyFetch { url, reason } => write!(f, "fetching {url} failed: {reason}"),
            Error::PolicyCertificate { url, reason } => {
                write!(f, "certificate of {url} rejected: {reason}")
            }
            Error::FetchBackoff {
                result_type,
                reason,
                retry_at,
            } => write!(
                f,
                "policy fetch failed recently ({result_type}: {reason}); no new attempt before {}",
                crate::clock::rfc3339(*retry_at)
            ),
            Error::Config { reason } => write!(f, "configuration: {reason}"),
            Error::Cache { reason } => write!(f, "policy cache: {reason}"),
            Error::InvalidChain { reason } => write!(f, "invalid certificate chain: {reason}"),
            Error::InvalidSession(e) => write!(f, "invalid TLS-RPT session: {e}"),
            Error::ReportStore { reason } => write!(f, "TLS-RPT report store: {reason}"),
        }
    }
}

impl std::error::Error for Error {}

/// Shorthand for results whose error is [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn result_type_strings_round_trip() {
        for t in ResultType::ALL {
            assert_eq!(ResultType::from_name(t.as_str()), Some(t));
        }
        assert_eq!(ResultType::from_name("sts-policy"), None);
    }

    #[test]
    fn errors_map_to_rfc8460_result_types() {
        let fetch = Error::PolicyFetch {
            url: "u".into(),
            reason: "r".into(),
        };
        assert_eq!(fetch.result_type(), Some(ResultType::StsPolicyFetchError));
        let cert = Error::PolicyCertificate {
            url: "u".into(),
            reason: "r".into(),
        };
        assert_eq!(cert.result_type(), Some(ResultType::StsWebpkiInvalid));
        let invalid = Error::InvalidPolicy {
            line: Some(2),
            reason: "r".into(),
        };
        assert_eq!(invalid.result_type(), Some(ResultType::StsPolicyInvalid));
        assert_eq!(invalid.to_string(), "invalid policy, line 2: r");
        let dns = Error::DnsTemporary {
            name: "n".into(),
            reason: "SERVFAIL".into(),
        };
        assert_eq!(dns.result_type(), Some(ResultType::StsPolicyFetchError));
        assert_eq!(dns.kind(), "dns-temporary");
        assert!(dns.is_temporary());
        let domain = Error::InvalidDomain {
            input: "1.2.3.4".into(),
            reason: "an address".into(),
        };
        assert_eq!(domain.result_type(), None);
    }
}
