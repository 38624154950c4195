//! State built once per process and rebuilt in a forked child (S-41): the DNS runtimes and
//! the HTTPS agent keep theirs here.

use std::fmt;
use std::sync::{Arc, RwLock};

/// A value built on first use in each process.
///
/// Keyed by process id, so a forked child builds its own instead of using its parent's. The
/// lock is only ever tried, never waited for: a child forked while another thread of its
/// parent held it (so it stays held in the child for ever) builds a value for each use
/// instead of hanging. Concurrent readers share the value without contending.
pub(crate) struct PerProcess<T> {
    slot: RwLock<Option<(u32, Arc<T>)>>,
}

impl<T> Default for PerProcess<T> {
    fn default() -> Self {
        PerProcess {
            slot: RwLock::new(None),
        }
    }
}

impl<T> fmt::Debug for PerProcess<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PerProcess")
    }
}

impl<T> PerProcess<T> {
    /// This process's value, built with `build` if there is none yet (the lock is not held
    /// while building). When two threads build at once, the first one installed is shared.
    pub(crate) fn get_or_try_init<E>(
        &self,
        build: impl FnOnce() -> Result<T, E>,
    ) -> Result<Arc<T>, E> {
        let pid = std::process::id();
        if let Ok(slot) = self.slot.try_read()
            && let Some((owner, value)) = slot.as_ref()
            && *owner == pid
        {
            return Ok(Arc::clone(value));
        }
        let value = Arc::new(build()?);
        if let Ok(mut slot) = self.slot.try_write() {
            match slot.as_ref() {
                Some((owner, installed)) if *owner == pid => return Ok(Arc::clone(installed)),
                // A parent's value is dropped here: its own drop decides what a child may
                // release (see the DNS state).
                _ => *slot = Some((pid, Arc::clone(&value))),
            }
        }
        Ok(value)
    }
}
