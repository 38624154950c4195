//! The Redis store against a real `redis-server` (R-CACHE-7, R-CACHE-8): storage format,
//! newest-fetch-wins merges across handles and threads, expiry, SCAN, outages, fork.
//!
//! Every test starts its own server on a loopback port ([`RedisServer`]); without
//! `redis-server` installed the tests fail and say to run `scripts/install-deps`.
#![allow(unsafe_code, clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::ErrorKind;
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mtasts_core::{
    Backoff, CachedPolicy, Domain, Entry, Error, LayeredStore, RedisStore, ResultType, Store,
    UNUSED_LIMIT,
};
use mtasts_testworld::RedisServer;

const DAY: Duration = Duration::from_secs(86_400);
/// Generous bound for a call that must fail fast on a loaded 2-core machine.
const FAIL_FAST: Duration = Duration::from_secs(3);

fn server() -> RedisServer {
    RedisServer::start().expect("redis-server (run scripts/install-deps)")
}

fn store(server: &RedisServer) -> RedisStore {
    RedisStore::connect(&server.url()).unwrap()
}

fn domain(name: &str) -> Domain {
    Domain::new(name).unwrap()
}

/// Now, to the millisecond (the stored precision).
fn now() -> SystemTime {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis();
    UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap())
}

fn policy(id: &str, fetched_at: SystemTime, max_age: u64) -> Arc<CachedPolicy> {
    Arc::new(
        CachedPolicy::from_stored(
            id.into(),
            &format!("version: STSv1\nmode: enforce\nmx: mx.example.com\nmax_age: {max_age}\n"),
            fetched_at,
            fetched_at + Duration::from_secs(max_age),
        )
        .unwrap(),
    )
}

fn entry(name: &str, policy: Option<Arc<CachedPolicy>>, at: SystemTime) -> Entry {
    Entry {
        policy,
        next_check: at + Duration::from_secs(300),
        ..Entry::new(domain(name), at)
    }
}

/// An integer reply (`:N\r\n`) of the harness's raw command.
fn int_reply(server: &RedisServer, args: &[&str]) -> i64 {
    let reply = server.command(args).unwrap();
    reply
        .strip_prefix(':')
        .and_then(|r| r.trim_end().parse().ok())
        .unwrap_or_else(|| panic!("{args:?}: {reply:?}"))
}

fn assert_cache_error<T: std::fmt::Debug>(result: mtasts_core::Result<T>) -> String {
    match result {
        Err(e @ Error::Cache { .. }) => e.to_string(),
        other => panic!("expected a cache error, got {other:?}"),
    }
}

/// Log records of this process (a forked child logs nothing here: the lock could be held
/// by a thread that does not exist in the child).
struct Capture {
    pid: OnceLock<u32>,
    records: Mutex<Vec<(log::Level, String)>>,
}

static LOGS: Capture = Capture {
    pid: OnceLock::new(),
    records: Mutex::new(Vec::new()),
};

impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, record: &log::Record<'_>) {
        if self.pid.get() == Some(&std::process::id()) {
            let text = record.args().to_string();
            self.records.lock().unwrap().push((record.level(), text));
        }
    }
    fn flush(&self) {}
}

fn capture_logs() {
    LOGS.pid.get_or_init(std::process::id);
    if log::set_logger(&LOGS).is_ok() {
        log::set_max_level(log::LevelFilter::Debug);
    }
}

/// Records at `level` that mention `text`.
fn logged(level: log::Level, text: &str, also: &str) -> usize {
    LOGS.records
        .lock()
        .unwrap()
        .iter()
        .filter(|(l, m)| *l == level && m.contains(text) && m.contains(also))
        .count()
}

