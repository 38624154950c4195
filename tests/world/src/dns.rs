//! An in-process DNS server on loopback (UDP and TCP on one port) answering from a mutable zone.
//!
//! It behaves like a recursive resolver that knows only [`Zone`]: RA and AA are set, CNAME chains
//! inside the zone are followed, names absent from the zone are NXDOMAIN, names present without
//! the asked type are NODATA; both negative answers carry an SOA so resolvers can cache them.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use hickory_proto::op::{Edns, Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA, CNAME, MX, SOA, TXT};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};

use crate::conns::{Connections, accept_loop, lock};
use crate::normalize_name;

/// Default TTL of records built with the [`ZoneRecord`] constructors.
pub const DEFAULT_TTL: u32 = 300;

/// Default negative-caching TTL (SOA TTL and minimum) of NXDOMAIN and NODATA answers.
pub const DEFAULT_NEGATIVE_TTL: u32 = 60;

/// Longest CNAME chain followed inside the zone before answering SERVFAIL.
const MAX_CNAME_CHAIN: usize = 8;

/// How often the UDP loop wakes up to check for shutdown.
const UDP_POLL: Duration = Duration::from_millis(20);

/// Idle timeout of a DNS-over-TCP connection.
const TCP_IDLE: Duration = Duration::from_secs(5);

/// The data of one resource record.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RecordData {
    /// TXT: the character-strings of one RR, each at most 255 bytes, any bytes (not only UTF-8).
    Txt(Vec<Vec<u8>>),
    /// CNAME to this target name.
    Cname(String),
    /// IPv4 address.
    A(Ipv4Addr),
    /// IPv6 address.
    Aaaa(Ipv6Addr),
    /// Mail exchanger.
    Mx {
        /// Lower is preferred.
        preference: u16,
        /// The MX host name.
        exchange: String,
    },
}

impl RecordData {
    /// The RR type of this data.
    pub fn record_type(&self) -> RecordType {
        match self {
            RecordData::Txt(_) => RecordType::TXT,
            RecordData::Cname(_) => RecordType::CNAME,
            RecordData::A(_) => RecordType::A,
            RecordData::Aaaa(_) => RecordType::AAAA,
            RecordData::Mx { .. } => RecordType::MX,
        }
    }
}

/// One resource record of the zone (its owner name is the zone key).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ZoneRecord {
    /// Time to live, in seconds.
    pub ttl: u32,
    /// The record data.
    pub data: RecordData,
}

impl ZoneRecord {
    /// A record with [`DEFAULT_TTL`].
    pub fn new(data: RecordData) -> ZoneRecord {
        ZoneRecord {
            ttl: DEFAULT_TTL,
            data,
        }
    }

    /// The same record with another TTL.
    pub fn with_ttl(mut self, ttl: u32) -> ZoneRecord {
        self.ttl = ttl;
        self
    }

    /// A TXT RR made of these character-strings (bytes, not necessarily UTF-8).
    pub fn txt<I, S>(strings: I) -> ZoneRecord
    where
        I: IntoIterator<Item = S>,
        S: Into<Vec<u8>>,
    {
        ZoneRecord::new(RecordData::Txt(
            strings.into_iter().map(Into::into).collect(),
        ))
    }

    /// A TXT RR holding one character-string.
    pub fn txt1(text: &str) -> ZoneRecord {
        ZoneRecord::txt([text])
    }

    /// A CNAME to `target`.
    pub fn cname(target: &str) -> ZoneRecord {
        ZoneRecord::new(RecordData::Cname(target.to_owned()))
    }

    /// An A record.
    pub fn a(addr: Ipv4Addr) -> ZoneRecord {
        ZoneRecord::new(RecordData::A(addr))
    }

    /// An AAAA record.
    pub fn aaaa(addr: Ipv6Addr) -> ZoneRecord {
        ZoneRecord::new(RecordData::Aaaa(addr))
    }

    /// An MX record.
    pub fn mx(preference: u16, exchange: &str) -> ZoneRecord {
        ZoneRecord::new(RecordData::Mx {
            preference,
            exchange: exchange.to_owned(),
        })
    }
}

/// A canned failure for a name, whatever type is asked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Behaviour {
    /// NXDOMAIN with an SOA (even if the name would otherwise exist).
    NxDomain,
    /// SERVFAIL.
    ServFail,
    /// REFUSED.
    Refused,
    /// Never answer (the client times out).
    Timeout,
}

