//! The HTTPS server and the test CA, through a plain rustls client.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{Read, Write};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::{https_get, tls_connect};
use mtasts_testworld::{
    BodyMode, CertSpec, HttpResponse, HttpsServer, Identity, POLICY_PATH, TestCa,
};

const POLICY: &str = "version: STSv1\nmode: enforce\nmx: mail.example.com\nmax_age: 86400\n";

fn server_with(ca: &TestCa, host: &str, response: HttpResponse) -> HttpsServer {
    let s = HttpsServer::start().unwrap();
    s.set_identity(host, &ca.issue(&CertSpec::dns([host])).unwrap())
        .unwrap();
    s.set_policy_response(host, response);
    s
}

#[test]
fn serves_policy_to_a_client_trusting_the_ca_and_counts() {
    let ca = TestCa::new().unwrap();
    let host = "mta-sts.a.test";
    let s = server_with(&ca, host, HttpResponse::policy(POLICY));
    assert_eq!(s.requests(host), 0);

    let r = https_get(s.port(), host, POLICY_PATH, ca.client_config().unwrap()).unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("text/plain"));
    assert_eq!(r.header("connection"), Some("close"));
    assert_eq!(r.header("content-length"), Some(&*POLICY.len().to_string()));
    assert_eq!(r.body, POLICY.as_bytes());

    let other = https_get(s.port(), host, "/other", ca.client_config().unwrap()).unwrap();
    assert_eq!(other.status, 404);

    assert_eq!(s.requests("MTA-STS.a.test."), 2);
    assert_eq!(s.handshakes(host), 2);
    assert_eq!(s.total_requests(), 2);
    let log = s.request_log();
    assert_eq!(log[0].target, POLICY_PATH);
    assert_eq!(log[0].method, "GET");
    assert_eq!(log[0].sni, host);
    assert_eq!(log[0].host_header.as_deref(), Some(host));
    assert_eq!(log[1].target, "/other");
}

#[test]
fn certificate_is_chosen_by_sni_and_unknown_sni_fails() {
    let ca = TestCa::new().unwrap();
    let s = HttpsServer::start().unwrap();
    let a = ca.issue(&CertSpec::dns(["mta-sts.a.test"])).unwrap();
    let b = ca.issue(&CertSpec::dns(["mta-sts.b.test"])).unwrap();
    s.set_identity("mta-sts.a.test", &a).unwrap();
    s.set_identity("mta-sts.b.test", &b).unwrap();
    for (host, id) in [("mta-sts.a.test", &a), ("mta-sts.b.test", &b)] {
        let tls = tls_connect(s.port(), host, ca.client_config().unwrap()).unwrap();
        let peer = tls.conn.peer_certificates().unwrap();
        assert_eq!(&peer[0], id.leaf_der(), "{host}");
    }
    assert!(tls_connect(s.port(), "mta-sts.c.test", ca.client_config().unwrap()).is_err());
    assert_eq!(s.handshakes("mta-sts.c.test"), 1);

    s.remove_host("mta-sts.b.test");
    assert!(tls_connect(s.port(), "mta-sts.b.test", ca.client_config().unwrap()).is_err());
}

#[test]
fn certificate_cases_as_seen_by_webpki() {
    let ca = TestCa::new().unwrap();
    let other_ca = TestCa::new().unwrap();
    let host = "mta-sts.x.test";
    let cases: Vec<(&str, Identity, bool)> = vec![
        ("valid", ca.issue(&CertSpec::dns([host])).unwrap(), true),
        (
            "wildcard",
            ca.issue(&CertSpec::dns(["*.x.test"])).unwrap(),
            true,
        ),
        (
            "intermediate",
            ca.issue(&CertSpec::dns([host]).via_intermediate()).unwrap(),
            true,
        ),
        (
            "expired",
            ca.issue(&CertSpec::dns([host]).expired()).unwrap(),
            false,
        ),
        (
            "not yet valid",
            ca.issue(&CertSpec::dns([host]).not_yet_valid()).unwrap(),
            false,
        ),
        (
            "cn only",
            ca.issue(&CertSpec::cn_only(host)).unwrap(),
            false,
        ),
        (
            "wrong name",
            ca.issue(&CertSpec::dns(["www.x.test"])).unwrap(),
            false,
        ),
        (
            "other CA",
            other_ca.issue(&CertSpec::dns([host])).unwrap(),
            false,
        ),
        (
            "self-signed",
            Identity::self_signed(&CertSpec::dns([host])).unwrap(),
            false,
        ),
    ];
    let s = HttpsServer::start().unwrap();
    s.set_policy_response(host, HttpResponse::policy(POLICY));
    for (label, identity, ok) in cases {
        s.set_identity(host, &identity).unwrap();
        let got = https_get(s.port(), host, POLICY_PATH, ca.client_config().unwrap());
        assert_eq!(got.is_ok(), ok, "{label}: {got:?}");
    }
    assert_eq!(s.requests(host), 3);
    assert_eq!(s.handshakes(host), 9);
}

#[test]
fn identity_exports_pem_and_a_server_config() {
    let ca = TestCa::new().unwrap();
    let id = ca
        .issue(&CertSpec::dns(["mail.example.com"]).via_intermediate())
        .unwrap();
    assert_eq!(id.chain_der().len(), 2);
    assert_eq!(id.chain_pem().matches("BEGIN CERTIFICATE").count(), 2);
    assert!(id.key_pem().contains("BEGIN PRIVATE KEY"));
    assert!(ca.pem().contains("BEGIN CERTIFICATE"));
    id.server_config().unwrap();
    let path = std::env::temp_dir().join(format!("testworld-ca-{}.pem", std::process::id()));
    ca.write_pem(&path).unwrap();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), ca.pem());
    std::fs::remove_file(path).unwrap();
}

