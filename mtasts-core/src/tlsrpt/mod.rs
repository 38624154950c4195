//! TLS reporting (RFC 8460): the reporting record (R-RPT-1, R-RPT-2).

mod record;

pub use record::{
    ReportRecordAnswer, ReportUri, TLSRPT_VERSION, TlsRptRecord, discover_report_record,
    parse_report_record, select_report_record,
};
