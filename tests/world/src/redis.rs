//! A real `redis-server` (the Debian package) for the Redis cache tests, on a loopback port.
//!
//! Each [`RedisServer`] is its own process with its own temporary directory: no persistence
//! (`--save ""`, `--appendonly no`), bound to `127.0.0.1` only, protected mode on, plus a Unix
//! socket in that directory. Tests can stop it and start it again on the same port to play an
//! outage. Dropping it kills the process, reaps it and removes the directory.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::error::Error;

/// The program started; found on `PATH`.
const PROGRAM: &str = "redis-server";
/// How long a start may take until the server answers `PING`.
const START_TIMEOUT: Duration = Duration::from_secs(5);
/// Fresh ports tried by [`RedisServer::start`] when the chosen one was taken meanwhile.
const PORT_ATTEMPTS: usize = 10;
/// Attempts of [`RedisServer::restart`] to bind its port again: a port freed by a killed
/// server can be held for a moment by a client socket of the test itself.
const RESTART_ATTEMPTS: usize = 20;

/// A `redis-server` process on `127.0.0.1` and an ephemeral port, for tests.
///
/// ```no_run
/// use mtasts_testworld::RedisServer;
///
/// let mut redis = RedisServer::start()?;
/// let url = redis.url(); // redis://127.0.0.1:PORT/0
/// redis.kill()?;         // outage: connections are refused
/// redis.restart()?;      // back on the same port, empty
/// # Ok::<(), mtasts_testworld::Error>(())
/// ```
#[derive(Debug)]
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
    program: &'static str,
}

impl RedisServer {
    /// Starts `redis-server` on a free loopback port and waits (at most 5 s) until it answers
    /// `PING`.
    ///
    /// Errors: [`Error::Io`] when `redis-server` is not installed (the message says to run
    /// `scripts/install-deps`), when it does not start or answer in time (with the tail of
    /// its log), or when no free port was found.
    pub fn start() -> Result<RedisServer, Error> {
        RedisServer::start_program(PROGRAM)
    }

    fn start_program(program: &'static str) -> Result<RedisServer, Error> {
        let dir = temp_dir()?;
        let mut server = RedisServer {
            child: None,
            port: 0,
            dir,
            program,
        };
        let mut last = None;
        for _ in 0..PORT_ATTEMPTS {
            server.port = free_port()?;
            match server.spawn() {
                Ok(()) => return Ok(server),
                Err(Launch::PortTaken(e)) => last = Some(e),
                Err(Launch::Failed(e)) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| other("no free port for redis-server")))
    }

    /// The TCP port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.port))
    }

    /// The URL of database 0: `redis://127.0.0.1:PORT/0`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// The server's Unix socket (permissions 0700, in its temporary directory).
    pub fn socket_path(&self) -> PathBuf {
        self.dir.join("redis.sock")
    }

    /// The URL of database 0 over the Unix socket: `redis+unix:///…/redis.sock?db=0`.
    pub fn unix_url(&self) -> String {
        format!("redis+unix://{}?db=0", self.socket_path().display())
    }

    /// Whether the process is running (false after [`RedisServer::kill`] or if it died).
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut().map(Child::try_wait) {
            Some(Ok(None)) => true,
            Some(Ok(Some(_)) | Err(_)) | None => false,
        }
    }

    /// Sends a command to the server and returns its raw RESP reply (e.g. `+PONG\r\n`);
    /// for checks independent of the client under test. One read, so meant for short replies.
    pub fn command(&self, args: &[&str]) -> Result<String, Error> {
        let mut stream = TcpStream::connect_timeout(&self.addr(), Duration::from_secs(1))?;
        stream.set_read_timeout(Some(Duration::from_secs(2)))?;
        stream.set_write_timeout(Some(Duration::from_secs(2)))?;
        let mut request = format!("*{}\r\n", args.len());
        for arg in args {
            request.push_str(&format!("${}\r\n{arg}\r\n", arg.len()));
        }
        stream.write_all(request.as_bytes())?;
        let mut reply = vec![0; 64 * 1024];
        let n = stream.read(&mut reply)?;
        reply.truncate(n);
        Ok(String::from_utf8_lossy(&reply).into_owned())
    }

    /// Kills the server (SIGKILL: an abrupt outage, nothing is saved) and reaps it; the
    /// port and directory stay for [`RedisServer::restart`]. Idempotent.
    pub fn kill(&mut self) -> Result<(), Error> {
        if let Some(mut child) = self.child.take() {
            // Fails only if it has exited already; `wait` reaps it either way.
            let _ = child.kill();
            child.wait()?;
        }
        Ok(())
    }

    /// Starts the server again on the same port (killing it first if it runs), empty, and
    /// waits until it answers `PING`.
    pub fn restart(&mut self) -> Result<(), Error> {
        self.kill()?;
        let mut last = None;
        for _ in 0..RESTART_ATTEMPTS {
            match self.spawn() {
                Ok(()) => return Ok(()),
                Err(Launch::PortTaken(e)) => {
                    last = Some(e);
                    thread::sleep(Duration::from_millis(100));
                }
                Err(Launch::Failed(e)) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| other("redis-server could not bind its port again")))
    }

    /// Kills the server, reaps it and removes its directory (what dropping it does, with
    /// errors reported).
    pub fn stop(mut self) -> Result<(), Error> {
        self.kill()?;
        fs::remove_dir_all(&self.dir)?;
        Ok(())
    }

    /// Runs `redis-server` on `self.port` and waits for `PING`.
    fn spawn(&mut self) -> Result<(), Launch> {
        let log_path = self.dir.join("redis.log");
        let log = File::create(&log_path).map_err(|e| Launch::Failed(e.into()))?;
        let log_err = log.try_clone().map_err(|e| Launch::Failed(e.into()))?;
        let mut child = Command::new(self.program)
            .args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1"])
            .args(["--protected-mode", "yes"])
            .args(["--save", ""])
            .args(["--appendonly", "no"])
            .arg("--dir")
            .arg(&self.dir)
            .arg("--unixsocket")
            .arg(self.socket_path())
            .args(["--unixsocketperm", "700"])
            .args(["--daemonize", "no"])
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .spawn()
            .map_err(|e| {
                Launch::Failed(if e.kind() == io::ErrorKind::NotFound {
                    Error::Io(io::Error::new(
                        io::ErrorKind::NotFound,
                        "redis-server is not installed (not on PATH): run scripts/install-deps",
                    ))
                } else {
                    Error::Io(io::Error::new(
                        e.kind(),
                        format!("starting redis-server: {e}"),
                    ))
                })
            })?;
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                let log = read_tail(&log_path);
                let e = other(&format!("redis-server exited ({status}): {log}"));
                return Err(if log.contains("Address already in use") {
                    Launch::PortTaken(e)
                } else {
                    Launch::Failed(e)
                });
            }
            if ping(self.addr()) {
                self.child = Some(child);
                return Ok(());
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(Launch::Failed(other(&format!(
                    "redis-server did not answer PING within {START_TIMEOUT:?}: {}",
                    read_tail(&log_path)
                ))));
            }
            thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.kill();
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// Why a launch failed.
enum Launch {
    /// The port was taken: another may work.
    PortTaken(Error),
    /// Anything else.
    Failed(Error),
}

