//! What is recorded per delivery session for TLS reporting (RFC 8460 §4; R-RPT-3, R-RPT-4,
//! R-RPT-5): the UTC day, the policy that applied, and the outcome. Pure: every face builds a
//! [`Session`] with these constructors and hands it to
//! [`Reporter::record`](crate::Reporter::record); the stores count it.
//!
//! Input is validated once, here, with a typed [`SessionError`]: an empty or invalid domain,
//! an unknown result type, an address that is not an IP address, a field over its length
//! limit. The limits are above what the protocols themselves allow (an SMTP reply line is at
//! most 512 octets, a policy at most [`MAX_POLICY_SIZE`] bytes), so genuine input never hits
//! them; they keep one bad caller from filling the shared store.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::report::{FailureDetail, PolicyType, ReportPolicy};
use crate::clock::{MAX_UNIX_SECONDS, rfc3339};
use crate::domain::Domain;
use crate::error::{Error, ResultType};
use crate::failure::{FailureReason, MxFailure};
use crate::fetch::MAX_POLICY_SIZE;
use crate::mx::MxPattern;
use crate::policy::{Mode, Policy};
use crate::resolution::Resolution;

/// The longest `receiving-mx-helo` accepted, in bytes: an SMTP reply line is at most 512
/// octets (RFC 5321 §4.5.3.1.5), so a greeting name never needs more.
pub const MAX_HELO: usize = 512;
/// The longest `failure-reason-code` accepted, in bytes.
pub const MAX_REASON_CODE: usize = 256;
/// The longest `additional-information` (a URI) accepted, in bytes.
pub const MAX_ADDITIONAL_INFORMATION: usize = 2048;
/// The most failure details one session may carry: RFC 8460 §4.3 registers eleven result
/// types; sixteen leaves room for several MX-side details of one attempt (R-RPT-4).
pub const MAX_SESSION_FAILURES: usize = 16;
/// The largest `policy-string` (and, separately, `mx-host`) accepted: the strings joined by
/// line ends, in bytes. A fetched policy is at most this large (R-FETCH-8).
pub const MAX_POLICY_STRINGS: usize = MAX_POLICY_SIZE as usize;

/// A day in UTC, the unit TLS-RPT reports cover (R-RPT-3, R-RPT-6): from
/// `<day>T00:00:00Z` to `<day>T23:59:59Z`. Written `YYYY-MM-DD`; between 1970-01-01 and
/// 9999-12-31.
///
/// ```rust
/// use std::time::{Duration, UNIX_EPOCH};
/// use mtasts_core::UtcDay;
///
/// let day = UtcDay::of(UNIX_EPOCH + Duration::from_secs(1_796_083_199));
/// assert_eq!(day.to_string(), "2026-11-30");
/// assert_eq!(day.end_datetime(), "2026-11-30T23:59:59Z");
/// assert_eq!("2026-11-30".parse::<UtcDay>()?, day);
/// assert!("2026-02-30".parse::<UtcDay>().is_err());
/// # Ok::<(), mtasts_core::SessionError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UtcDay(u32);

const SECONDS_PER_DAY: u64 = 86_400;

impl UtcDay {
    /// The last day: 9999-12-31 (as [`MAX_UNIX_SECONDS`]).
    pub const MAX: UtcDay = UtcDay((MAX_UNIX_SECONDS / SECONDS_PER_DAY) as u32);

    /// The day `t` falls on. Times before 1970 count as 1970-01-01, times after 9999 as
    /// [`UtcDay::MAX`] (as [`rfc3339`](crate::rfc3339) prints them).
    pub fn of(t: SystemTime) -> UtcDay {
        let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let days = (secs / SECONDS_PER_DAY).min(u64::from(UtcDay::MAX.0));
        // In range: just bounded by MAX, a u32.
        UtcDay(u32::try_from(days).unwrap_or(UtcDay::MAX.0))
    }

    /// Today, by the system clock.
    pub fn today() -> UtcDay {
        UtcDay::of(SystemTime::now())
    }

    /// The day `days` days after 1970-01-01; `None` after [`UtcDay::MAX`].
    pub fn from_days_since_epoch(days: u32) -> Option<UtcDay> {
        (days <= UtcDay::MAX.0).then_some(UtcDay(days))
    }

    /// Days since 1970-01-01.
    pub fn days_since_epoch(self) -> u32 {
        self.0
    }

    /// The first second of the day, `<day>T00:00:00Z`.
    pub fn start(self) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(u64::from(self.0) * SECONDS_PER_DAY)
    }

    /// The last second of the day, `<day>T23:59:59Z` (R-RPT-6's end of the date-range).
    pub fn end(self) -> SystemTime {
        self.start() + Duration::from_secs(SECONDS_PER_DAY - 1)
    }

    /// The day after; `None` after [`UtcDay::MAX`].
    pub fn next(self) -> Option<UtcDay> {
        UtcDay::from_days_since_epoch(self.0 + 1)
    }

    /// The report's `start-datetime` (R-RPT-6): `<day>T00:00:00Z`.
    pub fn start_datetime(self) -> String {
        rfc3339(self.start())
    }

    /// The report's `end-datetime` (R-RPT-6): `<day>T23:59:59Z`.
    pub fn end_datetime(self) -> String {
        rfc3339(self.end())
    }
}

