//! The AD-bit questions of `HickoryDns` (`mx_authenticated`, `tlsa`) against a DNS server on
//! loopback that answers as the test says: the AD bit asked for and reported (RFC 6840
//! §5.7), TCP after a truncated UDP answer, a spoofed answer ignored, SERVFAIL (what a
//! validating resolver answers for bogus signatures) and silence as temporary failures
//! (S-77), and `dane_status` over all of it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, ResponseCode};
use hickory_proto::rr::rdata::tlsa::{CertUsage, Matching, Selector};
use hickory_proto::rr::rdata::{MX, SOA, TLSA};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use mtasts_core::{Dane, DnsAnswer, DnsResolver, Domain, Error, HickoryDns, dane_status};

/// How the server answers one question.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Behaviour {
    /// The records, AD set.
    Validated,
    /// The records, AD clear.
    Insecure,
    /// A truncated UDP answer; the records (AD set) over TCP.
    Truncated,
    /// A reply with the wrong id first, then the real one (AD set).
    SpoofFirst,
    /// SERVFAIL.
    ServFail,
    /// No answer.
    Silent,
    /// NXDOMAIN with an SOA, AD set.
    NxDomain,
}

struct Server {
    addr: SocketAddr,
    behaviour: Arc<Mutex<Behaviour>>,
    queries: Arc<Mutex<Vec<(String, bool)>>>,
}

fn response(query: &Message, behaviour: Behaviour) -> Message {
    let mut reply = Message::new(
        query.metadata.id,
        MessageType::Response,
        query.metadata.op_code,
    );
    reply.metadata.recursion_available = true;
    reply.add_queries(query.queries.clone());
    let q = &query.queries[0];
    let name = q.name().clone();
    match behaviour {
        Behaviour::ServFail => {
            reply.metadata.response_code = ResponseCode::ServFail;
            return reply;
        }
        Behaviour::NxDomain => {
            reply.metadata.response_code = ResponseCode::NXDomain;
            reply.metadata.authentic_data = true;
            let soa = SOA::new(
                Name::from_ascii("ns.test.").unwrap(),
                Name::from_ascii("admin.test.").unwrap(),
                1,
                3600,
                600,
                86400,
                120,
            );
            reply.add_authority(Record::from_rdata(
                Name::from_ascii("test.").unwrap(),
                300,
                RData::SOA(soa),
            ));
            return reply;
        }
        _ => {}
    }
    reply.metadata.authentic_data = behaviour != Behaviour::Insecure;
    match q.query_type() {
        RecordType::MX => {
            for (pref, host) in [(20, "mx2.example.test."), (10, "mx1.example.test.")] {
                reply.add_answer(Record::from_rdata(
                    name.clone(),
                    900,
                    RData::MX(MX::new(pref, Name::from_ascii(host).unwrap())),
                ));
            }
        }
        RecordType::TLSA => {
            reply.add_answer(Record::from_rdata(
                name.clone(),
                300,
                RData::TLSA(TLSA::new(
                    CertUsage::DaneEe,
                    Selector::Spki,
                    Matching::Sha256,
                    vec![0xab; 32],
                )),
            ));
        }
        _ => {}
    }
    reply
}

fn start() -> Server {
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = udp.local_addr().unwrap();
    let tcp = TcpListener::bind(addr).unwrap();
    let behaviour = Arc::new(Mutex::new(Behaviour::Validated));
    let queries = Arc::new(Mutex::new(Vec::new()));
    let (b, q) = (Arc::clone(&behaviour), Arc::clone(&queries));
    thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok((n, peer)) = udp.recv_from(&mut buf) {
            let Ok(query) = Message::from_vec(&buf[..n]) else {
                continue;
            };
            q.lock().unwrap().push((
                query.queries[0].name().to_ascii(),
                query.metadata.authentic_data,
            ));
            let behaviour = *b.lock().unwrap();
            match behaviour {
                Behaviour::Silent => {}
                Behaviour::Truncated => {
                    let mut reply = response(&query, Behaviour::Validated);
                    reply.answers.clear();
                    reply.metadata.truncation = true;
                    udp.send_to(&reply.to_vec().unwrap(), peer).unwrap();
                }
                Behaviour::SpoofFirst => {
                    let mut spoof = response(&query, Behaviour::Insecure);
                    spoof.metadata.id = query.metadata.id.wrapping_add(1);
                    udp.send_to(&spoof.to_vec().unwrap(), peer).unwrap();
                    let reply = response(&query, Behaviour::Validated);
                    udp.send_to(&reply.to_vec().unwrap(), peer).unwrap();
                }
                other => {
                    let reply = response(&query, other);
                    udp.send_to(&reply.to_vec().unwrap(), peer).unwrap();
                }
            }
        }
    });
    thread::spawn(move || {
        for stream in tcp.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut len = [0u8; 2];
            if stream.read_exact(&mut len).is_err() {
                continue;
            }
            let mut wire = vec![0u8; usize::from(u16::from_be_bytes(len))];
            if stream.read_exact(&mut wire).is_err() {
                continue;
            }
            let query = Message::from_vec(&wire).unwrap();
            let reply = response(&query, Behaviour::Validated).to_vec().unwrap();
            let mut framed = u16::try_from(reply.len()).unwrap().to_be_bytes().to_vec();
            framed.extend(reply);
            let _ = stream.write_all(&framed);
        }
    });
    Server {
        addr,
        behaviour,
        queries,
    }
}

