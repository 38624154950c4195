//! SMTP replies from bytes, sans-IO (RFC 5321 §4.2): [`ReplyReader`] is fed the bytes a
//! server sent, in whatever pieces they arrived, and yields complete replies, multi-line ones
//! joined. It owns no socket and waits for nothing; the loop that reads the socket is
//! [`super::dialogue`]'s, the decisions (line ends, limits, what is not SMTP) are all here.
//!
//! Every decision depends only on the bytes received so far, never on how they were split
//! into pieces: the tests feed each vector whole, in 1024-byte pieces (as the dialogue reads)
//! and byte by byte, and want the same answer each way.
//!
//! Bytes after a complete reply stay buffered ([`ReplyReader::buffered`]): after the `220`
//! answer to `STARTTLS` there must be none (R-CERT-1; CVE-2011-0411, plaintext injected ahead of
//! the TLS session), and the dialogue refuses to start TLS when there are.

use std::fmt;

/// The longest reply line accepted, in bytes, CRLF included. RFC 5321 §4.5.3.1.5 allows 512;
/// a little more is tolerated, a never-ending line is not.
pub const MAX_REPLY_LINE: usize = 4096;

/// The most lines one multi-line reply may have. Real EHLO replies have a dozen or two.
pub const MAX_REPLY_LINES: usize = 100;

/// One SMTP reply (RFC 5321 §4.2): a code and the text of each line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Reply {
    /// The three-digit reply code, 200 to 599.
    pub(super) code: u16,
    /// The text after the code and its separator on each line, in order, made printable.
    pub(super) lines: Vec<String>,
}

impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.code, self.lines.join(" / "))
    }
}

/// Why the bytes received are not an acceptable SMTP reply. After one of these the stream is
/// not followed any further.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum ReplyError {
    /// A line longer than [`MAX_REPLY_LINE`] bytes, or that many bytes without a line end.
    LineTooLong,
    /// A reply of more than [`MAX_REPLY_LINES`] lines.
    TooManyLines,
    /// A line that is not an SMTP reply line (its printable text), or one whose code differs
    /// from the earlier lines of the same reply.
    NotSmtp(String),
}

impl fmt::Display for ReplyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReplyError::LineTooLong => write!(
                f,
                "a reply line longer than {MAX_REPLY_LINE} bytes (not an SMTP server?)"
            ),
            ReplyError::TooManyLines => {
                write!(f, "a reply of more than {MAX_REPLY_LINES} lines")
            }
            ReplyError::NotSmtp(line) => write!(f, "not an SMTP reply: {line:?}"),
        }
    }
}

/// Collects bytes and cuts them into replies. Keeps what it has of an unfinished line or
/// reply between calls, and the bytes past the last complete reply.
#[derive(Debug, Default)]
pub(super) struct ReplyReader {
    /// Bytes received and not yet taken as a line.
    buf: Vec<u8>,
    /// The code of the unfinished reply's lines so far.
    code: Option<u16>,
    /// The text of the unfinished reply's lines so far.
    lines: Vec<String>,
}

