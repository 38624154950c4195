//! The policy server's serving model: a few event-loop threads (epoll) serve every client
//! connection. A request the caches can answer is answered and written by the loop at once;
//! one that needs network work goes to a thread of its own, and only that connection's later
//! requests wait behind it, so answers stay in order (R-SRV-1) while every other connection is
//! served. A loop is one thread for hundreds of connections: no thread is woken per request,
//! which is what a thread per connection costs most of its time in.
//!
//! Each connection is bounded as [`crate::ServeSettings::client_timeout`] says: a client that
//! takes longer than that since its last complete request (or since it connected) to send the
//! next one is cut, so a client dripping a byte at a time goes as surely as a silent one; a
//! client that does not read its replies within that time is cut too.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use rustix::buffer::spare_capacity;
use rustix::event::{EventfdFlags, Timespec, epoll, eventfd};

use crate::socketmap::{MAX_REQUEST, PolicyServer, Reply, ServerHandle, Work, read_netstring};

/// How often each loop looks at the connections' deadlines and whether the server is
/// stopping (a connection between requests closes within this time of a stop).
const SCAN: Duration = Duration::from_millis(100);
/// The most read from a connection in one go.
const READ_CHUNK: usize = 16 * 1024;
/// Replies waiting for a client to read them beyond which its further requests are not read
/// (they wait in the kernel's buffer): a client that only writes cannot grow the server.
const MAX_BACKLOG: usize = 256 * 1024;
/// The epoll token of a loop's wake-up event.
const WAKE: u64 = u64::MAX;

/// A client connection: TCP or a Unix socket.
#[derive(Debug)]
pub enum ClientStream {
    /// A TCP connection.
    Tcp(TcpStream),
    /// A Unix-domain stream connection.
    Unix(UnixStream),
}

impl From<TcpStream> for ClientStream {
    fn from(stream: TcpStream) -> ClientStream {
        ClientStream::Tcp(stream)
    }
}

impl From<UnixStream> for ClientStream {
    fn from(stream: UnixStream) -> ClientStream {
        ClientStream::Unix(stream)
    }
}

impl ClientStream {
    fn fd(&self) -> BorrowedFd<'_> {
        match self {
            ClientStream::Tcp(s) => s.as_fd(),
            ClientStream::Unix(s) => s.as_fd(),
        }
    }

    fn set_nonblocking(&self) -> io::Result<()> {
        match self {
            ClientStream::Tcp(s) => s.set_nonblocking(true),
            ClientStream::Unix(s) => s.set_nonblocking(true),
        }
    }

    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            ClientStream::Tcp(s) => s.read(buf),
            ClientStream::Unix(s) => s.read(buf),
        }
    }

    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            ClientStream::Tcp(s) => s.write(buf),
            ClientStream::Unix(s) => s.write(buf),
        }
    }
}

/// What a loop is handed from other threads.
#[derive(Default)]
struct Inbox {
    /// New connections.
    streams: Vec<ClientStream>,
    /// Answers that were given on another thread.
    answers: Vec<Answer>,
    /// Set by the loop when it has ended: nothing more is taken.
    closed: bool,
}

/// An answer given on another thread, for the connection `token` (if it is still the one
/// numbered `id`, and still waits for its lookup number `serial`).
struct Answer {
    token: usize,
    id: u64,
    serial: u64,
    reply: Reply,
    work: Work,
}

/// One loop's shared parts.
struct Shared {
    epoll: OwnedFd,
    wake: OwnedFd,
    inbox: Mutex<Inbox>,
}

impl Shared {
    fn inbox(&self) -> MutexGuard<'_, Inbox> {
        self.inbox.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn wake(&self) {
        // An eventfd counter cannot overflow at one per item; a failure leaves the item for
        // the loop's next scan (within SCAN).
        let _ = rustix::io::write(&self.wake, &1u64.to_ne_bytes());
    }
}

