//! The resolution scenarios of `shared/spec/scenarios.md`, S-01…S-42, against the hermetic
//! test world (real DNS and HTTPS servers on loopback). One test per row.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use mtasts_core::{Domain, Error, FETCH_BACKOFF, Mode, ResultType, Source};
use mtasts_testworld::{Behaviour, DomainSpec, HttpResponse, World};
use support::{resolver, run_scenario, t0};

// ---- Discovery and fetch, empty cache (S-01 … S-25) --------------------------------------

#[test]
fn s01_valid_record_and_policy_is_fetched() {
    let (r, _, _) = run_scenario("S-01");
    let p = r.policy().unwrap();
    assert_eq!(p.mode(), Mode::Enforce);
    assert_eq!(p.max_age(), 86_400);
    let mx: Vec<_> = p.mx().iter().map(|m| m.as_str()).collect();
    assert_eq!(mx, ["mail.example.com", "*.example.net"]);
    assert!(r.failure().is_none());
    // R-CACHE-1: valid max_age from the fetch.
    let cached = r.cached_policy().unwrap();
    assert_eq!(cached.fetched_at, t0());
    assert_eq!(cached.expires_at, t0() + Duration::from_secs(86_400));
}

#[test]
fn s02_nxdomain_is_no_policy_without_failure() {
    let (r, _, _) = run_scenario("S-02");
    assert!(r.failure().is_none());
    assert_eq!(r.mode(), Mode::None);
}

#[test]
fn s03_nodata_is_no_policy_without_failure() {
    let (r, _, _) = run_scenario("S-03");
    assert!(r.failure().is_none());
}

#[test]
fn s04_two_sts_records_is_no_policy() {
    let (r, _, _) = run_scenario("S-04");
    // R-DISC-3: the postmaster is told why.
    assert!(
        r.notice().is_some_and(|n| n.contains("2")),
        "{:?}",
        r.notice()
    );
}

#[test]
fn s05_unrelated_txt_records_are_ignored() {
    run_scenario("S-05");
}

#[test]
fn s06_character_strings_are_concatenated() {
    let (r, _, _) = run_scenario("S-06");
    assert_eq!(r.cached_policy().unwrap().id, "abc");
}

#[test]
fn s07_invalid_record_is_no_policy() {
    let (r, _, _) = run_scenario("S-07");
    assert!(r.notice().is_some(), "the invalid record is explained");
}

#[test]
fn s08_servfail_is_a_temporary_failure_never_no_policy() {
    let (r, _, _) = run_scenario("S-08");
    assert_eq!(r.source(), Source::Unavailable);
    assert!(r.failure().unwrap().is_temporary());
}

#[test]
fn s09_cname_to_the_record_is_followed() {
    run_scenario("S-09");
}

#[test]
fn s10_404_is_a_fetch_error() {
    let (r, _, _) = run_scenario("S-10");
    assert!(r.failure().unwrap().to_string().contains("404"));
}

#[test]
fn s11_redirect_is_not_followed() {
    let (r, world, _) = run_scenario("S-11");
    assert!(r.failure().unwrap().to_string().contains("redirect"));
    // R-FETCH-5: only the one request to the policy URL was made.
    let requests = world.https().request_log();
    assert_eq!(requests.len(), 1, "{requests:?}");
}

#[test]
fn s12_wrong_media_type_is_an_invalid_policy() {
    run_scenario("S-12");
}

#[test]
fn s13_oversize_chunked_body_is_a_fetch_error() {
    let (r, _, _) = run_scenario("S-13");
    assert!(r.failure().unwrap().to_string().contains("65536"));
}

#[test]
fn s14_declared_oversize_body_is_refused_unread() {
    let (r, _, _) = run_scenario("S-14");
    assert!(
        r.failure()
            .unwrap()
            .to_string()
            .contains("Content-Length 200000"),
        "{r:?}"
    );
}

#[test]
fn s15_untrusted_ca_is_webpki_invalid() {
    run_scenario("S-15");
}

#[test]
fn s16_certificate_for_another_name_is_webpki_invalid() {
    run_scenario("S-16");
}

