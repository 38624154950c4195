//! The DNS server, through a minimal client built on hickory-proto.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::{Ipv4Addr, UdpSocket};
use std::time::{Duration, Instant};

use common::{query_message, tcp_queries, txt_strings, udp_query, udp_raw};
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{RData, RecordType};
use mtasts_testworld::{Behaviour, DnsServer, Transport, Zone, ZoneRecord};

const WAIT: Duration = Duration::from_secs(2);

fn server() -> DnsServer {
    let zone = Zone::new();
    zone.set_records(
        "_mta-sts.split.test",
        vec![
            ZoneRecord::txt(["v=STSv1; id=", "abc;"]),
            ZoneRecord::txt([b"bin\xff\x00".to_vec()]).with_ttl(42),
        ],
    );
    zone.set_records(
        "_mta-sts.alias.test",
        vec![ZoneRecord::cname("_mta-sts.hop.test")],
    );
    zone.set_records(
        "_mta-sts.hop.test",
        vec![ZoneRecord::cname("_mta-sts.target.test")],
    );
    zone.set_records(
        "_mta-sts.target.test",
        vec![ZoneRecord::txt1("v=STSv1; id=target;")],
    );
    zone.set_records(
        "mta-sts.split.test",
        vec![ZoneRecord::a(Ipv4Addr::LOCALHOST)],
    );
    zone.set_behaviour("_mta-sts.fail.test", Behaviour::ServFail);
    zone.set_behaviour("_mta-sts.refused.test", Behaviour::Refused);
    zone.set_behaviour("_mta-sts.silent.test", Behaviour::Timeout);
    zone.set_behaviour("_mta-sts.gone.test", Behaviour::NxDomain);
    DnsServer::start(zone).unwrap()
}

fn udp(s: &DnsServer, name: &str, t: RecordType) -> Message {
    udp_query(s.addr(), &query_message(name, t, true), WAIT).expect("an answer")
}

#[test]
fn txt_over_udp_and_tcp_keeps_character_strings_and_bytes() {
    let s = server();
    let want = vec![
        vec![b"v=STSv1; id=".to_vec(), b"abc;".to_vec()],
        vec![b"bin\xff\x00".to_vec()],
    ];
    let m = udp(&s, "_mta-sts.split.test.", RecordType::TXT);
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert!(m.metadata.recursion_available && m.metadata.authoritative);
    assert_eq!(txt_strings(&m), want);
    assert_eq!(m.answers[1].ttl, 42);

    let replies = tcp_queries(
        s.addr(),
        &[
            query_message("_mta-sts.split.test.", RecordType::TXT, false),
            query_message("MTA-STS.Split.Test.", RecordType::A, false),
        ],
    );
    assert_eq!(txt_strings(&replies[0]), want);
    match &replies[1].answers[0].data {
        RData::A(a) => assert_eq!(a.0, Ipv4Addr::LOCALHOST),
        other => panic!("unexpected {other:?}"),
    }
    // The answer echoes the question's spelling.
    assert_eq!(replies[1].answers[0].name.to_ascii(), "MTA-STS.Split.Test.");

    assert_eq!(s.queries("_mta-sts.split.test", RecordType::TXT), 2);
    assert_eq!(s.queries("mta-sts.split.test.", RecordType::A), 1);
    assert_eq!(s.queries_for_name("_MTA-STS.split.test"), 2);
    assert_eq!(s.total_queries(), 3);
    let transports: Vec<Transport> = s.query_log().iter().map(|q| q.transport).collect();
    assert_eq!(transports, [Transport::Udp, Transport::Tcp, Transport::Tcp]);
    s.reset_counters();
    assert_eq!(s.total_queries(), 0);
}

#[test]
fn nxdomain_and_nodata_carry_an_soa() {
    let s = server();
    let nx = udp(&s, "_mta-sts.nowhere.test.", RecordType::TXT);
    assert_eq!(nx.metadata.response_code, ResponseCode::NXDomain);
    assert!(nx.answers.is_empty());
    assert_eq!(nx.authorities[0].record_type(), RecordType::SOA);
    assert_eq!(nx.authorities[0].ttl, 60);

    // The name exists (it has an A record) but no TXT: NODATA.
    let nodata = udp(&s, "mta-sts.split.test.", RecordType::TXT);
    assert_eq!(nodata.metadata.response_code, ResponseCode::NoError);
    assert!(nodata.answers.is_empty());
    assert_eq!(nodata.authorities[0].record_type(), RecordType::SOA);

    // An empty non-terminal (only names below it exist) is NODATA too.
    let ent = udp(&s, "split.test.", RecordType::TXT);
    assert_eq!(ent.metadata.response_code, ResponseCode::NoError);

    // A forced NXDOMAIN.
    let gone = udp(&s, "_mta-sts.gone.test.", RecordType::TXT);
    assert_eq!(gone.metadata.response_code, ResponseCode::NXDomain);
}

