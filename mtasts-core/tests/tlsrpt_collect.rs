//! The collector of libtlsrpt datagrams over a real Unix datagram socket into a real SQLite
//! report store (issue 15, item 3a): the vectors of `testdata/tlsrpt/datagrams/` counted
//! exactly, each hostile datagram one log line and nothing else (the collector goes on
//! counting), 8 sender threads at once with nothing lost, a store that cannot be written
//! logged with the count lost; and the emitter (item 3b) sending to it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant, UNIX_EPOCH};

use mtasts_core::{
    Collector, CollectorCounts, DEFAULT_RETENTION, DnsAnswer, DnsResolver, Domain, Error,
    ManualClock, MxRecord, PolicyType, ReportStore, Reporter, Session, SessionFailure,
    SqliteReportStore, UtcDay,
};
use support::temp_dir;

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/tlsrpt/datagrams");

/// 2026-12-01T12:00:00Z: the day every datagram of these tests arrives on.
const NOON: u64 = 1_796_126_400;

fn day() -> UtcDay {
    "2026-12-01".parse().unwrap()
}

/// The log lines the collector writes, captured (this test binary's logger).
static LINES: Mutex<Vec<String>> = Mutex::new(Vec::new());

struct Capture;

impl log::Log for Capture {
    fn enabled(&self, m: &log::Metadata<'_>) -> bool {
        m.target().starts_with("mtasts_core::tlsrpt")
    }
    fn log(&self, r: &log::Record<'_>) {
        if self.enabled(r.metadata()) {
            LINES
                .lock()
                .unwrap()
                .push(format!("{}: {} [{}]", r.level(), r.args(), r.target()));
        }
    }
    fn flush(&self) {}
}

/// Lines logged by the collector listening at `socket`'s test (every test has its own
/// collector, but the logger is shared: lines are told apart by the marker each test's
/// datagrams carry, or the tests that count lines run under one lock).
static SERIAL: Mutex<()> = Mutex::new(());

fn capture() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        log::set_logger(&Capture).unwrap();
        log::set_max_level(log::LevelFilter::Debug);
    });
}

fn taken_lines() -> Vec<String> {
    std::mem::take(&mut *LINES.lock().unwrap())
        .into_iter()
        .filter(|l| l.contains("tlsrpt::collector"))
        .collect()
}

fn read(name: &str) -> Vec<u8> {
    std::fs::read(Path::new(DIR).join(name)).unwrap()
}

/// A collector on a socket in a fresh directory, recording into a SQLite file there, run
/// by a thread until the guard is dropped.
struct Running {
    collector: Arc<Collector>,
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
    socket: PathBuf,
    db: PathBuf,
}

impl Running {
    fn start(tag: &str) -> Running {
        let dir = temp_dir(tag);
        let db = dir.join("cache.db");
        let store = SqliteReportStore::open(&db, DEFAULT_RETENTION).unwrap();
        Running::with_reporter(&dir, Reporter::with_store(Arc::new(store)), db)
    }

    fn with_reporter(dir: &Path, reporter: Reporter, db: PathBuf) -> Running {
        let socket = dir.join("tlsrpt.sock");
        let clock = Arc::new(ManualClock::new(UNIX_EPOCH + Duration::from_secs(NOON)));
        let collector = Arc::new(
            Collector::bind(&socket, 0o660, reporter)
                .unwrap()
                .with_clock(clock),
        );
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (collector, stop) = (Arc::clone(&collector), Arc::clone(&stop));
            thread::spawn(move || collector.run(&stop).unwrap())
        };
        Running {
            collector,
            stop,
            thread: Some(thread),
            socket,
            db,
        }
    }

    fn send(&self, bytes: &[u8]) {
        let out = UnixDatagram::unbound().unwrap();
        if bytes.len() > 100_000 {
            // The default send buffer (net.core.wmem_default) holds about 212 kB: room for
            // a datagram larger than MAX_DATAGRAM (up to net.core.wmem_max).
            rustix::net::sockopt::set_socket_send_buffer_size(&out, 2 * bytes.len()).unwrap();
        }
        out.send_to(bytes, &self.socket).unwrap();
    }

    /// The counts once `received` datagrams have been handled (waits at most 60 s).
    fn counts_after(&self, received: u64) -> CollectorCounts {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let counts = self.collector.counts();
            if counts.received >= received || Instant::now() > deadline {
                return counts;
            }
            thread::sleep(Duration::from_millis(5));
        }
    }

    fn store(&self) -> SqliteReportStore {
        SqliteReportStore::open(&self.db, DEFAULT_RETENTION).unwrap()
    }

    fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop();
    }
}

