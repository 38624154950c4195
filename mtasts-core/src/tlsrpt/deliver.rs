//! Handing one report to one `rua` URI (R-RPT-8, R-RPT-9): the HTTPS POST, and the report
//! mail through a sendmail-style command or an SMTP relay. Each ends within its deadline and
//! says why it failed as one line of text; what to do next (the other URIs, the retries) is
//! the sender's ([`ReportSender`](crate::ReportSender)).

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::mail::{MAX_REPLY_LINE, MAX_REPLY_LINES, reply_line, smtp_data, truncate};
use crate::dns::{DnsAnswer, DnsResolver};
use crate::error::Error;
use crate::fetch::{HttpsClient, classify, header};

/// The media type of a gzip-compressed report (RFC 8460 §6.4, R-RPT-8).
pub const TLSRPT_GZIP: &str = "application/tlsrpt+gzip";

/// How much of a failing answer (an HTTP body, a command's stderr) is kept for the message.
const KEEP: usize = 512;

/// R-RPT-8: POSTs `gzip` to `url` as `application/tlsrpt+gzip` with the policy fetch's TLS
/// rules and deadline ([`HttpsClient`]: R-FETCH-2, R-FETCH-3, R-FETCH-9); the URL's own port
/// and path are used. Any 2xx is acceptance; a 3xx is a failure, never followed (R-FETCH-5
/// applies to reports too: a redirect could send the report somewhere the domain did not
/// publish).
pub(crate) fn post_report(client: &HttpsClient, url: &str, gzip: &[u8]) -> Result<(), String> {
    let agent = client.agent().map_err(|e| e.to_string())?;
    let reason = |e: Error| match e {
        Error::PolicyFetch { reason, .. } => reason,
        Error::PolicyCertificate { reason, .. } => format!("certificate rejected: {reason}"),
        other => other.to_string(),
    };
    let mut response = agent
        .post(url)
        .header("Content-Type", TLSRPT_GZIP)
        .send(gzip)
        .map_err(|e| reason(classify(url, e, client.deadline())))?;
    let status = response.status().as_u16();
    if (200..300).contains(&status) {
        return Ok(());
    }
    if (300..400).contains(&status) {
        let location = header(&response, "location").unwrap_or_default();
        return Err(format!(
            "HTTP status {status} redirect to {location:?} not followed (R-RPT-8)"
        ));
    }
    let body = response
        .body_mut()
        .with_config()
        .limit(KEEP as u64)
        .read_to_vec()
        .unwrap_or_default();
    let text = String::from_utf8_lossy(&body);
    let text = text.trim();
    Err(if text.is_empty() {
        format!("HTTP status {status}")
    } else {
        format!("HTTP status {status}: {}", truncate(text))
    })
}

/// R-RPT-9 through a sendmail-style command: `command` followed by `-f <from> -- <to>`, the
/// message on its standard input; accepted when it exits with status 0 within `deadline`.
/// Past the deadline the child is killed (and reaped). No shell is involved.
pub(crate) fn sendmail(
    command: &[String],
    from: &str,
    to: &str,
    message: &[u8],
    deadline: Duration,
) -> Result<(), String> {
    let Some((program, args)) = command.split_first() else {
        return Err("no sendmail command".into());
    };
    let started = Instant::now();
    let mut child = Command::new(program)
        .args(args)
        .args(["-f", from, "--", to])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    // The message is written and stderr read on threads of their own, so a command that
    // does not read its input, or writes much to stderr, cannot stop the deadline; and
    // neither is waited for past it (a grandchild may hold the pipes open after the
    // command ended or was killed).
    let (done_tx, done_rx) = std::sync::mpsc::channel::<Done>();
    if let Some(mut stdin) = child.stdin.take() {
        let message = message.to_vec();
        let done = done_tx.clone();
        std::thread::spawn(move || {
            let _ = done.send(Done::Written(stdin.write_all(&message).err()));
        });
    }
    if let Some(mut stderr) = child.stderr.take() {
        let done = done_tx.clone();
        std::thread::spawn(move || {
            let mut kept = Vec::new();
            let mut buf = [0u8; 4096];
            while let Ok(n) = stderr.read(&mut buf) {
                if n == 0 {
                    break;
                }
                let room = KEEP.saturating_sub(kept.len());
                kept.extend_from_slice(&buf[..n.min(room)]);
            }
            let _ = done.send(Done::Stderr(kept));
        });
    }
    drop(done_tx);
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Ok(status),
            Ok(None) if started.elapsed() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                break Err(format!(
                    "{program} did not finish within {} s and was killed",
                    deadline.as_secs_f32()
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => break Err(format!("waiting for {program}: {e}")),
        }
    };
    // The threads end at once when the command's pipes closed with it; a little grace, no
    // more, otherwise.
    let (mut written, mut stderr) = (None, String::new());
    let grace = Instant::now() + Duration::from_millis(200);
    while let Ok(done) = done_rx.recv_timeout(grace.saturating_duration_since(Instant::now())) {
        match done {
            Done::Written(e) => written = Some(e),
            Done::Stderr(kept) => stderr = String::from_utf8_lossy(&kept).trim().to_string(),
        }
    }
    let status = status?;
    if !status.success() {
        let what = match status.code() {
            Some(code) => format!("{program} exited with status {code}"),
            None => format!("{program} was killed by a signal"),
        };
        return Err(if stderr.is_empty() {
            what
        } else {
            format!("{what}: {}", truncate(&stderr))
        });
    }
    match written {
        Some(None) => Ok(()),
        Some(Some(e)) => Err(format!("{program} did not read the whole message: {e}")),
        None => Err(format!("{program} ended without reading the whole message")),
    }
}

