//! # mtasts-core
//!
//! MTA-STS (RFC 8461) for sending mail servers: discover a recipient domain's policy through
//! its `_mta-sts` TXT record, fetch and validate the policy over HTTPS, cache it, and decide
//! which MX hosts a message may be delivered to. Failures carry the TLS-RPT (RFC 8460) result
//! type they are reported under.
//!
//! The rules this crate implements are listed with IDs (`R-DISC-1`, `R-FETCH-5`, ...) in the
//! project's rules file; doc comments and tests cite them.
//!
//! ```rust,no_run
//! use mtasts_core::{Config, Mode, Resolver};
//!
//! let resolver = Resolver::new(Config::default())?;
//! let resolution = resolver.resolve("example.com")?;
//! match resolution.policy() {
//!     Some(policy) if policy.mode() == Mode::Enforce => {
//!         // Deliver only to MX hosts the policy names, over verified TLS.
//!         println!("enforce: {:?}", policy.mx());
//!     }
//!     _ => println!("no MTA-STS requirement ({})", resolution.source()),
//! }
//! # Ok::<(), mtasts_core::Error>(())
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod batch;
mod cache;
mod certs;
mod clock;
mod config;
mod dane;
mod diagnose;
mod display;
mod dns;
mod dnssec;
mod domain;
mod error;
mod failure;
mod fetch;
mod json;
mod log_sink;
mod metrics;
mod mx;
mod policy;
mod probe;
mod process;
mod record;
mod refresh;
mod resolution;
mod resolver;
mod serve_settings;
mod smtpd_table;
mod socketmap;
mod socketmap_loop;
mod tlsrpt;
mod verdict;
mod within;