/// What the zone holds for one name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ZoneEntry {
    /// These records (empty: the name exists but has no data, so every type is NODATA).
    Records(Vec<ZoneRecord>),
    /// A canned failure.
    Behaviour(Behaviour),
}

#[derive(Debug)]
struct ZoneData {
    names: HashMap<String, ZoneEntry>,
    negative_ttl: u32,
}

/// The names the DNS server knows, shared and changeable while the server runs.
///
/// Names are compared case-insensitively and without a trailing dot; cloning a `Zone` gives
/// another handle to the same data.
#[derive(Clone, Debug)]
pub struct Zone {
    inner: Arc<RwLock<ZoneData>>,
}

impl Default for Zone {
    fn default() -> Self {
        Zone::new()
    }
}

impl Zone {
    /// An empty zone.
    pub fn new() -> Zone {
        Zone {
            inner: Arc::new(RwLock::new(ZoneData {
                names: HashMap::new(),
                negative_ttl: DEFAULT_NEGATIVE_TTL,
            })),
        }
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, ZoneData> {
        self.inner.write().unwrap_or_else(PoisonError::into_inner)
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, ZoneData> {
        self.inner.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// Replaces whatever `name` had with these records (empty: NODATA for every type).
    pub fn set_records(&self, name: &str, records: Vec<ZoneRecord>) {
        self.write()
            .names
            .insert(normalize_name(name), ZoneEntry::Records(records));
    }

    /// Adds one record to `name` (replacing a behaviour, if one was set).
    pub fn add_record(&self, name: &str, record: ZoneRecord) {
        let mut data = self.write();
        let entry = data
            .names
            .entry(normalize_name(name))
            .or_insert_with(|| ZoneEntry::Records(Vec::new()));
        match entry {
            ZoneEntry::Records(records) => records.push(record),
            ZoneEntry::Behaviour(_) => *entry = ZoneEntry::Records(vec![record]),
        }
    }

    /// Replaces the TXT records of `name` with these RRs (each a list of character-strings),
    /// keeping its other records.
    pub fn set_txt(&self, name: &str, rrs: Vec<Vec<Vec<u8>>>) {
        let mut data = self.write();
        let entry = data
            .names
            .entry(normalize_name(name))
            .or_insert_with(|| ZoneEntry::Records(Vec::new()));
        let mut records = match entry {
            ZoneEntry::Records(records) => std::mem::take(records),
            ZoneEntry::Behaviour(_) => Vec::new(),
        };
        records.retain(|r| r.data.record_type() != RecordType::TXT);
        records.extend(rrs.into_iter().map(|s| ZoneRecord::new(RecordData::Txt(s))));
        *entry = ZoneEntry::Records(records);
    }

    /// Replaces whatever `name` had with `entry`.
    pub fn set_entry(&self, name: &str, entry: ZoneEntry) {
        self.write().names.insert(normalize_name(name), entry);
    }

    /// Makes every query for `name` fail this way.
    pub fn set_behaviour(&self, name: &str, behaviour: Behaviour) {
        self.write()
            .names
            .insert(normalize_name(name), ZoneEntry::Behaviour(behaviour));
    }

    /// Removes `name` (it becomes NXDOMAIN, or NODATA if a name below it exists).
    /// Returns whether it was present.
    pub fn remove(&self, name: &str) -> bool {
        self.write().names.remove(&normalize_name(name)).is_some()
    }

    /// What the zone holds for `name`, if anything.
    pub fn get(&self, name: &str) -> Option<ZoneEntry> {
        self.read().names.get(&normalize_name(name)).cloned()
    }

    /// Every name in the zone (normalised), sorted.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.read().names.keys().cloned().collect();
        names.sort();
        names
    }

    /// Sets the TTL of the SOA sent with NXDOMAIN and NODATA answers (negative caching).
    pub fn set_negative_ttl(&self, ttl: u32) {
        self.write().negative_ttl = ttl;
    }
}

/// Which transport a query came over.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Transport {
    /// UDP datagram.
    Udp,
    /// TCP with a two-byte length prefix.
    Tcp,
}

/// One query the server received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueryLogEntry {
    /// The queried name, lowercase, without trailing dot.
    pub name: String,
    /// The queried type.
    pub record_type: RecordType,
    /// The transport it came over.
    pub transport: Transport,
}

