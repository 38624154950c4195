//! The policy cache in an SQLite file: the embedded default whenever a cache path is
//! configured, shared by every thread and every process on a host (R-CACHE-7).
//!
//! The design (schema, pragmas, the write transaction, connections and `fork()`) is
//! documented on [`SqliteStore`]; the reasons for each choice are next to the code.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use rusqlite::types::ValueRef;
use rusqlite::{
    Connection, ErrorCode, MAIN_DB, OpenFlags, OptionalExtension, Statement, TransactionBehavior,
};

use super::codec::{self, EntryFields, Record, Value};
use super::{Entry, Store, to_unix_millis};
use crate::domain::Domain;
use crate::error::{Error, Result};

/// Marks the file as an mtasts cache (`PRAGMA application_id`; "MTST" in ASCII), so a path
/// pointing at another program's database is refused instead of modified.
const APPLICATION_ID: i32 = 0x4d54_5354;

/// The schema steps: `MIGRATIONS[n]` upgrades a file at schema version `n` to `n + 1`.
/// Version 0 is SQLite's default for a new (or empty) file; the current version is the
/// number of steps. A new version is one more string here, and nothing else.
const MIGRATIONS: &[&str] = &[
    // 0 → 1: the entries table. A rowid table (not WITHOUT ROWID): rows carry the policy
    // text, a few hundred bytes, above the size where SQLite recommends WITHOUT ROWID.
    // The policy columns are all NULL (no policy) or all set; likewise the backoff columns.
    "CREATE TABLE entries (
        domain              TEXT    NOT NULL PRIMARY KEY,
        policy_id           TEXT,
        policy_text         TEXT,
        fetched_at          INTEGER,
        expires_at          INTEGER,
        next_check          INTEGER NOT NULL,
        backoff_id          TEXT,
        backoff_until       INTEGER,
        backoff_result_type TEXT,
        backoff_reason      TEXT,
        failures            INTEGER NOT NULL DEFAULT 0,
        last_used           INTEGER NOT NULL
    );",
];

/// How long a connection waits for a lock held by another connection before SQLite reports
/// `SQLITE_BUSY` (see [`busy_handler`]).
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Attempts of one call when SQLite reports busy or locked without having waited; retrying
/// stops early once [`BUSY_TIMEOUT`] has passed since the first attempt.
const MAX_ATTEMPTS: u32 = 8;

/// Idle connections kept per process; more threads than this open and close their own.
const MAX_IDLE: usize = 4;

/// `PRAGMA journal_size_limit`: after a checkpoint the WAL is truncated to this size rather
/// than kept at its largest.
const WAL_SIZE_LIMIT: i64 = 4 << 20;

/// The columns of `entries`: the codec's standard names (the table's columns are exactly the
/// fields of [`EntryFields::STANDARD`]).
const COLUMNS: EntryFields = EntryFields::STANDARD;

