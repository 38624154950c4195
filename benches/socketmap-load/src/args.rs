//! The command line (hand-parsed: the crate has no dependencies).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// The usage text.
pub const USAGE: &str = "\
usage: socketmap-load --server unix:PATH|tcp:IP:PORT --domains FILE [options]
       socketmap-load --fixed-server unix:PATH|tcp:IP:PORT [--reply TEXT]

Opens CONNECTIONS connections to a socketmap server, sends one hello request on each (its
connect-to-answer time is reported apart), then, all at once, asks for the domains of FILE
(one a line) and prints one JSON line of figures.

  --connections N   connections, each on a thread of its own (default 1)
  --driver D        threads (the default: a thread per connection, blocking, as Postfix's
                    smtp processes each hold a connection) or loop (one thread drives every
                    connection with epoll, as an event-driven client does)
  --depth D         requests outstanding per connection: 1 = request/reply, one at a time,
                    as Postfix asks (the default); more = pipelined
  --once            ask for every domain of FILE exactly once over all connections, then stop
                    (a cache fill, a cold batch); otherwise each connection cycles through
                    FILE from its own offset until --requests or --seconds is reached
  --requests N      stop after N requests in all (default 1000000; ignored with --once)
  --seconds S       stop after S seconds of load (default 10)
  --map NAME        the socketmap name (default postfix)
  --hello KEY       the key of each connection's first request (default 192.0.2.1: an IP
                    literal, which servers answer NOTFOUND without a lookup)
  --timeout S       the longest wait for one reply or write (default 30)
  --deadline S      exit with status 3 when the whole run takes longer (default 900)
  --text            human-readable output instead of JSON

--fixed-server serves instead: every request on every connection is answered with TEXT
(default: what mtasts serve answers for a bench domain), by one epoll event loop, with no
other work; the floor of a server's cost on this machine. It runs until it is stopped.

Exit status: 0 every request answered, 1 a connection failed, 2 usage, 3 past --deadline.";

/// A socketmap server's address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Server {
    /// `unix:PATH`.
    Unix(PathBuf),
    /// `tcp:IP:PORT`.
    Tcp(SocketAddr),
}

impl Server {
    /// Parses `unix:PATH` or `tcp:IP:PORT`.
    pub fn parse(spec: &str) -> Result<Server, String> {
        if let Some(path) = spec.strip_prefix("unix:").filter(|p| !p.is_empty()) {
            return Ok(Server::Unix(PathBuf::from(path)));
        }
        if let Some(addr) = spec.strip_prefix("tcp:") {
            return addr
                .parse()
                .map(Server::Tcp)
                .map_err(|_| format!("--server {spec}: expected tcp:IP:PORT"));
        }
        Err(format!(
            "--server {spec}: expected unix:PATH or tcp:IP:PORT"
        ))
    }
}

/// Everything the command line says.
#[derive(Clone, Debug, PartialEq)]
pub struct Options {
    /// The server.
    pub server: Server,
    /// The file of domains.
    pub domains: PathBuf,
    /// Connections (threads).
    pub connections: usize,
    /// Requests outstanding per connection.
    pub depth: usize,
    /// Every domain once, then stop.
    pub once: bool,
    /// The most requests in all (not with `once`).
    pub requests: u64,
    /// The longest time under load.
    pub seconds: Duration,
    /// The socketmap name.
    pub map: String,
    /// The key of the hello request.
    pub hello: String,
    /// The longest wait for one read or write.
    pub timeout: Duration,
    /// The longest whole run.
    pub deadline: Duration,
    /// Text instead of JSON.
    pub text: bool,
    /// One epoll thread drives every connection (`--driver loop`).
    pub event_loop: bool,
}

/// The default reply of `--fixed-server`: `mtasts serve`'s answer for a bench domain of the
/// test world (its default policy, tests/world/src/spec.rs).
pub const FIXED_REPLY: &str = "OK secure match=mail.example.com:.example.net servername=hostname";

/// What the command line asks for.
#[derive(Debug, PartialEq)]
pub enum Parsed {
    /// A run.
    Run(Box<Options>),
    /// `--fixed-server ADDR [--reply TEXT]`.
    Fixed {
        /// Where to listen.
        server: Server,
        /// The reply to every request.
        reply: String,
    },
    /// `--help`.
    Help,
}

