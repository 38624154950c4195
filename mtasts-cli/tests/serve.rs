//! `mtasts serve` and `mtasts query` as processes, over a Unix socket, against the hermetic
//! test world: replies (S-70, S-73, S-74), pipelining, the connection limit, a bad netstring
//! closing only its connection (S-79), and SIGTERM.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{exchange, start};
use mtasts_testworld::World;

#[test]
fn the_server_answers_postfix_and_query_prints_the_reply() {
    let world = World::bundled().unwrap();
    let server = start(&world, "answers", &["--strict-testing", "strict"]);
    let replies = exchange(
        &server.socket,
        &[
            "postfix s01.mtasts.test",
            "postfix s02.mtasts.test",
            "postfix [mail.example.com]:25",
        ],
        3,
    );
    assert_eq!(
        replies,
        [
            "OK secure match=mail.example.com:.example.net servername=hostname",
            "NOTFOUND ",
            "NOTFOUND ",
        ]
    );
    let out = Command::new(env!("CARGO_BIN_EXE_mtasts"))
        .args(["query", "--socket"])
        .arg(format!("unix:{}", server.socket.display()))
        .arg("s01.mtasts.test")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        String::from_utf8(out.stdout).unwrap().trim_end(),
        "OK secure match=mail.example.com:.example.net servername=hostname"
    );
    // One fetch for all of it: the second and third answers came from the cache.
    assert_eq!(world.policy_requests("s01.mtasts.test"), 1);
}

#[test]
fn a_bad_netstring_closes_only_its_connection_and_the_limit_holds() {
    let world = World::bundled().unwrap();
    let server = start(&world, "limits", &["--max-connections", "2"]);
    let mut bad = UnixStream::connect(&server.socket).unwrap();
    bad.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    bad.write_all(b"99999999:").unwrap();
    let mut rest = Vec::new();
    assert_eq!(
        bad.read_to_end(&mut rest).unwrap(),
        0,
        "closed with no reply"
    );
    // Two connections, each answered once and then idle, fill the limit; a third is closed
    // at once. A connection counts until the server has seen it close: the start-up probe's
    // and the bad one's may still count for a moment, so a connection the server refused in
    // that moment is opened again (bounded).
    let held: Vec<_> = (0..2)
        .map(|_| {
            for _ in 0..50 {
                let mut stream = UnixStream::connect(&server.socket).unwrap();
                stream
                    .set_read_timeout(Some(Duration::from_secs(30)))
                    .unwrap();
                stream
                    .write_all(&common::netstring("postfix [mx.s01.mtasts.test]:25"))
                    .unwrap();
                let mut reply = [0u8; 64];
                if stream.read(&mut reply).is_ok_and(|n| n > 0) {
                    return stream;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            panic!("a connection within the limit is never taken");
        })
        .collect();
    let mut third = UnixStream::connect(&server.socket).unwrap();
    third
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut rest = Vec::new();
    assert_eq!(
        third.read_to_end(&mut rest).unwrap(),
        0,
        "refused beyond the limit"
    );
    drop(held);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(
        exchange(&server.socket, &["postfix s02.mtasts.test"], 1),
        ["NOTFOUND "]
    );
}

#[test]
fn sigterm_stops_the_server_and_removes_its_socket() {
    let world = World::bundled().unwrap();
    let mut server = start(&world, "sigterm", &[]);
    let killed = Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "no exit after SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(0));
    assert!(!server.socket.exists(), "the socket is removed");
}

#[test]
fn a_path_that_is_not_a_socket_is_refused() {
    let world = World::bundled().unwrap();
    let dir = std::env::temp_dir().join(format!("mtasts-serve-file-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("not-a-socket");
    std::fs::write(&file, "keep me").unwrap();
    let out = common::mtasts(&world)
        .arg("serve")
        .arg("--listen")
        .arg(format!("unix:{}", file.display()))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "keep me");
    std::fs::remove_dir_all(&dir).unwrap();
}
