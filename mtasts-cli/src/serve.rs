//! `mtasts serve`: the socketmap TLS policy server for Postfix's `smtp_tls_policy_maps`, and
//! `mtasts query`, its client. Every answer is the core's (`mtasts_core::PolicyServer`,
//! served by the core's `EventLoops`), and so are the settings (`ServeSettings`); this file
//! opens the sockets (or takes systemd's), drops privileges, runs the accept loops, the
//! background refresh and the metrics listener, and handles SIGTERM and SIGHUP.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use clap::Args;
use mtasts_core::{
    Admitted, CacheLocation, ClientStream, Config, DaneCache, EventLoops, Listen, LogLevel,
    LogTarget, Metrics, PolicyServer, RefreshOptions, Resolver, ServeSettings, ServerHandle,
    netstring, read_netstring,
};

use crate::system::{self, Inherited};
use crate::{EXIT_FAILURE, EXIT_OK, EXIT_USAGE, NetOptions};

/// How often the main loop looks at the stop and reload flags.
const POLL: Duration = Duration::from_millis(20);
/// The longest an accept loop waits for a connection before it looks at the stop flag.
const ACCEPT_WAIT: Duration = Duration::from_millis(100);
/// How long a stop waits for the connections being served.
const DRAIN: Duration = Duration::from_secs(10);
/// The metrics listener's limits per request.
const METRICS_TIMEOUT: Duration = Duration::from_secs(5);
const METRICS_MAX_REQUEST: usize = 8192;

/// Arguments of `mtasts serve`. Each option overrides the settings file's `serve.*` key.
#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Where to listen: `unix:PATH` or `tcp:IP:PORT` (repeatable; replaces the file's
    /// `serve.listen`). Not needed under systemd socket activation.
    #[arg(long = "listen", value_name = "unix:PATH|tcp:IP:PORT")]
    listen: Vec<String>,
    /// Permissions of a Unix socket, in octal (default 660).
    #[arg(long, value_name = "MODE")]
    socket_mode: Option<String>,
    /// `USER[:GROUP]` that owns a Unix socket (e.g. `postfix` when Postfix's smtp runs as it).
    #[arg(long, value_name = "USER[:GROUP]")]
    socket_owner: Option<String>,
    /// `USER[:GROUP]` to run as once the sockets are open (when started as root).
    #[arg(long, value_name = "USER[:GROUP]")]
    user: Option<String>,
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
    /// DANE for every map name: `auto` (answer `dane` where the MX hosts have validated TLSA
    /// records; the default), `only` (answer `dane-only` there) or `off`.
    #[arg(long, value_name = "auto|only|off")]
    dane: Option<String>,
    /// The most client connections served at once; more are closed at once (default 512).
    #[arg(long, value_name = "N")]
    max_connections: Option<usize>,
    /// Seconds a client may stay silent, or take to send one request, before it is cut
    /// (default 300).
    #[arg(long, value_name = "SECONDS")]
    client_timeout: Option<f64>,
    /// Seconds within which every request is answered, with TEMP when the lookup is not done
    /// (default 30; at most 90, Postfix waits 100).
    #[arg(long, value_name = "SECONDS")]
    answer_timeout: Option<f64>,
    /// Seconds between background refreshes of due policies; 0: none (default 3600).
    #[arg(long, value_name = "SECONDS")]
    refresh_interval: Option<f64>,
    /// Serve Prometheus metrics at http://IP:PORT/metrics (loopback only).
    #[arg(long, value_name = "IP:PORT")]
    metrics: Option<String>,
    /// Log to the local syslog daemon (facility mail) instead of stderr.
    #[arg(long)]
    syslog: bool,
    /// Check the configuration (settings file and options), print what would be served, and
    /// exit: 0 when it is usable, 2 when not.
    #[arg(long)]
    check_config: bool,
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