#[test]
fn every_field_round_trips_through_redis() {
    let server = server();
    let writer = store(&server);
    let t = now();
    let full = Entry {
        domain: domain("example.com"),
        policy: Some(policy("20240101T000000", t - Duration::from_secs(60), 86_400)),
        next_check: t + Duration::from_millis(3_600_123),
        backoff: Some(Backoff {
            id: "20240102".into(),
            until: t + Duration::from_secs(300),
            result_type: ResultType::StsPolicyFetchError,
            reason: "fetching https://mta-sts.example.com/.well-known/mta-sts.txt failed: HTTP status 503\nmore".into(),
        }),
        failures: 4,
        last_used: t,
    };
    let bare = Entry::new(domain("xn--bcher-kva.example"), t);
    writer.put(full.clone()).unwrap();
    writer.put(bare.clone()).unwrap();

    // Another handle (another host) reads exactly what was written.
    let reader = store(&server);
    assert_eq!(*reader.get(&full.domain).unwrap().unwrap(), full);
    assert_eq!(*reader.get(&bare.domain).unwrap().unwrap(), bare);
    assert!(reader.get(&domain("absent.example")).unwrap().is_none());
    let mut listed: Vec<Entry> = reader
        .entries()
        .unwrap()
        .into_iter()
        .map(Arc::unwrap_or_clone)
        .collect();
    listed.sort_by(|a, b| a.domain.cmp(&b.domain));
    assert_eq!(listed, vec![full.clone(), bare.clone()]);

    // The documented format: one hash per domain under mtasts:v1:entry:, times in ms.
    let key = "mtasts:v1:entry:example.com";
    assert_eq!(reader.key(&full.domain), key);
    let ms = |t: SystemTime| {
        t.duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis()
            .to_string()
    };
    let expires = ms(full.policy.as_ref().unwrap().expires_at);
    assert!(
        server
            .command(&["HGET", key, "expires_at"])
            .unwrap()
            .contains(&expires)
    );
    assert!(
        server
            .command(&["HGET", key, "backoff_result"])
            .unwrap()
            .contains("sts-policy-fetch-error")
    );
    assert_eq!(int_reply(&server, &["HLEN", key]), 11);
    assert_eq!(
        int_reply(&server, &["HLEN", "mtasts:v1:entry:xn--bcher-kva.example"]),
        3
    );
    assert_eq!(reader.ping(), Ok(()));
}

#[test]
fn the_newest_fetch_wins_whichever_host_writes_last() {
    let server = server();
    let (a, b) = (store(&server), store(&server));
    let t = now();
    let older = entry("one.example", Some(policy("old", t, 86_400)), t);
    let newer = entry(
        "one.example",
        Some(policy("new", t + Duration::from_secs(10), 86_400)),
        t + Duration::from_secs(10),
    );
    // In order, then a slow writer arriving late with the older fetch.
    a.put(older.clone()).unwrap();
    b.put(newer.clone()).unwrap();
    a.put(older.clone()).unwrap();
    let stored = a.get(&domain("one.example")).unwrap().unwrap();
    assert_eq!(stored.policy.as_ref().unwrap().id, "new");

    // Same on a fresh key, newest written first.
    let other = |e: &Entry| Entry {
        domain: domain("two.example"),
        ..e.clone()
    };
    b.put(other(&newer)).unwrap();
    a.put(other(&older)).unwrap();
    let stored = b.get(&domain("two.example")).unwrap().unwrap();
    assert_eq!(stored.policy.as_ref().unwrap().id, "new");
    assert_eq!(stored.last_used, newer.last_used, "the later use wins too");
}

#[test]
fn a_write_without_policy_keeps_a_valid_one_but_not_an_expired_one() {
    let server = server();
    let (a, b) = (store(&server), store(&server));
    let t = now();
    a.put(entry("p.example", Some(policy("a", t, 1_000)), t))
        .unwrap();
    // Another host found no TXT record and writes "no policy": no downgrade.
    b.put(entry("p.example", None, t + Duration::from_secs(500)))
        .unwrap();
    let stored = a.get(&domain("p.example")).unwrap().unwrap();
    assert_eq!(stored.policy.as_ref().unwrap().id, "a");
    assert_eq!(stored.next_check, t + Duration::from_secs(800));
    // After the policy's expiry, the write without policy replaces it.
    b.put(entry("p.example", None, t + Duration::from_secs(1_001)))
        .unwrap();
    assert!(
        a.get(&domain("p.example"))
            .unwrap()
            .unwrap()
            .policy
            .is_none()
    );
}

