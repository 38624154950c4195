//! The datagram sys4's libtlsrpt sends, one per delivery attempt, to the Unix datagram socket
//! of a TLSRPT collector (`tlsrpt-collectd`); Postfix 3.10 and later speak it when built with
//! libtlsrpt (issue 15, item 3). Pure: [`Datagram::parse`] reads one, hostile input included,
//! and [`Datagram::to_bytes`] writes exactly the bytes libtlsrpt writes for the same content.
//! The codes map to and from RFC 8460's result types and policy types, and the policies and
//! failures to and from the report's [`ReportPolicy`] and [`FailureDetail`].
//!
//! The wire format, datagram protocol version `"dpv": "1"` (libtlsrpt 0.5.0 and later), is a
//! JSON object written without a serializer, so its spacing is fixed: a string member is
//! written `"key": "value"` (one space), a number member `"key":2` (none), arrays without
//! spaces, and members in this order:
//!
//! ```text
//! {"dpv": "1","d": "<TLSRPT policy domain>","pr": "<TLSRPT record>","policies":[
//!   {"policy-type":2,"policy-domain": "<d>","policy-string":["<line>",...],
//!    "mx-host":["<pattern>",...],
//!    "failure-details":[{"c":205,"s": "<sending-mta-ip>","n": "<receiving-mx-hostname>",
//!       "h": "<receiving-mx-helo>","r": "<receiving-ip>","a": "<additional-information>",
//!       "f": "<failure-reason-code>"},...],
//!    "t":<number of failure details>,"f":<0 success, 1 failure>},...]}
//! ```
//!
//! `policy-domain`, each failure field but `c`, and each array that would be empty are left
//! out. The datagram carries no time: the collector counts it under the UTC day it arrives.

use std::fmt;

use serde_json::{Map, Value};

use super::report::{FailureDetail, PolicyType, ReportPolicy};
use super::session::{AppliedPolicy, Session, SessionError, SessionFailure, UtcDay};
use crate::error::ResultType;

/// The datagram protocol version this module reads and writes (the `dpv` member).
pub const DATAGRAM_PROTOCOL_VERSION: &str = "1";

/// The largest datagram [`Datagram::parse`] reads and [`Datagram::to_bytes`] writes, in bytes.
///
/// libtlsrpt sets no limit of its own and tlsrpt-collectd reads up to 16 MiB; the kernel sets
/// the real one. On Linux a Unix datagram may be as large as the sender's send buffer allows,
/// which libtlsrpt leaves at `net.core.wmem_default` (212992): 212960 bytes were the most
/// measured. A policy alone may be 64 KiB (R-FETCH-8), so a 64 KiB cap could refuse a
/// datagram Postfix sends; 256 KiB takes everything libtlsrpt can deliver with the default
/// settings and still bounds what one datagram can cost.
pub const MAX_DATAGRAM: usize = 256 * 1024;

/// The most characters of a hostile value an error message repeats.
const MAX_QUOTED: usize = 64;

/// A policy type as libtlsrpt numbers it (`tlsrpt_policy_type_t`, the `policy-type` member).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum DatagramPolicyType {
    /// `1`: DANE TLSA records (RFC 8460 `tlsa`).
    Tlsa,
    /// `2`: an MTA-STS policy (RFC 8460 `sts`).
    Sts,
    /// `9`: no policy (RFC 8460 `no-policy-found`).
    NoPolicyFound,
}

impl DatagramPolicyType {
    /// Every policy type, in code order.
    pub const ALL: [DatagramPolicyType; 3] = [
        DatagramPolicyType::Tlsa,
        DatagramPolicyType::Sts,
        DatagramPolicyType::NoPolicyFound,
    ];

    /// The number on the wire.
    pub fn code(self) -> u8 {
        match self {
            DatagramPolicyType::Tlsa => 1,
            DatagramPolicyType::Sts => 2,
            DatagramPolicyType::NoPolicyFound => 9,
        }
    }

    /// The policy type numbered `code`; `None` for a number libtlsrpt does not define.
    pub fn from_code(code: u64) -> Option<DatagramPolicyType> {
        Self::ALL.into_iter().find(|t| u64::from(t.code()) == code)
    }

    /// The RFC 8460 §4.4 policy type.
    pub fn policy_type(self) -> PolicyType {
        match self {
            DatagramPolicyType::Tlsa => PolicyType::Tlsa,
            DatagramPolicyType::Sts => PolicyType::Sts,
            DatagramPolicyType::NoPolicyFound => PolicyType::NoPolicyFound,
        }
    }

    /// The code for an RFC 8460 policy type (every one has a code).
    pub fn from_policy_type(policy_type: PolicyType) -> DatagramPolicyType {
        match policy_type {
            PolicyType::Tlsa => DatagramPolicyType::Tlsa,
            PolicyType::Sts => DatagramPolicyType::Sts,
            PolicyType::NoPolicyFound => DatagramPolicyType::NoPolicyFound,
        }
    }
}

/// A failure as libtlsrpt numbers it (`tlsrpt_failure_t`, the `c` member of a failure): one
/// code per RFC 8460 §4.3 result type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum FailureCode {
    /// `201`: `starttls-not-supported`.
    StarttlsNotSupported,
    /// `202`: `certificate-host-mismatch`.
    CertificateHostMismatch,
    /// `203`: `certificate-not-trusted`.
    CertificateNotTrusted,
    /// `204`: `certificate-expired`.
    CertificateExpired,
    /// `205`: `validation-failure`.
    ValidationFailure,
    /// `301`: `sts-policy-fetch-error`.
    StsPolicyFetchError,
    /// `302`: `sts-policy-invalid`.
    StsPolicyInvalid,
    /// `303`: `sts-webpki-invalid`.
    StsWebpkiInvalid,
    /// `304`: `tlsa-invalid`.
    TlsaInvalid,
    /// `305`: `dnssec-invalid`.
    DnssecInvalid,
    /// `306`: `dane-required`.
    DaneRequired,
}

impl FailureCode {
    /// Every code, in code order.
    pub const ALL: [FailureCode; 11] = [
        FailureCode::StarttlsNotSupported,
        FailureCode::CertificateHostMismatch,
        FailureCode::CertificateNotTrusted,
        FailureCode::CertificateExpired,
        FailureCode::ValidationFailure,
        FailureCode::StsPolicyFetchError,
        FailureCode::StsPolicyInvalid,
        FailureCode::StsWebpkiInvalid,
        FailureCode::TlsaInvalid,
        FailureCode::DnssecInvalid,
        FailureCode::DaneRequired,
    ];

    /// The number on the wire.
    pub fn code(self) -> u16 {
        match self {
            FailureCode::StarttlsNotSupported => 201,
            FailureCode::CertificateHostMismatch => 202,
            FailureCode::CertificateNotTrusted => 203,
            FailureCode::CertificateExpired => 204,
            FailureCode::ValidationFailure => 205,
            FailureCode::StsPolicyFetchError => 301,
            FailureCode::StsPolicyInvalid => 302,
            FailureCode::StsWebpkiInvalid => 303,
            FailureCode::TlsaInvalid => 304,
            FailureCode::DnssecInvalid => 305,
            FailureCode::DaneRequired => 306,
        }
    }

    /// The failure numbered `code`; `None` for any other number, including libtlsrpt's
    /// internal `901` (`TLSRPT_UNFINISHED_POLICY`), which it never sends.
    pub fn from_code(code: u64) -> Option<FailureCode> {
        Self::ALL.into_iter().find(|c| u64::from(c.code()) == code)
    }

