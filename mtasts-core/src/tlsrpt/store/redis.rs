//! TLS-RPT counts in the policy cache's Redis: keys of their own under the cache's key
//! prefix, on the cache's connections ([`RedisStore`]: its pool, its `fork()` rules, its
//! deadlines and its outage back-off).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::{
    CachedReportRecord, DayReport, DetailKey, PolicyKey, ReportDelivery, ReportStore, STALE_RECORD,
    Tally, check_retention, detail_key, policy_key,
};
use crate::cache::{RedisStore, from_unix_millis, to_unix_millis};
use crate::domain::Domain;
use crate::error::{Error, Result};
use crate::tlsrpt::session::{Session, UtcDay};

/// The key format version, part of every key.
const FORMAT: &str = "v1";
/// Keys a `SCAN` step asks for (a hint to Redis, not a limit).
const SCAN_COUNT: usize = 500;
/// Keys read per pipelined round trip.
const BATCH: usize = 200;
/// How long after the retention period a day's keys still live when nobody pruned them: the
/// backstop that keeps Redis from growing when no sender runs.
const BACKSTOP: Duration = Duration::from_secs(86_400);
/// The least time a record's token lives (see [`RECORD`]).
const MIN_TOKEN_LIFE: Duration = Duration::from_secs(10);

/// Counts one session atomically (a Lua script runs whole, with nothing in between).
///
/// `KEYS[1]` the day's counts, `KEYS[2]` the call's token; `ARGV[1]` the counts' expiry (Unix
/// seconds), `ARGV[2]` the token's life (ms), `ARGV[3..]` the fields to increment by one.
/// The token makes a repeat a no-op: the cache's connection code sends a call again on a
/// fresh connection when a pooled one turns out dead, and the first may have been executed.
/// Nothing is changed unless every field can be incremented (a damaged key is reported as
/// -1, never half counted). Returns 1 when counted, 0 for a repeat.
const RECORD: &str = r"
local kind = redis.call('TYPE', KEYS[1]).ok
if kind ~= 'hash' and kind ~= 'none' then return -1 end
for i = 3, #ARGV do
  local v = redis.call('HGET', KEYS[1], ARGV[i])
  if v and not tonumber(v) then return -1 end
end
if not redis.call('SET', KEYS[2], '1', 'NX', 'PX', ARGV[2]) then return 0 end
for i = 3, #ARGV do redis.call('HINCRBY', KEYS[1], ARGV[i], 1) end
redis.call('EXPIREAT', KEYS[1], ARGV[1])
return 1
";

/// Updates a day's delivery bookkeeping, if it has counts.
///
/// `KEYS[1]` the day's counts, `KEYS[2]` its bookkeeping; `ARGV[1]` the expiry (Unix
/// seconds), `ARGV[2]` `attempt` or the field to set, `ARGV[3]` the value (ms; `''`: none).
/// Returns 1 when updated, 0 when the day has no counts, -1 for a damaged key.
const DELIVERY: &str = r"
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local kind = redis.call('TYPE', KEYS[2]).ok
if kind ~= 'hash' and kind ~= 'none' then return -1 end
if ARGV[2] == 'attempt' then
  local n = redis.call('HGET', KEYS[2], 'attempts')
  if n and not tonumber(n) then return -1 end
  redis.call('HINCRBY', KEYS[2], 'attempts', 1)
  if ARGV[3] == '' then
    redis.call('HDEL', KEYS[2], 'next_attempt')
  else
    redis.call('HSET', KEYS[2], 'next_attempt', ARGV[3])
  end
else
  redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
end
redis.call('EXPIREAT', KEYS[2], ARGV[1])
return 1
";

