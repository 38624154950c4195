//! Just enough of RFC 5322 and MIME (RFC 2045, RFC 2046) to take a TLS-RPT report out of
//! the mail message it arrived in (RFC 8460 §5.3, R-RPT-9): header fields with folding,
//! `Content-Type` parameters quoted or not, multiparts nested to any sensible depth, and the
//! transfer encodings `base64`, `quoted-printable`, `7bit`, `8bit` and `binary`.
//!
//! It reads; it never builds messages. What it tolerates, beyond the letter of the RFCs, is
//! said next to the code that tolerates it.

use super::report::ReportError;

/// How deep multiparts (and forwarded `message/rfc822` parts) may nest. A report message is
/// two levels deep; a forwarded one three or four. Deeper is not a report: stopping bounds
/// the recursion whatever the input.
const MAX_DEPTH: usize = 16;

/// The report found in a message: its bytes after transfer decoding, and whether they are
/// gzip (`application/tlsrpt+gzip`) or JSON (`application/tlsrpt+json`).
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Attachment {
    /// The decoded body of the part.
    pub bytes: Vec<u8>,
    /// True for gzip.
    pub gzip: bool,
}

fn mail(reason: impl Into<String>) -> ReportError {
    ReportError::Mail {
        reason: reason.into(),
    }
}

/// Splits a message (or a body part) into its header block and its body at the first empty
/// line. Lines may end in CRLF or, as in files saved by many tools, a bare LF.
fn split(message: &[u8]) -> (&[u8], &[u8]) {
    let mut pos = 0;
    while pos < message.len() {
        let end = message[pos..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(message.len(), |i| pos + i);
        let line = &message[pos..end];
        if line.is_empty() || line == b"\r" {
            return (&message[..pos], message.get(end + 1..).unwrap_or_default());
        }
        pos = end + 1;
    }
    // No empty line: all header, no body (RFC 5322 §3.5 makes the body optional).
    (message, &[])
}

/// The header fields of `head`, names lowercased, folded lines unfolded (RFC 5322 §2.2.3:
/// CRLF followed by whitespace is removed). Bytes that are not UTF-8 are replaced; the
/// fields read here are ASCII. A line that is neither a field nor a continuation is skipped.
pub(crate) fn header_fields(head: &[u8]) -> Vec<(String, String)> {
    let text = String::from_utf8_lossy(head);
    let mut fields: Vec<(String, String)> = Vec::new();
    for line in text.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = fields.last_mut() {
                value.push_str(line);
            }
            continue;
        }
        if let Some((name, value)) = line.split_once(':') {
            let name = name.trim_end();
            if !name.is_empty() && name.bytes().all(|b| b.is_ascii_graphic()) {
                fields.push((name.to_ascii_lowercase(), value.trim().to_string()));
            }
        }
    }
    fields
}

fn field<'f>(fields: &'f [(String, String)], name: &str) -> Option<&'f str> {
    fields
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// A `Content-Type` (or `Content-Disposition`) value: the lowercased `type/subtype` (or
/// disposition), and its parameters with lowercased names and unquoted values.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct MediaType {
    /// `multipart/report`, `application/tlsrpt+gzip`, `attachment`, ...
    pub value: String,
    /// The parameters in order.
    pub params: Vec<(String, String)>,
}

impl MediaType {
    /// The parameter `name` (lowercase).
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Reads `type/subtype; name=value; name="quoted \" value"` (RFC 2045 §5.1): comments in
/// parentheses are dropped (RFC 5322 §3.2.2), a quoted-string may hold `;` and backslash
/// escapes, and whitespace around `=` and `;` is allowed (RFC 2045 allows none there;
/// senders write it). RFC 2231 continuations (`name*0=`) are not joined: no TLS-RPT sender
/// writes them for the parameters read here.
pub(crate) fn media_type(value: &str) -> MediaType {
    // Tokens: drop comments, keep quoted strings whole.
    let mut cleaned = String::with_capacity(value.len());
    let mut chars = value.chars();
    let mut depth = 0usize;
    while let Some(c) = chars.next() {
        match c {
            '"' if depth == 0 => {
                cleaned.push('"');
                while let Some(q) = chars.next() {
                    match q {
                        '\\' => {
                            cleaned.push('\\');
                            if let Some(e) = chars.next() {
                                cleaned.push(e);
                            }
                        }
                        '"' => break,
                        _ => cleaned.push(q),
                    }
                }
                cleaned.push('"');
            }
            '(' => depth += 1,
            ')' if depth > 0 => depth -= 1,
            '\\' if depth > 0 => {
                chars.next();
            }
            _ if depth > 0 => {}
            _ => cleaned.push(c),
        }
    }
    let mut parts = split_params(&cleaned).into_iter();
    let value = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
    let params = parts
        .filter_map(|p| {
            let (name, v) = p.split_once('=')?;
            Some((name.trim().to_ascii_lowercase(), unquote(v.trim())))
        })
        .collect();
    MediaType { value, params }
}

/// Splits at the `;` that are outside quoted strings.
fn split_params(s: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut quoted = false;
    let mut escaped = false;
    for c in s.chars() {
        if let Some(current) = out.last_mut() {
            if escaped {
                escaped = false;
                current.push(c);
                continue;
            }
            match c {
                '\\' if quoted => {
                    escaped = true;
                    current.push(c);
                }
                '"' => {
                    quoted = !quoted;
                    current.push(c);
                }
                ';' if !quoted => out.push(String::new()),
                _ => current.push(c),
            }
        }
    }
    out
}

fn unquote(v: &str) -> String {
    match v.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
        Some(inner) => {
            let mut out = String::with_capacity(inner.len());
            let mut chars = inner.chars();
            while let Some(c) = chars.next() {
                if c == '\\' {
                    if let Some(e) = chars.next() {
                        out.push(e);
                    }
                } else {
                    out.push(c);
                }
            }
            out
        }
        None => v.to_string(),
    }
}

