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
//! each store, so the newest fetch wins whatever order processes write in. The persistent
//! stores share one codec between an entry and its stored fields, with one tolerance rule:
//! what a version does not know never makes an entry unreadable (see `cache/codec.rs`).

use std::fmt::Debug;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::domain::Domain;
use crate::error::{Error, Result, ResultType};
pub use crate::policy::CachedPolicy;
use crate::resolver::{DNS_FAILURE_RECHECK, FETCH_BACKOFF, MAX_RECHECK};

mod codec;
mod layered;
mod location;
mod memory;
mod redis;
mod sqlite;

pub use layered::LayeredStore;
pub use location::{CacheLocation, SYSTEM_CACHE_PATH, SharedCache};
pub use memory::{MEMORY_ENTRIES, MemoryStore};
pub use redis::RedisStore;
pub use sqlite::SqliteStore;

/// R-CACHE-8: entries unused for this long may be dropped.
pub const UNUSED_LIMIT: Duration = Duration::from_secs(180 * 86_400);

/// How far past their bounds the times of an entry are still trusted (see [`Entry::clamped`]):
/// clocks of a fleet slightly out of step, and a writer that started its lookup before
/// another process stored a newer fetch. Longer than any lookup takes, short enough that a
/// future-dated entry has no lasting effect.
pub const MERGE_SLACK: Duration = FETCH_BACKOFF;

/// A failed fetch for one record id, not retried before `until` (R-FETCH-10); or, with the
/// id [`Backoff::DNS_FAILURE`], a failed TXT lookup not repeated before `until`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Backoff {
    /// The TXT record id the failed fetch was for, or [`Backoff::DNS_FAILURE`].
    pub id: String,
    /// No new fetch for this id before this instant.
    pub until: SystemTime,
    /// The RFC 8460 result type of the failure.
    pub result_type: ResultType,
    /// The failure's one-line reason.
    pub reason: String,
}

impl Backoff {
    /// The id of a backoff that remembers a failed TXT lookup rather than a failed fetch. It
    /// can never be a record id (R-DISC-4: an id has 1 to 32 letters and digits), so an older
    /// mtasts sharing the store reads it as a backoff that matches no record.
    pub const DNS_FAILURE: &'static str = "";

    /// True when this backoff remembers a failed TXT lookup (see [`Backoff::DNS_FAILURE`]).
    pub fn is_dns_failure(&self) -> bool {
        self.id == Backoff::DNS_FAILURE
    }

    /// How long this kind of backoff runs: [`FETCH_BACKOFF`] for a failed fetch,
    /// [`DNS_FAILURE_RECHECK`] for a failed TXT lookup.
    pub fn period(&self) -> Duration {
        if self.is_dns_failure() {
            DNS_FAILURE_RECHECK
        } else {
            FETCH_BACKOFF
        }
    }

    /// The failure this backoff remembers, as a lookup of `domain` during it reports it:
    /// [`Error::DnsTemporary`] for a failed TXT lookup, else [`Error::FetchBackoff`].
    pub fn failure(&self, domain: &Domain) -> Error {
        if self.is_dns_failure() {
            Error::DnsTemporary {
                name: domain.txt_name(),
                reason: format!(
                    "{} (remembered: not queried again before {})",
                    self.reason,
                    crate::clock::rfc3339(self.until)
                ),
            }
        } else {
            Error::FetchBackoff {
                result_type: self.result_type,
                reason: self.reason.clone(),
                retry_at: self.until,
            }
        }
    }

