//! A Redis server as the cache shared by a fleet of MTAs (R-CACHE-7): what one host fetched,
//! the others enforce.
//!
//! # Storage format (version 1)
//!
//! One hash per policy domain at `<prefix>:v1:entry:<domain>` (default prefix `mtasts`), so
//! `redis-cli HGETALL mtasts:v1:entry:example.com` shows an entry. A later format uses `v2`
//! keys and coexists with this one. Times are integer milliseconds since the Unix epoch.
//!
//! | field | value |
//! |---|---|
//! | `next_check` | no TXT query before this (R-CACHE-5) |
//! | `last_used` | last lookup that used the entry (R-CACHE-8) |
//! | `failures` | refreshes that failed in a row (R-CACHE-6) |
//! | `policy_id`, `policy`, `fetched_at`, `expires_at` | the cached policy: record id, raw text (parsed again on load, R-POL-8), fetch time, expiry (R-CACHE-1); all four or none |
//! | `backoff_id`, `backoff_until`, `backoff_result`, `backoff_reason` | a running fetch backoff (R-FETCH-10), the result type as its RFC 8460 string; all four or none |
//!
//! The fields are read and written by the cache's entry codec (`cache/codec.rs`), with its
//! one rule: what this version does not know (a field added by a later version 1 writer, an
//! unknown result type, an incomplete backoff) is dropped with a warning and the policy kept,
//! so hosts running different versions can share one Redis. A hash the codec finds
//! unreadable (a missing time, an unusable policy) is reported as [`Error::Cache`] when read
//! alone, skipped in listings, and replaced by the next write.
//!
//! # Expiry
//!
//! Every key expires on its own ([`ttl`]): Redis forgets an entry a day after the last
//! instant it can matter (policy expiry, backoff end, next TXT check), and never keeps it more
//! than [`UNUSED_LIMIT`] after its last use (R-CACHE-8).
//!
//! # Failures
//!
//! Every call has a deadline (connect and I/O timeouts). When Redis fails, the store reports
//! [`Error::Cache`] and, for a short back-off, answers every call with [`Error::Cache`] at once
//! without touching the network; one call then probes again. [`super::LayeredStore`] turns
//! those errors into "use the other layers", so an outage costs an MTA one timeout, not one
//! per lookup.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use redis::{Client, Connection, ConnectionAddr, ConnectionLike, RedisError, RedisResult};

use super::codec::{self, EntryFields, Record, Value};
use super::{Entry, Store, UNUSED_LIMIT};
use crate::domain::Domain;
use crate::error::{Error, Result};

/// The key format version, part of every key.
const FORMAT: &str = "v1";
/// The hash fields of an entry (module docs): the codec's standard names but two, as
/// version 1 has always written them. The domain is the key's, never a field.
const FIELDS: EntryFields = EntryFields {
    policy_text: "policy",
    backoff_result: "backoff_result",
    ..EntryFields::STANDARD
};
/// Keys a `SCAN` step asks for (a hint to Redis, not a limit).
const SCAN_COUNT: usize = 500;
/// Keys read or deleted per pipelined round trip.
const BATCH: usize = 200;
/// Attempts of one `put` when other writers keep changing the entry between `WATCH` and
/// `EXEC`; each attempt is a few round trips, so this bounds a `put` under contention.
const PUT_ATTEMPTS: usize = 32;
/// Idle connections kept per process (see [`RedisStore`] on threads).
const MAX_IDLE: usize = 4;
/// How long Redis keeps an entry after the last instant it can matter: long enough that a
/// host which was busy elsewhere still finds it, short enough that dead entries go.
const SLACK: Duration = Duration::from_secs(86_400);
/// The same for an entry with neither a valid policy nor a running backoff: after its
/// `next_check` it only says "looked, found nothing", which the next lookup re-learns anyway.
const BARE_SLACK: Duration = Duration::from_secs(3_600);

