//! `mtasts serve` as an administrator runs it, against the hermetic test world: the settings
//! file's `serve.*` keys and `--check-config`, SIGHUP reloading without dropping
//! connections (and keeping the running configuration when the new one is broken), SIGTERM
//! under load, 512 connections at once, slow clients cut while others are served, the
//! metrics listener, systemd socket activation and readiness notification, and (as root)
//! the socket's permissions and owner and the dropped privileges.
#![allow(clippy::unwrap_used, clippy::expect_used, unsafe_code)]

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixDatagram, UnixListener, UnixStream};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use common::{
    exchange, exchange_on, netstring, serve_dir, signal, start, start_command, wait_exit,
};
use mtasts_testworld::World;

const SECURE: &str = "OK secure match=mail.example.com:.example.net servername=hostname";

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(2) == Some("0"))
}

fn connect(socket: &Path) -> UnixStream {
    let stream = UnixStream::connect(socket).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    stream
}

#[test]
fn check_config_reads_the_file_and_names_a_bad_line() {
    let world = World::bundled().unwrap();
    let dir = serve_dir("check");
    let good = dir.join("good.conf");
    std::fs::write(
        &good,
        "cache = memory\nserve.listen = unix:/run/mtasts/socketmap.sock\n\
         serve.map.strict.strict_testing = yes\nserve.map.postfix.tlsrpt = yes\n\
         serve.metrics = 127.0.0.1:9461\n",
    )
    .unwrap();
    let out = common::mtasts(&world)
        .arg("--config")
        .arg(&good)
        .args(["serve", "--check-config"])
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains("listen: unix:/run/mtasts/socketmap.sock (mode 660)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("map strict: strict_testing=true tlsrpt=false"),
        "{stdout}"
    );
    assert!(
        stdout.contains("map postfix: strict_testing=false tlsrpt=true"),
        "{stdout}"
    );
    assert!(
        stdout.contains("metrics on http://127.0.0.1:9461/metrics"),
        "{stdout}"
    );
    assert!(stdout.ends_with("configuration OK\n"), "{stdout}");

    for (text, line, why) in [
        (
            "serve.listen = unix:/x\nserve.lisen = unix:/y\n",
            ":2:",
            "unknown setting",
        ),
        (
            "serve.map.postfix.tlsrpt = perhaps\n",
            ":1:",
            "expected yes or no",
        ),
        ("fetch_timout = 3\n", ":1:", "unknown setting"),
    ] {
        let bad = dir.join("bad.conf");
        std::fs::write(&bad, text).unwrap();
        let out = common::mtasts(&world)
            .arg("--config")
            .arg(&bad)
            .args(["serve", "--check-config"])
            .output()
            .unwrap();
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert_eq!(out.status.code(), Some(2), "{text}: {stderr}");
        assert!(
            stderr.contains(line) && stderr.contains(why),
            "{text}: {stderr}"
        );
    }
    // No listener anywhere is a configuration that cannot serve.
    let out = common::mtasts(&world)
        .args(["serve", "--check-config"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8(out.stderr)
            .unwrap()
            .contains("no listener")
    );
}

#[test]
fn sighup_reloads_the_file_on_open_connections_and_keeps_it_when_broken() {
    let world = World::bundled().unwrap();
    let dir = serve_dir("sighup");
    let socket = dir.join("socketmap.sock");
    let conf = dir.join("mtasts.conf");
    std::fs::write(&conf, format!("serve.listen = unix:{}\n", socket.display())).unwrap();
    let mut cmd = common::mtasts(&world);
    cmd.arg("--config").arg(&conf).arg("serve");
    let mut server = start_command(cmd, socket.clone(), dir);
    let mut open = connect(&socket);
    assert_eq!(
        exchange_on(&mut open, &["postfix s01.mtasts.test"], 1),
        [SECURE]
    );

    std::fs::write(
        &conf,
        format!(
            "serve.listen = unix:{}\nserve.map.postfix.sni = no\n",
            socket.display()
        ),
    )
    .unwrap();
    signal(&server.child, "HUP");
    let no_sni = "OK secure match=mail.example.com:.example.net";
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let reply = exchange_on(&mut open, &["postfix s01.mtasts.test"], 1).remove(0);
        if reply == no_sni {
            break;
        }
        assert_eq!(reply, SECURE);
        assert!(Instant::now() < deadline, "the reload did not take effect");
        thread::sleep(Duration::from_millis(50));
    }
    // A broken file: the running configuration stays, and so does the server.
    std::fs::write(&conf, "serve.map.postfix.sni = sometimes\n").unwrap();
    signal(&server.child, "HUP");
    thread::sleep(Duration::from_millis(300));
    assert_eq!(
        exchange_on(&mut open, &["postfix s01.mtasts.test"], 1),
        [no_sni]
    );
    assert_eq!(exchange(&socket, &["postfix s01.mtasts.test"], 1), [no_sni]);
    assert!(server.child.try_wait().unwrap().is_none(), "still running");
    assert_eq!(
        world.policy_requests("s01.mtasts.test"),
        1,
        "the cache was kept"
    );
}

