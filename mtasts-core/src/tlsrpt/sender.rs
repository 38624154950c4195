//! Sending the daily reports (R-RPT-7 to R-RPT-10): which (day, domain) is due, its report
//! and id, the domain's `_smtp._tls` record (cached as the STS record is), the delivery to
//! its `rua` URIs, and the bookkeeping of attempts, back-off and abandonment in the store.
//!
//! # Schedule (R-RPT-10)
//! A day's report is due once the day has ended, at a per-domain offset into the next day:
//! [`send_offset`] of the domain within `tlsrpt.send_spread` (a hash of the domain name, the
//! same every day, so the sends of a host and a fleet spread out and each domain's receiver
//! sees the same hour every day). `mtasts tlsrpt send`, run every few minutes from a timer,
//! sends what is due; `--now` sends every ended day at once.
//!
//! # Retries (R-RPT-10)
//! A report is delivered as soon as one `rua` URI accepted it, and never sent again. When no
//! URI accepted it, the attempt is recorded and the next one waits [`retry_delay`] (5 min,
//! doubling, at most 4 h); an attempt that fails `tlsrpt.retry_for` (at least 24 h) after the
//! due time abandons the report, with a log line. A temporary DNS failure looking up the
//! record is a failed attempt too, never "no record" (R-RPT-1).
//!
//! # No record (S-84)
//! A domain without a usable TLS-RPT record gets nothing: its day is marked abandoned (with
//! an info log line), and nothing is sent.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::deliver::{post_report, sendmail, smtp_submit};
use super::gzip::{gzip, report_file_name};
use super::mail::ReportMail;
use super::record::{
    ReportRecordAnswer, ReportUri, TlsRptRecord, parse_report_record, select_report_record,
};
use super::report::Report;
use super::session::UtcDay;
use super::settings::{MailTransport, SendSettings, is_plain_address};
use super::store::{CachedReportRecord, ReportDelivery, ReportStore};
use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::dns::{DnsAnswer, DnsResolver};
use crate::domain::Domain;
use crate::error::{Error, Result};
use crate::fetch::HttpsClient;
use crate::resolver::{MAX_RECHECK, MIN_RECHECK};

/// The first retry waits this long; each later one twice the one before ([`retry_delay`]).
pub const FIRST_RETRY: Duration = Duration::from_secs(300);
/// The longest wait between two attempts ([`retry_delay`]).
pub const MAX_RETRY_DELAY: Duration = Duration::from_secs(4 * 3600);

/// 64-bit FNV-1a: a stable hash (the same in every process, version and host), for the
/// send offsets and report ids. Not a security measure.
fn fnv1a(parts: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            h ^= u64::from(b'!');
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        for b in part.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

/// R-RPT-10: how far into the day after the reported day `domain`'s report is due, within
/// `spread` (whole seconds; zero for a zero spread). Deterministic: the same domain gets the
/// same offset every day and on every host.
pub fn send_offset(domain: &Domain, spread: Duration) -> Duration {
    let secs = spread.as_secs();
    if secs == 0 {
        return Duration::ZERO;
    }
    Duration::from_secs(fnv1a(&["send-offset", domain.as_str()]) % secs)
}

/// R-RPT-10: the wait after the `attempts`-th failed attempt: 5 minutes, doubling each time,
/// at most 4 hours ([`FIRST_RETRY`], [`MAX_RETRY_DELAY`]).
pub fn retry_delay(attempts: u32) -> Duration {
    let doublings = attempts.saturating_sub(1).min(16);
    (FIRST_RETRY * 2u32.pow(doublings)).min(MAX_RETRY_DELAY)
}

/// The report id of (`day`, `domain`) from `submitter`: the day's digits and 16 hex digits
/// of a hash of the domain and submitter, e.g. `20261201` + `3f0c9e5a1b2d4c6e`. Letters and
/// digits only, so the R-RPT-7 file name keeps it whole (`unique-id = 1*(ALPHA / DIGIT)`);
/// deterministic, so every retry and every `rua` URI get the same id and a receiver can tell
/// a repeat.
pub fn report_id(day: UtcDay, domain: &Domain, submitter: &Domain) -> String {
    format!(
        "{}{:016x}",
        day.to_string().replace('-', ""),
        fnv1a(&[domain.as_str(), submitter.as_str()])
    )
}

/// A report ready to send: what `mtasts tlsrpt show` prints and `send` sends.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct PreparedReport {
    /// The UTC day.
    pub day: UtcDay,
    /// The policy domain.
    pub domain: Domain,
    /// The report id ([`report_id`]).
    pub report_id: String,
    /// The report (R-RPT-6).
    pub report: Report,
    /// The report's JSON text exactly as compressed and sent.
    pub json: String,
    /// [`PreparedReport::json`] gzip-compressed (R-RPT-7): the POST body and the attachment.
    pub gzip: Vec<u8>,
    /// The R-RPT-7 file name.
    pub file_name: String,
}

