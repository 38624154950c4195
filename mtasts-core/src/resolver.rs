//! The resolver engine: one blocking `resolve(domain)` implementing RFC 8461 §3.3 and §5.1
//! (rules §4) over a [`Store`], a [`DnsResolver`], a [`PolicyFetcher`] and a [`Clock`].

use std::collections::HashSet;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, SystemTime};

use crate::cache::{Backoff, CachedPolicy, Entry, Store};
use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::dns::{DnsAnswer, DnsResolver, HickoryDns};
use crate::domain::Domain;
use crate::error::{Error, Result, ResultType};
use crate::fetch::{HttpsFetcher, PolicyFetcher};
use crate::policy::Policy;
use crate::record::select_record;
use crate::resolution::{Resolution, Source};

/// R-FETCH-10: after a failed fetch, no new attempt for the same (domain, id) this long.
pub const FETCH_BACKOFF: Duration = Duration::from_secs(300);
/// R-CACHE-5: the shortest interval between two TXT checks of one domain.
pub const MIN_RECHECK: Duration = Duration::from_secs(60);
/// R-CACHE-5: the longest interval between two TXT checks of one domain.
pub const MAX_RECHECK: Duration = Duration::from_secs(3600);
/// After a temporary DNS failure (R-DISC-7) the TXT record is not queried again for this
/// long: lookups are answered from the cache, with the failure, so a blackholed name server
/// costs one DNS deadline per interval rather than one per lookup.
pub const DNS_FAILURE_RECHECK: Duration = Duration::from_secs(30);
/// How often a cached entry's `last_used` is written back (R-CACHE-8 needs days, not seconds).
const TOUCH_INTERVAL: Duration = Duration::from_secs(86_400);

/// Builds a [`Resolver`] with parts replaced: a different store, DNS, fetcher or clock.
#[derive(Debug)]
pub struct ResolverBuilder {
    config: Config,
    dns: Option<Arc<dyn DnsResolver>>,
    fetcher: Option<Arc<dyn PolicyFetcher>>,
    store: Option<Arc<dyn Store>>,
    clock: Option<Arc<dyn Clock>>,
}

impl ResolverBuilder {
    /// Uses `dns` instead of hickory-resolver configured from [`Config`].
    pub fn dns(mut self, dns: Arc<dyn DnsResolver>) -> ResolverBuilder {
        self.dns = Some(dns);
        self
    }

    /// Uses `fetcher` instead of the HTTPS fetcher configured from [`Config`].
    pub fn fetcher(mut self, fetcher: Arc<dyn PolicyFetcher>) -> ResolverBuilder {
        self.fetcher = Some(fetcher);
        self
    }

    /// Keeps the cache in `store` instead of the one [`Config::cache`] names.
    pub fn store(mut self, store: Arc<dyn Store>) -> ResolverBuilder {
        self.store = Some(store);
        self
    }

    /// Takes the time from `clock` instead of the system clock.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> ResolverBuilder {
        self.clock = Some(clock);
        self
    }

    /// Builds the resolver. Fails on an unusable configuration ([`Config::validate`], no
    /// readable resolv.conf, unreadable trust-root file).
    pub fn build(self) -> Result<Resolver> {
        let config = self.config;
        config.validate()?;
        let clock = self.clock.unwrap_or_else(|| Arc::new(SystemClock));
        let dns: Arc<dyn DnsResolver> = match self.dns {
            Some(dns) => dns,
            None => {
                let dns = if config.nameservers.is_empty() {
                    HickoryDns::system(config.dns_timeout)?
                } else {
                    HickoryDns::with_nameservers(&config.nameservers, config.dns_timeout)?
                };
                // Cached DNS answers age with the resolver's clock.
                Arc::new(dns.with_clock(Arc::clone(&clock)))
            }
        };
        let fetcher: Arc<dyn PolicyFetcher> = match self.fetcher {
            Some(fetcher) => fetcher,
            None => Arc::new(
                HttpsFetcher::new(
                    Arc::clone(&dns),
                    config.trust_roots.clone(),
                    config.fetch_timeout,
                )?
                .with_port_override(config.policy_port),
            ),
        };
        // A waiter gives up on a concurrent refresh after the longest it can take: a TXT
        // lookup, then a fetch (whose policy-host lookup is inside its deadline), plus slack.
        let max_wait = config.dns_timeout * 2 + config.fetch_timeout + Duration::from_secs(5);
        Ok(Resolver {
            dns,
            fetcher,
            store: match self.store {
                Some(store) => store,
                None => config.cache.open_with(config.memory_entries)?,
            },
            clock,
            recheck_interval: config.recheck_interval,
            inflight: Inflight::default(),
            max_wait,
        })
    }
}

