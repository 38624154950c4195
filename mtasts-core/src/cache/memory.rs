//! The in-process store: fast, shared by all threads, gone when the process ends, bounded.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use hashbrown::HashTable;

use super::{Entry, Store};
use crate::domain::Domain;
use crate::error::Result;

/// The default bound of a [`MemoryStore`], in entries (about 40 MB of policies at most).
pub const MEMORY_ENTRIES: usize = 50_000;

/// The most entries of the bound one shard holds. A write copies its shard's table, so this
/// bounds what one write costs (a few microseconds).
const SHARD_ENTRIES: usize = 256;

/// The most shards: the shard is chosen by bits 32 to 47 of a domain's hash, which the
/// shard's table does not use to place it (low bits) or to tag it (top seven bits).
const MAX_SHARDS: usize = 1 << 16;

/// A cache in this process's memory: fast, shared by all threads, gone when the process ends.
/// Used alone (`memory`), or as the front layer of a [`super::LayeredStore`].
///
/// Bounded (issue 10: 200,000 lookups of names without a policy must not grow a process by
/// 60 MB): when a new domain would pass the bound, entries without a policy whose next check
/// is due go first (they answer nothing any more), then the least recently used eighth.
///
/// Reads take no lock and write no memory other readers use (only the reading thread's own
/// [`ArcSwap`] slot, and an entry's use mark once after each insertion), so cached lookups on
/// several cores do not slow each other down (issue 13, item 6): each shard's table is an
/// immutable snapshot, read through an [`ArcSwap`], and a write replaces the snapshot with an
/// edited copy. Writers of one shard take turns (its mutex). The bound is split evenly between
/// shards of at most 256 entries, so a small store keeps one bound exactly.
#[derive(Debug)]
pub struct MemoryStore {
    shards: Box<[Shard]>,
    hasher: RandomState,
    /// The bound of each shard.
    capacity: usize,
    /// Advances at every insertion; a slot remembers the value at its last use.
    epoch: AtomicU64,
}

/// A shard's entries, found by the hash of their domain.
type Table = HashTable<Slot>;

#[derive(Debug)]
struct Shard {
    /// What readers see, replaced whole by every write.
    table: ArcSwap<Table>,
    /// Held while a write copies, edits and publishes `table`, so no write is lost.
    writer: Mutex<()>,
}

#[derive(Debug)]
struct Slot {
    /// The hash of `entry.domain` (computed once per lookup, for the shard and the table).
    hash: u64,
    entry: Arc<Entry>,
    used: AtomicU64,
}

/// The copy a write edits. A reader marking the old snapshot while the copy is made may lose
/// that one mark: the entry then looks as old as its previous use until its next lookup.
impl Clone for Slot {
    fn clone(&self) -> Slot {
        Slot {
            hash: self.hash,
            entry: Arc::clone(&self.entry),
            used: AtomicU64::new(self.used.load(Ordering::Relaxed)),
        }
    }
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
        let shards = capacity
            .div_ceil(SHARD_ENTRIES)
            .next_power_of_two()
            .min(MAX_SHARDS);
        MemoryStore {
            shards: (0..shards)
                .map(|_| Shard {
                    table: ArcSwap::from_pointee(HashTable::new()),
                    writer: Mutex::new(()),
                })
                .collect(),
            hasher: RandomState::new(),
            capacity: capacity.div_ceil(shards),
            epoch: AtomicU64::new(0),
        }
    }

    /// How many entries the store holds now.
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| s.table.load().len()).sum()
    }

    /// True when the store holds no entry.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The hash of `domain` and its shard.
    fn locate(&self, domain: &Domain) -> (u64, &Shard) {
        let hash = self.hasher.hash_one(domain);
        // The shard count is a power of two, at most MAX_SHARDS.
        let index = (hash >> 32) as usize & (self.shards.len() - 1);
        (hash, &self.shards[index])
    }

    /// The slot of `domain` in `table`, marked as used now (for the least-recently-used
    /// eviction). The mark is written only when it changes, i.e. after an insertion: a store
    /// on every hit would bounce the cache line between threads reading neighbouring entries.
    fn find<'t>(&self, table: &'t Table, hash: u64, domain: &Domain) -> Option<&'t Slot> {
        let slot = table.find(hash, |slot| slot.entry.domain == *domain)?;
        let epoch = self.epoch.load(Ordering::Relaxed);
        if slot.used.load(Ordering::Relaxed) != epoch {
            slot.used.store(epoch, Ordering::Relaxed);
        }
        Some(slot)
    }

    /// Runs `edit` on a copy of the table of `shard` and publishes the copy, unless `edit`
    /// returns `None` (nothing changed). Writers of the shard take turns.
    fn update<T>(shard: &Shard, edit: impl FnOnce(&mut Table) -> Option<T>) -> Option<T> {
        // A poisoned lock only means another writer panicked; the published table is whole
        // (it is only ever replaced), so writing goes on.
        let _turn = shard.writer.lock().unwrap_or_else(|p| p.into_inner());
        let mut table = Table::clone(&shard.table.load());
        let changed = edit(&mut table)?;
        shard.table.store(Arc::new(table));
        Some(changed)
    }

    /// Stores `entry` as it is, without merging (for a front layer copying what a shared
    /// store holds).
    pub(crate) fn insert(&self, entry: Arc<Entry>) {
        let (hash, shard) = self.locate(&entry.domain);
        MemoryStore::update(shard, |table| {
            self.place(table, hash, entry);
            Some(())
        });
    }

    /// Inserts or replaces in a shard's table, making room first for a new domain.
    fn place(&self, table: &mut Table, hash: u64, entry: Arc<Entry>) {
        let epoch = self.epoch.fetch_add(1, Ordering::Relaxed) + 1;
        let slot = Slot {
            hash,
            entry,
            used: AtomicU64::new(epoch),
        };
        let same = |stored: &Slot| stored.entry.domain == slot.entry.domain;
        if let Ok(mut stored) = table.find_entry(hash, same) {
            *stored.get_mut() = slot;
            return;
        }
        if table.len() >= self.capacity {
            self.make_room(table, &slot.entry);
        }
        table.insert_unique(hash, slot, |slot| slot.hash);
    }

    /// Drops what answers nothing any more (no policy, check due as of the incoming entry's
    /// time), then, if the shard is still full, its least recently used eighth.
    fn make_room(&self, table: &mut Table, incoming: &Entry) {
        let now = incoming.last_used;
        table.retain(|slot| slot.entry.policy.is_some() || slot.entry.next_check > now);
        if table.len() < self.capacity {
            return;
        }
        let mut ages: Vec<(u64, u64, Arc<Entry>)> = table
            .iter()
            .map(|slot| {
                let used = slot.used.load(Ordering::Relaxed);
                (used, slot.hash, Arc::clone(&slot.entry))
            })
            .collect();
        let drop = (self.capacity / 8).max(1).min(ages.len());
        ages.select_nth_unstable_by_key(drop - 1, |(used, _, _)| *used);
        for (_, hash, entry) in ages.into_iter().take(drop) {
            if let Ok(slot) = table.find_entry(hash, |slot| Arc::ptr_eq(&slot.entry, &entry)) {
                slot.remove();
            }
        }
    }
}

