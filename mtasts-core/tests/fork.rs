//! S-41: a resolver used in a parent keeps working in a child after `fork()` — the way Exim
//! forks a process per delivery — with each cache backend, and the child's writes reach the
//! shared cache.
#![allow(unsafe_code, clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use mtasts_core::{Domain, Mode, Source};
use mtasts_testworld::{DomainSpec, World};
use support::Backend;

fn forked_child_resolves(backend: Backend) {
    let world = World::start().unwrap();
    world
        .add_policy_domain(&DomainSpec::new("parent.mtasts.test"))
        .unwrap();
    world
        .add_policy_domain(&DomainSpec::new("child.mtasts.test"))
        .unwrap();
    let (resolver, _clock, guard) = support::resolver_on(&world, backend);
    // The parent uses every part first: DNS runtime, HTTPS agent, TLS config, cache.
    let r = resolver.resolve("parent.mtasts.test").unwrap();
    assert_eq!(r.source(), Source::Fetched);

    // SAFETY: the child only runs the resolver and then `_exit`s; it never returns into the
    // test harness. The world's server threads keep running in the parent.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        let ok = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let cached = resolver.resolve("parent.mtasts.test").unwrap();
            let fresh = resolver.resolve("child.mtasts.test").unwrap();
            cached.source() == Source::Cache
                && cached.mode() == Mode::Enforce
                && fresh.source() == Source::Fetched
                && fresh.mode() == Mode::Enforce
        }))
        .unwrap_or(false);
        // SAFETY: ends the child without running the parent's atexit handlers or destructors.
        unsafe { libc::_exit(if ok { 0 } else { 1 }) };
    }

    let status = support::wait_child(pid, Duration::from_secs(60));
    assert!(
        libc::WIFEXITED(status),
        "{backend:?}: child died: status {status}"
    );
    assert_eq!(
        libc::WEXITSTATUS(status),
        0,
        "{backend:?}: the child's lookups failed"
    );
    // The child really fetched over HTTPS, through the servers the parent runs.
    assert_eq!(world.policy_requests("child.mtasts.test"), 1);
    assert_eq!(world.policy_requests("parent.mtasts.test"), 1);
    if backend != Backend::Memory {
        // R-CACHE-7: what the child learnt is in the shared cache for every other process.
        let (other, _) = support::resolver_at(&world, &guard.location);
        let entry = other
            .store()
            .get(&Domain::new("child.mtasts.test").unwrap())
            .unwrap();
        assert!(entry.is_some_and(|e| e.policy.is_some()), "{backend:?}");
    }
}

// One test per backend; each test binary runs them in threads, so every fork here happens
// while other test threads may be active — as in a threaded host process.
#[test]
fn s41_forked_child_resolves_with_the_memory_cache() {
    forked_child_resolves(Backend::Memory);
}

#[test]
fn s41_forked_child_resolves_with_the_sqlite_cache() {
    forked_child_resolves(Backend::Sqlite);
}

#[test]
fn s41_forked_child_resolves_with_the_redis_cache() {
    forked_child_resolves(Backend::Redis);
}

/// Issue 10 item 12: a fork while another thread of the parent is inside a fetch (here a
/// server dripping its body, so the fetch is in progress for seconds): the child builds its
/// own HTTPS agent and fetches at once; nothing the parent's thread holds blocks it.
#[test]
fn a_fork_during_another_threads_fetch_does_not_hang_the_child() {
    use mtasts_testworld::{BodyMode, HttpResponse};
    let world = World::start().unwrap();
    world
        .add_policy_domain(&DomainSpec::new("slow.mtasts.test"))
        .unwrap();
    world
        .add_policy_domain(&DomainSpec::new("child.mtasts.test"))
        .unwrap();
    world.set_policy_response(
        "slow.mtasts.test",
        HttpResponse::policy("version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 600\n")
            .with_mode(BodyMode::Drip(Duration::from_millis(200))),
    );
    let (resolver, _clock) = support::resolver(&world);
    let resolver = std::sync::Arc::new(resolver);
    let busy = std::sync::Arc::clone(&resolver);
    let parent_thread = std::thread::spawn(move || busy.resolve("slow.mtasts.test"));
    while world.policy_requests("slow.mtasts.test") == 0 {
        std::thread::sleep(Duration::from_millis(5));
    }

    // SAFETY: the child only runs the resolver and then `_exit`s.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        let ok = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            resolver.resolve("child.mtasts.test").unwrap().source() == Source::Fetched
        }))
        .unwrap_or(false);
        // SAFETY: ends the child without running the parent's atexit handlers or destructors.
        unsafe { libc::_exit(if ok { 0 } else { 1 }) };
    }
    let status = support::wait_child(pid, Duration::from_secs(30));
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "the child hung or failed: status {status}"
    );
    let _ = parent_thread.join();
}
