//! The TLS-RPT report store: the day's counters (R-RPT-3, R-RPT-4) kept where the policy
//! cache lives, so every process and every host sharing a cache aggregates once, and the
//! delivery bookkeeping the sender uses (R-RPT-10).
//!
//! [`ReportStore`] is the interface; [`SqliteReportStore`] keeps its own tables in the
//! cache's SQLite file, [`RedisReportStore`] its own keys in the cache's Redis, and
//! [`MemoryReportStore`] keeps this process's counts (tests, and processes that read their
//! counts themselves). Counting is pure ([`Tally`]); the stores only make it atomic and
//! durable. A store that cannot be read or written says so ([`Error::ReportStore`]): it never
//! drops a count or invents one.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use super::report::{FailureDetail, PolicySummary, PolicyType, Report, ReportPolicy};
use super::session::{AppliedPolicy, Session, SessionFailure, UtcDay};
use crate::domain::Domain;
use crate::error::{Error, Result};

mod redis;
mod sqlite;

pub use redis::RedisReportStore;
pub use sqlite::SqliteReportStore;

/// The shortest retention period accepted ([`ReportStore::prune`]): the sender spreads its
/// sends over the day after the reported day and retries for at least 24 h (R-RPT-10), so a
/// day's counts must outlive two days after it ended.
pub const MIN_RETENTION: Duration = Duration::from_secs(2 * 86_400);
/// The longest retention period accepted.
pub const MAX_RETENTION: Duration = Duration::from_secs(366 * 86_400);
/// The default retention period: a week after the day ended, so `mtasts tlsrpt show` still
/// finds last week's reports.
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(7 * 86_400);

/// The counts of one (UTC day, policy domain): what a report for them says (RFC 8460 §4.4),
/// but for who sends it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DayReport {
    /// The UTC day.
    pub day: UtcDay,
    /// The policy domain.
    pub domain: Domain,
    /// Per applied policy, its counts and failure details; ordered by policy, details by
    /// their fields (a deterministic order, the same from every store).
    pub policies: Vec<PolicySummary>,
}

impl DayReport {
    /// The counts over every applied policy of `policy_type`: successful sessions, failed
    /// sessions, and the failure details' counts summed (R-RPT-3, R-RPT-4), for a face's
    /// read-back (`mtasts_reporter_counts`, `Reporter.counts`).
    pub fn totals(&self, policy_type: PolicyType) -> (u64, u64, u64) {
        self.policies
            .iter()
            .filter(|p| p.policy.policy_type == policy_type)
            .fold((0, 0, 0), |(s, f, d), p| {
                (
                    s + p.total_successful,
                    f + p.total_failure,
                    d + p
                        .failure_details
                        .iter()
                        .map(|x| x.failed_session_count)
                        .sum::<u64>(),
                )
            })
    }

    /// The report for these counts, with the sender's `organization-name`, `contact-info`
    /// and `report-id`; the date-range is the UTC day (R-RPT-6).
    pub fn to_report(
        &self,
        organization_name: &str,
        contact_info: &str,
        report_id: &str,
    ) -> Report {
        Report {
            organization_name: organization_name.to_string(),
            start_datetime: self.day.start_datetime(),
            end_datetime: self.day.end_datetime(),
            contact_info: contact_info.to_string(),
            report_id: report_id.to_string(),
            policies: self.policies.clone(),
        }
    }
}

/// Where the sending of one (day, domain)'s report stands (R-RPT-10).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReportDelivery {
    /// The UTC day.
    pub day: UtcDay,
    /// The policy domain.
    pub domain: Domain,
    /// Delivery attempts so far ([`ReportStore::record_attempt`]).
    pub attempts: u32,
    /// No attempt before this, if set.
    pub next_attempt: Option<SystemTime>,
    /// When one `rua` accepted the report (R-RPT-10: then it is delivered).
    pub delivered_at: Option<SystemTime>,
    /// When the sender gave up (no TLS-RPT record, or retries used up).
    pub abandoned_at: Option<SystemTime>,
}

