//! The cache scenarios of `docs/scenarios.md` (S-30…S-39, S-42) and the recheck rules
//! (R-CACHE-5), run against every cache backend: memory, a SQLite file, a real redis-server.
//! S-40 (a second process) is in tests/shared_cache.rs, S-41 (fork) in tests/fork.rs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::{Arc, Barrier};
use std::time::Duration;

use mtasts_core::{
    CacheLocation, Domain, Error, FETCH_BACKOFF, ManualClock, Mode, RedisStore, Resolver,
    ResultType, SharedCache, Source, SqliteStore, Store,
};
use mtasts_testworld::{Behaviour, DomainSpec, HttpResponse, World};
use support::{Backend, BackendGuard, resolver_on, t0};

// ---- With a cached policy (S-30 … S-39) --------------------------------------------------

const DOMAIN: &str = "cache.mtasts.test";

/// A world with DOMAIN serving the default enforce policy under id `a` (TTL 300 s), and a
/// resolver that fetched it at t0.
fn cached_world(backend: Backend) -> (World, Resolver, Arc<ManualClock>, BackendGuard) {
    let world = World::start().unwrap();
    world.add_policy_domain(&DomainSpec::new(DOMAIN)).unwrap();
    world.set_policy_id(DOMAIN, "a");
    let (resolver, clock, guard) = resolver_on(&world, backend);
    let r = resolver.resolve(DOMAIN).unwrap();
    assert_eq!(r.source(), Source::Fetched);
    assert_eq!(r.cached_policy().unwrap().id, "a");
    assert_eq!(world.policy_requests(DOMAIN), 1);
    (world, resolver, clock, guard)
}

const TESTING_POLICY: &str = "version: STSv1\nmode: testing\nmx: mx.example.org\nmax_age: 600\n";

fn s30_within_the_recheck_interval_the_cache_answers_alone(backend: Backend) {
    let (world, resolver, clock, _guard) = cached_world(backend);
    let txt_queries = world.txt_queries(DOMAIN);
    clock.advance(Duration::from_secs(10));
    let r = resolver.resolve(DOMAIN).unwrap();
    assert_eq!(r.source(), Source::Cache);
    assert_eq!(r.mode(), Mode::Enforce);
    assert_eq!(world.policy_requests(DOMAIN), 1, "no HTTPS request");
    assert_eq!(
        world.txt_queries(DOMAIN),
        txt_queries,
        "R-CACHE-5: no DNS query"
    );
}

fn s31_same_id_after_the_recheck_interval_keeps_the_policy_and_its_expiry(backend: Backend) {
    let (world, resolver, clock, _guard) = cached_world(backend);
    let txt_queries = world.txt_queries(DOMAIN);
    clock.advance(Duration::from_secs(2 * 3600));
    let r = resolver.resolve(DOMAIN).unwrap();
    assert_eq!(r.source(), Source::Cache);
    assert_eq!(
        world.txt_queries(DOMAIN),
        txt_queries + 1,
        "the TXT record was checked"
    );
    assert_eq!(
        world.policy_requests(DOMAIN),
        1,
        "R-CACHE-2: no HTTPS request"
    );
    assert_eq!(
        r.cached_policy().unwrap().expires_at,
        t0() + Duration::from_secs(86_400),
        "R-CACHE-1: expiry counts from the last fetch, not the last TXT check"
    );
}

fn s32_new_id_fetches_and_replaces_the_policy(backend: Backend) {
    let (world, resolver, clock, _guard) = cached_world(backend);
    world.set_policy_id(DOMAIN, "b");
    world.set_policy_response(DOMAIN, HttpResponse::policy(TESTING_POLICY));
    clock.advance(Duration::from_secs(301));
    let r = resolver.resolve(DOMAIN).unwrap();
    assert_eq!(r.source(), Source::Fetched);
    assert_eq!(r.mode(), Mode::Testing);
    assert_eq!(r.cached_policy().unwrap().id, "b");
    let stored = resolver
        .store()
        .get(&Domain::new(DOMAIN).unwrap())
        .unwrap()
        .unwrap();
    assert_eq!(stored.policy.as_ref().unwrap().id, "b", "cache replaced");
    assert_eq!(world.policy_requests(DOMAIN), 2);
}

