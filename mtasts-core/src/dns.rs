//! DNS lookups behind a small blocking trait, implemented with hickory-resolver.
//!
//! hickory-resolver is async-only. mtasts keeps a blocking API, and it must keep working in a
//! process forked from one that already used the resolver (scenario S-41: Exim forks per
//! delivery). [`HickoryDns`] keeps its DNS state per process: current-thread tokio runtimes,
//! each with its hickory resolver, built on first use and reused by later lookups (one per
//! thread doing a lookup at the same moment), and a cache of address and MX answers by TTL,
//! negative answers included. All of it is keyed by process id. A forked child never touches its parent's
//! state: a runtime's epoll instance and a resolver's sockets are shared with the parent after
//! `fork()`, so the child builds its own and leaks the parent's copy instead of dropping it.
//! No lock is ever waited for where a fork could have left it held (see [`PerProcess`]).

use std::collections::HashMap;
use std::fmt::Debug;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::{Duration, SystemTime};

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{RData, RecordType};
use hickory_resolver::TokioResolver;
use hickory_resolver::config::{
    LookupIpStrategy, NameServerConfig, ProtocolConfig, ResolveHosts, ResolverConfig, ResolverOpts,
};
use hickory_resolver::lookup::Lookup;
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::{DnsError, NetError};

use crate::clock::{Clock, SystemClock};
use crate::dnssec::{Authenticated, StubClient, Tlsa};
use crate::error::{Error, Result};
use crate::mx::MxRecord;
use crate::process::PerProcess;

/// The most answers [`HickoryDns`] keeps in its cache; when full, expired answers go first,
/// then the whole cache (a bulk run of 100,000 domains keeps flat memory).
pub const DNS_CACHE_ENTRIES: usize = 4096;
/// The longest an answer is cached, whatever its TTL (R-CACHE-5 rechecks hourly at most).
pub const DNS_CACHE_MAX_TTL: u32 = 3600;
/// Idle runtimes kept per process for later lookups (one is used per concurrent lookup).
const IDLE_WORKERS: usize = 64;

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
    /// MX records of `domain` with whether the resolver validated them (R-SRV-6: DANE
    /// applies to MX hosts only under a validated MX RRset, RFC 7672 §2.2.1). The default
    /// asks [`DnsResolver::mx`] and reports the answer as not validated, so DANE never
    /// applies through a resolver that cannot tell.
    fn mx_authenticated(&self, domain: &str) -> Result<Authenticated<Vec<MxRecord>>> {
        Ok(Authenticated {
            answer: self.mx(domain)?,
            validated: false,
        })
    }
    /// TLSA records at `name` (`_25._tcp.<host>`) with whether the resolver validated them
    /// (R-SRV-6). The default reports none, not validated.
    fn tlsa(&self, name: &str) -> Result<Authenticated<Vec<Tlsa>>> {
        let _ = name;
        Ok(Authenticated {
            answer: DnsAnswer::NoData { ttl: None },
            validated: false,
        })
    }
}

/// The default [`DnsResolver`]: hickory-resolver over UDP and TCP, using either the system's
/// `/etc/resolv.conf` or name servers given as `ip:port`.
///
/// Address and MX answers are cached in memory by their TTL (at most [`DNS_CACHE_MAX_TTL`]),
/// NXDOMAIN and NODATA by the SOA's negative TTL; temporary failures never are, and TXT
/// answers are left to the policy cache (R-CACHE-5). Clones share the cache.
#[derive(Clone, Debug)]
pub struct HickoryDns {
    config: ResolverConfig,
    opts: ResolverOpts,
    deadline: Duration,
    clock: Arc<dyn Clock>,
    state: Arc<ProcessSlot>,
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

