//! TLS reporting (RFC 8460): the reporting record (R-RPT-1, R-RPT-2), what is recorded per
//! session (R-RPT-3 to R-RPT-5), the store that aggregates it beside the policy cache, and
//! the aggregate report's data (R-RPT-6).

mod record;
mod report;
mod reporter;
mod session;
mod settings;
mod store;

pub use record::{
    ReportRecordAnswer, ReportUri, TLSRPT_VERSION, TlsRptRecord, discover_report_record,
    parse_report_record, select_report_record,
};
pub use report::{FailureDetail, PolicySummary, PolicyType, Report, ReportError, ReportPolicy};
pub use reporter::Reporter;
pub use session::{
    AppliedPolicy, MAX_ADDITIONAL_INFORMATION, MAX_HELO, MAX_POLICY_STRINGS, MAX_REASON_CODE,
    MAX_SESSION_FAILURES, Session, SessionError, SessionFailure, UtcDay,
};
pub use settings::{TLSRPT_PREFIX, TLSRPT_SETTINGS, TlsRptSettings};
pub use store::{
    DEFAULT_RETENTION, DayReport, MAX_RETENTION, MIN_RETENTION, MemoryReportStore,
    RedisReportStore, ReportDelivery, ReportStore, SqliteReportStore, Tally,
};