#[test]
fn concurrent_writers_end_with_the_greatest_fetch() {
    const THREADS: u64 = 8;
    const PUTS: u64 = 100;
    let server = server();
    let shared = Arc::new(store(&server));
    // Fetch times a millisecond apart: a merge takes the writer's own time as now and counts
    // a stored time more than MERGE_SLACK ahead of it as now (issue 10), so writers whose
    // clocks were minutes apart could not be ordered; real writers' clocks are close.
    let t = now();
    let race = domain("race.example");
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    // A reader watching the stored fetch: it must never go back (no lost update).
    let reader = {
        let (store, done, race) = (store(&server), Arc::clone(&done), race.clone());
        thread::spawn(move || {
            let (mut reads, mut regressions, mut last) = (0, 0, UNIX_EPOCH);
            // At least one read after the last write, however the threads were scheduled.
            loop {
                let finished = done.load(Ordering::SeqCst);
                if let Some(p) = store.get(&race).unwrap().and_then(|e| e.policy.clone()) {
                    reads += 1;
                    if p.fetched_at < last {
                        regressions += 1;
                    }
                    last = last.max(p.fetched_at);
                }
                if finished {
                    break;
                }
            }
            (reads, regressions)
        })
    };
    let writers: Vec<_> = (0..THREADS)
        .map(|thread| {
            // Half the threads share one store (its connection pool), half have their own.
            let store = if thread < THREADS / 2 {
                Arc::clone(&shared)
            } else {
                Arc::new(store(&server))
            };
            thread::spawn(move || {
                for i in 0..PUTS {
                    let n = i * THREADS + thread;
                    let at = t + Duration::from_millis(n);
                    let e = entry(
                        "race.example",
                        Some(policy(&format!("id{n}"), at, 86_400)),
                        at,
                    );
                    store.put(e).unwrap();
                }
            })
        })
        .collect();
    for writer in writers {
        writer.join().unwrap();
    }
    done.store(true, Ordering::SeqCst);
    let (reads, regressions) = reader.join().unwrap();
    assert!(reads > 0);
    assert_eq!(
        regressions, 0,
        "a write rolled the policy back ({reads} reads)"
    );
    let last = PUTS * THREADS - 1;
    let stored = shared.get(&race).unwrap().unwrap();
    let policy = stored.policy.as_ref().unwrap();
    assert_eq!(policy.id, format!("id{last}"));
    assert_eq!(policy.fetched_at, t + Duration::from_millis(last));
    assert_eq!(stored.last_used, t + Duration::from_millis(last));
}

#[test]
fn keys_expire_after_what_they_say_plus_slack_and_within_180_days_of_use() {
    let server = server();
    let store = store(&server);
    let t = now();
    let pttl = |name: &str| {
        let ms = int_reply(&server, &["PTTL", &format!("mtasts:v1:entry:{name}")]);
        Duration::from_millis(u64::try_from(ms).unwrap())
    };
    // Slack for the time between the write and the PTTL query.
    let near = |actual: Duration, expected: Duration| {
        actual <= expected && actual + Duration::from_secs(60) > expected
    };

    store
        .put(entry("policy.example", Some(policy("a", t, 86_400)), t))
        .unwrap();
    let ttl = pttl("policy.example");
    assert!(near(ttl, Duration::from_secs(86_400) + DAY), "{ttl:?}");

    let mut backoff = entry("backoff.example", None, t);
    backoff.backoff = Some(Backoff {
        id: "x".into(),
        until: t + Duration::from_secs(7_200),
        result_type: ResultType::StsWebpkiInvalid,
        reason: "r".into(),
    });
    store.put(backoff).unwrap();
    let ttl = pttl("backoff.example");
    assert!(near(ttl, Duration::from_secs(7_200) + DAY), "{ttl:?}");

    // Neither policy nor backoff: next_check (300 s) plus a short slack.
    store.put(entry("bare.example", None, t)).unwrap();
    let ttl = pttl("bare.example");
    assert!(
        ttl > Duration::from_secs(300) && ttl <= Duration::from_secs(300) + DAY / 24,
        "{ttl:?}"
    );

    // A year-long policy is kept at most 180 days past its last use (R-CACHE-8).
    store
        .put(entry("long.example", Some(policy("a", t, 31_557_600)), t))
        .unwrap();
    let ttl = pttl("long.example");
    assert!(near(ttl, UNUSED_LIMIT), "{ttl:?}");
}

