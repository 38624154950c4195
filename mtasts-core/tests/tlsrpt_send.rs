//! Sending TLS-RPT reports against real parts on loopback (R-RPT-1, R-RPT-7 to R-RPT-10):
//! the test world's DNS server for `_smtp._tls` (SERVFAIL included), its HTTPS server and
//! test CA as the report receiver (recording each POST's body, answering 500 when told), its
//! SMTP mail sink as the relay, a shell script as the sendmail command, and a SQLite report
//! store in a temporary directory. Time is a manual clock moved to the day after; nothing
//! sleeps but the sendmail deadline test (1 s).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use mtasts_core::{
    AppliedPolicy, Config, DEFAULT_RETENTION, DnsResolver, Error, HickoryDns, MAX_REPORT_SIZE,
    ManualClock, ReportSender, ReportStore, ResultType, SendAction, SendOptions, SendOutcome,
    Session, SessionFailure, SqliteReportStore, Summary, TlsRptSettings, TrustRoots, gunzip,
    read_report,
};
use mtasts_testworld::{
    Behaviour, CertSpec, HttpResponse, RecordType, SmtpBehaviour, SmtpServer, World, ZoneRecord,
};
use support::{ENFORCE, TESTING, day, domain, sts, temp_dir};

const RECEIVER: &str = "reports.receiver.test";
const PATH: &str = "/v1/tlsrpt";

/// A test world with an HTTPS report receiver, a SQLite report store and a sender.
struct Rig {
    world: World,
    store: Arc<SqliteReportStore>,
    clock: Arc<ManualClock>,
    dns: Arc<dyn DnsResolver>,
    config: Config,
    settings: TlsRptSettings,
    dir: std::path::PathBuf,
}

impl Rig {
    fn new() -> Rig {
        let world = World::start().unwrap();
        let identity = world.ca().issue(&CertSpec::dns([RECEIVER])).unwrap();
        world.https().set_identity(RECEIVER, &identity).unwrap();
        world
            .https()
            .set_response(RECEIVER, PATH, HttpResponse::new(202));
        world
            .zone()
            .set_records(RECEIVER, vec![ZoneRecord::a(Ipv4Addr::LOCALHOST)]);
        let dir = temp_dir("send");
        let store =
            Arc::new(SqliteReportStore::open(dir.join("cache.db"), DEFAULT_RETENTION).unwrap());
        let mut config = Config::default();
        config.nameservers = vec![world.dns_addr()];
        config.trust_roots = TrustRoots::PemFile(world.ca_pem_path().to_path_buf());
        config.fetch_timeout = Duration::from_secs(3);
        config.dns_timeout = Duration::from_secs(2);
        let dns: Arc<dyn DnsResolver> = Arc::new(
            HickoryDns::with_nameservers(&config.nameservers, config.dns_timeout).unwrap(),
        );
        let mut settings = TlsRptSettings::default();
        settings
            .load_str(
                "tlsrpt.organization_name = Sender Example\n\
                 tlsrpt.contact_info = mailto:postmaster@sender.example\n\
                 tlsrpt.submitter = mail.sender.example\n\
                 tlsrpt.mail_from = tlsrpt@sender.example\n",
                "test",
            )
            .unwrap();
        // After the whole spread of the next day: every report is due.
        let clock = Arc::new(ManualClock::new(
            day().end() + Duration::from_secs(5 * 3600),
        ));
        Rig {
            world,
            store,
            clock,
            dns,
            config,
            settings,
            dir,
        }
    }

    /// The HTTPS rua URI of the receiver (its own port, its path).
    fn https_uri(&self) -> String {
        format!("https://{RECEIVER}:{}{PATH}", self.world.https_port())
    }

    fn publish(&self, name: &str, record: &str) {
        self.world.zone().set_records(
            &format!("_smtp._tls.{name}"),
            vec![ZoneRecord::txt1(record)],
        );
    }

    fn sender(&self) -> ReportSender {
        ReportSender::new(
            self.store.clone(),
            Arc::clone(&self.dns),
            &self.config,
            self.settings.sending().unwrap(),
        )
        .unwrap()
        .with_clock(self.clock.clone())
    }

    fn send(&self) -> Vec<SendOutcome> {
        self.sender().send_due(SendOptions::default()).unwrap()
    }

