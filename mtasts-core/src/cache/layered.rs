//! Memory in front of shared stores (R-CACHE-7): the hot path reads this process's memory; a
//! domain not in memory, or due for a refresh, is read from the shared stores once.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use super::{Entry, MemoryStore, Store};
use crate::domain::Domain;
use crate::error::{Error, Result};

/// This process's memory in front of one or more shared stores, nearest first (e.g. a local
/// SQLite file, then Redis for the fleet).
///
/// Reads take the first layer that has the entry and merge it into memory
/// ([`Entry::merged_onto`], so a newer policy only this process holds is never rolled back).
/// Writes go to every layer; a layer that fails a write is logged and skipped.
///
/// A read for which no layer has the entry while some layer failed is an error
/// ([`Error::Cache`]): the failing layer may hold a policy, so the engine cannot tell that the
/// domain has none. Each layer's read outage is logged once, at warning level, when it starts,
/// and once when it ends.
#[derive(Debug)]
pub struct LayeredStore {
    front: MemoryStore,
    shared: Vec<Arc<dyn Store>>,
    /// Per shared layer: its last read failed (an outage is running).
    unreadable: Vec<AtomicBool>,
}

impl LayeredStore {
    /// Memory (bounded to [`MEMORY_ENTRIES`](super::MEMORY_ENTRIES)) in front of `shared`
    /// (nearest first).
    pub fn new(shared: Vec<Arc<dyn Store>>) -> LayeredStore {
        LayeredStore::with_memory(shared, MemoryStore::new())
    }

    /// `front` (e.g. [`MemoryStore::with_capacity`]) in front of `shared` (nearest first).
    pub fn with_memory(shared: Vec<Arc<dyn Store>>, front: MemoryStore) -> LayeredStore {
        LayeredStore {
            front,
            unreadable: shared.iter().map(|_| AtomicBool::new(false)).collect(),
            shared,
        }
    }

    /// Notes the outcome of a read of layer `i`: logs the start and the end of an outage.
    fn note_read(&self, i: usize, failure: Option<&Error>) {
        let Some(flag) = self.unreadable.get(i) else {
            return;
        };
        let location = || self.shared[i].location();
        match failure {
            Some(e) => {
                if !flag.swap(true, Ordering::Relaxed) {
                    log::warn!(
                        "the policy cache {} cannot be read: {e}; until it can, a domain \
                         found without a policy is answered as \"cannot tell\" (defer)",
                        location()
                    );
                } else {
                    log::debug!("reading {} failed: {e}", location());
                }
            }
            None => {
                if flag.swap(false, Ordering::Relaxed) {
                    log::info!("the policy cache {} can be read again", location());
                }
            }
        }
    }

    /// The shared layers, nearest first.
    pub fn shared(&self) -> &[Arc<dyn Store>] {
        &self.shared
    }

    /// Merges what a shared layer holds onto this process's copy ([`Entry::merged_onto`]): a
    /// newer policy that reached only memory (its shared write failed) is kept, never rolled
    /// back to an older one. Returns what memory holds now.
    fn merge_into_front(&self, shared: Arc<Entry>) -> Arc<Entry> {
        let Some(front) = self.local(&shared.domain) else {
            self.front.insert(Arc::clone(&shared));
            return shared;
        };
        if *front == *shared {
            return front;
        }
        let mut incoming = Arc::unwrap_or_clone(shared);
        // Merge as of the later of the two uses, so neither side's times are bounded (see
        // `Entry::clamped`) relative to an older instant than they were written at.
        incoming.last_used = incoming.last_used.max(front.last_used);
        let mut merged = incoming.merged_onto(&front);
        // Keep this process's parsed policy when it is the same one (no second copy).
        if let (Some(mine), Some(kept)) = (&front.policy, &merged.policy)
            && mine.id == kept.id
            && mine.fetched_at == kept.fetched_at
        {
            merged.policy = Some(Arc::clone(mine));
        }
        let merged = Arc::new(merged);
        self.front.insert(Arc::clone(&merged));
        merged
    }