/// A policy cache in an SQLite file, safe for many processes and threads at once (R-CACHE-7).
///
/// Every call returns [`Error::Cache`] on failure, with the file's path and what to do; the
/// engine then treats the cache as empty rather than failing a lookup.
///
/// # On disk
/// One table, `entries`, one row per policy domain, one column per field of the cache's
/// entry codec (`cache/codec.rs`): the policy is kept as its raw text (R-POL-8) and parsed
/// again on load, times are integer milliseconds since the Unix epoch (finer parts are
/// dropped). Rows are read with every column (`SELECT *`) and decoded by the codec under its
/// one rule: what this version does not know (a column a newer mtasts added without a schema
/// bump, an unknown result type, an incomplete backoff) is dropped with a warning and the policy kept; a row
/// the codec finds unreadable (no valid domain, a missing time, an unusable policy) is
/// skipped with a warning, and the next write for its domain replaces it. The file
/// is marked as an mtasts cache (`PRAGMA application_id`) and its schema is versioned
/// (`PRAGMA user_version`): an older file is upgraded step by step when opened, and a file
/// from a newer mtasts, another program's database or a damaged file is refused, never
/// rewritten or deleted. SQLite keeps `<file>-wal` and `<file>-shm` next to the file, so the
/// directory must be writable too, and on a local file system (WAL needs shared memory; not
/// NFS).
///
/// # Permissions (issue 10, R-CACHE-7: the cache is the downgrade protection)
/// Whoever can write the cache can set every policy to `none`, and whoever can read it learns
/// which domains the MTA mails. So the file is created 0640 and missing directories 0750,
/// whatever the umask; symbolic links are never followed (`SQLITE_OPEN_NOFOLLOW`, and the
/// file is created with `O_EXCL`); and a location others could tamper with is refused: a
/// directory writable by group or others (a sticky one such as `/tmp` is accepted, since
/// others cannot replace this user's files in it), or a directory, file, `-wal` or `-shm`
/// owned by a user other than this process's or root, or a file writable by group or
/// others. Give the MTA its own directory: `install -d -m 0750 -o Debian-exim -g Debian-exim
/// /var/cache/mtasts`. A process running as root (Exim's routers do) also accepts files of
/// the directory's owner, and hands a file it creates there to that owner, so the MTA's
/// unprivileged processes can still write the cache.
///
/// # Many processes
/// - `journal_mode=WAL`: readers never block the writer and the writer never blocks readers.
/// - `synchronous=NORMAL`: with WAL, a transaction is written to the WAL (not yet fsynced)
///   when `COMMIT` returns. A killed process (`kill -9`) loses nothing committed; a power
///   loss or OS crash may roll back the last transactions but never corrupts the file
///   (SQLite documents WAL with NORMAL as always consistent). For a cache that costs at most
///   a refetch, and it saves an fsync per write.
/// - A connection waiting for a lock polls for it about every millisecond, for up to 5 s;
///   the few `SQLITE_BUSY` cases where SQLite does not wait are retried a bounded number of
///   times. `database is locked` reaches a caller only when another process has held the
///   lock for the whole 5 s (a stopped or hung process).
/// - [`Store::put`] is one `BEGIN IMMEDIATE` transaction: read the stored row, merge with
///   [`Entry::merged_onto`], write, commit. The write lock is taken before the read, so two
///   processes never both merge onto the same old row: the newest fetch wins (R-CACHE-7).
///
/// # Threads and `fork()`
/// Connections are pooled per process: a thread takes an idle connection (or opens one),
/// uses it for one call and puts it back, so threads read in parallel and the pool's lock is
/// never held during SQLite work. A forked child never uses a connection opened by its
/// parent; it closes the idle ones it inherited and opens its own (S-41). As always after
/// `fork()` in a multi-threaded program, this needs that no other thread was inside a store
/// call at the moment of the fork (always true for a single-threaded forking MTA such as
/// Exim); a child forked during such a call detects it and reports [`Error::Cache`] for
/// every call instead of risking the file.
pub struct SqliteStore {
    path: PathBuf,
    pool: Mutex<Pool>,
}

/// This process's idle connections.
struct Pool {
    /// The process the connections were opened in.
    pid: u32,
    /// Connections not in use, each idle (no statement running, no transaction open).
    idle: Vec<Connection>,
    /// Connections checked out by threads of this process.
    in_use: usize,
    /// This process was forked while another thread was using a connection (see
    /// [`Pool::after_fork`]); the store refuses to work here.
    forked_mid_call: bool,
}

impl Pool {
    /// Adopts the pool in a forked child, if `pid` is not the process that filled it.
    ///
    /// SQLite keeps each open file's lock state per process, in memory the child inherits:
    /// a connection the child opens to the same file shares the parent's records, which
    /// say the locks are held, while POSIX locks are not inherited, so the child would hold
    /// none. If the parent then closes the file, it checkpoints and deletes the WAL under
    /// the child (measured: the child's commits lost, the file corrupt; with the WAL kept,
    /// the next process to open the file resets the shared memory the child has mapped and
    /// the child dies of SIGBUS). Closing the inherited *idle*
    /// connections first releases those records, so the child's own connection takes real
    /// locks. Closing is safe for idle connections: it only drops this process's locks
    /// (none), and the checkpoint SQLite attempts on close needs an exclusive lock that
    /// any other process still using the file prevents. A connection another thread was
    /// using at the moment of the fork may be mid-transaction: it is neither used nor closed
    /// (leaked), and because its lock records stay, the store refuses to work in the child.
    ///
    /// Returns what to log, so the caller logs it after releasing the pool's lock (a log
    /// callback may call back into mtasts).
    fn after_fork(&mut self, pid: u32, path: &Path) -> Option<String> {
        if self.pid == pid {
            return None;
        }
        let inherited = std::mem::take(&mut self.idle);
        let mut message = None;
        if self.in_use > 0 {
            message = Some(format!(
                "{}: this process was forked while another thread was using the cache; it \
                 will not use the cache",
                path.display()
            ));
            self.forked_mid_call = true;
            inherited.into_iter().for_each(std::mem::forget);
        } else {
            for conn in inherited {
                if let Err((conn, _)) = conn.close() {
                    std::mem::forget(conn);
                }
            }
        }
        self.pid = pid;
        self.in_use = 0;
        message
    }
}