/// The event loops of one server: connections are given to them in turn.
pub struct EventLoops {
    handle: Arc<ServerHandle>,
    loops: Vec<Arc<Shared>>,
    next: AtomicUsize,
    live: Arc<AtomicUsize>,
    threads: Mutex<Vec<thread::JoinHandle<()>>>,
}

impl std::fmt::Debug for EventLoops {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventLoops")
            .field("loops", &self.loops.len())
            .field("live", &self.live())
            .finish()
    }
}

/// Whether a connection was taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admitted {
    /// It is being served.
    Yes,
    /// `max` connections are being served already: it was closed.
    Full,
    /// The server is stopping: it was closed.
    Stopping,
}

impl EventLoops {
    /// Starts `loops` event loops (at least one) serving for `handle`, each connection bounded
    /// by `client_timeout`. They run until the server stops ([`ServerHandle::stop`]) and
    /// their last connection has closed.
    pub fn start(
        handle: &Arc<ServerHandle>,
        loops: usize,
        client_timeout: Duration,
    ) -> io::Result<EventLoops> {
        let live = Arc::new(AtomicUsize::new(0));
        let mut shared = Vec::new();
        let mut threads = Vec::new();
        let ids = Arc::new(AtomicU64::new(0));
        for n in 0..loops.max(1) {
            let one = Arc::new(Shared {
                epoll: epoll::create(epoll::CreateFlags::CLOEXEC)?,
                wake: eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK)?,
                inbox: Mutex::new(Inbox::default()),
            });
            epoll::add(
                &one.epoll,
                &one.wake,
                epoll::EventData::new_u64(WAKE),
                epoll::EventFlags::IN,
            )?;
            let mut event_loop = Loop {
                shared: Arc::clone(&one),
                handle: Arc::clone(handle),
                limit: client_timeout,
                live: Arc::clone(&live),
                ids: Arc::clone(&ids),
                conns: Vec::new(),
                free: Vec::new(),
                open: 0,
                dirty: Vec::new(),
            };
            let thread = thread::Builder::new()
                .name(format!("mtasts-loop-{n}"))
                .spawn(move || event_loop.run())?;
            shared.push(one);
            threads.push(thread);
        }
        Ok(EventLoops {
            handle: Arc::clone(handle),
            loops: shared,
            next: AtomicUsize::new(0),
            live,
            threads: Mutex::new(threads),
        })
    }

    /// Serves `stream` on the next loop, unless `max` connections are being served or the
    /// server is stopping (the stream is then closed); counted in the metrics. An error is
    /// one of setting the stream non-blocking.
    pub fn admit(&self, stream: impl Into<ClientStream>, max: usize) -> io::Result<Admitted> {
        let stream = stream.into();
        stream.set_nonblocking()?;
        let metrics = Arc::clone(self.handle.current().metrics());
        if self.live.fetch_add(1, Ordering::SeqCst) >= max {
            self.live.fetch_sub(1, Ordering::SeqCst);
            metrics.connection(false);
            return Ok(Admitted::Full);
        }
        let n = self.next.fetch_add(1, Ordering::Relaxed) % self.loops.len();
        let target = &self.loops[n];
        {
            let mut inbox = target.inbox();
            if inbox.closed {
                drop(inbox);
                self.live.fetch_sub(1, Ordering::SeqCst);
                return Ok(Admitted::Stopping);
            }
            inbox.streams.push(stream);
        }
        target.wake();
        metrics.connection(true);
        Ok(Admitted::Yes)
    }

    /// The connections being served.
    pub fn live(&self) -> usize {
        self.live.load(Ordering::SeqCst)
    }

    /// Waits, at most `limit`, for every loop to end (after [`ServerHandle::stop`]: each ends
    /// when its last connection has closed); true when they all have.
    pub fn wait_ended(&self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        loop {
            let mut threads = self.threads.lock().unwrap_or_else(|p| p.into_inner());
            threads.retain(|t| !t.is_finished());
            if threads.is_empty() {
                return true;
            }
            drop(threads);
            if Instant::now() >= deadline {
                return false;
            }
            thread::sleep(Duration::from_millis(10));
        }
    }
}

