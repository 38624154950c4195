//! Entry construction shared by the benchmarks.
#![allow(dead_code, clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use mtasts_core::{CachedPolicy, Domain, Entry, Policy};

/// A cached enforce policy for `d<i>.example`, fetched at `now`, due for a check in an hour.
pub fn entry(i: usize, now: SystemTime) -> Entry {
    let text = format!(
        "version: STSv1\nmode: enforce\nmx: mx1.d{i}.example\nmx: *.mx.d{i}.example\nmax_age: 604800\n"
    );
    Entry {
        policy: Some(Arc::new(CachedPolicy {
            id: "20240101T000000".into(),
            policy: Arc::new(Policy::parse(&text).unwrap()),
            fetched_at: now,
            expires_at: now + Duration::from_secs(604_800),
        })),
        next_check: now + Duration::from_secs(3_600),
        ..Entry::new(Domain::new(&format!("d{i}.example")).unwrap(), now)
    }
}