/// The policy cache in a Redis server, shared by every process of every host that uses the
/// same server and key prefix (R-CACHE-7).
///
/// ```rust,no_run
/// use std::sync::Arc;
/// use mtasts_core::{Config, LayeredStore, RedisStore, Resolver};
///
/// let redis = RedisStore::connect("redis://10.0.0.5:6379/0")?;
/// // This process's memory in front: lookups keep working from memory when Redis is down.
/// let store = Arc::new(LayeredStore::new(vec![Arc::new(redis)]));
/// let resolver = Resolver::builder(Config::default()).store(store).build()?;
/// # Ok::<(), mtasts_core::Error>(())
/// ```
///
/// **Writes** merge with the stored entry by [`Entry::merged_onto`] inside
/// `WATCH`/`MULTI`/`EXEC`, retried while other writers change the entry (at most
/// 32 attempts), so the newest fetch wins whatever order hosts write in.
///
/// **Threads**: a tiny pool. A call takes an idle connection (or opens one), does its round
/// trips without holding any lock, and gives it back; at most 4 idle connections are kept.
/// Threads thus never wait for one another's round trips or timeouts, and the pool's lock is
/// held only to push or pop, so a `fork()` by another thread cannot leave it locked.
///
/// **Fork** (R-CACHE-7: a forked child must work): the pool remembers the process that opened
/// its connections. A child never uses them: it forgets them without closing or sending
/// anything (the parent still owns the sockets) and opens its own.
///
/// **Outages**: connect and I/O timeouts bound every round trip (defaults
/// [`RedisStore::CONNECT_TIMEOUT`], [`RedisStore::IO_TIMEOUT`]). After a failure the store
/// returns [`Error::Cache`] immediately for [`RedisStore::RETRY_AFTER`], then lets one call
/// try again. The outage is logged once when it starts and once when it ends. The timeouts
/// do not bound the system resolver's lookup of a host name in the URL: give an address (or
/// a name from `/etc/hosts`) where DNS itself may be down.
pub struct RedisStore {
    client: Client,
    location: String,
    key_prefix: String,
    connect_timeout: Duration,
    io_timeout: Duration,
    retry_after: Duration,
    pool: Mutex<Pool>,
    outage: Mutex<Option<Outage>>,
}

/// Idle connections, and the process they belong to.
struct Pool {
    pid: u32,
    idle: Vec<Connection>,
}

/// A Redis failure in progress.
struct Outage {
    /// No call reaches the network before this instant.
    retry_at: Instant,
    /// The last failure, for the error every call returns meanwhile.
    reason: String,
}

