//! The in-process store: fast, shared by all threads, gone when the process ends.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use super::{Entry, Store};
use crate::domain::Domain;
use crate::error::Result;

/// A cache in this process's memory: fast, shared by all threads, gone when the process ends.
/// Used alone (`memory`), or as the front layer of a [`super::LayeredStore`].
#[derive(Debug, Default)]
pub struct MemoryStore {
    entries: RwLock<HashMap<Domain, Arc<Entry>>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    /// Stores `entry` as it is, without merging (for a front layer copying what a shared
    /// store holds).
    pub(crate) fn insert(&self, entry: Arc<Entry>) {
        let mut map = self.entries.write().unwrap_or_else(|p| p.into_inner());
        map.insert(entry.domain.clone(), entry);
    }
}

// A poisoned lock only means another thread panicked mid-call; the map itself is always
// consistent (entries are replaced whole), so every method keeps using it.
impl Store for MemoryStore {
    fn get(&self, domain: &Domain) -> Result<Option<Arc<Entry>>> {
        let map = self.entries.read().unwrap_or_else(|p| p.into_inner());
        Ok(map.get(domain).cloned())
    }

    fn put(&self, entry: Entry) -> Result<()> {
        let mut map = self.entries.write().unwrap_or_else(|p| p.into_inner());
        let merged = match map.get(&entry.domain) {
            Some(stored) => entry.merged_onto(stored),
            None => entry,
        };
        map.insert(merged.domain.clone(), Arc::new(merged));
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

    fn location(&self) -> String {
        "memory".into()
    }
}