/// S-33's situation: id `b` published, its fetch fails with 500.
fn failing_new_id(backend: Backend) -> (World, Resolver, Arc<ManualClock>, BackendGuard) {
    let (world, resolver, clock, guard) = cached_world(backend);
    world.set_policy_id(DOMAIN, "b");
    world.set_policy_response(DOMAIN, HttpResponse::new(500));
    clock.advance(Duration::from_secs(301));
    let r = resolver.resolve(DOMAIN).unwrap();
    assert_eq!(r.source(), Source::CacheAfterFailure);
    assert_eq!(r.cached_policy().unwrap().id, "a", "the old policy is kept");
    assert_eq!(r.mode(), Mode::Enforce);
    assert_eq!(
        r.failure().unwrap().result_type(),
        Some(ResultType::StsPolicyFetchError)
    );
    assert_eq!(world.policy_requests(DOMAIN), 2);
    (world, resolver, clock, guard)
}

fn s33_failed_fetch_of_a_new_id_keeps_the_old_policy_and_reports(backend: Backend) {
    failing_new_id(backend);
}

fn s34_failed_fetch_is_not_retried_for_five_minutes(backend: Backend) {
    let (world, resolver, clock, _guard) = failing_new_id(backend);
    clock.advance(Duration::from_secs(60));
    let r = resolver.resolve(DOMAIN).unwrap();
    assert_eq!(
        world.policy_requests(DOMAIN),
        2,
        "R-FETCH-10: no second HTTPS attempt"
    );
    assert_eq!(r.source(), Source::CacheAfterFailure);
    assert_eq!(r.cached_policy().unwrap().id, "a");
    assert!(
        matches!(r.failure(), Some(Error::FetchBackoff { .. })),
        "{r:?}"
    );
    assert_eq!(
        r.failure().unwrap().result_type(),
        Some(ResultType::StsPolicyFetchError)
    );
    // After the backoff a new attempt is made, and a repaired server is used.
    world.set_policy_response(DOMAIN, HttpResponse::policy(TESTING_POLICY));
    clock.advance(FETCH_BACKOFF);
    let r = resolver.resolve(DOMAIN).unwrap();
    assert_eq!(r.source(), Source::Fetched);
    assert_eq!(r.cached_policy().unwrap().id, "b");
    assert_eq!(world.policy_requests(DOMAIN), 3);
}

fn s35_deleted_record_keeps_the_policy_until_it_expires(backend: Backend) {
    let (world, resolver, clock, _guard) = cached_world(backend);
    world
        .zone()
        .set_behaviour(&format!("_mta-sts.{DOMAIN}"), Behaviour::NxDomain);
    clock.advance(Duration::from_secs(3600));
    let r = resolver.resolve(DOMAIN).unwrap();
    assert_eq!(r.source(), Source::Cache, "R-DISC-8");
    assert_eq!(r.mode(), Mode::Enforce);
    assert!(r.notice().is_some());
    clock.set(t0() + Duration::from_secs(86_399));
    assert_eq!(resolver.resolve(DOMAIN).unwrap().mode(), Mode::Enforce);
    clock.set(t0() + Duration::from_secs(86_400));
    let r = resolver.resolve(DOMAIN).unwrap();
    assert_eq!(r.source(), Source::NoPolicy, "expired at t0 + max_age");
    assert!(r.policy().is_none());
}

fn s36_servfail_uses_the_cached_policy(backend: Backend) {
    let (world, resolver, clock, _guard) = cached_world(backend);
    world
        .zone()
        .set_behaviour(&format!("_mta-sts.{DOMAIN}"), Behaviour::ServFail);
    clock.advance(Duration::from_secs(3600));
    let r = resolver.resolve(DOMAIN).unwrap();
    assert_eq!(r.source(), Source::CacheAfterFailure);
    assert_eq!(r.mode(), Mode::Enforce);
    assert!(
        matches!(r.failure(), Some(Error::DnsTemporary { .. })),
        "{r:?}"
    );
}

