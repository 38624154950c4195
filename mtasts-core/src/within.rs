//! Work that a caller waits for only so long: run on a thread of its own, its result taken
//! if it comes in time; otherwise it goes on and its effects (a policy fetched and cached)
//! serve the next caller. For the faces that must answer within a bound whatever the
//! network does: the policy server's answer deadline, the OpenSMTPD tables (R-SMTPD-4).

use std::sync::mpsc;
use std::time::Duration;

/// Runs `work` on a new thread and waits for its result at most `limit`. `None` when it did
/// not finish in time (it goes on, its result dropped), or no thread could be started.
pub fn run_within<T: Send + 'static>(
    limit: Duration,
    name: &str,
    work: impl FnOnce() -> T + Send + 'static,
) -> Option<T> {
    let (tx, rx) = mpsc::sync_channel(1);
    let spawned = std::thread::Builder::new()
        .name(name.to_string())
        .spawn(move || {
            let _ = tx.send(work());
        });
    if let Err(e) = spawned {
        log::warn!("cannot start a thread for {name}: {e}");
        return None;
    }
    rx.recv_timeout(limit).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    #[test]
    fn in_time_gives_the_result_late_gives_none_and_the_work_goes_on() {
        assert_eq!(run_within(Duration::from_secs(10), "quick", || 7), Some(7));
        let done = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&done);
        let late = run_within(Duration::from_millis(20), "slow", move || {
            std::thread::sleep(Duration::from_millis(200));
            flag.store(true, Ordering::SeqCst);
        });
        assert_eq!(late, None);
        for _ in 0..100 {
            if done.load(Ordering::SeqCst) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("the late work did not go on");
    }
}
