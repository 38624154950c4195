//! TLS reporting (RFC 8460): the reporting record (R-RPT-1, R-RPT-2), the aggregate
//! report's data (R-RPT-6) and its compression and file name (R-RPT-7), the datagrams
//! libtlsrpt sends to a TLSRPT collector, and the domain owner's side: reading received
//! reports (JSON, gzip, mail) and summarising them.

mod datagram;
mod gzip;
mod inbox;
mod mime;
mod record;
mod report;
mod summary;

pub use datagram::{
    DATAGRAM_PROTOCOL_VERSION, Datagram, DatagramError, DatagramFailure, DatagramPolicy,
    DatagramPolicyType, FailureCode, MAX_DATAGRAM,
};
pub use gzip::{MAX_REPORT_SIZE, gunzip, gzip, report_file_name};
pub use inbox::{
    MAX_REPORT_FILE_SIZE, ReceivedReport, ReportFormat, parse_json, read_report, read_report_file,
};
pub use record::{
    ReportRecordAnswer, ReportUri, TLSRPT_VERSION, TlsRptRecord, discover_report_record,
    parse_report_record, select_report_record,
};
pub use report::{FailureDetail, PolicySummary, PolicyType, Report, ReportError, ReportPolicy};
pub use summary::{InputOutcome, Summary, SummaryInput, SummaryRow};
