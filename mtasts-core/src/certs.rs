//! Checking an MX host's certificate chain (RFC 8461 §4.2; rules R-CERT-2, R-CERT-3).
//!
//! The chain may come from anywhere: the STARTTLS probe of this crate, or an MTA's own TLS
//! library (OpenSSL, GnuTLS, LibreSSL, Python's `ssl`). All decisions are rustls-webpki's:
//! path building to the configured roots, validity of every certificate at the given time,
//! the serverAuth extended key usage, and the SAN DNS-ID match with the RFC 6125 / RFC 9525
//! wildcard rules (`*` only as the whole left-most label, matching exactly one label). There
//! is no fallback to the subject CN (R-CERT-3). Nothing here parses X.509 by hand; the only
//! hand-written code splits concatenated DER into certificates by their outer length.

use std::fmt;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, DnsName, ServerName, TrustAnchor, UnixTime};
use webpki::{EndEntityCert, KeyUsage};

use crate::domain::Domain;
use crate::error::{Error, Result};
use crate::failure::{FailureReason, MxFailure};
use crate::fetch::TrustRoots;

/// The outcome of a certificate check: the chain is acceptable for the MX host, or it is not
/// and [`MxFailure`] says why (R-CERT-2, R-CERT-3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CertCheck {
    /// The chain reaches a trusted root, every certificate is valid at the time given, and a
    /// SAN DNS-ID of the leaf matches the MX host.
    Valid,
    /// The chain is not acceptable: `certificate-expired`, `certificate-host-mismatch`,
    /// `certificate-not-trusted` or `validation-failure`, with a reason code.
    Invalid(MxFailure),
}

impl CertCheck {
    /// True for [`CertCheck::Valid`].
    pub fn is_valid(&self) -> bool {
        matches!(self, CertCheck::Valid)
    }

    /// The failure, if the check failed.
    pub fn failure(&self) -> Option<&MxFailure> {
        match self {
            CertCheck::Valid => None,
            CertCheck::Invalid(failure) => Some(failure),
        }
    }

    /// The failure, if the check failed: what [`Verdict::decide`](crate::Verdict::decide)
    /// takes.
    pub fn into_failure(self) -> Option<MxFailure> {
        match self {
            CertCheck::Valid => None,
            CertCheck::Invalid(failure) => Some(failure),
        }
    }
}

/// The trust anchors of a verifier: webpki-roots' compiled-in list, or loaded ones.
#[derive(Clone)]
enum Anchors {
    Bundled,
    Loaded(Arc<[TrustAnchor<'static>]>),
}

/// Checks MX certificate chains against a set of trust roots (R-CERT-2, R-CERT-3).
///
/// Build it once (loading the system store takes milliseconds) and share it: it is cheap to
/// clone and thread-safe.
///
/// ```rust
/// use std::time::SystemTime;
/// use mtasts_core::{CertVerifier, TrustRoots};
///
/// let verifier = CertVerifier::new(&TrustRoots::Bundled)?;
/// // A chain is leaf first; here one that is not DER at all is rejected as input.
/// assert!(verifier.check_encoded(b"not a certificate", "mail.example.com", SystemTime::now()).is_err());
/// # Ok::<(), mtasts_core::Error>(())
/// ```
#[derive(Clone)]
pub struct CertVerifier {
    anchors: Anchors,
}

impl fmt::Debug for CertVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.anchors {
            Anchors::Bundled => f.write_str("CertVerifier(bundled roots)"),
            Anchors::Loaded(a) => write!(f, "CertVerifier({} roots)", a.len()),
        }
    }
}

impl CertVerifier {
    /// A verifier trusting `roots`: the system store, the bundled Mozilla roots
    /// (webpki-roots) or the certificates of a PEM file. Fails with [`Error::Config`] when
    /// the roots cannot be loaded or none is usable.
    pub fn new(roots: &TrustRoots) -> Result<CertVerifier> {
        match roots {
            TrustRoots::Bundled => Ok(CertVerifier {
                anchors: Anchors::Bundled,
            }),
            other => CertVerifier::from_der_roots(&other.load()?),
        }
    }

