//! The SQLite cache store against real files (R-CACHE-7): round trips, the merge rule, schema
//! versions, damaged and read-only files, and real processes: a stress test of 8 processes ×
//! 2 threads, `kill -9` in the middle of writes, and `fork()`.
//!
//! Tests that start processes re-run this test binary (`--exact <test>`) with an environment
//! variable telling the child what to do; a fork test first moves itself into such a child
//! of its own, so no other test thread of the harness is inside SQLite when it forks.
#![allow(unsafe_code, clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mtasts_core::{Backoff, CachedPolicy, Domain, Entry, Error, ResultType, SqliteStore, Store};
use support::wait_child;

// ---- fixtures ---------------------------------------------------------------------------------

/// A directory under the system temp dir, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let dir = std::env::temp_dir().join(format!(
            "mtasts-sqlite-{name}-{}-{nanos}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn path(&self) -> &Path {
        &self.0
    }

    fn db(&self) -> PathBuf {
        self.0.join("cache.db")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

const POLICY: &str =
    "version: STSv1\nmode: enforce\nmx: mx1.example.com\nmx: *.example.net\nmax_age: 86400\n";

/// A fixed instant plus `ms` milliseconds (the store keeps milliseconds).
fn at(ms: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(u64::try_from(1_790_000_000_000 + ms).unwrap())
}

fn millis(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH).unwrap().as_millis() as i64
}

fn domain(name: &str) -> Domain {
    Domain::new(name).unwrap()
}

fn policy(id: &str, fetched: SystemTime) -> Arc<CachedPolicy> {
    Arc::new(
        CachedPolicy::from_stored(
            id.into(),
            POLICY,
            fetched,
            fetched + Duration::from_secs(86400),
        )
        .unwrap(),
    )
}

fn entry(name: &str, policy: Option<Arc<CachedPolicy>>, now: SystemTime) -> Entry {
    Entry {
        policy,
        ..Entry::new(domain(name), now)
    }
}

fn open(path: &Path) -> SqliteStore {
    SqliteStore::open(path).unwrap()
}

/// `PRAGMA integrity_check` of the file, through its own connection.
fn integrity(path: &Path) -> String {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.busy_timeout(Duration::from_secs(10)).unwrap();
    conn.query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap()
}

fn cache_error(result: Result<impl std::fmt::Debug, Error>) -> String {
    match result {
        Err(Error::Cache { reason }) => reason,
        other => panic!("expected Error::Cache, got {other:?}"),
    }
}

/// Environment variable that tells a re-run of this binary which role to play.
const ROLE: &str = "MTASTS_SQLITE_TEST_ROLE";

/// The role this process was started for, if any (`role:argument`).
fn role(name: &str) -> Option<String> {
    let value = std::env::var(ROLE).ok()?;
    let (role, arg) = value.split_once(':')?;
    (role == name).then(|| arg.to_string())
}

/// This test binary, running only `test` with `role` set.
fn rerun(test: &str, role: &str) -> Command {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(ROLE, role);
    cmd
}

/// Forks; the child runs `body` and `_exit`s with its code (101 if it panicked).
fn fork(body: impl FnOnce() -> i32) -> libc::pid_t {
    // SAFETY: the caller runs alone in its process (`support::run_alone`), so the child does not
    // inherit locks held by other threads; the child never returns into the harness.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(body)).unwrap_or(101);
        // SAFETY: ends the child without running the parent's destructors or atexit handlers.
        unsafe { libc::_exit(code) };
    }
    pid
}

fn exit_code(status: i32) -> i32 {
    assert!(
        libc::WIFEXITED(status),
        "child died: wait status {status:#x}"
    );
    libc::WEXITSTATUS(status)
}

// ---- round trips and the merge rule -----------------------------------------------------------

