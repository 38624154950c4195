//! Cache stores: reading one entry from SQLite and from Redis (what a fresh process does once
//! per domain), and cached `resolve` throughput with two threads.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use criterion::{Criterion, criterion_group, criterion_main};
use mtasts_core::{
    Config, Domain, HickoryDns, MemoryStore, RedisStore, Resolver, SqliteStore, Store,
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

fn two_threads(c: &mut Criterion) {
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
    // Wall time per lookup while N threads look up at once, each doing `iters` lookups:
    // N / this is the lookups per second of them together.
    for threads in [2usize, 4] {
        c.bench_function(&format!("resolve_cached_{threads}_threads"), |b| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                std::thread::scope(|s| {
                    for t in 0..threads {
                        let (resolver, names) = (&resolver, &names);
                        s.spawn(move || {
                            for i in 0..iters as usize {
                                let name = &names[(i * threads + t) % names.len()];
                                black_box(resolver.resolve(name).unwrap());
                            }
                        });
                    }
                });
                start.elapsed()
            })
        });
    }
}

criterion_group!(benches, store_reads, two_threads);
criterion_main!(benches);
