//! The SMTP dialogue of a probe, over any [`Transport`]: the banner, `EHLO`, `STARTTLS` and,
//! whatever happens, `QUIT` (RFC 5321 §4.1, §4.3; RFC 3207 §4; rule R-CERT-1). The replies
//! are cut from the bytes by the pure [`ReplyReader`]; this file only moves bytes and decides
//! what each reply means for the probe.

use std::fmt;
use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

use super::reply::{Reply, ReplyError, ReplyReader};
use super::transport::{Transport, is_timeout};
use super::{ProbeOutcome, ProbeReport};
use crate::failure::{FailureReason, MxFailure};

/// How long the probe waits for the answer to `QUIT` (within the deadline): the outcome is
/// known by then, a server that does not answer must not make the probe slow.
pub(super) const QUIT_WAIT: Duration = Duration::from_secs(1);

/// What can go wrong reading SMTP replies.
#[derive(Debug)]
pub(super) enum SmtpError {
    /// Reading or writing failed (the deadline included).
    Io(io::Error),
    /// The server closed the connection before a complete reply.
    Closed,
    /// The bytes are not an acceptable SMTP reply.
    Reply(ReplyError),
}

impl From<io::Error> for SmtpError {
    fn from(e: io::Error) -> SmtpError {
        SmtpError::Io(e)
    }
}

impl From<ReplyError> for SmtpError {
    fn from(e: ReplyError) -> SmtpError {
        SmtpError::Reply(e)
    }
}

impl fmt::Display for SmtpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SmtpError::Io(e) => write!(f, "{e}"),
            SmtpError::Closed => f.write_str("the server closed the connection"),
            SmtpError::Reply(e) => write!(f, "{e}"),
        }
    }
}

/// Runs the dialogue up to the `220` answer to `STARTTLS`, recording the banner, the EHLO
/// reply, whether STARTTLS was offered and the timings in `report`. `Ok` when TLS may start
/// now; otherwise the probe's outcome (after `QUIT` where the session allows it).
/// `timeout_ms` is the deadline, for the messages.
pub(super) fn starttls(
    io: &mut impl Transport,
    report: &mut ProbeReport,
    ehlo_name: &str,
    start: Instant,
    timeout_ms: u128,
) -> Result<(), ProbeOutcome> {
    let incomplete = |reason: String| ProbeOutcome::Incomplete { reason };
    let fail = |reason, detail: String| ProbeOutcome::Fail(MxFailure::new(reason, detail));
    let mut lines = ReplyReader::default();
    let step = |what: &str, e: SmtpError| match e {
        SmtpError::Io(e) if is_timeout(&e) => incomplete(format!(
            "{what}: nothing within the {timeout_ms} ms deadline"
        )),
        e => incomplete(format!("{what}: {e}")),
    };

    // Banner (RFC 5321 §4.3.1), possibly multi-line.
    let banner = read_reply(io, &mut lines).map_err(|e| step("waiting for the banner", e))?;
    report.banner = banner.lines.clone();
    report.timings.banner = Some(start.elapsed());
    if banner.code != 220 {
        quit(io, &mut lines);
        return Err(incomplete(format!(
            "the server refused the session: {banner}"
        )));
    }

    // EHLO (RFC 5321 §4.1.1.1); STARTTLS is an EHLO keyword (RFC 3207 §4).
    send(io, &format!("EHLO {ehlo_name}\r\n")).map_err(|e| step("sending EHLO", e))?;
    let ehlo = read_reply(io, &mut lines).map_err(|e| step("waiting for the EHLO reply", e))?;
    report.ehlo = ehlo.lines.clone();
    if ehlo.code != 250 {
        quit(io, &mut lines);
        return Err(fail(
            FailureReason::StarttlsNotOffered,
            format!("EHLO was refused ({ehlo}), so STARTTLS cannot be offered"),
        ));
    }
    report.starttls_offered = ehlo.lines.iter().skip(1).any(|line| {
        line.split_ascii_whitespace()
            .next()
            .is_some_and(|keyword| keyword.eq_ignore_ascii_case("STARTTLS"))
    });
    if !report.starttls_offered {
        quit(io, &mut lines);
        // R-CERT-1: the MX must offer STARTTLS.
        return Err(fail(
            FailureReason::StarttlsNotOffered,
            "the EHLO reply does not advertise STARTTLS".into(),
        ));
    }

    send(io, "STARTTLS\r\n").map_err(|e| step("sending STARTTLS", e))?;
    let reply =
        read_reply(io, &mut lines).map_err(|e| step("waiting for the STARTTLS reply", e))?;
    if reply.code != 220 {
        quit(io, &mut lines);
        return Err(fail(
            FailureReason::StarttlsRefused,
            format!("STARTTLS was advertised but refused: {reply}"),
        ));
    }
    report.timings.starttls = Some(start.elapsed());
    if lines.buffered() > 0 {
        // Bytes sent before the client's ClientHello cannot be TLS: plaintext injected into
        // the session (CVE-2011-0411). Never feed them to TLS.
        return Err(fail(
            FailureReason::TlsHandshakeFailed,
            format!(
                "the server sent {} bytes after its 220 reply to STARTTLS, before TLS",
                lines.buffered()
            ),
        ));
    }
    Ok(())
}