    /// The RFC 8460 §4.3 result-type string, e.g. `validation-failure`.
    pub fn result_type_name(self) -> &'static str {
        match self {
            FailureCode::StarttlsNotSupported => "starttls-not-supported",
            FailureCode::CertificateHostMismatch => "certificate-host-mismatch",
            FailureCode::CertificateNotTrusted => "certificate-not-trusted",
            FailureCode::CertificateExpired => "certificate-expired",
            FailureCode::ValidationFailure => "validation-failure",
            FailureCode::StsPolicyFetchError => "sts-policy-fetch-error",
            FailureCode::StsPolicyInvalid => "sts-policy-invalid",
            FailureCode::StsWebpkiInvalid => "sts-webpki-invalid",
            FailureCode::TlsaInvalid => "tlsa-invalid",
            FailureCode::DnssecInvalid => "dnssec-invalid",
            FailureCode::DaneRequired => "dane-required",
        }
    }

    /// The code for an RFC 8460 result-type string; `None` for a string the RFC does not
    /// register.
    pub fn from_result_type_name(name: &str) -> Option<FailureCode> {
        Self::ALL.into_iter().find(|c| c.result_type_name() == name)
    }

    /// The result type as mtasts names it (every code has one: the DANE codes included).
    pub fn result_type(self) -> ResultType {
        match self {
            FailureCode::StarttlsNotSupported => ResultType::StarttlsNotSupported,
            FailureCode::CertificateHostMismatch => ResultType::CertificateHostMismatch,
            FailureCode::CertificateNotTrusted => ResultType::CertificateNotTrusted,
            FailureCode::CertificateExpired => ResultType::CertificateExpired,
            FailureCode::ValidationFailure => ResultType::ValidationFailure,
            FailureCode::StsPolicyFetchError => ResultType::StsPolicyFetchError,
            FailureCode::StsPolicyInvalid => ResultType::StsPolicyInvalid,
            FailureCode::StsWebpkiInvalid => ResultType::StsWebpkiInvalid,
            FailureCode::TlsaInvalid => ResultType::TlsaInvalid,
            FailureCode::DnssecInvalid => ResultType::DnssecInvalid,
            FailureCode::DaneRequired => ResultType::DaneRequired,
        }
    }

    /// The code for one of mtasts's result types (every one has a code).
    pub fn from_result_type(result_type: ResultType) -> FailureCode {
        match result_type {
            ResultType::StarttlsNotSupported => FailureCode::StarttlsNotSupported,
            ResultType::CertificateHostMismatch => FailureCode::CertificateHostMismatch,
            ResultType::CertificateExpired => FailureCode::CertificateExpired,
            ResultType::CertificateNotTrusted => FailureCode::CertificateNotTrusted,
            ResultType::ValidationFailure => FailureCode::ValidationFailure,
            ResultType::StsPolicyFetchError => FailureCode::StsPolicyFetchError,
            ResultType::StsPolicyInvalid => FailureCode::StsPolicyInvalid,
            ResultType::StsWebpkiInvalid => FailureCode::StsWebpkiInvalid,
            ResultType::TlsaInvalid => FailureCode::TlsaInvalid,
            ResultType::DnssecInvalid => FailureCode::DnssecInvalid,
            ResultType::DaneRequired => FailureCode::DaneRequired,
        }
    }
}

impl fmt::Display for FailureCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.code(), self.result_type_name())
    }
}

/// One failure of a delivery attempt (a member of `failure-details`). Every field but the
/// code is optional, and left out of the datagram when `None`; libtlsrpt's one-letter keys
/// are given with each field.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct DatagramFailure {
    /// `c`: what failed.
    pub code: FailureCode,
    /// `s`: `sending-mta-ip`.
    pub sending_mta_ip: Option<String>,
    /// `n`: `receiving-mx-hostname`.
    pub receiving_mx_hostname: Option<String>,
    /// `h`: `receiving-mx-helo`. Postfix puts the whole EHLO reply here, its lines joined
    /// with CRLF.
    pub receiving_mx_helo: Option<String>,
    /// `r`: `receiving-ip`.
    pub receiving_ip: Option<String>,
    /// `a`: `additional-information`.
    pub additional_information: Option<String>,
    /// `f`: `failure-reason-code`.
    pub failure_reason_code: Option<String>,
}

/// One policy of a delivery attempt (a member of `policies`), with its failures.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct DatagramPolicy {
    /// `policy-type`.
    pub policy_type: DatagramPolicyType,
    /// `policy-domain`. Postfix 3.10.0 to 3.10.4 leave it out for `no-policy-found`; later
    /// versions give the TLSRPT policy domain.
    pub policy_domain: Option<String>,
    /// `policy-string`: the policy's lines (`sts`) or the TLSA records (`tlsa`).
    pub policy_strings: Vec<String>,
    /// `mx-host`: the policy's MX patterns as written, with `*.`.
    pub mx_host_patterns: Vec<String>,
    /// `failure-details`. Its length is written as `t`.
    pub failures: Vec<DatagramFailure>,
    /// `f`: the attempt failed under this policy (`1`) or succeeded (`0`). The collector counts
    /// the session as failed from this flag alone, whatever `failures` holds.
    pub failed: bool,
}

/// One libtlsrpt datagram: one delivery attempt to one recipient domain.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Datagram {
    /// `d`: the TLSRPT policy domain, the domain the report is about (Postfix: the recipient
    /// domain as an A-label).
    pub domain: String,
    /// `pr`: the domain's TLSRPT record as found in DNS (`v=TLSRPTv1; rua=...`). Reports go
    /// to its `rua` URIs; the collector keeps sessions under different records apart.
    pub tlsrpt_record: String,
    /// `policies`: never empty (libtlsrpt refuses to send a datagram without a policy).
    /// Postfix sends exactly one, with at most one failure.
    pub policies: Vec<DatagramPolicy>,
}

/// Why bytes are not a libtlsrpt datagram, or a datagram cannot be written.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DatagramError {
    /// More bytes than [`MAX_DATAGRAM`].
    TooLarge {
        /// The size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// Not UTF-8 (libtlsrpt copies the bytes it is given; tlsrpt-collectd drops such a
    /// datagram too).
    NotUtf8 {
        /// The length of the valid prefix.
        valid_up_to: usize,
    },
    /// Not JSON (or nested too deeply to read).
    NotJson {
        /// The JSON parser's message, with line and column.
        detail: String,
    },
    /// No `dpv` member.
    MissingVersion,
    /// A `dpv` other than the string `"1"`.
    WrongVersion {
        /// The value found, as JSON (shortened).
        found: String,
    },
    /// A required member is missing.
    MissingField {
        /// Where, e.g. `policies[0].t`.
        field: String,
    },
    /// A member has the wrong JSON type.
    WrongType {
        /// Where, e.g. `policies[0].failure-details[1].s`.
        field: String,
        /// What it should be.
        expected: &'static str,
    },
    /// A number that libtlsrpt does not define for that member.
    UnknownCode {
        /// Where, e.g. `policies[0].policy-type`.
        field: String,
        /// The value found, as JSON (shortened).
        value: String,
    },
    /// `t` is not the number of failure details.
    FailureCountMismatch {
        /// Where, e.g. `policies[0].t`.
        field: String,
        /// The count given.
        count: u64,
        /// The failure details present.
        details: usize,
    },
    /// `policies` is empty (or, when writing, the datagram has no policy).
    NoPolicies,
    /// A report's result type that is not an RFC 8460 one, so it has no code.
    UnknownResultType {
        /// The result type given.
        name: String,
    },
    /// A policy whose `f` flag and failure details disagree: `f` 0 (success) with failure
    /// details, or `f` 1 (failure) without any. libtlsrpt does not check this and Postfix
    /// never sends it; mtasts cannot count such a session without dropping a failure or
    /// inventing one, so it refuses the datagram.
    Inconsistent {
        /// Where, e.g. `policies[0]`.
        field: String,
        /// The `f` flag.
        failed: bool,
        /// The failure details given.
        details: usize,
    },
    /// A policy or failure that is not a valid session (a domain that is no host name, an
    /// address that is not an IP address, a field over its limit: [`SessionError`]).
    InvalidSession {
        /// Where, e.g. `policies[0]` or `policies[0].failure-details[1]`.
        field: String,
        /// Why.
        error: SessionError,
    },
}

impl fmt::Display for DatagramError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DatagramError::TooLarge { size, limit } => {
                write!(f, "datagram of {size} bytes exceeds the {limit}-byte limit")
            }
            DatagramError::NotUtf8 { valid_up_to } => {
                write!(
                    f,
                    "datagram is not UTF-8 (invalid after byte {valid_up_to})"
                )
            }
            DatagramError::NotJson { detail } => write!(f, "datagram is not JSON: {detail}"),
            DatagramError::MissingVersion => {
                f.write_str("datagram has no \"dpv\" (datagram protocol version)")
            }
            DatagramError::WrongVersion { found } => write!(
                f,
                "datagram protocol version {found} is not \"{DATAGRAM_PROTOCOL_VERSION}\""
            ),
            DatagramError::MissingField { field } => write!(f, "datagram has no {field}"),
            // The datagram as a whole (e.g. a JSON array) is named by itself.
            DatagramError::WrongType { field, expected } if field == "datagram" => {
                write!(f, "datagram is not {expected}")
            }
            DatagramError::WrongType { field, expected } => {
                write!(f, "datagram's {field} is not {expected}")
            }
            DatagramError::UnknownCode { field, value } => {
                write!(f, "datagram's {field} has the unknown code {value}")
            }
            DatagramError::FailureCountMismatch {
                field,
                count,
                details,
            } => write!(
                f,
                "datagram's {field} says {count} failures but {details} are given"
            ),
            DatagramError::NoPolicies => f.write_str("datagram has no policy"),
            DatagramError::UnknownResultType { name } => {
                write!(f, "{name:?} is not an RFC 8460 result type")
            }
            DatagramError::Inconsistent {
                field,
                failed,
                details,
            } => write!(
                f,
                "datagram's {field} says {} but has {details} failure details",
                if *failed {
                    "f 1 (failure)"
                } else {
                    "f 0 (success)"
                }
            ),
            DatagramError::InvalidSession { field, error } => {
                write!(f, "datagram's {field}: {error}")
            }
        }
    }
}

