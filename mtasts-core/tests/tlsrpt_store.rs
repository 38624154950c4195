//! The TLS-RPT report store against real backends (R-RPT-3, R-RPT-4, R-RPT-10): a SQLite
//! file in a temporary directory and a real `redis-server` on loopback, the same behaviour
//! from each (compared with the memory store's), the store's own tables and keys beside the
//! policy cache, failures that must be errors, and real processes: S-83's 8 processes × 4
//! threads recording at once while a collector records datagrams, and `kill -9` in the
//! middle of it.
//!
//! Tests that start processes re-run this test binary (`--exact <test>`) with an environment
//! variable telling the child what to do, as the cache's own tests do.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::os::unix::net::UnixDatagram;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use mtasts_core::{
    AppliedPolicy, CacheLocation, CachedReportRecord, Collector, CollectorCounts, Config,
    DEFAULT_RETENTION, Datagram, Entry, Error, ManualClock, MemoryReportStore, RedisReportStore,
    RedisStore, ReportStore, Reporter, ResultType, Session, SessionFailure, SqliteReportStore,
    SqliteStore, Store, TlsRptSettings, UtcDay,
};
use support::{Backend, BackendGuard, ENFORCE, TESTING, day, domain, sts, temp_dir};

fn reporter(guard: &BackendGuard) -> Reporter {
    match &guard.location {
        CacheLocation::Memory => {
            Reporter::with_store(Arc::new(MemoryReportStore::new(DEFAULT_RETENTION).unwrap()))
        }
        location => Reporter::open_location(location, &TlsRptSettings::default()).unwrap(),
    }
}

/// The sessions of S-80, S-81 and S-82 on one day, plus another domain and another day.
fn scenario_sessions() -> Vec<Session> {
    let mut sessions = Vec::new();
    // S-80: 3 successes under the enforce policy.
    for _ in 0..3 {
        sessions.push(Session::success(day(), sts("s80.example", ENFORCE)));
    }
    // S-81: 2 certificate-expired at mx1, 1 starttls-not-supported at mx2 (testing).
    let expired = SessionFailure::new(ResultType::CertificateExpired)
        .sending_mta_ip("192.0.2.1")
        .unwrap()
        .receiving_mx_hostname("mx1.example.com")
        .unwrap()
        .receiving_ip("198.51.100.1")
        .unwrap();
    let no_tls = SessionFailure::new(ResultType::StarttlsNotSupported)
        .receiving_mx_hostname("mx2.example.com")
        .unwrap()
        .receiving_mx_helo("mx2.example.com ESMTP")
        .unwrap();
    for failure in [expired.clone(), expired, no_tls] {
        sessions.push(Session::failure(day(), sts("s81.example", TESTING), vec![failure]).unwrap());
    }
    // S-82: policy fetch failed, nothing cached, 4 deliveries.
    let fetch = SessionFailure::from_policy_failure(&Error::PolicyFetch {
        url: "https://mta-sts.s82.example/.well-known/mta-sts.txt".into(),
        reason: "HTTP status 500".into(),
    })
    .unwrap();
    for _ in 0..4 {
        sessions.push(
            Session::failure(
                day(),
                AppliedPolicy::no_policy_found("s82.example").unwrap(),
                vec![fetch.clone()],
            )
            .unwrap(),
        );
    }
    // The same domain the next day, and a second policy the same day.
    sessions.push(Session::success(
        day().next().unwrap(),
        sts("s80.example", ENFORCE),
    ));
    sessions.push(Session::success(
        day(),
        AppliedPolicy::no_policy_found("s80.example").unwrap(),
    ));
    sessions
}

