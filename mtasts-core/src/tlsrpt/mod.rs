//! TLS reporting (RFC 8460): the reporting record (R-RPT-1, R-RPT-2), the aggregate
//! report's data (R-RPT-6), and the datagrams libtlsrpt sends to a TLSRPT collector.

mod datagram;
mod record;
mod report;

pub use datagram::{
    DATAGRAM_PROTOCOL_VERSION, Datagram, DatagramError, DatagramFailure, DatagramPolicy,
    DatagramPolicyType, FailureCode, MAX_DATAGRAM,
};
pub use record::{
    ReportRecordAnswer, ReportUri, TLSRPT_VERSION, TlsRptRecord, discover_report_record,
    parse_report_record, select_report_record,
};
pub use report::{FailureDetail, PolicySummary, PolicyType, Report, ReportError, ReportPolicy};
