//! Whether DANE (RFC 7672) applies to a recipient domain, decided before MTA-STS (R-APPLY-4,
//! R-SRV-6; RFC 8461 §2: where DANE TLSA records are published for an MX host, DANE takes
//! precedence).
//!
//! The policy server does not authenticate with DANE itself: it tells Postfix `dane` (or
//! `dane-only`), and Postfix looks the TLSA records up again and checks the certificate
//! against them. What is decided here is only whether that is the right answer: the MX RRset
//! validated by DNSSEC (RFC 7672 §2.2.1), and for each MX host a validated TLSA RRset at
//! `_25._tcp.<host>` with at least one usable record (RFC 7672 §3.1). "Validated" is the AD
//! bit of the configured resolver ([`DnsResolver::mx_authenticated`], [`DnsResolver::tlsa`]).

use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex, RwLock};
use std::time::{Duration, Instant};

use crate::dns::{DnsAnswer, DnsResolver};
use crate::domain::Domain;
use crate::error::{Error, Result};

/// The most MX hosts whose TLSA records are looked up for one domain; hosts beyond it count
/// as having none (so DANE is at most [`Dane::Partial`] for such a domain).
pub const DANE_MAX_HOSTS: usize = 16;
/// How long a DANE decision is kept at least and at most, whatever the TTLs say.
const MIN_TTL: u32 = 60;
const MAX_TTL: u32 = 3600;
/// The TTL used for a negative answer without an SOA.
const DEFAULT_NEGATIVE_TTL: u32 = 300;
/// The most decisions [`DaneCache`] keeps.
const CACHE_ENTRIES: usize = 65_536;

/// What DANE says for a recipient domain.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Dane {
    /// Every MX host has a usable, validated TLSA RRset: DANE applies to the whole domain.
    Applies {
        /// The MX hosts, in preference order.
        hosts: Vec<String>,
    },
    /// Some MX hosts have usable, validated TLSA records and some have none.
    Partial {
        /// The hosts with usable TLSA records.
        with_tlsa: Vec<String>,
        /// The hosts without.
        without: Vec<String>,
    },
    /// DANE does not apply.
    NotApplicable {
        /// Why not (for logs).
        reason: String,
    },
}

/// A DANE decision and how long it holds, in seconds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DaneStatus {
    /// The decision.
    pub dane: Dane,
    /// Seconds it may be reused (the smallest TTL of the answers it rests on, in [60, 3600]).
    pub ttl: u32,
}

/// Decides whether DANE applies to `domain` (R-SRV-6). `Err` when a lookup failed temporarily
/// (SERVFAIL, which a validating resolver also answers for bogus signatures, or a timeout):
/// the caller defers, and never falls back to MTA-STS.
pub fn dane_status(dns: &dyn DnsResolver, domain: &Domain) -> Result<DaneStatus> {
    let mx = dns.mx_authenticated(domain.as_str())?;
    let mut ttl = answer_ttl(&mx.answer);
    let not_applicable = |reason: &str, ttl: u32| DaneStatus {
        dane: Dane::NotApplicable {
            reason: format!("{domain}: {reason}"),
        },
        ttl: ttl.clamp(MIN_TTL, MAX_TTL),
    };
    // RFC 7672 §2.2.1: TLSA records of MX hosts count only under a validated MX RRset.
    if !mx.validated {
        return Ok(not_applicable(
            "the MX records are not DNSSEC-validated",
            ttl,
        ));
    }
    let hosts: Vec<String> = match mx.answer {
        DnsAnswer::Found { records, .. } => {
            // RFC 7505: a null MX ("MX 0 .") accepts no mail; there is nothing to secure.
            if records.iter().any(|r| r.exchange.is_empty()) {
                return Ok(not_applicable("null MX", ttl));
            }
            let mut hosts: Vec<String> = Vec::new();
            for record in records {
                if !hosts.contains(&record.exchange) {
                    hosts.push(record.exchange);
                }
            }
            hosts
        }
        // RFC 5321 §5.1, RFC 7672 §2.2.1: no MX records, the domain is its own host.
        DnsAnswer::NoData { .. } => vec![domain.as_str().to_string()],
        DnsAnswer::NxDomain { .. } => return Ok(not_applicable("no such domain", ttl)),
    };
    let mut with_tlsa = Vec::new();
    let mut without = Vec::new();
    for (i, host) in hosts.into_iter().enumerate() {
        if i >= DANE_MAX_HOSTS {
            without.push(host);
            continue;
        }
        let tlsa = dns.tlsa(&format!("_25._tcp.{host}"))?;
        ttl = ttl.min(answer_ttl(&tlsa.answer));
        // RFC 7672 §2.2: only a validated RRset with a usable record makes DANE apply.
        let usable = tlsa.validated
            && matches!(&tlsa.answer, DnsAnswer::Found { records, .. }
                if records.iter().any(|r| r.usable()));
        if usable {
            with_tlsa.push(host);
        } else {
            without.push(host);
        }
    }
    let dane = if with_tlsa.is_empty() {
        Dane::NotApplicable {
            reason: format!("{domain}: no MX host has usable, validated TLSA records"),
        }
    } else if without.is_empty() {
        Dane::Applies { hosts: with_tlsa }
    } else {
        Dane::Partial { with_tlsa, without }
    };
    Ok(DaneStatus {
        dane,
        ttl: ttl.clamp(MIN_TTL, MAX_TTL),
    })
}