#[test]
fn every_entry_field_survives_a_round_trip() {
    let dir = TempDir::new("roundtrip");
    let store = open(&dir.db());
    let text = "version: STSv1\r\nmode: testing\r\nmx: mx.example.org\r\nmax_age: 604800\r\nx-ext: kept\r\n";
    let full = Entry {
        domain: domain("bücher.example"),
        policy: Some(Arc::new(
            CachedPolicy::from_stored("id-20250101".into(), text, at(1), at(604_800_001)).unwrap(),
        )),
        next_check: at(3_600_123),
        backoff: Some(Backoff {
            id: "id-20250102".into(),
            until: at(300_456),
            result_type: ResultType::StsWebpkiInvalid,
            reason: "certificate expired".into(),
        }),
        failures: 7,
        last_used: at(-86_400_000),
    };
    let bare = Entry::new(domain("bare.example"), at(42));
    store.put(full.clone()).unwrap();
    store.put(bare.clone()).unwrap();

    let got = store.get(&full.domain).unwrap().unwrap();
    assert_eq!(*got, full);
    let cached = got.policy.as_ref().unwrap();
    assert_eq!(
        cached.policy.text(),
        text,
        "the raw text, verbatim (R-POL-8)"
    );
    assert_eq!(cached.policy.mode(), mtasts_core::Mode::Testing);
    assert!(cached.policy.matches("MX.example.org."));
    assert_eq!(*store.get(&bare.domain).unwrap().unwrap(), bare);
    assert_eq!(store.get(&domain("absent.example")).unwrap(), None);

    // Another connection (as another process would) reads the same.
    drop(store);
    let again = open(&dir.db());
    let mut all: Vec<Entry> = again
        .entries()
        .unwrap()
        .into_iter()
        .map(|e| Entry::clone(&e))
        .collect();
    all.sort_by(|a, b| a.domain.cmp(&b.domain));
    assert_eq!(all, vec![bare, full]);
    assert_eq!(again.location(), dir.db().display().to_string());
    assert_eq!(again.path(), dir.db());
}

#[test]
fn r_cache_7_the_newest_fetch_wins_through_sqlite_in_either_order() {
    let dir = TempDir::new("merge");
    // Two stores on one file: two independent connections, as two processes have.
    let a = open(&dir.db());
    let b = open(&dir.db());
    for (first, second, name) in [(&a, &b, "one.example"), (&b, &a, "two.example")] {
        let older = entry(name, Some(policy("old", at(10))), at(10));
        let newer = entry(name, Some(policy("new", at(20))), at(20));
        // The slow writer (holding the older fetch) commits last.
        second.put(newer).unwrap();
        first.put(older).unwrap();
        for store in [&a, &b] {
            let got = store.get(&domain(name)).unwrap().unwrap();
            let p = got.policy.as_ref().unwrap();
            assert_eq!((p.id.as_str(), p.fetched_at), ("new", at(20)), "{name}");
        }
    }
}

#[test]
fn a_write_without_policy_does_not_erase_a_valid_one() {
    let dir = TempDir::new("noerase");
    let a = open(&dir.db());
    let b = open(&dir.db());
    a.put(entry("keep.example", Some(policy("a", at(0))), at(0)))
        .unwrap();
    let mut blank = entry("keep.example", None, at(5_000));
    blank.next_check = at(9_000);
    b.put(blank).unwrap();
    let got = a.get(&domain("keep.example")).unwrap().unwrap();
    assert_eq!(got.policy.as_ref().unwrap().id, "a", "no downgrade");
    assert_eq!(got.next_check, at(9_000), "the later recheck time wins");
    assert_eq!(got.last_used, at(5_000));
}

#[test]
fn remove_purge_and_clear() {
    let dir = TempDir::new("purge");
    let store = open(&dir.db());
    for (i, name) in ["a.example", "b.example", "c.example", "d.example"]
        .iter()
        .enumerate()
    {
        store
            .put(entry(name, Some(policy("x", at(0))), at(i as i64 * 1000)))
            .unwrap();
    }
    assert!(store.remove(&domain("a.example")).unwrap());
    assert!(!store.remove(&domain("a.example")).unwrap());
    // Unused before at(2000): b (1000) goes, c (2000) and d (3000) stay (R-CACHE-8).
    assert_eq!(store.purge_unused(at(2000)).unwrap(), 1);
    let mut left: Vec<String> = store
        .entries()
        .unwrap()
        .iter()
        .map(|e| e.domain.to_string())
        .collect();
    left.sort();
    assert_eq!(left, ["c.example", "d.example"]);
    assert_eq!(store.clear().unwrap(), 2);
    assert!(store.entries().unwrap().is_empty());
}

#[test]
fn parent_directories_are_created_and_relative_paths_made_absolute() {
    let dir = TempDir::new("dirs");
    let deep = dir.path().join("a/b/c/cache.db");
    let store = open(&deep);
    assert!(deep.is_file());
    assert_eq!(store.path(), deep);

    let relative = PathBuf::from(format!("relative-cache-test-{}.db", std::process::id()));
    let relative = relative.as_path();
    let store = SqliteStore::open(relative).unwrap();
    assert!(store.path().is_absolute());
    assert_eq!(
        store.path(),
        std::env::current_dir().unwrap().join(relative)
    );
    drop(store);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", relative.display()));
    }
}