/// Resolves MTA-STS policies: the one entry point every layer (CLI, C, Python) calls.
///
/// Thread-safe: share one `Resolver` (e.g. in an `Arc`) between all threads. Concurrent
/// lookups of the same domain wait for one refresh instead of each fetching (S-42). A
/// `Resolver` keeps working in a child process after `fork()` (S-41): it holds no threads,
/// no runtime and no pooled connections between calls.
///
/// ```rust,no_run
/// use mtasts_core::{Config, Resolver, Mode};
///
/// let resolver = Resolver::new(Config::default())?;
/// let resolution = resolver.resolve("example.com")?;
/// if let Some(policy) = resolution.policy().filter(|p| p.mode() == Mode::Enforce) {
///     // Deliver only to MX hosts the policy names.
///     let allowed = policy.matches("mail.example.com");
///     println!("mail.example.com allowed: {allowed}");
/// }
/// # Ok::<(), mtasts_core::Error>(())
/// ```
#[derive(Debug)]
pub struct Resolver {
    dns: Arc<dyn DnsResolver>,
    fetcher: Arc<dyn PolicyFetcher>,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    recheck_interval: Option<Duration>,
    inflight: Inflight,
    max_wait: Duration,
}

impl Resolver {
    /// A resolver with hickory-resolver DNS, the HTTPS fetcher and an in-memory cache, all
    /// configured from `config`.
    pub fn new(config: Config) -> Result<Resolver> {
        Resolver::builder(config).build()
    }

    /// A builder for a resolver with some parts replaced.
    pub fn builder(config: Config) -> ResolverBuilder {
        ResolverBuilder {
            config,
            dns: None,
            fetcher: None,
            store: None,
            clock: None,
        }
    }

    /// The DNS resolver this resolver uses (for MX lookups and probes that must use the same
    /// name servers).
    pub fn dns(&self) -> &Arc<dyn DnsResolver> {
        &self.dns
    }

    /// The cache this resolver uses.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Resolves the policy of `domain` (ASCII or U-labels, any case, optional trailing dot).
    ///
    /// Errors only for a domain that is not a host name ([`Error::InvalidDomain`]); every
    /// other problem is part of the [`Resolution`], because the caller must still deliver
    /// (or defer) according to it.
    pub fn resolve(&self, domain: &str) -> Result<Resolution> {
        let domain = Domain::new(domain)?;
        // The cached answer takes this domain rather than a copy of it.
        Ok(match self.answer_from_cache(&domain, self.clock.now()) {
            Some(fresh) => fresh.resolution(domain),
            None => self.resolve_uncached(&domain),
        })
    }

    /// [`Resolver::resolve`] for an already normalised domain.
    pub fn resolve_domain(&self, domain: &Domain) -> Resolution {
        match self.answer_from_cache(domain, self.clock.now()) {
            Some(fresh) => fresh.resolution(domain.clone()),
            None => self.resolve_uncached(domain),
        }
    }

    /// [`Resolver::resolve_domain`] once the cache had no current answer.
    fn resolve_uncached(&self, domain: &Domain) -> Resolution {
        // One refresh per domain at a time (S-42); the others wait, then read its result.
        let _turn = self.inflight.wait_turn(domain, self.max_wait);
        let now = self.clock.now();
        // A thread that waited finds the refresh it waited for in this process's layer: no
        // shared-store read, and the same `Arc<CachedPolicy>` as the refreshing thread.
        if let Some(fresh) = self.answer_from_cache(domain, now) {
            return fresh.resolution(domain.clone());
        }
        // Read what the shared store holds now: another process may have refreshed it.
        let loaded = self.reload(domain, now);
        if loaded.unreadable.is_none()
            && let Some(entry) = &loaded.entry
            && let Some(fresh) = self.fresh_answer(domain, entry, now)
        {
            if let Some(touched) = Resolver::touched(entry, now) {
                self.save(touched);
            }
            return fresh.resolution(domain.clone());
        }
        self.refresh(domain, loaded, now, false)
    }

