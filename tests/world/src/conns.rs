//! Bounded per-connection threads and a stoppable accept loop, shared by the TCP servers.

use std::collections::HashMap;
use std::io;
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::Duration;

/// At most this many connections are served at once per server; further ones are closed at once.
pub const MAX_CONNECTIONS: usize = 64;

/// How long the accept loop sleeps when no connection is pending.
const ACCEPT_POLL: Duration = Duration::from_millis(5);

/// Locks a mutex, ignoring poisoning: every critical section here leaves the data consistent.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

#[derive(Default)]
struct Live {
    next_id: u64,
    conns: HashMap<u64, (TcpStream, Option<JoinHandle<()>>)>,
}

/// The set of live connections of one server: each runs on its own thread, at most
/// [`MAX_CONNECTIONS`] at a time, and all can be cut and joined on shutdown.
#[derive(Default)]
pub(crate) struct Connections {
    live: Mutex<Live>,
}

impl Connections {
    /// Runs `handler` for `stream` on a new thread, unless the server is at capacity (then the
    /// stream is dropped, which closes it).
    pub(crate) fn spawn<F>(self: &Arc<Self>, stream: TcpStream, name: &str, handler: F)
    where
        F: FnOnce(TcpStream) + Send + 'static,
    {
        let Ok(handle_copy) = stream.try_clone() else {
            return;
        };
        let mut live = lock(&self.live);
        if live.conns.len() >= MAX_CONNECTIONS {
            return;
        }
        let id = live.next_id;
        live.next_id += 1;
        let me = Arc::clone(self);
        let spawned = thread::Builder::new().name(name.to_owned()).spawn(move || {
            handler(stream);
            // Dropping our entry closes the duplicate descriptor, so the peer sees EOF.
            lock(&me.live).conns.remove(&id);
        });
        if let Ok(join) = spawned {
            live.conns.insert(id, (handle_copy, Some(join)));
        }
    }

    /// Cuts every live connection (blocked reads and writes return at once) and joins the threads.
    pub(crate) fn shutdown_all(&self) {
        let drained: Vec<_> = lock(&self.live).conns.drain().collect();
        for (_, (stream, join)) in drained {
            let _ = stream.shutdown(Shutdown::Both);
            if let Some(join) = join {
                let _ = join.join();
            }
        }
    }
}

/// Accepts connections on `listener` until `stop` is set, handing each to `on_accept`.
/// The listener is polled (non-blocking) so the loop notices `stop` within a few milliseconds.
pub(crate) fn accept_loop(
    listener: TcpListener,
    stop: Arc<AtomicBool>,
    mut on_accept: impl FnMut(TcpStream),
) -> io::Result<()> {
    listener.set_nonblocking(true)?;
    while !stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((stream, _peer)) => {
                // Accepted sockets may inherit non-blocking mode on some platforms.
                if stream.set_nonblocking(false).is_ok() {
                    on_accept(stream);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => thread::sleep(ACCEPT_POLL),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            // Transient accept errors (EMFILE, ECONNABORTED…): back off, keep serving.
            Err(_) => thread::sleep(ACCEPT_POLL * 4),
        }
    }
    Ok(())
}