/// One client connection's state.
struct Conn {
    stream: ClientStream,
    /// Tells this connection from a later one given the same token.
    id: u64,
    /// What was read; requests up to `start` are answered.
    input: Vec<u8>,
    start: usize,
    /// Replies to write; up to `sent` are written.
    output: Vec<u8>,
    sent: usize,
    /// When the next complete request is due (R-SRV-1: a slow client is cut).
    deadline: Instant,
    /// When the replies waiting must have been read by.
    write_deadline: Option<Instant>,
    /// A request is being answered on another thread; later ones wait.
    waiting: bool,
    /// That request, its lookup's number, when it was read, and when its answer is due
    /// (`serve.answer_timeout`: the loop answers then, whether the lookup is done or not).
    pending: Vec<u8>,
    serial: u64,
    waiting_since: Instant,
    answer_due: Instant,
    /// The client has closed its side.
    eof: bool,
    /// Taken out of the epoll set (the client hung up while an answer was being looked up).
    gone: bool,
    interest: epoll::EventFlags,
    /// The server this connection answers with, and its generation (R-SRV: a reload is taken
    /// at the next request).
    held: (u64, Arc<PolicyServer>),
}

impl Conn {
    fn unsent(&self) -> usize {
        self.output.len() - self.sent
    }

    /// Nothing read and unanswered, nothing being answered, nothing left to write.
    fn is_idle(&self) -> bool {
        !self.waiting && self.start == self.input.len() && self.unsent() == 0
    }
}

/// Why a connection is closed.
enum Close {
    /// The client is done (it closed between requests, or the server is stopping).
    Quietly,
    /// Worth a line in the log.
    Noted(String),
    /// R-SRV-1: a malformed netstring, an oversized request, or a client too slow: logged as
    /// a warning and counted.
    Fault(String),
}

impl From<io::Error> for Close {
    fn from(e: io::Error) -> Close {
        Close::Noted(e.to_string())
    }
}

/// One event loop, owned by its thread.
struct Loop {
    shared: Arc<Shared>,
    handle: Arc<ServerHandle>,
    limit: Duration,
    live: Arc<AtomicUsize>,
    ids: Arc<AtomicU64>,
    conns: Vec<Option<Conn>>,
    free: Vec<usize>,
    open: usize,
    /// Connections with answers to write once every event of this wait is handled: the
    /// answers of a round go out together, after all its reads (a write wakes the client,
    /// and a client on the same CPU may then take it from the loop at each one).
    dirty: Vec<usize>,
}

impl Loop {
    fn run(&mut self) {
        let mut events: Vec<epoll::Event> = Vec::with_capacity(256);
        let mut chunk = vec![0u8; READ_CHUNK];
        let mut next_scan = Instant::now() + SCAN;
        loop {
            let wait = next_scan.saturating_duration_since(Instant::now());
            let timeout = Timespec {
                tv_sec: i64::try_from(wait.as_secs()).unwrap_or(1),
                tv_nsec: i64::from(wait.subsec_nanos()),
            };
            events.clear();
            match epoll::wait(
                &self.shared.epoll,
                spare_capacity(&mut events),
                Some(&timeout),
            ) {
                Ok(_) | Err(rustix::io::Errno::INTR) => {}
                Err(e) => {
                    // Not expected of a valid epoll descriptor; the loop keeps its
                    // connections' deadlines and tries again.
                    log::error!("waiting for connections failed: {e}");
                    thread::sleep(SCAN);
                }
            }
            let now = Instant::now();
            for event in &events {
                let token = event.data.u64();
                if token == WAKE {
                    self.take_inbox(now);
                } else if let Ok(token) = usize::try_from(token) {
                    self.on_event(token, event.flags, &mut chunk, now);
                }
            }
            self.write_round(now);
            if now >= next_scan {
                next_scan = now + SCAN;
                if self.scan(now) {
                    return;
                }
            }
        }
    }