/// Most queries kept in the log (counters keep counting beyond it).
const MAX_LOG: usize = 10_000;

#[derive(Default)]
struct Stats {
    counts: HashMap<(String, RecordType), u64>,
    total: u64,
    log: Vec<QueryLogEntry>,
}

/// State shared by the server threads.
struct Shared {
    zone: Zone,
    stats: Mutex<Stats>,
    stop: Arc<AtomicBool>,
}

/// A DNS server on `127.0.0.1`, UDP and TCP on the same ephemeral port, answering from a [`Zone`].
///
/// Dropping it (or calling [`DnsServer::shutdown`]) stops every thread it started.
pub struct DnsServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    conns: Arc<Connections>,
    threads: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for DnsServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DnsServer")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl DnsServer {
    /// Starts a server answering from `zone` (keep a clone of it to change answers later, or use
    /// [`DnsServer::zone`]).
    pub fn start(zone: Zone) -> io::Result<DnsServer> {
        let (udp, tcp) = bind_pair()?;
        let addr = udp.local_addr()?;
        udp.set_read_timeout(Some(UDP_POLL))?;
        let stop = Arc::new(AtomicBool::new(false));
        let shared = Arc::new(Shared {
            zone,
            stats: Mutex::new(Stats::default()),
            stop: Arc::clone(&stop),
        });
        let conns = Arc::new(Connections::default());

        let mut server = DnsServer {
            addr,
            shared: Arc::clone(&shared),
            conns: Arc::clone(&conns),
            threads: Vec::new(),
        };
        let udp_shared = Arc::clone(&shared);
        server.threads.push(
            thread::Builder::new()
                .name("testworld-dns-udp".into())
                .spawn(move || udp_loop(&udp, &udp_shared))?,
        );
        let tcp_shared = Arc::clone(&shared);
        server.threads.push(
            thread::Builder::new()
                .name("testworld-dns-tcp".into())
                .spawn(move || {
                    let _ = accept_loop(tcp, stop, |stream| {
                        let s = Arc::clone(&tcp_shared);
                        conns.spawn(stream, "testworld-dns-conn", move |stream| {
                            tcp_conn(stream, &s);
                        });
                    });
                })?,
        );
        Ok(server)
    }

    /// The address clients should use (`127.0.0.1:port`, UDP and TCP).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The zone this server answers from.
    pub fn zone(&self) -> &Zone {
        &self.shared.zone
    }

    /// How many queries for (`name`, `record_type`) arrived (over UDP and TCP together; a
    /// resolver retrying over TCP counts twice). `name` is compared case-insensitively.
    pub fn queries(&self, name: &str, record_type: RecordType) -> u64 {
        let stats = lock(&self.shared.stats);
        stats
            .counts
            .get(&(normalize_name(name), record_type))
            .copied()
            .unwrap_or(0)
    }

    /// How many queries of any type for `name` arrived.
    pub fn queries_for_name(&self, name: &str) -> u64 {
        let name = normalize_name(name);
        let stats = lock(&self.shared.stats);
        stats
            .counts
            .iter()
            .filter(|((n, _), _)| *n == name)
            .map(|(_, c)| *c)
            .sum()
    }

    /// How many queries arrived in total.
    pub fn total_queries(&self) -> u64 {
        lock(&self.shared.stats).total
    }

    /// The queries received so far, oldest first (the first 10 000 only).
    pub fn query_log(&self) -> Vec<QueryLogEntry> {
        lock(&self.shared.stats).log.clone()
    }

    /// Sets every counter back to zero and empties the log.
    pub fn reset_counters(&self) {
        *lock(&self.shared.stats) = Stats::default();
    }

    /// Stops the server and joins its threads. Also done on drop.
    pub fn shutdown(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        self.conns.shutdown_all();
    }
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Binds a UDP socket on an ephemeral loopback port and a TCP listener on the same port.
fn bind_pair() -> io::Result<(UdpSocket, TcpListener)> {
    let mut last_err = None;
    for _ in 0..32 {
        let udp = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))?;
        let port = udp.local_addr()?.port();
        match TcpListener::bind((Ipv4Addr::LOCALHOST, port)) {
            Ok(tcp) => return Ok((udp, tcp)),
            Err(e) => last_err = Some(e),
        }
    }
    Err(last_err.unwrap_or_else(|| io::Error::other("no free port pair")))
}