fn check_scenarios(store: &dyn ReportStore, backend: Backend) {
    let report = |name: &str| store.day_report(day(), &domain(name)).unwrap().unwrap();

    let s80 = report("s80.example");
    assert_eq!(s80.policies.len(), 2, "{backend:?}: two applied policies");
    let enforce = s80
        .policies
        .iter()
        .find(|p| p.policy.policy_type.as_str() == "sts")
        .unwrap();
    assert_eq!((enforce.total_successful, enforce.total_failure), (3, 0));
    assert!(enforce.failure_details.is_empty());
    assert_eq!(enforce.policy.mx_host, ["*.example.com"]);

    let s81 = report("s81.example");
    let p = &s81.policies[0];
    assert_eq!((p.total_successful, p.total_failure), (0, 3), "{backend:?}");
    let details: Vec<(&str, u64)> = p
        .failure_details
        .iter()
        .map(|d| (d.result_type.as_str(), d.failed_session_count))
        .collect();
    assert_eq!(
        details,
        [("certificate-expired", 2), ("starttls-not-supported", 1)],
        "{backend:?}"
    );
    assert_eq!(
        p.failure_details[0].sending_mta_ip.as_deref(),
        Some("192.0.2.1")
    );
    assert_eq!(
        p.failure_details[1].receiving_mx_helo.as_deref(),
        Some("mx2.example.com ESMTP")
    );
    assert_eq!(
        p.failure_details[1].receiving_ip, None,
        "absent stays absent"
    );

    let s82 = report("s82.example");
    let p = &s82.policies[0];
    assert_eq!(p.policy.policy_type.as_str(), "no-policy-found");
    assert_eq!((p.total_successful, p.total_failure), (0, 4));
    assert_eq!(p.failure_details.len(), 1);
    assert_eq!(p.failure_details[0].result_type, "sts-policy-fetch-error");
    assert_eq!(p.failure_details[0].failed_session_count, 4);

    assert!(
        store
            .day_report(day(), &domain("other.example"))
            .unwrap()
            .is_none()
    );
}

/// Every backend gives the same reports, pending list and bookkeeping as the memory store.
fn same_behaviour_on(backend: Backend) {
    let guard = backend.prepare();
    let reporter = reporter(&guard);
    let store = reporter.store();
    let reference = MemoryReportStore::new(DEFAULT_RETENTION).unwrap();
    for session in scenario_sessions() {
        reporter.record(&session).unwrap();
        reference.record(&session).unwrap();
    }
    check_scenarios(store.as_ref(), backend);
    let pending = store.pending().unwrap();
    assert_eq!(pending, reference.pending().unwrap(), "{backend:?}");
    let listed: Vec<String> = pending
        .iter()
        .map(|d| format!("{} {}", d.day, d.domain))
        .collect();
    assert_eq!(
        listed,
        [
            "2026-12-01 s80.example",
            "2026-12-01 s81.example",
            "2026-12-01 s82.example",
            "2026-12-02 s80.example"
        ],
        "{backend:?}"
    );
    for d in &pending {
        assert_eq!(
            store.day_report(d.day, &d.domain).unwrap(),
            reference.day_report(d.day, &d.domain).unwrap(),
            "{backend:?}: {} {}",
            d.day,
            d.domain
        );
    }

    // Delivery bookkeeping (R-RPT-10).
    let s80 = domain("s80.example");
    let first_try = day().end() + Duration::from_secs(7200);
    let retry = first_try + Duration::from_secs(3600);
    assert!(store.record_attempt(day(), &s80, Some(retry)).unwrap());
    assert!(store.record_attempt(day(), &s80, None).unwrap());
    assert!(store.mark_delivered(day(), &s80, retry).unwrap());
    let d = store.delivery(day(), &s80).unwrap().unwrap();
    assert_eq!(d.attempts, 2, "{backend:?}");
    assert_eq!(d.next_attempt, None);
    assert_eq!(d.delivered_at, Some(retry));
    let s84 = domain("s82.example");
    assert!(store.mark_abandoned(day(), &s84, retry).unwrap(), "S-84");
    let nowhere = domain("never.example");
    assert!(!store.record_attempt(day(), &nowhere, None).unwrap());
    assert!(!store.mark_delivered(day(), &nowhere, retry).unwrap());
    assert!(store.delivery(day(), &nowhere).unwrap().is_none());
    let listed: Vec<String> = store
        .pending()
        .unwrap()
        .iter()
        .map(|d| format!("{} {}", d.day, d.domain))
        .collect();
    assert_eq!(
        listed,
        ["2026-12-01 s81.example", "2026-12-02 s80.example"],
        "{backend:?}: delivered and abandoned days are not pending"
    );

    // Pruning: done days past the retention go, nothing else.
    assert_eq!(store.prune(day().end() + DEFAULT_RETENTION).unwrap(), 0);
    let later = day().end() + DEFAULT_RETENTION + Duration::from_secs(1);
    assert_eq!(store.prune(later).unwrap(), 2, "{backend:?}");
    assert!(store.day_report(day(), &s80).unwrap().is_none());
    assert!(store.delivery(day(), &s84).unwrap().is_none());
    assert!(
        store
            .day_report(day(), &domain("s81.example"))
            .unwrap()
            .is_some()
    );
    assert_eq!(store.pending().unwrap().len(), 2);
    assert_eq!(
        store
            .prune(later + Duration::from_secs(400 * 86_400))
            .unwrap(),
        0,
        "undelivered days stay"
    );
}

