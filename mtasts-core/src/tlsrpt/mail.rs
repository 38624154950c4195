//! The report mail (RFC 8460 §5.3, R-RPT-9), pure: an RFC 5322 message of type
//! `multipart/report; report-type="tlsrpt"` with a text part and the gzip-compressed report
//! attached as `application/tlsrpt+gzip` (base64, under its R-RPT-7 file name); and the
//! SMTP pieces the relay client needs (dot-stuffing, reading a reply), table-tested here.
//!
//! Every header value comes from typed input: the domains are [`Domain`]s (A-labels), the
//! addresses passed [`is_plain_address`](super::settings::is_plain_address), the report id
//! and file name are letters, digits and `.!-`; no CR or LF can reach a header.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::domain::Domain;

/// What the report mail is made of.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ReportMail<'a> {
    /// `From:` (and the envelope sender).
    pub from: &'a str,
    /// `To:` (the `mailto:` address of the rua URI).
    pub to: &'a str,
    /// The policy domain (`TLS-Report-Domain`).
    pub domain: &'a Domain,
    /// The submitter (`TLS-Report-Submitter`).
    pub submitter: &'a Domain,
    /// The report id (in the subject).
    pub report_id: &'a str,
    /// The report's `organization-name`, for the text part only.
    pub organization: &'a str,
    /// The R-RPT-7 file name of the attachment.
    pub file_name: &'a str,
    /// The report, gzip-compressed.
    pub gzip: &'a [u8],
    /// The `Date:` of the message.
    pub date: SystemTime,
    /// The day the report covers, for the text part (`2026-12-01`).
    pub day: &'a str,
}

const BASE64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// `data` in base64 (RFC 2045 §6.8), in lines of 76 characters ending in CRLF.
pub(crate) fn base64_lines(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len() * 4 / 3 + data.len() / 57 * 2 + 4);
    for line in data.chunks(57) {
        for chunk in line.chunks(3) {
            let b = [
                chunk[0],
                chunk.get(1).copied().unwrap_or(0),
                chunk.get(2).copied().unwrap_or(0),
            ];
            let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
            for (i, shift) in [18u32, 12, 6, 0].into_iter().enumerate() {
                if i <= chunk.len() {
                    out.push(char::from(BASE64[((n >> shift) & 63) as usize]));
                } else {
                    out.push('=');
                }
            }
        }
        out.push_str("\r\n");
    }
    out
}

/// `t` as an RFC 5322 §3.3 date-time in UTC: `Wed, 02 Dec 2026 01:30:00 +0000`.
pub(crate) fn rfc5322_date(t: SystemTime) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    // `2026-12-02T01:30:00Z`, reordered.
    let stamp = crate::clock::rfc3339(t);
    let month: usize = stamp[5..7].parse().unwrap_or(1);
    format!(
        "{}, {} {} {} {} +0000",
        DAYS[(secs / 86_400 % 7) as usize],
        &stamp[8..10],
        MONTHS[month.clamp(1, 12) - 1],
        &stamp[..4],
        &stamp[11..19]
    )
}

