//! `mtasts serve`: the socketmap TLS policy server for Postfix's `smtp_tls_policy_maps`, and
//! `mtasts query`, its client. Every answer is the core's (`mtasts_core::serve_connection`,
//! `tls_policy_reply`); this file only listens, counts connections and stops on a signal.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use clap::Args;
use mtasts_core::{MapOptions, Resolver, netstring, read_netstring, serve_connection};

use crate::{EXIT_FAILURE, EXIT_OK, EXIT_USAGE};

/// How often the accept loops look at the stop flag.
const ACCEPT_POLL: Duration = Duration::from_millis(20);
/// How long a stop waits for the connections being served.
const DRAIN: Duration = Duration::from_secs(10);

/// Arguments of `mtasts serve`.
#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Where to listen: `unix:PATH` or `tcp:IP:PORT` (repeatable).
    #[arg(long = "listen", value_name = "unix:PATH|tcp:IP:PORT", required = true)]
    listen: Vec<String>,
    /// Permissions of a Unix socket, in octal.
    #[arg(long, value_name = "MODE", default_value = "660")]
    socket_mode: String,
    /// A map name whose `testing` policies are answered as `enforce` (repeatable).
    #[arg(long = "strict-testing", value_name = "MAP")]
    strict_testing: Vec<String>,
    /// A map name whose answers carry the TLSRPT attributes of Postfix 3.10 and later
    /// (repeatable; Postfix 3.9 and older reject them).
    #[arg(long = "tlsrpt", value_name = "MAP")]
    tlsrpt: Vec<String>,
    /// A map name whose answers leave out `servername=hostname` (no SNI; repeatable).
    #[arg(long = "no-sni", value_name = "MAP")]
    no_sni: Vec<String>,
    /// The most client connections served at once; more are closed at once.
    #[arg(long, value_name = "N", default_value_t = 512)]
    max_connections: usize,
    /// Seconds a client may stay silent, or take to send one request, before it is cut.
    #[arg(long, value_name = "SECONDS", default_value_t = 300)]
    client_timeout: u64,
}

/// Arguments of `mtasts query`.
#[derive(Args, Debug)]
pub struct QueryArgs {
    /// The key to ask for (a recipient domain).
    #[arg(value_name = "DOMAIN")]
    domain: String,
    /// The server: `unix:PATH` or `tcp:IP:PORT`.
    #[arg(long, value_name = "unix:PATH|tcp:IP:PORT")]
    socket: String,
    /// The map name.
    #[arg(long, value_name = "NAME", default_value = "postfix")]
    map: String,
}

enum Listener {
    Tcp(TcpListener),
    Unix(UnixListener, PathBuf),
}

/// A served connection: a TCP or a Unix stream.
trait Stream: Read + Write + Send {
    fn timeouts(&self, limit: Duration) -> io::Result<()>;
}

impl Stream for TcpStream {
    fn timeouts(&self, limit: Duration) -> io::Result<()> {
        self.set_nonblocking(false)?;
        self.set_read_timeout(Some(limit))?;
        self.set_write_timeout(Some(limit))
    }
}

impl Stream for UnixStream {
    fn timeouts(&self, limit: Duration) -> io::Result<()> {
        self.set_nonblocking(false)?;
        self.set_read_timeout(Some(limit))?;
        self.set_write_timeout(Some(limit))
    }
}

fn bind(spec: &str, mode: u32) -> Result<Listener, String> {
    if let Some(path) = spec.strip_prefix("unix:") {
        let path = PathBuf::from(path);
        // A socket left by an earlier run is replaced; anything else at that path is not.
        if let Ok(meta) = std::fs::symlink_metadata(&path) {
            if !meta.file_type().is_socket() {
                return Err(format!("{}: exists and is not a socket", path.display()));
            }
            std::fs::remove_file(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        }
        let listener = UnixListener::bind(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))
            .map_err(|e| format!("{}: {e}", path.display()))?;
        listener.set_nonblocking(true).map_err(|e| e.to_string())?;
        return Ok(Listener::Unix(listener, path));
    }
    if let Some(addr) = spec.strip_prefix("tcp:") {
        let addr: SocketAddr = addr
            .parse()
            .map_err(|_| format!("{spec}: expected tcp:IP:PORT"))?;
        let listener = TcpListener::bind(addr).map_err(|e| format!("{spec}: {e}"))?;
        listener.set_nonblocking(true).map_err(|e| e.to_string())?;
        return Ok(Listener::Tcp(listener));
    }
    Err(format!("{spec}: expected unix:PATH or tcp:IP:PORT"))
}

