//! TLS-RPT counts in the policy cache's SQLite file: tables of their own beside the cache's
//! `entries`, on the cache's connections ([`SqliteStore`]: its pool, its `fork()` rules, its
//! permissions and its busy handling).

use std::path::Path;
use std::time::{Duration, SystemTime};

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::{
    CachedReportRecord, DayReport, DetailKey, PolicyKey, ReportDelivery, ReportStore, STALE_RECORD,
    Tally, check_retention, detail_key, policy_key,
};
use crate::cache::{SqliteStore, from_unix_millis, to_unix_millis};
use crate::domain::Domain;
use crate::error::{Error, Result};
use crate::tlsrpt::session::{Session, UtcDay};

/// The report tables' schema steps: `MIGRATIONS[n]` upgrades version `n` to `n + 1`, as for
/// the cache's own schema. The version is kept in `tlsrpt_schema`, not in `PRAGMA
/// user_version` (the cache's): an mtasts without TLS-RPT, sharing the file, still opens it.
///
/// Absent fields of a failure detail are stored as `''`, never NULL: SQLite's UNIQUE treats
/// NULLs as distinct, which would split one detail into many rows (R-RPT-4).
const MIGRATIONS: &[&str] = &[
    // 0 → 1.
    "CREATE TABLE tlsrpt_days (
        day          TEXT    NOT NULL,
        domain       TEXT    NOT NULL,
        attempts     INTEGER NOT NULL DEFAULT 0,
        next_attempt INTEGER,
        delivered_at INTEGER,
        abandoned_at INTEGER,
        PRIMARY KEY (day, domain)
    ) WITHOUT ROWID;
    CREATE TABLE tlsrpt_policies (
        id            INTEGER PRIMARY KEY,
        day           TEXT    NOT NULL,
        domain        TEXT    NOT NULL,
        policy_type   TEXT    NOT NULL,
        policy_string TEXT    NOT NULL,
        mx_host       TEXT    NOT NULL,
        successful    INTEGER NOT NULL DEFAULT 0,
        failed        INTEGER NOT NULL DEFAULT 0,
        UNIQUE (day, domain, policy_type, policy_string, mx_host)
    );
    CREATE TABLE tlsrpt_failures (
        policy                 INTEGER NOT NULL,
        result_type            TEXT    NOT NULL,
        sending_mta_ip         TEXT    NOT NULL,
        receiving_mx_hostname  TEXT    NOT NULL,
        receiving_mx_helo      TEXT    NOT NULL,
        receiving_ip           TEXT    NOT NULL,
        failure_reason_code    TEXT    NOT NULL,
        additional_information TEXT    NOT NULL,
        count                  INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (policy, result_type, sending_mta_ip, receiving_mx_hostname,
                     receiving_mx_helo, receiving_ip, failure_reason_code,
                     additional_information)
    ) WITHOUT ROWID;
    CREATE TABLE tlsrpt_schema (version INTEGER NOT NULL);
    INSERT INTO tlsrpt_schema (version) VALUES (0);",
    // 1 → 2: the sender's cache of `_smtp._tls` answers (issue 15: cached as the STS record).
    "CREATE TABLE tlsrpt_records (
        domain     TEXT    NOT NULL PRIMARY KEY,
        record     TEXT,
        reason     TEXT,
        checked_at INTEGER NOT NULL,
        next_check INTEGER NOT NULL
    ) WITHOUT ROWID;",
];

/// TLS-RPT counts in the SQLite file of the policy cache (the cache's `cache` setting
/// names it), shared by every process on the host.
///
/// # Tables (schema version 2, in `tlsrpt_schema`)
/// | table | one row per | columns |
/// |---|---|---|
/// | `tlsrpt_days` | (day, domain) with counts | `attempts`, `next_attempt`, `delivered_at`, `abandoned_at` (ms since 1970) |
/// | `tlsrpt_policies` | (day, domain, policy-type, policy-string, mx-host) | `successful`, `failed` (R-RPT-3); the strings are JSON arrays |
/// | `tlsrpt_failures` | (policy row, the 7 fields of R-RPT-4) | `count` |
/// | `tlsrpt_records` | policy domain whose `_smtp._tls` the sender looked up | `record` (the text, NULL: no reports), `reason`, `checked_at`, `next_check` (ms since 1970) |
///
/// Days are `YYYY-MM-DD` text, so `sqlite3 cache.db 'SELECT * FROM tlsrpt_policies'` reads
/// as the report will.
///
/// # Atomicity
/// [`ReportStore::record`] is one `BEGIN IMMEDIATE` transaction of UPSERTs (the day, the
/// policy's counter, each detail's counter), on the cache's connections and with its busy
/// handling: it commits whole or not at all. A process killed with `kill -9` loses nothing
/// it committed (WAL), and a session whose `record` returned `Ok` is counted exactly once.
/// Reads run in one transaction, so a report is one snapshot.
#[derive(Debug)]
pub struct SqliteReportStore {
    cache: SqliteStore,
    retention: Duration,
}