impl SqliteStore {
    /// Opens the cache file at `path`, creating it and its parent directories if needed, and
    /// creates or migrates its schema.
    ///
    /// A relative `path` is made absolute first, so a later `chdir` does not move the cache.
    ///
    /// Missing directories are created with mode 0750 and the file with mode 0640 (SQLite
    /// gives `<file>-wal` and `<file>-shm` the file's mode), whatever the process umask (Exim
    /// runs with umask 0): the cache tells which domains the MTA mails, and whoever can write
    /// it can switch every policy off. An existing file readable by others is tightened to
    /// 0640 when this user owns it. See [`SqliteStore`] for what is refused.
    ///
    /// # Errors
    /// [`Error::Cache`], naming the path and what to do, when the directory or file cannot be
    /// created or written (e.g. a read-only location); when the directory is writable by
    /// group or others (unless sticky) or the directory or file is owned by another user
    /// than this process's or root; when the file (or its `-wal`, `-shm`) is a symbolic link,
    /// not a regular file, or writable by group or others; when the file is not an SQLite
    /// database or is damaged, when it belongs to another program, or when it was written by
    /// a newer mtasts (its schema version is higher than this one knows). The file is never
    /// deleted or rewritten in these cases.
    pub fn open(path: impl AsRef<Path>) -> Result<SqliteStore> {
        let given = path.as_ref();
        let path = std::path::absolute(given).map_err(|e| Error::Cache {
            reason: format!(
                "cache path {}: {e}; configure an absolute path",
                given.display()
            ),
        })?;
        secure_location(&path)?;
        let store = SqliteStore {
            pool: Mutex::new(Pool {
                pid: std::process::id(),
                idle: Vec::new(),
                in_use: 0,
                forked_mid_call: false,
            }),
            path,
        };
        let conn = store.with_retry("opening", || {
            let mut conn = open_connection(&store.path)?;
            // Nothing is changed in a file this version may not touch, not even its journal
            // mode: look first.
            check_state(schema_state(&conn)?, current_version(MIGRATIONS))?;
            configure(&conn, &store.path)?;
            migrate(&mut conn, MIGRATIONS)?;
            Ok(conn)
        });
        let conn = conn.map_err(|e| store.error("opening", e))?;
        store.lock_pool().idle.push(conn);
        Ok(store)
    }

    /// The cache file's path (absolute).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `op` on one of this process's connections, retrying while SQLite reports the
    /// database busy or locked (see [`MAX_ATTEMPTS`]). The TLS-RPT report store runs its
    /// statements on the cache's connections through this (same pool, fork rules and busy
    /// handling); `op` may run more than once, so it must be one transaction.
    pub(crate) fn run<T>(
        &self,
        doing: &str,
        mut op: impl FnMut(&mut Connection) -> rusqlite::Result<T>,
    ) -> Result<T> {
        self.with_retry(doing, || {
            let pid = std::process::id();
            let mut conn = self.check_out()?;
            let result = op(&mut conn).map_err(Failure::Sqlite);
            match &result {
                // A connection that failed otherwise may be in a bad state: it is closed.
                Err(e) if !e.is_busy() => self.discard(conn, pid),
                _ => self.check_in(conn, pid),
            }
            result
        })
        .map_err(|e| self.error(doing, e))
    }

    /// Calls `attempt` until it succeeds, fails other than busy/locked, or the retries are
    /// used up.
    fn with_retry<T>(
        &self,
        doing: &str,
        mut attempt: impl FnMut() -> Result<T, Failure>,
    ) -> Result<T, Failure> {
        let started = Instant::now();
        let mut tries = 1;
        loop {
            match attempt() {
                Err(e)
                    if e.is_busy() && tries < MAX_ATTEMPTS && started.elapsed() < BUSY_TIMEOUT =>
                {
                    log::debug!(
                        "{doing} {}: {e}; retrying (attempt {tries})",
                        self.path.display()
                    );
                    thread::sleep(retry_delay(tries));
                    tries += 1;
                }
                result => return result,
            }
        }
    }