impl ReportDelivery {
    /// Bookkeeping of a (day, domain) never attempted.
    pub fn new(day: UtcDay, domain: Domain) -> ReportDelivery {
        ReportDelivery {
            day,
            domain,
            attempts: 0,
            next_attempt: None,
            delivered_at: None,
            abandoned_at: None,
        }
    }

    /// Delivered or abandoned: nothing more to send.
    pub fn is_done(&self) -> bool {
        self.delivered_at.is_some() || self.abandoned_at.is_some()
    }

    /// True when the (day, domain) is done and its day ended more than `retention` before
    /// `now`: [`ReportStore::prune`] removes it.
    pub fn is_prunable(&self, now: SystemTime, retention: Duration) -> bool {
        self.is_done() && is_past_retention(self.day, now, retention)
    }
}

/// A `_smtp._tls` answer as the sender keeps it between runs (issue 15: the TLS-RPT record
/// is cached by "the same caching rules as the STS record"): what was found, and when the
/// record may be queried again. As for the STS record (R-CACHE-5) that is the answer's TTL
/// kept within 60 s to 3600 s, or the `recheck_interval` setting; in between, the cached
/// answer alone is used. Temporary DNS failures are never cached as an answer (R-RPT-1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CachedReportRecord {
    /// The policy domain.
    pub domain: Domain,
    /// The record's text when exactly one valid record was found (R-RPT-1); `None`: the
    /// domain gets no reports (NXDOMAIN, NODATA, no or several records, an invalid one).
    pub record: Option<String>,
    /// Why there are no reports, when a record was there but is unusable.
    pub reason: Option<String>,
    /// When the answer was received.
    pub checked_at: SystemTime,
    /// Not queried again before this.
    pub next_check: SystemTime,
}

/// Cached report records are dropped by [`ReportStore::prune`] once their `next_check` is
/// this far in the past: they would be queried again anyway.
pub(crate) const STALE_RECORD: Duration = Duration::from_secs(86_400);

/// True when `day` ended more than `retention` before `now`.
pub(crate) fn is_past_retention(day: UtcDay, now: SystemTime, retention: Duration) -> bool {
    day.end()
        .checked_add(retention)
        .is_some_and(|limit| now > limit)
}

/// [`Error::Config`] unless `retention` is within [`MIN_RETENTION`] and [`MAX_RETENTION`].
pub(crate) fn check_retention(retention: Duration) -> Result<()> {
    if retention < MIN_RETENTION || retention > MAX_RETENTION {
        return Err(Error::Config {
            reason: format!(
                "TLS-RPT retention of {} days is out of range: at least {} (a day's counts \
                 must outlive its delivery, R-RPT-10) and at most {}",
                retention.as_secs() / 86_400,
                MIN_RETENTION.as_secs() / 86_400,
                MAX_RETENTION.as_secs() / 86_400
            ),
        });
    }
    Ok(())
}

/// Where TLS-RPT counts are kept. Implementations are safe to share between threads and,
/// for the shared stores, between processes and hosts: every [`ReportStore::record`] is one
/// atomic increment of all the counters a session touches, so concurrent recorders never
/// lose or double a count.
pub trait ReportStore: Send + Sync + Debug {
    /// Counts `session` (R-RPT-3: one successful or failed session of its day, domain and
    /// applied policy; R-RPT-4: one more for each of its distinct failure details), all at
    /// once. `Ok` means it is counted; an error means it is not (for Redis: at most once).
    fn record(&self, session: &Session) -> Result<()>;

    /// The (day, domain) pairs that have counts and are neither delivered nor abandoned,
    /// ordered by day and domain, with their bookkeeping. The current day is included: the
    /// sender decides when a day is over. [`ReportStore::list_days`] less the done ones.
    fn pending(&self) -> Result<Vec<ReportDelivery>> {
        let mut days = self.list_days()?;
        days.retain(|d| !d.is_done());
        Ok(days)
    }