#[test]
fn s80_s81_s82_memory() {
    same_behaviour_on(Backend::Memory);
}

#[test]
fn s80_s81_s82_sqlite_file() {
    same_behaviour_on(Backend::Sqlite);
}

#[test]
fn s80_s81_s82_redis_server() {
    same_behaviour_on(Backend::Redis);
}

// ---- SQLite: beside the cache ---------------------------------------------------------------

#[test]
fn sqlite_tables_live_beside_the_cache_in_the_same_file_and_survive_reopening() {
    let dir = temp_dir("tlsrpt-beside");
    let path = dir.join("cache.db");
    let cache = SqliteStore::open(&path).unwrap();
    let now = SystemTime::now();
    cache
        .put(Entry::new(domain("cached.example"), now))
        .unwrap();
    {
        let store = SqliteReportStore::open(&path, DEFAULT_RETENTION).unwrap();
        store
            .record(&Session::success(day(), sts("s80.example", ENFORCE)))
            .unwrap();
        assert_eq!(store.location(), path.display().to_string());
    }
    // The cache is untouched and its schema version unchanged; the report tables have theirs.
    assert!(cache.get(&domain("cached.example")).unwrap().is_some());
    let conn = rusqlite::Connection::open(&path).unwrap();
    let cache_version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(cache_version, 1, "the cache's own schema version");
    let report_version: i64 = conn
        .query_row("SELECT version FROM tlsrpt_schema", [], |r| r.get(0))
        .unwrap();
    assert_eq!(report_version, 2);
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        tables,
        [
            "entries",
            "tlsrpt_days",
            "tlsrpt_failures",
            "tlsrpt_policies",
            "tlsrpt_records",
            "tlsrpt_schema"
        ]
    );
    // Reopened (another process later): the count is still there, and adds up.
    let again = SqliteReportStore::open(&path, DEFAULT_RETENTION).unwrap();
    again
        .record(&Session::success(day(), sts("s80.example", ENFORCE)))
        .unwrap();
    let report = again
        .day_report(day(), &domain("s80.example"))
        .unwrap()
        .unwrap();
    assert_eq!(report.policies[0].total_successful, 2);
    // Through the resolver's settings: `cache = <file>`.
    let mut config = Config::default();
    config.set("cache", path.to_str().unwrap()).unwrap();
    let reporter = Reporter::open(&config, &TlsRptSettings::default()).unwrap();
    assert_eq!(reporter.store().location(), path.display().to_string());
    drop(conn);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn sqlite_tables_from_a_newer_mtasts_are_refused_and_damage_is_an_error() {
    let dir = temp_dir("tlsrpt-newer");
    let path = dir.join("cache.db");
    let store = SqliteReportStore::open(&path, DEFAULT_RETENTION).unwrap();
    store
        .record(&Session::success(day(), sts("s80.example", ENFORCE)))
        .unwrap();
    let conn = rusqlite::Connection::open(&path).unwrap();
    // A damaged row: the report is an error, never a report without it.
    conn.execute("UPDATE tlsrpt_policies SET policy_string = 'not json'", [])
        .unwrap();
    let e = store.day_report(day(), &domain("s80.example")).unwrap_err();
    assert!(
        matches!(&e, Error::ReportStore { reason } if reason.contains("unreadable")),
        "{e}"
    );
    conn.execute("UPDATE tlsrpt_days SET day = '2026-13-01'", [])
        .unwrap();
    let e = store.pending().unwrap_err();
    assert!(matches!(e, Error::ReportStore { .. }), "{e}");
    // Tables written by a newer mtasts: refused, not modified.
    conn.execute("UPDATE tlsrpt_schema SET version = 9", [])
        .unwrap();
    let e = SqliteReportStore::open(&path, DEFAULT_RETENTION).unwrap_err();
    assert!(
        matches!(&e, Error::ReportStore { reason } if reason.contains("newer")),
        "{e}"
    );
    let version: i64 = conn
        .query_row("SELECT version FROM tlsrpt_schema", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, 9);
    drop(conn);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_sqlite_store_that_cannot_be_written_returns_an_error() {
    let dir = temp_dir("tlsrpt-readonly");
    let path = dir.join("cache.db");
    let store = SqliteReportStore::open(&path, DEFAULT_RETENTION).unwrap();
    // Another program takes the write lock and keeps it: a record must fail (after the
    // cache's busy timeout), not pretend.
    let blocker = rusqlite::Connection::open(&path).unwrap();
    blocker.execute_batch("BEGIN IMMEDIATE").unwrap();
    let started = Instant::now();
    let e = store
        .record(&Session::success(day(), sts("s80.example", ENFORCE)))
        .unwrap_err();
    assert!(
        matches!(&e, Error::ReportStore { reason } if reason.contains("locked")),
        "{e}"
    );
    eprintln!(
        "a locked store failed the record after {:?}: {e}",
        started.elapsed()
    );
    blocker.execute_batch("ROLLBACK").unwrap();
    assert!(
        store
            .day_report(day(), &domain("s80.example"))
            .unwrap()
            .is_none(),
        "nothing counted"
    );
    drop(blocker);
    let _ = std::fs::remove_dir_all(dir);
}

// ---- Redis: beside the cache ----------------------------------------------------------------

#[test]
fn redis_keys_live_under_the_cache_prefix_and_expire() {
    let guard = Backend::Redis.prepare();
    let redis = guard.redis().unwrap();
    let reporter = reporter(&guard);
    reporter
        .record(&Session::success(day(), sts("s80.example", ENFORCE)))
        .unwrap();
    let key = "mtasts:tlsrpt:v1:counts:2026-12-01:s80.example";
    let fields = redis.command(&["HGETALL", key]).unwrap();
    assert!(
        fields.contains("[\"s\",\"sts\",[\"version: STSv1\""),
        "{fields}"
    );
    assert!(fields.contains("\r\n1\r\n"), "{fields}");
    let ttl = |key: &str| -> i64 {
        let reply = redis.command(&["TTL", key]).unwrap();
        reply.trim().trim_start_matches(':').parse().unwrap()
    };
    let retention = i64::try_from(DEFAULT_RETENTION.as_secs()).unwrap();
    // Today's keys live the retention period and a day after the day ends.
    let today = UtcDay::today();
    reporter
        .record(&Session::success(today, sts("s80.example", ENFORCE)))
        .unwrap();
    let t = ttl(&format!("mtasts:tlsrpt:v1:counts:{today}:s80.example"));
    assert!(
        t > retention + 86_400 && t <= retention + 2 * 86_400,
        "TTL {t}"
    );
    // A day long past (a wrong clock) still lives a day from the write.
    let old = UtcDay::from_days_since_epoch(today.days_since_epoch() - 60).unwrap();
    reporter
        .record(&Session::success(old, sts("s80.example", ENFORCE)))
        .unwrap();
    let t = ttl(&format!("mtasts:tlsrpt:v1:counts:{old}:s80.example"));
    assert!(t > 86_000 && t <= 86_400, "TTL {t}");
    assert!(
        reporter
            .store()
            .record_attempt(old, &domain("s80.example"), None)
            .unwrap()
    );
    let t = ttl(&format!("mtasts:tlsrpt:v1:delivery:{old}:s80.example"));
    assert!(t > 86_000 && t <= 86_400, "TTL {t}");
    // Another prefix, another store.
    let other = RedisReportStore::new(
        Arc::new(
            RedisStore::connect(&redis.url())
                .unwrap()
                .with_key_prefix("fleet-b")
                .unwrap(),
        ),
        DEFAULT_RETENTION,
    )
    .unwrap();
    assert!(other.pending().unwrap().is_empty());
    assert_eq!(reporter.store().pending().unwrap().len(), 3);
}

#[test]
fn a_damaged_redis_key_is_an_error_and_nothing_is_half_counted() {
    let guard = Backend::Redis.prepare();
    let redis = guard.redis().unwrap();
    let reporter = reporter(&guard);
    let today = UtcDay::today();
    let session = Session::success(today, sts("s80.example", ENFORCE));
    reporter.record(&session).unwrap();
    let key = format!("mtasts:tlsrpt:v1:counts:{today}:s80.example");
    let fields = redis.command(&["HKEYS", &key]).unwrap();
    let field = fields.lines().nth(2).unwrap().to_string();
    redis.command(&["HSET", &key, &field, "many"]).unwrap();
    let e = reporter.record(&session).unwrap_err();
    assert!(
        matches!(&e, Error::ReportStore { reason } if reason.contains("nothing was counted")),
        "{e}"
    );
    let e = reporter
        .store()
        .day_report(today, &domain("s80.example"))
        .unwrap_err();
    assert!(matches!(e, Error::ReportStore { .. }), "{e}");
    redis.command(&["SET", &key, "a string"]).unwrap();
    assert!(reporter.record(&session).is_err());
    redis.command(&["HSET", &key, "junk", "1"]).ok();
    redis.command(&["DEL", &key]).unwrap();
    redis.command(&["HSET", &key, "junk", "1"]).unwrap();
    let e = reporter
        .store()
        .day_report(today, &domain("s80.example"))
        .unwrap_err();
    assert!(e.to_string().contains("unknown field"), "{e}");
}

#[test]
fn redis_down_is_an_error_not_a_silent_drop() {
    let mut guard = Backend::Redis.prepare();
    let reporter = reporter(&guard);
    let session = Session::success(UtcDay::today(), sts("s80.example", ENFORCE));
    reporter.record(&session).unwrap();
    guard.redis_mut().unwrap().kill().unwrap();
    let e = reporter.record(&session).unwrap_err();
    assert!(matches!(e, Error::ReportStore { .. }), "{e}");
    assert!(reporter.store().pending().is_err());
}

// ---- S-83: many processes at once, and kill -9 ----------------------------------------------

/// Environment variable that tells a re-run of this binary which role to play.
const ROLE: &str = "MTASTS_TLSRPT_TEST_ROLE";
const PROCESSES: usize = 8;
const THREADS: usize = 4;
/// Records per thread in a run that is not killed.
const RECORDS: usize = 1000;
const DOMAINS: usize = 5;

fn role() -> Option<String> {
    std::env::var(ROLE).ok()
}

/// The `i`th session of thread `t` of process `w`: a deterministic mix of domains, both
/// days, two applied policies, successes and failures with one or two details (some shared
/// by every thread, some per process), so counters are contended across processes.
fn scheduled(w: usize, t: usize, i: usize) -> Session {
    let name = format!("d{}.stress.example", (w * 7 + t * 3 + i) % DOMAINS);
    let on = if i.is_multiple_of(5) {
        day().next().unwrap()
    } else {
        day()
    };
    let policy = if i.is_multiple_of(3) {
        AppliedPolicy::no_policy_found(&name).unwrap()
    } else {
        sts(&name, ENFORCE)
    };
    match i % 4 {
        0 => Session::success(on, policy),
        k => {
            let mut failures = vec![
                SessionFailure::new(ResultType::CertificateExpired)
                    .receiving_mx_hostname("mx1.example.com")
                    .unwrap(),
            ];
            if k == 3 {
                failures.push(
                    SessionFailure::new(ResultType::StarttlsNotSupported)
                        .sending_mta_ip(&format!("192.0.2.{}", w + 1))
                        .unwrap(),
                );
            }
            Session::failure(on, policy, failures).unwrap()
        }
    }
}

/// A report's counters flattened: one line per counter.
fn counters(store: &dyn ReportStore) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for d in [day(), day().next().unwrap()] {
        for n in 0..DOMAINS {
            let name = domain(&format!("d{n}.stress.example"));
            let Some(report) = store.day_report(d, &name).unwrap() else {
                continue;
            };
            for p in report.policies {
                let head = format!("{d} {name} {}", p.policy.policy_type.as_str());
                out.insert(format!("{head} successful"), p.total_successful);
                out.insert(format!("{head} failed"), p.total_failure);
                for f in p.failure_details {
                    out.insert(
                        format!("{head} {} {:?}", f.result_type, f.sending_mta_ip),
                        f.failed_session_count,
                    );
                }
            }
        }
    }
    out
}