#[test]
fn sighup_then_sigterm_under_load_drop_nothing_then_drain_and_exit() {
    let world = World::bundled().unwrap();
    let mut server = start(&world, "term-load", &[]);
    let stop = Arc::new(AtomicBool::new(false));
    let answered = Arc::new(AtomicUsize::new(0));
    let broken = Arc::new(AtomicUsize::new(0));
    let clients: Vec<_> = (0..8)
        .map(|_| {
            let (socket, stop, answered, broken) = (
                server.socket.clone(),
                Arc::clone(&stop),
                Arc::clone(&answered),
                Arc::clone(&broken),
            );
            thread::spawn(move || {
                let Ok(mut stream) = UnixStream::connect(&socket) else {
                    return;
                };
                stream
                    .set_read_timeout(Some(Duration::from_secs(30)))
                    .unwrap();
                let mut chunk = [0u8; 256];
                // Bounded: at most 20,000 requests per client.
                for _ in 0..20_000 {
                    if stop.load(Ordering::SeqCst)
                        || stream
                            .write_all(&netstring("postfix s01.mtasts.test"))
                            .is_err()
                    {
                        return;
                    }
                    match stream.read(&mut chunk) {
                        Ok(n) if n > 0 => answered.fetch_add(1, Ordering::SeqCst),
                        _ => {
                            broken.fetch_add(1, Ordering::SeqCst);
                            return;
                        }
                    };
                }
            })
        })
        .collect();
    let until = Instant::now() + Duration::from_secs(10);
    while answered.load(Ordering::SeqCst) < 200 && Instant::now() < until {
        thread::sleep(Duration::from_millis(10));
    }
    assert!(
        answered.load(Ordering::SeqCst) >= 200,
        "the load is running"
    );
    signal(&server.child, "TERM");
    // The drain waits for open connections at most 10 s; the clients keep going meanwhile.
    let status = wait_exit(&mut server.child, Duration::from_secs(20));
    stop.store(true, Ordering::SeqCst);
    for client in clients {
        client.join().unwrap();
    }
    assert_eq!(status.code(), Some(0));
    assert!(!server.socket.exists(), "the socket is removed");
}

#[test]
fn the_background_refresh_renews_due_policies() {
    let world = World::bundled().unwrap();
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port()
    };
    let metrics = format!("127.0.0.1:{port}");
    // s01's policy has max_age 86400: expiring within a day, it is due at once (R-CACHE-6).
    let server = start(
        &world,
        "refresh",
        &["--refresh-interval", "1", "--metrics", &metrics],
    );
    assert_eq!(
        exchange(&server.socket, &["postfix s01.mtasts.test"], 1),
        [SECURE]
    );
    let until = Instant::now() + Duration::from_secs(20);
    while world.policy_requests("s01.mtasts.test") < 3 && Instant::now() < until {
        thread::sleep(Duration::from_millis(50));
    }
    assert!(
        world.policy_requests("s01.mtasts.test") >= 3,
        "fetched by the request, then again by two refresh runs"
    );
    let mut stream = TcpStream::connect(&metrics).unwrap();
    write!(stream, "GET /metrics HTTP/1.1\r\n\r\n").unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).unwrap();
    let refreshed: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("mtasts_refreshes_total{outcome=\"refreshed\"} "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(refreshed >= 2, "{text}");
    // The answers stay as they were: a renewal never drops the policy.
    assert_eq!(
        exchange(&server.socket, &["postfix s01.mtasts.test"], 1),
        [SECURE]
    );
}

