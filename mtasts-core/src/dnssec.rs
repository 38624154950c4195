//! DNS answers with the resolver's word on their validation: the AD ("authentic data") bit
//! of the configured validating resolver (R-SRV-6), and the TLSA records DANE needs.
//!
//! hickory-resolver, as built here (no DNSSEC feature), neither asks for nor reports the AD
//! bit, so these questions go through a small stub client of their own: one question per
//! message, the AD bit set in the query (RFC 6840 §5.7: a resolver then reports whether it
//! validated the answer without sending the signatures), UDP first and TCP when the answer is
//! truncated, the configured name servers in turn, all within one deadline. mtasts never
//! validates signatures itself: "validated" means the resolver said so, which is only as
//! trustworthy as the path to that resolver (run it on the same host, `127.0.0.1`).

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use hickory_proto::op::{Edns, Message, MessageType, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};

use crate::dns::DnsAnswer;
use crate::error::{Error, Result};

/// A DNS answer and whether the resolver validated it with DNSSEC (the AD bit).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Authenticated<T> {
    /// The answer.
    pub answer: DnsAnswer<T>,
    /// The resolver set the AD bit: it validated the answer (or the proof that there is none).
    pub validated: bool,
}

/// One TLSA record (RFC 6698 §2.1), its fields as published.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tlsa {
    /// Certificate usage: 0 PKIX-TA, 1 PKIX-EE, 2 DANE-TA, 3 DANE-EE.
    pub usage: u8,
    /// Selector: 0 the whole certificate, 1 its public key.
    pub selector: u8,
    /// Matching type: 0 exact, 1 SHA-256, 2 SHA-512.
    pub matching: u8,
    /// The certificate association data.
    pub data: Vec<u8>,
}

impl Tlsa {
    /// Whether an SMTP client can use this record (RFC 7672 §3.1): usage DANE-TA(2) or
    /// DANE-EE(3) (the PKIX usages are not for SMTP), a known selector and matching type, and
    /// data of the length the matching type implies. A TLSA RRset with no usable record is
    /// as if there were none (RFC 7672 §2.2).
    pub fn usable(&self) -> bool {
        let length_ok = match self.matching {
            0 => !self.data.is_empty(),
            1 => self.data.len() == 32,
            2 => self.data.len() == 64,
            _ => false,
        };
        matches!(self.usage, 2 | 3) && matches!(self.selector, 0 | 1) && length_ok
    }
}

/// Largest UDP answer asked for (the DNS flag day 2020 value).
const UDP_PAYLOAD: u16 = 1232;
/// Largest DNS message read over TCP.
const TCP_MAX: usize = 65_535;

/// The stub client: the name servers to ask, in order, and the deadline of one question.
#[derive(Clone, Debug)]
pub(crate) struct StubClient {
    pub(crate) servers: Vec<SocketAddr>,
    pub(crate) deadline: Duration,
}

/// What one exchange with one server gave.
enum Exchange {
    Answer(Message),
    /// Try the next server (the reason kept for the error if none answers).
    Next(String),
}

impl StubClient {
    /// Asks `name` `rtype` with the AD bit set; the answer with its AD bit. Temporary failures
    /// (every server failed, SERVFAIL — which is also what a validating resolver answers for
    /// bogus data — REFUSED, the deadline) are [`Error::DnsTemporary`], never "no record".
    pub(crate) fn query(&self, name: &str, rtype: RecordType) -> Result<(Message, bool)> {
        let temporary = |reason: String| Error::DnsTemporary {
            name: name.to_string(),
            reason,
        };
        let fqdn = Name::from_ascii(format!("{}.", name.trim_end_matches('.')))
            .map_err(|e| temporary(format!("not a DNS name: {e}")))?;
        let until = Instant::now() + self.deadline;
        let mut last = "no name server configured".to_string();
        for server in &self.servers {
            let id = random_id();
            let mut query = Message::query();
            query.metadata.id = id;
            query.metadata.recursion_desired = true;
            // RFC 6840 §5.7: AD in a query asks the resolver to say whether it validated.
            query.metadata.authentic_data = true;
            query.add_query(Query::query(fqdn.clone(), rtype));
            let mut edns = Edns::new();
            edns.set_max_payload(UDP_PAYLOAD);
            query.set_edns(edns);
            let wire = query
                .to_vec()
                .map_err(|e| temporary(format!("cannot encode the query: {e}")))?;
            match exchange(*server, &wire, id, &fqdn, rtype, until) {
                Exchange::Answer(reply) => {
                    let code = reply.metadata.response_code;
                    if code == ResponseCode::NoError || code == ResponseCode::NXDomain {
                        let validated = reply.metadata.authentic_data;
                        return Ok((reply, validated));
                    }
                    last = format!("{server} answered {code}");
                }
                Exchange::Next(reason) => last = reason,
            }
            if Instant::now() >= until {
                break;
            }
        }
        Err(temporary(last))
    }

    /// Records of `rtype` at `name` (CNAMEs followed by the resolver), picked by `pick`, with
    /// the AD bit; NXDOMAIN and NODATA keep the SOA's negative TTL.
    pub(crate) fn lookup<T>(
        &self,
        name: &str,
        rtype: RecordType,
        pick: impl Fn(&RData) -> Option<T>,
    ) -> Result<Authenticated<Vec<T>>> {
        let (reply, validated) = self.query(name, rtype)?;
        let negative_ttl = reply.authorities.iter().find_map(|r| match &r.data {
            RData::SOA(soa) => Some(r.ttl.min(soa.minimum)),
            _ => None,
        });
        if reply.metadata.response_code == ResponseCode::NXDomain {
            return Ok(Authenticated {
                answer: DnsAnswer::NxDomain { ttl: negative_ttl },
                validated,
            });
        }
        let mut ttl = u32::MAX;
        let mut records = Vec::new();
        for record in &reply.answers {
            ttl = ttl.min(record.ttl);
            if record.record_type() == rtype
                && let Some(value) = pick(&record.data)
            {
                records.push(value);
            }
        }
        let answer = if records.is_empty() {
            DnsAnswer::NoData { ttl: negative_ttl }
        } else {
            DnsAnswer::Found { records, ttl }
        };
        Ok(Authenticated { answer, validated })
    }
}