#[test]
fn purge_unused_and_clear_touch_only_this_stores_entries() {
    let server = server();
    let store = store(&server);
    let fleet_b = RedisStore::connect(&server.url())
        .unwrap()
        .with_key_prefix("fleet-b")
        .unwrap();
    let t = now();
    for (i, name) in ["a.example", "b.example", "c.example", "d.example"]
        .iter()
        .enumerate()
    {
        let used = t + Duration::from_secs(100 * u64::try_from(i).unwrap());
        store
            .put(entry(name, Some(policy("p", t, 86_400)), used))
            .unwrap();
    }
    fleet_b.put(entry("a.example", None, t)).unwrap();
    assert_eq!(
        server.command(&["SET", "unrelated", "1"]).unwrap(),
        "+OK\r\n"
    );

    // Unused before t+150 s: a (t) and b (t+100).
    assert_eq!(store.purge_unused(t + Duration::from_secs(150)).unwrap(), 2);
    let mut left: Vec<String> = store
        .entries()
        .unwrap()
        .iter()
        .map(|e| e.domain.to_string())
        .collect();
    left.sort();
    assert_eq!(left, ["c.example", "d.example"]);
    assert!(store.remove(&domain("c.example")).unwrap());
    assert!(!store.remove(&domain("c.example")).unwrap());
    assert_eq!(store.clear().unwrap(), 1);
    assert!(store.entries().unwrap().is_empty());

    // The other prefix and foreign keys are untouched.
    assert_eq!(fleet_b.entries().unwrap().len(), 1);
    assert_eq!(
        fleet_b.key(&domain("a.example")),
        "fleet-b:v1:entry:a.example"
    );
    assert_eq!(int_reply(&server, &["EXISTS", "unrelated"]), 1);
}

#[test]
fn entries_scans_hundreds_of_keys() {
    const N: usize = 300;
    let server = server();
    let store = store(&server);
    let t = now();
    for i in 0..N {
        store.put(entry(&format!("d{i}.example"), None, t)).unwrap();
    }
    let entries = store.entries().unwrap();
    let mut names: Vec<String> = entries.iter().map(|e| e.domain.to_string()).collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), N);
    assert_eq!(entries.len(), N, "SCAN duplicates are removed");
    assert_eq!(store.purge_unused(t).unwrap(), 0);
    assert_eq!(store.purge_unused(t + Duration::from_millis(1)).unwrap(), N);
}

#[test]
fn unreadable_entries_are_reported_skipped_and_replaced() {
    let server = server();
    let store = store(&server);
    let t = now();
    store.put(entry("good.example", None, t)).unwrap();
    let bad_hash = "mtasts:v1:entry:bad.example";
    let not_hash = "mtasts:v1:entry:string.example";
    server
        .command(&[
            "HSET",
            bad_hash,
            "next_check",
            "soon",
            "last_used",
            "1",
            "failures",
            "0",
        ])
        .unwrap();
    server.command(&["SET", not_hash, "x"]).unwrap();

    let e = assert_cache_error(store.get(&domain("bad.example")));
    assert!(e.contains("next_check"), "{e}");
    assert_cache_error(store.get(&domain("string.example")));
    // Not an outage: the store keeps working at once.
    assert!(store.get(&domain("good.example")).unwrap().is_some());
    assert_eq!(
        store.entries().unwrap().len(),
        1,
        "the unreadable ones are skipped"
    );

    // A write replaces them.
    for name in ["bad.example", "string.example"] {
        let e = entry(name, Some(policy("a", t, 86_400)), t);
        store.put(e.clone()).unwrap();
        assert_eq!(*store.get(&domain(name)).unwrap().unwrap(), e);
    }
}