    /// When the failure that started this backoff happened (`until` less its period).
    pub fn started_at(&self) -> SystemTime {
        self.until.checked_sub(self.period()).unwrap_or(self.until)
    }
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

/// True when `t` is more than `allowed` (plus [`MERGE_SLACK`]) after `now`: a time no entry
/// this library writes can hold.
fn ahead_of(now: SystemTime, t: SystemTime, allowed: Duration) -> bool {
    // `t - now > allowed + slack` as one comparison (every cached lookup runs this); no time
    // is ahead of a limit past the end of `SystemTime`.
    now.checked_add(allowed.saturating_add(MERGE_SLACK))
        .is_some_and(|limit| t > limit)
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

    /// The entry with every time bounded relative to `now`, so that one writer with a fast
    /// clock, an NTP step or a forged write to a shared store has no lasting effect. A time
    /// further ahead than it can legitimately be (allowing [`MERGE_SLACK`] for clocks out of
    /// step and slow writers) is not trusted at all:
    ///
    /// - a policy `fetched_at` in the future counts as fetched `now`, and a policy expires at
    ///   the latest `max_age` after its fetch (R-CACHE-1);
    /// - a `next_check` more than [`MAX_RECHECK`] ahead counts as due `now` (R-CACHE-5);
    /// - a backoff ending more than its period ahead counts as over (R-FETCH-10);
    /// - a `last_used` in the future counts as `now` (R-CACHE-8).
    ///
    /// The bounds never slide: an untrusted time is replaced by `now`, not by the bound, so a
    /// forged entry is checked again at once and any real fetch replaces it. Entries written
    /// by this library always satisfy the bounds, so this changes nothing for them. Every read
    /// by the engine and both sides of every merge are bounded.
    pub fn clamped(self, now: SystemTime) -> Entry {
        if self.within_bounds(now) {
            self
        } else {
            self.clamp_all(now)
        }
    }

    /// The bounds of [`Entry::clamped`], applied whatever the entry holds.
    fn clamp_all(mut self, now: SystemTime) -> Entry {
        let ahead = |t: SystemTime, allowed: Duration| ahead_of(now, t, allowed);
        if let Some(cached) = &self.policy {
            let fetched_at = if ahead(cached.fetched_at, Duration::ZERO) {
                now
            } else {
                cached.fetched_at
            };
            let max_age = Duration::from_secs(u64::from(cached.policy.max_age()));
            let latest_expiry = fetched_at.checked_add(max_age).unwrap_or(fetched_at);
            let expires_at = cached.expires_at.min(latest_expiry);
            if fetched_at != cached.fetched_at || expires_at != cached.expires_at {
                self.policy = Some(Arc::new(CachedPolicy {
                    id: cached.id.clone(),
                    policy: Arc::clone(&cached.policy),
                    fetched_at,
                    expires_at,
                }));
            }
        }
        if ahead(self.next_check, MAX_RECHECK) {
            self.next_check = now;
        }
        self.backoff = self
            .backoff
            .filter(|backoff| !ahead(backoff.until, backoff.period()));
        if ahead(self.last_used, Duration::ZERO) {
            self.last_used = now;
        }
        self
    }

    /// True when [`Entry::clamped`] would change nothing at `now` (every entry this library
    /// writes): then a reader can use the stored entry as it is, without a copy.
    pub fn within_bounds(&self, now: SystemTime) -> bool {
        let ahead = |t: SystemTime, allowed: Duration| ahead_of(now, t, allowed);
        let policy_ok = self.policy.as_ref().is_none_or(|cached| {
            let max_age = Duration::from_secs(u64::from(cached.policy.max_age()));
            let latest_expiry = cached
                .fetched_at
                .checked_add(max_age)
                .unwrap_or(cached.fetched_at);
            !ahead(cached.fetched_at, Duration::ZERO) && cached.expires_at <= latest_expiry
        });
        policy_ok
            && !ahead(self.next_check, MAX_RECHECK)
            && self
                .backoff
                .as_ref()
                .is_none_or(|b| !ahead(b.until, b.period()))
            && !ahead(self.last_used, Duration::ZERO)
    }

    /// `entry` bounded relative to `now` ([`Entry::clamped`]): the same `Arc` when it is
    /// [within bounds](Entry::within_bounds), a bounded copy otherwise.
    pub fn bounded(entry: &Arc<Entry>, now: SystemTime) -> Arc<Entry> {
        if entry.within_bounds(now) {
            Arc::clone(entry)
        } else {
            Arc::new(Entry::clone(entry).clamped(now))
        }
    }

    /// The entry to store when `self` is written over `stored` (another process may have
    /// written since `self` was read). Every store applies this inside one atomic step.
    ///
    /// Both entries are first [bounded](Entry::clamped) relative to the time of the write
    /// (`self.last_used`; the bounds allow [`MERGE_SLACK`], since a writer may have started
    /// its lookup a little before another process stored a newer fetch). Then:
    ///
    /// - The policy fetched last wins (R-CACHE-7: newest fetch wins), so a slow writer never
    ///   puts back an older policy. A write without a policy removes a stored one only if
    ///   that one has expired by the time of the write: it never erases a valid policy
    ///   another process just fetched (that would be a downgrade).
    /// - The later `next_check` and `last_used` win, and the backoff that ends last, unless
    ///   the failure that started it is older than the winning policy's fetch (the failure
    ///   is over). `failures` follows the incoming entry, unless the stored policy is newer
    ///   (then that fetch succeeded).
    pub fn merged_onto(self, stored: &Entry) -> Entry {
        let now = self.last_used;
        let mine = self.clamped(now);
        let theirs = stored.clone().clamped(now);
        let (policy, stored_newer) = match (&mine.policy, &theirs.policy) {
            (Some(mine), Some(theirs)) if theirs.fetched_at > mine.fetched_at => {
                (Some(Arc::clone(theirs)), true)
            }
            (None, Some(theirs)) if theirs.is_valid_at(now) => (Some(Arc::clone(theirs)), true),
            _ => (mine.policy.clone(), false),
        };
        // A backoff is over once a policy was fetched under its id, or after it started.
        // Each side's is judged first, then the one that ends last wins (so merging the
        // result again changes nothing).
        let running = |b: &Backoff| {
            policy
                .as_ref()
                .is_none_or(|p| p.id != b.id && p.fetched_at < b.started_at())
        };
        let backoff = match (mine.backoff.filter(running), theirs.backoff.filter(running)) {
            (Some(mine), Some(theirs)) if theirs.until > mine.until => Some(theirs),
            (None, Some(theirs)) if theirs.until > now => Some(theirs),
            (mine, _) => mine,
        };
        Entry {
            domain: mine.domain,
            policy,
            next_check: mine.next_check.max(theirs.next_check),
            backoff,
            failures: if stored_newer { 0 } else { mine.failures },
            last_used: mine.last_used.max(theirs.last_used),
        }
    }
}

/// Where cache entries are kept. Implementations must be safe to share between threads and,
/// for shared stores, between processes (R-CACHE-7).
///
/// A store reports its failures rather than hiding them: when the engine cannot read what a
/// shared store holds for a domain, it cannot tell whether a policy is cached, and a lookup
/// that finds no policy says so ([`Source::CacheUnreadable`](crate::Source)) instead of
/// answering "no policy".
pub trait Store: Send + Sync + Debug {
    /// The entry for `domain`, if there is one.
    fn get(&self, domain: &Domain) -> Result<Option<Arc<Entry>>>;

