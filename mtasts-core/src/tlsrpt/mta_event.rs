//! What an MTA's own delivery events say about TLS sessions with MX hosts (R-RPT-3, R-RPT-4),
//! for MTAs that do TLS themselves and tell mtasts afterwards (Exim's transport
//! `event_action`). Pure: [`classify_mta_error`] maps an MTA's error text to a
//! [`FailureReason`], and [`MtaEvent::session`] decides which session, if any, an event is,
//! so the C ABI, Python and the Exim module all count the same way.
//!
//! The error texts recognised are Exim 4.9x's (GnuTLS and OpenSSL builds, `src/transports/
//! smtp.c`, `src/tls-gnu.c`, `src/tls-openssl.c`): `a TLS session is required, but the server
//! did not offer TLS support`, `TLS session: (certificate verification failed): certificate
//! invalid`, `TLS session: (SSL_connect): error:0A000086:SSL routines::certificate verify
//! failed`, ... Matching is case-insensitive on fixed phrases; a text that names no TLS
//! problem (a refused connection, a 4xx reply to RCPT) is not a TLS session failure and gives
//! `None`.

use super::report::PolicyType;
use super::session::{AppliedPolicy, Session, SessionError, SessionFailure, UtcDay};
use crate::error::ResultType;
use crate::failure::FailureReason;
use crate::policy::Mode;
use crate::resolution::Resolution;

/// The phrases of MTA error texts, most specific first, and the reason each means.
const PHRASES: &[(&str, FailureReason)] = &[
    // The refusals of the Exim snippet's tls:cert event (integrations/exim/mtasts.conf): a
    // leaf without a SAN DNS name (R-CERT-3, S-60) and a host outside the policy (R-MX-1).
    (
        "no dns name in its subjectaltname",
        FailureReason::CertificateNoSan,
    ),
    ("not an mx host of", FailureReason::MxMismatch),
    // smtp.c: hosts_require_tls and no STARTTLS in the EHLO reply (R-CERT-1).
    (
        "did not offer tls support",
        FailureReason::StarttlsNotOffered,
    ),
    // smtp.c: STARTTLS offered, answered with a rejection, then TLS required.
    (
        "an attempt to start tls failed",
        FailureReason::StarttlsRefused,
    ),
    ("starttls", FailureReason::StarttlsRefused),
    // Certificate validity period (GnuTLS, OpenSSL).
    ("not yet activated", FailureReason::CertificateNotYetValid),
    ("not yet valid", FailureReason::CertificateNotYetValid),
    ("expired", FailureReason::CertificateExpired),
    // Host name checks (R-CERT-3).
    ("hostname mismatch", FailureReason::CertificateHostMismatch),
    ("name mismatch", FailureReason::CertificateHostMismatch),
    // Chain does not reach a trusted root (R-CERT-2).
    ("signer not found", FailureReason::CertificateNotTrusted),
    ("self-signed", FailureReason::CertificateNotTrusted),
    ("self signed", FailureReason::CertificateNotTrusted),
    (
        "unable to get local issuer",
        FailureReason::CertificateNotTrusted,
    ),
    ("not trusted", FailureReason::CertificateNotTrusted),
    // A rejected chain whose reason the MTA does not say: GnuTLS builds of Exim report every
    // CA-verification failure as "certificate invalid"; OpenSSL's "certificate verify failed".
    ("certificate revoked", FailureReason::CertificateInvalid),
    (
        "certificate verification failed",
        FailureReason::CertificateInvalid,
    ),
    (
        "certificate verify failed",
        FailureReason::CertificateInvalid,
    ),
    ("certificate invalid", FailureReason::CertificateInvalid),
    (
        "error in the certificate",
        FailureReason::CertificateInvalid,
    ),
    ("verify denied", FailureReason::CertificateInvalid),
    (
        "certificate not supplied",
        FailureReason::CertificateInvalid,
    ),
    // Any other failure of the TLS layer: an alert, a version or cipher mismatch, a closed
    // connection during the handshake.
    ("protocol version", FailureReason::TlsVersionUnsupported),
    ("tls session", FailureReason::TlsHandshakeFailed),
    ("tls error", FailureReason::TlsHandshakeFailed),
    ("gnutls_handshake", FailureReason::TlsHandshakeFailed),
    ("ssl_connect", FailureReason::TlsHandshakeFailed),
    ("handshake", FailureReason::TlsHandshakeFailed),
];