/// Issue 11: a hash written by a newer mtasts (an unknown result type, an extra field) keeps
/// its policy; only the backoff goes. Before the shared codec the whole entry was unreadable.
#[test]
fn an_entry_from_a_newer_mtasts_keeps_its_policy() {
    capture_logs();
    let server = server();
    let store = store(&server);
    let t = now();
    let mut e = entry("future.example", Some(policy("a", t, 86_400)), t);
    e.backoff = Some(Backoff {
        id: "b".into(),
        until: t + Duration::from_secs(200),
        result_type: ResultType::StsPolicyFetchError,
        reason: "HTTP status 500".into(),
    });
    store.put(e.clone()).unwrap();
    let key = "mtasts:v1:entry:future.example";
    server
        .command(&[
            "HSET",
            key,
            "backoff_result",
            "sts-from-the-future",
            "added_later",
            "x",
        ])
        .unwrap();

    let got = store.get(&domain("future.example")).unwrap().unwrap();
    assert_eq!(got.policy, e.policy, "the policy is kept");
    assert_eq!(got.backoff, None, "the unknown backoff is dropped");
    assert_eq!(got.next_check, e.next_check);
    let location = store.location();
    let warned = |what: &str| {
        logged(
            log::Level::Warn,
            &format!("{location}: cache entry for future.example: "),
            what,
        )
    };
    assert!(warned("unknown result type \"sts-from-the-future\"") > 0);
    assert!(warned("unknown field \"added_later\" ignored") > 0);
    let listed = store.entries().unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].policy, e.policy);

    // A write of this version merges onto it: the policy stays.
    store
        .put(entry("future.example", None, t + Duration::from_secs(1)))
        .unwrap();
    let got = store.get(&domain("future.example")).unwrap().unwrap();
    assert_eq!(got.policy, e.policy);
}

/// A DNS-failure backoff has the empty id (Backoff::DNS_FAILURE): it is stored as an empty
/// field and read back as such, not as "no backoff".
#[test]
fn a_dns_failure_backoff_round_trips() {
    let server = server();
    let store = store(&server);
    let t = now();
    let mut e = entry("dns.example", None, t);
    e.backoff = Some(Backoff {
        id: Backoff::DNS_FAILURE.into(),
        until: t + Duration::from_secs(60),
        result_type: ResultType::StsPolicyFetchError,
        reason: "SERVFAIL".into(),
    });
    store.put(e.clone()).unwrap();
    assert_eq!(
        server
            .command(&["HGET", "mtasts:v1:entry:dns.example", "backoff_id"])
            .unwrap(),
        "$0\r\n\r\n"
    );
    assert_eq!(*store.get(&domain("dns.example")).unwrap().unwrap(), e);
}

#[test]
fn an_outage_fails_fast_logs_once_and_recovers() {
    capture_logs();
    let retry_after = Duration::from_secs(3);
    let mut server = server();
    let store = store(&server).with_retry_after(retry_after);
    let location = store.location();
    let t = now();
    store.put(entry("up.example", None, t)).unwrap();

    server.kill().unwrap();
    let started = Instant::now();
    assert_cache_error(store.get(&domain("up.example")));
    assert!(started.elapsed() < FAIL_FAST, "{:?}", started.elapsed());

    // During the back-off nothing reaches the network: a listener on the port sees no
    // connection attempt.
    let listener = TcpListener::bind(server.addr()).unwrap();
    listener.set_nonblocking(true).unwrap();
    let burst = Instant::now();
    for _ in 0..50 {
        let e = assert_cache_error(store.get(&domain("up.example")));
        assert!(e.contains("unavailable"), "{e}");
        assert_cache_error(store.put(entry("up.example", None, t)));
    }
    assert_cache_error(store.entries());
    assert!(burst.elapsed() < retry_after, "{:?}", burst.elapsed());
    match listener.accept() {
        Err(e) if e.kind() == ErrorKind::WouldBlock => {}
        other => panic!("the store connected during its back-off: {other:?}"),
    }
    drop(listener);

    // After the back-off one call tries again (still down: fails fast, back-off again).
    thread::sleep(retry_after + Duration::from_millis(100));
    let probe = Instant::now();
    assert_cache_error(store.get(&domain("up.example")));
    assert!(probe.elapsed() < FAIL_FAST);
    let e = assert_cache_error(store.get(&domain("up.example")));
    assert!(e.contains("next attempt in"), "{e}");

    // Back up (empty: no persistence): the store recovers after its back-off.
    server.restart().unwrap();
    let deadline = Instant::now() + retry_after + Duration::from_secs(5);
    loop {
        match store.get(&domain("up.example")) {
            Ok(found) => {
                assert!(found.is_none());
                break;
            }
            Err(Error::Cache { .. }) if Instant::now() < deadline => {
                thread::sleep(Duration::from_millis(100));
            }
            Err(e) => panic!("did not recover: {e}"),
        }
    }
    store.put(entry("up.example", None, t)).unwrap();
    assert_eq!(
        logged(log::Level::Warn, &location, "unavailable"),
        1,
        "one warning per outage"
    );
    assert_eq!(logged(log::Level::Info, &location, "reachable again"), 1);
}

