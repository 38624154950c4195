//! The hot path: `resolve` answered from the in-memory cache, single-threaded.
#![allow(clippy::unwrap_used, missing_docs)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use criterion::{Criterion, criterion_group, criterion_main};
use mtasts_core::{
    CachedPolicy, Config, DaneCache, Domain, Entry, HickoryDns, MemoryStore, Metrics, Policy,
    PolicyServer, Resolver, ServeSettings, Source, Store,
};

fn cached_resolve(c: &mut Criterion) {
    let now = SystemTime::now();
    let store = Arc::new(MemoryStore::new());
    // A few thousand other domains, so the lookup is not in a one-entry map.
    for i in 0..5_000 {
        let policy = Policy::parse(&format!(
            "version: STSv1\nmode: enforce\nmx: mx.d{i}.example\nmax_age: 86400\n"
        ))
        .unwrap();
        store
            .put(Entry {
                policy: Some(Arc::new(CachedPolicy {
                    id: "20240101T000000".into(),
                    policy: Arc::new(policy),
                    fetched_at: now,
                    expires_at: now + Duration::from_secs(86_400),
                })),
                next_check: now + Duration::from_secs(3_600),
                ..Entry::new(Domain::new(&format!("d{i}.example")).unwrap(), now)
            })
            .unwrap();
    }
    // Nothing listens there: a cache miss would show up as an error, not as a fast answer.
    let dns =
        HickoryDns::with_nameservers(&["127.0.0.1:9".parse().unwrap()], Duration::from_secs(1))
            .unwrap();
    let resolver = Resolver::builder(Config::default())
        .dns(Arc::new(dns))
        .store(store)
        .build()
        .unwrap();
    assert_eq!(
        resolver.resolve("d42.example").unwrap().source(),
        Source::Cache
    );

    c.bench_function("resolve_cached", |b| {
        b.iter(|| resolver.resolve(black_box("d42.example")).unwrap())
    });
    c.bench_function("resolve_cached_mixed_case", |b| {
        b.iter(|| resolver.resolve(black_box("D42.Example.")).unwrap())
    });
    // `mtasts serve`'s work for one cached request, from its payload to its netstring reply:
    // what an event loop does between a read and a write (DANE off, as nothing is cached for
    // it here).
    let mut settings = ServeSettings::default();
    settings.load_str("serve.dane = off\n", "bench").unwrap();
    let server = PolicyServer::new(
        Arc::new(resolver),
        settings,
        Arc::new(DaneCache::new()),
        Arc::new(Metrics::new()),
    );
    let mut out = Vec::with_capacity(256);
    c.bench_function("socketmap_answer_cached", |b| {
        b.iter(|| {
            out.clear();
            server
                .answer_cached(black_box(b"postfix d42.example"), Instant::now())
                .unwrap()
                .write_netstring(&mut out);
            out.len()
        })
    });
}

criterion_group!(benches, cached_resolve);
criterion_main!(benches);