    /// Every (day, domain) pair with counts, done or not, ordered by day and domain, with
    /// its bookkeeping (`mtasts tlsrpt list`).
    fn list_days(&self) -> Result<Vec<ReportDelivery>>;

    /// The counts of `day` and `domain`; `None` when there are none.
    fn day_report(&self, day: UtcDay, domain: &Domain) -> Result<Option<DayReport>>;

    /// The bookkeeping of `day` and `domain`; `None` when they have no counts.
    fn delivery(&self, day: UtcDay, domain: &Domain) -> Result<Option<ReportDelivery>>;

    /// One more delivery attempt for `day` and `domain`, and when the next may be made
    /// (`None`: at once). False when they have no counts (nothing is written then).
    fn record_attempt(
        &self,
        day: UtcDay,
        domain: &Domain,
        next_attempt: Option<SystemTime>,
    ) -> Result<bool>;

    /// Marks the report of `day` and `domain` delivered at `at` (R-RPT-10: one `rua`
    /// accepted it). False when they have no counts.
    fn mark_delivered(&self, day: UtcDay, domain: &Domain, at: SystemTime) -> Result<bool>;

    /// Marks the report of `day` and `domain` abandoned at `at` (no TLS-RPT record, S-84;
    /// or retries used up). False when they have no counts.
    fn mark_abandoned(&self, day: UtcDay, domain: &Domain, at: SystemTime) -> Result<bool>;

    /// Removes the (day, domain) pairs that are delivered or abandoned and whose day ended
    /// more than the store's retention period before `now`; returns how many went.
    /// Undelivered days are kept (the Redis store's keys still expire, see
    /// [`RedisReportStore`]).
    fn prune(&self, now: SystemTime) -> Result<usize>;

    /// The cached `_smtp._tls` answer of `domain` ([`CachedReportRecord`]), if any, whether
    /// or not it is still fresh (the caller compares `next_check` with its clock).
    fn report_record(&self, domain: &Domain) -> Result<Option<CachedReportRecord>>;

    /// Caches `record` (replacing what was cached for its domain).
    fn put_report_record(&self, record: &CachedReportRecord) -> Result<()>;

    /// Where the store is, for messages: a path or a Redis URL (no password).
    fn location(&self) -> String;
}

/// Identifies an applied policy in the counters: (policy-type, policy-string, mx-host).
/// The day and domain are the counters' own.
pub(crate) type PolicyKey = (String, Vec<String>, Vec<String>);

/// Identifies a failure detail in the counters (R-RPT-4): result-type, sending-mta-ip,
/// receiving-mx-hostname, receiving-mx-helo, receiving-ip, failure-reason-code,
/// additional-information, each `""` when not known.
pub(crate) type DetailKey = [String; 7];

/// The key of `policy`.
pub(crate) fn policy_key(policy: &AppliedPolicy) -> PolicyKey {
    (
        policy.policy_type().as_str().to_string(),
        policy.policy_string().to_vec(),
        policy.mx_host().to_vec(),
    )
}

/// The key of `failure`.
pub(crate) fn detail_key(failure: &SessionFailure) -> DetailKey {
    let d = failure.to_detail(0);
    let text = |v: Option<String>| v.unwrap_or_default();
    [
        d.result_type,
        text(d.sending_mta_ip),
        text(d.receiving_mx_hostname),
        text(d.receiving_mx_helo),
        text(d.receiving_ip),
        text(d.failure_reason_code),
        text(d.additional_information),
    ]
}