    /// New connections and answers given elsewhere.
    fn take_inbox(&mut self, now: Instant) {
        let mut count = [0u8; 8];
        let _ = rustix::io::read(&self.shared.wake, &mut count);
        let (streams, answers) = {
            let mut inbox = self.shared.inbox();
            (
                std::mem::take(&mut inbox.streams),
                std::mem::take(&mut inbox.answers),
            )
        };
        for stream in streams {
            self.register(stream, now);
        }
        for answer in answers {
            self.on_answer(answer, now);
        }
    }

    fn register(&mut self, stream: ClientStream, now: Instant) {
        let token = self.free.pop().unwrap_or(self.conns.len());
        let added = epoll::add(
            &self.shared.epoll,
            stream.fd(),
            epoll::EventData::new_u64(token as u64),
            epoll::EventFlags::IN,
        );
        if let Err(e) = added {
            log::warn!("cannot serve a connection: {e}");
            self.free.push(token);
            self.live.fetch_sub(1, Ordering::SeqCst);
            return;
        }
        let conn = Conn {
            stream,
            id: self.ids.fetch_add(1, Ordering::Relaxed),
            input: Vec::new(),
            start: 0,
            output: Vec::new(),
            sent: 0,
            deadline: now + self.limit,
            write_deadline: None,
            waiting: false,
            pending: Vec::new(),
            serial: 0,
            waiting_since: now,
            answer_due: now,
            eof: false,
            gone: false,
            interest: epoll::EventFlags::IN,
            held: self.handle.held(),
        };
        if token == self.conns.len() {
            self.conns.push(Some(conn));
        } else {
            self.conns[token] = Some(conn);
        }
        self.open += 1;
    }

    fn on_event(&mut self, token: usize, flags: epoll::EventFlags, chunk: &mut [u8], now: Instant) {
        let Some(conn) = self.conns.get_mut(token).and_then(Option::as_mut) else {
            return;
        };
        use epoll::EventFlags as E;
        if flags.intersects(E::IN | E::HUP | E::ERR) && !conn.eof && !conn.waiting {
            match conn.stream.read(chunk) {
                Ok(0) => conn.eof = true,
                Ok(n) => conn.input.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return self.close(token, Close::from(e)),
            }
        } else if flags.intersects(E::HUP | E::ERR) && conn.waiting {
            // The client went while its answer is being looked up: out of the epoll set
            // until the answer comes (a hang-up would otherwise be reported on every wait).
            let _ = epoll::delete(&self.shared.epoll, conn.stream.fd());
            conn.gone = true;
            conn.eof = true;
            return;
        }
        self.answered(token, now);
    }

    /// After new input or an answer: the connection's complete requests answered, its
    /// replies left for [`Loop::write_round`]; a protocol fault closes it at once.
    fn answered(&mut self, token: usize, now: Instant) {
        match self.advance(token, now) {
            Ok(()) => self.dirty.push(token),
            Err(why) => self.close(token, why),
        }
    }

    /// Writes what this round's answers left, and settles each connection.
    fn write_round(&mut self, now: Instant) {
        let mut dirty = std::mem::take(&mut self.dirty);
        for &token in &dirty {
            let outcome = match self.conns.get_mut(token).and_then(Option::as_mut) {
                Some(conn) => flush(conn, now, self.limit),
                None => continue,
            };
            self.settle(token, outcome);
        }
        dirty.clear();
        self.dirty = dirty;
    }

