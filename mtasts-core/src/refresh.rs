//! Proactive refresh and housekeeping of the cache (R-CACHE-6, R-CACHE-8).
//!
//! MTA-STS resists downgrades only while a policy is cached, so policies are fetched again
//! before they expire. mtasts runs no background threads inside an MTA: a caller (the
//! `mtasts refresh` command from cron or a systemd timer, or a daemon) calls
//! [`Resolver::refresh_due`].

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::ops::ControlFlow;
use std::time::Duration;

use crate::cache::UNUSED_LIMIT;
use crate::domain::Domain;
use crate::error::Error;
use crate::resolution::Source;
use crate::resolver::Resolver;

/// The longest [`RefreshOptions::jitter`] accepted (a run never sleeps for longer).
pub const MAX_JITTER: Duration = Duration::from_secs(86_400);

/// A policy expiring within this long is due for a refresh.
pub const REFRESH_WINDOW: Duration = Duration::from_secs(86_400);

/// How [`Resolver::refresh_due`] runs.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RefreshOptions {
    /// At most this many domains are refreshed at once (default 4; 0 counts as 1).
    pub concurrency: usize,
    /// Wait a random time up to this long before starting, so the hosts of a fleet whose
    /// timers fire together do not all fetch at the same moment (default none; at most
    /// [`MAX_JITTER`]).
    pub jitter: Duration,
    /// Refresh every cached policy, due or not.
    pub all: bool,
    /// Drop entries unused for [`UNUSED_LIMIT`] (180 days, R-CACHE-8) (default true).
    pub purge_unused: bool,
}

impl Default for RefreshOptions {
    fn default() -> RefreshOptions {
        RefreshOptions {
            concurrency: 4,
            jitter: Duration::ZERO,
            all: false,
            purge_unused: true,
        }
    }
}

/// What one [`Resolver::refresh_due`] run did.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct RefreshReport {
    /// Cached policies looked at.
    pub examined: usize,
    /// Policies fetched again (their expiry moved forward).
    pub refreshed: Vec<Domain>,
    /// Domains whose refresh failed, with the failure; their cached policy stays in force
    /// while it is valid.
    pub failed: Vec<(Domain, Error)>,
    /// Domains whose policy is no longer published (no STS record); the cached policy stays
    /// in force until it expires (R-DISC-8).
    pub unpublished: Vec<Domain>,
    /// Entries dropped for being unused for 180 days.
    pub purged: usize,
}

impl Resolver {
    /// Refreshes every cached policy that is due: fetched more than half its `max_age` ago,
    /// or expiring within a day (R-CACHE-6). Each is re-checked in DNS and fetched again even
    /// if its id is unchanged, so its expiry moves forward. Failures are reported, logged
    /// (repeated failures with their count), and never remove a valid policy.
    ///
    /// Blocking; runs at most `options.concurrency` refreshes at once, each within the
    /// resolver's DNS and fetch deadlines.
    pub fn refresh_due(&self, options: &RefreshOptions) -> crate::Result<RefreshReport> {
        self.refresh_due_with_progress(options, |_| {})
    }

    /// [`Resolver::refresh_due`], telling `progress` how far it is after each domain (and
    /// once before the first, with nothing done): what `mtasts refresh` shows on a terminal.
    pub fn refresh_due_with_progress(
        &self,
        options: &RefreshOptions,
        mut progress: impl FnMut(RefreshProgress),
    ) -> crate::Result<RefreshReport> {
        if options.jitter > MAX_JITTER {
            return Err(Error::Config {
                reason: format!(
                    "the refresh jitter {} s is out of range: at most {} s",
                    options.jitter.as_secs_f64(),
                    MAX_JITTER.as_secs()
                ),
            });
        }
        if !options.jitter.is_zero() {
            let nanos = u64::try_from(options.jitter.as_nanos()).unwrap_or(u64::MAX);
            std::thread::sleep(Duration::from_nanos(random() % nanos.max(1)));
        }
        let now = self.now();
        let mut report = RefreshReport::default();
        if options.purge_unused {
            report.purged = self.store().purge_unused(now - UNUSED_LIMIT)?;
        }
        let mut due = Vec::new();
        for entry in self.store().entries()? {
            let Some(cached) = &entry.policy else {
                continue;
            };
            report.examined += 1;
            let max_age = Duration::from_secs(u64::from(cached.policy.max_age()));
            let age = now.duration_since(cached.fetched_at).unwrap_or_default();
            let left = cached.expires_at.duration_since(now).unwrap_or_default();
            if options.all || age >= max_age / 2 || left <= REFRESH_WINDOW {
                due.push(entry.domain.clone());
            }
        }
        due.sort();
        let total = due.len();
        progress(RefreshProgress { done: 0, total });
        crate::batch::run(
            due.into_iter(),
            options.concurrency,
            |domain| self.renew_domain(domain),
            |index, domain, resolution| {
                match (resolution.source(), resolution.failure()) {
                    (_, Some(failure)) => report.failed.push((domain, failure.clone())),
                    (Source::Fetched, None) => report.refreshed.push(domain),
                    _ => report.unpublished.push(domain),
                }
                progress(RefreshProgress {
                    done: index + 1,
                    total,
                });
                ControlFlow::Continue(())
            },
        );
        Ok(report)
    }
}

/// How far a [`Resolver::refresh_due_with_progress`] run is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RefreshProgress {
    /// Domains refreshed so far (successfully or not).
    pub done: usize,
    /// Domains due in this run.
    pub total: usize,
}

/// A random number from the standard library's per-process random hasher keys.
fn random() -> u64 {
    RandomState::new().hash_one(std::time::SystemTime::now())
}
