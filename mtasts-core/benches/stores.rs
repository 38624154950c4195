//! Cache stores: reading one entry from SQLite and from Redis (what a fresh process does once
//! per domain), and cached `resolve` throughput with 1, 2 and 4 threads.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use mtasts_core::{
    Config, Domain, HickoryDns, MemoryStore, RedisStore, Resolver, Source, SqliteStore, Store,
};
use mtasts_testworld::RedisServer;

fn store_reads(c: &mut Criterion) {
    let now = SystemTime::now();
    let domain = Domain::new("d42.example").unwrap();
    let dir = std::env::temp_dir().join(format!("mtasts-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let sqlite = SqliteStore::open(dir.join("cache.db")).unwrap();
    for i in 0..1_000 {
        sqlite.put(common::entry(i, now)).unwrap();
    }
    c.bench_function("sqlite_get", |b| {
        b.iter(|| sqlite.get(black_box(&domain)).unwrap().unwrap())
    });
    match RedisServer::start() {
        Ok(server) => {
            let redis = RedisStore::connect(&server.url()).unwrap();
            for i in 0..1_000 {
                redis.put(common::entry(i, now)).unwrap();
            }
            c.bench_function("redis_get", |b| {
                b.iter(|| redis.get(black_box(&domain)).unwrap().unwrap())
            });
        }
        Err(e) => eprintln!("redis_get skipped: {e}"),
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Cached `resolve` from 1, 2 and 4 threads at once, each thread doing `iters` lookups: the
/// throughput (lookups per second) of all of them together, to compare with one thread
/// (issue 13, item 6: at least 1.8x at 2 threads on 2 cores).
///
/// `resolve_cached_threads`: the threads take turns along one scrambled order of 5,000 cached
/// domains, as an MTA's mix of recipient domains comes (in name order, one thread would be
/// helped by the prefetcher and threads in step would share its lines).
/// `resolve_cached_same_domain_threads`: every thread looks up one domain, so all share one
/// entry and one `Arc<CachedPolicy>`, whose reference count each answer takes.
fn threads(c: &mut Criterion) {
    let now = SystemTime::now();
    let store = Arc::new(MemoryStore::new());
    for i in 0..5_000 {
        store.put(common::entry(i, now)).unwrap();
    }
    // Nothing listens there: a cache miss would be an error, not a fast answer.
    let dns =
        HickoryDns::with_nameservers(&["127.0.0.1:9".parse().unwrap()], Duration::from_secs(1))
            .unwrap();
    let resolver = Resolver::builder(Config::default())
        .dns(Arc::new(dns))
        .store(store)
        .build()
        .unwrap();
    let names: Vec<String> = (0..5_000).map(|i| format!("d{i}.example")).collect();
    assert_eq!(
        resolver.resolve(&names[42]).unwrap().source(),
        Source::Cache
    );
    for (group, same) in [
        ("resolve_cached_threads", false),
        ("resolve_cached_same_domain_threads", true),
    ] {
        let mut group = c.benchmark_group(group);
        for threads in [1usize, 2, 4] {
            // One element per thread and iteration: criterion reports lookups per second.
            group.throughput(Throughput::Elements(threads as u64));
            group.bench_function(BenchmarkId::from_parameter(threads), |b| {
                b.iter_custom(|iters| {
                    let start = Instant::now();
                    std::thread::scope(|s| {
                        for t in 0..threads {
                            let (resolver, names) = (&resolver, &names);
                            s.spawn(move || {
                                for i in 0..iters as usize {
                                    // 7919 is prime to 5,000: a permutation.
                                    let n = if same { 42 } else { (i * threads + t) * 7919 };
                                    let name = &names[n % names.len()];
                                    black_box(resolver.resolve(name).unwrap());
                                }
                            });
                        }
                    });
                    start.elapsed()
                })
            });
        }
        group.finish();
    }
}

criterion_group!(benches, store_reads, threads);
criterion_main!(benches);