#[test]
fn a_server_that_does_not_answer_costs_one_timeout() {
    // Accepts connections and never replies.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let held = Arc::new(Mutex::new(Vec::<TcpStream>::new()));
    {
        let (accepted, held) = (Arc::clone(&accepted), Arc::clone(&held));
        listener.set_nonblocking(true).unwrap();
        thread::spawn(move || {
            let until = Instant::now() + Duration::from_secs(30);
            while Instant::now() < until {
                match listener.accept() {
                    Ok((stream, _)) => {
                        accepted.fetch_add(1, Ordering::SeqCst);
                        held.lock().unwrap().push(stream);
                    }
                    Err(_) => thread::sleep(Duration::from_millis(5)),
                }
            }
        });
    }
    let store = RedisStore::connect(&format!("redis://127.0.0.1:{port}/0"))
        .unwrap()
        .with_timeouts(Duration::from_millis(300), Duration::from_millis(300))
        .with_retry_after(Duration::from_secs(60));
    let started = Instant::now();
    assert_cache_error(store.get(&domain("slow.example")));
    assert!(started.elapsed() < FAIL_FAST, "{:?}", started.elapsed());
    let quick = Instant::now();
    for _ in 0..20 {
        assert_cache_error(store.get(&domain("slow.example")));
    }
    assert!(quick.elapsed() < Duration::from_secs(1));
    thread::sleep(Duration::from_millis(100));
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        1,
        "one connection, one timeout"
    );
}

#[test]
fn a_restarted_server_is_used_again_at_once() {
    let mut server = server();
    let store = store(&server).with_retry_after(Duration::from_secs(60));
    let t = now();
    store.put(entry("r.example", None, t)).unwrap();
    // The pooled connection is dead after the restart; the store replaces it instead of
    // declaring an outage.
    server.restart().unwrap();
    assert!(store.get(&domain("r.example")).unwrap().is_none());
    store.put(entry("r.example", None, t)).unwrap();
    assert!(store.get(&domain("r.example")).unwrap().is_some());
}

