//! TLS reporting (RFC 8460): the reporting record (R-RPT-1, R-RPT-2), what is recorded per
//! session (R-RPT-3 to R-RPT-5), the store that aggregates it beside the policy cache, the
//! aggregate report's data (R-RPT-6) and its compression and file name (R-RPT-7), the
//! datagrams libtlsrpt sends to a TLSRPT collector (collecting them, and emitting sessions as
//! them), the domain owner's side: reading received reports (JSON, gzip, mail) and summarising
//! them; and sending the daily reports (R-RPT-8 to R-RPT-10): the report mail, the HTTPS POST,
//! the schedule and the retries.

mod collector;
mod datagram;
mod deliver;
mod emit;
mod gzip;
mod inbox;
mod mail;
mod mime;
mod mta_event;
mod record;
mod report;
mod reporter;
mod sender;
mod session;
mod settings;
mod store;
mod summary;

pub use collector::{
    CollectOutcome, Collector, CollectorCounts, DEFAULT_COLLECT_SOCKET,
    DEFAULT_COLLECT_SOCKET_MODE, DRAIN_LIMIT, LOG_REPEAT_WINDOW, LogLimiter, POLL_INTERVAL,
};
pub use datagram::{
    DATAGRAM_PROTOCOL_VERSION, Datagram, DatagramError, DatagramFailure, DatagramPolicy,
    DatagramPolicyType, FailureCode, MAX_DATAGRAM,
};
pub use deliver::TLSRPT_GZIP;
pub use emit::{DatagramEmitter, MAX_RECORD_TTL, MIN_RECORD_TTL, SEND_TIMEOUT};
pub use gzip::{MAX_REPORT_SIZE, gunzip, gzip, report_file_name};
pub use inbox::{
    MAX_REPORT_FILE_SIZE, ReceivedReport, ReportFormat, parse_json, read_report, read_report_file,
};
pub use mta_event::{MtaEvent, classify_mta_error};
pub use record::{
    ReportRecordAnswer, ReportUri, TLSRPT_VERSION, TlsRptRecord, discover_report_record,
    parse_report_record, select_report_record,
};
pub use report::{FailureDetail, PolicySummary, PolicyType, Report, ReportError, ReportPolicy};
pub use reporter::Reporter;
pub use sender::{
    DayStatus, DeliveryState, FIRST_RETRY, MAX_RETRY_DELAY, PreparedReport, ReportSender,
    SendAction, SendOptions, SendOutcome, UriFailure, report_id, retry_delay, send_offset,
};
pub use session::{
    AppliedPolicy, MAX_ADDITIONAL_INFORMATION, MAX_HELO, MAX_POLICY_STRINGS, MAX_REASON_CODE,
    MAX_SESSION_FAILURES, Session, SessionError, SessionFailure, UtcDay,
};
pub use settings::{
    DEFAULT_SEND_SPREAD, DEFAULT_SENDMAIL, MAX_RETRY_FOR, MAX_SEND_SPREAD, MIN_RETRY_FOR,
    MailTransport, SendSettings,
};
pub use settings::{TLSRPT_PREFIX, TLSRPT_SETTINGS, TlsRptSettings};
pub use store::CachedReportRecord;
pub use store::{
    DEFAULT_RETENTION, DayReport, MAX_RETENTION, MIN_RETENTION, MemoryReportStore,
    RedisReportStore, ReportDelivery, ReportStore, SqliteReportStore, Tally,
};
pub use summary::{InputOutcome, Summary, SummaryInput, SummaryRow};
