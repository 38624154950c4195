//! Proactive refresh (R-CACHE-6) and housekeeping (R-CACHE-8) against the test world.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use mtasts_core::{Domain, RefreshOptions, ResultType};
use mtasts_testworld::{DomainSpec, HttpResponse, World};
use support::{resolver, t0};

const WEEK: u64 = 7 * 86_400;

fn weekly_policy(mx: &str) -> String {
    format!("version: STSv1\nmode: enforce\nmx: {mx}\nmax_age: {WEEK}\n")
}

fn domain_with_weekly_policy(world: &World, name: &str) {
    world.add_policy_domain(&DomainSpec::new(name)).unwrap();
    world.set_policy_response(name, HttpResponse::policy(weekly_policy("mx.example.com")));
}

#[test]
fn only_due_policies_are_fetched_again_and_their_expiry_moves() {
    let world = World::start().unwrap();
    domain_with_weekly_policy(&world, "a.mtasts.test");
    let (resolver, clock) = resolver(&world);
    resolver.resolve("a.mtasts.test").unwrap();

    // Young policy: nothing due.
    clock.advance(Duration::from_secs(3_600));
    let report = resolver.refresh_due(&RefreshOptions::default()).unwrap();
    assert_eq!(report.examined, 1);
    assert!(report.refreshed.is_empty(), "{report:?}");
    assert_eq!(world.policy_requests("a.mtasts.test"), 1);

    // Past half its max_age: fetched again although the id is unchanged.
    clock.set(t0() + Duration::from_secs(WEEK / 2 + 1));
    let report = resolver.refresh_due(&RefreshOptions::default()).unwrap();
    assert_eq!(report.refreshed, [Domain::new("a.mtasts.test").unwrap()]);
    assert_eq!(world.policy_requests("a.mtasts.test"), 2);
    let entry = resolver
        .store()
        .get(&Domain::new("a.mtasts.test").unwrap())
        .unwrap()
        .unwrap();
    let cached = entry.policy.as_ref().unwrap();
    assert_eq!(cached.fetched_at, t0() + Duration::from_secs(WEEK / 2 + 1));
    assert_eq!(
        cached.expires_at,
        t0() + Duration::from_secs(WEEK / 2 + 1 + WEEK),
        "R-CACHE-1: the new fetch sets the expiry"
    );
}

#[test]
fn failed_refreshes_keep_the_policy_and_are_counted() {
    let world = World::start().unwrap();
    domain_with_weekly_policy(&world, "b.mtasts.test");
    let (resolver, clock) = resolver(&world);
    resolver.resolve("b.mtasts.test").unwrap();
    world.set_policy_response("b.mtasts.test", HttpResponse::new(500));
    let key = Domain::new("b.mtasts.test").unwrap();

    for (round, hours) in [(1, 100), (2, 101)] {
        clock.set(t0() + Duration::from_secs(hours * 3600));
        let report = resolver.refresh_due(&RefreshOptions::default()).unwrap();
        assert_eq!(report.failed.len(), 1, "{report:?}");
        assert_eq!(
            report.failed[0].1.result_type(),
            Some(ResultType::StsPolicyFetchError)
        );
        let entry = resolver.store().get(&key).unwrap().unwrap();
        assert_eq!(
            entry.failures, round,
            "R-CACHE-6: repeated failures are counted"
        );
        assert!(
            entry
                .policy
                .as_ref()
                .unwrap()
                .is_valid_at(clock_now(&clock))
        );
    }
    // Repaired: the next refresh succeeds and the count resets.
    world.set_policy_response(
        "b.mtasts.test",
        HttpResponse::policy(weekly_policy("mx2.example.com")),
    );
    clock.set(t0() + Duration::from_secs(102 * 3600));
    let report = resolver.refresh_due(&RefreshOptions::default()).unwrap();
    assert_eq!(report.refreshed, std::slice::from_ref(&key));
    let entry = resolver.store().get(&key).unwrap().unwrap();
    assert_eq!(entry.failures, 0);
    assert!(
        entry
            .policy
            .as_ref()
            .unwrap()
            .policy
            .matches("mx2.example.com")
    );
}

fn clock_now(clock: &mtasts_core::ManualClock) -> std::time::SystemTime {
    use mtasts_core::Clock;
    clock.now()
}

#[test]
fn all_refreshes_everything_with_bounded_concurrency() {
    let world = World::start().unwrap();
    let names: Vec<String> = (0..6).map(|i| format!("d{i}.mtasts.test")).collect();
    for name in &names {
        domain_with_weekly_policy(&world, name);
    }
    let (resolver, _clock) = resolver(&world);
    for name in &names {
        resolver.resolve(name).unwrap();
    }
    let mut options = RefreshOptions::default();
    options.all = true;
    options.concurrency = 2;
    let report = resolver.refresh_due(&options).unwrap();
    assert_eq!(report.examined, 6);
    assert_eq!(report.refreshed.len(), 6, "{report:?}");
    for name in &names {
        assert_eq!(world.policy_requests(name), 2, "{name}");
    }
}

#[test]
fn unpublished_policies_stay_until_they_expire() {
    let world = World::start().unwrap();
    domain_with_weekly_policy(&world, "c.mtasts.test");
    let (resolver, clock) = resolver(&world);
    resolver.resolve("c.mtasts.test").unwrap();
    world.remove_policy_domain("c.mtasts.test");
    clock.set(t0() + Duration::from_secs(WEEK - 3600));
    let report = resolver.refresh_due(&RefreshOptions::default()).unwrap();
    assert_eq!(report.unpublished, [Domain::new("c.mtasts.test").unwrap()]);
    assert_eq!(
        resolver.resolve("c.mtasts.test").unwrap().mode(),
        mtasts_core::Mode::Enforce,
        "R-DISC-8"
    );
}

#[test]
fn r_cache_8_entries_unused_for_180_days_are_dropped() {
    let world = World::start().unwrap();
    domain_with_weekly_policy(&world, "old.mtasts.test");
    domain_with_weekly_policy(&world, "used.mtasts.test");
    let (resolver, clock) = resolver(&world);
    resolver.resolve("old.mtasts.test").unwrap();
    resolver.resolve("used.mtasts.test").unwrap();
    // "used" is looked up every few days; "old" never again.
    for day in (3..=181).step_by(3) {
        clock.set(t0() + Duration::from_secs(day * 86_400));
        resolver.resolve("used.mtasts.test").unwrap();
    }
    clock.set(t0() + Duration::from_secs(181 * 86_400));
    let report = resolver.refresh_due(&RefreshOptions::default()).unwrap();
    assert_eq!(report.purged, 1);
    let store = resolver.store();
    assert!(
        store
            .get(&Domain::new("old.mtasts.test").unwrap())
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .get(&Domain::new("used.mtasts.test").unwrap())
            .unwrap()
            .is_some()
    );
}