/// (policy type, policy strings, mx-host) → (successful, failed, failure details by result
/// type) of `domain` on the test day.
type Counted = BTreeMap<(String, Vec<String>, Vec<String>), (u64, u64, Vec<(String, u64)>)>;

fn counted(store: &dyn ReportStore, domain: &str) -> Counted {
    let Some(report) = store
        .day_report(day(), &Domain::new(domain).unwrap())
        .unwrap()
    else {
        return Counted::new();
    };
    report
        .policies
        .into_iter()
        .map(|p| {
            (
                (
                    p.policy.policy_type.as_str().to_string(),
                    p.policy.policy_string,
                    p.policy.mx_host,
                ),
                (
                    p.total_successful,
                    p.total_failure,
                    p.failure_details
                        .into_iter()
                        .map(|d| (d.result_type, d.failed_session_count))
                        .collect(),
                ),
            )
        })
        .collect()
}

fn lines(text: &str) -> Vec<String> {
    text.lines().map(str::to_string).collect()
}

#[test]
fn the_vectors_are_counted_exactly_in_a_real_sqlite_store() {
    let mut run = Running::start("collect-vectors");
    let mut names: Vec<String> = std::fs::read_dir(DIR)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".json"))
        .collect();
    names.sort();
    assert_eq!(names.len(), 9);
    for name in &names {
        run.send(&read(name));
    }
    let counts = run.counts_after(9);
    // escapes.json is refused: its receiving-mx-hostname "müx/ü" is no host name.
    assert_eq!(counts.received, 9);
    assert_eq!(counts.recorded, 8, "{counts:?}");
    assert_eq!(counts.sessions, 9, "multi-policy.json holds two");
    assert_eq!(
        counts.refused,
        BTreeMap::from([("invalid-session", 1)]),
        "{counts:?}"
    );
    assert_eq!((counts.lost, counts.sessions_lost), (0, 0));
    run.stop();
    let store = run.store();

    let enforce = |mx: &[&str], max_age| {
        let mut l = vec!["version: STSv1".to_string(), "mode: enforce".into()];
        l.extend(mx.iter().map(|m| format!("mx: {m}")));
        l.push(format!("max_age: {max_age}"));
        l
    };
    let net = counted(&store, "example.net");
    let want_net: Counted = [
        (
            (
                "sts".to_string(),
                lines("version: STSv1\nmode: testing\nmx: mail.example.net\nmax_age: 86400"),
                vec!["mail.example.net".to_string()],
            ),
            (0, 1, vec![("starttls-not-supported".to_string(), 1)]),
        ),
        (
            (
                "sts".to_string(),
                enforce(&["mail.example.net", "*.backup.example.net"], 604_800),
                vec!["mail.example.net".into(), "*.backup.example.net".into()],
            ),
            (1, 0, vec![]),
        ),
        (
            (
                "sts".to_string(),
                enforce(&["mail.example.net"], 604_800),
                vec!["mail.example.net".into()],
            ),
            (0, 1, vec![("validation-failure".to_string(), 1)]),
        ),
    ]
    .into_iter()
    .collect();
    assert_eq!(net, want_net);

    let com = counted(&store, "example.com");
    assert_eq!(
        com.get(&("no-policy-found".into(), vec![], vec![])),
        Some(&(2, 0, vec![])),
        "with and without policy-domain: one policy"
    );
    let tlsa = com
        .iter()
        .find(|(k, _)| k.0 == "tlsa")
        .map(|(_, v)| v.clone());
    assert_eq!(
        tlsa,
        Some((0, 1, vec![("tlsa-invalid".to_string(), 1)])),
        "a DANE failure is kept under its own result type"
    );
    let org = counted(&store, "example.org");
    assert_eq!(org.values().map(|v| v.1).sum::<u64>(), 1);
    let y = counted(&store, "company-y.example");
    assert_eq!(y.len(), 2);
    let sts = y.iter().find(|(k, _)| k.0 == "sts").unwrap().1;
    assert_eq!(
        sts,
        &(
            0,
            1,
            vec![
                ("sts-policy-invalid".to_string(), 1),
                ("sts-webpki-invalid".to_string(), 1)
            ]
        )
    );
    let pending: Vec<String> = store
        .pending()
        .unwrap()
        .into_iter()
        .map(|d| format!("{} {}", d.day, d.domain))
        .collect();
    assert_eq!(
        pending,
        [
            "2026-12-01 company-y.example",
            "2026-12-01 example.com",
            "2026-12-01 example.net",
            "2026-12-01 example.org"
        ]
    );
}

