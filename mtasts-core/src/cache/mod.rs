//! The policy cache: what the engine remembers per domain, and the storage behind it.
//!
//! The engine ([`crate::Resolver`]) owns the algorithm of RFC 8461 §3.3/§5.1 (rules §4); a
//! [`Store`] only keeps [`Entry`] values. Everything the algorithm needs to honour across
//! processes lives in the entry: the policy and its expiry (R-CACHE-1), when the TXT record
//! may be queried again (R-CACHE-5) and the fetch backoff (R-FETCH-10), so every process and
//! host sharing a store honours them (R-CACHE-7).
//!
//! Stores: [`MemoryStore`] (this process), [`LayeredStore`] (memory in front of shared
//! stores). Writes are merged with what is stored by [`Entry::merged_onto`], atomically in
//! each store, so the newest fetch wins whatever order processes write in.

use std::fmt::Debug;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::domain::Domain;
use crate::error::{Error, Result, ResultType};
use crate::policy::Policy;

mod layered;
mod location;
mod memory;
mod redis;
mod sqlite;

pub use layered::LayeredStore;
pub use location::{CacheLocation, SYSTEM_CACHE_PATH, SharedCache};
pub use memory::MemoryStore;
pub use redis::RedisStore;
pub use sqlite::SqliteStore;

/// R-CACHE-8: entries unused for this long may be dropped.
pub const UNUSED_LIMIT: Duration = Duration::from_secs(180 * 86_400);

/// A policy as fetched for a domain, with the record id it was fetched under.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CachedPolicy {
    /// The `id` of the `_mta-sts` TXT record the policy was fetched under (R-CACHE-2).
    pub id: String,
    /// The parsed policy, raw text included (R-POL-8).
    pub policy: Arc<Policy>,
    /// When the policy was last fetched successfully.
    pub fetched_at: SystemTime,
    /// `fetched_at + max_age` (R-CACHE-1): after this the policy is not used.
    pub expires_at: SystemTime,
}

impl CachedPolicy {
    /// Whether the policy may still be used at `now` (R-CACHE-1).
    pub fn is_valid_at(&self, now: SystemTime) -> bool {
        now < self.expires_at
    }

    /// Rebuilds a cached policy from its stored form: the raw policy text is parsed again
    /// (R-POL-8 keeps it verbatim), so a store needs no encoding of the parsed policy.
    pub fn from_stored(
        id: String,
        text: &str,
        fetched_at: SystemTime,
        expires_at: SystemTime,
    ) -> Result<CachedPolicy> {
        let policy = Policy::parse(text).map_err(|e| Error::Cache {
            reason: format!("a stored policy no longer parses ({e}); the entry is ignored"),
        })?;
        Ok(CachedPolicy {
            id,
            policy: Arc::new(policy),
            fetched_at,
            expires_at,
        })
    }
}

/// A failed fetch for one record id, not retried before `until` (R-FETCH-10).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Backoff {
    /// The TXT record id the failed fetch was for.
    pub id: String,
    /// No new fetch for this id before this instant.
    pub until: SystemTime,
    /// The RFC 8460 result type of the failure.
    pub result_type: ResultType,
    /// The failure's one-line reason.
    pub reason: String,
}

/// Everything the cache knows about one policy domain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The policy domain (normalised).
    pub domain: Domain,
    /// The last policy fetched, if any. Kept after a failed refresh while it is valid
    /// (R-FETCH-11, R-CACHE-3, R-DISC-8).
    pub policy: Option<Arc<CachedPolicy>>,
    /// Before this instant the TXT record is not queried again: the entry is the answer
    /// (R-CACHE-5). A domain without a policy is remembered the same way.
    pub next_check: SystemTime,
    /// The backoff after a failed fetch, if one is running (R-FETCH-10).
    pub backoff: Option<Backoff>,
    /// Refreshes that failed in a row (R-CACHE-6: repeated failures are logged).
    pub failures: u32,
    /// When a lookup last used this entry (R-CACHE-8). Updated at most daily.
    pub last_used: SystemTime,
}

