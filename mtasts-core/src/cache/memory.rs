//! The in-process store: fast, shared by all threads, gone when the process ends, bounded.

use std::collections::HashMap;
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use super::{Entry, Store};
use crate::domain::Domain;
use crate::error::Result;

/// The default bound of a [`MemoryStore`], in entries (about 40 MB of policies at most).
pub const MEMORY_ENTRIES: usize = 50_000;

/// The most shards a [`MemoryStore`] is split into.
const SHARDS: usize = 16;

/// A cache in this process's memory: fast, shared by all threads, gone when the process ends.
/// Used alone (`memory`), or as the front layer of a [`super::LayeredStore`].
///
/// Bounded (issue 10: 200,000 lookups of names without a policy must not grow a process by
/// 60 MB): when a new domain would pass the bound, entries without a policy whose next check
/// is due go first (they answer nothing any more), then the least recently used eighth.
///
/// Large stores are split into shards, each with its own lock and its share of the bound, so
/// threads looking up different domains do not contend for one lock (issue 13, item 6).
#[derive(Debug)]
pub struct MemoryStore {
    shards: Vec<RwLock<HashMap<Domain, Slot>>>,
    hasher: RandomState,
    /// The bound of each shard.
    capacity: usize,
    /// Advances at every insertion; a slot remembers the value at its last use.
    epoch: AtomicU64,
}

#[derive(Debug)]
struct Slot {
    entry: Arc<Entry>,
    used: AtomicU64,
}

impl Default for MemoryStore {
    fn default() -> MemoryStore {
        MemoryStore::with_capacity(MEMORY_ENTRIES)
    }
}

impl MemoryStore {
    /// An empty store bounded to [`MEMORY_ENTRIES`].
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    /// An empty store holding at most `capacity` entries (at least 1).
    pub fn with_capacity(capacity: usize) -> MemoryStore {
        let capacity = capacity.max(1);
        // One shard per 1024 entries of the bound, at most SHARDS: a small store keeps one
        // bound exactly, a large one divides it evenly.
        let shards = (capacity / 1024).clamp(1, SHARDS);
        MemoryStore {
            shards: (0..shards).map(|_| RwLock::new(HashMap::new())).collect(),
            hasher: RandomState::new(),
            capacity: capacity.div_ceil(shards),
            epoch: AtomicU64::new(0),
        }
    }

    /// How many entries the store holds now.
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.read().unwrap_or_else(|p| p.into_inner()).len())
            .sum()
    }

    fn shard(&self, domain: &Domain) -> &RwLock<HashMap<Domain, Slot>> {
        let index = self.hasher.hash_one(domain) as usize % self.shards.len();
        &self.shards[index]
    }

    fn read(&self, domain: &Domain) -> RwLockReadGuard<'_, HashMap<Domain, Slot>> {
        self.shard(domain).read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self, domain: &Domain) -> RwLockWriteGuard<'_, HashMap<Domain, Slot>> {
        self.shard(domain)
            .write()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// True when the store holds no entry.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Stores `entry` as it is, without merging (for a front layer copying what a shared
    /// store holds).
    pub(crate) fn insert(&self, entry: Arc<Entry>) {
        let mut map = self.write(&entry.domain);
        self.place(&mut map, entry);
    }

    /// Inserts or replaces under the write lock, making room first for a new domain.
    fn place(&self, map: &mut HashMap<Domain, Slot>, entry: Arc<Entry>) {
        let epoch = self.epoch.fetch_add(1, Ordering::Relaxed) + 1;
        if !map.contains_key(&entry.domain) && map.len() >= self.capacity {
            self.make_room(map, &entry);
        }
        map.insert(
            entry.domain.clone(),
            Slot {
                entry,
                used: AtomicU64::new(epoch),
            },
        );
    }

    /// Drops what answers nothing any more (no policy, check due as of the incoming entry's
    /// time), then, if the store is still full, the least recently used eighth.
    fn make_room(&self, map: &mut HashMap<Domain, Slot>, incoming: &Entry) {
        let now = incoming.last_used;
        map.retain(|_, slot| slot.entry.policy.is_some() || slot.entry.next_check > now);
        if map.len() < self.capacity {
            return;
        }
        let mut ages: Vec<(u64, Domain)> = map
            .iter()
            .map(|(domain, slot)| (slot.used.load(Ordering::Relaxed), domain.clone()))
            .collect();
        let drop = (self.capacity / 8).max(1).min(ages.len());
        ages.select_nth_unstable_by_key(drop - 1, |(used, _)| *used);
        for (_, domain) in ages.into_iter().take(drop) {
            map.remove(&domain);
        }
    }
}

