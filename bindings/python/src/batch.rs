//! `Resolver.resolve_many`: the core's `resolve_many` on a thread of its own, its results
//! handed to Python one at a time, in input order, through a bounded channel (flat memory for
//! any number of domains; the GIL released while waiting).

use std::ops::ControlFlow;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, sync_channel};

use pyo3::prelude::*;
use pyo3::types::PyIterator;

use crate::errors::to_py;
use crate::resolution::Resolution;

/// What the batch thread sends: one result, or the error that ended the input.
enum Message {
    Result(String, mtasts_core::Result<mtasts_core::Resolution>),
    InputFailed(PyErr),
}

/// The iterator `Resolver.resolve_many` returns: `(domain, Resolution)` pairs in input order,
/// or `(domain, InvalidDomain(...))` for a name that is not a host name (the exception is
/// given, not raised, so one bad name does not end the batch). An error raised by the input
/// iterable (or an item that is not a `str`) is raised here after the results before it.
/// Dropping the iterator stops the batch: no further domain is started.
#[pyclass(module = "mtasts")]
pub struct ResolveMany {
    results: Mutex<Receiver<Message>>,
    stop: Arc<AtomicBool>,
}

/// Starts the batch on its own thread.
pub fn start(
    resolver: Arc<mtasts_core::Resolver>,
    domains: Bound<'_, PyAny>,
    concurrency: usize,
) -> PyResult<ResolveMany> {
    let iter: Py<PyIterator> = domains.try_iter()?.unbind();
    let (tx, rx) = sync_channel(concurrency.clamp(1, mtasts_core::MAX_CONCURRENCY) * 4);
    let stop = Arc::new(AtomicBool::new(false));
    let failed: Arc<Mutex<Option<PyErr>>> = Arc::default();
    let input = Input {
        iter,
        failed: Arc::clone(&failed),
        stop: Arc::clone(&stop),
        chunk: Vec::new().into_iter(),
        exhausted: false,
    };
    let stopped = Arc::clone(&stop);
    std::thread::Builder::new()
        .name("mtasts-resolve-many".into())
        .spawn(move || {
            resolver.resolve_many(input, concurrency, |item| {
                let sent = tx.send(Message::Result(item.domain, item.result));
                if sent.is_err() || stopped.load(Ordering::SeqCst) {
                    ControlFlow::Break(())
                } else {
                    ControlFlow::Continue(())
                }
            });
            // The input's error comes after every result before it.
            let error = failed.lock().unwrap_or_else(|p| p.into_inner()).take();
            if let Some(e) = error {
                let _ = tx.send(Message::InputFailed(e));
            }
        })
        .map_err(|e| pyo3::exceptions::PyRuntimeError::new_err(format!("cannot start: {e}")))?;
    Ok(ResolveMany {
        results: Mutex::new(rx),
        stop,
    })
}

/// Items read from the Python iterable per taking of the GIL: a worker thread that takes the
/// GIL for every item contends with the thread iterating the results (Python hands the GIL
/// over only every switch interval), and the batch slows below what plain threads reach.
const CHUNK: usize = 32;

/// The Python iterable, read `CHUNK` items at a time (taking the GIL once for each chunk).
struct Input {
    iter: Py<PyIterator>,
    failed: Arc<Mutex<Option<PyErr>>>,
    stop: Arc<AtomicBool>,
    chunk: std::vec::IntoIter<String>,
    exhausted: bool,
}

impl Input {
    /// Reads the next chunk; an error of the iterable (or an item that is not a `str`) ends
    /// the input after the items before it, and is kept for the reader.
    fn refill(&mut self) {
        let mut items = Vec::with_capacity(CHUNK);
        Python::attach(|py| {
            let mut iter = self.iter.bind(py).clone();
            while items.len() < CHUNK {
                match iter.next() {
                    None => {
                        self.exhausted = true;
                        break;
                    }
                    Some(item) => match item.and_then(|i| i.extract::<String>()) {
                        Ok(domain) => items.push(domain),
                        Err(e) => {
                            // The reader gets it after every result before it.
                            *self.failed.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
                            self.exhausted = true;
                            break;
                        }
                    },
                }
            }
        });
        self.chunk = items.into_iter();
    }
}

impl Iterator for Input {
    type Item = String;

    fn next(&mut self) -> Option<String> {
        if self.stop.load(Ordering::SeqCst) {
            return None;
        }
        if let Some(domain) = self.chunk.next() {
            return Some(domain);
        }
        if self.exhausted {
            return None;
        }
        self.refill();
        self.chunk.next()
    }
}

#[pymethods]
impl ResolveMany {
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__(&self, py: Python<'_>) -> PyResult<Option<(String, Py<PyAny>)>> {
        let message = py.detach(|| {
            let rx = self.results.lock().unwrap_or_else(|p| p.into_inner());
            rx.recv().ok()
        });
        match message {
            None => Ok(None),
            Some(Message::InputFailed(e)) => Err(e),
            Some(Message::Result(domain, Ok(resolution))) => {
                let value = Py::new(py, Resolution::new(resolution))?.into_any();
                Ok(Some((domain, value)))
            }
            Some(Message::Result(domain, Err(e))) => {
                Ok(Some((domain, to_py(&e).into_value(py).into_any())))
            }
        }
    }
}

impl Drop for ResolveMany {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}