impl std::error::Error for DatagramError {}

impl DatagramError {
    /// A stable name for the kind of problem, e.g. `not-json`, `wrong-version`: what the
    /// collector counts refused datagrams by ([`CollectorCounts::refused`](crate::CollectorCounts)).
    pub fn kind(&self) -> &'static str {
        match self {
            DatagramError::TooLarge { .. } => "too-large",
            DatagramError::NotUtf8 { .. } => "not-utf8",
            DatagramError::NotJson { .. } => "not-json",
            DatagramError::MissingVersion => "missing-version",
            DatagramError::WrongVersion { .. } => "wrong-version",
            DatagramError::MissingField { .. } => "missing-field",
            DatagramError::WrongType { .. } => "wrong-type",
            DatagramError::UnknownCode { .. } => "unknown-code",
            DatagramError::FailureCountMismatch { .. } => "failure-count-mismatch",
            DatagramError::NoPolicies => "no-policies",
            DatagramError::UnknownResultType { .. } => "unknown-result-type",
            DatagramError::Inconsistent { .. } => "inconsistent",
            DatagramError::InvalidSession { .. } => "invalid-session",
        }
    }
}

/// A JSON value as an error message shows it: its JSON text, shortened.
fn quote(value: &Value) -> String {
    let text = value.to_string();
    match text.char_indices().nth(MAX_QUOTED) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text,
    }
}

/// Reads the members of one JSON object, naming each by its path for errors.
struct Members<'a> {
    map: &'a Map<String, Value>,
    path: String,
}

impl<'a> Members<'a> {
    fn of(value: &'a Value, path: String) -> Result<Members<'a>, DatagramError> {
        match value {
            Value::Object(map) => Ok(Members { map, path }),
            _ => Err(DatagramError::WrongType {
                field: path,
                expected: "an object",
            }),
        }
    }

    fn field(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    fn get(&self, key: &str) -> Option<&'a Value> {
        self.map.get(key)
    }

    fn required(&self, key: &str) -> Result<&'a Value, DatagramError> {
        self.get(key).ok_or_else(|| DatagramError::MissingField {
            field: self.field(key),
        })
    }

    fn string(&self, key: &str) -> Result<String, DatagramError> {
        self.as_string(key, self.required(key)?)
    }

    fn optional_string(&self, key: &str) -> Result<Option<String>, DatagramError> {
        self.get(key).map(|v| self.as_string(key, v)).transpose()
    }

    fn as_string(&self, key: &str, value: &Value) -> Result<String, DatagramError> {
        value
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| DatagramError::WrongType {
                field: self.field(key),
                expected: "a string",
            })
    }

    /// A non-negative integer. Any other number (negative, fraction, exponent) is a wrong
    /// type, since libtlsrpt writes these members with `%d` from an enum or a count.
    fn number(&self, key: &str) -> Result<u64, DatagramError> {
        let value = self.required(key)?;
        value.as_u64().ok_or_else(|| DatagramError::WrongType {
            field: self.field(key),
            expected: "a non-negative integer",
        })
    }

    /// An array, or `None` when the member is absent (libtlsrpt leaves empty arrays out).
    fn array(&self, key: &str) -> Result<Option<&'a Vec<Value>>, DatagramError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Array(items)) => Ok(Some(items)),
            Some(_) => Err(DatagramError::WrongType {
                field: self.field(key),
                expected: "an array",
            }),
        }
    }

    fn strings(&self, key: &str) -> Result<Vec<String>, DatagramError> {
        let Some(items) = self.array(key)? else {
            return Ok(Vec::new());
        };
        items
            .iter()
            .enumerate()
            .map(|(i, v)| {
                v.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| DatagramError::WrongType {
                        field: format!("{}[{i}]", self.field(key)),
                        expected: "a string",
                    })
            })
            .collect()
    }
}

impl Datagram {
    /// Reads one datagram as received from the socket.
    ///
    /// Strict where libtlsrpt is exact (the version, the JSON types, the codes, `t` matching
    /// the failures), because a collector must count only what it understands. Tolerated,
    /// since they change no count: members libtlsrpt does not write (skipped), and an empty
    /// `policy-string`, `mx-host` or `failure-details` array (libtlsrpt leaves it out).
    ///
    /// # Errors
    /// A [`DatagramError`] naming the first problem found, checked in this order: the size,
    /// UTF-8, JSON, the version, then each member.
    pub fn parse(bytes: &[u8]) -> Result<Datagram, DatagramError> {
        if bytes.len() > MAX_DATAGRAM {
            return Err(DatagramError::TooLarge {
                size: bytes.len(),
                limit: MAX_DATAGRAM,
            });
        }
        let text = std::str::from_utf8(bytes).map_err(|e| DatagramError::NotUtf8 {
            valid_up_to: e.valid_up_to(),
        })?;
        // serde_json stops at 128 levels of nesting with an error, so deep input cannot
        // exhaust the stack.
        let value: Value = serde_json::from_str(text).map_err(|e| DatagramError::NotJson {
            detail: e.to_string(),
        })?;
        let top = Members::of(&value, String::new()).map_err(|_| DatagramError::WrongType {
            field: "datagram".into(),
            expected: "a JSON object",
        })?;
        match top.get("dpv") {
            None => return Err(DatagramError::MissingVersion),
            Some(Value::String(v)) if v == DATAGRAM_PROTOCOL_VERSION => {}
            Some(other) => {
                return Err(DatagramError::WrongVersion {
                    found: quote(other),
                });
            }
        }
        let domain = top.string("d")?;
        let tlsrpt_record = top.string("pr")?;
        let items = top.array("policies")?.ok_or(DatagramError::MissingField {
            field: "policies".into(),
        })?;
        if items.is_empty() {
            return Err(DatagramError::NoPolicies);
        }
        let policies = items
            .iter()
            .enumerate()
            .map(|(i, v)| parse_policy(v, format!("policies[{i}]")))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Datagram {
            domain,
            tlsrpt_record,
            policies,
        })
    }

    /// The datagram exactly as libtlsrpt would send it for the same content: the same
    /// members in the same order, the same spacing, the codes as numbers, and libtlsrpt's
    /// escaping (`\"`, `\\`, `\b`, `\f`, `\n`, `\r`, `\t`, other control characters and DEL
    /// as lower-case `\u00xx`, everything else, `/` and non-ASCII included, as it is).
    ///
    /// # Errors
    /// [`DatagramError::NoPolicies`] for a datagram without a policy (libtlsrpt refuses to
    /// send one), [`DatagramError::TooLarge`] for one above [`MAX_DATAGRAM`].
    pub fn to_bytes(&self) -> Result<Vec<u8>, DatagramError> {
        if self.policies.is_empty() {
            return Err(DatagramError::NoPolicies);
        }
        let mut out = String::with_capacity(256);
        out.push('{');
        string_member(&mut out, "dpv", DATAGRAM_PROTOCOL_VERSION);
        out.push(',');
        string_member(&mut out, "d", &self.domain);
        out.push(',');
        string_member(&mut out, "pr", &self.tlsrpt_record);
        out.push_str(",\"policies\":[");
        for (i, policy) in self.policies.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            write_policy(&mut out, policy);
        }
        out.push_str("]}");
        if out.len() > MAX_DATAGRAM {
            return Err(DatagramError::TooLarge {
                size: out.len(),
                limit: MAX_DATAGRAM,
            });
        }
        Ok(out.into_bytes())
    }
}