#[test]
fn sigterm_closes_idle_connections_at_once_and_the_socket_goes_first() {
    let world = World::bundled().unwrap();
    let mut server = start(&world, "term-idle", &[]);
    // As Postfix's smtp processes do: answered, then kept open for the next lookup.
    let mut idle = connect(&server.socket);
    assert_eq!(
        exchange_on(&mut idle, &["postfix s02.mtasts.test"], 1),
        ["NOTFOUND "]
    );
    let started = Instant::now();
    signal(&server.child, "TERM");
    let mut rest = Vec::new();
    assert_eq!(
        idle.read_to_end(&mut rest).unwrap(),
        0,
        "closed by the server"
    );
    let status = wait_exit(&mut server.child, Duration::from_secs(20));
    assert_eq!(status.code(), Some(0));
    // Not the 10 s drain: the idle connection is closed within its next look (200 ms).
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "stopped after {:?}",
        started.elapsed()
    );
    assert!(!server.socket.exists());
}

#[test]
fn five_hundred_and_twelve_connections_at_once_and_the_next_is_refused() {
    let world = World::bundled().unwrap();
    let server = start(&world, "c512", &[]);
    let mut streams: Vec<UnixStream> = (0..512).map(|_| connect(&server.socket)).collect();
    // Every one holds its slot while all the others do, and each is answered.
    for stream in &mut streams {
        stream
            .write_all(&netstring("postfix s01.mtasts.test"))
            .unwrap();
    }
    // A connection counts until the server has seen it close: the start-up probe may still
    // count for a moment, and a connection refused in that moment is opened again (once).
    let mut reopened = 0;
    for stream in &mut streams {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 256];
        while mtasts_core::read_netstring(&buf, 1000).unwrap().is_none() {
            let n = stream.read(&mut chunk).unwrap();
            if n == 0 && buf.is_empty() && reopened == 0 {
                reopened += 1;
                std::thread::sleep(Duration::from_millis(200));
                *stream = connect(&server.socket);
                stream
                    .write_all(&netstring("postfix s01.mtasts.test"))
                    .unwrap();
                continue;
            }
            assert!(n > 0, "a connection within the limit was closed");
            buf.extend_from_slice(&chunk[..n]);
        }
        let (reply, _) = mtasts_core::read_netstring(&buf, 1000).unwrap().unwrap();
        assert_eq!(reply, SECURE.as_bytes());
    }
    let mut extra = connect(&server.socket);
    let mut rest = Vec::new();
    assert_eq!(
        extra.read_to_end(&mut rest).unwrap(),
        0,
        "the 513th is closed"
    );
    assert_eq!(world.policy_requests("s01.mtasts.test"), 1);
}

#[test]
fn slow_clients_are_cut_and_the_others_are_served_meanwhile() {
    let world = World::bundled().unwrap();
    let server = start(&world, "slowloris", &["--client-timeout", "1"]);
    // Slowloris: 50 connections, each dripping a request one byte every 300 ms.
    let cut = Arc::new(AtomicUsize::new(0));
    let drips: Vec<_> = (0..50)
        .map(|_| {
            let (socket, cut) = (server.socket.clone(), Arc::clone(&cut));
            thread::spawn(move || {
                let mut stream = connect(&socket);
                stream
                    .set_read_timeout(Some(Duration::from_millis(50)))
                    .unwrap();
                let request = netstring("postfix s01.mtasts.test");
                for byte in request.iter().take(10) {
                    if stream.write_all(&[*byte]).is_err() {
                        break;
                    }
                    thread::sleep(Duration::from_millis(300));
                    let mut chunk = [0u8; 16];
                    if matches!(stream.read(&mut chunk), Ok(0)) {
                        cut.fetch_add(1, Ordering::SeqCst);
                        return;
                    }
                }
            })
        })
        .collect();
    thread::sleep(Duration::from_millis(200));
    for _ in 0..20 {
        assert_eq!(
            exchange(&server.socket, &["postfix s01.mtasts.test"], 1),
            [SECURE]
        );
    }
    for drip in drips {
        drip.join().unwrap();
    }
    assert_eq!(cut.load(Ordering::SeqCst), 50, "every slow client was cut");
}