/// The TLS failure an MTA's error text describes (e.g. Exim's `$event_data` of a
/// `msg:host:defer` event), or `None` when the text names no TLS problem.
///
/// ```rust
/// use mtasts_core::{FailureReason, classify_mta_error};
///
/// assert_eq!(
///     classify_mta_error("a TLS session is required, but the server did not offer TLS support"),
///     Some(FailureReason::StarttlsNotOffered),
/// );
/// assert_eq!(classify_mta_error("Connection refused"), None);
/// ```
pub fn classify_mta_error(text: &str) -> Option<FailureReason> {
    let text = text.to_ascii_lowercase();
    PHRASES
        .iter()
        .find(|(phrase, _)| text.contains(phrase))
        .map(|(_, reason)| *reason)
}

/// An MTA's report of what happened with one MX host, as its delivery events tell it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum MtaEvent<'a> {
    /// A TLS session was negotiated (Exim: the `smtp:ehlo` event after STARTTLS,
    /// `$tls_out_cipher` set). `verified`: the certificate chain and name were verified
    /// (`$tls_out_certificate_verified`); `dane`: verified by DANE (`$tls_out_dane`).
    TlsEstablished {
        /// The certificate was verified.
        verified: bool,
        /// It was verified by DANE (RFC 7672): the session counts under `tlsa` (R-APPLY-4).
        dane: bool,
    },
    /// The message was delivered without TLS (Exim: `msg:delivery` with `$tls_out_cipher`
    /// empty): the MX offered no STARTTLS and no policy required it.
    DeliveredInClear,
    /// Delivery to the host was deferred with this error text (Exim: `msg:host:defer`,
    /// `$event_data`): a failure when the text names a TLS problem ([`classify_mta_error`]).
    HostDeferred {
        /// The MTA's error text.
        error: &'a str,
    },
    /// DANE verification failed with this RFC 8460 result type (Exim: `dane:fail`,
    /// `$event_data`).
    DaneFailed {
        /// The result type, e.g. `validation-failure`, `dane-required`.
        result_type: &'a str,
    },
    /// The MTA left this MX host out without connecting to it (Exim: the router's
    /// `ignore_target_hosts` under an `enforce` policy, R-APPLY-1): a failed session when the
    /// host matches none of the policy's patterns (R-MX-1), else no session.
    MxSkipped,
}