fn answer_ttl<T>(answer: &DnsAnswer<T>) -> u32 {
    answer.ttl().unwrap_or(DEFAULT_NEGATIVE_TTL)
}

/// DANE decisions by domain, each kept for its TTL; failures are never kept. Shared by the
/// threads of a server (one process: DANE answers are cheap to ask again after a restart).
#[derive(Debug, Default)]
pub struct DaneCache {
    /// Each decision behind an `Arc`: a cached answer takes a count, not a copy of the host
    /// names.
    entries: RwLock<HashMap<String, (Arc<Dane>, Instant)>>,
    /// The lookups under way, by domain: concurrent requests for one domain wait for the
    /// one lookup and share its outcome, failures included (as the resolver's single flight
    /// does for MTA-STS, S-42), instead of each asking DNS.
    flights: Mutex<HashMap<String, Arc<Flight>>>,
}

/// One DANE lookup under way and, once done, its outcome.
#[derive(Debug, Default)]
struct Flight {
    outcome: Mutex<Option<Result<Arc<Dane>>>>,
    done: Condvar,
}

impl DaneCache {
    /// An empty cache.
    pub fn new() -> DaneCache {
        DaneCache::default()
    }

    /// The kept decision for `domain`, if it still holds (no DNS).
    pub fn cached(&self, domain: &Domain) -> Option<Arc<Dane>> {
        let now = Instant::now();
        let entries = self.entries.read().unwrap_or_else(|p| p.into_inner());
        let (dane, until) = entries.get(domain.as_str())?;
        (now < *until).then(|| Arc::clone(dane))
    }

    /// The decision for `domain`: the kept one while it holds, otherwise [`dane_status`]'s
    /// (kept when it is one).
    ///
    /// Concurrent calls for one domain make one lookup: the others wait for it (it is bounded
    /// by the DNS deadlines) and get its outcome.
    pub fn status(&self, dns: &dyn DnsResolver, domain: &Domain) -> Result<Arc<Dane>> {
        if let Some(dane) = self.cached(domain) {
            return Ok(dane);
        }
        let (flight, leader) = {
            let mut flights = self.flights.lock().unwrap_or_else(|p| p.into_inner());
            match flights.get(domain.as_str()) {
                Some(flight) => (Arc::clone(flight), false),
                None => {
                    let flight = Arc::new(Flight::default());
                    flights.insert(domain.as_str().to_string(), Arc::clone(&flight));
                    (flight, true)
                }
            }
        };
        if !leader {
            let mut outcome = flight.outcome.lock().unwrap_or_else(|p| p.into_inner());
            while outcome.is_none() {
                outcome = flight.done.wait(outcome).unwrap_or_else(|p| p.into_inner());
            }
            return outcome.clone().unwrap_or_else(|| {
                Err(Error::DnsTemporary {
                    name: domain.as_str().to_string(),
                    reason: "the DANE lookup ended without an answer".into(),
                })
            });
        }
        let outcome = self.look_up(dns, domain);
        *flight.outcome.lock().unwrap_or_else(|p| p.into_inner()) = Some(outcome.clone());
        flight.done.notify_all();
        self.flights
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(domain.as_str());
        outcome
    }

