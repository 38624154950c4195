//! `--driver loop`: every connection driven by one thread with epoll, as an event-driven
//! client would. A connection's requests are written as soon as its replies are read; the
//! client itself costs less per request than a thread per connection, which on one shared CPU
//! leaves more of it to the server measured.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

use rustix::buffer::spare_capacity;
use rustix::event::{Timespec, epoll};

use crate::args::Options;
use crate::load::{Client, ConnResult, Outcome, Work, hello, nanos};
use crate::wire::{self, Answer};

/// One connection under load.
struct Driven {
    client: Client,
    result: ConnResult,
    /// When each outstanding request was written, oldest first.
    sent: VecDeque<Instant>,
    /// Where it starts in the list, and how many it took so far.
    first: usize,
    step: usize,
    /// No more requests to send.
    drained: bool,
    /// Done: everything answered, or failed.
    done: bool,
}

/// Runs the load of `o` over `domains` from this one thread.
pub fn run(o: &Options, domains: &[String]) -> Outcome {
    let work = Work::new(o, domains);
    let mut conns: Vec<Driven> = Vec::with_capacity(o.connections);
    for i in 0..o.connections {
        let t0 = Instant::now();
        let mut result = ConnResult::default();
        match hello(o, &work) {
            Ok(client) => {
                result.first_reply = Some(nanos(t0.elapsed()));
                conns.push(Driven {
                    client,
                    result,
                    sent: VecDeque::with_capacity(o.depth),
                    first: i * domains.len() / o.connections,
                    step: 0,
                    drained: false,
                    done: false,
                });
            }
            Err(e) => {
                eprintln!("socketmap-load: connection {i}: connect or hello: {e}");
                std::process::exit(1);
            }
        }
    }
    let poll = match epoll::create(epoll::CreateFlags::CLOEXEC) {
        Ok(poll) => poll,
        Err(e) => {
            eprintln!("socketmap-load: epoll: {e}");
            std::process::exit(1);
        }
    };
    for (i, d) in conns.iter_mut().enumerate() {
        let registered = d.client.conn.set_nonblocking(true).and_then(|()| {
            epoll::add(
                &poll,
                d.client.conn.fd(),
                epoll::EventData::new_u64(i as u64),
                epoll::EventFlags::IN,
            )
            .map_err(io::Error::from)
        });
        if let Err(e) = registered {
            eprintln!("socketmap-load: connection {i}: {e}");
            std::process::exit(1);
        }
    }
    let started = Instant::now();
    let end = started + o.seconds;
    let mut out = Vec::with_capacity(4096);
    for d in conns.iter_mut() {
        if let Err(e) = refill(d, o, &work, end, &mut out) {
            fail(d, &e);
        }
    }
    let mut open = conns.iter().filter(|d| !d.done).count();
    let mut events = Vec::with_capacity(conns.len());
    let timeout = Timespec {
        tv_sec: i64::try_from(o.timeout.as_secs()).unwrap_or(30),
        tv_nsec: i64::from(o.timeout.subsec_nanos()),
    };
    while open > 0 {
        events.clear();
        match epoll::wait(&poll, spare_capacity(&mut events), Some(&timeout)) {
            Ok(_) | Err(rustix::io::Errno::INTR) => {}
            Err(e) => {
                eprintln!("socketmap-load: epoll: {e}");
                std::process::exit(1);
            }
        }
        if events.is_empty() {
            for d in conns.iter_mut().filter(|d| !d.done) {
                fail(
                    d,
                    &io::Error::new(io::ErrorKind::TimedOut, "no reply in time"),
                );
            }
            break;
        }
        for event in &events {
            let Some(d) = usize::try_from(event.data.u64())
                .ok()
                .and_then(|i| conns.get_mut(i))
            else {
                continue;
            };
            if d.done {
                continue;
            }
            let step = read_replies(d).and_then(|()| refill(d, o, &work, end, &mut out));
            if let Err(e) = step {
                fail(d, &e);
            }
            if d.done {
                let _ = epoll::delete(&poll, d.client.conn.fd());
                open -= 1;
            }
        }
    }
    let wall = started.elapsed();
    Outcome {
        conns: conns.into_iter().map(|d| d.result).collect(),
        wall,
    }
}

/// Reads what the server sent and counts every complete reply.
fn read_replies(d: &mut Driven) -> io::Result<()> {
    let n = match d.client.conn.read(&mut d.client.chunk) {
        Ok(0) => {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the server closed the connection",
            ));
        }
        Ok(n) => n,
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
        Err(e) => return Err(e),
    };
    let now = Instant::now();
    d.client.buf.extend_from_slice(&d.client.chunk[..n]);
    let mut used = 0;
    while let Some((payload, len)) = wire::parse_reply(&d.client.buf[used..])
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?
    {
        let Some(at) = d.sent.pop_front() else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "a reply to no request",
            ));
        };
        d.result.latencies.push(nanos(now.duration_since(at)));
        d.result.answers[Answer::of(payload).index()] += 1;
        used += len;
    }
    d.client.buf.drain(..used);
    Ok(())
}

/// Sends requests until `o.depth` are outstanding (in one write), or marks the connection
/// done when nothing is outstanding and nothing is left to send.
fn refill(
    d: &mut Driven,
    o: &Options,
    work: &Work,
    end: Instant,
    out: &mut Vec<u8>,
) -> io::Result<()> {
    out.clear();
    let now = Instant::now();
    while !d.drained && d.sent.len() < o.depth {
        if now >= end {
            d.result.timed = true;
            d.drained = true;
            break;
        }
        let Some(i) = work.take(d.first, d.step) else {
            d.drained = true;
            break;
        };
        d.step += 1;
        out.extend_from_slice(&work.requests[i]);
        d.sent.push_back(now);
    }
    if !out.is_empty() {
        write_all(&mut d.client, out, o.timeout)?;
    }
    if d.drained && d.sent.is_empty() {
        d.done = true;
    }
    Ok(())
}

/// Writes `bytes` on a non-blocking socket: a request batch is a few hundred bytes and
/// normally goes at once; if not, it waits (bounded) for room.
fn write_all(client: &mut Client, mut bytes: &[u8], limit: Duration) -> io::Result<()> {
    let until = Instant::now() + limit;
    while !bytes.is_empty() {
        match client.conn.write(bytes) {
            Ok(0) => return Err(io::Error::new(io::ErrorKind::WriteZero, "write returned 0")),
            Ok(n) => bytes = &bytes[n..],
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                if Instant::now() >= until {
                    return Err(io::Error::new(io::ErrorKind::TimedOut, "no room to write"));
                }
                std::thread::sleep(Duration::from_micros(50));
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn fail(d: &mut Driven, e: &io::Error) {
    d.result.error = Some(e.to_string());
    d.done = true;
}