    /// The pool; adopted first if this is a forked child.
    fn lock_pool(&self) -> MutexGuard<'_, Pool> {
        // The pool is consistent whenever its lock is free (each change is made whole under
        // it), so a lock poisoned by a panicking thread is still usable.
        let mut pool = self.pool.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(message) = pool.after_fork(std::process::id(), &self.path) {
            drop(pool);
            log::warn!("{message}");
            pool = self.pool.lock().unwrap_or_else(PoisonError::into_inner);
        }
        pool
    }

    /// An idle connection of this process, or a new one. Every successful call is paired
    /// with [`SqliteStore::check_in`] or [`SqliteStore::discard`].
    fn check_out(&self) -> Result<Connection, Failure> {
        let reused = {
            let mut pool = self.lock_pool();
            if pool.forked_mid_call {
                return Err(Failure::Refused(
                    "this process was forked while another thread was using the cache, so \
                     the cache is not used here (fork only while no other thread is inside \
                     a cache call)"
                        .into(),
                ));
            }
            pool.in_use += 1;
            pool.idle.pop()
        };
        match reused {
            Some(conn) => Ok(conn),
            None => connect(&self.path).map_err(|e| {
                let mut pool = self.lock_pool();
                pool.in_use = pool.in_use.saturating_sub(1);
                Failure::Sqlite(e)
            }),
        }
    }

    /// Returns a checked-out connection to the pool (or closes it if the pool is full).
    fn check_in(&self, conn: Connection, pid: u32) {
        let mut pool = self.lock_pool();
        if pool.pid == pid {
            pool.in_use = pool.in_use.saturating_sub(1);
            if pool.idle.len() < MAX_IDLE {
                pool.idle.push(conn);
                return;
            }
        }
        drop(pool);
        self.close(conn, pid);
    }

    /// Closes a checked-out connection instead of returning it.
    fn discard(&self, conn: Connection, pid: u32) {
        {
            let mut pool = self.lock_pool();
            if pool.pid == pid {
                pool.in_use = pool.in_use.saturating_sub(1);
            }
        }
        self.close(conn, pid);
    }

    /// Closes a connection opened in process `pid`; leaks it in any other process (it was
    /// checked out across a fork, so it may be mid-transaction).
    fn close(&self, conn: Connection, pid: u32) {
        if std::process::id() != pid {
            std::mem::forget(conn);
        } else if let Err((conn, e)) = conn.close() {
            log::debug!("{}: closing a connection: {e}", self.path.display());
            drop(conn);
        }
    }

    /// [`Error::Cache`] for a failure, with the path and advice.
    fn error(&self, doing: &str, failure: Failure) -> Error {
        let path = self.path.display();
        let e = match failure {
            Failure::Sqlite(e) => e,
            Failure::Refused(why) => {
                return Error::Cache {
                    reason: format!("{path}: {why}"),
                };
            }
        };
        let advice = match e.sqlite_error_code() {
            Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) => {
                "; the file is not an SQLite database or is damaged: move it aside (mtasts \
                 does not delete it) or configure another cache path"
            }
            Some(ErrorCode::ReadOnly | ErrorCode::PermissionDenied | ErrorCode::CannotOpen) => {
                "; the file and its directory must be writable by this user (SQLite also \
                 creates <file>-wal and <file>-shm next to it): fix the permissions or \
                 configure another cache path"
            }
            Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => {
                "; another process held the cache locked for too long (a stopped process?)"
            }
            Some(ErrorCode::DiskFull) => "; the file system is full",
            _ => "",
        };
        Error::Cache {
            reason: format!("{doing} {path} failed: {e}{advice}"),
        }
    }

    fn warn_skipped(&self, domain: &str, why: &str) {
        log::warn!(
            "{}: the cache entry for {domain} is skipped: {why}",
            self.path.display()
        );
    }

    /// The entry in a row's `record`; a row the codec finds unreadable is logged and skipped.
    fn decode(&self, record: &Record) -> Option<Entry> {
        match codec::read(record, &COLUMNS, &self.path.display().to_string()) {
            Ok(entry) => Some(entry),
            Err(e) => {
                self.warn_skipped(e.domain.as_deref().unwrap_or("a domain"), &e.reason);
                None
            }
        }
    }

    /// The entry for `domain` as `conn` sees it: `Err` with the reason when a row is there
    /// but cannot be used (see the codec).
    fn read_entry(
        &self,
        conn: &Connection,
        domain: &Domain,
    ) -> rusqlite::Result<Result<Option<Entry>, String>> {
        let mut stmt = conn.prepare_cached("SELECT * FROM entries WHERE domain = ?1")?;
        let names = column_names(&stmt);
        let record = stmt
            .query_row([domain.as_str()], |row| read_record(&names, row))
            .optional()?;
        Ok(match record {
            None => Ok(None),
            Some(record) => self.decode(&record).map(Some).ok_or_else(|| {
                format!("the cache entry for {domain} cannot be read (logged above)")
            }),
        })
    }
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl Drop for SqliteStore {
    /// Closes this process's idle connections (in a forked child that never used the store,
    /// the inherited ones are handled as on its first use).
    fn drop(&mut self) {
        let pool = self.pool.get_mut().unwrap_or_else(PoisonError::into_inner);
        if let Some(message) = pool.after_fork(std::process::id(), &self.path) {
            log::warn!("{message}");
        }
        // Dropping a connection closes it (errors are ignored on drop).
        pool.idle.clear();
    }
}