/// The failure detail of `key`, counting `count` sessions.
pub(crate) fn detail_of(key: DetailKey, count: u64) -> FailureDetail {
    let [
        result_type,
        sending_mta_ip,
        receiving_mx_hostname,
        receiving_mx_helo,
        receiving_ip,
        failure_reason_code,
        additional_information,
    ] = key;
    let known = |v: String| (!v.is_empty()).then_some(v);
    FailureDetail {
        result_type,
        sending_mta_ip: known(sending_mta_ip),
        receiving_mx_hostname: known(receiving_mx_hostname),
        receiving_mx_helo: known(receiving_mx_helo),
        receiving_ip: known(receiving_ip),
        failed_session_count: count,
        additional_information: known(additional_information),
        failure_reason_code: known(failure_reason_code),
    }
}

/// The counts of one applied policy.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct PolicyCounts {
    pub(crate) successful: u64,
    pub(crate) failed: u64,
    pub(crate) details: BTreeMap<DetailKey, u64>,
}

/// The counts of one (day, domain), per applied policy: counting itself (R-RPT-3, R-RPT-4),
/// pure. The stores read their counters into one to build a [`DayReport`], so every store
/// orders a report the same way.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    policies: BTreeMap<PolicyKey, PolicyCounts>,
}

impl Tally {
    /// No counts.
    pub fn new() -> Tally {
        Tally::default()
    }

    /// Counts `session`: one more successful or failed session under its policy (R-RPT-3),
    /// and one more for each of its failure details (R-RPT-4). The session's day and domain
    /// are the caller's to match.
    pub fn add(&mut self, session: &Session) {
        let counts = self
            .policies
            .entry(policy_key(session.policy()))
            .or_default();
        if session.is_success() {
            counts.successful += 1;
        } else {
            counts.failed += 1;
        }
        for failure in session.failures() {
            *counts.details.entry(detail_key(failure)).or_default() += 1;
        }
    }

    /// Adds stored counts: `successful` and `failed` sessions under `policy`.
    pub(crate) fn add_sessions(&mut self, policy: PolicyKey, successful: u64, failed: u64) {
        let counts = self.policies.entry(policy).or_default();
        counts.successful = counts.successful.saturating_add(successful);
        counts.failed = counts.failed.saturating_add(failed);
    }

    /// Adds a stored count: `count` sessions with failure detail `detail` under `policy`.
    pub(crate) fn add_detail(&mut self, policy: PolicyKey, detail: DetailKey, count: u64) {
        let counts = self.policies.entry(policy).or_default();
        let n = counts.details.entry(detail).or_default();
        *n = n.saturating_add(count);
    }

    /// True when nothing is counted.
    pub fn is_empty(&self) -> bool {
        self.policies.is_empty()
    }

    /// The report data (R-RPT-6): one [`PolicySummary`] per applied policy, in the order of
    /// (policy-type, policy-string, mx-host), failure details in the order of their fields.
    /// A policy type the store holds but this version does not know is an error, never
    /// dropped.
    ///
    /// # Errors
    /// [`Error::ReportStore`] for an unknown stored policy type.
    pub fn summaries(&self, domain: &Domain) -> Result<Vec<PolicySummary>> {
        let mut summaries = Vec::with_capacity(self.policies.len());
        for ((policy_type, policy_string, mx_host), counts) in &self.policies {
            let policy_type =
                super::report::PolicyType::from_name(policy_type).ok_or_else(|| {
                    Error::ReportStore {
                        reason: format!("unknown stored policy type {policy_type:?} for {domain}"),
                    }
                })?;
            summaries.push(PolicySummary {
                policy: ReportPolicy {
                    policy_type,
                    policy_string: policy_string.clone(),
                    policy_domain: domain.to_string(),
                    mx_host: mx_host.clone(),
                },
                total_successful: counts.successful,
                total_failure: counts.failed,
                failure_details: counts
                    .details
                    .iter()
                    .map(|(key, &count)| detail_of(key.clone(), count))
                    .collect(),
            });
        }
        Ok(summaries)
    }