fn other(message: &str) -> Error {
    Error::Io(io::Error::other(message.to_string()))
}

/// A loopback port free right now (the kernel's choice for port 0); it may be taken again
/// before redis-server binds it, which [`RedisServer::start`] handles by trying another.
fn free_port() -> Result<u16, Error> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    Ok(listener.local_addr()?.port())
}

/// A new directory under the system's temporary directory.
fn temp_dir() -> Result<PathBuf, Error> {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    loop {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("mtasts-redis-{}-{n}-{nanos}", std::process::id()));
        match fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// Whether a server on `addr` answers `PING` with `PONG`.
fn ping(addr: SocketAddr) -> bool {
    let attempt = || -> io::Result<bool> {
        let mut stream = TcpStream::connect_timeout(&addr, Duration::from_millis(200))?;
        stream.set_read_timeout(Some(Duration::from_millis(500)))?;
        stream.write_all(b"*1\r\n$4\r\nPING\r\n")?;
        let mut reply = [0; 7];
        stream.read_exact(&mut reply)?;
        Ok(&reply == b"+PONG\r\n")
    };
    attempt().unwrap_or(false)
}

/// The last lines of the server's log, for error messages.
fn read_tail(path: &Path) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().rev().take(5).collect();
    lines.into_iter().rev().collect::<Vec<_>>().join(" | ")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn starts_answers_restarts_and_cleans_up() {
        let mut redis = RedisServer::start().unwrap();
        assert_eq!(redis.url(), format!("redis://127.0.0.1:{}/0", redis.port()));
        assert_eq!(redis.command(&["PING"]).unwrap(), "+PONG\r\n");
        assert_eq!(redis.command(&["SET", "k", "v"]).unwrap(), "+OK\r\n");
        // Loopback only, no persistence.
        let bind = redis.command(&["CONFIG", "GET", "bind"]).unwrap();
        assert!(bind.contains("127.0.0.1"), "{bind}");
        let save = redis.command(&["CONFIG", "GET", "save"]).unwrap();
        assert!(save.ends_with("$0\r\n\r\n"), "{save:?}");
        assert!(redis.socket_path().exists());

        redis.kill().unwrap();
        assert!(!redis.is_running());
        assert!(
            TcpStream::connect(redis.addr()).is_err(),
            "refused while down"
        );
        let port = redis.port();
        redis.restart().unwrap();
        assert!(redis.is_running());
        assert_eq!(redis.port(), port);
        assert_eq!(redis.command(&["GET", "k"]).unwrap(), "$-1\r\n", "empty");

        let dir = redis.dir.clone();
        redis.stop().unwrap();
        assert!(!dir.exists());
        assert!(TcpStream::connect(SocketAddr::from((Ipv4Addr::LOCALHOST, port))).is_err());
    }

    #[test]
    fn a_missing_binary_says_how_to_install_it() {
        let e = RedisServer::start_program("redis-server-not-installed-here").unwrap_err();
        assert!(e.to_string().contains("run scripts/install-deps"), "{e}");
    }

    #[test]
    fn servers_run_side_by_side_and_drop_cleans_up() {
        let a = RedisServer::start().unwrap();
        let b = RedisServer::start().unwrap();
        assert_ne!(a.port(), b.port());
        let dir = b.dir.clone();
        drop(b);
        assert!(!dir.exists());
        assert_eq!(a.command(&["PING"]).unwrap(), "+PONG\r\n");
    }
}