impl ReportMail<'_> {
    /// The MIME boundary: made of the report id and the time, neither of which can occur in
    /// a base64 body or the fixed text (`=_` cannot appear in base64 output).
    fn boundary(&self) -> String {
        let secs = self
            .date
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        format!("=_tlsrpt_{}_{secs}", self.report_id)
    }

    /// The `Message-ID`: unique per message (the report id, the time in ms, the recipient's
    /// position is not needed: each attempt is a new message), at the submitter domain.
    fn message_id(&self) -> String {
        let ms = self
            .date
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        format!("<{}.{ms}@{}>", self.report_id, self.submitter)
    }

    /// The whole message, CRLF line ends (R-RPT-9, RFC 8460 §5.3).
    pub(crate) fn to_bytes(&self) -> Vec<u8> {
        let boundary = self.boundary();
        let (domain, submitter, id) = (self.domain, self.submitter, self.report_id);
        let mut m = String::with_capacity(self.gzip.len() * 4 / 3 + 2048);
        for (name, value) in [
            ("From", self.from.to_string()),
            ("To", self.to.to_string()),
            ("Date", rfc5322_date(self.date)),
            // RFC 8460 §5.3: the subject format; its Report-ID is an RFC 5322 msg-id
            // (`<id-left@id-right>`): the report id at the submitter.
            (
                "Subject",
                format!(
                    "Report Domain: {domain} Submitter: {submitter} Report-ID: <{id}@{submitter}>"
                ),
            ),
            ("Message-ID", self.message_id()),
            ("MIME-Version", "1.0".into()),
            ("TLS-Report-Domain", domain.to_string()),
            ("TLS-Report-Submitter", submitter.to_string()),
            // RFC 8689 §5: the report is sent even where TLS to the domain fails (which is
            // what the report may be about).
            ("TLS-Required", "No".into()),
            ("Auto-Submitted", "auto-generated".into()),
            (
                "Content-Type",
                format!("multipart/report; report-type=\"tlsrpt\";\r\n\tboundary=\"{boundary}\""),
            ),
        ] {
            m.push_str(name);
            m.push_str(": ");
            m.push_str(&value);
            m.push_str("\r\n");
        }
        m.push_str("\r\nThis is a multipart message in MIME format.\r\n\r\n");
        m.push_str(&format!("--{boundary}\r\n"));
        m.push_str("Content-Type: text/plain; charset=us-ascii\r\n");
        m.push_str("Content-Transfer-Encoding: 7bit\r\n\r\n");
        m.push_str(&format!(
            "This is an aggregate TLS report (RFC 8460) from {submitter} for {domain},\r\n\
             covering {day} (UTC). The report is attached, gzip-compressed.\r\n",
            day = self.day
        ));
        if self.organization.is_ascii() && !self.organization.contains(['\r', '\n']) {
            m.push_str(&format!("Sent by: {}\r\n", self.organization));
        }
        m.push_str(&format!("\r\n--{boundary}\r\n"));
        m.push_str("Content-Type: application/tlsrpt+gzip\r\n");
        m.push_str("Content-Transfer-Encoding: base64\r\n");
        m.push_str(&format!(
            "Content-Disposition: attachment;\r\n\tfilename=\"{}\"\r\n\r\n",
            self.file_name
        ));
        m.push_str(&base64_lines(self.gzip));
        m.push_str(&format!("--{boundary}--\r\n"));
        m.into_bytes()
    }
}

/// The DATA of a message for SMTP (RFC 5321 §4.5.2): every line end made CRLF, a `.` at the
/// start of a line doubled, and the final `CRLF.CRLF`.
pub(crate) fn smtp_data(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + message.len() / 64 + 8);
    let mut line_start = true;
    let mut i = 0;
    while i < message.len() {
        let b = message[i];
        if line_start && b == b'.' {
            out.push(b'.');
        }
        match b {
            b'\r' if message.get(i + 1) == Some(&b'\n') => {
                out.extend_from_slice(b"\r\n");
                i += 1;
                line_start = true;
            }
            b'\r' | b'\n' => {
                out.extend_from_slice(b"\r\n");
                line_start = true;
            }
            _ => {
                out.push(b);
                line_start = false;
            }
        }
        i += 1;
    }
    if !line_start {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
    out
}

/// The most lines an SMTP reply may have before the client gives up.
pub(crate) const MAX_REPLY_LINES: usize = 100;
/// The longest SMTP reply line read (RFC 5321 §4.5.3.1.5 says 512 with the code; generous).
pub(crate) const MAX_REPLY_LINE: usize = 4096;

/// One line of an SMTP reply: `Ok(Some((code, text)))` for the last line, `Ok(None)` for a
/// continuation (`250-...`), `Err` for a line that is not a reply.
pub(crate) fn reply_line(line: &str) -> Result<Option<(u16, &str)>, String> {
    let bytes = line.as_bytes();
    if bytes.len() < 3 || !bytes[..3].iter().all(u8::is_ascii_digit) || bytes[0] == b'0' {
        return Err(format!("not an SMTP reply: {:?}", truncate(line)));
    }
    let code: u16 = line[..3]
        .parse()
        .map_err(|_| "bad reply code".to_string())?;
    match bytes.get(3) {
        None => Ok(Some((code, ""))),
        Some(b' ') => Ok(Some((code, &line[4..]))),
        Some(b'-') => Ok(None),
        Some(_) => Err(format!("not an SMTP reply: {:?}", truncate(line))),
    }
}

