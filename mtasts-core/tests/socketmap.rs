//! The event loops (`EventLoops`) over real Unix sockets against the test world: pipelined requests
//! answered in order (R-SRV-1), the replies of S-70, S-73, S-74, a malformed or oversized
//! netstring closing only that connection (S-79), a slow client cut by its timeout, the
//! answer deadline, one fetch for concurrent requests, a reload taking effect on an open
//! connection, and the counters.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use mtasts_core::{
    Admitted, DaneCache, EventLoops, Metrics, PolicyServer, Resolver, ServeSettings, ServerHandle,
    netstring, read_netstring,
};
use mtasts_testworld::World;

/// Settings with map name `strict` answering `testing` as `enforce`, plus `extra` lines.
fn settings(extra: &str) -> ServeSettings {
    let mut settings = ServeSettings::default();
    settings
        .load_str(
            &format!("serve.map.strict.strict_testing = yes\n{extra}"),
            "test",
        )
        .unwrap();
    settings
}

fn handle(resolver: Arc<Resolver>, settings: ServeSettings) -> Arc<ServerHandle> {
    Arc::new(ServerHandle::new(PolicyServer::new(
        resolver,
        settings,
        Arc::new(DaneCache::new()),
        Arc::new(Metrics::new()),
    )))
}

/// A server's event loop, for one test.
struct Served {
    handle: Arc<ServerHandle>,
    loops: EventLoops,
}

impl Served {
    /// The connections closed for a protocol error (R-SRV-1).
    fn faults(&self) -> u64 {
        self.handle.current().metrics().closed_on_errors()
    }

    /// Waits (at most 10 s) until no connection is served; true if none is.
    fn drained(&self) -> bool {
        wait_for(Duration::from_secs(10), || self.loops.live() == 0)
    }
}

fn spawn_server(resolver: Arc<Resolver>, timeout: Duration) -> (UnixStream, Served) {
    spawn_on(handle(resolver, settings("")), timeout)
}

fn spawn_on(handle: Arc<ServerHandle>, timeout: Duration) -> (UnixStream, Served) {
    let loops = EventLoops::start(&handle, 1, timeout).unwrap();
    let served = Served { handle, loops };
    (connect(&served), served)
}

/// One more client connection to `served`.
fn connect(served: &Served) -> UnixStream {
    let (client, server) = UnixStream::pair().unwrap();
    assert_eq!(served.loops.admit(server, 512).unwrap(), Admitted::Yes);
    client
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    client
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
    assert!(server.drained(), "closed when the client closes");
    assert_eq!(
        server.faults(),
        0,
        "a client closing between requests is no fault"
    );
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
    let (mut bystander, server) = spawn_server(Arc::clone(&resolver), Duration::from_secs(30));
    for (n, bad) in [&b"3x:abc,"[..], b"4:abcd!", b"10001:", b"007:postfix,"]
        .into_iter()
        .enumerate()
    {
        let mut client = connect(&server);
        client.write_all(bad).unwrap();
        let mut rest = Vec::new();
        client.read_to_end(&mut rest).unwrap();
        assert!(rest.is_empty(), "{bad:?}: nothing is answered");
        assert!(
            wait_for(Duration::from_secs(10), || server.faults() == n as u64 + 1),
            "{bad:?}: closed as a protocol error"
        );
    }
    // A connection opened before is still served, and so is the next one.
    bystander
        .write_all(&netstring(b"postfix s02.mtasts.test"))
        .unwrap();
    assert_eq!(read_replies(&mut bystander, 1), ["NOTFOUND "]);
    let mut client = connect(&server);
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
    // Half a request, then a byte every 100 ms: each read is bounded by what is left of the
    // client's time, so the server gives up instead of waiting for ever.
    client.write_all(b"23:postfix s0").unwrap();
    let dripping = thread::spawn(move || {
        for byte in b"1.mtasts.test" {
            thread::sleep(Duration::from_millis(100));
            if client.write_all(&[*byte]).is_err() {
                return;
            }
        }
    });
    assert!(
        wait_for(Duration::from_secs(10), || server.faults() == 1),
        "cut as too slow"
    );
    assert!(server.drained());
    dripping.join().unwrap();
}

/// Polls `done` every 50 ms for at most `limit`.
fn wait_for(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let until = std::time::Instant::now() + limit;
    while std::time::Instant::now() < until {
        if done() {
            return true;
        }
        thread::sleep(Duration::from_millis(50));
    }
    done()
}

