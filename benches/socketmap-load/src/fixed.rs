//! `socketmap-load --fixed-server ADDR`: a socketmap server that does no work, the floor a real
//! server is measured against on the same machine. It has the shape of `mtasts serve` (a thread
//! per connection, blocking reads, one write per reply) and answers every request with the
//! same reply, so its cost per request is the sockets', the threads' and the scheduler's.

use std::io::{self, Read, Write};
use std::net::TcpListener;
use std::os::unix::net::UnixListener;
use std::thread;

use crate::args::Server;
use crate::wire;

/// The largest request accepted (what `mtasts serve` accepts, R-SRV-1 in docs/rules.md).
const MAX_REQUEST: usize = 10_000;

/// Listens on `server` and answers every request on every connection with `reply`, until the
/// process is stopped. Returns only when the listener fails.
pub fn serve(server: &Server, reply: &str) -> io::Result<()> {
    let mut framed = format!("{}:", reply.len()).into_bytes();
    framed.extend_from_slice(reply.as_bytes());
    framed.push(b',');
    let framed: &'static [u8] = Box::leak(framed.into_boxed_slice());
    match server {
        Server::Unix(path) => {
            let _ = std::fs::remove_file(path);
            let listener = UnixListener::bind(path)?;
            loop {
                let (stream, _) = listener.accept()?;
                spawn(stream, framed);
            }
        }
        Server::Tcp(addr) => {
            let listener = TcpListener::bind(addr)?;
            loop {
                let (stream, _) = listener.accept()?;
                stream.set_nodelay(true)?;
                spawn(stream, framed);
            }
        }
    }
}

fn spawn<S: Read + Write + Send + 'static>(mut stream: S, reply: &'static [u8]) {
    let spawned = thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(move || {
            let _ = answer(&mut stream, reply);
        });
    if let Err(e) = spawned {
        eprintln!("socketmap-load: cannot start a connection thread: {e}");
    }
}

/// Answers the requests of one connection until it closes or sends a malformed netstring.
fn answer<S: Read + Write>(stream: &mut S, reply: &[u8]) -> io::Result<()> {
    let mut buf: Vec<u8> = Vec::with_capacity(512);
    let mut chunk = [0u8; 4096];
    loop {
        let mut used = 0;
        let mut replies = 0;
        loop {
            match wire::parse_reply(&buf[used..]) {
                Ok(Some((payload, n))) if payload.len() <= MAX_REQUEST => {
                    used += n;
                    replies += 1;
                }
                Ok(None) => break,
                _ => return Err(io::Error::new(io::ErrorKind::InvalidData, "bad request")),
            }
        }
        buf.drain(..used);
        // One write per request, as a server that answers each in turn does.
        for _ in 0..replies {
            stream.write_all(reply)?;
        }
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
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
        answer(&mut s, b"2:OK,").unwrap();
        assert_eq!(s.written, b"2:OK,2:OK,");
        let mut bad = Scripted {
            input: b"x:".to_vec(),
            at: 0,
            written: Vec::new(),
        };
        assert!(answer(&mut bad, b"2:OK,").is_err());
    }
}