/// `text` cut to 200 characters, for messages.
pub(crate) fn truncate(text: &str) -> &str {
    match text.char_indices().nth(200) {
        Some((i, _)) => &text[..i],
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tlsrpt::inbox::read_report;
    use crate::tlsrpt::mime::header_fields;
    use std::time::Duration;

    #[test]
    fn base64_matches_rfc_4648_vectors() {
        for (input, output) in [
            ("", ""),
            ("f", "Zg==\r\n"),
            ("fo", "Zm8=\r\n"),
            ("foo", "Zm9v\r\n"),
            ("foob", "Zm9vYg==\r\n"),
            ("fooba", "Zm9vYmE=\r\n"),
            ("foobar", "Zm9vYmFy\r\n"),
        ] {
            assert_eq!(base64_lines(input.as_bytes()), output, "{input}");
        }
        let long = base64_lines(&[0xffu8; 200]);
        let lines: Vec<&str> = long.split("\r\n").collect();
        assert!(lines[..lines.len() - 2].iter().all(|l| l.len() == 76));
        assert_eq!(
            crate::tlsrpt::mime::decode(long.as_bytes(), Some("base64")).unwrap(),
            [0xffu8; 200]
        );
    }

    #[test]
    fn dates_are_rfc_5322() {
        for (secs, text) in [
            (0, "Thu, 01 Jan 1970 00:00:00 +0000"),
            (951_782_400, "Tue, 29 Feb 2000 00:00:00 +0000"),
            (1_796_088_600, "Tue, 01 Dec 2026 01:30:00 +0000"),
        ] {
            assert_eq!(
                rfc5322_date(UNIX_EPOCH + Duration::from_secs(secs)),
                text,
                "{secs}"
            );
        }
    }

    #[test]
    fn dot_stuffing_and_line_ends() {
        for (input, data) in [
            ("a\r\n.b\r\n", "a\r\n..b\r\n.\r\n"),
            (".\n..\nx", "..\r\n...\r\nx\r\n.\r\n"),
            ("no end", "no end\r\n.\r\n"),
            ("", ".\r\n"),
            ("a\rb.", "a\r\nb.\r\n.\r\n"),
        ] {
            assert_eq!(
                String::from_utf8(smtp_data(input.as_bytes())).unwrap(),
                data,
                "{input:?}"
            );
        }
    }

    #[test]
    fn reply_lines() {
        assert_eq!(reply_line("250 ok"), Ok(Some((250, "ok"))));
        assert_eq!(reply_line("354"), Ok(Some((354, ""))));
        assert_eq!(reply_line("250-PIPELINING"), Ok(None));
        for bad in ["", "25", "abc def", "250x", "SSH-2.0-OpenSSH", "099 x"] {
            assert!(reply_line(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_message_has_the_headers_and_parts_of_rfc_8460_5_3() {
        let domain = Domain::new("company-y.example").unwrap();
        let submitter = Domain::new("mail.sender.example").unwrap();
        let report = crate::tlsrpt::Report {
            organization_name: "Sender".into(),
            start_datetime: "2026-12-01T00:00:00Z".into(),
            end_datetime: "2026-12-01T23:59:59Z".into(),
            contact_info: "mailto:postmaster@sender.example".into(),
            report_id: "20261201abc".into(),
            policies: vec![],
        };
        let gzip = report.to_gzip();
        let mail = ReportMail {
            from: "tlsrpt@sender.example",
            to: "reports@company-y.example",
            domain: &domain,
            submitter: &submitter,
            report_id: "20261201abc",
            organization: "Sender",
            file_name: "mail.sender.example!company-y.example!1!2!20261201abc.json.gz",
            gzip: &gzip,
            date: UNIX_EPOCH + Duration::from_secs(1_796_088_600),
            day: "2026-12-01",
        };
        let bytes = mail.to_bytes();
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(!text.replace("\r\n", "").contains('\n'), "CRLF only");
        let head = &text[..text.find("\r\n\r\n").unwrap()];
        let fields = header_fields(head.as_bytes());
        let get = |n: &str| {
            fields
                .iter()
                .find(|(k, _)| k == n)
                .map(|(_, v)| v.as_str())
                .unwrap_or_else(|| panic!("{n} missing"))
        };
        assert_eq!(
            get("subject"),
            "Report Domain: company-y.example Submitter: mail.sender.example Report-ID: \
             <20261201abc@mail.sender.example>"
        );
        assert_eq!(get("tls-report-domain"), "company-y.example");
        assert_eq!(get("tls-report-submitter"), "mail.sender.example");
        assert_eq!(get("tls-required"), "No");
        assert_eq!(get("mime-version"), "1.0");
        assert_eq!(get("date"), "Tue, 01 Dec 2026 01:30:00 +0000");
        assert!(get("message-id").ends_with("@mail.sender.example>"));
        assert!(get("content-type").starts_with("multipart/report; report-type=\"tlsrpt\";"));
        // The project's own reader finds the report in it.
        let read = read_report(&bytes).unwrap();
        assert_eq!(read.report, report);
    }
}
