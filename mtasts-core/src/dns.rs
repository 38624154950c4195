//! DNS lookups behind a small blocking trait, implemented with hickory-resolver.
//!
//! hickory-resolver is async-only. mtasts keeps a blocking API, and it must keep working in a
//! process forked from one that already used the resolver (scenario S-41: Exim forks per
//! delivery). A tokio runtime or a hickory connection pool carried across `fork()` is not
//! usable in the child (its threads are gone, its sockets are shared with the parent), so
//! [`HickoryDns`] keeps only plain configuration and builds a current-thread runtime and a
//! resolver for each lookup. That costs tens of microseconds on a path that is taken only
//! when the policy cache has no fresh answer, and it has no state a fork can break.

use std::fmt::Debug;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{RData, RecordType};
use hickory_resolver::Resolver;
use hickory_resolver::config::{
    LookupIpStrategy, NameServerConfig, ResolveHosts, ResolverConfig, ResolverOpts,
};
use hickory_resolver::lookup::Lookup;
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::{DnsError, NetError};

use crate::error::{Error, Result};

/// The answer to one DNS question, keeping "the name has no such data" apart from failures.
///
/// Temporary failures (SERVFAIL, REFUSED, timeouts, network errors) are not answers: they are
/// returned as [`Error::DnsTemporary`], so they can never be mistaken for "no record"
/// (R-DISC-7).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DnsAnswer<T> {
    /// The name has data of the asked type.
    Found {
        /// The data, in the order the server gave it.
        records: T,
        /// The smallest TTL of the answer's records, CNAMEs included, in seconds.
        ttl: u32,
    },
    /// NXDOMAIN: the name does not exist.
    NxDomain {
        /// The negative-caching TTL from the SOA, when the server sent one.
        ttl: Option<u32>,
    },
    /// NODATA: the name exists but has no data of the asked type.
    NoData {
        /// The negative-caching TTL from the SOA, when the server sent one.
        ttl: Option<u32>,
    },
}

impl<T> DnsAnswer<T> {
    /// The records, or `None` for NXDOMAIN and NODATA.
    pub fn records(self) -> Option<T> {
        match self {
            DnsAnswer::Found { records, .. } => Some(records),
            DnsAnswer::NxDomain { .. } | DnsAnswer::NoData { .. } => None,
        }
    }

    /// The TTL of the answer (positive or negative), when known.
    pub fn ttl(&self) -> Option<u32> {
        match self {
            DnsAnswer::Found { ttl, .. } => Some(*ttl),
            DnsAnswer::NxDomain { ttl } | DnsAnswer::NoData { ttl } => *ttl,
        }
    }
}

/// One MX record: preference and exchange host (lowercase, no trailing dot).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MxRecord {
    /// Lower is preferred (RFC 5321 §5.1).
    pub preference: u16,
    /// The MX host name as published (the record's data, not a CNAME target; R-MX-1).
    pub exchange: String,
}

/// The DNS queries mtasts makes. Blocking; every call ends within the implementation's
/// deadline.
///
/// Names are absolute and given without the trailing dot.
pub trait DnsResolver: Send + Sync + Debug {
    /// TXT records of `name`, following CNAMEs; each RR's character-strings concatenated
    /// without separators (R-DISC-1, R-DISC-2).
    fn txt(&self, name: &str) -> Result<DnsAnswer<Vec<Vec<u8>>>>;
    /// A and AAAA addresses of `host` (R-FETCH-1: the policy host is resolved through the same
    /// resolver as the TXT record).
    fn ip(&self, host: &str) -> Result<DnsAnswer<Vec<IpAddr>>>;
    /// [`DnsResolver::ip`] within `limit` (when given) as well as the resolver's own deadline:
    /// how a policy fetch resolves its host inside its one deadline (R-FETCH-9). The default
    /// ignores `limit`; implementations whose lookups can outlast it override this.
    fn ip_within(&self, host: &str, limit: Option<Duration>) -> Result<DnsAnswer<Vec<IpAddr>>> {
        let _ = limit;
        self.ip(host)
    }
    /// MX records of `domain`, sorted by preference.
    fn mx(&self, domain: &str) -> Result<DnsAnswer<Vec<MxRecord>>>;
}

/// The default [`DnsResolver`]: hickory-resolver over UDP and TCP, using either the system's
/// `/etc/resolv.conf` or name servers given as `ip:port`.
#[derive(Clone, Debug)]
pub struct HickoryDns {
    config: ResolverConfig,
    opts: ResolverOpts,
    deadline: Duration,
}

impl HickoryDns {
    /// Uses the name servers of the system configuration (`/etc/resolv.conf` on Unix).
    /// `deadline` bounds each lookup as a whole.
    pub fn system(deadline: Duration) -> Result<HickoryDns> {
        let (config, opts) =
            hickory_resolver::system_conf::read_system_conf().map_err(|e| Error::Config {
                reason: format!("cannot read the system DNS configuration: {e}"),
            })?;
        Ok(HickoryDns::from_parts(config, opts, deadline))
    }

