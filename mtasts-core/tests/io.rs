//! The I/O layers on their own, against the test world's real DNS and HTTPS servers:
//! `HickoryDns` (R-DISC-1, R-DISC-2, R-DISC-7) and `HttpsFetcher` (R-FETCH-1 … R-FETCH-9).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mtasts_core::{
    DnsAnswer, DnsResolver, Domain, Error, HickoryDns, HttpsFetcher, MAX_POLICY_SIZE, MxRecord,
    PolicyFetcher, TrustRoots,
};
use mtasts_testworld::{
    Behaviour, BodyMode, CertCase, DomainSpec, HttpResponse, World, ZoneRecord,
};

fn dns(world: &World) -> HickoryDns {
    HickoryDns::with_nameservers(&[world.dns_addr()], Duration::from_secs(1)).unwrap()
}

// ---- DNS ----------------------------------------------------------------------------------

#[test]
fn txt_strings_are_joined_per_rr_and_the_ttl_kept() {
    let world = World::start().unwrap();
    let zone = world.zone();
    zone.set_records(
        "_mta-sts.d.test",
        vec![
            ZoneRecord::txt(["v=STSv1; ", "id=abc;"]).with_ttl(1234),
            ZoneRecord::txt(["other"]).with_ttl(4000),
        ],
    );
    match dns(&world).txt("_mta-sts.d.test").unwrap() {
        DnsAnswer::Found { mut records, ttl } => {
            records.sort();
            assert_eq!(records, [b"other".to_vec(), b"v=STSv1; id=abc;".to_vec()]);
            assert_eq!(ttl, 1234, "the smallest TTL of the answer");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn cname_chains_are_followed_and_their_ttl_counts() {
    let world = World::start().unwrap();
    let zone = world.zone();
    zone.set_records(
        "_mta-sts.d.test",
        vec![ZoneRecord::cname("_mta-sts.t.test").with_ttl(90)],
    );
    zone.set_records(
        "_mta-sts.t.test",
        vec![ZoneRecord::txt1("v=STSv1; id=x;").with_ttl(600)],
    );
    let answer = dns(&world).txt("_mta-sts.d.test").unwrap();
    assert_eq!(
        answer,
        DnsAnswer::Found {
            records: vec![b"v=STSv1; id=x;".to_vec()],
            ttl: 90
        }
    );
}

#[test]
fn nxdomain_and_nodata_are_answers_not_failures() {
    let world = World::start().unwrap();
    world
        .zone()
        .set_records("d.test", vec![ZoneRecord::a(Ipv4Addr::LOCALHOST)]);
    let dns = dns(&world);
    assert!(matches!(
        dns.txt("_mta-sts.nowhere.test").unwrap(),
        DnsAnswer::NxDomain { ttl: Some(_) }
    ));
    assert!(matches!(
        dns.txt("d.test").unwrap(),
        DnsAnswer::NoData { ttl: Some(_) }
    ));
}

#[test]
fn servfail_refused_and_timeouts_are_temporary_failures() {
    let world = World::start().unwrap();
    let zone = world.zone();
    zone.set_behaviour("servfail.test", Behaviour::ServFail);
    zone.set_behaviour("refused.test", Behaviour::Refused);
    zone.set_behaviour("timeout.test", Behaviour::Timeout);
    let dns = dns(&world);
    for name in ["servfail.test", "refused.test", "timeout.test"] {
        let started = Instant::now();
        match dns.txt(name) {
            Err(Error::DnsTemporary { name: got, reason }) => {
                assert_eq!(got, name);
                assert!(!reason.is_empty());
            }
            other => panic!("{name}: R-DISC-7 wants a temporary failure, got {other:?}"),
        }
        // The lookup deadline (1 s) bounds even a server that never answers.
        assert!(started.elapsed() < Duration::from_secs(5), "{name}");
    }
    // No server at all (nothing listens on the discard port).
    let nobody =
        HickoryDns::with_nameservers(&["127.0.0.1:9".parse().unwrap()], Duration::from_secs(1))
            .unwrap();
    assert!(matches!(
        nobody.txt("d.test"),
        Err(Error::DnsTemporary { .. })
    ));
}

#[test]
fn addresses_and_mx_records() {
    let world = World::start().unwrap();
    let zone = world.zone();
    zone.set_records(
        "mta-sts.d.test",
        vec![
            ZoneRecord::a(Ipv4Addr::new(127, 0, 0, 1)),
            ZoneRecord::aaaa(Ipv6Addr::LOCALHOST),
        ],
    );
    zone.set_records(
        "d.test",
        vec![
            ZoneRecord::mx(20, "MX2.D.test."),
            ZoneRecord::mx(10, "mx1.d.test"),
        ],
    );
    let dns = dns(&world);
    let mut ips = dns.ip("mta-sts.d.test").unwrap().records().unwrap();
    ips.sort();
    assert_eq!(
        ips,
        [
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(Ipv6Addr::LOCALHOST)
        ]
    );
    assert!(matches!(
        dns.ip("none.d.test").unwrap(),
        DnsAnswer::NxDomain { .. }
    ));
    let mx = dns.mx("d.test").unwrap().records().unwrap();
    assert_eq!(
        mx,
        [
            MxRecord {
                preference: 10,
                exchange: "mx1.d.test".into()
            },
            MxRecord {
                preference: 20,
                exchange: "mx2.d.test".into()
            }
        ]
    );
}

#[test]
fn an_empty_nameserver_list_is_a_configuration_error() {
    assert!(matches!(
        HickoryDns::with_nameservers(&[], Duration::from_secs(1)),
        Err(Error::Config { .. })
    ));
}

// ---- HTTPS fetch --------------------------------------------------------------------------

const D: &str = "fetch.mtasts.test";
const POLICY: &str = "version: STSv1\nmode: enforce\nmx: mail.example.com\nmax_age: 86400\n";

fn fetcher(world: &World, roots: TrustRoots) -> HttpsFetcher {
    HttpsFetcher::new(Arc::new(dns(world)), roots, Duration::from_secs(3))
        .unwrap()
        .with_port_override(Some(world.https_port()))
}

fn world_with(cert: CertCase) -> World {
    let world = World::start().unwrap();
    let mut spec = DomainSpec::new(D);
    spec.cert = cert;
    world.add_policy_domain(&spec).unwrap();
    world
}

fn fetch(world: &World, response: HttpResponse) -> Result<Vec<u8>, Error> {
    world.set_policy_response(D, response);
    let roots = TrustRoots::PemFile(world.ca_pem_path().to_path_buf());
    fetcher(world, roots).fetch(&Domain::new(D).unwrap())
}

#[test]
fn the_request_goes_to_the_well_known_url_with_sni() {
    let world = world_with(CertCase::Valid);
    let body = fetch(&world, HttpResponse::policy(POLICY)).unwrap();
    assert_eq!(body, POLICY.as_bytes());
    let log = world.https().request_log();
    assert_eq!(log.len(), 1);
    // R-FETCH-1, R-FETCH-3: exact URL, SNI and Host are the policy host.
    assert_eq!(log[0].method, "GET");
    assert_eq!(log[0].target, "/.well-known/mta-sts.txt");
    assert_eq!(log[0].sni, format!("mta-sts.{D}"));
    assert_eq!(
        log[0]
            .host_header
            .as_deref()
            .map(|h| h.split(':').next().unwrap_or(h)),
        Some(format!("mta-sts.{D}").as_str())
    );
}

#[test]
fn only_status_200_is_accepted_and_redirects_are_not_followed() {
    let world = world_with(CertCase::Valid);
    for status in [201, 204, 301, 302, 304, 307, 308, 404, 500, 503] {
        let response = if (300..400).contains(&status) {
            HttpResponse::redirect(status, "https://elsewhere.test/.well-known/mta-sts.txt")
        } else {
            HttpResponse::new(status)
                .with_content_type("text/plain")
                .with_body(POLICY)
        };
        match fetch(&world, response) {
            Err(e @ Error::PolicyFetch { .. }) => {
                assert!(e.to_string().contains(&status.to_string()), "{e}")
            }
            other => panic!("status {status}: R-FETCH-4/5 want a fetch error, got {other:?}"),
        }
    }
    // R-FETCH-5: one request per fetch, none to the redirect target.
    assert_eq!(world.https().request_log().len(), 10);
}

#[test]
fn media_type_must_be_text_plain() {
    let world = world_with(CertCase::Valid);
    for ok in [
        "text/plain",
        "TEXT/Plain",
        "text/plain; charset=utf-8",
        " text/plain ;x=y",
    ] {
        let r = fetch(&world, HttpResponse::policy(POLICY).with_content_type(ok));
        assert!(r.is_ok(), "{ok:?}: {r:?}");
    }
    for bad in [
        "text/html",
        "application/octet-stream",
        "text/plainx",
        "text",
    ] {
        let r = fetch(&world, HttpResponse::policy(POLICY).with_content_type(bad));
        assert!(
            matches!(r, Err(Error::InvalidPolicy { .. })),
            "{bad:?}: {r:?}"
        );
    }
    let mut missing = HttpResponse::policy(POLICY);
    missing.content_type = None;
    let r = fetch(&world, missing);
    assert!(
        matches!(r, Err(Error::InvalidPolicy { .. })),
        "R-FETCH-7: {r:?}"
    );
}

#[test]
fn body_limit_is_64_kib_whatever_the_framing() {
    let world = world_with(CertCase::Valid);
    let limit = usize::try_from(MAX_POLICY_SIZE).unwrap();
    let body = |n: usize| {
        let mut b = POLICY.as_bytes().to_vec();
        b.resize(n, b'#');
        b
    };
    for mode in [BodyMode::ContentLength, BodyMode::Chunked] {
        let at_limit = fetch(&world, HttpResponse::policy(body(limit)).with_mode(mode));
        assert_eq!(
            at_limit.unwrap().len(),
            limit,
            "{mode:?}: exactly 64 KiB is accepted"
        );
        let over = fetch(
            &world,
            HttpResponse::policy(body(limit + 1)).with_mode(mode),
        );
        assert!(
            matches!(over, Err(Error::PolicyFetch { .. })),
            "{mode:?}: {over:?}"
        );
    }
    // A Content-Length that understates the body: reading stops at the limit all the same.
    let lying = HttpResponse::policy(body(200_000)).with_mode(BodyMode::DeclaredLength(100));
    match fetch(&world, lying) {
        Ok(b) => assert!(b.len() <= limit, "read {} bytes", b.len()),
        Err(e) => assert!(matches!(e, Error::PolicyFetch { .. }), "{e:?}"),
    }
}

/// The client's buffers (32 KiB in, 8 KiB out) take a response header of up to the 16 KiB
/// limit; a larger one is a fetch error, never a partial read.
#[test]
fn a_response_header_up_to_16_kib_is_read_and_a_larger_one_refused() {
    let world = world_with(CertCase::Valid);
    let with_header = |n: usize| {
        let mut response = HttpResponse::policy(POLICY);
        response.headers.push(("X-Padding".into(), "p".repeat(n)));
        response
    };
    let body = fetch(&world, with_header(15_000)).unwrap();
    assert_eq!(body, POLICY.as_bytes());
    let refused = fetch(&world, with_header(40_000));
    assert!(
        matches!(refused, Err(Error::PolicyFetch { .. })),
        "{refused:?}"
    );
}

#[test]
fn certificate_failures_are_webpki_invalid() {
    for case in [
        CertCase::Untrusted,
        CertCase::WrongName,
        CertCase::Expired,
        CertCase::NotYetValid,
        CertCase::CnOnly,
    ] {
        let world = world_with(case);
        let r = fetch(&world, HttpResponse::policy(POLICY));
        assert!(
            matches!(r, Err(Error::PolicyCertificate { .. })),
            "{case:?}: R-FETCH-2 wants sts-webpki-invalid, got {r:?}"
        );
        assert_eq!(
            world.https().request_log().len(),
            0,
            "{case:?}: no request sent"
        );
    }
    for case in [CertCase::Wildcard, CertCase::Chain] {
        let world = world_with(case);
        assert!(
            fetch(&world, HttpResponse::policy(POLICY)).is_ok(),
            "{case:?}"
        );
    }
}

#[test]
fn bundled_roots_do_not_trust_the_test_ca() {
    let world = world_with(CertCase::Valid);
    world.set_policy_response(D, HttpResponse::policy(POLICY));
    let r = fetcher(&world, TrustRoots::Bundled).fetch(&Domain::new(D).unwrap());
    assert!(matches!(r, Err(Error::PolicyCertificate { .. })), "{r:?}");
}

#[test]
fn unreadable_trust_roots_fail_at_construction() {
    let world = World::start().unwrap();
    let dns: Arc<dyn DnsResolver> = Arc::new(dns(&world));
    let missing = TrustRoots::PemFile("/nonexistent/roots.pem".into());
    let r = HttpsFetcher::new(Arc::clone(&dns), missing, Duration::from_secs(1));
    assert!(matches!(r, Err(Error::Config { .. })), "{r:?}");
    let not_pem = std::env::temp_dir().join(format!("mtasts-not-pem-{}", std::process::id()));
    std::fs::write(&not_pem, "hello").unwrap();
    let r = HttpsFetcher::new(
        dns,
        TrustRoots::PemFile(not_pem.clone()),
        Duration::from_secs(1),
    );
    std::fs::remove_file(&not_pem).unwrap();
    assert!(matches!(r, Err(Error::Config { .. })), "{r:?}");
}

#[test]
fn a_server_that_stalls_is_cut_off_at_the_deadline() {
    let world = world_with(CertCase::Valid);
    let drip = HttpResponse::policy(POLICY).with_mode(BodyMode::Drip(Duration::from_millis(500)));
    let started = Instant::now();
    let r = fetch(&world, drip);
    assert!(matches!(r, Err(Error::PolicyFetch { .. })), "{r:?}");
    // R-FETCH-9: 3 s deadline; the whole body would take ~35 s.
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
}