    /// The bodies POSTed to the receiver, in order.
    fn posts(&self) -> Vec<Vec<u8>> {
        self.world
            .https()
            .request_log()
            .into_iter()
            .filter(|r| r.sni == RECEIVER && r.method == "POST")
            .map(|r| {
                assert_eq!(r.target, PATH);
                assert_eq!(r.content_type.as_deref(), Some("application/tlsrpt+gzip"));
                r.body
            })
            .collect()
    }

    fn record(&self, sessions: &[Session]) {
        for s in sessions {
            self.store.record(s).unwrap();
        }
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The sessions of S-80, S-81 and S-82 (as in the store's tests).
fn scenario_sessions() -> Vec<Session> {
    let mut sessions = Vec::new();
    for _ in 0..3 {
        sessions.push(Session::success(day(), sts("s80.example", ENFORCE)));
    }
    let expired = SessionFailure::new(ResultType::CertificateExpired)
        .receiving_mx_hostname("mx1.example.com")
        .unwrap();
    let no_tls = SessionFailure::new(ResultType::StarttlsNotSupported)
        .receiving_mx_hostname("mx2.example.com")
        .unwrap();
    for failure in [expired.clone(), expired, no_tls] {
        sessions.push(Session::failure(day(), sts("s81.example", TESTING), vec![failure]).unwrap());
    }
    let fetch = SessionFailure::from_policy_failure(&Error::PolicyFetch {
        url: "https://mta-sts.s82.example/.well-known/mta-sts.txt".into(),
        reason: "HTTP status 500".into(),
    })
    .unwrap();
    let none = AppliedPolicy::no_policy_found("s82.example").unwrap();
    for _ in 0..4 {
        sessions.push(Session::failure(day(), none.clone(), vec![fetch.clone()]).unwrap());
    }
    sessions
}

fn delivered(outcomes: &[SendOutcome]) -> Vec<String> {
    outcomes
        .iter()
        .filter(|o| matches!(o.action, SendAction::Delivered { .. }))
        .map(|o| o.domain.to_string())
        .collect()
}

/// S-80, S-81, S-82: what was recorded arrives, POSTed as `application/tlsrpt+gzip` to the
/// URI's own port and path; the body is what `show` prints (gunzipped, byte for byte);
/// `summarize` reads what `send` produced; nothing is sent twice.
#[test]
fn s80_s81_s82_reports_are_posted_with_the_recorded_counts() {
    let rig = Rig::new();
    for name in ["s80.example", "s81.example", "s82.example"] {
        rig.publish(name, &format!("v=TLSRPTv1; rua={}", rig.https_uri()));
    }
    rig.record(&scenario_sessions());
    // Before the day is over nothing goes, even with --now.
    rig.clock.set(day().end() - Duration::from_secs(60));
    let early = rig
        .sender()
        .send_due(SendOptions::new(true, false))
        .unwrap();
    assert!(
        early
            .iter()
            .all(|o| matches!(o.action, SendAction::NotDue { .. }))
    );
    rig.clock.set(day().end() + Duration::from_secs(5 * 3600));
    let outcomes = rig.send();
    assert_eq!(
        delivered(&outcomes),
        ["s80.example", "s81.example", "s82.example"],
        "{outcomes:?}"
    );
    let posts = rig.posts();
    assert_eq!(posts.len(), 3);
    let sender = rig.sender();
    let mut summary = Summary::new();
    for (body, name) in posts
        .iter()
        .zip(["s80.example", "s81.example", "s82.example"])
    {
        let json = gunzip(body, MAX_REPORT_SIZE).unwrap();
        let shown = sender.prepare(day(), &domain(name)).unwrap().unwrap();
        assert_eq!(String::from_utf8(json).unwrap(), shown.json, "show = POST");
        let report = read_report(body).unwrap().report;
        assert_eq!(report.organization_name, "Sender Example");
        assert_eq!(report.contact_info, "postmaster@sender.example");
        assert_eq!(report.report_id, shown.report_id);
        assert_eq!(report.start_datetime, "2026-12-01T00:00:00Z");
        assert_eq!(report.end_datetime, "2026-12-01T23:59:59Z");
        assert_eq!(report.policies.len(), 1);
        let p = &report.policies[0];
        assert_eq!(p.policy.policy_domain, name);
        match name {
            "s80.example" => {
                assert_eq!((p.total_successful, p.total_failure), (3, 0));
                assert!(p.failure_details.is_empty());
            }
            "s81.example" => {
                assert_eq!((p.total_successful, p.total_failure), (0, 3));
                let counts: Vec<(&str, u64)> = p
                    .failure_details
                    .iter()
                    .map(|d| (d.result_type.as_str(), d.failed_session_count))
                    .collect();
                assert_eq!(
                    counts,
                    [("certificate-expired", 2), ("starttls-not-supported", 1)]
                );
            }
            _ => {
                assert_eq!(p.policy.policy_type.as_str(), "no-policy-found");
                assert_eq!(p.total_failure, 4);
                assert_eq!(p.failure_details[0].result_type, "sts-policy-fetch-error");
            }
        }
        summary.add_input(name, read_report(body));
    }
    // `summarize` reads what `send` produced.
    assert!(summary.failures().next().is_none());
    let failed: u64 = summary.rows().map(|r| r.failed).sum();
    let successful: u64 = summary.rows().map(|r| r.successful).sum();
    assert_eq!((successful, failed), (3, 7));
    // Delivered: never sent again.
    rig.clock.advance(Duration::from_secs(86_400));
    assert!(rig.send().is_empty());
    assert!(
        rig.sender()
            .send_due(SendOptions::new(true, false))
            .unwrap()
            .is_empty()
    );
    assert_eq!(rig.posts().len(), 3);
    for name in ["s80.example", "s81.example", "s82.example"] {
        let d = rig.store.delivery(day(), &domain(name)).unwrap().unwrap();
        assert!(d.delivered_at.is_some() && d.abandoned_at.is_none());
    }
}

/// S-85: the receiver answers 500 twice, then 200 (here 202): delivered on the third try,
/// at growing intervals, and never sent again after that.
#[test]
fn s85_500_twice_then_200_is_delivered_once_on_the_third_try() {
    let rig = Rig::new();
    rig.publish(
        "s80.example",
        &format!("v=TLSRPTv1; rua={}", rig.https_uri()),
    );
    rig.world.https().queue_responses(
        RECEIVER,
        PATH,
        vec![
            HttpResponse::new(500).with_body("try later"),
            HttpResponse::new(500),
        ],
    );
    rig.record(&[Session::success(day(), sts("s80.example", ENFORCE))]);
    let first = rig.send();
    let SendAction::Retry { next_attempt } = first[0].action else {
        panic!("{first:?}");
    };
    assert_eq!(
        next_attempt,
        rig.clock.now_time() + Duration::from_secs(300)
    );
    assert!(
        first[0].failures[0]
            .reason
            .contains("HTTP status 500: try later")
    );
    // Not before the back-off ends.
    assert!(matches!(rig.send()[0].action, SendAction::NotDue { .. }));
    rig.clock.advance(Duration::from_secs(300));
    let SendAction::Retry { next_attempt } = rig.send()[0].action else {
        panic!("second");
    };
    assert_eq!(
        next_attempt,
        rig.clock.now_time() + Duration::from_secs(600),
        "growing"
    );
    rig.clock.advance(Duration::from_secs(600));
    assert_eq!(delivered(&rig.send()), ["s80.example"]);
    let d = rig
        .store
        .delivery(day(), &domain("s80.example"))
        .unwrap()
        .unwrap();
    assert_eq!(d.attempts, 2);
    for _ in 0..3 {
        rig.clock.advance(Duration::from_secs(3600));
        assert!(rig.send().is_empty());
    }
    let posts = rig.posts();
    assert_eq!(posts.len(), 3, "two refused, one accepted, none after");
    assert!(
        posts.windows(2).all(|w| w[0] == w[1]),
        "the same report each time"
    );
}

/// S-84: no TLS-RPT record (NXDOMAIN, NODATA, an invalid record): nothing is sent, the day
/// is abandoned. R-RPT-1: SERVFAIL is not "no record": retried, then sent once it answers.
#[test]
fn s84_no_record_sends_nothing_and_servfail_is_retried() {
    let rig = Rig::new();
    rig.world
        .zone()
        .set_records("_smtp._tls.nodata.example", vec![]);
    rig.publish("invalid.example", "v=TLSRPTv1; rua=ftp://x.example/r");
    rig.world
        .zone()
        .set_behaviour("_smtp._tls.servfail.example", Behaviour::ServFail);
    let names = [
        "nxdomain.example",
        "nodata.example",
        "invalid.example",
        "servfail.example",
    ];
    for name in names {
        rig.record(&[Session::success(day(), sts(name, ENFORCE))]);
    }
    let outcomes = rig.send();
    let actions: Vec<(&str, &SendAction)> = outcomes
        .iter()
        .map(|o| (o.domain.as_str(), &o.action))
        .collect();
    for (name, action) in &actions[..3] {
        assert!(
            matches!(action, SendAction::Abandoned { reason } if reason.contains("TLS-RPT record")),
            "{name}: {action:?}"
        );
    }
    assert!(
        matches!(actions[3].1, SendAction::Retry { .. }),
        "{actions:?}"
    );
    assert!(
        outcomes[3].failures[0]
            .uri
            .starts_with("_smtp._tls.servfail.example")
    );
    assert!(rig.posts().is_empty(), "S-84: nothing sent");
    // The record is published; SERVFAIL ends: the retry delivers.
    rig.publish(
        "servfail.example",
        &format!("v=TLSRPTv1; rua={}", rig.https_uri()),
    );
    rig.clock.advance(Duration::from_secs(300));
    assert_eq!(delivered(&rig.send()), ["servfail.example"]);
    assert_eq!(rig.posts().len(), 1);
}

/// Issue 15 item 1: the record is cached as the STS record is (R-CACHE-5): within its TTL
/// (kept within 60 s to 3600 s) a later run, another process, asks the store, not DNS.
#[test]
fn the_record_is_cached_in_the_store_by_its_ttl() {
    let rig = Rig::new();
    let name = "cached.example";
    rig.world.zone().set_records(
        &format!("_smtp._tls.{name}"),
        vec![ZoneRecord::txt1("v=TLSRPTv1; rua=mailto:r@receiver.test").with_ttl(600)],
    );
    let txt = format!("_smtp._tls.{name}");
    let queries = || rig.world.dns().queries(&txt, RecordType::TXT);
    let first = rig.sender().report_record(&domain(name), false).unwrap();
    assert_eq!(queries(), 1);
    let cached = rig.store.report_record(&domain(name)).unwrap().unwrap();
    assert_eq!(
        cached.next_check,
        rig.clock.now_time() + Duration::from_secs(600)
    );
    // Another sender (as a later run) within the TTL: from the store.
    assert_eq!(
        rig.sender().report_record(&domain(name), false).unwrap(),
        first
    );
    assert_eq!(queries(), 1);
    rig.clock.advance(Duration::from_secs(601));
    rig.sender().report_record(&domain(name), false).unwrap();
    assert_eq!(queries(), 2, "queried again after the TTL");
    // A negative answer is cached too; a SERVFAIL is an error and caches nothing.
    rig.world.zone().set_behaviour(&txt, Behaviour::ServFail);
    rig.clock.advance(Duration::from_secs(601));
    let e = rig
        .sender()
        .report_record(&domain(name), false)
        .unwrap_err();
    assert!(matches!(e, Error::DnsTemporary { .. }), "{e}");
    let still = rig.store.report_record(&domain(name)).unwrap().unwrap();
    assert!(
        still.record.is_some(),
        "a SERVFAIL never replaces the answer"
    );
}

/// R-RPT-8: a redirect is a failure, never followed.
#[test]
fn redirects_are_not_followed() {
    let rig = Rig::new();
    rig.world.https().set_response(
        RECEIVER,
        PATH,
        HttpResponse::redirect(307, &format!("https://{RECEIVER}/elsewhere")),
    );
    rig.world
        .https()
        .set_response(RECEIVER, "/elsewhere", HttpResponse::new(200));
    rig.publish(
        "s80.example",
        &format!("v=TLSRPTv1; rua={}", rig.https_uri()),
    );
    rig.record(&[Session::success(day(), sts("s80.example", ENFORCE))]);
    let outcomes = rig.send();
    assert!(matches!(outcomes[0].action, SendAction::Retry { .. }));
    assert!(
        outcomes[0].failures[0].reason.contains("redirect")
            && outcomes[0].failures[0].reason.contains("not followed"),
        "{outcomes:?}"
    );
    assert_eq!(
        rig.world.https().requests(RECEIVER),
        1,
        "/elsewhere never asked"
    );
}

/// R-RPT-10: retried for `retry_for` (24 h) after the due time, then abandoned.
#[test]
fn retries_end_in_abandonment_after_retry_for() {
    let rig = Rig::new();
    rig.world
        .https()
        .set_response(RECEIVER, PATH, HttpResponse::new(503));
    rig.publish(
        "s80.example",
        &format!("v=TLSRPTv1; rua={}", rig.https_uri()),
    );
    rig.record(&[Session::success(day(), sts("s80.example", ENFORCE))]);
    let mut attempts = 0;
    loop {
        let outcome = rig.sender().send_due(SendOptions::default()).unwrap();
        match &outcome[0].action {
            SendAction::Retry { next_attempt } => {
                attempts += 1;
                rig.clock.set(*next_attempt);
            }
            SendAction::Abandoned { reason } => {
                assert!(reason.contains("not delivered after"), "{reason}");
                break;
            }
            other => panic!("{other:?}"),
        }
        assert!(attempts < 50);
    }
    let due = rig.sender().due_at(day(), &domain("s80.example"));
    assert!(
        rig.clock.now_time() >= due + Duration::from_secs(86_400),
        "at least 24 h"
    );
    assert!(attempts >= 8, "{attempts}");
    assert!(rig.send().is_empty(), "abandoned: no more attempts");
}

/// R-RPT-9 over SMTP to a relay: the message's headers and MIME structure, read back with
/// the project's own reader; the `!size` limit skips a URI (logged) and the next one gets
/// the report; one that no URI can take is abandoned.
#[test]
fn report_mails_go_to_the_smtp_relay_within_the_size_limit() {
    let mut rig = Rig::new();
    let relay = SmtpServer::start(SmtpBehaviour::AcceptMail).unwrap();
    rig.settings
        .set("tlsrpt.smtp_relay", &format!("127.0.0.1:{}", relay.port()))
        .unwrap();
    rig.publish(
        "s81.example",
        "v=TLSRPTv1; rua=mailto:small@receiver.test!100,mailto:tls%2Breports@receiver.test!1m",
    );
    rig.publish(
        "tiny.example",
        "v=TLSRPTv1; rua=mailto:small@receiver.test!500",
    );
    rig.record(&scenario_sessions()[3..6]);
    rig.record(&[Session::success(day(), sts("tiny.example", ENFORCE))]);
    let outcomes = rig.send();
    let s81 = &outcomes[0];
    assert!(
        matches!(&s81.action, SendAction::Delivered { uri } if uri.starts_with("mailto:tls+reports@")),
        "{outcomes:?}"
    );
    assert!(
        s81.failures[0].permanent
            && s81.failures[0]
                .reason
                .contains("over the URI's limit of 100")
    );
    assert!(
        matches!(&outcomes[1].action, SendAction::Abandoned { reason } if reason.contains("no rua URI can take")),
        "{outcomes:?}"
    );
    let messages = relay.messages();
    assert_eq!(messages.len(), 1);
    let mail = &messages[0];
    assert_eq!(mail.from, "tlsrpt@sender.example");
    assert_eq!(mail.to, ["tls+reports@receiver.test"]);
    let text = String::from_utf8(mail.data.clone()).unwrap();
    let head = &text[..text.find("\r\n\r\n").unwrap()];
    let prepared = rig
        .sender()
        .prepare(day(), &domain("s81.example"))
        .unwrap()
        .unwrap();
    for line in [
        "From: tlsrpt@sender.example".to_string(),
        "To: tls+reports@receiver.test".to_string(),
        format!(
            "Subject: Report Domain: s81.example Submitter: mail.sender.example Report-ID: \
             <{}@mail.sender.example>",
            prepared.report_id
        ),
        "MIME-Version: 1.0".to_string(),
        "TLS-Report-Domain: s81.example".to_string(),
        "TLS-Report-Submitter: mail.sender.example".to_string(),
        "TLS-Required: No".to_string(),
    ] {
        assert!(head.lines().any(|l| l == line), "{line} in\n{head}");
    }
    assert!(head.contains("Content-Type: multipart/report; report-type=\"tlsrpt\";"));
    assert!(head.lines().any(|l| l.starts_with("Date: ")));
    assert!(
        head.lines()
            .any(|l| l.starts_with("Message-ID: <") && l.ends_with("@mail.sender.example>"))
    );
    assert!(text.contains(
        "Content-Type: application/tlsrpt+gzip\r\nContent-Transfer-Encoding: base64\r\n"
    ));
    assert!(text.contains(&format!("filename=\"{}\"", prepared.file_name)));
    assert!(text.contains("Content-Type: text/plain"));
    let read = read_report(&mail.data).unwrap();
    assert_eq!(read.format.as_str(), "mail+gzip");
    assert_eq!(read.report, prepared.report);
    let p = &read.report.policies[0];
    assert_eq!((p.total_successful, p.total_failure), (0, 3));
    // The relay saw the SMTP dialogue.
    let verbs: Vec<String> = relay
        .commands()
        .iter()
        .map(|c| c.split([' ', ':']).next().unwrap().to_string())
        .collect();
    assert_eq!(verbs, ["EHLO", "MAIL", "RCPT", "DATA", "QUIT"]);
    rig.settings.smtp_relay = None;
}

/// A relay that refuses is a failure with the relay's text (retried).
#[test]
fn a_relay_refusal_is_a_failure_with_its_text() {
    let mut rig = Rig::new();
    let relay = SmtpServer::start(SmtpBehaviour::RejectSession).unwrap();
    rig.settings
        .set("tlsrpt.smtp_relay", &format!("127.0.0.1:{}", relay.port()))
        .unwrap();
    rig.publish("s80.example", "v=TLSRPTv1; rua=mailto:r@receiver.test");
    rig.record(&[Session::success(day(), sts("s80.example", ENFORCE))]);
    let outcomes = rig.send();
    assert!(matches!(outcomes[0].action, SendAction::Retry { .. }));
    let reason = &outcomes[0].failures[0].reason;
    assert!(
        reason.contains("554") && reason.contains("no service for you"),
        "{reason}"
    );
}

/// The sendmail command: `-f FROM -- RCPT` appended, the message on stdin, the exit status
/// checked, the child killed past the deadline.
#[test]
fn report_mails_go_to_the_sendmail_command() {
    let mut rig = Rig::new();
    let script = rig.dir.join("sendmail.sh");
    let out = rig.dir.join("out");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nprintf '%s\\n' \"$@\" > {out}.args\ncat > {out}.eml\n\
             case \"$5\" in fail@*) echo 'no such user' >&2; exit 67;; slow@*) sleep 30;; esac\n",
            out = out.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    rig.settings
        .set("tlsrpt.sendmail", &format!("{} -oi", script.display()))
        .unwrap();
    rig.config.fetch_timeout = Duration::from_secs(1);
    rig.publish("s80.example", "v=TLSRPTv1; rua=mailto:fail@receiver.test,mailto:slow@receiver.test,mailto:ok@receiver.test");
    rig.record(&[Session::success(day(), sts("s80.example", ENFORCE))]);
    let outcomes = rig.send();
    assert!(
        matches!(&outcomes[0].action, SendAction::Delivered { uri } if uri == "mailto:ok@receiver.test"),
        "{outcomes:?}"
    );
    let f = &outcomes[0].failures;
    assert!(
        f[0].reason.contains("exited with status 67: no such user"),
        "{f:?}"
    );
    assert!(f[1].reason.contains("killed"), "{f:?}");
    let args = std::fs::read_to_string(out.with_extension("args")).unwrap();
    assert_eq!(
        args,
        "-oi\n-f\ntlsrpt@sender.example\n--\nok@receiver.test\n"
    );
    let eml = std::fs::read(out.with_extension("eml")).unwrap();
    let read = read_report(&eml).unwrap();
    assert_eq!(read.report.policies[0].total_successful, 1);
}

/// `--dry-run` sends nothing and writes nothing; `--now` ignores the spread.
#[test]
fn dry_run_and_now() {
    let rig = Rig::new();
    rig.publish(
        "s80.example",
        &format!("v=TLSRPTv1; rua={}", rig.https_uri()),
    );
    rig.record(&[Session::success(day(), sts("s80.example", ENFORCE))]);
    rig.clock.set(day().end() + Duration::from_secs(1));
    let sender = rig.sender();
    let due = sender.due_at(day(), &domain("s80.example"));
    let spread_due = due > rig.clock.now_time();
    let dry = sender.send_due(SendOptions::new(true, true)).unwrap();
    assert!(dry[0].dry_run);
    assert!(
        matches!(&dry[0].action, SendAction::WouldSend { uris } if uris == &[rig.https_uri()]),
        "{dry:?}"
    );
    assert!(rig.posts().is_empty());
    assert!(
        rig.store
            .report_record(&domain("s80.example"))
            .unwrap()
            .is_none()
    );
    assert_eq!(
        rig.store
            .delivery(day(), &domain("s80.example"))
            .unwrap()
            .unwrap()
            .attempts,
        0
    );
    if spread_due {
        assert!(matches!(
            sender.send_due(SendOptions::default()).unwrap()[0].action,
            SendAction::NotDue { .. }
        ));
    }
    assert_eq!(
        delivered(&sender.send_due(SendOptions::new(true, false)).unwrap()),
        ["s80.example"]
    );
}

trait NowTime {
    fn now_time(&self) -> SystemTime;
}

impl NowTime for ManualClock {
    fn now_time(&self) -> SystemTime {
        mtasts_core::Clock::now(self)
    }
}
