//! One JSON view per concept, defined once (issue 11): every face prints these — the
//! `mtasts` command's `--json`, Python's `to_dict()` and `python -m mtasts`, and the C ABI's
//! `mtasts_*_json()`. The schemas are documented in `docs/json.md`.
//!
//! Times are RFC 3339 UTC strings (`2026-12-01T21:00:00Z`), enums their stable lowercase
//! names, absent values `null`.

use serde::Serialize;

use crate::cache::Entry;
use crate::clock::rfc3339;
use crate::error::Error;
use crate::policy::{CachedPolicy, Policy};
use crate::refresh::RefreshReport;
use crate::resolution::Resolution;

/// The version of the schemas in `docs/json.md`. It grows when a field is removed, renamed
/// or changes meaning; adding a field does not change it.
pub const JSON_VERSION: u32 = 1;

/// A failure: its kind (`dns-temporary`, `policy-fetch`, `cache`, ...), RFC 8460 result type
/// and message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FailureView {
    /// [`Error::kind`].
    pub kind: &'static str,
    /// [`Error::result_type`], e.g. `sts-policy-fetch-error`.
    pub result_type: Option<&'static str>,
    /// The message.
    pub reason: String,
}

impl FailureView {
    /// The view of `e`.
    pub fn new(e: &Error) -> FailureView {
        FailureView {
            kind: e.kind(),
            result_type: e.result_type().map(|t| t.as_str()),
            reason: e.to_string(),
        }
    }
}

/// A policy: its record id and times when it was fetched, its fields and raw text.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PolicyView {
    /// The TXT record id it was fetched under (`null` for a policy only parsed).
    pub id: Option<String>,
    /// `enforce`, `testing` or `none`.
    pub mode: &'static str,
    /// `max_age` in seconds (clamped, R-POL-6).
    pub max_age: u32,
    /// The usable `mx` patterns, in policy order.
    pub mx: Vec<String>,
    /// When it was fetched (`null` for a policy only parsed).
    pub fetched_at: Option<String>,
    /// When it expires (R-CACHE-1; `null` for a policy only parsed).
    pub expires_at: Option<String>,
    /// The policy file as served (R-POL-8).
    pub text: String,
}

impl PolicyView {
    /// The view of a fetched (or cached) policy.
    pub fn cached(c: &CachedPolicy) -> PolicyView {
        PolicyView {
            id: Some(c.id.clone()),
            fetched_at: Some(rfc3339(c.fetched_at)),
            expires_at: Some(rfc3339(c.expires_at)),
            ..PolicyView::parsed(&c.policy)
        }
    }

    /// The view of a policy that was only parsed (no id, no times).
    pub fn parsed(p: &Policy) -> PolicyView {
        PolicyView {
            id: None,
            mode: p.mode().as_str(),
            max_age: p.max_age(),
            mx: p.mx().iter().map(ToString::to_string).collect(),
            fetched_at: None,
            expires_at: None,
            text: p.text().to_string(),
        }
    }
}

/// A resolution, as `mtasts lookup --json` prints one per domain: `{domain, mode, source,
/// policy, failure, notice}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ResolutionView {
    /// The normalised domain (or, for an input that is not a domain, the input).
    pub domain: String,
    /// The mode in effect ([`Resolution::mode`]).
    pub mode: &'static str,
    /// [`Source::as_str`](crate::Source::as_str); `null` when the input was not a domain.
    pub source: Option<&'static str>,
    /// The policy in effect.
    pub policy: Option<PolicyView>,
    /// What failed.
    pub failure: Option<FailureView>,
    /// A note that is not a failure.
    pub notice: Option<String>,
}

impl ResolutionView {
    /// The view of `r`.
    pub fn new(r: &Resolution) -> ResolutionView {
        ResolutionView {
            domain: r.domain().to_string(),
            mode: r.mode().as_str(),
            source: Some(r.source().as_str()),
            policy: r.cached_policy().map(|c| PolicyView::cached(c)),
            failure: r.failure().map(FailureView::new),
            notice: r.notice().map(str::to_string),
        }
    }