fn parse_policy(value: &Value, path: String) -> Result<DatagramPolicy, DatagramError> {
    let m = Members::of(value, path)?;
    let code = m.number("policy-type")?;
    let policy_type =
        DatagramPolicyType::from_code(code).ok_or_else(|| DatagramError::UnknownCode {
            field: m.field("policy-type"),
            value: code.to_string(),
        })?;
    let policy_domain = m.optional_string("policy-domain")?;
    let policy_strings = m.strings("policy-string")?;
    let mx_host_patterns = m.strings("mx-host")?;
    let failures = m
        .array("failure-details")?
        .into_iter()
        .flatten()
        .enumerate()
        .map(|(i, v)| parse_failure(v, format!("{}[{i}]", m.field("failure-details"))))
        .collect::<Result<Vec<_>, _>>()?;
    let count = m.number("t")?;
    if count != failures.len() as u64 {
        return Err(DatagramError::FailureCountMismatch {
            field: m.field("t"),
            count,
            details: failures.len(),
        });
    }
    let failed = match m.number("f")? {
        0 => false,
        1 => true,
        other => {
            return Err(DatagramError::UnknownCode {
                field: m.field("f"),
                value: other.to_string(),
            });
        }
    };
    Ok(DatagramPolicy {
        policy_type,
        policy_domain,
        policy_strings,
        mx_host_patterns,
        failures,
        failed,
    })
}

fn parse_failure(value: &Value, path: String) -> Result<DatagramFailure, DatagramError> {
    let m = Members::of(value, path)?;
    let code = m.number("c")?;
    let code = FailureCode::from_code(code).ok_or_else(|| DatagramError::UnknownCode {
        field: m.field("c"),
        value: code.to_string(),
    })?;
    Ok(DatagramFailure {
        code,
        sending_mta_ip: m.optional_string("s")?,
        receiving_mx_hostname: m.optional_string("n")?,
        receiving_mx_helo: m.optional_string("h")?,
        receiving_ip: m.optional_string("r")?,
        additional_information: m.optional_string("a")?,
        failure_reason_code: m.optional_string("f")?,
    })
}

/// Appends `s` escaped as libtlsrpt escapes it (its `tlsrpt_json_escape_values` table).
fn escape_into(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                out.push_str(&format!("\\u{:04x}", c as u32));
            }
            c => out.push(c),
        }
    }
}

/// `"key": "value"`, with libtlsrpt's single space.
fn string_member(out: &mut String, key: &str, value: &str) {
    out.push('"');
    out.push_str(key);
    out.push_str("\": \"");
    escape_into(out, value);
    out.push('"');
}

/// `,"key": "value"` when there is a value.
fn optional_member(out: &mut String, key: &str, value: &Option<String>) {
    if let Some(v) = value {
        out.push(',');
        string_member(out, key, v);
    }
}

/// `,"key":["a","b"]`, or nothing for an empty list.
fn string_array(out: &mut String, key: &str, items: &[String]) {
    if items.is_empty() {
        return;
    }
    out.push_str(",\"");
    out.push_str(key);
    out.push_str("\":[");
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push('"');
        escape_into(out, item);
        out.push('"');
    }
    out.push(']');
}

fn write_policy(out: &mut String, p: &DatagramPolicy) {
    out.push_str(&format!("{{\"policy-type\":{}", p.policy_type.code()));
    optional_member(out, "policy-domain", &p.policy_domain);
    string_array(out, "policy-string", &p.policy_strings);
    string_array(out, "mx-host", &p.mx_host_patterns);
    if !p.failures.is_empty() {
        out.push_str(",\"failure-details\":[");
        for (i, f) in p.failures.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(&format!("{{\"c\":{}", f.code.code()));
            optional_member(out, "s", &f.sending_mta_ip);
            optional_member(out, "n", &f.receiving_mx_hostname);
            optional_member(out, "h", &f.receiving_mx_helo);
            optional_member(out, "r", &f.receiving_ip);
            optional_member(out, "a", &f.additional_information);
            optional_member(out, "f", &f.failure_reason_code);
            out.push('}');
        }
        out.push(']');
    }
    out.push_str(&format!(
        ",\"t\":{},\"f\":{}}}",
        p.failures.len(),
        u8::from(p.failed)
    ));
}

impl DatagramPolicy {
    /// The policy as a report describes it (RFC 8460 §4.4). A missing `policy-domain` becomes
    /// `domain` (pass the datagram's [`Datagram::domain`]), as Postfix 3.10.5 and later fill
    /// it in themselves: a report always has one (R-RPT-6).
    pub fn report_policy(&self, domain: &str) -> ReportPolicy {
        ReportPolicy {
            policy_type: self.policy_type.policy_type(),
            policy_string: self.policy_strings.clone(),
            policy_domain: self
                .policy_domain
                .clone()
                .unwrap_or_else(|| domain.to_string()),
            mx_host: self.mx_host_patterns.clone(),
        }
    }

    /// The policy of one session as a datagram carries it, with the session's `failures`
    /// (each detail's count is not used: a datagram is one session). `failed` is set when
    /// there is a failure. An empty `policy_domain` is left out.
    ///
    /// # Errors
    /// [`DatagramError::UnknownResultType`] for a failure whose result type is not RFC 8460's.
    pub fn from_report(
        policy: &ReportPolicy,
        failures: &[FailureDetail],
    ) -> Result<DatagramPolicy, DatagramError> {
        Ok(DatagramPolicy {
            policy_type: DatagramPolicyType::from_policy_type(policy.policy_type),
            policy_domain: (!policy.policy_domain.is_empty()).then(|| policy.policy_domain.clone()),
            policy_strings: policy.policy_string.clone(),
            mx_host_patterns: policy.mx_host.clone(),
            failures: failures
                .iter()
                .map(DatagramFailure::from_failure_detail)
                .collect::<Result<_, _>>()?,
            failed: !failures.is_empty(),
        })
    }
}

impl DatagramFailure {
    /// The failure as a report's detail for one session (`failed-session-count` 1).
    pub fn failure_detail(&self) -> FailureDetail {
        FailureDetail {
            result_type: self.code.result_type_name().to_string(),
            sending_mta_ip: self.sending_mta_ip.clone(),
            receiving_mx_hostname: self.receiving_mx_hostname.clone(),
            receiving_mx_helo: self.receiving_mx_helo.clone(),
            receiving_ip: self.receiving_ip.clone(),
            failed_session_count: 1,
            additional_information: self.additional_information.clone(),
            failure_reason_code: self.failure_reason_code.clone(),
        }
    }

    /// The failure a report's detail describes (its count is not used).
    ///
    /// # Errors
    /// [`DatagramError::UnknownResultType`] when `result_type` is not an RFC 8460 one.
    pub fn from_failure_detail(detail: &FailureDetail) -> Result<DatagramFailure, DatagramError> {
        let code = FailureCode::from_result_type_name(&detail.result_type).ok_or_else(|| {
            DatagramError::UnknownResultType {
                name: detail.result_type.clone(),
            }
        })?;
        Ok(DatagramFailure {
            code,
            sending_mta_ip: detail.sending_mta_ip.clone(),
            receiving_mx_hostname: detail.receiving_mx_hostname.clone(),
            receiving_mx_helo: detail.receiving_mx_helo.clone(),
            receiving_ip: detail.receiving_ip.clone(),
            additional_information: detail.additional_information.clone(),
            failure_reason_code: detail.failure_reason_code.clone(),
        })
    }
}

impl Datagram {
    /// The sessions this datagram reports, counted on `day` (the UTC day it arrived: the
    /// datagram carries no time). One datagram is one delivery attempt, and each of its
    /// policies one session (R-RPT-3): successful when its `f` is 0, otherwise failed with
    /// its failure details (R-RPT-4), in the datagram's order.
    ///
    /// Every session is counted under the datagram's `d`, the TLSRPT policy domain whose
    /// `rua` gets the report, normalised as [`Domain`](crate::Domain) does (lower case,
    /// without a final dot, an A-label): tlsrpt-collectd lower-cases `d` and removes one
    /// final dot, so for the A-labels Postfix sends both count under the same name. A
    /// policy's own `policy-domain` (for DANE the MX host's base domain) and the TLSRPT
    /// record `pr` are not kept: the report carries the report domain as `policy-domain`
    /// (R-RPT-6) and the sender looks the record up itself when it sends (R-RPT-1).
    ///
    /// # Errors
    /// All or nothing, so an attempt is never half counted: [`DatagramError::Inconsistent`]
    /// for a policy whose `f` and failure details disagree (success with failures would drop
    /// them, failure without any would invent one), [`DatagramError::InvalidSession`] for a
    /// domain, address or field the session API refuses (e.g. a `receiving-mx-hostname`
    /// that is no host name; over-long free texts are cut, see
    /// [`DatagramFailure::session_failure`]).
    pub fn sessions(&self, day: UtcDay) -> Result<Vec<Session>, DatagramError> {
        self.policies
            .iter()
            .enumerate()
            .map(|(i, p)| p.session(&self.domain, day, &format!("policies[{i}]")))
            .collect()
    }

