//! `Resolver::resolve_many` and `check_many` against the test world: input order, bounded
//! parallelism, single-flight across the batch (S-42), a hung domain, stopping early,
//! and streaming an endless input (a forked child's batch, S-41, is in batch_fork.rs).
#![allow(unsafe_code, clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::ops::ControlFlow;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::Duration;

use mtasts_core::{
    CertVerifier, CheckOptions, DnsAnswer, DnsResolver, Error, HickoryDns, Mode, MxRecord,
    Resolver, Source, TrustRoots,
};
use mtasts_testworld::{Behaviour, World};

use support::{batch_names as names, world_with};

#[test]
fn results_come_in_input_order_each_as_resolve_gives_it() {
    let good = names(40);
    let world = world_with(&good);
    let (resolver, _clock) = support::resolver(&world);
    let mut input = good.clone();
    input.insert(7, "not a domain".into());
    input.insert(20, "nopolicy.batch.test".into());
    let mut seen = Vec::new();
    let handed = resolver.resolve_many(input.clone(), 8, |item| {
        seen.push((item.index, item.domain, item.result));
        ControlFlow::Continue(())
    });
    assert_eq!(handed, input.len());
    for (i, (index, domain, result)) in seen.iter().enumerate() {
        assert_eq!(*index, i);
        assert_eq!(domain, &input[i]);
        match domain.as_str() {
            "not a domain" => assert!(matches!(result, Err(Error::InvalidDomain { .. }))),
            "nopolicy.batch.test" => {
                assert_eq!(result.as_ref().unwrap().source(), Source::NoPolicy)
            }
            _ => {
                let r = result.as_ref().unwrap();
                assert_eq!(
                    (r.source(), r.mode()),
                    (Source::Fetched, Mode::Enforce),
                    "{domain}"
                );
            }
        }
    }
    // The same cache as `resolve`: a second look is answered from it.
    assert_eq!(resolver.resolve(&good[3]).unwrap().source(), Source::Cache);
}

#[test]
fn s42_a_domain_listed_many_times_is_fetched_once() {
    let world = world_with(&["dup.batch.test".to_string()]);
    let (resolver, _clock) = support::resolver(&world);
    let input = vec!["dup.batch.test".to_string(); 40];
    let mut modes = Vec::new();
    resolver.resolve_many(input, 16, |item| {
        modes.push(item.result.unwrap().mode());
        ControlFlow::Continue(())
    });
    assert_eq!(modes, vec![Mode::Enforce; 40]);
    assert_eq!(world.policy_requests("dup.batch.test"), 1);
}

/// DNS that counts the TXT lookups running at once (and holds each a moment, so they overlap).
#[derive(Debug)]
struct Counting {
    inner: HickoryDns,
    now: AtomicUsize,
    most: AtomicUsize,
}

impl DnsResolver for Counting {
    fn txt(&self, name: &str) -> mtasts_core::Result<DnsAnswer<Vec<Vec<u8>>>> {
        let running = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.most.fetch_max(running, Ordering::SeqCst);
        thread::sleep(Duration::from_millis(20));
        let answer = self.inner.txt(name);
        self.now.fetch_sub(1, Ordering::SeqCst);
        answer
    }
    fn ip(&self, host: &str) -> mtasts_core::Result<DnsAnswer<Vec<std::net::IpAddr>>> {
        self.inner.ip(host)
    }
    fn ip_within(
        &self,
        host: &str,
        limit: Option<Duration>,
    ) -> mtasts_core::Result<DnsAnswer<Vec<std::net::IpAddr>>> {
        self.inner.ip_within(host, limit)
    }
    fn mx(&self, domain: &str) -> mtasts_core::Result<DnsAnswer<Vec<MxRecord>>> {
        self.inner.mx(domain)
    }
}

#[test]
fn at_most_concurrency_lookups_run_at_once() {
    let good = names(48);
    let world = world_with(&good);
    for concurrency in [1, 6] {
        let dns = Arc::new(Counting {
            inner: HickoryDns::with_nameservers(&[world.dns_addr()], Duration::from_secs(2))
                .unwrap(),
            now: AtomicUsize::new(0),
            most: AtomicUsize::new(0),
        });
        let resolver = Resolver::builder(support::config(&world))
            .dns(dns.clone())
            .build()
            .unwrap();
        let handed = resolver.resolve_many(good.clone(), concurrency, |item| {
            assert!(item.result.is_ok());
            ControlFlow::Continue(())
        });
        assert_eq!(handed, good.len());
        // Never more than asked; with 6, lookups did overlap.
        let most = dns.most.load(Ordering::SeqCst);
        assert!(most <= concurrency, "{most} at once, {concurrency} allowed");
        assert!(
            most >= concurrency.min(2),
            "{most} at once, {concurrency} allowed"
        );
    }
}