    /// The answer the cache gives on its own, with no DNS lookup and no fetch: `Some` when
    /// [`Resolver::resolve_domain`] would answer from the cache at once (R-CACHE-5), `None`
    /// when it would need the network. What the policy server answers without waiting.
    pub fn resolve_from_cache(&self, domain: &Domain) -> Option<Resolution> {
        self.answer_from_cache(domain, self.clock.now())
            .map(|fresh| fresh.resolution(domain.clone()))
    }

    /// The unexpired policy the cache holds for `domain`, even when its TXT record is due for
    /// a check (RFC 8461 §5.1: a cached policy is in force until it expires), with no DNS
    /// lookup and no fetch. `None` when no such policy is cached (nothing, no policy, an
    /// expired one, or a cache that cannot be read). What a caller that cannot wait for
    /// [`Resolver::resolve_domain`] (the policy server after its answer deadline, an
    /// OpenSMTPD table) may apply meanwhile.
    pub fn resolve_cached_policy(&self, domain: &Domain) -> Option<Resolution> {
        let now = self.clock.now();
        let mut policy = None;
        // A failing read is `None` as well: nothing known to be in force.
        let _ = self.store.with_entry(domain, &mut |entry| {
            policy = with_bounds(entry, now, |entry| {
                entry.policy.clone().filter(|p| p.is_valid_at(now))
            });
        });
        let policy = policy?;
        Some(Resolution {
            domain: domain.clone(),
            source: Source::Cache,
            policy: Some(policy),
            failure: None,
            notice: None,
            domain_not_found: false,
        })
    }

    /// Re-checks and re-fetches `domain` now, even if its cached answer is current
    /// (R-CACHE-6); the one step of [`Resolver::refresh_due`].
    pub(crate) fn renew_domain(&self, domain: &Domain) -> Resolution {
        let _turn = self.inflight.wait_turn(domain, self.max_wait);
        let now = self.clock.now();
        let loaded = self.reload(domain, now);
        self.refresh(domain, loaded, now, true)
    }

    /// The current time of this resolver's clock.
    pub(crate) fn now(&self) -> SystemTime {
        self.clock.now()
    }

    /// The entry as the shared store holds it now ([`Store::reload`]), bounded relative to
    /// `now`. When the shared store cannot be read, what this process holds in memory and
    /// the failure.
    fn reload(&self, domain: &Domain, now: SystemTime) -> Loaded {
        let (entry, unreadable) = match self.store.reload(domain) {
            Ok(entry) => (entry, None),
            Err(e) => (self.store.local(domain), Some(e)),
        };
        Loaded {
            entry: entry.map(|e| Entry::clone(&e).clamped(now)),
            unreadable,
        }
    }

    fn save(&self, entry: Entry) {
        let domain = entry.domain.clone();
        if let Err(e) = self.store.put(entry) {
            log::warn!("{domain}: writing the policy cache failed: {e}");
        }
    }

    /// R-CACHE-5: within the recheck interval the entry alone is the answer.
    ///
    /// The cached entry (this process's layer first) is read in place ([`Store::with_entry`]),
    /// bounded relative to `now` (R-CACHE-1, R-CACHE-5, R-FETCH-10; see [`Entry::clamped`]).
    /// A failing read gives `None` here: the slow path ([`Resolver::reload`]) reads again and
    /// records the failure.
    fn answer_from_cache(&self, domain: &Domain, now: SystemTime) -> Option<Fresh> {
        let mut answer = None;
        let mut touched = None;
        let read = self.store.with_entry(domain, &mut |entry| {
            with_bounds(entry, now, |entry| {
                answer = self.fresh_answer(domain, entry, now);
                if answer.is_some() {
                    touched = Resolver::touched(entry, now);
                }
            });
        });
        read.ok()?;
        // Written once the store has lent the entry back (a store's reader may not write).
        if let Some(touched) = touched {
            self.save(touched);
        }
        answer
    }

    /// R-CACHE-8: the entry with `last_used` set to `now`, when it was last marked used long
    /// enough ago to be written back.
    fn touched(entry: &Entry, now: SystemTime) -> Option<Entry> {
        // `now - last_used >= TOUCH_INTERVAL` as one comparison (every cached lookup runs it).
        if now
            .checked_sub(TOUCH_INTERVAL)
            .is_none_or(|due| entry.last_used > due)
        {
            return None;
        }
        let mut touched = entry.clone();
        touched.last_used = now;
        Some(touched)
    }

