//! S-41 for `Resolver::resolve_many`: a forked child runs a batch with its parent's resolver.
//! Alone in its test binary: a fork while other tests' threads run could copy a lock one of
//! them holds (building a runtime, say) into the child, which then waits for it for ever; an
//! MTA that forks (Exim) does so from one thread.
#![allow(unsafe_code, clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::ops::ControlFlow;
use std::time::Duration;

use mtasts_core::Source;

use support::{batch_names as names, world_with};

/// S-41: a forked child runs a batch (its threads are its own) with the parent's resolver.
#[test]
fn s41_a_forked_child_runs_a_batch() {
    let good = names(12);
    let world = world_with(&good);
    let (resolver, _clock) = support::resolver(&world);
    assert_eq!(
        resolver.resolve(&good[0]).unwrap().source(),
        Source::Fetched
    );
    // SAFETY: the child only runs the resolver and then `_exit`s.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        let ok = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let mut sources = Vec::new();
            resolver.resolve_many(good.clone(), 4, |item| {
                sources.push(item.result.map(|r| r.source()).ok());
                ControlFlow::Continue(())
            });
            sources[0] == Some(Source::Cache)
                && sources[1..].iter().all(|s| *s == Some(Source::Fetched))
        }))
        .unwrap_or(false);
        // SAFETY: ends the child without running the parent's destructors.
        unsafe { libc::_exit(if ok { 0 } else { 1 }) };
    }
    let status = support::wait_child(pid, Duration::from_secs(60));
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "child: {status}"
    );
    assert_eq!(world.policy_requests(&good[5]), 1);
}