#[test]
fn each_hostile_datagram_gives_one_log_line_and_the_collector_goes_on() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    capture();
    let run = Running::start("collect-hostile");
    taken_lines();
    let mut hostile: Vec<(String, Vec<u8>)> = std::fs::read_dir(Path::new(DIR).join("hostile"))
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().into_string().unwrap(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    hostile.sort();
    let sts = read("sts-success.json");
    let huge = [
        b"{\"dpv\": \"1\",\"d\": \"".as_slice(),
        &vec![b'x'; 300_000],
    ]
    .concat();
    hostile.extend([
        ("huge (300 kB, more than MAX_DATAGRAM)".into(), huge),
        // (empty.bin is the empty datagram; a second one would be a repeated line.)
        ("whitespace".into(), b" \r\n\t".to_vec()),
        (
            "binary".into(),
            (0..=255u8).cycle().take(1000).collect::<Vec<u8>>(),
        ),
        ("truncated vector".into(), sts[..sts.len() / 2].to_vec()),
        ("a JSON array".into(), b"[1,2,3]".to_vec()),
        (
            "dpv as a number".into(),
            String::from_utf8(sts.clone())
                .unwrap()
                .replace("\"dpv\": \"1\"", "\"dpv\":1")
                .into_bytes(),
        ),
        (
            "policy-type a string".into(),
            String::from_utf8(sts.clone())
                .unwrap()
                .replace("\"policy-type\":2", "\"policy-type\":\"2\"")
                .into_bytes(),
        ),
        (
            "deep nesting".into(),
            format!("{}{}", "[".repeat(10_000), "]".repeat(10_000)).into_bytes(),
        ),
    ]);
    // Each hostile datagram, then a good one: the collector keeps counting after each.
    let mut seen = 0;
    let mut report = Vec::new();
    for (name, bytes) in &hostile {
        run.send(bytes);
        run.send(&sts);
        seen += 2;
        let counts = run.counts_after(seen);
        assert_eq!(counts.received, seen, "{name}: the collector stopped");
        assert_eq!(counts.recorded, seen / 2, "{name}: the good one after it");
        let got = taken_lines();
        assert_eq!(got.len(), 1, "{name}: one line, got {got:#?}");
        assert!(got[0].starts_with("WARN: tlsrpt collect: refused a datagram of"));
        assert!(got[0].len() < 400, "{name}: short: {}", got[0]);
        report.push(format!("{name}: {}", got[0]));
    }
    let counts = run.collector.counts();
    assert_eq!(counts.refused_total(), hostile.len() as u64);
    assert_eq!(counts.sessions, hostile.len() as u64);
    eprintln!(
        "hostile datagrams, one line each:\n  {}",
        report.join("\n  ")
    );
    assert_eq!(
        counted(&run.store(), "example.net")
            .values()
            .map(|v| v.0)
            .sum::<u64>(),
        hostile.len() as u64,
        "only the good datagrams were counted"
    );
    // The same hostile datagram again and again: one line, the repeats summarised when the
    // collector stops (LOG_REPEAT_WINDOW).
    let not_json = |c: &CollectorCounts| c.refused.get("not-json").copied().unwrap_or(0);
    let before = not_json(&run.collector.counts());
    for _ in 0..50 {
        run.send(b"not json");
    }
    let counts = run.counts_after(seen + 50);
    assert_eq!(not_json(&counts) - before, 50);
    let mut run = run;
    run.stop();
    let got = taken_lines();
    assert_eq!(got.len(), 2, "{got:#?}");
    assert!(got[0].contains("refused a datagram of 8 bytes"), "{got:#?}");
    assert!(got[1].contains("and 49 more like it"), "{got:#?}");
}