impl ReplyReader {
    /// Adds bytes received from the server.
    pub(super) fn feed(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// How many bytes were received past the last line taken: after a complete reply, what
    /// the server sent beyond it.
    pub(super) fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// The next complete reply, multi-line or not: `250-first`, `250-second`, `250 last`
    /// (RFC 5321 §4.2.1); `Ok(None)` while more bytes are needed. Tolerated: a bare LF line
    /// end (one CR before the LF is dropped, a CR elsewhere is text), a code alone on the last
    /// line. Refused: the limits [`MAX_REPLY_LINE`] and [`MAX_REPLY_LINES`], a line not
    /// starting with a code from 200 to 599 followed by a space, a `-` or nothing, and a code
    /// change inside a reply.
    pub(super) fn next_reply(&mut self) -> Result<Option<Reply>, ReplyError> {
        loop {
            // Before the next line is even there: a reply this long is refused already.
            if self.lines.len() >= MAX_REPLY_LINES {
                return Err(ReplyError::TooManyLines);
            }
            let Some(line) = self.take_line()? else {
                return Ok(None);
            };
            let (code, more, text) = parse_line(&line)?;
            if self.code.is_some_and(|c| c != code) {
                return Err(ReplyError::NotSmtp(printable(&line)));
            }
            self.code = Some(code);
            self.lines.push(text);
            if !more {
                self.code = None;
                return Ok(Some(Reply {
                    code,
                    lines: std::mem::take(&mut self.lines),
                }));
            }
        }
    }

    /// The next line without its line end (LF, or CRLF), or `None` while it is incomplete.
    fn take_line(&mut self) -> Result<Option<Vec<u8>>, ReplyError> {
        if let Some(end) = self.buf.iter().position(|b| *b == b'\n') {
            if end + 1 > MAX_REPLY_LINE {
                return Err(ReplyError::LineTooLong);
            }
            let mut line: Vec<u8> = self.buf.drain(..=end).collect();
            line.pop(); // LF
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            return Ok(Some(line));
        }
        if self.buf.len() >= MAX_REPLY_LINE {
            return Err(ReplyError::LineTooLong);
        }
        Ok(None)
    }
}

/// Splits a reply line into code, "more lines follow" and text.
fn parse_line(line: &[u8]) -> Result<(u16, bool, String), ReplyError> {
    let not_smtp = || ReplyError::NotSmtp(printable(line));
    let digits = line.get(..3).ok_or_else(not_smtp)?;
    if !digits.iter().all(u8::is_ascii_digit) || !(b'2'..=b'5').contains(&digits[0]) {
        return Err(not_smtp());
    }
    let code = digits
        .iter()
        .fold(0u16, |acc, d| acc * 10 + u16::from(d - b'0'));
    let (more, text) = match line.get(3) {
        None => (false, &[][..]),
        Some(b' ') => (false, &line[4..]),
        Some(b'-') => (true, &line[4..]),
        Some(_) => return Err(not_smtp()),
    };
    Ok((code, more, printable(text)))
}

/// The text as UTF-8 (lossy), control characters replaced, at most [`MAX_REPLY_LINE`] bytes.
fn printable(bytes: &[u8]) -> String {
    let bytes = &bytes[..bytes.len().min(MAX_REPLY_LINE)];
    String::from_utf8_lossy(bytes)
        .chars()
        .map(|c| {
            if c.is_control() && c != '\t' {
                '\u{fffd}'
            } else {
                c
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// All replies in `input`, then the first error (the server having closed the connection
    /// once the bytes run out, as in the probe, ends the list without one).
    fn replies(input: &[u8]) -> Vec<Result<(u16, Vec<String>), String>> {
        let mut reader = ReplyReader::default();
        reader.feed(input);
        let mut out = Vec::new();
        loop {
            match reader.next_reply() {
                Ok(Some(r)) => out.push(Ok((r.code, r.lines))),
                Ok(None) => return out,
                Err(e) => {
                    out.push(Err(e.to_string()));
                    return out;
                }
            }
        }
    }

    #[test]
    fn multi_line_replies() {
        let got = replies(
            b"220-mx.example ESMTP\r\n220 ready\r\n250-mx\r\n250-STARTTLS\r\n250 SIZE\r\n221\n",
        );
        assert_eq!(
            got,
            vec![
                Ok((220, vec!["mx.example ESMTP".into(), "ready".into()])),
                Ok((250, vec!["mx".into(), "STARTTLS".into(), "SIZE".into()])),
                Ok((221, vec![String::new()])),
            ]
        );
    }

    #[test]
    fn hostile_replies() {
        let cases: &[(&[u8], &str)] = &[
            (b"SSH-2.0-OpenSSH_9.6\r\n", "not an SMTP reply"),
            (b"220-a\r\n250 b\r\n", "not an SMTP reply"),
            (b"2200 x\r\n", "not an SMTP reply"),
            (b"620 x\r\n", "not an SMTP reply"),
            (b"22\r\n", "not an SMTP reply"),
        ];
        for (input, want) in cases {
            let got = replies(input);
            let last = got.last().unwrap().as_ref().unwrap_err();
            assert!(last.contains(want), "{input:?}: {last}");
        }
        let endless = vec![b'x'; 100_000];
        let got = replies(&endless);
        assert!(got[0].as_ref().unwrap_err().contains("longer than"));
        let many = b"220-x\r\n".repeat(1000);
        let got = replies(&many);
        assert!(got[0].as_ref().unwrap_err().contains("more than"));
        assert_eq!(printable(b"a\x1b[31mb"), "a\u{fffd}[31mb");
    }

    /// How feeding a vector ended.
    #[derive(Debug, PartialEq, Eq)]
    enum End {
        /// No error; this many bytes wait for a line end (more bytes needed).
        Waiting(usize),
        /// The reader refused the bytes.
        Refused(ReplyError),
    }

    /// Feeds `input` in pieces of `piece` bytes, taking every reply as soon as it is complete.
    fn feed(input: &[u8], piece: usize) -> (Vec<(u16, Vec<String>)>, End) {
        let mut reader = ReplyReader::default();
        let mut got = Vec::new();
        for bytes in input.chunks(piece) {
            reader.feed(bytes);
            loop {
                match reader.next_reply() {
                    Ok(Some(reply)) => got.push((reply.code, reply.lines)),
                    Ok(None) => break,
                    Err(e) => return (got, End::Refused(e)),
                }
            }
        }
        (got, End::Waiting(reader.buffered()))
    }

    /// `code` with `lines`, for the table.
    fn r(code: u16, lines: &[&str]) -> (u16, Vec<String>) {
        (code, lines.iter().map(|l| l.to_string()).collect())
    }

    /// A line of exactly `len` bytes, line end included: `250 xxx...` then `end`.
    fn line_of(len: usize, end: &[u8]) -> Vec<u8> {
        let mut line = b"250 ".to_vec();
        line.resize(len - end.len(), b'x');
        line.extend_from_slice(end);
        line
    }

    /// Byte vectors: what the reader yields and how it ends, the same whether the bytes come
    /// whole, in 1024-byte pieces or one at a time.
    #[test]
    fn byte_vectors() {
        use End::{Refused, Waiting};
        use ReplyError::{LineTooLong, NotSmtp, TooManyLines};
        let max_text = "x".repeat(MAX_REPLY_LINE - 6);
        let max_text_lf = "x".repeat(MAX_REPLY_LINE - 5);
        let x = |n: usize| vec![b'x'; n];
        let continued = |n: usize| b"250-x\r\n".repeat(n);
        let with_last = |n: usize| [continued(n - 1), b"250 x\r\n".to_vec()].concat();
        let hundred: Vec<&str> = vec!["x"; MAX_REPLY_LINES];
        type Row = (&'static str, Vec<u8>, Vec<(u16, Vec<String>)>, End);
        let rows: Vec<Row> = vec![
            ("nothing yet", b"".to_vec(), vec![], Waiting(0)),
            (
                "banner, CRLF",
                b"220 mx.example ESMTP\r\n".to_vec(),
                vec![r(220, &["mx.example ESMTP"])],
                Waiting(0),
            ),
            (
                "bare LF",
                b"220 ready\n".to_vec(),
                vec![r(220, &["ready"])],
                Waiting(0),
            ),
            (
                "a CR alone ends no line",
                b"220 ready\r".to_vec(),
                vec![],
                Waiting(10),
            ),
            ("partial line", b"220 rea".to_vec(), vec![], Waiting(7)),
            (
                "only the CR before the LF is dropped",
                b"250 a\r\r\n".to_vec(),
                vec![r(250, &["a\u{fffd}"])],
                Waiting(0),
            ),
            (
                "multi-line EHLO reply",
                b"250-mx.example\r\n250-STARTTLS\r\n250 SIZE 1000\r\n".to_vec(),
                vec![r(250, &["mx.example", "STARTTLS", "SIZE 1000"])],
                Waiting(0),
            ),
            (
                "multi-line reply, last line not yet there",
                b"250-mx\r\n250-STARTTLS\r\n250 SI".to_vec(),
                vec![],
                Waiting(6),
            ),
            (
                "line ends mixed within a reply",
                b"250-a\n250 b\r\n".to_vec(),
                vec![r(250, &["a", "b"])],
                Waiting(0),
            ),
            (
                "code alone",
                b"221\r\n".to_vec(),
                vec![r(221, &[""])],
                Waiting(0),
            ),
            (
                "code and dash alone, then the last line",
                b"250-\r\n250 x\r\n".to_vec(),
                vec![r(250, &["", "x"])],
                Waiting(0),
            ),
            (
                "replies back to back, then a partial one",
                b"220 a\r\n250 b\r\n354".to_vec(),
                vec![r(220, &["a"]), r(250, &["b"])],
                Waiting(3),
            ),
            (
                "pipelined after the 220: kept, never taken as a reply",
                b"220 go ahead\r\n\x16\x03\x01".to_vec(),
                vec![r(220, &["go ahead"])],
                Waiting(3),
            ),
            (
                "a permanent failure is a reply",
                b"554 no service\r\n".to_vec(),
                vec![r(554, &["no service"])],
                Waiting(0),
            ),
            (
                "controls replaced, tab kept",
                b"220 a\x1b[31mb\tc\0d\r\n".to_vec(),
                vec![r(220, &["a\u{fffd}[31mb\tc\u{fffd}d"])],
                Waiting(0),
            ),
            (
                "invalid UTF-8 replaced",
                b"220 caf\xe9\r\n".to_vec(),
                vec![r(220, &["caf\u{fffd}"])],
                Waiting(0),
            ),
            (
                "not SMTP: SSH",
                b"SSH-2.0-OpenSSH_9.6\r\n".to_vec(),
                vec![],
                Refused(NotSmtp("SSH-2.0-OpenSSH_9.6".into())),
            ),
            (
                "not SMTP: HTTP",
                b"HTTP/1.1 400 Bad Request\r\n".to_vec(),
                vec![],
                Refused(NotSmtp("HTTP/1.1 400 Bad Request".into())),
            ),
            (
                "code changes inside a reply",
                b"220-a\r\n250 b\r\n".to_vec(),
                vec![],
                Refused(NotSmtp("250 b".into())),
            ),
            (
                "four digits",
                b"2200 x\r\n".to_vec(),
                vec![],
                Refused(NotSmtp("2200 x".into())),
            ),
            (
                "first digit above 5",
                b"620 x\r\n".to_vec(),
                vec![],
                Refused(NotSmtp("620 x".into())),
            ),
            (
                "first digit below 2",
                b"120 x\r\n".to_vec(),
                vec![],
                Refused(NotSmtp("120 x".into())),
            ),
            (
                "a letter in the code",
                b"2a0 x\r\n".to_vec(),
                vec![],
                Refused(NotSmtp("2a0 x".into())),
            ),
            (
                "two digits",
                b"22\r\n".to_vec(),
                vec![],
                Refused(NotSmtp("22".into())),
            ),
            (
                "empty line",
                b"\r\n".to_vec(),
                vec![],
                Refused(NotSmtp(String::new())),
            ),
            (
                "leading space",
                b" 220 x\r\n".to_vec(),
                vec![],
                Refused(NotSmtp(" 220 x".into())),
            ),
            (
                "separator neither space nor dash",
                b"250_x\r\n".to_vec(),
                vec![],
                Refused(NotSmtp("250_x".into())),
            ),
            (
                "LF then CR: the CR starts the next line",
                b"220 a\n\r250 b\n".to_vec(),
                vec![r(220, &["a"])],
                Refused(NotSmtp("\u{fffd}250 b".into())),
            ),
            (
                "longest line, CRLF",
                line_of(MAX_REPLY_LINE, b"\r\n"),
                vec![r(250, &[max_text.as_str()])],
                Waiting(0),
            ),
            (
                "longest line, bare LF",
                line_of(MAX_REPLY_LINE, b"\n"),
                vec![r(250, &[max_text_lf.as_str()])],
                Waiting(0),
            ),
            (
                "one byte too long",
                line_of(MAX_REPLY_LINE + 1, b"\r\n"),
                vec![],
                Refused(LineTooLong),
            ),
            (
                "no line end yet, one byte short of the limit",
                x(MAX_REPLY_LINE - 1),
                vec![],
                Waiting(MAX_REPLY_LINE - 1),
            ),
            (
                "no line end within the limit",
                x(MAX_REPLY_LINE),
                vec![],
                Refused(LineTooLong),
            ),
            ("endless line", x(100_000), vec![], Refused(LineTooLong)),
            (
                "a reply, then an endless line",
                [b"220 a\r\n".to_vec(), x(100_000)].concat(),
                vec![r(220, &["a"])],
                Refused(LineTooLong),
            ),
            (
                "most lines",
                with_last(MAX_REPLY_LINES),
                vec![r(250, &hundred)],
                Waiting(0),
            ),
            (
                "too many lines: refused before the next one arrives",
                continued(MAX_REPLY_LINES),
                vec![],
                Refused(TooManyLines),
            ),
            (
                "too many lines, with a last one",
                with_last(MAX_REPLY_LINES + 1),
                vec![],
                Refused(TooManyLines),
            ),
        ];
        for (name, input, want_replies, want_end) in &rows {
            let want = (want_replies.clone(), want_end);
            for piece in [input.len().max(1), 1024, 1] {
                let (got, end) = feed(input, piece);
                assert_eq!((got, &end), want, "{name}, in pieces of {piece}");
            }
        }
    }

    /// What the server sent past a complete reply stays counted until taken: the dialogue
    /// refuses STARTTLS on it (CVE-2011-0411).
    #[test]
    fn bytes_past_a_reply_stay_buffered() {
        let cases: &[(&[u8], usize)] = &[
            (b"220 go ahead\r\n", 0),
            (b"220 go ahead\n", 0),
            (b"220 go ahead\r\n\x16\x03\x01\x00", 4),
            (b"220 go ahead\r\n250 injected\r\n", 14),
            (b"220-go\r\n220 ahead\r\nX", 1),
        ];
        for (input, want) in cases {
            let mut reader = ReplyReader::default();
            reader.feed(input);
            let reply = reader.next_reply().unwrap().unwrap();
            assert_eq!(reply.code, 220, "{input:?}");
            assert_eq!(reader.buffered(), *want, "{input:?}");
        }
    }
}
