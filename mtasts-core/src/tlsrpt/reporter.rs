//! The recording API every face calls: a [`Reporter`] opened where the policy cache lives,
//! and [`Reporter::record`] per delivery session.

use std::path::Path;
use std::sync::Arc;

use super::emit::DatagramEmitter;
use super::session::Session;
use super::settings::TlsRptSettings;
use super::store::{RedisReportStore, ReportStore, SqliteReportStore};
use crate::cache::{CacheLocation, RedisStore, SharedCache};
use crate::config::Config;
use crate::dns::{DnsResolver, HickoryDns};
use crate::error::{Error, Result};

/// Records TLS-RPT sessions (RFC 8460) into the report store beside the policy cache.
///
/// ```rust,no_run
/// use mtasts_core::{Config, Reporter, Resolver, Session, TlsRptSettings, UtcDay};
///
/// let config = Config::from_file("/etc/mtasts/mtasts.conf")?;
/// let mut settings = TlsRptSettings::default();
/// settings.load_file("/etc/mtasts/mtasts.conf")?;
/// let resolver = Resolver::new(config.clone())?;
/// let reporter = Reporter::open(&config, &settings)?;
///
/// let resolution = resolver.resolve("example.com")?;
/// // ... deliver; TLS with the MX host succeeded:
/// reporter.record(&Session::from_resolution(UtcDay::today(), &resolution, vec![])?)?;
/// # Ok::<(), mtasts_core::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Reporter {
    store: Arc<dyn ReportStore>,
}

impl Reporter {
    /// A reporter recording where `config.cache` keeps the policy cache (see
    /// [`Reporter::open_location`]).
    ///
    /// # Errors
    /// As [`Reporter::open_location`].
    ///
    /// With `tlsrpt.emit_socket` set ([`TlsRptSettings::emit_socket`]), nothing is stored:
    /// each session is sent as a libtlsrpt datagram to the collector on that socket
    /// ([`Reporter::emitting`]), its TLSRPT record looked up through the DNS servers of
    /// `config`. Any `cache`, `memory` included, is then accepted, since no count is kept
    /// here.
    pub fn open(config: &Config, settings: &TlsRptSettings) -> Result<Reporter> {
        if let Some(socket) = &settings.emit_socket {
            let dns = if config.nameservers.is_empty() {
                HickoryDns::system(config.dns_timeout)?
            } else {
                HickoryDns::with_nameservers(&config.nameservers, config.dns_timeout)?
            };
            return Reporter::emitting(socket, Arc::new(dns));
        }
        Reporter::open_location(&config.cache, settings)
    }

    /// A reporter that sends each session as a libtlsrpt datagram to the collector socket
    /// at `socket` (tlsrpt-collectd, or `mtasts tlsrpt collect` elsewhere), looking the
    /// domains' TLSRPT records up through `dns` ([`DatagramEmitter`]).
    ///
    /// # Errors
    /// As [`DatagramEmitter::new`].
    pub fn emitting(socket: &Path, dns: Arc<dyn DnsResolver>) -> Result<Reporter> {
        Ok(Reporter {
            store: Arc::new(DatagramEmitter::new(socket, dns)?),
        })
    }

    /// A reporter recording in the cache at `location`: in the SQLite file's own tables
    /// ([`SqliteReportStore`]) or under the Redis server's own keys ([`RedisReportStore`]).
    /// With several layers (a SQLite file in front of Redis) the last one, the most widely
    /// shared, keeps the counts: a fleet aggregates once, in one place, and a sender reads
    /// them there.
    ///
    /// # Errors
    /// [`Error::Config`] for `memory` (counts in one process's memory would be lost with it:
    /// configure a cache file or Redis, or use [`Reporter::with_store`] with a
    /// [`MemoryReportStore`](crate::MemoryReportStore) on purpose), for a bad Redis URL or a
    /// retention out of range; [`Error::ReportStore`] when the SQLite file cannot be opened.
    pub fn open_location(location: &CacheLocation, settings: &TlsRptSettings) -> Result<Reporter> {
        let layer = match location {
            CacheLocation::Shared(layers) => layers.last(),
            _ => None,
        };
        let store: Arc<dyn ReportStore> = match layer {
            Some(SharedCache::Sqlite(path)) => {
                Arc::new(SqliteReportStore::open(path, settings.retention)?)
            }
            Some(SharedCache::Redis(url)) => Arc::new(RedisReportStore::new(
                Arc::new(RedisStore::connect(url)?),
                settings.retention,
            )?),
            _ => {
                return Err(Error::Config {
                    reason: format!(
                        "TLS-RPT recording needs a shared cache (cache = a SQLite file or \
                         redis://...), not {location}: counts kept in one process's memory \
                         would be lost when it ends"
                    ),
                });
            }
        };
        Ok(Reporter { store })
    }

    /// A reporter reading the settings file at `path`: its `cache` and `tlsrpt.*` keys (the
    /// other keys are checked as [`Config::load_file`] checks them).
    ///
    /// # Errors
    /// As [`Config::load_file`], [`TlsRptSettings::load_file`] and [`Reporter::open`].
    pub fn from_file(path: impl AsRef<Path>) -> Result<Reporter> {
        let config = Config::from_file(&path)?;
        let mut settings = TlsRptSettings::default();
        settings.load_file(&path)?;
        Reporter::open(&config, &settings)
    }

    /// A reporter recording into `store`.
    pub fn with_store(store: Arc<dyn ReportStore>) -> Reporter {
        Reporter { store }
    }

    /// Counts `session` (R-RPT-3, R-RPT-4), atomically with every other recorder sharing the
    /// store.
    ///
    /// # Errors
    /// [`Error::ReportStore`] when the store cannot be written, or when emitting, the
    /// datagram cannot be sent: the session is then not counted (the caller logs it; a
    /// delivery never waits long for or fails on reporting). When emitting, also
    /// [`Error::DnsTemporary`] when the TLSRPT record cannot be looked up now.
    pub fn record(&self, session: &Session) -> Result<()> {
        self.store.record(session)
    }

    /// The store, for the sender and the `mtasts tlsrpt` commands.
    pub fn store(&self) -> &Arc<dyn ReportStore> {
        &self.store
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_is_refused_with_what_to_do() {
        let e = Reporter::open(&Config::default(), &TlsRptSettings::default()).unwrap_err();
        assert!(
            matches!(&e, Error::Config { reason } if reason.contains("needs a shared cache")),
            "{e}"
        );
    }
}