#[test]
fn a_layered_store_answers_from_memory_while_redis_is_down() {
    let mut server = server();
    let layered = |server: &RedisServer| {
        let redis = store(server).with_retry_after(Duration::from_secs(60));
        LayeredStore::new(vec![Arc::new(redis) as Arc<dyn Store>])
    };
    let host_a = layered(&server);
    let t = now();
    let cached = entry("cached.example", Some(policy("a", t, 86_400)), t);
    host_a.put(cached.clone()).unwrap();
    // Another host sees it through Redis.
    let host_b = layered(&server);
    assert_eq!(
        *host_b.get(&domain("cached.example")).unwrap().unwrap(),
        cached
    );

    server.kill().unwrap();
    let started = Instant::now();
    for host in [&host_a, &host_b] {
        assert_eq!(
            *host.get(&domain("cached.example")).unwrap().unwrap(),
            cached
        );
        // A read meant to bypass memory says the shared store cannot be read (issue 10:
        // never "no entry" while Redis may hold one); memory is still there for the engine.
        let e = host.reload(&domain("cached.example")).unwrap_err();
        assert_eq!(e.kind(), "cache", "{e}");
        assert_eq!(*host.local(&domain("cached.example")).unwrap(), cached);
        // A domain this process has never seen: cannot tell, not "no entry".
        let e = host.get(&domain("unknown.example")).unwrap_err();
        assert_eq!(e.kind(), "cache", "{e}");
    }
    let written = entry("new.example", None, t);
    host_a.put(written.clone()).unwrap();
    assert_eq!(
        *host_a.get(&domain("new.example")).unwrap().unwrap(),
        written
    );
    assert!(started.elapsed() < FAIL_FAST * 2, "{:?}", started.elapsed());
}

#[test]
fn a_forked_child_uses_its_own_connection() {
    if support::run_alone("a_forked_child_uses_its_own_connection") {
        return;
    }
    let server = server();
    let store = store(&server);
    let t = now();
    let parent_entry = entry("parent.example", Some(policy("p", t, 86_400)), t);
    store.put(parent_entry.clone()).unwrap();
    assert!(store.get(&parent_entry.domain).unwrap().is_some()); // a pooled connection
    let connections = || total_connections(&server);
    let before = connections();

    // SAFETY: this process runs this test alone (`run_alone`); the child only uses the store
    // and then `_exit`s; it never returns into the test harness.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        let ok = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let read = store.get(&domain("parent.example")).unwrap().unwrap();
            let child_entry = entry("child.example", None, t);
            store.put(child_entry.clone()).unwrap();
            *read == parent_entry
                && *store.get(&child_entry.domain).unwrap().unwrap() == child_entry
        }))
        .unwrap_or(false);
        // SAFETY: ends the child without running the parent's atexit handlers or destructors.
        unsafe { libc::_exit(if ok { 0 } else { 1 }) };
    }

    let status = support::wait_child(pid, Duration::from_secs(30));
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "child failed: status {status}"
    );
    // The child opened one connection of its own (the other new one is the INFO query).
    assert_eq!(connections() - before, 2);
    // The parent's connection was not disturbed: it still reads, and sees the child's write.
    assert!(store.get(&domain("child.example")).unwrap().is_some());
    assert_eq!(
        *store.get(&domain("parent.example")).unwrap().unwrap(),
        parent_entry
    );
}

/// `total_connections_received` from `INFO stats` (each harness query is one connection).
fn total_connections(server: &RedisServer) -> i64 {
    let info = server.command(&["INFO", "stats"]).unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix("total_connections_received:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("{info}"))
}

#[test]
fn a_unix_socket_url_works_too() {
    let server = server();
    let store = RedisStore::connect(&server.unix_url()).unwrap();
    assert_eq!(
        store.location(),
        format!("redis+unix://{}?db=0", server.socket_path().display())
    );
    let e = entry("unix.example", Some(policy("u", now(), 600)), now());
    store.put(e.clone()).unwrap();
    // The same data over TCP.
    let tcp = RedisStore::connect(&server.url()).unwrap();
    assert_eq!(*tcp.get(&e.domain).unwrap().unwrap(), e);
}

#[test]
fn configuration_errors_and_locations() {
    let e = RedisStore::connect("redis://mta:hunter2@127.0.0.1:1/3").unwrap();
    assert_eq!(e.location(), "redis://mta@127.0.0.1:1/3");
    assert!(!format!("{e:?}").contains("hunter2"));
    for bad in [
        "",
        "memory",
        "http://127.0.0.1:6379",
        "rediss://127.0.0.1:6380",
    ] {
        assert!(
            matches!(RedisStore::connect(bad), Err(Error::Config { .. })),
            "{bad}"
        );
    }
    // Nothing listens on port 1: the error comes promptly at first use, not at connect.
    let started = Instant::now();
    assert_cache_error(e.ping());
    assert!(started.elapsed() < FAIL_FAST);
}