    /// The answer `entry` (the entry of `domain`) gives on its own at `now`, if it is not due
    /// for a TXT check.
    ///
    /// While a backoff runs (within [`DNS_FAILURE_RECHECK`] of a temporary DNS failure, or
    /// [`FETCH_BACKOFF`] of a failed fetch) the answer carries that failure, as the lookup
    /// that failed did (R-DISC-7, R-FETCH-12: never a silent "no policy").
    fn fresh_answer(&self, domain: &Domain, entry: &Entry, now: SystemTime) -> Option<Fresh> {
        if now >= entry.next_check {
            return None;
        }
        let usable = match &entry.policy {
            Some(policy) if policy.is_valid_at(now) => true,
            Some(_) => return None, // expired (R-CACHE-1): look again
            None => false,
        };
        let failure = entry
            .backoff
            .as_ref()
            .filter(|b| now < b.until)
            .map(|b| b.failure(domain));
        let source = match (usable, &failure) {
            (true, None) => Source::Cache,
            (true, Some(_)) => Source::CacheAfterFailure,
            (false, None) => Source::NoPolicy,
            (false, Some(_)) => Source::Unavailable,
        };
        Some(Fresh {
            source,
            policy: entry.policy.clone().filter(|_| usable),
            failure,
        })
    }

    /// Checks the TXT record and fetches the policy if needed (rules §4), then updates the
    /// cache with what was learnt.
    ///
    /// With `renew`, a usable policy is fetched again even if the record id is unchanged, to
    /// extend its expiry before it runs out (R-CACHE-6).
    fn refresh(&self, domain: &Domain, loaded: Loaded, now: SystemTime, renew: bool) -> Resolution {
        let old = loaded.entry.as_ref();
        let usable = old
            .and_then(|e| e.policy.clone())
            .filter(|p| p.is_valid_at(now));
        let mut entry = Entry {
            domain: domain.clone(),
            policy: usable.clone(),
            next_check: now,
            backoff: old
                .and_then(|e| e.backoff.clone())
                .filter(|b| now < b.until),
            failures: old.map_or(0, |e| e.failures),
            last_used: now,
        };
        let (source, failure, notice) =
            self.check_and_fetch(domain, &mut entry, usable.as_ref(), now, renew);
        let fetched = matches!(source, Source::Fetched);
        let mut resolution = Resolution {
            domain: domain.clone(),
            source,
            policy: match source {
                Source::NoPolicy | Source::Unavailable => None,
                Source::Fetched => entry.policy.clone(),
                _ => usable,
            },
            failure,
            notice,
            domain_not_found: false,
        };
        resolution.domain_not_found =
            resolution.notice.as_deref() == Some(Resolution::DOMAIN_NOT_FOUND);
        if let Some(unreadable) = loaded.unreadable
            && matches!(resolution.source, Source::NoPolicy | Source::Unavailable)
            && !fetched
        {
            // R-CACHE-7, never fail open: the shared cache may hold a valid policy this
            // process cannot see (S-39 depends on it), so "no policy" cannot be told. Nothing
            // learnt here may stand as a current answer either: check again next time.
            let seen = match (&resolution.failure, &resolution.notice) {
                (Some(f), _) => format!("DNS and HTTPS gave no policy: {f}"),
                (None, Some(n)) => format!("DNS and HTTPS gave no policy: {n}"),
                (None, None) => "DNS and HTTPS gave no policy".to_string(),
            };
            log::warn!("{domain}: cannot tell whether a policy applies: {unreadable}; {seen}");
            resolution.source = Source::CacheUnreadable;
            resolution.failure = Some(unreadable);
            resolution.notice = Some(seen);
            entry.next_check = now;
        }
        self.save(entry);
        resolution
    }