    /// Sessions counted in all: (successful, failed).
    pub fn sessions(&self) -> (u64, u64) {
        self.policies
            .values()
            .fold((0, 0), |(s, f), c| (s + c.successful, f + c.failed))
    }
}

/// One (day, domain)'s counts and bookkeeping in a [`MemoryReportStore`].
#[derive(Debug)]
struct DayData {
    tally: Tally,
    delivery: ReportDelivery,
}

/// TLS-RPT counts in this process's memory: lost when it ends. For tests and for
/// long-running processes that send their own reports; MTAs use the shared stores.
#[derive(Debug)]
pub struct MemoryReportStore {
    retention: Duration,
    days: Mutex<BTreeMap<(UtcDay, Domain), DayData>>,
    records: Mutex<BTreeMap<Domain, CachedReportRecord>>,
}

impl MemoryReportStore {
    /// An empty store that keeps done days for `retention` ([`ReportStore::prune`]).
    ///
    /// # Errors
    /// [`Error::Config`] for a retention outside [`MIN_RETENTION`]..=[`MAX_RETENTION`].
    pub fn new(retention: Duration) -> Result<MemoryReportStore> {
        check_retention(retention)?;
        Ok(MemoryReportStore {
            retention,
            days: Mutex::new(BTreeMap::new()),
            records: Mutex::new(BTreeMap::new()),
        })
    }

    fn days(&self) -> std::sync::MutexGuard<'_, BTreeMap<(UtcDay, Domain), DayData>> {
        // Each change is made whole under the lock: a poisoned lock's map is consistent.
        self.days.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn update(&self, day: UtcDay, domain: &Domain, f: impl FnOnce(&mut ReportDelivery)) -> bool {
        match self.days().get_mut(&(day, domain.clone())) {
            Some(data) => {
                f(&mut data.delivery);
                true
            }
            None => false,
        }
    }
}

impl ReportStore for MemoryReportStore {
    fn record(&self, session: &Session) -> Result<()> {
        let key = (session.day(), session.policy().domain().clone());
        let mut days = self.days();
        let data = days.entry(key).or_insert_with(|| DayData {
            tally: Tally::new(),
            delivery: ReportDelivery::new(session.day(), session.policy().domain().clone()),
        });
        data.tally.add(session);
        Ok(())
    }

    fn list_days(&self) -> Result<Vec<ReportDelivery>> {
        Ok(self.days().values().map(|d| d.delivery.clone()).collect())
    }

    fn day_report(&self, day: UtcDay, domain: &Domain) -> Result<Option<DayReport>> {
        let tally = match self.days().get(&(day, domain.clone())) {
            Some(data) => data.tally.clone(),
            None => return Ok(None),
        };
        Ok(Some(DayReport {
            day,
            domain: domain.clone(),
            policies: tally.summaries(domain)?,
        }))
    }

    fn delivery(&self, day: UtcDay, domain: &Domain) -> Result<Option<ReportDelivery>> {
        Ok(self
            .days()
            .get(&(day, domain.clone()))
            .map(|d| d.delivery.clone()))
    }

    fn record_attempt(
        &self,
        day: UtcDay,
        domain: &Domain,
        next_attempt: Option<SystemTime>,
    ) -> Result<bool> {
        Ok(self.update(day, domain, |d| {
            d.attempts = d.attempts.saturating_add(1);
            d.next_attempt = next_attempt;
        }))
    }

    fn mark_delivered(&self, day: UtcDay, domain: &Domain, at: SystemTime) -> Result<bool> {
        Ok(self.update(day, domain, |d| d.delivered_at = Some(at)))
    }

    fn mark_abandoned(&self, day: UtcDay, domain: &Domain, at: SystemTime) -> Result<bool> {
        Ok(self.update(day, domain, |d| d.abandoned_at = Some(at)))
    }