    fn on_answer(&mut self, answer: Answer, now: Instant) {
        let Some(conn) = self.conns.get_mut(answer.token).and_then(Option::as_mut) else {
            return;
        };
        if conn.id != answer.id || !conn.waiting || conn.serial != answer.serial {
            // Answered already (its time was up), or another connection now: the lookup's
            // result is in the cache for the next request.
            return;
        }
        conn.held
            .1
            .count(&answer.reply, &answer.work, conn.waiting_since);
        answer.reply.write_netstring(&mut conn.output);
        conn.waiting = false;
        conn.deadline = now + self.limit;
        if conn.gone {
            // The client has hung up: what can be written is, and the connection closes.
            let _ = flush(conn, now, self.limit);
            return self.close(answer.token, Close::Quietly);
        }
        self.answered(answer.token, now);
    }

    /// Answers every complete request read, in order, until one needs network work (the
    /// replies wait in the connection's output for [`Loop::write_round`]).
    fn advance(&mut self, token: usize, now: Instant) -> Result<(), Close> {
        let Some(conn) = self.conns.get_mut(token).and_then(Option::as_mut) else {
            return Ok(());
        };
        while !conn.waiting {
            // R-SRV-1: a malformed netstring or an oversized request closes the connection.
            let parsed = read_netstring(&conn.input[conn.start..], MAX_REQUEST)
                .map_err(|e| Close::Fault(e.to_string()))?;
            let Some((payload, used)) = parsed else { break };
            self.handle.refresh(&mut conn.held);
            match conn.held.1.answer_cached(payload, now) {
                Some(reply) => reply.write_netstring(&mut conn.output),
                None => {
                    let server = Arc::clone(&conn.held.1);
                    let shared = Arc::clone(&self.shared);
                    conn.serial += 1;
                    conn.pending.clear();
                    conn.pending.extend_from_slice(payload);
                    let (id, serial, request) = (conn.id, conn.serial, payload.to_vec());
                    let spawned =
                        thread::Builder::new()
                            .name("mtasts-answer".into())
                            .spawn(move || {
                                let (reply, work) = server.lookup_answer(&request);
                                shared.inbox().answers.push(Answer {
                                    token,
                                    id,
                                    serial,
                                    reply,
                                    work,
                                });
                                shared.wake();
                            });
                    match spawned {
                        Ok(_) => {
                            conn.waiting = true;
                            conn.waiting_since = now;
                            conn.answer_due = now + conn.held.1.settings().answer_timeout;
                        }
                        // Never fail open: no thread, no answer, and Postfix defers.
                        Err(e) => Reply::Temp(format!("cannot look the domain up now: {e}"))
                            .write_netstring(&mut conn.output),
                    }
                }
            }
            conn.start += used;
            conn.deadline = now + self.limit;
        }
        if conn.start == conn.input.len() {
            conn.input.clear();
            conn.start = 0;
        } else if conn.start >= READ_CHUNK {
            conn.input.drain(..conn.start);
            conn.start = 0;
        }
        Ok(())
    }

    /// After an event: closes the connection if it is done or at fault, else sets what it
    /// waits for.
    fn settle(&mut self, token: usize, outcome: Result<(), Close>) {
        if let Err(why) = outcome {
            return self.close(token, why);
        }
        let Some(conn) = self.conns.get_mut(token).and_then(Option::as_mut) else {
            return;
        };
        if conn.eof && !conn.waiting && conn.unsent() == 0 {
            let why = if conn.start == conn.input.len() {
                Close::Quietly
            } else {
                Close::Noted("the connection closed inside a request".into())
            };
            return self.close(token, why);
        }
        if self.handle.is_stopping() && conn.is_idle() {
            return self.close(token, Close::Quietly);
        }
        let mut want = epoll::EventFlags::empty();
        if !conn.eof && !conn.waiting && conn.unsent() < MAX_BACKLOG {
            want |= epoll::EventFlags::IN;
        }
        if conn.unsent() > 0 {
            want |= epoll::EventFlags::OUT;
        }
        if want != conn.interest && !conn.gone {
            match epoll::modify(
                &self.shared.epoll,
                conn.stream.fd(),
                epoll::EventData::new_u64(token as u64),
                want,
            ) {
                Ok(()) => conn.interest = want,
                Err(e) => self.close(token, Close::Noted(format!("cannot wait for it: {e}"))),
            }
        }
    }