    /// The TXT check and fetch of [`Resolver::refresh`]: updates `entry` with what was learnt
    /// and returns the resolution's source, failure and notice.
    fn check_and_fetch(
        &self,
        domain: &Domain,
        entry: &mut Entry,
        usable: Option<&Arc<CachedPolicy>>,
        now: SystemTime,
        renew: bool,
    ) -> (Source, Option<Error>, Option<String>) {
        // With a usable cached policy a failure falls back to it (R-FETCH-11); without one the
        // domain is treated as having no policy, and the failure reported (R-FETCH-12).
        let failed = |failure: Error| {
            let source = if usable.is_some() {
                Source::CacheAfterFailure
            } else {
                Source::Unavailable
            };
            (source, Some(failure), None)
        };

        let answer = match self.dns.txt(&domain.txt_name()) {
            Ok(answer) => answer,
            Err(e) => {
                // R-DISC-7: a DNS failure is not "no record" (S-08, S-36). It is remembered
                // for DNS_FAILURE_RECHECK, so the next lookups do not wait for DNS again.
                log::warn!("{domain}: {e}{}", result_type_note(&e));
                let until = now + DNS_FAILURE_RECHECK;
                entry.next_check = until;
                // A running fetch backoff that ends later is kept (it is reported instead).
                if entry.backoff.as_ref().is_none_or(|b| b.until <= until) {
                    entry.backoff = Some(Backoff {
                        id: Backoff::DNS_FAILURE.to_string(),
                        until,
                        result_type: e.result_type().unwrap_or(ResultType::StsPolicyFetchError),
                        reason: match &e {
                            Error::DnsTemporary { reason, .. } => reason.clone(),
                            other => other.to_string(),
                        },
                    });
                }
                return failed(e);
            }
        };
        entry.next_check = now + self.recheck_interval(answer.ttl());
        // A DNS answer ends a remembered DNS failure.
        entry.backoff = entry.backoff.take().filter(|b| !b.is_dns_failure());
        let txt_nxdomain = matches!(answer, DnsAnswer::NxDomain { .. });
        let record = match answer {
            DnsAnswer::Found { records, .. } => select_record(&records),
            DnsAnswer::NxDomain { .. } | DnsAnswer::NoData { .. } => Ok(None),
        };
        let record = match record {
            Ok(Some(record)) => record,
            outcome => {
                // R-DISC-3/4: no policy published. R-DISC-8: that does not evict an unexpired
                // cached policy (S-35, S-39).
                let problem = outcome.err().map(|e| e.to_string());
                return match usable {
                    Some(_) => (
                        Source::Cache,
                        None,
                        Some(match problem {
                            Some(p) => format!("{p}; the cached policy stays in force until it expires"),
                            None => "no STS TXT record published; the cached policy stays in force until it expires".into(),
                        }),
                    ),
                    // No policy either way (RFC 8461); but a name that does not exist at all is
                    // worth saying (a typo, or a resolver that answers NXDOMAIN for everything
                    // outside its zones): one more query, only after an NXDOMAIN.
                    None if txt_nxdomain
                        && matches!(self.dns.mx(domain.as_str()), Ok(DnsAnswer::NxDomain { .. })) =>
                    {
                        (
                            Source::NoPolicy,
                            None,
                            Some(Resolution::DOMAIN_NOT_FOUND.to_string()),
                        )
                    }
                    None => (Source::NoPolicy, None, problem),
                };
            }
        };

        // R-CACHE-2: same id, unexpired policy: no HTTPS (S-30, S-31).
        if !renew && usable.is_some_and(|p| p.id == record.id()) {
            return (Source::Cache, None, None);
        }
        // R-FETCH-10: a recent failure for this very id is not retried (S-34). While a valid
        // policy is cached, no fetch at all runs during a backoff, whatever the id: record ids
        // that keep changing (an attacker, or name servers out of step) cost one fetch per
        // backoff period, not one per lookup.
        if let Some(backoff) = entry
            .backoff
            .as_ref()
            .filter(|b| b.id == record.id() || (usable.is_some() && !b.is_dns_failure()))
        {
            let failure = backoff.failure(domain);
            entry.next_check = now;
            return failed(failure);
        }

        match self.fetch(domain) {
            Ok(policy) => {
                // R-CACHE-1, R-CACHE-3, R-CACHE-4: a successful fetch replaces the entry,
                // whatever its mode, and the policy lives max_age from now.
                log::info!(
                    "{domain}: fetched policy id {} (mode {}, max_age {})",
                    record.id(),
                    policy.mode(),
                    policy.max_age()
                );
                // The policy's tolerated oddities are logged here, once per fetch, never when
                // a process loads it from the cache.
                for warning in policy.warnings() {
                    log::warn!("{domain}: MTA-STS policy: {warning}");
                }
                entry.policy = Some(Arc::new(CachedPolicy {
                    id: record.id().to_string(),
                    expires_at: now + Duration::from_secs(u64::from(policy.max_age())),
                    policy: Arc::new(policy),
                    fetched_at: now,
                }));
                entry.backoff = None;
                entry.failures = 0;
                (Source::Fetched, None, None)
            }
            Err(e) => {
                entry.failures = entry.failures.saturating_add(1);
                if entry.failures > 1 {
                    // R-CACHE-6: repeated failures are worth the postmaster's attention.
                    log::warn!(
                        "{domain}: {e}{} ({} failures in a row)",
                        result_type_note(&e),
                        entry.failures
                    );
                } else {
                    log::warn!("{domain}: {e}{}", result_type_note(&e));
                }
                entry.backoff = Some(Backoff {
                    id: record.id().to_string(),
                    until: now + FETCH_BACKOFF,
                    result_type: e.result_type().unwrap_or(ResultType::StsPolicyFetchError),
                    reason: e.to_string(),
                });
                // Check again at the next lookup: a new record id is not held back by the
                // backoff of this one.
                entry.next_check = now;
                failed(e)
            }
        }
    }