impl RedisStore {
    /// Default deadline for opening a connection (TCP connect, then `AUTH`/`SELECT`). A
    /// Redis shared by a fleet is on the local network: half a second is generous there and
    /// short enough for an MTA in the middle of a delivery.
    pub const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);
    /// Default deadline for each read and each write on a connection.
    pub const IO_TIMEOUT: Duration = Duration::from_secs(1);
    /// Default back-off after a failure: calls meanwhile fail at once (no timeout each).
    pub const RETRY_AFTER: Duration = Duration::from_secs(5);
    /// Default key prefix: keys are `mtasts:v1:entry:<domain>`.
    pub const KEY_PREFIX: &str = "mtasts";

    /// A store in the Redis server at `url`: `redis://[user:password@]host[:port][/db]` or
    /// `redis+unix:///path/to/socket[?db=N]`. Nothing is sent before the first call, so an
    /// MTA starts even while Redis is down.
    ///
    /// Errors: [`Error::Config`] for a URL that is not a usable Redis URL, including
    /// `rediss://` (TLS to Redis is not built in).
    pub fn connect(url: &str) -> Result<RedisStore> {
        let bad = |reason: String| Error::Config {
            reason: format!("Redis cache URL {}: {reason}", redact(url)),
        };
        let client = Client::open(url).map_err(|e| bad(e.to_string()))?;
        let info = client.get_connection_info();
        let location = match info.addr() {
            ConnectionAddr::Tcp(host, port) => {
                let host = if host.contains(':') && !host.starts_with('[') {
                    format!("[{host}]")
                } else {
                    host.clone()
                };
                let user = info
                    .redis_settings()
                    .username()
                    .map(|u| format!("{u}@"))
                    .unwrap_or_default();
                format!("redis://{user}{host}:{port}/{}", info.redis_settings().db())
            }
            ConnectionAddr::Unix(path) => format!(
                "redis+unix://{}?db={}",
                path.display(),
                info.redis_settings().db()
            ),
            _ => {
                return Err(bad(
                    "TLS (rediss://) is not supported; reach Redis over a trusted network, \
                     a Unix socket or a TLS tunnel"
                        .into(),
                ));
            }
        };
        Ok(RedisStore {
            client,
            location,
            key_prefix: RedisStore::KEY_PREFIX.into(),
            connect_timeout: RedisStore::CONNECT_TIMEOUT,
            io_timeout: RedisStore::IO_TIMEOUT,
            retry_after: RedisStore::RETRY_AFTER,
            pool: Mutex::new(Pool {
                pid: std::process::id(),
                idle: Vec::new(),
            }),
            outage: Mutex::new(None),
        })
    }

    /// Replaces the connect and per-read/write deadlines (at least 1 ms each).
    pub fn with_timeouts(mut self, connect: Duration, io: Duration) -> RedisStore {
        let floor = Duration::from_millis(1);
        self.connect_timeout = connect.max(floor);
        self.io_timeout = io.max(floor);
        self
    }

    /// Replaces the back-off after a failure, during which calls fail without trying.
    pub fn with_retry_after(mut self, retry_after: Duration) -> RedisStore {
        self.retry_after = retry_after;
        self
    }

    /// Keeps the entries under `prefix` instead of `mtasts` (keys `<prefix>:v1:entry:<domain>`),
    /// e.g. to give two fleets one Redis. Stores share entries exactly when they share the
    /// server, the database and the prefix.
    ///
    /// Errors: [`Error::Config`] for an empty prefix or one with white space or control
    /// characters.
    pub fn with_key_prefix(mut self, prefix: &str) -> Result<RedisStore> {
        if prefix.is_empty() || prefix.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(Error::Config {
                reason: format!(
                    "Redis key prefix {prefix:?}: must be non-empty, without spaces or control characters"
                ),
            });
        }
        self.key_prefix = prefix.into();
        Ok(self)
    }

    /// The key of `domain`'s entry, e.g. `mtasts:v1:entry:example.com`.
    pub fn key(&self, domain: &Domain) -> String {
        format!("{}{domain}", self.key_head())
    }

    /// Checks that the server answers (`PING`), e.g. for a configuration check. Subject to
    /// the outage back-off like every call.
    pub fn ping(&self) -> Result<()> {
        self.run(|con| redis::cmd("PING").exec(con))
    }

    /// The key prefix (`mtasts` unless [`RedisStore::with_key_prefix`] changed it); the
    /// TLS-RPT report store puts its keys under it too.
    pub(crate) fn key_prefix(&self) -> &str {
        &self.key_prefix
    }

    /// The server's location for messages (no password).
    pub(crate) fn location_name(&self) -> &str {
        &self.location
    }

    /// The connect and per-read/write deadlines.
    pub(crate) fn timeouts(&self) -> (Duration, Duration) {
        (self.connect_timeout, self.io_timeout)
    }

    /// Everything before the domain in a key.
    fn key_head(&self) -> String {
        format!("{}:{FORMAT}:entry:", self.key_prefix)
    }

    /// The `SCAN MATCH` pattern of every entry key: the prefix with glob characters escaped.
    fn key_pattern(&self) -> String {
        let mut pattern = String::new();
        for c in self.key_head().chars() {
            if matches!(c, '*' | '?' | '[' | ']' | '\\') {
                pattern.push('\\');
            }
            pattern.push(c);
        }
        pattern.push('*');
        pattern
    }

    /// The domain a key belongs to, if it is an entry key of this store.
    fn domain_of(&self, key: &str) -> Option<Domain> {
        let name = key.strip_prefix(&self.key_head())?;
        Domain::new(name).ok().filter(|d| d.as_str() == name)
    }

    /// Runs `op` on a connection of this process, within the outage rules (module docs).
    ///
    /// A pooled connection that turns out to be dead (the server restarted, or closed it
    /// while idle) is replaced once by a fresh one before the failure counts as an outage;
    /// every operation here is safe to run twice (`put` merges, the others read or delete;
    /// the TLS-RPT store's increments carry a token that makes a repeat a no-op).
    pub(crate) fn run<T>(&self, op: impl Fn(&mut Connection) -> RedisResult<T>) -> Result<T> {
        self.admit()?;
        let pid = std::process::id();
        if let Some(mut con) = self.take_idle(pid) {
            match op(&mut con) {
                Ok(value) => {
                    self.give_back(con, pid);
                    self.recovered();
                    return Ok(value);
                }
                Err(e) if e.is_connection_dropped() && !e.is_timeout() => {
                    log::debug!(
                        "{}: idle connection was closed ({e}); reconnecting",
                        self.location
                    );
                }
                Err(e) => return Err(self.failed(e)),
            }
        }
        let mut con = self.open().map_err(|e| self.failed(e))?;
        match op(&mut con) {
            Ok(value) => {
                self.give_back(con, pid);
                self.recovered();
                Ok(value)
            }
            Err(e) => Err(self.failed(e)),
        }
    }

    fn open(&self) -> RedisResult<Connection> {
        let con = self
            .client
            .get_connection_with_timeout(self.connect_timeout)?;
        con.set_read_timeout(Some(self.io_timeout))?;
        con.set_write_timeout(Some(self.io_timeout))?;
        Ok(con)
    }

    fn pool(&self) -> MutexGuard<'_, Pool> {
        // A poisoned lock only means a thread panicked while pushing or popping; the vector
        // is consistent either way.
        self.pool.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// An idle connection opened by this process. Connections inherited through `fork()`
    /// are forgotten, never used, closed or written to: they belong to the parent.
    fn take_idle(&self, pid: u32) -> Option<Connection> {
        let mut pool = self.pool();
        if pool.pid != pid {
            for inherited in pool.idle.drain(..) {
                std::mem::forget(inherited);
            }
            pool.pid = pid;
        }
        while let Some(con) = pool.idle.pop() {
            if con.is_open() {
                return Some(con);
            }
        }
        None
    }

    fn give_back(&self, con: Connection, pid: u32) {
        let mut pool = self.pool();
        if pool.pid == pid && pool.idle.len() < MAX_IDLE {
            pool.idle.push(con);
        }
        // Otherwise dropped here, in the process that opened it: closing is safe.
    }

    fn outage(&self) -> MutexGuard<'_, Option<Outage>> {
        // As for the pool: the state is always consistent.
        self.outage.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Fails at once during the back-off after a failure; past it, lets this caller probe
    /// and keeps the others failing fast until the probe ends.
    fn admit(&self) -> Result<()> {
        let mut outage = self.outage();
        if let Some(outage) = outage.as_mut() {
            let now = Instant::now();
            if now < outage.retry_at {
                let wait = outage.retry_at - now;
                return Err(Error::Cache {
                    reason: format!(
                        "Redis at {} is unavailable ({}); next attempt in {} ms",
                        self.location,
                        outage.reason,
                        wait.as_millis()
                    ),
                });
            }
            outage.retry_at = now + self.retry_after;
        }
        Ok(())
    }

    fn recovered(&self) {
        let ended = self.outage().take().is_some();
        if ended {
            log::info!("Redis cache at {} is reachable again", self.location);
        }
    }

    /// Records a failure: starts (and logs) an outage, or extends the running one.
    fn failed(&self, e: RedisError) -> Error {
        // The pool's other connections are most likely just as dead.
        let (stale, ours) = {
            let mut pool = self.pool();
            (
                std::mem::take(&mut pool.idle),
                pool.pid == std::process::id(),
            )
        };
        if ours {
            drop(stale);
        } else {
            stale.into_iter().for_each(std::mem::forget);
        }
        let reason = e.to_string();
        let retry_at = Instant::now() + self.retry_after;
        let started = {
            let mut outage = self.outage();
            match outage.as_mut() {
                Some(running) => {
                    running.retry_at = retry_at;
                    running.reason.clone_from(&reason);
                    false
                }
                None => {
                    *outage = Some(Outage {
                        retry_at,
                        reason: reason.clone(),
                    });
                    true
                }
            }
        };
        // Logged after the lock is released: a log callback may call back into mtasts.
        if started {
            log::warn!(
                "Redis cache at {} is unavailable ({reason}); retrying every {} ms (meanwhile \
                 a domain found without a policy cannot be told from one whose policy only \
                 Redis holds)",
                self.location,
                self.retry_after.as_millis()
            );
        } else {
            log::debug!(
                "Redis cache at {} still unavailable: {reason}",
                self.location
            );
        }
        Error::Cache {
            reason: format!("Redis at {}: {reason}", self.location),
        }
    }

    /// An error for an entry that cannot be read back (the next `put` overwrites it).
    fn unreadable(&self, key: &str, why: &str) -> Error {
        Error::Cache {
            reason: format!(
                "Redis at {}: entry {key} is unreadable ({why}); the next write replaces it",
                self.location
            ),
        }
    }

    /// The entries at `keys`, read in pipelined batches; expired and unreadable ones are
    /// skipped (the latter logged).
    fn read_many(&self, keys: &[String]) -> Result<Vec<Entry>> {
        let mut entries = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(BATCH) {
            let stored = self.run(|con| {
                let mut pipe = redis::pipe();
                for key in chunk {
                    pipe.cmd("HGETALL").arg(key);
                }
                // Each item separately, so a key of another type fails alone.
                pipe.ignore_errors();
                pipe.query::<Vec<redis::Value>>(con)
            })?;
            for (key, value) in chunk.iter().zip(stored) {
                let Some(domain) = self.domain_of(key) else {
                    continue;
                };
                let fields: HashMap<String, Vec<u8>> = match redis::from_redis_value(value) {
                    Ok(fields) => fields,
                    Err(e) => {
                        log::warn!("{}", self.unreadable(key, &e.to_string()));
                        continue;
                    }
                };
                if fields.is_empty() {
                    continue; // expired or removed since SCAN returned it
                }
                match decode(&domain, fields, &self.location) {
                    Ok(entry) => entries.push(entry),
                    Err(why) => log::warn!("{}", self.unreadable(key, &why)),
                }
            }
        }
        Ok(entries)
    }

    /// Every entry key, by `SCAN` (never `KEYS`, which blocks the server), without duplicates.
    fn scan_keys(&self) -> Result<Vec<String>> {
        let pattern = self.key_pattern();
        let mut seen = HashSet::new();
        let mut keys = Vec::new();
        let mut cursor = 0u64;
        loop {
            let (next, batch): (u64, Vec<String>) = self.run(|con| {
                redis::cmd("SCAN")
                    .cursor_arg(cursor)
                    .arg("MATCH")
                    .arg(&pattern)
                    .arg("COUNT")
                    .arg(SCAN_COUNT)
                    .query(con)
            })?;
            for key in batch {
                if seen.insert(key.clone()) {
                    keys.push(key);
                }
            }
            if next == 0 {
                return Ok(keys);
            }
            cursor = next;
        }
    }

    /// Deletes `keys` in pipelined batches; how many existed.
    fn delete(&self, keys: &[String]) -> Result<usize> {
        let mut removed = 0;
        for chunk in keys.chunks(BATCH) {
            let counts: Vec<u64> = self.run(|con| {
                let mut pipe = redis::pipe();
                for key in chunk {
                    pipe.cmd("DEL").arg(key);
                }
                pipe.query(con)
            })?;
            removed += counts.iter().filter(|&&n| n > 0).count();
        }
        Ok(removed)
    }
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Not the client: its connection info holds the password.
        f.debug_struct("RedisStore")
            .field("location", &self.location)
            .field("key_prefix", &self.key_prefix)
            .field("connect_timeout", &self.connect_timeout)
            .field("io_timeout", &self.io_timeout)
            .field("retry_after", &self.retry_after)
            .finish_non_exhaustive()
    }
}