fn udp_loop(socket: &UdpSocket, shared: &Shared) {
    let mut buf = [0u8; 4096];
    while !shared.stop.load(Ordering::SeqCst) {
        let (len, peer) = match socket.recv_from(&mut buf) {
            Ok(x) => x,
            // Timeouts let us check `stop`; other errors (ICMP port unreachable reported on
            // Windows, …) are not fatal to a test server.
            Err(_) => continue,
        };
        if let Some(reply) = handle(&buf[..len], shared, Transport::Udp) {
            let _ = socket.send_to(&reply, peer);
        }
    }
}

fn tcp_conn(mut stream: TcpStream, shared: &Shared) {
    if stream.set_read_timeout(Some(TCP_IDLE)).is_err()
        || stream.set_write_timeout(Some(TCP_IDLE)).is_err()
    {
        return;
    }
    loop {
        let mut len = [0u8; 2];
        if stream.read_exact(&mut len).is_err() {
            return;
        }
        let mut msg = vec![0u8; usize::from(u16::from_be_bytes(len))];
        if stream.read_exact(&mut msg).is_err() {
            return;
        }
        if shared.stop.load(Ordering::SeqCst) {
            return;
        }
        if let Some(reply) = handle(&msg, shared, Transport::Tcp) {
            let Ok(n) = u16::try_from(reply.len()) else {
                return;
            };
            let mut framed = Vec::with_capacity(reply.len() + 2);
            framed.extend_from_slice(&n.to_be_bytes());
            framed.extend_from_slice(&reply);
            if stream.write_all(&framed).is_err() {
                return;
            }
        }
    }
}

/// Decodes one query and encodes the reply; `None` means "send nothing".
fn handle(packet: &[u8], shared: &Shared, transport: Transport) -> Option<Vec<u8>> {
    let request = match Message::from_vec(packet) {
        Ok(m) => m,
        Err(_) => {
            // Too short to even carry an ID: drop. Otherwise answer FORMERR.
            let id = u16::from_be_bytes([*packet.first()?, *packet.get(1)?]);
            packet.get(11)?;
            return Message::error_msg(id, OpCode::Query, ResponseCode::FormErr)
                .to_vec()
                .ok();
        }
    };
    if request.metadata.message_type != MessageType::Query {
        return None;
    }
    let mut response = Message::response(request.metadata.id, request.metadata.op_code);
    response.metadata = hickory_proto::op::Metadata::response_from_request(&request.metadata);
    response.metadata.recursion_available = true;
    response.metadata.authoritative = true;
    response.add_queries(request.queries.iter().cloned());
    if let Some(req_edns) = &request.edns {
        let mut edns = Edns::new();
        edns.set_max_payload(req_edns.max_payload().max(512));
        response.set_edns(edns);
    }

    if request.metadata.op_code != OpCode::Query {
        response.metadata.response_code = ResponseCode::NotImp;
    } else if request.queries.len() != 1 {
        response.metadata.response_code = ResponseCode::FormErr;
    } else {
        let query = &request.queries[0];
        record_query(shared, query.name(), query.query_type(), transport);
        if query.query_class() != DNSClass::IN {
            response.metadata.response_code = ResponseCode::Refused;
        } else if !resolve(shared, query.name(), query.query_type(), &mut response) {
            return None; // Behaviour::Timeout
        }
    }

    let limit = match (&request.edns, transport) {
        (_, Transport::Tcp) => usize::from(u16::MAX),
        (Some(edns), Transport::Udp) => usize::from(edns.max_payload().max(512)),
        (None, Transport::Udp) => 512,
    };
    match response.to_vec() {
        Ok(bytes) if bytes.len() <= limit => Some(bytes),
        Ok(_) => response.truncate().to_vec().ok(),
        Err(_) => {
            // Unencodable data (e.g. a TXT string over 255 bytes) is a zone mistake: SERVFAIL.
            let mut fail = response.truncate();
            fail.metadata.truncation = false;
            fail.metadata.response_code = ResponseCode::ServFail;
            fail.to_vec().ok()
        }
    }
}

fn record_query(shared: &Shared, name: &Name, record_type: RecordType, transport: Transport) {
    let key = normalize_name(&name.to_ascii());
    let mut stats = lock(&shared.stats);
    stats.total += 1;
    if stats.log.len() < MAX_LOG {
        stats.log.push(QueryLogEntry {
            name: key.clone(),
            record_type,
            transport,
        });
    }
    *stats.counts.entry((key, record_type)).or_insert(0) += 1;
}

