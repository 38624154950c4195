//! The load: one thread per connection, every request timed from just before its write to the
//! end of its reply's netstring.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use crate::args::{Options, Server};
use crate::wire::{self, Answer};

/// A connection's stack: it holds a few buffers only (256 threads of the default 2 MiB would
/// reserve 512 MiB of address space for nothing).
const STACK: usize = 256 * 1024;

/// What one connection did.
#[derive(Debug, Default)]
pub struct ConnResult {
    /// The latency of each request under load, in nanoseconds.
    pub latencies: Vec<u64>,
    /// Replies per [`Answer`] class (index [`Answer::index`]).
    pub answers: [u64; 6],
    /// From before connect() to the end of the hello reply, in nanoseconds.
    pub first_reply: Option<u64>,
    /// Why the connection stopped early, if it did.
    pub error: Option<String>,
    /// True when the time limit ended its load (rather than the count or the list's end).
    pub timed: bool,
}

/// The result of a whole run.
#[derive(Debug)]
pub struct Outcome {
    /// Every connection's result.
    pub conns: Vec<ConnResult>,
    /// From the moment every connection was ready to the last one's end.
    pub wall: Duration,
}

/// A connected stream, TCP or Unix.
pub(crate) enum Conn {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Conn {
    pub(crate) fn open(server: &Server, timeout: Duration) -> io::Result<Conn> {
        let conn = match server {
            Server::Tcp(addr) => {
                let s = TcpStream::connect_timeout(addr, timeout)?;
                // A request is one small write: send it now (Postfix's client does the same).
                s.set_nodelay(true)?;
                Conn::Tcp(s)
            }
            Server::Unix(path) => Conn::Unix(UnixStream::connect(path)?),
        };
        match &conn {
            Conn::Tcp(s) => {
                s.set_read_timeout(Some(timeout))?;
                s.set_write_timeout(Some(timeout))?;
            }
            Conn::Unix(s) => {
                s.set_read_timeout(Some(timeout))?;
                s.set_write_timeout(Some(timeout))?;
            }
        }
        Ok(conn)
    }
}

impl Conn {
    /// Non-blocking or blocking reads and writes.
    pub(crate) fn set_nonblocking(&self, on: bool) -> io::Result<()> {
        match self {
            Conn::Tcp(s) => s.set_nonblocking(on),
            Conn::Unix(s) => s.set_nonblocking(on),
        }
    }

    /// The socket, for epoll.
    pub(crate) fn fd(&self) -> std::os::fd::BorrowedFd<'_> {
        use std::os::fd::AsFd;
        match self {
            Conn::Tcp(s) => s.as_fd(),
            Conn::Unix(s) => s.as_fd(),
        }
    }
}

impl Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Conn::Tcp(s) => s.read(buf),
            Conn::Unix(s) => s.read(buf),
        }
    }
}

impl Write for Conn {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Conn::Tcp(s) => s.write(buf),
            Conn::Unix(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A connection's socket and its read buffer.
pub(crate) struct Client {
    pub(crate) conn: Conn,
    pub(crate) buf: Vec<u8>,
    pub(crate) chunk: Box<[u8]>,
}

impl Client {
    /// Reads the next reply and returns its class.
    pub(crate) fn reply(&mut self) -> io::Result<Answer> {
        loop {
            let parsed = wire::parse_reply(&self.buf)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
            if let Some((payload, used)) = parsed {
                let answer = Answer::of(payload);
                self.buf.drain(..used);
                return Ok(answer);
            }
            let n = self.conn.read(&mut self.chunk)?;
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the server closed the connection",
                ));
            }
            self.buf.extend_from_slice(&self.chunk[..n]);
        }
    }
}

/// What the connections share: the requests and how many have been taken.
pub(crate) struct Work {
    pub(crate) requests: Vec<Vec<u8>>,
    hello: Vec<u8>,
    once: bool,
    limit: u64,
    /// With `once`: the next domain to ask for.
    cursor: AtomicUsize,
    /// Without: how many requests have been taken in all.
    taken: AtomicU64,
}

impl Work {
    pub(crate) fn new(o: &Options, domains: &[String]) -> Work {
        Work {
            requests: domains.iter().map(|d| wire::request(&o.map, d)).collect(),
            hello: wire::request(&o.map, &o.hello),
            once: o.once,
            limit: o.requests,
            cursor: AtomicUsize::new(0),
            taken: AtomicU64::new(0),
        }
    }