/// What `HGETALL` found at a key.
enum Stored {
    /// Nothing (never written, expired or removed).
    Absent,
    /// The hash's fields.
    Fields(HashMap<String, Vec<u8>>),
    /// A value that is not a hash: someone else's key, or damage.
    WrongType,
}

fn read_fields(con: &mut Connection, key: &str) -> RedisResult<Stored> {
    match redis::cmd("HGETALL")
        .arg(key)
        .query::<HashMap<String, Vec<u8>>>(con)
    {
        Ok(fields) if fields.is_empty() => Ok(Stored::Absent),
        Ok(fields) => Ok(Stored::Fields(fields)),
        Err(e) if e.code() == Some("WRONGTYPE") => Ok(Stored::WrongType),
        Err(e) => Err(e),
    }
}

impl Store for RedisStore {
    fn get(&self, domain: &Domain) -> Result<Option<std::sync::Arc<Entry>>> {
        let key = self.key(domain);
        match self.run(|con| read_fields(con, &key))? {
            Stored::Absent => Ok(None),
            Stored::Fields(fields) => decode(domain, fields, &self.location)
                .map(|entry| Some(std::sync::Arc::new(entry)))
                .map_err(|why| self.unreadable(&key, &why)),
            Stored::WrongType => Err(self.unreadable(&key, "not a hash")),
        }
    }