// ---- rows written by something else -----------------------------------------------------------

#[test]
fn a_row_that_no_longer_parses_is_an_error_when_read_and_skipped_when_listed() {
    let dir = TempDir::new("badrow");
    let store = open(&dir.db());
    store
        .put(entry("good.example", Some(policy("g", at(0))), at(0)))
        .unwrap();
    let conn = rusqlite::Connection::open(dir.db()).unwrap();
    conn.execute(
        "INSERT INTO entries (domain, policy_id, policy_text, fetched_at, expires_at, \
         next_check, last_used) VALUES ('bad.example', 'b', 'not a policy', 0, 1, 0, 0)",
        [],
    )
    .unwrap();
    conn.execute(
        "INSERT INTO entries (domain, next_check, last_used) VALUES ('-not a domain-', 0, 0)",
        [],
    )
    .unwrap();
    conn.execute(
        "INSERT INTO entries (domain, next_check, last_used) VALUES ('typed.example', 'x', 0)",
        [],
    )
    .unwrap();
    // Issue 10 (never fail open): a row that is there but cannot be used is an error, not
    // "no entry" (it may have held a policy); listing skips it.
    for d in ["bad.example", "typed.example"] {
        let e = store.get(&domain(d)).unwrap_err();
        assert_eq!(e.kind(), "cache", "{d}: {e}");
    }
    let all = store.entries().unwrap();
    assert_eq!(all.len(), 1, "only the good row: {all:?}");
    assert_eq!(all[0].domain, domain("good.example"));
    // A new fetch overwrites the broken row.
    store
        .put(entry("bad.example", Some(policy("b2", at(5))), at(5)))
        .unwrap();
    let fixed = store.get(&domain("bad.example")).unwrap().unwrap();
    assert_eq!(fixed.policy.as_ref().unwrap().id, "b2");
}

#[test]
fn an_unknown_result_type_drops_only_the_backoff() {
    let dir = TempDir::new("resulttype");
    let store = open(&dir.db());
    let mut e = entry("rt.example", Some(policy("p", at(0))), at(0));
    e.backoff = Some(Backoff {
        id: "q".into(),
        until: at(100),
        result_type: ResultType::StsPolicyFetchError,
        reason: "HTTP 500".into(),
    });
    store.put(e).unwrap();
    let conn = rusqlite::Connection::open(dir.db()).unwrap();
    conn.execute(
        "UPDATE entries SET backoff_result_type = 'sts-from-the-future'",
        [],
    )
    .unwrap();
    let got = store.get(&domain("rt.example")).unwrap().unwrap();
    assert_eq!(got.policy.as_ref().unwrap().id, "p");
    assert_eq!(got.backoff, None);
}

/// Issue 11: a row written by a newer mtasts (a column added without a schema bump, an
/// unknown result type) keeps its policy; only the backoff goes.
#[test]
fn a_row_from_a_newer_mtasts_keeps_its_policy() {
    let dir = TempDir::new("future");
    let store = open(&dir.db());
    let mut e = entry("future.example", Some(policy("a", at(0))), at(0));
    e.backoff = Some(Backoff {
        id: "b".into(),
        until: at(100),
        result_type: ResultType::StsPolicyFetchError,
        reason: "HTTP 500".into(),
    });
    store.put(e.clone()).unwrap();
    let conn = rusqlite::Connection::open(dir.db()).unwrap();
    conn.execute_batch(
        "ALTER TABLE entries ADD COLUMN added_later TEXT;
         UPDATE entries SET backoff_result_type = 'sts-from-the-future', added_later = 'x';",
    )
    .unwrap();
    let got = store.get(&domain("future.example")).unwrap().unwrap();
    assert_eq!(got.policy, e.policy, "the policy is kept");
    assert_eq!(got.backoff, None);
    assert_eq!(store.entries().unwrap().len(), 1);
    // This version's write merges onto it and keeps the policy.
    store.put(entry("future.example", None, at(1))).unwrap();
    let got = store.get(&domain("future.example")).unwrap().unwrap();
    assert_eq!(got.policy, e.policy);
}

