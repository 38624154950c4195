//! Where the cache lives, configured as one string (R-CACHE-7).

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use super::{LayeredStore, MEMORY_ENTRIES, MemoryStore, RedisStore, SqliteStore, Store};
use crate::error::{Error, Result};

/// The documented cache path for MTAs and system services.
pub const SYSTEM_CACHE_PATH: &str = "/var/cache/mtasts/cache.db";

/// Where the policy cache lives, parsed from one string:
///
/// | string | cache |
/// |---|---|
/// | `memory` | this process only (lost when it ends) |
/// | `/path/to/cache.db` (or `sqlite:/path`) | a SQLite file shared by every process on the host |
/// | `redis://host:6379/0` | a Redis server shared by a fleet of hosts |
/// | `/path/to/cache.db,redis://host:6379/0` | a local SQLite file in front of Redis |
///
/// Every persistent location also gets this process's memory in front ([`LayeredStore`]).
///
/// ```rust
/// use mtasts_core::CacheLocation;
///
/// let fleet: CacheLocation = "/var/cache/mtasts/cache.db,redis://10.0.0.5:6379/0".parse()?;
/// assert_eq!(fleet.to_string(), "/var/cache/mtasts/cache.db,redis://10.0.0.5:6379/0");
/// assert_eq!("memory".parse::<CacheLocation>()?, CacheLocation::Memory);
/// # Ok::<(), mtasts_core::Error>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum CacheLocation {
    /// This process's memory only (the library's default).
    #[default]
    Memory,
    /// Shared layers behind this process's memory, nearest first.
    Shared(Vec<SharedCache>),
}

/// One shared cache layer.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SharedCache {
    /// A SQLite file.
    Sqlite(PathBuf),
    /// A Redis server URL (`redis://`, `rediss://`, `redis+unix://`).
    Redis(String),
}

impl CacheLocation {
    /// A SQLite file at `path`.
    pub fn sqlite(path: impl Into<PathBuf>) -> CacheLocation {
        CacheLocation::Shared(vec![SharedCache::Sqlite(path.into())])
    }

    /// The per-user default of the `mtasts` command: `$XDG_CACHE_HOME/mtasts/cache.db`, else
    /// `$HOME/.cache/mtasts/cache.db`; `None` when neither variable is set.
    pub fn user_default() -> Option<CacheLocation> {
        let base = std::env::var_os("XDG_CACHE_HOME")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or_else(|| {
                std::env::var_os("HOME")
                    .filter(|v| !v.is_empty())
                    .map(|home| Path::new(&home).join(".cache"))
            })?;
        Some(CacheLocation::sqlite(base.join("mtasts").join("cache.db")))
    }

    /// Opens the cache: creates files and directories as needed, connects lazily to Redis.
    pub fn open(&self) -> Result<Arc<dyn Store>> {
        self.open_with(MEMORY_ENTRIES)
    }

    /// [`CacheLocation::open`] with this process's memory (the whole cache for `memory`, the
    /// front layer otherwise) bounded to `memory_entries` entries.
    pub fn open_with(&self, memory_entries: usize) -> Result<Arc<dyn Store>> {
        let memory = MemoryStore::with_capacity(memory_entries);
        match self {
            CacheLocation::Memory => Ok(Arc::new(memory)),
            CacheLocation::Shared(layers) => {
                let shared = layers
                    .iter()
                    .map(SharedCache::open)
                    .collect::<Result<Vec<_>>>()?;
                Ok(Arc::new(LayeredStore::with_memory(shared, memory)))
            }
        }
    }
}

impl SharedCache {
    fn open(&self) -> Result<Arc<dyn Store>> {
        match self {
            SharedCache::Sqlite(path) => Ok(Arc::new(SqliteStore::open(path)?)),
            SharedCache::Redis(url) => Ok(Arc::new(RedisStore::connect(url)?)),
        }
    }
}

impl FromStr for CacheLocation {
    type Err = Error;

    fn from_str(s: &str) -> Result<CacheLocation> {
        let s = s.trim();
        if s == "memory" {
            return Ok(CacheLocation::Memory);
        }
        let layers = s
            .split(',')
            .map(|part| {
                let part = part.trim();
                let bad = |why: &str| Error::Config {
                    reason: format!("cache location {s:?}: {why}"),
                };
                if part.is_empty() {
                    return Err(bad("an empty layer"));
                }
                if ["redis://", "rediss://", "redis+unix://", "unix://"]
                    .iter()
                    .any(|scheme| part.starts_with(scheme))
                {
                    return Ok(SharedCache::Redis(part.to_string()));
                }
                if part.contains("://") {
                    return Err(bad("not a file path and not a redis:// URL"));
                }
                if part == "memory" {
                    return Err(bad("`memory` cannot be combined with other layers"));
                }
                let path = part.strip_prefix("sqlite:").unwrap_or(part);
                if path.is_empty() {
                    return Err(bad(
                        "`sqlite:` needs a file path, e.g. sqlite:/var/cache/mtasts/cache.db",
                    ));
                }
                Ok(SharedCache::Sqlite(PathBuf::from(path)))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(CacheLocation::Shared(layers))
    }
}

impl fmt::Display for CacheLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CacheLocation::Memory => f.write_str("memory"),
            CacheLocation::Shared(layers) => {
                for (i, layer) in layers.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    match layer {
                        SharedCache::Sqlite(path) => write!(f, "{}", path.display())?,
                        SharedCache::Redis(url) => f.write_str(url)?,
                    }
                }
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_parse() {
        let ok = |s: &str| s.parse::<CacheLocation>().unwrap();
        assert_eq!(ok("memory"), CacheLocation::Memory);
        assert_eq!(
            ok("/var/cache/x.db"),
            CacheLocation::sqlite("/var/cache/x.db")
        );
        assert_eq!(ok("sqlite:rel/x.db"), CacheLocation::sqlite("rel/x.db"));
        assert_eq!(
            ok("/a.db, redis://127.0.0.1:6379/2"),
            CacheLocation::Shared(vec![
                SharedCache::Sqlite("/a.db".into()),
                SharedCache::Redis("redis://127.0.0.1:6379/2".into()),
            ])
        );
        for (bad, why) in [
            ("", "an empty layer"),
            ("http://x", "not a file path"),
            ("/a.db,,redis://x", "an empty layer"),
            ("memory,/a.db", "cannot be combined"),
            ("sqlite:", "needs a file path"),
        ] {
            match bad.parse::<CacheLocation>() {
                Err(Error::Config { reason }) => {
                    assert!(reason.contains(why), "{bad:?}: {reason}")
                }
                other => panic!("{bad:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn user_default_is_under_the_cache_directory() {
        if let Some(CacheLocation::Shared(layers)) = CacheLocation::user_default() {
            match &layers[..] {
                [SharedCache::Sqlite(path)] => assert!(path.ends_with("mtasts/cache.db")),
                other => panic!("{other:?}"),
            }
        }
    }
}