/// Why one `rua` URI did not take the report.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct UriFailure {
    /// The URI (or `_smtp._tls.<domain>` for a failed record lookup).
    pub uri: String,
    /// Why, in one line.
    pub reason: String,
    /// True when retrying cannot help (the report is over the URI's size limit, the address
    /// is unusable).
    pub permanent: bool,
}

/// What [`ReportSender::send_due`] did with one (day, domain).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SendAction {
    /// Not yet due: the day has not ended, or its send time or next attempt is later.
    NotDue {
        /// When it will be.
        at: SystemTime,
    },
    /// One URI accepted the report (R-RPT-10): delivered, never sent again.
    Delivered {
        /// The URI that accepted it.
        uri: String,
    },
    /// No URI accepted it; it is retried at `next_attempt`.
    Retry {
        /// The next attempt.
        next_attempt: SystemTime,
    },
    /// Given up: no TLS-RPT record (S-84), no URI can ever take it, or retries used up.
    Abandoned {
        /// Why.
        reason: String,
    },
    /// `--dry-run`: it would be sent to these URIs, in this order, until one accepts it.
    WouldSend {
        /// The URIs.
        uris: Vec<String>,
    },
}

/// One (day, domain) handled by [`ReportSender::send_due`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SendOutcome {
    /// The UTC day.
    pub day: UtcDay,
    /// The policy domain.
    pub domain: Domain,
    /// The report id, when a report was made.
    pub report_id: Option<String>,
    /// What was done.
    pub action: SendAction,
    /// The URIs that did not take it, in the order tried.
    pub failures: Vec<UriFailure>,
    /// True for a dry run: nothing was sent and nothing written.
    pub dry_run: bool,
}

/// How [`ReportSender::send_due`] runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SendOptions {
    /// Send every ended day now, whatever its send time or back-off.
    pub now: bool,
    /// Send nothing and write nothing; say what would be done.
    pub dry_run: bool,
}

impl SendOptions {
    /// The options: `now` and `dry_run` as [`SendOptions`]' fields say.
    pub fn new(now: bool, dry_run: bool) -> SendOptions {
        SendOptions { now, dry_run }
    }
}

/// Where one (day, domain)'s report stands ([`DayStatus::state`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DeliveryState {
    /// The day has not ended: its counts still grow.
    Open,
    /// The day has ended; its send time (R-RPT-10's spread) has not come.
    Scheduled,
    /// Due now: the next `send` sends it.
    Due,
    /// Failed attempts; the next one is at `next_attempt`.
    Retrying,
    /// One `rua` URI accepted it.
    Delivered,
    /// Given up (no TLS-RPT record, or retries used up).
    Abandoned,
}

impl DeliveryState {
    /// The stable lowercase name: `open`, `scheduled`, `due`, `retrying`, `delivered`,
    /// `abandoned`.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Open => "open",
            DeliveryState::Scheduled => "scheduled",
            DeliveryState::Due => "due",
            DeliveryState::Retrying => "retrying",
            DeliveryState::Delivered => "delivered",
            DeliveryState::Abandoned => "abandoned",
        }
    }
}