/// A DNS-failure backoff (empty id, Backoff::DNS_FAILURE) is stored as '' and read back.
#[test]
fn a_dns_failure_backoff_round_trips() {
    let dir = TempDir::new("dnsfail");
    let store = open(&dir.db());
    let mut e = entry("dns.example", None, at(0));
    e.backoff = Some(Backoff {
        id: Backoff::DNS_FAILURE.into(),
        until: at(60_000),
        result_type: ResultType::StsPolicyFetchError,
        reason: "SERVFAIL".into(),
    });
    store.put(e.clone()).unwrap();
    let conn = rusqlite::Connection::open(dir.db()).unwrap();
    let id: Option<String> = conn
        .query_row("SELECT backoff_id FROM entries", [], |r| r.get(0))
        .unwrap();
    assert_eq!(id.as_deref(), Some(""));
    assert_eq!(*store.get(&domain("dns.example")).unwrap().unwrap(), e);
}

// ---- schema versions and files that are not (or no longer) ours -------------------------------

fn header(path: &Path) -> (i64, i32, Vec<String>) {
    let conn = rusqlite::Connection::open(path).unwrap();
    let version = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    let app = conn
        .pragma_query_value(None, "application_id", |r| r.get(0))
        .unwrap();
    let mut stmt = conn
        .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name")
        .unwrap();
    let tables = stmt
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    (version, app, tables)
}

#[test]
fn an_empty_file_and_a_version_0_database_get_schema_version_1() {
    let dir = TempDir::new("v0");
    let empty = dir.path().join("empty.db");
    std::fs::write(&empty, b"").unwrap();
    open(&empty).put(entry("a.example", None, at(0))).unwrap();
    assert_eq!(
        header(&empty),
        (1, 0x4d54_5354, vec!["entries".to_string()])
    );

    // An SQLite file with a header but nothing in it (user_version 0).
    let v0 = dir.path().join("v0.db");
    {
        let conn = rusqlite::Connection::open(&v0).unwrap();
        conn.pragma_update(None, "user_version", 0).unwrap();
        conn.execute_batch("VACUUM").unwrap();
    }
    assert!(std::fs::metadata(&v0).unwrap().len() > 0);
    open(&v0).put(entry("a.example", None, at(0))).unwrap();
    assert_eq!(header(&v0).0, 1);

    // Opening again is a no-op; the data stays.
    let store = open(&v0);
    assert!(store.get(&domain("a.example")).unwrap().is_some());
    assert_eq!(header(&v0).0, 1);
}

#[test]
fn a_file_from_a_newer_version_is_refused_and_left_untouched() {
    let dir = TempDir::new("newer");
    let path = dir.db();
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(
            "CREATE TABLE entries_v9 (domain TEXT PRIMARY KEY);
             PRAGMA application_id = 1297371988;
             PRAGMA user_version = 9;",
        )
        .unwrap();
    }
    let before = std::fs::read(&path).unwrap();
    let reason = cache_error(SqliteStore::open(&path));
    assert!(reason.contains(&path.display().to_string()), "{reason}");
    assert!(reason.contains("schema version 9, newer"), "{reason}");
    assert_eq!(std::fs::read(&path).unwrap(), before, "not modified");
    assert_eq!(header(&path).0, 9);
}

#[test]
fn another_programs_database_is_refused_and_left_untouched() {
    let dir = TempDir::new("foreign");
    let path = dir.path().join("app.db");
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch("CREATE TABLE mail (id INTEGER); PRAGMA user_version = 1;")
            .unwrap();
    }
    let before = std::fs::read(&path).unwrap();
    let reason = cache_error(SqliteStore::open(&path));
    assert!(reason.contains("not an mtasts cache"), "{reason}");
    assert_eq!(std::fs::read(&path).unwrap(), before, "not modified");
    assert!(
        !dir.path().join("app.db-wal").exists(),
        "journal mode unchanged"
    );
}

#[test]
fn a_file_that_is_not_sqlite_is_a_cache_error_and_kept() {
    let dir = TempDir::new("corrupt");
    let path = dir.db();
    let garbage: Vec<u8> = (0..8192u32).map(|i| (i * 7 + 3) as u8).collect();
    std::fs::write(&path, &garbage).unwrap();
    let reason = cache_error(SqliteStore::open(&path));
    assert!(reason.contains(&path.display().to_string()), "{reason}");
    assert!(
        reason.contains("not an SQLite database or is damaged"),
        "{reason}"
    );
    assert_eq!(
        std::fs::read(&path).unwrap(),
        garbage,
        "the file is kept as it was"
    );
}