    /// A verifier trusting these root certificates (DER). A root that cannot be parsed is
    /// skipped with a warning; [`Error::Config`] when none is left.
    pub fn from_der_roots(roots: &[CertificateDer<'_>]) -> Result<CertVerifier> {
        let mut anchors = Vec::with_capacity(roots.len());
        for (i, root) in roots.iter().enumerate() {
            match webpki::anchor_from_trusted_cert(root) {
                Ok(anchor) => anchors.push(anchor.to_owned()),
                Err(e) => log::warn!("trust root #{}: unusable, skipped: {e}", i + 1),
            }
        }
        if anchors.is_empty() {
            return Err(Error::Config {
                reason: "no usable trust root certificate".into(),
            });
        }
        Ok(CertVerifier {
            anchors: Anchors::Loaded(anchors.into()),
        })
    }

    /// A verifier trusting the certificates of this PEM text (one or more `CERTIFICATE`
    /// blocks).
    pub fn from_pem_roots(pem: &[u8]) -> Result<CertVerifier> {
        let roots = parse_pem(pem).map_err(|reason| Error::Config {
            reason: format!("trust roots: {reason}"),
        })?;
        CertVerifier::from_der_roots(&roots)
    }

    fn anchors(&self) -> &[TrustAnchor<'static>] {
        match &self.anchors {
            Anchors::Bundled => webpki_roots::TLS_SERVER_ROOTS,
            Anchors::Loaded(anchors) => anchors,
        }
    }

    /// Checks `chain` (leaf first, then intermediates in any order; a root may be included
    /// and is ignored) for MX host `mx_host` at time `at` (usually `SystemTime::now()`).
    ///
    /// R-CERT-2: the chain must reach one of the trust roots, and every certificate on the
    /// path must be valid at `at`. R-CERT-3: a SAN DNS-ID of the leaf must match `mx_host`
    /// (normalised with [`Domain::new`]); no CN fallback; wildcards only as the whole
    /// left-most label. The leaf must also allow serverAuth use. The chain is checked before
    /// the name, so an expired certificate for the wrong host is reported as expired.
    ///
    /// Errors (not failures of the MX): [`Error::InvalidChain`] for an empty chain,
    /// [`Error::InvalidDomain`] for an `mx_host` that is not a host name. A certificate that
    /// webpki cannot parse is a failure of the MX (`certificate-malformed`), not an error.
    pub fn check(
        &self,
        chain: &[CertificateDer<'_>],
        mx_host: &str,
        at: SystemTime,
    ) -> Result<CertCheck> {
        let host = Domain::new(mx_host)?;
        let Some((leaf, intermediates)) = chain.split_first() else {
            return Err(Error::InvalidChain {
                reason: "the chain is empty".into(),
            });
        };
        // A `Domain` is lowercase LDH labels, which is always a valid DNS name for webpki.
        let name = DnsName::try_from(host.as_str())
            .map(|n| ServerName::DnsName(n.to_owned()))
            .map_err(|e| Error::InvalidDomain {
                input: mx_host.to_owned(),
                reason: e.to_string(),
            })?;
        let time = UnixTime::since_unix_epoch(at.duration_since(UNIX_EPOCH).unwrap_or_default());

        let leaf = match EndEntityCert::try_from(leaf) {
            Ok(leaf) => leaf,
            Err(e) => return Ok(CertCheck::Invalid(classify(&e, &host, None))),
        };
        // R-CERT-2: path to a trusted root, validity of every certificate, serverAuth EKU.
        if let Err(e) = leaf.verify_for_usage(
            webpki::ALL_VERIFICATION_ALGS,
            self.anchors(),
            intermediates,
            time,
            KeyUsage::server_auth(),
            None,
            None,
        ) {
            return Ok(CertCheck::Invalid(classify(&e, &host, Some(&leaf))));
        }
        // R-CERT-3: SAN DNS-ID match, RFC 6125 wildcard rules, no CN fallback (webpki never
        // looks at the CN).
        if let Err(e) = leaf.verify_is_valid_for_subject_name(&name) {
            return Ok(CertCheck::Invalid(classify(&e, &host, Some(&leaf))));
        }
        Ok(CertCheck::Valid)
    }

    /// [`CertVerifier::check`] for an encoded chain: PEM (one or more `CERTIFICATE` blocks,
    /// other blocks ignored) or concatenated DER, leaf first (see [`parse_chain`]).
    pub fn check_encoded(&self, chain: &[u8], mx_host: &str, at: SystemTime) -> Result<CertCheck> {
        let chain = parse_chain(chain)?;
        self.check(&chain, mx_host, at)
    }
}

/// Splits an encoded certificate chain into certificates, leaf first.
///
/// Accepted: PEM text with one or more `CERTIFICATE` blocks (other blocks, such as keys, are
/// ignored), or one or more DER certificates concatenated. Only the framing is checked here;
/// the certificates themselves are parsed by webpki during [`CertVerifier::check`].
///
/// [`Error::InvalidChain`] when the input holds no certificate, has bad PEM, or is not DER
/// (every DER certificate is a SEQUENCE with a definite length).
pub fn parse_chain(input: &[u8]) -> Result<Vec<CertificateDer<'static>>> {
    let invalid = |reason: String| Error::InvalidChain { reason };
    let trimmed = input.trim_ascii_start();
    if trimmed.is_empty() {
        return Err(invalid("the input is empty".into()));
    }
    if trimmed.starts_with(b"-----BEGIN") || contains(input, b"-----BEGIN ") {
        return parse_pem(input).map_err(invalid);
    }
    split_der(input).map_err(invalid)
}

fn parse_pem(pem: &[u8]) -> std::result::Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| format!("bad PEM: {e}"))?;
    if certs.is_empty() {
        return Err("no CERTIFICATE block in the PEM text".into());
    }
    Ok(certs)
}