    /// Uses exactly these name servers (`ip:port`), over UDP with TCP fallback.
    pub fn with_nameservers(servers: &[SocketAddr], deadline: Duration) -> Result<HickoryDns> {
        if servers.is_empty() {
            return Err(Error::Config {
                reason: "no DNS name servers given".into(),
            });
        }
        let name_servers = servers
            .iter()
            .map(|addr| {
                let mut ns = NameServerConfig::udp_and_tcp(addr.ip());
                for conn in &mut ns.connections {
                    conn.port = addr.port();
                }
                ns
            })
            .collect();
        let config = ResolverConfig::from_parts(None, Vec::new(), name_servers);
        Ok(HickoryDns::from_parts(
            config,
            ResolverOpts::default(),
            deadline,
        ))
    }

    fn from_parts(config: ResolverConfig, mut opts: ResolverOpts, deadline: Duration) -> Self {
        // Names are always queried as absolute names: no search list, no /etc/hosts (the
        // policy host must be resolved through DNS like the TXT record, R-FETCH-1).
        opts.ndots = 0;
        opts.use_hosts_file = ResolveHosts::Never;
        opts.ip_strategy = LookupIpStrategy::Ipv4AndIpv6;
        // Each resolver lives for one lookup: its cache would never be hit.
        opts.cache_size = 0;
        // Per-attempt timeout: leave room for a second attempt within the deadline.
        opts.timeout = opts
            .timeout
            .min(deadline / 2)
            .max(Duration::from_millis(100));
        HickoryDns {
            config,
            opts,
            deadline,
        }
    }

    /// Runs one lookup on a fresh current-thread runtime (fork-safe; see the module docs).
    fn lookup(&self, name: &str, rtype: RecordType) -> Result<DnsAnswer<Lookup>> {
        let [answer] = self.lookups(name, [rtype], self.deadline);
        answer
    }

    /// Queries `name` for each of `rtypes` at once, all within `deadline`.
    fn lookups<const N: usize>(
        &self,
        name: &str,
        rtypes: [RecordType; N],
        deadline: Duration,
    ) -> [Result<DnsAnswer<Lookup>>; N] {
        let fqdn = format!("{}.", name.trim_end_matches('.'));
        let temporary = |reason: String| Error::DnsTemporary {
            name: name.to_string(),
            reason,
        };
        let runtime = match tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()
        {
            Ok(runtime) => runtime,
            Err(e) => {
                let reason = format!("cannot start the DNS runtime: {e}");
                return rtypes.map(|_| Err(temporary(reason.clone())));
            }
        };
        let outcomes: [Outcome; N] = runtime.block_on(async {
            let resolver = match Resolver::builder_with_config(
                self.config.clone(),
                TokioRuntimeProvider::default(),
            )
            .with_options(self.opts.clone())
            .build()
            {
                Ok(resolver) => resolver,
                Err(e) => return rtypes.map(|_| Outcome::Failed(e.to_string())),
            };
            // Each query runs as its own task, so A and AAAA are asked at the same time.
            let tasks = rtypes.map(|rtype| {
                let resolver = resolver.clone();
                let fqdn = fqdn.clone();
                tokio::spawn(async move {
                    tokio::time::timeout(deadline, resolver.lookup(fqdn.as_str(), rtype)).await
                })
            });
            let mut outcomes = rtypes.map(|_| Outcome::Timeout);
            for (slot, task) in outcomes.iter_mut().zip(tasks) {
                *slot = match task.await {
                    Ok(Ok(Ok(lookup))) => Outcome::Found(lookup),
                    Ok(Ok(Err(e))) => Outcome::from(e),
                    // The deadline passed (or the task could not finish).
                    Ok(Err(_)) | Err(_) => Outcome::Timeout,
                };
            }
            outcomes
        });
        outcomes.map(|outcome| match outcome {
            Outcome::Found(lookup) => {
                let ttl = lookup.answers().iter().map(|r| r.ttl).min().unwrap_or(0);
                Ok(DnsAnswer::Found {
                    records: lookup,
                    ttl,
                })
            }
            Outcome::NxDomain(ttl) => Ok(DnsAnswer::NxDomain { ttl }),
            Outcome::NoData(ttl) => Ok(DnsAnswer::NoData { ttl }),
            Outcome::Timeout => Err(temporary(format!(
                "no answer within {} ms",
                deadline.as_millis()
            ))),
            Outcome::Failed(reason) => Err(temporary(reason)),
        })
    }

