//! Never fail open (issue 10): an unreadable shared cache is "cannot tell", not "no policy";
//! reloads never roll back newer in-process state; future-dated entries have no lasting
//! effect; fetch and DNS storms are budgeted; tolerated policy oddities are logged once.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::fs::OpenOptions;
use std::io::{Seek, SeekFrom, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use mtasts_core::{
    Backoff, CacheLocation, CachedPolicy, DNS_FAILURE_RECHECK, Domain, Entry, Error, FETCH_BACKOFF,
    LayeredStore, MemoryStore, Mode, MxPlan, Resolver, ResultType, Source, SqliteStore, Store,
    Verdict,
};
use mtasts_testworld::{Behaviour, DomainSpec, HttpResponse, RedisServer, World};
use support::{resolver_at, t0, temp_dir};

const DOMAIN: &str = "closed.mtasts.test";
const OTHER: &str = "other.mtasts.test";

/// Checks that `r` cannot tell whether a policy applies, and that every way of asking what
/// to do with a message says so instead of "no requirement".
fn assert_cannot_tell(r: &mtasts_core::Resolution) {
    assert_eq!(r.source(), Source::CacheUnreadable, "{r:?}");
    assert!(r.source().cannot_tell());
    let failure = r.failure().expect("a failure");
    assert_eq!(failure.kind(), "cache", "{failure}");
    assert!(r.applicable_policy().is_err());
    assert_eq!(r.mode_in_effect().unwrap_err().kind(), "cache");
    assert_eq!(
        Verdict::for_resolution(r, "mx.example.org")
            .unwrap_err()
            .kind(),
        "cache"
    );
    assert!(MxPlan::for_resolution(r, &[]).is_err());
    assert!(r.notice().is_some_and(|n| n.contains("no policy")), "{r:?}");
}

/// Overwrites the first bytes of page `page` (1-based, 4096-byte pages) of an SQLite file.
fn damage_page(path: &Path, page: u64) {
    let mut f = OpenOptions::new().write(true).open(path).unwrap();
    f.seek(SeekFrom::Start((page - 1) * 4096)).unwrap();
    f.write_all(&[0xA5; 64]).unwrap();
    f.sync_all().unwrap();
}

/// A world with DOMAIN publishing an enforce policy, and an SQLite cache file in which a first
/// "process" cached it. Returns the world, the file and its directory.
fn cached_in_sqlite() -> (World, std::path::PathBuf, std::path::PathBuf) {
    let world = World::start().unwrap();
    world.add_policy_domain(&DomainSpec::new(DOMAIN)).unwrap();
    let dir = temp_dir("closed");
    let path = dir.join("cache.db");
    {
        let (first, _clock) = resolver_at(&world, &CacheLocation::sqlite(&path));
        assert_eq!(first.resolve(DOMAIN).unwrap().source(), Source::Fetched);
    } // dropped: the last connection closes and checkpoints the WAL into the file
    assert!(
        !dir.join("cache.db-wal").exists() || {
            std::fs::metadata(dir.join("cache.db-wal")).unwrap().len() == 0
        }
    );
    (world, path, dir)
}

/// Issue 10 item 6, S-39: a damaged page in the shared SQLite file while an attacker answers
/// NXDOMAIN for the TXT record: a fresh process cannot tell (defer), never "no policy".
#[test]
fn a_damaged_sqlite_page_is_cannot_tell_not_no_policy() {
    let (world, path, dir) = cached_in_sqlite();
    damage_page(&path, 2); // the entries table (its primary-key index, page 3, is intact)
    world.remove_policy_domain(DOMAIN); // the attacker: NXDOMAIN, no HTTPS
    let (fresh, _clock) = resolver_at(&world, &CacheLocation::sqlite(&path));
    let r = fresh.resolve(DOMAIN).unwrap();
    assert_cannot_tell(&r);
    // A domain the intact index says is not cached: that read works, so "no policy" stands.
    let r = fresh.resolve("uncached.mtasts.test").unwrap();
    assert_eq!(r.source(), Source::NoPolicy, "{r:?}");
    // With the index damaged too, no lookup can be answered from the file.
    damage_page(&path, 3);
    let (blind, _clock) = resolver_at(&world, &CacheLocation::sqlite(&path));
    assert_cannot_tell(&blind.resolve("uncached.mtasts.test").unwrap());
    // Every lookup stays "cannot tell": nothing learnt while blind stands as an answer.
    assert_cannot_tell(&fresh.resolve(DOMAIN).unwrap());
    // A domain whose policy can be fetched is answered from DNS and HTTPS as usual.
    world.add_policy_domain(&DomainSpec::new(OTHER)).unwrap();
    let r = fresh.resolve(OTHER).unwrap();
    assert_eq!(r.source(), Source::Fetched);
    assert_eq!(r.mode_in_effect().unwrap(), Mode::Enforce);
    let _ = std::fs::remove_dir_all(dir);
}

/// Issue 10 item 6: the cache file replaced by something that is not a database. A resolver
/// cannot be made on it (MTASTS_CACHE in C: Exim defers); one made before it was replaced
/// cannot tell.
#[test]
fn a_file_that_is_not_a_database_is_never_no_policy() {
    let (world, path, dir) = cached_in_sqlite();
    world.remove_policy_domain(DOMAIN);
    let (open_before, _clock) = resolver_at(&world, &CacheLocation::sqlite(&path));
    // Overwritten in place (the same file, so open connections see it too).
    let mut f = OpenOptions::new().write(true).open(&path).unwrap();
    f.write_all(&[b'x'; 8192]).unwrap();
    f.sync_all().unwrap();
    drop(f);
    let mut config = support::config(&world);
    config.cache = CacheLocation::sqlite(&path);
    let e = Resolver::new(config).unwrap_err();
    assert_eq!(e.kind(), "cache", "{e}");
    assert!(e.to_string().contains("not an SQLite database"), "{e}");
    assert_cannot_tell(&open_before.resolve(DOMAIN).unwrap());
    let _ = std::fs::remove_dir_all(dir);
}

/// Issue 10 item 6: Redis stopped. A domain this process has not seen and that DNS says has
/// no policy cannot be told; one it holds in memory is still answered.
#[test]
fn redis_stopped_is_cannot_tell_not_no_policy() {
    let world = World::start().unwrap();
    world.add_policy_domain(&DomainSpec::new(DOMAIN)).unwrap();
    let mut redis = RedisServer::start().expect("redis-server (run scripts/install-deps)");
    let location: CacheLocation = redis.url().parse().unwrap();
    let (resolver, clock) = resolver_at(&world, &location);
    assert_eq!(resolver.resolve(DOMAIN).unwrap().source(), Source::Fetched);
    redis.kill().unwrap();

    // A second process (S-40) with Redis down and an attacker answering NXDOMAIN.
    world.remove_policy_domain(DOMAIN);
    let (fresh, _clock) = resolver_at(&world, &location);
    assert_cannot_tell(&fresh.resolve(DOMAIN).unwrap());
    // A domain without a policy cannot be told either while Redis is down.
    assert_cannot_tell(&fresh.resolve("nothing.mtasts.test").unwrap());

    // The first process still holds the policy in memory: it applies (R-DISC-8).
    clock.advance(Duration::from_secs(7200));
    let r = resolver.resolve(DOMAIN).unwrap();
    assert_eq!(r.mode_in_effect().unwrap(), Mode::Enforce, "{r:?}");
}

/// A shared store whose reads and writes can be made to fail on demand.
#[derive(Debug, Default)]
struct Flaky {
    inner: MemoryStore,
    fail_gets: AtomicBool,
    fail_puts: AtomicBool,
}

impl Flaky {
    fn failure() -> Error {
        Error::Cache {
            reason: "the test made this store fail".into(),
        }
    }
}

impl Store for Flaky {
    fn get(&self, domain: &Domain) -> mtasts_core::Result<Option<Arc<Entry>>> {
        if self.fail_gets.load(Ordering::SeqCst) {
            return Err(Flaky::failure());
        }
        self.inner.get(domain)
    }
    fn put(&self, entry: Entry) -> mtasts_core::Result<()> {
        if self.fail_puts.load(Ordering::SeqCst) {
            return Err(Flaky::failure());
        }
        self.inner.put(entry)
    }
    fn remove(&self, domain: &Domain) -> mtasts_core::Result<bool> {
        self.inner.remove(domain)
    }
    fn entries(&self) -> mtasts_core::Result<Vec<Arc<Entry>>> {
        self.inner.entries()
    }
    fn location(&self) -> String {
        "flaky".into()
    }
}

fn cached(id: &str, fetched: SystemTime, max_age: u32) -> Arc<CachedPolicy> {
    let text = format!("version: STSv1\nmode: enforce\nmx: mx.example.org\nmax_age: {max_age}\n");
    Arc::new(
        CachedPolicy::from_stored(
            id.into(),
            &text,
            fetched,
            fetched + Duration::from_secs(u64::from(max_age)),
        )
        .unwrap(),
    )
}

fn entry_with(policy: Option<Arc<CachedPolicy>>, now: SystemTime) -> Entry {
    Entry {
        policy,
        next_check: now + Duration::from_secs(60),
        ..Entry::new(Domain::new(DOMAIN).unwrap(), now)
    }
}

/// Issue 10 item 7: a newer policy that reached only this process's memory (its shared write
/// failed) survives a reload of the older shared entry.
#[test]
fn reload_never_rolls_back_a_newer_policy_in_memory() {
    let shared = Arc::new(Flaky::default());
    let layered = LayeredStore::new(vec![shared.clone() as Arc<dyn Store>]);
    let domain = Domain::new(DOMAIN).unwrap();
    layered
        .put(entry_with(Some(cached("a", t0(), 86_400)), t0()))
        .unwrap();
    shared.fail_puts.store(true, Ordering::SeqCst);
    let later = t0() + Duration::from_secs(600);
    let _ = layered.put(entry_with(Some(cached("b", later, 86_400)), later));
    assert_eq!(
        shared
            .get(&domain)
            .unwrap()
            .unwrap()
            .policy
            .as_ref()
            .unwrap()
            .id,
        "a"
    );

    let reloaded = layered.reload(&domain).unwrap().unwrap();
    assert_eq!(reloaded.policy.as_ref().unwrap().id, "b", "rolled back");
    assert_eq!(
        layered
            .get(&domain)
            .unwrap()
            .unwrap()
            .policy
            .as_ref()
            .unwrap()
            .id,
        "b"
    );
}

/// Issue 10 item 6 through the engine with a store that fails reads: a cached policy in this
/// process's memory still applies; without one, cannot tell.
#[test]
fn a_failing_shared_read_is_cannot_tell_through_the_engine() {
    let world = World::start().unwrap();
    world.add_policy_domain(&DomainSpec::new(DOMAIN)).unwrap();
    let shared = Arc::new(Flaky::default());
    let store: Arc<dyn Store> = Arc::new(LayeredStore::new(vec![shared.clone() as Arc<dyn Store>]));
    let clock = Arc::new(mtasts_core::ManualClock::new(t0()));
    let resolver = Resolver::builder(support::config(&world))
        .store(store)
        .clock(clock.clone())
        .build()
        .unwrap();
    assert_eq!(resolver.resolve(DOMAIN).unwrap().source(), Source::Fetched);
    shared.fail_gets.store(true, Ordering::SeqCst);
    world.remove_policy_domain(DOMAIN);
    clock.advance(Duration::from_secs(7200));
    let r = resolver.resolve(DOMAIN).unwrap();
    assert_eq!(r.source(), Source::Cache, "{r:?}");
    assert_eq!(r.mode_in_effect().unwrap(), Mode::Enforce);
    assert_cannot_tell(&resolver.resolve("unseen.mtasts.test").unwrap());
    // Readable again: the answer is DNS's ("no policy" for a name without a record).
    shared.fail_gets.store(false, Ordering::SeqCst);
    let r = resolver.resolve("unseen.mtasts.test").unwrap();
    assert_eq!(r.source(), Source::NoPolicy, "{r:?}");
}

const YEAR: Duration = Duration::from_secs(365 * 86_400);

/// Issue 10 item 9: a policy stamped ten years in the future, expiring in a century, with its
/// next check years away (one forged write, or one host with a fast clock): bounded on read,
/// so the TXT record is checked again within the longest recheck interval and a real fetch
/// replaces it.
#[test]
fn a_future_dated_policy_is_bounded_and_replaced() {
    let world = World::start().unwrap();
    world.add_policy_domain(&DomainSpec::new(DOMAIN)).unwrap();
    world.set_policy_id(DOMAIN, "real");
    let dir = temp_dir("future");
    let path = dir.join("cache.db");
    let future = t0() + 10 * YEAR;
    let forged = Entry {
        policy: Some(Arc::new(CachedPolicy {
            expires_at: t0() + 100 * YEAR,
            ..Arc::unwrap_or_clone(cached("forged", future, 86_400))
        })),
        next_check: future,
        ..Entry::new(Domain::new(DOMAIN).unwrap(), future)
    };
    SqliteStore::open(&path).unwrap().put(forged).unwrap();

    // Bounded on read: a future fetch counts as now, the expiry as max_age after it.
    let bounded = SqliteStore::open(&path)
        .unwrap()
        .get(&Domain::new(DOMAIN).unwrap())
        .unwrap()
        .unwrap();
    let bounded = Entry::clone(&bounded).clamped(t0());
    let policy = bounded.policy.as_ref().unwrap();
    assert_eq!(policy.fetched_at, t0(), "a future fetch counts as now");
    assert_eq!(policy.expires_at, t0() + Duration::from_secs(86_400));
    assert_eq!(
        bounded.next_check,
        t0(),
        "a next check years ahead counts as due now"
    );
    assert_eq!(bounded.last_used, t0());
    // So the TXT record is checked at once, and the real policy is fetched.
    let (resolver, _clock) = resolver_at(&world, &CacheLocation::sqlite(&path));
    let r = resolver.resolve(DOMAIN).unwrap();
    assert_eq!(r.source(), Source::Fetched, "{r:?}");
    assert_eq!(r.cached_policy().unwrap().id, "real");
    // The real fetch wins over the forged entry in the shared file too.
    let stored = SqliteStore::open(&path)
        .unwrap()
        .get(&Domain::new(DOMAIN).unwrap())
        .unwrap()
        .unwrap();
    assert_eq!(stored.policy.as_ref().unwrap().id, "real");
    let _ = std::fs::remove_dir_all(dir);
}

/// Issue 10 item 9: "no policy, no DNS query for years" cannot be stored.
#[test]
fn a_far_next_check_without_policy_is_bounded() {
    let world = World::start().unwrap();
    world.add_policy_domain(&DomainSpec::new(DOMAIN)).unwrap();
    let dir = temp_dir("future");
    let path = dir.join("cache.db");
    let forged = Entry {
        next_check: t0() + 10 * YEAR,
        ..Entry::new(Domain::new(DOMAIN).unwrap(), t0())
    };
    SqliteStore::open(&path).unwrap().put(forged).unwrap();
    let (resolver, _clock) = resolver_at(&world, &CacheLocation::sqlite(&path));
    let r = resolver.resolve(DOMAIN).unwrap();
    assert_eq!(r.source(), Source::Fetched, "checked at once: {r:?}");
    let _ = std::fs::remove_dir_all(dir);
}

/// Issue 10 item 10: record ids that keep changing while a valid policy is cached cost one
/// fetch per backoff period, not one per lookup.
#[test]
fn rotating_record_ids_are_fetched_once_per_backoff_period() {
    let world = World::start().unwrap();
    world.add_policy_domain(&DomainSpec::new(DOMAIN)).unwrap();
    world.set_policy_id(DOMAIN, "a");
    let (resolver, clock) = resolver_at(&world, &CacheLocation::Memory);
    assert_eq!(resolver.resolve(DOMAIN).unwrap().source(), Source::Fetched);
    world.set_policy_response(DOMAIN, HttpResponse::new(500));
    clock.advance(Duration::from_secs(3601)); // past any recheck interval
    for (i, id) in ["b", "c", "d", "e", "f"].iter().enumerate() {
        world.set_policy_id(DOMAIN, id);
        clock.advance(Duration::from_secs(10));
        let r = resolver.resolve(DOMAIN).unwrap();
        assert_eq!(r.source(), Source::CacheAfterFailure, "lookup {i}: {r:?}");
        assert_eq!(r.cached_policy().unwrap().id, "a");
        assert_eq!(
            r.failure().unwrap().result_type(),
            Some(ResultType::StsPolicyFetchError)
        );
    }
    assert_eq!(
        world.policy_requests(DOMAIN),
        2,
        "the fetch at t0 and one for id b"
    );
    clock.advance(FETCH_BACKOFF);
    world.set_policy_id(DOMAIN, "g");
    let _ = resolver.resolve(DOMAIN).unwrap();
    assert_eq!(
        world.policy_requests(DOMAIN),
        3,
        "one more after the backoff period"
    );
}

/// Issue 10 item 10: after a temporary DNS failure the TXT record is not queried again for
/// DNS_FAILURE_RECHECK; lookups meanwhile carry the failure (never "no policy").
#[test]
fn a_dns_failure_is_remembered_for_a_short_interval() {
    let world = World::start().unwrap();
    let txt = format!("_mta-sts.{DOMAIN}");
    world.zone().set_behaviour(&txt, Behaviour::ServFail);
    let dir = temp_dir("dnsfail");
    let location = CacheLocation::sqlite(dir.join("cache.db"));
    let (resolver, clock) = resolver_at(&world, &location);
    let r = resolver.resolve(DOMAIN).unwrap();
    assert_eq!(r.source(), Source::Unavailable);
    assert_eq!(r.failure().unwrap().kind(), "dns-temporary");
    let queries = world.txt_queries(DOMAIN);
    assert!(queries >= 1);
    clock.advance(DNS_FAILURE_RECHECK / 2);
    for resolver in [&resolver, &resolver_at(&world, &location).0] {
        let r = resolver.resolve(DOMAIN).unwrap();
        assert_eq!(r.source(), Source::Unavailable, "{r:?}");
        assert_eq!(r.failure().unwrap().kind(), "dns-temporary");
    }
    assert_eq!(
        world.txt_queries(DOMAIN),
        queries,
        "answered from the cache"
    );
    clock.advance(DNS_FAILURE_RECHECK);
    world.add_policy_domain(&DomainSpec::new(DOMAIN)).unwrap();
    let r = resolver.resolve(DOMAIN).unwrap();
    assert_eq!(r.source(), Source::Fetched, "{r:?}");
    assert!(world.txt_queries(DOMAIN) > queries);
    let _ = std::fs::remove_dir_all(dir);
}

/// A DNS failure backoff in the cache is read by older versions as a backoff matching no
/// record id: it can never hold back a fetch.
#[test]
fn the_dns_failure_marker_is_no_record_id() {
    assert!(mtasts_core::Record::parse("v=STSv1; id=;").is_err());
    let b = Backoff {
        id: Backoff::DNS_FAILURE.into(),
        until: t0(),
        result_type: ResultType::StsPolicyFetchError,
        reason: "SERVFAIL".into(),
    };
    assert!(b.is_dns_failure());
    assert_eq!(b.started_at(), t0() - DNS_FAILURE_RECHECK);
}

/// Log records captured for [`tolerated_policy_problems_are_logged_once_at_fetch`].
struct Capture(Mutex<Vec<String>>);

impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, record: &log::Record<'_>) {
        self.0.lock().unwrap().push(record.args().to_string());
    }
    fn flush(&self) {}
}

