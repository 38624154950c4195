//! Cache size per 100 000 entries: the SQLite file on disk, and this process's memory for the
//! in-memory store. Prints figures; not a timing benchmark.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::time::{Instant, SystemTime};

use mtasts_core::{MemoryStore, SqliteStore, Store};

const ENTRIES: usize = 100_000;

/// Resident memory of this process, in bytes (Linux).
fn rss() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn main() {
    // `cargo test --benches` runs bench targets once as tests: keep that quick.
    let entries = if std::env::args().any(|a| a == "--bench") {
        ENTRIES
    } else {
        1_000
    };
    let now = SystemTime::now();

    let before = rss();
    let memory = MemoryStore::new();
    for i in 0..entries {
        memory.put(common::entry(i, now)).unwrap();
    }
    let grown = rss().saturating_sub(before);
    println!(
        "memory store: {entries} entries, {:.1} MiB resident ({:.0} bytes/entry)",
        mib(grown),
        grown as f64 / entries as f64
    );

    let dir = std::env::temp_dir().join(format!("mtasts-size-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("cache.db");
    let sqlite = SqliteStore::open(&path).unwrap();
    let start = Instant::now();
    for i in 0..entries {
        sqlite.put(common::entry(i, now)).unwrap();
    }
    let took = start.elapsed();
    drop(sqlite); // checkpoints the WAL into the file
    let size: u64 = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok()?.metadata().ok())
        .map(|m| m.len())
        .sum();
    println!(
        "sqlite store: {entries} entries, {:.1} MiB on disk ({:.0} bytes/entry), written in {:.1} s ({:.0} puts/s)",
        mib(size),
        size as f64 / entries as f64,
        took.as_secs_f64(),
        entries as f64 / took.as_secs_f64()
    );
    let _ = std::fs::remove_dir_all(&dir);
}