#[test]
fn a_damaged_cache_gives_cache_errors_not_panics() {
    let dir = TempDir::new("damaged");
    let path = dir.db();
    {
        let store = open(&path);
        for i in 0..300 {
            store
                .put(entry(
                    &format!("d{i}.example"),
                    Some(policy("p", at(i))),
                    at(i),
                ))
                .unwrap();
        }
    }
    // Checkpointed into the main file by the last close; now overwrite its second half.
    let mut bytes = std::fs::read(&path).unwrap();
    assert!(bytes.len() > 8192, "{}", bytes.len());
    let half = bytes.len() / 2;
    bytes[half..].iter_mut().for_each(|b| *b = 0xA5);
    std::fs::write(&path, &bytes).unwrap();
    for suffix in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    match SqliteStore::open(&path) {
        Err(e) => {
            cache_error(Err::<(), _>(e));
        }
        Ok(store) => {
            let reason = cache_error(store.entries());
            assert!(reason.contains(&path.display().to_string()), "{reason}");
        }
    }
}

#[test]
fn a_location_that_cannot_be_written_is_a_clear_cache_error() {
    // A directory that cannot be created, even by root.
    let reason = cache_error(SqliteStore::open("/proc/self/mtasts-no-such-dir/cache.db"));
    assert!(
        reason.contains("cannot create the cache directory"),
        "{reason}"
    );

    // SAFETY: plain libc call.
    if unsafe { libc::geteuid() } == 0 {
        eprintln!("running as root: file permissions do not apply, read-only file cases skipped");
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    let dir = TempDir::new("readonly");
    let path = dir.db();
    drop(open(&path));
    for suffix in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o444)).unwrap();
    let reason = cache_error(SqliteStore::open(&path));
    assert!(reason.contains("writable"), "{reason}");

    let ro_dir = dir.path().join("ro");
    std::fs::create_dir(&ro_dir).unwrap();
    std::fs::set_permissions(&ro_dir, std::fs::Permissions::from_mode(0o555)).unwrap();
    let reason = cache_error(SqliteStore::open(ro_dir.join("cache.db")));
    assert!(reason.contains("writable"), "{reason}");
    std::fs::set_permissions(&ro_dir, std::fs::Permissions::from_mode(0o755)).unwrap();
}

// ---- many processes -----------------------------------------------------------------------------

const STRESS_PROCESSES: usize = 8;
const STRESS_THREADS: usize = 2;
const STRESS_DOMAINS: usize = 50;
const STRESS_TIME: Duration = Duration::from_secs(3);

fn stress_domain(i: usize) -> String {
    format!("d{i:02}.stress.example")
}