/// [`Error::ReportStore`] for an error of the cache layer.
fn store_error(e: Error) -> Error {
    match e {
        Error::Cache { reason } => Error::ReportStore { reason },
        other => other,
    }
}

/// The schema version of `conn`'s report tables (0 when there are none).
fn schema_version(conn: &Connection) -> rusqlite::Result<i64> {
    let exists: bool = conn.query_row(
        "SELECT count(*) > 0 FROM sqlite_schema WHERE type = 'table' AND name = 'tlsrpt_schema'",
        [],
        |r| r.get(0),
    )?;
    if !exists {
        return Ok(0);
    }
    conn.query_row("SELECT max(version) FROM tlsrpt_schema", [], |r| {
        r.get::<_, Option<i64>>(0)
    })
    .map(Option::unwrap_or_default)
}

/// Brings the report tables to the current version in one `BEGIN IMMEDIATE` transaction
/// (two processes creating them at once create them once); the reason when the file's
/// tables are from a newer mtasts (refused, never modified).
fn migrate(conn: &mut Connection) -> rusqlite::Result<std::result::Result<(), String>> {
    let current = i64::try_from(MIGRATIONS.len()).unwrap_or(i64::MAX);
    let newer = |version: i64| {
        format!(
            "the TLS-RPT tables have schema version {version}, newer than this mtasts knows \
             ({current}); use the newer mtasts that wrote them"
        )
    };
    let version = schema_version(conn)?;
    if version == current {
        return Ok(Ok(()));
    }
    if version > current {
        return Ok(Err(newer(version)));
    }
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let version = schema_version(&tx)?;
    if version > current {
        return Ok(Err(newer(version)));
    }
    let from = usize::try_from(version).unwrap_or(usize::MAX);
    for (version, step) in MIGRATIONS.iter().enumerate().skip(from) {
        log::info!(
            "TLS-RPT tables: upgrading from version {version} to {}",
            version + 1
        );
        tx.execute_batch(step)?;
    }
    tx.execute("UPDATE tlsrpt_schema SET version = ?1", [current])?;
    tx.commit()?;
    Ok(Ok(()))
}

fn to_json(strings: &[String]) -> String {
    // Serialising strings cannot fail.
    serde_json::to_string(strings).unwrap_or_else(|_| "[]".into())
}

impl SqliteReportStore {
    /// Opens the report tables in the SQLite file at `path`, the policy cache's file
    /// (opened, created and checked as [`SqliteStore::open`] does), creating or upgrading
    /// them; done days are kept for `retention` ([`ReportStore::prune`]).
    ///
    /// # Errors
    /// [`Error::Config`] for a retention out of range; [`Error::ReportStore`] for everything
    /// [`SqliteStore::open`] refuses, and for report tables from a newer mtasts.
    pub fn open(path: impl AsRef<Path>, retention: Duration) -> Result<SqliteReportStore> {
        check_retention(retention)?;
        let cache = SqliteStore::open(path).map_err(store_error)?;
        let store = SqliteReportStore { cache, retention };
        store
            .run("creating the TLS-RPT tables in", migrate)?
            .map_err(|why| Error::ReportStore {
                reason: format!("{}: {why}", store.cache.path().display()),
            })?;
        Ok(store)
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        self.cache.path()
    }

    fn run<T>(
        &self,
        doing: &str,
        op: impl FnMut(&mut Connection) -> rusqlite::Result<T>,
    ) -> Result<T> {
        self.cache.run(doing, op).map_err(store_error)
    }

