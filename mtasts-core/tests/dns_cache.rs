//! `HickoryDns`'s per-process state against the test world's DNS server: address and MX
//! answers cached by TTL (negative answers by the SOA's TTL), TXT and failures never, runtimes
//! shared by concurrent lookups (the forked child of S-41 is in dns_fork.rs).
#![allow(unsafe_code, clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, UNIX_EPOCH};

use hickory_proto::rr::RecordType;
use mtasts_core::{DnsAnswer, DnsResolver, HickoryDns, ManualClock};
use mtasts_testworld::{Behaviour, World, ZoneRecord};

fn dns(world: &World) -> (HickoryDns, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(
        UNIX_EPOCH + Duration::from_secs(1_800_000_000),
    ));
    let dns = HickoryDns::with_nameservers(&[world.dns_addr()], Duration::from_secs(2))
        .unwrap()
        .with_clock(clock.clone());
    (dns, clock)
}

fn a_count(world: &World, name: &str) -> u64 {
    world.dns().queries(name, RecordType::A)
}

#[test]
fn an_address_answer_is_cached_for_its_ttl() {
    let world = World::start().unwrap();
    world.zone().set_records(
        "host.cache.test",
        vec![ZoneRecord::a(Ipv4Addr::new(192, 0, 2, 1)).with_ttl(120)],
    );
    let (dns, clock) = dns(&world);
    let first = dns.ip("host.cache.test").unwrap();
    assert!(
        matches!(first, DnsAnswer::Found { ttl: 120, .. }),
        "{first:?}"
    );
    assert_eq!(a_count(&world, "host.cache.test"), 1);
    // Within the TTL: no query, the same answer (a clone shares the cache).
    clock.advance(Duration::from_secs(119));
    assert_eq!(dns.clone().ip("HOST.cache.test.").unwrap(), first);
    assert_eq!(a_count(&world, "host.cache.test"), 1);
    // Once the TTL has passed the server is asked again, and a change is seen.
    world.zone().set_records(
        "host.cache.test",
        vec![ZoneRecord::a(Ipv4Addr::new(192, 0, 2, 2)).with_ttl(120)],
    );
    clock.advance(Duration::from_secs(2));
    let second = dns.ip("host.cache.test").unwrap().records().unwrap();
    assert_eq!(second, [Ipv4Addr::new(192, 0, 2, 2)]);
    assert_eq!(a_count(&world, "host.cache.test"), 2);
}

#[test]
fn an_mx_answer_is_cached_and_a_txt_answer_is_not() {
    let world = World::start().unwrap();
    world
        .zone()
        .set_records("m.cache.test", vec![ZoneRecord::mx(10, "mx.m.cache.test")]);
    world.zone().set_records(
        "_mta-sts.m.cache.test",
        vec![ZoneRecord::txt1("v=STSv1; id=1;")],
    );
    let (dns, _clock) = dns(&world);
    for _ in 0..3 {
        assert!(dns.mx("m.cache.test").unwrap().records().is_some());
        assert!(
            dns.txt("_mta-sts.m.cache.test")
                .unwrap()
                .records()
                .is_some()
        );
    }
    assert_eq!(world.dns().queries("m.cache.test", RecordType::MX), 1);
    // R-CACHE-5: the STS record's TTL is kept by the policy cache; every TXT check asks.
    assert_eq!(
        world
            .dns()
            .queries("_mta-sts.m.cache.test", RecordType::TXT),
        3
    );
}

#[test]
fn nxdomain_is_cached_for_the_soa_ttl() {
    let world = World::start().unwrap();
    world.zone().set_negative_ttl(30);
    let (dns, clock) = dns(&world);
    for _ in 0..3 {
        let answer = dns.mx("gone.cache.test").unwrap();
        assert!(
            matches!(answer, DnsAnswer::NxDomain { ttl: Some(30) }),
            "{answer:?}"
        );
    }
    assert_eq!(world.dns().queries("gone.cache.test", RecordType::MX), 1);
    clock.advance(Duration::from_secs(31));
    dns.mx("gone.cache.test").unwrap();
    assert_eq!(world.dns().queries("gone.cache.test", RecordType::MX), 2);
}

#[test]
fn nodata_is_cached_and_a_zero_ttl_is_not() {
    let world = World::start().unwrap();
    world.zone().set_records("empty.cache.test", Vec::new());
    world.zone().set_records(
        "zero.cache.test",
        vec![ZoneRecord::a(Ipv4Addr::new(192, 0, 2, 9)).with_ttl(0)],
    );
    let (dns, _clock) = dns(&world);
    for _ in 0..2 {
        assert!(matches!(
            dns.mx("empty.cache.test").unwrap(),
            DnsAnswer::NoData { .. }
        ));
        assert!(dns.ip("zero.cache.test").unwrap().records().is_some());
    }
    assert_eq!(world.dns().queries("empty.cache.test", RecordType::MX), 1);
    assert_eq!(a_count(&world, "zero.cache.test"), 2, "TTL 0: never cached");
}

#[test]
fn a_temporary_failure_is_never_cached() {
    let world = World::start().unwrap();
    world
        .zone()
        .set_behaviour("flaky.cache.test", Behaviour::ServFail);
    let (dns, _clock) = dns(&world);
    assert!(dns.mx("flaky.cache.test").is_err());
    // R-DISC-7: the failure is not an answer; once the server answers, the answer is used.
    world.zone().set_records(
        "flaky.cache.test",
        vec![ZoneRecord::mx(5, "mx.flaky.cache.test")],
    );
    let answer = dns.mx("flaky.cache.test").unwrap().records().unwrap();
    assert_eq!(answer[0].exchange, "mx.flaky.cache.test");
}

#[test]
fn concurrent_lookups_from_many_threads_all_get_their_answers() {
    let world = World::start().unwrap();
    for i in 0..32 {
        world.zone().set_records(
            &format!("h{i}.cache.test"),
            vec![ZoneRecord::a(Ipv4Addr::new(192, 0, 2, i as u8))],
        );
    }
    let (dns, _clock) = dns(&world);
    let dns = Arc::new(dns);
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let dns = Arc::clone(&dns);
            thread::spawn(move || {
                for i in (t..32).step_by(8) {
                    let ips = dns.ip(&format!("h{i}.cache.test")).unwrap().records();
                    assert_eq!(ips.unwrap(), [Ipv4Addr::new(192, 0, 2, i as u8)]);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    for i in 0..32 {
        assert_eq!(a_count(&world, &format!("h{i}.cache.test")), 1);
    }
}