/// The counters of the sessions `0..n` of each (w, t), plus those of `extra`.
fn expected(
    prefix: &BTreeMap<(usize, usize), usize>,
    extra: &[(usize, usize, usize)],
) -> BTreeMap<String, u64> {
    let memory = MemoryReportStore::new(DEFAULT_RETENTION).unwrap();
    for (&(w, t), &n) in prefix {
        for i in 0..n {
            memory.record(&scheduled(w, t, i)).unwrap();
        }
    }
    for &(w, t, i) in extra {
        memory.record(&scheduled(w, t, i)).unwrap();
    }
    counters(&memory)
}

/// A recording process: `THREADS` threads, each recording its schedule (`records` sessions,
/// or until killed) through [`Reporter`], printing `ACK w t i` after each acknowledged one
/// and `ERR w t i reason` for a failed one.
#[test]
fn recorder_role() {
    let Some(arg) = role() else { return };
    let mut parts = arg.splitn(3, '|');
    let w: usize = parts.next().unwrap().parse().unwrap();
    let records: usize = parts.next().unwrap().parse().unwrap();
    let location: CacheLocation = parts.next().unwrap().parse().unwrap();
    let reporter = Reporter::open_location(&location, &TlsRptSettings::default()).unwrap();
    let started = Instant::now();
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let reporter = reporter.clone();
            std::thread::spawn(move || {
                for i in 0..records {
                    // Bounded, in case the parent is gone.
                    if started.elapsed() > Duration::from_secs(120) {
                        break;
                    }
                    let line = match reporter.record(&scheduled(w, t, i)) {
                        Ok(()) => format!("ACK {w} {t} {i}\n"),
                        Err(e) => format!("ERR {w} {t} {i} {e}\n"),
                    };
                    // One write per line, unbuffered: what the parent reads was acknowledged.
                    use std::io::Write;
                    let mut out = std::io::stdout().lock();
                    out.write_all(line.as_bytes()).unwrap();
                    out.flush().unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}

fn spawn_recorder(w: usize, records: usize, location: &CacheLocation) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "recorder_role",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(ROLE, format!("{w}|{records}|{location}"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// What a recorder's output said: per thread, the acknowledged count (records are made in
/// order, so it is a prefix) and the errors.
#[derive(Default)]
struct Heard {
    acked: BTreeMap<(usize, usize), usize>,
    errors: Vec<String>,
}

fn hear(line: &str, heard: &mut Heard) {
    // The harness prints its "test ... " prefix on the same line as the first.
    if let Some((_, rest)) = line.split_once("ACK ") {
        let n: Vec<usize> = rest.split(' ').map(|x| x.parse().unwrap()).collect();
        let acked = heard.acked.entry((n[0], n[1])).or_default();
        assert_eq!(
            *acked, n[2],
            "thread {} {}: acknowledged out of order",
            n[0], n[1]
        );
        *acked += 1;
    } else if let Some((_, rest)) = line.split_once("ERR ") {
        heard.errors.push(rest.to_string());
    }
}

/// Datagrams the collector of S-83 receives while the recorders run.
const DATAGRAMS: usize = 4000;

/// The `i`th datagram sent to the collector: libtlsrpt's format of a session of the same mix
/// as the recorders' (same domains and policies, so the same counters are contended), from a
/// sending address of its own (`192.0.2.9` in its details).
fn datagram(i: usize) -> Vec<u8> {
    Datagram::from_session(
        &scheduled(PROCESSES, i % THREADS, i),
        "v=TLSRPTv1; rua=mailto:tlsrpt@stress.example",
    )
    .to_bytes()
    .unwrap()
}

/// A collector (`mtasts tlsrpt collect`'s loop) on a socket in a fresh directory, recording
/// into the store at `location` on `day()` (its clock is set to that day's noon), with a
/// thread sending it [`DATAGRAMS`] datagrams; `finish` waits until it has handled them all.
struct CollectorRun {
    collector: Arc<Collector>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
    sender: Option<std::thread::JoinHandle<()>>,
}

impl CollectorRun {
    fn start(location: &CacheLocation) -> CollectorRun {
        let socket = temp_dir("s83-collector").join("tlsrpt.sock");
        let reporter = Reporter::open_location(location, &TlsRptSettings::default()).unwrap();
        let noon = day().start() + Duration::from_secs(12 * 3600);
        let collector = Arc::new(
            Collector::bind(&socket, 0o600, reporter)
                .unwrap()
                .with_clock(Arc::new(ManualClock::new(noon))),
        );
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (collector, stop) = (Arc::clone(&collector), Arc::clone(&stop));
            std::thread::spawn(move || collector.run(&stop).unwrap())
        };
        let sender = std::thread::spawn(move || {
            let out = UnixDatagram::unbound().unwrap();
            // Blocking sends, bounded: the kernel queue holds them while the collector is busy.
            out.set_write_timeout(Some(Duration::from_secs(30)))
                .unwrap();
            for i in 0..DATAGRAMS {
                out.send_to(&datagram(i), &socket).unwrap();
            }
        });
        CollectorRun {
            collector,
            stop,
            thread: Some(thread),
            sender: Some(sender),
        }
    }

    /// The collector's counts once every datagram was handled (waits at most 60 s).
    fn finish(mut self) -> CollectorCounts {
        self.sender.take().unwrap().join().unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.collector.counts().received < DATAGRAMS as u64 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        self.collector.counts()
    }
}

impl Drop for CollectorRun {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
    }
}

/// S-83: 8 processes × 4 threads record at once, and a collector records datagrams into the
/// same store meanwhile; afterwards every counter equals the sum of what was acknowledged
/// and collected, and nothing else was counted.
fn stress(backend: Backend) {
    let guard = backend.prepare();
    let started = Instant::now();
    let children: Vec<Child> = (0..PROCESSES)
        .map(|w| spawn_recorder(w, RECORDS, &guard.location))
        .collect();
    let collector = CollectorRun::start(&guard.location);
    let mut heard = Heard::default();
    for child in children {
        let out = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "recorder failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        stdout.lines().for_each(|l| hear(l, &mut heard));
    }
    let collected = collector.finish();
    let elapsed = started.elapsed();
    let acked: usize = heard.acked.values().sum();
    let mut want = expected(&heard.acked, &[]);
    // The sessions the datagrams were made from, on the collector's day (not through the
    // datagram parser: a session it lost or changed on the way would show).
    let memory = MemoryReportStore::new(DEFAULT_RETENTION).unwrap();
    for i in 0..DATAGRAMS {
        let sent = scheduled(PROCESSES, i % THREADS, i);
        let session = if sent.is_success() {
            Session::success(day(), sent.policy().clone())
        } else {
            Session::failure(day(), sent.policy().clone(), sent.failures().to_vec()).unwrap()
        };
        memory.record(&session).unwrap();
    }
    for (key, n) in counters(&memory) {
        *want.entry(key).or_default() += n;
    }
    let got = counters(reporter(&guard).store().as_ref());
    let lost: i64 = want
        .iter()
        .map(|(k, &n)| n as i64 - *got.get(k).unwrap_or(&0) as i64)
        .filter(|d| *d > 0)
        .sum();
    let sessions: u64 = got
        .iter()
        .filter(|(k, _)| k.ends_with("successful") || k.ends_with("failed"))
        .map(|(_, n)| n)
        .sum();
    eprintln!(
        "S-83 {backend:?}: {PROCESSES} processes x {THREADS} threads, {acked} sessions \
         acknowledged, and {} of {DATAGRAMS} datagrams collected ({} refused, {} sessions \
         lost), in {:.2} s ({:.0} sessions/s), {sessions} counted, {} errors, counts lost = \
         {lost}",
        collected.recorded,
        collected.refused_total(),
        collected.sessions_lost,
        elapsed.as_secs_f64(),
        (acked as u64 + collected.sessions) as f64 / elapsed.as_secs_f64(),
        heard.errors.len()
    );
    assert!(
        heard.errors.is_empty(),
        "errors reached recorders: {:?}",
        &heard.errors[..heard.errors.len().min(5)]
    );
    assert_eq!(acked, PROCESSES * THREADS * RECORDS);
    assert_eq!(
        (collected.received, collected.recorded, collected.sessions),
        (DATAGRAMS as u64, DATAGRAMS as u64, DATAGRAMS as u64),
        "every datagram collected: {collected:?}"
    );
    assert_eq!(
        got, want,
        "every counter is the sum of what was acknowledged and collected"
    );
    assert_eq!(sessions as usize, acked + DATAGRAMS);
}

#[test]
fn s83_8_processes_x_4_threads_into_one_sqlite_file_nothing_lost() {
    stress(Backend::Sqlite);
}

#[test]
fn s83_8_processes_x_4_threads_into_redis_nothing_lost() {
    stress(Backend::Redis);
}

/// S-83 with `kill -9`: half the recorders are killed mid-way. Every acknowledged session is
/// counted; a killed thread's one session in flight may or may not be; nothing else is.
fn killed(backend: Backend) {
    let guard = backend.prepare();
    // Killed recorders would go on much longer; the others finish their RECORDS.
    let mut children: Vec<(usize, Child)> = (0..PROCESSES)
        .map(|w| {
            let records = if w % 2 == 0 { 100 * RECORDS } else { RECORDS };
            (w, spawn_recorder(w, records, &guard.location))
        })
        .collect();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let readers: Vec<_> = children
        .iter_mut()
        .map(|(_, child)| {
            let stdout = child.stdout.take().unwrap();
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            })
        })
        .collect();
    drop(tx);
    let mut heard = Heard::default();
    let deadline = Instant::now() + Duration::from_secs(120);
    // Wait until each to-be-killed recorder has acknowledged a good part of a normal run.
    let enough = |heard: &Heard, w: usize| {
        (0..THREADS).all(|t| heard.acked.get(&(w, t)).copied().unwrap_or(0) >= RECORDS / 3)
    };
    while !(0..PROCESSES).step_by(2).all(|w| enough(&heard, w)) {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => hear(&line, &mut heard),
            Err(_) => panic!("recorders stalled: {:?}", heard.acked),
        }
    }
    let mut killed_threads = 0;
    for (w, child) in &mut children {
        if *w % 2 == 0 {
            child.kill().unwrap(); // SIGKILL
            killed_threads += THREADS;
        }
    }
    let mut statuses = Vec::new();
    for (w, mut child) in children {
        statuses.push((w, child.wait().unwrap()));
    }
    for line in rx.iter() {
        hear(&line, &mut heard);
    }
    for r in readers {
        r.join().unwrap();
    }
    for (w, status) in &statuses {
        assert_eq!(status.success(), w % 2 == 1, "recorder {w}: {status}");
    }
    assert!(
        heard.errors.is_empty(),
        "errors reached recorders: {:?}",
        &heard.errors[..heard.errors.len().min(5)]
    );
    for w in (1..PROCESSES).step_by(2) {
        for t in 0..THREADS {
            assert_eq!(
                heard.acked[&(w, t)],
                RECORDS,
                "recorder {w} thread {t} finished"
            );
        }
    }
    // At least what was acknowledged; at most that plus each killed thread's next session.
    let low = expected(&heard.acked, &[]);
    let in_flight: Vec<(usize, usize, usize)> = heard
        .acked
        .iter()
        .filter(|((w, _), _)| w % 2 == 0)
        .map(|(&(w, t), &n)| (w, t, n))
        .collect();
    let high = expected(&heard.acked, &in_flight);
    if let CacheLocation::Shared(layers) = &guard.location
        && let [mtasts_core::SharedCache::Sqlite(path)] = &layers[..]
    {
        let conn = rusqlite::Connection::open(path).unwrap();
        let check: String = conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(check, "ok", "the file after kill -9");
    }
    let got = counters(reporter(&guard).store().as_ref());
    let mut lost = 0u64;
    for (key, &max) in &high {
        let min = low.get(key).copied().unwrap_or(0);
        let n = got.get(key).copied().unwrap_or(0);
        lost += min.saturating_sub(n);
        assert!(
            n >= min && n <= max,
            "{key}: counted {n}, acknowledged {min}, attempted at most {max}"
        );
    }
    for key in got.keys() {
        assert!(high.contains_key(key), "{key}: counted but never recorded");
    }
    let sessions = |m: &BTreeMap<String, u64>| -> u64 {
        m.iter()
            .filter(|(k, _)| k.ends_with("successful") || k.ends_with("failed"))
            .map(|(_, n)| n)
            .sum()
    };
    let acked: usize = heard.acked.values().sum();
    eprintln!(
        "S-83 kill -9 {backend:?}: {} of {PROCESSES} recorders killed mid-way ({killed_threads} \
         threads), {acked} sessions acknowledged, {} counted (at most {} attempted), counts \
         lost = {lost}",
        PROCESSES / 2,
        sessions(&got),
        sessions(&high)
    );
    assert_eq!(lost, 0);
}

