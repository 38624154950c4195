//! The discovery and fetch scenarios of `docs/scenarios.md`, S-01…S-25, against the
//! hermetic test world (real DNS and HTTPS servers on loopback). One test per row; the cache
//! scenarios are in tests/cache_scenarios.rs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::{Duration, Instant};

use mtasts_core::{Domain, Error, Mode, Source};
use mtasts_testworld::World;
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