impl Store for SqliteStore {
    /// An entry whose row cannot be used is an error, not "no entry": it may have held a
    /// policy, so the engine cannot tell (issue 10, never fail open).
    fn get(&self, domain: &Domain) -> Result<Option<Arc<Entry>>> {
        let entry = self.run("reading", |conn| self.read_entry(conn, domain))?;
        match entry {
            Ok(entry) => Ok(entry.map(Arc::new)),
            Err(reason) => Err(Error::Cache {
                reason: format!("{}: {reason}", self.path.display()),
            }),
        }
    }

    /// One `BEGIN IMMEDIATE` transaction: the stored row is read under the write lock, so the
    /// merge ([`Entry::merged_onto`]) is atomic across processes (R-CACHE-7).
    fn put(&self, entry: Entry) -> Result<()> {
        self.run("writing", |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            // A stored row that cannot be read is overwritten.
            let merged = match self.read_entry(&tx, &entry.domain)? {
                Ok(Some(stored)) => entry.clone().merged_onto(&stored),
                Ok(None) | Err(_) => entry.clone(),
            };
            write_record(&tx, &codec::encode(&merged, &COLUMNS))?;
            tx.commit()
        })
    }

    fn remove(&self, domain: &Domain) -> Result<bool> {
        self.run("removing from", |conn| {
            conn.prepare_cached("DELETE FROM entries WHERE domain = ?1")?
                .execute([domain.as_str()])
        })
        .map(|n| n > 0)
    }

    fn entries(&self) -> Result<Vec<Arc<Entry>>> {
        self.run("listing", |conn| {
            let mut stmt = conn.prepare_cached("SELECT * FROM entries")?;
            let names = column_names(&stmt);
            let mut entries = Vec::new();
            for record in stmt.query_map([], |row| read_record(&names, row))? {
                if let Some(entry) = self.decode(&record?) {
                    entries.push(Arc::new(entry));
                }
            }
            Ok(entries)
        })
    }

    /// One `DELETE` (R-CACHE-8).
    fn purge_unused(&self, cutoff: SystemTime) -> Result<usize> {
        self.run("purging", |conn| {
            conn.prepare_cached("DELETE FROM entries WHERE last_used < ?1")?
                .execute([to_unix_millis(cutoff)])
        })
    }

    /// One `DELETE`.
    fn clear(&self) -> Result<usize> {
        self.run("clearing", |conn| conn.execute("DELETE FROM entries", []))
    }

    fn location(&self) -> String {
        self.path.display().to_string()
    }
}

/// The column names of `stmt`'s result, in order.
fn column_names(stmt: &Statement<'_>) -> Vec<String> {
    stmt.column_names().map(String::from).collect()
}

/// A row as a codec record: each non-NULL column under its name, as SQLite holds it. The
/// codec decides what a value means; a value of a type no writer of this format stores (a
/// REAL, a BLOB, text in an INTEGER column) is passed on as it is and judged there.
fn read_record(names: &[String], row: &rusqlite::Row<'_>) -> rusqlite::Result<Record> {
    let mut record = Record::default();
    for (i, name) in names.iter().enumerate() {
        let value = match row.get_ref(i)? {
            ValueRef::Null => continue,
            ValueRef::Integer(n) => Value::Integer(n),
            ValueRef::Real(x) => Value::Text(x.to_string()),
            ValueRef::Text(bytes) | ValueRef::Blob(bytes) => Value::Bytes(bytes.to_vec()),
        };
        record.insert(name.as_str(), value);
    }
    Ok(record)
}

/// Writes `record` as the row of its domain, replacing any stored row (columns not in the
/// record become NULL or their default).
fn write_record(conn: &Connection, record: &Record) -> rusqlite::Result<()> {
    // The names come from the codec (fixed identifiers), never from stored data.
    let names: Vec<&str> = record.iter().map(|(name, _)| name).collect();
    let placeholders: Vec<String> = (1..=names.len()).map(|i| format!("?{i}")).collect();
    let sql = format!(
        "INSERT OR REPLACE INTO entries ({}) VALUES ({})",
        names.join(", "),
        placeholders.join(", ")
    );
    let values = record.iter().map(|(_, value)| match value {
        Value::Integer(n) => rusqlite::types::Value::Integer(*n),
        Value::Text(text) => rusqlite::types::Value::Text(text.clone()),
        Value::Bytes(bytes) => rusqlite::types::Value::Blob(bytes.clone()),
    });
    conn.prepare_cached(&sql)?
        .execute(rusqlite::params_from_iter(values))?;
    Ok(())
}

/// Mode of the directories [`SqliteStore::open`] creates.
const DIR_MODE: u32 = 0o750;
/// Mode of the cache file [`SqliteStore::open`] creates (SQLite copies it to `-wal`, `-shm`).
const FILE_MODE: u32 = 0o640;