    /// The datagram libtlsrpt would send for `session` (what Postfix sends: one policy, its
    /// failures), with the domain's TLSRPT record `tlsrpt_record` as `pr`. The policy's
    /// `policy-domain` is the session's domain, as Postfix 3.10.5 and later write it.
    pub fn from_session(session: &Session, tlsrpt_record: &str) -> Datagram {
        let policy = session.policy();
        let domain = policy.domain().to_string();
        Datagram {
            domain: domain.clone(),
            tlsrpt_record: tlsrpt_record.to_string(),
            policies: vec![DatagramPolicy {
                policy_type: DatagramPolicyType::from_policy_type(policy.policy_type()),
                policy_domain: Some(domain),
                policy_strings: policy.policy_string().to_vec(),
                mx_host_patterns: policy.mx_host().to_vec(),
                failures: session
                    .failures()
                    .iter()
                    .map(DatagramFailure::from_session_failure)
                    .collect(),
                failed: !session.is_success(),
            }],
        }
    }
}

impl DatagramPolicy {
    /// One session under this policy for the report domain `domain` (see
    /// [`Datagram::sessions`]); `field` names the policy in errors.
    fn session(&self, domain: &str, day: UtcDay, field: &str) -> Result<Session, DatagramError> {
        let invalid = |field: String| move |error| DatagramError::InvalidSession { field, error };
        if self.failed == self.failures.is_empty() {
            return Err(DatagramError::Inconsistent {
                field: field.to_string(),
                failed: self.failed,
                details: self.failures.len(),
            });
        }
        let policy = AppliedPolicy::new(
            self.policy_type.policy_type(),
            domain,
            self.policy_strings.clone(),
            self.mx_host_patterns.clone(),
        )
        .map_err(invalid(field.to_string()))?;
        if !self.failed {
            return Ok(Session::success(day, policy));
        }
        let failures = self
            .failures
            .iter()
            .enumerate()
            .map(|(i, f)| {
                f.session_failure()
                    .map_err(invalid(format!("{field}.failure-details[{i}]")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Session::failure(day, policy, failures).map_err(invalid(field.to_string()))
    }
}

impl DatagramFailure {
    /// The failure as the session API holds it; every field is checked as
    /// [`SessionFailure`]'s builders check it (an empty string is "not known", as Postfix
    /// sends an empty `s` when it cannot tell its own address).
    ///
    /// # Errors
    /// The [`SessionError`] of the first field refused.
    ///
    /// The free-text fields (the HELO, which Postfix fills with the server's whole EHLO
    /// reply, the additional information and the reason code) are cut to the session API's
    /// limits at a character boundary rather than refused: a long text must not cost the
    /// session its count.
    pub fn session_failure(&self) -> Result<SessionFailure, SessionError> {
        let text = |v: &Option<String>| v.clone().unwrap_or_default();
        let clipped = |v: &Option<String>, max: usize| {
            let mut text = text(v);
            if text.len() > max {
                let mut end = max;
                while !text.is_char_boundary(end) {
                    end -= 1;
                }
                text.truncate(end);
            }
            text
        };
        SessionFailure::new(self.code.result_type())
            .sending_mta_ip(&text(&self.sending_mta_ip))?
            .receiving_mx_hostname(&text(&self.receiving_mx_hostname))?
            .receiving_mx_helo(&clipped(&self.receiving_mx_helo, crate::MAX_HELO))?
            .receiving_ip(&text(&self.receiving_ip))?
            .additional_information(&clipped(
                &self.additional_information,
                crate::MAX_ADDITIONAL_INFORMATION,
            ))?
            .failure_reason_code(&clipped(&self.failure_reason_code, crate::MAX_REASON_CODE))
    }

    /// The failure of a recorded session, as a datagram carries it (fields not known are
    /// left out).
    pub fn from_session_failure(failure: &SessionFailure) -> DatagramFailure {
        let detail = failure.to_detail(1);
        DatagramFailure {
            code: FailureCode::from_result_type(failure.result_type()),
            sending_mta_ip: detail.sending_mta_ip,
            receiving_mx_hostname: detail.receiving_mx_hostname,
            receiving_mx_helo: detail.receiving_mx_helo,
            receiving_ip: detail.receiving_ip,
            additional_information: detail.additional_information,
            failure_reason_code: detail.failure_reason_code,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/tlsrpt/datagrams");

    /// The vectors: what libtlsrpt 0.5 sends for Postfix 3.10's calls (checked byte for byte
    /// against the library), with what each holds: (file, domain, policy types, failure codes
    /// per policy, failed flags).
    #[allow(clippy::type_complexity)]
    const VECTORS: &[(&str, &str, &[u8], &[&[u16]], &[bool])] = &[
        ("sts-success.json", "example.net", &[2], &[&[]], &[false]),
        (
            "sts-starttls-not-supported.json",
            "example.net",
            &[2],
            &[&[201]],
            &[true],
        ),
        (
            "sts-validation-failure.json",
            "example.net",
            &[2],
            &[&[205]],
            &[true],
        ),
        (
            "sts-policy-fetch-error.json",
            "example.org",
            &[2],
            &[&[301]],
            &[true],
        ),
        (
            "no-policy-success.json",
            "example.com",
            &[9],
            &[&[]],
            &[false],
        ),
        (
            "no-policy-success-domain.json",
            "example.com",
            &[9],
            &[&[]],
            &[false],
        ),
        ("tlsa-invalid.json", "example.com", &[1], &[&[304]], &[true]),
        (
            "multi-policy.json",
            "company-y.example",
            &[2, 1],
            &[&[302, 303], &[204]],
            &[true, true],
        ),
        ("escapes.json", "bücher.example", &[2], &[&[202]], &[true]),
    ];

    fn read(name: &str) -> Vec<u8> {
        std::fs::read(format!("{DIR}/{name}")).unwrap_or_else(|e| panic!("{name}: {e}"))
    }

    #[test]
    fn every_vector_parses_to_its_content_and_is_written_back_byte_for_byte() {
        for &(name, domain, types, codes, failed) in VECTORS {
            let bytes = read(name);
            let d = Datagram::parse(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(d.domain, domain, "{name}");
            let got_types: Vec<u8> = d.policies.iter().map(|p| p.policy_type.code()).collect();
            assert_eq!(got_types, types, "{name}");
            let got_codes: Vec<Vec<u16>> = d
                .policies
                .iter()
                .map(|p| p.failures.iter().map(|f| f.code.code()).collect())
                .collect();
            assert_eq!(got_codes, codes, "{name}");
            let got_failed: Vec<bool> = d.policies.iter().map(|p| p.failed).collect();
            assert_eq!(got_failed, failed, "{name}");
            let written = d.to_bytes().unwrap();
            assert_eq!(
                String::from_utf8_lossy(&written),
                String::from_utf8_lossy(&bytes),
                "{name}: to_bytes must give libtlsrpt's bytes"
            );
        }
    }

    #[test]
    fn every_file_in_the_directory_is_a_vector() {
        let mut files: Vec<String> = std::fs::read_dir(DIR)
            .unwrap()
            .map(|e| e.unwrap())
            .filter(|e| e.file_type().unwrap().is_file())
            .map(|e| e.file_name().into_string().unwrap())
            .collect();
        files.sort();
        let mut listed: Vec<String> = VECTORS.iter().map(|v| v.0.to_string()).collect();
        listed.sort();
        assert_eq!(files, listed);
    }

    #[test]
    fn long_free_texts_are_cut_and_the_session_kept() {
        // Postfix sends the server's whole EHLO reply as "h": it may exceed MAX_HELO.
        let helo = "250-mx.example.com\r\n".repeat(60) + "250 SMTPUTF8 \u{e9}";
        let failure = DatagramFailure {
            code: FailureCode::from_result_type(ResultType::CertificateExpired),
            sending_mta_ip: None,
            receiving_mx_hostname: Some("mx.example.com".into()),
            receiving_mx_helo: Some(helo.clone()),
            receiving_ip: None,
            additional_information: Some("\u{e9}".repeat(3000)),
            failure_reason_code: Some("x".repeat(1000)),
        };
        let detail = failure.session_failure().unwrap().to_detail(1);
        let cut = detail.receiving_mx_helo.unwrap();
        assert!(cut.len() <= crate::MAX_HELO && helo.starts_with(&cut));
        assert!(detail.additional_information.unwrap().len() <= crate::MAX_ADDITIONAL_INFORMATION);
        assert_eq!(
            detail.failure_reason_code.unwrap().len(),
            crate::MAX_REASON_CODE
        );
    }

    #[test]
    fn postfix_failure_fields_land_in_their_members() {
        let d = Datagram::parse(&read("sts-starttls-not-supported.json")).unwrap();
        assert_eq!(d.tlsrpt_record, "v=TLSRPTv1; rua=mailto:tlsrpt@example.net");
        let p = &d.policies[0];
        assert_eq!(p.policy_domain.as_deref(), Some("example.net"));
        assert_eq!(
            p.policy_strings,
            [
                "version: STSv1",
                "mode: testing",
                "mx: mail.example.net",
                "max_age: 86400"
            ]
        );
        assert_eq!(p.mx_host_patterns, ["mail.example.net"]);
        assert_eq!(
            p.failures,
            [DatagramFailure {
                code: FailureCode::StarttlsNotSupported,
                sending_mta_ip: Some("192.0.2.1".into()),
                receiving_mx_hostname: Some("mail.example.net".into()),
                receiving_mx_helo: Some(
                    "250-mail.example.net\r\n250-PIPELINING\r\n250 8BITMIME".into()
                ),
                receiving_ip: Some("198.51.100.25".into()),
                additional_information: None,
                failure_reason_code: None,
            }]
        );
        let m = Datagram::parse(&read("multi-policy.json")).unwrap();
        let f = &m.policies[0].failures[1];
        assert_eq!(f.code, FailureCode::StsWebpkiInvalid);
        assert_eq!(
            f.additional_information.as_deref(),
            Some("This is additional information")
        );
        assert_eq!(f.failure_reason_code.as_deref(), Some("999 TEST ERROR"));
        let n = Datagram::parse(&read("no-policy-success.json")).unwrap();
        assert_eq!(n.policies[0].policy_domain, None);
        assert!(n.policies[0].policy_strings.is_empty() && n.policies[0].failures.is_empty());
    }

    #[test]
    fn escapes_decode_to_the_characters_libtlsrpt_was_given() {
        let d = Datagram::parse(&read("escapes.json")).unwrap();
        assert_eq!(d.tlsrpt_record, "v=TLSRPTv1; rua=mailto:a@b\"c\\d");
        assert_eq!(
            d.policies[0].policy_strings,
            ["mode: \u{8}\t\n\u{c}\r\u{1}\u{1f}\u{7f}/"]
        );
        let f = &d.policies[0].failures[0];
        assert_eq!(f.receiving_mx_hostname.as_deref(), Some("müx/ü"));
        assert_eq!(f.additional_information.as_deref(), Some("€\u{1b}[0m"));
    }

    #[test]
    fn built_datagrams_round_trip() {
        let d = Datagram {
            domain: "example.net".into(),
            tlsrpt_record: "v=TLSRPTv1; rua=https://r.example.net/x".into(),
            policies: vec![DatagramPolicy {
                policy_type: DatagramPolicyType::Sts,
                policy_domain: Some("example.net".into()),
                policy_strings: vec!["version: STSv1".into(), "x: \u{0}\u{7}".into()],
                mx_host_patterns: vec!["*.example.net".into()],
                failures: vec![DatagramFailure {
                    code: FailureCode::DaneRequired,
                    sending_mta_ip: None,
                    receiving_mx_hostname: None,
                    receiving_mx_helo: None,
                    receiving_ip: Some("::1".into()),
                    additional_information: None,
                    failure_reason_code: Some("why \"not\"".into()),
                }],
                failed: false,
            }],
        };
        let bytes = d.to_bytes().unwrap();
        assert!(
            String::from_utf8(bytes.clone())
                .unwrap()
                .contains(r#""policy-string":["version: STSv1","x: \u0000\u0007"]"#)
        );
        assert_eq!(Datagram::parse(&bytes).unwrap(), d);
    }

    #[test]
    fn tolerated_differences_parse() {
        // Members libtlsrpt does not write are skipped; empty arrays read as absent; other
        // JSON spacing and escapes are JSON all the same.
        let text = br#"{ "dpv" : "1", "d":"e\u0078ample.net", "pr":"", "new":{"x":[1]},
            "policies":[{"policy-type":2,"policy-string":[],"mx-host":[],"failure-details":[],
            "t":0,"f":0,"later":true}]}"#;
        let d = Datagram::parse(text).unwrap();
        assert_eq!(d.domain, "example.net");
        assert!(d.policies[0].policy_strings.is_empty());
        assert_eq!(
            d.to_bytes().unwrap(),
            br#"{"dpv": "1","d": "example.net","pr": "","policies":[{"policy-type":2,"t":0,"f":0}]}"#
        );
    }

    fn err(bytes: &[u8]) -> DatagramError {
        match Datagram::parse(bytes) {
            Ok(d) => panic!("accepted {:?}: {d:?}", String::from_utf8_lossy(bytes)),
            Err(e) => e,
        }
    }

    fn missing(field: &str) -> DatagramError {
        DatagramError::MissingField {
            field: field.into(),
        }
    }

    fn wrong(field: &str, expected: &'static str) -> DatagramError {
        DatagramError::WrongType {
            field: field.into(),
            expected,
        }
    }

    fn unknown(field: &str, value: &str) -> DatagramError {
        DatagramError::UnknownCode {
            field: field.into(),
            value: value.into(),
        }
    }

    /// A datagram around one policy object.
    fn with_policy(policy: &str) -> Vec<u8> {
        format!(r#"{{"dpv": "1","d": "example.net","pr": "x","policies":[{policy}]}}"#).into_bytes()
    }

    #[test]
    fn hostile_files_are_refused_with_their_error() {
        let cases: &[(&str, DatagramError)] = &[
            (
                "not-json.txt",
                DatagramError::NotJson {
                    detail: "expected ident at line 1 column 2".into(),
                },
            ),
            (
                "truncated.json",
                DatagramError::NotJson {
                    detail: "EOF while parsing a string at line 1 column 150".into(),
                },
            ),
            ("not-utf8.json", DatagramError::NotUtf8 { valid_up_to: 20 }),
            (
                "wrong-dpv.json",
                DatagramError::WrongVersion {
                    found: "\"2\"".into(),
                },
            ),
            ("missing-dpv.json", DatagramError::MissingVersion),
            ("policies-not-a-list.json", wrong("policies", "an array")),
            (
                "empty.bin",
                DatagramError::NotJson {
                    detail: "EOF while parsing a value at line 1 column 0".into(),
                },
            ),
        ];
        let mut files: Vec<String> = std::fs::read_dir(format!("{DIR}/hostile"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        files.sort();
        let mut listed: Vec<&str> = cases.iter().map(|c| c.0).collect();
        listed.sort();
        assert_eq!(files, listed, "every hostile file has a case");
        for (name, want) in cases {
            assert_eq!(&err(&read(&format!("hostile/{name}"))), want, "{name}");
        }
    }

    #[test]
    fn hostile_input_gives_a_typed_error() {
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        let cases: Vec<(Vec<u8>, DatagramError)> = vec![
            (
                vec![b' '; MAX_DATAGRAM + 1],
                DatagramError::TooLarge {
                    size: MAX_DATAGRAM + 1,
                    limit: MAX_DATAGRAM,
                },
            ),
            (b"[1,2]".to_vec(), wrong("datagram", "a JSON object")),
            (b"\"dpv\"".to_vec(), wrong("datagram", "a JSON object")),
            (b"null".to_vec(), wrong("datagram", "a JSON object")),
            (
                br#"{"dpv": 1}"#.to_vec(),
                DatagramError::WrongVersion { found: "1".into() },
            ),
            (
                br#"{"dpv": null}"#.to_vec(),
                DatagramError::WrongVersion {
                    found: "null".into(),
                },
            ),
            (
                br#"{"dpv": "1 "}"#.to_vec(),
                DatagramError::WrongVersion {
                    found: "\"1 \"".into(),
                },
            ),
            (
                format!(r#"{{"dpv": "{}"}}"#, "9".repeat(1000)).into_bytes(),
                DatagramError::WrongVersion {
                    found: format!("\"{}...", "9".repeat(63)),
                },
            ),
            (br#"{"dpv": "1"}"#.to_vec(), missing("d")),
            (br#"{"dpv": "1","d": 5}"#.to_vec(), wrong("d", "a string")),
            (br#"{"dpv": "1","d": "x"}"#.to_vec(), missing("pr")),
            (
                br#"{"dpv": "1","d": "x","pr": ["x"]}"#.to_vec(),
                wrong("pr", "a string"),
            ),
            (
                br#"{"dpv": "1","d": "x","pr": "x"}"#.to_vec(),
                missing("policies"),
            ),
            (
                br#"{"dpv": "1","d": "x","pr": "x","policies":{}}"#.to_vec(),
                wrong("policies", "an array"),
            ),
            (
                br#"{"dpv": "1","d": "x","pr": "x","policies":[]}"#.to_vec(),
                DatagramError::NoPolicies,
            ),
            (with_policy("7"), wrong("policies[0]", "an object")),
            (
                with_policy(r#"{"t":0,"f":0}"#),
                missing("policies[0].policy-type"),
            ),
            (
                with_policy(r#"{"policy-type":"sts","t":0,"f":0}"#),
                wrong("policies[0].policy-type", "a non-negative integer"),
            ),
            (
                with_policy(r#"{"policy-type":3,"t":0,"f":0}"#),
                unknown("policies[0].policy-type", "3"),
            ),
            (
                with_policy(r#"{"policy-type":-1,"t":0,"f":0}"#),
                wrong("policies[0].policy-type", "a non-negative integer"),
            ),
            (
                with_policy(r#"{"policy-type":2.0,"t":0,"f":0}"#),
                wrong("policies[0].policy-type", "a non-negative integer"),
            ),
            (
                with_policy(r#"{"policy-type":99999999999999999999999,"t":0,"f":0}"#),
                wrong("policies[0].policy-type", "a non-negative integer"),
            ),
            (
                with_policy(r#"{"policy-type":2,"policy-domain":1,"t":0,"f":0}"#),
                wrong("policies[0].policy-domain", "a string"),
            ),
            (
                with_policy(r#"{"policy-type":2,"policy-domain":null,"t":0,"f":0}"#),
                wrong("policies[0].policy-domain", "a string"),
            ),
            (
                with_policy(r#"{"policy-type":2,"policy-string":"x","t":0,"f":0}"#),
                wrong("policies[0].policy-string", "an array"),
            ),
            (
                with_policy(r#"{"policy-type":2,"mx-host":["a",1],"t":0,"f":0}"#),
                wrong("policies[0].mx-host[1]", "a string"),
            ),
            (
                with_policy(r#"{"policy-type":2,"f":0}"#),
                missing("policies[0].t"),
            ),
            (
                with_policy(r#"{"policy-type":2,"t":0}"#),
                missing("policies[0].f"),
            ),
            (
                with_policy(r#"{"policy-type":2,"t":0,"f":2}"#),
                unknown("policies[0].f", "2"),
            ),
            (
                with_policy(r#"{"policy-type":2,"t":0,"f":true}"#),
                wrong("policies[0].f", "a non-negative integer"),
            ),
            (
                with_policy(r#"{"policy-type":2,"t":1,"f":1}"#),
                DatagramError::FailureCountMismatch {
                    field: "policies[0].t".into(),
                    count: 1,
                    details: 0,
                },
            ),
            (
                with_policy(r#"{"policy-type":2,"failure-details":{},"t":0,"f":1}"#),
                wrong("policies[0].failure-details", "an array"),
            ),
            (
                with_policy(r#"{"policy-type":2,"failure-details":["x"],"t":1,"f":1}"#),
                wrong("policies[0].failure-details[0]", "an object"),
            ),
            (
                with_policy(r#"{"policy-type":2,"failure-details":[{"s": "x"}],"t":1,"f":1}"#),
                missing("policies[0].failure-details[0].c"),
            ),
            (
                with_policy(r#"{"policy-type":2,"failure-details":[{"c":901}],"t":1,"f":1}"#),
                unknown("policies[0].failure-details[0].c", "901"),
            ),
            (
                with_policy(r#"{"policy-type":2,"failure-details":[{"c":"205"}],"t":1,"f":1}"#),
                wrong("policies[0].failure-details[0].c", "a non-negative integer"),
            ),
            (
                with_policy(
                    r#"{"policy-type":2,"failure-details":[{"c":205},{"c":205,"h":[]}],"t":2,"f":1}"#,
                ),
                wrong("policies[0].failure-details[1].h", "a string"),
            ),
            (
                deep.into_bytes(),
                DatagramError::NotJson {
                    detail: "recursion limit exceeded at line 1 column 128".into(),
                },
            ),
            (
                b"{\"dpv\": \"1\"} trailing".to_vec(),
                DatagramError::NotJson {
                    detail: "trailing characters at line 1 column 14".into(),
                },
            ),
            (
                b"{\"dpv\": \"1\",\"d\": \"\xc3\"}".to_vec(),
                DatagramError::NotUtf8 { valid_up_to: 18 },
            ),
        ];
        for (bytes, want) in &cases {
            assert_eq!(
                &err(bytes),
                want,
                "{:?}",
                String::from_utf8_lossy(&bytes[..bytes.len().min(120)])
            );
        }
        // A second policy's error names it.
        let second = br#"{"dpv": "1","d": "x","pr": "x","policies":[{"policy-type":9,"t":0,"f":0},{"policy-type":8,"t":0,"f":0}]}"#;
        assert_eq!(err(second), unknown("policies[1].policy-type", "8"));
    }

    #[test]
    fn errors_read_as_one_line() {
        let cases = [
            (
                DatagramError::TooLarge { size: 9, limit: 8 },
                "datagram of 9 bytes exceeds the 8-byte limit",
            ),
            (
                DatagramError::NotUtf8 { valid_up_to: 3 },
                "datagram is not UTF-8 (invalid after byte 3)",
            ),
            (
                DatagramError::MissingVersion,
                "datagram has no \"dpv\" (datagram protocol version)",
            ),
            (
                DatagramError::WrongVersion {
                    found: "\"2\"".into(),
                },
                "datagram protocol version \"2\" is not \"1\"",
            ),
            (missing("policies[0].t"), "datagram has no policies[0].t"),
            (wrong("d", "a string"), "datagram's d is not a string"),
            (
                wrong("datagram", "a JSON object"),
                "datagram is not a JSON object",
            ),
            (
                unknown("policies[0].f", "2"),
                "datagram's policies[0].f has the unknown code 2",
            ),
            (
                DatagramError::FailureCountMismatch {
                    field: "policies[0].t".into(),
                    count: 2,
                    details: 1,
                },
                "datagram's policies[0].t says 2 failures but 1 are given",
            ),
            (DatagramError::NoPolicies, "datagram has no policy"),
            (
                DatagramError::UnknownResultType { name: "bad".into() },
                "\"bad\" is not an RFC 8460 result type",
            ),
        ];
        for (e, text) in cases {
            assert_eq!(e.to_string(), text);
        }
    }

    #[test]
    fn writing_refuses_what_libtlsrpt_would_not_send() {
        let mut d = Datagram::parse(&read("sts-success.json")).unwrap();
        d.policies.clear();
        assert_eq!(d.to_bytes(), Err(DatagramError::NoPolicies));
        let mut big = Datagram::parse(&read("sts-success.json")).unwrap();
        big.tlsrpt_record = "x".repeat(MAX_DATAGRAM);
        assert!(matches!(
            big.to_bytes(),
            Err(DatagramError::TooLarge {
                limit: MAX_DATAGRAM,
                ..
            })
        ));
    }

    #[test]
    fn failure_codes_map_to_rfc_8460_result_types_and_back() {
        let table: [(u16, &str, ResultType); 11] = [
            (
                201,
                "starttls-not-supported",
                ResultType::StarttlsNotSupported,
            ),
            (
                202,
                "certificate-host-mismatch",
                ResultType::CertificateHostMismatch,
            ),
            (
                203,
                "certificate-not-trusted",
                ResultType::CertificateNotTrusted,
            ),
            (204, "certificate-expired", ResultType::CertificateExpired),
            (205, "validation-failure", ResultType::ValidationFailure),
            (
                301,
                "sts-policy-fetch-error",
                ResultType::StsPolicyFetchError,
            ),
            (302, "sts-policy-invalid", ResultType::StsPolicyInvalid),
            (303, "sts-webpki-invalid", ResultType::StsWebpkiInvalid),
            (304, "tlsa-invalid", ResultType::TlsaInvalid),
            (305, "dnssec-invalid", ResultType::DnssecInvalid),
            (306, "dane-required", ResultType::DaneRequired),
        ];
        for (code, name, result_type) in table {
            let c = FailureCode::from_code(code.into()).unwrap();
            assert_eq!(c.code(), code);
            assert_eq!(c.result_type_name(), name);
            assert_eq!(FailureCode::from_result_type_name(name), Some(c));
            assert_eq!(c.result_type(), result_type);
            assert_eq!(FailureCode::from_result_type(result_type), c);
        }
        assert_eq!(FailureCode::ALL.len(), table.len());
        for t in ResultType::ALL {
            assert_eq!(FailureCode::from_result_type(t).result_type(), t);
        }
        for code in [0, 200, 206, 300, 307, 901, u64::MAX] {
            assert_eq!(FailureCode::from_code(code), None, "{code}");
        }
        assert_eq!(
            FailureCode::from_result_type_name("Validation-Failure"),
            None
        );
        assert_eq!(
            FailureCode::ValidationFailure.to_string(),
            "205 (validation-failure)"
        );
    }

    #[test]
    fn policy_type_codes_map_to_rfc_8460_policy_types_and_back() {
        let table = [
            (1, PolicyType::Tlsa, "tlsa"),
            (2, PolicyType::Sts, "sts"),
            (9, PolicyType::NoPolicyFound, "no-policy-found"),
        ];
        for (code, policy_type, name) in table {
            let t = DatagramPolicyType::from_code(code).unwrap();
            assert_eq!(u64::from(t.code()), code);
            assert_eq!(t.policy_type(), policy_type);
            assert_eq!(t.policy_type().as_str(), name);
            assert_eq!(DatagramPolicyType::from_policy_type(policy_type), t);
        }
        for code in [0, 3, 8, 10, 255] {
            assert_eq!(DatagramPolicyType::from_code(code), None, "{code}");
        }
    }

    #[test]
    fn policies_and_failures_convert_to_report_terms_and_back() {
        let d = Datagram::parse(&read("multi-policy.json")).unwrap();
        let p = &d.policies[0];
        let policy = p.report_policy(&d.domain);
        assert_eq!(policy.policy_type, PolicyType::Sts);
        assert_eq!(policy.policy_domain, "company-y.example");
        assert_eq!(
            policy.mx_host,
            ["*.mail.company-y.example", "*.mail2.company-y.example"]
        );
        let details: Vec<FailureDetail> = p
            .failures
            .iter()
            .map(DatagramFailure::failure_detail)
            .collect();
        assert_eq!(
            details[0],
            FailureDetail {
                result_type: "sts-policy-invalid".into(),
                sending_mta_ip: Some("1.2.3.4".into()),
                receiving_mx_hostname: Some("mailin.example.com".into()),
                receiving_mx_helo: Some("test-ehlo.example.com".into()),
                receiving_ip: Some("11.22.33.44".into()),
                failed_session_count: 1,
                additional_information: Some("This is additional information".into()),
                failure_reason_code: Some("999 TEST ERROR".into()),
            }
        );
        assert_eq!(&DatagramPolicy::from_report(&policy, &details).unwrap(), p);

        // A missing policy-domain (Postfix before 3.10.5) becomes the datagram's domain.
        let n = Datagram::parse(&read("no-policy-success.json")).unwrap();
        let np = n.policies[0].report_policy(&n.domain);
        assert_eq!(np.policy_domain, "example.com");
        assert_eq!(np.policy_type, PolicyType::NoPolicyFound);
        let back = DatagramPolicy::from_report(&np, &[]).unwrap();
        assert_eq!(back.policy_domain.as_deref(), Some("example.com"));
        assert!(!back.failed);

        let bad = FailureDetail {
            result_type: "mx-mismatch".into(),
            ..FailureDetail::default()
        };
        assert_eq!(
            DatagramPolicy::from_report(&np, &[bad]),
            Err(DatagramError::UnknownResultType {
                name: "mx-mismatch".into()
            })
        );
    }

    #[test]
    fn each_policy_of_a_datagram_is_one_session_of_its_report_domain() {
        let day: UtcDay = "2026-12-01".parse().unwrap();
        // (file, per session: domain, policy type, failure result types) or the error kind.
        type Want = Result<Vec<(&'static str, PolicyType, Vec<&'static str>)>, &'static str>;
        let table: Vec<(&str, Want)> = vec![
            (
                "sts-success.json",
                Ok(vec![("example.net", PolicyType::Sts, vec![])]),
            ),
            (
                "sts-starttls-not-supported.json",
                Ok(vec![(
                    "example.net",
                    PolicyType::Sts,
                    vec!["starttls-not-supported"],
                )]),
            ),
            (
                "no-policy-success.json",
                Ok(vec![("example.com", PolicyType::NoPolicyFound, vec![])]),
            ),
            (
                // The DANE base domain mx.example.com is the policy's; the report is
                // example.com's.
                "tlsa-invalid.json",
                Ok(vec![(
                    "example.com",
                    PolicyType::Tlsa,
                    vec!["tlsa-invalid"],
                )]),
            ),
            (
                "multi-policy.json",
                Ok(vec![
                    (
                        "company-y.example",
                        PolicyType::Sts,
                        vec!["sts-policy-invalid", "sts-webpki-invalid"],
                    ),
                    (
                        "company-y.example",
                        PolicyType::Tlsa,
                        vec!["certificate-expired"],
                    ),
                ]),
            ),
            // receiving-mx-hostname "müx/ü" is no host name.
            ("escapes.json", Err("invalid-session")),
        ];
        for (name, want) in table {
            let d = Datagram::parse(&read(name)).unwrap();
            let got = d.sessions(day).map(|sessions| {
                sessions
                    .iter()
                    .map(|s| {
                        assert_eq!(s.day(), day);
                        (
                            s.policy().domain().to_string(),
                            s.policy().policy_type(),
                            s.failures()
                                .iter()
                                .map(|f| f.result_type().as_str())
                                .collect::<Vec<_>>(),
                        )
                    })
                    .collect::<Vec<_>>()
            });
            match (got, want) {
                (Ok(got), Ok(want)) => {
                    let want: Vec<_> = want
                        .into_iter()
                        .map(|(d, t, f)| (d.to_string(), t, f))
                        .collect();
                    assert_eq!(got, want, "{name}");
                }
                (Err(e), Err(kind)) => assert_eq!(e.kind(), kind, "{name}: {e}"),
                (got, want) => panic!("{name}: {got:?}, wanted {want:?}"),
            }
        }
        // A success with failures, or a failure without, is refused whole.
        let with = |policy: &str| {
            format!(
                r#"{{"dpv": "1","d": "Example.NET.","pr": "v=TLSRPTv1; rua=mailto:a@b","policies":[{policy}]}}"#
            )
        };
        let bad = [
            (
                with(r#"{"policy-type":9,"failure-details":[{"c":201}],"t":1,"f":0}"#),
                "policies[0] says f 0 (success) but has 1 failure details",
            ),
            (
                with(r#"{"policy-type":9,"t":0,"f":0},{"policy-type":9,"t":0,"f":1}"#),
                "policies[1] says f 1 (failure) but has 0 failure details",
            ),
            (
                with(r#"{"policy-type":9,"failure-details":[{"c":201,"r": "mx"}],"t":1,"f":1}"#),
                "policies[0].failure-details[0]: receiving-ip \"mx\" is not an IP address",
            ),
            (
                with(r#"{"policy-type":9,"policy-string":["x"],"t":0,"f":0}"#),
                "policies[0]: policy strings",
            ),
        ];
        for (bytes, says) in bad {
            let e = Datagram::parse(bytes.as_bytes())
                .unwrap()
                .sessions(day)
                .unwrap_err();
            assert!(e.to_string().contains(says), "{e}");
        }
        // The domain is normalised as tlsrpt-collectd does (lower case, no final dot).
        let ok = Datagram::parse(with(r#"{"policy-type":9,"t":0,"f":0}"#).as_bytes()).unwrap();
        assert_eq!(
            ok.sessions(day).unwrap()[0].policy().domain().as_str(),
            "example.net"
        );
    }

    #[test]
    fn a_session_is_written_as_postfix_would_send_it_and_read_back_the_same() {
        let day: UtcDay = "2026-12-01".parse().unwrap();
        for name in [
            "sts-success.json",
            "sts-starttls-not-supported.json",
            "sts-validation-failure.json",
            "sts-policy-fetch-error.json",
            "no-policy-success-domain.json",
        ] {
            let bytes = read(name);
            let d = Datagram::parse(&bytes).unwrap();
            let sessions = d.sessions(day).unwrap();
            let back = Datagram::from_session(&sessions[0], &d.tlsrpt_record);
            assert_eq!(back.to_bytes().unwrap(), bytes, "{name}");
            assert_eq!(back.sessions(day).unwrap(), sessions, "{name}");
        }
        // DANE result types survive the round trip (no failure dropped).
        let tlsa = Datagram::parse(&read("tlsa-invalid.json")).unwrap();
        let session = &tlsa.sessions(day).unwrap()[0];
        let back = Datagram::from_session(session, "v=TLSRPTv1; rua=mailto:tls@example.com");
        assert_eq!(back.policies[0].failures[0].code, FailureCode::TlsaInvalid);
        assert_eq!(
            back.policies[0].policy_domain.as_deref(),
            Some("example.com")
        );
    }
}
