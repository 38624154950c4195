//! S-41 for `HickoryDns`: a forked child that drops the DNS state it inherited leaves its
//! parent's lookups working. Alone in its test binary: a fork while other tests' threads run
//! could copy a lock one of them holds (building a runtime, say) into the child, which then
//! waits for it for ever; an MTA that forks (Exim) does so from one thread.
#![allow(unsafe_code, clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::net::Ipv4Addr;
use std::time::Duration;

use hickory_proto::rr::RecordType;
use mtasts_core::{DnsResolver, HickoryDns};
use mtasts_testworld::{World, ZoneRecord};

fn a_count(world: &World, name: &str) -> u64 {
    world.dns().queries(name, RecordType::A)
}

/// S-41: a child that drops the DNS state it inherited (the parent's runtimes, whose epoll
/// instances it shares) and builds its own leaves the parent's lookups working.
#[test]
fn a_forked_child_that_drops_inherited_dns_state_leaves_the_parent_working() {
    let world = World::start().unwrap();
    for name in ["before.fork.test", "child.fork.test", "after.fork.test"] {
        world
            .zone()
            .set_records(name, vec![ZoneRecord::a(Ipv4Addr::new(192, 0, 2, 7))]);
    }
    let parent = HickoryDns::with_nameservers(&[world.dns_addr()], Duration::from_secs(2)).unwrap();
    let inherited = parent.clone();
    assert!(parent.ip("before.fork.test").unwrap().records().is_some());

    // SAFETY: the child only uses the resolver and then `_exit`s.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        let ok = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            // The cached answer of the parent is not used (the child's state is its own) but
            // the lookup works; then the inherited state is dropped with the last handle.
            let fresh = inherited.ip("child.fork.test").unwrap().records().is_some();
            drop(inherited);
            drop(parent);
            fresh
        }))
        .unwrap_or(false);
        // SAFETY: ends the child without running the parent's destructors.
        unsafe { libc::_exit(if ok { 0 } else { 1 }) };
    }
    let status = support::wait_child(pid, Duration::from_secs(30));
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "child: {status}"
    );
    assert_eq!(a_count(&world, "child.fork.test"), 1);
    // The parent's runtime, reused, still answers.
    assert!(parent.ip("after.fork.test").unwrap().records().is_some());
    assert!(
        inherited
            .ip("before.fork.test")
            .unwrap()
            .records()
            .is_some()
    );
    assert_eq!(
        a_count(&world, "before.fork.test"),
        1,
        "still cached in the parent"
    );
}