/// The server's settings: the file's `serve.*` keys, then the options given.
fn settings(file: Option<&Path>, args: &ServeArgs) -> Result<ServeSettings, String> {
    let mut settings = ServeSettings::default();
    if let Some(file) = file {
        settings.load_file(file).map_err(|e| e.to_string())?;
    }
    let mut set = |option: &str, key: &str, value: &str| {
        settings
            .set(key, value)
            .map_err(|e| format!("--{option}: {e}"))
    };
    if let Some(v) = &args.socket_mode {
        set("socket-mode", "serve.socket_mode", v)?;
    }
    if let Some(v) = &args.socket_owner {
        set("socket-owner", "serve.socket_owner", v)?;
    }
    if let Some(v) = &args.user {
        set("user", "serve.user", v)?;
    }
    for map in &args.strict_testing {
        set(
            "strict-testing",
            &format!("serve.map.{map}.strict_testing"),
            "yes",
        )?;
    }
    for map in &args.tlsrpt {
        set("tlsrpt", &format!("serve.map.{map}.tlsrpt"), "yes")?;
    }
    for map in &args.no_sni {
        set("no-sni", &format!("serve.map.{map}.sni"), "no")?;
    }
    if let Some(v) = &args.dane {
        set("dane", "serve.dane", v)?;
    }
    if let Some(v) = args.max_connections {
        set("max-connections", "serve.max_connections", &v.to_string())?;
    }
    if let Some(v) = args.client_timeout {
        set("client-timeout", "serve.client_timeout", &v.to_string())?;
    }
    if let Some(v) = args.answer_timeout {
        set("answer-timeout", "serve.answer_timeout", &v.to_string())?;
    }
    if let Some(v) = args.refresh_interval {
        set("refresh-interval", "serve.refresh_interval", &v.to_string())?;
    }
    if let Some(v) = &args.metrics {
        set("metrics", "serve.metrics", v)?;
    }
    if args.syslog {
        set("syslog", "serve.log", "syslog")?;
    }
    if !args.listen.is_empty() {
        // Given on the command line, they replace the file's.
        settings.listen.clear();
        for v in &args.listen {
            settings
                .set("serve.listen", v)
                .map_err(|e| format!("--listen: {e}"))?;
        }
    }
    Ok(settings)
}

/// The resolver's configuration and the server's settings, read as at start-up (and again
/// on SIGHUP).
fn load(net: &NetOptions, args: &ServeArgs) -> Result<(Config, ServeSettings), String> {
    // A daemon logs what it does: `info` unless the file says otherwise.
    let config = crate::config_with(net, |c| c.log_level = LogLevel::Info)?;
    let settings = settings(crate::settings_file(net).as_deref(), args)?;
    Ok((config, settings))
}

enum Listener {
    Tcp(TcpListener),
    Unix(UnixListener, Option<PathBuf>),
}

impl Listener {
    fn describe(&self) -> String {
        match self {
            Listener::Tcp(l) => l
                .local_addr()
                .map_or_else(|_| "tcp:?".into(), |a| format!("tcp:{a}")),
            Listener::Unix(_, Some(path)) => format!("unix:{}", path.display()),
            Listener::Unix(_, None) => "unix:(from systemd)".into(),
        }
    }
}

/// Opens one listener. The error says what went wrong at `listen` (the caller names it).
fn bind(listen: &Listen, settings: &ServeSettings) -> Result<Listener, String> {
    match listen {
        Listen::Unix(path) => {
            // A socket left by an earlier run is replaced; anything else at that path is not.
            if let Ok(meta) = std::fs::symlink_metadata(path) {
                if !meta.file_type().is_socket() {
                    return Err(
                        "something that is not a socket is at that path: move it away, or \
                         listen elsewhere"
                            .into(),
                    );
                }
                std::fs::remove_file(path)
                    .map_err(|e| format!("cannot remove the socket an earlier run left: {e}"))?;
            }
            let listener = UnixListener::bind(path).map_err(|e| e.to_string())?;
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(settings.socket_mode))
                .map_err(|e| format!("cannot set its mode: {e}"))?;
            if let Some(owner) = &settings.socket_owner {
                let ids =
                    system::lookup_ids(owner).map_err(|e| format!("serve.socket_owner: {e}"))?;
                system::chown(path, ids).map_err(|e| {
                    format!("cannot give it to {owner} (serve.socket_owner; needs root): {e}")
                })?;
            }
            listener.set_nonblocking(true).map_err(|e| e.to_string())?;
            Ok(Listener::Unix(listener, Some(path.clone())))
        }
        Listen::Tcp(addr) => {
            let listener = TcpListener::bind(addr).map_err(|e| e.to_string())?;
            listener.set_nonblocking(true).map_err(|e| e.to_string())?;
            Ok(Listener::Tcp(listener))
        }
    }
}