    /// Merges `entry` onto the stored one with [`Entry::merged_onto`], atomically:
    /// `WATCH key`, read, merge in Rust, then `MULTI`/`DEL`/`HSET`/`PEXPIRE`/`EXEC`, which
    /// Redis refuses if another writer changed the key meanwhile; then it starts over.
    fn put(&self, entry: Entry) -> Result<()> {
        let key = self.key(&entry.domain);
        let written = self.run(|con| {
            for _ in 0..PUT_ATTEMPTS {
                redis::cmd("WATCH").arg(&key).exec(con)?;
                let stored = match read_fields(con, &key)? {
                    Stored::Absent => None,
                    Stored::Fields(fields) => match decode(&entry.domain, fields, &self.location) {
                        Ok(stored) => Some(stored),
                        Err(why) => {
                            log::warn!("{}", self.unreadable(&key, &why));
                            None
                        }
                    },
                    Stored::WrongType => {
                        log::warn!("{}", self.unreadable(&key, "not a hash"));
                        None
                    }
                };
                let merged = match &stored {
                    Some(stored) => entry.clone().merged_onto(stored),
                    None => entry.clone(),
                };
                if stored.as_ref() == Some(&merged) {
                    redis::cmd("UNWATCH").exec(con)?;
                    return Ok(true);
                }
                let mut hset = redis::cmd("HSET");
                hset.arg(&key);
                for (field, value) in encode(&merged) {
                    hset.arg(field).arg(value);
                }
                let committed: Option<redis::Value> = redis::pipe()
                    .atomic()
                    .cmd("DEL")
                    .arg(&key)
                    .ignore()
                    .add_command(hset)
                    .ignore()
                    .cmd("PEXPIRE")
                    .arg(&key)
                    .arg(u64::try_from(ttl(&merged).as_millis()).unwrap_or(u64::MAX))
                    .query(con)?;
                if committed.is_some() {
                    return Ok(true);
                }
                // EXEC refused: another writer changed the entry since WATCH. Merge again.
            }
            Ok(false)
        })?;
        if written {
            Ok(())
        } else {
            Err(Error::Cache {
                reason: format!(
                    "Redis at {}: {key} changed under each of {PUT_ATTEMPTS} attempts to write it",
                    self.location
                ),
            })
        }
    }