impl fmt::Display for UtcDay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let stamp = rfc3339(self.start());
        f.write_str(&stamp[..10])
    }
}

impl FromStr for UtcDay {
    type Err = SessionError;

    /// `YYYY-MM-DD`, exactly (a real calendar day between 1970-01-01 and 9999-12-31).
    fn from_str(s: &str) -> Result<UtcDay, SessionError> {
        let bad = || SessionError::InvalidDay {
            input: shortened(s),
        };
        let b = s.as_bytes();
        let shape = b.len() == 10
            && b[4] == b'-'
            && b[7] == b'-'
            && b.iter()
                .enumerate()
                .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit());
        if !shape {
            return Err(bad());
        }
        let number = |range: std::ops::Range<usize>| s[range].parse::<i64>().map_err(|_| bad());
        let (year, month, day) = (number(0..4)?, number(5..7)?, number(8..10)?);
        if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
            return Err(bad());
        }
        let days = days_from_civil(year, month, day);
        let parsed = u32::try_from(days)
            .ok()
            .and_then(UtcDay::from_days_since_epoch)
            .ok_or_else(bad)?;
        // 2026-02-30 lands on another day: not a calendar day.
        if parsed.to_string() != s {
            return Err(bad());
        }
        Ok(parsed)
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm, the inverse
/// of the one in [`rfc3339`]).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = if month > 2 { month - 3 } else { month + 9 };
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Why a session cannot be recorded as given.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SessionError {
    /// The policy domain is empty.
    EmptyDomain,
    /// A domain or host name field is not a usable host name.
    InvalidDomain {
        /// The field, e.g. `policy-domain`, `receiving-mx-hostname`.
        field: &'static str,
        /// What was given (shortened).
        input: String,
        /// Why it was rejected.
        reason: String,
    },
    /// A result type that RFC 8460 §4.3 does not register.
    UnknownResultType {
        /// What was given (shortened).
        name: String,
    },
    /// An address field that is not an IPv4 or IPv6 address.
    InvalidIp {
        /// The field, `sending-mta-ip` or `receiving-ip`.
        field: &'static str,
        /// What was given (shortened).
        input: String,
    },
    /// A field longer than its limit.
    FieldTooLong {
        /// The field.
        field: &'static str,
        /// Its length in bytes.
        length: usize,
        /// The limit.
        max: usize,
    },
    /// An `mx-host` entry that is not an MX pattern (R-POL-7).
    InvalidMxPattern {
        /// The pattern (shortened).
        pattern: String,
        /// Why it cannot be used.
        reason: String,
    },
    /// Policy strings or MX patterns given for `no-policy-found`, which has none.
    DetailsWithoutPolicy,
    /// A failed session needs at least one failure detail (R-RPT-4).
    NoFailureDetails,
    /// More failure details than [`MAX_SESSION_FAILURES`].
    TooManyFailureDetails {
        /// How many were given.
        count: usize,
    },
    /// Whether a policy applies could not be told (the shared policy cache is unreadable,
    /// [`Source::CacheUnreadable`](crate::Source::CacheUnreadable)): the message is deferred,
    /// no TLS session took place, and there is nothing to record.
    PolicyCannotBeTold {
        /// The policy domain.
        domain: String,
    },
    /// A day that is not `YYYY-MM-DD` (a calendar day from 1970-01-01 to 9999-12-31).
    InvalidDay {
        /// What was given (shortened).
        input: String,
    },
}

impl fmt::Display for SessionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SessionError::EmptyDomain => f.write_str("the policy domain is empty"),
            SessionError::InvalidDomain {
                field,
                input,
                reason,
            } => write!(f, "{field} {input:?} is not a host name: {reason}"),
            SessionError::UnknownResultType { name } => write!(
                f,
                "unknown result type {name:?} (RFC 8460 §4.3: {})",
                ResultType::ALL.map(ResultType::as_str).join(", ")
            ),
            SessionError::InvalidIp { field, input } => {
                write!(f, "{field} {input:?} is not an IP address")
            }
            SessionError::FieldTooLong { field, length, max } => {
                write!(
                    f,
                    "{field} is {length} bytes long, more than the {max} allowed"
                )
            }
            SessionError::InvalidMxPattern { pattern, reason } => {
                write!(f, "mx-host {pattern:?} is not an MX pattern: {reason}")
            }
            SessionError::DetailsWithoutPolicy => f.write_str(
                "policy strings or mx-host patterns given for no-policy-found, which has none",
            ),
            SessionError::NoFailureDetails => {
                f.write_str("a failed session needs at least one failure detail")
            }
            SessionError::TooManyFailureDetails { count } => write!(
                f,
                "{count} failure details for one session, more than the \
                 {MAX_SESSION_FAILURES} allowed"
            ),
            SessionError::PolicyCannotBeTold { domain } => write!(
                f,
                "whether {domain} has a policy cannot be told (the policy cache is \
                 unreadable): the message is deferred and no session is recorded"
            ),
            SessionError::InvalidDay { input } => {
                write!(f, "{input:?} is not a day (YYYY-MM-DD, 1970 to 9999)")
            }
        }
    }
}