/// Reads the next reply, feeding `lines` from `io` 1024 bytes at most at a time and only
/// while it needs more, so bytes past the reply stay unread or buffered in `lines`.
pub(super) fn read_reply(io: &mut impl Read, lines: &mut ReplyReader) -> Result<Reply, SmtpError> {
    loop {
        if let Some(reply) = lines.next_reply()? {
            return Ok(reply);
        }
        let mut chunk = [0u8; 1024];
        let n = io.read(&mut chunk)?;
        if n == 0 {
            return Err(SmtpError::Closed);
        }
        lines.feed(&chunk[..n]);
    }
}

/// Sends `QUIT` and reads the answer, waiting [`QUIT_WAIT`] at most, ignoring errors.
fn quit(io: &mut impl Transport, lines: &mut ReplyReader) {
    io.shorten_deadline(QUIT_WAIT);
    say_quit(io, lines);
}

/// Sends `QUIT` and reads the answer, ignoring errors: the outcome is known already. The
/// caller bounds the wait (see [`QUIT_WAIT`]).
pub(super) fn say_quit(io: &mut (impl Read + Write), lines: &mut ReplyReader) {
    if send(io, "QUIT\r\n").is_ok() {
        let _ = read_reply(io, lines);
    }
}

/// Writes one command line and flushes it.
fn send(io: &mut impl Write, command: &str) -> Result<(), SmtpError> {
    io.write_all(command.as_bytes())?;
    io.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Domain;

    /// A server whose every byte is there at once, and a record of what the client wrote.
    struct Script {
        input: &'static [u8],
        written: Vec<u8>,
        shortened: bool,
    }

    impl Read for Script {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.input.read(buf)
        }
    }

    impl Write for Script {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.written.write(buf)
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Transport for Script {
        fn shorten_deadline(&mut self, _wait: Duration) {
            self.shortened = true;
        }
    }

    /// The dialogue against scripted servers: how it ends (`ok`, a reason code, or the
    /// start of the incomplete reason), what the client sent, and whether it said `QUIT`
    /// under the shortened wait.
    #[test]
    fn scripted_dialogues() {
        let rows: &[(&str, &str, &str, bool)] = &[
            (
                "220-mx.example ESMTP\r\n220 hello\r\n250-mx.example\r\n250-SIZE 1000\r\n\
                 250 STARTTLS\r\n220 ready\r\n",
                "EHLO probe.example\r\nSTARTTLS\r\n",
                "ok",
                false,
            ),
            (
                "220 mx\r\n250-mx\r\n250 starttls\r\n220 go ahead\r\n",
                "EHLO probe.example\r\nSTARTTLS\r\n",
                "ok",
                false,
            ),
            (
                "554 go away\r\n221 bye\r\n",
                "QUIT\r\n",
                "the server refused the session: 554 go away",
                true,
            ),
            (
                "220 mx\r\n502 no EHLO\r\n",
                "EHLO probe.example\r\nQUIT\r\n",
                "starttls-not-offered",
                true,
            ),
            (
                "220 mx\r\n250-mx\r\n250 SIZE 1000\r\n",
                "EHLO probe.example\r\nQUIT\r\n",
                "starttls-not-offered",
                true,
            ),
            (
                // The first line is the greeting, not a keyword.
                "220 mx\r\n250 STARTTLS\r\n",
                "EHLO probe.example\r\nQUIT\r\n",
                "starttls-not-offered",
                true,
            ),
            (
                "220 mx\r\n250-mx\r\n250 STARTTLS\r\n454 not now\r\n",
                "EHLO probe.example\r\nSTARTTLS\r\nQUIT\r\n",
                "starttls-refused",
                true,
            ),
            (
                // CVE-2011-0411: never QUIT or TLS over injected bytes.
                "220 mx\r\n250-mx\r\n250 STARTTLS\r\n220 go ahead\r\n250 injected\r\n",
                "EHLO probe.example\r\nSTARTTLS\r\n",
                "tls-handshake-failed",
                false,
            ),
            (
                "220 mx\r\n",
                "EHLO probe.example\r\n",
                "waiting for the EHLO reply: the server closed the connection",
                false,
            ),
            (
                "SSH-2.0-OpenSSH_9.6\r\n",
                "",
                "waiting for the banner: not an SMTP reply: \"SSH-2.0-OpenSSH_9.6\"",
                false,
            ),
        ];
        for &(input, want_written, want, want_shortened) in rows {
            let mut io = Script {
                input: input.as_bytes(),
                written: Vec::new(),
                shortened: false,
            };
            let mut report = ProbeReport::new(Domain::new("mx.example").unwrap());
            let got = starttls(&mut io, &mut report, "probe.example", Instant::now(), 1000);
            let end = match &got {
                Ok(()) => "ok".to_string(),
                Err(ProbeOutcome::Fail(f)) => f.reason_code().to_string(),
                Err(ProbeOutcome::Incomplete { reason }) => reason.clone(),
                Err(other) => panic!("{input:?}: {other:?}"),
            };
            assert!(end.starts_with(want), "{input:?}: {end}");
            if got.is_ok() {
                assert!(report.starttls_offered, "{input:?}");
                assert!(report.timings.starttls.is_some(), "{input:?}");
            }
            assert_eq!(
                String::from_utf8_lossy(&io.written),
                want_written,
                "{input:?}"
            );
            assert_eq!(io.shortened, want_shortened, "{input:?}");
        }
    }
}