/// Parses the arguments after the program name.
pub fn parse<I: IntoIterator<Item = String>>(args: I) -> Result<Parsed, String> {
    let mut server = None;
    let mut domains = None;
    let mut fixed = None;
    let mut reply = FIXED_REPLY.to_string();
    let mut o = Options {
        server: Server::Tcp(SocketAddr::from(([127, 0, 0, 1], 0))),
        domains: PathBuf::new(),
        connections: 1,
        depth: 1,
        once: false,
        requests: 1_000_000,
        seconds: Duration::from_secs(10),
        map: "postfix".into(),
        hello: "192.0.2.1".into(),
        timeout: Duration::from_secs(30),
        deadline: Duration::from_secs(900),
        text: false,
        event_loop: false,
    };
    let mut args = args.into_iter();
    while let Some(flag) = args.next() {
        match flag.as_str() {
            "--help" | "-h" => return Ok(Parsed::Help),
            "--once" => o.once = true,
            "--text" => o.text = true,
            _ => {
                let value = args
                    .next()
                    .ok_or_else(|| format!("{flag}: a value is needed"))?;
                match flag.as_str() {
                    "--server" => server = Some(Server::parse(&value)?),
                    "--fixed-server" => fixed = Some(Server::parse(&value)?),
                    "--reply" => reply = value,
                    "--domains" => domains = Some(PathBuf::from(value)),
                    "--connections" => o.connections = positive(&flag, &value)?,
                    "--depth" => o.depth = positive(&flag, &value)?,
                    "--requests" => o.requests = positive(&flag, &value)? as u64,
                    "--seconds" => o.seconds = seconds(&flag, &value)?,
                    "--map" => o.map = value,
                    "--hello" => o.hello = value,
                    "--timeout" => o.timeout = seconds(&flag, &value)?,
                    "--deadline" => o.deadline = seconds(&flag, &value)?,
                    "--driver" => {
                        o.event_loop = match value.as_str() {
                            "threads" => false,
                            "loop" => true,
                            _ => return Err(format!("{flag}: threads or loop")),
                        }
                    }
                    _ => return Err(format!("{flag}: unknown option")),
                }
            }
        }
    }
    if let Some(server) = fixed {
        return Ok(Parsed::Fixed { server, reply });
    }
    o.server = server.ok_or("--server is required")?;
    o.domains = domains.ok_or("--domains is required")?;
    Ok(Parsed::Run(Box::new(o)))
}

fn positive(flag: &str, value: &str) -> Result<usize, String> {
    match value.parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("{flag} {value}: expected a whole number above 0")),
    }
}

/// Seconds above 0 and at most a day (a longer one is a mistake; every wait is bounded).
fn seconds(flag: &str, value: &str) -> Result<Duration, String> {
    match value.parse::<f64>() {
        Ok(s) if s > 0.0 && s <= 86_400.0 => Ok(Duration::from_secs_f64(s)),
        _ => Err(format!("{flag} {value}: expected seconds in (0, 86400]")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_words(line: &str) -> Result<Parsed, String> {
        parse(line.split_whitespace().map(String::from))
    }

    #[test]
    fn servers() {
        assert_eq!(
            Server::parse("unix:/run/m.sock"),
            Ok(Server::Unix("/run/m.sock".into()))
        );
        assert_eq!(
            Server::parse("tcp:127.0.0.1:8461"),
            Ok(Server::Tcp(SocketAddr::from(([127, 0, 0, 1], 8461))))
        );
        for bad in [
            "unix:",
            "tcp:localhost:1",
            "tcp:127.0.0.1",
            "/run/m.sock",
            "",
        ] {
            assert!(Server::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn options() {
        let Ok(Parsed::Run(o)) = parse_words("--server unix:/s --domains d.txt") else {
            panic!("a minimal command line")
        };
        assert_eq!(
            (o.connections, o.depth, o.once, o.requests),
            (1, 1, false, 1_000_000)
        );
        assert_eq!((o.map.as_str(), o.hello.as_str()), ("postfix", "192.0.2.1"));
        let Ok(Parsed::Run(o)) = parse_words(
            "--server tcp:127.0.0.1:1 --domains d --connections 256 --depth 8 --once \
             --requests 5 --seconds 2.5 --map m --hello h --timeout 1 --deadline 60 --text \
             --driver loop",
        ) else {
            panic!("every option")
        };
        assert_eq!(
            (o.connections, o.depth, o.once, o.requests),
            (256, 8, true, 5)
        );
        assert_eq!(o.seconds, Duration::from_millis(2500));
        assert_eq!(
            (o.timeout, o.deadline),
            (Duration::from_secs(1), Duration::from_secs(60))
        );
        assert!(o.text && o.event_loop);
        assert!(parse_words("--server unix:/s --domains d --driver fibres").is_err());
        assert_eq!(parse_words("--help"), Ok(Parsed::Help));
        assert_eq!(
            parse_words("--fixed-server unix:/f"),
            Ok(Parsed::Fixed {
                server: Server::Unix("/f".into()),
                reply: FIXED_REPLY.into()
            })
        );
        assert_eq!(
            parse_words("--fixed-server unix:/f --reply NOTFOUND"),
            Ok(Parsed::Fixed {
                server: Server::Unix("/f".into()),
                reply: "NOTFOUND".into()
            })
        );
        for bad in [
            "--domains d",
            "--server unix:/s",
            "--server unix:/s --domains d --connections 0",
            "--server unix:/s --domains d --seconds -1",
            "--server unix:/s --domains d --seconds 1e9",
            "--server unix:/s --domains d --depth",
            "--server unix:/s --domains d --bogus 1",
        ] {
            assert!(parse_words(bad).is_err(), "{bad}");
        }
    }
}