#[test]
fn a_hung_domain_gives_its_own_failure_and_the_others_their_answers() {
    let mut input = vec!["hung.batch.test".to_string()];
    input.extend(names(30));
    let world = world_with(&input[1..]);
    world
        .zone()
        .set_behaviour("_mta-sts.hung.batch.test", Behaviour::Timeout);
    let mut config = support::config(&world);
    config.dns_timeout = Duration::from_millis(500);
    let resolver = Resolver::new(config).unwrap();
    let mut sources = Vec::new();
    resolver.resolve_many(input, 4, |item| {
        sources.push(item.result.unwrap().source());
        ControlFlow::Continue(())
    });
    // R-DISC-7: the hung name server is a failure, never "no policy".
    assert_eq!(sources[0], Source::Unavailable);
    assert!(
        sources[1..].iter().all(|s| *s == Source::Fetched),
        "{sources:?}"
    );
}

/// An endless input: only streaming can finish, and `Break` stops it.
#[test]
fn break_stops_the_batch_and_an_endless_input_is_read_only_as_needed() {
    let world = world_with(&["loop.batch.test".to_string()]);
    let (resolver, _clock) = support::resolver(&world);
    let pulled = AtomicUsize::new(0);
    let endless = std::iter::repeat_with(|| {
        pulled.fetch_add(1, Ordering::SeqCst);
        "loop.batch.test".to_string()
    });
    let mut got = 0;
    let handed = resolver.resolve_many(endless, 4, |item| {
        assert_eq!(item.result.unwrap().mode(), Mode::Enforce);
        got += 1;
        if got == 500 {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    });
    assert_eq!(handed, 500);
    // What was read ahead is bounded by the window (64 results per worker), not the input.
    let pulled = pulled.load(Ordering::SeqCst);
    assert!(
        (500..=500 + 4 * 64 + 4).contains(&pulled),
        "{pulled} inputs read"
    );
}

#[test]
fn check_many_diagnoses_each_domain_in_order() {
    let good = names(5);
    let world = world_with(&good);
    let (resolver, _clock) = support::resolver(&world);
    let verifier =
        CertVerifier::new(&TrustRoots::PemFile(world.ca_pem_path().to_path_buf())).unwrap();
    let mut input = good.clone();
    input.push("..".into());
    let mut seen = Vec::new();
    resolver.check_many(input, 3, &verifier, &CheckOptions::default(), |item| {
        seen.push((
            item.domain,
            item.result.map(|d| d.domain.as_str().to_string()),
        ));
        ControlFlow::Continue(())
    });
    for (i, name) in good.iter().enumerate() {
        assert_eq!(seen[i].0, *name);
        assert_eq!(seen[i].1.as_ref().unwrap(), name);
    }
    assert!(matches!(seen[5].1, Err(Error::InvalidDomain { .. })));
}

/// Every scenario domain of world.json with an `expect` block, through one `resolve_many`
/// batch at once: each outcome as `resolve` gives it alone (S-01 … S-25), in input order.
#[test]
fn every_scenario_of_the_world_passes_through_resolve_many() {
    let spec = mtasts_testworld::WorldSpec::bundled().unwrap();
    let world = World::from_spec(&spec).unwrap();
    let domains: Vec<_> = spec.domains.iter().filter(|d| d.expect.is_some()).collect();
    assert!(domains.len() >= 25, "world.json covers S-01..S-25");
    let (resolver, _clock) = support::resolver(&world);
    let names: Vec<String> = domains
        .iter()
        .map(|d| d.lookup_name().to_string())
        .collect();
    let mut checked = 0;
    resolver.resolve_many(names, 8, |item| {
        let domain = domains[item.index];
        let label = format!(
            "{} ({})",
            domain.scenario.as_deref().unwrap_or(&domain.name),
            domain.name
        );
        let resolution = item.result.unwrap();
        support::check(&label, &resolution, domain.expect.as_ref().unwrap());
        checked += 1;
        ControlFlow::Continue(())
    });
    assert_eq!(checked, domains.len());
}