/// Runs `mtasts serve` until SIGTERM or SIGINT; returns the exit status.
pub fn serve(net: &NetOptions, args: &ServeArgs, quiet: bool) -> u8 {
    let (config, settings) = match load(net, args) {
        Ok(loaded) => loaded,
        Err(e) => {
            eprintln!("mtasts: {e}");
            return EXIT_USAGE;
        }
    };
    if args.check_config {
        return check_config(&config, &settings);
    }
    if !quiet {
        log::set_max_level(config.log_level.filter().max(log::max_level()));
    }
    if settings.log == LogTarget::Syslog
        && let Err(e) = crate::logger::to_syslog(&settings.syslog_socket)
    {
        eprintln!(
            "mtasts: cannot log to syslog at {} ({e}): logging to stderr",
            settings.syslog_socket.display()
        );
    }
    // Still one thread: take systemd's sockets, or bind ours, then give up root.
    let mut listeners: Vec<Listener> = match system::listen_fds() {
        Ok(inherited) => {
            let mut listeners = Vec::new();
            for s in inherited {
                match s {
                    Inherited::Tcp(l) => listeners.push(Listener::Tcp(l)),
                    Inherited::Unix(l) => listeners.push(Listener::Unix(l, None)),
                    Inherited::UnixDatagram(_) => {
                        eprintln!(
                            "mtasts: systemd sockets: a datagram socket (serve needs stream \
                             sockets; datagrams are for mtasts tlsrpt collect)"
                        );
                        return EXIT_USAGE;
                    }
                }
            }
            listeners
        }
        Err(e) => {
            eprintln!("mtasts: systemd sockets: {e}");
            return EXIT_USAGE;
        }
    };
    for listener in &listeners {
        let nonblocking = match listener {
            Listener::Tcp(l) => l.set_nonblocking(true),
            Listener::Unix(l, _) => l.set_nonblocking(true),
        };
        if let Err(e) = nonblocking {
            eprintln!("mtasts: systemd socket: {e}");
            return EXIT_FAILURE;
        }
    }
    if listeners.is_empty() {
        if settings.listen.is_empty() {
            eprintln!(
                "mtasts: nowhere to listen: give --listen unix:PATH|tcp:IP:PORT, serve.listen in \
                 the settings file, or start it from a systemd socket unit"
            );
            return EXIT_USAGE;
        }
        for listen in &settings.listen {
            match bind(listen, &settings) {
                Ok(listener) => listeners.push(listener),
                Err(e) => {
                    // From --listen or serve.listen: the message names the listener itself.
                    eprintln!("mtasts: cannot listen on {listen}: {e}");
                    return EXIT_USAGE;
                }
            }
        }
    }
    if let Some(user) = &settings.user {
        let dropped = system::lookup_ids(user).and_then(system::drop_privileges);
        if let Err(e) = dropped {
            eprintln!("mtasts: serve.user {user}: {e}");
            return EXIT_FAILURE;
        }
    }
    // The resolver opens the cache as the user it runs as.
    let mut cache_location = config.cache.clone();
    let resolver = match Resolver::new(config) {
        Ok(resolver) => Arc::new(resolver),
        Err(e) => {
            eprintln!("mtasts: {e}");
            return EXIT_USAGE;
        }
    };
    let stop = Arc::new(AtomicBool::new(false));
    let reload = Arc::new(AtomicBool::new(false));
    let signals = [
        (signal_hook::consts::SIGTERM, &stop),
        (signal_hook::consts::SIGINT, &stop),
        (signal_hook::consts::SIGHUP, &reload),
    ];
    for (signal, flag) in signals {
        if let Err(e) = signal_hook::flag::register(signal, Arc::clone(flag)) {
            eprintln!("mtasts: cannot handle signal {signal}: {e}");
            return EXIT_FAILURE;
        }
    }
    let metrics_addr = settings.metrics;
    let metrics_listener = match metrics_addr.map(TcpListener::bind).transpose() {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("mtasts: serve.metrics: {e}");
            return EXIT_USAGE;
        }
    };
    let refresh_interval = settings.refresh_interval;
    let max_connections = settings.max_connections;
    let client_timeout = settings.client_timeout;
    let handle = Arc::new(ServerHandle::new(PolicyServer::new(
        resolver,
        settings,
        Arc::new(DaneCache::new()),
        Arc::new(Metrics::new()),
    )));
    let event_loops = handle.current().settings().event_loop_count();
    let loops = match EventLoops::start(&handle, event_loops, client_timeout) {
        Ok(loops) => loops,
        Err(e) => {
            eprintln!("mtasts: cannot start serving: {e}");
            return EXIT_FAILURE;
        }
    };
    let names: Vec<String> = listeners.iter().map(Listener::describe).collect();
    log::info!("serving socketmap on {}", names.join(", "));
    eprintln!("mtasts: serving socketmap on {}", names.join(", "));
    let served = Served {
        loops: &loops,
        max: max_connections,
    };
    thread::scope(|scope| {
        for listener in &listeners {
            let (stop, served) = (&stop, &served);
            scope.spawn(move || accept_loop(listener, stop, served));
        }
        if let Some(listener) = &metrics_listener {
            let (stop, handle, loops) = (&stop, &handle, &loops);
            scope.spawn(move || metrics_loop(listener, stop, handle, loops));
        }
        if let Some(interval) = refresh_interval {
            let (stop, handle) = (&stop, &handle);
            scope.spawn(move || refresh_loop(interval, stop, handle));
        }
        system::notify("READY=1");
        while !stop.load(Ordering::SeqCst) {
            if reload.swap(false, Ordering::SeqCst) {
                system::notify("RELOADING=1");
                reload_server(net, args, &handle, &mut cache_location);
                system::notify("READY=1");
            }
            thread::sleep(POLL);
        }
        system::notify("STOPPING=1");
        handle.stop();
    });
    // Stopped: the accept loops are done; the socket goes at once, so new connections fail
    // fast instead of waiting in the backlog. Connections between requests close; the ones
    // being answered get a bounded time to finish.
    for listener in &listeners {
        if let Listener::Unix(_, Some(path)) = listener {
            let _ = std::fs::remove_file(path);
        }
    }
    drop(listeners);
    if !loops.wait_ended(DRAIN) {
        log::warn!(
            "{} connections still being answered after {} s: stopping anyway",
            loops.live(),
            DRAIN.as_secs()
        );
    }
    log::info!("stopped");
    eprintln!("mtasts: stopped");
    EXIT_OK
}