#[test]
fn s83_kill_9_mid_way_sqlite_every_acknowledged_session_counted() {
    killed(Backend::Sqlite);
}

#[test]
fn s83_kill_9_mid_way_redis_every_acknowledged_session_counted() {
    killed(Backend::Redis);
}

/// The sender's cached `_smtp._tls` answers (issue 15 item 1) round-trip in every store: a
/// found record, "no reports" with its reason, replaced whole; pruned once stale.
fn record_cache_on(backend: Backend) {
    let guard = backend.prepare();
    let store = reporter(&guard).store().clone();
    let at = day().end();
    let found = CachedReportRecord {
        domain: domain("cached.example"),
        record: Some("v=TLSRPTv1; rua=mailto:r@cached.example".into()),
        reason: None,
        checked_at: at,
        next_check: at + Duration::from_secs(600),
    };
    assert!(store.report_record(&found.domain).unwrap().is_none());
    store.put_report_record(&found).unwrap();
    assert_eq!(
        store.report_record(&found.domain).unwrap(),
        Some(found.clone())
    );
    let none = CachedReportRecord {
        record: None,
        reason: Some("2 TLS-RPT records; RFC 8460 §3 requires exactly one".into()),
        next_check: at + Duration::from_secs(60),
        ..found.clone()
    };
    store.put_report_record(&none).unwrap();
    assert_eq!(
        store.report_record(&found.domain).unwrap(),
        Some(none.clone())
    );
    if backend != Backend::Redis {
        // Redis expires the key itself (a day after next_check, on the server's clock).
        store.prune(at + Duration::from_secs(2 * 86_400)).unwrap();
        assert!(store.report_record(&found.domain).unwrap().is_none());
    }
}

#[test]
fn record_cache_memory() {
    record_cache_on(Backend::Memory);
}

#[test]
fn record_cache_sqlite() {
    record_cache_on(Backend::Sqlite);
}

#[test]
fn record_cache_redis() {
    record_cache_on(Backend::Redis);
}
