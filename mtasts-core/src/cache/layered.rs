//! Memory in front of shared stores (R-CACHE-7): the hot path reads this process's memory; a
//! domain not in memory, or due for a refresh, is read from the shared stores once.

use std::sync::Arc;

use super::{Entry, MemoryStore, Store};
use crate::domain::Domain;
use crate::error::Result;

/// This process's memory in front of one or more shared stores, nearest first (e.g. a local
/// SQLite file, then Redis for the fleet).
///
/// Reads take the first layer that has the entry and copy it into memory. Writes go to every
/// layer. A layer that fails is logged and skipped: a lookup degrades to the layers that work
/// (and, with none, to DNS and HTTPS) instead of failing.
#[derive(Debug)]
pub struct LayeredStore {
    front: MemoryStore,
    shared: Vec<Arc<dyn Store>>,
}

impl LayeredStore {
    /// Memory in front of `shared` (nearest first).
    pub fn new(shared: Vec<Arc<dyn Store>>) -> LayeredStore {
        LayeredStore {
            front: MemoryStore::new(),
            shared,
        }
    }

    /// The shared layers, nearest first.
    pub fn shared(&self) -> &[Arc<dyn Store>] {
        &self.shared
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

    fn reload(&self, domain: &Domain) -> Result<Option<Arc<Entry>>> {
        for (i, layer) in self.shared.iter().enumerate() {
            match layer.get(domain) {
                Ok(Some(entry)) => {
                    // Warm the nearer layers, so the next process finds it closer.
                    for nearer in &self.shared[..i] {
                        if let Err(e) = nearer.put(Entry::clone(&entry)) {
                            log::debug!("{domain}: copying to {} failed: {e}", nearer.location());
                        }
                    }
                    self.front.insert(Arc::clone(&entry));
                    return Ok(Some(entry));
                }
                Ok(None) => {}
                Err(e) => log::debug!("{domain}: reading {} failed: {e}", layer.location()),
            }
        }
        // No shared layer has it (or none answers): what this process knows is the answer.
        self.front.get(domain)
    }

    fn put(&self, entry: Entry) -> Result<()> {
        let domain = entry.domain.clone();
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
        match merged {
            Some(merged) => {
                let mut merged = Arc::unwrap_or_clone(merged);
                if let (Some(mine), Some(stored)) = (&entry.policy, &merged.policy)
                    && mine.id == stored.id
                    && mine.fetched_at == stored.fetched_at
                {
                    merged.policy = Some(Arc::clone(mine));
                }
                self.front.insert(Arc::new(merged));
            }
            None => self.front.put(entry)?,
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
