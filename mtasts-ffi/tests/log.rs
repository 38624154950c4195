//! The log callback: mtasts' `log` messages reach the host's callback with their level, only
//! at or above the level asked for, and stop when the callback is removed. (Its own test
//! binary: the logger is process-wide.)
#![allow(unsafe_code, clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::ffi::{CStr, c_char, c_void};
use std::ptr::null_mut;
use std::sync::Mutex;

use common::{Fixture, ok};
use mtasts::*;

/// What the callback received.
static SEEN: Mutex<Vec<(mtasts_log_level, String, usize)>> = Mutex::new(Vec::new());

unsafe extern "C" fn collect(
    userdata: *mut c_void,
    level: mtasts_log_level,
    message: *const c_char,
    message_len: usize,
) {
    assert_eq!(userdata as usize, 0x5eed, "userdata passed through");
    // SAFETY: the library passes a NUL-terminated message.
    let text = unsafe { CStr::from_ptr(message) }
        .to_str()
        .unwrap()
        .to_owned();
    SEEN.lock().unwrap().push((level, text, message_len));
}

fn take() -> Vec<(mtasts_log_level, String, usize)> {
    std::mem::take(&mut *SEEN.lock().unwrap())
}

fn resolve(fixture: &Fixture, domain: &str) {
    let r = fixture.resolve(domain);
    // SAFETY: owned, freed once.
    unsafe { mtasts_resolution_free(r) };
}

#[test]
fn messages_reach_the_callback() {
    let fixture = Fixture::new();
    let userdata = 0x5eed as *mut c_void;
    // SAFETY: `collect` has the callback's signature and is thread-safe.
    unsafe {
        ok(mtasts_set_log_callback(
            Some(collect),
            userdata,
            mtasts_log_level::MTASTS_LOG_WARN as u32,
        ));
    }
    // S-10: a failed fetch is logged as a warning naming the domain.
    resolve(&fixture, "s10.mtasts.test");
    let seen = take();
    let warning = seen
        .iter()
        .find(|(_, text, _)| text.contains("s10.mtasts.test"))
        .unwrap_or_else(|| panic!("no warning about s10 in {seen:?}"));
    assert_eq!(warning.0, mtasts_log_level::MTASTS_LOG_WARN);
    assert_eq!(warning.2, warning.1.len(), "message_len without the NUL");
    assert!(
        seen.iter()
            .all(|(level, _, _)| (*level as u32) <= mtasts_log_level::MTASTS_LOG_WARN as u32),
        "nothing below the level asked for: {seen:?}"
    );

    // Info: a successful fetch is logged.
    // SAFETY: as above.
    unsafe {
        ok(mtasts_set_log_callback(
            Some(collect),
            userdata,
            mtasts_log_level::MTASTS_LOG_INFO as u32,
        ));
    }
    resolve(&fixture, "s01.mtasts.test");
    let seen = take();
    assert!(
        seen.iter().any(
            |(level, text, _)| *level == mtasts_log_level::MTASTS_LOG_INFO
                && text.contains("s01.mtasts.test: fetched policy")
        ),
        "{seen:?}"
    );

    // Off: nothing more.
    // SAFETY: removing the callback.
    unsafe { ok(mtasts_set_log_callback(None, null_mut(), 5)) };
    resolve(&fixture, "s19.mtasts.test");
    assert!(take().is_empty());
}