/// One stress process: 2 threads doing gets and puts over the shared domains until the
/// deadline. Each successful put of a policy is logged as `domain fetched_ms id`; a put
/// without a policy as `domain - -`. Prints `STRESS gets puts errors max_put_us`.
fn stress_worker(path: &Path, worker: usize, log_dir: &Path) {
    let store = Arc::new(open(path));
    let base = millis(SystemTime::now()) - 3_600_000;
    let threads: Vec<_> = (0..STRESS_THREADS)
        .map(|t| {
            let store = Arc::clone(&store);
            let log = log_dir.join(format!("w{worker}-t{t}.log"));
            std::thread::spawn(move || {
                let writer = (worker * STRESS_THREADS + t) as i64; // 0..16: unique per thread
                let mut out = std::io::BufWriter::new(std::fs::File::create(log).unwrap());
                let (mut gets, mut puts, mut errors, mut max_put) = (0u64, 0u64, 0u64, 0u128);
                // What this thread last wrote or read per domain: reads never go back in time.
                let mut seen: HashMap<usize, i64> = HashMap::new();
                let mut rng = (writer as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
                let started = Instant::now();
                let mut seq = 0i64;
                while started.elapsed() < STRESS_TIME {
                    rng ^= rng << 13;
                    rng ^= rng >> 7;
                    rng ^= rng << 17;
                    let d = (rng % STRESS_DOMAINS as u64) as usize;
                    let name = stress_domain(d);
                    let now = SystemTime::now();
                    match (rng >> 32) % 10 {
                        0..=4 => match store.get(&domain(&name)) {
                            Ok(got) => {
                                gets += 1;
                                let fetched = got
                                    .as_ref()
                                    .and_then(|e| e.policy.as_ref())
                                    .map(|p| millis(p.fetched_at));
                                if let (Some(&before), Some(now)) = (seen.get(&d), fetched)
                                    && now < before
                                {
                                    errors += 1;
                                    eprintln!("{name}: read {now} after {before}");
                                }
                                if fetched.is_none() && seen.contains_key(&d) {
                                    errors += 1;
                                    eprintln!("{name}: policy vanished");
                                }
                                if let Some(f) = fetched {
                                    seen.insert(d, f);
                                }
                            }
                            Err(e) => {
                                errors += 1;
                                eprintln!("get {name}: {e}");
                            }
                        },
                        5 => {
                            let t0 = Instant::now();
                            match store.put(entry(&name, None, now)) {
                                Ok(()) => {
                                    puts += 1;
                                    max_put = max_put.max(t0.elapsed().as_micros());
                                    writeln!(out, "{name} - -").unwrap();
                                }
                                Err(e) => {
                                    errors += 1;
                                    eprintln!("put {name}: {e}");
                                }
                            }
                        }
                        _ => {
                            seq += 1;
                            // Distinct across all writers, increasing per writer.
                            let fetched_ms = base + seq * 16 + writer;
                            let id = format!("w{writer}s{seq}");
                            let fetched = UNIX_EPOCH + Duration::from_millis(fetched_ms as u64);
                            let t0 = Instant::now();
                            match store.put(entry(&name, Some(policy(&id, fetched)), now)) {
                                Ok(()) => {
                                    puts += 1;
                                    max_put = max_put.max(t0.elapsed().as_micros());
                                    writeln!(out, "{name} {fetched_ms} {id}").unwrap();
                                    let e = seen.entry(d).or_insert(fetched_ms);
                                    *e = (*e).max(fetched_ms);
                                }
                                Err(e) => {
                                    errors += 1;
                                    eprintln!("put {name}: {e}");
                                }
                            }
                        }
                    }
                }
                out.flush().unwrap();
                (gets, puts, errors, max_put)
            })
        })
        .collect();
    let (mut gets, mut puts, mut errors, mut max_put) = (0, 0, 0, 0);
    for t in threads {
        let (g, p, e, m) = t.join().unwrap();
        gets += g;
        puts += p;
        errors += e;
        max_put = max_put.max(m);
    }
    println!("STRESS {gets} {puts} {errors} {max_put}");
}

#[test]
fn stress_worker_role() {
    // Only does something when started by the stress test.
    if let Some(arg) = role("stress") {
        let mut parts = arg.split('|');
        let path = PathBuf::from(parts.next().unwrap());
        let worker: usize = parts.next().unwrap().parse().unwrap();
        let logs = PathBuf::from(parts.next().unwrap());
        stress_worker(&path, worker, &logs);
    }
}

#[test]
fn r_cache_7_stress_8_processes_x_2_threads_no_errors_no_corruption_no_lost_entries() {
    let dir = TempDir::new("stress");
    // Not created beforehand: the workers race to create the file and its schema.
    let path = dir.path().join("new/cache.db");
    let logs = dir.path().join("logs");
    std::fs::create_dir(&logs).unwrap();
    let children: Vec<_> = (0..STRESS_PROCESSES)
        .map(|w| {
            rerun(
                "stress_worker_role",
                &format!("stress:{}|{w}|{}", path.display(), logs.display()),
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
        })
        .collect();
    let (mut gets, mut puts, mut errors, mut max_put) = (0u64, 0u64, 0u64, 0u128);
    for child in children {
        let out = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "worker failed: {stdout}{stderr}");
        let line = stdout
            .lines()
            .find_map(|l| l.split_once("STRESS ").map(|(_, counts)| counts))
            .unwrap_or_else(|| panic!("no result from worker: {stdout}{stderr}"));
        let n: Vec<u128> = line.split(' ').map(|x| x.parse().unwrap()).collect();
        gets += n[0] as u64;
        puts += n[1] as u64;
        errors += n[2] as u64;
        max_put = max_put.max(n[3]);
        if n[2] > 0 {
            eprintln!("worker errors:\n{stderr}");
        }
    }

    // What was written: per domain, the greatest fetched_at and its id.
    let mut written: HashMap<String, Option<(i64, String)>> = HashMap::new();
    let mut records = 0;
    for file in std::fs::read_dir(&logs).unwrap() {
        for line in std::fs::read_to_string(file.unwrap().path())
            .unwrap()
            .lines()
        {
            records += 1;
            let mut f = line.split(' ');
            let (name, fetched, id) = (f.next().unwrap(), f.next().unwrap(), f.next().unwrap());
            let best = written.entry(name.to_string()).or_insert(None);
            if fetched != "-" {
                let fetched: i64 = fetched.parse().unwrap();
                if best.as_ref().is_none_or(|(b, _)| fetched > *b) {
                    *best = Some((fetched, id.to_string()));
                }
            }
        }
    }
    eprintln!(
        "stress: {STRESS_PROCESSES} processes x {STRESS_THREADS} threads, {} s: {gets} gets, \
         {puts} puts ({records} logged), {errors} errors, slowest put {max_put} us, \
         {} domains written",
        STRESS_TIME.as_secs(),
        written.len()
    );
    assert_eq!(errors, 0, "errors reached callers");
    assert_eq!(records as u64, puts);
    assert!(gets > 0 && puts > 0);

    assert_eq!(integrity(&path), "ok");
    let store = open(&path);
    assert_eq!(store.entries().unwrap().len(), written.len());
    for (name, best) in &written {
        let got = store
            .get(&domain(name))
            .unwrap()
            .unwrap_or_else(|| panic!("{name} was lost"));
        match best {
            Some((fetched, id)) => {
                let p = got
                    .policy
                    .as_ref()
                    .unwrap_or_else(|| panic!("{name}: policy lost"));
                assert_eq!((millis(p.fetched_at), &p.id), (*fetched, id), "{name}");
            }
            None => assert!(got.policy.is_none(), "{name}"),
        }
    }
}

#[test]
fn create_role() {
    if let Some(arg) = role("create") {
        let (path, worker) = arg.split_once('|').unwrap();
        let store = open(Path::new(path));
        store
            .put(entry(&format!("w{worker}.create.example"), None, at(0)))
            .unwrap();
    }
}

/// Processes opening a file that does not exist yet, all at once: one creates the schema,
/// none sees it half made.
#[test]
fn processes_racing_to_create_the_file_all_succeed() {
    let dir = TempDir::new("create");
    for round in 0..5 {
        let path = dir.path().join(format!("r{round}/cache.db"));
        let children: Vec<_> = (0..8)
            .map(|w| {
                rerun("create_role", &format!("create:{}|{w}", path.display()))
                    .stdout(Stdio::null())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for child in children {
            let out = child.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "round {round}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        assert_eq!(open(&path).entries().unwrap().len(), 8);
        assert_eq!(header(&path).0, 1);
    }
}

// ---- kill -9 ------------------------------------------------------------------------------------

#[test]
fn kill_writer_role() {
    if let Some(path) = role("kill") {
        let store = open(Path::new(&path));
        let stdout = std::io::stdout();
        let started = Instant::now();
        let mut i = 0u64;
        // Bounded, in case the parent is gone.
        while started.elapsed() < Duration::from_secs(60) {
            let name = format!("k{i}.kill.example");
            store
                .put(entry(
                    &name,
                    Some(policy(&format!("id{i}"), at(i as i64))),
                    at(0),
                ))
                .unwrap();
            let mut out = stdout.lock();
            writeln!(out, "COMMITTED {name}").unwrap();
            out.flush().unwrap();
            i += 1;
        }
    }
}

#[test]
fn kill_9_in_the_middle_of_writes_keeps_every_committed_entry() {
    let dir = TempDir::new("kill");
    let path = dir.db();
    for round in 0..3 {
        let mut child = rerun("kill_writer_role", &format!("kill:{}", path.display()))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                // The harness prints its "test ... " prefix on the same line as the first.
                let Some((_, name)) = line.split_once("COMMITTED ") else {
                    continue;
                };
                if tx.send(name.to_string()).is_err() {
                    break;
                }
            }
        });
        let mut committed = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        while committed.len() < 200 + round * 150 {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => committed.push(line),
                Err(_) => {
                    child.kill().unwrap();
                    panic!("the writer stalled after {} entries", committed.len());
                }
            }
        }
        child.kill().unwrap(); // SIGKILL
        let status = child.wait().unwrap();
        assert!(!status.success(), "{status}");
        reader.join().unwrap();
        // Lines printed before the kill but not yet read were committed too.
        committed.extend(rx.try_iter());

        assert_eq!(integrity(&path), "ok", "round {round}");
        let store = open(&path);
        for name in &committed {
            let got = store
                .get(&domain(name))
                .unwrap()
                .unwrap_or_else(|| panic!("committed {name} is missing after kill -9"));
            assert!(got.policy.is_some(), "{name}");
        }
        eprintln!(
            "kill -9 round {round}: {} reported entries all present",
            committed.len()
        );
    }
}

