//! S-41: a resolver used in a parent keeps working in a child after `fork()` — the way Exim
//! forks a process per delivery.
#![allow(unsafe_code, clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::{Duration, Instant};

use mtasts_core::{Mode, Source};
use mtasts_testworld::{DomainSpec, World};

#[test]
fn s41_forked_child_resolves_through_the_parents_resolver() {
    let world = World::start().unwrap();
    world
        .add_policy_domain(&DomainSpec::new("parent.mtasts.test"))
        .unwrap();
    world
        .add_policy_domain(&DomainSpec::new("child.mtasts.test"))
        .unwrap();
    let (resolver, _clock) = support::resolver(&world);
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

    // Bounded wait: a hang in the child fails the test instead of hanging it.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut status = 0;
    loop {
        // SAFETY: plain libc call on our own child's pid with a valid status pointer.
        let done = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        if done == pid {
            break;
        }
        if Instant::now() > deadline {
            // SAFETY: as above.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, &mut status, 0);
            }
            panic!("the forked child hung");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(libc::WIFEXITED(status), "child died: status {status}");
    assert_eq!(libc::WEXITSTATUS(status), 0, "the child's lookups failed");
    // The child really fetched over HTTPS, through the servers the parent runs.
    assert_eq!(world.policy_requests("child.mtasts.test"), 1);
    assert_eq!(world.policy_requests("parent.mtasts.test"), 1);
}