/// The body parts of a multipart body (RFC 2046 §5.1.1). A delimiter is a line that is
/// `--boundary`, perhaps followed by whitespace (transport padding); `--boundary--` closes.
/// The line break before a delimiter belongs to it, not to the part. The preamble and the
/// epilogue are ignored.
///
/// Tolerated: a body whose closing delimiter is missing (a message cut short) gives the
/// parts that were there; whatever is missing in them is found when they are decoded.
fn multipart_parts<'b>(body: &'b [u8], boundary: &str) -> Vec<&'b [u8]> {
    let delimiter = format!("--{boundary}");
    let delimiter = delimiter.as_bytes();
    let mut parts = Vec::new();
    let mut start: Option<usize> = None;
    let mut pos = 0;
    while pos < body.len() {
        let end = body[pos..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(body.len(), |i| pos + i);
        let next = (end + 1).min(body.len());
        let line = &body[pos..end];
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if let Some(rest) = line.strip_prefix(delimiter) {
            let (closing, rest) = match rest.strip_prefix(b"--") {
                Some(rest) => (true, rest),
                None => (false, rest),
            };
            if rest.iter().all(|&b| b == b' ' || b == b'\t') {
                if let Some(s) = start {
                    let mut e = pos;
                    if e > s && body[e - 1] == b'\n' {
                        e -= 1;
                        if e > s && body[e - 1] == b'\r' {
                            e -= 1;
                        }
                    }
                    parts.push(&body[s..e]);
                }
                if closing {
                    return parts;
                }
                start = Some(next);
            }
        }
        pos = next;
    }
    if let Some(s) = start {
        parts.push(&body[s..]);
    }
    parts
}

/// Decodes a body by its `Content-Transfer-Encoding` (RFC 2045 §6); none means `7bit`.
///
/// # Errors
/// [`ReportError::Mail`] for an encoding that is not one of RFC 2045's, or base64 that is
/// not base64.
pub(crate) fn decode(body: &[u8], encoding: Option<&str>) -> Result<Vec<u8>, ReportError> {
    let encoding = encoding.map(|e| media_type(e).value);
    match encoding.as_deref() {
        None | Some("7bit" | "8bit" | "binary") => Ok(body.to_vec()),
        Some("base64") => base64(body),
        Some("quoted-printable") => Ok(quoted_printable(body)),
        Some(other) => Err(mail(format!(
            "Content-Transfer-Encoding {other:?} is not one of RFC 2045's"
        ))),
    }
}