/// SIGHUP: the settings file and options read again, and a new resolver and server put in
/// place; open connections take it at their next request. The listeners, the socket owner,
/// the user and the metrics address stay as they were started (a restart changes them). The
/// cache stays open when its location is unchanged (a memory cache keeps what it holds). A
/// configuration that does not load leaves the running one as it is.
fn reload_server(
    net: &NetOptions,
    args: &ServeArgs,
    handle: &ServerHandle,
    cache_location: &mut CacheLocation,
) {
    let old = handle.current();
    let loaded = load(net, args).and_then(|(config, settings)| {
        let location = config.cache.clone();
        let mut builder = Resolver::builder(config);
        if location == *cache_location {
            builder = builder.store(Arc::clone(old.resolver().store()));
        }
        let resolver = builder.build().map_err(|e| e.to_string())?;
        *cache_location = location;
        Ok((resolver, settings))
    });
    match loaded {
        Ok((resolver, settings)) => {
            let before = old.settings();
            if settings.listen != before.listen
                || settings.user != before.user
                || settings.socket_owner != before.socket_owner
                || settings.socket_mode != before.socket_mode
                || settings.metrics != before.metrics
            {
                log::warn!(
                    "reload: listeners, socket owner and mode, user and metrics change only \
                     with a restart"
                );
            }
            old.dane_cache().clear();
            handle.replace(PolicyServer::new(
                Arc::new(resolver),
                settings,
                Arc::clone(old.dane_cache()),
                Arc::clone(old.metrics()),
            ));
            log::info!("configuration reloaded");
        }
        Err(e) => log::error!("reload failed, the running configuration stays: {e}"),
    }
}