fn s37_expired_policy_with_record_and_host_gone_is_no_policy(backend: Backend) {
    let (world, resolver, clock, _guard) = cached_world(backend);
    world.remove_policy_domain(DOMAIN);
    clock.set(t0() + Duration::from_secs(86_401));
    let r = resolver.resolve(DOMAIN).unwrap();
    assert_eq!(r.source(), Source::NoPolicy);
    assert!(r.policy().is_none());
    assert_eq!(r.mode(), Mode::None);
    let stored = resolver
        .store()
        .get(&Domain::new(DOMAIN).unwrap())
        .unwrap()
        .unwrap();
    assert!(
        stored.policy.is_none(),
        "the expired policy is gone from the cache"
    );
}

fn s38_new_policy_in_mode_none_replaces_the_entry(backend: Backend) {
    let (world, resolver, clock, _guard) = cached_world(backend);
    world.set_policy_id(DOMAIN, "b");
    world.set_policy_response(
        DOMAIN,
        HttpResponse::policy("version: STSv1\nmode: none\nmax_age: 86400\n"),
    );
    clock.advance(Duration::from_secs(301));
    let r = resolver.resolve(DOMAIN).unwrap();
    assert_eq!(r.source(), Source::Fetched);
    assert_eq!(
        r.mode(),
        Mode::None,
        "R-CACHE-4: no requirement from now on"
    );
    clock.advance(Duration::from_secs(10));
    let r = resolver.resolve(DOMAIN).unwrap();
    assert_eq!(r.source(), Source::Cache);
    assert_eq!(r.mode(), Mode::None);
    assert_eq!(r.cached_policy().unwrap().id, "b");
}

fn s39_attacker_removing_the_record_and_blocking_https_is_resisted(backend: Backend) {
    let (world, resolver, clock, _guard) = cached_world(backend);
    world
        .zone()
        .set_behaviour(&format!("_mta-sts.{DOMAIN}"), Behaviour::NxDomain);
    world.set_policy_response(DOMAIN, HttpResponse::new(503));
    for hours in [1, 12, 23] {
        clock.set(t0() + Duration::from_secs(hours * 3600));
        let r = resolver.resolve(DOMAIN).unwrap();
        assert_eq!(r.mode(), Mode::Enforce, "after {hours} h");
        assert!(r.policy().unwrap().matches("mail.example.com"));
        assert!(!r.policy().unwrap().matches("mx.attacker.example"));
    }
    assert_eq!(world.policy_requests(DOMAIN), 1);
}

fn s42_concurrent_lookups_of_an_uncached_domain_make_one_fetch(backend: Backend) {
    let world = World::start().unwrap();
    world.add_policy_domain(&DomainSpec::new(DOMAIN)).unwrap();
    let (resolver, _, _guard) = resolver_on(&world, backend);
    let resolver = Arc::new(resolver);
    let barrier = Arc::new(Barrier::new(16));
    let threads: Vec<_> = (0..16)
        .map(|_| {
            let resolver = Arc::clone(&resolver);
            let barrier = Arc::clone(&barrier);
            std::thread::spawn(move || {
                barrier.wait();
                resolver.resolve(DOMAIN).unwrap()
            })
        })
        .collect();
    let results: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    assert_eq!(world.policy_requests(DOMAIN), 1, "exactly one HTTPS fetch");
    let fetched = results
        .iter()
        .filter(|r| r.source() == Source::Fetched)
        .count();
    assert_eq!(fetched, 1);
    let first = results[0].cached_policy().unwrap();
    for r in &results {
        assert!(
            Arc::ptr_eq(r.cached_policy().unwrap(), first),
            "all get the same policy"
        );
    }
}