/// What a helper thread of [`sendmail`] reports when it is done.
enum Done {
    /// The message was written to stdin (or the error that stopped it).
    Written(Option<std::io::Error>),
    /// What the command wrote to stderr (the first [`KEEP`] bytes).
    Stderr(Vec<u8>),
}

/// An SMTP conversation with the relay, every read and write within one deadline.
struct Smtp {
    stream: TcpStream,
    buf: Vec<u8>,
    until: Instant,
    relay: String,
}

impl Smtp {
    fn left(&self) -> Result<Duration, String> {
        let left = self.until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(format!("{}: no answer within the deadline", self.relay));
        }
        Ok(left)
    }

    fn line(&mut self) -> Result<String, String> {
        loop {
            if let Some(end) = self.buf.iter().position(|b| *b == b'\n') {
                let mut line: Vec<u8> = self.buf.drain(..=end).collect();
                line.pop();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                return Ok(String::from_utf8_lossy(&line).into_owned());
            }
            if self.buf.len() > MAX_REPLY_LINE {
                return Err(format!("{}: a reply line is too long", self.relay));
            }
            let left = self.left()?;
            self.stream
                .set_read_timeout(Some(left))
                .map_err(|e| e.to_string())?;
            let mut chunk = [0u8; 1024];
            match self.stream.read(&mut chunk) {
                Ok(0) => return Err(format!("{}: connection closed", self.relay)),
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    return Err(format!("{}: no answer within the deadline", self.relay));
                }
                Err(e) => return Err(format!("{}: {e}", self.relay)),
            }
        }
    }

    /// One reply: its code and its lines' text joined.
    fn reply(&mut self) -> Result<(u16, String), String> {
        let mut text = Vec::new();
        for _ in 0..MAX_REPLY_LINES {
            let line = self.line()?;
            let last = reply_line(&line).map_err(|e| format!("{}: {e}", self.relay))?;
            match last {
                Some((code, rest)) => {
                    text.push(rest.to_string());
                    return Ok((code, text.join(" ")));
                }
                None => text.push(line.get(4..).unwrap_or_default().to_string()),
            }
        }
        Err(format!("{}: a reply of too many lines", self.relay))
    }

    fn send(&mut self, bytes: &[u8]) -> Result<(), String> {
        let left = self.left()?;
        self.stream
            .set_write_timeout(Some(left))
            .map_err(|e| e.to_string())?;
        self.stream
            .write_all(bytes)
            .and_then(|()| self.stream.flush())
            .map_err(|e| format!("{}: {e}", self.relay))
    }

    /// Sends `command` (without CRLF; `None`: only reads) and expects a reply of class
    /// `class` (2 or 3); another is a failure quoting the relay.
    fn expect(&mut self, command: Option<&str>, class: u16, what: &str) -> Result<(), String> {
        if let Some(command) = command {
            self.send(format!("{command}\r\n").as_bytes())?;
        }
        let (code, text) = self.reply()?;
        if code / 100 != class {
            return Err(format!(
                "{} answered {code} {} to {what}",
                self.relay,
                truncate(&text)
            ));
        }
        Ok(())
    }
}

/// R-RPT-9 over SMTP to the relay `host:port` (RFC 5321: the 220 greeting, `EHLO helo`,
/// `MAIL FROM`, `RCPT TO`, `DATA` with dot-stuffing, `QUIT`), every read and write within
/// `deadline` in all. A 4xx or 5xx reply is a failure with the relay's text. No STARTTLS and
/// no AUTH: the relay is on this host or a trusted network, and DKIM signing is its job.
#[allow(clippy::too_many_arguments)]
pub(crate) fn smtp_submit(
    dns: &Arc<dyn DnsResolver>,
    (host, port): (&str, u16),
    helo: &str,
    from: &str,
    to: &str,
    message: &[u8],
    deadline: Duration,
) -> Result<(), String> {
    let until = Instant::now() + deadline;
    let relay = format!("relay {host}:{port}");
    let ips: Vec<IpAddr> = match host.parse::<IpAddr>() {
        Ok(ip) => vec![ip],
        Err(_) => match dns.ip_within(host, Some(deadline)) {
            Ok(DnsAnswer::Found { records, .. }) => records,
            Ok(_) => return Err(format!("{relay}: the host has no address")),
            Err(e) => return Err(format!("{relay}: {e}")),
        },
    };
    let mut last = format!("{relay}: no address to connect to");
    let mut stream = None;
    for ip in ips {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        match TcpStream::connect_timeout(&SocketAddr::new(ip, port), left) {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(e) => last = format!("{relay}: connecting to {ip}: {e}"),
        }
    }
    let Some(stream) = stream else {
        return Err(last);
    };
    let mut smtp = Smtp {
        stream,
        buf: Vec::new(),
        until,
        relay,
    };
    smtp.expect(None, 2, "the connection")?;
    smtp.expect(Some(&format!("EHLO {helo}")), 2, "EHLO")?;
    smtp.expect(Some(&format!("MAIL FROM:<{from}>")), 2, "MAIL FROM")?;
    smtp.expect(Some(&format!("RCPT TO:<{to}>")), 2, "RCPT TO")?;
    smtp.expect(Some("DATA"), 3, "DATA")?;
    smtp.send(&smtp_data(message))?;
    smtp.expect(None, 2, "the message")?;
    // The message is accepted; the QUIT's answer changes nothing.
    let _ = smtp.expect(Some("QUIT"), 2, "QUIT");
    Ok(())
}
