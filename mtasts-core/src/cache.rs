//! The policy cache: what the engine remembers per domain, and the storage trait behind it.
//!
//! The engine ([`crate::Resolver`]) owns the algorithm of RFC 8461 §3.3/§5.1 (rules §4); a
//! [`Store`] only keeps [`Entry`] values. Everything the algorithm needs to honour across
//! processes lives in the entry: the policy and its expiry (R-CACHE-1), when the TXT record
//! may be queried again (R-CACHE-5) and the fetch backoff (R-FETCH-10).

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

use crate::domain::Domain;
use crate::error::{Result, ResultType};
use crate::policy::Policy;

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
    /// When a lookup last used this entry (R-CACHE-8). Updated at most daily.
    pub last_used: SystemTime,
}

/// Where cache entries are kept. Implementations must be safe to share between threads.
///
/// The engine treats a failing store as empty (a lookup still gets an answer, from DNS and
/// HTTPS), so a store reports its failures rather than hiding them.
pub trait Store: Send + Sync + Debug {
    /// The entry for `domain`, if there is one.
    fn get(&self, domain: &Domain) -> Result<Option<Arc<Entry>>>;
    /// Stores `entry`, replacing any entry for the same domain.
    fn put(&self, entry: Entry) -> Result<()>;
    /// Removes the entry for `domain`; true if there was one.
    fn remove(&self, domain: &Domain) -> Result<bool>;
    /// Every entry, in no particular order.
    fn entries(&self) -> Result<Vec<Arc<Entry>>>;
}

/// A cache in this process's memory: fast, shared by all threads, gone when the process ends.
#[derive(Debug, Default)]
pub struct MemoryStore {
    entries: RwLock<HashMap<Domain, Arc<Entry>>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }
}

impl Store for MemoryStore {
    fn get(&self, domain: &Domain) -> Result<Option<Arc<Entry>>> {
        // A poisoned lock only means another thread panicked mid-call; the map itself is
        // always consistent (entries are replaced whole), so keep using it.
        let map = self.entries.read().unwrap_or_else(|p| p.into_inner());
        Ok(map.get(domain).cloned())
    }

    fn put(&self, entry: Entry) -> Result<()> {
        let mut map = self.entries.write().unwrap_or_else(|p| p.into_inner());
        map.insert(entry.domain.clone(), Arc::new(entry));
        Ok(())
    }

    fn remove(&self, domain: &Domain) -> Result<bool> {
        let mut map = self.entries.write().unwrap_or_else(|p| p.into_inner());
        Ok(map.remove(domain).is_some())
    }

    fn entries(&self) -> Result<Vec<Arc<Entry>>> {
        let map = self.entries.read().unwrap_or_else(|p| p.into_inner());
        Ok(map.values().cloned().collect())
    }
}
