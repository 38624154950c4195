//! What a lookup gives: the policy in effect (if any), where it came from, and what went
//! wrong on the way (RFC 8461 §5.1, rules §4). Pure: the verdicts and every face read it.

use std::fmt;
use std::sync::Arc;

use crate::domain::Domain;
use crate::error::{Error, Result};
use crate::policy::{CachedPolicy, Mode, Policy};

/// Where the answer of a [`Resolution`] came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Source {
    /// The policy was fetched during this call.
    Fetched,
    /// The cached policy is current: the record id is unchanged (R-CACHE-2), the TXT record was
    /// not due for a check (R-CACHE-5), or the record vanished and the policy is unexpired
    /// (R-DISC-8).
    Cache,
    /// Refreshing failed (DNS failure, fetch failure or fetch backoff) and the unexpired cached
    /// policy is used (R-FETCH-11); [`Resolution::failure`] says what failed.
    CacheAfterFailure,
    /// The domain publishes no policy: no STS record, or an invalid one (R-DISC-3, R-DISC-4).
    NoPolicy,
    /// Whether the domain has a policy could not be determined and nothing usable is cached:
    /// deliver as if it had none (R-FETCH-12) and report [`Resolution::failure`].
    Unavailable,
    /// The shared policy cache could not be read, and DNS and HTTPS gave no policy: a policy
    /// may be cached that this process cannot see, so **whether a policy applies cannot be
    /// told**. Defer the message (never deliver as if there were no policy: that would undo
    /// the downgrade protection the cache exists for). [`Resolution::failure`] is the cache
    /// error ([`Error::Cache`], kind `cache`); [`Resolution::notice`] says what DNS and HTTPS
    /// gave.
    CacheUnreadable,
}

impl Source {
    /// A stable lowercase name: `fetched`, `cache`, `cache-after-failure`, `none`,
    /// `unavailable`, `cache-unreadable`.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Fetched => "fetched",
            Source::Cache => "cache",
            Source::CacheAfterFailure => "cache-after-failure",
            Source::NoPolicy => "none",
            Source::Unavailable => "unavailable",
            Source::CacheUnreadable => "cache-unreadable",
        }
    }

    /// True when whether a policy applies cannot be told ([`Source::CacheUnreadable`]): the
    /// caller must defer the message.
    pub fn cannot_tell(self) -> bool {
        self == Source::CacheUnreadable
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The outcome of [`Resolver::resolve`](crate::Resolver::resolve): the policy in effect (if any), where it came from,
/// and what went wrong on the way.
#[derive(Clone, Debug)]
pub struct Resolution {
    pub(crate) domain: Domain,
    pub(crate) source: Source,
    pub(crate) policy: Option<Arc<CachedPolicy>>,
    pub(crate) failure: Option<Error>,
    pub(crate) notice: Option<String>,
    pub(crate) domain_not_found: bool,
}

impl Resolution {
    /// The notice of a domain that does not exist in DNS ([`Resolution::domain_not_found`]).
    pub const DOMAIN_NOT_FOUND: &'static str = "the domain does not exist in DNS (NXDOMAIN)";

    /// True when the domain itself does not exist in DNS: its `_mta-sts` record and its MX
    /// records answered NXDOMAIN. The domain still has "no policy" (RFC 8461); this tells a
    /// typo, or a resolver that answers NXDOMAIN for everything it does not serve, from a
    /// domain that merely publishes no policy. Known on the lookup that queried DNS; a later
    /// answer from the cache does not repeat it. [`Resolution::notice`] then says
    /// [`Resolution::DOMAIN_NOT_FOUND`].
    pub fn domain_not_found(&self) -> bool {
        self.domain_not_found
    }

    /// The policy domain, normalised.
    pub fn domain(&self) -> &Domain {
        &self.domain
    }

    /// Where the answer came from.
    pub fn source(&self) -> Source {
        self.source
    }

    /// The policy in effect, with its record id and expiry. `None` when the domain has no
    /// usable policy. A `mode: none` policy is returned as such (R-CACHE-4).
    pub fn cached_policy(&self) -> Option<&Arc<CachedPolicy>> {
        self.policy.as_ref()
    }

    /// The parsed policy in effect, if any.
    pub fn policy(&self) -> Option<&Policy> {
        self.policy.as_deref().map(|c| c.policy.as_ref())
    }

    /// The mode in effect: the policy's mode, or [`Mode::None`] when there is no policy
    /// (R-APPLY-3). For a resolution that [cannot tell](Source::cannot_tell) this is also
    /// [`Mode::None`]: use [`Resolution::applicable_policy`] or [`Resolution::mode_in_effect`]
    /// to decide what to do with a message.
    pub fn mode(&self) -> Mode {
        self.policy().map_or(Mode::None, Policy::mode)
    }

    /// The policy to apply to a message (`None`: no MTA-STS requirement), or the error to
    /// defer the message with when whether a policy applies cannot be told
    /// ([`Source::CacheUnreadable`]; never fail open).
    pub fn applicable_policy(&self) -> Result<Option<&Policy>> {
        match (&self.failure, self.source.cannot_tell()) {
            (Some(e), true) => Err(e.clone()),
            (None, true) => Err(Error::Cache {
                reason: format!("whether {} has a policy cannot be told", self.domain),
            }),
            (_, false) => Ok(self.policy()),
        }
    }

    /// [`Resolution::mode`], or the error to defer with when it cannot be told (see
    /// [`Resolution::applicable_policy`]).
    pub fn mode_in_effect(&self) -> Result<Mode> {
        Ok(self.applicable_policy()?.map_or(Mode::None, Policy::mode))
    }

    /// What failed while resolving, if anything. [`Error::result_type`] gives the RFC 8460
    /// result type to report; a temporary DNS failure has none.
    pub fn failure(&self) -> Option<&Error> {
        self.failure.as_ref()
    }

    /// Something worth telling the domain's postmaster that is not a failure: e.g. the TXT
    /// record is invalid (so the domain has no policy) or has vanished while a cached policy
    /// is still used.
    pub fn notice(&self) -> Option<&str> {
        self.notice.as_deref()
    }
}