#[test]
fn the_metrics_listener_counts_what_was_answered() {
    let world = World::bundled().unwrap();
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port()
    };
    let metrics = format!("127.0.0.1:{port}");
    let server = start(&world, "metrics", &["--metrics", &metrics]);
    exchange(
        &server.socket,
        &[
            "postfix s01.mtasts.test",
            "postfix s01.mtasts.test",
            "postfix s02.mtasts.test",
            "postfix",
        ],
        4,
    );
    let get = |path: &str| {
        let mut stream = TcpStream::connect(&metrics).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        write!(stream, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let mut text = String::new();
        stream.read_to_string(&mut text).unwrap();
        text
    };
    let text = get("/metrics");
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    for line in [
        "mtasts_requests_total 4\n",
        "mtasts_answers_total{kind=\"secure\"} 2\n",
        "mtasts_answers_total{kind=\"notfound\"} 1\n",
        "mtasts_answers_total{kind=\"perm\"} 1\n",
        "mtasts_cache_hits_total 1\n",
        "mtasts_fetches_total 1\n",
        "mtasts_answer_seconds_count 4\n",
        "mtasts_connections_total{outcome=\"refused\"} 0\n",
    ] {
        assert!(text.contains(line), "{line:?} in\n{text}");
    }
    assert!(get("/other").starts_with("HTTP/1.1 404 "));
    // Not on loopback: refused before anything starts.
    let out = common::mtasts(&world)
        .args([
            "serve",
            "--listen",
            "tcp:127.0.0.1:0",
            "--metrics",
            "0.0.0.0:9461",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8(out.stderr).unwrap().contains("loopback"));
}

#[test]
fn syslog_gets_one_line_per_event_with_the_domain_and_the_result_type() {
    let world = World::bundled().unwrap();
    let dir = serve_dir("syslog");
    let log_path = dir.join("log");
    let syslog = UnixDatagram::bind(&log_path).unwrap();
    syslog
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let conf = dir.join("mtasts.conf");
    std::fs::write(
        &conf,
        format!("serve.syslog_socket = {}\n", log_path.display()),
    )
    .unwrap();
    let socket = dir.join("socketmap.sock");
    let mut cmd = common::mtasts(&world);
    cmd.arg("--config")
        .arg(&conf)
        .args(["serve", "--syslog", "--listen"])
        .arg(format!("unix:{}", socket.display()));
    let server = start_command(cmd, socket.clone(), dir);
    exchange(
        &socket,
        &["postfix s01.mtasts.test", "postfix s13.mtasts.test"],
        2,
    );
    let pid = server.child.id();
    let mut lines = Vec::new();
    let mut buf = [0u8; 2048];
    while !lines.iter().any(|l: &String| l.contains("s13.mtasts.test")) {
        let n = syslog.recv(&mut buf).expect("a log line");
        lines.push(String::from_utf8_lossy(&buf[..n]).into_owned());
    }
    // Anything else about s13 would have come with it; a short wait shows there is none.
    syslog
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    while let Ok(n) = syslog.recv(&mut buf) {
        lines.push(String::from_utf8_lossy(&buf[..n]).into_owned());
    }
    // Facility mail (2), severity info (6): <22>; warning (4): <20>.
    let fetched = format!("<22>mtasts[{pid}]: info: s01.mtasts.test: fetched policy id ");
    assert!(lines.iter().any(|l| l.starts_with(&fetched)), "{lines:#?}");
    let failed: Vec<_> = lines
        .iter()
        .filter(|l| l.contains("s13.mtasts.test"))
        .collect();
    assert_eq!(failed.len(), 1, "one line per event: {failed:#?}");
    assert!(
        failed[0].starts_with(&format!("<20>mtasts[{pid}]: warning: s13.mtasts.test: "))
            && failed[0].ends_with("; result type sts-policy-fetch-error"),
        "{}",
        failed[0]
    );
}

#[test]
fn systemd_socket_activation_and_readiness() {
    let world = World::bundled().unwrap();
    let dir = serve_dir("systemd");
    let socket = dir.join("activated.sock");
    let listener = UnixListener::bind(&socket).unwrap();
    let notify_path = dir.join("notify");
    let notify = UnixDatagram::bind(&notify_path).unwrap();
    notify
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let fd = listener.as_raw_fd();
    // `sh` sets LISTEN_PID to its own pid and execs the server, which keeps it.
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg("LISTEN_PID=$$ LISTEN_FDS=1 exec \"$0\" \"$@\"")
        .arg(env!("CARGO_BIN_EXE_mtasts"))
        .args(common::mtasts(&world).get_args())
        .arg("serve")
        .env("NOTIFY_SOCKET", &notify_path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // SAFETY: dup2 is async-signal-safe; the listener stays open in the parent until then.
    unsafe {
        cmd.pre_exec(move || {
            if libc::dup2(fd, 3) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().unwrap();
    drop(listener);
    let mut buf = [0u8; 256];
    let mut next = || {
        let n = notify.recv(&mut buf).expect("a notification");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    };
    assert_eq!(next(), "READY=1");
    // Served on the socket systemd (here: the test) made and passed.
    assert_eq!(exchange(&socket, &["postfix s01.mtasts.test"], 1), [SECURE]);
    signal(&child, "HUP");
    assert_eq!(next(), "RELOADING=1");
    assert_eq!(next(), "READY=1");
    signal(&child, "TERM");
    assert_eq!(next(), "STOPPING=1");
    assert_eq!(
        wait_exit(&mut child, Duration::from_secs(20)).code(),
        Some(0)
    );
    assert!(socket.exists(), "systemd's socket is systemd's to remove");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn as_root_the_socket_mode_and_owner_hold_and_root_is_dropped() {
    if !is_root() {
        eprintln!("SKIPPED: needs root (socket owner, setuid)");
        return;
    }
    let world = World::bundled().unwrap();
    let server = start(
        &world,
        "root",
        &[
            "--socket-mode",
            "600",
            "--socket-owner",
            "nobody:nogroup",
            "--user",
            "nobody:nogroup",
        ],
    );
    // The socket takes connections from the moment it is bound, before its mode and owner
    // are set and root is given up; an answer comes only once the server runs as its user
    // (it opens its cache after that), so the checks wait for one.
    assert_eq!(
        exchange(&server.socket, &["postfix s01.mtasts.test"], 1),
        [SECURE]
    );
    let meta = std::fs::metadata(&server.socket).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    let nobody = common_ids("nobody");
    assert_eq!(meta.uid(), nobody, "owned by serve.socket_owner");
    let status = std::fs::read_to_string(format!("/proc/{}/status", server.child.id())).unwrap();
    let uid_line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    assert!(
        uid_line
            .split_whitespace()
            .skip(1)
            .all(|u| u == nobody.to_string()),
        "real, effective, saved and fs uid are nobody's: {uid_line}"
    );
    // A client that may not write the socket is refused by the kernel: here a user that is
    // neither its owner nor in its group (mode 600 lets only nobody in).
    let query = |user: &str| {
        Command::new("setpriv")
            .args([
                &format!("--reuid={user}"),
                "--regid=nogroup",
                "--clear-groups",
                env!("CARGO_BIN_EXE_mtasts"),
                "query",
                "--socket",
                &format!("unix:{}", server.socket.display()),
                "s01.mtasts.test",
            ])
            .output()
            .unwrap()
    };
    // The directory is the test's (0755 under /tmp): traversable by anyone.
    std::fs::set_permissions(&server.dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let refused = query("daemon");
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("Permission denied"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    let allowed = query("nobody");
    assert_eq!(String::from_utf8_lossy(&allowed.stdout).trim_end(), SECURE);
}

/// The uid of `user` from /etc/passwd.
fn common_ids(user: &str) -> u32 {
    std::fs::read_to_string("/etc/passwd")
        .unwrap()
        .lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f[0] == user).then(|| f[2].parse().unwrap())
        })
        .unwrap()
}