/// `--check-config`: what would be served, or why not.
fn check_config(config: &Config, settings: &ServeSettings) -> u8 {
    let mut problems = Vec::new();
    if let Err(e) = config.validate() {
        problems.push(e.to_string());
    }
    if settings.listen.is_empty() && std::env::var_os("LISTEN_FDS").is_none() {
        problems.push(
            "no listener: set serve.listen or --listen (or start from a systemd socket unit)"
                .into(),
        );
    }
    for (what, spec) in [
        ("serve.socket_owner", &settings.socket_owner),
        ("serve.user", &settings.user),
    ] {
        if let Some(spec) = spec
            && let Err(e) = system::lookup_ids(spec)
        {
            problems.push(format!("{what} = {spec}: {e}"));
        }
    }
    if let Err(e) = Resolver::new(config.clone()) {
        problems.push(e.to_string());
    }
    println!("cache: {}", config.cache);
    for listen in &settings.listen {
        println!("listen: {listen} (mode {:o})", settings.socket_mode);
    }
    let mut maps: Vec<&str> = settings.map_names().collect();
    maps.push("(other map names)");
    for map in maps {
        let options = settings.options(map);
        println!(
            "map {map}: strict_testing={} tlsrpt={} sni={} dane={:?}",
            options.strict_testing, options.tlsrpt, options.sni, options.dane
        );
    }
    println!(
        "answer within {} s; refresh {}; metrics {}",
        settings.answer_timeout.as_secs_f64(),
        settings
            .refresh_interval
            .map_or("off".into(), |i| format!("every {} s", i.as_secs_f64())),
        settings
            .metrics
            .map_or("off".into(), |a| format!("on http://{a}/metrics"))
    );
    if problems.is_empty() {
        println!("configuration OK");
        EXIT_OK
    } else {
        for problem in &problems {
            eprintln!("mtasts: {problem}");
        }
        EXIT_USAGE
    }
}

/// What every accept loop shares.
struct Served<'a> {
    loops: &'a EventLoops,
    max: usize,
}

fn accept_loop(listener: &Listener, stop: &AtomicBool, served: &Served<'_>) {
    use std::os::fd::AsFd;
    while !stop.load(Ordering::SeqCst) {
        let accepted: io::Result<ClientStream> = match listener {
            Listener::Tcp(l) => l.accept().map(|(s, _)| s.into()),
            Listener::Unix(l, _) => l.accept().map(|(s, _)| s.into()),
        };
        match accepted {
            Ok(stream) => admit(stream, served),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                // Sleep until a connection arrives (taken at once), looking at the stop flag
                // at least every ACCEPT_WAIT.
                let fd = match listener {
                    Listener::Tcp(l) => l.as_fd(),
                    Listener::Unix(l, _) => l.as_fd(),
                };
                system::wait_readable(fd, ACCEPT_WAIT);
            }
            Err(e) => {
                log::warn!("accepting a connection failed: {e}");
                thread::sleep(POLL);
            }
        }
    }
}

/// Gives `stream` to the event loops, unless `max` connections are being served.
fn admit(stream: ClientStream, served: &Served<'_>) {
    match served.loops.admit(stream, served.max) {
        Ok(Admitted::Yes | Admitted::Stopping) => {}
        Ok(Admitted::Full) => {
            log::warn!("{} connections already served: one refused", served.max);
        }
        Err(e) => log::warn!("cannot serve a connection: {e}"),
    }
}