// ---- fork() (S-41) ----------------------------------------------------------------------------

#[test]
fn s41_a_forked_child_uses_the_store_and_the_parent_sees_its_write() {
    if support::run_alone("s41_a_forked_child_uses_the_store_and_the_parent_sees_its_write") {
        return;
    }
    let dir = TempDir::new("fork");
    let store = open(&dir.db());
    store
        .put(entry("parent.example", Some(policy("p", at(0))), at(0)))
        .unwrap();
    assert!(store.get(&domain("parent.example")).unwrap().is_some());

    let pid = fork(|| {
        let Ok(Some(inherited)) = store.get(&domain("parent.example")) else {
            return 2;
        };
        if inherited.policy.as_ref().map(|p| p.id.as_str()) != Some("p") {
            return 3;
        }
        if store
            .put(entry("child.example", Some(policy("c", at(1))), at(1)))
            .is_err()
        {
            return 4;
        }
        match store.get(&domain("child.example")) {
            Ok(Some(_)) => 0,
            _ => 5,
        }
    });
    assert_eq!(exit_code(wait_child(pid, Duration::from_secs(30))), 0);

    let got = store.get(&domain("child.example")).unwrap().unwrap();
    assert_eq!(got.policy.as_ref().unwrap().id, "c");
    // The parent's connections still work.
    store
        .put(entry("after.example", Some(policy("a", at(2))), at(2)))
        .unwrap();
    assert_eq!(store.entries().unwrap().len(), 3);
    drop(store);
    assert_eq!(integrity(&dir.db()), "ok");
}