impl MtaEvent<'_> {
    /// The session `self` is for the domain of `resolution` (the policy applied taken from
    /// it, R-RPT-3, R-RPT-11), on `day`; `detail` is a failure with only the MX-side fields
    /// set (receiving host, its address, the sending address: its result type is replaced).
    /// `None` when the event is no TLS session outcome (a deferral for another reason).
    ///
    /// - `TlsEstablished`: success, under `tlsa` when DANE verified it; under a `testing`
    ///   policy an unverified certificate is a `validation-failure` (`certificate-invalid`:
    ///   the MTA does not say why; `testing` failures count like `enforce` ones, R-RPT-3),
    ///   and so is an MX host that matches none of the policy's patterns (`mx-mismatch`);
    ///   with no policy (`no-policy-found`) nothing is validated, so TLS alone is success.
    /// - `DeliveredInClear`: `starttls-not-supported` (`starttls-not-offered`).
    /// - `HostDeferred`: the classified TLS failure, else `None`.
    /// - `MxSkipped`: a `validation-failure` (`mx-mismatch`) when the host (the detail's
    ///   receiving MX host, required) matches none of the patterns of the `enforce` policy
    ///   applied; `None` for a host the policy lists, under `testing` (the MTA connects
    ///   there, and `TlsEstablished` counts the mismatch), without a policy, or without a
    ///   host name.
    /// - `DaneFailed`: a failure of that result type under `tlsa`. RFC 8460 §4.3.1 has no
    ///   `dane-required`; Exim raises it for a host whose TLSA records demand TLS that did not
    ///   happen: it is counted as `starttls-not-supported`; other unknown names as
    ///   `validation-failure`, the name kept as `failure-reason-code`.
    ///
    /// A failure to obtain the policy is a failure detail of the session too (R-RPT-5, as
    /// [`Session::from_resolution`]).
    ///
    /// # Errors
    /// [`SessionError::PolicyCannotBeTold`] when whether a policy applies cannot be told
    /// (then there was no session: the message is deferred before connecting).
    pub fn session(
        &self,
        day: UtcDay,
        resolution: &Resolution,
        detail: &SessionFailure,
    ) -> Result<Option<Session>, SessionError> {
        let with = |reason: FailureReason| detail.clone().with_reason(reason);
        let domain = resolution.domain().as_str();
        // Rules §6: an MX host outside the patterns of the `sts` policy applied is a failure
        // of its own; the mode of that policy when the given host is outside it (a host not
        // given cannot be checked).
        let outside_policy = |applied: &AppliedPolicy| -> Option<Mode> {
            let host = detail.to_detail(1).receiving_mx_hostname?;
            match resolution.applicable_policy() {
                Ok(Some(p)) if applied.policy_type() == PolicyType::Sts && !p.matches(&host) => {
                    Some(p.mode())
                }
                _ => None,
            }
        };
        match *self {
            MtaEvent::TlsEstablished { dane: true, .. } => Ok(Some(Session::success(
                day,
                AppliedPolicy::tlsa(domain, Vec::new())?,
            ))),
            MtaEvent::TlsEstablished { verified, .. } => {
                let policy = AppliedPolicy::from_resolution(resolution)?;
                let mut tls = if verified || policy.policy_type() == PolicyType::NoPolicyFound {
                    vec![]
                } else {
                    vec![with(FailureReason::CertificateInvalid)]
                };
                // Under `testing` the MTA still delivers to a host outside the policy (under
                // `enforce` it never connects: `MxSkipped`).
                if outside_policy(&policy).is_some() {
                    tls.push(with(FailureReason::MxMismatch));
                }
                Session::from_resolution(day, resolution, tls).map(Some)
            }
            MtaEvent::MxSkipped => {
                // Only `enforce` leaves hosts out (R-APPLY-1); under `testing` the MTA
                // connects, and its `TlsEstablished` counts the mismatch.
                let policy = AppliedPolicy::from_resolution(resolution)?;
                if outside_policy(&policy) == Some(Mode::Enforce) {
                    Session::from_resolution(day, resolution, vec![with(FailureReason::MxMismatch)])
                        .map(Some)
                } else {
                    Ok(None)
                }
            }
            MtaEvent::DeliveredInClear => Session::from_resolution(
                day,
                resolution,
                vec![with(FailureReason::StarttlsNotOffered)],
            )
            .map(Some),
            MtaEvent::HostDeferred { error } => match classify_mta_error(error) {
                Some(reason) => {
                    Session::from_resolution(day, resolution, vec![with(reason)]).map(Some)
                }
                None => {
                    // Still "no session" only if a policy can be told (R-RPT-11).
                    AppliedPolicy::from_resolution(resolution)?;
                    Ok(None)
                }
            },
            MtaEvent::DaneFailed { result_type } => {
                let failure = match ResultType::from_name(result_type) {
                    Some(t) => detail.clone().with_result_type(t),
                    None if result_type == "dane-required" => detail
                        .clone()
                        .with_result_type(ResultType::StarttlsNotSupported)
                        .failure_reason_code(result_type)?,
                    None => detail
                        .clone()
                        .with_result_type(ResultType::ValidationFailure)
                        .failure_reason_code(result_type)?,
                };
                Session::failure(day, AppliedPolicy::tlsa(domain, Vec::new())?, [failure]).map(Some)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Exim 4.96's texts (smtp.c, tls-gnu.c, tls-openssl.c) and what they mean.
    #[test]
    fn exim_error_texts() {
        use FailureReason as R;
        for (text, want) in [
            (
                "a TLS session is required, but the server did not offer TLS support",
                Some(R::StarttlsNotOffered),
            ),
            (
                "a TLS session is required, but an attempt to start TLS failed",
                Some(R::StarttlsRefused),
            ),
            (
                "TLS session: (certificate verification failed): certificate invalid",
                Some(R::CertificateInvalid),
            ),
            (
                "TLS session: (certificate verification failed): certificate revoked",
                Some(R::CertificateInvalid),
            ),
            (
                "TLS session: (gnutls_handshake): Error in the certificate.",
                Some(R::CertificateInvalid),
            ),
            (
                "TLS session: (SSL_connect): error:0A000086:SSL routines::certificate verify failed",
                Some(R::CertificateInvalid),
            ),
            (
                "TLS session: (SSL_connect): certificate has expired",
                Some(R::CertificateExpired),
            ),
            (
                "TLS session: (SSL_connect): self-signed certificate in certificate chain",
                Some(R::CertificateNotTrusted),
            ),
            (
                "TLS session: (gnutls_handshake): A TLS fatal alert has been received.",
                Some(R::TlsHandshakeFailed),
            ),
            (
                "TLS session: (gnutls_handshake): A packet with illegal or unsupported version was received.",
                Some(R::TlsHandshakeFailed),
            ),
            (
                "TLS session: (SSL_connect): error:0A000102:SSL routines::unsupported protocol version",
                Some(R::TlsVersionUnsupported),
            ),
            (
                "MTA-STS: the certificate of mx.example.com has no DNS name in its \
                 subjectAltName (no CN fallback, RFC 8461 4.2)",
                Some(R::CertificateNoSan),
            ),
            (
                "MTA-STS: refusing evil.com for example.com: not an MX host of its policy",
                Some(R::MxMismatch),
            ),
            ("Connection refused", None),
            (
                "SMTP error from remote mail server after RCPT TO:<a@b>: 451 try later",
                None,
            ),
            ("", None),
        ] {
            assert_eq!(classify_mta_error(text), want, "{text}");
        }
    }

    /// A resolution of `example.com` with a cached policy of `mode`, listing only
    /// `mx1.example.com`.
    fn with_policy(mode: &str) -> Resolution {
        use crate::domain::Domain;
        use crate::policy::{CachedPolicy, Policy};
        use crate::resolution::Source;
        use std::sync::Arc;
        use std::time::{Duration, SystemTime};
        let now = SystemTime::now();
        let policy = Policy::parse(&format!(
            "version: STSv1\nmode: {mode}\nmx: mx1.example.com\nmax_age: 86400\n"
        ))
        .unwrap();
        Resolution {
            domain: Domain::new("example.com").unwrap(),
            source: Source::Cache,
            policy: Some(Arc::new(CachedPolicy {
                id: "1".into(),
                policy: Arc::new(policy),
                fetched_at: now,
                expires_at: now + Duration::from_secs(86_400),
            })),
            failure: None,
            notice: None,
            domain_not_found: false,
        }
    }

    #[test]
    fn an_mx_outside_the_policy_is_an_mx_mismatch_even_over_verified_tls() {
        let day: UtcDay = "2026-12-01".parse().unwrap();
        let event = MtaEvent::TlsEstablished {
            verified: true,
            dane: false,
        };
        for mode in ["testing", "enforce"] {
            let resolution = with_policy(mode);
            let at = |host: &str| {
                let detail = SessionFailure::new(ResultType::ValidationFailure)
                    .receiving_mx_hostname(host)
                    .unwrap();
                event.session(day, &resolution, &detail).unwrap().unwrap()
            };
            assert!(at("mx1.example.com").is_success(), "{mode}: listed");
            let outside = at("mx9.example.net");
            assert!(!outside.is_success(), "{mode}: not listed");
            let detail = outside.failures()[0].to_detail(1);
            assert_eq!(detail.result_type, "validation-failure");
            assert_eq!(detail.failure_reason_code.as_deref(), Some("mx-mismatch"));
            assert_eq!(
                detail.receiving_mx_hostname.as_deref(),
                Some("mx9.example.net")
            );
        }
    }

    #[test]
    fn a_skipped_mx_host_outside_the_policy_is_one_failed_session() {
        let day: UtcDay = "2026-12-01".parse().unwrap();
        let at = |resolution: &Resolution, host: Option<&str>| {
            let mut detail = SessionFailure::new(ResultType::ValidationFailure);
            if let Some(host) = host {
                detail = detail.receiving_mx_hostname(host).unwrap();
            }
            MtaEvent::MxSkipped
                .session(day, resolution, &detail)
                .unwrap()
        };
        let enforce = with_policy("enforce");
        let session = at(&enforce, Some("mx.elsewhere.example")).unwrap();
        assert_eq!(session.failures().len(), 1);
        let detail = session.failures()[0].to_detail(1);
        assert_eq!(detail.result_type, "validation-failure");
        assert_eq!(detail.failure_reason_code.as_deref(), Some("mx-mismatch"));
        assert_eq!(
            detail.receiving_mx_hostname.as_deref(),
            Some("mx.elsewhere.example")
        );
        assert_eq!(session.policy().policy_type(), PolicyType::Sts);
        // A listed host (case ignored), no host, no policy: nothing to count.
        assert!(at(&enforce, Some("MX1.example.com")).is_none());
        assert!(at(&enforce, None).is_none());
        let mut none = with_policy("enforce");
        none.policy = None;
        assert!(at(&none, Some("mx.elsewhere.example")).is_none());
        assert!(at(&with_policy("none"), Some("mx.elsewhere.example")).is_none());
        // Under testing nothing is left out: the session with the host counts it.
        assert!(at(&with_policy("testing"), Some("mx.elsewhere.example")).is_none());
    }
}