/// Splits concatenated DER certificates by the length of their outer SEQUENCE (X.690 §8.1:
/// tag 0x30, then a definite length in short or long form).
fn split_der(mut der: &[u8]) -> std::result::Result<Vec<CertificateDer<'static>>, String> {
    let mut certs = Vec::new();
    let mut offset = 0;
    while !der.is_empty() {
        let not_der = |why: &str| {
            format!("not a DER certificate at byte {offset}: {why} (expected PEM or DER)")
        };
        if der[0] != 0x30 {
            return Err(not_der("no SEQUENCE tag"));
        }
        let (len, header) = match der.get(1) {
            Some(&n) if n < 0x80 => (usize::from(n), 2),
            Some(&n) if (0x81..=0x84).contains(&n) => {
                let count = usize::from(n & 0x7f);
                let bytes = der
                    .get(2..2 + count)
                    .ok_or_else(|| not_der("truncated length"))?;
                let len = bytes
                    .iter()
                    .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
                (len, 2 + count)
            }
            Some(_) => return Err(not_der("indefinite or oversized length")),
            None => return Err(not_der("truncated")),
        };
        let end = header
            .checked_add(len)
            .filter(|end| *end <= der.len())
            .ok_or_else(|| not_der("truncated certificate"))?;
        certs.push(CertificateDer::from(der[..end].to_vec()));
        der = &der[end..];
        offset += end;
    }
    Ok(certs)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Maps a webpki error to a failure with a reason code (rules §6).