    /// An error for a stored row this version cannot read.
    fn unreadable(&self, what: &str) -> Error {
        Error::ReportStore {
            reason: format!(
                "{}: a TLS-RPT row is unreadable ({what})",
                self.cache.path().display()
            ),
        }
    }

    fn delivery_of(
        &self,
        (day, domain, attempts, next, delivered, abandoned): DeliveryRow,
    ) -> Result<ReportDelivery> {
        let day: UtcDay = day
            .parse()
            .map_err(|e| self.unreadable(&format!("day: {e}")))?;
        let domain = Domain::new(&domain).map_err(|e| self.unreadable(&e.to_string()))?;
        Ok(ReportDelivery {
            day,
            domain,
            attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
            next_attempt: next.map(from_unix_millis),
            delivered_at: delivered.map(from_unix_millis),
            abandoned_at: abandoned.map(from_unix_millis),
        })
    }

    /// Runs `sql` (an UPDATE of one `tlsrpt_days` row, `?1` day, `?2` domain, `?3` value).
    fn update_day(
        &self,
        doing: &str,
        sql: &str,
        day: UtcDay,
        domain: &Domain,
        value: Option<i64>,
    ) -> Result<bool> {
        let day = day.to_string();
        self.run(doing, |conn| {
            conn.prepare_cached(sql)?
                .execute(params![day, domain.as_str(), value])
        })
        .map(|n| n > 0)
    }
}

/// A `tlsrpt_days` row: day, domain, attempts, next_attempt, delivered_at, abandoned_at.
type DeliveryRow = (String, String, i64, Option<i64>, Option<i64>, Option<i64>);

const DELIVERY_COLUMNS: &str = "day, domain, attempts, next_attempt, delivered_at, abandoned_at";

fn delivery_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<DeliveryRow> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
    ))
}

/// What a report's rows hold: per policy row (type, strings JSON, mx JSON, successful,
/// failed), and per failure row (its policy's type, strings, mx, the 7 fields, count).
type PolicyRow = (String, String, String, i64, i64);
type FailureRow = (String, String, String, DetailKey, i64);