#[test]
fn an_answer_that_is_not_ready_in_time_is_temp_and_the_lookup_goes_on() {
    let world = World::bundled().unwrap();
    let (resolver, _clock) = support::resolver(&world);
    // S-18's policy host drips one byte a second: the fetch takes its whole 3 s deadline.
    let handle = handle(Arc::new(resolver), settings("serve.answer_timeout = 0.5\n"));
    let (mut client, _server) = spawn_on(Arc::clone(&handle), Duration::from_secs(30));
    client
        .write_all(&netstring(b"postfix s18.mtasts.test"))
        .unwrap();
    let first = read_replies(&mut client, 1).remove(0);
    assert!(
        first.starts_with("TEMP s18.mtasts.test: no answer within 0.5 s"),
        "{first}"
    );
    // The fetch went on, and its failure is remembered (the fetch backoff, R-FETCH-12): once
    // it is over, the domain is answered as having no usable policy (RFC 8461 §5) without a
    // second fetch.
    let mut replies = Vec::new();
    assert!(
        wait_for(Duration::from_secs(15), || {
            client
                .write_all(&netstring(b"postfix s18.mtasts.test"))
                .unwrap();
            let reply = read_replies(&mut client, 1).remove(0);
            replies.push(reply.clone());
            reply == "NOTFOUND "
        }),
        "{replies:?}"
    );
    assert_eq!(world.policy_requests("s18.mtasts.test"), 1);
    // Each request is counted once: the late lookup's own result is not a second answer.
    let asked = 1 + replies.len();
    let metrics = handle.current().metrics().render(0);
    assert!(
        metrics.contains(&format!("mtasts_requests_total {asked}\n")),
        "{asked} requests: {metrics}"
    );
}

#[test]
fn concurrent_requests_for_one_uncached_domain_make_one_fetch() {
    let world = World::bundled().unwrap();
    let (resolver, _clock) = support::resolver(&world);
    let handle = handle(Arc::new(resolver), settings(""));
    let (first, server) = spawn_on(Arc::clone(&handle), Duration::from_secs(30));
    let clients: Vec<_> = std::iter::once(first)
        .chain((1..16).map(|_| connect(&server)))
        .collect();
    let replies: Vec<_> = thread::scope(|scope| {
        let asked: Vec<_> = clients
            .into_iter()
            .map(|mut client| {
                scope.spawn(move || {
                    client
                        .write_all(&netstring(b"postfix s01.mtasts.test"))
                        .unwrap();
                    read_replies(&mut client, 1).remove(0)
                })
            })
            .collect();
        asked.into_iter().map(|t| t.join().unwrap()).collect()
    });
    for reply in &replies {
        assert_eq!(
            reply,
            "OK secure match=mail.example.com:.example.net servername=hostname"
        );
    }
    assert_eq!(
        world.policy_requests("s01.mtasts.test"),
        1,
        "S-42: one fetch"
    );
    let metrics = handle.current().metrics().render(0);
    assert!(metrics.contains("mtasts_requests_total 16\n"), "{metrics}");
    assert!(
        metrics.contains("mtasts_answers_total{kind=\"secure\"} 16\n"),
        "{metrics}"
    );
}

#[test]
fn a_cached_answer_never_waits_behind_another_domains_fetch() {
    let world = World::bundled().unwrap();
    let (resolver, _clock) = support::resolver(&world);
    // One loop serves both connections. S-18's policy host drips a byte a second, so its
    // fetch takes its whole 3 s deadline; the request pipelined behind it waits for it.
    let (mut slow, server) = spawn_server(Arc::new(resolver), Duration::from_secs(30));
    let mut quick = connect(&server);
    let mut both = netstring(b"postfix s18.mtasts.test");
    both.extend(netstring(b"postfix s01.mtasts.test"));
    slow.write_all(&both).unwrap();
    let secure = "OK secure match=mail.example.com:.example.net servername=hostname";
    for _ in 0..3 {
        quick
            .write_all(&netstring(b"postfix s01.mtasts.test"))
            .unwrap();
        assert_eq!(read_replies(&mut quick, 1), [secure]);
    }
    slow.set_nonblocking(true).unwrap();
    let mut byte = [0u8; 1];
    assert_eq!(
        slow.read(&mut byte).unwrap_err().kind(),
        std::io::ErrorKind::WouldBlock,
        "s18 is still being fetched while the other connection is answered"
    );
    slow.set_nonblocking(false).unwrap();
    let replies = read_replies(&mut slow, 2);
    assert_eq!(
        replies[0], "NOTFOUND ",
        "s18's fetch failed: no usable policy"
    );
    assert_eq!(replies[1], secure, "then the request behind it, in order");
    assert_eq!(world.policy_requests("s01.mtasts.test"), 1);
}