fn classify(e: &webpki::Error, host: &Domain, leaf: Option<&EndEntityCert<'_>>) -> MxFailure {
    use FailureReason as R;
    use webpki::Error as E;
    let (reason, detail) = match e {
        E::CertExpired { time, not_after } => (
            R::CertificateExpired,
            format!(
                "a certificate of the chain expired at {} (checked at {})",
                rfc3339(not_after.as_secs()),
                rfc3339(time.as_secs())
            ),
        ),
        E::CertNotValidYet { time, not_before } => (
            R::CertificateNotYetValid,
            format!(
                "a certificate of the chain is not valid before {} (checked at {})",
                rfc3339(not_before.as_secs()),
                rfc3339(time.as_secs())
            ),
        ),
        E::UnknownIssuer => (
            R::CertificateNotTrusted,
            "the chain does not lead to a trusted root (unknown issuer or a missing \
             intermediate)"
                .into(),
        ),
        E::CertDistrusted => (
            R::CertificateNotTrusted,
            "a certificate's key is explicitly distrusted".into(),
        ),
        E::InvalidSignatureForPublicKey
        | E::UnsupportedSignatureAlgorithmContext(_)
        | E::UnsupportedSignatureAlgorithmForPublicKeyContext(_) => (
            R::CertificateNotTrusted,
            format!("a signature in the chain does not verify: {e}"),
        ),
        E::CertNotValidForName(_) => {
            // Display only: the decision above is webpki's; here the leaf's SAN DNS names
            // are listed to explain it.
            let names: Vec<&str> = leaf
                .map(|l| l.valid_dns_names().collect())
                .unwrap_or_default();
            if names.is_empty() {
                (
                    R::CertificateNoSan,
                    format!(
                        "the certificate has no SAN DNS name, so it is valid for no host \
                         name: a name in the subject CN (such as {host}) is never used \
                         (R-CERT-3, RFC 9525)"
                    ),
                )
            } else {
                (
                    R::CertificateHostMismatch,
                    format!(
                        "the certificate is valid for {}, not for {host}",
                        names.join(", ")
                    ),
                )
            }
        }
        E::CaUsedAsEndEntity => (
            R::CertificateBadUsage,
            "the server presented a CA certificate as its own".into(),
        ),
        E::RequiredEkuNotFoundContext(_) | E::EmptyEkuExtension => (
            R::CertificateBadUsage,
            "the certificate's extended key usage does not allow a TLS server (serverAuth)".into(),
        ),
        E::BadDer
        | E::BadDerTime
        | E::TrailingData(_)
        | E::UnsupportedCertVersion
        | E::UnsupportedCriticalExtension
        | E::MalformedExtensions
        | E::ExtensionValueInvalid
        | E::InvalidSerialNumber
        | E::InvalidCertValidity
        | E::SignatureAlgorithmMismatch
        | E::MalformedDnsIdentifier => (
            R::CertificateMalformed,
            format!("a certificate of the chain cannot be used: {e}"),
        ),
        other => (
            R::CertificateInvalid,
            format!("the chain was rejected: {other}"),
        ),
    };
    MxFailure::new(reason, detail)
}

/// RFC 3339 for seconds since 1970.
fn rfc3339(secs: u64) -> String {
    crate::clock::rfc3339(std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs))
}

/// What a certificate says, for people: subject, issuer, subjectAltNames and validity. Only
/// displayed (by `mtasts check`, [`crate::Diagnosis`]); every decision about a certificate is
/// [`CertVerifier::check`]'s.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertificateInfo {
    /// The subject DN, e.g. `CN=mx.example.com`.
    pub subject: String,
    /// The issuer DN.
    pub issuer: String,
    /// The subjectAltNames, as `DNS:name` or `IP:addr`.
    pub sans: Vec<String>,
    /// Start of validity.
    pub not_before: Option<SystemTime>,
    /// End of validity.
    pub not_after: Option<SystemTime>,
    /// Why the certificate could not be read (then the other fields are empty).
    pub error: Option<String>,
}