/// One (day, domain) of the store with its counts and where its report stands
/// (`mtasts tlsrpt list`).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct DayStatus {
    /// The bookkeeping.
    pub delivery: ReportDelivery,
    /// Successful sessions counted.
    pub successful: u64,
    /// Failed sessions counted.
    pub failed: u64,
    /// When the report is (or was) due ([`ReportSender::due_at`]).
    pub due_at: SystemTime,
    /// Where it stands.
    pub state: DeliveryState,
}

/// Sends the daily reports from a [`ReportStore`] (see the module documentation).
///
/// ```rust,no_run
/// use std::sync::Arc;
/// use mtasts_core::{Config, ReportSender, Reporter, Resolver, SendOptions, TlsRptSettings};
///
/// let config = Config::from_file("/etc/mtasts/mtasts.conf")?;
/// let mut settings = TlsRptSettings::default();
/// settings.load_file("/etc/mtasts/mtasts.conf")?;
/// let reporter = Reporter::open(&config, &settings)?;
/// let resolver = Resolver::new(config.clone())?;
/// let sender = ReportSender::new(
///     Arc::clone(reporter.store()),
///     Arc::clone(resolver.dns()),
///     &config,
///     settings.sending()?,
/// )?;
/// for outcome in sender.send_due(SendOptions::default())? {
///     println!("{} {}: {:?}", outcome.day, outcome.domain, outcome.action);
/// }
/// # Ok::<(), mtasts_core::Error>(())
/// ```
#[derive(Debug)]
pub struct ReportSender {
    store: Arc<dyn ReportStore>,
    dns: Arc<dyn DnsResolver>,
    https: HttpsClient,
    settings: SendSettings,
    clock: Arc<dyn Clock>,
    recheck_interval: Option<Duration>,
    deadline: Duration,
}

impl ReportSender {
    /// A sender reading `store`, looking records and hosts up through `dns`, with the
    /// resolver's trust roots, deadline (`fetch_timeout`, for every delivery: the POST, the
    /// sendmail command, the SMTP conversation) and recheck interval from `config`.
    ///
    /// # Errors
    /// [`Error::Config`] for unreadable trust roots or a `mail_from` that is not a plain
    /// address.
    pub fn new(
        store: Arc<dyn ReportStore>,
        dns: Arc<dyn DnsResolver>,
        config: &Config,
        settings: SendSettings,
    ) -> Result<ReportSender> {
        config.validate()?;
        if !is_plain_address(&settings.mail_from) {
            return Err(Error::Config {
                reason: format!(
                    "tlsrpt.mail_from {:?} is not a plain address (local@domain)",
                    settings.mail_from
                ),
            });
        }
        let https = HttpsClient::new(
            Arc::clone(&dns),
            config.trust_roots.clone(),
            config.fetch_timeout,
        )?;
        Ok(ReportSender {
            store,
            dns,
            https,
            settings,
            clock: Arc::new(SystemClock),
            recheck_interval: config.recheck_interval,
            deadline: config.fetch_timeout,
        })
    }

    /// The sender a settings file describes: the report store where `config.cache` keeps
    /// the policy cache ([`Reporter::open`](crate::Reporter::open)), DNS through
    /// `config.nameservers` (or the system's resolv.conf), and `settings`' sending keys
    /// ([`TlsRptSettings::sending`](crate::TlsRptSettings::sending)). What `mtasts tlsrpt
    /// send`, `list` and `show` use.
    ///
    /// # Errors
    /// [`Error::Config`] naming what to configure (the sending keys, a shared cache), as
    /// [`TlsRptSettings::sending`](crate::TlsRptSettings::sending),
    /// [`Reporter::open`](crate::Reporter::open) and [`ReportSender::new`];
    /// [`Error::ReportStore`] when the store cannot be opened.
    pub fn open(config: &Config, settings: &crate::TlsRptSettings) -> Result<ReportSender> {
        let sending = settings.sending()?;
        config.validate()?;
        let reporter = crate::Reporter::open(config, settings)?;
        let dns: Arc<dyn DnsResolver> = Arc::new(if config.nameservers.is_empty() {
            crate::HickoryDns::system(config.dns_timeout)?
        } else {
            crate::HickoryDns::with_nameservers(&config.nameservers, config.dns_timeout)?
        });
        ReportSender::new(Arc::clone(reporter.store()), dns, config, sending)
    }