fn r_cache_5_recheck_interval_is_the_txt_ttl_clamped(backend: Backend) {
    // (TTL of the TXT answer, the interval during which the cache answers alone)
    for (ttl, interval) in [(10, 60), (300, 300), (86_400, 3_600)] {
        let world = World::start().unwrap();
        let mut spec = DomainSpec::new(DOMAIN);
        spec.txt_ttl = Some(ttl);
        world.add_policy_domain(&spec).unwrap();
        let (resolver, clock, _guard) = resolver_on(&world, backend);
        resolver.resolve(DOMAIN).unwrap();
        let queries = world.txt_queries(DOMAIN);
        clock.advance(Duration::from_secs(interval - 1));
        assert_eq!(resolver.resolve(DOMAIN).unwrap().source(), Source::Cache);
        assert_eq!(
            world.txt_queries(DOMAIN),
            queries,
            "TTL {ttl}: no query yet"
        );
        clock.advance(Duration::from_secs(2));
        assert_eq!(resolver.resolve(DOMAIN).unwrap().source(), Source::Cache);
        assert_eq!(
            world.txt_queries(DOMAIN),
            queries + 1,
            "TTL {ttl}: checked again"
        );
    }
}

fn r_cache_5_a_configured_recheck_interval_overrides_the_ttl(backend: Backend) {
    let world = World::start().unwrap();
    world.add_policy_domain(&DomainSpec::new(DOMAIN)).unwrap();
    let clock = Arc::new(ManualClock::new(t0()));
    let guard = backend.prepare();
    let mut config = support::config(&world);
    config.recheck_interval = Some(Duration::from_secs(5));
    config.cache = guard.location.clone();
    let resolver = Resolver::builder(config)
        .clock(clock.clone())
        .build()
        .unwrap();
    resolver.resolve(DOMAIN).unwrap();
    let queries = world.txt_queries(DOMAIN);
    clock.advance(Duration::from_secs(6));
    resolver.resolve(DOMAIN).unwrap();
    assert_eq!(world.txt_queries(DOMAIN), queries + 1);
}

fn a_domain_without_policy_is_remembered_for_the_recheck_interval(backend: Backend) {
    let world = World::start().unwrap();
    world.add_policy_domain(&support::scenario("S-02")).unwrap();
    let name = support::scenario("S-02").name;
    let (resolver, clock, _guard) = resolver_on(&world, backend);
    assert_eq!(resolver.resolve(&name).unwrap().source(), Source::NoPolicy);
    let queries = world.txt_queries(&name);
    clock.advance(Duration::from_secs(30));
    assert_eq!(resolver.resolve(&name).unwrap().source(), Source::NoPolicy);
    assert_eq!(world.txt_queries(&name), queries, "answered from the cache");
}

fn s40_a_second_process_reads_the_shared_cache(backend: Backend) {
    let (world, _first, _clock, guard) = cached_world(backend);
    let (txt, https) = (world.txt_queries(DOMAIN), world.policy_requests(DOMAIN));
    // A fresh resolver on the same cache location: what a new Exim process does.
    let (second, clock) = support::resolver_at(&world, &guard.location);
    clock.advance(Duration::from_secs(10));
    let r = second.resolve(DOMAIN).unwrap();
    assert_eq!(r.mode(), Mode::Enforce);
    if backend == Backend::Memory {
        // Memory is per process: the new one starts empty (why MTAs need a shared cache).
        assert_eq!(r.source(), Source::Fetched);
    } else {
        assert_eq!(r.source(), Source::Cache, "R-CACHE-7: {}", guard.location);
        assert_eq!(world.txt_queries(DOMAIN), txt, "no DNS query");
        assert_eq!(world.policy_requests(DOMAIN), https, "no HTTPS request");
    }
}

// ---- An entry written by a newer mtasts (issue 11: rolling upgrades) -----------------------

/// What a newer mtasts may have stored for DOMAIN an hour before t0: policy `a`, due for its
/// TXT check at t0, and a backoff for id `b` with a result type this version does not know.
const FUTURE_POLICY: &str = "version: STSv1\nmode: enforce\nmx: mail.example.com\nmax_age: 86400\n";

fn ms(t: std::time::SystemTime) -> String {
    t.duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis()
        .to_string()
}

