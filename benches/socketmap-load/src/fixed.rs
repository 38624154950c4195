//! `socketmap-load --fixed-server ADDR`: a socketmap server that does no work, the floor a real
//! server is measured against on the same machine. It has the shape of `mtasts serve` (one
//! event-loop thread, epoll, level-triggered; one read per readiness, the answers to what it
//! read in one write, the writes of a round after all its reads) and answers every request with the same reply, so its cost per request is
//! the sockets', the event loop's and the scheduler's.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::TcpListener;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::os::unix::net::UnixListener;

use rustix::buffer::spare_capacity;
use rustix::event::epoll;

use crate::args::Server;
use crate::wire;

/// The largest request accepted (what `mtasts serve` accepts, R-SRV-1 in docs/rules.md).
const MAX_REQUEST: usize = 10_000;

/// A listener of either kind.
enum Listener {
    Tcp(TcpListener),
    Unix(UnixListener),
}

/// A connection of either kind.
enum Stream {
    Tcp(std::net::TcpStream),
    Unix(std::os::unix::net::UnixStream),
}

impl Stream {
    fn fd(&self) -> BorrowedFd<'_> {
        match self {
            Stream::Tcp(s) => s.as_fd(),
            Stream::Unix(s) => s.as_fd(),
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.read(buf),
            Stream::Unix(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write(buf),
            Stream::Unix(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Listens on `server` and answers every request on every connection with `reply`, until the
/// process is stopped. Returns only when the listener or the event loop fails.
pub fn serve(server: &Server, reply: &str) -> io::Result<()> {
    let mut framed = format!("{}:", reply.len()).into_bytes();
    framed.extend_from_slice(reply.as_bytes());
    framed.push(b',');
    let listener = match server {
        Server::Unix(path) => {
            let _ = std::fs::remove_file(path);
            Listener::Unix(UnixListener::bind(path)?)
        }
        Server::Tcp(addr) => Listener::Tcp(TcpListener::bind(addr)?),
    };
    let listen_fd = match &listener {
        Listener::Tcp(l) => l.as_fd(),
        Listener::Unix(l) => l.as_fd(),
    };
    let poll = epoll::create(epoll::CreateFlags::CLOEXEC)?;
    const LISTENER: u64 = u64::MAX;
    epoll::add(
        &poll,
        listen_fd,
        epoll::EventData::new_u64(LISTENER),
        epoll::EventFlags::IN,
    )?;
    let mut conns: HashMap<u64, (Stream, Vec<u8>, Vec<u8>)> = HashMap::new();
    let mut dirty: Vec<u64> = Vec::new();
    let mut events = Vec::with_capacity(256);
    let mut chunk = vec![0u8; 16 * 1024];
    loop {
        events.clear();
        match epoll::wait(&poll, spare_capacity(&mut events), None) {
            Ok(_) | Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
        for event in &events {
            let token = event.data.u64();
            if token == LISTENER {
                let stream = match &listener {
                    Listener::Tcp(l) => {
                        let (s, _) = l.accept()?;
                        s.set_nodelay(true)?;
                        Stream::Tcp(s)
                    }
                    Listener::Unix(l) => Stream::Unix(l.accept()?.0),
                };
                let key = stream.fd().as_raw_fd() as u64;
                epoll::add(
                    &poll,
                    stream.fd(),
                    epoll::EventData::new_u64(key),
                    epoll::EventFlags::IN,
                )?;
                conns.insert(
                    key,
                    (stream, Vec::with_capacity(512), Vec::with_capacity(512)),
                );
                continue;
            }
            let Some((stream, buf, out)) = conns.get_mut(&token) else {
                continue;
            };
            match answer(stream, buf, &mut chunk, &framed, out) {
                Ok(()) => dirty.push(token),
                Err(_) => {
                    if let Some((stream, _, _)) = conns.remove(&token) {
                        let _ = epoll::delete(&poll, stream.fd());
                    }
                }
            }
        }
        // The answers of the round, after all its reads (as mtasts serve writes them); a
        // blocking write: the load generator always reads.
        for token in dirty.drain(..) {
            if let Some((stream, _, out)) = conns.get_mut(&token) {
                let written = stream.write_all(out);
                out.clear();
                if written.is_err()
                    && let Some((stream, _, _)) = conns.remove(&token)
                {
                    let _ = epoll::delete(&poll, stream.fd());
                }
            }
        }
    }
}

/// One readiness of a connection: one read, the answers to every complete request added to
/// `out` (written by the caller). `Err` closes it: the peer closed, or sent a malformed
/// netstring.
fn answer<S: Read + Write>(
    stream: &mut S,
    buf: &mut Vec<u8>,
    chunk: &mut [u8],
    reply: &[u8],
    out: &mut Vec<u8>,
) -> io::Result<()> {
    let n = match stream.read(chunk) {
        Ok(0) => return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "closed")),
        Ok(n) => n,
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
        Err(e) => return Err(e),
    };
    buf.extend_from_slice(&chunk[..n]);
    let mut used = 0;
    loop {
        match wire::parse_reply(&buf[used..]) {
            Ok(Some((payload, n))) if payload.len() <= MAX_REQUEST => {
                used += n;
                out.extend_from_slice(reply);
            }
            Ok(None) => break,
            _ => return Err(io::Error::new(io::ErrorKind::InvalidData, "bad request")),
        }
    }
    buf.drain(..used);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stream that reads from a script and records what is written.
    struct Scripted {
        input: Vec<u8>,
        at: usize,
        written: Vec<u8>,
    }

    impl Read for Scripted {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            // Three bytes at a time: requests arrive split.
            let n = buf.len().min(3).min(self.input.len() - self.at);
            buf[..n].copy_from_slice(&self.input[self.at..self.at + n]);
            self.at += n;
            Ok(n)
        }
    }

    impl Write for Scripted {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.written.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn every_request_gets_the_reply() {
        let mut input = wire::request("postfix", "a.example");
        input.extend(wire::request("postfix", "b.example"));
        let mut s = Scripted {
            input,
            at: 0,
            written: Vec::new(),
        };
        let (mut buf, mut chunk, mut out) = (Vec::new(), [0u8; 4096], Vec::new());
        // Three bytes a read: the requests are answered once they are complete.
        while s.at < s.input.len() {
            answer(&mut s, &mut buf, &mut chunk, b"2:OK,", &mut out).unwrap();
        }
        s.write_all(&out).unwrap();
        assert_eq!(s.written, b"2:OK,2:OK,");
        out.clear();
        assert!(
            answer(&mut s, &mut buf, &mut chunk, b"2:OK,", &mut out).is_err(),
            "closed"
        );
        let mut bad = Scripted {
            input: b"x:".to_vec(),
            at: 0,
            written: Vec::new(),
        };
        assert!(answer(&mut bad, &mut buf, &mut chunk, b"2:OK,", &mut out).is_err());
    }
}