#[test]
fn s17_expired_certificate_is_webpki_invalid() {
    run_scenario("S-17");
}

#[test]
fn s18_slow_drip_ends_at_the_deadline() {
    let started = Instant::now();
    let (r, _, _) = run_scenario("S-18");
    // R-FETCH-9: the configured fetch deadline is 3 s; a 1-byte-per-second body of about
    // 100 bytes would otherwise take over a minute. Slack covers the DNS lookups.
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_secs(10), "took {elapsed:?}");
    assert!(r.failure().unwrap().to_string().contains("within"), "{r:?}");
}

#[test]
fn s19_nothing_listening_is_a_fetch_error() {
    run_scenario("S-19");
}

#[test]
fn s20_policy_host_without_address_is_a_fetch_error() {
    run_scenario("S-20");
}

#[test]
fn s21_policy_without_max_age_is_invalid() {
    run_scenario("S-21");
}

#[test]
fn s22_mode_none_means_no_requirement() {
    let (r, _, _) = run_scenario("S-22");
    assert_eq!(r.mode(), Mode::None);
    assert!(r.policy().unwrap().mx().is_empty());
}

#[test]
fn s23_crlf_unknown_field_duplicate_mode() {
    let (r, _, _) = run_scenario("S-23");
    // R-POL-4: the first `mode` wins; R-POL-5/8: the unknown field stays in the raw text.
    assert_eq!(r.mode(), Mode::Enforce);
    assert!(r.policy().unwrap().text().contains("\r\n"));
}

#[test]
fn s24_media_type_parameters_are_ignored() {
    run_scenario("S-24");
}

#[test]
fn s25_domain_is_normalised_and_cached_under_the_a_label() {
    let domain = support::scenario("S-25");
    assert_ne!(
        domain.lookup_name(),
        domain.name,
        "S-25 looks up a non-normalised name"
    );
    let world = World::start().unwrap();
    world.add_policy_domain(&domain).unwrap();
    let (resolver, _) = resolver(&world);
    let r = resolver.resolve(domain.lookup_name()).unwrap();
    support::check("S-25", &r, domain.expect.as_ref().unwrap());
    assert_eq!(r.domain().as_str(), domain.name);
    let key = Domain::new(&domain.name).unwrap();
    assert!(resolver.store().get(&key).unwrap().is_some());
    // The same domain spelt another way is a cache hit: no second fetch.
    let again = resolver.resolve(&domain.name.to_uppercase()).unwrap();
    assert_eq!(again.source(), Source::Cache);
    assert_eq!(world.policy_requests(&domain.name), 1);
}

#[test]
fn invalid_domains_are_rejected_with_a_clear_error() {
    let world = World::start().unwrap();
    let (resolver, _) = resolver(&world);
    for input in ["", ".", "192.0.2.1", "[::1]", "::1", "a..b", "exa mple.com"] {
        match resolver.resolve(input) {
            Err(Error::InvalidDomain { input: got, reason }) => {
                assert_eq!(got, input);
                assert!(!reason.is_empty());
            }
            other => panic!("{input:?}: {other:?}"),
        }
    }
    assert_eq!(world.dns().total_queries(), 0);
}

// ---- With a cached policy (S-30 … S-39) --------------------------------------------------

const DOMAIN: &str = "cache.mtasts.test";

/// A world with DOMAIN serving the default enforce policy under id `a` (TTL 300 s), and a
/// resolver that fetched it at t0.
fn cached_world() -> (World, mtasts_core::Resolver, Arc<mtasts_core::ManualClock>) {
    let world = World::start().unwrap();
    world.add_policy_domain(&DomainSpec::new(DOMAIN)).unwrap();
    world.set_policy_id(DOMAIN, "a");
    let (resolver, clock) = resolver(&world);
    let r = resolver.resolve(DOMAIN).unwrap();
    assert_eq!(r.source(), Source::Fetched);
    assert_eq!(r.cached_policy().unwrap().id, "a");
    assert_eq!(world.policy_requests(DOMAIN), 1);
    (world, resolver, clock)
}