    /// One lookup, its decision kept.
    fn look_up(&self, dns: &dyn DnsResolver, domain: &Domain) -> Result<Arc<Dane>> {
        let now = Instant::now();
        let status = dane_status(dns, domain)?;
        let until = now + Duration::from_secs(u64::from(status.ttl));
        let mut entries = self.entries.write().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= CACHE_ENTRIES {
            entries.retain(|_, (_, kept)| now < *kept);
            if entries.len() >= CACHE_ENTRIES {
                // Still full of current decisions: every other one goes (the map's order is
                // unrelated to use), so a large fleet of domains is asked again gradually
                // rather than all at once.
                let mut keep = false;
                entries.retain(|_, _| {
                    keep = !keep;
                    keep
                });
            }
        }
        let dane = Arc::new(status.dane);
        entries.insert(domain.as_str().to_string(), (Arc::clone(&dane), until));
        Ok(dane)
    }

    /// Forgets every decision (a configuration reload).
    pub fn clear(&self) {
        self.entries
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dnssec::{Authenticated, Tlsa};
    use crate::error::Error;
    use crate::mx::MxRecord;
    use std::net::IpAddr;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// One TLSA answer of [`FakeDns`]: name, records (`Err`: SERVFAIL), validated.
    type TlsaAnswer = (&'static str, std::result::Result<Vec<Tlsa>, ()>, bool);

    /// A DNS whose MX and TLSA answers are set per test; `Err` entries are SERVFAIL.
    #[derive(Debug, Default)]
    struct FakeDns {
        mx: Option<(std::result::Result<Vec<&'static str>, ()>, bool)>,
        tlsa: Vec<TlsaAnswer>,
        queries: AtomicUsize,
        /// How long each MX answer takes.
        delay: Duration,
    }

    fn servfail(name: &str) -> Error {
        Error::DnsTemporary {
            name: name.into(),
            reason: "server answered SERVFAIL".into(),
        }
    }

    impl DnsResolver for FakeDns {
        fn txt(&self, _: &str) -> Result<DnsAnswer<Vec<Vec<u8>>>> {
            unreachable!("DANE asks no TXT")
        }
        fn ip(&self, _: &str) -> Result<DnsAnswer<Vec<IpAddr>>> {
            unreachable!("DANE asks no addresses")
        }
        fn mx(&self, _: &str) -> Result<DnsAnswer<Vec<MxRecord>>> {
            unreachable!("DANE asks for the MX with its AD bit")
        }
        fn mx_authenticated(&self, domain: &str) -> Result<Authenticated<Vec<MxRecord>>> {
            self.queries.fetch_add(1, Ordering::SeqCst);
            std::thread::sleep(self.delay);
            let (hosts, validated) = self.mx.clone().expect("an MX answer is set");
            let hosts = hosts.map_err(|()| servfail(domain))?;
            let answer = if hosts.is_empty() {
                DnsAnswer::NoData { ttl: Some(600) }
            } else {
                DnsAnswer::Found {
                    records: hosts
                        .iter()
                        .enumerate()
                        .map(|(i, h)| MxRecord {
                            preference: i as u16 * 10,
                            exchange: h.to_string(),
                        })
                        .collect(),
                    ttl: 900,
                }
            };
            Ok(Authenticated { answer, validated })
        }
        fn tlsa(&self, name: &str) -> Result<Authenticated<Vec<Tlsa>>> {
            self.queries.fetch_add(1, Ordering::SeqCst);
            let Some((_, records, validated)) = self.tlsa.iter().find(|(n, _, _)| *n == name)
            else {
                return Ok(Authenticated {
                    answer: DnsAnswer::NxDomain { ttl: Some(120) },
                    validated: true,
                });
            };
            let records = records.clone().map_err(|()| servfail(name))?;
            let answer = if records.is_empty() {
                DnsAnswer::NoData { ttl: Some(120) }
            } else {
                DnsAnswer::Found { records, ttl: 300 }
            };
            Ok(Authenticated {
                answer,
                validated: *validated,
            })
        }
    }

    fn dane_ee() -> Vec<Tlsa> {
        vec![Tlsa {
            usage: 3,
            selector: 1,
            matching: 1,
            data: vec![1; 32],
        }]
    }

    fn pkix_ee() -> Vec<Tlsa> {
        vec![Tlsa {
            usage: 1,
            selector: 1,
            matching: 1,
            data: vec![1; 32],
        }]
    }

    fn decide(dns: &FakeDns) -> Result<Dane> {
        dane_status(dns, &Domain::new("example.com").unwrap()).map(|s| s.dane)
    }

    #[test]
    fn dane_applies_only_under_validated_answers_with_usable_records() {
        let applies = |hosts: &[&str]| Dane::Applies {
            hosts: hosts.iter().map(|h| h.to_string()).collect(),
        };
        // (MX hosts, MX validated, TLSA answers, expected: Some(applies) or None = not)
        type Row = (
            Vec<&'static str>,
            bool,
            Vec<TlsaAnswer>,
            Option<Dane>,
            &'static str,
        );
        let rows: Vec<Row> = vec![
            (
                vec!["mx1.example.com", "mx2.example.com"],
                true,
                vec![
                    ("_25._tcp.mx1.example.com", Ok(dane_ee()), true),
                    ("_25._tcp.mx2.example.com", Ok(dane_ee()), true),
                ],
                Some(applies(&["mx1.example.com", "mx2.example.com"])),
                "S-76: every MX host has validated DANE-EE records",
            ),
            (
                vec!["mx1.example.com"],
                false,
                vec![("_25._tcp.mx1.example.com", Ok(dane_ee()), true)],
                None,
                "an MX RRset that is not validated: TLSA records do not count",
            ),
            (
                vec!["mx1.example.com"],
                true,
                vec![("_25._tcp.mx1.example.com", Ok(dane_ee()), false)],
                None,
                "TLSA records that are not validated do not count",
            ),
            (
                vec!["mx1.example.com"],
                true,
                vec![("_25._tcp.mx1.example.com", Ok(pkix_ee()), true)],
                None,
                "only PKIX usages: no usable record",
            ),
            (
                vec!["mx1.example.com"],
                true,
                vec![],
                None,
                "no TLSA records (validated NXDOMAIN)",
            ),
            (
                vec![],
                true,
                vec![("_25._tcp.example.com", Ok(dane_ee()), true)],
                Some(applies(&["example.com"])),
                "no MX records: the domain is its own host",
            ),
            (vec![""], true, vec![], None, "a null MX accepts no mail"),
        ];
        for (hosts, validated, tlsa, expected, why) in rows {
            let dns = FakeDns {
                mx: Some((Ok(hosts), validated)),
                tlsa,
                ..FakeDns::default()
            };
            let got = decide(&dns).expect(why);
            match expected {
                Some(dane) => assert_eq!(got, dane, "{why}"),
                None => assert!(matches!(got, Dane::NotApplicable { .. }), "{why}: {got:?}"),
            }
        }
    }

    #[test]
    fn some_hosts_with_records_is_partial() {
        let dns = FakeDns {
            mx: Some((Ok(vec!["a.example.com", "b.example.com"]), true)),
            tlsa: vec![("_25._tcp.b.example.com", Ok(dane_ee()), true)],
            ..FakeDns::default()
        };
        assert_eq!(
            decide(&dns).unwrap(),
            Dane::Partial {
                with_tlsa: vec!["b.example.com".into()],
                without: vec!["a.example.com".into()],
            }
        );
    }

    #[test]
    fn a_temporary_failure_is_an_error_never_a_fall_back() {
        // S-77: SERVFAIL for a TLSA lookup (what a validating resolver answers for bogus
        // signatures), and SERVFAIL for the MX lookup.
        let tlsa_fails = FakeDns {
            mx: Some((Ok(vec!["mx1.example.com", "mx2.example.com"]), true)),
            tlsa: vec![
                ("_25._tcp.mx1.example.com", Ok(dane_ee()), true),
                ("_25._tcp.mx2.example.com", Err(()), false),
            ],
            ..FakeDns::default()
        };
        assert!(matches!(
            decide(&tlsa_fails),
            Err(Error::DnsTemporary { .. })
        ));
        let mx_fails = FakeDns {
            mx: Some((Err(()), false)),
            ..FakeDns::default()
        };
        assert!(matches!(decide(&mx_fails), Err(Error::DnsTemporary { .. })));
    }

    #[test]
    fn the_ttl_is_the_smallest_of_the_answers_clamped() {
        let dns = FakeDns {
            mx: Some((Ok(vec!["mx1.example.com"]), true)),
            tlsa: vec![("_25._tcp.mx1.example.com", Ok(dane_ee()), true)],
            ..FakeDns::default()
        };
        let status = dane_status(&dns, &Domain::new("example.com").unwrap()).unwrap();
        assert_eq!(status.ttl, 300, "min(MX 900, TLSA 300)");
    }

    #[test]
    fn the_cache_keeps_decisions_but_never_failures() {
        let domain = Domain::new("example.com").unwrap();
        let cache = DaneCache::new();
        let dns = FakeDns {
            mx: Some((Ok(vec!["mx1.example.com"]), true)),
            tlsa: vec![("_25._tcp.mx1.example.com", Ok(dane_ee()), true)],
            ..FakeDns::default()
        };
        let first = cache.status(&dns, &domain).unwrap();
        let asked = dns.queries.load(Ordering::SeqCst);
        assert_eq!(cache.status(&dns, &domain).unwrap(), first);
        assert_eq!(
            dns.queries.load(Ordering::SeqCst),
            asked,
            "answered from the cache"
        );
        let failing = FakeDns {
            mx: Some((Err(()), false)),
            ..FakeDns::default()
        };
        let other = Domain::new("example.net").unwrap();
        assert!(cache.status(&failing, &other).is_err());
        assert!(cache.status(&failing, &other).is_err());
        assert_eq!(
            failing.queries.load(Ordering::SeqCst),
            2,
            "a failure is asked again"
        );
        cache.clear();
        cache.status(&dns, &domain).unwrap();
        assert!(dns.queries.load(Ordering::SeqCst) > asked, "cleared");
    }

    #[test]
    fn concurrent_requests_for_one_domain_make_one_lookup_and_share_its_outcome() {
        let domain = Domain::new("example.com").unwrap();
        for (mx, queries) in [(Ok(vec!["mx1.example.com"]), 2), (Err(()), 1)] {
            let cache = DaneCache::new();
            let ok = mx.is_ok();
            let dns = FakeDns {
                mx: Some((mx, true)),
                tlsa: vec![("_25._tcp.mx1.example.com", Ok(dane_ee()), true)],
                delay: Duration::from_millis(200),
                ..FakeDns::default()
            };
            // All at once; the lookup takes 200 ms, far longer than the calls take to start.
            let start = std::sync::Barrier::new(16);
            let outcomes: Vec<_> = std::thread::scope(|scope| {
                let asked: Vec<_> = (0..16)
                    .map(|_| {
                        scope.spawn(|| {
                            start.wait();
                            cache.status(&dns, &domain)
                        })
                    })
                    .collect();
                asked.into_iter().map(|t| t.join().unwrap()).collect()
            });
            assert!(outcomes.iter().all(|o| o.is_ok() == ok), "{outcomes:?}");
            assert_eq!(
                dns.queries.load(Ordering::SeqCst),
                queries,
                "one lookup for 16 requests"
            );
            assert!(
                cache.flights.lock().unwrap().is_empty(),
                "nothing left under way"
            );
        }
    }
}