pub use batch::{BatchItem, MAX_CONCURRENCY};
pub use cache::{
    Backoff, CacheLocation, Entry, LayeredStore, MEMORY_ENTRIES, MERGE_SLACK, MemoryStore,
    RedisStore, SYSTEM_CACHE_PATH, SharedCache, SqliteStore, Store, UNUSED_LIMIT,
};
pub use certs::{CertCheck, CertVerifier, CertificateInfo, parse_chain};
pub use clock::{
    Clock, MAX_UNIX_SECONDS, ManualClock, SystemClock, from_unix_seconds, parse_time, rfc3339,
};
pub use config::{Config, LogLevel, MAX_TIMEOUT, SETTINGS};
pub use dane::{DANE_MAX_HOSTS, Dane, DaneCache, DaneStatus, dane_status};
pub use diagnose::{
    CheckOptions, Diagnosis, MxCheck, MxDelivery, MxLookup, Problem, ProblemCode, Severity,
    TxtCheck,
};
pub use display::escape_controls;
pub use dns::{DNS_CACHE_ENTRIES, DNS_CACHE_MAX_TTL, DnsAnswer, DnsResolver, HickoryDns};
pub use dnssec::{Authenticated, Tlsa};
pub use domain::Domain;
pub use error::{Error, Result, ResultType};
pub use failure::{FailureReason, MxFailure};
pub use fetch::{HttpsFetcher, MAX_POLICY_SIZE, PolicyFetcher, TrustRoots};
pub use json::{
    BackoffView, CertCheckView, CertView, CheckedPolicyView, DiagnosisView, EntryView,
    FailedRefreshView, FailureView, JSON_VERSION, MxCheckView, MxLookupView, PolicyView, ProbeView,
    ProblemView, RefreshView, ReportErrorView, ReportInputView, ResolutionView, SessionCountView,
    SummaryRowView, SummaryView, TimingsView, TxtView, to_json,
};
pub use log_sink::{install_log_sink, log_to_syslog};
pub use metrics::{AnswerKind, Answered, LATENCY_BUCKETS, Metrics};
pub use mx::{MxPattern, MxRecord};
pub use policy::{CachedPolicy, MAX_AGE_LIMIT, MAX_WARNINGS, Mode, Policy};
pub use probe::{
    MAX_REPLY_LINE, MAX_REPLY_LINES, ProbeOptions, ProbeOutcome, ProbeReport, ProbeTimings,
    SMTP_PORT, probe, probe_addrs,
};
pub use record::{Record, select_record};
pub use refresh::{MAX_JITTER, REFRESH_WINDOW, RefreshOptions, RefreshProgress, RefreshReport};
pub use resolution::{Resolution, Source};
pub use resolver::{
    DNS_FAILURE_RECHECK, FETCH_BACKOFF, MAX_RECHECK, MIN_RECHECK, Resolver, ResolverBuilder,
};
pub use serve_settings::{
    Listen, LogTarget, MAX_ANSWER_TIMEOUT, MAX_CONNECTIONS_LIMIT, SERVE_PREFIX, SERVE_SETTINGS,
    ServeSettings,
};
pub use smtpd_table::{
    MAX_KEY, MAX_TABLE_TIMEOUT, SMTPD_PREFIX, SmtpdSettings, SmtpdTable, TABLE_SERVICES,
    TableAnswer, TableOp, TableProtocolError, TableQuery, TableRole, TableService, V6_API_VERSION,
    V6_HEADER, V6_MAX_FRAME, V6Frame, V6Message, V7_MAX_LINE, V7_PROTOCOL, V7Line, check_answer,
    read_frame, relay_answer, table_role, v6_open_ok, v6_reply, v7_register, v7_reply,
};
pub use socketmap::{
    DaneMode, MAX_REPLY, MAX_REQUEST, MapOptions, NetstringError, PolicyServer, Reply, Request,
    ServerHandle, dane_reply, netstring, policy_domain, read_netstring, tls_policy_reply,
};
pub use socketmap_loop::{Admitted, ClientStream, EventLoops};
pub use tlsrpt::{
    AppliedPolicy, CollectOutcome, Collector, CollectorCounts, DATAGRAM_PROTOCOL_VERSION,
    DEFAULT_COLLECT_SOCKET, DEFAULT_COLLECT_SOCKET_MODE, DEFAULT_RETENTION, DRAIN_LIMIT, Datagram,
    DatagramEmitter, DatagramError, DatagramFailure, DatagramPolicy, DatagramPolicyType, DayReport,
    FailureCode, FailureDetail, InputOutcome, LOG_REPEAT_WINDOW, LogLimiter,
    MAX_ADDITIONAL_INFORMATION, MAX_DATAGRAM, MAX_HELO, MAX_POLICY_STRINGS, MAX_REASON_CODE,
    MAX_RECORD_TTL, MAX_REPORT_FILE_SIZE, MAX_REPORT_SIZE, MAX_RETENTION, MAX_SESSION_FAILURES,
    MIN_RECORD_TTL, MIN_RETENTION, MemoryReportStore, MtaEvent, POLL_INTERVAL, PolicySummary,
    PolicyType, ReceivedReport, RedisReportStore, Report, ReportDelivery, ReportError,
    ReportFormat, ReportPolicy, ReportRecordAnswer, ReportStore, ReportUri, Reporter, SEND_TIMEOUT,
    Session, SessionError, SessionFailure, SqliteReportStore, Summary, SummaryInput, SummaryRow,
    TLSRPT_PREFIX, TLSRPT_SETTINGS, TLSRPT_VERSION, Tally, TlsRptRecord, TlsRptSettings, UtcDay,
    classify_mta_error, discover_report_record, gunzip, gzip, parse_json, parse_report_record,
    read_report, read_report_file, report_file_name, select_report_record,
};
// Sending TLS-RPT reports (R-RPT-8 to R-RPT-10).
pub use json::{ReportDayView, ReportListView, SendOutcomeView, UriFailureView};
pub use tlsrpt::{
    CachedReportRecord, DEFAULT_SEND_SPREAD, DEFAULT_SENDMAIL, DayStatus, DeliveryState,
    FIRST_RETRY, MAX_RETRY_DELAY, MAX_RETRY_FOR, MAX_SEND_SPREAD, MIN_RETRY_FOR, MailTransport,
    PreparedReport, ReportSender, SendAction, SendOptions, SendOutcome, SendSettings, TLSRPT_GZIP,
    UriFailure, report_id, retry_delay, send_offset,
};
pub use verdict::{Delivery, MxPlan, SkippedMx, UsableMx, Verdict};
pub use within::run_within;

/// DER certificates as taken and returned by [`CertVerifier`] (from rustls-pki-types).
pub use rustls_pki_types::CertificateDer;

/// The README's Rust examples, compiled as doctests so they stay true.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;

/// The version of this crate, e.g. `0.1.0`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