    fn remove(&self, domain: &Domain) -> Result<bool> {
        let key = self.key(domain);
        let removed: u64 = self.run(|con| redis::cmd("DEL").arg(&key).query(con))?;
        Ok(removed > 0)
    }

    fn entries(&self) -> Result<Vec<std::sync::Arc<Entry>>> {
        let keys = self.scan_keys()?;
        Ok(self
            .read_many(&keys)?
            .into_iter()
            .map(std::sync::Arc::new)
            .collect())
    }

    /// Removes the entries not used since `cutoff` (R-CACHE-8). Each removal is conditional
    /// (`WATCH`, check `last_used`, `MULTI`/`DEL`/`EXEC`), so an entry another host used
    /// meanwhile stays. Entries without a readable `last_used` count as unused.
    fn purge_unused(&self, cutoff: SystemTime) -> Result<usize> {
        let keys = self.scan_keys()?;
        let unused = |last_used: Option<Vec<u8>>| {
            last_used
                .and_then(|v| Value::Bytes(v).as_time().ok())
                .is_none_or(|t| t < cutoff)
        };
        let mut removed = 0;
        for chunk in keys.chunks(BATCH) {
            let last_used: Vec<Option<Vec<u8>>> = self.run(|con| {
                let mut pipe = redis::pipe();
                for key in chunk {
                    pipe.cmd("HGET").arg(key).arg("last_used");
                }
                pipe.ignore_errors();
                let values: Vec<redis::Value> = pipe.query(con)?;
                Ok(values
                    .into_iter()
                    .map(|v| redis::from_redis_value(v).ok().flatten())
                    .collect())
            })?;
            for (key, last_used) in chunk.iter().zip(last_used) {
                if !unused(last_used) {
                    continue;
                }
                let gone = self.run(|con| {
                    redis::cmd("WATCH").arg(key).exec(con)?;
                    let last_used: Option<Vec<u8>> = redis::cmd("HGET")
                        .arg(key)
                        .arg("last_used")
                        .query(con)
                        .or_else(|e| {
                            if e.code() == Some("WRONGTYPE") {
                                Ok(None)
                            } else {
                                Err(e)
                            }
                        })?;
                    if !unused(last_used) {
                        redis::cmd("UNWATCH").exec(con)?;
                        return Ok(false);
                    }
                    let deleted: Option<(u64,)> =
                        redis::pipe().atomic().cmd("DEL").arg(key).query(con)?;
                    Ok(deleted.is_some_and(|(n,)| n > 0))
                })?;
                if gone {
                    removed += 1;
                }
            }
        }
        Ok(removed)
    }

    /// Removes every entry key of this store's prefix (and no other key).
    fn clear(&self) -> Result<usize> {
        let keys = self.scan_keys()?;
        self.delete(&keys)
    }

    fn location(&self) -> String {
        self.location.clone()
    }
}

/// How long Redis keeps `entry`, counted from `entry.last_used` (the writer's "now", so a
/// writer with an injected clock gets the same answer): until the latest of its policy's
/// expiry, its backoff's end and its next TXT check, plus [`SLACK`] ([`BARE_SLACK`] when it
/// holds neither a valid policy nor a running backoff), and at most [`UNUSED_LIMIT`]
/// (R-CACHE-8). At least one second, so a write never deletes what it writes.
fn ttl(entry: &Entry) -> Duration {
    let now = entry.last_used;
    let mut horizon = entry.next_check;
    let mut slack = BARE_SLACK;
    if let Some(policy) = entry.policy.as_ref().filter(|p| p.is_valid_at(now)) {
        horizon = horizon.max(policy.expires_at);
        slack = SLACK;
    }
    if let Some(backoff) = entry.backoff.as_ref().filter(|b| b.until > now) {
        horizon = horizon.max(backoff.until);
        slack = SLACK;
    }
    let ttl = horizon.duration_since(now).unwrap_or_default() + slack;
    ttl.clamp(Duration::from_secs(1), UNUSED_LIMIT)
}