    fn select<T>(
        answer: DnsAnswer<Lookup>,
        pick: impl Fn(&RData) -> Option<T>,
    ) -> DnsAnswer<Vec<T>> {
        match answer {
            DnsAnswer::Found { records, ttl } => {
                let data: Vec<T> = records
                    .answers()
                    .iter()
                    .filter_map(|r| pick(&r.data))
                    .collect();
                if data.is_empty() {
                    DnsAnswer::NoData { ttl: Some(ttl) }
                } else {
                    DnsAnswer::Found { records: data, ttl }
                }
            }
            DnsAnswer::NxDomain { ttl } => DnsAnswer::NxDomain { ttl },
            DnsAnswer::NoData { ttl } => DnsAnswer::NoData { ttl },
        }
    }
}

/// What one lookup task gave.
enum Outcome {
    Found(Lookup),
    NxDomain(Option<u32>),
    NoData(Option<u32>),
    Timeout,
    Failed(String),
}

impl From<NetError> for Outcome {
    fn from(e: NetError) -> Outcome {
        match e {
            NetError::Dns(DnsError::NoRecordsFound(none)) => match none.response_code {
                ResponseCode::NXDomain => Outcome::NxDomain(none.negative_ttl),
                ResponseCode::NoError => Outcome::NoData(none.negative_ttl),
                code => Outcome::Failed(format!("server answered {code}")),
            },
            NetError::Dns(DnsError::ResponseCode(code)) => {
                Outcome::Failed(format!("server answered {code}"))
            }
            NetError::Timeout => Outcome::Timeout,
            e => Outcome::Failed(e.to_string()),
        }
    }
}

impl DnsResolver for HickoryDns {
    fn txt(&self, name: &str) -> Result<DnsAnswer<Vec<Vec<u8>>>> {
        let answer = self.lookup(name, RecordType::TXT)?;
        Ok(HickoryDns::select(answer, |data| match data {
            // R-DISC-2: the character-strings of one RR, concatenated without separators.
            RData::TXT(txt) => Some(
                txt.txt_data
                    .iter()
                    .flat_map(|s| s.iter().copied())
                    .collect(),
            ),
            _ => None,
        }))
    }

    fn ip(&self, host: &str) -> Result<DnsAnswer<Vec<IpAddr>>> {
        self.ip_within(host, None)
    }

    /// A and AAAA are asked at the same time, both within `limit` and the deadline.
    fn ip_within(&self, host: &str, limit: Option<Duration>) -> Result<DnsAnswer<Vec<IpAddr>>> {
        let deadline = limit.map_or(self.deadline, |l| l.min(self.deadline));
        let [v4, v6] = self.lookups(host, [RecordType::A, RecordType::AAAA], deadline);
        let v4 = v4?;
        let pick = |data: &RData| match data {
            RData::A(a) => Some(IpAddr::V4(a.0)),
            RData::AAAA(a) => Some(IpAddr::V6(a.0)),
            _ => None,
        };
        let v4 = HickoryDns::select(v4, pick);
        match (v4, v6) {
            // NXDOMAIN for A is NXDOMAIN for the name: no need to ask again.
            (nx @ DnsAnswer::NxDomain { .. }, _) => Ok(nx),
            (v4, Ok(v6)) => Ok(merge(v4, HickoryDns::select(v6, pick))),
            // AAAA failed but IPv4 addresses are known: use them.
            (found @ DnsAnswer::Found { .. }, Err(_)) => Ok(found),
            (_, Err(e)) => Err(e),
        }
    }

    fn mx(&self, domain: &str) -> Result<DnsAnswer<Vec<MxRecord>>> {
        let answer = self.lookup(domain, RecordType::MX)?;
        let mut answer = HickoryDns::select(answer, |data| match data {
            RData::MX(mx) => Some(MxRecord {
                preference: mx.preference,
                exchange: mx
                    .exchange
                    .to_ascii()
                    .trim_end_matches('.')
                    .to_ascii_lowercase(),
            }),
            _ => None,
        });
        if let DnsAnswer::Found { records, .. } = &mut answer {
            records.sort_by_key(|mx| mx.preference);
        }
        Ok(answer)
    }
}

/// Combines the A and AAAA answers for one host.
fn merge(v4: DnsAnswer<Vec<IpAddr>>, v6: DnsAnswer<Vec<IpAddr>>) -> DnsAnswer<Vec<IpAddr>> {
    match (v4, v6) {
        (
            DnsAnswer::Found {
                records: mut a,
                ttl: t1,
            },
            DnsAnswer::Found {
                records: b,
                ttl: t2,
            },
        ) => {
            a.extend(b);
            DnsAnswer::Found {
                records: a,
                ttl: t1.min(t2),
            }
        }
        (found @ DnsAnswer::Found { .. }, _) | (_, found @ DnsAnswer::Found { .. }) => found,
        (v4, _) => v4,
    }
}