    fn fetch(&self, domain: &Domain) -> Result<Policy> {
        let body = self.fetcher.fetch(domain)?;
        Policy::from_bytes(&body)
    }

    fn recheck_interval(&self, ttl: Option<u32>) -> Duration {
        self.recheck_interval.unwrap_or_else(|| {
            Duration::from_secs(u64::from(ttl.unwrap_or(0))).clamp(MIN_RECHECK, MAX_RECHECK)
        })
    }
}

/// The answer a cached entry gives on its own ([`Resolver::fresh_answer`]): a [`Resolution`]
/// but for its domain, which the caller hands over (the cached path copies none).
struct Fresh {
    source: Source,
    policy: Option<Arc<CachedPolicy>>,
    failure: Option<Error>,
}

impl Fresh {
    fn resolution(self, domain: Domain) -> Resolution {
        Resolution {
            domain,
            source: self.source,
            policy: self.policy,
            failure: self.failure,
            notice: None,
            domain_not_found: false,
        }
    }
}

/// What [`Resolver::reload`] read: the entry (if any), and the shared store's failure when it
/// could not be read.
struct Loaded {
    entry: Option<Entry>,
    unreadable: Option<Error>,
}

/// Domains being refreshed in this process, so concurrent lookups wait for one refresh.
///
/// Fork-safe: the set is keyed by process id, so a child forked while a parent thread was
/// refreshing does not wait for a thread that does not exist in it; and every wait has a
/// deadline, so nothing can block forever.
#[derive(Debug, Default)]
struct Inflight {
    state: Mutex<InflightState>,
    done: Condvar,
}

#[derive(Debug, Default)]
struct InflightState {
    pid: u32,
    busy: HashSet<Domain>,
}

/// A domain's turn to refresh; ends when dropped.
struct Turn<'a> {
    inflight: &'a Inflight,
    domain: Option<Domain>,
}

impl Inflight {
    fn wait_turn(&self, domain: &Domain, max_wait: Duration) -> Turn<'_> {
        let pid = std::process::id();
        let deadline = std::time::Instant::now() + max_wait;
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if state.pid != pid {
            // A fresh process, or a forked child: the parent's refreshes are not ours.
            state.pid = pid;
            state.busy.clear();
        }
        while state.busy.contains(domain) {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                // Log after releasing the lock: a log callback may call back into mtasts.
                drop(state);
                log::warn!("{domain}: a concurrent refresh is taking too long; refreshing anyway");
                return Turn {
                    inflight: self,
                    domain: None,
                };
            }
            state = self
                .done
                .wait_timeout(state, left)
                .map(|(s, _)| s)
                .unwrap_or_else(|p| p.into_inner().0);
        }
        state.busy.insert(domain.clone());
        Turn {
            inflight: self,
            domain: Some(domain.clone()),
        }
    }
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        if let Some(domain) = self.domain.take() {
            let mut state = self
                .inflight
                .state
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            state.busy.remove(&domain);
            drop(state);
            self.inflight.done.notify_all();
        }
    }
}

/// `f` applied to `entry` bounded relative to `now` (R-CACHE-1, R-CACHE-5, R-FETCH-10; see
/// [`Entry::clamped`]): the entry itself when it is within bounds (every one we write: the
/// cached path copies nothing), a clamped copy otherwise.
fn with_bounds<R>(entry: &Entry, now: SystemTime, f: impl FnOnce(&Entry) -> R) -> R {
    if entry.within_bounds(now) {
        f(entry)
    } else {
        f(&Entry::clone(entry).clamped(now))
    }
}

/// `; result type <type>` for a log line about `e` (RFC 8460 §4.3), or nothing.
fn result_type_note(e: &Error) -> String {
    e.result_type()
        .map(|t| format!("; result type {}", t.as_str()))
        .unwrap_or_default()
}