/// Fills the answer of `response`; returns `false` when the server must not answer at all.
fn resolve(shared: &Shared, qname: &Name, qtype: RecordType, response: &mut Message) -> bool {
    let zone = shared.zone.read();
    let mut owner = qname.clone();
    for _ in 0..MAX_CNAME_CHAIN {
        let key = normalize_name(&owner.to_ascii());
        let entry = match zone.names.get(&key) {
            Some(entry) => entry,
            None => {
                // An empty non-terminal (a name below this one exists) is NODATA, not NXDOMAIN.
                let suffix = format!(".{key}");
                let exists = zone.names.keys().any(|n| n.ends_with(&suffix));
                if !exists {
                    response.metadata.response_code = ResponseCode::NXDomain;
                }
                add_soa(&owner, zone.negative_ttl, response);
                return true;
            }
        };
        let records = match entry {
            ZoneEntry::Behaviour(Behaviour::Timeout) => return false,
            ZoneEntry::Behaviour(Behaviour::ServFail) => {
                response.metadata.response_code = ResponseCode::ServFail;
                return true;
            }
            ZoneEntry::Behaviour(Behaviour::Refused) => {
                response.metadata.response_code = ResponseCode::Refused;
                return true;
            }
            ZoneEntry::Behaviour(Behaviour::NxDomain) => {
                response.metadata.response_code = ResponseCode::NXDomain;
                add_soa(&owner, zone.negative_ttl, response);
                return true;
            }
            ZoneEntry::Records(records) => records,
        };
        let matching: Vec<&ZoneRecord> = records
            .iter()
            .filter(|r| qtype == RecordType::ANY || r.data.record_type() == qtype)
            .collect();
        if !matching.is_empty() {
            for r in matching {
                if let Some(record) = to_record(&owner, r) {
                    response.add_answer(record);
                }
            }
            return true;
        }
        let cname = records.iter().find_map(|r| match &r.data {
            RecordData::Cname(target) => Some((r, target)),
            _ => None,
        });
        match cname {
            Some((r, target)) => {
                let Some(record) = to_record(&owner, r) else {
                    response.metadata.response_code = ResponseCode::ServFail;
                    return true;
                };
                let Ok(next) = Name::from_ascii(format!("{}.", normalize_name(target))) else {
                    response.metadata.response_code = ResponseCode::ServFail;
                    return true;
                };
                response.add_answer(record);
                owner = next;
            }
            None => {
                add_soa(&owner, zone.negative_ttl, response);
                return true;
            }
        }
    }
    // CNAME loop or overly long chain.
    response.metadata.response_code = ResponseCode::ServFail;
    true
}

/// Adds an SOA for the top-level domain of `owner` to the authority section.
fn add_soa(owner: &Name, ttl: u32, response: &mut Message) {
    let key = normalize_name(&owner.to_ascii());
    let apex = key.rsplit('.').next().unwrap_or("");
    let apex = if apex.is_empty() {
        Name::root()
    } else {
        match Name::from_ascii(format!("{apex}.")) {
            Ok(n) => n,
            Err(_) => Name::root(),
        }
    };
    let (Ok(mname), Ok(rname)) = (
        Name::from_ascii("ns.testworld.invalid."),
        Name::from_ascii("hostmaster.testworld.invalid."),
    ) else {
        return;
    };
    let soa = SOA::new(mname, rname, 1, 3600, 600, 86400, ttl);
    response.add_authority(Record::from_rdata(apex, ttl, RData::SOA(soa)));
}

fn to_record(owner: &Name, r: &ZoneRecord) -> Option<Record> {
    let name_of = |s: &str| Name::from_ascii(format!("{}.", normalize_name(s))).ok();
    let rdata = match &r.data {
        RecordData::Txt(strings) => {
            RData::TXT(TXT::from_bytes(strings.iter().map(Vec::as_slice).collect()))
        }
        RecordData::Cname(target) => RData::CNAME(CNAME(name_of(target)?)),
        RecordData::A(ip) => RData::A(A(*ip)),
        RecordData::Aaaa(ip) => RData::AAAA(AAAA(*ip)),
        RecordData::Mx {
            preference,
            exchange,
        } => RData::MX(MX::new(*preference, name_of(exchange)?)),
    };
    Some(Record::from_rdata(owner.clone(), r.ttl, rdata))
}