/// TLS-RPT counts in the Redis of the policy cache, shared by every host of a fleet that
/// uses the same server, database and key prefix: the fleet aggregates once.
///
/// # Keys (format version 1; `P` is the cache's key prefix, default `mtasts`)
/// | key | type | content |
/// |---|---|---|
/// | `P:tlsrpt:v1:counts:<day>:<domain>` | hash | per field, a count; the field is a JSON array: `["s", type, strings, mx]` successful and `["f", type, strings, mx]` failed sessions (R-RPT-3), `["d", type, strings, mx, [7 fields]]` a failure detail (R-RPT-4, absent fields `""`) |
/// | `P:tlsrpt:v1:delivery:<day>:<domain>` | hash | `attempts`, `next_attempt`, `delivered_at`, `abandoned_at` (ms since 1970) |
/// | `P:tlsrpt:v1:record:<domain>` | hash | the sender's cached `_smtp._tls` answer: `record` (absent: no reports), `reason`, `checked_at`, `next_check` (ms since 1970); expires a day after `next_check` |
/// | `P:tlsrpt:v1:once:<token>` | string | a recent [`ReportStore::record`] call, so a repeat of it counts nothing; lives seconds |
///
/// # Atomicity and expiry
/// [`ReportStore::record`] is one Lua script (`EVAL`): every counter of the session is
/// incremented (`HINCRBY`) with nothing in between, or none is. Counters are never lost by a
/// killed client. Both keys of a day expire (`EXPIREAT`) the retention period plus a day
/// after the day ended (and at least a day after the last write), whether or not the report
/// was delivered: a backstop so that Redis does not grow without a sender; [`ReportStore::prune`] removes done days at the end of
/// the retention period.
#[derive(Debug)]
pub struct RedisReportStore {
    redis: Arc<RedisStore>,
    retention: Duration,
    token_life: Duration,
}

/// [`Error::ReportStore`] for an error of the cache layer.
fn store_error(e: Error) -> Error {
    match e {
        Error::Cache { reason } => Error::ReportStore { reason },
        other => other,
    }
}