/// Creates the cache's directory and file with safe modes, and refuses a location that
/// others could tamper with (see [`SqliteStore`], "Permissions").
fn secure_location(path: &Path) -> Result<()> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};

    let euid = rustix::process::geteuid().as_raw();
    let refuse = |what: &Path, why: String, fix: &str| Error::Cache {
        reason: format!("refusing the cache at {}: {why}; {fix}", what.display()),
    };
    // Root (Exim's routers run as root) also trusts the owner of the cache directory: the
    // user the administrator gave the cache to (`install -d -o Debian-exim`); what root
    // creates there is handed to that user, so the MTA's own processes can write it.
    let mut delegate: Option<(u32, u32)> = None;
    let trusted_uid = |uid: u32, delegate: Option<(u32, u32)>| {
        uid == euid || uid == 0 || delegate.is_some_and(|(owner, _)| owner == uid)
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(DIR_MODE)
            .create(dir)
            .map_err(|e| Error::Cache {
                reason: format!(
                    "cannot create the cache directory {}: {e}; create it (install -d -m 0750 \
                     -o <MTA user> {}), or configure another cache path",
                    dir.display(),
                    dir.display()
                ),
            })?;
        let meta = std::fs::metadata(dir).map_err(|e| Error::Cache {
            reason: format!("cache directory {}: {e}", dir.display()),
        })?;
        let mode = meta.permissions().mode();
        if mode & 0o022 != 0 && mode & 0o1000 == 0 {
            return Err(refuse(
                dir,
                format!(
                    "the directory is writable by group or others (mode {:04o})",
                    mode & 0o7777
                ),
                "anyone who can write there can replace the cache and switch policies off: \
                 chmod 0750 it, or use a directory of the MTA user's own",
            ));
        }
        if euid == 0 && meta.uid() != 0 {
            delegate = Some((meta.uid(), meta.gid()));
        }
        if !trusted_uid(meta.uid(), delegate) {
            return Err(refuse(
                dir,
                format!(
                    "the directory belongs to uid {}, not to this user (uid {euid}) or root",
                    meta.uid()
                ),
                "chown it to the MTA user, or use a directory of its own",
            ));
        }
    }
    // The file, created here if missing: O_EXCL never follows a symbolic link.
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(FILE_MODE)
        .open(path)
    {
        Ok(file) => {
            // Root hands the new file to the directory's owner (SQLite then gives `-wal` and
            // `-shm` the file's owner too).
            if let Some((uid, gid)) = delegate {
                std::os::unix::fs::fchown(&file, Some(uid), Some(gid)).map_err(|e| {
                    Error::Cache {
                        reason: format!("cannot hand {} to uid {uid}: {e}", path.display()),
                    }
                })?;
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => {
            return Err(Error::Cache {
                reason: format!(
                    "cannot create the cache file {}: {e}; the directory must be writable by \
                     this user, or configure another cache path",
                    path.display()
                ),
            });
        }
    }
    for suffix in ["", "-wal", "-shm"] {
        let file = PathBuf::from(format!("{}{suffix}", path.display()));
        let meta = match std::fs::symlink_metadata(&file) {
            Ok(meta) => meta,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !suffix.is_empty() => continue,
            Err(e) => {
                return Err(Error::Cache {
                    reason: format!("cache file {}: {e}", file.display()),
                });
            }
        };
        if meta.file_type().is_symlink() {
            return Err(refuse(
                &file,
                "it is a symbolic link".into(),
                "configure the path of the file itself (links are never followed)",
            ));
        }
        if !meta.is_file() {
            return Err(refuse(
                &file,
                "it is not a regular file".into(),
                "configure a file path",
            ));
        }
        if !trusted_uid(meta.uid(), delegate) {
            return Err(refuse(
                &file,
                format!(
                    "it belongs to uid {}, not to this user (uid {euid}) or root",
                    meta.uid()
                ),
                "run as the user that owns the cache (the MTA's), or chown the files to it",
            ));
        }
        let mode = meta.permissions().mode() & 0o7777;
        if mode & 0o022 != 0 {
            return Err(refuse(
                &file,
                format!("it is writable by group or others (mode {mode:04o})"),
                "chmod 0640 it",
            ));
        }
        if mode & 0o007 != 0 && meta.uid() == euid {
            // Readable by anyone: tighten to what a new file gets.
            let tightened = std::fs::Permissions::from_mode(mode & !0o007);
            if let Err(e) = std::fs::set_permissions(&file, tightened) {
                log::warn!("{}: cannot remove access for others: {e}", file.display());
            } else {
                log::info!(
                    "{}: removed access for others (was mode {mode:04o})",
                    file.display()
                );
            }
        }
    }
    Ok(())
}

/// Opens a connection to `path` and sets it up for many processes (module docs).
fn connect(path: &Path) -> rusqlite::Result<Connection> {
    let conn = open_connection(path)?;
    configure(&conn, path)?;
    Ok(conn)
}

/// Opens a connection to `path`, changing nothing in the file.
fn open_connection(path: &Path) -> rusqlite::Result<Connection> {
    // No SQLITE_OPEN_URI: the path is a file name, even if it starts with `file:`. NO_MUTEX:
    // a rusqlite connection is used by one thread at a time.
    // NOFOLLOW: a symbolic link put in place of the file is refused, never followed
    // (issue 10: nobody may swap in another database).
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX
        | OpenFlags::SQLITE_OPEN_NOFOLLOW;
    let mut conn = Connection::open_with_flags(path, flags)?;
    conn.busy_handler(Some(busy_handler()))?;
    // SQLite silently opens a write-protected file read-only; a cache must be writable.
    if conn.is_readonly(MAIN_DB)? {
        return Err(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_READONLY),
            Some("the file is read-only for this user".into()),
        ));
    }
    // The stored schema may come from another program; it runs no functions it declares.
    conn.pragma_update(None, "trusted_schema", false)?;
    Ok(conn)
}

