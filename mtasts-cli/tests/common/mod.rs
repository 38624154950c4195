//! What the command's test files share.
// Each test binary compiles this module and uses part of it.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use mtasts_testworld::World;

/// `mtasts` pointed at `world` (its DNS, CA and HTTPS port), short deadlines, a memory cache.
pub fn mtasts(world: &World) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mtasts"));
    cmd.arg("--nameserver")
        .arg(world.dns_addr().to_string())
        .arg("--trust-roots")
        .arg(world.ca_pem_path())
        .arg("--policy-port")
        .arg(world.https_port().to_string())
        .args(["--timeout", "3", "--dns-timeout", "2", "--cache", "memory"]);
    cmd
}

/// Runs `cmd` with `stdin` as its standard input (empty when `None`) and collects its output.
pub fn run_with_stdin(cmd: &mut Command, stdin: Option<&[u8]>) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run mtasts");
    let mut input = child.stdin.take().expect("stdin");
    input
        .write_all(stdin.unwrap_or_default())
        .expect("write stdin");
    drop(input);
    child.wait_with_output().expect("wait for mtasts")
}

/// A running `mtasts serve`, killed (and its directory removed) when dropped.
pub struct Server {
    pub child: Child,
    pub socket: PathBuf,
    pub dir: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A fresh directory for one server test.
pub fn serve_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("mtasts-serve-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `mtasts serve --listen unix:DIR/socketmap.sock EXTRA…` against `world`, once it answers.
pub fn start(world: &World, tag: &str, extra: &[&str]) -> Server {
    let dir = serve_dir(tag);
    let socket = dir.join("socketmap.sock");
    let mut cmd = mtasts(world);
    cmd.arg("serve")
        .arg("--listen")
        .arg(format!("unix:{}", socket.display()))
        .args(extra);
    start_command(cmd, socket, dir)
}

/// Starts `cmd` (an `mtasts serve`) and waits until `socket` takes connections.
pub fn start_command(mut cmd: Command, socket: PathBuf, dir: PathBuf) -> Server {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while UnixStream::connect(&socket).is_err() {
        assert!(Instant::now() < deadline, "the server did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    Server { child, socket, dir }
}

/// `s` as a netstring.
pub fn netstring(s: &str) -> Vec<u8> {
    format!("{}:{s},", s.len()).into_bytes()
}

/// Sends `requests` at once on a new connection to `socket` and reads `replies` replies.
pub fn exchange(socket: &Path, requests: &[&str], replies: usize) -> Vec<String> {
    let mut stream = UnixStream::connect(socket).unwrap();
    exchange_on(&mut stream, requests, replies)
}

/// [`exchange`] on an open connection.
pub fn exchange_on(stream: &mut UnixStream, requests: &[&str], replies: usize) -> Vec<String> {
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let all: Vec<u8> = requests.iter().flat_map(|r| netstring(r)).collect();
    stream.write_all(&all).unwrap();
    let mut buf = Vec::new();
    let mut out = Vec::new();
    let mut chunk = [0u8; 4096];
    while out.len() < replies {
        if let Some((payload, used)) = mtasts_core::read_netstring(&buf, 100_000).unwrap() {
            out.push(String::from_utf8(payload.to_vec()).unwrap());
            buf.drain(..used);
            continue;
        }
        let n = stream.read(&mut chunk).unwrap();
        assert!(n > 0, "closed after {} replies", out.len());
        buf.extend_from_slice(&chunk[..n]);
    }
    out
}

/// Sends `signal` (`TERM`, `HUP`, …) to `child`.
pub fn signal(child: &Child, signal: &str) {
    let sent = Command::new("kill")
        .args([format!("-{signal}"), child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
}

/// Waits for `child` to exit, at most `limit`.
pub fn wait_exit(child: &mut Child, limit: Duration) -> ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(Instant::now() < deadline, "no exit within {limit:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}
