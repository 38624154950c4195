//! Shared fixture for the scenario tests: a resolver pointed at a hermetic test world.
#![allow(dead_code, unsafe_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mtasts_core::{
    AppliedPolicy, CacheLocation, Config, Domain, Error, ManualClock, Policy, Resolution, Resolver,
    Source, TrustRoots, UtcDay,
};
use mtasts_testworld::{DomainSpec, Expect, ExpectedMode, RedisServer, World, WorldSpec};

/// A fixed start time for tests that move the clock.
pub fn t0() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_790_000_000)
}

/// The configuration that points a resolver at `world`.
pub fn config(world: &World) -> Config {
    let mut config = Config::default();
    config.nameservers = vec![world.dns_addr()];
    config.trust_roots = TrustRoots::PemFile(world.ca_pem_path().to_path_buf());
    config.policy_port = Some(world.https_port());
    config.fetch_timeout = Duration::from_secs(3);
    config.dns_timeout = Duration::from_secs(2);
    config
}

/// A resolver against `world`, with its own empty in-memory cache and a manual clock at t0.
pub fn resolver(world: &World) -> (Resolver, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(t0()));
    let resolver = Resolver::builder(config(world))
        .clock(clock.clone())
        .build()
        .expect("resolver");
    (resolver, clock)
}

/// Where a test's resolver keeps its cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// This process's memory.
    Memory,
    /// A SQLite file in a fresh temporary directory.
    Sqlite,
    /// A real redis-server started for the test.
    Redis,
}

/// Keeps a backend's resources (temporary directory, redis-server) alive for a test.
pub struct BackendGuard {
    dir: Option<PathBuf>,
    redis: Option<RedisServer>,
    /// The cache location string the resolver was built with.
    pub location: CacheLocation,
}

impl BackendGuard {
    /// The redis-server of a [`Backend::Redis`] guard, for writing raw data into it.
    pub fn redis(&self) -> Option<&RedisServer> {
        self.redis.as_ref()
    }

    /// The same, to stop or restart it.
    pub fn redis_mut(&mut self) -> Option<&mut RedisServer> {
        self.redis.as_mut()
    }
}

