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

/// The Python iterable, read one item at a time (taking the GIL for each).
struct Input {
    iter: Py<PyIterator>,
    failed: Arc<Mutex<Option<PyErr>>>,
    stop: Arc<AtomicBool>,
}

impl Iterator for Input {
    type Item = String;

    fn next(&mut self) -> Option<String> {
        if self.stop.load(Ordering::SeqCst) {
            return None;
        }
        let item = Python::attach(|py| -> Option<PyResult<String>> {
            let mut iter = self.iter.bind(py).clone();
            iter.next()
                .map(|item| item.and_then(|i| i.extract::<String>()))
        })?;
        match item {
            Ok(domain) => Some(domain),
            Err(e) => {
                // Kept for the reader, who gets it after every result before it.
                *self.failed.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
                None
            }
        }
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