const TESTING_POLICY: &str = "version: STSv1\nmode: testing\nmx: mx.example.org\nmax_age: 600\n";

#[test]
fn s30_within_the_recheck_interval_the_cache_answers_alone() {
    let (world, resolver, clock) = cached_world();
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

#[test]
fn s31_same_id_after_the_recheck_interval_keeps_the_policy_and_its_expiry() {
    let (world, resolver, clock) = cached_world();
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

#[test]
fn s32_new_id_fetches_and_replaces_the_policy() {
    let (world, resolver, clock) = cached_world();
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
fn failing_new_id() -> (World, mtasts_core::Resolver, Arc<mtasts_core::ManualClock>) {
    let (world, resolver, clock) = cached_world();
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
    (world, resolver, clock)
}

#[test]
fn s33_failed_fetch_of_a_new_id_keeps_the_old_policy_and_reports() {
    failing_new_id();
}

#[test]
fn s34_failed_fetch_is_not_retried_for_five_minutes() {
    let (world, resolver, clock) = failing_new_id();
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

#[test]
fn s35_deleted_record_keeps_the_policy_until_it_expires() {
    let (world, resolver, clock) = cached_world();
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

#[test]
fn s36_servfail_uses_the_cached_policy() {
    let (world, resolver, clock) = cached_world();
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

#[test]
fn s37_expired_policy_with_record_and_host_gone_is_no_policy() {
    let (world, resolver, clock) = cached_world();
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

#[test]
fn s38_new_policy_in_mode_none_replaces_the_entry() {
    let (world, resolver, clock) = cached_world();
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

#[test]
fn s39_attacker_removing_the_record_and_blocking_https_is_resisted() {
    let (world, resolver, clock) = cached_world();
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

// S-40 (a second process reads the shared cache) needs the persistent cache of issue 3;
// S-41 (fork) is in tests/fork.rs.

#[test]
fn s42_concurrent_lookups_of_an_uncached_domain_make_one_fetch() {
    let world = World::start().unwrap();
    world.add_policy_domain(&DomainSpec::new(DOMAIN)).unwrap();
    let (resolver, _) = resolver(&world);
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

#[test]
fn r_cache_5_recheck_interval_is_the_txt_ttl_clamped() {
    // (TTL of the TXT answer, the interval during which the cache answers alone)
    for (ttl, interval) in [(10, 60), (300, 300), (86_400, 3_600)] {
        let world = World::start().unwrap();
        let mut spec = DomainSpec::new(DOMAIN);
        spec.txt_ttl = Some(ttl);
        world.add_policy_domain(&spec).unwrap();
        let (resolver, clock) = resolver(&world);
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

#[test]
fn r_cache_5_a_configured_recheck_interval_overrides_the_ttl() {
    let world = World::start().unwrap();
    world.add_policy_domain(&DomainSpec::new(DOMAIN)).unwrap();
    let clock = Arc::new(mtasts_core::ManualClock::new(t0()));
    let mut config = support::config(&world);
    config.recheck_interval = Some(Duration::from_secs(5));
    let resolver = mtasts_core::Resolver::builder(config)
        .clock(clock.clone())
        .build()
        .unwrap();
    resolver.resolve(DOMAIN).unwrap();
    let queries = world.txt_queries(DOMAIN);
    clock.advance(Duration::from_secs(6));
    resolver.resolve(DOMAIN).unwrap();
    assert_eq!(world.txt_queries(DOMAIN), queries + 1);
}

#[test]
fn a_domain_without_policy_is_remembered_for_the_recheck_interval() {
    let world = World::start().unwrap();
    world.add_policy_domain(&support::scenario("S-02")).unwrap();
    let name = support::scenario("S-02").name;
    let (resolver, clock) = resolver(&world);
    assert_eq!(resolver.resolve(&name).unwrap().source(), Source::NoPolicy);
    let queries = world.txt_queries(&name);
    clock.advance(Duration::from_secs(30));
    assert_eq!(resolver.resolve(&name).unwrap().source(), Source::NoPolicy);
    assert_eq!(world.txt_queries(&name), queries, "answered from the cache");
}