#[test]
fn cname_chain_is_followed() {
    let s = server();
    let m = udp(&s, "_mta-sts.alias.test.", RecordType::TXT);
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    let types: Vec<RecordType> = m.answers.iter().map(|r| r.record_type()).collect();
    assert_eq!(
        types,
        [RecordType::CNAME, RecordType::CNAME, RecordType::TXT]
    );
    assert_eq!(txt_strings(&m), vec![vec![b"v=STSv1; id=target;".to_vec()]]);
    // Asking for the CNAME itself does not follow it.
    let c = udp(&s, "_mta-sts.alias.test.", RecordType::CNAME);
    assert_eq!(c.answers.len(), 1);
}

#[test]
fn behaviours_servfail_refused_timeout() {
    let s = server();
    let fail = udp(&s, "_mta-sts.fail.test.", RecordType::TXT);
    assert_eq!(fail.metadata.response_code, ResponseCode::ServFail);
    let refused = udp(&s, "_mta-sts.refused.test.", RecordType::TXT);
    assert_eq!(refused.metadata.response_code, ResponseCode::Refused);
    let silent = udp_query(
        s.addr(),
        &query_message("_mta-sts.silent.test.", RecordType::TXT, true),
        Duration::from_millis(300),
    );
    assert!(silent.is_none());
    // Even unanswered queries are counted.
    assert_eq!(s.queries("_mta-sts.silent.test", RecordType::TXT), 1);
}

#[test]
fn zone_changes_apply_at_once() {
    let s = server();
    let name = "_mta-sts.split.test";
    s.zone()
        .set_txt(name, vec![vec![b"v=STSv1; id=b;".to_vec()]]);
    assert_eq!(
        txt_strings(&udp(&s, name, RecordType::TXT)),
        vec![vec![b"v=STSv1; id=b;".to_vec()]]
    );
    s.zone().set_behaviour(name, Behaviour::ServFail);
    assert_eq!(
        udp(&s, name, RecordType::TXT).metadata.response_code,
        ResponseCode::ServFail
    );
    assert!(s.zone().remove(name));
    assert_eq!(
        udp(&s, name, RecordType::TXT).metadata.response_code,
        ResponseCode::NXDomain
    );
}

#[test]
fn malformed_queries_get_formerr_or_nothing() {
    let s = server();
    // A header claiming one question, and no question: FORMERR with the same ID.
    let bad = [0xab, 0xcd, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 0xff];
    let reply = udp_raw(s.addr(), &bad, WAIT).expect("FORMERR");
    let m = Message::from_vec(&reply).unwrap();
    assert_eq!(m.metadata.id, 0xabcd);
    assert_eq!(m.metadata.response_code, ResponseCode::FormErr);
    // Too short to carry a header: dropped.
    assert!(udp_raw(s.addr(), &[1, 2, 3], Duration::from_millis(200)).is_none());
    // The server still works.
    assert_eq!(
        udp(&s, "_mta-sts.split.test", RecordType::TXT)
            .metadata
            .response_code,
        ResponseCode::NoError
    );
}

#[test]
fn large_udp_answers_are_truncated_and_complete_over_tcp() {
    let s = server();
    let many: Vec<ZoneRecord> = (0..40)
        .map(|i| ZoneRecord::txt1(&format!("record number {i} with some padding text")))
        .collect();
    s.zone().set_records("big.test", many);
    let m = udp_query(
        s.addr(),
        &query_message("big.test.", RecordType::TXT, false),
        WAIT,
    )
    .unwrap();
    assert!(m.metadata.truncation);
    let full = tcp_queries(
        s.addr(),
        &[query_message("big.test.", RecordType::TXT, false)],
    );
    assert_eq!(full[0].answers.len(), 40);
}

#[test]
fn drop_stops_the_server_promptly() {
    let s = server();
    let addr = s.addr();
    // An idle TCP connection must not keep the server alive.
    let _idle = std::net::TcpStream::connect(addr).unwrap();
    std::thread::sleep(Duration::from_millis(20));
    let start = Instant::now();
    drop(s);
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "{:?}",
        start.elapsed()
    );
    // The UDP port is free again.
    UdpSocket::bind(addr).unwrap();
}