impl CertificateInfo {
    /// Reads `der` for display.
    pub fn of(der: &CertificateDer<'_>) -> CertificateInfo {
        use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};
        match X509Certificate::from_der(der.as_ref()) {
            Ok((_, cert)) => {
                let sans = match cert.subject_alternative_name() {
                    Ok(Some(ext)) => ext
                        .value
                        .general_names
                        .iter()
                        .map(|name| match name {
                            GeneralName::DNSName(n) => format!("DNS:{n}"),
                            GeneralName::IPAddress(ip) => match ip.len() {
                                4 => format!(
                                    "IP:{}",
                                    std::net::Ipv4Addr::new(ip[0], ip[1], ip[2], ip[3])
                                ),
                                16 => {
                                    let mut b = [0u8; 16];
                                    b.copy_from_slice(ip);
                                    format!("IP:{}", std::net::Ipv6Addr::from(b))
                                }
                                _ => format!("{name}"),
                            },
                            other => other.to_string(),
                        })
                        .collect(),
                    _ => Vec::new(),
                };
                let time = |secs: i64| {
                    u64::try_from(secs)
                        .ok()
                        .map(|s| UNIX_EPOCH + std::time::Duration::from_secs(s))
                };
                CertificateInfo {
                    subject: cert.subject().to_string(),
                    issuer: cert.issuer().to_string(),
                    sans,
                    not_before: time(cert.validity().not_before.timestamp()),
                    not_after: time(cert.validity().not_after.timestamp()),
                    error: None,
                }
            }
            Err(e) => CertificateInfo {
                subject: String::new(),
                issuer: String::new(),
                sans: Vec::new(),
                not_before: None,
                not_after: None,
                error: Some(format!("cannot display the certificate: {e}")),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ResultType;

    /// Rules §6: webpki's errors map onto the four certificate result types.
    #[test]
    fn webpki_errors_map_to_reason_codes() {
        use webpki::Error as E;
        let host = Domain::new("mail.example.com").unwrap();
        let t = |s| UnixTime::since_unix_epoch(std::time::Duration::from_secs(s));
        let cases: Vec<(E, &str, ResultType)> = vec![
            (
                E::CertExpired {
                    time: t(1_700_000_000),
                    not_after: t(978_307_200),
                },
                "certificate-expired",
                ResultType::CertificateExpired,
            ),
            (
                E::CertNotValidYet {
                    time: t(1_700_000_000),
                    not_before: t(4_039_372_800),
                },
                "certificate-not-yet-valid",
                ResultType::CertificateExpired,
            ),
            (
                E::UnknownIssuer,
                "certificate-not-trusted",
                ResultType::CertificateNotTrusted,
            ),
            (
                E::InvalidSignatureForPublicKey,
                "certificate-not-trusted",
                ResultType::CertificateNotTrusted,
            ),
            (
                E::CertNotValidForName(webpki::InvalidNameContext {
                    expected: ServerName::try_from("mail.example.com").unwrap(),
                    presented: vec![],
                }),
                "certificate-no-san",
                ResultType::CertificateHostMismatch,
            ),
            (
                E::CaUsedAsEndEntity,
                "certificate-bad-usage",
                ResultType::ValidationFailure,
            ),
            (
                E::BadDer,
                "certificate-malformed",
                ResultType::ValidationFailure,
            ),
            (
                E::PathLenConstraintViolated,
                "certificate-invalid",
                ResultType::ValidationFailure,
            ),
            (
                E::NameConstraintViolation,
                "certificate-invalid",
                ResultType::ValidationFailure,
            ),
        ];
        for (error, code, result_type) in cases {
            let f = classify(&error, &host, None);
            assert_eq!(f.reason_code(), code, "{error:?}");
            assert_eq!(f.result_type(), result_type, "{error:?}");
            assert!(!f.detail().is_empty());
        }
        let expired = classify(
            &E::CertExpired {
                time: t(1_700_000_000),
                not_after: t(978_307_200),
            },
            &host,
            None,
        );
        assert!(
            expired.detail().contains("2001-01-01T00:00:00Z"),
            "{expired}"
        );
    }

    #[test]
    fn der_framing() {
        // Two minimal SEQUENCEs, short and long length forms.
        let mut two = vec![0x30, 0x02, 0x05, 0x00];
        two.extend([0x30, 0x81, 0x01, 0x00]);
        let certs = split_der(&two).unwrap();
        assert_eq!(certs.len(), 2);
        assert_eq!(certs[1].as_ref(), &[0x30, 0x81, 0x01, 0x00]);
        for bad in [
            &b"hello"[..],
            &[0x30],
            &[0x30, 0x05, 0x00],
            &[0x30, 0x80, 0x00, 0x00],
            &[0x30, 0x85, 1, 1, 1, 1, 1],
            &[0x30, 0x82, 0x01],
        ] {
            assert!(split_der(bad).is_err(), "{bad:?}");
        }
        assert!(matches!(
            parse_chain(b"  \n"),
            Err(Error::InvalidChain { .. })
        ));
        assert!(matches!(
            parse_chain(b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"),
            Err(Error::InvalidChain { .. })
        ));
    }

    #[test]
    fn rfc3339_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(4_102_444_799), "2099-12-31T23:59:59Z");
    }
}