impl Entry {
    /// An entry for `domain` that knows nothing yet, stamped `now`.
    pub fn new(domain: Domain, now: SystemTime) -> Entry {
        Entry {
            domain,
            policy: None,
            next_check: now,
            backoff: None,
            failures: 0,
            last_used: now,
        }
    }

    /// The entry to store when `self` is written over `stored` (another process may have
    /// written since `self` was read). Every store applies this inside one atomic step.
    ///
    /// - The policy fetched last wins (R-CACHE-7: newest fetch wins), so a slow writer never
    ///   puts back an older policy. A write without a policy removes a stored one only if
    ///   that one has expired by the time of the write (`self.last_used`): it never erases a
    ///   valid policy another process just fetched (that would be a downgrade).
    /// - The later `next_check` and `last_used` win, and the backoff that ends last, unless
    ///   the winning policy was fetched under the backed-off id. `failures` follows the
    ///   incoming entry, unless the stored policy is newer (then that fetch succeeded).
    pub fn merged_onto(self, stored: &Entry) -> Entry {
        let now = self.last_used;
        let (policy, stored_newer) = match (&self.policy, &stored.policy) {
            (Some(mine), Some(theirs)) if theirs.fetched_at > mine.fetched_at => {
                (Some(Arc::clone(theirs)), true)
            }
            (None, Some(theirs)) if theirs.is_valid_at(now) => (Some(Arc::clone(theirs)), true),
            _ => (self.policy.clone(), false),
        };
        // The running backoff that ends last, unless the policy was since fetched under
        // that very id (the failure is over).
        let backoff = match (self.backoff, &stored.backoff) {
            (Some(mine), Some(theirs)) if theirs.until > mine.until => Some(theirs.clone()),
            (None, Some(theirs)) if theirs.until > now => Some(theirs.clone()),
            (mine, _) => mine,
        }
        .filter(|b| policy.as_ref().is_none_or(|p| p.id != b.id));
        Entry {
            domain: self.domain,
            policy,
            next_check: self.next_check.max(stored.next_check),
            backoff,
            failures: if stored_newer { 0 } else { self.failures },
            last_used: self.last_used.max(stored.last_used),
        }
    }
}

/// Where cache entries are kept. Implementations must be safe to share between threads and,
/// for shared stores, between processes (R-CACHE-7).
///
/// The engine treats a failing store as empty (a lookup still gets an answer, from DNS and
/// HTTPS), so a store reports its failures rather than hiding them.
pub trait Store: Send + Sync + Debug {
    /// The entry for `domain`, if there is one.
    fn get(&self, domain: &Domain) -> Result<Option<Arc<Entry>>>;

    /// The entry for `domain` as the shared storage has it now, bypassing any in-process
    /// layer. The engine calls this before it refreshes a domain, so it sees what other
    /// processes wrote. The default is [`Store::get`].
    fn reload(&self, domain: &Domain) -> Result<Option<Arc<Entry>>> {
        self.get(domain)
    }

    /// Stores `entry`, merged with any stored entry for the same domain by
    /// [`Entry::merged_onto`], atomically.
    fn put(&self, entry: Entry) -> Result<()>;

    /// Removes the entry for `domain`; true if there was one.
    fn remove(&self, domain: &Domain) -> Result<bool>;

    /// Every entry, in no particular order.
    fn entries(&self) -> Result<Vec<Arc<Entry>>>;