    /// Takes the time for the answer cache's TTLs from `clock` (the resolver's clock, so a
    /// test that moves time also ages cached DNS answers).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> HickoryDns {
        self.clock = clock;
        self
    }

    fn from_parts(config: ResolverConfig, mut opts: ResolverOpts, deadline: Duration) -> Self {
        // Names are always queried as absolute names: no search list, no /etc/hosts (the
        // policy host must be resolved through DNS like the TXT record, R-FETCH-1).
        opts.ndots = 0;
        opts.use_hosts_file = ResolveHosts::Never;
        opts.ip_strategy = LookupIpStrategy::Ipv4AndIpv6;
        // Answers are cached here, per process, once for all of this process's runtimes
        // (hickory's cache would be one per runtime).
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
            clock: Arc::new(SystemClock),
            state: Arc::new(ProcessSlot::default()),
        }
    }

    /// Runs one lookup (fork-safe; see the module docs).
    fn lookup(&self, name: &str, rtype: RecordType) -> Result<DnsAnswer<Lookup>> {
        let [answer] = self.lookups(name, [rtype], self.deadline);
        answer
    }

    /// Queries `name` for each of `rtypes` at once, all within `deadline`; cached answers
    /// are taken from the cache, the others asked and cached.
    fn lookups<const N: usize>(
        &self,
        name: &str,
        rtypes: [RecordType; N],
        deadline: Duration,
    ) -> [Result<DnsAnswer<Lookup>>; N] {
        let fqdn = format!("{}.", name.trim_end_matches('.').to_ascii_lowercase());
        let state = self.state.get();
        let now = self.clock.now();
        let cached = rtypes.map(|rtype| state.cached(&fqdn, rtype, now));
        if cached.iter().all(Option::is_some) {
            return cached.map(|answer| answer.ok_or_else(|| unreachable_answer(name)));
        }
        let temporary = |reason: String| Error::DnsTemporary {
            name: name.to_string(),
            reason,
        };
        let worker = match state.worker(|| self.build_worker()) {
            Ok(worker) => worker,
            Err(reason) => return rtypes.map(|_| Err(temporary(reason.clone()))),
        };
        let mut outcomes: [Option<Outcome>; N] = worker.runtime.block_on(async {
            // The queries not answered from the cache are polled together on this thread (no
            // task spawned), so A and AAAA are asked at the same time, each within `deadline`.
            let lookups: Vec<_> = (0..N)
                .filter(|&i| cached[i].is_none())
                .map(|i| {
                    let lookup = worker.resolver.lookup(fqdn.as_str(), rtypes[i]);
                    (i, Box::pin(tokio::time::timeout(deadline, lookup)))
                })
                .collect();
            let mut lookups: Vec<_> = lookups.into_iter().map(|(i, f)| (i, f, None)).collect();
            std::future::poll_fn(|cx| {
                let mut pending = false;
                for (_, lookup, done) in lookups.iter_mut() {
                    if done.is_none() {
                        match lookup.as_mut().poll(cx) {
                            Poll::Ready(outcome) => *done = Some(outcome),
                            Poll::Pending => pending = true,
                        }
                    }
                }
                if pending {
                    Poll::Pending
                } else {
                    Poll::Ready(())
                }
            })
            .await;
            let mut outcomes = rtypes.map(|_| None);
            for (i, _, done) in lookups {
                outcomes[i] = Some(match done {
                    Some(Ok(Ok(lookup))) => Outcome::Found(lookup),
                    Some(Ok(Err(e))) => Outcome::from(e),
                    // The deadline passed.
                    Some(Err(_)) | None => Outcome::Timeout,
                });
            }
            outcomes
        });
        state.give_back(worker);
        let now = self.clock.now();
        let mut cached = cached;
        std::array::from_fn(|i| {
            let outcome = match (cached[i].take(), outcomes[i].take()) {
                (Some(hit), _) => return Ok(hit),
                (None, Some(outcome)) => outcome,
                (None, None) => Outcome::Timeout,
            };
            let answer = match outcome {
                Outcome::Found(lookup) => {
                    let ttl = lookup.answers().iter().map(|r| r.ttl).min().unwrap_or(0);
                    DnsAnswer::Found {
                        records: lookup,
                        ttl,
                    }
                }
                Outcome::NxDomain(ttl) => DnsAnswer::NxDomain { ttl },
                Outcome::NoData(ttl) => DnsAnswer::NoData { ttl },
                Outcome::Timeout => {
                    return Err(temporary(format!(
                        "no answer within {} ms",
                        deadline.as_millis()
                    )));
                }
                Outcome::Failed(reason) => return Err(temporary(reason)),
            };
            state.remember(&fqdn, rtypes[i], &answer, now);
            Ok(answer)
        })
    }

    /// A runtime and resolver for this process.
    fn build_worker(&self) -> std::result::Result<Worker, String> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()
            .map_err(|e| format!("cannot start the DNS runtime: {e}"))?;
        let resolver = {
            // hickory binds what it builds to the runtime it is built in.
            let _inside = runtime.enter();
            TokioResolver::builder_with_config(self.config.clone(), TokioRuntimeProvider::default())
                .with_options(self.opts.clone())
                .build()
                .map_err(|e| e.to_string())?
        };
        Ok(Worker { runtime, resolver })
    }

    /// The stub client for questions whose AD bit matters (`dnssec.rs`): the same name
    /// servers, each at its UDP port, and the same deadline.
    fn stub(&self) -> StubClient {
        let servers = self
            .config
            .name_servers()
            .iter()
            .map(|ns| {
                let port = ns
                    .connections
                    .iter()
                    .find(|c| matches!(c.protocol, ProtocolConfig::Udp))
                    .or(ns.connections.first())
                    .map_or(53, |c| c.port);
                SocketAddr::new(ns.ip, port)
            })
            .collect();
        StubClient {
            servers,
            deadline: self.deadline,
        }
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

/// An answer that cannot be missing: every slot of a fully cached lookup holds one.
fn unreachable_answer(name: &str) -> Error {
    Error::DnsTemporary {
        name: name.to_string(),
        reason: "internal error: a cached answer went missing".into(),
    }
}

/// A runtime and the hickory resolver bound to it; used by one lookup at a time.
struct Worker {
    runtime: tokio::runtime::Runtime,
    resolver: TokioResolver,
}

/// The DNS state of the process that made it: idle workers and the answer cache.
struct ProcessState {
    pid: u32,
    idle: Mutex<Vec<Worker>>,
    cache: Mutex<AnswerCache>,
}

/// Cached answers by (absolute lower-case name, type), each with the time it expires.
#[derive(Default)]
struct AnswerCache {
    answers: HashMap<(String, RecordType), (DnsAnswer<Lookup>, SystemTime)>,
}

impl ProcessState {
    fn new() -> ProcessState {
        ProcessState {
            pid: std::process::id(),
            idle: Mutex::default(),
            cache: Mutex::default(),
        }
    }

    fn cached(&self, fqdn: &str, rtype: RecordType, now: SystemTime) -> Option<DnsAnswer<Lookup>> {
        let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        let (answer, expires) = cache.answers.get(&(fqdn.to_string(), rtype))?;
        (now < *expires).then(|| answer.clone())
    }

    /// Caches `answer` for its TTL; an answer without one (or with 0) is not cached.
    ///
    /// TXT answers are not cached here: the policy cache already keeps the STS record's
    /// answer for its TTL (its `next_check`, R-CACHE-5), shared by every process, and a
    /// configured recheck interval or a renewal (R-CACHE-6) must reach the name server.
    fn remember(&self, fqdn: &str, rtype: RecordType, answer: &DnsAnswer<Lookup>, now: SystemTime) {
        if rtype == RecordType::TXT {
            return;
        }
        let Some(ttl) = answer.ttl().filter(|&t| t > 0) else {
            return;
        };
        let expires = now + Duration::from_secs(u64::from(ttl.min(DNS_CACHE_MAX_TTL)));
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if cache.answers.len() >= DNS_CACHE_ENTRIES {
            cache.answers.retain(|_, (_, until)| now < *until);
            if cache.answers.len() >= DNS_CACHE_ENTRIES {
                cache.answers.clear();
            }
        }
        cache
            .answers
            .insert((fqdn.to_string(), rtype), (answer.clone(), expires));
    }

    /// An idle worker, or a new one.
    fn worker(
        &self,
        build: impl FnOnce() -> std::result::Result<Worker, String>,
    ) -> std::result::Result<Worker, String> {
        let idle = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
        match idle {
            Some(worker) => Ok(worker),
            None => build(),
        }
    }

    fn give_back(&self, worker: Worker) {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < IDLE_WORKERS {
            idle.push(worker);
        }
    }
}

impl Drop for ProcessState {
    fn drop(&mut self) {
        if self.pid != std::process::id() {
            // S-41: a parent's runtimes and sockets, inherited through fork(), are never
            // closed or deregistered by the child (their epoll instances are shared): leaked.
            let idle = std::mem::take(self.idle.get_mut().unwrap_or_else(|p| p.into_inner()));
            // Kept reachable until the process ends (so leak checkers see no loss); a lock a
            // fork left held is never waited for.
            match INHERITED.try_lock() {
                Ok(mut kept) => kept.push(idle),
                Err(_) => std::mem::forget(idle),
            }
        }
    }
}

/// The runtimes a forked child inherited and must never close (see [`ProcessState`]'s drop).
static INHERITED: Mutex<Vec<Vec<Worker>>> = Mutex::new(Vec::new());

/// Where a [`HickoryDns`] keeps its [`ProcessState`]: one per process ([`PerProcess`]).
#[derive(Debug, Default)]
struct ProcessSlot {
    state: PerProcess<ProcessState>,
}

impl ProcessSlot {
    fn get(&self) -> Arc<ProcessState> {
        match self
            .state
            .get_or_try_init(|| Ok::<_, std::convert::Infallible>(ProcessState::new()))
        {
            Ok(state) => state,
            Err(never) => match never {},
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
        let mut answer = HickoryDns::select(answer, mx_record);
        sort_by_preference(&mut answer);
        Ok(answer)
    }

    fn mx_authenticated(&self, domain: &str) -> Result<Authenticated<Vec<MxRecord>>> {
        let mut found = self.stub().lookup(domain, RecordType::MX, mx_record)?;
        sort_by_preference(&mut found.answer);
        Ok(found)
    }

    fn tlsa(&self, name: &str) -> Result<Authenticated<Vec<Tlsa>>> {
        self.stub()
            .lookup(name, RecordType::TLSA, |data| match data {
                RData::TLSA(tlsa) => Some(Tlsa {
                    usage: tlsa.cert_usage.into(),
                    selector: tlsa.selector.into(),
                    matching: tlsa.matching.into(),
                    data: tlsa.cert_data.clone(),
                }),
                _ => None,
            })
    }
}

/// An MX record's data as mtasts keeps it: the host name in lower case, without the root dot.
fn mx_record(data: &RData) -> Option<MxRecord> {
    match data {
        RData::MX(mx) => Some(MxRecord {
            preference: mx.preference,
            exchange: mx
                .exchange
                .to_ascii()
                .trim_end_matches('.')
                .to_ascii_lowercase(),
        }),
        _ => None,
    }
}

fn sort_by_preference(answer: &mut DnsAnswer<Vec<MxRecord>>) {
    if let DnsAnswer::Found { records, .. } = answer {
        records.sort_by_key(|mx| mx.preference);
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