/// The parent closes its cache (or exits) while a child it forked keeps writing. If the
/// child kept SQLite's inherited lock records, the parent's close would checkpoint and delete
/// the WAL under it: commits lost and the file corrupt.
#[test]
fn s41_the_parent_closing_its_store_does_not_lose_the_childs_writes() {
    if support::run_alone("s41_the_parent_closing_its_store_does_not_lose_the_childs_writes") {
        return;
    }
    let dir = TempDir::new("forkclose");
    let path = dir.db();
    let store = open(&path);
    store
        .put(entry("parent.example", Some(policy("p", at(0))), at(0)))
        .unwrap();
    let mut pipe = [0; 2];
    // SAFETY: valid pointer to two ints.
    assert_eq!(unsafe { libc::pipe(pipe.as_mut_ptr()) }, 0);
    let [read_end, write_end] = pipe;
    let pid = fork(|| {
        // Start using the store, then wait until the parent has closed its own.
        if store
            .get(&domain("parent.example"))
            .ok()
            .flatten()
            .is_none()
        {
            return 2;
        }
        let mut byte = 0u8;
        // SAFETY: reads one byte into a valid buffer from our pipe.
        if unsafe { libc::read(read_end, (&raw mut byte).cast(), 1) } != 1 {
            return 3;
        }
        for i in 0..500 {
            let name = format!("c{i}.example");
            if store
                .put(entry(&name, Some(policy("c", at(i))), at(i)))
                .is_err()
            {
                return 4;
            }
        }
        0
    });
    drop(store); // the parent's last connection: SQLite checkpoints on close
    // SAFETY: writes one byte from a valid buffer to our pipe.
    assert_eq!(
        unsafe { libc::write(write_end, [1u8].as_ptr().cast(), 1) },
        1
    );
    assert_eq!(exit_code(wait_child(pid, Duration::from_secs(60))), 0);

    assert_eq!(integrity(&path), "ok");
    let store = open(&path);
    assert_eq!(
        store.entries().unwrap().len(),
        501,
        "every commit of the child is kept"
    );
}

/// A child forked while another thread was inside a store call must not trust SQLite's
/// inherited state: it reports a cache error (the engine then works without the cache).
#[test]
fn a_child_forked_during_another_threads_call_refuses_the_cache() {
    if support::run_alone("a_child_forked_during_another_threads_call_refuses_the_cache") {
        return;
    }
    let dir = TempDir::new("forkmid");
    let path = dir.db();
    let store = Arc::new(open(&path));
    // Hold the write lock elsewhere so that a put waits inside SQLite.
    let mut blocker = rusqlite::Connection::open(&path).unwrap();
    let tx = blocker
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .unwrap();
    let writer = {
        let store = Arc::clone(&store);
        std::thread::spawn(move || store.put(entry("w.example", None, at(0))))
    };
    std::thread::sleep(Duration::from_millis(300));
    let pid = fork(|| match store.get(&domain("w.example")) {
        Err(Error::Cache { reason }) if reason.contains("forked") => 0,
        Err(_) => 2,
        Ok(_) => 3,
    });
    let status = wait_child(pid, Duration::from_secs(30));
    tx.commit().unwrap();
    writer.join().unwrap().unwrap();
    assert_eq!(exit_code(status), 0);
    assert!(store.get(&domain("w.example")).unwrap().is_some());
}