impl Drop for BackendGuard {
    fn drop(&mut self) {
        drop(self.redis.take());
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// A fresh, empty temporary directory (removed by the caller).
pub fn temp_dir(tag: &str) -> PathBuf {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "mtasts-test-{tag}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

impl Backend {
    /// Prepares the backend: the cache location to configure, and what keeps it alive.
    pub fn prepare(self) -> BackendGuard {
        match self {
            Backend::Memory => BackendGuard {
                dir: None,
                redis: None,
                location: CacheLocation::Memory,
            },
            Backend::Sqlite => {
                let dir = temp_dir("sqlite");
                BackendGuard {
                    location: CacheLocation::sqlite(dir.join("cache.db")),
                    dir: Some(dir),
                    redis: None,
                }
            }
            Backend::Redis => {
                let redis = RedisServer::start().expect("redis-server (run scripts/install-deps)");
                BackendGuard {
                    location: redis.url().parse().expect("redis URL"),
                    dir: None,
                    redis: Some(redis),
                }
            }
        }
    }
}

/// A resolver against `world` with its cache on `backend` and a manual clock at t0.
pub fn resolver_on(world: &World, backend: Backend) -> (Resolver, Arc<ManualClock>, BackendGuard) {
    let guard = backend.prepare();
    let (resolver, clock) = resolver_at(world, &guard.location);
    (resolver, clock, guard)
}

/// A resolver against `world` with its cache at `location` and a manual clock at t0 (a
/// second call with the same location is a second "process" sharing the cache).
pub fn resolver_at(world: &World, location: &CacheLocation) -> (Resolver, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(t0()));
    let mut config = config(world);
    config.cache = location.clone();
    let resolver = Resolver::builder(config)
        .clock(clock.clone())
        .build()
        .expect("resolver");
    (resolver, clock)
}

/// The bundled scenario domains for a row of docs/scenarios.md (e.g. `S-01`); most rows have one,
/// some (S-08: SERVFAIL and timeout) several.
pub fn scenario_domains(id: &str) -> Vec<DomainSpec> {
    let spec = WorldSpec::bundled().expect("world.json");
    let found: Vec<DomainSpec> = spec.scenario(id).cloned().collect();
    assert!(!found.is_empty(), "world.json has no domain for {id}");
    found
}

/// The one bundled scenario domain of a row.
pub fn scenario(id: &str) -> DomainSpec {
    let mut found = scenario_domains(id);
    assert_eq!(
        found.len(),
        1,
        "world.json must have exactly one domain for {id}"
    );
    found.remove(0)
}

/// Starts a world holding the row's domains, resolves each from an empty cache, and checks
/// the outcome against the domain's `expect` block. Returns the first domain's resolution for
/// extra checks.
pub fn run_scenario(id: &str) -> (Resolution, World, DomainSpec) {
    let domains = scenario_domains(id);
    let world = World::start().expect("world");
    let mut first = None;
    for domain in domains {
        world.add_policy_domain(&domain).expect("domain");
        let (resolver, _clock) = resolver(&world);
        let resolution = resolver.resolve(domain.lookup_name()).expect("resolve");
        let expect = domain.expect.clone().expect("expect block");
        let label = format!("{id} ({})", domain.name);
        check(&label, &resolution, &expect);
        if let Some(n) = expect.https_requests {
            assert_eq!(
                world.policy_requests(&domain.name),
                n,
                "{label}: HTTPS requests"
            );
        }
        first.get_or_insert((resolution, domain));
    }
    let (resolution, domain) = first.expect("at least one domain");
    (resolution, world, domain)
}

/// Asserts that `resolution` is what `expect` says.
pub fn check(id: &str, resolution: &Resolution, expect: &Expect) {
    let mode = resolution.policy().map(|p| p.mode().as_str());
    let want_mode = expect.policy.map(|m| match m {
        ExpectedMode::Enforce => "enforce",
        ExpectedMode::Testing => "testing",
        ExpectedMode::None => "none",
    });
    assert_eq!(mode, want_mode, "{id}: policy mode ({resolution:?})");
    let source = match expect.source {
        mtasts_testworld::Source::None => Source::NoPolicy,
        mtasts_testworld::Source::Fetched => Source::Fetched,
        mtasts_testworld::Source::Unavailable => Source::Unavailable,
    };
    assert_eq!(resolution.source(), source, "{id}: source ({resolution:?})");
    let result_type = resolution
        .failure()
        .and_then(Error::result_type)
        .map(|t| t.as_str());
    assert_eq!(
        result_type,
        expect.result_type.as_deref(),
        "{id}: result type ({resolution:?})"
    );
    if expect.dns_temporary {
        assert!(
            matches!(resolution.failure(), Some(Error::DnsTemporary { .. })),
            "{id}: a temporary DNS failure must be reported as such ({resolution:?})"
        );
    }
    if let Some(want) = &expect.policy_id {
        let id_got = resolution.cached_policy().map(|c| c.id.as_str());
        assert_eq!(id_got, Some(want.as_str()), "{id}: policy id");
    }
    if let Some(text) = &expect.raw_contains {
        let raw = resolution.policy().map(|p| p.text()).unwrap_or_default();
        assert!(
            raw.contains(text.as_str()),
            "{id}: raw policy {raw:?} lacks {text:?}"
        );
    }
}

/// Environment variable set in a test binary re-run by [`run_alone`].
const ALONE: &str = "MTASTS_TEST_ALONE";

/// Runs the calling test `test` again in a process of its own, where no other test's thread
/// runs when it forks (a fork copies a lock another thread holds into the child, which then
/// waits for it for ever), and checks it passed there; true when the caller should return
/// (it ran elsewhere), false in that process.
pub fn run_alone(test: &str) -> bool {
    if std::env::var_os(ALONE).is_some() {
        return false;
    }
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(ALONE, "1")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    eprint!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        out.status.success(),
        "{test} failed in its own process ({})",
        out.status
    );
    assert!(
        stdout.contains("1 passed"),
        "{test} did not run in its own process"
    );
    true
}

/// Waits for a forked child, killing it after `limit` (a hang fails the test instead of
/// hanging it); returns its wait status.
pub fn wait_child(pid: libc::pid_t, limit: Duration) -> i32 {
    let deadline = Instant::now() + limit;
    let mut status = 0;
    loop {
        // SAFETY: plain libc call on our own child's pid with a valid status pointer.
        let done = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        if done == pid {
            return status;
        }
        assert!(done == 0, "waitpid failed");
        if Instant::now() > deadline {
            // SAFETY: as above.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, &mut status, 0);
            }
            panic!("the forked child hung");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A test world serving an enforce policy for each of `names`.
pub fn world_with(names: &[String]) -> World {
    let world = World::start().unwrap();
    for name in names {
        world.add_policy_domain(&DomainSpec::new(name)).unwrap();
    }
    world
}

/// `n` domain names of the batch tests: `b000.batch.test`, `b001.batch.test`, …
pub fn batch_names(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("b{i:03}.batch.test")).collect()
}

/// The TLS-RPT tests' enforce policy.
pub const ENFORCE: &str = "version: STSv1\nmode: enforce\nmx: *.example.com\nmax_age: 86400\n";
/// The TLS-RPT tests' testing policy.
pub const TESTING: &str =
    "version: STSv1\nmode: testing\nmx: mx1.example.com\nmx: mx2.example.com\nmax_age: 604800\n";

/// The TLS-RPT tests' day.
pub fn day() -> UtcDay {
    "2026-12-01".parse().unwrap()
}

/// `name` as a domain.
pub fn domain(name: &str) -> Domain {
    Domain::new(name).unwrap()
}

/// The `sts` policy of `text` applied for `name`.
pub fn sts(name: &str, text: &str) -> AppliedPolicy {
    AppliedPolicy::sts(&domain(name), &Policy::parse(text).unwrap()).unwrap()
}