#[test]
fn a_stop_closes_the_idle_connections_and_ends_the_loops() {
    let world = World::bundled().unwrap();
    let (resolver, _clock) = support::resolver(&world);
    let (mut idle, server) = spawn_server(Arc::new(resolver), Duration::from_secs(30));
    let mut asking = connect(&server);
    asking
        .write_all(&netstring(b"postfix s01.mtasts.test"))
        .unwrap();
    assert_eq!(read_replies(&mut asking, 1).len(), 1);
    server.handle.stop();
    let mut rest = Vec::new();
    idle.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty());
    asking.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty());
    assert!(server.loops.wait_ended(Duration::from_secs(10)));
    let (_client, late) = UnixStream::pair().unwrap();
    assert_eq!(
        server.loops.admit(late, 512).unwrap(),
        Admitted::Stopping,
        "a loop that has ended takes no connection"
    );
    assert_eq!(server.faults(), 0);
}

#[test]
fn connections_beyond_the_maximum_are_refused() {
    let world = World::bundled().unwrap();
    let (resolver, _clock) = support::resolver(&world);
    let (_first, server) = spawn_server(Arc::new(resolver), Duration::from_secs(30));
    let (mut client, refused) = UnixStream::pair().unwrap();
    assert_eq!(server.loops.admit(refused, 1).unwrap(), Admitted::Full);
    let mut rest = Vec::new();
    client.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty(), "closed at once");
    assert_eq!(server.loops.live(), 1);
    let metrics = server.handle.current().metrics().render(1);
    assert!(
        metrics.contains("mtasts_connections_total{outcome=\"refused\"} 1\n"),
        "{metrics}"
    );
}

#[test]
fn a_client_that_does_not_read_its_replies_is_cut() {
    let world = World::bundled().unwrap();
    let (resolver, _clock) = support::resolver(&world);
    let (mut client, server) = spawn_server(Arc::new(resolver), Duration::from_millis(500));
    // Requests written and replies never read: once the socket buffers are full the
    // server stops reading, and after its timeout it closes the connection.
    let many: Vec<u8> = (0..200_000)
        .flat_map(|_| netstring(b"postfix [mx.s01.mtasts.test]:25"))
        .collect();
    client.set_nonblocking(true).unwrap();
    let mut written = 0;
    let cut = wait_for(Duration::from_secs(10), || {
        while written < many.len() {
            match client.write(&many[written..]) {
                Ok(n) => written += n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(_) => return true,
            }
        }
        server.faults() == 1
    });
    assert!(cut, "the connection was cut");
    assert!(server.drained());
}

#[test]
fn a_reload_takes_effect_on_an_open_connection() {
    let world = World::bundled().unwrap();
    let (resolver, _clock) = support::resolver(&world);
    let resolver = Arc::new(resolver);
    let handle = handle(Arc::clone(&resolver), settings(""));
    let (mut client, _server) = spawn_on(Arc::clone(&handle), Duration::from_secs(30));
    let ask = |client: &mut UnixStream| {
        client
            .write_all(&netstring(b"postfix s01.mtasts.test"))
            .unwrap();
        read_replies(client, 1).remove(0)
    };
    assert!(ask(&mut client).ends_with(" servername=hostname"));
    let old = handle.current();
    handle.replace(PolicyServer::new(
        resolver,
        settings("serve.map.postfix.sni = no\n"),
        Arc::clone(old.dane_cache()),
        Arc::clone(old.metrics()),
    ));
    assert_eq!(
        ask(&mut client),
        "OK secure match=mail.example.com:.example.net",
        "the same connection, the new settings"
    );
    assert!(
        handle
            .current()
            .metrics()
            .render(0)
            .contains("mtasts_requests_total 2\n"),
        "the counters survive the reload"
    );
}

#[test]
fn an_unexpired_cached_policy_is_applied_while_its_late_recheck_runs() {
    let world = World::bundled().unwrap();
    let (resolver, clock) = support::resolver(&world);
    let handle = handle(Arc::new(resolver), settings("serve.answer_timeout = 0.5\n"));
    let (mut client, _server) = spawn_on(Arc::clone(&handle), Duration::from_secs(30));
    let ask = |client: &mut UnixStream| {
        client
            .write_all(&netstring(b"postfix s01.mtasts.test"))
            .unwrap();
        read_replies(client, 1).remove(0)
    };
    let secure = "OK secure match=mail.example.com:.example.net servername=hostname";
    assert_eq!(ask(&mut client), secure);
    // An hour on, the TXT record is due for a check (R-CACHE-5), and DNS now hangs: the
    // answer cannot wait for the check, and the policy (max_age one day) is still in force.
    clock.advance(Duration::from_secs(3601));
    world.zone().set_behaviour(
        "_mta-sts.s01.mtasts.test",
        mtasts_testworld::Behaviour::Timeout,
    );
    assert_eq!(
        ask(&mut client),
        secure,
        "RFC 8461 §5.1: the cached policy applies"
    );
    // Without a cached policy the same wait is TEMP (s18 above): never NOTFOUND.
}