    /// The view for an input that could not be resolved at all (not a domain): mode `none`,
    /// no source, the error as failure.
    pub fn for_error(input: &str, e: &Error) -> ResolutionView {
        ResolutionView {
            domain: input.to_string(),
            mode: "none",
            source: None,
            policy: None,
            failure: Some(FailureView::new(e)),
            notice: None,
        }
    }
}

/// A running backoff of a cache entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BackoffView {
    /// The record id the failed fetch was for (empty: a failed TXT lookup).
    pub id: String,
    /// No new attempt before this time.
    pub until: String,
    /// The failure's RFC 8460 result type.
    pub result_type: &'static str,
    /// The failure's message.
    pub reason: String,
}

/// A cache entry, as `mtasts cache list|show --json` prints it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct EntryView {
    /// The policy domain.
    pub domain: String,
    /// The cached policy's mode, `null` without a policy.
    pub mode: Option<&'static str>,
    /// The cached policy's record id.
    pub id: Option<String>,
    /// The cached policy's `max_age`.
    pub max_age: Option<u32>,
    /// The cached policy's `mx` patterns.
    pub mx: Vec<String>,
    /// When the policy was fetched.
    pub fetched_at: Option<String>,
    /// When the policy expires.
    pub expires_at: Option<String>,
    /// When the TXT record is checked again (R-CACHE-5).
    pub next_check: String,
    /// The running backoff (R-FETCH-10).
    pub backoff: Option<BackoffView>,
    /// Refreshes that failed in a row.
    pub failures: u32,
    /// When a lookup last used the entry (R-CACHE-8).
    pub last_used: String,
    /// The raw policy text, in the detailed view only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

impl EntryView {
    /// The view of `e`; with `with_text`, the raw policy text too.
    pub fn new(e: &Entry, with_text: bool) -> EntryView {
        let p = e.policy.as_deref();
        EntryView {
            domain: e.domain.to_string(),
            mode: p.map(|p| p.policy.mode().as_str()),
            id: p.map(|p| p.id.clone()),
            max_age: p.map(|p| p.policy.max_age()),
            mx: p.map_or_else(Vec::new, |p| {
                p.policy.mx().iter().map(ToString::to_string).collect()
            }),
            fetched_at: p.map(|p| rfc3339(p.fetched_at)),
            expires_at: p.map(|p| rfc3339(p.expires_at)),
            next_check: rfc3339(e.next_check),
            backoff: e.backoff.as_ref().map(|b| BackoffView {
                id: b.id.clone(),
                until: rfc3339(b.until),
                result_type: b.result_type.as_str(),
                reason: b.reason.clone(),
            }),
            failures: e.failures,
            last_used: rfc3339(e.last_used),
            text: with_text
                .then(|| p.map(|p| p.policy.text().to_string()))
                .flatten(),
        }
    }
}

/// One failed refresh.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FailedRefreshView {
    /// The domain.
    pub domain: String,
    /// What failed.
    pub failure: FailureView,
}

/// A refresh run, as `mtasts refresh --json` prints it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RefreshView {
    /// Cached policies looked at.
    pub examined: usize,
    /// Domains whose policy was fetched again.
    pub refreshed: Vec<String>,
    /// Domains that no longer publish a policy.
    pub unpublished: Vec<String>,
    /// Domains whose refresh failed.
    pub failed: Vec<FailedRefreshView>,
    /// Entries dropped for being unused.
    pub purged: usize,
}

impl RefreshView {
    /// The view of `report`.
    pub fn new(report: &RefreshReport) -> RefreshView {
        let names = |v: &[crate::Domain]| v.iter().map(ToString::to_string).collect();
        RefreshView {
            examined: report.examined,
            refreshed: names(&report.refreshed),
            unpublished: names(&report.unpublished),
            failed: report
                .failed
                .iter()
                .map(|(d, e)| FailedRefreshView {
                    domain: d.to_string(),
                    failure: FailureView::new(e),
                })
                .collect(),
            purged: report.purged,
        }
    }
}

/// `view` as pretty JSON (two-space indent, no final newline), the text every face prints.
pub fn to_json(view: &impl Serialize) -> String {
    // Serializing these views cannot fail: plain structs of strings, numbers and options.
    serde_json::to_string_pretty(view).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}
