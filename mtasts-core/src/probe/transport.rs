//! The byte stream a probe runs over: the [`Transport`] the dialogue and the TLS handshake
//! use, and its one real implementation, a TCP connection whose every read and write ends by
//! the probe's deadline ([`super::ProbeOptions::timeout`]).

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// A byte stream bounded by a deadline that can be brought forward.
pub(super) trait Transport: Read + Write {
    /// Ends every later read and write within `wait` from now, or at the deadline if that is
    /// sooner.
    fn shorten_deadline(&mut self, wait: Duration);
}

/// A TCP stream whose every read and write ends by one deadline.
pub(super) struct DeadlineStream {
    /// The connection.
    sock: TcpStream,
    /// When every read and write ends.
    deadline: Instant,
}

impl DeadlineStream {
    /// Wraps a connected socket; commands go out at once (no Nagle delay).
    pub(super) fn new(sock: TcpStream, deadline: Instant) -> DeadlineStream {
        let _ = sock.set_nodelay(true);
        DeadlineStream { sock, deadline }
    }

    /// The time left, or a timeout error once the deadline has passed.
    fn left(&self) -> io::Result<Duration> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            Err(io::Error::new(io::ErrorKind::TimedOut, "deadline passed"))
        } else {
            Ok(left)
        }
    }
}

impl Transport for DeadlineStream {
    fn shorten_deadline(&mut self, wait: Duration) {
        self.deadline = self.deadline.min(Instant::now() + wait);
    }
}

impl Read for DeadlineStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.left()?;
        self.sock.set_read_timeout(Some(left))?;
        self.sock.read(buf).map_err(timeout_kind)
    }
}

impl Write for DeadlineStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let left = self.left()?;
        self.sock.set_write_timeout(Some(left))?;
        self.sock.write(buf).map_err(timeout_kind)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.sock.flush()
    }
}

/// Socket timeouts show up as `WouldBlock` on Unix; call them what they are.
fn timeout_kind(e: io::Error) -> io::Error {
    if e.kind() == io::ErrorKind::WouldBlock {
        io::Error::new(io::ErrorKind::TimedOut, "deadline passed")
    } else {
        e
    }
}

/// True for the errors a passed deadline gives.
pub(super) fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
    )
}

/// Connects to the addresses in order; each attempt gets an equal share of the time left, so
/// a black-holed first address (IPv6 without a route, say) leaves time for the next. Each
/// address that fails is added to `errors` with the reason; `Err` is the reason for the
/// probe's [`Incomplete`](super::ProbeOutcome::Incomplete) outcome.
pub(super) fn connect(
    addrs: &[SocketAddr],
    deadline: Instant,
    errors: &mut Vec<String>,
) -> Result<(TcpStream, SocketAddr), String> {
    if addrs.is_empty() {
        return Err("no address to connect to".into());
    }
    for (i, addr) in addrs.iter().enumerate() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            errors.push(format!("{addr}: not tried, deadline passed"));
            continue;
        }
        let tries_left = u32::try_from(addrs.len() - i).unwrap_or(u32::MAX);
        let share = (left / tries_left).max(Duration::from_millis(1));
        match TcpStream::connect_timeout(addr, share) {
            Ok(sock) => return Ok((sock, *addr)),
            Err(e) => errors.push(format!("{addr}: {e}")),
        }
    }
    Err(format!(
        "could not connect to any address: {}",
        errors.join("; ")
    ))
}