impl ReportStore for SqliteReportStore {
    fn record(&self, session: &Session) -> Result<()> {
        let day = session.day().to_string();
        let domain = session.policy().domain().as_str();
        let (policy_type, strings, mx) = policy_key(session.policy());
        let (strings, mx) = (to_json(&strings), to_json(&mx));
        let (ok, failed) = if session.is_success() { (1, 0) } else { (0, 1) };
        let details: Vec<DetailKey> = session.failures().iter().map(detail_key).collect();
        self.run("recording a TLS-RPT session in", |conn| {
            // R-RPT-3/R-RPT-4: every counter of the session in one transaction, taken with
            // the write lock up front (IMMEDIATE), so concurrent recorders serialise.
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            tx.prepare_cached(
                "INSERT INTO tlsrpt_days (day, domain) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
            )?
            .execute(params![day, domain])?;
            let id: i64 = tx
                .prepare_cached(
                    "INSERT INTO tlsrpt_policies
                        (day, domain, policy_type, policy_string, mx_host, successful, failed)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                     ON CONFLICT (day, domain, policy_type, policy_string, mx_host)
                     DO UPDATE SET successful = successful + excluded.successful,
                                   failed = failed + excluded.failed
                     RETURNING id",
                )?
                .query_row(
                    params![day, domain, policy_type, strings, mx, ok, failed],
                    |r| r.get(0),
                )?;
            let mut insert = tx.prepare_cached(
                "INSERT INTO tlsrpt_failures
                    (policy, result_type, sending_mta_ip, receiving_mx_hostname,
                     receiving_mx_helo, receiving_ip, failure_reason_code,
                     additional_information, count)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 1)
                 ON CONFLICT DO UPDATE SET count = count + 1",
            )?;
            for [a, b, c, d, e, f, g] in &details {
                insert.execute(params![id, a, b, c, d, e, f, g])?;
            }
            drop(insert);
            tx.commit()
        })
    }

    fn list_days(&self) -> Result<Vec<ReportDelivery>> {
        let rows = self.run("listing the TLS-RPT days of", |conn| {
            conn.prepare_cached(&format!("SELECT {DELIVERY_COLUMNS} FROM tlsrpt_days"))?
                .query_map([], delivery_row)?
                .collect::<rusqlite::Result<Vec<_>>>()
        })?;
        let mut days = rows
            .into_iter()
            .map(|row| self.delivery_of(row))
            .collect::<Result<Vec<_>>>()?;
        days.sort_by(|a, b| (a.day, &a.domain).cmp(&(b.day, &b.domain)));
        Ok(days)
    }

    fn day_report(&self, day: UtcDay, domain: &Domain) -> Result<Option<DayReport>> {
        let day_text = day.to_string();
        let (policies, failures) = self.run("reading a TLS-RPT report from", |conn| {
            // One read transaction: one snapshot of both tables.
            let tx = conn.transaction()?;
            let policies: Vec<PolicyRow> = tx
                .prepare_cached(
                    "SELECT policy_type, policy_string, mx_host, successful, failed
                     FROM tlsrpt_policies WHERE day = ?1 AND domain = ?2",
                )?
                .query_map(params![day_text, domain.as_str()], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
                })?
                .collect::<rusqlite::Result<_>>()?;
            let failures: Vec<FailureRow> = tx
                .prepare_cached(
                    "SELECT p.policy_type, p.policy_string, p.mx_host,
                            f.result_type, f.sending_mta_ip, f.receiving_mx_hostname,
                            f.receiving_mx_helo, f.receiving_ip, f.failure_reason_code,
                            f.additional_information, f.count
                     FROM tlsrpt_failures f JOIN tlsrpt_policies p ON f.policy = p.id
                     WHERE p.day = ?1 AND p.domain = ?2",
                )?
                .query_map(params![day_text, domain.as_str()], |r| {
                    Ok((
                        r.get(0)?,
                        r.get(1)?,
                        r.get(2)?,
                        [
                            r.get(3)?,
                            r.get(4)?,
                            r.get(5)?,
                            r.get(6)?,
                            r.get(7)?,
                            r.get(8)?,
                            r.get(9)?,
                        ],
                        r.get(10)?,
                    ))
                })?
                .collect::<rusqlite::Result<_>>()?;
            tx.commit()?;
            Ok((policies, failures))
        })?;
        if policies.is_empty() {
            return Ok(None);
        }
        let key = |kind: String, strings: &str, mx: &str| -> Result<PolicyKey> {
            let parse = |text: &str| {
                serde_json::from_str::<Vec<String>>(text)
                    .map_err(|e| self.unreadable(&format!("{text:?}: {e}")))
            };
            Ok((kind, parse(strings)?, parse(mx)?))
        };
        let count =
            |n: i64| u64::try_from(n).map_err(|_| self.unreadable(&format!("negative count {n}")));
        let mut tally = Tally::new();
        for (kind, strings, mx, successful, failed) in policies {
            tally.add_sessions(
                key(kind, &strings, &mx)?,
                count(successful)?,
                count(failed)?,
            );
        }
        for (kind, strings, mx, detail, n) in failures {
            tally.add_detail(key(kind, &strings, &mx)?, detail, count(n)?);
        }
        Ok(Some(DayReport {
            day,
            domain: domain.clone(),
            policies: tally.summaries(domain)?,
        }))
    }

    fn delivery(&self, day: UtcDay, domain: &Domain) -> Result<Option<ReportDelivery>> {
        let day_text = day.to_string();
        let row = self.run("reading the TLS-RPT bookkeeping of", |conn| {
            conn.prepare_cached(&format!(
                "SELECT {DELIVERY_COLUMNS} FROM tlsrpt_days WHERE day = ?1 AND domain = ?2"
            ))?
            .query_row(params![day_text, domain.as_str()], delivery_row)
            .optional()
        })?;
        row.map(|row| self.delivery_of(row)).transpose()
    }

    fn record_attempt(
        &self,
        day: UtcDay,
        domain: &Domain,
        next_attempt: Option<SystemTime>,
    ) -> Result<bool> {
        self.update_day(
            "recording a TLS-RPT delivery attempt in",
            "UPDATE tlsrpt_days SET attempts = attempts + 1, next_attempt = ?3
             WHERE day = ?1 AND domain = ?2",
            day,
            domain,
            next_attempt.map(to_unix_millis),
        )
    }

    fn mark_delivered(&self, day: UtcDay, domain: &Domain, at: SystemTime) -> Result<bool> {
        self.update_day(
            "marking a TLS-RPT report delivered in",
            "UPDATE tlsrpt_days SET delivered_at = ?3 WHERE day = ?1 AND domain = ?2",
            day,
            domain,
            Some(to_unix_millis(at)),
        )
    }

    fn mark_abandoned(&self, day: UtcDay, domain: &Domain, at: SystemTime) -> Result<bool> {
        self.update_day(
            "marking a TLS-RPT report abandoned in",
            "UPDATE tlsrpt_days SET abandoned_at = ?3 WHERE day = ?1 AND domain = ?2",
            day,
            domain,
            Some(to_unix_millis(at)),
        )
    }

    /// One `BEGIN IMMEDIATE` transaction: the done days are read and the prunable ones
    /// deleted from the three tables under the write lock.
    fn prune(&self, now: SystemTime) -> Result<usize> {
        let retention = self.retention;
        self.run("pruning the TLS-RPT days of", |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let done: Vec<DeliveryRow> = tx
                .prepare_cached(&format!(
                    "SELECT {DELIVERY_COLUMNS} FROM tlsrpt_days
                     WHERE delivered_at IS NOT NULL OR abandoned_at IS NOT NULL"
                ))?
                .query_map([], delivery_row)?
                .collect::<rusqlite::Result<_>>()?;
            let mut removed = 0;
            for row in done {
                // A row whose day cannot be read is kept (and reported by the reads).
                let Ok(delivery) = self.delivery_of(row.clone()) else {
                    continue;
                };
                if !delivery.is_prunable(now, retention) {
                    continue;
                }
                let (day, domain) = (&row.0, &row.1);
                tx.prepare_cached(
                    "DELETE FROM tlsrpt_failures WHERE policy IN
                        (SELECT id FROM tlsrpt_policies WHERE day = ?1 AND domain = ?2)",
                )?
                .execute(params![day, domain])?;
                tx.prepare_cached("DELETE FROM tlsrpt_policies WHERE day = ?1 AND domain = ?2")?
                    .execute(params![day, domain])?;
                removed += tx
                    .prepare_cached("DELETE FROM tlsrpt_days WHERE day = ?1 AND domain = ?2")?
                    .execute(params![day, domain])?;
            }
            tx.prepare_cached("DELETE FROM tlsrpt_records WHERE next_check < ?1")?
                .execute([to_unix_millis(now) - to_unix_millis_of(STALE_RECORD)])?;
            tx.commit()?;
            Ok(removed)
        })
    }

    fn report_record(&self, domain: &Domain) -> Result<Option<CachedReportRecord>> {
        let row: Option<RecordRow> = self.run("reading a cached TLS-RPT record from", |conn| {
            conn.prepare_cached(
                "SELECT record, reason, checked_at, next_check FROM tlsrpt_records
                 WHERE domain = ?1",
            )?
            .query_row([domain.as_str()], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })
            .optional()
        })?;
        Ok(
            row.map(|(record, reason, checked, next)| CachedReportRecord {
                domain: domain.clone(),
                record,
                reason,
                checked_at: from_unix_millis(checked),
                next_check: from_unix_millis(next),
            }),
        )
    }

    fn put_report_record(&self, record: &CachedReportRecord) -> Result<()> {
        self.run("caching a TLS-RPT record in", |conn| {
            conn.prepare_cached(
                "INSERT INTO tlsrpt_records (domain, record, reason, checked_at, next_check)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (domain) DO UPDATE SET record = excluded.record,
                    reason = excluded.reason, checked_at = excluded.checked_at,
                    next_check = excluded.next_check",
            )?
            .execute(params![
                record.domain.as_str(),
                record.record,
                record.reason,
                to_unix_millis(record.checked_at),
                to_unix_millis(record.next_check)
            ])
        })
        .map(|_| ())
    }

    fn location(&self) -> String {
        self.cache.path().display().to_string()
    }
}

/// A `tlsrpt_records` row: record, reason, checked_at, next_check.
type RecordRow = (Option<String>, Option<String>, i64, i64);

/// `d` in milliseconds.
fn to_unix_millis_of(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}