impl std::error::Error for SessionError {}

impl From<SessionError> for Error {
    fn from(e: SessionError) -> Error {
        Error::InvalidSession(e)
    }
}

/// At most 100 characters of `s`, for echoing bad input in an error.
fn shortened(s: &str) -> String {
    const KEEP: usize = 100;
    match s.char_indices().nth(KEEP) {
        Some((cut, _)) => format!("{}...", &s[..cut]),
        None => s.to_string(),
    }
}

/// `value`, unless it is longer than `max`.
fn capped(field: &'static str, value: &str, max: usize) -> Result<(), SessionError> {
    if value.len() > max {
        return Err(SessionError::FieldTooLong {
            field,
            length: value.len(),
            max,
        });
    }
    Ok(())
}

/// The normalised host name in `input` for `field`.
fn host_name(field: &'static str, input: &str) -> Result<Domain, SessionError> {
    if input.is_empty() && field == "policy-domain" {
        return Err(SessionError::EmptyDomain);
    }
    // Longer than any host name (253): rejected before the IDNA processing.
    capped(field, input, 1024)?;
    Domain::new(input).map_err(|e| SessionError::InvalidDomain {
        field,
        input: shortened(input),
        reason: match e {
            Error::InvalidDomain { reason, .. } => reason,
            other => other.to_string(),
        },
    })
}

/// Checks that `strings`, joined by line ends, fit in [`MAX_POLICY_STRINGS`].
fn joined_within(field: &'static str, strings: &[String]) -> Result<(), SessionError> {
    let length = strings
        .iter()
        .map(|s| s.len() + 1)
        .sum::<usize>()
        .saturating_sub(1);
    if length > MAX_POLICY_STRINGS {
        return Err(SessionError::FieldTooLong {
            field,
            length,
            max: MAX_POLICY_STRINGS,
        });
    }
    Ok(())
}

/// The policy a session was under (RFC 8460 §4.4 `policy`): its type, its domain (an
/// A-label, always set: R-RPT-6), and for `sts` the policy's lines and MX patterns
/// (R-RPT-3). Sessions are counted per distinct applied policy.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AppliedPolicy {
    policy_type: PolicyType,
    domain: Domain,
    policy_string: Vec<String>,
    mx_host: Vec<String>,
}