// A poisoned lock only means another thread panicked mid-call; the map itself is always
// consistent (entries are replaced whole), so every method keeps using it.
impl Store for MemoryStore {
    fn get(&self, domain: &Domain) -> Result<Option<Arc<Entry>>> {
        let map = self.read(domain);
        Ok(map.get(domain).map(|slot| {
            // Written only when it changes: a store on every hit would bounce the cache
            // line between threads reading neighbouring entries.
            let epoch = self.epoch.load(Ordering::Relaxed);
            if slot.used.load(Ordering::Relaxed) != epoch {
                slot.used.store(epoch, Ordering::Relaxed);
            }
            Arc::clone(&slot.entry)
        }))
    }

    fn local(&self, domain: &Domain) -> Option<Arc<Entry>> {
        self.get(domain).ok().flatten()
    }

    fn put(&self, entry: Entry) -> Result<()> {
        let mut map = self.write(&entry.domain);
        let merged = match map.get(&entry.domain) {
            Some(stored) => entry.merged_onto(&stored.entry),
            None => entry,
        };
        self.place(&mut map, Arc::new(merged));
        Ok(())
    }

    fn remove(&self, domain: &Domain) -> Result<bool> {
        let mut map = self.write(domain);
        Ok(map.remove(domain).is_some())
    }

    fn entries(&self) -> Result<Vec<Arc<Entry>>> {
        let mut all = Vec::new();
        for shard in &self.shards {
            let map = shard.read().unwrap_or_else(|p| p.into_inner());
            all.extend(map.values().map(|slot| Arc::clone(&slot.entry)));
        }
        Ok(all)
    }

    fn location(&self) -> String {
        "memory".into()
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    use super::*;
    use crate::cache::CachedPolicy;

    fn at(s: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_700_000_000 + s)
    }

    fn entry(name: &str, policy: bool, now: u64) -> Entry {
        let domain = Domain::new(name).unwrap();
        let policy = policy.then(|| {
            Arc::new(
                CachedPolicy::from_stored(
                    "a".into(),
                    "version: STSv1\nmode: enforce\nmx: mx.example.com\nmax_age: 86400\n",
                    at(now),
                    at(now + 86_400),
                )
                .unwrap(),
            )
        });
        Entry {
            policy,
            next_check: at(now + 60),
            ..Entry::new(domain, at(now))
        }
    }

    /// Issue 10 item 12: the store stays within its bound; a domain in use survives.
    #[test]
    fn the_store_is_bounded_and_keeps_what_is_used() {
        let store = MemoryStore::with_capacity(100);
        store.put(entry("kept.example", true, 0)).unwrap();
        for i in 0..2000 {
            store.put(entry(&format!("d{i}.example"), true, 0)).unwrap();
            let kept = store.get(&Domain::new("kept.example").unwrap()).unwrap();
            assert!(kept.is_some(), "the domain in use was evicted at {i}");
            assert!(store.len() <= 100, "{} entries", store.len());
        }
    }

    /// Entries without a policy whose check is due go before any policy.
    #[test]
    fn stale_entries_without_policy_go_first() {
        let store = MemoryStore::with_capacity(10);
        for i in 0..5 {
            store.put(entry(&format!("p{i}.example"), true, 0)).unwrap();
        }
        for i in 0..5 {
            store
                .put(entry(&format!("n{i}.example"), false, 0))
                .unwrap();
        }
        // 1000 s later the policy-less entries are due: they make room, the policies stay.
        store.put(entry("new.example", true, 1000)).unwrap();
        assert_eq!(store.len(), 6);
        for i in 0..5 {
            let d = Domain::new(&format!("p{i}.example")).unwrap();
            assert!(store.get(&d).unwrap().is_some());
        }
    }

    /// A large store is sharded; the bound holds for the whole store, and a domain in use
    /// survives in its shard.
    #[test]
    fn a_sharded_store_keeps_its_bound() {
        let store = MemoryStore::with_capacity(16_384);
        assert_eq!(store.shards.len(), 16);
        store.put(entry("kept.example", true, 0)).unwrap();
        for i in 0..40_000 {
            store.put(entry(&format!("d{i}.example"), true, 0)).unwrap();
            if i % 1000 == 0 {
                let kept = store.get(&Domain::new("kept.example").unwrap()).unwrap();
                assert!(kept.is_some(), "the domain in use was evicted at {i}");
            }
        }
        assert!(store.len() <= 16_384, "{} entries", store.len());
        assert!(store.len() > 16_384 / 2, "{} entries", store.len());
        assert_eq!(store.entries().unwrap().len(), store.len());
    }
}