static CAPTURE: Capture = Capture(Mutex::new(Vec::new()));

/// Issue 10 item 11: a policy of junk lines is logged once when fetched, with at most
/// MAX_WARNINGS + 1 lines, and not at all when another process loads it from the cache.
#[test]
fn tolerated_policy_problems_are_logged_once_at_fetch() {
    log::set_logger(&CAPTURE).unwrap();
    log::set_max_level(log::LevelFilter::Warn);
    let junk_domain = "junk.mtasts.test";
    let mut body =
        String::from("version: STSv1\nmode: enforce\nmx: mx.example.org\nmax_age: 86400\n");
    for i in 0..2000 {
        body.push_str(&format!("junk line {i} without a colon\n"));
    }
    let world = World::start().unwrap();
    world
        .add_policy_domain(&DomainSpec::new(junk_domain))
        .unwrap();
    world.set_policy_response(junk_domain, HttpResponse::policy(body));
    let dir = temp_dir("junk");
    let location = CacheLocation::sqlite(dir.join("cache.db"));
    let policy_lines = || {
        CAPTURE
            .0
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains("MTA-STS policy"))
            .count()
    };
    let (first, _clock) = resolver_at(&world, &location);
    assert_eq!(
        first.resolve(junk_domain).unwrap().source(),
        Source::Fetched
    );
    let at_fetch = policy_lines();
    assert_eq!(at_fetch, mtasts_core::MAX_WARNINGS + 1);
    for _ in 0..3 {
        let (fresh, _clock) = resolver_at(&world, &location);
        assert_eq!(fresh.resolve(junk_domain).unwrap().source(), Source::Cache);
    }
    assert_eq!(
        policy_lines(),
        at_fetch,
        "loading from the cache logs nothing"
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// Issue 10 item 12, R-FETCH-9: the policy host's A/AAAA lookups are inside the fetch
/// deadline. Both time out here; with a 4 s DNS deadline per lookup (8 s one after the other,
/// before), the fetch still ends at its own 1 s deadline.
#[test]
fn the_policy_host_lookup_is_inside_the_fetch_deadline() {
    let world = World::start().unwrap();
    world.add_policy_domain(&DomainSpec::new(DOMAIN)).unwrap();
    world
        .zone()
        .set_behaviour(&format!("mta-sts.{DOMAIN}"), Behaviour::Timeout);
    let mut config = support::config(&world);
    config.fetch_timeout = Duration::from_secs(1);
    config.dns_timeout = Duration::from_secs(4);
    let resolver = Resolver::new(config).unwrap();
    let started = std::time::Instant::now();
    let r = resolver.resolve(DOMAIN).unwrap();
    let took = started.elapsed();
    assert_eq!(r.source(), Source::Unavailable, "{r:?}");
    assert_eq!(
        r.failure().unwrap().result_type(),
        Some(ResultType::StsPolicyFetchError)
    );
    // The TXT lookup answers at once; the fetch, host lookup included, gets 1 s.
    assert!(took < Duration::from_millis(3500), "took {took:?}");
}

/// Issue 10 item 12: absurd durations are configuration errors, never a panic later.
#[test]
fn absurd_durations_are_refused_at_configuration() {
    let world = World::start().unwrap();
    type Setting = fn(&mut mtasts_core::Config);
    let cases: [(&str, Setting); 5] = [
        ("recheck_interval", |c| {
            c.recheck_interval = Some(Duration::MAX)
        }),
        ("recheck_interval", |c| {
            c.recheck_interval = Some(Duration::from_secs(86_400))
        }),
        ("fetch_timeout", |c| {
            c.fetch_timeout = Duration::from_secs(u64::MAX)
        }),
        ("fetch_timeout", |c| c.fetch_timeout = Duration::ZERO),
        ("dns_timeout", |c| {
            c.dns_timeout = Duration::from_secs_f64(1e19)
        }),
    ];
    for (name, set) in cases {
        let mut config = support::config(&world);
        set(&mut config);
        let e = Resolver::new(config).unwrap_err();
        assert_eq!(e.kind(), "config", "{name}: {e}");
        assert!(e.to_string().contains(name), "{e}");
    }
    let e = mtasts_core::from_unix_seconds(u64::MAX).unwrap_err();
    assert_eq!(e.kind(), "config");
    let mut options = mtasts_core::ProbeOptions::default();
    options.timeout = Duration::MAX;
    assert!(options.validate().is_err());
    let resolver = Resolver::new(support::config(&world)).unwrap();
    let mut options = mtasts_core::RefreshOptions::default();
    options.jitter = Duration::MAX;
    assert_eq!(resolver.refresh_due(&options).unwrap_err().kind(), "config");
}

/// Issue 16 item 1: after an NXDOMAIN for `_mta-sts`, one more query tells a domain that does
/// not exist at all (a typo, or a resolver that answers NXDOMAIN for everything outside its
/// zones) from one that exists without a policy. Both have no policy (RFC 8461).
#[test]
fn a_domain_that_does_not_exist_is_told_apart_from_one_without_a_record() {
    let world = World::start().unwrap();
    world.zone().add_record(
        "plain.mtasts.test",
        mtasts_testworld::ZoneRecord::mx(10, "mx.plain.mtasts.test"),
    );
    let (resolver, _clock) = resolver_at(&world, &CacheLocation::Memory);
    let ghost = resolver.resolve("ghost.mtasts.test").unwrap();
    assert_eq!(ghost.source(), Source::NoPolicy);
    assert!(ghost.domain_not_found());
    assert_eq!(
        ghost.notice(),
        Some(mtasts_core::Resolution::DOMAIN_NOT_FOUND)
    );
    assert!(ghost.failure().is_none(), "not a failure");
    let plain = resolver.resolve("plain.mtasts.test").unwrap();
    assert_eq!(plain.source(), Source::NoPolicy);
    assert!(!plain.domain_not_found());
    assert_eq!(plain.notice(), None);
    // The view every face prints carries it.
    let view = mtasts_core::ResolutionView::new(&ghost);
    assert_eq!(
        view.notice.as_deref(),
        Some(mtasts_core::Resolution::DOMAIN_NOT_FOUND)
    );
}
