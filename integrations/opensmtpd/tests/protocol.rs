//! `table-mtasts` driven exactly as smtpd drives it, against the hermetic test world: the
//! 7.6 line protocol of smtpd-tables(7) (handshake, check and lookup, unknown services, a
//! malformed line, an oversized key, EOF) and the 6.x imsg protocol on a socket as standard
//! input (open, check, lookup, close), for the enforce and the late table, and a backend whose
//! settings do not load (it still answers, "cannot tell").
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::Duration;

use mtasts_testworld::{Behaviour, World, ZoneRecord};

/// The test world with MX records for s01 (one host outside its policy, two inside).
fn world() -> World {
    let world = World::bundled().unwrap();
    for (pref, host) in [
        (5, "evil.example.org"),
        (10, "mail.example.com"),
        (20, "b.example.net"),
    ] {
        world
            .zone()
            .add_record("s01.mtasts.test", ZoneRecord::mx(pref, host));
    }
    world
}

/// A settings file pointing the backend at `world`, with a SQLite cache in `dir`.
fn settings(world: &World, dir: &Path, extra: &str) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join("mtasts.conf");
    std::fs::write(
        &path,
        format!(
            "nameserver = {}\ntrust_roots = {}\npolicy_port = {}\ncache = {}\n\
             fetch_timeout = 3\ndns_timeout = 2\nsmtpd.timeout = 0.5\n{extra}",
            world.dns_addr(),
            world.ca_pem_path().display(),
            world.https_port(),
            dir.join("cache.db").display()
        ),
    )
    .unwrap();
    path
}