/// The per-connection settings and WAL mode (module docs). The journal mode is stored in
/// the file, so for every connection but the first this only reads it.
fn configure(conn: &Connection, path: &Path) -> rusqlite::Result<()> {
    let mode: String = conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        log::warn!(
            "{}: journal mode is {mode}, not WAL: processes will wait for each other more",
            path.display()
        );
    }
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "journal_size_limit", WAL_SIZE_LIMIT)?;
    Ok(())
}

/// Why an attempt failed.
#[derive(Debug)]
enum Failure {
    Sqlite(rusqlite::Error),
    /// The file is not one this version may touch; the text says why and what to do.
    Refused(String),
}

impl Failure {
    /// SQLite reported the database busy or locked: worth another attempt.
    fn is_busy(&self) -> bool {
        match self {
            Failure::Sqlite(e) => matches!(
                e.sqlite_error_code(),
                Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
            ),
            Failure::Refused(_) => false,
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Sqlite(e) => e.fmt(f),
            Failure::Refused(why) => f.write_str(why),
        }
    }
}

impl From<rusqlite::Error> for Failure {
    fn from(e: rusqlite::Error) -> Failure {
        Failure::Sqlite(e)
    }
}

/// What the file's header says: `(application_id, user_version, schema objects)`.
///
/// One statement, so one snapshot: read one by one, another process's migration committing
/// in between would show a half-migrated file (found by the stress test).
fn schema_state(conn: &Connection) -> rusqlite::Result<(i32, i64, i64)> {
    conn.query_row(
        "SELECT (SELECT application_id FROM pragma_application_id()), \
                (SELECT user_version FROM pragma_user_version()), \
                (SELECT count(*) FROM sqlite_schema)",
        [],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )
}

/// The schema version `steps` lead to.
fn current_version(steps: &[&str]) -> i64 {
    i64::try_from(steps.len()).unwrap_or(i64::MAX)
}

/// Whether a file in `state` may be brought to schema version `current`; the reason if not.
fn check_state((app, version, objects): (i32, i64, i64), current: i64) -> Result<(), Failure> {
    if app != APPLICATION_ID && (version != 0 || objects != 0) {
        return Err(Failure::Refused(format!(
            "this SQLite database is not an mtasts cache (application_id {app:#x}, \
             user_version {version}); configure another cache path (mtasts does not modify it)"
        )));
    }
    if version > current {
        return Err(Failure::Refused(format!(
            "the cache has schema version {version}, newer than this mtasts knows \
             ({current}); use the newer mtasts that wrote it, or configure another cache path"
        )));
    }
    if version < 0 {
        return Err(Failure::Refused(format!(
            "the cache has an invalid schema version {version}; move the file aside"
        )));
    }
    Ok(())
}

/// Brings the file's schema to version `steps.len()`, one step at a time, in one
/// `BEGIN IMMEDIATE` transaction (two processes opening a new file at once migrate it once).
fn migrate(conn: &mut Connection, steps: &[&str]) -> Result<(), Failure> {
    let current = current_version(steps);
    // Fast path, no write lock: a file that is up to date is left alone.
    let state = schema_state(conn)?;
    check_state(state, current)?;
    if state.1 == current {
        return Ok(());
    }
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    // Another process may have migrated since the fast path looked.
    let state = schema_state(&tx)?;
    check_state(state, current)?;
    let from = usize::try_from(state.1).unwrap_or(usize::MAX);
    for (version, step) in steps.iter().enumerate().skip(from) {
        log::info!(
            "cache schema: upgrading from version {version} to {}",
            version + 1
        );
        tx.execute_batch(step)?;
    }
    tx.pragma_update(None, "application_id", APPLICATION_ID)?;
    tx.pragma_update(None, "user_version", current)?;
    tx.commit()?;
    Ok(())
}