impl Store for MemoryStore {
    fn get(&self, domain: &Domain) -> Result<Option<Arc<Entry>>> {
        let (hash, shard) = self.locate(domain);
        let table = shard.table.load();
        Ok(self
            .find(&table, hash, domain)
            .map(|slot| Arc::clone(&slot.entry)))
    }

    fn with_entry(&self, domain: &Domain, f: &mut dyn FnMut(&Entry)) -> Result<bool> {
        let (hash, shard) = self.locate(domain);
        let table = shard.table.load();
        Ok(self
            .find(&table, hash, domain)
            .map(|slot| f(&slot.entry))
            .is_some())
    }

    fn local(&self, domain: &Domain) -> Option<Arc<Entry>> {
        self.get(domain).ok().flatten()
    }

    fn put(&self, entry: Entry) -> Result<()> {
        let (hash, shard) = self.locate(&entry.domain);
        MemoryStore::update(shard, |table| {
            let stored = table.find(hash, |slot| slot.entry.domain == entry.domain);
            let merged = match stored {
                Some(stored) => entry.merged_onto(&stored.entry),
                None => entry,
            };
            self.place(table, hash, Arc::new(merged));
            Some(())
        });
        Ok(())
    }

    fn remove(&self, domain: &Domain) -> Result<bool> {
        let (hash, shard) = self.locate(domain);
        let same = |slot: &Slot| slot.entry.domain == *domain;
        if shard.table.load().find(hash, same).is_none() {
            return Ok(false);
        }
        let removed = MemoryStore::update(shard, |table| {
            table.find_entry(hash, same).ok().map(|slot| {
                slot.remove();
            })
        });
        Ok(removed.is_some())
    }

    fn entries(&self) -> Result<Vec<Arc<Entry>>> {
        let mut all = Vec::new();
        for shard in &self.shards {
            all.extend(
                shard
                    .table
                    .load()
                    .iter()
                    .map(|slot| Arc::clone(&slot.entry)),
            );
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

    /// A large store holds what its bound says: 100,000 policies in a bound of 200,000 are
    /// all kept (the shards split the bound evenly, and the domains spread over them).
    #[test]
    fn a_large_store_keeps_everything_within_its_bound() {
        let store = MemoryStore::with_capacity(200_000);
        for i in 0..100_000 {
            store
                .put(entry(&format!("b{i:05}.bench.test"), true, 0))
                .unwrap();
        }
        assert_eq!(store.len(), 100_000);
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

    /// `with_entry` lends the entry `get` hands out, and nothing for an unknown domain; a
    /// reader keeps the entry it read whole while a write replaces it.
    #[test]
    fn with_entry_lends_what_get_returns() {
        let store = MemoryStore::with_capacity(1000);
        store.put(entry("a.example", true, 0)).unwrap();
        let domain = Domain::new("a.example").unwrap();
        let got = store.get(&domain).unwrap().unwrap();
        let mut lent = None;
        assert!(
            store
                .with_entry(&domain, &mut |e| lent = Some(e.clone()))
                .unwrap()
        );
        assert_eq!(lent.as_ref(), Some(&*got));
        let unknown = Domain::new("b.example").unwrap();
        assert!(
            !store
                .with_entry(&unknown, &mut |_| panic!("no entry"))
                .unwrap()
        );

        store.put(entry("a.example", true, 100)).unwrap();
        assert_eq!(
            got.last_used,
            at(0),
            "the entry read before the write is unchanged"
        );
        assert_eq!(store.get(&domain).unwrap().unwrap().last_used, at(100));
        assert!(store.remove(&domain).unwrap());
        assert!(!store.remove(&domain).unwrap());
        assert!(store.is_empty());
    }

    /// A large store is sharded; the bound holds for the whole store, and a domain in use
    /// survives in its shard.
    #[test]
    fn a_sharded_store_keeps_its_bound() {
        let store = MemoryStore::with_capacity(16_384);
        assert_eq!(store.shards.len(), 64);
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
