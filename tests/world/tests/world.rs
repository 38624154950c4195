//! The assembled world, the bundled `world.json` and the `mtasts-testworld` binary.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{https_get, query_message, tcp_queries, txt_strings, udp_query};
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{RData, RecordType};
use mtasts_testworld::{
    DEFAULT_POLICY, DomainSpec, HttpResponse, POLICY_PATH, Source, World, WorldSpec,
};

fn ask(world: &World, name: &str, t: RecordType) -> Message {
    udp_query(
        world.dns_addr(),
        &query_message(name, t, true),
        Duration::from_secs(2),
    )
    .expect("an answer")
}

fn address_of(world: &World, name: &str) -> Option<std::net::Ipv4Addr> {
    ask(world, name, RecordType::A)
        .answers
        .iter()
        .find_map(|r| match &r.data {
            RData::A(a) => Some(a.0),
            _ => None,
        })
}

fn trust(world: &World) -> std::sync::Arc<rustls::ClientConfig> {
    world.ca().client_config().unwrap()
}

#[test]
fn bundled_world_covers_s01_to_s25_with_expectations() {
    let spec = WorldSpec::bundled().unwrap();
    for n in 1..=25 {
        let id = format!("S-{n:02}");
        assert!(spec.scenario(&id).next().is_some(), "{id} missing");
    }
    let s06 = spec.domain("s06.mtasts.test").unwrap();
    assert_eq!(
        s06.expect.as_ref().unwrap().policy_id.as_deref(),
        Some("abc")
    );
    let s25 = spec.scenario("S-25").next().unwrap();
    assert_eq!(s25.name, "xn--bcher-kva.mtasts.test");
    assert_eq!(s25.lookup_name(), "Bücher.MTASTS.test.");
    assert_eq!(
        spec.domain("s02.mtasts.test")
            .unwrap()
            .expect
            .as_ref()
            .unwrap()
            .source,
        Source::None
    );
}

#[test]
fn bundled_world_serves_what_the_scenarios_need() {
    let world = World::bundled().unwrap();

    // S-01: TXT, address, policy over HTTPS with the world's CA.
    let txt = ask(&world, "_mta-sts.s01.mtasts.test.", RecordType::TXT);
    assert_eq!(
        txt_strings(&txt),
        vec![vec![b"v=STSv1; id=20240101T000000;".to_vec()]]
    );
    assert_eq!(
        address_of(&world, "mta-sts.s01.mtasts.test."),
        Some([127, 0, 0, 1].into())
    );
    let r = https_get(
        world.https_port(),
        "mta-sts.s01.mtasts.test",
        POLICY_PATH,
        trust(&world),
    )
    .unwrap();
    assert_eq!(
        (r.status, r.body.as_slice()),
        (200, DEFAULT_POLICY.as_bytes())
    );
    assert_eq!(world.policy_requests("s01.mtasts.test"), 1);
    assert_eq!(world.txt_queries("S01.mtasts.test."), 1);

    // S-02 / S-03 / S-08.
    let code = |name: &str| ask(&world, name, RecordType::TXT).metadata.response_code;
    assert_eq!(code("_mta-sts.s02.mtasts.test."), ResponseCode::NXDomain);
    let nodata = ask(&world, "_mta-sts.s03.mtasts.test.", RecordType::TXT);
    assert_eq!(nodata.metadata.response_code, ResponseCode::NoError);
    assert!(nodata.answers.is_empty());
    assert_eq!(code("_mta-sts.s08.mtasts.test."), ResponseCode::ServFail);

    // S-06: two character-strings in one RR.
    assert_eq!(
        txt_strings(&ask(&world, "_mta-sts.s06.mtasts.test.", RecordType::TXT)),
        vec![vec![b"v=STSv1; id=".to_vec(), b"abc;".to_vec()]]
    );

    // S-09: CNAME followed, over TCP too.
    let cname = tcp_queries(
        world.dns_addr(),
        &[query_message(
            "_mta-sts.s09.mtasts.test.",
            RecordType::TXT,
            false,
        )],
    );
    assert_eq!(cname[0].answers[0].record_type(), RecordType::CNAME);
    assert_eq!(txt_strings(&cname[0]).len(), 1);

    // S-13: 64 KiB + 1, chunked.
    let r = https_get(
        world.https_port(),
        "mta-sts.s13.mtasts.test",
        POLICY_PATH,
        trust(&world),
    )
    .unwrap();
    assert_eq!(r.body.len(), 65_537);
    assert_eq!(r.header("transfer-encoding"), Some("chunked"));

    // S-15..S-17: the certificate does not verify against the world's CA.
    for d in ["s15", "s16", "s17"] {
        let host = format!("mta-sts.{d}.mtasts.test");
        assert!(
            https_get(world.https_port(), &host, POLICY_PATH, trust(&world)).is_err(),
            "{d}"
        );
        assert_eq!(world.https().handshakes(&host), 1);
        assert_eq!(world.https().requests(&host), 0);
    }

    // S-19: 127.0.0.2 where nothing listens on the HTTPS port.
    assert_eq!(
        address_of(&world, "mta-sts.s19.mtasts.test."),
        Some([127, 0, 0, 2].into())
    );
    assert!(TcpStream::connect(("127.0.0.2", world.https_port())).is_err());

    // S-20: the policy host does not exist.
    assert_eq!(code("mta-sts.s20.mtasts.test."), ResponseCode::NXDomain);

    // S-25: the A-label names.
    assert_eq!(
        code("_mta-sts.xn--bcher-kva.mtasts.test."),
        ResponseCode::NoError
    );
}