/// A token unique to this call: this process, a sequence number and the time (so processes
/// of other hosts with the same pid differ too).
fn token() -> String {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!(
        "{}.{}.{nanos}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    )
}

/// A counts field: `[kind, type, strings, mx]` or `[kind, type, strings, mx, detail]`.
fn field(kind: &str, policy: &PolicyKey, detail: Option<&DetailKey>) -> String {
    let (policy_type, strings, mx) = policy;
    let value = match detail {
        None => serde_json::json!([kind, policy_type, strings, mx]),
        Some(detail) => serde_json::json!([kind, policy_type, strings, mx, detail]),
    };
    value.to_string()
}

/// What a counts field says.
enum Field {
    Sessions {
        policy: PolicyKey,
        failed: bool,
    },
    Detail {
        policy: PolicyKey,
        detail: DetailKey,
    },
}

fn parse_field(text: &str) -> Option<Field> {
    let value: serde_json::Value = serde_json::from_str(text).ok()?;
    let items = value.as_array()?;
    let strings = |v: &serde_json::Value| -> Option<Vec<String>> {
        v.as_array()?
            .iter()
            .map(|s| s.as_str().map(str::to_string))
            .collect()
    };
    let policy = (
        items.get(1)?.as_str()?.to_string(),
        strings(items.get(2)?)?,
        strings(items.get(3)?)?,
    );
    match (items.first()?.as_str()?, items.len()) {
        ("s", 4) => Some(Field::Sessions {
            policy,
            failed: false,
        }),
        ("f", 4) => Some(Field::Sessions {
            policy,
            failed: true,
        }),
        ("d", 5) => {
            let detail: [String; 7] = strings(items.get(4)?)?.try_into().ok()?;
            Some(Field::Detail { policy, detail })
        }
        _ => None,
    }
}

impl RedisReportStore {
    /// The report keys in the Redis (and under the key prefix) of `redis`, the policy
    /// cache's; done days are kept for `retention` ([`ReportStore::prune`]). Nothing is sent
    /// before the first call.
    ///
    /// # Errors
    /// [`Error::Config`] for a retention out of range.
    pub fn new(redis: Arc<RedisStore>, retention: Duration) -> Result<RedisReportStore> {
        check_retention(retention)?;
        let (connect, io) = redis.timeouts();
        // A repeat comes within one reconnect and one round trip of the first attempt.
        let token_life = MIN_TOKEN_LIFE.max((connect + io) * 4);
        Ok(RedisReportStore {
            redis,
            retention,
            token_life,
        })
    }

    /// The Redis URL and key prefix (`P` in the key table) of this store.
    pub fn location_and_prefix(&self) -> (String, String) {
        (
            self.redis.location_name().to_string(),
            self.redis.key_prefix().to_string(),
        )
    }

    fn head(&self, what: &str) -> String {
        format!("{}:tlsrpt:{FORMAT}:{what}:", self.redis.key_prefix())
    }

    /// The counts key of `day` and `domain`, e.g. `mtasts:tlsrpt:v1:counts:2026-12-01:example.com`.
    pub fn counts_key(&self, day: UtcDay, domain: &Domain) -> String {
        format!("{}{day}:{domain}", self.head("counts"))
    }

    /// The cached report record key of `domain`.
    pub fn record_key(&self, domain: &Domain) -> String {
        format!("{}{domain}", self.head("record"))
    }

    /// The bookkeeping key of `day` and `domain`.
    pub fn delivery_key(&self, day: UtcDay, domain: &Domain) -> String {
        format!("{}{day}:{domain}", self.head("delivery"))
    }

    /// When the keys of `day` expire (Unix seconds): the retention period plus a day after
    /// the day ended, and never less than a day from now (a session recorded for a long
    /// past day, by a host whose clock is wrong, is kept long enough to be seen).
    fn expire_at(&self, day: UtcDay) -> u64 {
        let at = (day.end() + self.retention + BACKSTOP).max(SystemTime::now() + BACKSTOP);
        at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
    }

    fn unreadable(&self, key: &str, what: &str) -> Error {
        Error::ReportStore {
            reason: format!(
                "Redis at {}: {key} is unreadable ({what})",
                self.redis.location_name()
            ),
        }
    }

    fn run<T>(
        &self,
        op: impl Fn(&mut ::redis::Connection) -> ::redis::RedisResult<T>,
    ) -> Result<T> {
        self.redis.run(op).map_err(store_error)
    }

    /// The (day, domain) of a counts key, by `SCAN`.
    fn days(&self) -> Result<Vec<(UtcDay, Domain)>> {
        let head = self.head("counts");
        let mut pattern = String::new();
        for c in head.chars() {
            if matches!(c, '*' | '?' | '[' | ']' | '\\') {
                pattern.push('\\');
            }
            pattern.push(c);
        }
        pattern.push('*');
        let mut days = Vec::new();
        let mut cursor = 0u64;
        loop {
            let (next, keys): (u64, Vec<String>) = self.run(|con| {
                ::redis::cmd("SCAN")
                    .cursor_arg(cursor)
                    .arg("MATCH")
                    .arg(&pattern)
                    .arg("COUNT")
                    .arg(SCAN_COUNT)
                    .query(con)
            })?;
            for key in keys {
                let parsed = key
                    .strip_prefix(&head)
                    .and_then(|rest| rest.split_once(':'))
                    .and_then(|(day, domain)| {
                        let day: UtcDay = day.parse().ok()?;
                        let domain = Domain::new(domain).ok()?;
                        Some((day, domain))
                    });
                match parsed {
                    Some(pair) => days.push(pair),
                    None => return Err(self.unreadable(&key, "not <day>:<domain>")),
                }
            }
            if next == 0 {
                break;
            }
            cursor = next;
        }
        days.sort();
        days.dedup();
        Ok(days)
    }

    /// The bookkeeping stored for `day` and `domain` (default when none is).
    fn decode_delivery(
        &self,
        key: &str,
        day: UtcDay,
        domain: &Domain,
        fields: HashMap<String, Vec<u8>>,
    ) -> Result<ReportDelivery> {
        let number = |name: &str| -> Result<Option<i64>> {
            fields
                .get(name)
                .map(|v| {
                    std::str::from_utf8(v)
                        .ok()
                        .and_then(|s| s.parse::<i64>().ok())
                        .ok_or_else(|| self.unreadable(key, &format!("{name} is not a number")))
                })
                .transpose()
        };
        Ok(ReportDelivery {
            day,
            domain: domain.clone(),
            attempts: number("attempts")?.map_or(0, |n| u32::try_from(n).unwrap_or(u32::MAX)),
            next_attempt: number("next_attempt")?.map(from_unix_millis),
            delivered_at: number("delivered_at")?.map(from_unix_millis),
            abandoned_at: number("abandoned_at")?.map(from_unix_millis),
        })
    }

    /// The bookkeeping of `pairs`, read in pipelined batches.
    fn deliveries(&self, pairs: &[(UtcDay, Domain)]) -> Result<Vec<ReportDelivery>> {
        let mut out = Vec::with_capacity(pairs.len());
        for chunk in pairs.chunks(BATCH) {
            let keys: Vec<String> = chunk
                .iter()
                .map(|(day, domain)| self.delivery_key(*day, domain))
                .collect();
            let values: Vec<::redis::Value> = self.run(|con| {
                let mut pipe = ::redis::pipe();
                for key in &keys {
                    pipe.cmd("HGETALL").arg(key);
                }
                pipe.ignore_errors();
                pipe.query(con)
            })?;
            for (((day, domain), key), value) in chunk.iter().zip(&keys).zip(values) {
                let fields: HashMap<String, Vec<u8>> = ::redis::from_redis_value(value)
                    .map_err(|e| self.unreadable(key, &e.to_string()))?;
                out.push(self.decode_delivery(key, *day, domain, fields)?);
            }
        }
        Ok(out)
    }

    /// Runs [`DELIVERY`] for `day` and `domain`.
    fn update_delivery(
        &self,
        day: UtcDay,
        domain: &Domain,
        what: &str,
        value: Option<i64>,
    ) -> Result<bool> {
        let counts = self.counts_key(day, domain);
        let delivery = self.delivery_key(day, domain);
        let value = value.map(|v| v.to_string()).unwrap_or_default();
        let done: i64 = self.run(|con| {
            ::redis::cmd("EVAL")
                .arg(DELIVERY)
                .arg(2)
                .arg(&counts)
                .arg(&delivery)
                .arg(self.expire_at(day))
                .arg(what)
                .arg(&value)
                .query(con)
        })?;
        match done {
            1 => Ok(true),
            0 => Ok(false),
            _ => Err(self.unreadable(&delivery, "not a hash of numbers")),
        }
    }
}

impl ReportStore for RedisReportStore {
    fn record(&self, session: &Session) -> Result<()> {
        let day = session.day();
        let key = self.counts_key(day, session.policy().domain());
        let policy = policy_key(session.policy());
        let mut fields = vec![field(
            if session.is_success() { "s" } else { "f" },
            &policy,
            None,
        )];
        fields.extend(
            session
                .failures()
                .iter()
                .map(|f| field("d", &policy, Some(&detail_key(f)))),
        );
        let once = format!("{}{}", self.head("once"), token());
        let life = u64::try_from(self.token_life.as_millis()).unwrap_or(u64::MAX);
        // R-RPT-3/R-RPT-4: all the session's counters in one script, atomically.
        let counted: i64 = self.run(|con| {
            let mut eval = ::redis::cmd("EVAL");
            eval.arg(RECORD)
                .arg(2)
                .arg(&key)
                .arg(&once)
                .arg(self.expire_at(day))
                .arg(life);
            for f in &fields {
                eval.arg(f);
            }
            eval.query(con)
        })?;
        match counted {
            // 0: a repeat of a call that was counted.
            0 | 1 => Ok(()),
            _ => Err(self.unreadable(&key, "not a hash of counts; nothing was counted")),
        }
    }

    fn list_days(&self) -> Result<Vec<ReportDelivery>> {
        let days = self.days()?;
        self.deliveries(&days)
    }

    fn day_report(&self, day: UtcDay, domain: &Domain) -> Result<Option<DayReport>> {
        let key = self.counts_key(day, domain);
        let stored: ::redis::Value = self.run(|con| {
            let mut pipe = ::redis::pipe();
            pipe.cmd("HGETALL").arg(&key);
            pipe.ignore_errors();
            let mut values: Vec<::redis::Value> = pipe.query(con)?;
            Ok(values.pop().unwrap_or(::redis::Value::Nil))
        })?;
        let fields: HashMap<String, Vec<u8>> =
            ::redis::from_redis_value(stored).map_err(|e| self.unreadable(&key, &e.to_string()))?;
        if fields.is_empty() {
            return Ok(None);
        }
        let mut tally = Tally::new();
        for (name, value) in fields {
            let count = std::str::from_utf8(&value)
                .ok()
                .and_then(|s| s.parse::<u64>().ok())
                .ok_or_else(|| {
                    self.unreadable(&key, &format!("the count of {name} is not a number"))
                })?;
            match parse_field(&name) {
                Some(Field::Sessions { policy, failed }) => {
                    let (ok, bad) = if failed { (0, count) } else { (count, 0) };
                    tally.add_sessions(policy, ok, bad);
                }
                Some(Field::Detail { policy, detail }) => tally.add_detail(policy, detail, count),
                None => return Err(self.unreadable(&key, &format!("unknown field {name:?}"))),
            }
        }
        Ok(Some(DayReport {
            day,
            domain: domain.clone(),
            policies: tally.summaries(domain)?,
        }))
    }

    fn delivery(&self, day: UtcDay, domain: &Domain) -> Result<Option<ReportDelivery>> {
        let counts = self.counts_key(day, domain);
        let exists: bool = self.run(|con| ::redis::cmd("EXISTS").arg(&counts).query(con))?;
        if !exists {
            return Ok(None);
        }
        Ok(self
            .deliveries(&[(day, domain.clone())])?
            .into_iter()
            .next())
    }

    fn record_attempt(
        &self,
        day: UtcDay,
        domain: &Domain,
        next_attempt: Option<SystemTime>,
    ) -> Result<bool> {
        self.update_delivery(day, domain, "attempt", next_attempt.map(to_unix_millis))
    }

    fn mark_delivered(&self, day: UtcDay, domain: &Domain, at: SystemTime) -> Result<bool> {
        self.update_delivery(day, domain, "delivered_at", Some(to_unix_millis(at)))
    }

    fn mark_abandoned(&self, day: UtcDay, domain: &Domain, at: SystemTime) -> Result<bool> {
        self.update_delivery(day, domain, "abandoned_at", Some(to_unix_millis(at)))
    }

    /// Each prunable day's two keys go in one `DEL`.
    fn prune(&self, now: SystemTime) -> Result<usize> {
        let days = self.days()?;
        let mut removed = 0;
        for delivery in self.deliveries(&days)? {
            if !delivery.is_prunable(now, self.retention) {
                continue;
            }
            let keys = [
                self.counts_key(delivery.day, &delivery.domain),
                self.delivery_key(delivery.day, &delivery.domain),
            ];
            let gone: u64 = self.run(|con| ::redis::cmd("DEL").arg(&keys[..]).query(con))?;
            if gone > 0 {
                removed += 1;
            }
        }
        Ok(removed)
    }

    fn report_record(&self, domain: &Domain) -> Result<Option<CachedReportRecord>> {
        let key = self.record_key(domain);
        let fields: HashMap<String, Vec<u8>> =
            self.run(|con| ::redis::cmd("HGETALL").arg(&key).query(con))?;
        if fields.is_empty() {
            return Ok(None);
        }
        let text = |name: &str| -> Result<Option<String>> {
            fields
                .get(name)
                .map(|v| {
                    String::from_utf8(v.clone())
                        .map_err(|_| self.unreadable(&key, &format!("{name} is not UTF-8")))
                })
                .transpose()
        };
        let time = |name: &str| -> Result<SystemTime> {
            text(name)?
                .and_then(|v| v.parse::<i64>().ok())
                .map(from_unix_millis)
                .ok_or_else(|| self.unreadable(&key, &format!("{name} is not a number")))
        };
        Ok(Some(CachedReportRecord {
            domain: domain.clone(),
            record: text("record")?,
            reason: text("reason")?,
            checked_at: time("checked_at")?,
            next_check: time("next_check")?,
        }))
    }

    /// One `MULTI`: the old hash deleted, the new one written, its expiry set.
    fn put_report_record(&self, record: &CachedReportRecord) -> Result<()> {
        let key = self.record_key(&record.domain);
        let mut fields = vec![
            ("checked_at", to_unix_millis(record.checked_at).to_string()),
            ("next_check", to_unix_millis(record.next_check).to_string()),
        ];
        if let Some(text) = &record.record {
            fields.push(("record", text.clone()));
        }
        if let Some(reason) = &record.reason {
            fields.push(("reason", reason.clone()));
        }
        let expire = to_unix_millis(record.next_check + STALE_RECORD);
        self.run(|con| {
            ::redis::pipe()
                .atomic()
                .cmd("DEL")
                .arg(&key)
                .ignore()
                .cmd("HSET")
                .arg(&key)
                .arg(&fields[..])
                .ignore()
                .cmd("PEXPIREAT")
                .arg(&key)
                .arg(expire)
                .ignore()
                .query::<()>(con)
        })
    }

    fn location(&self) -> String {
        self.redis.location_name().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A repeated call (the same token) counts nothing: what makes the cache's
    /// reconnect-and-resend safe for increments.
    #[test]
    fn a_repeated_record_call_counts_once() {
        let server = mtasts_testworld::RedisServer::start().expect("redis-server");
        let redis = Arc::new(RedisStore::connect(&server.url()).unwrap());
        let store =
            RedisReportStore::new(Arc::clone(&redis), super::super::DEFAULT_RETENTION).unwrap();
        let day = UtcDay::today();
        let domain = Domain::new("example.com").unwrap();
        let key = store.counts_key(day, &domain);
        let once = format!("{}same-token", store.head("once"));
        let field = field("s", &("no-policy-found".into(), vec![], vec![]), None);
        let run = || -> i64 {
            redis
                .run(|con| {
                    ::redis::cmd("EVAL")
                        .arg(RECORD)
                        .arg(2)
                        .arg(&key)
                        .arg(&once)
                        .arg(store.expire_at(day))
                        .arg(10_000)
                        .arg(&field)
                        .query(con)
                })
                .unwrap()
        };
        assert_eq!(run(), 1);
        assert_eq!(run(), 0, "the repeat is a no-op");
        let report = store.day_report(day, &domain).unwrap().unwrap();
        assert_eq!(report.policies[0].total_successful, 1);
    }

    #[test]
    fn fields_round_trip() {
        let policy: PolicyKey = (
            "sts".into(),
            vec!["version: STSv1".into()],
            vec!["*.example.com".into()],
        );
        let detail: DetailKey = [
            "certificate-expired".into(),
            "192.0.2.1".into(),
            "mx1.example.com".into(),
            String::new(),
            String::new(),
            "a \"quoted\" code".into(),
            String::new(),
        ];
        match parse_field(&field("d", &policy, Some(&detail))) {
            Some(Field::Detail {
                policy: p,
                detail: d,
            }) => assert_eq!((p, d), (policy.clone(), detail)),
            _ => panic!("not a detail"),
        }
        match parse_field(&field("f", &policy, None)) {
            Some(Field::Sessions { policy: p, failed }) => assert_eq!((p, failed), (policy, true)),
            _ => panic!("not sessions"),
        }
        for bad in [
            "",
            "[]",
            "[\"x\",\"sts\",[],[]]",
            "[\"d\",\"sts\",[],[]]",
            "{\"s\":1}",
        ] {
            assert!(parse_field(bad).is_none(), "{bad}");
        }
    }
}