    /// The same sender taking the time from `clock` (tests move it to the next day).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> ReportSender {
        self.clock = clock;
        self
    }

    /// The settings in use.
    pub fn settings(&self) -> &SendSettings {
        &self.settings
    }

    /// When the report of `day` for `domain` is due (R-RPT-10): the start of the next day
    /// plus [`send_offset`].
    pub fn due_at(&self, day: UtcDay, domain: &Domain) -> SystemTime {
        day.end() + Duration::from_secs(1) + send_offset(domain, self.settings.send_spread)
    }

    /// The report of `day` for `domain` as it will be sent; `None` when the store has no
    /// counts for them.
    ///
    /// # Errors
    /// [`Error::ReportStore`] when the store cannot be read.
    pub fn prepare(&self, day: UtcDay, domain: &Domain) -> Result<Option<PreparedReport>> {
        let Some(counts) = self.store.day_report(day, domain)? else {
            return Ok(None);
        };
        let id = report_id(day, domain, &self.settings.submitter);
        let report = counts.to_report(
            &self.settings.organization_name,
            &self.settings.contact_info,
            &id,
        );
        let json = report.to_json().to_string();
        let gzip = gzip(json.as_bytes());
        let secs = |t: SystemTime| t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let file_name = report_file_name(
            self.settings.submitter.as_str(),
            domain.as_str(),
            secs(day.start()),
            secs(day.end()),
            &id,
        );
        Ok(Some(PreparedReport {
            day,
            domain: domain.clone(),
            report_id: id,
            report,
            json,
            gzip,
            file_name,
        }))
    }

    /// Every (day, domain) of the store, with its counts and delivery state, by day and
    /// domain.
    ///
    /// # Errors
    /// [`Error::ReportStore`] when the store cannot be read.
    pub fn list(&self) -> Result<Vec<DayStatus>> {
        let now = self.clock.now();
        let mut out = Vec::new();
        for delivery in self.store.list_days()? {
            let (mut successful, mut failed) = (0, 0);
            if let Some(report) = self.store.day_report(delivery.day, &delivery.domain)? {
                for p in &report.policies {
                    successful += p.total_successful;
                    failed += p.total_failure;
                }
            }
            let due_at = self.due_at(delivery.day, &delivery.domain);
            let state = if delivery.delivered_at.is_some() {
                DeliveryState::Delivered
            } else if delivery.abandoned_at.is_some() {
                DeliveryState::Abandoned
            } else if now <= delivery.day.end() {
                DeliveryState::Open
            } else if delivery.attempts > 0 {
                if delivery.next_attempt.is_some_and(|t| t > now) {
                    DeliveryState::Retrying
                } else {
                    DeliveryState::Due
                }
            } else if now < due_at {
                DeliveryState::Scheduled
            } else {
                DeliveryState::Due
            };
            out.push(DayStatus {
                delivery,
                successful,
                failed,
                due_at,
                state,
            });
        }
        Ok(out)
    }

    /// The TLS-RPT record of `domain` (R-RPT-1), from the store's cache while it is fresh,
    /// otherwise from DNS (and then cached, unless `dry_run`): the same rules as the STS
    /// record's (R-CACHE-5): queried again after the answer's TTL kept within 60 s to 3600 s,
    /// or the `recheck_interval` setting. A cached answer that claims to be fresh for longer
    /// than that is not believed.
    ///
    /// # Errors
    /// [`Error::DnsTemporary`] for SERVFAIL, REFUSED or a timeout: never "no record"
    /// (R-RPT-1), and nothing is cached; [`Error::ReportStore`] when the cache cannot be read.
    pub fn report_record(&self, domain: &Domain, dry_run: bool) -> Result<ReportRecordAnswer> {
        let now = self.clock.now();
        if let Some(cached) = self.store.report_record(domain)? {
            let longest = self
                .recheck_interval
                .unwrap_or(MAX_RECHECK)
                .max(MAX_RECHECK);
            if now < cached.next_check && cached.next_check <= now + longest {
                return Ok(match &cached.record {
                    Some(text) => match parse_report_record(text) {
                        Ok(record) => ReportRecordAnswer::Found(record),
                        Err(why) => ReportRecordAnswer::NoReports {
                            reason: Some(format!("invalid TLS-RPT record: {why}")),
                            ttl: None,
                        },
                    },
                    None => ReportRecordAnswer::NoReports {
                        reason: cached.reason.clone(),
                        ttl: None,
                    },
                });
            }
        }
        let name = format!("_smtp._tls.{}", domain.as_str());
        let answer = self.dns.txt(&name)?;
        let ttl = answer.ttl();
        let selected = match answer {
            DnsAnswer::Found { records, ttl } => select_report_record(&records, Some(ttl)),
            DnsAnswer::NxDomain { ttl } | DnsAnswer::NoData { ttl } => {
                ReportRecordAnswer::NoReports { reason: None, ttl }
            }
        };
        if !dry_run {
            let interval = self.recheck_interval.unwrap_or_else(|| {
                Duration::from_secs(u64::from(ttl.unwrap_or(0))).clamp(MIN_RECHECK, MAX_RECHECK)
            });
            let (record, reason) = match &selected {
                ReportRecordAnswer::Found(r) => (Some(r.text.clone()), None),
                ReportRecordAnswer::NoReports { reason, .. } => (None, reason.clone()),
            };
            let cached = CachedReportRecord {
                domain: domain.clone(),
                record,
                reason,
                checked_at: now,
                next_check: now + interval,
            };
            if let Err(e) = self.store.put_report_record(&cached) {
                log::warn!("{domain}: caching the TLS-RPT record failed: {e}");
            }
        }
        Ok(selected)
    }

    /// Sends every report that is due (see the module documentation), one (day, domain)
    /// after the other, and returns what was done with each pending one.
    ///
    /// # Errors
    /// [`Error::ReportStore`] when the store cannot be read or the bookkeeping written (what
    /// was already done is done; a report accepted but not marked delivered may be sent once
    /// more by the next run, with the same report id).
    pub fn send_due(&self, options: SendOptions) -> Result<Vec<SendOutcome>> {
        let mut outcomes = Vec::new();
        for delivery in self.store.pending()? {
            outcomes.push(self.send_one(&delivery, options)?);
        }
        Ok(outcomes)
    }

    /// [`ReportSender::send_due`] for one pending (day, domain).
    ///
    /// # Errors
    /// As [`ReportSender::send_due`].
    pub fn send_one(&self, delivery: &ReportDelivery, options: SendOptions) -> Result<SendOutcome> {
        let now = self.clock.now();
        let (day, domain) = (delivery.day, &delivery.domain);
        let due = self.due_at(day, domain);
        let mut outcome = SendOutcome {
            day,
            domain: domain.clone(),
            report_id: None,
            action: SendAction::NotDue { at: due },
            failures: Vec::new(),
            dry_run: options.dry_run,
        };
        if delivery.is_done() {
            return Ok(outcome);
        }
        // The day must be over, whatever `--now` says: its counts are still growing.
        let ended = day.end() + Duration::from_secs(1);
        if now < ended {
            outcome.action = SendAction::NotDue { at: due };
            return Ok(outcome);
        }
        if !options.now {
            let at = delivery.next_attempt.map_or(due, |next| next.max(due));
            if now < at {
                outcome.action = SendAction::NotDue { at };
                return Ok(outcome);
            }
        }
        let Some(prepared) = self.prepare(day, domain)? else {
            return Ok(outcome);
        };
        outcome.report_id = Some(prepared.report_id.clone());
        let record = match self.report_record(domain, options.dry_run) {
            Ok(ReportRecordAnswer::Found(record)) => record,
            Ok(ReportRecordAnswer::NoReports { reason, .. }) => {
                // S-84, R-RPT-10: nothing is sent for a domain without a TLS-RPT record.
                let reason = match reason {
                    Some(why) => format!("no usable TLS-RPT record: {why}"),
                    None => "no TLS-RPT record".to_string(),
                };
                return self.abandon(outcome, reason);
            }
            // R-RPT-1: a temporary failure is never "no record": try again later.
            Err(e @ Error::DnsTemporary { .. }) => {
                outcome.failures.push(UriFailure {
                    uri: format!("_smtp._tls.{domain}"),
                    reason: e.to_string(),
                    permanent: false,
                });
                return self.failed(outcome, delivery, due);
            }
            Err(e) => return Err(e),
        };
        if options.dry_run {
            outcome.action = SendAction::WouldSend {
                uris: record.rua.iter().map(ToString::to_string).collect(),
            };
            return Ok(outcome);
        }
        match self.deliver(&prepared, &record, &mut outcome.failures) {
            Some(uri) => {
                // R-RPT-10: delivered once one URI accepted it; marked at once, so no later
                // run sends it again.
                self.store.mark_delivered(day, domain, self.clock.now())?;
                log::info!(
                    "{domain} {day}: report {} delivered to {uri}",
                    prepared.report_id
                );
                outcome.action = SendAction::Delivered { uri };
                Ok(outcome)
            }
            None if outcome.failures.iter().all(|f| f.permanent) => {
                let reason = format!(
                    "no rua URI can take the report: {}",
                    describe(&outcome.failures)
                );
                self.abandon(outcome, reason)
            }
            None => self.failed(outcome, delivery, due),
        }
    }

    /// Tries the record's URIs in order until one accepts the report; its URI, or `None`
    /// with every failure in `failures`.
    fn deliver(
        &self,
        prepared: &PreparedReport,
        record: &TlsRptRecord,
        failures: &mut Vec<UriFailure>,
    ) -> Option<String> {
        for uri in &record.rua {
            let shown = uri.to_string();
            let result = match uri {
                ReportUri::Https { url } => {
                    post_report(&self.https, url, &prepared.gzip).map_err(|reason| (reason, false))
                }
                ReportUri::Mailto { address, max_size } => self.mail(prepared, address, *max_size),
            };
            match result {
                Ok(()) => return Some(shown),
                Err((reason, permanent)) => {
                    log::warn!(
                        "{} {}: report {} not taken by {shown}: {reason}",
                        prepared.domain,
                        prepared.day,
                        prepared.report_id
                    );
                    failures.push(UriFailure {
                        uri: shown,
                        reason,
                        permanent,
                    });
                }
            }
        }
        None
    }

    /// R-RPT-9: the report mail to `address`, unless it is larger than `max_size`
    /// (the whole message counts); `Err((reason, permanent))`.
    fn mail(
        &self,
        prepared: &PreparedReport,
        address: &str,
        max_size: Option<u64>,
    ) -> std::result::Result<(), (String, bool)> {
        // The address comes from DNS: only a plain one goes into a header or SMTP command.
        if !is_plain_address(address) {
            return Err((format!("unusable address {address:?}"), true));
        }
        let day = prepared.day.to_string();
        let message = ReportMail {
            from: &self.settings.mail_from,
            to: address,
            domain: &prepared.domain,
            submitter: &self.settings.submitter,
            report_id: &prepared.report_id,
            organization: &self.settings.organization_name,
            file_name: &prepared.file_name,
            gzip: &prepared.gzip,
            date: self.clock.now(),
            day: &day,
        }
        .to_bytes();
        if let Some(limit) = max_size.filter(|&limit| message.len() as u64 > limit) {
            return Err((
                format!(
                    "the report mail is {} bytes, over the URI's limit of {limit}",
                    message.len()
                ),
                true,
            ));
        }
        let from = &self.settings.mail_from;
        match &self.settings.transport {
            MailTransport::Sendmail(command) => {
                sendmail(command, from, address, &message, self.deadline)
            }
            MailTransport::SmtpRelay { host, port } => smtp_submit(
                &self.dns,
                (host, *port),
                self.settings.submitter.as_str(),
                from,
                address,
                &message,
                self.deadline,
            ),
        }
        .map_err(|reason| (reason, false))
    }

    /// Records a failed attempt: retried after [`retry_delay`], or abandoned once
    /// `retry_for` has passed since the due time (R-RPT-10).
    fn failed(
        &self,
        mut outcome: SendOutcome,
        delivery: &ReportDelivery,
        due: SystemTime,
    ) -> Result<SendOutcome> {
        let now = self.clock.now();
        let attempts = delivery.attempts.saturating_add(1);
        if now >= due + self.settings.retry_for {
            let reason = format!(
                "not delivered after {attempts} attempts over {} h: {}",
                self.settings.retry_for.as_secs() / 3600,
                describe(&outcome.failures)
            );
            if !outcome.dry_run {
                self.store
                    .record_attempt(outcome.day, &outcome.domain, None)?;
            }
            return self.abandon(outcome, reason);
        }
        let next_attempt = now + retry_delay(attempts);
        if !outcome.dry_run {
            self.store
                .record_attempt(outcome.day, &outcome.domain, Some(next_attempt))?;
        }
        outcome.action = SendAction::Retry { next_attempt };
        Ok(outcome)
    }

    fn abandon(&self, mut outcome: SendOutcome, reason: String) -> Result<SendOutcome> {
        if !outcome.dry_run {
            self.store
                .mark_abandoned(outcome.day, &outcome.domain, self.clock.now())?;
            log::warn!(
                "{} {}: report abandoned: {reason}",
                outcome.domain,
                outcome.day
            );
        }
        outcome.action = SendAction::Abandoned { reason };
        Ok(outcome)
    }
}