#[test]
fn runtime_changes_for_cache_scenarios() {
    let world = World::start().unwrap();
    world.add_policy_domain(&DomainSpec::new("d.test")).unwrap();
    // S-32: new id and new policy.
    world.set_policy_id("d.test", "b");
    assert_eq!(
        txt_strings(&ask(&world, "_mta-sts.d.test.", RecordType::TXT)),
        vec![vec![b"v=STSv1; id=b;".to_vec()]]
    );
    world.set_policy_response(
        "d.test",
        HttpResponse::policy("version: STSv1\nmode: none\nmax_age: 86400\n"),
    );
    let r = https_get(
        world.https_port(),
        "mta-sts.d.test",
        POLICY_PATH,
        trust(&world),
    )
    .unwrap();
    assert!(r.body.starts_with(b"version: STSv1\nmode: none"));
    // S-33: the fetch fails.
    world.set_policy_response("d.test", HttpResponse::new(500));
    let r = https_get(
        world.https_port(),
        "mta-sts.d.test",
        POLICY_PATH,
        trust(&world),
    )
    .unwrap();
    assert_eq!(r.status, 500);
    // S-37: TXT and HTTPS gone.
    world.remove_policy_domain("d.test");
    assert_eq!(
        ask(&world, "_mta-sts.d.test.", RecordType::TXT)
            .metadata
            .response_code,
        ResponseCode::NXDomain
    );
    assert!(
        https_get(
            world.https_port(),
            "mta-sts.d.test",
            POLICY_PATH,
            trust(&world)
        )
        .is_err()
    );
}

#[test]
fn world_can_be_shared_between_threads() {
    fn check<T: Send + Sync>() {}
    check::<World>();
}

#[test]
fn ca_file_lives_as_long_as_the_world() {
    let world = World::start().unwrap();
    let path = world.ca_pem_path().to_owned();
    assert!(path.starts_with(std::env::temp_dir()));
    assert_eq!(std::fs::read_to_string(&path).unwrap(), world.ca_pem());
    let other = World::start().unwrap();
    assert_ne!(other.ca_pem_path(), path);
    assert_ne!(other.ca_pem(), world.ca_pem());
    drop(world);
    assert!(!path.exists());
}

struct Spawned {
    child: Child,
    line: serde_json::Value,
}

fn spawn_binary(args: &[&str]) -> Spawned {
    let mut child = Command::new(env!("CARGO_BIN_EXE_mtasts-testworld"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let line: serde_json::Value = serde_json::from_str(&line).expect("one JSON line");
    Spawned { child, line }
}

fn wait_exit(child: &mut Child, within: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("mtasts-testworld did not exit within {within:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn binary_prints_its_json_line_and_exits_on_stdin_eof() {
    let mut s = spawn_binary(&[]);
    let dns: std::net::SocketAddr = s.line["dns"].as_str().unwrap().parse().unwrap();
    let port = u16::try_from(s.line["https_port"].as_u64().unwrap()).unwrap();
    let ca_path = std::path::PathBuf::from(s.line["ca_pem"].as_str().unwrap());
    assert!(dns.ip().is_loopback());
    assert!(port > 0);
    assert!(
        std::fs::read_to_string(&ca_path)
            .unwrap()
            .contains("BEGIN CERTIFICATE")
    );
    let m = udp_query(
        dns,
        &query_message("_mta-sts.s01.mtasts.test.", RecordType::TXT, true),
        Duration::from_secs(2),
    )
    .unwrap();
    assert_eq!(m.answers.len(), 1);

    let mut stdin = s.child.stdin.take().unwrap();
    stdin.write_all(b"ignored input\n").unwrap();
    drop(stdin);
    let status = wait_exit(&mut s.child, Duration::from_secs(5));
    assert!(status.success(), "{status:?}");
    assert!(!ca_path.exists());
}

#[cfg(unix)]
#[test]
fn binary_exits_cleanly_on_sigterm() {
    let mut s = spawn_binary(&[
        "--world",
        concat!(env!("CARGO_MANIFEST_DIR"), "/world.json"),
    ]);
    let ca_path = std::path::PathBuf::from(s.line["ca_pem"].as_str().unwrap());
    assert!(ca_path.exists());
    let killed = Command::new("kill")
        .args(["-TERM", &s.child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = wait_exit(&mut s.child, Duration::from_secs(5));
    assert!(status.success(), "{status:?}");
    assert!(!ca_path.exists());
}

#[test]
fn binary_rejects_bad_arguments() {
    let out = Command::new(env!("CARGO_BIN_EXE_mtasts-testworld"))
        .arg("--bogus")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = Command::new(env!("CARGO_BIN_EXE_mtasts-testworld"))
        .args(["--world", "/nonexistent/world.json"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
}