/// Writes the newer version's entry into the backend's storage, bypassing this version's
/// store, with an extra field (Redis) or column (SQLite) as a newer version may add.
fn write_future_entry(guard: &BackendGuard) {
    let hour_ago = t0() - Duration::from_secs(3600);
    let fetched = ms(hour_ago);
    let expires = ms(hour_ago + Duration::from_secs(86_400));
    let (due, used) = (ms(t0() - Duration::from_secs(1)), ms(hour_ago));
    let until = ms(t0() + Duration::from_secs(200));
    if let Some(redis) = guard.redis() {
        let key = format!("mtasts:v1:entry:{DOMAIN}");
        let fields = [
            ("policy_id", "a"),
            ("policy", FUTURE_POLICY),
            ("fetched_at", &fetched),
            ("expires_at", &expires),
            ("next_check", &due),
            ("last_used", &used),
            ("failures", "0"),
            ("backoff_id", "b"),
            ("backoff_until", &until),
            ("backoff_result", "sts-from-the-future"),
            ("backoff_reason", "a failure this version has no name for"),
            ("added_later", "x"),
        ];
        let mut args = vec!["HSET", key.as_str()];
        for (name, value) in &fields {
            args.extend([*name, *value]);
        }
        redis.command(&args).unwrap();
        return;
    }
    let CacheLocation::Shared(layers) = &guard.location else {
        panic!("not a shared cache: {:?}", guard.location);
    };
    let [SharedCache::Sqlite(path)] = layers.as_slice() else {
        panic!("not one SQLite file: {layers:?}");
    };
    // This version creates the file; the newer one added a column without a schema bump.
    drop(SqliteStore::open(path).unwrap());
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.execute_batch("ALTER TABLE entries ADD COLUMN added_later TEXT")
        .unwrap();
    conn.execute(
        "INSERT INTO entries (domain, policy_id, policy_text, fetched_at, expires_at, \
         next_check, backoff_id, backoff_until, backoff_result_type, backoff_reason, \
         failures, last_used, added_later) \
         VALUES (?1, 'a', ?2, ?3, ?4, ?5, 'b', ?6, 'sts-from-the-future', 'unnamed', 0, ?7, 'x')",
        rusqlite::params![
            DOMAIN,
            FUTURE_POLICY,
            fetched.parse::<i64>().unwrap(),
            expires.parse::<i64>().unwrap(),
            due.parse::<i64>().unwrap(),
            until.parse::<i64>().unwrap(),
            used.parse::<i64>().unwrap(),
        ],
    )
    .unwrap();
}

/// Issue 11: an entry from a newer mtasts is read with its policy (the unknown parts
/// dropped), and when the refresh fails the lookup falls back to that policy (R-FETCH-11),
/// never to "no policy" or "unavailable".
fn a_future_entry_keeps_its_policy_for_a_failed_fetch(backend: Backend) {
    let world = World::start().unwrap();
    world.add_policy_domain(&DomainSpec::new(DOMAIN)).unwrap();
    world.set_policy_id(DOMAIN, "b");
    world.set_policy_response(DOMAIN, HttpResponse::new(500));
    let guard = backend.prepare();
    write_future_entry(&guard);

    // The store alone: policy kept, backoff (unknown result type) dropped.
    let store: Box<dyn Store> = match guard.redis() {
        Some(redis) => Box::new(RedisStore::connect(&redis.url()).unwrap()),
        None => {
            let CacheLocation::Shared(layers) = &guard.location else {
                unreachable!()
            };
            let [SharedCache::Sqlite(path)] = layers.as_slice() else {
                unreachable!()
            };
            Box::new(SqliteStore::open(path).unwrap())
        }
    };
    let stored = store
        .get(&Domain::new(DOMAIN).unwrap())
        .unwrap()
        .expect("the entry is read");
    assert_eq!(stored.policy.as_ref().unwrap().id, "a", "policy kept");
    assert_eq!(stored.backoff, None, "the unknown backoff is dropped");

    // A lookup: TXT id `b` is new, its fetch fails, the stored policy `a` applies.
    let (resolver, _clock) = support::resolver_at(&world, &guard.location);
    let r = resolver.resolve(DOMAIN).unwrap();
    assert_eq!(r.source(), Source::CacheAfterFailure, "{r:?}");
    assert_eq!(r.cached_policy().unwrap().id, "a");
    assert_eq!(r.mode(), Mode::Enforce);
    assert_eq!(
        r.failure().unwrap().result_type(),
        Some(ResultType::StsPolicyFetchError)
    );
    assert_eq!(world.policy_requests(DOMAIN), 1, "the fetch was tried");
}

