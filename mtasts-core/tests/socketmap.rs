//! `serve_connection` over a real Unix socket against the test world: pipelined requests
//! answered in order (R-SRV-1), the replies of S-70, S-73, S-74, a malformed or oversized
//! netstring closing only that connection (S-79), and a slow client cut by its timeout.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use mtasts_core::{MapOptions, netstring, read_netstring, serve_connection};
use mtasts_testworld::World;

fn spawn_server(
    resolver: Arc<mtasts_core::Resolver>,
    timeout: Duration,
) -> (UnixStream, thread::JoinHandle<std::io::Result<()>>) {
    let (client, mut server) = UnixStream::pair().unwrap();
    server.set_read_timeout(Some(timeout)).unwrap();
    server.set_write_timeout(Some(timeout)).unwrap();
    let handle = thread::spawn(move || {
        let strict = |map: &str| {
            let mut options = MapOptions::new();
            options.strict_testing = map == "strict";
            options
        };
        serve_connection(&resolver, &mut server, &strict)
    });
    client
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    (client, handle)
}

fn read_replies(client: &mut UnixStream, n: usize) -> Vec<String> {
    let mut buf = Vec::new();
    let mut replies = Vec::new();
    let mut chunk = [0u8; 4096];
    while replies.len() < n {
        if let Some((payload, used)) = read_netstring(&buf, 100_000).unwrap() {
            replies.push(String::from_utf8(payload.to_vec()).unwrap());
            buf.drain(..used);
            continue;
        }
        let got = client.read(&mut chunk).unwrap();
        assert!(got > 0, "closed after {} replies", replies.len());
        buf.extend_from_slice(&chunk[..got]);
    }
    replies
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let world = World::bundled().unwrap();
    let (resolver, _clock) = support::resolver(&world);
    let (mut client, server) = spawn_server(Arc::new(resolver), Duration::from_secs(30));
    let mut requests = Vec::new();
    for payload in [
        &b"postfix s01.mtasts.test"[..],
        b"postfix S01.MTASTS.TEST.",
        b"postfix s02.mtasts.test",
        b"postfix [mx.s01.mtasts.test]:25",
        b"postfix .mtasts.test",
        b"postfix \xff.test",
        b"postfix",
    ] {
        requests.extend(netstring(payload));
    }
    // All at once, in one write: pipelining.
    client.write_all(&requests).unwrap();
    let replies = read_replies(&mut client, 7);
    let secure = "OK secure match=mail.example.com:.example.net servername=hostname";
    assert_eq!(replies[0], secure, "S-70");
    assert_eq!(replies[1], secure, "S-71");
    assert_eq!(replies[2], "NOTFOUND ", "S-73");
    assert_eq!(replies[3], "NOTFOUND ", "S-74");
    assert_eq!(replies[4], "NOTFOUND ", "S-74");
    assert!(replies[5].starts_with("PERM "), "{}", replies[5]);
    assert!(replies[6].starts_with("PERM "), "{}", replies[6]);
    drop(client);
    server.join().unwrap().unwrap();
    assert_eq!(
        world.policy_requests("s01.mtasts.test"),
        1,
        "one fetch, then the cache"
    );
}

#[test]
fn s79_a_malformed_or_oversized_netstring_closes_the_connection() {
    let world = World::bundled().unwrap();
    let (resolver, _clock) = support::resolver(&world);
    let resolver = Arc::new(resolver);
    for bad in [&b"3x:abc,"[..], b"4:abcd!", b"10001:", b"007:postfix,"] {
        let (mut client, server) = spawn_server(Arc::clone(&resolver), Duration::from_secs(30));
        client.write_all(bad).unwrap();
        let err = server.join().unwrap().unwrap_err();
        assert_eq!(
            err.kind(),
            std::io::ErrorKind::InvalidData,
            "{bad:?}: {err}"
        );
        let mut rest = Vec::new();
        client.read_to_end(&mut rest).unwrap();
        assert!(rest.is_empty(), "{bad:?}: nothing is answered");
    }
    // The next connection is served normally.
    let (mut client, _server) = spawn_server(resolver, Duration::from_secs(30));
    client
        .write_all(&netstring(b"postfix s02.mtasts.test"))
        .unwrap();
    assert_eq!(read_replies(&mut client, 1), ["NOTFOUND "]);
}

#[test]
fn a_slow_client_is_cut_by_the_read_timeout() {
    let world = World::bundled().unwrap();
    let (resolver, _clock) = support::resolver(&world);
    let (mut client, server) = spawn_server(Arc::new(resolver), Duration::from_millis(300));
    // Half a request, then nothing: the server gives up instead of waiting for ever.
    client.write_all(b"23:postfix s0").unwrap();
    let err = server.join().unwrap().unwrap_err();
    assert!(
        matches!(
            err.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
        "{err}"
    );
}