#[test]
fn an_old_socket_is_replaced_and_anything_else_refused() {
    let dir = temp_dir("collect-bind");
    let reporter = || {
        Reporter::with_store(Arc::new(
            mtasts_core::MemoryReportStore::new(DEFAULT_RETENTION).unwrap(),
        ))
    };
    let path = dir.join("s.sock");
    let old = UnixDatagram::bind(&path).unwrap();
    drop(old);
    let c = Collector::bind(&path, 0o620, reporter()).unwrap();
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o620
    );
    drop(c);
    assert!(!path.exists(), "removed when the collector goes");
    let file = dir.join("file");
    std::fs::write(&file, "keep me").unwrap();
    let e = Collector::bind(&file, 0o660, reporter()).unwrap_err();
    assert!(e.to_string().contains("not a socket"), "{e}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "keep me");
    let e = Collector::bind(&dir.join("no/such/dir/s"), 0o660, reporter()).unwrap_err();
    assert!(e.to_string().contains("cannot listen on"), "{e}");
}

#[test]
fn a_store_that_cannot_be_written_is_logged_with_the_sessions_lost() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    capture();
    let dir = temp_dir("collect-lost");
    let db = dir.join("cache.db");
    let store = SqliteReportStore::open(&db, DEFAULT_RETENTION).unwrap();
    let run = Running::with_reporter(&dir, Reporter::with_store(Arc::new(store)), db.clone());
    taken_lines();
    // Damage the store's table under the collector: every record fails.
    let con = rusqlite::Connection::open(&db).unwrap();
    con.execute_batch("ALTER TABLE tlsrpt_policies RENAME TO gone")
        .unwrap();
    run.send(&read("multi-policy.json"));
    let counts = run.counts_after(1);
    assert_eq!((counts.lost, counts.sessions_lost), (1, 2), "{counts:?}");
    assert_eq!(counts.recorded, 0);
    let got = taken_lines();
    assert_eq!(got.len(), 1, "{got:#?}");
    assert!(
        got[0].starts_with("ERROR: tlsrpt collect: 2 of 2 sessions of a datagram lost"),
        "{got:#?}"
    );
    drop(con);
}

#[test]
fn eight_senders_at_once_lose_nothing() {
    const SENDERS: usize = 8;
    const EACH: usize = 2500;
    let run = Running::start("collect-stress");
    let socket = run.socket.clone();
    let started = Instant::now();
    let senders: Vec<_> = (0..SENDERS)
        .map(|i| {
            let socket = socket.clone();
            thread::spawn(move || {
                let out = UnixDatagram::unbound().unwrap();
                // Blocking sends: the kernel queue holds them back while the collector is
                // busy (libtlsrpt's MSG_DONTWAIT would drop them there instead).
                out.set_write_timeout(Some(Duration::from_secs(30))).unwrap();
                for n in 0..EACH {
                    let failed = n % 4 == 0;
                    let bytes = format!(
                        r#"{{"dpv": "1","d": "s{i}.example","pr": "v=TLSRPTv1; rua=mailto:r@s{i}.example","policies":[{{"policy-type":9,{}"t":{},"f":{}}}]}}"#,
                        if failed {
                            r#""failure-details":[{"c":201,"n": "mx.example"}],"#
                        } else {
                            ""
                        },
                        u8::from(failed),
                        u8::from(failed)
                    );
                    out.send_to(bytes.as_bytes(), &socket).unwrap();
                }
            })
        })
        .collect();
    for s in senders {
        s.join().unwrap();
    }
    let total = (SENDERS * EACH) as u64;
    let counts = run.counts_after(total);
    let took = started.elapsed();
    let store = run.store();
    let mut stored = 0;
    let mut failed = 0;
    for i in 0..SENDERS {
        for (s, f, _) in counted(&store, &format!("s{i}.example")).values() {
            stored += s + f;
            failed += f;
        }
    }
    eprintln!(
        "{SENDERS} sender threads x {EACH} datagrams: {} received, {} recorded, {stored} \
         sessions in the SQLite store ({failed} failed) in {:.2} s: {:.0} datagrams/s; \
         lost: {}",
        counts.received,
        counts.recorded,
        took.as_secs_f64(),
        total as f64 / took.as_secs_f64(),
        total - stored
    );
    assert_eq!(counts.received, total);
    assert_eq!(counts.recorded, total);
    assert_eq!(stored, total, "lost = 0");
    assert_eq!(failed, total / 4);
}