/// Base64 (RFC 2045 §6.8). Line breaks and other whitespace are skipped; decoding ends at
/// the first `=`; any other character outside the alphabet is an error (RFC 2045 says to
/// ignore them, but in a report attachment they mean the message was damaged, and saying so
/// is more useful than a gzip error later).
fn base64(body: &[u8]) -> Result<Vec<u8>, ReportError> {
    let mut out = Vec::with_capacity(body.len() / 4 * 3);
    let mut acc: u32 = 0;
    let mut bits = 0;
    for (i, &b) in body.iter().enumerate() {
        let v = match b {
            b'A'..=b'Z' => b - b'A',
            b'a'..=b'z' => b - b'a' + 26,
            b'0'..=b'9' => b - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => break,
            b' ' | b'\t' | b'\r' | b'\n' => continue,
            _ => {
                return Err(mail(format!(
                    "the base64 body has a byte 0x{b:02x} outside the alphabet at offset {i}"
                )));
            }
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Ok(out)
}

/// Quoted-printable (RFC 2045 §6.7): `=XX` is a byte, `=` at the end of a line is a soft
/// line break. An `=` followed by anything else is kept as it is (RFC 2045 §6.7 note 1
/// suggests so for robustness).
fn quoted_printable(body: &[u8]) -> Vec<u8> {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(body.len());
    let mut i = 0;
    while i < body.len() {
        if body[i] != b'=' {
            out.push(body[i]);
            i += 1;
            continue;
        }
        // A soft line break: `=`, optional trailing whitespace, then CRLF or LF.
        let mut j = i + 1;
        while j < body.len() && (body[j] == b' ' || body[j] == b'\t') {
            j += 1;
        }
        if j < body.len() && body[j] == b'\n' {
            i = j + 1;
            continue;
        }
        if j + 1 < body.len() && body[j] == b'\r' && body[j + 1] == b'\n' {
            i = j + 2;
            continue;
        }
        match (
            body.get(i + 1).and_then(|&b| hex(b)),
            body.get(i + 2).and_then(|&b| hex(b)),
        ) {
            (Some(hi), Some(lo)) => {
                out.push(hi << 4 | lo);
                i += 3;
            }
            _ => {
                out.push(b'=');
                i += 1;
            }
        }
    }
    out
}

/// Looks through a message for the report attached to it.
///
/// The report is the part of type `application/tlsrpt+gzip` or `application/tlsrpt+json`
/// (RFC 8460 §5.3), found depth-first in the order of the parts. Also accepted, as some
/// senders label their attachments so: a part of type `application/gzip`,
/// `application/x-gzip` or `application/octet-stream` whose file name ends in `.json.gz`
/// (gzip) or `.json` (JSON). A `multipart/report` whose `report-type` is not `tlsrpt` (a
/// delivery status notification, perhaps of a report that bounced) is not looked into.
///
/// # Errors
/// [`ReportError::Mail`]: no report part, a multipart without a boundary, nesting deeper
/// than 16 levels, or a part whose transfer encoding cannot be decoded.
pub(crate) fn find_report(message: &[u8]) -> Result<Attachment, ReportError> {
    find(message, 0)?.ok_or_else(|| {
        mail("no application/tlsrpt+gzip or application/tlsrpt+json part (RFC 8460 §5.3)")
    })
}

fn find(entity: &[u8], depth: usize) -> Result<Option<Attachment>, ReportError> {
    if depth > MAX_DEPTH {
        return Err(mail(format!("parts nested more than {MAX_DEPTH} deep")));
    }
    let (head, body) = split(entity);
    let fields = header_fields(head);
    // No Content-Type means text/plain (RFC 2045 §5.2).
    let content_type = media_type(field(&fields, "content-type").unwrap_or("text/plain"));
    let encoding = field(&fields, "content-transfer-encoding");
    let kind = content_type.value.as_str();
    if let Some(sub) = kind.strip_prefix("multipart/") {
        if sub == "report"
            && content_type
                .param("report-type")
                .is_some_and(|t| !t.eq_ignore_ascii_case("tlsrpt"))
        {
            return Ok(None);
        }
        let boundary = content_type
            .param("boundary")
            .filter(|b| !b.is_empty())
            .ok_or_else(|| mail(format!("a {kind} part without a boundary parameter")))?;
        for part in multipart_parts(body, boundary) {
            if let Some(found) = find(part, depth + 1)? {
                return Ok(Some(found));
            }
        }
        return Ok(None);
    }
    if kind == "message/rfc822" {
        // A forwarded message: the report may be inside (a transfer encoding other than
        // 7bit, 8bit or binary is not allowed here, RFC 2046 §5.2.1, but is decoded anyway).
        return find(&decode(body, encoding)?, depth + 1);
    }
    let name = || {
        media_type(field(&fields, "content-disposition").unwrap_or_default())
            .param("filename")
            .map(str::to_ascii_lowercase)
            .or_else(|| content_type.param("name").map(str::to_ascii_lowercase))
            .unwrap_or_default()
    };
    let gzip = match kind {
        "application/tlsrpt+gzip" => true,
        "application/tlsrpt+json" => false,
        "application/gzip" | "application/x-gzip" | "application/octet-stream"
            if name().ends_with(".json.gz") =>
        {
            true
        }
        "application/json" | "application/octet-stream" if name().ends_with(".json") => false,
        _ => return Ok(None),
    };
    Ok(Some(Attachment {
        bytes: decode(body, encoding)?,
        gzip,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_fields_are_unfolded_and_named_in_lowercase() {
        let head = b"Subject: Report Domain: example.com\r\n Submitter: s.example\r\n\tReport-ID: <1@s>\r\nContent-Type: multipart/report;\n\treport-type=\"tlsrpt\";\n boundary=b1\r\nX-Empty:\r\nnot a field\r\n";
        let fields = header_fields(head);
        assert_eq!(
            field(&fields, "subject"),
            Some("Report Domain: example.com Submitter: s.example\tReport-ID: <1@s>")
        );
        let ct = media_type(field(&fields, "content-type").unwrap());
        assert_eq!(ct.value, "multipart/report");
        assert_eq!(ct.param("report-type"), Some("tlsrpt"));
        assert_eq!(ct.param("boundary"), Some("b1"));
        assert_eq!(field(&fields, "x-empty"), Some(""));
        assert_eq!(fields.len(), 3);
    }

    #[test]
    fn media_type_parameters_quoted_or_not() {
        for (text, boundary) in [
            ("multipart/mixed; boundary=abc", "abc"),
            ("Multipart/Mixed; BOUNDARY=\"a b;c\"", "a b;c"),
            (
                "multipart/mixed ; boundary = \"x\\\"y\" ; charset=us-ascii",
                "x\"y",
            ),
            (
                "multipart/mixed; (a comment) boundary=\"----=_Part_1\"",
                "----=_Part_1",
            ),
        ] {
            let t = media_type(text);
            assert_eq!(t.value, "multipart/mixed", "{text}");
            assert_eq!(t.param("boundary"), Some(boundary), "{text}");
        }
        assert_eq!(media_type("").value, "");
    }

    #[test]
    fn transfer_encodings() {
        assert_eq!(
            decode(b"aGVs\r\nbG8=\r\n", Some("base64")).unwrap(),
            b"hello"
        );
        assert_eq!(decode(b"aGVsbG8", Some("BASE64")).unwrap(), b"hello");
        assert!(matches!(
            decode(b"aGV*bG8=", Some("base64")),
            Err(ReportError::Mail { .. })
        ));
        assert_eq!(
            decode(b"{\"a\":=\r\n =3D1}=\nx=ZZ", Some("quoted-printable")).unwrap(),
            b"{\"a\": =1}x=ZZ"
        );
        assert_eq!(decode(b"as is", None).unwrap(), b"as is");
        assert_eq!(decode(b"as is", Some("8bit")).unwrap(), b"as is");
        assert!(matches!(
            decode(b"x", Some("x-uuencode")),
            Err(ReportError::Mail { .. })
        ));
    }

    #[test]
    fn multipart_bodies_split_at_their_delimiters() {
        let body = b"preamble\r\n--b\r\nA: 1\r\n\r\none\r\n--b  \r\n\r\ntwo\n--bb\n--b--\r\nepilogue\r\n--b\r\nignored";
        assert_eq!(
            multipart_parts(body, "b"),
            [&b"A: 1\r\n\r\none"[..], &b"\r\ntwo\n--bb"[..]]
        );
        assert_eq!(
            multipart_parts(b"--b\r\n\r\ncut short", "b"),
            [&b"\r\ncut short"[..]],
            "no closing delimiter"
        );
        assert!(multipart_parts(b"no delimiter", "b").is_empty());
    }

    #[test]
    fn the_report_part_is_found_nested_and_labelled_either_way() {
        let msg = b"Content-Type: multipart/mixed; boundary=outer\r\n\r\n--outer\r\nContent-Type: text/plain\r\n\r\nhi\r\n--outer\r\nContent-Type: multipart/report; report-type=tlsrpt; boundary=\"inner\"\r\n\r\n--inner\r\nContent-Type: text/plain\r\n\r\ntext\r\n--inner\r\nContent-Type: application/tlsrpt+json\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n{\"x\":=3D}\r\n--inner--\r\n--outer--\r\n";
        assert_eq!(
            find_report(msg).unwrap(),
            Attachment {
                bytes: b"{\"x\":=}".to_vec(),
                gzip: false
            }
        );
        let octets = b"Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: application/octet-stream\nContent-Disposition: attachment; filename=\"S!D!1!2.JSON.GZ\"\nContent-Transfer-Encoding: base64\n\nH4s=\n--b--\n";
        assert_eq!(
            find_report(octets).unwrap(),
            Attachment {
                bytes: vec![0x1f, 0x8b],
                gzip: true
            }
        );
        let dsn = b"Content-Type: multipart/report; report-type=delivery-status; boundary=b\n\n--b\nContent-Type: application/tlsrpt+json\n\n{}\n--b--\n";
        assert!(matches!(find_report(dsn), Err(ReportError::Mail { .. })));
        let no_boundary = b"Content-Type: multipart/report; report-type=tlsrpt\n\nbody";
        assert!(
            find_report(no_boundary)
                .unwrap_err()
                .to_string()
                .contains("boundary")
        );
        let mut deep = Vec::new();
        for _ in 0..40 {
            deep.extend_from_slice(b"Content-Type: message/rfc822\n\n");
        }
        assert!(
            find_report(&deep)
                .unwrap_err()
                .to_string()
                .contains("nested")
        );
    }
}