impl AppliedPolicy {
    /// A policy as the faces hand it over: `policy_type`, the policy domain, the
    /// `policy-string` lines (for `sts` the policy's lines, for `tlsa` the TLSA records) and
    /// the `mx-host` patterns.
    ///
    /// # Errors
    /// [`SessionError::EmptyDomain`] or [`SessionError::InvalidDomain`] for the domain (a
    /// U-label is converted to its A-label); [`SessionError::InvalidMxPattern`] for an
    /// `mx-host` entry that is not an MX pattern (entries are normalised, e.g. to lower
    /// case); [`SessionError::FieldTooLong`] when the strings or patterns joined exceed
    /// [`MAX_POLICY_STRINGS`]; [`SessionError::DetailsWithoutPolicy`] for strings or
    /// patterns with [`PolicyType::NoPolicyFound`].
    pub fn new(
        policy_type: PolicyType,
        domain: &str,
        policy_string: Vec<String>,
        mx_host: Vec<String>,
    ) -> Result<AppliedPolicy, SessionError> {
        let domain = host_name("policy-domain", domain)?;
        if policy_type == PolicyType::NoPolicyFound
            && (!policy_string.is_empty() || !mx_host.is_empty())
        {
            return Err(SessionError::DetailsWithoutPolicy);
        }
        joined_within("policy-string", &policy_string)?;
        joined_within("mx-host", &mx_host)?;
        let mx_host = mx_host
            .iter()
            .map(|p| {
                MxPattern::parse(p)
                    .map(|p| p.as_str().to_string())
                    .map_err(|e| SessionError::InvalidMxPattern {
                        pattern: shortened(p),
                        reason: match e {
                            Error::InvalidMxPattern { reason, .. } => reason,
                            other => other.to_string(),
                        },
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(AppliedPolicy {
            policy_type,
            domain,
            policy_string,
            mx_host,
        })
    }

    /// The MTA-STS `policy` of `domain` (R-RPT-3): `policy-string` is the policy's lines as
    /// fetched (R-POL-8; line ends, a byte order mark and blank lines removed), `mx-host` its
    /// MX patterns. A `testing` policy is recorded exactly like an `enforce` one.
    ///
    /// # Errors
    /// [`SessionError::FieldTooLong`] for a policy larger than [`MAX_POLICY_STRINGS`] (a
    /// fetched policy never is).
    pub fn sts(domain: &Domain, policy: &Policy) -> Result<AppliedPolicy, SessionError> {
        let text = policy.text();
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let policy_string: Vec<String> = text
            .split('\n')
            .map(|line| line.strip_suffix('\r').unwrap_or(line))
            .filter(|line| !line.trim().is_empty())
            .map(str::to_string)
            .collect();
        let mx_host: Vec<String> = policy.mx().iter().map(|p| p.as_str().to_string()).collect();
        joined_within("policy-string", &policy_string)?;
        joined_within("mx-host", &mx_host)?;
        Ok(AppliedPolicy {
            policy_type: PolicyType::Sts,
            domain: domain.clone(),
            policy_string,
            mx_host,
        })
    }

    /// DANE applied (`tlsa`): `records` are the TLSA records as presentation text (RFC 8460
    /// §4.4 `policy-string`).
    ///
    /// # Errors
    /// As [`AppliedPolicy::new`].
    pub fn tlsa(domain: &str, records: Vec<String>) -> Result<AppliedPolicy, SessionError> {
        AppliedPolicy::new(PolicyType::Tlsa, domain, records, Vec::new())
    }

    /// No policy applied (`no-policy-found`).
    ///
    /// # Errors
    /// [`SessionError::EmptyDomain`] or [`SessionError::InvalidDomain`].
    pub fn no_policy_found(domain: &str) -> Result<AppliedPolicy, SessionError> {
        AppliedPolicy::new(PolicyType::NoPolicyFound, domain, Vec::new(), Vec::new())
    }

    /// The policy a resolution applied: `sts` with the policy's lines and patterns when it
    /// has a `testing` or `enforce` policy (R-RPT-3; a cached policy used after a failed
    /// refresh included, R-RPT-5), `no-policy-found` when it has none or one in mode `none`
    /// (R-RPT-11).
    ///
    /// # Errors
    /// [`SessionError::PolicyCannotBeTold`] when whether a policy applies cannot be told
    /// ([`Source::CacheUnreadable`](crate::Source::CacheUnreadable)): the message is deferred,
    /// there was no session. [`SessionError::FieldTooLong`] as for [`AppliedPolicy::sts`].
    pub fn from_resolution(resolution: &Resolution) -> Result<AppliedPolicy, SessionError> {
        let domain = resolution.domain();
        if resolution.source().cannot_tell() {
            return Err(SessionError::PolicyCannotBeTold {
                domain: domain.to_string(),
            });
        }
        match resolution.policy() {
            // R-RPT-11: `mode: none` means "as though it does not have any active policy"
            // (RFC 8461 §5), so its sessions are reported as no-policy-found.
            Some(policy) if policy.mode() != Mode::None => AppliedPolicy::sts(domain, policy),
            _ => Ok(AppliedPolicy {
                policy_type: PolicyType::NoPolicyFound,
                domain: domain.clone(),
                policy_string: Vec::new(),
                mx_host: Vec::new(),
            }),
        }
    }

    /// `policy-type`.
    pub fn policy_type(&self) -> PolicyType {
        self.policy_type
    }

    /// `policy-domain`, an A-label.
    pub fn domain(&self) -> &Domain {
        &self.domain
    }

    /// `policy-string`.
    pub fn policy_string(&self) -> &[String] {
        &self.policy_string
    }

    /// `mx-host`.
    pub fn mx_host(&self) -> &[String] {
        &self.mx_host
    }

    /// As the report writes it.
    pub fn to_report_policy(&self) -> ReportPolicy {
        ReportPolicy {
            policy_type: self.policy_type,
            policy_string: self.policy_string.clone(),
            policy_domain: self.domain.to_string(),
            mx_host: self.mx_host.clone(),
        }
    }
}

/// One failure of a session (RFC 8460 §4.4 `failure-details`), counted per distinct value
/// (R-RPT-4). Only the result type is required; the other fields are set with the builder
/// methods, each validated. An empty string given for a field means "not known" (C and
/// Python callers pass one), as if the field had not been set.
///
/// ```rust
/// use mtasts_core::{ResultType, SessionFailure};
///
/// let failure = SessionFailure::from_name("certificate-expired")?
///     .sending_mta_ip("192.0.2.1")?
///     .receiving_mx_hostname("MX1.example.com.")?
///     .receiving_ip("2001:db8::25")?;
/// assert_eq!(failure.result_type(), ResultType::CertificateExpired);
/// assert_eq!(failure.to_detail(2).receiving_mx_hostname.as_deref(), Some("mx1.example.com"));
/// assert!(SessionFailure::from_name("certificate-expried").is_err());
/// # Ok::<(), mtasts_core::SessionError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionFailure {
    result_type: ResultType,
    sending_mta_ip: Option<IpAddr>,
    receiving_mx_hostname: Option<Domain>,
    receiving_mx_helo: Option<String>,
    receiving_ip: Option<IpAddr>,
    failure_reason_code: Option<String>,
    additional_information: Option<String>,
}

impl SessionFailure {
    /// A failure of `result_type`, nothing else known yet.
    pub fn new(result_type: ResultType) -> SessionFailure {
        SessionFailure {
            result_type,
            sending_mta_ip: None,
            receiving_mx_hostname: None,
            receiving_mx_helo: None,
            receiving_ip: None,
            failure_reason_code: None,
            additional_information: None,
        }
    }

    /// A failure of the result type named `name` (RFC 8460 §4.3, e.g.
    /// `starttls-not-supported`).
    ///
    /// # Errors
    /// [`SessionError::UnknownResultType`] for any other string.
    pub fn from_name(name: &str) -> Result<SessionFailure, SessionError> {
        ResultType::from_name(name)
            .map(SessionFailure::new)
            .ok_or_else(|| SessionError::UnknownResultType {
                name: shortened(name),
            })
    }

    /// The failure mtasts found at an MX host: its result type, and its stable reason code
    /// (e.g. `certificate-not-yet-valid`) as `failure-reason-code`.
    pub fn from_mx_failure(failure: &MxFailure) -> SessionFailure {
        SessionFailure {
            failure_reason_code: Some(failure.reason_code().to_string()),
            ..SessionFailure::new(failure.result_type())
        }
    }

    /// R-RPT-5: the failure to obtain the MTA-STS policy that `error` describes
    /// (`sts-policy-fetch-error`, `sts-policy-invalid`, `sts-webpki-invalid`), with the
    /// error's kind (e.g. `policy-fetch`, `dns-temporary`) as `failure-reason-code`: a stable
    /// code, so the day's sessions group into few details. `None` for an error that is no
    /// policy failure (e.g. a cache error).
    pub fn from_policy_failure(error: &Error) -> Option<SessionFailure> {
        let result_type = error.result_type().filter(|t| {
            matches!(
                t,
                ResultType::StsPolicyFetchError
                    | ResultType::StsPolicyInvalid
                    | ResultType::StsWebpkiInvalid
            )
        })?;
        Some(SessionFailure {
            failure_reason_code: Some(error.kind().to_string()),
            ..SessionFailure::new(result_type)
        })
    }

    /// This failure with the result type of `reason` and its stable code as
    /// `failure-reason-code` (as [`SessionFailure::from_mx_failure`]), the other fields kept:
    /// for a face that knows the MX-side fields before it knows what failed.
    pub fn with_reason(self, reason: FailureReason) -> SessionFailure {
        SessionFailure {
            result_type: reason.result_type(),
            failure_reason_code: Some(reason.code().to_string()),
            ..self
        }
    }

    /// This failure with `result_type`, the other fields kept.
    pub fn with_result_type(self, result_type: ResultType) -> SessionFailure {
        SessionFailure {
            result_type,
            ..self
        }
    }

    /// `sending-mta-ip`: the address the sending MTA connected from.
    ///
    /// # Errors
    /// [`SessionError::InvalidIp`] unless `ip` is an IPv4 or IPv6 address (or empty).
    pub fn sending_mta_ip(mut self, ip: &str) -> Result<SessionFailure, SessionError> {
        self.sending_mta_ip = ip_field("sending-mta-ip", ip)?;
        Ok(self)
    }

    /// `receiving-ip`: the MX host's address.
    ///
    /// # Errors
    /// [`SessionError::InvalidIp`] unless `ip` is an IPv4 or IPv6 address (or empty).
    pub fn receiving_ip(mut self, ip: &str) -> Result<SessionFailure, SessionError> {
        self.receiving_ip = ip_field("receiving-ip", ip)?;
        Ok(self)
    }

    /// `receiving-mx-hostname`: the MX host name, normalised to an A-label (R-RPT-6).
    ///
    /// # Errors
    /// [`SessionError::InvalidDomain`] unless `host` is a host name (or empty).
    pub fn receiving_mx_hostname(mut self, host: &str) -> Result<SessionFailure, SessionError> {
        self.receiving_mx_hostname = if host.is_empty() {
            None
        } else {
            Some(host_name("receiving-mx-hostname", host)?)
        };
        Ok(self)
    }

    /// `receiving-mx-helo`: the name the MX gave in its greeting or EHLO reply, as given.
    ///
    /// # Errors
    /// [`SessionError::FieldTooLong`] beyond [`MAX_HELO`] bytes.
    pub fn receiving_mx_helo(mut self, helo: &str) -> Result<SessionFailure, SessionError> {
        self.receiving_mx_helo = text_field("receiving-mx-helo", helo, MAX_HELO)?;
        Ok(self)
    }

    /// `failure-reason-code`: a TLS error code or message.
    ///
    /// # Errors
    /// [`SessionError::FieldTooLong`] beyond [`MAX_REASON_CODE`] bytes.
    pub fn failure_reason_code(mut self, code: &str) -> Result<SessionFailure, SessionError> {
        self.failure_reason_code = text_field("failure-reason-code", code, MAX_REASON_CODE)?;
        Ok(self)
    }

    /// `additional-information`: a URI pointing at more about the failure.
    ///
    /// # Errors
    /// [`SessionError::FieldTooLong`] beyond [`MAX_ADDITIONAL_INFORMATION`] bytes.
    pub fn additional_information(mut self, uri: &str) -> Result<SessionFailure, SessionError> {
        self.additional_information =
            text_field("additional-information", uri, MAX_ADDITIONAL_INFORMATION)?;
        Ok(self)
    }

    /// `result-type`.
    pub fn result_type(&self) -> ResultType {
        self.result_type
    }

    /// This failure as a report's `failure-details` entry counting `count` sessions.
    pub fn to_detail(&self, count: u64) -> FailureDetail {
        FailureDetail {
            result_type: self.result_type.as_str().to_string(),
            sending_mta_ip: self.sending_mta_ip.map(|ip| ip.to_string()),
            receiving_mx_hostname: self.receiving_mx_hostname.as_ref().map(Domain::to_string),
            receiving_mx_helo: self.receiving_mx_helo.clone(),
            receiving_ip: self.receiving_ip.map(|ip| ip.to_string()),
            failed_session_count: count,
            additional_information: self.additional_information.clone(),
            failure_reason_code: self.failure_reason_code.clone(),
        }
    }
}

fn ip_field(field: &'static str, input: &str) -> Result<Option<IpAddr>, SessionError> {
    if input.is_empty() {
        return Ok(None);
    }
    input
        .parse::<IpAddr>()
        .map(Some)
        .map_err(|_| SessionError::InvalidIp {
            field,
            input: shortened(input),
        })
}

fn text_field(
    field: &'static str,
    input: &str,
    max: usize,
) -> Result<Option<String>, SessionError> {
    capped(field, input, max)?;
    Ok((!input.is_empty()).then(|| input.to_string()))
}

/// One delivery session (R-RPT-3: one attempt to negotiate TLS with one MX host), as
/// recorded: the UTC day, the policy applied, and success or the failure details.
///
/// ```rust
/// use mtasts_core::{AppliedPolicy, ResultType, Session, SessionFailure, UtcDay};
///
/// let day: UtcDay = "2026-12-01".parse()?;
/// let policy = AppliedPolicy::no_policy_found("example.com")?;
/// let ok = Session::success(day, policy.clone());
/// assert!(ok.is_success());
/// let failed = Session::failure(
///     day,
///     policy,
///     vec![SessionFailure::new(ResultType::StarttlsNotSupported).receiving_mx_hostname("mx2.example.com")?],
/// )?;
/// assert_eq!(failed.failures().len(), 1);
/// # Ok::<(), mtasts_core::SessionError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Session {
    day: UtcDay,
    policy: AppliedPolicy,
    failures: Vec<SessionFailure>,
}

impl Session {
    /// A successful session on `day` under `policy`.
    pub fn success(day: UtcDay, policy: AppliedPolicy) -> Session {
        Session {
            day,
            policy,
            failures: Vec::new(),
        }
    }

    /// A failed session on `day` under `policy`, with its failure details (R-RPT-4: one
    /// attempt may count under several result types). A detail given twice counts once:
    /// details count sessions. Failures under a `testing` policy are recorded exactly like
    /// those under `enforce` (R-RPT-3).
    ///
    /// # Errors
    /// [`SessionError::NoFailureDetails`] for none, [`SessionError::TooManyFailureDetails`]
    /// for more than [`MAX_SESSION_FAILURES`].
    pub fn failure(
        day: UtcDay,
        policy: AppliedPolicy,
        failures: impl IntoIterator<Item = SessionFailure>,
    ) -> Result<Session, SessionError> {
        let failures = distinct(failures.into_iter().collect())?;
        if failures.is_empty() {
            return Err(SessionError::NoFailureDetails);
        }
        Ok(Session {
            day,
            policy,
            failures,
        })
    }

    /// A session on `day` under the policy `resolution` applied ([`AppliedPolicy::from_resolution`]),
    /// with `tls_failures` seen at the MX host (empty: TLS succeeded). When the resolution
    /// failed to obtain the policy (a fetch error, an invalid policy, a rejected
    /// certificate, a DNS failure, a fetch backoff), that failure is a failure detail of
    /// the session too (R-RPT-5), so the session is failed even if TLS succeeded.
    ///
    /// # Errors
    /// As [`AppliedPolicy::from_resolution`] and [`Session::failure`].
    pub fn from_resolution(
        day: UtcDay,
        resolution: &Resolution,
        tls_failures: Vec<SessionFailure>,
    ) -> Result<Session, SessionError> {
        let policy = AppliedPolicy::from_resolution(resolution)?;
        let mut failures = tls_failures;
        if let Some(failure) = resolution
            .failure()
            .and_then(SessionFailure::from_policy_failure)
        {
            failures.insert(0, failure);
        }
        if failures.is_empty() {
            Ok(Session::success(day, policy))
        } else {
            Session::failure(day, policy, failures)
        }
    }

    /// The UTC day the session is counted on.
    pub fn day(&self) -> UtcDay {
        self.day
    }

    /// The policy applied.
    pub fn policy(&self) -> &AppliedPolicy {
        &self.policy
    }

    /// The failure details, distinct and in a stable order; empty for a success.
    pub fn failures(&self) -> &[SessionFailure] {
        &self.failures
    }

    /// True for a successful session.
    pub fn is_success(&self) -> bool {
        self.failures.is_empty()
    }
}

/// `failures` sorted, without repeats, within [`MAX_SESSION_FAILURES`].
fn distinct(mut failures: Vec<SessionFailure>) -> Result<Vec<SessionFailure>, SessionError> {
    failures.sort();
    failures.dedup();
    if failures.len() > MAX_SESSION_FAILURES {
        return Err(SessionError::TooManyFailureDetails {
            count: failures.len(),
        });
    }
    Ok(failures)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::failure::FailureReason;

    fn day() -> UtcDay {
        "2026-12-01".parse().unwrap()
    }

    #[test]
    fn days_print_parse_and_bound() {
        for (text, days) in [
            ("1970-01-01", 0),
            ("2000-02-29", 11_016),
            ("2026-12-01", 20_788),
            ("9999-12-31", UtcDay::MAX.days_since_epoch()),
        ] {
            let day: UtcDay = text.parse().unwrap();
            assert_eq!(day.days_since_epoch(), days, "{text}");
            assert_eq!(day.to_string(), text);
            assert_eq!(UtcDay::of(day.start()), day);
            assert_eq!(
                UtcDay::of(day.end()),
                day,
                "the last second is the same day"
            );
        }
        assert_eq!(day().start_datetime(), "2026-12-01T00:00:00Z");
        assert_eq!(day().end_datetime(), "2026-12-01T23:59:59Z");
        assert_eq!(day().next().unwrap().to_string(), "2026-12-02");
        assert_eq!(UtcDay::MAX.next(), None);
        assert_eq!(
            UtcDay::of(UNIX_EPOCH - Duration::from_secs(5)).to_string(),
            "1970-01-01"
        );
        for bad in [
            "",
            "2026-12-1",
            "2026-13-01",
            "2026-02-30",
            "2026-00-10",
            "1969-12-31",
            "2026/12/01",
            "+026-12-01",
            "2026-12-01T00:00:00Z",
        ] {
            assert!(
                matches!(bad.parse::<UtcDay>(), Err(SessionError::InvalidDay { .. })),
                "{bad:?}"
            );
        }
    }

    const TESTING: &str =
        "version: STSv1\r\nmode: testing\r\nmx: *.example.com\r\n\r\nmax_age: 86400\r\n";

    #[test]
    fn an_sts_policy_gives_its_lines_and_patterns_testing_like_enforce() {
        let domain = Domain::new("example.com").unwrap();
        let policy = Policy::parse(&format!("\u{feff}{TESTING}")).unwrap();
        let applied = AppliedPolicy::sts(&domain, &policy).unwrap();
        assert_eq!(applied.policy_type(), PolicyType::Sts);
        assert_eq!(
            applied.policy_string(),
            [
                "version: STSv1",
                "mode: testing",
                "mx: *.example.com",
                "max_age: 86400"
            ]
        );
        assert_eq!(applied.mx_host(), ["*.example.com"]);
        let report = applied.to_report_policy();
        assert_eq!(report.policy_domain, "example.com");
        let enforce = Policy::parse(&TESTING.replace("testing", "enforce")).unwrap();
        assert_eq!(
            AppliedPolicy::sts(&domain, &enforce).unwrap().policy_type(),
            PolicyType::Sts,
            "R-RPT-3: the same type whatever the mode"
        );
    }

    #[test]
    fn policies_from_faces_are_validated() {
        let ok = AppliedPolicy::new(
            PolicyType::Sts,
            "Bücher.example.",
            vec!["version: STSv1".into()],
            vec!["*.Example.COM".into()],
        )
        .unwrap();
        assert_eq!(ok.domain().as_str(), "xn--bcher-kva.example");
        assert_eq!(ok.mx_host(), ["*.example.com"]);
        let tlsa = AppliedPolicy::tlsa("example.com", vec!["3 1 1 abcd".into()]).unwrap();
        assert_eq!(tlsa.policy_type(), PolicyType::Tlsa);
        let huge = vec!["x".repeat(MAX_POLICY_STRINGS + 1)];
        let cases: Vec<(Result<AppliedPolicy, SessionError>, &str)> = vec![
            (AppliedPolicy::no_policy_found(""), "empty"),
            (
                AppliedPolicy::no_policy_found("192.0.2.1"),
                "not a host name",
            ),
            (
                AppliedPolicy::no_policy_found(&"a".repeat(5000)),
                "5000 bytes",
            ),
            (
                AppliedPolicy::new(PolicyType::Sts, "example.com", huge, vec![]),
                "policy-string is 65537 bytes",
            ),
            (
                AppliedPolicy::new(PolicyType::Sts, "example.com", vec![], vec!["a*.b".into()]),
                "not an MX pattern",
            ),
            (
                AppliedPolicy::new(
                    PolicyType::NoPolicyFound,
                    "example.com",
                    vec!["x".into()],
                    vec![],
                ),
                "no-policy-found",
            ),
        ];
        for (result, says) in cases {
            let e = result.unwrap_err();
            assert!(e.to_string().contains(says), "{e}");
        }
        assert_eq!(
            AppliedPolicy::no_policy_found("").unwrap_err(),
            SessionError::EmptyDomain
        );
    }

    #[test]
    fn failure_fields_are_typed_and_capped() {
        let f = SessionFailure::from_name("starttls-not-supported")
            .unwrap()
            .sending_mta_ip("192.0.2.1")
            .unwrap()
            .receiving_ip("")
            .unwrap()
            .receiving_mx_helo("mx2.example.com")
            .unwrap()
            .failure_reason_code("")
            .unwrap();
        let detail = f.to_detail(1);
        assert_eq!(detail.result_type, "starttls-not-supported");
        assert_eq!(detail.sending_mta_ip.as_deref(), Some("192.0.2.1"));
        assert_eq!(detail.receiving_ip, None, "empty means not known");
        assert_eq!(detail.failure_reason_code, None);
        assert_eq!(detail.receiving_mx_helo.as_deref(), Some("mx2.example.com"));
        let base = || SessionFailure::new(ResultType::ValidationFailure);
        let errors = [
            SessionFailure::from_name("tls-failure").unwrap_err(),
            base().sending_mta_ip("mx.example.com").unwrap_err(),
            base().receiving_ip("300.1.1.1").unwrap_err(),
            base()
                .receiving_mx_hostname("mx_1.example.com")
                .unwrap_err(),
            base()
                .receiving_mx_helo(&"h".repeat(MAX_HELO + 1))
                .unwrap_err(),
            base()
                .failure_reason_code(&"c".repeat(MAX_REASON_CODE + 1))
                .unwrap_err(),
            base()
                .additional_information(&"u".repeat(MAX_ADDITIONAL_INFORMATION + 1))
                .unwrap_err(),
        ];
        assert!(matches!(errors[0], SessionError::UnknownResultType { .. }));
        assert!(matches!(
            errors[1],
            SessionError::InvalidIp {
                field: "sending-mta-ip",
                ..
            }
        ));
        assert!(matches!(
            errors[2],
            SessionError::InvalidIp {
                field: "receiving-ip",
                ..
            }
        ));
        assert!(matches!(
            errors[3],
            SessionError::InvalidDomain {
                field: "receiving-mx-hostname",
                ..
            }
        ));
        for (e, field) in errors[4..].iter().zip([
            "receiving-mx-helo",
            "failure-reason-code",
            "additional-information",
        ]) {
            assert!(
                matches!(e, SessionError::FieldTooLong { field: f, .. } if *f == field),
                "{e:?}"
            );
        }
        // Limits are inclusive.
        assert!(base().receiving_mx_helo(&"h".repeat(MAX_HELO)).is_ok());
        // Echoed input is shortened.
        let long = SessionFailure::from_name(&"z".repeat(10_000))
            .unwrap_err()
            .to_string();
        assert!(long.len() < 400, "{long}");
    }

    #[test]
    fn sessions_need_details_and_count_each_distinct_one_once() {
        let policy = AppliedPolicy::no_policy_found("example.com").unwrap();
        let expired = SessionFailure::from_mx_failure(&MxFailure::new(
            FailureReason::CertificateNotYetValid,
            "not yet",
        ));
        assert_eq!(expired.result_type(), ResultType::CertificateExpired);
        assert_eq!(
            expired.to_detail(1).failure_reason_code.as_deref(),
            Some("certificate-not-yet-valid")
        );
        let s = Session::failure(
            day(),
            policy.clone(),
            vec![expired.clone(), expired.clone()],
        )
        .unwrap();
        assert_eq!(
            s.failures(),
            std::slice::from_ref(&expired),
            "a repeat counts once"
        );
        assert!(!s.is_success());
        assert_eq!(
            Session::failure(day(), policy.clone(), vec![]).unwrap_err(),
            SessionError::NoFailureDetails
        );
        let many: Vec<SessionFailure> = (0..=MAX_SESSION_FAILURES)
            .map(|i| {
                SessionFailure::new(ResultType::ValidationFailure)
                    .failure_reason_code(&format!("c{i}"))
                    .unwrap()
            })
            .collect();
        assert_eq!(
            Session::failure(day(), policy, many).unwrap_err(),
            SessionError::TooManyFailureDetails { count: 17 }
        );
    }

    #[test]
    fn r_rpt_5_policy_failures_become_details_and_others_do_not() {
        let fetch = Error::PolicyFetch {
            url: "https://mta-sts.example.com/.well-known/mta-sts.txt".into(),
            reason: "HTTP status 500".into(),
        };
        let f = SessionFailure::from_policy_failure(&fetch).unwrap();
        assert_eq!(f.result_type(), ResultType::StsPolicyFetchError);
        assert_eq!(
            f.to_detail(1).failure_reason_code.as_deref(),
            Some("policy-fetch")
        );
        let cert = Error::PolicyCertificate {
            url: "u".into(),
            reason: "r".into(),
        };
        assert_eq!(
            SessionFailure::from_policy_failure(&cert)
                .unwrap()
                .result_type(),
            ResultType::StsWebpkiInvalid
        );
        let cache = Error::Cache { reason: "r".into() };
        assert_eq!(SessionFailure::from_policy_failure(&cache), None);
    }
}