#[test]
fn sqlite_a_future_entry_keeps_its_policy_for_a_failed_fetch() {
    a_future_entry_keeps_its_policy_for_a_failed_fetch(Backend::Sqlite);
}

#[test]
fn redis_a_future_entry_keeps_its_policy_for_a_failed_fetch() {
    a_future_entry_keeps_its_policy_for_a_failed_fetch(Backend::Redis);
}

/// One test per scenario and backend: `memory::s30_…`, `sqlite::s30_…`, `redis::s30_…`.
macro_rules! for_backend {
    ($module:ident, $backend:expr) => {
        mod $module {
            #[test]
            fn s30_within_the_recheck_interval_the_cache_answers_alone() {
                super::s30_within_the_recheck_interval_the_cache_answers_alone($backend);
            }
            #[test]
            fn s31_same_id_after_the_recheck_interval_keeps_the_policy_and_its_expiry() {
                super::s31_same_id_after_the_recheck_interval_keeps_the_policy_and_its_expiry(
                    $backend,
                );
            }
            #[test]
            fn s32_new_id_fetches_and_replaces_the_policy() {
                super::s32_new_id_fetches_and_replaces_the_policy($backend);
            }
            #[test]
            fn s33_failed_fetch_of_a_new_id_keeps_the_old_policy_and_reports() {
                super::s33_failed_fetch_of_a_new_id_keeps_the_old_policy_and_reports($backend);
            }
            #[test]
            fn s34_failed_fetch_is_not_retried_for_five_minutes() {
                super::s34_failed_fetch_is_not_retried_for_five_minutes($backend);
            }
            #[test]
            fn s35_deleted_record_keeps_the_policy_until_it_expires() {
                super::s35_deleted_record_keeps_the_policy_until_it_expires($backend);
            }
            #[test]
            fn s36_servfail_uses_the_cached_policy() {
                super::s36_servfail_uses_the_cached_policy($backend);
            }
            #[test]
            fn s37_expired_policy_with_record_and_host_gone_is_no_policy() {
                super::s37_expired_policy_with_record_and_host_gone_is_no_policy($backend);
            }
            #[test]
            fn s38_new_policy_in_mode_none_replaces_the_entry() {
                super::s38_new_policy_in_mode_none_replaces_the_entry($backend);
            }
            #[test]
            fn s39_attacker_removing_the_record_and_blocking_https_is_resisted() {
                super::s39_attacker_removing_the_record_and_blocking_https_is_resisted($backend);
            }
            #[test]
            fn s40_a_second_process_reads_the_shared_cache() {
                super::s40_a_second_process_reads_the_shared_cache($backend);
            }
            #[test]
            fn s42_concurrent_lookups_of_an_uncached_domain_make_one_fetch() {
                super::s42_concurrent_lookups_of_an_uncached_domain_make_one_fetch($backend);
            }
            #[test]
            fn r_cache_5_recheck_interval_is_the_txt_ttl_clamped() {
                super::r_cache_5_recheck_interval_is_the_txt_ttl_clamped($backend);
            }
            #[test]
            fn r_cache_5_a_configured_recheck_interval_overrides_the_ttl() {
                super::r_cache_5_a_configured_recheck_interval_overrides_the_ttl($backend);
            }
            #[test]
            fn a_domain_without_policy_is_remembered_for_the_recheck_interval() {
                super::a_domain_without_policy_is_remembered_for_the_recheck_interval($backend);
            }
        }
    };
}

for_backend!(memory, super::Backend::Memory);
for_backend!(sqlite, super::Backend::Sqlite);
for_backend!(redis, super::Backend::Redis);