    /// The deadlines, and the stop: true when this loop has ended.
    fn scan(&mut self, now: Instant) -> bool {
        let stopping = self.handle.is_stopping();
        let limit = self.limit.as_secs_f64();
        let mut closing = Vec::new();
        let mut overdue = Vec::new();
        for (token, slot) in self.conns.iter().enumerate() {
            let Some(conn) = slot else { continue };
            if conn.waiting && now >= conn.answer_due {
                overdue.push(token);
            } else if conn.write_deadline.is_some_and(|d| now >= d) {
                closing.push((
                    token,
                    Close::Fault(format!(
                        "the client did not read its replies within {limit} s"
                    )),
                ));
            } else if !conn.waiting && now >= conn.deadline && !conn.gone {
                closing.push((
                    token,
                    Close::Fault(format!("no complete request within {limit} s")),
                ));
            } else if stopping && conn.is_idle() {
                closing.push((token, Close::Quietly));
            }
        }
        for (token, why) in closing {
            self.close(token, why);
        }
        for token in overdue {
            self.answer_overdue(token, now);
        }
        if !self.dirty.is_empty() {
            self.write_round(now);
        }
        if stopping && self.open == 0 {
            let mut inbox = self.shared.inbox();
            if inbox.streams.is_empty() {
                inbox.closed = true;
                return true;
            }
        }
        false
    }

    /// `serve.answer_timeout` has passed for the lookup `token` waits for: the loop answers
    /// now (the cached policy in force, or `TEMP`), and the lookup goes on for the cache.
    fn answer_overdue(&mut self, token: usize, now: Instant) {
        let Some(conn) = self.conns.get_mut(token).and_then(Option::as_mut) else {
            return;
        };
        if conn.gone {
            // The client has gone: nobody to answer.
            return self.close(token, Close::Quietly);
        }
        let (reply, work) = conn.held.1.overdue_answer(&conn.pending);
        conn.held.1.count(&reply, &work, conn.waiting_since);
        reply.write_netstring(&mut conn.output);
        conn.waiting = false;
        conn.deadline = now + self.limit;
        self.answered(token, now);
    }

    fn close(&mut self, token: usize, why: Close) {
        let Some(conn) = self.conns.get_mut(token).and_then(Option::take) else {
            return;
        };
        if !conn.gone {
            let _ = epoll::delete(&self.shared.epoll, conn.stream.fd());
        }
        match why {
            Close::Quietly => {}
            Close::Noted(reason) => log::info!("closing a connection: {reason}"),
            Close::Fault(reason) => {
                // R-SRV-1: this connection closes, and only this one.
                conn.held.1.metrics().closed_on_error();
                log::warn!("closing a connection: {reason}");
            }
        }
        drop(conn);
        self.free.push(token);
        self.open -= 1;
        self.live.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Writes what `conn` has to send, as far as the client takes it now.
///
/// A client has `limit` to take some of it whenever it has stopped taking any.
fn flush(conn: &mut Conn, now: Instant, limit: Duration) -> Result<(), Close> {
    let mut took = false;
    while conn.sent < conn.output.len() {
        match conn.stream.write(&conn.output[conn.sent..]) {
            Ok(0) => return Err(Close::Noted("the client takes no more replies".into())),
            Ok(n) => {
                conn.sent += n;
                took = true;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                if took || conn.write_deadline.is_none() {
                    conn.write_deadline = Some(now + limit);
                }
                return Ok(());
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Close::from(e)),
        }
    }
    conn.output.clear();
    conn.sent = 0;
    conn.write_deadline = None;
    Ok(())
}
