//! Bulk work with bounded parallelism, results in input order, streamed: what
//! [`Resolver::resolve_many`] and [`Resolver::check_many`] run on.
//!
//! Inputs are pulled from the iterator only as workers become free, and at most a bounded
//! window of finished results waits for an earlier, slower one, so memory stays flat however
//! long the input is. Each piece of work ends within its own deadline (a resolution's DNS and
//! HTTPS deadlines), so a hung domain holds the batch back by at most that deadline.

use std::collections::BTreeMap;
use std::ops::ControlFlow;
use std::sync::{Condvar, Mutex};

use crate::certs::CertVerifier;
use crate::diagnose::{CheckOptions, Diagnosis};
use crate::domain::Domain;
use crate::error::Result;
use crate::resolution::Resolution;
use crate::resolver::Resolver;

/// The most threads one batch runs at once.
pub const MAX_CONCURRENCY: usize = 256;

/// One finished piece of a batch, handed to the caller in input order.
#[derive(Debug)]
pub struct BatchItem<T> {
    /// The position of the input, counting from 0.
    pub index: usize,
    /// The domain as given.
    pub domain: String,
    /// What the work gave for it.
    pub result: T,
}

/// Finished results that may wait for an earlier one, per worker thread.
const WINDOW_PER_WORKER: usize = 64;

struct State<I, In, T> {
    /// The inputs not yet taken; `None` once exhausted.
    inputs: Option<I>,
    taken: usize,
    delivered: usize,
    /// Finished results waiting for an earlier one, by index.
    ready: BTreeMap<usize, (In, T)>,
    stop: bool,
    /// Workers still running (a worker that panicked counts as ended).
    running: usize,
}

/// Counts a worker out when it ends, normally or by a panic.
struct Running<'a, I, In, T> {
    state: &'a Mutex<State<I, In, T>>,
    done: &'a Condvar,
}

impl<I, In, T> Drop for Running<'_, I, In, T> {
    fn drop(&mut self) {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        s.running -= 1;
        drop(s);
        self.done.notify_all();
    }
}

/// Runs `work` on every input with at most `concurrency` threads, and hands each input and
/// result to `each` on the calling thread, in input order, with its index. `each` returning
/// `Break` stops the batch: no new input is taken, the running pieces finish, their results
/// are dropped. Returns how many results were handed over.
pub(crate) fn run<I, In, T, W, F>(inputs: I, concurrency: usize, work: W, mut each: F) -> usize
where
    I: Iterator<Item = In> + Send,
    In: Send,
    T: Send,
    W: Fn(&In) -> T + Sync,
    F: FnMut(usize, In, T) -> ControlFlow<()>,
{
    // No more threads than inputs, when the iterator knows how many it holds.
    let most = inputs.size_hint().1.unwrap_or(usize::MAX);
    let workers = concurrency.clamp(1, MAX_CONCURRENCY).min(most.max(1));
    if workers == 1 {
        // One at a time: on the calling thread, with no thread to hand results over.
        let mut handed = 0;
        for (index, input) in inputs.enumerate() {
            let result = work(&input);
            handed += 1;
            if each(index, input, result).is_break() {
                break;
            }
        }
        return handed;
    }
    let window = workers * WINDOW_PER_WORKER;
    let state = Mutex::new(State {
        inputs: Some(inputs),
        taken: 0,
        delivered: 0,
        ready: BTreeMap::new(),
        stop: false,
        running: workers,
    });
    // `more_work`: an input may be taken; `more_done`: a result is ready, or the batch ended.
    let (more_work, more_done) = (Condvar::new(), Condvar::new());
    let lock = || state.lock().unwrap_or_else(|p| p.into_inner());

    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                let _running = Running {
                    state: &state,
                    done: &more_done,
                };
                loop {
                    let taken = {
                        let mut s = lock();
                        loop {
                            if s.stop {
                                break None;
                            }
                            if s.taken < s.delivered + window {
                                let next = s.inputs.as_mut().and_then(Iterator::next);
                                match next {
                                    Some(domain) => {
                                        s.taken += 1;
                                        break Some((s.taken - 1, domain));
                                    }
                                    None => {
                                        s.inputs = None;
                                        break None;
                                    }
                                }
                            }
                            s = more_work.wait(s).unwrap_or_else(|p| p.into_inner());
                        }
                    };
                    let Some((index, domain)) = taken else { break };
                    let result = work(&domain);
                    lock().ready.insert(index, (domain, result));
                    more_done.notify_one(); // only the calling thread waits for results
                }
            });
        }

        // The calling thread hands the results over in order.
        let mut s = lock();
        loop {
            let next = s.delivered;
            if let Some((domain, result)) = s.ready.remove(&next) {
                s.delivered += 1;
                drop(s);
                more_work.notify_one(); // one more input may be taken
                let flow = each(next, domain, result);
                s = lock();
                if flow.is_break() {
                    s.stop = true;
                    s.ready.clear();
                    drop(s);
                    more_work.notify_all();
                    return next + 1;
                }
                continue;
            }
            let finished = s.inputs.is_none() && s.taken == s.delivered;
            // No worker left (one panicked: the scope passes its panic on) ends it too.
            if finished || s.running == 0 {
                s.stop = true;
                drop(s);
                more_work.notify_all();
                return next;
            }
            s = more_done.wait(s).unwrap_or_else(|p| p.into_inner());
        }
    })
}

