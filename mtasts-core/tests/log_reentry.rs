//! Issue 10 item 12: the library logs only after releasing its internal locks, so a log
//! callback that calls back into mtasts (as an MTA's logging glue may) never deadlocks. The
//! logger here answers each record by calling the store that logged it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::cell::Cell;
use std::sync::mpsc;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use mtasts_core::{Domain, RedisStore, Store};
use mtasts_testworld::RedisServer;

static STORE: OnceLock<Arc<RedisStore>> = OnceLock::new();

thread_local! {
    static INSIDE: Cell<bool> = const { Cell::new(false) };
}

struct CallsBack;

impl log::Log for CallsBack {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, _: &log::Record<'_>) {
        if INSIDE.with(|inside| inside.replace(true)) {
            return; // one level of re-entry is enough to show a held lock
        }
        if let Some(store) = STORE.get() {
            let _ = store.get(&Domain::new("reentry.example").unwrap());
        }
        INSIDE.with(|inside| inside.set(false));
    }
    fn flush(&self) {}
}

static LOGGER: CallsBack = CallsBack;

#[test]
fn a_log_callback_may_call_back_into_the_store() {
    log::set_logger(&LOGGER).unwrap();
    log::set_max_level(log::LevelFilter::Trace);
    let mut server = RedisServer::start().expect("redis-server (run scripts/install-deps)");
    let store = RedisStore::connect(&server.url())
        .unwrap()
        .with_retry_after(Duration::from_millis(1));
    let store = Arc::new(store);
    STORE.set(Arc::clone(&store)).unwrap();
    store.get(&Domain::new("warm.example").unwrap()).unwrap();
    server.kill().unwrap();

    // The outage starts (logged at warning), then ends (logged at info) after a restart.
    let (done, finished) = mpsc::channel();
    let worker = Arc::clone(&store);
    std::thread::spawn(move || {
        let d = Domain::new("outage.example").unwrap();
        let failed = worker.get(&d).is_err();
        std::thread::sleep(Duration::from_millis(5));
        let again = worker.get(&d).is_err();
        done.send((failed, again)).unwrap();
    });
    let (failed, again) = finished
        .recv_timeout(Duration::from_secs(20))
        .expect("deadlocked: a lock was held while logging");
    assert!(failed && again);
    server.restart().unwrap();
    let (done, finished) = mpsc::channel();
    let worker = Arc::clone(&store);
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(5));
        let ok = worker.get(&Domain::new("back.example").unwrap()).is_ok();
        done.send(ok).unwrap();
    });
    let ok = finished
        .recv_timeout(Duration::from_secs(20))
        .expect("deadlocked: a lock was held while logging");
    assert!(ok);
}