/// A query id no off-path attacker can guess (the process's random hash keys; the source
/// port is the system's random ephemeral port).
fn random_id() -> u16 {
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u8(0);
    (hasher.finish() & 0xffff) as u16
}

/// One question to one server: UDP, then TCP if the answer was truncated.
fn exchange(
    server: SocketAddr,
    wire: &[u8],
    id: u16,
    name: &Name,
    rtype: RecordType,
    until: Instant,
) -> Exchange {
    let left = |what: &str| -> std::result::Result<Duration, String> {
        until
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
            .ok_or_else(|| format!("{server}: no answer within the deadline ({what})"))
    };
    let matches = |reply: &Message| {
        reply.metadata.id == id
            && reply.metadata.message_type == MessageType::Response
            && reply.queries.len() == 1
            && reply.queries[0].query_type() == rtype
            && reply.queries[0].name().eq_case(name)
    };
    let udp = || -> std::result::Result<Message, String> {
        let local: SocketAddr = if server.is_ipv4() {
            "0.0.0.0:0"
        } else {
            "[::]:0"
        }
        .parse()
        .map_err(|e| format!("{e}"))?;
        let socket = UdpSocket::bind(local).map_err(|e| format!("{server}: {e}"))?;
        socket
            .connect(server)
            .map_err(|e| format!("{server}: {e}"))?;
        socket.send(wire).map_err(|e| format!("{server}: {e}"))?;
        let mut buf = vec![0u8; 4096];
        loop {
            socket
                .set_read_timeout(Some(left("udp")?))
                .map_err(|e| format!("{server}: {e}"))?;
            let n = match socket.recv(&mut buf) {
                Ok(n) => n,
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    return Err(format!("{server}: no answer within the deadline"));
                }
                Err(e) => return Err(format!("{server}: {e}")),
            };
            // Anything that is not the answer to this question is ignored (spoofing).
            if let Ok(reply) = Message::from_vec(&buf[..n])
                && matches(&reply)
            {
                return Ok(reply);
            }
        }
    };
    let tcp = || -> std::result::Result<Message, String> {
        let mut stream = TcpStream::connect_timeout(&server, left("tcp connect")?)
            .map_err(|e| format!("{server} (TCP): {e}"))?;
        stream
            .set_write_timeout(Some(left("tcp")?))
            .map_err(|e| format!("{server}: {e}"))?;
        let length = u16::try_from(wire.len()).map_err(|e| format!("{e}"))?;
        let mut framed = length.to_be_bytes().to_vec();
        framed.extend_from_slice(wire);
        stream
            .write_all(&framed)
            .map_err(|e| format!("{server} (TCP): {e}"))?;
        let mut read_exact = |buf: &mut [u8]| -> std::result::Result<(), String> {
            stream
                .set_read_timeout(Some(left("tcp")?))
                .map_err(|e| format!("{server}: {e}"))?;
            stream
                .read_exact(buf)
                .map_err(|e| format!("{server} (TCP): {e}"))
        };
        let mut length = [0u8; 2];
        read_exact(&mut length)?;
        let length = usize::from(u16::from_be_bytes(length)).min(TCP_MAX);
        let mut buf = vec![0u8; length];
        read_exact(&mut buf)?;
        let reply =
            Message::from_vec(&buf).map_err(|e| format!("{server}: a malformed answer: {e}"))?;
        if matches(&reply) {
            Ok(reply)
        } else {
            Err(format!("{server}: an answer to another question"))
        }
    };
    let reply = match udp() {
        Ok(reply) if reply.metadata.truncation => tcp(),
        other => other,
    };
    match reply {
        Ok(reply) => Exchange::Answer(reply),
        Err(reason) => Exchange::Next(reason),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usable_tlsa_records_are_the_dane_usages_with_sound_data() {
        let rec = |usage, selector, matching, len| Tlsa {
            usage,
            selector,
            matching,
            data: vec![7; len],
        };
        let cases = [
            (rec(3, 1, 1, 32), true, "DANE-EE SPKI SHA-256"),
            (rec(2, 0, 2, 64), true, "DANE-TA cert SHA-512"),
            (rec(3, 0, 0, 300), true, "DANE-EE full certificate"),
            (
                rec(1, 1, 1, 32),
                false,
                "PKIX-EE is not for SMTP (RFC 7672 §3.1.3)",
            ),
            (rec(0, 1, 1, 32), false, "PKIX-TA is not for SMTP"),
            (rec(3, 2, 1, 32), false, "unknown selector"),
            (rec(3, 1, 3, 32), false, "unknown matching type"),
            (rec(3, 1, 1, 31), false, "SHA-256 data of the wrong length"),
            (rec(3, 1, 2, 32), false, "SHA-512 data of the wrong length"),
            (rec(3, 1, 0, 0), false, "empty data"),
        ];
        for (record, usable, why) in cases {
            assert_eq!(record.usable(), usable, "{why}");
        }
    }
}