impl Resolver {
    /// Resolves many domains with at most `concurrency` lookups at a time (1 to
    /// [`MAX_CONCURRENCY`]), handing each result to `each` on the calling thread **in input
    /// order**; `each` returning [`ControlFlow::Break`] stops the batch. Returns how many
    /// results were handed over.
    ///
    /// Every lookup is [`Resolver::resolve`]: the same cache, single-flight (S-42: a domain
    /// listed twice is fetched once) and deadlines. Inputs are read from the iterator as they
    /// are needed and results are not collected, so a list of 100,000 domains runs in flat
    /// memory.
    ///
    /// ```rust,no_run
    /// use std::ops::ControlFlow;
    /// use mtasts_core::{Config, Resolver};
    ///
    /// let resolver = Resolver::new(Config::default())?;
    /// let domains = ["example.com", "example.net"].map(String::from);
    /// resolver.resolve_many(domains, 16, |item| {
    ///     match item.result {
    ///         Ok(r) => println!("{} {:?} {}", item.domain, r.source(), r.mode()),
    ///         Err(e) => println!("{} {e}", item.domain),
    ///     }
    ///     ControlFlow::Continue(())
    /// });
    /// # Ok::<(), mtasts_core::Error>(())
    /// ```
    pub fn resolve_many<I, F>(&self, domains: I, concurrency: usize, each: F) -> usize
    where
        I: IntoIterator<Item = String>,
        I::IntoIter: Send,
        F: FnMut(BatchItem<Result<Resolution>>) -> ControlFlow<()>,
    {
        let mut each = each;
        run(
            domains.into_iter(),
            concurrency,
            |domain: &String| self.resolve(domain),
            |index, domain, result| {
                each(BatchItem {
                    index,
                    domain,
                    result,
                })
            },
        )
    }

    /// [`Resolver::check`] for many domains, as [`Resolver::resolve_many`] runs lookups: at
    /// most `concurrency` at a time, results in input order, streamed. A name that is not a
    /// domain gives its [`crate::Error::InvalidDomain`].
    pub fn check_many<I, F>(
        &self,
        domains: I,
        concurrency: usize,
        verifier: &CertVerifier,
        options: &CheckOptions,
        each: F,
    ) -> usize
    where
        I: IntoIterator<Item = String>,
        I::IntoIter: Send,
        F: FnMut(BatchItem<Result<Diagnosis>>) -> ControlFlow<()>,
    {
        let mut each = each;
        run(
            domains.into_iter(),
            concurrency,
            |domain: &String| Domain::new(domain).map(|d| self.check(&d, verifier, options)),
            |index, domain, result| {
                each(BatchItem {
                    index,
                    domain,
                    result,
                })
            },
        )
    }
}