/// The hash fields of `entry` (format in the module docs), by the codec; Redis keeps every
/// value as a byte string (an integer in decimal).
fn encode(entry: &Entry) -> Vec<(String, Vec<u8>)> {
    let mut record = codec::encode(entry, &FIELDS);
    record.remove(FIELDS.domain); // the key's
    record
        .into_iter()
        .map(|(name, value)| (name, value.into_bytes()))
        .collect()
}

/// The entry of `domain` from its hash fields, by the codec (tolerated oddities logged as
/// warnings naming `location`); the reason when the codec finds it unreadable.
fn decode(
    domain: &Domain,
    fields: HashMap<String, Vec<u8>>,
    location: &str,
) -> Result<Entry, String> {
    codec::read(&record_of(domain, fields), &FIELDS, location).map_err(|e| e.reason)
}

/// The codec record of a hash: every field as the bytes Redis holds, and the domain of the
/// key.
fn record_of(domain: &Domain, fields: HashMap<String, Vec<u8>>) -> Record {
    let mut record: Record = fields
        .into_iter()
        .map(|(name, value)| (name, Value::Bytes(value)))
        .collect();
    record.insert(FIELDS.domain, Value::Text(domain.to_string()));
    record
}

/// `url` without its password, for messages about a URL that did not parse.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split_once(':').map_or(userinfo, |(user, _)| user);
            format!("{scheme}://{user}@{host}{tail}")
        }
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::cache::CachedPolicy;
    use crate::cache::codec::tests::{at, full_entry};

    fn fields_of(entry: &Entry) -> HashMap<String, Vec<u8>> {
        encode(entry).into_iter().collect()
    }

    fn decode(domain: Domain, fields: &HashMap<String, Vec<u8>>) -> Result<Entry, String> {
        super::decode(&domain, fields.clone(), "redis://test")
    }

    #[test]
    fn every_field_round_trips_through_the_hash() {
        let full = full_entry();
        let bare = Entry::new(Domain::new("example.org").unwrap(), at(5));
        for entry in [full, bare] {
            let back = decode(entry.domain.clone(), &fields_of(&entry)).unwrap();
            assert_eq!(back, entry);
        }
    }

    /// The version 1 field names, as every version so far has written them.
    #[test]
    fn the_hash_keeps_its_version_1_field_names() {
        let mut names: Vec<String> = fields_of(&full_entry()).into_keys().collect();
        names.sort();
        assert_eq!(
            names,
            [
                "backoff_id",
                "backoff_reason",
                "backoff_result",
                "backoff_until",
                "expires_at",
                "failures",
                "fetched_at",
                "last_used",
                "next_check",
                "policy",
                "policy_id",
            ]
        );
        assert_eq!(fields_of(&full_entry())["failures"], b"3");
    }

    /// The codec's rule (cache/codec.rs): damage that makes the entry meaningless is
    /// reported; what this version does not know is dropped and the policy kept.
    #[test]
    fn damaged_hashes_are_reported_not_guessed() {
        let entry = full_entry();
        let cases: [(&str, Option<&str>, &str); 5] = [
            ("next_check", None, "next_check is missing"),
            ("last_used", Some("yesterday"), "last_used is not a time"),
            ("policy", None, "policy is missing"),
            ("policy", Some("garbage"), "no longer parses"),
            ("expires_at", Some(""), "expires_at is not a time"),
        ];
        for (field, value, expected) in cases {
            let mut fields = fields_of(&entry);
            match value {
                Some(v) => fields.insert(field.into(), v.as_bytes().to_vec()),
                None => fields.remove(field),
            };
            let why = decode(entry.domain.clone(), &fields).unwrap_err();
            assert!(why.contains(expected), "{field}: {why}");
        }
        let mut fields = fields_of(&entry);
        fields.insert("policy_id".into(), vec![0xff]);
        assert!(decode(entry.domain.clone(), &fields).is_err());
        // Unknown fields are ignored (a later v1 writer may add some).
        let mut fields = fields_of(&entry);
        fields.insert("added_later".into(), b"x".to_vec());
        assert_eq!(decode(entry.domain.clone(), &fields).unwrap(), entry);
        // Issue 11: an unknown result type (a newer writer's) drops only the backoff, and a
        // failure count that is not one counts as 0; the policy is kept.
        let mut fields = fields_of(&entry);
        fields.insert("backoff_result".into(), b"sts-nonsense".to_vec());
        fields.insert("failures".into(), b"-1".to_vec());
        let read = decode(entry.domain.clone(), &fields).unwrap();
        assert_eq!(read.policy, entry.policy);
        assert_eq!((read.backoff, read.failures), (None, 0));
    }

    #[test]
    fn ttl_covers_what_the_entry_still_says_plus_slack() {
        let day = Duration::from_secs(86_400);
        let full = full_entry(); // last_used at(20), policy until at(86_410.123)
        let bare = Entry {
            next_check: at(320),
            ..Entry::new(Domain::new("example.org").unwrap(), at(20))
        };
        let backoff_only = Entry {
            policy: None,
            next_check: at(20),
            ..full.clone()
        };
        let expired_policy = Entry {
            last_used: at(100_000),
            next_check: at(100_060),
            backoff: None,
            ..full.clone()
        };
        let long_policy = Entry {
            policy: Some(Arc::new(CachedPolicy {
                expires_at: at(20) + Duration::from_secs(31_557_600),
                ..CachedPolicy::clone(full.policy.as_ref().unwrap())
            })),
            ..full.clone()
        };
        let stale_next_check = Entry::new(Domain::new("example.org").unwrap(), at(20));
        let cases: [(&str, &Entry, Duration); 6] = [
            ("policy", &full, Duration::from_millis(86_390_123) + SLACK),
            ("bare", &bare, Duration::from_secs(300) + BARE_SLACK),
            ("backoff", &backoff_only, Duration::from_secs(290) + SLACK),
            (
                "expired",
                &expired_policy,
                Duration::from_secs(60) + BARE_SLACK,
            ),
            ("capped", &long_policy, UNUSED_LIMIT),
            ("now", &stale_next_check, BARE_SLACK),
        ];
        for (name, entry, expected) in cases {
            assert_eq!(ttl(entry), expected, "{name}");
        }
        assert!(ttl(&full) > day);
    }

    #[test]
    fn urls_give_locations_without_passwords() {
        let cases = [
            ("redis://127.0.0.1:6379/2", "redis://127.0.0.1:6379/2"),
            ("redis://cache.example", "redis://cache.example:6379/0"),
            ("redis://:secret@10.0.0.5:7000/1", "redis://10.0.0.5:7000/1"),
            (
                "redis://mta:secret@10.0.0.5:7000/1",
                "redis://mta@10.0.0.5:7000/1",
            ),
            (
                "redis+unix:///run/redis.sock?db=3&pass=secret",
                "redis+unix:///run/redis.sock?db=3",
            ),
        ];
        for (url, location) in cases {
            let store = RedisStore::connect(url).unwrap();
            assert_eq!(store.location(), location);
            assert!(!format!("{store:?}").contains("secret"));
        }
    }

    #[test]
    fn unusable_urls_are_configuration_errors() {
        for url in [
            "http://127.0.0.1:6379",
            "127.0.0.1:6379",
            "redis://",
            "rediss://:secret@127.0.0.1:6380/0",
        ] {
            let e = RedisStore::connect(url).unwrap_err();
            assert!(matches!(e, Error::Config { .. }), "{url}: {e:?}");
            assert!(!e.to_string().contains("secret"), "{e}");
        }
        assert_eq!(
            redact("rediss://u:pw@h:1/0?x=1"),
            "rediss://u@h:1/0?x=1".to_string()
        );
    }

    #[test]
    fn keys_and_scan_patterns() {
        let store = RedisStore::connect("redis://127.0.0.1/0").unwrap();
        let d = Domain::new("example.com").unwrap();
        assert_eq!(store.key(&d), "mtasts:v1:entry:example.com");
        assert_eq!(store.domain_of("mtasts:v1:entry:example.com"), Some(d));
        assert_eq!(store.domain_of("mtasts:v1:entry:EXAMPLE.com"), None);
        assert_eq!(store.domain_of("other:v1:entry:example.com"), None);
        let store = store.with_key_prefix("fleet[a]*").unwrap();
        assert_eq!(store.key_pattern(), r"fleet\[a\]\*:v1:entry:*");
        assert!(
            RedisStore::connect("redis://127.0.0.1/0")
                .unwrap()
                .with_key_prefix("a b")
                .is_err()
        );
    }
}