#[test]
fn chunked_declared_length_and_statuses() {
    let ca = TestCa::new().unwrap();
    let host = "mta-sts.a.test";
    let big = vec![b'a'; 65_537];
    let s = server_with(
        &ca,
        host,
        HttpResponse::policy(big.clone()).with_mode(BodyMode::Chunked),
    );
    let r = https_get(s.port(), host, POLICY_PATH, ca.client_config().unwrap()).unwrap();
    assert_eq!(r.header("transfer-encoding"), Some("chunked"));
    assert_eq!(r.header("content-length"), None);
    assert_eq!(r.body, big);

    s.set_policy_response(
        host,
        HttpResponse::policy(POLICY).with_mode(BodyMode::DeclaredLength(200_000)),
    );
    let r = https_get(s.port(), host, POLICY_PATH, ca.client_config().unwrap()).unwrap();
    assert_eq!(r.header("content-length"), Some("200000"));
    assert_eq!(r.body, POLICY.as_bytes());

    s.set_policy_response(
        host,
        HttpResponse::redirect(301, "https://elsewhere.test/x"),
    );
    let r = https_get(s.port(), host, POLICY_PATH, ca.client_config().unwrap()).unwrap();
    assert_eq!(r.status, 301);
    assert_eq!(r.header("location"), Some("https://elsewhere.test/x"));

    s.set_policy_response(host, HttpResponse::new(500));
    let r = https_get(s.port(), host, POLICY_PATH, ca.client_config().unwrap()).unwrap();
    assert_eq!(r.status, 500);
    assert!(r.body.is_empty());
}

#[test]
fn drip_sends_slowly_and_stops_when_the_client_leaves() {
    let ca = TestCa::new().unwrap();
    let host = "mta-sts.a.test";
    let s = server_with(
        &ca,
        host,
        HttpResponse::policy("0123456789").with_mode(BodyMode::Drip(Duration::from_millis(40))),
    );
    let start = Instant::now();
    let r = https_get(s.port(), host, POLICY_PATH, ca.client_config().unwrap()).unwrap();
    let took = start.elapsed();
    assert_eq!(r.body, b"0123456789");
    assert!(took >= Duration::from_millis(360), "{took:?}");

    // A slow drip: the head arrives at once, then the client gives up; the server must notice.
    s.set_policy_response(
        host,
        HttpResponse::policy("0123456789").with_mode(BodyMode::Drip(Duration::from_secs(1))),
    );
    let mut tls = tls_connect(s.port(), host, ca.client_config().unwrap()).unwrap();
    write!(tls, "GET {POLICY_PATH} HTTP/1.1\r\nHost: {host}\r\n\r\n").unwrap();
    tls.flush().unwrap();
    let mut head = [0u8; 64];
    let n = tls.read(&mut head).unwrap();
    assert!(head[..n].starts_with(b"HTTP/1.1 200 OK"));
    drop(tls);

    // Shutting down while a drip is in progress is prompt, too.
    let mut tls = tls_connect(s.port(), host, ca.client_config().unwrap()).unwrap();
    write!(tls, "GET {POLICY_PATH} HTTP/1.1\r\nHost: {host}\r\n\r\n").unwrap();
    tls.flush().unwrap();
    let n = tls.read(&mut head).unwrap();
    assert!(n > 0);
    let start = Instant::now();
    drop(s);
    assert!(
        start.elapsed() < Duration::from_millis(500),
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn sixteen_concurrent_clients_are_all_served_and_counted() {
    let ca = Arc::new(TestCa::new().unwrap());
    let host = "mta-sts.a.test";
    let s = server_with(&ca, host, HttpResponse::policy(POLICY));
    let port = s.port();
    let threads: Vec<_> = (0..16)
        .map(|_| {
            let config = ca.client_config().unwrap();
            thread::spawn(move || https_get(port, host, POLICY_PATH, config).unwrap())
        })
        .collect();
    for t in threads {
        assert_eq!(t.join().unwrap().body, POLICY.as_bytes());
    }
    assert_eq!(s.requests(host), 16);
}

#[test]
fn garbage_and_oversized_heads_do_not_hurt_the_server() {
    let ca = TestCa::new().unwrap();
    let host = "mta-sts.a.test";
    let s = server_with(&ca, host, HttpResponse::policy(POLICY));
    // Not TLS at all.
    let mut plain = std::net::TcpStream::connect(("127.0.0.1", s.port())).unwrap();
    plain
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    // rustls may wait for the rest of a "record" this long; the server's read timeout ends it.
    plain
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let mut sink = Vec::new();
    let _ = plain.read_to_end(&mut sink);
    // A request head over the limit gets 431.
    let mut tls = tls_connect(s.port(), host, ca.client_config().unwrap()).unwrap();
    let long = "a".repeat(20_000);
    let _ = write!(tls, "GET /{long} HTTP/1.1\r\n");
    let _ = tls.flush();
    let mut raw = Vec::new();
    let _ = tls.read_to_end(&mut raw);
    assert!(
        raw.starts_with(b"HTTP/1.1 431"),
        "{:?}",
        String::from_utf8_lossy(&raw)
    );
    // Still serving.
    let r = https_get(s.port(), host, POLICY_PATH, ca.client_config().unwrap()).unwrap();
    assert_eq!(r.status, 200);
}