    /// Calls `f` with the entry for `domain`, if there is one; true if there was. Reads as
    /// [`Store::get`] does, but lends the entry instead of handing out a reference to it: the
    /// engine's cached path reads this way, so threads reading one entry at once do not all
    /// write its reference count (issue 13, item 6). `f` must not write to the store. The
    /// default lends what [`Store::get`] returns.
    fn with_entry(&self, domain: &Domain, f: &mut dyn FnMut(&Entry)) -> Result<bool> {
        Ok(self.get(domain)?.map(|entry| f(&entry)).is_some())
    }

    /// The entry for `domain` as the shared storage has it now, bypassing any in-process
    /// layer. The engine calls this before it refreshes a domain, so it sees what other
    /// processes wrote. The default is [`Store::get`].
    fn reload(&self, domain: &Domain) -> Result<Option<Arc<Entry>>> {
        self.get(domain)
    }

    /// What this process holds for `domain` in memory, without reading any shared storage
    /// (the front layer of a [`LayeredStore`]); `None` for stores without one. The engine
    /// uses it when a shared read fails.
    fn local(&self, _domain: &Domain) -> Option<Arc<Entry>> {
        None
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

    /// `within_bounds` is exactly "clamping changes nothing", over times around every bound:
    /// the cached path may skip the copy only when the copy would equal the entry.
    #[test]
    fn within_bounds_is_exactly_when_clamping_changes_nothing() {
        let now = 100_000u64;
        let offsets = [
            0u64, 1, 299, 300, 301, 900, 1000, 1300, 1301, 3900, 3901, 4000, 100_000,
        ];
        let mut checked = 0;
        for &fetched in &offsets {
            for &expiry_extra in &[0u64, 1, 1000] {
                for &check in &offsets {
                    for &used in &[0u64, 300, 301] {
                        for backoff in [
                            None,
                            Some((false, 600u64)),
                            Some((true, 331)),
                            Some((true, 330)),
                        ] {
                            let mut e = entry(None, now);
                            e.policy = Some(Arc::new(
                                CachedPolicy::from_stored(
                                    "a".into(),
                                    "version: STSv1\nmode: enforce\nmx: mx.example.com\nmax_age: 1000\n",
                                    at(now + fetched),
                                    at(now + fetched + 1000 + expiry_extra),
                                )
                                .unwrap(),
                            ));
                            e.next_check = at(now + check);
                            e.last_used = at(now + used);
                            e.backoff = backoff.map(|(dns, ahead)| Backoff {
                                id: if dns {
                                    Backoff::DNS_FAILURE.into()
                                } else {
                                    "x".into()
                                },
                                until: at(now + ahead),
                                result_type: ResultType::StsPolicyFetchError,
                                reason: "r".into(),
                            });
                            let unchanged = e.clone().clamp_all(at(now)) == e;
                            assert_eq!(e.within_bounds(at(now)), unchanged, "{e:?}");
                            checked += 1;
                        }
                    }
                }
            }
        }
        assert!(checked > 1000);
    }

    /// `ahead_of` is `t - now > allowed + MERGE_SLACK`, exactly at the limit and around it.
    #[test]
    fn ahead_of_is_strictly_past_the_allowance_and_the_slack() {
        let now = at(0);
        let allowed = Duration::from_secs(60);
        let limit = now + allowed + MERGE_SLACK;
        let ns = Duration::from_nanos(1);
        for (t, ahead) in [
            (now - Duration::from_secs(1), false),
            (now, false),
            (limit - ns, false),
            (limit, false),
            (limit + ns, true),
            (limit + Duration::from_secs(86_400 * 365), true),
        ] {
            assert_eq!(ahead_of(now, t, allowed), ahead, "{t:?}");
            let by_difference = t
                .duration_since(now)
                .is_ok_and(|d| d > allowed + MERGE_SLACK);
            assert_eq!(ahead, by_difference, "{t:?}");
        }
        assert!(
            !ahead_of(now, now + allowed, Duration::MAX),
            "no limit past the end of time"
        );
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

    /// Issue 10 item 9: a future-dated stored entry does not beat a real write.
    #[test]
    fn future_dated_values_are_not_trusted_in_a_merge() {
        let mut forged = entry(Some(policy("old", 10 * 86_400 * 365)), 10 * 86_400 * 365);
        forged.next_check = at(10 * 86_400 * 365);
        let real = entry(Some(policy("new", 50)), 50);
        let merged = real.merged_onto(&forged);
        assert_eq!(merged.policy.as_ref().unwrap().id, "new");
        assert_eq!(
            merged.next_check,
            at(50),
            "a next check years ahead is not kept"
        );
        assert_eq!(merged.last_used, at(50));
        let stored = entry(None, 50).merged_onto(&forged);
        assert!(
            stored.policy.unwrap().expires_at <= at(50 + 1000),
            "expires at most max_age after its (bounded) fetch"
        );
    }

    mod merge_properties {
        use super::*;
        use proptest::prelude::*;

        /// Entries around a common instant, some of them future-dated, some without policy.
        fn any_entry() -> impl Strategy<Value = Entry> {
            (
                prop::option::of((0u64..3, 0u64..5000, 1u32..2000, 0u64..400)),
                0u64..5000,
                prop::option::of((0u64..3, 0u64..8000)),
                0u32..4,
                0u64..5000,
            )
                .prop_map(|(policy_spec, next, backoff, failures, used)| {
                    let policy = policy_spec.map(|(id, fetched, max_age, extra)| {
                        let text = format!(
                            "version: STSv1\nmode: enforce\nmx: mx.example.com\nmax_age: {max_age}\n"
                        );
                        Arc::new(
                            CachedPolicy::from_stored(
                                format!("p{id}"),
                                &text,
                                at(fetched),
                                at(fetched + u64::from(max_age) + extra),
                            )
                            .unwrap(),
                        )
                    });
                    Entry {
                        domain: Domain::new("example.com").unwrap(),
                        policy,
                        next_check: at(next),
                        backoff: backoff.map(|(id, until)| Backoff {
                            id: format!("p{id}"),
                            until: at(until),
                            result_type: ResultType::StsPolicyFetchError,
                            reason: "HTTP status 500".into(),
                        }),
                        failures,
                        last_used: at(used),
                    }
                })
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(512))]

            /// Never erases a policy that is valid at the time of the write (no downgrade).
            #[test]
            fn never_erases_a_valid_policy(mine in any_entry(), theirs in any_entry()) {
                let now = mine.last_used;
                let bounded = theirs.clone().clamped(now);
                let merged = mine.merged_onto(&theirs);
                if bounded.policy.as_ref().is_some_and(|p| p.is_valid_at(now)) {
                    prop_assert!(merged.policy.is_some());
                }
            }

            /// The newest (bounded) fetch wins, whichever side writes.
            #[test]
            fn the_newest_fetch_wins(a in any_entry(), b in any_entry()) {
                let now = a.last_used;
                let (ba, bb) = (a.clone().clamped(now), b.clone().clamped(now));
                let merged = a.merged_onto(&b);
                if let (Some(pa), Some(pb)) = (&ba.policy, &bb.policy) {
                    let newest = pa.fetched_at.max(pb.fetched_at);
                    prop_assert_eq!(merged.policy.as_ref().unwrap().fetched_at, newest);
                }
            }

            /// Merging is idempotent: a merged entry merged onto itself is itself, and
            /// merging the same write again changes nothing.
            #[test]
            fn merging_is_idempotent(a in any_entry(), b in any_entry()) {
                let normal = a.clone().merged_onto(&a);
                prop_assert_eq!(normal.clone().merged_onto(&normal), normal);
                let once = a.clone().merged_onto(&b);
                let twice = a.merged_onto(&once);
                prop_assert_eq!(twice, once);
            }

            /// Nothing merged lies beyond its bound.
            #[test]
            fn merged_times_are_bounded(a in any_entry(), b in any_entry()) {
                let now = a.last_used;
                let merged = a.merged_onto(&b);
                let limit = |d: Duration| now + d + MERGE_SLACK;
                prop_assert!(merged.next_check <= limit(MAX_RECHECK));
                prop_assert!(merged.last_used <= limit(Duration::ZERO));
                if let Some(b) = &merged.backoff {
                    prop_assert!(b.until <= limit(b.period()));
                }
                if let Some(p) = &merged.policy {
                    prop_assert!(p.fetched_at <= limit(Duration::ZERO));
                    prop_assert!(p.expires_at <= p.fetched_at + Duration::from_secs(u64::from(p.policy.max_age())));
                }
            }
        }
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