/// The failures in one line: `uri: reason; uri: reason`.
fn describe(failures: &[UriFailure]) -> String {
    failures
        .iter()
        .map(|f| format!("{}: {}", f.uri, f.reason))
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_are_deterministic_and_within_the_spread() {
        let spread = Duration::from_secs(4 * 3600);
        let mut seen = std::collections::BTreeSet::new();
        for i in 0..50 {
            let d = Domain::new(&format!("d{i}.example")).unwrap();
            let offset = send_offset(&d, spread);
            assert!(offset < spread);
            assert_eq!(offset, send_offset(&d, spread), "deterministic");
            seen.insert(offset.as_secs() / 600);
        }
        assert!(seen.len() > 10, "spread out: {seen:?}");
        let d = Domain::new("example.com").unwrap();
        assert_eq!(send_offset(&d, Duration::ZERO), Duration::ZERO);
    }

    #[test]
    fn retries_grow_and_cover_a_day() {
        let delays: Vec<u64> = (1..=8).map(|n| retry_delay(n).as_secs() / 60).collect();
        assert_eq!(delays, [5, 10, 20, 40, 80, 160, 240, 240]);
        assert_eq!(retry_delay(0), FIRST_RETRY);
        assert_eq!(retry_delay(u32::MAX), MAX_RETRY_DELAY);
    }

    #[test]
    fn report_ids_are_alphanumeric_and_deterministic() {
        let day: UtcDay = "2026-12-01".parse().unwrap();
        let d = Domain::new("example.com").unwrap();
        let s = Domain::new("mail.sender.example").unwrap();
        let id = report_id(day, &d, &s);
        assert_eq!(id.len(), 24);
        assert!(id.starts_with("20261201"));
        assert!(id.bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_eq!(id, report_id(day, &d, &s));
        assert_ne!(id, report_id(day, &Domain::new("example.net").unwrap(), &s));
        assert_ne!(
            id,
            report_id(day, &d, &Domain::new("other.example").unwrap())
        );
        assert_ne!(id, report_id(day.next().unwrap(), &d, &s));
    }
}