/// DNS answering the `_smtp._tls` TXT records given, NXDOMAIN for everything else.
#[derive(Debug)]
struct TxtOnly(BTreeMap<String, String>, Mutex<u32>);

impl DnsResolver for TxtOnly {
    fn txt(&self, name: &str) -> mtasts_core::Result<DnsAnswer<Vec<Vec<u8>>>> {
        *self.1.lock().unwrap() += 1;
        if name == "_smtp._tls.down.example" {
            return Err(Error::DnsTemporary {
                name: name.into(),
                reason: "SERVFAIL".into(),
            });
        }
        Ok(match self.0.get(name) {
            Some(t) => DnsAnswer::Found {
                records: vec![t.as_bytes().to_vec()],
                ttl: 300,
            },
            None => DnsAnswer::NxDomain { ttl: Some(300) },
        })
    }
    fn ip(&self, _host: &str) -> mtasts_core::Result<DnsAnswer<Vec<IpAddr>>> {
        Ok(DnsAnswer::NxDomain { ttl: None })
    }
    fn mx(&self, _domain: &str) -> mtasts_core::Result<DnsAnswer<Vec<MxRecord>>> {
        Ok(DnsAnswer::NxDomain { ttl: None })
    }
}

#[test]
fn emitted_sessions_are_collected_and_failures_to_send_are_errors() {
    let run = Running::start("collect-emit");
    let record = "v=TLSRPTv1; rua=mailto:tlsrpt@example.net";
    let dns = Arc::new(TxtOnly(
        BTreeMap::from([("_smtp._tls.example.net".to_string(), record.to_string())]),
        Mutex::new(0),
    ));
    let emitter = Reporter::emitting(&run.socket, Arc::clone(&dns) as _).unwrap();
    assert_eq!(
        emitter.store().location(),
        format!("datagrams to {}", run.socket.display())
    );
    let policy = mtasts_core::AppliedPolicy::no_policy_found("example.net").unwrap();
    let failure = SessionFailure::new(mtasts_core::ResultType::DaneRequired)
        .receiving_mx_hostname("mx.example.net")
        .unwrap();
    emitter
        .record(&Session::success(day(), policy.clone()))
        .unwrap();
    emitter
        .record(&Session::failure(day(), policy, [failure]).unwrap())
        .unwrap();
    // No TLS-RPT record: nothing to send, nothing reported (R-RPT-10).
    let other = mtasts_core::AppliedPolicy::no_policy_found("other.example").unwrap();
    emitter.record(&Session::success(day(), other)).unwrap();
    assert_eq!(
        *dns.1.lock().unwrap(),
        2,
        "one lookup per domain, then kept"
    );
    // A temporary DNS failure is the caller's error.
    let down = mtasts_core::AppliedPolicy::no_policy_found("down.example").unwrap();
    let e = emitter.record(&Session::success(day(), down)).unwrap_err();
    assert!(matches!(e, Error::DnsTemporary { .. }), "{e}");
    let counts = run.counts_after(2);
    assert_eq!((counts.received, counts.recorded), (2, 2), "{counts:?}");
    let got = counted(&run.store(), "example.net");
    assert_eq!(
        got.get(&(PolicyType::NoPolicyFound.as_str().into(), vec![], vec![])),
        Some(&(1, 1, vec![("dane-required".to_string(), 1)]))
    );
    // No collector: an error, never a silent drop.
    let nowhere = temp_dir("collect-emit-none").join("none.sock");
    let emitter = Reporter::emitting(&nowhere, dns).unwrap();
    let e = emitter
        .record(&Session::success(
            day(),
            mtasts_core::AppliedPolicy::no_policy_found("example.net").unwrap(),
        ))
        .unwrap_err();
    assert!(
        matches!(&e, Error::ReportStore { reason } if reason.contains("not counted")),
        "{e}"
    );
}