    /// Removes every entry not used since `cutoff` (R-CACHE-8); returns how many went.
    fn purge_unused(&self, cutoff: SystemTime) -> Result<usize> {
        let mut removed = 0;
        for entry in self.entries()? {
            if entry.last_used < cutoff && self.remove(&entry.domain)? {
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// Removes every entry; returns how many went.
    fn clear(&self) -> Result<usize> {
        let mut removed = 0;
        for entry in self.entries()? {
            if self.remove(&entry.domain)? {
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// Where the entries are, for messages: `memory`, a file path, a Redis URL.
    fn location(&self) -> String;
}

/// Milliseconds since the Unix epoch, the time format of the persistent stores (negative
/// before 1970).
pub(crate) fn to_unix_millis(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_millis()).unwrap_or(i64::MAX),
    }
}

/// The inverse of [`to_unix_millis`].
pub(crate) fn from_unix_millis(ms: i64) -> SystemTime {
    let magnitude = Duration::from_millis(ms.unsigned_abs());
    if ms >= 0 {
        UNIX_EPOCH + magnitude
    } else {
        UNIX_EPOCH - magnitude
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_700_000_000 + s)
    }

    fn policy(id: &str, fetched: u64) -> Arc<CachedPolicy> {
        Arc::new(
            CachedPolicy::from_stored(
                id.into(),
                "version: STSv1\nmode: enforce\nmx: mx.example.com\nmax_age: 1000\n",
                at(fetched),
                at(fetched + 1000),
            )
            .unwrap(),
        )
    }

    fn entry(policy: Option<Arc<CachedPolicy>>, now: u64) -> Entry {
        Entry {
            policy,
            ..Entry::new(Domain::new("example.com").unwrap(), at(now))
        }
    }

    #[test]
    fn r_cache_7_the_newest_fetch_wins_in_either_order() {
        let older = entry(Some(policy("a", 10)), 10);
        let newer = entry(Some(policy("b", 20)), 20);
        let merged = older.clone().merged_onto(&newer);
        assert_eq!(
            merged.policy.unwrap().id,
            "b",
            "a late writer does not roll back"
        );
        let merged = newer.merged_onto(&older);
        assert_eq!(merged.policy.unwrap().id, "b");
    }

    #[test]
    fn a_write_without_policy_never_erases_a_valid_one() {
        let stored = entry(Some(policy("a", 10)), 10);
        let merged = entry(None, 500).merged_onto(&stored);
        assert_eq!(
            merged.policy.unwrap().id,
            "a",
            "no downgrade by a racing writer"
        );
        // Once expired, the stored policy goes.
        let merged = entry(None, 1011).merged_onto(&stored);
        assert!(merged.policy.is_none());
    }

    #[test]
    fn later_recheck_backoff_and_use_win() {
        let mut stored = entry(None, 10);
        stored.next_check = at(400);
        stored.backoff = Some(Backoff {
            id: "b".into(),
            until: at(310),
            result_type: ResultType::StsPolicyFetchError,
            reason: "HTTP status 500".into(),
        });
        let mut incoming = entry(None, 20);
        incoming.next_check = at(80);
        incoming.failures = 2;
        let merged = incoming.merged_onto(&stored);
        assert_eq!(merged.next_check, at(400));
        assert_eq!(
            merged.backoff.unwrap().id,
            "b",
            "another process's backoff is honoured"
        );
        assert_eq!(merged.last_used, at(20));
        assert_eq!(merged.failures, 2);
    }

    #[test]
    fn a_successful_fetch_ends_the_backoff_of_its_id() {
        let mut stored = entry(Some(policy("a", 10)), 10);
        stored.backoff = Some(Backoff {
            id: "b".into(),
            until: at(310),
            result_type: ResultType::StsPolicyFetchError,
            reason: "HTTP status 500".into(),
        });
        let merged = entry(Some(policy("b", 100)), 100).merged_onto(&stored);
        assert_eq!(merged.policy.unwrap().id, "b");
        assert!(merged.backoff.is_none());
    }

    #[test]
    fn unix_millis_round_trip() {
        for t in [
            UNIX_EPOCH,
            at(0),
            at(123),
            UNIX_EPOCH - Duration::from_millis(1500),
        ] {
            assert_eq!(from_unix_millis(to_unix_millis(t)), t);
        }
        assert_eq!(
            to_unix_millis(UNIX_EPOCH + Duration::from_millis(1234)),
            1234
        );
    }

    #[test]
    fn a_corrupt_stored_policy_is_a_cache_error() {
        let e = CachedPolicy::from_stored("a".into(), "garbage", at(0), at(1)).unwrap_err();
        assert!(matches!(e, Error::Cache { .. }), "{e:?}");
    }
}