fn dns(server: &Server) -> HickoryDns {
    HickoryDns::with_nameservers(&[server.addr], Duration::from_millis(600)).unwrap()
}

#[test]
fn the_ad_bit_is_asked_for_and_reported() {
    let server = start();
    let dns = dns(&server);
    let mx = dns.mx_authenticated("example.test").unwrap();
    assert!(mx.validated);
    let DnsAnswer::Found { records, ttl } = mx.answer else {
        panic!("{:?}", mx.answer)
    };
    assert_eq!(ttl, 900);
    let hosts: Vec<_> = records.iter().map(|r| r.exchange.as_str()).collect();
    assert_eq!(
        hosts,
        ["mx1.example.test", "mx2.example.test"],
        "by preference"
    );
    assert!(
        server.queries.lock().unwrap().iter().all(|(_, ad)| *ad),
        "every query sets AD"
    );

    *server.behaviour.lock().unwrap() = Behaviour::Insecure;
    let tlsa = dns.tlsa("_25._tcp.mx1.example.test").unwrap();
    assert!(!tlsa.validated);
    let DnsAnswer::Found { records, .. } = tlsa.answer else {
        panic!()
    };
    assert_eq!(
        (records[0].usage, records[0].selector, records[0].matching),
        (3, 1, 1)
    );
    assert!(records[0].usable());

    *server.behaviour.lock().unwrap() = Behaviour::NxDomain;
    let none = dns.tlsa("_25._tcp.mx1.example.test").unwrap();
    assert!(none.validated, "a validated denial");
    assert_eq!(none.answer, DnsAnswer::NxDomain { ttl: Some(120) });
}

#[test]
fn truncation_goes_to_tcp_and_a_spoofed_answer_is_ignored() {
    let server = start();
    let dns = dns(&server);
    *server.behaviour.lock().unwrap() = Behaviour::Truncated;
    let over_tcp = dns.tlsa("_25._tcp.mx1.example.test").unwrap();
    assert!(over_tcp.validated);
    assert!(matches!(over_tcp.answer, DnsAnswer::Found { .. }));
    *server.behaviour.lock().unwrap() = Behaviour::SpoofFirst;
    let answer = dns.tlsa("_25._tcp.mx1.example.test").unwrap();
    assert!(
        answer.validated,
        "the spoof (AD clear, wrong id) was not taken"
    );
}

#[test]
fn s77_servfail_and_silence_are_temporary_failures() {
    let server = start();
    let dns = dns(&server);
    for behaviour in [Behaviour::ServFail, Behaviour::Silent] {
        *server.behaviour.lock().unwrap() = behaviour;
        let got = dns.tlsa("_25._tcp.mx1.example.test");
        assert!(
            matches!(got, Err(Error::DnsTemporary { .. })),
            "{behaviour:?}: {got:?}"
        );
    }
}

#[test]
fn dane_status_over_the_wire() {
    let server = start();
    let dns = dns(&server);
    let domain = Domain::new("example.test").unwrap();
    let status = dane_status(&dns, &domain).unwrap();
    assert_eq!(
        status.dane,
        Dane::Applies {
            hosts: vec!["mx1.example.test".into(), "mx2.example.test".into()]
        }
    );
    assert_eq!(status.ttl, 300);
    let asked: Vec<String> = server
        .queries
        .lock()
        .unwrap()
        .iter()
        .map(|(n, _)| n.clone())
        .collect();
    assert_eq!(
        asked,
        [
            "example.test.",
            "_25._tcp.mx1.example.test.",
            "_25._tcp.mx2.example.test."
        ]
    );
    *server.behaviour.lock().unwrap() = Behaviour::Insecure;
    assert!(matches!(
        dane_status(&dns, &domain).unwrap().dane,
        Dane::NotApplicable { .. }
    ));
    *server.behaviour.lock().unwrap() = Behaviour::ServFail;
    assert!(dane_status(&dns, &domain).is_err(), "S-77");
}