/// Runs `mtasts serve` until SIGTERM or SIGINT; returns the exit status.
pub fn serve(resolver: Resolver, args: &ServeArgs) -> u8 {
    let Ok(mode) = u32::from_str_radix(&args.socket_mode, 8) else {
        eprintln!(
            "mtasts: --socket-mode {}: not an octal mode",
            args.socket_mode
        );
        return EXIT_USAGE;
    };
    let mut listeners = Vec::new();
    for spec in &args.listen {
        match bind(spec, mode) {
            Ok(listener) => listeners.push(listener),
            Err(e) => {
                eprintln!("mtasts: --listen {e}");
                return EXIT_USAGE;
            }
        }
    }
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        if let Err(e) = signal_hook::flag::register(signal, Arc::clone(&stop)) {
            eprintln!("mtasts: cannot handle signal {signal}: {e}");
            return EXIT_FAILURE;
        }
    }
    let maps = Arc::new(MapSettings {
        strict_testing: args.strict_testing.clone(),
        tlsrpt: args.tlsrpt.clone(),
        no_sni: args.no_sni.clone(),
    });
    let resolver = Arc::new(resolver);
    let live = Arc::new(AtomicUsize::new(0));
    let limit = Duration::from_secs(args.client_timeout.max(1));
    eprintln!("mtasts: serving socketmap on {}", args.listen.join(", "));
    thread::scope(|scope| {
        for listener in &listeners {
            let (stop, live, resolver, maps) = (&stop, &live, &resolver, &maps);
            scope.spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    let accepted: io::Result<Box<dyn Stream>> = match listener {
                        Listener::Tcp(l) => l.accept().map(|(s, _)| Box::new(s) as Box<dyn Stream>),
                        Listener::Unix(l, _) => {
                            l.accept().map(|(s, _)| Box::new(s) as Box<dyn Stream>)
                        }
                    };
                    match accepted {
                        Ok(stream) => {
                            admit(stream, args.max_connections, limit, live, resolver, maps)
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                            thread::sleep(ACCEPT_POLL)
                        }
                        Err(e) => {
                            log::warn!("accepting a connection failed: {e}");
                            thread::sleep(ACCEPT_POLL);
                        }
                    }
                }
            });
        }
    });
    // Stopped: no new connections; the ones being served get a bounded time to finish.
    let deadline = Instant::now() + DRAIN;
    while live.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
        thread::sleep(ACCEPT_POLL);
    }
    for listener in &listeners {
        if let Listener::Unix(_, path) = listener {
            let _ = std::fs::remove_file(path);
        }
    }
    eprintln!("mtasts: stopped");
    EXIT_OK
}

/// Per-map options from the command line.
struct MapSettings {
    strict_testing: Vec<String>,
    tlsrpt: Vec<String>,
    no_sni: Vec<String>,
}

impl MapSettings {
    fn options(&self, map: &str) -> MapOptions {
        let mut options = MapOptions::new();
        options.strict_testing = self.strict_testing.iter().any(|m| m == map);
        options.tlsrpt = self.tlsrpt.iter().any(|m| m == map);
        options.sni = !self.no_sni.iter().any(|m| m == map);
        options
    }
}

/// Serves `stream` on a thread of its own, unless `max` connections are being served.
fn admit(
    mut stream: Box<dyn Stream>,
    max: usize,
    limit: Duration,
    live: &Arc<AtomicUsize>,
    resolver: &Arc<Resolver>,
    maps: &Arc<MapSettings>,
) {
    if live.fetch_add(1, Ordering::SeqCst) >= max {
        live.fetch_sub(1, Ordering::SeqCst);
        log::warn!("{max} connections already served: one refused");
        return;
    }
    let (live, resolver, maps) = (Arc::clone(live), Arc::clone(resolver), Arc::clone(maps));
    let spawned = thread::Builder::new()
        .name("mtasts-socketmap".into())
        .spawn(move || {
            let options = |map: &str| maps.options(map);
            let served = stream
                .timeouts(limit)
                .and_then(|()| serve_connection(&resolver, &mut stream, &options));
            match served {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                    log::warn!("closing a connection: {e}");
                }
                Err(e) => log::info!("closing a connection: {e}"),
            }
            live.fetch_sub(1, Ordering::SeqCst);
        });
    if let Err(e) = spawned {
        log::warn!("cannot start a connection thread: {e}");
    }
}

/// Runs `mtasts query`: asks a running server and prints the reply.
pub fn query(args: &QueryArgs) -> u8 {
    let request = netstring(format!("{} {}", args.map, args.domain).as_bytes());
    let limit = Some(Duration::from_secs(120));
    let exchange = |stream: &mut dyn Stream| -> io::Result<String> {
        stream.write_all(&request)?;
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            if let Some((payload, _)) = read_netstring(&buf, mtasts_core::MAX_REPLY)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?
            {
                return Ok(String::from_utf8_lossy(payload).into_owned());
            }
            let n = stream.read(&mut chunk)?;
            if n == 0 {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "no reply"));
            }
            buf.extend_from_slice(&chunk[..n]);
        }
    };
    let reply = if let Some(path) = args.socket.strip_prefix("unix:") {
        UnixStream::connect(path).and_then(|mut s| {
            s.set_read_timeout(limit)?;
            exchange(&mut s)
        })
    } else if let Some(addr) = args.socket.strip_prefix("tcp:") {
        TcpStream::connect(addr).and_then(|mut s| {
            s.set_read_timeout(limit)?;
            exchange(&mut s)
        })
    } else {
        eprintln!(
            "mtasts: --socket {}: expected unix:PATH or tcp:IP:PORT",
            args.socket
        );
        return EXIT_USAGE;
    };
    match reply {
        Ok(reply) => {
            println!("{}", mtasts_core::escape_controls(&reply));
            if reply.starts_with("OK ") || reply.starts_with("NOTFOUND") {
                EXIT_OK
            } else {
                EXIT_FAILURE
            }
        }
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused
            ) =>
        {
            eprintln!(
                "mtasts: {}: {e}: is `mtasts serve --listen {}` running?",
                args.socket, args.socket
            );
            EXIT_FAILURE
        }
        Err(e) => {
            eprintln!("mtasts: {}: {e}", args.socket);
            EXIT_FAILURE
        }
    }
}