    /// Runs `op` on each shared layer; the first success's value, or the last error if every
    /// layer failed (`None` when there are no shared layers). Failures are logged at debug
    /// level only: each store reports its own outages (once per outage, not once per call,
    /// so an MTA's log is not flooded while Redis is down).
    fn each<T>(
        &self,
        what: &str,
        mut op: impl FnMut(&dyn Store) -> Result<T>,
    ) -> Option<Result<T>> {
        let mut first_ok = None;
        let mut last_err = None;
        for layer in &self.shared {
            match op(layer.as_ref()) {
                Ok(v) => {
                    first_ok.get_or_insert(v);
                }
                Err(e) => {
                    log::debug!("{what} in {} failed: {e}", layer.location());
                    last_err = Some(e);
                }
            }
        }
        match (first_ok, last_err) {
            (Some(v), _) => Some(Ok(v)),
            (None, Some(e)) => Some(Err(e)),
            (None, None) => None,
        }
    }
}

impl Store for LayeredStore {
    fn get(&self, domain: &Domain) -> Result<Option<Arc<Entry>>> {
        match self.front.get(domain)? {
            Some(entry) => Ok(Some(entry)),
            None => self.reload(domain),
        }
    }

    fn with_entry(&self, domain: &Domain, f: &mut dyn FnMut(&Entry)) -> Result<bool> {
        if self.front.with_entry(domain, f)? {
            return Ok(true);
        }
        Ok(self.reload(domain)?.map(|entry| f(&entry)).is_some())
    }

    fn reload(&self, domain: &Domain) -> Result<Option<Arc<Entry>>> {
        let mut failed = None;
        for (i, layer) in self.shared.iter().enumerate() {
            let read = layer.get(domain);
            self.note_read(i, read.as_ref().err());
            match read {
                Ok(Some(entry)) => {
                    // Warm the nearer layers, so the next process finds it closer.
                    for nearer in &self.shared[..i] {
                        if let Err(e) = nearer.put(Entry::clone(&entry)) {
                            log::debug!("{domain}: copying to {} failed: {e}", nearer.location());
                        }
                    }
                    return Ok(Some(self.merge_into_front(entry)));
                }
                Ok(None) => {}
                Err(e) => failed = Some(e),
            }
        }
        match failed {
            // R-CACHE-7: a layer that could not be read may hold a policy: not "no entry".
            Some(e) => {
                // The layer's own error is a cache error too: its reason, not its prefix again.
                let why = match e {
                    Error::Cache { reason } => reason,
                    other => other.to_string(),
                };
                Err(Error::Cache {
                    reason: format!(
                        "the shared policy cache could not be read for {domain}: {why}"
                    ),
                })
            }
            // No shared layer has it: what this process knows is the answer.
            None => self.front.get(domain),
        }
    }

    fn local(&self, domain: &Domain) -> Option<Arc<Entry>> {
        self.front.get(domain).ok().flatten()
    }

    fn put(&self, entry: Entry) -> Result<()> {
        let domain = entry.domain.clone();
        // Memory first: a thread of this process that finds the entry in a shared layer (its
        // first look in memory came just before this write) then finds it in memory too, and
        // answers with this caller's policy rather than a copy parsed from the shared layer
        // (S-42: all answer with one `Arc<CachedPolicy>`).
        self.front.put(entry.clone())?;
        let written = self.each("writing", |layer| layer.put(entry.clone()));
        // Memory mirrors what the nearest working shared layer holds after its merge. When
        // that is the policy just written, keep the caller's copy: no second parse, and every
        // thread shares one `Arc<CachedPolicy>`.
        let merged = match written {
            Some(Ok(())) => self
                .shared
                .iter()
                .find_map(|layer| layer.get(&domain).ok().flatten()),
            _ => None,
        };
        // When no shared layer took the write, memory keeps what this process learnt.
        if let Some(merged) = merged {
            let mut merged = Arc::unwrap_or_clone(merged);
            if let (Some(mine), Some(stored)) = (&entry.policy, &merged.policy)
                && mine.id == stored.id
                && mine.fetched_at == stored.fetched_at
            {
                merged.policy = Some(Arc::clone(mine));
            }
            self.front.insert(Arc::new(merged));
        }
        Ok(())
    }