    fn prune(&self, now: SystemTime) -> Result<usize> {
        let mut days = self.days();
        let before = days.len();
        days.retain(|_, d| !d.delivery.is_prunable(now, self.retention));
        let removed = before - days.len();
        drop(days);
        self.records
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|_, r| r.next_check + STALE_RECORD > now);
        Ok(removed)
    }

    fn report_record(&self, domain: &Domain) -> Result<Option<CachedReportRecord>> {
        Ok(self
            .records
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(domain)
            .cloned())
    }

    fn put_report_record(&self, record: &CachedReportRecord) -> Result<()> {
        self.records
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(record.domain.clone(), record.clone());
        Ok(())
    }

    fn location(&self) -> String {
        "memory".into()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::error::ResultType;
    use crate::policy::{CachedPolicy, Policy};
    use crate::resolution::{Resolution, Source};
    use crate::tlsrpt::report::PolicyType;

    const ENFORCE: &str = "version: STSv1\nmode: enforce\nmx: *.example.com\nmax_age: 86400\n";

    fn day() -> UtcDay {
        "2026-12-01".parse().unwrap()
    }

    fn domain() -> Domain {
        Domain::new("example.com").unwrap()
    }

    fn resolution(text: Option<&str>, source: Source, failure: Option<Error>) -> Resolution {
        let at = day().start();
        Resolution {
            domain: domain(),
            source,
            policy: text.map(|t| {
                Arc::new(CachedPolicy {
                    id: "id1".into(),
                    policy: Arc::new(Policy::parse(t).unwrap()),
                    fetched_at: at,
                    expires_at: at + Duration::from_secs(86_400),
                })
            }),
            failure,
            notice: None,
            domain_not_found: false,
        }
    }

    fn store() -> MemoryReportStore {
        MemoryReportStore::new(DEFAULT_RETENTION).unwrap()
    }

    fn only_policy(store: &dyn ReportStore) -> PolicySummary {
        let report = store.day_report(day(), &domain()).unwrap().unwrap();
        assert_eq!(report.policies.len(), 1, "{report:?}");
        report.policies.into_iter().next().unwrap()
    }

    /// S-80: 3 successes under the enforce policy.
    #[test]
    fn s80_three_successes_under_enforce() {
        let store = store();
        let r = resolution(Some(ENFORCE), Source::Cache, None);
        for _ in 0..3 {
            store
                .record(&Session::from_resolution(day(), &r, vec![]).unwrap())
                .unwrap();
        }
        let p = only_policy(&store);
        assert_eq!(p.policy.policy_type, PolicyType::Sts);
        assert_eq!(p.policy.mx_host, ["*.example.com"]);
        assert_eq!(p.policy.policy_string.len(), 4);
        assert_eq!((p.total_successful, p.total_failure), (3, 0));
        assert!(p.failure_details.is_empty());
    }

    /// S-81: 2 `certificate-expired` at mx1, 1 `starttls-not-supported` at mx2, under a
    /// testing policy (counted like enforce).
    #[test]
    fn s81_testing_failures_are_counted_per_distinct_detail() {
        let store = store();
        let r = resolution(
            Some(&ENFORCE.replace("enforce", "testing")),
            Source::Fetched,
            None,
        );
        let expired = SessionFailure::new(ResultType::CertificateExpired)
            .receiving_mx_hostname("mx1.example.com")
            .unwrap()
            .receiving_ip("198.51.100.1")
            .unwrap();
        let no_starttls = SessionFailure::new(ResultType::StarttlsNotSupported)
            .receiving_mx_hostname("mx2.example.com")
            .unwrap();
        for failure in [expired.clone(), expired, no_starttls] {
            store
                .record(&Session::from_resolution(day(), &r, vec![failure]).unwrap())
                .unwrap();
        }
        let p = only_policy(&store);
        assert_eq!((p.total_successful, p.total_failure), (0, 3));
        let details: Vec<(&str, Option<&str>, u64)> = p
            .failure_details
            .iter()
            .map(|d| {
                (
                    d.result_type.as_str(),
                    d.receiving_mx_hostname.as_deref(),
                    d.failed_session_count,
                )
            })
            .collect();
        assert_eq!(
            details,
            [
                ("certificate-expired", Some("mx1.example.com"), 2),
                ("starttls-not-supported", Some("mx2.example.com"), 1)
            ]
        );
        assert_eq!(
            p.failure_details[0].receiving_ip.as_deref(),
            Some("198.51.100.1")
        );
    }

    /// S-82: the policy fetch failed and nothing is cached: 4 deliveries are failed
    /// sessions under no-policy-found, with `sts-policy-fetch-error` (R-RPT-5).
    #[test]
    fn s82_a_fetch_failure_without_cache_is_no_policy_found_with_fetch_errors() {
        let store = store();
        let failure = Error::PolicyFetch {
            url: domain().policy_url(),
            reason: "HTTP status 500".into(),
        };
        let r = resolution(None, Source::Unavailable, Some(failure));
        for _ in 0..4 {
            store
                .record(&Session::from_resolution(day(), &r, vec![]).unwrap())
                .unwrap();
        }
        let p = only_policy(&store);
        assert_eq!(p.policy.policy_type, PolicyType::NoPolicyFound);
        assert!(p.policy.policy_string.is_empty() && p.policy.mx_host.is_empty());
        assert_eq!((p.total_successful, p.total_failure), (0, 4));
        assert_eq!(p.failure_details.len(), 1);
        assert_eq!(p.failure_details[0].result_type, "sts-policy-fetch-error");
        assert_eq!(p.failure_details[0].failed_session_count, 4);
        let json = store
            .day_report(day(), &domain())
            .unwrap()
            .unwrap()
            .to_report("Sender", "postmaster@sender.example", "r1")
            .to_json();
        assert_eq!(
            json["policies"][0]["policy"]["policy-type"],
            "no-policy-found"
        );
        assert_eq!(
            json["policies"][0]["policy"]["policy-domain"],
            "example.com"
        );
        assert_eq!(json["date-range"]["end-datetime"], "2026-12-01T23:59:59Z");
    }

    /// R-RPT-5 with a cached policy: the session counts under `sts`, with the fetch error
    /// and the TLS failure both (R-RPT-4: one attempt, several result types).
    #[test]
    fn a_fetch_failure_with_a_cached_policy_counts_under_sts_with_both_details() {
        let failure = Error::PolicyCertificate {
            url: domain().policy_url(),
            reason: "expired".into(),
        };
        let r = resolution(Some(ENFORCE), Source::CacheAfterFailure, Some(failure));
        let tls = SessionFailure::new(ResultType::CertificateNotTrusted);
        let session = Session::from_resolution(day(), &r, vec![tls]).unwrap();
        let store = store();
        store.record(&session).unwrap();
        let p = only_policy(&store);
        assert_eq!(p.policy.policy_type, PolicyType::Sts);
        assert_eq!(p.total_failure, 1);
        let types: Vec<&str> = p
            .failure_details
            .iter()
            .map(|d| d.result_type.as_str())
            .collect();
        assert_eq!(types, ["certificate-not-trusted", "sts-webpki-invalid"]);
    }

    /// R-RPT-11: mode none counts as no-policy-found; an unreadable cache is no session.
    #[test]
    fn mode_none_is_no_policy_found_and_an_unreadable_cache_records_nothing() {
        let none = "version: STSv1\nmode: none\nmax_age: 86400\n";
        let r = resolution(Some(none), Source::Fetched, None);
        assert_eq!(
            AppliedPolicy::from_resolution(&r).unwrap().policy_type(),
            PolicyType::NoPolicyFound
        );
        let r = resolution(
            None,
            Source::CacheUnreadable,
            Some(Error::Cache { reason: "r".into() }),
        );
        assert!(matches!(
            Session::from_resolution(day(), &r, vec![]),
            Err(crate::tlsrpt::SessionError::PolicyCannotBeTold { .. })
        ));
    }

    #[test]
    fn sessions_count_per_day_domain_and_policy() {
        let store = store();
        let other_day = day().next().unwrap();
        let sts = AppliedPolicy::sts(&domain(), &Policy::parse(ENFORCE).unwrap()).unwrap();
        let none = AppliedPolicy::no_policy_found("example.com").unwrap();
        let elsewhere = AppliedPolicy::no_policy_found("example.net").unwrap();
        for s in [
            Session::success(day(), sts.clone()),
            Session::success(day(), none.clone()),
            Session::success(day(), none),
            Session::success(other_day, sts),
            Session::success(day(), elsewhere),
        ] {
            store.record(&s).unwrap();
        }
        let report = store.day_report(day(), &domain()).unwrap().unwrap();
        let counts: Vec<(PolicyType, u64)> = report
            .policies
            .iter()
            .map(|p| (p.policy.policy_type, p.total_successful))
            .collect();
        // Ordered by policy-type string: "no-policy-found" < "sts".
        assert_eq!(
            counts,
            [(PolicyType::NoPolicyFound, 2), (PolicyType::Sts, 1)]
        );
        let pending: Vec<String> = store
            .pending()
            .unwrap()
            .iter()
            .map(|d| format!("{} {}", d.day, d.domain))
            .collect();
        assert_eq!(
            pending,
            [
                "2026-12-01 example.com",
                "2026-12-01 example.net",
                "2026-12-02 example.com"
            ]
        );
        assert!(
            store
                .day_report(day(), &Domain::new("example.org").unwrap())
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn delivery_bookkeeping_and_pruning() {
        let store = store();
        let policy = AppliedPolicy::no_policy_found("example.com").unwrap();
        store
            .record(&Session::success(day(), policy.clone()))
            .unwrap();
        store
            .record(&Session::success(day().next().unwrap(), policy))
            .unwrap();
        let next = day().end() + Duration::from_secs(3600);
        assert!(store.record_attempt(day(), &domain(), Some(next)).unwrap());
        let d = store.delivery(day(), &domain()).unwrap().unwrap();
        assert_eq!((d.attempts, d.next_attempt), (1, Some(next)));
        let other = Domain::new("example.org").unwrap();
        assert!(!store.record_attempt(day(), &other, None).unwrap());
        assert!(!store.mark_delivered(day(), &other, next).unwrap());
        assert!(store.delivery(day(), &other).unwrap().is_none());
        assert!(store.mark_delivered(day(), &domain(), next).unwrap());
        assert_eq!(
            store.pending().unwrap().len(),
            1,
            "delivered is not pending"
        );
        // Not yet past the retention: kept.
        assert_eq!(store.prune(day().end() + DEFAULT_RETENTION).unwrap(), 0);
        let later = day().end() + DEFAULT_RETENTION + Duration::from_secs(1);
        assert_eq!(store.prune(later).unwrap(), 1);
        assert!(store.day_report(day(), &domain()).unwrap().is_none());
        // Undelivered days stay, however old.
        assert_eq!(store.prune(later + MAX_RETENTION * 2).unwrap(), 0);
        assert!(
            store
                .mark_abandoned(day().next().unwrap(), &domain(), later)
                .unwrap()
        );
        assert_eq!(store.prune(later + MAX_RETENTION * 2).unwrap(), 1);
    }

    #[test]
    fn retention_is_bounded() {
        assert!(MemoryReportStore::new(Duration::from_secs(86_400)).is_err());
        assert!(MemoryReportStore::new(MAX_RETENTION + Duration::from_secs(86_400)).is_err());
        assert!(MemoryReportStore::new(MIN_RETENTION).is_ok());
    }
}