/// The background refresh (R-CACHE-6): due policies renewed every `interval`, each run at a
/// randomised time (the interval ±10%, the first within a tenth of it), so a fleet's
/// servers started together do not fetch together.
fn refresh_loop(interval: Duration, stop: &AtomicBool, handle: &ServerHandle) {
    let mut wait = interval.mul_f64(jitter() * 0.1);
    loop {
        let until = Instant::now() + wait;
        while Instant::now() < until {
            if stop.load(Ordering::SeqCst) {
                return;
            }
            thread::sleep(POLL.max(Duration::from_millis(100)));
        }
        let server = handle.current();
        match server.resolver().refresh_due(&RefreshOptions::default()) {
            Ok(report) => {
                server
                    .metrics()
                    .refreshed(report.refreshed.len(), report.failed.len());
                if !report.refreshed.is_empty() || !report.failed.is_empty() {
                    log::info!(
                        "background refresh: {} refreshed, {} failed, {} examined",
                        report.refreshed.len(),
                        report.failed.len(),
                        report.examined
                    );
                }
            }
            Err(e) => log::warn!("background refresh failed: {e}"),
        }
        wait = interval.mul_f64(0.9 + 0.2 * jitter());
    }
}

/// A number in [0, 1) from the process's random hash keys.
fn jitter() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u8(0);
    (hasher.finish() >> 11) as f64 / (1u64 << 53) as f64
}

/// The metrics listener: `GET /metrics` answered with the counters (Prometheus text format);
/// one request per connection, each bounded in size and time.
fn metrics_loop(
    listener: &TcpListener,
    stop: &AtomicBool,
    handle: &ServerHandle,
    loops: &EventLoops,
) {
    if let Err(e) = listener.set_nonblocking(true) {
        log::warn!("metrics listener: {e}");
        return;
    }
    while !stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((stream, _)) => {
                let body = handle.current().metrics().render(loops.live());
                if let Err(e) = answer_metrics(stream, &body) {
                    log::debug!("metrics request: {e}");
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => thread::sleep(POLL),
            Err(e) => {
                log::warn!("metrics listener: {e}");
                thread::sleep(POLL);
            }
        }
    }
}

fn answer_metrics(mut stream: TcpStream, body: &str) -> io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(METRICS_TIMEOUT))?;
    stream.set_write_timeout(Some(METRICS_TIMEOUT))?;
    let mut request = Vec::new();
    let mut chunk = [0u8; 1024];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut chunk)?;
        if n == 0 || request.len() > METRICS_MAX_REQUEST {
            return Ok(());
        }
        request.extend_from_slice(&chunk[..n]);
    }
    let line = request.split(|&b| b == b'\r').next().unwrap_or_default();
    let (status, content_type, body) = if line.starts_with(b"GET /metrics ") {
        ("200 OK", "text/plain; version=0.0.4; charset=utf-8", body)
    } else {
        (
            "404 Not Found",
            "text/plain; charset=utf-8",
            "only /metrics is here\n",
        )
    };
    write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    )
}

/// Runs `mtasts query`: asks a running server and prints the reply.
pub fn query(args: &QueryArgs) -> u8 {
    let request = netstring(format!("{} {}", args.map, args.domain).as_bytes());
    let limit = Some(Duration::from_secs(120));
    let exchange = |stream: &mut dyn ReadWrite| -> io::Result<String> {
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
    let reply = match args.socket.parse::<Listen>() {
        Ok(Listen::Unix(path)) => UnixStream::connect(path).and_then(|mut s| {
            s.set_read_timeout(limit)?;
            exchange(&mut s)
        }),
        Ok(Listen::Tcp(addr)) => connect_tcp(addr).and_then(|mut s| {
            s.set_read_timeout(limit)?;
            exchange(&mut s)
        }),
        Err(_) => {
            eprintln!(
                "mtasts: --socket {}: expected unix:PATH or tcp:IP:PORT",
                args.socket
            );
            return EXIT_USAGE;
        }
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

/// What `mtasts query` talks through.
trait ReadWrite: Read + Write {}
impl<T: Read + Write> ReadWrite for T {}

fn connect_tcp(addr: SocketAddr) -> io::Result<TcpStream> {
    TcpStream::connect_timeout(&addr, Duration::from_secs(10))
}