    /// The index of the next request connection `conn` sends, or None when the run is done.
    /// `step` counts the requests this connection took so far.
    pub(crate) fn take(&self, first: usize, step: usize) -> Option<usize> {
        if self.once {
            let i = self.cursor.fetch_add(1, Ordering::Relaxed);
            (i < self.requests.len()).then_some(i)
        } else if self.taken.fetch_add(1, Ordering::Relaxed) < self.limit {
            Some((first + step) % self.requests.len())
        } else {
            None
        }
    }
}

/// Runs the load of `o` over `domains` (not empty) and returns every connection's figures.
pub fn run(o: &Options, domains: &[String]) -> Outcome {
    let work = Arc::new(Work::new(o, domains));
    // Every connection ready (connected, hello answered) before the clock starts.
    let ready = Arc::new(Barrier::new(o.connections + 1));
    let mut handles = Vec::with_capacity(o.connections);
    for i in 0..o.connections {
        let (work, ready, o) = (Arc::clone(&work), Arc::clone(&ready), o.clone());
        // Each connection starts at its own place in the list, spread evenly.
        let first = i * domains.len() / o.connections;
        let spawned = thread::Builder::new()
            .name(format!("conn-{i}"))
            .stack_size(STACK)
            .spawn(move || connection(&o, &work, &ready, first));
        match spawned {
            Ok(h) => handles.push(h),
            Err(e) => {
                // The others wait for this one at the barrier: the run cannot go on.
                eprintln!("socketmap-load: cannot start connection {i}: {e}");
                std::process::exit(1);
            }
        }
    }
    ready.wait();
    let started = Instant::now();
    let mut conns = Vec::with_capacity(handles.len());
    for h in handles {
        conns.push(h.join().unwrap_or_else(|_| ConnResult {
            error: Some("the connection's thread panicked".into()),
            ..ConnResult::default()
        }));
    }
    let wall = started.elapsed();
    Outcome { conns, wall }
}

/// One connection: connect, hello, wait for the others, then the load.
fn connection(o: &Options, work: &Work, ready: &Barrier, first: usize) -> ConnResult {
    let mut result = ConnResult::default();
    let t0 = Instant::now();
    let hello = hello(o, work);
    result.first_reply = hello.as_ref().ok().map(|_| nanos(t0.elapsed()));
    // Wait even when the hello failed: the barrier counts every connection.
    ready.wait();
    let mut client = match hello {
        Ok(client) => client,
        Err(e) => {
            result.error = Some(format!("connect or hello: {e}"));
            return result;
        }
    };
    let end = Instant::now() + o.seconds;
    result.latencies.reserve(if o.once { 64 } else { 1 << 16 });
    if let Err(e) = load(&mut client, o, work, first, end, &mut result) {
        result.error = Some(e.to_string());
    }
    result
}

/// A connection opened and its hello request answered.
pub(crate) fn hello(o: &Options, work: &Work) -> io::Result<Client> {
    let conn = Conn::open(&o.server, o.timeout)?;
    let mut client = Client {
        conn,
        buf: Vec::with_capacity(512),
        chunk: vec![0u8; 4096].into_boxed_slice(),
    };
    client.conn.write_all(&work.hello)?;
    client.reply()?;
    Ok(client)
}

/// Keeps `o.depth` requests outstanding until the work or the time is over, then reads the
/// remaining replies.
fn load(
    client: &mut Client,
    o: &Options,
    work: &Work,
    first: usize,
    end: Instant,
    result: &mut ConnResult,
) -> io::Result<()> {
    let mut sent: VecDeque<Instant> = VecDeque::with_capacity(o.depth);
    let mut step = 0;
    let mut more = true;
    loop {
        while more && sent.len() < o.depth {
            let now = Instant::now();
            if now >= end {
                result.timed = true;
                more = false;
                break;
            }
            let Some(i) = work.take(first, step) else {
                more = false;
                break;
            };
            step += 1;
            client.conn.write_all(&work.requests[i])?;
            sent.push_back(now);
        }
        let Some(at) = sent.pop_front() else {
            return Ok(());
        };
        let answer = client.reply()?;
        result.latencies.push(nanos(at.elapsed()));
        result.answers[answer.index()] += 1;
    }
}

pub(crate) fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}