/// How a connection waits for a lock another connection holds: poll every 50 µs to ~1.6 ms
/// (with jitter) until [`BUSY_TIMEOUT`] has passed, then report `SQLITE_BUSY`.
///
/// SQLite's own `busy_timeout` handler sleeps longer and longer, up to 100 ms between
/// attempts. A lock is taken by whoever asks first after it is released, so under constant
/// contention a waiter that sleeps 100 ms keeps missing the short moments the write lock is
/// free: in the stress test single writes waited up to 2.4 s in a 3 s run. Polling often
/// makes the wait short and the tail far below the timeout, for a few cheap system calls.
fn busy_handler() -> impl FnMut(i32) -> bool + Send + 'static {
    let mut since = Instant::now();
    move |count| {
        if count == 0 {
            since = Instant::now();
        }
        if since.elapsed() >= BUSY_TIMEOUT {
            return false;
        }
        let base = 50u64 << count.clamp(0, 4);
        thread::sleep(Duration::from_micros(base + jitter(base)));
        true
    }
}

/// Between attempts of [`SqliteStore::with_retry`]: 2, 4 … 64 ms, plus jitter.
fn retry_delay(tries: u32) -> Duration {
    let base = 1u64 << tries.clamp(1, 6);
    Duration::from_millis(base + jitter(base))
}

/// A number in `0..=max` that differs between processes, threads and calls, so waiters do
/// not retry in step (no random number generator needed for that).
fn jitter(max: u64) -> u64 {
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| u64::from(d.subsec_nanos()))
        .unwrap_or(0);
    let mixed =
        (nanos ^ u64::from(std::process::id()).rotate_left(20)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    (mixed >> 32) % (max + 1)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn memory() -> Connection {
        Connection::open_in_memory().unwrap()
    }

    fn version(conn: &Connection) -> i64 {
        conn.pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap()
    }

    #[test]
    fn a_new_file_is_migrated_to_the_current_version() {
        let mut conn = memory();
        migrate(&mut conn, MIGRATIONS).unwrap();
        assert_eq!(version(&conn), MIGRATIONS.len() as i64);
        let app: i32 = conn
            .pragma_query_value(None, "application_id", |r| r.get(0))
            .unwrap();
        assert_eq!(app, APPLICATION_ID);
        // Opening again is a no-op.
        migrate(&mut conn, MIGRATIONS).unwrap();
        assert_eq!(version(&conn), MIGRATIONS.len() as i64);
    }

    #[test]
    fn migrations_run_step_by_step_and_keep_the_data() {
        // A hypothetical version 2 adds a column: a file at version 1 gets only that step.
        let v2 = "ALTER TABLE entries ADD COLUMN note TEXT NOT NULL DEFAULT 'two';";
        let mut conn = memory();
        migrate(&mut conn, &MIGRATIONS[..1]).unwrap();
        conn.execute(
            "INSERT INTO entries (domain, next_check, last_used) VALUES ('example.com', 1, 2)",
            [],
        )
        .unwrap();
        migrate(&mut conn, &[MIGRATIONS[0], v2]).unwrap();
        assert_eq!(version(&conn), 2);
        let (domain, note): (String, String) = conn
            .query_row("SELECT domain, note FROM entries", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .unwrap();
        assert_eq!((domain.as_str(), note.as_str()), ("example.com", "two"));
        // The same file opened by the version-1 code is refused, not modified.
        let Err(Failure::Refused(why)) = migrate(&mut conn, &MIGRATIONS[..1]) else {
            panic!("a newer file was accepted");
        };
        assert!(why.contains("newer"), "{why}");
        assert_eq!(version(&conn), 2);
    }

    #[test]
    fn a_foreign_database_is_refused() {
        let mut conn = memory();
        conn.execute_batch("CREATE TABLE mail (id INTEGER);")
            .unwrap();
        let Err(Failure::Refused(why)) = migrate(&mut conn, MIGRATIONS) else {
            panic!("a foreign database was accepted");
        };
        assert!(why.contains("not an mtasts cache"), "{why}");
        let objects: i64 = conn
            .query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get(0))
            .unwrap();
        assert_eq!(objects, 1, "nothing was added");
    }

    #[test]
    fn retry_delays_grow_and_stay_bounded() {
        for tries in 1..MAX_ATTEMPTS {
            let d = retry_delay(tries);
            let base = 1u64 << tries.clamp(1, 6);
            assert!(d >= Duration::from_millis(base) && d <= Duration::from_millis(2 * base));
        }
    }
}