    fn remove(&self, domain: &Domain) -> Result<bool> {
        let front = self.front.remove(domain)?;
        match self.each("removing", |layer| layer.remove(domain)) {
            Some(Ok(shared)) => Ok(front || shared),
            Some(Err(e)) => Err(e),
            None => Ok(front),
        }
    }

    fn entries(&self) -> Result<Vec<Arc<Entry>>> {
        match self.each("listing", |layer| layer.entries()) {
            Some(result) => result,
            None => self.front.entries(),
        }
    }

    fn purge_unused(&self, cutoff: std::time::SystemTime) -> Result<usize> {
        let front = self.front.purge_unused(cutoff)?;
        match self.each("purging", |layer| layer.purge_unused(cutoff)) {
            Some(result) => result,
            None => Ok(front),
        }
    }

    fn clear(&self) -> Result<usize> {
        let front = self.front.clear()?;
        match self.each("clearing", |layer| layer.clear()) {
            Some(result) => result,
            None => Ok(front),
        }
    }

    fn location(&self) -> String {
        if self.shared.is_empty() {
            return self.front.location();
        }
        let shared: Vec<String> = self.shared.iter().map(|l| l.location()).collect();
        shared.join(",")
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Barrier;
    use std::sync::atomic::AtomicBool;
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    use super::*;
    use crate::cache::CachedPolicy;

    fn at(s: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_700_000_000 + s)
    }

    /// A shared layer that hands out its own copy of each policy (as SQLite and Redis parse
    /// theirs) and, once armed, holds a write back after storing it until told to go on.
    #[derive(Debug)]
    struct Paused {
        inner: MemoryStore,
        armed: AtomicBool,
        stored: Barrier,
        resume: Barrier,
    }

    impl Store for Paused {
        fn get(&self, domain: &Domain) -> Result<Option<Arc<Entry>>> {
            Ok(self.inner.get(domain)?.map(|entry| {
                let mut copy = Entry::clone(&entry);
                copy.policy = copy.policy.map(|p| Arc::new(CachedPolicy::clone(&p)));
                Arc::new(copy)
            }))
        }
        fn put(&self, entry: Entry) -> Result<()> {
            self.inner.put(entry)?;
            if self.armed.swap(false, Ordering::SeqCst) {
                self.stored.wait();
                self.resume.wait();
            }
            Ok(())
        }
        fn remove(&self, domain: &Domain) -> Result<bool> {
            self.inner.remove(domain)
        }
        fn entries(&self) -> Result<Vec<Arc<Entry>>> {
            self.inner.entries()
        }
        fn location(&self) -> String {
            "paused".into()
        }
    }

    /// S-42 through a shared layer: a thread that looks while another thread's write is in
    /// the shared layer but the writer has not returned answers with the writer's policy.
    #[test]
    fn a_read_during_a_write_answers_with_the_writers_policy() {
        let shared = Arc::new(Paused {
            inner: MemoryStore::new(),
            armed: AtomicBool::new(true),
            stored: Barrier::new(2),
            resume: Barrier::new(2),
        });
        let layered = Arc::new(LayeredStore::new(vec![shared.clone() as Arc<dyn Store>]));
        let domain = Domain::new("example.com").unwrap();
        let policy = Arc::new(
            CachedPolicy::from_stored(
                "a".into(),
                "version: STSv1\nmode: enforce\nmx: mx.example.com\nmax_age: 86400\n",
                at(0),
                at(86_400),
            )
            .unwrap(),
        );
        let entry = Entry {
            policy: Some(Arc::clone(&policy)),
            next_check: at(60),
            ..Entry::new(domain.clone(), at(0))
        };
        let writer = {
            let layered = Arc::clone(&layered);
            std::thread::spawn(move || layered.put(entry))
        };
        shared.stored.wait();
        let mut read = None;
        assert!(
            layered
                .with_entry(&domain, &mut |e| read = e.policy.clone())
                .unwrap()
        );
        shared.resume.wait();
        writer.join().unwrap().unwrap();
        assert!(Arc::ptr_eq(&read.unwrap(), &policy), "the writer's policy");
        let after = layered.get(&domain).unwrap().unwrap();
        assert!(Arc::ptr_eq(after.policy.as_ref().unwrap(), &policy));
    }
}