fn dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("table-mtasts-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// The backend as smtpd starts it: argv0 the table name, argv1 the settings file.
fn backend(table: &str, config: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_table-mtasts"));
    cmd.arg0(table).arg(config).stderr(Stdio::null());
    cmd
}

struct V7 {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
}

impl V7 {
    fn start(table: &str, config: &Path) -> V7 {
        let mut child = backend(table, config)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let mut v7 = V7 {
            child,
            stdin,
            stdout,
        };
        v7.send("config|smtpd-version|7.6.0");
        v7.send("config|protocol|0.1");
        v7.send(&format!("config|tablename|{table}"));
        v7.send("config|ready");
        assert_eq!(v7.read(), "register|domain");
        assert_eq!(v7.read(), "register|relayhost");
        assert_eq!(v7.read(), "register|ready");
        v7
    }

    fn send(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().unwrap();
        stdin.write_all(line.as_bytes()).unwrap();
        stdin.write_all(b"\n").unwrap();
        stdin.flush().unwrap();
    }

    fn read(&mut self) -> String {
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        line.trim_end_matches('\n').to_string()
    }

    fn ask(&mut self, op: &str, service: &str, id: u32, key: &str) -> String {
        self.send(&format!(
            "table|0.1|1733100000.000001|t|{op}|{service}|{id:08x}|{key}"
        ));
        self.read()
    }

    /// EOF on standard input, as when smtpd stops: the backend exits 0.
    fn close(mut self) {
        drop(self.stdin.take());
        let status = wait(&mut self.child);
        assert_eq!(status.code(), Some(0));
    }
}

fn wait(child: &mut Child) -> std::process::ExitStatus {
    for _ in 0..400 {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    let _ = child.kill();
    panic!("the backend did not exit");
}

#[test]
fn v7_enforce_table_checks_and_relays_as_smtpd_tables_7_describes() {
    let world = world();
    let dir = dir("v7");
    let config = settings(&world, &dir, "");
    let mut t = V7::start("mtasts", &config);
    assert_eq!(
        t.ask("check", "domain", 1, "s01.mtasts.test"),
        "check-result|00000001|found"
    );
    assert_eq!(
        t.ask("check", "domain", 2, "s02.mtasts.test"),
        "check-result|00000002|not-found",
        "no policy: the usual relay"
    );
    // The policy's hosts only (evil.example.org is skipped), one per attempt, verified.
    assert_eq!(
        t.ask("lookup", "relayhost", 3, "s01.mtasts.test"),
        "lookup-result|00000003|found|smtp+tls://mail.example.com:25"
    );
    assert_eq!(
        t.ask("lookup", "relayhost", 4, "s01.mtasts.test"),
        "lookup-result|00000004|found|smtp+tls://b.example.net:25"
    );
    assert_eq!(
        t.ask("lookup", "relayhost", 5, "S01.MTASTS.TEST"),
        "lookup-result|00000005|found|smtp+tls://mail.example.com:25"
    );
    // Services it does not serve, and a key smtpd would never send: error replies, and the
    // backend goes on.
    assert!(
        t.ask("lookup", "credentials", 6, "x")
            .starts_with("lookup-result|00000006|error|")
    );
    assert!(
        t.ask("check", "mailaddr", 7, "a@b")
            .starts_with("check-result|00000007|error|")
    );
    let long = "k".repeat(2000);
    assert!(
        t.ask("check", "domain", 8, &long)
            .starts_with("check-result|00000008|error|")
    );
    t.send("table|0.1|1.0|t|update|00000009");
    assert_eq!(t.read(), "update-result|00000009|ok");
    assert_eq!(
        t.ask("check", "domain", 10, "s01.mtasts.test"),
        "check-result|0000000a|found"
    );
    assert_eq!(
        world.policy_requests("s01.mtasts.test"),
        1,
        "then from the cache"
    );
    t.close();
}

#[test]
fn v7_a_line_that_cannot_be_answered_ends_the_backend_with_an_error() {
    let world = world();
    let dir = dir("v7bad");
    let config = settings(&world, &dir, "");
    let mut t = V7::start("mtasts", &config);
    t.send("hello smtpd");
    assert_eq!(wait(&mut t.child).code(), Some(1));
}

#[test]
fn v7_late_table_takes_what_cannot_be_told_and_defers_its_relay() {
    let world = world();
    // S-18's policy host drips: not known within smtpd.timeout (0.5 s).
    let dir = dir("late");
    let config = settings(&world, &dir, "");
    let mut late = V7::start("mtasts_late", &config);
    assert_eq!(
        late.ask("check", "domain", 1, "s18.mtasts.test"),
        "check-result|00000001|found",
        "not known in time: the late action"
    );
    assert!(
        late.ask("lookup", "relayhost", 2, "s18.mtasts.test")
            .starts_with("lookup-result|00000002|error|"),
        "still not known: the message waits"
    );
    assert_eq!(
        late.ask("check", "domain", 3, "s02.mtasts.test"),
        "check-result|00000003|not-found"
    );
    assert_eq!(
        late.ask("check", "domain", 4, "s01.mtasts.test"),
        "check-result|00000004|found"
    );
    // A DNS failure for the STS record with nothing cached is no policy (RFC 8461 §5,
    // R-FETCH-12): the usual relay, as every face answers it.
    world
        .zone()
        .set_behaviour("_mta-sts.s03.mtasts.test", Behaviour::ServFail);
    assert_eq!(
        late.ask("check", "domain", 5, "s03.mtasts.test"),
        "check-result|00000005|not-found"
    );
    late.close();
    // A shared cache that cannot be read: cannot tell whether a policy is cached, so the late
    // action (never the usual relay), whose relay lookups fail: the message waits.
    let damaged = dir.join("damaged.db");
    std::fs::write(
        &damaged,
        b"this is not a SQLite database, whatever its name says",
    )
    .unwrap();
    let unreadable = settings(
        &world,
        &dir.join("u"),
        &format!("cache = {}\n", damaged.display()),
    );
    let mut late = V7::start("mtasts_late", &unreadable);
    assert_eq!(
        late.ask("check", "domain", 6, "s02.mtasts.test"),
        "check-result|00000006|found"
    );
    assert!(
        late.ask("lookup", "relayhost", 7, "s02.mtasts.test")
            .starts_with("lookup-result|00000007|error|")
    );
    late.close();
}

fn v6_frame(kind: u32, payload: &[u8]) -> Vec<u8> {
    let len = u16::try_from(16 + payload.len()).unwrap();
    let mut out = kind.to_ne_bytes().to_vec();
    out.extend_from_slice(&len.to_ne_bytes());
    out.extend_from_slice(&[0; 10]);
    out.extend_from_slice(payload);
    out
}

fn v6_query(kind: u32, service: i32, key: &str) -> Vec<u8> {
    let mut p = service.to_ne_bytes().to_vec();
    p.extend_from_slice(&0u64.to_ne_bytes());
    p.extend_from_slice(key.as_bytes());
    p.push(0);
    v6_frame(kind, &p)
}

/// One reply: (type, payload).
fn v6_read(sock: &mut UnixStream) -> (u32, Vec<u8>) {
    let mut header = [0u8; 16];
    sock.read_exact(&mut header).unwrap();
    let kind = u32::from_ne_bytes(header[..4].try_into().unwrap());
    let len = usize::from(u16::from_ne_bytes(header[4..6].try_into().unwrap()));
    let mut payload = vec![0u8; len - 16];
    sock.read_exact(&mut payload).unwrap();
    (kind, payload)
}

fn v6_start(table: &str, config: &Path) -> (Child, UnixStream) {
    let (ours, theirs) = UnixStream::pair().unwrap();
    ours.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let child = backend(table, config)
        .stdin(Stdio::from(OwnedFd::from(theirs)))
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    (child, ours)
}

fn v6_open(sock: &mut UnixStream, name: &str) {
    let mut open = 2u32.to_ne_bytes().to_vec();
    let mut field = name.as_bytes().to_vec();
    field.resize(2048, 0);
    open.extend(field);
    sock.write_all(&v6_frame(2, &open)).unwrap();
    assert_eq!(v6_read(sock), (0, vec![]), "open: an empty OK");
}

const K_DOMAIN: i32 = 0x002;
const K_RELAYHOST: i32 = 0x200;

#[test]
fn v6_imsg_protocol_on_standard_input() {
    let world = world();
    let dir = dir("v6");
    let config = settings(&world, &dir, "");
    let (mut child, mut sock) = v6_start("mtasts", &config);
    v6_open(&mut sock, "mtasts");
    sock.write_all(&v6_query(5, K_DOMAIN, "s01.mtasts.test"))
        .unwrap();
    assert_eq!(
        v6_read(&mut sock),
        (0, 1i32.to_ne_bytes().to_vec()),
        "found"
    );
    sock.write_all(&v6_query(5, K_DOMAIN, "s02.mtasts.test"))
        .unwrap();
    assert_eq!(
        v6_read(&mut sock),
        (0, 0i32.to_ne_bytes().to_vec()),
        "not found"
    );
    sock.write_all(&v6_query(6, K_RELAYHOST, "s01.mtasts.test"))
        .unwrap();
    let (kind, payload) = v6_read(&mut sock);
    assert_eq!(kind, 0);
    assert_eq!(&payload[..4], &1i32.to_ne_bytes());
    assert_eq!(&payload[4..], b"smtp+tls://mail.example.com:25\0");
    // An unknown service and an oversized key: OK messages carrying -1, and it goes on.
    sock.write_all(&v6_query(6, 0x040, "a@b")).unwrap();
    assert_eq!(v6_read(&mut sock), (0, (-1i32).to_ne_bytes().to_vec()));
    sock.write_all(&v6_query(5, K_DOMAIN, &"k".repeat(3000)))
        .unwrap();
    assert_eq!(v6_read(&mut sock), (0, (-1i32).to_ne_bytes().to_vec()));
    sock.write_all(&v6_query(5, K_DOMAIN, "s01.mtasts.test"))
        .unwrap();
    assert_eq!(v6_read(&mut sock), (0, 1i32.to_ne_bytes().to_vec()));
    // CLOSE: no reply, the backend exits 0.
    sock.write_all(&v6_frame(3, &[])).unwrap();
    assert_eq!(wait(&mut child).code(), Some(0));
}

#[test]
fn settings_that_do_not_load_still_answer_cannot_tell() {
    let world = world();
    let dir = dir("broken");
    let config = settings(&world, &dir, "smtpd.timeout = soon\n");
    let mut enforce = V7::start("mtasts", &config);
    assert_eq!(
        enforce.ask("check", "domain", 1, "s01.mtasts.test"),
        "check-result|00000001|not-found"
    );
    assert!(
        enforce
            .ask("lookup", "relayhost", 2, "s01.mtasts.test")
            .starts_with("lookup-result|00000002|error|")
    );
    enforce.close();
    let mut late = V7::start("mtasts_late", &config);
    assert_eq!(
        late.ask("check", "domain", 3, "s02.mtasts.test"),
        "check-result|00000003|found",
        "cannot tell: the late action, whose relay lookups fail: the message waits"
    );
    late.close();
}
